"""The waiting core: from each poll's answer and the clock, decide what to do next. No I/O.

The trigger (async), the operators' blocking wait and the sensor's poke only drive a
:class:`JobWatch`: they make the call it asks for (read or cancel the job, or sleep first) and
hand it the answer, so all three decide and log alike by construction.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from airflow_provider_mistral_batch.batch.identity import (
    choose_kept,
    duplicate_warning,
    with_task_key,
)
from airflow_provider_mistral_batch.batch.progress import (
    describe_progress,
    eta_seconds,
    without_eta,
)
from airflow_provider_mistral_batch.batch.wait_options import (
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    DEFAULT_POLL_INTERVAL,
)
from airflow_provider_mistral_batch.exceptions import (
    MistralAPIError,
    MistralAuthenticationError,
    MistralConnectionError,
    MistralNotFoundError,
    describe_error,
)
from airflow_provider_mistral_batch.models import BatchJob, BatchJobStatus

#: A job that has run for ``t`` seconds is polled every ``t * SLOWDOWN`` seconds (within
#: ``poll_interval`` and ``max_poll_interval``): a wait of 10% of its age at most.
SLOWDOWN: Final = 0.1


# ---------------------------------------------------------------- the steps a watch asks for


@dataclass(frozen=True)
class Poll:
    """Read the job now and hand the answer (job or error) to :meth:`JobWatch.record`."""


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds``, then read the job and hand the answer to :meth:`JobWatch.record`."""

    seconds: float


@dataclass(frozen=True)
class Cancel:
    """The deadline passed: ask to cancel the job and hand the answer to :meth:`JobWatch.record`."""


@dataclass(frozen=True)
class ListTaskJobs:
    """List the jobs tagged with the task key ``key`` (see
    :mod:`~airflow_provider_mistral_batch.batch.identity`) and hand the list (or the error) to
    :meth:`JobWatch.record`.

    :param follow: False for a check for duplicates of a job still running (every queued,
        running or succeeded job of the key is what it needs); True when the job ended
        CANCELLED and the watch looks for the job kept instead (every job of the key).
    """

    key: str
    follow: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class CancelDuplicate:
    """Ask to cancel ``job_id``, a duplicate of the job kept, and hand the answer to
    :meth:`JobWatch.record`."""

    job_id: str


@dataclass(frozen=True)
class Ended:
    """The job ended (by itself, or cancelled by someone other than this watch)."""

    job: BatchJob


@dataclass(frozen=True)
class GaveUp:
    """Polling failed for good: an error no retry helps, or too many failures in a row.

    :param job: the last snapshot a poll returned, or None.
    """

    error: BaseException
    job: BatchJob | None
    message: str


@dataclass(frozen=True)
class TimedOut:
    """The deadline passed before the job ended.

    :param job: the latest snapshot (after the cancellation request, if any); None when no
        poll ever succeeded.
    """

    job: BatchJob | None
    message: str


Action = Poll | Sleep | Cancel | ListTaskJobs | CancelDuplicate
Answer = BatchJob | Sequence[BatchJob] | BaseException
Outcome = Ended | GaveUp | TimedOut
Step = Action | Outcome

# What the watch did at the deadline, waiting for its answer: a cancel, a read after a refused
# cancel, or a read (no cancel wanted).
_AtDeadline = Literal["cancel", "reread", "read"]
# Why the task's jobs were listed: a check for duplicates while the job is young, or, once the
# job ended CANCELLED, a look for the job a duplicate check elsewhere kept instead.
_Listing = Literal["check", "follow"]


class JobWatch:
    """The decisions of one wait for one job, and the progress lines it logs.

    :param job_id: the job watched.
    :param log: where progress, tolerated failures and the deadline are logged.
    :param poll_interval: seconds between polls.
    :param deadline: absolute deadline in epoch seconds, or None for none.
    :param cancel_on_deadline: cancel the job when the deadline passes (else only re-read it).
    :param max_consecutive_errors: failed polls in a row before giving up.
    :param task_key: the task key in the job's metadata (operators' jobs only): until
        ``check_duplicates_until`` every poll also lists the jobs with this key, and the ones
        :func:`~airflow_provider_mistral_batch.batch.identity.choose_kept` does not keep are
        cancelled; when the kept job is another one, the watch follows it (``job_id``
        changes). A job of the key that ends CANCELLED is also followed to the kept one.
    :param check_duplicates_until: epoch seconds; None never checks while the job runs.
    :param max_poll_interval: None keeps the interval at ``poll_interval``; a number lets it
        grow for a long-running job, to a tenth of the time the job has run (from its
        ``started_at``, else ``created_at``: the same after a restart), up to this cap.
    :param jitter: each sleep is ``poll_interval`` times a random factor within
        ``1 +- jitter`` (default 0: none), so that many waits started together drift apart.
    :param hold_outcome_until: epoch seconds, or None (default): no hold. An outcome reached
        before then is held: the watch asks for a :class:`Sleep` until then (the read that
        follows it is not needed and its answer is dropped) and reports the outcome after it.
        A deferred task's trigger passes the moment from which Airflow is ready for its event
        (see :mod:`~airflow_provider_mistral_batch.batch.deferral`).
    :param clock: the epoch clock (tests pass their own).
    :param rand: a random number in [0, 1) (tests pass their own).
    """

    def __init__(
        self,
        job_id: str,
        *,
        log: logging.Logger | Any,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        deadline: float | None = None,
        cancel_on_deadline: bool = True,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
        task_key: str | None = None,
        check_duplicates_until: float | None = None,
        max_poll_interval: float | None = None,
        jitter: float = 0.0,
        hold_outcome_until: float | None = None,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.job_id = job_id
        self.log = log
        self.poll_interval = poll_interval
        self.deadline = deadline
        self.cancel_on_deadline = cancel_on_deadline
        self.max_consecutive_errors = max_consecutive_errors
        self.task_key = task_key
        self.check_duplicates_until = check_duplicates_until
        self.max_poll_interval = max_poll_interval
        self.jitter = jitter
        self.hold_outcome_until = hold_outcome_until
        self.clock = clock
        self.rand = rand
        self.consecutive_errors = 0
        self.last_job: BatchJob | None = None
        self._at_deadline: _AtDeadline | None = None
        self._deadline_error: BaseException | None = None
        self._last_line: str | None = None
        self._listing: _Listing | None = None
        self._follow_errors = 0
        self._switched = False
        self._kept: BatchJob | None = None
        self._duplicates: list[BatchJob] = []
        self._cancelling: BatchJob | None = None
        self._held: Outcome | None = None

    def start(self, job: BatchJob | None = None) -> Step:
        """The first step: judge ``job`` when one is known, else read it at once."""
        return Poll() if job is None else self.record(job)

    def record(self, answer: Answer) -> Step:
        """Hand in the answer to the last step: a job, a list of jobs (for
        :class:`ListTaskJobs`) or the error the call raised."""
        if self._held is not None:
            return self._release()
        step = self._judge(answer)
        if isinstance(step, Ended | GaveUp | TimedOut):
            return self._hold(step)
        return step

    def _judge(self, answer: Answer) -> Step:
        if self._listing is not None:
            return self._listed(answer)
        if self._cancelling is not None:
            return self._duplicate_cancelled(answer)
        if isinstance(answer, Sequence):
            raise TypeError("a list of jobs answers ListTaskJobs only")
        if self._at_deadline is not None:
            return self._deadline_answered(answer)
        if isinstance(answer, BaseException):
            return self._failed(answer)
        return self._seen(answer)

    # ---------------------------------------------------------------- holding an early outcome

    def _hold(self, outcome: Outcome) -> Step:
        """Report ``outcome`` now, or sleep until ``hold_outcome_until`` first."""
        until = self.hold_outcome_until
        now = self.clock()
        if until is None or now >= until:
            return outcome
        self._held = outcome
        self.log.info(
            "Mistral batch job %s: %s; reporting it in %.1f s, once Airflow has seen the "
            "deferring task's process end (an event sooner can make Airflow fail the task)",
            self.job_id,
            _what_ended(outcome),
            until - now,
        )
        return Sleep(until - now)

    def _release(self) -> Step:
        """After the hold's sleep: the held outcome (or more sleep, if woken early)."""
        assert self.hold_outcome_until is not None
        now = self.clock()
        if now < self.hold_outcome_until:
            # A shared read may answer a little early: the moment itself is what counts.
            return Sleep(self.hold_outcome_until - now)
        held, self._held = self._held, None
        assert held is not None
        return held

    # ---------------------------------------------------------------- polls

    def _seen(self, job: BatchJob) -> Step:
        self.consecutive_errors = 0
        self._log_progress(job)
        if job.status.is_terminal:
            if self._past_deadline() and not ended_on_its_own(job, self.cancel_on_deadline):
                # CANCELLED past our deadline: our own cancel, seen by a watch that started
                # again (a trigger rebuilt after a triggerer restart). Still a timeout.
                return self._deadline_outcome(job)
            self.last_job = job
            if self.task_key is not None and job.status == BatchJobStatus.CANCELLED:
                self._listing = "follow"
                return ListTaskJobs(self.task_key, follow=True)
            return Ended(job)
        self.last_job = job
        if self._checking_duplicates():
            self._listing = "check"
            return ListTaskJobs(self.task_key)  # type: ignore[arg-type]
        return self._sleep_or_deadline()

    def _checking_duplicates(self) -> bool:
        until = self.check_duplicates_until
        return self.task_key is not None and until is not None and self.clock() < until

    def _past_deadline(self) -> bool:
        return self.deadline is not None and self.clock() >= self.deadline

    def _failed(self, error: BaseException) -> Step:
        self.consecutive_errors += 1
        self.log.warning(
            "Polling Mistral batch job %s failed (%s in a row): %s",
            self.job_id,
            self.consecutive_errors,
            describe_error(error),
        )
        if not is_transient(error) or self.consecutive_errors >= self.max_consecutive_errors:
            message = f"gave up polling Mistral batch job {self.job_id}: {error}"
            return GaveUp(error, self.last_job, message)
        return self._sleep_or_deadline()

    def _sleep_or_deadline(self) -> Step:
        now = self.clock()
        if self.deadline is None:
            return Sleep(self._jittered(self.interval()))
        if now >= self.deadline:
            self._at_deadline = "cancel" if self.cancel_on_deadline else "read"
            return Cancel() if self.cancel_on_deadline else Poll()
        return Sleep(max(0.0, min(self._jittered(self.interval()), self.deadline - now)))

    def interval(self) -> float:
        """The seconds between polls now, before jitter: ``poll_interval``, or more for a
        long-running job when ``max_poll_interval`` allows it."""
        cap = self.max_poll_interval
        job = self.last_job
        if cap is None or cap <= self.poll_interval or job is None:
            return self.poll_interval
        began = job.started_at if job.started_at is not None else job.created_at
        return max(self.poll_interval, min(cap, (self.clock() - began) * SLOWDOWN))

    def _jittered(self, seconds: float) -> float:
        if self.jitter <= 0.0:
            return seconds
        return seconds * (1.0 + self.jitter * (2.0 * self.rand() - 1.0))

    # ---------------------------------------------------------------- duplicates of the task

    def _listed(self, answer: Answer) -> Step:
        """The task's jobs: keep one (maybe following it), queue the others' cancellation."""
        listing, self._listing = self._listing, None
        job = self.last_job
        assert job is not None
        assert self.task_key is not None
        if isinstance(answer, BaseException):
            return self._listing_failed(listing, job, answer)
        if isinstance(answer, BatchJob):
            raise TypeError("ListTaskJobs is answered with a list of jobs")
        self._follow_errors = 0
        choice = choose_kept(with_task_key([*answer, job], self.task_key))
        kept = choice.kept
        if kept is None:
            return Ended(job) if listing == "follow" else self._sleep_or_deadline()
        if kept.id != self.job_id:
            self.log.warning(
                "Following Mistral batch job %s instead of %s: both carry this task's key and %s",
                kept.id,
                self.job_id,
                "the latter was cancelled" if listing == "follow" else "the former is kept",
            )
            self.job_id = kept.id
            self.last_job = None
            self._last_line = None
            self._switched = True
        self._kept = kept
        self._duplicates = list(choice.to_cancel)
        return self._next_duplicate()

    def _listing_failed(
        self, listing: _Listing | None, job: BatchJob, error: BaseException
    ) -> Step:
        if listing == "check":
            # Only a check: the job itself was read fine, so this is no failed poll.
            self.log.warning(
                "Could not check for duplicates of Mistral batch job %s: %s",
                self.job_id,
                describe_error(error),
            )
            return self._sleep_or_deadline()
        self._follow_errors += 1
        self.log.warning(
            "Mistral batch job %s was cancelled; looking for another job of this task failed "
            "(%s in a row): %s",
            self.job_id,
            self._follow_errors,
            describe_error(error),
        )
        if is_transient(error) and self._follow_errors < self.max_consecutive_errors:
            return Sleep(self._jittered(self.interval()))  # then read the job, and look again
        return Ended(job)

    def _next_duplicate(self) -> Step:
        if self._duplicates:
            duplicate = self._duplicates.pop(0)
            assert self._kept is not None
            self.log.warning("%s", duplicate_warning(duplicate, self._kept))
            self._cancelling = duplicate
            return CancelDuplicate(duplicate.id)
        if self._switched:
            self._switched = False
            return Poll()  # read the job followed now
        return self._sleep_or_deadline()

    def _duplicate_cancelled(self, answer: Answer) -> Step:
        duplicate, self._cancelling = self._cancelling, None
        assert duplicate is not None
        if isinstance(answer, BaseException):
            self.log.warning(
                "Could not cancel Mistral batch job %s: %s", duplicate.id, describe_error(answer)
            )
        return self._next_duplicate()

    # ---------------------------------------------------------------- the deadline

    def _deadline_answered(self, answer: BatchJob | BaseException) -> Step:
        """The answer to the cancel (or read) at the deadline; a refused cancel reads once more."""
        if isinstance(answer, BaseException):
            if self._at_deadline == "cancel":
                # The job may have just ended, and an ended job cannot be cancelled: look.
                self._deadline_error = answer
                self._at_deadline = "reread"
                return Poll()
            if self._at_deadline == "read":
                self._deadline_error = answer
            return self._deadline_outcome(None)
        return self._deadline_outcome(answer)

    def _deadline_outcome(self, job: BatchJob | None) -> Outcome:
        last_seen = self.last_job
        job = job or last_seen
        if ended_on_its_own(job, self.cancel_on_deadline):
            assert job is not None
            self._log_progress(job)
            return Ended(job)
        message = deadline_message(
            self.job_id, last_seen, self.cancel_on_deadline, self._deadline_error
        )
        self.log.warning("%s", message)
        return TimedOut(job, message)

    # ---------------------------------------------------------------- progress

    def _log_progress(self, job: BatchJob) -> None:
        line = self.progress_line(job)
        if line:
            self.log.info("%s", line)

    def progress_line(self, job: BatchJob) -> str | None:
        """A progress line when the counts or status changed since the last one, else None."""
        line = describe_progress(job, eta_seconds(job, self.clock()))
        # The ETA changes on every poll; only report when the counts or status change.
        key = without_eta(line)
        if key == self._last_line:
            return None
        self._last_line = key
        return line


def _what_ended(outcome: Outcome) -> str:
    if isinstance(outcome, Ended):
        return f"ended {outcome.job.status}"
    return "timed out" if isinstance(outcome, TimedOut) else "gave up polling"


def is_transient(exc: BaseException) -> bool:
    """Whether a failed poll may succeed later (after the hook's own retries ran out)."""
    if isinstance(exc, MistralAuthenticationError | MistralNotFoundError):
        return False
    if isinstance(exc, MistralAPIError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(exc, MistralConnectionError)


def ended_on_its_own(job: BatchJob | None, cancel_requested: bool) -> bool:
    """Whether a job seen at the deadline had ended, other than by our own cancellation.

    :param cancel_requested: whether we asked to cancel it; if not, CANCELLED counts as ended
        too (someone else cancelled it).
    """
    if job is None or not job.is_terminal:
        return False
    return not (cancel_requested and job.status == BatchJobStatus.CANCELLED)


def deadline_message(
    job_id: str,
    last_seen: BatchJob | None,
    cancel_on_deadline: bool,
    error: BaseException | None,
) -> str:
    """What happened at the deadline, for the log and the task's failure.

    :param last_seen: the job as last polled before the deadline (None if no poll succeeded).
    """
    state = f"was still {last_seen.status}" if last_seen is not None else "had not ended"
    message = f"deadline passed while Mistral batch job {job_id} {state}"
    if error is not None:
        return f"{message}; could not {'cancel' if cancel_on_deadline else 'fetch'} it: {error}"
    return f"{message}; cancellation requested" if cancel_on_deadline else message
