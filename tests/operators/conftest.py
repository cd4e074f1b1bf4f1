"""Fixtures for operator and sensor tests: a connection to the emulator, hook cleanup."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_mistral_batch.emulator import RunningEmulator
from tests.helpers import set_connection


@pytest.fixture
def conn(emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> RunningEmulator:
    """``mistral_default`` points at the emulator, with no hook-level retries (fast tests)."""
    set_connection(
        monkeypatch, emulator, conn_id="mistral_default", extra={"timeout": 5, "max_retries": 0}
    )
    return emulator


@pytest.fixture
def closing() -> Iterator[Callable[[Any], Any]]:
    """Register operators whose hooks (and their HTTP clients) are closed after the test."""
    made: list[Any] = []

    def register(op: Any) -> Any:
        made.append(op)
        return op

    yield register
    for op in made:
        hook = op.__dict__.get("hook")
        if hook is not None:
            hook.close()
