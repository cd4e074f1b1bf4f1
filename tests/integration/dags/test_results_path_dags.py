"""Results paths under a real Airflow (dag.test) against the emulator: mapped tasks and a
template a manual run cannot render."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from mistral_batch_emulator import RunningEmulator
from mistral_batch_emulator.dagtest import load_dag, task_states, xcom_value

pytestmark = pytest.mark.integration


def _jobs_of(dag_id: str) -> list[object]:
    return [
        job
        for job in MistralBatchHook().list_batch_jobs()
        if (job.metadata or {}).get("airflow_dag_id") == dag_id
    ]


def test_mapped_instances_sharing_one_results_path_all_fail_before_any_job(
    dags_folder: Path, mistral_default: RunningEmulator
) -> None:
    dag_run = load_dag(dags_folder, "test_mapped_shared_results_path").test()
    states = task_states(dag_run)
    assert str(dag_run.state) == "failed", states
    # Both instances, on their first try: no retry (it would meet the same path).
    assert states[("describe", 0)] == ("failed", 1)
    assert states[("describe", 1)] == ("failed", 1)
    assert _jobs_of("test_mapped_shared_results_path") == []
    run = dag_run.run_id.replace(":", "_").replace("+", "_")
    assert not (dags_folder.parent / "results" / f"mapped-shared-{run}.jsonl").exists()


def test_mapped_instances_with_the_map_index_in_the_path_write_one_file_each(
    dags_folder: Path, mistral_default: RunningEmulator
) -> None:
    dag_run = load_dag(dags_folder, "test_mapped_results_per_index").test()
    states = task_states(dag_run)
    assert str(dag_run.state) == "success", states
    paths = [xcom_value(dag_run, "describe", map_index=i)["results_path"] for i in (0, 1)]
    run = dag_run.run_id.replace(":", "_").replace("+", "_")
    folder = f"file://{dags_folder.parent}/results/mapped-{run}"
    assert paths == [f"{folder}/topic-0.jsonl", f"{folder}/topic-1.jsonl"]
    assert all(ObjectStoragePath(path).exists() for path in paths)
    assert xcom_value(dag_run, "read") == [
        ["cheese-0", "cheese-1"],
        ["rivers-0", "rivers-1", "rivers-2"],
    ]


def test_an_undefined_template_on_a_manual_run_fails_at_once_without_retries(
    dags_folder: Path, mistral_default: RunningEmulator
) -> None:
    dag_run = load_dag(dags_folder, "test_results_path_template_error").test(logical_date=None)
    states = task_states(dag_run)
    assert str(dag_run.state) == "failed", states
    assert states[("summarise", -1)] == ("failed", 1)  # retries=2, none used
    assert _jobs_of("test_results_path_template_error") == []
