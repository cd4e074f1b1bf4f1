"""The waiting core, step by step with a fake clock: no server, no sleeping, no I/O."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_provider_mistral_batch.batch.wait_options import DEFAULT_MAX_CONSECUTIVE_ERRORS
from airflow_provider_mistral_batch.batch.waiting import (
    Cancel,
    Ended,
    GaveUp,
    JobWatch,
    Poll,
    Sleep,
    TimedOut,
    deadline_message,
    ended_on_its_own,
    is_transient,
)
from airflow_provider_mistral_batch.exceptions import (
    MistralAPIError,
    MistralAuthenticationError,
    MistralConnectionError,
    MistralNotFoundError,
    MistralRateLimitError,
    MistralServerError,
    MistralValidationError,
    describe_error,
)
from airflow_provider_mistral_batch.models import BatchJobStatus
from tests.helpers import running_job

JOB_ID = "1a2b"  # the id of tests.helpers.running_job
JOBS = "/v1/batch/jobs"


UNAVAILABLE = MistralServerError(503, "unavailable")
REFUSED = MistralValidationError(400, "job already ended")
LOG = logging.getLogger("tests.watch")


class Clock:
    """An epoch clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def watch_of(clock: Clock | None = None, **options: Any) -> JobWatch:
    return JobWatch(JOB_ID, log=LOG, clock=clock or Clock(), **options)


# ---------------------------------------------------------------- progress lines and ETA


def _lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOG.name and r.levelno == level]


def test_progress_is_logged_only_when_counts_or_status_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOG.name)
    clock = Clock()
    watch = watch_of(clock)
    for job in (
        running_job(),
        running_job(),
        running_job(completed_requests=22_345),
        running_job(completed_requests=22_345),
        running_job(completed_requests=22_345, failed_requests=41),
        running_job(status="CANCELLATION_REQUESTED", completed_requests=22_345, failed_requests=41),
    ):
        clock.now += 10
        watch.record(job)
    lines = _lines(caplog, logging.INFO)
    assert lines[0] == "job 1a2b: RUNNING, completed 12,345/100,000 (12.3%), 40 failed"
    assert lines[1].startswith("job 1a2b: RUNNING, completed 22,345/100,000 (22.3%), 40 failed")
    assert "41 failed" in lines[2]
    assert lines[3].startswith("job 1a2b: CANCELLATION_REQUESTED,")
    assert len(lines) == 4


def test_the_eta_is_the_jobs_average_rate_since_it_started() -> None:
    # The same estimate as the UI's, from the job alone: a wait started again after a restart
    # shows it from its first line.
    clock = Clock(1010.0)
    watch = watch_of(clock)
    # 100 requests in 10 s: 900 left at 10 per second.
    line = watch.progress_line(
        running_job(total_requests=1000, completed_requests=100, started_at=1000)
    )
    assert line == "job 1a2b: RUNNING, completed 100/1,000 (10.0%), 40 failed, ETA 1m"
    clock.now = 1099.0
    line = watch.progress_line(
        running_job(total_requests=1000, completed_requests=990, started_at=1000)
    )
    assert line == "job 1a2b: RUNNING, completed 990/1,000 (99.0%), 40 failed, ETA 1s"


def test_no_eta_before_the_job_started_or_did_anything() -> None:
    clock = Clock(1100.0)
    watch = watch_of(clock)
    line = watch.progress_line(running_job())  # no started_at
    assert line is not None
    assert "ETA" not in line
    line = watch.progress_line(running_job(completed_requests=0, started_at=1000))
    assert line is not None
    assert "ETA" not in line


def test_a_change_in_eta_alone_is_not_reported() -> None:
    clock = Clock(1001.0)
    watch = watch_of(clock)
    assert watch.progress_line(running_job(completed_requests=10, started_at=1000)) is not None
    # Same counts, later: the ETA would differ, the line is not repeated.
    clock.now = 1500.0
    assert watch.progress_line(running_job(completed_requests=10, started_at=1000)) is None


# ---------------------------------------------------------------- polls: sleep or end


def test_without_a_job_the_first_step_is_a_poll() -> None:
    assert watch_of().start() == Poll()


@pytest.mark.parametrize("status", ["SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED"])
def test_an_ended_job_ends_the_wait_at_once(status: str) -> None:
    job = running_job(status=status)
    assert watch_of().start(job) == Ended(job)
    if status != "CANCELLED":  # past a deadline we cancel at, CANCELLED is our own doing
        assert watch_of(deadline=0.0).start(job) == Ended(job)


@pytest.mark.parametrize("status", ["QUEUED", "RUNNING", "CANCELLATION_REQUESTED", "SOMETHING_NEW"])
def test_a_job_that_has_not_ended_means_sleep_then_poll(status: str) -> None:
    watch = watch_of(poll_interval=30.0)
    assert watch.start(running_job(status=status)) == Sleep(30.0)
    assert watch.record(running_job(status=status)) == Sleep(30.0)


def test_sleep_never_goes_past_the_deadline() -> None:
    clock = Clock(900.0)
    watch = watch_of(clock, poll_interval=30.0, deadline=1000.0)
    assert watch.record(running_job()) == Sleep(30.0)
    clock.now = 990.0
    step = watch.record(running_job())
    assert isinstance(step, Sleep)
    assert step.seconds == pytest.approx(10.0)
    assert watch_of(Clock(0.0), poll_interval=30.0, deadline=5.0).record(running_job()) == Sleep(
        5.0
    )


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


def test_gives_up_after_the_limit_of_failed_polls_in_a_row(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOG.name)
    watch = watch_of(poll_interval=1.0, max_consecutive_errors=3)
    assert watch.record(running_job()) == Sleep(1.0)
    assert watch.record(UNAVAILABLE) == Sleep(1.0)
    assert watch.record(MistralConnectionError("reset")) == Sleep(1.0)
    assert watch.consecutive_errors == 2
    step = watch.record(UNAVAILABLE)
    assert step == GaveUp(
        UNAVAILABLE, running_job(), f"gave up polling Mistral batch job {JOB_ID}: {UNAVAILABLE}"
    )
    assert watch.consecutive_errors == 3
    assert _lines(caplog, logging.WARNING) == [
        f"Polling Mistral batch job {JOB_ID} failed (1 in a row): HTTP 503: unavailable",
        f"Polling Mistral batch job {JOB_ID} failed (2 in a row): MistralConnectionError: reset",
        f"Polling Mistral batch job {JOB_ID} failed (3 in a row): HTTP 503: unavailable",
    ]


def test_a_successful_poll_resets_the_error_count() -> None:
    watch = watch_of(max_consecutive_errors=2)
    assert isinstance(watch.record(UNAVAILABLE), Sleep)
    watch.record(running_job())
    assert watch.consecutive_errors == 0
    assert isinstance(watch.record(UNAVAILABLE), Sleep)
    watch.record(running_job())  # an unchanged progress line still counts as a poll
    assert isinstance(watch.record(UNAVAILABLE), Sleep)
    assert isinstance(watch.record(UNAVAILABLE), GaveUp)


def test_progress_lines_alone_do_not_reset_the_error_count() -> None:
    watch = watch_of(max_consecutive_errors=2)
    watch.record(UNAVAILABLE)
    watch.progress_line(running_job())
    assert watch.consecutive_errors == 1


@pytest.mark.parametrize(
    "exc",
    [
        MistralNotFoundError(404, "no such job"),
        MistralAuthenticationError(401, "Unauthorized"),
        ValueError("bug"),
    ],
)
def test_gives_up_at_once_for_errors_that_will_not_pass(
    exc: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOG.name)
    watch = watch_of(max_consecutive_errors=5)
    step = watch.record(exc)
    assert isinstance(step, GaveUp)
    assert step.error is exc
    assert step.job is None
    assert watch.consecutive_errors == 1  # logged as "1 in a row", not "0 in a row"
    assert _lines(caplog, logging.WARNING) == [
        f"Polling Mistral batch job {JOB_ID} failed (1 in a row): {describe_error(exc)}"
    ]


def test_default_error_limit() -> None:
    watch = watch_of()
    steps = [watch.record(UNAVAILABLE) for _ in range(DEFAULT_MAX_CONSECUTIVE_ERRORS)]
    assert all(isinstance(step, Sleep) for step in steps[:-1])
    assert isinstance(steps[-1], GaveUp)


# ---------------------------------------------------------------- the deadline


def test_deadline_asks_to_cancel_then_times_out(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOG.name)
    clock = Clock(999.0)
    watch = watch_of(clock, deadline=1000.0)
    assert isinstance(watch.record(running_job()), Sleep)
    clock.now = 1000.0
    assert watch.record(running_job()) == Cancel()
    cancelling = running_job(status="CANCELLATION_REQUESTED")
    step = watch.record(cancelling)
    message = (
        f"deadline passed while Mistral batch job {JOB_ID} was still RUNNING; "
        "cancellation requested"
    )
    assert step == TimedOut(cancelling, message)
    assert message in _lines(caplog, logging.WARNING)


def test_deadline_also_passes_while_polls_fail() -> None:
    clock = Clock(1000.0)
    watch = watch_of(clock, deadline=1000.0)
    assert watch.start() == Poll()
    assert watch.record(UNAVAILABLE) == Cancel()


def test_a_cancelled_answer_to_our_cancel_is_a_timeout_not_an_end() -> None:
    watch = watch_of(Clock(2000.0), deadline=1000.0)
    assert watch.record(running_job()) == Cancel()
    cancelled = running_job(status="CANCELLED")
    assert isinstance(watch.record(cancelled), TimedOut)


def test_refused_cancel_reads_once_more_and_sees_a_job_that_just_ended() -> None:
    watch = watch_of(Clock(2000.0), deadline=1000.0)
    assert watch.record(running_job()) == Cancel()
    assert watch.record(REFUSED) == Poll()
    ended = running_job(status="SUCCESS")
    assert watch.record(ended) == Ended(ended)


def test_refused_cancel_and_a_job_still_running_times_out_naming_the_error() -> None:
    watch = watch_of(Clock(2000.0), deadline=1000.0)
    watch.record(running_job())
    watch.record(REFUSED)
    step = watch.record(running_job())
    assert isinstance(step, TimedOut)
    assert step.job == running_job()
    assert step.message == (
        f"deadline passed while Mistral batch job {JOB_ID} was still RUNNING; "
        f"could not cancel it: {REFUSED}"
    )


def test_nothing_answering_at_the_deadline_keeps_the_last_snapshot() -> None:
    down = MistralConnectionError("connection refused")
    watch = watch_of(Clock(2000.0), deadline=1000.0)
    watch.record(running_job())
    assert watch.record(down) == Poll()
    step = watch.record(down)
    assert step == TimedOut(
        running_job(),
        f"deadline passed while Mistral batch job {JOB_ID} was still RUNNING; "
        "could not cancel it: connection refused",
    )


def test_without_cancel_the_deadline_only_reads_the_job() -> None:
    watch = watch_of(Clock(2000.0), deadline=1000.0, cancel_on_deadline=False)
    assert watch.record(running_job()) == Poll()
    step = watch.record(running_job())
    assert step == TimedOut(
        running_job(), f"deadline passed while Mistral batch job {JOB_ID} was still RUNNING"
    )


def test_without_cancel_a_job_someone_else_cancelled_has_ended() -> None:
    watch = watch_of(Clock(2000.0), deadline=1000.0, cancel_on_deadline=False)
    watch.record(running_job())
    cancelled = running_job(status="CANCELLED")
    assert watch.record(cancelled) == Ended(cancelled)


def test_a_deadline_with_no_poll_ever_answered_says_the_job_had_not_ended() -> None:
    watch = watch_of(Clock(2000.0), deadline=1000.0, cancel_on_deadline=False)
    assert watch.record(UNAVAILABLE) == Poll()
    step = watch.record(UNAVAILABLE)
    assert step == TimedOut(
        None,
        f"deadline passed while Mistral batch job {JOB_ID} had not ended; "
        f"could not fetch it: {UNAVAILABLE}",
    )


def test_deadline_message_without_any_poll() -> None:
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
    assert ended_on_its_own(running_job(status=status), True) is ended_if_we_cancelled
    assert ended_on_its_own(running_job(status=status), False) is ended_otherwise
    assert ended_on_its_own(None, True) is False


def test_unknown_status_is_never_an_end_even_at_the_deadline() -> None:
    watch = watch_of(Clock(2000.0), deadline=1000.0, cancel_on_deadline=False)
    watch.record(running_job())
    step = watch.record(running_job(status="SOMETHING_NEW"))
    assert isinstance(step, TimedOut)
    assert step.job is not None
    assert step.job.status == BatchJobStatus("SOMETHING_NEW")


def test_a_watch_started_again_past_its_deadline_reports_our_cancel_as_a_timeout() -> None:
    # A trigger rebuilt from its kwargs after a triggerer restart, while it was cancelling.
    watch = watch_of(Clock(2000.0), deadline=1000.0)
    assert watch.start() == Poll()
    cancelled = running_job(status="CANCELLED")
    step = watch.record(cancelled)
    assert step == TimedOut(
        cancelled,
        f"deadline passed while Mistral batch job {JOB_ID} had not ended; cancellation requested",
    )


def test_past_the_deadline_a_job_that_ended_by_itself_is_still_an_end() -> None:
    watch = watch_of(Clock(2000.0), deadline=1000.0)
    done = running_job(status="SUCCESS")
    assert watch.record(done) == Ended(done)
    left = watch_of(Clock(2000.0), deadline=1000.0, cancel_on_deadline=False)
    cancelled = running_job(status="CANCELLED")
    assert left.record(cancelled) == Ended(cancelled)  # not ours: someone else cancelled it


# ---------------------------------------------------------------- holding an early outcome


def test_an_outcome_before_the_hold_ends_waits_until_then(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock(1000.0)
    watch = watch_of(clock, poll_interval=1.0, hold_outcome_until=1012.0)
    assert watch.start(running_job()) == Sleep(1.0)
    clock.now = 1001.5
    ended = running_job(status="SUCCESS", completed_requests=100_000)
    with caplog.at_level(logging.INFO, logger=LOG.name):
        step = watch.record(ended)
    assert step == Sleep(pytest.approx(10.5))
    assert f"Mistral batch job {JOB_ID}: ended SUCCESS; reporting it in 10.5 s" in caplog.text
    clock.now = 1012.0
    # The read that follows the sleep is not needed: whatever it says, the held outcome comes.
    assert watch.record(UNAVAILABLE) == Ended(ended)
    assert watch.record(running_job()) == Sleep(1.0)  # a new step, no longer held


def test_a_hold_woken_early_sleeps_the_rest() -> None:
    clock = Clock(1000.0)
    watch = watch_of(clock, hold_outcome_until=1010.0)
    ended = running_job(status="FAILED")
    assert watch.start(ended) == Sleep(10.0)
    clock.now = 1007.0  # a shared read answered early
    assert watch.record(ended) == Sleep(pytest.approx(3.0))
    clock.now = 1010.5
    assert watch.record(ended) == Ended(ended)


def test_every_kind_of_outcome_is_held() -> None:
    clock = Clock(1000.0)
    gave_up = watch_of(clock, hold_outcome_until=1005.0)
    assert gave_up.record(MistralNotFoundError(404, "no such job")) == Sleep(5.0)
    clock.now = 1005.0
    step = gave_up.record(running_job())
    assert isinstance(step, GaveUp)
    assert isinstance(step.error, MistralNotFoundError)

    clock.now = 2000.0
    timed_out = watch_of(clock, deadline=1999.0, hold_outcome_until=2004.0)
    assert timed_out.start(running_job()) == Cancel()
    assert timed_out.record(running_job(status="CANCELLED")) == Sleep(4.0)
    clock.now = 2004.0
    assert isinstance(timed_out.record(running_job(status="CANCELLED")), TimedOut)


def test_an_outcome_after_the_hold_is_reported_at_once() -> None:
    ended = running_job(status="SUCCESS")
    assert watch_of(Clock(1000.0), hold_outcome_until=1000.0).start(ended) == Ended(ended)
    assert watch_of(Clock(1000.0), hold_outcome_until=None).start(ended) == Ended(ended)
    # The hold delays outcomes only, never a poll.
    assert watch_of(Clock(1000.0), poll_interval=2.0, hold_outcome_until=1060.0).start(
        running_job()
    ) == Sleep(2.0)
