"""A small job page at the path of Mistral's console (``/build/batches/<id>``).

The provider's "Mistral batch job" link points there when its connection is the emulator, so
the link works offline. Like the console it is for a person's browser; unlike the API it asks
for no key (the emulator is a local test server and the page shows no secret).
"""

from __future__ import annotations

import html
import uuid
from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from airflow_provider_mistral_batch.models import BatchJob
from mistral_batch_emulator.deps import State

router = APIRouter()
CONSOLE_JOB_PATH = "/build/batches"


def _when(epoch: int | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _page(title: str, body: str, *, refresh: bool) -> str:
    # A running job's page reloads itself, as a person watching it would.
    meta = '<meta http-equiv="refresh" content="3">' if refresh else ""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'>{meta}<title>{html.escape(title)}"
        "</title><style>body{font-family:sans-serif;margin:2em}td{padding:2px 12px 2px 0}"
        "progress{width:20em}</style></head><body>"
        f"<p>Mistral Batch API emulator</p>{body}</body></html>"
    )


def job_page(job: BatchJob) -> str:
    """The HTML of one job: status, progress, times, files."""
    total = max(job.total_requests, 0)
    rows = [
        ("Status", str(job.status)),
        ("Endpoint", job.endpoint),
        ("Model", job.model or "-"),
        ("Requests", f"{job.completed_requests:,} of {total:,} done"),
        ("Failed", f"{job.failed_requests:,}"),
        ("Created", _when(job.created_at)),
        ("Started", _when(job.started_at)),
        ("Ended", _when(job.completed_at)),
        ("Output file", job.output_file or "-"),
        ("Error file", job.error_file or "-"),
    ]
    table = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{html.escape(value)}</td></tr>"
        for name, value in rows
    )
    bar = f"<progress max='{total}' value='{job.completed_requests}'></progress>" if total else ""
    body = f"<h1>Batch job {html.escape(job.id)}</h1>{bar}<table>{table}</table>"
    return _page(f"Batch job {job.id}", body, refresh=not job.status.is_terminal)


@router.get(CONSOLE_JOB_PATH + "/{job_id}", response_class=HTMLResponse)
async def console_job(job_id: uuid.UUID, state: State) -> HTMLResponse:
    """The job's page, or a 404 page for a job the emulator does not have."""
    record = state.jobs.get(str(job_id))
    if record is None:
        body = f"<h1>No batch job {html.escape(str(job_id))}</h1>"
        return HTMLResponse(_page("Unknown batch job", body, refresh=False), status_code=404)
    return HTMLResponse(job_page(record.to_model()))


__all__ = ["CONSOLE_JOB_PATH", "job_page", "router"]
