"""The reference video-generation API's shapes on top of beatframe's renders
(``../shared/reference/video-generation-api.md``): task statuses, the status and webhook bodies of
a ``POST /v1/generate`` task, and its error body.

A task is a generation (``gen_…``, the ``task_id``) and the render that makes it. Statuses:

==================  ======================================================
render              task ``status``
==================  ======================================================
queued              ``pending``
running             the stage: ``planning``, ``generating``, ``finalizing``
                    (stitch, check) or ``uploading`` (upload, manifest)
succeeded           ``completed``
failed              ``failed``
canceled            ``cancelled``
==================  ======================================================

Errors on the reference routes (``/v1/generate``, ``/v1/status/…``, ``/v1/result/…``,
``/v1/genius/…``) have the reference's body, ``{"error": <title>, "detail": <message>, "type":
<kind>}``, with beatframe's ``code`` and ``request_id`` added; every other route keeps
beatframe's own error shape.
"""

from __future__ import annotations

from datetime import datetime, timezone

STAGE_STATUS = {"plan": "planning", "generate": "generating", "stitch": "finalizing", "check": "finalizing",
                "upload": "uploading", "manifest": "uploading"}
FINAL_STATUS = {"queued": "pending", "succeeded": "completed", "failed": "failed", "canceled": "cancelled"}
#: Where the reference error body is answered instead of beatframe's.
REFERENCE_PATHS = ("/v1/generate", "/v1/status/", "/v1/result/", "/v1/genius/")
_TITLES = {400: ("Validation error", "ValueError"), 401: ("Unauthorized", "AuthenticationError"),
           403: ("Forbidden", "PermissionError"), 404: ("Not found", "NotFoundError"),
           409: ("Conflict", "ConflictError"), 413: ("Payload too large", "ValueError"),
           429: ("Too many requests", "RateLimitError"), 501: ("Not implemented", "NotImplementedError"),
           503: ("Service unavailable", "ServiceUnavailableError")}


def is_reference_path(path: str) -> bool:
    return path == REFERENCE_PATHS[0] or path.startswith(REFERENCE_PATHS[1:])


def error_body(status: int, code: str, message: str, request_id: str | None) -> dict:
    """The reference API's error body for an answer of ``status``."""
    title, kind = _TITLES.get(status, ("Internal server error", "ServerError") if status >= 500
                              else ("Bad request", "ValueError"))
    return {"error": title, "detail": message, "type": kind, "code": code, "request_id": request_id}


def reference_status(render: dict) -> str:
    """The reference status of a render (see the module docstring)."""
    if render["status"] == "running":
        return STAGE_STATUS.get(render["stage"] or "", "processing")
    return FINAL_STATUS[render["status"]]


def current_step(render: dict) -> str:
    """A line saying what the task does now, e.g. ``generate (62%)``."""
    if render["status"] == "running" and render["stage"]:
        return f"{render['stage']} ({round(100 * render['progress'])}%)"
    return {"queued": "waiting for a worker", "succeeded": "done", "failed": "failed",
            "canceled": "cancelled"}.get(render["status"], "starting")


def elapsed_and_eta(render: dict, now: datetime | None = None) -> tuple[float, float | None]:
    """Seconds since the task started (0 while queued) and, from its progress rate, the seconds left."""
    now = now or datetime.now(timezone.utc)
    started, finished = render["started_at"], render["finished_at"]
    if started is None:
        return 0.0, None
    elapsed = ((finished or now) - started).total_seconds()
    if render["status"] != "running":
        return round(elapsed, 3), 0.0 if render["status"] == "succeeded" else None
    progress = render["progress"]
    eta = elapsed * (1.0 - progress) / progress if progress >= 0.02 else None
    return round(elapsed, 3), None if eta is None else round(eta, 1)


def generation_event_object(render: dict, generation: dict) -> dict:
    """What a ``task.*`` webhook carries: ``task_id`` and the task's status, progress and step; a
    completed task adds its length, size and where to read the result; a failed one its error."""
    data = {"task_id": generation["id"], "status": reference_status(render), "progress": render["progress"],
            "step": current_step(render), "render": render["id"]}
    manifest = generation.get("manifest")
    if render["status"] == "succeeded" and manifest:
        video = next(o for o in manifest["outputs"] if o["role"] == "video")
        data.update(result_url=f"/v1/result/{generation['id']}", duration_seconds=video["duration"],
                    file_size_mb=round(video["bytes"] / 1e6, 3))
    if render["status"] in ("failed", "canceled"):
        data["error"] = (render["error"] or {}).get("message", "the task was cancelled")
    return data
