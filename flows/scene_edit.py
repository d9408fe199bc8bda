"""The scene-edit flow: a list of scenes (prompts, template scenes, images) cut into one video with
transitions, on a track's downbeats when a track is given (the reference API's scene orchestrator).

    hash inputs -> analyze (with a track) -> plan scenes on the music; the generator
        -> render the edit -> stitch (mux the track) -> check -> upload -> manifest

    from beatframe.flows.scene_edit import render_scene_edit
    manifest = render_scene_edit(scenes=[{"prompt": "misty mountains at dawn", "duration": 4},
                                         {"template": "neon-pulse", "duration": 4, "transition": "zoom"}])
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, runtime
from prefect.task_runners import ThreadPoolTaskRunner

from beatframe.infra.cachekeys import cache_key
from beatframe.infra.cost import CostLog, PriceTable
from beatframe.infra.settings import get_settings
from beatframe.flows.progress import StageProgress
from beatframe.tasks.analyze import analyze_audio
from beatframe.tasks.check import check_generation_output, check_video_output
from beatframe.tasks.inputs import fetch_inputs, hash_files, hash_inputs, local_input
from beatframe.tasks.manifest import finalize_edit
from beatframe.tasks.plan import choose_generator
from beatframe.tasks.preview import publish_preview
from beatframe.tasks.scene_edit import plan_edit, render_edit, stitch_edit
from beatframe.tasks.upload import upload_outputs

STAGE_WEIGHTS = {"hash": 1, "analyze": 4, "plan": 1, "generate": 80, "stitch": 4, "check": 5, "upload": 3,
                 "manifest": 2}


@flow(name="render_scene_edit", task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=True,
      persist_result=True)
def render_scene_edit(
    scenes: list[dict],
    audio: str | None = None,
    out_dir: str | None = None,
    size: str = "1920x1080",
    seed: int = 0,
    transition_seconds: float = 0.5,
    consistency: bool = True,
    reference_image: str | None = None,
    generator: str | None = None,
    previews: str | None = None,
    reference_license: str | None = None,
) -> dict:
    """Render an edit of ``scenes`` into ``out_dir`` (default ``out/edit-<key>``); returns the manifest.

    ``scenes``: ``[{"prompt" | "template" | "asset", "duration", "transition"}]`` (see
    :class:`beatframe.music.scenes.Scene`; assets and ``audio`` are paths or ``store:<key>``);
    ``consistency``: one seed and one palette for every scene, the palette of ``reference_image``
    when given; ``generator`` and ``previews`` as :func:`beatframe.flows.canvas.render_canvas`'s;
    ``reference_license`` the reference image's licence as a name or a JSON licence record (a scene
    image's: the scene's ``license``, ``attribution`` and ``rights_holder``), for the manifest.
    """
    from beatframe.music.manifest import licence_entry
    from beatframe.music.scenes import LICENCE_FIELDS, check_scenes, palette_of
    from beatframe.music.video import parse_video_size

    checked = [scene.model_dump() for scene in check_scenes(scenes)]
    width, height = parse_video_size(size)
    costs = CostLog(PriceTable.load(get_settings().prices))
    progress = StageProgress(STAGE_WEIGHTS, key="edit-progress")
    with progress.stage("hash"), costs.stage("hash"):
        audio, reference = fetch_inputs(audio, reference_image)
        assets = {str(i): local_input(scene["asset"]) for i, scene in enumerate(checked) if scene["asset"]}
        inputs = hash_inputs(audio) if audio else {"audio": None, "cover": None}
        asset_sha256 = hash_files(assets, "scene asset")
        licensing = [{**licence_entry(role="scene", uri=Path(path).resolve().as_uri(), sha256=asset_sha256[i],
                                      declared={k: checked[int(i)][k] for k in LICENCE_FIELDS if checked[int(i)][k]}),
                      "scene": int(i)} for i, path in assets.items()]
        if reference:
            licensing.append(licence_entry(role="reference", uri=Path(reference).resolve().as_uri(),
                                           sha256=hash_files({"reference": reference}, "reference image")["reference"],
                                           declared=reference_license))
    analysis = None
    if audio:
        with progress.stage("analyze"), costs.stage("analyze"):
            analysis = analyze_audio(audio, inputs["audio"])
    with progress.stage("plan"), costs.stage("plan"):
        plan = plan_edit(checked, analysis, transition_seconds)
        longest = max(s["last_frame"] - s["first_frame"] for s in plan["scenes"]) / 30
        prompts = " ".join(s["prompt"] for s in checked if s["prompt"]) or None
        backend = choose_generator(generator, "t2v", (width, height), longest, prompts)
        palette = None
        if reference:
            from beatframe.music.images import load_image

            palette = list(palette_of(load_image(reference, what="reference image")))
    with progress.stage("generate"), costs.stage("generate", device=backend["compute"]):
        clip = render_edit(plan, assets, asset_sha256, palette, seed, (width, height), consistency, backend)
        if previews:
            publish_preview(clip["path"], previews, quality="draft")
    render_key = cache_key("edit", plan=plan, assets=asset_sha256, palette=palette, seed=seed, size=[width, height],
                           consistency=consistency, audio=inputs["audio"],
                           generator=backend["generator"]).split("-", 1)[1][:24]
    with progress.stage("stitch"), costs.stage("stitch"):
        staged = stitch_edit(clip, audio, render_key)
        if previews:
            publish_preview(staged["poster"], previews, quality="full")
    duration = plan["analysis"]["audio"]["duration"]
    with progress.stage("check"), costs.stage("check"):
        checks = (check_video_output(staged["video"], (width, height), duration, clip["luminance"]) if audio
                  else check_generation_output(staged["video"], (width, height), 30, clip["frames"] / 30))
    files = {"edit.mp4": staged["video"], "edit.jpg": staged["poster"]}
    with progress.stage("upload"), costs.stage("upload"):
        stored = upload_outputs(files, f"edits/{render_key}")
    out = Path(out_dir) if out_dir else Path("out") / f"edit-{render_key[:12]}"
    with progress.stage("manifest"):
        return finalize_edit(
            render_id=f"edt_{render_key}", plan=plan, scenes=checked, clip=clip, inputs=inputs, audio=audio,
            seed=seed, params={"size": f"{width}x{height}", "transition_seconds": transition_seconds,
                               "consistency": consistency, "palette": palette},
            licensing=licensing, stored=stored, checks=checks, costs=costs, files=files, out_dir=str(out),
            flow_run_id=str(runtime.flow_run.id or "") or None)
