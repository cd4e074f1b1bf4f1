"""Settings of the emulator and the faults it can inject."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from airflow_provider_mistral_batch.models import MAX_FILE_BYTES
from mistral_batch_emulator.catalog import ANY_MODEL, DEFAULT_MODELS

FaultKind = Literal[
    "status",
    "drop_before",
    "drop_after",
    "delay_before",
    "delay_after",
    "slow_commit",
    "garbled",
    "endless_pages",
]


#: How a ``broken_output_custom_ids`` answer is broken: text that is not JSON, or JSON that
#: does not validate against the request's schema.
BrokenOutput = Literal["not_json", "wrong_shape"]


class Fault(BaseModel):
    """One injected fault.

    ``status``: answer ``status_code`` with the documented error body; the request is not
    processed. ``drop_before``: close the connection without a complete response; the request
    is not processed. ``drop_after``: process the request (side effects happen), then close
    the connection mid-response. ``delay_before`` / ``delay_after``: sleep ``delay_seconds``
    before processing / after processing and before answering. ``slow_commit``: read the
    whole request, sleep ``delay_seconds``, then process it even if the client has gone (a
    server that finishes a request the client already gave up on). ``garbled``: answer 200
    with an HTML page instead of JSON (a proxy's maintenance page); the request is not
    processed. ``endless_pages``: the job list answers a full page whatever page is asked
    for (the matching jobs again, in turn) and a ``total`` one page beyond it, so the
    listing never ends; other requests are served normally.

    :param method: only match this HTTP method (None: any).
    :param path_prefix: only match request paths starting with this (None: any).
    :param path: only match this exact request path (None: any), e.g. ``/v1/batch/jobs``
        for the job list without the paths of single jobs under it.
    """

    # A misspelt key in a config file must fail, not be ignored.
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: FaultKind
    status_code: int = Field(default=503, ge=400, le=599)
    retry_after: str | None = None
    delay_seconds: float = Field(default=0.0, ge=0.0)
    method: str | None = None
    path_prefix: str | None = None
    path: str | None = None

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to a request with this method and path."""
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.path is not None and self.path != path:
            return False
        return self.path_prefix is None or path.startswith(self.path_prefix)


def _default_fault_pool() -> list[Fault]:
    return [
        Fault(kind="status", status_code=429, retry_after="1"),
        Fault(kind="status", status_code=503),
        Fault(kind="status", status_code=500),
    ]


class EmulatorConfig(BaseModel):
    """How the emulator behaves.

    :param api_key: the Bearer token accepted; None accepts any non-empty token.
    :param requests_per_second: how fast a RUNNING job completes requests (default 500).
    :param queue_seconds: how long a job stays QUEUED before validation (default 0).
    :param latency_seconds: added to every API response (default 0).
    :param fault_rate: probability that an API request gets a random fault from ``fault_pool``.
    :param fault_pool: faults drawn at random (default: 429 with Retry-After 1, 503, 500).
    :param seed: seed of the random faults (default 0).
    :param faults: scripted faults; each request matching the first one's filters consumes it.
    :param failing_custom_ids: requests with these custom_ids end in the error file.
    :param broken_output_custom_ids: custom_id -> ``"not_json"`` or ``"wrong_shape"``: the
        request succeeds (an output line, status 200) but its answer's text is not JSON, or
        JSON that does not validate against the request's ``response_format`` schema
        (chat and FIM completions, conversations).
    :param flaky_custom_ids: custom_id -> N: the request fails with a 503 error line the first
        N times it is answered (counted across jobs; setting this field restarts the
        counts), then succeeds.
    :param partial_output_on_cancel: cancelled and timed-out jobs still get an output file of
        what completed (default True).
    :param seconds_per_timeout_hour: a job's ``timeout_hours`` times this is its real deadline
        in seconds (default 3600).
    :param error_line_style: shape of ``error`` in error-file lines: an object
        ``{message, code}`` (default) or a bare string.
    :param data_dir: where file contents are stored; a temporary directory when None.
    :param max_file_bytes: largest upload accepted (default 512 MB).
    :param models: the model names jobs and requests may use (default: Mistral's public
        models, ``catalog.DEFAULT_MODELS``); ``["*"]`` accepts any name. A job naming
        another model is refused at creation; a request body naming one fails alone.
    """

    model_config = ConfigDict(validate_assignment=True)

    api_key: str | None = "emulator-key"
    requests_per_second: float = Field(default=500.0, gt=0.0)
    queue_seconds: float = Field(default=0.0, ge=0.0)
    latency_seconds: float = Field(default=0.0, ge=0.0)
    fault_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    fault_pool: list[Fault] = Field(default_factory=_default_fault_pool)
    seed: int = 0
    faults: list[Fault] = Field(default_factory=list)
    failing_custom_ids: set[str] = Field(default_factory=set)
    broken_output_custom_ids: dict[str, BrokenOutput] = Field(default_factory=dict)
    flaky_custom_ids: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    partial_output_on_cancel: bool = True
    seconds_per_timeout_hour: float = Field(default=3600.0, gt=0.0)
    error_line_style: Literal["object", "string"] = "object"
    data_dir: Path | None = None
    max_file_bytes: int = Field(default=MAX_FILE_BYTES, gt=0)
    models: list[str] = Field(default_factory=lambda: list(DEFAULT_MODELS))

    @field_validator("models")
    @classmethod
    def _some_models(cls, value: list[str]) -> list[str]:
        # An empty list would refuse every job: more likely a mistake than a wish.
        if not value:
            raise ValueError(f'list at least one model name, or "{ANY_MODEL}" to accept any')
        if any(not name.strip() for name in value):
            raise ValueError("a model name cannot be empty")
        return value


__all__ = ["BrokenOutput", "EmulatorConfig", "Fault", "FaultKind"]
