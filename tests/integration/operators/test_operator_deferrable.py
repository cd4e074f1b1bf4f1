"""MistralBatchOperator in deferrable mode: the deferral and the resume step."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException

from airflow_provider_mistral_batch.batch.deferral import exit_report_seconds
from airflow_provider_mistral_batch.batch.event import make_event
from airflow_provider_mistral_batch.exceptions import MistralBatchError
from airflow_provider_mistral_batch.models import BatchJob
from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
from airflow_provider_mistral_batch.triggers.batch import MistralBatchJobTrigger
from airflow_provider_mistral_batch.utils.compat import AirflowFailException, TaskDeferred
from mistral_batch_emulator import RunningEmulator
from tests.integration.operators.support import (
    CHAT,
    LINK_KEY,
    MODEL,
    FakeTaskInstance,
    OperatorLog,
    chat_requests,
    job_data,
)


def _op(**kwargs: Any) -> MistralBatchOperator:
    kwargs.setdefault("task_id", "batch")
    kwargs.setdefault("endpoint", CHAT)
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("deferrable", True)
    kwargs.setdefault("requests", chat_requests(2))
    return MistralBatchOperator(**kwargs)


def _job(status: str = "SUCCESS", **overrides: Any) -> BatchJob:
    return BatchJob.model_validate(job_data(status, **overrides))


# ------------------------------------------------------------------ deferral


@pytest.mark.integration
def test_execute_defers_to_the_trigger_with_plain_kwargs(
    conn: RunningEmulator, closing: Callable[[Any], Any]
) -> None:
    conn.update_config(queue_seconds=60)
    op = closing(_op(timeout=timedelta(hours=2)))
    op.max_consecutive_errors = 7
    ti = FakeTaskInstance()
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        op.execute({"ti": ti})
    after = time.time()

    job_id = ti.pushed["batch_job_id"]
    assert op.job_id == job_id
    # results come only after the resume
    assert set(ti.pushed) == {"batch_job_id", "batch_job_ids", "mistral_conn_id", LINK_KEY}
    deferred = info.value
    assert deferred.method_name == "execute_complete"
    trigger = deferred.trigger
    assert isinstance(trigger, MistralBatchJobTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_mistral_batch.triggers.batch.MistralBatchJobTrigger"
    assert kwargs["job_id"] == job_id
    assert kwargs["mistral_conn_id"] == "mistral_default"
    assert kwargs["poll_interval"] == 0.05
    assert kwargs["cancel_on_deadline"] is True
    assert kwargs["cancel_on_kill"] is True
    assert kwargs["max_consecutive_errors"] == 7
    deadline = kwargs["deadline"]
    assert isinstance(deadline, float)
    # Absolute epoch seconds: the job's timeout plus one hour from now.
    assert before + 3 * 3600 <= deadline <= after + 3 * 3600
    # The one poll schedule: poll_interval, growing for a long job up to 300 s.
    assert kwargs["max_poll_interval"] == 300.0
    # An event sooner than this is held: Airflow must first see this worker's exit.
    hold = kwargs["hold_event_until"]
    assert before + exit_report_seconds() <= hold <= after + exit_report_seconds()

    text = json.dumps(kwargs)  # plain data only
    assert conn.api_key not in text
    assert conn.base_url not in text
    # The trigger can be rebuilt from its kwargs, as a triggerer does.
    rebuilt = MistralBatchJobTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)


@pytest.mark.integration
def test_deferral_passes_the_operators_options(
    conn: RunningEmulator, closing: Callable[[Any], Any]
) -> None:
    conn.update_config(queue_seconds=60)
    op = closing(_op(cancel_on_kill=False, poll_interval=2, timeout=timedelta(hours=1)))
    op.max_poll_interval = 60.0
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        op.execute({"ti": FakeTaskInstance()})
    _, kwargs = info.value.trigger.serialize()
    assert kwargs["cancel_on_deadline"] is True  # always, at the wait's deadline
    assert kwargs["cancel_on_kill"] is False
    assert kwargs["poll_interval"] == 2.0
    assert kwargs["max_poll_interval"] == 60.0
    # The job's timeout plus one hour.
    assert before + 2 * 3600 <= kwargs["deadline"] <= time.time() + 2 * 3600


@pytest.mark.integration
def test_deferrable_with_an_already_ended_job_finishes_without_deferring(
    conn: RunningEmulator, closing: Callable[[Any], Any]
) -> None:
    ti = FakeTaskInstance()
    first = closing(_op(deferrable=False)).execute({"ti": ti})
    # A retry of the same task reattaches to the SUCCESS job and has nothing to wait for.
    retry_ti = FakeTaskInstance(try_number=2)
    result = closing(_op()).execute({"ti": retry_ti})
    assert result == first
    assert retry_ti.pushed["output_file"] == first["output_file"]


@pytest.mark.integration
def test_deferrable_with_wait_for_completion_false_does_not_defer(
    conn: RunningEmulator, closing: Callable[[Any], Any]
) -> None:
    conn.update_config(queue_seconds=60)
    result = closing(_op(wait_for_completion=False)).execute({"ti": FakeTaskInstance()})
    assert result["status"] == "QUEUED"


# ------------------------------------------------------------------ resume


def test_execute_complete_with_a_success_event(capture_log: Callable[[Any], OperatorLog]) -> None:
    op = _op()
    log = capture_log(op)
    ti = FakeTaskInstance()
    job = _job()
    event = make_event("terminal", job.id, job)
    result = op.execute_complete({"ti": ti}, event)
    assert result == {
        "job_id": job.id,
        "status": "SUCCESS",
        "output_file": job.output_file,
        "error_file": None,
        "total_requests": 3,
        "succeeded_requests": 3,
        "failed_requests": 0,
        "job_ids": [job.id],
        "output_files": [job.output_file],
        "error_files": [None],
        "results_path": None,
        "missing_requests": None,
        "usage": None,
        "counts": None,
    }
    assert ti.pushes == [
        ("output_file", job.output_file),
        ("error_file", None),
        ("batch_job_id", job.id),
        ("batch_job_ids", [job.id]),
        ("output_files", [job.output_file]),
        ("error_files", [None]),
    ]
    assert f"Mistral batch job {job.id} succeeded (3 succeeded, 0 failed of 3 requests)" in (
        log.at("info")
    )


def test_execute_complete_accepts_an_event_that_went_through_json() -> None:
    job = _job()
    event = json.loads(json.dumps(make_event("terminal", job.id, job)))
    assert _op().execute_complete({"ti": FakeTaskInstance()}, event)["status"] == "SUCCESS"


def test_execute_complete_applies_max_failed_ratio(
    capture_log: Callable[[Any], OperatorLog],
) -> None:
    job = _job(
        succeeded_requests=2,
        failed_requests=1,
        error_file="0a1b2c3d-0000-4000-8000-0000000000e1",
    )
    ti = FakeTaskInstance()
    for given in ({"max_failed_ratio": 0.1}, {}):  # the default fails on any failed request
        limit = given.get("max_failed_ratio", 0)
        with pytest.raises(
            AirflowFailException,
            match=rf"1 of 3 requests failed \(33\.3%\), above max_failed_ratio {limit}",
        ):
            _op(**given).execute_complete({"ti": ti}, make_event("terminal", job.id, job))
        assert ti.pushed["error_file"] == job.error_file

    log_op = _op(max_failed_ratio=None)
    log = capture_log(log_op)
    log_op.execute_complete({"ti": FakeTaskInstance()}, make_event("terminal", job.id, job))
    assert log.at("warning") == [
        # No connection in this test: the error file cannot be read, the verdict stands.
        f"Could not read the first errors of error_file {job.error_file}: The conn_id "
        "`mistral_default` isn't defined",
        f"1 of 3 requests failed (33.3%) in Mistral batch job {job.id}, max_failed_ratio "
        "None: failed requests only warn; "
        f"see error_file {job.error_file}",
    ]


@pytest.mark.parametrize("status", ["FAILED", "TIMEOUT_EXCEEDED"])
def test_execute_complete_with_a_failed_job(status: str) -> None:
    job = _job(status, errors=[{"message": "boom", "count": 2}], output_file=None)
    ti = FakeTaskInstance()
    with pytest.raises(AirflowException) as info:
        _op().execute_complete({"ti": ti}, make_event("terminal", job.id, job))
    assert not isinstance(info.value, AirflowFailException)
    assert str(info.value).startswith(f"Mistral batch job {job.id} ended {status}: boom (x2)")
    assert ti.pushed == {
        "output_file": None,
        "error_file": None,
        "batch_job_id": job.id,
        "batch_job_ids": [job.id],
        "output_files": [None],
        "error_files": [None],
    }


def test_execute_complete_with_a_cancelled_job_fails_without_retry() -> None:
    job = _job("CANCELLED")
    with pytest.raises(AirflowFailException, match="ended CANCELLED"):
        _op().execute_complete({"ti": FakeTaskInstance()}, make_event("terminal", job.id, job))


def test_execute_complete_with_an_unknown_status_never_succeeds() -> None:
    # An ended job in a status this provider does not know cannot come as "terminal"...
    job = _job("ARCHIVED")
    with pytest.raises(MistralBatchError, match="says the job ended"):
        _op().execute_complete(
            {"ti": FakeTaskInstance()}, make_event("timeout", job.id, job) | {"kind": "terminal"}
        )


def test_execute_complete_with_a_timeout_event() -> None:
    job = _job("CANCELLATION_REQUESTED", output_file="0a1b2c3d-0000-4000-8000-0000000000f1")
    message = f"deadline passed while Mistral batch job {job.id} was still RUNNING"
    ti = FakeTaskInstance()
    # Cancelled at the deadline: no retry (it would pay for a new job).
    with pytest.raises(AirflowFailException) as info:
        _op().execute_complete({"ti": ti}, make_event("timeout", job.id, job, message))
    assert str(info.value) == message
    # What the job produced before it was stopped is still findable.
    assert ti.pushed == {
        "output_file": job.output_file,
        "error_file": None,
        "batch_job_id": job.id,
        "batch_job_ids": [job.id],
        "output_files": [job.output_file],
        "error_files": [None],
    }


def test_execute_complete_with_a_timeout_event_for_a_job_left_running() -> None:
    job = _job("RUNNING")
    message = f"deadline passed while Mistral batch job {job.id} was still RUNNING"
    ti = FakeTaskInstance()
    with pytest.raises(AirflowException) as info:
        _op().execute_complete({"ti": ti}, make_event("timeout", job.id, job, message))
    assert not isinstance(info.value, AirflowFailException)  # a retry reattaches to it
    assert str(info.value) == message
    assert ti.pushed == {
        "output_file": job.output_file,
        "error_file": None,
        "batch_job_id": job.id,
        "batch_job_ids": [job.id],
        "output_files": [job.output_file],
        "error_files": [None],
    }


def test_execute_complete_with_an_error_event_without_job() -> None:
    ti = FakeTaskInstance()
    event = make_event("error", "j-1", None, "gave up polling Mistral batch job j-1: 401")
    with pytest.raises(AirflowException, match="gave up polling Mistral batch job j-1: 401"):
        _op().execute_complete({"ti": ti}, event)
    assert ti.pushes == []


def test_execute_complete_with_an_error_event_without_message() -> None:
    with pytest.raises(AirflowException, match="waiting for job j-2 failed"):
        _op().execute_complete({"ti": FakeTaskInstance()}, make_event("error", "j-2", None))


@pytest.mark.parametrize(
    "event",
    [
        {"status": "success"},
        {"status": "success", "job_id": "j"},
        {"kind": "done", "job_id": "j"},
        {"kind": "terminal", "job_id": "j"},  # terminal but no job
        {"kind": "terminal", "job_id": "j", "job": job_data("RUNNING")},  # not ended
        None,
        "success",
        ["terminal"],
    ],
)
def test_execute_complete_refuses_malformed_events(event: Any) -> None:
    ti = FakeTaskInstance()
    with pytest.raises(MistralBatchError, match="trigger event") as info:
        _op().execute_complete({"ti": ti}, event)
    assert isinstance(info.value, AirflowException)
    assert ti.pushes == []
