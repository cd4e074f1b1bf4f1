"""Finishing a task on an ended job: XComs first, then the verdict (operators and sensors)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final, NoReturn

from airflow.sdk.exceptions import AirflowException

from airflow_provider_mistral_batch._compat import AirflowFailException
from airflow_provider_mistral_batch.job_outcome import (
    TriggerEventPayload,
    job_summary,
    judge_job,
    parse_event,
)
from airflow_provider_mistral_batch.models import BatchJob, BatchJobStatus
from airflow_provider_mistral_batch.reattach import is_reattachable

XCOM_JOB_ID: Final = "batch_job_id"
XCOM_OUTPUT_FILE: Final = "output_file"
XCOM_ERROR_FILE: Final = "error_file"


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
            raise AirflowFailException(verdict.message)
        raise AirflowException(verdict.message)
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
        raise AirflowFailException(message)
    raise AirflowException(message)


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
    raise AirflowException(message)
