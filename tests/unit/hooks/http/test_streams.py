"""Splitting a JSONL stream: on newlines only, across chunk boundaries, lines of bounded length;
the head of a stream read within a budget."""

from __future__ import annotations

import itertools
import json
import pickle
import tracemalloc
from collections.abc import Iterable, Iterator

import pytest

from airflow_provider_mistral_batch.batch.error_quotes import first_errors
from airflow_provider_mistral_batch.exceptions import MistralBatchFatalError
from airflow_provider_mistral_batch.hooks.http.streams import (
    MAX_LINE_BYTES,
    CutLine,
    LineTooLongError,
    UndecodableLineError,
    head_lines,
    jsonl_lines,
)


def test_unicode_line_separators_inside_strings_do_not_split_a_line() -> None:
    line = json.dumps({"text": "a\u2028b\u2029c\x85d\x0ce"}, ensure_ascii=False)
    lines = list(jsonl_lines([line.encode() + b"\n"]))
    assert lines == [line]
    assert json.loads(lines[0])["text"] == "a\u2028b\u2029c\x85d\x0ce"


def test_lines_split_across_chunks_crlf_blank_lines_and_no_final_newline() -> None:
    data = b'{"a": 1}\r\n\n{"b": "\xc3\xa9"}\n  \n{"c": 3}'
    for size in (1, 2, 3, 7, len(data)):
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        assert list(jsonl_lines(chunks)) == ['{"a": 1}', '{"b": "\u00e9"}', '{"c": 3}']


# ---------------------------------------------------------------- the longest line read


def _counted(chunks: Iterable[bytes], pulled: list[int]) -> Iterator[bytes]:
    for chunk in chunks:
        pulled.append(len(chunk))
        yield chunk


def test_a_line_longer_than_the_limit_is_refused_naming_source_line_and_limit() -> None:
    data = b'{"a": 1}\n\n' + b"x" * 101 + b"\n{}\n"
    lines = jsonl_lines([data], "file f-1", max_line_bytes=100)
    assert next(lines) == '{"a": 1}'
    with pytest.raises(LineTooLongError) as caught:
        next(lines)
    assert str(caught.value) == (
        "file f-1 line 2 is longer than 100 bytes, the longest line accepted: reading stopped there"
    )
    assert isinstance(caught.value, MistralBatchFatalError), "a retry reads the same line"
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.source, copy.number, copy.limit) == ("file f-1", 2, 100)


def test_a_line_of_the_limit_is_read_whole_with_or_without_crlf() -> None:
    line = "y" * 100
    data = (line + "\r\n" + line + "\n" + line).encode()
    for size in (1, 7, 64, 101, 102, len(data)):
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        assert list(jsonl_lines(chunks, max_line_bytes=100)) == [line, line, line]
        with pytest.raises(LineTooLongError, match="line 1 is longer than 99 bytes"):
            list(jsonl_lines(chunks, max_line_bytes=99))
    last = b"{}\n" + b"z" * 101  # the last line, with no line end
    with pytest.raises(LineTooLongError, match="line 2 is longer than 100 bytes"):
        list(jsonl_lines([last], max_line_bytes=100))


def test_a_huge_line_is_read_only_up_to_the_limit() -> None:
    # A 64 MB line in 64 KiB chunks, refused once 1 MiB of it is held: never more than that
    # (and one chunk) was taken from the stream.
    pulled: list[int] = []
    chunks = _counted(itertools.repeat(b"x" * 65536, 1024), pulled)
    tracemalloc.start()
    try:
        with pytest.raises(LineTooLongError, match="line 1 is longer than 1,048,576 bytes"):
            list(jsonl_lines(chunks, max_line_bytes=1024 * 1024))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sum(pulled) <= 1024 * 1024 + 65536
    assert peak < 2 * 1024 * 1024


def test_the_default_limit_is_64_mib() -> None:
    assert MAX_LINE_BYTES == 64 * 1024 * 1024
    pulled: list[int] = []
    chunks = _counted(itertools.repeat(b"x" * 1024 * 1024, 100), pulled)
    with pytest.raises(LineTooLongError, match="line 1 is longer than 67,108,864 bytes"):
        list(jsonl_lines(chunks))
    assert sum(pulled) == MAX_LINE_BYTES + 1024 * 1024


def test_with_on_bad_line_a_bad_line_is_reported_skipped_and_reading_goes_on() -> None:
    data = (
        b'{"a": 1}\n\xff\n\n'  # line 2 is not UTF-8
        + b"x" * 101  # line 3 is too long
        + b'\r\n{"b": 2}\n{"c": \xc3}\r\n'  # line 5 is not UTF-8
        + b"y" * 150  # line 6 is too long and the last, with no line end
    )
    for size in (1, 2, 3, 7, 64, 101, len(data)):
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        bad: list[Exception] = []
        lines = list(jsonl_lines(chunks, "file f", max_line_bytes=100, on_bad_line=bad.append))
        assert lines == ['{"a": 1}', '{"b": 2}'], size
        assert [(type(e), e.number) for e in bad] == [  # type: ignore[attr-defined]
            (UndecodableLineError, 2),
            (LineTooLongError, 3),
            (UndecodableLineError, 5),
            (LineTooLongError, 6),
        ], size
        assert str(bad[0]).startswith("file f line 2 is not UTF-8 text")


def test_a_huge_line_skipped_is_read_past_without_being_held() -> None:
    pulled: list[int] = []
    huge = itertools.repeat(b"x" * 65536, 64)  # 4 MiB of one line
    chunks = _counted(itertools.chain([b"{}\n"], huge, [b"\n[]\n"]), pulled)
    bad: list[Exception] = []
    tracemalloc.start()
    try:
        lines = list(jsonl_lines(chunks, max_line_bytes=1024 * 1024, on_bad_line=bad.append))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert lines == ["{}", "[]"]
    assert [str(e) for e in bad] == [
        "line 2 is longer than 1,048,576 bytes, the longest line accepted: skipped"
    ]
    copy = pickle.loads(pickle.dumps(bad[0]))
    assert (copy.number, copy.skipped, str(copy)) == (2, True, str(bad[0]))
    assert sum(pulled) > 4 * 1024 * 1024  # read to its end
    assert peak < 2 * 1024 * 1024


# ---------------------------------------------------------------- the head of a stream


def test_head_lines_stops_at_its_budget_and_marks_the_line_it_cuts() -> None:
    closed: list[bool] = []
    pulled: list[int] = []

    def endless() -> Iterator[bytes]:
        # A short line, then a line that never ends (a 400 MB first line, say).
        try:
            yield b'{"custom_id": "a"}\n{"custom_id": "b", "error": "'
            while True:
                pulled.append(1)
                yield b"x" * 65536
        finally:
            closed.append(True)

    lines = list(head_lines(endless(), 4096, "file f-1"))
    assert lines[0] == '{"custom_id": "a"}'
    assert not isinstance(lines[0], CutLine)
    assert isinstance(lines[1], CutLine)
    assert lines[1].startswith('{"custom_id": "b", "error": "xxx')
    assert len(lines[0]) + 1 + len(lines[1]) == 4096
    assert pulled == [1], "one chunk of the endless line taken"
    assert closed == [True], "then the stream closed"


def test_head_lines_of_a_stream_within_its_budget_are_all_whole() -> None:
    data = b'{"a": 1}\r\n\n{"b": 2}\n{"c": 3}'
    for budget in (len(data), len(data) + 1, 10_000):
        lines = list(head_lines([data[:5], data[5:]], budget))
        assert lines == ['{"a": 1}', '{"b": 2}', '{"c": 3}']
        assert not any(isinstance(line, CutLine) for line in lines)
    # A budget that ends just before a line end cuts nothing: the byte past it is the end.
    assert list(head_lines([b"abc\ndef\nghi"], 7)) == ["abc", "def"]
    cut = list(head_lines([b"abc\ndef\nghi"], 6))
    assert cut == ["abc", "de"]
    assert isinstance(cut[1], CutLine)


def test_head_lines_leave_out_a_character_the_budget_cuts_in_two() -> None:
    data = "ab\u00e9\u20ac".encode()  # é is 2 bytes, € 3
    assert list(head_lines([data], 3)) == ["ab"]
    assert list(head_lines([data], 4)) == ["ab\u00e9"]
    assert list(head_lines([data], 6)) == ["ab\u00e9"]
    with pytest.raises(UndecodableLineError, match=r"file f line 2 is not UTF-8 text"):
        list(head_lines([b"ok\n\xffbad and long"], 6, "file f"))


def test_first_errors_quote_a_cut_head_line_as_cut() -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"custom_id": "r0", "error": {"message": "' + b"m" * 10_000_000 + b'"}}\n'

    quoted = first_errors(head_lines(chunks(), 4096), limit=5, max_chars=4096)
    assert len(quoted) == 1
    assert quoted[0].startswith('(line cut at 4,096 characters) {"custom_id": "r0", "error"')
