"""Multi-shot scene edits (the reference API's scene orchestrator): a list of scenes, each a prompt
or a template scene, a duration and an optional image asset (with its licence), cut together with
transitions.

Planning (:func:`plan_scene_edit`):

- **Timing.** With a track, the edit lasts as long as the track (the last scene takes what is left)
  and each boundary moves to the downbeat nearest the scenes' cumulative durations, so every
  transition lands on a bar line; without one, scenes keep their durations and move to a steady
  pulse (:data:`DEFAULT_BPM`), so the pictures still breathe in bars.
- **Transitions.** Any of :data:`beatframe.music.transitions.TRANSITIONS`, one per scene or
  ``auto``: with a track, chosen from the music at the boundary as the music-video planner chooses
  (a rise into a loud section zooms, a fall crossfades); without one, ``crossfade``. A transition
  lasts ``transition_seconds`` (at most a third of the shorter scene): the outgoing scene keeps
  moving under it.
- **Looks.** A scene's template is its own, else the one its prompt's words name
  (:func:`beatframe.music.generation.style_for`), else the previous scene's. ``consistency`` keeps the
  shots one film: one seed for every scene and every scene painted in one palette, the first
  scene's, or the dominant colours of ``reference_image`` when given.

Rendering (:func:`edit_frames`) streams every frame through the transitions, so memory stays
bounded however long the edit is. No environment variables are read here.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from beatframe.infra.errors import BadInputError
from beatframe.music.generation import style_for
from beatframe.music.limits import MAX_PROMPT_CHARS
from beatframe.music.schemas import Analysis
from beatframe.music.transitions import TRANSITIONS, transition_frame
from beatframe.music.video_planning import VIDEO_FPS, shot_timeline

DEFAULT_BPM = 100.0
MAX_SCENES = 50
MIN_SCENE_SECONDS = 0.5
#: A scene's fields that describe the rights to its image, as an API asset's do; they go to the
#: edit's licensing record, not into its look.
LICENCE_FIELDS = ("license", "attribution", "rights_holder")


class Scene(BaseModel):
    """One scene of an edit, as the reference API's ``scenes[]`` (plus beatframe's fields)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(None, max_length=MAX_PROMPT_CHARS, description="what the scene shows")
    template: str | None = Field(None, max_length=64, description="a built-in template's name")
    duration: float = Field(gt=0, le=600, description="seconds")
    asset: str | None = Field(None, description="an image to animate in this scene (a path or store:<key>)")
    transition: str = Field("auto", description="into this scene: auto or one of " + ", ".join(TRANSITIONS))
    license: str | None = Field(None, min_length=1, max_length=200,
                                description="the asset's licence, e.g. CC-BY-4.0 (recorded in the manifest)")
    attribution: str | None = Field(None, min_length=1, max_length=1000, description="the asset's credit line")
    rights_holder: str | None = Field(None, min_length=1, max_length=200, description="who owns the asset")

    @model_validator(mode="after")
    def _says_what(self) -> "Scene":
        if not (self.prompt and self.prompt.strip()) and not self.template and not self.asset:
            raise ValueError("a scene needs a prompt, a template or an asset")
        if not self.asset and any(getattr(self, name) is not None for name in LICENCE_FIELDS):
            raise ValueError(f"{', '.join(LICENCE_FIELDS)} describe a scene's image: give them with an asset")
        if self.transition not in ("auto", *TRANSITIONS):
            raise ValueError(f"transition must be auto or one of {', '.join(TRANSITIONS)}")
        return self


@dataclass(frozen=True)
class PlannedScene:
    index: int
    first_frame: int
    last_frame: int  # exclusive
    template: str
    asset: str | None
    prompt: str | None
    transition_in: str
    transition_frames: int
    section: str
    energy: float

    @property
    def frames(self) -> int:
        return self.last_frame - self.first_frame

    def to_dict(self) -> dict:
        return asdict(self)


def check_scenes(scenes: list) -> list[Scene]:
    """The scenes validated (BadInputError naming the first problem)."""
    if not isinstance(scenes, list) or not scenes:
        raise BadInputError("an edit needs a non-empty list of scenes")
    if len(scenes) > MAX_SCENES:
        raise BadInputError(f"an edit has at most {MAX_SCENES} scenes, got {len(scenes)}")
    checked = []
    for i, scene in enumerate(scenes):
        try:
            checked.append(scene if isinstance(scene, Scene) else Scene.model_validate(scene))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise BadInputError(f"scene {i}: {where + ': ' if where else ''}{first['msg']}") from None
    return checked


def pulse_analysis(*, duration: float, bpm: float = DEFAULT_BPM, key: str) -> Analysis:
    """A steady pulse standing in for a track: beats at ``bpm``, a downbeat a bar, even energy."""
    beats = [round(float(t), 4) for t in np.arange(0.0, duration - 1e-6, 60.0 / bpm)]
    return Analysis.model_validate({
        "audio": {"sha256": key, "duration": duration, "sample_rate": 1, "channels": 1}, "bpm": bpm, "meter": 4,
        "beats": beats, "downbeats": beats[::4], "onsets": [], "vocals": [],
        "sections": [{"start": 0.0, "end": duration, "label": "chorus", "energy": 0.6}],
        "energy": {"rate": 10.0, "values": [0.6] * max(1, int(duration * 10))}})


def plan_scene_edit(scenes: list, *, analysis: Analysis | None = None, transition_seconds: float = 0.5,
                    fps: int = VIDEO_FPS) -> tuple[list[PlannedScene], Analysis]:
    """The edit's scenes on frames, and the analysis they move to (the track's, or a pulse's).

    Raises
    ------
    BadInputError
        No scenes, a bad scene, a scene too short to keep once boundaries meet the downbeats, or a
        transition longer than 5 s.
    """
    from beatframe.music.templates import load_template

    scenes = check_scenes(scenes)
    if not 0 <= transition_seconds <= 5:
        raise BadInputError(f"transition_seconds must be within 0-5, got {transition_seconds!r}")
    asked = [s.duration for s in scenes]
    has_track = analysis is not None
    if not has_track:
        # the pulse's key names what the edit shows: a scene's licence changes no frame
        key = hashlib.sha256(json.dumps([s.model_dump(exclude=set(LICENCE_FIELDS)) for s in scenes],
                                        sort_keys=True).encode()).hexdigest()
        analysis = pulse_analysis(duration=sum(asked), key=key)
        bounds = np.cumsum([0.0, *asked])
    else:
        bounds = _on_downbeats(analysis, asked)
    frames = np.round(bounds * fps).astype(int)
    frames[-1] = int(round(analysis.audio.duration * fps))
    if np.any(np.diff(frames) < MIN_SCENE_SECONDS * fps):
        raise BadInputError(f"every scene must last at least {MIN_SCENE_SECONDS} s once its boundaries meet the"
                            " downbeats; use fewer or longer scenes")
    planned, template = [], "neon-pulse"
    for i, scene in enumerate(scenes):
        if scene.template:
            template = load_template(scene.template).name  # an unknown name is a BadInputError here
        elif scene.prompt:
            template = style_for(prompt=scene.prompt, genre="cinematic")[0]
        section, energy = _music_at(analysis, frames[i] / fps)
        kind = "cut" if i == 0 else scene.transition
        if kind == "auto":
            kind = _auto_transition(analysis, frames[i] / fps) if has_track else "crossfade"
        span = int(min(frames[i + 1] - frames[i], frames[i] - frames[i - 1] if i else 0) // 3)
        blend = 0 if kind == "cut" else max(1, min(int(round(transition_seconds * fps)), span))
        planned.append(PlannedScene(index=i, first_frame=int(frames[i]), last_frame=int(frames[i + 1]),
                                    template=template, asset=scene.asset, prompt=scene.prompt, transition_in=kind,
                                    transition_frames=blend, section=section, energy=energy))
    return planned, analysis


def _on_downbeats(analysis: Analysis, asked: list[float]) -> np.ndarray:
    """Boundaries at the downbeats nearest the cumulative durations, the last at the track's end."""
    duration = analysis.audio.duration
    grid = np.asarray(analysis.downbeats or analysis.beats, dtype=float)
    bounds = [0.0]
    for target in np.cumsum(asked)[:-1]:
        target = min(target, duration)
        snapped = float(grid[np.argmin(np.abs(grid - target))]) if len(grid) else target
        bounds.append(snapped if snapped > bounds[-1] else target)
    bounds.append(duration)
    return np.asarray(bounds)


def _music_at(analysis: Analysis, t: float) -> tuple[str, float]:
    section = next((s for s in analysis.sections if s.start <= t < s.end), analysis.sections[-1])
    return section.label, section.energy


def _auto_transition(analysis: Analysis, t: float) -> str:
    """As the music-video planner: a rise into a loud section zooms, a fall crossfades, else a wipe."""
    label, energy = _music_at(analysis, t)
    label_before, energy_before = _music_at(analysis, max(0.0, t - 0.5))
    if label in ("drop", "chorus") and energy > energy_before:
        return "zoom"
    if label in ("outro", "breakdown", "silence") or energy < energy_before - 0.2:
        return "crossfade"
    return "wipe" if label_before != label else "crossfade"


def palette_of(image: np.ndarray, *, colours: int = 5) -> tuple[str, ...]:
    """The dominant colours of an RGB image, dark to light, as ``#rrggbb`` (k-means in RGB)."""
    import cv2

    small = cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA).reshape(-1, 3).astype(np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    cv2.setRNGSeed(0)
    _, _, centres = cv2.kmeans(small, colours, None, criteria, 3, cv2.KMEANS_PP_CENTERS)
    centres = sorted(centres.clip(0, 255).astype(int).tolist(),
                     key=lambda c: 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2])
    return tuple("#{:02x}{:02x}{:02x}".format(*c) for c in centres)


def scene_looks(planned: list[PlannedScene], *, consistency: bool, palette: tuple[str, ...] | None = None) -> list:
    """Each scene's template; with ``consistency``, all in one palette (``palette`` or the first scene's)."""
    from beatframe.music.templates import load_template

    looks = [load_template(scene.template) for scene in planned]
    if not consistency:
        return looks
    shared = palette or looks[0].palette
    return [look.model_copy(update={"palette": tuple(shared)}) for look in looks]


def edit_frames(planned: list[PlannedScene], *, analysis: Analysis, looks: list, generator_for: Callable,
                size: tuple[int, int], seed: int, consistency: bool, fps: int = VIDEO_FPS) -> Iterator[np.ndarray]:
    """Every frame of the edit: each scene rendered by ``generator_for(scene)``; during a transition
    the outgoing scene goes on moving under the incoming one."""
    def scene_seed(scene: PlannedScene) -> int:
        return seed if consistency else seed + 1009 * scene.index

    def render(scene: PlannedScene, first_frame: int, frames: int) -> Iterator[np.ndarray]:
        timeline = shot_timeline(analysis, first_frame=first_frame, frames=max(2, frames), section=scene.section,
                                 energy=scene.energy, fps=fps)
        return generator_for(scene).render(timeline=timeline, template=looks[scene.index], size=size,
                                           seed=scene_seed(scene))

    for scene in planned:
        frames = render(scene, scene.first_frame, scene.frames)
        if scene.index and scene.transition_frames:
            previous = planned[scene.index - 1]
            outgoing = render(previous, scene.first_frame, scene.transition_frames)
            blend = scene.transition_frames
            for i in range(blend):
                yield transition_frame(scene.transition_in, next(outgoing), next(frames), (i + 1) / (blend + 1))
            yield from (frame for _, frame in zip(range(scene.frames - blend), frames))
        else:
            yield from (frame for _, frame in zip(range(scene.frames), frames))
