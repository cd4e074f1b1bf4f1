"""Bench: memory and time of ``requests=`` with a million request dicts already in memory.

Builds the list in this (fresh) process as an XCom pull gives it (request dicts decoded from
JSON, about 200 bytes a line each), records the RSS it holds, then validates it and writes the
upload file(s) with ``prepare_requests`` exactly as ``MistralBatchOperator(requests=...)``
does by default (no ``results_path``: ``inline=True``, ids given, no ``max_requests_per_job``).
The peak RSS above the list is read from the kernel's high-water mark (``VmHWM``), reset to the
current RSS right before the call (``/proc/self/clear_refs``), so the list's own building never
counts; a thread also samples RSS every 2 ms, as a cross-check and where the reset is not
available. Prints requests, the list's RSS, the peak above it, wall time, bytes written, and the
target: at most 150 MB above the list. ``--generator`` feeds the same requests from a generator
instead (no list: the peak is above the process before the call, as in bench/big_batch.py).

    .venv/bin/python bench/requests_memory.py [--requests 1000000] [--runs 1]
        [--results-path] [--assign-ids] [--generator]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from emulator_common import trim_heap

MB = 1e6
ENDPOINT = "/v1/chat/completions"
MODEL = "mistral-small-latest"
PEAK_LIMIT_MB = 150.0
# XCom values arrive decoded from JSON; built in chunks so the JSON text never gets big.
CHUNK = 10_000
# The same prompt as bench/big_batch.py: lines of about 200 bytes, each request's differs.
PROMPT = (
    "Request {:07d}: in one short sentence, say why the sky looks blue on a clear summer "
    "afternoon in the hills."
)
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


def _high_water_mark() -> int | None:
    """The kernel's peak RSS of this process (VmHWM), in bytes; None off Linux."""
    with contextlib.suppress(OSError):
        found = re.search(r"^VmHWM:\s+(\d+) kB", _STATUS.read_text(), re.MULTILINE)
        if found:
            return int(found.group(1)) * 1024
    return None


def _reset_high_water_mark() -> bool:
    """Set VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


class _Sampler:
    """Samples this process's RSS every 2 ms on a thread; keeps the highest."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._process = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, int(self._process.memory_info().rss))
            self._stop.wait(0.002)

    def __enter__(self) -> _Sampler:
        self.peak = _rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def _request(index: int) -> dict[str, Any]:
    return {
        "custom_id": f"r{index:07d}",
        "body": {
            "max_tokens": 16,
            "messages": [{"role": "user", "content": PROMPT.format(index)}],
        },
    }


def build(count: int) -> list[dict[str, Any]]:
    """``count`` chat requests as an XCom pull returns them: dicts decoded from JSON."""
    requests: list[dict[str, Any]] = []
    for start in range(0, count, CHUNK):
        chunk = [_request(index) for index in range(start, min(start + CHUNK, count))]
        requests.extend(json.loads(json.dumps(chunk)))
    return requests


def generate(count: int, assign_ids: bool) -> Iterator[dict[str, Any]]:
    """The same requests made one at a time."""
    for index in range(count):
        request = _request(index)
        if assign_ids:
            del request["custom_id"]
        yield request


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1, help="prepare_requests calls, one by one")
    parser.add_argument(
        "--results-path",
        action="store_true",
        help="as with results_path set (inline=False: always files)",
    )
    parser.add_argument(
        "--assign-ids", action="store_true", help="requests without custom_id, assign_custom_ids"
    )
    parser.add_argument(
        "--generator", action="store_true", help="from a generator instead of a list"
    )
    args = parser.parse_args()
    if args.requests < 1 or args.runs < 1:
        parser.error("--requests and --runs must be at least 1")

    from airflow_provider_mistral_batch.batch.input import prepare_requests, temporary_files

    trim_heap()
    before = _rss()
    built: list[dict[str, Any]] = []
    if args.generator:
        print(f"{args.requests:,} requests from a generator (no list)", flush=True)
    else:
        started = time.perf_counter()
        built = build(args.requests)
        if args.assign_ids:
            for request in built:
                del request["custom_id"]
        build_s = time.perf_counter() - started
        trim_heap()
        baseline = _rss()
        print(
            f"{args.requests:,} requests built in {build_s:.1f} s; the list holds "
            f"{(baseline - before) / MB:.0f} MB of RSS (process {baseline / MB:.0f} MB)",
            flush=True,
        )

    what = "process before the call" if args.generator else "list"
    worst = 0.0
    for run in range(1, args.runs + 1):
        trim_heap()
        baseline = _rss()
        exact = _reset_high_water_mark()
        requests: Iterable[dict[str, Any]] = (
            generate(args.requests, args.assign_ids) if args.generator else built
        )
        with _Sampler() as sampler:
            started = time.perf_counter()
            prepared = prepare_requests(
                requests,
                endpoint=ENDPOINT,
                model=MODEL,
                assign_custom_ids=args.assign_ids,
                inline=not args.results_path,
            )
            wall = time.perf_counter() - started
        high = _high_water_mark() if exact else None
        after = _rss()
        files = temporary_files(prepared)
        written = sum(path.stat().st_size for path in files)
        for path in files:
            path.unlink(missing_ok=True)
        sampled_mb = (sampler.peak - baseline) / MB
        peak_mb = (high - baseline) / MB if high is not None else sampled_mb
        worst = max(worst, peak_mb)
        print(
            f"run {run}: {prepared.request_count:,} requests, wall {wall:.2f} s "
            f"({prepared.request_count / wall:,.0f} requests/s); peak RSS above the {what} "
            f"+{peak_mb:.0f} MB ({'VmHWM' if high is not None else 'sampled'}; sampled every "
            f"2 ms: +{sampled_mb:.0f} MB); held after return +{(after - baseline) / MB:.0f} MB; "
            f"{written:,} bytes written to {len(files)} file(s); "
            f"fingerprint {prepared.fingerprint[:16]}",
            flush=True,
        )
        del prepared

    verdict = "PASS" if worst <= PEAK_LIMIT_MB else "MISS"
    print(f"target: peak at most {PEAK_LIMIT_MB:.0f} MB above the {what}: +{worst:.0f} MB", verdict)
    return 0


if __name__ == "__main__":
    # The provider package imports Airflow: give it a home of its own, removed at the end.
    home = tempfile.mkdtemp(prefix="bench-requests-memory-")
    os.environ.setdefault("AIRFLOW_HOME", home)
    os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
    try:
        code = main()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    sys.exit(code)
