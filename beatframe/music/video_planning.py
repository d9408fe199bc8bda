"""Shot planning for a full-length music video: shots per section, cut on the bar grid.

:func:`plan_video` cuts the whole track into shots. Every section becomes one or more shots,
subdivided on phrase lines (whole bars; shorter phrases where the music is louder); shots start on
frame-exact bar lines, so cuts land on downbeats. Section changes get a transition chosen by the
destination's character, cuts inside a section are plain cuts on the beat. :func:`shot_timeline`
gives a generator the musical timeline of one shot, in shot time.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from beatframe.infra.errors import BadInputError
from beatframe.music.planning import bar_grid
from beatframe.music.schemas import Analysis
from beatframe.music.timeline import LoopTimeline
from beatframe.music.transitions import transition_seconds

VIDEO_FPS = 30
#: Shot lengths aimed for, in seconds: loud sections cut faster.
CALM_SHOT_SECONDS = 8.0
LOUD_SHOT_SECONDS = 4.0


@dataclass(frozen=True)
class VideoShot:
    """One shot: a stretch of the track rendered as one clip."""

    index: int
    first_frame: int
    last_frame: int  # exclusive
    section: str
    section_index: int
    energy: float
    transition_in: str
    transition_frames: int

    @property
    def frames(self) -> int:
        return self.last_frame - self.first_frame

    def start(self, fps: int = VIDEO_FPS) -> float:
        return self.first_frame / fps

    def end(self, fps: int = VIDEO_FPS) -> float:
        return self.last_frame / fps

    def to_dict(self) -> dict:
        return asdict(self)


def _transition_into(section: str, energy: float, previous_energy: float) -> str:
    if section in ("drop", "chorus") and energy > previous_energy:
        return "zoom"
    if section in ("outro", "breakdown", "silence") or energy < previous_energy - 0.2:
        return "crossfade"
    if section == "bridge":
        return "morph"
    return "wipe"


def _phrase_bars(energy: float, bar_seconds: float) -> int:
    """Bars per shot: a power of two near the target shot length for this loudness."""
    target = LOUD_SHOT_SECONDS + (CALM_SHOT_SECONDS - LOUD_SHOT_SECONDS) * (1.0 - energy)
    bars = max(1, target / bar_seconds)
    return int(2 ** round(math.log2(bars)))


def plan_video(analysis: Analysis, *, fps: int = VIDEO_FPS, transitions: bool = True) -> list[VideoShot]:
    """Cut the whole track into shots on the bar grid; together they cover every frame.

    Parameters
    ----------
    analysis : Analysis
        The track's analysis.
    fps : int
        Video frame rate; shot boundaries are whole frames (the one nearest each bar line).
    transitions : bool
        Use transitions at section changes; with False every boundary is a cut.
    """
    duration = analysis.audio.duration
    total = round(duration * fps)
    if total < fps:
        raise BadInputError(f"the track lasts {duration:.2f} s; a video needs at least 1 s")
    bar_seconds = analysis.meter * 60.0 / analysis.bpm if analysis.bpm > 0 else 2.0
    bars = bar_grid(analysis) if analysis.beats else np.arange(0.0, duration, bar_seconds)
    bars = bars[(bars > 0.5 / fps) & (bars < duration - 0.5 / fps)]

    # Section boundaries move to the nearest bar line (they usually are on one already).
    boundaries = []
    for section in analysis.sections[1:]:
        nearest = bars[np.argmin(np.abs(bars - section.start))] if len(bars) else section.start
        boundaries.append(nearest if abs(nearest - section.start) < bar_seconds / 2 else section.start)
    edges = [0.0, *boundaries, duration]

    shots: list[VideoShot] = []
    previous_energy = 0.0
    for index, section in enumerate(analysis.sections):
        start, end = edges[index], edges[index + 1]
        if index > 0 and (end - start < bar_seconds or (section.label == "silence" and end >= duration - 1e-6)):
            continue  # shorter than a bar, or the silent tail: it joins a neighbouring shot
        phrase = _phrase_bars(section.energy, bar_seconds)
        inner = bars[(bars > start + 1e-6) & (bars < end - 1e-6)]
        cuts = [start, *[b for i, b in enumerate(inner) if (i + 1) % phrase == 0], end]
        for a, b in zip(cuts, cuts[1:]):
            first, last = round(a * fps), round(b * fps)
            if last - first < 2:
                continue
            is_section_start = a == start and shots
            kind = _transition_into(section.label, section.energy, previous_energy) \
                if (is_section_start and transitions) else "cut"
            beat_seconds = 60.0 / analysis.bpm if analysis.bpm > 0 else 1.0
            length = int(min(last - first - 1, round(transition_seconds(kind, beat_seconds=beat_seconds) * fps)))
            shots.append(VideoShot(index=len(shots), first_frame=first, last_frame=last, section=section.label,
                                   section_index=index, energy=float(section.energy), transition_in=kind,
                                   transition_frames=max(0, length)))
        previous_energy = section.energy
    # Cover every frame: the first shot starts at frame 0, the last ends at the final frame, and
    # each shot starts where the one before ended.
    fixed = []
    for i, shot in enumerate(shots):
        first = 0 if i == 0 else fixed[-1].last_frame
        last = total if i == len(shots) - 1 else shot.last_frame
        fixed.append(VideoShot(**{**shot.to_dict(), "index": i, "first_frame": first, "last_frame": last}))
    return fixed


def shot_timeline(analysis: Analysis, *, first_frame: int, frames: int, section: str, energy: float,
                  fps: int = VIDEO_FPS) -> LoopTimeline:
    """The musical timeline of ``frames`` frames from ``first_frame``, in shot time (not looping)."""
    start = first_frame / fps
    end = (first_frame + frames) / fps

    def inside(times: list[float]) -> tuple[float, ...]:
        t = np.asarray(times, dtype=float)
        return tuple(float(x) for x in t[(t >= start) & (t < end)] - start)

    values = np.asarray(analysis.energy.values, dtype=float)
    frame_times = start + np.arange(frames) / fps
    if len(values):
        curve = np.interp(frame_times, np.arange(len(values)) / analysis.energy.rate, values)
    else:
        curve = np.full(frames, energy)
    return LoopTimeline(
        fps=fps, n_frames=frames, bpm=analysis.bpm or 120.0, meter=analysis.meter,
        beats=inside(analysis.beats), downbeats=inside(analysis.downbeats), onsets=inside(analysis.onsets),
        energy=np.clip(curve, 0, 1).astype(np.float32), section=section, section_energy=energy,
        periodic=False,
    )
