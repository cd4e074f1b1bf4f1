"""Run DAGs locally with ``dag.test()``: a private Airflow home, a migrated SQLite DB, XCom reads.

For tests, demos and offline DAG work against the local emulator. This is the one module of
the emulator distribution that imports Airflow (inside its functions); nothing in the
emulator's server imports it. Call :func:`use_private_airflow_home` before Airflow is first
imported in the process.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# The provider's default connection id (MistralBatchHook.default_conn_name), written out so
# that this module imports nothing of the provider; emulator/tests checks that they agree.
DEFAULT_CONN_ID = "mistral_default"


def use_private_airflow_home(dags_folder: Path, home: Path | None = None) -> Path:
    """Point Airflow at a fresh home (SQLite DB, no examples) and ``dags_folder``.

    Airflow 3.3 runs ``dag.test()`` only for DAG files inside the configured DAGs folder, so
    ``dags_folder`` must contain every DAG file that will be tested.
    """
    home = home or Path(tempfile.mkdtemp(prefix="mistral-batch-airflow-"))
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags_folder)
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    return home


def stage_dags(*folders: Path, into: Path | None = None) -> Path:
    """Copy DAG folders (files and data beside them) into one DAGs folder; return it.

    A copy, not the repository itself, because Airflow walks the whole DAGs folder.
    """
    target = into or Path(tempfile.mkdtemp(prefix="mistral-batch-dags-"))
    for folder in folders:
        shutil.copytree(
            folder,
            target,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    return target


def migrate_db() -> None:
    """Create the metadata DB of the current Airflow home (``airflow db migrate``, about 3 s)."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stdout}\n{result.stderr}")


def set_mistral_connection(
    base_url: str,
    api_key: str,
    *,
    conn_id: str = DEFAULT_CONN_ID,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Define a ``mistral`` connection through its environment variable (JSON form)."""
    conn = {
        "conn_type": "mistral",
        "host": base_url,
        "password": api_key,
        "extra": dict(extra or {}),
    }
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)


def reuse_execution_api() -> None:
    """Make ``dag.test()`` build its in-process execution API once per process, not per task.

    Airflow 3.3 caches it itself (apache/airflow#65235); 3.1 builds a whole FastAPI app for
    every task it runs and every trigger, 2 to 3 s of CPU each. Idempotent.
    """
    from airflow.sdk.execution_time import supervisor

    build = supervisor.in_process_api_server
    if not hasattr(build, "cache_info"):  # not cached yet
        supervisor.in_process_api_server = functools.lru_cache(maxsize=1)(build)


def load_dag(dag_folder: Path, dag_id: str) -> Any:
    """Parse ``dag_folder`` and return one DAG, ready for ``dag.test()`` (see
    :func:`reuse_execution_api`); import errors are raised, not skipped."""
    reuse_execution_api()
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.1
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef,unused-ignore]

    bag = DagBag(dag_folder=str(dag_folder))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    dag = bag.get_dag(dag_id)
    if dag is None:
        raise LookupError(f"no DAG {dag_id!r} in {dag_folder}")
    return dag


def xcom_value(dag_run: Any, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
    """One XCom value of a finished ``dag.test()`` run, or None."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(XComModel).where(
        XComModel.dag_id == dag_run.dag_id,
        XComModel.run_id == dag_run.run_id,
        XComModel.task_id == task_id,
        XComModel.key == key,
        XComModel.map_index == map_index,
    )
    with create_session() as session:
        row = session.scalars(query).first()
        return XComModel.deserialize_value(row) if row is not None else None


def task_states(dag_run: Any) -> dict[tuple[str, int], tuple[str, int]]:
    """``(task_id, map_index) -> (state, try_number)`` of every task instance of a run."""
    return {
        (ti.task_id, ti.map_index): (str(ti.state), int(ti.try_number))
        for ti in dag_run.get_task_instances()
    }
