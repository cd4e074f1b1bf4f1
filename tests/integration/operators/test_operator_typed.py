"""``output_type``: checked at parse, asked for in every chat request, part of the job's key."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from airflow_provider_mistral_batch.batch.event import make_event
from airflow_provider_mistral_batch.batch.manifest import XCOM_INPUT_ERROR
from airflow_provider_mistral_batch.exceptions import MistralBatchInputError
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
from airflow_provider_mistral_batch.operators.results import MistralBatchResultsOperator
from mistral_batch_emulator import RunningEmulator
from tests.integration.operators.support import (
    CHAT,
    FakeTaskInstance,
    OperatorLog,
    chat_requests,
)

pytestmark = pytest.mark.integration

FIM = "/v1/fim/completions"


class City(BaseModel):
    name: str
    country: str
    size: Literal["village", "town", "city"]


def _directive(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {
        "type": "json_schema",
        "json_schema": {"name": model.__name__, "schema": schema, "strict": False},
    }


def _sent_bodies(hook: MistralBatchHook, job_id: str) -> list[dict[str, Any]]:
    """The request bodies of a job, as the API got them (its input files, read back)."""
    job = hook.get_batch_job(job_id)
    return [
        json.loads(line)["body"]
        for file_id in job.input_files
        for line in hook.iter_file_lines(file_id)
    ]


def _created(conn: RunningEmulator) -> int:
    return len([r for r in conn.requests if r.method == "POST" and r.path == "/v1/batch/jobs"])


# ------------------------------------------------------------------ checked at parse


def test_a_type_without_a_json_schema_fails_at_parse_naming_output_type() -> None:
    class Opaque:
        pass

    with pytest.raises(MistralBatchInputError, match=r"^batch: output_type=.*Opaque.*no JSON"):
        MistralBatchOperator(
            task_id="batch", endpoint=CHAT, requests=chat_requests(1), output_type=Opaque
        )


@pytest.mark.parametrize(
    ("output_type", "message"),
    [
        # pydantic raises a bare KeyError: 'type' on a dict: named as output_type's problem.
        ({"a": 1}, "output_type={'a': 1} has no JSON schema pydantic can make: KeyError: 'type'"),
        ("str", "output_type must be a type, e.g. str or a pydantic model, not the string 'str'"),
        (None, "output_type must be a type, e.g. str or a pydantic model, not None"),
    ],
)
@pytest.mark.parametrize("operator", ["submit", "results"])
def test_a_value_that_is_no_output_type_fails_at_parse_in_both_operators(
    output_type: Any, message: str, operator: str, tmp_path: Path
) -> None:
    results_path = tmp_path / "rows.jsonl"

    def make() -> Any:
        if operator == "submit":
            return MistralBatchOperator(
                task_id="batch",
                endpoint=CHAT,
                requests=chat_requests(1),
                output_type=output_type,
                results_path=results_path,
            )
        return MistralBatchResultsOperator(
            task_id="batch", job_id="j", results_path=results_path, output_type=output_type
        )

    with pytest.raises(MistralBatchInputError) as info:
        make()
    assert str(info.value).startswith(f"batch: {message}")


def test_both_operators_default_to_text() -> None:
    submit = MistralBatchOperator(task_id="batch", endpoint=CHAT, input_files=["f"])
    results = MistralBatchResultsOperator(task_id="results", job_id="j", results_path="r.jsonl")
    assert submit.output_type is str
    assert results.output_type is str


@pytest.mark.parametrize(
    ("given", "needs"),
    [({}, "results_path=..."), ({"wait_for_completion": False}, "results_path=... and wait_")],
)
def test_a_structured_output_without_results_fails_at_parse(
    given: dict[str, Any], needs: str
) -> None:
    # Only the rows written to results_path are checked: a task without them would ask for
    # JSON and count no invalid answer.
    with pytest.raises(MistralBatchInputError) as info:
        MistralBatchOperator(
            task_id="batch", endpoint=CHAT, input_files=["f"], output_type=City, **given
        )
    assert str(info.value).startswith(
        f"batch: output_type=City checks each answer as the results are written: give {needs}"
    )


def test_a_results_path_that_renders_to_none_fails_before_anything_is_sent(
    make_op: Callable[..., MistralBatchOperator], conn: RunningEmulator
) -> None:
    op = make_op(output_type=City, results_path="{{ params.results_path }}")
    op.results_path = None  # as rendered
    ti = FakeTaskInstance()
    with pytest.raises(MistralBatchInputError, match="checks each answer as the results are"):
        op.execute({"ti": ti})
    assert [r for r in conn.requests if r.method == "POST"] == []
    assert ti.keys == [XCOM_INPUT_ERROR]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            {"endpoint": CHAT},
            "retry_invalid_output=True sends again the answers that do not validate against "
            "output_type, but output_type is str (text), which every answer is",
        ),
        (
            {"endpoint": "/v1/embeddings"},
            "retry_invalid_output=True sends again the answers whose text does not validate "
            "against output_type, but the answers of endpoint /v1/embeddings have no text",
        ),
    ],
)
def test_retry_invalid_output_that_can_find_nothing_fails_at_parse(
    given: dict[str, Any], message: str, tmp_path: Path
) -> None:
    with pytest.raises(MistralBatchInputError) as info:
        MistralBatchOperator(
            task_id="batch",
            input_files=["f"],
            results_path=tmp_path / "rows.jsonl",
            retry_failed_requests=1,
            retry_invalid_output=True,
            **given,
        )
    assert str(info.value).startswith(f"batch: {message}")
    # A structured type on chat completions is what it checks.
    MistralBatchOperator(
        task_id="batch",
        endpoint=CHAT,
        input_files=["f"],
        results_path=tmp_path / "rows.jsonl",
        retry_failed_requests=1,
        retry_invalid_output=True,
        output_type=City,
    )


def test_a_structured_output_for_an_endpoint_without_response_format_fails_at_parse() -> None:
    with pytest.raises(MistralBatchInputError) as info:
        MistralBatchOperator(task_id="batch", endpoint=FIM, input_files=["f"], output_type=City)
    assert str(info.value) == (
        "batch: output_type=City asks for JSON answers with response_format, which only "
        "/v1/chat/completions takes; endpoint /v1/fim/completions does not (leave output_type "
        "out for text answers)"
    )
    # Text is every endpoint's default.
    MistralBatchOperator(task_id="batch", endpoint=FIM, input_files=["f"], output_type=str)


def test_a_templated_endpoint_without_response_format_fails_before_anything_is_sent(
    make_op: Callable[..., MistralBatchOperator], conn: RunningEmulator, tmp_path: Path
) -> None:
    op = make_op(
        endpoint="{{ params.endpoint }}", output_type=City, results_path=tmp_path / "r.jsonl"
    )
    op.endpoint = FIM  # as rendered
    ti = FakeTaskInstance()
    with pytest.raises(MistralBatchInputError, match="only /v1/chat/completions takes"):
        op.execute({"ti": ti})
    assert [r for r in conn.requests if r.method == "POST"] == []
    assert ti.keys == [XCOM_INPUT_ERROR]


def test_output_type_is_not_a_template_field() -> None:
    assert "output_type" not in MistralBatchOperator.template_fields
    assert "output_type" not in MistralBatchResultsOperator.template_fields


# ------------------------------------------------------------------ what is sent


def test_each_request_gets_the_directive_unless_it_sets_its_own(
    make_op: Callable[..., MistralBatchOperator],
    hook: MistralBatchHook,
    capture_log: Callable[[Any], OperatorLog],
    tmp_path: Path,
) -> None:
    requests = chat_requests(3)
    requests[1] = {
        "custom_id": "own",
        "body": {**requests[1]["body"], "response_format": {"type": "json_object"}},
    }
    # The answer to "own" is a JSON object, not a City: invalid, let through here.
    op = make_op(
        requests=requests,
        output_type=City,
        results_path=tmp_path / "results.jsonl",
        max_failed_ratio=None,
    )
    log = capture_log(op)
    result = op.execute({"ti": FakeTaskInstance()})

    assert result["status"] == "SUCCESS"
    assert result["counts"]["success"] == 2
    sent = [body["response_format"] for body in _sent_bodies(hook, result["job_id"])]
    assert sent == [_directive(City), {"type": "json_object"}, _directive(City)]
    assert "response_format" not in requests[0]["body"], "the DAG's own requests were changed"
    said = [line for line in log.at("info") if "response_format" in line]
    assert said == [
        "1 of 3 requests set their own response_format, kept as given; the others ask for "
        "JSON of output_type City. Every answer is validated against output_type"
    ]


def test_a_jsonl_file_is_uploaded_with_the_directive_and_left_unchanged(
    make_op: Callable[..., MistralBatchOperator],
    hook: MistralBatchHook,
    capture_log: Callable[[Any], OperatorLog],
    tmp_path: Path,
) -> None:
    source = tmp_path / "cities.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in chat_requests(2)), encoding="utf-8")
    before = source.read_bytes()
    op = make_op(input_path=str(source), output_type=City, results_path=tmp_path / "out.jsonl")
    log = capture_log(op)
    result = op.execute({"ti": FakeTaskInstance()})

    assert result["status"] == "SUCCESS"
    job = hook.get_batch_job(result["job_id"])
    assert hook.get_file(job.input_files[0]).filename == "cities.jsonl"
    sent = [body["response_format"] for body in _sent_bodies(hook, result["job_id"])]
    assert sent == [_directive(City)] * 2
    assert source.read_bytes() == before
    assert "Each request asks for JSON of output_type City (response_format json_schema)" in (
        log.at("info")
    )
    assert log.at("warning") == []


def test_uploaded_input_files_are_sent_as_they_are_with_one_warning(
    make_op: Callable[..., MistralBatchOperator],
    hook: MistralBatchHook,
    capture_log: Callable[[Any], OperatorLog],
    tmp_path: Path,
) -> None:
    source = tmp_path / "uploaded.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in chat_requests(2)), encoding="utf-8")
    file_id = hook.upload_file(source).id
    op = make_op(
        input_files=[file_id],
        output_type=City,
        results_path=tmp_path / "out.jsonl",
        max_failed_ratio=None,
    )
    log = capture_log(op)
    result = op.execute({"ti": FakeTaskInstance()})

    assert result["status"] == "SUCCESS"
    assert hook.get_batch_job(result["job_id"]).input_files == [file_id]
    assert all("response_format" not in body for body in _sent_bodies(hook, result["job_id"]))
    # Asked for text, the answers are still checked against output_type.
    assert result["counts"]["invalid_output"] == 2
    assert [line for line in log.at("warning") if "response_format" in line] == [
        "input_files are sent as uploaded: their requests do not get the response_format of "
        "output_type City (set it in the files, or give requests or input_path); the answers "
        "are still validated against it"
    ]


# ------------------------------------------------------------------ the job's key


class Town(BaseModel):
    name: str


def test_a_retry_reattaches_only_to_a_job_asked_for_the_same_output_type(
    make_op: Callable[..., MistralBatchOperator], conn: RunningEmulator, tmp_path: Path
) -> None:
    def typed(output_type: Any) -> MistralBatchOperator:
        return make_op(output_type=output_type, results_path=tmp_path / "rows.jsonl")

    first = typed(City).execute({"ti": FakeTaskInstance(try_number=1)})
    same = typed(City).execute({"ti": FakeTaskInstance(try_number=2)})
    assert same["job_id"] == first["job_id"]
    assert _created(conn) == 1

    changed = typed(Town).execute({"ti": FakeTaskInstance(try_number=3)})
    assert changed["job_id"] != first["job_id"]
    text = make_op().execute({"ti": FakeTaskInstance(try_number=4)})
    assert text["job_id"] not in (first["job_id"], changed["job_id"])
    assert _created(conn) == 3


def test_a_list_type_is_asked_for_wrapped_and_the_answers_follow_it(
    make_op: Callable[..., MistralBatchOperator], hook: MistralBatchHook, tmp_path: Path
) -> None:
    # The emulator answers as response_format says.
    requests = chat_requests(3)
    requests[2] = {
        "custom_id": "own",
        "body": {**requests[2]["body"], "response_format": {"type": "json_object"}},
    }
    result = make_op(
        requests=requests,
        output_type=list[City],
        results_path=tmp_path / "rows.jsonl",
        max_failed_ratio=None,
    ).execute({"ti": FakeTaskInstance()})

    assert result["status"] == "SUCCESS"
    assert result["counts"]["success"] == 2
    answers = {
        line["custom_id"]: json.loads(line["response"]["body"]["choices"][0]["message"]["content"])
        for line in map(json.loads, hook.iter_file_lines(result["output_file"]))
    }
    for custom_id in ("r0", "r1"):
        # A list is wrapped under "response": structured output wants an object at the root.
        assert set(answers[custom_id]) == {"response"}
        for city in answers[custom_id]["response"]:
            City.model_validate(city)
    assert isinstance(answers["own"], dict)


# ------------------------------------------------------------------ the rows


def test_rows_carry_the_validated_output_and_broken_answers_are_invalid(
    make_op: Callable[..., MistralBatchOperator],
    hook: MistralBatchHook,
    conn: RunningEmulator,
    tmp_path: Path,
) -> None:
    conn.update_config(broken_output_custom_ids={"r1": "not_json", "r2": "wrong_shape"})
    blocking = tmp_path / "blocking.jsonl"
    result = make_op(
        requests=chat_requests(4), output_type=City, results_path=blocking, max_failed_ratio=0.5
    ).execute({"ti": FakeTaskInstance()})
    # After a deferral, a new operator from the DAG file resumes with the trigger's event.
    resumed = tmp_path / "resumed.jsonl"
    job = hook.get_batch_job(result["job_id"])
    again = make_op(
        requests=chat_requests(4), output_type=City, results_path=resumed, max_failed_ratio=0.5
    ).execute_complete({"ti": FakeTaskInstance()}, make_event("terminal", job.id, job))

    for summary, path in ((result, blocking), (again, resumed)):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        statuses = [row["status"] for row in rows]
        assert statuses == ["success", "invalid_output", "invalid_output", "success"]
        for row in (rows[0], rows[3]):
            assert City.model_validate(row["output"]).model_dump() == row["output"]
        assert [rows[1]["output"], rows[2]["output"]] == [None, None]
        assert "Invalid JSON" in rows[1]["error"]
        assert summary["counts"]["invalid_output"] == 2
