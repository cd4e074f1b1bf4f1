"""Deferrable trigger that waits for a Mistral batch job to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
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
    """Poll a Mistral batch job (or the jobs of a sharded input) with async I/O until it ends,
    then yield one event.

    It never creates anything, so running it again (after a triggerer restart, on another
    triggerer) is harmless. Its kwargs are plain data: ids, the connection id, the poll interval,
    an absolute deadline and thresholds; never a secret.

    The event is ``{"kind", "job_id", "job", "message"}`` (plus ``jobs`` when it watched
    several): ``terminal`` when every job ended, ``timeout`` when the deadline passed (the jobs
    still running are cancelled first when ``cancel_on_deadline``), ``error`` when polling a job
    failed ``max_consecutive_errors`` times in a row (after the hook's own retries) or for good
    (unknown job, wrong key); the other jobs' watches then stop.

    :param job_id: id of the batch job (the first one when there are several).
    :param job_ids: ids of every job to watch, in order, when there are several (shards).
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
        job_ids: Sequence[str] | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.job_id = job_id
        self.job_ids = list(job_ids) if job_ids else [job_id]
        self.mistral_conn_id = mistral_conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = float(deadline) if deadline is not None else None
        self.cancel_on_deadline = cancel_on_deadline
        self.max_consecutive_errors = int(max_consecutive_errors)
        self.cancel_on_kill = cancel_on_kill

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and kwargs: plain data only."""
        kwargs: dict[str, Any] = {
            "job_id": self.job_id,
            "mistral_conn_id": self.mistral_conn_id,
            "poll_interval": self.poll_interval,
            "deadline": self.deadline,
            "cancel_on_deadline": self.cancel_on_deadline,
            "max_consecutive_errors": self.max_consecutive_errors,
            "cancel_on_kill": self.cancel_on_kill,
        }
        if len(self.job_ids) > 1:
            kwargs["job_ids"] = self.job_ids
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    def _hook(self) -> MistralBatchHook:
        return MistralBatchHook(self.mistral_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Drive one waiting core per job with async calls; yield one event for them all."""
        hook = self._hook()
        waits = {asyncio.ensure_future(self._wait(hook, job_id)): job_id for job_id in self.job_ids}
        outcomes: dict[str, Ended | GaveUp | TimedOut] = {}
        try:
            pending = set(waits)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    outcomes[waits[task]] = task.result()
                if any(isinstance(outcome, GaveUp) for outcome in outcomes.values()):
                    break  # one job cannot be watched: the task fails, the others need not wait
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        yield _event(self._event_payload([outcomes.get(job_id) for job_id in self.job_ids]))

    async def _wait(self, hook: MistralBatchHook, job_id: str) -> Ended | GaveUp | TimedOut:
        """Drive the waiting core of one job until it reports an outcome."""
        watch = JobWatch(
            job_id,
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
                    answer = await hook.acancel_batch_job(job_id)
                else:
                    answer = await hook.aget_batch_job(job_id)
            except Exception as exc:  # the watch tells a passing blip from a lasting failure
                answer = exc
            step = watch.record(answer)
        return step

    def _event_payload(self, outcomes: list[Ended | GaveUp | TimedOut | None]) -> dict[str, Any]:
        """One event for every job's outcome (None: its watch stopped when another gave up)."""
        jobs = [outcome.job for outcome in outcomes if outcome is not None and outcome.job]
        first = jobs[0] if jobs and jobs[0].id == self.job_id else None
        gave_up = [outcome for outcome in outcomes if isinstance(outcome, GaveUp)]
        ids = self.job_ids
        if gave_up:
            return make_event("error", self.job_id, first, gave_up[0].message, jobs, ids)
        timed_out = [outcome for outcome in outcomes if isinstance(outcome, TimedOut)]
        if timed_out:
            message = "; ".join(outcome.message for outcome in timed_out)
            return make_event("timeout", self.job_id, first, message, jobs, ids)
        return make_event("terminal", self.job_id, first, "", jobs, ids)

    async def on_kill(self) -> None:
        """Airflow 3.3+: the user marked the task failed or success, or cleared it: cancel."""
        if not self.cancel_on_kill:
            self.log.info(
                "Leaving Mistral batch job %s running (cancel_on_kill=False)",
                ", ".join(self.job_ids),
            )
            return
        hook = self._hook()

        async def cancel(job_id: str) -> None:
            try:
                job = await hook.acancel_batch_job(job_id)
            except Exception as exc:
                self.log.warning("Could not cancel Mistral batch job %s: %s", job_id, exc)
            else:
                self.log.info("Cancelled Mistral batch job %s (status %s)", job_id, job.status)

        # The triggerer gives on_kill little time: every job at once, retries bounded.
        try:
            await asyncio.wait_for(
                asyncio.gather(*(cancel(job_id) for job_id in self.job_ids)),
                timeout=_ON_KILL_SECONDS,
            )
        except TimeoutError:
            self.log.warning(
                "Could not cancel Mistral batch job %s within %.0f s",
                ", ".join(self.job_ids),
                _ON_KILL_SECONDS,
            )


def _event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]
