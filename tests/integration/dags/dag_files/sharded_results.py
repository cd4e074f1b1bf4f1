"""Test DAG: seven requests at three per job, in both wait modes, results joined in one file.

A downstream task reads each results file back from object storage.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

from airflow.sdk import ObjectStoragePath, dag, task

from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator

RESULTS_ROOT = os.environ.get("MISTRAL_EXAMPLE_RESULTS", "file:///tmp")
RUN = "{{ run_id | replace(':', '_') | replace('+', '_') }}"


class ThreeRequestsPerJob(MistralBatchOperator):
    """Shards at three requests (max_requests_per_job is a class attribute)."""

    max_requests_per_job = 3


@dag(dag_id="test_sharded_results", schedule=None, start_date=datetime(2026, 1, 1))
def test_sharded_results() -> None:
    @task
    def build_requests() -> list[dict[str, Any]]:
        body = {"max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
        return [{"custom_id": f"q{i}", "body": body} for i in range(7)]

    requests = build_requests()
    for mode, deferrable in (("blocking", False), ("deferred", True)):
        sharded = ThreeRequestsPerJob(
            task_id=f"sharded_{mode}",
            endpoint="/v1/chat/completions",
            model="mistral-small-latest",
            requests=requests,
            deferrable=deferrable,
            poll_interval=0.2,
            results_path=f"{RESULTS_ROOT}/sharded-{mode}-{RUN}.jsonl",
        )

        @task(task_id=f"read_{mode}")
        def read(summary: dict[str, Any]) -> list[str]:
            with ObjectStoragePath(summary["results_path"]).open("r") as lines:
                return [json.loads(line)["custom_id"] for line in lines]

        read(sharded.output)


test_sharded_results()
