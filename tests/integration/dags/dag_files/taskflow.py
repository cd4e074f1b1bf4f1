"""Test DAGs of ``@task.mistral_batch``: each input its function may return, a deferral, a
retry that reattaches, and return values that must fail before anything is uploaded.

Each function records its calls (task id and try number, one line each) in
``taskflow-calls.txt`` beside the DAGs folder; the deferred task also records its resumes.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import ObjectStoragePath, dag, task
from airflow.sdk.bases.decorator import task_decorator_factory

from airflow_provider_mistral_batch.decorators.mistral_batch import (
    MistralBatchDecoratedOperator,
)

RESULTS_ROOT = os.environ.get("MISTRAL_EXAMPLE_RESULTS", "file:///tmp")
RUN = "{{ run_id | replace(':', '_') | replace('+', '_') }}"
HOME = Path(__file__).resolve().parent.parent
CALLS = HOME / "taskflow-calls.txt"
TOPICS = ["cheese", "wine", "rivers"]


def record(event: str, ti: Any) -> None:
    """One line per call: ``<event> <task_id> <try_number>``."""
    with CALLS.open("a") as calls:
        calls.write(f"{event} {ti.task_id} {ti.try_number}\n")


def embedding_requests(prefix: str, count: int) -> list[dict[str, Any]]:
    return [{"custom_id": f"{prefix}{i}", "body": {"input": [f"text {i}"]}} for i in range(count)]


class RecordsResumes(MistralBatchDecoratedOperator):
    """Records each resume after a deferral (the function must not run then)."""

    def execute_complete(self, context: Any, event: Any = None) -> Any:
        record("resume", context["ti"])
        return super().execute_complete(context, event)


@dag(dag_id="test_taskflow_prompts_deferred", schedule=None, start_date=datetime(2026, 1, 1))
def test_taskflow_prompts_deferred() -> None:
    @task_decorator_factory(
        decorated_operator_class=RecordsResumes,
        multiple_outputs=False,
        model="mistral-small-latest",
        deferrable=True,
        poll_interval=0.2,
        results_path=f"{RESULTS_ROOT}/taskflow-prompts-{RUN}.jsonl",
    )
    def ask(topics: list[str], ti: Any = None) -> list[str]:
        record("call", ti)
        return [f"Say one fact about {topic}." for topic in topics]

    ask(TOPICS)


@dag(dag_id="test_taskflow_inputs", schedule=None, start_date=datetime(2026, 1, 1))
def test_taskflow_inputs() -> None:
    @task.mistral_batch(
        endpoint="/v1/embeddings",
        model="mistral-embed",
        poll_interval=0.2,
        results_path=f"{RESULTS_ROOT}/taskflow-requests-{RUN}.jsonl",
    )
    def requests(ti: Any = None) -> list[dict[str, Any]]:
        record("call", ti)
        return embedding_requests("r", 4)

    @task.mistral_batch(endpoint="/v1/embeddings", model="mistral-embed", poll_interval=0.2)
    def local_path(run_id: Any = None, ti: Any = None) -> str:
        record("call", ti)
        path = HOME / f"taskflow-input-{run_id.replace(':', '_').replace('+', '_')}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in embedding_requests("p", 3)))
        return str(path)

    @task.mistral_batch(endpoint="/v1/embeddings", model="mistral-embed", poll_interval=0.2)
    def storage_path(ti: Any = None) -> ObjectStoragePath:
        record("call", ti)
        path = ObjectStoragePath(f"file://{HOME}/taskflow-input-storage.jsonl")
        path.write_text("".join(json.dumps(r) + "\n" for r in embedding_requests("s", 2)))
        return path

    @task.mistral_batch(model="mistral-small-latest", poll_interval=0.2)
    def mapped(topic: str) -> list[str]:
        return [f"Say one fact about {topic}.", f"Say another fact about {topic}."]

    requests()
    local_path()
    storage_path()
    mapped.expand(topic=TOPICS[:2])


@dag(dag_id="test_taskflow_retry_reattaches", schedule=None, start_date=datetime(2026, 1, 1))
def test_taskflow_retry_reattaches() -> None:
    @task.mistral_batch(
        endpoint="/v1/embeddings",
        model="mistral-embed",
        deferrable=False,
        poll_interval=0.2,
        execution_timeout=timedelta(seconds=2),
        retries=3,
        retry_delay=timedelta(seconds=0),
    )
    def slow(ti: Any = None) -> list[dict[str, Any]]:
        record("call", ti)
        return embedding_requests("r", 6)

    slow()


#: task id -> what its function returns; each must fail its first try, nothing uploaded.
BAD_RETURNS: dict[str, Any] = {
    "returns_a_number": 42,
    "returns_an_empty_list": [],
    "returns_none": None,
    "returns_one_request": {"custom_id": "a", "body": {"messages": []}},
    "returns_mixed_items": ["a prompt", {"custom_id": "b", "body": {}}],
}


@dag(dag_id="test_taskflow_bad_returns", schedule=None, start_date=datetime(2026, 1, 1))
def test_taskflow_bad_returns() -> None:
    for task_id, returned in BAD_RETURNS.items():

        @task.mistral_batch(
            task_id=task_id,
            model="mistral-small-latest",
            results_path=f"{RESULTS_ROOT}/taskflow-bad-{task_id}-{RUN}.jsonl",
            retries=2,
            retry_delay=timedelta(seconds=0),
        )
        def bad(value: Any = returned) -> Any:
            return value

        bad()


@dag(dag_id="test_taskflow_resubmit_deferred", schedule=None, start_date=datetime(2026, 1, 1))
def test_taskflow_resubmit_deferred() -> None:
    # The tests make a request fail with a 5xx once: round 1 sends it again, deferred again.
    @task_decorator_factory(
        decorated_operator_class=RecordsResumes,
        multiple_outputs=False,
        model="mistral-small-latest",
        deferrable=True,
        poll_interval=0.2,
        retry_failed_requests=2,
        results_path=f"{RESULTS_ROOT}/taskflow-resubmit-{RUN}.jsonl",
    )
    def ask(topics: list[str], ti: Any = None) -> list[str]:
        record("call", ti)
        return [f"Say one fact about {topic}." for topic in topics]

    ask(TOPICS)


test_taskflow_prompts_deferred()
test_taskflow_resubmit_deferred()
test_taskflow_inputs()
test_taskflow_retry_reattaches()
test_taskflow_bad_returns()
