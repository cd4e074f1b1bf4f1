"""The plugin's calls to Mistral: async, bounded, short, and shared between viewers.

The api-server runs Airflow's own sync routes (the Execution API that task heartbeats use
among them) on one thread pool; a plugin route that blocked on a slow Mistral server there
would slow them all. So every upstream call here is async, on the hook's shared async client,
and:

- at most :data:`MAX_UPSTREAM_CALLS` run at once per api-server process (per event loop);
- a page waits for a call (its turn included) at most :data:`UPSTREAM_SECONDS`;
- a job read or a listing is shared: viewers asking for the same one while it is in flight,
  or within :data:`RECENT_SECONDS` after, get that answer (errors included), so any number of
  viewers of a page costs one upstream call per refresh;
- an error file's preview is kept (a file never changes), the least recently used dropped;
- downloads have a bound of their own (:data:`MAX_DOWNLOADS`), so they never starve pages.

Every message of an error raised here has the connection's key masked.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Final, TypeVar, cast

from starlette.concurrency import run_in_threadpool

from airflow_provider_mistral_batch.exceptions import MistralConnectionError
from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook, RetryPolicy
from airflow_provider_mistral_batch.models import BatchJob, BatchJobList, BatchJobStatus
from airflow_provider_mistral_batch.plugins.error_preview import preview_lines
from airflow_provider_mistral_batch.utils.redact import REDACTED, redact, secret_forms

#: A person waits for these pages: one retry at most, and a short Retry-After.
UI_RETRIES: Final = RetryPolicy(max_attempts=2, initial_wait=0.5, max_wait=2.0, max_retry_after=5)
#: Upstream calls in flight at most, per api-server process.
MAX_UPSTREAM_CALLS: Final = 8
#: Downloads streaming at most, per api-server process (each holds a connection for long).
MAX_DOWNLOADS: Final = 4
#: How long a page waits for one upstream answer, its turn included.
UPSTREAM_SECONDS: Final = 10.0
#: How long a job read or a listing is reused (pages refresh every 5 s).
RECENT_SECONDS: Final = 2.0
#: Bytes of an error file read for its preview.
PREVIEW_BYTES: Final = 4096
_RECENT_SIZE: Final = 1024
_PREVIEW_SIZE: Final = 256
_REDACTED_BYTES: Final = REDACTED.encode()

ResultT = TypeVar("ResultT")


class UpstreamBusyError(MistralConnectionError):
    """Too many downloads in flight on this api-server: try again in a moment."""


@dataclass
class _LoopState:
    """What one event loop shares: its bounds, its recent answers and its previews."""

    calls: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_UPSTREAM_CALLS))
    downloads: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_DOWNLOADS))
    recent: OrderedDict[Hashable, tuple[float, asyncio.Future[object]]] = field(
        default_factory=OrderedDict
    )
    previews: OrderedDict[tuple[str, str], list[str]] = field(default_factory=OrderedDict)


_states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
    weakref.WeakKeyDictionary()
)


def _state() -> _LoopState:
    loop = asyncio.get_running_loop()
    state = _states.get(loop)
    if state is None:
        state = _states[loop] = _LoopState()
    return state


class Mistral:
    """The upstream calls of one request, through one ``mistral`` connection."""

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        self._hook = MistralBatchHook(conn_id, retry_policy=UI_RETRIES)
        self._key: str | None = None

    async def _ready(self) -> MistralBatchHook:
        """The hook with its connection read (in a thread: a secrets backend may block)."""
        if self._key is None:
            settings = await run_in_threadpool(lambda: self._hook.settings)
            self._key = settings.api_key
        return self._hook

    def mask(self, text: str) -> str:
        """``text`` with the connection's key (once read) and any bearer token masked."""
        return redact(text, [self._key])

    async def masked(self, text: str) -> str:
        """:meth:`mask`, the connection's key read first if it was not yet."""
        # A connection that cannot be used (no key, a bad setting) has no key to mask.
        with contextlib.suppress(Exception):
            await self._ready()
        return self.mask(text)

    async def _bounded(self, call: Callable[[MistralBatchHook], Awaitable[ResultT]]) -> ResultT:
        """``call`` under the per-loop bound and the time limit (its turn included)."""
        hook = await self._ready()
        try:
            async with asyncio.timeout(UPSTREAM_SECONDS):
                async with _state().calls:
                    return await call(hook)
        except TimeoutError:
            raise self._no_answer() from None

    def _no_answer(self) -> MistralConnectionError:
        return MistralConnectionError(
            f"the Mistral API of connection {self.conn_id!r} did not answer within "
            f"{UPSTREAM_SECONDS:g} s"
        )

    async def _shared(
        self, key: Hashable, call: Callable[[MistralBatchHook], Awaitable[ResultT]]
    ) -> ResultT:
        """``call``'s answer, shared with every asker of ``key`` while in flight and for
        :data:`RECENT_SECONDS` after."""
        state = _state()
        now = time.monotonic()
        entry = state.recent.get(key)
        if entry is None or (entry[1].done() and now - entry[0] > RECENT_SECONDS):
            task: asyncio.Future[object] = asyncio.ensure_future(self._bounded(call))
            # An answer nobody awaited any more is still read, so its error is not logged.
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
            state.recent[key] = entry = (now, task)
            while len(state.recent) > _RECENT_SIZE:
                state.recent.popitem(last=False)
        state.recent.move_to_end(key)
        # shield: a viewer who goes away does not cancel the answer others wait for.
        return cast(ResultT, await asyncio.shield(entry[1]))

    async def job(self, job_id: str) -> BatchJob:
        """A batch job, read recently or now."""
        return await self._shared(
            ("job", self.conn_id, job_id), lambda hook: hook.aget_batch_job(job_id)
        )

    async def jobs_page(
        self, page: int, page_size: int, statuses: list[BatchJobStatus] | None
    ) -> BatchJobList:
        """One page of the connection's batch jobs, newest first, read recently or now."""
        key = ("jobs", self.conn_id, page, page_size, tuple(statuses or ()))
        return await self._shared(
            key,
            lambda hook: hook.alist_batch_jobs_page(
                page=page, page_size=page_size, status=statuses, order_by="-created"
            ),
        )

    async def cancel(self, job_id: str) -> BatchJob:
        """Ask Mistral to cancel a job; the next read of it is fresh."""
        try:
            return await self._bounded(lambda hook: hook.acancel_batch_job(job_id))
        finally:
            _state().recent.pop(("job", self.conn_id, job_id), None)

    async def error_preview(self, file_id: str) -> list[str]:
        """The first lines of an error file (see :func:`preview_lines`), kept once read."""
        previews = _state().previews
        key = (self.conn_id, file_id)
        if key not in previews:
            # One byte more than shown tells whether the file goes on.
            head = await self._bounded(
                lambda hook: hook.aread_file_head(file_id, PREVIEW_BYTES + 1)
            )
            previews[key] = [self.mask(line) for line in preview_lines(head, PREVIEW_BYTES)]
            while len(previews) > _PREVIEW_SIZE:
                previews.popitem(last=False)
        previews.move_to_end(key)
        return list(previews[key])

    async def download(self, file_id: str) -> AsyncIterator[bytes]:
        """A file's content, chunk by chunk, with the connection's key masked in it.

        The download is open and its first chunk read when this returns, so a missing file or
        a refusal is raised here, before any byte of the answer is sent.

        :raises UpstreamBusyError: when :data:`MAX_DOWNLOADS` downloads are streaming.
        """
        stream = self._masked_stream(await self._ready(), file_id)
        try:
            async with asyncio.timeout(UPSTREAM_SECONDS):
                first = await anext(stream)
        except StopAsyncIteration:
            first = b""
        except TimeoutError:
            await stream.aclose()
            raise self._no_answer() from None
        except BaseException:
            await stream.aclose()
            raise
        return _after(first, stream)

    async def _masked_stream(
        self, hook: MistralBatchHook, file_id: str
    ) -> AsyncGenerator[bytes, None]:
        # The slot is taken inside the generator: once it started, asyncio closes it (and so
        # frees the slot) even when the answer is never read to its end.
        slot = _state().downloads
        if slot.locked():
            raise UpstreamBusyError(
                f"{MAX_DOWNLOADS} downloads are in progress on this api-server: try again soon"
            )
        await slot.acquire()
        forms = [form.encode() for form in secret_forms(self._key)] if self._key else []
        keep = max((len(form) for form in forms), default=1) - 1
        content = hook.aiter_file_content(file_id)
        pending = b""
        try:
            async for chunk in content:
                pending = _mask_bytes(pending + chunk, forms)
                # The end of a chunk may hold the start of the key: keep it for the next one.
                if len(pending) > keep:
                    cut = len(pending) - keep
                    yield pending[:cut]
                    pending = pending[cut:]
            if pending:
                yield pending
        finally:
            await content.aclose()
            slot.release()


async def _after(first: bytes, rest: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    """``first``, then the chunks of ``rest`` (closed with this generator)."""
    try:
        if first:
            yield first
        async for chunk in rest:
            yield chunk
    finally:
        await rest.aclose()


def _mask_bytes(data: bytes, forms: list[bytes]) -> bytes:
    for form in forms:
        data = data.replace(form, _REDACTED_BYTES)
    return data


__all__ = [
    "MAX_DOWNLOADS",
    "MAX_UPSTREAM_CALLS",
    "PREVIEW_BYTES",
    "RECENT_SECONDS",
    "UI_RETRIES",
    "UPSTREAM_SECONDS",
    "Mistral",
    "UpstreamBusyError",
]
