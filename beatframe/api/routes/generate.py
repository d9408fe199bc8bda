"""The reference video-generation API's core routes (``../shared/reference/video-generation-api.md``)
on beatframe's renders: ``POST /v1/generate``, ``GET /v1/status/{task_id}``, ``GET /v1/result/{task_id}``.

A task is a generation (``gen_…``) made by a render of the ``generate_video`` flow
(:mod:`beatframe.flows.generate`), so it runs where every render runs (in-process or on Prefect workers),
shows in ``/v1/renders``, streams on ``WS /ws/{task_id}`` and sends ``task.*`` webhooks. The body,
its ranges and defaults are the reference's (:class:`beatframe.music.generation.GenerationRequest`);
errors on these routes have the reference's body (:mod:`beatframe.api.reference`). Creating a
task is in the ``generate`` rate-limit class and honours ``Idempotency-Key``.

``webhook_url`` becomes an endpoint of the task alone (``task.*`` events of this task), checked by
the same SSRF guard as every webhook; its signing secret is in the 202 answer, once.

The 202 answers' ``estimated_time_seconds`` (here and in the ``/genius`` routes that queue tasks)
comes from :func:`estimate_generation_time`: the orchestrator's estimate
(:mod:`beatframe.models.estimate`) for the generator the task's flow would choose, an estimate
that ``estimate_basis`` labels.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from fastapi import APIRouter, Depends, Request
from psycopg.types.json import Jsonb

from beatframe.infra import db
from beatframe.api import webhooks
from beatframe.api import idempotency, reference
from beatframe.api.deps import Principal, connection, principal
from beatframe.api.errors import ApiError
from beatframe.api.live import PREVIEW_QUALITIES, preview_prefix
from beatframe.api.objects import fetch_one, render_row
from beatframe.api.routes.renders import queue_render
from beatframe.api.signing import download_url
from beatframe.models import estimate
from beatframe.models.backend import resolve_backend
from beatframe.music.generation import GenerationRequest, generator_choice, plan_generation
from beatframe.music.limits import SEED_MAX
from beatframe.resources import GenerateAccepted, ReferenceErrorBody, TaskResult, TaskStatus
from beatframe.infra.urlfetch import FetchError, check_url

#: Every 4xx and 5xx of the reference routes has the reference error body.
REFERENCE_RESPONSES = {"4XX": {"model": ReferenceErrorBody, "description": "Client error (the reference error body)"},
                       "5XX": {"model": ReferenceErrorBody, "description": "Server error (the reference error body)"}}
GENERATION_COLUMNS = "id, env, render_id, request, manifest, created_at"
#: Request fields a result's metadata repeats.
REQUEST_METADATA = ("negative_prompt", "genre", "aspect_ratio", "guidance_scale", "num_inference_steps")

router = APIRouter(tags=["generate"], responses=REFERENCE_RESPONSES)


@router.post("/generate", status_code=202, response_model=GenerateAccepted)
def generate(body: GenerationRequest, request: Request, who: Principal = Depends(principal)):
    """Start a video generation task (202). Without a GPU backend, the procedural generator renders it."""
    return idempotency.respond(request, who.project_id, status=202, fingerprint=body.model_dump(mode="json"),
                               work=lambda: create_generation(body, request, who))


def create_generation(body: GenerationRequest, request: Request, who: Principal, *, batch_id: str | None = None,
                vram_budget_gb: float | None = None) -> dict:
    """Queue a generate task (in the request's transaction, when one is open); the 202 answer.
    ``vram_budget_gb`` bounds the GPU memory its diffusion calls are packed into."""
    seed = body.seed if body.seed is not None else secrets.randbelow(SEED_MAX + 1)
    plan = plan_generation(body, seed=seed)  # a resolution the backend cannot draw is a 400 now, not a failed task
    eta = estimate_generation_time(request, choice=generator_choice(guidance_scale=body.guidance_scale,
                                                              steps=body.num_inference_steps),
                             size=plan.size, seconds=plan.seconds, fps=plan.fps, prompt=body.prompt)
    task_request = {**body.model_dump(mode="json", exclude={"webhook_url"}), "seed": seed}
    task = queue_generation(request, who, kind="generation", task_request=task_request, webhook_url=body.webhook_url,
                      batch_id=batch_id, flow_params={"request": task_request, "seed": seed, **(
                          {"vram_budget_gb": vram_budget_gb} if vram_budget_gb is not None else {})})
    return {**task, "message": "Task queued for processing", "estimated_time_seconds": eta.seconds,
            "estimate_basis": eta.based_on, "seed": seed}


def estimate_generation_time(request: Request, *, choice: str | dict | None, size: tuple[int, int], seconds: float,
                       fps: int, prompt: str | None) -> estimate.TimeEstimate:
    """The time estimate of a task of ``seconds`` of video (:func:`beatframe.models.estimate.estimate_backend_time`)
    on the generator its flow will choose for ``choice``. The API's models folder and GPU stand in
    for the worker's, which choose when the flow runs."""
    backend = resolve_backend(choice, task="t2v", size=size, seconds=seconds, prompt=prompt,
                              models_dir=request.app.state.settings.models_dir)
    return estimate.estimate_backend_time(backend=backend, seconds=seconds, size=size, fps=fps)


def queue_generation(request: Request, who: Principal, *, kind: str, task_request: dict, flow_params: dict,
               webhook_url: str | None = None, batch_id: str | None = None) -> dict:
    """Queue a task (a generations row and the render of ``kind`` that makes it) with its own
    webhook endpoint when ``webhook_url`` is given: ``task_id``, ``status``, ``queue_position``,
    ``render`` and the endpoint's ``webhook_secret`` (shown this once)."""
    if webhook_url is not None:
        try:
            check_url(webhook_url)
        except FetchError as exc:
            raise ApiError(400, exc.code, str(exc), param="webhook_url") from None
    task_id = db.new_id("gen")
    secret = webhooks.new_secret() if webhook_url else None

    def insert_generation(conn, render_id: str) -> dict:
        row = conn.execute("INSERT INTO generations (id, project_id, env, render_id, request, batch_id)"
                           " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                           (task_id, who.project_id, who.env, render_id, Jsonb(task_request), batch_id)).fetchone()
        if secret is not None:
            conn.execute("INSERT INTO webhook_endpoints (id, project_id, env, url, secret, events, description, task_id)"
                         " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                         (db.new_id("we"), who.project_id, who.env, webhook_url, secret,
                          list(webhooks.TASK_EVENT_TYPES), f"webhook_url of task {task_id}", task_id))
        return row

    flow_params = {**flow_params, "out_dir": str(request.app.state.settings.data_dir / "renders" / task_id)}
    render, _ = queue_render(request, who, kind=kind, insert_target=insert_generation, flow_params=flow_params,
                             params=task_request)
    with connection(request) as conn:
        ahead = conn.execute("SELECT count(*) AS n FROM renders WHERE status = 'queued' AND backend = %s"
                             " AND created_at < now()", (request.app.state.runner.backend,)).fetchone()["n"]
    return {"task_id": task_id, "status": "pending", "queue_position": ahead + 1, "render": render["id"],
            "webhook_secret": secret}


def find_generation(request: Request, who: Principal, task_id: str) -> tuple[dict, dict]:
    """The caller's task and its render (404 naming the task otherwise)."""
    generation = fetch_one(request, who, "generations", GENERATION_COLUMNS, task_id, noun="task")
    render = render_row(request, who, generation["render_id"])
    if render["status"] == "succeeded" and not generation["manifest"]:
        # the render finished between the two reads: the same commit stored the manifest, which
        # the first read (an earlier snapshot) could not see yet
        generation = fetch_one(request, who, "generations", GENERATION_COLUMNS, task_id, noun="task")
    return generation, render


def _signed(request: Request, uri: str) -> str:
    return download_url(request.app.state.store, request.app.state.settings, uri, base_url=str(request.base_url))


def _output(manifest: dict, role: str) -> dict:
    return next(output for output in manifest["outputs"] if output["role"] == role)


@router.get("/status/{task_id}", response_model=TaskStatus)
def task_status(task_id: str, request: Request, who: Principal = Depends(principal)) -> dict:
    """Where a task is: status, progress, step, elapsed and remaining seconds, the newest preview."""
    generation, render = find_generation(request, who, task_id)
    elapsed, eta = reference.elapsed_and_eta(render)
    preview = None
    if generation["manifest"]:
        preview = _signed(request, _output(generation["manifest"], "thumbnail")["uri"])
    elif render["status"] == "running":
        store, prefix = request.app.state.store, preview_prefix(who.project_id, render["id"])
        key = next((f"{prefix}/{q}.jpg" for q in reversed(PREVIEW_QUALITIES) if store.exists(f"{prefix}/{q}.jpg")),
                   None)
        preview = _signed(request, store.uri(key)) if key else None
    return {"task_id": generation["id"], "status": reference.reference_status(render), "progress": render["progress"],
            "current_step": reference.current_step(render), "elapsed_seconds": elapsed, "eta_seconds": eta,
            "preview_url": preview, "error": (render["error"] or {}).get("message")}


@router.get("/result/{task_id}", response_model=TaskResult)
def task_result(task_id: str, request: Request, who: Principal = Depends(principal)) -> dict:
    """A completed task's video and thumbnail (signed URLs) and facts; 409 while it is not completed."""
    generation, render = find_generation(request, who, task_id)
    manifest = generation["manifest"]
    if render["status"] != "succeeded" or not manifest:
        status = reference.reference_status(render)
        why = f": {render['error']['message']}" if render["error"] else ""
        raise ApiError(409, "task_not_completed", f"task {task_id} is {status}, not completed{why}", param="task_id")
    video, asked = _output(manifest, "video"), generation["request"]
    # a post-production step has no generator: it names its step
    generator = manifest.get("generator") or {"name": f"post:{manifest.get('step')}"}
    started, finished = render["started_at"], render["finished_at"]
    return {"task_id": generation["id"], "status": "completed", "video_url": _signed(request, video["uri"]),
            "thumbnail_url": _signed(request, _output(manifest, "thumbnail")["uri"]),
            "duration_seconds": video["duration"],
            "resolution": asked.get("resolution") or f"{video['width']}x{video['height']}",
            "width": video["width"], "height": video["height"], "fps": video["fps"],
            "file_size_mb": round(video["bytes"] / 1e6, 3),
            "generation_time_seconds": round((finished - started).total_seconds(), 3)
            if isinstance(started, datetime) and isinstance(finished, datetime) else 0.0,
            "metadata": {**{k: asked[k] for k in REQUEST_METADATA if k in asked},
                         # a scene edit's prompt: its scenes' prompts in order
                         "prompt": asked.get("prompt") or " | ".join(s["prompt"] for s in asked.get("scenes", [])
                                                                       if s.get("prompt")),
                         "model": generator.get("model") or generator["name"], "seed": generator.get("seed"),
                         "template": (manifest.get("template") or {}).get("name"), "render": render["id"]}}
