"""How a task ends: files pushed, results written, the verdict raised or logged, masked."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

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


def _refuse_odd(custom_id: str | None, body: bytes) -> str | None:
    """A row check: the answers to odd-numbered requests miss what the task asked for."""
    return "not what was asked" if custom_id is not None and int(custom_id[1:]) % 2 else None


def _result_line(custom_id: str) -> str:
    body = {"choices": [{"message": {"content": "x"}}]}
    return json.dumps({"custom_id": custom_id, "response": {"status_code": 200, "body": body}})


@pytest.mark.parametrize(("ratio", "passes"), [(0.25, False), (0.5, True)])
def test_rows_a_row_check_refuses_are_counted_reported_and_fail_beyond_the_ratio(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, ratio: float, passes: bool
) -> None:
    from airflow_provider_mistral_batch.batch.results import join_results

    ids = [f"r{i}" for i in range(6)]  # r1, r3, r5 are refused: 3 of 6 (50%)
    job = make_job(total_requests=6, succeeded_requests=6, completed_requests=6)

    def write(jobs: Any) -> dict[str, Any]:
        summary = join_results(
            [_result_line(cid) for cid in ids],
            tmp_path / "r.jsonl",
            requests=[(cid, None) for cid in ids],
            row_check=_refuse_odd,
        )
        return summary.as_xcom()

    log = logging.getLogger("tests.finish.invalid")
    caplog.set_level(logging.INFO, logger="tests.finish.invalid")
    counts = "(3 succeeded, 0 failed, 3 invalid of 6 requests)"
    if not passes:
        with pytest.raises(MistralBatchJobFatalError) as caught:
            finish_with_jobs({"ti": _Ti()}, [job], ratio, log, write_results=write)
        assert "3 of 6 requests failed or were invalid (50%), above max_failed_ratio 0.25" in (
            str(caught.value)
        )
        assert counts in str(caught.value)
        return
    summary = finish_with_jobs({"ti": _Ti()}, [job], ratio, log, write_results=write)
    assert summary["results"]["invalid"] == 3
    [final] = [r.getMessage() for r in caplog.records if "succeeded;" in r.getMessage()]
    assert final.endswith(f"within max_failed_ratio 0.5 {counts}"), final
