"""Uploads and downloads stream: memory stays bounded whatever the file size."""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

import pytest

from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

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
