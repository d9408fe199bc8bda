"""The Canvas flow: a song in, a loop-native Spotify Canvas out.

    hash inputs -> analyze -> plan shots -> generate clip -> stitch -> check -> upload -> manifest

Each stage is a task with a cache key built from content hashes and parameters, so rerunning the
same request is served from cache, and a run that died resumes from what finished. The flow
records a cost line per stage (published as a table artifact and in the manifest) and keeps a
progress artifact up to date for the Prefect UI.

Run it from the CLI (``beatframe canvas song.wav``) or directly::

    from beatframe.flows.canvas import render_canvas
    manifest = render_canvas(audio="song.wav", out_dir="out/song")
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, runtime
from prefect.task_runners import ThreadPoolTaskRunner

from beatframe.infra.cachekeys import cache_key
from beatframe.music.render_requests import CanvasRequest
from beatframe.flows.stages import run_with_files, start_render
from beatframe.models.backend import draft_backend
from beatframe.tasks.analyze import check_hints, corrected_key
from beatframe.tasks.check import check_output
from beatframe.tasks.generate import generate_clip
from beatframe.tasks.inputs import fetch_inputs
from beatframe.tasks.manifest import finalize_canvas
from beatframe.tasks.plan import choose_generator, plan_canvas_shots
from beatframe.tasks.post import apply_render_post, check_render_post, clean_cover, render_post_licences
from beatframe.tasks.preview import publish_preview
from beatframe.tasks.stitch import stitch_canvas
from beatframe.tasks.upload import upload_outputs

#: Share of the run each stage takes, for the progress artifact and bar.
STAGE_WEIGHTS = {"hash": 2, "analyze": 20, "plan": 2, "generate": 54, "post": 4, "stitch": 4, "check": 8,
                 "upload": 4, "manifest": 2}


@flow(name="render_canvas", task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=True,
      persist_result=True)  # the API reads a deployment run's manifest from its result
def render_canvas(
    audio: str,
    out_dir: str | None = None,
    template: str = "neon-pulse",
    seconds: float = 7.0,
    seed: int = 0,
    size: str = "720x1280",
    loop: str | None = None,
    start: float | None = None,
    cover: str | None = None,
    cover_license: str | None = None,
    previews: str | None = None,
    generator: str | None = None,
    post: list[dict] | None = None,
    cover_cleanup: list[int] | None = None,
    analysis_hints: dict | None = None,
) -> dict:
    """Render a Canvas of ``audio`` into ``out_dir`` (default ``out/<track name>``); returns the manifest.

    ``audio`` and ``cover`` are local paths or ``store:<key>`` objects; ``template`` is a built-in's
    name or a template's JSON; ``cover_license`` a licence name or a JSON licence record;
    ``previews``, an object-store prefix where preview frames go while it runs; ``generator``,
    ``auto`` (default), a generator's name or JSON with its options (:mod:`beatframe.models.backend`);
    ``cover_cleanup``, a box ``[x0, y0, x1, y1]`` of the cover (a logo, text) removed by inpainting
    before the cover is animated; ``post``, post-production steps on the loop before it is stitched
    (:func:`beatframe.tasks.post.check_render_post`: enhancement, colorization, style transfer, inpainting);
    ``analysis_hints``, the user's corrections of the analysis (:class:`beatframe.music.schemas.AnalysisHints`
    as JSON: ``bpm``, ``downbeat``, ``meter``, ``beats``, ``beat_positions``), applied before anything is planned.
    """
    post = check_render_post(post)
    hints = check_hints(analysis_hints)
    audio, cover = fetch_inputs(audio, cover)
    request = CanvasRequest.validate(audio=audio, template=template, seconds=seconds, seed=seed, size=size,
                                     loop_mode=loop, start=start, cover=cover, cover_license=cover_license)
    out = Path(out_dir) if out_dir else Path("out") / request.audio.stem
    # a render without post steps has no post stage: its progress still ends at 100 %
    weights = STAGE_WEIGHTS if post else {name: w for name, w in STAGE_WEIGHTS.items() if name != "post"}
    run = start_render(request, weights=weights, progress_key="canvas-progress", analysis_hints=hints)
    costs, progress, inputs, analysis = run.costs, run.progress, run.inputs, run.analysis
    audio_path, cover_path, cover_sha256 = run.audio_path, run.cover_path, inputs["cover"]
    if cover_cleanup and cover_path:
        with costs.stage("inpaint"):
            cleaned = clean_cover(cover_path, cover_sha256, cover_cleanup)
        cover_path, cover_sha256 = cleaned["path"], cleaned["sha256"]
    with progress.stage("plan"), costs.stage("plan"):
        plan = plan_canvas_shots(analysis, request.seconds, request.start, request.loop_mode,
                                 "cover-art" if cover_path else request.scene)
        backend = choose_generator(generator, "i2v" if cover_path else "t2v", request.size,
                                   plan["end"] - plan["start"])
    clip_args = dict(analysis=analysis, plan=plan, template=request.template, seed=request.seed,
                     size=request.size, cover=cover_path, cover_sha256=cover_sha256, backend=backend)
    with progress.stage("generate"), costs.stage("generate", device=backend["compute"]):
        draft = draft_backend(backend) if previews else None
        if draft is not None:  # draft then final: a quick low-step preview while the real one renders
            publish_preview(run_with_files(generate_clip, **{**clip_args, "backend": draft})["path"], previews,
                            quality="draft")
        clip = run_with_files(generate_clip, **clip_args)
        if previews and draft is None:
            publish_preview(clip["path"], previews, quality="draft")
    if post:
        with progress.stage("post"), costs.stage("post"):
            clip = apply_render_post(clip, post)
    render_key = cache_key("canvas", inputs=inputs, cover=cover_sha256, plan=plan, template=request.template,
                           seed=request.seed, size=list(request.size), generator=backend["generator"],
                           model=backend.get("model"), post=post, **corrected_key(analysis)).split("-", 1)[1][:24]
    with progress.stage("stitch"), costs.stage("stitch"):
        staged = run_with_files(stitch_canvas, clip, render_key)
        if previews:
            publish_preview(staged["poster"], previews, quality="full")
    with progress.stage("check"), costs.stage("check"):
        checks = check_output(staged["video"], request.size, request.loop_mode)
    files = {"canvas.mp4": staged["video"], "canvas.jpg": staged["poster"]}
    with progress.stage("upload"), costs.stage("upload"):
        stored = upload_outputs(files, f"canvases/{render_key}")
    with progress.stage("manifest"):
        manifest = finalize_canvas(
            render_id=f"cnv_{render_key}", request=request, audio_path=audio_path, inputs=inputs,
            analysis=analysis, plan=plan, clip=clip, stored=stored, checks=checks, costs=costs,
            files=files, out_dir=str(out), flow_run_id=str(runtime.flow_run.id or "") or None,
            assets=render_post_licences(post),
        )
    return manifest

