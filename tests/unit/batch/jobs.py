"""A batch job as the API returns it, for the unit tests of the domain."""

from __future__ import annotations

from typing import Any

from airflow_provider_mistral_batch.models import BatchJob

JOB_ID = "0b5c1f6e-8a9d-4d0e-9f51-2a3b4c5d6e7f"


def make_job(**changes: Any) -> BatchJob:
    fields: dict[str, Any] = {
        "id": JOB_ID,
        "input_files": ["f1"],
        "endpoint": "/v1/chat/completions",
        "model": "mistral-small-latest",
        "errors": [],
        "status": "SUCCESS",
        "created_at": 1_700_000_000,
        "total_requests": 1000,
        "completed_requests": 1000,
        "succeeded_requests": 1000,
        "failed_requests": 0,
        "output_file": "out-1",
        "error_file": None,
    }
    fields.update(changes)
    return BatchJob.model_validate(fields)
