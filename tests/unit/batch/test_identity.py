"""Duplicate jobs: which one is kept (identity.choose_kept) and what the waiting core does
about the others, step by step with a fake clock."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_provider_mistral_batch.batch.identity import (
    choose_kept,
    duplicate_warning,
    with_task_key,
)
from airflow_provider_mistral_batch.batch.waiting import (
    CancelDuplicate,
    Ended,
    JobWatch,
    ListTaskJobs,
    Poll,
    Sleep,
)
from airflow_provider_mistral_batch.exceptions import MistralServerError
from airflow_provider_mistral_batch.models import TASK_KEY_METADATA, BatchJob
from tests.helpers import running_job

KEY = "k" * 40
LOG = logging.getLogger("tests.duplicates")


def job(job_id: str, created_at: int, status: str = "RUNNING", key: str = KEY) -> BatchJob:
    return running_job(
        id=job_id, created_at=created_at, status=status, metadata={TASK_KEY_METADATA: key}
    )


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def watch_of(job_id: str, clock: Clock, **options: Any) -> JobWatch:
    options.setdefault("task_key", KEY)
    options.setdefault("check_duplicates_until", clock.now + 300)
    return JobWatch(job_id, log=LOG, clock=clock, poll_interval=30, **options)


# ---------------------------------------------------------------- the rule


def test_the_oldest_running_job_is_kept_and_the_younger_cancelled() -> None:
    choice = choose_kept([job("young", 20), job("old", 10)])
    assert choice.kept is not None
    assert choice.kept.id == "old"
    assert [each.id for each in choice.to_cancel] == ["young"]


def test_a_succeeded_job_is_kept_over_an_older_running_one() -> None:
    choice = choose_kept([job("old", 10), job("done", 20, "SUCCESS")])
    assert choice.kept is not None
    assert choice.kept.id == "done"
    assert [each.id for each in choice.to_cancel] == ["old"]


def test_ended_cancelling_and_other_keys_jobs_are_neither_kept_nor_cancelled() -> None:
    jobs = [
        job("failed", 1, "FAILED"),
        job("cancelling", 2, "CANCELLATION_REQUESTED"),
        job("other", 3, key="x" * 40),
        job("mine", 4),
        job("second-success", 5, "SUCCESS"),
        job("first-success", 4, "SUCCESS"),
    ]
    choice = choose_kept(with_task_key(jobs, KEY))
    assert choice.kept is not None
    assert choice.kept.id == "first-success"
    # A SUCCESS duplicate cannot be cancelled any more; only the running one is.
    assert [each.id for each in choice.to_cancel] == ["mine"]


def test_the_same_creation_time_is_broken_by_id_so_every_watcher_agrees() -> None:
    one, two = job("b", 10), job("a", 10)
    assert choose_kept([one, two]).kept == choose_kept([two, one]).kept == two


def test_the_latest_snapshot_of_a_job_counts() -> None:
    # The listing may be older than the job just read: the later entry wins.
    choice = choose_kept([job("old", 10), job("young", 20), job("old", 10, "CANCELLED")])
    assert choice.kept is not None
    assert choice.kept.id == "young"
    assert choice.to_cancel == ()


def test_no_live_job_keeps_nothing() -> None:
    assert choose_kept([job("gone", 1, "CANCELLED")]).kept is None


def test_the_warning_names_both_jobs_and_why_the_kept_one_is_kept() -> None:
    assert duplicate_warning(job("young", 20), job("old", 10)) == (
        "Cancelling Mistral batch job young: a duplicate of job old, which is kept (it is the "
        "older)"
    )
    assert duplicate_warning(job("old", 10), job("done", 20, "SUCCESS")) == (
        "Cancelling Mistral batch job old: a duplicate of job done, which is kept (it succeeded)"
    )


# ---------------------------------------------------------------- the waiting core


def test_a_younger_duplicate_seen_while_checking_is_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    watch = watch_of("mine", clock)
    assert watch.start() == Poll()
    assert watch.record(job("mine", 10)) == ListTaskJobs(KEY)
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        assert watch.record([job("mine", 10), job("late", 12)]) == CancelDuplicate("late")
    assert "Cancelling Mistral batch job late: a duplicate of job mine" in caplog.text
    assert watch.record(job("late", 12, "CANCELLATION_REQUESTED")) == Sleep(30)
    assert watch.job_id == "mine"


def test_an_older_duplicate_is_followed_and_the_own_job_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    watch = watch_of("mine", clock)
    watch.start()
    assert watch.record(job("mine", 10)) == ListTaskJobs(KEY)
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        step = watch.record([job("orphan", 5), job("mine", 10)])
    assert step == CancelDuplicate("mine")
    assert watch.job_id == "orphan"
    assert "Following Mistral batch job orphan instead of mine" in caplog.text
    # The cancel refused (say, a blip) does not stop the watch: it reads the kept job now.
    assert watch.record(MistralServerError(503, "busy")) == Poll()
    assert watch.record(job("orphan", 5)) == ListTaskJobs(KEY)
    assert watch.record([job("orphan", 5), job("mine", 10, "CANCELLED")]) == Sleep(30)
    assert watch.record(job("orphan", 5, "SUCCESS")) == Ended(job("orphan", 5, "SUCCESS"))


def test_after_the_check_window_no_listing_is_made() -> None:
    clock = Clock()
    watch = watch_of("mine", clock, check_duplicates_until=clock.now + 60)
    watch.start()
    assert watch.record(job("mine", 10)) == ListTaskJobs(KEY)
    assert watch.record([job("mine", 10)]) == Sleep(30)
    clock.now += 61
    assert watch.record(job("mine", 10)) == Sleep(30)


def test_a_failed_check_is_a_warning_not_a_failed_poll(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    watch = watch_of("mine", clock)
    watch.start()
    watch.record(job("mine", 10))
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        assert watch.record(MistralServerError(503, "busy")) == Sleep(30)
    assert "Could not check for duplicates of Mistral batch job mine" in caplog.text
    assert watch.consecutive_errors == 0


def test_a_cancelled_job_of_the_key_is_followed_to_the_kept_one() -> None:
    # A watch started again (triggerer restart) after another watch cancelled its job.
    clock = Clock()
    watch = watch_of("mine", clock, check_duplicates_until=None)
    watch.start()
    assert watch.record(job("mine", 10, "CANCELLED")) == ListTaskJobs(KEY)
    assert watch.record([job("orphan", 5), job("mine", 10, "CANCELLED")]) == Poll()
    assert watch.job_id == "orphan"
    assert watch.record(job("orphan", 5, "SUCCESS")) == Ended(job("orphan", 5, "SUCCESS"))


def test_a_cancelled_job_with_no_other_job_of_the_key_ends_cancelled() -> None:
    clock = Clock()
    watch = watch_of("mine", clock)
    watch.start()
    cancelled = job("mine", 10, "CANCELLED")
    assert watch.record(cancelled) == ListTaskJobs(KEY)
    assert watch.record([cancelled]) == Ended(cancelled)


def test_looking_for_the_kept_job_retries_a_blip_then_gives_the_cancelled_job() -> None:
    clock = Clock()
    watch = watch_of("mine", clock, max_consecutive_errors=2)
    watch.start()
    cancelled = job("mine", 10, "CANCELLED")
    assert watch.record(cancelled) == ListTaskJobs(KEY)
    assert watch.record(MistralServerError(503, "busy")) == Sleep(30)
    assert watch.record(cancelled) == ListTaskJobs(KEY)
    assert watch.record(MistralServerError(503, "busy")) == Ended(cancelled)


def test_without_a_task_key_nothing_is_listed() -> None:
    clock = Clock()
    watch = JobWatch("mine", log=LOG, clock=clock, poll_interval=30)
    watch.start()
    assert watch.record(job("mine", 10)) == Sleep(30)
    cancelled = job("mine", 10, "CANCELLED")
    assert watch.record(cancelled) == Ended(cancelled)


def test_a_list_answer_to_a_poll_is_a_programming_error() -> None:
    watch = watch_of("mine", Clock())
    watch.start()
    with pytest.raises(TypeError):
        watch.record([job("mine", 10)])


def test_a_job_of_another_key_in_the_listing_is_left_alone() -> None:
    # The server filters the listing by key; the watch checks again and never cancels a job
    # that is not its task's.
    clock = Clock()
    watch = watch_of("mine", clock)
    assert watch.record(job("mine", 10)) == ListTaskJobs(KEY)
    assert watch.record([job("mine", 10), job("stranger", 5, key="x" * 40)]) == Sleep(30)
    assert watch.job_id == "mine"


def test_reattachable_statuses_include_unknown_running_ones() -> None:
    from airflow_provider_mistral_batch.batch.identity import is_reattachable
    from airflow_provider_mistral_batch.models import BatchJobStatus

    assert is_reattachable(BatchJobStatus.QUEUED)
    assert is_reattachable(BatchJobStatus.RUNNING)
    assert is_reattachable(BatchJobStatus.SUCCESS)
    assert is_reattachable(BatchJobStatus("VALIDATING"))
    for status in ("CANCELLATION_REQUESTED", "CANCELLED", "FAILED", "TIMEOUT_EXCEEDED"):
        assert not is_reattachable(BatchJobStatus(status))
