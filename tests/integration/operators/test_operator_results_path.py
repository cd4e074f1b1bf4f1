"""Where results go: missing local folders are made, mapped instances never share one file,
and a template error in a field fails the task at once (no retries)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import DAG, ObjectStoragePath

from airflow_provider_mistral_batch.batch.event import make_event
from airflow_provider_mistral_batch.batch.manifest import XCOM_INPUT_ERROR
from airflow_provider_mistral_batch.exceptions import MistralBatchInputError
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.operators.batch import (
    MistralBatchOperator,
    MistralBatchResultsOperator,
)
from airflow_provider_mistral_batch.utils.compat import AirflowFailException
from mistral_batch_emulator import RunningEmulator
from tests.helpers import wait_for_terminal
from tests.integration.operators.support import CHAT, MODEL, FakeTaskInstance, chat_requests

pytestmark = pytest.mark.integration


def _custom_ids(path: Path) -> list[str]:
    return [json.loads(line)["custom_id"] for line in path.read_text().splitlines()]


def _posts(conn: RunningEmulator) -> list[str]:
    return [r.path for r in conn.requests if r.method == "POST"]


# ---------------------------------------------------------------------------- folders


@pytest.mark.parametrize("as_url", [False, True], ids=["path", "file-url"])
def test_missing_local_folders_are_made(
    make_op: Callable[..., MistralBatchOperator], tmp_path: Path, as_url: bool
) -> None:
    target = tmp_path / "not" / "yet" / "there" / "r.jsonl"
    given = f"file://{target}" if as_url else str(target)
    result = make_op(requests=chat_requests(3), results_path=given).execute(
        {"ti": FakeTaskInstance()}
    )
    assert _custom_ids(target) == ["r0", "r1", "r2"]
    assert result["results_path"] == given


def test_a_folder_that_cannot_be_made_is_refused_before_anything_is_sent(
    make_op: Callable[..., MistralBatchOperator], conn: RunningEmulator, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    target = blocker / "sub" / "r.jsonl"
    conn.clear_requests()
    with pytest.raises(MistralBatchInputError) as caught:
        make_op(results_path=str(target)).execute({"ti": FakeTaskInstance()})
    assert str(caught.value).startswith(
        f"batch: cannot write results to {target}: cannot create folder {target.parent}: "
    )
    assert _posts(conn) == []


def test_the_worker_that_resumes_after_a_deferral_makes_the_folder(
    conn: RunningEmulator, hook: MistralBatchHook, tmp_path: Path
) -> None:
    # The check ran on the worker that deferred; the one that resumes may lack the folder.
    job = hook.create_batch_job(endpoint=CHAT, model=MODEL, requests=chat_requests(2))
    ended = wait_for_terminal(hook, job.id)
    target = tmp_path / "made" / "on" / "resume.jsonl"
    op = MistralBatchOperator(
        task_id="batch", endpoint=CHAT, requests=chat_requests(2), results_path=str(target)
    )
    try:
        result = op.execute_complete(
            {"ti": FakeTaskInstance()}, make_event("terminal", ended.id, ended)
        )
    finally:
        op.hook.close()
    assert sorted(_custom_ids(target)) == ["r0", "r1"]
    assert result["results_path"] == str(target)


def test_the_results_operator_makes_missing_folders_too(
    conn: RunningEmulator, hook: MistralBatchHook, tmp_path: Path
) -> None:
    job = hook.create_batch_job(endpoint=CHAT, model=MODEL, requests=chat_requests(2))
    wait_for_terminal(hook, job.id)
    target = tmp_path / "results" / "of" / "job.jsonl"
    op = MistralBatchResultsOperator(
        task_id="results", job_id=job.id, results_path=f"file://{target}"
    )
    manifest = op.execute({"ti": FakeTaskInstance()})
    assert sorted(_custom_ids(target)) == ["r0", "r1"]
    assert manifest["lines"] == 2


# ---------------------------------------------------------------------------- mapped tasks


def _mapped(dag_id: str, **partial: Any) -> Any:
    """A mapped batch task over two inputs, in its own DAG (as a DAG file makes it)."""
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1)):
        return MistralBatchOperator.partial(
            task_id="batch", endpoint=CHAT, model=MODEL, poll_interval=0.05, **partial
        ).expand(requests=[chat_requests(2, "a"), chat_requests(2, "b")])


def _instance(mapped: Any, map_index: int, **expanded: Any) -> tuple[Any, FakeTaskInstance]:
    """The task of one mapped instance, rendered, and its task instance."""
    op = mapped.unmap({"requests": chat_requests(2, "ab"[map_index]), **expanded})
    ti = FakeTaskInstance(map_index=map_index, dag_id=mapped.dag_id)
    op.render_template_fields({"ti": ti, "task_instance": ti})
    return op, ti


@pytest.mark.parametrize("fixed", ["path", "url", "object_storage_path"])
def test_a_results_path_every_mapped_instance_shares_is_refused_before_anything_is_sent(
    conn: RunningEmulator, tmp_path: Path, fixed: str
) -> None:
    target = tmp_path / "all.jsonl"
    given: Any = {
        "path": str(target),
        "url": f"file://{target}",
        "object_storage_path": ObjectStoragePath(f"file://{target}"),
    }[fixed]
    mapped = _mapped(f"mapped_fixed_{fixed}", results_path=given)
    conn.clear_requests()
    for map_index in (0, 1):
        op, ti = _instance(mapped, map_index)
        try:
            with pytest.raises(AirflowFailException) as caught:
                op.execute({"ti": ti})
        finally:
            op.hook.close()
        message = str(caught.value)
        assert isinstance(caught.value, MistralBatchInputError)
        assert message.startswith(
            f"batch: results_path {str(given)!r} is the same file for every map index of this "
            f"mapped task (this is map index {map_index}): each instance would replace the "
            "others' results and the file would hold only the last one's."
        )
        assert "-{{ ti.map_index }}.jsonl" in message  # the fix, spelled out
        assert ti.pushes == [(XCOM_INPUT_ERROR, message.removeprefix("batch: "))]
    assert _posts(conn) == []
    assert not target.exists()


@pytest.mark.parametrize(
    "template",
    [
        "{root}/part-{{{{ ti.map_index }}}}.jsonl",
        "{root}/{{{{ task_instance.map_index }}}}/part.jsonl",
        "{root}/part-{{{{ ti['map_index'] + 1 }}}}.jsonl",
    ],
)
def test_a_shared_template_that_names_the_map_index_gives_each_instance_its_file(
    conn: RunningEmulator, tmp_path: Path, template: str
) -> None:
    mapped = _mapped("mapped_by_index", results_path=template.format(root=tmp_path))
    written = []
    for map_index in (0, 1):
        op, ti = _instance(mapped, map_index)
        try:
            written.append(op.execute({"ti": ti})["results_path"])
        finally:
            op.hook.close()
    assert len(set(written)) == 2
    assert [sorted(_custom_ids(Path(path))) for path in written] == [["a0", "a1"], ["b0", "b1"]]


def test_an_expanded_results_path_is_each_instance_own(
    conn: RunningEmulator, tmp_path: Path
) -> None:
    paths = [str(tmp_path / "first.jsonl"), str(tmp_path / "second.jsonl")]
    with DAG("mapped_expanded_paths", schedule=None, start_date=datetime(2026, 1, 1)):
        mapped = MistralBatchOperator.partial(
            task_id="batch", endpoint=CHAT, model=MODEL, poll_interval=0.05
        ).expand_kwargs(
            [
                {"requests": chat_requests(2, "a"), "results_path": paths[0]},
                {"requests": chat_requests(2, "b"), "results_path": paths[1]},
            ]
        )
    for map_index in (0, 1):
        op, ti = _instance(mapped, map_index, results_path=paths[map_index])
        try:
            op.execute({"ti": ti})
        finally:
            op.hook.close()
    assert sorted(_custom_ids(Path(paths[0]))) == ["a0", "a1"]
    assert sorted(_custom_ids(Path(paths[1]))) == ["b0", "b1"]


def test_the_results_operator_refuses_a_shared_path_when_mapped(
    conn: RunningEmulator, tmp_path: Path
) -> None:
    target = tmp_path / "all.jsonl"
    with DAG("mapped_results_operator", schedule=None, start_date=datetime(2026, 1, 1)):
        mapped = MistralBatchResultsOperator.partial(
            task_id="results", results_path=str(target)
        ).expand(job_id=["job-a", "job-b"])
    op = mapped.unmap({"job_id": "job-a"})
    conn.clear_requests()
    with pytest.raises(MistralBatchInputError, match=r"is the same file for every map index"):
        op.execute({"ti": FakeTaskInstance(map_index=0)})
    assert conn.requests == []  # the jobs were not even read


# ---------------------------------------------------------------------------- template errors


def _in_dag(cls: type[Any], **kwargs: Any) -> Any:
    with DAG(f"templates_{cls.__name__}", schedule=None, start_date=datetime(2026, 1, 1)):
        return cls(**kwargs)


def test_an_undefined_logical_date_in_results_path_fails_at_once_and_says_why() -> None:
    op = _in_dag(
        MistralBatchOperator,
        task_id="summarise",
        endpoint=CHAT,
        requests=chat_requests(1),
        results_path="/tmp/summaries/{{ ds }}.jsonl",
    )
    # A manual run in Airflow 3 has no logical date: no ds, ts, logical_date in its context.
    with pytest.raises(AirflowFailException) as caught:
        op.render_template_fields({"run_id": "manual__x"})
    assert isinstance(caught.value, MistralBatchInputError)
    assert str(caught.value) == (
        "summarise: cannot render results_path '/tmp/summaries/{{ ds }}.jsonl': 'ds' is "
        "undefined; this run has no logical date (a manual run in Airflow 3 has none), so ds "
        "is undefined: use a value every run has, such as {{ dag_run.run_after | ds }} or "
        "{{ run_id }} (a template error fails every try alike: no retries)"
    )


def test_a_template_error_inside_a_field_names_the_field() -> None:
    requests = [*chat_requests(1), {"custom_id": "x", "body": {"text": "{{ params.nope.deeper }}"}}]
    op = _in_dag(MistralBatchOperator, task_id="t", endpoint=CHAT, requests=requests)
    with pytest.raises(MistralBatchInputError, match=r"^t: cannot render requests \[\{"):
        op.render_template_fields({"params": {}})


def test_a_template_syntax_error_fails_at_once() -> None:
    op = _in_dag(
        MistralBatchResultsOperator, task_id="r", job_id="{{ oops", results_path="/tmp/r.jsonl"
    )
    with pytest.raises(MistralBatchInputError, match=r"^r: cannot render job_id '\{\{ oops'"):
        op.render_template_fields({})


def test_other_rendering_errors_keep_their_retries() -> None:
    # Not a template error: a failing call inside the template may be passing (a lookup).
    op = _in_dag(
        MistralBatchOperator, task_id="t", endpoint="{{ boom() }}", requests=chat_requests(1)
    )

    def boom() -> str:
        raise ConnectionError("secrets backend unreachable")

    with pytest.raises(ConnectionError):
        op.render_template_fields({"boom": boom})
