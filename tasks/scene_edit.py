"""The scene-edit stages: plan the scenes on the music, render the edit (every scene, with its
transitions, into one silent clip), and mux the track when there is one.

Cached by the scenes, the track's hash (or the pulse that stands in for it), the looks, the seed,
the size, the generator and the render code; the assets are keyed by their content hashes.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task

import beatframe.music
from beatframe.infra import progress
from beatframe.infra.cachekeys import cache_key, source_revision
from beatframe.infra.settings import get_settings
from beatframe.tasks.generate import RENDER_SOURCES, make_generator
from beatframe.tasks.policies import RETRIES, RETRY_DELAYS, retry_on_transient

_EDIT_SOURCES = (*RENDER_SOURCES, str(Path(beatframe.music.__file__).parent / "scenes.py"))


@task(name="plan-edit")
def plan_edit(scenes: list[dict], analysis: dict | None, transition_seconds: float) -> dict:
    """The scenes on frames (see :func:`beatframe.music.scenes.plan_scene_edit`) and the analysis they move to."""
    from beatframe.music.scenes import plan_scene_edit
    from beatframe.music.schemas import Analysis

    planned, music = plan_scene_edit(scenes, analysis=Analysis.model_validate(analysis) if analysis else None,
                                     transition_seconds=transition_seconds)
    return {"scenes": [scene.to_dict() for scene in planned], "analysis": music.to_json_dict()}


def _edit_key(context, parameters) -> str:
    return cache_key("edit", plan=parameters["plan"], assets=parameters["asset_sha256"],
                     palette=parameters["palette"], seed=parameters["seed"], size=list(parameters["size"]),
                     consistency=parameters["consistency"],
                     generator={k: v for k, v in parameters["backend"].items() if k != "reason"},
                     code=source_revision(*_EDIT_SOURCES))


@task(name="generate-edit-clip", cache_key_fn=_edit_key, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS,
      retry_condition_fn=retry_on_transient)
def render_edit(plan: dict, assets: dict, asset_sha256: dict, palette: list[str] | None, seed: int,
                size: tuple[int, int], consistency: bool, backend: dict) -> dict:
    """Render every scene and transition of ``plan`` into one silent H.264 clip (``assets``: each
    scene's image as a local path, keyed by scene index)."""
    from beatframe.infra.encode import encode_frames
    from beatframe.music.flash import FlashGuard
    from beatframe.music.scenes import PlannedScene, edit_frames, scene_looks
    from beatframe.music.schemas import Analysis
    from beatframe.music.video import VIDEO_H264
    from beatframe.music.video_planning import VIDEO_FPS
    from beatframe.tasks.slots import device_slot

    planned = [PlannedScene(**scene) for scene in plan["scenes"]]
    looks = scene_looks(planned, consistency=consistency, palette=tuple(palette) if palette else None)
    generators: dict[int, object] = {}

    def generator_for(scene: PlannedScene):
        if scene.index not in generators:
            cpu = {"generator": "cover-art" if scene.asset else "procedural"}
            generators[scene.index] = make_generator(
                cpu if scene.asset or backend["generator"] == "procedural" else backend,
                assets.get(str(scene.index)), template=scene.template, section=scene.section,
                energy=scene.energy, prompt=scene.prompt)
        return generators[scene.index]

    key = _edit_key(None, {"plan": plan, "asset_sha256": asset_sha256, "palette": palette, "seed": seed,
                           "size": size, "consistency": consistency, "backend": backend})
    out = get_settings().cache_dir / "clips" / f"{key}.mp4"
    total = planned[-1].last_frame
    guard = FlashGuard(fps=VIDEO_FPS)
    with device_slot(backend):
        count = encode_frames(
            guard.apply(edit_frames(planned, analysis=Analysis.model_validate(plan["analysis"]), looks=looks,
                                    generator_for=generator_for, size=tuple(size), seed=seed,
                                    consistency=consistency)),
            out, size=tuple(size), fps=VIDEO_FPS, h264=VIDEO_H264,
            on_frame=lambda i: progress.report("generate", i / total) if i % 30 == 0 else None)
    if count != total:
        raise RuntimeError(f"the edit rendered {count} frames, expected {total}")
    names = sorted({getattr(g, "name", "procedural") for g in generators.values()})
    return {"path": str(out), "frames": count, "softened_frames": guard.softened,
            "luminance": [list(map(float, row)) for row in guard.luminance],
            "generator": {"name": "+".join(names), "revision": "1"}}


@task(name="stitch-edit", retries=RETRIES, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=retry_on_transient)
def stitch_edit(clip: dict, audio: str | None, render_key: str) -> dict:
    """The edit with the track muxed in as AAC (or as it is, silent), index first, and a poster."""
    from beatframe.infra.encode import extract_poster, remux_faststart
    from beatframe.music.video import join_with_audio

    staging = get_settings().cache_dir / "renders" / render_key
    video, poster = staging / "edit.mp4", staging / "edit.jpg"
    if audio:
        join_with_audio([Path(clip["path"])], Path(audio), video)
    else:
        remux_faststart(Path(clip["path"]), video)
    extract_poster(video, poster, at_seconds=0.0)
    return {"video": str(video), "poster": str(poster)}
