"""Fixtures for hook tests: a connection to the session's emulator and a fast retry policy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from mistral_batch_emulator import RunningEmulator
from tests.helpers import CONN_ID, FAST_RETRIES, SleepRecorder, set_connection


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def hook(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch, sleeps: SleepRecorder
) -> Iterator[MistralBatchHook]:
    set_connection(monkeypatch, emulator, extra={"timeout": 5})
    with MistralBatchHook(CONN_ID, retry_policy=FAST_RETRIES) as made:
        made._sleep = sleeps
        yield made
