"""Bench: rendering the batch operator's ``requests`` template field when it holds a literal
list of request dicts written in the DAG file (no Jinja in them).

Renders the field as Airflow does before a task runs (``render_template_fields`` with the
DAG's Jinja environment), once through this operator and once through Airflow's own
``render_template`` (what every operator does), and prints the median wall time of each.

    .venv/bin/python bench/render_requests.py [--requests 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import datetime
from typing import Any

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))

from airflow.sdk import DAG, BaseOperator

from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator


def _requests(count: int) -> list[dict[str, Any]]:
    return [
        {
            "custom_id": f"review-{index}",
            "body": {
                "max_tokens": 64,
                "messages": [
                    {"role": "system", "content": "You label product reviews."},
                    {"role": "user", "content": f"Review {index}: arrived late, works fine."},
                ],
            },
        }
        for index in range(count)
    ]


class _AirflowRendering(MistralBatchOperator):
    """The same operator rendering every string through Jinja, as Airflow's base class does."""

    def render_template(
        self, content: Any, context: Any, jinja_env: Any = None, seen_oids: Any = None
    ) -> Any:
        return BaseOperator.render_template(self, content, context, jinja_env, seen_oids)


def _time(operator_class: type[MistralBatchOperator], count: int, runs: int) -> float:
    times = []
    for _ in range(runs):
        with DAG("bench_render", schedule=None, start_date=datetime(2026, 1, 1)):
            op = operator_class(
                task_id="batch", endpoint="/v1/chat/completions", requests=_requests(count)
            )
        context: Any = {"ds": "2026-11-30"}
        start = time.perf_counter()
        op.render_template_fields(context)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    ours = _time(MistralBatchOperator, args.requests, args.runs)
    every_string = _time(_AirflowRendering, args.requests, args.runs)
    print(f"requests: {args.requests:,} literal dicts (6 strings each), median of {args.runs}")
    print(f"render_template_fields, this operator:          {ours * 1000:9.1f} ms")
    print(f"render_template_fields, every string via Jinja: {every_string * 1000:9.1f} ms")
    print(f"speed-up: {every_string / ours:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
