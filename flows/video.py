"""The music-video flow: a song in, a full-length video cut to its sections and beats out.

    hash inputs -> analyze -> plan shots -> generate shots (one task each, in parallel)
                -> stitch (join without re-encoding, mux the audio) -> check -> upload -> manifest

Shots are cached one by one, so a rerun, or a run that died half-way, renders only the shots that
are missing. Memory stays bounded: frames stream from the generator to the encoder, shot by shot.

    from beatframe.flows.video import render_video
    manifest = render_video(audio="song.wav", out_dir="out/song-video")
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

from prefect import flow, runtime
from prefect.task_runners import ThreadPoolTaskRunner

from beatframe.infra.cachekeys import cache_key
from beatframe.music.render_requests import VideoRequest
from beatframe.music.video_planning import VIDEO_FPS
from beatframe.flows.stages import files_exist, run_with_files, start_render
from beatframe.tasks.analyze import check_hints, corrected_key
from beatframe.tasks.check import check_video_output
from beatframe.tasks.generate import generate_shot
from beatframe.tasks.inputs import fetch_inputs
from beatframe.tasks.manifest import finalize_video
from beatframe.tasks.plan import choose_generator, plan_video_shots
from beatframe.tasks.post import apply_render_post, check_render_post, render_post_licences
from beatframe.tasks.preview import publish_preview
from beatframe.tasks.stitch import stitch_video
from beatframe.tasks.upload import upload_outputs

STAGE_WEIGHTS = {"hash": 1, "analyze": 4, "plan": 1, "generate": 80, "post": 4, "stitch": 4, "check": 2,
                 "upload": 3, "manifest": 1}
#: Shots rendered at once: each runs a generator and an ffmpeg encoder, so two fill two cores.
SHOT_WORKERS = 2


@flow(name="render_video", task_runner=ThreadPoolTaskRunner(max_workers=SHOT_WORKERS), log_prints=True,
      persist_result=True)  # the API reads a deployment run's manifest from its result
def render_video(
    audio: str,
    out_dir: str | None = None,
    template: str = "neon-pulse",
    seed: int = 0,
    size: str = "1920x1080",
    transitions: bool = True,
    cover: str | None = None,
    cover_license: str | None = None,
    previews: str | None = None,
    generator: str | None = None,
    post: list[dict] | None = None,
    analysis_hints: dict | None = None,
) -> dict:
    """Render a full-length video of ``audio`` into ``out_dir`` (default ``out/<track>-video``).

    Inputs, ``generator``, ``post`` and ``analysis_hints`` take the same forms as
    :func:`beatframe.flows.canvas.render_canvas`'s; ``post`` steps run on every shot before the shots are joined.
    """
    post = check_render_post(post)
    hints = check_hints(analysis_hints)
    audio, cover = fetch_inputs(audio, cover)
    request = VideoRequest.validate(audio=audio, template=template, seed=seed, size=size,
                                    transitions=transitions, cover=cover, cover_license=cover_license)
    out = Path(out_dir) if out_dir else Path("out") / f"{request.audio.stem}-video"
    # a render without post steps has no post stage: its progress still ends at 100 %
    weights = STAGE_WEIGHTS if post else {name: w for name, w in STAGE_WEIGHTS.items() if name != "post"}
    run = start_render(request, weights=weights, progress_key="video-progress", analysis_hints=hints)
    costs, progress, inputs, analysis = run.costs, run.progress, run.inputs, run.analysis
    audio_path, cover_path = run.audio_path, run.cover_path
    with progress.stage("plan"), costs.stage("plan"):
        shots = plan_video_shots(analysis, request.transitions)
        longest = max(shot["last_frame"] - shot["first_frame"] for shot in shots) / VIDEO_FPS
        backend = choose_generator(generator, "i2v" if cover_path else "t2v", request.size, longest)
    shot_args = dict(analysis=analysis, shots=shots, template=request.template, seed=request.seed,
                     size=request.size, cover=cover_path, cover_sha256=inputs["cover"], backend=backend)
    with progress.stage("generate", parts=len(shots)), costs.stage("generate", device=backend["compute"]):
        futures = [generate_shot.submit(index=i, **shot_args) for i in range(len(shots))]
        # Poll the plain futures: prefect.futures.wait(timeout=...) arms a cancel scope that can
        # deadlock when this flow runs as a subflow in a worker thread (packs, catalogs, the API).
        while concurrent.futures.wait([f.wrapped_future for f in futures], timeout=1.0).not_done:
            progress.flush()
        clips = [clip if files_exist(clip) else run_with_files(generate_shot, index=i, **shot_args)
                 for i, clip in enumerate(future.result() for future in futures)]
        if previews:
            publish_preview(clips[0]["path"], previews, quality="draft")
    if post:
        with progress.stage("post"), costs.stage("post"):
            clips = [apply_render_post(clip, post) for clip in clips]
    render_key = cache_key("video", inputs=inputs, template=request.template, seed=request.seed,
                           size=list(request.size), transitions=request.transitions,
                           generator=backend["generator"], model=backend.get("model"),
                           post=post, **corrected_key(analysis)).split("-", 1)[1][:24]
    with progress.stage("stitch"), costs.stage("stitch"):
        staged = run_with_files(stitch_video, [c["path"] for c in clips], audio_path, inputs["audio"], render_key)
        if previews:
            publish_preview(staged["poster"], previews, quality="full")
    with progress.stage("check"), costs.stage("check"):
        luminance = [row for clip in clips for row in clip["luminance"]]
        checks = check_video_output(staged["video"], request.size, analysis["audio"]["duration"], luminance)
    files = {"video.mp4": staged["video"], "video.jpg": staged["poster"]}
    with progress.stage("upload"), costs.stage("upload"):
        stored = upload_outputs(files, f"videos/{render_key}")
    with progress.stage("manifest"):
        manifest = finalize_video(
            render_id=f"vid_{render_key}", request=request, audio_path=audio_path, inputs=inputs,
            analysis=analysis, shots=shots, generator=clips[0]["generator"], post=post, stored=stored, checks=checks,
            costs=costs, files=files, out_dir=str(out), flow_run_id=str(runtime.flow_run.id or "") or None,
            assets=render_post_licences(post),
        )
    return manifest
