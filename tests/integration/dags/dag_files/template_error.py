"""Test DAG: the README's first DAG as it was, ``{{ ds }}`` in ``results_path``, triggered by
hand. A manual run in Airflow 3 has no logical date, so ``ds`` is undefined: the task must
fail at once, without its two retries and before any job is made.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag

from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator


@dag(dag_id="test_results_path_template_error", schedule=None, start_date=datetime(2026, 1, 1))
def test_results_path_template_error() -> None:
    MistralBatchOperator(
        task_id="summarise",
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        requests=[
            {"custom_id": "doc-0", "body": {"messages": [{"role": "user", "content": "hi"}]}}
        ],
        retries=2,
        retry_delay=timedelta(seconds=0),
        results_path="{{ dag.folder }}/../summaries/{{ ds }}.jsonl",
    )


test_results_path_template_error()
