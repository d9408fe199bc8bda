"""``POST /genius/inpaint/process``: inpainting of a completed task's video, as a task
(:func:`beatframe.models.inpaint.inpaint_frames` in :mod:`beatframe.flows.post`).

Each mode needs some of the route's region and content options and refuses the rest, as
``inpaint_frames`` does; the route answers 400 naming the option before it queues anything, so
no task is accepted only to fail when it runs."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from beatframe.api import idempotency
from beatframe.api.deps import Principal, principal
from beatframe.api.routes.assets import image_asset
from beatframe.api.routes.genius.common import PostAccepted, check_mode_options, check_source_size, queue_post
from beatframe.infra.modes import ModeOptions
from beatframe.models.inpaint import check_box

router = APIRouter()

#: Each mode: what it does and the options of :class:`InpaintProcess` it needs (it refuses the
#: others). The route has no prompt and no mask, so a region is always a bbox and replace's
#: content always an image asset; ``inpaint_frames`` takes a ``background`` mode's own content as
#: ``background=``, which the post-production task does not pass, so that mode blurs the clip's
#: own background.
MODES = {"remove": ModeOptions("fills the bbox region from its surroundings", needs=("bbox",)),
         "replace": ModeOptions("puts replacement_asset in the bbox region", needs=("bbox", "replacement_asset")),
         "blend": ModeOptions("overlays replacement_asset on the bbox region", needs=("bbox", "replacement_asset")),
         "background": ModeOptions("keeps the bbox region and blurs the clip's own background around it",
                                   needs=("bbox",)),
         "extend": ModeOptions("grows the whole frame to target_aspect", needs=("target_aspect",))}


class InpaintProcess(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(max_length=128, description="the task whose video is inpainted")
    mode: Literal["remove", "replace", "blend", "background", "extend"]
    bbox: list[int] | None = Field(None, min_length=4, max_length=4, description="[x0, y0, x1, y1] in pixels")
    feather_radius: int = Field(10, ge=0, le=200)
    replacement_asset: str | None = Field(None, max_length=128, description="ast_…: what replace or blend put in")
    target_aspect: str | None = Field(None, max_length=16, description="extend's aspect ratio, e.g. 9:16")
    webhook_url: str | None = Field(None, max_length=2048)


@router.post("/inpaint/process", status_code=202, response_model=PostAccepted)
def inpaint_process(body: InpaintProcess, request: Request, who: Principal = Depends(principal)):
    """Inpaint a completed task's video (a task: /v1/status, /v1/result). Honours ``Idempotency-Key``."""
    check_mode_options(body, MODES)
    options = {"mode": body.mode, "feather_radius": body.feather_radius,
               **({"box": body.bbox} if body.bbox else {}),
               **({"target_aspect": body.target_aspect} if body.target_aspect else {})}

    def work() -> dict:
        if body.bbox:
            check_source_size(request, who, body.task_id, source_param="task_id", param="bbox",
                              check=lambda width, height: check_box(body.bbox, width=width, height=height))
        replacement = image_asset(request, who, body.replacement_asset, param="replacement_asset") \
            if body.replacement_asset else None
        return queue_post(request, who, step="inpaint", source=body.task_id, options=options, body=body,
                          reference_image=replacement, webhook_url=body.webhook_url)

    return idempotency.respond(request, who.project_id, status=202, fingerprint=body.model_dump(mode="json"),
                               work=work)
