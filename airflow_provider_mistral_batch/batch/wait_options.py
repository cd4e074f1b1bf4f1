"""The waiting options of the operators and the sensor: defaults and the checks made when a
DAG file is parsed.

Apart from the waiting core (:mod:`.waiting`), which only a running task needs: every DAG file
that uses an operator pays for this module at every parse, so it stays small.
"""

from __future__ import annotations

import math
from typing import Any, Final

from airflow_provider_mistral_batch.exceptions import MistralBatchInputError

DEFAULT_POLL_INTERVAL: Final = 30.0
#: The share of failed requests a SUCCESS job may have by default: none. A job whose requests
#: failed must not turn the task green unless the DAG says how many may fail (None or 1.0:
#: any number, with a warning).
DEFAULT_MAX_FAILED_RATIO: Final = 0.0
DEFAULT_MAX_CONSECUTIVE_ERRORS: Final = 5
#: The longest wait between two polls of a long-running job (5 minutes). The poll schedule of
#: every wait: every ``poll_interval`` seconds; a job that has run long is polled every tenth of
#: its age (from its start), never more often than ``poll_interval`` and never less often than
#: this.
DEFAULT_MAX_POLL_INTERVAL: Final = 300.0


class _NotGiven:
    """An option the caller does not have (None is a value: refused, or for
    ``max_failed_ratio``, "any share")."""


_NOT_GIVEN: Final = _NotGiven()


def check_wait_options(
    task_id: str,
    *,
    max_failed_ratio: Any = None,
    poll_interval: Any = _NOT_GIVEN,
    max_consecutive_errors: Any = _NOT_GIVEN,
) -> None:
    """Refuse, when the DAG is parsed, waiting options no job could satisfy: each must be a
    finite number (a string such as ``"30"`` or None is refused, not compared) in its range.

    :param task_id: named first in the error; empty: the error names only the option.
    :param max_failed_ratio: None lets any share of requests fail.
    """
    task = f"{task_id}: " if task_id else ""
    if max_failed_ratio is not None and not (
        is_finite_number(max_failed_ratio) and 0.0 <= max_failed_ratio <= 1.0
    ):
        raise MistralBatchInputError(
            f"{task}max_failed_ratio must be between 0.0 and 1.0, got {max_failed_ratio!r}"
        )
    if poll_interval is not _NOT_GIVEN and not (
        is_finite_number(poll_interval) and poll_interval > 0
    ):
        raise MistralBatchInputError(f"{task}poll_interval must be positive, got {poll_interval!r}")
    if max_consecutive_errors is not _NOT_GIVEN and not (
        is_whole_number(max_consecutive_errors) and max_consecutive_errors >= 1
    ):
        raise MistralBatchInputError(
            f"{task}max_consecutive_errors must be a whole number >= 1, "
            f"got {max_consecutive_errors!r}"
        )


def is_finite_number(value: Any) -> bool:
    """A real, finite number: not a bool, not a string, not NaN or infinity."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_whole_number(value: Any) -> bool:
    """An int that is not a bool (``True`` must not pass as 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


__all__ = [
    "DEFAULT_MAX_CONSECUTIVE_ERRORS",
    "DEFAULT_MAX_FAILED_RATIO",
    "DEFAULT_MAX_POLL_INTERVAL",
    "DEFAULT_POLL_INTERVAL",
    "check_wait_options",
    "is_finite_number",
    "is_whole_number",
]
