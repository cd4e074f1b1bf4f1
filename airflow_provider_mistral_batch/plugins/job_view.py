"""A batch job as the plugin's pages show it: progress, times, ETA, the task that made it.

Pure data from a :class:`BatchJob` and the clock; no I/O, no Airflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote

from airflow_provider_mistral_batch.batch.progress import eta_seconds, format_duration
from airflow_provider_mistral_batch.models import (
    DAG_ID_METADATA,
    MAP_INDEX_METADATA,
    RUN_ID_METADATA,
    TASK_ID_METADATA,
    BatchJob,
    BatchJobStatus,
)

#: The job metadata keys naming the task instance that made a job (written by the operator).
TASK_METADATA_KEYS: Final = (DAG_ID_METADATA, RUN_ID_METADATA, TASK_ID_METADATA)


@dataclass(frozen=True)
class MadeBy:
    """The task instance a job's metadata names, and its pages in Airflow's UI.

    The paths are relative to the UI's root (the api-server's base URL).
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int

    @property
    def run_path(self) -> str:
        """The DAG run's page."""
        return f"dags/{_segment(self.dag_id)}/runs/{_segment(self.run_id)}"

    @property
    def task_path(self) -> str:
        """The task instance's page."""
        path = f"{self.run_path}/tasks/{_segment(self.task_id)}"
        return f"{path}/mapped/{self.map_index}" if self.map_index >= 0 else path

    @property
    def label(self) -> str:
        """``dag / run / task[3]``."""
        index = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id} / {self.run_id} / {self.task_id}{index}"


@dataclass(frozen=True)
class JobView:
    """What a page shows of one job."""

    job: BatchJob
    #: Completed, succeeded and failed requests in percent of the total (0 before validation).
    completed_percent: float
    succeeded_percent: float
    failed_percent: float
    created: str
    started: str | None
    ended: str | None
    #: How long it ran (to now while running), or None before it started.
    duration: str | None
    #: Estimated time left while running, or None when unknown.
    eta: str | None
    made_by: MadeBy | None

    @property
    def active(self) -> bool:
        """Whether the job may still change (the page keeps refreshing)."""
        return not self.job.is_terminal

    @property
    def cancellable(self) -> bool:
        """Whether a Cancel button makes sense (not ended, no cancellation requested yet)."""
        return self.active and self.job.status != BatchJobStatus.CANCELLATION_REQUESTED

    @property
    def status_class(self) -> str:
        """A CSS class for the status badge: one per known status, ``unknown`` otherwise."""
        status = self.job.status
        return status.value.lower() if status.is_known else "unknown"


def job_view(job: BatchJob, now: float) -> JobView:
    """Describe ``job`` at epoch time ``now``."""
    total = job.total_requests

    def percent(count: int) -> float:
        return min(100.0, 100.0 * count / total) if total > 0 else 0.0

    end = job.completed_at if job.is_terminal else None
    duration = None
    if job.started_at is not None:
        until = end if end is not None else (None if job.is_terminal else now)
        if until is not None:
            duration = format_duration(max(0.0, until - job.started_at))
    eta = eta_seconds(job, now)
    return JobView(
        job=job,
        completed_percent=percent(job.completed_requests),
        succeeded_percent=percent(job.succeeded_requests),
        failed_percent=percent(job.failed_requests),
        created=format_time(job.created_at),
        started=format_time(job.started_at) if job.started_at is not None else None,
        ended=format_time(end) if end is not None else None,
        duration=duration,
        eta=format_duration(eta) if eta is not None else None,
        made_by=made_by(job),
    )


def made_by(job: BatchJob) -> MadeBy | None:
    """The task instance named by the job's metadata, or None when it names none."""
    metadata = job.metadata or {}
    dag_id, run_id, task_id = (metadata.get(key) for key in TASK_METADATA_KEYS)
    if not (isinstance(dag_id, str) and isinstance(run_id, str) and isinstance(task_id, str)):
        return None
    if not (dag_id and run_id and task_id):
        return None
    raw_index = metadata.get(MAP_INDEX_METADATA)
    try:
        map_index = int(raw_index) if raw_index is not None else -1
    except (TypeError, ValueError):
        map_index = -1
    return MadeBy(dag_id=dag_id, run_id=run_id, task_id=task_id, map_index=map_index)


def format_time(epoch: float) -> str:
    """``2026-11-30 14:05:09 UTC``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _segment(value: str) -> str:
    return quote(value, safe="")


__all__ = ["JobView", "MadeBy", "format_time", "job_view", "made_by"]
