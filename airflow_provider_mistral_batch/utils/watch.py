"""Watching a batch job until it ends: progress lines, transient errors and the deadline.

The trigger (async) and the operators' blocking mode (sync) make their own calls; this module
holds what they decide in common, so both modes behave the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from airflow.sdk.exceptions import AirflowException

from airflow_provider_mistral_batch.exceptions import (
    MistralAPIError,
    MistralAuthenticationError,
    MistralConnectionError,
    MistralNotFoundError,
)
from airflow_provider_mistral_batch.models import BatchJob, BatchJobStatus

if TYPE_CHECKING:
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

DEFAULT_POLL_INTERVAL: Final = 30.0
DEFAULT_MAX_CONSECUTIVE_ERRORS: Final = 5


def is_transient(exc: BaseException) -> bool:
    """Whether a failed poll may succeed later (after the hook's own retries ran out)."""
    if isinstance(exc, MistralAuthenticationError | MistralNotFoundError):
        return False
    if isinstance(exc, MistralAPIError):
        return exc.status_code == 429 or exc.status_code >= 500
    return isinstance(exc, MistralConnectionError)


class DeadlineReached(AirflowException):
    """The wait's deadline passed before the job ended.

    :param job: the latest snapshot of the job (after the cancellation request, if any).
    """

    def __init__(self, message: str, job: BatchJob | None) -> None:
        super().__init__(message)
        self.job = job


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


def ended_on_its_own(job: BatchJob | None, cancel_requested: bool) -> bool:
    """Whether a job seen at the deadline had ended, other than by our own cancellation.

    Such a job is reported as ended, the same way whether the wait blocks or defers.

    :param cancel_requested: whether we asked to cancel it; if not, CANCELLED counts as ended
        too (someone else cancelled it).
    """
    if job is None or not job.is_terminal:
        return False
    return not (cancel_requested and job.status == BatchJobStatus.CANCELLED)


def settle_at_deadline(
    hook: MistralBatchHook, job: BatchJob, cancel_on_deadline: bool
) -> tuple[BatchJob, BaseException | None]:
    """Cancel (or re-read) the job at the deadline: its latest snapshot and the error, if any.

    When the cancellation is refused the job is read once more: it may have just ended.
    """
    try:
        if cancel_on_deadline:
            return hook.cancel_batch_job(job.id), None
        return hook.get_batch_job(job.id), None
    except Exception as exc:
        error = exc
    if cancel_on_deadline:
        with suppress(Exception):
            job = hook.get_batch_job(job.id)
    return job, error


async def asettle_at_deadline(
    hook: MistralBatchHook, job_id: str, last: BatchJob | None, cancel_on_deadline: bool
) -> tuple[BatchJob | None, BaseException | None]:
    """:func:`settle_at_deadline` for the trigger (``last`` is None when no poll succeeded)."""
    cancel = cancel_on_deadline and not (last is not None and last.is_terminal)
    try:
        if cancel:
            return await hook.acancel_batch_job(job_id), None
        return await hook.aget_batch_job(job_id), None
    except Exception as exc:
        error = exc
    if cancel:
        with suppress(Exception):
            last = await hook.aget_batch_job(job_id)
    return last, error


@dataclass
class JobWatch:
    """State of one watch over a job.

    :param job_id: the job watched.
    :param deadline: absolute deadline in epoch seconds, or None for none.
    :param max_consecutive_errors: failed polls in a row before giving up.
    """

    job_id: str
    deadline: float | None = None
    max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS
    consecutive_errors: int = 0
    _last_line: str | None = field(default=None, repr=False)
    _first_seen: tuple[float, int] | None = field(default=None, repr=False)

    def deadline_passed(self, now: float | None = None) -> bool:
        """Whether the absolute deadline has passed."""
        if self.deadline is None:
            return False
        return (time.time() if now is None else now) >= self.deadline

    def seconds_to_sleep(self, poll_interval: float, now: float | None = None) -> float:
        """How long to wait before the next poll: the interval, never past the deadline."""
        if self.deadline is None:
            return poll_interval
        now = time.time() if now is None else now
        return max(0.0, min(poll_interval, self.deadline - now))

    def record_error(self, exc: BaseException) -> bool:
        """Count a failed poll; True when the watch should give up."""
        self.consecutive_errors += 1
        if not is_transient(exc):
            return True
        return self.consecutive_errors >= self.max_consecutive_errors

    def log_progress(self, job: BatchJob, log: Any) -> None:
        """Log the job's progress at info level when it changed since the last line."""
        line = self.progress_line(job)
        if line:
            log.info("%s", line)

    def log_failed_poll(self, log: Any, detail: object) -> None:
        """Log a failed poll (counted by :meth:`record_error`) at warning level."""
        log.warning(
            "Polling Mistral batch job %s failed (%s in a row): %s",
            self.job_id,
            self.consecutive_errors,
            detail,
        )

    def progress_line(self, job: BatchJob, now: float | None = None) -> str | None:
        """A progress line when it differs from the last one returned, else None."""
        self.consecutive_errors = 0
        now = time.time() if now is None else now
        line = describe_progress(job, self._eta_seconds(job, now))
        # The ETA changes on every poll; only report when the counts or status change.
        key = line.split(", ETA")[0]
        if key == self._last_line:
            return None
        self._last_line = key
        return line

    def _eta_seconds(self, job: BatchJob, now: float) -> float | None:
        if job.total_requests <= 0:
            return None
        if self._first_seen is None:
            self._first_seen = (now, job.completed_requests)
            return None
        started, completed_then = self._first_seen
        done = job.completed_requests - completed_then
        if done <= 0 or now <= started:
            return None
        rate = done / (now - started)
        return max(0.0, (job.total_requests - job.completed_requests) / rate)


def describe_progress(job: BatchJob, eta_seconds: float | None = None) -> str:
    """``job 1a2b: RUNNING, completed 12,345/100,000 (12.3%), 40 failed, ETA 3m``."""
    head = f"job {job.id}: {job.status}"
    if job.total_requests <= 0:
        return f"{head}, input not validated yet"
    share = 100.0 * job.completed_requests / job.total_requests
    line = (
        f"{head}, completed {job.completed_requests:,}/{job.total_requests:,} ({share:.1f}%), "
        f"{job.failed_requests:,} failed"
    )
    if eta_seconds is not None and not job.status.is_terminal:
        line += f", ETA {format_duration(eta_seconds)}"
    return line


def format_duration(seconds: float) -> str:
    """A short human duration: ``45s``, ``3m``, ``2h05m``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 60:
        return f"{minutes}m"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def wait_until_ended(
    hook: MistralBatchHook,
    job: BatchJob,
    *,
    poll_interval: float,
    deadline: float | None,
    log: Any,
    max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
    cancel_on_deadline: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> BatchJob:
    """Poll a job (blocking) until it ends, with the trigger's policy; return the ended job.

    :raises DeadlineReached: when the deadline passes first (after cancelling the job when
        ``cancel_on_deadline``); a job that ended by itself just then is returned instead.
    :raises Exception: the last poll's error when polling fails for good.
    """
    watch = JobWatch(job.id, deadline, max_consecutive_errors)
    watch.log_progress(job, log)
    while not job.status.is_terminal:
        if watch.deadline_passed():
            last_seen = job
            job, error = settle_at_deadline(hook, job, cancel_on_deadline)
            if ended_on_its_own(job, cancel_on_deadline):
                watch.log_progress(job, log)
                return job
            message = deadline_message(job.id, last_seen, cancel_on_deadline, error)
            log.warning("%s", message)
            raise DeadlineReached(message, job)
        sleep(watch.seconds_to_sleep(poll_interval))
        try:
            job = hook.get_batch_job(job.id)
        except Exception as exc:
            if watch.record_error(exc):
                raise
            watch.log_failed_poll(log, exc)
            continue
        watch.log_progress(job, log)
    return job
