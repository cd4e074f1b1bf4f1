"""How a task ends once its jobs ended, or its wait did: push the files, write the results,
then succeed with the summary or fail with the verdict (:mod:`.verdict`), for the operator,
the sensor and the trigger's events alike. XComs are pushed before the verdict, so a failed
task still shows the files its job produced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn

from airflow_provider_mistral_batch.batch.event import TriggerEventPayload, parse_event
from airflow_provider_mistral_batch.batch.identity import is_reattachable
from airflow_provider_mistral_batch.batch.manifest import (
    job_summary,
    jobs_summary,
    push_result_files,
)
from airflow_provider_mistral_batch.batch.result_rows import SUCCESS
from airflow_provider_mistral_batch.batch.verdict import (
    FileLines,
    JobVerdict,
    judge_job,
    judge_jobs,
    with_first_errors,
)
from airflow_provider_mistral_batch.exceptions import (
    MistralBatchJobError,
    MistralBatchJobFatalError,
)
from airflow_provider_mistral_batch.models import BatchJob
from airflow_provider_mistral_batch.utils.redact import redact

if TYPE_CHECKING:
    from airflow_provider_mistral_batch.batch.resubmit import RoundsOutcome

#: Writes the joined results of ended jobs; returns the manifest for XCom (see results.py).
ResultsWriter = Callable[[Sequence[BatchJob]], Mapping[str, Any]]


def _log_usage(results: Mapping[str, Any] | None, log: logging.Logger | Any) -> None:
    usage = (results or {}).get("usage")
    if usage:
        counts = ", ".join(f"{name} {value:,}" for name, value in usage.items())
        log.info("Token usage of the answered requests: %s", counts)


def finish_with_jobs(
    context: Mapping[str, Any],
    jobs: Sequence[BatchJob],
    max_failed_ratio: float | None,
    log: logging.Logger | Any,
    *,
    write_results: ResultsWriter | None = None,
    file_lines: FileLines | None = None,
    mask: Callable[[str], str] = redact,
    rounds: RoundsOutcome | None = None,
) -> dict[str, Any]:
    """The batch operator's end: push every job's files, write the results when asked, then
    succeed with the summary or fail with the reason (quoting the first lines of an error
    file when requests failed and ``file_lines`` can read it; with the token usage when the
    results were written). ``mask`` takes secrets out of the message, which quotes the
    server (default: any bearer token; the hook's ``mask`` also knows the connection's key).

    Once the results are written, every row that is not ``success`` (error, invalid_output,
    missing, expired, cancelled) counts as failed for ``max_failed_ratio``, and the final line
    names the count of each status (:func:`.judge_jobs`). A CANCELLED job or
    too many failed requests fail without retries (a retry cannot change them); FAILED or
    TIMEOUT_EXCEEDED fail normally, so retries apply (a retry makes only those jobs again).

    :param rounds: with resubmit rounds (``jobs`` then holds every round's jobs): the jobs
        as their final rows stand, judged and summed instead of ``jobs``, and the line that
        says what each round sent again; with the results written, the summary's succeeded
        and failed requests are the final rows' (``success`` and the others).
    """
    push_result_files(context, jobs, lists=True)
    results = write_results(jobs) if write_results is not None else None
    missing = int((results or {}).get("missing_requests") or 0)
    counts = (results or {}).get("counts")
    judged = rounds.final_jobs if rounds is not None else jobs
    verdict = judge_jobs(
        judged, max_failed_ratio, missing, counts if isinstance(counts, Mapping) else None
    )
    if rounds is not None and rounds.note:
        verdict = replace(verdict, message=f"{verdict.message}; {rounds.note}")
    _raise_or_log(with_first_errors(verdict, jobs, file_lines, log), log, mask)
    _log_usage(results, log)
    summary = jobs_summary(judged, results)
    if rounds is not None:
        summary.update(rounds.as_xcom())
        if isinstance(counts, Mapping):
            # The final rows say what each request came to (an invalid answer the API
            # counted as succeeded, a request the last round left unanswered).
            summary["succeeded_requests"] = counts.get(SUCCESS, 0)
            summary["failed_requests"] = sum(
                count for status, count in counts.items() if status != SUCCESS
            )
    return summary


def finish_with_job(
    context: Mapping[str, Any],
    job: BatchJob,
    max_failed_ratio: float | None,
    log: logging.Logger | Any,
    *,
    file_lines: FileLines | None = None,
    mask: Callable[[str], str] = redact,
) -> dict[str, Any]:
    """The sensor's end: push the job's files, then succeed with its summary or fail (quoting
    the first errors, masked, as :func:`finish_with_jobs` does)."""
    push_result_files(context, [job])
    verdict = with_first_errors(judge_job(job, max_failed_ratio), [job], file_lines, log)
    _raise_or_log(verdict, log, mask)
    return job_summary(job)


def _raise_or_log(
    verdict: JobVerdict, log: logging.Logger | Any, mask: Callable[[str], str]
) -> None:
    # The message quotes the server (job errors, error file lines): some echo the key.
    if not verdict.succeeded:
        if verdict.retry_helps:
            raise MistralBatchJobError(mask(verdict.message))
        raise MistralBatchJobFatalError(mask(verdict.message))
    if verdict.warning:
        log.warning("%s", mask(verdict.warning))
    log.info("%s", mask(verdict.message))


def fail_at_deadline(
    context: Mapping[str, Any],
    jobs: Sequence[BatchJob],
    message: str,
    timeout_error: type[Exception] | None = None,
    *,
    lists: bool = False,
    job_ids: Sequence[str] = (),
) -> NoReturn:
    """Push the result files the jobs have so far, then fail because the wait ran out.

    :param timeout_error: what to raise (sensors raise a sensor timeout). None is the
        operator's rule: a job a retry could not reattach to (one being cancelled) fails the
        task without retries, since the retry would pay for a new job that would likely meet
        the same deadline; jobs left running fail it normally, and a retry reattaches and
        waits again.
    """
    if jobs:
        push_result_files(context, jobs, lists=lists, job_ids=job_ids)
    if timeout_error is not None:
        raise timeout_error(message)
    if any(not is_reattachable(job.status) for job in jobs):
        raise MistralBatchJobFatalError(message)
    raise MistralBatchJobError(message)


def finish_with_event(
    context: Mapping[str, Any],
    event: Any,
    max_failed_ratio: float | None,
    log: logging.Logger | Any,
    timeout_error: type[Exception] | None = None,
    *,
    batch_operator: bool = False,
    write_results: ResultsWriter | None = None,
    file_lines: FileLines | None = None,
    mask: Callable[[str], str] = redact,
) -> dict[str, Any]:
    """Resume from a :class:`MistralBatchJobTrigger` event (only its known shapes pass).

    :param timeout_error: raised for a ``timeout`` event (sensors raise a sensor timeout);
        None applies the operator's rule of :func:`fail_at_deadline`.
    :param batch_operator: finish as the batch operator (lists in XCom, results, the jobs'
        summary) rather than as the sensor.
    :param file_lines: reads a file's lines, to quote the first errors of an error file.
    :param mask: takes secrets out of a message quoting the server.
    """
    payload: TriggerEventPayload = parse_event(event)
    jobs = payload.all_jobs
    if payload.kind == "terminal":
        if batch_operator:
            return finish_with_jobs(
                context,
                jobs,
                max_failed_ratio,
                log,
                write_results=write_results,
                file_lines=file_lines,
                mask=mask,
            )
        return finish_with_job(
            context, jobs[0], max_failed_ratio, log, file_lines=file_lines, mask=mask
        )
    message = payload.message or f"waiting for job {payload.job_id} failed"
    if payload.kind == "timeout":
        fail_at_deadline(
            context, jobs, message, timeout_error, lists=batch_operator, job_ids=payload.job_ids
        )
    if jobs:
        push_result_files(context, jobs, lists=batch_operator, job_ids=payload.job_ids)
    raise MistralBatchJobError(message)


__all__ = [
    "ResultsWriter",
    "fail_at_deadline",
    "finish_with_event",
    "finish_with_job",
    "finish_with_jobs",
]
