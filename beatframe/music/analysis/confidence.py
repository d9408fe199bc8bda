"""How far the beat grid can be trusted: agreement with a committee of simpler trackers.

A beat sequence that several independent trackers, each listening to a different onset cue,
also find is usually right; one they disagree with is often wrong. This is the *mean mutual
agreement* of Holzapfel et al. (2012, "Selective sampling for beat tracking evaluation", IEEE
TASLP), who showed it predicts a tracker's accuracy without ground truth; Zapata et al. (2014,
"Multi-feature beat tracking") use the same committee idea. The committee here is cheap: for
each onset cue (the median-aggregated mel flux, the high band, the low band and the loudness
rise), the tempo hypothesis the cue's own periodicity and the tempo prior favour is tracked
with the same dynamic program on a 2x pooled envelope.

The agreement of two beat lists is the beat F-measure (+-70 ms, the field's usual window) of one
against the other. ``confidence.beats`` is the mean agreement of the chosen beats with the
committee, leaving out the member that disagrees most (a cue this music may simply lack: a
bass line in a piano piece); ``confidence.tempo`` is the share of members whose tempo matches
(within 4 %; one an octave away counts half); ``confidence.downbeats`` is how clearly the chosen bar phase stands out from the
next best (a t-statistic squashed to 0-1). Both beat confidences are scaled down where the onset
envelope is hardly periodic at the beat period: trackers also agree on scattered onsets. ``benchmarks/analysis.py`` prints how these predict
the measured F-measures on annotated recordings.
"""

from __future__ import annotations

import numpy as np

from beatframe.music.analysis.meter import DownbeatResult
from beatframe.music.analysis.onsets import Features, median_flux
from beatframe.music.analysis.tempo import prior_weight, tempo_candidates, track_beats

__all__ = ["agreement", "committee", "beat_confidence", "downbeat_confidence"]

#: Agreement window (s): the usual beat-evaluation tolerance.
WINDOW = 0.07
#: Autocorrelation of the onset envelope at the beat period from which the pulse counts as
#: clear (music with a steady beat: 0.25-0.95; scattered clicks, rubato piano: 0.1 or less).
CLEAR_PULSE = 0.25


def agreement(a: np.ndarray, b: np.ndarray, *, window: float = WINDOW) -> float:
    """Beat F-measure of ``b`` against ``a`` (symmetric): one-to-one matches within ``window``."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) == 0 or len(b) == 0:
        return 0.0
    # greedy in time order is optimal here: beats are farther apart than twice the window
    i = j = hits = 0
    while i < len(a) and j < len(b):
        d = b[j] - a[i]
        if abs(d) <= window:
            hits += 1
            i += 1
            j += 1
        elif d < 0:
            j += 1
        else:
            i += 1
    return 2.0 * hits / (len(a) + len(b))


def _member(env: np.ndarray, frame_rate: float) -> np.ndarray:
    """Beat times from one onset cue: its most salient prior-weighted tempo, tracked."""
    n2 = len(env) // 2
    if n2 < 8 or float(env.max()) <= 0:
        return np.zeros(0)
    e2 = np.maximum(env[0:2 * n2:2], env[1:2 * n2:2]).astype(np.float64)
    fr2 = frame_rate / 2.0
    cands = tempo_candidates(e2, fr2)
    bpm = max(cands, key=lambda c: max(c[1], 1e-3) * prior_weight(c[0]))[0]
    frames = track_beats(e2, fr2, bpm, rel_range=0.15)
    return frames / fr2


def committee(features: Features) -> list[np.ndarray]:
    """Beat lists of the committee (one per onset cue other than the main tracker's)."""
    f = features
    cues = [median_flux(f), f.env_high, f.env_low,
            _loudness_rise(f)]
    return [_member(np.asarray(c, dtype=np.float64), f.frame_rate) for c in cues]


def _loudness_rise(features: Features) -> np.ndarray:
    r = np.log1p(100.0 * features.rms.astype(np.float64))
    out = np.zeros_like(r)
    out[1:] = np.maximum(0.0, np.diff(r))
    return out


def beat_confidence(beats: np.ndarray, bpm: float, members: list[np.ndarray], *,
                    periodicity: float) -> tuple[float, float]:
    """(beats, tempo) confidence of a beat list against the committee's, each 0-1.

    ``periodicity`` (:func:`beatframe.music.analysis.tempo.periodicity` at ``bpm``) scales both:
    trackers agree on scattered onsets too, but without a periodic envelope there is no pulse to
    be sure of.
    """
    if len(beats) < 2 or not members:
        return 0.0, 0.0
    pulse = min(1.0, periodicity / CLEAR_PULSE)
    agree = np.array([agreement(beats, m) for m in members])
    tempos = np.array([60.0 / float(np.median(np.diff(m))) if len(m) > 1 else 0.0
                       for m in members])
    ratio = tempos / max(bpm, 1e-9)
    same = np.abs(ratio - 1.0) <= 0.04
    octave = (np.abs(ratio - 2.0) <= 0.08) | (np.abs(ratio - 0.5) <= 0.02)
    # a majority must agree: the one member furthest off (a cue this music lacks) is dropped
    beat_conf = float(np.mean(np.sort(agree)[1:])) if len(agree) > 2 else float(np.mean(agree))
    # members on the same pulse confirm the tempo; one an octave away half does (which level
    # listeners tap is itself ambiguous there)
    tempo_conf = float(np.mean(np.where(same, 1.0, np.where(octave, 0.5, 0.0))))
    return round(beat_conf * pulse, 3), round(tempo_conf * pulse, 3)


def downbeat_confidence(result: DownbeatResult) -> float:
    """How clearly the chosen bar phase beats the other phases (0-1)."""
    stats = result.scores.get(result.meter)
    if not stats:
        return 0.0
    phases = np.sort(np.asarray(stats["phases"], dtype=float))[::-1]
    if len(phases) < 2:
        return 0.0
    # the contrast of the best phase over the runner-up, in units of its standard error
    se = abs(stats["contrast"]) / abs(stats["t"]) if stats["t"] else 1.0
    margin = (phases[0] - phases[1]) / max(se, 1e-9)
    return round(float(1.0 - np.exp(-max(margin, 0.0) / 2.0)), 3)

