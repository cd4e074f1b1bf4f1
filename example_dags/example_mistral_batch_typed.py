"""Typed extraction: each answer is JSON of a pydantic model, validated row by row.

``build_requests`` turns six short cheese descriptions into chat requests;
``extract_profiles`` sends them as one batch job with ``output_type=CheeseProfile``: each
request asks for JSON of the model's schema (``response_format`` of type ``json_schema``), and
each row of the results file carries its ``status`` (``success``, or ``invalid_output`` with
the validation error when an answer does not parse or validate) and its ``output``, the
validated value. ``read_profiles`` loads the rows back into ``CheeseProfile`` objects.

The model shows what a schema can ask for: a nested model (``origin``), a closed set of values
(``milk``, a ``Literal``) and an optional field (``aged_months``, null when the text does not
say). ``docs/typed_outputs.md`` tells the rest.

What to look at in the UI, on ``extract_profiles``: the **Mistral batch** tab (the counts per
row status once the job ended) and the task log (one line saying each request asks for JSON of
``CheeseProfile``, the final line with the counts); the return value's ``results_path``; on
``read_profiles``, the return value: one profile per cheese.

``MISTRAL_EXAMPLE_RESULTS`` picks where the results go (any ``ObjectStoragePath`` URL the
deployment has a filesystem for; a local folder must exist), by default ``/tmp`` of the worker.
``MISTRAL_EXAMPLE_POLL_SECONDS`` sets the seconds between status polls: 60 by default, a
realistic pace for the real API. The demo and the tests, against the local emulator, set it
to 1.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any, Literal

from airflow.sdk import ObjectStoragePath, dag, task
from pydantic import BaseModel, Field

from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator

RESULTS_ROOT = os.environ.get("MISTRAL_EXAMPLE_RESULTS", "file:///tmp")
POLL_SECONDS = float(os.environ.get("MISTRAL_EXAMPLE_POLL_SECONDS", "60"))

RUN_FILE_NAME = "mistral-batch-typed-{{ run_id | replace(':', '_') | replace('+', '_') }}.jsonl"


class Origin(BaseModel):
    """Where a cheese comes from."""

    country: str
    region: str | None = None


class CheeseProfile(BaseModel):
    """What each answer must be."""

    name: str
    milk: Literal["cow", "goat", "sheep", "buffalo", "mixed"]
    origin: Origin
    aged_months: int | None = Field(default=None, description="null when the text does not say")


DESCRIPTIONS = [
    "Comte is a hard cow's milk cheese from the Jura mountains of France, aged 4 to 36 months.",
    "Roquefort, a blue cheese from the south of France, is made from sheep's milk.",
    "Manchego comes from La Mancha in Spain; this one is made of sheep's milk, aged 12 months.",
    "Mozzarella di bufala is a fresh cheese from Campania, Italy, made from buffalo milk.",
    "Crottin de Chavignol is a small goat's milk cheese from the Loire valley.",
    "Feta, from Greece, is brined and made of sheep's milk, sometimes with goat's milk.",
]

INSTRUCTIONS = (
    "Extract the cheese's profile from the text as JSON: its name, the milk it is made of, "
    "where it comes from, and how many months it is aged (null when the text does not say)."
)


@dag(
    dag_id="example_mistral_batch_typed",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "mistral"],
    doc_md=__doc__,
)
def example_mistral_batch_typed() -> None:
    @task
    def build_requests() -> list[dict[str, Any]]:
        return [
            {
                "custom_id": f"cheese-{index}",
                "body": {
                    "max_tokens": 200,
                    "messages": [
                        {"role": "system", "content": INSTRUCTIONS},
                        {"role": "user", "content": text},
                    ],
                },
            }
            for index, text in enumerate(DESCRIPTIONS)
        ]

    profiles = MistralBatchOperator(
        task_id="extract_profiles",
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        requests=build_requests(),
        # Each request gets response_format json_schema; each answer is validated.
        output_type=CheeseProfile,
        deferrable=True,
        poll_interval=POLL_SECONDS,
        # The rows, with their validated output, one per request in the input's order.
        results_path=f"{RESULTS_ROOT}/{RUN_FILE_NAME}",
    )

    @task
    def read_profiles(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
        import json

        found = {}
        with ObjectStoragePath(summary["results_path"]).open("r") as lines:
            for line in lines:
                row = json.loads(line)
                if row["status"] == "success":
                    profile = CheeseProfile.model_validate(row["output"])
                    found[row["custom_id"]] = profile.model_dump()
        return found

    read_profiles(profiles.output)


example_mistral_batch_typed()
