"""Reading an input JSONL back to join results with it: ids in order, bodies when asked, and
the rule that ids must not repeat."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mistral_batch.batch import repeated_ids
from airflow_provider_mistral_batch.batch.request_lines import (
    requests_of_lines,
    requests_of_path,
    unique_requests,
)
from airflow_provider_mistral_batch.exceptions import MistralBatchInputError

BODY = {"max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def _req(custom_id: str) -> dict[str, Any]:
    return {"custom_id": custom_id, "body": dict(BODY)}


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_unique_requests_pass_the_input_through_and_read_it_again_only_for_a_repeat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pairs = [(str(i), {"n": i}) for i in range(30)]

    def unread() -> Iterator[tuple[str, str]]:
        raise AssertionError("read again although no id repeats")

    assert list(unique_requests(iter(pairs), unread, "task")) == pairs
    places = [(custom_id, f"item {custom_id}") for custom_id, _ in pairs]
    # Every id hashes alike: read again, and equal hashes of different ids are no repeat.
    monkeypatch.setattr(repeated_ids, "hash", lambda value: 1, raising=False)
    assert list(unique_requests(iter(pairs), lambda: iter(places), "task")) == pairs
    repeated = [*pairs, ("7", None), ("3", None)]
    places += [("7", "item 30"), ("3", "item 31")]
    with pytest.raises(MistralBatchInputError) as caught:
        list(unique_requests(iter(repeated), lambda: iter(places), "task"))
    assert str(caught.value) == (
        "task: results cannot be joined with an input whose custom_ids repeat (2 repeats):\n"
        'item 30: custom_id "7" repeats item 7\n'
        'item 31: custom_id "3" repeats item 3'
    )


@pytest.mark.parametrize("with_body", [False, True])
def test_requests_of_lines_gives_ids_in_order_and_bodies_only_when_asked(with_body: bool) -> None:
    lines = [
        json.dumps(_req("b")),
        "",
        json.dumps({"body": {"input": "no id"}}),
        json.dumps({"custom_id": 7, "body": {}}).encode(),
        json.dumps(_req("a")),
    ]
    got = list(requests_of_lines(lines, with_body=with_body))
    assert [custom_id for custom_id, _ in got] == ["b", "2", "7", "a"]
    if with_body:
        assert got[0][1] == _req("b")["body"]
        assert got[1][1] == {"input": "no id"}
    else:
        assert all(body is None for _, body in got)


def test_requests_of_path_streams_a_local_file(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "in.jsonl", [json.dumps(_req(str(i))) for i in range(3)])
    assert [cid for cid, _ in requests_of_path(path)] == ["0", "1", "2"]
    assert [body for _, body in requests_of_path(path, with_body=True)] == [BODY] * 3


@pytest.mark.parametrize("with_body", [False, True])
@pytest.mark.parametrize(
    ("line", "problem"),
    [("{not json", "is not valid JSON"), ("[1, 2]", "is not a JSON object")],
)
def test_a_bad_input_line_to_join_is_an_error_naming_it(
    line: str, problem: str, with_body: bool
) -> None:
    lines = [json.dumps(_req("a")), line]
    with pytest.raises(MistralBatchInputError) as caught:
        list(requests_of_lines(lines, with_body=with_body))
    assert str(caught.value) == f"input line 2 {problem}: cannot join results with it"


def test_requests_of_path_reads_a_url_string_and_refuses_a_scheme_without_a_filesystem(
    tmp_path: Path,
) -> None:
    path = _write_lines(tmp_path / "in.jsonl", [json.dumps(_req("a"))])
    assert list(requests_of_path(f"file://{path}")) == [("a", None)]
    with pytest.raises(MistralBatchInputError, match=r"^input_path 'nosuchscheme://b/in\.jsonl': "):
        list(requests_of_path("nosuchscheme://b/in.jsonl"))
