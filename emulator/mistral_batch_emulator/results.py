"""Turning one input line into one output or error line, in the contract's JSONL shape."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from airflow_provider_mistral_batch.models import ApiEndpoint
from mistral_batch_emulator.catalog import accepted_models
from mistral_batch_emulator.config import BrokenOutput, EmulatorConfig
from mistral_batch_emulator.errors import error_body
from mistral_batch_emulator.flaky import FlakyRequests
from mistral_batch_emulator.responses import RequestRejected, fake_response


class LineError(Exception):
    """An input line that is not a usable request."""

    def __init__(self, message: str, custom_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.custom_id = custom_id


def parse_line(raw: bytes, where: str) -> tuple[str | None, dict[str, Any]]:
    """The custom_id and body of one input line.

    :param where: names the line in messages, e.g. ``line 12 of file <id>``.
    :raises LineError: when the line is not JSON, not an object, or has no object ``body``.
    """
    try:
        item = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LineError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(item, dict):
        raise LineError(f"{where}: expected a JSON object, got {type(item).__name__}")
    custom_id = item.get("custom_id")
    if custom_id is not None and not isinstance(custom_id, str):
        raise LineError(f"{where}: custom_id must be a string or null")
    body = item.get("body")
    if not isinstance(body, dict):
        raise LineError(f"{where}: 'body' must be a JSON object", custom_id)
    return custom_id, body


def _broken(config: EmulatorConfig, custom_id: str | None) -> BrokenOutput | None:
    """How ``broken_output_custom_ids`` breaks this request's answer, if at all."""
    return None if custom_id is None else config.broken_output_custom_ids.get(custom_id)


@dataclass(frozen=True)
class JobContext:
    """What answering a job's requests needs to know about the job."""

    job_id: str
    endpoint: ApiEndpoint
    model: str | None
    agent_id: str | None
    created_at: int


def _dump(line: dict[str, Any]) -> str:
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False)


class ResultWriter:
    """Builds the result line (a JSON string) of each request of one job.

    :param config: the settings of this stretch of answers (failing, flaky and broken
        custom_ids, the error line style, the known models).
    :param flaky: the failure counts of ``config.flaky_custom_ids``, shared by every job.
    """

    def __init__(self, job: JobContext, config: EmulatorConfig, flaky: FlakyRequests) -> None:
        self._job = job
        self._prefix = f"batch-{job.job_id[:8]}-"
        self._config = config
        self._flaky = flaky
        self._known_models = accepted_models(config.models)

    def answer(self, raw: bytes, index: int, where: str) -> tuple[bool, str]:
        """Whether request ``index`` succeeded, and its output or error line."""
        try:
            custom_id, body = parse_line(raw, where)
        except LineError as exc:
            return False, self.error_line(index, exc.custom_id, 400, exc.message, "invalid_line")
        config = self._config
        if custom_id is not None and custom_id in config.failing_custom_ids:
            message = f"request {custom_id} failed (listed in failing_custom_ids)"
            return False, self.error_line(index, custom_id, 500, message, "injected_failure")
        flaky = self._flaky_failure(custom_id)
        if flaky is not None:
            return False, self.error_line(index, custom_id, 503, flaky, "service_unavailable")
        try:
            response = fake_response(
                self._job.endpoint,
                body,
                custom_id=custom_id,
                job_model=self._job.model,
                job_agent_id=self._job.agent_id,
                created=self._job.created_at,
                known_models=self._known_models,
                broken=_broken(config, custom_id),
            )
        except RequestRejected as exc:
            message = f"{where}: {exc.message}"
            return False, self.error_line(index, custom_id, 400, message, exc.code, exc.kind)
        line = {
            "id": self._line_id(index),
            "custom_id": custom_id,
            "response": {"status_code": 200, "body": response},
            "error": None,
        }
        return True, _dump(line)

    def error_line(
        self,
        index: int,
        custom_id: str | None,
        status_code: int,
        message: str,
        code: str,
        kind: tuple[str, str] | None = None,
    ) -> str:
        """An error-file line: the output envelope with an error status and ``error`` set.

        :param kind: ``(type, code)`` of the response body's error when not the status's.
        """
        error: Any = message
        if self._config.error_line_style == "object":
            error = {"message": message, "code": code}
        line = {
            "id": self._line_id(index),
            "custom_id": custom_id,
            "response": {
                "status_code": status_code,
                "body": error_body(status_code, message, None, kind),
            },
            "error": error,
        }
        return _dump(line)

    def _flaky_failure(self, custom_id: str | None) -> str | None:
        """The message of this answer's flaky failure, or None when it does not fail."""
        if custom_id is None:
            return None
        times = self._config.flaky_custom_ids.get(custom_id, 0)
        if times <= 0:
            return None
        failure = self._flaky.fail(custom_id, times)
        if failure is None:
            return None
        return (
            f"request {custom_id} failed: service unavailable, try again "
            f"(failure {failure} of {times}, flaky_custom_ids)"
        )

    def _line_id(self, index: int) -> str:
        return f"{self._prefix}{index}-{uuid.uuid4()}"


__all__ = ["JobContext", "LineError", "ResultWriter", "parse_line"]
