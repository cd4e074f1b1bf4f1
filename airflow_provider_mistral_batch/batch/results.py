"""Write the results of ended jobs: one JSONL row per request, joined with the input, in
input order, at a local path or an Airflow ``ObjectStoragePath``.

The output and error files of a batch job come in any order and may lack requests (a
cancelled or timed-out job). :func:`join_results` reads each result line once
(:mod:`.result_lines`), makes its row (:mod:`.result_rows`: ``success``, ``error``,
``invalid_output``, ``missing``, ``expired`` or ``cancelled``, with the answer's ``output``
when an :class:`.OutputSpec` is given) and joins the rows with the input on disk
(:mod:`.results_join`), so memory stays flat for 1,000,000 requests; the destination is
written under a temporary name, renamed only when the file is complete.
:func:`write_results` does it for the files of ended jobs, read through the hook.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_mistral_batch.batch.endpoint import TEXT_ENDPOINTS
from airflow_provider_mistral_batch.batch.output_spec import OutputSpec, output_spec
from airflow_provider_mistral_batch.batch.request_lines import requests_of_files
from airflow_provider_mistral_batch.batch.result_rows import (
    SUCCESS,
    UNANSWERED,
    describe_counts,
    unanswered_status,
    zero_counts,
)
from airflow_provider_mistral_batch.batch.results_join import InputRequest, ResultsJoin
from airflow_provider_mistral_batch.exceptions import MistralBatchInputError
from airflow_provider_mistral_batch.hooks.http.streams import replacing_file
from airflow_provider_mistral_batch.utils.paths import is_object_storage, make_folders, storage_path
from airflow_provider_mistral_batch.utils.wording import plural

if TYPE_CHECKING:
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
    from airflow_provider_mistral_batch.models import BatchJob


@dataclass(frozen=True)
class ResultsSummary:
    """What :func:`join_results` wrote.

    :param path: the destination, as a string.
    :param lines: rows written.
    :param missing: input requests with no line in any result file (rows ``missing``,
        ``expired`` or ``cancelled``; 0 when the input is unknown).
    :param missing_ids: the first 20 of them, in input order.
    :param unexpected: result lines whose custom_id is not in the input (written after the
        input's rows), plus result lines that repeat a custom_id (not written).
    :param input_known: whether the input was given (order and missing requests known).
    :param usage: every numeric ``usage``/``usage_info`` field of the API's answers (success
        and invalid_output rows: the API counted them), summed by key; ``prompt_tokens``,
        ``completion_tokens`` and ``total_tokens`` always.
    :param counts: rows written of each status, every status a key (0 included).
    """

    path: str
    lines: int
    missing: int
    missing_ids: list[str]
    unexpected: int
    input_known: bool
    usage: dict[str, int | float]
    counts: dict[str, int] = field(default_factory=zero_counts)

    @property
    def succeeded(self) -> int:
        """Rows with status ``success``."""
        return self.counts[SUCCESS]

    @property
    def failed(self) -> int:
        """Rows with any other status (error, invalid_output, missing, expired, cancelled)."""
        return self.lines - self.succeeded

    def as_xcom(self) -> dict[str, Any]:
        """A small JSON-safe dict of the outcome, for XCom."""
        return {
            "results_path": self.path,
            "lines": self.lines,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "counts": dict(self.counts),
            # None: without the input, missing requests cannot be counted.
            "missing_requests": self.missing if self.input_known else None,
            "missing_ids": list(self.missing_ids),
            "usage": dict(self.usage),
        }


def write_results(
    hook: MistralBatchHook,
    file_ids: Iterable[str | None],
    destination: str | os.PathLike[str] | Any,
    *,
    requests: Iterable[InputRequest] | None = None,
    include_request: bool = False,
    output: OutputSpec | None = None,
    superseded: int = 0,
    newest_files: Iterable[str | None] = (),
    newest_requests: Iterable[tuple[str, str]] = (),
) -> ResultsSummary:
    """Stream the output and error files of jobs into one joined JSONL row per request, and
    log the counts (a warning names the first requests without a result line).

    :param hook: reads the files (``iter_file_lines``: streamed, retried, resumed midway).
    :param file_ids: output and error file ids, read in this order; None and empty ids are
        skipped. A line that is not a result line fails with its number counted across
        these files.
    :param destination: a local path or an Airflow ``ObjectStoragePath``; replaced if it
        exists.
    :param requests: the input, in order, as ``(custom_id, body or None)``, or with a third
        item, the status of the request when no result line answers it (``missing``,
        ``expired`` or ``cancelled``); default None writes the rows in file order and cannot
        tell missing requests.
    :param include_request: add ``"request": body`` to each row; default False. Needs
        ``requests``.
    :param output: what each answer must be (:func:`.output_spec`): the rows carry the
        answer's text, or its validated value (an answer that does not validate is
        ``invalid_output``); default None: no ``output``, every answer is a success.
    :param superseded: see :func:`join_results`.
    :param newest_files: the output and error files of the jobs whose rows are final (see
        :func:`join_results`' ``newest_lines``), read before ``file_ids``.
    :param newest_requests: see :func:`join_results`.
    :return: the counts and usage totals; ``as_xcom()`` gives the small dict for XCom.
    """

    def lines(file_ids: Iterable[str | None]) -> Iterator[str]:
        for file_id in [file_id for file_id in file_ids if file_id]:
            yield from hook.iter_file_lines(file_id)

    summary = join_results(
        lines(file_ids),
        destination,
        requests=requests,
        include_request=include_request,
        output=output,
        superseded=superseded,
        newest_lines=lines(newest_files),
        newest_requests=newest_requests,
    )
    hook.log.info(
        "Wrote %s to %s: %s (%s unexpected); usage %s",
        plural(summary.lines, "result line"),
        summary.path,
        describe_counts(summary.counts),
        summary.unexpected,
        ", ".join(f"{key}={value}" for key, value in summary.usage.items()),
    )
    if summary.missing:
        how = ", ".join(
            f"{summary.counts[status]:,} {status}"
            for status in UNANSWERED
            if summary.counts[status]
        )
        hook.log.warning(
            "%s without a result line (%s); the first ones: %s",
            plural(summary.missing, "request"),
            how,
            ", ".join(summary.missing_ids),
        )
    return summary


def join_results(
    result_lines: Iterable[str],
    destination: str | os.PathLike[str] | Any,
    *,
    requests: Iterable[InputRequest] | None = None,
    include_request: bool = False,
    output: OutputSpec | None = None,
    superseded: int = 0,
    newest_lines: Iterable[str] = (),
    newest_requests: Iterable[tuple[str, str]] = (),
) -> ResultsSummary:
    """Write one joined JSONL row per request to ``destination``; return the counts.

    Nothing is held whole in memory (results and input are joined on disk, in a temporary
    folder). The destination appears only once complete; on any error it is left untouched
    and the temporary file is removed. A custom_id seen in several result lines keeps its
    first line.

    :param result_lines: the raw lines of the output and error files, chained, in any order.
    :param destination: a local path or an ``ObjectStoragePath``; replaced if it exists.
    :param requests: the input, in order, as ``(custom_id, body or None)`` with unique ids,
        or ``(custom_id, body or None, unanswered status)`` (see :func:`write_results`);
        default None: rows in file order, missing requests unknown.
    :param include_request: add ``"request": body`` to each row; default False. Needs
        ``requests``.
    :param output: what each answer must be (see :func:`write_results`); default None.
    :param superseded: result lines that repeat a custom_id on purpose, not counted as
        unexpected: resubmit rounds (:mod:`.resubmit`) pass their files newest round first,
        and each resubmitted request's line in an older round repeats its newer one. Default 0.
        With superseded lines the usage sums every answer line (the API billed each one).
    :param newest_lines: result lines read before ``result_lines``: those of the jobs that
        carried ``newest_requests`` last (a resubmit round's job that ended without success).
    :param newest_requests: ``(custom_id, unanswered status)`` of those jobs' requests: the row
        of each is its line in ``newest_lines``, else that status (``expired`` say), never an
        older round's line.
    :raises MistralBatchError: a line that is not a batch result line, naming its number
        (counted across the chained files).
    """
    if include_request and requests is None:
        raise MistralBatchInputError("include_request=True needs the input requests")
    with tempfile.TemporaryDirectory(prefix="mistral-results-") as workdir:
        join = ResultsJoin(
            Path(workdir), keep_bodies=include_request, output=output, superseded=superseded > 0
        )
        try:
            with _atomic_writer(destination) as out:
                # The input first: an input refused as it is read (a repeated custom_id, say)
                # fails before any result file is read.
                if requests is not None:
                    join.add_requests(requests)
                    join.add_newest(newest_requests)
                join.add_results(result_lines, newest_lines)
                written = join.write(out)
        finally:
            join.close()
    return ResultsSummary(
        path=str(destination),
        lines=written.lines,
        missing=written.missing,
        missing_ids=written.missing_ids,
        # Only repeats can be superseded (a resubmitted request may lack its newer line).
        unexpected=written.unexpected - min(superseded, join.repeated),
        input_known=requests is not None,
        usage=join.usage,
        counts=join.counts,
    )


@contextlib.contextmanager
def _atomic_writer(destination: Any) -> Iterator[IO[bytes]]:
    """A file that becomes ``destination`` when the block ends without error."""
    if is_object_storage(destination):
        # Only a local path keeps the mode of the file it replaces: an object has none (who
        # may read it is the store's policy), and fsspec's file:// filesystem keeps none.
        temp = destination.parent / f".{destination.name}.{uuid.uuid4().hex}.part"
        try:
            with temp.open("wb") as handle:
                yield handle
            temp.rename(destination)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        return
    with replacing_file(Path(os.fspath(destination))) as handle:
        yield handle


def rows_output(endpoints: Collection[str], output_type: Any = str) -> OutputSpec | None:
    """The check the rows of jobs on ``endpoints`` get for ``output_type``: a structured
    type's spec; for text (``str``), the answer's text (``output_spec(str)``) when every
    endpoint is chat or FIM completions, else nothing (their answers have no text).

    The one rule of the submit operator, the results operator and the resubmit rounds.
    """
    spec = output_spec(output_type)
    if spec.structured:
        return spec
    if endpoints and all(endpoint in TEXT_ENDPOINTS for endpoint in endpoints):
        return spec
    return None


def write_job_results(
    hook: MistralBatchHook,
    log: Any,
    jobs: Sequence[BatchJob],
    results_path: Any,
    *,
    output: OutputSpec | None = None,
    rounds: Sequence[Sequence[BatchJob]] = (),
) -> dict[str, Any]:
    """The submit operator's results: join its jobs' output and error files with the input,
    read back from the jobs' input files, at ``results_path``; the manifest for XCom.

    A request no result line answers is ``expired`` or ``cancelled`` when its job ended
    TIMEOUT_EXCEEDED or CANCELLED, else ``missing``.

    :param output: what each answer must be; default None: :func:`rows_output` (the
        answer's text for chat and FIM completions).
    :param rounds: the jobs of the resubmit rounds after ``jobs`` (round 1 first): a newer
        round's row replaces the older one of each request it sent again; a request whose
        newest job ended without success and without its line is ``expired``, ``cancelled``
        or ``missing`` as that job's end says.
    """
    # Newest round first: the join keeps the first line of each custom_id. A round's job that
    # did not succeed ended the rounds (it is in the last one): its rows are final.
    later = [job for round_jobs in reversed(rounds) for job in round_jobs]
    ending = [job for job in later if not job.status.is_success]
    file_ids = _files([job for job in later if job.status.is_success] + list(jobs))
    if not file_ids and not _files(ending):
        log.warning(
            "No results written to %s: the job(s) ended without output or error files",
            results_path,
        )
        return {}
    target = storage_path(results_path, "results_path")
    # Resumed after a deferral, this may be another worker than the one that checked.
    make_folders(target)
    requests: Iterator[InputRequest] | None = None
    # With results_path even a few requests are uploaded, so every job has input files; a job
    # made before results were asked for may have none: file order then.
    if all(job.input_files for job in jobs):
        requests = _requests_of_jobs(hook, jobs)
    else:
        log.warning(
            "A job has no input files to read the input back from: results follow the "
            "files' order and missing requests cannot be counted"
        )
    spec = output if output is not None else rows_output([job.endpoint for job in jobs])
    superseded = sum(job.total_requests for job in later)
    newest = (
        (custom_id, unanswered_status(job.status))
        for job in ending
        for custom_id, _ in requests_of_files(hook, job.input_files, with_body=False)
    )
    return write_results(
        hook,
        file_ids,
        target,
        requests=requests,
        output=spec,
        superseded=superseded,
        newest_files=_files(ending),
        newest_requests=newest,
    ).as_xcom()


def _files(jobs: Sequence[BatchJob]) -> list[str]:
    """The jobs' output and error files, in order."""
    return [f for job in jobs for f in (job.output_file, job.error_file) if f]


def _requests_of_jobs(hook: MistralBatchHook, jobs: Sequence[BatchJob]) -> Iterator[InputRequest]:
    """Each job's requests, read back from its input files, with the status a request of
    it has when no result line answers it."""
    for job in jobs:
        unanswered = unanswered_status(job.status)
        for custom_id, body in requests_of_files(hook, job.input_files, with_body=False):
            yield custom_id, body, unanswered


__all__ = [
    "TEXT_ENDPOINTS",
    "ResultsSummary",
    "join_results",
    "rows_output",
    "write_job_results",
    "write_results",
]
