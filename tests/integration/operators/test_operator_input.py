"""Bad input fails the task at once, before anything reaches the API."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mistral_batch.batch.manifest import XCOM_INPUT_ERROR
from airflow_provider_mistral_batch.exceptions import (
    MistralBatchFatalError,
    MistralBatchInputError,
)
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
from airflow_provider_mistral_batch.utils.compat import AirflowFailException
from mistral_batch_emulator import RunningEmulator
from tests.integration.operators.support import (
    CHAT,
    MODEL,
    FakeTaskInstance,
    OperatorLog,
    chat_requests,
)

pytestmark = pytest.mark.integration


def _fail(
    conn: RunningEmulator,
    closing: Callable[[Any], Any],
    rendered: dict[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[str, FakeTaskInstance]:
    """Run execute expecting AirflowFailException; check nothing was sent; return the message.

    :param rendered: fields set after the operator is made, as a render would set them.
    """
    kwargs.setdefault("task_id", "batch")
    kwargs.setdefault("endpoint", CHAT)
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("poll_interval", 0.05)
    op = closing(MistralBatchOperator(**kwargs))
    for field, value in (rendered or {}).items():
        setattr(op, field, value)
    ti = FakeTaskInstance()
    with pytest.raises(AirflowFailException) as info:
        op.execute({"ti": ti})
    posts = [r for r in conn.requests if r.method == "POST"]
    assert posts == [], f"sent {posts} for bad input"
    # Only the input error, for the UI's tab: no job ids.
    assert ti.pushes == [(XCOM_INPUT_ERROR, str(info.value).removeprefix("batch: "))]
    assert op.job_id is None
    return str(info.value), ti


def test_an_unknown_v1_endpoint_is_sent_with_one_warning(
    conn: RunningEmulator,
    closing: Callable[[Any], Any],
    capture_log: Callable[[Any], OperatorLog],
) -> None:
    # A new Mistral endpoint needs no new provider release: the API decides. The emulator,
    # like the API, refuses one it does not serve; that its 422 comes back proves the job's
    # create was sent.
    op = closing(
        MistralBatchOperator(
            task_id="batch", endpoint="/v1/chat/completion", model=MODEL, requests=chat_requests(2)
        )
    )
    log = capture_log(op)
    conn.clear_requests()
    # The API's refusal fails the task without retries (the same on every retry).
    with pytest.raises(MistralBatchFatalError, match="refused to create the batch job: HTTP 422"):
        op.execute({"ti": FakeTaskInstance()})
    assert [(r.method, r.path) for r in conn.requests if r.method == "POST"] == [
        ("POST", "/v1/batch/jobs")
    ]
    warnings = log.at("warning")
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "Endpoint /v1/chat/completion is not one this provider release knows "
        "(/v1/chat/completions, /v1/embeddings, "
    )
    assert warnings[0].endswith("sending it as given (did you mean '/v1/chat/completions'?)")


def test_a_known_endpoint_logs_no_warning(
    conn: RunningEmulator,
    closing: Callable[[Any], Any],
    capture_log: Callable[[Any], OperatorLog],
) -> None:
    op = closing(
        MistralBatchOperator(
            task_id="batch",
            endpoint=CHAT,
            model=MODEL,
            requests=chat_requests(2),
            poll_interval=0.05,
        )
    )
    log = capture_log(op)
    assert op.execute({"ti": FakeTaskInstance()})["status"] == "SUCCESS"
    assert log.at("warning") == []


@pytest.mark.parametrize(
    "endpoint", ["chat/completions", "/v2/chat/completions", "/v1/", "/v1/a?b=1", "/v1/../files"]
)
def test_an_endpoint_not_of_the_form_v1_path_is_refused_when_the_dag_is_parsed(
    endpoint: str,
) -> None:
    with pytest.raises(MistralBatchInputError) as caught:
        MistralBatchOperator(task_id="batch", endpoint=endpoint, requests=chat_requests(1))
    message = str(caught.value)
    assert message.startswith(
        f"batch: endpoint {endpoint!r} is not an API endpoint of the form /v1/<path>"
    )
    assert "the known ones: /v1/chat/completions, /v1/embeddings," in message


def test_a_rendered_endpoint_not_of_the_form_v1_path_is_refused_before_anything_is_sent(
    conn: RunningEmulator, closing: Callable[[Any], Any]
) -> None:
    # A template is only checked once rendered (here: as a render would leave it).
    op = closing(
        MistralBatchOperator(task_id="batch", endpoint="{{ params.endpoint }}", requests=[])
    )
    op.endpoint = "chat/completions"
    op.requests = chat_requests(2)
    ti = FakeTaskInstance()
    with pytest.raises(MistralBatchInputError) as caught:
        op.execute({"ti": ti})
    assert str(caught.value).startswith(
        "batch: endpoint 'chat/completions' is not an API endpoint of the form /v1/<path> "
        "(did you mean '/v1/chat/completions'?); the known ones: "
    )
    assert not [r for r in conn.requests if r.method == "POST"]
    assert ti.pushes == [(XCOM_INPUT_ERROR, str(caught.value).removeprefix("batch: "))]


def _refused_at_parse_and_once_rendered(
    conn: RunningEmulator, closing: Callable[[Any], Any], field: str, value: Any
) -> str:
    """The message for a bad ``field``: given as is, at parse; from a template, at execute,
    before anything is sent. Both say the same."""
    with pytest.raises(MistralBatchInputError) as parsed:
        MistralBatchOperator(
            task_id="batch", endpoint=CHAT, requests=chat_requests(2), **{field: value}
        )
    message, _ = _fail(
        conn,
        closing,
        rendered={field: value},
        requests=chat_requests(2),
        **{field: "{{ params.value }}"},
    )
    assert str(parsed.value) == message
    return message


def test_reserved_metadata_key(conn: RunningEmulator, closing: Callable[[Any], Any]) -> None:
    message = _refused_at_parse_and_once_rendered(
        conn, closing, "metadata", {"team": "data", "airflow_task_key": "mine"}
    )
    assert "reserved" in message
    assert "airflow_task_key" in message
    assert "team" not in message


def test_metadata_key_too_long(conn: RunningEmulator, closing: Callable[[Any], Any]) -> None:
    message = _refused_at_parse_and_once_rendered(conn, closing, "metadata", {"k" * 33: "v"})
    assert message.startswith("batch: invalid job options: metadata.")
    assert "k" * 33 in message
    assert "32" in message  # the limit


def test_metadata_value_empty(conn: RunningEmulator, closing: Callable[[Any], Any]) -> None:
    message = _refused_at_parse_and_once_rendered(conn, closing, "metadata", {"team": ""})
    # One line naming the key, not pydantic's multi-line text with a link.
    assert message == (
        "batch: invalid job options: metadata.team: String should have at least 1 character"
    )


@pytest.mark.parametrize("key", ["model", "timeout_hours", "metadata", "requests"])
def test_job_kwargs_may_not_set_what_the_operator_sets(
    conn: RunningEmulator, closing: Callable[[Any], Any], key: str
) -> None:
    message = _refused_at_parse_and_once_rendered(conn, closing, "job_kwargs", {key: "x"})
    assert message.startswith(f"batch: job_kwargs may not set {key}: the operator sets ")


def test_job_kwargs_with_a_field_no_job_takes_is_refused(
    conn: RunningEmulator, closing: Callable[[Any], Any]
) -> None:
    message = _refused_at_parse_and_once_rendered(conn, closing, "job_kwargs", {"agentid": "a"})
    assert message == (
        "batch: job_kwargs has agentid, which no batch job takes; the fields it may set: agent_id"
    )


def test_job_kwargs_values_are_checked_by_the_request_model(
    conn: RunningEmulator, closing: Callable[[Any], Any]
) -> None:
    message = _refused_at_parse_and_once_rendered(conn, closing, "job_kwargs", {"agent_id": 7})
    assert message == "batch: invalid job options: agent_id: Input should be a valid string"


def test_job_kwargs_go_into_the_create_request(
    make_op: Callable[..., MistralBatchOperator], hook: MistralBatchHook
) -> None:
    op = make_op(job_kwargs={"agent_id": "{{ params.agent }}"}, model=None)
    op.job_kwargs = {"agent_id": "agent-7"}  # as rendered
    result = op.execute({"ti": FakeTaskInstance()})
    assert hook.get_batch_job(result["job_id"]).agent_id == "agent-7"


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


def test_an_endpoint_template_with_the_dag_s_own_jinja_markers_is_left_for_the_render() -> None:
    from datetime import datetime

    from airflow.sdk import DAG

    markers = {"variable_start_string": "[[", "variable_end_string": "]]"}
    with DAG(
        "custom_markers",
        schedule=None,
        start_date=datetime(2026, 1, 1),
        jinja_environment_kwargs=markers,
    ):
        op = MistralBatchOperator(
            task_id="batch", endpoint="[[ params.endpoint ]]", requests=chat_requests(1)
        )
    op.render_template_fields({"params": {"endpoint": CHAT}})
    assert op.endpoint == CHAT
