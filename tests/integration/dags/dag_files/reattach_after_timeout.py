"""Test DAG: a blocking task hits its execution timeout; the retry reattaches to its job."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag

from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator


@dag(
    dag_id="test_reattach_after_timeout",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
)
def test_reattach_after_timeout() -> None:
    MistralBatchOperator(
        task_id="slow_batch",
        endpoint="/v1/embeddings",
        model="mistral-embed",
        requests=[{"custom_id": f"r{i}", "body": {"input": [f"text {i}"]}} for i in range(6)],
        deferrable=False,
        poll_interval=0.2,
        execution_timeout=timedelta(seconds=2),
        retries=3,
        retry_delay=timedelta(seconds=0),
    )


test_reattach_after_timeout()
