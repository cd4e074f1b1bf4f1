"""The plugin's FastAPI app, mounted by the api-server at ``/mistral-batch``.

Routes (each needs a logged-in Airflow user, see ``plugins/auth.py``):

- ``GET /ti/{dag_id}/{run_id}/{task_id}/{map_index}``: the task instance tab (HTML).
- ``GET /jobs``: the batch jobs of a ``mistral`` connection (HTML).
- ``GET /jobs/{job_id}/files/{output|error}?conn_id=``: a job's file, streamed.
- ``POST /jobs/{job_id}/cancel`` with ``{"conn_id": ...}``: cancel a job (JSON).

Both pages take ``fragment=1`` (the part their script swaps in on refresh). No route takes a
URL or a secret; the only connection input is a connection id, which must name an existing
connection of type ``mistral``. Mistral is called with the hook, blocking, in FastAPI's
thread pool.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from functools import partial
from typing import Annotated, Final, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, status
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict

from airflow_provider_mistral_batch.exceptions import (
    MistralAPIError,
    MistralBatchError,
    MistralNotFoundError,
)
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook, RetryPolicy
from airflow_provider_mistral_batch.models import BatchJob, BatchJobStatus
from airflow_provider_mistral_batch.plugins.auth import Access, AccessDep, same_origin_json
from airflow_provider_mistral_batch.plugins.downloads import stream_file
from airflow_provider_mistral_batch.plugins.error_preview import PreviewCache
from airflow_provider_mistral_batch.plugins.job_view import format_time, job_view
from airflow_provider_mistral_batch.plugins.lookup import (
    is_mistral_connection,
    mistral_conn_ids,
    parse_map_index,
    task_jobs,
)
from airflow_provider_mistral_batch.plugins.views import (
    ACTIVE_STATUSES,
    REFRESH_SECONDS,
    JobCard,
    missing_access,
    render,
    status_options,
)
from airflow_provider_mistral_batch.utils.connection import DEFAULT_CONN_ID

#: A person waits for these pages: one retry at most, and a short Retry-After.
UI_RETRIES: Final = RetryPolicy(max_attempts=2, initial_wait=0.5, max_wait=2.0, max_retry_after=5)
PAGE_SIZE: Final = 50
#: Task states in which a job may still appear or change: the tab keeps refreshing.
_UNFINISHED_TASK_STATES: Final = frozenset(
    {
        "scheduled",
        "queued",
        "running",
        "deferred",
        "up_for_retry",
        "up_for_reschedule",
        "restarting",
    }
)

JobId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_\-]{1,128}$")]
ConnId = Annotated[str, Query(min_length=1, max_length=250)]
Fragment = Annotated[bool, Query()]

router = APIRouter()
_previews = PreviewCache()


def _hook(conn_id: str) -> MistralBatchHook:
    return MistralBatchHook(conn_id, retry_policy=UI_RETRIES)


def _require_connection(conn_id: str) -> str:
    if not is_mistral_connection(conn_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No connection {conn_id!r} of type mistral")
    return conn_id


def _get_job(hook: MistralBatchHook, job_id: str) -> BatchJob:
    try:
        return hook.get_batch_job(job_id)
    except MistralBatchError as exc:
        raise _http_error(exc) from exc


def _http_error(exc: MistralBatchError) -> HTTPException:
    """The answer to a failed Mistral call: 404 for a missing job or file, else 502."""
    if isinstance(exc, MistralNotFoundError):
        return HTTPException(status.HTTP_404_NOT_FOUND, str(exc))
    if isinstance(exc, MistralAPIError) and exc.status_code in (400, 409, 422):
        return HTTPException(status.HTTP_409_CONFLICT, str(exc))
    return HTTPException(status.HTTP_502_BAD_GATEWAY, str(exc))


def _card(access: Access, job: BatchJob, conn_id: str, now: float) -> JobCard:
    missing = access.missing_to_act(job, conn_id)
    return JobCard(job_id=job.id, view=job_view(job, now), can_act=missing is None, needs=missing)


# ------------------------------------------------------------------ task instance tab


@router.get("/ti/{dag_id}/{run_id}/{task_id}/{map_index}", response_class=HTMLResponse)
def task_instance_tab(
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: str,
    access: AccessDep,
    fragment: Fragment = False,
) -> HTMLResponse:
    """The jobs of one task instance: status, progress, times, errors, downloads, Cancel."""
    access.require_task_jobs(dag_id)
    recorded = task_jobs(dag_id, run_id, task_id, parse_map_index(map_index))
    conn_id = recorded.conn_id
    cards: list[JobCard] = []
    problem = None
    if recorded.job_ids and not is_mistral_connection(conn_id):
        problem = f"The task's connection {conn_id!r} does not exist or is not of type mistral."
    elif recorded.job_ids:
        now = time.time()
        with _hook(conn_id) as hook:
            for job_id in recorded.job_ids:
                try:
                    job = hook.get_batch_job(job_id)
                except MistralBatchError as exc:
                    cards.append(JobCard(job_id=job_id, problem=f"Could not read the job: {exc}"))
                    continue
                card = _card(access, job, conn_id, now)
                if job.error_file:
                    try:
                        lines = _previews.get(hook, conn_id, job.error_file)
                    except MistralBatchError as exc:
                        lines = [f"(could not read the error file: {exc})"]
                    card = replace(card, error_lines=lines)
                cards.append(card)
    active = any(card.view is not None and card.view.active for card in cards) or (
        not cards and not problem and recorded.state in _UNFINISHED_TASK_STATES
    )
    body = render(
        "task_tab.html",
        fragment=fragment,
        base="../" * 4,
        title=f"Mistral batch · {task_id}",
        conn_id=conn_id,
        state=recorded.state,
        updated=format_time(time.time()),
        problem=problem,
        input_error=recorded.input_error,
        cards=cards,
        needs=missing_access(cards),
        usage=recorded.usage,
        refresh=REFRESH_SECONDS if active else 0,
    )
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


# ------------------------------------------------------------------ jobs page


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(
    access: AccessDep,
    conn_id: Annotated[str | None, Query(max_length=250)] = None,
    status_filter: Annotated[str, Query(alias="status", max_length=40)] = "",
    page: Annotated[int, Query(ge=0, le=100_000)] = 0,
    fragment: Fragment = False,
) -> HTMLResponse:
    """The batch jobs of a ``mistral`` connection, newest first, that the user may see."""
    known = {value for value, _ in status_options()}
    if status_filter not in known:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"Unknown status {status_filter!r}")
    conn_ids = mistral_conn_ids()
    if conn_id is None:
        conn_id = DEFAULT_CONN_ID if DEFAULT_CONN_ID in conn_ids else next(iter(conn_ids), None)
    problem = None
    cards: list[JobCard] = []
    hidden = total = 0
    if conn_id is None:
        problem = "There is no connection of type mistral: add one to see its batch jobs."
    elif not is_mistral_connection(conn_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No connection {conn_id!r} of type mistral")
    else:
        if conn_id not in conn_ids:  # from a secrets backend that cannot be listed
            conn_ids = sorted([*conn_ids, conn_id])
        statuses: list[BatchJobStatus] | None = None
        if status_filter == "active":
            statuses = list(ACTIVE_STATUSES)
        elif status_filter:
            statuses = [BatchJobStatus(status_filter)]
        try:
            with _hook(conn_id) as hook:
                listing = hook.list_batch_jobs_page(
                    page=page, page_size=PAGE_SIZE, status=statuses, order_by="-created"
                )
        except MistralBatchError as exc:
            problem = f"Could not list the batch jobs of connection {conn_id!r}: {exc}"
        else:
            total = listing.total
            now = time.time()
            for job in listing.data:
                if access.can_see_job(job, conn_id):
                    cards.append(_card(access, job, conn_id, now))
                else:
                    hidden += 1

    def page_url(number: int) -> str:
        query = {"conn_id": conn_id or "", "status": status_filter, "page": str(number)}
        return "jobs?" + urlencode(query)

    body = render(
        "jobs_page.html",
        fragment=fragment,
        base="./",
        title="Mistral batch jobs",
        conn_ids=conn_ids,
        conn_id=conn_id,
        status=status_filter,
        status_options=status_options(),
        updated=format_time(time.time()),
        problem=problem,
        cards=cards,
        needs=missing_access(cards),
        hidden=hidden,
        total=total,
        page=page,
        pages=max(1, math.ceil(total / PAGE_SIZE)),
        page_url=page_url,
        refresh=REFRESH_SECONDS if any(card.view and card.view.active for card in cards) else 0,
    )
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


# ------------------------------------------------------------------ files and cancel


@router.get("/jobs/{job_id}/files/{kind}")
def download_file(
    job_id: JobId,
    kind: Literal["output", "error"],
    conn_id: ConnId,
    access: AccessDep,
) -> StreamingResponse:
    """A job's output or error file, streamed through the api-server."""
    _require_connection(conn_id)
    with _hook(conn_id) as hook:
        job = _get_job(hook, job_id)
    access.require_act_on_job(job, conn_id)
    file_id = job.output_file if kind == "output" else job.error_file
    if not file_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Job {job_id} has no {kind} file (yet)")
    return StreamingResponse(
        stream_file(partial(_hook, conn_id), file_id),
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{job_id}-{kind}.jsonl"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


class CancelBody(BaseModel):
    """Body of the cancel route."""

    model_config = ConfigDict(extra="forbid")

    conn_id: str


class CancelAnswer(BaseModel):
    """What the cancel route answers: the job's id and status after the request."""

    id: str
    status: str


@router.post("/jobs/{job_id}/cancel", dependencies=[Depends(same_origin_json)])
def cancel_job(job_id: JobId, body: CancelBody, access: AccessDep) -> CancelAnswer:
    """Ask Mistral to cancel a job."""
    conn_id = _require_connection(body.conn_id)
    with _hook(conn_id) as hook:
        job = _get_job(hook, job_id)
        access.require_act_on_job(job, conn_id)
        if job.is_terminal:
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"Job {job_id} already ended ({job.status})"
            )
        try:
            cancelled = hook.cancel_batch_job(job_id)
        except MistralBatchError as exc:
            raise _http_error(exc) from exc
    return CancelAnswer(id=cancelled.id, status=str(cancelled.status))


def create_app() -> FastAPI:
    """The plugin's app; no OpenAPI or docs routes (every route needs a login)."""
    app = FastAPI(
        title="Mistral batch (Airflow plugin)", openapi_url=None, docs_url=None, redoc_url=None
    )
    app.include_router(router)
    return app


__all__ = ["PAGE_SIZE", "UI_RETRIES", "create_app"]
