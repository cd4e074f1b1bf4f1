"""The on-disk join of result rows (by custom_id) and input requests (by position).

Each result line's row goes to a spill file, and SQLite keeps only where each row is (custom
id, offset, length), so its tables stay small and memory stays flat for 1,000,000 requests.
Rows are then written in input order; requests no result line answers get a ``missing``
row (``expired`` or ``cancelled`` when the input says their job ended so).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import msgspec
from pydantic_core import PydanticSerializationError, to_json

from airflow_provider_mistral_batch.batch.output_spec import OutputSpec
from airflow_provider_mistral_batch.batch.result_lines import (
    Usage,
    add_usage,
    read_result_line,
    usage_of_row,
)
from airflow_provider_mistral_batch.batch.result_rows import (
    ANSWERED,
    ERROR,
    INVALID_OUTPUT,
    MISSING,
    STATUSES,
    SUCCESS,
    UNANSWERED,
    answer_row,
    error_row,
    unanswered_row,
    with_request,
    zero_counts,
)
from airflow_provider_mistral_batch.exceptions import MistralBatchError, MistralBatchInputError
from airflow_provider_mistral_batch.hooks.http.streams import UndecodableLineError

#: Missing custom_ids named in a summary (and in the log's warning).
MAX_NAMED_MISSING: Final = 20
#: Usage keys a summary always has, 0 when no answer reported them.
TOKEN_KEYS: Final = ("prompt_tokens", "completion_tokens", "total_tokens")

#: One input request: ``(custom_id, body or None)``, or ``(custom_id, body or None, status)``
#: where ``status`` is the row of the request when no result line answers it (``missing``,
#: ``expired`` or ``cancelled``: what its job's end says; ``missing`` when not given).
InputRequest = tuple[str, Mapping[str, Any] | None] | tuple[str, Mapping[str, Any] | None, str]

# Rows per executemany, and bytes gathered before each write (spill buffer, destination).
_BATCH_ROWS: Final = 2_000
_CHUNK: Final = 1024 * 1024
# A row's status as SQLite stores it: its place in STATUSES.
_CODE: Final = {status: code for code, status in enumerate(STATUSES)}
_SUCCESS: Final = _CODE[SUCCESS]
_ERROR: Final = _CODE[ERROR]
_INVALID_OUTPUT: Final = _CODE[INVALID_OUTPUT]
_MISSING: Final = _CODE[MISSING]
_ANSWERED_CODES: Final = tuple(_CODE[status] for status in ANSWERED)


def _unanswered_code(request: InputRequest) -> int | None:
    """The code of a request's unanswered status, None for missing (or not given)."""
    if len(request) < 3:
        return None
    status = request[2]
    if status not in UNANSWERED:
        raise MistralBatchInputError(
            f"request {request[0]!r}: {status!r} is not a status of an unanswered request "
            f"({', '.join(UNANSWERED)})"
        )
    return None if status == MISSING else _CODE[status]


@dataclass
class Written:
    """What :meth:`ResultsJoin.write` wrote."""

    lines: int = 0
    #: Input requests with no result line (missing, expired or cancelled rows).
    missing: int = 0
    unexpected: int = 0
    missing_ids: list[str] = field(default_factory=list)


class ResultsJoin:
    """The on-disk join of result lines (by custom_id) and input requests (by position).

    The row of each result line goes to a spill file; SQLite keeps only where each one is,
    so its tables stay small. Rows are appended without an index and indexed once at the end
    (a sorted build is much faster than a million random inserts).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        keep_bodies: bool,
        output: OutputSpec | None,
        superseded: bool = False,
    ) -> None:
        """:param superseded: repeated lines are older rounds' answers, replaced on purpose
        (resubmit rounds): the usage still sums them (the API billed each answer)."""
        self._keep_bodies = keep_bodies
        self._output = output
        self._superseded = superseded
        self._spill = (workdir / "lines.jsonl").open("w+b", buffering=_CHUNK)
        self._db = sqlite3.connect(workdir / "join.sqlite3", isolation_level=None)
        # A throwaway database: no journal, no fsync, one transaction for all of it.
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "locking_mode=EXCLUSIVE"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute(
            "CREATE TABLE results (seq INTEGER PRIMARY KEY, custom_id TEXT, "
            "status INTEGER NOT NULL, off INTEGER NOT NULL, len INTEGER NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE requests (position INTEGER PRIMARY KEY, custom_id TEXT NOT NULL, "
            "body BLOB, unanswered INTEGER)"
        )
        # Requests whose newest job ended without success after an older one answered them
        # (a resubmit round's TIMEOUT_EXCEEDED): its status wins over the older lines.
        self._db.execute(
            "CREATE TABLE newest (custom_id TEXT PRIMARY KEY, unanswered INTEGER NOT NULL)"
        )
        self._db.execute("BEGIN")
        self._has_requests = False
        self._has_newest = False
        self._newest_lines = 0  # the first lines read are those of the newest jobs
        self._read_at = 0  # where the spill file's buffered reader stands
        self.kept = 0
        self.repeated = 0
        #: Rows written of each status (the input's unanswered ones once :meth:`write` ran).
        self.counts = zero_counts()
        self.usage: dict[str, int | float] = dict.fromkeys(TOKEN_KEYS, 0)

    def close(self) -> None:
        self._db.close()
        self._spill.close()

    def add_newest(self, requests: Iterable[tuple[str, str]]) -> None:
        """Store ``(custom_id, unanswered status)`` of the requests of jobs whose rows are
        final (see :meth:`add_results`' ``newest_lines``): such a request's row is its line
        there, else that status, never an older line."""
        rows = ((custom_id, _CODE[status]) for custom_id, status in requests)
        self._db.executemany("INSERT OR REPLACE INTO newest VALUES (?, ?)", rows)
        self._has_newest = True

    def add_results(self, result_lines: Iterable[str], newest_lines: Iterable[str] = ()) -> None:
        """Read, spill and index each result line's row; a repeated custom_id keeps its first.

        :param newest_lines: the result lines of the jobs :meth:`add_newest` stored the
            requests of, read first.
        """
        self._newest_lines = 0

        def chained() -> Iterator[str]:
            for raw in newest_lines:
                self._newest_lines += 1
                yield raw
            yield from result_lines

        self._add_results(chained())

    def _add_results(self, result_lines: Iterable[str]) -> None:
        insert = "INSERT INTO results VALUES (?, ?, ?, ?, ?)"
        spill = self._spill
        counts = [0] * len(STATUSES)
        rows: list[tuple[int, str | None, int, int, int]] = []
        offset = number = 0
        try:
            for number, raw in enumerate(result_lines, start=1):
                custom_id, status, line, usage = self._row(raw, number)
                spill.write(line)
                rows.append((number, custom_id, status, offset, len(line)))
                offset += len(line)
                counts[status] += 1
                if usage:
                    add_usage(self.usage, usage)
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
        self.counts = dict(zip(STATUSES, counts, strict=True))
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
        # Rare: count and sum again over the kept lines, in the same order, so totals are exact.
        self.counts = zero_counts()
        for code, count in self._db.execute("SELECT status, count(*) FROM results GROUP BY 1"):
            self.counts[STATUSES[code]] = count
        if self._superseded:
            return  # every answer was billed: the usage sums every line, as read
        self.usage = dict.fromkeys(TOKEN_KEYS, 0)
        answered = self._db.execute(
            "SELECT off, len FROM results WHERE status IN (?, ?) ORDER BY seq", _ANSWERED_CODES
        )
        for offset, length in answered:
            add_usage(self.usage, usage_of_row(self._read(offset, length)))

    def _row(self, raw: str, number: int) -> tuple[str | None, int, bytes, Usage]:
        """A result line's ``(custom_id, status code, row, usage objects)``; usage only for
        an answer (success or invalid_output)."""
        read = read_result_line(raw, number)
        custom_id = read.custom_id
        if not read.succeeded:
            return custom_id, _ERROR, error_row(custom_id, read.status_code, read.error), ()
        body = bytes(read.body) if read.body else b"null"
        spec = self._output
        if spec is None:  # the fast path: the body is copied, never built
            return custom_id, _SUCCESS, answer_row(custom_id, read.status_code, body), read.usage
        output, problem = spec.check_answer(body)
        row = answer_row(custom_id, read.status_code, body, output, problem)
        return custom_id, _SUCCESS if problem is None else _INVALID_OUTPUT, row, read.usage

    def add_requests(self, requests: Iterable[InputRequest]) -> None:
        """Store the input ids (and bodies when they are written, and the status of a request
        no result line answers when given) in order."""
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

    def _add_requests(self, requests: Iterable[InputRequest]) -> None:
        # The unanswered status is stored as its code, NULL for missing (the usual case).
        if self._keep_bodies or not self._has_json_each():
            insert = "INSERT INTO requests (custom_id, body, unanswered) VALUES (?, ?, ?)"
            rows: list[tuple[str, bytes | None, int | None]] = []
            for request in requests:
                body = request[1]
                text = to_json(body) if self._keep_bodies and body is not None else None
                rows.append((request[0], text, _unanswered_code(request)))
                if len(rows) >= _BATCH_ROWS:
                    self._db.executemany(insert, rows)
                    rows = []
            if rows:
                self._db.executemany(insert, rows)
            return
        # Ids alone go in as one JSON array per batch (of requests with the same unanswered
        # status, which changes only from one job's requests to the next): several times
        # faster than executemany.
        ids: list[str] = []
        batch_code: int | None = None
        for request in requests:
            code = _unanswered_code(request) if len(request) > 2 else None
            if code != batch_code or len(ids) >= _BATCH_ROWS:
                if ids:
                    self._insert_ids(ids, batch_code)
                    ids = []
                batch_code = code
            ids.append(request[0])
        if ids:
            self._insert_ids(ids, batch_code)

    def _insert_ids(self, ids: list[str], unanswered: int | None) -> None:
        encoded = msgspec.json.encode(ids)
        # SQLite's JSON functions end a string at U+0000: a batch that may hold one (an
        # escaped backslash before "u0000" looks the same) goes in row by row instead.
        if b"\\u0000" in encoded:
            self._db.executemany(
                "INSERT INTO requests (custom_id, unanswered) VALUES (?, ?)",
                [(each, unanswered) for each in ids],
            )
            return
        self._db.execute(
            "INSERT INTO requests (custom_id, unanswered) SELECT value, ? FROM json_each(?) "
            "ORDER BY key",
            (unanswered, encoded),
        )

    def _has_json_each(self) -> bool:
        # Built into SQLite since 3.38; an optional extension before.
        try:
            self._db.execute("SELECT count(*) FROM json_each('[1]')").fetchone()
        except sqlite3.OperationalError:
            return False
        return True

    def write(self, out: IO[bytes]) -> Written:
        """Write every line: the input's in input order, then results the input lacks."""
        self._db.execute("COMMIT")
        self._rewind()
        written = Written(unexpected=self.repeated)
        if not self._has_requests:
            written.lines = self.kept
            if not self.repeated:  # the spill file is the output
                shutil.copyfileobj(self._spill, out, _CHUNK)
                return written
            with _Chunks(out) as sink:
                for offset, length in self._db.execute("SELECT off, len FROM results ORDER BY seq"):
                    sink.add(self._read(offset, length))
            return written

        add_request = self._keep_bodies
        matched = 0
        if self._has_newest:
            joined = self._db.execute(
                "SELECT q.custom_id, q.body, q.unanswered, r.off, r.len, r.seq, r.status, "
                "n.unanswered FROM requests q LEFT JOIN results r ON r.custom_id = q.custom_id "
                "LEFT JOIN newest n ON n.custom_id = q.custom_id ORDER BY q.position"
            )
        else:  # the usual case: no third table to look up
            joined = self._db.execute(
                "SELECT q.custom_id, q.body, q.unanswered, r.off, r.len, NULL, NULL, NULL "
                "FROM requests q LEFT JOIN results r ON r.custom_id = q.custom_id "
                "ORDER BY q.position"
            )
        unanswered = [0] * len(STATUSES)
        with _Chunks(out) as sink:
            for custom_id, body, code, offset, length, seq, status, newest in joined:
                if newest is not None and (offset is None or seq > self._newest_lines):
                    # The newest job that carried it has no line for it: its status is the
                    # row, the older line is not.
                    if offset is not None:
                        self.counts[STATUSES[status]] -= 1
                    offset, code = None, newest
                if offset is None:
                    written.missing += 1
                    if len(written.missing_ids) < MAX_NAMED_MISSING:
                        written.missing_ids.append(custom_id)
                    code = _MISSING if code is None else code
                    unanswered[code] += 1
                    line = unanswered_row(custom_id, STATUSES[code])
                else:
                    matched += 1
                    line = self._read(offset, length)
                sink.add(with_request(line, body) if add_request else line)
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
                    sink.add(with_request(line, None) if add_request else line)
        for code, count in enumerate(unanswered):
            if count:
                self.counts[STATUSES[code]] += count
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


__all__ = ["MAX_NAMED_MISSING", "TOKEN_KEYS", "InputRequest", "ResultsJoin", "Written"]
