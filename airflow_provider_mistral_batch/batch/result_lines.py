"""Read one line of a job's output or error file: the strict reading of a batch result line,
and the fast one the results join takes for a success (its body kept raw, never built).

A result line is refused (a :class:`MistralBatchError` naming it) when it is not UTF-8, not
JSON (``NaN`` and ``Infinity`` included), not an object of the result line's shape, has
neither a ``response`` nor an ``error``, or nests arrays and objects deeper than Python's
recursion limit lets a parser go (about 1,000 levels with the default limit). Both readings
take and refuse the same lines: :func:`iter_results` (typed lines) and the results join
(:mod:`.results`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeVar

import msgspec
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError, to_json

from airflow_provider_mistral_batch.exceptions import MistralBatchError
from airflow_provider_mistral_batch.hooks.http.streams import UndecodableLineError
from airflow_provider_mistral_batch.models import BatchResultLine

if TYPE_CHECKING:
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

# The usage objects of one answer's body: chat, embeddings, FIM... report "usage", OCR
# "usage_info". Each is summed key by key when it is an object.
Usage = tuple[Any, ...]


class ReadLine(NamedTuple):
    """One result line as the results join needs it.

    :param succeeded: no error and a 2xx status (:attr:`BatchResultLine.succeeded`).
    :param body: a success's body as sent, raw JSON (empty when it has none); empty for a
        failure.
    :param error: a failure's message, whichever shape the API used; None for a success.
    :param usage: the usage objects of a success's body.
    """

    custom_id: str | None
    succeeded: bool
    status_code: int | None
    body: msgspec.Raw
    error: str | None
    usage: Usage


def iter_results(hook: MistralBatchHook, file_id: str) -> Iterator[BatchResultLine]:
    """Stream a job's output or error file as typed result lines.

    Each line is a :class:`BatchResultLine`: ``custom_id``, ``response`` (status code and
    body), ``error``; ``succeeded`` and ``error_message`` read either shape of error. Lines
    are read by the same rules as the results join reads them.

    :param hook: reads the file (``iter_file_lines``: streamed, retried, resumed midway).
    :raises MistralBatchError: ``file <id> line <n> is not a batch result line: <why>``,
        ``n`` counting the file's non-blank lines.
    """
    try:
        for number, line in enumerate(hook.iter_file_lines(file_id), start=1):
            yield parse_result_line(line, f"file {file_id} line {number}")
    except UndecodableLineError as exc:
        raise MistralBatchError(
            f"file {file_id} line {exc.number} is not a batch result line: "
            f"not UTF-8 text: {exc.reason}"
        ) from None


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
    """A row the results join wrote: only its ``response`` (the answer's body), raw."""

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
_NULL: Final = msgspec.Raw(b"null")
_EMPTY: Final = msgspec.Raw()
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
    its stack (three frames) is no deeper than any the fast path runs on, so it reads every
    line the fast path read, and decides alone on the others.

    :raises RecursionError: nested too deep.
    """
    reader = _DeepReader(decode, raw)
    reader.start()
    reader.join()
    if reader.error is not None:
        raise reader.error
    result: _T = reader.value
    return result


class _DeepReader(threading.Thread):
    """Runs one decode on its own thread; what it gave or raised is kept for the caller."""

    def __init__(self, decode: Callable[[str], Any], raw: str) -> None:
        super().__init__(name="mistral-deep-result-line", daemon=True)
        self._decode = decode
        self._raw = raw
        self.value: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:  # the thread's third Python frame: decode runs right here
        try:
            self.value = self._decode(self._raw)
        except BaseException as exc:  # raised again in the caller's thread
            self.error = exc


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


def read_result_line(raw: str, number: int) -> ReadLine:
    """A result line as the results join reads it (``number`` names it in errors).

    A success is read without building its body: its raw JSON is kept as sent, and only
    ``usage``/``usage_info`` are read from it. Any other line (a failure, or a shape the
    strict reader refuses) goes through :func:`parse_result_line`.

    :raises MistralBatchError: ``result line <number> is not a batch result line: <why>``.
    """
    try:
        fast = _read_fast(raw)
    except (msgspec.MsgspecError, RecursionError):
        return _read_model(raw, number)
    response = fast.response
    error = fast.error
    # The test of BatchResultLine.succeeded: no error, and a response with a 2xx status.
    if response is None or not 200 <= response.status_code < 300 or (error and error != _NULL):
        return _read_model(raw, number)
    body = response.body
    usage: Usage = ()
    if body and body != _NULL:
        try:
            found = _read_usage(body)
        except (msgspec.MsgspecError, RecursionError):  # not an object, or out-of-range numbers
            pass
        else:
            usage = (found.usage, found.usage_info)
    return ReadLine(fast.custom_id, True, response.status_code, body, None, usage)


def _read_model(raw: str, number: int) -> ReadLine:
    """:func:`read_result_line` through :func:`parse_result_line` (any line shape)."""
    where = f"result line {number}"
    result = parse_result_line(raw, where)
    response = result.response
    if result.succeeded and response is not None:
        body = _raw_body(raw, response.body, where)
        return ReadLine(result.custom_id, True, response.status_code, body, None, _usage_in(body))
    status_code = response.status_code if response is not None else None
    return ReadLine(result.custom_id, False, status_code, _EMPTY, result.error_message, ())


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


def usage_of_row(line: bytes) -> Usage:
    """The usage objects of a row the results join wrote (of its ``response``)."""
    try:
        body = _read_written(line).response
    except RecursionError:  # as deep as the recursion limit allows: its usage is not read
        return ()
    return _usage_in(body)


def _usage_in(body: msgspec.Raw) -> Usage:
    """The usage objects of a raw success body (none when it is not an object)."""
    if not body or body == _NULL:
        return ()
    try:
        found = _read_usage(body)
    except (msgspec.MsgspecError, RecursionError):
        return ()
    return found.usage, found.usage_info


def add_usage(totals: dict[str, int | float], usage: Usage) -> None:
    """Add each number of ``usage`` to ``totals``, key by key."""
    for part in usage:
        if type(part) is dict:
            for key, value in part.items():
                kind = type(value)  # exactly int or float: a bool is no count
                if kind is int or kind is float:
                    totals[key] = totals.get(key, 0) + value


__all__ = [
    "ReadLine",
    "Usage",
    "add_usage",
    "iter_results",
    "parse_result_line",
    "read_result_line",
    "usage_of_row",
]
