"""No plugin answer carries the API key, whatever the server behind the connection says.

The ``mistral_hostile`` connection points at tests/hostile_server.py, a server that quotes the
request's ``Authorization`` header in its errors (JSON ``message``, ``detail``, plain text, the
bare key, a validation error, a 404, a gateway's page) and in its jobs and files. Every plugin
route (task tab, jobs page, their fragments, downloads, cancel) is asked as an admin and as a
Viewer, in Airflow's api-server app; no body, no header and nothing the api-server logs
meanwhile may hold the key or a piece of it.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient

from mistral_batch_emulator.dagtest import load_dag, task_states, xcom_value
from tests.hostile_server import (
    CONN_ID,
    ERROR_SHAPES,
    KEY,
    ROUTES,
    HostileServer,
    find_key,
    run_hostile_server,
)

pytestmark = pytest.mark.integration

Headers = Callable[[str], dict[str, str]]

DAG_ID = "test_plugin_hostile_server"  # tests/integration/plugins/dag_files/plugin_hostile_dag.py
TASK_ID = "watch"
USERS = ("admin", "viewer")

#: What the server answers on each route, by case: echoing success answers, an error shape on
#: every route, or readable jobs with that error on the file and cancel routes (behind a read).
CASES: dict[str, dict[str, str]] = {
    "echoing": dict.fromkeys(ROUTES, "echoing"),
    **{shape: dict.fromkeys(ROUTES, shape) for shape in ERROR_SHAPES},
    **{
        f"{shape}-on-files-and-cancel": {
            "list": "clean",
            "job": "clean",
            "content": shape,
            "cancel": shape,
        }
        for shape in ERROR_SHAPES
    },
}


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[HostileServer]:
    with run_hostile_server() as server:
        yield server


@pytest.fixture
def hostile(hostile_server: HostileServer, monkeypatch: pytest.MonkeyPatch) -> HostileServer:
    """The server, answering clean; the ``mistral_hostile`` connection with :data:`KEY`."""
    hostile_server.reset()
    connection = json.dumps(hostile_server.connection())
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", connection)
    return hostile_server


@pytest.fixture
def client(api: TestClient) -> TestClient:
    """Airflow's app as a browser meets it: an error in the app is an answer (a 500, or a
    download cut short), not an exception in the test."""
    return TestClient(api.app, base_url=str(api.base_url), raise_server_exceptions=False)


@pytest.fixture
def task_job(api: TestClient, hostile: HostileServer) -> tuple[str, str]:
    """(run id, job id) of a fresh run of the sensor DAG, whose task recorded a new job of
    the hostile connection; the server then names that task in the job's metadata and keeps
    the job RUNNING (so Cancel reaches the server)."""
    job_id = f"job-{uuid.uuid4().hex}"
    dag = load_dag(Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]), DAG_ID)
    dag_run = dag.test(run_conf={"job_id": job_id})
    assert str(dag_run.state) == "success", task_states(dag_run)
    assert xcom_value(dag_run, TASK_ID, "batch_job_id") == job_id
    hostile.metadata = {
        "airflow_dag_id": DAG_ID,
        "airflow_run_id": dag_run.run_id,
        "airflow_task_id": TASK_ID,
        "airflow_map_index": "-1",
    }
    hostile.job_status = "RUNNING"
    return dag_run.run_id, job_id


def _routes(run_id: str, job_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    """(method, path, JSON body) of every plugin route, aimed at the task's job."""
    tab = f"/mistral-batch/ti/{DAG_ID}/{run_id}/{TASK_ID}/-1"
    jobs = f"/mistral-batch/jobs?conn_id={CONN_ID}"
    files = f"/mistral-batch/jobs/{job_id}/files"
    return [
        ("GET", tab, None),
        ("GET", f"{tab}?fragment=1", None),
        ("GET", jobs, None),
        ("GET", f"{jobs}&fragment=1", None),
        ("GET", f"{files}/output?conn_id={CONN_ID}", None),
        ("GET", f"{files}/error?conn_id={CONN_ID}", None),
        ("POST", f"/mistral-batch/jobs/{job_id}/cancel", {"conn_id": CONN_ID}),
    ]


def _is_file(response: httpx2.Response) -> bool:
    """Whether the answer is a downloaded file (its bytes are the next test's concern)."""
    return response.status_code == 200 and "attachment" in response.headers.get(
        "content-disposition", ""
    )


def key_in(response: httpx2.Response, *, body: bool = True) -> str | None:
    """Where ``response`` holds the key (a header, or with ``body`` the body), with the text
    around it; None when it does not."""
    headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
    found = find_key(headers)
    if found is not None:
        return f"in a header: ...{found}..."
    found = find_key(response.content) if body else None
    return f"in the body: ...{found}..." if found is not None else None


@pytest.mark.parametrize("case", list(CASES))
def test_no_page_or_answer_carries_the_key(
    case: str,
    client: TestClient,
    as_user: Headers,
    hostile: HostileServer,
    task_job: tuple[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    run_id, job_id = task_job
    hostile.answer(CASES[case])
    hostile.seen.clear()
    caplog.clear()
    caplog.set_level(logging.INFO)
    leaks = []
    for user in USERS:
        for method, path, body in _routes(run_id, job_id):
            response = client.request(method, path, json=body, headers=as_user(user))
            where = f"{user} {method} {path} -> HTTP {response.status_code}"
            assert response.status_code != 500, f"{where}: {response.text[:500]}"
            found = key_in(response, body=not _is_file(response))
            if found is not None:
                leaks.append(f"{where}: the API key {found}")
    # ...nor what the api-server logged meanwhile (tracebacks included).
    found = find_key(caplog.text)
    if found is not None:
        leaks.append(f"the api-server's log: ...{found}...")
    assert not leaks, "\n".join(leaks)
    # The server was asked with the key, and quoted it: the pages had it to show.
    assert {seen.authorization for seen in hostile.seen} == {f"Bearer {KEY}"}
    asked = {(seen.method, seen.path) for seen in hostile.seen}
    assert ("GET", "/v1/batch/jobs") in asked
    assert ("GET", f"/v1/batch/jobs/{job_id}") in asked


def test_a_downloaded_file_that_quotes_the_key_arrives_without_it(
    client: TestClient,
    as_user: Headers,
    hostile: HostileServer,
    task_job: tuple[str, str],
) -> None:
    """The output and error files, streamed through the api-server, as an admin gets them
    (a Viewer may not download): a line that quotes the key arrives without it."""
    _run_id, job_id = task_job
    hostile.answer(dict.fromkeys(ROUTES, "echoing"))
    for kind in ("output", "error"):
        path = f"/mistral-batch/jobs/{job_id}/files/{kind}?conn_id={CONN_ID}"
        response = client.get(path, headers=as_user("admin"))
        assert response.status_code == 200, response.text[:500]
        assert response.content  # the file, not an empty answer
        found = key_in(response)
        assert found is None, f"{kind} file: the API key {found}"
