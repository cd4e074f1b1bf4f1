"""MistralBatchOperator waiting in the worker (deferrable=False), against the emulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException

from airflow_provider_mistral_batch.batch import input as batch_input
from airflow_provider_mistral_batch.exceptions import MistralAPIError
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.links import MistralBatchJobLink
from airflow_provider_mistral_batch.models import TASK_KEY_METADATA, BatchJobStatus
from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
from airflow_provider_mistral_batch.utils.compat import AirflowFailException
from mistral_batch_emulator import Fault, RunningEmulator
from tests.helpers import wait_for_terminal, write_jsonl
from tests.integration.operators.support import (
    MODEL,
    FakeTaskInstance,
    OperatorLog,
    chat_requests,
    lose_inputs_after_create,
)

pytestmark = pytest.mark.integration

LINK_KEY = MistralBatchJobLink().xcom_key
SUMMARY_KEYS = {
    "job_ids",
    "output_files",
    "error_files",
    "results_path",
    "missing_requests",
    "usage",
    "counts",
    "job_id",
    "status",
    "output_file",
    "error_file",
    "total_requests",
    "succeeded_requests",
    "failed_requests",
}


@pytest.fixture
def hook(conn: RunningEmulator) -> Any:
    with MistralBatchHook("mistral_default") as made:
        yield made


def test_inline_requests_succeed_and_push_xcom_in_order(
    capture_log: Callable[[Any], OperatorLog],
    make_op: Callable[..., MistralBatchOperator],
    hook: MistralBatchHook,
) -> None:
    op = make_op(requests=chat_requests(3), metadata={"team": "data"})
    log = capture_log(op)
    ti = FakeTaskInstance()
    result = op.execute({"ti": ti})

    assert set(result) == SUMMARY_KEYS
    assert result["status"] == "SUCCESS"
    assert (result["total_requests"], result["succeeded_requests"], result["failed_requests"]) == (
        3,
        3,
        0,
    )
    assert result["output_file"] is not None
    assert result["error_file"] is None
    assert ti.keys[0] == "batch_job_id"
    assert ti.pushed == {
        "batch_job_id": result["job_id"],
        "batch_job_ids": [result["job_id"]],
        "mistral_conn_id": "mistral_default",
        "output_files": [result["output_file"]],
        "error_files": [None],
        LINK_KEY: f"{hook.settings.base_url}/build/batches/{result['job_id']}",
        "output_file": result["output_file"],
        "error_file": None,
    }
    assert op.job_id == result["job_id"]
    assert (
        f"Mistral batch job {result['job_id']} succeeded (3 succeeded, 0 failed of 3 requests)"
        in (log.at("info"))
    )
    assert log.at("warning") == []

    job = hook.get_batch_job(result["job_id"])
    assert job.input_files == []  # inline
    assert job.model == MODEL
    metadata = job.metadata or {}
    assert metadata["team"] == "data"
    assert metadata["airflow_dag_id"] == "mistral_dag"
    assert metadata["airflow_task_id"] == "batch"
    assert metadata["airflow_run_id"] == ti.run_id
    assert metadata["airflow_map_index"] == "-1"
    assert len(metadata[TASK_KEY_METADATA]) == 40


def test_input_path_is_uploaded_then_run(
    make_op: Callable[..., MistralBatchOperator],
    hook: MistralBatchHook,
    conn: RunningEmulator,
    tmp_path: Path,
) -> None:
    source = tmp_path / "prompts.jsonl"
    write_jsonl(source, ["a", "b", "c", "d"])
    op = make_op(input_path=source)
    result = op.execute({"ti": FakeTaskInstance()})

    assert result["status"] == "SUCCESS"
    assert result["total_requests"] == 4
    job = hook.get_batch_job(result["job_id"])
    assert len(job.input_files) == 1
    uploaded = hook.get_file(job.input_files[0])
    assert uploaded.filename == "prompts.jsonl"
    posts = [r.path for r in conn.requests if r.method == "POST"]
    assert posts == ["/v1/files", "/v1/batch/jobs"]  # upload first, then the job
    assert source.exists()  # the user's own file is never deleted


def test_input_path_as_a_string(
    make_op: Callable[..., MistralBatchOperator], tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    write_jsonl(source, ["a", "b"])
    result = make_op(input_path=str(source)).execute({"ti": FakeTaskInstance()})
    assert (result["status"], result["total_requests"]) == ("SUCCESS", 2)


def test_input_path_with_assigned_ids_uploads_a_temporary_copy_and_deletes_it(
    make_op: Callable[..., MistralBatchOperator],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(temp_dir))
    source = tmp_path / "in.jsonl"
    source.write_text('{"body": {"messages": [{"role": "user", "content": "x"}]}}\n' * 3)
    result = make_op(input_path=source, assign_custom_ids=True).execute({"ti": FakeTaskInstance()})
    assert (result["status"], result["total_requests"]) == ("SUCCESS", 3)
    assert list(temp_dir.iterdir()) == []
    assert source.exists()


def test_input_files_by_id(
    make_op: Callable[..., MistralBatchOperator], hook: MistralBatchHook, tmp_path: Path
) -> None:
    source = tmp_path / "in.jsonl"
    write_jsonl(source, ["x", "y"])
    file_id = hook.upload_file(source).id
    result = make_op(input_files=[file_id]).execute({"ti": FakeTaskInstance()})
    assert (result["status"], result["total_requests"]) == ("SUCCESS", 2)
    assert hook.get_batch_job(result["job_id"]).input_files == [file_id]


def test_more_requests_than_inline_limit_go_through_a_temporary_file(
    make_op: Callable[..., MistralBatchOperator],
    hook: MistralBatchHook,
    conn: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batch_input, "MAX_INLINE_REQUESTS", 3)
    written: list[Path] = []
    original = batch_input.prepare_requests

    def spy(*args: Any, **kwargs: Any) -> batch_input.PreparedInput:
        prepared = original(*args, **kwargs)
        files = batch_input.temporary_files(prepared)
        assert all(path.exists() for path in files)
        written.extend(files)
        return prepared

    monkeypatch.setattr(batch_input, "prepare_requests", spy)
    result = make_op(requests=chat_requests(5)).execute({"ti": FakeTaskInstance()})

    assert (result["status"], result["total_requests"]) == ("SUCCESS", 5)
    assert len(written) == 1
    assert not written[0].exists(), "the temporary JSONL was left behind"
    job = hook.get_batch_job(result["job_id"])
    assert len(job.input_files) == 1
    assert hook.get_file(job.input_files[0]).filename == "requests.jsonl"
    assert [r.path for r in conn.requests if r.method == "POST"] == [
        "/v1/files",
        "/v1/batch/jobs",
    ]


def test_temporary_file_is_deleted_even_when_the_upload_fails(
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batch_input, "MAX_INLINE_REQUESTS", 1)
    written: list[Path] = []
    original = batch_input.prepare_requests

    def spy(*args: Any, **kwargs: Any) -> batch_input.PreparedInput:
        prepared = original(*args, **kwargs)
        written.extend(batch_input.temporary_files(prepared))
        return prepared

    monkeypatch.setattr(batch_input, "prepare_requests", spy)
    conn.set_faults([Fault(kind="status", status_code=400, method="POST", path_prefix="/v1/files")])
    with pytest.raises(MistralAPIError, match="400"):
        make_op(requests=chat_requests(2)).execute({"ti": FakeTaskInstance()})
    assert len(written) == 1
    assert not written[0].exists()
    assert not [r for r in conn.requests if r.path == "/v1/batch/jobs" and r.method == "POST"]


@pytest.mark.parametrize("ratio", [None, 0.5])
def test_failed_requests_only_warn_within_max_failed_ratio(
    capture_log: Callable[[Any], OperatorLog],
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    ratio: float | None,
) -> None:
    conn.update_config(failing_custom_ids={"r1"})
    op = make_op(requests=chat_requests(3), max_failed_ratio=ratio)
    log = capture_log(op)
    ti = FakeTaskInstance()
    result = op.execute({"ti": ti})

    assert result["status"] == "SUCCESS"
    assert (result["succeeded_requests"], result["failed_requests"]) == (2, 1)
    assert result["error_file"] is not None
    assert ti.pushed["error_file"] == result["error_file"]
    # The warning and the final line say the rule that let the task pass; the warning quotes
    # the error file's first line.
    rule = (
        "max_failed_ratio None: failed requests only warn"
        if ratio is None
        else "within max_failed_ratio 0.5"
    )
    assert log.at("warning") == [
        f"1 of 3 requests failed (33.3%) in Mistral batch job {result['job_id']}, {rule}; "
        f"see error_file {result['error_file']}; first errors: r1: request r1 failed "
        "(listed in failing_custom_ids)"
    ]
    assert log.at("info")[-1] == (
        f"Mistral batch job {result['job_id']} succeeded; 1 of 3 requests failed (33.3%), "
        f"{rule} (2 succeeded, 1 failed of 3 requests)"
    )


@pytest.mark.parametrize("given", [{}, {"max_failed_ratio": 0.0}])
def test_failed_requests_fail_without_retry_by_default_and_at_zero(
    make_op: Callable[..., MistralBatchOperator], conn: RunningEmulator, given: dict[str, Any]
) -> None:
    conn.update_config(failing_custom_ids={"r1"})
    ti = FakeTaskInstance()
    with pytest.raises(AirflowFailException) as info:
        make_op(requests=chat_requests(3), **given).execute({"ti": ti})
    message = str(info.value)
    job_id = ti.pushed["batch_job_id"]
    assert message.startswith(
        f"Mistral batch job {job_id} succeeded but 1 of 3 requests failed (33.3%), above "
        "max_failed_ratio 0 (2 succeeded, 1 failed of 3 requests)"
    )
    assert ti.pushed["error_file"] is not None
    assert f"see error_file {ti.pushed['error_file']}" in message
    # The files were pushed before the task failed, so downstream cleanup can find them.
    assert ti.pushed["output_file"] is not None
    assert ti.keys.index("error_file") < len(ti.keys)


def test_failed_requests_within_max_failed_ratio_pass(
    make_op: Callable[..., MistralBatchOperator], conn: RunningEmulator
) -> None:
    conn.update_config(failing_custom_ids={"r1"})
    result = make_op(requests=chat_requests(4), max_failed_ratio=0.25).execute(
        {"ti": FakeTaskInstance()}
    )
    assert (result["status"], result["failed_requests"]) == ("SUCCESS", 1)


def test_failed_job_fails_the_task_with_its_status(
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.jsonl"
    write_jsonl(source, ["a", "b"])
    op = make_op(input_path=source)
    lose_inputs_after_create(monkeypatch, op, conn)
    ti = FakeTaskInstance()
    with pytest.raises(AirflowException) as info:
        op.execute({"ti": ti})
    assert not isinstance(info.value, AirflowFailException)  # a FAILED job may be retried
    message = str(info.value)
    assert f"Mistral batch job {ti.pushed['batch_job_id']} ended FAILED" in message
    assert "not found" in message  # the job's own error names the lost input file
    assert ti.pushed["output_file"] is None
    assert ti.pushed["error_file"] is None


def test_the_wait_deadline_cancels_the_job_and_fails(
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    hook: MistralBatchHook,
    wait_seconds: Callable[[float], None],
) -> None:
    conn.update_config(queue_seconds=60)
    wait_seconds(0.3)  # instead of the job's timeout plus one hour
    ti = FakeTaskInstance()
    # No retry: a cancelled job cannot be reattached, so a retry would pay for a new one.
    with pytest.raises(AirflowFailException) as info:
        make_op(requests=chat_requests(2)).execute({"ti": ti})
    job_id = ti.pushed["batch_job_id"]
    assert str(info.value) == (
        f"deadline passed while Mistral batch job {job_id} was still QUEUED; cancellation requested"
    )
    assert ti.pushed["output_file"] is None
    assert "error_file" in ti.pushed
    assert [r for r in conn.requests if r.path == f"/v1/batch/jobs/{job_id}/cancel"]
    assert wait_for_terminal(hook, job_id).status == BatchJobStatus.CANCELLED


def test_transient_errors_while_polling_are_tolerated(
    capture_log: Callable[[Any], OperatorLog],
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
) -> None:
    conn.set_faults(
        [Fault(kind="status", status_code=503, method="GET", path_prefix="/v1/batch/jobs/")] * 3
    )
    op = make_op(requests=chat_requests(3))
    log = capture_log(op)
    result = op.execute({"ti": FakeTaskInstance()})

    assert result["status"] == "SUCCESS"
    failed_polls = [r for r in conn.requests if r.status_code == 503]
    assert len(failed_polls) == 3
    warnings = log.at("warning")
    assert len(warnings) == 3
    assert warnings[0].startswith(
        f"Polling Mistral batch job {result['job_id']} failed (1 in a row):"
    )
    assert "(3 in a row)" in warnings[2]


def test_polling_gives_up_after_max_consecutive_errors(
    make_op: Callable[..., MistralBatchOperator], conn: RunningEmulator
) -> None:
    conn.set_faults(
        [Fault(kind="status", status_code=503, method="GET", path_prefix="/v1/batch/jobs/")] * 3
    )
    with pytest.raises(MistralAPIError) as info:
        make_op(requests=chat_requests(3), max_consecutive_errors=2).execute(
            {"ti": FakeTaskInstance()}
        )
    assert info.value.status_code == 503


def test_wait_for_completion_false_returns_right_after_creation(
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    hook: MistralBatchHook,
) -> None:
    conn.update_config(queue_seconds=60)
    ti = FakeTaskInstance()
    result = make_op(requests=chat_requests(2), wait_for_completion=False).execute({"ti": ti})

    assert result["status"] in ("QUEUED", "RUNNING")
    assert set(result) == SUMMARY_KEYS
    assert result["output_file"] is None
    assert set(ti.pushed) == {"batch_job_id", "batch_job_ids", "mistral_conn_id", LINK_KEY}
    assert ti.pushed["batch_job_id"] == result["job_id"]
    assert ti.pushed["batch_job_ids"] == [result["job_id"]]
    assert not [r for r in conn.requests if r.path == f"/v1/batch/jobs/{result['job_id']}"]
    assert hook.get_batch_job(result["job_id"]).status == BatchJobStatus.QUEUED


def test_assign_custom_ids_uses_positions(
    make_op: Callable[..., MistralBatchOperator], hook: MistralBatchHook
) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    requests = [{"body": body}, {"custom_id": "named", "body": body}, {"body": body}]
    result = make_op(requests=requests, assign_custom_ids=True).execute({"ti": FakeTaskInstance()})
    assert result["status"] == "SUCCESS"
    lines = [json.loads(line) for line in hook.iter_file_lines(result["output_file"])]
    assert [line["custom_id"] for line in lines] == ["0", "named", "2"]


def test_model_in_each_body_instead_of_the_job(
    make_op: Callable[..., MistralBatchOperator], hook: MistralBatchHook
) -> None:
    requests = [
        {"custom_id": f"e{i}", "body": {"model": "mistral-embed", "input": [f"t{i}"]}}
        for i in range(2)
    ]
    result = make_op(endpoint="/v1/embeddings", model=None, requests=requests).execute(
        {"ti": FakeTaskInstance()}
    )
    assert (result["status"], result["succeeded_requests"]) == ("SUCCESS", 2)
    assert hook.get_batch_job(result["job_id"]).model is None


def test_a_file_the_api_refuses_for_its_size_fails_without_retries(
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.jsonl"
    write_jsonl(source, [f"r{i}" for i in range(50)])
    conn.update_config(max_file_bytes=100)
    with pytest.raises(AirflowFailException, match=r"in\.jsonl \(\d[\d,]* bytes\) is too large"):
        make_op(input_path=source).execute({"ti": FakeTaskInstance()})
    uploads = [r for r in conn.requests if r.method == "POST" and r.path == "/v1/files"]
    assert [r.status_code for r in uploads] == [413]
    assert not [r for r in conn.requests if r.path == "/v1/batch/jobs" and r.method == "POST"]
