"""A sensor on a job created elsewhere, and the cancellation of another job.

``start_job`` only creates a job (``wait_for_completion=False``), as another system would;
``wait_for_job`` waits for it by id, in the triggerer (``deferrable=True``), so no worker slot
is held while the job runs. ``start_unwanted_job`` creates a second, larger job that
``cancel_unwanted_job`` cancels. A job that has already ended when the cancel runs is not an
error: the operator logs it and returns the job's final status.

What to look at in the UI: ``wait_for_job`` Deferred while the job runs, then its
**Mistral batch** tab; ``cancel_unwanted_job``'s log (the cancel and the final status) and, on
the **Mistral batch jobs** page, the unwanted job CANCELLED with part of its requests done.

``MISTRAL_EXAMPLE_POLL_SECONDS`` sets the seconds between status polls: 60 by default, a
realistic pace for the real API, where a batch job takes minutes to hours. The demo and the
tests, against the local emulator, set it to 1.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import dag

from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
from airflow_provider_mistral_batch.operators.cancel import MistralBatchCancelJobOperator
from airflow_provider_mistral_batch.sensors.batch import MistralBatchJobSensor

POLL_SECONDS = float(os.environ.get("MISTRAL_EXAMPLE_POLL_SECONDS", "60"))

REQUESTS = [
    {"custom_id": f"text-{index}", "body": {"input": [f"Is message {index} harmful?"]}}
    for index in range(10)
]

# A job big enough to still be running when it is cancelled.
UNWANTED_REQUESTS = [
    {"custom_id": f"draft-{index}", "body": {"input": [f"Draft message {index}"]}}
    for index in range(2_000)
]


@dag(
    dag_id="example_mistral_batch_sensor_cancel",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["example", "mistral"],
    doc_md=__doc__,
)
def example_mistral_batch_sensor_cancel() -> None:
    start_job = MistralBatchOperator(
        task_id="start_job",
        endpoint="/v1/moderations",
        model="mistral-moderation-latest",
        requests=REQUESTS,
        wait_for_completion=False,
    )
    # Deferrable: no worker slot is held while the job runs. mode="reschedule" frees the slot
    # too, but there a poke_interval of a few seconds makes Airflow fail the sensor (see the
    # sensor's docstring).
    wait_for_job = MistralBatchJobSensor(
        task_id="wait_for_job",
        job_id="{{ ti.xcom_pull(task_ids='start_job', key='batch_job_id') }}",
        deferrable=True,
        poke_interval=POLL_SECONDS,
        # Longer than the job's own limit (the operator's timeout, 24 h by default): the job's final
        # status, not the sensor's timeout, ends the wait.
        timeout=timedelta(hours=25),
    )
    start_unwanted_job = MistralBatchOperator(
        task_id="start_unwanted_job",
        endpoint="/v1/moderations",
        model="mistral-moderation-latest",
        requests=UNWANTED_REQUESTS,
        timeout=timedelta(hours=1),
        wait_for_completion=False,
    )
    cancel_unwanted_job = MistralBatchCancelJobOperator(
        task_id="cancel_unwanted_job",
        job_id="{{ ti.xcom_pull(task_ids='start_unwanted_job', key='batch_job_id') }}",
        wait_for_cancellation=True,
        poll_interval=POLL_SECONDS,
    )
    start_job >> wait_for_job
    start_unwanted_job >> cancel_unwanted_job


example_mistral_batch_sensor_cancel()
