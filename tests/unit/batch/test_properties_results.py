"""Property tests of the result-line parser and the join of a job's output and error files.

Result lines are generated from the shape the API documents (``{"id", "custom_id",
"response": {"status_code", "body"}, "error"}``, the error an object, a string or null), with
unknown fields, missing optional fields and nulls, then broken: not JSON, not an object,
wrong types, cut short. Properties:

- a line of the documented shape is always parsed: ``ok`` is "no error and a 2xx status",
  a success keeps its body, a failure gets ``BatchResultLine.error_message``, whichever of
  the parser's two paths (the fast one for successes, the model for the rest) reads it;
- the join writes one line per input request, in input order, then the unexpected ones; its
  counts and usage totals match the lines;
- whatever a result file holds, ``write_results`` and ``iter_results`` (through the hook)
  parse it or raise the provider's :class:`MistralBatchError` naming the line number (counted across
  the files), never another error, and its two readers agree on which lines are result lines.

The last section keeps the minimal failing examples of bugs these properties found, each now
a regression test.
"""

from __future__ import annotations

import json
import math
import re
import string
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from airflow_provider_mistral_batch.batch.output_spec import output_spec
from airflow_provider_mistral_batch.batch.result_lines import iter_results
from airflow_provider_mistral_batch.batch.result_rows import NO_RESULT
from airflow_provider_mistral_batch.batch.results import join_results, write_results
from airflow_provider_mistral_batch.batch.results_join import TOKEN_KEYS
from airflow_provider_mistral_batch.exceptions import MistralAPIError, MistralBatchError
from airflow_provider_mistral_batch.hooks.connection import ConnectionSettings
from airflow_provider_mistral_batch.hooks.http.retry import RetryPolicy
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import BatchResultLine

# Deterministic and quick: the same examples on every run and in CI, nothing saved between runs.
PROPERTY = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

# ---------------------------------------------------------------------------- strategies

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
TEXT = st.text(max_size=12)
# Any text JSON carries as Unicode, U+0000 included.
CUSTOM_ID = st.text(st.characters(codec="utf-8"), max_size=8)
JSON_SCALAR = (
    st.none() | st.booleans() | INT64 | st.floats(allow_nan=False, allow_infinity=False) | TEXT
)
JSON = st.recursive(
    JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(TEXT, inner, max_size=2),
    max_leaves=4,
)
JSON_OBJECT = st.dictionaries(TEXT, JSON, max_size=3)


def nullable(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | values


NUMBER = st.integers(0, 2**53) | st.floats(0, 1e9, allow_nan=False)
USAGE = st.dictionaries(
    st.sampled_from([*TOKEN_KEYS, "pages_processed"]) | TEXT,
    NUMBER | st.booleans() | TEXT | st.none(),
    max_size=4,
)
BODY = nullable(JSON) | st.fixed_dictionaries(
    {},
    optional={
        "usage": USAGE | JSON,
        "usage_info": USAGE | JSON,
        "choices": JSON,
        "message": JSON,
        "detail": JSON,
    },
)
ERROR = (
    st.none()
    | TEXT
    | st.fixed_dictionaries({}, optional={"message": JSON, "detail": JSON, "code": TEXT})
    | JSON
)
RESPONSE = st.fixed_dictionaries(
    {"status_code": st.integers(100, 599) | INT64},
    optional={"body": BODY, "headers": JSON_OBJECT},
)
LINE_FIELDS = ("id", "custom_id", "response", "error")


ANY_CUSTOM_ID = nullable(CUSTOM_ID)


@st.composite
def result_docs(
    draw: st.DrawFn, custom_ids: st.SearchStrategy[str | None] = ANY_CUSTOM_ID
) -> dict[str, Any]:
    """A result line of the documented shape: every field optional, unknown fields added;
    at least a response or an error, which is what makes it a result line."""
    doc = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "id": nullable(TEXT),
                "custom_id": custom_ids,
                "response": nullable(RESPONSE),
                "error": ERROR,
            },
        )
    )
    unknown_names = TEXT.filter(lambda key: key not in LINE_FIELDS)
    doc.update(draw(st.dictionaries(unknown_names, JSON, max_size=2)))
    if doc.get("response") is None and doc.get("error") is None:
        doc["response"] = draw(RESPONSE)
    return doc


@st.composite
def encoded(draw: st.DrawFn, doc: Any) -> str:
    """``doc`` as one JSONL line, ASCII-escaped or not."""
    return json.dumps(doc, ensure_ascii=draw(st.booleans()))


LETTERS = st.text(string.ascii_letters, max_size=6)
# A JSON object with neither a response nor an error: not a result line.
NOT_RESULT_LINES = st.fixed_dictionaries(
    {},
    optional={
        "id": TEXT,
        "custom_id": nullable(CUSTOM_ID),
        "response": st.none(),
        "error": st.none(),
    },
).map(json.dumps)
# Lines that no reader takes for a result line, one strategy per way of being wrong.
REFUSED_LINES = st.one_of(
    result_docs().map(lambda doc: json.dumps(doc)[:-1]),  # cut short
    JSON.filter(lambda value: not isinstance(value, dict)).map(json.dumps),  # not an object
    st.fixed_dictionaries(  # a custom_id that is not a string
        {
            "custom_id": INT64 | st.booleans() | st.lists(TEXT, max_size=2) | JSON_OBJECT,
            "response": RESPONSE,
        },
        optional={"error": ERROR},
    ).map(json.dumps),
    st.fixed_dictionaries(  # a status code that is not an integer, or none at all
        {
            "response": st.fixed_dictionaries(
                {},
                optional={
                    "status_code": st.none()
                    | LETTERS
                    | st.lists(INT64, max_size=2)
                    | st.floats(allow_nan=False, allow_infinity=False).filter(
                        lambda number: not number.is_integer()
                    ),
                    "body": BODY,
                },
            )
        },
        optional={"custom_id": CUSTOM_ID, "error": ERROR},
    ).map(json.dumps),
    st.fixed_dictionaries(  # a response that is not an object
        {"response": TEXT | INT64 | st.booleans() | st.lists(JSON, max_size=2)},
        optional={"custom_id": CUSTOM_ID, "error": ERROR},
    ).map(json.dumps),
    NOT_RESULT_LINES,
)
BLANK_LINES = st.sampled_from(["", "  ", "\t", "\r"])


# ---------------------------------------------------------------------------- oracles


def expected_line(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The joined line of one result line, from the documented rules."""
    response = doc.get("response")
    ok = doc.get("error") is None and response is not None and 200 <= response["status_code"] < 300
    return {
        "custom_id": doc.get("custom_id"),
        "status": "success" if ok else "error",
        "ok": ok,
        "status_code": response["status_code"] if response is not None else None,
        "response": response.get("body") if ok and response is not None else None,
        "output": None,
        "error": None if ok else BatchResultLine.model_validate(doc).error_message,
    }


def expected_usage(docs: Sequence[Mapping[str, Any]]) -> dict[str, int | float]:
    """Every number (not bool) of the successes' ``usage``/``usage_info`` objects, summed."""
    totals: dict[str, int | float] = dict.fromkeys(TOKEN_KEYS, 0)
    for doc in docs:
        body = doc["response"].get("body") if expected_line(doc)["ok"] else None
        if not isinstance(body, dict):
            continue
        for part in (body.get("usage"), body.get("usage_info")):
            if isinstance(part, dict):
                for key, value in part.items():
                    if type(value) in (int, float):
                        totals[key] = totals.get(key, 0) + value
    return totals


def missing_line(custom_id: str) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "status": "missing",
        "ok": False,
        "status_code": None,
        "response": None,
        "output": None,
        "error": NO_RESULT,
    }


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The written lines (split on LF only: U+0085 or U+2028 may stand unescaped in JSON)."""
    return [json.loads(line) for line in path.read_bytes().decode().split("\n")[:-1]]


@pytest.fixture(scope="module")
def destination(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where each example writes its results (replaced every time)."""
    return tmp_path_factory.mktemp("property-results") / "results.jsonl"


# ---------------------------------------------------------------------------- a hook, no network

BASE_URL = "https://api.mistral.test"


@contextmanager
def hook_serving(files: Mapping[str, bytes]) -> Iterator[MistralBatchHook]:
    """A hook whose Files API serves ``files`` (id -> content) in process."""

    def answer(request: httpx2.Request) -> httpx2.Response:
        file_id = request.url.path.removeprefix("/v1/files/").removesuffix("/content")
        return httpx2.Response(
            200, content=files[file_id], headers={"Content-Type": "application/octet-stream"}
        )

    hook = MistralBatchHook("mistral_properties", retry_policy=RetryPolicy(max_attempts=1))
    hook._settings = ConnectionSettings(base_url=BASE_URL, api_key="sk-property-tests")
    hook._client = httpx2.Client(base_url=BASE_URL, transport=httpx2.MockTransport(answer))
    with hook:
        yield hook


def non_blank_lines(content: bytes) -> list[bytes]:
    """The lines a result file is read as: split on LF only, CR ends and blank lines dropped."""
    lines = (raw.removesuffix(b"\r") for raw in content.split(b"\n"))
    return [line for line in lines if line.decode("utf-8", "replace").strip()]


def named_line(exc: MistralBatchError, prefix: str) -> int:
    """The line number a parse error names (``prefix`` then the number)."""
    assert not isinstance(exc, MistralAPIError)
    match = re.match(rf"{re.escape(prefix)}(\d+) is not a batch result line: ", str(exc))
    assert match, str(exc)
    return int(match.group(1))


def parsed_or_line_error(
    content: Sequence[bytes], destination: Path
) -> tuple[int | None, list[int | None]]:
    """Read files of ``content`` (served to the hook) through ``write_results`` (all files
    chained) and ``iter_results`` (each file): the line number each names, or None when all
    parsed."""
    files = {f"f-{n}": each for n, each in enumerate(content, start=1)}
    with hook_serving(files) as hook:
        try:
            write_results(hook, list(files), destination)
            joined = None
        except MistralBatchError as exc:
            joined = named_line(exc, "result line ")
        each: list[int | None] = []
        for file_id in files:
            try:
                for line in iter_results(hook, file_id):
                    assert isinstance(line, BatchResultLine)
                each.append(None)
            except MistralBatchError as exc:
                each.append(named_line(exc, f"file {file_id} line "))
    return joined, each


# ---------------------------------------------------------------------------- one line


@PROPERTY
@given(doc=result_docs(), data=st.data())
def test_a_result_line_of_the_documented_shape_is_parsed_by_the_rules(
    doc: dict[str, Any], data: st.DataObject, destination: Path
) -> None:
    summary = join_results([data.draw(encoded(doc))], destination)
    [line] = read_lines(destination)
    assert line == expected_line(doc)
    assert (summary.lines, summary.succeeded, summary.failed) == (
        1,
        int(line["ok"]),
        1 - line["ok"],
    )
    assert summary.usage == expected_usage([doc])
    # The typed model agrees on the verdict.
    assert BatchResultLine.model_validate(doc).succeeded is line["ok"]


@PROPERTY
@given(line=REFUSED_LINES, number=st.integers(1, 2_000))
def test_a_broken_line_is_a_provider_error_naming_its_number(
    line: str, number: int, destination: Path
) -> None:
    destination.unlink(missing_ok=True)
    # After number - 1 valid lines (failures with a string error), it is line ``number``.
    lines = [*['{"custom_id":null,"error":"e"}'] * (number - 1), line]
    with pytest.raises(MistralBatchError) as caught:
        join_results(lines, destination)
    assert named_line(caught.value, "result line ") == number
    assert not destination.exists()


# ---------------------------------------------------------------------------- the join


@st.composite
def join_cases(
    draw: st.DrawFn,
) -> tuple[list[str] | None, list[dict[str, Any]], bool]:
    """Input ids (or None: input unknown), result lines for some of them (shuffled, some
    repeated, some for ids the input lacks or for no id), and include_request."""
    request_ids = draw(st.lists(CUSTOM_ID, unique=True, max_size=6))
    answered = st.sampled_from(request_ids) if request_ids else st.nothing()
    docs = draw(st.lists(result_docs(custom_ids=answered | nullable(CUSTOM_ID)), max_size=6))
    known = draw(st.booleans())
    return (request_ids if known else None), docs, known and draw(st.booleans())


@PROPERTY
@given(case=join_cases(), data=st.data())
def test_the_join_writes_one_line_per_request_in_input_order(
    case: tuple[list[str] | None, list[dict[str, Any]], bool],
    data: st.DataObject,
    destination: Path,
) -> None:
    request_ids, docs, include_request = case
    requests = (
        None if request_ids is None else [(cid, {"n": i}) for i, cid in enumerate(request_ids)]
    )
    summary = join_results(
        [data.draw(encoded(doc)) for doc in docs],
        destination,
        requests=requests,
        include_request=include_request,
    )

    # A custom_id seen twice keeps its first line; lines without one are all kept.
    kept: list[dict[str, Any]] = []
    seen: set[str] = set()
    for doc in docs:
        custom_id = doc.get("custom_id")
        if custom_id is None or custom_id not in seen:
            kept.append(doc)
        if custom_id is not None:
            seen.add(custom_id)
    repeated = len(docs) - len(kept)
    if request_ids is None:
        expected = [expected_line(doc) for doc in kept]
        missing: list[str] = []
        unexpected = repeated
    else:
        by_id = {doc["custom_id"]: doc for doc in kept if doc.get("custom_id") is not None}
        expected = [
            expected_line(by_id[cid]) if cid in by_id else missing_line(cid) for cid in request_ids
        ]
        extra = [doc for doc in kept if doc.get("custom_id") not in request_ids]
        expected += [expected_line(doc) for doc in extra]
        missing = [cid for cid in request_ids if cid not in by_id]
        unexpected = repeated + len(extra)
        if include_request:
            bodies = [{"n": i} for i in range(len(request_ids))] + [None] * len(extra)
            expected = [
                {**line, "request": body} for line, body in zip(expected, bodies, strict=True)
            ]

    assert read_lines(destination) == expected
    assert summary.lines == len(expected)
    assert summary.succeeded == sum(line["ok"] for line in expected)
    assert summary.failed == summary.lines - summary.succeeded
    assert summary.missing == len(missing)
    assert summary.missing_ids == missing
    assert summary.unexpected == unexpected
    assert summary.input_known is (request_ids is not None)
    assert summary.usage == expected_usage(kept)
    json.dumps(summary.as_xcom())


# ---------------------------------------------------------------------------- typed output


class Answer(BaseModel):
    label: str
    score: int | None = None


ANSWER_JSON = st.fixed_dictionaries(
    {"label": TEXT | INT64}, optional={"score": nullable(INT64) | TEXT, "extra": JSON}
).map(json.dumps)
# What a model may answer: JSON of the type, of another shape, any JSON, any text.
ANSWER_TEXT = ANSWER_JSON | JSON.map(json.dumps) | TEXT
CHUNK = st.fixed_dictionaries({"type": st.sampled_from(["text", "thinking"]), "text": TEXT})
CONTENT = nullable(ANSWER_TEXT) | st.lists(
    CHUNK | ANSWER_TEXT.map(lambda text: {"type": "text", "text": text}), max_size=3
)


def expected_text(content: Any) -> str | None:
    """The answer's text: the content, or its text chunks joined (None when there are none)."""
    if isinstance(content, list):
        texts = [chunk["text"] for chunk in content if chunk["type"] == "text"]
        return "".join(texts) if texts else None
    return content


@PROPERTY
@given(content=CONTENT, structured=st.booleans())
def test_an_answer_is_a_success_exactly_when_its_text_validates(
    content: Any, structured: bool, destination: Path
) -> None:
    body = {"choices": [{"message": {"role": "assistant", "content": content}}]}
    line = json.dumps({"custom_id": "a", "response": {"status_code": 200, "body": body}})
    spec = output_spec(Answer if structured else str)
    summary = join_results([line], destination, output=spec)
    [row] = read_lines(destination)

    text = expected_text(content)
    expected: Any = text
    if structured:
        try:
            expected = TypeAdapter(Answer).validate_json(text or "").model_dump(mode="json")
        except ValidationError:
            expected = None
    valid = not structured or (text is not None and expected is not None)
    assert (row["status"], row["ok"]) == (("success", True) if valid else ("invalid_output", False))
    assert row["output"] == (expected if valid else None)
    assert (row["error"] is None) is valid
    assert row["response"] == body
    assert summary.counts["success" if valid else "invalid_output"] == 1


# ---------------------------------------------------------------------------- through the hook


@st.composite
def result_files(draw: st.DrawFn) -> tuple[list[bytes], int | None]:
    """Valid result lines with blank lines between, maybe one broken line, split into two
    files (either may be empty) with LF or CRLF ends. Returns the files and the broken line's
    number (None when there is none)."""
    lines = draw(st.lists(result_docs().flatmap(encoded), max_size=5))
    number = None
    if draw(st.booleans()):
        at = draw(st.integers(0, len(lines)))
        lines.insert(at, draw(REFUSED_LINES))
        number = at + 1
    with_blanks: list[str] = []
    for line in lines:
        with_blanks += draw(st.lists(BLANK_LINES, max_size=1))
        with_blanks.append(line)
    cut = draw(st.integers(0, len(with_blanks)))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    parts = (with_blanks[:cut], with_blanks[cut:])
    files = [end.join(part).encode() + draw(st.sampled_from([b"", end.encode()])) for part in parts]
    return files, number


@PROPERTY
@given(case=result_files())
def test_the_hook_parses_result_files_or_names_the_broken_line_across_files(
    case: tuple[list[bytes], int | None], destination: Path
) -> None:
    files, number = case
    destination.unlink(missing_ok=True)
    joined, each = parsed_or_line_error(files, destination)
    assert joined == number
    if number is None:
        assert each == [None, None]
        docs = [json.loads(line) for content in files for line in non_blank_lines(content)]
        ids = [doc.get("custom_id") for doc in docs]
        # One line per result line, a repeated custom_id written once.
        expected = [cid for n, cid in enumerate(ids) if cid is None or cid not in ids[:n]]
        assert [line["custom_id"] for line in read_lines(destination)] == expected
        return
    assert not destination.exists()
    in_first = len(non_blank_lines(files[0]))
    if number <= in_first:
        assert each == [number, None]
    else:
        assert each == [None, number - in_first]


ANY_LINE = (
    st.text(max_size=30) | result_docs().flatmap(encoded) | REFUSED_LINES | JSON.map(json.dumps)
)


@PROPERTY
@given(lines=st.lists(ANY_LINE, max_size=6))
def test_any_text_file_is_parsed_or_a_provider_error_naming_the_line(
    lines: list[str], destination: Path
) -> None:
    content = "\n".join(lines).encode()
    joined, [alone] = parsed_or_line_error([content], destination)
    readable = non_blank_lines(content)
    if joined is not None:
        assert 1 <= joined <= len(readable)
        # The line it names fails on its own too.
        with pytest.raises(MistralBatchError):
            join_results([readable[joined - 1].decode()], destination)
    if alone is not None:
        assert 1 <= alone <= len(readable)
        with hook_serving({"f-1": readable[alone - 1]}) as hook, pytest.raises(MistralBatchError):
            list(iter_results(hook, "f-1"))


# ---------------------------------------------------------------------------- regressions
# Bugs these properties found, each test keeping its minimal failing example (@example).


@PROPERTY
@given(lines=st.lists(ANY_LINE, max_size=6))
@example(lines=["{}"])  # was refused by write_results, an empty BatchResultLine to iter_results
def test_the_hooks_two_readers_agree_on_what_a_result_line_is(
    lines: list[str], destination: Path
) -> None:
    joined, [alone] = parsed_or_line_error(["\n".join(lines).encode()], destination)
    assert joined == alone


@PROPERTY
@given(content=st.binary(max_size=60))
@example(content=b'{"custom_id":"a","error":"x"}\n\xff\n')  # was a UnicodeDecodeError
def test_any_bytes_file_is_parsed_or_a_provider_error_naming_the_line(
    content: bytes, destination: Path
) -> None:
    joined, [alone] = parsed_or_line_error([content], destination)
    assert joined == alone
    if joined is not None:
        assert 1 <= joined <= len(non_blank_lines(content))


def test_a_line_that_is_not_utf8_is_named_with_its_file(destination: Path) -> None:
    files = {
        "f-1": b'{"custom_id":"a","error":"x"}\n',
        "f-2": b'\n{"custom_id":"b","error":"y"}\n{"custom_id":"\xc3(","error":"z"}\n',
    }
    destination.unlink(missing_ok=True)
    with hook_serving(files) as hook:
        with pytest.raises(MistralBatchError) as joined:
            write_results(hook, list(files), destination)
        with pytest.raises(MistralBatchError) as alone:
            list(iter_results(hook, "f-2"))
        with pytest.raises(MistralBatchError) as raw:
            list(hook.iter_file_lines("f-2"))
    reason = "not UTF-8 text: invalid continuation byte at byte 15 (0xc3)"
    assert str(joined.value) == (
        f"result line 3 is not a batch result line: file f-2 line 2 is {reason}"
    )
    assert str(alone.value) == f"file f-2 line 2 is not a batch result line: {reason}"
    assert str(raw.value) == f"file f-2 line 2 is {reason}"
    assert not destination.exists()


def nested_line(depth: int, where: str) -> str:
    nested = "[" * depth + "]" * depth
    if where == "body":
        return f'{{"custom_id":"a","response":{{"status_code":200,"body":{nested}}}}}'
    return f'{{"custom_id":"a","error":{nested}}}'


@PROPERTY
@given(depth=st.integers(1, 5_000), where=st.sampled_from(["body", "error"]))
@example(depth=5_000, where="error")  # was a RecursionError out of msgspec
@example(depth=300, where="body")  # was written by write_results, refused by iter_results
def test_a_deeply_nested_line_is_read_alike_by_both_readers_or_refused_by_both(
    depth: int, where: str, destination: Path
) -> None:
    destination.unlink(missing_ok=True)
    joined, [alone] = parsed_or_line_error([nested_line(depth, where).encode()], destination)
    assert joined == alone
    assert joined in (None, 1)
    if depth <= 198:  # every parser reads these (pydantic's stops past 200 levels)
        assert joined is None
    if depth >= sys.getrecursionlimit():  # (Hypothesis raises it while a test runs)
        assert joined == 1
    if joined is None and where == "body":
        nested = "[" * depth + "]" * depth
        expected = (
            f'{{"custom_id":"a","status":"success","ok":true,"status_code":200,"response":{nested},'
        )
        assert destination.read_text().startswith(expected)


@PROPERTY
@given(custom_id=st.text(min_size=1, max_size=6), include_request=st.booleans())
@example(custom_id="\x00", include_request=False)  # was cut at the NUL by SQLite's json_each
def test_any_custom_id_joins_with_its_result(
    custom_id: str, include_request: bool, destination: Path
) -> None:
    line = json.dumps({"custom_id": custom_id, "response": {"status_code": 200, "body": {}}})
    summary = join_results(
        [line], destination, requests=[(custom_id, {})], include_request=include_request
    )
    assert (summary.missing, summary.unexpected) == (0, 0)
    assert [line["custom_id"] for line in read_lines(destination)] == [custom_id]


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@PROPERTY
@given(value=st.floats(), where=st.sampled_from(["body", "usage", "error"]))
@example(value=float("nan"), where="usage")  # was written as a bare NaN, and summed
def test_written_results_are_strict_json_and_both_readers_refuse_nan(
    value: float, where: str, destination: Path
) -> None:
    if where == "error":
        doc: dict[str, Any] = {"custom_id": "a", "error": {"message": "m", "x": value}}
    else:
        body = {"usage": {"total_tokens": value}} if where == "usage" else {"x": value}
        doc = {"custom_id": "a", "response": {"status_code": 200, "body": body}}
    destination.unlink(missing_ok=True)
    # json.dumps writes NaN, Infinity and -Infinity for the values JSON has no number for.
    joined, [alone] = parsed_or_line_error([json.dumps(doc).encode()], destination)
    if not math.isfinite(value):
        assert (joined, alone) == (1, 1)
        assert not destination.exists()
        return
    assert (joined, alone) == (None, None)
    [line] = destination.read_bytes().decode().split("\n")[:-1]
    assert _strict_json(line) == expected_line(doc)
