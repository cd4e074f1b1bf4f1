"""How many times each flaky request has failed so far (``flaky_custom_ids``)."""

from __future__ import annotations

import threading


class FlakyRequests:
    """Counts the failures of each flaky custom_id across jobs; thread-safe (tests reset it
    from another thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}

    def fail(self, custom_id: str, times: int) -> int | None:
        """Whether this answer of ``custom_id`` fails: its failure's number (1 for the first)
        while fewer than ``times`` failed, else None (it succeeds)."""
        with self._lock:
            failed = self._failures.get(custom_id, 0)
            if failed >= times:
                return None
            self._failures[custom_id] = failed + 1
            return failed + 1

    def reset(self) -> None:
        """Forget every count: each flaky request fails its N times again."""
        with self._lock:
            self._failures.clear()


__all__ = ["FlakyRequests"]
