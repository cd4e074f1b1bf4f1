"""Find the job an earlier try of the same task created, instead of paying for a second one.

The job's metadata carries a key built from the task's identity (dag_id, task_id, run_id,
map_index) and a fingerprint of its input. A later try with the same identity and the same
input finds that job while it is queued, running or succeeded, and reattaches to it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
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


def find_job_to_reattach(hook: MistralBatchHook, key: str) -> BatchJob | None:
    """The newest job tagged with ``key`` that is succeeded or still running, if any."""
    created_after = datetime.now(UTC) - _LOOKBACK
    # The server filters by metadata; checking again here keeps this right even if it did not.
    for job in hook.list_batch_jobs(metadata={TASK_KEY_METADATA: key}, created_after=created_after):
        if (job.metadata or {}).get(TASK_KEY_METADATA) != key:
            continue
        if is_reattachable(job.status):
            return job
    return None
