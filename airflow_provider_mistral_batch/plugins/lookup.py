"""What the plugin reads from Airflow itself: ``mistral`` connections and a task's job ids.

No secret leaves this module: connections are named, never opened here, and a task's jobs
are found from what the operator and the sensor push to XCom.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from airflow_provider_mistral_batch.batch.manifest import (
    XCOM_CONN_ID,
    XCOM_INPUT_ERROR,
    XCOM_JOB_ID,
    XCOM_JOB_IDS,
    XCOM_ROUNDS,
)
from airflow_provider_mistral_batch.batch.result_rows import STATUSES
from airflow_provider_mistral_batch.connection_form import DEFAULT_CONN_ID
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.links import MistralBatchJobLink

CONN_TYPE: Final = "mistral"
#: The shape of a connection id the plugin accepts from a request.
CONN_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_.\-]{1,250}")
#: The shape of a batch job id (a UUID at Mistral; the emulator's ids are alike).
JOB_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9_\-]{1,128}")
#: The longest input error the tab shows (the operator records it whole, in one line).
MAX_INPUT_ERROR: Final = 2000
#: Jobs shown for one task instance at most (a sharded input makes one job per shard).
MAX_TASK_JOBS: Final = 100
_ENV_PREFIX: Final = "AIRFLOW_CONN_"

if TYPE_CHECKING:
    from airflow.sdk.exceptions import AirflowNotFoundException
else:
    try:
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError:  # Airflow 3.1: the connection lookup raises the core class
        from airflow.exceptions import AirflowNotFoundException


def is_mistral_connection(conn_id: str) -> bool:
    """Whether ``conn_id`` names an existing connection of type ``mistral`` (any backend)."""
    if not CONN_ID_PATTERN.fullmatch(conn_id):
        return False
    try:
        conn = MistralBatchHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return False
    return conn.conn_type == CONN_TYPE


def mistral_conn_ids() -> list[str]:
    """Ids of the ``mistral`` connections in the metadata DB and in ``AIRFLOW_CONN_*``
    variables, sorted. Other secrets backends cannot be listed: their connections are
    still accepted by id (see :func:`is_mistral_connection`)."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        found = set(
            session.scalars(select(Connection.conn_id).where(Connection.conn_type == CONN_TYPE))
        )
    for name, value in os.environ.items():
        if name.startswith(_ENV_PREFIX) and _env_conn_type(value) == CONN_TYPE:
            conn_id = name.removeprefix(_ENV_PREFIX).lower()
            if CONN_ID_PATTERN.fullmatch(conn_id):
                found.add(conn_id)
    return sorted(found)


def _env_conn_type(value: str) -> str | None:
    """The type of a connection given as an environment variable (JSON or URI form)."""
    text = value.strip()
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            return None
        kind = parsed.get("conn_type") if isinstance(parsed, dict) else None
        return kind if isinstance(kind, str) else None
    try:
        scheme = urlsplit(text).scheme
    except ValueError:
        return None
    return scheme.replace("-", "_") or None


def parse_map_index(raw: str) -> int:
    """A map index from a tab URL: a number, else -1 (the UI leaves ``{MAP_INDEX}`` unfilled
    on an unmapped task)."""
    return int(raw) if re.fullmatch(r"-?\d{1,9}", raw) else -1


@dataclass(frozen=True)
class TaskJobs:
    """What one task instance recorded about its batch jobs.

    :param job_ids: the job ids, in the order the task recorded them.
    :param conn_id: the connection they belong to (``mistral_default`` when not recorded).
    :param usage: token usage totals of the task's results, when it wrote any.
    :param counts: the task's result rows of each status (success, error, invalid_output,
        missing, expired, cancelled), when it wrote any.
    :param state: the task instance's state, or None if there is no such task instance.
    :param input_error: why the task failed on its input before it created a job, if it did.
    :param rounds: the job ids of each resubmit round (round 0 first), when the task resent
        failed requests; only ids among ``job_ids``.
    """

    job_ids: list[str] = field(default_factory=list)
    conn_id: str = DEFAULT_CONN_ID
    usage: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    state: str | None = None
    input_error: str | None = None
    rounds: list[list[str]] = field(default_factory=list)


def task_jobs(dag_id: str, run_id: str, task_id: str, map_index: int) -> TaskJobs:
    """The jobs of one task instance, from its XCom: ``batch_job_ids`` or ``batch_job_id``
    (the operator, the sensor), else the job id at the end of the "Mistral batch job" link
    (a sensor run before it pushed ``batch_job_id``); the connection from
    ``mistral_conn_id``; usage and the rows of each status from the return value's ``usage``
    and ``counts``; the input error from
    ``mistral_input_error`` (the operator's, when it failed before creating a job)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    link_key = MistralBatchJobLink().xcom_key
    keys = [
        XCOM_JOB_IDS,
        XCOM_JOB_ID,
        XCOM_CONN_ID,
        XCOM_INPUT_ERROR,
        XCOM_ROUNDS,
        "return_value",
        link_key,
    ]
    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(
                XComModel.dag_id == dag_id,
                XComModel.run_id == run_id,
                XComModel.task_id == task_id,
                XComModel.map_index == map_index,
                XComModel.key.in_(keys),
            )
        ).all()
        values: dict[str, Any] = {row.key: XComModel.deserialize_value(row) for row in rows}
        state = session.scalar(
            select(TaskInstance.state).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id == task_id,
                TaskInstance.map_index == map_index,
            )
        )

    pushed = values.get(XCOM_JOB_IDS)
    if not isinstance(pushed, list) or not pushed:
        pushed = [values.get(XCOM_JOB_ID)]
    if not any(pushed):
        link = values.get(link_key)
        pushed = [link.rstrip("/").rpartition("/")[2]] if isinstance(link, str) else []
    job_ids: list[str] = []
    for candidate in pushed:
        valid = isinstance(candidate, str) and JOB_ID_PATTERN.fullmatch(candidate)
        if valid and candidate not in job_ids and len(job_ids) < MAX_TASK_JOBS:
            job_ids.append(candidate)

    conn_id = values.get(XCOM_CONN_ID)
    input_error = values.get(XCOM_INPUT_ERROR)
    return TaskJobs(
        job_ids=job_ids,
        conn_id=conn_id if isinstance(conn_id, str) and conn_id else DEFAULT_CONN_ID,
        usage=_usage(values.get("return_value")),
        counts=_counts(values.get("return_value")),
        state=str(state) if state is not None else None,
        input_error=input_error[:MAX_INPUT_ERROR] if isinstance(input_error, str) else None,
        rounds=_rounds(values.get(XCOM_ROUNDS), job_ids),
    )


def _rounds(pushed: Any, job_ids: list[str]) -> list[list[str]]:
    """Each round's job ids, keeping only the task's recorded ids; none with one round."""
    if not isinstance(pushed, list):
        return []
    rounds = [
        [job_id for job_id in ids if job_id in job_ids] for ids in pushed if isinstance(ids, list)
    ]
    return rounds if len(rounds) > 1 else []


def _usage(return_value: Any) -> dict[str, float]:
    """The non-zero numeric token counts of a return value's ``usage``, if any."""
    usage = return_value.get("usage") if isinstance(return_value, dict) else None
    if not isinstance(usage, dict):
        return {}
    return {
        str(key): value
        for key, value in usage.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and value
    }


def _counts(return_value: Any) -> dict[str, int]:
    """The return value's rows of each known status (in the vocabulary's order), if any."""
    counts = return_value.get("counts") if isinstance(return_value, dict) else None
    if not isinstance(counts, dict):
        return {}
    return {
        status: counts[status]
        for status in STATUSES
        if isinstance(counts.get(status), int) and not isinstance(counts[status], bool)
    }


__all__ = [
    "CONN_ID_PATTERN",
    "CONN_TYPE",
    "JOB_ID_PATTERN",
    "TaskJobs",
    "is_mistral_connection",
    "mistral_conn_ids",
    "parse_map_index",
    "task_jobs",
]
