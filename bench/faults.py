"""Bench: whole batch lifecycles through the hook and the operator while the API misbehaves.

Runs N lifecycles (upload, create, wait, download) through ``MistralBatchHook`` and N through
``MistralBatchOperator`` under ``dag.test()`` (blocking and deferrable in turn, results
written with ``results_path``) against the emulator, which answers each API request with a
random fault at ``--rate``, drawn from: 429 with Retry-After 1, 500, 502, 503, a connection
dropped before or after the server acted, a response held longer than the client's timeout
(``delay_after``) and, with ``--slow-commits``, a request the server commits only after the
client gave up on it (``slow_commit``). Every lifecycle tags its job with its own metadata
(``bench_lifecycle``) and uploads a file of its own name, so the emulator tells them apart.

Then, faults off, it waits for late commits and for every job to end, and prints: lifecycles
tried / succeeded / failed (each distinct failure message), jobs and files per lifecycle,
duplicate jobs (more than one job for one lifecycle): whether each did work and whether it
was cancelled before it finished, and requests lost (input custom_ids with no line in the
output or error files the lifecycle downloaded).

The emulator runs in this process (as in ``scripts/demo.py``) so that the bench can switch
its faults off for the final count; operator lifecycles run in ``--workers`` child processes,
each with its own Airflow home (SQLite), so that waits overlap. The same ``--seed`` gives the
same sequence of fault draws; which request gets which draw depends on thread timing.

    .venv/bin/python bench/faults.py [--lifecycles 50] [--rate 0.3] [--slow-commits]
        [--seed 0] [--rps 4] [--requests 10] [--timeout 2] [--max-retries 8]
        [--poll-interval 0.5] [--workers 6] [--only hook|operator]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ENDPOINT = "/v1/embeddings"
MODEL = "mistral-embed"
LIFECYCLE_KEY = "bench_lifecycle"
BLOCKING_DAG_ID = "bench_faults_blocking"
DEFERRED_DAG_ID = "bench_faults_deferred"
TASK_ID = "batch"
# Longest wait for one job, and for every job to end once the faults are off.
JOB_DEADLINE_SECONDS = 300.0
JOBS_END_DEADLINE = 180.0
# batch/result_rows.py NO_RESULT: the error of a request no result file answers.
NO_RESULT = "no result returned"

# The DAG file the operator lifecycles run; every run's conf names its input, results path
# and lifecycle. Options come from the environment, read when the file is parsed.
DAG_SOURCE = '''\
"""DAGs of bench/faults.py: one batch lifecycle per run, told apart by the run's conf."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import dag

from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator

OUTCOMES = Path(os.environ["FAULTS_BENCH_OUTCOMES"])


def _record(context: Any) -> None:
    ti = context["ti"]
    exc = context.get("exception")
    line = {"run_id": ti.run_id, "try": ti.try_number, "error": f"{type(exc).__name__}: {exc}"}
    with OUTCOMES.open("a") as handle:
        handle.write(json.dumps(line) + "\\n")


def _lifecycle_dag(dag_id: str, deferrable: bool) -> None:
    @dag(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
    def lifecycle() -> None:
        MistralBatchOperator(
            task_id="batch",
            endpoint="/v1/embeddings",
            model="mistral-embed",
            input_path="{{ dag_run.conf['input_path'] }}",
            metadata={"bench_lifecycle": "{{ dag_run.conf['lifecycle'] }}"},
            results_path="{{ dag_run.conf['results_path'] }}",
            deferrable=deferrable,
            poll_interval=float(os.environ["FAULTS_BENCH_POLL_INTERVAL"]),
            # The bench's bound on one try (the operator's own wait is its timeout + 1 h).
            execution_timeout=timedelta(seconds=float(os.environ["FAULTS_BENCH_WAIT_TIMEOUT"])),
            retries=int(os.environ["FAULTS_BENCH_TASK_RETRIES"]),
            retry_delay=timedelta(seconds=0),
            on_failure_callback=_record,
            on_retry_callback=_record,
        )

    lifecycle()


_lifecycle_dag("bench_faults_blocking", deferrable=False)
_lifecycle_dag("bench_faults_deferred", deferrable=True)
'''


@dataclass
class Lifecycle:
    """What one lifecycle saw; ``lost`` and ``unexpected`` are counted from the files it read."""

    name: str
    path: str  # "hook" or "operator"
    ok: bool = False
    error: str | None = None
    seconds: float = 0.0
    job_ids: list[str] = field(default_factory=list)
    requests: int = 0
    lost: int = 0
    unexpected: int = 0
    tries: int = 1
    mode: str = ""


# ---------------------------------------------------------------------------- inputs


def lifecycle_requests(name: str, count: int) -> list[dict[str, Any]]:
    return [
        {"custom_id": f"{name}-r{index}", "body": {"input": [f"text {index} of {name}"]}}
        for index in range(count)
    ]


def write_input(folder: Path, name: str, count: int) -> tuple[Path, set[str]]:
    """The lifecycle's input JSONL (its file name names the lifecycle) and its custom_ids."""
    requests = lifecycle_requests(name, count)
    path = folder / f"faults-{name}.jsonl"
    path.write_text("".join(json.dumps(request) + "\n" for request in requests))
    return path, {request["custom_id"] for request in requests}


def count_lines(custom_ids: Iterable[str], expected: set[str]) -> tuple[int, int]:
    """``(lost, unexpected)``: expected ids never seen; lines seen twice or not expected."""
    seen = Counter(custom_ids)
    lost = len(expected - seen.keys())
    unexpected = sum(n for cid, n in seen.items() if cid not in expected)
    unexpected += sum(n - 1 for cid, n in seen.items() if cid in expected and n > 1)
    return lost, unexpected


def short_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HEX_KEY = re.compile(r"\b[0-9a-f]{32,40}\b")
_NAMES = re.compile(r"\b(hook|op)-\d{3}\b")
_PORT = re.compile(r"127\.0\.0\.1:\d+")
_BYTES = re.compile(r"received \d+ bytes, expected \d+")


def normalized(message: str, workdir: Path) -> str:
    """A failure message with ids, keys, lifecycle names, byte counts, the port and temp paths
    replaced, so that the same failure reads the same each time."""
    text = message.replace(str(workdir), "<tmp>")
    text = _UUID.sub("<id>", text)
    text = _HEX_KEY.sub("<key>", text)
    text = _PORT.sub("127.0.0.1:<port>", text)
    text = _BYTES.sub("received <n> bytes, expected <m>", text)
    return _NAMES.sub("<lifecycle>", text)


# ---------------------------------------------------------------------------- hook lifecycles


def hook_lifecycle(index: int, args: argparse.Namespace, workdir: Path) -> Lifecycle:
    """Upload, create, poll until ended, download the output and error files."""
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
    from airflow_provider_mistral_batch.models import BatchJobStatus

    name = f"hook-{index:03d}"
    result = Lifecycle(name, "hook", requests=args.requests, mode="hook")
    path, expected = write_input(workdir / "inputs", name, args.requests)
    started = time.monotonic()
    try:
        with MistralBatchHook() as hook:
            uploaded = hook.upload_file(path)
            job = hook.create_batch_job(
                endpoint=ENDPOINT,
                input_files=[uploaded.id],
                model=MODEL,
                metadata={LIFECYCLE_KEY: name},
            )
            result.job_ids = [job.id]
            deadline = time.monotonic() + JOB_DEADLINE_SECONDS
            while not job.status.is_terminal:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"job {job.id} still {job.status} after the deadline")
                time.sleep(args.poll_interval)
                job = hook.get_batch_job(job.id)
            if job.status != BatchJobStatus.SUCCESS:
                raise RuntimeError(f"job {job.id} ended {job.status}")
            custom_ids: list[str] = []
            for kind, file_id in (("output", job.output_file), ("error", job.error_file)):
                if not file_id:
                    continue
                local = workdir / "downloads" / f"{name}-{kind}.jsonl"
                hook.download_file(file_id, local)
                with local.open() as handle:
                    custom_ids += [json.loads(line)["custom_id"] for line in handle if line.strip()]
            result.lost, result.unexpected = count_lines(custom_ids, expected)
            result.ok = True
    except Exception as exc:
        result.error = short_error(exc)
    result.seconds = time.monotonic() - started
    return result


def run_hook_lifecycles(args: argparse.Namespace, workdir: Path) -> list[Lifecycle]:
    with ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix="lifecycle") as pool:
        futures = [
            pool.submit(hook_lifecycle, index, args, workdir) for index in range(args.lifecycles)
        ]
        results = []
        for done, future in enumerate(futures, start=1):
            results.append(future.result())
            if done % 10 == 0 or done == len(futures):
                print(f"  hook lifecycles done: {done}/{len(futures)}", flush=True)
    return results


# ---------------------------------------------------------------------------- operator lifecycles


def run_operator_lifecycles(args: argparse.Namespace, workdir: Path, dags: Path) -> list[Lifecycle]:
    """Share the lifecycles among ``--workers`` child processes; gather what they report."""
    workers = min(args.workers, args.lifecycles)
    processes = []
    for worker in range(workers):
        spec = {
            "worker": worker,
            "indexes": list(range(worker, args.lifecycles, workers)),
            "workdir": str(workdir),
            "dags": str(dags),
            "requests": args.requests,
            "seed": args.seed + 1 + worker,
            "report": str(workdir / f"worker-{worker}.jsonl"),
        }
        spec_path = workdir / f"worker-{worker}.json"
        spec_path.write_text(json.dumps(spec))
        log = (workdir / f"worker-{worker}.log").open("wb")
        command = [sys.executable, __file__, "--operator-worker", str(spec_path)]
        processes.append((subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), log))  # noqa: S603
    results: list[Lifecycle] = []
    for worker, (process, log) in enumerate(processes):
        process.wait()
        log.close()
        report = workdir / f"worker-{worker}.jsonl"
        lines = report.read_text().splitlines() if report.exists() else []
        results += [Lifecycle(**json.loads(line)) for line in lines]
        if process.returncode != 0:
            tail = (workdir / f"worker-{worker}.log").read_text()[-3000:]
            print(f"  worker {worker} exited {process.returncode}; its log ends:\n{tail}")
    results.sort(key=lambda lifecycle: lifecycle.name)
    print(f"  operator lifecycles done: {len(results)}/{args.lifecycles}", flush=True)
    return results


def operator_worker(spec_path: Path) -> int:
    """One child process: its own Airflow home, its share of the operator lifecycles."""
    spec = json.loads(spec_path.read_text())
    workdir = Path(spec["workdir"])
    worker = spec["worker"]
    random.seed(spec["seed"])
    from mistral_batch_emulator.dagtest import use_private_airflow_home

    home = workdir / f"airflow-{worker}"
    home.mkdir()
    # A copy of the DB the parent migrated: the same schema, without a migration per worker.
    shutil.copy2(workdir / "airflow" / "airflow.db", home / "airflow.db")
    use_private_airflow_home(Path(spec["dags"]), home)
    outcomes = workdir / f"outcomes-{worker}.jsonl"
    os.environ["FAULTS_BENCH_OUTCOMES"] = str(outcomes)
    from mistral_batch_emulator.dagtest import load_dag, task_states, xcom_value

    dags = {
        dag_id: load_dag(Path(spec["dags"]), dag_id)
        for dag_id in (BLOCKING_DAG_ID, DEFERRED_DAG_ID)
    }
    report = Path(spec["report"])
    for index in spec["indexes"]:
        name = f"op-{index:03d}"
        deferrable = index % 2 == 1
        result = Lifecycle(
            name,
            "operator",
            requests=spec["requests"],
            mode="deferrable" if deferrable else "blocking",
        )
        path, expected = write_input(workdir / "inputs", name, spec["requests"])
        results_path = workdir / "results" / f"{name}.jsonl"
        conf = {"lifecycle": name, "input_path": str(path), "results_path": str(results_path)}
        started = time.monotonic()
        try:
            dag_run = dags[DEFERRED_DAG_ID if deferrable else BLOCKING_DAG_ID].test(run_conf=conf)
            state, result.tries = task_states(dag_run)[(TASK_ID, -1)]
            # Pushed as soon as the job exists, so a failed lifecycle names its job too.
            result.job_ids = list(xcom_value(dag_run, TASK_ID, "batch_job_ids") or [])
            if state == "success":
                result.ok = True
                with results_path.open() as handle:
                    lines = [json.loads(line) for line in handle if line.strip()]
                answered = [line["custom_id"] for line in lines if line["error"] != NO_RESULT]
                result.lost, result.unexpected = count_lines(answered, expected)
            else:
                result.error = _last_failure(outcomes, dag_run.run_id) or f"task {state}"
        except Exception as exc:
            result.error = short_error(exc)
        result.seconds = time.monotonic() - started
        with report.open("a") as handle:
            handle.write(json.dumps(asdict(result)) + "\n")
    return 0


def _last_failure(outcomes: Path, run_id: str) -> str | None:
    if not outcomes.exists():
        return None
    errors = [
        record["error"]
        for record in map(json.loads, outcomes.read_text().splitlines())
        if record["run_id"] == run_id
    ]
    return errors[-1] if errors else None


# ---------------------------------------------------------------------------- the count


@dataclass
class Duplicate:
    lifecycle: str
    kept: Any
    job: Any


def wait_until_jobs_end(hook: Any, pending_commit_seconds: float) -> tuple[list[Any], float]:
    """Every job, once late commits landed and every job ended (or the deadline passed)."""
    started = time.monotonic()
    time.sleep(pending_commit_seconds)
    deadline = started + JOBS_END_DEADLINE
    while True:
        jobs = list(hook.list_batch_jobs())
        if all(job.status.is_terminal for job in jobs) or time.monotonic() > deadline:
            return jobs, time.monotonic() - started
        time.sleep(0.5)


def group_jobs(jobs: Iterable[Any]) -> dict[str, list[Any]]:
    """Jobs by the lifecycle in their metadata, oldest first."""
    by_name: dict[str, list[Any]] = {}
    for job in sorted(jobs, key=lambda job: (job.created_at, job.id)):
        name = (job.metadata or {}).get(LIFECYCLE_KEY)
        if name:
            by_name.setdefault(name, []).append(job)
    return by_name


def distribution(counts: Iterable[int]) -> str:
    """``1 x47, 2 x3``: how many lifecycles had each count."""
    tally = Counter(counts)
    return ", ".join(f"{value} x{tally[value]}" for value in sorted(tally)) or "-"


def kept_job(lifecycle: Lifecycle, jobs: Sequence[Any]) -> Any:
    """The job the lifecycle followed (the oldest of its jobs if it never said)."""
    used = set(lifecycle.job_ids)
    return next((job for job in jobs if job.id in used), jobs[0] if jobs else None)


def lost_in_job_files(
    hook: Any, lifecycles: Sequence[Lifecycle], jobs_by_name: dict[str, list[Any]]
) -> dict[str, tuple[int, int]]:
    """``name -> (lost, unexpected)`` by custom_id in the output and error files of the job
    each lifecycle followed, read with the faults off; only jobs that ended SUCCESS."""
    counts = {}
    for lifecycle in lifecycles:
        kept = kept_job(lifecycle, jobs_by_name.get(lifecycle.name, []))
        if kept is None or str(kept.status) != "SUCCESS":
            continue
        custom_ids = [
            json.loads(line)["custom_id"]
            for file_id in (kept.output_file, kept.error_file)
            if file_id
            for line in hook.iter_file_lines(file_id)
        ]
        expected = {r["custom_id"] for r in lifecycle_requests(lifecycle.name, lifecycle.requests)}
        counts[lifecycle.name] = count_lines(custom_ids, expected)
    return counts


def summarize(
    label: str,
    lifecycles: Sequence[Lifecycle],
    jobs_by_name: dict[str, list[Any]],
    files_by_name: dict[str, int],
    in_files: dict[str, tuple[int, int]],
    workdir: Path,
) -> dict[str, Any]:
    """One column of the figures, and the duplicates of this path."""
    names = [lifecycle.name for lifecycle in lifecycles]
    succeeded = [lifecycle for lifecycle in lifecycles if lifecycle.ok]
    checked = [lifecycle for lifecycle in lifecycles if lifecycle.name in in_files]
    duplicates: list[Duplicate] = []
    for lifecycle in lifecycles:
        jobs = jobs_by_name.get(lifecycle.name, [])
        kept = kept_job(lifecycle, jobs)
        duplicates += [
            Duplicate(lifecycle.name, kept, job)
            for job in jobs
            if kept is not None and job is not kept
        ]
    failures = Counter(
        normalized(lifecycle.error or "?", workdir) for lifecycle in lifecycles if not lifecycle.ok
    )
    seconds = [lifecycle.seconds for lifecycle in lifecycles]
    return {
        "label": label,
        "tried": len(lifecycles),
        "succeeded": len(succeeded),
        "failed": len(lifecycles) - len(succeeded),
        "failures": failures,
        "jobs": distribution(len(jobs_by_name.get(name, [])) for name in names),
        "files": distribution(files_by_name.get(name, 0) for name in names),
        "duplicates": duplicates,
        "requests": sum(lifecycle.requests for lifecycle in succeeded),
        "lost": sum(lifecycle.lost for lifecycle in succeeded),
        "unexpected": sum(lifecycle.unexpected for lifecycle in succeeded),
        "file_requests": sum(lifecycle.requests for lifecycle in checked),
        "file_lost": sum(in_files[lifecycle.name][0] for lifecycle in checked),
        "file_unexpected": sum(in_files[lifecycle.name][1] for lifecycle in checked),
        "retried_tasks": sum(1 for lifecycle in lifecycles if lifecycle.tries > 1),
        "p50": statistics.median(seconds) if seconds else 0.0,
        "max": max(seconds, default=0.0),
    }


def did_work(job: Any) -> bool:
    return bool(job.completed_requests)


def cancelled_before_finishing(job: Any) -> bool:
    return str(job.status) in {"CANCELLED", "CANCELLATION_REQUESTED"} and (
        job.completed_requests < job.total_requests or job.total_requests == 0
    )


def print_report(
    columns: list[dict[str, Any]], recorded: Sequence[Any], elapsed: dict[str, float]
) -> None:
    def row(label: str, key: str, fmt: str = "{}") -> None:
        cells = "".join(f"{fmt.format(column[key]):>22}" for column in columns)
        print(f"{label:<34}{cells}")

    print()
    print(f"{'':<34}" + "".join(f"{column['label']:>22}" for column in columns))
    row("lifecycles tried", "tried")
    row("  succeeded", "succeeded")
    row("  failed", "failed")
    row("  task retried (operator)", "retried_tasks")
    row("jobs created per lifecycle", "jobs")
    row("files uploaded per lifecycle", "files")
    for column in columns:
        dups = column["duplicates"]
        column["dup_count"] = len(dups)
        column["dup_work"] = sum(1 for dup in dups if did_work(dup.job))
        column["dup_cancelled"] = sum(1 for dup in dups if cancelled_before_finishing(dup.job))
        column["dup_finished"] = sum(1 for dup in dups if str(dup.job.status) == "SUCCESS")
        column["lost_text"] = f"{column['lost']} of {column['requests']}"
        column["file_lost_text"] = f"{column['file_lost']} of {column['file_requests']}"
        column["all_lost"] = column["lost"] + column["file_lost"]
    row("duplicate jobs", "dup_count")
    row("  that did work", "dup_work")
    row("  cancelled before finishing", "dup_cancelled")
    row("  ran to SUCCESS", "dup_finished")
    row("requests lost, as delivered", "lost_text")
    row("  unexpected or repeated lines", "unexpected")
    row("requests lost, in the job's files", "file_lost_text")
    row("  unexpected or repeated lines", "file_unexpected")
    row("lifecycle seconds, median", "p50", "{:.1f}")
    row("lifecycle seconds, max", "max", "{:.1f}")
    for column in columns:
        if column["failures"]:
            print(f"\n{column['label']} failures:")
            for message, count in column["failures"].most_common():
                print(f"  {count} x {message}")
        if column["duplicates"]:
            print(f"\n{column['label']} duplicate jobs:")
            for dup in column["duplicates"]:
                job, kept = dup.job, dup.kept
                later = job.created_at - kept.created_at
                print(
                    f"  {dup.lifecycle}: job {job.id[:8]} ({later:+d} s after kept job "
                    f"{kept.id[:8]} {kept.status}): {job.status}, {job.completed_requests}/"
                    f"{job.total_requests} requests done"
                )

    def kind(request: Any) -> str:
        return f"{request.status_code}" if request.fault == "status" else str(request.fault)

    def tally(method: str | None = None, path: str | None = None) -> str:
        counts = Counter(
            kind(request)
            for request in recorded
            if request.fault
            and (method is None or request.method == method)
            and (path is None or request.path == path)
        )
        return ", ".join(f"{name} {count}" for name, count in counts.most_common()) or "-"

    faulted = sum(1 for request in recorded if request.fault)
    print(
        f"\nAPI requests during the lifecycles: {len(recorded):,}, {faulted:,} with a fault "
        f"({faulted / max(1, len(recorded)):.0%}): {tally()}"
    )
    print(f"  on job creates: {tally('POST', '/v1/batch/jobs')}")
    print(f"  on uploads:     {tally('POST', '/v1/files')}")
    print(
        "wall time: " + ", ".join(f"{phase} {seconds:.0f} s" for phase, seconds in elapsed.items())
    )


def print_targets(columns: list[dict[str, Any]], slow_commits: bool) -> None:
    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    print()
    print(f"{'target':<52} {'measured':<30} result")
    rows: list[tuple[str, str, bool]] = []
    for column in columns:
        label = column["label"]
        if not slow_commits:
            rows.append(
                (
                    f"{label}: every lifecycle succeeds",
                    f"{column['succeeded']}/{column['tried']}",
                    column["succeeded"] == column["tried"],
                )
            )
        rows.append(
            (
                f"{label}: 0 requests lost",
                f"{column['lost_text']}; files {column['file_lost_text']}",
                column["all_lost"] == 0,
            )
        )
        if slow_commits and label == "hook":
            # The hook alone never chooses between jobs nor cancels one: a job a slow commit
            # makes after the hook returned is the caller's (the operator's wait finds it).
            print(
                f"{label}: late duplicates left to the caller: {column['dup_count']} "
                "(no target: the hook cancels none)"
            )
        elif slow_commits:
            rows.append(
                (
                    f"{label}: every duplicate cancelled before finishing",
                    f"{column['dup_cancelled']} of {column['dup_count']}",
                    column["dup_cancelled"] == column["dup_count"],
                )
            )
        else:
            rows.append(
                (f"{label}: 0 duplicate jobs", str(column["dup_count"]), column["dup_count"] == 0)
            )
    for target, measured, ok in rows:
        print(f"{target:<52} {measured:<30} {verdict(ok)}")


# ---------------------------------------------------------------------------- main


def fault_pool(args: argparse.Namespace) -> list[Any]:
    from mistral_batch_emulator import Fault

    pool = [
        Fault(kind="status", status_code=429, retry_after="1"),
        Fault(kind="status", status_code=500),
        Fault(kind="status", status_code=502),
        Fault(kind="status", status_code=503),
        Fault(kind="drop_before"),
        Fault(kind="drop_after"),
        Fault(kind="delay_after", delay_seconds=args.timeout + 1.0),
    ]
    if args.slow_commits:
        pool.append(Fault(kind="slow_commit", delay_seconds=args.slow_commit_seconds))
    return pool


def run(args: argparse.Namespace, workdir: Path) -> int:
    from mistral_batch_emulator.dagtest import (
        migrate_db,
        set_mistral_connection,
        use_private_airflow_home,
    )

    for folder in ("inputs", "downloads", "results", "dags"):
        (workdir / folder).mkdir()
    dags = workdir / "dags"
    (dags / "bench_faults_dags.py").write_text(DAG_SOURCE)
    use_private_airflow_home(dags, workdir / "airflow")
    os.environ["FAULTS_BENCH_OUTCOMES"] = str(workdir / "outcomes.jsonl")
    os.environ["FAULTS_BENCH_POLL_INTERVAL"] = str(args.poll_interval)
    os.environ["FAULTS_BENCH_WAIT_TIMEOUT"] = str(JOB_DEADLINE_SECONDS)
    os.environ["FAULTS_BENCH_TASK_RETRIES"] = str(args.task_retries)
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING" if args.verbose else "CRITICAL"
    random.seed(args.seed)

    from mistral_batch_emulator import EmulatorConfig, run_emulator

    pool = fault_pool(args)
    config = EmulatorConfig(
        requests_per_second=args.rps,
        fault_rate=0.0,
        fault_pool=pool,
        seed=args.seed,
        data_dir=workdir / "emulator",
    )
    paths = " + ".join(
        f"{args.lifecycles} {path}" for path in ("hook", "operator") if args.only in (None, path)
    )
    job_seconds = args.requests / args.rps
    kinds = ", ".join(
        f"{fault.status_code}" + (f"+Retry-After {fault.retry_after}" if fault.retry_after else "")
        if fault.kind == "status"
        else fault.kind + (f" {fault.delay_seconds:g} s" if fault.delay_seconds else "")
        for fault in pool
    )
    print(
        f"faults: rate {args.rate:.0%} of API requests, pool (equal odds): {kinds}; seed "
        f"{args.seed}\n"
        f"lifecycles: {paths} (operator: blocking and deferrable in turn), "
        f"{args.workers} at a time, {args.requests} requests each; "
        f"emulator {args.rps:g} requests/s: a job runs {job_seconds:.1f} s\n"
        f"connection: timeout {args.timeout:g} s, max_retries {args.max_retries}; poll interval "
        f"{args.poll_interval:g} s; task retries {args.task_retries}",
        flush=True,
    )
    elapsed: dict[str, float] = {}
    with run_emulator(config) as emulator:
        set_mistral_connection(
            emulator.base_url,
            emulator.api_key,
            extra={
                "timeout": args.timeout,
                "connect_timeout": args.timeout,
                "max_retries": args.max_retries,
            },
        )
        if args.only != "hook":
            started = time.monotonic()
            migrate_db()  # each operator worker starts from a copy of this DB
            elapsed["migrate"] = time.monotonic() - started
        emulator.update_config(fault_rate=args.rate)
        first_request = len(emulator.requests)
        hook_results: list[Lifecycle] = []
        operator_results: list[Lifecycle] = []
        if args.only != "operator":
            print("hook lifecycles ...", flush=True)
            started = time.monotonic()
            hook_results = run_hook_lifecycles(args, workdir)
            elapsed["hook lifecycles"] = time.monotonic() - started
        if args.only != "hook":
            print("operator lifecycles under dag.test() ...", flush=True)
            started = time.monotonic()
            operator_results = run_operator_lifecycles(args, workdir, dags)
            elapsed["operator lifecycles"] = time.monotonic() - started
        emulator.update_config(fault_rate=0.0)
        emulator.set_faults([])
        recorded = emulator.requests[first_request:]

        from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

        print("faults off; waiting for late commits and for every job to end ...", flush=True)
        late = args.slow_commit_seconds + 1.0 if args.slow_commits else 1.0
        with MistralBatchHook() as hook:
            jobs, elapsed["jobs ending"] = wait_until_jobs_end(hook, late)
            files = list(hook.list_files())
            jobs_by_name = group_jobs(jobs)
            in_files = lost_in_job_files(hook, [*hook_results, *operator_results], jobs_by_name)
        running = [job for job in jobs if not job.status.is_terminal]
        if running:
            print(f"note: {len(running)} jobs had not ended {JOBS_END_DEADLINE:.0f} s later")
        files_by_name: Counter[str] = Counter()
        for uploaded in files:
            match = re.fullmatch(r"faults-((?:hook|op)-\d{3})\.jsonl", uploaded.filename)
            if match and str(uploaded.source) == "upload":
                files_by_name[match.group(1)] += 1
        columns = [
            summarize(label, results, jobs_by_name, files_by_name, in_files, workdir)
            for label, results in (("hook", hook_results), ("operator", operator_results))
            if results
        ]
        print_report(columns, recorded, elapsed)
    print_targets(columns, args.slow_commits)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lifecycles", type=int, default=50, help="per path (default 50)")
    parser.add_argument("--rate", type=float, default=0.3, help="fault rate (default 0.3)")
    parser.add_argument("--slow-commits", action="store_true", help="add slow_commit faults")
    parser.add_argument(
        "--slow-commit-seconds",
        type=float,
        default=None,
        help="how late a slow commit lands (default 1.5 x --timeout)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rps", type=float, default=2.0, help="emulator requests/s (default 2)")
    parser.add_argument("--requests", type=int, default=10, help="per lifecycle (default 10)")
    parser.add_argument("--timeout", type=float, default=2.0, help="client timeout, s")
    parser.add_argument("--max-retries", type=int, default=8, help="connection max_retries")
    parser.add_argument("--poll-interval", type=float, default=0.5)
    parser.add_argument("--task-retries", type=int, default=0, help="operator task retries")
    parser.add_argument("--workers", type=int, default=6, help="lifecycles at a time, per path")
    parser.add_argument("--only", choices=("hook", "operator"), default=None)
    parser.add_argument("--verbose", action="store_true", help="show Airflow's warnings")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--operator-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.operator_worker is not None:
        return operator_worker(args.operator_worker)
    if not 0.0 <= args.rate <= 1.0:
        parser.error("--rate must be between 0 and 1")
    if args.lifecycles < 1 or args.requests < 1 or args.workers < 1:
        parser.error("--lifecycles, --requests and --workers must be at least 1")
    if args.slow_commit_seconds is None:
        args.slow_commit_seconds = 1.5 * args.timeout
    workdir = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    started = time.monotonic()
    try:
        return run(args, workdir)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
