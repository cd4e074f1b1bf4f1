"""Watching a job: progress lines, transient errors, the deadline and the blocking wait."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException

from airflow_provider_mistral_batch.emulator import Fault, RunningEmulator
from airflow_provider_mistral_batch.exceptions import (
    MistralAPIError,
    MistralAuthenticationError,
    MistralConnectionError,
    MistralNotFoundError,
    MistralRateLimitError,
    MistralServerError,
    MistralValidationError,
)
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.job_watch import (
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    DeadlineReached,
    JobWatch,
    asettle_at_deadline,
    deadline_message,
    describe_progress,
    ended_on_its_own,
    format_duration,
    is_transient,
    settle_at_deadline,
    wait_until_ended,
)
from airflow_provider_mistral_batch.models import BatchJob, BatchJobStatus
from tests.helpers import CONN_ID, FAST_RETRIES, SleepRecorder, set_connection

JOB_ID = "1a2b"
JOBS = "/v1/batch/jobs"


def make_job(**changes: Any) -> BatchJob:
    fields: dict[str, Any] = {
        "id": JOB_ID,
        "input_files": [],
        "endpoint": "/v1/embeddings",
        "errors": [],
        "status": "RUNNING",
        "created_at": 1_700_000_000,
        "total_requests": 100_000,
        "completed_requests": 12_345,
        "succeeded_requests": 12_305,
        "failed_requests": 40,
    }
    fields.update(changes)
    return BatchJob.model_validate(fields)


# ---------------------------------------------------------------- describe_progress


def test_progress_line_format() -> None:
    assert describe_progress(make_job(), 180) == (
        "job 1a2b: RUNNING, completed 12,345/100,000 (12.3%), 40 failed, ETA 3m"
    )
    assert describe_progress(make_job()) == (
        "job 1a2b: RUNNING, completed 12,345/100,000 (12.3%), 40 failed"
    )


def test_progress_before_validation() -> None:
    job = make_job(status="QUEUED", total_requests=0, completed_requests=0, failed_requests=0)
    assert describe_progress(job, 60) == "job 1a2b: QUEUED, input not validated yet"


def test_progress_of_an_ended_job_has_no_eta() -> None:
    job = make_job(status="SUCCESS", completed_requests=100_000, failed_requests=1_234)
    assert describe_progress(job, 60) == (
        "job 1a2b: SUCCESS, completed 100,000/100,000 (100.0%), 1,234 failed"
    )


def test_progress_percent_rounds_to_one_decimal() -> None:
    job = make_job(total_requests=3, completed_requests=2, failed_requests=0)
    assert describe_progress(job) == "job 1a2b: RUNNING, completed 2/3 (66.7%), 0 failed"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.4, "0s"),
        (44.6, "45s"),
        (59, "59s"),
        (59.6, "1m"),
        (60, "1m"),
        (179, "2m"),
        (3599, "59m"),
        (3600, "1h00m"),
        (7500, "2h05m"),
        (90_061, "25h01m"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# ---------------------------------------------------------------- progress_line and ETA


def test_progress_line_only_when_counts_or_status_change() -> None:
    watch = JobWatch(JOB_ID)
    first = watch.progress_line(make_job(), now=1000.0)
    assert first == "job 1a2b: RUNNING, completed 12,345/100,000 (12.3%), 40 failed"
    assert watch.progress_line(make_job(), now=1010.0) is None
    more = watch.progress_line(make_job(completed_requests=22_345), now=1020.0)
    assert more is not None
    assert more.startswith("job 1a2b: RUNNING, completed 22,345/100,000 (22.3%), 40 failed")
    assert watch.progress_line(make_job(completed_requests=22_345), now=1030.0) is None
    failed_more = watch.progress_line(
        make_job(completed_requests=22_345, failed_requests=41), now=1040.0
    )
    assert failed_more is not None
    assert "41 failed" in failed_more
    ended = watch.progress_line(
        make_job(status="CANCELLATION_REQUESTED", completed_requests=22_345, failed_requests=41),
        now=1050.0,
    )
    assert ended is not None
    assert ended.startswith("job 1a2b: CANCELLATION_REQUESTED,")


def test_eta_appears_after_a_second_observation_with_progress() -> None:
    watch = JobWatch(JOB_ID)
    job = make_job(total_requests=1000, completed_requests=0, failed_requests=0)
    assert watch.progress_line(job, now=1000.0) == (
        "job 1a2b: RUNNING, completed 0/1,000 (0.0%), 0 failed"
    )
    # 100 requests in 10 s: 900 left at 10 per second.
    line = watch.progress_line(make_job(total_requests=1000, completed_requests=100), now=1010.0)
    assert line == "job 1a2b: RUNNING, completed 100/1,000 (10.0%), 40 failed, ETA 1m"
    line = watch.progress_line(make_job(total_requests=1000, completed_requests=990), now=1099.0)
    assert line == "job 1a2b: RUNNING, completed 990/1,000 (99.0%), 40 failed, ETA 1s"


def test_no_eta_without_progress_since_the_first_observation() -> None:
    watch = JobWatch(JOB_ID)
    watch.progress_line(make_job(), now=1000.0)
    line = watch.progress_line(make_job(failed_requests=41), now=1100.0)
    assert line is not None
    assert "ETA" not in line


def test_eta_starts_counting_once_the_input_is_validated() -> None:
    watch = JobWatch(JOB_ID)
    queued = make_job(status="QUEUED", total_requests=0, completed_requests=0, failed_requests=0)
    assert watch.progress_line(queued, now=1000.0) == "job 1a2b: QUEUED, input not validated yet"
    running = make_job(total_requests=100, completed_requests=10, failed_requests=0)
    assert "ETA" not in (watch.progress_line(running, now=2000.0) or "")
    line = watch.progress_line(make_job(total_requests=100, completed_requests=20), now=2010.0)
    assert line is not None
    assert line.endswith("ETA 1m")  # 10 per 10 s, 80 left: 80 s


def test_a_change_in_eta_alone_is_not_reported() -> None:
    watch = JobWatch(JOB_ID)
    watch.progress_line(make_job(completed_requests=0), now=1000.0)
    assert watch.progress_line(make_job(completed_requests=10), now=1001.0) is not None
    # Same counts, later: the ETA would differ, the line is not repeated.
    assert watch.progress_line(make_job(completed_requests=10), now=1500.0) is None


# ---------------------------------------------------------------- errors and deadline


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (MistralServerError(503, "unavailable"), True),
        (MistralServerError(500, "oops"), True),
        (MistralAPIError(502, "bad gateway"), True),
        (MistralRateLimitError(429, "Rate limit exceeded"), True),
        (MistralConnectionError("connection refused"), True),
        (MistralNotFoundError(404, "no such job"), False),
        (MistralAuthenticationError(401, "Unauthorized"), False),
        (MistralAuthenticationError(403, "Forbidden"), False),
        (MistralValidationError(422, "bad id"), False),
        (MistralAPIError(400, "bad request"), False),
        (ValueError("bug"), False),
        (RuntimeError("bug"), False),
    ],
)
def test_is_transient(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_record_error_gives_up_after_the_limit_in_a_row() -> None:
    watch = JobWatch(JOB_ID, max_consecutive_errors=3)
    error = MistralServerError(503, "unavailable")
    assert watch.record_error(error) is False
    assert watch.record_error(MistralConnectionError("reset")) is False
    assert watch.consecutive_errors == 2
    assert watch.record_error(error) is True
    assert watch.consecutive_errors == 3


def test_a_successful_poll_resets_the_error_count() -> None:
    watch = JobWatch(JOB_ID, max_consecutive_errors=2)
    error = MistralServerError(503, "unavailable")
    assert watch.record_error(error) is False
    watch.progress_line(make_job(), now=1000.0)
    assert watch.consecutive_errors == 0
    assert watch.record_error(error) is False
    watch.progress_line(make_job(), now=1001.0)  # an unchanged line still counts as a poll
    assert watch.record_error(error) is False
    assert watch.record_error(error) is True


@pytest.mark.parametrize(
    "exc",
    [
        MistralNotFoundError(404, "no such job"),
        MistralAuthenticationError(401, "Unauthorized"),
        ValueError("bug"),
    ],
)
def test_record_error_gives_up_at_once_for_errors_that_will_not_pass(exc: Exception) -> None:
    watch = JobWatch(JOB_ID, max_consecutive_errors=5)
    assert watch.record_error(exc) is True
    assert watch.consecutive_errors == 1  # logged as "1 in a row", not "0 in a row"


def test_default_error_limit() -> None:
    watch = JobWatch(JOB_ID)
    results = [watch.record_error(MistralServerError(503, "x")) for _ in range(5)]
    assert results == [False] * (DEFAULT_MAX_CONSECUTIVE_ERRORS - 1) + [True]


def test_deadline_passed() -> None:
    assert JobWatch(JOB_ID).deadline_passed() is False
    watch = JobWatch(JOB_ID, deadline=1000.0)
    assert watch.deadline_passed(now=999.9) is False
    assert watch.deadline_passed(now=1000.0) is True
    assert watch.deadline_passed(now=1001.0) is True
    assert JobWatch(JOB_ID, deadline=10.0).deadline_passed(now=0.0) is False
    assert JobWatch(JOB_ID, deadline=time.time() - 1).deadline_passed() is True
    assert JobWatch(JOB_ID, deadline=time.time() + 3600).deadline_passed() is False


def test_seconds_to_sleep_never_goes_past_the_deadline() -> None:
    assert JobWatch(JOB_ID).seconds_to_sleep(30.0, now=1000.0) == 30.0
    watch = JobWatch(JOB_ID, deadline=1000.0)
    assert watch.seconds_to_sleep(30.0, now=900.0) == 30.0
    assert watch.seconds_to_sleep(30.0, now=990.0) == pytest.approx(10.0)
    assert watch.seconds_to_sleep(30.0, now=1000.0) == 0.0
    assert watch.seconds_to_sleep(30.0, now=2000.0) == 0.0
    assert JobWatch(JOB_ID, deadline=5.0).seconds_to_sleep(30.0, now=0.0) == 5.0
    for interval in (0.5, 5.0, 50.0):
        assert 0.0 <= watch.seconds_to_sleep(interval) <= interval


# ---------------------------------------------------------------- wait_until_ended (emulator)


class LogRecorder:
    """Collects formatted log lines by level, like a logger would print them."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, msg: str, *args: Any) -> None:
        self.lines.append(("info", msg % args))

    def warning(self, msg: str, *args: Any) -> None:
        self.lines.append(("warning", msg % args))

    def of(self, level: str) -> list[str]:
        return [text for lvl, text in self.lines if lvl == level]


@pytest.fixture
def hook(emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[MistralBatchHook]:
    set_connection(monkeypatch, emulator, extra={"timeout": 5})
    with MistralBatchHook(CONN_ID, retry_policy=FAST_RETRIES) as made:
        made._sleep = SleepRecorder()
        yield made


def _create_job(hook: MistralBatchHook, count: int = 3) -> BatchJob:
    return hook.create_batch_job(
        endpoint="/v1/embeddings",
        model="mistral-embed",
        requests=[{"custom_id": f"r{i}", "body": {"input": [f"text {i}"]}} for i in range(count)],
    )


def _unknown_job() -> BatchJob:
    return make_job(id=str(uuid.uuid4()), total_requests=0, completed_requests=0)


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
def test_wait_until_ended_returns_the_ended_job(hook: MistralBatchHook) -> None:
    job = _create_job(hook)
    log = LogRecorder()
    ended = wait_until_ended(hook, job, poll_interval=0.02, deadline=time.time() + 30, log=log)
    assert ended.status is BatchJobStatus.SUCCESS
    assert ended.id == job.id
    assert ended.succeeded_requests == 3
    infos = log.of("info")
    assert infos[0] == f"job {job.id}: QUEUED, input not validated yet"
    assert infos[-1] == f"job {job.id}: SUCCESS, completed 3/3 (100.0%), 0 failed"
    assert len(infos) == len(set(infos))  # each line once
    assert log.of("warning") == []


@pytest.mark.integration
def test_wait_until_ended_with_an_ended_job_does_not_poll(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    job = _create_job(hook)
    ended = hook.get_batch_job(job.id)
    while not ended.is_terminal:
        time.sleep(0.02)
        ended = hook.get_batch_job(job.id)
    emulator.clear_requests()
    calls: list[float] = []
    again = wait_until_ended(
        hook, ended, poll_interval=0.02, deadline=None, log=LogRecorder(), sleep=calls.append
    )
    assert again is ended
    assert calls == []
    assert emulator.requests == []


@pytest.mark.integration
def test_wait_until_ended_cancels_at_the_deadline(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    emulator.update_config(requests_per_second=1)
    job = _create_job(hook, count=50)
    log = LogRecorder()
    with pytest.raises(DeadlineReached) as caught:
        wait_until_ended(hook, job, poll_interval=0.05, deadline=time.time() + 0.5, log=log)
    assert re.fullmatch(
        rf"deadline passed while Mistral batch job {job.id} was still (QUEUED|RUNNING); "
        "cancellation requested",
        str(caught.value),
    )
    assert ("warning", str(caught.value)) in log.lines
    assert _cancels(emulator, job.id) == 1
    cancelled = (BatchJobStatus.CANCELLATION_REQUESTED, BatchJobStatus.CANCELLED)
    assert caught.value.job is not None
    assert caught.value.job.status in cancelled
    assert hook.get_batch_job(job.id).status in cancelled


@pytest.mark.integration
def test_wait_until_ended_can_leave_the_job_running_at_the_deadline(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    emulator.update_config(requests_per_second=1)
    job = _create_job(hook, count=50)
    with pytest.raises(AirflowException) as caught:
        wait_until_ended(
            hook,
            job,
            poll_interval=0.05,
            deadline=time.time() + 0.3,
            log=LogRecorder(),
            cancel_on_deadline=False,
        )
    assert str(caught.value).startswith(f"deadline passed while Mistral batch job {job.id}")
    assert "cancel" not in str(caught.value)
    assert _cancels(emulator, job.id) == 0
    assert hook.get_batch_job(job.id).status is BatchJobStatus.RUNNING


@pytest.mark.integration
def test_wait_until_ended_reports_the_deadline_when_the_cancel_fails(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    emulator.update_config(requests_per_second=1)
    job = _create_job(hook, count=50)
    cancel_path = f"{JOBS}/{job.id}/cancel"
    emulator.set_faults(
        [Fault(kind="status", status_code=503, method="POST", path_prefix=cancel_path)] * 4
    )
    with pytest.raises(AirflowException) as caught:
        wait_until_ended(hook, job, poll_interval=0.05, deadline=time.time(), log=LogRecorder())
    message = str(caught.value)
    assert message.startswith(f"deadline passed while Mistral batch job {job.id} was still")
    assert "could not cancel it: Mistral API error 503" in message


@pytest.mark.integration
def test_wait_until_ended_tolerates_transient_errors(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    job = _create_job(hook)
    # FAST_RETRIES makes 4 attempts per poll: 8 faults are two failed polls in a row.
    emulator.set_faults(
        [Fault(kind="status", status_code=503, method="GET", path_prefix=f"{JOBS}/{job.id}")] * 8
    )
    log = LogRecorder()
    ended = wait_until_ended(
        hook,
        job,
        poll_interval=0.01,
        deadline=time.time() + 30,
        log=log,
        max_consecutive_errors=3,
    )
    assert ended.status is BatchJobStatus.SUCCESS
    warnings = log.of("warning")
    assert len(warnings) == 2
    assert warnings[0].startswith(f"Polling Mistral batch job {job.id} failed (1 in a row): ")
    assert warnings[1].startswith(f"Polling Mistral batch job {job.id} failed (2 in a row): ")
    assert "503" in warnings[0]
    assert emulator.pending_faults == []


@pytest.mark.integration
def test_wait_until_ended_gives_up_after_consecutive_errors(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    job = _create_job(hook)
    emulator.set_faults(
        [Fault(kind="status", status_code=503, method="GET", path_prefix=f"{JOBS}/{job.id}")] * 12
    )
    emulator.clear_requests()
    log = LogRecorder()
    with pytest.raises(MistralServerError) as caught:
        wait_until_ended(
            hook, job, poll_interval=0.01, deadline=None, log=log, max_consecutive_errors=3
        )
    assert caught.value.status_code == 503
    assert len(log.of("warning")) == 2
    assert _polls(emulator, job.id) == [503] * 12


@pytest.mark.integration
@pytest.mark.parametrize("wrong_key", [False, True])
def test_wait_until_ended_gives_up_at_once_for_unknown_job_or_wrong_key(
    hook: MistralBatchHook,
    emulator: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
    wrong_key: bool,
) -> None:
    job = _unknown_job()
    expected: type[MistralAPIError] = MistralNotFoundError
    if wrong_key:
        job = _create_job(hook)
        set_connection(monkeypatch, emulator, api_key="wrong-key")
        hook = MistralBatchHook(CONN_ID, retry_policy=FAST_RETRIES)
        expected = MistralAuthenticationError
    emulator.clear_requests()
    log = LogRecorder()
    with hook, pytest.raises(expected):
        wait_until_ended(hook, job, poll_interval=0.01, deadline=None, log=log)
    assert len(_polls(emulator, job.id)) == 1
    assert log.of("warning") == []


# ---------------------------------------------------------------- settling at the deadline


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

    async def acancel_batch_job(self, job_id: str) -> BatchJob:
        return self._answer("cancel", self._cancel)

    async def aget_batch_job(self, job_id: str) -> BatchJob:
        return self._answer("get", self._get)


REFUSED = MistralValidationError(400, "job already ended")


def _settle_both(hook: ScriptedHook, cancel: bool) -> list[tuple[BatchJob | None, Any]]:
    running = make_job()
    sync = settle_at_deadline(hook, running, cancel)  # type: ignore[arg-type]
    asynchronous = asyncio.run(
        asettle_at_deadline(hook, JOB_ID, running, cancel)  # type: ignore[arg-type]
    )
    return [sync, asynchronous]


def test_settle_cancels_and_returns_the_cancelled_job() -> None:
    hook = ScriptedHook(cancel=make_job(status="CANCELLATION_REQUESTED"), get=REFUSED)
    for job, error in _settle_both(hook, cancel=True):
        assert error is None
        assert job is not None
        assert job.status is BatchJobStatus.CANCELLATION_REQUESTED
        assert not ended_on_its_own(job, cancel_requested=True)
    assert hook.calls == ["cancel", "cancel"]


def test_settle_sees_a_job_that_ended_when_the_cancel_is_refused() -> None:
    hook = ScriptedHook(cancel=REFUSED, get=make_job(status="SUCCESS"))
    for job, error in _settle_both(hook, cancel=True):
        assert error is REFUSED
        assert job is not None
        assert ended_on_its_own(job, cancel_requested=True)
    assert hook.calls == ["cancel", "get", "cancel", "get"]


def test_settle_keeps_the_last_snapshot_when_nothing_answers() -> None:
    down = MistralConnectionError("connection refused")
    hook = ScriptedHook(cancel=down, get=down)
    for job, error in _settle_both(hook, cancel=True):
        assert error is down
        assert job == make_job()
        assert deadline_message(JOB_ID, make_job(), True, error) == (
            f"deadline passed while Mistral batch job {JOB_ID} was still RUNNING; "
            "could not cancel it: connection refused"
        )


def test_settle_without_cancel_only_reads_the_job() -> None:
    hook = ScriptedHook(cancel=REFUSED, get=make_job(status="RUNNING"))
    for job, error in _settle_both(hook, cancel=False):
        assert error is None
        assert job is not None
        assert job.status is BatchJobStatus.RUNNING
    assert hook.calls == ["get", "get"]
    assert deadline_message(JOB_ID, None, False, None) == (
        f"deadline passed while Mistral batch job {JOB_ID} had not ended"
    )


@pytest.mark.parametrize(
    ("status", "ended_if_we_cancelled", "ended_otherwise"),
    [
        ("SUCCESS", True, True),
        ("FAILED", True, True),
        ("TIMEOUT_EXCEEDED", True, True),
        ("CANCELLED", False, True),  # cancelled by someone else: it ended
        ("CANCELLATION_REQUESTED", False, False),
        ("RUNNING", False, False),
        ("SOMETHING_NEW", False, False),
    ],
)
def test_ended_on_its_own(status: str, ended_if_we_cancelled: bool, ended_otherwise: bool) -> None:
    assert ended_on_its_own(make_job(status=status), True) is ended_if_we_cancelled
    assert ended_on_its_own(make_job(status=status), False) is ended_otherwise
    assert ended_on_its_own(None, True) is False


def test_blocking_wait_returns_a_job_that_ended_at_the_deadline() -> None:
    hook = ScriptedHook(cancel=REFUSED, get=make_job(status="SUCCESS"))
    log = LogRecorder()
    ended = wait_until_ended(
        hook,  # type: ignore[arg-type]
        make_job(),
        poll_interval=1,
        deadline=time.time() - 1,
        log=log,
    )
    assert ended.status is BatchJobStatus.SUCCESS
    assert hook.calls == ["cancel", "get"]
    assert log.of("warning") == []


def test_blocking_wait_without_cancel_returns_a_job_someone_else_cancelled() -> None:
    hook = ScriptedHook(cancel=REFUSED, get=make_job(status="CANCELLED"))
    ended = wait_until_ended(
        hook,  # type: ignore[arg-type]
        make_job(),
        poll_interval=1,
        deadline=time.time() - 1,
        log=LogRecorder(),
        cancel_on_deadline=False,
    )
    assert ended.status is BatchJobStatus.CANCELLED
    assert hook.calls == ["get"]
