"""Fixtures of the operator and sensor tests: a connection to the emulator, hooks closed after."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_mistral_batch.batch.submit_options import SubmitOptions
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
from mistral_batch_emulator import RunningEmulator
from tests.helpers import set_connection
from tests.integration.operators.support import CHAT, MODEL, OperatorLog, chat_requests


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


@pytest.fixture
def hook(conn: RunningEmulator) -> Iterator[MistralBatchHook]:
    """A hook on ``mistral_default`` to set up and inspect jobs."""
    with MistralBatchHook("mistral_default") as made:
        yield made


@pytest.fixture
def make_op(
    conn: RunningEmulator, closing: Callable[[Any], Any]
) -> Callable[..., MistralBatchOperator]:
    """Build a blocking MistralBatchOperator with fast polling; three chat requests by default.

    The operator's class attributes (``max_consecutive_errors``, ``max_requests_per_job``,
    ``max_poll_interval``, ``duplicate_check_seconds``) given as keywords are set on the
    instance.
    """

    def make(**kwargs: Any) -> MistralBatchOperator:
        attributes = {name: kwargs.pop(name) for name in CLASS_ATTRIBUTES if name in kwargs}
        kwargs.setdefault("task_id", "batch")
        kwargs.setdefault("endpoint", CHAT)
        kwargs.setdefault("model", MODEL)
        kwargs.setdefault("poll_interval", 0.05)
        kwargs.setdefault("deferrable", False)
        if not {"input_files", "input_path", "requests"} & set(kwargs):
            kwargs["requests"] = chat_requests(3)
        op = closing(MistralBatchOperator(**kwargs))
        for name, value in attributes.items():
            setattr(op, name, value)
        return op

    return make


#: The operator's settings that are class attributes, not arguments.
CLASS_ATTRIBUTES = (
    "max_consecutive_errors",
    "max_requests_per_job",
    "max_poll_interval",
    "duplicate_check_seconds",
)


@pytest.fixture
def wait_seconds(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Make the operator's wait give up after the seconds given instead of its timeout plus
    one hour (whole hours: too long for a test)."""

    def set_wait(seconds: float) -> None:
        monkeypatch.setattr(SubmitOptions, "wait_seconds", property(lambda _: seconds))

    return set_wait


@pytest.fixture
def queued_job(conn: RunningEmulator, hook: MistralBatchHook) -> str:
    """A job that stays QUEUED for the whole test."""
    conn.update_config(queue_seconds=60)
    return hook.create_batch_job(endpoint=CHAT, requests=chat_requests(2), model=MODEL).id


@pytest.fixture
def capture_log(caplog: pytest.LogCaptureFixture) -> Callable[[Any], OperatorLog]:
    """Point an operator's logger at a stdlib logger that ``caplog`` records; read it back."""

    def capture(op: Any) -> OperatorLog:
        name = f"tests.integration.operators.{op.task_id}"
        caplog.set_level(logging.DEBUG, logger=name)
        op._cached_logger = logging.getLogger(name)
        return OperatorLog(caplog, name)

    return capture
