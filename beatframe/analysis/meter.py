"""Meter and downbeats.

Beat-synchronous cues are computed at every beat: low-frequency onset strength (kick drum and
bass notes tend to start bars), harmonic change (chords tend to change on bar lines: cosine
distance between the chroma of the beat before and after) and loudness change. The meter is
the bar length (2, 3 or 4 beats) at which these cues are most periodic, and the downbeat phase
is the offset within the bar where they are strongest on average.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from beatframe.analysis.onsets import Features

__all__ = ["DownbeatResult", "beat_sync_chroma", "estimate_downbeats"]


@dataclass
class DownbeatResult:
    """Meter, downbeat times (a subset of the beats) and per-candidate scores."""

    meter: int
    downbeats: np.ndarray
    phase: int
    scores: dict


def _segment_means(x: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Mean of columns of ``x`` between consecutive frame ``bounds`` (len(bounds)-1 segments)."""
    n = x.shape[1]
    bounds = np.clip(bounds, 0, n)
    cs = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)
    lo, hi = bounds[:-1], np.maximum(bounds[1:], bounds[:-1] + 1)
    hi = np.minimum(hi, n)
    lo = np.minimum(lo, hi - 1).clip(0)
    return (cs[:, hi] - cs[:, lo]) / np.maximum(hi - lo, 1)


def beat_sync_chroma(features: Features, beats: np.ndarray) -> np.ndarray:
    """L2-normalized chroma averaged over each beat span, shape ``(12, len(beats))``."""
    if len(beats) == 0:
        return np.zeros((12, 0))
    fr = features.chroma_rate
    ends = np.append(beats[1:], beats[-1] + (np.median(np.diff(beats)) if len(beats) > 1 else 0.5))
    bounds = np.round(np.append(beats, ends[-1]) * fr).astype(int)
    c = _segment_means(features.chroma.astype(np.float64), bounds)
    c = np.sqrt(np.maximum(c, 0))
    return c / (np.linalg.norm(c, axis=0, keepdims=True) + 1e-9)


def _z(x: np.ndarray) -> np.ndarray:
    s = float(np.std(x))
    return (x - float(np.mean(x))) / s if s > 1e-9 else np.zeros_like(x)


def _local_max(env: np.ndarray, frames: np.ndarray, radius: int) -> np.ndarray:
    import scipy.ndimage

    mx = scipy.ndimage.maximum_filter1d(env, size=2 * radius + 1, mode="constant")
    return mx[np.clip(frames, 0, len(env) - 1)]


def beat_cues(features: Features, beats: np.ndarray) -> np.ndarray:
    """Per-beat downbeat cues (z-scored), shape ``(3, len(beats))``: bass onset, chord change,
    loudness rise."""
    n = len(beats)
    frames = features.time_to_frame(beats)
    radius = max(1, int(round(0.03 * features.frame_rate)))
    low = _local_max(features.env_low, frames, radius)
    ch = beat_sync_chroma(features, beats)
    change = np.zeros(n)
    if n > 1:
        change[1:] = 1.0 - np.sum(ch[:, 1:] * ch[:, :-1], axis=0)
    # loudness of the beat span vs the previous one (bars start with a bang)
    ends = np.append(frames[1:], frames[-1] + (int(np.median(np.diff(frames))) if n > 1 else 1))
    bounds = np.append(frames, ends[-1])
    loud = _segment_means(features.mel_db.mean(axis=0, keepdims=True).astype(np.float64),
                          bounds)[0]
    rise = np.zeros(n)
    rise[1:] = np.maximum(0.0, loud[1:] - loud[:-1])
    return np.vstack([_z(np.log1p(low)), _z(change), _z(rise)])


def estimate_downbeats(features: Features, beats: np.ndarray, *, meters=(2, 3, 4),
                       weights=(1.0, 1.2, 0.4)) -> DownbeatResult:
    """Estimate the meter and the downbeats among ``beats``.

    Parameters
    ----------
    features : Features
    beats : np.ndarray
        Beat times (s).
    meters : sequence of int
        Candidate bar lengths in beats.
    weights : (float, float, float)
        Weights of the bass-onset, chord-change and loudness-rise cues.

    Returns
    -------
    DownbeatResult
    """
    beats = np.asarray(beats, dtype=float)
    n = len(beats)
    if n < 4:
        return DownbeatResult(meter=4, downbeats=beats[:1].copy(), phase=0, scores={})
    cues = beat_cues(features, beats)
    cue = np.tensordot(np.asarray(weights, dtype=float), cues, axes=1)
    scores: dict = {}
    for m in meters:
        if n < 2 * m:
            continue
        phase_scores = []
        for p in range(m):
            idx = np.arange(p, n, m)
            mask = np.ones(n, dtype=bool)
            mask[idx] = False
            phase_scores.append(float(cue[idx].mean() - cue[mask].mean()))
        p = int(np.argmax(phase_scores))
        scores[m] = dict(phase=p, contrast=phase_scores[p], phases=phase_scores)
    # 4 is the default; 3 and 2 need clear evidence (a 4/4 bar also shows a 2-beat contrast,
    # about 0.8 of the 4-beat one).
    c = {m: v["contrast"] for m, v in scores.items()}
    best = 4 if 4 in c else (max(c, key=c.get) if c else None)
    if 3 in c and c[3] > max(0.8, 1.5 * c.get(4, 0.0), 1.5 * c.get(2, 0.0)):
        best = 3
    elif 2 in c and c[2] > max(0.3, 1.3 * c.get(4, 0.0)):
        best = 2
    if best is None:
        return DownbeatResult(meter=4, downbeats=beats[:1].copy(), phase=0, scores=scores)
    p = scores[best]["phase"]
    return DownbeatResult(meter=int(best), downbeats=beats[p::best].copy(), phase=p,
                          scores=scores)
