"""The README's complete DAG, run as a new user first runs it: triggered by hand."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from mistral_batch_emulator import RunningEmulator
from mistral_batch_emulator.dagtest import load_dag, task_states, xcom_value

REPO = Path(__file__).resolve().parents[3]
README_PATH = '"s3://my-bucket/summaries/'
LOCAL_PATH = '"{{ dag.folder }}/../readme/'


def _readme_dag() -> str:
    section = (REPO / "README.md").read_text().split("\n## A complete DAG\n", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_test_dag_is_the_readme_dag_but_for_where_results_go() -> None:
    test_dag = (Path(__file__).parent / "dag_files" / "readme_dag.py").read_text()
    code = test_dag.split('"""\n\n', 1)[1]  # after the module docstring
    assert README_PATH in _readme_dag()
    assert code == _readme_dag().replace(README_PATH, LOCAL_PATH)


def test_the_readme_dag_names_no_value_a_manual_run_lacks() -> None:
    # ds, ts, logical_date and data_interval_* are undefined on a manual run in Airflow 3.
    templates = re.findall(r"\{\{(.*?)\}\}", _readme_dag())
    assert templates
    for template in templates:
        assert not re.search(
            r"\b(ds|ds_nodash|ts|ts_nodash|logical_date|data_interval_\w+)\b",
            template.split("|")[0],
        ), template


def _run(dags_folder: Path, **test_args: Any) -> tuple[Any, Path]:
    results = dags_folder.parent / "readme"
    shutil.rmtree(results, ignore_errors=True)  # a folder the run has to make
    dag_run = load_dag(dags_folder, "nightly_summaries").test(**test_args)
    states = task_states(dag_run)
    assert str(dag_run.state) == "success", states
    assert {state for state, _ in states.values()} == {"success"}
    return dag_run, results


@pytest.mark.integration
def test_the_readme_dag_on_a_manual_run_without_a_logical_date(
    dags_folder: Path, mistral_default: RunningEmulator
) -> None:
    dag_run, results = _run(dags_folder, logical_date=None)
    assert dag_run.logical_date is None
    summary = xcom_value(dag_run, "summarise")
    written = Path(summary["results_path"])
    assert written.parent.resolve() == results.resolve()
    assert written.name == f"{dag_run.run_after:%Y%m%dT%H%M%S}.jsonl"
    lines = [json.loads(line) for line in written.read_text().splitlines()]
    assert [line["custom_id"] for line in lines] == ["doc-0", "doc-1"]
    assert xcom_value(dag_run, "store") == 2
    job = MistralBatchHook().get_batch_job(summary["job_id"])
    assert (job.metadata or {})["airflow_dag_id"] == "nightly_summaries"


@pytest.mark.integration
def test_the_readme_dag_on_a_scheduled_run(
    dags_folder: Path, mistral_default: RunningEmulator
) -> None:
    due = datetime(2026, 1, 2, tzinfo=UTC)
    dag_run, results = _run(
        dags_folder, logical_date=datetime(2026, 1, 1, tzinfo=UTC), run_after=due
    )
    written = Path(xcom_value(dag_run, "summarise")["results_path"])
    assert written.resolve() == (results / "20260102T000000.jsonl").resolve()
    assert xcom_value(dag_run, "store") == 2
