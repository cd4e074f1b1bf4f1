"""A thin test client of the emulator's REST API (deliberately not the hook)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx2

TERMINAL = frozenset({"SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED"})
CHAT = "/v1/chat/completions"
MODEL = "mistral-small-latest"


def chat_line(custom_id: str, text: str = "hello") -> dict[str, Any]:
    """One chat-completion request line."""
    return {
        "custom_id": custom_id,
        "body": {"max_tokens": 16, "messages": [{"role": "user", "content": text}]},
    }


def jsonl(items: Iterable[Any]) -> bytes:
    """Items as JSONL bytes (strings are written as raw lines)."""
    lines = [item if isinstance(item, str) else json.dumps(item) for item in items]
    return ("\n".join(lines) + "\n").encode()


def parse_jsonl(data: bytes) -> list[dict[str, Any]]:
    """JSONL bytes as a list of objects."""
    return [json.loads(line) for line in data.splitlines() if line.strip()]


class Api:
    """Calls the emulator over real loopback HTTP."""

    def __init__(self, client: httpx2.Client) -> None:
        self.http = client

    def upload(
        self, content: bytes, filename: str = "input.jsonl", purpose: str = "batch"
    ) -> dict[str, Any]:
        response = self.http.post(
            "/v1/files", files={"file": (filename, content)}, data={"purpose": purpose}
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def create_job(self, **body: Any) -> dict[str, Any]:
        body.setdefault("endpoint", CHAT)
        body.setdefault("model", MODEL)
        response = self.http.post("/v1/batch/jobs", json=body)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def job(self, job_id: str, **params: Any) -> dict[str, Any]:
        response = self.http.get(f"/v1/batch/jobs/{job_id}", params=params)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def content(self, file_id: str) -> bytes:
        response = self.http.get(f"/v1/files/{file_id}/content")
        assert response.status_code == 200, response.text
        return response.content

    def wait(
        self,
        job_id: str,
        until: Callable[[dict[str, Any]], bool] = lambda job: job["status"] in TERMINAL,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        """Poll a job until ``until`` holds (bounded; fails the test when it never does)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if until(job):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job never reached the expected state: {job}")
            time.sleep(0.02)
