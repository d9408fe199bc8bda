"""``/v1/videos``: full-length music videos of a track, or expanded from one of its canvases.

From a canvas, the video takes the canvas's track, template, seed, cover asset and
``analysis_hints`` unless the request says otherwise, so the video looks like the Canvas that
announced it. Without ``analysis_hints`` a render uses the track's corrections (its latest
``analysis_version``), as canvases do. Test-mode videos
are cheap previews: rendered at most 640 px on their long side.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, model_validator

from beatframe.infra import db
from beatframe.api import idempotency
from beatframe.api.deps import Principal, principal
from beatframe.api.errors import ApiError
from beatframe.api.objects import (CANVAS_COLUMNS, VIDEO_COLUMNS, add_list_and_retrieve, fetch_one, render_object,
                                   video_object)
from beatframe.api.routes.assets import cover_inputs
from beatframe.api.routes.canvases import GENERATOR_DESCRIPTION, analysis_params, generator_param, track_audio
from beatframe.api.routes.renders import queue_render
from beatframe.api.routes.templates import resolve_template
from beatframe.infra.errors import BadInputError
from beatframe.music.schemas import AnalysisHints
from beatframe.resources import ANALYSIS_HINTS, Video
from beatframe.infra.storage import store_ref
from beatframe.music.video import parse_video_size
from beatframe.music.limits import SEED_MAX

router = APIRouter(prefix="/videos", tags=["videos"])
PREVIEW_LONG_SIDE = 640


class VideoCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    track: str | None = Field(None, description="the track to render, trk_…")
    canvas: str | None = Field(None, description="a canvas (cnv_…) to expand into a full-length video")
    template: str | None = Field(None, description="default: the canvas's template, else neon-pulse")
    size: str = Field("1920x1080", description="16:9, 9:16 or 1:1, e.g. 1920x1080, 1080x1920, 1080x1080")
    seed: int | None = Field(None, ge=0, le=SEED_MAX)
    generator: str | dict | None = Field(None, description=GENERATOR_DESCRIPTION)
    analysis_hints: AnalysisHints | None = Field(None, description=ANALYSIS_HINTS + "; they replace the track's"
                                                 " own corrections for this render ({}: the estimate; default:"
                                                 " the canvas's, if it gave any)")

    @model_validator(mode="after")
    def _one_source(self) -> "VideoCreate":
        if (self.track is None) == (self.canvas is None):
            raise ValueError("give exactly one of track or canvas")
        return self


def render_size(size: str, env: str) -> str:
    """The size to render: as asked in live mode, a preview of the same shape in test mode."""
    try:
        width, height = parse_video_size(size)
    except BadInputError as exc:
        raise ApiError(400, "parameter_invalid", str(exc), param="size") from None
    if env == "live" or max(width, height) <= PREVIEW_LONG_SIDE:
        return f"{width}x{height}"
    scale = PREVIEW_LONG_SIDE / max(width, height)
    return f"{round(width * scale / 2) * 2}x{round(height * scale / 2) * 2}"


@router.post("", status_code=202, response_model=Video)
def create_video(body: VideoCreate, request: Request, who: Principal = Depends(principal)):
    """Create a full-length video; its render is queued at once (202). Honours ``Idempotency-Key``."""
    return idempotency.respond(request, who.project_id, status=202, fingerprint=body.model_dump(mode="json"),
                               work=lambda: _create_video(body, request, who))


def _create_video(body: VideoCreate, request: Request, who: Principal) -> dict:
    track_id, template_ref, seed, cover_asset = body.track, body.template, body.seed, None
    hints: AnalysisHints | dict | None = body.analysis_hints
    if body.canvas is not None:
        canvas = fetch_one(request, who, "canvases", CANVAS_COLUMNS, body.canvas, noun="canvas")
        track_id, cover_asset = canvas["track_id"], canvas["cover_asset_id"]
        template_ref = template_ref or canvas["params"]["template"]
        seed = canvas["params"]["seed"] if seed is None else seed
        hints = canvas["params"].get("analysis_hints") if hints is None else hints
    template_ref = template_ref or "neon-pulse"
    template_arg, template = resolve_template(request, who, template_ref)
    track = track_audio(request, who, track_id)
    size = render_size(body.size, who.env)
    analysis, analysis_flow = analysis_params(track, hints)
    params = {"template": template_ref, "template_version": template.version, "size": size, "seed": seed or 0,
              **analysis}
    video_id = db.new_id("vid")
    flow_params = {"audio": store_ref(track["object_key"]),
                   "out_dir": str(request.app.state.settings.data_dir / "renders" / video_id),
                   "template": template_arg, "seed": params["seed"], "size": size,
                   **generator_param(body.generator, request.app.state.settings), **analysis_flow,
                   **(cover_inputs(request, who, cover_asset) if cover_asset else {})}

    def insert_video(conn, render_id: str) -> dict:
        return conn.execute(
            f"INSERT INTO videos (id, project_id, env, track_id, canvas_id, render_id, params)"
            f" VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {VIDEO_COLUMNS}",
            (video_id, who.project_id, who.env, track["id"], body.canvas, render_id, Jsonb(params))).fetchone()

    render, video = queue_render(request, who, kind="video", insert_target=insert_video, flow_params=flow_params,
                                 params=params)
    return {**video_object(video, request), "render": render_object({**render, "video_id": video_id})}


add_list_and_retrieve(router, kind="video", table="videos", columns=VIDEO_COLUMNS, build=video_object, model=Video)
