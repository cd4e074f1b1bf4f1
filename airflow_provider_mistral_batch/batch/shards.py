"""Accepted request lines into JSONL files one batch job each takes: at most ``limit``
requests and :data:`MAX_FILE_BYTES` (512 MB) a file, a new file started when the next line
would not fit. The files are temporary: whoever uploads them deletes them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from airflow_provider_mistral_batch.exceptions import MistralBatchInputError
from airflow_provider_mistral_batch.models import MAX_FILE_BYTES


@dataclass(frozen=True)
class Shard:
    """One written file.

    :param filename: the name to upload it under: the input's own when it is the only one,
        else ``<stem>.part-<i>-of-<n>.jsonl``.
    """

    path: Path
    request_count: int
    size: int
    filename: str


class ShardWriter:
    """Writes request lines into temporary JSONL files, one per job, in order.

    :param filename: the input's name (``requests.jsonl``, the user's file name), for errors
        and the shards' names.
    :param limit: the most requests one file may hold.
    """

    def __init__(self, filename: str, limit: int) -> None:
        self.filename = filename
        self.limit = limit
        self._closed: list[tuple[Path, int, int]] = []  # path, requests, bytes
        self._handle: IO[bytes] | None = None
        self._path: Path | None = None
        self._count = 0
        self._size = 0

    def add(self, line: bytes) -> None:
        """Write one line (ending with its newline), starting a new file when it would not fit.

        :raises MistralBatchInputError: the line alone is larger than a file may be.
        """
        if len(line) > MAX_FILE_BYTES:
            raise MistralBatchInputError(
                f"{self.filename}: a request of {len(line):,} bytes is larger than the "
                f"{MAX_FILE_BYTES:,} bytes (512 MB) one input file may hold"
            )
        if (
            self._handle is None
            or self._count >= self.limit
            or (self._size + len(line) > MAX_FILE_BYTES)
        ):
            self._roll()
        assert self._handle is not None
        self._handle.write(line)
        self._count += 1
        self._size += len(line)

    def _roll(self) -> None:
        self._close_current()
        fd, name = tempfile.mkstemp(prefix="mistral-batch-input-", suffix=".jsonl")
        self._handle = os.fdopen(fd, "wb")
        self._path = Path(name)
        self._count = 0
        self._size = 0

    def _close_current(self) -> None:
        if self._handle is not None and self._path is not None:
            self._handle.close()
            self._closed.append((self._path, self._count, self._size))
            self._handle = None

    def lines(self) -> Iterator[bytes]:
        """Every line written so far, in order, read back from the files."""
        paths = [path for path, _, _ in self._closed]
        if self._handle is not None and self._path is not None:
            self._handle.flush()
            paths.append(self._path)
        for path in paths:
            with path.open("rb") as handle:
                yield from handle

    def finish(self) -> list[Shard]:
        """Close the last file; every file written, named for its upload."""
        self._close_current()
        if len(self._closed) == 1:
            path, count, size = self._closed[0]
            return [Shard(path, count, size, self.filename)]
        stem = self.filename.removesuffix(".jsonl")
        total = len(self._closed)
        width = len(str(total))
        return [
            Shard(path, count, size, f"{stem}.part-{index:0{width}d}-of-{total}.jsonl")
            for index, (path, count, size) in enumerate(self._closed, start=1)
        ]

    def discard(self) -> None:
        """Delete every file written (after an error)."""
        self._close_current()
        for path, _, _ in self._closed:
            path.unlink(missing_ok=True)
        self._closed = []


def split_lines(path: Path, filename: str, limit: int) -> list[Shard]:
    """Copy a validated local JSONL file (no blank lines) into shards of ``limit`` lines.

    :raises MistralBatchInputError: a line larger than a file may be.
    """
    writer = ShardWriter(filename, limit)
    try:
        with path.open("rb") as handle:
            for raw in handle:
                writer.add(raw if raw.endswith(b"\n") else raw + b"\n")
    except BaseException:
        writer.discard()
        raise
    return writer.finish()


__all__ = ["Shard", "ShardWriter", "split_lines"]
