"""HTTP clients: one shared async client per event loop and API root.

Thousands of triggers in one triggerer each poll their own job; sharing one connection pool
per loop (the API key travels per request, not on the client) keeps sockets, TLS handshakes
and memory per trigger small.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import logging
import ssl
import weakref
from typing import Any, Final

import httpx2

from airflow_provider_mistral_batch import __version__

USER_AGENT: Final = f"airflow-provider-mistral-batch/{__version__} httpx2/{httpx2.__version__}"
_POOL_LIMITS: Final = httpx2.Limits(max_connections=100, max_keepalive_connections=20)
# Loading the CA bundle takes tens of milliseconds: done once here, at import, so that making
# a client inside a triggerer's event loop does no blocking file I/O.
_SSL_CONTEXT: Final[ssl.SSLContext] = httpx2.create_ssl_context()


class _RequestLinesAtDebug(logging.Filter):
    """Turns the HTTP client's ``HTTP Request: GET ... 200 OK`` lines from INFO into DEBUG.

    At a 30 s poll they would be about 2,900 lines a day per task, burying the progress lines
    a person reads; at DEBUG they are still there for whoever asks for them.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and str(record.msg).startswith("HTTP Request:"):
            record.levelno = logging.DEBUG
            record.levelname = "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


_REQUEST_LINES_AT_DEBUG: Final = _RequestLinesAtDebug()


def request_lines_at_debug() -> None:
    """Log the HTTP client's per-request lines at DEBUG (idempotent)."""
    logger = logging.getLogger("httpx2")
    if _REQUEST_LINES_AT_DEBUG not in logger.filters:
        logger.addFilter(_REQUEST_LINES_AT_DEBUG)


def _no_cookies() -> http.cookiejar.CookieJar:
    """A cookie jar that keeps nothing: a client shared by many API keys must not carry a
    cookie set for one key's requests into another's."""
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


_ClientKey = tuple[str, float, float]
_shared: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[_ClientKey, httpx2.AsyncClient]
] = weakref.WeakKeyDictionary()


def make_timeout(timeout: float, connect_timeout: float) -> httpx2.Timeout:
    """The timeout of one request: ``timeout`` for read, write and pool, its own connect."""
    return httpx2.Timeout(timeout, connect=connect_timeout)


def _client_options(base_url: str, timeout: float, connect_timeout: float) -> dict[str, Any]:
    """Settings shared by the sync and async clients."""
    request_lines_at_debug()
    return {
        "base_url": base_url,
        "timeout": make_timeout(timeout, connect_timeout),
        "headers": {"User-Agent": USER_AGENT},
        "limits": _POOL_LIMITS,
        "verify": _SSL_CONTEXT,
        "cookies": _no_cookies(),
    }


def new_sync_client(base_url: str, timeout: float, connect_timeout: float) -> httpx2.Client:
    """A synchronous client for one hook."""
    return httpx2.Client(**_client_options(base_url, timeout, connect_timeout))


def shared_async_client(
    base_url: str, timeout: float, connect_timeout: float
) -> httpx2.AsyncClient:
    """The async client of the running event loop for this API root, made on first use."""
    loop = asyncio.get_running_loop()
    clients = _shared.setdefault(loop, {})
    key = (base_url, timeout, connect_timeout)
    client = clients.get(key)
    if client is None or client.is_closed:
        client = httpx2.AsyncClient(**_client_options(base_url, timeout, connect_timeout))
        clients[key] = client
    return client


async def close_shared_async_clients() -> None:
    """Close the running loop's shared clients (call before the loop ends, e.g. in tests)."""
    clients = _shared.pop(asyncio.get_running_loop(), {})
    for client in clients.values():
        await client.aclose()
