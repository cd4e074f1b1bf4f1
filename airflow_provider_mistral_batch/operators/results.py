"""Operator that writes the results of ended Mistral batch jobs, joined with their input."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

# A DAG file loads output_spec anyway (output_type is checked at parse): small.
from airflow_provider_mistral_batch.batch.output_spec import output_spec
from airflow_provider_mistral_batch.connection_form import DEFAULT_CONN_ID
from airflow_provider_mistral_batch.exceptions import MistralBatchInputError, MistralBatchJobError
from airflow_provider_mistral_batch.utils.templating import raise_template_error

# The domain and the hook are imported where they are used: every DAG file that uses this
# operator pays its imports at every parse, and only a run needs them.
if TYPE_CHECKING:
    import jinja2
    from airflow.sdk import Context

    from airflow_provider_mistral_batch.batch.results_join import InputRequest
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
    from airflow_provider_mistral_batch.models import BatchJob


class MistralBatchResultsOperator(BaseOperator):
    """Write the results of ended Mistral batch jobs made elsewhere, joined with their input.

    For a job created outside this task (after :class:`MistralBatchJobSensor`, say): its output
    and error files are streamed and written to ``results_path`` as one JSONL, one line per
    request, ``{"custom_id", "status", "ok", "status_code", "response", "output", "error"}``
    (``status``: ``success``, ``error``, ``invalid_output``, ``missing``, ``expired`` or
    ``cancelled``). With the input (exactly one of ``requests``, ``input_path``,
    ``input_files``) the lines follow the input's order and requests with no result line are
    counted, named and written as ``missing`` (``expired`` / ``cancelled`` when their job
    ended TIMEOUT_EXCEEDED / CANCELLED); without it the lines follow the files' order and
    missing requests cannot be counted (the log says so). Returns the small manifest
    (``results_path``, ``succeeded``, ``failed``, ``counts`` per status,
    ``missing_requests``, ``usage``). See ``docs/operators.md``.

    :param job_id: id of the job, or a list of ids (e.g. ``batch_job_ids``) (templated).
    :param results_path: a local path or an ``airflow.sdk.ObjectStoragePath`` (templated).
    :param requests: the input requests, ``{"custom_id", "body"}`` each (templated).
    :param input_path: the input JSONL, a local path or an ``ObjectStoragePath`` (templated).
    :param input_files: ids of the uploaded input files (templated).
    :param results_include_request: add each request's body to its line; default False.
    :param output_type: what each answer must be: ``str`` (default) for the answer's text
        as ``output`` on chat and FIM completions (no ``output`` on other endpoints), or a
        pydantic model (or any type a pydantic ``TypeAdapter`` accepts), its validated value
        written as ``output`` (an answer that does not validate is ``invalid_output``).
        Checked when the DAG is parsed; not templated.
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
        output_type: Any = str,
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
        self.output_type = output_type
        # Checked at parse, as the submit operator does: None, a string or a value that is no
        # type fails the DAG's import naming output_type.
        try:
            output_spec(output_type)
        except MistralBatchInputError as exc:
            raise MistralBatchInputError(f"{self.task_id}: {exc}") from None
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
            raise_template_error(self, content, exc)
            raise

    def execute(self, context: Context) -> dict[str, Any]:
        """Check the jobs ended and the path is writable, then stream and join the results."""
        from airflow_provider_mistral_batch.batch.results import rows_output, write_results
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
            requests = self._input_requests(jobs)
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
                output=rows_output([job.endpoint for job in jobs], self.output_type),
            )
            manifest: dict[str, Any] = {"job_ids": job_ids, **summary.as_xcom()}
            return manifest
        finally:
            self.hook.close()

    def _input_requests(self, jobs: Sequence[BatchJob]) -> Iterator[InputRequest] | None:
        """The input's ``(custom_id, body, status when unanswered)`` in order, refused at its
        end if an id repeats (the join reads it before any result file); None without an
        input.

        A request with no result line is ``expired`` / ``cancelled`` when its job ended
        TIMEOUT_EXCEEDED / CANCELLED: when every job ended the same way, or when the input is
        given as the jobs' input files; else ``missing``.
        """
        from airflow_provider_mistral_batch.batch.request_lines import (
            requests_of_files,
            requests_of_path,
            unique_requests,
        )
        from airflow_provider_mistral_batch.batch.result_rows import MISSING, unanswered_status

        ends = {unanswered_status(job.status) for job in jobs}
        unanswered = ends.pop() if len(ends) == 1 else MISSING
        requests: Iterator[InputRequest]
        if self.requests is not None:
            if isinstance(self.requests, str | bytes | Mapping):
                raise MistralBatchInputError(
                    f"{self.task_id}: requests must be a list of {{'custom_id', 'body'}} objects"
                )
            if isinstance(self.requests, Iterator):
                # Read again to name a repeated id: a one-shot iterator is kept as a list.
                self.requests = list(self.requests)
            items = _requests_of_items(self.task_id, self.requests)
            requests = ((custom_id, body, unanswered) for custom_id, body in items)
        elif self.input_path is not None:
            lines = requests_of_path(self.input_path, with_body=self.results_include_request)
            requests = ((custom_id, body, unanswered) for custom_id, body in lines)
        elif self.input_files is not None:
            # Each file's requests are those of the job it is an input file of.
            job_ends = {
                file_id: unanswered_status(job.status)
                for job in jobs
                for file_id in job.input_files
            }
            requests = (
                (custom_id, body, job_ends.get(file_id, unanswered))
                for file_id in _file_ids(self.input_files)
                for custom_id, body in requests_of_files(
                    self.hook, [file_id], with_body=self.results_include_request
                )
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


def _requests_of_items(task_id: str, items: Iterable[Any]) -> Iterator[tuple[str, Any]]:
    """``(custom_id, body)`` of request dicts given to the results operator, in order."""
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise MistralBatchInputError(
                f"{task_id}: requests[{position}] must be a {{'custom_id', 'body'}} object"
            )
        yield str(item.get("custom_id", position)), item.get("body")
