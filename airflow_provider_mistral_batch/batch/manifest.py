"""What a task leaves for the next ones: the XCom keys it pushes and the small summaries it
returns (a job's ids, files and counts, and the results' manifest)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from airflow_provider_mistral_batch.models import BatchJob

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
#: The job ids of each resubmit round, round 0 first: ``[[ids], [ids], ...]``.
XCOM_ROUNDS: Final = "batch_job_rounds"


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
        ``missing_requests``, ``usage``, ``counts``...), or None when none were written:
        those four are kept at the top, the rest (``lines``, ``succeeded``, ``failed``,
        ``missing_ids``) under ``results``.
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
    # Rows of each status (success, error, invalid_output, missing, expired, cancelled).
    summary["counts"] = manifest.pop("counts", None)
    if manifest:
        summary["results"] = manifest
    return summary


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


__all__ = [
    "XCOM_CONN_ID",
    "XCOM_ERROR_FILE",
    "XCOM_ERROR_FILES",
    "XCOM_INPUT_ERROR",
    "XCOM_JOB_ID",
    "XCOM_JOB_IDS",
    "XCOM_OUTPUT_FILE",
    "XCOM_OUTPUT_FILES",
    "XCOM_ROUNDS",
    "job_summary",
    "jobs_summary",
    "push_result_files",
]
