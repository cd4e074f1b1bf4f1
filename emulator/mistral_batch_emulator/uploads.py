"""Streaming of a multipart upload straight to disk, counting bytes and lines on the way."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from mistral_batch_emulator.errors import ApiError, invalid

# Form fields other than the file are tiny; anything bigger is a broken client.
_MAX_FIELD_BYTES = 64 * 1024


@dataclass
class ReceivedUpload:
    """What a multipart upload held: the file (already on disk) and the text fields."""

    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    bytes: int = 0
    num_lines: int = 0
    signature: str | None = None


class _FileTooLarge(Exception):
    pass


class _Receiver:
    """Callbacks of the multipart parser: the ``file`` part goes to disk, others to memory."""

    def __init__(self, dest: IO[bytes], max_bytes: int) -> None:
        self.result = ReceivedUpload()
        self._dest = dest
        self._max_bytes = max_bytes
        self._hash = hashlib.sha256()
        self._last_byte = b"\n"
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._is_file = False
        self._value = bytearray()
        self.file_done = False  # the ``file`` part has ended
        self.ended = False  # the closing boundary has been read

    def on_part_begin(self) -> None:
        self._headers = {}
        self._name = None
        self._is_file = False
        self._value = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        self._name = name.decode("utf-8", "replace") if name is not None else None
        filename = options.get(b"filename")
        # Only the first ``file`` part counts; a repeated one is ignored like an extra field.
        self._is_file = self._name == "file" and filename is not None and not self.file_done
        if self._is_file and filename is not None:
            self.result.filename = filename.decode("utf-8", "replace")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if not chunk:
            return
        if not self._is_file:
            self._value += chunk
            if len(self._value) > _MAX_FIELD_BYTES:
                raise ApiError(413, f"form field {self._name!r} is larger than 64 KiB")
            return
        self.result.bytes += len(chunk)
        if self.result.bytes > self._max_bytes:
            raise _FileTooLarge
        self.result.num_lines += chunk.count(b"\n")
        self._last_byte = chunk[-1:]
        self._hash.update(chunk)
        self._dest.write(chunk)

    def on_part_end(self) -> None:
        if self._is_file:
            self.file_done = True
            if self.result.bytes and self._last_byte != b"\n":
                self.result.num_lines += 1
            self.result.signature = self._hash.hexdigest()[:16]
        elif self._name is not None:
            # A repeated field: the last value wins, as in a FastAPI server, so
            # ``purpose=batch`` then ``purpose=bogus`` is checked (and refused) as ``bogus``.
            self.result.fields[self._name] = self._value.decode("utf-8", "replace")

    def on_end(self) -> None:
        self.ended = True


def _boundary(content_type: str | None) -> bytes:
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise invalid(
            ("body",),
            "expected a multipart/form-data body with a boundary",
            content_type,
            "value_error",
        )
    return boundary


async def receive_upload(
    content_type: str | None, chunks: AsyncIterator[bytes], dest: Path, max_bytes: int
) -> ReceivedUpload:
    """Parse a multipart body chunk by chunk, writing the ``file`` part to ``dest``.

    :raises ApiError: 413 when the file is larger than ``max_bytes``.
    :raises RequestValidationError: when the body is not multipart, has no complete file
        part or ends before its closing boundary.
    """
    boundary = _boundary(content_type)
    with dest.open("wb") as out:
        receiver = _Receiver(out, max_bytes)
        parser = MultipartParser(
            boundary,
            {
                "on_part_begin": receiver.on_part_begin,
                "on_part_data": receiver.on_part_data,
                "on_part_end": receiver.on_part_end,
                "on_header_field": receiver.on_header_field,
                "on_header_value": receiver.on_header_value,
                "on_header_end": receiver.on_header_end,
                "on_headers_finished": receiver.on_headers_finished,
                "on_end": receiver.on_end,
            },
        )
        try:
            async for chunk in chunks:
                parser.write(chunk)
            parser.finalize()
        except _FileTooLarge:
            raise ApiError(
                413, f"file is larger than the limit of {max_bytes} bytes", param="file"
            ) from None
        except MultipartParseError as exc:
            raise invalid(
                ("body",), f"malformed multipart body: {exc}", None, "value_error"
            ) from None
    # A body cut short (no closing ``--boundary--``) is refused, never stored truncated. A
    # ``file`` part that never ended is missing, as a FastAPI server reports it: the
    # multipart parser only hands over completed parts.
    if not receiver.file_done:
        raise invalid(("body", "file"), "Field required", None, "missing")
    if not receiver.ended:
        raise invalid(
            ("body",),
            "malformed multipart body: it ends before its closing boundary",
            None,
            "value_error",
        )
    return receiver.result


__all__ = ["ReceivedUpload", "receive_upload"]
