"""Airflow's common-ai LLMBatchOperator on Mistral, through this provider's adapter, under a
real Airflow (dag.test: tasks and triggers in process) against the emulator.

The DAGs are in dag_files/common_ai_batch.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.ai.batch import state

from airflow_provider_mistral_batch.common_ai.adapter import MistralBatchAdapter
from airflow_provider_mistral_batch.models import BatchJob, BatchJobStatus
from mistral_batch_emulator import RunningEmulator
from mistral_batch_emulator.dagtest import load_dag, task_states, xcom_value

pytestmark = pytest.mark.integration

LABELS = {"positive", "negative", "neutral"}


@pytest.fixture
def emulator_adapter(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MistralBatchAdapter]:
    """The two connections the DAGs use, both to the emulator; an adapter to look at its jobs."""
    mistral = {"conn_type": "mistral", "host": emulator.base_url, "password": emulator.api_key}
    # A pydanticai connection for Mistral typically names the /v1 root.
    pydanticai = {**mistral, "conn_type": "pydanticai", "host": f"{emulator.base_url}/v1"}
    monkeypatch.setenv("AIRFLOW_CONN_MISTRAL_AI", json.dumps(mistral))
    monkeypatch.setenv("AIRFLOW_CONN_PYDANTICAI_MISTRAL", json.dumps(pydanticai))
    adapter = MistralBatchAdapter(api_key=emulator.api_key, base_url=emulator.base_url)
    yield adapter
    adapter.close()


def _jobs(adapter: MistralBatchAdapter) -> list[BatchJob]:
    return list(adapter.hook.list_batch_jobs())


def _run(dags_folder: Path, dag_id: str, results: Path, when: datetime | None = None) -> Any:
    conf = {"result_path": f"file://{results}"}
    if when is None:
        return load_dag(dags_folder, dag_id).test(run_conf=conf)
    return load_dag(dags_folder, dag_id).test(run_after=when, logical_date=when, run_conf=conf)


def _rows(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    path = Path(manifest["result_uri"].removeprefix("file://"))
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return sorted(rows, key=lambda row: row["index"])


def test_text_batches_sync_and_deferred_with_both_connection_types(
    dags_folder: Path, emulator_adapter: MistralBatchAdapter, tmp_path: Path
) -> None:
    dag_run = _run(dags_folder, "test_common_ai_text", tmp_path)
    states = task_states(dag_run)
    assert str(dag_run.state) == "success", states
    jobs = {job.id: job for job in _jobs(emulator_adapter)}
    assert len(jobs) == 2
    for task_id in ("sync_mistral_conn", "deferred_pydanticai_conn"):
        assert states[(task_id, -1)] == ("success", 1)
        manifest = xcom_value(dag_run, task_id)
        assert manifest["adapter"] == "mistral"
        assert manifest["model_id"] == "mistral:mistral-small-latest"
        assert manifest["counts"] == {
            "succeeded": 2,
            "errored": 1,
            "invalid_output": 0,
            "expired": 0,
            "cancelled": 0,
            "missing": 0,
        }
        rows = _rows(manifest)
        assert [row["status"] for row in rows] == ["success", "success", "error"]
        assert all(isinstance(row["output"], str) and row["output"] for row in rows[:2])
        assert rows[0]["usage"]["input_tokens"] > 0
        assert "no-such-model" in rows[2]["error"]["message"]
        job = jobs[manifest["batch_id"]]
        assert job.status is BatchJobStatus.SUCCESS
        # Tagged with its task, as the provider's own operator tags its jobs.
        assert job.metadata is not None
        assert job.metadata["airflow_dag_id"] == "test_common_ai_text"
        assert job.metadata["airflow_task_id"] == task_id
        assert job.metadata["idempotency_key"] == manifest["custom_id_prefix"]


def test_typed_batches_validate_each_answer(
    dags_folder: Path,
    emulator: RunningEmulator,
    emulator_adapter: MistralBatchAdapter,
    tmp_path: Path,
) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.types import DagRunType

    when = datetime(2026, 3, 1, tzinfo=UTC)
    run_id = DagRun.generate_run_id(run_type=DagRunType.MANUAL, logical_date=when, run_after=when)
    key = state.compute_identity_key(
        dag_id="test_common_ai_typed", task_id="sync_typed", run_id=run_id, map_index=-1
    )
    # Two of the sync task's answers are broken: text that is not JSON, JSON of another shape.
    prefix = state.key16(key)
    emulator.update_config(
        broken_output_custom_ids={f"{prefix}-2": "not_json", f"{prefix}-3": "wrong_shape"}
    )
    dag_run = _run(dags_folder, "test_common_ai_typed", tmp_path, when)
    states = task_states(dag_run)
    assert str(dag_run.state) == "success", states
    sync, deferred = xcom_value(dag_run, "sync_typed"), xcom_value(dag_run, "deferred_typed")
    assert sync["custom_id_prefix"] == prefix
    assert (sync["structured"], deferred["structured"]) == (True, True)
    assert deferred["counts"]["succeeded"] == 4
    assert (sync["counts"]["succeeded"], sync["counts"]["invalid_output"]) == (2, 2)
    for row in _rows(sync)[:2] + _rows(deferred):
        assert row["status"] == "success", row
        assert row["output"]["label"] in LABELS
        assert 0 <= row["output"]["confidence"] <= 1
    for broken in _rows(sync)[2:]:
        assert broken["status"] == "invalid_output"
        assert broken["output"] is None
        assert broken["error"]["stage"] == "output_validation"
        assert broken["raw_output"]
    assert "Expecting value" in _rows(sync)[2]["error"]["message"]  # json.loads: not JSON


def test_a_crash_between_submit_and_state_write_reattaches_to_the_one_job(
    dags_folder: Path, emulator_adapter: MistralBatchAdapter, tmp_path: Path
) -> None:
    dag_run = _run(dags_folder, "test_common_ai_reattach", tmp_path)
    states = task_states(dag_run)
    assert str(dag_run.state) == "success", states
    assert states[("crashing", -1)] == ("success", 2)  # the first try died
    (job,) = _jobs(emulator_adapter)  # the retry found it instead of paying twice
    manifest = xcom_value(dag_run, "crashing")
    uploads = [
        each.filename
        for each in emulator_adapter.hook.list_files()
        if each.filename == f"{manifest['custom_id_prefix']}.jsonl"
    ]
    assert len(uploads) == 1  # the input went up once
    assert manifest["batch_id"] == job.id
    assert manifest["counts"]["succeeded"] == 4
    record = state.read_state(_path(tmp_path), _key(dag_run, "crashing"))
    assert record is not None
    assert record.batch_id == job.id


def test_a_cancelled_job_fails_the_task_and_lands_what_completed(
    dags_folder: Path,
    emulator: RunningEmulator,
    emulator_adapter: MistralBatchAdapter,
    tmp_path: Path,
) -> None:
    emulator.update_config(requests_per_second=4.0)
    cancelled: list[str] = []

    def cancel_once_running() -> None:
        # Out of band, as from Mistral's console, once a few requests completed.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not cancelled:
            for job in _jobs(emulator_adapter):
                if job.completed_requests >= 2:
                    emulator_adapter.cancel_batch(job.id)
                    cancelled.append(job.id)
            time.sleep(0.1)

    watcher = threading.Thread(target=cancel_once_running, daemon=True)
    watcher.start()
    dag_run = _run(dags_folder, "test_common_ai_cancel", tmp_path)
    watcher.join(timeout=30)
    assert cancelled
    states = task_states(dag_run)
    assert str(dag_run.state) == "failed", states
    assert states[("cancelled", -1)] == ("failed", 1)
    (job,) = _jobs(emulator_adapter)
    assert job.status is BatchJobStatus.CANCELLED
    (results,) = tmp_path.glob("*.jsonl")
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    statuses = [row["status"] for row in rows]
    assert len(rows) == 12
    assert statuses.count("success") == job.succeeded_requests >= 2
    assert statuses.count("missing") == 12 - job.succeeded_requests
    # common-ai cleared its state: a retry would submit anew.
    assert state.read_state(_path(tmp_path), _key(dag_run, "cancelled")) is None


def _path(folder: Path) -> Any:
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(f"file://{folder}")


def _key(dag_run: Any, task_id: str) -> str:
    return state.compute_identity_key(
        dag_id=dag_run.dag_id, task_id=task_id, run_id=dag_run.run_id, map_index=-1
    )


def test_the_common_ai_example_labels_every_review_deferred(
    dags_folder: Path, mistral_default: RunningEmulator
) -> None:
    # example_dags/example_common_ai_mistral.py, as a user copies it: the mistral_default
    # connection, a typed output, deferred (common-ai's trigger rebuilds our adapter by name).
    dag_run = load_dag(dags_folder, "example_common_ai_mistral").test()
    assert str(dag_run.state) == "success", task_states(dag_run)
    manifest = xcom_value(dag_run, "label_reviews")
    assert manifest["adapter"] == "mistral"
    assert manifest["counts"]["succeeded"] == 3
    rows = _rows(manifest)
    assert [row["status"] for row in rows] == ["success"] * 3
    assert all(row["output"]["sentiment"] in LABELS for row in rows)
    assert all(1 <= row["output"]["score"] <= 5 for row in rows)
    counts = xcom_value(dag_run, "count_labels")
    assert sum(counts.values()) == 3
    assert set(counts) <= LABELS
