"""Find the job an earlier try of the same task created, instead of paying for a second one.

The job's metadata carries a key built from the task's identity (dag_id, task_id, run_id,
map_index) and a fingerprint of its input. A later try with the same identity and the same
input finds that job while it is queued, running or succeeded, and reattaches to it.

When one key has several such jobs (a try died while its create was in flight, the server
committed that create late, and the retry had already made its own), :func:`settle` keeps one
and the others are cancelled: when a try reattaches, and while a job is watched during its
first minutes (see :class:`~airflow_provider_mistral_batch.batch.waiting.JobWatch`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_mistral_batch.models import (
    METADATA_VALUE_MAX_LENGTH,
    TIMEOUT_HOURS_MAX,
    BatchJob,
    BatchJobStatus,
)

if TYPE_CHECKING:
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

TASK_KEY_METADATA: Final = "airflow_task_key"


def is_reattachable(status: BatchJobStatus) -> bool:
    """Whether a job may still give, or gave, its results: succeeded, or running and not
    being cancelled.

    A status this provider does not know counts as running here, so a new server status never
    makes a retry pay for a second job.
    """
    if status.is_terminal:
        return status.is_success
    return status != BatchJobStatus.CANCELLATION_REQUESTED


# No job lives longer than its timeout (at most 168 h); an hour more covers clock skew.
_LOOKBACK: Final = timedelta(hours=TIMEOUT_HOURS_MAX + 1)


def task_identity(context: Mapping[str, Any]) -> tuple[str, str, str, int]:
    """dag_id, task_id, run_id and map_index of the running task instance."""
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    return (
        str(ti.dag_id),
        str(ti.task_id),
        str(ti.run_id),
        int(map_index if map_index is not None else -1),
    )


def task_key(identity: tuple[str, str, str, int], fingerprint: str) -> str:
    """A short, stable key for one task instance and one input."""
    raw = json.dumps([*identity, fingerprint])
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def task_metadata(identity: tuple[str, str, str, int], key: str) -> dict[str, str]:
    """Metadata that ties a job to its task: the key, plus readable names for the console."""
    dag_id, task_id, run_id, map_index = identity
    limit = METADATA_VALUE_MAX_LENGTH
    return {
        TASK_KEY_METADATA: key,
        "airflow_dag_id": dag_id[:limit],
        "airflow_task_id": task_id[:limit],
        "airflow_run_id": run_id[:limit],
        "airflow_map_index": str(map_index),
    }


@dataclass(frozen=True)
class Settlement:
    """Which of the jobs tagged with one task key to keep, and which to cancel.

    :param kept: the job the task follows, or None when none may still give results.
    :param to_cancel: other jobs of the key still queued or running: duplicates.
    """

    kept: BatchJob | None
    to_cancel: tuple[BatchJob, ...]


def settle(jobs: Iterable[BatchJob], key: str) -> Settlement:
    """Keep one job of ``key``: a succeeded one if any, else the oldest still running.

    Two jobs with one key happen when a try dies while its create is in flight, the server
    commits that create late and the retry has already made its own. The rule only depends on
    the jobs, never on who looks, so every watcher of the key keeps the same job.
    """
    live = [
        job
        for job in {job.id: job for job in jobs}.values()
        if (job.metadata or {}).get(TASK_KEY_METADATA) == key and is_reattachable(job.status)
    ]
    if not live:
        return Settlement(None, ())
    # A succeeded job already did the work; among the others the oldest is furthest along.
    live.sort(key=lambda job: (not job.status.is_success, job.created_at, job.id))
    kept = live[0]
    return Settlement(kept, tuple(job for job in live[1:] if not job.status.is_terminal))


def duplicate_warning(duplicate: BatchJob, kept: BatchJob) -> str:
    """The line logged when a duplicate job of a task is cancelled."""
    return (
        f"Cancelling Mistral batch job {duplicate.id}: a duplicate of job {kept.id} with the "
        f"same task key {(kept.metadata or {}).get(TASK_KEY_METADATA)} (the older is kept)"
    )


def jobs_of_key(hook: MistralBatchHook, key: str) -> list[BatchJob]:
    """Every job tagged with ``key`` that can still exist (newer than the longest timeout)."""
    created_after = datetime.now(UTC) - _LOOKBACK
    listing = hook.list_batch_jobs(metadata={TASK_KEY_METADATA: key}, created_after=created_after)
    return list(listing)


async def ajobs_of_key(hook: MistralBatchHook, key: str) -> list[BatchJob]:
    """Async twin of :func:`jobs_of_key`."""
    created_after = datetime.now(UTC) - _LOOKBACK
    listing = hook.alist_batch_jobs(metadata={TASK_KEY_METADATA: key}, created_after=created_after)
    return [job async for job in listing]


def find_job_to_reattach(hook: MistralBatchHook, key: str, log: Any) -> BatchJob | None:
    """The job tagged with ``key`` that succeeded or still runs, if any; duplicates of it
    (see :func:`settle`) are cancelled, each with a warning."""
    settlement = settle(jobs_of_key(hook, key), key)
    if settlement.kept is not None:
        for duplicate in settlement.to_cancel:
            log.warning("%s", duplicate_warning(duplicate, settlement.kept))
            try:
                hook.cancel_batch_job(duplicate.id)
            except Exception as exc:
                log.warning("Could not cancel Mistral batch job %s: %s", duplicate.id, exc)
    return settlement.kept
