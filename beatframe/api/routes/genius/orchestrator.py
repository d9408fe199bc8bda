"""``POST /genius/orchestrator/select-model``: the model the registry would pick for a prompt, a
length, a resolution and this deployment's free VRAM (:mod:`beatframe.models.orchestrator`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from beatframe.api.deps import Principal, principal
from beatframe.resources import BeatframeObject
from beatframe.music.generation import Resolution
from beatframe.music.limits import MAX_PROMPT_CHARS

router = APIRouter()


class SelectModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    duration_seconds: float = Field(4.0, gt=0, le=60.0)
    target_resolution: Resolution = "720p"
    max_vram_gb: float | None = Field(None, gt=0, le=1024, description="the most VRAM the model may use")
    prefer_quality: bool = True


class ModelAlternative(BeatframeObject):
    model: str
    vram_gb: float = Field(description="a catalog heuristic: the model card's or an estimated planning figure")
    speed_factor: float = Field(description="a catalog heuristic, not measured: the pick's estimated time over this"
                                            " model's (above 1: faster than the pick)")


class ModelChoice(BeatframeObject):
    recommended_model: str
    complexity: str = Field(description="a heuristic: points for the prompt's length, subjects, motion and scenes")
    confidence: float = Field(description="a heuristic from the catalog, not a calibrated probability: how well the"
                                          " pick's quality rank, upscaling, memory headroom and clip count suit the"
                                          " request (0-1)")
    estimated_time_seconds: float = Field(description="a catalog heuristic, not measured: the model catalog's"
                                                       " planning figures for generating the frames, model loading"
                                                       " excluded")
    vram_required_gb: float = Field(description="a catalog heuristic: the planning figure for the pick as it would"
                                                " run (resident or offloaded)")
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
