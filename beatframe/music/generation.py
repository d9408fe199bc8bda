"""Prompt-to-video generation, as the reference video-generation API asks for it (``POST /v1/generate``).

A generation has no track: the request's text, genre, length, frame rate, resolution and aspect
ratio say what to render. :class:`GenerationRequest` holds the reference API's fields with its
ranges, and :func:`plan_generation` turns one into a plan the generate stage renders: a style
template, a frame size, a seed, and a pulse to move to (a beat grid at the genre's tempo with an
energy arc, so the picture still breathes in bars as every beatframe output does).

Which backend renders it: the best one available. Without a GPU (or without local model weights)
that is the procedural generator, which reads the prompt by keywords only — words that name a
scene pick the template (``ocean``, ``sunset`` → warm waves; ``space``, ``stars``, ``aurora`` →
the starfield; ``city``, ``retro``, ``grid`` → the perspective grid; ``tunnel``, ``neon`` → the
tunnel), else the genre does. It has no use for ``negative_prompt``, ``guidance_scale`` or
``num_inference_steps``: they are validated, recorded in the manifest and passed to diffusion
backends, and the result's metadata names the model that really made the frames.

The reference API's generation ranges and defaults (prompt length, duration, frame rate, seed,
guidance scale, inference steps) are defined here once; the request model, the prompt checks
(:mod:`beatframe.models.prompting`), the generator choice (:mod:`beatframe.models.backend`) and the
Wan generator (:mod:`beatframe.models.wan`) all read them.

No environment variables are read here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from beatframe.infra.errors import BadInputError
from beatframe.music.limits import (DEFAULT_DURATION, DEFAULT_FPS, DEFAULT_GUIDANCE, DEFAULT_NEGATIVE_PROMPT,
                                    DEFAULT_STEPS, DURATION_RANGE, FPS_RANGE, GUIDANCE_RANGE, MAX_PROMPT_CHARS,
                                    SEED_MAX, STEPS_RANGE)
from beatframe.music.timeline import LoopTimeline

Resolution = Literal["480p", "720p", "1080p", "1440p", "4k", "8k"]
AspectRatio = Literal["16:9", "9:16", "1:1", "4:3"]
#: The short side of each resolution's frame, in pixels.
SHORT_SIDE = {"480p": 480, "720p": 720, "1080p": 1080, "1440p": 1440, "4k": 2160, "8k": 4320}
RATIOS = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1), "4:3": (4, 3)}
#: The procedural generator draws at most this many pixels a side (``beatframe.models.procedural.MAX_SIDE``).
PROCEDURAL_MAX_SIDE = 4096

METER = 4

#: genre -> (template, tempo in BPM): the look and the pulse a genre gets when no word of the
#: prompt names a scene. Genres are free text in the reference API; an unknown one gets the
#: ``cinematic`` style.
GENRE_STYLES = {
    "cinematic": ("aurora-particles", 90.0),
    "fantasy": ("aurora-particles", 84.0),
    "ambient": ("aurora-particles", 70.0),
    "documentary": ("sunset-waves", 80.0),
    "nature": ("sunset-waves", 76.0),
    "romance": ("sunset-waves", 72.0),
    "lofi": ("sunset-waves", 80.0),
    "pop": ("neon-pulse", 118.0),
    "electronic": ("neon-pulse", 124.0),
    "edm": ("neon-pulse", 128.0),
    "techno": ("neon-pulse", 130.0),
    "scifi": ("neon-pulse", 110.0),
    "action": ("neon-pulse", 140.0),
    "synthwave": ("mono-grid", 100.0),
    "retro": ("mono-grid", 100.0),
    "hiphop": ("mono-grid", 90.0),
    "noir": ("mono-grid", 86.0),
    "rock": ("mono-grid", 120.0),
}
DEFAULT_GENRE = "cinematic"
#: Words of a prompt that name a scene, and the template that draws it (the prompt's first such word wins).
SCENE_WORDS = (
    ("sunset-waves", ("ocean", "sea", "wave", "waves", "beach", "sunset", "dusk", "river", "water", "desert")),
    ("aurora-particles", ("space", "star", "stars", "galaxy", "aurora", "night", "sky", "snow", "nebula",
                          "cosmic", "mountains", "misty")),
    ("mono-grid", ("city", "skyline", "grid", "retro", "street", "highway", "synthwave", "arcade")),
    ("neon-pulse", ("tunnel", "neon", "cyber", "cyberpunk", "laser", "club", "portal", "warp")),
)

_SCENE_OF_WORD = {word: template for template, words in SCENE_WORDS for word in words}


class GenerationRequest(BaseModel):
    """The reference API's ``POST /generate`` body, with its defaults and ranges."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS,
                        description=f"what the video shows (1-{MAX_PROMPT_CHARS} characters)")
    negative_prompt: str = Field(DEFAULT_NEGATIVE_PROMPT, max_length=MAX_PROMPT_CHARS, description="what to avoid")
    duration_seconds: float = Field(DEFAULT_DURATION, ge=DURATION_RANGE[0], le=DURATION_RANGE[1],
                                    description="length in seconds ({:g}-{:g})".format(*DURATION_RANGE))
    fps: int = Field(DEFAULT_FPS, ge=FPS_RANGE[0], le=FPS_RANGE[1],
                     description="frames per second ({}-{})".format(*FPS_RANGE))
    resolution: Resolution = Field("720p", description="480p, 720p, 1080p, 1440p, 4k or 8k")
    aspect_ratio: AspectRatio = Field("16:9", description="16:9, 9:16, 1:1 or 4:3")
    genre: str = Field(DEFAULT_GENRE, min_length=1, max_length=64, description="style genre, e.g. cinematic")
    seed: int | None = Field(None, ge=0, le=SEED_MAX, description="reproducibility seed (default: random)")
    guidance_scale: float = Field(DEFAULT_GUIDANCE, ge=GUIDANCE_RANGE[0], le=GUIDANCE_RANGE[1],
                                  description="prompt adherence ({:g}-{:g})".format(*GUIDANCE_RANGE))
    num_inference_steps: int = Field(DEFAULT_STEPS, ge=STEPS_RANGE[0], le=STEPS_RANGE[1],
                                     description="quality steps ({}-{})".format(*STEPS_RANGE))
    webhook_url: str | None = Field(None, max_length=2048, description="where task.* events are POSTed")

    @field_validator("prompt")
    @classmethod
    def _has_words(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt must contain text")
        return value


@dataclass(frozen=True)
class GenerationPlan:
    """What the generate stage renders for one request (plain data, a cache key's input)."""

    template: str
    genre: str
    bpm: float
    width: int
    height: int
    fps: int
    n_frames: int
    seed: int
    matched_word: str | None

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def seconds(self) -> float:
        return self.n_frames / self.fps

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "GenerationPlan":
        return cls(**data)


def frame_size(*, resolution: str, aspect_ratio: str) -> tuple[int, int]:
    """``(width, height)`` of a resolution at an aspect ratio: the short side is the resolution's
    (720p 16:9 is 1280x720, 720p 9:16 is 720x1280), both sides even for H.264."""
    if resolution not in SHORT_SIDE:
        raise BadInputError(f"resolution must be one of {', '.join(SHORT_SIDE)}, got {resolution!r}")
    if aspect_ratio not in RATIOS:
        raise BadInputError(f"aspect_ratio must be one of {', '.join(RATIOS)}, got {aspect_ratio!r}")
    short = SHORT_SIDE[resolution]
    a, b = RATIOS[aspect_ratio]
    long = 2 * round(short * max(a, b) / min(a, b) / 2)
    return (long, short) if a >= b else (short, long)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def style_for(*, prompt: str, genre: str) -> tuple[str, float, str | None, str]:
    """``(template, bpm, matched word, genre used)``: the prompt's scene words first, then the genre."""
    genre_key = "".join(_words(genre))
    genre_key = genre_key if genre_key in GENRE_STYLES else DEFAULT_GENRE
    template, bpm = GENRE_STYLES[genre_key]
    for word in _words(prompt):  # the scene the prompt names first
        if word in _SCENE_OF_WORD:
            return _SCENE_OF_WORD[word], bpm, word, genre_key
    return template, bpm, None, genre_key


def plan_generation(request: GenerationRequest, *, seed: int) -> GenerationPlan:
    """The render plan of ``request`` for the procedural generator.

    Raises
    ------
    BadInputError
        When the frame is larger than the procedural generator draws (8k: 7680 px a side).
    """
    width, height = frame_size(resolution=request.resolution, aspect_ratio=request.aspect_ratio)
    if max(width, height) > PROCEDURAL_MAX_SIDE:
        raise BadInputError(f"resolution {request.resolution} ({width}x{height}) is larger than the available "
                            f"generator (procedural, up to {PROCEDURAL_MAX_SIDE} px a side) renders; use 4k or less")
    template, bpm, word, genre = style_for(prompt=request.prompt, genre=request.genre)
    n_frames = max(2, round(request.duration_seconds * request.fps))
    return GenerationPlan(template=template, genre=genre, bpm=bpm, width=width, height=height, fps=request.fps,
                          n_frames=n_frames, seed=seed, matched_word=word)


def generator_choice(*, guidance_scale: float, steps: int) -> dict:
    """The generator a generation asks for: the best one the machine has (``auto``), with the
    request's diffusion settings (what :func:`beatframe.models.backend.resolve_backend` reads)."""
    return {"name": "auto", "guidance_scale": guidance_scale, "steps": steps}


def generation_timeline(plan: GenerationPlan) -> LoopTimeline:
    """The pulse of a generated clip: beats at the plan's tempo from the first frame, a downbeat
    every bar, and an energy arc that rises to a peak two thirds in and settles at the end."""
    seconds = plan.seconds
    beat = 60.0 / plan.bpm
    beats = tuple(float(t) for t in np.arange(0.0, seconds - 1e-9, beat))
    downbeats = beats[::METER]
    t = np.arange(plan.n_frames) / plan.n_frames
    arc = 0.35 + 0.55 * np.sin(np.pi * np.clip(t / 0.66, 0.0, 1.0) / 2) ** 2 - 0.25 * np.clip((t - 0.66) / 0.34, 0, 1)
    # a deterministic wobble per prompt seed, so two generations of one genre do not breathe alike
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(f"energy:{plan.seed}".encode()).digest()[:8], "little"))
    wobble = np.convolve(rng.normal(0.0, 0.05, plan.n_frames), np.ones(9) / 9, mode="same")
    energy = np.clip(arc + wobble, 0.0, 1.0)
    return LoopTimeline(fps=plan.fps, n_frames=plan.n_frames, bpm=plan.bpm, meter=METER, beats=beats,
                        downbeats=downbeats, onsets=(), energy=energy, section="chorus",
                        section_energy=float(energy.mean()), periodic=False)
