"""MistralBatchJobTrigger against the emulator: one event per run, deadline, errors, on_kill."""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import structlog

from airflow_provider_mistral_batch.batch.event import parse_event
from airflow_provider_mistral_batch.batch.verdict import judge_job
from airflow_provider_mistral_batch.hooks.http.clients import close_shared_async_clients
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import BatchJob, BatchJobStatus
from airflow_provider_mistral_batch.triggers.batch import MistralBatchJobTrigger
from mistral_batch_emulator import Fault, RunningEmulator
from tests.helpers import (
    CONN_ID,
    create_embeddings_job,
    set_connection,
)

pytestmark = pytest.mark.integration

JOBS = "/v1/batch/jobs"
TRIGGER_PATH = "airflow_provider_mistral_batch.triggers.batch.MistralBatchJobTrigger"
# A run that has not yielded by then is a failure, not a hang.
RUN_LIMIT = 20.0


def _slow_job(hook: MistralBatchHook, emulator: RunningEmulator) -> BatchJob:
    """A job that keeps running for the length of a test (one request per second)."""
    emulator.update_config(requests_per_second=1)
    return create_embeddings_job(hook, count=60)


def _trigger(job_id: str, **kwargs: Any) -> MistralBatchJobTrigger:
    kwargs.setdefault("mistral_conn_id", CONN_ID)
    kwargs.setdefault("poll_interval", 0.02)
    return MistralBatchJobTrigger(job_id, **kwargs)


def _run_all(trigger: MistralBatchJobTrigger) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every event of one run (the generator is drained), and the log lines it wrote."""

    async def drain() -> list[dict[str, Any]]:
        try:
            return [event.payload async for event in trigger.run()]
        finally:
            await close_shared_async_clients()

    with structlog.testing.capture_logs() as logs:
        events = asyncio.run(asyncio.wait_for(drain(), RUN_LIMIT))
    return events, logs


def _run_one(trigger: MistralBatchJobTrigger) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    events, logs = _run_all(trigger)
    assert len(events) == 1, events
    return events[0], logs


def _call(coro_fn: Callable[[], Awaitable[None]]) -> list[dict[str, Any]]:
    async def go() -> None:
        try:
            await coro_fn()
        finally:
            await close_shared_async_clients()

    with structlog.testing.capture_logs() as logs:
        asyncio.run(asyncio.wait_for(go(), RUN_LIMIT))
    return logs


def _lines(logs: list[dict[str, Any]], level: str) -> list[str]:
    return [str(entry["event"]) for entry in logs if entry.get("log_level") == level]


def _requests(emulator: RunningEmulator, method: str, path: str) -> list[int | None]:
    return [r.status_code for r in emulator.requests if r.method == method and r.path == path]


def _wait_status(hook: MistralBatchHook, job_id: str, wanted: BatchJobStatus) -> BatchJob:
    limit = time.monotonic() + 10
    job = hook.get_batch_job(job_id)
    while job.status is not wanted:
        if time.monotonic() > limit:
            pytest.fail(f"job {job_id} still {job.status}, expected {wanted}")
        time.sleep(0.02)
        job = hook.get_batch_job(job_id)
    return job


# ---------------------------------------------------------------- serialize


def test_serialize_round_trips_plain_data() -> None:
    trigger = MistralBatchJobTrigger(
        "job-1",
        mistral_conn_id="my_conn",
        poll_interval=7,
        deadline=1_800_000_000,
        cancel_on_deadline=False,
        max_consecutive_errors=9,
        cancel_on_kill=False,
    )
    path, kwargs = trigger.serialize()
    assert path == TRIGGER_PATH
    assert kwargs == {
        "job_id": "job-1",
        "mistral_conn_id": "my_conn",
        "poll_interval": 7.0,
        "deadline": 1_800_000_000.0,
        "cancel_on_deadline": False,
        "max_consecutive_errors": 9,
        "cancel_on_kill": False,
        "max_poll_interval": 300.0,
    }
    assert json.loads(json.dumps(kwargs)) == kwargs
    rebuilt = MistralBatchJobTrigger(**kwargs)
    assert rebuilt.serialize() == (path, kwargs)


def test_serialize_defaults() -> None:
    _, kwargs = MistralBatchJobTrigger("job-1").serialize()
    assert kwargs == {
        "job_id": "job-1",
        "mistral_conn_id": "mistral_default",
        "poll_interval": 30.0,
        "deadline": None,
        "cancel_on_deadline": True,
        "max_consecutive_errors": 5,
        "cancel_on_kill": True,
        "max_poll_interval": 300.0,
    }
    assert MistralBatchJobTrigger(**kwargs).serialize()[1] == kwargs


def test_serialize_keeps_the_hold_as_an_epoch_second() -> None:
    trigger = MistralBatchJobTrigger("job-1", hold_event_until=1_800_000_016)
    _, kwargs = trigger.serialize()
    assert kwargs["hold_event_until"] == 1_800_000_016.0
    assert MistralBatchJobTrigger(**json.loads(json.dumps(kwargs))).serialize()[1] == kwargs


def test_serialized_path_imports_the_trigger() -> None:
    path, _ = MistralBatchJobTrigger("job-1").serialize()
    module, _, name = path.rpartition(".")
    assert getattr(importlib.import_module(module), name) is MistralBatchJobTrigger


def test_no_secret_in_the_kwargs(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_connection(monkeypatch, emulator, conn_id="mistral_default", api_key="sk-secret-123")
    trigger = MistralBatchJobTrigger("job-1", deadline=time.time() + 60)
    _, kwargs = trigger.serialize()
    text = json.dumps(kwargs)
    assert "sk-secret-123" not in text
    assert emulator.base_url not in text
    assert "sk-secret-123" not in repr(trigger)


# ---------------------------------------------------------------- terminal events


def test_successful_job_gives_one_terminal_event(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    job = create_embeddings_job(hook)
    emulator.clear_requests()
    event, logs = _run_one(_trigger(job.id))
    assert event["kind"] == "terminal"
    assert event["job_id"] == job.id
    assert event["message"] == ""
    assert "outputs" not in event["job"]
    assert event["job"]["status"] == "SUCCESS"
    assert event["job"]["succeeded_requests"] == 3
    assert json.loads(json.dumps(event)) == event
    parsed = parse_event(event)
    assert parsed.job is not None
    assert judge_job(parsed.job).succeeded is True
    infos = _lines(logs, "info")
    assert infos[-1] == f"job {job.id}: SUCCESS, completed 3/3 (100.0%), 0 failed"
    # Polls only: the trigger never creates or changes anything.
    assert {(r.method, r.path) for r in emulator.requests} == {("GET", f"{JOBS}/{job.id}")}


def test_an_event_sooner_than_hold_event_until_is_held_until_then(
    hook: MistralBatchHook,
) -> None:
    job = create_embeddings_job(hook)
    _wait_status(hook, job.id, BatchJobStatus.SUCCESS)
    hold = time.time() + 1.0
    trigger = _trigger(job.id, hold_event_until=hold)
    trigger.trigger_id = 7  # what a triggerer sets: the trigger's row id
    event, logs = _run_one(trigger)
    assert time.time() >= hold  # no sooner: the order of two moments, not a duration
    assert (event["kind"], event["job"]["status"]) == ("terminal", "SUCCESS")
    held = [line for line in _lines(logs, "info") if "reporting it in" in line]
    assert len(held) == 1
    assert held[0].startswith(f"Mistral batch job {job.id}: ended SUCCESS; reporting it in ")


def test_run_in_line_by_dag_test_the_event_is_not_held(hook: MistralBatchHook) -> None:
    # dag.test() runs the trigger in the task's process, after the task ended: no executor
    # report to race, and it leaves trigger_id unset.
    job = create_embeddings_job(hook)
    _wait_status(hook, job.id, BatchJobStatus.SUCCESS)
    hold = time.time() + 60.0
    trigger = _trigger(job.id, hold_event_until=hold)
    assert trigger.trigger_id is None
    event, logs = _run_one(trigger)
    assert time.time() < hold
    assert (event["kind"], event["job"]["status"]) == ("terminal", "SUCCESS")
    assert not [line for line in _lines(logs, "info") if "reporting it in" in line]


def test_the_default_connection_id_is_used(
    hook: MistralBatchHook, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_connection(monkeypatch, emulator, conn_id="mistral_default")
    job = create_embeddings_job(hook)
    trigger = MistralBatchJobTrigger(job.id, poll_interval=0.02)
    assert trigger.mistral_conn_id == "mistral_default"
    event, _ = _run_one(trigger)
    assert event["kind"] == "terminal"


def test_failed_job_gives_a_terminal_event_with_its_errors(hook: MistralBatchHook) -> None:
    missing = str(uuid.uuid4())
    job = hook.create_batch_job(
        endpoint="/v1/embeddings", model="mistral-embed", input_files=[missing]
    )
    event, _ = _run_one(_trigger(job.id))
    assert event["kind"] == "terminal"
    assert event["job"]["status"] == "FAILED"
    assert event["job"]["errors"]
    assert any(missing in error["message"] for error in event["job"]["errors"])
    parsed = parse_event(event)
    assert parsed.job is not None
    verdict = judge_job(parsed.job)
    assert verdict.succeeded is False
    assert verdict.message.startswith(f"Mistral batch job {job.id} ended FAILED: ")


def test_progress_is_logged_once_per_change(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    # ~0.8 s of RUNNING: many polls see it move, even on a slow machine.
    emulator.update_config(requests_per_second=50)
    job = create_embeddings_job(hook, count=40)
    event, logs = _run_one(_trigger(job.id, poll_interval=0.02))
    assert event["kind"] == "terminal"
    infos = [line for line in _lines(logs, "info") if line.startswith(f"job {job.id}: ")]
    assert infos[-1] == f"job {job.id}: SUCCESS, completed 40/40 (100.0%), 0 failed"
    running = [line for line in infos if line.startswith(f"job {job.id}: RUNNING, completed ")]
    assert running, infos
    assert all(line.endswith("failed") or ", ETA " in line for line in running)
    keys = [line.split(", ETA")[0] for line in infos]
    assert len(keys) == len(set(keys))  # unchanged polls are not logged again
    polls = _requests(emulator, "GET", f"{JOBS}/{job.id}")
    assert len(polls) >= len(infos)


# ---------------------------------------------------------------- deadline


def test_deadline_in_the_past_cancels_and_gives_a_timeout_event(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    job = _slow_job(hook, emulator)
    event, logs = _run_one(_trigger(job.id, deadline=time.time() - 1))
    assert event["kind"] == "timeout"
    assert event["job_id"] == job.id
    assert re.fullmatch(
        rf"deadline passed while Mistral batch job {job.id} was still (QUEUED|RUNNING); "
        "cancellation requested",
        event["message"],
    )
    assert event["job"]["status"] in ("CANCELLATION_REQUESTED", "CANCELLED")
    assert parse_event(event).kind == "timeout"
    assert event["message"] in _lines(logs, "warning")
    assert len(_requests(emulator, "POST", f"{JOBS}/{job.id}/cancel")) == 1
    _wait_status(hook, job.id, BatchJobStatus.CANCELLED)


def test_deadline_reached_while_polling_cancels_the_job(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    job = _slow_job(hook, emulator)
    event, logs = _run_one(_trigger(job.id, poll_interval=0.05, deadline=time.time() + 0.4))
    assert event["kind"] == "timeout"
    assert event["message"].endswith("; cancellation requested")
    assert event["job"]["status"] in ("CANCELLATION_REQUESTED", "CANCELLED")
    assert any(line.startswith(f"job {job.id}: ") for line in _lines(logs, "info"))
    assert len(_requests(emulator, "POST", f"{JOBS}/{job.id}/cancel")) == 1
    _wait_status(hook, job.id, BatchJobStatus.CANCELLED)


def test_deadline_without_cancel_leaves_the_job_running(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    job = _slow_job(hook, emulator)
    event, _ = _run_one(
        _trigger(job.id, poll_interval=0.05, deadline=time.time() + 0.2, cancel_on_deadline=False)
    )
    assert event["kind"] == "timeout"
    assert event["message"] == (
        f"deadline passed while Mistral batch job {job.id} was still RUNNING"
    )
    assert event["job"]["status"] == "RUNNING"
    assert _requests(emulator, "POST", f"{JOBS}/{job.id}/cancel") == []
    assert hook.get_batch_job(job.id).status is BatchJobStatus.RUNNING


def test_deadline_event_says_when_the_cancel_failed(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    job = _slow_job(hook, emulator)
    cancel_path = f"{JOBS}/{job.id}/cancel"
    emulator.set_faults(
        [Fault(kind="status", status_code=503, method="POST", path_prefix=cancel_path)] * 4
    )
    event, _ = _run_one(_trigger(job.id, deadline=time.time() - 1))
    assert event["kind"] == "timeout"
    assert re.match(
        rf"deadline passed while Mistral batch job {job.id} was still (QUEUED|RUNNING); "
        "could not cancel it:",
        event["message"],
    )
    assert "503" in event["message"]
    assert hook.get_batch_job(job.id).status is BatchJobStatus.RUNNING


def test_a_job_that_ended_before_the_deadline_check_is_terminal_not_timeout(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    # E.g. a triggerer restarts after the deadline while the job had succeeded meanwhile.
    job = create_embeddings_job(hook)
    ended = _wait_status(hook, job.id, BatchJobStatus.SUCCESS)
    event, _ = _run_one(_trigger(job.id, deadline=time.time() - 1))
    assert event["kind"] == "terminal"
    assert event["job"]["status"] == "SUCCESS"
    assert event["job"]["succeeded_requests"] == ended.succeeded_requests
    assert _requests(emulator, "POST", f"{JOBS}/{job.id}/cancel") == []


# ---------------------------------------------------------------- errors


def test_unknown_job_gives_an_error_event_at_once(emulator: RunningEmulator, hook: Any) -> None:
    job_id = str(uuid.uuid4())
    emulator.clear_requests()
    event, logs = _run_one(_trigger(job_id, max_consecutive_errors=5))
    assert event["kind"] == "error"
    assert event["job_id"] == job_id
    assert event["job"] is None
    assert event["message"].startswith(f"gave up polling Mistral batch job {job_id}: ")
    assert "404" in event["message"]
    assert parse_event(event).kind == "error"
    assert _requests(emulator, "GET", f"{JOBS}/{job_id}") == [404]
    warnings = _lines(logs, "warning")
    assert len(warnings) == 1
    assert warnings[0].startswith(f"Polling Mistral batch job {job_id} failed (1 in a row): ")


def test_wrong_api_key_gives_an_error_event_at_once(
    hook: MistralBatchHook, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = create_embeddings_job(hook)
    set_connection(monkeypatch, emulator, api_key="wrong-key")
    emulator.clear_requests()
    event, logs = _run_one(_trigger(job.id))
    assert event["kind"] == "error"
    assert "401" in event["message"]
    assert _requests(emulator, "GET", f"{JOBS}/{job.id}") == [401]
    assert all("wrong-key" not in str(entry) for entry in logs)
    assert "wrong-key" not in json.dumps(event)


def test_consecutive_server_errors_give_an_error_event(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    job = create_embeddings_job(hook)
    path = f"{JOBS}/{job.id}"
    # FAST_RETRIES makes 4 attempts per poll: 12 faults are 3 failed polls.
    emulator.set_faults(
        [Fault(kind="status", status_code=503, method="GET", path_prefix=path)] * 12
    )
    emulator.clear_requests()
    event, logs = _run_one(_trigger(job.id, max_consecutive_errors=3))
    assert event["kind"] == "error"
    assert event["job"] is None
    assert event["message"].startswith(f"gave up polling Mistral batch job {job.id}: ")
    assert "503" in event["message"]
    assert _requests(emulator, "GET", path) == [503] * 12
    warnings = _lines(logs, "warning")
    assert [w.split(": ")[0] for w in warnings] == [
        f"Polling Mistral batch job {job.id} failed ({n} in a row)" for n in (1, 2, 3)
    ]
    assert "HTTP 503" in warnings[0]


def test_error_event_carries_the_last_job_seen(
    hook: MistralBatchHook, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = _slow_job(hook, emulator)
    path = f"{JOBS}/{job.id}"
    fault = Fault(kind="status", status_code=503, method="GET", path_prefix=path)
    original = MistralBatchHook.aget_batch_job
    calls = 0

    async def first_poll_then_faults(self: MistralBatchHook, job_id: str, **kw: Any) -> BatchJob:
        nonlocal calls
        calls += 1
        if calls == 2:
            emulator.set_faults([fault] * 8)
        return await original(self, job_id, **kw)

    monkeypatch.setattr(MistralBatchHook, "aget_batch_job", first_poll_then_faults)
    event, _ = _run_one(_trigger(job.id, max_consecutive_errors=2))
    assert event["kind"] == "error"
    assert event["job"] is not None
    assert event["job"]["id"] == job.id
    assert event["job"]["status"] in ("QUEUED", "RUNNING")
    parsed = parse_event(event)
    assert parsed.job is not None
    assert parsed.job.id == job.id


def test_fewer_transient_errors_than_the_limit_still_end_in_terminal(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    job = create_embeddings_job(hook)
    path = f"{JOBS}/{job.id}"
    emulator.set_faults(
        [Fault(kind="status", status_code=503, method="GET", path_prefix=path)] * 8
        + [Fault(kind="drop_before", method="GET", path_prefix=path)] * 4
    )
    event, logs = _run_one(_trigger(job.id, max_consecutive_errors=4))
    assert event["kind"] == "terminal"
    assert event["job"]["status"] == "SUCCESS"
    assert emulator.pending_faults == []
    warnings = _lines(logs, "warning")
    assert len(warnings) == 3
    assert warnings[-1].startswith(f"Polling Mistral batch job {job.id} failed (3 in a row): ")


def test_the_error_count_resets_after_a_good_poll(
    hook: MistralBatchHook, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = _slow_job(hook, emulator)
    path = f"{JOBS}/{job.id}"
    fault = Fault(kind="status", status_code=503, method="GET", path_prefix=path)
    # bad, good, bad, good, ... : never two failed polls in a row.
    emulator.set_faults([fault] * 4)
    original = MistralBatchHook.aget_batch_job
    polls = 0

    async def alternate(self: MistralBatchHook, job_id: str, **kw: Any) -> BatchJob:
        nonlocal polls
        polls += 1
        try:
            return await original(self, job_id, **kw)
        finally:
            if polls % 2 == 0 and polls < 10:
                emulator.set_faults([fault] * 4)
            if polls >= 10:
                emulator.update_config(requests_per_second=50_000)

    monkeypatch.setattr(MistralBatchHook, "aget_batch_job", alternate)
    event, logs = _run_one(_trigger(job.id, max_consecutive_errors=2))
    assert event["kind"] == "terminal"
    warnings = _lines(logs, "warning")
    assert len(warnings) >= 4
    assert all("(1 in a row)" in w for w in warnings)


# ---------------------------------------------------------------- on_kill


def test_on_kill_cancels_the_job(hook: MistralBatchHook, emulator: RunningEmulator) -> None:
    job = _slow_job(hook, emulator)
    trigger = _trigger(job.id)
    logs = _call(trigger.on_kill)
    assert len(_requests(emulator, "POST", f"{JOBS}/{job.id}/cancel")) == 1
    assert f"Cancelled Mistral batch job {job.id} (status CANCELLATION_REQUESTED)" in _lines(
        logs, "info"
    )
    _wait_status(hook, job.id, BatchJobStatus.CANCELLED)


def test_on_kill_after_kill_of_a_running_trigger(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    job = _slow_job(hook, emulator)
    trigger = _trigger(job.id, poll_interval=0.05)

    async def run_then_kill() -> None:
        runner = asyncio.ensure_future(trigger.run().__anext__())
        await asyncio.sleep(0.2)
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
        await trigger.on_kill()

    _call(run_then_kill)
    _wait_status(hook, job.id, BatchJobStatus.CANCELLED)


def test_on_kill_leaves_the_job_when_told_to(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    job = _slow_job(hook, emulator)
    trigger = _trigger(job.id, cancel_on_kill=False)
    logs = _call(trigger.on_kill)
    assert _requests(emulator, "POST", f"{JOBS}/{job.id}/cancel") == []
    assert f"Leaving Mistral batch job {job.id} running (cancel_on_kill=False)" in _lines(
        logs, "info"
    )
    assert not any(line.startswith("Cancelled") for line in _lines(logs, "info"))
    assert hook.get_batch_job(job.id).status is BatchJobStatus.RUNNING


def test_on_kill_that_cannot_cancel_only_warns(hook: Any, emulator: RunningEmulator) -> None:
    job_id = str(uuid.uuid4())
    logs = _call(_trigger(job_id).on_kill)
    warnings = _lines(logs, "warning")
    assert len(warnings) == 1
    assert warnings[0].startswith(f"Could not cancel Mistral batch job {job_id}: ")
    assert "404" in warnings[0]


def test_job_that_ended_just_before_the_deadline_cancel_is_reported_as_ended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The last poll saw RUNNING, the deadline passed, and the cancel found the job ended."""
    base = {
        "id": "job-race",
        "input_files": [],
        "endpoint": "/v1/embeddings",
        "errors": [],
        "created_at": 1,
        "total_requests": 2,
        "failed_requests": 0,
    }
    running = BatchJob.model_validate(
        {**base, "status": "RUNNING", "completed_requests": 1, "succeeded_requests": 1}
    )
    ended = BatchJob.model_validate(
        {**base, "status": "SUCCESS", "completed_requests": 2, "succeeded_requests": 2}
    )

    class RacingHook:
        async def aget_batch_job(self, job_id: str, **_: Any) -> BatchJob:
            return running

        async def acancel_batch_job(self, job_id: str) -> BatchJob:
            return ended

    monkeypatch.setattr(MistralBatchJobTrigger, "_hook", lambda self: RacingHook())
    trigger = MistralBatchJobTrigger("job-race", deadline=time.time() - 1, poll_interval=0.01)

    async def first_event() -> dict[str, Any]:
        return (await trigger.run().__anext__()).payload

    event = parse_event(asyncio.run(first_event()))
    assert event.kind == "terminal"
    assert event.job is not None
    assert event.job.status == BatchJobStatus.SUCCESS


# ---------------------------------------------------------------- several jobs (shards)


def test_several_jobs_give_one_terminal_event_with_every_job_in_order(
    hook: MistralBatchHook,
) -> None:
    jobs = [create_embeddings_job(hook, count=n) for n in (2, 3, 1)]
    ids = [job.id for job in jobs]
    trigger = _trigger(ids[0], job_ids=ids)
    _, kwargs = trigger.serialize()
    assert kwargs["job_ids"] == ids
    assert json.loads(json.dumps(kwargs)) == kwargs  # plain data
    event, _ = _run_one(trigger)
    payload = parse_event(event)
    assert payload.kind == "terminal"
    assert payload.job_id == ids[0]
    assert [job.id for job in payload.all_jobs] == ids
    assert [job.total_requests for job in payload.all_jobs] == [2, 3, 1]
    assert all(job.status is BatchJobStatus.SUCCESS for job in payload.all_jobs)


def test_a_single_job_trigger_keeps_its_kwargs_and_event_shape(hook: MistralBatchHook) -> None:
    job = create_embeddings_job(hook)
    trigger = _trigger(job.id)
    _, kwargs = trigger.serialize()
    assert "job_ids" not in kwargs
    event, _ = _run_one(trigger)
    assert "jobs" not in event
    assert event["job"]["id"] == job.id


def test_one_job_that_cannot_be_watched_ends_the_wait_for_all(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    running = _slow_job(hook, emulator)
    unknown = str(uuid.uuid4())
    started = time.monotonic()
    event, _ = _run_one(_trigger(running.id, job_ids=[running.id, unknown]))
    assert time.monotonic() - started < 10, "the running job was not waited for"
    payload = parse_event(event)
    assert payload.kind == "error"
    assert payload.message.startswith(f"gave up polling Mistral batch job {unknown}: ")


def test_several_jobs_at_the_deadline_are_all_cancelled(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    first = _slow_job(hook, emulator)
    second = create_embeddings_job(hook, count=60)
    trigger = _trigger(first.id, job_ids=[first.id, second.id], deadline=time.time() + 0.5)
    event, _ = _run_one(trigger)
    payload = parse_event(event)
    assert payload.kind == "timeout"
    assert {job.id for job in payload.all_jobs} == {first.id, second.id}
    for job_id in (first.id, second.id):
        assert _requests(emulator, "POST", f"{JOBS}/{job_id}/cancel") == [200]
        assert job_id in payload.message


# ---------------------------------------------------------------- duplicate jobs of one task

TASK_KEY = "d" * 40


def test_serialize_round_trips_the_task_keys() -> None:
    trigger = MistralBatchJobTrigger(
        "a", job_ids=["a", "b"], task_keys=["ka", "kb"], check_duplicates_until=1_800_000_000
    )
    _, kwargs = trigger.serialize()
    assert kwargs["task_keys"] == ["ka", "kb"]
    assert kwargs["check_duplicates_until"] == 1_800_000_000.0
    assert MistralBatchJobTrigger(**kwargs).serialize()[1] == kwargs
    with pytest.raises(ValueError, match="one key per job id"):
        MistralBatchJobTrigger("a", job_ids=["a", "b"], task_keys=["ka"])


def _tagged_pair(hook: MistralBatchHook, emulator: RunningEmulator) -> tuple[BatchJob, BatchJob]:
    """Two jobs with one task key, the first older by a second: a few seconds of work each."""
    emulator.update_config(requests_per_second=3)
    requests = [{"custom_id": f"r{i}", "body": {"input": [f"text {i}"]}} for i in range(6)]
    made = []
    for _ in range(2):
        made.append(
            hook.create_batch_job(
                endpoint="/v1/embeddings",
                model="mistral-embed",
                requests=requests,
                metadata={"airflow_task_key": TASK_KEY},
            )
        )
        time.sleep(1.1)  # creation times are whole seconds
    return made[0], made[1]


def test_the_trigger_follows_the_older_duplicate_and_cancels_its_own(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    older, mine = _tagged_pair(hook, emulator)
    event, logs = _run_one(
        _trigger(mine.id, task_keys=[TASK_KEY], check_duplicates_until=time.time() + 60)
    )
    assert event["kind"] == "terminal"
    assert event["job_id"] == older.id
    assert event["job"]["status"] == "SUCCESS"
    assert parse_event(event).all_jobs[0].id == older.id
    assert hook.get_batch_job(mine.id).status in (
        BatchJobStatus.CANCELLATION_REQUESTED,
        BatchJobStatus.CANCELLED,
    )
    assert any(
        entry["event"].startswith(f"Following Mistral batch job {older.id} instead of {mine.id}")
        for entry in logs
    )


def test_a_rebuilt_trigger_whose_job_was_cancelled_as_a_duplicate_follows_the_kept_one(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    older, mine = _tagged_pair(hook, emulator)
    hook.cancel_batch_job(mine.id)
    # Rebuilt from its kwargs after the check window: its own job is CANCELLED.
    event, _ = _run_one(_trigger(mine.id, task_keys=[TASK_KEY], check_duplicates_until=0))
    assert event["kind"] == "terminal"
    assert event["job_id"] == older.id
    assert event["job"]["status"] == "SUCCESS"


def test_a_trigger_without_task_keys_reports_its_cancelled_job(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    _, mine = _tagged_pair(hook, emulator)
    hook.cancel_batch_job(mine.id)
    event, _ = _run_one(_trigger(mine.id))
    assert event["job_id"] == mine.id
    assert event["job"]["status"] == "CANCELLED"


# ---------------------------------------------------------------- what the log shows


def _request_lines(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.getMessage().startswith("HTTP Request:") and record.levelno >= level
    ]


def test_a_ten_poll_wait_logs_no_request_lines_at_info(
    hook: MistralBatchHook, emulator: RunningEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.update_config(requests_per_second=20)
    job = create_embeddings_job(hook, count=10)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        # A fixed schedule (the cap at the interval): ten polls however long the job runs.
        event, _ = _run_one(_trigger(job.id, poll_interval=0.05, max_poll_interval=0.05))
    polls = [r for r in emulator.requests if r.method == "GET" and r.path == f"{JOBS}/{job.id}"]
    assert event["kind"] == "terminal"
    assert len(polls) >= 10
    assert _request_lines(caplog, logging.INFO) == []


def test_the_request_lines_are_still_there_at_debug(
    hook: MistralBatchHook, emulator: RunningEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    job = create_embeddings_job(hook, count=1)
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        _run_one(_trigger(job.id))
    lines = _request_lines(caplog, logging.DEBUG)
    assert lines
    assert {record.levelname for record in lines} == {"DEBUG"}
    assert f"{JOBS}/{job.id}" in lines[0].getMessage()


# ---------------------------------------------------------------- removed before it fired


@pytest.mark.parametrize("has_on_kill", [False, True])
def test_a_trigger_removed_before_it_fired_says_the_job_keeps_running_before_3_3(
    monkeypatch: pytest.MonkeyPatch, has_on_kill: bool
) -> None:
    from airflow_provider_mistral_batch.triggers import batch as trigger_module

    monkeypatch.setattr(trigger_module, "_HAS_ON_KILL", has_on_kill)
    trigger = _trigger("job-1")
    with structlog.testing.capture_logs() as logs:
        asyncio.run(trigger.cleanup())
    lines = [entry["event"] for entry in logs]
    said = any("Stopped watching Mistral batch job job-1 before it ended" in x for x in lines)
    # 3.3+ cancels in on_kill instead; before, only this line tells the user.
    assert said is not has_on_kill


def test_a_trigger_that_fired_says_nothing_when_removed(
    hook: MistralBatchHook, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_provider_mistral_batch.triggers import batch as trigger_module

    monkeypatch.setattr(trigger_module, "_HAS_ON_KILL", False)
    job = create_embeddings_job(hook, count=1)
    trigger = _trigger(job.id)
    _run_one(trigger)
    with structlog.testing.capture_logs() as logs:
        asyncio.run(trigger.cleanup())
    assert not [entry for entry in logs if "Stopped watching" in entry["event"]]
