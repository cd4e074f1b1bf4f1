"""The one poll schedule: every poll_interval, a long-running job every tenth of its age up to
max_poll_interval; jitter in the trigger. (The sensor's pokes: tests/integration/operators.)"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from airflow_provider_mistral_batch.batch.waiting import JobWatch, Sleep
from airflow_provider_mistral_batch.models import BatchJob
from airflow_provider_mistral_batch.triggers.batch import MistralBatchJobTrigger

NOW = 1_800_000_000.0


def _running(started_ago: float | None, created_ago: float = 0.0) -> BatchJob:
    return BatchJob.model_validate(
        {
            "id": "job-1",
            "input_files": [],
            "endpoint": "/v1/embeddings",
            "errors": [],
            "status": "RUNNING",
            "created_at": int(NOW - created_ago),
            "started_at": int(NOW - started_ago) if started_ago is not None else None,
            "total_requests": 10,
            "completed_requests": 1,
            "succeeded_requests": 1,
            "failed_requests": 0,
        }
    )


def _watch(**options: Any) -> JobWatch:
    return JobWatch("job-1", log=logging.getLogger("test"), clock=lambda: NOW, **options)


@pytest.mark.parametrize(
    ("started_ago", "interval"),
    [(0, 30.0), (120, 30.0), (600, 60.0), (1800, 180.0), (3000, 300.0), (86_400, 300.0)],
)
def test_a_long_running_job_is_polled_less_often_up_to_the_cap(
    started_ago: float, interval: float
) -> None:
    watch = _watch(poll_interval=30.0, max_poll_interval=300.0)
    assert watch.record(_running(started_ago)) == Sleep(interval)
    assert watch.interval() == interval


def test_the_age_counts_from_creation_before_the_job_started() -> None:
    watch = _watch(poll_interval=30.0, max_poll_interval=300.0)
    assert watch.record(_running(None, created_ago=1200)) == Sleep(120.0)


def test_a_cap_at_the_poll_interval_keeps_it_fixed() -> None:
    watch = _watch(poll_interval=30.0, max_poll_interval=30.0)
    assert watch.record(_running(86_400)) == Sleep(30.0)


def test_a_deadline_still_cuts_the_longer_sleep() -> None:
    watch = _watch(poll_interval=30.0, max_poll_interval=300.0, deadline=NOW + 45)
    assert watch.record(_running(3000)) == Sleep(45.0)


@pytest.mark.parametrize(("rand", "seconds"), [(0.0, 27.0), (0.5, 30.0), (0.999, 32.994)])
def test_jitter_spreads_sleeps_within_the_fraction(rand: float, seconds: float) -> None:
    watch = _watch(poll_interval=30.0, jitter=0.1, rand=lambda: rand)
    step = watch.record(_running(0))
    assert isinstance(step, Sleep)
    assert step.seconds == pytest.approx(seconds)


def test_the_trigger_sleeps_with_jitter_and_passes_its_cap() -> None:
    trigger = MistralBatchJobTrigger("job-1", poll_interval=30, max_poll_interval=300)
    watch = trigger._watch(0, "job-1")
    assert watch.jitter == pytest.approx(0.1)
    assert watch.max_poll_interval == 300.0
    sleeps = {watch._jittered(30.0) for _ in range(50)}
    assert len(sleeps) > 1
    assert all(27.0 <= s <= 33.0 for s in sleeps)


def test_max_poll_interval_defaults_to_the_schedule_s_cap_and_round_trips() -> None:
    _, plain = MistralBatchJobTrigger("job-1").serialize()
    assert plain["max_poll_interval"] == 300.0  # no silent fixed schedule
    _, kwargs = MistralBatchJobTrigger("job-1", max_poll_interval=120).serialize()
    assert kwargs["max_poll_interval"] == 120.0
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert MistralBatchJobTrigger(**kwargs).serialize()[1] == kwargs


def test_no_cap_means_a_fixed_schedule() -> None:
    # What a trigger serialized with a fixed schedule may carry.
    trigger = MistralBatchJobTrigger("job-1", poll_interval=7, max_poll_interval=None)
    assert trigger.serialize()[1]["max_poll_interval"] == 7.0
