"""``@task.mistral_batch``: what its function may return, and the task it makes.

Runs end to end under dag.test: tests/integration/dags/test_taskflow_dags.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG, ObjectStoragePath, task

from airflow_provider_mistral_batch.decorators.mistral_batch import (
    MistralBatchDecoratedOperator,
    input_of,
    mistral_batch_task,
)
from airflow_provider_mistral_batch.exceptions import MistralBatchInputError
from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator

CHAT = "/v1/chat/completions"
EXPECTED = (
    "return a list of requests ({'custom_id', 'body'} objects) or of prompt strings, or the "
    "path of a JSONL file"
)


def test_prompt_strings_become_chat_requests_with_their_positions_as_custom_ids() -> None:
    field, value, described = input_of(["Hi?", "Bye?"], endpoint=CHAT)
    assert field == "requests"
    assert list(value) == [
        {"custom_id": "0", "body": {"messages": [{"role": "user", "content": "Hi?"}]}},
        {"custom_id": "1", "body": {"messages": [{"role": "user", "content": "Bye?"}]}},
    ]
    assert described.startswith("2 prompt strings")


def test_prompt_strings_from_a_generator_are_made_as_they_are_read() -> None:
    def prompts() -> Iterator[str]:
        yield from ("a", "b", "c")

    field, value, described = input_of(prompts(), endpoint=CHAT)
    assert field == "requests"
    assert [request["custom_id"] for request in value] == ["0", "1", "2"]
    assert described.startswith("an iterator of prompt strings")


def test_request_objects_are_the_requests_as_they_are() -> None:
    requests = [{"custom_id": "a", "body": {"input": ["x"]}}]
    assert input_of(requests, endpoint="/v1/embeddings") == ("requests", requests, "1 requests")


@pytest.mark.parametrize(
    "path", ["/data/in.jsonl", Path("/data/in.jsonl"), ObjectStoragePath("file:///data/in.jsonl")]
)
def test_a_path_is_the_input_path(path: Any) -> None:
    field, value, _ = input_of(path, endpoint=CHAT)
    assert (field, value) == ("input_path", path)


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (None, f"the function returned None; {EXPECTED}"),
        (42, f"the function returned a number; {EXPECTED}"),
        (
            {"custom_id": "a", "body": {}},
            f"the function returned an object (one request? return a list of them); {EXPECTED}",
        ),
        ({"a", "b"}, f"the function returned a set; {EXPECTED}"),
        (b"/data/in.jsonl", f"the function returned bytes; {EXPECTED}"),
        ("  ", f"the function returned an empty string; {EXPECTED}"),
        ([], "the function returned no requests (an empty list); a batch job needs at least one"),
        (
            iter(()),
            "the function returned no requests (an empty iterator); a batch job needs at least one",
        ),
    ],
)
def test_anything_else_is_refused_with_what_was_returned(returned: Any, message: str) -> None:
    with pytest.raises(MistralBatchInputError) as info:
        input_of(returned, endpoint=CHAT)
    assert str(info.value) == message


def test_prompt_strings_need_the_chat_endpoint() -> None:
    with pytest.raises(MistralBatchInputError, match="endpoint is '/v1/embeddings'"):
        input_of(["a"], endpoint="/v1/embeddings")


def test_a_prompt_list_with_an_object_in_it_is_refused_naming_the_position() -> None:
    _, value, _ = input_of(["a", "b", {"custom_id": "c"}], endpoint=CHAT)
    with pytest.raises(MistralBatchInputError) as info:
        list(value)
    assert str(info.value) == (
        "the function returned a prompt string at position 0 but an object at position 2: "
        "return prompt strings only, or request objects only"
    )


def _task_of(decorator: Any, **kwargs: Any) -> MistralBatchDecoratedOperator:
    with DAG("taskflow_unit", schedule=None, start_date=datetime(2026, 1, 1)) as dag:

        @decorator(model="mistral-small-latest", **kwargs)
        def questions(topic: str) -> list[str]:
            return [f"One fact about {topic}?"]

        questions("cheese")
    op = dag.get_task("questions")
    assert isinstance(op, MistralBatchDecoratedOperator)
    return op


def test_the_task_is_a_mistral_batch_operator_with_chat_as_default_endpoint() -> None:
    op = _task_of(task.mistral_batch)
    assert isinstance(op, MistralBatchOperator)
    assert op.endpoint == CHAT
    assert op.operator_name == "@task.mistral_batch"
    assert op.requests is op.input_path is op.input_files is None
    assert list(op.op_args) == ["cheese"]


def test_the_function_s_return_value_is_not_a_template_field() -> None:
    fields = MistralBatchDecoratedOperator.template_fields
    assert {"requests", "input_path", "input_files"}.isdisjoint(fields)
    assert {"op_args", "op_kwargs", "endpoint", "model", "results_path"} <= set(fields)


@pytest.mark.parametrize("given", ["requests", "input_path", "input_files"])
def test_an_input_argument_is_refused_at_parse(given: str) -> None:
    with pytest.raises(MistralBatchInputError) as info:
        _task_of(mistral_batch_task, **{given: ["x"]})
    assert str(info.value).startswith(
        f"questions: @task.mistral_batch takes no {given}: its function returns the input"
    )


def test_the_operator_s_options_are_still_checked_at_parse() -> None:
    with pytest.raises(MistralBatchInputError, match="questions: max_failed_ratio"):
        _task_of(mistral_batch_task, max_failed_ratio=2.0)


def test_a_dict_return_annotation_does_not_unroll_the_summary() -> None:
    # The function's annotation describes its input; the task's XCom is the summary, one value.
    with DAG("taskflow_unit_outputs", schedule=None, start_date=datetime(2026, 1, 1)) as dag:

        @mistral_batch_task(model="mistral-small-latest")
        def from_mapping() -> dict[str, Any]:
            return {}

        from_mapping()
    assert dag.get_task("from_mapping").multiple_outputs is False


def test_a_structured_output_without_results_path_is_refused_at_parse() -> None:
    from pydantic import BaseModel

    class Fact(BaseModel):
        text: str

    with pytest.raises(MistralBatchInputError) as info:
        _task_of(mistral_batch_task, output_type=Fact)
    assert str(info.value).startswith(
        "questions: output_type=Fact checks each answer as the results are written: give "
        "results_path=..."
    )
    _task_of(mistral_batch_task, output_type=Fact, results_path="/tmp/facts.jsonl")
