"""Reading Mistral files for the pages: the streamed download pipe and the error preview,
against the emulator."""

from __future__ import annotations

import io
import threading
import time
import uuid

import pytest

from airflow_provider_mistral_batch.exceptions import MistralNotFoundError
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.plugins.downloads import stream_file
from airflow_provider_mistral_batch.plugins.error_preview import PreviewCache, read_error_preview
from mistral_batch_emulator import RunningEmulator
from tests.helpers import wait_for_terminal
from tests.plugin.conftest import CONN_ID, chat_requests

pytestmark = pytest.mark.integration


def _upload(hook: MistralBatchHook, content: bytes) -> str:
    return hook.upload_file(io.BytesIO(content), filename="data.jsonl").id


def _threads() -> set[str]:
    return {thread.name for thread in threading.enumerate() if thread.name.startswith("mistral-")}


def test_stream_file_yields_the_exact_bytes_in_chunks(hook: MistralBatchHook) -> None:
    # 3 MiB with no line structure: the stream must not reinterpret anything.
    content = bytes(range(256)) * (3 * 4096) + b"\r\n\n  tail without newline"
    file_id = _upload(hook, content)
    chunks = list(stream_file(lambda: MistralBatchHook(CONN_ID), file_id))
    assert b"".join(chunks) == content
    assert len(chunks) > 1


def test_stream_file_raises_the_hooks_error(hook: MistralBatchHook) -> None:
    with pytest.raises(MistralNotFoundError):
        list(stream_file(lambda: MistralBatchHook(CONN_ID), str(uuid.uuid4())))


def test_closing_the_stream_early_ends_the_download_thread(hook: MistralBatchHook) -> None:
    file_id = _upload(hook, b"x" * (20 * 1024 * 1024))
    before = _threads()
    stream = stream_file(lambda: MistralBatchHook(CONN_ID), file_id)
    assert next(stream)
    stream.close()  # what the server does when the browser goes away
    deadline = time.monotonic() + 10
    while _threads() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (_threads() - before)


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
    lines = read_error_preview(hook, job.error_file)
    assert len(lines) == 5
    assert all(line.split(": ", 1)[0] in failing for line in lines)
    assert all("failing_custom_ids" in line for line in lines)
    assert len(read_error_preview(hook, job.error_file, max_chars=10)) == 1


def test_the_error_preview_of_a_file_is_read_once(
    hook: MistralBatchHook, mistral: RunningEmulator
) -> None:
    file_id = _upload(hook, b'{"custom_id": "a", "error": "boom"}\nnot json at all\n')
    cache = PreviewCache()
    first = cache.get(hook, CONN_ID, file_id)
    assert first == ["a: boom", "(not a result line) not json at all"]
    reads = len([r for r in mistral.requests if r.path.endswith(f"{file_id}/content")])
    assert cache.get(hook, CONN_ID, file_id) == first
    assert len([r for r in mistral.requests if r.path.endswith(f"{file_id}/content")]) == reads
