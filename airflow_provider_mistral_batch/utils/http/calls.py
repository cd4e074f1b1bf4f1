"""The JSON calls of the Files and Batch API: method, path, query and expected response model.

Built once here and sent by either the sync or the async path of the hook, so both twins of a
method always send the same request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

from airflow_provider_mistral_batch.exceptions import MistralBatchInputError
from airflow_provider_mistral_batch.models import (
    BatchJob,
    BatchJobList,
    BatchJobStatus,
    CreateBatchJobRequest,
    DeletedBatchJob,
    DeletedFile,
    FileList,
    FilePurpose,
    RetrievedFile,
    SampleType,
    SignedUrl,
)

ModelT = TypeVar("ModelT", bound=BaseModel)
QueryParams = list[tuple[str, str]]
JobOrder = Literal["created", "-created"]

#: Query keys of ``GET /v1/batch/jobs``: a metadata filter may not reuse them.
BATCH_LIST_PARAMS = frozenset(
    {"page", "page_size", "model", "agent_id", "metadata", "created_after", "created_by_me"}
    | {"status", "order_by"}
)


@dataclass(frozen=True)
class ApiCall(Generic[ModelT]):
    """One JSON request and the model its 200 response parses into."""

    method: str
    path: str
    response_model: type[ModelT]
    params: tuple[tuple[str, str], ...] | None = None
    json: dict[str, Any] | None = None


def path_id(kind: str, value: str) -> str:
    """An id made safe for a URL path, refusing an empty one before anything is sent."""
    if not isinstance(value, str) or not value.strip():
        raise MistralBatchInputError(f"{kind} id must be a non-empty string, got {value!r}")
    return quote(value.strip(), safe="")


def get_batch_job(job_id: str, *, inline: bool = False) -> ApiCall[BatchJob]:
    params = (("inline", "true"),) if inline else None
    return ApiCall("GET", f"/v1/batch/jobs/{path_id('batch job', job_id)}", BatchJob, params)


def cancel_batch_job(job_id: str) -> ApiCall[BatchJob]:
    return ApiCall("POST", f"/v1/batch/jobs/{path_id('batch job', job_id)}/cancel", BatchJob)


def delete_batch_job(job_id: str) -> ApiCall[DeletedBatchJob]:
    return ApiCall("DELETE", f"/v1/batch/jobs/{path_id('batch job', job_id)}", DeletedBatchJob)


def create_batch_job(body: CreateBatchJobRequest) -> ApiCall[BatchJob]:
    return ApiCall(
        "POST",
        "/v1/batch/jobs",
        BatchJob,
        json=body.model_dump(mode="json", exclude_none=True),
    )


def list_batch_jobs_page(
    *,
    page: int,
    page_size: int,
    status: Iterable[BatchJobStatus | str] | None = None,
    model: str | None = None,
    agent_id: str | None = None,
    metadata: Mapping[str, str] | None = None,
    created_after: datetime | None = None,
    created_by_me: bool | None = None,
    order_by: JobOrder = "-created",
) -> ApiCall[BatchJobList]:
    params: QueryParams = [("page", str(page)), ("page_size", str(page_size))]
    params += [("status", str(value)) for value in status or ()]
    if model is not None:
        params.append(("model", model))
    if agent_id is not None:
        params.append(("agent_id", agent_id))
    for key, value in (metadata or {}).items():
        # The official SDKs explode the metadata object into top-level query keys.
        if key in BATCH_LIST_PARAMS:
            raise MistralBatchInputError(
                f"metadata filter key {key!r} clashes with a query parameter of the job list"
            )
        params.append((key, str(value)))
    if created_after is not None:
        params.append(("created_after", iso_datetime(created_after)))
    if created_by_me is not None:
        params.append(("created_by_me", "true" if created_by_me else "false"))
    params.append(("order_by", order_by))
    return ApiCall("GET", "/v1/batch/jobs", BatchJobList, tuple(params))


def get_file(file_id: str) -> ApiCall[RetrievedFile]:
    return ApiCall("GET", f"/v1/files/{path_id('file', file_id)}", RetrievedFile)


def delete_file(file_id: str) -> ApiCall[DeletedFile]:
    return ApiCall("DELETE", f"/v1/files/{path_id('file', file_id)}", DeletedFile)


def get_file_url(file_id: str, *, expiry_hours: int = 24) -> ApiCall[SignedUrl]:
    if not 1 <= expiry_hours <= 168:
        raise MistralBatchInputError(
            f"expiry_hours must be between 1 and 168, got {expiry_hours!r}"
        )
    params = (("expiry", str(expiry_hours)),)
    return ApiCall("GET", f"/v1/files/{path_id('file', file_id)}/url", SignedUrl, params)


def list_files_page(
    *,
    page: int,
    page_size: int,
    purpose: FilePurpose | str | None = None,
    sample_type: Iterable[SampleType | str] | None = None,
    source: Iterable[str] | None = None,
    search: str | None = None,
    mimetypes: Iterable[str] | None = None,
) -> ApiCall[FileList]:
    # ``include_total`` defaults to true, but the page walk relies on ``total`` to go past a
    # page the server capped below ``page_size``: ask for it rather than trust the default.
    params: QueryParams = [
        ("page", str(page)),
        ("page_size", str(page_size)),
        ("include_total", "true"),
    ]
    if purpose is not None:
        params.append(("purpose", str(purpose)))
    params += [("sample_type", str(value)) for value in sample_type or ()]
    params += [("source", str(value)) for value in source or ()]
    if search is not None:
        params.append(("search", search))
    params += [("mimetypes", value) for value in mimetypes or ()]
    return ApiCall("GET", "/v1/files", FileList, tuple(params))


def iso_datetime(value: datetime) -> str:
    """ISO 8601 in UTC; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()
