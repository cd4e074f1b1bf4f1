"""The plugin's FastAPI app, mounted by the api-server at ``/mistral-batch``.

Routes (each needs a logged-in Airflow user, see ``plugins/auth.py``):

- ``GET /ti/{dag_id}/{run_id}/{task_id}/{map_index}``: the task instance tab (HTML).
- ``GET /jobs``: the batch jobs of a ``mistral`` connection (HTML).
- ``GET /jobs/{job_id}/files/{output|error}?conn_id=``: a job's file, streamed.
- ``POST /jobs/{job_id}/cancel`` with ``{"conn_id": ...}``: cancel a job (JSON).

Both pages take ``fragment=1`` (the part their script swaps in on refresh). No route takes a
URL or a secret; the only connection input is a connection id, which must name an existing
connection of type ``mistral``.

Every route is async: Mistral is called on the hook's async client through
``plugins/upstream.py`` (bounded, time-limited, shared between viewers), and the short work
that reads Airflow's database (permissions, XCom, connections) runs in the thread pool, so a
slow Mistral server never holds a thread Airflow's own routes need. Every page and message is
masked for the connection's key before it leaves (a server may echo it back).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Final, Literal, ParamSpec, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, status
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from airflow_provider_mistral_batch.connection_form import DEFAULT_CONN_ID
from airflow_provider_mistral_batch.exceptions import (
    MistralAPIError,
    MistralBatchError,
    MistralNotFoundError,
)
from airflow_provider_mistral_batch.models import BatchJob, BatchJobStatus
from airflow_provider_mistral_batch.plugins.auth import Access, AccessDep, same_origin_json
from airflow_provider_mistral_batch.plugins.job_view import format_time, job_view
from airflow_provider_mistral_batch.plugins.lookup import (
    is_mistral_connection,
    mistral_conn_ids,
    parse_map_index,
    task_jobs,
)
from airflow_provider_mistral_batch.plugins.upstream import Mistral, UpstreamBusyError
from airflow_provider_mistral_batch.plugins.views import (
    REFRESH_SECONDS,
    JobCard,
    missing_access,
    render,
    status_options,
)

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
P = ParamSpec("P")
T = TypeVar("T")


async def _db(call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a short call that reads Airflow's database (or a secrets backend) in the pool."""
    return await run_in_threadpool(call, *args, **kwargs)


async def _require_connection(conn_id: str) -> Mistral:
    if not await _db(is_mistral_connection, conn_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No connection {conn_id!r} of type mistral")
    return Mistral(conn_id)


async def _masked_page(mistral: Mistral | None, body: str) -> HTMLResponse:
    """The page, with the connection's key masked wherever a server put it."""
    if mistral is not None:
        body = await mistral.masked(body)
    return HTMLResponse(body, headers={"Cache-Control": "no-store"})


def _http_error(mistral: Mistral, exc: MistralBatchError, *, detailed: bool) -> HTTPException:
    """The answer to a failed Mistral call: 404 for a missing job or file, 409 for a refused
    request, 503 when busy, else 502. Only ``detailed`` answers carry the server's message."""
    if isinstance(exc, MistralNotFoundError):
        code = status.HTTP_404_NOT_FOUND
    elif isinstance(exc, MistralAPIError) and exc.status_code in (400, 409, 422):
        code = status.HTTP_409_CONFLICT
    elif isinstance(exc, UpstreamBusyError):
        code = status.HTTP_503_SERVICE_UNAVAILABLE
    else:
        code = status.HTTP_502_BAD_GATEWAY
    if detailed or isinstance(exc, UpstreamBusyError):
        return HTTPException(code, mistral.mask(str(exc)))
    return HTTPException(code, f"Mistral could not do this through connection {mistral.conn_id!r}")


def _card(access: Access, job: BatchJob, conn_id: str, now: float) -> JobCard:
    missing = access.missing_to_act(job, conn_id)
    return JobCard(job_id=job.id, view=job_view(job, now), can_act=missing is None, needs=missing)


# ------------------------------------------------------------------ task instance tab


async def _read_job(mistral: Mistral, job_id: str) -> BatchJob | str:
    """The job, or what went wrong reading it."""
    try:
        return await mistral.job(job_id)
    except MistralBatchError as exc:
        return f"Could not read the job: {exc}"


async def _with_preview(mistral: Mistral, card: JobCard) -> JobCard:
    """``card`` with the first lines of its job's error file, when it has one."""
    if card.view is None or not card.view.job.error_file:
        return card
    try:
        lines = await mistral.error_preview(card.view.job.error_file)
    except MistralBatchError as exc:
        lines = [f"(could not read the error file: {exc})"]
    return replace(card, error_lines=lines)


def _task_cards(
    access: Access, reads: list[BatchJob | str], job_ids: list[str], at: tuple[str, str, str]
) -> tuple[list[JobCard], list[tuple[str, str]]]:
    """The cards of a task's jobs the tab may show, and the others with the reason."""
    dag_id, run_id, conn_id = at
    now = time.time()
    cards: list[JobCard] = []
    not_shown: list[tuple[str, str]] = []
    for job_id, read in zip(job_ids, reads, strict=True):
        if isinstance(read, str):
            cards.append(JobCard(job_id=job_id, problem=read))
            continue
        reason = access.why_not_on_tab(read, dag_id, run_id, conn_id)
        if reason is None:
            cards.append(_card(access, read, conn_id, now))
        else:
            not_shown.append((job_id, reason))
    return cards, not_shown


@router.get("/ti/{dag_id}/{run_id}/{task_id}/{map_index}", response_class=HTMLResponse)
async def task_instance_tab(
    dag_id: str,
    run_id: str,
    task_id: str,
    map_index: str,
    access: AccessDep,
    fragment: Fragment = False,
) -> HTMLResponse:
    """The jobs of one task instance: status, progress, times, errors, downloads, Cancel.

    The job ids come from the task's XCom, which users with XCom write access may change: a
    job is shown only when its metadata names this DAG run (or, made outside Airflow, to
    those who may edit the connection); the others are listed as not shown, with the reason.
    """
    await _db(access.require_task_jobs, dag_id)
    recorded = await _db(task_jobs, dag_id, run_id, task_id, parse_map_index(map_index))
    conn_id = recorded.conn_id
    mistral: Mistral | None = None
    cards: list[JobCard] = []
    not_shown: list[tuple[str, str]] = []
    problem = None
    if recorded.job_ids and not await _db(is_mistral_connection, conn_id):
        problem = f"The task's connection {conn_id!r} does not exist or is not of type mistral."
    elif recorded.job_ids:
        mistral = Mistral(conn_id)
        reads = await asyncio.gather(*(_read_job(mistral, job_id) for job_id in recorded.job_ids))
        cards, not_shown = await _db(
            _task_cards, access, list(reads), recorded.job_ids, (dag_id, run_id, conn_id)
        )
        cards = list(await asyncio.gather(*(_with_preview(mistral, card) for card in cards)))
    active = any(card.view is not None and card.view.active for card in cards) or (
        not cards and not not_shown and not problem and recorded.state in _UNFINISHED_TASK_STATES
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
        not_shown=not_shown,
        needs=missing_access(cards),
        usage=recorded.usage,
        counts=recorded.counts,
        rounds=recorded.rounds,
        refresh=REFRESH_SECONDS if active else 0,
    )
    return await _masked_page(mistral, body)


# ------------------------------------------------------------------ jobs page


def _listing_cards(access: Access, jobs: list[BatchJob], conn_id: str) -> tuple[list[JobCard], int]:
    """The cards of the jobs the user may see, and how many others there were."""
    now = time.time()
    cards = [_card(access, job, conn_id, now) for job in jobs if access.can_see_job(job, conn_id)]
    return cards, len(jobs) - len(cards)


@router.get("/jobs", response_class=HTMLResponse)
async def jobs_page(
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
    conn_ids = await _db(mistral_conn_ids)
    if conn_id is None:
        conn_id = DEFAULT_CONN_ID if DEFAULT_CONN_ID in conn_ids else next(iter(conn_ids), None)
    mistral: Mistral | None = None
    problem = None
    cards: list[JobCard] = []
    hidden = total = 0
    if conn_id is None:
        problem = "There is no connection of type mistral: add one to see its batch jobs."
    else:
        mistral = await _require_connection(conn_id)
        if conn_id not in conn_ids:  # from a secrets backend that cannot be listed
            conn_ids = sorted([*conn_ids, conn_id])
        statuses: list[BatchJobStatus] | None = None
        if status_filter == "active":
            # The "active" filter: jobs that may still change.
            statuses = list(BatchJobStatus.active())
        elif status_filter:
            statuses = [BatchJobStatus(status_filter)]
        try:
            listing = await mistral.jobs_page(page, PAGE_SIZE, statuses)
        except MistralBatchError as exc:
            problem = f"Could not list the batch jobs of connection {conn_id!r}: {exc}"
        else:
            total = listing.total
            cards, hidden = await _db(_listing_cards, access, listing.data, conn_id)

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
    return await _masked_page(mistral, body)


# ------------------------------------------------------------------ files and cancel


async def _job_to_act_on(access: Access, mistral: Mistral, job_id: str) -> BatchJob:
    """The job, once the user may act on it; the permission is decided before the job is
    read wherever it can be, and a refusal says only what access is missing."""
    conn_id = mistral.conn_id
    if not await _db(access.may_act_on_some_job, conn_id):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"Forbidden: this needs {access.act_needs(conn_id)}"
        )
    manages = await _db(access.can_manage_connection, conn_id)
    try:
        job = await mistral.job(job_id)
    except MistralBatchError as exc:
        raise _http_error(mistral, exc, detailed=manages) from exc
    await _db(access.require_act_on_job, job, conn_id)
    return job


@router.get("/jobs/{job_id}/files/{kind}")
async def download_file(
    job_id: JobId,
    kind: Literal["output", "error"],
    conn_id: ConnId,
    access: AccessDep,
) -> StreamingResponse:
    """A job's output or error file, streamed through the api-server."""
    mistral = await _require_connection(conn_id)
    job = await _job_to_act_on(access, mistral, job_id)
    file_id = job.output_file if kind == "output" else job.error_file
    if not file_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Job {job_id} has no {kind} file (yet)")
    try:
        content = await mistral.download(file_id)
    except MistralBatchError as exc:
        raise _http_error(mistral, exc, detailed=True) from exc
    return StreamingResponse(
        content,
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
async def cancel_job(job_id: JobId, body: CancelBody, access: AccessDep) -> CancelAnswer:
    """Ask Mistral to cancel a job."""
    mistral = await _require_connection(body.conn_id)
    job = await _job_to_act_on(access, mistral, job_id)
    if job.is_terminal:
        raise HTTPException(status.HTTP_409_CONFLICT, f"Job {job_id} already ended ({job.status})")
    try:
        cancelled = await mistral.cancel(job_id)
    except MistralBatchError as exc:
        raise _http_error(mistral, exc, detailed=True) from exc
    return CancelAnswer(id=cancelled.id, status=str(cancelled.status))


def create_app() -> FastAPI:
    """The plugin's app; no OpenAPI or docs routes (every route needs a login)."""
    app = FastAPI(
        title="Mistral batch (Airflow plugin)", openapi_url=None, docs_url=None, redoc_url=None
    )
    app.include_router(router)
    return app


__all__ = ["PAGE_SIZE", "create_app"]
