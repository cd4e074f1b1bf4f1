"""Duplicate jobs (a try died while its create was in flight, the server committed that create
late, and the retry made its own; or an ambiguous create whose first attempt became a job after
the retry made one): one is kept by the one rule of batch.identity, the other cancelled."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_mistral_batch.batch import identity
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import IDEMPOTENCY_KEY_METADATA, BatchJob, BatchJobStatus
from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
from mistral_batch_emulator import Fault, RunningEmulator
from tests.helpers import FAST_RETRIES, set_connection, wait_for_terminal
from tests.integration.operators.support import (
    CHAT,
    MODEL,
    FakeTaskInstance,
    OperatorLog,
    chat_requests,
)

pytestmark = pytest.mark.integration

STOPPED = (BatchJobStatus.CANCELLATION_REQUESTED, BatchJobStatus.CANCELLED)


def _twin_of(hook: MistralBatchHook, job: BatchJob, count: int) -> BatchJob:
    """A job with ``job``'s task key, as the late create of a dead try would make it."""
    # The emulator's creation times are whole seconds: make the twin the younger for sure.
    time.sleep(1.1)
    metadata = {k: v for k, v in (job.metadata or {}).items() if k != IDEMPOTENCY_KEY_METADATA}
    return hook.create_batch_job(
        endpoint=CHAT, model=MODEL, requests=chat_requests(count), metadata=metadata
    )


def test_reattaching_keeps_the_older_job_and_cancels_its_duplicate(
    capture_log: Callable[[Any], OperatorLog],
    make_op: Callable[..., MistralBatchOperator],
    hook: MistralBatchHook,
    conn: RunningEmulator,
) -> None:
    conn.update_config(requests_per_second=1)
    first = make_op(wait_for_completion=False, requests=chat_requests(30)).execute(
        {"ti": FakeTaskInstance()}
    )
    twin = _twin_of(hook, hook.get_batch_job(first["job_id"]), 30)

    retry = make_op(wait_for_completion=False, requests=chat_requests(30))
    log = capture_log(retry)
    again = retry.execute({"ti": FakeTaskInstance(try_number=2)})

    assert again["job_id"] == first["job_id"]
    assert hook.get_batch_job(twin.id).status in STOPPED
    assert hook.get_batch_job(first["job_id"]).status == BatchJobStatus.RUNNING
    assert any(
        line.startswith(f"Cancelling Mistral batch job {twin.id}: a duplicate of job ")
        for line in log.at("warning")
    )


def test_the_wait_cancels_a_duplicate_that_appears_after_the_create(
    capture_log: Callable[[Any], OperatorLog],
    make_op: Callable[..., MistralBatchOperator],
    hook: MistralBatchHook,
    conn: RunningEmulator,
) -> None:
    conn.update_config(requests_per_second=5)
    op = make_op(requests=chat_requests(30), poll_interval=0.1)
    log = capture_log(op)
    twins: list[BatchJob] = []

    def commit_late() -> None:
        with MistralBatchHook("mistral_default") as other:
            limit = time.monotonic() + 30
            while time.monotonic() < limit and not (found := list(other.list_batch_jobs())):
                time.sleep(0.05)
            twins.append(_twin_of(other, found[0], 30))

    late = threading.Thread(target=commit_late)
    late.start()
    result = op.execute({"ti": FakeTaskInstance()})
    late.join()

    assert result["status"] == "SUCCESS"
    twin = wait_for_terminal(hook, twins[0].id)
    assert twin.id != result["job_id"]
    # Cancelled before it did all the work again.
    assert twin.status == BatchJobStatus.CANCELLED
    assert twin.completed_requests < twin.total_requests
    assert any(
        line.startswith(f"Cancelling Mistral batch job {twin.id}: a duplicate of job ")
        for line in log.at("warning")
    )


def test_a_wait_that_follows_the_older_job_reports_it_in_xcom(
    capture_log: Callable[[Any], OperatorLog],
    make_op: Callable[..., MistralBatchOperator],
    hook: MistralBatchHook,
    conn: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn.update_config(requests_per_second=5)
    older = make_op(wait_for_completion=False, requests=chat_requests(20)).execute(
        {"ti": FakeTaskInstance()}
    )
    # A listing that lags behind the create (the older job not listed yet when the retry
    # looks): the retry makes its own, younger job.
    monkeypatch.setattr(identity, "find_job_to_reattach", lambda *args: None)
    time.sleep(1.1)  # creation times are whole seconds: the retry's job is the younger
    retry = make_op(requests=chat_requests(20), poll_interval=0.1)
    log = capture_log(retry)
    ti = FakeTaskInstance(try_number=2)
    result = retry.execute({"ti": ti})

    mine = [job for job in hook.list_batch_jobs() if job.id != older["job_id"]]
    assert len(mine) == 1
    assert result["job_id"] == older["job_id"]
    assert result["status"] == "SUCCESS"
    assert ti.pushed["batch_job_id"] == older["job_id"]
    assert wait_for_terminal(hook, mine[0].id).status == BatchJobStatus.CANCELLED
    assert (
        f"Following Mistral batch job {older['job_id']} instead of {mine[0].id}: both carry "
        "this task's key and the former is kept"
    ) in log.at("warning")


def test_a_job_an_ambiguous_create_makes_after_it_returned_is_cancelled_by_the_wait(
    capture_log: Callable[[Any], OperatorLog],
    make_op: Callable[..., MistralBatchOperator],
    hook: MistralBatchHook,
    conn: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The create's first POST times out and becomes a job only later, after the retry made
    # one: the create returns at once (no wait in the worker slot) and the wait's duplicate
    # check finds the late job and cancels it.
    set_connection(
        monkeypatch, conn, conn_id="mistral_default", extra={"timeout": 0.5, "max_retries": 2}
    )
    conn.update_config(requests_per_second=5)
    conn.set_faults(
        [Fault(kind="slow_commit", delay_seconds=1.0, method="POST", path_prefix="/v1/batch/jobs")]
    )
    op = make_op(requests=chat_requests(30), poll_interval=0.1)
    log = capture_log(op)
    result = op.execute({"ti": FakeTaskInstance()})

    assert result["status"] == "SUCCESS"
    jobs = list(hook.list_batch_jobs())
    assert len(jobs) == 2, "the late job was created too"
    (late,) = [job for job in jobs if job.id != result["job_id"]]
    late = wait_for_terminal(hook, late.id)
    assert late.status == BatchJobStatus.CANCELLED
    assert late.completed_requests < late.total_requests
    assert any(
        line.startswith(
            f"Cancelling Mistral batch job {late.id}: a duplicate of job {result['job_id']}, "
        )
        for line in log.at("warning")
    )


def test_a_retried_create_that_finds_two_jobs_keeps_one_by_the_rule_and_cancels_the_other(
    capture_log: Callable[[Any], OperatorLog],
    make_op: Callable[..., MistralBatchOperator],
    hook: MistralBatchHook,
    conn: RunningEmulator,
) -> None:
    # Two ambiguous attempts of one create both became jobs; the third finds them by its
    # idempotency key, and the domain's chooser keeps the older and cancels the younger.
    conn.update_config(queue_seconds=60)
    token = "t" * 32
    older = hook.create_batch_job(
        endpoint=CHAT, model=MODEL, requests=chat_requests(2), idempotency_key=token
    )
    time.sleep(1.1)  # creation times are whole seconds: the second is the younger
    younger = hook.create_batch_job(
        endpoint=CHAT, model=MODEL, requests=chat_requests(2), idempotency_key=token
    )
    conn.set_faults(
        [Fault(kind="status", status_code=503, method="POST", path_prefix="/v1/batch/jobs")]
    )
    op = make_op()  # for its logger
    log = capture_log(op)
    with MistralBatchHook("mistral_default", retry_policy=FAST_RETRIES) as retrying:
        job = retrying.create_batch_job(
            endpoint=CHAT,
            model=MODEL,
            requests=chat_requests(2),
            idempotency_key=token,
            choose=identity.duplicate_chooser(retrying, op.log),
        )
    assert job.id == older.id
    assert wait_for_terminal(hook, younger.id).status == BatchJobStatus.CANCELLED
    assert hook.get_batch_job(older.id).status == BatchJobStatus.QUEUED
    assert (
        f"Cancelling Mistral batch job {younger.id}: a duplicate of job {older.id}, which is "
        "kept (it is the older)"
    ) in log.at("warning")
