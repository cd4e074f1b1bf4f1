"""Deferrable trigger that waits for a Mistral batch job to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Final

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_mistral_batch.connection_defaults import DEFAULT_CONN_ID
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.hooks.retry_policy import describe_error
from airflow_provider_mistral_batch.job_outcome import make_event
from airflow_provider_mistral_batch.job_watch import (
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    DEFAULT_POLL_INTERVAL,
    JobWatch,
    asettle_at_deadline,
    deadline_message,
    ended_on_its_own,
)
from airflow_provider_mistral_batch.models import BatchJob

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
        """Poll until the job ends, the deadline passes or polling gives up; yield one event."""
        hook = self._hook()
        watch = JobWatch(self.job_id, self.deadline, self.max_consecutive_errors)
        last_job: BatchJob | None = None
        while True:
            # Poll before checking the deadline: a job that ended meanwhile (say, while the
            # triggerer was down past the deadline) is reported as ended, not timed out.
            try:
                job = await hook.aget_batch_job(self.job_id)
            except Exception as exc:
                give_up = watch.record_error(exc)
                watch.log_failed_poll(self.log, describe_error(exc))
                if give_up:
                    message = f"gave up polling Mistral batch job {self.job_id}: {exc}"
                    yield _event(make_event("error", self.job_id, last_job, message))
                    return
            else:
                last_job = job
                watch.log_progress(job, self.log)
                if job.status.is_terminal:
                    yield _event(make_event("terminal", self.job_id, job))
                    return
            if watch.deadline_passed():
                yield _event(await self._timeout_event(hook, last_job))
                return
            await asyncio.sleep(watch.seconds_to_sleep(self.poll_interval))

    async def _timeout_event(self, hook: MistralBatchHook, last: BatchJob | None) -> dict[str, Any]:
        job, error = await asettle_at_deadline(hook, self.job_id, last, self.cancel_on_deadline)
        if ended_on_its_own(job, self.cancel_on_deadline):
            # It ended on its own between the last poll and the deadline: report that.
            return make_event("terminal", self.job_id, job)
        message = deadline_message(self.job_id, last, self.cancel_on_deadline, error)
        self.log.warning("%s", message)
        return make_event("timeout", self.job_id, job, message)

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
