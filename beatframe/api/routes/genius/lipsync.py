"""``POST /genius/lipsync/generate``: a mouth animated in a face region of a completed task's
video, following a track's voice (visemes), as a task (:func:`beatframe.models.lipsync.lipsync_frames`
in :mod:`beatframe.flows.post`)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from beatframe.api import idempotency
from beatframe.api.deps import Principal, principal
from beatframe.api.errors import ApiError
from beatframe.api.objects import fetch_one
from beatframe.api.routes.genius.common import PostAccepted, not_built, queue_post
from beatframe.infra.storage import store_ref
from beatframe.resources import ReferenceErrorBody

router = APIRouter()


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
        return queue_post(request, who, step="lipsync", source=body.task_id, options=options, body=body,
                          audio=store_ref(track["object_key"]), webhook_url=body.webhook_url)

    return idempotency.respond(request, who.project_id, status=202, fingerprint=body.model_dump(mode="json"),
                               work=work)
