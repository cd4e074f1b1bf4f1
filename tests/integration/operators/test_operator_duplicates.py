"""Two jobs with one task key (a try died while its create was in flight, the server committed
that create late, and the retry made its own): one is kept, the other cancelled."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_mistral_batch.batch import identity as reattach
from airflow_provider_mistral_batch.hooks.mistral_batch import (
    IDEMPOTENCY_METADATA_KEY,
    MistralBatchHook,
)
from airflow_provider_mistral_batch.models import BatchJob, BatchJobStatus
from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
from mistral_batch_emulator import RunningEmulator
from tests.helpers import wait_for_terminal
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
    metadata = {k: v for k, v in (job.metadata or {}).items() if k != IDEMPOTENCY_METADATA_KEY}
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
    monkeypatch.setattr(reattach, "find_job_to_reattach", lambda *args: None)
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
