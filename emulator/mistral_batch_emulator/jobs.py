"""The job registry: the small state of every batch job, and how lists filter it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_mistral_batch.models import (
    ApiEndpoint,
    BatchError,
    BatchJob,
    BatchJobStatus,
)


@dataclass
class JobRecord:
    """One batch job. Kept small: counters and ids, never the requests themselves."""

    id: str
    endpoint: ApiEndpoint
    input_files: list[str]
    model: str | None
    agent_id: str | None
    metadata: dict[str, str] | None
    timeout_hours: int
    created_at: int
    # Inline ``requests`` are written to this private file at creation.
    inline_path: Path | None = None
    # caller_id of the key that created the job (for ``created_by_me``); never on the wire.
    created_by: str | None = None
    status: BatchJobStatus = BatchJobStatus.QUEUED
    total_requests: int = 0
    completed_requests: int = 0
    succeeded_requests: int = 0
    failed_requests: int = 0
    started_at: int | None = None
    completed_at: int | None = None
    output_file: str | None = None
    error_file: str | None = None
    errors: list[BatchError] = field(default_factory=list)
    # Where results are written while the job runs (read by ``inline=true``).
    result_paths: list[Path] = field(default_factory=list)
    cancel_requested: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    seq: int = 0

    @property
    def is_inline(self) -> bool:
        """Whether the job was created with inline ``requests``."""
        return self.inline_path is not None

    def to_model(self, outputs: list[dict[str, Any]] | None = None) -> BatchJob:
        """The job as the API describes it."""
        return BatchJob(
            id=self.id,
            input_files=list(self.input_files),
            metadata=dict(self.metadata) if self.metadata is not None else None,
            endpoint=self.endpoint,
            model=self.model,
            agent_id=self.agent_id,
            output_file=self.output_file,
            error_file=self.error_file,
            errors=list(self.errors),
            outputs=outputs,
            status=self.status,
            created_at=self.created_at,
            total_requests=self.total_requests,
            completed_requests=self.completed_requests,
            succeeded_requests=self.succeeded_requests,
            failed_requests=self.failed_requests,
            started_at=self.started_at,
            completed_at=self.completed_at,
        )


@dataclass(frozen=True)
class JobFilter:
    """Filters of ``GET /v1/batch/jobs``; None means no filter.

    :param created_by: only jobs created with the key of this caller id.
    """

    model: str | None = None
    agent_id: str | None = None
    created_by: str | None = None
    created_after: float | None = None
    statuses: frozenset[str] | None = None
    metadata: dict[str, str] | None = None

    def accepts(self, job: JobRecord) -> bool:
        """Whether a job passes every filter."""
        if self.model is not None and job.model != self.model:
            return False
        if self.agent_id is not None and job.agent_id != self.agent_id:
            return False
        if self.created_by is not None and job.created_by != self.created_by:
            return False
        if self.created_after is not None and job.created_at < self.created_after:
            return False
        if self.statuses is not None and job.status.value not in self.statuses:
            return False
        if self.metadata:
            own = job.metadata or {}
            return all(own.get(key) == value for key, value in self.metadata.items())
        return True


class JobStore:
    """Every batch job not deleted."""

    def __init__(self) -> None:
        self._jobs: dict[str, JobRecord] = {}
        self._seq = 0

    def add(self, job: JobRecord) -> JobRecord:
        """Register a new job."""
        self._seq += 1
        job.seq = self._seq
        self._jobs[job.id] = job
        return job

    def get(self, job_id: str) -> JobRecord | None:
        """A job, or None."""
        return self._jobs.get(job_id)

    def remove(self, job_id: str) -> JobRecord | None:
        """Forget a job; None when it did not exist."""
        return self._jobs.pop(job_id, None)

    def find(self, flt: JobFilter, newest_first: bool = True) -> list[JobRecord]:
        """Matching jobs, ordered by creation."""
        matching = [job for job in self._jobs.values() if flt.accepts(job)]
        matching.sort(key=lambda job: (job.created_at, job.seq), reverse=newest_first)
        return matching

    def all(self) -> list[JobRecord]:
        """Every job."""
        return list(self._jobs.values())

    def clear(self) -> None:
        """Forget every job (their tasks must be stopped first)."""
        self._jobs.clear()


__all__ = ["JobFilter", "JobRecord", "JobStore"]
