"""Uploads after an ambiguous failure: adopt the earlier attempt's file, never a look-alike."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog

from airflow_provider_mistral_batch.emulator import Fault, RecordedRequest, RunningEmulator
from airflow_provider_mistral_batch.exceptions import MistralConnectionError
from airflow_provider_mistral_batch.hooks.file_transfer import UploadSource
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.hooks.upload_lookup import upload_candidates
from airflow_provider_mistral_batch.models import FileObject
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
    "fault",
    [
        Fault(kind="drop_after", method="POST", path_prefix=FILES),
        Fault(kind="delay_after", delay_seconds=1.5, method="POST", path_prefix=FILES),
    ],
    ids=["dropped", "timed-out"],
)
def test_upload_whose_response_was_lost_leaves_one_file(
    short_timeout_hook: MistralBatchHook,
    emulator: RunningEmulator,
    source: Path,
    fault: Fault,
) -> None:
    emulator.set_faults([fault])
    emulator.clear_requests()
    with structlog.testing.capture_logs() as logs:
        uploaded = short_timeout_hook.upload_file(source)
    assert _files_named(short_timeout_hook, "requests.jsonl") == [uploaded.id]
    # The log entry of a delayed POST is written when its late response ends.
    time.sleep(fault.delay_seconds)
    assert len(_calls(emulator, "POST", FILES)) == 1, "the lookup found the file: no second POST"
    assert _content(short_timeout_hook, uploaded.id) == OURS
    assert {
        "event": f"An earlier attempt uploaded requests.jsonl as file {uploaded.id}; "
        "not uploading it again",
        "log_level": "info",
    } in logs


def test_look_alike_of_someone_else_is_not_adopted(
    hook: MistralBatchHook, emulator: RunningEmulator, source: Path
) -> None:
    theirs = hook.upload_file(io.BytesIO(THEIRS), filename="requests.jsonl")
    emulator.set_faults([Fault(kind="status", status_code=503, method="POST", path_prefix=FILES)])
    emulator.clear_requests()
    uploaded = hook.upload_file(source)
    assert uploaded.id != theirs.id
    assert _files_named(hook, "requests.jsonl") == sorted([theirs.id, uploaded.id])
    assert len(_calls(emulator, "POST", FILES)) == 2, "nothing identical was found: sent again"
    assert _calls(emulator, "GET", f"{FILES}/{theirs.id}/content"), "the look-alike was checked"
    assert _content(hook, theirs.id) == THEIRS, "the other file is untouched"
    assert _content(hook, uploaded.id) == OURS


def test_earlier_attempt_is_told_apart_from_an_older_look_alike(
    hook: MistralBatchHook, emulator: RunningEmulator, source: Path
) -> None:
    theirs = hook.upload_file(io.BytesIO(THEIRS), filename="requests.jsonl")
    emulator.set_faults([Fault(kind="drop_after", method="POST", path_prefix=FILES)])
    emulator.clear_requests()
    uploaded = hook.upload_file(source)
    assert len(_calls(emulator, "POST", FILES)) == 1
    assert uploaded.id != theirs.id
    assert _files_named(hook, "requests.jsonl") == sorted([theirs.id, uploaded.id])
    assert _content(hook, uploaded.id) == OURS


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

    def no_lookup(*args: object) -> None:
        raise AssertionError("a refused connection sent nothing: no lookup")

    monkeypatch.setattr(hook, "_earlier_upload", no_lookup)
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
    assert len(_calls(emulator, "GET", FILES)) == FAST_RETRIES.max_attempts - 1
    assert _files_named(hook, "requests.jsonl") == []


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


def _listed(name: str, size: int, created: datetime, purpose: str = "batch") -> FileObject:
    return FileObject(
        id=f"{name}-{size}-{int(created.timestamp())}-{purpose}",
        bytes=size,
        created_at=int(created.timestamp()),
        filename=name,
        purpose=purpose,
        sample_type="batch_request",
        source="upload",
    )


def test_candidates_keep_name_purpose_size_and_window_oldest_first(source: Path) -> None:
    start = datetime.now(UTC)
    size = len(OURS)
    newer = _listed("requests.jsonl", size, start + timedelta(seconds=5))
    older = _listed("requests.jsonl", size, start)
    listed = [
        newer,
        older,
        _listed("requests.jsonl", size, start - timedelta(hours=1)),
        _listed("requests.jsonl", size + 1, start),
        _listed("requests.jsonl.bak", size, start),
        _listed("requests.jsonl", size, start, purpose="ocr"),
    ]
    found = upload_candidates(listed, UploadSource(source), "batch", start - timedelta(minutes=1))
    assert found == [older, newer]
