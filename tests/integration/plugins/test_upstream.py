"""The plugin's upstream calls (``plugins/upstream.py``) against the emulator: downloads, error
previews, shared answers, bounds, and the key masked in what they return."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from airflow_provider_mistral_batch.exceptions import MistralNotFoundError
from airflow_provider_mistral_batch.hooks.http.clients import close_shared_async_clients
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.plugins import upstream
from airflow_provider_mistral_batch.plugins.upstream import (
    MAX_DOWNLOADS,
    Mistral,
    UpstreamBusyError,
)
from mistral_batch_emulator import Fault, RunningEmulator
from tests.helpers import wait_for_terminal
from tests.integration.plugins.conftest import CONN_ID, chat_requests

pytestmark = pytest.mark.integration
T = TypeVar("T")


def _run(scenario: Callable[[], Awaitable[T]]) -> T:
    """Run ``scenario`` in a new event loop (one api-server process), closing its clients."""

    async def main() -> T:
        try:
            return await scenario()
        finally:
            await close_shared_async_clients()

    return asyncio.run(main())


def _upload(hook: MistralBatchHook, content: bytes) -> str:
    return hook.upload_file(io.BytesIO(content), filename="data.jsonl").id


def _reads(emulator: RunningEmulator, path_end: str, *, at_least: int = 0) -> int:
    """How many requests of a path ending so the emulator saw; it records a request once its
    response is sent, so wait a moment (at most 5 s) for ``at_least`` of them."""
    deadline = time.monotonic() + 5
    while True:
        seen = len([r for r in emulator.requests if r.path.endswith(path_end)])
        if seen >= at_least or time.monotonic() > deadline:
            return seen
        time.sleep(0.02)


async def _read_all(mistral: Mistral, file_id: str) -> bytes:
    return b"".join([chunk async for chunk in await mistral.download(file_id)])


def test_a_download_yields_the_exact_bytes_in_chunks(hook: MistralBatchHook) -> None:
    # 3 MiB with no line structure: the stream must not reinterpret anything.
    content = bytes(range(256)) * (3 * 4096) + b"\r\n\n  tail without newline"
    file_id = _upload(hook, content)

    async def scenario() -> list[bytes]:
        return [chunk async for chunk in await Mistral(CONN_ID).download(file_id)]

    chunks = _run(scenario)
    assert b"".join(chunks) == content
    assert len(chunks) > 1


def test_a_download_masks_the_key_even_across_chunks(
    hook: MistralBatchHook, mistral: RunningEmulator
) -> None:
    key = mistral.api_key.encode()
    # The key straddles the hook's 1 MiB download chunks, and appears again at the very end.
    content = b"a" * (1024 * 1024 - 5) + key + b"\nBearer " + key
    file_id = _upload(hook, content)
    body = _run(lambda: _read_all(Mistral(CONN_ID), file_id))
    assert key not in body
    assert body == b"a" * (1024 * 1024 - 5) + b"***\nBearer ***"


def test_a_missing_file_is_raised_before_any_byte(hook: MistralBatchHook) -> None:
    with pytest.raises(MistralNotFoundError):
        _run(lambda: Mistral(CONN_ID).download(str(uuid.uuid4())))


def test_downloads_are_bounded_and_a_closed_one_frees_its_slot(hook: MistralBatchHook) -> None:
    file_id = _upload(hook, b"x" * (4 * 1024 * 1024))

    async def scenario() -> None:
        streams = [await Mistral(CONN_ID).download(file_id) for _ in range(MAX_DOWNLOADS)]
        with pytest.raises(UpstreamBusyError):
            await Mistral(CONN_ID).download(file_id)
        first = streams.pop()
        await first.aclose()  # type: ignore[attr-defined]  # what the server does when the browser goes away
        assert await anext(await Mistral(CONN_ID).download(file_id))
        for stream in streams:
            await stream.aclose()  # type: ignore[attr-defined]

    _run(scenario)


def test_the_error_preview_reads_the_first_few_errors_only(
    hook: MistralBatchHook, mistral: RunningEmulator
) -> None:
    failing = {f"r{i}" for i in range(40)}
    mistral.update_config(failing_custom_ids=failing)
    job = hook.create_batch_job(
        endpoint="/v1/chat/completions", model="mistral-small-latest", requests=chat_requests(40)
    )
    job = wait_for_terminal(hook, job.id)
    assert job.error_file
    error_file = job.error_file
    lines = _run(lambda: Mistral(CONN_ID).error_preview(error_file))
    assert len(lines) == 5
    assert all(line.split(": ", 1)[0] in failing for line in lines)
    assert all("failing_custom_ids" in line for line in lines)


def test_the_error_preview_of_a_file_is_read_once(
    hook: MistralBatchHook, mistral: RunningEmulator
) -> None:
    file_id = _upload(hook, b'{"custom_id": "a", "error": "boom"}\nnot json at all\n')

    async def scenario() -> tuple[list[str], list[str]]:
        return await Mistral(CONN_ID).error_preview(file_id), await Mistral(CONN_ID).error_preview(
            file_id
        )

    first, second = _run(scenario)
    assert first == second == ["a: boom", "(not a result line) not json at all"]
    assert _reads(mistral, f"{file_id}/content", at_least=1) == 1


def test_a_huge_first_line_costs_the_preview_its_few_kilobytes(
    hook: MistralBatchHook, mistral: RunningEmulator
) -> None:
    huge = b'{"custom_id": "a", "error": "' + b"x" * (8 * 1024 * 1024) + b'"}\n'
    file_id = _upload(hook, b'{"custom_id": "first", "error": "boom"}\n' + huge)
    lines = _run(lambda: Mistral(CONN_ID).error_preview(file_id))
    assert lines[0] == "first: boom"
    assert lines[1].startswith('(line cut at 4,056 characters) {"custom_id": "a"')
    assert len(lines) == 2


def test_viewers_of_one_job_share_one_read(
    hook: MistralBatchHook, mistral: RunningEmulator
) -> None:
    job = hook.create_batch_job(
        endpoint="/v1/chat/completions", model="mistral-small-latest", requests=chat_requests(2)
    )
    before = _reads(mistral, f"/v1/batch/jobs/{job.id}")

    async def scenario() -> set[str]:
        jobs = await asyncio.gather(*(Mistral(CONN_ID).job(job.id) for _ in range(30)))
        return {read.id for read in jobs}

    assert _run(scenario) == {job.id}
    assert _reads(mistral, f"/v1/batch/jobs/{job.id}", at_least=before + 1) - before == 1


def test_a_slow_server_costs_a_page_at_most_the_time_limit(
    hook: MistralBatchHook, mistral: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that does not answer ends the call at the plugin's own limit (shortened here),
    well before the connection's timeout, with a message saying so."""
    job = hook.create_batch_job(
        endpoint="/v1/chat/completions", model="mistral-small-latest", requests=chat_requests(2)
    )
    monkeypatch.setattr(upstream, "UPSTREAM_SECONDS", 0.5)
    mistral.set_faults(
        [Fault(kind="delay_before", method="GET", path=f"/v1/batch/jobs/{job.id}", delay_seconds=5)]
        * 3
    )
    with pytest.raises(Exception, match=r"did not answer within 0.5 s"):
        _run(lambda: Mistral(CONN_ID).job(job.id))
