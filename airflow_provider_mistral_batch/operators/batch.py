"""Operators that create, wait for and cancel Mistral batch jobs."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_mistral_batch.exceptions import (
    MistralAPIError,
    MistralBatchInputError,
    MistralBatchJobError,
)
from airflow_provider_mistral_batch.links import MistralBatchJobLink
from airflow_provider_mistral_batch.models import (
    DEFAULT_TIMEOUT_HOURS,
    TIMEOUT_HOURS_MAX,
    TIMEOUT_HOURS_MIN,
    ApiEndpoint,
    BatchJob,
    CreateBatchJobRequest,
)
from airflow_provider_mistral_batch.utils.compat import AirflowTaskTimeout, conf
from airflow_provider_mistral_batch.utils.connection import DEFAULT_CONN_ID
from airflow_provider_mistral_batch.utils.watch import (
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    DEFAULT_POLL_INTERVAL,
    Cancel,
    Ended,
    GaveUp,
    JobWatch,
    Outcome,
    Sleep,
    TimedOut,
    check_wait_options,
    ended_on_its_own,
)

# utils.input, utils.outcome and utils.reattach are imported where they are used: every DAG
# file that uses these operators pays their import at every parse, and only a run needs them.
if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
    from airflow_provider_mistral_batch.utils.input import FileInput, PreparedInput

# Extra time, past the job's own timeout_hours, to wait for Mistral to report the timeout.
_WAIT_MARGIN = timedelta(hours=1)


def _seconds(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class MistralBatchOperator(BaseOperator):
    """Run a Mistral batch job: validate and upload the input, create the job, wait for it.

    Give exactly one input: ``input_files`` (ids of uploaded JSONL files), ``requests`` (an
    iterable of ``{"custom_id", "body"}`` dicts, e.g. from XCom) or ``input_path`` (a local
    path or an ``ObjectStoragePath`` to a JSONL file). The input is validated before anything
    is uploaded or created; an error names the line (``requests.jsonl line 12: custom_id "a7"
    repeats line 3``).

    Retries reattach: the job's metadata carries a key built from dag_id, task_id, run_id,
    map_index and a fingerprint of the input and job settings, and a new try of the same task
    with the same input and settings reattaches to the running or succeeded job of an earlier
    try instead of paying for a second one (``force_new_job=True`` turns this off).

    XCom: ``batch_job_id`` as soon as the job exists; at the end ``output_file`` and
    ``error_file``, and the return value ``{"job_id", "status", "output_file", "error_file",
    "total_requests", "succeeded_requests", "failed_requests"}``.

    Only a SUCCESS job lets the task succeed: FAILED, TIMEOUT_EXCEEDED or CANCELLED fail it. A
    status this provider does not know counts neither as ended nor as success: the task keeps
    waiting (up to ``wait_timeout``). Failed requests inside a SUCCESS job only log a warning
    unless ``max_failed_ratio`` is set.

    ``requests`` is a template field: a literal ``{{`` in a prompt given inline in the DAG file
    is read as Jinja. Requests that come from XCom (e.g. a ``@task``'s return value) are not
    rendered, so build prompts with braces in a task.

    :param endpoint: API endpoint of the requests, e.g. ``/v1/chat/completions`` (templated).
    :param input_files: ids of uploaded JSONL files (templated).
    :param requests: inline requests (templated); more than 10,000 are uploaded as a file.
    :param input_path: local path or ``ObjectStoragePath`` of a JSONL file (templated).
    :param model: model for every request (templated); None lets each body name one.
    :param metadata: extra string metadata of the job (templated); keys 1-32 characters,
        values 1-512; keys starting with ``airflow_`` are reserved.
    :param timeout_hours: hours before Mistral times the job out, 1 to 168; default 24.
    :param agent_id: agent to run the requests (templated; deprecated by Mistral).
    :param mistral_conn_id: Airflow connection id; default ``mistral_default``.
    :param wait_for_completion: wait for the job to end; default True. With False the task
        returns right after creating the job.
    :param deferrable: wait in the triggerer instead of a worker slot; default from
        ``[operators] default_deferrable`` (False unless configured).
    :param poll_interval: seconds between status polls; default 30.
    :param max_failed_ratio: highest share (0.0-1.0) of failed requests a SUCCESS job may
        have before the task fails; default None: warn, do not fail.
    :param wait_timeout: how long to wait for the job before cancelling it (when
        ``cancel_on_deadline``) and failing; default ``timeout_hours`` plus one hour.
    :param cancel_on_deadline: cancel the job when ``wait_timeout`` passes; default True.
    :param cancel_on_kill: cancel the job when the task is killed; default True. In blocking
        mode that is any SIGTERM of the task process (marked failed or success, cleared, or a
        worker shutting down); deferred on Airflow 3.3+, the trigger cancels when the task is
        marked failed or success or cleared. An execution timeout leaves the job running so
        that the retry reattaches to it.
    :param force_new_job: never reattach to an earlier try's job; default False.
    :param assign_custom_ids: give requests without a ``custom_id`` their 0-based position as
        id instead of failing; default False.
    :param max_consecutive_errors: failed polls in a row (after the hook's retries) before
        giving up; default 5.
    :param reattach_namespace: extra part of the reattach key; set a different one in each
        Airflow deployment that shares a Mistral workspace and runs the same DAG ids, so that
        one never reattaches to the other's job. Default None.
    """

    template_fields: Sequence[str] = (
        "endpoint",
        "input_files",
        "requests",
        "input_path",
        "model",
        "metadata",
        "agent_id",
    )
    template_fields_renderers = {"requests": "json", "metadata": "json", "input_files": "json"}
    operator_extra_links = (MistralBatchJobLink(),)
    ui_color = "#ffd8b0"

    def __init__(
        self,
        *,
        endpoint: str,
        input_files: Sequence[str] | str | None = None,
        requests: Iterable[Mapping[str, Any]] | str | None = None,
        input_path: Any = None,
        model: str | None = None,
        metadata: Mapping[str, str] | None = None,
        timeout_hours: int = DEFAULT_TIMEOUT_HOURS,
        agent_id: str | None = None,
        mistral_conn_id: str = DEFAULT_CONN_ID,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_failed_ratio: float | None = None,
        wait_timeout: timedelta | float | None = None,
        cancel_on_deadline: bool = True,
        cancel_on_kill: bool = True,
        force_new_job: bool = False,
        assign_custom_ids: bool = False,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
        reattach_namespace: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        given = [
            name
            for name, value in (
                ("input_files", input_files),
                ("requests", requests),
                ("input_path", input_path),
            )
            if value is not None
        ]
        if len(given) != 1:
            raise MistralBatchInputError(
                f"{self.task_id}: give exactly one of input_files, requests and input_path "
                f"(got {', '.join(given) or 'none'})"
            )
        # bool is an int subclass: True must not pass as one hour.
        is_whole = isinstance(timeout_hours, int) and not isinstance(timeout_hours, bool)
        if not is_whole or not TIMEOUT_HOURS_MIN <= timeout_hours <= TIMEOUT_HOURS_MAX:
            raise MistralBatchInputError(
                f"{self.task_id}: timeout_hours must be a whole number of hours between "
                f"{TIMEOUT_HOURS_MIN} and {TIMEOUT_HOURS_MAX}, got {timeout_hours!r}"
            )
        check_wait_options(
            self.task_id,
            max_failed_ratio=max_failed_ratio,
            poll_interval=poll_interval,
            wait_timeout=_seconds(wait_timeout),
            max_consecutive_errors=max_consecutive_errors,
        )
        self._input_field = given[0]
        self.endpoint = endpoint
        self.input_files = input_files
        self.requests = requests
        self.input_path = input_path
        self.model = model
        self.metadata = metadata
        self.timeout_hours = timeout_hours
        self.agent_id = agent_id
        self.mistral_conn_id = mistral_conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = float(poll_interval)
        self.max_failed_ratio = max_failed_ratio
        self.wait_timeout = _seconds(wait_timeout)
        self.cancel_on_deadline = cancel_on_deadline
        self.cancel_on_kill = cancel_on_kill
        self.force_new_job = force_new_job
        self.assign_custom_ids = assign_custom_ids
        self.max_consecutive_errors = max_consecutive_errors
        self.reattach_namespace = reattach_namespace
        self.job_id: str | None = None
        self._task_key: str | None = None
        self._execution_timed_out = False

    @cached_property
    def hook(self) -> MistralBatchHook:
        """The hook for ``mistral_conn_id`` (imported lazily to keep DAG parsing cheap)."""
        from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

        return MistralBatchHook(self.mistral_conn_id)

    # ------------------------------------------------------------------ validation

    def _checked_options(self) -> tuple[str, dict[str, str]]:
        """The rendered endpoint and user metadata, refused before anything is sent."""
        endpoint = str(self.endpoint)
        if not ApiEndpoint(endpoint).is_known:
            known = ", ".join(e.value for e in ApiEndpoint)
            raise MistralBatchInputError(
                f"endpoint {endpoint!r} is not one the Mistral Batch API knows ({known})"
            )
        metadata = dict(self.metadata or {})
        reserved = sorted(key for key in metadata if str(key).startswith("airflow_"))
        if reserved:
            raise MistralBatchInputError(
                f"metadata keys starting with 'airflow_' are reserved for this provider: {reserved}"
            )
        try:
            CreateBatchJobRequest.model_validate(
                {"endpoint": endpoint, "input_files": ["check"], "metadata": metadata or None}
            )
        except ValueError as exc:
            raise MistralBatchInputError(f"invalid metadata: {exc}") from None
        return endpoint, metadata

    def _prepare_input(self, endpoint: str) -> PreparedInput:
        from airflow_provider_mistral_batch.utils.input import (
            prepare_file,
            prepare_file_ids,
            prepare_requests,
        )

        field = self._input_field
        value: Any = getattr(self, field)
        if value is None:
            # A template that rendered to None: e.g. an XCom that was never pushed.
            raise MistralBatchInputError(
                f"{field} rendered to None; is the upstream XCom it pulls there?"
            )
        if field == "input_files":
            return prepare_file_ids(value, endpoint=endpoint, model=self.model)
        if field == "requests":
            return prepare_requests(
                value,
                endpoint=endpoint,
                model=self.model,
                assign_custom_ids=self.assign_custom_ids,
            )
        return prepare_file(
            value,
            endpoint=endpoint,
            model=self.model,
            assign_custom_ids=self.assign_custom_ids,
        )

    # ------------------------------------------------------------------ execution

    def execute(self, context: Context) -> Any:
        """Validate, create (or reattach to) the job, then wait for it as configured."""
        try:
            return self._execute(context)
        except AirflowTaskTimeout:
            # on_kill follows; the job must survive it for the retry to reattach.
            self._execution_timed_out = True
            raise
        finally:
            self.hook.close()

    def _execute(self, context: Context) -> Any:
        from airflow_provider_mistral_batch.utils.input import FileInput
        from airflow_provider_mistral_batch.utils.outcome import (
            XCOM_JOB_ID,
            fail_at_deadline,
            finish_with_job,
            job_summary,
        )

        try:
            endpoint, metadata = self._checked_options()
            prepared = self._prepare_input(endpoint)
        except MistralBatchInputError as exc:
            # Name the task; the error itself fails it without retries.
            raise MistralBatchInputError(f"{self.task_id}: {exc}") from exc
        try:
            job = self._reattach_or_create(context, endpoint, metadata, prepared)
        finally:
            if isinstance(prepared, FileInput) and prepared.temporary:
                prepared.path.unlink(missing_ok=True)
        self.job_id = job.id
        context["ti"].xcom_push(key=XCOM_JOB_ID, value=job.id)
        url = MistralBatchJobLink.persist(context, job.id, self.hook.settings.console_url)
        self.log.info("Mistral batch job %s: %s", job.id, url)

        if not self.wait_for_completion:
            return job_summary(job)
        if job.status.is_terminal:
            return finish_with_job(context, job, self.max_failed_ratio, self.log)
        deadline = time.time() + self._wait_seconds()
        if self.deferrable:
            self._defer(job, deadline)
        watch = JobWatch(
            job.id,
            log=self.log,
            poll_interval=self.poll_interval,
            deadline=deadline,
            cancel_on_deadline=self.cancel_on_deadline,
            max_consecutive_errors=self.max_consecutive_errors,
        )
        outcome = wait_blocking(self.hook, watch, job)
        if isinstance(outcome, TimedOut):
            fail_at_deadline(context, outcome.job, outcome.message)
        return finish_with_job(context, _ended_job(outcome), self.max_failed_ratio, self.log)

    def _reattach_or_create(
        self,
        context: Context,
        endpoint: str,
        metadata: dict[str, str],
        prepared: PreparedInput,
    ) -> BatchJob:
        from airflow_provider_mistral_batch.utils.reattach import (
            find_job_to_reattach,
            task_identity,
            task_key,
            task_metadata,
        )

        identity = task_identity(context)
        self._task_key = task_key(identity, self._job_fingerprint(prepared.fingerprint, metadata))
        if not self.force_new_job:
            job = find_job_to_reattach(self.hook, self._task_key)
            if job is not None:
                self.log.info(
                    "Reattaching to Mistral batch job %s (status %s) created by an earlier try",
                    job.id,
                    job.status,
                )
                return job
        return self._create(
            endpoint, prepared, {**metadata, **task_metadata(identity, self._task_key)}
        )

    def _job_fingerprint(self, input_fingerprint: str, metadata: Mapping[str, str]) -> str:
        """The input's fingerprint plus every other setting that shapes the job."""
        settings = [
            input_fingerprint,
            self.agent_id,
            self.timeout_hours,
            sorted(metadata.items()),
            self.reattach_namespace,
        ]
        return hashlib.sha256(json.dumps(settings).encode()).hexdigest()

    def _wait_seconds(self) -> float:
        if self.wait_timeout is not None:
            return self.wait_timeout
        return self.timeout_hours * 3600.0 + _WAIT_MARGIN.total_seconds()

    def _create(self, endpoint: str, prepared: PreparedInput, metadata: dict[str, str]) -> BatchJob:
        from airflow_provider_mistral_batch.utils.input import InlineInput, UploadedInput

        common: dict[str, Any] = {
            "endpoint": endpoint,
            "model": self.model,
            "metadata": metadata,
            "timeout_hours": self.timeout_hours,
            "agent_id": self.agent_id,
        }
        if isinstance(prepared, InlineInput):
            self.log.info("Creating a batch job with %s inline requests", prepared.request_count)
            return self.hook.create_batch_job(requests=prepared.requests, **common)
        if isinstance(prepared, UploadedInput):
            return self.hook.create_batch_job(input_files=prepared.file_ids, **common)
        file_id = self._upload(prepared)
        try:
            return self.hook.create_batch_job(input_files=[file_id], **common)
        except MistralAPIError as exc:
            # Refused for good, and no earlier attempt may have made a job from it: the upload
            # is of no more use. After an ambiguous attempt (the error carries a note), a job
            # may use the file, so it stays.
            if exc.status_code < 500 and exc.status_code != 429 and exc.note is None:
                self._delete_quietly(file_id)
            raise

    def _upload(self, prepared: FileInput) -> str:
        self.log.info(
            "Uploading %s (%s requests, %s bytes)",
            prepared.filename,
            f"{prepared.request_count:,}",
            f"{prepared.size:,}",
        )
        return self.hook.upload_file(prepared.path, filename=prepared.filename).id

    def _delete_quietly(self, file_id: str) -> None:
        try:
            self.hook.delete_file(file_id)
        except Exception as exc:
            self.log.warning("Could not delete uploaded file %s: %s", file_id, exc)
        else:
            self.log.info("Deleted uploaded file %s: no job was created from it", file_id)

    def _defer(self, job: BatchJob, deadline: float) -> None:
        from airflow_provider_mistral_batch.triggers.batch import MistralBatchJobTrigger

        self.defer(
            trigger=MistralBatchJobTrigger(
                job_id=job.id,
                mistral_conn_id=self.mistral_conn_id,
                poll_interval=self.poll_interval,
                deadline=deadline,
                cancel_on_deadline=self.cancel_on_deadline,
                max_consecutive_errors=self.max_consecutive_errors,
                cancel_on_kill=self.cancel_on_kill,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        """Resume after the trigger: check the event, apply the failure policy, push XCom."""
        from airflow_provider_mistral_batch.utils.outcome import finish_with_event

        return finish_with_event(context, event, self.max_failed_ratio, self.log)

    def on_kill(self) -> None:
        """Cancel the job when the task is killed (not on an execution timeout)."""
        from airflow_provider_mistral_batch.utils.reattach import find_job_to_reattach

        if self._execution_timed_out:
            self.log.info(
                "Execution timeout: leaving Mistral batch job %s running so that the retry "
                "reattaches to it",
                self.job_id,
            )
            return
        if not self.cancel_on_kill or (self.job_id is None and self._task_key is None):
            if self.job_id is not None:
                self.log.info(
                    "Leaving Mistral batch job %s running (cancel_on_kill=False)", self.job_id
                )
            return
        try:
            job_id = self.job_id
            if job_id is None and self._task_key is not None:
                # Killed while the create was in flight: find the job it may have made.
                found = find_job_to_reattach(self.hook, self._task_key)
                job_id = found.id if found is not None else None
            if job_id is not None:
                self.hook.cancel_batch_job(job_id)
        except Exception as exc:
            self.log.warning("Could not cancel Mistral batch job %s: %s", self.job_id, exc)


class MistralBatchCancelJobOperator(BaseOperator):
    """Cancel a Mistral batch job; a job that already ended is not an error.

    Returns the job's summary (``job_id``, ``status``, file ids, counts).

    :param job_id: id of the job to cancel (templated).
    :param mistral_conn_id: Airflow connection id; default ``mistral_default``.
    :param wait_for_cancellation: wait until the job has ended; default False.
    :param poll_interval: seconds between polls while waiting; default 10.
    :param wait_timeout: seconds to wait for the job to end before failing; default 3600.
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
        wait_seconds = _seconds(wait_timeout)
        if wait_seconds is None or not wait_seconds >= 0:  # NaN too
            raise MistralBatchInputError(
                f"{self.task_id}: wait_timeout must be 0 or more seconds, got {wait_timeout!r}"
            )
        self.job_id = job_id
        self.mistral_conn_id = mistral_conn_id
        self.wait_for_cancellation = wait_for_cancellation
        self.poll_interval = float(poll_interval)
        self.wait_timeout = wait_seconds

    @cached_property
    def hook(self) -> MistralBatchHook:
        """The hook for ``mistral_conn_id``."""
        from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

        return MistralBatchHook(self.mistral_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        """Cancel the job unless it already ended; optionally wait for it to end."""
        from airflow_provider_mistral_batch.utils.outcome import job_summary

        job = self.hook.get_batch_job(self.job_id)
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
            job = _ended_job(outcome)
            self.log.info("Mistral batch job %s ended with status %s", job.id, job.status)
        return job_summary(job)

    def _already_ended(self, job: BatchJob) -> dict[str, Any]:
        from airflow_provider_mistral_batch.utils.outcome import job_summary

        self.log.info(
            "Mistral batch job %s already ended with status %s; nothing to cancel",
            job.id,
            job.status,
        )
        return job_summary(job)


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
        answer: BatchJob | BaseException
        try:
            if isinstance(step, Cancel):
                answer = hook.cancel_batch_job(watch.job_id)
            else:
                answer = hook.get_batch_job(watch.job_id)
        except Exception as exc:  # the watch tells a passing blip from a lasting failure
            answer = exc
        step = watch.record(answer)
    return step


def _ended_job(outcome: Ended | GaveUp) -> BatchJob:
    """The ended job, or the error that ended polling raised as it came."""
    if isinstance(outcome, GaveUp):
        raise outcome.error
    return outcome.job
