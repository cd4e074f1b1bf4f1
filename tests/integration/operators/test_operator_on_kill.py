"""on_kill: a killed task cancels its job, unless told not to or killed by an execution timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_mistral_batch.batch import blocking_wait
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import BatchJobStatus
from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
from airflow_provider_mistral_batch.utils.compat import AirflowFailException, AirflowTaskTimeout
from mistral_batch_emulator import Fault, RunningEmulator
from tests.helpers import wait_for_terminal
from tests.integration.operators.support import (
    FakeTaskInstance,
    OperatorLog,
    cancel_requests,
)

pytestmark = pytest.mark.integration


def test_on_kill_cancels_the_running_job(
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    hook: MistralBatchHook,
    queued_job: str,
) -> None:
    op = make_op()
    op.job_id = queued_job
    op.on_kill()
    assert len(cancel_requests(conn, queued_job)) == 1
    assert wait_for_terminal(hook, queued_job).status == BatchJobStatus.CANCELLED


def test_on_kill_with_cancel_on_kill_false_leaves_the_job(
    capture_log: Callable[[Any], OperatorLog],
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    hook: MistralBatchHook,
    queued_job: str,
) -> None:
    op = make_op(cancel_on_kill=False)
    log = capture_log(op)
    op.job_id = queued_job
    op.on_kill()
    assert cancel_requests(conn, queued_job) == []
    assert hook.get_batch_job(queued_job).status == BatchJobStatus.QUEUED
    assert log.at("info") == [
        f"Leaving Mistral batch job {queued_job} running (cancel_on_kill=False)"
    ]


def test_on_kill_after_an_execution_timeout_leaves_the_job_for_the_retry(
    capture_log: Callable[[Any], OperatorLog],
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    hook: MistralBatchHook,
    queued_job: str,
) -> None:
    op = make_op()
    log = capture_log(op)
    op.job_id = queued_job
    op._execution_timed_out = True
    op.on_kill()
    assert cancel_requests(conn, queued_job) == []
    assert hook.get_batch_job(queued_job).status == BatchJobStatus.QUEUED
    assert any("Execution timeout" in line and queued_job in line for line in log.at("info"))


def test_on_kill_before_any_job_sends_nothing(
    make_op: Callable[..., MistralBatchOperator], conn: RunningEmulator
) -> None:
    make_op().on_kill()
    assert conn.requests == []


def test_on_kill_survives_a_failed_cancel(
    capture_log: Callable[[Any], OperatorLog],
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    queued_job: str,
) -> None:
    conn.set_faults([Fault(kind="status", status_code=500, method="POST")])
    op = make_op()
    log = capture_log(op)
    op.job_id = queued_job
    op.on_kill()  # must not raise: the task is being killed anyway
    assert len(log.at("warning")) == 1
    assert log.at("warning")[0].startswith(f"Could not cancel Mistral batch job {queued_job}:")


def _run_in_thread(
    op: MistralBatchOperator, ti: FakeTaskInstance
) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = op.execute({"ti": ti})
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    limit = time.monotonic() + 10
    while op.job_id is None and thread.is_alive():
        if time.monotonic() > limit:
            pytest.fail("execute did not create a job within 10 s")
        time.sleep(0.01)
    return thread, outcome


def test_killing_a_blocking_execute_cancels_its_job_and_the_task_fails(
    make_op: Callable[..., MistralBatchOperator], conn: RunningEmulator, hook: MistralBatchHook
) -> None:
    conn.update_config(queue_seconds=60)
    op = make_op()
    ti = FakeTaskInstance()
    thread, outcome = _run_in_thread(op, ti)
    job_id = op.job_id
    assert job_id is not None

    op.on_kill()
    thread.join(timeout=20)
    assert not thread.is_alive()
    error = outcome.get("error")
    assert isinstance(error, AirflowFailException)
    assert f"Mistral batch job {job_id} ended CANCELLED" in str(error)
    assert hook.get_batch_job(job_id).status == BatchJobStatus.CANCELLED
    assert ti.pushed["batch_job_id"] == job_id


def test_a_job_cancelled_elsewhere_fails_the_task_without_retry(
    make_op: Callable[..., MistralBatchOperator], conn: RunningEmulator, hook: MistralBatchHook
) -> None:
    conn.update_config(queue_seconds=60)
    op = make_op()
    thread, outcome = _run_in_thread(op, FakeTaskInstance())
    assert op.job_id is not None
    hook.cancel_batch_job(op.job_id)
    thread.join(timeout=20)
    assert isinstance(outcome.get("error"), AirflowFailException)
    assert "ended CANCELLED" in str(outcome["error"])


def test_execution_timeout_while_waiting_leaves_the_job_running(
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    hook: MistralBatchHook,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn.update_config(queue_seconds=60)

    def timed_out(*args: Any, **kwargs: Any) -> Any:
        raise AirflowTaskTimeout()

    # Airflow raises AirflowTaskTimeout inside execute, then calls on_kill.
    monkeypatch.setattr(blocking_wait, "wait_blocking", timed_out)
    op = make_op()
    with pytest.raises(AirflowTaskTimeout):
        op.execute({"ti": FakeTaskInstance()})
    assert op.job_id is not None
    assert op._execution_timed_out is True
    op.on_kill()
    assert cancel_requests(conn, op.job_id) == []
    assert hook.get_batch_job(op.job_id).status == BatchJobStatus.QUEUED
