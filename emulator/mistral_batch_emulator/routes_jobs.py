"""Routes of the Batch API."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from airflow_provider_mistral_batch.models import (
    ApiEndpoint,
    BatchJobList,
    BatchJobStatus,
    BatchRequest,
    CreateBatchJobRequest,
    DeletedBatchJob,
)
from mistral_batch_emulator.catalog import accepted_models, unknown_model_message
from mistral_batch_emulator.deps import Caller, State, known_values, reply
from mistral_batch_emulator.errors import invalid, invalid_model, not_found
from mistral_batch_emulator.files import now
from mistral_batch_emulator.jobs import JobFilter, JobRecord
from mistral_batch_emulator.middleware import FAULT_SCOPE_KEY
from mistral_batch_emulator.state import EmulatorState

router = APIRouter()

# Query keys of GET /v1/batch/jobs with a meaning; any other key is a metadata filter.
_LIST_PARAMETERS = frozenset(
    {
        "page",
        "page_size",
        "model",
        "agent_id",
        "metadata",
        "created_after",
        "created_by_me",
        "status",
        "order_by",
    }
)


def _get_job(state: EmulatorState, job_id: uuid.UUID) -> JobRecord:
    job = state.jobs.get(str(job_id))
    if job is None:
        raise not_found("Batch job", str(job_id))
    return job


def _check_input_files(input_files: list[str] | None) -> list[str]:
    """The ids in canonical form; a 422 for an id that is not a UUID (the contract's format)."""
    canonical = []
    for index, value in enumerate(input_files or []):
        try:
            canonical.append(str(uuid.UUID(value)))
        except ValueError:
            raise invalid(
                ("body", "input_files", index),
                "Input should be a valid UUID",
                value,
                "uuid_parsing",
            ) from None
    return canonical


def _check_model(model: str | None, state: EmulatorState) -> None:
    """A 400 ``invalid_model`` when the job names a model the emulator does not know.

    Only the job's own ``model``: a model in a request body is checked when that request
    runs, and fails that request alone (the real API reads the bodies after creation).
    """
    if model is None:
        return
    known = accepted_models(state.config.models)
    if known is not None and model not in known:
        raise invalid_model(unknown_model_message(model, known))


def _write_inline(path: Path, requests: list[BatchRequest]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for item in requests:
            line = {"custom_id": item.custom_id, "body": item.body}
            out.write(json.dumps(line, separators=(",", ":"), ensure_ascii=False))
            out.write("\n")


@router.post("/v1/batch/jobs", response_model=None)
async def create_job(body: CreateBatchJobRequest, state: State, caller: Caller) -> JSONResponse:
    """Create a job; it starts QUEUED and runs in the background."""
    if not body.endpoint.is_known:
        expected = ", ".join(repr(item.value) for item in ApiEndpoint)
        raise invalid(
            ("body", "endpoint"), f"Input should be {expected}", body.endpoint.value, "enum"
        )
    input_files = _check_input_files(body.input_files)
    _check_model(body.model, state)
    job_id = str(uuid.uuid4())
    inline_path = None
    if body.requests:
        inline_path = state.files.data_dir / f"{job_id}-requests.jsonl"
        _write_inline(inline_path, body.requests)
    job = JobRecord(
        id=job_id,
        endpoint=body.endpoint,
        input_files=input_files,
        model=body.model,
        agent_id=body.agent_id,
        metadata=body.metadata,
        timeout_hours=body.timeout_hours,
        created_at=now(),
        inline_path=inline_path,
        created_by=caller,
    )
    state.start_job(job)
    return reply(job.to_model())


def _metadata_filter(request: Request, metadata: str | None) -> dict[str, str]:
    """Metadata pairs from ``metadata=<JSON object>``, ``metadata[key]=v`` and unknown keys."""
    pairs: dict[str, str] = {}
    if metadata is not None:
        try:
            parsed = json.loads(metadata)
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise invalid(
                ("query", "metadata"), "Input should be a JSON object", metadata, "dict_type"
            )
        pairs.update({str(key): _as_text(value) for key, value in parsed.items()})
    for key, value in request.query_params.multi_items():
        if key.startswith("metadata[") and key.endswith("]"):
            pairs[key[len("metadata[") : -1]] = value
        elif key not in _LIST_PARAMETERS:
            pairs[key] = value
    return pairs


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _parse_created_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise invalid(
            ("query", "created_after"),
            "Input should be a valid datetime (ISO 8601)",
            value,
            "datetime_from_date_parsing",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@router.get("/v1/batch/jobs", response_model=None)
async def list_jobs(
    request: Request,
    state: State,
    caller: Caller,
    page: Annotated[int, Query(ge=0)] = 0,
    page_size: Annotated[int, Query(ge=1)] = 100,
    model: str | None = None,
    agent_id: str | None = None,
    metadata: str | None = None,
    created_after: str | None = None,
    created_by_me: bool = False,
    status: Annotated[list[str] | None, Query()] = None,
    order_by: Literal["created", "-created"] = "-created",
) -> JSONResponse:
    """One page of the jobs; unknown query keys filter on metadata.

    ``created_by_me=true`` keeps the jobs created with the caller's API key; the emulator
    has no users, so one key stands for one user.
    """
    after = _parse_created_after(created_after)
    flt = JobFilter(
        model=model,
        agent_id=agent_id,
        created_by=caller if created_by_me else None,
        # created_at has whole seconds: compare at that resolution, inclusively.
        created_after=math.floor(after) if after is not None else None,
        statuses=known_values(BatchJobStatus, status, ("query", "status")),
        metadata=_metadata_filter(request, metadata) or None,
    )
    matching = state.jobs.find(flt, newest_first=order_by == "-created")
    start = page * page_size
    if request.scope.get(FAULT_SCOPE_KEY) == "endless_pages" and matching:
        # Every page full, the matching jobs again in turn, and always one more page.
        chosen = [matching[(start + k) % len(matching)] for k in range(page_size)]
        data = [job.to_model() for job in chosen]
        return reply(BatchJobList(data=data, total=start + 2 * page_size))
    data = [job.to_model() for job in matching[start : start + page_size]]
    return reply(BatchJobList(data=data, total=len(matching)))


def _inline_outputs(job: JobRecord) -> list[dict[str, Any]]:
    """The result lines written so far (output lines, then error lines)."""
    outputs: list[dict[str, Any]] = []
    for path in job.result_paths:
        try:
            with path.open("rb") as handle:
                outputs.extend(json.loads(line) for line in handle if line.strip())
        except FileNotFoundError:
            continue
    return outputs


@router.get("/v1/batch/jobs/{job_id}", response_model=None)
async def get_job(job_id: uuid.UUID, state: State, inline: bool | None = None) -> JSONResponse:
    """A job; with ``inline=true`` an inline-requests job also carries its ``outputs``."""
    job = _get_job(state, job_id)
    outputs = _inline_outputs(job) if inline and job.is_inline else None
    return reply(job.to_model(outputs))


@router.post("/v1/batch/jobs/{job_id}/cancel", response_model=None)
async def cancel_job(job_id: uuid.UUID, state: State) -> JSONResponse:
    """Request cancellation: CANCELLATION_REQUESTED now, CANCELLED shortly after."""
    job = _get_job(state, job_id)
    if not job.status.is_terminal:
        job.status = BatchJobStatus.CANCELLATION_REQUESTED
        job.cancel_requested.set()
    return reply(job.to_model())


@router.delete("/v1/batch/jobs/{job_id}", response_model=None)
async def delete_job(job_id: uuid.UUID, state: State) -> JSONResponse:
    """Delete a job, cancelling it first when it is still running."""
    job = _get_job(state, job_id)
    if not job.status.is_terminal:
        job.status = BatchJobStatus.CANCELLATION_REQUESTED
        await state.stop_job(job)
    state.jobs.remove(job.id)
    return reply(DeletedBatchJob(id=job.id, deleted=True))


__all__ = ["router"]
