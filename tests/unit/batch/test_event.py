"""The trigger event shapes that carry an ended job to the task."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_mistral_batch.batch.event import (
    TriggerEventPayload,
    job_snapshot,
    make_event,
    parse_event,
)
from airflow_provider_mistral_batch.exceptions import MistralBatchError
from airflow_provider_mistral_batch.models import BatchJob, BatchJobStatus
from tests.unit.batch.jobs import JOB_ID, make_job


def test_job_snapshot_drops_outputs_and_is_plain_data() -> None:
    job = make_job(outputs=[{"custom_id": "a", "response": {"status_code": 200}}])
    snapshot = job_snapshot(job)
    assert "outputs" not in snapshot
    assert snapshot["id"] == JOB_ID
    assert snapshot["status"] == "SUCCESS"
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert BatchJob.model_validate(snapshot).status is BatchJobStatus.SUCCESS


# ---------------------------------------------------------------- events


def test_make_event_round_trips_through_parse_event() -> None:
    job = make_job()
    event = make_event("terminal", JOB_ID, job)
    assert event == {"kind": "terminal", "job_id": JOB_ID, "job": job_snapshot(job), "message": ""}
    assert json.loads(json.dumps(event)) == event
    parsed = parse_event(event)
    assert isinstance(parsed, TriggerEventPayload)
    assert parsed.kind == "terminal"
    assert parsed.job_id == JOB_ID
    assert parsed.job is not None
    assert parsed.job.status is BatchJobStatus.SUCCESS
    assert parsed.job.outputs is None


@pytest.mark.parametrize("kind", ["timeout", "error"])
def test_timeout_and_error_events_may_carry_no_job(kind: Any) -> None:
    event = make_event(kind, JOB_ID, None, "gave up")
    parsed = parse_event(event)
    assert (parsed.kind, parsed.job, parsed.message) == (kind, None, "gave up")


def test_timeout_event_with_a_running_job_is_accepted() -> None:
    job = make_job(status="CANCELLATION_REQUESTED")
    parsed = parse_event(make_event("timeout", JOB_ID, job, "deadline passed"))
    assert parsed.job is not None
    assert parsed.job.status is BatchJobStatus.CANCELLATION_REQUESTED


def test_make_event_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        make_event("done", JOB_ID, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("event", [None, "terminal", ["terminal", JOB_ID], 42])
def test_parse_event_refuses_non_dicts(event: Any) -> None:
    with pytest.raises(MistralBatchError) as caught:
        parse_event(event)
    assert str(caught.value) == f"unexpected trigger event {event!r}: expected a dict"


@pytest.mark.parametrize(
    "event",
    [
        {"kind": "finished", "job_id": JOB_ID},
        {"kind": "error"},
        {"job_id": JOB_ID},
        {"kind": "error", "job_id": None},
        {"kind": "error", "job_id": 12},
        {"kind": "terminal", "job_id": JOB_ID, "job": {"id": JOB_ID}},
        {"kind": "terminal", "job_id": JOB_ID, "job": "SUCCESS"},
    ],
)
def test_parse_event_refuses_other_shapes(event: dict[str, Any]) -> None:
    with pytest.raises(MistralBatchError, match="unexpected trigger event"):
        parse_event(event)


def test_parse_event_refuses_terminal_without_a_job() -> None:
    event = make_event("error", JOB_ID, None)
    event["kind"] = "terminal"
    with pytest.raises(MistralBatchError) as caught:
        parse_event(event)
    assert str(caught.value).startswith(
        f"trigger event for job {JOB_ID} says the job ended but carries no ended job"
    )


@pytest.mark.parametrize("status", ["RUNNING", "QUEUED", "CANCELLATION_REQUESTED", "NEW_THING"])
def test_parse_event_refuses_terminal_with_a_job_still_running(status: str) -> None:
    event = make_event("timeout", JOB_ID, make_job(status=status))
    event["kind"] = "terminal"
    with pytest.raises(MistralBatchError, match="says the job ended but carries no ended job"):
        parse_event(event)


def test_parse_event_refuses_a_job_that_is_not_the_events_job() -> None:
    event = make_event("terminal", JOB_ID, make_job())
    event["job_id"] = "another-job"
    with pytest.raises(MistralBatchError) as caught:
        parse_event(event)
    assert str(caught.value) == f"trigger event for job another-job carries another job, {JOB_ID}"


def test_parse_event_errors_are_airflow_exceptions() -> None:
    from airflow.sdk.exceptions import AirflowException

    with pytest.raises(AirflowException):
        parse_event({"kind": "nope"})
