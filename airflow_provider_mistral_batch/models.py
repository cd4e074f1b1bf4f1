"""Pydantic models of every wire shape of Mistral's Files and Batch API.

This module is the one description of the contract (``mistral-batch-files-openapi.yaml``):
the hook parses responses with it and the emulator produces responses with it. Response
models tolerate fields they do not know, and enums accept values they do not know, so a new
server value never crashes a client.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

#: Most inline ``requests`` one create-job call may carry.
MAX_INLINE_REQUESTS: Final = 10_000
#: Most requests one batch job may carry.
MAX_REQUESTS_PER_JOB: Final = 1_000_000
#: Largest file the Files API accepts, in bytes (512 MB).
MAX_FILE_BYTES: Final = 512 * 1024 * 1024
METADATA_KEY_MAX_LENGTH: Final = 32
METADATA_VALUE_MAX_LENGTH: Final = 512
TIMEOUT_HOURS_MIN: Final = 1
TIMEOUT_HOURS_MAX: Final = 168
DEFAULT_TIMEOUT_HOURS: Final = 24

# The job metadata keys this provider writes, declared here because every floor reads them:
# the hook tags each job it creates with the create's idempotency key (a retried create looks
# for it); the operator tags its jobs with its task (reattach and duplicates use the task key;
# the UI links a job to its task and authorizes by its DAG).
#: The idempotency key of the create call that made the job.
IDEMPOTENCY_KEY_METADATA: Final = "airflow_idempotency_key"
#: The task key (task instance and input) that a retry of the task reattaches by.
TASK_KEY_METADATA: Final = "airflow_task_key"
DAG_ID_METADATA: Final = "airflow_dag_id"
RUN_ID_METADATA: Final = "airflow_run_id"
TASK_ID_METADATA: Final = "airflow_task_id"
MAP_INDEX_METADATA: Final = "airflow_map_index"
#: ``index/count`` of a job that is one shard of a task's input.
SHARD_METADATA: Final = "airflow_shard"
#: The resubmit round of a job that sends failed requests again (``1``, ``2``...); absent on
#: the task's first jobs (round 0).
ROUND_METADATA: Final = "airflow_round"

#: A job's request counts: the contract says only "integer"; the server's are 64-bit. A larger
#: one is refused (an unexpected response), so counts never overflow the float arithmetic
#: of a job's progress and failed share.
RequestCount = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class OpenStrEnum(StrEnum):
    """A string enum that also accepts values it does not know.

    An unknown value becomes a pseudo-member (equal to its string, not one of the declared
    members), so code that compares against known members stays correct and nothing raises.
    """

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, str):
            return None
        cache: dict[str, Any] = cls.__dict__.get("_unknown_members_cache", {})
        if not cache:
            type.__setattr__(cls, "_unknown_members_cache", cache)
        member = cache.get(value)
        if member is None:
            member = str.__new__(cls, value)
            member._name_ = value
            member._value_ = value
            cache[value] = member
        return member

    @property
    def is_known(self) -> bool:
        """Whether this value is one the contract declares."""
        return self._value_ in type(self)._value2member_map_


class BatchJobStatus(OpenStrEnum):
    """Status of a batch job."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    TIMEOUT_EXCEEDED = "TIMEOUT_EXCEEDED"
    CANCELLATION_REQUESTED = "CANCELLATION_REQUESTED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        """Whether the job has ended; an unknown status is not terminal."""
        return self in _TERMINAL_STATUSES

    @property
    def is_success(self) -> bool:
        """Whether the job ended successfully; an unknown status is never success."""
        return self is BatchJobStatus.SUCCESS

    @classmethod
    def active(cls) -> tuple[BatchJobStatus, ...]:
        """The known statuses of a job that has not ended, in the order a job goes through
        them: QUEUED, RUNNING, CANCELLATION_REQUESTED."""
        return _ACTIVE_STATUSES


_TERMINAL_STATUSES: Final = frozenset(
    {
        BatchJobStatus.SUCCESS,
        BatchJobStatus.FAILED,
        BatchJobStatus.TIMEOUT_EXCEEDED,
        BatchJobStatus.CANCELLED,
    }
)
_ACTIVE_STATUSES: Final = (
    BatchJobStatus.QUEUED,
    BatchJobStatus.RUNNING,
    BatchJobStatus.CANCELLATION_REQUESTED,
)


#: The form of an API endpoint: ``/v1/`` then one or more path segments, none of them empty,
#: ``.`` or ``..``, and no query string.
_ENDPOINT_FORM: Final = re.compile(r"/v1(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+")


class ApiEndpoint(OpenStrEnum):
    """The API endpoint a batch job sends its requests to.

    Open like every enum here: an endpoint Mistral adds after this release is a pseudo-member
    (``is_known`` False) that still validates and is sent as given.
    """

    CHAT_COMPLETIONS = "/v1/chat/completions"
    EMBEDDINGS = "/v1/embeddings"
    FIM_COMPLETIONS = "/v1/fim/completions"
    MODERATIONS = "/v1/moderations"
    CHAT_MODERATIONS = "/v1/chat/moderations"
    OCR = "/v1/ocr"
    CLASSIFICATIONS = "/v1/classifications"
    CHAT_CLASSIFICATIONS = "/v1/chat/classifications"
    CONVERSATIONS = "/v1/conversations"
    AUDIO_TRANSCRIPTIONS = "/v1/audio/transcriptions"

    @property
    def is_well_formed(self) -> bool:
        """Whether the value has the form of an API endpoint, ``/v1/<path>``: what an endpoint
        this release does not know must look like to be sent."""
        return _ENDPOINT_FORM.fullmatch(self._value_) is not None


class FilePurpose(OpenStrEnum):
    """What an uploaded file is for."""

    FINE_TUNE = "fine-tune"
    BATCH = "batch"
    OCR = "ocr"
    # Missing from the contract's enum, but named by its description of ``purpose``.
    AUDIO = "audio"
    # Sent by the official Python SDK (mistralai 3.7's FilePurpose), not yet in the contract.
    AGENTIC_SAFETY = "agentic_safety"


class SampleType(OpenStrEnum):
    """Kind of content a file holds."""

    PRETRAIN = "pretrain"
    INSTRUCT = "instruct"
    BATCH_REQUEST = "batch_request"
    BATCH_RESULT = "batch_result"
    BATCH_ERROR = "batch_error"


class FileSource(OpenStrEnum):
    """Where a file came from."""

    UPLOAD = "upload"
    REPOSITORY = "repository"
    MISTRAL = "mistral"


class FileVisibility(OpenStrEnum):
    """Who may see a file."""

    WORKSPACE = "workspace"
    USER = "user"


class _Response(BaseModel):
    """Base of every model the server sends: unknown fields are kept, never rejected."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


# ---------------------------------------------------------------------------- files


class FileObject(_Response):
    """A file as the Files API describes it (``FileSchema`` / ``CreateFileResponse``)."""

    id: str
    object: str = "file"
    # Required, but may be null: the contract's own examples of upload, list and retrieve
    # all show "bytes": null, though its schema says integer.
    bytes: int | None
    created_at: int
    filename: str
    purpose: FilePurpose
    sample_type: SampleType
    source: FileSource
    num_lines: int | None = None
    mimetype: str | None = None
    signature: str | None = None
    expires_at: int | None = None
    visibility: FileVisibility | None = None


class RetrievedFile(FileObject):
    """A file as ``GET /v1/files/{file_id}`` returns it."""

    deleted: bool


class FileList(_Response):
    """One page of ``GET /v1/files``."""

    data: list[FileObject]
    object: str = "list"
    total: int | None = None


class DeletedFile(_Response):
    """Response of ``DELETE /v1/files/{file_id}``."""

    id: str
    object: str = "file"
    deleted: bool


class SignedUrl(_Response):
    """Response of ``GET /v1/files/{file_id}/url``."""

    url: str


# ---------------------------------------------------------------------------- batch


class BatchError(_Response):
    """An error summary of a batch job."""

    message: str
    count: int = 1


class BatchJob(_Response):
    """A batch job."""

    id: str
    object: str = "batch"
    input_files: list[str]
    metadata: dict[str, Any] | None = None
    endpoint: ApiEndpoint
    model: str | None = None
    agent_id: str | None = None
    output_file: str | None = None
    error_file: str | None = None
    errors: list[BatchError]
    outputs: list[dict[str, Any]] | None = None
    status: BatchJobStatus
    created_at: int
    total_requests: RequestCount
    completed_requests: RequestCount
    succeeded_requests: RequestCount
    failed_requests: RequestCount
    started_at: int | None = None
    completed_at: int | None = None

    @property
    def is_terminal(self) -> bool:
        """Whether the job has ended (an unknown status has not)."""
        return self.status.is_terminal

    @property
    def progress(self) -> float | None:
        """Completed share of the requests (0.0 to 1.0), or None before validation."""
        if self.total_requests <= 0:
            return None
        return min(1.0, max(0.0, self.completed_requests / self.total_requests))


class BatchJobList(_Response):
    """One page of ``GET /v1/batch/jobs``."""

    data: list[BatchJob] = Field(default_factory=list)
    object: str = "list"
    total: int


class DeletedBatchJob(_Response):
    """Response of ``DELETE /v1/batch/jobs/{job_id}``."""

    id: str
    object: str = "batch"
    deleted: bool = True


# ---------------------------------------------------------------------------- requests

MetadataKey = Annotated[str, StringConstraints(min_length=1, max_length=METADATA_KEY_MAX_LENGTH)]
MetadataValue = Annotated[
    str, StringConstraints(min_length=1, max_length=METADATA_VALUE_MAX_LENGTH)
]


class BatchRequest(BaseModel):
    """One request of a batch: a line of an input JSONL file, or an inline request."""

    model_config = ConfigDict(extra="allow")

    custom_id: str | None = None
    body: dict[str, Any]


class CreateBatchJobRequest(BaseModel):
    """Body of ``POST /v1/batch/jobs``.

    Exactly one of ``input_files`` and ``requests`` must be given: the contract leaves the
    other cases undocumented, so the client refuses them before sending anything.
    """

    input_files: list[str] | None = None
    requests: Annotated[list[BatchRequest], Field(max_length=MAX_INLINE_REQUESTS)] | None = None
    endpoint: ApiEndpoint
    model: str | None = None
    agent_id: str | None = None
    metadata: dict[MetadataKey, MetadataValue] | None = None
    timeout_hours: Annotated[int, Field(ge=TIMEOUT_HOURS_MIN, le=TIMEOUT_HOURS_MAX)] = (
        DEFAULT_TIMEOUT_HOURS
    )

    @model_validator(mode="after")
    def _one_input(self) -> CreateBatchJobRequest:
        has_files = bool(self.input_files)
        has_requests = bool(self.requests)
        if has_files == has_requests:
            raise ValueError(
                "give exactly one of input_files (a non-empty list of file ids) "
                "and requests (a non-empty list of inline requests)"
            )
        return self


# ---------------------------------------------------------------------------- results


class BatchResponse(_Response):
    """The ``response`` part of an output or error line."""

    status_code: int
    body: Any = None


class BatchResultLine(_Response):
    """One line of a job's output or error file.

    The error file's shape is not documented: ``error`` may be an object, a bare string or
    null, and ``response`` may be missing, so both are optional here; a line with neither
    (``{}``) is refused.
    """

    id: str | None = None
    custom_id: str | None = None
    response: BatchResponse | None = None
    error: Any = None

    @model_validator(mode="after")
    def _response_or_error(self) -> BatchResultLine:
        # Both optional, but a line with neither says nothing about any request.
        if self.response is None and self.error is None:
            raise PydanticCustomError("not_a_result_line", 'it has no "response" and no "error"')
        return self

    @property
    def succeeded(self) -> bool:
        """Whether this line holds a successful response."""
        return (
            self.error is None
            and self.response is not None
            and 200 <= self.response.status_code < 300
        )

    @property
    def error_message(self) -> str | None:
        """A readable message for a failed line, or None for a successful one."""
        if self.succeeded:
            return None
        if isinstance(self.error, str):
            return self.error
        if isinstance(self.error, dict):
            message = self.error.get("message") or self.error.get("detail")
            if message:
                return str(message)
        if self.response is not None:
            body = self.response.body
            if isinstance(body, dict):
                message = body.get("message") or body.get("detail")
                if message:
                    return str(message)
            return f"HTTP {self.response.status_code}"
        return "unknown error"


__all__ = [
    "DAG_ID_METADATA",
    "DEFAULT_TIMEOUT_HOURS",
    "IDEMPOTENCY_KEY_METADATA",
    "MAP_INDEX_METADATA",
    "MAX_FILE_BYTES",
    "MAX_INLINE_REQUESTS",
    "MAX_REQUESTS_PER_JOB",
    "METADATA_KEY_MAX_LENGTH",
    "METADATA_VALUE_MAX_LENGTH",
    "ROUND_METADATA",
    "RUN_ID_METADATA",
    "SHARD_METADATA",
    "TASK_ID_METADATA",
    "TASK_KEY_METADATA",
    "TIMEOUT_HOURS_MAX",
    "TIMEOUT_HOURS_MIN",
    "ApiEndpoint",
    "BatchError",
    "BatchJob",
    "BatchJobList",
    "BatchJobStatus",
    "BatchRequest",
    "BatchResponse",
    "BatchResultLine",
    "CreateBatchJobRequest",
    "DeletedBatchJob",
    "DeletedFile",
    "FileList",
    "FileObject",
    "FilePurpose",
    "FileSource",
    "FileVisibility",
    "OpenStrEnum",
    "RetrievedFile",
    "SampleType",
    "SignedUrl",
]
