"""Results joined with the input: written by the batch operator or the results operator."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath
from pydantic import BaseModel

from airflow_provider_mistral_batch.exceptions import MistralBatchInputError, MistralBatchJobError
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.operators.batch import (
    MistralBatchOperator,
    MistralBatchResultsOperator,
)
from airflow_provider_mistral_batch.utils.compat import AirflowFailException
from mistral_batch_emulator import RunningEmulator
from tests.helpers import wait_for_terminal, write_jsonl
from tests.integration.operators.support import (
    CHAT,
    MODEL,
    FakeTaskInstance,
    OperatorLog,
    chat_requests,
)

pytestmark = pytest.mark.integration


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _usage_of_output(hook: MistralBatchHook, file_ids: list[str | None]) -> dict[str, int]:
    totals = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    for file_id in file_ids:
        if file_id is None:
            continue
        for line in hook.iter_file_lines(file_id):
            usage = json.loads(line)["response"]["body"]["usage"]
            for key in totals:
                totals[key] += usage[key]
    return totals


def test_results_in_input_order_with_failures_and_usage(
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    hook: MistralBatchHook,
    tmp_path: Path,
) -> None:
    conn.update_config(failing_custom_ids={"r1"})
    target = tmp_path / "results.jsonl"
    ti = FakeTaskInstance()
    result = make_op(
        requests=chat_requests(4), results_path=str(target), max_failed_ratio=0.25
    ).execute({"ti": ti})

    lines = _lines(target)
    assert [line["custom_id"] for line in lines] == ["r0", "r1", "r2", "r3"]
    assert [line["ok"] for line in lines] == [True, False, True, True]
    assert [line["status"] for line in lines] == ["success", "error", "success", "success"]
    assert lines[1]["response"] is None
    assert lines[1]["error"]
    # Chat completions: each success carries its answer's text as output.
    content = lines[0]["response"]["choices"][0]["message"]["content"]
    assert content
    assert lines[0]["output"] == content
    assert lines[1]["output"] is None
    assert list(lines[0]) == [
        "custom_id",
        "status",
        "ok",
        "status_code",
        "response",
        "output",
        "error",
    ]
    assert result["results_path"] == str(target)
    assert result["missing_requests"] == 0
    assert result["usage"] == _usage_of_output(hook, ti.pushed["output_files"])
    assert (result["results"]["succeeded"], result["results"]["failed"]) == (3, 1)
    assert result["counts"] == {
        "success": 3,
        "error": 1,
        "invalid_output": 0,
        "missing": 0,
        "expired": 0,
        "cancelled": 0,
    }
    assert list(tmp_path.iterdir()) == [target], "no temporary file is left"


def test_sharded_results_go_to_one_file_in_input_order(
    make_op: Callable[..., MistralBatchOperator], tmp_path: Path
) -> None:
    target = tmp_path / "all.jsonl"
    result = make_op(
        requests=chat_requests(5), max_requests_per_job=2, results_path=str(target)
    ).execute({"ti": FakeTaskInstance()})
    assert len(result["job_ids"]) == 3
    assert [line["custom_id"] for line in _lines(target)] == ["r0", "r1", "r2", "r3", "r4"]
    assert result["missing_requests"] == 0


def test_results_of_a_jsonl_input_to_a_file_url_and_with_the_request_downstream(
    make_op: Callable[..., MistralBatchOperator], tmp_path: Path, closing: Callable[[Any], Any]
) -> None:
    source = tmp_path / "in.jsonl"
    write_jsonl(source, ["b", "a", "c"])
    url = f"file://{tmp_path}/out.jsonl"
    result = make_op(input_path=source, results_path=url).execute({"ti": FakeTaskInstance()})
    lines = [json.loads(line) for line in ObjectStoragePath(url).read_text().splitlines()]
    assert [line["custom_id"] for line in lines] == ["b", "a", "c"]
    assert "request" not in lines[0]
    assert result["results_path"] == url
    # The request bodies in the results: the results operator's option, downstream.
    with_request = f"file://{tmp_path}/with-request.jsonl"
    closing(
        MistralBatchResultsOperator(
            task_id="results",
            job_id=result["job_ids"],
            input_path=source,
            results_path=with_request,
            results_include_request=True,
        )
    ).execute({"ti": FakeTaskInstance()})
    lines = [json.loads(line) for line in ObjectStoragePath(with_request).read_text().splitlines()]
    assert [line["custom_id"] for line in lines] == ["b", "a", "c"]
    assert lines[0]["request"] == json.loads(source.read_text().splitlines()[0])["body"]


def test_an_unwritable_results_path_fails_before_anything_is_sent(
    make_op: Callable[..., MistralBatchOperator], conn: RunningEmulator, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("a file, not a folder")
    missing = tmp_path / "a-file" / "r.jsonl"
    conn.clear_requests()
    with pytest.raises(MistralBatchInputError) as caught:
        make_op(results_path=str(missing)).execute({"ti": FakeTaskInstance()})
    assert str(caught.value).startswith(f"batch: cannot write results to {missing}")
    assert not [r for r in conn.requests if r.method == "POST"]


def test_a_results_path_with_no_filesystem_fails_before_anything_is_sent(
    make_op: Callable[..., MistralBatchOperator], conn: RunningEmulator
) -> None:
    conn.clear_requests()
    with pytest.raises(MistralBatchInputError) as caught:
        make_op(results_path="nosuchscheme://bucket/r.jsonl").execute({"ti": FakeTaskInstance()})
    assert str(caught.value).startswith(
        "batch: results_path 'nosuchscheme://bucket/r.jsonl': no filesystem for its scheme ("
    )
    assert not [r for r in conn.requests if r.method == "POST"]


def _cancelled_job(conn: RunningEmulator, hook: MistralBatchHook, count: int) -> str:
    conn.update_config(requests_per_second=20)
    job = hook.create_batch_job(endpoint=CHAT, model=MODEL, requests=chat_requests(count))
    while hook.get_batch_job(job.id).completed_requests < 3:
        time.sleep(0.02)
    hook.cancel_batch_job(job.id)
    return wait_for_terminal(hook, job.id).id


def test_results_operator_counts_and_names_the_missing_requests_of_a_cancelled_job(
    conn: RunningEmulator,
    hook: MistralBatchHook,
    tmp_path: Path,
) -> None:
    job_id = _cancelled_job(conn, hook, 60)
    target = tmp_path / "partial.jsonl"
    op = MistralBatchResultsOperator(
        task_id="results", job_id=job_id, results_path=str(target), requests=chat_requests(60)
    )
    manifest = op.execute({"ti": FakeTaskInstance()})
    lines = _lines(target)
    assert [line["custom_id"] for line in lines] == [f"r{i}" for i in range(60)]
    # The job was cancelled: its requests without a result line are cancelled, not missing.
    missing = [line["custom_id"] for line in lines if line["status"] == "cancelled"]
    assert {line["status"] for line in lines} == {"success", "cancelled"}
    assert all(
        line["error"] == "no result returned: the job ended CANCELLED"
        for line in lines
        if line["status"] == "cancelled"
    )
    assert manifest["missing_requests"] == len(missing) > 0
    assert manifest["missing_ids"] == missing[:20]
    assert manifest["counts"]["cancelled"] == len(missing)
    assert manifest["counts"]["missing"] == 0
    assert (manifest["succeeded"], manifest["failed"]) == (60 - len(missing), len(missing))
    assert manifest["job_ids"] == [job_id]


def test_results_operator_without_input_writes_file_order_and_says_it(
    conn: RunningEmulator,
    hook: MistralBatchHook,
    tmp_path: Path,
    capture_log: Callable[[Any], OperatorLog],
) -> None:
    job = hook.create_batch_job(endpoint=CHAT, model=MODEL, requests=chat_requests(3))
    wait_for_terminal(hook, job.id)
    op = MistralBatchResultsOperator(
        task_id="results", job_id=job.id, results_path=str(tmp_path / "r.jsonl")
    )
    log = capture_log(op)
    manifest = op.execute({"ti": FakeTaskInstance()})
    assert sorted(line["custom_id"] for line in _lines(tmp_path / "r.jsonl")) == ["r0", "r1", "r2"]
    assert manifest["missing_requests"] is None  # cannot be counted without the input
    assert any("cannot be counted" in line for line in log.at("info"))


def test_results_operator_refuses_a_job_still_running(
    conn: RunningEmulator, hook: MistralBatchHook, tmp_path: Path
) -> None:
    conn.update_config(queue_seconds=60)
    job = hook.create_batch_job(endpoint=CHAT, model=MODEL, requests=chat_requests(2))
    op = MistralBatchResultsOperator(
        task_id="results", job_id=job.id, results_path=str(tmp_path / "r.jsonl")
    )
    with pytest.raises(MistralBatchJobError, match=f"{job.id} is still QUEUED"):
        op.execute({"ti": FakeTaskInstance()})
    assert not (tmp_path / "r.jsonl").exists()


def test_results_operator_refuses_two_inputs_and_include_request_without_input() -> None:
    with pytest.raises(MistralBatchInputError, match="at most one of requests, input_path"):
        MistralBatchResultsOperator(
            task_id="r", job_id="j", results_path="x", requests=[], input_files=["f"]
        )
    with pytest.raises(MistralBatchInputError, match="results_include_request needs the input"):
        MistralBatchResultsOperator(
            task_id="r", job_id="j", results_path="x", results_include_request=True
        )


def test_results_need_the_wait() -> None:
    with pytest.raises(MistralBatchInputError, match="results_path needs wait_for_completion"):
        MistralBatchOperator(
            task_id="t",
            endpoint=CHAT,
            requests=chat_requests(1),
            results_path="/tmp/r.jsonl",
            wait_for_completion=False,
        )


def test_a_bad_results_path_is_refused_before_the_input_is_read(
    make_op: Callable[..., MistralBatchOperator],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(spill))
    read: list[int] = []

    def generate() -> Iterator[dict[str, Any]]:
        for request in chat_requests(5):
            read.append(1)
            yield request

    (tmp_path / "a-file").write_text("a file, not a folder")
    with pytest.raises(MistralBatchInputError, match="cannot write results"):
        make_op(
            requests=generate(),
            max_requests_per_job=2,
            results_path=str(tmp_path / "a-file" / "no" / "r"),
        ).execute({"ti": FakeTaskInstance()})
    assert read == []
    assert list(spill.iterdir()) == []


def test_results_of_requests_from_a_generator_are_joined_after_the_upload(
    make_op: Callable[..., MistralBatchOperator], hook: MistralBatchHook, tmp_path: Path
) -> None:
    target = tmp_path / "r.jsonl"
    result = make_op(requests=iter(chat_requests(3)), results_path=str(target)).execute(
        {"ti": FakeTaskInstance()}
    )
    assert [line["custom_id"] for line in _lines(target)] == ["r0", "r1", "r2"]
    assert result["missing_requests"] == 0
    assert hook.get_batch_job(result["job_id"]).input_files, "uploaded, so it can be read back"


def test_results_operator_refuses_requests_that_are_not_objects(
    conn: RunningEmulator, hook: MistralBatchHook, tmp_path: Path
) -> None:
    job = hook.create_batch_job(endpoint=CHAT, model=MODEL, requests=chat_requests(1))
    wait_for_terminal(hook, job.id)
    op = MistralBatchResultsOperator(
        task_id="results", job_id=job.id, results_path=str(tmp_path / "r.jsonl"), requests=["x"]
    )
    with pytest.raises(MistralBatchInputError, match=r"requests\[0\] must be a"):
        op.execute({"ti": FakeTaskInstance()})


def _requests(custom_ids: list[str]) -> list[dict[str, Any]]:
    body = chat_requests(1)[0]["body"]
    return [{"custom_id": custom_id, "body": body} for custom_id in custom_ids]


def _ended_job(hook: MistralBatchHook, custom_ids: list[str]) -> str:
    job = hook.create_batch_job(endpoint=CHAT, model=MODEL, requests=_requests(custom_ids))
    return wait_for_terminal(hook, job.id).id


def _result_reads(conn: RunningEmulator, hook: MistralBatchHook, job_id: str) -> list[str]:
    """The requests that read the job's output or error file."""
    job = hook.get_batch_job(job_id)
    files = {f for f in (job.output_file, job.error_file) if f}
    return [r.path for r in conn.requests if any(f in r.path for f in files)]


def test_results_operator_refuses_repeated_custom_ids_in_requests_before_reading_results(
    conn: RunningEmulator, hook: MistralBatchHook, tmp_path: Path
) -> None:
    job_id = _ended_job(hook, ["a", "b"])
    target = tmp_path / "r.jsonl"
    conn.clear_requests()
    op = MistralBatchResultsOperator(
        task_id="results",
        job_id=job_id,
        results_path=str(target),
        requests=_requests(["a", "a", "b"]),
    )
    with pytest.raises(MistralBatchInputError) as caught:
        op.execute({"ti": FakeTaskInstance()})
    assert str(caught.value) == (
        "results: results cannot be joined with an input whose custom_ids repeat (1 repeat):\n"
        'requests[1]: custom_id "a" repeats requests[0]'
    )
    assert isinstance(caught.value, AirflowFailException), "fatal: no retries"
    assert _result_reads(conn, hook, job_id) == []
    assert list(tmp_path.iterdir()) == [], "nothing written, no temporary file left"


def test_results_operator_refuses_repeated_custom_ids_of_an_input_path(
    conn: RunningEmulator, hook: MistralBatchHook, tmp_path: Path
) -> None:
    job_id = _ended_job(hook, ["a", "b", "c"])
    source = tmp_path / "in.jsonl"
    write_jsonl(source, ["a", "b", "a", "c", "b"])
    conn.clear_requests()
    op = MistralBatchResultsOperator(
        task_id="results",
        job_id=job_id,
        results_path=str(tmp_path / "r.jsonl"),
        input_path=str(source),
    )
    with pytest.raises(MistralBatchInputError) as caught:
        op.execute({"ti": FakeTaskInstance()})
    assert str(caught.value).splitlines()[1:] == [
        f'{source} line 3: custom_id "a" repeats {source} line 1',
        f'{source} line 5: custom_id "b" repeats {source} line 2',
    ]
    assert "(2 repeats)" in str(caught.value)
    assert _result_reads(conn, hook, job_id) == []
    assert not (tmp_path / "r.jsonl").exists()


def test_results_operator_refuses_a_custom_id_repeated_across_input_files(
    conn: RunningEmulator, hook: MistralBatchHook, tmp_path: Path
) -> None:
    job_id = _ended_job(hook, ["a", "b", "c"])
    first, second = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    write_jsonl(first, ["a", "b"])
    write_jsonl(second, ["c", "b"])
    file_ids = [hook.upload_file(first).id, hook.upload_file(second).id]
    conn.clear_requests()
    op = MistralBatchResultsOperator(
        task_id="results",
        job_id=job_id,
        results_path=str(tmp_path / "r.jsonl"),
        input_files=file_ids,
    )
    with pytest.raises(MistralBatchInputError) as caught:
        op.execute({"ti": FakeTaskInstance()})
    assert str(caught.value).splitlines()[1:] == [
        f'file {file_ids[1]} line 2: custom_id "b" repeats file {file_ids[0]} line 2'
    ]
    assert _result_reads(conn, hook, job_id) == []
    assert not (tmp_path / "r.jsonl").exists()


def test_results_operator_names_a_repeat_in_requests_given_as_a_one_shot_iterator(
    conn: RunningEmulator, hook: MistralBatchHook, tmp_path: Path
) -> None:
    job_id = _ended_job(hook, ["a", "b"])
    op = MistralBatchResultsOperator(
        task_id="results",
        job_id=job_id,
        results_path=str(tmp_path / "r.jsonl"),
        requests=iter(_requests(["b", "a", "b"])),
    )
    with pytest.raises(MistralBatchInputError) as caught:
        op.execute({"ti": FakeTaskInstance()})
    assert str(caught.value).endswith('requests[2]: custom_id "b" repeats requests[0]')


def test_a_timed_out_job_writes_its_unanswered_requests_as_expired(
    make_op: Callable[..., MistralBatchOperator], conn: RunningEmulator, tmp_path: Path
) -> None:
    # 1 hour of timeout is 2 s here; 40 requests at 5 a second cannot all be answered.
    conn.update_config(requests_per_second=5, seconds_per_timeout_hour=2.0)
    target = tmp_path / "r.jsonl"
    ti = FakeTaskInstance()
    with pytest.raises(MistralBatchJobError, match="ended TIMEOUT_EXCEEDED") as caught:
        make_op(requests=chat_requests(40), results_path=str(target), timeout=3600).execute(
            {"ti": ti}
        )
    lines = _lines(target)
    statuses = [line["status"] for line in lines]
    assert len(lines) == 40
    assert set(statuses) <= {"success", "expired"}
    assert "expired" in statuses
    expired = statuses.count("expired")
    assert all(
        line["error"] == "no result returned: the job ended TIMEOUT_EXCEEDED"
        for line in lines
        if line["status"] == "expired"
    )
    assert str(caught.value).endswith(
        f"; results: {40 - expired} success, {expired} expired of 40 requests"
    )


class _Verdict(BaseModel):
    verdict: str


def test_results_operator_checks_answers_against_an_output_type(
    conn: RunningEmulator, hook: MistralBatchHook, tmp_path: Path
) -> None:
    job_id = _ended_job(hook, ["a", "b"])
    # The emulator answers these requests (they ask for no response_format) with plain
    # sentences: text output carries them, a structured output type refuses them.
    typed = MistralBatchResultsOperator(
        task_id="results",
        job_id=job_id,
        results_path=str(tmp_path / "typed.jsonl"),
        requests=_requests(["a", "b"]),
        output_type=_Verdict,
    )
    manifest = typed.execute({"ti": FakeTaskInstance()})
    rows = _lines(tmp_path / "typed.jsonl")
    assert [(row["status"], row["output"]) for row in rows] == [("invalid_output", None)] * 2
    assert all(row["error"].startswith("the answer: Invalid JSON") for row in rows)
    assert (manifest["succeeded"], manifest["failed"], manifest["counts"]["invalid_output"]) == (
        0,
        2,
        2,
    )
    text = MistralBatchResultsOperator(
        task_id="results",
        job_id=job_id,
        results_path=str(tmp_path / "text.jsonl"),
        requests=_requests(["a", "b"]),
        output_type=str,
    )
    assert text.execute({"ti": FakeTaskInstance()})["counts"]["success"] == 2
    rows = _lines(tmp_path / "text.jsonl")
    assert [row["output"] for row in rows] == [
        row["response"]["choices"][0]["message"]["content"] for row in rows
    ]


def test_results_operator_gives_each_input_file_the_end_of_its_own_job(
    conn: RunningEmulator, hook: MistralBatchHook, tmp_path: Path
) -> None:
    first, second = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    write_jsonl(first, [f"a{i}" for i in range(60)])
    write_jsonl(second, ["b0", "b1"])
    file_ids = [hook.upload_file(first).id, hook.upload_file(second).id]
    done = wait_for_terminal(
        hook, hook.create_batch_job(endpoint=CHAT, model=MODEL, input_files=[file_ids[1]]).id
    )
    conn.update_config(requests_per_second=20)
    job = hook.create_batch_job(endpoint=CHAT, model=MODEL, input_files=[file_ids[0]])
    while hook.get_batch_job(job.id).completed_requests < 3:
        time.sleep(0.02)
    hook.cancel_batch_job(job.id)
    cancelled = wait_for_terminal(hook, job.id)
    op = MistralBatchResultsOperator(
        task_id="results",
        job_id=[cancelled.id, done.id],
        results_path=str(tmp_path / "r.jsonl"),
        input_files=file_ids,
    )
    manifest = op.execute({"ti": FakeTaskInstance()})
    rows = _lines(tmp_path / "r.jsonl")
    assert [row["custom_id"] for row in rows] == [f"a{i}" for i in range(60)] + ["b0", "b1"]
    assert {row["status"] for row in rows[:60]} == {"success", "cancelled"}
    assert [row["status"] for row in rows[60:]] == ["success", "success"]
    assert manifest["counts"]["cancelled"] == manifest["missing_requests"] > 0


class _Review(BaseModel):
    sentiment: str
    score: int


def test_typed_answers_validate_and_broken_ones_are_invalid_output(
    conn: RunningEmulator, hook: MistralBatchHook, tmp_path: Path
) -> None:
    from airflow_provider_mistral_batch.batch.output_spec import output_spec

    spec = output_spec(_Review)
    body = {**chat_requests(1)[0]["body"], "response_format": spec.response_format()}
    ids = ["good", "not-json", "wrong-shape", "also-good"]
    requests = [{"custom_id": custom_id, "body": body} for custom_id in ids]
    conn.update_config(
        broken_output_custom_ids={"not-json": "not_json", "wrong-shape": "wrong_shape"}
    )
    job = hook.create_batch_job(endpoint=CHAT, model=MODEL, requests=requests)
    wait_for_terminal(hook, job.id)
    op = MistralBatchResultsOperator(
        task_id="results",
        job_id=job.id,
        results_path=str(tmp_path / "r.jsonl"),
        requests=requests,
        output_type=_Review,
    )
    manifest = op.execute({"ti": FakeTaskInstance()})
    rows = {row["custom_id"]: row for row in _lines(tmp_path / "r.jsonl")}
    assert {cid: row["status"] for cid, row in rows.items()} == {
        "good": "success",
        "not-json": "invalid_output",
        "wrong-shape": "invalid_output",
        "also-good": "success",
    }
    # The validated value, as the model's JSON: the schema's fields with their types.
    assert _Review.model_validate(rows["good"]["output"]).model_dump() == rows["good"]["output"]
    assert rows["not-json"]["error"].startswith("the answer: Invalid JSON")
    assert rows["wrong-shape"]["output"] is None
    assert rows["wrong-shape"]["error"]
    assert manifest["counts"] == {
        "success": 2,
        "error": 0,
        "invalid_output": 2,
        "missing": 0,
        "expired": 0,
        "cancelled": 0,
    }
    assert (manifest["succeeded"], manifest["failed"]) == (2, 2)


def test_results_operator_defaults_to_text_where_answers_have_it(
    conn: RunningEmulator, hook: MistralBatchHook, tmp_path: Path
) -> None:
    # output_type=str, the default as on the submit operator: chat rows carry the answer's
    # text, embeddings rows (no text) carry no output and are not invalid.
    chat = _ended_job(hook, ["a"])
    embed = hook.create_batch_job(
        endpoint="/v1/embeddings",
        model=MODEL,
        requests=[{"custom_id": "e", "body": {"input": ["one"]}}],
    )
    wait_for_terminal(hook, embed.id)
    outputs = {}
    for job_id in (chat, embed.id):
        op = MistralBatchResultsOperator(
            task_id="results", job_id=job_id, results_path=str(tmp_path / f"{job_id}.jsonl")
        )
        assert op.execute({"ti": FakeTaskInstance()})["counts"]["success"] == 1
        [row] = _lines(tmp_path / f"{job_id}.jsonl")
        outputs[job_id] = row["output"]
    assert isinstance(outputs[chat], str)
    assert outputs[chat]
    assert outputs[embed.id] is None
