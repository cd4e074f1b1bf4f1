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

``--answers K`` ends jobs by count instead of by time: each job is reported RUNNING K times
(in a GET or as an entry of a job listing), then SUCCESS; it ended when its K-th RUNNING
report was sent, and the delay to its event is measured from then. A listing is served from
the active jobs as they were when its page 0 was asked for (each job reported once per
listing), so its pages never shift under the sweep that reads them.

``--list-status CODE`` answers every job listing with that HTTP status while each job's GET
works: the shared watcher falls back to per-job reads and tries the listing again with backoff.

``--openai`` runs the OpenAI provider's ``OpenAIBatchTrigger`` (apache-airflow-providers-openai)
instead, against the same fake serving ``GET /v1/batches/{id}`` in the OpenAI SDK's shape
(``in_progress``, then ``completed``), through connection ``openai_default`` whose host is the
fake's ``/v1``. Run it with an interpreter that has that provider (and not this one), e.g.

    /tmp/oai/bin/python bench/triggerer.py --openai --triggers 50 --interval 1 --answers 2
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
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


def _openai_body(index: int, start: int, done: bool) -> dict[str, Any]:
    """A batch as the OpenAI SDK's ``Batch`` model reads it (its required fields and a few)."""
    return {
        "id": f"job-{index:05d}",
        "object": "batch",
        "endpoint": "/v1/embeddings",
        "input_file_id": "file-1",
        "completion_window": "24h",
        "status": "completed" if done else "in_progress",
        "created_at": start,
        "in_progress_at": start,
        "completed_at": start + 1 if done else None,
        "output_file_id": "out-1" if done else None,
        "error_file_id": None,
        "request_counts": {"total": 100, "completed": 100 if done else 50, "failed": 0},
        "metadata": None,
    }


def schedule(count: int, seed: int, start: float, low: float, high: float) -> list[float]:
    """When each job ends (epoch seconds): the same in the server and the bench."""
    rng = random.Random(seed)
    return [start + rng.uniform(low, high) for _ in range(count)]


def serve(
    port: int,
    count: int,
    seed: int,
    start: float,
    low: float,
    high: float,
    latency: float,
    answers: int,
    flavour: str,
    list_status: int = 0,
) -> None:
    import uvicorn

    ends = schedule(count, seed, start, low, high)
    created = int(start)
    if flavour == "openai":
        running = [json.dumps(_openai_body(i, created, False)).encode() for i in range(count)]
        final = [json.dumps(_openai_body(i, created, True)).encode() for i in range(count)]
    else:
        running = [
            json.dumps(_job_body(i, created, "RUNNING", False)).encode() for i in range(count)
        ]
        final = [
            json.dumps(
                _job_body(i, created, "FAILED" if i % 20 == 0 and not answers else "SUCCESS", True)
            ).encode()
            for i in range(count)
        ]
    index = {f"job-{i:05d}": i for i in range(count)}
    calls: dict[str, Any] = {"get": 0, "list": 0}
    # --answers: RUNNING reports sent per job, when the last one went out, the listing's snapshot
    reports = [0] * count
    ended_at: list[float | None] = [None] * count
    snapshot: list[int] = []

    def report(i: int, now: float) -> bool:
        """Whether job ``i`` is still running for this report (counting it)."""
        if reports[i] >= answers:
            return False
        reports[i] += 1
        if reports[i] == answers:
            ended_at[i] = now
        return True

    def is_running(i: int, now: float) -> bool:
        return report(i, now) if answers else ends[i] > now

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
            await send(send_fn, 200, json.dumps({**calls, "ended_at": ended_at}).encode())
            return
        await asyncio.sleep(latency)
        now = time.time()
        if path == "/v1/batch/jobs":
            calls["list"] += 1
            if list_status:  # --list-status: the listing fails, every job's GET works
                body = b'{"object":"error","message":"listing failed","type":"api_error"}'
                await send(send_fn, list_status, body)
                return
            query = dict(
                pair.split("=", 1)
                for pair in scope["query_string"].decode().split("&")
                if "=" in pair
            )
            page, size = int(query.get("page", 0)), int(query.get("page_size", 100))
            if answers:
                if page == 0:
                    snapshot[:] = [i for i in range(count) if reports[i] < answers]
                active = snapshot
                chosen = [i for i in active[page * size : (page + 1) * size] if report(i, now)]
            else:
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
        await send(send_fn, 200, running[i] if is_running(i, now) else final[i])

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ---------------------------------------------------------------- the triggerer side


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def make_trigger(args: argparse.Namespace, i: int) -> Any:
    """The trigger of job ``i``: ours, or the OpenAI provider's with ``--openai``."""
    if args.openai:
        from airflow.providers.openai.triggers.openai import OpenAIBatchTrigger

        return OpenAIBatchTrigger(
            conn_id="openai_default",
            batch_id=f"job-{i:05d}",
            poll_interval=args.interval,
            timeout=24 * 3600,
        )
    from airflow_provider_mistral_batch.triggers.batch import MistralBatchJobTrigger

    return MistralBatchJobTrigger(
        f"job-{i:05d}",
        poll_interval=args.interval,
        # Unset: the cap at the interval keeps every poll at it (the recorded runs).
        max_poll_interval=args.max_interval if args.max_interval is not None else args.interval,
    )


async def run_triggers(args: argparse.Namespace) -> dict[str, Any]:
    import psutil

    polls = 0  # counted here for ours; the server's GETs for the OpenAI trigger
    if not args.openai:
        from airflow_provider_mistral_batch.batch import waiting as watch_module

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

    async def run_one(i: int, trigger: Any) -> None:
        started[i] = time.time()
        async for event in trigger.run():
            payload = event.payload
            events[i] = (time.time(), payload.get("kind") or payload.get("status"))

    rss_before = rss_mb()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    monitors = [asyncio.create_task(ticker()), asyncio.create_task(sampler())]
    wall_start = time.monotonic()
    tasks = []
    for i in range(args.triggers):
        tasks.append(asyncio.create_task(run_one(i, make_trigger(args, i))))
        if not args.at_once:
            await asyncio.sleep(0)  # the triggerer creates one trigger per loop iteration
    await asyncio.gather(*tasks)
    wall = time.monotonic() - wall_start
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    stop.set()
    await asyncio.gather(*monitors)
    if not args.openai:
        from airflow_provider_mistral_batch.hooks.http.clients import close_shared_async_clients

        await close_shared_async_clients()
        watch_module.JobWatch.record = original_record  # type: ignore[method-assign]
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    watched_seconds = sum(events[i][0] - started[i] for i in events)
    return {
        "wall": wall,
        "lags": lags,
        "cpu": cpu,
        "polls": polls,
        "rss_before": rss_before,
        "rss_peak": rss_peak,
        "sockets": sockets,
        "event_times": {i: at for i, (at, _) in events.items()},
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
    parser.add_argument(
        "--answers",
        type=int,
        default=0,
        help="end each job after this many RUNNING reports instead of at a time (0: by time)",
    )
    parser.add_argument(
        "--openai",
        action="store_true",
        help="run the OpenAI provider's OpenAIBatchTrigger instead of ours",
    )
    parser.add_argument(
        "--at-once",
        action="store_true",
        help="create every trigger before any of them runs (a triggerer creates one per loop "
        "iteration)",
    )
    parser.add_argument(
        "--list-status",
        type=int,
        default=0,
        help="answer every job listing with this HTTP status (e.g. 403, 503): the shared "
        "watcher's fallback to per-job reads (0: listings work)",
    )
    parser.add_argument("--serve", nargs=10, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        port, count, seed, start, low, high, latency, answers, flavour, list_status = args.serve
        serve(
            int(port),
            int(count),
            int(seed),
            float(start),
            float(low),
            float(high),
            float(latency),
            int(answers),
            flavour,
            int(list_status),
        )
        return 0

    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    port = free_port()
    start = time.time() + 3.0  # the server's clock starts once it is up
    server_args = [str(port), str(args.triggers), str(args.seed), str(start)]
    server_args += [str(args.min_job), str(args.max_job), str(args.latency)]
    server_args += [str(args.answers), "openai" if args.openai else "mistral"]
    server_args += [str(args.list_status)]
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
        # The OpenAI SDK's base URL is the connection's host (the API's /v1 root).
        os.environ["AIRFLOW_CONN_OPENAI_DEFAULT"] = json.dumps(
            {"conn_type": "openai", "host": f"{base_url}/v1", "password": API_KEY}
        )
        import logging

        make_trigger(args, 0)  # import the trigger's modules before the clock starts
        for name in ("airflow_provider_mistral_batch", "airflow", "httpx", "openai"):
            logging.getLogger(name).setLevel(logging.WARNING)

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
        result = asyncio.run(run_triggers(args))
        gc.callbacks.remove(on_gc)
        calls = json.loads(httpx2.get(f"{base_url}/stats").text)
        if args.answers:
            ends: list[float] = [at if at is not None else math.nan for at in calls["ended_at"]]
        else:
            ends = schedule(args.triggers, args.seed, start, args.min_job, args.max_job)
    finally:
        server.terminate()
        server.wait(timeout=30)

    lags_ms = [1000 * lag for lag in result["lags"]]
    delays = [at - ends[i] for i, at in result["event_times"].items() if not math.isnan(ends[i])]
    if args.openai:
        result["polls"] = calls["get"]
    job_hours = result["watched_seconds"] / 3600
    api_calls = calls["get"] + calls["list"]
    per_poll = 3600 / args.interval
    n = args.triggers
    if args.answers:
        jobs = f"each job RUNNING {args.answers}x then SUCCESS"
        ideal = (args.answers + 1) * args.latency + args.answers * args.interval
        ending = f"ideal {ideal:g} s: {args.answers + 1} answers and {args.answers} intervals"
    else:
        jobs = f"jobs {args.min_job:g}-{args.max_job:g} s"
        ending = f"last job ends at {args.max_job:g} s"
    trigger_name = (
        "OpenAIBatchTrigger (OpenAI provider)" if args.openai else "MistralBatchJobTrigger"
    )
    print(
        f"{trigger_name}: triggers {n}, poll_interval {args.interval:g} s, "
        f"max_poll_interval {args.max_interval}, latency {args.latency:g} s, {jobs}"
    )
    if args.at_once:
        print("triggers created all at once, before any ran")
    if args.list_status:
        print(f"every job listing answered HTTP {args.list_status}")
    print(f"events:                 {result['events']} of {n} ({', '.join(result['kinds'])})")
    print(f"wall:                   {result['wall']:.1f} s ({ending})")
    print(
        f"loop lag p50/p99/max:   {statistics.median(lags_ms):.1f} / "
        f"{percentile(lags_ms, 0.99):.1f} / {max(lags_ms):.1f} ms"
    )
    stalls = [lag for lag in lags_ms if lag > 100]
    print(
        f"loop stalls > 100 ms:   {len(stalls)}, {sum(stalls) / 1000:.1f} s in all "
        f"({100 * sum(stalls) / 1000 / result['wall']:.0f}% of the wall)"
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
