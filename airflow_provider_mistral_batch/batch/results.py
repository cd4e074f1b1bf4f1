"""Join a job's result files to its input: one JSONL line per request, in input order.

The output and error files of a batch job come in any order and may lack requests (a
cancelled or timed-out job). :func:`write_results` parses each result line once, appends the
normalized line to a spill file and its place (custom_id, offset, length) to a temporary
SQLite database: the join happens on disk, so memory stays flat for 1,000,000 requests. It
then writes one line per input request, in input order, to a local path or an Airflow
``ObjectStoragePath``, under a temporary name renamed only when the file is complete.

Each written line is one JSON object ``{"custom_id", "ok", "status_code", "response",
"error"}`` (plus ``"request"`` when asked): ``ok`` means no error and a 2xx status,
``response`` is the body of a success (else null), ``error`` the failure's message whichever
shape the API used (see :attr:`BatchResultLine.error_message`).

A result line is refused (a :class:`MistralBatchError` naming it) when it is not UTF-8, not
JSON (``NaN`` and ``Infinity`` included), not an object of the result line's shape, has
neither a ``response`` nor an ``error``, or nests arrays and objects deeper than Python's
recursion limit lets a parser go (about 1,000 levels with the default limit). The hook's
``iter_results`` reads lines by the same rules (:func:`parse_result_line`).
"""

from __future__ import annotations

import _thread
import contextlib
import json
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, TypeVar

import msgspec
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError, to_json

from airflow_provider_mistral_batch.exceptions import MistralBatchError, MistralBatchInputError
from airflow_provider_mistral_batch.hooks.http.streams import UndecodableLineError, replacing_file
from airflow_provider_mistral_batch.models import BatchResultLine

#: Missing custom_ids named in a summary (and in the hook's warning).
MAX_NAMED_MISSING: Final = 20
#: The error of a request that has no line in any result file.
NO_RESULT: Final = "no result returned"
#: Usage keys a summary always has, 0 when no successful body reported them.
TOKEN_KEYS: Final = ("prompt_tokens", "completion_tokens", "total_tokens")

# Rows per executemany, and bytes gathered before each write (spill buffer, destination).
_BATCH_ROWS: Final = 2_000
_CHUNK: Final = 1024 * 1024

# The usage objects of one successful body: chat, embeddings, FIM... report "usage", OCR
# "usage_info". Each is summed key by key when it is an object.
_Usage = tuple[Any, ...]


@dataclass(frozen=True)
class ResultsSummary:
    """What :func:`write_results` wrote.

    :param path: the destination, as a string.
    :param lines: lines written.
    :param succeeded: lines with ``ok`` true.
    :param failed: lines with ``ok`` false, missing requests included.
    :param missing: input requests with no line in any result file (0 when the input is
        unknown).
    :param missing_ids: the first 20 of them, in input order.
    :param unexpected: result lines whose custom_id is not in the input (written after the
        input's lines), plus result lines that repeat a custom_id (not written).
    :param input_known: whether the input was given (order and missing requests known).
    :param usage: every numeric ``usage``/``usage_info`` field of the successful responses,
        summed by key; ``prompt_tokens``, ``completion_tokens`` and ``total_tokens`` always.
    """

    path: str
    lines: int
    succeeded: int
    failed: int
    missing: int
    missing_ids: list[str]
    unexpected: int
    input_known: bool
    usage: dict[str, int | float]

    def as_xcom(self) -> dict[str, Any]:
        """A small JSON-safe dict of the outcome, for XCom."""
        return {
            "results_path": self.path,
            "lines": self.lines,
            "succeeded": self.succeeded,
            "failed": self.failed,
            # None: without the input, missing requests cannot be counted.
            "missing_requests": self.missing if self.input_known else None,
            "missing_ids": list(self.missing_ids),
            "usage": dict(self.usage),
        }


def check_writable(destination: str | os.PathLike[str] | Any) -> None:
    """Refuse a destination the results could not be written to, before any job exists.

    A tiny probe file is written beside the destination and deleted again; the destination
    itself is never created.

    :param destination: a local path or an ``ObjectStoragePath``.
    :raises MistralBatchInputError: naming the path: a local folder that does not exist, an
        object storage scheme with no filesystem, a missing bucket or folder, a destination
        that is a folder, or a place this process may not write to.
    """
    if is_object_storage(destination):
        _check_object_storage(destination)
    else:
        _check_local(Path(os.fspath(destination)))


def write_results(
    result_lines: Iterable[str],
    destination: str | os.PathLike[str] | Any,
    *,
    requests: Iterable[tuple[str, Mapping[str, Any] | None]] | None = None,
    include_request: bool = False,
) -> ResultsSummary:
    """Write one joined JSONL line per request to ``destination``; return the counts.

    Nothing is held whole in memory (results and input are joined on disk, in a temporary
    folder). The destination appears only once complete; on any error it is left untouched
    and the temporary file is removed. A custom_id seen in several result lines keeps its
    first line.

    :param result_lines: the raw lines of the output and error files, chained, in any order.
    :param destination: a local path or an ``ObjectStoragePath``; replaced if it exists.
    :param requests: the input, in order, as ``(custom_id, body or None)`` with unique ids;
        default None: lines in file order, missing requests unknown.
    :param include_request: add ``"request": body`` to each line; default False. Needs
        ``requests``.
    :raises MistralBatchError: a line that is not a batch result line, naming its number
        (counted across the chained files).
    """
    if include_request and requests is None:
        raise MistralBatchInputError("include_request=True needs the input requests")
    with tempfile.TemporaryDirectory(prefix="mistral-results-") as workdir:
        join = _Join(Path(workdir), keep_bodies=include_request)
        try:
            with _atomic_writer(destination) as out:
                # The input first: an input refused as it is read (a repeated custom_id, say)
                # fails before any result file is read.
                if requests is not None:
                    join.add_requests(requests)
                join.add_results(result_lines)
                written = join.write(out)
        finally:
            join.close()
    return ResultsSummary(
        path=str(destination),
        lines=written.lines,
        succeeded=join.succeeded,
        failed=written.lines - join.succeeded,
        missing=written.missing,
        missing_ids=written.missing_ids,
        unexpected=written.unexpected,
        input_known=requests is not None,
        usage=join.usage,
    )


# ---------------------------------------------------------------------------- the join


@dataclass
class _Written:
    lines: int = 0
    missing: int = 0
    unexpected: int = 0
    missing_ids: list[str] = field(default_factory=list)


class _Join:
    """The on-disk join of result lines (by custom_id) and input requests (by position).

    Normalized result lines go to a spill file; SQLite keeps only where each one is, so its
    tables stay small. Rows are appended without an index and indexed once at the end (a
    sorted build is much faster than a million random inserts).
    """

    def __init__(self, workdir: Path, *, keep_bodies: bool) -> None:
        self._keep_bodies = keep_bodies
        self._spill = (workdir / "lines.jsonl").open("w+b", buffering=_CHUNK)
        self._db = sqlite3.connect(workdir / "join.sqlite3", isolation_level=None)
        # A throwaway database: no journal, no fsync, one transaction for all of it.
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "locking_mode=EXCLUSIVE"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute(
            "CREATE TABLE results (seq INTEGER PRIMARY KEY, custom_id TEXT, "
            "ok INTEGER NOT NULL, off INTEGER NOT NULL, len INTEGER NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE requests (position INTEGER PRIMARY KEY, custom_id TEXT NOT NULL, "
            "body BLOB)"
        )
        self._db.execute("BEGIN")
        self._has_requests = False
        self._read_at = 0  # where the spill file's buffered reader stands
        self.kept = 0
        self.repeated = 0
        self.succeeded = 0
        self.usage: dict[str, int | float] = dict.fromkeys(TOKEN_KEYS, 0)

    def close(self) -> None:
        self._db.close()
        self._spill.close()

    def add_results(self, result_lines: Iterable[str]) -> None:
        """Parse, spill and index each result line; a repeated custom_id keeps its first."""
        insert = "INSERT INTO results VALUES (?, ?, ?, ?, ?)"
        spill = self._spill
        rows: list[tuple[int, str | None, int, int, int]] = []
        offset = number = 0
        try:
            for number, raw in enumerate(result_lines, start=1):
                custom_id, ok, line, usage = _normalize(raw, number)
                spill.write(line)
                rows.append((number, custom_id, ok, offset, len(line)))
                offset += len(line)
                if ok:
                    self.succeeded += 1
                    _add_usage(self.usage, usage)
                if len(rows) >= _BATCH_ROWS:
                    self._db.executemany(insert, rows)
                    rows = []
        except UndecodableLineError as exc:
            # Raised by the line source before the line: it is the one after the last read.
            raise MistralBatchError(
                f"result line {number + 1} is not a batch result line: {exc}"
            ) from None
        if rows:
            self._db.executemany(insert, rows)
        self._rewind()
        self.kept = number
        # Covering: the join finds where each line is from the index alone.
        self._db.execute("CREATE INDEX results_by_id ON results (custom_id, off, len)")
        self._drop_repeats()

    def _drop_repeats(self) -> None:
        """Keep only the first line of each custom_id; recount what is kept."""
        repeats = self._db.execute(
            "SELECT 1 FROM results WHERE custom_id IS NOT NULL GROUP BY custom_id "
            "HAVING count(*) > 1 LIMIT 1"
        ).fetchone()
        if repeats is None:
            return
        self.repeated = self._db.execute(
            "DELETE FROM results WHERE custom_id IS NOT NULL AND EXISTS (SELECT 1 FROM results "
            "e WHERE e.custom_id = results.custom_id AND e.seq < results.seq)"
        ).rowcount
        self.kept -= self.repeated
        # Rare: sum again over the kept lines, in the same order, so the totals are exact.
        self.succeeded = 0
        self.usage = dict.fromkeys(TOKEN_KEYS, 0)
        kept = self._db.execute("SELECT off, len FROM results WHERE ok ORDER BY seq")
        for offset, length in kept:
            self.succeeded += 1
            _add_usage(self.usage, _usage_of_written(self._read(offset, length)))

    def add_requests(self, requests: Iterable[tuple[str, Mapping[str, Any] | None]]) -> None:
        """Store the input ids (and bodies when they are written) in order."""
        self._has_requests = True
        try:
            self._add_requests(requests)
        except UnicodeEncodeError as exc:
            # A lone surrogate: no UTF-8 file (nor the API's result lines) can hold it.
            raise MistralBatchInputError(
                f"an input request holds {exc.object!r}, which is not Unicode text: {exc.reason}"
            ) from None
        except PydanticSerializationError as exc:  # the same, in a body
            raise MistralBatchInputError(f"an input request cannot be written: {exc}") from None

    def _add_requests(self, requests: Iterable[tuple[str, Mapping[str, Any] | None]]) -> None:
        if self._keep_bodies or not self._has_json_each():
            insert = "INSERT INTO requests (custom_id, body) VALUES (?, ?)"
            rows: list[tuple[str, bytes | None]] = []
            for custom_id, body in requests:
                text = to_json(body) if self._keep_bodies and body is not None else None
                rows.append((custom_id, text))
                if len(rows) >= _BATCH_ROWS:
                    self._db.executemany(insert, rows)
                    rows = []
            if rows:
                self._db.executemany(insert, rows)
            return
        # Ids alone go in as one JSON array per batch: several times faster than executemany.
        ids: list[str] = []
        for custom_id, _ in requests:
            ids.append(custom_id)
            if len(ids) >= _BATCH_ROWS:
                self._insert_ids(ids)
                ids = []
        if ids:
            self._insert_ids(ids)

    def _insert_ids(self, ids: list[str]) -> None:
        encoded = _encode(ids)
        # SQLite's JSON functions end a string at U+0000: a batch that may hold one (an
        # escaped backslash before "u0000" looks the same) goes in row by row instead.
        if b"\\u0000" in encoded:
            self._db.executemany(
                "INSERT INTO requests (custom_id) VALUES (?)", [(each,) for each in ids]
            )
            return
        self._db.execute(
            "INSERT INTO requests (custom_id) SELECT value FROM json_each(?) ORDER BY key",
            (encoded,),
        )

    def _has_json_each(self) -> bool:
        # Built into SQLite since 3.38; an optional extension before.
        try:
            self._db.execute("SELECT count(*) FROM json_each('[1]')").fetchone()
        except sqlite3.OperationalError:
            return False
        return True

    def write(self, out: IO[bytes]) -> _Written:
        """Write every line: the input's in input order, then results the input lacks."""
        self._db.execute("COMMIT")
        self._rewind()
        written = _Written(unexpected=self.repeated)
        if not self._has_requests:
            written.lines = self.kept
            if not self.repeated:  # the spill file is the output
                shutil.copyfileobj(self._spill, out, _CHUNK)
                return written
            with _Chunks(out) as sink:
                for offset, length in self._db.execute("SELECT off, len FROM results ORDER BY seq"):
                    sink.add(self._read(offset, length))
            return written

        with_request = self._keep_bodies
        matched = 0
        joined = self._db.execute(
            "SELECT q.custom_id, q.body, r.off, r.len FROM requests q "
            "LEFT JOIN results r ON r.custom_id = q.custom_id ORDER BY q.position"
        )
        with _Chunks(out) as sink:
            for custom_id, body, offset, length in joined:
                if offset is None:
                    written.missing += 1
                    if len(written.missing_ids) < MAX_NAMED_MISSING:
                        written.missing_ids.append(custom_id)
                    line = _missing_line(custom_id)
                else:
                    matched += 1
                    line = self._read(offset, length)
                sink.add(_with_request(line, body) if with_request else line)
            written.lines = matched + written.missing
            if matched < self.kept:
                extra = self._db.execute(
                    "SELECT r.off, r.len FROM results r WHERE NOT EXISTS "
                    "(SELECT 1 FROM requests q WHERE q.custom_id = r.custom_id) ORDER BY r.seq"
                )
                for offset, length in extra:
                    line = self._read(offset, length)
                    written.lines += 1
                    written.unexpected += 1
                    sink.add(_with_request(line, None) if with_request else line)
        return written

    def _rewind(self) -> None:
        self._spill.flush()
        self._spill.seek(0)
        self._read_at = 0

    def _read(self, offset: int, length: int) -> bytes:
        """One spilled line: buffered when reading on in order, else one positioned read."""
        if offset == self._read_at:
            self._read_at += length
            return self._spill.read(length)
        return os.pread(self._spill.fileno(), length, offset)


class _Chunks:
    """Gathers lines and writes them to a file about a megabyte at a time."""

    def __init__(self, out: IO[bytes]) -> None:
        self._out = out
        self._parts: list[bytes] = []
        self._size = 0

    def __enter__(self) -> _Chunks:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is None:
            self._flush()

    def add(self, line: bytes) -> None:
        self._parts.append(line)
        self._size += len(line)
        if self._size >= _CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._parts:
            self._out.write(b"".join(self._parts))
            self._parts = []
            self._size = 0


# ---------------------------------------------------------------------------- result lines


class _FastResponse(msgspec.Struct):
    status_code: int
    body: msgspec.Raw = msgspec.Raw()


class _FastLine(msgspec.Struct):
    """A result line read without building its body: the body stays raw JSON."""

    id: str | None = None
    custom_id: str | None = None
    response: _FastResponse | None = None
    error: msgspec.Raw = msgspec.Raw()


class _RawBody(msgspec.Struct):
    body: msgspec.Raw = msgspec.Raw()


class _RawResponse(msgspec.Struct):
    """Only the body of a line's response, raw, whatever the rest holds."""

    response: _RawBody | None = None


class _WrittenLine(msgspec.Struct):
    """A line this module wrote: only its ``response`` (a success's body), raw."""

    response: msgspec.Raw = msgspec.Raw()


class _BodyUsage(msgspec.Struct):
    usage: Any = None
    usage_info: Any = None


_read_fast = msgspec.json.Decoder(_FastLine).decode
_read_raw_body = msgspec.json.Decoder(_RawResponse).decode
_read_written = msgspec.json.Decoder(_WrittenLine).decode
_read_usage = msgspec.json.Decoder(_BodyUsage).decode
# Reads the lines pydantic's parser finds too deep (past 200 levels); a number past the
# float range is read as infinity, as pydantic reads it.
_read_any = msgspec.json.Decoder(float_hook=float).decode
_encode = msgspec.json.encode
_NULL: Final = msgspec.Raw(b"null")
_TOO_DEEP: Final = "arrays and objects nested deeper than Python's recursion limit lets a parser go"
_T = TypeVar("_T")


def parse_result_line(raw: str, where: str) -> BatchResultLine:
    """One line of an output or error file as a :class:`BatchResultLine`.

    The one reading of a result line that both the hook's ``iter_results`` and the results
    join use for any line the join's fast path does not take.

    :param raw: the line, without its line end.
    :param where: names the line in errors, e.g. ``result line 12``.
    :raises MistralBatchError: ``<where> is not a batch result line: <why>``: not JSON
        (``NaN`` and ``Infinity`` included), not an object of the result line's shape,
        neither a ``response`` nor an ``error``, or nested deeper than a parser can go.
    """
    try:
        result = BatchResultLine.model_validate_json(raw)
    except ValidationError as exc:
        reason = exc.errors(include_url=False, include_input=False)[0]["msg"]
        if "recursion limit exceeded" not in reason:
            raise _not_a_result_line(where, reason) from None
        # Deeper than pydantic's parser goes (200 levels); msgspec, which reads the join's
        # successes, goes as deep as the recursion limit lets it.
        return _parse_deep(raw, where)
    # pydantic's parser reads NaN and Infinity, which are not JSON; a line without either
    # word (nearly all) needs no second look.
    if "NaN" in raw or "Infinity" in raw:
        _refuse_constants(raw, where)
    return result


def _parse_deep(raw: str, where: str) -> BatchResultLine:
    try:
        document = _decode_deep(_read_any, raw)
    except RecursionError:
        raise _not_a_result_line(where, _TOO_DEEP) from None
    except msgspec.MsgspecError as exc:
        raise _not_a_result_line(where, f"Invalid JSON: {exc}") from None
    try:
        return BatchResultLine.model_validate(document)
    except ValidationError as exc:
        reason = exc.errors(include_url=False, include_input=False)[0]["msg"]
        raise _not_a_result_line(where, reason) from None


def _decode_deep(decode: Callable[[str], _T], raw: str) -> _T:
    """``decode(raw)`` for a line nested deeper than pydantic's parser goes (200 levels).

    msgspec goes as deep as the recursion limit lets it from where it is called, and the
    join's fast path reads successes with it wherever it stands. So that whether a line is
    accepted never depends on who reads it, a deep line is always read from a new thread:
    its stack is shallower than any the fast path runs on, so it reads every line the fast
    path read, and decides alone on the others.

    :raises RecursionError: nested too deep.
    """
    outcome: list[tuple[bool, Any]] = []
    finished = _thread.allocate_lock()
    finished.acquire()

    def run() -> None:  # the thread's only Python frame
        try:
            outcome.append((True, decode(raw)))
        except BaseException as exc:  # raised again in the caller's thread
            outcome.append((False, exc))
        finally:
            finished.release()

    _thread.start_new_thread(run, ())
    finished.acquire()
    done, value = outcome[0]
    if not done:
        raise value
    result: _T = value
    return result


def _refuse_constants(raw: str, where: str) -> None:
    """Refuse ``NaN``, ``Infinity`` and ``-Infinity`` outside strings (pydantic reads them)."""

    def refuse(constant: str) -> Any:
        raise _not_a_result_line(where, f"{constant} is not a JSON number")

    try:
        json.loads(raw, parse_constant=refuse)
    except ValueError:
        # pydantic's parser read the line, so Python's JSON parser does too; in case one
        # reads something the other does not, pydantic's reading stands.
        return


def _not_a_result_line(where: str, reason: str) -> MistralBatchError:
    return MistralBatchError(f"{where} is not a batch result line: {reason}")


def _normalize(raw: str, number: int) -> tuple[str | None, int, bytes, _Usage]:
    """A result line as (custom_id, ok, the line to write, the usage objects of its body).

    A success is copied without building its body: its raw JSON goes into the written line
    as is, and only ``usage``/``usage_info`` are read from it. Any other line (a failure, or
    a shape the strict reader refuses) goes through :func:`parse_result_line`.
    """
    try:
        fast = _read_fast(raw)
    except (msgspec.MsgspecError, RecursionError):
        return _normalize_model(raw, number)
    response = fast.response
    error = fast.error
    # The test of BatchResultLine.succeeded: no error, and a response with a 2xx status.
    if response is None or not 200 <= response.status_code < 300 or (error and error != _NULL):
        return _normalize_model(raw, number)
    body = response.body
    usage: _Usage = ()
    if body and body != _NULL:
        try:
            found = _read_usage(body)
        except (msgspec.MsgspecError, RecursionError):  # not an object, or out-of-range numbers
            pass
        else:
            usage = (found.usage, found.usage_info)
    line = b"".join(  # _success_line, inline: this runs once per line of a million
        (
            b'{"custom_id":',
            _encode(fast.custom_id),
            b',"ok":true,"status_code":%d,"response":' % response.status_code,
            bytes(body) if body else b"null",
            b',"error":null}\n',
        )
    )
    return fast.custom_id, 1, line, usage


def _normalize_model(raw: str, number: int) -> tuple[str | None, int, bytes, _Usage]:
    """:func:`_normalize` through :func:`parse_result_line` (any line shape)."""
    where = f"result line {number}"
    result = parse_result_line(raw, where)
    response = result.response
    if result.succeeded and response is not None:
        body = _raw_body(raw, response.body, where)
        line = _success_line(result.custom_id, response.status_code, body)
        return result.custom_id, 1, line, _usage_in(body)
    line = _json_line(
        {
            "custom_id": result.custom_id,
            "ok": False,
            "status_code": response.status_code if response is not None else None,
            "response": None,
            "error": result.error_message,
        }
    )
    return result.custom_id, 0, line, ()


def _raw_body(raw: str, body: Any, where: str) -> msgspec.Raw:
    """A success's body as sent, as the fast path copies it: pydantic would write numbers
    past the float range as Infinity, and refuses to write bodies nested past 255 levels."""
    try:
        try:
            found = _read_raw_body(raw).response
        except RecursionError:  # a line the fast path could not read, nor this stack
            found = _decode_deep(_read_raw_body, raw).response
    except (msgspec.MsgspecError, RecursionError):
        found = None
    if found is not None:
        return found.body
    try:
        return msgspec.Raw(to_json(body))
    except PydanticSerializationError as exc:
        raise _not_a_result_line(where, f"its body cannot be written as JSON: {exc}") from None


def _success_line(custom_id: str | None, status_code: int, body: msgspec.Raw) -> bytes:
    return b"".join(
        (
            b'{"custom_id":',
            _encode(custom_id),
            b',"ok":true,"status_code":%d,"response":' % status_code,
            bytes(body) if body else b"null",
            b',"error":null}\n',
        )
    )


def _usage_of_written(line: bytes) -> _Usage:
    """The usage objects of a success line this module wrote."""
    try:
        body = _read_written(line).response
    except RecursionError:  # as deep as the recursion limit allows: its usage is not read
        return ()
    return _usage_in(body)


def _usage_in(body: msgspec.Raw) -> _Usage:
    """The usage objects of a raw success body (none when it is not an object)."""
    if not body or body == _NULL:
        return ()
    try:
        found = _read_usage(body)
    except (msgspec.MsgspecError, RecursionError):
        return ()
    return found.usage, found.usage_info


def _add_usage(totals: dict[str, int | float], usage: _Usage) -> None:
    for part in usage:
        if type(part) is dict:
            for key, value in part.items():
                kind = type(value)  # exactly int or float: a bool is no count
                if kind is int or kind is float:
                    totals[key] = totals.get(key, 0) + value


def _json_line(value: dict[str, Any]) -> bytes:
    return to_json(value) + b"\n"


def _missing_line(custom_id: str) -> bytes:
    return _json_line(
        {
            "custom_id": custom_id,
            "ok": False,
            "status_code": None,
            "response": None,
            "error": NO_RESULT,
        }
    )


def _with_request(line: bytes, body: bytes | None) -> bytes:
    # Every spilled line is a JSON object this module wrote, ending with "}\n".
    return b"".join((line[:-2], b',"request":', b"null" if body is None else body, b"}\n"))


# ---------------------------------------------------------------------------- destinations


def is_object_storage(destination: Any) -> bool:
    """Whether ``destination`` is an ``ObjectStoragePath`` rather than a local path."""
    # An ObjectStoragePath (a UPath) has an ``fs`` property, its fsspec filesystem (looked up
    # on the class: reading it may fail). On Airflow 3.1 it is also os.PathLike, with an
    # fspath such as "s3://bucket/key", so it is told apart first.
    return not isinstance(destination, str | bytes) and hasattr(type(destination), "fs")


@contextlib.contextmanager
def _atomic_writer(destination: Any) -> Iterator[IO[bytes]]:
    """A file that becomes ``destination`` when the block ends without error."""
    if is_object_storage(destination):
        # Only a local path keeps the mode of the file it replaces: an object has none (who
        # may read it is the store's policy), and fsspec's file:// filesystem keeps none.
        temp = destination.parent / f".{destination.name}.{uuid.uuid4().hex}.part"
        try:
            with temp.open("wb") as handle:
                yield handle
            temp.rename(destination)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        return
    with replacing_file(Path(os.fspath(destination))) as handle:
        yield handle


def _check_local(path: Path) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise MistralBatchInputError(
            f"cannot write results to {path}: folder {folder} does not exist"
        )
    if path.is_dir():
        raise MistralBatchInputError(f"cannot write results to {path}: it is a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise MistralBatchInputError(f"cannot write results to {path}: {exc}") from None


def _check_object_storage(path: Any) -> None:
    try:
        path.fs  # noqa: B018 - resolving the filesystem fails for a scheme that has none
    except (ValueError, ImportError) as exc:
        raise MistralBatchInputError(
            f"cannot write results to {path}: no filesystem for its scheme ({exc})"
        ) from None
    probe = path.parent / f".{path.name}.{uuid.uuid4().hex}.probe"
    try:
        is_folder = path.is_dir()
        if not is_folder:
            # Object stores make "folders" as they write; a local filesystem refuses a
            # missing one, and both refuse a missing bucket.
            with probe.open("wb") as handle:
                handle.write(b"")
            probe.unlink()
    except (OSError, ValueError) as exc:
        parent = path.parent
        reason = f"{parent} does not exist" if _missing(parent) else str(exc) or repr(exc)
        raise MistralBatchInputError(f"cannot write results to {path}: {reason}") from None
    if is_folder:
        raise MistralBatchInputError(f"cannot write results to {path}: it is a folder")


def _missing(folder: Any) -> bool:
    try:
        return not folder.exists()
    except (OSError, ValueError):
        return False


__all__ = [
    "MAX_NAMED_MISSING",
    "NO_RESULT",
    "TOKEN_KEYS",
    "ResultsSummary",
    "check_writable",
    "is_object_storage",
    "parse_result_line",
    "write_results",
]
