"""The first lines of a job's error file as the task tab shows them, from its first bytes.

Only the head of the file is read (see ``plugins/upstream.py``): however long a line is, a
preview costs a few kilobytes, and a line the head cuts is said to be cut, not shown whole.
"""

from __future__ import annotations

from typing import Final

from airflow_provider_mistral_batch.utils.outcome import first_errors

MAX_LINES: Final = 5


def preview_lines(head: bytes, more: bool, *, max_lines: int = MAX_LINES) -> list[str]:
    """Up to ``max_lines`` readable errors (``custom_id: message``) of an error file's
    ``head``; ``more`` says the file goes on after it. A line the head cuts in two is not
    parsed: the preview ends with a note saying so."""
    text = head.decode("utf-8", errors="replace")
    lines = text.split("\n")
    cut = lines.pop() if more else None  # the head ends inside this line
    complete = [line for line in lines if line.strip()]
    preview = first_errors(complete, limit=max_lines, max_chars=len(text) + 1)
    if cut is not None and cut.strip() and len(preview) < max_lines:
        preview.append(
            f"(line {len(complete) + 1} is longer than the {len(head):,} bytes read for this "
            "preview: download the error file to see it)"
        )
    return preview


__all__ = ["MAX_LINES", "preview_lines"]
