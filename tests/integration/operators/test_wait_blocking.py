"""The blocking wait: the operators' driver of the waiting core, against the emulator."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_mistral_batch.batch.blocking_wait import wait_blocking, wait_for_jobs
from airflow_provider_mistral_batch.batch.waiting import Ended, GaveUp, JobWatch, Outcome, TimedOut
from airflow_provider_mistral_batch.exceptions import (
    MistralAPIError,
    MistralAuthenticationError,
    MistralNotFoundError,
    MistralServerError,
    MistralValidationError,
)
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import BatchJob, BatchJobStatus
from mistral_batch_emulator import Fault, RunningEmulator
from tests.helpers import (
    CONN_ID,
    FAST_RETRIES,
    SleepRecorder,
    create_embeddings_job,
    running_job,
    set_connection,
)

JOB_ID = "1a2b"  # the id of tests.helpers.running_job
JOBS = "/v1/batch/jobs"
LOG = logging.getLogger("tests.wait_blocking")
REFUSED = MistralValidationError(400, "job already ended")


def wait(
    hook: Any,
    job: BatchJob,
    *,
    sleep: Callable[[float], None] = time.sleep,
    **options: Any,
) -> Outcome:
    """Wait for ``job`` as the operator does, with ``options`` for :class:`JobWatch`."""
    return wait_blocking(hook, JobWatch(job.id, log=LOG, **options), job, sleep=sleep)


def ended(outcome: Outcome) -> BatchJob:
    assert isinstance(outcome, Ended), outcome
    return outcome.job


def lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOG.name and r.levelno == level]


@pytest.fixture(autouse=True)
def _capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOG.name)


@pytest.fixture
def hook(emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[MistralBatchHook]:
    set_connection(monkeypatch, emulator, extra={"timeout": 5})
    with MistralBatchHook(CONN_ID, retry_policy=FAST_RETRIES) as made:
        made._sleep = SleepRecorder()
        yield made


def _unknown_job() -> BatchJob:
    return running_job(id=str(uuid.uuid4()), total_requests=0, completed_requests=0)


def _polls(emulator: RunningEmulator, job_id: str) -> list[int | None]:
    return [
        r.status_code
        for r in emulator.requests
        if r.method == "GET" and r.path == f"{JOBS}/{job_id}"
    ]


def _cancels(emulator: RunningEmulator, job_id: str) -> int:
    return sum(
        1 for r in emulator.requests if r.method == "POST" and r.path == f"{JOBS}/{job_id}/cancel"
    )


@pytest.mark.integration
def test_returns_the_ended_job(hook: MistralBatchHook, caplog: pytest.LogCaptureFixture) -> None:
    job = create_embeddings_job(hook)
    done = ended(wait(hook, job, poll_interval=0.02, deadline=time.time() + 30))
    assert done.status is BatchJobStatus.SUCCESS
    assert done.id == job.id
    assert done.succeeded_requests == 3
    infos = lines(caplog, logging.INFO)
    assert infos[0] == f"job {job.id}: QUEUED, input not validated yet"
    assert infos[-1] == f"job {job.id}: SUCCESS, completed 3/3 (100.0%), 0 failed"
    assert len(infos) == len(set(infos))  # each line once
    assert lines(caplog, logging.WARNING) == []


@pytest.mark.integration
def test_an_ended_job_is_not_polled(hook: MistralBatchHook, emulator: RunningEmulator) -> None:
    job = create_embeddings_job(hook)
    done = hook.get_batch_job(job.id)
    while not done.is_terminal:
        time.sleep(0.02)
        done = hook.get_batch_job(job.id)
    emulator.clear_requests()
    calls: list[float] = []
    again = ended(wait(hook, done, poll_interval=0.02, sleep=calls.append))
    assert again is done
    assert calls == []
    assert emulator.requests == []


@pytest.mark.integration
def test_cancels_at_the_deadline(
    hook: MistralBatchHook, emulator: RunningEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.update_config(requests_per_second=1)
    job = create_embeddings_job(hook, count=50)
    outcome = wait(hook, job, poll_interval=0.05, deadline=time.time() + 0.5)
    assert isinstance(outcome, TimedOut)
    assert re.fullmatch(
        rf"deadline passed while Mistral batch job {job.id} was still (QUEUED|RUNNING); "
        "cancellation requested",
        outcome.message,
    )
    assert outcome.message in lines(caplog, logging.WARNING)
    assert _cancels(emulator, job.id) == 1
    cancelled = (BatchJobStatus.CANCELLATION_REQUESTED, BatchJobStatus.CANCELLED)
    assert outcome.job is not None
    assert outcome.job.status in cancelled
    assert hook.get_batch_job(job.id).status in cancelled


@pytest.mark.integration
def test_can_leave_the_job_running_at_the_deadline(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    emulator.update_config(requests_per_second=1)
    job = create_embeddings_job(hook, count=50)
    outcome = wait(
        hook, job, poll_interval=0.05, deadline=time.time() + 0.3, cancel_on_deadline=False
    )
    assert isinstance(outcome, TimedOut)
    assert outcome.message.startswith(f"deadline passed while Mistral batch job {job.id}")
    assert "cancel" not in outcome.message
    assert _cancels(emulator, job.id) == 0
    assert hook.get_batch_job(job.id).status is BatchJobStatus.RUNNING


@pytest.mark.integration
def test_reports_the_deadline_when_the_cancel_fails(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    emulator.update_config(requests_per_second=1)
    job = create_embeddings_job(hook, count=50)
    cancel_path = f"{JOBS}/{job.id}/cancel"
    emulator.set_faults(
        [Fault(kind="status", status_code=503, method="POST", path_prefix=cancel_path)] * 4
    )
    outcome = wait(hook, job, poll_interval=0.05, deadline=time.time())
    assert isinstance(outcome, TimedOut)
    assert outcome.message.startswith(f"deadline passed while Mistral batch job {job.id} was still")
    assert "could not cancel it: Mistral API error 503" in outcome.message


@pytest.mark.integration
def test_tolerates_transient_errors(
    hook: MistralBatchHook, emulator: RunningEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    job = create_embeddings_job(hook)
    # FAST_RETRIES makes 4 attempts per poll: 8 faults are two failed polls in a row.
    emulator.set_faults(
        [Fault(kind="status", status_code=503, method="GET", path_prefix=f"{JOBS}/{job.id}")] * 8
    )
    outcome = wait(
        hook, job, poll_interval=0.01, deadline=time.time() + 30, max_consecutive_errors=3
    )
    assert ended(outcome).status is BatchJobStatus.SUCCESS
    warnings = lines(caplog, logging.WARNING)
    assert len(warnings) == 2
    assert warnings[0].startswith(f"Polling Mistral batch job {job.id} failed (1 in a row): ")
    assert warnings[1].startswith(f"Polling Mistral batch job {job.id} failed (2 in a row): ")
    assert "503" in warnings[0]
    assert emulator.pending_faults == []


@pytest.mark.integration
def test_gives_up_after_consecutive_errors(
    hook: MistralBatchHook, emulator: RunningEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    job = create_embeddings_job(hook)
    emulator.set_faults(
        [Fault(kind="status", status_code=503, method="GET", path_prefix=f"{JOBS}/{job.id}")] * 12
    )
    emulator.clear_requests()
    outcome = wait(hook, job, poll_interval=0.01, max_consecutive_errors=3)
    assert isinstance(outcome, GaveUp)
    assert isinstance(outcome.error, MistralServerError)
    assert outcome.error.status_code == 503
    assert len(lines(caplog, logging.WARNING)) == 3  # every failed poll, the last one too
    assert _polls(emulator, job.id) == [503] * 12


@pytest.mark.integration
@pytest.mark.parametrize("wrong_key", [False, True])
def test_gives_up_at_once_for_unknown_job_or_wrong_key(
    hook: MistralBatchHook,
    emulator: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    wrong_key: bool,
) -> None:
    job = _unknown_job()
    expected: type[MistralAPIError] = MistralNotFoundError
    if wrong_key:
        job = create_embeddings_job(hook)
        set_connection(monkeypatch, emulator, api_key="wrong-key")
        hook = MistralBatchHook(CONN_ID, retry_policy=FAST_RETRIES)
        expected = MistralAuthenticationError
    emulator.clear_requests()
    with hook:
        outcome = wait(hook, job, poll_interval=0.01)
    assert isinstance(outcome, GaveUp)
    assert isinstance(outcome.error, expected)
    assert len(_polls(emulator, job.id)) == 1
    warnings = lines(caplog, logging.WARNING)
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"Polling Mistral batch job {job.id} failed (1 in a row): HTTP 40"
    )


# ---------------------------------------------------------------- at the deadline, scripted


class ScriptedHook:
    """Stands in for the hook in one function's unit test: cancel and get give scripted jobs."""

    def __init__(self, cancel: BatchJob | Exception, get: BatchJob | Exception) -> None:
        self._cancel, self._get = cancel, get
        self.calls: list[str] = []

    def _answer(self, name: str, answer: BatchJob | Exception) -> BatchJob:
        self.calls.append(name)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def cancel_batch_job(self, job_id: str) -> BatchJob:
        return self._answer("cancel", self._cancel)

    def get_batch_job(self, job_id: str) -> BatchJob:
        return self._answer("get", self._get)


def test_returns_a_job_that_ended_at_the_deadline(caplog: pytest.LogCaptureFixture) -> None:
    hook = ScriptedHook(cancel=REFUSED, get=running_job(status="SUCCESS"))
    done = ended(wait(hook, running_job(), poll_interval=1, deadline=time.time() - 1))
    assert done.status is BatchJobStatus.SUCCESS
    assert hook.calls == ["cancel", "get"]
    assert lines(caplog, logging.WARNING) == []


def test_without_cancel_returns_a_job_someone_else_cancelled() -> None:
    hook = ScriptedHook(cancel=REFUSED, get=running_job(status="CANCELLED"))
    outcome = wait(
        hook, running_job(), poll_interval=1, deadline=time.time() - 1, cancel_on_deadline=False
    )
    assert ended(outcome).status is BatchJobStatus.CANCELLED
    assert hook.calls == ["get"]


class _Stop(Exception):
    """Ends a wait at its first sleep."""


@pytest.mark.parametrize(("age", "first_sleep"), [(0, 20.0), (1000, 100.0), (86_400, 300.0)])
def test_the_operators_blocking_wait_follows_the_poll_schedule(
    hook: MistralBatchHook, emulator: RunningEmulator, age: int, first_sleep: float
) -> None:
    # The same schedule as the trigger's and the sensor's: poll_interval, a tenth of the job's
    # age for a long-running one, at most max_poll_interval.
    emulator.update_config(queue_seconds=60)
    job = create_embeddings_job(hook)
    aged = job.model_copy(update={"created_at": job.created_at - age})
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        raise _Stop

    with pytest.raises(_Stop):
        wait_for_jobs(
            hook,
            [aged],
            ["a-task-key"],
            log=LOG,
            poll_interval=20.0,
            max_poll_interval=300.0,
            deadline=time.time() + 3600,
            max_consecutive_errors=3,
            check_duplicates_until=0.0,
            sleep=sleep,
        )
    assert sleeps == [pytest.approx(first_sleep, abs=0.5)]
