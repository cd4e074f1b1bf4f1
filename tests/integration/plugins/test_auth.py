"""Every plugin route against Airflow's own auth: real logins, real tokens, real roles.

The simple auth manager's roles: viewer reads DAGs; user also edits them; op also edits
connections; admin does everything. ``nobody`` is authenticated but has no role.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook
from airflow_provider_mistral_batch.models import BatchJob, BatchJobStatus
from mistral_batch_emulator import RunningEmulator
from tests.integration.plugins.conftest import CONN_ID, TASK_METADATA, make_job, make_running_job

pytestmark = pytest.mark.integration

Headers = Callable[[str], dict[str, str]]


def _routes(job: BatchJob) -> list[tuple[str, str, dict[str, object] | None]]:
    """(method, path, JSON body) of every route, aimed at ``job``."""
    return [
        ("GET", "/mistral-batch/ti/some_dag/some_run/some_task/-1", None),
        ("GET", f"/mistral-batch/jobs?conn_id={CONN_ID}", None),
        ("GET", f"/mistral-batch/jobs/{job.id}/files/output?conn_id={CONN_ID}", None),
        ("GET", f"/mistral-batch/jobs/{job.id}/files/error?conn_id={CONN_ID}", None),
        ("POST", f"/mistral-batch/jobs/{job.id}/cancel", {"conn_id": CONN_ID}),
    ]


def test_every_route_answers_401_without_a_token_and_shows_no_job(
    api: TestClient, hook: MistralBatchHook, mistral: RunningEmulator
) -> None:
    job = make_running_job(hook, mistral, metadata=TASK_METADATA)
    for method, path, body in _routes(job):
        response = api.request(method, path, json=body)
        assert response.status_code == 401, (method, path, response.text)
        assert response.json() == {"detail": "Not authenticated"}
        assert job.id not in response.text
    assert hook.get_batch_job(job.id).status == BatchJobStatus.RUNNING


def test_a_forged_token_or_cookie_is_refused(
    api: TestClient, hook: MistralBatchHook, mistral: RunningEmulator, tokens: dict[str, str]
) -> None:
    job = make_running_job(hook, mistral, metadata=TASK_METADATA)
    header, payload, _signature = tokens["admin"].split(".")
    forged = f"{header}.{payload}.{'A' * 86}"  # an admin's claims, a made-up signature
    for method, path, body in _routes(job):
        response = api.request(
            method, path, json=body, headers={"Authorization": f"Bearer {forged}"}
        )
        # Airflow's own answer to an invalid JWT.
        assert response.status_code == 403, (method, path, response.text)
        assert response.json() == {"detail": "Invalid JWT token"}
        api.cookies.set("_token", forged)
        try:
            response = api.request(method, path, json=body)
        finally:
            api.cookies.clear()
        assert response.status_code == 403, (method, path, response.text)
        assert job.id not in response.text
    assert hook.get_batch_job(job.id).status == BatchJobStatus.RUNNING


def test_the_ui_cookie_logs_the_iframe_in(
    api: TestClient, tokens: dict[str, str], mistral: RunningEmulator
) -> None:
    # What a browser sends inside Airflow's iframe: the `_token` cookie the UI login set.
    api.cookies.set("_token", tokens["viewer"])
    try:
        response = api.get(f"/mistral-batch/jobs?conn_id={CONN_ID}")
    finally:
        api.cookies.clear()
    assert response.status_code == 200
    assert "Mistral batch jobs" in response.text


def test_a_user_without_any_access_gets_403_and_sees_no_job(
    api: TestClient, as_user: Headers, hook: MistralBatchHook, mistral: RunningEmulator
) -> None:
    job = make_running_job(hook, mistral, metadata=TASK_METADATA)
    nobody = as_user("nobody")
    tab = api.get("/mistral-batch/ti/some_dag/some_run/some_task/-1", headers=nobody)
    assert tab.status_code == 403
    for kind in ("output", "error"):
        download = api.get(
            f"/mistral-batch/jobs/{job.id}/files/{kind}?conn_id={CONN_ID}", headers=nobody
        )
        assert download.status_code == 403
    cancel = api.post(
        f"/mistral-batch/jobs/{job.id}/cancel", json={"conn_id": CONN_ID}, headers=nobody
    )
    assert cancel.status_code == 403
    # Refused before the job is read: the answer names what it takes, nothing of the job.
    assert cancel.json()["detail"] == (
        f"Forbidden: this needs edit access to the job's DAG, or to connection '{CONN_ID}'"
    )
    # The list itself is open to any logged-in user, but shows only jobs they may see.
    page = api.get(f"/mistral-batch/jobs?conn_id={CONN_ID}", headers=nobody)
    assert page.status_code == 200
    assert job.id not in page.text
    assert "1 job(s) of this page are not shown" in page.text
    assert hook.get_batch_job(job.id).status == BatchJobStatus.RUNNING


@pytest.mark.parametrize("job_id", ["made-up-job-id", None])
def test_a_viewer_is_refused_before_the_job_is_read(
    api: TestClient,
    as_user: Headers,
    hook: MistralBatchHook,
    mistral: RunningEmulator,
    job_id: str | None,
) -> None:
    """Defect 2 of issue 16: a Viewer (edit access to nothing) asking to cancel or download
    any job id gets 403 before Mistral is asked, not the server's answer about the job."""
    job_id = job_id or make_running_job(hook, mistral, metadata=TASK_METADATA).id
    viewer = as_user("viewer")
    before = len(mistral.requests)
    answers = [
        api.post(f"/mistral-batch/jobs/{job_id}/cancel", json={"conn_id": CONN_ID}, headers=viewer),
        api.get(f"/mistral-batch/jobs/{job_id}/files/output?conn_id={CONN_ID}", headers=viewer),
        api.get(f"/mistral-batch/jobs/{job_id}/files/error?conn_id={CONN_ID}", headers=viewer),
    ]
    for answer in answers:
        assert answer.status_code == 403, answer.text
        assert answer.json()["detail"].startswith("Forbidden: this needs edit access")
        assert "not found" not in answer.text
    assert [r.path for r in mistral.requests[before:] if job_id in r.path] == []


def test_a_viewer_reads_but_may_not_download_or_cancel(
    api: TestClient, as_user: Headers, hook: MistralBatchHook, mistral: RunningEmulator
) -> None:
    ended = make_job(hook, metadata=TASK_METADATA)
    running = make_running_job(hook, mistral, metadata=TASK_METADATA)
    viewer = as_user("viewer")
    assert api.get("/mistral-batch/ti/some_dag/r/t/-1", headers=viewer).status_code == 200
    page = api.get(f"/mistral-batch/jobs?conn_id={CONN_ID}", headers=viewer)
    assert page.status_code == 200
    assert ended.id in page.text
    assert running.id in page.text
    assert "/files/" not in page.text
    assert "data-cancel=" not in page.text
    # Said once for the page, not on each of its two rows.
    assert page.text.count("needs edit access to DAG &#39;some_dag&#39;") == 1
    assert page.text.count("data-needs") == 1
    download = api.get(
        f"/mistral-batch/jobs/{ended.id}/files/output?conn_id={CONN_ID}", headers=viewer
    )
    assert download.status_code == 403
    cancel = api.post(
        f"/mistral-batch/jobs/{running.id}/cancel", json={"conn_id": CONN_ID}, headers=viewer
    )
    assert cancel.status_code == 403
    assert hook.get_batch_job(running.id).status == BatchJobStatus.RUNNING


def test_editing_the_dag_allows_its_jobs_but_not_jobs_made_outside_airflow(
    api: TestClient, as_user: Headers, hook: MistralBatchHook, mistral: RunningEmulator
) -> None:
    ours = make_job(hook, metadata=TASK_METADATA)
    outside = make_job(hook)
    user = as_user("user")
    ok = api.get(f"/mistral-batch/jobs/{ours.id}/files/output?conn_id={CONN_ID}", headers=user)
    assert ok.status_code == 200
    refused = api.get(
        f"/mistral-batch/jobs/{outside.id}/files/output?conn_id={CONN_ID}", headers=user
    )
    assert refused.status_code == 403
    # A job the user may not see is refused without a word about it.
    assert refused.json()["detail"] == "Forbidden"
    page = api.get(f"/mistral-batch/jobs?conn_id={CONN_ID}", headers=user)
    assert ours.id in page.text
    assert outside.id not in page.text
    # Whoever may edit the connection (op, admin) may act on the workspace's other jobs.
    for name in ("op", "admin"):
        allowed = api.get(
            f"/mistral-batch/jobs/{outside.id}/files/output?conn_id={CONN_ID}",
            headers=as_user(name),
        )
        assert allowed.status_code == 200, name
        assert outside.id in api.get("/mistral-batch/jobs", headers=as_user(name)).text


def test_cancel_refuses_what_a_cross_site_page_could_send(
    api: TestClient, as_user: Headers, hook: MistralBatchHook, mistral: RunningEmulator
) -> None:
    job = make_running_job(hook, mistral, metadata=TASK_METADATA)
    admin = as_user("admin")
    url = f"/mistral-batch/jobs/{job.id}/cancel"
    form = api.post(url, data={"conn_id": CONN_ID}, headers=admin)
    assert form.status_code == 415
    text = api.post(
        url,
        content=f'{{"conn_id": "{CONN_ID}"}}',
        headers={**admin, "Content-Type": "text/plain"},
    )
    assert text.status_code == 415
    cross_site = api.post(
        url, json={"conn_id": CONN_ID}, headers={**admin, "Sec-Fetch-Site": "cross-site"}
    )
    assert cross_site.status_code == 403
    assert hook.get_batch_job(job.id).status == BatchJobStatus.RUNNING
    same_origin = api.post(
        url, json={"conn_id": CONN_ID}, headers={**admin, "Sec-Fetch-Site": "same-origin"}
    )
    assert same_origin.status_code == 200


def test_no_route_takes_another_connection_type_or_an_unknown_one(
    api: TestClient,
    as_user: Headers,
    hook: MistralBatchHook,
    mistral: RunningEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = make_job(hook, metadata=TASK_METADATA)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SOME_HTTP", '{"conn_type": "http", "host": "http://127.0.0.1:9"}'
    )
    admin = as_user("admin")
    for conn_id in ("some_http", "does_not_exist", "../etc", "x" * 300):
        page = api.get("/mistral-batch/jobs", params={"conn_id": conn_id}, headers=admin)
        assert page.status_code in (404, 422), conn_id
        download = api.get(
            f"/mistral-batch/jobs/{job.id}/files/output", params={"conn_id": conn_id}, headers=admin
        )
        assert download.status_code in (404, 422), conn_id
        cancel = api.post(
            f"/mistral-batch/jobs/{job.id}/cancel", json={"conn_id": conn_id}, headers=admin
        )
        assert cancel.status_code in (404, 422), conn_id
