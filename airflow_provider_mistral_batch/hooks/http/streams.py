"""Streaming sources for uploads and sinks for downloads, rewindable for retries."""

from __future__ import annotations

import contextlib
import mimetypes
import os
import stat
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Final

from airflow_provider_mistral_batch.exceptions import (
    MistralBatchError,
    MistralBatchFatalError,
    MistralBatchInputError,
)
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


#: The longest line :func:`jsonl_lines` reads, in bytes (its line end not counted): 64 MiB.
#: Result lines are large only by their bodies: a long chat answer is well under 1 MB even
#: JSON-escaped, the embeddings of a request of many inputs a few MB, an OCR page with its
#: images inline (``include_image_base64``) some MB more. 64 MiB leaves room above all of
#: those, while a reader that meets a longer line (a broken or hostile file: one of 400 MB was
#: seen) holds at most about this much of it, plus its text once decoded, and then stops.
MAX_LINE_BYTES: Final = 64 * 1024 * 1024


class LineTooLongError(MistralBatchFatalError):
    """A line of a JSONL stream longer than the reader accepts; a retry reads the same line.

    :param source: what the stream is, e.g. ``file <id>``; empty when unknown.
    :param number: the line's number in its stream, blank lines not counted.
    :param limit: the most bytes a line may have, its line end not counted.
    :param skipped: whether the reader skips the line and reads on (default: it stops).
    """

    def __init__(self, source: str, number: int, limit: int, skipped: bool = False) -> None:
        self.source = source
        self.number = number
        self.limit = limit
        self.skipped = skipped
        where = f"{source} line {number}" if source else f"line {number}"
        super().__init__(
            f"{where} is longer than {limit:,} bytes, the longest line accepted: "
            + ("skipped" if skipped else "reading stopped there")
        )

    def __reduce__(self) -> tuple[type[LineTooLongError], tuple[str, int, int, bool]]:
        return type(self), (self.source, self.number, self.limit, self.skipped)


#: What a reader of lines calls with a line it skips (not UTF-8, or too long) instead of
#: raising; see :func:`jsonl_lines`.
BadLineHandler = Callable[[UndecodableLineError | LineTooLongError], None]


def jsonl_lines(
    chunks: Iterable[bytes],
    source: str = "",
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    on_bad_line: BadLineHandler | None = None,
) -> Iterator[str]:
    """Lines of a JSONL byte stream, split on ``\n`` only, without line ends, blank ones skipped.

    Not ``str.splitlines``: JSON strings may hold U+2028, U+2029 or U+0085 unescaped, and a
    split on them would cut one result in pieces. At most ``max_line_bytes`` of a line (and
    one chunk) are held while it is read, then its text once decoded.

    :param source: names the stream in errors, e.g. ``file <id>``; default none.
    :param max_line_bytes: the longest line accepted, in bytes without its line end; default
        :data:`MAX_LINE_BYTES` (64 MiB).
    :param on_bad_line: called with the error of a line that is not UTF-8 or is too long,
        which is then skipped (the rest of a long one read past, not held) and reading goes
        on; the line still counts in the numbering. Default None: such a line raises.
    :raises UndecodableLineError: a line that is not UTF-8, with its number (blank lines not
        counted; the lines before it are yielded first); not with ``on_bad_line``.
    :raises LineTooLongError: a longer line, with its number, as soon as it is known to be too
        long (the lines before it are yielded first); not with ``on_bad_line``.
    """
    room = max_line_bytes + 1  # + 1: the carriage return of a CRLF end
    pending = bytearray()  # the start of the line being read, never longer than room
    number = 0  # lines yielded or skipped so far
    skipping = False  # reading past the rest of a line too long (on_bad_line only)
    for chunk in chunks:
        end = chunk.find(b"\n")
        if end < 0:
            if not skipping:
                if len(pending) + len(chunk) > room:
                    number += 1
                    _bad(
                        LineTooLongError(source, number, max_line_bytes, on_bad_line is not None),
                        on_bad_line,
                    )
                    pending, skipping = bytearray(), True
                else:
                    pending += chunk
            continue
        if skipping:
            skipping = False  # the long line ends here
        elif len(pending) + end > room:
            number += 1
            _bad(
                LineTooLongError(source, number, max_line_bytes, on_bad_line is not None),
                on_bad_line,
            )
        else:
            pending += memoryview(chunk)[:end]
            text = _checked_text(pending, source, number + 1, max_line_bytes, on_bad_line)
            if text is None:
                number += 1
            elif text.strip():
                number += 1
                yield text
        *complete, rest = chunk[end + 1 :].split(b"\n")
        # The lines within one chunk: the common case, decoded inline (a call per line costs
        # a tenth of the time a line takes here).
        for raw in complete:
            if len(raw) > max_line_bytes:  # only with a limit below the chunk's size
                text = _checked_text(raw, source, number + 1, max_line_bytes, on_bad_line)
            else:
                try:
                    text = raw.removesuffix(b"\r").decode("utf-8")
                except UnicodeDecodeError as exc:
                    text = None
                    _bad(_undecodable(source, number + 1, exc), on_bad_line)
            if text is None:
                number += 1
            elif text.strip():
                number += 1
                yield text
        if len(rest) > room:
            number += 1
            _bad(
                LineTooLongError(source, number, max_line_bytes, on_bad_line is not None),
                on_bad_line,
            )
            pending, skipping = bytearray(), True
        else:
            pending = bytearray(rest)
    if not skipping:
        text = _checked_text(pending, source, number + 1, max_line_bytes, on_bad_line)
        if text and text.strip():
            yield text


def _bad(
    error: UndecodableLineError | LineTooLongError, on_bad_line: BadLineHandler | None
) -> None:
    """Raise ``error``, or hand it to ``on_bad_line`` (the line is then skipped)."""
    if on_bad_line is None:
        raise error from None
    on_bad_line(error)


def _checked_text(
    raw: bytes | bytearray,
    source: str,
    number: int,
    limit: int,
    on_bad_line: BadLineHandler | None,
) -> str | None:
    """:func:`_line_text`, or None for a bad line handed to ``on_bad_line``."""
    try:
        return _line_text(raw, source, number, limit, skipped=on_bad_line is not None)
    except (UndecodableLineError, LineTooLongError) as exc:
        _bad(exc, on_bad_line)
        return None


def _line_text(
    raw: bytes | bytearray, source: str, number: int, limit: int, *, skipped: bool = False
) -> str:
    """The text of line ``number``, of at most ``limit`` bytes without the carriage return of
    a CRLF end (left out), decoded without copying its bytes first."""
    length = len(raw) - 1 if raw.endswith(b"\r") else len(raw)
    if length > limit:
        raise LineTooLongError(source, number, limit, skipped)
    try:
        return str(memoryview(raw)[:length], "utf-8")
    except UnicodeDecodeError as exc:
        raise _undecodable(source, number, exc) from None


class CutLine(str):
    """The start of a line that a reading budget cut (:func:`head_lines`); the rest of the line
    was not read. A ``str``, so it goes wherever a line goes."""

    __slots__ = ()


def head_lines(chunks: Iterable[bytes], max_bytes: int, source: str = "") -> Iterator[str]:
    """The lines of the start of a JSONL byte stream, reading at most ``max_bytes`` of it.

    For a preview: the lines are those :func:`jsonl_lines` gives, as far as the first
    ``max_bytes`` bytes hold them; a line that goes on past them comes last, as a
    :class:`CutLine` of its start (a character cut in two is left out). The stream is closed
    once ``max_bytes`` (and one more byte, to tell whether the stream goes on) are read:
    however long its lines, no more of it is downloaded or held.

    :param max_bytes: how much of the stream to read at most, in bytes.
    :param source: names the stream in errors, e.g. ``file <id>``; default none.
    :raises UndecodableLineError: a line that is not UTF-8, with its number (blank lines not
        counted; the lines before it are yielded first).
    """
    head = bytearray()
    iterator = iter(chunks)
    try:
        for chunk in iterator:
            head += chunk[: max_bytes + 1 - len(head)]
            if len(head) > max_bytes:
                break
    finally:
        close = getattr(iterator, "close", None)
        if close is not None and len(head) > max_bytes:
            close()  # ends the download
    *complete, tail = head.split(b"\n")
    if len(head) <= max_bytes:  # the whole stream: its last line is whole too
        complete.append(tail)
        tail = bytearray()
    number = 0
    for raw in complete:
        line = _line_text(raw, source, number + 1, max_bytes)
        if line.strip():
            number += 1
            yield line
    # The byte past the budget ends the tail (a newline there would have ended it whole).
    cut = tail[:-1]
    if cut.strip():
        yield CutLine(_decoded_start(cut, source, number + 1))


def _decoded_start(raw: bytes | bytearray, source: str, number: int) -> str:
    """The text of a line's start, without the part of a character it cuts off at its end."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason != "unexpected end of data" or exc.end != len(raw):
            raise _undecodable(source, number, exc) from None
        return raw[: exc.start].decode("utf-8")


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
