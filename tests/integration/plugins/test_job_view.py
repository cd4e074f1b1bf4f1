"""What the pages show of a job, computed from the job and the clock (no server)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from airflow_provider_mistral_batch.batch.progress import eta_seconds
from airflow_provider_mistral_batch.plugins import views
from airflow_provider_mistral_batch.plugins.job_view import (
    format_time,
    job_view,
    made_by,
)
from airflow_provider_mistral_batch.plugins.lookup import _env_conn_type, parse_map_index
from airflow_provider_mistral_batch.plugins.views import (
    JobCard,
    missing_access,
    render,
    status_options,
)
from tests.helpers import running_job

STARTED = 1_700_000_100


def test_a_running_job_gets_its_progress_and_an_eta_from_its_average_rate() -> None:
    job = running_job(started_at=STARTED)  # 12,345 of 100,000 done, 40 failed
    now = STARTED + 1_000
    view = job_view(job, now)
    assert view.completed_percent == pytest.approx(12.345)
    assert view.failed_percent == pytest.approx(0.04)
    assert view.succeeded_percent == pytest.approx(12.305)
    # 12,345 in 1,000 s: the 87,655 left take about 7,100 s.
    assert eta_seconds(job, now) == pytest.approx(87_655 * 1_000 / 12_345)
    assert view.eta == "1h58m"
    assert view.duration == "16m"
    assert (view.started, view.ended) == ("2023-11-14 22:15:00 UTC", None)
    assert view.active
    assert view.cancellable
    assert view.status_class == "running"


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "QUEUED", "started_at": None},  # not started
        {"started_at": STARTED, "completed_requests": 0},  # nothing done yet: no rate
        {"started_at": STARTED, "total_requests": 0},  # input not validated
        {"status": "SUCCESS", "started_at": STARTED, "completed_at": STARTED + 5},
    ],
)
def test_no_eta_without_a_rate_or_once_ended(changes: dict[str, object]) -> None:
    job = running_job(**changes)
    assert eta_seconds(job, STARTED + 100) is None
    assert job_view(job, STARTED + 100).eta is None


def test_an_ended_job_shows_how_long_it_ran_and_is_neither_active_nor_cancellable() -> None:
    job = running_job(status="FAILED", started_at=STARTED, completed_at=STARTED + 65)
    view = job_view(job, STARTED + 10_000)
    assert view.duration == "1m"
    assert view.ended == format_time(STARTED + 65)
    assert not view.active
    assert not view.cancellable
    assert view.status_class == "failed"


def test_a_cancellation_in_progress_refreshes_but_offers_no_second_cancel() -> None:
    view = job_view(running_job(status="CANCELLATION_REQUESTED"), STARTED)
    assert view.active
    assert not view.cancellable
    assert view.status_class == "cancellation_requested"


def test_an_unknown_status_is_active_and_styled_as_unknown() -> None:
    view = job_view(running_job(status="PAUSED_BY_MISTRAL"), STARTED)
    assert view.active
    assert view.status_class == "unknown"


def test_the_task_that_made_a_job_and_its_pages_in_airflow() -> None:
    job = running_job(
        metadata={
            "airflow_dag_id": "my_dag",
            "airflow_run_id": "manual__2026-01-02T03:04:05+00:00",
            "airflow_task_id": "group.ask",
            "airflow_map_index": "3",
        }
    )
    task = made_by(job)
    assert task is not None
    run = "dags/my_dag/runs/manual__2026-01-02T03%3A04%3A05%2B00%3A00"
    assert task.run_path == run
    assert task.task_path == f"{run}/tasks/group.ask/mapped/3"
    assert task.label == "my_dag / manual__2026-01-02T03:04:05+00:00 / group.ask[3]"
    unmapped = made_by(running_job(metadata={**(job.metadata or {}), "airflow_map_index": "-1"}))
    assert unmapped is not None
    assert unmapped.task_path.endswith("/tasks/group.ask")


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        {},
        {"airflow_dag_id": "d", "airflow_run_id": "r"},  # no task
        {"airflow_dag_id": "", "airflow_run_id": "r", "airflow_task_id": "t"},
        {"airflow_dag_id": 1, "airflow_run_id": "r", "airflow_task_id": "t"},
    ],
)
def test_a_job_made_outside_airflow_names_no_task(metadata: dict[str, object] | None) -> None:
    assert made_by(running_job(metadata=metadata)) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("{MAP_INDEX}", -1), ("-1", -1), ("0", 0), ("12", 12), ("x", -1), ("", -1), ("1e3", -1)],
)
def test_the_map_index_of_a_tab_url(raw: str, expected: int) -> None:
    assert parse_map_index(raw) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"conn_type": "mistral", "host": "h"}', "mistral"),
        ('{"conn_type": "http"}', "http"),
        ("mistral://:key@127.0.0.1:8787", "mistral"),
        ("google-cloud-platform://", "google_cloud_platform"),
        ("{not json", None),
        ("[1, 2]", None),
    ],
)
def test_the_type_of_a_connection_given_as_an_environment_variable(
    value: str, expected: str | None
) -> None:
    assert _env_conn_type(value) == expected


def _task_tab(card: JobCard, *, fragment: bool = True, counts: dict[str, int] | None = None) -> str:
    return render(
        "task_tab.html",
        fragment=fragment,
        base="./",
        title="t",
        conn_id="mistral_default",
        state="deferred",
        updated="now",
        problem=None,
        input_error=None,
        cards=[card],
        not_shown=[],
        needs=missing_access([card]),
        usage={},
        counts=counts or {},
        rounds=[],
        refresh=5,
    )


def test_the_task_tab_shows_the_rows_of_each_status_that_has_any() -> None:
    job = running_job(status="SUCCESS")
    card = JobCard(job_id=job.id, view=job_view(job, STARTED))
    counts = {
        "success": 1234,
        "error": 2,
        "invalid_output": 3,
        "missing": 0,
        "expired": 4,
        "cancelled": 0,
    }
    html = _task_tab(card, counts=counts)
    match = re.search(
        r"<section class=\"usage\" data-row-counts><h2>Results</h2>\n<p>(.*)</p>", html
    )
    assert match, html
    text = re.sub(r"<[^>]+>", "", match.group(1))
    assert text == "success 1,234 · error 2 · invalid_output 3 · expired 4"
    assert '<strong data-count="invalid_output">3</strong>' in match.group(1)
    # Nothing answered yet: success is shown, at 0; no results written: no section.
    none = _task_tab(card, counts=dict.fromkeys(counts, 0))
    assert re.search(
        r"data-row-counts><h2>Results</h2>\n<p>success <strong[^>]*>0</strong></p>", none
    )
    assert "data-row-counts" not in _task_tab(card)


def test_a_job_being_cancelled_shows_a_disabled_cancelling_button_not_cancel() -> None:
    job = running_job(status="CANCELLATION_REQUESTED")
    card = JobCard(job_id=job.id, view=job_view(job, STARTED), can_act=True)
    html = _task_tab(card)
    assert re.search(r"<button [^>]*disabled\s+data-cancelling>Cancelling…</button>", html)
    assert "data-cancel=" not in html
    running = running_job()
    html = _task_tab(JobCard(job_id=running.id, view=job_view(running, STARTED), can_act=True))
    assert "data-cancel=" in html
    assert "data-cancelling" not in html


def test_the_access_a_viewer_lacks_is_said_once_per_page() -> None:
    needs = "edit access to DAG 'd'"
    cards = [
        JobCard(job_id=job.id, view=job_view(job, STARTED), can_act=False, needs=needs)
        for job in (running_job(id="a1"), running_job(id="b2"))
    ]
    assert missing_access(cards) == [needs]
    html = render(
        "jobs_page.html",
        fragment=True,
        base="./",
        title="t",
        conn_ids=["mistral_default"],
        conn_id="mistral_default",
        status="",
        status_options=status_options(),
        updated="now",
        problem=None,
        cards=cards,
        needs=missing_access(cards),
        hidden=0,
        total=2,
        page=0,
        pages=1,
        page_url=lambda number: f"jobs?page={number}",
        refresh=5,
    )
    assert html.count("needs edit access to DAG &#39;d&#39;") == 1
    assert "data-cancel=" not in html


def test_a_whole_page_carries_its_style_and_script_inline_and_loads_nothing_else() -> None:
    # One self-contained answer: no route serves static files (every route needs a login).
    job = running_job()
    html = _task_tab(
        JobCard(job_id=job.id, view=job_view(job, STARTED), can_act=True), fragment=False
    )
    static = Path(views.__file__).parent / "static"
    assert html.startswith("<!doctype html>\n")
    assert f"<style>\n{(static / 'plugin.css').read_text()}</style>" in html
    assert f"<script>\n{(static / 'plugin.js').read_text()}</script>" in html
    assert not re.search(r"<(link|script|img)\b[^>]*\b(href|src)=", html)
    assert html.count('<div id="content" data-refresh="5">') == 1
