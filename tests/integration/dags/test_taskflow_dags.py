"""``@task.mistral_batch`` under a real Airflow (dag.test) against the emulator: each input its
function may return, one call per try across a deferral, a retry that reattaches, and bad
return values that fail before anything is uploaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from mistral_batch_emulator import RunningEmulator
from mistral_batch_emulator.dagtest import load_dag, task_states, xcom_value

pytestmark = pytest.mark.integration


def _run(dags_folder: Path, dag_id: str, *, state: str = "success") -> Any:
    dag_run = load_dag(dags_folder, dag_id).test()
    assert str(dag_run.state) == state, task_states(dag_run)
    return dag_run


def _calls(dags_folder: Path) -> list[str]:
    calls = dags_folder.parent / "taskflow-calls.txt"
    return calls.read_text().splitlines() if calls.exists() else []


@pytest.fixture
def calls(dags_folder: Path) -> Path:
    """The DAGs' record of their functions' calls, empty at the start of each test."""
    path = dags_folder.parent / "taskflow-calls.txt"
    path.unlink(missing_ok=True)
    return path


def _jobs_of(dag_id: str) -> list[Any]:
    return [
        job
        for job in MistralBatchHook().list_batch_jobs()
        if (job.metadata or {}).get("airflow_dag_id") == dag_id
    ]


def _rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    text = ObjectStoragePath(summary["results_path"]).read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_prompt_strings_deferred_the_function_runs_once_and_the_tab_sees_the_job(
    dags_folder: Path, mistral_default: RunningEmulator, calls: Path
) -> None:
    # Slow enough that the job is still running when the task defers.
    mistral_default.update_config(requests_per_second=5.0)
    dag_run = _run(dags_folder, "test_taskflow_prompts_deferred")
    assert task_states(dag_run)[("ask", -1)] == ("success", 1)
    # One call on the try; the resume after the deferral went to execute_complete.
    assert _calls(dags_folder) == ["call ask 1", "resume ask 1"]
    summary = xcom_value(dag_run, "ask")
    assert summary["status"] == "SUCCESS"
    (job,) = _jobs_of("test_taskflow_prompts_deferred")
    assert summary["job_id"] == job.id
    rows = _rows(summary)
    assert [row["custom_id"] for row in rows] == ["0", "1", "2"]
    assert all(row["ok"] for row in rows)
    assert all(row["response"]["choices"][0]["message"]["content"] for row in rows)
    # The UI's tab reads the task's jobs from XCom, whatever the task's class.
    from airflow_provider_mistral_batch.plugins.lookup import task_jobs

    found = task_jobs("test_taskflow_prompts_deferred", dag_run.run_id, "ask", -1)
    assert found.job_ids == [job.id]
    assert xcom_value(dag_run, "ask", "_link_MistralBatchJobLink").endswith(job.id)


def test_deferred_resubmit_rounds_turn_5xx_rows_into_successes(
    dags_folder: Path, mistral_default: RunningEmulator, calls: Path
) -> None:
    # Request "1" fails once with a 503; slow enough that each round's job defers.
    mistral_default.update_config(requests_per_second=5.0, flaky_custom_ids={"1": 1})
    dag_run = _run(dags_folder, "test_taskflow_resubmit_deferred")
    # One call; a resume per round: round 0's resume deferred round 1.
    assert _calls(dags_folder) == ["call ask 1", "resume ask 1", "resume ask 1"]
    summary = xcom_value(dag_run, "ask")
    # Round 0's job carries no round; round 1's says so.
    jobs = sorted(
        _jobs_of("test_taskflow_resubmit_deferred"),
        key=lambda job: (job.metadata or {}).get("airflow_round", "0"),
    )
    assert [(job.metadata or {}).get("airflow_round") for job in jobs] == [None, "1"]
    assert summary["rounds"] == [[jobs[0].id], [jobs[1].id]]
    assert (jobs[0].failed_requests, jobs[1].total_requests) == (1, 1)
    assert (summary["succeeded_requests"], summary["failed_requests"]) == (3, 0)
    rows = _rows(summary)
    assert [row["custom_id"] for row in rows] == ["0", "1", "2"]
    assert all(row["ok"] for row in rows)
    assert xcom_value(dag_run, "ask", "batch_job_rounds") == summary["rounds"]


def test_request_objects_a_local_path_and_an_object_storage_path(
    dags_folder: Path, mistral_default: RunningEmulator, calls: Path
) -> None:
    dag_run = _run(dags_folder, "test_taskflow_inputs")
    summary = xcom_value(dag_run, "requests")
    assert summary["total_requests"] == 4
    rows = _rows(summary)
    assert [row["custom_id"] for row in rows] == ["r0", "r1", "r2", "r3"]
    assert all(row["ok"] and row["response"]["data"] for row in rows)
    hook = MistralBatchHook()
    for task_id, custom_ids in (("local_path", ["p0", "p1", "p2"]), ("storage_path", ["s0", "s1"])):
        summary = xcom_value(dag_run, task_id)
        assert summary["status"] == "SUCCESS", task_id
        output = [
            json.loads(line)["custom_id"] for line in hook.iter_file_lines(summary["output_file"])
        ]
        assert sorted(output) == custom_ids
    # A mapped task: one job per map index.
    mapped = [xcom_value(dag_run, "mapped", map_index=i) for i in (0, 1)]
    assert [summary["total_requests"] for summary in mapped] == [2, 2]
    assert len({summary["job_id"] for summary in mapped}) == 2
    assert sorted(_calls(dags_folder)) == [
        "call local_path 1",
        "call requests 1",
        "call storage_path 1",
    ]


def test_a_retry_runs_the_function_again_and_reattaches_to_the_same_job(
    dags_folder: Path, mistral_default: RunningEmulator, calls: Path
) -> None:
    # Six requests at two a second outlive the first try's 2 s execution timeout.
    mistral_default.update_config(requests_per_second=2.0)
    dag_run = _run(dags_folder, "test_taskflow_retry_reattaches")
    state, tries = task_states(dag_run)[("slow", -1)]
    assert state == "success"
    assert tries >= 2, "the first try must have timed out"
    assert _calls(dags_folder) == [f"call slow {n}" for n in range(1, tries + 1)]
    (job,) = _jobs_of("test_taskflow_retry_reattaches")
    assert xcom_value(dag_run, "slow")["job_id"] == job.id


def test_bad_return_values_fail_the_first_try_before_any_upload(
    dags_folder: Path, mistral_default: RunningEmulator
) -> None:
    dag_run = _run(dags_folder, "test_taskflow_bad_returns", state="failed")
    states = task_states(dag_run)
    expected = {
        "returns_a_number": "the function returned a number; return a list of requests",
        "returns_an_empty_list": "the function returned no requests (an empty list)",
        "returns_none": "the function returned None; return a list of requests",
        "returns_one_request": "the function returned an object (one request? return a list",
        "returns_mixed_items": (
            "the function returned a prompt string at position 0 but an object at position 1"
        ),
    }
    for task_id, message in expected.items():
        assert states[(task_id, -1)] == ("failed", 1), task_id  # retries=2, none used
        error = xcom_value(dag_run, task_id, "mistral_input_error")
        assert error.startswith(message), error
    assert [r for r in mistral_default.requests if r.method == "POST"] == []
    assert _jobs_of("test_taskflow_bad_returns") == []


def test_the_example_extracts_validated_cities(
    dags_folder: Path, mistral_default: RunningEmulator
) -> None:
    dag_run = _run(dags_folder, "example_mistral_batch_taskflow")
    summary = xcom_value(dag_run, "extract_cities")
    assert summary["status"] == "SUCCESS"
    # Each prompt became a chat request asking for City's schema.
    (input_file,) = MistralBatchHook().get_batch_job(summary["job_id"]).input_files
    sent = [json.loads(line) for line in MistralBatchHook().iter_file_lines(input_file)]
    assert [request["custom_id"] for request in sent] == ["0", "1", "2", "3"]
    response_format = sent[0]["body"]["response_format"]
    assert response_format["type"] == "json_schema"
    assert set(response_format["json_schema"]["schema"]["properties"]) == {
        "name",
        "country",
        "population_millions",
    }
    rows = _rows(summary)
    assert [row["status"] for row in rows] == ["success"] * 4
    cities = xcom_value(dag_run, "read_cities")
    assert list(cities) == ["0", "1", "2", "3"]
    for city in cities.values():
        assert set(city) == {"name", "country", "population_millions"}
        assert isinstance(city["name"], str)
        assert city["population_millions"] >= 0
