"""HTTP clients: User-Agent, timeouts, one shared async client per loop and API root."""

from __future__ import annotations

import asyncio

from airflow_provider_mistral_batch import __version__
from airflow_provider_mistral_batch.hooks.http.clients import (
    USER_AGENT,
    close_shared_async_clients,
    new_sync_client,
    shared_async_client,
)


def test_user_agent_names_the_provider_and_its_version() -> None:
    assert USER_AGENT.startswith(f"airflow-provider-mistral-batch/{__version__}")
    with new_sync_client("http://127.0.0.1:1", 7.0, 2.0) as client:
        assert client.headers["User-Agent"] == USER_AGENT
        assert client.timeout.read == 7.0
        assert client.timeout.connect == 2.0


def test_one_async_client_per_loop_and_base_url() -> None:
    async def in_one_loop() -> tuple[bool, bool]:
        try:
            first = shared_async_client("http://a", 5, 1)
            same = shared_async_client("http://a", 5, 1)
            other = shared_async_client("http://b", 5, 1)
            return first is same, first is other
        finally:
            await close_shared_async_clients()

    assert asyncio.run(in_one_loop()) == (True, False)

    async def client_id() -> int:
        try:
            return id(shared_async_client("http://a", 5, 1))
        finally:
            await close_shared_async_clients()

    # A new loop never reuses a client bound to an old one.
    assert asyncio.run(client_id()) != 0


def test_clients_keep_no_cookies() -> None:
    import httpx2

    response = httpx2.Response(
        200,
        headers={"set-cookie": "session=abc; Path=/"},
        request=httpx2.Request("GET", "http://127.0.0.1:1/v1/files"),
    )
    with new_sync_client("http://127.0.0.1:1", 5, 1) as client:
        client.cookies.extract_cookies(response)
        assert len(client.cookies.jar) == 0
