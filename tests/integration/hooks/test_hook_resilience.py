"""Retries, Retry-After, ambiguous creates and auth errors, with faults injected by the emulator."""

from __future__ import annotations

import logging
import uuid

import pytest
import structlog

from airflow_provider_mistral_batch.exceptions import (
    MistralAPIError,
    MistralAuthenticationError,
    MistralConnectionError,
    MistralServerError,
)
from airflow_provider_mistral_batch.hooks.mistral_batch import (
    IDEMPOTENCY_METADATA_KEY,
    MistralBatchHook,
)
from airflow_provider_mistral_batch.models import BatchJobStatus
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
        if (job.metadata or {}).get(IDEMPOTENCY_METADATA_KEY) == token
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
        f"{IDEMPOTENCY_METADATA_KEY}={token} before creating it again."
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


def test_create_the_server_finished_after_the_client_gave_up_leaves_one_live_job(
    emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch, sleeps: SleepRecorder
) -> None:
    # The first POST is read in full, then turned into a job only after the client timed out
    # and already sent the create again: two jobs exist for a moment.
    set_connection(monkeypatch, emulator, extra={"timeout": 0.5})
    emulator.update_config(queue_seconds=60)
    hook = MistralBatchHook(CONN_ID, retry_policy=FAST_RETRIES, create_settle_seconds=2.0)
    hook._sleep = sleeps
    token = uuid.uuid4().hex
    emulator.set_faults(
        [Fault(kind="slow_commit", delay_seconds=1.0, method="POST", path_prefix=JOBS)]
    )
    job = hook.create_batch_job(
        endpoint="/v1/embeddings",
        model="mistral-embed",
        requests=ONE_REQUEST,
        idempotency_key=token,
    )
    jobs = {j.id: j.status for j in hook.list_batch_jobs()}
    tagged = _jobs_with_key(hook, token)
    assert len(tagged) == 2, "the late job was created too"
    live = [
        job_id
        for job_id in tagged
        if jobs[job_id] not in (BatchJobStatus.CANCELLATION_REQUESTED, BatchJobStatus.CANCELLED)
    ]
    assert live == [job.id]


def test_create_returns_its_job_when_the_duplicate_check_fails(
    hook: MistralBatchHook,
    emulator: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = uuid.uuid4().hex
    emulator.set_faults([Fault(kind="drop_before", method="POST", path_prefix=JOBS)])
    lookups = hook._jobs_with_key
    calls: list[int] = []

    def listing_fails_when_settling(*args: object, **kwargs: object) -> list[object]:
        calls.append(1)
        if len(calls) > 1:  # the look for a late duplicate, after the job exists
            raise MistralServerError(503, "listing unavailable")
        return lookups(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(hook, "_jobs_with_key", listing_fails_when_settling)
    with structlog.testing.capture_logs() as logs:
        job = hook.create_batch_job(
            endpoint="/v1/embeddings", requests=ONE_REQUEST, idempotency_key=token
        )
    assert job.id
    assert len(calls) == 2
    warnings = [entry["event"] for entry in logs if entry.get("log_level") == "warning"]
    assert (
        f"Could not check for a duplicate of batch job {job.id} (HTTP 503: listing unavailable); "
        f"look for other jobs with metadata {IDEMPOTENCY_METADATA_KEY}={token} and cancel all "
        "but the oldest"
    ) in warnings
