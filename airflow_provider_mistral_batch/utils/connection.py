"""What the hook reads from an Airflow ``mistral`` connection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_provider_mistral_batch.connection_defaults import (
    DEFAULT_BASE_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_CONSOLE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
)
from airflow_provider_mistral_batch.exceptions import MistralBatchError


@dataclass(frozen=True)
class ConnectionSettings:
    """Settings of one Mistral connection.

    :param base_url: API root, without a trailing slash.
    :param api_key: the key sent as a Bearer token; never shown by ``repr``.
    :param timeout: read/write/pool timeout of one request, in seconds.
    :param connect_timeout: timeout to open a connection, in seconds.
    :param max_retries: retries after the first attempt of a failed request.
    :param console_url: root of Mistral's web console, for links to jobs.
    """

    base_url: str
    api_key: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    console_url: str = DEFAULT_CONSOLE_URL

    @classmethod
    def from_connection(
        cls, conn_id: str, host: str | None, password: str | None, extra: dict[str, Any]
    ) -> ConnectionSettings:
        """Build settings from a connection's fields, with a clear error for a bad value."""
        # Form fields may be stored with the legacy ``extra__mistral__`` prefix.
        extra = {key.removeprefix("extra__mistral__"): value for key, value in extra.items()}
        return cls(
            base_url=normalize_base_url(host),
            api_key=checked_api_key(conn_id, password),
            timeout=_positive_float(conn_id, extra, "timeout", DEFAULT_TIMEOUT),
            connect_timeout=_positive_float(
                conn_id, extra, "connect_timeout", DEFAULT_CONNECT_TIMEOUT
            ),
            max_retries=_non_negative_int(conn_id, extra, "max_retries", DEFAULT_MAX_RETRIES),
            console_url=str(extra.get("console_url") or DEFAULT_CONSOLE_URL).rstrip("/"),
        )


def checked_api_key(conn_id: str, password: str | None) -> str:
    """The key from a connection's password, stripped, or an error that never shows the key.

    Surrounding whitespace (a common paste mistake) is dropped. A key with a space, a line
    break or a non-ASCII character inside is refused here: sent as-is, the HTTP library would
    reject the header with an error that quotes it.
    """
    key = (password or "").strip()
    if not key:
        raise MistralBatchError(
            f"Connection {conn_id!r} has no API key: put the key in the connection's "
            "password field (labelled 'API Key' in the UI)."
        )
    for position, char in enumerate(key, start=1):
        if not "!" <= char <= "~":
            kind = "a non-ASCII character" if ord(char) > 127 else "whitespace or a control char"
            raise MistralBatchError(
                f"Connection {conn_id!r}: the API key has {kind} at position {position}; "
                "paste the key again without it."
            )
    if key != password:
        # Airflow masks the password as stored; the stripped key sent must be masked too.
        from airflow.sdk.log import mask_secret

        mask_secret(key)
    return key


def normalize_base_url(host: str | None) -> str:
    """The API root from a connection host: https by default, no trailing slash or ``/v1``."""
    if not host or not host.strip():
        return DEFAULT_BASE_URL
    url = host.strip().rstrip("/")
    if "://" not in url:
        url = f"https://{url}"
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


def _positive_float(conn_id: str, extra: dict[str, Any], key: str, default: float) -> float:
    value = extra.get(key)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if number <= 0:
        raise MistralBatchError(
            f"Connection {conn_id!r}: extra {key!r} must be a positive number of seconds, "
            f"got {value!r}."
        )
    return number


def _non_negative_int(conn_id: str, extra: dict[str, Any], key: str, default: int) -> int:
    value = extra.get(key)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0:
        raise MistralBatchError(
            f"Connection {conn_id!r}: extra {key!r} must be a whole number >= 0, got {value!r}."
        )
    return number
