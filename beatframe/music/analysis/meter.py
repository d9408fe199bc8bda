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
import scipy.ndimage

from beatframe.music.analysis.onsets import Features, mel_centres

__all__ = ["DownbeatResult", "beat_sync_chroma", "estimate_downbeats"]

#: t-statistic below which the two halves of a 4-beat bar count as indistinguishable (-> 2/4).
SPLIT_T = 1.0
#: Smallest 3-beat contrast (in standard deviations of the cue) that can make a bar 3 beats
#: long (it must also be 1.5 times the 2- and 4-beat contrasts). At 0.8 a rubato mazurka's
#: clear 3-beat bars (contrast 0.5-0.6, against 0.1-0.3 for 2 and 4) were read as 4/4.
TRIPLE_MIN_CONTRAST = 0.4
#: Weights of the downbeat cues: bass onset, chord change, loudness rise, high-band accent.
#: Chord change weighs most: it is the cue the downbeat literature finds most reliable in
#: Western harmony (bars start with a new chord), and it only counts where the harmony moves.
CHORD_WEIGHT = 2.0


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
    mx = scipy.ndimage.maximum_filter1d(env, size=2 * radius + 1, mode="constant")
    return mx[np.clip(frames, 0, len(env) - 1)]


def _band_rows(features: Features, lo: float, hi: float) -> np.ndarray:
    centres = mel_centres(features.sr, features.mel_db.shape[0])
    return np.flatnonzero((centres >= lo) & (centres < hi))


def harmonic_share(features: Features) -> float:
    """Share of the 150 Hz - 3 kHz power that is sustained (harmonic) rather than percussive:
    median filtering of the mel power along time keeps held notes, along frequency keeps
    drum hits. Near 0 for a percussion ensemble, 0.4-0.8 for songs."""
    rows = _band_rows(features, 150.0, 3000.0)
    if len(rows) < 5 or features.n_frames < 40:
        return 0.0
    # every 8th frame (93 ms apart): a held note spans the 5-sample (0.46 s) time median, a
    # drum hit does not
    P = 10.0 ** (features.mel_db[rows][:, ::8] / np.float32(10.0))
    H = scipy.ndimage.median_filter(P, size=(1, 5))
    Pe = scipy.ndimage.median_filter(P, size=(5, 1))
    h = float(np.sum(H.astype(np.float64) ** 2))
    p = float(np.sum(Pe.astype(np.float64) ** 2))
    return h / (h + p) if h + p > 0 else 0.0


def beat_cues(features: Features, beats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-beat downbeat cues (z-scored), shape ``(4, len(beats))`` — bass onset, chord change,
    loudness rise, high-band accent — and their reliabilities (0-1) for this track.

    A cue a track does not carry is not trusted: the bass onset only as far as there is bass
    (share of power below 180 Hz), chord change only as far as the harmony moves at all (the
    share of sustained, harmonic power: a percussion ensemble's "chroma" is noise).
    """
    n = len(beats)
    frames = features.time_to_frame(beats)
    radius = max(1, int(round(0.03 * features.frame_rate)))
    low = _local_max(features.env_low, frames, radius)
    hi_env = features.env_high
    hi = _local_max(hi_env, frames, radius)
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
    power = 10.0 ** (features.mel_db[:, ::4].astype(np.float64) / 10.0)
    low_rows = _band_rows(features, 0.0, 180.0)
    low_share = float(power[low_rows].sum() / max(power.sum(), 1e-12)) if len(low_rows) else 0.0
    r_low = float(np.clip(low_share / 0.05, 0.0, 1.0))
    r_chord = float(np.clip((harmonic_share(features) - 0.1) / 0.2, 0.0, 1.0))
    cues = np.vstack([_z(np.log1p(low)), _z(change), _z(rise), _z(np.log1p(hi / (np.mean(hi) + 1e-9)))])
    return cues, np.array([r_low, r_chord, 1.0, 1.0])


def _phase_stats(cue: np.ndarray, m: int) -> dict:
    n = len(cue)
    phases, ts = [], []
    for p in range(m):
        idx = np.arange(p, n, m)
        mask = np.ones(n, dtype=bool)
        mask[idx] = False
        d = float(cue[idx].mean() - cue[mask].mean())
        se = float(np.std(cue)) * np.sqrt(1.0 / len(idx) + 1.0 / max(1, mask.sum())) + 1e-9
        phases.append(d)
        ts.append(d / se)
    p = int(np.argmax(phases))
    return dict(phase=p, contrast=phases[p], t=ts[p], phases=phases)


def estimate_downbeats(features: Features, beats: np.ndarray, *, meters=(2, 3, 4),
                       weights=None, downbeat: float | None = None) -> DownbeatResult:
    """Estimate the meter and the downbeats among ``beats``.

    The weighted cue (bass onset and chord change up; a high-band accent, the backbeat of snare
    or clap, down; the loudness rise is computed but off by default: with a loud backbeat it
    marks beat 2) is folded at 2, 3 and 4 beats. 4/4 is the default; 3 needs
    a clearly stronger 3-beat contrast; 2 is chosen when the 2-beat contrast is clearly stronger,
    or when the music has no moving harmony (percussion: chord changes are what usually mark a
    4-beat bar) and the two halves of a 4-beat bar cannot be told apart by any cue (samba and
    marches, notated in 2/4).

    Parameters
    ----------
    features : Features
    beats : np.ndarray
        Beat times (s).
    meters : sequence of int
        Candidate bar lengths in beats (one value: the meter is known).
    weights : (float, float, float, float) or None
        Weights of the bass-onset, chord-change, loudness-rise and high-band accent cues (each
        further scaled by the cue's reliability on this track); default ``(1, CHORD_WEIGHT, 0,
        -0.5)``, read at call time.
    downbeat : float or None
        The time of one downbeat, if known: the beat nearest it sets the bar phase.

    Returns
    -------
    DownbeatResult
    """
    beats = np.asarray(beats, dtype=float)
    n = len(beats)
    if weights is None:
        weights = (1.0, CHORD_WEIGHT, 0.0, -0.5)
    if downbeat is not None and n:
        # the meter still comes from the cues (unless given); only the phase is known
        res = estimate_downbeats(features, beats, meters=meters, weights=weights)
        p = int(np.argmin(np.abs(beats - downbeat))) % res.meter
        return DownbeatResult(meter=res.meter, downbeats=beats[p::res.meter].copy(), phase=p,
                              scores=res.scores)
    if len(meters) == 1:
        m = int(meters[0])
        if n < 2 * m:
            return DownbeatResult(meter=m, downbeats=beats[:1].copy(), phase=0, scores={})
        cues, rel = beat_cues(features, beats)
        st = _phase_stats(np.tensordot(np.asarray(weights, float) * rel, cues, axes=1), m)
        return DownbeatResult(meter=m, downbeats=beats[st["phase"]::m].copy(), phase=st["phase"],
                              scores={m: st})
    if n < 4:
        return DownbeatResult(meter=4, downbeats=beats[:1].copy(), phase=0, scores={})
    cues, rel = beat_cues(features, beats)
    cue = np.tensordot(np.asarray(weights, dtype=float) * rel, cues, axes=1)
    scores: dict = {}
    for m in meters:
        if n < 2 * m:
            continue
        scores[m] = _phase_stats(cue, m)
    c = {m: v["contrast"] for m, v in scores.items()}
    if 4 in meters and 4 not in c:
        # fewer than two 4-beat bars: nothing to compare, keep the 4/4 default (the bar phase
        # from the 2-beat fold, whose downbeats are every other beat of a 4-beat bar too)
        p = scores[2]["phase"] if 2 in scores else 0
        return DownbeatResult(meter=4, downbeats=beats[p::4].copy(), phase=p, scores=scores)
    best = 4 if 4 in c else (max(c, key=c.get) if c else None)
    if 3 in c and c[3] > max(TRIPLE_MIN_CONTRAST, 1.5 * c.get(4, 0.0), 1.5 * c.get(2, 0.0)):
        best = 3
    elif 2 in c and c[2] > max(0.3, 1.5 * c.get(4, 0.0)):
        best = 2
    elif 2 in c and 4 in c and n >= 16 and c[2] > 0.1 and rel[1] < 0.5:
        # No moving harmony (percussion): does anything tell the two halves of a 4-beat bar
        # apart? If not, the bar is 2 beats long.
        p = scores[4]["phase"]
        a, b = cue[p::4], cue[(p + 2) % 4::4]
        se = float(np.std(cue)) * np.sqrt(1.0 / len(a) + 1.0 / len(b)) + 1e-9
        split = float(a.mean() - b.mean()) / se
        scores[4]["split_t"] = split
        if split < SPLIT_T:
            best = 2
    if best is None:
        return DownbeatResult(meter=4, downbeats=beats[:1].copy(), phase=0, scores=scores)
    p = scores[best]["phase"]
    return DownbeatResult(meter=int(best), downbeats=beats[p::best].copy(), phase=p,
                          scores=scores)
