"""``POST /genius/consistency/register-entity`` and ``POST /genius/consistency/track/{task_id}``:
register an entity by its reference image, and track registered entities through a completed
task's video (a box and a confidence per frame, and a consistency score;
:mod:`beatframe.models.following`)."""

from __future__ import annotations

import hashlib
from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from beatframe.api import idempotency
from beatframe.api.deps import Principal, connection, principal
from beatframe.api.errors import ApiError
from beatframe.api.routes.genius.common import generation_video
from beatframe.infra import db
from beatframe.infra.errors import BadInputError
from beatframe.resources import BeatframeObject

router = APIRouter()


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
    from beatframe.models.following import follow_report
    from beatframe.models.following import register_entity as entity_of
    from beatframe.music.images import load_image

    video_ref, _ = generation_video(request, who, task_id, "task_id")
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
    return {"task_id": task_id, **follow_report(frames, entities=entities)}
