"""The one decision on an ended job, and the trigger event shapes that carry it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_mistral_batch.batch.outcome import (
    JobVerdict,
    TriggerEventPayload,
    first_errors,
    job_snapshot,
    job_summary,
    judge_job,
    judge_jobs,
    make_event,
    parse_event,
)
from airflow_provider_mistral_batch.exceptions import MistralBatchError
from airflow_provider_mistral_batch.hooks.http.streams import CutLine
from airflow_provider_mistral_batch.models import BatchJob, BatchJobStatus

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


def test_job_snapshot_drops_outputs_and_is_plain_data() -> None:
    job = make_job(outputs=[{"custom_id": "a", "response": {"status_code": 200}}])
    snapshot = job_snapshot(job)
    assert "outputs" not in snapshot
    assert snapshot["id"] == JOB_ID
    assert snapshot["status"] == "SUCCESS"
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert BatchJob.model_validate(snapshot).status is BatchJobStatus.SUCCESS


# ---------------------------------------------------------------- events


def test_make_event_round_trips_through_parse_event() -> None:
    job = make_job()
    event = make_event("terminal", JOB_ID, job)
    assert event == {"kind": "terminal", "job_id": JOB_ID, "job": job_snapshot(job), "message": ""}
    assert json.loads(json.dumps(event)) == event
    parsed = parse_event(event)
    assert isinstance(parsed, TriggerEventPayload)
    assert parsed.kind == "terminal"
    assert parsed.job_id == JOB_ID
    assert parsed.job is not None
    assert parsed.job.status is BatchJobStatus.SUCCESS
    assert parsed.job.outputs is None


@pytest.mark.parametrize("kind", ["timeout", "error"])
def test_timeout_and_error_events_may_carry_no_job(kind: Any) -> None:
    event = make_event(kind, JOB_ID, None, "gave up")
    parsed = parse_event(event)
    assert (parsed.kind, parsed.job, parsed.message) == (kind, None, "gave up")


def test_timeout_event_with_a_running_job_is_accepted() -> None:
    job = make_job(status="CANCELLATION_REQUESTED")
    parsed = parse_event(make_event("timeout", JOB_ID, job, "deadline passed"))
    assert parsed.job is not None
    assert parsed.job.status is BatchJobStatus.CANCELLATION_REQUESTED


def test_make_event_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        make_event("done", JOB_ID, None)  # type: ignore[arg-type]


@pytest.mark.parametrize("event", [None, "terminal", ["terminal", JOB_ID], 42])
def test_parse_event_refuses_non_dicts(event: Any) -> None:
    with pytest.raises(MistralBatchError) as caught:
        parse_event(event)
    assert str(caught.value) == f"unexpected trigger event {event!r}: expected a dict"


@pytest.mark.parametrize(
    "event",
    [
        {"kind": "finished", "job_id": JOB_ID},
        {"kind": "error"},
        {"job_id": JOB_ID},
        {"kind": "error", "job_id": None},
        {"kind": "error", "job_id": 12},
        {"kind": "terminal", "job_id": JOB_ID, "job": {"id": JOB_ID}},
        {"kind": "terminal", "job_id": JOB_ID, "job": "SUCCESS"},
    ],
)
def test_parse_event_refuses_other_shapes(event: dict[str, Any]) -> None:
    with pytest.raises(MistralBatchError, match="unexpected trigger event"):
        parse_event(event)


def test_parse_event_refuses_terminal_without_a_job() -> None:
    event = make_event("error", JOB_ID, None)
    event["kind"] = "terminal"
    with pytest.raises(MistralBatchError) as caught:
        parse_event(event)
    assert str(caught.value).startswith(
        f"trigger event for job {JOB_ID} says the job ended but carries no ended job"
    )


@pytest.mark.parametrize("status", ["RUNNING", "QUEUED", "CANCELLATION_REQUESTED", "NEW_THING"])
def test_parse_event_refuses_terminal_with_a_job_still_running(status: str) -> None:
    event = make_event("timeout", JOB_ID, make_job(status=status))
    event["kind"] = "terminal"
    with pytest.raises(MistralBatchError, match="says the job ended but carries no ended job"):
        parse_event(event)


def test_parse_event_refuses_a_job_that_is_not_the_events_job() -> None:
    event = make_event("terminal", JOB_ID, make_job())
    event["job_id"] = "another-job"
    with pytest.raises(MistralBatchError) as caught:
        parse_event(event)
    assert str(caught.value) == f"trigger event for job another-job carries another job, {JOB_ID}"


def test_parse_event_errors_are_airflow_exceptions() -> None:
    from airflow.sdk.exceptions import AirflowException

    with pytest.raises(AirflowException):
        parse_event({"kind": "nope"})


def test_reattachable_statuses_include_unknown_running_ones() -> None:
    from airflow_provider_mistral_batch.batch.identity import is_reattachable

    assert is_reattachable(BatchJobStatus.QUEUED)
    assert is_reattachable(BatchJobStatus.RUNNING)
    assert is_reattachable(BatchJobStatus.SUCCESS)
    assert is_reattachable(BatchJobStatus("VALIDATING"))
    for status in ("CANCELLATION_REQUESTED", "CANCELLED", "FAILED", "TIMEOUT_EXCEEDED"):
        assert not is_reattachable(BatchJobStatus(status))


# ---------------------------------------------------------------- several jobs, results


class _Ti:
    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def test_missing_requests_count_as_failed_for_max_failed_ratio() -> None:
    import logging

    from airflow_provider_mistral_batch.batch.outcome import finish_with_jobs
    from airflow_provider_mistral_batch.exceptions import MistralBatchJobFatalError

    job = make_job(total_requests=100, succeeded_requests=100, completed_requests=100)
    manifest = {"results_path": "/r.jsonl", "missing_requests": 6, "usage": {"total_tokens": 9}}
    log = logging.getLogger("tests.outcome")
    with pytest.raises(MistralBatchJobFatalError, match="6 of the failed had no result line"):
        finish_with_jobs({"ti": _Ti()}, [job], 0.05, log, write_results=lambda jobs: manifest)
    summary = finish_with_jobs({"ti": _Ti()}, [job], 0.1, log, write_results=lambda jobs: manifest)
    assert summary["results_path"] == "/r.jsonl"
    assert summary["missing_requests"] == 6
    assert summary["usage"] == {"total_tokens": 9}


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
    import logging

    from airflow_provider_mistral_batch.batch.outcome import finish_with_job

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
