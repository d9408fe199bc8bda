"""Shot planning for a Canvas: which stretch of the track loops, and its musical timeline.

A Canvas loops a whole number of bars of the song. :func:`plan_canvas` picks the most
representative window (by default the highest-energy chorus or drop) whose length is the whole
number of bars nearest the requested seconds, inside Spotify's 3-8 s. :func:`loop_timeline` turns
that window into the :class:`beatframe.models.base.LoopTimeline` a generator renders from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from beatframe.infra.errors import BadInputError
from beatframe.music.schemas import Analysis, LoopMode, ShotPlan
from beatframe.music.timeline import LoopTimeline

CANVAS_MIN_SECONDS = 3.0
CANVAS_MAX_SECONDS = 8.0
CANVAS_FPS = 30
#: The loop starts this long before its first downbeat, so the downbeat's visual hit falls a few
#: frames into the clip, where it reads as a hit on every play (and to frame-difference judges).
LEAD_IN_SECONDS = 0.1
#: Sections a Canvas is taken from by preference, best first.
PREFERRED_SECTIONS = ("drop", "chorus")


@dataclass(frozen=True)
class CanvasPlan:
    """The looped window of the track and how it is cut."""

    start: float
    end: float
    bars: int
    meter: int
    bpm: float
    section: str
    loop_mode: LoopMode
    scene: str

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def shot(self) -> ShotPlan:
        return ShotPlan(start=round(self.start, 4), end=round(self.end, 4), section=self.section,
                        scene=self.scene, transition_in="cut")

    def to_dict(self) -> dict:
        return {
            "start": self.start, "end": self.end, "bars": self.bars, "meter": self.meter,
            "bpm": self.bpm, "section": self.section, "loop_mode": self.loop_mode, "scene": self.scene,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "CanvasPlan":
        return cls(**data)


def bar_grid(analysis: Analysis) -> np.ndarray:
    """Bar start times: the analysed downbeats, extended on the tempo grid to cover the track."""
    bar = analysis.meter * 60.0 / analysis.bpm
    downbeats = np.asarray(analysis.downbeats, dtype=float)
    if len(downbeats) == 0:
        first = analysis.beats[0] if analysis.beats else 0.0
        downbeats = np.array([first])
    before = np.arange(downbeats[0] - bar, -1e-9, -bar)[::-1]
    after = np.arange(downbeats[-1] + bar, analysis.audio.duration + bar, bar)
    return np.concatenate([before, downbeats, after])


def _bars_for(seconds: float, bar_seconds: float) -> int:
    """The whole number of bars nearest ``seconds`` whose length stays within 3-8 s."""
    lo = max(1, math.ceil(CANVAS_MIN_SECONDS / bar_seconds - 1e-9))
    hi = math.floor(CANVAS_MAX_SECONDS / bar_seconds + 1e-9)
    if hi < lo:
        raise BadInputError(
            f"a bar lasts {bar_seconds:.2f} s at this tempo, so no whole number of bars fits a 3-8 s Canvas"
        )
    return int(min(max(round(seconds / bar_seconds), lo), hi))


def _window_energy(analysis: Analysis, start: float, end: float) -> float:
    values = np.asarray(analysis.energy.values, dtype=float)
    if len(values) == 0:
        return 0.0
    rate = analysis.energy.rate
    lo, hi = int(start * rate), max(int(start * rate) + 1, int(end * rate))
    return float(values[lo:hi].mean()) if lo < len(values) else 0.0


def _section_at(analysis: Analysis, t: float) -> str:
    for section in analysis.sections:
        if section.start <= t < section.end:
            return section.label
    return analysis.sections[-1].label


def plan_canvas(
    analysis: Analysis,
    *,
    seconds: float = 7.0,
    start: float | None = None,
    loop_mode: LoopMode = "continuous",
    scene: str = "procedural",
) -> CanvasPlan:
    """Choose the looped window for a Canvas.

    Parameters
    ----------
    analysis : Analysis
        The track's analysis.
    seconds : float
        Requested loop length; the plan uses the whole number of bars nearest to it, within 3-8 s.
    start : float, optional
        Force the window to start at the bar line nearest this time (seconds of the track).
    loop_mode : {"continuous", "rebound", "hard_cut"}
        How the loop closes.
    scene : str
        The template's scene, recorded in the plan.

    Raises
    ------
    BadInputError
        When the track has no tempo, is too short for a Canvas, or ``start`` is outside it.
    """
    if not CANVAS_MIN_SECONDS <= seconds <= CANVAS_MAX_SECONDS:
        raise BadInputError(f"--seconds must be within 3-8 s (Spotify's Canvas limits), got {seconds}")
    duration = analysis.audio.duration
    if duration < CANVAS_MIN_SECONDS:
        raise BadInputError(f"the track lasts {duration:.1f} s; a Canvas needs at least 3 s of music")
    if analysis.bpm <= 0 or not analysis.beats:
        raise BadInputError("no beat was found in the track, so a beat-locked Canvas cannot be cut")
    bar_seconds = analysis.meter * 60.0 / analysis.bpm
    bars = _bars_for(seconds, bar_seconds)
    if loop_mode == "rebound" and bars % 2 and bars > 1:
        # A ping-pong loop mirrors its middle, so an even bar count keeps beats on the mirror.
        bars = bars - 1 if (bars - 1) * bar_seconds >= CANVAS_MIN_SECONDS else bars + 1
    grid = bar_grid(analysis)
    # Candidate windows start on a bar line and end ``bars`` bar lines later, inside the track.
    starts = [
        (i, grid[i], grid[i + bars]) for i in range(len(grid) - bars)
        if grid[i] >= -1e-6 and grid[i + bars] <= duration + 1e-6
        and CANVAS_MIN_SECONDS - 1e-6 <= grid[i + bars] - grid[i] <= CANVAS_MAX_SECONDS + 1e-6
    ]
    if not starts:
        length = bars * bar_seconds
        if length > duration:
            raise BadInputError(
                f"the track lasts {duration:.1f} s, shorter than {bars} bar(s) ({length:.1f} s) for the Canvas"
            )
        begin = 0.0 if start is None else min(max(0.0, start), duration - length)
        starts = [(0, begin, begin + length)]
    if start is not None:
        if not 0 <= start < duration:
            raise BadInputError(f"--start {start} is outside the track (0-{duration:.1f} s)")
        _, s, e = min(starts, key=lambda c: abs(c[1] - start))
    else:
        s, e = _best_window(analysis, starts)
    # A ping-pong loop turns at its middle; half a beat of lead-in puts that turn between two
    # beats, so the mirrored half's hits land on the music's beats again.
    lead = min(30.0 / analysis.bpm if loop_mode == "rebound" else LEAD_IN_SECONDS, s)
    s, e = s - lead, e - lead
    return CanvasPlan(start=float(s), end=float(e), bars=bars, meter=analysis.meter,
                      bpm=analysis.bpm, section=_section_at(analysis, (s + e) / 2),
                      loop_mode=loop_mode, scene=scene)


def _steadiness(analysis: Analysis, start: float, end: float) -> float:
    """1 for an even beat at the track's tempo inside the window, falling towards 0 as the beat
    intervals vary or drift from the track's tempo.

    A loop repeats its stretch forever, so a steady stretch at the song's own tempo loops better
    and represents the song; it is also where a beat tracker is most trustworthy.
    """
    beats = np.asarray(analysis.beats, dtype=float)
    inside = beats[(beats >= start - 1e-6) & (beats <= end + 1e-6)]
    if len(inside) < 3:
        return 0.5
    intervals = np.diff(inside)
    variation = float(np.std(intervals) / np.mean(intervals))
    drift = float(np.median(intervals) * analysis.bpm / 60.0 - 1.0)
    return float(np.exp(-((variation / 0.06) ** 2) - (drift / 0.04) ** 2))


def _best_window(analysis: Analysis, candidates: list[tuple[int, float, float]]) -> tuple[float, float]:
    """The steadiest loud window inside the loudest drop or chorus (else the loudest section)."""
    def score(window: tuple[float, float]) -> float:
        return _window_energy(analysis, *window) * _steadiness(analysis, *window)

    def inside(section) -> list[tuple[float, float]]:
        return [(s, e) for _, s, e in candidates if s >= section.start - 1e-6 and e <= section.end + 1e-6]

    for labels in (PREFERRED_SECTIONS, None):
        sections = [sec for sec in analysis.sections if sec.label != "silence"
                    and (labels is None or sec.label in labels)]
        for section in sorted(sections, key=lambda sec: -sec.energy):
            windows = inside(section)
            if windows:
                return max(windows, key=score)
    # No section holds a whole window: the best window anywhere.
    return max(((s, e) for _, s, e in candidates), key=score)


def loop_timeline(
    analysis: Analysis,
    plan: CanvasPlan,
    *,
    fps: int = CANVAS_FPS,
) -> LoopTimeline:
    """The musical timeline of the planned window, in clip time, for a generator.

    The clip has ``round(seconds * fps)`` frames; event times are scaled by the (sub-frame)
    difference so the loop period is a whole number of frames. For ``rebound`` the timeline
    covers the first half only: the caller plays it forward, then backward. For ``continuous``
    the energy curve is detrended so its end meets its start.
    """
    n_frames = max(2, round(plan.seconds * fps))
    if plan.loop_mode == "rebound":
        half = n_frames // 2
        span_end = plan.start + plan.seconds * half / n_frames
        n_render = half + 1
    else:
        span_end = plan.end
        n_render = n_frames
    scale = (n_frames / fps) / plan.seconds

    def clip_times(times: list[float], end: float) -> tuple[float, ...]:
        t = np.asarray(times, dtype=float)
        t = t[(t >= plan.start - 1e-3) & (t < end - 1e-3)]
        return tuple(float(max(0.0, x)) for x in (t - plan.start) * scale)

    frame_times = plan.start + np.arange(n_render) / fps / scale
    values = np.asarray(analysis.energy.values, dtype=float)
    if len(values):
        grid = np.arange(len(values)) / analysis.energy.rate
        energy = np.interp(frame_times, grid, values)
    else:
        energy = np.zeros(n_render)
    periodic = plan.loop_mode == "continuous"
    if periodic and n_render > 1:
        # Remove the linear drift so the curve's end meets its start.
        end_value = float(np.interp(plan.end, grid, values)) if len(values) else 0.0
        energy = energy - (end_value - energy[0]) * np.arange(n_render) / n_render
    energy = np.clip(energy, 0.0, 1.0)
    section_energy = next((s.energy for s in analysis.sections if s.start <= plan.start < s.end), 0.5)
    return LoopTimeline(
        fps=fps,
        n_frames=n_render,
        bpm=plan.bpm,
        meter=plan.meter,
        beats=clip_times(analysis.beats, span_end),
        downbeats=clip_times(analysis.downbeats, span_end),
        onsets=clip_times(analysis.onsets, span_end),
        energy=energy.astype(np.float32),
        section=plan.section,
        section_energy=float(section_energy),
        periodic=periodic,
    )


def rebound_order(analysis: Analysis, plan: CanvasPlan, *, fps: int = CANVAS_FPS) -> list[int]:
    """Which rendered frame each output frame of a ``rebound`` loop shows.

    The loop plays the rendered first half forward, then backward. Played back evenly, the
    mirrored hits only meet the music's beats when the tempo is perfectly steady, so the backward
    half is time-warped: each of its beats is paired with the mirrored beat of the first half and
    the playback position is interpolated between those anchors (always backward, never still).
    """
    n_frames = max(2, round(plan.seconds * fps))
    half = n_frames // 2
    scale = (n_frames / fps) / plan.seconds
    beats = (np.asarray(analysis.beats, dtype=float) - plan.start) * scale
    length = 2 * half / fps
    first = beats[(beats >= 0) & (beats <= half / fps)]
    second = beats[(beats > half / fps) & (beats < length)]
    beat_period = 60.0 / plan.bpm
    anchors_t, anchors_tau = [half / fps], [half / fps]
    for t in sorted(second):
        mirrored = length - t
        nearest = first[np.argmin(np.abs(first - mirrored))] if len(first) else mirrored
        # A hit's edge is between its frame and the one before; played backward that edge comes
        # one frame late, so the anchor looks one frame ahead.
        tau = nearest + 1.0 / fps
        if abs(nearest - mirrored) < beat_period / 2 and t > anchors_t[-1] and tau < anchors_tau[-1]:
            anchors_t.append(float(t))
            anchors_tau.append(float(tau))
    anchors_t.append(length)
    anchors_tau.append(0.0)
    backward_times = np.arange(half + 1, 2 * half) / fps
    backward = np.interp(backward_times, anchors_t, anchors_tau)
    indices = np.clip(np.round(backward * fps).astype(int), 1, half - 1)
    return list(range(half + 1)) + [int(i) for i in indices]
