"""The one retry policy shared by the hook's sync and async paths.

Retried: 429, 500, 502, 503, 504, connection errors and timeouts. Waits grow exponentially
with full jitter, capped, and a server's ``Retry-After`` (seconds or an HTTP date) wins over
the computed wait.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import httpx2
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)

from airflow_provider_mistral_batch.exceptions import MistralAPIError, describe_error

log = logging.getLogger(__name__)

RETRYABLE_STATUS_CODES: Final = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a failed request.

    :param max_attempts: tries in all, the first included (1 disables retries).
    :param initial_wait: upper bound of the first jittered wait, in seconds.
    :param max_wait: cap of one computed wait, in seconds.
    :param max_retry_after: cap of a server-given ``Retry-After``, in seconds (a longer wait
        would hold a worker slot; the retry may then meet another 429).
    """

    max_attempts: int = 5
    initial_wait: float = 0.5
    max_wait: float = 30.0
    max_retry_after: float = 120.0

    def wait_seconds(self, state: RetryCallState) -> float:
        """Seconds to wait before the next attempt."""
        exc = state.outcome.exception() if state.outcome is not None else None
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, int | float) and retry_after >= 0:
            # Up to 10% more, so that many clients told the same Retry-After do not all come
            # back in the same instant.
            wait = min(float(retry_after), self.max_retry_after)
            return wait + random.uniform(0.0, 0.1 * wait)
        ceiling = min(self.max_wait, self.initial_wait * 2 ** (state.attempt_number - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _options(self, max_attempts: int | None, sleep: object | None) -> dict[str, Any]:
        """What the sync and async retrying objects share: stop, wait, retry test, logging."""
        attempts = max_attempts or self.max_attempts

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            log.warning(
                "Mistral API request failed (attempt %s of %s): %s; retrying in %.1f s",
                state.attempt_number,
                attempts,
                describe_error(exc),
                wait,
            )

        options: dict[str, Any] = {
            "stop": stop_after_attempt(attempts),
            "wait": self.wait_seconds,
            "retry": retry_if_exception(is_retryable),
            "before_sleep": before_sleep,
            "reraise": True,
        }
        if sleep is not None:
            options["sleep"] = sleep
        return options

    def retrying(
        self, *, sleep: Callable[[float], None] | None = None, max_attempts: int | None = None
    ) -> Retrying:
        """A tenacity ``Retrying`` for synchronous calls."""
        return Retrying(**self._options(max_attempts, sleep))

    def async_retrying(
        self,
        *,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        max_attempts: int | None = None,
    ) -> AsyncRetrying:
        """A tenacity ``AsyncRetrying`` for coroutines: the same policy as :meth:`retrying`."""
        return AsyncRetrying(**self._options(max_attempts, sleep))


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed attempt is worth another try."""
    if isinstance(exc, MistralAPIError):
        return exc.status_code in RETRYABLE_STATUS_CODES
    if isinstance(exc, httpx2.UnsupportedProtocol | httpx2.LocalProtocolError):
        return False
    return isinstance(exc, httpx2.TransportError)


def request_never_reached_server(exc: BaseException) -> bool:
    """Whether a failure proves the server did not act on the request.

    A 429 is refused before processing and a failed connect never sent anything; any other
    transport error or 5xx leaves it open whether the server acted.
    """
    if isinstance(exc, MistralAPIError):
        return exc.status_code == 429
    return isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout)
