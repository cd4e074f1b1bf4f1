"""A string that a regular expression matches: the values of a schema's ``pattern``.

Walks the tree of Python's own regex parser (``re._parser``, the parser ``re`` compiles with)
and draws each character and repetition from a seeded ``random.Random``. Lookarounds and
word boundaries are skipped, so every result is checked with ``re.search`` (a JSON schema
``pattern`` is unanchored) before it is returned; when the walk cannot make a matching
string, a few common shapes are tried, then None.
"""

from __future__ import annotations

import functools
import importlib
import random
import re
import string
from typing import Any, Final

# Private, but the very parser ``re`` uses; any shape it grows that this walk does not know
# is reported as unsupported, never as a wrong string (every result is checked).
_parser: Any = importlib.import_module("re._parser")

#: Extra repetitions drawn beyond a repeat's minimum (``*``, ``+`` and ``{n,}``).
MAX_EXTRA_REPEATS: Final = 4
#: Walks tried before the common shapes.
_ATTEMPTS: Final = 8
_ALPHABET: Final = string.ascii_letters + string.digits + "-_. "
_CATEGORY_CHARS: Final = {
    "CATEGORY_DIGIT": string.digits,
    "CATEGORY_NOT_DIGIT": string.ascii_letters,
    "CATEGORY_WORD": string.ascii_letters + string.digits + "_",
    "CATEGORY_NOT_WORD": "-. ",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_SPACE": string.ascii_letters + string.digits,
}
# Shapes structured-output schemas often constrain strings to.
_COMMON: Final = (
    "example",
    "42",
    "3.14",
    "ABC",
    "abc-123",
    "2024-05-17",
    "2024-05-17T09:30:00Z",
    "09:30",
    "user@example.com",
    "https://example.com/item",
    "+33 1 23 45 67 89",
    "5f0c6a1e-8b5e-4c1f-9a4e-2b7d3c9e1f00",
)


class _Unsupported(Exception):
    """A construct the walk cannot turn into text (e.g. a conditional group)."""


def string_matching(pattern: str, rng: random.Random) -> str | None:
    """A string ``re.search(pattern, ...)`` matches, drawn from ``rng``; None when not found."""
    try:
        compiled, tree = _parsed(pattern)
    except (re.error, RecursionError):
        return None
    for _ in range(_ATTEMPTS):
        try:
            text = _emit(tree, rng, {})
        except (_Unsupported, RecursionError):
            break
        if compiled.search(text) is not None:
            return text
    matching = [text for text in _COMMON if compiled.search(text) is not None]
    return rng.choice(matching) if matching else None


@functools.lru_cache(maxsize=256)
def _parsed(pattern: str) -> tuple[re.Pattern[str], Any]:
    """The compiled pattern and its parse tree (read only), parsed once per pattern."""
    return re.compile(pattern), _parser.parse(pattern)


def _emit(items: Any, rng: random.Random, groups: dict[int, str]) -> str:
    """The text of a sequence of parsed items."""
    return "".join(_emit_one(op.name, value, rng, groups) for op, value in items)


def _emit_one(op: str, value: Any, rng: random.Random, groups: dict[int, str]) -> str:
    if op == "LITERAL":
        return chr(value)
    if op == "NOT_LITERAL":
        return rng.choice([char for char in _ALPHABET if ord(char) != value])
    if op == "ANY":
        return rng.choice(string.ascii_letters)
    if op == "IN":
        return _in_set(value, rng)
    if op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, high, item = value
        count = rng.randint(low, max(low, min(high, low + MAX_EXTRA_REPEATS)))
        return "".join(_emit(item, rng, groups) for _ in range(count))
    if op == "SUBPATTERN":
        group, _add_flags, _del_flags, item = value
        text = _emit(item, rng, groups)
        if group is not None:
            groups[group] = text
        return text
    if op == "ATOMIC_GROUP":
        return _emit(value, rng, groups)
    if op == "BRANCH":
        _, alternatives = value
        return _emit(rng.choice(alternatives), rng, groups)
    if op == "GROUPREF":
        return groups.get(value, "")
    if op in ("AT", "ASSERT", "ASSERT_NOT"):
        return ""  # anchors and lookarounds add no text; the final check catches misses
    raise _Unsupported(op)


def _in_set(items: list[tuple[Any, Any]], rng: random.Random) -> str:
    """One character of a character class ``[...]``."""
    negated = bool(items) and items[0][0].name == "NEGATE"
    members = items[1:] if negated else items
    if negated:
        allowed = [char for char in _ALPHABET if not _in_members(char, members)]
        if not allowed:
            raise _Unsupported("NEGATE")
        return rng.choice(allowed)
    if not members:
        raise _Unsupported("IN")
    op, value = rng.choice(members)
    name = op.name
    if name == "LITERAL":
        return str(chr(value))
    if name == "RANGE":
        low, high = value
        return chr(rng.randint(low, high))
    if name == "CATEGORY":
        chars = _CATEGORY_CHARS.get(value.name)
        if chars is None:
            raise _Unsupported(value.name)
        return rng.choice(chars)
    raise _Unsupported(name)


def _in_members(char: str, members: list[tuple[Any, Any]]) -> bool:
    code = ord(char)
    for op, value in members:
        name = op.name
        if name == "LITERAL" and code == value:
            return True
        if name == "RANGE" and value[0] <= code <= value[1]:
            return True
        if name == "CATEGORY" and char in _CATEGORY_CHARS.get(value.name, ""):
            return True
    return False


__all__ = ["MAX_EXTRA_REPEATS", "string_matching"]
