"""Many MistralBatchJobTriggers in one loop share one watcher: against the emulator.

Every test runs its triggers concurrently in one event loop, as a triggerer does. Sweeps (the
listing of active jobs) are switched on from a few jobs and pages are made small, so that a
handful of jobs exercises what thousands do in production.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_provider_mistral_batch.batch import waiting as watch
from airflow_provider_mistral_batch.batch import watcher as shared_watch
from airflow_provider_mistral_batch.hooks.http.clients import close_shared_async_clients
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import BatchJob, BatchJobList, BatchJobStatus
from airflow_provider_mistral_batch.triggers.batch import MistralBatchJobTrigger
from mistral_batch_emulator import Fault, RunningEmulator
from tests.helpers import CONN_ID, create_embeddings_job
from tests.integration.triggers.conftest import fast_hook

pytestmark = pytest.mark.integration

JOBS = "/v1/batch/jobs"
RUN_LIMIT = 30.0
POLL = 0.1


@pytest.fixture
def hook(
    hook: MistralBatchHook, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> MistralBatchHook:
    """The conftest's hook, with sweeps switched on from a few jobs."""
    # Thousands of jobs in production; here a few jobs on pages of two.
    monkeypatch.setattr(shared_watch, "LIST_MIN_JOBS", 3)
    monkeypatch.setattr(shared_watch, "PAGE_SIZE", 2)
    monkeypatch.setattr(shared_watch, "MIN_SWEEP_GAP", 0.05)
    monkeypatch.setattr(shared_watch, "COALESCE_SECONDS", 0.02)
    emulator.update_config(requests_per_second=20)
    return hook


def _per_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every trigger polls its own job, as with few jobs."""
    monkeypatch.setattr(shared_watch, "LIST_MIN_JOBS", 1_000_000)


def _trigger(job_id: str, **kwargs: Any) -> MistralBatchJobTrigger:
    kwargs.setdefault("mistral_conn_id", CONN_ID)
    kwargs.setdefault("poll_interval", POLL)
    return MistralBatchJobTrigger(job_id, **kwargs)


@dataclass
class Seen:
    """One trigger's run: its events and when the first came (epoch)."""

    events: list[dict[str, Any]]
    at: float


async def _collect(trigger: MistralBatchJobTrigger) -> Seen:
    events = [event.payload async for event in trigger.run()]
    return Seen(events, time.time())


def _run(triggers: dict[str, MistralBatchJobTrigger]) -> dict[str, Seen]:
    """Run every trigger at once in one loop; each run is drained to its end."""

    async def go() -> dict[str, Seen]:
        try:
            seen = await asyncio.gather(*(_collect(trigger) for trigger in triggers.values()))
            return dict(zip(triggers, seen, strict=True))
        finally:
            await close_shared_async_clients()

    return asyncio.run(asyncio.wait_for(go(), RUN_LIMIT))


def _gets(emulator: RunningEmulator, job_id: str) -> int:
    return sum(1 for r in emulator.requests if r.method == "GET" and r.path == f"{JOBS}/{job_id}")


def _lists(emulator: RunningEmulator) -> int:
    return sum(1 for r in emulator.requests if r.method == "GET" and r.path == JOBS)


def _wait_ended(hook: MistralBatchHook, job_id: str) -> None:
    limit = time.monotonic() + 10
    while not hook.get_batch_job(job_id).is_terminal:
        assert time.monotonic() < limit, f"job {job_id} did not end"
        time.sleep(0.02)


def _only_event(seen: Seen) -> dict[str, Any]:
    assert len(seen.events) == 1, seen.events
    return seen.events[0]


def _summary(seen: dict[str, Seen]) -> dict[str, tuple[str, str | None]]:
    """Each trigger's event kind and job status: what the operator acts on."""
    out: dict[str, tuple[str, str | None]] = {}
    for name, one in seen.items():
        event = _only_event(one)
        out[name] = (event["kind"], (event["job"] or {}).get("status"))
    return out


def _scenario(hook: MistralBatchHook) -> dict[str, MistralBatchJobTrigger]:
    """Jobs ending at staggered times, a failing job, an unknown job, a deadline."""
    triggers = {
        f"quick{count}": _trigger(create_embeddings_job(hook, count=count).id)
        for count in (2, 4, 8, 12)
    }
    failing = hook.create_batch_job(
        endpoint="/v1/embeddings", model="mistral-embed", input_files=[str(uuid.uuid4())]
    )
    triggers["failing"] = _trigger(failing.id)
    triggers["unknown"] = _trigger(str(uuid.uuid4()))
    slow = create_embeddings_job(hook, count=200)  # 10 s at 20 requests a second
    triggers["deadline"] = _trigger(slow.id, deadline=time.time() + 1.0)
    return triggers


def _assert_scenario(seen: dict[str, Seen]) -> None:
    summary = _summary(seen)
    for count in (2, 4, 8, 12):
        assert summary[f"quick{count}"] == ("terminal", "SUCCESS")
    assert summary["failing"] == ("terminal", "FAILED")
    assert summary["unknown"] == ("error", None)
    assert "404" in _only_event(seen["unknown"])["message"]
    assert summary["deadline"][0] == "timeout"
    assert summary["deadline"][1] in {"CANCELLATION_REQUESTED", "CANCELLED"}


# ---------------------------------------------------------------- sharing


def test_many_triggers_give_the_same_events_as_per_job_polling(
    hook: MistralBatchHook, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = _run(_scenario(hook))
    _assert_scenario(shared)
    assert _lists(emulator) > 0  # the sweeps answered

    emulator.reset()
    emulator.update_config(requests_per_second=20)
    _per_job(monkeypatch)
    alone = _run(_scenario(hook))
    _assert_scenario(alone)
    assert _lists(emulator) == 0
    assert _summary(shared) == _summary(alone)


def test_jobs_in_the_listing_are_not_read_one_by_one(
    hook: MistralBatchHook, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job is read with its own GET only once it left the listing (or was never in it)."""
    monkeypatch.setattr(shared_watch, "LIST_MIN_JOBS", 1)  # sweeps down to the last job
    monkeypatch.setattr(shared_watch, "PAGE_SIZE", 100)  # no page shifts here
    counts = [4, 10, 20, 30, 40]  # 0.2 s to 2 s at 20 requests a second
    jobs = [create_embeddings_job(hook, count=count) for count in counts]
    seen = _run({job.id: _trigger(job.id) for job in jobs})
    for job in jobs:
        event = _only_event(seen[job.id])
        assert (event["kind"], event["job"]["status"]) == ("terminal", "SUCCESS")
        # Per-job polling would have read the 2 s job about 20 times.
        assert _gets(emulator, job.id) <= 2, [(j.id[:6], _gets(emulator, j.id)) for j in jobs]
    assert _lists(emulator) >= 5


def test_few_triggers_poll_each_job_as_alone(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    jobs = [create_embeddings_job(hook, count=6) for _ in range(2)]  # fewer than LIST_MIN_JOBS
    seen = _run({job.id: _trigger(job.id) for job in jobs})
    assert {_summary(seen)[job.id] for job in jobs} == {("terminal", "SUCCESS")}
    assert _lists(emulator) == 0
    assert all(_gets(emulator, job.id) >= 2 for job in jobs)


def test_a_job_missed_when_pages_shift_is_read_and_still_running(
    hook: MistralBatchHook, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The oldest job ends between two pages of a sweep: every later job moves one place up
    and the first of page 1 is on page 0 by then. That job is missing from the sweep, so it
    is read with its own GET, which says RUNNING: it is not reported ended."""
    shifter = create_embeddings_job(hook, count=6)  # ends after 0.3 s
    running = [create_embeddings_job(hook, count=60) for _ in range(4)]  # 3 s each
    shifted = running[1]  # index 2 of the listing: first of page 1, then last of page 0
    real_page = MistralBatchHook.alist_batch_jobs_page
    shifted_reads: list[BatchJobStatus] = []

    async def page_after_a_shift(self: MistralBatchHook, **kwargs: Any) -> BatchJobList:
        if kwargs.get("page", 0) >= 1:
            while (await self.aget_batch_job(shifter.id)).status is not BatchJobStatus.SUCCESS:
                await asyncio.sleep(0.02)
        return await real_page(self, **kwargs)

    real_get = MistralBatchHook.aget_batch_job

    async def recording_get(self: MistralBatchHook, job_id: str, **kwargs: Any) -> BatchJob:
        job = await real_get(self, job_id, **kwargs)
        if job_id == shifted.id:
            shifted_reads.append(job.status)
        return job

    monkeypatch.setattr(MistralBatchHook, "alist_batch_jobs_page", page_after_a_shift)
    monkeypatch.setattr(MistralBatchHook, "aget_batch_job", recording_get)
    triggers = {job.id: _trigger(job.id) for job in [shifter, *running]}
    seen = _run(triggers)
    assert BatchJobStatus.RUNNING in shifted_reads  # missed by a sweep while running
    for job_id in triggers:
        event = _only_event(seen[job_id])
        assert (event["kind"], event["job"]["status"]) == ("terminal", "SUCCESS")
        # Never reported ended while active: the server agrees the job had ended.
        assert event["job"]["completed_at"] is not None
        assert hook.get_batch_job(job_id).completed_at == event["job"]["completed_at"]


def test_a_job_is_never_reported_ended_while_it_runs(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    jobs = {job.id: job for job in (create_embeddings_job(hook, count=n) for n in (5, 25, 45))}
    seen = _run({job_id: _trigger(job_id) for job_id in jobs})
    for job_id, one in seen.items():
        event = _only_event(one)
        ended = hook.get_batch_job(job_id)
        assert event["job"]["status"] == ended.status == BatchJobStatus.SUCCESS
        assert ended.completed_at is not None
        assert one.at >= ended.completed_at - 1  # completed_at has whole seconds


# ---------------------------------------------------------------- each trigger its own


def test_each_trigger_keeps_its_own_error_streak(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    """Reads of one ended job keep failing: only its trigger gives up, after its own limit."""
    fragile = create_embeddings_job(hook, count=2)
    _wait_ended(hook, fragile.id)  # never listed: every read of it is a GET
    sturdy = [create_embeddings_job(hook, count=count) for count in (4, 8, 16)]
    # FAST_RETRIES makes 4 attempts a read: 8 faults are 2 failed reads of the fragile job.
    emulator.set_faults(
        [Fault(kind="status", status_code=503, method="GET", path_prefix=f"{JOBS}/{fragile.id}")]
        * 8
    )
    triggers = {fragile.id: _trigger(fragile.id, max_consecutive_errors=2)}
    triggers.update({job.id: _trigger(job.id) for job in sturdy})
    seen = _run(triggers)
    event = _only_event(seen[fragile.id])
    assert event["kind"] == "error"
    assert "503" in event["message"]
    for job in sturdy:
        assert _summary({"x": seen[job.id]})["x"] == ("terminal", "SUCCESS")


def test_a_failed_sweep_counts_no_failed_poll_for_any_trigger(
    hook: MistralBatchHook, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep that fails is the watcher's problem: triggers that give up at their first failed
    poll read their own jobs instead and all end as they would alone."""
    monkeypatch.setattr(shared_watch, "LIST_RETRY_FIRST", 0.2)
    jobs = [create_embeddings_job(hook, count=count) for count in (10, 20, 30)]
    # 4 failed attempts: one failed listing after the hook's retries.
    emulator.set_faults([Fault(kind="status", status_code=503, method="GET", path=JOBS)] * 4)
    seen = _run({job.id: _trigger(job.id, max_consecutive_errors=1) for job in jobs})
    assert {_summary(seen)[job.id] for job in jobs} == {("terminal", "SUCCESS")}
    assert emulator.pending_faults == []


def test_each_trigger_keeps_its_own_deadline(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    long_jobs = [create_embeddings_job(hook, count=80) for _ in range(4)]  # 4 s each
    now = time.time()
    # Sweeps every 2 s: a read due at a deadline must not wait for one.
    triggers = {
        job.id: _trigger(job.id, deadline=now + offset, poll_interval=2)
        for job, offset in zip(long_jobs[:3], (0.5, 1.0, 1.5), strict=True)
    }
    triggers[long_jobs[3].id] = _trigger(long_jobs[3].id, poll_interval=2)
    seen = _run(triggers)
    for job, offset in zip(long_jobs[:3], (0.5, 1.0, 1.5), strict=True):
        event = _only_event(seen[job.id])
        assert event["kind"] == "timeout"
        # At its own deadline, not at a sweep's convenience.
        assert now + offset <= seen[job.id].at < now + offset + 0.5
    assert _summary({"x": seen[long_jobs[3].id]})["x"] == ("terminal", "SUCCESS")


def test_a_trigger_rebuilt_mid_way_gives_the_same_event(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    """A triggerer restart: the trigger's run is cancelled and a new one is built from its
    kwargs alone while the other triggers go on sharing the watcher."""
    jobs = [create_embeddings_job(hook, count=count) for count in (20, 30, 40)]
    triggers = {job.id: _trigger(job.id) for job in jobs}
    moved = jobs[2].id

    async def go() -> dict[str, Seen]:
        try:
            runs = {
                job_id: asyncio.ensure_future(_collect(trigger))
                for job_id, trigger in triggers.items()
            }
            await asyncio.sleep(0.5)
            runs[moved].cancel()
            with pytest.raises(asyncio.CancelledError):
                await runs[moved]
            path, kwargs = triggers[moved].serialize()
            assert path.endswith("MistralBatchJobTrigger")
            runs[moved] = asyncio.ensure_future(_collect(MistralBatchJobTrigger(**kwargs)))
            done = await asyncio.gather(*runs.values())
            return dict(zip(runs, done, strict=True))
        finally:
            await close_shared_async_clients()

    seen = asyncio.run(asyncio.wait_for(go(), RUN_LIMIT))
    assert {_summary(seen)[job.id] for job in jobs} == {("terminal", "SUCCESS")}
    assert not shared_watch._watchers or all(not w for w in shared_watch._watchers.values())


def test_a_watcher_is_shared_per_loop_and_connection_and_forgotten_after(
    hook: MistralBatchHook,
) -> None:
    async def go() -> None:
        made = [0]

        def make() -> MistralBatchHook:
            made[0] += 1
            return fast_hook(CONN_ID)

        first = shared_watch.shared_watcher(CONN_ID, make)
        with first.watching(["a", "b"]):
            assert shared_watch.shared_watcher(CONN_ID, make) is first
            assert shared_watch.shared_watcher("other", make) is not first
            with first.watching(["b", "c"]):
                assert first.watched_count == 3
            assert first.watched_count == 2
        assert shared_watch.shared_watcher(CONN_ID, make) is not first
        assert made[0] == 3

    asyncio.run(go())


# ---------------------------------------------------------------- when listing fails

MANY = 200
SLOW_POLL = 0.5
HELD_REQUESTS_PER_SECOND = 0.01


@dataclass
class Counted:
    """What a run of many triggers asked and what the API was asked."""

    reads: int  # reads the triggers made: per-job polling answers each with one GET
    gets: int  # GETs of single jobs the API received
    lists: int  # list requests the API received (the hook's retries included)
    failed_listings: int  # listings the watcher counted as failed
    failed_polls: list[str]  # the job of each failed poll a trigger counted


def _many(
    hook: MistralBatchHook, emulator: RunningEmulator, *, shortest: int = 5
) -> tuple[dict[str, MistralBatchJobTrigger], dict[str, Any]]:
    """A few hundred jobs: most end within seconds, a few FAILED, a few unknown, two past a
    deadline; and the (kind, status) per-job polling gives each.

    :param shortest: requests of the shortest job (5 a second; each next one 1 more, 16 sizes).
    """
    triggers: dict[str, MistralBatchJobTrigger] = {}
    expected: dict[str, Any] = {}
    # Held (next to no progress) while they are made, released at the end: on a loaded machine
    # making 200 jobs took longer than the jobs run, and most had ended before the triggers'
    # first reads (240 reads for 200 triggers), leaving nothing for sweeps to answer.
    emulator.update_config(requests_per_second=HELD_REQUESTS_PER_SECOND)
    for index in range(MANY - 10):
        job = create_embeddings_job(hook, count=shortest + index % 16)  # 1 to 4 s by default
        triggers[job.id] = _trigger(job.id, poll_interval=SLOW_POLL)
        expected[job.id] = ("terminal", "SUCCESS")
    for _ in range(5):
        failing = hook.create_batch_job(
            endpoint="/v1/embeddings", model="mistral-embed", input_files=[str(uuid.uuid4())]
        )
        triggers[failing.id] = _trigger(failing.id, poll_interval=SLOW_POLL)
        expected[failing.id] = ("terminal", "FAILED")
    for _ in range(3):
        unknown = str(uuid.uuid4())
        triggers[unknown] = _trigger(unknown, poll_interval=SLOW_POLL)
        expected[unknown] = ("error", None)
    for _ in range(2):
        slow = create_embeddings_job(hook, count=400)  # 80 s at 5 requests a second
        triggers[slow.id] = _trigger(slow.id, poll_interval=SLOW_POLL, deadline=time.time() + 2)
        expected[slow.id] = ("timeout", "CANCELLED")
    emulator.update_config(requests_per_second=5)
    return triggers, expected


def _counted_run(
    triggers: dict[str, MistralBatchJobTrigger],
    emulator: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[dict[str, Seen], Counted]:
    reads = [0]
    failed: list[str] = []
    real_failed = shared_watch.SharedJobWatcher._listing_failed

    def listing_failed(self: shared_watch.SharedJobWatcher, reason: str, **kwargs: Any) -> None:
        failed.append(reason)
        real_failed(self, reason, **kwargs)

    monkeypatch.setattr(shared_watch.SharedJobWatcher, "_listing_failed", listing_failed)
    failed_polls: list[str] = []
    real_poll_failed = watch.JobWatch._failed

    def poll_failed(self: watch.JobWatch, error: BaseException) -> Any:
        failed_polls.append(self.job_id)
        return real_poll_failed(self, error)

    monkeypatch.setattr(watch.JobWatch, "_failed", poll_failed)
    real_read = shared_watch.SharedJobWatcher.read
    real_read_after = shared_watch.SharedJobWatcher.read_after

    async def read(self: shared_watch.SharedJobWatcher, job_id: str) -> Any:
        reads[0] += 1
        return await real_read(self, job_id)

    async def read_after(self: shared_watch.SharedJobWatcher, *args: Any, **kwargs: Any) -> Any:
        reads[0] += 1
        return await real_read_after(self, *args, **kwargs)

    monkeypatch.setattr(shared_watch.SharedJobWatcher, "read", read)
    monkeypatch.setattr(shared_watch.SharedJobWatcher, "read_after", read_after)
    seen = _run(triggers)
    gets = sum(
        1
        for r in emulator.requests
        if r.method == "GET" and r.path.startswith(f"{JOBS}/") and r.path.count("/") == 4
    )
    return seen, Counted(reads[0], gets, _lists(emulator), len(failed), failed_polls)


def _kinds(seen: dict[str, Seen]) -> dict[str, Any]:
    summary = _summary(seen)
    # A job cancelled at its deadline may still be CANCELLATION_REQUESTED in the event.
    return {
        name: (kind, "CANCELLED" if status == "CANCELLATION_REQUESTED" else status)
        for name, (kind, status) in summary.items()
    }


def _list_fault(kind: str) -> Fault:
    """A fault of every job listing (drawn with fault_rate 1.0: it never runs out)."""
    if kind in {"403", "503"}:
        return Fault(kind="status", status_code=int(kind), method="GET", path=JOBS)
    if kind == "timeout":
        # Longer than the watcher waits for a listing (LIST_TIME_LIMIT in the test).
        return Fault(kind="delay_before", delay_seconds=2.5, method="GET", path=JOBS)
    return Fault(kind=kind, method="GET", path=JOBS)  # type: ignore[arg-type]


def _many_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sweeps from 20 jobs, 50 a page, as in production but smaller pages."""
    monkeypatch.setattr(shared_watch, "LIST_MIN_JOBS", 20)
    monkeypatch.setattr(shared_watch, "PAGE_SIZE", 50)
    monkeypatch.setattr(shared_watch, "MIN_SWEEP_GAP", 0.2)


@pytest.mark.parametrize("kind", ["403", "503", "timeout", "garbled", "endless_pages"])
def test_a_failing_listing_falls_back_to_per_job_reads(
    hook: MistralBatchHook,
    emulator: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    """200 triggers, every listing fails: each trigger ends as alone, with its own GETs at
    its own interval, and the failure is logged once, by the watcher."""
    _many_hook(monkeypatch)
    monkeypatch.setattr(shared_watch, "LIST_TIME_LIMIT", 1.0)
    triggers, expected = _many(hook, emulator)
    emulator.update_config(fault_rate=1.0, fault_pool=[_list_fault(kind)])
    with caplog.at_level(logging.DEBUG, logger=shared_watch.__name__):
        seen, counted = _counted_run(triggers, emulator, monkeypatch)
    assert _kinds(seen) == expected
    # No trigger read its job more often than alone; the listing was tried once (its first
    # retry is 30 s away), so the calls are per-job polling's plus that one listing.
    assert counted.gets <= counted.reads
    assert counted.failed_listings == 1
    # Endless pages: the active jobs' pages, then one that only repeats them; jobs that end
    # while the pages are walked shift the active list, so a page or two more can still bring
    # a job not seen before (7 pages seen on a loaded CI machine). The code's own cap is one
    # page per watched job.
    one_listing = {"403": 1, "503": 4, "timeout": 1, "garbled": 1}.get(kind, MANY // 50 + 4)
    assert counted.lists <= one_listing, counted
    assert counted.gets + counted.lists <= counted.reads + one_listing
    warnings = [r for r in caplog.records if r.name == shared_watch.__name__ and r.levelno >= 30]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "tried again in" in warnings[0].getMessage()
    # No trigger counted a failed poll: the only failures are the unknown jobs' 404s.
    unknown = {name for name, (event, _) in expected.items() if event == "error"}
    assert set(counted.failed_polls) == unknown
    if kind == "timeout":  # the emulator logs a request when it answers: not in the next test
        limit = time.monotonic() + 10
        while not any(r.fault == "delay_before" for r in emulator.requests):
            assert time.monotonic() < limit, "the delayed listing was never answered"
            time.sleep(0.05)


def test_per_job_polling_of_the_same_jobs_gives_the_same_events(
    hook: MistralBatchHook, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference of the test above: every trigger polls its own job, one GET a read."""
    _many_hook(monkeypatch)
    _per_job(monkeypatch)
    triggers, expected = _many(hook, emulator)
    seen, counted = _counted_run(triggers, emulator, monkeypatch)
    assert _kinds(seen) == expected
    assert counted.lists == 0
    assert counted.gets == counted.reads


def test_listing_is_tried_again_and_sweeps_resume(
    hook: MistralBatchHook,
    emulator: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The listing fails for a while, then works: sweeps answer again, and over the run the
    API got fewer calls than per-job polling would have made."""
    _many_hook(monkeypatch)
    monkeypatch.setattr(shared_watch, "LIST_MIN_JOBS", 3)  # sweeps while most jobs end
    monkeypatch.setattr(shared_watch, "LIST_RETRY_FIRST", 0.3)
    # Jobs of 4 to 7 s: most still run when sweeps come back.
    triggers, expected = _many(hook, emulator, shortest=20)
    # Two failed listings (4 attempts each): the second is the first retry.
    emulator.set_faults([Fault(kind="status", status_code=503, method="GET", path=JOBS)] * 8)
    with caplog.at_level(logging.DEBUG, logger=shared_watch.__name__):
        seen, counted = _counted_run(triggers, emulator, monkeypatch)
    assert _kinds(seen) == expected
    assert emulator.pending_faults == []
    assert set(counted.failed_polls) == {n for n, (kind, _) in expected.items() if kind == "error"}
    listed = [r for r in emulator.requests if r.path == JOBS and r.status_code == 200]
    assert listed  # sweeps resumed
    assert counted.gets + counted.lists < counted.reads, counted
    records = [r for r in caplog.records if r.name == shared_watch.__name__ and r.levelno >= 20]
    assert [r.levelname for r in records] == ["WARNING", "INFO"], [r.getMessage() for r in records]
    assert "works again after 2 failed tries" in records[1].getMessage()


def test_a_listing_that_keeps_failing_is_tried_again_and_warned_once(
    hook: MistralBatchHook,
    emulator: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(shared_watch, "LIST_RETRY_FIRST", 0.1)
    monkeypatch.setattr(shared_watch, "LIST_RETRY_MAX", 0.4)
    # Jobs of 1 to 3 s: the listing is tried several times (0.1, 0.2, 0.4 s apart) before
    # they end, however slow the machine (at the fixture's speed they end at once).
    emulator.update_config(requests_per_second=20)
    jobs = [create_embeddings_job(hook, count=count) for count in (20, 40, 60)]
    emulator.update_config(fault_rate=1.0, fault_pool=[_list_fault("403")])
    with caplog.at_level(logging.DEBUG, logger=shared_watch.__name__):
        seen = _run({job.id: _trigger(job.id, max_consecutive_errors=1) for job in jobs})
    assert {_summary(seen)[job.id] for job in jobs} == {("terminal", "SUCCESS")}
    tries = [r for r in caplog.records if "Listing Mistral batch jobs" in r.getMessage()]
    assert len(tries) >= 3  # tried again, more than once
    assert [r.levelname for r in tries].count("WARNING") == 1
    assert not [r for r in tries if r.levelname == "INFO"]


def test_a_listing_longer_than_reading_each_job_is_not_walked(
    hook: MistralBatchHook, emulator: RunningEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Many other active jobs in the workspace: the first page shows the listing would take
    more calls than reading the jobs watched, so no other page is fetched."""
    jobs = [create_embeddings_job(hook, count=count) for count in (40, 60, 80, 100)]
    for _ in range(20):  # not watched, still running: 10 pages of 2 or more, 4 jobs watched
        create_embeddings_job(hook, count=400)
    with caplog.at_level(logging.DEBUG, logger=shared_watch.__name__):
        seen = _run({job.id: _trigger(job.id) for job in jobs})
    assert {_summary(seen)[job.id] for job in jobs} == {("terminal", "SUCCESS")}
    assert _lists(emulator) == 1  # page 0 only; the next try is 30 s away
    warnings = [r.getMessage() for r in caplog.records if r.name == shared_watch.__name__]
    assert len(warnings) == 1
    assert "pages of 2, more calls than reading the" in warnings[0]


def test_the_wait_before_listing_again_doubles_up_to_a_cap_with_jitter() -> None:
    delay = shared_watch.list_retry_delay
    first, cap, jitter = (
        shared_watch.LIST_RETRY_FIRST,
        shared_watch.LIST_RETRY_MAX,
        shared_watch.LIST_RETRY_JITTER,
    )
    assert [delay(n, 0.5) for n in (1, 2, 3)] == [first, 2 * first, 4 * first]
    assert delay(50, 0.5) == delay(5000, 0.5) == cap
    assert delay(1, 0.0) == pytest.approx(first * (1 - jitter))
    assert delay(1, 0.999999) == pytest.approx(first * (1 + jitter))
