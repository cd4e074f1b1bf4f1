"""What an ended job means for the task: the verdict, the trigger event, the XComs.

The one place that decides success or failure, for the operator, the sensor and the
trigger's events alike. Only SUCCESS can pass; any other status (FAILED, TIMEOUT_EXCEEDED,
CANCELLED, or one this code does not know) fails. XComs are pushed before the verdict, so a
failed task still shows the files its job produced.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, ValidationError

from airflow_provider_mistral_batch.exceptions import (
    MistralBatchError,
    MistralBatchJobError,
    MistralBatchJobFatalError,
)
from airflow_provider_mistral_batch.models import BatchJob, BatchJobStatus
from airflow_provider_mistral_batch.utils.reattach import is_reattachable

EventKind = Literal["terminal", "timeout", "error"]

XCOM_JOB_ID: Final = "batch_job_id"
XCOM_OUTPUT_FILE: Final = "output_file"
XCOM_ERROR_FILE: Final = "error_file"


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


def push_result_files(context: Mapping[str, Any], job: BatchJob) -> None:
    """Push ``output_file`` and ``error_file`` (None when the job has none)."""
    ti = context["ti"]
    ti.xcom_push(key=XCOM_OUTPUT_FILE, value=job.output_file)
    ti.xcom_push(key=XCOM_ERROR_FILE, value=job.error_file)


def finish_with_job(
    context: Mapping[str, Any],
    job: BatchJob,
    max_failed_ratio: float | None,
    log: logging.Logger | Any,
) -> dict[str, Any]:
    """Push the result files, then succeed with the job's summary or fail with the reason.

    A CANCELLED job or a SUCCESS job with too many failed requests fails without retries (a
    retry cannot change it); FAILED or TIMEOUT_EXCEEDED fail normally, so retries apply.
    """
    push_result_files(context, job)
    verdict = judge_job(job, max_failed_ratio)
    if not verdict.succeeded:
        if job.status in (BatchJobStatus.CANCELLED, BatchJobStatus.SUCCESS):
            raise MistralBatchJobFatalError(verdict.message)
        raise MistralBatchJobError(verdict.message)
    if verdict.warning:
        log.warning("%s", verdict.warning)
    log.info("%s", verdict.message)
    return job_summary(job)


def fail_at_deadline(
    context: Mapping[str, Any],
    job: BatchJob | None,
    message: str,
    timeout_error: type[Exception] | None = None,
) -> NoReturn:
    """Push the result files the job has so far, then fail because the wait ran out.

    :param timeout_error: what to raise (sensors raise a sensor timeout). None is the
        operator's rule: a job a retry could not reattach to (one being cancelled) fails the
        task without retries, since the retry would pay for a new job that would likely meet
        the same deadline; a job left running fails it normally, and a retry reattaches and
        waits again.
    """
    if job is not None:
        push_result_files(context, job)
    if timeout_error is not None:
        raise timeout_error(message)
    if job is not None and not is_reattachable(job.status):
        raise MistralBatchJobFatalError(message)
    raise MistralBatchJobError(message)


def finish_with_event(
    context: Mapping[str, Any],
    event: Any,
    max_failed_ratio: float | None,
    log: logging.Logger | Any,
    timeout_error: type[Exception] | None = None,
) -> dict[str, Any]:
    """Resume from a :class:`MistralBatchJobTrigger` event (only its known shapes pass).

    :param timeout_error: raised for a ``timeout`` event (sensors raise a sensor timeout);
        None applies the operator's rule of :func:`fail_at_deadline`.
    """
    payload: TriggerEventPayload = parse_event(event)
    if payload.kind == "terminal" and payload.job is not None:
        return finish_with_job(context, payload.job, max_failed_ratio, log)
    message = payload.message or f"waiting for job {payload.job_id} failed"
    if payload.kind == "timeout":
        fail_at_deadline(context, payload.job, message, timeout_error)
    if payload.job is not None:
        push_result_files(context, payload.job)
    raise MistralBatchJobError(message)
