"""The common-ai adapter against the emulator over loopback HTTP: what it sends, reads and
finds. tests/integration/dags/test_common_ai.py runs common-ai's operator on it."""

from __future__ import annotations

import io
import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from airflow.providers.common.ai.batch.base import BatchRequest, BatchState
from airflow.providers.common.ai.batch.output_schema import build_output_spec
from pydantic import BaseModel

from airflow_provider_mistral_batch.batch.output_spec import output_spec
from airflow_provider_mistral_batch.common_ai.adapter import MistralBatchAdapter
from airflow_provider_mistral_batch.exceptions import MistralAPIError
from mistral_batch_emulator import Fault, RunningEmulator

pytestmark = pytest.mark.integration

KEY = "0123456789abcdef"
FINGERPRINT = "f" * 64


class Sentiment(BaseModel):
    label: str


@pytest.fixture
def adapter(emulator: RunningEmulator) -> Iterator[MistralBatchAdapter]:
    # As common-ai builds it from a pydanticai connection whose host ends with /v1.
    made = MistralBatchAdapter(api_key=emulator.api_key, base_url=f"{emulator.base_url}/v1")
    made.hook._sleep = lambda _: None
    yield made
    made.close()


def _submit(
    adapter: MistralBatchAdapter,
    requests: list[BatchRequest],
    *,
    output_type: type = str,
    fingerprint: str = FINGERPRINT,
) -> str:
    return adapter.submit(
        requests,
        model="mistral-small-latest",
        idempotency_key=KEY,
        input_fingerprint=fingerprint,
        output_spec=build_output_spec(output_type),
        system_prompt="be brief",
        max_tokens=64,
        request_params={"temperature": 0.2},
        completion_window="48h",
    ).batch_id


def _wait(adapter: MistralBatchAdapter, batch_id: str) -> BatchState:
    deadline = time.monotonic() + 30
    while (state := adapter.get_batch(batch_id)).status == "in_progress":
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    return state


def test_a_batch_goes_up_as_a_file_and_comes_back_as_results(
    adapter: MistralBatchAdapter,
) -> None:
    requests: list[BatchRequest] = [
        {"prompt": "one"},
        {"prompt": "two", "model": "mistral:mistral-large-latest"},
        {"prompt": "three", "model": "mistral:no-such-model"},
    ]
    submitted = adapter.submit(
        requests,
        model="mistral-small-latest",
        idempotency_key=KEY,
        input_fingerprint=FINGERPRINT,
        output_spec=build_output_spec(str),
        system_prompt="be brief",
        max_tokens=64,
        request_params={"temperature": 0.2},
        completion_window="48h",
    )
    job = adapter.hook.get_batch_job(submitted.batch_id)
    assert job.input_files == [submitted.provider_input_ref]
    assert job.model is None  # each body names its own
    assert job.metadata is not None
    assert job.metadata["idempotency_key"] == KEY
    assert job.metadata["input_fingerprint"] == FINGERPRINT[:16]
    assert "airflow_dag_id" not in job.metadata  # outside a task: no task to name
    sent = [json.loads(line) for line in adapter.hook.iter_file_lines(job.input_files[0])]
    assert [line["custom_id"] for line in sent] == [f"{KEY}-0", f"{KEY}-1", f"{KEY}-2"]
    assert sent[0]["body"] == {
        "temperature": 0.2,
        "model": "mistral-small-latest",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "one"},
        ],
        "max_tokens": 64,
    }
    assert sent[1]["body"]["model"] == "mistral-large-latest"

    state = _wait(adapter, submitted.batch_id)
    assert state.status == "completed"
    assert state.counts == {"succeeded": 2, "errored": 1, "expired": 0, "cancelled": 0}
    items = sorted(adapter.iter_results(submitted.batch_id), key=lambda item: item.index)
    assert [(item.index, item.provider_status) for item in items] == [
        (0, "success"),
        (1, "success"),
        (2, "errored"),
    ]
    assert items[1].model == "mistral-large-latest"
    assert items[0].usage is not None
    assert items[0].usage["output_tokens"] > 0
    assert items[0].finish_reason in ("stop", "length")
    text = adapter.extract_output(items[0], build_output_spec(str))
    assert text.kind == "text"
    assert text.text
    assert items[2].error is not None
    assert items[2].error["stage"] == "provider"
    assert "no-such-model" in items[2].error["message"]


def test_a_typed_batch_asks_for_the_schema_of_the_providers_operator(
    adapter: MistralBatchAdapter,
) -> None:
    batch_id = _submit(adapter, [{"prompt": "great"}], output_type=Sentiment)
    job = adapter.hook.get_batch_job(batch_id)
    (line,) = [json.loads(line) for line in adapter.hook.iter_file_lines(job.input_files[0])]
    assert line["body"]["response_format"] == output_spec(Sentiment).response_format()


def test_an_unknown_job_is_a_404_at_once(adapter: MistralBatchAdapter) -> None:
    unknown = str(uuid.uuid4())
    with pytest.raises(MistralAPIError) as raised:
        adapter.get_batch(unknown)
    assert getattr(raised.value, "status_code", None) == 404  # common-ai: "gone, submit anew"
    with pytest.raises(MistralAPIError):
        adapter.iter_results(unknown)  # at the call, before any iteration


def test_a_cancelled_job_counts_what_never_ran_as_cancelled(
    adapter: MistralBatchAdapter, emulator: RunningEmulator
) -> None:
    emulator.update_config(requests_per_second=5.0)
    batch_id = _submit(adapter, [{"prompt": f"p{i}"} for i in range(20)])
    deadline = time.monotonic() + 10
    while adapter.hook.get_batch_job(batch_id).completed_requests < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    adapter.cancel_batch(batch_id)
    state = _wait(adapter, batch_id)
    assert state.status == "cancelled"
    assert state.counts is not None
    succeeded = state.counts["succeeded"]
    assert 2 <= succeeded < 20
    assert state.counts["cancelled"] == 20 - succeeded
    # What completed before the cancel is still there to land.
    items = list(adapter.iter_results(batch_id))
    assert len(items) == succeeded
    assert {item.provider_status for item in items} == {"success"}


def test_the_orphan_found_is_the_newest_job_of_this_key_and_input(
    adapter: MistralBatchAdapter, emulator: RunningEmulator
) -> None:
    intent_at = datetime.now(UTC).isoformat()
    first = _submit(adapter, [{"prompt": "a"}])
    time.sleep(1.1)  # created_at is whole seconds
    second = _submit(adapter, [{"prompt": "a"}])
    other_input = _submit(adapter, [{"prompt": "b"}], fingerprint="e" * 64)
    assert first != second
    assert adapter.find_orphaned_batch(KEY, FINGERPRINT, intent_at) == second
    assert adapter.find_orphaned_batch(KEY, "e" * 64, intent_at) == other_input
    assert adapter.find_orphaned_batch(KEY, "d" * 64, intent_at) is None
    assert adapter.find_orphaned_batch("fedcba9876543210", FINGERPRINT, intent_at) is None
    # Five minutes of slack for the clocks, no more.
    later = (datetime.now(UTC) + timedelta(minutes=4)).isoformat()
    assert adapter.find_orphaned_batch(KEY, FINGERPRINT, later) == second
    much_later = (datetime.now(UTC) + timedelta(minutes=6)).isoformat()
    assert adapter.find_orphaned_batch(KEY, FINGERPRINT, much_later) is None
    assert adapter.find_orphaned_batch(KEY, FINGERPRINT, "") == second
    # The server filters: one request, whose query names the key, fingerprint and time.
    emulator.clear_requests()
    adapter.find_orphaned_batch(KEY, FINGERPRINT, intent_at)
    (listing,) = emulator.requests
    assert f"idempotency_key={KEY}" in listing.query
    assert f"input_fingerprint={FINGERPRINT[:16]}" in listing.query
    assert "created_after=" in listing.query


def test_a_failed_orphan_lookup_raises(
    adapter: MistralBatchAdapter, emulator: RunningEmulator
) -> None:
    emulator.set_faults([Fault(kind="status", status_code=401, path="/v1/batch/jobs")])
    with pytest.raises(MistralAPIError):
        adapter.find_orphaned_batch(KEY, FINGERPRINT, datetime.now(UTC).isoformat())


def test_a_result_line_not_utf8_is_skipped_and_the_lines_after_it_land(
    adapter: MistralBatchAdapter, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    batch_id = _submit(adapter, [{"prompt": f"p{i}"} for i in range(3)])
    assert _wait(adapter, batch_id).status == "completed"
    job = adapter.hook.get_batch_job(batch_id)
    assert job.output_file is not None
    lines = sorted(
        adapter.hook.iter_file_lines(job.output_file),
        key=lambda line: json.loads(line)["custom_id"],
    )
    # No server sends such lines on request: the job's output with one line broken and one
    # echoing the key, uploaded and read as the job's output through the real hook and HTTP.
    key = adapter.hook.settings.api_key
    data = b"\n".join(
        [
            lines[0].encode(),
            f'{{"custom_id": "{KEY}-1", "answer": "'.encode() + b'\xff"}',
            f"an echo of {key}".encode(),
            lines[2].encode(),
        ]
    )
    uploaded = adapter.hook.upload_file(io.BytesIO(data), filename="tampered.jsonl")
    monkeypatch.setattr(
        adapter.hook,
        "get_batch_job",
        lambda _: job.model_copy(update={"output_file": uploaded.id, "error_file": None}),
    )
    with caplog.at_level(logging.WARNING):
        items = list(adapter.iter_results(batch_id))
    assert [(item.index, item.provider_status) for item in items] == [
        (0, "success"),
        (2, "success"),
    ]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert f"file {uploaded.id} line 2 is not UTF-8 text" in warnings[0]
    assert f"file {uploaded.id} line 3 is not a batch result line" in warnings[1]
    assert key not in caplog.text
