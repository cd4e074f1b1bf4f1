"""Batch API through the hook, against the emulator over real loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from airflow_provider_mistral_batch.exceptions import (
    MistralBatchInputError,
    MistralNotFoundError,
    MistralValidationError,
)
from airflow_provider_mistral_batch.hooks.http.clients import close_shared_async_clients
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import IDEMPOTENCY_KEY_METADATA, BatchJobStatus
from mistral_batch_emulator import RunningEmulator
from tests.helpers import FAST_RETRIES, set_connection, wait_for_terminal, write_jsonl

pytestmark = pytest.mark.integration


def _upload(hook: MistralBatchHook, tmp_path: Path, custom_ids: list[str]) -> str:
    source = tmp_path / f"in-{uuid.uuid4().hex[:6]}.jsonl"
    write_jsonl(source, custom_ids)
    return hook.upload_file(source).id


def test_job_from_file_runs_to_success_with_every_custom_id(
    hook: MistralBatchHook, tmp_path: Path
) -> None:
    custom_ids = [f"r{i}" for i in range(30)]
    file_id = _upload(hook, tmp_path, custom_ids)
    job = hook.create_batch_job(
        endpoint="/v1/chat/completions",
        input_files=[file_id],
        model="mistral-small-latest",
        metadata={"team": "data"},
    )
    assert job.status == BatchJobStatus.QUEUED
    assert job.input_files == [file_id]
    assert job.metadata is not None
    assert job.metadata["team"] == "data"
    assert IDEMPOTENCY_KEY_METADATA in job.metadata

    done = wait_for_terminal(hook, job.id)
    assert done.status == BatchJobStatus.SUCCESS
    assert (done.total_requests, done.succeeded_requests, done.failed_requests) == (30, 30, 0)
    assert done.output_file is not None
    lines = [json.loads(line) for line in hook.iter_file_lines(done.output_file)]
    assert sorted(line["custom_id"] for line in lines) == sorted(custom_ids)
    assert all(line["response"]["status_code"] == 200 for line in lines)


def test_inline_requests_and_inline_outputs(hook: MistralBatchHook) -> None:
    requests = [{"custom_id": f"e{i}", "body": {"input": [f"text {i}"]}} for i in range(4)]
    job = hook.create_batch_job(endpoint="/v1/embeddings", requests=requests, model="mistral-embed")
    done = wait_for_terminal(hook, job.id)
    assert done.status == BatchJobStatus.SUCCESS
    with_outputs = hook.get_batch_job(job.id, inline=True)
    assert with_outputs.outputs is not None
    assert sorted(o["custom_id"] for o in with_outputs.outputs) == ["e0", "e1", "e2", "e3"]
    assert hook.get_batch_job(job.id).outputs is None


def test_failing_requests_go_to_the_error_file(
    hook: MistralBatchHook, emulator: RunningEmulator, tmp_path: Path
) -> None:
    emulator.update_config(failing_custom_ids={"bad-1"})
    file_id = _upload(hook, tmp_path, ["ok-1", "bad-1", "ok-2"])
    job = hook.create_batch_job(
        endpoint="/v1/chat/completions", input_files=[file_id], model="mistral-small-latest"
    )
    done = wait_for_terminal(hook, job.id)
    assert done.status == BatchJobStatus.SUCCESS
    assert (done.succeeded_requests, done.failed_requests) == (2, 1)
    assert done.error_file is not None
    errors = [json.loads(line) for line in hook.iter_file_lines(done.error_file)]
    assert [e["custom_id"] for e in errors] == ["bad-1"]


def test_list_jobs_with_every_filter_and_pagination(hook: MistralBatchHook, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:12]
    before = datetime.now(UTC) - timedelta(seconds=5)
    created = [
        hook.create_batch_job(
            endpoint="/v1/embeddings",
            requests=[{"custom_id": "1", "body": {"input": ["x"]}}],
            model="mistral-embed" if i % 2 else "codestral-embed",
            metadata={"suite": tag, "index": str(i)},
        )
        for i in range(5)
    ]
    ids = [job.id for job in created]
    listed = [job.id for job in hook.list_batch_jobs(metadata={"suite": tag}, page_size=2)]
    assert sorted(listed) == sorted(ids)

    oldest_first = [
        job.id for job in hook.list_batch_jobs(metadata={"suite": tag}, order_by="created")
    ]
    assert oldest_first == list(reversed(listed))

    embed_only = {
        job.id for job in hook.list_batch_jobs(metadata={"suite": tag}, model="mistral-embed")
    }
    assert embed_only == {ids[1], ids[3]}

    assert {job.id for job in hook.list_batch_jobs(created_after=before)} >= set(ids)
    assert not {
        job.id for job in hook.list_batch_jobs(created_after=datetime.now(UTC) + timedelta(hours=1))
    }

    for job_id in ids:
        wait_for_terminal(hook, job_id)
    finished = {
        job.id
        for job in hook.list_batch_jobs(
            metadata={"suite": tag}, status=[BatchJobStatus.SUCCESS, "FAILED"]
        )
    }
    assert finished == set(ids)
    assert not list(hook.list_batch_jobs(metadata={"suite": tag}, status=["QUEUED", "RUNNING"]))


def test_list_jobs_created_by_me_and_agent_id(
    hook: MistralBatchHook, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With no api_key set the emulator accepts any token and takes each one as its own user.
    emulator.update_config(api_key=None)
    set_connection(monkeypatch, emulator, conn_id="mistral_other_user", api_key="other-user-key")
    one = [{"custom_id": "1", "body": {"input": ["x"]}}]
    with MistralBatchHook("mistral_other_user", retry_policy=FAST_RETRIES) as other:
        mine = hook.create_batch_job(endpoint="/v1/embeddings", requests=one, model="mistral-embed")
        theirs = other.create_batch_job(endpoint="/v1/embeddings", requests=one, agent_id="ag-7")
        assert theirs.agent_id == "ag-7"

        assert [job.id for job in hook.list_batch_jobs(created_by_me=True)] == [mine.id]
        assert [job.id for job in other.list_batch_jobs(created_by_me=True)] == [theirs.id]
        everyone = [theirs.id, mine.id]
        assert [job.id for job in hook.list_batch_jobs(created_by_me=False)] == everyone
        assert [job.id for job in hook.list_batch_jobs()] == everyone

        assert [job.id for job in hook.list_batch_jobs(agent_id="ag-7")] == [theirs.id]
        assert not list(hook.list_batch_jobs(agent_id="ag-7", created_by_me=True))
        assert not list(hook.list_batch_jobs(agent_id="ag-8"))

        async def mine_async() -> list[str]:
            try:
                return [job.id async for job in other.alist_batch_jobs(created_by_me=True)]
            finally:
                await close_shared_async_clients()

        assert asyncio.run(mine_async()) == [theirs.id]
        assert wait_for_terminal(other, theirs.id).status == BatchJobStatus.SUCCESS


def test_cancel_goes_through_cancellation_requested(
    hook: MistralBatchHook, emulator: RunningEmulator, tmp_path: Path
) -> None:
    emulator.update_config(requests_per_second=2.0)
    file_id = _upload(hook, tmp_path, [str(i) for i in range(200)])
    job = hook.create_batch_job(endpoint="/v1/chat/completions", input_files=[file_id])
    cancelled = hook.cancel_batch_job(job.id)
    assert cancelled.status in {BatchJobStatus.CANCELLATION_REQUESTED, BatchJobStatus.CANCELLED}
    done = wait_for_terminal(hook, job.id)
    assert done.status == BatchJobStatus.CANCELLED
    assert done.completed_requests < 200


def test_delete_job_then_404_names_the_job(hook: MistralBatchHook) -> None:
    job = hook.create_batch_job(
        endpoint="/v1/embeddings", requests=[{"custom_id": "1", "body": {"input": ["x"]}}]
    )
    deleted = hook.delete_batch_job(job.id)
    assert (deleted.id, deleted.deleted) == (job.id, True)
    with pytest.raises(MistralNotFoundError, match=f"batch job '{job.id}' was not found"):
        hook.get_batch_job(job.id)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"input_files": ["f"], "timeout_hours": 0}, "timeout_hours"),
        ({"input_files": ["f"], "timeout_hours": 200}, "timeout_hours"),
        ({"input_files": ["f"], "metadata": {"k" * 40: "v"}}, "at most 32 characters"),
        ({}, "exactly one of input_files"),
        ({"input_files": ["f"], "requests": [{"body": {}}]}, "exactly one of input_files"),
        ({"requests": [{"custom_id": "1"}]}, "requests.0.body: Field required"),
        (
            {"input_files": ["f"], "agent_idd": "a"},
            r"unknown fields of the create request: \['agent_idd'\]",
        ),
    ],
)
def test_invalid_create_is_refused_before_any_request(
    hook: MistralBatchHook, emulator: RunningEmulator, kwargs: dict[str, object], fragment: str
) -> None:
    emulator.clear_requests()
    with pytest.raises(MistralBatchInputError, match=fragment):
        hook.create_batch_job(endpoint="/v1/chat/completions", **kwargs)  # type: ignore[arg-type]
    assert emulator.requests == []


def test_server_side_validation_error_is_mapped(hook: MistralBatchHook) -> None:
    with pytest.raises(MistralValidationError) as caught:
        hook.create_batch_job(endpoint="/v1/not/an/endpoint", input_files=["f"])
    assert caught.value.status_code == 422
    assert "endpoint" in str(caught.value)


def test_a_misspelled_list_filter_is_refused_not_ignored(hook: MistralBatchHook) -> None:
    with pytest.raises(
        TypeError, match=r"unknown filter\(s\) for listing batch jobs: \['stauts'\]"
    ):
        list(hook.list_batch_jobs(stauts=["RUNNING"]))  # type: ignore[call-arg]
    with pytest.raises(TypeError, match=r"listing files: \['purpse'\]"):
        list(hook.list_files(purpse="batch"))  # type: ignore[call-arg]


def test_order_by_none_means_the_default_order(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    emulator.clear_requests()
    list(hook.list_batch_jobs(order_by=None))  # type: ignore[typeddict-item]
    listing = [r for r in emulator.requests if r.path == "/v1/batch/jobs"]
    assert listing
    assert "order_by=-created" in listing[0].query
