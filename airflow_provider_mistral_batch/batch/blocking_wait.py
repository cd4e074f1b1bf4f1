"""The blocking wait: drive the waiting core (:class:`~.waiting.JobWatch`) with the hook's
blocking calls, in a worker slot. The trigger drives the same core with async calls, the
sensor one poll per poke."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_mistral_batch.batch.identity import jobs_of_key
from airflow_provider_mistral_batch.batch.waiting import (
    Answer,
    Cancel,
    CancelDuplicate,
    Ended,
    GaveUp,
    JobWatch,
    ListTaskJobs,
    Outcome,
    Sleep,
    TimedOut,
)

if TYPE_CHECKING:
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
    from airflow_provider_mistral_batch.models import BatchJob


def wait_blocking(
    hook: MistralBatchHook,
    watch: JobWatch,
    job: BatchJob | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Drive the waiting core with blocking calls until it reports an outcome.

    :param job: the job as last read, judged first; None reads it at once.
    """
    step = watch.start(job)
    while not isinstance(step, Ended | GaveUp | TimedOut):
        if isinstance(step, Sleep):
            sleep(step.seconds)
        answer: Answer
        try:
            if isinstance(step, Cancel):
                answer = hook.cancel_batch_job(watch.job_id)
            elif isinstance(step, CancelDuplicate):
                answer = hook.cancel_batch_job(step.job_id)
            elif isinstance(step, ListTaskJobs):
                answer = jobs_of_key(hook, step.key)
            else:
                answer = hook.get_batch_job(watch.job_id)
        except Exception as exc:  # the watch tells a passing blip from a lasting failure
            answer = exc
        step = watch.record(answer)
    return step


def ended_job(outcome: Ended | GaveUp) -> BatchJob:
    """The ended job, or the error that ended polling raised as it came."""
    if isinstance(outcome, GaveUp):
        raise outcome.error
    return outcome.job


def wait_for_jobs(
    hook: MistralBatchHook,
    jobs: Sequence[BatchJob],
    task_keys: Sequence[str],
    *,
    log: Any,
    poll_interval: float,
    max_poll_interval: float,
    deadline: float,
    max_consecutive_errors: int,
    check_duplicates_until: float,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[BatchJob], list[TimedOut]]:
    """Wait for each job of a task in turn (all share one deadline; the job past it is
    cancelled), watching each for duplicates of its task key until ``check_duplicates_until``.

    :return: each job as it ended, or its latest snapshot when it timed out (a wait that
        followed the kept one of duplicate jobs gives that job), and the timeouts.
    """
    ended: list[BatchJob] = []
    timed_out: list[TimedOut] = []
    for job, key in zip(jobs, task_keys, strict=True):
        watch = JobWatch(
            job.id,
            log=log,
            poll_interval=poll_interval,
            deadline=deadline,
            cancel_on_deadline=True,
            max_consecutive_errors=max_consecutive_errors,
            task_key=key,
            check_duplicates_until=check_duplicates_until,
            max_poll_interval=max_poll_interval,
        )
        outcome = wait_blocking(hook, watch, job, sleep=sleep)
        if isinstance(outcome, TimedOut):
            timed_out.append(outcome)
            ended.append(outcome.job or job)  # the latest snapshot, one per job
        else:
            ended.append(ended_job(outcome))
    return ended, timed_out
