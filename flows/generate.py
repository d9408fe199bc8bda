"""The prompt flow: the reference video-generation API's ``POST /v1/generate`` as a Prefect flow.

    plan (prompt + genre -> template, size, pulse; the generator) -> generate clip -> stitch (thumbnail)
        -> check -> upload -> manifest

No track: the request's text, length, frame rate, resolution and aspect ratio say what to render
(see :mod:`beatframe.music.generation` for how the prompt is read and which backend renders it). Each
stage is a cached task, so the same request with the same seed renders once.

    from beatframe.flows.generate import generate_video
    manifest = generate_video(request={"prompt": "neon tunnel at night", "duration_seconds": 6}, seed=7)
"""

from __future__ import annotations

import json
from pathlib import Path

from prefect import flow, runtime
from prefect.task_runners import ThreadPoolTaskRunner

from beatframe.infra.cachekeys import cache_key
from beatframe.infra.cost import CostLog, PriceTable
from beatframe.infra.errors import BadInputError
from beatframe.infra.settings import get_settings
from beatframe.flows.progress import StageProgress
from beatframe.flows.stages import run_with_files
from beatframe.models.backend import draft_backend
from beatframe.tasks.check import check_generation_output
from beatframe.tasks.generate import generate_prompt_clip
from beatframe.tasks.manifest import finalize_generation
from beatframe.tasks.plan import choose_generator, plan_prompt_video
from beatframe.tasks.preview import publish_preview
from beatframe.tasks.stitch import stitch_canvas
from beatframe.tasks.upload import upload_outputs

STAGE_WEIGHTS = {"plan": 1, "generate": 80, "stitch": 5, "check": 8, "upload": 4, "manifest": 2}


@flow(name="generate_video", task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=True,
      persist_result=True)  # the API reads a deployment run's manifest from its result
def generate_video(request: dict, seed: int, out_dir: str | None = None, previews: str | None = None,
                   vram_budget_gb: float | None = None) -> dict:
    """Render a prompt's video into ``out_dir`` (default ``out/generate-<key>``); returns the manifest.

    ``request`` holds the reference API's fields (:class:`beatframe.music.generation.GenerationRequest`);
    ``seed`` is the seed actually used (the API draws one when the request has none);
    ``previews``, an object-store prefix where preview frames go while it runs;
    ``vram_budget_gb``, the GPU memory a diffusion generator may pack batched calls into (the
    clips of concurrent renders of the same shape share calls: :mod:`beatframe.models.batching`).
    """
    from beatframe.music.generation import GenerationRequest, generator_choice

    try:
        request = GenerationRequest.model_validate({**request, "seed": seed}).model_dump(mode="json")
    except ValueError as exc:
        raise BadInputError(f"not a generation request: {exc}") from None
    costs = CostLog(PriceTable.load(get_settings().prices))
    progress = StageProgress(STAGE_WEIGHTS, key="generation-progress")
    with progress.stage("plan"), costs.stage("plan"):
        plan = plan_prompt_video(request, seed)
        # the best generator this machine has, with the request's diffusion settings
        choice = {**generator_choice(guidance_scale=request["guidance_scale"], steps=request["num_inference_steps"]),
                  **({"vram_budget_gb": vram_budget_gb} if vram_budget_gb is not None else {})}
        backend = choose_generator(json.dumps(choice), "t2v", (plan["width"], plan["height"]),
                                   plan["n_frames"] / plan["fps"], request["prompt"])
    with progress.stage("generate"), costs.stage("generate", device=backend["compute"]):
        draft = draft_backend(backend) if previews else None
        if draft is not None:  # draft then final: a quick low-step preview while the real one renders
            publish_preview(run_with_files(generate_prompt_clip, plan, request, draft)["path"], previews,
                            quality="draft")
        clip = run_with_files(generate_prompt_clip, plan, request, backend)
        if previews and draft is None:
            publish_preview(clip["path"], previews, quality="draft")
    render_key = cache_key("generation", request=request, plan=plan, generator=backend["generator"],
                           model=backend.get("model")).split("-", 1)[1][:24]
    with progress.stage("stitch"), costs.stage("stitch"):
        staged = run_with_files(stitch_canvas, clip, render_key)
        if previews:
            publish_preview(staged["poster"], previews, quality="full")
    size, fps = (plan["width"], plan["height"]), plan["fps"]
    with progress.stage("check"), costs.stage("check"):
        checks = check_generation_output(staged["video"], size, fps, plan["n_frames"] / fps)
    files = {"video.mp4": staged["video"], "thumbnail.jpg": staged["poster"]}
    with progress.stage("upload"), costs.stage("upload"):
        stored = upload_outputs(files, f"generations/{render_key}")
    out = Path(out_dir) if out_dir else Path("out") / f"generate-{render_key[:12]}"
    with progress.stage("manifest"):
        manifest = finalize_generation(
            render_id=f"gen_{render_key}", request=request, plan=plan, clip=clip, stored=stored, checks=checks,
            costs=costs, files=files, out_dir=str(out), flow_run_id=str(runtime.flow_run.id or "") or None)
    return manifest
