"""Stage 3: generate clips: frames from the generator, flash-guarded, encoded.

``generate_clip`` renders a Canvas loop (looped per its mode); ``generate_shot`` renders one shot
of a music video (with its transition in), one task per shot so shots render in parallel;
``generate_prompt_clip`` renders a prompt's clip (``POST /v1/generate``).
Track clips are cached by the audio hash, the plan, the template's fingerprint, the render code's revision, the
seed, the size and the cover's hash; clips live in ``$BEATFRAME_DATA_DIR/cache/clips``.
"""

from __future__ import annotations

from pathlib import Path

from prefect import task

import beatframe.infra
import beatframe.music
from beatframe import models
from beatframe.infra import progress
from beatframe.infra.cachekeys import cache_key, source_revision
from beatframe.infra.settings import get_settings
from beatframe.tasks.analyze import corrected_key
from beatframe.tasks.policies import RETRIES, RETRY_DELAYS, retry_on_transient

_MUSIC = Path(beatframe.music.__file__).parent
#: Every line of code between the analysis and the encoded clip: generators, templates, the loop
#: assembly, the flash guard and the encoder. Hashing sources (not importing generators) keeps a
#: cached rerun fast and never misses a change.
RENDER_SOURCES = (
    str(Path(models.__file__).parent),
    str(Path(beatframe.infra.__file__).parent / "encode.py"),
    *(str(_MUSIC / name) for name in ("canvas.py", "flash.py", "planning.py", "templates.py", "transitions.py",
                                        "video.py", "video_planning.py", "generation.py")),
)


def make_generator(backend: dict, cover: str | None, *, template: str, section: str, energy: float,
                    options=None, prompt: str | None = None, negative: str | None = None):
    """The backend's generator for one clip; a Wan generator gets the music-first prompts of the
    clip's section (:mod:`beatframe.models.prompting`) unless ``prompt`` is given."""
    from beatframe.models.registry import get_generator

    name = backend["generator"]
    if name in ("procedural", "cover-art"):
        return get_generator("cover-art", image_path=cover) if cover else get_generator("procedural")
    from beatframe.models.prompting import negative_prompt, shot_prompt
    from beatframe.models.wan_loader import WanOptions

    return get_generator(
        name, model=backend["model"], models_dir=get_settings().models_dir,
        image_path=cover if name == "wan-i2v" else None,
        prompt=prompt or shot_prompt(template=template, section=section, energy=energy,
                                     user_prompt=backend.get("prompt")),
        negative_prompt=negative or negative_prompt(template=template, user_negative=backend.get("negative_prompt")),
        guidance_scale=backend["guidance_scale"], num_inference_steps=backend["steps"],
        native_fps=backend["native_fps"], max_native_frames=backend["max_native_frames"],
        options=options or WanOptions(device=backend["device"], offload=backend["offload"],
                                      max_area=backend["max_area"], cache=backend["cache"],
                                      max_batch=backend.get("max_batch"), vram_budget_gb=backend.get("vram_budget_gb")))


def _render_with_backend(backend: dict, render, **make) -> tuple[object, dict]:
    """``render(generator)`` with the backend's generator, inside its device slot; returns the
    result and the generator's manifest record.

    A diffusion generator that runs out of memory is not retried as it was: it is rebuilt with
    cheaper options (CPU offload and VAE tiling, then a smaller frame) and run again, until the
    options cannot step down further.
    """
    from beatframe.tasks.slots import device_slot

    options, steps_down = None, []
    with device_slot(backend):
        while True:
            generator = make_generator(backend, options=options, **make)
            try:
                result = render(generator)
            except Exception as exc:
                if not hasattr(generator, "close"):
                    raise
                from beatframe.models.wan_loader import is_out_of_memory, oom_step_down

                if not is_out_of_memory(error=exc):
                    raise
                generator.close()
                options = oom_step_down(error=exc, options=generator.options)
                if options is None:
                    raise
                steps_down.append({"offload": options.offload, "max_area": options.max_area})
                continue
            record = {"name": generator.name, "revision": generator.revision}
            if hasattr(generator, "params"):
                record.update(model=backend.get("catalog_id") or backend["model"], license=backend.get("license"),
                              params={**generator.params, "prompt": generator.prompt_for(template=make["template"])},
                              stats={k: v for k, v in generator.stats.items() if isinstance(v, (int, float, str))},
                              oom_steps=steps_down)
            return result, record


def _render_key(kind: str, parameters: dict, **what: object) -> str:
    """A clip's cache key: what it shows (``what``) plus everything that styles its frames."""
    from beatframe.music.templates import load_template
    from beatframe.models.backend import frames_fields, weights_revision

    backend = parameters["backend"]
    return cache_key(
        kind,
        audio=parameters["analysis"]["audio"]["sha256"],
        template=load_template(parameters["template"]).fingerprint(),
        generator=frames_fields(backend),
        weights=weights_revision(backend, models_dir=get_settings().models_dir),
        seed=parameters["seed"],
        size=list(parameters["size"]),
        cover=parameters["cover_sha256"],
        code=source_revision(*RENDER_SOURCES),
        **corrected_key(parameters["analysis"]),  # a corrected beat grid moves the frames
        **what,
    )


def _clip_key(context, parameters) -> str:
    return _render_key("clip", parameters, plan=parameters["plan"])


@task(name="generate-canvas-clip", cache_key_fn=_clip_key, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS,
      retry_condition_fn=retry_on_transient)
def generate_clip(analysis: dict, plan: dict, template: str, seed: int, size: tuple[int, int],
                  cover: str | None, cover_sha256: str | None, backend: dict) -> dict:
    """Render the planned window to an H.264 clip; returns its path, frame count and generator."""
    from beatframe.music.canvas import render_loop_clip
    from beatframe.music.planning import CanvasPlan, loop_timeline, rebound_order
    from beatframe.music.schemas import Analysis
    from beatframe.music.templates import load_template

    canvas_plan = CanvasPlan.from_dict(plan)
    track = Analysis.model_validate(analysis)
    timeline = loop_timeline(track, canvas_plan)
    order = rebound_order(track, canvas_plan) if canvas_plan.loop_mode == "rebound" else None
    key = _clip_key(None, {"analysis": analysis, "plan": plan, "template": template, "seed": seed,
                           "size": size, "cover": cover, "cover_sha256": cover_sha256, "backend": backend})
    out = get_settings().cache_dir / "clips" / f"{key}.mp4"
    result, generator = _render_with_backend(
        backend, lambda generator: render_loop_clip(
            generator=generator, timeline=timeline, template=load_template(template), size=tuple(size),
            seed=seed, loop_mode=canvas_plan.loop_mode, out_path=out, order=order,
            on_progress=lambda f: progress.report("generate", f)),
        cover=cover, template=template, section=canvas_plan.section, energy=timeline.section_energy)
    return {"path": str(out), "frames": result.frames, "softened_frames": result.softened_frames,
            "generator": generator}


def _shot_key(context, parameters) -> str:
    shots, index = parameters["shots"], parameters["index"]
    return _render_key("shot", parameters, shot=shots[index], previous=shots[index - 1] if index else None)


@task(name="generate-shot", cache_key_fn=_shot_key, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS,
      retry_condition_fn=retry_on_transient, task_run_name="generate-shot-{index}")
def generate_shot(analysis: dict, shots: list[dict], index: int, template: str, seed: int,
                  size: tuple[int, int], cover: str | None, cover_sha256: str | None, backend: dict) -> dict:
    """Render shot ``index`` of a video plan to an H.264 clip; returns its path, frames and luminance."""
    from beatframe.music.schemas import Analysis
    from beatframe.music.templates import load_template
    from beatframe.music.video import render_shot
    from beatframe.music.video_planning import VideoShot

    plan = [VideoShot(**shot) for shot in shots]
    key = _shot_key(None, {"analysis": analysis, "shots": shots, "index": index, "template": template,
                           "seed": seed, "size": size, "cover": cover, "cover_sha256": cover_sha256,
                           "backend": backend})
    out = get_settings().cache_dir / "clips" / f"{key}.mp4"
    track = Analysis.model_validate(analysis)
    result, generator = _render_with_backend(
        backend, lambda generator: render_shot(
            generator=generator, analysis=track, shot=plan[index], previous=plan[index - 1] if index else None,
            template=load_template(template), size=tuple(size), seed=seed, out_path=out,
            on_progress=lambda f: progress.report(f"generate: shot {index}", f)),
        cover=cover, template=template, section=plan[index].section, energy=plan[index].energy)
    return {"path": str(out), "frames": result.frames, "softened_frames": result.softened_frames,
            "luminance": result.luminance.round(5).tolist(), "generator": generator}


def _prompt_clip_key(context, parameters) -> str:
    from beatframe.music.templates import load_template
    from beatframe.models.backend import frames_fields, weights_revision

    plan, backend = parameters["plan"], parameters["backend"]
    return cache_key("prompt-clip", plan=plan, template=load_template(plan["template"]).fingerprint(),
                     generator=frames_fields(backend),
                     weights=weights_revision(backend, models_dir=get_settings().models_dir),
                     request={k: parameters["request"][k] for k in ("prompt", "negative_prompt")},
                     code=source_revision(*RENDER_SOURCES))


@task(name="generate-prompt-clip", cache_key_fn=_prompt_clip_key, retries=RETRIES, retry_delay_seconds=RETRY_DELAYS,
      retry_condition_fn=retry_on_transient)
def generate_prompt_clip(plan: dict, request: dict, backend: dict) -> dict:
    """Render a prompt's planned clip to a silent H.264 clip; returns its path, frames and generator.
    A Wan backend draws the request's own prompt and negative prompt."""
    from beatframe.music.canvas import render_loop_clip
    from beatframe.music.generation import GenerationPlan, generation_timeline
    from beatframe.music.templates import load_template

    spec = GenerationPlan.from_dict(plan)
    timeline = generation_timeline(spec)
    key = _prompt_clip_key(None, {"plan": plan, "request": request, "backend": backend})
    out = get_settings().cache_dir / "clips" / f"{key}.mp4"
    # a non-periodic timeline in "continuous" mode: rendered straight through, flash-guarded, encoded
    result, generator = _render_with_backend(
        backend, lambda generator: render_loop_clip(
            generator=generator, timeline=timeline, template=load_template(spec.template), size=spec.size,
            seed=spec.seed, loop_mode="continuous", out_path=out, on_progress=lambda f: progress.report("generate", f)),
        cover=None, template=spec.template, section="chorus", energy=timeline.section_energy,
        prompt=request["prompt"], negative=request["negative_prompt"])
    return {"path": str(out), "frames": result.frames, "softened_frames": result.softened_frames,
            "generator": generator}
