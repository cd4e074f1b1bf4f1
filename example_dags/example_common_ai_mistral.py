"""Airflow's common-ai ``LLMBatchOperator`` on Mistral: typed review labels, deferred.

``label_reviews`` is common-ai's own batch operator; its ``model_id`` starts with ``mistral:``,
so common-ai runs it through this provider's adapter (registered by entry point, installed
with the ``[common-ai]`` extra): the prompts become one Mistral batch job, each answer is
asked as JSON of the ``Review`` schema and validated; the task defers while the job runs.
``count_labels`` reads the results file common-ai wrote (one row per prompt, with ``status``
and the validated ``output``).

Use common-ai's operator for chat batches you may move to another vendor; use this provider's
``MistralBatchOperator`` or ``@task.mistral_batch`` for the other Mistral endpoints, very large
inputs, results joined with their inputs and the Mistral batch tab in the UI
(``docs/common_ai.md``).

What to look at in the UI, on ``label_reviews``: the state Deferred while the job runs (the
trigger is common-ai's ``LLMBatchTrigger``; on Airflow 3.1 and 3.2 the task waits in its worker
instead, see ``DEFERRABLE``), the XCom ``batch_id``, and the return value: the
manifest with ``counts`` per row status and the results file's ``result_uri``.

``MISTRAL_EXAMPLE_RESULTS`` picks the results folder (any ``ObjectStoragePath`` URL; by default
``/tmp`` of the worker); ``MISTRAL_EXAMPLE_POLL_SECONDS`` the seconds between polls (60 by
default; common-ai takes no less than 30).
"""

from __future__ import annotations

import os
from datetime import datetime
from importlib.metadata import version
from typing import Any, Literal

from airflow.sdk import ObjectStoragePath, dag, task
from packaging.version import Version
from pydantic import BaseModel, Field

try:
    from airflow.providers.common.ai.operators.llm_batch import LLMBatchOperator
except ImportError:  # without the [common-ai] extra this example has no DAG
    LLMBatchOperator = None

RESULTS_ROOT = os.environ.get("MISTRAL_EXAMPLE_RESULTS", "file:///tmp")
# common-ai refuses a poll interval under 30 s.
RUN_FOLDER = "{{ run_id | replace(':', '_') | replace('+', '_') }}"
POLL_SECONDS = max(30, int(float(os.environ.get("MISTRAL_EXAMPLE_POLL_SECONDS", "60"))))

# common-ai's trigger builds its adapter in a thread, which fetches the connection through the
# triggerer's channel to its supervisor; before Airflow 3.3 that channel is not thread-safe and
# the triggerer can die of it ("Response read out of order"). There the task waits in its worker.
DEFERRABLE = Version(version("apache-airflow")) >= Version("3.3")

REVIEWS = [
    "The soup was cold and the waiter forgot us.",
    "Best comte I have had in years, and a kind host.",
    "Fine. Nothing special.",
]


class Review(BaseModel):
    """What each answer must be."""

    sentiment: Literal["positive", "negative", "neutral"]
    score: int = Field(ge=1, le=5, description="1 (awful) to 5 (excellent)")


if LLMBatchOperator is not None:

    @dag(
        dag_id="example_common_ai_mistral",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        tags=["example", "mistral", "common-ai"],
        doc_md=__doc__,
    )
    def example_common_ai_mistral() -> None:
        labels = LLMBatchOperator(
            task_id="label_reviews",
            requests=[f"Review: {review}" for review in REVIEWS],
            llm_conn_id="mistral_default",
            model_id="mistral:mistral-small-latest",
            system_prompt="Label the review's sentiment and score it.",
            output_type=Review,
            max_tokens=128,
            # A folder per run: common-ai writes the results and its own state there.
            result_path=f"{RESULTS_ROOT}/common-ai-reviews/{RUN_FOLDER}",
            poll_interval=POLL_SECONDS,
            deferrable=DEFERRABLE,
        )

        @task
        def count_labels(manifest: dict[str, Any]) -> dict[str, int]:
            import json

            counts: dict[str, int] = {}
            with ObjectStoragePath(manifest["result_uri"]).open("r") as rows:
                for line in rows:
                    row = json.loads(line)
                    label = row["output"]["sentiment"] if row["status"] == "success" else "?"
                    counts[label] = counts.get(label, 0) + 1
            return counts

        count_labels(labels.output)

    example_common_ai_mistral()
