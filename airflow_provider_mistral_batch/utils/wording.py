"""Words a person reads in a log line or an error: ``1,200 requests``, ``got a list``, a list
of problems cut after the first ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

#: Problems listed in one error before the rest are only counted.
MAX_REPORTED_PROBLEMS: Final = 20


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """``count`` with thousands separators and ``noun``, in the plural unless it is one.

    :param plural_noun: the plural when it is not ``noun + "s"``.
    """
    word = noun if count == 1 else (plural_noun or f"{noun}s")
    return f"{count:,} {word}"


def kind_of(value: Any) -> str:
    """How a value reads in an error message: ``an object``, ``a list``, ``null``..."""
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__


def listed(messages: list[str], count: int) -> str:
    """The first problems, one a line, and how many more there are of ``count`` in all."""
    more = count - len(messages)
    return "\n".join(messages) + (f"\n(and {more} more problems)" if more > 0 else "")


__all__ = ["MAX_REPORTED_PROBLEMS", "kind_of", "listed", "plural"]
