"""``POST /genius/stream/start``: where a task's progress and preview frames stream, ``WS
/genius/stream/ws/{task_id}`` (served by :mod:`beatframe.api.routes.stream`); a task has one stream."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from beatframe.api.deps import Principal, principal
from beatframe.api.routes.generate import find_generation
from beatframe.api.routes.genius.common import not_built
from beatframe.resources import BeatframeObject, ReferenceErrorBody

router = APIRouter()


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
    generation, _ = find_generation(request, who, body.task_id)
    ws_base = str(request.base_url).replace("http", "ws", 1).rstrip("/")
    return {"session_id": generation["id"], "task_id": generation["id"],
            "ws_url": f"{ws_base}/genius/stream/ws/{generation['id']}", "qualities": ["draft", "full"]}
