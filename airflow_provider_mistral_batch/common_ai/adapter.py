"""Mistral's batch API as a batch adapter of Airflow's common-ai provider.

With this distribution installed, ``LLMBatchOperator(model_id="mistral:<model>", ...)`` and
``@task.llm_batch(model_id="mistral:<model>", ...)`` send their prompts as one Mistral batch
job of chat completions: common-ai finds :class:`MistralBatchAdapter` through the entry point
``mistral`` of the group ``airflow.providers.common.ai.batch_adapters`` and imports this module
only then. common-ai labels this interface experimental; the ``[common-ai]`` extra bounds it
to the minor versions tested.

common-ai builds the adapter from a connection's password (the API key) and host (the base
URL) alone, of a ``mistral`` or a ``pydanticai`` connection; the connection's extras (timeouts,
retries) never reach it, so the hook's defaults apply. An empty password falls back to the
``MISTRAL_API_KEY`` environment variable, as common-ai's own adapters fall back to their SDKs'
variables; with neither, building the adapter fails with an error saying so.

Every request becomes a line of an uploaded JSONL file (never inline requests, so one code
path serves 1 to 1,000,000 requests); its body names its model, so requests of one job may use
different Mistral models. Structured output asks for ``response_format`` built by
:mod:`~airflow_provider_mistral_batch.batch.output_spec`, as the provider's own operator does.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgspec
from airflow.providers.common.ai.batch.base import (
    BatchAdapter,
    BatchState,
    BatchStatus,
    ExtractedOutput,
    RawResultItem,
    SubmitResult,
)
from airflow.providers.common.ai.exceptions import LLMBatchInputError, LLMBatchLimitExceededError

from airflow_provider_mistral_batch.batch.output_spec import content_text, output_spec
from airflow_provider_mistral_batch.batch.result_lines import parse_result_line
from airflow_provider_mistral_batch.exceptions import MistralBatchError
from airflow_provider_mistral_batch.hooks.connection import ConnectionSettings
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import (
    DAG_ID_METADATA,
    MAP_INDEX_METADATA,
    MAX_FILE_BYTES,
    MAX_REQUESTS_PER_JOB,
    METADATA_VALUE_MAX_LENGTH,
    RUN_ID_METADATA,
    TASK_ID_METADATA,
    TIMEOUT_HOURS_MAX,
    TIMEOUT_HOURS_MIN,
    ApiEndpoint,
    BatchJob,
    BatchJobStatus,
    BatchResultLine,
    FilePurpose,
)

if TYPE_CHECKING:
    from airflow.providers.common.ai.batch.base import BatchRequest
    from airflow.providers.common.ai.batch.output_schema import OutputSpec

log = logging.getLogger(__name__)

#: Where an empty connection password sends the adapter for its key.
API_KEY_ENV: Final = "MISTRAL_API_KEY"
#: The job metadata keys that :meth:`MistralBatchAdapter.find_orphaned_batch` reads back.
KEY_METADATA: Final = "idempotency_key"
FINGERPRINT_METADATA: Final = "input_fingerprint"
#: How much of the input fingerprint goes in the metadata: ample for a cross-check.
FINGERPRINT_CHARS: Final = 16
#: The orphan lookup looks this far before the intent record's time: the job's ``created_at``
#: is whole seconds on the server's clock, the intent time this machine's, with microseconds.
ORPHAN_SLACK: Final = timedelta(seconds=300)

_STATUSES: Final[Mapping[BatchJobStatus, BatchStatus]] = {
    BatchJobStatus.QUEUED: "in_progress",
    BatchJobStatus.RUNNING: "in_progress",
    BatchJobStatus.CANCELLATION_REQUESTED: "in_progress",
    BatchJobStatus.SUCCESS: "completed",
    BatchJobStatus.FAILED: "failed",
    BatchJobStatus.TIMEOUT_EXCEEDED: "expired",
    BatchJobStatus.CANCELLED: "cancelled",
}
_WINDOW: Final = re.compile(r"\s*(\d+)\s*([hd])\s*", re.IGNORECASE)
_encode = msgspec.json.Encoder().encode
#: How much of a malformed result line a warning quotes.
_QUOTED_CHARS: Final = 200


class MistralBatchAdapter(BatchAdapter):
    """Batch adapter for Mistral's batch API (chat completions, ``/v1/chat/completions``).

    .. note::

        common-ai's batch interface is experimental: a minor release of it may change it.

    :param api_key: the key (the connection's password); None or empty: the
        ``MISTRAL_API_KEY`` environment variable, else an error.
    :param base_url: the API root (the connection's host, with or without ``/v1``); None:
        ``https://api.mistral.ai``.
    :param client: a :class:`MistralBatchHook` to use instead of building one (tests, or a hook
        on a ``mistral`` connection with its timeouts and retries).
    """

    name = "mistral"
    conn_types = frozenset({"pydanticai", "mistral"})
    max_requests = MAX_REQUESTS_PER_JOB
    max_payload_bytes = MAX_FILE_BYTES
    # Each body names its model and the job none, so the requests of one job may differ.
    allows_per_request_model = True

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        client: Any | None = None,
    ) -> None:
        self._client: MistralBatchHook = client if client is not None else _hook(api_key, base_url)

    @property
    def hook(self) -> MistralBatchHook:
        """The hook every call goes through (its HTTP client, retry policy and masking)."""
        return self._client

    # ------------------------------------------------------------------ requests

    def build_output_directive(self, spec: OutputSpec) -> dict[str, Any]:
        """``{"response_format": ...}`` for a structured output, ``{}`` for text: the directive
        of the provider's own operator, built by the same code."""
        if not spec.is_structured:
            return {}
        return {"response_format": output_spec(spec.output_type).response_format()}

    def validate_requests(
        self,
        requests: list[BatchRequest],
        *,
        model: str,
        output_spec: OutputSpec,
        idempotency_key: str,
        system_prompt: str = "",
        max_tokens: int | None = 1024,
        request_params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Refuse, before any call, a batch over Mistral's limits (requests per job, the input
        file's size with the output directive in every line), a request naming another
        provider's model, or custom ids too long."""
        self.check_custom_id_length(idempotency_key, len(requests))
        if len(requests) > self.max_requests:
            raise LLMBatchLimitExceededError(
                f"A Mistral batch job takes at most {self.max_requests:,} requests; got "
                f"{len(requests):,}. Split the input with .expand(), or use this provider's "
                "MistralBatchOperator, which shards a large input over several jobs."
            )
        directive = self.build_output_directive(output_spec)
        size = 0
        lines = request_lines(
            requests,
            model=model,
            key="0" * len(idempotency_key),
            directive=directive,
            system_prompt=system_prompt,
            max_tokens=max_tokens,
            request_params=request_params,
            resolve=self.resolve_request_model,
        )
        for number, line in enumerate(lines, start=1):
            size += len(line)
            if size > self.max_payload_bytes:
                raise LLMBatchLimitExceededError(
                    f"A Mistral batch input file holds at most {self.max_payload_bytes:,} bytes; "
                    f"this input reaches {size:,} bytes at request {number:,} of "
                    f"{len(requests):,} (the output_type's schema adds "
                    f"{len(_encode(directive)):,} bytes to each). Split the input with .expand()."
                )

    def submit(
        self,
        requests: list[BatchRequest],
        *,
        model: str,
        idempotency_key: str,
        input_fingerprint: str,
        output_spec: OutputSpec,
        system_prompt: str = "",
        max_tokens: int | None = 1024,
        request_params: dict[str, Any] | None = None,
        completion_window: str = "24h",
        **kwargs: Any,
    ) -> SubmitResult:
        """Upload the requests as a JSONL file and create the job; its metadata records the
        key and the fingerprint (read back by :meth:`find_orphaned_batch`) and the task."""
        hours = timeout_hours(completion_window)
        lines = request_lines(
            requests,
            model=model,
            key=idempotency_key,
            directive=self.build_output_directive(output_spec),
            system_prompt=system_prompt,
            max_tokens=max_tokens,
            request_params=request_params,
            resolve=self.resolve_request_model,
        )
        name = f"{idempotency_key}.jsonl"
        # Written to disk, then streamed up: a million requests are never held in memory.
        with tempfile.TemporaryDirectory(prefix="mistral-common-ai-") as folder:
            path = Path(folder) / name
            with path.open("wb") as handle:
                handle.writelines(lines)
            uploaded = self.hook.upload_file(path, filename=name, purpose=FilePurpose.BATCH)
        metadata = {
            KEY_METADATA: idempotency_key,
            FINGERPRINT_METADATA: input_fingerprint[:FINGERPRINT_CHARS],
            **_task_metadata(),
        }
        job = self.hook.create_batch_job(
            endpoint=ApiEndpoint.CHAT_COMPLETIONS,
            input_files=[uploaded.id],
            metadata=metadata,
            timeout_hours=hours,
        )
        log.info(
            "Submitted %s requests as Mistral batch job %s (input file %s, timeout %s h)",
            len(requests),
            job.id,
            uploaded.id,
            hours,
        )
        return SubmitResult(batch_id=job.id, provider_input_ref=uploaded.id)

    # ------------------------------------------------------------------ the job

    def get_batch(self, batch_id: str) -> BatchState:
        """The job's status and counts; a job the API does not know raises
        :class:`~airflow_provider_mistral_batch.exceptions.MistralNotFoundError`
        (``status_code`` 404: common-ai then submits afresh)."""
        return batch_state(self.hook.get_batch_job(batch_id), self.hook.mask)

    def cancel_batch(self, batch_id: str) -> None:
        """Ask Mistral to cancel the job (it goes through CANCELLATION_REQUESTED)."""
        self.hook.cancel_batch_job(batch_id)

    def find_orphaned_batch(
        self, idempotency_key: str, input_fingerprint: str, not_before: str
    ) -> str | None:
        """The newest job whose metadata holds this key and fingerprint, created at most
        5 minutes before ``not_before`` (ISO 8601; empty: any time), or None.

        The job list filters on metadata and creation time on the server; both are checked
        here again. A failed lookup raises (common-ai then does not submit again).
        """
        metadata = {
            KEY_METADATA: idempotency_key,
            FINGERPRINT_METADATA: input_fingerprint[:FINGERPRINT_CHARS],
        }
        since = _parse_time(not_before) - ORPHAN_SLACK if not_before else None
        jobs = self.hook.list_batch_jobs(metadata=metadata, created_after=since)
        found = newest_orphan(jobs, metadata, since)
        if found is not None:
            log.info("Found Mistral batch job %s submitted by an earlier attempt", found.id)
            return found.id
        return None

    # ------------------------------------------------------------------ results

    def iter_results(self, batch_id: str) -> Iterator[RawResultItem]:
        """The job's result lines, streamed: the output file, then the error file.

        Reads the job now (an unknown id raises here) and the files as the iterator is
        consumed. A line that is not a result line of this batch (not UTF-8, longer than
        64 MiB, not JSON, no custom id of the form ``<key>-<index>``) is skipped with a
        warning and reading goes on: its request then counts as missing.
        """
        job = self.hook.get_batch_job(batch_id)
        files = [file_id for file_id in (job.output_file, job.error_file) if file_id]
        return self._stream(batch_id, files)

    def _stream(self, batch_id: str, file_ids: Iterable[str]) -> Iterator[RawResultItem]:
        # The same bad line comes back on every retry: skipping it is the only way the other
        # results ever land.
        for file_id in file_ids:
            skipped = _SkippedLines(batch_id, self.hook.mask)
            lines = self.hook.iter_file_lines(file_id, on_bad_line=skipped)
            for read, line in enumerate(lines, start=1):
                where = f"file {file_id} line {read + skipped.count}"
                try:
                    item = result_item(parse_result_line(line, where), self.hook.mask)
                except (MistralBatchError, ValueError) as exc:
                    skipped.warn(exc, line)
                    continue
                yield item

    def extract_output(self, raw: RawResultItem, spec: OutputSpec) -> ExtractedOutput:
        """The answer's text (a reasoning model's text chunks only): ``text``, or
        ``json_text`` for a structured output; ``absent`` when the answer has none."""
        text = content_text(raw.raw)
        if text is None:
            return ExtractedOutput(kind="absent")
        return ExtractedOutput(kind="json_text" if spec.is_structured else "text", text=text)


# ---------------------------------------------------------------------- mapping


def request_lines(
    requests: Iterable[BatchRequest],
    *,
    model: str,
    key: str,
    directive: Mapping[str, Any],
    system_prompt: str | None,
    max_tokens: int | None,
    request_params: Mapping[str, Any] | None,
    resolve: Callable[..., str],
) -> Iterator[bytes]:
    """The input file's lines (JSON, each ending with a newline), one per request.

    A body is ``request_params``, then the request's own ``params``, then the keys the
    adapter manages (``model``, ``messages``, ``max_tokens`` and, for a structured output,
    ``response_format``): parameters never replace those.

    :param key: the custom ids' prefix: request ``i`` is ``<key>-<i>``.
    :param resolve: common-ai's ``resolve_request_model`` (a foreign prefix raises).
    """
    for index, request in enumerate(requests):
        messages: list[dict[str, str]] = []
        system = request.get("system_prompt") or system_prompt
        if system:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": request["prompt"]})
        body: dict[str, Any] = {
            **(request_params or {}),
            **(request.get("params") or {}),
            "model": resolve(request.get("model"), default_bare_model=model, request_index=index),
            "messages": messages,
        }
        tokens = request.get("max_tokens") or max_tokens
        if tokens:
            body["max_tokens"] = tokens
        body.update(directive)
        yield _encode({"custom_id": f"{key}-{index}", "body": body}) + b"\n"


def timeout_hours(completion_window: str) -> int:
    """Mistral's ``timeout_hours`` for common-ai's ``completion_window`` (``"24h"``, ``"2d"``).

    :raises LLMBatchInputError: not hours or days, or outside 1 to 168 hours.
    """
    match = _WINDOW.fullmatch(str(completion_window))
    hours = int(match[1]) * (24 if match[2].lower() == "d" else 1) if match else 0
    if not TIMEOUT_HOURS_MIN <= hours <= TIMEOUT_HOURS_MAX:
        raise LLMBatchInputError(
            f"completion_window={completion_window!r}: a Mistral batch job's timeout is "
            f"{TIMEOUT_HOURS_MIN} to {TIMEOUT_HOURS_MAX} hours, written like '24h' or '2d'."
        )
    return hours


def batch_state(job: BatchJob, mask: Callable[[str], str]) -> BatchState:
    """common-ai's view of a job: its status, counts and, for a failed job, its errors.

    Requests neither succeeded nor failed when a job timed out or was cancelled count as
    expired or cancelled. A status this release does not know is still running: never
    taken for an end.

    :param mask: applied to what it quotes of the server, the errors and an unknown status
        (the hook's ``mask``: a server may echo the key, and common-ai logs the message and
        keeps it in its manifest).
    """
    status = _STATUSES.get(job.status)
    if status is None:
        log.warning("Mistral batch job %s has an unknown status %s", job.id, mask(job.status))
        status = "in_progress"
    rest = max(job.total_requests - job.succeeded_requests - job.failed_requests, 0)
    counts = {
        "succeeded": job.succeeded_requests,
        "errored": job.failed_requests,
        "expired": rest if status == "expired" else 0,
        "cancelled": rest if status == "cancelled" else 0,
    }
    message = None
    if status == "failed":
        quoted = "; ".join(
            f"{error.message} (x{error.count})" if error.count > 1 else error.message
            for error in job.errors
        )
        message = f"Mistral batch job {job.id} failed" + (f": {mask(quoted)}" if quoted else ".")
    return BatchState(status=status, counts=counts, error_message=message)


class _SkippedLines:
    """Warns of the result lines of one file that are skipped, masked (a server may echo the
    key), and counts those the hook's reader skipped (they are not handed on)."""

    def __init__(self, batch_id: str, mask: Callable[[str], str]) -> None:
        self.batch_id = batch_id
        self.mask = mask
        self.count = 0

    def __call__(self, error: MistralBatchError) -> None:
        """A line the reader skipped: not UTF-8 text, or too long."""
        self.count += 1
        self.warn(error)

    def warn(self, error: Exception, line: str | None = None) -> None:
        """Warn of a skipped line, quoting its start when given."""
        # Masked whole, then cut: a cut first could leave the start of a key unmasked.
        quoted = f" ({self.mask(line)[:_QUOTED_CHARS]})" if line is not None else ""
        log.warning(
            "Skipping a result line of batch %s: %s%s", self.batch_id, self.mask(str(error)), quoted
        )


def result_item(line: BatchResultLine, mask: Callable[[str], str] | None = None) -> RawResultItem:
    """common-ai's view of one result line.

    :param mask: applied to error messages (the hook's ``mask``: a server may echo the key).
    :raises ValueError: the line's custom id is not ``<key>-<index>``.
    """
    custom_id = line.custom_id or ""
    _, dash, tail = custom_id.rpartition("-")
    if not dash or not tail.isdigit():
        raise ValueError(f"custom_id {line.custom_id!r} is not <key>-<index>")
    body = line.response.body if line.response is not None else None
    body = body if isinstance(body, dict) else {}
    if not line.succeeded:
        message = line.error_message or "unknown error"
        return RawResultItem(
            custom_id=custom_id,
            index=int(tail),
            provider_status="errored",
            model=None,
            usage=None,
            finish_reason=None,
            error={
                "type": "provider_error",
                "message": mask(message) if mask is not None else message,
                "provider_code": _error_code(line, body),
                "stage": "provider",
            },
            raw=None,
        )
    choices = body.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    choice = choice if isinstance(choice, dict) else {}
    message_part = choice.get("message")
    usage = body.get("usage")
    return RawResultItem(
        custom_id=custom_id,
        index=int(tail),
        provider_status="success",
        model=body.get("model"),
        usage=(
            {
                "input_tokens": int(usage.get("prompt_tokens") or 0),
                "output_tokens": int(usage.get("completion_tokens") or 0),
            }
            if isinstance(usage, dict)
            else None
        ),
        finish_reason=choice.get("finish_reason"),
        error=None,
        raw=message_part.get("content") if isinstance(message_part, dict) else None,
    )


def newest_orphan(
    jobs: Iterable[BatchJob], metadata: Mapping[str, str], since: datetime | None
) -> BatchJob | None:
    """The newest of ``jobs`` whose metadata holds ``metadata`` and made at or after
    ``since`` (None: any time)."""
    floor = since.timestamp() if since is not None else None
    best: BatchJob | None = None
    for job in jobs:
        tags = job.metadata or {}
        if any(tags.get(name) != value for name, value in metadata.items()):
            continue
        if floor is not None and job.created_at < floor:
            continue
        if best is None or (job.created_at, job.id) > (best.created_at, best.id):
            best = job
    return best


def _error_code(line: BatchResultLine, body: Mapping[str, Any]) -> str | None:
    code = line.error.get("code") if isinstance(line.error, dict) else None
    if code is None:
        code = body.get("code")
    if code is None and line.response is not None:
        code = line.response.status_code
    return str(code) if code is not None else None


def _parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _task_metadata() -> dict[str, str]:
    """The job's task, as the provider's operator tags its jobs, so the provider's UI links
    a job to its task and authorizes it by its DAG; none outside a task."""
    from airflow.sdk import get_current_context

    try:
        ti = get_current_context()["ti"]
    except (RuntimeError, KeyError):
        return {}
    limit = METADATA_VALUE_MAX_LENGTH
    map_index = ti.map_index if ti.map_index is not None else -1
    return {
        DAG_ID_METADATA: str(ti.dag_id)[:limit],
        TASK_ID_METADATA: str(ti.task_id)[:limit],
        RUN_ID_METADATA: str(ti.run_id)[:limit],
        MAP_INDEX_METADATA: str(map_index),
    }


def _hook(api_key: str | None, base_url: str | None) -> MistralBatchHook:
    """A hook on the key and base URL common-ai passes (or ``MISTRAL_API_KEY``)."""
    where = "The connection given as llm_conn_id"
    if not (api_key or "").strip():
        from_env = os.environ.get(API_KEY_ENV, "").strip()
        if not from_env:
            raise MistralBatchError(
                f"{where} has no API key (its password is empty) and {API_KEY_ENV} is not "
                "set: put the key in the connection's password field."
            )
        # A key read from the environment is no connection secret Airflow already masks.
        from airflow.sdk.log import mask_secret

        mask_secret(from_env)
        api_key, where = from_env, API_KEY_ENV
    return MistralBatchHook.from_settings(
        ConnectionSettings.from_credentials(api_key, base_url, where=where)
    )


__all__ = ["API_KEY_ENV", "MistralBatchAdapter"]
