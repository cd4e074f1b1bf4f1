"""Bench: parsing and validation throughput of typed result rows on 1,000,000 result lines.

Writes a job's result lines once (chat completions of the emulator's shape, about 450 bytes
each: one in 50 an error line, and for the typed run one answer in 100 that is not JSON), then
joins them with the input (``join_results``, the input as ``write_job_results`` reads it back:
ids only) three ways, each in turn, and prints rows/s and the peak RSS above the step's start
(this process, sampled every 10 ms, as bench/big_batch.py measures its steps), and the CPU
time (steadier than the wall time on a shared machine):

- untyped: no output spec (``output=None``): the fast path, bodies copied, never built;
- text: ``output_spec(str)``, the default of chat and FIM jobs: each answer's text is read and
  written as ``output``;
- structured: ``output_spec(Review)``, a small pydantic model: each answer's text parsed and
  validated, its value written as ``output``, the broken ones ``invalid_output``.

    .venv/bin/python bench/typed_rows.py [--rows 1000000] [--runs 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent))

from big_batch import MB, Measured, Step

ERROR_EVERY = 50  # one error line in 50, as tests/unit/batch/test_results.py's memory test
BROKEN_EVERY = 100  # one typed answer in 100 is not JSON: invalid_output
MODEL = "mistral-small-latest"
SENTENCE = "The quick brown fox jumps over a lazy dog while cheese ages slowly in cool cellars."


class Review(BaseModel):
    """The structured output: a small model, as an extraction task would ask for."""

    sentiment: Literal["positive", "negative", "neutral"]
    score: int
    summary: str
    tags: list[str]


def _templates(typed: bool) -> tuple[str, str, str]:
    """The answer, broken answer and error lines, with ``%(i)d`` fields for the numbers:
    ``json.dumps`` output, made once (a million ``json.dumps`` calls would dwarf the join)."""
    if typed:
        content = json.dumps(
            {
                "sentiment": "positive",
                "score": 12345,
                "summary": SENTENCE,
                "tags": ["sky", "blue", "summer"],
            }
        )
    else:
        content = SENTENCE

    def answer(text: str) -> str:
        body = {
            "id": "cmpl-%(i)d",
            "object": "chat.completion",
            "model": MODEL,
            "created": 1_767_225_600,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "tool_calls": None},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 31, "completion_tokens": 17, "total_tokens": 48},
        }
        line = {
            "id": "batch-bench-%(i)d",
            "custom_id": "r%(i)d",
            "response": {"status_code": 200, "body": body},
            "error": None,
        }
        return json.dumps(line).replace("%", "%%").replace("%%(i)d", "%(i)d")

    error = json.dumps(
        {
            "id": "batch-bench-%(i)d",
            "custom_id": "r%(i)d",
            "response": {
                "status_code": 500,
                "body": {"object": "error", "message": "request r%(i)d failed"},
            },
            "error": {"message": "request r%(i)d failed", "code": "injected_failure"},
        }
    )
    return answer(content), answer(SENTENCE), error


def write_lines(path: Path, rows: int, typed: bool) -> None:
    """``rows`` result lines in input order, written a megabyte at a time."""
    answer, broken, error = _templates(typed)
    with path.open("w", encoding="utf-8") as out:
        chunk: list[str] = []
        for i in range(rows):
            if i % ERROR_EVERY == ERROR_EVERY - 1:
                template = error
            elif typed and i % BROKEN_EVERY == BROKEN_EVERY // 2:
                template = broken
            else:
                template = answer
            chunk.append(template % {"i": i})
            if len(chunk) >= 4096:
                out.write("\n".join(chunk) + "\n")
                chunk = []
        if chunk:
            out.write("\n".join(chunk) + "\n")


def read_lines(path: Path) -> Iterator[str]:
    """The lines of a result file as the hook gives them: text, without the line end."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            yield line.rstrip("\n")


def run_one(name: str, lines: Path, rows: int, spec: Any, steps: list[Step]) -> dict[str, Any]:
    from airflow_provider_mistral_batch.batch.results import join_results

    destination = lines.with_name(f"{name}.jsonl")
    requests = ((f"r{i}", None) for i in range(rows))
    with Measured(name, steps):
        cpu = time.process_time()
        summary = join_results(read_lines(lines), destination, requests=requests, output=spec)
        cpu = time.process_time() - cpu
    step = steps[-1]
    size = destination.stat().st_size
    destination.unlink()
    return {
        "seconds": step.seconds,
        "rows_per_s": summary.lines / step.seconds,
        "cpu_s": cpu,
        "peak_mb": step.peak_above_mb,
        "counts": summary.counts,
        "size_mb": size / MB,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1, help="runs of each way (medians)")
    args = parser.parse_args()

    from airflow_provider_mistral_batch.batch.output_spec import output_spec

    ways = [
        ("untyped", False, None),
        ("text", False, output_spec(str)),
        ("structured", True, output_spec(Review)),
    ]
    steps: list[Step] = []
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in ways}
    with tempfile.TemporaryDirectory(prefix="typed-rows-") as folder:
        workdir = Path(folder)
        files = {}
        for typed in (False, True):
            path = workdir / f"results-{'typed' if typed else 'text'}.jsonl"
            write_lines(path, args.rows, typed)
            files[typed] = path
            print(
                f"{args.rows:,} result lines ({'JSON answers' if typed else 'text answers'}): "
                f"{path.stat().st_size / MB:.0f} MB",
                flush=True,
            )
        for _ in range(args.runs):
            for name, typed, spec in ways:
                results[name].append(run_one(name, files[typed], args.rows, spec, steps))

    print(f"\n{'way':<11} {'rows/s':>10} {'seconds':>8} {'CPU s':>6} {'peak RSS':>9}  counts")
    baseline = None
    for name, _, _ in ways:
        runs = results[name]
        rate = statistics.median(run["rows_per_s"] for run in runs)
        seconds = statistics.median(run["seconds"] for run in runs)
        cpu = statistics.median(run["cpu_s"] for run in runs)
        peak = max(run["peak_mb"] for run in runs)
        counts = {key: value for key, value in runs[-1]["counts"].items() if value}
        baseline = baseline or cpu
        print(
            f"{name:<11} {rate:>10,.0f} {seconds:>7.1f}s {cpu:>5.1f}s {peak:>6.0f} MB  {counts} "
            f"(CPU {100 * cpu / baseline:.0f}% of untyped's)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
