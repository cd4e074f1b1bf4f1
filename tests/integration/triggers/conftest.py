"""Fixtures of the trigger tests: the emulator as the connection, triggers' hooks that retry
without waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.triggers.batch import MistralBatchJobTrigger
from mistral_batch_emulator import RunningEmulator
from tests.helpers import CONN_ID, FAST_RETRIES, SleepRecorder, set_connection


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def fast_hook(conn_id: str) -> MistralBatchHook:
    """A hook whose async retries do not wait (what the triggers get in these tests)."""
    made = MistralBatchHook(conn_id, retry_policy=FAST_RETRIES)
    made._asleep = _no_sleep
    return made


@pytest.fixture
def hook(emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[MistralBatchHook]:
    """A sync hook to set jobs up; the trigger's own hooks retry fast."""
    set_connection(monkeypatch, emulator, extra={"timeout": 5})
    monkeypatch.setattr(
        MistralBatchJobTrigger, "_hook", lambda self: fast_hook(self.mistral_conn_id)
    )
    with MistralBatchHook(CONN_ID, retry_policy=FAST_RETRIES) as made:
        made._sleep = SleepRecorder()
        yield made
