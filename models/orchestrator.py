"""Pick the video model for a request: prompt complexity, length, resolution, free GPU memory.

:func:`select_model` answers the reference API's ``POST /genius/orchestrator/select-model``
(``Recommendation.as_reference()`` is that answer's exact shape) from the catalog in
:mod:`beatframe.models.model_catalog`. It only plans: it loads nothing and imports torch only to ask CUDA
how much memory is free (:func:`free_vram_gb`), so it runs anywhere.

How it decides
--------------
1. **Complexity** of the prompt (:func:`score_prompt`): points for length, for the subjects it
   names, for camera and motion terms, and for extra scenes; simple, moderate or complex.
2. **Candidates**: catalog models that do the task, whose weights are installed (``available``:
   the caller's :func:`installed_models` of its models directory) and that fit the VRAM budget (the
   free VRAM, capped by ``max_vram_gb``), resident if they fit so, else with CPU offload.
3. **Choice.** ``prefer_quality``: the best quality rank, a model that cannot render the target
   resolution natively (up to 720p) counting one rank worse; ties go to the faster. Otherwise:
   the fastest model good enough for the prompt (simple: any; moderate: rank 3 or better;
   complex: rank 2 or better), else the best that fits.
4. **Fallback**: with no GPU, no installed model for the task, or none that fits, the CPU
   generator (``procedural`` for text, ``cover-art`` for an image), and ``reason`` says why.

Resolutions are the reference API's: 480p, 720p, 1080p, 1440p, 4k and 8k. Generative models render
their native mode and are scaled up to the target; 8k is refused (BadInputError) because no
generator delivers more than 4096 px a side.

Every time and memory figure is a planning figure from the catalog, and ``confidence`` a heuristic:
estimates, not measurements. Times come from :func:`beatframe.models.estimate.estimate_time`, the
estimate the API's 202 answers report too.

No environment variables are read here: callers say which models are installed (``available``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from beatframe.infra.errors import BadInputError
from beatframe.models.estimate import estimate_time
from beatframe.models.model_catalog import (
    CATALOG,
    CPU_FALLBACK,
    MAX_OUTPUT_SIDE,
    RESOLUTIONS,
    TASKS,
    ModelSpec,
    NativeMode,
    get_model,
)

Complexity = Literal["simple", "moderate", "complex"]

#: The worst quality rank good enough for a prompt of each complexity when speed comes first.
ADEQUATE_RANK: dict[str, int] = {"simple": 4, "moderate": 3, "complex": 2}
#: Generative models render up to 720p natively; a target at or above it is "native" for a model
#: whose best mode reaches it.
_HIGHEST_NATIVE = 720
_BYTES_PER_GB = 1e9  # decimal, as the catalog's figures (see beatframe.models.model_catalog)


# -- free memory and installed weights ---------------------------------------------------------

def free_vram_gb() -> float:
    """Free memory of the current CUDA device in decimal GB; 0.0 without torch or without CUDA.

    torch is imported here, not at module import, so planning works where it is not installed.
    A CUDA runtime that fails to answer counts as no GPU.
    """
    try:
        import torch
    except ImportError:
        return 0.0
    if not torch.cuda.is_available():
        return 0.0
    try:
        free_bytes, _total = torch.cuda.mem_get_info()
    except RuntimeError:
        return 0.0
    return free_bytes / _BYTES_PER_GB


# select_model's ``free_vram_gb`` parameter (the reference API's name) shadows the function there.
_measure_free_vram = free_vram_gb


def installed_models(models_dir: str | Path | None) -> list[str]:
    """Catalog ids whose weights are in ``models_dir``, CPU generators always included.

    A model counts as installed when ``models_dir/<folder>`` holds a diffusers pipeline (its
    ``model_index.json``): an empty or half-created folder is not a model to plan on.
    """
    root = Path(models_dir) if models_dir is not None else None
    out = []
    for spec in CATALOG:
        if spec.folder is None:
            out.append(spec.id)
        elif root is not None and (root / spec.folder / "model_index.json").is_file():
            out.append(spec.id)
    return out


# -- prompt complexity -------------------------------------------------------------------------

_CAMERA_TERMS = (
    r"pans?", r"panning", r"tilts?", r"tilting", r"zooms?", r"zooming", r"dolly", r"tracking shot",
    r"tracks", r"crane shot", r"orbits?", r"orbiting", r"close-?ups?", r"wide shot", r"aerial",
    r"drone shot", r"handheld", r"slow[- ]motion", r"time-?lapse", r"pov", r"fpv", r"rack focus",
    r"push-in", r"pull-back", r"fly-?through", r"flyover", r"sweeping", r"camera",
)
_MOTION_TERMS = (
    r"runs?", r"running", r"dances?", r"dancing", r"spins?", r"spinning", r"jumps?", r"jumping",
    r"fights?", r"fighting", r"chases?", r"chasing", r"explodes?", r"exploding", r"explosions?",
    r"fl(?:y|ies|ying)", r"soars?", r"soaring", r"races?", r"racing", r"crash(?:es|ing)?",
    r"falls?", r"falling", r"throws?", r"throwing", r"rides?", r"riding", r"drives?", r"driving",
    r"climbs?", r"climbing", r"swims?", r"swimming", r"walks?", r"walking", r"marches", r"marching",
)
_MOVE_RE = re.compile(r"\b(?:" + "|".join(_CAMERA_TERMS + _MOTION_TERMS) + r")\b")

# Nouns for the things a video has to keep consistent from frame to frame. A plural stands for
# two subjects, a number for that many (up to three), a crowd or "multiple ..." for three.
_SUBJECT_NOUNS = (
    "person", "man", "woman", "boy", "girl", "child", "kid", "dancer", "singer", "drummer",
    "guitarist", "musician", "dj", "rapper", "character", "hero", "knight", "soldier", "robot",
    "astronaut", "warrior", "king", "queen", "figure", "face", "couple", "friend", "animal", "cat",
    "dog", "horse", "bird", "wolf", "lion", "tiger", "fox", "deer", "dragon", "whale", "fish",
    "butterfly", "monster", "creature", "car", "train", "ship", "boat", "plane", "spaceship",
    "helicopter", "motorcycle", "bike",
)
_IRREGULAR_PLURALS = {"men": "man", "women": "woman", "children": "child", "people": "person",
                      "wolves": "wolf"}
_COLLECTIVES = ("crowd", "band", "group", "army", "flock", "swarm", "herd", "audience", "team")
_QUANTIFIERS = {"two": 2, "three": 3, "four": 3, "five": 3, "multiple": 3, "several": 3, "many": 3,
                "dozens": 3}

# A new scene: an explicit sequence word or a semicolon between clauses ("then cuts to" is one).
_SCENE_BREAK_RE = re.compile(
    r"\b(?:then\s+cuts?\s+to|cuts?\s+to|then|followed\s+by|meanwhile|transitions?\s+to|"
    r"switch(?:es)?\s+to|after\s+that|later)\b|;"
)
_WORD_RE = re.compile(r"[A-Za-z][A-Za-z'-]*")


@dataclass(frozen=True)
class PromptScore:
    """What :func:`score_prompt` counted, and the complexity it gives."""

    words: int
    subjects: int
    movements: int
    scenes: int
    points: int
    complexity: Complexity


def _count_subjects(text: str) -> int:
    lower = [t.lower() for t in _WORD_RE.findall(text)]
    nouns = set(_SUBJECT_NOUNS)
    seen: dict[str, int] = {}  # subject -> how many of it
    for i, tok in enumerate(lower):
        if tok in _COLLECTIVES:
            seen[tok] = 3
            continue
        if tok in nouns:
            base, count = tok, 1
        elif tok in _IRREGULAR_PLURALS:
            base, count = _IRREGULAR_PLURALS[tok], 2
        elif tok.endswith("s") and (tok[:-1] in nouns or tok[:-2] in nouns):
            base, count = (tok[:-1] if tok[:-1] in nouns else tok[:-2]), 2
        else:
            continue
        if i > 0 and lower[i - 1] in _QUANTIFIERS:
            count = _QUANTIFIERS[lower[i - 1]]
        seen[base] = max(seen.get(base, 0), count)
    # Proper nouns (a capitalised word that does not start a sentence) name subjects or places the
    # model has to get right: one each.
    starts = {m.end() for m in re.finditer(r"(?:^|[.!?;:]\s*)", text)}
    for m in _WORD_RE.finditer(text):
        word = m.group(0)
        if word[0].isupper() and m.start() not in starts and word.lower() not in seen and word != "I":
            seen[word.lower()] = 1
    return sum(seen.values())


def score_prompt(prompt: str) -> PromptScore:
    """Score how hard a prompt is to render, the heuristic :func:`select_model` uses.

    Points (a planning heuristic, not a learned model):

    * length: 0 up to 10 words, 1 up to 25, 2 up to 50, 3 above;
    * subjects named (people, animals, vehicles, creatures, proper nouns; a plural counts two, a
      number that many, a crowd or "multiple ..." three): 0 for at most one, 1 for two, 2 for
      three or more;
    * camera and motion terms (pan, orbit, close-up, slow motion, runs, dances, explodes ...):
      0 for none, 1 for one, 2 for two or more;
    * extra scenes (``then``, ``cuts to``, ``followed by``, ``meanwhile``, ``;`` ...): 2 each.

    0-1 points is ``simple``, 2-3 ``moderate``, 4 or more ``complex``.

    Raises
    ------
    BadInputError
        For an empty prompt.
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadInputError("prompt must contain text")
    text = prompt.strip()
    lower = text.lower()
    words = len(_WORD_RE.findall(text))
    subjects = _count_subjects(text)
    movements = len(_MOVE_RE.findall(lower))
    scenes = 1 + len(_SCENE_BREAK_RE.findall(lower))
    points = (
        (0 if words <= 10 else 1 if words <= 25 else 2 if words <= 50 else 3)
        + (0 if subjects <= 1 else 1 if subjects == 2 else 2)
        + min(movements, 2)
        + 2 * (scenes - 1)
    )
    complexity: Complexity = "simple" if points <= 1 else "moderate" if points <= 3 else "complex"
    return PromptScore(words=words, subjects=subjects, movements=movements, scenes=scenes,
                       points=points, complexity=complexity)


# -- plans and the recommendation --------------------------------------------------------------

@dataclass(frozen=True)
class Alternative:
    """Another model that could run the request; ``speed_factor`` > 1 means faster than the pick."""

    model: str
    vram_gb: float
    speed_factor: float


@dataclass(frozen=True)
class Recommendation:
    """The model to run, why, and what it will cost (planning figures).

    Attributes
    ----------
    recommended_model : str
        Catalog id (``procedural`` / ``cover-art`` when no generative model can run).
    complexity : {'simple', 'moderate', 'complex'}
        The prompt's complexity (:func:`score_prompt`).
    confidence : float
        0-1: how well the pick matches the request, a heuristic (see :func:`select_model`), not a
        calibrated probability.
    estimated_time_seconds : int
        Generation time of all the frames, model loading excluded: an estimate from the catalog's
        planning figures (:func:`beatframe.models.estimate.estimate_time`).
    vram_required_gb : float
        GPU memory the pick needs as it will run (offloaded or not).
    alternatives : tuple of Alternative
        The other models that could run, best first; the CPU generator last.
    reason : str
        One or two sentences: why this model, or why no generative one.
    generator : str
        The :mod:`beatframe.models.registry` name that runs it.
    offload : bool
        Whether it runs with CPU offload.
    render_size : tuple of int
        ``(width, height)`` of the landscape frame it renders before scaling.
    upscale : float
        Target short side / rendered short side (below 1 means scaling down).
    fps, frames, clips : int
        Native frame rate, frames to generate, and the clips they take (one pass makes at most
        the model's ``max_frames``).
    vram_budget_gb : float
        The free VRAM it was planned against, after ``max_vram_gb``.
    """

    recommended_model: str
    complexity: Complexity
    confidence: float
    estimated_time_seconds: int
    vram_required_gb: float
    alternatives: tuple[Alternative, ...]
    reason: str
    generator: str
    offload: bool
    render_size: tuple[int, int]
    upscale: float
    fps: int
    frames: int
    clips: int
    vram_budget_gb: float

    def as_reference(self) -> dict:
        """The reference API's select-model answer, exactly its fields."""
        return {
            "recommended_model": self.recommended_model,
            "complexity": self.complexity,
            "confidence": self.confidence,
            "estimated_time_seconds": self.estimated_time_seconds,
            "vram_required_gb": self.vram_required_gb,
            "alternatives": [{"model": a.model, "vram_gb": a.vram_gb, "speed_factor": a.speed_factor}
                             for a in self.alternatives],
        }


@dataclass(frozen=True)
class _Plan:
    spec: ModelSpec
    mode: NativeMode
    offload: bool
    vram_gb: float
    frames: int
    clips: int
    seconds: float
    upscale: float
    render_size: tuple[int, int]
    shortfall: bool  # cannot render the target natively while other Wan models can


def _check_resolution(resolution: str) -> str:
    key = resolution.strip().lower() if isinstance(resolution, str) else None
    if key not in RESOLUTIONS:
        raise BadInputError(f"resolution must be one of {', '.join(RESOLUTIONS)}, got {resolution!r}")
    width, height = RESOLUTIONS[key]
    if max(width, height) > MAX_OUTPUT_SIDE:
        raise BadInputError(f"resolution {key} ({width}x{height}) is larger than any generator delivers "
                            f"({MAX_OUTPUT_SIDE} px a side); use 4k or less")
    return key


def _check_gb(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise BadInputError(f"{name} must be a non-negative number of GB, got {value!r}")
    return float(value)


def _plan(spec: ModelSpec, *, target: tuple[int, int], duration: float, budget: float) -> _Plan | None:
    """How ``spec`` would run the request within ``budget`` GB, or None when it does not fit."""
    if spec.is_gpu:
        if spec.vram_gb <= budget:
            offload, vram = False, spec.vram_gb
        elif spec.vram_offload_gb <= budget:
            offload, vram = True, spec.vram_offload_gb
        else:
            return None
    else:
        offload, vram = False, 0.0
    target_h = target[1]
    estimate = estimate_time(model=spec.id, seconds=duration, size=target, offload=offload)
    mode = estimate.mode
    if spec.renders_at_target:  # drawn straight at the output size
        upscale, render_size = 1.0, target
    else:
        upscale, render_size = target_h / mode.height, (mode.width, mode.height)
    shortfall = spec.is_gpu and mode.height < min(target_h, _HIGHEST_NATIVE) - 16
    return _Plan(spec=spec, mode=mode, offload=offload, vram_gb=vram, frames=estimate.frames, clips=estimate.clips,
                 seconds=estimate.generate_seconds, upscale=upscale, render_size=render_size, shortfall=shortfall)


def _confidence(plan: _Plan, *, complexity: str, budget: float) -> float:
    """How well the plan matches the request, 0-1 (a heuristic, documented in select_model)."""
    score = 0.95
    score -= 0.1 * max(0, plan.spec.quality_rank - ADEQUATE_RANK[complexity])
    if plan.upscale > 1.0:
        score -= 0.1 * math.log2(plan.upscale)
    if plan.vram_gb > 0 and plan.vram_gb > 0.9 * budget:
        score -= 0.05  # at the edge of the budget the planning figures may not hold
    if plan.clips > 1:
        score -= min(0.15, 0.03 * (plan.clips - 1))  # every extra clip is a seam to hide
    return round(min(0.99, max(0.05, score)), 2)


def _describe(plan: _Plan, *, why: str, resolution: str) -> str:
    spec = plan.spec
    memory = (f"needs {plan.vram_gb:g} GB with CPU offload" if plan.offload
              else f"needs {plan.vram_gb:g} GB resident")
    scaled = "" if abs(plan.upscale - 1.0) < 0.05 else f", scaled {plan.upscale:.2g}x to {resolution}"
    clips = f"{plan.clips} clip{'s' if plan.clips != 1 else ''}"
    return (f"{spec.id}: {why} ({memory}); renders {plan.render_size[0]}x{plan.render_size[1]} at "
            f"{spec.fps} fps{scaled}, {plan.frames} frames in {clips}.")


def select_model(
    *,
    prompt: str,
    duration_seconds: float,
    resolution: str,
    free_vram_gb: float | None = None,
    max_vram_gb: float | None = None,
    prefer_quality: bool = True,
    task: str = "t2v",
    available: Iterable[str],
) -> Recommendation:
    """Recommend the video model for one request.

    Parameters
    ----------
    prompt : str
        What the video shows; its complexity is scored with :func:`score_prompt`.
    duration_seconds : float
        Length of the video; sets the frame count and so the time estimate and the clip count.
    resolution : str
        Target: ``480p``, ``720p``, ``1080p``, ``1440p`` or ``4k`` (``8k`` is refused).
    free_vram_gb : float, optional
        Free GPU memory in decimal GB; measured with :func:`free_vram_gb` when not given.
    max_vram_gb : float, optional
        A cap on the memory the model may use (the reference API's ``max_vram_gb``).
    prefer_quality : bool
        Best picture first (default), else the fastest model good enough for the prompt.
    task : {'t2v', 'i2v'}
        From a prompt, or from an image and a prompt.
    available : iterable of str
        Catalog ids whose weights are present (:func:`installed_models` of the models directory).
        The CPU generators are always available.

    Returns
    -------
    Recommendation
        ``confidence`` starts at 0.95 and loses 0.1 per quality rank the pick is below what the
        prompt's complexity calls for (a CPU generator is rank 5), 0.1 per doubling of upscaling,
        0.05 when the pick needs more than 90 % of the budget, and 0.03 per extra clip (at most
        0.15); it stays within 0.05-0.99.

    Raises
    ------
    BadInputError
        For an empty prompt, a duration that is not a positive number, an unknown resolution or
        8k, an unknown task, a negative memory figure, or an unknown model id in ``available``.
    """
    score = score_prompt(prompt)
    if (isinstance(duration_seconds, bool) or not isinstance(duration_seconds, (int, float))
            or not math.isfinite(duration_seconds) or duration_seconds <= 0):
        raise BadInputError(f"duration_seconds must be a positive number, got {duration_seconds!r}")
    resolution = _check_resolution(resolution)
    if task not in TASKS:
        raise BadInputError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    free = _check_gb("free_vram_gb", free_vram_gb)
    cap = _check_gb("max_vram_gb", max_vram_gb)

    names = [available] if isinstance(available, str) else list(available)
    installed = {get_model(name).id for name in names}
    measured = free if free is not None else _measure_free_vram()
    budget = measured if cap is None else min(measured, cap)
    target = RESOLUTIONS[resolution]
    duration = float(duration_seconds)

    fallback = _plan(get_model(CPU_FALLBACK[task]), target=target, duration=duration, budget=budget)
    gpu_models = [s for s in CATALOG if s.is_gpu and task in s.tasks]
    installed_gpu = [s for s in gpu_models if s.id in installed]
    plans = [p for s in installed_gpu if (p := _plan(s, target=target, duration=duration, budget=budget))]

    if not plans:
        if budget <= 0:
            why = (f"no usable GPU ({measured:.1f} GB free VRAM)" if cap is None or measured <= 0
                   else f"the VRAM cap is {cap:g} GB")
        elif not installed_gpu:
            why = (f"no {task} model is installed among the available models; it looks for "
                   f"{', '.join(s.folder for s in gpu_models if s.folder)}")
        else:
            smallest = min(installed_gpu, key=lambda s: s.vram_offload_gb)
            why = (f"{budget:.1f} GB of VRAM is less than the smallest installed {task} model needs "
                   f"({smallest.id}: {smallest.vram_offload_gb:g} GB with CPU offload)")
        what = ("draws the visuals from the music and the template, not from the prompt" if task == "t2v"
                else "animates the image to the beat; the prompt is not rendered")
        return _recommend(fallback, [], score.complexity, budget, task=task,
                          reason=f"{fallback.spec.id} on the CPU: {why}. It {what}.")

    def quality_key(p: _Plan) -> tuple[int, float]:
        return (p.spec.quality_rank + (1 if p.shortfall else 0), p.seconds)

    ranked = sorted(plans, key=quality_key)
    fits = f"fits {budget:.1f} GB of free VRAM"
    adequate = [p for p in plans if p.spec.quality_rank <= ADEQUATE_RANK[score.complexity]]
    if prefer_quality:
        pick, why = ranked[0], f"the best-quality installed {task} model that {fits}"
    elif adequate:
        pick = min(adequate, key=lambda p: (p.seconds, quality_key(p)))
        why = f"the fastest installed {task} model that {fits} and suits a {score.complexity} prompt"
    else:
        pick = ranked[0]
        why = (f"no installed {task} model that {fits} is good enough for a {score.complexity} prompt; "
               f"this is the best of them")
    others = [p for p in ranked if p is not pick] + [fallback]
    return _recommend(pick, others, score.complexity, budget, task=task,
                      reason=_describe(pick, why=why, resolution=resolution))


def _recommend(pick: _Plan, others: list[_Plan], complexity: Complexity, budget: float, *, task: str,
               reason: str) -> Recommendation:
    alternatives = tuple(
        Alternative(model=p.spec.id, vram_gb=p.vram_gb, speed_factor=round(pick.seconds / p.seconds, 2))
        for p in others
    )
    return Recommendation(
        recommended_model=pick.spec.id,
        complexity=complexity,
        confidence=_confidence(pick, complexity=complexity, budget=budget),
        estimated_time_seconds=max(1, math.ceil(pick.seconds)),
        vram_required_gb=pick.vram_gb,
        alternatives=alternatives,
        reason=reason,
        generator=pick.spec.generator_for(task),
        offload=pick.offload,
        render_size=pick.render_size,
        upscale=round(pick.upscale, 3),
        fps=pick.spec.fps,
        frames=pick.frames,
        clips=pick.clips,
        vram_budget_gb=round(budget, 2),
    )
