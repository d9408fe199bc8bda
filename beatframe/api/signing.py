"""Signed, expiring download URLs for outputs: presigned GETs on S3, HMAC-signed API links for the
local store (served by ``GET /v1/files/{key}``).

The settings' ``secret_key`` (``BEATFRAME_SECRET_KEY``) signs local links; without it a random key
is created once in ``$BEATFRAME_DATA_DIR/secret.key`` (mode 0600).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlparse, unquote

from beatframe.infra.storage import LocalStore, validate_key

DOWNLOAD_TTL = timedelta(hours=1)


def signing_secret(settings) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode()
    path = Path(settings.data_dir) / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def signature(secret: bytes, key: str, expires: int) -> str:
    return hmac.new(secret, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def object_key(store, uri: str) -> str:
    """The store key of an output's URI (``file:///…/objects/<key>`` or ``s3://bucket/<key>``)."""
    parsed = urlparse(uri)
    if isinstance(store, LocalStore):
        return validate_key(Path(unquote(parsed.path)).relative_to(store.root).as_posix())
    return validate_key(parsed.path.lstrip("/"))


def download_url(store, settings, uri: str, *, base_url: str) -> str:
    key = object_key(store, uri)
    if not isinstance(store, LocalStore):
        return store.presigned_url(key, expires=DOWNLOAD_TTL)
    expires = int(time.time() + DOWNLOAD_TTL.total_seconds())
    sig = signature(signing_secret(settings), key, expires)
    return f"{base_url.rstrip('/')}/v1/files/{quote(key)}?expires={expires}&signature={sig}"


def verify(settings, key: str, expires: int, sig: str) -> bool:
    if expires < time.time():
        return False
    # bytes: compare_digest refuses str with non-ASCII characters (a forged link is just invalid)
    return hmac.compare_digest(signature(signing_secret(settings), key, expires).encode(), sig.encode())
