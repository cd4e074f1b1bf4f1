"""The ASGI application: routes, error handlers, the request layer and the job lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mistral_batch_emulator import __version__, routes_console, routes_files, routes_jobs
from mistral_batch_emulator.config import EmulatorConfig
from mistral_batch_emulator.errors import ApiError
from mistral_batch_emulator.middleware import (
    EmulatorMiddleware,
    quiet_dropped_connections,
)
from mistral_batch_emulator.state import EmulatorState


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status_code)


def create_app(config: EmulatorConfig | None = None) -> FastAPI:
    """The emulator as an ASGI app; its state is ``app.state.emulator``."""
    state = EmulatorState(config or EmulatorConfig())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.loop = asyncio.get_running_loop()
        yield
        await state.aclose()

    app = FastAPI(
        title="Mistral Files + Batch API emulator",
        version=__version__,
        lifespan=lifespan,
    )
    app.state.emulator = state
    app.include_router(routes_files.router)
    app.include_router(routes_jobs.router)
    app.include_router(routes_console.router)
    app.add_exception_handler(ApiError, _api_error)
    app.add_middleware(EmulatorMiddleware, state=state)
    quiet_dropped_connections()
    return app


__all__ = ["create_app"]
