"""The rows of a results file: one JSON object per request, and its three states.

Each row is ``{"custom_id", "status", "ok", "status_code", "response", "error"}`` (plus
``"request"`` when asked). ``status`` is one of:

- ``ok``: the API answered (no error, a 2xx status) and the answer passed the row check;
- ``failed``: the API said so (its error, whichever shape, is ``error``), or no result file
  has a line for the request (``"error": "no result returned"``);
- ``invalid``: the API answered, but the answer does not do what the task asked for: the
  optional row check (:data:`RowCheck`) named the problem, which is ``error``.

``ok`` is ``status == "ok"`` (kept for readers of earlier files); ``response`` is the body
of an answer (ok or invalid) as the API sent it, else null.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec
from pydantic_core import to_json

#: The error of a request that has no line in any result file.
NO_RESULT: Final = "no result returned"

#: Checks an answer of the API: given the row's custom_id and its response body (JSON
#: bytes), returns None when the answer does what the task asked for, else the problem, in
#: a few words (the row becomes ``invalid`` with that ``error``).
RowCheck = Callable[[str | None, bytes], str | None]

#: A row's status as the results join stores it.
FAILED: Final = 0
OK: Final = 1
INVALID: Final = 2

_encode = msgspec.json.encode


def answer_row(
    custom_id: str | None, status_code: int | None, body: bytes, problem: str | None = None
) -> bytes:
    """The row of an answer: ``ok``, or ``invalid`` with the row check's ``problem``."""
    # Built from bytes: a million successes are copied without building their bodies.
    if problem is None:
        status, error = b'"ok","ok":true', b"null"
    else:
        status, error = b'"invalid","ok":false', _encode(problem)
    return b"".join(
        (
            b'{"custom_id":',
            _encode(custom_id),
            b',"status":',
            status,
            b',"status_code":',
            b"null" if status_code is None else b"%d" % status_code,
            b',"response":',
            body,
            b',"error":',
            error,
            b"}\n",
        )
    )


def failed_row(custom_id: str | None, status_code: int | None, error: str | None) -> bytes:
    """The row of a failure the API reported (or of a request it never answered)."""
    row = {
        "custom_id": custom_id,
        "status": "failed",
        "ok": False,
        "status_code": status_code,
        "response": None,
        "error": error,
    }
    return to_json(row) + b"\n"


def missing_row(custom_id: str) -> bytes:
    """The row of a request no result file answers."""
    return failed_row(custom_id, None, NO_RESULT)


def with_request(line: bytes, body: bytes | None) -> bytes:
    """A row with the request's body (JSON bytes, or None) added as ``"request"``."""
    # Every spilled line is a JSON object this module wrote, ending with "}\n".
    return b"".join((line[:-2], b',"request":', b"null" if body is None else body, b"}\n"))


__all__ = [
    "FAILED",
    "INVALID",
    "NO_RESULT",
    "OK",
    "RowCheck",
    "answer_row",
    "failed_row",
    "missing_row",
    "with_request",
]
