"""An input larger than one job takes: one job per shard, one outcome, retries per shard."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_mistral_batch.batch.event import make_event
from airflow_provider_mistral_batch.exceptions import (
    MistralBatchError,
    MistralBatchInputError,
    MistralBatchJobError,
    MistralBatchJobFatalError,
)
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import TASK_KEY_METADATA, BatchJob, BatchJobStatus
from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
from airflow_provider_mistral_batch.triggers.batch import MistralBatchJobTrigger
from airflow_provider_mistral_batch.utils.compat import TaskDeferred
from mistral_batch_emulator import RunningEmulator
from tests.integration.operators.support import (
    CHAT,
    LINK_KEY,
    FakeTaskInstance,
    OperatorLog,
    chat_requests,
    job_data,
    lose_inputs_after_create,
)


def _jobs(hook: MistralBatchHook) -> list[BatchJob]:
    """Every job, in shard order (creation times have a resolution of a second)."""
    return sorted(hook.list_batch_jobs(), key=lambda job: (job.metadata or {})["airflow_shard"])


@pytest.mark.integration
def test_five_requests_at_two_per_job_make_three_jobs_and_one_outcome(
    make_op: Callable[..., MistralBatchOperator], hook: MistralBatchHook
) -> None:
    ti = FakeTaskInstance()
    result = make_op(requests=chat_requests(5), max_requests_per_job=2).execute({"ti": ti})

    jobs = _jobs(hook)
    ids = [job.id for job in jobs]
    assert len(jobs) == 3
    assert [job.total_requests for job in jobs] == [2, 2, 1]
    assert [(job.metadata or {})["airflow_shard"] for job in jobs] == ["1/3", "2/3", "3/3"]
    assert len({(job.metadata or {})[TASK_KEY_METADATA] for job in jobs}) == 3
    assert result["job_ids"] == ids
    assert result["job_id"] == ids[0]
    assert result["status"] == "SUCCESS"
    assert (result["total_requests"], result["succeeded_requests"]) == (5, 5)
    assert ti.pushed["batch_job_ids"] == ids
    assert ti.pushed["output_files"] == [job.output_file for job in jobs]
    assert ti.pushed["error_files"] == [None, None, None]
    assert "batch_job_id" not in ti.pushed  # the singular keys are for a single job
    assert "output_file" not in ti.pushed
    assert ti.pushed[LINK_KEY].endswith(f"/build/batches/{ids[0]}")


@pytest.mark.integration
def test_a_retry_after_one_shard_failed_creates_only_that_shard_again(
    make_op: Callable[..., MistralBatchOperator],
    hook: MistralBatchHook,
    conn: RunningEmulator,
    capture_log: Callable[[Any], OperatorLog],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = make_op(requests=chat_requests(5), max_requests_per_job=2)
    # The second shard's input disappears before validation: that job ends FAILED.
    made = lose_inputs_after_create(monkeypatch, first, conn, which={2})
    with pytest.raises(MistralBatchJobError) as failed:
        first.execute({"ti": FakeTaskInstance(try_number=1)})
    assert not isinstance(failed.value, MistralBatchJobFatalError)  # a retry can help
    assert str(failed.value).startswith("1 of 3 Mistral batch jobs")
    assert f"Mistral batch job {made[1].id} ended FAILED" in str(failed.value)

    retry = make_op(requests=chat_requests(5), max_requests_per_job=2)
    log = capture_log(retry)
    result = retry.execute({"ti": FakeTaskInstance(try_number=2)})

    assert result["status"] == "SUCCESS"
    assert result["job_ids"][0] == made[0].id
    assert result["job_ids"][2] == made[2].id
    assert result["job_ids"][1] not in {job.id for job in made}
    assert len(_jobs(hook)) == 4
    reattached = [line for line in log.at("info") if line.startswith("Reattaching")]
    assert len(reattached) == 2
    assert "(shard 1 of 3)" in reattached[0]
    assert "(shard 3 of 3)" in reattached[1]


@pytest.mark.integration
def test_sharded_deferral_watches_every_job_in_one_trigger(
    make_op: Callable[..., MistralBatchOperator], conn: RunningEmulator
) -> None:
    conn.update_config(queue_seconds=60)
    op = make_op(requests=chat_requests(3), max_requests_per_job=1, deferrable=True)
    ti = FakeTaskInstance()
    with pytest.raises(TaskDeferred) as info:
        op.execute({"ti": ti})
    trigger = info.value.trigger
    assert isinstance(trigger, MistralBatchJobTrigger)
    _, kwargs = trigger.serialize()
    assert kwargs["job_ids"] == ti.pushed["batch_job_ids"]
    assert kwargs["job_id"] == ti.pushed["batch_job_ids"][0]
    assert len(kwargs["job_ids"]) == 3


def _ended(job_id: str, **changes: Any) -> BatchJob:
    return BatchJob.model_validate(job_data("SUCCESS", id=job_id, **changes))


def test_resuming_with_several_jobs_judges_them_as_one() -> None:
    jobs = [_ended("a", failed_requests=1, succeeded_requests=2), _ended("b")]
    op = MistralBatchOperator(
        task_id="t", endpoint=CHAT, requests=chat_requests(6), max_failed_ratio=0.1
    )
    ti = FakeTaskInstance()
    event = make_event("terminal", "a", jobs[0], jobs=jobs, job_ids=["a", "b"])
    with pytest.raises(
        MistralBatchJobFatalError,
        match=r"1 of 6 requests failed \(16\.7%\), above max_failed_ratio 0\.1",
    ):
        op.execute_complete({"ti": ti}, event)
    assert ti.pushed["output_files"] == [jobs[0].output_file, jobs[1].output_file]

    lenient = MistralBatchOperator(
        task_id="t", endpoint=CHAT, requests=chat_requests(6), max_failed_ratio=0.2
    )
    result = lenient.execute_complete({"ti": FakeTaskInstance()}, event)
    assert (result["total_requests"], result["failed_requests"]) == (6, 1)
    assert result["job_ids"] == ["a", "b"]


def test_one_cancelled_shard_fails_without_retry_and_a_failed_one_with() -> None:
    op = MistralBatchOperator(task_id="t", endpoint=CHAT, requests=chat_requests(2))
    cancelled = [_ended("a"), BatchJob.model_validate(job_data("CANCELLED", id="b"))]
    with pytest.raises(MistralBatchJobFatalError, match="ended CANCELLED"):
        op.execute_complete(
            {"ti": FakeTaskInstance()},
            make_event("terminal", "a", cancelled[0], jobs=cancelled, job_ids=["a", "b"]),
        )
    failed = [BatchJob.model_validate(job_data("FAILED", id="a")), _ended("b")]
    with pytest.raises(MistralBatchJobError) as caught:
        op.execute_complete(
            {"ti": FakeTaskInstance()},
            make_event("terminal", "a", failed[0], jobs=failed, job_ids=["a", "b"]),
        )
    assert not isinstance(caught.value, MistralBatchJobFatalError)
    assert caught.value is not None
    assert BatchJobStatus.FAILED in str(caught.value)


def _with_max_requests_per_job(value: Any) -> type[MistralBatchOperator]:
    return type("Sharded", (MistralBatchOperator,), {"max_requests_per_job": value})


@pytest.mark.parametrize("value", [0, -1, 1_000_001, True, 1.5, "10"])
def test_max_requests_per_job_outside_the_api_range_is_refused_at_parse(value: Any) -> None:
    with pytest.raises(MistralBatchInputError) as caught:
        _with_max_requests_per_job(value)(task_id="t", endpoint=CHAT, requests=chat_requests(1))
    assert str(caught.value) == (
        f"t: max_requests_per_job must be a whole number from 1 to 1,000,000, got {value!r}"
    )


def test_max_requests_per_job_set_on_the_instance_is_refused_before_anything_is_sent(
    make_op: Callable[..., MistralBatchOperator], conn: RunningEmulator
) -> None:
    op = make_op(max_requests_per_job=0)
    conn.clear_requests()
    ti = FakeTaskInstance()
    with pytest.raises(MistralBatchInputError, match="batch: max_requests_per_job must be"):
        op.execute({"ti": ti})
    assert conn.requests == []
    assert "max_requests_per_job" in ti.pushed["mistral_input_error"]


@pytest.mark.parametrize("value", [1, 1_000_000, None])
def test_max_requests_per_job_inside_the_range_is_accepted(value: Any) -> None:
    op = _with_max_requests_per_job(value)(task_id="t", endpoint=CHAT, requests=chat_requests(1))
    assert op.max_requests_per_job == value


def test_a_failed_and_a_cancelled_shard_fail_without_retry() -> None:
    op = MistralBatchOperator(task_id="t", endpoint=CHAT, requests=chat_requests(2))
    jobs = [
        BatchJob.model_validate(job_data("FAILED", id="a")),
        BatchJob.model_validate(job_data("CANCELLED", id="b")),
    ]
    with pytest.raises(MistralBatchJobFatalError, match="2 of 2 Mistral batch jobs"):
        op.execute_complete(
            {"ti": FakeTaskInstance()},
            make_event("terminal", "a", jobs[0], jobs=jobs, job_ids=["a", "b"]),
        )


def test_an_error_event_with_some_snapshots_pushes_one_entry_per_job() -> None:
    op = MistralBatchOperator(task_id="t", endpoint=CHAT, requests=chat_requests(2))
    first = _ended("a")
    ti = FakeTaskInstance()
    event = make_event(
        "error", "a", first, "gave up polling Mistral batch job c: 404", [first], ["a", "b", "c"]
    )
    with pytest.raises(MistralBatchJobError, match="gave up polling"):
        op.execute_complete({"ti": ti}, event)
    assert ti.pushed == {
        "batch_job_ids": ["a", "b", "c"],
        "output_files": [first.output_file, None, None],
        "error_files": [first.error_file, None, None],
    }


def test_a_terminal_event_missing_a_job_is_refused() -> None:
    op = MistralBatchOperator(task_id="t", endpoint=CHAT, requests=chat_requests(2))
    event = make_event("terminal", "a", _ended("a"), "", [_ended("a")], ["a", "b"])
    with pytest.raises(MistralBatchError, match="says the job ended"):
        op.execute_complete({"ti": FakeTaskInstance()}, event)
