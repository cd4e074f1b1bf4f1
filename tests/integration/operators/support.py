"""Shared pieces of the operator and sensor tests: a fake task instance and request builders."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_mistral_batch.links import MistralBatchJobLink

CHAT = "/v1/chat/completions"
MODEL = "mistral-small-latest"


class FakeTaskInstance:
    """Stands in for the running task instance: identity attributes and recorded XCom pushes."""

    def __init__(
        self,
        *,
        dag_id: str = "mistral_dag",
        task_id: str = "batch",
        run_id: str = "manual__2026-11-01T00:00:00+00:00",
        map_index: int = -1,
        try_number: int = 1,
    ) -> None:
        self.dag_id = dag_id
        self.task_id = task_id
        self.run_id = run_id
        self.map_index = map_index
        self.try_number = try_number
        self.pushes: list[tuple[str, Any]] = []

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushes.append((key, value))

    @property
    def pushed(self) -> dict[str, Any]:
        """The last value pushed under each key."""
        return dict(self.pushes)

    @property
    def keys(self) -> list[str]:
        """Keys in the order they were pushed."""
        return [key for key, _ in self.pushes]


LINK_KEY = MistralBatchJobLink().xcom_key


def make_context(ti: FakeTaskInstance | None = None) -> dict[str, Any]:
    return {"ti": ti or FakeTaskInstance()}


def chat_requests(n: int, prefix: str = "r") -> list[dict[str, Any]]:
    body = {"max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    return [{"custom_id": f"{prefix}{i}", "body": body} for i in range(n)]


class OperatorLog:
    """The lines an operator logged, as pytest's ``caplog`` recorded them."""

    def __init__(self, caplog: pytest.LogCaptureFixture, logger_name: str) -> None:
        self._caplog = caplog
        self._name = logger_name

    @property
    def lines(self) -> list[tuple[str, str]]:
        """``(level, message)`` of every line, in order."""
        return [
            (record.levelname.lower(), record.getMessage())
            for record in self._caplog.records
            if record.name == self._name
            # Airflow's notice that a test calls execute() directly
            and "cannot be called outside of the Task Runner" not in record.getMessage()
        ]

    def at(self, level: str) -> list[str]:
        """Messages logged at ``level``."""
        return [text for lvl, text in self.lines if lvl == level]

    @property
    def text(self) -> str:
        return "\n".join(text for _, text in self.lines)


def job_data(status: str = "SUCCESS", **overrides: Any) -> dict[str, Any]:
    """A batch job as the API returns it (defaults: an ended job with 3 of 3 requests done)."""
    data: dict[str, Any] = {
        "id": "6f1c2a54-3b0e-4c55-9d9a-1f2e3d4c5b6a",
        "object": "batch",
        "input_files": [],
        "metadata": {},
        "endpoint": CHAT,
        "model": MODEL,
        "output_file": "0a1b2c3d-0000-4000-8000-000000000001",
        "error_file": None,
        "errors": [],
        "status": status,
        "created_at": 1_795_000_000,
        "total_requests": 3,
        "completed_requests": 3,
        "succeeded_requests": 3,
        "failed_requests": 0,
        "started_at": 1_795_000_001,
        "completed_at": 1_795_000_002,
    }
    data.update(overrides)
    return data


def cancel_requests(emulator: Any, job_id: str) -> list[Any]:
    """The cancel calls the emulator received for one job."""
    return [r for r in emulator.requests if r.path == f"/v1/batch/jobs/{job_id}/cancel"]


def lose_inputs_after_create(
    monkeypatch: pytest.MonkeyPatch, op: Any, emulator: Any, *, which: set[int] | None = None
) -> list[Any]:
    """Make jobs of ``op`` end FAILED: each input file is deleted right after its job is
    created, before the emulator validates it (``queue_seconds`` set here). ``which``: the
    1-based creates to do it for (default all). Returns the jobs created."""
    emulator.update_config(queue_seconds=0.3)
    create = op.hook.create_batch_job
    made: list[Any] = []

    def create_then_lose_the_input(**kwargs: Any) -> Any:
        job = create(**kwargs)
        made.append(job)
        if which is None or len(made) in which:
            for file_id in job.input_files:
                op.hook.delete_file(file_id)
        return job

    monkeypatch.setattr(op.hook, "create_batch_job", create_then_lose_the_input)
    return made
