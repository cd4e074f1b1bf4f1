"""Bench: 1,000 concurrent async pollers of GET /v1/batch/jobs/{id} against the emulator.

Run: .venv/bin/python bench/emulator_pollers.py [--pollers 1000] [--polls 20] [--clients 10]
Prints requests/s, p50/p99 latency and errors; loopback only, bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import httpx2
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from emulator_common import API_KEY, emulator_process


async def _poller(
    client: httpx2.AsyncClient,
    path: str,
    polls: int,
    stop_at: float,
    latencies: list[float],
    errors: list[str],
) -> None:
    for _ in range(polls):
        if time.monotonic() > stop_at:
            return
        started = time.perf_counter()
        try:
            response = await client.get(path)
            if response.status_code != 200:
                errors.append(f"HTTP {response.status_code}")
        except httpx2.HTTPError as exc:
            errors.append(type(exc).__name__)
            continue
        latencies.append(time.perf_counter() - started)


async def _run(
    base_url: str,
    server: psutil.Process,
    pollers: int,
    polls: int,
    max_seconds: float,
    clients: int,
) -> None:
    # httpx keeps a linear connection pool: several small clients scale better than one huge.
    per_client = -(-pollers // clients)
    limits = httpx2.Limits(max_connections=per_client, max_keepalive_connections=per_client)
    pool = [
        httpx2.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {API_KEY}"},
            limits=limits,
            timeout=60.0,
        )
        for _ in range(clients)
    ]
    try:
        job = (
            await pool[0].post(
                "/v1/batch/jobs",
                json={
                    "endpoint": "/v1/chat/completions",
                    "model": "mistral-small-latest",
                    "requests": [
                        {"custom_id": str(i), "body": {"messages": [{"role": "user"}]}}
                        for i in range(1000)
                    ],
                },
            )
        ).json()
        path = f"/v1/batch/jobs/{job['id']}"
        latencies: list[float] = []
        errors: list[str] = []
        stop_at = time.monotonic() + max_seconds
        cpu_before = sum(server.cpu_times()[:2])
        started = time.perf_counter()
        await asyncio.gather(
            *(
                _poller(pool[index % clients], path, polls, stop_at, latencies, errors)
                for index in range(pollers)
            )
        )
        elapsed = time.perf_counter() - started
        server_cpu = sum(server.cpu_times()[:2]) - cpu_before
        final = (await pool[0].get(path)).json()
    finally:
        for client in pool:
            await client.aclose()
    done = len(latencies)
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")
    print(f"pollers={pollers} clients={clients} polls_each={polls} ok={done} errors={len(errors)}")
    print(f"elapsed={elapsed:.2f}s requests_per_second={done / elapsed:.0f}")
    print(
        f"latency p50={statistics.median(ordered) * 1000:.1f}ms p99={p99 * 1000:.1f}ms "
        f"max={ordered[-1] * 1000:.1f}ms"
    )
    print(
        f"emulator CPU: {server_cpu:.1f}s ({server_cpu / elapsed:.0%} of one core), "
        f"{server_cpu / max(done, 1) * 1e6:.0f}us per request"
    )
    print(f"job status at the end: {final['status']} ({final['completed_requests']}/1000)")
    if errors:
        print("error kinds:", sorted(set(errors)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pollers", type=int, default=1000)
    parser.add_argument("--polls", type=int, default=20)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--clients", type=int, default=10, help="AsyncClients sharing the pollers")
    args = parser.parse_args()
    with emulator_process("--rps", "50") as (base_url, process):
        server = psutil.Process(process.pid)
        asyncio.run(
            _run(base_url, server, args.pollers, args.polls, args.max_seconds, args.clients)
        )


if __name__ == "__main__":
    main()
