"""Validate batch input before anything is uploaded or created, with errors that name the line.

Each request must be a JSON object with an object ``body`` and a unique string ``custom_id``
(or, with ``assign_custom_ids=True``, requests without one get their 0-based position as id).
An input larger than one job takes (``max_requests_per_job``, at most 1,000,000 requests, or
512 MB) is split into shards in the same streaming pass, one JSONL file per job. A fingerprint
of the validated input (endpoint, model and every request) identifies it for reattaching on
retry.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from pathlib import Path
from typing import IO, Any, Final, TypeVar

import msgspec

from airflow_provider_mistral_batch.exceptions import MistralBatchInputError
from airflow_provider_mistral_batch.models import (
    MAX_FILE_BYTES,
    MAX_INLINE_REQUESTS,
    MAX_REQUESTS_PER_JOB,
)
from airflow_provider_mistral_batch.utils.wording import plural

#: Problems listed in one error before the rest are only counted.
MAX_REPORTED_PROBLEMS: Final = 20


@dataclass(frozen=True)
class InlineInput:
    """Requests small enough to send inline with the create-job call."""

    requests: list[dict[str, Any]]
    fingerprint: str

    @property
    def request_count(self) -> int:
        return len(self.requests)


@dataclass(frozen=True)
class FileInput:
    """A validated JSONL file to upload.

    :param path: the file to upload (the user's own file, or a temporary copy).
    :param temporary: whether ``path`` is a copy this provider made and must delete.
    """

    path: Path
    request_count: int
    size: int
    fingerprint: str
    temporary: bool
    filename: str


@dataclass(frozen=True)
class UploadedInput:
    """Files already uploaded to Mistral, given by id."""

    file_ids: list[str]
    fingerprint: str


@dataclass(frozen=True)
class ShardedInput:
    """An input split into several JSONL files, one batch job each (in input order).

    :param shards: temporary files this provider made and must delete.
    """

    shards: list[FileInput]
    fingerprint: str

    @property
    def request_count(self) -> int:
        return sum(shard.request_count for shard in self.shards)


PreparedInput = InlineInput | FileInput | UploadedInput | ShardedInput


class _ShardWriter:
    """Writes accepted request lines into temporary JSONL files of at most ``limit`` requests
    and :data:`MAX_FILE_BYTES` bytes each, starting a new file when the next line would not fit.
    """

    def __init__(self, filename: str, limit: int) -> None:
        self.filename = filename
        self.limit = limit
        self.closed: list[tuple[Path, int, int]] = []  # path, requests, bytes
        self._handle: IO[bytes] | None = None
        self._path: Path | None = None
        self._count = 0
        self._size = 0

    def add(self, line: bytes) -> None:
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
            self.closed.append((self._path, self._count, self._size))
            self._handle = None

    def lines(self) -> Iterator[bytes]:
        """Every line written so far, in order, read back from the files."""
        paths = [path for path, _, _ in self.closed]
        if self._handle is not None and self._path is not None:
            self._handle.flush()
            paths.append(self._path)
        for path in paths:
            with path.open("rb") as handle:
                yield from handle

    def finish(self, fingerprint: str) -> FileInput | ShardedInput:
        """The written file, or the shards when there are several."""
        self._close_current()
        if len(self.closed) == 1:
            path, count, size = self.closed[0]
            return FileInput(path, count, size, fingerprint, temporary=True, filename=self.filename)
        stem = self.filename.removesuffix(".jsonl")
        total = len(self.closed)
        return ShardedInput(
            [
                FileInput(
                    path,
                    count,
                    size,
                    fingerprint,
                    temporary=True,
                    filename=f"{stem}.part-{index:0{len(str(total))}d}-of-{total}.jsonl",
                )
                for index, (path, count, size) in enumerate(self.closed, start=1)
            ],
            fingerprint,
        )

    def discard(self) -> None:
        """Delete every file written (after an error)."""
        self._close_current()
        for path, _, _ in self.closed:
            path.unlink(missing_ok=True)
        self.closed = []


def temporary_files(prepared: PreparedInput) -> list[Path]:
    """The files this provider made for ``prepared`` and must delete once its jobs exist."""
    files = prepared.shards if isinstance(prepared, ShardedInput) else [prepared]
    return [f.path for f in files if isinstance(f, FileInput) and f.temporary]


class RepeatedIds:
    """Finds the custom_ids of a stream that repeat an earlier one, without keeping the ids.

    Each id leaves only its 64-bit ``hash()`` (8 bytes, in 256 arrays by the low byte, a
    million ids in about 9 MB); only if two hashes are equal does :meth:`repeats` read the ids
    back once, to name each repeat and where its first one is (and to tell a real repeat from
    two ids whose hashes happen to be equal).
    """

    def __init__(self) -> None:
        self._hashes = [array("q") for _ in range(256)]

    def add(self, custom_id: str) -> None:
        """Take the next id of the stream."""
        id_hash = _id_hash(custom_id)
        self._hashes[id_hash & 255].append(id_hash)

    def repeats(
        self, read_back: Callable[[], Iterable[tuple[str, _Place]]]
    ) -> Iterator[tuple[str, _Place, _Place]]:
        """``(custom_id, place, place of its first one)`` of each id that repeats, in order.

        :param read_back: the ids again, in the same order, each with its place (what names
            where it is); only called when two ids have the same hash.
        """
        repeated = self._repeated_hashes()
        if not repeated:
            return
        first: dict[str, _Place] = {}
        for custom_id, place in read_back():
            if _id_hash(custom_id) not in repeated:
                continue
            if custom_id in first:
                yield custom_id, place, first[custom_id]
            else:
                first[custom_id] = place

    def _repeated_hashes(self) -> set[int]:
        repeated: set[int] = set()
        for hashes in self._hashes:
            if len(set(hashes)) == len(hashes):
                continue
            seen: set[int] = set()
            for id_hash in hashes:
                if id_hash in seen:
                    repeated.add(id_hash)
                seen.add(id_hash)
        return repeated


_Place = TypeVar("_Place")


def _id_hash(custom_id: str) -> int:
    # The hash of the text (a str subclass may hash otherwise); the same as read back.
    return hash(custom_id) if type(custom_id) is str else str.__hash__(custom_id)


class _Checker:
    """Checks requests one by one: remembers problems, hashes what it accepts and gives each
    accepted request's canonical JSONL line, serialized once for the fingerprint and the file.
    Repeated custom_ids are found by :class:`RepeatedIds`, which reads the accepted lines back
    only when two ids may be the same.

    :param lines: name places as file lines (``line 3``) instead of positions (``[2]``).
    """

    def __init__(
        self, source: str, endpoint: str, model: str | None, assign_ids: bool, *, lines: bool
    ) -> None:
        self.source = source
        self.assign_ids = assign_ids
        self.count = 0
        self.problem_count = 0
        self._lines = lines
        # The first listed problems, (position, message), in input order.
        self._problems: list[tuple[int, str]] = []
        # Positions refused (in order): the others are the accepted requests, as written.
        self._refused = array("q")
        self._ids = RepeatedIds()
        self._hash = hashlib.sha256()
        self._hash.update(json.dumps([endpoint, model]).encode())
        self._encode = _canonical_encoder()

    def _where(self, position: int) -> str:
        return f"line {position + 1}" if self._lines else f"[{position}]"

    def _message(self, position: int, text: str) -> str:
        separator = " " if self._lines else ""
        return f"{self.source}{separator}{self._where(position)}: {text}"

    def problem(self, position: int, text: str) -> None:
        """Refuse the request at ``position`` (0-based) for ``text``."""
        self.problem_count += 1
        self._refused.append(position)
        if len(self._problems) < MAX_REPORTED_PROBLEMS:
            self._problems.append((position, self._message(position, text)))

    def check(self, item: Any, position: int) -> tuple[dict[str, Any], bytes] | None:
        """The request to send (``item`` itself when it needs no change, else a normalized
        copy with its ``custom_id`` and a plain ``body`` dict) and its line, or None."""
        self.count += 1
        if type(item) is dict:
            request: dict[str, Any] = item
        elif isinstance(item, Mapping):
            request = dict(item)
        else:
            self.problem(position, f"expected a JSON object, got {_kind(item)}")
            return None
        if "body" not in request:
            self.problem(position, 'missing "body" (the request payload)')
            return None
        body = request["body"]
        if type(body) is not dict and not isinstance(body, Mapping):
            self.problem(position, f'"body" must be a JSON object, got {_kind(body)}')
            return None
        custom_id = request.get("custom_id")
        assigned = custom_id is None
        if assigned:
            if not self.assign_ids:
                self.problem(
                    position,
                    'missing "custom_id" (give every request a unique one, or set '
                    "assign_custom_ids=True to use each request's position)",
                )
                return None
            custom_id = str(position)
        elif not isinstance(custom_id, str) or not custom_id:
            self.problem(position, f'"custom_id" must be a non-empty string, got {custom_id!r}')
            return None
        if assigned or type(body) is not dict:
            if request is item:
                request = dict(item)
            request["custom_id"] = custom_id
            request["body"] = dict(body)
        try:
            line = (self._encode(request) + "\n").encode()
        except (TypeError, ValueError) as exc:  # e.g. a set, a cycle, a lone surrogate
            self.problem(position, f"cannot be written as JSON ({exc})")
            return None
        self._hash.update(line)
        self._ids.add(custom_id)
        return request, line

    def accepted_positions(self) -> Iterator[int]:
        """The positions of the requests accepted so far, in order."""
        refused = iter(self._refused)
        skip = next(refused, -1)
        for position in range(self.count):
            if position == skip:
                skip = next(refused, -1)
            else:
                yield position

    def finish(self, accepted_lines: Callable[[], Iterable[bytes]]) -> str:
        """The fingerprint, or the error listing every problem found.

        :param accepted_lines: reads back the line of each accepted request, in order; only
            called when two accepted custom_ids have the same hash.
        """
        if self.count == 0:
            raise MistralBatchInputError(f"{self.source}: no requests: the batch is empty")
        self._name_repeats(accepted_lines)
        if self.problem_count:
            raise MistralBatchInputError(
                f"invalid batch input ({self.problem_count} problems):\n"
                + _listed([message for _, message in self._problems], self.problem_count)
            )
        return self._hash.hexdigest()

    def _name_repeats(self, accepted_lines: Callable[[], Iterable[bytes]]) -> None:
        """Refuse each accepted request whose custom_id an earlier one has, naming that one,
        and list the problems in input order again."""

        def read_back() -> Iterator[tuple[str, int]]:
            accepted = zip(self.accepted_positions(), accepted_lines(), strict=True)
            return ((_custom_id_of(line), position) for position, line in accepted)

        found: list[tuple[int, str]] = []
        for custom_id, position, earlier in self._ids.repeats(read_back):
            self.problem_count += 1
            if len(found) < MAX_REPORTED_PROBLEMS:
                text = f'custom_id "{custom_id}" repeats {self._where(earlier)}'
                found.append((position, self._message(position, text)))
        if found:
            merged = sorted(self._problems + found, key=lambda problem: problem[0])
            self._problems = merged[:MAX_REPORTED_PROBLEMS]


def _listed(messages: list[str], count: int) -> str:
    """The first problems, one a line, and how many more there are of ``count`` in all."""
    more = count - len(messages)
    return "\n".join(messages) + (f"\n(and {more} more problems)" if more > 0 else "")


def _canonical_encoder() -> Callable[[Any], str]:
    """:func:`canonical_json` with its encoder made once instead of once per call: the same
    text, about 1 µs less a request (of some 4 µs in all)."""
    if c_make_encoder is None:  # pragma: no cover - CPython always has it
        return canonical_json
    markers: dict[int, Any] = {}
    encode = c_make_encoder(
        markers,
        json.JSONEncoder().default,
        encode_basestring,
        None,
        ":",
        ",",
        True,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan
    )

    def encoded(value: Any) -> str:
        try:
            return "".join(encode(value, 0))
        except BaseException:
            markers.clear()  # left over by a failed call; would read as a circular reference
            raise

    return encoded


def _custom_id_of(line: bytes) -> str:
    """The custom_id of an accepted request's line."""
    try:
        custom_id = msgspec.json.decode(line, type=_RequestId).custom_id
    except msgspec.DecodeError:  # e.g. NaN in the body, which json accepts and msgspec not
        custom_id = json.loads(line)["custom_id"]
    return str(custom_id)


def _lines_at(lines: Iterable[bytes], positions: Iterator[int]) -> Iterator[bytes]:
    """The lines at the given 0-based positions (in increasing order)."""
    wanted = next(positions, None)
    for position, line in enumerate(lines):
        if position == wanted:
            yield line
            wanted = next(positions, None)


def _detached(request: dict[str, Any]) -> dict[str, Any]:
    """A copy of a request that shares no dict with the caller's (kept for inline sending)."""
    copy = dict(request)
    copy["body"] = dict(copy["body"])
    return copy


def prepare_requests(
    requests: Iterable[Any],
    *,
    endpoint: str,
    model: str | None,
    assign_custom_ids: bool = False,
    source: str = "requests",
    max_requests_per_job: int | None = None,
    inline: bool = True,
) -> InlineInput | FileInput | ShardedInput:
    """Validate inline requests, streaming them.

    Up to the API's inline limit (and ``max_requests_per_job``) they stay inline; beyond, they
    go to temporary JSONL files as they come, one per job of at most ``max_requests_per_job``
    requests (default and most 1,000,000) and 512 MB, so a generator of a million requests
    is never held in memory, and a list of them is not copied: each request is serialized once,
    and that line is both hashed and written.

    :param inline: False always writes files, even for a few requests (their results can
        then be joined with the input read back from the job's input files).
    """
    if isinstance(requests, str | bytes | Mapping) or not isinstance(requests, Iterable):
        raise MistralBatchInputError(
            f"{source} must be a list of {{'custom_id', 'body'}} objects, got {_kind(requests)}"
        )
    limit = max_requests_per_job or MAX_REQUESTS_PER_JOB
    inline_limit = min(MAX_INLINE_REQUESTS, limit) if inline else 0
    checker = _Checker(source, endpoint, model, assign_custom_ids, lines=False)
    kept: list[tuple[dict[str, Any], bytes]] = []  # while they may still go inline
    writer: _ShardWriter | None = None
    try:
        for position, item in enumerate(requests):
            checked = checker.check(item, position)
            if checked is None:
                continue
            if writer is not None:
                writer.add(checked[1])
                continue
            kept.append((_detached(checked[0]), checked[1]))
            if len(kept) > inline_limit:
                # Too many to send inline: from here on they go to files.
                writer = _ShardWriter("requests.jsonl", limit)
                for _, line in kept:
                    writer.add(line)
                kept = []
        if writer is not None:
            fingerprint = checker.finish(writer.lines)
        else:
            fingerprint = checker.finish(lambda: (line for _, line in kept))
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    if writer is None:
        return InlineInput([request for request, _ in kept], fingerprint)
    return writer.finish(fingerprint)


def prepare_file(
    path: Any,
    *,
    endpoint: str,
    model: str | None,
    assign_custom_ids: bool = False,
    max_requests_per_job: int | None = None,
) -> FileInput | ShardedInput:
    """Validate a JSONL file (a local path or an Airflow ``ObjectStoragePath``), streaming it.

    A local file that needs no change and fits one job is uploaded as it is. A remote one, one
    whose requests get assigned ids, or one over 512 MB is copied to temporary files while it
    is validated, one per job. A local file with more requests than one job takes is split
    by lines after it was validated.
    """
    limit = max_requests_per_job or MAX_REQUESTS_PER_JOB
    local = _local_path(path)
    name = Path(str(getattr(path, "name", "") or str(path))).name or "input.jsonl"
    if local is not None:
        if not local.is_file():
            raise MistralBatchInputError(
                f"input_path {str(path)!r} does not exist or is not a file"
            )
        size = local.stat().st_size
        if not assign_custom_ids and size <= MAX_FILE_BYTES:
            with local.open("rb") as handle:
                count, fingerprint = _validate_stream(handle, name, endpoint, model, False, None)
            if count <= limit:
                return FileInput(local, count, size, fingerprint, temporary=False, filename=name)
            return _split_lines(local, name, limit, fingerprint)
    elif not path.is_file():
        raise MistralBatchInputError(f"input_path {str(path)!r} does not exist or is not a file")
    opener = local.open if local is not None else path.open
    writer = _ShardWriter(name, limit)
    try:
        with opener("rb") as handle:
            _, fingerprint = _validate_stream(
                handle, name, endpoint, model, assign_custom_ids, writer
            )
    except BaseException:
        writer.discard()
        raise
    return writer.finish(fingerprint)


def _split_lines(path: Path, name: str, limit: int, fingerprint: str) -> FileInput | ShardedInput:
    """Copy a validated local file into shards of ``limit`` lines (blank lines were refused)."""
    writer = _ShardWriter(name, limit)
    try:
        with path.open("rb") as handle:
            for raw in handle:
                writer.add(raw if raw.endswith(b"\n") else raw + b"\n")
    except BaseException:
        writer.discard()
        raise
    return writer.finish(fingerprint)


def prepare_file_ids(file_ids: Any, *, endpoint: str, model: str | None) -> UploadedInput:
    """Check a list of already uploaded file ids."""
    if isinstance(file_ids, str) or not isinstance(file_ids, Iterable):
        raise MistralBatchInputError(
            f"input_files must be a list of file ids, got {_kind(file_ids)}"
        )
    ids = list(file_ids)
    if not ids:
        raise MistralBatchInputError("input_files is empty: give at least one file id")
    for position, file_id in enumerate(ids):
        if not isinstance(file_id, str) or not file_id.strip():
            raise MistralBatchInputError(
                f"input_files[{position}] must be a non-empty file id string, got {file_id!r}"
            )
    digest = hashlib.sha256(json.dumps([endpoint, model, ids]).encode()).hexdigest()
    return UploadedInput(ids, digest)


class _RequestId(msgspec.Struct):
    """The one field the results join needs of an input line; the body is skipped unparsed."""

    custom_id: Any = None


def requests_of_lines(
    lines: Iterable[str | bytes], *, with_body: bool = False
) -> Iterator[tuple[str, Any]]:
    """``(custom_id, body)`` of each request line of an input JSONL, in order, for joining
    results with their input. A line without a ``custom_id`` gets its 0-based position, as
    ``assign_custom_ids`` would have given it.

    :param with_body: parse and return each body; default False returns None for it, which
        reads a million lines several times faster.
    """
    for _, custom_id, body in numbered_requests_of_lines(lines, with_body=with_body):
        yield custom_id, body


def numbered_requests_of_lines(
    lines: Iterable[str | bytes], *, with_body: bool = False
) -> Iterator[tuple[int, str, Any]]:
    """:func:`requests_of_lines` with each request's line number (1-based, blank lines
    counted): ``(number, custom_id, body)``."""
    for position, line in enumerate(lines):
        if not line.strip():
            continue
        item: Any
        try:
            item = json.loads(line) if with_body else msgspec.json.decode(line, type=_RequestId)
        except msgspec.ValidationError:  # valid JSON, but not an object
            item = None
        except (ValueError, msgspec.DecodeError):
            raise MistralBatchInputError(
                f"input line {position + 1} is not valid JSON: cannot join results with it"
            ) from None
        if isinstance(item, _RequestId):
            custom_id, body = item.custom_id, None
        elif isinstance(item, Mapping):
            custom_id, body = item.get("custom_id"), item.get("body")
        else:
            raise MistralBatchInputError(
                f"input line {position + 1} is not a JSON object: cannot join results with it"
            )
        yield position + 1, (str(custom_id) if custom_id is not None else str(position)), body


def requests_of_path(path: Any, *, with_body: bool = False) -> Iterator[tuple[str, Any]]:
    """:func:`requests_of_lines` of a local JSONL path or an ``ObjectStoragePath``, streamed."""
    for _, custom_id, body in numbered_requests_of_path(path, with_body=with_body):
        yield custom_id, body


def numbered_requests_of_path(
    path: Any, *, with_body: bool = False
) -> Iterator[tuple[int, str, Any]]:
    """:func:`numbered_requests_of_lines` of a local JSONL path or an ``ObjectStoragePath``."""
    local = _local_path(path)
    opener = local.open if local is not None else path.open
    with opener("rb") as handle:
        yield from numbered_requests_of_lines(handle, with_body=with_body)


def unique_requests(
    requests: Iterable[tuple[str, Any]],
    places: Callable[[], Iterable[tuple[str, str]]],
    source: str,
) -> Iterator[tuple[str, Any]]:
    """The ``(custom_id, body)`` input of a results join as it comes, refused at its end if a
    custom_id repeats: a result line could not tell which of the requests it answers.

    :param places: the custom_ids again, in the same order, each with where it is
        (``requests[3]``, ``file <id> line 4``); read only when two ids may be the same.
    :param source: what the input is, to start the error with (e.g. the task id).
    :raises MistralBatchInputError: naming each repeat (the first 20) and where its first one
        is, once the input has ended.
    """
    ids = RepeatedIds()
    for request in requests:
        ids.add(request[0])
        yield request
    found: list[str] = []
    count = 0
    for custom_id, place, first in ids.repeats(places):
        count += 1
        if len(found) < MAX_REPORTED_PROBLEMS:
            found.append(f'{place}: custom_id "{custom_id}" repeats {first}')
    if count:
        raise MistralBatchInputError(
            f"{source}: results cannot be joined with an input whose custom_ids repeat "
            f"({plural(count, 'repeat')}):\n" + _listed(found, count)
        )


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the same request always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _validate_stream(
    handle: IO[bytes],
    name: str,
    endpoint: str,
    model: str | None,
    assign_ids: bool,
    writer: _ShardWriter | None,
) -> tuple[int, str]:
    checker = _Checker(name, endpoint, model, assign_ids, lines=True)
    for position, raw in enumerate(handle):
        text = raw.strip()
        if not text:
            checker.count += 1
            checker.problem(position, "empty line (remove blank lines from the JSONL)")
            continue
        try:
            item = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            checker.count += 1
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8 text"
            checker.problem(position, f"not valid JSON ({reason})")
            continue
        checked = checker.check(item, position)
        if checked is not None and writer is not None:
            writer.add(checked[1])
    if writer is not None:
        return checker.count, checker.finish(writer.lines)

    def reread() -> Iterator[bytes]:
        handle.seek(0)
        return _lines_at(handle, checker.accepted_positions())

    return checker.count, checker.finish(reread)


def _local_path(path: Any) -> Path | None:
    """A local filesystem path, or None for an object-storage path."""
    if isinstance(path, str):
        if "://" in path and not path.startswith("file://"):
            raise MistralBatchInputError(
                f"input_path {path!r} is a URL: pass an airflow.sdk.ObjectStoragePath for "
                "remote storage"
            )
        return Path(path.removeprefix("file://"))
    # An ObjectStoragePath has a protocol; on some Airflow releases it is also a pathlib.Path,
    # so the protocol decides, not the class.
    protocol = getattr(path, "protocol", None)
    if protocol is not None:
        protocols = protocol if isinstance(protocol, tuple | list) else (protocol,)
        if {"file", "local"} & set(protocols):
            return Path(str(getattr(path, "path", path)))
        return None
    if isinstance(path, os.PathLike):
        return Path(os.fspath(path))
    raise MistralBatchInputError(
        f"input_path must be a path or an ObjectStoragePath, got {_kind(path)}"
    )


def _kind(value: Any) -> str:
    """How a value reads in an error message: ``an object``, ``a list``, ``null``..."""
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__
