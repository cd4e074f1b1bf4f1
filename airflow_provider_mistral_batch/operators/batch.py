"""Operators that create, wait for and cancel Mistral batch jobs."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final

from airflow.sdk import BaseOperator
from pydantic import ValidationError

from airflow_provider_mistral_batch.batch.wait_options import (
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    DEFAULT_MAX_FAILED_RATIO,
    DEFAULT_MAX_POLL_INTERVAL,
    DEFAULT_POLL_INTERVAL,
    check_wait_options,
    is_finite_number,
    is_whole_number,
)
from airflow_provider_mistral_batch.exceptions import (
    MistralAPIError,
    MistralBatchInputError,
    MistralBatchJobError,
    MistralNotFoundError,
    MistralValidationError,
    describe_error,
    given_job_error,
    refused_job_error,
    validation_problems,
)
from airflow_provider_mistral_batch.hooks.connection import DEFAULT_CONN_ID
from airflow_provider_mistral_batch.links import MistralBatchJobLink
from airflow_provider_mistral_batch.models import (
    DEFAULT_TIMEOUT_HOURS,
    MAX_REQUESTS_PER_JOB,
    SHARD_METADATA,
    TIMEOUT_HOURS_MAX,
    TIMEOUT_HOURS_MIN,
    ApiEndpoint,
    BatchJob,
    CreateBatchJobRequest,
    FilePurpose,
)
from airflow_provider_mistral_batch.utils.compat import AirflowTaskTimeout, conf
from airflow_provider_mistral_batch.utils.wording import plural

# utils.input, utils.outcome, utils.reattach, utils.results_path and the waiting core
# (utils.watch) are imported where they are used: every DAG file that uses these operators pays
# their import at every parse, and only a run needs them.
if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import DAG, Context

    from airflow_provider_mistral_batch.batch.input import (
        FileInput,
        InlineInput,
        PreparedInput,
        UploadedInput,
    )
    from airflow_provider_mistral_batch.batch.waiting import (
        Answer,
        Ended,
        GaveUp,
        JobWatch,
        Outcome,
    )
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

# Extra time, past the job's own timeout_hours, to wait for Mistral to report the timeout.
_WAIT_MARGIN = timedelta(hours=1)


def _seconds(value: Any) -> Any:
    """A ``timedelta`` as seconds; anything else as given, for the option checks to judge."""
    return value.total_seconds() if isinstance(value, timedelta) else value


class MistralBatchOperator(BaseOperator):
    """Run a Mistral batch job: validate and upload the input, create the job, wait for it,
    and optionally write its results joined with the input.

    Give exactly one input: ``input_files`` (ids of uploaded JSONL files), ``requests`` (an
    iterable of ``{"custom_id", "body"}`` dicts, e.g. from XCom) or ``input_path`` (a local
    path or an ``ObjectStoragePath`` to a JSONL file). The input is validated before anything
    is uploaded or created; an error names the line (``requests.jsonl line 12: custom_id "a7"
    repeats line 3``).

    Retries reattach: the job's metadata carries a key built from dag_id, task_id, run_id,
    map_index and a fingerprint of the input and job settings, and a new try of the same task
    with the same input and settings reattaches to the running or succeeded job of an earlier
    try instead of paying for a second one (``force_new_job=True`` turns this off).

    Two jobs with one task key happen when a try dies while its create is in flight, the server
    commits that create late and the retry has made its own. Reattaching keeps one of them (a
    succeeded one, else the oldest) and cancels the others with a warning; so does the wait
    while a job is young (``duplicate_check_seconds``, a class attribute: 300 s), where a
    late job can still appear, and the wait follows the kept job if it is not its own.

    An input larger than one job takes (more than ``max_requests_per_job`` requests, at most
    and by default 1,000,000, or over 512 MB) is split into shards in the same validating pass,
    one job each (custom_ids unique across all of them); the task waits for every job and
    succeeds only if every one succeeds, with ``max_failed_ratio`` applied to the total. Each
    shard reattaches on its own, so a retry after one shard FAILED creates only that one again.

    XCom: ``batch_job_ids`` (and ``batch_job_id`` for a single job) and ``mistral_conn_id`` as
    soon as the jobs exist; at the end ``output_files`` and ``error_files`` (and
    ``output_file``, ``error_file`` for a single job), and the return value: the job's summary
    (``job_id``, ``status``, file ids, request counts; totals over the shards), ``job_ids``,
    ``output_files``, ``error_files``, and ``results_path``, ``missing_requests`` and ``usage``
    when results were written.

    With ``results_path``, once the jobs ended with files (SUCCESS, or the partial files of
    TIMEOUT_EXCEEDED or CANCELLED), their output and error files are streamed and joined with
    the input into one JSONL there: one line per input request, in input order,
    ``{"custom_id", "ok", "status_code", "response", "error"}``. A request with no result line
    gets ``"error": "no result returned"``, is counted and named in the log and XCom, and
    counts as failed for ``max_failed_ratio``. Only that small manifest goes to XCom.

    Only a SUCCESS job lets the task succeed: FAILED, TIMEOUT_EXCEEDED or CANCELLED fail it. A
    status this provider does not know counts neither as ended nor as success: the task keeps
    waiting (up to ``wait_timeout``). A SUCCESS job fails the task too when any of its requests
    failed, unless ``max_failed_ratio`` allows that share; the final log line says the rule
    applied (``2 of 5 requests failed (40%), above max_failed_ratio 0``).

    A mapped task (``.partial(...).expand(...)``) with one ``results_path`` for every instance
    must name the map index in it (``{{ ti.map_index }}``), or expand ``results_path``: else
    every instance fails before anything is uploaded, since each would replace the others'
    file. A template error in a field (an undefined variable such as ``{{ ds }}`` on a manual
    run, which has no logical date) fails the task at once, without retries.

    ``requests`` is a template field: a literal ``{{`` in a prompt given inline in the DAG file
    is read as Jinja. Requests that come from XCom (e.g. a ``@task``'s return value) are not
    rendered, so build prompts with braces in a task.

    :param endpoint: API endpoint of the requests, e.g. ``/v1/chat/completions`` (templated).
        One this release does not know is sent with a warning if it has the form
        ``/v1/<path>``; any other value is refused.
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
    :param poll_interval: seconds between status polls; default 30. Left unset, a deferred
        job that has run long is polled less often: every tenth of its age, up to 5 minutes.
    :param max_failed_ratio: highest share (0.0-1.0) of failed requests a SUCCESS job may
        have before the task fails; default 0.0: any failed request fails the task. None (or
        1.0) lets any number fail, with a warning.
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
    :param results_path: where to write the joined results: a local path, an
        ``airflow.sdk.ObjectStoragePath`` or a URL string made one (templated); checked before
        anything is read or created; needs ``wait_for_completion``. With it even a few
        requests are uploaded as a file, so the input can be read back after a deferral.
        Missing local folders (a path, or ``file://``) are made. In a mapped task it must differ
        per instance (see above). Default None: no results are written.
    :param results_include_request: add each request's body to its result line (``request``);
        default False.
    :param max_requests_per_job: most requests in one job, 1 to 1,000,000; a larger input is
        split into several jobs. Default None: the API's limit, 1,000,000.
    """

    template_fields: Sequence[str] = (
        "endpoint",
        "input_files",
        "requests",
        "input_path",
        "model",
        "metadata",
        "agent_id",
        "results_path",
    )
    template_fields_renderers = {"requests": "json", "metadata": "json", "input_files": "json"}
    operator_extra_links = (MistralBatchJobLink(),)
    ui_color = "#ffd8b0"
    #: Seconds after the wait starts during which each poll also looks for a duplicate job of
    #: the task (one more list call per poll), long enough for a late create to land.
    duplicate_check_seconds: float = 300.0

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
        poll_interval: float | None = None,
        max_failed_ratio: float | None = DEFAULT_MAX_FAILED_RATIO,
        wait_timeout: timedelta | float | None = None,
        cancel_on_deadline: bool = True,
        cancel_on_kill: bool = True,
        force_new_job: bool = False,
        assign_custom_ids: bool = False,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
        reattach_namespace: str | None = None,
        results_path: Any = None,
        results_include_request: bool = False,
        max_requests_per_job: int | None = None,
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
        if not (
            is_whole_number(timeout_hours)
            and TIMEOUT_HOURS_MIN <= timeout_hours <= TIMEOUT_HOURS_MAX
        ):
            raise MistralBatchInputError(
                f"{self.task_id}: timeout_hours must be a whole number of hours between "
                f"{TIMEOUT_HOURS_MIN} and {TIMEOUT_HOURS_MAX}, got {timeout_hours!r}"
            )
        if max_requests_per_job is not None and not (
            is_whole_number(max_requests_per_job)
            and 1 <= max_requests_per_job <= MAX_REQUESTS_PER_JOB
        ):
            raise MistralBatchInputError(
                f"{self.task_id}: max_requests_per_job must be a whole number from 1 to "
                f"{MAX_REQUESTS_PER_JOB:,}, got {max_requests_per_job!r}"
            )
        if results_path is not None and not wait_for_completion:
            raise MistralBatchInputError(
                f"{self.task_id}: results_path needs wait_for_completion=True (the results "
                "exist only once the job ended); use MistralBatchResultsOperator downstream"
            )
        if results_include_request and results_path is None:
            raise MistralBatchInputError(
                f"{self.task_id}: results_include_request needs results_path"
            )
        if isinstance(endpoint, str) and "{" not in endpoint and not self._custom_jinja():
            # Plain text, not a template: a malformed endpoint is refused when the DAG is parsed.
            try:
                _check_endpoint(endpoint)
            except MistralBatchInputError as exc:
                raise MistralBatchInputError(f"{self.task_id}: {exc}") from None
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
        self.poll_interval = float(
            poll_interval if poll_interval is not None else DEFAULT_POLL_INTERVAL
        )
        # An interval the user chose is kept; the default one may grow for long jobs.
        self.max_poll_interval = None if poll_interval is not None else DEFAULT_MAX_POLL_INTERVAL
        self.max_failed_ratio = max_failed_ratio
        self.wait_timeout = float(_seconds(wait_timeout)) if wait_timeout is not None else None
        self.cancel_on_deadline = cancel_on_deadline
        self.cancel_on_kill = cancel_on_kill
        self.force_new_job = force_new_job
        self.assign_custom_ids = assign_custom_ids
        self.max_consecutive_errors = max_consecutive_errors
        self.reattach_namespace = reattach_namespace
        self.results_path = results_path
        self.results_include_request = results_include_request
        self.max_requests_per_job = max_requests_per_job
        self.job_id: str | None = None
        self.job_ids: list[str] = []
        self._task_key: str | None = None
        self._task_keys: list[str] = []
        self._execution_timed_out = False

    @cached_property
    def hook(self) -> MistralBatchHook:
        """The hook for ``mistral_conn_id`` (imported lazily to keep DAG parsing cheap)."""
        from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

        return MistralBatchHook(self.mistral_conn_id)

    # ------------------------------------------------------------------ validation

    def _custom_jinja(self) -> bool:
        """Whether the DAG changes Jinja's settings (its markers may not start with ``{``)."""
        dag = _dag_of(self)
        return dag is not None and bool(dag.jinja_environment_kwargs)

    def _checked_options(self) -> tuple[str, dict[str, str]]:
        """The rendered endpoint and user metadata, refused before anything is sent."""
        endpoint = str(self.endpoint)
        if not _check_endpoint(endpoint).is_known:
            self.log.warning(
                "Endpoint %s is not one this provider release knows (%s); sending it as given%s",
                endpoint,
                _known_endpoints(),
                _closest_endpoint(endpoint),
            )
        if self.metadata is not None and not isinstance(self.metadata, Mapping):
            raise MistralBatchInputError(
                f"metadata must be a mapping of string keys to string values, got "
                f"{type(self.metadata).__name__} {self.metadata!r:.100}"
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
        except ValidationError as exc:
            raise MistralBatchInputError(f"invalid metadata: {validation_problems(exc)}") from None
        return endpoint, metadata

    def _prepare_input(self, endpoint: str) -> PreparedInput:
        from airflow_provider_mistral_batch.batch.input import (
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
                max_requests_per_job=self.max_requests_per_job,
                # Uploaded, the input can be read back for the results after a deferral.
                inline=self.results_path is None,
            )
        return prepare_file(
            value,
            endpoint=endpoint,
            model=self.model,
            assign_custom_ids=self.assign_custom_ids,
            max_requests_per_job=self.max_requests_per_job,
        )

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
            _raise_template_error(self, content, exc)
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
        from airflow_provider_mistral_batch.batch.finish import fail_at_deadline
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

        try:
            endpoint, metadata = self._checked_options()
            if self.results_path is not None:
                # Before the input is read: a bad path is reported at once, nothing to clean.
                from airflow_provider_mistral_batch.utils.paths import (
                    check_not_shared,
                    prepare_destination,
                )

                check_not_shared(self, context)
                prepare_destination(self.results_path)
            prepared = self._prepare_input(endpoint)
            if isinstance(prepared, UploadedInput):
                self._check_input_files(prepared.file_ids)
        except MistralBatchInputError as exc:
            # For the UI's tab (no job to show); the message names input, never a secret.
            context["ti"].xcom_push(key=XCOM_INPUT_ERROR, value=str(exc)[:2000])
            # Name the task; the error itself fails it without retries.
            raise MistralBatchInputError(f"{self.task_id}: {exc}") from exc
        parts = prepared.shards if isinstance(prepared, ShardedInput) else [prepared]
        try:
            jobs = self._reattach_or_create(context, endpoint, metadata, prepared, parts)
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
        deadline = time.time() + self._wait_seconds()
        if self.deferrable:
            self._defer(jobs, deadline)
        from airflow_provider_mistral_batch.batch.waiting import JobWatch, TimedOut

        ended: list[BatchJob] = []
        timed_out: list[TimedOut] = []
        check_until = time.time() + self.duplicate_check_seconds
        for job, key in zip(jobs, self._task_keys, strict=True):
            watch = JobWatch(
                job.id,
                log=self.log,
                poll_interval=self.poll_interval,
                deadline=deadline,
                cancel_on_deadline=self.cancel_on_deadline,
                max_consecutive_errors=self.max_consecutive_errors,
                task_key=key,
                check_duplicates_until=check_until,
            )
            outcome = wait_blocking(self.hook, watch, job)
            if isinstance(outcome, TimedOut):
                timed_out.append(outcome)
                ended.append(outcome.job or job)  # the latest snapshot, one per job
            else:
                ended.append(_ended_job(outcome))
        # A wait that followed the kept one of duplicate jobs ended with another job.
        self.job_ids = [job.id for job in ended]
        self.job_id = self.job_ids[0]
        if timed_out:
            message = "; ".join(outcome.message for outcome in timed_out)
            fail_at_deadline(context, ended, message, lists=True)
        return self._finish(context, ended)

    def _check_input_files(self, file_ids: Sequence[str]) -> None:
        """Look each given file up before a job is made of it: an unknown, deleted or
        non-``batch`` file would only make a FAILED job on every try."""
        for position, file_id in enumerate(file_ids):
            try:
                found = self.hook.get_file(file_id)
            except (MistralNotFoundError, MistralValidationError) as exc:
                raise MistralBatchInputError(
                    f"input_files[{position}] {file_id!r} cannot be used: {describe_error(exc)}"
                ) from None
            if found.deleted:
                raise MistralBatchInputError(f"input_files[{position}] {file_id!r} was deleted")
            if found.purpose != FilePurpose.BATCH:
                raise MistralBatchInputError(
                    f"input_files[{position}] {file_id!r} has purpose {found.purpose!s}; a batch "
                    "job needs files uploaded with purpose 'batch'"
                )

    def _finish(self, context: Context, jobs: Sequence[BatchJob]) -> dict[str, Any]:
        from airflow_provider_mistral_batch.batch.finish import finish_with_jobs

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
        """Join the jobs' output and error files with the input at ``results_path``."""
        from airflow_provider_mistral_batch.batch.results import write_results
        from airflow_provider_mistral_batch.utils.paths import make_folders, storage_path

        file_ids = [f for job in jobs for f in (job.output_file, job.error_file) if f]
        if not file_ids:
            self.log.warning(
                "No results written to %s: the job(s) ended without output or error files",
                self.results_path,
            )
            return {}
        target = storage_path(self.results_path, "results_path")
        # Resumed after a deferral, this may be another worker than the one that checked.
        make_folders(target)
        summary = write_results(
            self.hook,
            file_ids,
            target,
            requests=self._input_requests(jobs),
            include_request=self.results_include_request,
        )
        return summary.as_xcom()

    def _input_requests(self, jobs: Sequence[BatchJob]) -> Iterator[tuple[str, Any]] | None:
        """The input's ``(custom_id, body)`` in order, read back from the jobs' input files
        (with ``results_path`` even a few requests are uploaded, so every job has them); None
        when a job has none (it was made before results were asked for): file order then."""
        if not all(job.input_files for job in jobs):
            self.log.warning(
                "A job has no input files to read the input back from: results follow the "
                "files' order and missing requests cannot be counted"
            )
            return None
        file_ids = [file_id for job in jobs for file_id in job.input_files]
        return _requests_of_files(self.hook, file_ids, with_body=self.results_include_request)

    def _reattach_or_create(
        self,
        context: Context,
        endpoint: str,
        metadata: dict[str, str],
        prepared: PreparedInput,
        parts: Sequence[InlineInput | FileInput | UploadedInput],
    ) -> list[BatchJob]:
        """One job per part: the one an earlier try made with the same key, else a new one."""
        from airflow_provider_mistral_batch.batch.identity import (
            find_job_to_reattach,
            task_identity,
            task_key,
            task_metadata,
        )

        identity = task_identity(context)
        fingerprint = self._job_fingerprint(prepared.fingerprint, metadata)
        if self.force_new_job:
            # A key no other try has: this try's job is never taken for another's duplicate.
            fingerprint = f"{fingerprint}:new:{uuid.uuid4().hex}"
        count = len(parts)
        # A single job keeps the key it always had; each shard adds its place to it.
        self._task_keys = [
            task_key(identity, fingerprint if count == 1 else f"{fingerprint}:{index}/{count}")
            for index in range(1, count + 1)
        ]
        self._task_key = self._task_keys[0]
        jobs = []
        for index, (part, key) in enumerate(zip(parts, self._task_keys, strict=True), start=1):
            shard = f" (shard {index} of {count})" if count > 1 else ""
            job = None if self.force_new_job else find_job_to_reattach(self.hook, key, self.log)
            if job is not None:
                self.log.info(
                    "Reattaching to Mistral batch job %s (status %s) created by an earlier try%s",
                    job.id,
                    job.status,
                    shard,
                )
            else:
                tags = {**metadata, **task_metadata(identity, key)}
                if count > 1:
                    tags[SHARD_METADATA] = f"{index}/{count}"
                job = self._create(endpoint, part, tags)
            jobs.append(job)
        return jobs

    def _job_fingerprint(self, input_fingerprint: str, metadata: Mapping[str, str]) -> str:
        """The input's fingerprint plus every other setting that shapes the job."""
        settings = [
            input_fingerprint,
            self.agent_id,
            self.timeout_hours,
            sorted(metadata.items()),
            self.reattach_namespace,
        ]
        if self.max_requests_per_job is not None:
            settings.append(self.max_requests_per_job)
        return hashlib.sha256(json.dumps(settings).encode()).hexdigest()

    def _wait_seconds(self) -> float:
        if self.wait_timeout is not None:
            return self.wait_timeout
        return self.timeout_hours * 3600.0 + _WAIT_MARGIN.total_seconds()

    def _create(
        self,
        endpoint: str,
        prepared: InlineInput | FileInput | UploadedInput,
        metadata: dict[str, str],
    ) -> BatchJob:
        from airflow_provider_mistral_batch.batch.identity import duplicate_chooser
        from airflow_provider_mistral_batch.batch.input import InlineInput, UploadedInput

        common: dict[str, Any] = {
            "endpoint": endpoint,
            "model": self.model,
            "metadata": metadata,
            "timeout_hours": self.timeout_hours,
            "agent_id": self.agent_id,
        }
        file_id = None
        if isinstance(prepared, InlineInput):
            self.log.info(
                "Creating a batch job with %s", plural(prepared.request_count, "inline request")
            )
            source: dict[str, Any] = {"requests": prepared.requests}
        elif isinstance(prepared, UploadedInput):
            source = {"input_files": prepared.file_ids}
        else:
            file_id = self._upload(prepared)
            source = {"input_files": [file_id]}
        try:
            choose = duplicate_chooser(self.hook, self.log)
            return self.hook.create_batch_job(**source, **common, choose=choose)
        except MistralAPIError as exc:
            # Refused for good, and no earlier attempt may have made a job from it: the upload
            # is of no more use. After an ambiguous attempt (the error carries a note), a job
            # may use the file, so it stays.
            refused = exc.status_code < 500 and exc.status_code != 429 and exc.note is None
            if file_id is not None and refused:
                self._delete_quietly(file_id)
            error = refused_job_error(exc)
            if error is exc:
                raise
            raise error from exc

    def _upload(self, prepared: FileInput) -> str:
        self.log.info(
            "Uploading %s (%s, %s)",
            prepared.filename,
            plural(prepared.request_count, "request"),
            plural(prepared.size, "byte"),
        )
        try:
            return self.hook.upload_file(prepared.path, filename=prepared.filename).id
        except MistralAPIError as exc:
            if exc.status_code == 413:
                # The API refuses the file for its size: every retry would upload it again.
                raise MistralBatchInputError(
                    f"{self.task_id}: {prepared.filename} ({prepared.size:,} bytes) is too large "
                    f"for the Files API: {describe_error(exc)}; set max_requests_per_job to "
                    "split the input into smaller jobs"
                ) from exc
            raise

    def _delete_quietly(self, file_id: str) -> None:
        try:
            self.hook.delete_file(file_id)
        except Exception as exc:
            self.log.warning("Could not delete uploaded file %s: %s", file_id, exc)
        else:
            self.log.info("Deleted uploaded file %s: no job was created from it", file_id)

    def _defer(self, jobs: Sequence[BatchJob], deadline: float) -> None:
        from airflow_provider_mistral_batch.batch.deferral import hold_events_until
        from airflow_provider_mistral_batch.triggers.batch import MistralBatchJobTrigger

        self.defer(
            trigger=MistralBatchJobTrigger(
                job_id=jobs[0].id,
                job_ids=[job.id for job in jobs] if len(jobs) > 1 else None,
                mistral_conn_id=self.mistral_conn_id,
                poll_interval=self.poll_interval,
                deadline=deadline,
                cancel_on_deadline=self.cancel_on_deadline,
                max_consecutive_errors=self.max_consecutive_errors,
                cancel_on_kill=self.cancel_on_kill,
                task_keys=self._task_keys,
                check_duplicates_until=time.time() + self.duplicate_check_seconds,
                max_poll_interval=self.max_poll_interval,
                # A job that ends within seconds of this deferral must not resume the task
                # before Airflow has seen this process end.
                hold_event_until=hold_events_until(),
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        """Resume after the trigger: check the event, write results, apply the failure policy."""
        from airflow_provider_mistral_batch.batch.finish import finish_with_event

        try:
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
        from airflow_provider_mistral_batch.batch.identity import is_reattachable, jobs_of_key

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
        if not job_ids:
            # Killed while a create was in flight: find the jobs it may have made.
            for key in keys:
                try:
                    found = jobs_of_key(self.hook, key)
                except Exception as exc:
                    self.log.warning("Could not look for the Mistral batch job to cancel: %s", exc)
                    continue
                job_ids += [job.id for job in found if is_reattachable(job.status)]
        for job_id in job_ids:
            try:
                self.hook.cancel_batch_job(job_id)
            except Exception as exc:
                self.log.warning("Could not cancel Mistral batch job %s: %s", job_id, exc)


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
            job = _ended_job(outcome)
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


def _dag_of(operator: BaseOperator) -> DAG | None:
    """The operator's DAG, or None before it has one."""
    try:
        return operator.dag
    except RuntimeError:
        return None


def _known_endpoints() -> str:
    return ", ".join(endpoint.value for endpoint in ApiEndpoint)


def _closest_endpoint(endpoint: str) -> str:
    """`` (did you mean '/v1/...'?)`` for a near miss of a known endpoint, else nothing."""
    import difflib

    close = difflib.get_close_matches(endpoint, [e.value for e in ApiEndpoint], n=1, cutoff=0.8)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_endpoint(endpoint: str) -> ApiEndpoint:
    """The endpoint as an :class:`ApiEndpoint`: a known one, or an unknown one of the form
    ``/v1/<path>`` (a new endpoint needs no new release of this provider); refuse the rest."""
    value = ApiEndpoint(endpoint)
    if not value.is_known and not value.is_well_formed:
        raise MistralBatchInputError(
            f"endpoint {endpoint!r} is not an API endpoint of the form /v1/<path>"
            f"{_closest_endpoint(endpoint)}; the known ones: {_known_endpoints()}"
        )
    return value


# Context keys that only a run with a logical date has (a manual run in Airflow 3 has none).
_LOGICAL_DATE_KEYS: Final = frozenset(
    {
        "logical_date",
        "ds",
        "ds_nodash",
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "data_interval_start",
        "data_interval_end",
        "prev_data_interval_start_success",
        "prev_data_interval_end_success",
    }
)


def _raise_template_error(operator: BaseOperator, content: Any, exc: Exception) -> None:
    """Raise a :class:`MistralBatchInputError` (no retries: every try renders the same) for a
    Jinja error (an undefined variable, bad syntax) in one of ``operator``'s template fields.

    Called for every value rendered: a value inside a field (an item of a list) returns, for
    the field's own call to name the field.
    """
    from jinja2 import TemplateSyntaxError, UndefinedError

    if not isinstance(exc, UndefinedError | TemplateSyntaxError):
        return
    field = next(
        (name for name in operator.template_fields if getattr(operator, name, None) is content),
        None,
    )
    if field is None:
        return
    hint = ""
    undefined = str(exc).split("'")
    if (
        isinstance(exc, UndefinedError)
        and len(undefined) > 1
        and undefined[1] in _LOGICAL_DATE_KEYS
    ):
        hint = (
            "; this run has no logical date (a manual run in Airflow 3 has none), so "
            f"{undefined[1]} is undefined: use a value every run has, such as "
            "{{ dag_run.run_after | ds }} or {{ run_id }}"
        )
    shown = repr(content)
    if len(shown) > 200:
        shown = shown[:197] + "..."
    raise MistralBatchInputError(
        f"{operator.task_id}: cannot render {field} {shown}: {exc}{hint} (a template error "
        "fails every try alike: no retries)"
    ) from None


_PLAIN_SCALARS: Final = (int, float, bool, type(None))


def renders_to_itself(value: Any, env: jinja2.Environment, template_ext: Sequence[str]) -> bool:
    """Whether rendering ``value`` with ``env`` would give back equal data: only plain lists,
    tuples, dicts, numbers and strings with no marker of ``env``'s syntax and nothing Jinja
    rewrites (``\r``, a trailing newline it drops), no template file's name, and an
    environment that returns text (a native one may turn ``"1"`` into ``1``)."""
    from jinja2.nativetypes import NativeEnvironment

    if isinstance(env, NativeEnvironment) or env.line_statement_prefix or env.line_comment_prefix:
        return False
    markers = (env.variable_start_string, env.block_start_string, env.comment_start_string)
    # With the default syntax every marker starts with "{": one scan rules most strings out.
    leads = {marker[:1] for marker in markers}
    lead = leads.pop() if len(leads) == 1 else ""
    extensions = tuple(template_ext)
    keep_newline = env.keep_trailing_newline
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is str:
            if (
                (lead in item and any(marker in item for marker in markers))
                or "\r" in item
                or (not keep_newline and item.endswith("\n"))
                or (extensions and item.endswith(extensions))
            ):
                return False
        elif kind is dict:
            pending.extend(item.values())  # Airflow renders values, never keys
        elif kind is list or kind is tuple:
            pending.extend(item)
        elif kind not in _PLAIN_SCALARS:
            return False  # a path, an XComArg, an object with template fields: Airflow's way
    return True


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
    from airflow_provider_mistral_batch.batch.identity import jobs_of_key
    from airflow_provider_mistral_batch.batch.waiting import (
        Cancel,
        CancelDuplicate,
        Ended,
        GaveUp,
        ListTaskJobs,
        Sleep,
        TimedOut,
    )

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


def _requests_of_files(
    hook: MistralBatchHook, file_ids: Iterable[str], *, with_body: bool
) -> Iterator[tuple[str, Any]]:
    """``(custom_id, body)`` of the request lines of uploaded input files, streamed in order."""
    from airflow_provider_mistral_batch.batch.request_lines import requests_of_lines

    for file_id in file_ids:
        yield from requests_of_lines(hook.iter_file_lines(file_id), with_body=with_body)


def _requests_of_items(task_id: str, items: Iterable[Any]) -> Iterator[tuple[str, Any]]:
    """``(custom_id, body)`` of request dicts given to the results operator, in order."""
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise MistralBatchInputError(
                f"{task_id}: requests[{position}] must be a {{'custom_id', 'body'}} object"
            )
        yield str(item.get("custom_id", position)), item.get("body")


def _ended_job(outcome: Ended | GaveUp) -> BatchJob:
    """The ended job, or the error that ended polling raised as it came."""
    from airflow_provider_mistral_batch.batch.waiting import GaveUp

    if isinstance(outcome, GaveUp):
        raise outcome.error
    return outcome.job


class MistralBatchResultsOperator(BaseOperator):
    """Write the results of ended Mistral batch jobs made elsewhere, joined with their input.

    For a job created outside this task (after :class:`MistralBatchJobSensor`, say): its output
    and error files are streamed and written to ``results_path`` as one JSONL, one line per
    request, ``{"custom_id", "ok", "status_code", "response", "error"}``. With the input
    (exactly one of ``requests``, ``input_path``, ``input_files``) the lines follow the input's
    order and requests with no result line are counted, named and written as failed; without
    it the lines follow the files' order and missing requests cannot be counted (the log says
    so). Returns the small manifest (``results_path``, counts, ``missing_requests``, ``usage``).

    :param job_id: id of the job, or a list of ids (e.g. ``batch_job_ids``) (templated).
    :param results_path: a local path or an ``airflow.sdk.ObjectStoragePath`` (templated).
    :param requests: the input requests, ``{"custom_id", "body"}`` each (templated).
    :param input_path: the input JSONL, a local path or an ``ObjectStoragePath`` (templated).
    :param input_files: ids of the uploaded input files (templated).
    :param results_include_request: add each request's body to its line; default False.
    :param mistral_conn_id: Airflow connection id; default ``mistral_default``.
    """

    template_fields: Sequence[str] = (
        "job_id",
        "results_path",
        "requests",
        "input_path",
        "input_files",
    )
    template_fields_renderers = {"requests": "json", "input_files": "json"}
    ui_color = "#ffd8b0"

    def __init__(
        self,
        *,
        job_id: str | Sequence[str],
        results_path: Any,
        requests: Iterable[Mapping[str, Any]] | str | None = None,
        input_path: Any = None,
        input_files: Sequence[str] | str | None = None,
        results_include_request: bool = False,
        mistral_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        given = [
            name
            for name, value in (
                ("requests", requests),
                ("input_path", input_path),
                ("input_files", input_files),
            )
            if value is not None
        ]
        if len(given) > 1:
            raise MistralBatchInputError(
                f"{self.task_id}: give at most one of requests, input_path and input_files "
                f"(got {', '.join(given)})"
            )
        if results_include_request and not given:
            raise MistralBatchInputError(
                f"{self.task_id}: results_include_request needs the input (requests, "
                "input_path or input_files)"
            )
        self.job_id = job_id
        self.results_path = results_path
        self.requests = requests
        self.input_path = input_path
        self.input_files = input_files
        self.results_include_request = results_include_request
        self.mistral_conn_id = mistral_conn_id

    @cached_property
    def hook(self) -> MistralBatchHook:
        """The hook for ``mistral_conn_id``."""
        from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

        return MistralBatchHook(self.mistral_conn_id)

    def render_template(
        self,
        content: Any,
        context: Context,
        jinja_env: jinja2.Environment | None = None,
        seen_oids: set[int] | None = None,
    ) -> Any:
        """Render like any operator; a template error fails the task at once (no retries)."""
        try:
            return super().render_template(content, context, jinja_env, seen_oids)
        except Exception as exc:
            _raise_template_error(self, content, exc)
            raise

    def execute(self, context: Context) -> dict[str, Any]:
        """Check the jobs ended and the path is writable, then stream and join the results."""
        from airflow_provider_mistral_batch.batch.results import write_results
        from airflow_provider_mistral_batch.utils.paths import (
            check_not_shared,
            prepare_destination,
        )

        job_ids = [self.job_id] if isinstance(self.job_id, str) else list(self.job_id)
        try:
            if not job_ids or not all(isinstance(i, str) and i for i in job_ids):
                raise MistralBatchInputError(
                    f"job_id must be a job id or a list of them, got {self.job_id!r}"
                )
            check_not_shared(self, context)
            target = prepare_destination(self.results_path)
        except MistralBatchInputError as exc:
            raise MistralBatchInputError(f"{self.task_id}: {exc}") from exc
        try:
            jobs = [self.hook.get_batch_job(job_id) for job_id in job_ids]
            running = [job for job in jobs if not job.status.is_terminal]
            if running:
                raise MistralBatchJobError(
                    "Mistral batch job "
                    + ", ".join(f"{job.id} is still {job.status}" for job in running)
                    + ": wait for it to end (MistralBatchJobSensor) before writing its results"
                )
            requests = self._input_requests()
            if requests is None:
                self.log.info(
                    "No input given: results are written in the files' order, and requests "
                    "with no result line cannot be counted"
                )
            file_ids = [f for job in jobs for f in (job.output_file, job.error_file) if f]
            summary = write_results(
                self.hook,
                file_ids,
                target,
                requests=requests,
                include_request=self.results_include_request,
            )
            manifest: dict[str, Any] = {"job_ids": job_ids, **summary.as_xcom()}
            return manifest
        finally:
            self.hook.close()

    def _input_requests(self) -> Iterator[tuple[str, Any]] | None:
        """The input's ``(custom_id, body)`` in order, refused at its end if an id repeats
        (the join reads it before any result file); None without an input."""
        from airflow_provider_mistral_batch.batch.request_lines import (
            requests_of_path,
            unique_requests,
        )

        requests: Iterator[tuple[str, Any]]
        if self.requests is not None:
            if isinstance(self.requests, str | bytes | Mapping):
                raise MistralBatchInputError(
                    f"{self.task_id}: requests must be a list of {{'custom_id', 'body'}} objects"
                )
            if isinstance(self.requests, Iterator):
                # Read again to name a repeated id: a one-shot iterator is kept as a list.
                self.requests = list(self.requests)
            requests = _requests_of_items(self.task_id, self.requests)
        elif self.input_path is not None:
            requests = requests_of_path(self.input_path, with_body=self.results_include_request)
        elif self.input_files is not None:
            requests = _requests_of_files(
                self.hook, _file_ids(self.input_files), with_body=self.results_include_request
            )
        else:
            return None
        return unique_requests(requests, self._input_places, self.task_id)

    def _input_places(self) -> Iterator[tuple[str, str]]:
        """Each input request's custom_id and where it is, in input order, read again."""
        from airflow_provider_mistral_batch.batch.request_lines import (
            numbered_requests_of_lines,
            numbered_requests_of_path,
        )

        if self.requests is not None:
            for position, (custom_id, _) in enumerate(
                _requests_of_items(self.task_id, self.requests)
            ):
                yield custom_id, f"requests[{position}]"
        elif self.input_path is not None:
            for number, custom_id, _ in numbered_requests_of_path(self.input_path):
                yield custom_id, f"{self.input_path} line {number}"
        elif self.input_files is not None:
            for file_id in _file_ids(self.input_files):
                lines = self.hook.iter_file_lines(file_id)
                for number, custom_id, _ in numbered_requests_of_lines(lines):
                    yield custom_id, f"file {file_id} line {number}"


def _file_ids(input_files: Sequence[str] | str) -> Sequence[str]:
    """``input_files`` as a list: one id may be given alone."""
    return [input_files] if isinstance(input_files, str) else input_files
