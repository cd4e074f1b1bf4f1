"""Choosing which fault, if any, a request gets: scripted faults first, then random ones."""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Iterable

from mistral_batch_emulator.config import Fault


class FaultInjector:
    """Thread-safe source of faults: tests script them from another thread."""

    def __init__(self, faults: Iterable[Fault] = (), seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._scripted: deque[Fault] = deque(faults)
        self._rng = random.Random(seed)

    def set_faults(self, faults: Iterable[Fault]) -> None:
        """Replace the scripted sequence."""
        with self._lock:
            self._scripted = deque(faults)

    def reseed(self, seed: int) -> None:
        """Restart the random faults from ``seed``."""
        with self._lock:
            self._rng = random.Random(seed)

    @property
    def pending(self) -> list[Fault]:
        """The scripted faults not consumed yet."""
        with self._lock:
            return list(self._scripted)

    def pick(self, method: str, path: str, rate: float, pool: list[Fault]) -> Fault | None:
        """The fault this request gets, or None.

        The first scripted fault is consumed when its filters match; otherwise, with
        probability ``rate``, a random fault of ``pool`` whose filters match.
        """
        with self._lock:
            if self._scripted and self._scripted[0].matches(method, path):
                return self._scripted.popleft()
            if rate <= 0.0 or self._rng.random() >= rate:
                return None
            candidates = [fault for fault in pool if fault.matches(method, path)]
            return self._rng.choice(candidates) if candidates else None


__all__ = ["FaultInjector"]
