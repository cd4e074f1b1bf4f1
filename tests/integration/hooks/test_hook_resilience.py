"""Retries, Retry-After, ambiguous creates and auth errors, with faults injected by the emulator."""

from __future__ import annotations

import logging
import time
import uuid

import pytest
import structlog

from airflow_provider_mistral_batch.exceptions import (
    MistralAPIError,
    MistralAuthenticationError,
    MistralConnectionError,
    MistralServerError,
)
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import IDEMPOTENCY_KEY_METADATA, BatchJob, BatchJobStatus
from mistral_batch_emulator import Fault, RunningEmulator
from tests.helpers import (
    CONN_ID,
    FAST_RETRIES,
    SleepRecorder,
    set_connection,
    unreachable_hook,
)

pytestmark = pytest.mark.integration

JOBS = "/v1/batch/jobs"
ONE_REQUEST = [{"custom_id": "1", "body": {"input": ["x"]}}]


def _new_job(hook: MistralBatchHook) -> str:
    return hook.create_batch_job(endpoint="/v1/embeddings", requests=ONE_REQUEST).id


def _calls(emulator: RunningEmulator, method: str, path: str) -> list[object]:
    return [r for r in emulator.requests if r.method == method and r.path == path]


def test_429_then_503_then_success_honours_retry_after(
    hook: MistralBatchHook, emulator: RunningEmulator, sleeps: SleepRecorder
) -> None:
    job_id = _new_job(hook)
    path = f"{JOBS}/{job_id}"
    emulator.set_faults(
        [
            Fault(kind="status", status_code=429, retry_after="2", method="GET", path_prefix=path),
            Fault(kind="status", status_code=503, method="GET", path_prefix=path),
        ]
    )
    emulator.clear_requests()
    job = hook.get_batch_job(job_id)
    assert job.id == job_id
    assert [r.status_code for r in _calls(emulator, "GET", path)] == [429, 503, 200]
    assert 2.0 <= sleeps.waits[0] <= 2.2, "the server's Retry-After must set the first wait"
    assert 0 < sleeps.waits[1] <= FAST_RETRIES.max_wait


def test_retry_after_as_http_date(
    hook: MistralBatchHook, emulator: RunningEmulator, sleeps: SleepRecorder
) -> None:
    emulator.set_faults(
        [
            Fault(
                kind="status",
                status_code=429,
                retry_after="Wed, 21 Oct 2015 07:28:00 GMT",
                method="GET",
                path_prefix="/v1/files",
            )
        ]
    )
    assert list(hook.list_files(page_size=1)) is not None
    assert sleeps.waits == [0.0], "a date in the past means: retry at once"


def test_retries_run_out_with_the_last_error(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    emulator.set_faults([Fault(kind="status", status_code=503, method="GET", path_prefix=JOBS)] * 6)
    emulator.clear_requests()
    with pytest.raises(MistralServerError) as caught:
        hook.get_batch_job("whatever")
    assert caught.value.status_code == 503
    assert len(_calls(emulator, "GET", f"{JOBS}/whatever")) == FAST_RETRIES.max_attempts


def test_dropped_connection_is_retried(hook: MistralBatchHook, emulator: RunningEmulator) -> None:
    job_id = _new_job(hook)
    emulator.set_faults([Fault(kind="drop_before", method="GET", path_prefix=f"{JOBS}/{job_id}")])
    assert hook.get_batch_job(job_id).id == job_id


def test_connection_errors_end_in_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, emulator: RunningEmulator
) -> None:
    hook = unreachable_hook(monkeypatch, max_attempts=2)
    with pytest.raises(
        MistralConnectionError, match=r"GET /v1/batch/jobs/j1 at http://127\.0\.0\.1:9"
    ):
        hook.get_batch_job("j1")


def _jobs_with_key(hook: MistralBatchHook, token: str) -> list[str]:
    return [
        job.id
        for job in hook.list_batch_jobs()
        if (job.metadata or {}).get(IDEMPOTENCY_KEY_METADATA) == token
    ]


def test_create_dropped_after_the_server_acted_leaves_one_job(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    token = uuid.uuid4().hex
    emulator.set_faults([Fault(kind="drop_after", method="POST", path_prefix=JOBS)])
    emulator.clear_requests()
    job = hook.create_batch_job(
        endpoint="/v1/embeddings", requests=ONE_REQUEST, idempotency_key=token
    )
    assert _jobs_with_key(hook, token) == [job.id]
    assert len(_calls(emulator, "POST", JOBS)) == 1, "the lookup found the job: no second POST"


def test_create_that_timed_out_after_the_server_acted_leaves_one_job(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch, sleeps: SleepRecorder
) -> None:
    set_connection(monkeypatch, emulator, extra={"timeout": 0.5})
    hook = MistralBatchHook(CONN_ID, retry_policy=FAST_RETRIES)
    hook._sleep = sleeps
    token = uuid.uuid4().hex
    emulator.set_faults(
        [Fault(kind="delay_after", delay_seconds=1.5, method="POST", path_prefix=JOBS)]
    )
    job = hook.create_batch_job(
        endpoint="/v1/embeddings", requests=ONE_REQUEST, idempotency_key=token
    )
    assert _jobs_with_key(hook, token) == [job.id]


def test_create_dropped_before_the_server_acted_is_sent_again(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    token = uuid.uuid4().hex
    emulator.set_faults([Fault(kind="drop_before", method="POST", path_prefix=JOBS)])
    emulator.clear_requests()
    job = hook.create_batch_job(
        endpoint="/v1/embeddings", requests=ONE_REQUEST, idempotency_key=token
    )
    assert _jobs_with_key(hook, token) == [job.id]
    assert len(_calls(emulator, "POST", JOBS)) == 2


def test_create_refused_with_429_is_resent_without_a_lookup(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    emulator.set_faults(
        [Fault(kind="status", status_code=429, retry_after="0", method="POST", path_prefix=JOBS)]
    )
    emulator.clear_requests()
    _new_job(hook)
    assert [r.status_code for r in _calls(emulator, "POST", JOBS)] == [429, 200]
    assert not _calls(emulator, "GET", JOBS), "a 429 proves nothing was created: no lookup"


def test_final_5xx_after_ambiguous_creates_says_the_job_may_exist(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    token = uuid.uuid4().hex
    failing = Fault(kind="status", status_code=503, method="POST", path_prefix=JOBS)
    emulator.set_faults([failing] * FAST_RETRIES.max_attempts)
    with pytest.raises(MistralServerError) as caught:
        hook.create_batch_job(
            endpoint="/v1/embeddings", requests=ONE_REQUEST, idempotency_key=token
        )
    assert caught.value.status_code == 503
    assert str(caught.value).endswith(
        "The batch job may or may not have been created: look for metadata "
        f"{IDEMPOTENCY_KEY_METADATA}={token} before creating it again."
    )


def test_create_refused_for_good_has_no_such_note(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    emulator.set_faults(
        [Fault(kind="status", status_code=429, method="POST", path_prefix=JOBS)] * 4
    )
    with pytest.raises(MistralAPIError) as caught:
        _new_job(hook)
    assert caught.value.status_code == 429
    assert "may or may not" not in str(caught.value)


def test_wrong_key_says_so_and_never_shows_the_key(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "sk-wrong-" + uuid.uuid4().hex
    set_connection(monkeypatch, emulator, api_key=secret)
    hook = MistralBatchHook(CONN_ID, retry_policy=FAST_RETRIES)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(MistralAuthenticationError) as caught:
        hook.get_batch_job("any")
    assert caught.value.status_code == 401
    assert "API key is missing or wrong" in str(caught.value)
    ok, message = hook.test_connection()
    assert not ok
    assert "API key" in message
    for text in (str(caught.value), repr(caught.value), message, caplog.text):
        assert secret not in text


def test_secret_stays_out_of_retry_logs(
    hook: MistralBatchHook, emulator: RunningEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emulator.set_faults(
        [Fault(kind="status", status_code=500, method="GET", path_prefix="/v1/files")]
    )
    list(hook.list_files(page_size=1))
    assert "retrying" in caplog.text
    assert emulator.api_key not in caplog.text


def test_test_connection_succeeds(hook: MistralBatchHook, emulator: RunningEmulator) -> None:
    ok, message = hook.test_connection()
    assert ok, message
    assert emulator.base_url in message


def test_a_job_the_server_commits_after_the_create_returned_is_not_waited_for_but_named(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch, sleeps: SleepRecorder
) -> None:
    # The first POST is read in full, then turned into a job only after the client timed out
    # and its retry made a job: the create returns that job at once (no wait in the worker
    # slot for the late one) and warns of it; the hook cancels nothing, the domain does.
    set_connection(monkeypatch, emulator, extra={"timeout": 0.5})
    emulator.update_config(queue_seconds=60)
    hook = MistralBatchHook(CONN_ID, retry_policy=FAST_RETRIES)
    hook._sleep = sleeps
    token = uuid.uuid4().hex
    emulator.set_faults(
        [Fault(kind="slow_commit", delay_seconds=3.0, method="POST", path_prefix=JOBS)]
    )
    started = time.monotonic()
    with structlog.testing.capture_logs() as logs:
        job = hook.create_batch_job(
            endpoint="/v1/embeddings",
            model="mistral-embed",
            requests=ONE_REQUEST,
            idempotency_key=token,
        )
    assert time.monotonic() - started < 3.0, "the create waited for the late job"
    assert _jobs_with_key(hook, token) == [job.id]
    warnings = [entry["event"] for entry in logs if entry.get("log_level") == "warning"]
    assert (
        f"An attempt to create batch job {job.id} was ambiguous: another job with metadata "
        f"{IDEMPOTENCY_KEY_METADATA}={token} may appear later; it is a duplicate of this one"
    ) in warnings
    deadline = time.monotonic() + 20
    while len(tagged := _jobs_with_key(hook, token)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(tagged) == 2, "the late job was created too"
    statuses = {j.id: j.status for j in hook.list_batch_jobs()}
    assert all(statuses[job_id] == BatchJobStatus.QUEUED for job_id in tagged)


def _twins(hook: MistralBatchHook, token: str) -> list[BatchJob]:
    """Two jobs with one idempotency key (as two ambiguous attempts of one create make them),
    the older first."""
    older = hook.create_batch_job(
        endpoint="/v1/embeddings", requests=ONE_REQUEST, idempotency_key=token
    )
    time.sleep(1.1)  # the emulator's creation times are whole seconds
    younger = hook.create_batch_job(
        endpoint="/v1/embeddings", requests=ONE_REQUEST, idempotency_key=token
    )
    return [older, younger]


def test_a_retried_create_that_finds_several_jobs_returns_the_one_choose_picks(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    token = uuid.uuid4().hex
    older, younger = _twins(hook, token)
    seen: list[list[str]] = []

    def choose(jobs: list[BatchJob]) -> BatchJob:
        seen.append([job.id for job in jobs])
        return jobs[-1]

    emulator.set_faults([Fault(kind="status", status_code=503, method="POST", path_prefix=JOBS)])
    emulator.clear_requests()
    job = hook.create_batch_job(
        endpoint="/v1/embeddings", requests=ONE_REQUEST, idempotency_key=token, choose=choose
    )
    assert seen == [[older.id, younger.id]], "choose gets every job of the key, oldest first"
    assert job.id == younger.id
    assert len(_calls(emulator, "POST", JOBS)) == 1, "no second job was created"


def test_without_choose_a_retried_create_returns_the_first_job_and_cancels_nothing(
    hook: MistralBatchHook, emulator: RunningEmulator
) -> None:
    token = uuid.uuid4().hex
    older, younger = _twins(hook, token)
    emulator.set_faults([Fault(kind="status", status_code=503, method="POST", path_prefix=JOBS)])
    emulator.clear_requests()
    job = hook.create_batch_job(
        endpoint="/v1/embeddings", requests=ONE_REQUEST, idempotency_key=token
    )
    assert job.id == older.id
    assert not _calls(emulator, "POST", f"{JOBS}/{younger.id}/cancel")
