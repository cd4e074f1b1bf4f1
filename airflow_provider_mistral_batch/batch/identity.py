"""A job's identity: the task it belongs to, and the one rule for duplicate jobs.

The job's metadata carries a key built from the task's identity (dag_id, task_id, run_id,
map_index) and a fingerprint of its input. A later try with the same identity and the same
input finds that job while it is queued, running or succeeded, and reattaches to it.

Duplicates are jobs made for one thing: of one task key (a try died while its create was in
flight, the server committed that create late, and the retry had already made its own), or of
one create's idempotency key (two ambiguous attempts of one create both became jobs).
:func:`choose_kept` is the one rule for them: keep a succeeded job, else the oldest; the
others still queued or running are cancelled, each with a warning naming both ids. It is
applied when a try reattaches (:func:`find_job_to_reattach`), when a retried create finds
several jobs with its idempotency key (:func:`duplicate_chooser`, handed to the hook), and
while a job is watched during its first minutes
(:class:`~airflow_provider_mistral_batch.batch.waiting.JobWatch`), which also catches a job
that an ambiguous create made after the create returned.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_mistral_batch.models import (
    DAG_ID_METADATA,
    MAP_INDEX_METADATA,
    METADATA_VALUE_MAX_LENGTH,
    RUN_ID_METADATA,
    TASK_ID_METADATA,
    TASK_KEY_METADATA,
    TIMEOUT_HOURS_MAX,
    BatchJob,
    BatchJobStatus,
)

if TYPE_CHECKING:
    from airflow_provider_mistral_batch.batch.submit_options import SubmitOptions
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook


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


def task_keys(identity: tuple[str, str, str, int], fingerprint: str, count: int) -> list[str]:
    """The task key of each of ``count`` jobs (shards) of one input: a single job keeps the key
    it always had; each shard adds its place to the fingerprint."""
    if count == 1:
        return [task_key(identity, fingerprint)]
    return [task_key(identity, f"{fingerprint}:{index}/{count}") for index in range(1, count + 1)]


def job_fingerprint(
    input_fingerprint: str,
    options: SubmitOptions,
    *,
    namespace: str | None,
    max_requests_per_job: int | None,
) -> str:
    """The input's fingerprint plus every other setting that shapes the job, and the
    connection's ``reattach_namespace`` (one deployment never takes another's job)."""
    job_kwargs = dict(options.job_kwargs)
    # agent_id keeps the place it had as an argument: a job of an earlier release keeps its key.
    settings: list[Any] = [
        input_fingerprint,
        job_kwargs.pop("agent_id", None),
        options.timeout_hours,
        sorted(options.metadata.items()),
        namespace,
    ]
    if max_requests_per_job is not None:
        settings.append(max_requests_per_job)
    if job_kwargs:
        settings.append(sorted(job_kwargs.items()))
    return hashlib.sha256(json.dumps(settings, default=str).encode()).hexdigest()


def task_metadata(identity: tuple[str, str, str, int], key: str) -> dict[str, str]:
    """Metadata that ties a job to its task: the key, plus readable names for the console."""
    dag_id, task_id, run_id, map_index = identity
    limit = METADATA_VALUE_MAX_LENGTH
    return {
        TASK_KEY_METADATA: key,
        DAG_ID_METADATA: dag_id[:limit],
        TASK_ID_METADATA: task_id[:limit],
        RUN_ID_METADATA: run_id[:limit],
        MAP_INDEX_METADATA: str(map_index),
    }


def with_task_key(jobs: Iterable[BatchJob], key: str) -> list[BatchJob]:
    """The jobs tagged with task key ``key`` (checked here even when the server filtered)."""
    return [job for job in jobs if (job.metadata or {}).get(TASK_KEY_METADATA) == key]


@dataclass(frozen=True)
class KeptJob:
    """Which of several duplicate jobs to keep, and which to cancel.

    :param kept: the job to follow, or None when none may still give results.
    :param to_cancel: the other jobs still queued or running: duplicates.
    """

    kept: BatchJob | None
    to_cancel: tuple[BatchJob, ...]


def choose_kept(jobs: Iterable[BatchJob]) -> KeptJob:
    """The rule for duplicates (jobs made for one thing): keep a succeeded job if any, else
    the oldest that may still give results; cancel the others still queued or running.

    The rule only depends on the jobs, never on who looks, so every watcher of a key keeps
    the same job.
    """
    live = [job for job in {job.id: job for job in jobs}.values() if is_reattachable(job.status)]
    if not live:
        return KeptJob(None, ())
    # A succeeded job already did the work; among the others the oldest is furthest along.
    live.sort(key=lambda job: (not job.status.is_success, job.created_at, job.id))
    kept = live[0]
    return KeptJob(kept, tuple(job for job in live[1:] if not job.status.is_terminal))


def duplicate_warning(duplicate: BatchJob, kept: BatchJob) -> str:
    """The line logged when a duplicate job is cancelled."""
    why = "it succeeded" if kept.status.is_success else "it is the older"
    return (
        f"Cancelling Mistral batch job {duplicate.id}: a duplicate of job {kept.id}, which is "
        f"kept ({why})"
    )


def keep_one(hook: MistralBatchHook, jobs: Iterable[BatchJob], log: Any) -> BatchJob | None:
    """Apply :func:`choose_kept` to ``jobs``: cancel the duplicates, each with a warning, and
    return the job kept (None when none may still give results)."""
    choice = choose_kept(jobs)
    if choice.kept is not None:
        for duplicate in choice.to_cancel:
            log.warning("%s", duplicate_warning(duplicate, choice.kept))
            try:
                hook.cancel_batch_job(duplicate.id)
            except Exception as exc:
                log.warning("Could not cancel Mistral batch job %s: %s", duplicate.id, exc)
    return choice.kept


def duplicate_chooser(hook: MistralBatchHook, log: Any) -> Callable[[list[BatchJob]], BatchJob]:
    """The ``choose`` of :meth:`MistralBatchHook.create_batch_job`: among the jobs a retried
    create finds with its idempotency key, keep one by :func:`keep_one`; when none may still
    give results, the oldest (its status then tells the wait what became of it)."""

    def choose(jobs: list[BatchJob]) -> BatchJob:
        kept = keep_one(hook, jobs, log)
        return kept if kept is not None else min(jobs, key=lambda job: (job.created_at, job.id))

    return choose


def jobs_of_key(hook: MistralBatchHook, key: str) -> list[BatchJob]:
    """Every job tagged with ``key`` that can still exist (newer than the longest timeout)."""
    created_after = datetime.now(UTC) - _LOOKBACK
    listing = hook.list_batch_jobs(metadata={TASK_KEY_METADATA: key}, created_after=created_after)
    return with_task_key(listing, key)


async def ajobs_of_key(hook: MistralBatchHook, key: str) -> list[BatchJob]:
    """Async twin of :func:`jobs_of_key`."""
    created_after = datetime.now(UTC) - _LOOKBACK
    listing = hook.alist_batch_jobs(metadata={TASK_KEY_METADATA: key}, created_after=created_after)
    return with_task_key([job async for job in listing], key)


def find_job_to_reattach(hook: MistralBatchHook, key: str, log: Any) -> BatchJob | None:
    """The job tagged with ``key`` that succeeded or still runs, if any; its duplicates are
    cancelled (see :func:`keep_one`)."""
    return keep_one(hook, jobs_of_key(hook, key), log)


def cancel_task_jobs(hook: MistralBatchHook, job_ids: list[str], keys: list[str], log: Any) -> None:
    """Cancel a killed task's jobs: ``job_ids``, or, killed while a create was in flight (no
    id known yet), the running jobs of its task ``keys``. Failures are logged, never raised."""
    job_ids = list(job_ids)
    if not job_ids:
        for key in keys:
            try:
                found = jobs_of_key(hook, key)
            except Exception as exc:
                log.warning("Could not look for the Mistral batch job to cancel: %s", exc)
                continue
            job_ids += [job.id for job in found if is_reattachable(job.status)]
    for job_id in job_ids:
        try:
            hook.cancel_batch_job(job_id)
        except Exception as exc:
            log.warning("Could not cancel Mistral batch job %s: %s", job_id, exc)
