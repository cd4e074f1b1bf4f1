"""A job's progress as a person reads it: the progress line, the time left, a duration.

The waiting core logs these lines and the UI plugin shows the same ETA, so both read the time
left from :func:`eta_seconds`, computed from the job alone (no history): a wait started
again after a restart, or a page opened in the middle of a run, sees the same estimate.
"""

from __future__ import annotations

from airflow_provider_mistral_batch.models import BatchJob, BatchJobStatus


def eta_seconds(job: BatchJob, now: float) -> float | None:
    """Seconds left for a running job at its average rate since it started, or None when
    there is no rate yet (not started, nothing done, input not validated) or it is not RUNNING.

    :param now: epoch seconds.
    """
    if job.status != BatchJobStatus.RUNNING or job.started_at is None:
        return None
    done, total = job.completed_requests, job.total_requests
    elapsed = now - job.started_at
    if done <= 0 or total <= done or elapsed <= 0:
        return None
    return (total - done) * elapsed / done


def describe_progress(job: BatchJob, eta: float | None = None) -> str:
    """``job 1a2b: RUNNING, completed 12,345/100,000 (12.3%), 40 failed, ETA 3m``.

    :param eta: seconds left (see :func:`eta_seconds`); None leaves the ETA out.
    """
    head = f"job {job.id}: {job.status}"
    if job.total_requests <= 0:
        return f"{head}, input not validated yet"
    share = 100.0 * job.completed_requests / job.total_requests
    line = (
        f"{head}, completed {job.completed_requests:,}/{job.total_requests:,} ({share:.1f}%), "
        f"{job.failed_requests:,} failed"
    )
    if eta is not None and not job.status.is_terminal:
        line += f", ETA {format_duration(eta)}"
    return line


def without_eta(line: str) -> str:
    """A progress line without its ETA: what changes when the counts or status change."""
    return line.split(", ETA")[0]


def format_duration(seconds: float) -> str:
    """A short human duration: ``45s``, ``3m``, ``2h05m``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 60:
        return f"{minutes}m"
    return f"{minutes // 60}h{minutes % 60:02d}m"


__all__ = ["describe_progress", "eta_seconds", "format_duration", "without_eta"]
