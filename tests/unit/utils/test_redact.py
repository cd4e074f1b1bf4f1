"""Secrets are taken out of text a server sent, in every form a page or JSON may hold."""

from __future__ import annotations

import html
import json

import pytest

from airflow_provider_mistral_batch.utils.redact import REDACTED, bearer_token, redact

KEY = "sk-<&\"quoted'>-0123456789"


@pytest.mark.parametrize(
    "text",
    [
        f"invalid token Bearer {KEY}",
        f"key={KEY}",
        f"<p>{html.escape(KEY)}</p>",
        json.dumps({"detail": f"got {KEY}"}),
    ],
)
def test_the_key_is_masked_in_any_form(text: str) -> None:
    masked = redact(text, [KEY])
    for form in (KEY, html.escape(KEY), json.dumps(KEY)[1:-1]):
        assert form not in masked
    assert REDACTED in masked


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc123def456", "Authorization: Bearer ***"),
        ("bearer=eyJhbGciOiJIUzI1NiJ9xxxxxxxxxxxxx", "bearer=***"),
        ("No bearer token provided", "No bearer token provided"),
        ("a bearer authentication failure", "a bearer authentication failure"),
    ],
)
def test_bearer_tokens_are_masked_and_prose_is_kept(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_short_or_missing_secrets_change_nothing() -> None:
    assert redact("status: ok", ["ok", None, ""]) == "status: ok"


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer sk-1", "sk-1"),
        ("bearer  sk-2 ", "sk-2"),
        ("Basic abc", None),
        (None, None),
        ("Bearer ", None),
    ],
)
def test_bearer_token_of_a_header(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token
