"""Uploads and downloads stream: memory stays bounded whatever the file size."""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
import tracemalloc
from pathlib import Path

import pytest

from airflow_provider_mistral_batch.exceptions import MistralConnectionError
from airflow_provider_mistral_batch.hooks.http.clients import close_shared_async_clients
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from mistral_batch_emulator import Fault, RunningEmulator

pytestmark = pytest.mark.integration

FILE_BYTES = 64 * 1024 * 1024
# Python allocations in this process (hook and emulator thread together) while moving 64 MiB.
MEMORY_BOUND = 16 * 1024 * 1024


def _write_big_jsonl(path: Path) -> str:
    digest = hashlib.sha256()
    line_template = '{"custom_id": "%08d", "body": {"input": ["%s"]}}\n'
    filler = "x" * 200
    written = 0
    index = 0
    with path.open("wb") as handle:
        while written < FILE_BYTES:
            line = (line_template % (index, filler)).encode()
            handle.write(line)
            digest.update(line)
            written += len(line)
            index += 1
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def test_large_upload_and_download_use_bounded_memory(
    hook: MistralBatchHook, tmp_path: Path
) -> None:
    source = tmp_path / "big.jsonl"
    expected = _write_big_jsonl(source)

    tracemalloc.start()
    try:
        uploaded = hook.upload_file(source)
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        target = tmp_path / "copy.jsonl"
        hook.download_file(uploaded.id, target)
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert uploaded.bytes == source.stat().st_size
    assert _sha256(target) == expected
    assert upload_peak < MEMORY_BOUND, f"upload peaked at {upload_peak:,} bytes"
    assert download_peak < MEMORY_BOUND, f"download peaked at {download_peak:,} bytes"


def _lines_file(hook: MistralBatchHook, tmp_path: Path, count: int) -> tuple[str, list[str]]:
    body = '{"input": ["' + "y" * 80 + '"]}'
    lines = [f'{{"custom_id": "r{i:06d}", "body": {body}}}' for i in range(count)]
    source = tmp_path / "lines.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return hook.upload_file(source).id, lines


def test_a_download_that_breaks_midway_is_resumed_where_it_stopped(
    hook: MistralBatchHook, emulator: RunningEmulator, tmp_path: Path
) -> None:
    file_id, lines = _lines_file(hook, tmp_path, 3000)
    content = f"/v1/files/{file_id}/content"
    # Each drop sends half of the first body chunk, then closes the connection.
    emulator.set_faults([Fault(kind="drop_after", method="GET", path_prefix=content)] * 2)
    assert list(hook.iter_file_lines(file_id)) == lines
    # The server records a request once its response is sent: give the last one a moment.
    limit = time.monotonic() + 5
    while len([r for r in emulator.requests if r.path == content]) < 3 and time.monotonic() < limit:
        time.sleep(0.02)
    assert [r.fault for r in emulator.requests if r.path == content] == [
        "drop_after",
        "drop_after",
        None,
    ]


def test_a_download_that_keeps_breaking_fails_after_the_retries(
    hook: MistralBatchHook, emulator: RunningEmulator, tmp_path: Path
) -> None:
    file_id, _ = _lines_file(hook, tmp_path, 100)
    content = f"/v1/files/{file_id}/content"
    retries = hook.settings.max_retries
    emulator.set_faults([Fault(kind="drop_after", method="GET", path_prefix=content)] * 20)
    with pytest.raises(MistralConnectionError):
        list(hook.iter_file_lines(file_id))
    assert len([r for r in emulator.requests if r.path == content]) == retries + 1


class _Unseekable(io.RawIOBase):
    """A write-only stream that cannot be rewound (a pipe, a socket)."""

    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, chunk: object) -> int:
        self.data += bytes(chunk)  # type: ignore[call-overload]
        return len(bytes(chunk))  # type: ignore[call-overload]


def test_download_file_into_a_stream_resumes_a_broken_connection(
    hook: MistralBatchHook, emulator: RunningEmulator, tmp_path: Path
) -> None:
    file_id, lines = _lines_file(hook, tmp_path, 3000)
    content = f"/v1/files/{file_id}/content"
    emulator.set_faults([Fault(kind="drop_after", method="GET", path_prefix=content)] * 2)
    sink = _Unseekable()
    written = hook.download_file(file_id, sink)  # type: ignore[arg-type]
    expected = ("\n".join(lines) + "\n").encode()
    assert bytes(sink.data) == expected
    assert written == len(expected)


def _async_read(hook: MistralBatchHook, file_id: str) -> bytes:
    async def read() -> bytes:
        try:
            return b"".join([chunk async for chunk in hook.aiter_file_content(file_id)])
        finally:
            await close_shared_async_clients()

    return asyncio.run(read())


def test_the_async_download_resumes_where_it_stopped(
    hook: MistralBatchHook, emulator: RunningEmulator, tmp_path: Path
) -> None:
    file_id, lines = _lines_file(hook, tmp_path, 3000)
    content = f"/v1/files/{file_id}/content"
    emulator.set_faults([Fault(kind="drop_after", method="GET", path_prefix=content)] * 2)
    assert _async_read(hook, file_id) == ("\n".join(lines) + "\n").encode()


def test_the_async_download_that_keeps_breaking_fails_after_the_retries(
    hook: MistralBatchHook, emulator: RunningEmulator, tmp_path: Path
) -> None:
    file_id, _ = _lines_file(hook, tmp_path, 100)
    content = f"/v1/files/{file_id}/content"
    emulator.set_faults([Fault(kind="drop_after", method="GET", path_prefix=content)] * 20)
    with pytest.raises(MistralConnectionError):
        _async_read(hook, file_id)
    assert len([r for r in emulator.requests if r.path == content]) == hook.settings.max_retries + 1


def test_the_head_of_a_file_is_read_and_the_download_stopped(
    hook: MistralBatchHook, tmp_path: Path
) -> None:
    file_id, lines = _lines_file(hook, tmp_path, 3000)
    whole = ("\n".join(lines) + "\n").encode()

    async def heads() -> tuple[bytes, bytes]:
        try:
            return (
                await hook.aread_file_head(file_id, 4096 + 1),
                await hook.aread_file_head(file_id, len(whole) + 1),
            )
        finally:
            await close_shared_async_clients()

    head, all_of_it = asyncio.run(heads())
    # The byte past the 4,096 asked for says the file goes on; a shorter answer, that it ended.
    assert head == whole[: 4096 + 1]
    assert all_of_it == whole


def test_the_head_lines_of_a_file_stop_at_their_budget(hook: MistralBatchHook) -> None:
    """What the operator and the sensor quote of an error file: its first 4,096 bytes, a huge
    line marked as cut, never read whole."""
    from airflow_provider_mistral_batch.hooks.http.streams import CutLine

    first = b'{"custom_id": "a", "error": "boom"}\n'
    huge = b'{"custom_id": "b", "error": "' + b"x" * (8 * 1024 * 1024) + b'"}\n'
    file_id = hook.upload_file(io.BytesIO(first + huge), filename="errors.jsonl").id
    lines = list(hook.iter_file_head_lines(file_id))
    assert lines[0] == first.decode().strip()
    assert isinstance(lines[1], CutLine)
    assert len(first) + len(lines[1]) == 4096
