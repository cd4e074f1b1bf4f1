"""The Mistral batch views in a real browser: headless Chromium (the OS package) driven by
playwright, against a real Airflow deployment (tests/deployment/harness.py) and the emulator.

It logs in through Airflow's login page, opens the task instance tab and the jobs page as
Airflow shows them (in its sandboxed iframe), downloads an output file, follows a link into
Airflow's UI, cancels a running job, and checks that every plugin route refuses a request
without a login. Screenshots go to the test's temporary folder (``MISTRAL_UI_SCREENSHOTS``
copies them elsewhere, e.g. ``docs/``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.deployment.harness import ADMIN_PASSWORD, ADMIN_USER, RunningDeployment, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.deployment, pytest.mark.integration]

# Both are installed by scripts/test.sh: a missing one is an error, never a silent skip.
from playwright import sync_api  # noqa: E402  (the dev extra)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    raise RuntimeError(
        "the browser tests need Chromium from the OS packages: apt-get install chromium"
    )

REPO = Path(__file__).resolve().parents[2]
CHAT = "example_mistral_batch_chat"
TASK = "answer_questions"
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDeployment]:
    from tests.deployment.harness import running_deployment

    home = tmp_path_factory.mktemp("airflow-ui")
    (home / "results").mkdir()
    env = {
        "MISTRAL_EXAMPLE_RESULTS": f"file://{home}/results",
        "MISTRAL_EXAMPLE_POLL_SECONDS": "1",
    }
    with running_deployment(home, [REPO / "example_dags"], [CHAT], extra_env=env) as running:
        yield running


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(
            accept_downloads=True, viewport={"width": 1400, "height": 900}
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def _shot(page: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path))
    target = os.environ.get("MISTRAL_UI_SCREENSHOTS")
    if target:
        shutil.copy(path, Path(target) / path.name)


def _log_in(page: Any, base_url: str) -> None:
    page.goto(f"{base_url}/")
    page.locator("input[name=username]").fill(ADMIN_USER)
    page.locator("input[name=password]").fill(ADMIN_PASSWORD)
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"^(?!.*/auth/).*$"))


def _finished_and_running_runs(airflow: RunningDeployment) -> tuple[str, str]:
    api = airflow.api
    finished = api.trigger(CHAT)
    run = api.wait_for_run(CHAT, finished, 180)
    assert run["state"] == "success", api.describe_run(CHAT, finished)
    airflow.hold_jobs()
    running = api.trigger(CHAT)
    airflow.wait_until_deferred(CHAT, running, TASK)
    return finished, running


def test_the_tab_and_the_jobs_page_in_a_browser(
    airflow: RunningDeployment, page: Any, tmp_path: Path
) -> None:
    api, base = airflow.api, airflow.base_url
    finished, running = _finished_and_running_runs(airflow)
    done_id = api.xcom(CHAT, finished, TASK, "batch_job_id")
    running_id = api.xcom(CHAT, running, TASK, "batch_job_id")
    output_file = airflow.mistral_job(done_id)["output_file"]

    # Every plugin route refuses a request without a login, and shows no job.
    for path in (
        f"/mistral-batch/ti/{CHAT}/{finished}/{TASK}/-1",
        "/mistral-batch/jobs",
        f"/mistral-batch/jobs/{done_id}/files/output?conn_id=mistral_default",
    ):
        response = httpx2.get(f"{base}{path}", timeout=30)
        assert response.status_code == 401, path
        assert done_id not in response.text
    cancel = httpx2.post(
        f"{base}/mistral-batch/jobs/{running_id}/cancel",
        json={"conn_id": "mistral_default"},
        timeout=30,
    )
    assert cancel.status_code == 401

    _log_in(page, base)

    # The task instance tab of the finished run, inside Airflow's iframe.
    page.goto(f"{base}/dags/{CHAT}/runs/{finished}/tasks/{TASK}/plugin/mistral-batch")
    tab = page.frame_locator("iframe[title='Mistral batch']")
    job = tab.locator(f"article[data-job-id='{done_id}']")
    job.locator("[data-status]").filter(has_text="SUCCESS").wait_for()
    assert job.locator("[data-counts]").inner_text() == "5 / 5"
    assert "Token usage" in tab.locator("body").inner_text()
    _shot(page, tmp_path, "ui-task-tab")

    # Download the output file from inside the iframe (sandboxed: no downloads on 3.1).
    with page.expect_download() as download_info:
        job.get_by_text("Download output").click()
    download = download_info.value
    saved = tmp_path / "output.jsonl"
    download.save_as(saved)
    expected = httpx2.get(
        f"{airflow.emulator.base_url}/v1/files/{output_file}/content",
        headers={"Authorization": f"Bearer {airflow.emulator.api_key}"},
        timeout=30,
    ).content
    assert saved.read_bytes() == expected

    # The running job's tab refreshes by itself and shows the job as it is.
    page.goto(f"{base}/dags/{CHAT}/runs/{running}/tasks/{TASK}/plugin/mistral-batch")
    tab = page.frame_locator("iframe[title='Mistral batch']")
    tab.locator(f"article[data-job-id='{running_id}'] [data-status]").filter(
        has_text="RUNNING"
    ).wait_for()
    assert tab.locator("#content").get_attribute("data-refresh") == "5"
    # ...without a reload: the script swaps in a fresh copy every 5 s (its time changes).
    first = tab.locator("[data-updated]").inner_text()
    page_url = page.url
    wait_for(
        lambda: tab.locator("[data-updated]").inner_text() != first,
        timeout=30,
        what="the tab to refresh itself",
    )
    assert page.url == page_url

    # The jobs page: both jobs, newest first, with links to the run and task that made them.
    page.goto(f"{base}/plugin/mistral-batch-jobs")
    jobs = page.frame_locator("iframe[title='Mistral batch jobs']")
    jobs.locator(f"tr[data-job-id='{running_id}']").wait_for()
    ids = [row.get_attribute("data-job-id") for row in jobs.locator("tr[data-job-id]").all()]
    assert ids[:2] == [running_id, done_id]
    run_link = jobs.locator(f"tr[data-job-id='{done_id}']").get_by_text("DAG run")
    assert run_link.get_attribute("href") == f"../dags/{CHAT}/runs/{_quoted(finished)}"
    _shot(page, tmp_path, "ui-jobs-page")

    # Cancel the running job: two clicks (the sandbox blocks confirm dialogs).
    button = jobs.locator(f"tr[data-job-id='{running_id}'] button[data-cancel]")
    button.click()
    button.click()
    wait_for(
        lambda: (
            airflow.mistral_job(running_id)["status"] in ("CANCELLATION_REQUESTED", "CANCELLED")
        ),
        timeout=30,
        what="the running job to be cancelled",
    )
    jobs.locator("#message").filter(has_text="Cancellation requested").wait_for()

    # A link into Airflow's UI opens in the whole window, not inside the iframe.
    jobs.locator(f"tr[data-job-id='{done_id}']").get_by_text("DAG run").click()
    page.wait_for_url(re.compile(rf"/dags/{CHAT}/runs/"))
    assert "/plugin/" not in page.url
    airflow.release_jobs()


def _quoted(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")
