"""Object storage for render outputs (videos, posters, manifests): local files or MinIO/S3.

Two backends share one small interface (:class:`ObjectStore`):

- :class:`LocalStore` keeps each object as a file under a root directory
  (``$BEATFRAME_DATA_DIR/objects`` by default).
- :class:`S3Store` keeps objects in a MinIO/S3 bucket through the ``minio`` client and creates
  the bucket on first write if it is missing.

:func:`get_store` picks the backend from :class:`beatframe.infra.settings.Settings`, i.e. from these
environment variables:

- ``BEATFRAME_S3_ENDPOINT``: when set, objects go to S3. Either ``host:port`` or a URL
  ``http(s)://host:port`` (the scheme then decides TLS).
- ``BEATFRAME_S3_ACCESS_KEY``, ``BEATFRAME_S3_SECRET_KEY``: credentials (anonymous without).
- ``BEATFRAME_S3_BUCKET`` (default ``beatframe``), ``BEATFRAME_S3_REGION``.
- ``BEATFRAME_S3_SECURE`` (default true): TLS for a bare ``host:port`` endpoint.
- ``BEATFRAME_DATA_DIR``: without an endpoint, objects live in ``$BEATFRAME_DATA_DIR/objects``.

Guarantees, on both backends:

- Keys are checked by :func:`validate_key` (relative, ``/``-separated, segments of
  ``[A-Za-z0-9._-]``, no ``.``/``..``), so a hostile name can never escape the root; a bad key
  raises :class:`beatframe.infra.errors.BadInputError`.
- Writes are atomic: a reader sees the old object or the whole new one, never a partial file.
- Writes are idempotent: the content's sha256 is recorded (S3: ``x-amz-meta-sha256``; local: the
  file's own hash); putting the same bytes under the same key again uploads nothing and returns
  the existing record. Different bytes under an existing key replace it atomically.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import secrets
import shutil
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Callable, Protocol
from urllib.parse import urlsplit

from minio import Minio
from minio.error import S3Error

from beatframe.infra.cachekeys import sha256_file
from beatframe.infra.errors import BadInputError
from beatframe.infra.settings import Settings, get_settings

__all__ = [
    "MAX_KEY_LENGTH",
    "LocalStore",
    "ObjectStore",
    "S3Store",
    "StoredObject",
    "get_store",
    "parse_endpoint",
    "validate_key",
]

MAX_KEY_LENGTH = 512
SHA256_META = "sha256"  # stored as the x-amz-meta-sha256 header on S3
_SHA256_HEADER = "x-amz-meta-sha256"
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_CHUNK = 1024 * 1024
DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class StoredObject:
    """One stored object. ``sha256`` is ``None`` only for an S3 object not written by this module
    (no ``x-amz-meta-sha256``)."""

    key: str
    uri: str
    sha256: str | None
    bytes: int
    content_type: str


class ObjectStore(Protocol):
    def put_file(
        self,
        key: str,
        path: Path | str,
        *,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> StoredObject: ...

    def exists(self, key: str) -> bool: ...

    def stat(self, key: str) -> StoredObject | None: ...

    def get_file(self, key: str, dest: Path | str) -> Path: ...

    def delete(self, key: str) -> None: ...

    def presigned_url(self, key: str, *, expires: timedelta) -> str: ...

    def uri(self, key: str) -> str: ...


# --------------------------------------------------------------------------------------- helpers

#: Flows take an input either as a local path or as ``store:<key>``, an object in the store (what
#: the HTTP API passes, so a worker on any machine reads the same upload).
STORE_REF = "store:"


def store_ref(key: str) -> str:
    """The flow input that names object ``key``."""
    return STORE_REF + validate_key(key)



def validate_key(key: object) -> str:
    """Return ``key`` unchanged if it is a safe object key, else raise :class:`BadInputError`.

    A key is relative and ``/``-separated, at most 512 characters, with no leading ``/``, no
    empty, ``.`` or ``..`` segments, no backslashes or control characters, and every segment
    made of ``[A-Za-z0-9._-]``.
    """
    shown = repr(key) if not isinstance(key, str) or len(key) <= 80 else repr(key[:80] + "…")
    if not isinstance(key, str):
        raise BadInputError(f"object key {shown} is not a string")
    if not key:
        raise BadInputError("object key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise BadInputError(f"object key {shown} is longer than {MAX_KEY_LENGTH} characters")
    if "\\" in key:
        raise BadInputError(f"object key {shown} contains a backslash")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise BadInputError(f"object key {shown} contains a control character")
    if key.startswith("/"):
        raise BadInputError(f"object key {shown} is absolute (starts with '/')")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise BadInputError(f"object key {shown} has an empty, '.' or '..' segment")
        if not _SEGMENT.fullmatch(segment):
            raise BadInputError(
                f"object key {shown} has a segment outside [A-Za-z0-9._-]: {segment!r}"
            )
    return key


def _sha256_and_size(path: Path | str) -> tuple[str, int]:
    return sha256_file(Path(path)), Path(path).stat().st_size


def parse_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    """Split an S3 endpoint into (``host:port``, secure).

    ``host:port`` keeps ``secure`` as given; ``http://host:port`` / ``https://host:port`` take
    TLS from the scheme. Paths, queries and credentials in the URL are refused (ValueError).
    """
    text = endpoint.strip()
    if not text:
        raise ValueError("S3 endpoint is empty")
    if "://" in text:
        parts = urlsplit(text)
        if parts.scheme.lower() not in ("http", "https"):
            raise ValueError(f"S3 endpoint {endpoint!r}: scheme must be http or https")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"S3 endpoint {endpoint!r} must not have a path or query")
        if parts.username or parts.password:
            raise ValueError(f"S3 endpoint {endpoint!r} must not carry credentials")
        if not parts.hostname:
            raise ValueError(f"S3 endpoint {endpoint!r} has no host")
        return parts.netloc, parts.scheme.lower() == "https"
    if "/" in text:
        raise ValueError(f"S3 endpoint {endpoint!r} must be host:port or http(s)://host:port")
    return text, secure


def _check_expires(expires: timedelta) -> None:
    if not isinstance(expires, timedelta) or expires < timedelta(seconds=1):
        raise ValueError(f"presigned URL expiry must be a timedelta of >= 1 s, got {expires!r}")
    if expires > timedelta(days=7):
        raise ValueError(f"presigned URL expiry must be at most 7 days, got {expires!r}")


def _guess_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or DEFAULT_CONTENT_TYPE


class _HashingReader:
    """A read-only file wrapper that hashes and counts what passes through it."""

    def __init__(self, raw: IO[bytes]):
        self._raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.digest.update(data)
        self.size += len(data)
        return data


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _atomic_write(dest: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``dest`` through ``write(fh)`` into a temp file beside it, fsync, then os.replace.

    On any failure the temp file is removed and ``dest`` is left as it was.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{secrets.token_hex(8)}.tmp"
    # O_EXCL: never follow or reuse something already there; 0o666 lets the umask decide.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(dest.parent)


# ----------------------------------------------------------------------------------------- local


class LocalStore:
    """Objects as files under ``root``: key ``a/b.mp4`` is ``root/a/b.mp4``.

    Content type and user metadata are not persisted locally (no sidecars): :meth:`stat` guesses
    the type from the key's extension.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser().resolve()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        validate_key(key)
        path = self.root.joinpath(*key.split("/"))
        # Defence in depth: a symlink planted inside the root must not lead outside it.
        resolved = path.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise BadInputError(f"object key {key!r} resolves outside the store")
        return path

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    def put_file(
        self,
        key: str,
        path: Path | str,
        *,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> StoredObject:
        """Store the file at ``path`` under ``key`` (``metadata`` is not kept locally)."""
        dest = self._path(key)
        source = Path(path)
        src_sha, src_size = _sha256_and_size(source)
        if dest.is_file() and dest.stat().st_size == src_size:
            if sha256_file(dest) == src_sha:
                return StoredObject(key, dest.as_uri(), src_sha, src_size, content_type)

        reader: _HashingReader | None = None

        def write(fh: IO[bytes]) -> None:
            nonlocal reader
            with open(source, "rb") as raw:
                reader = _HashingReader(raw)
                shutil.copyfileobj(reader, fh, _CHUNK)

        _atomic_write(dest, write)
        assert reader is not None
        # Record what was actually copied (the source may have changed since it was hashed).
        sha = reader.digest.hexdigest()
        return StoredObject(key, dest.as_uri(), sha, reader.size, content_type)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def stat(self, key: str) -> StoredObject | None:
        path = self._path(key)
        try:
            sha, size = _sha256_and_size(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        return StoredObject(key, path.as_uri(), sha, size, _guess_type(key))

    def get_file(self, key: str, dest: Path | str) -> Path:
        """Copy the object to ``dest`` atomically; FileNotFoundError if there is no such object."""
        src = self._path(key)
        if not src.is_file():
            raise FileNotFoundError(f"no object {key!r} in {self.root}")
        out = Path(dest)

        def write(fh: IO[bytes]) -> None:
            with open(src, "rb") as raw:
                shutil.copyfileobj(raw, fh, _CHUNK)

        _atomic_write(out, write)
        return out

    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing object is not an error."""
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            pass

    def presigned_url(self, key: str, *, expires: timedelta) -> str:
        """A ``file://`` URI (local files need no signature; ``expires`` is only checked)."""
        _check_expires(expires)
        return self.uri(key)


# -------------------------------------------------------------------------------------------- S3

_MISSING_CODES = {"NoSuchKey", "NoSuchBucket", "NoSuchObject", "ResourceNotFound", "NotFound"}


class S3Store:
    """Objects in one MinIO/S3 bucket, through a ``minio.Minio`` client."""

    def __init__(self, client: Minio, bucket: str):
        self.client = client
        self.bucket = bucket
        self._bucket_ready = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r})"

    def ensure_bucket(self) -> None:
        """Create the bucket if it is missing (once per store; safe against a concurrent create)."""
        if self._bucket_ready:
            return
        with self._lock:
            if self._bucket_ready:
                return
            if not self.client.bucket_exists(self.bucket):
                try:
                    self.client.make_bucket(self.bucket)
                except S3Error as exc:
                    if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise
            self._bucket_ready = True

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{validate_key(key)}"

    def _record(self, key: str, obj) -> StoredObject:
        return StoredObject(
            key=key,
            uri=self.uri(key),
            sha256=(obj.metadata or {}).get(_SHA256_HEADER),
            bytes=int(obj.size or 0),
            content_type=obj.content_type or DEFAULT_CONTENT_TYPE,
        )

    def put_file(
        self,
        key: str,
        path: Path | str,
        *,
        content_type: str,
        metadata: dict[str, str] | None = None,
    ) -> StoredObject:
        """Upload ``path`` under ``key`` unless the same bytes (by sha256) are already there.

        ``metadata`` becomes ``x-amz-meta-*`` headers (ASCII values); ``sha256`` is reserved.
        """
        validate_key(key)
        source = Path(path)
        sha, size = _sha256_and_size(source)
        self.ensure_bucket()
        existing = self.stat(key)
        if existing is not None and existing.sha256 == sha and existing.bytes == size:
            return existing
        reserved = (SHA256_META, _SHA256_HEADER)
        meta = {k: v for k, v in (metadata or {}).items() if k.lower() not in reserved}
        meta[SHA256_META] = sha
        self.client.fput_object(
            self.bucket, key, str(source), content_type=content_type, metadata=meta
        )
        return StoredObject(key, self.uri(key), sha, size, content_type)

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def stat(self, key: str) -> StoredObject | None:
        validate_key(key)
        try:
            obj = self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING_CODES:
                return None
            raise
        return self._record(key, obj)

    def get_file(self, key: str, dest: Path | str) -> Path:
        """Download to ``dest`` atomically, checking the bytes against the recorded sha256.

        FileNotFoundError if there is no such object; OSError if the download does not match.
        """
        validate_key(key)
        out = Path(dest)
        try:
            response = self.client.get_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING_CODES:
                raise FileNotFoundError(f"no object {key!r} in bucket {self.bucket!r}") from exc
            raise
        try:
            expected = response.headers.get(_SHA256_HEADER)

            def write(fh: IO[bytes]) -> None:
                digest = hashlib.sha256()
                for chunk in response.stream(_CHUNK):
                    digest.update(chunk)
                    fh.write(chunk)
                if expected and digest.hexdigest() != expected:
                    raise OSError(
                        f"object {key!r} downloaded with sha256 {digest.hexdigest()}, "
                        f"expected {expected}"
                    )

            _atomic_write(out, write)
        finally:
            response.close()
            response.release_conn()
        return out

    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing object is not an error."""
        validate_key(key)
        try:
            self.client.remove_object(self.bucket, key)
        except S3Error as exc:
            if exc.code not in _MISSING_CODES:
                raise

    def presigned_url(self, key: str, *, expires: timedelta) -> str:
        """A presigned GET URL, valid for ``expires`` (1 s to 7 days)."""
        validate_key(key)
        _check_expires(expires)
        return self.client.presigned_get_object(self.bucket, key, expires=expires)


# ------------------------------------------------------------------------------------- factory


def get_store(settings: Settings | None = None) -> LocalStore | S3Store:
    """S3Store when ``settings.s3_endpoint`` is set, else LocalStore(``settings.objects_dir``)."""
    settings = settings if settings is not None else get_settings()
    if not settings.s3_endpoint:
        return LocalStore(settings.objects_dir)
    host, secure = parse_endpoint(settings.s3_endpoint, settings.s3_secure)
    client = Minio(
        host,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        secure=secure,
        region=settings.s3_region,
    )
    return S3Store(client, settings.s3_bucket)
