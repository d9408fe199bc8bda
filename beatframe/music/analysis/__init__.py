"""Music analysis: beats, tempo, meter, downbeats, sections, energy, onsets and vocals.

One module per musical concept (:mod:`.onsets`, :mod:`.tempo`, :mod:`.meter`, :mod:`.sections`,
:mod:`.energy`, :mod:`.vocals`); :func:`analyze` runs them all on a file and returns a validated
:class:`beatframe.music.schemas.Analysis` (schema ``beatframe.analysis/2``), with how far each
estimate can be trusted (:mod:`.confidence`) and the user's corrections applied (:mod:`.hints`).
:mod:`.visemes` reads the mouth shapes of the voice for lip-sync (``beatframe visemes``), apart
from the analysis JSON.

Examples
--------
>>> from beatframe.music.analysis import analyze
>>> a = analyze("song.wav")                                    # doctest: +SKIP
>>> a.bpm, a.meter, a.beats[:4]                                # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from beatframe.music.analysis.confidence import beat_confidence, committee, downbeat_confidence
from beatframe.music.analysis.energy import RATE, energy_curve
from beatframe.music.analysis.jit import first_call_alone
from beatframe.music.analysis.meter import estimate_downbeats
from beatframe.music.analysis.onsets import compute_features, detect_onsets
from beatframe.music.analysis.sections import (analyze_structure, label_sections,
                                               section_confidence, silent_spans)
from beatframe.music.analysis.tempo import LATENCY, estimate_beats
from beatframe.music.analysis.vocals import vocal_spans
from beatframe.music.audio import AudioClip, load_audio
from beatframe.infra.errors import BadInputError
from beatframe.music.schemas import Analysis, AnalysisHints

__all__ = ["analyze", "analyze_clip", "analyze_array", "warm_up"]

Progress = Callable[[str, float], None]


def _r(x: float) -> float:
    return round(float(x), 4)


def analyze(path: str | Path, *, progress: Progress | None = None,
            tempo_change_tolerant: bool = False, sample_rate: int = 22050,
            max_seconds: float = 1200, hints: AnalysisHints | None = None) -> Analysis:
    """Analyze an audio file.

    Parameters
    ----------
    path : str or Path
    progress : callable (stage: str, fraction: float) or None
        Called as stages finish, with the overall fraction done (0-1).
    tempo_change_tolerant : bool
        Let the beat tracker follow a drifting tempo.
    sample_rate : int
        Analysis sample rate.
    max_seconds : float
        Longest audio accepted.
    hints : AnalysisHints or None
        The user's corrections (tempo, a downbeat, the meter, a beat list), applied in place of
        the estimates; see :func:`analyze_clip`.

    Returns
    -------
    beatframe.music.schemas.Analysis

    Raises
    ------
    beatframe.infra.errors.BadInputError
        If the file is not usable audio (see :func:`beatframe.music.audio.load_audio`).
    """
    if progress:
        progress("load", 0.0)
    clip = load_audio(path, sample_rate=sample_rate, max_seconds=max_seconds)
    if progress:
        progress("load", 0.15)
    return analyze_clip(clip, progress=progress, tempo_change_tolerant=tempo_change_tolerant,
                        hints=hints, _start=0.15)


def analyze_array(y: np.ndarray, sample_rate: int, **kwargs) -> Analysis:
    """Analyze in-memory mono audio (e.g. a synthesized track)."""
    from beatframe.music.audio import clip_from_array

    return analyze_clip(clip_from_array(y, sample_rate), **kwargs)


@first_call_alone
def analyze_clip(clip: AudioClip, *, progress: Progress | None = None,
                 tempo_change_tolerant: bool = False, hints: AnalysisHints | None = None,
                 _start: float = 0.0) -> Analysis:
    """Analyze decoded audio.

    Parameters
    ----------
    clip : beatframe.music.audio.AudioClip
    progress : callable (stage: str, fraction: float) or None
    tempo_change_tolerant : bool
        Let the beat tracker follow a drifting tempo.
    hints : AnalysisHints or None
        The user's corrections. ``bpm`` re-tracks the beats at that tempo (the tracker still
        follows small drifts around it); ``beats`` replaces the beat grid (its ``beat_positions``
        give the bars); ``meter`` fixes the beats per bar; ``downbeat`` makes the beat nearest
        that time a downbeat. Each given value has confidence 1 and is listed in ``corrected``.

    Returns
    -------
    beatframe.music.schemas.Analysis
    """
    def report(stage: str, frac: float) -> None:
        if progress:
            progress(stage, _start + (1.0 - _start) * frac)

    y, sr = clip.y, clip.sample_rate
    duration = float(clip.duration) if clip.duration > 0 else len(y) / float(sr)

    feats = compute_features(y, sr)
    curve, _ = energy_curve(y, sr)
    report("features", 0.3)

    hints = hints or AnalysisHints()
    grid = _beat_grid(feats, curve, duration, hints, tempo_change_tolerant=tempo_change_tolerant)
    beats, downbeats = grid.beats, grid.downbeats
    report("downbeats", 0.7)

    structure = analyze_structure(feats, downbeats, curve, duration)
    spans = label_sections(feats, structure.bounds, curve, structure=structure)
    section_conf = round(section_confidence(structure), 3)
    report("sections", 0.85)

    vox = vocal_spans(feats)
    onsets = detect_onsets(feats, offset=-LATENCY)
    report("vocals", 0.95)

    sections = []
    for i, s in enumerate(spans):
        start = 0.0 if i == 0 else _r(s.start)
        end = duration if i == len(spans) - 1 else _r(s.end)
        sections.append({"start": start, "end": end, "label": s.label,
                         "energy": float(np.clip(round(s.energy, 4), 0.0, 1.0))})
    analysis = Analysis(
        audio={"sha256": clip.sha256, "duration": duration,
               "sample_rate": int(clip.native_sample_rate), "channels": int(clip.channels)},
        bpm=round(float(grid.bpm), 2),
        meter=grid.meter,
        beats=[_r(b) for b in beats],
        downbeats=[_r(d) for d in downbeats],
        sections=sections,
        energy={"rate": RATE, "values": [round(float(v), 4) for v in curve]},
        onsets=[_r(t) for t in np.unique(np.round(onsets, 4))],
        vocals=[{"start": _r(a), "end": _r(min(b, duration))} for a, b in vox if a < duration],
        confidence={"tempo": grid.tempo_conf, "beats": grid.beats_conf,
                    "downbeats": grid.downbeats_conf, "sections": section_conf},
        corrected=hints.given(),
    )
    report("done", 1.0)
    return analysis


@dataclass
class _Grid:
    beats: np.ndarray
    bpm: float
    meter: int
    downbeats: np.ndarray
    tempo_conf: float = 1.0
    beats_conf: float = 1.0
    downbeats_conf: float = 1.0


def _beat_grid(feats, curve, duration: float, hints: AnalysisHints, *,
               tempo_change_tolerant: bool) -> _Grid:
    """Beats, tempo, meter and downbeats with their confidences: estimated, or the user's."""
    meters = (hints.meter,) if hints.meter else (2, 3, 4)
    if hints.downbeat is not None and hints.downbeat >= duration:
        raise BadInputError(f"the downbeat at {hints.downbeat:g} s is after the track's end "
                            f"({duration:.1f} s)")
    if hints.beats is not None:
        given = np.asarray(hints.beats, dtype=float)
        inside = given < duration
        beats = np.round(given[inside], 4)
        if len(beats) < 2:
            raise BadInputError(f"the beat list has {len(beats)} beat(s) within the track's "
                                f"{duration:.1f} s; at least two are needed")
        bpm = float(60.0 / np.median(np.diff(beats)))
        if hints.beat_positions is not None:
            pos = np.asarray(hints.beat_positions)[inside]
            # the bar length is the position of the beat before each downbeat (a pickup bar
            # or an odd bar does not change the meter)
            last = pos[:-1][pos[1:] == 1]
            meter = hints.meter or int(np.bincount(last).argmax() if len(last) else pos.max())
            if np.any(pos == 1):
                return _Grid(beats, bpm, int(meter), beats[pos == 1])
        db = estimate_downbeats(feats, beats, meters=meters, downbeat=hints.downbeat)
        return _Grid(beats, bpm, int(db.meter), np.round(db.downbeats, 4),
                     downbeats_conf=1.0 if hints.downbeat is not None else downbeat_confidence(db))

    beat_res = estimate_beats(feats, tempo_change_tolerant=tempo_change_tolerant, bpm=hints.bpm)
    beats = np.unique(np.round(beat_res.beats[(beat_res.beats >= 0)
                                              & (beat_res.beats < duration)], 4))
    beats_conf, tempo_conf = beat_confidence(beats, beat_res.bpm, committee(feats),
                                             periodicity=beat_res.periodicity)
    # bar phase is counted on the unbroken grid, before silent stretches are cut out
    db = estimate_downbeats(feats, beats, meters=meters, downbeat=hints.downbeat)
    downbeats = np.round(db.downbeats, 4)
    # no beats inside silent stretches (nobody taps along to silence)
    for s0, s1 in silent_spans(curve, min_seconds=1.0):
        beats = beats[(beats < s0 + 0.05) | (beats > s1 - 0.05)]
        downbeats = downbeats[(downbeats < s0 + 0.05) | (downbeats > s1 - 0.05)]
    return _Grid(beats, float(beat_res.bpm), int(db.meter), downbeats,
                 tempo_conf=1.0 if hints.bpm else tempo_conf, beats_conf=beats_conf,
                 downbeats_conf=1.0 if hints.downbeat is not None else downbeat_confidence(db))


def warm_up() -> None:
    """Compile the analysis's jitted kernels (beatframe's and librosa's, numba) now.

    numba compiles them on a machine's first analysis and caches them on disk, which costs that
    first analysis 10-15 s on 2 cores. The CLI calls this while the local Prefect server starts in
    another process, so the two overlap; afterwards it takes about a second. It analyses six
    seconds of synthesized clicks over a tone: the same code paths and dtypes as real audio.
    """
    sample_rate = 22050
    n = sample_rate * 6
    t = np.arange(n) / sample_rate
    y = 0.05 * np.sin(2 * np.pi * 220.0 * t)
    decay = np.exp(-np.arange(800) / 150.0) * np.random.default_rng(0).standard_normal(800)
    for k in range(12):
        start = int(k * 0.5 * sample_rate)
        y[start:start + 800] += decay
    analyze_array(y.astype(np.float32), sample_rate)

