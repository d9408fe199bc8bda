"""Stage 2: plan the Canvas window (bars, section, loop mode) from the analysis."""

from __future__ import annotations

from prefect import task

import beatframe.music.planning
from beatframe.infra.cachekeys import cache_key, source_revision
from beatframe.music.planning import plan_canvas
from beatframe.music.schemas import Analysis
from beatframe.tasks.analyze import analysis_revision, corrected_key


def _plan_key(context, parameters) -> str:
    p = {k: v for k, v in parameters.items() if k != "analysis"}
    return cache_key("plan", audio=parameters["analysis"]["audio"]["sha256"], analysis=analysis_revision(),
                     code=source_revision(beatframe.music.planning.__file__), **p,
                     **corrected_key(parameters["analysis"]))


@task(name="plan-canvas-shots", cache_key_fn=_plan_key)
def plan_canvas_shots(analysis: dict, seconds: float, start: float | None, loop_mode: str,
                      scene: str) -> dict:
    """The looped window of the track, as a plan dict (see :class:`beatframe.music.planning.CanvasPlan`)."""
    plan = plan_canvas(Analysis.model_validate(analysis), seconds=seconds, start=start,
                       loop_mode=loop_mode, scene=scene)
    return plan.to_dict()


def _video_plan_key(context, parameters) -> str:
    import beatframe.music.video_planning
    import beatframe.music.transitions

    return cache_key("video-plan", audio=parameters["analysis"]["audio"]["sha256"], analysis=analysis_revision(),
                     code=source_revision(beatframe.music.video_planning.__file__, beatframe.music.planning.__file__,
                                          beatframe.music.transitions.__file__),
                     transitions=parameters["transitions"], **corrected_key(parameters["analysis"]))


@task(name="plan-video-shots", cache_key_fn=_video_plan_key)
def plan_video_shots(analysis: dict, transitions: bool = True) -> list[dict]:
    """The video's shots, covering every frame, as dicts (see :class:`beatframe.music.video_planning.VideoShot`)."""
    from beatframe.music.video_planning import plan_video

    return [shot.to_dict() for shot in plan_video(Analysis.model_validate(analysis), transitions=transitions)]


def _prompt_plan_key(context, parameters) -> str:
    import beatframe.music.generation

    return cache_key("prompt-plan", request=parameters["request"], seed=parameters["seed"],
                     code=source_revision(beatframe.music.generation.__file__))


@task(name="plan-prompt-video", cache_key_fn=_prompt_plan_key)
def plan_prompt_video(request: dict, seed: int) -> dict:
    """A prompt's render plan: template, frame size, tempo (see :class:`beatframe.music.generation.GenerationPlan`)."""
    from beatframe.music.generation import GenerationRequest, plan_generation

    return plan_generation(GenerationRequest.model_validate(request), seed=seed).to_dict()


@task(name="choose-generator")
def choose_generator(choice: str | None, kind: str, size: tuple[int, int], seconds: float,
                     prompt: str | None = None) -> dict:
    """The generator this machine renders with (:func:`beatframe.models.backend.resolve_backend`): never
    cached, since it depends on the machine's GPU and model folders."""
    from beatframe.infra.settings import get_settings
    from beatframe.models.backend import resolve_backend

    return resolve_backend(choice, task=kind, size=tuple(size), seconds=seconds, prompt=prompt,
                           models_dir=get_settings().models_dir)
