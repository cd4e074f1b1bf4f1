"""Test DAG of the hostile-server tests: a sensor that records a job of the ``mistral_hostile``
connection (tests/hostile_server.py, a server that echoes the API key), so its task instance
tab reads that job. The job id comes from the run's conf (``{"job_id": ...}``)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_mistral_batch.sensors.batch import MistralBatchJobSensor


@dag(
    dag_id="test_plugin_hostile_server",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"job_id": "hostile-job"},
)
def test_plugin_hostile_server() -> None:
    MistralBatchJobSensor(
        task_id="watch",
        job_id="{{ params.job_id }}",
        mistral_conn_id="mistral_hostile",  # tests/hostile_server.CONN_ID
        deferrable=False,
        poke_interval=1,
        timeout=120,
        max_failed_ratio=None,  # the server's jobs have a failed request
    )


test_plugin_hostile_server()
