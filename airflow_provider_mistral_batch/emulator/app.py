"""The ASGI application: routes, error handlers, the request layer and the job lifecycle."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from airflow_provider_mistral_batch import __version__
from airflow_provider_mistral_batch.emulator import routes_files, routes_jobs
from airflow_provider_mistral_batch.emulator.config import EmulatorConfig
from airflow_provider_mistral_batch.emulator.errors import ApiError
from airflow_provider_mistral_batch.emulator.middleware import (
    EmulatorMiddleware,
    quiet_dropped_connections,
)
from airflow_provider_mistral_batch.emulator.state import EmulatorState


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
    app.add_exception_handler(ApiError, _api_error)
    app.add_middleware(EmulatorMiddleware, state=state)
    quiet_dropped_connections()
    return app


__all__ = ["create_app"]
