"""Bench: many MistralBatchJobTriggers in one event loop, as in one triggerer.

Starts the emulator in a child process, creates N slow jobs, then runs N triggers (one per job)
concurrently in this process for a fixed time and prints: polls made, CPU time per poll, memory
per trigger, and the TCP connections open to the API (counted by the OS, not by the provider: a
shared client keeps them within its pool of 100, a client per trigger would open one each).
Loopback only; bounded in count and time.

    .venv/bin/python bench/triggers_many.py [--triggers 1000] [--seconds 20] [--interval 2]
        [--max-interval SECONDS]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from emulator_common import API_KEY, emulator_process, rss_mb


def connections_to(port: int) -> int:
    """This process's established TCP connections to ``port``."""
    import psutil

    return sum(
        1
        for conn in psutil.Process().net_connections(kind="tcp")
        if conn.raddr and conn.raddr.port == port and conn.status == psutil.CONN_ESTABLISHED
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triggers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=2.0, help="poll interval of each trigger")
    parser.add_argument(
        "--max-interval",
        type=float,
        default=None,
        help="longest interval a long-running job's polls grow to (default: --interval, a fixed "
        "schedule, which the ideal count of polls assumes)",
    )
    args = parser.parse_args()

    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"
    # A job takes 1,000 s at this rate: every job keeps running through the bench.
    with emulator_process("--rps", "1") as (base_url, _):
        os.environ["AIRFLOW_CONN_MISTRAL_DEFAULT"] = json.dumps(
            {"conn_type": "mistral", "host": base_url, "password": API_KEY}
        )
        from airflow_provider_mistral_batch.hooks.http import clients as http_clients
        from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
        from airflow_provider_mistral_batch.triggers.batch import MistralBatchJobTrigger

        hook = MistralBatchHook()
        requests = [{"custom_id": str(i), "body": {"input": ["x"]}} for i in range(1000)]
        job_ids = [
            hook.create_batch_job(
                endpoint="/v1/embeddings", model="mistral-embed", requests=requests
            ).id
            for _ in range(args.triggers)
        ]
        print(f"created {len(job_ids)} running jobs on {base_url}")

        # Counted here, around the provider's methods (it keeps no counters of its own): each
        # job read a trigger was answered ("polls": from a GET or a sweep's listing), and the
        # API calls made for them.
        from airflow_provider_mistral_batch.batch.watcher import SharedJobWatcher

        counts = {"polls": 0, "get": 0, "list": 0}

        def counting(cls: Any, name: str, key: str) -> None:
            original = getattr(cls, name)

            async def counted(*args: Any, **kwargs: Any) -> Any:
                answer = await original(*args, **kwargs)
                counts[key] += 1  # once answered: a read still waiting at the end is no poll
                return answer

            setattr(cls, name, counted)

        counting(SharedJobWatcher, "read", "polls")
        counting(SharedJobWatcher, "read_after", "polls")
        counting(MistralBatchHook, "aget_batch_job", "get")
        counting(MistralBatchHook, "alist_batch_jobs_page", "list")

        async def run_all() -> tuple[float, int]:
            triggers = [
                MistralBatchJobTrigger(
                    job_id=job_id,
                    poll_interval=args.interval,
                    max_poll_interval=args.max_interval or args.interval,
                )
                for job_id in job_ids
            ]

            async def drive(trigger: MistralBatchJobTrigger) -> None:
                async for _ in trigger.run():
                    return

            tasks = [asyncio.create_task(drive(trigger)) for trigger in triggers]
            await asyncio.sleep(args.seconds)
            connections = connections_to(int(base_url.rsplit(":", 1)[1]))
            rss = rss_mb()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await http_clients.close_shared_async_clients()
            return rss, connections

        rss_before = rss_mb()
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        wall_start = time.monotonic()
        rss_during, connections = asyncio.run(run_all())
        wall = time.monotonic() - wall_start
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (
            cpu_after.ru_stime - cpu_before.ru_stime
        )

    polls, calls = counts["polls"], counts["get"] + counts["list"]
    expected = args.triggers * args.seconds / args.interval
    print(f"triggers:               {args.triggers} (poll interval {args.interval:g} s)")
    print(f"run time:               {wall:.1f} s")
    print(f"polls made:             {polls:,} ({polls / expected:.0%} of {expected:,.0f} ideal)")
    listed, got = counts["list"], counts["get"]
    print(f"API calls:              {calls:,} ({listed:,} list pages, {got:,} GETs)")
    print(f"CPU in this process:    {cpu:.2f} s = {100 * cpu / wall:.0f}% of one core")
    print(f"CPU per poll:           {1000 * cpu / max(polls, 1):.2f} ms")
    print(f"RSS before / during:    {rss_before:.0f} MB / {rss_during:.0f} MB")
    print(f"memory per trigger:     {1000 * (rss_during - rss_before) / args.triggers:.0f} kB")
    print(f"connections to the API: {connections} (one shared client's pool: at most 100)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
