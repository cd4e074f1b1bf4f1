"""Bench: N MistralBatchJobTriggers in one event loop, as one triggerer runs them.

A minimal fake of the Batch API (raw ASGI on uvicorn, in a child process) answers after
``--latency`` seconds. Its N jobs run from the start and end at staggered times (uniform
between ``--min-job`` and ``--max-job`` seconds; every 20th FAILED, the others SUCCESS); it
serves ``GET /v1/batch/jobs/{id}`` and the job list with status filter and pages, from
answers prepared in advance, so the server is never what limits the run. (The emulator runs
a task per job and logs every request: at 5,000 jobs it competes for the same two cores.)

The triggers are created one per loop iteration, as Airflow's triggerer does, and each runs
to its event. Printed: wall time, event-loop lag p50/p99/max (a 5 ms ticker), the longest
garbage collection, CPU of this process per 1,000 job-polls (answers handed to the waiting
cores), RSS per trigger, open sockets, API calls per job-hour against one call per poll, and
the delay from a job's end to its event.

    .venv/bin/python bench/triggerer.py --triggers 5000 --interval 30 --latency 0.25 \\
        --min-job 30 --max-job 150
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from emulator_common import API_KEY, free_port, rss_mb

# ---------------------------------------------------------------- the fake API (child process)


def _job_body(index: int, start: int, status: str, done: bool) -> dict[str, Any]:
    return {
        "id": f"job-{index:05d}",
        "object": "batch",
        "input_files": ["file-1"],
        "metadata": None,
        "endpoint": "/v1/embeddings",
        "model": "mistral-embed",
        "output_file": "out-1" if done else None,
        "error_file": None,
        "errors": [{"message": "failed", "count": 1}] if status == "FAILED" else [],
        "status": status,
        "created_at": start,
        "total_requests": 100,
        "completed_requests": 100 if done else 50,
        "succeeded_requests": 100 if status == "SUCCESS" else 50,
        "failed_requests": 0,
        "started_at": start,
        "completed_at": start + 1 if done else None,
    }


def schedule(count: int, seed: int, start: float, low: float, high: float) -> list[float]:
    """When each job ends (epoch seconds): the same in the server and the bench."""
    rng = random.Random(seed)
    return [start + rng.uniform(low, high) for _ in range(count)]


def serve(
    port: int, count: int, seed: int, start: float, low: float, high: float, latency: float
) -> None:
    import uvicorn

    ends = schedule(count, seed, start, low, high)
    created = int(start)
    running = [json.dumps(_job_body(i, created, "RUNNING", False)).encode() for i in range(count)]
    final = [
        json.dumps(_job_body(i, created, "FAILED" if i % 20 == 0 else "SUCCESS", True)).encode()
        for i in range(count)
    ]
    index = {f"job-{i:05d}": i for i in range(count)}
    calls = {"get": 0, "list": 0}

    async def send(send_fn: Any, status: int, body: bytes) -> None:
        await send_fn(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send_fn({"type": "http.response.body", "body": body})

    async def app(scope: dict[str, Any], receive: Any, send_fn: Any) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path == "/stats":
            await send(send_fn, 200, json.dumps(calls).encode())
            return
        await asyncio.sleep(latency)
        now = time.time()
        if path == "/v1/batch/jobs":
            calls["list"] += 1
            query = dict(
                pair.split("=", 1)
                for pair in scope["query_string"].decode().split("&")
                if "=" in pair
            )
            page, size = int(query.get("page", 0)), int(query.get("page_size", 100))
            active = [i for i in range(count) if ends[i] > now]
            chosen = active[page * size : (page + 1) * size]
            body = b'{"object":"list","total":%d,"data":[%s]}' % (
                len(active),
                b",".join(running[i] for i in chosen),
            )
            await send(send_fn, 200, body)
            return
        calls["get"] += 1
        i = index.get(path.rsplit("/", 1)[-1])
        if i is None:
            await send(send_fn, 404, b'{"object":"error","message":"not found","type":"not_found"}')
            return
        await send(send_fn, 200, running[i] if ends[i] > now else final[i])

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ---------------------------------------------------------------- the triggerer side


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def run_triggers(args: argparse.Namespace, ends: list[float]) -> dict[str, Any]:
    import psutil

    from airflow_provider_mistral_batch.triggers.batch import MistralBatchJobTrigger
    from airflow_provider_mistral_batch.utils import watch as watch_module
    from airflow_provider_mistral_batch.utils.http.clients import close_shared_async_clients

    polls = 0
    original_record = watch_module.JobWatch.record

    def counting_record(self: Any, answer: Any) -> Any:
        nonlocal polls
        polls += 1
        return original_record(self, answer)

    watch_module.JobWatch.record = counting_record  # type: ignore[method-assign]

    lags: list[float] = []
    stop = asyncio.Event()
    sockets = 0
    rss_peak = 0.0
    process = psutil.Process()

    async def ticker() -> None:
        step = 0.005
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(step)
            lags.append(time.perf_counter() - before - step)

    async def sampler() -> None:
        nonlocal sockets, rss_peak
        while not stop.is_set():
            sockets = max(sockets, len(process.net_connections(kind="tcp")))
            rss_peak = max(rss_peak, rss_mb())
            await asyncio.sleep(1.0)

    events: dict[int, tuple[float, str]] = {}
    started: dict[int, float] = {}

    async def run_one(i: int, trigger: MistralBatchJobTrigger) -> None:
        started[i] = time.time()
        async for event in trigger.run():
            events[i] = (time.time(), event.payload["kind"])

    rss_before = rss_mb()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    monitors = [asyncio.create_task(ticker()), asyncio.create_task(sampler())]
    wall_start = time.monotonic()
    tasks = []
    for i in range(args.triggers):
        trigger = MistralBatchJobTrigger(
            f"job-{i:05d}",
            poll_interval=args.interval,
            max_poll_interval=args.max_interval,
        )
        tasks.append(asyncio.create_task(run_one(i, trigger)))
        await asyncio.sleep(0)  # the triggerer creates one trigger per loop iteration
    await asyncio.gather(*tasks)
    wall = time.monotonic() - wall_start
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    stop.set()
    await asyncio.gather(*monitors)
    await close_shared_async_clients()
    watch_module.JobWatch.record = original_record  # type: ignore[method-assign]
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    delays = [events[i][0] - ends[i] for i in events]
    watched_seconds = sum(events[i][0] - started[i] for i in events)
    return {
        "wall": wall,
        "lags": lags,
        "cpu": cpu,
        "polls": polls,
        "rss_before": rss_before,
        "rss_peak": rss_peak,
        "sockets": sockets,
        "delays": delays,
        "events": len(events),
        "kinds": sorted({kind for _, kind in events.values()}),
        "watched_seconds": watched_seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triggers", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=30.0, help="poll_interval (s)")
    parser.add_argument(
        "--max-interval", type=float, default=None, help="max_poll_interval (s); default fixed"
    )
    parser.add_argument("--latency", type=float, default=0.25, help="server answer delay (s)")
    parser.add_argument("--min-job", type=float, default=30.0, help="shortest job (s)")
    parser.add_argument("--max-job", type=float, default=150.0, help="longest job (s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() before the triggers")
    parser.add_argument("--serve", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        port, count, seed, start, low, high, latency = args.serve
        serve(
            int(port), int(count), int(seed), float(start), float(low), float(high), float(latency)
        )
        return 0

    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    port = free_port()
    start = time.time() + 3.0  # the server's clock starts once it is up
    server_args = [str(port), str(args.triggers), str(args.seed), str(start)]
    server_args += [str(args.min_job), str(args.max_job), str(args.latency)]
    command = [sys.executable, __file__, "--serve", *server_args]
    server = subprocess.Popen(command)  # noqa: S603
    base_url = f"http://127.0.0.1:{port}"
    try:
        import httpx2

        while True:
            try:
                httpx2.get(f"{base_url}/stats")
                break
            except httpx2.TransportError:
                time.sleep(0.1)
        os.environ["AIRFLOW_CONN_MISTRAL_DEFAULT"] = json.dumps(
            {"conn_type": "mistral", "host": base_url, "password": API_KEY}
        )
        import logging

        from airflow_provider_mistral_batch.triggers.batch import MistralBatchJobTrigger  # noqa: F401

        logging.getLogger("airflow_provider_mistral_batch").setLevel(logging.WARNING)
        logging.getLogger("airflow.triggers").setLevel(logging.WARNING)

        gc_pauses: list[float] = []
        gc_started = [0.0]

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                gc_started[0] = time.perf_counter()
            else:
                gc_pauses.append(time.perf_counter() - gc_started[0])

        gc.callbacks.append(on_gc)
        if args.freeze:
            gc.freeze()
        time.sleep(max(0.0, start - time.time()))
        ends = schedule(args.triggers, args.seed, start, args.min_job, args.max_job)
        result = asyncio.run(run_triggers(args, ends))
        gc.callbacks.remove(on_gc)
        calls = json.loads(httpx2.get(f"{base_url}/stats").text)
    finally:
        server.terminate()
        server.wait(timeout=30)

    lags_ms = [1000 * lag for lag in result["lags"]]
    delays = result["delays"]
    job_hours = result["watched_seconds"] / 3600
    api_calls = calls["get"] + calls["list"]
    per_poll = 3600 / args.interval
    n = args.triggers
    print(
        f"triggers {n}, poll_interval {args.interval:g} s, max_poll_interval {args.max_interval}, "
        f"latency {args.latency:g} s, jobs {args.min_job:g}-{args.max_job:g} s"
    )
    print(f"events:                 {result['events']} of {n} ({', '.join(result['kinds'])})")
    print(f"wall:                   {result['wall']:.1f} s (last job ends at {args.max_job:g} s)")
    print(
        f"loop lag p50/p99/max:   {statistics.median(lags_ms):.1f} / "
        f"{percentile(lags_ms, 0.99):.1f} / {max(lags_ms):.1f} ms"
    )
    print(
        f"longest GC pause:       {1000 * max(gc_pauses, default=0):.1f} ms "
        f"({len(gc_pauses)} collections)"
    )
    print(f"job-polls:              {result['polls']:,}")
    print(
        f"CPU per 1,000 polls:    {1e6 * result['cpu'] / max(result['polls'], 1):.0f} ms "
        f"({result['cpu']:.1f} s in all)"
    )
    print(
        f"RSS per trigger:        {1000 * (result['rss_peak'] - result['rss_before']) / n:.1f} kB "
        f"({result['rss_before']:.0f} MB before, {result['rss_peak']:.0f} MB peak)"
    )
    print(f"open sockets (max):     {result['sockets']}")
    print(
        f"API calls:              {api_calls:,} "
        f"({calls['list']:,} list pages, {calls['get']:,} GETs)"
    )
    print(
        f"API calls per job-hour: {api_calls / job_hours:.1f} (one call per poll: {per_poll:.0f}; "
        f"ratio 1/{per_poll / max(api_calls / job_hours, 1e-9):.0f})"
    )
    print(
        f"  of which list pages:  {calls['list'] / job_hours:.1f} per job-hour; "
        f"GETs: {calls['get'] / n:.2f} per job (its end, and reads before sweeps began)"
    )
    print(
        f"end to event p50/p99/max: {statistics.median(delays):.2f} / "
        f"{percentile(delays, 0.99):.2f} / {max(delays):.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
