"""The first lines of a job's error file as the task tab shows them, from its first bytes.

Only the head of the file is read (see ``plugins/upstream.py``): however long a line is, a
preview costs a few kilobytes, and a line the head cuts is quoted as cut, not read whole.
"""

from __future__ import annotations

from typing import Final

from airflow_provider_mistral_batch.batch.error_quotes import first_errors
from airflow_provider_mistral_batch.exceptions import MistralBatchError
from airflow_provider_mistral_batch.hooks.http.streams import head_lines

MAX_LINES: Final = 5


def preview_lines(head: bytes, max_bytes: int, *, max_lines: int = MAX_LINES) -> list[str]:
    """Up to ``max_lines`` readable errors (``custom_id: message``) of the first ``max_bytes``
    bytes of an error file; ``head`` holds one byte more when the file goes on after them."""
    lines = head_lines([head], max_bytes)
    try:
        return first_errors(lines, limit=max_lines, max_chars=max_bytes)
    except MistralBatchError as exc:  # a line that is not UTF-8: say so in the preview
        return [f"(the error file cannot be shown: {exc})"]


__all__ = ["MAX_LINES", "preview_lines"]
