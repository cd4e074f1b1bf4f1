"""A request body an endpoint cannot serve: it becomes that request's error line."""

from __future__ import annotations


class RequestRejected(Exception):
    """A request body the endpoint cannot serve; becomes an error line.

    :param code: the error line's ``error.code`` (default ``invalid_request``).
    :param kind: ``(type, code)`` of the line's error body when not the usual 400 ones.
    """

    def __init__(
        self,
        message: str,
        param: str | None = None,
        code: str = "invalid_request",
        kind: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind


__all__ = ["RequestRejected"]
