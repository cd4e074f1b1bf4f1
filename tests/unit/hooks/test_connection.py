"""Connection fields become settings; bad values get an error naming the field."""

from __future__ import annotations

import pytest
from pytest_mock import MockerFixture

from airflow_provider_mistral_batch.exceptions import MistralBatchError
from airflow_provider_mistral_batch.hooks.connection import (
    ConnectionSettings,
    normalize_base_url,
)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (None, "https://api.mistral.ai"),
        ("", "https://api.mistral.ai"),
        ("api.mistral.ai", "https://api.mistral.ai"),
        ("https://api.mistral.ai/", "https://api.mistral.ai"),
        ("https://api.mistral.ai/v1", "https://api.mistral.ai"),
        ("http://127.0.0.1:8787", "http://127.0.0.1:8787"),
    ],
)
def test_base_url(host: str | None, expected: str) -> None:
    assert normalize_base_url(host) == expected


def test_extras_and_defaults() -> None:
    settings = ConnectionSettings.from_connection(
        "c", "http://x", "key", {"timeout": "12", "extra__mistral__max_retries": 2}
    )
    assert settings.timeout == 12.0
    assert settings.max_retries == 2
    assert settings.connect_timeout == 10.0
    assert settings.reattach_namespace is None
    assert "key" not in repr(settings)


@pytest.mark.parametrize(
    ("value", "expected"), [(" prod ", "prod"), ("", None), ("  ", None), (None, None)]
)
def test_reattach_namespace_extra(value: object, expected: str | None) -> None:
    extra = {"reattach_namespace": value}
    assert ConnectionSettings.from_connection("c", None, "key", extra).reattach_namespace == (
        expected
    )
    legacy = {"extra__mistral__reattach_namespace": value}
    assert ConnectionSettings.from_connection("c", None, "key", legacy).reattach_namespace == (
        expected
    )


def test_missing_key_is_a_clear_error() -> None:
    with pytest.raises(MistralBatchError, match="Connection 'c' has no API key"):
        ConnectionSettings.from_connection("c", None, None, {})


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ({"timeout": "soon"}, "'timeout' must be a positive number"),
        ({"timeout": 0}, "'timeout' must be a positive number"),
        ({"max_retries": -1}, "'max_retries' must be a whole number"),
    ],
)
def test_bad_extras(extra: dict[str, object], fragment: str) -> None:
    with pytest.raises(MistralBatchError, match=fragment):
        ConnectionSettings.from_connection("c", None, "key", extra)


def test_key_is_stripped_of_surrounding_whitespace_and_the_stripped_key_masked(
    mocker: MockerFixture,
) -> None:
    # Airflow masks the password as stored (with the whitespace): mask what is sent too.
    masked = mocker.patch("airflow.sdk.log.mask_secret")
    settings = ConnectionSettings.from_connection("c", None, "  sk-abc123\n", {})
    assert settings.api_key == "sk-abc123"
    masked.assert_called_once_with("sk-abc123")
    ConnectionSettings.from_connection("c", None, "sk-clean", {})
    masked.assert_called_once()  # a clean key is already masked by Airflow


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("sk-abc 123", "whitespace or a control char at position 7"),
        ("sk-abc\n123", "whitespace or a control char at position 7"),
        ("sk-abcé123", "a non-ASCII character at position 7"),
        ("   ", "has no API key"),
    ],
)
def test_a_malformed_key_is_refused_without_showing_it(key: str, fragment: str) -> None:
    with pytest.raises(MistralBatchError, match=fragment) as raised:
        ConnectionSettings.from_connection("c", None, key, {})
    assert "abc" not in str(raised.value)
    assert "Connection 'c'" in str(raised.value)


@pytest.mark.parametrize(
    ("host", "extra", "expected"),
    [
        (None, {}, "https://console.mistral.ai"),
        ("https://api.mistral.ai", {}, "https://console.mistral.ai"),
        ("http://127.0.0.1:8787", {}, "http://127.0.0.1:8787"),
        ("http://localhost:8787/v1", {}, "http://localhost:8787"),
        ("http://[::1]:8787", {}, "http://[::1]:8787"),
        (
            "http://127.0.0.1:8787",
            {"console_url": "https://c.example.test/"},
            "https://c.example.test",
        ),
        ("https://gateway.example.test", {}, "https://console.mistral.ai"),
        ("https://127.example.test", {}, "https://console.mistral.ai"),
    ],
)
def test_job_links_point_at_a_loopback_api_itself(
    host: str | None, extra: dict[str, str], expected: str
) -> None:
    # The emulator serves a job page at the console's path; a real API is never on loopback.
    assert ConnectionSettings.from_connection("c", host, "key", extra).console_url == expected


def test_settings_from_a_key_and_a_base_url_alone(mocker: MockerFixture) -> None:
    masked = mocker.patch("airflow.sdk.log.mask_secret")
    settings = ConnectionSettings.from_credentials(
        " sk-abc123 ", "http://127.0.0.1:8787/v1", where="The connection of llm_conn_id"
    )
    assert settings.api_key == "sk-abc123"
    masked.assert_called_once_with("sk-abc123")
    assert settings.base_url == "http://127.0.0.1:8787"
    assert settings.console_url == "http://127.0.0.1:8787"
    assert (settings.timeout, settings.max_retries) == (60.0, 4)
    assert ConnectionSettings.from_credentials("k" * 8, None, where="x").base_url == (
        "https://api.mistral.ai"
    )
    with pytest.raises(MistralBatchError, match=r"^The connection of llm_conn_id has no API key"):
        ConnectionSettings.from_credentials(None, None, where="The connection of llm_conn_id")
    with pytest.raises(MistralBatchError, match=r"^K: the API key has whitespace") as raised:
        ConnectionSettings.from_credentials("sk-abc 123", None, where="K")
    assert "abc" not in str(raised.value)
