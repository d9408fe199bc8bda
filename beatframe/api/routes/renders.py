"""``/v1/renders``: the Prefect flow runs that make canvases and videos, as the API reports them.

A render goes queued -> running -> succeeded | failed | canceled, with ``progress``, the current
``stage``, every stage's status, the cost lines and the error. :func:`queue_render` is how the
canvas and video routes create one.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from psycopg.types.json import Jsonb

from beatframe.infra import db
from beatframe.api import idempotency
from beatframe.api.deps import Principal, after_commit, connection, principal
from beatframe.api.errors import ApiError
from beatframe.api.live import preview_prefix
from beatframe.api.objects import RENDER_COLUMNS, listing, render_object, render_row
from beatframe.api.runner import emit_render_event, initial_stages
from beatframe.resources import ListObject, Render

router = APIRouter(prefix="/renders", tags=["renders"])


def queue_render(request: Request, who: Principal, *, kind: str, insert_target, flow_params: dict,
                 params: dict) -> tuple[dict, dict]:
    """Create a queued render and the canvas or video it makes, and hand the render to the runner
    once that committed. ``insert_target(conn, render_id)`` inserts the target and returns its row."""
    runner = request.app.state.runner
    render_id = db.new_id("rnd")
    with connection(request) as conn:
        render = conn.execute(
            f"INSERT INTO renders (id, project_id, env, kind, params, stages, backend) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            f" RETURNING {RENDER_COLUMNS}",
            (render_id, who.project_id, who.env, kind, Jsonb(params), Jsonb(initial_stages(kind)), runner.backend),
        ).fetchone()
        target = insert_target(conn, render_id)
        emit_render_event(conn, render_id, "render.created")
    flow_params = {**flow_params, "previews": preview_prefix(who.project_id, render_id)}
    after_commit(request, lambda: runner.submit(render_id=render_id, kind=kind, flow_params=flow_params))
    return render, target


@router.get("", response_model=ListObject[Render])
def list_renders(request: Request, who: Principal = Depends(principal), limit: int = Query(10, ge=1, le=100),
                 starting_after: str | None = None, ending_before: str | None = None) -> dict:
    return listing(request, who, table="render_objects", columns=RENDER_COLUMNS + ", canvas_id, video_id, generation_id",
                   build=render_object, limit=limit, starting_after=starting_after, ending_before=ending_before)


@router.get("/{render_id}", response_model=Render)
def retrieve_render(render_id: str, request: Request, who: Principal = Depends(principal)) -> dict:
    return render_object(render_row(request, who, render_id))


@router.post("/{render_id}/cancel", response_model=Render)
def cancel_render(render_id: str, request: Request, who: Principal = Depends(principal)):
    """Cancel a queued or running render; a finished one answers 409."""
    def work() -> dict:
        render_row(request, who, render_id)
        if request.app.state.runner.cancel(render_id) is None:
            status = render_row(request, who, render_id)["status"]
            raise ApiError(409, "render_not_cancelable", f"the render is {status}; only a queued or running render"
                           " can be canceled", param="id")
        return render_object(render_row(request, who, render_id))

    return idempotency.respond(request, who.project_id, status=200, fingerprint={"render": render_id}, work=work)
