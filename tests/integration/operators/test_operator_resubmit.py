"""retry_failed_requests: the requests a retry can fix are sent again in new jobs, round by round,
against the emulator (injected 5xx rows, then healed), blocking and deferred, with reattach."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from airflow_provider_mistral_batch.batch.manifest import XCOM_JOB_IDS, XCOM_ROUNDS
from airflow_provider_mistral_batch.exceptions import MistralBatchInputError
from airflow_provider_mistral_batch.hooks.http.clients import close_shared_async_clients
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import (
    ROUND_METADATA,
    SHARD_METADATA,
    TASK_KEY_METADATA,
)
from airflow_provider_mistral_batch.operators.batch import MistralBatchOperator
from airflow_provider_mistral_batch.triggers.batch import MistralBatchJobTrigger
from airflow_provider_mistral_batch.utils.compat import AirflowFailException, TaskDeferred
from mistral_batch_emulator import RunningEmulator
from tests.integration.operators.support import (
    CHAT,
    FakeTaskInstance,
    OperatorLog,
    cancel_requests,
    chat_requests,
)

pytestmark = pytest.mark.integration

BODY = {"max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def _creates(conn: RunningEmulator) -> int:
    return len([r for r in conn.requests if r.method == "POST" and r.path == "/v1/batch/jobs"])


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _heal_before_create(
    monkeypatch: pytest.MonkeyPatch,
    op: MistralBatchOperator,
    conn: RunningEmulator,
    number: int = 2,
    *,
    crash_after: bool = False,
) -> list[Any]:
    """The failing requests succeed from the ``number``-th create on (the first resubmit
    round by default); with ``crash_after`` the task dies right after that create returns."""
    create = op.hook.create_batch_job
    made: list[Any] = []

    def heal_then_create(**kwargs: Any) -> Any:
        if len(made) + 1 == number:
            conn.update_config(failing_custom_ids=set())
        job = create(**kwargs)
        made.append(job)
        if crash_after and len(made) == number:
            raise RuntimeError("the worker died")
        return job

    monkeypatch.setattr(op.hook, "create_batch_job", heal_then_create)
    return made


def test_failed_rows_are_sent_again_until_every_row_succeeds(
    make_op: Callable[..., MistralBatchOperator],
    capture_log: Callable[[Any], OperatorLog],
    conn: RunningEmulator,
    hook: MistralBatchHook,
    tmp_path: Path,
) -> None:
    # r1 and r3 fail once with a 503, then succeed.
    conn.update_config(flaky_custom_ids={"r1": 1, "r3": 1})
    target = tmp_path / "results.jsonl"
    op = make_op(requests=chat_requests(5), retry_failed_requests=2, results_path=target)
    log = capture_log(op)
    ti = FakeTaskInstance()

    result = op.execute({"ti": ti})

    rounds = result["rounds"]
    assert [len(ids) for ids in rounds] == [1, 1], "the second round had nothing left to send"
    assert _creates(conn) == 2
    first, second = (hook.get_batch_job(ids[0]) for ids in rounds)
    assert (first.failed_requests, second.total_requests, second.failed_requests) == (2, 2, 0)
    metadata = second.metadata or {}
    assert metadata[ROUND_METADATA] == "1"
    assert ROUND_METADATA not in (first.metadata or {})
    assert metadata[TASK_KEY_METADATA] != (first.metadata or {})[TASK_KEY_METADATA]
    # The round resent the original requests: same custom_ids and bodies.
    sent = [json.loads(line) for line in hook.iter_file_lines(second.input_files[0])]
    assert sent == [{"custom_id": "r1", "body": BODY}, {"custom_id": "r3", "body": BODY}]
    # One final row per input, in input order, all from their newest round.
    rows = _rows(target)
    assert [row["custom_id"] for row in rows] == ["r0", "r1", "r2", "r3", "r4"]
    assert all(row["ok"] for row in rows)
    assert (result["succeeded_requests"], result["failed_requests"]) == (5, 0)
    assert result["results"]["failed"] == 0
    assert result["job_ids"] == [first.id, second.id]
    assert result["resubmitted"] == [2]
    assert ti.pushed[XCOM_ROUNDS] == [[first.id], [second.id]]
    assert ti.pushed[XCOM_JOB_IDS] == [first.id, second.id]
    assert "Round 1: resubmitting 2 requests of Mistral batch job" in log.text
    assert (
        f"Mistral batch job {first.id} succeeded (5 success of 5 requests); "
        f"resubmitted 2 requests in round 1 (job {second.id})"
    ) in log.at("info")


def test_a_task_killed_while_a_round_is_created_cancels_that_rounds_job(
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn.update_config(failing_custom_ids={"r1"})
    op = make_op(requests=chat_requests(3), retry_failed_requests=1)
    create = op.hook.create_batch_job
    made: list[Any] = []

    def create_then_killed(**kwargs: Any) -> Any:
        job = create(**kwargs)
        made.append(job)
        if len(made) == 2:
            # The kill lands while round 1's create is in flight: no id is known yet.
            op.on_kill()
            raise RuntimeError("killed")
        return job

    monkeypatch.setattr(op.hook, "create_batch_job", create_then_killed)
    with pytest.raises(RuntimeError, match="killed"):
        op.execute({"ti": FakeTaskInstance()})

    first, second = made
    assert len(cancel_requests(conn, second.id)) == 1, "round 1's job, found by its key"
    assert cancel_requests(conn, first.id) == []


def test_a_refused_request_is_not_sent_again_and_rounds_stop_at_the_limit(
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    hook: MistralBatchHook,
    tmp_path: Path,
) -> None:
    # r1 fails with 500 every time; r2 names a model the API refuses (400).
    conn.update_config(failing_custom_ids={"r1"})
    models = ["mistral-small-latest", "mistral-small-latest", "mistral-larg-latest"]
    requests = [
        {"custom_id": f"r{index}", "body": {**BODY, "model": model}}
        for index, model in enumerate(models)
    ]
    target = tmp_path / "results.jsonl"
    op = make_op(
        requests=requests,
        model=None,
        retry_failed_requests=2,
        results_path=target,
        max_failed_ratio=None,
    )

    result = op.execute({"ti": FakeTaskInstance()})

    rounds = result["rounds"]
    assert len(rounds) == 3, "two rounds after the first, then the limit"
    assert _creates(conn) == 3
    assert result["resubmitted"] == [1, 1]
    for ids in rounds[1:]:
        job = hook.get_batch_job(ids[0])
        sent = [json.loads(line)["custom_id"] for line in hook.iter_file_lines(job.input_files[0])]
        assert sent == ["r1"], "the 400 row is never sent again"
    rows = {row["custom_id"]: row for row in _rows(target)}
    assert rows["r0"]["ok"]
    assert rows["r1"]["status_code"] == 500
    assert rows["r2"]["status_code"] == 400
    assert (result["succeeded_requests"], result["failed_requests"]) == (1, 2)


def test_without_retryable_rows_no_round_follows(
    make_op: Callable[..., MistralBatchOperator], conn: RunningEmulator
) -> None:
    result = make_op(retry_failed_requests=3).execute({"ti": FakeTaskInstance()})
    assert result["rounds"] == [[result["job_id"]]]
    assert result["resubmitted"] == []
    assert _creates(conn) == 1


def test_without_results_path_the_verdict_judges_the_final_rows(
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn.update_config(failing_custom_ids={"r0"})
    op = make_op(retry_failed_requests=1)
    _heal_before_create(monkeypatch, op, conn)
    result = op.execute({"ti": FakeTaskInstance()})
    assert len(result["rounds"]) == 2
    assert (result["succeeded_requests"], result["failed_requests"]) == (3, 0)
    assert result["status"] == "SUCCESS"


def test_rows_still_failing_after_the_last_round_fail_the_task(
    make_op: Callable[..., MistralBatchOperator], conn: RunningEmulator
) -> None:
    conn.update_config(failing_custom_ids={"r0"})
    with pytest.raises(AirflowFailException) as info:
        make_op(retry_failed_requests=1).execute({"ti": FakeTaskInstance()})
    message = str(info.value)
    assert "1 of 3 requests failed" in message
    assert "resubmitted 1 request in round 1 (job " in message
    assert _creates(conn) == 2


def test_a_retried_task_resumes_at_its_round_without_sending_it_twice(
    make_op: Callable[..., MistralBatchOperator],
    capture_log: Callable[[Any], OperatorLog],
    conn: RunningEmulator,
    hook: MistralBatchHook,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn.update_config(failing_custom_ids={"r2"})
    first = make_op(retry_failed_requests=2)
    made = _heal_before_create(monkeypatch, first, conn, crash_after=True)
    with pytest.raises(RuntimeError, match="the worker died"):
        first.execute({"ti": FakeTaskInstance(try_number=1)})
    assert _creates(conn) == 2

    retry = make_op(retry_failed_requests=2)
    log = capture_log(retry)
    result = retry.execute({"ti": FakeTaskInstance(try_number=2)})

    assert _creates(conn) == 2, "no round was sent twice"
    assert result["rounds"] == [[made[0].id], [made[1].id]]
    assert (result["succeeded_requests"], result["failed_requests"]) == (3, 0)
    assert f"Reattaching to Mistral batch job {made[1].id} (round 1, status " in log.text


def test_a_sharded_input_resubmits_per_shard(
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    hook: MistralBatchHook,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    conn.update_config(failing_custom_ids={"r3"})
    target = tmp_path / "results.jsonl"
    op = make_op(
        requests=chat_requests(4),
        retry_failed_requests=1,
        results_path=target,
        max_requests_per_job=2,
    )
    _heal_before_create(monkeypatch, op, conn, number=3)
    result = op.execute({"ti": FakeTaskInstance()})

    assert [len(ids) for ids in result["rounds"]] == [2, 1]
    again = hook.get_batch_job(result["rounds"][1][0])
    assert (again.metadata or {})[SHARD_METADATA] == "2/2"
    assert [row["custom_id"] for row in _rows(target)] == ["r0", "r1", "r2", "r3"]
    assert all(row["ok"] for row in _rows(target))
    assert (result["total_requests"], result["succeeded_requests"]) == (4, 4)


def _first_event(trigger: MistralBatchJobTrigger) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        try:
            event = await trigger.run().__anext__()
            return dict(event.payload)
        finally:
            await close_shared_async_clients()

    return asyncio.run(asyncio.wait_for(first(), 30))


def test_deferred_each_round_defers_again_and_resumes_with_its_rounds(
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    conn.update_config(failing_custom_ids={"r0", "r1"}, queue_seconds=0.2)
    target = tmp_path / "results.jsonl"
    op = make_op(deferrable=True, retry_failed_requests=2, results_path=target)
    _heal_before_create(monkeypatch, op, conn)
    ti = FakeTaskInstance()

    with pytest.raises(TaskDeferred) as info:
        op.execute({"ti": ti})
    deferrals = 1
    while True:
        trigger = info.value.trigger
        assert isinstance(trigger, MistralBatchJobTrigger)
        assert trigger.serialize()[1]["resume"]["rounds"], "the rounds ride in the trigger"
        event = json.loads(json.dumps(_first_event(trigger)))  # as stored by Airflow
        try:
            result = op.execute_complete({"ti": ti}, event)
        except TaskDeferred as again:
            info = pytest.ExceptionInfo.from_exc_info((type(again), again, again.__traceback__))
            deferrals += 1
            continue
        break

    assert deferrals == 2, "round 1 deferred again"
    assert [len(ids) for ids in result["rounds"]] == [1, 1]
    assert result["resubmitted"] == [2]
    assert all(row["ok"] for row in _rows(target))
    assert _creates(conn) == 2
    assert ti.pushed[XCOM_ROUNDS] == result["rounds"]


class _Answer(BaseModel):
    label: str


def test_retry_invalid_output_sends_again_answers_the_output_type_refuses(
    make_op: Callable[..., MistralBatchOperator],
    capture_log: Callable[[Any], OperatorLog],
    conn: RunningEmulator,
    tmp_path: Path,
) -> None:
    # Two answers break the schema in round 0 (not JSON, wrong shape); the round that resends
    # them gets valid JSON, as the emulator answers a json_schema request.
    conn.update_config(broken_output_custom_ids={"r0": "not_json", "r2": "wrong_shape"})
    target = tmp_path / "rows.jsonl"
    op = make_op(
        retry_failed_requests=1,
        retry_invalid_output=True,
        output_type=_Answer,
        results_path=str(target),
    )
    create = op.hook.create_batch_job

    def heal_then_create(**kwargs: Any) -> Any:
        if _creates(conn) == 1:
            conn.update_config(broken_output_custom_ids={})
        return create(**kwargs)

    op.hook.create_batch_job = heal_then_create  # type: ignore[method-assign]
    log = capture_log(op)
    result = op.execute({"ti": FakeTaskInstance()})
    assert result["resubmitted"] == [2]
    assert "Round 1: resubmitting 2 requests of Mistral batch job" in log.text
    assert "(0 failed, 2 invalid)" in log.text
    rows = _rows(target)
    assert [row["status"] for row in rows] == ["success"] * 3
    assert all(isinstance(row["output"]["label"], str) for row in rows)
    assert _creates(conn) == 2


def test_answers_still_invalid_after_the_last_round_count_as_failed_in_the_return_value(
    make_op: Callable[..., MistralBatchOperator],
    conn: RunningEmulator,
    tmp_path: Path,
) -> None:
    # r0 stays broken in every round: the API counts its answer as succeeded, its row is not.
    conn.update_config(broken_output_custom_ids={"r0": "not_json"})
    target = tmp_path / "rows.jsonl"
    op = make_op(
        retry_failed_requests=1,
        retry_invalid_output=True,
        output_type=_Answer,
        results_path=str(target),
        max_failed_ratio=None,
    )

    result = op.execute({"ti": FakeTaskInstance()})

    assert [row["status"] for row in _rows(target)] == ["invalid_output", "success", "success"]
    assert result["resubmitted"] == [1]
    assert (result["succeeded_requests"], result["failed_requests"]) == (2, 1)
    assert result["total_requests"] == 3


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"retry_failed_requests": -1}, "retry_failed_requests must be a whole number from 0"),
        ({"retry_failed_requests": 11}, "retry_failed_requests must be a whole number from 0"),
        ({"retry_failed_requests": True}, "retry_failed_requests must be a whole number from 0"),
        ({"retry_invalid_output": True}, "retry_invalid_output=True sends invalid answers"),
        (
            {"retry_failed_requests": 1, "wait_for_completion": False},
            "retry_failed_requests needs wait_for_completion=True",
        ),
    ],
)
def test_resubmit_options_are_checked_when_the_dag_is_parsed(
    given: dict[str, Any], message: str
) -> None:
    with pytest.raises(MistralBatchInputError, match=f"^batch: {message}"):
        MistralBatchOperator(task_id="batch", endpoint=CHAT, input_files=["f"], **given)
