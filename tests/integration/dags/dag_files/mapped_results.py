"""Test DAGs: a mapped batch task writing its results, one file per instance or one shared.

``test_mapped_shared_results_path`` gives every instance the same ``results_path``: each
would replace the others' file, so every instance must fail before anything is sent (and
without retries, though it has one). ``test_mapped_results_per_index`` names the map index in
the path, in a folder that does not exist yet: each instance writes its own file, and a
downstream task reads them all.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import ObjectStoragePath, dag, task

from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator

RESULTS_ROOT = os.environ.get("MISTRAL_EXAMPLE_RESULTS", "file:///tmp")
RUN = "{{ run_id | replace(':', '_') | replace('+', '_') }}"
TOPICS = {"cheese": ["Comte", "Brie"], "rivers": ["Loire", "Seine", "Rhone"]}


def _requests_per_topic() -> list[list[dict[str, Any]]]:
    return [
        [
            {
                "custom_id": f"{topic}-{index}",
                "body": {"max_tokens": 8, "messages": [{"role": "user", "content": name}]},
            }
            for index, name in enumerate(names)
        ]
        for topic, names in TOPICS.items()
    ]


@dag(dag_id="test_mapped_shared_results_path", schedule=None, start_date=datetime(2026, 1, 1))
def test_mapped_shared_results_path() -> None:
    MistralBatchOperator.partial(
        task_id="describe",
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        poll_interval=0.2,
        retries=1,
        retry_delay=timedelta(seconds=0),
        results_path=f"{RESULTS_ROOT}/mapped-shared-{RUN}.jsonl",
    ).expand(requests=task(_requests_per_topic)())


test_mapped_shared_results_path()


@dag(dag_id="test_mapped_results_per_index", schedule=None, start_date=datetime(2026, 1, 1))
def test_mapped_results_per_index() -> None:
    describe = MistralBatchOperator.partial(
        task_id="describe",
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        deferrable=True,
        poll_interval=0.2,
        results_path=f"{RESULTS_ROOT}/mapped-{RUN}/topic-{{{{ ti.map_index }}}}.jsonl",
    ).expand(requests=task(_requests_per_topic)())

    @task
    def read(summaries: list[dict[str, Any]]) -> list[list[str]]:
        ids = []
        for summary in summaries:
            with ObjectStoragePath(summary["results_path"]).open("r") as lines:
                ids.append([json.loads(line)["custom_id"] for line in lines])
        return ids

    read(describe.output)


test_mapped_results_per_index()
