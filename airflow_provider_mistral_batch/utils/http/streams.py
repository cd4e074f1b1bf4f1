"""Streaming sources for uploads and sinks for downloads, rewindable for retries."""

from __future__ import annotations

import contextlib
import mimetypes
import os
import stat
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from airflow_provider_mistral_batch.exceptions import MistralBatchError, MistralBatchInputError
from airflow_provider_mistral_batch.models import MAX_FILE_BYTES

#: A local file: a path, or a binary file object.
LocalFile = str | os.PathLike[str] | BinaryIO


class _PathOrStream:
    """A path, or a binary file object and the position it started at."""

    def __init__(self, target: LocalFile) -> None:
        self._path: Path | None = None
        self._fileobj: BinaryIO | None = None
        self._start = 0
        if isinstance(target, str | os.PathLike):
            self._path = Path(target)
        else:
            self._fileobj = target
            self._start = target.tell() if _seekable(target) else 0

    @property
    def rewindable(self) -> bool:
        """Whether a failed attempt can start again from the beginning."""
        return self._path is not None or (self._fileobj is not None and _seekable(self._fileobj))


class UploadSource(_PathOrStream):
    """A file to upload, opened afresh (or rewound) for every attempt; never read whole."""

    def __init__(self, source: LocalFile, filename: str | None = None) -> None:
        super().__init__(source)
        if self._path is not None:
            if not self._path.is_file():
                raise MistralBatchInputError(f"upload source {str(self._path)!r} is not a file")
            size: int | None = self._path.stat().st_size
            default_name = self._path.name
        else:
            size = _remaining_size(self._fileobj) if self._fileobj is not None else None
            default_name = Path(str(getattr(source, "name", "") or "input.jsonl")).name
        if size is not None and size > MAX_FILE_BYTES:
            raise MistralBatchInputError(
                f"upload source {default_name!r} is {size:,} bytes; the Files API accepts at "
                f"most {MAX_FILE_BYTES:,} bytes (512 MB): split it into several files"
            )
        self.size = size
        self.filename = filename or default_name
        self.mimetype = guess_mimetype(self.filename)

    @contextlib.contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """The content, positioned at its start, for one attempt."""
        if self._path is not None:
            with self._path.open("rb") as handle:
                yield handle
            return
        assert self._fileobj is not None
        if _seekable(self._fileobj):
            self._fileobj.seek(self._start)
        yield self._fileobj


class DownloadSink(_PathOrStream):
    """Where downloaded bytes go; a path is written through a temporary file and renamed."""

    @contextlib.contextmanager
    def open(self) -> Iterator[BinaryIO]:
        """A writable handle for one attempt; a path is replaced only when the attempt ends well."""
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with replacing_file(self._path) as handle:
                yield handle
            return
        assert self._fileobj is not None
        if _seekable(self._fileobj):
            self._fileobj.seek(self._start)
            self._fileobj.truncate()
        yield self._fileobj


@contextlib.contextmanager
def replacing_file(path: Path) -> Iterator[BinaryIO]:
    """A new file beside the local ``path``, renamed over it when the block ends without error
    (removed on error): readers of ``path`` never see a partial file.

    A file it replaces keeps its permission bits, set before anything is written, so content
    meant for its owner alone is never in a file others may read; a new one gets ``0o666``
    less the umask, as ``open()`` gives any new file (``tempfile.mkstemp`` would give
    ``0o600``). Owner and group are this process's, as for any new file.
    """
    try:
        kept: int | None = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        kept = None
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.part")
    # 0o666 lets the umask decide a new file's mode; 0o600 lets no one else in before the
    # replaced file's mode is set.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if kept is None else 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            if kept is not None:
                os.fchmod(handle.fileno(), kept)
            yield handle
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class UndecodableLineError(MistralBatchError):
    """A line of a JSONL stream that is not UTF-8 text.

    :param source: what the stream is, e.g. ``file <id>``; empty when unknown.
    :param number: the line's number in its stream, blank lines not counted (the numbering
        of the lines :func:`jsonl_lines` yields).
    :param reason: what is wrong with it, e.g. ``invalid start byte at byte 1 (0xff)``.
    """

    def __init__(self, source: str, number: int, reason: str) -> None:
        self.source = source
        self.number = number
        self.reason = reason
        where = f"{source} line {number}" if source else f"line {number}"
        super().__init__(f"{where} is not UTF-8 text: {reason}")

    def __reduce__(self) -> tuple[type[UndecodableLineError], tuple[str, int, str]]:
        return type(self), (self.source, self.number, self.reason)


def jsonl_lines(chunks: Iterable[bytes], source: str = "") -> Iterator[str]:
    """Lines of a JSONL byte stream, split on ``\n`` only, without line ends, blank ones skipped.

    Not ``str.splitlines``: JSON strings may hold U+2028, U+2029 or U+0085 unescaped, and a
    split on them would cut one result in pieces.

    :param source: names the stream in errors, e.g. ``file <id>``; default none.
    :raises UndecodableLineError: a line that is not UTF-8, with its number (blank lines not
        counted; the lines before it are yielded first).
    """
    pending = b""
    number = 0  # lines yielded so far
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for raw in complete:
            try:
                line = raw.removesuffix(b"\r").decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _undecodable(source, number + 1, exc) from None
            if line.strip():
                number += 1
                yield line
    try:
        last = pending.removesuffix(b"\r").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _undecodable(source, number + 1, exc) from None
    if last.strip():
        yield last


def _undecodable(source: str, number: int, exc: UnicodeDecodeError) -> UndecodableLineError:
    # A line that is not UTF-8 is never blank: it holds at least one byte that is not a space.
    byte = exc.object[exc.start]
    return UndecodableLineError(
        source, number, f"{exc.reason} at byte {exc.start + 1} (0x{byte:02x})"
    )


def guess_mimetype(filename: str) -> str:
    """The content type to declare for an uploaded file."""
    if filename.endswith(".jsonl"):
        return "application/jsonl"
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _seekable(handle: BinaryIO) -> bool:
    try:
        return bool(handle.seekable())
    except (AttributeError, ValueError):
        return False


def _remaining_size(handle: BinaryIO) -> int | None:
    if not _seekable(handle):
        return None
    position = handle.tell()
    end = handle.seek(0, os.SEEK_END)
    handle.seek(position)
    return end - position
