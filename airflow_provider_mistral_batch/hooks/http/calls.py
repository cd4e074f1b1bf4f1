"""The JSON calls of the Files and Batch API: method, path, query and expected response model.

Built once here and sent by either the sync or the async path of the hook, so both twins of a
method always send the same request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypedDict, TypeVar
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


class JobFilters(TypedDict, total=False):
    """Filters of the job list (``GET /v1/batch/jobs``); each is optional, None means unset.

    ``status``: only jobs in one of these statuses. ``model``, ``agent_id``: only jobs of this
    model or agent. ``metadata``: only jobs whose metadata holds all these pairs.
    ``created_after``: only jobs created after this time (naive means UTC).
    ``created_by_me``: only jobs created with this API key's user. ``order_by``: ``-created``
    (newest first, the default) or ``created``.
    """

    status: Iterable[BatchJobStatus | str] | None
    model: str | None
    agent_id: str | None
    metadata: Mapping[str, str] | None
    created_after: datetime | None
    created_by_me: bool | None
    order_by: JobOrder


def job_list_query(filters: JobFilters) -> QueryParams:
    """The query of a job listing for ``filters`` (without the page), built once per listing."""
    _refuse_unknown(filters, JobFilters, "batch jobs")
    params: QueryParams = [("status", str(value)) for value in filters.get("status") or ()]
    if (model := filters.get("model")) is not None:
        params.append(("model", model))
    if (agent_id := filters.get("agent_id")) is not None:
        params.append(("agent_id", agent_id))
    for key, value in (filters.get("metadata") or {}).items():
        # The official SDKs explode the metadata object into top-level query keys.
        if key in BATCH_LIST_PARAMS:
            raise MistralBatchInputError(
                f"metadata filter key {key!r} clashes with a query parameter of the job list"
            )
        params.append((key, str(value)))
    if (created_after := filters.get("created_after")) is not None:
        params.append(("created_after", iso_datetime(created_after)))
    if (created_by_me := filters.get("created_by_me")) is not None:
        params.append(("created_by_me", "true" if created_by_me else "false"))
    params.append(("order_by", filters.get("order_by") or "-created"))
    return params


def list_batch_jobs_page(query: QueryParams, *, page: int, page_size: int) -> ApiCall[BatchJobList]:
    """One page of a job listing whose filters :func:`job_list_query` made."""
    params = (("page", str(page)), ("page_size", str(page_size)), *query)
    return ApiCall("GET", "/v1/batch/jobs", BatchJobList, params)


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


class FileFilters(TypedDict, total=False):
    """Filters of the file list (``GET /v1/files``); each is optional, None means unset.

    ``purpose``: only files of this purpose. ``sample_type``: only files of these sample types
    (e.g. ``batch_result``). ``source``: only files of these sources (``upload``,
    ``repository``, ``mistral``). ``search``: only files whose name contains this text.
    ``mimetypes``: only files of these content types.
    """

    purpose: FilePurpose | str | None
    sample_type: Iterable[SampleType | str] | None
    source: Iterable[str] | None
    search: str | None
    mimetypes: Iterable[str] | None


def file_list_query(filters: FileFilters) -> QueryParams:
    """The query of a file listing for ``filters`` (without the page), built once per listing."""
    _refuse_unknown(filters, FileFilters, "files")
    # ``include_total`` defaults to true, but the page walk relies on ``total`` to go past a
    # page the server capped below ``page_size``: ask for it rather than trust the default.
    params: QueryParams = [("include_total", "true")]
    if (purpose := filters.get("purpose")) is not None:
        params.append(("purpose", str(purpose)))
    params += [("sample_type", str(value)) for value in filters.get("sample_type") or ()]
    params += [("source", str(value)) for value in filters.get("source") or ()]
    if (search := filters.get("search")) is not None:
        params.append(("search", search))
    params += [("mimetypes", value) for value in filters.get("mimetypes") or ()]
    return params


def list_files_page(query: QueryParams, *, page: int, page_size: int) -> ApiCall[FileList]:
    """One page of a file listing whose filters :func:`file_list_query` made."""
    params = (("page", str(page)), ("page_size", str(page_size)), *query)
    return ApiCall("GET", "/v1/files", FileList, params)


def _refuse_unknown(filters: Mapping[str, Any], declared: type, listing: str) -> None:
    """A misspelled filter must fail, not list everything unfiltered."""
    unknown = sorted(set(filters) - set(declared.__annotations__))
    if unknown:
        known = ", ".join(declared.__annotations__)
        raise TypeError(f"unknown filter(s) for listing {listing}: {unknown}; known: {known}")


def iso_datetime(value: datetime) -> str:
    """ISO 8601 in UTC; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()
