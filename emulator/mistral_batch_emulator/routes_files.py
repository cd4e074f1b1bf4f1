"""Routes of the Files API."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from airflow_provider_mistral_batch.models import (
    DeletedFile,
    FileList,
    FilePurpose,
    FileSource,
    FileVisibility,
    OpenStrEnum,
    SampleType,
    SignedUrl,
)
from mistral_batch_emulator.deps import State, known_values, reply
from mistral_batch_emulator.errors import ApiError, invalid, not_found
from mistral_batch_emulator.files import (
    FileFilter,
    StoredFile,
    guess_mimetype,
    now,
)
from mistral_batch_emulator.state import EmulatorState
from mistral_batch_emulator.uploads import receive_upload

router = APIRouter()
SIGNED_PATH = "/signed/files"

# The purposes a file can have: FilePurpose of the models, which adds ``audio`` to the
# contract's enum (fine-tune, batch, ocr) because the same contract's ``purpose`` field says
# the API "currently supports ... Audio/Transcription (`audio`)" and Mistral's audio guide
# uploads with ``purpose=audio``. The enum is closed (no open string): any other value is a
# 422 naming ``purpose``, on upload and as a list filter.
FILE_PURPOSES: tuple[str, ...] = tuple(member.value for member in FilePurpose)


def _get_file(state: EmulatorState, file_id: uuid.UUID) -> StoredFile:
    stored = state.files.get(str(file_id))
    if stored is None:
        raise not_found("File", str(file_id))
    return stored


def _form_enum(
    fields: dict[str, str], name: str, allowed: type[OpenStrEnum] | Sequence[str], default: str
) -> str:
    # An empty field counts as absent (FastAPI reads an empty form value as not sent).
    value = fields.get(name) or default
    known_values(allowed, [value], ("body", name))
    return value


def _form_expiry(fields: dict[str, str]) -> int | None:
    raw = fields.get("expiry", "").strip()
    if raw in ("", "null", "None"):
        return None
    try:
        hours = int(raw)
    except ValueError:
        raise invalid(
            ("body", "expiry"),
            "Input should be a valid integer, unable to parse string as an integer",
            raw,
            "int_parsing",
        ) from None
    if hours < 1:
        raise invalid(("body", "expiry"), "Input should be greater than 0", raw, "greater_than")
    return hours


@router.post("/v1/files", response_model=None)
async def upload_file(request: Request, state: State) -> JSONResponse:
    """Upload a file (multipart), streamed to disk."""
    file_id, path = state.files.new_path()
    try:
        received = await receive_upload(
            request.headers.get("content-type"),
            request.stream(),
            path,
            state.config.max_file_bytes,
        )
        purpose = _form_enum(received.fields, "purpose", FILE_PURPOSES, FilePurpose.FINE_TUNE)
        visibility = _form_enum(
            received.fields, "visibility", FileVisibility, FileVisibility.WORKSPACE
        )
        expiry = _form_expiry(received.fields)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    created_at = now()
    filename = received.filename or "upload"
    stored = state.files.add(
        StoredFile(
            id=file_id,
            path=path,
            filename=filename,
            purpose=FilePurpose(purpose),
            # Only batch uploads have a documented sample type; others are taken as instruct.
            sample_type=SampleType.BATCH_REQUEST
            if purpose == FilePurpose.BATCH
            else SampleType.INSTRUCT,
            source=FileSource.UPLOAD,
            bytes=received.bytes,
            num_lines=received.num_lines,
            created_at=created_at,
            mimetype=guess_mimetype(filename),
            signature=received.signature,
            expires_at=created_at + expiry * 3600 if expiry is not None else None,
            visibility=FileVisibility(visibility),
        )
    )
    return reply(stored.to_model())


@router.get("/v1/files", response_model=None)
async def list_files(
    state: State,
    page: Annotated[int, Query(ge=0)] = 0,
    page_size: Annotated[int, Query(ge=1)] = 100,
    include_total: bool = True,
    sample_type: Annotated[list[str] | None, Query()] = None,
    source: Annotated[list[str] | None, Query()] = None,
    search: str | None = None,
    purpose: str | None = None,
    mimetypes: Annotated[list[str] | None, Query()] = None,
) -> JSONResponse:
    """One page of the files, newest first."""
    if purpose is not None:
        known_values(FILE_PURPOSES, [purpose], ("query", "purpose"))
    flt = FileFilter(
        sample_types=known_values(SampleType, sample_type, ("query", "sample_type")),
        sources=known_values(FileSource, source, ("query", "source")),
        search=search,
        purpose=purpose,
        mimetypes=frozenset(mimetypes) if mimetypes is not None else None,
    )
    matching = state.files.find(flt)
    start = page * page_size
    page_items = matching[start : start + page_size]
    result = FileList(
        data=[item.to_model() for item in page_items],
        total=len(matching) if include_total else None,
    )
    return reply(result)


@router.get("/v1/files/{file_id}", response_model=None)
async def retrieve_file(file_id: uuid.UUID, state: State) -> JSONResponse:
    """A file's description, with ``deleted: false``."""
    return reply(_get_file(state, file_id).to_retrieved())


@router.delete("/v1/files/{file_id}", response_model=None)
async def delete_file(file_id: uuid.UUID, state: State) -> JSONResponse:
    """Delete a file; later reads answer 404."""
    stored = state.files.delete(str(file_id))
    if stored is None:
        raise not_found("File", str(file_id))
    return reply(DeletedFile(id=stored.id, deleted=True))


def _content(stored: StoredFile) -> FileResponse:
    return FileResponse(
        stored.path, media_type="application/octet-stream", filename=stored.filename
    )


@router.get("/v1/files/{file_id}/content", response_model=None)
async def download_file(file_id: uuid.UUID, state: State) -> FileResponse:
    """A file's bytes, streamed from disk as ``application/octet-stream``."""
    return _content(_get_file(state, file_id))


@router.get("/v1/files/{file_id}/url", response_model=None)
async def signed_url(
    file_id: uuid.UUID,
    request: Request,
    state: State,
    expiry: Annotated[int, Query(ge=1, le=168)] = 24,
) -> JSONResponse:
    """A URL that downloads the file without the auth header until it expires."""
    stored = _get_file(state, file_id)
    expires = int(time.time()) + expiry * 3600
    query = urlencode({"se": expires, "sig": state.sign(stored.id, expires)})
    url = f"{str(request.base_url).rstrip('/')}{SIGNED_PATH}/{stored.id}?{query}"
    return reply(SignedUrl(url=url))


@router.get(SIGNED_PATH + "/{file_id}", response_model=None, include_in_schema=False)
async def signed_download(file_id: uuid.UUID, se: int, sig: str, state: State) -> FileResponse:
    """The target of a signed URL: no auth header, the signature is the credential."""
    if not state.check_signature(str(file_id), se, sig):
        raise ApiError(403, "the signed URL is invalid or has expired")
    return _content(_get_file(state, file_id))


__all__ = ["FILE_PURPOSES", "SIGNED_PATH", "router"]
