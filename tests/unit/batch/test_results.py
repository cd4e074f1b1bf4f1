"""The results join: result files + input -> one JSONL line per request, in input order."""

from __future__ import annotations

import contextlib
import json
import os
import random
import stat
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from airflow_provider_mistral_batch.batch import results_join
from airflow_provider_mistral_batch.batch.output_spec import output_spec
from airflow_provider_mistral_batch.batch.result_lines import parse_result_line
from airflow_provider_mistral_batch.batch.result_rows import NO_RESULT
from airflow_provider_mistral_batch.batch.results import ResultsSummary, join_results
from airflow_provider_mistral_batch.exceptions import MistralBatchError, MistralBatchInputError
from airflow_provider_mistral_batch.hooks.http.streams import jsonl_lines
from airflow_provider_mistral_batch.models import BatchResultLine

CHAT_BODY: dict[str, Any] = {"max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def ok_line(custom_id: str | None, body: Any = None, status: int = 200) -> str:
    if body is None:
        body = {"object": "chat.completion", "choices": [{"message": {"content": custom_id}}]}
    return json.dumps(
        {
            "id": f"batch-x-{custom_id}",
            "custom_id": custom_id,
            "response": {"status_code": status, "body": body},
            "error": None,
        }
    )


def error_object_line(custom_id: str, message: str, status: int = 500) -> str:
    return json.dumps(
        {
            "id": f"batch-x-{custom_id}",
            "custom_id": custom_id,
            "response": {"status_code": status, "body": {"object": "error", "message": message}},
            "error": {"message": message, "code": "injected_failure"},
        }
    )


def error_string_line(custom_id: str, message: str) -> str:
    return json.dumps({"custom_id": custom_id, "error": message})


def chat_usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def requests_of(custom_ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
    return [(cid, {**CHAT_BODY, "n": i}) for i, cid in enumerate(custom_ids)]


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def leftovers(folder: Path, keep: str) -> list[str]:
    """Files in ``folder`` other than ``keep``: temporary files the writer left behind."""
    return sorted(p.name for p in folder.iterdir() if p.name != keep)


# ---------------------------------------------------------------------------- order and shape


def test_lines_follow_the_input_order_whatever_the_result_order(tmp_path: Path) -> None:
    ids = [f"req-{i}" for i in range(60)]
    results = [ok_line(cid) for cid in ids]
    random.Random(7).shuffle(results)
    assert [json.loads(line)["custom_id"] for line in results] != ids

    summary = join_results(results, tmp_path / "r.jsonl", requests=requests_of(ids))

    lines = read_lines(tmp_path / "r.jsonl")
    assert [line["custom_id"] for line in lines] == ids
    assert all(
        list(line) == ["custom_id", "status", "ok", "status_code", "response", "output", "error"]
        for line in lines
    )
    assert lines[5] == {
        "custom_id": "req-5",
        "status": "success",
        "ok": True,
        "status_code": 200,
        "response": {"object": "chat.completion", "choices": [{"message": {"content": "req-5"}}]},
        "output": None,
        "error": None,
    }
    assert (summary.lines, summary.succeeded, summary.failed) == (60, 60, 0)
    assert (summary.missing, summary.missing_ids, summary.unexpected) == (0, [], 0)
    assert summary.input_known
    assert summary.path == str(tmp_path / "r.jsonl")


def test_failures_of_every_shape_carry_their_message(tmp_path: Path) -> None:
    results = [
        error_object_line("obj", "request obj failed"),
        error_string_line("bare", "bare string failure"),
        json.dumps(
            {
                "custom_id": "http4xx",
                "response": {"status_code": 404, "body": {"detail": "no such model"}},
            }
        ),
        json.dumps({"custom_id": "nomsg", "response": {"status_code": 429, "body": "slow down"}}),
        # A 2xx response that still carries an error is a failure.
        json.dumps(
            {"custom_id": "both", "response": {"status_code": 200, "body": {}}, "error": "late"}
        ),
        ok_line("fine"),
    ]
    ids = ["fine", "obj", "bare", "http4xx", "nomsg", "both"]

    summary = join_results(results, tmp_path / "r.jsonl", requests=requests_of(ids))

    by_id = {line["custom_id"]: line for line in read_lines(tmp_path / "r.jsonl")}
    assert by_id["obj"] == {
        "custom_id": "obj",
        "status": "error",
        "ok": False,
        "status_code": 500,
        "response": None,
        "output": None,
        "error": "request obj failed",
    }
    assert by_id["bare"] == {
        "custom_id": "bare",
        "status": "error",
        "ok": False,
        "status_code": None,
        "response": None,
        "output": None,
        "error": "bare string failure",
    }
    assert (by_id["http4xx"]["status_code"], by_id["http4xx"]["error"]) == (404, "no such model")
    assert (by_id["nomsg"]["status_code"], by_id["nomsg"]["error"]) == (429, "HTTP 429")
    assert (by_id["both"]["ok"], by_id["both"]["response"], by_id["both"]["error"]) == (
        False,
        None,
        "late",
    )
    assert by_id["fine"]["ok"] is True
    assert (summary.lines, summary.succeeded, summary.failed, summary.missing) == (6, 1, 5, 0)


@pytest.mark.parametrize(
    "raw",
    [
        ok_line("a", {"text": 'héllo ✓ "quoted" \\ back', "n": [1, 2.5, 1e-7, None, True]}),
        ok_line("b", {"usage": {"prompt_tokens": 3}}, status=201),
        ok_line("c", []),
        ok_line("d", "just text"),
        ok_line(None, {"x": 1}),
        '{"custom_id":"e","response":{"status_code":200}}',
        '{"custom_id":"f","response":{"status_code":200,"body":null},"error":null,"extra":1}',
        '{"custom_id" : "g" , "response" : { "status_code" : 200 , "body" : { "a" : 1 } } }',
        '{"custom_id":"h","response":{"status_code":"200","body":{"a":1}}}',
        '{"custom_id":"i","response":{"status_code":299.0,"body":{}}}',
        '{"custom_id":"j","response":{"status_code":200,"body":{"a":1}},"error":{}}',
        '{"custom_id":"k","response":{"status_code":300,"body":{"a":1}}}',
    ],
)
def test_each_line_says_what_the_result_line_model_reads(tmp_path: Path, raw: str) -> None:
    model = BatchResultLine.model_validate_json(raw)
    join_results([raw], tmp_path / "r.jsonl")

    (line,) = read_lines(tmp_path / "r.jsonl")
    assert line == {
        "custom_id": model.custom_id,
        "status": "success" if model.succeeded else "error",
        "ok": model.succeeded,
        "status_code": model.response.status_code if model.response else None,
        "response": model.response.body if model.succeeded and model.response else None,
        "output": None,
        "error": model.error_message,
    }


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not json at all", "result line 3 is not a batch result line: Invalid JSON"),
        ("[1, 2]", "result line 3 is not a batch result line"),
        ('{"custom_id": 7, "error": "x"}', "result line 3 is not a batch result line"),
        ('{"custom_id": "z"}', 'result line 3 is not a batch result line: it has no "response"'),
    ],
)
def test_a_line_that_is_not_a_result_line_is_named_and_nothing_is_written(
    tmp_path: Path, raw: str, reason: str
) -> None:
    with pytest.raises(MistralBatchError, match=reason):
        join_results([ok_line("a"), ok_line("b"), raw], tmp_path / "r.jsonl")
    assert leftovers(tmp_path, keep="") == []


# ---------------------------------------------------------------------------- the input


def test_missing_requests_are_written_counted_and_the_first_20_named(tmp_path: Path) -> None:
    ids = [f"m{i:02d}" for i in range(40)]
    present = set(ids[::4])  # 10 of 40 have a result
    results = [ok_line(cid) for cid in ids if cid in present]

    summary = join_results(results, tmp_path / "r.jsonl", requests=requests_of(ids))

    lines = read_lines(tmp_path / "r.jsonl")
    assert [line["custom_id"] for line in lines] == ids
    absent = [cid for cid in ids if cid not in present]
    assert summary.missing == 30
    assert summary.missing_ids == absent[:20]
    assert (summary.lines, summary.succeeded, summary.failed) == (40, 10, 30)
    assert lines[1] == {
        "custom_id": "m01",
        "status": "missing",
        "ok": False,
        "status_code": None,
        "response": None,
        "output": None,
        "error": NO_RESULT,
    }


def test_unexpected_and_repeated_ids_are_counted_and_written_once(tmp_path: Path) -> None:
    results = [
        ok_line("stranger", {"usage": chat_usage(100, 100)}),
        ok_line("a", {"usage": chat_usage(1, 2)}),
        error_string_line("b", "first b fails"),
        ok_line("a", {"usage": chat_usage(1000, 1000)}),  # repeat: not written, not summed
        ok_line("b", {"usage": chat_usage(5, 5)}),  # repeat of a failure: the first line stays
        error_string_line(None, "line 9 of the input is not JSON"),  # no custom_id at all
    ]

    summary = join_results(results, tmp_path / "r.jsonl", requests=requests_of(["b", "a"]))

    lines = read_lines(tmp_path / "r.jsonl")
    assert [(line["custom_id"], line["ok"]) for line in lines] == [
        ("b", False),
        ("a", True),
        ("stranger", True),
        (None, False),
    ]
    assert summary.unexpected == 4  # 2 outside the input + 2 repeats
    assert (summary.lines, summary.succeeded, summary.failed, summary.missing) == (4, 2, 2, 0)
    assert summary.usage == {"prompt_tokens": 101, "completion_tokens": 102, "total_tokens": 203}


def test_include_request_adds_each_body(tmp_path: Path) -> None:
    ids = ["x", "y", "z"]
    requests = requests_of(ids)
    results = [ok_line("z"), error_string_line("x", "boom"), ok_line("elsewhere")]

    join_results(results, tmp_path / "r.jsonl", requests=requests, include_request=True)

    lines = read_lines(tmp_path / "r.jsonl")
    assert [line["custom_id"] for line in lines] == ["x", "y", "z", "elsewhere"]
    assert [line["request"] for line in lines] == [body for _, body in requests] + [None]
    assert (lines[1]["error"], lines[2]["ok"]) == (NO_RESULT, True)
    assert list(lines[0]) == [
        "custom_id",
        "status",
        "ok",
        "status_code",
        "response",
        "output",
        "error",
        "request",
    ]


def test_include_request_needs_the_input(tmp_path: Path) -> None:
    with pytest.raises(MistralBatchInputError, match="include_request"):
        join_results([ok_line("a")], tmp_path / "r.jsonl", include_request=True)
    assert not (tmp_path / "r.jsonl").exists()


def test_without_the_input_lines_keep_file_order_and_nothing_is_missing(tmp_path: Path) -> None:
    results = [ok_line("c"), error_object_line("a", "no"), ok_line("b"), ok_line("c")]

    summary = join_results(results, tmp_path / "r.jsonl")

    assert [line["custom_id"] for line in read_lines(tmp_path / "r.jsonl")] == ["c", "a", "b"]
    assert not summary.input_known
    assert (summary.missing, summary.missing_ids, summary.unexpected) == (0, [], 1)
    assert (summary.lines, summary.succeeded, summary.failed) == (3, 2, 1)


def test_no_result_lines_at_all(tmp_path: Path) -> None:
    summary = join_results([], tmp_path / "r.jsonl", requests=requests_of(["a", "b"]))
    assert [line["error"] for line in read_lines(tmp_path / "r.jsonl")] == [NO_RESULT] * 2
    assert (summary.lines, summary.missing, summary.failed) == (2, 2, 2)

    empty = join_results(iter([]), tmp_path / "e.jsonl")
    assert (tmp_path / "e.jsonl").read_bytes() == b""
    assert empty.lines == 0


# ---------------------------------------------------------------------------- row states


class Person(BaseModel):
    name: str
    age: int


def answer_line(custom_id: str, content: Any, usage: dict[str, int] | None = None) -> str:
    """A chat answer whose message content is ``content`` (a string or a list of chunks)."""
    body: dict[str, Any] = {
        "object": "chat.completion",
        "choices": [{"message": {"content": content}}],
    }
    if usage is not None:
        body["usage"] = usage
    return ok_line(custom_id, body)


def test_a_structured_output_gives_success_or_invalid_output(tmp_path: Path) -> None:
    ids = ["good", "not-json", "wrong-shape", "no-text", "reasoning", "failed", "absent"]
    usage = chat_usage(2, 3)
    results = [
        answer_line("good", '{"name": "Ada", "age": 36}', usage),
        answer_line("not-json", "Ada is 36 years old", usage),
        answer_line("wrong-shape", '{"name": "Ada", "age": "old"}', usage),
        ok_line("no-text", {"choices": [{"message": {"content": None, "tool_calls": []}}]}),
        # A reasoning model: only the text chunks are the answer.
        answer_line(
            "reasoning",
            [
                {"type": "thinking", "thinking": [{"type": "text", "text": "{not: json}"}]},
                {"type": "text", "text": '{"name": "Bo",'},
                {"type": "text", "text": ' "age": 7}'},
            ],
        ),
        error_string_line("failed", "rate limited"),
    ]
    summary = join_results(
        results, tmp_path / "r.jsonl", requests=requests_of(ids), output=output_spec(Person)
    )
    rows = {row["custom_id"]: row for row in read_lines(tmp_path / "r.jsonl")}
    assert {cid: (row["status"], row["ok"]) for cid, row in rows.items()} == {
        "good": ("success", True),
        "not-json": ("invalid_output", False),
        "wrong-shape": ("invalid_output", False),
        "no-text": ("invalid_output", False),
        "reasoning": ("success", True),
        "failed": ("error", False),
        "absent": ("missing", False),
    }
    assert rows["good"]["output"] == {"name": "Ada", "age": 36}
    assert rows["reasoning"]["output"] == {"name": "Bo", "age": 7}
    assert "Invalid JSON" in rows["not-json"]["error"]
    assert rows["wrong-shape"]["error"].startswith("age: Input should be a valid integer")
    assert rows["no-text"]["error"] == "the answer has no text"
    # An invalid row keeps the answer as sent, and has no output.
    assert rows["not-json"]["response"]["choices"][0]["message"]["content"] == (
        "Ada is 36 years old"
    )
    assert all(rows[cid]["output"] is None for cid in ids if rows[cid]["status"] != "success")
    assert summary.counts == {
        "success": 2,
        "error": 1,
        "invalid_output": 3,
        "missing": 1,
        "expired": 0,
        "cancelled": 0,
    }
    assert (summary.succeeded, summary.failed, summary.missing) == (2, 5, 1)
    # The API answered the invalid rows: their tokens were spent and are counted.
    assert summary.usage["total_tokens"] == 15


def test_a_non_object_output_type_is_unwrapped(tmp_path: Path) -> None:
    results = [answer_line("a", '{"response": [1, 2, 3]}'), answer_line("b", "[1, 2, 3]")]
    join_results(results, tmp_path / "r.jsonl", output=output_spec(list[int]))
    rows = read_lines(tmp_path / "r.jsonl")
    assert [(row["status"], row["output"]) for row in rows] == [
        ("success", [1, 2, 3]),
        ("invalid_output", None),
    ]


def test_a_text_output_carries_the_answer_text(tmp_path: Path) -> None:
    results = [
        answer_line("plain", 'Hello ✓ "there"'),
        answer_line(
            "chunks",
            [{"type": "thinking", "thinking": []}, {"type": "text", "text": "Hi"}],
        ),
        # No text to carry (tool calls, say): text output checks nothing, still a success.
        ok_line("tools", {"choices": [{"message": {"content": None, "tool_calls": [{}]}}]}),
        ok_line("not-chat", {"data": [{"embedding": [0.1]}]}),
    ]
    summary = join_results(results, tmp_path / "r.jsonl", output=output_spec(str))
    rows = read_lines(tmp_path / "r.jsonl")
    assert [(row["custom_id"], row["status"], row["output"]) for row in rows] == [
        ("plain", "success", 'Hello ✓ "there"'),
        ("chunks", "success", "Hi"),
        ("tools", "success", None),
        ("not-chat", "success", None),
    ]
    assert summary.counts["success"] == 4


def test_without_an_output_spec_every_answer_is_a_success_without_output(tmp_path: Path) -> None:
    summary = join_results([answer_line("a", "not json")], tmp_path / "r.jsonl")
    assert (summary.succeeded, summary.counts["invalid_output"]) == (1, 0)
    [row] = read_lines(tmp_path / "r.jsonl")
    assert (row["status"], row["output"]) == ("success", None)


def test_a_repeated_custom_id_keeps_the_first_rows_status(tmp_path: Path) -> None:
    usage = chat_usage(1, 1)
    results = [
        answer_line("a", "not json", usage),
        answer_line("a", '{"name": "A", "age": 1}', chat_usage(100, 100)),
        answer_line("b", '{"name": "B", "age": 2}', usage),
        answer_line("b", "not json", chat_usage(100, 100)),
        error_string_line("c", "no"),
    ]
    summary = join_results(results, tmp_path / "r.jsonl", output=output_spec(Person))
    rows = read_lines(tmp_path / "r.jsonl")
    assert [row["status"] for row in rows] == ["invalid_output", "success", "error"]
    assert (summary.succeeded, summary.counts["invalid_output"], summary.unexpected) == (1, 1, 2)
    assert summary.counts["error"] == 1
    assert summary.usage["total_tokens"] == 4  # the first lines' usage only


def test_an_invalid_output_row_carries_its_request_when_asked(tmp_path: Path) -> None:
    join_results(
        [answer_line("a", "not json")],
        tmp_path / "r.jsonl",
        requests=requests_of(["a"]),
        include_request=True,
        output=output_spec(Person),
    )
    (row,) = read_lines(tmp_path / "r.jsonl")
    assert (row["status"], row["output"], row["request"]) == (
        "invalid_output",
        None,
        {**CHAT_BODY, "n": 0},
    )
    assert list(row)[-3:] == ["output", "error", "request"]


@pytest.mark.parametrize("include_request", [False, True])
def test_unanswered_requests_are_missing_expired_or_cancelled_as_their_job_ended(
    tmp_path: Path, include_request: bool
) -> None:
    # Three jobs' requests, one after the other (more than one batch of rows each), then one
    # request given without a status; every third request has a result line.
    ends = {"t": "expired", "c": "cancelled", "m": "missing"}
    tagged = [(f"{prefix}{i}", {"n": i}, end) for prefix, end in ends.items() for i in range(2_500)]
    requests: list[Any] = [*tagged, ("untagged", None)]
    answered = {request[0] for request in requests[::3]}
    results = [ok_line(cid) for cid in sorted(answered)]

    summary = join_results(
        results, tmp_path / "r.jsonl", requests=requests, include_request=include_request
    )

    rows = read_lines(tmp_path / "r.jsonl")
    assert [row["custom_id"] for row in rows] == [request[0] for request in requests]
    expected = ["success" if cid in answered else end for cid, _, end in tagged] + [
        "success" if "untagged" in answered else "missing"
    ]
    assert [row["status"] for row in rows] == expected
    by_status = {row["status"]: row for row in rows}
    assert by_status["expired"]["error"] == f"{NO_RESULT}: the job ended TIMEOUT_EXCEEDED"
    assert by_status["cancelled"]["error"] == f"{NO_RESULT}: the job ended CANCELLED"
    assert by_status["missing"]["error"] == NO_RESULT
    assert summary.counts == {status: expected.count(status) for status in summary.counts}
    assert (summary.counts["expired"], summary.counts["cancelled"]) == (1_666, 1_667)
    # Every request without a result line is named among the missing ones, whatever its end.
    assert summary.missing == len(requests) - len(answered)
    assert summary.missing_ids[:2] == ["t1", "t2"]


def test_an_unknown_unanswered_status_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MistralBatchInputError, match="'lost' is not a status"):
        join_results([], tmp_path / "r.jsonl", requests=[("a", None, "lost")])
    assert leftovers(tmp_path, keep="") == []


# ---------------------------------------------------------------------------- usage


def test_usage_sums_every_numeric_field_of_successful_bodies_only(tmp_path: Path) -> None:
    rng = random.Random(3)
    bodies: list[dict[str, Any]] = [
        {"usage": chat_usage(rng.randint(1, 500), rng.randint(1, 500))} for _ in range(25)
    ]
    bodies.append({"pages": [], "usage_info": {"pages_processed": 3, "doc_size_bytes": None}})
    bodies.append({"usage_info": {"pages_processed": 2, "doc_size_bytes": 1024}})
    bodies.append({"usage": {"prompt_audio_seconds": 12.5, "prompt_tokens": 4, "cached": True}})
    bodies.append({"usage": {"prompt_tokens": 1, "prompt_tokens_details": {"cached_tokens": 9}}})
    bodies.append({"text": "no usage here"})
    results = [ok_line(f"s{i}", body) for i, body in enumerate(bodies)]
    failed_body = {"message": "rate limited", "usage": chat_usage(10_000, 10_000)}
    results.append(
        json.dumps({"custom_id": "f", "response": {"status_code": 429, "body": failed_body}})
    )
    results.append(
        json.dumps(
            {
                "custom_id": "g",
                "response": {"status_code": 200, "body": {"usage": chat_usage(7_000, 7_000)}},
                "error": "failed after all",
            }
        )
    )

    expected: dict[str, int | float] = {}
    for body in bodies:
        for part in (body.get("usage"), body.get("usage_info")):
            for key, value in (part or {}).items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    expected[key] = expected.get(key, 0) + value

    summary = join_results(results, tmp_path / "r.jsonl")

    assert summary.usage == expected
    assert summary.usage["pages_processed"] == 5
    assert summary.usage["prompt_audio_seconds"] == 12.5
    assert "cached" not in summary.usage
    assert "prompt_tokens_details" not in summary.usage
    assert (summary.succeeded, summary.failed) == (len(bodies), 2)


def test_usage_always_has_the_token_keys(tmp_path: Path) -> None:
    ocr = ok_line("p", {"usage_info": {"pages_processed": 4}})
    summary = join_results([ocr, error_string_line("q", "no")], tmp_path / "r.jsonl")
    assert summary.usage == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "pages_processed": 4,
    }


def test_as_xcom_is_small_and_json_safe(tmp_path: Path) -> None:
    summary = join_results(
        [ok_line("a", {"usage": chat_usage(2, 3)})],
        tmp_path / "r.jsonl",
        requests=requests_of(["a", "b"]),
    )
    xcom = summary.as_xcom()
    assert json.loads(json.dumps(xcom)) == xcom
    assert xcom == {
        "results_path": str(tmp_path / "r.jsonl"),
        "lines": 2,
        "succeeded": 1,
        "failed": 1,
        "counts": {
            "success": 1,
            "error": 0,
            "invalid_output": 0,
            "missing": 1,
            "expired": 0,
            "cancelled": 0,
        },
        "missing_requests": 1,
        "missing_ids": ["b"],
        "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5},
    }
    assert isinstance(summary, ResultsSummary)


# ---------------------------------------------------------------------------- destinations


def _failing_midway(count: int) -> Iterator[str]:
    for i in range(count):
        yield ok_line(f"r{i}")
    raise RuntimeError("the connection broke")


@pytest.mark.parametrize("with_input", [False, True])
def test_an_error_midway_leaves_no_destination_and_no_temporary_file(
    tmp_path: Path, with_input: bool
) -> None:
    requests = requests_of([f"r{i}" for i in range(5000)]) if with_input else None
    with pytest.raises(RuntimeError, match="connection broke"):
        join_results(_failing_midway(3000), tmp_path / "r.jsonl", requests=requests)
    assert leftovers(tmp_path, keep="") == []


def test_an_error_midway_leaves_an_existing_destination_untouched(tmp_path: Path) -> None:
    destination = tmp_path / "r.jsonl"
    destination.write_text("earlier run\n", encoding="utf-8")
    with pytest.raises(RuntimeError):
        join_results(_failing_midway(10), destination)
    assert destination.read_text(encoding="utf-8") == "earlier run\n"
    assert leftovers(tmp_path, keep="r.jsonl") == []


def test_an_existing_destination_is_replaced(tmp_path: Path) -> None:
    destination = tmp_path / "r.jsonl"
    destination.write_text("earlier run\n" * 100, encoding="utf-8")
    join_results([ok_line("a")], str(destination))
    assert [line["custom_id"] for line in read_lines(destination)] == ["a"]
    assert leftovers(tmp_path, keep="r.jsonl") == []


def test_a_replaced_destination_keeps_its_mode_from_the_first_byte(tmp_path: Path) -> None:
    destination = tmp_path / "r.jsonl"
    destination.write_text("earlier run\n", encoding="utf-8")
    destination.chmod(0o600)
    modes: list[int] = []

    def results() -> Iterator[str]:
        # Seen while the new file is being written, beside the destination.
        modes.extend(stat.S_IMODE(p.stat().st_mode) for p in tmp_path.glob(".r.jsonl.*.part"))
        yield ok_line("a")

    with umask(0o022):
        join_results(results(), destination)
    assert [line["custom_id"] for line in read_lines(destination)] == ["a"]
    assert stat.S_IMODE(destination.stat().st_mode) == 0o600
    assert modes == [0o600], "the file being written was never readable by others"


def test_a_new_destination_gets_the_mode_the_umask_gives(tmp_path: Path) -> None:
    with umask(0o027):
        join_results([ok_line("a")], tmp_path / "r.jsonl")
    assert stat.S_IMODE((tmp_path / "r.jsonl").stat().st_mode) == 0o640


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    earlier = os.umask(mask)
    try:
        yield
    finally:
        os.umask(earlier)


def test_an_object_storage_path_destination(tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    destination = ObjectStoragePath(f"file://{tmp_path}/r.jsonl")
    ids = ["a", "b", "c"]
    results = [ok_line("c"), ok_line("a")]

    summary = join_results(results, destination, requests=requests_of(ids))

    assert summary.path == f"file://{tmp_path}/r.jsonl"
    assert [line["custom_id"] for line in read_lines(tmp_path / "r.jsonl")] == ids
    assert summary.missing_ids == ["b"]
    assert leftovers(tmp_path, keep="r.jsonl") == []
    # Written again over the existing object.
    join_results([ok_line("z")], destination)
    assert [line["custom_id"] for line in read_lines(tmp_path / "r.jsonl")] == ["z"]
    assert leftovers(tmp_path, keep="r.jsonl") == []


def test_an_object_storage_path_is_untouched_on_error(tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    (tmp_path / "r.jsonl").write_text("earlier run\n", encoding="utf-8")
    with pytest.raises(RuntimeError):
        join_results(_failing_midway(100), ObjectStoragePath(f"file://{tmp_path}/r.jsonl"))
    assert (tmp_path / "r.jsonl").read_text(encoding="utf-8") == "earlier run\n"
    assert leftovers(tmp_path, keep="r.jsonl") == []


# ---------------------------------------------------------------------------- memory


def _many_results(count: int) -> Iterator[str]:
    """``count`` chat-sized result lines (about 500 bytes each), in a shuffled order.

    Each kind of line is made once with ``%(name)d`` fields for its numbers: the same text as
    ``json.dumps`` of each line gives, with far fewer allocations for tracemalloc (on while the
    lines are made) to trace.
    """
    order = list(range(count))
    random.Random(1).shuffle(order)
    body = {
        "id": "cmpl-%(i)d",
        "choices": [{"message": {"content": "word " * 60}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": "%(c)d", "total_tokens": "%(t)d"},
    }
    ok = ok_line("r%(i)d", body).replace('"%(c)d"', "%(c)d").replace('"%(t)d"', "%(t)d")
    failed = error_object_line("r%(i)d", "failed")
    for i in order:
        yield ok % {"i": i, "c": i % 7, "t": 10 + i % 7} if i % 50 else failed % {"i": i}


def test_memory_stays_bounded_for_200_000_lines(tmp_path: Path) -> None:
    count = 200_000
    requests = ((f"r{i}", None) for i in range(count))
    tracemalloc.start()
    try:
        summary = join_results(_many_results(count), tmp_path / "r.jsonl", requests=requests)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # The output alone is ~100 MB; holding it, or the lines, would go far past this.
    assert (tmp_path / "r.jsonl").stat().st_size > 90_000_000
    assert peak < 30 * 1024 * 1024, f"peak Python allocations {peak / 1e6:.1f} MB"
    assert (summary.lines, summary.failed, summary.missing) == (count, count // 50, 0)
    assert summary.usage["completion_tokens"] == sum(i % 7 for i in range(count) if i % 50)
    with (tmp_path / "r.jsonl").open(encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            assert line.startswith(f'{{"custom_id":"r{i}",'), (i, line[:40])
        assert i == count - 1


def test_an_sqlite_without_json_each_gives_the_same_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [f"j{i}" for i in range(5000)]
    results = [ok_line(cid) for cid in reversed(ids[::2])]
    join_results(results, tmp_path / "fast.jsonl", requests=requests_of(ids))
    monkeypatch.setattr(results_join.ResultsJoin, "_has_json_each", lambda self: False)
    join_results(results, tmp_path / "slow.jsonl", requests=requests_of(ids))
    assert (tmp_path / "slow.jsonl").read_bytes() == (tmp_path / "fast.jsonl").read_bytes()
    assert [line["custom_id"] for line in read_lines(tmp_path / "slow.jsonl")] == ids


# ---------------------------------------------------------------------------- odd lines and ids


@pytest.mark.parametrize("keep_bodies", [False, True])
def test_ids_holding_u0000_join_in_both_ways_of_storing_the_input(
    tmp_path: Path, keep_bodies: bool
) -> None:
    # More ids than one batch of rows: the batches with a NUL go in row by row, the others
    # through SQLite's json_each, in one order.
    ids = [f"r{i}" for i in range(4_500)]
    ids[10] = "\x00"
    ids[11] = "a\x00b"
    ids[2_500] = "\x00\x00"
    ids[4_400] = "\\u0000"  # a backslash and "u0000": looks like an escaped NUL once encoded
    results = [ok_line(cid) for cid in reversed(ids)]

    summary = join_results(
        results, tmp_path / "r.jsonl", requests=requests_of(ids), include_request=keep_bodies
    )

    assert (summary.missing, summary.unexpected, summary.succeeded) == (0, 0, len(ids))
    assert [line["custom_id"] for line in read_lines(tmp_path / "r.jsonl")] == ids


def test_a_missing_id_holding_u0000_is_written_whole(tmp_path: Path) -> None:
    summary = join_results([], tmp_path / "r.jsonl", requests=[("a\x00b", None)])
    assert summary.missing_ids == ["a\x00b"]
    assert read_lines(tmp_path / "r.jsonl")[0]["custom_id"] == "a\x00b"


@pytest.mark.parametrize("include_request", [False, True])
def test_an_input_id_that_is_not_unicode_text_is_an_input_error(
    tmp_path: Path, include_request: bool
) -> None:
    with pytest.raises(MistralBatchInputError, match="not Unicode text"):
        join_results(
            [ok_line("a")],
            tmp_path / "r.jsonl",
            requests=[("a", {}), ("\ud800", {})],
            include_request=include_request,
        )
    assert leftovers(tmp_path, keep="") == []


def test_a_line_that_is_not_utf8_is_named_across_the_files(tmp_path: Path) -> None:
    first = [f"{ok_line('a')}\n".encode(), b"\n"]  # one line, then a blank one
    second = [f"{error_string_line('b', 'x')}\r\n".encode(), b'{"custom_id": "\xe9"}\n']

    def lines() -> Iterator[str]:
        yield from jsonl_lines(first, "file f-1")
        yield from jsonl_lines(second, "file f-2")

    with pytest.raises(MistralBatchError) as caught:
        join_results(lines(), tmp_path / "r.jsonl")
    assert str(caught.value) == (
        "result line 3 is not a batch result line: file f-2 line 2 is not UTF-8 text: "
        "invalid continuation byte at byte 16 (0xe9)"
    )
    assert leftovers(tmp_path, keep="") == []


@pytest.mark.parametrize(
    ("raw", "constant"),
    [
        ('{"custom_id":"a","response":{"status_code":200,"body":{"x":NaN}}}', "NaN"),
        ('{"custom_id":"a","response":{"status_code":200,"body":[Infinity]}}', "Infinity"),
        ('{"custom_id":"a","error":{"message":"m","score":-Infinity}}', "-Infinity"),
        ('{"custom_id":"a","response":{"status_code":500},"extra":NaN}', "NaN"),
    ],
)
def test_nan_and_infinity_are_not_json_numbers(tmp_path: Path, raw: str, constant: str) -> None:
    reason = f"result line 2 is not a batch result line: {constant} is not a JSON number"
    with pytest.raises(MistralBatchError, match=f"^{reason}$"):
        join_results([ok_line("b"), raw], tmp_path / "r.jsonl")
    with pytest.raises(MistralBatchError, match=f"^x is not a batch result line: {constant} "):
        parse_result_line(raw, "x")


def test_the_words_nan_and_infinity_in_strings_are_text(tmp_path: Path) -> None:
    raw = json.dumps({"custom_id": "NaN", "error": "Infinity and beyond", "NaN": "Infinity"})
    join_results([raw], tmp_path / "r.jsonl")
    assert read_lines(tmp_path / "r.jsonl")[0]["error"] == "Infinity and beyond"
    assert parse_result_line(raw, "x").custom_id == "NaN"


@pytest.mark.parametrize("status", ["200", '"200"'])
def test_a_number_past_the_float_range_is_copied_as_sent(tmp_path: Path, status: str) -> None:
    # JSON allows 1e400; pydantic reads it as infinity and would write Infinity back. A
    # success read by the fast path (status 200) or by the model (a status in a string)
    # keeps the number as sent.
    body = '{"x":1e400,"usage":{"total_tokens":1e400,"prompt_tokens":3}}'
    raw = f'{{"custom_id":"a","response":{{"status_code":{status},"body":{body}}}}}'
    summary = join_results([raw], tmp_path / "r.jsonl")
    text = (tmp_path / "r.jsonl").read_text(encoding="utf-8")
    start = '{"custom_id":"a","status":"success","ok":true,"status_code":200,"response":'
    assert text == f'{start}{body},"output":null,"error":null}}\n'
    assert summary.succeeded == 1
    # A usage object msgspec cannot read (a number past the float range) is not summed.
    assert summary.usage == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert parse_result_line(raw, "x").succeeded


def _nested(depth: int, where: str, status: str = "200") -> str:
    nested = "[" * depth + "]" * depth
    if where == "body":
        return f'{{"custom_id":"a","response":{{"status_code":{status},"body":{nested}}}}}'
    return f'{{"custom_id":"a","error":{nested}}}'


def _verdicts(line: str, path: Path, depth: int) -> tuple[bool, bool]:
    """Whether write_results and parse_result_line take the line, called ``depth`` frames
    deeper than this one."""
    if depth:
        return _verdicts(line, path, depth - 1)
    message = ""
    try:
        join_results([line], path)
    except MistralBatchError as exc:
        message = str(exc)
    try:
        parse_result_line(line, "x")
        alone = True
    except MistralBatchError:
        alone = False
    if message:
        assert message.startswith("result line 1 is not a batch result line: "), message
    return not message, alone


@pytest.mark.parametrize(("where", "status"), [("body", "200"), ("body", '"200"'), ("error", "")])
def test_near_the_recursion_limit_both_readers_agree_from_any_stack(
    tmp_path: Path, where: str, status: str
) -> None:
    # msgspec's depth depends on the caller's stack: a deep line is decided from a new
    # thread, whose stack is shallower than the fast path's, so the verdict never does.
    limit = sys.getrecursionlimit()
    verdicts = {}
    for depth in range(limit - 30, limit + 5):
        line = _nested(depth, where, status)
        seen = {_verdicts(line, tmp_path / "r.jsonl", extra) for extra in (0, 40, 200)}
        assert len(seen) == 1, (depth, seen)
        [(joined, alone)] = seen
        assert joined is alone, depth
        verdicts[depth] = joined
    # Accepted up to some depth close to the limit, refused past it.
    accepted = [depth for depth, taken in verdicts.items() if taken]
    assert accepted == list(range(limit - 30, max(accepted) + 1))
    assert limit - 30 < max(accepted) < limit


def test_a_deep_success_is_copied_as_sent_and_a_deep_repeat_recounted(tmp_path: Path) -> None:
    # Deeper than pydantic reads (200), by the fast path (status 200) and by the model.
    deep = _nested(300, "body")
    lax = _nested(300, "body", '"200"')
    repeat = ok_line("a", {"usage": chat_usage(5, 5)})
    summary = join_results([deep, lax, repeat], tmp_path / "r.jsonl")
    text = (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(text) == 1  # one custom_id "a": the first line is kept
    assert text[0] == (
        '{"custom_id":"a","status":"success","ok":true,"status_code":200,"response":'
        + "[" * 300
        + "]" * 300
        + ',"output":null,"error":null}'
    )
    assert (summary.unexpected, summary.succeeded) == (2, 1)
    assert summary.usage == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert parse_result_line(deep, "x").response is not None
