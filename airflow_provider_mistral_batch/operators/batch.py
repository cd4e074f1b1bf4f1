"""The submit operator: run a Mistral batch job from its input to its verdict.

The cancel and results operators live in :mod:`.cancel` and :mod:`.results`; importing them
from here still works (see :func:`__getattr__`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final

from airflow.sdk import BaseOperator

from airflow_provider_mistral_batch.batch.submit_options import (
    DEFAULT_TIMEOUT,
    INPUT_FIELDS,
    NOT_RENDERED,
    SubmitOptions,
    check_metadata_keys,
    check_retry_options,
    check_submit_options,
    refuse_replaced_arguments,
)
from airflow_provider_mistral_batch.batch.wait_options import (
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    DEFAULT_MAX_FAILED_RATIO,
    DEFAULT_MAX_POLL_INTERVAL,
    DEFAULT_POLL_INTERVAL,
)
from airflow_provider_mistral_batch.connection_form import DEFAULT_CONN_ID
from airflow_provider_mistral_batch.exceptions import (
    MistralBatchInputError,
)
from airflow_provider_mistral_batch.links import MistralBatchJobLink
from airflow_provider_mistral_batch.models import BatchJob
from airflow_provider_mistral_batch.utils.compat import AirflowTaskTimeout, conf
from airflow_provider_mistral_batch.utils.templating import (
    is_literal,
    raise_template_error,
    renders_to_itself,
)

# The rest of the domain (input, identity, waiting, outcome) and the hook are imported where
# they are used: every DAG file that uses this operator pays its imports at every parse, and
# only a run needs them.
if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context

    from airflow_provider_mistral_batch.batch.input import (
        FileInput,
        InlineInput,
        PreparedInput,
        UploadedInput,
    )
    from airflow_provider_mistral_batch.batch.resubmit import Rounds
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

#: Operators that moved to their own modules, importable from here as before.
_MOVED: Final = {
    "MistralBatchCancelJobOperator": "airflow_provider_mistral_batch.operators.cancel",
    "MistralBatchResultsOperator": "airflow_provider_mistral_batch.operators.results",
}


def __getattr__(name: str) -> Any:
    """``MistralBatchCancelJobOperator`` and ``MistralBatchResultsOperator`` at their old path,
    loaded only when a DAG file asks for them (no cost for the others, no warning)."""
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


class MistralBatchOperator(BaseOperator):
    """Run a Mistral batch job: check and upload the input, create the job (or reattach to the
    one an earlier try made), wait for it, judge it, and optionally write its results joined
    with the input. An input larger than one job takes is split into shards, one job each.

    Give exactly one input: ``input_files``, ``requests`` or ``input_path``. The options are
    checked when the DAG is parsed (literal values) and once rendered, before anything is
    uploaded. Behaviour, XCom, sharding, reattaching and timeouts: ``docs/operators.md``.

    :param endpoint: API endpoint of the requests, e.g. ``/v1/chat/completions`` (templated).
        One this release does not know is sent with a warning if it has the form
        ``/v1/<path>``; any other value is refused.
    :param input_files: ids of uploaded JSONL files (templated).
    :param requests: inline requests, ``{"custom_id", "body"}`` each (templated); more than
        10,000 are uploaded as a file.
    :param input_path: local path or ``ObjectStoragePath`` of a JSONL file (templated).
    :param model: model for every request (templated); default None: each body names one.
    :param output_type: what each answer must be: ``str`` (default) for text, or a pydantic
        model (or any type a pydantic ``TypeAdapter`` takes) for JSON of that type, asked for
        with ``response_format`` in every chat request and validated per row in the results
        (so a structured type needs ``results_path``). Chat completions only; not templated.
        See ``docs/typed_outputs.md``.
    :param metadata: extra string metadata of the job (templated); keys 1-32 characters,
        values 1-512; keys starting with ``airflow_`` are reserved. Default None.
    :param timeout: how long the job may run, a ``timedelta`` or seconds in whole hours from
        1 to 168; default 24 hours. Sent as Mistral's ``timeout_hours`` (the job then ends
        TIMEOUT_EXCEEDED with partial results); the wait gives up one hour later, cancelling
        the job and failing the task.
    :param job_kwargs: more fields of the create request, e.g. ``{"agent_id": "..."}``
        (templated); checked against the create request's schema before anything is
        uploaded. Default None.
    :param mistral_conn_id: Airflow connection id; default ``mistral_default``.
    :param wait_for_completion: wait for the job to end; default True. With False the task
        returns right after creating the job.
    :param deferrable: wait in the triggerer instead of a worker slot; default from
        ``[operators] default_deferrable`` (False unless configured).
    :param poll_interval: seconds between status polls; default 30. A job that has run long
        is polled every tenth of its age instead, up to ``max_poll_interval`` (300 s).
    :param max_failed_ratio: highest share (0.0-1.0) of failed requests a SUCCESS job may
        have; default 0.0: any failed request fails the task. None (or 1.0) lets any number
        fail, with a warning.
    :param cancel_on_kill: cancel the job when the task is killed (not on an execution
        timeout, after which the retry reattaches); default True.
    :param force_new_job: never reattach to an earlier try's job; default False.
    :param assign_custom_ids: give requests without a ``custom_id`` their 0-based position as
        id instead of failing; default False.
    :param results_path: where to write the joined results: a local path, an
        ``ObjectStoragePath`` or a URL string (templated); needs ``wait_for_completion``; in a
        mapped task it must differ per instance. Default None: no results are written.
    :param retry_failed_requests: rounds of resubmitting, 0 to 10; default 0. After the
        jobs end, the requests that failed for a reason a retry can fix (status 408, 429,
        5xx, a timeout) are sent again in a new job, up to this many times; the results
        merge the rounds. Needs ``wait_for_completion``.
    :param retry_invalid_output: also send again the answers that do not parse or validate
        against the output type; default False. Needs ``retry_failed_requests`` and a
        structured ``output_type`` (a text answer is never invalid).
    """

    template_fields: Sequence[str] = (
        "endpoint",
        "input_files",
        "requests",
        "input_path",
        "model",
        "metadata",
        "job_kwargs",
        "results_path",
    )
    template_fields_renderers = {
        "requests": "json",
        "metadata": "json",
        "input_files": "json",
        "job_kwargs": "json",
    }
    operator_extra_links = (MistralBatchJobLink(),)
    ui_color = "#ffd8b0"
    #: Seconds after the wait starts during which each poll also looks for a duplicate job of
    #: the task (one more list call per poll), long enough for a late create to land.
    duplicate_check_seconds: float = 300.0
    #: The longest wait between two polls of a job that has run long (see ``poll_interval``).
    max_poll_interval: float = DEFAULT_MAX_POLL_INTERVAL
    #: Failed polls in a row (after the hook's own retries) before the task gives up.
    max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS
    #: Whether the input may first be known at run time (a subclass that makes its requests
    #: then); otherwise a task given none of the three inputs fails when the DAG is parsed.
    input_at_run_time: bool = False
    #: Most requests in one job, 1 to 1,000,000; a larger input is split into several jobs.
    #: None: the API's limit (1,000,000; also at most 512 MB per file).
    max_requests_per_job: int | None = None

    def __init__(
        self,
        *,
        endpoint: str,
        input_files: Sequence[str] | str | None = None,
        requests: Iterable[Mapping[str, Any]] | str | None = None,
        input_path: Any = None,
        model: str | None = None,
        output_type: Any = str,
        metadata: Mapping[str, str] | None = None,
        timeout: timedelta | float = DEFAULT_TIMEOUT,
        job_kwargs: Mapping[str, Any] | None = None,
        mistral_conn_id: str = DEFAULT_CONN_ID,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_failed_ratio: float | None = DEFAULT_MAX_FAILED_RATIO,
        cancel_on_kill: bool = True,
        force_new_job: bool = False,
        assign_custom_ids: bool = False,
        results_path: Any = None,
        retry_failed_requests: int = 0,
        retry_invalid_output: bool = False,
        **kwargs: Any,
    ) -> None:
        # Before Airflow's own check, which would only say "Invalid arguments".
        refuse_replaced_arguments(kwargs.get("task_id"), kwargs)
        super().__init__(**kwargs)
        self.endpoint = endpoint
        self.input_files = input_files
        self.requests = requests
        self.input_path = input_path
        self.model = model
        self.output_type = output_type
        self.metadata = metadata
        self.timeout = timeout
        self.job_kwargs = job_kwargs
        self.mistral_conn_id = mistral_conn_id
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_failed_ratio = max_failed_ratio
        self.cancel_on_kill = cancel_on_kill
        self.force_new_job = force_new_job
        self.assign_custom_ids = assign_custom_ids
        self.results_path = results_path
        self.retry_failed_requests = retry_failed_requests
        self.retry_invalid_output = retry_invalid_output
        # The literal values: a DAG no run could satisfy fails when it is parsed.
        self._given_input = self._options(rendered=False).input_field
        self.job_id: str | None = None
        self.job_ids: list[str] = []
        self._task_key: str | None = None
        self._task_keys: list[str] = []
        self._execution_timed_out = False
        self._rounds: Rounds | None = None

    @cached_property
    def hook(self) -> MistralBatchHook:
        """The hook for ``mistral_conn_id`` (imported lazily to keep DAG parsing cheap)."""
        from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

        return MistralBatchHook(self.mistral_conn_id)

    # ------------------------------------------------------------------ options and input

    def _options(self, *, rendered: bool, input_known: bool = True) -> SubmitOptions:
        """Check the options; before rendering, only the values no template will change.

        :param input_known: False when only the job settings matter (a resumed task's next
            resubmit round), and a subclass that takes its input at run time has none.
        """

        def known(value: Any) -> Any:
            return value if rendered or is_literal(self, value) else NOT_RENDERED

        if rendered and self._given_input is not None and getattr(self, self._given_input) is None:
            # A template that rendered to None: e.g. an XCom that was never pushed.
            raise MistralBatchInputError(
                f"{self._given_input} rendered to None; is the upstream XCom it pulls there?"
            )
        try:
            if not rendered and isinstance(self.metadata, Mapping):
                # Airflow renders the values of a dict, never its keys: checked at parse.
                check_metadata_keys(self.metadata)
            options = check_submit_options(
                inputs={name: getattr(self, name) for name in INPUT_FIELDS},
                endpoint=known(self.endpoint),
                model=known(self.model),
                metadata=known(self.metadata),
                timeout=self.timeout,
                job_kwargs=known(self.job_kwargs),
                results_path=self.results_path,
                wait_for_completion=self.wait_for_completion,
                max_failed_ratio=self.max_failed_ratio,
                poll_interval=self.poll_interval,
                max_consecutive_errors=self.max_consecutive_errors,
                max_requests_per_job=self.max_requests_per_job,
                # A subclass may take its input only at run time (a TaskFlow function's requests).
                input_required=(rendered and input_known) or not self.input_at_run_time,
                output_type=self.output_type,
            )
            check_retry_options(
                self.retry_failed_requests,
                self.retry_invalid_output,
                self.wait_for_completion,
                output=options.output,
                endpoint=options.endpoint,
            )
            return options
        except MistralBatchInputError as exc:
            if rendered:
                raise
            raise MistralBatchInputError(f"{self.task_id}: {exc}") from None

    # ------------------------------------------------------------------ execution

    def render_template(
        self,
        content: Any,
        context: Context,
        jinja_env: jinja2.Environment | None = None,
        seen_oids: set[int] | None = None,
    ) -> Any:
        """Render like any operator, but return plain data that Jinja would give back unchanged
        as it is, without compiling a string: 10,000 literal requests took seconds otherwise."""
        if isinstance(content, str | list | dict | tuple):
            env = jinja_env if jinja_env is not None else self.get_template_env()
            if renders_to_itself(content, env, self.template_ext):
                return content
        try:
            return super().render_template(content, context, jinja_env, seen_oids)
        except Exception as exc:
            raise_template_error(self, content, exc)
            raise

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
        from airflow_provider_mistral_batch.batch.endpoint import warn_if_unknown
        from airflow_provider_mistral_batch.batch.input import (
            ShardedInput,
            UploadedInput,
            temporary_files,
        )
        from airflow_provider_mistral_batch.batch.manifest import (
            XCOM_CONN_ID,
            XCOM_INPUT_ERROR,
            XCOM_JOB_ID,
            XCOM_JOB_IDS,
            jobs_summary,
        )
        from airflow_provider_mistral_batch.batch.submission import (
            check_input_files,
            log_output_directive,
            prepare_input,
        )

        try:
            options = self._options(rendered=True)
            if options.endpoint is not None:
                warn_if_unknown(options.endpoint, self.log)
            if self.results_path is not None:
                # Before the input is read: a bad path is reported at once, nothing to clean.
                from airflow_provider_mistral_batch.utils.paths import (
                    check_not_shared,
                    prepare_destination,
                )

                check_not_shared(self, context)
                prepare_destination(self.results_path)
            prepared = prepare_input(
                options,
                getattr(self, options.input_field or ""),
                assign_custom_ids=self.assign_custom_ids,
                max_requests_per_job=self.max_requests_per_job,
                # Uploaded, the input can be read back for the results after a deferral, and
                # for the requests to send again.
                inline=self.results_path is None and not self.retry_failed_requests,
            )
            if isinstance(prepared, UploadedInput):
                check_input_files(self.hook, prepared.file_ids)
            log_output_directive(self.log, options, prepared)
        except MistralBatchInputError as exc:
            # For the UI's tab (no job to show); the message names input, never a secret.
            context["ti"].xcom_push(key=XCOM_INPUT_ERROR, value=str(exc)[:2000])
            # Name the task; the error itself fails it without retries.
            raise MistralBatchInputError(f"{self.task_id}: {exc}") from exc
        parts = prepared.shards if isinstance(prepared, ShardedInput) else [prepared]
        try:
            jobs = self._reattach_or_create(context, options, prepared, parts)
        finally:
            for path in temporary_files(prepared):
                path.unlink(missing_ok=True)
        self.job_ids = [job.id for job in jobs]
        self.job_id = self.job_ids[0]
        ti = context["ti"]
        if len(jobs) == 1:
            ti.xcom_push(key=XCOM_JOB_ID, value=jobs[0].id)
        ti.xcom_push(key=XCOM_JOB_IDS, value=self.job_ids)
        ti.xcom_push(key=XCOM_CONN_ID, value=self.mistral_conn_id)
        url = MistralBatchJobLink.persist(context, jobs[0].id, self.hook.settings.console_url)
        if len(jobs) == 1:
            self.log.info("Mistral batch job %s: %s", jobs[0].id, url)
        else:
            self.log.info(
                "%s Mistral batch jobs, one per shard: %s (the first: %s)",
                len(jobs),
                ", ".join(self.job_ids),
                url,
            )

        if not self.wait_for_completion:
            return jobs_summary(jobs)
        if all(job.status.is_terminal for job in jobs):
            return self._finish(context, jobs)
        deadline = time.time() + options.wait_seconds
        if self.deferrable:
            self._defer(jobs, deadline)
        return self._finish(context, self._wait(context, jobs, deadline))

    def _wait(self, context: Context, jobs: Sequence[BatchJob], deadline: float) -> list[BatchJob]:
        """Wait in this worker for the jobs to end; fail the task at ``deadline``."""
        from airflow_provider_mistral_batch.batch.blocking_wait import wait_for_jobs
        from airflow_provider_mistral_batch.batch.finish import fail_at_deadline

        ended, timed_out = wait_for_jobs(
            self.hook,
            jobs,
            self._task_keys,
            log=self.log,
            poll_interval=self.poll_interval,
            max_poll_interval=self.max_poll_interval,
            deadline=deadline,
            max_consecutive_errors=self.max_consecutive_errors,
            check_duplicates_until=time.time() + self.duplicate_check_seconds,
        )
        # A wait that followed the kept one of duplicate jobs ended with another job.
        self.job_ids = [job.id for job in ended]
        self.job_id = self.job_ids[0]
        if timed_out:
            message = "; ".join(outcome.message for outcome in timed_out)
            fail_at_deadline(context, ended, message, lists=True)
        return list(ended)

    def _finish(self, context: Context, jobs: Sequence[BatchJob]) -> dict[str, Any]:
        from airflow_provider_mistral_batch.batch.finish import finish_with_jobs

        if self.retry_failed_requests:
            return self._finish_rounds(context, jobs)
        writer = self._write_results if self.results_path is not None else None
        return finish_with_jobs(
            context,
            jobs,
            self.max_failed_ratio,
            self.log,
            write_results=writer,
            file_lines=self.hook.iter_file_head_lines,
            mask=self.hook.mask,
        )

    def _write_results(self, jobs: Sequence[BatchJob]) -> dict[str, Any]:
        """Join the jobs' output and error files with the input at ``results_path``, each
        answer checked against ``output_type``."""
        from airflow_provider_mistral_batch.batch.results import rows_output, write_job_results

        # Built again from output_type here: after a deferral this runs in a new process.
        output = rows_output([job.endpoint for job in jobs], self.output_type)
        return write_job_results(self.hook, self.log, jobs, self.results_path, output=output)

    def _finish_rounds(self, context: Context, ended: Sequence[BatchJob]) -> dict[str, Any]:
        """After a round's jobs ended: run the next resubmit rounds (each waits, or defers),
        then finish on the final rows of every round (see ``batch/resubmit.py``)."""
        from airflow_provider_mistral_batch.batch.finish import finish_with_jobs
        from airflow_provider_mistral_batch.batch.identity import task_identity
        from airflow_provider_mistral_batch.batch.resubmit import (
            Rounds,
            next_round,
            push_rounds,
        )
        from airflow_provider_mistral_batch.batch.results import rows_output, write_job_results

        rounds = self._rounds or Rounds.first(ended, self._task_keys)
        rounds.ended(ended)
        options = self._options(rendered=True, input_known=False)
        spec = None
        if self.retry_invalid_output:
            spec = rows_output([job.endpoint for job in ended], self.output_type)
        while True:
            # Killed while a round's job is being created: the ended jobs are not those to
            # cancel; on_kill finds the new ones by their keys.
            ended_ids, ended_keys = self.job_ids, self._task_keys
            self.job_id, self.job_ids = None, []
            self._task_keys = rounds.next_keys(self.retry_invalid_output)
            jobs = next_round(
                self.hook,
                self.log,
                rounds,
                max_rounds=self.retry_failed_requests,
                spec=spec,
                retry_invalid_output=self.retry_invalid_output,
                identity=task_identity(context),
                metadata=options.metadata,
                reattach=not self.force_new_job,
                create=lambda part, tags: self._create(options, part, tags),
            )
            if jobs is None:
                self.job_ids, self._task_keys = ended_ids, ended_keys
                self.job_id = ended_ids[0] if ended_ids else None
                break
            push_rounds(context, rounds)
            self.job_ids = [job.id for job in jobs]
            self.job_id = self.job_ids[0]
            self._task_keys = list(rounds.rounds[-1].keys)
            if not all(job.status.is_terminal for job in jobs):
                deadline = time.time() + options.wait_seconds
                if self.deferrable:
                    self._defer(jobs, deadline, resume=rounds.to_data())
                jobs = self._wait(context, jobs, deadline)
            rounds.ended(jobs)
        outcome = rounds.outcome(self.hook)
        by_round = rounds.jobs(self.hook)

        def write_merged(_: Sequence[BatchJob]) -> dict[str, Any]:
            return write_job_results(
                self.hook,
                self.log,
                by_round[0],
                self.results_path,
                output=rows_output([job.endpoint for job in by_round[0]], self.output_type),
                rounds=by_round[1:],
            )

        return finish_with_jobs(
            context,
            outcome.jobs,
            self.max_failed_ratio,
            self.log,
            write_results=write_merged if self.results_path is not None else None,
            file_lines=self.hook.iter_file_head_lines,
            mask=self.hook.mask,
            rounds=outcome,
        )

    def _reattach_or_create(
        self,
        context: Context,
        options: SubmitOptions,
        prepared: PreparedInput,
        parts: Sequence[InlineInput | FileInput | UploadedInput],
    ) -> list[BatchJob]:
        """One job per part: the one an earlier try made with the same key, else a new one."""
        from airflow_provider_mistral_batch.batch.identity import job_fingerprint, task_identity
        from airflow_provider_mistral_batch.batch.submission import submit_jobs

        fingerprint = job_fingerprint(
            prepared.fingerprint,
            options,
            namespace=self.hook.settings.reattach_namespace,
            max_requests_per_job=self.max_requests_per_job,
        )
        if self.force_new_job:
            # A key no other try has: this try's job is never taken for another's duplicate.
            fingerprint = f"{fingerprint}:new:{uuid.uuid4().hex}"
        jobs, self._task_keys = submit_jobs(
            self.hook,
            self.log,
            task_identity(context),
            fingerprint,
            parts,
            metadata=options.metadata,
            reattach=not self.force_new_job,
            create=lambda part, tags: self._create(options, part, tags),
        )
        self._task_key = self._task_keys[0]
        return jobs

    def _create(
        self,
        options: SubmitOptions,
        prepared: InlineInput | FileInput | UploadedInput,
        metadata: dict[str, str],
    ) -> BatchJob:
        from airflow_provider_mistral_batch.batch.submission import create_job

        try:
            return create_job(self.hook, self.log, options, prepared, metadata)
        except MistralBatchInputError as exc:
            raise MistralBatchInputError(f"{self.task_id}: {exc}") from exc

    def _defer(
        self, jobs: Sequence[BatchJob], deadline: float, resume: dict[str, Any] | None = None
    ) -> None:
        from airflow_provider_mistral_batch.batch.deferral import hold_events_until
        from airflow_provider_mistral_batch.triggers.batch import MistralBatchJobTrigger

        if resume is None and self.retry_failed_requests:
            from airflow_provider_mistral_batch.batch.resubmit import Rounds

            resume = Rounds.first(jobs, self._task_keys).to_data()

        self.defer(
            trigger=MistralBatchJobTrigger(
                job_id=jobs[0].id,
                job_ids=[job.id for job in jobs] if len(jobs) > 1 else None,
                mistral_conn_id=self.mistral_conn_id,
                poll_interval=self.poll_interval,
                deadline=deadline,
                cancel_on_deadline=True,
                max_consecutive_errors=self.max_consecutive_errors,
                cancel_on_kill=self.cancel_on_kill,
                task_keys=self._task_keys,
                check_duplicates_until=time.time() + self.duplicate_check_seconds,
                max_poll_interval=self.max_poll_interval,
                # A job that ends within seconds of this deferral must not resume the task
                # before Airflow has seen this process end.
                hold_event_until=hold_events_until(),
                resume=resume,
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        """Resume after the trigger: check the event, write results, apply the failure policy."""
        from airflow_provider_mistral_batch.batch.event import parse_event
        from airflow_provider_mistral_batch.batch.finish import finish_with_event

        try:
            if self.retry_failed_requests:
                payload = parse_event(event)
                if payload.kind == "terminal" and payload.resume is not None:
                    from airflow_provider_mistral_batch.batch.resubmit import Rounds

                    self._rounds = Rounds.from_data(payload.resume)
                    return self._finish_rounds(context, payload.all_jobs)
            return finish_with_event(
                context,
                event,
                self.max_failed_ratio,
                self.log,
                batch_operator=True,
                write_results=self._write_results if self.results_path is not None else None,
                file_lines=self.hook.iter_file_head_lines,
                mask=self.hook.mask,
            )
        finally:
            self.hook.close()

    def on_kill(self) -> None:
        """Cancel the jobs when the task is killed (not on an execution timeout)."""
        from airflow_provider_mistral_batch.batch.identity import cancel_task_jobs

        job_ids = self.job_ids or ([self.job_id] if self.job_id is not None else [])
        keys = self._task_keys or ([self._task_key] if self._task_key is not None else [])
        if self._execution_timed_out:
            self.log.info(
                "Execution timeout: leaving Mistral batch job %s running so that the retry "
                "reattaches to it",
                ", ".join(job_ids) or None,
            )
            return
        if not self.cancel_on_kill or not (job_ids or keys):
            if job_ids:
                self.log.info(
                    "Leaving Mistral batch job %s running (cancel_on_kill=False)",
                    ", ".join(job_ids),
                )
            return
        cancel_task_jobs(self.hook, job_ids, keys, self.log)
