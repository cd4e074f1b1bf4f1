"""The one decision on ended jobs: statuses, the failed share against max_failed_ratio, the
first errors quoted."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from airflow_provider_mistral_batch.batch.error_quotes import first_errors
from airflow_provider_mistral_batch.batch.result_rows import STATUSES
from airflow_provider_mistral_batch.batch.verdict import (
    JobVerdict,
    judge_job,
    judge_jobs,
)
from airflow_provider_mistral_batch.hooks.http.streams import CutLine
from tests.unit.batch.jobs import JOB_ID, make_job

# ---------------------------------------------------------------- judge_job


def test_success_without_failures_passes() -> None:
    verdict = judge_job(make_job())
    assert verdict == JobVerdict(
        True,
        f"Mistral batch job {JOB_ID} succeeded (1,000 succeeded, 0 failed of 1,000 requests)",
    )


def test_a_job_of_one_request_says_request() -> None:
    job = make_job(total_requests=1, completed_requests=1, succeeded_requests=1)
    assert judge_job(job).message == (
        f"Mistral batch job {JOB_ID} succeeded (1 succeeded, 0 failed of 1 request)"
    )


def test_failed_job_fails_and_lists_its_errors() -> None:
    job = make_job(
        status="FAILED",
        errors=[{"message": "file f1 not found", "count": 1}, {"message": "bad line", "count": 3}],
        total_requests=0,
        completed_requests=0,
        succeeded_requests=0,
    )
    verdict = judge_job(job)
    assert verdict.succeeded is False
    assert verdict.warning is None
    assert verdict.message == (
        f"Mistral batch job {JOB_ID} ended FAILED: file f1 not found (x1); bad line (x3) "
        "(0 succeeded, 0 failed of 0 requests)"
    )


def test_failed_job_without_errors_has_no_reason_part() -> None:
    verdict = judge_job(make_job(status="FAILED"))
    assert verdict.message == (
        f"Mistral batch job {JOB_ID} ended FAILED (1,000 succeeded, 0 failed of 1,000 requests)"
    )


@pytest.mark.parametrize("status", ["TIMEOUT_EXCEEDED", "CANCELLED", "CANCELLATION_REQUESTED"])
def test_other_ends_fail(status: str) -> None:
    job = make_job(
        status=status, completed_requests=400, succeeded_requests=390, failed_requests=10
    )
    verdict = judge_job(job, max_failed_ratio=1.0)
    assert verdict.succeeded is False
    assert verdict.message.startswith(f"Mistral batch job {JOB_ID} ended {status} ")
    assert verdict.message.endswith("(390 succeeded, 10 failed of 1,000 requests)")


def test_unknown_status_never_passes() -> None:
    job = make_job(status="FINISHED_SOMEHOW")
    assert job.status.is_known is False
    verdict = judge_job(job)
    assert verdict.succeeded is False
    assert "ended FINISHED_SOMEHOW" in verdict.message


def test_any_failed_request_fails_by_default_and_the_message_says_the_rule() -> None:
    job = make_job(succeeded_requests=600, failed_requests=400, error_file="err-1")
    verdict = judge_job(job)
    assert verdict.succeeded is False
    assert verdict.message == (
        f"Mistral batch job {JOB_ID} succeeded but 400 of 1,000 requests failed (40%), above "
        "max_failed_ratio 0 (600 succeeded, 400 failed of 1,000 requests); see error_file err-1"
    )
    assert verdict.retry_helps is False  # a retry would meet the same SUCCESS job


def test_the_default_fails_a_job_whose_requests_mostly_failed() -> None:
    job = make_job(succeeded_requests=100, failed_requests=900, error_file="e")
    assert judge_job(job).succeeded is False
    assert judge_jobs([job]).succeeded is False
    assert judge_jobs([job, make_job()]).succeeded is False


@pytest.mark.parametrize("ratio", [None, 1.0])
def test_none_or_one_only_warns_and_the_message_says_so(ratio: float | None) -> None:
    job = make_job(succeeded_requests=960, failed_requests=40, error_file="err-1")
    verdict = judge_job(job, max_failed_ratio=ratio)
    assert verdict.succeeded is True
    rule = (
        "max_failed_ratio None: failed requests only warn"
        if ratio is None
        else "within max_failed_ratio 1"
    )
    assert verdict.message == (
        f"Mistral batch job {JOB_ID} succeeded; 40 of 1,000 requests failed (4%), {rule} "
        "(960 succeeded, 40 failed of 1,000 requests)"
    )
    assert verdict.warning == (
        f"40 of 1,000 requests failed (4%) in Mistral batch job {JOB_ID}, {rule}; "
        "see error_file err-1"
    )


def test_zero_ratio_fails_on_any_failed_request() -> None:
    job = make_job(succeeded_requests=999, failed_requests=1, error_file="err-1")
    verdict = judge_job(job, max_failed_ratio=0.0)
    assert verdict.succeeded is False
    assert verdict.message == (
        f"Mistral batch job {JOB_ID} succeeded but 1 of 1,000 requests failed (0.1%), above "
        "max_failed_ratio 0 (999 succeeded, 1 failed of 1,000 requests); see error_file err-1"
    )
    assert judge_job(make_job(), max_failed_ratio=0.0).succeeded is True


def test_a_tiny_share_is_not_shown_as_zero() -> None:
    job = make_job(
        total_requests=100_000,
        completed_requests=100_000,
        succeeded_requests=99_999,
        failed_requests=1,
    )
    assert "1 of 100,000 requests failed (<0.1%), above max_failed_ratio 0" in (
        judge_job(job).message
    )


def test_ratio_boundary_is_inclusive() -> None:
    at = make_job(succeeded_requests=500, failed_requests=500, error_file="e")
    above = make_job(succeeded_requests=499, failed_requests=501, error_file="e")
    at_verdict = judge_job(at, max_failed_ratio=0.5)
    assert at_verdict.succeeded is True
    assert "500 of 1,000 requests failed (50%), within max_failed_ratio 0.5" in (at_verdict.message)
    assert at_verdict.warning is not None
    assert "500 of 1,000 requests failed (50%) in Mistral batch job" in at_verdict.warning
    above_verdict = judge_job(above, max_failed_ratio=0.5)
    assert above_verdict.succeeded is False
    assert "501 of 1,000 requests failed (50.1%), above max_failed_ratio 0.5" in (
        above_verdict.message
    )


def test_ratio_with_no_total_does_not_divide_by_zero() -> None:
    job = make_job(total_requests=0, completed_requests=0, succeeded_requests=0, failed_requests=2)
    assert judge_job(job, max_failed_ratio=0.5).succeeded is False


def test_all_requests_failed_but_job_success_with_ratio_one_passes_with_warning() -> None:
    job = make_job(succeeded_requests=0, failed_requests=1000, error_file="e")
    verdict = judge_job(job, max_failed_ratio=1.0)
    assert verdict.succeeded is True
    assert verdict.warning is not None


def test_judge_jobs_of_one_job_without_missing_is_judge_job() -> None:
    job = make_job(failed_requests=3, succeeded_requests=997)
    assert judge_jobs([job], 0.01) == judge_job(job, 0.01)


def test_shards_say_the_rule_applied_to_their_total() -> None:
    first = make_job(succeeded_requests=990, failed_requests=10)
    second = make_job(id="second", succeeded_requests=1000, failed_requests=0)
    verdict = judge_jobs([first, second], 0.001, missing=2)
    assert verdict.succeeded is False
    assert "12 of 2,000 requests failed (0.6%), above max_failed_ratio 0.001" in verdict.message
    assert "2 of the failed had no result line" in verdict.message
    passed = judge_jobs([first, second], 0.01)
    assert passed.succeeded is True
    assert "10 of 2,000 requests failed (0.5%), within max_failed_ratio 0.01" in passed.message


# ---------------------------------------------------------------- first errors of an error file


def test_first_errors_quotes_the_first_lines_and_stops_reading() -> None:
    read: list[int] = []

    def lines() -> Iterator[str]:
        for index in range(1000):
            read.append(index)
            yield json.dumps({"custom_id": f"r{index}", "error": {"message": f"bad {index}"}})

    assert first_errors(lines()) == ["r0: bad 0", "r1: bad 1", "r2: bad 2"]
    assert read == [0, 1, 2]


def test_first_errors_reads_a_bounded_amount_of_a_file_of_long_lines() -> None:
    long = json.dumps({"custom_id": "r", "error": "x" * 5000})
    quoted = first_errors(iter([long, long, long]))
    assert len(quoted) == 1
    assert quoted[0].endswith("...")
    assert len(quoted[0]) == 200


def test_first_errors_quote_a_line_longer_than_their_budget_without_parsing_it() -> None:
    # A message of a million words: parsed and collapsed whole, it would cost a list of a
    # million strings; only the line's start is quoted, marked as cut.
    huge = json.dumps({"custom_id": "r9", "error": {"message": "w " * 1_000_000}})
    [quoted] = first_errors(iter([huge]))
    assert quoted.startswith(
        '(line cut at 4,096 characters) {"custom_id": "r9", "error": {"message": "w w w'
    )
    assert quoted.endswith("...")
    assert len(quoted) == 200


def test_first_errors_quote_a_line_its_reader_cut_as_cut() -> None:
    assert first_errors(iter([CutLine('{"custom_id": "r1", "error": "bo')])) == [
        '(line cut at 32 characters) {"custom_id": "r1", "error": "bo'
    ]


def test_first_errors_shows_a_line_it_cannot_read_as_it_is() -> None:
    assert first_errors(iter(["not json"])) == ["(not a result line) not json"]


def _counts(**nonzero: int) -> dict[str, int]:
    return {**dict.fromkeys(STATUSES, 0), **nonzero}


def test_with_counts_every_row_not_success_counts_and_each_count_is_named() -> None:
    job = make_job(total_requests=10, succeeded_requests=9, failed_requests=1)
    counts = _counts(success=7, error=1, invalid_output=1, missing=1)
    failed = judge_jobs([job], 0.2, counts=counts)
    assert failed.succeeded is False
    assert "3 of 10 requests failed or were invalid (30%), above max_failed_ratio 0.2" in (
        failed.message
    )
    assert "(7 success, 1 error, 1 invalid_output, 1 missing of 10 requests)" in failed.message
    passed = judge_jobs([job], 0.3, counts=counts)
    assert passed.succeeded is True
    assert passed.warning is not None
    assert "3 of 10 requests failed or were invalid" in passed.warning


def test_with_counts_and_only_errors_the_rows_simply_failed() -> None:
    job = make_job(total_requests=10, succeeded_requests=9, failed_requests=1)
    verdict = judge_jobs([job], 0.0, counts=_counts(success=9, error=1))
    assert "1 of 10 requests failed (10%), above max_failed_ratio 0" in verdict.message
    assert "(9 success, 1 error of 10 requests)" in verdict.message


def test_with_results_written_and_all_success_the_counts_are_still_named() -> None:
    job = make_job(total_requests=4, succeeded_requests=4)
    verdict = judge_jobs([job], 0.0, counts=_counts(success=4))
    assert verdict.succeeded is True
    assert verdict.message.endswith("succeeded (4 success of 4 requests)")


@pytest.mark.parametrize(
    ("status", "row"), [("TIMEOUT_EXCEEDED", "expired"), ("CANCELLED", "cancelled")]
)
def test_a_job_that_ended_early_fails_and_names_its_rows(status: str, row: str) -> None:
    job = make_job(status=status, total_requests=4, succeeded_requests=1, completed_requests=1)
    verdict = judge_jobs([job], 1.0, counts=_counts(success=1, **{row: 3}))
    assert verdict.succeeded is False
    assert verdict.message.startswith(f"Mistral batch job {JOB_ID} ended {status} ")
    assert verdict.message.endswith(f"; results: 1 success, 3 {row} of 4 requests")
    shards = judge_jobs([job, make_job(id="other")], 1.0, counts=_counts(success=1, **{row: 3}))
    assert shards.message.endswith(f"; results: 1 success, 3 {row} of 1,004 requests")
