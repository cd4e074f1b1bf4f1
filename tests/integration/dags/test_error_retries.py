"""Which of the provider's errors stop retries, as Airflow's own task runner decides it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mistral_batch_emulator.dagtest import load_dag, task_states

pytestmark = pytest.mark.integration


def test_only_fatal_errors_stop_retries(dags_folder: Path) -> None:
    dag_run = load_dag(dags_folder, "test_error_retries").test()
    states = task_states(dag_run)
    # (state, try number) once the run ended: a fatal error fails the first try for good,
    # any other error gets its retry (and fails again).
    assert states == {
        ("input_error", -1): ("failed", 1),
        ("job_fatal_error", -1): ("failed", 1),
        ("fatal_error", -1): ("failed", 1),
        ("job_error", -1): ("failed", 2),
        ("server_error", -1): ("failed", 2),
        ("connection_error", -1): ("failed", 2),
    }
