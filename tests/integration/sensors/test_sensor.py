"""MistralBatchJobSensor: poke mode and deferrable mode, against the emulator."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowException

from airflow_provider_mistral_batch.batch.deferral import exit_report_seconds
from airflow_provider_mistral_batch.batch.event import make_event
from airflow_provider_mistral_batch.exceptions import MistralBatchFatalError, MistralNotFoundError
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import BatchJob, BatchJobStatus
from airflow_provider_mistral_batch.sensors.batch import MistralBatchJobSensor
from airflow_provider_mistral_batch.triggers.batch import MistralBatchJobTrigger
from airflow_provider_mistral_batch.utils.compat import (
    AirflowFailException,
    AirflowSensorTimeout,
    TaskDeferred,
)
from mistral_batch_emulator import Fault, RunningEmulator
from tests.helpers import wait_for_terminal
from tests.integration.operators.support import (
    CHAT,
    LINK_KEY,
    MODEL,
    FakeTaskInstance,
    OperatorLog,
    chat_requests,
    job_data,
)


@pytest.fixture
def make_sensor(closing: Callable[[Any], Any]) -> Callable[..., MistralBatchJobSensor]:
    def make(job_id: str, **kwargs: Any) -> MistralBatchJobSensor:
        kwargs.setdefault("task_id", "wait")
        kwargs.setdefault("poke_interval", 0.05)
        kwargs.setdefault("deferrable", False)
        return closing(MistralBatchJobSensor(job_id=job_id, **kwargs))

    return make


def _create(hook: MistralBatchHook, n: int = 3) -> str:
    return hook.create_batch_job(endpoint=CHAT, requests=chat_requests(n), model=MODEL).id


def _wait_until(hook: MistralBatchHook, job_id: str, status: BatchJobStatus) -> None:
    limit = time.monotonic() + 10
    while hook.get_batch_job(job_id).status != status:
        if time.monotonic() > limit:
            pytest.fail(f"job {job_id} never reached {status}")
        time.sleep(0.02)


@pytest.mark.integration
def test_poke_is_false_while_running_then_done_with_the_summary(
    capture_log: Callable[[Any], OperatorLog],
    make_sensor: Callable[..., MistralBatchJobSensor],
    conn: RunningEmulator,
    hook: MistralBatchHook,
) -> None:
    conn.update_config(requests_per_second=0.5)
    job_id = _create(hook, 20)
    _wait_until(hook, job_id, BatchJobStatus.RUNNING)
    sensor = make_sensor(job_id)
    log = capture_log(sensor)
    ti = FakeTaskInstance()

    assert sensor.poke({"ti": ti}) is False
    assert sensor.poke({"ti": ti}) is False
    assert ti.pushes == []
    assert any(line.startswith(f"job {job_id}: RUNNING") for line in log.at("info"))

    conn.update_config(requests_per_second=50_000.0)
    done = wait_for_terminal(hook, job_id)
    returned = sensor.poke({"ti": ti})
    assert isinstance(returned, PokeReturnValue)
    assert returned.is_done is True
    assert returned.xcom_value == {
        "job_id": job_id,
        "status": "SUCCESS",
        "output_file": done.output_file,
        "error_file": None,
        "total_requests": 20,
        "succeeded_requests": 20,
        "failed_requests": 0,
    }
    assert ti.pushed == {"output_file": done.output_file, "error_file": None}


@pytest.mark.integration
def test_execute_in_poke_mode_returns_the_summary_and_pushes_xcom(
    capture_log: Callable[[Any], OperatorLog],
    make_sensor: Callable[..., MistralBatchJobSensor],
    conn: RunningEmulator,
    hook: MistralBatchHook,
) -> None:
    conn.update_config(failing_custom_ids={"r0"})
    job_id = _create(hook)
    sensor = make_sensor(job_id, max_failed_ratio=None)
    log = capture_log(sensor)
    ti = FakeTaskInstance()
    result = sensor.execute({"ti": ti})
    assert result["job_id"] == job_id
    assert result["status"] == "SUCCESS"
    assert result["failed_requests"] == 1
    # The connection is the emulator (loopback): the link opens its job page.
    assert ti.pushed[LINK_KEY] == f"{conn.base_url}/build/batches/{job_id}"
    assert ti.pushed["output_file"] == result["output_file"]
    assert ti.pushed["error_file"] == result["error_file"] is not None
    assert log.at("warning") == [
        f"1 of 3 requests failed (33.3%) in Mistral batch job {job_id}, max_failed_ratio "
        "None: failed requests only warn; see error_file "
        f"{result['error_file']}; first errors: r0: request r0 failed (listed in "
        "failing_custom_ids)"
    ]


@pytest.mark.integration
def test_a_failed_job_fails_the_sensor(
    make_sensor: Callable[..., MistralBatchJobSensor], hook: MistralBatchHook
) -> None:
    missing = str(uuid.uuid4())
    job = hook.create_batch_job(endpoint=CHAT, input_files=[missing], model=MODEL)
    wait_for_terminal(hook, job.id)
    ti = FakeTaskInstance()
    with pytest.raises(AirflowException) as info:
        make_sensor(job.id).poke({"ti": ti})
    assert f"Mistral batch job {job.id} ended FAILED" in str(info.value)
    assert ti.pushed == {"output_file": None, "error_file": None}


@pytest.mark.integration
def test_a_cancelled_job_fails_the_sensor(
    make_sensor: Callable[..., MistralBatchJobSensor],
    conn: RunningEmulator,
    hook: MistralBatchHook,
) -> None:
    conn.update_config(queue_seconds=60)
    job_id = _create(hook)
    hook.cancel_batch_job(job_id)
    wait_for_terminal(hook, job_id)
    sensor = make_sensor(job_id)
    with pytest.raises(AirflowFailException, match=f"Mistral batch job {job_id} ended CANCELLED"):
        sensor.execute({"ti": FakeTaskInstance()})


@pytest.mark.integration
def test_max_failed_ratio_fails_the_sensor(
    make_sensor: Callable[..., MistralBatchJobSensor],
    conn: RunningEmulator,
    hook: MistralBatchHook,
) -> None:
    conn.update_config(failing_custom_ids={"r0"})
    job_id = _create(hook, 2)
    wait_for_terminal(hook, job_id)
    with pytest.raises(AirflowFailException, match=r"above max_failed_ratio 0\.1"):
        make_sensor(job_id, max_failed_ratio=0.1).poke({"ti": FakeTaskInstance()})
    # The default, like the operator's: any failed request fails the task.
    with pytest.raises(AirflowFailException, match=r"\(50%\), above max_failed_ratio 0 "):
        make_sensor(job_id).poke({"ti": FakeTaskInstance()})


@pytest.mark.integration
def test_the_sensor_never_cancels_the_job(
    make_sensor: Callable[..., MistralBatchJobSensor],
    conn: RunningEmulator,
    hook: MistralBatchHook,
) -> None:
    conn.update_config(queue_seconds=60)
    job_id = _create(hook)
    sensor = make_sensor(job_id)
    assert sensor.poke({"ti": FakeTaskInstance()}) is False
    sensor.on_kill()
    assert not [r for r in conn.requests if r.path.endswith("/cancel")]


@pytest.mark.integration
def test_a_transient_poll_error_is_tolerated(
    capture_log: Callable[[Any], OperatorLog],
    make_sensor: Callable[..., MistralBatchJobSensor],
    conn: RunningEmulator,
    hook: MistralBatchHook,
) -> None:
    job_id = _create(hook)
    wait_for_terminal(hook, job_id)
    conn.set_faults([Fault(kind="status", status_code=503, method="GET")])
    sensor = make_sensor(job_id)
    log = capture_log(sensor)
    ti = FakeTaskInstance()
    assert sensor.poke({"ti": ti}) is False
    assert log.at("warning")[0].startswith(
        f"Polling Mistral batch job {job_id} failed (1 in a row):"
    )
    returned = sensor.poke({"ti": ti})
    assert isinstance(returned, PokeReturnValue)
    assert returned.is_done


@pytest.mark.integration
def test_poll_errors_give_up_after_max_consecutive_errors(
    make_sensor: Callable[..., MistralBatchJobSensor],
    conn: RunningEmulator,
    hook: MistralBatchHook,
) -> None:
    job_id = _create(hook)
    conn.set_faults([Fault(kind="status", status_code=503, method="GET")] * 2)
    sensor = make_sensor(job_id, max_consecutive_errors=2)
    assert sensor.poke({"ti": FakeTaskInstance()}) is False
    with pytest.raises(AirflowException, match="503"):
        sensor.poke({"ti": FakeTaskInstance()})


@pytest.mark.integration
def test_pokes_follow_the_operators_poll_schedule(
    make_sensor: Callable[..., MistralBatchJobSensor],
    conn: RunningEmulator,
    hook: MistralBatchHook,
) -> None:
    conn.update_config(queue_seconds=60)
    sensor = make_sensor(_create(hook), poke_interval=20)
    assert sensor.poke({"ti": FakeTaskInstance()}) is False
    watch = sensor._watch
    assert watch is not None
    job = watch.last_job
    assert job is not None
    began = job.started_at if job.started_at is not None else job.created_at

    def next_wait() -> float:
        return sensor._get_next_poke_interval(0.0, lambda: 0.0, 2)

    # A young job: every poke_interval. One that has run 1000 s: every tenth of its age.
    # One that has run for hours: every max_poll_interval (300 s).
    for age, expected in ((10.0, 20.0), (1000.0, 100.0), (10_000.0, 300.0)):
        watch.clock = lambda age=age: began + age  # type: ignore[misc]
        assert next_wait() == pytest.approx(expected)
    # Airflow's own exponential backoff, when asked for, is left alone.
    sensor.exponential_backoff = True
    assert next_wait() != pytest.approx(300.0)


@pytest.mark.integration
def test_an_unknown_job_fails_at_once(
    make_sensor: Callable[..., MistralBatchJobSensor], conn: RunningEmulator
) -> None:
    unknown = str(uuid.uuid4())
    with pytest.raises(MistralBatchFatalError, match=unknown) as caught:  # no retries
        make_sensor(unknown).poke({"ti": FakeTaskInstance()})
    assert isinstance(caught.value.__cause__, MistralNotFoundError)


@pytest.mark.integration
def test_deferrable_sensor_defers_without_cancelling_anything(
    make_sensor: Callable[..., MistralBatchJobSensor],
    conn: RunningEmulator,
    hook: MistralBatchHook,
) -> None:
    conn.update_config(queue_seconds=60)
    job_id = _create(hook)
    sensor = make_sensor(job_id, deferrable=True, timeout=600, max_consecutive_errors=3)
    ti = FakeTaskInstance()
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        sensor.execute({"ti": ti})
    after = time.time()

    assert info.value.method_name == "execute_complete"
    trigger = info.value.trigger
    assert isinstance(trigger, MistralBatchJobTrigger)
    _, kwargs = trigger.serialize()
    assert kwargs["job_id"] == job_id
    assert kwargs["mistral_conn_id"] == "mistral_default"
    assert kwargs["poll_interval"] == 0.05
    assert kwargs["cancel_on_deadline"] is False
    assert kwargs["cancel_on_kill"] is False
    assert kwargs["max_consecutive_errors"] == 3
    assert kwargs["max_poll_interval"] == 300.0  # the operator's poll schedule
    assert before + 600 <= kwargs["deadline"] <= after + 600
    # An event sooner than this is held: Airflow must first see this worker's exit.
    assert before + exit_report_seconds() <= kwargs["hold_event_until"]
    assert kwargs["hold_event_until"] <= after + exit_report_seconds()
    assert conn.api_key not in json.dumps(kwargs)
    assert ti.pushed == {
        LINK_KEY: f"{conn.base_url}/build/batches/{job_id}",
        "batch_job_id": job_id,
        "mistral_conn_id": "mistral_default",
    }


@pytest.mark.integration
def test_deferrable_sensor_on_an_ended_job_does_not_defer(
    make_sensor: Callable[..., MistralBatchJobSensor], hook: MistralBatchHook
) -> None:
    job_id = _create(hook)
    done = wait_for_terminal(hook, job_id)
    ti = FakeTaskInstance()
    result = make_sensor(job_id, deferrable=True).execute({"ti": ti})
    assert result["status"] == "SUCCESS"
    assert ti.pushed["output_file"] == done.output_file


def test_sensor_execute_complete() -> None:
    job = BatchJob.model_validate(job_data())
    sensor = MistralBatchJobSensor(task_id="wait", job_id=job.id)
    ti = FakeTaskInstance()
    result = sensor.execute_complete({"ti": ti}, make_event("terminal", job.id, job))
    assert result["status"] == "SUCCESS"
    assert ti.pushed == {"output_file": job.output_file, "error_file": None}

    failed = BatchJob.model_validate(job_data("FAILED"))
    with pytest.raises(AirflowException, match="ended FAILED"):
        sensor.execute_complete({"ti": ti}, make_event("terminal", failed.id, failed))
    with pytest.raises(AirflowSensorTimeout, match="deadline passed"):
        sensor.execute_complete({"ti": ti}, make_event("timeout", job.id, None, "deadline passed"))
    # Even when someone else is cancelling the job: a sensor's timeout is a sensor timeout.
    stopping = BatchJob.model_validate(job_data("CANCELLATION_REQUESTED"))
    with pytest.raises(AirflowSensorTimeout, match="deadline passed"):
        sensor.execute_complete(
            {"ti": ti}, make_event("timeout", job.id, stopping, "deadline passed")
        )
    with pytest.raises(AirflowException, match="unexpected trigger event"):
        sensor.execute_complete({"ti": ti}, {"status": "success"})


@pytest.mark.integration
@pytest.mark.parametrize("job_id", ["6b0c7a8e-0000-4000-8000-00000000dead", "not-a-job-id"])
@pytest.mark.parametrize("deferrable", [False, True])
def test_an_unknown_or_invalid_job_id_fails_without_retries_naming_it(
    make_sensor: Callable[..., MistralBatchJobSensor],
    conn: RunningEmulator,
    job_id: str,
    deferrable: bool,
) -> None:
    sensor = make_sensor(job_id=job_id, deferrable=deferrable)
    with pytest.raises(MistralBatchFatalError) as caught:
        sensor.execute({"ti": FakeTaskInstance()})
    assert isinstance(caught.value, AirflowFailException)
    assert str(caught.value).startswith(f"Mistral batch job {job_id!r} cannot be read: HTTP 4")
