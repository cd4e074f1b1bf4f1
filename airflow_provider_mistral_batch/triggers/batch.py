"""Deferrable trigger that waits for a Mistral batch job to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Final

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import BatchJob
from airflow_provider_mistral_batch.utils.connection import DEFAULT_CONN_ID
from airflow_provider_mistral_batch.utils.outcome import make_event
from airflow_provider_mistral_batch.utils.watch import (
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    DEFAULT_POLL_INTERVAL,
    Cancel,
    Ended,
    GaveUp,
    JobWatch,
    Sleep,
    TimedOut,
)

_ON_KILL_SECONDS: Final = 20.0


class MistralBatchJobTrigger(BaseTrigger):
    """Poll a Mistral batch job with async I/O until it ends, then yield one event.

    It never creates anything, so running it again (after a triggerer restart, on another
    triggerer) is harmless. Its kwargs are plain data: ids, the connection id, the poll interval,
    an absolute deadline and thresholds; never a secret.

    The event is ``{"kind", "job_id", "job", "message"}``: ``terminal`` when the job ended,
    ``timeout`` when the deadline passed (the job is cancelled first when
    ``cancel_on_deadline``), ``error`` when polling failed ``max_consecutive_errors`` times in a
    row (after the hook's own retries) or for good (unknown job, wrong key).

    :param job_id: id of the batch job.
    :param mistral_conn_id: Airflow connection id; default ``mistral_default``.
    :param poll_interval: seconds between polls; default 30.
    :param deadline: absolute deadline in epoch seconds; None waits as long as the job runs.
    :param cancel_on_deadline: cancel the job when the deadline passes; default True.
    :param max_consecutive_errors: failed polls in a row before giving up; default 5.
    :param cancel_on_kill: on Airflow 3.3+, cancel the job when a user marks the deferred task
        failed or success, or clears it; default True. A triggerer restart never cancels
        anything. A cleared task's new try may start before this cancel lands and then find
        the job CANCELLED.
    """

    def __init__(
        self,
        job_id: str,
        mistral_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        deadline: float | None = None,
        cancel_on_deadline: bool = True,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
        cancel_on_kill: bool = True,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.job_id = job_id
        self.mistral_conn_id = mistral_conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = float(deadline) if deadline is not None else None
        self.cancel_on_deadline = cancel_on_deadline
        self.max_consecutive_errors = int(max_consecutive_errors)
        self.cancel_on_kill = cancel_on_kill

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and kwargs: plain data only."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_id": self.job_id,
                "mistral_conn_id": self.mistral_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "cancel_on_deadline": self.cancel_on_deadline,
                "max_consecutive_errors": self.max_consecutive_errors,
                "cancel_on_kill": self.cancel_on_kill,
            },
        )

    def _hook(self) -> MistralBatchHook:
        return MistralBatchHook(self.mistral_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Drive the waiting core with async calls until it reports an outcome; yield it."""
        hook = self._hook()
        watch = JobWatch(
            self.job_id,
            log=self.log,
            poll_interval=self.poll_interval,
            deadline=self.deadline,
            cancel_on_deadline=self.cancel_on_deadline,
            max_consecutive_errors=self.max_consecutive_errors,
        )
        # The first step is a poll, before any deadline check: a job that ended meanwhile
        # (say, while the triggerer was down past the deadline) is reported as ended.
        step = watch.start()
        while not isinstance(step, Ended | GaveUp | TimedOut):
            if isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
            answer: BatchJob | BaseException
            try:
                if isinstance(step, Cancel):
                    answer = await hook.acancel_batch_job(self.job_id)
                else:
                    answer = await hook.aget_batch_job(self.job_id)
            except Exception as exc:  # the watch tells a passing blip from a lasting failure
                answer = exc
            step = watch.record(answer)
        yield _event(_event_payload(self.job_id, step))

    async def on_kill(self) -> None:
        """Airflow 3.3+: the user marked the task failed or success, or cleared it: cancel."""
        if not self.cancel_on_kill:
            self.log.info(
                "Leaving Mistral batch job %s running (cancel_on_kill=False)", self.job_id
            )
            return
        try:
            # The triggerer gives on_kill little time: do not let retries run past it.
            job = await asyncio.wait_for(
                self._hook().acancel_batch_job(self.job_id), timeout=_ON_KILL_SECONDS
            )
        except Exception as exc:
            self.log.warning("Could not cancel Mistral batch job %s: %s", self.job_id, exc)
        else:
            self.log.info("Cancelled Mistral batch job %s (status %s)", self.job_id, job.status)


def _event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]


def _event_payload(job_id: str, outcome: Ended | GaveUp | TimedOut) -> dict[str, Any]:
    if isinstance(outcome, Ended):
        return make_event("terminal", job_id, outcome.job)
    if isinstance(outcome, TimedOut):
        return make_event("timeout", job_id, outcome.job, outcome.message)
    return make_event("error", job_id, outcome.job, outcome.message)
