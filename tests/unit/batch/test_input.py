"""Validation of batch input before upload: messages that name the line, limits, fingerprints."""

from __future__ import annotations

import importlib.util
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import ObjectStoragePath

from airflow_provider_mistral_batch.batch import input as batch_input
from airflow_provider_mistral_batch.batch import repeated_ids, shards
from airflow_provider_mistral_batch.batch.input import (
    FileInput,
    InlineInput,
    ShardedInput,
    UploadedInput,
    canonical_json,
    prepare_file,
    prepare_file_ids,
    prepare_requests,
    temporary_files,
)
from airflow_provider_mistral_batch.exceptions import MistralBatchInputError
from airflow_provider_mistral_batch.utils.paths import prepare_destination

CHAT = "/v1/chat/completions"
BODY = {"max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def _req(custom_id: str, **body: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "body": {**BODY, **body}}


def _error(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(MistralBatchInputError) as caught:
        call(*args, **kwargs)
    return str(caught.value)


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Temporary copies land in a folder of this test, so leftovers can be counted."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _limit_file_bytes(monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    """The most bytes one input file may hold, for the input checks and the shard writer."""
    monkeypatch.setattr(batch_input, "MAX_FILE_BYTES", size)
    monkeypatch.setattr(shards, "MAX_FILE_BYTES", size)


def _leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "tmp").iterdir())


# ---------------------------------------------------------------- inline requests


def test_valid_inline_requests_are_returned_normalized() -> None:
    prepared = prepare_requests(
        [_req("a"), {"custom_id": "b", "body": {"input": "x"}, "extra": 1}],
        endpoint=CHAT,
        model="mistral-small-latest",
    )
    assert isinstance(prepared, InlineInput)
    assert prepared.request_count == 2
    assert prepared.requests[0] == _req("a")
    assert prepared.requests[1] == {"custom_id": "b", "body": {"input": "x"}, "extra": 1}
    assert len(prepared.fingerprint) == 64


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("text", "requests[0]: expected a JSON object, got a string"),
        ([1, 2], "requests[0]: expected a JSON object, got a list"),
        (None, "requests[0]: expected a JSON object, got null"),
        (3, "requests[0]: expected a JSON object, got a number"),
        (True, "requests[0]: expected a JSON object, got a boolean"),
        ({"custom_id": "a"}, 'requests[0]: missing "body" (the request payload)'),
        (
            {"custom_id": "a", "body": "hi"},
            'requests[0]: "body" must be a JSON object, got a string',
        ),
        (
            {"custom_id": "a", "body": None},
            'requests[0]: "body" must be a JSON object, got null',
        ),
        (
            {"custom_id": "a", "body": [1]},
            'requests[0]: "body" must be a JSON object, got a list',
        ),
        (
            {"body": BODY},
            'requests[0]: missing "custom_id" (give every request a unique one, or set '
            "assign_custom_ids=True to use each request's position)",
        ),
        (
            {"custom_id": 7, "body": BODY},
            'requests[0]: "custom_id" must be a non-empty string, got 7',
        ),
        (
            {"custom_id": "", "body": BODY},
            "requests[0]: \"custom_id\" must be a non-empty string, got ''",
        ),
    ],
)
def test_each_bad_request_is_named(item: Any, expected: str) -> None:
    message = _error(prepare_requests, [item], endpoint=CHAT, model="mistral-small-latest")
    assert message == f"invalid batch input (1 problems):\n{expected}"


def test_duplicate_inline_custom_id_names_the_first_position() -> None:
    message = _error(
        prepare_requests,
        [_req("x"), _req("y"), _req("x")],
        endpoint=CHAT,
        model="mistral-small-latest",
    )
    assert 'requests[2]: custom_id "x" repeats [0]' in message
    assert "(1 problems)" in message


def test_every_problem_is_listed_not_only_the_first() -> None:
    message = _error(
        prepare_requests,
        [_req("a"), {"body": BODY}, "x", _req("a")],
        endpoint=CHAT,
        model="mistral-small-latest",
        source="my_requests",
    )
    lines = message.splitlines()
    assert lines[0] == "invalid batch input (3 problems):"
    assert lines[1].startswith('my_requests[1]: missing "custom_id"')
    assert lines[2] == "my_requests[2]: expected a JSON object, got a string"
    assert lines[3] == 'my_requests[3]: custom_id "a" repeats [0]'


def test_at_most_twenty_problems_are_listed_then_counted() -> None:
    message = _error(
        prepare_requests, [{"body": BODY}] * 25, endpoint=CHAT, model="mistral-small-latest"
    )
    lines = message.splitlines()
    assert lines[0] == "invalid batch input (25 problems):"
    listed = [line for line in lines if line.startswith("requests[")]
    assert len(listed) == 20
    assert listed[-1].startswith("requests[19]:")
    assert lines[-1] == "(and 5 more problems)"


def test_exactly_twenty_problems_have_no_tail() -> None:
    message = _error(
        prepare_requests, [{"body": BODY}] * 20, endpoint=CHAT, model="mistral-small-latest"
    )
    assert "more problems" not in message
    assert len(message.splitlines()) == 21


def test_empty_batch_is_refused() -> None:
    assert _error(prepare_requests, [], endpoint=CHAT, model="mistral-small-latest") == (
        "requests: no requests: the batch is empty"
    )


@pytest.mark.parametrize(
    ("value", "kind"), [("abc", "a string"), (b"abc", "bytes"), ({"a": 1}, "an object")]
)
def test_requests_that_are_not_a_list_are_refused(value: Any, kind: str) -> None:
    message = _error(prepare_requests, value, endpoint=CHAT, model="mistral-small-latest")
    assert message == f"requests must be a list of {{'custom_id', 'body'}} objects, got {kind}"


@pytest.mark.parametrize(("value", "kind"), [(None, "null"), (5, "a number")])
def test_requests_that_are_not_iterable_are_an_input_error(value: Any, kind: str) -> None:
    message = _error(prepare_requests, value, endpoint=CHAT, model="mistral-small-latest")
    assert message == f"requests must be a list of {{'custom_id', 'body'}} objects, got {kind}"


def test_a_generator_of_requests_is_accepted() -> None:
    prepared = prepare_requests(
        (_req(str(i)) for i in range(3)), endpoint=CHAT, model="mistral-small-latest"
    )
    assert isinstance(prepared, InlineInput)
    assert [r["custom_id"] for r in prepared.requests] == ["0", "1", "2"]


def _lines_of(prepared: FileInput) -> list[str]:
    return [json.loads(line)["custom_id"] for line in prepared.path.read_text().splitlines()]


def test_more_requests_than_one_job_takes_are_sharded_in_input_order(
    tmp_path: Path,
) -> None:
    requests = [_req(str(i)) for i in range(7)]
    prepared = prepare_requests(
        requests, endpoint=CHAT, model="mistral-small-latest", max_requests_per_job=3
    )
    assert isinstance(prepared, ShardedInput)
    assert [shard.request_count for shard in prepared.shards] == [3, 3, 1]
    assert [_lines_of(shard) for shard in prepared.shards] == [
        ["0", "1", "2"],
        ["3", "4", "5"],
        ["6"],
    ]
    assert [shard.filename for shard in prepared.shards] == [
        "requests.part-1-of-3.jsonl",
        "requests.part-2-of-3.jsonl",
        "requests.part-3-of-3.jsonl",
    ]
    assert prepared.request_count == 7
    assert all(shard.temporary for shard in prepared.shards)
    assert sorted(p.name for p in temporary_files(prepared)) == _leftovers(tmp_path)


def test_exactly_at_the_limit_is_one_job_and_one_over_is_two() -> None:
    at_limit = prepare_requests(
        [_req(str(i)) for i in range(3)],
        endpoint=CHAT,
        model="mistral-small-latest",
        max_requests_per_job=3,
    )
    assert isinstance(at_limit, InlineInput)
    one_over = prepare_requests(
        [_req(str(i)) for i in range(4)],
        endpoint=CHAT,
        model="mistral-small-latest",
        max_requests_per_job=3,
    )
    assert isinstance(one_over, ShardedInput)
    assert [s.request_count for s in one_over.shards] == [3, 1]


def test_without_max_requests_per_job_the_api_limit_shards(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batch_input, "MAX_REQUESTS_PER_JOB", 3)
    monkeypatch.setattr(batch_input, "MAX_INLINE_REQUESTS", 2)
    at_limit = prepare_requests(
        [_req(str(i)) for i in range(3)], endpoint=CHAT, model="mistral-small-latest"
    )
    assert isinstance(at_limit, FileInput)
    over = prepare_requests(
        [_req(str(i)) for i in range(4)], endpoint=CHAT, model="mistral-small-latest"
    )
    assert isinstance(over, ShardedInput)
    assert [s.request_count for s in over.shards] == [3, 1]


def test_custom_ids_stay_unique_across_shards() -> None:
    requests = [_req("a"), _req("b"), _req("c"), _req("a")]
    message = _error(
        prepare_requests,
        requests,
        endpoint=CHAT,
        model="mistral-small-latest",
        max_requests_per_job=2,
    )
    assert message == 'invalid batch input (1 problems):\nrequests[3]: custom_id "a" repeats [0]'


def test_an_invalid_input_leaves_no_shard_behind(tmp_path: Path) -> None:
    requests = [_req(str(i)) for i in range(5)] + [{"body": BODY}]
    _error(
        prepare_requests,
        requests,
        endpoint=CHAT,
        model="mistral-small-latest",
        max_requests_per_job=2,
    )
    assert _leftovers(tmp_path) == []


def test_the_fingerprint_covers_the_whole_input_whatever_the_shards() -> None:
    requests = [_req(str(i)) for i in range(5)]
    one = prepare_requests(requests, endpoint=CHAT, model="mistral-small-latest")
    assert isinstance(one, InlineInput)
    sharded = prepare_requests(
        requests, endpoint=CHAT, model="mistral-small-latest", max_requests_per_job=2
    )
    assert isinstance(sharded, ShardedInput)
    assert len(sharded.shards) == 3
    assert one.fingerprint == sharded.fingerprint


def test_a_generator_is_streamed_to_shards_as_it_comes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(batch_input, "MAX_INLINE_REQUESTS", 10)

    def generate() -> Iterator[dict[str, Any]]:
        for i in range(1000):
            yield _req(str(i))

    prepared = prepare_requests(
        generate(), endpoint=CHAT, model="mistral-small-latest", max_requests_per_job=400
    )
    assert isinstance(prepared, ShardedInput)
    assert [s.request_count for s in prepared.shards] == [400, 400, 200]


def test_assign_custom_ids_uses_positions() -> None:
    prepared = prepare_requests(
        [{"body": BODY}, _req("mine"), {"body": {"input": "z"}}],
        endpoint=CHAT,
        model="mistral-small-latest",
        assign_custom_ids=True,
    )
    assert isinstance(prepared, InlineInput)
    assert [r["custom_id"] for r in prepared.requests] == ["0", "mine", "2"]


def test_assigned_id_that_collides_with_a_given_one_is_a_duplicate() -> None:
    message = _error(
        prepare_requests,
        [_req("1"), {"body": BODY}],
        endpoint=CHAT,
        model="mistral-small-latest",
        assign_custom_ids=True,
    )
    assert 'requests[1]: custom_id "1" repeats [0]' in message


def test_assign_custom_ids_still_checks_given_ids() -> None:
    message = _error(
        prepare_requests,
        [{"custom_id": 3, "body": BODY}],
        endpoint=CHAT,
        model="mistral-small-latest",
        assign_custom_ids=True,
    )
    assert '"custom_id" must be a non-empty string, got 3' in message


def test_inline_input_does_not_alias_the_callers_objects() -> None:
    original = _req("a")
    prepared = prepare_requests([original], endpoint=CHAT, model="mistral-small-latest")
    assert isinstance(prepared, InlineInput)
    prepared.requests[0]["body"]["max_tokens"] = 999
    assert original["body"]["max_tokens"] == 8


def test_repeats_are_listed_in_input_order_among_the_other_problems() -> None:
    requests = [_req("a"), *[{"body": BODY}] * 5, _req("a"), *[{"body": BODY}] * 20, _req("a")]
    message = _error(prepare_requests, requests, endpoint=CHAT, model="mistral-small-latest")
    lines = message.splitlines()
    assert lines[0] == "invalid batch input (27 problems):"
    assert [line.split(":")[0] for line in lines[1:21]] == [f"requests[{i}]" for i in range(1, 21)]
    assert lines[6] == 'requests[6]: custom_id "a" repeats [0]'
    assert lines[-1] == "(and 7 more problems)"


def test_a_refused_request_does_not_count_as_the_first_of_its_id() -> None:
    requests = [{"custom_id": "a", "body": "x"}, _req("a"), _req("a")]
    message = _error(prepare_requests, requests, endpoint=CHAT, model="mistral-small-latest")
    assert message.splitlines()[1:] == [
        'requests[0]: "body" must be a JSON object, got a string',
        'requests[2]: custom_id "a" repeats [1]',
    ]


def test_ids_whose_hashes_are_equal_are_not_repeats(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    requests = [_req(str(i)) for i in range(30)]
    expected = prepare_requests(requests, endpoint=CHAT, model="mistral-small-latest").fingerprint
    path = _write_lines(tmp_path / "in.jsonl", [json.dumps(r) for r in requests])
    # Every id hashes alike: the lines are read back, and only equal ids are repeats.
    monkeypatch.setattr(repeated_ids, "hash", lambda value: 1, raising=False)
    assert (
        prepare_requests(requests, endpoint=CHAT, model="mistral-small-latest").fingerprint
        == expected
    )
    sharded = prepare_requests(
        requests, endpoint=CHAT, model="mistral-small-latest", max_requests_per_job=7
    )
    assert sharded.fingerprint == expected
    assert prepare_file(path, endpoint=CHAT, model="mistral-small-latest").fingerprint == expected
    repeated = [*requests, _req("7")]
    message = _error(
        prepare_requests, repeated, endpoint=CHAT, model="mistral-small-latest", inline=False
    )
    assert message == 'invalid batch input (1 problems):\nrequests[30]: custom_id "7" repeats [7]'


def test_a_repeat_is_named_when_a_body_holds_nan(tmp_path: Path) -> None:
    requests = [_req("a", temperature=float("nan")), _req("b"), _req("a", temperature=float("nan"))]
    message = _error(
        prepare_requests, requests, endpoint=CHAT, model="mistral-small-latest", inline=False
    )
    assert message.endswith('requests[2]: custom_id "a" repeats [0]')
    path = _write_lines(tmp_path / "in.jsonl", [json.dumps(r) for r in requests])
    message = _error(prepare_file, path, endpoint=CHAT, model="mistral-small-latest")
    assert message.endswith('in.jsonl line 3: custom_id "a" repeats line 1')
    assert _leftovers(tmp_path) == []


def test_a_request_that_cannot_be_json_is_named() -> None:
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    shared = {"tags": {"x"}}
    requests = [
        {"custom_id": "a", "body": shared},
        {"custom_id": "b", "body": cycle},
        _req("c"),
        {"custom_id": "d", "body": shared},  # the same body again: still the same reason
    ]
    message = _error(prepare_requests, requests, endpoint=CHAT, model="mistral-small-latest")
    assert message.splitlines() == [
        "invalid batch input (3 problems):",
        "requests[0]: cannot be written as JSON (Object of type set is not JSON serializable)",
        "requests[1]: cannot be written as JSON (Circular reference detected)",
        "requests[3]: cannot be written as JSON (Object of type set is not JSON serializable)",
    ]


def test_mappings_other_than_dict_give_the_same_lines_and_fingerprint() -> None:
    from types import MappingProxyType

    plain = [_req("a"), {"custom_id": "b", "body": {"input": "x"}}]
    proxied = [
        MappingProxyType({"custom_id": "a", "body": MappingProxyType(dict(BODY))}),
        {"custom_id": "b", "body": MappingProxyType({"input": "x"})},
    ]
    for inline in (True, False):
        one = prepare_requests(plain, endpoint=CHAT, model="mistral-small-latest", inline=inline)
        other = prepare_requests(
            proxied, endpoint=CHAT, model="mistral-small-latest", inline=inline
        )
        assert one.fingerprint == other.fingerprint
        if isinstance(one, FileInput) and isinstance(other, FileInput):
            assert one.path.read_bytes() == other.path.read_bytes()
        else:
            assert isinstance(other, InlineInput)
            assert other.requests == plain
            assert all(type(r) is dict and type(r["body"]) is dict for r in other.requests)


def test_inline_requests_are_taken_as_they_were_when_given() -> None:
    def reuse_one_dict() -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {"body": {}}
        for i in range(3):
            request["custom_id"] = f"r{i}"
            request["body"]["n"] = i
            yield request

    prepared = prepare_requests(reuse_one_dict(), endpoint=CHAT, model="mistral-small-latest")
    assert isinstance(prepared, InlineInput)
    assert prepared.requests == [{"body": {"n": i}, "custom_id": f"r{i}"} for i in range(3)]


def test_a_list_written_to_files_is_not_copied() -> None:
    import tracemalloc

    count = 20_000
    requests = [_req(f"r{i:06d}", max_tokens=i) for i in range(count)]
    tracemalloc.start()
    try:
        prepared = prepare_requests(
            requests, endpoint=CHAT, model="mistral-small-latest", inline=False
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert prepared.request_count == count
    # About 9 bytes a request (its id's hash) plus buffers; a dict of the ids took 10 times that.
    assert peak < 20 * count, f"{peak:,} bytes"


# ---------------------------------------------------------------- more than the inline limit


def test_more_than_the_inline_limit_becomes_a_temporary_jsonl(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(batch_input, "MAX_INLINE_REQUESTS", 5)
    at_limit = prepare_requests(
        [_req(str(i)) for i in range(5)], endpoint=CHAT, model="mistral-small-latest"
    )
    assert isinstance(at_limit, InlineInput)

    requests = [_req(str(i)) for i in range(6)]
    prepared = prepare_requests(requests, endpoint=CHAT, model="mistral-small-latest")
    assert isinstance(prepared, FileInput)
    assert prepared.temporary is True
    assert prepared.request_count == 6
    assert prepared.filename == "requests.jsonl"
    assert prepared.path.parent == tmp_path / "tmp"
    content = prepared.path.read_bytes()
    assert prepared.size == len(content)
    lines = content.decode().splitlines()
    assert len(lines) == 6
    assert [json.loads(line) for line in lines] == requests
    assert lines[0] == canonical_json(requests[0])


def test_fingerprint_is_the_same_inline_or_as_a_temporary_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    requests = [_req(str(i)) for i in range(6)]
    inline = prepare_requests(requests, endpoint=CHAT, model="mistral-small-latest")
    assert isinstance(inline, InlineInput)
    monkeypatch.setattr(batch_input, "MAX_INLINE_REQUESTS", 5)
    as_file = prepare_requests(requests, endpoint=CHAT, model="mistral-small-latest")
    assert isinstance(as_file, FileInput)
    assert inline.fingerprint == as_file.fingerprint


def test_one_request_larger_than_a_file_may_be_is_refused_and_nothing_left(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(batch_input, "MAX_INLINE_REQUESTS", 1)
    _limit_file_bytes(monkeypatch, 50)
    message = _error(
        prepare_requests, [_req("a"), _req("b")], endpoint=CHAT, model="mistral-small-latest"
    )
    assert message.startswith("requests.jsonl: a request of ")
    assert "bytes is larger than the 50 bytes (512 MB) one input file may hold" in message
    assert _leftovers(tmp_path) == []


# ---------------------------------------------------------------- fingerprints


def _fingerprint(
    requests: list[dict[str, Any]], endpoint: str = CHAT, model: str | None = "mistral-small-latest"
) -> str:
    return prepare_requests(requests, endpoint=endpoint, model=model).fingerprint


def test_fingerprint_is_stable_and_ignores_key_order() -> None:
    first = _fingerprint([_req("a"), _req("b")])
    assert first == _fingerprint([_req("a"), _req("b")])
    reordered = [{"body": dict(reversed(list(BODY.items()))), "custom_id": "a"}, _req("b")]
    assert first == _fingerprint(reordered)


def test_the_fingerprint_of_a_known_input_never_changes() -> None:
    # Reattaching after a retry finds a job by it: the same input must keep the same value.
    requests = [
        _req("a"),
        {"custom_id": "b", "body": {"input": "é ✓", "temperature": 0.7}, "extra": [1, None, True]},
    ]
    assert _fingerprint(requests, model="m") == (
        "923bb649c0fc5690738c0cb44276f2444866b325c2535c89438ab157f5cbbd8a"
    )
    assigned = prepare_requests(
        [{"body": BODY}, {"body": BODY}], endpoint=CHAT, model=None, assign_custom_ids=True
    )
    assert assigned.fingerprint == (
        "ceabee0300c5cd6ac06a4d6386d73ff43211d723a166c8b3e2b1b9404816a628"
    )


@pytest.mark.parametrize(
    "change",
    [
        {"endpoint": "/v1/embeddings"},
        {"model": "mistral-large-latest"},
        {"model": None},
        {"requests": [_req("a"), _req("c")]},
        {"requests": [_req("a"), _req("b", max_tokens=9)]},
        {"requests": [_req("a"), _req("b", messages=[{"role": "user", "content": "ho"}])]},
        {"requests": [_req("b"), _req("a")]},
        {"requests": [_req("a")]},
        {"requests": [_req("a"), _req("b"), _req("c")]},
        {"requests": [_req("a"), {**_req("b"), "extra": 1}]},
    ],
)
def test_fingerprint_changes_with_any_change(change: dict[str, Any]) -> None:
    base = {"requests": [_req("a"), _req("b")], "endpoint": CHAT, "model": "mistral-small-latest"}
    changed = {**base, **change}
    assert _fingerprint(**base) != _fingerprint(**changed)  # type: ignore[arg-type]


def test_fingerprint_of_a_file_equals_the_same_requests_inline(tmp_path: Path) -> None:
    requests = [_req("a"), _req("b")]
    path = _write_lines(tmp_path / "in.jsonl", [json.dumps(r) for r in requests])
    assert prepare_file(
        path, endpoint=CHAT, model="mistral-small-latest"
    ).fingerprint == _fingerprint(requests)


# ---------------------------------------------------------------- JSONL files


def test_valid_local_file_is_used_as_it_is(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "in.jsonl", [json.dumps(_req("a")), json.dumps(_req("b"))])
    prepared = prepare_file(path, endpoint=CHAT, model="mistral-small-latest")
    assert prepared.path == path
    assert prepared.temporary is False
    assert prepared.request_count == 2
    assert prepared.size == path.stat().st_size
    assert prepared.filename == "in.jsonl"
    assert _leftovers(tmp_path) == []


def test_string_paths_and_file_urls_are_local(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "in.jsonl", [json.dumps(_req("a"))])
    by_str = prepare_file(str(path), endpoint=CHAT, model="mistral-small-latest")
    by_url = prepare_file(f"file://{path}", endpoint=CHAT, model="mistral-small-latest")
    assert by_str.path == by_url.path == path
    assert by_url.temporary is False
    assert by_url.filename == "in.jsonl"


def test_file_problems_name_file_and_line(tmp_path: Path) -> None:
    path = _write_lines(
        tmp_path / "requests.jsonl",
        [
            json.dumps(_req("a1")),
            "",
            "{not json",
            "[1, 2]",
            json.dumps({"custom_id": "b"}),
            json.dumps({"custom_id": "b", "body": 5}),
            json.dumps({"body": BODY}),
            json.dumps({"custom_id": 12, "body": BODY}),
            json.dumps(_req("a1")),
            "   ",
        ],
    )
    message = _error(prepare_file, path, endpoint=CHAT, model="mistral-small-latest")
    assert message.splitlines() == [
        "invalid batch input (9 problems):",
        "requests.jsonl line 2: empty line (remove blank lines from the JSONL)",
        "requests.jsonl line 3: not valid JSON (Expecting property name enclosed in double quotes)",
        "requests.jsonl line 4: expected a JSON object, got a list",
        'requests.jsonl line 5: missing "body" (the request payload)',
        'requests.jsonl line 6: "body" must be a JSON object, got a number',
        'requests.jsonl line 7: missing "custom_id" (give every request a unique one, or set '
        "assign_custom_ids=True to use each request's position)",
        'requests.jsonl line 8: "custom_id" must be a non-empty string, got 12',
        'requests.jsonl line 9: custom_id "a1" repeats line 1',
        "requests.jsonl line 10: empty line (remove blank lines from the JSONL)",
    ]


def test_duplicate_in_a_file_names_the_first_line(tmp_path: Path) -> None:
    lines = [json.dumps(_req(f"r{i}")) for i in range(12)] + [json.dumps(_req("r2"))]
    path = _write_lines(tmp_path / "requests.jsonl", lines)
    message = _error(prepare_file, path, endpoint=CHAT, model="mistral-small-latest")
    assert 'requests.jsonl line 13: custom_id "r2" repeats line 3' in message


def test_non_utf8_line_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(json.dumps(_req("a")).encode() + b'\n{"custom_id": "\xff"}\n')
    message = _error(prepare_file, path, endpoint=CHAT, model="mistral-small-latest")
    assert "in.jsonl line 2: not valid JSON (not UTF-8 text)" in message


def test_crlf_line_endings_and_a_missing_final_newline_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(json.dumps(_req("a")).encode() + b"\r\n" + json.dumps(_req("b")).encode())
    assert prepare_file(path, endpoint=CHAT, model="mistral-small-latest").request_count == 2


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    assert _error(prepare_file, path, endpoint=CHAT, model="mistral-small-latest") == (
        "empty.jsonl: no requests: the batch is empty"
    )


def test_local_file_with_more_requests_than_one_job_is_split_by_lines(
    tmp_path: Path,
) -> None:
    path = _write_lines(tmp_path / "big.jsonl", [json.dumps(_req(str(i))) for i in range(5)])
    prepared = prepare_file(
        path, endpoint=CHAT, model="mistral-small-latest", max_requests_per_job=2
    )
    assert isinstance(prepared, ShardedInput)
    assert [_lines_of(s) for s in prepared.shards] == [["0", "1"], ["2", "3"], ["4"]]
    assert prepared.shards[0].filename == "big.part-1-of-3.jsonl"
    assert path.exists(), "the user's file is left as it is"


def test_local_file_within_one_job_is_uploaded_as_it_is(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "in.jsonl", [json.dumps(_req(str(i))) for i in range(2)])
    prepared = prepare_file(
        path, endpoint=CHAT, model="mistral-small-latest", max_requests_per_job=2
    )
    assert isinstance(prepared, FileInput)
    assert prepared.path == path
    assert prepared.temporary is False


def test_file_larger_than_one_file_may_be_is_sharded_by_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [json.dumps(_req(str(i))) for i in range(5)]
    path = _write_lines(tmp_path / "big.jsonl", lines)
    line_size = len(canonical_json(_req("0"))) + 1
    _limit_file_bytes(monkeypatch, 2 * line_size + 1)
    prepared = prepare_file(path, endpoint=CHAT, model="mistral-small-latest")
    assert isinstance(prepared, ShardedInput)
    assert [s.request_count for s in prepared.shards] == [2, 2, 1]
    assert all(s.size <= 2 * line_size + 1 for s in prepared.shards)


def test_file_at_the_size_limit_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write_lines(tmp_path / "in.jsonl", [json.dumps(_req("a"))])
    _limit_file_bytes(monkeypatch, path.stat().st_size)
    assert prepare_file(path, endpoint=CHAT, model="mistral-small-latest").request_count == 1


def test_missing_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    message = _error(prepare_file, missing, endpoint=CHAT, model="mistral-small-latest")
    assert message == f"input_path {str(missing)!r} does not exist or is not a file"
    assert "is not a file" in _error(
        prepare_file, tmp_path, endpoint=CHAT, model="mistral-small-latest"
    )


@pytest.mark.parametrize("url", ["s3://bucket/in.jsonl", "nosuchscheme://bucket/in.jsonl"])
def test_a_url_string_without_a_filesystem_is_refused_as_results_path_is(url: str) -> None:
    if url.startswith("s3:") and importlib.util.find_spec("s3fs") is not None:
        pytest.skip("s3fs is installed: s3:// has a filesystem here")
    message = _error(prepare_file, url, endpoint=CHAT, model="mistral-small-latest")
    assert message.startswith(f"input_path {url!r}: no filesystem for its scheme (")
    as_results = _error(prepare_destination, url)
    assert as_results.startswith(f"results_path {url!r}: no filesystem for its scheme (")


@pytest.mark.parametrize(("value", "kind"), [(None, "null"), (12, "a number")])
def test_something_that_is_not_a_path_is_refused(value: Any, kind: str) -> None:
    message = _error(prepare_file, value, endpoint=CHAT, model="mistral-small-latest")
    assert message == f"input_path must be a local path, a URL or an ObjectStoragePath, got {kind}"
    as_results = _error(prepare_destination, value)
    assert as_results == (
        f"results_path must be a local path, a URL or an ObjectStoragePath, got {kind}"
    )


def test_assign_custom_ids_writes_a_normalized_temporary_copy(tmp_path: Path) -> None:
    path = _write_lines(
        tmp_path / "in.jsonl",
        [
            json.dumps({"body": BODY}),
            json.dumps({"body": {"b": 1, "a": 2}, "custom_id": "given"}),
            json.dumps({"body": {"input": "x"}}),
        ],
    )
    before = path.read_bytes()
    prepared = prepare_file(
        path, endpoint=CHAT, model="mistral-small-latest", assign_custom_ids=True
    )
    assert prepared.temporary is True
    assert prepared.path != path
    assert prepared.path.parent == tmp_path / "tmp"
    assert prepared.filename == "in.jsonl"
    assert prepared.request_count == 3
    assert path.read_bytes() == before  # the user's file is left alone
    copied = prepared.path.read_text(encoding="utf-8").splitlines()
    assert copied == [
        canonical_json({"custom_id": "0", "body": BODY}),
        canonical_json({"custom_id": "given", "body": {"a": 2, "b": 1}}),
        canonical_json({"custom_id": "2", "body": {"input": "x"}}),
    ]
    assert prepared.size == prepared.path.stat().st_size
    inline = prepare_requests(
        [json.loads(line) for line in copied], endpoint=CHAT, model="mistral-small-latest"
    )
    assert prepared.fingerprint == inline.fingerprint


def test_invalid_file_with_assign_custom_ids_leaves_no_temporary_copy(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "in.jsonl", [json.dumps({"body": BODY}), "oops"])
    message = _error(
        prepare_file, path, endpoint=CHAT, model="mistral-small-latest", assign_custom_ids=True
    )
    assert "in.jsonl line 2: not valid JSON" in message
    assert _leftovers(tmp_path) == []


# ---------------------------------------------------------------- ObjectStoragePath


def test_local_object_storage_path_is_validated_in_place(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "in.jsonl", [json.dumps(_req("a")), json.dumps(_req("b"))])
    prepared = prepare_file(
        ObjectStoragePath(f"file://{path}"), endpoint=CHAT, model="mistral-small-latest"
    )
    assert prepared.path == path
    assert prepared.temporary is False
    assert prepared.request_count == 2
    assert prepared.filename == "in.jsonl"


def test_local_object_storage_path_with_errors_names_file_and_line(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "data.jsonl", [json.dumps(_req("a")), json.dumps(_req("a"))])
    message = _error(
        prepare_file,
        ObjectStoragePath(f"file://{path}"),
        endpoint=CHAT,
        model="mistral-small-latest",
    )
    assert 'data.jsonl line 2: custom_id "a" repeats line 1' in message


@pytest.fixture
def memory_store() -> Iterator[str]:
    """An in-memory object store registered for the ``memory://`` scheme."""
    from airflow.sdk.io import attach
    from airflow.sdk.io.store import _STORE_CACHE
    from fsspec.implementations.memory import MemoryFileSystem

    had = _STORE_CACHE.pop("memory", None)
    fs = MemoryFileSystem()
    attach("memory", fs=fs)
    folder = f"bucket-{id(fs)}"
    yield folder
    if fs.exists(f"/{folder}"):
        fs.rm(f"/{folder}", recursive=True)
    _STORE_CACHE.pop("memory", None)
    if had is not None:
        _STORE_CACHE["memory"] = had


def test_remote_object_storage_path_is_validated_and_copied(
    memory_store: str, tmp_path: Path
) -> None:
    remote = ObjectStoragePath(f"memory://{memory_store}/batch/requests.jsonl")
    lines = [json.dumps(_req("a")), json.dumps({"body": BODY, "custom_id": "b"})]
    remote.write_bytes("".join(line + "\n" for line in lines).encode())
    prepared = prepare_file(remote, endpoint=CHAT, model="mistral-small-latest")
    assert prepared.temporary is True
    assert prepared.path.parent == tmp_path / "tmp"
    assert prepared.filename == "requests.jsonl"
    assert prepared.request_count == 2
    assert prepared.path.read_text(encoding="utf-8").splitlines() == [
        canonical_json(_req("a")),
        canonical_json(_req("b")),
    ]
    assert prepared.size == prepared.path.stat().st_size
    assert prepared.fingerprint == _fingerprint([_req("a"), _req("b")])


def test_remote_object_storage_path_with_errors_leaves_no_copy(
    memory_store: str, tmp_path: Path
) -> None:
    remote = ObjectStoragePath(f"memory://{memory_store}/bad.jsonl")
    remote.write_bytes(b'{"custom_id": "a", "body": {}}\n{"custom_id": "a", "body": {}}\n')
    message = _error(prepare_file, remote, endpoint=CHAT, model="mistral-small-latest")
    assert 'bad.jsonl line 2: custom_id "a" repeats line 1' in message
    assert _leftovers(tmp_path) == []


def test_remote_object_storage_path_is_copied_into_shards(
    memory_store: str, tmp_path: Path
) -> None:
    remote = ObjectStoragePath(f"memory://{memory_store}/big.jsonl")
    remote.write_bytes(("\n".join(json.dumps(_req(str(i))) for i in range(5)) + "\n").encode())
    prepared = prepare_file(
        remote, endpoint=CHAT, model="mistral-small-latest", max_requests_per_job=3
    )
    assert isinstance(prepared, ShardedInput)
    assert [_lines_of(s) for s in prepared.shards] == [["0", "1", "2"], ["3", "4"]]
    for path in temporary_files(prepared):
        path.unlink()
    assert _leftovers(tmp_path) == []


def test_missing_remote_object_storage_path_is_refused(memory_store: str, tmp_path: Path) -> None:
    remote = ObjectStoragePath(f"memory://{memory_store}/missing.jsonl")
    message = _error(prepare_file, remote, endpoint=CHAT, model="mistral-small-latest")
    assert message == f"input_path {str(remote)!r} does not exist or is not a file"
    assert _leftovers(tmp_path) == []


class _UnreadableRemote:
    """A remote path that exists but cannot be opened."""

    protocol = "s3"
    fs = None  # an ObjectStoragePath has its filesystem
    name = "in.jsonl"

    def is_file(self) -> bool:
        return True

    def open(self, mode: str = "rb") -> Any:
        raise PermissionError("access denied")

    def __str__(self) -> str:
        return "s3://bucket/in.jsonl"


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_unreadable_remote_path_leaves_no_copy_and_no_open_descriptor(tmp_path: Path) -> None:
    open_before = len(list(Path("/proc/self/fd").iterdir()))
    with pytest.raises(PermissionError, match="access denied"):
        prepare_file(_UnreadableRemote(), endpoint=CHAT, model="mistral-small-latest")
    assert _leftovers(tmp_path) == []
    assert len(list(Path("/proc/self/fd").iterdir())) == open_before


def test_remote_object_storage_path_with_assigned_ids(memory_store: str) -> None:
    remote = ObjectStoragePath(f"memory://{memory_store}/in.jsonl")
    remote.write_bytes(b'{"body": {"input": "x"}}\n{"body": {"input": "y"}}\n')
    prepared = prepare_file(
        remote, endpoint="/v1/embeddings", model="mistral-small-latest", assign_custom_ids=True
    )
    ids = [json.loads(line)["custom_id"] for line in prepared.path.read_text().splitlines()]
    assert ids == ["0", "1"]


def test_a_url_string_is_read_as_an_object_storage_path(memory_store: str, tmp_path: Path) -> None:
    # As a template renders it: "memory://..." (like "s3://..."), not an ObjectStoragePath.
    url = f"memory://{memory_store}/batch/in.jsonl"
    ObjectStoragePath(url).write_bytes(f"{json.dumps(_req('a'))}\n".encode())
    prepared = prepare_file(url, endpoint=CHAT, model="mistral-small-latest")
    assert isinstance(prepared, FileInput)
    assert prepared.temporary is True  # copied from the store, as an ObjectStoragePath is
    assert prepared.filename == "in.jsonl"
    assert prepared.fingerprint == _fingerprint([_req("a")])
    assert _lines_of(prepared) == ["a"]


def test_a_file_url_string_is_used_in_place(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "in.jsonl", [json.dumps(_req("a"))])
    prepared = prepare_file(f"file://{path}", endpoint=CHAT, model="mistral-small-latest")
    assert isinstance(prepared, FileInput)
    assert (prepared.path, prepared.temporary) == (path, False)


# ---------------------------------------------------------------- uploaded file ids


def test_file_ids_are_accepted() -> None:
    prepared = prepare_file_ids(("f1", "f2"), endpoint=CHAT, model="mistral-small-latest")
    assert isinstance(prepared, UploadedInput)
    assert prepared.file_ids == ["f1", "f2"]
    assert (
        prepared.fingerprint
        == prepare_file_ids(["f1", "f2"], endpoint=CHAT, model="mistral-small-latest").fingerprint
    )
    assert (
        prepared.fingerprint
        != prepare_file_ids(["f2", "f1"], endpoint=CHAT, model="mistral-small-latest").fingerprint
    )
    assert (
        prepared.fingerprint
        != prepare_file_ids(["f1", "f2"], endpoint=CHAT, model=None).fingerprint
    )
    assert (
        prepared.fingerprint
        != prepare_file_ids(
            ["f1", "f2"], endpoint="/v1/embeddings", model="mistral-small-latest"
        ).fingerprint
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("f1", "input_files must be a list of file ids, got a string"),
        (None, "input_files must be a list of file ids, got null"),
        (3, "input_files must be a list of file ids, got a number"),
        ([], "input_files is empty: give at least one file id"),
        (["f1", ""], "input_files[1] must be a non-empty file id string, got ''"),
        (["  "], "input_files[0] must be a non-empty file id string, got '  '"),
        (["f1", 5], "input_files[1] must be a non-empty file id string, got 5"),
        ([None], "input_files[0] must be a non-empty file id string, got None"),
    ],
)
def test_bad_file_ids_are_refused(value: Any, expected: str) -> None:
    assert _error(prepare_file_ids, value, endpoint=CHAT, model="mistral-small-latest") == expected


def test_input_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="input_files is empty"):
        prepare_file_ids([], endpoint=CHAT, model=None)


# ------------------------------------------------------------------ the output directive

#: A response_format whose schema lists its properties out of alphabetical order.
DIRECTIVE = {
    "type": "json_schema",
    "json_schema": {
        "name": "Answer",
        "schema": {
            "type": "object",
            "properties": {"reasoning": {"type": "string"}, "answer": {"type": "string"}},
            "required": ["reasoning", "answer"],
        },
        "strict": False,
    },
}


def test_each_body_without_a_response_format_gets_the_directive_and_keeps_its_order() -> None:
    own = {"type": "json_object"}
    given = [_req("a"), _req("b", response_format=own), _req("c")]
    before = json.loads(json.dumps(given))
    prepared = prepare_requests(given, endpoint=CHAT, model=None, response_format=DIRECTIVE)
    assert isinstance(prepared, InlineInput)
    bodies = [request["body"] for request in prepared.requests]
    assert [body["response_format"] for body in bodies] == [DIRECTIVE, own, DIRECTIVE]
    assert prepared.own_response_formats == 1
    assert given == before, "the caller's requests were changed"
    written = prepare_requests(
        given, endpoint=CHAT, model=None, response_format=DIRECTIVE, inline=False
    )
    assert isinstance(written, FileInput)
    assert written.own_response_formats == 1
    lines = written.path.read_text(encoding="utf-8").splitlines()
    written.path.unlink()
    assert [json.loads(line)["body"]["response_format"] for line in lines] == [
        DIRECTIVE,
        own,
        DIRECTIVE,
    ]
    # The schema as given (the model writes its fields in this order), the rest canonical.
    assert '"properties":{"reasoning":{"type":"string"},"answer":' in lines[0]
    assert lines[0].startswith('{"body":{"max_tokens":8,"messages":')


def test_the_directive_changes_the_fingerprint_and_none_keeps_it() -> None:
    requests = [_req("a"), _req("b")]
    plain = prepare_requests(requests, endpoint=CHAT, model=None)
    assert prepare_requests(requests, endpoint=CHAT, model=None, response_format=None) == plain
    typed = prepare_requests(requests, endpoint=CHAT, model=None, response_format=DIRECTIVE)
    other = {**DIRECTIVE, "json_schema": {**DIRECTIVE["json_schema"], "name": "Other"}}
    retyped = prepare_requests(requests, endpoint=CHAT, model=None, response_format=other)
    assert len({plain.fingerprint, typed.fingerprint, retyped.fingerprint}) == 3
    # Bodies that all keep their own ask for nothing new: the input is the same.
    own = [_req("a", response_format={"type": "json_object"})]
    assert (
        prepare_requests(own, endpoint=CHAT, model=None, response_format=DIRECTIVE).fingerprint
        == prepare_requests(own, endpoint=CHAT, model=None).fingerprint
    )


def test_a_local_file_is_copied_with_the_directive_and_left_as_it_was(tmp_path: Path) -> None:
    source = tmp_path / "prompts.jsonl"
    given = [_req("a"), _req("b", response_format={"type": "text"})]
    source.write_text("".join(json.dumps(r) + "\n" for r in given), encoding="utf-8")
    before = source.read_bytes()
    prepared = prepare_file(source, endpoint=CHAT, model=None, response_format=DIRECTIVE)
    assert isinstance(prepared, FileInput)
    assert prepared.temporary
    assert prepared.own_response_formats == 1
    lines = [json.loads(line) for line in prepared.path.read_text(encoding="utf-8").splitlines()]
    prepared.path.unlink()
    assert [line["body"]["response_format"] for line in lines] == [DIRECTIVE, {"type": "text"}]
    assert source.read_bytes() == before
    # Without a directive the file is still uploaded as it is.
    assert not prepare_file(source, endpoint=CHAT, model=None).temporary


def test_sharded_requests_each_carry_the_directive() -> None:
    prepared = prepare_requests(
        [_req(f"r{i}") for i in range(5)],
        endpoint=CHAT,
        model=None,
        response_format=DIRECTIVE,
        max_requests_per_job=2,
    )
    assert isinstance(prepared, ShardedInput)
    try:
        for shard in prepared.shards:
            for line in shard.path.read_text(encoding="utf-8").splitlines():
                assert json.loads(line)["body"]["response_format"] == DIRECTIVE
    finally:
        for path in temporary_files(prepared):
            path.unlink()
