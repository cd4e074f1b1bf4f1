"""Make the UI's connection Test button work for ``mistral`` connections.

Airflow's connection list sends ``"port": Number(connection.port)`` to
``POST /api/v2/connections/test``: ``0`` for a connection saved without a port, which a
``mistral`` connection always is (its form hides the port; the Base URL carries it). Airflow
3.2+ then answers 400 "The host or port to test differs from the stored connection", since
``0`` is not the stored ``None``. A ``mistral`` connection never uses its port field, so a
``0`` there can change no destination: this middleware drops it from the test request of a
``mistral`` connection and passes everything else through untouched.

A plain ASGI middleware (no FastAPI import): the plugin class module names it, and every
Airflow process imports that module.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The core API route of the Test button (below any base URL prefix).
TEST_PATH: Final = "/api/v2/connections/test"
#: A test request is a small JSON object; a larger body passes through unread.
MAX_BODY: Final = 256 * 1024


def without_unset_port(body: bytes) -> bytes | None:
    """The request body without ``"port": 0`` when it tests a ``mistral`` connection, or
    None when the body is to be left as it is."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("conn_type") != "mistral":
        return None
    if "port" not in data or data["port"] != 0 or isinstance(data["port"], bool):
        return None
    del data["port"]
    return json.dumps(data).encode()


class MistralConnectionTestPort:
    """ASGI middleware: :func:`without_unset_port` on ``POST .../api/v2/connections/test``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or not str(scope.get("path", "")).endswith(TEST_PATH)
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more and size <= MAX_BODY:
            message = await receive()
            if message["type"] != "http.request":  # a disconnect: nothing to fix
                await self.app(scope, _replay(chunks, receive, message, more=True), send)
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = bool(message.get("more_body", False))
        if more:  # too large to be the UI's request: pass it on as it came
            await self.app(scope, _replay(chunks, receive, None, more=True), send)
            return
        fixed = without_unset_port(b"".join(chunks))
        if fixed is None:
            await self.app(scope, _replay(chunks, receive, None), send)
            return
        headers = [
            (name, value) for name, value in scope.get("headers", []) if name != b"content-length"
        ]
        headers.append((b"content-length", str(len(fixed)).encode()))
        await self.app({**scope, "headers": headers}, _replay([fixed], receive, None), send)


def _replay(
    chunks: list[bytes], receive: Receive, last: Message | None, *, more: bool = False
) -> Receive:
    """A ``receive`` that gives the chunks already read, then ``last``, then the original."""
    pending: list[Message] = [
        {"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks
    ]
    if pending and not more:
        pending[-1]["more_body"] = False
    if not pending and last is None:
        pending.append({"type": "http.request", "body": b"", "more_body": False})
    if last is not None:
        pending.append(last)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


__all__ = ["MAX_BODY", "TEST_PATH", "MistralConnectionTestPort", "without_unset_port"]
