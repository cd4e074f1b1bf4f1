"""The example DAGs, end to end under a real Airflow (dag.test) against the emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import TASK_KEY_METADATA
from mistral_batch_emulator import RunningEmulator
from mistral_batch_emulator.dagtest import load_dag, task_states, xcom_value

pytestmark = pytest.mark.integration


def _run(dags_folder: Path, dag_id: str) -> Any:
    dag_run = load_dag(dags_folder, dag_id).test()
    states = task_states(dag_run)
    assert str(dag_run.state) == "success", states
    return dag_run


def _custom_ids(file_id: str) -> list[str]:
    return sorted(
        json.loads(line)["custom_id"] for line in MistralBatchHook().iter_file_lines(file_id)
    )


def test_chat_dag_deferrable_from_inline_requests(
    dags_folder: Path, mistral_default: RunningEmulator
) -> None:
    dag_run = _run(dags_folder, "example_mistral_batch_chat")
    summary = xcom_value(dag_run, "answer_questions")
    assert summary["status"] == "SUCCESS"
    assert (summary["total_requests"], summary["failed_requests"]) == (5, 0)
    assert xcom_value(dag_run, "answer_questions", "batch_job_id") == summary["job_id"]
    output_file = xcom_value(dag_run, "answer_questions", "output_file")
    assert output_file == summary["output_file"]
    assert xcom_value(dag_run, "answer_questions", "error_file") is None
    assert _custom_ids(output_file) == [f"question-{i}" for i in range(5)]
    link = xcom_value(dag_run, "answer_questions", "_link_MistralBatchJobLink")
    assert link.endswith(f"/build/batches/{summary['job_id']}")
    answers = xcom_value(dag_run, "read_answers")
    assert list(answers) == [f"question-{i}" for i in range(5)]  # the input's order
    assert all(isinstance(text, str) and text for text in answers.values())
    # The joined results in object storage, and the manifest that points at them.
    results = ObjectStoragePath(summary["results_path"])
    assert str(results).startswith(f"file://{dags_folder.parent}/results/mistral-batch-chat-")
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    assert [line["custom_id"] for line in lines] == [f"question-{i}" for i in range(5)]
    assert all(line["ok"] for line in lines)
    assert summary["missing_requests"] == 0
    output_tokens = [
        json.loads(line)["response"]["body"]["usage"]
        for line in MistralBatchHook().iter_file_lines(output_file)
    ]
    assert summary["usage"]["total_tokens"] == sum(u["total_tokens"] for u in output_tokens)
    assert summary["usage"]["prompt_tokens"] == sum(u["prompt_tokens"] for u in output_tokens)


def test_typed_dag_validates_every_answer_against_its_model(
    dags_folder: Path, mistral_default: RunningEmulator
) -> None:
    dag_run = _run(dags_folder, "example_mistral_batch_typed")
    summary = xcom_value(dag_run, "extract_profiles")
    assert summary["status"] == "SUCCESS"
    assert (summary["total_requests"], summary["failed_requests"]) == (6, 0)
    custom_ids = [f"cheese-{i}" for i in range(6)]
    # Each request asked for JSON of the model's schema.
    model = load_dag(dags_folder, "example_mistral_batch_typed").get_task("extract_profiles")
    output_type = model.output_type
    hook = MistralBatchHook()
    job = hook.get_batch_job(summary["job_id"])
    sent = [json.loads(line) for f in job.input_files for line in hook.iter_file_lines(f)]
    assert [request["custom_id"] for request in sent] == custom_ids
    for request in sent:
        directive = request["body"]["response_format"]
        assert directive["type"] == "json_schema"
        assert directive["json_schema"]["schema"] == output_type.model_json_schema()
    # Every row a success with its validated output, in the input's order.
    rows = [
        json.loads(line)
        for line in ObjectStoragePath(summary["results_path"]).read_text().splitlines()
    ]
    assert [row["custom_id"] for row in rows] == custom_ids
    assert [row["status"] for row in rows] == ["success"] * 6
    for row in rows:
        assert row["ok"] is True
        assert isinstance(row["output"], dict)
        output_type.model_validate(row["output"])
    profiles = xcom_value(dag_run, "read_profiles")
    assert list(profiles) == custom_ids
    assert {row["custom_id"]: row["output"] for row in rows} == {
        custom_id: output_type.model_validate(row).model_dump(mode="json")
        for custom_id, row in profiles.items()
    }


def test_embeddings_dag_blocking_from_a_jsonl_file(
    dags_folder: Path, mistral_default: RunningEmulator
) -> None:
    dag_run = _run(dags_folder, "example_mistral_batch_embeddings")
    summary = xcom_value(dag_run, "embed_documents")
    assert summary["status"] == "SUCCESS"
    source = dags_folder / "data" / "embeddings_requests.jsonl"
    expected = sorted(json.loads(line)["custom_id"] for line in source.read_text().splitlines())
    assert _custom_ids(xcom_value(dag_run, "embed_documents", "output_file")) == expected


def test_sensor_and_cancel_dag(dags_folder: Path, mistral_default: RunningEmulator) -> None:
    # At 4 requests a second the 10-request job takes ~3 s and the 2,000-request unwanted job
    # ~8 min, so the cancel always finds it running, however slow the machine.
    mistral_default.update_config(requests_per_second=4.0)
    dag_run = _run(dags_folder, "example_mistral_batch_sensor_cancel")
    started = xcom_value(dag_run, "start_job", "batch_job_id")
    waited = xcom_value(dag_run, "wait_for_job")
    assert waited["job_id"] == started
    assert waited["status"] == "SUCCESS"
    assert _custom_ids(xcom_value(dag_run, "wait_for_job", "output_file")) == sorted(
        f"text-{i}" for i in range(10)
    )
    cancelled = xcom_value(dag_run, "cancel_unwanted_job")
    assert cancelled["job_id"] == xcom_value(dag_run, "start_unwanted_job", "batch_job_id")
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["total_requests"] == 2_000
    assert cancelled["succeeded_requests"] + cancelled["failed_requests"] < 2_000


def test_mapped_dag_runs_one_job_per_input(
    dags_folder: Path, mistral_default: RunningEmulator
) -> None:
    dag_run = _run(dags_folder, "example_mistral_batch_mapped")
    expected = {
        0: ["cheese-0", "cheese-1", "cheese-2"],
        1: ["wine-0", "wine-1"],
        2: ["rivers-0", "rivers-1", "rivers-2", "rivers-3"],
    }
    job_ids = set()
    for map_index, custom_ids in expected.items():
        summary = xcom_value(dag_run, "describe_topic", map_index=map_index)
        assert summary["status"] == "SUCCESS"
        assert _custom_ids(summary["output_file"]) == custom_ids
        job_ids.add(summary["job_id"])
    assert len(job_ids) == 3
    assert xcom_value(dag_run, "count_results") == 9


def test_retry_after_a_crash_reattaches_to_the_first_job(
    dags_folder: Path, mistral_default: RunningEmulator
) -> None:
    dag_run = _run(dags_folder, "test_retry_after_crash")
    jobs = [
        job
        for job in MistralBatchHook().list_batch_jobs()
        if (job.metadata or {}).get("airflow_dag_id") == "test_retry_after_crash"
    ]
    for task_id in ("crashing_batch", "crashing_deferred_batch"):  # blocking, deferrable
        assert task_states(dag_run)[(task_id, -1)] == ("success", 2)
        mine = [job for job in jobs if (job.metadata or {}).get("airflow_task_id") == task_id]
        assert len(mine) == 1, f"{task_id}: the retry must reattach, not create a second job"
        assert TASK_KEY_METADATA in (mine[0].metadata or {})
        summary = xcom_value(dag_run, task_id)
        assert summary["job_id"] == mine[0].id
        assert summary["status"] == "SUCCESS"
        assert xcom_value(dag_run, task_id, "output_file") == mine[0].output_file


def test_execution_timeout_leaves_the_job_for_the_retry(
    dags_folder: Path, mistral_default: RunningEmulator
) -> None:
    # Six requests at two a second outlive the first try's 2 s execution timeout.
    mistral_default.update_config(requests_per_second=2.0)
    dag_run = _run(dags_folder, "test_reattach_after_timeout")
    state, tries = task_states(dag_run)[("slow_batch", -1)]
    assert state == "success"
    assert tries >= 2, "the first try must have timed out"
    jobs = [
        job
        for job in MistralBatchHook().list_batch_jobs()
        if (job.metadata or {}).get("airflow_dag_id") == "test_reattach_after_timeout"
    ]
    assert len(jobs) == 1, "the timed-out try must not cancel its job, and the retry reattaches"
    assert xcom_value(dag_run, "slow_batch")["job_id"] == jobs[0].id
    assert jobs[0].status == "SUCCESS"


def test_a_sharded_input_makes_one_job_per_shard_and_one_results_file(
    dags_folder: Path, mistral_default: RunningEmulator
) -> None:
    dag_run = _run(dags_folder, "test_sharded_results")
    for mode in ("blocking", "deferred"):
        summary = xcom_value(dag_run, f"sharded_{mode}")
        job_ids = xcom_value(dag_run, f"sharded_{mode}", "batch_job_ids")
        assert summary["job_ids"] == job_ids
        assert len(job_ids) == 3
        totals = [MistralBatchHook().get_batch_job(job_id).total_requests for job_id in job_ids]
        assert totals == [3, 3, 1]
        assert xcom_value(dag_run, f"sharded_{mode}", "batch_job_id") is None
        assert len(xcom_value(dag_run, f"sharded_{mode}", "output_files")) == 3
        assert xcom_value(dag_run, f"read_{mode}") == [f"q{i}" for i in range(7)]
        assert summary["missing_requests"] == 0


EXAMPLES = [
    "example_mistral_batch_chat",
    "example_mistral_batch_embeddings",
    "example_mistral_batch_sensor_cancel",
    "example_mistral_batch_mapped",
    "example_mistral_batch_typed",
]


@pytest.mark.parametrize("dag_id", EXAMPLES)
def test_every_example_says_in_the_ui_what_it_shows(dags_folder: Path, dag_id: str) -> None:
    dag = load_dag(dags_folder, dag_id)
    assert dag.doc_md
    assert "What to look at in the UI" in dag.doc_md


def test_the_examples_poll_at_a_pace_for_the_real_api(
    dags_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Copied as they are, the examples must not hammer the real API: the short intervals of
    # the demo and the tests come from the environment, not from the DAG files.
    monkeypatch.delenv("MISTRAL_EXAMPLE_POLL_SECONDS", raising=False)
    checked = 0
    for dag_id in EXAMPLES:
        dag = load_dag(dags_folder, dag_id)
        for task in dag.tasks:
            # A mapped task keeps its arguments in partial_kwargs.
            given = getattr(task, "partial_kwargs", None) or vars(task)
            for name in ("poll_interval", "poke_interval"):
                if "Mistral" in task.task_type and given.get(name) is not None:
                    assert float(given[name]) >= 30, (dag_id, task.task_id, name, given[name])
                    checked += 1
    assert checked >= 5  # every Mistral task that waits was looked at
