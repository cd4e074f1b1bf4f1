"""Values made from JSON schemas validate against them: pydantic models and raw schemas."""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import random
import re
import uuid
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field, HttpUrl, TypeAdapter

from mistral_batch_emulator.pattern_strings import string_matching
from mistral_batch_emulator.schema_values import SHALLOW_DEPTH, SchemaValues

WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot")
SEEDS = range(150)


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    street: str = Field(min_length=3, max_length=30)
    postcode: str = Field(pattern=r"^\d{5}$")
    country: Literal["FR", "DE", "IT"]


class Node(BaseModel):
    name: str
    children: list[Node] = []


class Person(BaseModel):
    name: str
    kind: Literal["person"]
    age: int = Field(ge=0, le=130)
    score: float = Field(gt=0, lt=1)
    step: float = Field(ge=0, le=10, multiple_of=0.25)
    even: int = Field(gt=10, lt=20, multiple_of=2)
    nickname: str | None = None
    email: str | None = None
    addresses: list[Address] = Field(min_length=1, max_length=3)
    tags: set[str] = set()
    colour: Colour
    born: datetime.date
    seen: datetime.datetime
    ident: uuid.UUID
    price: decimal.Decimal
    site: HttpUrl | None = None
    counts: dict[str, int] = {}
    pair: tuple[int, str]
    tree: Node
    code: Annotated[str, Field(pattern=r"^[A-Z]{3}-\d{2,4}$")]


class Item(BaseModel):
    label: Literal["spam", "ham"]
    weight: float = Field(ge=0)


class Wrapped(BaseModel):
    """How a list root is sent: wrapped as ``{"response": ...}``."""

    response: list[Item]


class Chain(BaseModel):
    value: int
    next: Chain | None


def _values(schema: dict[str, Any], seeds: range = SEEDS) -> list[Any]:
    return [SchemaValues(schema, random.Random(seed), WORDS).value() for seed in seeds]


@pytest.mark.parametrize(
    "model", [Person, Wrapped, Node, Chain, dict[str, list[Item]]], ids=lambda m: str(m)
)
def test_answers_validate_against_the_pydantic_model_they_came_from(model: Any) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(model)
    for value in _values(adapter.json_schema()):
        adapter.validate_json(json.dumps(value))  # raises on any invalid answer


def test_list_roots_wrapped_as_response_hold_items() -> None:
    values = _values(TypeAdapter(Wrapped).json_schema())
    assert all(set(value) == {"response"} for value in values)
    assert any(value["response"] for value in values)
    labels = {item["label"] for value in values for item in value["response"]}
    assert labels == {"spam", "ham"}


def test_optional_fields_are_sometimes_present_and_sometimes_omitted() -> None:
    values = _values(TypeAdapter(Person).json_schema())
    for field in ("nickname", "tags", "site", "counts"):
        present = sum(field in value for value in values)
        assert 0 < present < len(values), field
    assert all("name" in value and "tree" in value for value in values), "required always"
    assert {value["nickname"] is None for value in values if "nickname" in value} == {
        True,
        False,
    }, "a nullable field answers both null and a value"


def test_same_seed_same_answer_and_seeds_differ() -> None:
    schema = TypeAdapter(Person).json_schema()
    assert _values(schema, range(3)) == _values(schema, range(3))
    assert len({json.dumps(value) for value in _values(schema, range(20))}) == 20


def test_enums_and_literals_take_every_value() -> None:
    values = _values(TypeAdapter(Person).json_schema())
    assert {value["colour"] for value in values} == {"red", "blue"}
    assert {value["kind"] for value in values} == {"person"}
    countries = {address["country"] for value in values for address in value["addresses"]}
    assert countries == {"FR", "DE", "IT"}


@pytest.mark.parametrize(
    ("schema", "check"),
    [
        ({"type": "integer", "minimum": 5, "maximum": 7}, lambda v: 5 <= v <= 7),
        ({"type": "integer", "exclusiveMinimum": 5, "exclusiveMaximum": 8}, lambda v: 5 < v < 8),
        ({"type": "integer", "minimum": -3, "exclusiveMinimum": True}, lambda v: v > -3),
        ({"type": "integer", "maximum": 0, "exclusiveMaximum": True}, lambda v: v < 0),
        ({"type": "integer", "minimum": 1000000}, lambda v: v >= 1000000),
        ({"type": "integer", "multipleOf": 7, "minimum": 1, "maximum": 50}, lambda v: v % 7 == 0),
        (
            {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.01},
            lambda v: 0 < v < 0.01,
        ),
        ({"type": "number", "minimum": 2.5, "maximum": 2.5}, lambda v: v == 2.5),
        ({"type": "number", "maximum": -5, "exclusiveMaximum": True}, lambda v: v < -5),
        (
            {"type": "number", "multipleOf": 0.5, "minimum": 1, "maximum": 3},
            lambda v: v * 2 % 1 == 0,
        ),
    ],
)
def test_number_bounds(schema: dict[str, Any], check: Any) -> None:
    values = _values(schema)
    assert all(isinstance(value, int | float) and not isinstance(value, bool) for value in values)
    if schema["type"] == "integer":
        assert all(isinstance(value, int) for value in values)
    bad = [value for value in values if not check(value)]
    assert not bad, bad[:5]


@pytest.mark.parametrize(
    ("schema", "check"),
    [
        ({"type": "string", "enum": ["a", "b", "c"]}, lambda v: v in {"a", "b", "c"}),
        ({"type": "string", "const": "fixed"}, lambda v: v == "fixed"),
        ({"type": "string", "minLength": 40}, lambda v: len(v) >= 40),
        ({"type": "string", "maxLength": 3}, lambda v: 1 <= len(v) <= 3),
        ({"type": "string", "minLength": 5, "maxLength": 5}, lambda v: len(v) == 5),
        (
            {"type": "string", "pattern": "^[a-z]{2}_[0-9]+$"},
            re.compile("^[a-z]{2}_[0-9]+$").search,
        ),
        ({"type": "string", "format": "date-time"}, datetime.datetime.fromisoformat),
        ({"type": "string", "format": "date"}, datetime.date.fromisoformat),
        ({"type": "string", "format": "uuid"}, uuid.UUID),
        ({"type": "string", "format": "email"}, lambda v: re.fullmatch(r"[^@\s]+@[^@\s]+", v)),
    ],
)
def test_strings(schema: dict[str, Any], check: Any) -> None:
    values = _values(schema)
    assert all(isinstance(value, str) for value in values)
    bad = [value for value in values if not check(value)]
    assert not bad, bad[:5]


def test_arrays_keep_their_item_counts_and_uniqueness() -> None:
    schema = {
        "type": "array",
        "items": {"type": "integer", "minimum": 0, "maximum": 1000},
        "minItems": 2,
        "maxItems": 4,
        "uniqueItems": True,
    }
    values = _values(schema)
    assert all(2 <= len(value) <= 4 and len(set(value)) == len(value) for value in values)
    assert {len(value) for value in values} == {2, 3, 4}
    empty = _values({"type": "array", "items": {"type": "string"}, "maxItems": 0})
    assert all(value == [] for value in empty)


def test_tuples_follow_prefix_items() -> None:
    schema = {
        "type": "array",
        "prefixItems": [{"type": "integer"}, {"type": "boolean"}, {"const": "end"}],
        "items": False,
    }
    for value in _values(schema):
        assert len(value) == 3
        assert isinstance(value[0], int)
        assert isinstance(value[1], bool)
        assert value[2] == "end"


def test_objects_honour_additional_properties() -> None:
    closed = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    assert all(set(value) <= {"a", "b"} and "a" in value for value in _values(closed))
    mapping = {"type": "object", "additionalProperties": {"type": "boolean"}, "minProperties": 2}
    values = _values(mapping)
    assert all(len(value) >= 2 for value in values)
    assert all(isinstance(item, bool) for value in values for item in value.values())


def test_unions_pick_each_branch_and_null() -> None:
    schema = {"anyOf": [{"type": "integer"}, {"type": "boolean"}, {"type": "null"}]}
    kinds = {type(value).__name__ for value in _values(schema)}
    assert kinds == {"int", "bool", "NoneType"}
    listed = {type(value).__name__ for value in _values({"type": ["string", "null"]})}
    assert listed == {"str", "NoneType"}
    one_of = _values({"oneOf": [{"const": 1}, {"const": "one"}]})
    assert set(one_of) == {1, "one"}


def test_refs_resolve_and_recursion_ends() -> None:
    schema = {
        "$defs": {
            "Tree": {"$ref": "#/$defs/Node"},
            "Node": {
                "type": "object",
                "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/Tree"}}},
                "required": ["kids"],
            },
        },
        "$ref": "#/$defs/Tree",
    }

    def depth(node: Any) -> int:
        return 1 + max((depth(kid) for kid in node["kids"]), default=0)

    values = _values(schema)
    assert all(depth(value) <= SHALLOW_DEPTH + 1 for value in values)
    assert max(depth(value) for value in values) > 1


def test_all_of_is_merged() -> None:
    schema = {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
            {"properties": {"b": {"const": True}}, "required": ["b"]},
        ]
    }
    assert all(isinstance(v["a"], int) and v["b"] is True for v in _values(schema))


@pytest.mark.parametrize(
    "schema",
    [
        {},
        True,
        {"not": {"type": "string"}},
        {"if": {"type": "object"}, "then": {"required": ["x"]}},
        {"type": "string", "format": "no-such-format", "x-vendor": 1},
        {"type": "string", "pattern": "(?(1)a|b)"},  # a conditional group: not generated
        {"type": "string", "pattern": "[unclosed"},
        {"$ref": "https://example.com/remote.json"},
        {"$ref": "#/$defs/missing"},
        {"type": "integer", "minimum": 10, "maximum": 1},
        {"type": "object", "required": ["a"], "properties": {"a": {"$ref": "#"}}},
        {"$ref": "#"},
        {"anyOf": [{"$ref": "#"}]},
        {"allOf": [{"$ref": "#"}]},
    ],
    ids=str,
)
def test_unknown_or_impossible_keywords_degrade_to_a_plausible_value(schema: Any) -> None:
    values = _values(schema, range(20))
    json.dumps(values)  # still JSON, never an exception


def test_patterns_common_in_structured_output() -> None:
    for pattern in (r"^[A-Z]{3}$", r"^\d{5}(-\d{4})?$", r"^[a-z0-9-]+$", r"^(yes|no)$", r"\w+@\S+"):
        texts = [string_matching(pattern, random.Random(seed)) for seed in range(30)]
        assert all(text is not None and re.search(pattern, text) for text in texts), pattern


def test_raw_schemas_validate_with_an_independent_validator() -> None:
    # jsonschema comes with Airflow (pinned in constraints/); a second opinion on raw schemas.
    jsonschema = pytest.importorskip("jsonschema")
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "rating": {"type": "integer", "minimum": 1, "maximum": 5},
            "share": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
            "status": {"enum": ["open", "closed"]},
            "notes": {"type": ["string", "null"], "maxLength": 12},
            "parts": {
                "type": "array",
                "items": {"$ref": "#/$defs/Part"},
                "minItems": 1,
                "maxItems": 2,
            },
            "extra": {"type": "object", "additionalProperties": {"type": "integer"}},
            "choice": {"oneOf": [{"type": "boolean"}, {"$ref": "#/$defs/Part"}]},
        },
        "required": ["id", "rating", "share", "status", "parts"],
        "additionalProperties": False,
        "$defs": {
            "Part": {
                "type": "object",
                "properties": {"sku": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{3}$"}},
                "required": ["sku"],
                "additionalProperties": False,
            }
        },
    }
    validator = jsonschema.Draft202012Validator(schema)
    for value in _values(schema):
        errors = [error.message for error in validator.iter_errors(value)]
        assert not errors, (value, errors)
