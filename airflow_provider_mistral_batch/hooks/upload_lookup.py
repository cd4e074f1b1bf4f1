"""Recognising a file that an earlier, ambiguous attempt of an upload may have left."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from airflow_provider_mistral_batch.hooks.file_transfer import UploadSource
from airflow_provider_mistral_batch.models import FileObject, FileSource

_CHUNK = 1024 * 1024


def upload_candidates(
    files: Iterable[FileObject],
    source: UploadSource,
    purpose: str,
    not_before: datetime,
) -> list[FileObject]:
    """Uploaded files that could be ``source``, oldest first: same name, purpose and size.

    Checked here whatever the server's filters did. A candidate still needs a content check:
    someone else may have uploaded a same-named, same-sized file in the same window.
    """
    earliest = not_before.timestamp()
    found = [
        item
        for item in files
        if item.filename == source.filename
        and item.purpose == purpose
        and item.source == FileSource.UPLOAD
        and (source.size is None or item.bytes == source.size)
        and item.created_at >= earliest
    ]
    return sorted(found, key=lambda item: (item.created_at, item.id))


def source_sha256(source: UploadSource) -> str:
    """SHA-256 of a rewindable upload source, read in chunks (never whole)."""
    with source.open() as handle:
        return chunks_sha256(iter(lambda: handle.read(_CHUNK), b""))


def chunks_sha256(chunks: Iterable[bytes]) -> str:
    """SHA-256 of a byte stream."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()
