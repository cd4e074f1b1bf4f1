"""The ASGI layer in front of the routes: request log, auth, latency and injected faults."""

from __future__ import annotations

import asyncio
import hmac
import logging
import time

from starlette.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mistral_batch_emulator.auth import bearer_token
from mistral_batch_emulator.config import EmulatorConfig, Fault
from mistral_batch_emulator.errors import error_body, unauthorized_body
from mistral_batch_emulator.state import EmulatorState, RecordedRequest

API_PREFIX = "/v1/"
#: Where a fault the route itself carries out is left in the request's ASGI scope.
FAULT_SCOPE_KEY = "mistral_batch_emulator.fault"
_GARBLED_PAGE = "<html><body><h1>Down for maintenance</h1></body></html>"


class ConnectionDropped(Exception):
    """Raised after a partial response so the server closes the connection."""


class _QuietDrops(logging.Filter):
    """Hides the server's traceback for connections the emulator drops on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, ConnectionDropped)


def quiet_dropped_connections() -> None:
    """Install the filter on uvicorn's error logger once."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(existing, _QuietDrops) for existing in logger.filters):
        logger.addFilter(_QuietDrops())


def _authorized(scope: Scope, config: EmulatorConfig) -> bool:
    header = b""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            header = value
            break
    token = bearer_token(header.decode("latin-1"))
    if token is None:
        return False
    if config.api_key is None:
        return True
    # Compare bytes: the header's raw bytes (latin-1 gives them back unchanged) against the
    # key's UTF-8. compare_digest refuses str with non-ASCII characters (a TypeError, so a 500
    # for a token like "clé"); a token that is not the key is a 401 whatever its bytes.
    return hmac.compare_digest(token.encode("latin-1"), config.api_key.encode("utf-8"))


class EmulatorMiddleware:
    """Records every request; for API paths checks the key, adds latency and faults."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        received_at = time.time()
        status: int | None = None
        fault: Fault | None = None
        dropped = False

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            if not path.startswith(API_PREFIX):
                await self.app(scope, receive, recording_send)
                return
            config = self.state.config
            if not _authorized(scope, config):
                await JSONResponse(unauthorized_body(), status_code=401)(
                    scope, receive, recording_send
                )
                return
            if config.latency_seconds > 0:
                await asyncio.sleep(config.latency_seconds)
            fault = self.state.faults.pick(method, path, config.fault_rate, config.fault_pool)
            await self._serve(fault, scope, receive, recording_send)
        except ConnectionDropped:
            dropped = True
            raise
        finally:
            self.state.record(
                RecordedRequest(
                    method=method,
                    path=path,
                    query=scope.get("query_string", b"").decode("latin-1"),
                    status_code=None if dropped else status,
                    fault=fault.kind if fault is not None else None,
                    received_at=received_at,
                )
            )

    async def _serve(self, fault: Fault | None, scope: Scope, receive: Receive, send: Send) -> None:
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.kind == "status":
            headers = {"retry-after": fault.retry_after} if fault.retry_after is not None else {}
            body = error_body(fault.status_code)
            await JSONResponse(body, status_code=fault.status_code, headers=headers)(
                scope, receive, send
            )
        elif fault.kind == "drop_before":
            await _drop(send)
        elif fault.kind == "drop_after":
            await self.app(scope, receive, _DroppingSend(send))
            # Only reached when the app sent no body message to cut.
            await _drop(send)
        elif fault.kind == "delay_before":
            await asyncio.sleep(fault.delay_seconds)
            await self.app(scope, receive, send)
        elif fault.kind == "garbled":
            await HTMLResponse(_GARBLED_PAGE)(scope, receive, send)
        elif fault.kind == "endless_pages":
            # The route reads it (only the job list has pages to make endless).
            scope[FAULT_SCOPE_KEY] = fault.kind
            await self.app(scope, receive, send)
        elif fault.kind == "slow_commit":
            request_body = await _read_body(receive)
            await asyncio.sleep(fault.delay_seconds)
            await self.app(scope, _replay(request_body), _ForgivingSend(send))
        else:
            await self.app(scope, receive, _DelayingSend(send, fault.delay_seconds))


async def _drop(send: Send) -> None:
    """Start a response that promises more bytes than it sends, then close the connection."""
    partial = b'{"object":'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(partial) * 8).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": partial, "more_body": True})
    raise ConnectionDropped


async def _read_body(receive: Receive) -> bytes:
    """The whole request body, read before the client can give up on the response."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    """A ``receive`` that hands the app the body read earlier, whatever the client did since."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


class _ForgivingSend:
    """Sends the response if the client is still there; a vanished client is no error."""

    def __init__(self, send: Send) -> None:
        self._send = send

    async def __call__(self, message: Message) -> None:
        try:
            await self._send(message)
        except OSError:
            return


class _DroppingSend:
    """Lets the app finish its work, then sends a truncated response and drops."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._start: Message | None = None

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._start = message
            return
        if message["type"] != "http.response.body" or self._start is None:
            await self._send(message)
            return
        body: bytes = message.get("body", b"")
        headers = [
            (name, value)
            for name, value in self._start.get("headers", [])
            if name != b"content-length"
        ]
        headers.append((b"content-length", str(len(body) + 64).encode()))
        await self._send({**self._start, "headers": headers})
        await self._send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )
        raise ConnectionDropped


class _DelayingSend:
    """Holds the response start (the work is done by then) for a while."""

    def __init__(self, send: Send, delay: float) -> None:
        self._send = send
        self._delay = delay

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            await asyncio.sleep(self._delay)
        await self._send(message)


__all__ = [
    "API_PREFIX",
    "FAULT_SCOPE_KEY",
    "ConnectionDropped",
    "EmulatorMiddleware",
    "quiet_dropped_connections",
]
