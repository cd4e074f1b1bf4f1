"""How a task ends: files pushed, results written, the verdict raised or logged, masked."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from airflow_provider_mistral_batch.batch.finish import finish_with_job, finish_with_jobs
from airflow_provider_mistral_batch.exceptions import MistralBatchError, MistralBatchJobFatalError
from tests.unit.batch.jobs import make_job


class _Ti:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def test_missing_requests_count_as_failed_for_max_failed_ratio() -> None:
    job = make_job(total_requests=100, succeeded_requests=100, completed_requests=100)
    manifest = {"results_path": "/r.jsonl", "missing_requests": 6, "usage": {"total_tokens": 9}}
    log = logging.getLogger("tests.outcome")
    with pytest.raises(MistralBatchJobFatalError, match="6 of the failed had no result line"):
        finish_with_jobs({"ti": _Ti()}, [job], 0.05, log, write_results=lambda jobs: manifest)
    summary = finish_with_jobs({"ti": _Ti()}, [job], 0.1, log, write_results=lambda jobs: manifest)
    assert summary["results_path"] == "/r.jsonl"
    assert summary["missing_requests"] == 6
    assert summary["usage"] == {"total_tokens": 9}


KEY = "sk-echoed-0123456789"


def _masked_by_hook(text: str) -> str:
    from airflow_provider_mistral_batch.utils.redact import redact

    return redact(text, [KEY])


@pytest.mark.parametrize("failed_requests", [1, 1000])
def test_a_server_echoing_the_key_in_errors_never_gets_it_into_the_message(
    failed_requests: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The final message and warning quote the job's errors and its error file; a server that
    echoes the key there does not get it into the task's exception or log (the scheduler's
    output on Airflow 3.3 repeats task log lines without Airflow's masker)."""
    status = "FAILED" if failed_requests == 1000 else "SUCCESS"
    job = make_job(
        status=status,
        succeeded_requests=1000 - failed_requests,
        failed_requests=failed_requests,
        error_file="err-1",
        errors=[{"message": f"token {KEY} refused", "count": 1}],
    )
    lines = [json.dumps({"custom_id": "r1", "error": {"message": f"invalid token Bearer {KEY}"}})]
    log = logging.getLogger("test_outcome_mask")
    caplog.set_level(logging.INFO, logger="test_outcome_mask")
    with pytest.raises(MistralBatchError) as caught:
        finish_with_job(
            {"ti": _Ti()}, job, 0.0, log, file_lines=lambda _: iter(lines), mask=_masked_by_hook
        )
    assert "first errors: r1: invalid token Bearer ***" in str(caught.value)
    assert KEY not in str(caught.value)
    if status == "SUCCESS":  # the warning path: a tolerated failure is logged
        finish_with_job(
            {"ti": _Ti()}, job, 1.0, log, file_lines=lambda _: iter(lines), mask=_masked_by_hook
        )
        assert "invalid token Bearer ***" in caplog.text
        assert KEY not in caplog.text


def _answer_line(custom_id: str) -> str:
    # The odd-numbered requests answer text that is not the JSON the task asked for.
    content = '{"label": "x"}' if int(custom_id[1:]) % 2 == 0 else "x"
    body = {"choices": [{"message": {"content": content}}]}
    return json.dumps({"custom_id": custom_id, "response": {"status_code": 200, "body": body}})


class _Label(BaseModel):
    label: str


@pytest.mark.parametrize(("ratio", "passes"), [(0.25, False), (0.5, True)])
def test_invalid_output_rows_are_counted_reported_and_fail_beyond_the_ratio(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, ratio: float, passes: bool
) -> None:
    from airflow_provider_mistral_batch.batch.output_spec import output_spec
    from airflow_provider_mistral_batch.batch.results import join_results

    ids = [f"r{i}" for i in range(6)]  # r1, r3, r5 do not validate: 3 of 6 (50%)
    job = make_job(total_requests=6, succeeded_requests=6, completed_requests=6)

    def write(jobs: Any) -> dict[str, Any]:
        summary = join_results(
            [_answer_line(cid) for cid in ids],
            tmp_path / "r.jsonl",
            requests=[(cid, None) for cid in ids],
            output=output_spec(_Label),
        )
        return summary.as_xcom()

    log = logging.getLogger("tests.finish.invalid")
    caplog.set_level(logging.INFO, logger="tests.finish.invalid")
    counts = "(3 success, 3 invalid_output of 6 requests)"
    if not passes:
        with pytest.raises(MistralBatchJobFatalError) as caught:
            finish_with_jobs({"ti": _Ti()}, [job], ratio, log, write_results=write)
        assert "3 of 6 requests failed or were invalid (50%), above max_failed_ratio 0.25" in (
            str(caught.value)
        )
        assert counts in str(caught.value)
        return
    summary = finish_with_jobs({"ti": _Ti()}, [job], ratio, log, write_results=write)
    assert summary["counts"] == {
        "success": 3,
        "error": 0,
        "invalid_output": 3,
        "missing": 0,
        "expired": 0,
        "cancelled": 0,
    }
    assert (summary["results"]["succeeded"], summary["results"]["failed"]) == (3, 3)
    [final] = [r.getMessage() for r in caplog.records if "succeeded;" in r.getMessage()]
    assert final.endswith(f"within max_failed_ratio 0.5 {counts}"), final


def test_a_timed_out_job_fails_naming_its_expired_rows(tmp_path: Path) -> None:
    from airflow_provider_mistral_batch.batch.results import join_results

    job = make_job(
        status="TIMEOUT_EXCEEDED", total_requests=4, succeeded_requests=1, completed_requests=1
    )

    def write(jobs: Any) -> dict[str, Any]:
        requests = [(f"r{i}", None, "expired") for i in range(4)]
        line = json.dumps({"custom_id": "r0", "response": {"status_code": 200, "body": {}}})
        return join_results([line], tmp_path / "r.jsonl", requests=requests).as_xcom()

    log = logging.getLogger("tests.finish.expired")
    with pytest.raises(MistralBatchError) as caught:
        finish_with_jobs({"ti": _Ti()}, [job], 1.0, log, write_results=write)
    assert "ended TIMEOUT_EXCEEDED" in str(caught.value)
    assert str(caught.value).endswith("; results: 1 success, 3 expired of 4 requests")
