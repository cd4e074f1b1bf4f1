"""Sensor that waits for an existing Mistral batch job to end."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_mistral_batch.batch.wait_options import (
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    DEFAULT_MAX_FAILED_RATIO,
    DEFAULT_MAX_POLL_INTERVAL,
    DEFAULT_POLL_INTERVAL,
    check_wait_options,
)
from airflow_provider_mistral_batch.connection_form import DEFAULT_CONN_ID
from airflow_provider_mistral_batch.exceptions import MistralAPIError, given_job_error
from airflow_provider_mistral_batch.links import MistralBatchJobLink
from airflow_provider_mistral_batch.utils.compat import AirflowSensorTimeout, conf

# The verdict and the waiting core (batch/) are imported where they are used: every DAG
# file that uses the sensor pays its imports at every parse, and only a run needs them.
if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_mistral_batch.batch.waiting import JobWatch
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
    from airflow_provider_mistral_batch.models import BatchJob


class MistralBatchJobSensor(BaseSensorOperator):
    """Wait for a Mistral batch job (created anywhere) to end, then judge it like the operator.

    Pushes ``batch_job_id`` and ``mistral_conn_id`` to XCom at the start (where the UI finds
    the job), ``output_file`` and ``error_file`` at the end, and returns the job's summary. A
    job that ends FAILED, TIMEOUT_EXCEEDED or CANCELLED fails the task; an unknown status
    counts as not ended (never as success); a SUCCESS job with failed requests fails it too,
    unless ``max_failed_ratio`` allows that share. The sensor never cancels the job it
    watches.

    :param job_id: id of the job (templated).
    :param mistral_conn_id: Airflow connection id; default ``mistral_default``.
    :param deferrable: wait in the triggerer; default from ``[operators] default_deferrable``.
    :param poke_interval: seconds between polls; default 30. A job that has run long is polled
        every tenth of its age instead, up to ``max_poll_interval`` (a class attribute, 300 s),
        as the operator does (``exponential_backoff=True`` uses Airflow's schedule instead). In
        ``mode="reschedule"`` keep it
        well above the delay with which the executor reports a finished poke to the scheduler
        (about 5 s on the LocalExecutor, more on a busy scheduler or with Celery): with a
        shorter one Airflow fails the sensor ("finished with state success, but the task
        instance's state attribute is queued", apache/airflow#71172; measurements in
        docs/deployment.md). Deferrable and poke mode put no such limit on it.
    :param max_failed_ratio: highest share (0.0-1.0) of failed requests a SUCCESS job may
        have; default 0.0: any failed request fails the task. None (or 1.0) lets any number
        fail, with a warning.
    :param max_consecutive_errors: failed polls in a row (after the hook's retries) before
        failing; default 5. In reschedule mode each poke starts the count afresh.

    In every mode, the sensor's ``timeout`` ends in ``AirflowSensorTimeout`` (no retries).
    """

    template_fields: Sequence[str] = ("job_id",)
    operator_extra_links = (MistralBatchJobLink(),)
    ui_color = "#ffd8b0"
    #: The longest wait between two polls of a job that has run long (see ``poke_interval``).
    max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL

    def __init__(
        self,
        *,
        job_id: str,
        mistral_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poke_interval: float = DEFAULT_POLL_INTERVAL,
        max_failed_ratio: float | None = DEFAULT_MAX_FAILED_RATIO,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        check_wait_options(
            self.task_id,
            max_failed_ratio=max_failed_ratio,
            max_consecutive_errors=max_consecutive_errors,
        )
        self.job_id = job_id
        self.mistral_conn_id = mistral_conn_id
        self.deferrable = deferrable
        self.max_failed_ratio = max_failed_ratio
        self.max_consecutive_errors = max_consecutive_errors
        self._watch: JobWatch | None = None

    @cached_property
    def hook(self) -> MistralBatchHook:
        """The hook for ``mistral_conn_id``."""
        from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

        return MistralBatchHook(self.mistral_conn_id)

    def execute(self, context: Context) -> Any:
        """Poke, or defer to :class:`MistralBatchJobTrigger` unless the job already ended."""
        from airflow_provider_mistral_batch.batch.finish import finish_with_job
        from airflow_provider_mistral_batch.batch.manifest import XCOM_CONN_ID, XCOM_JOB_ID

        MistralBatchJobLink.persist(context, self.job_id, self.hook.settings.console_url)
        # Where the UI plugin finds the job this task watches.
        context["ti"].xcom_push(key=XCOM_JOB_ID, value=self.job_id)
        context["ti"].xcom_push(key=XCOM_CONN_ID, value=self.mistral_conn_id)
        if not self.deferrable:
            return super().execute(context)
        try:
            job = self.hook.get_batch_job(self.job_id)
        except MistralAPIError as exc:
            raise given_job_error(self.job_id, exc) from exc
        if job.status.is_terminal:
            return finish_with_job(
                context,
                job,
                self.max_failed_ratio,
                self.log,
                file_lines=self.hook.iter_file_head_lines,
                mask=self.hook.mask,
            )
        from airflow_provider_mistral_batch.batch.deferral import hold_events_until
        from airflow_provider_mistral_batch.triggers.batch import MistralBatchJobTrigger

        timeout = float(self.timeout) if self.timeout else None
        self.defer(
            trigger=MistralBatchJobTrigger(
                job_id=self.job_id,
                mistral_conn_id=self.mistral_conn_id,
                poll_interval=float(self.poke_interval),
                deadline=time.time() + timeout if timeout else None,
                cancel_on_deadline=False,
                max_consecutive_errors=self.max_consecutive_errors,
                cancel_on_kill=False,
                max_poll_interval=self.max_poll_interval,
                # A job that ends within seconds of this deferral must not resume the task
                # before Airflow has seen this process end.
                hold_event_until=hold_events_until(),
            ),
            method_name="execute_complete",
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        """One poll: False while the job runs; the verdict once it ended."""
        from airflow_provider_mistral_batch.batch.finish import finish_with_job
        from airflow_provider_mistral_batch.batch.waiting import Ended, GaveUp, JobWatch

        if self._watch is None:
            # No deadline here: the sensor's own timeout ends the wait.
            self._watch = JobWatch(
                self.job_id,
                log=self.log,
                poll_interval=float(self.poke_interval),
                max_consecutive_errors=self.max_consecutive_errors,
                max_poll_interval=self.max_poll_interval,
            )
        answer: BatchJob | BaseException
        try:
            answer = self.hook.get_batch_job(self.job_id)
        except Exception as exc:  # the watch tells a passing blip from a lasting failure
            answer = exc
        step = self._watch.record(answer)
        if isinstance(step, GaveUp):
            raise given_job_error(self.job_id, step.error) from step.error
        if not isinstance(step, Ended):
            return False
        summary = finish_with_job(
            context,
            step.job,
            self.max_failed_ratio,
            self.log,
            file_lines=self.hook.iter_file_head_lines,
            mask=self.hook.mask,
        )
        return PokeReturnValue(is_done=True, xcom_value=summary)

    def _get_next_poke_interval(
        self,
        started_at: datetime | float,
        run_duration: Callable[[], float],
        poke_count: int,
    ) -> float:
        """The wait before the next poke: the operator's poll schedule (from the job's age as
        last read), unless ``exponential_backoff`` asks for Airflow's own."""
        # Airflow's BaseSensorOperator asks this between pokes, in poke and reschedule mode.
        if self.exponential_backoff or self._watch is None:
            return float(super()._get_next_poke_interval(started_at, run_duration, poke_count))
        return self._watch.interval()

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        """Resume after the trigger: check the event, apply the failure policy, push XCom."""
        from airflow_provider_mistral_batch.batch.finish import finish_with_event

        return finish_with_event(
            context,
            event,
            self.max_failed_ratio,
            self.log,
            timeout_error=AirflowSensorTimeout,
            file_lines=self.hook.iter_file_head_lines,
            mask=self.hook.mask,
        )
