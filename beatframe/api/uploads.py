"""Uploaded files, received safely: streamed to a temporary file in ``$BEATFRAME_DATA_DIR/tmp``,
hashed on the way and refused past a size limit, under a sanitised file name. The caller checks
the content, stores it, and the temporary file is always removed."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request, UploadFile

from beatframe.api.errors import ApiError

MAX_UPLOAD_BYTES = 200 * 1024 * 1024
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Received:
    path: Path
    filename: str
    suffix: str
    sha256: str
    bytes: int
    content_type: str


def safe_name(name: str | None) -> str:
    """A file name with no directories and only plain characters (``upload`` when nothing is left)."""
    base = Path(name or "upload").name
    return re.sub(r"[^A-Za-z0-9._ -]+", "_", base).strip(" .")[:200] or "upload"


def check_length(request: Request) -> None:
    """Refuse a request whose declared body is over the limit before reading any of it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES + (1 << 20):
        raise ApiError(413, "file_too_large", f"uploads are limited to {MAX_UPLOAD_BYTES >> 20} MB", param="file")


@contextmanager
def receive(request: Request, file: UploadFile, *, suffixes: set[str], what: str) -> Iterator[Received]:
    """The upload as a temporary file (415 for a suffix outside ``suffixes``, 413 past the limit)."""
    filename = safe_name(file.filename)
    suffix = Path(filename).suffix.lower()
    if suffix not in suffixes:
        raise ApiError(415, "unsupported_media", f"{filename!r} is not {what} ({', '.join(sorted(suffixes))})",
                       param="file")
    tmp_dir = request.app.state.settings.data_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(suffix=suffix, dir=tmp_dir)
    try:
        digest, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            while chunk := file.file.read(_CHUNK):
                size += len(chunk)
                if size > MAX_UPLOAD_BYTES:
                    raise ApiError(413, "file_too_large", f"uploads are limited to {MAX_UPLOAD_BYTES >> 20} MB",
                                   param="file")
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise ApiError(400, "file_empty", f"{filename!r} is empty", param="file")
        content_type = (file.content_type or "application/octet-stream").split(";")[0].strip()
        yield Received(Path(tmp_name), filename, suffix, digest.hexdigest(), size, content_type)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
