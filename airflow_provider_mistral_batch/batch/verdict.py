"""The verdict on ended jobs: whether the task may succeed, and the one line that says why.

Only SUCCESS can pass; any other status (FAILED, TIMEOUT_EXCEEDED, CANCELLED, or one this code
does not know) fails. In a SUCCESS job, every request that did not succeed counts against
``max_failed_ratio``: once the results are written, every row not ``success`` (``error``,
``invalid_output``, ``missing``, ``expired``, ``cancelled``), and the line names each count;
without results, the job's failed requests. When requests failed, the first lines of an error
file are quoted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_mistral_batch.batch.error_quotes import first_errors
from airflow_provider_mistral_batch.batch.result_rows import (
    INVALID_OUTPUT,
    SUCCESS,
    describe_counts,
)
from airflow_provider_mistral_batch.batch.wait_options import DEFAULT_MAX_FAILED_RATIO
from airflow_provider_mistral_batch.models import BatchJob, BatchJobStatus
from airflow_provider_mistral_batch.utils.wording import plural

#: Streams the lines of a file by id (the hook's ``iter_file_head_lines``).
FileLines = Callable[[str], Iterable[str]]


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
    counts: Mapping[str, int] | None = None,
) -> JobVerdict:
    """Decide whether the ended jobs of one task (its shards) let it succeed, as one outcome.

    The task succeeds only if every job succeeded; ``max_failed_ratio`` (default 0.0: none
    may fail) applies to the total.

    :param missing: requests no result line answers, counted as failed; used only without
        ``counts``.
    :param counts: the results' rows of each status (:data:`.result_rows.STATUSES`), once they
        were written: every row not ``success`` counts as failed, and the message names each
        count. None: the jobs' own counts of succeeded and failed requests.
    """
    if len(jobs) == 1 and missing == 0 and counts is None:
        return judge_job(jobs[0], max_failed_ratio)
    total = sum(job.total_requests for job in jobs)
    of_total = f" of {plural(total, 'request')}"
    invalid = 0
    if counts is None:
        failed = sum(job.failed_requests for job in jobs) + missing
        succeeded = sum(job.succeeded_requests for job in jobs)
        described = f"{succeeded:,} succeeded, {failed:,} failed{of_total}"
        if missing:
            described += f"; {missing:,} of the failed had no result line"
    else:
        failed = sum(count for status, count in counts.items() if status != SUCCESS)
        invalid = counts.get(INVALID_OUTPUT, 0)
        described = describe_counts(counts) + of_total
    what = (
        f"Mistral batch job {jobs[0].id}"
        if len(jobs) == 1
        else (f"{len(jobs)} Mistral batch jobs ({', '.join(job.id for job in jobs)})")
    )
    unsuccessful = [job for job in jobs if not job.status.is_success]
    if unsuccessful:
        results = f"; results: {described}" if counts is not None else ""
        if len(jobs) == 1:
            verdict = judge_job(jobs[0])
            return replace(verdict, message=verdict.message + results)
        ended = "; ".join(judge_job(job).message for job in unsuccessful)
        # A CANCELLED shard was stopped on purpose: a retry would pay for it again.
        retry_helps = all(_retry_helps(job) for job in unsuccessful)
        return JobVerdict(
            False,
            f"{len(unsuccessful)} of {what} did not succeed: {ended}{results}",
            retry_helps=retry_helps,
        )
    hint = f"; see error_file {jobs[0].error_file}" if len(jobs) == 1 else ""
    return _judge_failed_share(
        what, described, failed, total, max_failed_ratio, hint, invalid=invalid
    )


def _judge_failed_share(
    what: str,
    counts: str,
    failed: int,
    total: int,
    max_failed_ratio: float | None,
    hint: str,
    *,
    invalid: int = 0,
) -> JobVerdict:
    """The verdict on succeeded jobs by their share of failed requests (invalid_output ones
    among them); every message says the rule applied (``2 of 5 requests failed (40%), above
    max_failed_ratio 0``)."""
    if failed <= 0:
        return JobVerdict(True, f"{what} succeeded ({counts})")
    ratio = failed / max(total, 1)
    verb = "failed or were invalid" if invalid else "failed"
    share = f"{failed:,} of {plural(total, 'request')} {verb} ({_percent(ratio)})"
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


def with_first_errors(
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


__all__ = [
    "FileLines",
    "JobVerdict",
    "judge_job",
    "judge_jobs",
    "with_first_errors",
]
