"""Typed extraction with the TaskFlow decorator: a function returns prompts, and each answer
comes back as a validated ``City``.

``load_descriptions`` stands for any upstream data. ``extract_cities`` is a
``@task.mistral_batch`` task: its function turns the descriptions into prompt strings, which
the task sends as one batch job of chat requests (``custom_id`` ``"0"``, ``"1"``, ... in the
list's order). ``output_type=City`` asks Mistral for JSON of ``City``'s schema on every request
and checks each answer against it: in the results file (``results_path``) every row has a
``status`` (``success``, or ``invalid_output`` for an answer that is not a valid ``City``) and,
when it succeeded, its ``output``, the validated value. ``read_cities`` reads them back.

The function runs once per try; the task defers while the job runs and does not call it again
when it resumes. A retry calls it again and reattaches to the job of the earlier try, because
the function is deterministic: the same descriptions give the same prompts.

``MISTRAL_EXAMPLE_RESULTS`` and ``MISTRAL_EXAMPLE_POLL_SECONDS`` work as in
``example_mistral_batch_chat``.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

from airflow.sdk import ObjectStoragePath, dag, task
from pydantic import BaseModel, Field

RESULTS_ROOT = os.environ.get("MISTRAL_EXAMPLE_RESULTS", "file:///tmp")
POLL_SECONDS = float(os.environ.get("MISTRAL_EXAMPLE_POLL_SECONDS", "60"))

RUN_FILE_NAME = "mistral-batch-cities-{{ run_id | replace(':', '_') | replace('+', '_') }}.jsonl"

DESCRIPTIONS = [
    "The capital of Burgundy, known for its mustard and its glazed roof tiles.",
    "A port on the Gironde estuary whose name is also that of a wine region.",
    "The city at the meeting of the Rhone and the Saone, home of the bouchon.",
    "The largest city of Alsace, seat of the European Parliament.",
]


class City(BaseModel):
    """What each answer must be."""

    name: str
    country: str
    population_millions: float = Field(ge=0, description="metropolitan area, in millions")


@dag(
    dag_id="example_mistral_batch_taskflow",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "mistral"],
    doc_md=__doc__,
)
def example_mistral_batch_taskflow() -> None:
    @task
    def load_descriptions() -> list[str]:
        return DESCRIPTIONS

    @task.mistral_batch(
        model="mistral-small-latest",
        output_type=City,
        deferrable=True,
        poll_interval=POLL_SECONDS,
        results_path=f"{RESULTS_ROOT}/{RUN_FILE_NAME}",
    )
    def extract_cities(descriptions: list[str]) -> list[str]:
        # No clock, no randomness: a retry must make the same requests to reattach.
        return [f"Which city is described here? {text}" for text in descriptions]

    @task
    def read_cities(summary: dict[str, Any]) -> dict[str, Any]:
        cities: dict[str, Any] = {}
        with ObjectStoragePath(summary["results_path"]).open("r") as lines:
            for line in lines:
                row = json.loads(line)
                if row["status"] == "success":
                    cities[row["custom_id"]] = City.model_validate(row["output"]).model_dump()
                else:
                    cities[row["custom_id"]] = f"({row['status']}: {row['error']})"
        return cities

    read_cities(extract_cities(load_descriptions()))


example_mistral_batch_taskflow()
