"""What an ended job means for the task: the verdict, the trigger event, the XComs.

The one place that decides success or failure, for the operator, the sensor and the
trigger's events alike. Only SUCCESS can pass; any other status (FAILED, TIMEOUT_EXCEEDED,
CANCELLED, or one this code does not know) fails. XComs are pushed before the verdict, so a
failed task still shows the files its job produced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, ValidationError

from airflow_provider_mistral_batch.batch.identity import is_reattachable
from airflow_provider_mistral_batch.batch.wait_options import DEFAULT_MAX_FAILED_RATIO
from airflow_provider_mistral_batch.exceptions import (
    MistralBatchError,
    MistralBatchJobError,
    MistralBatchJobFatalError,
)
from airflow_provider_mistral_batch.hooks.http.streams import CutLine
from airflow_provider_mistral_batch.models import BatchJob, BatchJobStatus, BatchResultLine
from airflow_provider_mistral_batch.utils.redact import redact
from airflow_provider_mistral_batch.utils.wording import plural

EventKind = Literal["terminal", "timeout", "error"]

XCOM_JOB_ID: Final = "batch_job_id"
XCOM_OUTPUT_FILE: Final = "output_file"
XCOM_ERROR_FILE: Final = "error_file"
XCOM_JOB_IDS: Final = "batch_job_ids"
XCOM_OUTPUT_FILES: Final = "output_files"
XCOM_ERROR_FILES: Final = "error_files"
#: The connection the task's jobs belong to, for the UI plugin (an id, never a secret).
XCOM_CONN_ID: Final = "mistral_conn_id"
#: Why the operator failed on its input before creating a job (for the UI's tab).
XCOM_INPUT_ERROR: Final = "mistral_input_error"


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
    retry_helps: bool = False


def judge_job(
    job: BatchJob, max_failed_ratio: float | None = DEFAULT_MAX_FAILED_RATIO
) -> JobVerdict:
    """Decide whether an ended job lets the task succeed.

    :param job: the job, in a terminal status.
    :param max_failed_ratio: highest share of failed requests (0.0 to 1.0) a SUCCESS job may
        have; default 0.0: any failed request fails the task. None (like 1.0) lets any number
        fail, with a warning.
    """
    counts = (
        f"{job.succeeded_requests:,} succeeded, {job.failed_requests:,} failed "
        f"of {plural(job.total_requests, 'request')}"
    )
    if not job.status.is_success:
        details = "; ".join(f"{e.message} (x{e.count})" for e in job.errors)
        reason = f": {details}" if details else ""
        return JobVerdict(
            False,
            f"Mistral batch job {job.id} ended {job.status}{reason} ({counts})",
            retry_helps=_retry_helps(job),
        )
    what = f"Mistral batch job {job.id}"
    hint = f"; see error_file {job.error_file}"
    return _judge_failed_share(
        what, counts, job.failed_requests, job.total_requests, max_failed_ratio, hint
    )


def judge_jobs(
    jobs: Sequence[BatchJob],
    max_failed_ratio: float | None = DEFAULT_MAX_FAILED_RATIO,
    missing: int = 0,
) -> JobVerdict:
    """Decide whether the ended jobs of one task (its shards) let it succeed, as one outcome.

    The task succeeds only if every job succeeded; ``max_failed_ratio`` (default 0.0: none
    may fail) applies to the total, and requests with no result line (``missing``) count as
    failed.
    """
    if len(jobs) == 1 and missing == 0:
        return judge_job(jobs[0], max_failed_ratio)
    total = sum(job.total_requests for job in jobs)
    failed = sum(job.failed_requests for job in jobs) + missing
    succeeded = sum(job.succeeded_requests for job in jobs)
    counts = f"{succeeded:,} succeeded, {failed:,} failed of {plural(total, 'request')}"
    if missing:
        counts += f"; {missing:,} of the failed had no result line"
    what = (
        f"Mistral batch job {jobs[0].id}"
        if len(jobs) == 1
        else (f"{len(jobs)} Mistral batch jobs ({', '.join(job.id for job in jobs)})")
    )
    unsuccessful = [job for job in jobs if not job.status.is_success]
    if unsuccessful:
        if len(jobs) == 1:
            return judge_job(jobs[0])
        ended = "; ".join(judge_job(job).message for job in unsuccessful)
        # A CANCELLED shard was stopped on purpose: a retry would pay for it again.
        retry_helps = all(_retry_helps(job) for job in unsuccessful)
        return JobVerdict(
            False,
            f"{len(unsuccessful)} of {what} did not succeed: {ended}",
            retry_helps=retry_helps,
        )
    hint = f"; see error_file {jobs[0].error_file}" if len(jobs) == 1 else ""
    return _judge_failed_share(what, counts, failed, total, max_failed_ratio, hint)


def _judge_failed_share(
    what: str, counts: str, failed: int, total: int, max_failed_ratio: float | None, hint: str
) -> JobVerdict:
    """The verdict on succeeded jobs by their share of failed requests; every message says the
    rule applied (``2 of 5 requests failed (40%), above max_failed_ratio 0``)."""
    if failed <= 0:
        return JobVerdict(True, f"{what} succeeded ({counts})")
    ratio = failed / max(total, 1)
    share = f"{failed:,} of {plural(total, 'request')} failed ({_percent(ratio)})"
    if max_failed_ratio is not None and ratio > max_failed_ratio:
        return JobVerdict(
            False,
            f"{what} succeeded but {share}, above max_failed_ratio {max_failed_ratio:g} "
            f"({counts}){hint}",
        )
    if max_failed_ratio is None:
        rule = "max_failed_ratio None: failed requests only warn"
    else:
        rule = f"within max_failed_ratio {max_failed_ratio:g}"
    return JobVerdict(
        True,
        f"{what} succeeded; {share}, {rule} ({counts})",
        warning=f"{share} in {what}, {rule}{hint}",
    )


def _percent(ratio: float) -> str:
    """``40%``, ``12.5%``, ``<0.1%``: a share as the log says it."""
    text = f"{ratio:.1%}"
    if ratio > 0 and text == "0.0%":
        return "<0.1%"
    return text.replace(".0%", "%")


def _retry_helps(job: BatchJob) -> bool:
    """Whether a new try could change this ended job: FAILED or TIMEOUT_EXCEEDED make a new
    job on retry; a CANCELLED one was stopped on purpose."""
    return job.status in (BatchJobStatus.FAILED, BatchJobStatus.TIMEOUT_EXCEEDED)


def job_summary(job: BatchJob) -> dict[str, Any]:
    """The small, JSON-safe summary of one job (the cancel operator and the sensor return it)."""
    return {
        "job_id": job.id,
        "status": str(job.status),
        "output_file": job.output_file,
        "error_file": job.error_file,
        "total_requests": job.total_requests,
        "succeeded_requests": job.succeeded_requests,
        "failed_requests": job.failed_requests,
    }


def jobs_summary(
    jobs: Sequence[BatchJob], results: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The batch operator's return value: the first job's summary (the only one unless the
    input was sharded), every job's id and files, totals, and the results manifest.

    :param results: the manifest of the written results (``results_path``,
        ``missing_requests``, ``usage``...), or None when none were written.
    """
    summary = job_summary(jobs[0])
    if len(jobs) > 1:
        unsuccessful = [job for job in jobs if not job.status.is_success]
        summary["status"] = str(unsuccessful[0].status if unsuccessful else jobs[0].status)
        for key in ("total_requests", "succeeded_requests", "failed_requests"):
            summary[key] = sum(getattr(job, key) for job in jobs)
    summary["job_ids"] = [job.id for job in jobs]
    summary["output_files"] = [job.output_file for job in jobs]
    summary["error_files"] = [job.error_file for job in jobs]
    manifest = dict(results or {})
    summary["results_path"] = manifest.pop("results_path", None)
    summary["missing_requests"] = manifest.pop("missing_requests", None)
    summary["usage"] = manifest.pop("usage", None)
    if manifest:
        summary["results"] = manifest
    return summary


def job_snapshot(job: BatchJob) -> dict[str, Any]:
    """The job as plain data for a trigger event: everything but inline ``outputs``."""
    return job.model_dump(mode="json", exclude={"outputs"})


class TriggerEventPayload(BaseModel):
    """The one shape a :class:`MistralBatchJobTrigger` event may have.

    ``terminal``: the jobs ended. ``timeout``: the deadline passed (the last snapshots,
    possibly after a cancel). ``error``: polling gave up (snapshots may be missing).
    ``job_id`` is the first job's id and ``job`` its snapshot; a trigger that watched several
    jobs adds ``job_ids`` (all, in order) and ``jobs`` (the snapshots it has). Any other key
    is refused.
    """

    model_config = ConfigDict(extra="forbid")

    kind: EventKind
    job_id: str
    job: BatchJob | None = None
    jobs: list[BatchJob] = []
    job_ids: list[str] = []
    message: str = ""

    @property
    def all_jobs(self) -> list[BatchJob]:
        """Every job snapshot the event carries, in order."""
        if self.jobs:
            return self.jobs
        return [self.job] if self.job is not None else []


def make_event(
    kind: EventKind,
    job_id: str,
    job: BatchJob | None,
    message: str = "",
    jobs: Sequence[BatchJob] = (),
    job_ids: Sequence[str] = (),
) -> dict[str, Any]:
    """A trigger event payload (plain data), validated on the way out as on the way in.

    :param jobs: the snapshots of the jobs when the trigger watched several (shards).
    :param job_ids: every job's id, in order, when the trigger watched several.
    """
    payload: dict[str, Any] = {
        "kind": kind,
        "job_id": job_id,
        "job": job_snapshot(job) if job is not None else None,
        "message": message,
    }
    if len(job_ids) > 1:
        payload["job_ids"] = list(job_ids)
        payload["jobs"] = [job_snapshot(each) for each in jobs]
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
    every_job = not payload.job_ids or {job.id for job in payload.jobs} == set(payload.job_ids)
    if payload.kind == "terminal" and (
        not payload.all_jobs
        or not every_job
        or not all(job.is_terminal for job in payload.all_jobs)
    ):
        raise MistralBatchError(
            f"trigger event for job {payload.job_id} says the job ended but carries "
            f"no ended job: {event!r}"
        )
    if payload.job is not None and payload.job.id != payload.job_id:
        raise MistralBatchError(
            f"trigger event for job {payload.job_id} carries another job, {payload.job.id}"
        )
    return payload


def push_result_files(
    context: Mapping[str, Any],
    jobs: Sequence[BatchJob],
    *,
    lists: bool = False,
    job_ids: Sequence[str] = (),
) -> None:
    """Push ``output_file`` and ``error_file`` of a single job (None when it has none) and,
    with ``lists`` (the batch operator), ``output_files`` and ``error_files`` with one entry
    per job, and the job ids again: a wait that followed the kept one of duplicate jobs
    ended with another job than the one pushed when it was created.

    :param job_ids: every job's id, in order, when there were several: a job with no
        snapshot gets None in the lists.
    """
    ti = context["ti"]
    ids = list(job_ids) or [job.id for job in jobs]
    by_id = {job.id: job for job in jobs}
    ordered = [by_id.get(job_id) for job_id in ids]
    if len(ids) == 1 and ordered[0] is not None:
        ti.xcom_push(key=XCOM_OUTPUT_FILE, value=ordered[0].output_file)
        ti.xcom_push(key=XCOM_ERROR_FILE, value=ordered[0].error_file)
    if lists:
        if len(ids) == 1:
            ti.xcom_push(key=XCOM_JOB_ID, value=ids[0])
        ti.xcom_push(key=XCOM_JOB_IDS, value=ids)
        ti.xcom_push(
            key=XCOM_OUTPUT_FILES, value=[job.output_file if job else None for job in ordered]
        )
        ti.xcom_push(
            key=XCOM_ERROR_FILES, value=[job.error_file if job else None for job in ordered]
        )


#: Writes the joined results of ended jobs; returns the manifest for XCom (see results.py).
ResultsWriter = Callable[[Sequence[BatchJob]], Mapping[str, Any]]
#: Streams the lines of a file by id (the hook's ``iter_file_lines``).
FileLines = Callable[[str], Iterable[str]]

#: How much of an error file is read to quote its first errors in the final log line.
FIRST_ERRORS: Final = 3
FIRST_ERRORS_MAX_CHARS: Final = 4096
_ERROR_MAX_CHARS: Final = 200


def first_errors(
    lines: Iterable[str], limit: int = FIRST_ERRORS, max_chars: int = FIRST_ERRORS_MAX_CHARS
) -> list[str]:
    """``custom_id: message`` of the first ``limit`` lines of an error file, reading at most
    about ``max_chars`` characters of it (the iterator is closed after that).

    A line longer than ``max_chars``, or one its reader cut (a :class:`CutLine` of
    :func:`head_lines`), is not parsed: its start is quoted, marked as cut.
    """
    found: list[str] = []
    read = 0
    iterator = iter(lines)
    try:
        for line in iterator:
            read += len(line)
            if isinstance(line, CutLine) or len(line) > max_chars:
                shown = min(len(line), max_chars)
                text = f"(line cut at {shown:,} characters) {line[:_ERROR_MAX_CHARS]}"
            else:
                text = _error_of(line)
            found.append(_shorten(text))
            if len(found) >= limit or read >= max_chars:
                break
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()  # ends the download: only the head of the file is read
    return found


def _error_of(line: str) -> str:
    """``custom_id: message`` of an error file's line, or the line itself if it is not one."""
    try:
        result = BatchResultLine.model_validate_json(line)
    except ValidationError:
        return f"(not a result line) {line}"
    message = result.error_message or "no error"
    return f"{result.custom_id}: {message}" if result.custom_id is not None else message


def _shorten(text: str) -> str:
    # Spaces are collapsed in a bounded window: a huge text costs no more than a short one.
    window = text[: _ERROR_MAX_CHARS * 4]
    flat = " ".join(window.split())
    if len(flat) <= _ERROR_MAX_CHARS and len(window) == len(text):
        return flat
    return flat[: _ERROR_MAX_CHARS - 3] + "..."


def _with_first_errors(
    verdict: JobVerdict,
    jobs: Sequence[BatchJob],
    file_lines: FileLines | None,
    log: logging.Logger | Any,
) -> JobVerdict:
    """The verdict, its message (or warning) quoting the first errors of an error file when
    requests failed."""
    failing = verdict.warning is not None or not verdict.succeeded
    error_file = next((job.error_file for job in jobs if job.error_file), None)
    if file_lines is None or not failing or error_file is None:
        return verdict
    try:
        quoted = first_errors(file_lines(error_file))
    except Exception as exc:  # the verdict stands without the quotes
        log.warning("Could not read the first errors of error_file %s: %s", error_file, exc)
        return verdict
    if not quoted:
        return verdict
    tail = "; first errors: " + "; ".join(quoted)
    if not verdict.succeeded:
        return replace(verdict, message=verdict.message + tail)
    return replace(verdict, warning=f"{verdict.warning}{tail}")


def _log_usage(results: Mapping[str, Any] | None, log: logging.Logger | Any) -> None:
    usage = (results or {}).get("usage")
    if usage:
        counts = ", ".join(f"{name} {value:,}" for name, value in usage.items())
        log.info("Token usage of the successful requests: %s", counts)


def finish_with_jobs(
    context: Mapping[str, Any],
    jobs: Sequence[BatchJob],
    max_failed_ratio: float | None,
    log: logging.Logger | Any,
    *,
    write_results: ResultsWriter | None = None,
    file_lines: FileLines | None = None,
    mask: Callable[[str], str] = redact,
) -> dict[str, Any]:
    """The batch operator's end: push every job's files, write the results when asked, then
    succeed with the summary or fail with the reason (quoting the first lines of an error
    file when requests failed and ``file_lines`` can read it; with the token usage when the
    results were written). ``mask`` takes secrets out of the message, which quotes the
    server (default: any bearer token; the hook's ``mask`` also knows the connection's key).

    Requests with no result line count as failed for ``max_failed_ratio``. A CANCELLED job or
    too many failed requests fail without retries (a retry cannot change them); FAILED or
    TIMEOUT_EXCEEDED fail normally, so retries apply (a retry makes only those jobs again).
    """
    push_result_files(context, jobs, lists=True)
    results = write_results(jobs) if write_results is not None else None
    missing = int((results or {}).get("missing_requests") or 0)
    verdict = judge_jobs(jobs, max_failed_ratio, missing)
    _raise_or_log(_with_first_errors(verdict, jobs, file_lines, log), log, mask)
    _log_usage(results, log)
    return jobs_summary(jobs, results)


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
    verdict = _with_first_errors(judge_job(job, max_failed_ratio), [job], file_lines, log)
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
