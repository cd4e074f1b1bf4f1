"""The first errors of an error file, quoted for a person: ``custom_id: message`` of its first
lines, reading only its head whatever its lines' length (the final log line, the UI preview)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from pydantic import ValidationError

from airflow_provider_mistral_batch.hooks.http.streams import CutLine
from airflow_provider_mistral_batch.models import BatchResultLine

#: How much of an error file is read to quote its first errors in the final log line.
FIRST_ERRORS: Final = 3
FIRST_ERRORS_MAX_CHARS: Final = 4096
_ERROR_MAX_CHARS: Final = 200


def first_errors(
    lines: Iterable[str], limit: int = FIRST_ERRORS, max_chars: int = FIRST_ERRORS_MAX_CHARS
) -> list[str]:
    """``custom_id: message`` of the first ``limit`` lines of an error file, reading at most
    about ``max_chars`` characters of it (the iterator is closed after that).

    A line longer than ``max_chars``, or one its reader cut (a :class:`CutLine` of
    :func:`head_lines`), is not parsed: its start is quoted, marked as cut.
    """
    found: list[str] = []
    read = 0
    iterator = iter(lines)
    try:
        for line in iterator:
            read += len(line)
            if isinstance(line, CutLine) or len(line) > max_chars:
                shown = min(len(line), max_chars)
                text = f"(line cut at {shown:,} characters) {line[:_ERROR_MAX_CHARS]}"
            else:
                text = _error_of(line)
            found.append(_shorten(text))
            if len(found) >= limit or read >= max_chars:
                break
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()  # ends the download: only the head of the file is read
    return found


def _error_of(line: str) -> str:
    """``custom_id: message`` of an error file's line, or the line itself if it is not one."""
    try:
        result = BatchResultLine.model_validate_json(line)
    except ValidationError:
        return f"(not a result line) {line}"
    message = result.error_message or "no error"
    return f"{result.custom_id}: {message}" if result.custom_id is not None else message


def _shorten(text: str) -> str:
    # Spaces are collapsed in a bounded window: a huge text costs no more than a short one.
    window = text[: _ERROR_MAX_CHARS * 4]
    flat = " ".join(window.split())
    if len(flat) <= _ERROR_MAX_CHARS and len(window) == len(text):
        return flat
    return flat[: _ERROR_MAX_CHARS - 3] + "..."


__all__ = ["FIRST_ERRORS", "FIRST_ERRORS_MAX_CHARS", "first_errors"]
