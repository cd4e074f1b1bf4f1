"""Hook for Mistral AI's Files and Batch API."""

from __future__ import annotations

import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar, Unpack

import httpx2
from airflow.sdk import BaseHook
from pydantic import BaseModel, ValidationError

from airflow_provider_mistral_batch.exceptions import (
    MistralAPIError,
    MistralBatchError,
    MistralBatchInputError,
    MistralConnectionError,
    describe_error,
    validation_problems,
)
from airflow_provider_mistral_batch.hooks.connection import (
    DEFAULT_BASE_URL,
    DEFAULT_CONN_ID,
    ConnectionSettings,
)
from airflow_provider_mistral_batch.hooks.http import calls
from airflow_provider_mistral_batch.hooks.http.calls import (
    ApiCall,
    FileFilters,
    JobFilters,
    QueryParams,
)
from airflow_provider_mistral_batch.hooks.http.clients import new_sync_client, shared_async_client
from airflow_provider_mistral_batch.hooks.http.errors import parse_response, raise_for_response
from airflow_provider_mistral_batch.hooks.http.retry import (
    RetryPolicy,
    is_retryable,
    request_never_reached_server,
)
from airflow_provider_mistral_batch.hooks.http.streams import (
    BadLineHandler,
    DownloadSink,
    LocalFile,
    UploadSource,
    head_lines,
    jsonl_lines,
)
from airflow_provider_mistral_batch.models import (
    DEFAULT_TIMEOUT_HOURS,
    IDEMPOTENCY_KEY_METADATA,
    BatchJob,
    BatchJobList,
    BatchRequest,
    CreateBatchJobRequest,
    DeletedBatchJob,
    DeletedFile,
    FileList,
    FileObject,
    FilePurpose,
    FileVisibility,
    RetrievedFile,
)
from airflow_provider_mistral_batch.utils.redact import redact

# RetryPolicy is what the ``retry_policy`` argument takes: importable from here.
__all__ = ["MistralBatchHook", "RetryPolicy"]

ModelT = TypeVar("ModelT", bound=BaseModel)
ResultT = TypeVar("ResultT")
PageT = TypeVar("PageT", BatchJobList, FileList)

DEFAULT_PAGE_SIZE: Final = 100
# Margin for clock skew between this machine and the API when looking up a just-created job.
_CREATE_LOOKUP_SKEW: Final = timedelta(minutes=10)
_DOWNLOAD_CHUNK: Final = 1024 * 1024
#: How much of a file :meth:`MistralBatchHook.iter_file_head_lines` reads by default.
HEAD_BYTES: Final = 4096


class MistralBatchHook(BaseHook):
    """Talk to Mistral AI's Files and Batch API.

    Sync methods and their ``a``-prefixed async twins share one HTTP policy: timeouts and
    retries from the connection, retries on 429/5xx/connection errors with backoff that honours
    ``Retry-After``, and errors mapped to :mod:`airflow_provider_mistral_batch.exceptions`.

    The connection: password = API key, host = base URL (default ``https://api.mistral.ai``),
    extras ``timeout`` (s, default 60), ``connect_timeout`` (s, default 10), ``max_retries``
    (default 4) and ``console_url``.

    :param mistral_conn_id: Airflow connection id of type ``mistral``; default ``mistral_default``.
    :param retry_policy: overrides the retry policy built from the connection's ``max_retries``.
    """

    conn_name_attr = "mistral_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "mistral"
    hook_name = "Mistral AI"

    def __init__(
        self,
        mistral_conn_id: str = default_conn_name,
        *,
        retry_policy: RetryPolicy | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.mistral_conn_id = mistral_conn_id
        self._retry_policy = retry_policy
        self._settings: ConnectionSettings | None = None
        self._client: httpx2.Client | None = None
        # Sleep functions used between retries; None means tenacity's own (tests swap them).
        self._sleep: Callable[[float], None] | None = None
        self._asleep: Callable[[float], Awaitable[None]] | None = None

    @classmethod
    def from_settings(
        cls, settings: ConnectionSettings, *, retry_policy: RetryPolicy | None = None
    ) -> MistralBatchHook:
        """A hook on settings given directly instead of read from a connection: for a caller
        that has a key and a base URL but no connection id (common-ai's batch adapter; see
        :meth:`ConnectionSettings.from_credentials`). Same HTTP client, retries and masking."""
        hook = cls(retry_policy=retry_policy)
        hook._settings = settings
        return hook

    # ------------------------------------------------------------------ connection UI

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Connection form for Airflow 3.1 (3.2+ reads the provider info instead)."""
        from airflow_provider_mistral_batch.connection_form import UI_FIELD_BEHAVIOUR

        return UI_FIELD_BEHAVIOUR

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form for Airflow 3.1 (needs wtforms)."""
        from airflow_provider_mistral_batch.connection_form import wtforms_widgets

        return wtforms_widgets()

    # ------------------------------------------------------------------ settings

    @property
    def settings(self) -> ConnectionSettings:
        """Settings of the connection, looked up once (blocking: not for an event loop)."""
        if self._settings is None:
            conn = self.get_connection(self.mistral_conn_id)
            self._settings = ConnectionSettings.from_connection(
                self.mistral_conn_id, conn.host, conn.password, conn.extra_dejson
            )
        return self._settings

    async def aget_settings(self) -> ConnectionSettings:
        """Settings of the connection, looked up without blocking the event loop."""
        if self._settings is None:
            from asgiref.sync import sync_to_async

            if hasattr(BaseHook, "aget_connection"):  # an async lookup (newer 3.x releases)
                conn = await self.aget_connection(self.mistral_conn_id)
            else:  # otherwise run the blocking lookup in a thread
                conn = await sync_to_async(self.get_connection)(self.mistral_conn_id)
            if hasattr(conn, "aextra_dejson"):  # Airflow 3.3+: async secret masking
                extra = await conn.aextra_dejson()
            else:  # masking the extras' secrets is a blocking call before 3.3
                extra = await sync_to_async(lambda: conn.extra_dejson)()
            self._settings = ConnectionSettings.from_connection(
                self.mistral_conn_id, conn.host, conn.password, extra
            )
        return self._settings

    def mask(self, text: str) -> str:
        """``text`` with this connection's key (once read) and any bearer token masked: for
        messages that quote a server, which may echo the key."""
        return redact(text, [self._settings.api_key if self._settings else None])

    def _policy(self, settings: ConnectionSettings) -> RetryPolicy:
        return self._retry_policy or RetryPolicy(max_attempts=settings.max_retries + 1)

    @staticmethod
    def _auth(settings: ConnectionSettings) -> dict[str, str]:
        return {"Authorization": f"Bearer {settings.api_key}"}

    def get_conn(self) -> httpx2.Client:
        """The synchronous HTTP client of this hook (made on first use)."""
        if self._client is None or self._client.is_closed:
            settings = self.settings
            self._client = new_sync_client(
                settings.base_url, settings.timeout, settings.connect_timeout
            )
        return self._client

    def close(self) -> None:
        """Close the synchronous client; the hook makes a new one if used again."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> MistralBatchHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the HTTP policy

    def _with_retries(
        self,
        attempt_fn: Callable[[], ResultT],
        method: str,
        path: str,
        *,
        max_attempts: int | None = None,
    ) -> ResultT:
        """Run ``attempt_fn`` under the retry policy; a lasting transport error is mapped."""
        settings = self.settings
        try:
            for attempt in self._policy(settings).retrying(
                sleep=self._sleep, max_attempts=max_attempts
            ):
                with attempt:
                    return attempt_fn()
        except httpx2.RequestError as exc:
            raise _connection_error(method, path, settings.base_url, exc) from exc
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _with_retries_tracked(
        self,
        send: Callable[[], ResultT],
        method: str,
        path: str,
        *,
        uncertain_note: str,
        find_earlier: Callable[[], ResultT | None] | None = None,
        max_attempts: int | None = None,
    ) -> tuple[ResultT, bool]:
        """:meth:`_with_retries` for a request that creates something (a job, a file).

        An attempt that failed in a way that leaves open whether the server acted on it (a
        timeout, a dropped connection, a 5xx) is ambiguous. After one, the next attempt first
        calls ``find_earlier`` (when given) and returns what it finds instead of sending again.
        When every attempt failed and one was ambiguous, the final error (a connection or an
        API error) carries ``uncertain_note``.

        :return: the result, and whether an attempt was ambiguous.
        """
        ambiguous = False

        def attempt() -> ResultT:
            nonlocal ambiguous
            if ambiguous and find_earlier is not None:
                earlier = find_earlier()
                if earlier is not None:
                    return earlier
            try:
                return send()
            except Exception as exc:
                if is_retryable(exc) and not request_never_reached_server(exc):
                    ambiguous = True
                raise

        try:
            result = self._with_retries(attempt, method, path, max_attempts=max_attempts)
        except MistralConnectionError as exc:
            if not ambiguous:
                raise
            raise MistralConnectionError(f"{exc} {uncertain_note}") from exc.__cause__
        except MistralAPIError as exc:
            if not ambiguous:
                raise
            raise exc.with_note(uncertain_note) from exc
        return result, ambiguous

    async def _awith_retries(
        self, attempt_fn: Callable[[], Awaitable[ResultT]], method: str, path: str
    ) -> ResultT:
        """Async twin of :meth:`_with_retries`."""
        settings = await self.aget_settings()
        try:
            async for attempt in self._policy(settings).async_retrying(sleep=self._asleep):
                with attempt:
                    return await attempt_fn()
        except httpx2.RequestError as exc:
            raise _connection_error(method, path, settings.base_url, exc) from exc
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _send(self, call: ApiCall[ModelT]) -> ModelT:
        """One attempt of a JSON call; errors are raised as they come."""
        response = self.get_conn().request(
            call.method,
            call.path,
            params=call.params,
            json=call.json,
            headers=self._auth(self.settings),
        )
        raise_for_response(response)
        return parse_response(call.response_model, response)

    def _call(self, call: ApiCall[ModelT]) -> ModelT:
        return self._with_retries(lambda: self._send(call), call.method, call.path)

    async def _acall(self, call: ApiCall[ModelT]) -> ModelT:
        settings = await self.aget_settings()
        client = shared_async_client(settings.base_url, settings.timeout, settings.connect_timeout)

        async def send() -> ModelT:
            response = await client.request(
                call.method,
                call.path,
                params=call.params,
                json=call.json,
                headers=self._auth(settings),
            )
            raise_for_response(response)
            return parse_response(call.response_model, response)

        return await self._awith_retries(send, call.method, call.path)

    def _walk(self, pages: Callable[[int], ApiCall[PageT]], page_size: int) -> Iterator[Any]:
        """Every item of a listing, page after page, fetched as they are consumed."""
        seen = 0
        for page in range(_MAX_PAGES):
            result = self._call(pages(page))
            yield from result.data
            seen += len(result.data)
            if _is_last_page(result, seen, page_size):
                return

    async def _awalk(
        self, pages: Callable[[int], ApiCall[PageT]], page_size: int
    ) -> AsyncIterator[Any]:
        """Async twin of :meth:`_walk`."""
        seen = 0
        for page in range(_MAX_PAGES):
            result = await self._acall(pages(page))
            for item in result.data:
                yield item
            seen += len(result.data)
            if _is_last_page(result, seen, page_size):
                return

    # ------------------------------------------------------------------ batch jobs

    def create_batch_job(
        self,
        *,
        endpoint: str,
        input_files: Iterable[str] | None = None,
        requests: Iterable[BatchRequest | Mapping[str, Any]] | None = None,
        model: str | None = None,
        metadata: Mapping[str, str] | None = None,
        timeout_hours: int = DEFAULT_TIMEOUT_HOURS,
        agent_id: str | None = None,
        idempotency_key: str | None = None,
        choose: Callable[[list[BatchJob]], BatchJob] | None = None,
        **job_fields: Any,
    ) -> BatchJob:
        """Create a batch job, never two for one call.

        The job's metadata gets ``airflow_idempotency_key``. When an attempt fails in a way that
        leaves open whether the server created the job (a timeout, a dropped connection, a 5xx),
        the next attempt first looks for jobs with that key and returns one if found, instead of
        creating another.

        The hook never decides between duplicate jobs: when that look finds several (two
        ambiguous attempts both became jobs), ``choose`` says which one to return, and cancels
        the others if it wants to; without it, the first one created is returned and nothing
        is cancelled. A job that an ambiguous attempt makes only after the create returned
        (the server committed a request the client had given up on) is not waited for here:
        a warning names the key to look for. The operators pass the duplicate rule as
        ``choose`` (:func:`~airflow_provider_mistral_batch.batch.identity.duplicate_chooser`)
        and their wait cancels such a late job.

        :param endpoint: API endpoint of the requests, e.g. ``/v1/chat/completions``.
        :param input_files: ids of uploaded JSONL files (exactly one of this and ``requests``).
        :param requests: inline requests, ``{"custom_id", "body"}`` each; at most 10,000.
        :param model: model for every request; None lets each body name its own.
        :param metadata: string key/values (keys 1-32 chars, values 1-512 chars).
        :param timeout_hours: hours before the job times out, 1 to 168; default 24.
        :param agent_id: agent to run the requests (deprecated by Mistral).
        :param idempotency_key: tag for duplicate detection; a random one when not given.
        :param choose: given the jobs found with the idempotency key after an ambiguous
            attempt (oldest first, at least one), the one to return; default the first.
        :param job_fields: more fields of the create request (one the API grows later); checked
            by :class:`~airflow_provider_mistral_batch.models.CreateBatchJobRequest`.
        :return: the created job (status QUEUED), or the one an earlier attempt created.
        """
        unknown = sorted(set(job_fields) - set(CreateBatchJobRequest.model_fields))
        if unknown:
            raise MistralBatchInputError(f"unknown fields of the create request: {unknown}")
        metadata = dict(metadata or {})
        token = idempotency_key or metadata.get(IDEMPOTENCY_KEY_METADATA) or uuid.uuid4().hex
        metadata[IDEMPOTENCY_KEY_METADATA] = token
        body = _validated_create_body(
            endpoint=endpoint,
            input_files=list(input_files) if input_files is not None else None,
            requests=list(requests) if requests is not None else None,
            model=model,
            metadata=metadata,
            timeout_hours=timeout_hours,
            agent_id=agent_id,
            **job_fields,
        )
        call = calls.create_batch_job(body)
        created_after = datetime.now(UTC) - _CREATE_LOOKUP_SKEW

        def earlier_job() -> BatchJob | None:
            existing = self._jobs_with_key(token, created_after)
            if not existing:
                return None
            job = choose(existing) if choose is not None else existing[0]
            self.log.info("An earlier attempt created batch job %s; not creating another", job.id)
            return job

        job, ambiguous = self._with_retries_tracked(
            lambda: self._send(call),
            call.method,
            call.path,
            find_earlier=earlier_job,
            uncertain_note=(
                f"The batch job may or may not have been created: look for metadata "
                f"{IDEMPOTENCY_KEY_METADATA}={token} before creating it again."
            ),
        )
        self.log.info(
            "Created Mistral batch job %s (endpoint %s, model %s, status %s)",
            job.id,
            job.endpoint,
            job.model,
            job.status,
        )
        if ambiguous:
            # The server may still turn a request the client gave up on into a job.
            self.log.warning(
                "An attempt to create batch job %s was ambiguous: another job with metadata "
                "%s=%s may appear later; it is a duplicate of this one",
                job.id,
                IDEMPOTENCY_KEY_METADATA,
                token,
            )
        return job

    def _jobs_with_key(self, token: str, created_after: datetime) -> list[BatchJob]:
        """Jobs tagged with ``token``, oldest first (checked here even if the server filters)."""
        jobs = [
            job
            for job in self.list_batch_jobs(
                metadata={IDEMPOTENCY_KEY_METADATA: token}, created_after=created_after
            )
            if (job.metadata or {}).get(IDEMPOTENCY_KEY_METADATA) == token
        ]
        return sorted(jobs, key=lambda job: (job.created_at, job.id))

    def get_batch_job(self, job_id: str, *, inline: bool = False) -> BatchJob:
        """Get a batch job.

        :param job_id: id of the job.
        :param inline: also return the results in ``outputs`` (jobs made from inline requests).
        """
        return self._call(calls.get_batch_job(job_id, inline=inline))

    async def aget_batch_job(self, job_id: str, *, inline: bool = False) -> BatchJob:
        """Async twin of :meth:`get_batch_job`."""
        return await self._acall(calls.get_batch_job(job_id, inline=inline))

    def cancel_batch_job(self, job_id: str) -> BatchJob:
        """Ask Mistral to cancel a job; it goes to CANCELLATION_REQUESTED, then CANCELLED."""
        job = self._call(calls.cancel_batch_job(job_id))
        self.log.info("Requested cancellation of batch job %s (status %s)", job.id, job.status)
        return job

    async def acancel_batch_job(self, job_id: str) -> BatchJob:
        """Async twin of :meth:`cancel_batch_job`."""
        job = await self._acall(calls.cancel_batch_job(job_id))
        self.log.info("Requested cancellation of batch job %s (status %s)", job.id, job.status)
        return job

    def delete_batch_job(self, job_id: str) -> DeletedBatchJob:
        """Delete a batch job."""
        return self._call(calls.delete_batch_job(job_id))

    async def adelete_batch_job(self, job_id: str) -> DeletedBatchJob:
        """Async twin of :meth:`delete_batch_job`."""
        return await self._acall(calls.delete_batch_job(job_id))

    def list_batch_jobs_page(
        self, *, page: int = 0, page_size: int = DEFAULT_PAGE_SIZE, **filters: Unpack[JobFilters]
    ) -> BatchJobList:
        """One page of batch jobs; ``filters`` as in :meth:`list_batch_jobs`."""
        query = calls.job_list_query(filters)
        return self._call(calls.list_batch_jobs_page(query, page=page, page_size=page_size))

    async def alist_batch_jobs_page(
        self, *, page: int = 0, page_size: int = DEFAULT_PAGE_SIZE, **filters: Unpack[JobFilters]
    ) -> BatchJobList:
        """Async twin of :meth:`list_batch_jobs_page`."""
        query = calls.job_list_query(filters)
        return await self._acall(calls.list_batch_jobs_page(query, page=page, page_size=page_size))

    def list_batch_jobs(
        self, *, page_size: int = DEFAULT_PAGE_SIZE, **filters: Unpack[JobFilters]
    ) -> Iterator[BatchJob]:
        """Every batch job matching the filters, fetching page after page as it is iterated.

        :param filters: keyword filters, each optional: ``status``, ``model``, ``agent_id``,
            ``metadata``, ``created_after``, ``created_by_me``, ``order_by`` (described on
            :class:`~airflow_provider_mistral_batch.hooks.http.calls.JobFilters`); an unknown
            name raises ``TypeError``.
        :param page_size: jobs per request; default 100.
        """
        pages = _pages(calls.list_batch_jobs_page, calls.job_list_query(filters), page_size)
        yield from self._walk(pages, page_size)

    async def alist_batch_jobs(
        self, *, page_size: int = DEFAULT_PAGE_SIZE, **filters: Unpack[JobFilters]
    ) -> AsyncIterator[BatchJob]:
        """Async twin of :meth:`list_batch_jobs`."""
        pages = _pages(calls.list_batch_jobs_page, calls.job_list_query(filters), page_size)
        async for job in self._awalk(pages, page_size):
            yield job

    # ------------------------------------------------------------------ files

    def upload_file(
        self,
        file: LocalFile,
        *,
        filename: str | None = None,
        purpose: FilePurpose | str = FilePurpose.BATCH,
        visibility: FileVisibility | str | None = None,
        expiry: int | None = None,
    ) -> FileObject:
        """Upload a file, streamed from disk or a binary file object (never read whole).

        A failed attempt is sent again under the retry policy. When an attempt failed in a way
        that leaves open whether the server stored the file (a timeout, a dropped connection,
        a 5xx), a copy may exist: an orphan file costs little, and no file uploaded by anyone
        else is ever taken for this one. If every attempt fails and one of them was ambiguous,
        the error says a copy may exist.

        :param file: a path, or a binary file object (rewound on retry when it is seekable;
            a non-seekable one is sent once, without retries).
        :param filename: name to give the file; default the path's or object's name.
        :param purpose: ``batch`` (default), ``fine-tune``, ``ocr`` or ``audio``.
        :param visibility: ``workspace`` or ``user``; None leaves the server's default.
        :param expiry: expiry sent to the API as is; None for none.
        """
        source = UploadSource(file, filename)
        form: dict[str, str] = {"purpose": str(purpose)}
        if visibility is not None:
            form["visibility"] = str(visibility)
        if expiry is not None:
            form["expiry"] = str(expiry)

        def send_upload() -> FileObject:
            with source.open() as handle:
                response = self.get_conn().post(
                    "/v1/files",
                    files={"file": (source.filename, handle, source.mimetype)},
                    data=form,
                    headers=self._auth(self.settings),
                )
            raise_for_response(response)
            return parse_response(FileObject, response)

        uploaded, ambiguous = self._with_retries_tracked(
            send_upload,
            "POST",
            "/v1/files",
            max_attempts=None if source.rewindable else 1,
            uncertain_note=(
                f"The file may or may not have been uploaded: look for a file named "
                f"{source.filename!r} (purpose {purpose}) before uploading it again."
            ),
        )
        if ambiguous:
            self.log.warning(
                "An earlier attempt to upload %s may have stored a copy too; file %s is the one "
                "used",
                source.filename,
                uploaded.id,
            )
        self.log.info(
            "Uploaded %s as file %s (%s bytes, %s lines)",
            source.filename,
            uploaded.id,
            uploaded.bytes,
            uploaded.num_lines,
        )
        return uploaded

    def get_file(self, file_id: str) -> RetrievedFile:
        """Get a file's description."""
        return self._call(calls.get_file(file_id))

    async def aget_file(self, file_id: str) -> RetrievedFile:
        """Async twin of :meth:`get_file`."""
        return await self._acall(calls.get_file(file_id))

    def delete_file(self, file_id: str) -> DeletedFile:
        """Delete a file."""
        return self._call(calls.delete_file(file_id))

    async def adelete_file(self, file_id: str) -> DeletedFile:
        """Async twin of :meth:`delete_file`."""
        return await self._acall(calls.delete_file(file_id))

    def get_file_url(self, file_id: str, *, expiry_hours: int = 24) -> str:
        """A signed URL to download a file without the API key, valid ``expiry_hours`` (1-168)."""
        return self._call(calls.get_file_url(file_id, expiry_hours=expiry_hours)).url

    async def aget_file_url(self, file_id: str, *, expiry_hours: int = 24) -> str:
        """Async twin of :meth:`get_file_url`."""
        call = calls.get_file_url(file_id, expiry_hours=expiry_hours)
        return (await self._acall(call)).url

    def list_files(
        self, *, page_size: int = DEFAULT_PAGE_SIZE, **filters: Unpack[FileFilters]
    ) -> Iterator[FileObject]:
        """Every file matching the filters, fetching page after page as it is iterated.

        Each page asks for ``include_total=true``: the ``total`` tells when the listing is
        complete. A server that answers ``total: null`` still works (the listing then ends at
        the first page shorter than ``page_size``).

        :param filters: keyword filters, each optional: ``purpose``, ``sample_type``,
            ``source``, ``search``, ``mimetypes`` (described on
            :class:`~airflow_provider_mistral_batch.hooks.http.calls.FileFilters`); an unknown
            name raises ``TypeError``.
        :param page_size: files per request; default 100.
        """
        pages = _pages(calls.list_files_page, calls.file_list_query(filters), page_size)
        yield from self._walk(pages, page_size)

    async def alist_files(
        self, *, page_size: int = DEFAULT_PAGE_SIZE, **filters: Unpack[FileFilters]
    ) -> AsyncIterator[FileObject]:
        """Async twin of :meth:`list_files`."""
        pages = _pages(calls.list_files_page, calls.file_list_query(filters), page_size)
        async for item in self._awalk(pages, page_size):
            yield item

    def download_file(self, file_id: str, destination: LocalFile) -> int:
        """Stream a file's content to a path or binary file object; return the bytes written.

        The download resumes where a broken connection left it (see :meth:`iter_file_content`).
        A path is written through a temporary file and replaced only when the download is
        complete, so a failed download never leaves a truncated file behind.
        """
        written = 0
        with DownloadSink(destination).open() as handle:
            for chunk in self.iter_file_content(file_id):
                handle.write(chunk)
                written += len(chunk)
        self.log.info("Downloaded file %s (%s bytes)", file_id, written)
        return written

    def iter_file_content(self, file_id: str) -> Generator[bytes, None, None]:
        """Stream a file's content, chunk by chunk.

        Opening the download is retried. A connection that breaks midway is resumed, up to the
        connection's ``max_retries`` times: a file never changes, so a new download with the
        bytes already read dropped goes on from there; after that it raises
        :class:`MistralConnectionError`. Closing the iterator ends the download.
        """
        path = f"/v1/files/{calls.path_id('file', file_id)}/content"

        def attempt_open() -> httpx2.Response:
            client = self.get_conn()
            request = client.build_request("GET", path, headers=self._auth(self.settings))
            response = client.send(request, stream=True)
            if not response.is_success:
                response.read()
                response.close()
                raise_for_response(response)
            return response

        delivered = 0  # bytes handed on; a resumed download drops as many
        breaks = 0
        while True:
            response = self._with_retries(attempt_open, "GET", path)
            try:
                skip = delivered
                for chunk in response.iter_bytes(_DOWNLOAD_CHUNK):
                    fresh, skip = _past_delivered(chunk, skip)
                    if fresh:
                        delivered += len(fresh)
                        yield fresh
                _check_not_shorter(file_id, skip)
                return
            except httpx2.RequestError as exc:
                breaks += 1
                self._download_broke(file_id, path, delivered, breaks, exc)
            finally:
                response.close()

    async def aiter_file_content(self, file_id: str) -> AsyncGenerator[bytes, None]:
        """Async twin of :meth:`iter_file_content` (same retries and resumes), on the shared
        async client; closing the generator (``aclose()``) ends the download."""
        path = f"/v1/files/{calls.path_id('file', file_id)}/content"
        settings = await self.aget_settings()
        client = shared_async_client(settings.base_url, settings.timeout, settings.connect_timeout)

        async def attempt_open() -> httpx2.Response:
            request = client.build_request("GET", path, headers=self._auth(settings))
            response = await client.send(request, stream=True)
            if not response.is_success:
                await response.aread()
                await response.aclose()
                raise_for_response(response)
            return response

        delivered = 0
        breaks = 0
        while True:
            response = await self._awith_retries(attempt_open, "GET", path)
            try:
                skip = delivered
                async for chunk in response.aiter_bytes(_DOWNLOAD_CHUNK):
                    fresh, skip = _past_delivered(chunk, skip)
                    if fresh:
                        delivered += len(fresh)
                        yield fresh
                _check_not_shorter(file_id, skip)
                return
            except httpx2.RequestError as exc:
                breaks += 1
                self._download_broke(file_id, path, delivered, breaks, exc)
            finally:
                await response.aclose()

    async def aread_file_head(self, file_id: str, max_bytes: int) -> bytes:
        """The first ``max_bytes`` bytes of a file (all of it when shorter); the download stops
        there. Ask for one byte more than needed to know whether the file goes on."""
        head = bytearray()
        content = self.aiter_file_content(file_id)
        try:
            async for chunk in content:
                head += chunk
                if len(head) >= max_bytes:
                    break
        finally:
            await content.aclose()
        return bytes(head[:max_bytes])

    def _download_broke(
        self, file_id: str, path: str, delivered: int, breaks: int, exc: httpx2.RequestError
    ) -> None:
        """Log a download that broke midway and will resume, or raise when it broke too often."""
        settings = self._settings or self.settings
        if breaks > settings.max_retries:
            raise _connection_error("GET", path, settings.base_url, exc) from exc
        self.log.warning(
            "Download of file %s broke after %s bytes (%s: %s); resuming (%s of %s)",
            file_id,
            f"{delivered:,}",
            type(exc).__name__,
            exc,
            breaks,
            settings.max_retries,
        )

    def iter_file_lines(
        self, file_id: str, *, on_bad_line: BadLineHandler | None = None
    ) -> Iterator[str]:
        """Stream a file's lines (decoded as UTF-8, without line ends; blank lines skipped).

        The download is that of :meth:`iter_file_content` (retried, resumed midway). A line
        that is not UTF-8, or longer than 64 MiB, raises a :class:`MistralBatchError` naming
        the file and the line, which ends the reading.

        :param on_bad_line: instead of raising, call this with that error, skip the line and
            read on (for a reader that must get every other line; see
            :func:`~airflow_provider_mistral_batch.hooks.http.streams.jsonl_lines`).
        """
        yield from jsonl_lines(
            self.iter_file_content(file_id), f"file {file_id}", on_bad_line=on_bad_line
        )

    def iter_file_head_lines(self, file_id: str, max_bytes: int = HEAD_BYTES) -> Iterator[str]:
        """The lines of a file's first ``max_bytes`` bytes (default 4,096), to quote them: a
        line they cut comes last as a ``CutLine`` of its start; the download stops there."""
        return head_lines(self.iter_file_content(file_id), max_bytes, f"file {file_id}")

    # ------------------------------------------------------------------ Airflow UI

    def test_connection(self) -> tuple[bool, str]:
        """Check the key and base URL with one cheap request (the UI's Test button).

        The answer names the problem (key refused, server unreachable, bad setting) and the
        server, never the key.
        """
        call = calls.list_batch_jobs_page(calls.job_list_query({}), page=0, page_size=1)
        try:
            # One retry at most: the person pressing the button is waiting for the answer.
            self._with_retries(lambda: self._send(call), call.method, call.path, max_attempts=2)
        except MistralAPIError as exc:
            where = self._settings.base_url if self._settings else DEFAULT_BASE_URL
            if exc.status_code in (401, 403):
                return False, (
                    f"The Mistral API at {where} refused the API key (HTTP {exc.status_code}): "
                    "check the connection's API Key."
                )
            return False, f"The Mistral API at {where} answered an error: {exc}"
        except MistralConnectionError as exc:
            where = self._settings.base_url if self._settings else DEFAULT_BASE_URL
            return False, (
                f"Could not reach the Mistral API at {where}: check the connection's Base URL "
                f"and the network. {exc}"
            )
        except Exception as exc:  # a bad setting: the error names the connection and field
            return False, str(exc)
        base_url = self._settings.base_url if self._settings else DEFAULT_BASE_URL
        return True, f"Connected to the Mistral API at {base_url}: the API key was accepted."


# The largest number of pages a listing fetches: a guard against a server that never ends.
_MAX_PAGES: Final = 100_000


def _is_last_page(result: BatchJobList | FileList, seen: int, page_size: int) -> bool:
    """Whether a listing is complete after this page, ``seen`` items in all so far.

    The server's ``total`` decides when it sends one: a server that caps the page size below
    the one asked for must not end the listing after its first page.
    """
    if not result.data:
        return True
    if result.total is not None:
        return seen >= result.total
    return len(result.data) < page_size


def _past_delivered(chunk: bytes, skip: int) -> tuple[bytes, int]:
    """The part of ``chunk`` after the ``skip`` bytes a resumed download already delivered,
    and how many bytes are still to skip after it."""
    if skip >= len(chunk):
        return b"", skip - len(chunk)
    return chunk[skip:], 0


def _check_not_shorter(file_id: str, skip: int) -> None:
    """A resumed download that ended before reaching the bytes already delivered."""
    if skip:
        raise MistralBatchError(f"file {file_id} is shorter than when its download began")


def _pages(
    page_call: Callable[..., ApiCall[PageT]], query: QueryParams, page_size: int
) -> Callable[[int], ApiCall[PageT]]:
    """The call for each page of a listing, its filters' query built once."""
    return lambda page: page_call(query, page=page, page_size=page_size)


def _validated_create_body(**fields: Any) -> CreateBatchJobRequest:
    """The create-job body, or a :class:`MistralBatchInputError` naming each bad field."""
    try:
        return CreateBatchJobRequest.model_validate(fields)
    except ValidationError as exc:
        raise MistralBatchInputError(
            f"invalid batch job request: {validation_problems(exc)}"
        ) from None


def _connection_error(
    method: str, path: str, base_url: str, exc: httpx2.RequestError
) -> MistralConnectionError:
    return MistralConnectionError(
        f"Could not complete {method} {path} at {base_url}: {describe_error(exc)}."
    )
