"""The first lines of a job's error file, read streamed and bounded, remembered per file.

A job's error file never changes once it exists, so a preview is kept (per connection and
file id) and a page that refreshes every few seconds reads the file once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Final

from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.utils.outcome import first_errors

MAX_LINES: Final = 5
#: Characters of the file read at most (its lines, as decoded).
MAX_CHARS: Final = 4096
_CACHE_SIZE: Final = 256


def read_error_preview(
    hook: MistralBatchHook, file_id: str, *, max_lines: int = MAX_LINES, max_chars: int = MAX_CHARS
) -> list[str]:
    """Up to ``max_lines`` readable errors from the start of an error file, ``custom_id: message``
    each, reading at most about ``max_chars`` characters of it (the download stops there)."""
    return first_errors(hook.iter_file_lines(file_id), limit=max_lines, max_chars=max_chars)


class PreviewCache:
    """Error previews by (connection id, file id), the least recently used dropped first."""

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self._size = size
        self._items: OrderedDict[tuple[str, str], list[str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, hook: MistralBatchHook, conn_id: str, file_id: str) -> list[str]:
        """The preview of ``file_id``, read through ``hook`` when not kept yet."""
        key = (conn_id, file_id)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return list(self._items[key])
        preview = read_error_preview(hook, file_id)
        with self._lock:
            self._items[key] = preview
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return list(preview)


__all__ = ["MAX_CHARS", "MAX_LINES", "PreviewCache", "read_error_preview"]
