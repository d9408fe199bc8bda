"""``POST /genius/v2v/transform``: a video-to-video transform of a completed task's video, as a
task (:func:`beatframe.models.v2v.transform` in :mod:`beatframe.flows.post`).

Each mode needs some of the style image, the motion reference and the palette and refuses the
rest, by ``transform``'s own table (:data:`beatframe.models.v2v.MODE_INPUTS`); the route answers
400 naming the option before it queues anything, so no task is accepted only to fail when it runs."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from beatframe.api import idempotency
from beatframe.api.deps import Principal, principal
from beatframe.api.routes.assets import image_asset
from beatframe.api.routes.genius.common import (PostAccepted, check_mode_options, check_source_size, not_built,
                                                queue_post, generation_video)
from beatframe.models.v2v import MODE_INPUTS, MODES, PALETTES, check_upscale
from beatframe.resources import ReferenceErrorBody

router = APIRouter()

#: The request field of each of ``transform``'s inputs in :data:`MODE_INPUTS` (the palette's is its own).
MODE_FIELDS = {"reference_image": "style_reference_asset", "reference_frames": "reference_task_id"}


class V2VTransform(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_task_id: str = Field(max_length=128)
    mode: Literal[MODES]
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
    palette: Literal[tuple(PALETTES)] | None = Field(None, description="colorization's named palette")
    webhook_url: str | None = Field(None, max_length=2048)


@router.post("/v2v/transform", status_code=202, response_model=PostAccepted, responses={501: {
    "model": ReferenceErrorBody, "description": "a reference image by URL: not built"}})
def v2v_transform(body: V2VTransform, request: Request, who: Principal = Depends(principal)):
    """Transform a completed task's video (a task: /v1/status, /v1/result). Honours ``Idempotency-Key``."""
    if body.style_reference_url is not None:
        raise not_built("reference images by URL", "upload the image (POST /v1/assets) and give style_reference_asset")
    check_mode_options(body, MODE_INPUTS, fields=MODE_FIELDS)
    options = {"mode": body.mode, "strength": body.strength, "preserve_motion": body.preserve_motion,
               "temporal_consistency": body.temporal_consistency, "factor": body.factor,
               **({"palette": body.palette} if body.palette else {})}

    def work() -> dict:
        if body.mode == "upscale":
            check_source_size(request, who, body.source_task_id, source_param="source_task_id", param="factor",
                              check=lambda width, height: check_upscale(width=width, height=height,
                                                                         factor=body.factor))
        reference = image_asset(request, who, body.style_reference_asset, param="style_reference_asset") \
            if body.style_reference_asset else None
        motion = generation_video(request, who, body.reference_task_id, "reference_task_id") \
            if body.reference_task_id else None
        return queue_post(request, who, step="v2v", source=body.source_task_id, options=options, body=body,
                          reference_image=reference, reference_video=motion, webhook_url=body.webhook_url)

    return idempotency.respond(request, who.project_id, status=202, fingerprint=body.model_dump(mode="json"),
                               work=work)
