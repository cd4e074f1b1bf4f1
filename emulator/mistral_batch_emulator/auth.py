"""Who is calling: the Bearer token of a request and the caller id a job remembers."""

from __future__ import annotations

import hashlib


def bearer_token(header: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value; None when there is none."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def caller_id(token: str) -> str:
    """A stable id of the key that made a request.

    A digest rather than the key itself, so job records (and anything that dumps them)
    never hold an API key.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:24]


__all__ = ["bearer_token", "caller_id"]
