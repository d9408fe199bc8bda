"""``Idempotency-Key`` on POSTs: the same key and body give the same response, another body a 409,
and concurrent duplicates never do the work twice.

The first request with a key inserts its row (the database's primary key decides the race), does
the work and stores the response; duplicates wait for that response and replay it. A row left
in progress by a request that died is taken over after ``ABANDONED_AFTER``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from psycopg.types.json import Jsonb

from beatframe.api.deps import transaction
from beatframe.api.errors import ApiError

WAIT_SECONDS = 30.0
ABANDONED_AFTER = "2 minutes"


def request_hash(method: str, path: str, body: dict) -> str:
    blob = json.dumps({"method": method, "path": path, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def begin(pool, project_id: str, key: str, digest: str) -> tuple[int, dict] | None:
    """None when this request owns the key (do the work, then :func:`finish`); else the stored response."""
    if not 1 <= len(key) <= 255:
        raise ApiError(400, "parameter_invalid", "Idempotency-Key must be 1-255 characters", param="Idempotency-Key")
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        with pool.connection() as conn:
            owned = conn.execute(
                "INSERT INTO idempotency_keys (project_id, key, request_hash) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING RETURNING key", (project_id, key, digest)).fetchone()
            if owned:
                return None
            conn.execute("DELETE FROM idempotency_keys WHERE project_id = %s AND key = %s AND response_status IS NULL"
                         f" AND created_at < now() - interval '{ABANDONED_AFTER}'", (project_id, key))
            row = conn.execute("SELECT request_hash, response_status, response_body FROM idempotency_keys"
                               " WHERE project_id = %s AND key = %s", (project_id, key)).fetchone()
        if row is not None:
            if row["request_hash"] != digest:
                raise ApiError(409, "idempotency_key_reused",
                               "this Idempotency-Key was used with a different request", param="Idempotency-Key")
            if row["response_status"] is not None:
                return row["response_status"], row["response_body"]
        if time.monotonic() > deadline:
            raise ApiError(409, "idempotency_key_in_use", "a request with this Idempotency-Key is still in progress",
                           param="Idempotency-Key")
        time.sleep(0.05)


def finish(conn, project_id: str, key: str, status: int, body: dict) -> None:
    conn.execute("UPDATE idempotency_keys SET response_status = %s, response_body = %s"
                 " WHERE project_id = %s AND key = %s", (status, Jsonb(body), project_id, key))


def abandon(pool, project_id: str, key: str) -> None:
    """Forget a key whose request failed, so a retry with it can run."""
    with pool.connection() as conn:
        conn.execute("DELETE FROM idempotency_keys WHERE project_id = %s AND key = %s AND response_status IS NULL",
                     (project_id, key))


def respond(request: Request, project_id: str, *, status: int, fingerprint: dict,
            work: Callable[[], dict]) -> JSONResponse:
    """Do a POST's ``work`` once per ``Idempotency-Key`` and answer with its object.

    The work runs in one transaction of the request (:func:`beatframe.api.deps.transaction`),
    which also stores the response for the key: the objects and the replayable answer commit
    together or not at all. ``fingerprint`` is what makes two requests the same (the validated
    body; for uploads, the file's sha256 and the form fields). Without a key the work simply
    runs. A request that fails leaves no stored response, so its retry runs again.
    """
    key = request.headers.get("idempotency-key")
    if key is None:
        with transaction(request):
            body = jsonable_encoder(work())
        return JSONResponse(body, status_code=status)
    pool = request.app.state.pool
    stored = begin(pool, project_id, key, request_hash(request.method, request.url.path, fingerprint))
    if stored is not None:
        return JSONResponse(stored[1], status_code=stored[0], headers={"Idempotent-Replayed": "true"})
    try:
        with transaction(request) as conn:
            body = jsonable_encoder(work())
            finish(conn, project_id, key, status, body)
    except BaseException:
        abandon(pool, project_id, key)
        raise
    return JSONResponse(body, status_code=status)
