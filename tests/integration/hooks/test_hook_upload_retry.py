"""Uploads after a failed attempt: sent again, never adopted; a possible copy is said."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
import structlog

from airflow_provider_mistral_batch.exceptions import MistralConnectionError, MistralServerError
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from mistral_batch_emulator import Fault, RecordedRequest, RunningEmulator
from tests.helpers import (
    CONN_ID,
    FAST_RETRIES,
    SleepRecorder,
    set_connection,
    unreachable_hook,
)

pytestmark = pytest.mark.integration

FILES = "/v1/files"
OURS = b'{"custom_id": "1", "body": {"input": ["ours"]}}\n'
THEIRS = b'{"custom_id": "1", "body": {"input": ["hers"]}}\n'  # same size, other bytes


def _calls(emulator: RunningEmulator, method: str, path: str) -> list[RecordedRequest]:
    return [r for r in emulator.requests if r.method == method and r.path == path]


def _files_named(hook: MistralBatchHook, name: str) -> list[str]:
    return sorted(item.id for item in hook.list_files() if item.filename == name)


def _content(hook: MistralBatchHook, file_id: str) -> bytes:
    sink = io.BytesIO()
    hook.download_file(file_id, sink)
    return sink.getvalue()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "requests.jsonl"
    path.write_bytes(OURS)
    return path


@pytest.fixture
def short_timeout_hook(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch, sleeps: SleepRecorder
) -> MistralBatchHook:
    set_connection(monkeypatch, emulator, extra={"timeout": 0.5})
    made = MistralBatchHook(CONN_ID, retry_policy=FAST_RETRIES)
    made._sleep = sleeps
    return made


@pytest.mark.parametrize(
    ("fault", "stored_first"),
    [
        (Fault(kind="drop_after", method="POST", path_prefix=FILES), True),
        (Fault(kind="delay_after", delay_seconds=1.5, method="POST", path_prefix=FILES), True),
        (Fault(kind="drop_before", method="POST", path_prefix=FILES), False),
    ],
    ids=["dropped-after", "timed-out", "dropped-before"],
)
def test_upload_whose_attempt_was_ambiguous_is_sent_again(
    short_timeout_hook: MistralBatchHook,
    emulator: RunningEmulator,
    source: Path,
    fault: Fault,
    stored_first: bool,
) -> None:
    emulator.set_faults([fault])
    emulator.clear_requests()
    with structlog.testing.capture_logs() as logs:
        uploaded = short_timeout_hook.upload_file(source)
    # The log entry of a delayed POST is written when its late response ends.
    time.sleep(fault.delay_seconds)
    assert len(_calls(emulator, "POST", FILES)) == 2, "sent again, no lookup instead"
    assert not _calls(emulator, "GET", FILES), "no listing of files to adopt one"
    named = _files_named(short_timeout_hook, "requests.jsonl")
    assert uploaded.id in named
    # A copy the first attempt stored is left alone: an orphan costs little.
    assert len(named) == (2 if stored_first else 1)
    assert _content(short_timeout_hook, uploaded.id) == OURS
    assert {
        "event": "An earlier attempt to upload requests.jsonl may have stored a copy too; "
        f"file {uploaded.id} is the one used",
        "log_level": "warning",
    } in logs


def test_file_of_someone_else_is_never_read_or_adopted(
    hook: MistralBatchHook, emulator: RunningEmulator, source: Path
) -> None:
    theirs = hook.upload_file(io.BytesIO(OURS), filename="requests.jsonl")
    emulator.set_faults([Fault(kind="status", status_code=503, method="POST", path_prefix=FILES)])
    emulator.clear_requests()
    uploaded = hook.upload_file(source)
    assert uploaded.id != theirs.id, "an identical file uploaded by someone else is not taken"
    assert [r.status_code for r in _calls(emulator, "POST", FILES)] == [503, 200]
    assert not [r for r in emulator.requests if r.method == "GET"], "nothing listed or read"
    assert _files_named(hook, "requests.jsonl") == sorted([theirs.id, uploaded.id])


def test_upload_refused_with_429_is_resent_without_a_lookup(
    hook: MistralBatchHook, emulator: RunningEmulator, source: Path
) -> None:
    emulator.set_faults(
        [Fault(kind="status", status_code=429, retry_after="0", method="POST", path_prefix=FILES)]
    )
    emulator.clear_requests()
    uploaded = hook.upload_file(source)
    assert [r.status_code for r in _calls(emulator, "POST", FILES)] == [429, 200]
    assert not _calls(emulator, "GET", FILES), "a 429 proves nothing was stored: no lookup"
    assert _files_named(hook, "requests.jsonl") == [uploaded.id]


def test_upload_never_connected_is_retried_without_a_lookup(
    monkeypatch: pytest.MonkeyPatch, emulator: RunningEmulator, source: Path
) -> None:
    hook = unreachable_hook(monkeypatch, max_attempts=3)

    with pytest.raises(MistralConnectionError) as caught:
        hook.upload_file(source)
    assert "POST /v1/files" in str(caught.value)
    assert "may or may not" not in str(caught.value)


def test_ambiguous_failures_to_the_end_say_the_file_may_exist(
    hook: MistralBatchHook, emulator: RunningEmulator, source: Path
) -> None:
    drop = Fault(kind="drop_before", method="POST", path_prefix=FILES)
    emulator.set_faults([drop] * FAST_RETRIES.max_attempts)
    emulator.clear_requests()
    with pytest.raises(MistralConnectionError) as caught:
        hook.upload_file(source)
    message = str(caught.value)
    assert "may or may not have been uploaded" in message
    assert "'requests.jsonl'" in message
    assert emulator.api_key not in message
    assert len(_calls(emulator, "POST", FILES)) == FAST_RETRIES.max_attempts
    assert not _calls(emulator, "GET", FILES)
    assert _files_named(hook, "requests.jsonl") == []


def test_final_5xx_after_ambiguous_attempts_says_the_file_may_exist(
    hook: MistralBatchHook, emulator: RunningEmulator, source: Path
) -> None:
    failing = Fault(kind="status", status_code=503, method="POST", path_prefix=FILES)
    emulator.set_faults([failing] * FAST_RETRIES.max_attempts)
    with pytest.raises(MistralServerError) as caught:
        hook.upload_file(source)
    assert caught.value.status_code == 503
    assert str(caught.value).endswith(
        "The file may or may not have been uploaded: look for a file named 'requests.jsonl' "
        "(purpose batch) before uploading it again."
    )


class _OneWayStream(io.RawIOBase):
    """A readable stream that cannot seek (like a pipe)."""

    def __init__(self, payload: bytes) -> None:
        self._inner = io.BytesIO(payload)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        return self._inner.readinto(buffer)


def test_non_rewindable_upload_is_sent_once(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    emulator.set_faults([Fault(kind="drop_after", method="POST", path_prefix=FILES)])
    emulator.clear_requests()
    with pytest.raises(MistralConnectionError, match="may or may not have been uploaded"):
        hook.upload_file(io.BufferedReader(_OneWayStream(OURS)), filename="pipe.jsonl")
    assert len(_calls(emulator, "POST", FILES)) == 1
    assert not _calls(emulator, "GET", FILES)
