"""``/v1/canvases`` and ``/v1/renders``: request a Canvas of a track, follow its render.

``POST /v1/canvases`` answers 202 at once with the canvas and its queued render; the render runs
the ``render_canvas`` flow in the API's bounded runner. ``GET /v1/renders/{id}`` reports its status,
stages, cost and error; a finished canvas carries its manifest and outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from beatframe import db
from beatframe.api import idempotency
from beatframe.api.deps import Principal, pool, principal
from beatframe.api.errors import ApiError
from beatframe.api.pagination import page
from beatframe.api.signing import download_url
from beatframe.errors import BadInputError
from beatframe.templates import load_template

router = APIRouter(tags=["canvases"])
_CANVAS_COLUMNS = "id, env, track_id, render_id, params, manifest, created_at"
_RENDER_COLUMNS = ("id, env, kind, status, progress, flow_run_id, params, stages, cost, error, created_at,"
                   " started_at, finished_at")


class CanvasCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    track: str = Field(description="the track to render, trk_…")
    template: str = "neon-pulse"
    seconds: float = Field(7.0, ge=3.0, le=8.0, description="loop length, rounded to whole bars")
    seed: int = Field(0, ge=0, lt=2**32)
    loop: Literal["continuous", "rebound", "hard_cut"] | None = None


def _ts(value) -> int | None:
    return int(value.timestamp()) if value else None


def render_object(row: dict) -> dict:
    return {"id": row["id"], "object": "render", "kind": row["kind"], "status": row["status"],
            "progress": row["progress"], "flow_run_id": row["flow_run_id"], "stages": row["stages"],
            "cost": row["cost"], "error": row["error"], "livemode": row["env"] == "live",
            "created": _ts(row["created_at"]), "started": _ts(row["started_at"]), "finished": _ts(row["finished_at"])}


def canvas_object(row: dict, request: Request) -> dict:
    manifest = row["manifest"]
    outputs = []
    for output in (manifest["outputs"] if manifest else []):
        url = download_url(request.app.state.store, request.app.state.settings, output["uri"],
                           base_url=str(request.base_url))
        outputs.append({**output, "url": url})
    return {"id": row["id"], "object": "canvas", "track": row["track_id"], "render": row["render_id"],
            "template": row["params"].get("template"), "seconds": row["params"].get("seconds"),
            "seed": row["params"].get("seed"), "loop": row["params"].get("loop"),
            "segment": manifest["segment"] if manifest else None,
            "outputs": outputs, "manifest": manifest,
            "livemode": row["env"] == "live", "created": _ts(row["created_at"])}


@router.post("/canvases", status_code=202)
def create_canvas(body: CanvasCreate, request: Request, who: Principal = Depends(principal)):
    """Create a Canvas of a track; its render is queued at once (202). Honours ``Idempotency-Key``."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return _create_canvas(body, request, who)
    digest = idempotency.request_hash("POST", "/v1/canvases", body.model_dump(mode="json"))
    stored = idempotency.begin(pool(request), who.project_id, key, digest)
    if stored is not None:
        return JSONResponse(stored[1], status_code=stored[0], headers={"Idempotent-Replayed": "true"})
    try:
        result = _create_canvas(body, request, who)
    except BaseException:
        idempotency.abandon(pool(request), who.project_id, key)
        raise
    idempotency.finish(pool(request), who.project_id, key, 202, result)
    return result


def _create_canvas(body: CanvasCreate, request: Request, who: Principal) -> dict:
    try:
        template = load_template(body.template)
    except BadInputError as exc:
        raise ApiError(400, "parameter_invalid", str(exc), param="template") from None
    with pool(request).connection() as conn:
        track = conn.execute(
            "SELECT id, sha256, object_key FROM tracks WHERE id = %s AND project_id = %s AND env = %s"
            " AND deleted_at IS NULL", (body.track, who.project_id, who.env)).fetchone()
        if track is None:
            raise ApiError(404, "resource_missing", f"no track {body.track!r}", param="track")
        params = {"template": template.name, "seconds": body.seconds, "seed": body.seed,
                  "loop": body.loop or template.default_loop}
        render_id, canvas_id = db.new_id("rnd"), db.new_id("cnv")
        render = conn.execute(
            f"INSERT INTO renders (id, project_id, env, kind, params) VALUES (%s, %s, %s, 'canvas', %s)"
            f" RETURNING {_RENDER_COLUMNS}", (render_id, who.project_id, who.env, Jsonb(params))).fetchone()
        canvas = conn.execute(
            f"INSERT INTO canvases (id, project_id, env, track_id, render_id, params) VALUES (%s, %s, %s, %s, %s, %s)"
            f" RETURNING {_CANVAS_COLUMNS}",
            (canvas_id, who.project_id, who.env, track["id"], render_id, Jsonb(params))).fetchone()
    request.app.state.runner.submit_canvas(render_id=render_id, canvas_id=canvas_id, object_key=track["object_key"],
                                           suffix=Path(track["object_key"]).suffix,
                                           params={**params, "sha256": track["sha256"]})
    return {**canvas_object(canvas, request), "render": render_object(render)}


@router.get("/canvases")
def list_canvases(request: Request, who: Principal = Depends(principal), limit: int = Query(10, ge=1, le=100),
                  starting_after: str | None = None, ending_before: str | None = None) -> dict:
    rows, has_more = page(pool(request), table="canvases", columns=_CANVAS_COLUMNS, project_id=who.project_id,
                          env=who.env, limit=limit, starting_after=starting_after, ending_before=ending_before)
    return {"object": "list", "data": [canvas_object(r, request) for r in rows], "has_more": has_more}


def _one(request: Request, who: Principal, table: str, columns: str, object_id: str) -> dict:
    with pool(request).connection() as conn:
        row = conn.execute(f"SELECT {columns} FROM {table} WHERE id = %s AND project_id = %s AND env = %s",
                           (object_id, who.project_id, who.env)).fetchone()
    if row is None:
        raise ApiError(404, "resource_missing", f"no {table[:-1]} {object_id!r}", param="id")
    return row


@router.get("/canvases/{canvas_id}")
def retrieve_canvas(canvas_id: str, request: Request, who: Principal = Depends(principal)) -> dict:
    return canvas_object(_one(request, who, "canvases", _CANVAS_COLUMNS, canvas_id), request)


@router.get("/renders/{render_id}")
def retrieve_render(render_id: str, request: Request, who: Principal = Depends(principal)) -> dict:
    return render_object(_one(request, who, "renders", _RENDER_COLUMNS, render_id))


@router.post("/renders/{render_id}/cancel")
def cancel_render(render_id: str, request: Request, who: Principal = Depends(principal)) -> dict:
    """Cancel a render that has not started; a running or finished one answers 409."""
    _one(request, who, "renders", "id", render_id)
    with pool(request).connection() as conn:
        row = conn.execute(
            f"UPDATE renders SET status = 'canceled', finished_at = now() WHERE id = %s AND status = 'queued'"
            f" RETURNING {_RENDER_COLUMNS}", (render_id,)).fetchone()
        if row is None:
            status = conn.execute("SELECT status FROM renders WHERE id = %s", (render_id,)).fetchone()["status"]
            raise ApiError(409, "render_not_cancelable", f"the render is {status}; only a queued render can be canceled")
    return render_object(row)
