"""Deferrable trigger that waits for a Mistral batch job to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_mistral_batch.batch.event import make_event
from airflow_provider_mistral_batch.batch.identity import ajobs_of_key
from airflow_provider_mistral_batch.batch.wait_options import (
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    DEFAULT_MAX_POLL_INTERVAL,
    DEFAULT_POLL_INTERVAL,
)
from airflow_provider_mistral_batch.batch.waiting import (
    Answer,
    Cancel,
    CancelDuplicate,
    Ended,
    GaveUp,
    JobWatch,
    Outcome,
    Poll,
    Sleep,
    TimedOut,
)
from airflow_provider_mistral_batch.batch.watcher import SharedJobWatcher, shared_watcher
from airflow_provider_mistral_batch.connection_form import DEFAULT_CONN_ID
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

_ON_KILL_SECONDS: Final = 20.0
# Airflow 3.3+ calls a trigger's on_kill when its task is marked or cleared.
_HAS_ON_KILL: Final = hasattr(BaseTrigger, "on_kill")
# Each sleep between polls is the interval times a random factor in 1 +- this.
_JITTER: Final = 0.1


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
    :param poll_interval: seconds between polls; default 30. A job that has run long is
        polled every tenth of its age instead, up to ``max_poll_interval``.
    :param deadline: absolute deadline in epoch seconds; None waits as long as the job runs.
    :param cancel_on_deadline: cancel the job when the deadline passes; default True.
    :param max_consecutive_errors: failed polls in a row before giving up; default 5.
    :param cancel_on_kill: on Airflow 3.3+, cancel the job when a user marks the deferred task
        failed or success, or clears it; default True. A triggerer restart never cancels
        anything. A cleared task's new try may start before this cancel lands and then find
        the job CANCELLED.
    :param task_keys: the task key of each job (the batch operator's jobs), in the order of
        ``job_ids``: until ``check_duplicates_until`` each poll also looks for other jobs with
        the key, and a duplicate is cancelled (the older job is kept and followed); a job of
        the key that ends CANCELLED is followed to the one kept. None: no such checks.
    :param check_duplicates_until: epoch seconds; see ``task_keys``.
    :param max_poll_interval: the longest wait between two polls of a job that has run long;
        default 300; None: ``poll_interval`` (a fixed schedule). (Never below ``poll_interval``:
        equal to it, every poll waits that.)
    :param hold_event_until: epoch seconds, or None (default): no hold. In a triggerer the
        event is not yielded before then, however soon the jobs end: the operator and the
        sensor pass the moment from which Airflow has surely seen the deferring task's process
        end (an event sooner can make the scheduler fail the resumed task; see
        :mod:`~airflow_provider_mistral_batch.batch.deferral`). ``dag.test()`` runs the trigger
        in line once the task has ended, with no executor to race: no hold there.
    :param resume: plain data the resumed task needs, handed back unchanged in the event as
        ``resume`` (the batch operator's resubmit rounds); default None. The event, not the
        deferral's ``kwargs``: ``dag.test()`` on Airflow 3.3.2 drops those.

    Every sleep is the interval within +-10% (random jitter). All triggers of one triggerer
    that watch jobs on one connection read them through one shared watcher
    (:mod:`~airflow_provider_mistral_batch.batch.watcher`): with 20 jobs or more, one
    listing of the active jobs, page by page, answers them all, and only the jobs that left it
    are read one by one. While listing fails, each trigger reads its own job at its own
    interval, and only reads of its own job count as its failed polls.
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
        task_keys: Sequence[str] | None = None,
        check_duplicates_until: float | None = None,
        max_poll_interval: float | None = DEFAULT_MAX_POLL_INTERVAL,
        hold_event_until: float | None = None,
        resume: dict[str, Any] | None = None,
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
        self.task_keys = list(task_keys) if task_keys else None
        if self.task_keys is not None and len(self.task_keys) != len(self.job_ids):
            raise ValueError("task_keys needs one key per job id")
        self.check_duplicates_until = (
            float(check_duplicates_until) if check_duplicates_until is not None else None
        )
        # None (what a trigger serialized with a fixed schedule may carry): a fixed schedule.
        self.max_poll_interval = float(
            poll_interval if max_poll_interval is None else max_poll_interval
        )
        self.hold_event_until = float(hold_event_until) if hold_event_until is not None else None
        self.resume = resume
        self._watches: list[JobWatch] = []
        self._fired = False

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
            "max_poll_interval": self.max_poll_interval,
        }
        if len(self.job_ids) > 1:
            kwargs["job_ids"] = self.job_ids
        if self.task_keys is not None:
            kwargs["task_keys"] = self.task_keys
            kwargs["check_duplicates_until"] = self.check_duplicates_until
        if self.hold_event_until is not None:
            kwargs["hold_event_until"] = self.hold_event_until
        if self.resume is not None:
            kwargs["resume"] = self.resume
        return f"{type(self).__module__}.{type(self).__qualname__}", kwargs

    def _hook(self) -> MistralBatchHook:
        return MistralBatchHook(self.mistral_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Drive one waiting core per job, reading through the loop's shared watcher; yield
        one event for them all."""
        watches = [self._watch(index, job_id) for index, job_id in enumerate(self.job_ids)]
        self._watches = watches
        with shared_watcher(self.mistral_conn_id, self._hook).watching(self.job_ids) as watcher:
            if len(watches) == 1:  # one job: no task of its own (memory, with thousands)
                outcomes: dict[int, Outcome] = {0: await _drive(watcher, watches[0])}
            else:
                outcomes = await _drive_all(watcher, watches)
        # A watch that followed a duplicate's kept job reports that job's id.
        ids = [watch.job_id for watch in watches]
        self._fired = True
        payload = _event_payload(ids, [outcomes.get(index) for index in range(len(ids))])
        if self.resume is not None:
            payload["resume"] = self.resume
        yield _event(payload)

    def _watch(self, index: int, job_id: str) -> JobWatch:
        return JobWatch(
            job_id,
            log=self.log,
            poll_interval=self.poll_interval,
            deadline=self.deadline,
            cancel_on_deadline=self.cancel_on_deadline,
            max_consecutive_errors=self.max_consecutive_errors,
            task_key=self.task_keys[index] if self.task_keys is not None else None,
            check_duplicates_until=self.check_duplicates_until,
            max_poll_interval=self.max_poll_interval,
            jitter=_JITTER,
            hold_outcome_until=self.hold_event_until if self._in_a_triggerer() else None,
        )

    def _in_a_triggerer(self) -> bool:
        # A triggerer gives each trigger its row id; dag.test()'s in-line run leaves it None.
        return self.trigger_id is not None

    def _current_job_ids(self) -> list[str]:
        """The jobs watched now: a watch may have followed the kept job of a duplicate."""
        return [watch.job_id for watch in self._watches] or self.job_ids

    async def cleanup(self) -> None:
        """Before Airflow 3.3, say why the jobs keep running when the trigger is removed before
        it fired (a task marked failed or success, or cleared): only 3.3+ calls on_kill."""
        if self._fired or _HAS_ON_KILL:
            return
        job_ids = self._current_job_ids()
        self.log.warning(
            "Stopped watching Mistral batch job %s before it ended; it keeps running. This "
            "Airflow (before 3.3) removes a trigger the same way when its task is marked or "
            "cleared and when the triggerer stops, so nothing is cancelled here: cancel the "
            "job with MistralBatchCancelJobOperator or in Mistral's console if it is not "
            "wanted any more.",
            ", ".join(job_ids),
        )

    async def on_kill(self) -> None:
        """Airflow 3.3+: the user marked the task failed or success, or cleared it: cancel."""
        job_ids = self._current_job_ids()
        if not self.cancel_on_kill:
            self.log.info(
                "Leaving Mistral batch job %s running (cancel_on_kill=False)", ", ".join(job_ids)
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
                asyncio.gather(*(cancel(job_id) for job_id in job_ids)),
                timeout=_ON_KILL_SECONDS,
            )
        except TimeoutError:
            self.log.warning(
                "Could not cancel Mistral batch job %s within %.0f s",
                ", ".join(job_ids),
                _ON_KILL_SECONDS,
            )


async def _drive_all(watcher: SharedJobWatcher, watches: list[JobWatch]) -> dict[int, Outcome]:
    """Drive several jobs' cores at once; stop them all when one gives up."""
    waits = {
        asyncio.ensure_future(_drive(watcher, watch)): index for index, watch in enumerate(watches)
    }
    outcomes: dict[int, Outcome] = {}
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
    return outcomes


async def _drive(watcher: SharedJobWatcher, watch: JobWatch) -> Outcome:
    """Drive the waiting core of one job with async calls until it reports an outcome."""
    # The first step is a poll, before any deadline check: a job that ended meanwhile (say,
    # while the triggerer was down past the deadline) is reported as ended.
    step = watch.start()
    while not isinstance(step, Ended | GaveUp | TimedOut):
        answer: Answer
        if isinstance(step, Sleep):
            answer = await watcher.read_after(
                watch.job_id, step.seconds, period=watch.interval(), deadline=watch.deadline
            )
        elif isinstance(step, Poll):
            answer = await watcher.read(watch.job_id)
        else:
            hook = watcher.hook
            try:
                if isinstance(step, Cancel):
                    answer = await hook.acancel_batch_job(watch.job_id)
                elif isinstance(step, CancelDuplicate):
                    answer = await hook.acancel_batch_job(step.job_id)
                else:
                    answer = await ajobs_of_key(hook, step.key)
            except Exception as exc:  # the watch tells a passing blip from a lasting failure
                answer = exc
        step = watch.record(answer)
    return step


def _event_payload(ids: Sequence[str], outcomes: Sequence[Outcome | None]) -> dict[str, Any]:
    """One event for every job's outcome (None: its watch stopped when another gave up)."""
    jobs = [outcome.job for outcome in outcomes if outcome is not None and outcome.job]
    first = jobs[0] if jobs and jobs[0].id == ids[0] else None
    gave_up = [outcome for outcome in outcomes if isinstance(outcome, GaveUp)]
    if gave_up:
        return make_event("error", ids[0], first, gave_up[0].message, jobs, ids)
    timed_out = [outcome for outcome in outcomes if isinstance(outcome, TimedOut)]
    if timed_out:
        message = "; ".join(outcome.message for outcome in timed_out)
        return make_event("timeout", ids[0], first, message, jobs, ids)
    return make_event("terminal", ids[0], first, "", jobs, ids)


def _event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]
