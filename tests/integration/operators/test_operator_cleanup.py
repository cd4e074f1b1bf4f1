"""What the operator leaves behind: no temporary copies, no orphaned uploads or jobs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_provider_mistral_batch.batch import input as batch_input
from airflow_provider_mistral_batch.exceptions import MistralBatchFatalError, MistralValidationError
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import BatchJobStatus
from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
from mistral_batch_emulator import Fault, RunningEmulator
from tests.helpers import set_connection, wait_for_terminal, write_jsonl
from tests.integration.operators.support import FakeTaskInstance, chat_requests

pytestmark = pytest.mark.integration


def test_a_reattaching_retry_leaves_no_temporary_copy(
    make_op: Callable[..., MistralBatchOperator],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setattr(batch_input, "MAX_INLINE_REQUESTS", 2)
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    first = make_op(requests=chat_requests(5)).execute({"ti": FakeTaskInstance(try_number=1)})
    second = make_op(requests=chat_requests(5)).execute({"ti": FakeTaskInstance(try_number=2)})
    assert second["job_id"] == first["job_id"]
    assert list(tmp_path.iterdir()) == []


def test_an_upload_the_server_refused_a_job_for_is_deleted(
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    hook: MistralBatchHook,
    tmp_path: Path,
) -> None:
    source = tmp_path / "in.jsonl"
    write_jsonl(source, ["0", "1", "2"])
    conn.set_faults([Fault(kind="status", status_code=400, method="POST", path_prefix="/v1/batch")])
    # A 400 on create is refused the same way on every retry: no retries.
    with pytest.raises(MistralBatchFatalError) as raised:
        make_op(input_path=source).execute({"ti": FakeTaskInstance()})
    assert isinstance(raised.value.__cause__, MistralValidationError)
    uploads = [r for r in conn.requests if r.method == "POST" and r.path == "/v1/files"]
    assert len(uploads) == 1
    assert [f.id for f in hook.list_files(purpose="batch")] == []


def test_an_upload_is_kept_when_an_earlier_create_attempt_may_have_used_it(
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    hook: MistralBatchHook,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    set_connection(
        monkeypatch, conn, conn_id="mistral_default", extra={"timeout": 5, "max_retries": 1}
    )
    source = tmp_path / "in.jsonl"
    write_jsonl(source, ["0", "1", "2"])
    jobs = "/v1/batch/jobs"
    conn.set_faults(
        [
            Fault(kind="status", status_code=503, method="POST", path_prefix=jobs),
            Fault(kind="status", status_code=400, method="POST", path_prefix=jobs),
        ]
    )
    with pytest.raises(MistralValidationError, match="may or may not have been created"):
        make_op(input_path=source).execute({"ti": FakeTaskInstance()})
    assert len([f for f in hook.list_files(purpose="batch")]) == 1


def test_on_kill_during_the_create_cancels_the_job_it_made(
    make_op: Callable[..., MistralBatchOperator], conn: RunningEmulator, hook: MistralBatchHook
) -> None:
    conn.update_config(queue_seconds=60)
    first = make_op(wait_for_completion=False)
    created = first.execute({"ti": FakeTaskInstance()})
    # A second operator killed after its create was sent but before it learned the job id.
    killed = make_op()
    killed._task_key = first._task_key
    killed.on_kill()
    assert wait_for_terminal(hook, created["job_id"]).status == BatchJobStatus.CANCELLED


def test_a_different_reattach_namespace_gets_its_own_job(
    make_op: Callable[..., MistralBatchOperator],
    hook: MistralBatchHook,
    conn: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two deployments on one workspace: each connection names its own namespace.
    for namespace in ("prod", "staging"):
        extra = {"max_retries": 0, "reattach_namespace": namespace}
        set_connection(monkeypatch, conn, conn_id=f"mistral_{namespace}", extra=extra)
    prod = make_op(mistral_conn_id="mistral_prod").execute({"ti": FakeTaskInstance()})
    again = make_op(mistral_conn_id="mistral_prod").execute({"ti": FakeTaskInstance(try_number=2)})
    staging = make_op(mistral_conn_id="mistral_staging").execute({"ti": FakeTaskInstance()})
    # The namespace is all that differs: without it the staging task would reattach.
    plain = make_op().execute({"ti": FakeTaskInstance(try_number=3)})
    assert again["job_id"] == prod["job_id"]
    assert staging["job_id"] != prod["job_id"]
    assert plain["job_id"] not in (prod["job_id"], staging["job_id"])
    assert len(list(hook.list_batch_jobs())) == 3
