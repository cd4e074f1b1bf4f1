"""Resubmit rounds: which failures a retry can fix, the round keys, the rounds' bookkeeping, the
final rows' counts and the merged results (the emulator tests are in
tests/integration/operators/test_operator_resubmit.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from airflow_provider_mistral_batch.batch.output_spec import output_spec
from airflow_provider_mistral_batch.batch.resubmit import (
    Round,
    Rounds,
    is_retryable,
    retryable_requests,
    round_key,
)
from airflow_provider_mistral_batch.batch.result_rows import zero_counts
from airflow_provider_mistral_batch.batch.results import (
    join_results,
    rows_output,
    write_job_results,
)
from airflow_provider_mistral_batch.exceptions import MistralBatchError
from airflow_provider_mistral_batch.models import BatchJob
from tests.unit.batch.jobs import make_job
from tests.unit.batch.test_results import error_object_line, ok_line, requests_of


@pytest.mark.parametrize(
    ("status_code", "error", "retryable"),
    [
        (429, "rate limited", True),
        (408, "request timeout", True),
        (500, "internal error", True),
        (503, "unavailable", True),
        (599, None, True),
        (400, "invalid model", False),
        (400, "timeout_hours must be at least 1", False),
        (404, "not found", False),
        (422, "unprocessable", False),
        (None, "Request timed out", True),
        (None, "upstream timeout", True),
        (None, {"code": "timeout"}.get("code"), True),
        (None, "the model refused", False),
        (None, None, False),
        (200, "time-out while generating", True),
    ],
)
def test_which_failures_a_retry_can_fix(
    status_code: int | None, error: str | None, retryable: bool
) -> None:
    assert is_retryable(status_code, error) is retryable


def test_round_keys_are_stable_and_differ_per_round_and_setting() -> None:
    key = "a" * 40
    first = round_key(key, 1, False)
    assert first == round_key(key, 1, False)
    assert len(first) == 40
    assert len({first, round_key(key, 2, False), round_key(key, 1, True), key}) == 4
    assert round_key(first, 2, False) != round_key(key, 2, False)


def test_invalid_output_is_checked_on_chat_and_fim_only() -> None:
    chat = rows_output(["/v1/chat/completions"])
    assert chat is not None
    assert not chat.structured
    assert rows_output(["/v1/fim/completions"]) is not None
    assert rows_output(["/v1/embeddings"]) is None
    assert rows_output(["/v1/some-new-endpoint"]) is None


def _job(job_id: str, total: int, failed: int, status: str = "SUCCESS") -> BatchJob:
    return make_job(
        id=job_id,
        status=status,
        total_requests=total,
        completed_requests=total,
        succeeded_requests=total - failed,
        failed_requests=failed,
    )


def _round(ids: list[str], chains: list[int], failed: list[int], invalid: list[int]) -> Round:
    return Round(
        job_ids=ids,
        keys=[f"k-{each}" for each in ids],
        chains=chains,
        failed=failed,
        invalid=invalid,
    )


class _Reads:
    """Stands in for the hook where the rounds read the jobs they hold no snapshot of."""

    def __init__(self, jobs: list[BatchJob]) -> None:
        self.jobs = {job.id: job for job in jobs}
        self.read: list[str] = []

    def get_batch_job(self, job_id: str) -> BatchJob:
        self.read.append(job_id)
        return self.jobs[job_id]


def test_the_rounds_travel_as_plain_data_and_earlier_jobs_are_read_back() -> None:
    first = Rounds.first([_job("a", 10, 3), _job("b", 10, 0)], ["ka", "kb"])
    first.rounds.append(_round(["c"], [0], [2], [0]))
    data = json.loads(json.dumps(first.to_data()))
    resumed = Rounds.from_data(data)
    assert resumed.job_ids == [["a", "b"], ["c"]]
    assert resumed.rounds[-1].keys == ["k-c"], "the last round's keys, to go on from"
    assert data["keys"] == ["k-c"]
    assert all("keys" not in each for each in data["rounds"]), "each round's keys once only"
    resumed.ended([_job("c", 2, 0)])
    hook = _Reads([_job("a", 10, 3), _job("b", 10, 0)])
    outcome = resumed.outcome(hook)  # type: ignore[arg-type]
    assert sorted(hook.read) == ["a", "b"], "only the jobs the event did not carry are read"
    assert outcome.rounds == [["a", "b"], ["c"]]
    assert outcome.resubmitted == [2]
    a, b = outcome.final_jobs
    # a: 3 failed, 2 of them sent again and succeeded; 1 left (not retryable).
    assert (a.id, a.total_requests, a.succeeded_requests, a.failed_requests) == ("a", 10, 9, 1)
    assert (b.succeeded_requests, b.failed_requests) == (10, 0)
    assert outcome.as_xcom()["job_ids"] == ["a", "b", "c"]


def test_rounds_of_an_older_version_with_each_rounds_keys_are_read() -> None:
    data = {"rounds": [{**_round(["a"], [0], [0], [0]).model_dump(), "keys": ["ka"]}]}
    assert Rounds.from_data(data).rounds[-1].keys == ["ka"]


@pytest.mark.parametrize(
    "data",
    [
        None,
        {"rounds": "a"},
        {"rounds": [{"job_ids": ["a"]}]},
        {"rounds": [], "extra": 1},
        {"rounds": [{"job_ids": ["a"], "chains": [0], "failed": [0], "invalid": [0]}], "keys": []},
    ],
)
def test_rounds_of_another_shape_are_refused(data: Any) -> None:
    with pytest.raises(MistralBatchError, match="unexpected resubmit rounds"):
        Rounds.from_data(data)


def test_invalid_answers_sent_again_count_once_by_their_newest_row() -> None:
    # Round 0: 10 requests, 2 failed (sent again) and 3 answers invalid (sent again); round 1:
    # 5 requests, 1 failed; round 2 sends it again and it succeeds.
    rounds = Rounds(
        [
            _round(["a"], [0], [0], [0]),
            _round(["b"], [0], [2], [3]),
            _round(["c"], [0], [1], [0]),
        ],
        [_job("a", 10, 2), _job("b", 5, 1), _job("c", 1, 0)],
    )
    outcome = rounds.outcome(_Reads([]))  # type: ignore[arg-type]
    (final,) = outcome.final_jobs
    assert (final.total_requests, final.succeeded_requests, final.failed_requests) == (10, 10, 0)
    assert outcome.resubmitted == [5, 1]
    assert outcome.note == "resubmitted 5 requests in round 1 (job b), 1 in round 2 (job c)"


def test_a_chain_whose_last_job_did_not_succeed_is_judged_by_that_job() -> None:
    rounds = Rounds(
        [_round(["a", "b"], [0, 1], [0, 0], [0, 0]), _round(["c", "d"], [0, 1], [1, 2], [0, 0])],
        [_job("a", 4, 1), _job("b", 4, 2), _job("c", 1, 0), _job("d", 2, 0, status="FAILED")],
    )
    outcome = rounds.outcome(_Reads([]))  # type: ignore[arg-type]
    first, second = outcome.final_jobs
    assert (first.id, first.failed_requests, first.succeeded_requests) == ("a", 0, 4)
    assert (second.id, str(second.status)) == ("d", "FAILED")
    # The totals stay the chains' requests (b's 4), not the last job's 2 sent again.
    assert (second.total_requests, second.succeeded_requests, second.failed_requests) == (4, 4, 0)
    assert outcome.note == "resubmitted 3 requests in round 1 (jobs c, d)"


def test_no_round_after_the_first_says_nothing() -> None:
    rounds = Rounds.first([_job("a", 3, 0)], ["k"])
    outcome = rounds.outcome(_Reads([]))  # type: ignore[arg-type]
    assert outcome.note == ""
    assert outcome.resubmitted == []
    assert outcome.final_jobs[0].succeeded_requests == 3


def test_the_join_keeps_the_newest_rounds_row_and_counts_no_superseded_line(
    tmp_path: Path,
) -> None:
    # Round 1's lines come first (newest round first), then round 0's.
    round_1 = [ok_line("b"), error_object_line("c", "still down", 503)]
    round_0 = [ok_line("a"), error_object_line("b", "down"), error_object_line("c", "down")]
    requests = requests_of(["a", "b", "c"])
    target = tmp_path / "merged.jsonl"

    summary = join_results([*round_1, *round_0], target, requests=requests, superseded=2)

    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(row["custom_id"], row["ok"], row["status_code"]) for row in rows] == [
        ("a", True, 200),
        ("b", True, 200),
        ("c", False, 503),
    ]
    assert (summary.lines, summary.succeeded, summary.failed, summary.unexpected) == (3, 2, 1, 0)
    plain = join_results([*round_1, *round_0], tmp_path / "p.jsonl", requests=requests)
    assert plain.unexpected == 2, "without superseded, the repeats count as unexpected"
    # Only repeats can be superseded: a result for an unknown id stays unexpected.
    extra = join_results(
        [*round_1, ok_line("zz"), *round_0], tmp_path / "x.jsonl", requests=requests, superseded=5
    )
    assert extra.unexpected == 1


class _Files:
    """Stands in for the hook where the merged results read the jobs' files."""

    def __init__(self, files: dict[str, list[str]]) -> None:
        self.files = files
        self.log = logging.getLogger("test")

    def iter_file_lines(self, file_id: str) -> Iterator[str]:
        return iter(self.files.get(file_id, []))


def _inputs(ids: str) -> list[str]:
    return [json.dumps({"custom_id": each, "body": {"messages": []}}) for each in ids]


def test_a_request_the_last_round_left_unanswered_is_that_rounds_row(tmp_path: Path) -> None:
    # Round 0: a, b answered, c, d failed with a 503 (sent again); round 1's job ended
    # TIMEOUT_EXCEEDED having answered only c: d is expired, not round 0's error.
    hook = _Files(
        {
            "in0": _inputs("abcd"),
            "out0": [ok_line("a"), ok_line("b")],
            "err0": [error_object_line("c", "down", 503), error_object_line("d", "down", 503)],
            "in1": _inputs("cd"),
            "out1": [ok_line("c")],
        }
    )
    first = make_job(
        id="j0", input_files=["in0"], total_requests=4, output_file="out0", error_file="err0"
    )
    second = make_job(
        id="j1",
        status="TIMEOUT_EXCEEDED",
        input_files=["in1"],
        total_requests=2,
        output_file="out1",
        error_file=None,
    )
    target = tmp_path / "merged.jsonl"

    manifest = write_job_results(
        hook,  # type: ignore[arg-type]
        hook.log,
        [first],
        str(target),
        rounds=[[second]],
    )

    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(row["custom_id"], row["status"]) for row in rows] == [
        ("a", "success"),
        ("b", "success"),
        ("c", "success"),
        ("d", "expired"),
    ]
    assert manifest["counts"] == {**zero_counts(), "success": 3, "expired": 1}
    assert manifest["missing_requests"] == 1


def test_the_usage_of_merged_rounds_sums_every_billed_answer(tmp_path: Path) -> None:
    def body(text: str) -> dict[str, Any]:
        usage = {"prompt_tokens": 100, "completion_tokens": 100, "total_tokens": 200}
        return {"choices": [{"message": {"content": text}}], "usage": usage}

    # b was answered in round 0 and sent again (its answer invalid, say): both were billed.
    round_1 = [ok_line("b", body("again"))]
    round_0 = [ok_line("a", body("x")), ok_line("b", body("y"))]

    summary = join_results(
        [*round_1, *round_0], tmp_path / "r.jsonl", requests=requests_of(["a", "b"]), superseded=1
    )

    assert (summary.lines, summary.succeeded) == (2, 2)
    assert summary.usage["total_tokens"] == 600
    plain = join_results(
        [*round_1, *round_0], tmp_path / "p.jsonl", requests=requests_of(["a", "b"])
    )
    assert plain.usage["total_tokens"] == 400, "a repeated line without rounds is not billed"


class _Answer(BaseModel):
    answer: int


def test_one_rule_says_which_answers_are_invalid_output() -> None:
    tool_calls = {"choices": [{"message": {"content": None, "tool_calls": [{"id": "t"}]}}]}
    text = {"choices": [{"message": {"content": "hello"}}]}
    typed = {"choices": [{"message": {"content": '{"answer": 4}'}}]}
    for body, plain, structured in [
        (tool_calls, None, "the answer has no text"),
        (text, None, "invalid json"),
        (typed, None, None),
    ]:
        raw = json.dumps(body).encode()
        assert output_spec(str).problem_of(raw) == plain
        problem = output_spec(_Answer).problem_of(raw)
        assert (problem is None) == (structured is None)
        assert structured is None or structured.lower() in (problem or "").lower()
    # The rounds send again what that rule refuses, and only that.
    hook = _Files(
        {
            "out": [
                ok_line("a", tool_calls),
                ok_line("b", text),
                ok_line("c", typed),
            ]
        }
    )
    job = make_job(id="j", output_file="out", error_file=None)
    assert retryable_requests(hook, job, output_spec(str)).ids == frozenset()  # type: ignore[arg-type]
    found = retryable_requests(hook, job, output_spec(_Answer))  # type: ignore[arg-type]
    assert found.invalid == frozenset({"a", "b"})
