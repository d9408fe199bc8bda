"""``GET /genius/scene/transitions`` and ``POST /genius/scene/edit``: the transitions the video
stitcher has (:data:`beatframe.music.transitions.REGISTRY`, which also bounds a scene's choice),
and a multi-shot edit of prompted, template or image scenes as a task
(:mod:`beatframe.flows.scene_edit`), on a track's downbeats when given. A scene's image asset and
the reference asset bring their stored licence, attribution and rights holder to the edit's
manifest."""

from __future__ import annotations

import json
import secrets
from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from beatframe.api import idempotency
from beatframe.api.deps import Principal, principal
from beatframe.api.errors import ApiError
from beatframe.api.objects import fetch_one
from beatframe.api.routes.generate import estimate_generation_time, queue_generation
from beatframe.api.routes.assets import image_asset
from beatframe.infra.storage import store_ref
from beatframe.music.scenes import LICENCE_FIELDS
from beatframe.music.transitions import REGISTRY, TRANSITIONS
from beatframe.resources import ESTIMATED_TIME, BeatframeObject
from beatframe.music.limits import MAX_PROMPT_CHARS, SEED_MAX

router = APIRouter()

#: A scene's transition into the next: one of the stitcher's, or ``auto`` (chosen from the music).
SceneTransition = Literal[("auto", *TRANSITIONS)]


class Transition(BeatframeObject):
    type: str
    description: str


class TransitionList(BeatframeObject):
    transitions: list[Transition]


@router.get("/scene/transitions", response_model=TransitionList)
def scene_transitions(who: Principal = Depends(principal)) -> dict:
    """The transitions music videos cut with (on beats; section changes on downbeats)."""
    return {"transitions": [{"type": t.name, "description": t.description} for t in REGISTRY.values()]}


class EditScene(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS)
    template: str | None = Field(None, max_length=64, description="a built-in template's name")
    duration: float = Field(gt=0, le=600, description="seconds")
    asset: str | None = Field(None, max_length=128, description="an image asset (ast_…) to animate in this scene")
    transition: SceneTransition = "auto"


class SceneEditCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenes: list[EditScene] = Field(min_length=1, max_length=50)
    enable_auto_transitions: bool = Field(True, description="scenes without a transition get one chosen from the"
                                                            " music (crossfade without a track); else a cut")
    transition_duration_seconds: float = Field(0.5, ge=0.0, le=5.0)
    enable_character_consistency: bool = Field(True, description="one seed and one palette for every scene")
    track: str | None = Field(None, max_length=128, description="trk_…: scenes change on its downbeats, it is muxed in")
    reference_asset: str | None = Field(None, max_length=128, description="ast_…: its palette paints every scene")
    size: str = Field("1920x1080", description="16:9, 9:16 or 1:1")
    seed: int | None = Field(None, ge=0, le=SEED_MAX)
    webhook_url: str | None = Field(None, max_length=2048)


class EditTransition(BeatframeObject):
    from_scene: int
    to_scene: int
    type: str
    duration: float


class SceneEditAccepted(BeatframeObject):
    task_id: str
    status: str
    total_scenes: int
    total_duration_seconds: float
    transitions: list[EditTransition]
    estimated_time_seconds: float = Field(description=ESTIMATED_TIME)
    estimate_basis: str | None = Field(None, description="what estimated_time_seconds is based on: the generator"
                                                         " and catalog figures priced")
    queue_position: int
    render: str
    webhook_secret: str | None = None


@router.post("/scene/edit", status_code=202, response_model=SceneEditAccepted)
def scene_edit(body: SceneEditCreate, request: Request, who: Principal = Depends(principal)):
    """Queue a multi-shot scene edit (a task: /v1/status, /v1/result, /ws). Honours ``Idempotency-Key``."""
    return idempotency.respond(request, who.project_id, status=202, fingerprint=body.model_dump(mode="json"),
                               work=lambda: _scene_edit(body, request, who))


def _scene_edit(body: SceneEditCreate, request: Request, who: Principal) -> dict:
    from beatframe.music.scenes import plan_scene_edit
    from beatframe.music.schemas import Analysis
    from beatframe.music.video import parse_video_size

    width, height = parse_video_size(body.size)
    scenes = [{**scene.model_dump(), "transition": scene.transition if scene.transition != "auto"
               or body.enable_auto_transitions else "cut"} for scene in body.scenes]
    flow_scenes = [_with_image(request, who, scene) for scene in scenes]
    analysis, audio = None, None
    if body.track:
        track = fetch_one(request, who, "tracks", "id, object_key, analysis, analysis_status", body.track,
                          noun="track", live_rows=True)
        if track["analysis_status"] != "succeeded":
            raise ApiError(409, "track_not_analyzed", f"track {track['id']} is not analysed yet"
                           f" ({track['analysis_status']}); try again once GET /v1/tracks/{{id}}/analysis answers 200",
                           param="track")
        analysis, audio = Analysis.model_validate(track["analysis"]), store_ref(track["object_key"])
    planned, music = plan_scene_edit(flow_scenes, analysis=analysis, transition_seconds=body.transition_duration_seconds)
    frames = planned[-1].last_frame  # at the edit's 30 fps
    eta = estimate_generation_time(request, choice=None, size=(width, height), seconds=frames / 30, fps=30,
                             prompt=" ".join(s["prompt"] for s in scenes if s["prompt"]) or None)
    seed = body.seed if body.seed is not None else secrets.randbelow(SEED_MAX + 1)
    reference, reference_license = image_asset(request, who, body.reference_asset, param="reference_asset") \
        if body.reference_asset else (None, None)
    flow_params = {"scenes": flow_scenes, "audio": audio, "size": f"{width}x{height}", "seed": seed,
                   "transition_seconds": body.transition_duration_seconds,
                   "consistency": body.enable_character_consistency, "reference_image": reference,
                   "reference_license": json.dumps(reference_license, sort_keys=True) if reference_license else None}
    task = queue_generation(request, who, kind="edit", task_request={**body.model_dump(mode="json", exclude={"webhook_url"}),
                                                                "seed": seed},
                      flow_params=flow_params, webhook_url=body.webhook_url)
    return {**task, "total_scenes": len(planned), "total_duration_seconds": round(music.audio.duration, 3),
            "transitions": [{"from_scene": s.index - 1, "to_scene": s.index, "type": s.transition_in,
                             "duration": round(s.transition_frames / 30, 3)} for s in planned[1:]],
            "estimated_time_seconds": eta.seconds, "estimate_basis": eta.based_on}


def _with_image(request: Request, who: Principal, scene: dict) -> dict:
    """A scene as the edit flow takes it: its image asset (if any) as a store reference, with the
    asset's stored licence, attribution and rights holder."""
    if not scene["asset"]:
        return scene
    asset, licensing = image_asset(request, who, scene["asset"], param="asset")
    return {**scene, "asset": asset, **{name: licensing[name] for name in LICENCE_FIELDS}}
