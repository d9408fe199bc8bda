"""``WS /v1/renders/{id}/stream``: a render as it happens, over a WebSocket; and the reference
video-generation API's ``WS /ws/{task_id}`` (also ``/v1/ws/{task_id}`` and
``/genius/stream/ws/{task_id}``), the same stream of a generate task in that API's event shapes.

Authenticate with ``Authorization: Bearer …`` or, where a client cannot set headers (browsers),
``?api_key=…``. The stream opens with the render's current progress and any preview frames
already made, then relays its live events (:mod:`beatframe.api.live`) until ``complete`` or
``error``, and closes. Progress never goes backwards on one stream; ``frame_available`` carries
a signed URL of the preview (a draft first, the full-quality frame later). Close codes: 4401
without a valid key, 4404 for a render the key cannot see.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool

from beatframe.infra import db
from beatframe.api.deps import looks_like_id
from beatframe.api.live import PREVIEW_QUALITIES, preview_prefix
from beatframe.api.signing import download_url

router = APIRouter(tags=["renders"])
#: With no event for this long, the stream re-reads the render (an event lost to a reconnect
#: cannot leave a client waiting forever).
RECHECK_SECONDS = 10.0
_FINISHED = {"succeeded": "complete", "failed": "error", "canceled": "error"}


def _key(websocket: WebSocket) -> str:
    header = websocket.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else websocket.query_params.get("api_key", "")


def _render(pool, render_id: str, who: dict) -> dict | None:
    if not looks_like_id(render_id):
        return None
    with pool.connection() as conn:
        return conn.execute("SELECT id, project_id, status, progress, stage, error FROM renders"
                            " WHERE id = %s AND project_id = %s AND env = %s",
                            (render_id, who["project_id"], who["env"])).fetchone()


def _finished_event(render: dict) -> dict | None:
    kind = _FINISHED.get(render["status"])
    if kind == "complete":
        return {"type": "complete", "render": render["id"], "status": render["status"]}
    if kind == "error":
        error = render["error"] or {"type": "invalid_request_error", "code": "render_canceled",
                                    "message": "the render was canceled"}
        return {"type": "error", "render": render["id"], "error": error}
    return None


@router.websocket("/renders/{render_id}/stream")
async def stream(websocket: WebSocket, render_id: str) -> None:
    await _relay(websocket, render_id, noun="render", find=_render, adapt=None)


async def _relay(websocket: WebSocket, object_id: str, *, noun: str, find, adapt) -> None:
    """Authenticate, find the render (``find(pool, object_id, who)``), then relay its events, each
    passed through ``await adapt(websocket, event, render)`` when given (``render`` is None on a refusal)."""
    app = websocket.app
    render: dict | None = None

    async def send(event: dict) -> None:
        await websocket.send_json(await adapt(websocket, event, render) if adapt else event)

    async def refuse(code: int, kind: str, error_code: str, message: str) -> None:
        await send({"type": "error", "error": {"type": kind, "code": error_code, "message": message}})
        await websocket.close(code=code)

    await websocket.accept()
    who = await run_in_threadpool(db.authenticate, app.state.pool, _key(websocket))
    if who is None:
        await refuse(4401, "authentication_error", "api_key_invalid", "a valid API key is required")
        return
    render = await run_in_threadpool(find, app.state.pool, object_id, who)
    if render is None:
        await refuse(4404, "invalid_request_error", "resource_missing", f"no {noun} {object_id[:64]!r}")
        return
    render_id = render["id"]
    base_url = _http_base_url(websocket)
    prefix = preview_prefix(render["project_id"], render_id)

    sent: set[str] = set()

    def frame(key: str, quality: str) -> dict:
        sent.add(quality)
        url = download_url(app.state.store, app.state.settings, app.state.store.uri(key), base_url=base_url)
        return {"type": "frame_available", "render": render_id, "quality": quality, "url": url}

    async def send_previews() -> None:
        for quality in PREVIEW_QUALITIES:
            key = f"{prefix}/{quality}.jpg"
            if quality not in sent and await run_in_threadpool(app.state.store.exists, key):
                await send(frame(key, quality))

    queue = app.state.live.subscribe(render_id)  # before the snapshot: nothing falls between the two
    try:
        last = render["progress"]
        await send({"type": "progress", "render": render_id, "progress": last, "stage": render["stage"]})
        await send_previews()
        final = _finished_event(render)
        while final is None:
            try:
                event = await asyncio.wait_for(queue.get(), timeout=RECHECK_SECONDS)
            except asyncio.TimeoutError:
                final = _finished_event(await run_in_threadpool(_render, app.state.pool, render_id, who))
                continue
            if event["type"] == "progress":
                if event["progress"] < last:
                    continue
                last = event["progress"]
            elif event["type"] == "frame_available":
                event = frame(event["key"], event["quality"])
            elif event["type"] in ("complete", "error"):
                final = event
                continue
            await send(event)
        if final["type"] == "complete":
            await send_previews()  # any the live events did not bring (a stream opened late)
            await send({"type": "progress", "render": render_id, "progress": 1.0, "stage": None})
        await send(final)
        await websocket.close()
    except WebSocketDisconnect:
        pass
    finally:
        app.state.live.unsubscribe(render_id, queue)


def _http_base_url(websocket: WebSocket) -> str:
    return str(websocket.base_url).replace("ws", "http", 1)


# --- the reference video-generation API's task stream: WS /ws/{task_id} (also under /v1, and as
# /genius/stream/ws/{session_id}, a session being a task)

task_router = APIRouter(tags=["generate"])


def _generation_render(pool, task_id: str, who: dict) -> dict | None:
    if not looks_like_id(task_id):
        return None
    with pool.connection() as conn:
        return conn.execute("SELECT r.id, r.project_id, r.status, r.progress, r.stage, r.error, g.id AS task_id"
                            " FROM generations g JOIN renders r ON r.id = g.render_id"
                            " WHERE g.id = %s AND g.project_id = %s AND g.env = %s",
                            (task_id, who["project_id"], who["env"])).fetchone()


async def _reference_event(websocket: WebSocket, event: dict, render: dict | None) -> dict:
    """A render event in the reference API's shape: ``step`` on progress, ``frame_index`` on
    frames, ``video_url`` on complete, the error's message as ``error``; ``task_id`` on each."""
    task = {"task_id": render["task_id"]} if render else {}
    kind = event["type"]
    if kind == "error":
        return {"type": "error", **task, "error": event["error"]["message"], "code": event["error"]["code"]}
    if kind == "progress":
        return {**event, **task, "step": event["stage"] or ("done" if event["progress"] >= 1 else "queued")}
    if kind == "frame_available":
        return {**event, **task, "frame_index": 0}  # the previews are of the clip's first frame
    if kind == "complete":
        app = websocket.app
        manifest = await run_in_threadpool(_generation_manifest, app.state.pool, render["task_id"])
        video = next(o for o in manifest["outputs"] if o["role"] == "video")
        url = download_url(app.state.store, app.state.settings, video["uri"], base_url=_http_base_url(websocket))
        return {**event, **task, "video_url": url}
    return {**event, **task}


def _generation_manifest(pool, task_id: str) -> dict:
    with pool.connection() as conn:
        return conn.execute("SELECT manifest FROM generations WHERE id = %s", (task_id,)).fetchone()["manifest"]


@task_router.websocket("/ws/{task_id}")
@task_router.websocket("/genius/stream/ws/{task_id}")
async def task_stream(websocket: WebSocket, task_id: str) -> None:
    await _relay(websocket, task_id, noun="task", find=_generation_render, adapt=_reference_event)
