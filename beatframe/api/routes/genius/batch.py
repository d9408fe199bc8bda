"""``POST /genius/batch/submit``: one generate task per prompt, all queued in one transaction
(rate-limit class ``batch``); priority scheduling and a per-batch concurrency cap answer 501."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from beatframe.api import idempotency
from beatframe.api.deps import Principal, principal
from beatframe.api.routes.generate import create_generation
from beatframe.api.routes.genius.common import not_built
from beatframe.infra import db
from beatframe.resources import ESTIMATED_TIME, BeatframeObject, ReferenceErrorBody
from beatframe.music.generation import GenerationRequest, Resolution
from beatframe.music.limits import DEFAULT_FPS, FPS_RANGE, MAX_PROMPT_CHARS, SEED_MAX

router = APIRouter()


class BatchSubmit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompts: list[Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS, pattern=r"\S")]] = Field(
        min_length=1, max_length=50, description="one generate task each (1-50 prompts of 1-2000 characters)")
    priority: Literal["low", "normal", "high"] = "normal"
    enable_similarity_caching: bool = Field(True, description="prompts without a seed get one from their text,"
                                            " so an exact repeat is served from the render cache")
    max_concurrent: int | None = Field(None, ge=1, le=64)
    vram_budget_gb: float | None = Field(None, ge=0.5, le=1024, description="GPU memory the tasks' diffusion"
                                         " calls may be packed into: tasks of the same shape that run at once"
                                         " share batched calls up to it")
    duration_seconds: float = Field(4.0, ge=1.0, le=60.0)
    fps: int = Field(DEFAULT_FPS, ge=FPS_RANGE[0], le=FPS_RANGE[1])
    resolution: Resolution = "720p"
    aspect_ratio: Literal["16:9", "9:16", "1:1", "4:3"] = "16:9"
    genre: str = Field("cinematic", min_length=1, max_length=64)
    seed: int | None = Field(None, ge=0, le=SEED_MAX)


class BatchAccepted(BeatframeObject):
    batch_id: str
    task_ids: list[str]
    total: int
    estimated_time_seconds: float = Field(description=f"the sum of the tasks' estimates, each {ESTIMATED_TIME}")
    estimate_basis: str | None = Field(None, description="what the first task's estimate is based on")
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
        accepted.append(create_generation(generation, request, who, batch_id=batch_id, vram_budget_gb=body.vram_budget_gb))
    return {"batch_id": batch_id, "task_ids": [task["task_id"] for task in accepted], "total": len(accepted),
            "estimated_time_seconds": round(sum(task["estimated_time_seconds"] for task in accepted), 1),
            "estimate_basis": accepted[0]["estimate_basis"],
            "queue_position": accepted[0]["queue_position"]}
