"""Running the emulator in a background thread, for tests and demos."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from mistral_batch_emulator.app import create_app
from mistral_batch_emulator.config import EmulatorConfig, Fault
from mistral_batch_emulator.state import EmulatorState, RecordedRequest

log = logging.getLogger(__name__)

_START_TIMEOUT_SECONDS = 15.0
_CALL_TIMEOUT_SECONDS = 15.0


class RunningEmulator:
    """Handle on an emulator serving in a background thread; every method is thread-safe."""

    def __init__(
        self, state: EmulatorState, base_url: str, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.base_url = base_url
        self._state = state
        self._loop = loop

    @property
    def config(self) -> EmulatorConfig:
        """The current config."""
        return self._state.config

    @property
    def api_key(self) -> str:
        """The key to send (any non-empty key works when the config's api_key is None)."""
        return self._state.config.api_key or "emulator-key"

    def set_faults(self, faults: list[Fault]) -> None:
        """Replace the scripted fault sequence."""
        self._state.faults.set_faults(faults)

    @property
    def pending_faults(self) -> list[Fault]:
        """The scripted faults not consumed yet."""
        return self._state.faults.pending

    def update_config(self, **changes: Any) -> None:
        """Change settings live, e.g. ``requests_per_second`` or ``failing_custom_ids``."""
        self._state.update_config(**changes)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every HTTP request seen (the most recent 100,000), oldest first."""
        return self._state.recorded()

    def clear_requests(self) -> None:
        """Empty the request log."""
        self._state.clear_requests()

    def reset(self) -> None:
        """Forget all files and jobs, faults and the request log; restore the start config."""
        future = asyncio.run_coroutine_threadsafe(self._state.areset(), self._loop)
        future.result(timeout=_CALL_TIMEOUT_SECONDS)


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


@contextmanager
def run_emulator(
    config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> Iterator[RunningEmulator]:
    """Serve the emulator on ``host:port`` (port 0: a free one) in a background thread.

    Waits until it accepts connections, yields a :class:`RunningEmulator`, and stops the
    server (its jobs, and its temporary data directory) on exit.
    """
    app = create_app(config)
    state: EmulatorState = app.state.emulator
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=2,
            backlog=4096,
        )
    )
    loop = _new_loop()
    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported to the starting thread
            failure.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=serve, name="mistral-batch-emulator", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the emulator did not start: {failure or 'timeout'}")
            time.sleep(0.01)
        url_host = f"[{host}]" if ":" in host else host
        base_url = f"http://{url_host}:{bound_port}"
        log.info("Mistral batch emulator serving at %s", base_url)
        yield RunningEmulator(state, base_url, loop)
    finally:
        server.should_exit = True
        thread.join(timeout=_CALL_TIMEOUT_SECONDS)
        sock.close()


__all__ = ["RunningEmulator", "run_emulator"]
