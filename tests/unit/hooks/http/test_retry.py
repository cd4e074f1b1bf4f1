"""The retry policy: what is retried, how long it waits, Retry-After parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx2
import pytest
from tenacity import RetryCallState

from airflow_provider_mistral_batch.exceptions import (
    MistralAPIError,
    MistralNotFoundError,
    MistralRateLimitError,
    MistralServerError,
)
from airflow_provider_mistral_batch.hooks.http.errors import parse_retry_after
from airflow_provider_mistral_batch.hooks.http.retry import (
    RetryPolicy,
    is_retryable,
    request_never_reached_server,
)


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (MistralRateLimitError(429, "slow down"), True),
        (MistralServerError(500, "x"), True),
        (MistralServerError(502, "x"), True),
        (MistralServerError(503, "x"), True),
        (MistralServerError(504, "x"), True),
        (MistralServerError(501, "x"), False),
        (MistralNotFoundError(404, "x"), False),
        (MistralAPIError(400, "x"), False),
        (httpx2.ConnectError("refused"), True),
        (httpx2.ReadTimeout("slow"), True),
        (httpx2.RemoteProtocolError("dropped"), True),
        (httpx2.UnsupportedProtocol("ftp"), False),
        (ValueError("bug"), False),
    ],
)
def test_is_retryable(error: BaseException, retryable: bool) -> None:
    assert is_retryable(error) is retryable


@pytest.mark.parametrize(
    ("error", "never_reached"),
    [
        (MistralRateLimitError(429, "x"), True),
        (httpx2.ConnectError("refused"), True),
        (httpx2.ConnectTimeout("x"), True),
        (httpx2.ReadTimeout("x"), False),
        (httpx2.RemoteProtocolError("x"), False),
        (MistralServerError(502, "x"), False),
    ],
)
def test_request_never_reached_server(error: BaseException, never_reached: bool) -> None:
    assert request_never_reached_server(error) is never_reached


def test_parse_retry_after_seconds_and_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=7), usegmt=True), now=now) == 7
    assert parse_retry_after(format_datetime(now - timedelta(seconds=7), usegmt=True), now=now) == 0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None


def _state_after(error: BaseException, attempt: int) -> RetryCallState:
    state = RetryCallState(retry_object=RetryPolicy().retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.set_exception((type(error), error, None))
    return state


def test_wait_honours_retry_after_with_a_little_jitter_and_caps_it() -> None:
    policy = RetryPolicy(max_retry_after=10)
    waits = [
        policy.wait_seconds(_state_after(MistralRateLimitError(429, "x", retry_after=4), 1))
        for _ in range(50)
    ]
    assert all(4 <= wait <= 4.4 for wait in waits)
    assert len(set(waits)) > 1, "clients told the same Retry-After must not retry in step"
    capped = policy.wait_seconds(_state_after(MistralRateLimitError(429, "x", retry_after=99), 1))
    assert 10 <= capped <= 11


def test_wait_grows_exponentially_with_jitter_and_a_cap() -> None:
    policy = RetryPolicy(initial_wait=1, max_wait=5)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 5), (9, 5)]:
        waits = [
            policy.wait_seconds(_state_after(httpx2.ReadError("x"), attempt)) for _ in range(50)
        ]
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits)
        assert len(set(waits)) > 1, "jitter must vary the wait"


def test_retrying_stops_after_max_attempts() -> None:
    calls = 0

    def always_down() -> None:
        nonlocal calls
        calls += 1
        raise MistralServerError(503, "down")

    retrying = RetryPolicy(max_attempts=3).retrying(sleep=lambda _: None)
    with pytest.raises(MistralServerError):
        retrying(always_down)
    assert calls == 3
