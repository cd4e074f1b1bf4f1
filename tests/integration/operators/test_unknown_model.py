"""A model name the API refuses: the hook and the operator report it and leave nothing behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_mistral_batch.exceptions import MistralBatchFatalError, MistralValidationError
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
from airflow_provider_mistral_batch.utils.compat import AirflowFailException
from emulator.tests.support import CHAT, chat_line, jsonl
from mistral_batch_emulator import RunningEmulator
from tests.helpers import CONN_ID, set_connection
from tests.integration.operators.support import make_context

TYPO = "mistral-larg-latest"
TYPO_MESSAGE = f"Invalid model: {TYPO} (unknown model; did you mean mistral-large-latest?)"


@pytest.fixture
def hook(emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[MistralBatchHook]:
    set_connection(monkeypatch, emulator, extra={"timeout": 5, "max_retries": 0})
    with MistralBatchHook(CONN_ID) as made:
        yield made


def test_the_hook_reports_the_typo_naming_the_model(
    emulator: RunningEmulator, hook: MistralBatchHook
) -> None:
    with pytest.raises(MistralValidationError) as raised:
        hook.create_batch_job(endpoint=CHAT, model=TYPO, requests=[chat_line("a")])
    assert raised.value.status_code == 400
    assert str(raised.value) == f"Mistral API error 400 on POST /v1/batch/jobs: {TYPO_MESSAGE}"
    creates = [r for r in emulator.requests if r.method == "POST" and r.path == "/v1/batch/jobs"]
    assert len(creates) == 1, "a refused model is not retried"


def test_the_operator_fails_on_the_typo_without_retries_and_leaves_nothing_behind(
    emulator: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
    hook: MistralBatchHook,
    tmp_path: Path,
) -> None:
    """A refused model fails the same way on every retry: no retries, and the input file
    uploaded for the job is deleted again."""
    set_connection(monkeypatch, emulator, conn_id="mistral_default", extra={"max_retries": 0})
    input_path = tmp_path / "requests.jsonl"
    input_path.write_bytes(jsonl([chat_line("a"), chat_line("b")]))
    op = MistralBatchOperator(
        task_id="batch",
        endpoint=CHAT,
        model=TYPO,
        input_path=str(input_path),
        deferrable=False,
        poll_interval=0.05,
    )
    try:
        with pytest.raises(MistralBatchFatalError) as raised:
            op.execute(make_context())
    finally:
        op.hook.close()
    assert isinstance(raised.value, AirflowFailException)
    assert str(raised.value) == (
        f"Mistral refused to create the batch job: HTTP 400: {TYPO_MESSAGE} (retries would not "
        "help: fix the operator's arguments or the input)"
    )
    assert list(hook.list_batch_jobs()) == []
    assert list(hook.list_files()) == []
    uploads = [r for r in emulator.requests if r.method == "POST" and r.path == "/v1/files"]
    assert len(uploads) == 1
