"""Music analysis: beats, tempo, meter, downbeats, sections, energy, onsets and vocals.

One module per musical concept (:mod:`.onsets`, :mod:`.tempo`, :mod:`.meter`, :mod:`.sections`,
:mod:`.energy`, :mod:`.vocals`); :func:`analyze` runs them all on a file and returns a validated
:class:`beatframe.music.schemas.Analysis` (schema ``beatframe.analysis/1``). :mod:`.visemes` reads the
mouth shapes of the voice for lip-sync (``beatframe visemes``), apart from the analysis JSON.

Examples
--------
>>> from beatframe.music.analysis import analyze
>>> a = analyze("song.wav")                                    # doctest: +SKIP
>>> a.bpm, a.meter, a.beats[:4]                                # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from beatframe.music.analysis.energy import RATE, energy_curve
from beatframe.music.analysis.jit import first_call_alone
from beatframe.music.analysis.meter import estimate_downbeats
from beatframe.music.analysis.onsets import compute_features, detect_onsets
from beatframe.music.analysis.sections import label_sections, segment, silent_spans
from beatframe.music.analysis.tempo import LATENCY, estimate_beats
from beatframe.music.analysis.vocals import vocal_spans
from beatframe.music.audio import AudioClip, load_audio
from beatframe.music.schemas import Analysis

__all__ = ["analyze", "analyze_clip", "analyze_array", "warm_up"]

Progress = Callable[[str, float], None]


def _r(x: float) -> float:
    return round(float(x), 4)


def analyze(path: str | Path, *, progress: Progress | None = None,
            tempo_change_tolerant: bool = False, sample_rate: int = 22050,
            max_seconds: float = 1200) -> Analysis:
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
                        _start=0.15)


def analyze_array(y: np.ndarray, sample_rate: int, **kwargs) -> Analysis:
    """Analyze in-memory mono audio (e.g. a synthesized track)."""
    from beatframe.music.audio import clip_from_array

    return analyze_clip(clip_from_array(y, sample_rate), **kwargs)


@first_call_alone
def analyze_clip(clip: AudioClip, *, progress: Progress | None = None,
                 tempo_change_tolerant: bool = False, _start: float = 0.0) -> Analysis:
    """Analyze decoded audio.

    Parameters
    ----------
    clip : beatframe.music.audio.AudioClip
    progress : callable (stage: str, fraction: float) or None
    tempo_change_tolerant : bool
        Let the beat tracker follow a drifting tempo.

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

    beat_res = estimate_beats(feats, tempo_change_tolerant=tempo_change_tolerant)
    beats = np.unique(np.round(beat_res.beats[(beat_res.beats >= 0)
                                              & (beat_res.beats < duration)], 4))
    report("beats", 0.55)

    # bar phase is counted on the unbroken grid, before silent stretches are cut out
    db = estimate_downbeats(feats, beats)
    meter = int(db.meter)
    downbeats = np.round(db.downbeats, 4)
    # no beats inside silent stretches (nobody taps along to silence)
    for s0, s1 in silent_spans(curve, min_seconds=1.0):
        keep = (beats < s0 + 0.05) | (beats > s1 - 0.05)
        beats = beats[keep]
        downbeats = downbeats[(downbeats < s0 + 0.05) | (downbeats > s1 - 0.05)]
    report("downbeats", 0.7)

    bounds = segment(feats, downbeats, curve, duration)
    spans = label_sections(feats, bounds, curve)
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
        bpm=round(float(beat_res.bpm), 2),
        meter=meter,
        beats=[_r(b) for b in beats],
        downbeats=[_r(d) for d in downbeats],
        sections=sections,
        energy={"rate": RATE, "values": [round(float(v), 4) for v in curve]},
        onsets=[_r(t) for t in np.unique(np.round(onsets, 4))],
        vocals=[{"start": _r(a), "end": _r(min(b, duration))} for a, b in vox if a < duration],
    )
    report("done", 1.0)
    return analysis


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

