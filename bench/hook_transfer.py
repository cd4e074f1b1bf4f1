"""Bench: streamed upload and download of a large JSONL through the hook.

Writes a JSONL of about --megabytes MB, uploads it to the emulator (in a child process),
downloads it back, and prints throughput and this process's peak Python memory (tracemalloc)
and RSS growth: both stay flat whatever the file size because nothing is read whole.

    .venv/bin/python bench/hook_transfer.py [--megabytes 256]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from emulator_common import API_KEY, emulator_process, rss_mb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=256)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-transfer-"))
    source = workdir / "big.jsonl"
    line = '{"custom_id": "%09d", "body": {"input": ["' + "x" * 400 + '"]}}\n'
    with source.open("w") as handle:
        index = 0
        while handle.tell() < args.megabytes * 1_000_000:
            handle.write(line % index)
            index += 1
    size = source.stat().st_size
    print(f"input: {size / 1e6:.0f} MB, {index:,} lines")

    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    with emulator_process() as (base_url, _):
        os.environ["AIRFLOW_CONN_MISTRAL_DEFAULT"] = json.dumps(
            {"conn_type": "mistral", "host": base_url, "password": API_KEY}
        )
        from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

        hook = MistralBatchHook()
        hook.get_conn()
        rss_start = rss_mb()
        tracemalloc.start()
        start = time.perf_counter()
        uploaded = hook.upload_file(source)
        upload_s = time.perf_counter() - start
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        start = time.perf_counter()
        hook.download_file(uploaded.id, workdir / "copy.jsonl")
        download_s = time.perf_counter() - start
        _, download_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_end = rss_mb()
    assert (workdir / "copy.jsonl").stat().st_size == size
    for step, seconds, peak in (
        ("upload", upload_s, upload_peak),
        ("download", download_s, download_peak),
    ):
        print(
            f"{step + ':':<9} {seconds:.1f} s, {size / 1e6 / seconds:.0f} MB/s, "
            f"peak Python memory {peak / 1e6:.1f} MB"
        )
    print(f"RSS growth over both: {rss_end - rss_start:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
