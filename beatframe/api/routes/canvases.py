"""``/v1/canvases``: request a loop-native Canvas of a track, list and retrieve them.

``POST /v1/canvases`` answers 202 at once with the canvas and its queued render (see
:mod:`beatframe.api.routes.renders`); the render runs the ``render_canvas`` flow on the track in
object storage. A finished canvas carries its manifest and signed download URLs.

The render analyses the track with the track's corrections (``PATCH /v1/tracks/{id}/analysis``, its
latest ``analysis_version``), or with the request's own ``analysis_hints``, which replace them.
"""

from __future__ import annotations

import json
from typing import Literal

from fastapi import APIRouter, Depends, Request
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field

from beatframe.infra import db
from beatframe.api import idempotency
from beatframe.api.deps import Principal, principal
from beatframe.api.errors import ApiError
from beatframe.api.objects import CANVAS_COLUMNS, add_list_and_retrieve, canvas_object, fetch_one, render_object
from beatframe.api.routes.assets import cover_inputs
from beatframe.api.routes.renders import queue_render
from beatframe.api.routes.templates import resolve_template
from beatframe.api.routes.tracks import check_hints_fit
from beatframe.infra.errors import BadInputError
from beatframe.infra.settings import Settings
from beatframe.music.schemas import AnalysisHints
from beatframe.resources import ANALYSIS_HINTS, Canvas
from beatframe.infra.storage import store_ref
from beatframe.models.backend import check_runnable_here, parse_choice
from beatframe.music.limits import SEED_MAX

GENERATOR_DESCRIPTION = ("auto (default: Wan on a GPU worker with local weights, else the CPU generator), procedural,"
                         " wan-t2v, wan-i2v, or an object with options: {name, model, prompt, negative_prompt,"
                         " guidance_scale, steps, max_area, cache, offload, device}")

router = APIRouter(prefix="/canvases", tags=["canvases"])


class CanvasCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    track: str = Field(description="the track to render, trk_…")
    template: str = Field("neon-pulse", description="a built-in template's name, or a project template's id or name")
    seconds: float = Field(7.0, ge=3.0, le=8.0, description="loop length, rounded to whole bars")
    seed: int = Field(0, ge=0, le=SEED_MAX)
    loop: Literal["continuous", "rebound", "hard_cut"] | None = None
    cover_asset: str | None = Field(None, description="an image asset (ast_…) to animate instead of a scene")
    generator: str | dict | None = Field(None, description=GENERATOR_DESCRIPTION)
    analysis_hints: AnalysisHints | None = Field(None, description=ANALYSIS_HINTS + "; they replace the track's"
                                                 " own corrections for this render ({}: the estimate)")


def generator_param(choice: str | dict | None, settings: Settings) -> dict:
    """The flow parameter of a generator choice (checked now: a bad one is a 400, not a failed render;
    so is Wan without the generative extra where renders run in this process)."""
    if choice is None:
        return {}
    try:
        check = check_runnable_here if settings.render_backend == "inprocess" else parse_choice
        return {"generator": json.dumps(check(choice))}
    except BadInputError as exc:
        raise ApiError(400, "parameter_invalid", str(exc), param="generator") from None


def track_audio(request: Request, who: Principal, track_id: str) -> dict:
    """The track a render reads, with its duration and corrections (404 naming ``track`` when it is
    not the caller's)."""
    try:
        return fetch_one(request, who, "tracks", "id, object_key, duration, analysis_hints, analysis_version",
                         track_id, noun="track", live_rows=True)
    except ApiError as exc:
        raise ApiError(404, exc.code, exc.message, param="track") from None


def analysis_params(track: dict, given: AnalysisHints | dict | None) -> tuple[dict, dict]:
    """The object's params and the flow's parameters for the analysis a render of ``track`` uses:
    the request's corrections ``given`` when there are any (``{}``: none, the estimate), checked
    against the track (a 400 naming ``analysis_hints.<field>``), else the track's own corrections,
    those of its latest analysis version."""
    if given is not None:
        if isinstance(given, dict):  # inherited from a canvas, checked when it was created
            given = AnalysisHints.model_validate(given)
        hints = check_hints_fit(given, track["duration"], param="analysis_hints.") or {}
        return {"analysis_hints": hints, "analysis_version": None}, ({"analysis_hints": hints} if hints else {})
    stored = track["analysis_hints"]
    return {"analysis_version": track["analysis_version"]}, ({"analysis_hints": stored} if stored else {})


@router.post("", status_code=202, response_model=Canvas)
def create_canvas(body: CanvasCreate, request: Request, who: Principal = Depends(principal)):
    """Create a Canvas of a track; its render is queued at once (202). Honours ``Idempotency-Key``."""
    return idempotency.respond(request, who.project_id, status=202, fingerprint=body.model_dump(mode="json"),
                               work=lambda: _create_canvas(body, request, who))


def _create_canvas(body: CanvasCreate, request: Request, who: Principal) -> dict:
    template_arg, template = resolve_template(request, who, body.template)
    track = track_audio(request, who, body.track)
    analysis, analysis_flow = analysis_params(track, body.analysis_hints)
    params = {"template": body.template, "template_version": template.version, "seconds": body.seconds,
              "seed": body.seed, "loop": body.loop or template.default_loop, **analysis}
    canvas_id = db.new_id("cnv")
    flow_params = {"audio": store_ref(track["object_key"]),
                   "out_dir": str(request.app.state.settings.data_dir / "renders" / canvas_id),
                   "template": template_arg, "seconds": body.seconds, "seed": body.seed, "loop": params["loop"],
                   **generator_param(body.generator, request.app.state.settings), **analysis_flow,
                   **(cover_inputs(request, who, body.cover_asset) if body.cover_asset else {})}

    def insert_canvas(conn, render_id: str) -> dict:
        return conn.execute(
            f"INSERT INTO canvases (id, project_id, env, track_id, render_id, cover_asset_id, params)"
            f" VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {CANVAS_COLUMNS}",
            (canvas_id, who.project_id, who.env, track["id"], render_id, body.cover_asset, Jsonb(params))).fetchone()

    render, canvas = queue_render(request, who, kind="canvas", insert_target=insert_canvas, flow_params=flow_params,
                                  params=params)
    return {**canvas_object(canvas, request), "render": render_object({**render, "canvas_id": canvas_id})}


add_list_and_retrieve(router, kind="canvas", table="canvases", columns=CANVAS_COLUMNS, build=canvas_object, model=Canvas)
