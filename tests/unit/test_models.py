"""Models: open enums, nullability, tolerance of unknown fields, request validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from airflow_provider_mistral_batch.models import (
    ApiEndpoint,
    BatchJob,
    BatchJobStatus,
    BatchResultLine,
    CreateBatchJobRequest,
    FileList,
    FileObject,
    RetrievedFile,
)

CONTRACT = Path(__file__).parents[1] / "contract" / "mistral-batch-files-openapi.yaml"

JOB = {
    "id": "b2f0",
    "object": "batch",
    "input_files": ["f1"],
    "metadata": None,
    "endpoint": "/v1/chat/completions",
    "model": None,
    "agent_id": None,
    "output_file": None,
    "error_file": None,
    "errors": [],
    "outputs": None,
    "status": "QUEUED",
    "created_at": 1,
    "total_requests": 0,
    "completed_requests": 0,
    "succeeded_requests": 0,
    "failed_requests": 0,
    "started_at": None,
    "completed_at": None,
}


@pytest.mark.parametrize(
    ("status", "terminal", "success"),
    [
        ("QUEUED", False, False),
        ("RUNNING", False, False),
        ("CANCELLATION_REQUESTED", False, False),
        ("SUCCESS", True, True),
        ("FAILED", True, False),
        ("TIMEOUT_EXCEEDED", True, False),
        ("CANCELLED", True, False),
        ("SOMETHING_NEW", False, False),
    ],
)
def test_status_terminal_and_success(status: str, terminal: bool, success: bool) -> None:
    job = BatchJob.model_validate({**JOB, "status": status})
    assert job.status == status
    assert job.status.is_terminal is terminal
    assert job.status.is_success is success
    assert job.is_terminal is terminal


def test_unknown_status_is_not_known_and_round_trips() -> None:
    job = BatchJob.model_validate({**JOB, "status": "PAUSED", "endpoint": "/v2/new/thing"})
    assert not job.status.is_known
    assert not job.endpoint.is_known
    assert BatchJobStatus.QUEUED.is_known
    assert job.model_dump(mode="json")["status"] == "PAUSED"
    assert job.model_dump(mode="json")["endpoint"] == "/v2/new/thing"


def test_unknown_fields_are_kept_not_rejected() -> None:
    job = BatchJob.model_validate({**JOB, "brand_new_field": {"x": 1}})
    assert job.model_extra == {"brand_new_field": {"x": 1}}


def test_required_field_missing_is_rejected() -> None:
    broken = dict(JOB)
    del broken["total_requests"]
    with pytest.raises(ValidationError, match="total_requests"):
        BatchJob.model_validate(broken)


def test_file_bytes_is_required_but_may_be_null() -> None:
    file = {
        "id": "f",
        "object": "file",
        "bytes": None,
        "created_at": 1,
        "filename": "a.jsonl",
        "purpose": "batch",
        "sample_type": "batch_request",
        "source": "upload",
    }
    assert FileObject.model_validate(file).bytes is None
    assert FileObject.model_validate({**file, "bytes": 3}).bytes == 3
    missing = dict(file)
    del missing["bytes"]
    with pytest.raises(ValidationError, match="bytes"):
        FileObject.model_validate(missing)


@pytest.mark.parametrize(
    ("path", "method", "model"),
    [
        ("/v1/files", "post", FileObject),
        ("/v1/files", "get", FileList),
        ("/v1/files/{file_id}", "get", RetrievedFile),
    ],
)
def test_the_contracts_own_file_examples_parse(
    path: str, method: str, model: type[BaseModel]
) -> None:
    # Each shows "bytes": null, though the schema says integer.
    contract: dict[str, Any] = yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))
    content = contract["paths"][path][method]["responses"]["200"]["content"]
    example = content["application/json"]["examples"]["userExample"]["value"]
    parsed = model.model_validate(example)
    files = parsed.data if isinstance(parsed, FileList) else [parsed]
    assert files
    assert all(file.bytes is None for file in files)


def test_progress_is_none_before_validation() -> None:
    assert BatchJob.model_validate(JOB).progress is None
    running = BatchJob.model_validate({**JOB, "total_requests": 4, "completed_requests": 1})
    assert running.progress == 0.25


def test_progress_stays_between_0_and_1_whatever_the_counts() -> None:
    backwards = BatchJob.model_validate({**JOB, "total_requests": 4, "completed_requests": -1})
    assert backwards.progress == 0.0
    ahead = BatchJob.model_validate({**JOB, "total_requests": 4, "completed_requests": 9})
    assert ahead.progress == 1.0


@pytest.mark.parametrize("count", [2**63, -(2**63) - 1, 2**1024])
@pytest.mark.parametrize(
    "field", ["total_requests", "completed_requests", "succeeded_requests", "failed_requests"]
)
def test_request_counts_past_64_bits_are_refused(field: str, count: int) -> None:
    with pytest.raises(ValidationError, match=field):
        BatchJob.model_validate({**JOB, field: count})
    for edge in (2**63 - 1, -(2**63)):
        assert getattr(BatchJob.model_validate({**JOB, field: edge}), field) == edge


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({}, "exactly one of input_files"),
        ({"input_files": ["a"], "requests": [{"body": {}}]}, "exactly one of input_files"),
        ({"input_files": ["a"], "timeout_hours": 0}, "greater than or equal to 1"),
        ({"input_files": ["a"], "timeout_hours": 169}, "less than or equal to 168"),
        ({"input_files": ["a"], "metadata": {"k" * 33: "v"}}, "at most 32 characters"),
        ({"input_files": ["a"], "metadata": {"k": "v" * 513}}, "at most 512 characters"),
        ({"input_files": ["a"], "metadata": {"k": ""}}, "at least 1 character"),
    ],
)
def test_create_request_validation(changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        CreateBatchJobRequest.model_validate({"endpoint": "/v1/embeddings", **changes})


def test_inline_requests_are_capped_at_ten_thousand() -> None:
    requests = [{"custom_id": str(i), "body": {}} for i in range(10_001)]
    with pytest.raises(ValidationError, match="at most 10000"):
        CreateBatchJobRequest.model_validate({"endpoint": "/v1/embeddings", "requests": requests})


def test_endpoint_enum_lists_every_contract_endpoint() -> None:
    assert {e.value for e in ApiEndpoint} == {
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/fim/completions",
        "/v1/moderations",
        "/v1/chat/moderations",
        "/v1/ocr",
        "/v1/classifications",
        "/v1/chat/classifications",
        "/v1/conversations",
        "/v1/audio/transcriptions",
    }


@pytest.mark.parametrize(
    ("line", "succeeded", "message"),
    [
        (
            {"custom_id": "a", "response": {"status_code": 200, "body": {}}, "error": None},
            True,
            None,
        ),
        ({"custom_id": "a", "response": None, "error": "boom"}, False, "boom"),
        ({"custom_id": "a", "error": {"message": "bad body", "code": "x"}}, False, "bad body"),
        (
            {"custom_id": "a", "response": {"status_code": 422, "body": {"detail": "no messages"}}},
            False,
            "no messages",
        ),
        ({"custom_id": "a", "response": {"status_code": 500, "body": None}}, False, "HTTP 500"),
    ],
)
def test_result_line_both_error_shapes(
    line: dict[str, object], succeeded: bool, message: str | None
) -> None:
    parsed = BatchResultLine.model_validate(line)
    assert parsed.succeeded is succeeded
    assert parsed.error_message == message


@pytest.mark.parametrize(
    "line", [{}, {"custom_id": "a"}, {"custom_id": "a", "response": None, "error": None}]
)
def test_a_result_line_needs_a_response_or_an_error(line: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match='it has no "response" and no "error"'):
        BatchResultLine.model_validate(line)
    with pytest.raises(ValidationError, match='it has no "response" and no "error"'):
        BatchResultLine.model_validate_json(json.dumps(line))


def test_a_member_name_is_not_a_known_value() -> None:
    assert not ApiEndpoint("CHAT_COMPLETIONS").is_known
    assert not BatchJobStatus("success").is_known
    assert ApiEndpoint("/v1/ocr").is_known
