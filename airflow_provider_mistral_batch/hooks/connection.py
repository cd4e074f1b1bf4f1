"""The settings of a ``mistral`` connection, read from its fields with a clear error for a
bad value. Its defaults and its form in the UI are in
:mod:`~airflow_provider_mistral_batch.connection_form`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_mistral_batch.connection_form import (
    DEFAULT_BASE_URL,
    DEFAULT_CONN_ID,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_CONSOLE_URL,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
)

# The defaults are read from here too, where the settings are.
__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_CONN_ID",
    "DEFAULT_CONSOLE_URL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "ConnectionSettings",
    "checked_api_key",
    "console_url_of",
    "normalize_base_url",
]


@dataclass(frozen=True)
class ConnectionSettings:
    """Settings of one Mistral connection.

    :param base_url: API root, without a trailing slash.
    :param api_key: the key sent as a Bearer token; never shown by ``repr``.
    :param timeout: read/write/pool timeout of one request, in seconds.
    :param connect_timeout: timeout to open a connection, in seconds.
    :param max_retries: retries after the first attempt of a failed request.
    :param console_url: root of Mistral's web console, for links to jobs.
    :param reattach_namespace: part of the reattach key of every job made through this
        connection; None: none.
    """

    base_url: str
    api_key: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    console_url: str = DEFAULT_CONSOLE_URL
    reattach_namespace: str | None = None

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
            console_url=console_url_of(normalize_base_url(host), extra.get("console_url")),
            reattach_namespace=_optional_text(extra, "reattach_namespace"),
        )

    @classmethod
    def from_credentials(
        cls, api_key: str | None, base_url: str | None, *, where: str
    ) -> ConnectionSettings:
        """Settings from a key and a base URL alone, everything else at its default: for a
        caller given no connection id, only those two fields (common-ai's batch adapter).

        :param where: what holds the key, to start error messages with, e.g.
            ``The connection of llm_conn_id``.
        """
        base = normalize_base_url(base_url)
        return cls(
            base_url=base,
            api_key=_checked_key(where, api_key),
            console_url=console_url_of(base, None),
        )


def checked_api_key(conn_id: str, password: str | None) -> str:
    """The key from a connection's password, stripped, or an error that never shows the key.

    Surrounding whitespace (a common paste mistake) is dropped. A key with a space, a line
    break or a non-ASCII character inside is refused here: sent as-is, the HTTP library would
    reject the header with an error that quotes it.
    """
    return _checked_key(f"Connection {conn_id!r}", password)


def _checked_key(where: str, password: str | None) -> str:
    """:func:`checked_api_key`, its errors starting with ``where`` (what holds the key)."""
    key = (password or "").strip()
    if not key:
        raise _settings_error(
            f"{where} has no API key: put the key in the connection's "
            "password field (labelled 'API Key' in the UI)."
        )
    for position, char in enumerate(key, start=1):
        if not "!" <= char <= "~":
            kind = "a non-ASCII character" if ord(char) > 127 else "whitespace or a control char"
            raise _settings_error(
                f"{where}: the API key has {kind} at position {position}; "
                "paste the key again without it."
            )
    if key != password:
        # Airflow masks the password as stored; the stripped key sent must be masked too.
        from airflow.sdk.log import mask_secret

        mask_secret(key)
    return key


def console_url_of(base_url: str, configured: Any) -> str:
    """Where job links point: the ``console_url`` extra when set; else, for an API on a
    loopback address (the emulator, which serves a job page at the console's path), that
    server; else Mistral's console."""
    if configured:
        return str(configured).rstrip("/")
    host = urlsplit(base_url).hostname or ""
    if host == "localhost" or _is_loopback_ip(host):
        return base_url
    return DEFAULT_CONSOLE_URL


def _is_loopback_ip(host: str) -> bool:
    import ipaddress  # only when a connection is read, not when a DAG file is parsed

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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


def _optional_text(extra: dict[str, Any], key: str) -> str | None:
    value = extra.get(key)
    if value is None or not str(value).strip():
        return None
    return str(value).strip()


def _positive_float(conn_id: str, extra: dict[str, Any], key: str, default: float) -> float:
    value = extra.get(key)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if number <= 0:
        raise _settings_error(
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
        raise _settings_error(
            f"Connection {conn_id!r}: extra {key!r} must be a whole number >= 0, got {value!r}."
        )
    return number


def _settings_error(message: str) -> Exception:
    """A :class:`MistralBatchError` (imported here: the exceptions module imports Airflow)."""
    from airflow_provider_mistral_batch.exceptions import MistralBatchError

    return MistralBatchError(message)
