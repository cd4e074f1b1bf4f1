"""Read the requests of an input JSONL back, for joining results with them: each request's
``custom_id`` (and body when asked), in order, and the rule that ids must not repeat.

The input was checked when it was sent (:mod:`.input`); here it is only read again, from a
path or from the job's uploaded input files, after the job ended.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from airflow_provider_mistral_batch.batch.repeated_ids import RepeatedIds
from airflow_provider_mistral_batch.exceptions import MistralBatchInputError
from airflow_provider_mistral_batch.utils.paths import local_path, storage_path
from airflow_provider_mistral_batch.utils.wording import MAX_REPORTED_PROBLEMS, listed, plural

if TYPE_CHECKING:
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook


# An input request as the results join takes it: (custom_id, body, ...).
_Request = TypeVar("_Request", bound=tuple[Any, ...])


class _RequestId(msgspec.Struct):
    """The one field the results join needs of an input line; the body is skipped unparsed."""

    custom_id: Any = None


def custom_id_of(line: bytes) -> str:
    """The custom_id of a request line that the input checks accepted."""
    try:
        custom_id = msgspec.json.decode(line, type=_RequestId).custom_id
    except msgspec.DecodeError:  # e.g. NaN in the body, which json accepts and msgspec not
        custom_id = json.loads(line)["custom_id"]
    return str(custom_id)


def custom_id_or_none(line: str | bytes) -> str | None:
    """A request line's custom_id when it is a string; None when it has none, or the line is
    not a JSON object (a line read back as sent, to pick requests by id)."""
    custom_id: Any
    try:
        custom_id = msgspec.json.decode(line, type=_RequestId).custom_id
    except msgspec.MsgspecError:  # e.g. NaN in the body, which json reads and msgspec not
        try:
            custom_id = json.loads(line).get("custom_id")
        except (ValueError, AttributeError):
            return None
    return custom_id if isinstance(custom_id, str) else None


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
    """:func:`requests_of_lines` of an ``input_path`` (a local path, a URL or an
    ``ObjectStoragePath``, see :func:`..utils.paths.storage_path`), streamed."""
    for _, custom_id, body in numbered_requests_of_path(path, with_body=with_body):
        yield custom_id, body


def numbered_requests_of_path(
    path: Any, *, with_body: bool = False
) -> Iterator[tuple[int, str, Any]]:
    """:func:`numbered_requests_of_lines` of an ``input_path``."""
    place = storage_path(path, "input_path")
    local = local_path(place)
    opener = local.open if local is not None else place.open
    with opener("rb") as handle:
        yield from numbered_requests_of_lines(handle, with_body=with_body)


def unique_requests(
    requests: Iterable[_Request],
    places: Callable[[], Iterable[tuple[str, str]]],
    source: str,
) -> Iterator[_Request]:
    """The ``(custom_id, body, ...)`` input of a results join as it comes, refused at its end
    if a custom_id repeats: a result line could not tell which of the requests it answers.

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
            f"({plural(count, 'repeat')}):\n" + listed(found, count)
        )


def requests_of_files(
    hook: MistralBatchHook, file_ids: Iterable[str], *, with_body: bool
) -> Iterator[tuple[str, Any]]:
    """``(custom_id, body)`` of the request lines of uploaded input files, streamed in order."""
    for file_id in file_ids:
        yield from requests_of_lines(hook.iter_file_lines(file_id), with_body=with_body)


__all__ = [
    "custom_id_of",
    "custom_id_or_none",
    "numbered_requests_of_lines",
    "numbered_requests_of_path",
    "requests_of_files",
    "requests_of_lines",
    "requests_of_path",
    "unique_requests",
]
