"""Async twins: same requests as the sync methods, shared clients, non-blocking lookups."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from airflow_provider_mistral_batch.exceptions import MistralNotFoundError
from airflow_provider_mistral_batch.hooks.http.clients import close_shared_async_clients
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import BatchJobStatus
from mistral_batch_emulator import Fault, RunningEmulator
from tests.helpers import CONN_ID, FAST_RETRIES, write_jsonl

pytestmark = pytest.mark.integration


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def _async_hook() -> MistralBatchHook:
    made = MistralBatchHook(CONN_ID, retry_policy=FAST_RETRIES)
    made._asleep = _no_sleep
    return made


def test_async_twins_match_the_sync_methods(hook: MistralBatchHook, tmp_path: Path) -> None:
    source = tmp_path / "a.jsonl"
    write_jsonl(source, ["x", "y"])
    file_id = hook.upload_file(source).id
    job = hook.create_batch_job(endpoint="/v1/chat/completions", input_files=[file_id])

    async def scenario() -> None:
        ahook = _async_hook()
        try:
            fetched = await ahook.aget_batch_job(job.id)
            assert fetched.id == job.id
            listed = [j.id async for j in ahook.alist_batch_jobs(page_size=1)]
            assert job.id in listed
            assert len(listed) == len(set(listed))
            assert (await ahook.aget_file(file_id)).id == file_id
            assert file_id in [f.id async for f in ahook.alist_files(page_size=1)]
            assert (await ahook.aget_file_url(file_id)).startswith("http")
            cancelled = await ahook.acancel_batch_job(job.id)
            assert cancelled.id == job.id
            assert (await ahook.adelete_batch_job(job.id)).deleted is True
            assert (await ahook.adelete_file(file_id)).deleted is True
            with pytest.raises(MistralNotFoundError, match=file_id):
                await ahook.aget_file(file_id)
        finally:
            await close_shared_async_clients()

    asyncio.run(scenario())


def _connections_to(emulator: RunningEmulator) -> set[tuple[str, int]]:
    """This process's open TCP connections to the emulator, by local address."""
    port = urlsplit(emulator.base_url).port
    return {
        (conn.laddr.ip, conn.laddr.port)
        for conn in psutil.Process().net_connections(kind="tcp")
        if conn.raddr and conn.raddr.port == port and conn.status == psutil.CONN_ESTABLISHED
    }


def test_many_hooks_in_one_loop_share_one_client(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    job = hook.create_batch_job(
        endpoint="/v1/embeddings", requests=[{"custom_id": "1", "body": {"input": ["x"]}}]
    )
    before = _connections_to(emulator)  # the sync hook's

    async def scenario() -> tuple[set[tuple[str, int]], list[BatchJobStatus]]:
        hooks = [_async_hook() for _ in range(50)]
        try:
            # One after the other: a client per hook would keep a connection open per hook,
            # one shared client reuses its one kept-alive connection.
            jobs = [await h.aget_batch_job(job.id) for h in hooks]
            return _connections_to(emulator) - before, [j.status for j in jobs]
        finally:
            await close_shared_async_clients()

    opened, statuses = asyncio.run(scenario())
    assert len(opened) == 1
    assert len(statuses) == 50


def test_async_retries_use_the_same_policy(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    job = hook.create_batch_job(
        endpoint="/v1/embeddings", requests=[{"custom_id": "1", "body": {"input": ["x"]}}]
    )
    path = f"/v1/batch/jobs/{job.id}"
    emulator.set_faults(
        [
            Fault(kind="status", status_code=502, method="GET", path_prefix=path),
            Fault(kind="drop_before", method="GET", path_prefix=path),
        ]
    )
    emulator.clear_requests()

    async def scenario() -> str:
        try:
            return (await _async_hook().aget_batch_job(job.id)).id
        finally:
            await close_shared_async_clients()

    assert asyncio.run(scenario()) == job.id
    statuses = [r.status_code for r in emulator.requests if r.path == path]
    assert statuses[0] == 502
    assert statuses[-1] == 200
    assert len(statuses) == 3


def test_async_connection_lookup_does_not_block_the_loop(hook: MistralBatchHook) -> None:
    """Settings come from the async lookup while other coroutines keep running."""

    async def scenario() -> tuple[str, int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        settings = await _async_hook().aget_settings()
        done.set()
        await task
        return settings.base_url, ticks

    base_url, ticks = asyncio.run(scenario())
    assert base_url.startswith("http://127.0.0.1:")
    assert ticks >= 1
