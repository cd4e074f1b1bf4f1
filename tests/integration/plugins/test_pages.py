"""The plugin's pages and routes as an admin sees them, in Airflow's api-server app, against
the emulator: the task instance tab of real DAG runs, the jobs page, downloads, cancel."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import BatchJobStatus
from mistral_batch_emulator import RunningEmulator
from mistral_batch_emulator.dagtest import load_dag, xcom_value
from tests.integration.plugins.conftest import CONN_ID, TASK_METADATA, make_job, make_running_job

pytestmark = pytest.mark.integration

Headers = Callable[[str], dict[str, str]]


def _tab(dag_run: Any, task_id: str, map_index: str = "{MAP_INDEX}") -> str:
    return f"/mistral-batch/ti/{dag_run.dag_id}/{dag_run.run_id}/{task_id}/{map_index}"


def _refresh(html: str) -> int:
    match = re.search(r'<div id="content" data-refresh="(\d+)">', html)
    assert match, html[:500]
    return int(match.group(1))


def _download(hook: MistralBatchHook, file_id: str) -> bytes:
    buffer = io.BytesIO()
    hook.download_file(file_id, buffer)
    return buffer.getvalue()


class _Urls(HTMLParser):
    """Every URL-valued attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src", "action", "data-cancel") and value is not None:
                self.urls.append((tag, name, value))


def test_task_tab_shows_a_finished_job_with_counts_errors_usage_and_downloads(
    api: TestClient,
    as_user: Headers,
    run_dag: Callable[[str], Any],
    mistral: RunningEmulator,
    hook: MistralBatchHook,
) -> None:
    mistral.update_config(failing_custom_ids={"q-3"})
    dag_run = run_dag("test_plugin_ui")
    job_id = xcom_value(dag_run, "ask", "batch_job_id")
    job = hook.get_batch_job(job_id)
    assert job.error_file
    assert job.output_file

    # The UI leaves {MAP_INDEX} unfilled on an unmapped task; "-1" is the same task instance.
    for map_index in ("{MAP_INDEX}", "-1"):
        response = api.get(_tab(dag_run, "ask", map_index), headers=as_user("admin"))
        assert response.status_code == 200
        html = response.text
        assert f'data-job-id="{job_id}"' in html
        assert '<span class="badge success" data-status>SUCCESS</span>' in html
        assert "<span data-counts>4 / 4</span>" in html
        assert "3 succeeded · 1 failed" in html
        assert f"connection <code>{CONN_ID}</code>" in html
        # The first lines of the error file: the failed request, by custom id.
        assert re.search(r"<li>q-3: [^<]+</li>", html), html
        assert "Token usage" in html
        # The results' rows of each status (those with any).
        assert re.search(
            r'data-row-counts><h2>Results</h2>\n<p>success <strong data-count="success">3'
            r'</strong> · error <strong data-count="error">1</strong></p>',
            html,
        ), html
        assert "prompt_tokens" in html
        assert f'href="jobs/{job_id}/files/output?conn_id={CONN_ID}"' in html
        assert f'href="jobs/{job_id}/files/error?conn_id={CONN_ID}"' in html
        assert "data-cancel=" not in html  # ended: nothing to cancel
        assert "Started</dt><dd>20" in html
        assert "Ended</dt><dd>20" in html
        assert _refresh(html) == 0  # ended: no more refreshes
    # The links resolve (relative to the page) to the download routes, which stream the bytes.
    base = f"/mistral-batch/jobs/{job_id}/files"
    output = api.get(f"{base}/output?conn_id={CONN_ID}", headers=as_user("admin"))
    assert output.status_code == 200
    assert output.content == _download(hook, job.output_file)
    assert output.headers["content-disposition"] == f'attachment; filename="{job_id}-output.jsonl"'
    errors = api.get(f"{base}/error?conn_id={CONN_ID}", headers=as_user("admin"))
    assert errors.content == _download(hook, job.error_file)
    assert b'"q-3"' in errors.content


def test_task_tab_lists_the_jobs_of_each_resubmit_round(
    api: TestClient, as_user: Headers, run_dag: Callable[[str], Any], mistral: RunningEmulator
) -> None:
    mistral.update_config(failing_custom_ids={"t-1"})
    dag_run = run_dag("test_plugin_ui_rounds")
    rounds = xcom_value(dag_run, "rounds", "batch_job_rounds")
    assert [len(ids) for ids in rounds] == [1, 1]
    html = api.get(_tab(dag_run, "rounds"), headers=as_user("admin")).text
    section = html[html.index("data-rounds") : html.index("</section>", html.index("data-rounds"))]
    for number, (job_id,) in enumerate(rounds):
        assert f"Round {number}:" in section
        assert f'<a href="#job-{job_id}" data-jump="job-{job_id}"><code>{job_id}</code></a>' in (
            section
        )
        assert f'<article class="job" id="job-{job_id}" data-job-id="{job_id}">' in html


def test_task_tab_of_a_started_job_refreshes_and_offers_cancel(
    api: TestClient,
    as_user: Headers,
    run_dag: Callable[[str], Any],
    mistral: RunningEmulator,
    hook: MistralBatchHook,
) -> None:
    mistral.update_config(requests_per_second=0.5)
    dag_run = run_dag("test_plugin_ui_started")  # wait_for_completion=False: the job runs on
    job_id = xcom_value(dag_run, "start", "batch_job_id")
    html = api.get(_tab(dag_run, "start"), headers=as_user("user")).text
    assert f'data-job-id="{job_id}"' in html
    assert re.search(r'class="badge (queued|running)" data-status>(QUEUED|RUNNING)<', html)
    assert _refresh(html) == 5
    assert f'data-cancel="jobs/{job_id}/cancel" data-conn-id="{CONN_ID}"' in html
    # The refresh asks for the fragment only: the part the page's script swaps in.
    fragment = api.get(_tab(dag_run, "start") + "?fragment=1", headers=as_user("user")).text
    assert fragment.startswith('<div id="content"')
    assert "<html" not in fragment
    assert f'data-job-id="{job_id}"' in fragment
    # No output yet: the download answers 404, it does not hang or stream nothing.
    missing = api.get(
        f"/mistral-batch/jobs/{job_id}/files/output?conn_id={CONN_ID}", headers=as_user("user")
    )
    assert missing.status_code == 404
    cancel = api.post(
        f"/mistral-batch/jobs/{job_id}/cancel", json={"conn_id": CONN_ID}, headers=as_user("user")
    )
    assert cancel.status_code == 200
    assert cancel.json()["id"] == job_id
    assert hook.get_batch_job(job_id).status in (
        BatchJobStatus.CANCELLATION_REQUESTED,
        BatchJobStatus.CANCELLED,
    )


def test_task_tab_of_a_task_without_a_job_says_so(
    api: TestClient, as_user: Headers, mistral: RunningEmulator
) -> None:
    response = api.get(
        "/mistral-batch/ti/no_dag/no_run/no_task/{MAP_INDEX}", headers=as_user("admin")
    )
    assert response.status_code == 200
    assert "This task instance recorded no Mistral batch job" in response.text
    assert _refresh(response.text) == 0


def test_task_tab_of_a_task_that_failed_on_its_input_says_why(
    api: TestClient, as_user: Headers, mistral: RunningEmulator
) -> None:
    dag = load_dag(Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]), "test_plugin_ui_bad_input")
    dag_run = dag.test()
    assert str(dag_run.state) == "failed"
    html = api.get(_tab(dag_run, "bad"), headers=as_user("viewer")).text
    assert "The task failed before it created a Mistral batch job, on its input" in html
    match = re.search(r"<span class=\"pre-line\" data-input-error>([^<]+)</span>", html)
    assert match, html
    # The operator's own message, naming the problem and where.
    assert "requests[1]: custom_id &#34;twice&#34; repeats" in match.group(1)
    assert "recorded no Mistral batch job" not in html
    assert _refresh(html) == 0
    assert not [request for request in mistral.requests if request.method == "POST"]


def test_jobs_page_lists_jobs_newest_first_with_links_to_their_task(
    api: TestClient, as_user: Headers, hook: MistralBatchHook, mistral: RunningEmulator
) -> None:
    outside = make_job(hook)
    ours = make_job(hook, metadata=TASK_METADATA)
    running = make_running_job(hook, mistral, metadata=TASK_METADATA)
    html = api.get("/mistral-batch/jobs", headers=as_user("admin")).text
    order = [html.index(job.id) for job in (running, ours, outside)]
    assert order == sorted(order)  # newest first
    assert f'<option value="{CONN_ID}" selected>' in html
    run = "dags/some_dag/runs/manual__2026-01-02T03%3A04%3A05%2B00%3A00"
    assert f'<a data-top href="../{run}/tasks/group.ask">' in html
    assert f'<a data-top href="../{run}">DAG run</a>' in html
    assert "outside Airflow" in html
    assert f'data-cancel="jobs/{running.id}/cancel"' in html
    assert f'data-cancel="jobs/{ours.id}/cancel"' not in html  # ended
    assert _refresh(html) == 5  # a job may still change

    only_running = api.get(
        "/mistral-batch/jobs", params={"status": "RUNNING"}, headers=as_user("admin")
    ).text
    assert running.id in only_running
    assert ours.id not in only_running
    assert outside.id not in only_running
    active = api.get("/mistral-batch/jobs?status=active", headers=as_user("admin")).text
    assert running.id in active
    assert ours.id not in active
    ended = api.get("/mistral-batch/jobs?status=SUCCESS", headers=as_user("admin")).text
    assert ours.id in ended
    assert running.id not in ended
    assert _refresh(ended) == 0
    bad = api.get("/mistral-batch/jobs?status=NOPE", headers=as_user("admin"))
    assert bad.status_code == 400


def test_jobs_page_offers_every_mistral_connection_and_no_other(
    api: TestClient,
    as_user: Headers,
    mistral: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    monkeypatch.setenv("AIRFLOW_CONN_SOME_HTTP", '{"conn_type": "http", "host": "http://x"}')
    monkeypatch.setenv("AIRFLOW_CONN_MISTRAL_URI", f"mistral://:key@{mistral.base_url[7:]}")
    # The api-server reads connections from the metadata DB too.
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")
    with create_session() as session:
        session.add(
            Connection(
                conn_id="mistral_in_db",
                conn_type="mistral",
                host=mistral.base_url,
                password=mistral.api_key,
            )
        )
    try:
        html = api.get("/mistral-batch/jobs", headers=as_user("admin")).text
        options = re.findall(r'<option value="([^"]+)"', html)
        conn_options = [option for option in options if option.islower() and "_" in option]
        assert conn_options == ["mistral_default", "mistral_in_db", "mistral_uri"]
        in_db = api.get("/mistral-batch/jobs?conn_id=mistral_in_db", headers=as_user("admin"))
        assert in_db.status_code == 200
        assert '<option value="mistral_in_db" selected>' in in_db.text
    finally:
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id == "mistral_in_db").delete()


def test_jobs_page_without_any_mistral_connection_says_what_to_do(
    api: TestClient, as_user: Headers
) -> None:
    html = api.get("/mistral-batch/jobs", headers=as_user("viewer")).text
    assert "There is no connection of type mistral" in html


def test_jobs_page_pages_through_the_jobs(
    api: TestClient,
    as_user: Headers,
    hook: MistralBatchHook,
    mistral: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_provider_mistral_batch.plugins import app as plugin_app

    made = [make_job(hook, metadata=TASK_METADATA, count=1) for _ in range(3)]
    monkeypatch.setattr(plugin_app, "PAGE_SIZE", 2)
    first = api.get("/mistral-batch/jobs", headers=as_user("admin")).text
    second = api.get("/mistral-batch/jobs?page=1", headers=as_user("admin")).text
    assert made[2].id in first
    assert made[1].id in first
    assert made[0].id not in first
    assert made[0].id in second
    assert made[2].id not in second
    assert "page 1 of 2" in first
    assert "page 2 of 2" in second
    assert f'href="jobs?conn_id={CONN_ID}&amp;status=&amp;page=1">Older' in first


def test_every_url_in_the_pages_is_relative(
    api: TestClient,
    as_user: Headers,
    run_dag: Callable[[str], Any],
    mistral: RunningEmulator,
    hook: MistralBatchHook,
) -> None:
    # Relative URLs are what makes the pages work under a base URL prefix: the browser
    # resolves them against the page's own address, wherever Airflow is mounted.
    mistral.update_config(failing_custom_ids={"q-3"})
    dag_run = run_dag("test_plugin_ui")
    make_running_job(hook, mistral, metadata=TASK_METADATA)
    pages = [
        api.get(_tab(dag_run, "ask"), headers=as_user("admin")).text,
        api.get("/mistral-batch/jobs", headers=as_user("admin")).text,
    ]
    for html in pages:
        parser = _Urls()
        parser.feed(html)
        assert parser.urls
        for tag, name, value in parser.urls:
            assert not value.startswith(("/", "http:", "https:", "//")), (tag, name, value)
    assert '<base href="../../../../">' in pages[0]
    assert '<base href="./">' in pages[1]


def test_task_tab_shows_only_jobs_of_its_dag_run_whatever_the_xcom_says(
    api: TestClient,
    as_user: Headers,
    run_dag: Callable[[str], Any],
    mistral: RunningEmulator,
    hook: MistralBatchHook,
) -> None:
    """Defect 4 of issue 16: a User who may write XCom points the task's job ids at another
    DAG's job and at a job made outside Airflow; the tab lists those as not shown, with the
    reason, and shows nothing of them (status, counts, errors) to a Viewer."""
    dag_run = run_dag("test_plugin_ui")
    own = xcom_value(dag_run, "ask", "batch_job_id")
    other_dag = make_job(hook, metadata=TASK_METADATA)
    outside = make_job(hook)
    forged = [own, other_dag.id, outside.id]
    entries = (
        f"/api/v2/dags/{dag_run.dag_id}/dagRuns/{dag_run.run_id}/taskInstances/ask/xcomEntries"
    )
    user = as_user("user")
    answer = api.patch(f"{entries}/batch_job_ids", json={"value": forged}, headers=user)
    if answer.status_code == 404:  # the task recorded a single id: add the list
        answer = api.post(entries, json={"key": "batch_job_ids", "value": forged}, headers=user)
    assert answer.status_code in (200, 201), answer.text

    if xcom_value(dag_run, "ask", "batch_job_ids") != forged:
        # Airflow 3.1's REST API stores the value as JSON text; a task's push stores the list.
        from airflow.models.xcom import XComModel

        XComModel.set(
            "batch_job_ids", forged, dag_id=dag_run.dag_id, task_id="ask", run_id=dag_run.run_id
        )
    assert xcom_value(dag_run, "ask", "batch_job_ids") == forged
    viewer = api.get(_tab(dag_run, "ask"), headers=as_user("viewer")).text
    assert f'data-job-id="{own}"' in viewer
    assert "data-not-shown" in viewer
    for job_id in (other_dag.id, outside.id):
        assert f'data-job-id="{job_id}"' not in viewer
        assert f"<code>{job_id}</code>:" in viewer
    assert "its metadata names another DAG run than this task&#39;s" in viewer
    assert "it was made outside Airflow" in viewer
    assert viewer.count("data-status") == 1  # the own job's badge only

    # Whoever may edit the connection sees the job made outside Airflow, not the other DAG's.
    admin = api.get(_tab(dag_run, "ask"), headers=as_user("admin")).text
    assert f'data-job-id="{outside.id}"' in admin
    assert f'data-job-id="{other_dag.id}"' not in admin
    assert f"<code>{other_dag.id}</code>:" in admin
