"""Test DAG: one task per error of the provider, each raising it on every try, with one retry.

Airflow's task runner decides whether a retry follows: the fatal errors must end the task on
its first try, the others must let the retry run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from airflow_provider_mistral_batch.exceptions import (
    MistralBatchError,
    MistralBatchFatalError,
    MistralBatchInputError,
    MistralBatchJobError,
    MistralBatchJobFatalError,
    MistralConnectionError,
    MistralServerError,
)

#: task id -> the error it raises.
ERRORS: dict[str, MistralBatchError] = {
    "input_error": MistralBatchInputError("bad"),
    "job_fatal_error": MistralBatchJobFatalError("cancelled"),
    "fatal_error": MistralBatchFatalError("no use retrying"),
    "job_error": MistralBatchJobError("failed"),
    "server_error": MistralServerError(503, "down"),
    "connection_error": MistralConnectionError("refused"),
}


@dag(dag_id="test_error_retries", schedule=None, start_date=datetime(2026, 1, 1))
def test_error_retries() -> None:
    for task_id in ERRORS:

        @task(task_id=task_id, retries=1, retry_delay=timedelta(seconds=0))
        def fail(name: str = task_id) -> None:
            raise ERRORS[name]

        fail()


test_error_retries()
