"""The output spec: schema, directive, wrapping and the check of one answer."""

from __future__ import annotations

import json
from typing import Literal

import pytest
from pydantic import BaseModel

from airflow_provider_mistral_batch.batch.output_spec import answer_text, output_spec
from airflow_provider_mistral_batch.exceptions import MistralBatchInputError


class Person(BaseModel):
    name: str
    age: int | None = None


def test_text_output_asks_for_nothing_and_keeps_the_text() -> None:
    spec = output_spec()
    assert not spec.structured
    assert spec.response_format() is None
    assert spec.check("hello") == (b'"hello"', None)
    assert spec.check(None) == (None, "the answer has no text")


def test_a_model_asks_for_its_schema_not_strict() -> None:
    spec = output_spec(Person)
    directive = spec.response_format()
    assert directive is not None
    assert directive["type"] == "json_schema"
    assert directive["json_schema"]["name"] == "Person"
    assert directive["json_schema"]["strict"] is False
    assert directive["json_schema"]["schema"] == Person.model_json_schema()
    assert not spec.wrapped


def test_answers_are_validated_and_dumped_as_json() -> None:
    spec = output_spec(Person)
    assert spec.check('{"name": "Ada", "age": 36}') == (b'{"name":"Ada","age":36}', None)
    output, problem = spec.check('{"age": "old"}')
    assert output is None
    assert problem is not None
    assert "name: Field required" in problem
    assert "age:" in problem
    output, problem = spec.check("not json")
    assert output is None
    assert problem is not None
    assert "Invalid JSON" in problem


def test_a_non_object_root_is_wrapped_and_unwrapped() -> None:
    spec = output_spec(list[int])
    assert spec.wrapped
    assert spec.json_schema is not None
    assert spec.json_schema["required"] == ["response"]
    assert spec.check('{"response": [1, 2]}') == (b"[1,2]", None)
    assert spec.check("[1, 2]")[0] is None
    labels = output_spec(Literal["pos", "neg"])
    assert labels.check('{"response": "pos"}') == (b'"pos"', None)
    assert labels.check('{"response": "meh"}')[0] is None


def test_a_type_without_schema_is_refused_with_its_name() -> None:
    class Opaque:
        pass

    with pytest.raises(MistralBatchInputError, match=r"output_type=.*Opaque.*no JSON schema"):
        output_spec(Opaque)


def test_answer_text_joins_only_text_chunks() -> None:
    chunks = [{"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]}]
    chunks += [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    body = json.dumps({"choices": [{"message": {"content": chunks}}]}).encode()
    assert answer_text(body) == "ab"
    assert answer_text(b'{"choices":[{"message":{"content":"plain"}}]}') == "plain"
    assert (
        answer_text(b'{"choices":[{"message":{"content":["odd",{"type":"text","text":"x"}]}}]}')
        == "x"
    )
    assert answer_text(b'{"choices":[]}') is None
    assert answer_text(b'{"data":[1]}') is None
    assert answer_text(b"not json") is None
