"""Chat answers honour response_format over real loopback HTTP: JSON schema, JSON object, text."""

from __future__ import annotations

import json
import math
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field, TypeAdapter

from airflow_provider_mistral_batch.batch.output_spec import answer_text, output_spec
from airflow_provider_mistral_batch.models import BatchResultLine
from emulator.tests.support import Api, chat_line, jsonl, parse_jsonl
from mistral_batch_emulator import RunningEmulator


class Ingredient(BaseModel):
    name: str
    grams: float = Field(gt=0, le=5000)


class Recipe(BaseModel):
    title: str = Field(min_length=3, max_length=80)
    cuisine: Literal["french", "italian", "thai"]
    serves: int = Field(ge=1, le=12)
    vegetarian: bool
    notes: str | None = None
    ingredients: list[Ingredient] = Field(min_length=1, max_length=5)


class Label(BaseModel):
    label: Literal["spam", "ham"]


def _typed_line(custom_id: str, response_format: Any) -> dict[str, Any]:
    line = chat_line(custom_id)
    line["body"]["response_format"] = response_format
    return line


def _run(api: Api, lines: list[Any], **job: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run a job over ``lines``; its output lines and error lines by custom_id."""
    file_id = api.upload(jsonl(lines))["id"]
    done = api.wait(api.create_job(input_files=[file_id], **job)["id"])
    assert done["status"] == "SUCCESS", done
    outputs = parse_jsonl(api.content(done["output_file"])) if done["output_file"] else []
    errors = parse_jsonl(api.content(done["error_file"])) if done["error_file"] else []
    return (
        {line["custom_id"]: line for line in outputs},
        {line["custom_id"]: line for line in errors},
    )


def _content(line: dict[str, Any]) -> str:
    text = answer_text(json.dumps(line["response"]["body"]).encode())
    assert text is not None
    return text


@pytest.mark.parametrize("output_type", [Recipe, list[Label], dict[str, int]], ids=str)
def test_json_schema_answers_validate_against_the_output_type(api: Api, output_type: Any) -> None:
    # The exact response_format the provider sends for this output type (list roots wrapped).
    spec = output_spec(output_type)
    lines = [_typed_line(f"r{index}", spec.response_format()) for index in range(40)]
    outputs, errors = _run(api, lines)
    assert not errors
    assert len(outputs) == 40
    adapter: TypeAdapter[Any] = TypeAdapter(output_type)
    for line in outputs.values():
        assert line["response"]["status_code"] == 200
        value = json.loads(_content(line))
        if spec.wrapped:
            assert set(value) == {"response"}
            value = value["response"]
        adapter.validate_python(value)
        assert spec.check(_content(line))[1] is None


def test_json_schema_answers_vary_and_are_deterministic(api: Api) -> None:
    spec = output_spec(Recipe)
    lines = [_typed_line(f"r{index}", spec.response_format()) for index in range(30)]
    first, _ = _run(api, lines)
    again, _ = _run(api, lines)
    assert {key: _content(line) for key, line in first.items()} == {
        key: _content(line) for key, line in again.items()
    }
    recipes = [Recipe.model_validate_json(_content(line)) for line in first.values()]
    assert {recipe.cuisine for recipe in recipes} == {"french", "italian", "thai"}
    assert {recipe.notes is None for recipe in recipes} == {True, False}


def test_usage_follows_the_answer_length(api: Api) -> None:
    spec = output_spec(Recipe)
    outputs, _ = _run(api, [_typed_line(f"r{index}", spec.response_format()) for index in range(5)])
    for line in outputs.values():
        body = line["response"]["body"]
        usage = body["usage"]
        assert usage["completion_tokens"] == math.ceil(len(_content(line)) / 4)
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        assert body["choices"][0]["finish_reason"] == "stop", "a JSON answer is never cut"


def test_json_object_answers_are_json_objects(api: Api) -> None:
    outputs, _ = _run(api, [_typed_line(f"r{i}", {"type": "json_object"}) for i in range(10)])
    for line in outputs.values():
        assert isinstance(json.loads(_content(line)), dict)


def test_text_answers_are_plain_text(api: Api) -> None:
    lines = [chat_line("absent"), _typed_line("text", {"type": "text"}), _typed_line("nul", None)]
    outputs, _ = _run(api, lines)
    for line in outputs.values():
        text = _content(line)
        assert text.endswith(".")
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)


def test_a_raw_schema_is_followed(api: Api) -> None:
    schema = {
        "type": "object",
        "properties": {
            "sentiment": {"enum": ["positive", "negative"]},
            "score": {"type": "number", "minimum": -1, "maximum": 1},
            "keywords": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        },
        "required": ["sentiment", "score", "keywords"],
        "additionalProperties": False,
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}
    outputs, _ = _run(api, [_typed_line(f"r{i}", response_format) for i in range(20)])
    for line in outputs.values():
        value = json.loads(_content(line))
        assert set(value) == {"sentiment", "score", "keywords"}
        assert value["sentiment"] in ("positive", "negative")
        assert -1 <= value["score"] <= 1
        assert len(value["keywords"]) <= 3
        assert all(isinstance(word, str) for word in value["keywords"])


def test_conversations_honour_completion_args_response_format(api: Api) -> None:
    spec = output_spec(Recipe)
    line = {
        "custom_id": "c",
        "body": {
            "inputs": "a recipe",
            "completion_args": {"response_format": spec.response_format()},
        },
    }
    outputs, _ = _run(api, [line], endpoint="/v1/conversations")
    (output,) = outputs["c"]["response"]["body"]["outputs"]
    Recipe.model_validate_json(output["content"])


BAD_FORMATS = [
    ("not an object", "json_schema", "body.response_format: expected an object"),
    ("unknown type", {"type": "xml"}, "body.response_format.type: expected 'text', 'json_object'"),
    ("no json_schema", {"type": "json_schema"}, "body.response_format.json_schema: missing"),
    (
        "no schema",
        {"type": "json_schema", "json_schema": {"name": "x"}},
        "body.response_format.json_schema.schema: missing (expected a JSON schema object)",
    ),
    (
        "schema not an object",
        {"type": "json_schema", "json_schema": {"name": "x", "schema": "{}"}},
        "body.response_format.json_schema.schema: expected a JSON schema object, got a string",
    ),
    (
        "no name",
        {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
        "body.response_format.json_schema.name: missing",
    ),
    (
        "strict not a boolean",
        {"type": "json_schema", "json_schema": {"name": "x", "schema": {}, "strict": "yes"}},
        "body.response_format.json_schema.strict: expected a boolean, got a string",
    ),
]


def test_a_malformed_response_format_fails_its_request_alone(api: Api) -> None:
    lines = [_typed_line(name, value) for name, value, _ in BAD_FORMATS]
    outputs, errors = _run(api, [*lines, chat_line("fine")])
    assert set(outputs) == {"fine"}
    assert set(errors) == {name for name, _, _ in BAD_FORMATS}
    for name, _, expected in BAD_FORMATS:
        line = errors[name]
        assert line["response"]["status_code"] == 400
        body = line["response"]["body"]
        assert body["type"] == "invalid_request_error"
        assert body["param"] is None or body["param"] == "response_format"
        assert expected in body["message"], (name, body["message"])
        assert line["error"]["code"] == "invalid_request"
        assert BatchResultLine.model_validate(line).error_message == line["error"]["message"]


def test_flaky_and_broken_knobs_leave_other_requests_alone(
    emulator: RunningEmulator, api: Api
) -> None:
    emulator.update_config(
        flaky_custom_ids={"other": 1}, broken_output_custom_ids={"x": "not_json"}
    )
    spec = output_spec(Recipe)
    outputs, errors = _run(api, [_typed_line("r", spec.response_format())])
    assert not errors
    Recipe.model_validate_json(_content(outputs["r"]))
