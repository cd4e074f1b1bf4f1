"""Bench: 1,000,000 chat requests through the provider and the emulator, step by step.

Builds and validates the requests from a generator (``prepare_requests``), uploads the JSONL
with the hook (and with curl, side by side), runs the job on the emulator (a child process),
joins its results with the input (``write_results``; side by side: a download and a bare
``json.loads`` loop), and checks that 1,000,001 requests become two shards. Prints each step's
wall time and its peak RSS above the step's baseline (this process, sampled every 10 ms), then
the targets: upload >= 80% of curl's throughput (medians of alternating rounds), results >= 50%
of the bare loop's rate, peak RSS < 200 MB above baseline in every step, two jobs for
1,000,001 requests.

    .venv/bin/python bench/big_batch.py [--requests 1000000] [--skip-overflow]
        [--upload-rounds 3] [--rps 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from emulator_common import API_KEY, emulator_process, trim_heap

MB = 1e6
ENDPOINT = "/v1/chat/completions"
MODEL = "mistral-small-latest"
JOB_DEADLINE_SECONDS = 240.0
CURL_TIMEOUT_SECONDS = 120.0
RSS_LIMIT_MB = 200.0
# A prompt of about 110 characters (a line of about 200 bytes); each request's differs.
PROMPT = (
    "Request {:07d}: in one short sentence, say why the sky looks blue on a clear summer "
    "afternoon in the hills."
)


# ---------------------------------------------------------------------------- measuring


@dataclass
class Step:
    name: str
    seconds: float = 0.0
    baseline_mb: float = 0.0
    peak_above_mb: float = 0.0


class Measured:
    """Times a block and samples this process's RSS every 10 ms; keeps the peak above the
    RSS at the block's start."""

    def __init__(self, name: str, steps: list[Step]) -> None:
        self.step = Step(name)
        self._steps = steps
        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._peak = 0
        self._started = 0.0

    def _rss(self) -> int:
        return int(self._process.memory_info().rss)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._peak = max(self._peak, self._rss())
            self._stop.wait(0.01)

    def __enter__(self) -> Step:
        trim_heap()
        baseline = self._rss()
        self.step.baseline_mb = baseline / MB
        self._peak = baseline
        self._thread.start()
        self._started = time.perf_counter()
        return self.step

    def __exit__(self, *exc: object) -> None:
        self.step.seconds = time.perf_counter() - self._started
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._rss())
        self.step.peak_above_mb = self._peak / MB - self.step.baseline_mb
        self._steps.append(self.step)
        print(
            f"  [{self.step.name}] {self.step.seconds:.1f} s, peak RSS "
            f"+{self.step.peak_above_mb:.0f} MB above {self.step.baseline_mb:.0f} MB",
            flush=True,
        )


# ---------------------------------------------------------------------------- the steps


def generate(count: int) -> Iterator[dict[str, Any]]:
    """``count`` chat requests of about 200 bytes each, made one at a time."""
    for index in range(count):
        yield {
            "custom_id": f"r{index:06d}",
            "body": {
                "max_tokens": 16,
                "messages": [{"role": "user", "content": PROMPT.format(index)}],
            },
        }


def curl_upload(path: Path, base_url: str) -> tuple[float, str]:
    """Upload ``path`` with curl; its wall time and the new file's id."""
    command = [
        "curl",
        "-sS",
        "-F",
        f"file=@{path}",
        "-F",
        "purpose=batch",
        "-H",
        f"Authorization: Bearer {API_KEY}",
        f"{base_url}/v1/files",
    ]
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603
        command, capture_output=True, check=True, timeout=CURL_TIMEOUT_SECONDS
    )
    seconds = time.perf_counter() - started
    return seconds, str(json.loads(done.stdout)["id"])


def bare_loop(path: Path) -> tuple[float, int]:
    """``for line in f: json.loads(line)`` over a file; its time and the lines read."""
    started = time.perf_counter()
    lines = 0
    with path.open("rb") as handle:
        for line in handle:
            json.loads(line)
            lines += 1
    return time.perf_counter() - started, lines


def share(ours: float, theirs: float) -> str:
    return f"{100 * ours / theirs:.0f}%" if theirs else "n/a"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def run(args: argparse.Namespace, workdir: Path, cleanup: list[Path]) -> int:
    steps: list[Step] = []
    data_dir = workdir / "emulator"
    data_dir.mkdir()
    emulator_args = ("--rps", str(args.rps), "--data-dir", str(data_dir))
    with emulator_process(*emulator_args) as (base_url, _):
        os.environ["AIRFLOW_CONN_MISTRAL_DEFAULT"] = json.dumps(
            {"conn_type": "mistral", "host": base_url, "password": API_KEY}
        )
        from airflow.sdk import ObjectStoragePath

        from airflow_provider_mistral_batch.batch.input import (
            FileInput,
            ShardedInput,
            prepare_requests,
            temporary_files,
        )
        from airflow_provider_mistral_batch.batch.request_lines import requests_of_path
        from airflow_provider_mistral_batch.batch.results import write_results
        from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

        hook = MistralBatchHook()
        hook.get_conn()
        print(f"emulator {base_url} (--rps {args.rps}), {args.requests:,} requests", flush=True)

        # 1. build and validate
        print("1. build and validate from a generator (prepare_requests)", flush=True)
        with Measured("1 build+validate", steps):
            prepared = prepare_requests(generate(args.requests), endpoint=ENDPOINT, model=MODEL)
            cleanup.extend(temporary_files(prepared))
        if not isinstance(prepared, FileInput):
            raise RuntimeError(f"expected one FileInput, got {type(prepared).__name__}")
        size = prepared.size
        print(
            f"   {prepared.request_count:,} requests, {size / MB:.1f} MB "
            f"({size / prepared.request_count:.0f} bytes a line), "
            f"{prepared.request_count / steps[-1].seconds:,.0f} requests/s",
            flush=True,
        )

        # 2. upload, hook vs curl: alternating rounds, the median of each (one sub-second
        # upload varies by tens of percent on 2 cores shared with the emulator)
        print("2. upload (hook.upload_file vs curl -F)", flush=True)
        with Measured("2 upload", steps):
            uploaded = hook.upload_file(prepared.path)
        hook_times = [steps[-1].seconds]
        curl_times: list[float] = []
        for round_ in range(args.upload_rounds):
            if round_:
                started = time.perf_counter()
                extra = hook.upload_file(prepared.path)
                hook_times.append(time.perf_counter() - started)
                hook.delete_file(extra.id)
            curl_s, curl_file = curl_upload(prepared.path, base_url)
            curl_times.append(curl_s)
            hook.delete_file(curl_file)
        hook_mbs = size / MB / statistics.median(hook_times)
        curl_mbs = size / MB / statistics.median(curl_times)
        print(
            f"   file {uploaded.id}: {uploaded.bytes:,} bytes, {uploaded.num_lines:,} lines\n"
            f"   hook s: {' '.join(f'{t:.2f}' for t in hook_times)}; "
            f"curl s: {' '.join(f'{t:.2f}' for t in curl_times)}\n"
            f"   medians: hook {hook_mbs:.0f} MB/s, curl {curl_mbs:.0f} MB/s; "
            f"ours {share(hook_mbs, curl_mbs)} of curl's",
            flush=True,
        )

        # 3. create + wait
        print("3. create + wait (create_batch_job, get_batch_job until terminal)", flush=True)
        polls = 0
        with Measured("3 create+wait", steps):
            job = hook.create_batch_job(endpoint=ENDPOINT, input_files=[uploaded.id], model=MODEL)
            deadline = time.monotonic() + JOB_DEADLINE_SECONDS
            while not job.status.is_terminal:
                if time.monotonic() > deadline:
                    hook.cancel_batch_job(job.id)
                    raise RuntimeError(f"job {job.id} still {job.status} after the deadline")
                time.sleep(0.25)
                job = hook.get_batch_job(job.id)
                polls += 1
        print(
            f"   {job.status}: {job.succeeded_requests:,} succeeded, {job.failed_requests:,} "
            f"failed of {job.total_requests:,}; {polls} polls, "
            f"{job.completed_requests / steps[-1].seconds:,.0f} requests/s",
            flush=True,
        )
        if job.output_file is None:
            raise RuntimeError(f"job {job.id} has no output file")

        # 4. results, vs download + bare loop
        print("4. results (write_results vs download_file + bare json.loads loop)", flush=True)
        destination = ObjectStoragePath(f"file://{workdir}/results.jsonl")
        with Measured("4 results", steps):
            summary = write_results(
                hook,
                [job.output_file, job.error_file],
                destination,
                requests=requests_of_path(prepared.path),
            )
        results_s = steps[-1].seconds
        download_path = workdir / "output.jsonl"
        started = time.perf_counter()
        downloaded = hook.download_file(job.output_file, download_path)
        download_s = time.perf_counter() - started
        loop_s, loop_lines = bare_loop(download_path)
        download_path.unlink()
        results_rate = summary.lines / results_s
        bare_rate = loop_lines / (download_s + loop_s)
        loop_rate = loop_lines / loop_s
        print(
            f"   results incl. download: {results_s:.1f} s, {results_rate:,.0f} lines/s\n"
            f"   download {downloaded / MB:.0f} MB: {download_s:.1f} s; bare loop "
            f"{loop_lines:,} lines: {loop_s:.1f} s\n"
            f"   download + bare loop: {bare_rate:,.0f} lines/s -> ours "
            f"{share(results_rate, bare_rate)}\n"
            f"   bare loop alone: {loop_rate:,.0f} lines/s -> ours "
            f"{share(results_rate, loop_rate)}",
            flush=True,
        )
        usage = ", ".join(f"{key}={value:,}" for key, value in summary.usage.items())
        print(
            f"   summary: lines={summary.lines:,} succeeded={summary.succeeded:,} "
            f"failed={summary.failed:,} missing={summary.missing:,} "
            f"unexpected={summary.unexpected:,}; usage {usage}",
            flush=True,
        )
        for path in temporary_files(prepared):
            path.unlink(missing_ok=True)

        # 5. 1,000,001 requests: two shards
        shard_count: int | None = None
        if not args.skip_overflow:
            overflow = 1_000_001
            print(f"5. {overflow:,} requests, max_requests_per_job unset", flush=True)
            with Measured("5 overflow", steps):
                sharded = prepare_requests(generate(overflow), endpoint=ENDPOINT, model=MODEL)
                files = temporary_files(sharded)
                cleanup.extend(files)
            shards = sharded.shards if isinstance(sharded, ShardedInput) else [sharded]
            shard_count = len(shards)
            for shard in shards:
                assert isinstance(shard, FileInput)
                print(
                    f"   {shard.filename}: {shard.request_count:,} "
                    f"request{'' if shard.request_count == 1 else 's'}, "
                    f"{shard.size / MB:.1f} MB",
                    flush=True,
                )
            for path in files:
                path.unlink(missing_ok=True)

    # the figures and the targets
    print()
    print(f"{'step':<18} {'wall s':>7} {'baseline MB':>12} {'peak above MB':>14}")
    for step in steps:
        print(
            f"{step.name:<18} {step.seconds:>7.1f} {step.baseline_mb:>12.0f} "
            f"{step.peak_above_mb:>14.0f}"
        )
    worst = max(steps, key=lambda step: step.peak_above_mb)
    print()
    rows = [
        (
            "upload >= 80% of curl's MB/s (medians)",
            f"{share(hook_mbs, curl_mbs)} ({hook_mbs:.0f} vs {curl_mbs:.0f})",
            verdict(hook_mbs >= 0.8 * curl_mbs),
        ),
        (
            "results >= 50% of download+bare loop",
            f"{share(results_rate, bare_rate)} ({results_rate:,.0f} vs {bare_rate:,.0f} lines/s)",
            verdict(results_rate >= 0.5 * bare_rate),
        ),
        (
            "  stricter: vs bare loop alone",
            f"{share(results_rate, loop_rate)} ({results_rate:,.0f} vs {loop_rate:,.0f} lines/s)",
            verdict(results_rate >= 0.5 * loop_rate),
        ),
        (
            f"peak RSS < {RSS_LIMIT_MB:.0f} MB above baseline",
            f"worst +{worst.peak_above_mb:.0f} MB ({worst.name})",
            verdict(all(step.peak_above_mb < RSS_LIMIT_MB for step in steps)),
        ),
        (
            "1,000,001 requests -> 2 jobs",
            "skipped" if shard_count is None else f"{shard_count} shards",
            "SKIP" if shard_count is None else verdict(shard_count == 2),
        ),
    ]
    print(f"{'target':<40} {'measured':<42} result")
    for target, measured, result in rows:
        print(f"{target:<40} {measured:<42} {result}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--skip-overflow", action="store_true", help="skip step 5")
    parser.add_argument(
        "--upload-rounds", type=int, default=3, help="hook and curl uploads each (median)"
    )
    parser.add_argument("--rps", type=int, default=100_000, help="emulator --rps (default 100,000)")
    args = parser.parse_args()
    if args.upload_rounds < 1:
        parser.error("--upload-rounds must be at least 1")
    if not 10_000 < args.requests <= 1_000_000:
        parser.error("--requests must be over 10,000 (the inline limit) and at most 1,000,000")
    workdir = Path(tempfile.mkdtemp(prefix="bench-big-batch-"))
    os.environ["AIRFLOW_HOME"] = str(workdir / "airflow")
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    cleanup: list[Path] = []
    started = time.perf_counter()
    try:
        return run(args, workdir, cleanup)
    finally:
        for path in cleanup:
            path.unlink(missing_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)
        print(f"total {time.perf_counter() - started:.0f} s; temporary files removed")


if __name__ == "__main__":
    sys.exit(main())
