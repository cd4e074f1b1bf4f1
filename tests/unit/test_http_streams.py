"""Splitting a JSONL stream: on newlines only, across chunk boundaries."""

from __future__ import annotations

import json

from airflow_provider_mistral_batch.utils.http.streams import jsonl_lines


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
