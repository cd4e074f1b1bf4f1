"""A job's progress as a person reads it: the line, the time left, a duration."""

from __future__ import annotations

import pytest

from airflow_provider_mistral_batch.batch.progress import (
    describe_progress,
    eta_seconds,
    format_duration,
    without_eta,
)
from tests.helpers import running_job

STARTED = 1_700_000_100


def test_progress_line_format() -> None:
    assert describe_progress(running_job(), 180) == (
        "job 1a2b: RUNNING, completed 12,345/100,000 (12.3%), 40 failed, ETA 3m"
    )
    assert describe_progress(running_job()) == (
        "job 1a2b: RUNNING, completed 12,345/100,000 (12.3%), 40 failed"
    )


def test_progress_before_validation() -> None:
    job = running_job(status="QUEUED", total_requests=0, completed_requests=0, failed_requests=0)
    assert describe_progress(job, 60) == "job 1a2b: QUEUED, input not validated yet"


def test_progress_of_an_ended_job_has_no_eta() -> None:
    job = running_job(status="SUCCESS", completed_requests=100_000, failed_requests=1_234)
    assert describe_progress(job, 60) == (
        "job 1a2b: SUCCESS, completed 100,000/100,000 (100.0%), 1,234 failed"
    )


def test_progress_percent_rounds_to_one_decimal() -> None:
    job = running_job(total_requests=3, completed_requests=2, failed_requests=0)
    assert describe_progress(job) == "job 1a2b: RUNNING, completed 2/3 (66.7%), 0 failed"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.4, "0s"),
        (44.6, "45s"),
        (59, "59s"),
        (59.6, "1m"),
        (60, "1m"),
        (179, "2m"),
        (3599, "59m"),
        (3600, "1h00m"),
        (7500, "2h05m"),
        (90_061, "25h01m"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_the_eta_is_the_time_left_at_the_average_rate_since_the_start() -> None:
    job = running_job(started_at=STARTED)  # 12,345 of 100,000 done
    assert eta_seconds(job, STARTED + 1_000) == pytest.approx(87_655 * 1_000 / 12_345)


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "QUEUED", "started_at": None},  # not started
        {"started_at": None},  # running, but no start time known
        {"started_at": STARTED, "completed_requests": 0},  # nothing done yet: no rate
        {"started_at": STARTED, "total_requests": 0},  # input not validated
        {"started_at": STARTED, "completed_requests": 100_000},  # all done
        {"status": "CANCELLATION_REQUESTED", "started_at": STARTED},
        {"status": "SUCCESS", "started_at": STARTED, "completed_at": STARTED + 5},
    ],
)
def test_no_eta_without_a_rate_or_unless_running(changes: dict[str, object]) -> None:
    assert eta_seconds(running_job(**changes), STARTED + 100) is None


def test_no_eta_for_a_clock_behind_the_start() -> None:
    assert eta_seconds(running_job(started_at=STARTED), STARTED - 5) is None


def test_without_eta_keeps_what_changes_with_the_counts() -> None:
    line = describe_progress(running_job(), 180)
    assert without_eta(line) == "job 1a2b: RUNNING, completed 12,345/100,000 (12.3%), 40 failed"
