"""Test DAG of the UI plugin: one blocking batch job with results, so its task instance has
every XCom the tab reads (job ids, connection id, usage)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag

from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator

RESULTS = Path(os.environ.get("AIRFLOW_HOME", "/tmp")) / "plugin-ui-results"


@dag(dag_id="test_plugin_ui", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def test_plugin_ui() -> None:
    MistralBatchOperator(
        task_id="ask",
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        requests=[
            {
                "custom_id": f"q-{i}",
                "body": {"max_tokens": 8, "messages": [{"role": "user", "content": f"hi {i}"}]},
            }
            for i in range(4)
        ],
        deferrable=False,
        poll_interval=0.2,
        # The tests make one request fail, for the tab to show it; the task still succeeds.
        max_failed_ratio=0.25,
        results_path=str(RESULTS / "{{ run_id | replace(':', '_') | replace('+', '_') }}.jsonl"),
    )


test_plugin_ui()


@dag(
    dag_id="test_plugin_ui_started",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
)
def test_plugin_ui_started() -> None:
    MistralBatchOperator(
        task_id="start",
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        requests=[
            {
                "custom_id": f"s-{i}",
                "body": {"max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
            }
            for i in range(5)
        ],
        wait_for_completion=False,
    )


test_plugin_ui_started()


@dag(
    dag_id="test_plugin_ui_bad_input",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
)
def test_plugin_ui_bad_input() -> None:
    # Two requests with one custom_id: the operator fails on its input, before any upload.
    body = {"max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    MistralBatchOperator(
        task_id="bad",
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        requests=[{"custom_id": "twice", "body": body}, {"custom_id": "twice", "body": body}],
    )


test_plugin_ui_bad_input()


@dag(
    dag_id="test_plugin_ui_rounds",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
)
def test_plugin_ui_rounds() -> None:
    # The tests make one request fail every time: it is sent again once, then the task
    # succeeds anyway, with two rounds for the tab to show.
    MistralBatchOperator(
        task_id="rounds",
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        requests=[
            {
                "custom_id": f"t-{i}",
                "body": {"max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
            }
            for i in range(3)
        ],
        deferrable=False,
        poll_interval=0.2,
        max_failed_ratio=None,
        retry_failed_requests=1,
    )


test_plugin_ui_rounds()
