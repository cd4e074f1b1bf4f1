"""Dynamic task mapping: one batch job per input, made at run time.

``requests_per_topic`` returns one list of requests per topic; ``describe_topic`` is mapped
over them, one deferred task and one batch job per topic; ``count_results`` adds up the
succeeded requests of all of them. Each mapped task has its own reattach key (its map index
is part of it), so a retry of one reattaches to its own job only.

What to look at in the UI: the mapped instances of ``describe_topic`` (one per topic), each
with its own **Mistral batch** tab and link; the **Mistral batch jobs** page, where each job
links back to its DAG run and mapped task.

``MISTRAL_EXAMPLE_POLL_SECONDS`` sets the seconds between status polls: 60 by default, a
realistic pace for the real API, where a batch job takes minutes to hours. The demo and the
tests, against the local emulator, set it to 1.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import dag, task

from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator

POLL_SECONDS = float(os.environ.get("MISTRAL_EXAMPLE_POLL_SECONDS", "60"))

TOPICS = {
    "cheese": ["Comte", "Brie", "Roquefort"],
    "wine": ["Chablis", "Sancerre"],
    "rivers": ["Loire", "Saone", "Rhone", "Seine"],
}


@dag(
    dag_id="example_mistral_batch_mapped",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "mistral"],
    doc_md=__doc__,
)
def example_mistral_batch_mapped() -> None:
    @task
    def requests_per_topic() -> list[list[dict[str, Any]]]:
        return [
            [
                {
                    "custom_id": f"{topic}-{index}",
                    "body": {"messages": [{"role": "user", "content": f"Describe {name}."}]},
                }
                for index, name in enumerate(names)
            ]
            for topic, names in TOPICS.items()
        ]

    describe = MistralBatchOperator.partial(
        task_id="describe_topic",
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        deferrable=True,
        poll_interval=POLL_SECONDS,
    ).expand(requests=requests_per_topic())

    @task
    def count_results(summaries: list[dict[str, Any]]) -> int:
        return sum(summary["succeeded_requests"] for summary in summaries)

    count_results(describe.output)


example_mistral_batch_mapped()
