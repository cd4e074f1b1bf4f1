"""Chat completions from an inline list of requests, waited for in the triggerer (deferrable).

A downstream task reads the results through the hook, streaming the output file.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import dag, task

from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator

QUESTIONS = [
    "What is the best French cheese?",
    "Which wine goes with comte?",
    "Name a river in Burgundy.",
    "How long does brie take to ripen?",
    "What is a good cheese for fondue?",
]


@dag(
    dag_id="example_mistral_batch_chat",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "mistral"],
)
def example_mistral_batch_chat() -> None:
    @task
    def build_requests() -> list[dict[str, Any]]:
        return [
            {
                "custom_id": f"question-{index}",
                "body": {"max_tokens": 64, "messages": [{"role": "user", "content": question}]},
            }
            for index, question in enumerate(QUESTIONS)
        ]

    answer = MistralBatchOperator(
        task_id="answer_questions",
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        requests=build_requests(),
        metadata={"purpose": "example"},
        deferrable=True,
        poll_interval=1,
    )

    @task
    def read_answers(output_file: str) -> dict[str, str]:
        from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

        answers = {}
        for result in MistralBatchHook().iter_results(output_file):
            if result.succeeded and result.custom_id and result.response:
                message = result.response.body["choices"][0]["message"]
                answers[result.custom_id] = message["content"]
        return answers

    read_answers(answer.output["output_file"])


example_mistral_batch_chat()
