"""Operator that cancels a Mistral batch job."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_mistral_batch.batch.wait_options import check_wait_options, is_finite_number
from airflow_provider_mistral_batch.connection_form import DEFAULT_CONN_ID
from airflow_provider_mistral_batch.exceptions import (
    MistralAPIError,
    MistralBatchInputError,
    MistralBatchJobError,
    given_job_error,
)

# The domain and the hook are imported where they are used: every DAG file that uses this
# operator pays its imports at every parse, and only a run needs them.
if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
    from airflow_provider_mistral_batch.models import BatchJob


class MistralBatchCancelJobOperator(BaseOperator):
    """Cancel a Mistral batch job; a job that already ended is not an error.

    Returns the job's summary (``job_id``, ``status``, file ids, counts). See
    ``docs/operators.md``.

    :param job_id: id of the job to cancel (templated).
    :param mistral_conn_id: Airflow connection id; default ``mistral_default``.
    :param wait_for_cancellation: wait until the job has ended; default False.
    :param poll_interval: seconds between polls while waiting, always (a cancellation takes
        about as long however old the job is); default 10.
    :param wait_timeout: seconds (or a ``timedelta``) to wait for the job to end before
        failing; default 3600.
    """

    template_fields: Sequence[str] = ("job_id",)
    ui_color = "#ffd8b0"

    def __init__(
        self,
        *,
        job_id: str,
        mistral_conn_id: str = DEFAULT_CONN_ID,
        wait_for_cancellation: bool = False,
        poll_interval: float = 10.0,
        wait_timeout: timedelta | float = 3600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_wait_options(self.task_id, poll_interval=poll_interval)
        wait_seconds = (
            wait_timeout.total_seconds() if isinstance(wait_timeout, timedelta) else wait_timeout
        )
        if not (is_finite_number(wait_seconds) and wait_seconds >= 0):
            raise MistralBatchInputError(
                f"{self.task_id}: wait_timeout must be 0 or more seconds, got {wait_timeout!r}"
            )
        self.job_id = job_id
        self.mistral_conn_id = mistral_conn_id
        self.wait_for_cancellation = wait_for_cancellation
        self.poll_interval = float(poll_interval)
        self.wait_timeout = float(wait_seconds)

    @cached_property
    def hook(self) -> MistralBatchHook:
        """The hook for ``mistral_conn_id``."""
        from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

        return MistralBatchHook(self.mistral_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        """Cancel the job unless it already ended; optionally wait for it to end."""
        from airflow_provider_mistral_batch.batch.blocking_wait import ended_job, wait_blocking
        from airflow_provider_mistral_batch.batch.manifest import job_summary
        from airflow_provider_mistral_batch.batch.waiting import (
            JobWatch,
            TimedOut,
            ended_on_its_own,
        )

        try:
            job = self.hook.get_batch_job(self.job_id)
        except MistralAPIError as exc:
            raise given_job_error(self.job_id, exc) from exc
        if job.status.is_terminal:
            return self._already_ended(job)
        try:
            job = self.hook.cancel_batch_job(self.job_id)
        except MistralAPIError:
            # The job may have ended between the read and the cancel, and the API may refuse
            # to cancel an ended job: that is not an error.
            job = self.hook.get_batch_job(self.job_id)
            if not job.status.is_terminal:
                raise
            return self._already_ended(job)
        if ended_on_its_own(job, cancel_requested=True):
            return self._already_ended(job)
        self.log.info("Requested the cancellation of Mistral batch job %s", job.id)
        if self.wait_for_cancellation:
            watch = JobWatch(
                job.id,
                log=self.log,
                poll_interval=self.poll_interval,
                deadline=time.time() + self.wait_timeout,
                cancel_on_deadline=False,
            )
            outcome = wait_blocking(self.hook, watch, job)
            if isinstance(outcome, TimedOut):
                raise MistralBatchJobError(
                    f"Mistral batch job {self.job_id} did not end within {self.wait_timeout:.0f} s "
                    f"of its cancellation: {outcome.message}"
                )
            job = ended_job(outcome)
            self.log.info("Mistral batch job %s ended with status %s", job.id, job.status)
        return job_summary(job)

    def _already_ended(self, job: BatchJob) -> dict[str, Any]:
        from airflow_provider_mistral_batch.batch.manifest import job_summary

        self.log.info(
            "Mistral batch job %s already ended with status %s; nothing to cancel",
            job.id,
            job.status,
        )
        return job_summary(job)
