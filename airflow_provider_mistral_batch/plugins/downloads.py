"""A Mistral file streamed to the browser through the api-server, a chunk at a time.

A thread of its own reads the hook's download (:meth:`MistralBatchHook.iter_file_content`,
which resumes a broken connection) into a bounded queue read by the HTTP response, so the file
is never held whole (at most a few chunks are in flight) and the browser never sees the API key
or a signed URL. A browser that goes away stops the download.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Final

from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

#: Chunks waiting for the browser at most (each up to the hook's 1 MiB download chunk).
PIPE_CHUNKS: Final = 4
_POLL_SECONDS: Final = 0.5


class _ReaderGone(Exception):
    """The response stopped reading (the browser went away): end the download."""


class _End:
    """The download finished."""


def put(
    chunks: queue.Queue[bytes | BaseException | _End],
    item: bytes | BaseException | _End,
    gone: threading.Event,
) -> None:
    """Put ``item`` for the reader, waiting while the pipe is full; raise if it went away."""
    while True:
        if gone.is_set():
            raise _ReaderGone
        try:
            chunks.put(item, timeout=_POLL_SECONDS)
            return
        except queue.Full:
            continue


def stream_file(make_hook: Callable[[], MistralBatchHook], file_id: str) -> Iterator[bytes]:
    """The content of ``file_id``, chunk by chunk, downloaded in a thread of its own.

    An error of the download (before or after the first chunk) is raised from the iterator;
    closing the iterator early stops the download.

    :param make_hook: makes the hook the thread uses (and closes).
    """
    chunks: queue.Queue[bytes | BaseException | _End] = queue.Queue(maxsize=PIPE_CHUNKS)
    gone = threading.Event()

    def download() -> None:
        try:
            with make_hook() as hook:
                content = hook.iter_file_content(file_id)
                try:
                    for chunk in content:
                        put(chunks, chunk, gone)
                finally:
                    content.close()  # ends the HTTP download at once when the reader went away
            put(chunks, _End(), gone)
        except _ReaderGone:
            return
        except BaseException as exc:  # handed to the reader, which raises it
            try:
                put(chunks, exc, gone)
            except _ReaderGone:
                return

    thread = threading.Thread(target=download, name=f"mistral-download-{file_id}", daemon=True)
    thread.start()
    try:
        while True:
            item = chunks.get()
            if isinstance(item, _End):
                return
            if isinstance(item, BaseException):
                raise item
            if item:
                yield item
    finally:
        gone.set()


__all__ = ["PIPE_CHUNKS", "stream_file"]
