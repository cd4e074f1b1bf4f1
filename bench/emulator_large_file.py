"""Bench: a 1,000,000-line JSONL through the emulator (upload, job, output) with its RSS peak.

Run: .venv/bin/python bench/emulator_large_file.py [--lines 1000000]
Prints upload time, job duration and the emulator process's peak RSS (psutil samples).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx2
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from emulator_common import API_KEY, emulator_process

MB = 1024 * 1024


class RssSampler:
    """Samples a process's resident set size every 50 ms and keeps the peak."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self._process.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _generate(path: Path, lines: int) -> None:
    with path.open("w") as out:
        for index in range(lines):
            body = {
                "max_tokens": 64,
                "messages": [{"role": "user", "content": f"Question number {index}?"}],
            }
            out.write(json.dumps({"custom_id": str(index), "body": body}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="emulator-bench-") as tmp:
        source = Path(tmp) / "requests.jsonl"
        started = time.perf_counter()
        _generate(source, args.lines)
        size = source.stat().st_size
        elapsed = time.perf_counter() - started
        print(f"generated {args.lines} lines, {size / MB:.1f} MB in {elapsed:.1f}s")
        with emulator_process("--rps", "100000000", "--data-dir", tmp) as (base_url, process):
            idle_rss = psutil.Process(process.pid).memory_info().rss
            headers = {"Authorization": f"Bearer {API_KEY}"}
            with (
                RssSampler(process.pid) as rss,
                httpx2.Client(base_url=base_url, headers=headers, timeout=600.0) as client,
            ):
                started = time.perf_counter()
                with source.open("rb") as handle:
                    uploaded = client.post(
                        "/v1/files",
                        files={"file": ("requests.jsonl", handle)},
                        data={"purpose": "batch"},
                    ).json()
                upload_seconds = time.perf_counter() - started
                print(
                    f"upload: {upload_seconds:.1f}s ({size / MB / upload_seconds:.0f} MB/s), "
                    f"num_lines={uploaded['num_lines']} bytes={uploaded['bytes']}"
                )
                job = client.post(
                    "/v1/batch/jobs",
                    json={
                        "endpoint": "/v1/chat/completions",
                        "model": "mistral-small-latest",
                        "input_files": [uploaded["id"]],
                    },
                ).json()
                started = time.perf_counter()
                poll_latencies = []
                while True:
                    poll_started = time.perf_counter()
                    job = client.get(f"/v1/batch/jobs/{job['id']}").json()
                    poll_latencies.append(time.perf_counter() - poll_started)
                    if job["status"] in {"SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED"}:
                        break
                    time.sleep(0.5)
                job_seconds = time.perf_counter() - started
                print(
                    f"job: {job['status']} {job['succeeded_requests']}/{job['total_requests']} "
                    f"in {job_seconds:.1f}s ({job['completed_requests'] / job_seconds:.0f} "
                    f"requests/s); max poll latency while running "
                    f"{max(poll_latencies) * 1000:.0f}ms"
                )
                started = time.perf_counter()
                downloaded = 0
                with client.stream("GET", f"/v1/files/{job['output_file']}/content") as response:
                    for chunk in response.iter_bytes():
                        downloaded += len(chunk)
                print(
                    f"output download: {downloaded / MB:.1f} MB in "
                    f"{time.perf_counter() - started:.1f}s"
                )
            print(f"emulator RSS: idle {idle_rss / MB:.0f} MB, peak {rss.peak / MB:.0f} MB")


if __name__ == "__main__":
    main()
