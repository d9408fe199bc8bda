"""The reference video-generation API's ``/genius/*`` routes (under ``/v1``), wired to what
beatframe really does; an option not built yet (priority scheduling, inputs by URL) answers 501
naming what is missing, never a made-up result.

========================================  ==================================================================
route                                     answers with
========================================  ==================================================================
``POST /genius/orchestrator/select-model``  the model registry's choice for the prompt, length, resolution
                                          and free VRAM (:mod:`beatframe.models.orchestrator`)
``GET  /genius/scene/transitions``        the transitions the video stitcher has (:mod:`beatframe.music.transitions`)
``POST /genius/scene/edit``               a multi-shot edit of prompted, template or image scenes, as a task
                                          (:mod:`beatframe.flows.scene_edit`), on a track's downbeats when given
``POST /genius/batch/submit``             one generate task per prompt, in one transaction (rate-limit
                                          class ``batch``); 501 for priority scheduling and VRAM budgets
``POST /genius/stream/start``             the task's stream: ``WS /genius/stream/ws/{task_id}``
``POST /genius/lipsync/generate``         a mouth animated in a face region of a task's video, following a track's
                                          voice (visemes), as a task
``POST /genius/inpaint/process``          inpainting of a completed task's video, as a task (:mod:`beatframe.flows.post`)
``GET  /genius/decoder/stats``            the step-cache statistics of the project's diffusion renders
``POST /genius/consistency/…``            register an entity by its image; track entities through a task's
                                          video (boxes, confidences, a consistency score)
``GET  /genius/sla/status``               the SLA status (:mod:`beatframe.api.routes.sla`)
``POST /genius/v2v/transform``            a video-to-video transform of a completed task's video, as a task
========================================  ==================================================================
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from beatframe.infra import db
from beatframe.api import idempotency
from beatframe.api.deps import Principal, connection, principal
from beatframe.infra.errors import BadInputError
from beatframe.api.errors import ApiError
from beatframe.api.routes import sla
from beatframe.api.objects import fetch_one
from beatframe.api.routes.assets import cover_inputs
from beatframe.api.routes.generate import REFERENCE_RESPONSES, create_task, find_task, queue_task
from beatframe.music.generation import GenerationRequest, Resolution
from beatframe.resources import BeatframeObject, ReferenceErrorBody, SlaStatus
from beatframe.infra.storage import store_ref

router = APIRouter(prefix="/genius", tags=["genius"], responses=REFERENCE_RESPONSES)

TRANSITION_DESCRIPTIONS = {"cut": "Instant cut", "crossfade": "Smooth blend", "wipe": "Directional wipe",
                           "zoom": "Zoom transition", "blur": "Blur effect",
                           "morph": "Optical-flow morph between the two shots"}


def not_built(feature: str, missing: str) -> ApiError:
    return ApiError(501, "not_implemented", f"{feature} is not built yet: {missing}")


# --- orchestrator


class SelectModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=2000)
    duration_seconds: float = Field(4.0, gt=0, le=60.0)
    target_resolution: Resolution = "720p"
    max_vram_gb: float | None = Field(None, gt=0, le=1024, description="the most VRAM the model may use")
    prefer_quality: bool = True


class ModelAlternative(BeatframeObject):
    model: str
    vram_gb: float
    speed_factor: float


class ModelChoice(BeatframeObject):
    recommended_model: str
    complexity: str
    confidence: float
    estimated_time_seconds: float
    vram_required_gb: float
    alternatives: list[ModelAlternative]
    reason: str | None = Field(None, description="why this model (e.g. no GPU, no local weights)")


@router.post("/orchestrator/select-model", response_model=ModelChoice)
def select_model(body: SelectModel, request: Request, who: Principal = Depends(principal)) -> dict:
    """The model this deployment would use: its free VRAM and the weights under BEATFRAME_MODELS_DIR count."""
    from beatframe.models import orchestrator

    choice = orchestrator.select_model(
        prompt=body.prompt, duration_seconds=body.duration_seconds, resolution=body.target_resolution,
        free_vram_gb=orchestrator.free_vram_gb(), max_vram_gb=body.max_vram_gb, prefer_quality=body.prefer_quality,
        available=orchestrator.installed_models(request.app.state.settings.models_dir))
    return {**choice.as_reference(), "reason": choice.reason}


# --- scenes


class Transition(BeatframeObject):
    type: str
    description: str


class TransitionList(BeatframeObject):
    transitions: list[Transition]


@router.get("/scene/transitions", response_model=TransitionList)
def scene_transitions(who: Principal = Depends(principal)) -> dict:
    """The transitions music videos cut with (on beats; section changes on downbeats)."""
    from beatframe.music.transitions import TRANSITIONS

    return {"transitions": [{"type": kind, "description": TRANSITION_DESCRIPTIONS[kind]} for kind in TRANSITIONS]}


class EditScene(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(None, max_length=2000)
    template: str | None = Field(None, max_length=64, description="a built-in template's name")
    duration: float = Field(gt=0, le=600, description="seconds")
    asset: str | None = Field(None, max_length=128, description="an image asset (ast_…) to animate in this scene")
    transition: Literal["auto", "cut", "crossfade", "wipe", "zoom", "blur", "morph"] = "auto"


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
    seed: int | None = Field(None, ge=0, lt=2**32)
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
    estimated_time_seconds: float
    queue_position: int
    render: str
    webhook_secret: str | None = None


@router.post("/scene/edit", status_code=202, response_model=SceneEditAccepted)
def scene_edit(body: SceneEditCreate, request: Request, who: Principal = Depends(principal)):
    """Queue a multi-shot scene edit (a task: /v1/status, /v1/result, /ws). Honours ``Idempotency-Key``."""
    return idempotency.respond(request, who.project_id, status=202, fingerprint=body.model_dump(mode="json"),
                               work=lambda: _scene_edit(body, request, who))


def _scene_edit(body: SceneEditCreate, request: Request, who: Principal) -> dict:
    from beatframe.music.generation import PROCEDURAL_PIXELS_PER_SECOND
    from beatframe.music.scenes import plan_scene_edit
    from beatframe.music.schemas import Analysis
    from beatframe.music.video import parse_video_size

    width, height = parse_video_size(body.size)
    scenes = [{**scene.model_dump(), "transition": scene.transition if scene.transition != "auto"
               or body.enable_auto_transitions else "cut"} for scene in body.scenes]
    flow_scenes = [{**scene, "asset": _image_ref(request, who, scene["asset"], "asset") if scene["asset"] else None}
                   for scene in scenes]
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
    seed = body.seed if body.seed is not None else secrets.randbelow(2**32)
    flow_params = {"scenes": flow_scenes, "audio": audio, "size": f"{width}x{height}", "seed": seed,
                   "transition_seconds": body.transition_duration_seconds,
                   "consistency": body.enable_character_consistency,
                   "reference_image": _image_ref(request, who, body.reference_asset, "reference_asset")
                   if body.reference_asset else None}
    task = queue_task(request, who, kind="edit", task_request={**body.model_dump(mode="json", exclude={"webhook_url"}),
                                                                "seed": seed},
                      flow_params=flow_params, webhook_url=body.webhook_url)
    frames = planned[-1].last_frame
    return {**task, "total_scenes": len(planned), "total_duration_seconds": round(music.audio.duration, 3),
            "transitions": [{"from_scene": s.index - 1, "to_scene": s.index, "type": s.transition_in,
                             "duration": round(s.transition_frames / 30, 3)} for s in planned[1:]],
            "estimated_time_seconds": round(5.0 + frames * width * height / PROCEDURAL_PIXELS_PER_SECOND, 1)}


def _image_ref(request: Request, who: Principal, asset_id: str, param: str) -> str:
    """The store reference of one of the caller's image assets (400 naming ``param`` for another kind)."""
    try:
        return cover_inputs(request, who, asset_id)["cover"]
    except ApiError as exc:
        raise ApiError(exc.status, exc.code, exc.message.replace("cover_asset", param), param=param) from None


# --- batches


class BatchSubmit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompts: list[Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")]] = Field(
        min_length=1, max_length=50, description="one generate task each (1-50 prompts of 1-2000 characters)")
    priority: Literal["low", "normal", "high"] = "normal"
    enable_similarity_caching: bool = Field(True, description="prompts without a seed get one from their text,"
                                            " so an exact repeat is served from the render cache")
    max_concurrent: int | None = Field(None, ge=1, le=64)
    vram_budget_gb: float | None = Field(None, ge=0.5, le=1024, description="GPU memory the tasks' diffusion"
                                         " calls may be packed into: tasks of the same shape that run at once"
                                         " share batched calls up to it")
    duration_seconds: float = Field(4.0, ge=1.0, le=60.0)
    fps: int = Field(24, ge=12, le=60)
    resolution: Resolution = "720p"
    aspect_ratio: Literal["16:9", "9:16", "1:1", "4:3"] = "16:9"
    genre: str = Field("cinematic", min_length=1, max_length=64)
    seed: int | None = Field(None, ge=0, lt=2**32)


class BatchAccepted(BeatframeObject):
    batch_id: str
    task_ids: list[str]
    total: int
    estimated_time_seconds: float
    queue_position: int


@router.post("/batch/submit", status_code=202, response_model=BatchAccepted, responses={501: {
    "model": ReferenceErrorBody, "description": "priority scheduling or a per-batch concurrency cap asked for:"
                                                " not built"}})
def batch_submit(body: BatchSubmit, request: Request, who: Principal = Depends(principal)):
    """Queue one generate task per prompt, all or none. Honours ``Idempotency-Key``."""
    if body.priority != "normal":
        raise not_built("priority scheduling", "tasks run first come, first served; send priority=normal")
    if body.max_concurrent is not None:
        raise not_built("a per-batch concurrency cap", "the API's runner (BEATFRAME_RENDER_WORKERS) or the work"
                        " pool's workers bound how many tasks run at once; leave max_concurrent out")
    return idempotency.respond(request, who.project_id, status=202, fingerprint=body.model_dump(mode="json"),
                               work=lambda: _batch(body, request, who))


def _batch(body: BatchSubmit, request: Request, who: Principal) -> dict:
    shared = body.model_dump(include={"duration_seconds", "fps", "resolution", "aspect_ratio", "genre"})
    batch_id = db.new_id("bat")
    accepted = []
    for prompt in body.prompts:
        seed = body.seed
        if seed is None and body.enable_similarity_caching:
            blob = json.dumps({"prompt": prompt, **shared}, sort_keys=True).encode()
            seed = int.from_bytes(hashlib.sha256(blob).digest()[:4], "little")
        generation = GenerationRequest.model_validate({"prompt": prompt, "seed": seed, **shared})
        accepted.append(create_task(generation, request, who, batch_id=batch_id, vram_budget_gb=body.vram_budget_gb))
    return {"batch_id": batch_id, "task_ids": [task["task_id"] for task in accepted], "total": len(accepted),
            "estimated_time_seconds": round(sum(task["estimated_time_seconds"] for task in accepted), 1),
            "queue_position": accepted[0]["queue_position"]}


# --- progressive streaming


class StreamStart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(min_length=1, max_length=128)
    initial_quality: Literal["preview", "full"] = "preview"
    enable_adaptive: bool = True


class StreamSession(BeatframeObject):
    session_id: str = Field(description="the task id: a task has one stream")
    task_id: str
    ws_url: str = Field(description="connect with the API key (Authorization header or ?api_key=)")
    qualities: list[str] = Field(description="preview frames come as a draft first, then full quality")


@router.post("/stream/start", response_model=StreamSession, responses={501: {
    "model": ReferenceErrorBody, "description": "a stream quality choice asked for: not built"}})
def stream_start(body: StreamStart, request: Request, who: Principal = Depends(principal)) -> dict:
    """Where a task's progress and preview frames stream (any number of clients may connect)."""
    if body.initial_quality != "preview" or not body.enable_adaptive:
        raise not_built("choosing stream qualities", "every stream sends a draft preview first and the"
                        " full-quality frame next")
    generation, _ = find_task(request, who, body.task_id)
    ws_base = str(request.base_url).replace("http", "ws", 1).rstrip("/")
    return {"session_id": generation["id"], "task_id": generation["id"],
            "ws_url": f"{ws_base}/genius/stream/ws/{generation['id']}", "qualities": ["draft", "full"]}


# --- decoder statistics: the step cache of the diffusion renders


class DecoderStats(BeatframeObject):
    renders: int = Field(description="recent diffusion renders of this project (Wan), the CPU generators not counted")
    total_steps: int = Field(description="denoising steps they ran")
    average_step_ms: float | None = Field(None, description="mean time of one denoising step")
    cache_reuse_rate: float | None = Field(None, description="share of transformer-block work the step cache"
                                                             " (First Block Cache or Pyramid Attention Broadcast)"
                                                             " reused, over the renders that had one")
    acceptance_rate: float | None = Field(None, description="the reference's name for cache_reuse_rate")
    speedup_factor: float | None = Field(None, description="1 / (1 - cache_reuse_rate): the transformer work"
                                                           " saved; benchmarks/gpu.py measures wall-clock speed-up")


#: How many recent outputs of each kind the statistics cover.
DECODER_STATS_WINDOW = 200


@router.get("/decoder/stats", response_model=DecoderStats)
def decoder_stats(request: Request, who: Principal = Depends(principal)) -> dict:
    """Acceleration statistics of this project's recent diffusion renders, from their manifests.
    The reference describes speculative decoding; beatframe's diffusion backends accelerate by
    reusing transformer work between steps, reported here under the same names."""
    with connection(request) as conn:
        stats = [row["stats"] for table in ("canvases", "videos", "generations") for row in conn.execute(
            f"SELECT manifest->'generator'->'params'->'stats' AS stats FROM {table}"
            " WHERE project_id = %s AND env = %s AND manifest->'generator'->'params' ? 'stats'"
            f" ORDER BY created_at DESC LIMIT {DECODER_STATS_WINDOW}", (who.project_id, who.env))]
    steps = [s for s in stats if s.get("it_per_s")]
    reuse = [s["cache_reuse_rate"] for s in stats if s.get("cache_reuse_rate") is not None]
    rate = round(sum(reuse) / len(reuse), 4) if reuse else None
    return {"renders": len(stats), "total_steps": int(sum(s.get("steps", 0) for s in stats)),
            "average_step_ms": round(1000 * sum(1 / s["it_per_s"] for s in steps) / len(steps), 2) if steps else None,
            "cache_reuse_rate": rate, "acceptance_rate": rate,
            "speedup_factor": round(1 / (1 - rate), 3) if rate is not None and rate < 1 else None}


# --- post-production on a task's video: video-to-video and inpainting (tasks), consistency tracking


def task_video_ref(request: Request, who: Principal, task_id: str, param: str) -> str:
    """The store reference of a completed task's video (404 / 409 naming ``param`` otherwise)."""
    from beatframe.api.signing import object_key

    generation, render = find_task(request, who, task_id)
    if render["status"] != "succeeded" or not generation["manifest"]:
        raise ApiError(409, "task_not_completed", f"task {task_id} has no video yet ({render['status']})", param=param)
    video = next(o for o in generation["manifest"]["outputs"] if o["role"] == "video")
    return store_ref(object_key(request.app.state.store, video["uri"]))


class PostAccepted(BeatframeObject):
    task_id: str
    status: str
    source_task_id: str
    queue_position: int
    render: str
    webhook_secret: str | None = None


def _queue_post(request: Request, who: Principal, *, step: str, source: str, options: dict, body: BaseModel,
                reference_image: str | None = None, reference_video: str | None = None, audio: str | None = None,
                webhook_url: str | None = None) -> dict:
    flow_params = {"video": task_video_ref(request, who, source, "source_task_id"), "step": step,
                   "options": options, "reference_image": reference_image, "reference_video": reference_video,
                   "audio": audio}
    task = queue_task(request, who, kind="post", task_request={"step": step, **body.model_dump(mode="json")},
                      flow_params=flow_params, webhook_url=webhook_url)
    return {**task, "source_task_id": source}


class V2VTransform(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_task_id: str = Field(max_length=128)
    mode: Literal["style_transfer", "motion_transfer", "enhancement", "upscale", "interpolation", "colorization"]
    strength: float = Field(0.7, ge=0.0, le=1.0)
    style_reference_asset: str | None = Field(None, max_length=128, description="ast_…: style_transfer's image"
                                              " (colorization's colours)")
    style_reference_url: str | None = Field(None, max_length=2048, description="not supported: upload the image as"
                                            " an asset and give style_reference_asset")
    reference_task_id: str | None = Field(None, max_length=128, description="a task whose video motion_transfer"
                                          " takes the camera motion of")
    preserve_motion: bool = True
    temporal_consistency: float = Field(0.8, ge=0.0, le=1.0)
    factor: int = Field(2, ge=2, le=4, description="upscale's size or interpolation's frame-rate factor")
    palette: str | None = Field(None, max_length=32, description="colorization's named palette")
    webhook_url: str | None = Field(None, max_length=2048)


@router.post("/v2v/transform", status_code=202, response_model=PostAccepted, responses={501: {
    "model": ReferenceErrorBody, "description": "a reference image by URL: not built"}})
def v2v_transform(body: V2VTransform, request: Request, who: Principal = Depends(principal)):
    """Transform a completed task's video (a task: /v1/status, /v1/result). Honours ``Idempotency-Key``."""
    if body.style_reference_url is not None:
        raise not_built("reference images by URL", "upload the image (POST /v1/assets) and give style_reference_asset")
    options = {"mode": body.mode, "strength": body.strength, "preserve_motion": body.preserve_motion,
               "temporal_consistency": body.temporal_consistency, "factor": body.factor,
               **({"palette": body.palette} if body.palette else {})}

    def work() -> dict:
        reference = _image_ref(request, who, body.style_reference_asset, "style_reference_asset") \
            if body.style_reference_asset else None
        motion = task_video_ref(request, who, body.reference_task_id, "reference_task_id") \
            if body.reference_task_id else None
        return _queue_post(request, who, step="v2v", source=body.source_task_id, options=options, body=body,
                           reference_image=reference, reference_video=motion, webhook_url=body.webhook_url)

    return idempotency.respond(request, who.project_id, status=202, fingerprint=body.model_dump(mode="json"),
                               work=work)


class InpaintProcess(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(max_length=128, description="the task whose video is inpainted")
    mode: Literal["remove", "replace", "blend", "background", "extend"]
    bbox: list[int] | None = Field(None, min_length=4, max_length=4, description="[x0, y0, x1, y1] in pixels")
    feather_radius: int = Field(10, ge=0, le=200)
    replacement_asset: str | None = Field(None, max_length=128, description="ast_…: what replace, blend or"
                                          " background put in")
    target_aspect: str | None = Field(None, max_length=16, description="extend's aspect ratio, e.g. 9:16")
    webhook_url: str | None = Field(None, max_length=2048)


@router.post("/inpaint/process", status_code=202, response_model=PostAccepted)
def inpaint_process(body: InpaintProcess, request: Request, who: Principal = Depends(principal)):
    """Inpaint a completed task's video (a task: /v1/status, /v1/result). Honours ``Idempotency-Key``."""
    options = {"mode": body.mode, "feather_radius": body.feather_radius,
               **({"box": body.bbox} if body.bbox else {}),
               **({"target_aspect": body.target_aspect} if body.target_aspect else {})}

    def work() -> dict:
        replacement = _image_ref(request, who, body.replacement_asset, "replacement_asset") \
            if body.replacement_asset else None
        return _queue_post(request, who, step="inpaint", source=body.task_id, options=options, body=body,
                           reference_image=replacement, webhook_url=body.webhook_url)

    return idempotency.respond(request, who.project_id, status=202, fingerprint=body.model_dump(mode="json"),
                               work=work)


class LipsyncGenerate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(max_length=128, description="the task whose video gets the moving mouth")
    track: str | None = Field(None, max_length=128, description="trk_…: the voice the mouth follows")
    audio_url: str | None = Field(None, max_length=2048, description="not supported: upload it as a track")
    face_region: list[int] = Field(min_length=4, max_length=4, description="[x0, y0, x1, y1] in pixels")
    expression: Literal["neutral", "happy", "sad", "surprised", "angry"] = "neutral"
    intensity: float = Field(1.0, ge=0.0, le=2.0)
    start: float = Field(0.0, ge=0.0, description="the track time of the video's first frame (s)")
    follow: bool = Field(False, description="track the face through the video and move the mouth with it"
                                            " (face_region: where it is in the first frame)")
    force: bool = Field(False, description="lip-sync a Canvas-shaped clip (silent, 9:16, at most 8 s) anyway:"
                                           " Spotify forbids singing faces on a Canvas")
    webhook_url: str | None = Field(None, max_length=2048)


@router.post("/lipsync/generate", status_code=202, response_model=PostAccepted, responses={501: {
    "model": ReferenceErrorBody, "description": "audio by URL: not built"}})
def lipsync_generate(body: LipsyncGenerate, request: Request, who: Principal = Depends(principal)):
    """Animate a mouth in a face region of a completed task's video, following a track's voice (a task)."""
    if body.audio_url is not None:
        raise not_built("audio by URL", "upload the audio (POST /v1/tracks) and give its id as track")
    if body.track is None:
        raise ApiError(400, "parameter_missing", "give the track whose voice the mouth follows", param="track")
    options = {"face_region": body.face_region, "expression": body.expression, "intensity": body.intensity,
               "start": body.start, "force": body.force, "follow": body.follow}

    def work() -> dict:
        track = fetch_one(request, who, "tracks", "id, object_key", body.track, noun="track", live_rows=True)
        return _queue_post(request, who, step="lipsync", source=body.task_id, options=options, body=body,
                           audio=store_ref(track["object_key"]), webhook_url=body.webhook_url)

    return idempotency.respond(request, who.project_id, status=202, fingerprint=body.model_dump(mode="json"),
                               work=work)


class EntityRegister(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    entity_type: Literal["character", "object", "animal", "vehicle", "prop", "logo"] = "character"
    reference_image_base64: str = Field(min_length=8, max_length=14_000_000, description="PNG or JPEG, base64")


class EntityRegistered(BeatframeObject):
    entity_id: str
    name: str
    entity_type: str
    width: int
    height: int


@router.post("/consistency/register-entity", status_code=201, response_model=EntityRegistered)
def register_entity(body: EntityRegister, request: Request, who: Principal = Depends(principal)):
    """Register an entity by its reference image, for /genius/consistency/track."""
    import base64
    import binascii
    import tempfile
    from pathlib import Path

    from beatframe.music.images import load_image

    try:
        data = base64.b64decode(body.reference_image_base64, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "parameter_invalid", "reference_image_base64 is not base64",
                       param="reference_image_base64") from None

    def work() -> dict:
        entity_id = db.new_id("ent")
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "reference"
            path.write_bytes(data)
            try:
                image = load_image(path, what="reference image")
            except BadInputError as exc:
                raise ApiError(400, "parameter_invalid", str(exc).replace(str(path), "reference_image_base64"),
                               param="reference_image_base64") from None
            key = f"projects/{who.project_id}/entities/{entity_id}"
            request.app.state.store.put_file(key, str(path), content_type="application/octet-stream")
        with connection(request) as conn:
            conn.execute("INSERT INTO entities (id, project_id, env, name, entity_type, object_key)"
                         " VALUES (%s, %s, %s, %s, %s, %s)",
                         (entity_id, who.project_id, who.env, body.name, body.entity_type, key))
        return {"entity_id": entity_id, "name": body.name, "entity_type": body.entity_type,
                "width": int(image.shape[1]), "height": int(image.shape[0])}

    return idempotency.respond(request, who.project_id, status=201,
                               fingerprint={"name": body.name, "type": body.entity_type,
                                            "image": hashlib.sha256(data).hexdigest()}, work=work)


class TrackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity_ids: list[str] | None = Field(None, min_length=1, max_length=10, description="default: every entity"
                                         " of the project (at most 10)")


class TrackReport(BeatframeObject):
    task_id: str
    entities_tracked: int
    frames_analyzed: int
    consistency_score: float
    entity_timelines: dict
    entity_scores: dict | None = None


#: The most entities one tracking request follows (each is a pass over the clip).
MAX_TRACKED = 10


@router.post("/consistency/track/{task_id}", response_model=TrackReport)
def track_in_task(task_id: str, request: Request, body: TrackRequest | None = None,
                  who: Principal = Depends(principal)) -> dict:
    """Track registered entities through a completed task's video: a box and a confidence per frame,
    and a consistency score (the reference's answer, computed now)."""
    import tempfile
    from pathlib import Path

    from beatframe.infra.encode import decode_frames
    from beatframe.models.tracking import register_entity as entity_of
    from beatframe.models.tracking import track_report
    from beatframe.music.images import load_image

    video_ref = task_video_ref(request, who, task_id, "task_id")
    with connection(request) as conn:
        if body is not None and body.entity_ids:
            rows = conn.execute("SELECT id, name, entity_type, object_key FROM entities WHERE project_id = %s"
                                " AND env = %s AND id = ANY(%s)", (who.project_id, who.env, body.entity_ids)).fetchall()
            missing = sorted(set(body.entity_ids) - {r["id"] for r in rows})
            if missing:
                raise ApiError(404, "resource_missing", f"no entity {missing[0]!r}", param="entity_ids")
        else:
            rows = conn.execute("SELECT id, name, entity_type, object_key FROM entities WHERE project_id = %s"
                                " AND env = %s ORDER BY created_at DESC LIMIT %s",
                                (who.project_id, who.env, MAX_TRACKED)).fetchall()
    if not rows:
        raise ApiError(400, "parameter_invalid", "register an entity first (POST /v1/genius/consistency/"
                       "register-entity)", param="entity_ids")
    store = request.app.state.store
    with tempfile.TemporaryDirectory() as scratch:
        video = Path(scratch) / "video.mp4"
        store.get_file(video_ref.split(":", 1)[1], video)
        frames, _ = decode_frames(video)
        entities = []
        for row in rows:
            path = Path(scratch) / row["id"]
            store.get_file(row["object_key"], path)
            entities.append(entity_of(name=row["name"], entity_type=row["entity_type"],
                                      reference_image=load_image(path, what=f"entity {row['id']}")))
    return {"task_id": task_id, **track_report(frames, entities=entities)}


router.add_api_route("/sla/status", sla.get_sla_status, methods=["GET"], response_model=SlaStatus,
                     summary="The SLA status (the same as GET /v1/sla/status)")
