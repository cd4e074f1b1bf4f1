"""The file registry: metadata in memory, contents on disk."""

from __future__ import annotations

import logging
import mimetypes
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from airflow_provider_mistral_batch.models import (
    FileObject,
    FilePurpose,
    FileSource,
    FileVisibility,
    RetrievedFile,
    SampleType,
)

log = logging.getLogger(__name__)

_EXTRA_MIMETYPES = {".jsonl": "application/jsonl", ".ndjson": "application/x-ndjson"}


def guess_mimetype(filename: str) -> str | None:
    """The mimetype of a file name (``.jsonl`` -> ``application/jsonl``)."""
    suffix = Path(filename).suffix.lower()
    if suffix in _EXTRA_MIMETYPES:
        return _EXTRA_MIMETYPES[suffix]
    return mimetypes.guess_type(filename, strict=False)[0]


@dataclass
class StoredFile:
    """One file: what the API reports about it and where its bytes live."""

    id: str
    path: Path
    filename: str
    purpose: FilePurpose
    sample_type: SampleType
    source: FileSource
    bytes: int
    num_lines: int
    created_at: int
    mimetype: str | None = None
    signature: str | None = None
    expires_at: int | None = None
    visibility: FileVisibility | None = FileVisibility.WORKSPACE
    seq: int = field(default=0)

    def to_model(self) -> FileObject:
        """The file as the list and upload routes describe it."""
        return FileObject(
            id=self.id,
            bytes=self.bytes,
            created_at=self.created_at,
            filename=self.filename,
            purpose=self.purpose,
            sample_type=self.sample_type,
            source=self.source,
            num_lines=self.num_lines,
            mimetype=self.mimetype,
            signature=self.signature,
            expires_at=self.expires_at,
            visibility=self.visibility,
        )

    def to_retrieved(self) -> RetrievedFile:
        """The file as ``GET /v1/files/{id}`` describes it."""
        return RetrievedFile(**self.to_model().model_dump(), deleted=False)


@dataclass(frozen=True)
class FileFilter:
    """Filters of ``GET /v1/files``; None means no filter."""

    sample_types: frozenset[str] | None = None
    sources: frozenset[str] | None = None
    search: str | None = None
    purpose: str | None = None
    mimetypes: frozenset[str] | None = None

    def accepts(self, item: StoredFile) -> bool:
        """Whether a file passes every filter."""
        if self.sample_types is not None and item.sample_type.value not in self.sample_types:
            return False
        if self.sources is not None and item.source.value not in self.sources:
            return False
        if self.search and self.search.lower() not in item.filename.lower():
            return False
        if self.purpose is not None and item.purpose.value != self.purpose:
            return False
        return self.mimetypes is None or item.mimetype in self.mimetypes


class FileStore:
    """Every live file; deleted files are forgotten and their bytes removed."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._files: dict[str, StoredFile] = {}
        self._seq = 0

    def new_path(self) -> tuple[str, Path]:
        """A fresh file id and the path its contents go to."""
        file_id = str(uuid.uuid4())
        return file_id, self.data_dir / f"{file_id}.bin"

    def add(self, item: StoredFile) -> StoredFile:
        """Register a file whose contents are already at ``item.path``."""
        self._seq += 1
        item.seq = self._seq
        self._files[item.id] = item
        return item

    def get(self, file_id: str) -> StoredFile | None:
        """A live file, or None."""
        return self._files.get(file_id)

    def delete(self, file_id: str) -> StoredFile | None:
        """Forget a file and remove its bytes; None when it did not exist."""
        item = self._files.pop(file_id, None)
        if item is not None:
            item.path.unlink(missing_ok=True)
        return item

    def find(self, flt: FileFilter) -> list[StoredFile]:
        """Matching files, newest first."""
        matching = [item for item in self._files.values() if flt.accepts(item)]
        matching.sort(key=lambda item: (item.created_at, item.seq), reverse=True)
        return matching

    def clear(self) -> None:
        """Forget every file and remove every byte under the data directory."""
        self._files.clear()
        remove_files(self.data_dir.glob("*"))


def remove_files(paths: Iterable[Path]) -> None:
    """Delete files, ignoring the ones already gone."""
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except IsADirectoryError:
            log.debug("not removing directory %s", path)


def now() -> int:
    """The current UNIX time in seconds."""
    return int(time.time())


__all__ = ["FileFilter", "FileStore", "StoredFile", "guess_mimetype", "now", "remove_files"]
