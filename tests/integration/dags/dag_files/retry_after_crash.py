"""Test DAG: the first try dies right after creating its job; the retry must reattach.

The same crash in both wait modes: blocking, and deferrable (whose retry defers again).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag

from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator


class CrashAfterCreateOperator(MistralBatchOperator):
    """Dies like a lost worker on its first try, just after the job was created."""

    def execute(self, context: Any) -> Any:
        self._first_try = context["ti"].try_number == 1
        return super().execute(context)

    def _create(self, *args: Any, **kwargs: Any) -> Any:
        job = super()._create(*args, **kwargs)
        if self._first_try:
            raise RuntimeError(f"simulated worker crash after creating job {job.id}")
        return job


@dag(
    dag_id="test_retry_after_crash",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
)
def test_retry_after_crash() -> None:
    for task_id, deferrable in (("crashing_batch", False), ("crashing_deferred_batch", True)):
        CrashAfterCreateOperator(
            task_id=task_id,
            endpoint="/v1/embeddings",
            model="mistral-embed",
            requests=[{"custom_id": f"r{i}", "body": {"input": [f"text {i}"]}} for i in range(5)],
            deferrable=deferrable,
            poll_interval=0.2,
            retries=1,
            retry_delay=timedelta(seconds=0),
        )


test_retry_after_crash()
