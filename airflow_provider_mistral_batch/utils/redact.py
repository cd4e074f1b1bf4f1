"""Secrets taken out of text that came from a server: the API key never travels on.

Some servers, proxies and gateways echo the request's ``Authorization`` header in an error
body (``invalid token Bearer sk-...``). Every message built from a server's answer passes
through :func:`redact` before it is raised, logged, stored or shown; Airflow's secrets masker
covers task logs, but not the exceptions stored by a trigger or the UI plugin's pages.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from typing import Final

#: What a secret is replaced with.
REDACTED: Final = "***"
#: A bearer token, whichever key it carries: ``Bearer <token>`` (any case, ``:``/``=`` too).
#: A token has a digit or is long, so that prose ("no bearer token provided") stays readable.
_BEARER: Final = re.compile(r"(?i)\b(bearer)([\s:=]+)(?:(?=[!-~]*\d)[!-~]{8,}|[!-~]{24,})")
#: Shorter strings are not treated as secrets: replacing them would garble ordinary text.
MIN_SECRET_CHARS: Final = 6


def secret_forms(secret: str) -> list[str]:
    """``secret`` as it may appear in text: as is, HTML-escaped and JSON-escaped."""
    forms = {secret, html.escape(secret), json.dumps(secret)[1:-1]}
    return sorted(forms, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with each of ``secrets`` (in any form :func:`secret_forms` gives) and any
    ``Bearer <token>`` replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_CHARS:
            for form in secret_forms(secret):
                text = text.replace(form, REDACTED)
    return _BEARER.sub(rf"\1\2{REDACTED}", text)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


__all__ = ["MIN_SECRET_CHARS", "REDACTED", "bearer_token", "redact", "secret_forms"]
