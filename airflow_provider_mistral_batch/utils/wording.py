"""Counts in the words a person reads in a log line: ``1 request``, ``1,200 requests``."""

from __future__ import annotations


def plural(count: int, noun: str, plural_noun: str | None = None) -> str:
    """``count`` with thousands separators and ``noun``, in the plural unless it is one.

    :param plural_noun: the plural when it is not ``noun + "s"``.
    """
    word = noun if count == 1 else (plural_noun or f"{noun}s")
    return f"{count:,} {word}"


__all__ = ["plural"]
