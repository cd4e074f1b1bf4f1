"""A Viewer in a real browser never meets the API key, even when the server quotes it.

On the real deployment, the ``mistral_hostile`` connection points at tests/hostile_server.py
(a server that echoes the request's ``Authorization`` header in its jobs, files and errors),
and a task of the hostile-server DAG recorded a job of that connection while the server echoed.
A Viewer logs in and opens that task's tab and the connection's jobs page, first while the
server's answers quote the key, then while it refuses with the key in its message: no page
(the top page and the plugin's iframe, HTML and text) and no response the browser received
(headers and bodies) holds the key or a piece of it. Nor does the task's log, or any log file
of the deployment (the api-server's, the scheduler's, the tasks').
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from playwright import sync_api

from tests.hostile_server import (
    CONN_ID,
    KEY,
    ROUTES,
    HostileServer,
    find_key,
    run_hostile_server,
)
from tests.system.browser.conftest import HOSTILE, log_in, shot
from tests.system.deployment.harness import VIEWER_PASSWORD, VIEWER_USER, RunningDeployment

pytestmark = [pytest.mark.browser, pytest.mark.deployment, pytest.mark.integration]

TASK = "watch"


@dataclass(frozen=True)
class HostileRun:
    """A run of the hostile-server DAG, started while the server echoed the key."""

    server: HostileServer
    run_id: str
    job_id: str


@pytest.fixture(scope="module")
def hostile_run(airflow: RunningDeployment) -> Iterator[HostileRun]:
    """The hostile server behind ``mistral_hostile``, and a run of the DAG whose task records
    a job of it (started, not waited for: see :func:`_wait_for`)."""
    api = airflow.api
    with run_hostile_server() as server:
        api.request("POST", "/connections", json={"connection_id": CONN_ID, **server.connection()})
        run_id = f"hostile-{uuid.uuid4().hex[:8]}"
        job_id = f"job-{uuid.uuid4().hex}"
        server.metadata = {
            "airflow_dag_id": HOSTILE,
            "airflow_run_id": run_id,
            "airflow_task_id": TASK,
            "airflow_map_index": "-1",
        }
        server.answer(dict.fromkeys(ROUTES, "echoing"))  # what the task meets
        api.trigger(HOSTILE, run_id, conf={"job_id": job_id})
        yield HostileRun(server, run_id, job_id)


def _wait_for(airflow: RunningDeployment, run: HostileRun) -> None:
    """Wait until the run succeeded with the job recorded; its job then stays RUNNING (the
    pages keep refreshing: more answers to check)."""
    api = airflow.api
    state = api.wait_for_run(HOSTILE, run.run_id, 180)["state"]
    assert state == "success", api.describe_run(HOSTILE, run.run_id)
    assert api.xcom(HOSTILE, run.run_id, TASK, "batch_job_id") == run.job_id
    run.server.job_status = "RUNNING"


class ResponseWatch:
    """Every response a page receives (its frames' too): the key found in any of them."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.leaks: list[str] = []

    def __call__(self, response: Any) -> None:
        self.urls.append(response.url)
        headers = "\n".join(f"{name}: {value}" for name, value in response.all_headers().items())
        try:
            body = response.body()
        except sync_api.Error:  # a redirect has no body
            body = b""
        for part, data in (("headers", headers), ("body", body)):
            found = find_key(data)
            if found is not None:
                self.leaks.append(f"{response.url} ({part}): ...{found}...")


def _key_in_pages(page: Any, step: str) -> list[str]:
    """Where a frame of ``page`` (the top page, the plugin's iframe) shows the key."""
    found_in = []
    for frame in page.frames:
        for what, text in (
            ("HTML", frame.content()),
            ("text", frame.locator("body").inner_text()),
        ):
            found = find_key(text)
            if found is not None:
                found_in.append(f"{step}: {frame.url} ({what}): ...{found}...")
    return found_in


def test_a_viewer_sees_no_key_from_a_server_that_echoes_it(
    airflow: RunningDeployment, hostile_run: HostileRun, page: Any, tmp_path: Path
) -> None:
    base, hostile, job_id = airflow.base_url, hostile_run.server, hostile_run.job_id
    responses = ResponseWatch()
    page.on("response", responses)
    log_in(page, base, VIEWER_USER, VIEWER_PASSWORD)  # while the scheduler runs the task
    _wait_for(airflow, hostile_run)
    hostile.answer(dict.fromkeys(ROUTES, "echoing"))
    leaks: list[str] = []

    # The task's tab: the job, its errors and its error file's lines quote the key.
    tab_url = f"{base}/dags/{HOSTILE}/runs/{hostile_run.run_id}/tasks/{TASK}/plugin/mistral-batch"
    page.goto(tab_url)
    tab = page.frame_locator("iframe[title='Mistral batch']")
    card = tab.locator(f"article[data-job-id='{job_id}']")
    card.locator("[data-status]").filter(has_text="RUNNING").wait_for()
    leaks += _key_in_pages(page, "task tab, echoing server")
    shot(page, tmp_path, "ui-viewer-task-tab-hostile")
    # The server refuses, quoting the key in its message.
    hostile.answer(dict.fromkeys(ROUTES, "message"))
    page.reload()
    card.locator(".problem").wait_for()
    leaks += _key_in_pages(page, "task tab, refusing server")

    # The jobs page of the connection, chosen in its connection list.
    hostile.answer(dict.fromkeys(ROUTES, "echoing"))
    page.goto(f"{base}/plugin/mistral-batch-jobs")
    jobs = page.frame_locator("iframe[title='Mistral batch jobs']")
    jobs.locator("select[name=conn_id]").select_option(CONN_ID)
    jobs.locator("tr[data-job-id='listed-task-job']").wait_for()
    leaks += _key_in_pages(page, "jobs page, echoing server")
    shot(page, tmp_path, "ui-viewer-jobs-page-hostile")
    # Its next refresh (running jobs) meets a gateway's page that quotes the key.
    hostile.answer(dict.fromkeys(ROUTES, "gateway"))
    jobs.locator(".problem").wait_for()
    leaks += _key_in_pages(page, "jobs page, refusing server")

    assert {seen.authorization for seen in hostile.seen} == {f"Bearer {KEY}"}
    plugin_answers = [url for url in responses.urls if "/mistral-batch/" in url]
    assert any("/mistral-batch/ti/" in url for url in plugin_answers), responses.urls
    assert any("fragment=1" in url for url in plugin_answers), plugin_answers
    leaks += responses.leaks
    assert not leaks, "\n".join(leaks)


def test_no_log_of_the_deployment_holds_the_key(
    airflow: RunningDeployment, hostile_run: HostileRun
) -> None:
    """The task met the echoing server (the sensor quotes the first lines of the error file);
    the api-server retries a gateway's 502 page that quotes the key (and logs the retry)."""
    api, base = airflow.api, airflow.base_url
    _wait_for(airflow, hostile_run)
    hostile_run.server.answer(dict.fromkeys(ROUTES, "gateway"))
    login = {"username": VIEWER_USER, "password": VIEWER_PASSWORD}
    token = httpx2.post(f"{base}/auth/token", json=login, timeout=30).json()["access_token"]
    page = httpx2.get(
        f"{base}/mistral-batch/jobs",
        params={"conn_id": CONN_ID},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert page.status_code == 200, page.text[:500]
    assert find_key(page.text) is None

    leaks = []
    # The task's log, as the UI's log page reads it (REST).
    task_log = api.task_log(HOSTILE, hostile_run.run_id, TASK)
    assert "first errors" in task_log, task_log
    found = find_key(task_log)
    if found is not None:
        leaks.append(f"the task's log: ...{found}...")
    # Every log file of the deployment: components (their output) and tasks.
    for path in sorted(airflow.home.rglob("*.log")):
        found = find_key(path.read_text(errors="replace"))
        if found is not None:
            leaks.append(f"{path.relative_to(airflow.home)}: ...{found}...")
    assert not leaks, "\n".join(leaks)
