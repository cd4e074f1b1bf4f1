"""Error bodies in the shapes the real API sends."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.exceptions import RequestValidationError

# (message, type, code) of the documented error body, by status code.
_STATUS_ERRORS: dict[int, tuple[str, str, str]] = {
    400: ("Bad request", "invalid_request_error", "3000"),
    401: ("Unauthorized", "unauthorized", "1000"),
    403: ("Forbidden", "forbidden", "1001"),
    404: ("Not found", "not_found", "3004"),
    408: ("Request timeout", "timeout", "3002"),
    409: ("Conflict", "conflict", "3003"),
    413: ("Request entity too large", "invalid_request_error", "3005"),
    422: ("Unprocessable entity", "invalid_request_error", "3001"),
    429: ("Rate limit exceeded", "rate_limited", "1300"),
    500: ("Internal server error", "internal_server_error", "5000"),
    502: ("Bad gateway", "bad_gateway", "5002"),
    503: ("Service unavailable", "service_unavailable", "5003"),
    504: ("Gateway timeout", "gateway_timeout", "5004"),
}


#: ``type`` and ``code`` of the real API's answer to a model it lacks (HTTP 400), as seen in
#: the wild and in the official Python SDK's tests: ``Invalid model: <name>``.
INVALID_MODEL = ("invalid_model", "1500")


def error_body(
    status_code: int,
    message: str | None = None,
    param: str | None = None,
    kind: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The documented error body ``{object, message, type, param, code}`` for a status.

    :param kind: ``(type, code)`` when they differ from the status's usual ones (e.g.
        :data:`INVALID_MODEL`); None uses the status's.
    """
    default_message, type_, code = _STATUS_ERRORS.get(
        status_code, ("Error", "api_error", str(status_code))
    )
    if kind is not None:
        type_, code = kind
    return {
        "object": "error",
        "message": message or default_message,
        "type": type_,
        "param": param,
        "code": code,
    }


def unauthorized_body() -> dict[str, Any]:
    """The 401 body seen in the wild: a message and a request id."""
    return {"message": "Unauthorized", "request_id": uuid.uuid4().hex}


class ApiError(Exception):
    """An error answered with the documented error body."""

    def __init__(
        self,
        status_code: int,
        message: str,
        param: str | None = None,
        kind: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.param = param
        self.kind = kind

    def body(self) -> dict[str, Any]:
        """The JSON body of this error."""
        return error_body(self.status_code, self.message, self.param, self.kind)


def not_found(kind: str, item_id: str) -> ApiError:
    """A 404 whose message names the missing id."""
    return ApiError(404, f"{kind} {item_id} not found", param=None)


def invalid(
    loc: tuple[str | int, ...],
    message: str,
    value: Any,
    type_: str,
    ctx: dict[str, Any] | None = None,
) -> Exception:
    """A 422 in FastAPI's ``{"detail": [...]}`` shape, for checks FastAPI cannot express.

    :param ctx: the error's ``ctx`` (pydantic adds one to some errors, e.g. ``expected`` of
        an enum); None leaves it out.
    """
    error: dict[str, Any] = {"type": type_, "loc": loc, "msg": message, "input": value}
    if ctx is not None:
        error["ctx"] = ctx
    return RequestValidationError([error])


def invalid_model(message: str) -> ApiError:
    """The 400 the API answers to a model it lacks."""
    return ApiError(400, message, param=None, kind=INVALID_MODEL)


__all__ = [
    "INVALID_MODEL",
    "ApiError",
    "error_body",
    "invalid",
    "invalid_model",
    "not_found",
    "unauthorized_body",
]
