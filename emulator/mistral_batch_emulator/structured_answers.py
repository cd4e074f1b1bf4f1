"""The text of an answer shaped as its request's ``response_format`` asks, or broken on purpose.

``{"type": "json_schema", "json_schema": {"name", "schema", "strict"?}}`` gets JSON valid
against the schema (:mod:`~mistral_batch_emulator.schema_values`), ``{"type":
"json_object"}`` a JSON object, ``{"type": "text"}`` or no ``response_format`` plain text (the
caller's). A custom_id listed in ``broken_output_custom_ids`` gets ``not_json`` (the JSON in a
markdown fence after a sentence, as a chatty model answers) or ``wrong_shape`` (JSON that does
not validate: an object without the schema's required fields, or the wrong JSON type at the
root).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from mistral_batch_emulator.config import BrokenOutput
from mistral_batch_emulator.rejections import RequestRejected
from mistral_batch_emulator.schema_values import SchemaValues

FormatKind = Literal["text", "json_object", "json_schema"]
_KINDS: Final[tuple[FormatKind, ...]] = ("text", "json_object", "json_schema")
#: The key of the field a ``wrong_shape`` object carries instead of the required ones.
UNEXPECTED_KEY: Final = "unexpected_field"
#: Characters per token of the usage estimate (the usual rule of thumb for English).
CHARS_PER_TOKEN: Final = 4


@dataclass(frozen=True)
class AnswerFormat:
    """What a request's ``response_format`` asks the answer's text to be.

    :param schema: the JSON schema of ``json_schema``; None for the other kinds.
    """

    kind: FormatKind
    schema: Mapping[str, Any] | None = None


TEXT: Final = AnswerFormat("text")


def answer_format(value: Any, where: str) -> AnswerFormat:
    """The format a ``response_format`` value asks for (None or absent ``type``: text).

    :param where: names the field in messages, e.g. ``body.response_format``.
    :raises RequestRejected: the value is not a response format (not an object, an unknown
        ``type``, ``json_schema`` without a ``name`` or a ``schema`` object).
    """
    param = "response_format"
    if value is None:
        return TEXT
    if not isinstance(value, Mapping):
        raise RequestRejected(
            f"{where}: expected an object with a 'type' of {_kinds()}, got {_json_type(value)}",
            param=param,
        )
    kind = value.get("type", "text")
    if kind not in _KINDS:
        raise RequestRejected(f"{where}.type: expected {_kinds()}, got {kind!r}", param=param)
    if kind != "json_schema":
        return AnswerFormat(kind)
    spec = value.get("json_schema")
    if not isinstance(spec, Mapping):
        raise RequestRejected(
            _expected(value, "json_schema", where, "an object with 'name' and 'schema'"),
            param=param,
        )
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise RequestRejected(
            _expected(spec, "name", f"{where}.json_schema", "a non-empty string"), param=param
        )
    schema = spec.get("schema")
    if not isinstance(schema, Mapping):
        raise RequestRejected(
            _expected(spec, "schema", f"{where}.json_schema", "a JSON schema object"),
            param=param,
        )
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise RequestRejected(
            _expected(spec, "strict", f"{where}.json_schema", "a boolean"), param=param
        )
    return AnswerFormat("json_schema", schema)


def shaped_text(
    fmt: AnswerFormat,
    rng: random.Random,
    words: Sequence[str],
    broken: BrokenOutput | None = None,
) -> str:
    """The answer's text for ``fmt``, or its broken variant when ``broken`` is set."""
    value = _value(fmt, rng, words)
    if broken == "not_json":
        return f"Here is the JSON you asked for:\n```json\n{_dump(value)}\n```"
    if broken == "wrong_shape":
        return _dump(_wrong_shape(fmt, value, rng, words))
    return value if isinstance(value, str) else _dump(value)


def completion_tokens(text: str) -> int:
    """A token count for ``text`` consistent with its length (at least 1)."""
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def _value(fmt: AnswerFormat, rng: random.Random, words: Sequence[str]) -> Any:
    if fmt.kind == "json_schema" and fmt.schema is not None:
        return SchemaValues(fmt.schema, rng, words).value()
    if fmt.kind == "json_object":
        return {"answer": _sentence(rng, words), "confidence": round(rng.random(), 2)}
    return _sentence(rng, words)


def _wrong_shape(fmt: AnswerFormat, value: Any, rng: random.Random, words: Sequence[str]) -> Any:
    """JSON that ``fmt`` does not accept (when its schema constrains the shape at all)."""
    if fmt.kind != "json_schema" or fmt.schema is None:
        return [value]  # an array where an object (or nothing in particular) is asked for
    root = SchemaValues(fmt.schema, rng, words).resolved(fmt.schema)
    is_object = root.get("type") == "object" or (
        "type" not in root and isinstance(root.get("properties"), Mapping)
    )
    if not is_object:
        return {UNEXPECTED_KEY: _sentence(rng, words)}
    required = root.get("required")
    if isinstance(required, list) and required:
        key = UNEXPECTED_KEY
        while key in required:
            key += "_"
        return {key: _sentence(rng, words)}  # none of the required fields
    return [value]  # nothing is required: the array is what cannot pass


def _sentence(rng: random.Random, words: Sequence[str]) -> str:
    count = rng.randint(4, 12)
    return " ".join(rng.choice(words) for _ in range(count)).capitalize() + "."


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _kinds() -> str:
    return ", ".join(repr(kind) for kind in _KINDS[:-1]) + f" or {_KINDS[-1]!r}"


def _expected(container: Mapping[str, Any], key: str, where: str, wanted: str) -> str:
    """``<where>.<key>: missing (expected ...)`` or ``...: expected ..., got <JSON type>``."""
    if key not in container:
        return f"{where}.{key}: missing (expected {wanted})"
    return f"{where}.{key}: expected {wanted}, got {_json_type(container[key])}"


def _json_type(value: Any) -> str:
    names: dict[type, str] = {bool: "a boolean", int: "a number", float: "a number"}
    names.update({str: "a string", list: "an array", dict: "an object", type(None): "null"})
    return names.get(type(value), type(value).__name__)


__all__ = [
    "CHARS_PER_TOKEN",
    "TEXT",
    "UNEXPECTED_KEY",
    "AnswerFormat",
    "FormatKind",
    "answer_format",
    "completion_tokens",
    "shaped_text",
]
