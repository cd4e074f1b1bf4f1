"""Ten deferred batch tasks whose jobs end about a second after they are created.

The deployment test runs it to show that a trigger firing right after its task deferred does
not lose Airflow's own race (the scheduler reading the deferring worker's exit late). The
emulator answers each job's requests at ``requests_per_second`` (20 in the deployment test):
``REQUESTS_PER_JOB`` requests keep a job running for about ``REQUESTS_PER_JOB / 20`` seconds,
long enough for the operator to see it still running when it defers, short enough to end
before the executor has reported the deferring worker's exit.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from airflow.sdk import dag, task

from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator

TASKS = 10
REQUESTS_PER_JOB = 20
POLL_SECONDS = float(os.environ.get("MISTRAL_EXAMPLE_POLL_SECONDS", "1"))


@dag(
    dag_id="deployment_fast_jobs",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["test"],
)
def deployment_fast_jobs() -> None:
    @task
    def requests_per_task() -> list[list[dict[str, Any]]]:
        return [
            [
                {
                    "custom_id": f"t{number}-r{index}",
                    "body": {"messages": [{"role": "user", "content": f"Say {index}."}]},
                }
                for index in range(REQUESTS_PER_JOB)
            ]
            for number in range(TASKS)
        ]

    MistralBatchOperator.partial(
        task_id="fast_job",
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        deferrable=True,
        poll_interval=POLL_SECONDS,
    ).expand(requests=requests_per_task())


deployment_fast_jobs()
