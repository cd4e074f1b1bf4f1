"""HTTP responses to provider errors: error statuses to exceptions (with ``Retry-After``),
success bodies to models."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, TypeVar

import httpx2
from pydantic import BaseModel, ValidationError

from airflow_provider_mistral_batch.exceptions import (
    MistralAPIError,
    MistralAuthenticationError,
    MistralBatchError,
    MistralNotFoundError,
    MistralRateLimitError,
    MistralServerError,
    MistralValidationError,
)
from airflow_provider_mistral_batch.utils.redact import bearer_token, redact

ModelT = TypeVar("ModelT", bound=BaseModel)
_MAX_MESSAGE_CHARS: Final = 1000
_RESOURCE_PATHS: Final = (
    (re.compile(r"^/v1/batch/jobs/([^/]+)"), "batch job"),
    (re.compile(r"^/v1/files/([^/]+)"), "file"),
)


def parse_response(model: type[ModelT], response: httpx2.Response) -> ModelT:
    """The body of a successful response as ``model``; a body of another shape is an error."""
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise MistralBatchError(
            f"unexpected response to {response.request.method} {response.request.url.path}: "
            f"{where}: {first['msg']} ({exc.error_count()} problems); is the connection's base "
            "URL the Mistral API?"
        ) from None


def raise_for_response(response: httpx2.Response) -> None:
    """Raise the matching :class:`MistralAPIError` when ``response`` is not a success.

    The server's message has the request's API key (and any bearer token) masked.

    The response body must already be read (call ``read()`` on a streamed response first).
    """
    if response.is_success:
        return
    status = response.status_code
    method = response.request.method
    path = response.request.url.path
    # A server or proxy may echo the Authorization header: the key never travels on.
    sent_key = bearer_token(response.request.headers.get("authorization"))
    message = redact(server_message(response), [sent_key])
    request_id = response.headers.get("x-request-id") or _body_field(response, "request_id")
    request_id = redact(request_id, [sent_key]) if request_id else None
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    error_class: type[MistralAPIError] = MistralAPIError
    if status in (401, 403):
        error_class = MistralAuthenticationError
        message = (
            f"the API key is missing or wrong, or not allowed to do this (server said: {message})"
        )
    elif status == 404:
        error_class = MistralNotFoundError
        message = f"{_resource_from_path(path)} was not found (server said: {message})"
    elif status in (400, 422):
        error_class = MistralValidationError
    elif status == 429:
        error_class = MistralRateLimitError
    elif status >= 500:
        error_class = MistralServerError
    raise error_class(
        status,
        message,
        method=method,
        path=path,
        request_id=request_id,
        retry_after=retry_after,
    )


def server_message(response: httpx2.Response) -> str:
    """The server's own message: its ``message`` or ``detail`` field, else the raw text."""
    payload = _json_body(response)
    if isinstance(payload, dict):
        for key in ("message", "detail", "error"):
            if payload.get(key):
                return _truncate(_flatten(payload[key]))
    text = response.text.strip()
    return _truncate(text) if text else response.reason_phrase or "no message"


def _flatten(value: Any) -> str:
    """Readable text from a message or a FastAPI-style ``detail`` list."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "; ".join(_flatten(item) for item in value)
    if isinstance(value, dict):
        if "msg" in value:
            loc = ".".join(str(part) for part in value.get("loc", ()) if part != "body")
            return f"{loc}: {value['msg']}" if loc else str(value["msg"])
        if "message" in value:
            return str(value["message"])
    return json.dumps(value, default=str)


def _json_body(response: httpx2.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _body_field(response: httpx2.Response, key: str) -> str | None:
    payload = _json_body(response)
    if isinstance(payload, dict) and isinstance(payload.get(key), str):
        return str(payload[key])
    return None


def _resource_from_path(path: str) -> str:
    for pattern, kind in _RESOURCE_PATHS:
        match = pattern.match(path)
        if match:
            return f"{kind} {match.group(1)!r}"
    return f"resource {path!r}"


def _truncate(text: str) -> str:
    return text if len(text) <= _MAX_MESSAGE_CHARS else text[:_MAX_MESSAGE_CHARS] + "..."


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())
