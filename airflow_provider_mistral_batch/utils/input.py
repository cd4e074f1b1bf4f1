"""Validate batch input before anything is uploaded or created, with errors that name the line.

Each request must be a JSON object with an object ``body`` and a unique string ``custom_id``
(or, with ``assign_custom_ids=True``, requests without one get their 0-based position as id).
Counts and sizes are checked against the API's limits. A fingerprint of the validated input
(endpoint, model and every request) identifies it for reattaching on retry.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

from airflow_provider_mistral_batch.exceptions import MistralBatchInputError
from airflow_provider_mistral_batch.models import (
    MAX_FILE_BYTES,
    MAX_INLINE_REQUESTS,
    MAX_REQUESTS_PER_JOB,
)

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


PreparedInput = InlineInput | FileInput | UploadedInput


class _Checker:
    """Checks requests one by one, remembers ids and problems, hashes what it accepts."""

    def __init__(self, source: str, endpoint: str, model: str | None, assign_ids: bool) -> None:
        self.source = source
        self.assign_ids = assign_ids
        self.count = 0
        self.problems: list[str] = []
        self.problem_count = 0
        self._first_seen: dict[str, str] = {}
        self._hash = hashlib.sha256()
        self._hash.update(json.dumps([endpoint, model]).encode())

    def problem(self, where: str, text: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_REPORTED_PROBLEMS:
            separator = "" if where.startswith("[") else " "
            self.problems.append(f"{self.source}{separator}{where}: {text}")

    def check(self, item: Any, where: str, position: int) -> dict[str, Any] | None:
        """The request normalized to ``{"custom_id", "body"}`` (plus extra keys), or None."""
        self.count += 1
        if not isinstance(item, Mapping):
            self.problem(where, f"expected a JSON object, got {_kind(item)}")
            return None
        request = dict(item)
        body = request.get("body")
        if "body" not in request:
            self.problem(where, 'missing "body" (the request payload)')
            return None
        if not isinstance(body, Mapping):
            self.problem(where, f'"body" must be a JSON object, got {_kind(body)}')
            return None
        custom_id = request.get("custom_id")
        if custom_id is None:
            if not self.assign_ids:
                self.problem(
                    where,
                    'missing "custom_id" (give every request a unique one, or set '
                    "assign_custom_ids=True to use each request's position)",
                )
                return None
            custom_id = str(position)
        elif not isinstance(custom_id, str) or not custom_id:
            self.problem(where, f'"custom_id" must be a non-empty string, got {custom_id!r}')
            return None
        first = self._first_seen.get(custom_id)
        if first is not None:
            self.problem(where, f'custom_id "{custom_id}" repeats {first}')
            return None
        self._first_seen[custom_id] = where
        request["custom_id"] = custom_id
        request["body"] = dict(body)
        line = canonical_json(request)
        self._hash.update(line.encode())
        self._hash.update(b"\n")
        return request

    def finish(self) -> str:
        """The fingerprint, or the error listing every problem found."""
        if self.count == 0:
            raise MistralBatchInputError(f"{self.source}: no requests: the batch is empty")
        if self.count > MAX_REQUESTS_PER_JOB:
            # Listed first: with many line problems it would otherwise only be counted.
            self.problem_count += 1
            self.problems.insert(
                0,
                f"{self.source}: {self.count:,} requests; one batch job takes at most "
                f"{MAX_REQUESTS_PER_JOB:,}: split the input into several jobs",
            )
        if self.problem_count:
            more = self.problem_count - len(self.problems)
            tail = f"\n(and {more} more problems)" if more > 0 else ""
            raise MistralBatchInputError(
                f"invalid batch input ({self.problem_count} problems):\n"
                + "\n".join(self.problems)
                + tail
            )
        return self._hash.hexdigest()


def prepare_requests(
    requests: Iterable[Any],
    *,
    endpoint: str,
    model: str | None,
    assign_custom_ids: bool = False,
    source: str = "requests",
) -> InlineInput | FileInput:
    """Validate inline requests; more than the API's inline limit become a temporary JSONL."""
    if isinstance(requests, str | bytes | Mapping) or not isinstance(requests, Iterable):
        raise MistralBatchInputError(
            f"{source} must be a list of {{'custom_id', 'body'}} objects, got {_kind(requests)}"
        )
    checker = _Checker(source, endpoint, model, assign_custom_ids)
    accepted: list[dict[str, Any]] = []
    for position, item in enumerate(requests):
        request = checker.check(item, f"[{position}]", position)
        if request is not None:
            accepted.append(request)
    fingerprint = checker.finish()
    if len(accepted) <= MAX_INLINE_REQUESTS:
        return InlineInput(accepted, fingerprint)
    return _write_temporary_jsonl(accepted, fingerprint)


def prepare_file(
    path: Any,
    *,
    endpoint: str,
    model: str | None,
    assign_custom_ids: bool = False,
) -> FileInput:
    """Validate a JSONL file (a local path or an Airflow ``ObjectStoragePath``), streaming it.

    A local file that needs no change is uploaded as it is; a remote one, or one whose
    requests get assigned ids, is copied to a temporary file while it is validated.
    """
    local = _local_path(path)
    name = Path(str(getattr(path, "name", "") or str(path))).name or "input.jsonl"
    if local is not None:
        if not local.is_file():
            raise MistralBatchInputError(
                f"input_path {str(path)!r} does not exist or is not a file"
            )
        size = local.stat().st_size
        _check_size(name, size)
        if not assign_custom_ids:
            with local.open("rb") as handle:
                count, fingerprint = _validate_stream(handle, name, endpoint, model, False, None)
            return FileInput(local, count, size, fingerprint, temporary=False, filename=name)
    elif not path.is_file():
        raise MistralBatchInputError(f"input_path {str(path)!r} does not exist or is not a file")
    else:
        # Refuse an oversized remote file before copying it, when the store tells its size.
        remote_size = _reported_size(path)
        if remote_size is not None:
            _check_size(name, remote_size)
    opener = local.open if local is not None else path.open
    fd, tmp_name = tempfile.mkstemp(prefix="mistral-batch-input-", suffix=".jsonl")
    try:
        # The copy first, so its descriptor is closed even when opening the source fails.
        with os.fdopen(fd, "wb") as copy, opener("rb") as handle:
            count, fingerprint = _validate_stream(
                handle, name, endpoint, model, assign_custom_ids, copy
            )
        size = os.path.getsize(tmp_name)
        _check_size(name, size)
    except BaseException:
        os.unlink(tmp_name)
        raise
    return FileInput(Path(tmp_name), count, size, fingerprint, temporary=True, filename=name)


def _reported_size(path: Any) -> int | None:
    """The size a remote path's store reports, or None when it does not say."""
    try:
        size = path.stat().st_size
    except Exception:
        return None
    return size if isinstance(size, int) else None


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


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the same request always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _validate_stream(
    handle: IO[bytes],
    name: str,
    endpoint: str,
    model: str | None,
    assign_ids: bool,
    copy: IO[bytes] | None,
) -> tuple[int, str]:
    checker = _Checker(name, endpoint, model, assign_ids)
    for number, raw in enumerate(handle, start=1):
        where = f"line {number}"
        text = raw.strip()
        if not text:
            checker.count += 1
            checker.problem(where, "empty line (remove blank lines from the JSONL)")
            continue
        try:
            item = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            checker.count += 1
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "not UTF-8 text"
            checker.problem(where, f"not valid JSON ({reason})")
            continue
        request = checker.check(item, where, number - 1)
        if request is not None and copy is not None:
            copy.write(canonical_json(request).encode() + b"\n")
    return checker.count, checker.finish()


def _write_temporary_jsonl(requests: list[dict[str, Any]], fingerprint: str) -> FileInput:
    fd, tmp_name = tempfile.mkstemp(prefix="mistral-batch-requests-", suffix=".jsonl")
    with os.fdopen(fd, "wb") as handle:
        for request in requests:
            handle.write(canonical_json(request).encode() + b"\n")
    size = os.path.getsize(tmp_name)
    try:
        _check_size("requests", size)
    except MistralBatchInputError:
        os.unlink(tmp_name)
        raise
    return FileInput(
        Path(tmp_name), len(requests), size, fingerprint, temporary=True, filename="requests.jsonl"
    )


def _check_size(name: str, size: int) -> None:
    if size > MAX_FILE_BYTES:
        raise MistralBatchInputError(
            f"{name} is {size:,} bytes; the Files API takes at most {MAX_FILE_BYTES:,} bytes "
            "(512 MB) per file: split it into several files"
        )


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
