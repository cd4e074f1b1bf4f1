"""Bad input fails the task at once, before anything reaches the API."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mistral_batch.exceptions import MistralBatchInputError
from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
from airflow_provider_mistral_batch.utils.compat import AirflowFailException
from mistral_batch_emulator import RunningEmulator
from tests.operators.support import CHAT, MODEL, FakeTaskInstance, chat_requests

pytestmark = pytest.mark.integration


def _fail(
    conn: RunningEmulator, closing: Callable[[Any], Any], **kwargs: Any
) -> tuple[str, FakeTaskInstance]:
    """Run execute expecting AirflowFailException; check nothing was sent; return the message."""
    kwargs.setdefault("task_id", "batch")
    kwargs.setdefault("endpoint", CHAT)
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("poll_interval", 0.05)
    op = closing(MistralBatchOperator(**kwargs))
    ti = FakeTaskInstance()
    with pytest.raises(AirflowFailException) as info:
        op.execute({"ti": ti})
    posts = [r for r in conn.requests if r.method == "POST"]
    assert posts == [], f"sent {posts} for bad input"
    assert ti.pushes == []
    assert op.job_id is None
    return str(info.value), ti


def test_unknown_endpoint(conn: RunningEmulator, closing: Callable[[Any], Any]) -> None:
    message, _ = _fail(conn, closing, endpoint="/v1/chat/completion", requests=chat_requests(2))
    assert message.startswith("batch: endpoint '/v1/chat/completion' is not one the Mistral")
    assert "/v1/chat/completions" in message  # lists the known ones
    assert "/v1/embeddings" in message


def test_reserved_metadata_key(conn: RunningEmulator, closing: Callable[[Any], Any]) -> None:
    message, _ = _fail(
        conn,
        closing,
        requests=chat_requests(2),
        metadata={"team": "data", "airflow_task_key": "mine"},
    )
    assert "reserved" in message
    assert "airflow_task_key" in message
    assert "team" not in message


def test_metadata_key_too_long(conn: RunningEmulator, closing: Callable[[Any], Any]) -> None:
    message, _ = _fail(conn, closing, requests=chat_requests(2), metadata={"k" * 33: "v"})
    assert message.startswith("batch: invalid metadata:")
    assert "k" * 33 in message
    assert "32" in message  # the limit


def test_metadata_value_empty(conn: RunningEmulator, closing: Callable[[Any], Any]) -> None:
    message, _ = _fail(conn, closing, requests=chat_requests(2), metadata={"team": ""})
    # One line naming the key, not pydantic's multi-line text with a link.
    assert message == (
        "batch: invalid metadata: metadata.team: String should have at least 1 character"
    )


def test_repeated_custom_id_names_both_positions(
    conn: RunningEmulator, closing: Callable[[Any], Any]
) -> None:
    requests = chat_requests(3)
    requests[2] = {**requests[2], "custom_id": "r0"}
    message, _ = _fail(conn, closing, requests=requests)
    assert '[2]: custom_id "r0" repeats [0]' in message
    assert "1 problems" in message


def test_request_without_body(conn: RunningEmulator, closing: Callable[[Any], Any]) -> None:
    message, _ = _fail(conn, closing, requests=[*chat_requests(1), {"custom_id": "x"}])
    assert '[1]: missing "body"' in message


def test_request_without_custom_id(conn: RunningEmulator, closing: Callable[[Any], Any]) -> None:
    message, _ = _fail(conn, closing, requests=[{"body": {"messages": []}}])
    assert '[0]: missing "custom_id"' in message
    assert "assign_custom_ids=True" in message


def test_empty_requests(conn: RunningEmulator, closing: Callable[[Any], Any]) -> None:
    message, _ = _fail(conn, closing, requests=[])
    assert message == "batch: requests: no requests: the batch is empty"


def test_invalid_line_in_input_file_is_named(
    conn: RunningEmulator, closing: Callable[[Any], Any], tmp_path: Path
) -> None:
    source = tmp_path / "prompts.jsonl"
    good = json.dumps(chat_requests(1)[0])
    source.write_text(f"{good}\n{{not json\n", encoding="utf-8")
    message, _ = _fail(conn, closing, input_path=str(source))
    assert "prompts.jsonl line 2: not valid JSON" in message
    assert not [r for r in conn.requests if r.path.startswith("/v1/files")]


def test_missing_input_file(
    conn: RunningEmulator, closing: Callable[[Any], Any], tmp_path: Path
) -> None:
    missing = tmp_path / "nope.jsonl"
    message, _ = _fail(conn, closing, input_path=missing)
    assert f"input_path '{missing}' does not exist or is not a file" in message


def test_input_files_as_a_single_string(
    conn: RunningEmulator, closing: Callable[[Any], Any]
) -> None:
    message, _ = _fail(conn, closing, input_files="0a1b2c3d-0000-4000-8000-000000000001")
    assert "input_files must be a list of file ids, got a string" in message


def test_input_files_empty(conn: RunningEmulator, closing: Callable[[Any], Any]) -> None:
    message, _ = _fail(conn, closing, input_files=[])
    assert "input_files is empty" in message


@pytest.mark.parametrize("field", ["requests", "input_files", "input_path"])
def test_an_input_that_rendered_to_none_is_named(
    conn: RunningEmulator, closing: Callable[[Any], Any], field: str
) -> None:
    template = "{{ ti.xcom_pull(task_ids='make_input') }}"
    op = closing(MistralBatchOperator(task_id="batch", endpoint=CHAT, **{field: template}))
    setattr(op, field, None)  # what rendering leaves when the XCom was never pushed
    with pytest.raises(AirflowFailException) as info:
        op.execute({"ti": FakeTaskInstance()})
    assert str(info.value) == (
        f"batch: {field} rendered to None; is the upstream XCom it pulls there?"
    )
    assert [r for r in conn.requests if r.method == "POST"] == []


@pytest.mark.integration
@pytest.mark.parametrize("metadata", [["team", "data"], "team=data", 7])
def test_metadata_that_is_not_a_mapping_is_an_input_error_naming_it(
    make_op: Callable[..., MistralBatchOperator], conn: RunningEmulator, metadata: object
) -> None:
    conn.clear_requests()
    with pytest.raises(MistralBatchInputError) as caught:
        make_op(metadata=metadata).execute({"ti": FakeTaskInstance()})
    assert str(caught.value).startswith(
        "batch: metadata must be a mapping of string keys to string values, got "
    )
    assert isinstance(caught.value, AirflowFailException)  # not retried
    assert not [r for r in conn.requests if r.method == "POST"]


@pytest.mark.integration
def test_input_files_are_looked_up_before_any_job_is_made(
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    tmp_path: Path,
) -> None:
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"custom_id": "a", "body": {"input": "x"}}) + "\n")
    hook = MistralBatchHook()
    batch_file = hook.upload_file(source).id
    ocr_file = hook.upload_file(source, filename="scan.jsonl", purpose="ocr").id
    unknown = "6b0c7a8e-0000-4000-8000-00000000dead"
    cases = {
        unknown: f"batch: input_files[1] {unknown!r} cannot be used: HTTP 404",
        "not-an-id": "batch: input_files[1] 'not-an-id' cannot be used: HTTP 4",
        ocr_file: f"batch: input_files[1] {ocr_file!r} has purpose ocr; a batch job needs",
    }
    conn.clear_requests()
    for bad, message in cases.items():
        with pytest.raises(MistralBatchInputError) as caught:
            make_op(input_files=[batch_file, bad]).execute({"ti": FakeTaskInstance()})
        assert str(caught.value).startswith(message)
        assert isinstance(caught.value, AirflowFailException)  # not retried
    assert not [r for r in conn.requests if r.path == "/v1/batch/jobs" and r.method == "POST"]
    hook.close()
