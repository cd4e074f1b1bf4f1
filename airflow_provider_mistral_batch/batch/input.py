"""Batch input into JSONL for the API: each request checked before anything is uploaded or
created, with errors that name the line.

Each request must be a JSON object with an object ``body`` and a unique string ``custom_id``
(or, with ``assign_custom_ids=True``, requests without one get their 0-based position as id).
An input larger than one job takes (``max_requests_per_job``, at most 1,000,000 requests, or
512 MB) is split into shards (:mod:`.shards`) in the same streaming pass, one JSONL file per
job. A fingerprint of the checked input (endpoint, model and every request) identifies it for
reattaching on retry.

A task with a structured ``output_type`` gives the chat ``response_format`` to add to every
request body that has none (one that sets its own keeps it); the bodies are checked, hashed
and written with it, so the fingerprint covers the schema asked for.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from airflow_provider_mistral_batch.batch.repeated_ids import RepeatedIds
from airflow_provider_mistral_batch.batch.request_lines import custom_id_of
from airflow_provider_mistral_batch.batch.shards import Shard, ShardWriter, split_lines
from airflow_provider_mistral_batch.exceptions import MistralBatchInputError
from airflow_provider_mistral_batch.models import (
    MAX_FILE_BYTES,
    MAX_INLINE_REQUESTS,
    MAX_REQUESTS_PER_JOB,
)
from airflow_provider_mistral_batch.utils.paths import local_path, storage_path
from airflow_provider_mistral_batch.utils.wording import MAX_REPORTED_PROBLEMS, kind_of, listed

#: Writes one request as canonical JSON (see :func:`canonical_json`), made once: building a
#: JSONEncoder per request (what ``json.dumps`` with options does) costs about 2 µs a request.
_CANONICAL: Final = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True
)
#: Stands for the added ``response_format`` while a line is written, then replaced by the
#: directive's JSON in its own key order: sorted keys would reorder the schema's properties,
#: and a model writes its answer's fields in the order the schema gives them.
_DIRECTIVE_MARK: Final = "\ue000response_format added by the operator\ue000"
_DIRECTIVE_MARK_JSON: Final = _CANONICAL.encode(_DIRECTIVE_MARK)


@dataclass(frozen=True)
class InlineInput:
    """Requests small enough to send inline with the create-job call."""

    requests: list[dict[str, Any]]
    fingerprint: str
    own_response_formats: int = 0

    @property
    def request_count(self) -> int:
        return len(self.requests)


@dataclass(frozen=True)
class FileInput:
    """A validated JSONL file to upload.

    :param path: the file to upload (the user's own file, or a temporary copy).
    :param temporary: whether ``path`` is a copy this provider made and must delete.
    :param own_response_formats: requests whose body sets its own ``response_format``, kept
        instead of the one the task's ``output_type`` adds (0 when it adds none).
    """

    path: Path
    request_count: int
    size: int
    fingerprint: str
    temporary: bool
    filename: str
    own_response_formats: int = 0


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
    own_response_formats: int = 0

    @property
    def request_count(self) -> int:
        return sum(shard.request_count for shard in self.shards)


PreparedInput = InlineInput | FileInput | UploadedInput | ShardedInput


def temporary_files(prepared: PreparedInput) -> list[Path]:
    """The files this provider made for ``prepared`` and must delete once its jobs exist."""
    files = prepared.shards if isinstance(prepared, ShardedInput) else [prepared]
    return [f.path for f in files if isinstance(f, FileInput) and f.temporary]


class _Checker:
    """Checks requests one by one: remembers problems, hashes what it accepts and gives each
    accepted request's canonical JSONL line, serialized once for the fingerprint and the file.
    Repeated custom_ids are found by :class:`RepeatedIds`, which reads the accepted lines back
    only when two ids may be the same.

    :param lines: name places as file lines (``line 3``) instead of positions (``[2]``).
    :param response_format: added to each body that has no ``response_format`` of its own;
        None: bodies are sent as given.
    """

    def __init__(
        self,
        source: str,
        endpoint: str,
        model: str | None,
        assign_ids: bool,
        *,
        lines: bool,
        response_format: Mapping[str, Any] | None = None,
    ) -> None:
        self.source = source
        self.assign_ids = assign_ids
        self.count = 0
        self.problem_count = 0
        #: Bodies that set their own response_format (kept) while one is added to the others.
        self.own_response_formats = 0
        # The directive and its JSON in its own key order, made once.
        self._directive = (
            None
            if response_format is None
            else (
                response_format,
                json.dumps(
                    response_format, separators=(",", ":"), ensure_ascii=False, allow_nan=True
                ),
            )
        )
        self._lines = lines
        # The first listed problems, (position, message), in input order.
        self._problems: list[tuple[int, str]] = []
        # Positions refused (in order): the others are the accepted requests, as written.
        self._refused = array("q")
        self._ids = RepeatedIds()
        self._hash = hashlib.sha256()
        self._hash.update(json.dumps([endpoint, model]).encode())
        self._encode = _CANONICAL.encode

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
        copy with its ``custom_id``, a plain ``body`` dict and the added ``response_format``)
        and its line, or None."""
        self.count += 1
        if type(item) is dict:
            request: dict[str, Any] = item
        elif isinstance(item, Mapping):
            request = dict(item)
        else:
            self.problem(position, f"expected a JSON object, got {kind_of(item)}")
            return None
        if "body" not in request:
            self.problem(position, 'missing "body" (the request payload)')
            return None
        body = request["body"]
        if type(body) is not dict and not isinstance(body, Mapping):
            self.problem(position, f'"body" must be a JSON object, got {kind_of(body)}')
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
        directive = self._directive
        if directive is not None and "response_format" in body:
            self.own_response_formats += 1
            directive = None
        if assigned or type(body) is not dict or directive is not None:
            if request is item:
                request = dict(item)
            request["custom_id"] = custom_id
            request["body"] = dict(body)
            if directive is not None:
                request["body"]["response_format"] = _DIRECTIVE_MARK
        try:
            text = self._encode(request)
        except (TypeError, ValueError) as exc:  # e.g. a set, a cycle, a lone surrogate
            self.problem(position, f"cannot be written as JSON ({exc})")
            return None
        if directive is not None:
            request["body"]["response_format"] = directive[0]
            if text.count(_DIRECTIVE_MARK_JSON) == 1:
                text = text.replace(_DIRECTIVE_MARK_JSON, directive[1])
            else:  # the user's own text has the mark: sorted keys, but never a wrong line
                text = self._encode(request)
        line = (text + "\n").encode()
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
                + listed([message for _, message in self._problems], self.problem_count)
            )
        return self._hash.hexdigest()

    def _name_repeats(self, accepted_lines: Callable[[], Iterable[bytes]]) -> None:
        """Refuse each accepted request whose custom_id an earlier one has, naming that one,
        and list the problems in input order again."""

        def read_back() -> Iterator[tuple[str, int]]:
            accepted = zip(self.accepted_positions(), accepted_lines(), strict=True)
            return ((custom_id_of(line), position) for position, line in accepted)

        found: list[tuple[int, str]] = []
        for custom_id, position, earlier in self._ids.repeats(read_back):
            self.problem_count += 1
            if len(found) < MAX_REPORTED_PROBLEMS:
                text = f'custom_id "{custom_id}" repeats {self._where(earlier)}'
                found.append((position, self._message(position, text)))
        if found:
            merged = sorted(self._problems + found, key=lambda problem: problem[0])
            self._problems = merged[:MAX_REPORTED_PROBLEMS]


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
    response_format: Mapping[str, Any] | None = None,
) -> InlineInput | FileInput | ShardedInput:
    """Validate inline requests, streaming them.

    Up to the API's inline limit (and ``max_requests_per_job``) they stay inline; beyond, they
    go to temporary JSONL files as they come, one per job of at most ``max_requests_per_job``
    requests (default and most 1,000,000) and 512 MB, so a generator of a million requests
    is never held in memory, and a list of them is not copied: each request is serialized once,
    and that line is both hashed and written.

    :param inline: False always writes files, even for a few requests (their results can
        then be joined with the input read back from the job's input files).
    :param response_format: the chat ``response_format`` to add to each body without one
        (see :class:`_Checker`); default None: bodies as given.
    """
    if isinstance(requests, str | bytes | Mapping) or not isinstance(requests, Iterable):
        raise MistralBatchInputError(
            f"{source} must be a list of {{'custom_id', 'body'}} objects, got {kind_of(requests)}"
        )
    limit = max_requests_per_job or MAX_REQUESTS_PER_JOB
    inline_limit = min(MAX_INLINE_REQUESTS, limit) if inline else 0
    checker = _Checker(
        source, endpoint, model, assign_custom_ids, lines=False, response_format=response_format
    )
    kept: list[tuple[dict[str, Any], bytes]] = []  # while they may still go inline
    writer: ShardWriter | None = None
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
                writer = ShardWriter("requests.jsonl", limit)
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
    own = checker.own_response_formats
    if writer is None:
        return InlineInput([request for request, _ in kept], fingerprint, own)
    return _as_files(writer.finish(), fingerprint, own)


def prepare_file(
    path: Any,
    *,
    endpoint: str,
    model: str | None,
    assign_custom_ids: bool = False,
    max_requests_per_job: int | None = None,
    response_format: Mapping[str, Any] | None = None,
) -> FileInput | ShardedInput:
    """Validate a JSONL file, streaming it.

    A local file that needs no change and fits one job is uploaded as it is. A remote one, one
    whose requests get assigned ids or a ``response_format``, or one over 512 MB is copied to
    temporary files while it is validated, one per job. A local file with more requests than
    one job takes is split by lines after it was validated.

    :param path: a local path, a URL (``file://``, ``s3://``...) or an Airflow
        ``ObjectStoragePath`` (see :func:`..utils.paths.storage_path`).
    """
    limit = max_requests_per_job or MAX_REQUESTS_PER_JOB
    place = storage_path(path, "input_path")
    local = local_path(place)
    name = Path(str(getattr(place, "name", "") or str(place))).name or "input.jsonl"
    if local is not None:
        if not local.is_file():
            raise MistralBatchInputError(
                f"input_path {str(path)!r} does not exist or is not a file"
            )
        size = local.stat().st_size
        if not assign_custom_ids and response_format is None and size <= MAX_FILE_BYTES:
            with local.open("rb") as handle:
                checker = _Checker(name, endpoint, model, False, lines=True)
                count, fingerprint = _validate_stream(handle, checker, None)
            if count <= limit:
                return FileInput(local, count, size, fingerprint, temporary=False, filename=name)
            return _as_files(split_lines(local, name, limit), fingerprint)
    elif not place.is_file():
        raise MistralBatchInputError(f"input_path {str(path)!r} does not exist or is not a file")
    opener = local.open if local is not None else place.open
    writer = ShardWriter(name, limit)
    try:
        with opener("rb") as handle:
            checker = _Checker(
                name,
                endpoint,
                model,
                assign_custom_ids,
                lines=True,
                response_format=response_format,
            )
            _, fingerprint = _validate_stream(handle, checker, writer)
    except BaseException:
        writer.discard()
        raise
    return _as_files(writer.finish(), fingerprint, checker.own_response_formats)


def _as_files(
    shards: list[Shard], fingerprint: str, own_response_formats: int = 0
) -> FileInput | ShardedInput:
    """The written file, or the shards when there are several."""
    files = [
        FileInput(
            shard.path,
            shard.request_count,
            shard.size,
            fingerprint,
            temporary=True,
            filename=shard.filename,
            own_response_formats=own_response_formats if len(shards) == 1 else 0,
        )
        for shard in shards
    ]
    if len(files) == 1:
        return files[0]
    return ShardedInput(files, fingerprint, own_response_formats)


def prepare_file_ids(file_ids: Any, *, endpoint: str, model: str | None) -> UploadedInput:
    """Check a list of already uploaded file ids."""
    if isinstance(file_ids, str) or not isinstance(file_ids, Iterable):
        raise MistralBatchInputError(
            f"input_files must be a list of file ids, got {kind_of(file_ids)}"
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


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the same request always gives the same text."""
    return _CANONICAL.encode(value)


def _validate_stream(
    handle: IO[bytes], checker: _Checker, writer: ShardWriter | None
) -> tuple[int, str]:
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
