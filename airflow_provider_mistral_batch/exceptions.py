"""Exceptions raised by this provider, and which of them stop retries.

A :class:`MistralBatchFatalError` (an ``AirflowFailException``) fails the task without
retries: a retry cannot change the outcome. Every other error lets the task's retries apply.
Every API error carries the HTTP status code and the server's own message, never the API key
or any request header.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException
from pydantic import ValidationError

from airflow_provider_mistral_batch.utils.compat import AirflowFailException


class MistralBatchError(AirflowException):
    """Base class of every error this provider raises; the task's retries apply."""


class MistralBatchFatalError(MistralBatchError, AirflowFailException):
    """The task fails without retries: a retry cannot change the outcome."""


class MistralBatchJobError(MistralBatchError):
    """The batch job ended without success, or waiting for it failed.

    Retries apply: a retry reattaches to a job that is still running or succeeded, and
    creates a new one otherwise.
    """


class MistralBatchJobFatalError(MistralBatchJobError, MistralBatchFatalError):
    """The batch job ended in a way no retry can change: CANCELLED, too many failed requests
    in a SUCCESS job, or cancelled when the wait's deadline passed."""


class MistralAPIError(MistralBatchError):
    """The Mistral API answered with an error status.

    :param status_code: HTTP status code of the response.
    :param message: the server's message (its ``message`` or ``detail`` field).
    :param method: HTTP method of the request.
    :param path: URL path of the request (no query string, no host).
    :param request_id: the server's request id, when it sent one.
    :param retry_after: seconds the server asked to wait (``Retry-After``), when it did.
    :param note: a sentence added to the message (e.g. that a request may have taken effect).
    """

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        method: str = "",
        path: str = "",
        request_id: str | None = None,
        retry_after: float | None = None,
        note: str | None = None,
    ) -> None:
        # AirflowException types status_code as HTTPStatus; API codes may be ones it lacks.
        self.status_code = status_code  # type: ignore[assignment]
        self.retry_after = retry_after
        self.message = message
        self.method = method
        self.path = path
        self.request_id = request_id
        self.note = note
        where = f" on {method} {path}" if method and path else ""
        rid = f" (request id {request_id})" if request_id else ""
        tail = f" {note}" if note else ""
        super().__init__(f"Mistral API error {status_code}{where}: {message}{rid}{tail}")

    def with_note(self, note: str) -> MistralAPIError:
        """The same error (same class and fields) with ``note`` added to its message."""
        return type(self)(
            self.status_code,
            self.message,
            method=self.method,
            path=self.path,
            request_id=self.request_id,
            retry_after=self.retry_after,
            note=note,
        )

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only arguments do not survive the default pickling of exceptions.
        fields = (self.method, self.path, self.request_id, self.retry_after, self.note)
        return (_rebuild_api_error, (type(self), self.status_code, self.message, *fields))


def _rebuild_api_error(
    cls: type[MistralAPIError],
    status_code: int,
    message: str,
    method: str,
    path: str,
    request_id: str | None,
    retry_after: float | None,
    note: str | None = None,
) -> MistralAPIError:
    return cls(
        status_code,
        message,
        method=method,
        path=path,
        request_id=request_id,
        retry_after=retry_after,
        note=note,
    )


class MistralAuthenticationError(MistralAPIError):
    """401/403: the API key is missing, wrong or not allowed to do this."""


class MistralNotFoundError(MistralAPIError):
    """404: the file or job id does not exist (or was deleted)."""


class MistralValidationError(MistralAPIError):
    """400/422: the server rejected the request body or parameters."""


class MistralRateLimitError(MistralAPIError):
    """429: too many requests; retried by the hook until its attempts run out."""


class MistralServerError(MistralAPIError):
    """5xx: the server failed; retried by the hook until its attempts run out."""


class MistralConnectionError(MistralBatchError):
    """The API could not be reached, or the connection broke or timed out, on every attempt."""


class MistralBatchInputError(MistralBatchFatalError, ValueError):
    """The input given to the provider is invalid; nothing was sent to the API (no retries)."""


def describe_error(exc: BaseException | None) -> str:
    """A short description of an error for logs (never includes headers)."""
    if exc is None:
        return "unknown error"
    if isinstance(exc, MistralAPIError):
        return f"HTTP {exc.status_code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def validation_problems(exc: ValidationError) -> str:
    """pydantic's errors on one line: ``metadata.team: Input should be a valid string; ...``."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'request'}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)
    )


def given_job_error(job_id: str, exc: BaseException) -> BaseException:
    """The error to raise when reading a job whose id the DAG gave fails.

    A 404 (no such job) or a 400/422 (not a job id) cannot get better on retry: it becomes a
    :class:`MistralBatchFatalError` naming the id. Any other error is returned as it is.
    """
    if isinstance(exc, MistralNotFoundError | MistralValidationError):
        return MistralBatchFatalError(
            f"Mistral batch job {job_id!r} cannot be read: {describe_error(exc)}; check the "
            "job id (retries would not help)"
        )
    return exc


def refused_job_error(exc: MistralAPIError) -> BaseException:
    """The error to raise when creating a batch job fails.

    A 400/422 answer (the API refused the job as sent: an unknown model, a field it does not
    accept) is refused the same way on every retry: it becomes a
    :class:`MistralBatchFatalError`. After an ambiguous attempt (the error carries a note) a
    job may exist, so the error is returned as it is, like any other, and retries apply.
    """
    if isinstance(exc, MistralValidationError) and exc.note is None:
        return MistralBatchFatalError(
            f"Mistral refused to create the batch job: {describe_error(exc)} (retries would "
            "not help: fix the operator's arguments or the input)"
        )
    return exc


__all__ = [
    "MistralAPIError",
    "MistralAuthenticationError",
    "MistralBatchError",
    "MistralBatchFatalError",
    "MistralBatchInputError",
    "MistralBatchJobError",
    "MistralBatchJobFatalError",
    "MistralConnectionError",
    "MistralNotFoundError",
    "MistralRateLimitError",
    "MistralServerError",
    "MistralValidationError",
    "describe_error",
    "given_job_error",
    "refused_job_error",
]
