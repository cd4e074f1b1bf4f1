"""write_results through the hook: a job's output and error files joined with its input, over
HTTP."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_mistral_batch.batch.result_rows import NO_RESULT
from airflow_provider_mistral_batch.batch.results import write_results
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import BatchJobStatus
from mistral_batch_emulator import RunningEmulator
from tests.helpers import wait_for_terminal

pytestmark = pytest.mark.integration

CHAT = "/v1/chat/completions"


def chat_requests(custom_ids: list[str]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (cid, {"max_tokens": 8, "messages": [{"role": "user", "content": f"say {cid}"}]})
        for cid in custom_ids
    ]


def create_job(hook: MistralBatchHook, requests: list[tuple[str, dict[str, Any]]]) -> str:
    inline = [{"custom_id": cid, "body": body} for cid, body in requests]
    return hook.create_batch_job(endpoint=CHAT, model="mistral-small-latest", requests=inline).id


def capture_hook_log(hook: MistralBatchHook, caplog: pytest.LogCaptureFixture) -> None:
    """Point the hook's logger at a stdlib logger that ``caplog`` records."""
    name = "tests.integration.hooks.results"
    caplog.set_level(logging.INFO, logger=name)
    hook._log = logging.getLogger(name)


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def usage_of_output(hook: MistralBatchHook, file_id: str) -> dict[str, int | float]:
    """The usage totals of an output file, read and summed here on their own."""
    totals: dict[str, int | float] = {}
    for raw in hook.iter_file_lines(file_id):
        body = json.loads(raw)["response"]["body"]
        for key, value in body["usage"].items():
            totals[key] = totals.get(key, 0) + value
    return totals


def test_a_job_with_failures_is_joined_in_input_order(
    hook: MistralBatchHook,
    emulator: RunningEmulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids = [f"q{i}" for i in range(40)]
    failing = {"q3", "q17", "q30"}
    emulator.update_config(failing_custom_ids=failing)
    requests = chat_requests(ids)
    job = wait_for_terminal(hook, create_job(hook, requests))
    assert job.status == BatchJobStatus.SUCCESS
    assert job.output_file
    assert job.error_file
    capture_hook_log(hook, caplog)

    # The error file first, and a None id: neither changes the result.
    summary = write_results(
        hook, [job.error_file, None, job.output_file], tmp_path / "r.jsonl", requests=requests
    )

    lines = read_lines(tmp_path / "r.jsonl")
    assert [line["custom_id"] for line in lines] == ids
    assert [line["ok"] for line in lines] == [cid not in failing for cid in ids]
    failed = [line for line in lines if not line["ok"]]
    assert [line["status_code"] for line in failed] == [500, 500, 500]
    assert all("failing_custom_ids" in line["error"] for line in failed)
    assert all(line["response"] is None for line in failed)
    assert all(line["response"]["object"] == "chat.completion" for line in lines if line["ok"])
    assert (summary.lines, summary.succeeded, summary.failed, summary.missing) == (40, 37, 3, 0)
    assert (summary.succeeded, summary.failed) == (job.succeeded_requests, job.failed_requests)
    expected_usage = usage_of_output(hook, job.output_file)
    assert expected_usage["total_tokens"] > 0
    assert summary.usage == expected_usage
    assert (
        f"Wrote 40 result lines to {tmp_path / 'r.jsonl'}: 37 success, 3 error (0 unexpected)"
        in caplog.text
    )
    assert f"total_tokens={expected_usage['total_tokens']}" in caplog.text


def test_an_error_file_of_bare_strings_and_the_requests_included(
    hook: MistralBatchHook, emulator: RunningEmulator, tmp_path: Path
) -> None:
    emulator.update_config(failing_custom_ids={"b"}, error_line_style="string")
    requests = chat_requests(["a", "b", "c"])
    job = wait_for_terminal(hook, create_job(hook, requests))

    write_results(
        hook,
        [job.output_file, job.error_file],
        tmp_path / "r.jsonl",
        requests=requests,
        include_request=True,
    )

    lines = read_lines(tmp_path / "r.jsonl")
    assert [line["request"] for line in lines] == [body for _, body in requests]
    assert lines[1]["error"] == "request b failed (listed in failing_custom_ids)"
    assert [line["ok"] for line in lines] == [True, False, True]


def test_a_cancelled_job_leaves_its_unprocessed_requests_missing(
    hook: MistralBatchHook,
    emulator: RunningEmulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator.update_config(requests_per_second=40.0)
    ids = [f"c{i:03d}" for i in range(300)]
    requests = chat_requests(ids)
    job_id = create_job(hook, requests)
    deadline = time.monotonic() + 30
    while hook.get_batch_job(job_id).completed_requests < 10:
        assert time.monotonic() < deadline, "the job made no progress"
        time.sleep(0.05)
    hook.cancel_batch_job(job_id)
    job = wait_for_terminal(hook, job_id)
    assert job.status == BatchJobStatus.CANCELLED
    assert 10 <= job.completed_requests < len(ids)
    assert job.output_file, "the emulator keeps what completed before the cancel"
    capture_hook_log(hook, caplog)

    summary = write_results(
        hook, [job.output_file, job.error_file], tmp_path / "r.jsonl", requests=requests
    )

    done = job.completed_requests
    lines = read_lines(tmp_path / "r.jsonl")
    assert [line["custom_id"] for line in lines] == ids
    assert all(line["ok"] for line in lines[:done])
    assert {line["error"] for line in lines[done:]} == {NO_RESULT}
    assert summary.missing == len(ids) - done
    assert summary.missing_ids == ids[done : done + 20]
    assert (summary.lines, summary.succeeded, summary.failed) == (300, done, 300 - done)
    assert summary.usage == usage_of_output(hook, job.output_file)
    assert f"{300 - done} requests without a result line" in caplog.text
    assert ", ".join(ids[done : done + 20]) in caplog.text


def test_the_files_of_several_jobs_are_joined_with_the_whole_input(
    hook: MistralBatchHook, tmp_path: Path
) -> None:
    requests = chat_requests([f"s{i}" for i in range(12)])
    jobs = [
        wait_for_terminal(hook, create_job(hook, part)) for part in (requests[6:], requests[:6])
    ]
    file_ids = [f for job in jobs for f in (job.output_file, job.error_file)]

    summary = write_results(hook, file_ids, tmp_path / "r.jsonl", requests=iter(requests))

    assert [line["custom_id"] for line in read_lines(tmp_path / "r.jsonl")] == [
        cid for cid, _ in requests
    ]
    assert (summary.lines, summary.succeeded, summary.missing) == (12, 12, 0)
