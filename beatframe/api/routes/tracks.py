"""``/v1/tracks``: upload, list, retrieve and delete the audio a project renders from.

Uploads stream to a temporary file (hashed on the way, refused past the size limit), are
decoded once to check they are usable audio, then stored in object storage under
``tracks/<project>/<track id>/audio<ext>`` and recorded in PostgreSQL.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from beatframe import db
from beatframe.api.deps import Principal, pool, principal, store
from beatframe.api.errors import ApiError
from beatframe.api.pagination import page
from beatframe.audio import load_audio
from beatframe.catalog import AUDIO_SUFFIXES

router = APIRouter(prefix="/tracks", tags=["tracks"])
MAX_UPLOAD_BYTES = 200 * 1024 * 1024
_CHUNK = 1 << 20
_COLUMNS = "id, env, filename, sha256, bytes, duration, status, created_at"


def track_object(row: dict) -> dict:
    return {"id": row["id"], "object": "track", "filename": row["filename"], "sha256": row["sha256"],
            "bytes": row["bytes"], "duration": row["duration"], "status": row["status"],
            "livemode": row["env"] == "live", "created": int(row["created_at"].timestamp())}


def _safe_name(name: str | None) -> str:
    base = Path(name or "upload").name
    return re.sub(r"[^A-Za-z0-9._ -]+", "_", base)[:200] or "upload"


@router.post("", status_code=201)
def upload(request: Request, file: UploadFile = File(...), who: Principal = Depends(principal)) -> dict:
    """Upload an audio file (multipart field ``file``)."""
    filename = _safe_name(file.filename)
    suffix = Path(filename).suffix.lower()
    if suffix not in AUDIO_SUFFIXES:
        raise ApiError(415, "unsupported_media", f"{filename!r} is not an audio file ({', '.join(sorted(AUDIO_SUFFIXES))})",
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
        clip = load_audio(tmp_name)  # BadInputError (400) names what is wrong with the audio
        track_id = db.new_id("trk")
        key = f"tracks/{who.project_id}/{track_id}/audio{suffix}"
        content_type = file.content_type if (file.content_type or "").startswith("audio/") else "application/octet-stream"
        store(request).put_file(key, tmp_name, content_type=content_type)
        with pool(request).connection() as conn:
            row = conn.execute(
                f"INSERT INTO tracks (id, project_id, env, filename, sha256, bytes, duration, object_key, status)"
                f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'ready') RETURNING {_COLUMNS}",
                (track_id, who.project_id, who.env, filename, digest.hexdigest(), size, clip.duration, key),
            ).fetchone()
        request.app.state.runner.submit_analysis(track_id=track_id, object_key=key, suffix=suffix,
                                                 sha256=digest.hexdigest())
        return track_object(row)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


@router.get("")
def list_tracks(request: Request, who: Principal = Depends(principal), limit: int = Query(10, ge=1, le=100),
                starting_after: str | None = None, ending_before: str | None = None) -> dict:
    rows, has_more = page(pool(request), table="tracks", columns=_COLUMNS, project_id=who.project_id, env=who.env,
                          limit=limit, starting_after=starting_after, ending_before=ending_before,
                          where="deleted_at IS NULL")
    return {"object": "list", "data": [track_object(r) for r in rows], "has_more": has_more}


def _find(request: Request, who: Principal, track_id: str) -> dict:
    with pool(request).connection() as conn:
        row = conn.execute(
            f"SELECT {_COLUMNS}, object_key FROM tracks WHERE id = %s AND project_id = %s AND env = %s"
            " AND deleted_at IS NULL", (track_id, who.project_id, who.env)).fetchone()
    if row is None:  # another project's track is as missing as one that never existed
        raise ApiError(404, "resource_missing", f"no track {track_id!r}", param="id")
    return row


@router.get("/{track_id}")
def retrieve(track_id: str, request: Request, who: Principal = Depends(principal)) -> dict:
    return track_object(_find(request, who, track_id))


@router.get("/{track_id}/analysis")
def analysis(track_id: str, request: Request, who: Principal = Depends(principal)):
    """The track's analysis (``beatframe.analysis/1``); 202 while it is being computed."""
    _find(request, who, track_id)
    with pool(request).connection() as conn:
        row = conn.execute("SELECT analysis, analysis_status, analysis_error FROM tracks WHERE id = %s",
                           (track_id,)).fetchone()
    if row["analysis_status"] == "pending":
        return JSONResponse({"object": "analysis", "track": track_id, "status": "pending"}, status_code=202)
    if row["analysis_status"] == "failed":
        raise ApiError(422, "analysis_failed", row["analysis_error"]["message"], param="id")
    return {"object": "analysis", "track": track_id, "status": "succeeded", **row["analysis"]}


@router.delete("/{track_id}")
def delete(track_id: str, request: Request, who: Principal = Depends(principal)) -> dict:
    row = _find(request, who, track_id)
    with pool(request).connection() as conn:
        conn.execute("UPDATE tracks SET deleted_at = now() WHERE id = %s", (track_id,))
    store(request).delete(row["object_key"])
    return {"id": track_id, "object": "track", "deleted": True}
