"""What an ended job means for the task: the one place that decides success or failure.

Used by the operator, the sensor and the trigger's events alike. Only SUCCESS can pass; any
other status (FAILED, TIMEOUT_EXCEEDED, CANCELLED, or one this code does not know) fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from airflow_provider_mistral_batch.exceptions import MistralBatchError, MistralBatchInputError
from airflow_provider_mistral_batch.models import BatchJob

EventKind = Literal["terminal", "timeout", "error"]


@dataclass(frozen=True)
class JobVerdict:
    """The decision on an ended job.

    :param succeeded: whether the task may succeed.
    :param message: why, in one line.
    :param warning: a line to log as a warning when the task succeeds anyway.
    """

    succeeded: bool
    message: str
    warning: str | None = None


def check_wait_options(
    task_id: str,
    *,
    max_failed_ratio: float | None = None,
    poll_interval: float | None = None,
    wait_timeout: float | None = None,
    max_consecutive_errors: int | None = None,
) -> None:
    """Refuse, when the DAG is parsed, waiting options no job could satisfy."""
    if max_failed_ratio is not None and not 0.0 <= max_failed_ratio <= 1.0:
        raise MistralBatchInputError(
            f"{task_id}: max_failed_ratio must be between 0.0 and 1.0, got {max_failed_ratio}"
        )
    if poll_interval is not None and not poll_interval > 0:
        raise MistralBatchInputError(
            f"{task_id}: poll_interval must be positive, got {poll_interval}"
        )
    if wait_timeout is not None and not wait_timeout > 0:
        raise MistralBatchInputError(
            f"{task_id}: wait_timeout must be a positive number of seconds, got {wait_timeout}"
        )
    if max_consecutive_errors is not None and not (
        isinstance(max_consecutive_errors, int)
        and not isinstance(max_consecutive_errors, bool)
        and max_consecutive_errors >= 1
    ):
        raise MistralBatchInputError(
            f"{task_id}: max_consecutive_errors must be a whole number >= 1, "
            f"got {max_consecutive_errors!r}"
        )


def judge_job(job: BatchJob, max_failed_ratio: float | None = None) -> JobVerdict:
    """Decide whether an ended job lets the task succeed.

    :param job: the job, in a terminal status.
    :param max_failed_ratio: highest share of failed requests (0.0 to 1.0) a SUCCESS job may
        have; None (the default) only warns about failed requests.
    """
    counts = (
        f"{job.succeeded_requests:,} succeeded, {job.failed_requests:,} failed "
        f"of {job.total_requests:,} requests"
    )
    if not job.status.is_success:
        details = "; ".join(f"{e.message} (x{e.count})" for e in job.errors)
        reason = f": {details}" if details else ""
        return JobVerdict(
            False, f"Mistral batch job {job.id} ended {job.status}{reason} ({counts})"
        )
    if job.failed_requests <= 0:
        return JobVerdict(True, f"Mistral batch job {job.id} succeeded ({counts})")
    ratio = job.failed_requests / max(job.total_requests, 1)
    if max_failed_ratio is not None and ratio > max_failed_ratio:
        return JobVerdict(
            False,
            f"Mistral batch job {job.id} succeeded but {ratio:.1%} of its requests failed, "
            f"above max_failed_ratio={max_failed_ratio:.1%} ({counts}); see error_file "
            f"{job.error_file}",
        )
    return JobVerdict(
        True,
        f"Mistral batch job {job.id} succeeded ({counts})",
        warning=(
            f"{job.failed_requests:,} requests of Mistral batch job {job.id} failed; "
            f"see error_file {job.error_file}"
        ),
    )


def job_summary(job: BatchJob) -> dict[str, Any]:
    """The small, JSON-safe summary an operator returns (and so pushes to XCom)."""
    return {
        "job_id": job.id,
        "status": str(job.status),
        "output_file": job.output_file,
        "error_file": job.error_file,
        "total_requests": job.total_requests,
        "succeeded_requests": job.succeeded_requests,
        "failed_requests": job.failed_requests,
    }


def job_snapshot(job: BatchJob) -> dict[str, Any]:
    """The job as plain data for a trigger event: everything but inline ``outputs``."""
    return job.model_dump(mode="json", exclude={"outputs"})


class TriggerEventPayload(BaseModel):
    """The one shape a :class:`MistralBatchJobTrigger` event may have.

    ``terminal``: the job ended (``job`` set). ``timeout``: the deadline passed (``job`` is the
    last snapshot, possibly after a cancel). ``error``: polling gave up (``job`` may be None).
    Any other key is refused.
    """

    model_config = ConfigDict(extra="forbid")

    kind: EventKind
    job_id: str
    job: BatchJob | None = None
    message: str = ""


def make_event(
    kind: EventKind, job_id: str, job: BatchJob | None, message: str = ""
) -> dict[str, Any]:
    """A trigger event payload (plain data), validated on the way out as on the way in."""
    payload = {
        "kind": kind,
        "job_id": job_id,
        "job": job_snapshot(job) if job is not None else None,
        "message": message,
    }
    TriggerEventPayload.model_validate(payload)
    return payload


def parse_event(event: Any) -> TriggerEventPayload:
    """Accept only the event shapes this provider's trigger yields; anything else fails."""
    if not isinstance(event, dict):
        raise MistralBatchError(f"unexpected trigger event {event!r}: expected a dict")
    try:
        payload = TriggerEventPayload.model_validate(event)
    except ValidationError as exc:
        raise MistralBatchError(f"unexpected trigger event {event!r}: {exc}") from None
    if payload.kind == "terminal" and (payload.job is None or not payload.job.is_terminal):
        raise MistralBatchError(
            f"trigger event for job {payload.job_id} says the job ended but carries "
            f"no ended job: {event!r}"
        )
    if payload.job is not None and payload.job.id != payload.job_id:
        raise MistralBatchError(
            f"trigger event for job {payload.job_id} carries another job, {payload.job.id}"
        )
    return payload
