"""Dynamic task mapping: one batch job per input, made at run time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, task

from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator

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
        poll_interval=1,
    ).expand(requests=requests_per_topic())

    @task
    def count_results(summaries: list[dict[str, Any]]) -> int:
        return sum(summary["succeeded_requests"] for summary in summaries)

    count_results(describe.output)


example_mistral_batch_mapped()
