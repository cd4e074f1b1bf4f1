"""The small summaries a task returns."""

from __future__ import annotations

import json

from airflow_provider_mistral_batch.batch.manifest import job_summary
from tests.unit.batch.jobs import JOB_ID, make_job

# ---------------------------------------------------------------- summaries and snapshots


def test_job_summary_is_small_and_json_safe() -> None:
    job = make_job(succeeded_requests=990, failed_requests=10, error_file="err-1")
    summary = job_summary(job)
    assert summary == {
        "job_id": JOB_ID,
        "status": "SUCCESS",
        "output_file": "out-1",
        "error_file": "err-1",
        "total_requests": 1000,
        "succeeded_requests": 990,
        "failed_requests": 10,
    }
    assert type(summary["status"]) is str
    assert json.loads(json.dumps(summary)) == summary
