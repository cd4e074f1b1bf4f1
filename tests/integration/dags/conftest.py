"""DAG tests: the example DAGs and test DAGs run with dag.test() on a migrated SQLite DB."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mistral_batch_emulator import RunningEmulator
from mistral_batch_emulator.dagtest import migrate_db, set_mistral_connection, stage_dags

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def dags_folder() -> Path:
    """The session's DAGs folder, holding the example DAGs and the test DAGs, DB migrated."""
    folder = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    # The chat example writes its results under this root (read when the DAG file is parsed).
    (folder.parent / "results").mkdir(exist_ok=True)
    os.environ["MISTRAL_EXAMPLE_RESULTS"] = f"file://{folder.parent}/results"
    # The examples poll once a minute, as suits the real API; the emulator needs no such wait.
    os.environ["MISTRAL_EXAMPLE_POLL_SECONDS"] = "1"
    stage_dags(REPO / "example_dags", Path(__file__).parent / "dag_files", into=folder)
    migrate_db()
    return folder


@pytest.fixture
def mistral_default(emulator: RunningEmulator) -> Iterator[RunningEmulator]:
    """The ``mistral_default`` connection pointed at the emulator for this test."""
    name = "AIRFLOW_CONN_MISTRAL_DEFAULT"
    before = os.environ.get(name)
    set_mistral_connection(emulator.base_url, emulator.api_key)
    yield emulator
    if before is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = before
