"""The rows of a results file: one JSON object per request, and the status of each.

Each row is ``{"custom_id", "status", "ok", "status_code", "response", "output", "error"}``
(plus ``"request"`` when asked). ``status`` is one of (common-ai's vocabulary, where the
meaning is the same):

- ``success``: the API answered (no error, a 2xx status) and the answer is what the task
  asked for (with an output type: its text parses and validates);
- ``error``: the API said the request failed (its error, whichever shape, is ``error``);
- ``invalid_output``: the API answered, but the answer's text does not parse or validate
  against the output type (``error`` says why);
- ``missing``: no result file has a line for the request;
- ``expired`` / ``cancelled``: no line either, and the request's job ended
  TIMEOUT_EXCEEDED / CANCELLED.

``ok`` is ``status == "success"`` (kept for readers of earlier files); ``response`` is the
body of an answer (success or invalid_output) as the API sent it, else null; ``output`` is
the answer's text (text output) or its validated value (typed output) on a success row, else
null (and null on every row when no output was asked for, as for embeddings).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec
from pydantic_core import to_json

from airflow_provider_mistral_batch.models import BatchJobStatus

SUCCESS: Final = "success"
ERROR: Final = "error"
INVALID_OUTPUT: Final = "invalid_output"
MISSING: Final = "missing"
EXPIRED: Final = "expired"
CANCELLED: Final = "cancelled"
#: Every row status, in the order counts are given.
STATUSES: Final = (SUCCESS, ERROR, INVALID_OUTPUT, MISSING, EXPIRED, CANCELLED)
#: The statuses of a request no result line answers.
UNANSWERED: Final = (MISSING, EXPIRED, CANCELLED)
#: The statuses of a row the API answered (its tokens were spent and are counted).
ANSWERED: Final = (SUCCESS, INVALID_OUTPUT)

#: The error of a request that has no line in any result file.
NO_RESULT: Final = "no result returned"
_UNANSWERED_ERRORS: Final = {
    MISSING: NO_RESULT,
    EXPIRED: f"{NO_RESULT}: the job ended TIMEOUT_EXCEEDED",
    CANCELLED: f"{NO_RESULT}: the job ended CANCELLED",
}

_encode = msgspec.json.encode


def unanswered_status(job_status: BatchJobStatus) -> str:
    """The status of a request of a job that ended ``job_status`` and has no result line:
    ``expired`` (TIMEOUT_EXCEEDED), ``cancelled`` (CANCELLED), else ``missing``."""
    if job_status is BatchJobStatus.TIMEOUT_EXCEEDED:
        return EXPIRED
    if job_status is BatchJobStatus.CANCELLED:
        return CANCELLED
    return MISSING


def answer_row(
    custom_id: str | None,
    status_code: int | None,
    body: bytes,
    output: bytes | None = None,
    problem: str | None = None,
) -> bytes:
    """The row of an answer: ``success`` with ``output`` (JSON bytes, or None), or
    ``invalid_output`` with the ``problem`` of its text."""
    # Built from bytes: a million successes are copied without building their bodies.
    if problem is None:
        status, error = b'"success","ok":true', b"null"
    else:
        status, error, output = b'"invalid_output","ok":false', _encode(problem), None
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
            b',"output":',
            b"null" if output is None else output,
            b',"error":',
            error,
            b"}\n",
        )
    )


def error_row(custom_id: str | None, status_code: int | None, error: str | None) -> bytes:
    """The row of a request the API says failed."""
    return _no_answer_row(custom_id, ERROR, status_code, error)


def unanswered_row(custom_id: str, status: str = MISSING) -> bytes:
    """The row of a request no result file answers: ``status`` is one of :data:`UNANSWERED`."""
    return _no_answer_row(custom_id, status, None, _UNANSWERED_ERRORS[status])


def _no_answer_row(
    custom_id: str | None, status: str, status_code: int | None, error: str | None
) -> bytes:
    row = {
        "custom_id": custom_id,
        "status": status,
        "ok": False,
        "status_code": status_code,
        "response": None,
        "output": None,
        "error": error,
    }
    return to_json(row) + b"\n"


def with_request(line: bytes, body: bytes | None) -> bytes:
    """A row with the request's body (JSON bytes, or None) added as ``"request"``."""
    # Every spilled line is a JSON object this module wrote, ending with "}\n".
    return b"".join((line[:-2], b',"request":', b"null" if body is None else body, b"}\n"))


def zero_counts() -> dict[str, int]:
    """A count of rows for each status, all 0, in the order of :data:`STATUSES`."""
    return dict.fromkeys(STATUSES, 0)


def describe_counts(counts: Mapping[str, int]) -> str:
    """``7 success, 1 error, 2 invalid_output``: the success count, then each other nonzero
    count, as the log lines say them."""
    parts = [f"{counts.get(SUCCESS, 0):,} {SUCCESS}"]
    parts.extend(f"{counts[status]:,} {status}" for status in STATUSES[1:] if counts.get(status, 0))
    return ", ".join(parts)


__all__ = [
    "ANSWERED",
    "CANCELLED",
    "ERROR",
    "EXPIRED",
    "INVALID_OUTPUT",
    "MISSING",
    "NO_RESULT",
    "STATUSES",
    "SUCCESS",
    "UNANSWERED",
    "answer_row",
    "describe_counts",
    "error_row",
    "unanswered_row",
    "unanswered_status",
    "with_request",
    "zero_counts",
]
