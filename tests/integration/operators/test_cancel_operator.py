"""MistralBatchCancelJobOperator against the emulator."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowException
from pytest_mock import MockerFixture

from airflow_provider_mistral_batch.exceptions import (
    MistralAPIError,
    MistralAuthenticationError,
    MistralBatchFatalError,
    MistralNotFoundError,
)
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import BatchJobStatus
from airflow_provider_mistral_batch.operators.batch import MistralBatchCancelJobOperator
from mistral_batch_emulator import Fault, RunningEmulator
from tests.helpers import wait_for_terminal
from tests.integration.operators.support import (
    CHAT,
    MODEL,
    FakeTaskInstance,
    OperatorLog,
    cancel_requests,
    chat_requests,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def make_op(closing: Callable[[Any], Any]) -> Callable[..., MistralBatchCancelJobOperator]:
    def make(job_id: str, **kwargs: Any) -> MistralBatchCancelJobOperator:
        kwargs.setdefault("task_id", "cancel")
        kwargs.setdefault("poll_interval", 0.05)
        return closing(MistralBatchCancelJobOperator(job_id=job_id, **kwargs))

    return make


def test_cancels_a_running_job(
    make_op: Callable[..., MistralBatchCancelJobOperator],
    conn: RunningEmulator,
    hook: MistralBatchHook,
    queued_job: str,
) -> None:
    result = make_op(queued_job).execute({"ti": FakeTaskInstance()})
    assert result["job_id"] == queued_job
    assert result["status"] in ("CANCELLATION_REQUESTED", "CANCELLED")
    assert len(cancel_requests(conn, queued_job)) == 1
    assert wait_for_terminal(hook, queued_job).status == BatchJobStatus.CANCELLED


def test_waits_for_the_cancellation_when_asked(
    capture_log: Callable[[Any], OperatorLog],
    make_op: Callable[..., MistralBatchCancelJobOperator],
    conn: RunningEmulator,
    queued_job: str,
) -> None:
    op = make_op(queued_job, wait_for_cancellation=True)
    log = capture_log(op)
    result = op.execute({"ti": FakeTaskInstance()})
    assert result["status"] == "CANCELLED"
    assert f"Mistral batch job {queued_job} ended with status CANCELLED" in log.at("info")


def test_an_ended_job_is_not_an_error(
    capture_log: Callable[[Any], OperatorLog],
    make_op: Callable[..., MistralBatchCancelJobOperator],
    conn: RunningEmulator,
    hook: MistralBatchHook,
) -> None:
    job_id = hook.create_batch_job(endpoint=CHAT, requests=chat_requests(2), model=MODEL).id
    done = wait_for_terminal(hook, job_id)
    op = make_op(job_id, wait_for_cancellation=True)
    log = capture_log(op)
    result = op.execute({"ti": FakeTaskInstance()})
    assert result["status"] == "SUCCESS"
    assert result["output_file"] == done.output_file
    assert cancel_requests(conn, job_id) == []
    assert log.at("info") == [
        f"Mistral batch job {job_id} already ended with status SUCCESS; nothing to cancel"
    ]


def test_an_unknown_job_fails(
    make_op: Callable[..., MistralBatchCancelJobOperator], conn: RunningEmulator
) -> None:
    unknown = str(uuid.uuid4())
    with pytest.raises(MistralBatchFatalError, match=unknown) as caught:  # no retries
        make_op(unknown).execute({"ti": FakeTaskInstance()})
    assert isinstance(caught.value.__cause__, MistralNotFoundError)
    assert cancel_requests(conn, unknown) == []


def _refuse_the_first_poll(conn: RunningEmulator, status_code: int) -> None:
    """Let the status check and the cancel through (zero delays), then refuse the next GET."""
    conn.set_faults(
        [
            Fault(kind="delay_before", delay_seconds=0.0, method="GET"),
            Fault(kind="delay_before", delay_seconds=0.0, method="POST"),
            Fault(kind="status", status_code=status_code, method="GET"),
        ]
    )


def test_no_time_to_wait_still_reports_a_cancellation_that_landed(
    make_op: Callable[..., MistralBatchCancelJobOperator], queued_job: str
) -> None:
    # The cancel answers CANCELLATION_REQUESTED; the read at the deadline sees CANCELLED.
    op = make_op(queued_job, wait_for_cancellation=True, wait_timeout=0.0)
    assert op.execute({"ti": FakeTaskInstance()})["status"] == "CANCELLED"


def test_wait_timeout_while_waiting_for_the_cancellation(
    make_op: Callable[..., MistralBatchCancelJobOperator],
    conn: RunningEmulator,
    queued_job: str,
) -> None:
    # The read at the deadline gets a 503.
    _refuse_the_first_poll(conn, 503)
    op = make_op(queued_job, wait_for_cancellation=True, wait_timeout=0.0)
    with pytest.raises(AirflowException) as info:
        op.execute({"ti": FakeTaskInstance()})
    assert str(info.value).startswith(
        f"Mistral batch job {queued_job} did not end within 0 s of its cancellation: "
        f"deadline passed while Mistral batch job {queued_job} was still CANCELLATION_REQUESTED; "
        "could not fetch it: "
    )
    assert "503" in str(info.value)


def test_an_api_error_while_waiting_is_not_reported_as_a_timeout(
    make_op: Callable[..., MistralBatchCancelJobOperator],
    conn: RunningEmulator,
    queued_job: str,
) -> None:
    _refuse_the_first_poll(conn, 401)
    op = make_op(queued_job, wait_for_cancellation=True)
    with pytest.raises(MistralAuthenticationError) as info:
        op.execute({"ti": FakeTaskInstance()})
    assert "did not end within" not in str(info.value)
    assert len(cancel_requests(conn, queued_job)) == 1


@pytest.mark.parametrize("cancel_refused", [False, True])
def test_a_job_that_ends_between_the_read_and_the_cancel_is_not_an_error(
    capture_log: Callable[[Any], OperatorLog],
    make_op: Callable[..., MistralBatchCancelJobOperator],
    conn: RunningEmulator,
    hook: MistralBatchHook,
    mocker: MockerFixture,
    cancel_refused: bool,
) -> None:
    job_id = hook.create_batch_job(endpoint=CHAT, requests=chat_requests(2), model=MODEL).id
    done = wait_for_terminal(hook, job_id)
    if cancel_refused:
        # The real API may refuse to cancel an ended job; the emulator answers with the job.
        cancel_path = f"/v1/batch/jobs/{job_id}/cancel"
        conn.set_faults([Fault(kind="status", status_code=409, path_prefix=cancel_path)])
    op = make_op(job_id)
    reads = iter([done.model_copy(update={"status": BatchJobStatus.RUNNING})])
    real_get = op.hook.get_batch_job
    # The operator's first read still sees the job running: it ends just before the cancel.
    mocker.patch.object(
        op.hook, "get_batch_job", side_effect=lambda job: next(reads, None) or real_get(job)
    )
    log = capture_log(op)
    result = op.execute({"ti": FakeTaskInstance()})
    assert result["status"] == "SUCCESS"
    assert len(cancel_requests(conn, job_id)) == 1
    assert log.at("info") == [
        f"Mistral batch job {job_id} already ended with status SUCCESS; nothing to cancel"
    ]


def test_a_refused_cancel_of_a_running_job_fails(
    make_op: Callable[..., MistralBatchCancelJobOperator],
    conn: RunningEmulator,
    queued_job: str,
) -> None:
    cancel_path = f"/v1/batch/jobs/{queued_job}/cancel"
    conn.set_faults([Fault(kind="status", status_code=409, path_prefix=cancel_path)])
    with pytest.raises(MistralAPIError) as info:
        make_op(queued_job).execute({"ti": FakeTaskInstance()})
    assert info.value.status_code == 409


@pytest.mark.parametrize("job_id", ["6b0c7a8e-0000-4000-8000-00000000dead", "not-a-job-id"])
def test_cancelling_an_unknown_or_invalid_job_id_fails_without_retries(
    make_op: Callable[..., MistralBatchCancelJobOperator], conn: RunningEmulator, job_id: str
) -> None:
    with pytest.raises(MistralBatchFatalError) as caught:
        make_op(job_id=job_id).execute({"ti": FakeTaskInstance()})
    assert str(caught.value).startswith(f"Mistral batch job {job_id!r} cannot be read: HTTP 4")
    assert not [r for r in conn.requests if r.path.endswith("/cancel")]
