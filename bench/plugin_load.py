"""Bench: many viewers of the UI plugin with a slow Mistral, and what Airflow's own routes feel.

Starts a real api-server (tests/system/deployment/harness.py; with ``--task-tab`` the whole
deployment) in a private home, its ``mistral_default`` connection pointing at the emulator,
which answers every API call after ``--delay`` seconds. Logs in as the admin, fires
``--viewers`` concurrent GETs of the plugin's jobs page (with ``--task-tab``, every other one
opens the task tab of a finished run of the chat example instead) and, until the last of them
has its answer, times GETs of the Execution API's health (``/execution/health``, the API task
supervisors heartbeat through) and of ``/api/v2/dags``: one request at a time per route, the
next on the first ``--interval`` tick after the answer, as a heartbeat goes; with
``--open-loop`` one on every tick, answered or not, as many polling browser tabs go. Prints
the idle baseline, the latencies under load and how the viewers' requests ended, as Markdown
to paste into docs. Every process it starts ends with it (Ctrl-C and SIGTERM included).

Run: .venv/bin/python bench/plugin_load.py [--delay 25] [--viewers 60] [--interval 0.5]
     [--task-tab] [--open-loop] [--timeline] [--keep-home]
Quick check: .venv/bin/python bench/plugin_load.py --delay 5 --viewers 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Final
from urllib.parse import quote

import httpx2

REPO: Final = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.system.deployment.harness import (  # noqa: E402  (the repository's test harness)
    COMPONENTS,
    RunningDeployment,
    running_deployment,
)

CONN_ID: Final = "mistral_default"
JOBS_PAGE: Final = f"/mistral-batch/jobs?conn_id={CONN_ID}"
#: Airflow's routes the bench times, each a plain ``def`` route on the api-server's thread pool
#: as every sync route is (same paths on Airflow 3.1.8 and 3.3.2), and whether it gets the
#: admin's token: the Execution API's health needs none (a task's supervisor would send its own
#: task token; the UI's token there only makes Airflow log a traceback per request).
PROBES: Final = {"/execution/health": False, "/api/v2/dags": True}
#: For ``--task-tab``: a finished run of this example gives the tab a real job to read.
CHAT_DAG: Final = "example_mistral_batch_chat"
CHAT_TASK: Final = "answer_questions"
IDLE_SAMPLES: Final = 10
#: An answer slower than this counts as a stall (idle answers take a few tens of ms).
STALL_SECONDS: Final = 1.0


@dataclass(frozen=True)
class Sample:
    """One timed request: when it was sent (s after the load began), how long, how it ended."""

    sent: float
    seconds: float
    outcome: str  # "200", "502", "ReadTimeout", ...


async def _timed(client: httpx2.AsyncClient, path: str, origin: float) -> Sample:
    started = time.monotonic()
    try:
        response = await client.get(path)
        outcome = str(response.status_code)
    except httpx2.HTTPError as exc:
        outcome = type(exc).__name__
    ended = time.monotonic()
    return Sample(started - origin, ended - started, outcome)


@dataclass(frozen=True)
class Clients:
    """HTTP clients to the api-server: with the admin's token, and without."""

    logged_in: httpx2.AsyncClient
    anonymous: httpx2.AsyncClient

    def for_probe(self, path: str) -> httpx2.AsyncClient:
        return self.logged_in if PROBES[path] else self.anonymous


@asynccontextmanager
async def _clients(base_url: str, token: str, client_timeout: float) -> AsyncIterator[Clients]:
    unbounded = httpx2.Limits(max_connections=None, max_keepalive_connections=None)
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(
            base_url=base_url, headers=headers, timeout=client_timeout, limits=unbounded
        ) as logged_in,
        httpx2.AsyncClient(
            base_url=base_url, timeout=client_timeout, limits=unbounded
        ) as anonymous,
    ):
        yield Clients(logged_in, anonymous)


async def _idle(clients: Clients) -> dict[str, list[Sample]]:
    """``IDLE_SAMPLES`` requests of each probe, one after another, before any load."""
    origin = time.monotonic()
    return {
        path: [await _timed(clients.for_probe(path), path, origin) for _ in range(IDLE_SAMPLES)]
        for path in PROBES
    }


async def _probe(
    client: httpx2.AsyncClient,
    path: str,
    origin: float,
    interval: float,
    done: asyncio.Event,
    open_loop: bool,
) -> list[Sample]:
    """GET ``path`` every ``interval`` s until ``done``; all the answers, in order.

    :param open_loop: send on every tick whether or not the last answer came (many browser
        tabs polling), rather than one request at a time, the next on the first tick after
        the answer (a task's heartbeat).
    """
    sent: list[asyncio.Task[Sample]] = []
    next_at = origin
    while not done.is_set():
        request = asyncio.create_task(_timed(client, path, origin))
        sent.append(request)
        if not open_loop:
            await request
        next_at += interval
        while next_at < time.monotonic():  # ticks missed while waiting for the answer
            next_at += interval
        with suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), next_at - time.monotonic())
    return list(await asyncio.gather(*sent))


async def _under_load(
    clients: Clients, viewer_paths: list[str], interval: float, open_loop: bool
) -> tuple[list[Sample], dict[str, list[Sample]]]:
    """Every viewer at once; each of ``PROBES`` every ``interval`` s until the last viewer has
    its answer (a probe still in flight then is awaited)."""
    origin = time.monotonic()
    done = asyncio.Event()
    probes = {
        path: asyncio.create_task(
            _probe(clients.for_probe(path), path, origin, interval, done, open_loop)
        )
        for path in PROBES
    }
    viewers = await asyncio.gather(
        *(_timed(clients.logged_in, path, origin) for path in viewer_paths)
    )
    done.set()
    return list(viewers), {path: await probe for path, probe in probes.items()}


# ---------------------------------------------------------------------- figures


def _ok(samples: list[Sample]) -> list[float]:
    return [sample.seconds for sample in samples if sample.outcome == "200"]


def _seconds(value: float) -> str:
    return f"{value:.3f} s" if value < 1 else f"{value:.1f} s"


def _spread(samples: list[Sample]) -> str:
    """``median / p90 / max (n answered)`` of the 200 answers, plus any other outcome."""
    times = sorted(_ok(samples))
    if not times:
        text = "no 200 answer"
    else:
        p90 = times[min(len(times) - 1, int(0.9 * len(times)))]
        text = (
            f"{_seconds(statistics.median(times))} / {_seconds(p90)} / {_seconds(times[-1])}"
            f" (n={len(times)})"
        )
    others = Counter(sample.outcome for sample in samples if sample.outcome != "200")
    if others:
        text += "; " + ", ".join(f"{outcome}: {count}" for outcome, count in sorted(others.items()))
    return text


def _stalled(samples: list[Sample]) -> float:
    """Seconds during which some request had waited longer than ``STALL_SECONDS``: the union
    of ``[sent + STALL_SECONDS, answered]`` over every request."""
    spans = sorted(
        (sample.sent + STALL_SECONDS, sample.sent + sample.seconds)
        for sample in samples
        if sample.seconds > STALL_SECONDS
    )
    total = 0.0
    covered_to = float("-inf")
    for start, end in spans:
        start = max(start, covered_to)
        if end > start:
            total += end - start
            covered_to = end
    return total


def _viewer_lines(samples: list[Sample], paths: list[str]) -> list[str]:
    lines = []
    for path in sorted(set(paths)):
        mine = [sample for sample, sent in zip(samples, paths, strict=True) if sent == path]
        by_outcome: dict[str, list[float]] = {}
        for sample in mine:
            by_outcome.setdefault(sample.outcome, []).append(sample.seconds)
        parts = [
            f"{len(times)} x {outcome} in {_seconds(min(times))} .. {_seconds(max(times))}"
            f" (median {_seconds(statistics.median(times))})"
            for outcome, times in sorted(by_outcome.items())
        ]
        lines.append(f"- `GET {path}` x {len(mine)}: " + "; ".join(parts))
    return lines


def _timeline(probes: dict[str, list[Sample]]) -> list[str]:
    """Every probe, in the order sent."""
    rows = sorted(
        (sample.sent, path, sample) for path, samples in probes.items() for sample in samples
    )
    lines = ["", "| sent at | route | answered in | status |", "|---|---|---|---|"]
    for sent, path, sample in rows:
        lines.append(f"| {sent:.1f} s | `{path}` | {_seconds(sample.seconds)} | {sample.outcome} |")
    return lines


# ---------------------------------------------------------------------- the deployment


def _task_tab_path(running: RunningDeployment) -> str:
    """The tab of a finished run of the chat example (its job recorded in XCom)."""
    run_id = running.api.trigger(CHAT_DAG)
    run = running.api.wait_for_run(CHAT_DAG, run_id, timeout=300)
    if run["state"] != "success":
        raise RuntimeError(f"{CHAT_DAG} run {run_id} ended {run['state']}")
    return f"/mistral-batch/ti/{CHAT_DAG}/{quote(run_id, safe='')}/{CHAT_TASK}/-1"


@contextmanager
def _deployment(home: Path, task_tab: bool) -> Iterator[RunningDeployment]:
    """The api-server alone, or (for the task tab) the whole deployment with the chat example."""
    if not task_tab:
        with running_deployment(home, [], [], components=["api-server"]) as running:
            yield running
        return
    (home / "results").mkdir()
    env = {"MISTRAL_EXAMPLE_RESULTS": f"file://{home}/results", "MISTRAL_EXAMPLE_POLL_SECONDS": "1"}
    with running_deployment(
        home, [REPO / "example_dags"], [CHAT_DAG], extra_env=env, components=COMPONENTS
    ) as running:
        yield running


@dataclass(frozen=True)
class Figures:
    """What one run measured."""

    version: str
    idle: dict[str, list[Sample]]
    viewer_paths: list[str]
    viewers: list[Sample]
    probes: dict[str, list[Sample]]
    #: ``"GET /v1/batch/jobs"`` -> how many the emulator got during the load.
    upstream: Counter[str]


def _measure(running: RunningDeployment, args: argparse.Namespace) -> Figures:
    version = str(running.api.request("GET", "/version")["version"])
    paths = [JOBS_PAGE] * args.viewers
    if args.task_tab:
        tab = _task_tab_path(running)
        paths = [tab if index % 2 else JOBS_PAGE for index in range(args.viewers)]
    headers = {"Authorization": f"Bearer {running.api.token}"}
    # Check each page and warm every route (the Execution API builds itself on first use).
    for path in [*sorted(set(paths)), *PROBES]:
        logged_in = PROBES.get(path, True)
        answer = httpx2.get(
            f"{running.base_url}{path}", headers=headers if logged_in else {}, timeout=60
        )
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path}: HTTP {answer.status_code}: {answer.text[:300]}")

    async def idle_then_load() -> tuple[
        dict[str, list[Sample]], list[Sample], dict[str, list[Sample]]
    ]:
        async with _clients(running.base_url, running.api.token, args.timeout) as clients:
            idle = await _idle(clients)
            running.emulator.update_config(latency_seconds=args.delay)
            running.emulator.clear_requests()
            viewers, probes = await _under_load(clients, paths, args.interval, args.open_loop)
        # The emulator logs a call when it ends: a call the plugin gave up on ends up to
        # --delay s after the last viewer's answer.
        await asyncio.sleep(args.delay + 0.5)
        return idle, viewers, probes

    idle, viewers, probes = asyncio.run(idle_then_load())
    upstream = Counter(f"{request.method} {request.path}" for request in running.emulator.requests)
    return Figures(version, idle, paths, viewers, probes, upstream)


def _report(figures: Figures, args: argparse.Namespace, started: datetime, load: float) -> str:
    """The figures as Markdown, with what is needed to run them again."""
    load_seconds = max(sample.sent + sample.seconds for sample in figures.viewers)
    components = "whole deployment" if args.task_tab else "api-server only"
    probing = (
        f"every {args.interval:g} s, answered or not (open loop)"
        if args.open_loop
        else f"one request at a time, the next on the first {args.interval:g} s tick after"
        " the answer"
    )
    lines = [
        f"UI plugin under load, {started:%Y-%m-%d %H:%M} UTC:",
        "",
        f"    {_command_line()}",
        "",
        f"- Airflow {figures.version} ({components}, 1 api-server worker), Python"
        f" {platform.python_version()}, {os.cpu_count()} cores, load average {load:.2f} before",
        f"- Mistral (the emulator) answers every call after {args.delay:g} s; {args.viewers}"
        f" viewers at once; while they wait ({load_seconds:.1f} s), each route is timed {probing}",
        "",
        "| route | idle: median / p90 / max | under load: median / p90 / max | stalled (*) |",
        "|---|---|---|---|",
    ]
    for path in PROBES:
        probes = figures.probes[path]
        lines.append(
            f"| `GET {path}` | {_spread(figures.idle[path])} | {_spread(probes)}"
            f" | {_stalled(probes):.1f} s |"
        )
    lines.append(
        f"\n(*) how long some request of the route had been waiting for more than"
        f" {STALL_SECONDS:g} s (until its answer, which may come after the viewers' last one)"
    )
    lines += [
        "",
        "Viewers (count x status, from send to answer):",
        *_viewer_lines(figures.viewers, figures.viewer_paths),
        "- Mistral calls made during the load: "
        + (
            ", ".join(f"{count} x {call}" for call, count in sorted(figures.upstream.items()))
            or "none"
        ),
    ]
    if args.timeline:
        lines += _timeline(figures.probes)
    return "\n".join(lines)


def _stop_on_sigterm() -> None:
    """A SIGTERM ends the bench like Ctrl-C: the harness's cleanup runs."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def _command_line() -> str:
    python = Path(sys.executable)
    with_venv = os.path.relpath(python) if python.is_relative_to(Path.cwd()) else str(python)
    return shlex.join([with_venv, *sys.argv])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--delay", type=float, default=25.0, help="seconds per Mistral answer")
    parser.add_argument("--viewers", type=int, default=60, help="concurrent page requests")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between probes")
    parser.add_argument("--timeout", type=float, default=600.0, help="client timeout, seconds")
    parser.add_argument(
        "--task-tab",
        action="store_true",
        help="whole deployment; every other viewer opens a finished task's tab",
    )
    parser.add_argument(
        "--open-loop",
        action="store_true",
        help="send each probe on every tick, answered or not (default: one at a time)",
    )
    parser.add_argument("--timeline", action="store_true", help="print every probe")
    parser.add_argument("--keep-home", action="store_true", help="keep the Airflow home")
    args = parser.parse_args()
    _stop_on_sigterm()
    started = datetime.now(UTC)
    load = os.getloadavg()[0]
    home = Path(tempfile.mkdtemp(prefix="plugin-load-"))
    try:
        with _deployment(home, args.task_tab) as running:
            figures = _measure(running, args)
    finally:
        if args.keep_home:
            print(f"Airflow home kept: {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)
    print(_report(figures, args, started, load))


if __name__ == "__main__":
    main()
