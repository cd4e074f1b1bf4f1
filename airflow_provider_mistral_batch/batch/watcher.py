"""One job reader per event loop and connection, shared by every trigger that waits on a job.

A triggerer may run thousands of :class:`~airflow_provider_mistral_batch.triggers.batch.
MistralBatchJobTrigger` s, each driving its own waiting core
(:class:`~airflow_provider_mistral_batch.batch.waiting.JobWatch`). They read their jobs through
the :class:`SharedJobWatcher` of their loop and connection, which decides how:

- few jobs watched (fewer than :data:`LIST_MIN_JOBS`): each read is a GET of the job, after
  the trigger's own sleep, exactly as a trigger alone would poll;
- many jobs: reads wait for the next *sweep*, one listing of the workspace's active jobs
  (:meth:`~airflow_provider_mistral_batch.models.BatchJobStatus.active`), its pages fetched
  a few at a time. A job in the listing is answered with its listed snapshot; only jobs
  missing from it (they ended, or were never listed) are read with a GET of their own: a job
  is only ever seen ended in its own GET, never inferred from a listing.

Sweeps run as often as the shortest poll interval among the reads waiting (at least every
:data:`MIN_SWEEP_GAP`); each serves the reads due within half that interval. Answers are
handed out a chunk at a time, so thousands of triggers never wake in one loop iteration.

When listing fails (an HTTP error, no answer within :data:`LIST_TIME_LIMIT`, a body that does
not parse, pages that never end or cost more calls than reading each job), the sweep is the
watcher's problem, not the triggers': the reads it served take the jobs it did list, the others
read their own job with a GET when due. Until listing is tried again (after
:func:`list_retry_delay`: exponential, capped, with jitter) every read is a GET after the
trigger's own sleep. One warning says that sweeping stopped, why and when it is tried again;
one info line says when it works again.

The watcher holds no state a trigger needs across a restart. Answers are jobs or the error the
job's own GET raised, so a trigger's count of failed polls only ever counts reads of its own job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from airflow_provider_mistral_batch.exceptions import describe_error
from airflow_provider_mistral_batch.models import BatchJob, BatchJobList, BatchJobStatus

if TYPE_CHECKING:
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook

#: From this many jobs watched on one connection, reads are answered by sweeps.
LIST_MIN_JOBS: Final = 20
#: Jobs per page of a sweep.
PAGE_SIZE: Final = 100
#: The shortest time between two sweeps (seconds).
MIN_SWEEP_GAP: Final = 1.0
#: How long a read that wants an answer now waits for others to share its sweep (seconds).
COALESCE_SECONDS: Final = 0.2
#: Pages of one sweep fetched at once, and GETs of jobs missing from a sweep at once.
LIST_CONCURRENCY: Final = 8
GET_CONCURRENCY: Final = 50
#: Answers handed out per loop iteration.
DELIVERY_CHUNK: Final = 100
#: The connection (API key, base URL) is looked up again after this many seconds.
HOOK_TTL_SECONDS: Final = 300.0
#: A listing that has not ended after this many seconds (or half the sweep interval, if
#: longer) failed.
LIST_TIME_LIMIT: Final = 10.0
#: After a failed listing, the next try waits this long, doubled after each failure in a row
#: up to :data:`LIST_RETRY_MAX` (seconds), each wait within +-:data:`LIST_RETRY_JITTER`.
LIST_RETRY_FIRST: Final = 30.0
LIST_RETRY_MAX: Final = 600.0
LIST_RETRY_JITTER: Final = 0.2

Answer = BatchJob | BaseException

log = logging.getLogger(__name__)


class ListingError(Exception):
    """The listing answered, but not in a way a sweep can use (pages that never end)."""


class _OwnRead:
    """The answer to a read that the sweep could not serve: read the job with its own GET."""


_OWN_READ: Final = _OwnRead()


def list_retry_delay(failures: int, rand: float) -> float:
    """Seconds before listing is tried again after ``failures`` (from 1) failed listings in a
    row; ``rand``, a random number in [0, 1), gives the jitter."""
    base = min(LIST_RETRY_MAX, LIST_RETRY_FIRST * 2.0 ** min(failures - 1, 30))
    return base * (1.0 + LIST_RETRY_JITTER * (2.0 * rand - 1.0))


@dataclass(eq=False, slots=True)
class _Read:
    """One trigger's wait for a sweep's answer about one job."""

    job_id: str
    asked: float  # monotonic
    due: float  # monotonic; for a read now, when asked
    period: float  # the trigger's poll interval; inf for a read now
    now: bool
    answer: asyncio.Future[Answer | _OwnRead] = field(repr=False)


class SharedJobWatcher:
    """Reads jobs of one connection for every trigger of one event loop (see the module).

    :param conn_id: the Airflow connection id.
    :param make_hook: makes the hook (the connection is looked up on its first call).
    :param list_min_jobs: jobs watched from which sweeps answer the reads.
    :param page_size: jobs per page of a sweep.
    """

    def __init__(
        self,
        conn_id: str,
        make_hook: Callable[[], MistralBatchHook],
        *,
        list_min_jobs: int = LIST_MIN_JOBS,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.conn_id = conn_id
        self.list_min_jobs = list_min_jobs
        self.page_size = page_size
        self._make_hook = make_hook
        self._hook = make_hook()
        self._hook_made = time.monotonic()
        self._watched: dict[str, int] = {}
        self._created: dict[str, int] = {}
        self._reads: set[_Read] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._planned = math.inf
        self._last_sweep = -math.inf
        self._list_failures = 0  # failed listings in a row
        self._list_retry_at = -math.inf  # monotonic: no sweep before this
        self._fetching: dict[str, asyncio.Task[None]] = {}
        self._get_limit = asyncio.Semaphore(GET_CONCURRENCY)

    # ---------------------------------------------------------------- who is watched

    @property
    def hook(self) -> MistralBatchHook:
        """The hook of the connection, made again every :data:`HOOK_TTL_SECONDS` (a rotated
        API key is picked up without restarting the triggerer)."""
        if time.monotonic() - self._hook_made > HOOK_TTL_SECONDS:
            self._hook = self._make_hook()
            self._hook_made = time.monotonic()
        return self._hook

    @contextlib.contextmanager
    def watching(self, job_ids: Iterable[str]) -> Iterator[SharedJobWatcher]:
        """Count ``job_ids`` as watched while the block runs (it decides few or many)."""
        ids = list(job_ids)
        for job_id in ids:
            self._watched[job_id] = self._watched.get(job_id, 0) + 1
        try:
            yield self
        finally:
            for job_id in ids:
                left = self._watched[job_id] - 1
                if left:
                    self._watched[job_id] = left
                else:
                    del self._watched[job_id]
                    self._created.pop(job_id, None)
            if not self._watched:
                _forget(self)

    @property
    def watched_count(self) -> int:
        """How many distinct jobs are watched through this watcher."""
        return len(self._watched)

    def _sweeping(self) -> bool:
        """Whether sweeps answer reads: many jobs, and listing is not waiting to be tried
        again after a failure."""
        return len(self._watched) >= self.list_min_jobs and time.monotonic() >= self._list_retry_at

    # ---------------------------------------------------------------- reads

    async def read(self, job_id: str) -> Answer:
        """The job now (the first read of a wait): its GET, or its snapshot in a sweep that
        starts within :data:`COALESCE_SECONDS` (a second after the last one at most)."""
        if not self._sweeping() or job_id not in self._watched:
            return await self._get(job_id)
        return await self._read_in_sweep(job_id, 0.0, math.inf, now=True)

    async def read_after(
        self, job_id: str, seconds: float, *, period: float, deadline: float | None
    ) -> Answer:
        """The job about ``seconds`` from now.

        :param period: the trigger's poll interval now; a sweep may answer up to half of it
            early or late.
        :param deadline: the trigger's deadline (epoch seconds): a read that could be answered
            after it sleeps and reads the job itself instead.
        """
        late = deadline is not None and deadline - time.time() < seconds + period / 2
        if late or not self._sweeping() or job_id not in self._watched:
            await asyncio.sleep(seconds)
            return await self._get(job_id)
        return await self._read_in_sweep(job_id, seconds, period, now=False)

    async def _get(self, job_id: str) -> Answer:
        try:
            job = await self.hook.aget_batch_job(job_id)
        except Exception as exc:  # the waiting core tells a blip from a lasting failure
            return exc
        self._note(job)
        return job

    def _note(self, job: BatchJob) -> None:
        if job.id in self._watched:
            self._created[job.id] = job.created_at

    async def _read_in_sweep(
        self, job_id: str, seconds: float, period: float, *, now: bool
    ) -> Answer:
        asked = time.monotonic()
        read = _Read(
            job_id, asked, asked + seconds, period, now, asyncio.get_running_loop().create_future()
        )
        self._reads.add(read)
        self._plan(read)
        try:
            answer = await read.answer
        finally:
            self._reads.discard(read)
        if isinstance(answer, _OwnRead):  # no sweep for this read: read the job when due
            await asyncio.sleep(max(0.0, read.due - time.monotonic()))
            return await self._get(job_id)
        return answer

    # ---------------------------------------------------------------- sweeps

    def _plan(self, read: _Read) -> None:
        """Start the sweeper, or wake it when this read may need an earlier sweep."""
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_loop())
            return
        earliest = read.asked + COALESCE_SECONDS if read.now else read.due - read.period / 2
        if earliest < self._planned:
            self._wake.set()

    def _gap(self) -> float:
        periods = [read.period for read in self._reads if not read.now]
        return max(MIN_SWEEP_GAP, min(periods, default=MIN_SWEEP_GAP))

    def _next_sweep_at(self) -> float:
        gap = self._gap()
        at = math.inf
        due = [read.due for read in self._reads if not read.now]
        if due:
            at = max(min(due) - gap / 2, self._last_sweep + gap)
        asked_now = [read.asked for read in self._reads if read.now]
        if asked_now:
            soon = max(min(asked_now) + COALESCE_SECONDS, self._last_sweep + MIN_SWEEP_GAP)
            at = min(at, soon)
        return at

    async def _sweep_loop(self) -> None:
        try:
            while self._reads:
                at = self._next_sweep_at()
                self._planned = at
                delay = at - time.monotonic()
                if delay > 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._wake.wait()
                    continue
                await self._sweep()
        except Exception:  # a bug here must not leave thousands of triggers waiting
            log.exception("Sweeping Mistral batch jobs (connection %s) failed", self.conn_id)
            self._listing_failed("an error in the sweep", quiet=True)
            self._answer((read, _OWN_READ) for read in list(self._reads))
        finally:
            self._planned = math.inf

    async def _sweep(self) -> None:
        start = time.monotonic()
        window = self._gap() / 2
        self._last_sweep = start
        fetching = self._fetching
        served = [
            read
            for read in self._reads
            if not read.answer.done()
            and read.job_id not in fetching
            and (read.now or read.due - window <= start)
        ]
        if not served:
            return
        listed: dict[str, BatchJob] = {}
        limit = max(LIST_TIME_LIMIT, window)
        try:
            async with asyncio.timeout(limit):
                await self._list_active(listed)
        except Exception as exc:  # the watcher's problem: no trigger counts a failed poll
            reason = f"no answer within {limit:g} s" if isinstance(exc, TimeoutError) else None
            self._listing_failed(reason or describe_error(exc))
            # The reads it served take the jobs listed before it failed; every other read,
            # served now or waiting for a later sweep, reads its own job when it is due.
            pending = [read for read in self._reads if not read.answer.done()]
            chosen = set(served)
            await self._hand_out(
                (read, listed.get(read.job_id, _OWN_READ) if read in chosen else _OWN_READ)
                for read in pending
            )
            return
        self._listing_works()
        missing: dict[str, list[_Read]] = {}
        found: list[tuple[_Read, Answer]] = []
        for read in served:
            job = listed.get(read.job_id)
            if job is None:
                missing.setdefault(read.job_id, []).append(read)
            else:
                found.append((read, job))
        del listed
        await self._hand_out(found)
        # Jobs missing from the listing are read one by one without holding up the next sweep.
        loop = asyncio.get_running_loop()
        for job_id, reads in missing.items():
            fetching[job_id] = loop.create_task(self._fetch(job_id, reads))

    async def _fetch(self, job_id: str, reads: list[_Read]) -> None:
        try:
            async with self._get_limit:
                answer = await self._get(job_id)
            self._answer((read, answer) for read in reads)
        finally:
            self._fetching.pop(job_id, None)

    async def _list_active(self, listed: dict[str, BatchJob]) -> None:
        """Put the watched jobs among the active ones into ``listed``, page by page, a few
        pages at a time; raise when the listing fails (``listed`` keeps what it found).

        Pages may shift while a sweep runs (a job that ends leaves the listing): a job missed
        that way is read with its own GET, so a shift costs a call, never a wrong answer. A
        listing that grows while it is read is followed, but no further than one page per
        job watched: beyond that, or when a page only repeats jobs of earlier pages, the
        pages do not end (:class:`ListingError`).
        """
        hook = self.hook
        # Every status a job can leave.
        filters: dict[str, Any] = {"status": BatchJobStatus.active(), "order_by": "created"}
        if self._created:
            # Older jobs are not watched: leave them out (a second of margin for rounding).
            oldest = min(self._created.values()) - 1
            filters["created_after"] = datetime.fromtimestamp(oldest, UTC)
        watched = self._watched
        # More pages than jobs watched cost more calls than reading each job.
        budget = max(1, len(watched))
        seen: set[str] = set()

        def take(number: int, result: BatchJobList) -> None:
            ids = [job.id for job in result.data]
            if number and ids and seen.issuperset(ids):
                raise ListingError(f"page {number} of the job list repeats earlier pages")
            seen.update(ids)
            for job in result.data:
                # An ended job is only ever reported from its own GET, whatever a list says.
                if job.id in watched and not job.status.is_terminal:
                    listed.setdefault(job.id, job)

        first = await hook.alist_batch_jobs_page(page=0, page_size=self.page_size, **filters)
        take(0, first)
        size = len(first.data)  # a server may cap the page size below the one asked for
        if not size:
            return
        end = math.ceil(first.total / size)  # pages, as far as the listing says now
        fetched = 1
        limit = asyncio.Semaphore(LIST_CONCURRENCY)

        async def page(number: int) -> BatchJobList:
            async with limit:
                return await hook.alist_batch_jobs_page(
                    page=number, page_size=self.page_size, **filters
                )

        while fetched < end:
            if end > budget:
                raise ListingError(
                    f"the job list has {end} pages of {size}, more calls than reading the "
                    f"{len(watched)} jobs watched one by one"
                )
            numbers = range(fetched, end)
            results = await asyncio.gather(
                *(page(number) for number in numbers), return_exceptions=True
            )
            failed: BaseException | None = None
            for number, result in zip(numbers, results, strict=True):
                if isinstance(result, BaseException):
                    failed = failed or result  # the other pages still answer their jobs
                    continue
                take(number, result)
                if len(result.data) >= size:  # a full page: the listing may have grown
                    end = max(end, math.ceil(result.total / size))
            if failed is not None:
                raise failed
            fetched = numbers.stop
        for job in listed.values():
            self._created[job.id] = job.created_at

    def _listing_failed(self, reason: str, *, quiet: bool = False) -> None:
        """Count a failed listing and plan the next try; warn when sweeping stops."""
        self._list_failures += 1
        delay = list_retry_delay(self._list_failures, random.random())
        self._list_retry_at = time.monotonic() + delay
        if self._list_failures == 1 and not quiet:
            log.warning(
                "Listing Mistral batch jobs (connection %s) failed: %s. Each of the %s jobs "
                "watched is read with its own GET at its trigger's interval; listing is tried "
                "again in %.0f s.",
                self.conn_id,
                reason,
                len(self._watched),
                delay,
            )
        else:
            log.debug(
                "Listing Mistral batch jobs (connection %s) failed again (%s in a row): %s; "
                "next try in %.0f s",
                self.conn_id,
                self._list_failures,
                reason,
                delay,
            )

    def _listing_works(self) -> None:
        if self._list_failures:
            log.info(
                "Listing Mistral batch jobs (connection %s) works again after %s failed "
                "tries: sweeps answer the %s jobs watched again.",
                self.conn_id,
                self._list_failures,
                len(self._watched),
            )
        self._list_failures = 0
        self._list_retry_at = -math.inf

    async def _hand_out(self, answers: Iterable[tuple[_Read, Answer | _OwnRead]]) -> None:
        """Answer reads a chunk per loop iteration: no stall however many wake up."""
        chunk: list[tuple[_Read, Answer | _OwnRead]] = []
        for pair in answers:
            chunk.append(pair)
            if len(chunk) >= DELIVERY_CHUNK:
                self._answer(chunk)
                chunk = []
                await asyncio.sleep(0)
        self._answer(chunk)

    @staticmethod
    def _answer(answers: Iterable[tuple[_Read, Answer | _OwnRead]]) -> None:
        for read, answer in answers:
            if not read.answer.done():
                read.answer.set_result(answer)

    def _close(self) -> None:
        if self._sweeper is not None and not self._sweeper.done() and not self._reads:
            self._sweeper.cancel()


_watchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, SharedJobWatcher]] = (
    weakref.WeakKeyDictionary()
)


def shared_watcher(conn_id: str, make_hook: Callable[[], MistralBatchHook]) -> SharedJobWatcher:
    """The watcher of the running loop for ``conn_id``, made on first use with ``make_hook``.

    Use it inside :meth:`SharedJobWatcher.watching` at once (no ``await`` in between): a
    watcher no job is watched through is forgotten.
    """
    per_loop = _watchers.setdefault(asyncio.get_running_loop(), {})
    watcher = per_loop.get(conn_id)
    if watcher is None:
        watcher = per_loop[conn_id] = SharedJobWatcher(
            conn_id, make_hook, list_min_jobs=LIST_MIN_JOBS, page_size=PAGE_SIZE
        )
    return watcher


def _forget(watcher: SharedJobWatcher) -> None:
    with contextlib.suppress(RuntimeError):
        per_loop = _watchers.get(asyncio.get_running_loop(), {})
        if per_loop.get(watcher.conn_id) is watcher:
            del per_loop[watcher.conn_id]
    watcher._close()
