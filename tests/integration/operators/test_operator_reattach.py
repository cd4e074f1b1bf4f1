"""A new try of the same task reattaches to the job of an earlier try instead of paying twice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import TASK_KEY_METADATA, BatchJobStatus
from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
from mistral_batch_emulator import RunningEmulator
from tests.helpers import wait_for_terminal, write_jsonl
from tests.integration.operators.support import (
    FakeTaskInstance,
    OperatorLog,
    chat_requests,
    lose_inputs_after_create,
)

pytestmark = pytest.mark.integration


def _job_ids(hook: MistralBatchHook) -> list[str]:
    return [job.id for job in hook.list_batch_jobs()]


def _created(conn: RunningEmulator) -> int:
    return len([r for r in conn.requests if r.method == "POST" and r.path == "/v1/batch/jobs"])


def test_a_retry_with_the_same_input_reattaches_to_the_finished_job(
    capture_log: Callable[[Any], OperatorLog],
    make_op: Callable[..., MistralBatchOperator],
    hook: MistralBatchHook,
    conn: RunningEmulator,
) -> None:
    first = make_op().execute({"ti": FakeTaskInstance(try_number=1)})

    retry = make_op()
    log = capture_log(retry)
    ti = FakeTaskInstance(try_number=2)
    second = retry.execute({"ti": ti})

    assert second == first
    assert _job_ids(hook) == [first["job_id"]]
    assert _created(conn) == 1
    assert retry.job_id == first["job_id"]
    assert ti.pushed["batch_job_id"] == first["job_id"]
    assert ti.pushed["output_file"] == first["output_file"]
    assert (
        f"Reattaching to Mistral batch job {first['job_id']} (status SUCCESS) created by an "
        "earlier try"
    ) in log.at("info")


def test_a_retry_reattaches_to_a_queued_job_and_waits_for_it(
    capture_log: Callable[[Any], OperatorLog],
    make_op: Callable[..., MistralBatchOperator],
    hook: MistralBatchHook,
    conn: RunningEmulator,
) -> None:
    conn.update_config(queue_seconds=60)
    queued = make_op(wait_for_completion=False).execute({"ti": FakeTaskInstance()})
    assert queued["status"] == "QUEUED"

    retry = make_op(wait_for_completion=False)
    log = capture_log(retry)
    again = retry.execute({"ti": FakeTaskInstance(try_number=2)})
    assert again["job_id"] == queued["job_id"]
    assert _created(conn) == 1
    assert any(line.startswith("Reattaching") and "QUEUED" in line for line in log.at("info"))


def test_a_different_map_index_gets_its_own_job(
    make_op: Callable[..., MistralBatchOperator], hook: MistralBatchHook
) -> None:
    first = make_op().execute({"ti": FakeTaskInstance(map_index=0)})
    second = make_op().execute({"ti": FakeTaskInstance(map_index=1)})
    assert first["job_id"] != second["job_id"]
    assert sorted(_job_ids(hook)) == sorted([first["job_id"], second["job_id"]])
    assert (hook.get_batch_job(second["job_id"]).metadata or {})["airflow_map_index"] == "1"


@pytest.mark.parametrize(
    "identity",
    [{"run_id": "scheduled__2026-11-02"}, {"task_id": "other"}, {"dag_id": "other_dag"}],
)
def test_a_different_task_instance_gets_its_own_job(
    make_op: Callable[..., MistralBatchOperator], hook: MistralBatchHook, identity: dict[str, Any]
) -> None:
    first = make_op().execute({"ti": FakeTaskInstance()})
    second = make_op().execute({"ti": FakeTaskInstance(**identity)})
    assert first["job_id"] != second["job_id"]
    assert len(_job_ids(hook)) == 2


def test_different_requests_get_a_new_job(
    make_op: Callable[..., MistralBatchOperator], hook: MistralBatchHook
) -> None:
    first = make_op(requests=chat_requests(3)).execute({"ti": FakeTaskInstance()})
    second = make_op(requests=chat_requests(3, prefix="q")).execute(
        {"ti": FakeTaskInstance(try_number=2)}
    )
    assert first["job_id"] != second["job_id"]
    assert len(_job_ids(hook)) == 2


def test_a_different_model_gets_a_new_job(
    make_op: Callable[..., MistralBatchOperator], hook: MistralBatchHook
) -> None:
    first = make_op().execute({"ti": FakeTaskInstance()})
    second = make_op(model="mistral-large-latest").execute({"ti": FakeTaskInstance()})
    assert first["job_id"] != second["job_id"]


def test_same_input_file_content_reattaches(
    make_op: Callable[..., MistralBatchOperator],
    hook: MistralBatchHook,
    conn: RunningEmulator,
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.jsonl"
    write_jsonl(source, ["a", "b"])
    first = make_op(input_path=source).execute({"ti": FakeTaskInstance()})
    second = make_op(input_path=source).execute({"ti": FakeTaskInstance(try_number=2)})
    assert second["job_id"] == first["job_id"]
    # Reattaching happens before the upload: the file was uploaded once.
    uploads = [r for r in conn.requests if r.method == "POST" and r.path == "/v1/files"]
    assert len(uploads) == 1

    write_jsonl(source, ["a", "b", "c"])
    third = make_op(input_path=source).execute({"ti": FakeTaskInstance(try_number=3)})
    assert third["job_id"] != first["job_id"]


def test_force_new_job_creates_a_second_job(
    make_op: Callable[..., MistralBatchOperator], hook: MistralBatchHook, conn: RunningEmulator
) -> None:
    first = make_op().execute({"ti": FakeTaskInstance()})
    first_key = (hook.get_batch_job(first["job_id"]).metadata or {})[TASK_KEY_METADATA]
    looked_up_before = sum(first_key in r.query for r in conn.requests)
    second = make_op(force_new_job=True).execute({"ti": FakeTaskInstance(try_number=2)})
    assert second["job_id"] != first["job_id"]
    assert len(_job_ids(hook)) == 2
    assert _created(conn) == 2
    # force_new_job does not even look for the earlier job, and its job has a key of its
    # own, so the duplicate checks of either never take the other for a duplicate.
    assert sum(first_key in r.query for r in conn.requests) == looked_up_before
    second_key = (hook.get_batch_job(second["job_id"]).metadata or {})[TASK_KEY_METADATA]
    assert second_key != first_key
    assert hook.get_batch_job(first["job_id"]).status == BatchJobStatus.SUCCESS


def test_a_cancelled_job_is_not_reattached(
    capture_log: Callable[[Any], OperatorLog],
    make_op: Callable[..., MistralBatchOperator],
    hook: MistralBatchHook,
    conn: RunningEmulator,
) -> None:
    conn.update_config(queue_seconds=60)
    first = make_op(wait_for_completion=False).execute({"ti": FakeTaskInstance()})
    hook.cancel_batch_job(first["job_id"])
    assert wait_for_terminal(hook, first["job_id"]).status == BatchJobStatus.CANCELLED

    conn.update_config(queue_seconds=0)
    retry = make_op()
    log = capture_log(retry)
    second = retry.execute({"ti": FakeTaskInstance(try_number=2)})
    assert second["job_id"] != first["job_id"]
    assert second["status"] == "SUCCESS"
    assert not any(line.startswith("Reattaching") for line in log.at("info"))


def test_a_failed_job_is_not_reattached(
    make_op: Callable[..., MistralBatchOperator],
    hook: MistralBatchHook,
    conn: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.jsonl"
    write_jsonl(source, ["a", "b"])
    for try_number in (1, 2):
        op = make_op(input_path=source)
        lose_inputs_after_create(monkeypatch, op, conn)
        with pytest.raises(Exception, match="ended FAILED"):
            op.execute({"ti": FakeTaskInstance(try_number=try_number)})
    assert len(_job_ids(hook)) == 2


@pytest.mark.parametrize(
    "changed",
    [
        {"metadata": {"team": "other"}},
        {"timeout": timedelta(hours=12)},
        {"job_kwargs": {"agent_id": "agent-7"}},
    ],
)
def test_a_retry_with_other_job_settings_gets_a_new_job(
    make_op: Callable[..., MistralBatchOperator],
    hook: MistralBatchHook,
    changed: dict[str, Any],
) -> None:
    first = make_op(metadata={"team": "data"}).execute({"ti": FakeTaskInstance(try_number=1)})
    settings = {"metadata": {"team": "data"}, **changed}
    second = make_op(**settings).execute({"ti": FakeTaskInstance(try_number=2)})
    assert second["job_id"] != first["job_id"]
    assert sorted(_job_ids(hook)) == sorted([first["job_id"], second["job_id"]])
