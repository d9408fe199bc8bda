"""``/v1/tracks``: the audio a project renders from: upload or fetch, list, retrieve, delete, and
the analysis computed after each new track.

``POST /v1/tracks`` takes either a multipart upload (field ``file``) or JSON ``{"url": …}``,
which the server downloads through :mod:`beatframe.infra.urlfetch` (http(s) only, never to loopback,
private or link-local addresses, also after DNS and redirects, within size and time limits).
Either way the audio is decoded once to check it is usable, stored under
``tracks/<project>/<track id>/audio<ext>`` and recorded in PostgreSQL.

``PATCH /v1/tracks/{id}/analysis`` corrects the analysis the way an editor fixes a beat grid: its
body (:class:`beatframe.music.schemas.AnalysisHints`: ``bpm``, ``downbeat``, ``meter``, ``beats``
with ``beat_positions``) replaces the track's corrections, the analysis is computed again with
them as the track's next ``analysis_version``, and every canvas and video created afterwards
applies them (their own ``analysis_hints`` replace them for that render).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from beatframe.infra import db
from beatframe.api import idempotency
from beatframe.api.deps import Principal, after_commit, connection, principal, store
from beatframe.api.errors import ApiError
from beatframe.api.objects import TRACK_COLUMNS, fetch_one, listing, soft_delete, track_object
from beatframe.api.uploads import MAX_UPLOAD_BYTES, Received, check_length, receive, safe_name
from beatframe.music.audio import load_audio
from beatframe.music.catalog import AUDIO_SUFFIXES
from beatframe.music.schemas import AnalysisHints
from beatframe.resources import Analysis, Deleted, ListObject, Track
from beatframe.infra.storage import store_ref

router = APIRouter(prefix="/tracks", tags=["tracks"])


class TrackFromUrl(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, description="an http(s) URL of an audio file the server downloads")


_SUFFIX_BY_TYPE = {"audio/mpeg": ".mp3", "audio/mp3": ".mp3", "audio/wav": ".wav", "audio/x-wav": ".wav",
                   "audio/wave": ".wav", "audio/flac": ".flac", "audio/x-flac": ".flac", "audio/ogg": ".ogg",
                   "audio/mp4": ".m4a", "audio/x-m4a": ".m4a", "audio/aac": ".aac", "audio/opus": ".opus",
                   "audio/aiff": ".aiff", "audio/x-aiff": ".aiff"}
_UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}},
    "application/json": {"schema": TrackFromUrl.model_json_schema()},
}}}


def _keep(request: Request, who: Principal, upload: Received, source_url: str | None) -> dict:
    """Check the audio decodes, store it, record the track and start its analysis."""
    clip = load_audio(upload.path)  # BadInputError (400) names what is wrong with the audio
    track_id = db.new_id("trk")
    key = f"tracks/{who.project_id}/{track_id}/audio{upload.suffix}"
    content_type = upload.content_type if upload.content_type.startswith("audio/") else "application/octet-stream"
    store(request).put_file(key, upload.path, content_type=content_type)
    with connection(request) as conn:
        row = conn.execute(
            f"INSERT INTO tracks (id, project_id, env, filename, source_url, sha256, bytes, duration, object_key, status)"
            f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'ready') RETURNING {TRACK_COLUMNS}",
            (track_id, who.project_id, who.env, upload.filename, source_url, upload.sha256, upload.bytes,
             clip.duration, key),
        ).fetchone()
    after_commit(request, lambda: request.app.state.runner.submit_analysis(track_id=track_id, audio=store_ref(key)))
    return track_object(row)


def _from_upload(request: Request, who: Principal, file: UploadFile) -> JSONResponse:
    with receive(request, file, suffixes=AUDIO_SUFFIXES, what="an audio file") as upload:
        return idempotency.respond(request, who.project_id, status=201,
                                   fingerprint={"sha256": upload.sha256, "filename": upload.filename},
                                   work=lambda: _keep(request, who, upload, None))


def _from_url(request: Request, who: Principal, body: TrackFromUrl) -> JSONResponse:
    from beatframe.infra.urlfetch import FetchError, fetch_to_file

    def work() -> dict:
        settings = request.app.state.settings
        tmp_dir = settings.data_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=tmp_dir) as scratch:
            try:
                fetched = fetch_to_file(body.url, Path(scratch) / "download",
                                        max_bytes=min(settings.fetch_max_bytes, MAX_UPLOAD_BYTES),
                                        timeout=settings.fetch_timeout,
                                        allowed_networks=settings.fetch_allowed_networks)
            except FetchError as exc:
                raise ApiError(exc.http_status, exc.code, str(exc), param="url") from None
            filename = safe_name(fetched.filename)
            suffix = Path(filename).suffix.lower()
            if suffix not in AUDIO_SUFFIXES:
                suffix = _SUFFIX_BY_TYPE.get((fetched.content_type or "").split(";")[0].strip().lower(), "")
            if not suffix:
                raise ApiError(415, "unsupported_media", f"{body.url!r} is not an audio file we know"
                               f" ({', '.join(sorted(AUDIO_SUFFIXES))})", param="url")
            path = Path(scratch) / f"audio{suffix}"
            (Path(scratch) / "download").rename(path)
            upload = Received(path, filename, suffix, fetched.sha256, fetched.bytes,
                              fetched.content_type or "application/octet-stream")
            return _keep(request, who, upload, fetched.final_url)

    return idempotency.respond(request, who.project_id, status=201, fingerprint=body.model_dump(), work=work)


@router.post("", status_code=201, response_model=Track, openapi_extra=_UPLOAD_BODY)
async def create(request: Request, who: Principal = Depends(principal)):
    """Upload an audio file (multipart field ``file``) or have the server fetch ``{"url": …}``."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        check_length(request)
        form = await request.form(max_files=1, max_fields=10)
        file = form.get("file")
        if not isinstance(file, UploadFile) and not hasattr(file, "file"):
            raise ApiError(400, "parameter_missing", "send the audio as the multipart field 'file'", param="file")
        return await run_in_threadpool(_from_upload, request, who, file)
    if content_type == "application/json":
        try:
            body = TrackFromUrl.model_validate_json(await request.body())
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ApiError(400, "parameter_invalid", first["msg"],
                           param=".".join(str(p) for p in first["loc"]) or None) from None
        return await run_in_threadpool(_from_url, request, who, body)
    raise ApiError(415, "unsupported_media", "send multipart/form-data with a 'file', or JSON {\"url\": …}")


@router.get("", response_model=ListObject[Track])
def list_tracks(request: Request, who: Principal = Depends(principal), limit: int = Query(10, ge=1, le=100),
                starting_after: str | None = None, ending_before: str | None = None) -> dict:
    return listing(request, who, table="tracks", columns=TRACK_COLUMNS, build=track_object, limit=limit,
                   starting_after=starting_after, ending_before=ending_before, where="deleted_at IS NULL")


def _find(request: Request, who: Principal, track_id: str) -> dict:
    return fetch_one(request, who, "tracks", TRACK_COLUMNS + ", object_key", track_id, noun="track", live_rows=True)


@router.get("/{track_id}", response_model=Track)
def retrieve(track_id: str, request: Request, who: Principal = Depends(principal)) -> dict:
    return track_object(_find(request, who, track_id))


def check_hints_fit(hints: AnalysisHints | None, duration: float, *, param: str = "") -> dict | None:
    """The corrections as stored and passed to the flows (JSON of the values given; None for none),
    once they fit a track of ``duration`` seconds (a 400 naming ``param`` + the field otherwise)."""
    if hints is None or hints.is_empty():
        return None
    if hints.downbeat is not None and hints.downbeat >= duration:
        raise ApiError(400, "parameter_invalid", f"downbeat {hints.downbeat:g} s is past the end of the track"
                       f" ({duration:.2f} s)", param=f"{param}downbeat")
    if hints.beats is not None and sum(b < duration for b in hints.beats) < 2:
        raise ApiError(400, "parameter_invalid", f"beats: fewer than two of them fall within the track"
                       f" ({duration:.2f} s)", param=f"{param}beats")
    return hints.model_dump(mode="json", exclude_none=True)


def _analysis_object(track_id: str, row: dict) -> dict:
    return {"object": "analysis", "track": track_id, "version": row["analysis_version"],
            "hints": row["analysis_hints"]}


@router.get("/{track_id}/analysis", response_model=Analysis,
            responses={202: {"model": Analysis, "description": "the analysis is still being computed"}})
def analysis(track_id: str, request: Request, who: Principal = Depends(principal)):
    """The track's analysis (``beatframe.analysis/2``), its latest version; 202 while it is being computed."""
    _find(request, who, track_id)
    with connection(request) as conn:
        row = conn.execute("SELECT analysis, analysis_status, analysis_error, analysis_version, analysis_hints"
                           " FROM tracks WHERE id = %s", (track_id,)).fetchone()
    if row["analysis_status"] == "pending":
        return JSONResponse({**_analysis_object(track_id, row), "status": "pending"}, status_code=202)
    if row["analysis_status"] == "failed":
        raise ApiError(422, "analysis_failed", row["analysis_error"]["message"], param="id")
    return {**_analysis_object(track_id, row), "status": "succeeded", **row["analysis"]}


@router.patch("/{track_id}/analysis", status_code=202, response_model=Analysis)
def correct_analysis(track_id: str, body: AnalysisHints, request: Request, who: Principal = Depends(principal)):
    """Correct the track's analysis: ``bpm`` (the beats are tracked again at this tempo), ``downbeat``
    (the time of one downbeat), ``meter`` (beats per bar), ``beats`` (the beat grid, with optional
    ``beat_positions``, 1 = downbeat). The body replaces earlier corrections (``{}`` goes back to the
    estimate). Answers 202 at once with the new ``version`` pending; ``GET`` it until it succeeded.
    Canvases and videos created from now on use it. Honours ``Idempotency-Key``."""
    hints = body.model_dump(mode="json", exclude_none=True)
    return idempotency.respond(request, who.project_id, status=202, fingerprint={"track": track_id, "hints": hints},
                               work=lambda: _correct(track_id, body, request, who))


def _correct(track_id: str, body: AnalysisHints, request: Request, who: Principal) -> dict:
    track = _find(request, who, track_id)
    hints = check_hints_fit(body, track["duration"])
    with connection(request) as conn:
        row = conn.execute(
            "UPDATE tracks SET analysis_hints = %s, analysis_version = analysis_version + 1,"
            " analysis_status = 'pending', analysis_error = NULL WHERE id = %s"
            " RETURNING analysis_version, analysis_hints",
            (Jsonb(hints) if hints else None, track_id)).fetchone()
    version, audio = row["analysis_version"], store_ref(track["object_key"])
    after_commit(request, lambda: request.app.state.runner.submit_analysis(
        track_id=track_id, audio=audio, hints=hints, version=version))
    return {**_analysis_object(track_id, row), "status": "pending"}


@router.delete("/{track_id}", response_model=Deleted)
def delete(track_id: str, request: Request, who: Principal = Depends(principal)) -> dict:
    return soft_delete(request, who, "tracks", track_id, noun="track")
