"""A value valid against a JSON schema: the answer of a structured-output request.

Covers what pydantic and hand-written structured-output schemas use: objects (``properties``,
``required``, ``additionalProperties``, ``minProperties``), arrays (``items``,
``prefixItems``, ``minItems`` / ``maxItems``, ``uniqueItems``), strings (``enum``, ``const``,
``minLength`` / ``maxLength``, ``pattern``, common ``format`` values), integers and numbers
(``minimum`` / ``maximum``, both forms of ``exclusiveMinimum`` / ``exclusiveMaximum``,
``multipleOf``), booleans, null, ``anyOf`` / ``oneOf`` (one branch picked), ``allOf``
(merged), ``$ref`` into ``$defs`` / ``definitions`` (recursion is cut short), ``type`` lists
and OpenAPI's ``nullable``. Keywords it does not know are ignored: the value is then
plausible but may not validate. Every choice comes from the ``random.Random`` given, so a
request's answer is the same each time.
"""

from __future__ import annotations

import base64
import math
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from mistral_batch_emulator.pattern_strings import string_matching

#: Nesting depth from which optional fields are left out, arrays are kept to their minimum
#: and a union's null or non-nested branch is preferred (so recursive schemas end).
SHALLOW_DEPTH: Final = 4
#: Nesting depth at which a value is given up on (null): a schema that requires an endless
#: value cannot be satisfied.
MAX_DEPTH: Final = 24
#: Most array items or dict entries drawn beyond the minimum.
MAX_EXTRA_ITEMS: Final = 3
#: Chance of null when null is one of the choices (a union with null, a type list, nullable).
NULL_CHANCE: Final = 0.2
#: Chance that an optional property is present.
OPTIONAL_CHANCE: Final = 0.5

_EPOCH: Final = datetime(2024, 1, 1, tzinfo=UTC)
_TWO_YEARS_SECONDS: Final = 2 * 365 * 24 * 3600
_NESTED_TYPES: Final = frozenset({"object", "array"})
_LENGTH_KEYS: Final = ("minLength", "maxLength", "pattern", "format")
_NUMBER_KEYS: Final = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")


class SchemaValues:
    """Makes values valid against one JSON schema, drawing every choice from ``rng``.

    :param schema: the root schema (``$ref`` pointers resolve against it).
    :param rng: the source of every choice.
    :param words: the vocabulary of free text.
    """

    def __init__(self, schema: Mapping[str, Any], rng: random.Random, words: Sequence[str]) -> None:
        self._root = schema
        self._rng = rng
        self._words = words

    def value(self) -> Any:
        """A value of the root schema."""
        return self._value(self._root, 0)

    def resolved(self, schema: Any) -> dict[str, Any]:
        """``schema`` with its ``$ref`` followed and its ``allOf`` merged (``{}`` if not a
        schema object)."""
        return self._resolve(schema, 0)

    # ------------------------------------------------------------------ dispatch

    def _value(self, schema: Any, depth: int, unions: int = 0) -> Any:
        """A value of ``schema`` at nesting ``depth``; ``unions``: branches taken in a row
        at this depth (a union whose branch leads back to itself must end too)."""
        if depth > MAX_DEPTH or unions > MAX_DEPTH:
            return None
        node = self._resolve(schema, 0)
        if "const" in node:
            return node["const"]
        enum = node.get("enum")
        if isinstance(enum, list) and enum:
            return self._rng.choice(enum)
        for key in ("anyOf", "oneOf"):
            branches = node.get(key)
            if isinstance(branches, list) and branches:
                rest = {name: item for name, item in node.items() if name != key}
                branch = self._resolve(self._pick_branch(branches, depth), 0)
                return self._value({**rest, **branch}, depth, unions + 1)
        kind = self._pick_type(node, depth)
        if kind == "null":
            return None
        if kind == "boolean":
            return self._rng.random() < 0.5
        if kind == "integer":
            return self._integer(node)
        if kind == "number":
            return self._number(node)
        if kind == "object":
            return self._object(node, depth)
        if kind == "array":
            return self._array(node, depth)
        return self._string(node)

    def _resolve(self, schema: Any, hops: int) -> dict[str, Any]:
        """Follow ``$ref`` (siblings win over the target) and merge ``allOf``."""
        if not isinstance(schema, Mapping):
            return {}
        node = dict(schema)
        ref = node.pop("$ref", None)
        if isinstance(ref, str) and hops < MAX_DEPTH:
            node = {**self._resolve(self._target(ref), hops + 1), **node}
        parts = node.pop("allOf", None)
        if isinstance(parts, list):
            for part in parts:
                node = _merge(node, self._resolve(part, hops + 1))
        return node

    def _target(self, ref: str) -> Any:
        """The schema a local ``$ref`` (``#/$defs/Name``, ``#``) points to; ``{}`` if none."""
        if not ref.startswith("#"):
            return {}  # remote references are out of reach: any value
        node: Any = self._root
        for part in ref[1:].split("/"):
            if not part:
                continue
            key = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                return {}
        return node

    def _pick_branch(self, branches: list[Any], depth: int) -> Any:
        nulls = [branch for branch in branches if self._type_of(branch) == "null"]
        others = [branch for branch in branches if branch not in nulls]
        if not others:
            return branches[0]
        numbers = [branch for branch in others if self._type_of(branch) in ("number", "integer")]
        if numbers:
            # pydantic's Decimal is {"anyOf": [number, string]}, and its validator takes only
            # numeric strings: answer a number whenever a bare string is the alternative.
            others = [branch for branch in others if not self._plain_string(branch)]
        if nulls and (depth >= SHALLOW_DEPTH or self._rng.random() < NULL_CHANCE):
            return nulls[0]
        if depth >= SHALLOW_DEPTH:
            flat = [branch for branch in others if self._type_of(branch) not in _NESTED_TYPES]
            if flat:
                return self._rng.choice(flat)
        return self._rng.choice(others)

    def _plain_string(self, schema: Any) -> bool:
        node = self._resolve(schema, 0)
        constraints = ("enum", "const", "format", "pattern", *_LENGTH_KEYS)
        return node.get("type") == "string" and not any(key in node for key in constraints)

    def _type_of(self, schema: Any) -> str | None:
        node = self._resolve(schema, 0)
        kind = node.get("type")
        if isinstance(kind, str):
            return kind
        return _implied_type(node) if "anyOf" not in node and "oneOf" not in node else None

    def _pick_type(self, node: dict[str, Any], depth: int) -> str:
        kind = node.get("type")
        if isinstance(kind, list):
            kinds = [item for item in kind if isinstance(item, str)]
            if not kinds:
                return "string"
            if "null" in kinds and len(kinds) > 1:
                if depth >= SHALLOW_DEPTH or self._rng.random() < NULL_CHANCE:
                    return "null"
                kinds.remove("null")
            if depth >= SHALLOW_DEPTH:
                kinds = [item for item in kinds if item not in _NESTED_TYPES] or kinds
            return self._rng.choice(kinds)
        if node.get("nullable") is True and (
            depth >= SHALLOW_DEPTH or self._rng.random() < NULL_CHANCE
        ):
            return "null"
        if isinstance(kind, str):
            return kind
        return _implied_type(node) or "string"

    # ------------------------------------------------------------------ containers

    def _object(self, node: dict[str, Any], depth: int) -> dict[str, Any]:
        properties = node.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = node.get("required")
        required = (
            [name for name in required if isinstance(name, str)]
            if isinstance(required, list)
            else []
        )
        result: dict[str, Any] = {}
        for name, subschema in properties.items():
            if name in required:
                continue
            if depth < SHALLOW_DEPTH and self._rng.random() < OPTIONAL_CHANCE:
                result[name] = self._value(subschema, depth + 1)
        for name in required:
            result[name] = self._value(properties.get(name, {}), depth + 1)
        # The schema's order reads best: required fields first would surprise nobody, but
        # a model answers in the order the schema lists them.
        ordered = {name: result[name] for name in properties if name in result}
        ordered.update({name: value for name, value in result.items() if name not in ordered})
        self._fill_properties(ordered, node, properties, depth)
        return ordered

    def _fill_properties(
        self,
        result: dict[str, Any],
        node: dict[str, Any],
        properties: Mapping[str, Any],
        depth: int,
    ) -> None:
        """Add entries up to ``minProperties``, and a few free ones to a plain mapping."""
        minimum = _int(node.get("minProperties"), 0)
        maximum = _int(node.get("maxProperties"), len(result) + MAX_EXTRA_ITEMS)
        for name, subschema in properties.items():
            if len(result) >= minimum:
                break
            if name not in result:
                result[name] = self._value(subschema, depth + 1)
        extra = node.get("additionalProperties")
        if extra is False or (extra is None and properties):
            return
        # additionalProperties with a schema, or a bare object: a mapping of free keys.
        wanted = minimum
        if not properties and depth < SHALLOW_DEPTH:
            wanted = max(minimum, self._rng.randint(1, 1 + MAX_EXTRA_ITEMS))
        wanted = min(wanted, maximum)
        value_schema = extra if isinstance(extra, Mapping) else {}
        attempts = 0
        while len(result) < wanted and attempts < wanted * 4:
            attempts += 1
            key = self._key(node.get("propertyNames"), attempts)
            if key not in result:
                result[key] = self._value(value_schema, depth + 1)

    def _key(self, names: Any, attempt: int) -> str:
        if isinstance(names, Mapping) and names:
            key = self._value(names, MAX_DEPTH)  # keys are strings; no nesting
            if isinstance(key, str):
                return key
        return f"{self._rng.choice(self._words)}_{attempt}"

    def _array(self, node: dict[str, Any], depth: int) -> list[Any]:
        prefix = node.get("prefixItems")
        prefix = prefix if isinstance(prefix, list) else []
        items = node.get("items")
        minimum = _int(node.get("minItems"), 0)
        maximum = _int(node.get("maxItems"), max(minimum, len(prefix)) + MAX_EXTRA_ITEMS)
        if items is False or (prefix and items is None):
            maximum = min(maximum, len(prefix))  # a tuple: its prefix only
        low = minimum
        if depth < SHALLOW_DEPTH and minimum == 0:
            low = min(1, maximum)  # an answer usually lists something
        high = low if depth >= SHALLOW_DEPTH else min(maximum, low + MAX_EXTRA_ITEMS)
        count = self._rng.randint(low, max(low, high))
        count = max(count, min(len(prefix), maximum))
        unique = node.get("uniqueItems") is True
        result: list[Any] = []
        seen: list[Any] = []
        attempts = 0
        while len(result) < count and attempts < count * 6:
            attempts += 1
            index = len(result)
            schema = prefix[index] if index < len(prefix) else items
            value = self._value(schema if isinstance(schema, Mapping) else {}, depth + 1)
            if unique and value in seen:
                continue
            seen.append(value)
            result.append(value)
        return result

    # ------------------------------------------------------------------ scalars

    def _string(self, node: dict[str, Any]) -> str:
        minimum = _int(node.get("minLength"), 0)
        maximum = _int(node.get("maxLength"), max(minimum, 1) * 4 + 60)
        pattern = node.get("pattern")
        if isinstance(pattern, str):
            for _ in range(4):
                text = string_matching(pattern, self._rng)
                if text is not None and minimum <= len(text) <= maximum:
                    return text
        formatted = self._formatted(node.get("format"))
        if formatted is not None:
            return formatted
        text = self._text(minimum, maximum)
        return text

    def _text(self, minimum: int, maximum: int) -> str:
        words = [self._rng.choice(self._words) for _ in range(self._rng.randint(1, 4))]
        text = " ".join(words)
        while len(text) < minimum:
            text = f"{text} {self._rng.choice(self._words)}"
        if len(text) > maximum:
            cut = text[:maximum]
            stripped = cut.rstrip()
            text = stripped if stripped and len(stripped) >= minimum else cut
        return text

    def _formatted(self, fmt: Any) -> str | None:
        """A string of a known ``format``; None for others (free text then)."""
        rng = self._rng
        word = rng.choice(self._words)
        moment = _EPOCH + timedelta(seconds=rng.randint(0, _TWO_YEARS_SECONDS))
        if fmt == "date-time":
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        if fmt == "date":
            return moment.strftime("%Y-%m-%d")
        if fmt == "time":
            return moment.strftime("%H:%M:%S")
        if fmt == "duration":
            return f"PT{rng.randint(0, 23)}H{rng.randint(1, 59)}M"
        if fmt in ("email", "idn-email"):
            return f"{word}.{rng.choice(self._words)}@example.com"
        if fmt in ("uri", "url", "iri", "uri-reference", "iri-reference"):
            return f"https://example.com/{word}"
        if fmt == "uuid":
            return str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if fmt in ("ipv4", "ipvanyaddress"):
            return ".".join(str(rng.randint(1, 254)) for _ in range(4))
        if fmt == "ipv6":
            return f"2001:db8::{rng.randint(1, 0xFFFF):x}"
        if fmt in ("hostname", "idn-hostname"):
            return f"{word}.example.com"
        if fmt == "byte":
            return base64.b64encode(word.encode()).decode()
        if fmt == "path":
            return f"data/{word}.txt"
        return None

    def _integer(self, node: dict[str, Any]) -> int:
        bounds = _bounds(node)
        low, high = bounds.spread(100)
        first, last = math.ceil(low), math.floor(high)
        if bounds.low_open and first == low:
            first += 1
        if bounds.high_open and last == high:
            last -= 1
        step = node.get("multipleOf")
        if isinstance(step, int) and not isinstance(step, bool) and step > 0:
            lowest, highest = math.ceil(first / step), math.floor(last / step)
            if lowest <= highest:
                return step * self._rng.randint(lowest, highest)
        if first > last:
            return first  # impossible bounds: at least the lower one
        return self._rng.randint(first, last)

    def _number(self, node: dict[str, Any]) -> float:
        bounds = _bounds(node)
        first, last = bounds.spread(100.0)
        step = node.get("multipleOf")
        if isinstance(step, int | float) and not isinstance(step, bool) and step > 0:
            lowest, highest = math.ceil(first / step), math.floor(last / step)
            if bounds.low_open and lowest * step <= first:
                lowest += 1
            if bounds.high_open and highest * step >= last:
                highest -= 1
            if lowest <= highest:
                digits = max(0, -math.floor(math.log10(step))) + 2 if step < 1 else 0
                return float(round(step * self._rng.randint(lowest, highest), digits))
        if first > last:
            return float(first)  # impossible bounds: at least the lower one
        value = round(self._rng.uniform(first, last), 2)
        inside = (first < value if bounds.low_open else first <= value) and (
            value < last if bounds.high_open else value <= last
        )
        return float(value if inside else (first + last) / 2)


def _implied_type(node: Mapping[str, Any]) -> str | None:
    """The type a schema without ``type`` implies by its keywords."""
    if any(key in node for key in ("properties", "additionalProperties", "required")):
        return "object"
    if any(key in node for key in ("items", "prefixItems", "minItems", "maxItems")):
        return "array"
    if any(key in node for key in _NUMBER_KEYS):
        return "number"
    if any(key in node for key in _LENGTH_KEYS):
        return "string"
    return None


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Two schemas that must both hold, as one (properties and required combined)."""
    merged = {**base, **extra}
    for key in ("properties", "$defs"):
        if isinstance(base.get(key), Mapping) and isinstance(extra.get(key), Mapping):
            merged[key] = {**base[key], **extra[key]}
    if isinstance(base.get("required"), list) and isinstance(extra.get("required"), list):
        merged["required"] = list(dict.fromkeys([*base["required"], *extra["required"]]))
    return merged


def _int(value: Any, default: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return default


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None


@dataclass(frozen=True)
class _Bounds:
    """A number's range; a missing bound is None, ``*_open`` means the bound is excluded."""

    low: float | None
    high: float | None
    low_open: bool
    high_open: bool

    def spread(self, width: float) -> tuple[float, float]:
        """The bounds, a missing one ``width`` away from the other (0 .. width if none)."""
        low, high = self.low, self.high
        if low is None and high is None:
            return 0, width
        if low is None:
            assert high is not None
            return high - width, high
        if high is None:
            return low, low + width
        return low, high


def _bounds(node: Mapping[str, Any]) -> _Bounds:
    """A number schema's range, from both forms of the exclusive bounds (numbers since
    draft 6; booleans beside ``minimum`` / ``maximum`` in draft 4)."""
    low = _number_or_none(node.get("minimum"))
    high = _number_or_none(node.get("maximum"))
    low_open = node.get("exclusiveMinimum") is True and low is not None
    high_open = node.get("exclusiveMaximum") is True and high is not None
    exclusive_low = _number_or_none(node.get("exclusiveMinimum"))
    if exclusive_low is not None and (low is None or exclusive_low >= low):
        low, low_open = exclusive_low, True
    exclusive_high = _number_or_none(node.get("exclusiveMaximum"))
    if exclusive_high is not None and (high is None or exclusive_high <= high):
        high, high_open = exclusive_high, True
    return _Bounds(low, high, low_open, high_open)


__all__ = ["MAX_DEPTH", "SHALLOW_DEPTH", "SchemaValues"]
