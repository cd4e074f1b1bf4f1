"""Helpers shared by the tests that talk to the emulator."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mistral_batch.hooks.http.retry import RetryPolicy
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import BatchJob
from mistral_batch_emulator import RunningEmulator

CONN_ID = "mistral_emulator"
# Short waits keep retry tests fast; the waits chosen are recorded, not slept in full.
FAST_RETRIES = RetryPolicy(max_attempts=4, initial_wait=0.01, max_wait=0.05, max_retry_after=5)


def set_connection(
    monkeypatch: pytest.MonkeyPatch,
    emulator: RunningEmulator,
    *,
    conn_id: str = CONN_ID,
    api_key: str | None = None,
    extra: dict[str, object] | None = None,
) -> None:
    """Point an Airflow connection (as an environment variable) at the emulator."""
    conn = {
        "conn_type": "mistral",
        "host": emulator.base_url,
        "password": api_key if api_key is not None else emulator.api_key,
        "extra": extra or {},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


class SleepRecorder:
    """Stands in for time.sleep between retries: records each wait, sleeps very little."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(min(seconds, 0.01))


def unreachable_hook(monkeypatch: pytest.MonkeyPatch, max_attempts: int) -> MistralBatchHook:
    """A hook whose connection points at a closed loopback port: every connect is refused."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_MISTRAL_DOWN",
        '{"conn_type": "mistral", "host": "http://127.0.0.1:9", "password": "k"}',
    )
    return MistralBatchHook(
        "mistral_down", retry_policy=RetryPolicy(max_attempts=max_attempts, initial_wait=0)
    )


def wait_for_terminal(hook: MistralBatchHook, job_id: str, limit: float = 60.0) -> BatchJob:
    """Poll a job until it ends; fail the test if it has not ended within ``limit`` seconds."""
    deadline = time.monotonic() + limit
    job = hook.get_batch_job(job_id)
    while not job.status.is_terminal:
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} still {job.status} after {limit} s")
        time.sleep(0.05)
        job = hook.get_batch_job(job_id)
    return job


def write_jsonl(path: Path, custom_ids: list[str], endpoint: str = "chat") -> None:
    """Write an input JSONL with one valid request per custom id."""
    body: dict[str, object]
    if endpoint == "chat":
        body = {"max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    else:
        body = {"input": ["hello"]}
    lines = [json.dumps({"custom_id": cid, "body": body}) for cid in custom_ids]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def running_job(**changes: Any) -> BatchJob:
    """Job ``1a2b``, RUNNING with 12,345 of 100,000 requests done; ``changes`` override fields."""
    fields: dict[str, Any] = {
        "id": "1a2b",
        "input_files": [],
        "endpoint": "/v1/embeddings",
        "errors": [],
        "status": "RUNNING",
        "created_at": 1_700_000_000,
        "total_requests": 100_000,
        "completed_requests": 12_345,
        "succeeded_requests": 12_305,
        "failed_requests": 40,
    }
    fields.update(changes)
    return BatchJob.model_validate(fields)


def create_embeddings_job(hook: MistralBatchHook, count: int = 3) -> BatchJob:
    """Create a job of ``count`` inline embeddings requests (``r0``, ``r1``...)."""
    return hook.create_batch_job(
        endpoint="/v1/embeddings",
        model="mistral-embed",
        requests=[{"custom_id": f"r{i}", "body": {"input": [f"text {i}"]}} for i in range(count)],
    )
