"""The plugin never holds a thread of the api-server's pool while Mistral is slow (defect 3 of
issue 16): its routes are async, and Airflow's own sync routes answer while many viewers wait
on a slow server. Order, not time, is asserted: no figure of speed is checked here (the figures
are ``bench/plugin_load.py``'s)."""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx2
import pytest
import uvicorn
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from airflow_provider_mistral_batch.plugins.app import create_app
from mistral_batch_emulator import Fault, RunningEmulator
from tests.integration.plugins.conftest import CONN_ID

pytestmark = pytest.mark.integration

Headers = Callable[[str], dict[str, str]]
#: More viewers than the api-server's thread pool has threads (40, anyio's default).
VIEWERS = 48
#: How long the slow server takes to answer the job list.
SLOW_SECONDS = 6.0


def test_every_route_of_the_plugin_is_async() -> None:
    routes = [route for route in create_app().routes if isinstance(route, APIRoute)]
    assert len(routes) == 4
    blocking = [route.path for route in routes if not inspect.iscoroutinefunction(route.endpoint)]
    assert blocking == []


@pytest.fixture
def served(api: TestClient) -> Iterator[str]:
    """Airflow's api-server app (the plugin mounted) on a free loopback port, as
    ``airflow api-server`` serves it: one uvicorn worker, one event loop, one thread pool."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(api.app, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the api-server stopped"
        assert time.monotonic() < deadline, "the api-server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def test_airflow_answers_while_many_viewers_wait_on_a_slow_mistral(
    served: str, as_user: Headers, mistral: RunningEmulator
) -> None:
    mistral.set_faults(
        [
            Fault(
                kind="delay_before", method="GET", path="/v1/batch/jobs", delay_seconds=SLOW_SECONDS
            )
        ]
        * VIEWERS
    )
    headers = as_user("viewer")

    async def scenario() -> tuple[int, int]:
        async with httpx2.AsyncClient(base_url=served, timeout=60, headers=headers) as client:
            # Each viewer asks for another page: no answer can be shared between them.
            pages = [
                asyncio.create_task(
                    client.get(f"/mistral-batch/jobs?conn_id={CONN_ID}&page={number}")
                )
                for number in range(VIEWERS)
            ]
            await asyncio.sleep(1.0)  # every page request has reached the api-server
            health = await client.get("/api/v2/monitor/health")
            pages_done_then = sum(task.done() for task in pages)
            for response in await asyncio.gather(*pages):
                assert response.status_code == 200, response.text
            return health.status_code, pages_done_then

    status, pages_done_when_health_answered = asyncio.run(scenario())
    assert status == 200
    # Airflow's own sync route answered while every viewer was still waiting on Mistral.
    assert pages_done_when_health_answered == 0
