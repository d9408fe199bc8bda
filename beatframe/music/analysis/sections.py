"""Song structure: section boundaries on bar lines and their labels.

Bar-synchronous features (chroma, MFCC and loudness, each z-scored) form a self-similarity
matrix; a Gaussian-tapered checkerboard kernel slid along its diagonal gives a novelty curve,
to which the bar-to-bar loudness change is added. Novelty peaks become boundaries on the
downbeats; silent stretches become their own sections.

Labels come from repetition and energy: sections are clustered by their mean features, and a
cluster whose members differ clearly in loudness is split (a verse and a chorus over the same
chords); the most repeated loud cluster is the chorus; a quiet start is the intro and a quiet end the outro;
near-silent spans are silence; a one-off quiet dip between louder sections is a breakdown, and a loudest
section right after a breakdown a drop; a short section leading from a verse into a chorus is a pre-chorus;
a one-off section late in the song is the bridge; the rest are verses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.signal

from beatframe.music.analysis.energy import RATE, span_energy
from beatframe.music.analysis.meter import _segment_means
from beatframe.music.analysis.onsets import Features

__all__ = ["SectionSpan", "segment", "label_sections", "silent_spans"]

SILENCE_LEVEL = 0.02  # normalized energy below which a stretch counts as silent
ENERGY_SPLIT = 1.3  # energy ratio that splits a cluster of similar sections (verse vs chorus)


@dataclass
class SectionSpan:
    start: float
    end: float
    label: str
    energy: float


def silent_spans(curve: np.ndarray, *, rate: int = RATE, level: float = SILENCE_LEVEL,
                 min_seconds: float = 1.0) -> list[tuple[float, float]]:
    """Stretches (start, end) where the normalized energy stays below ``level``."""
    quiet = np.asarray(curve) < level
    spans = []
    if not quiet.any():
        return spans
    d = np.diff(np.concatenate([[0], quiet.astype(int), [0]]))
    for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)):
        if (b - a) / rate >= min_seconds:
            spans.append((a / rate, b / rate))
    return spans


def _bar_features(features: Features, bars: np.ndarray) -> np.ndarray:
    """Stacked, z-scored per-bar features, shape (n_bars, n_dims)."""
    fr = features.frame_rate
    b = np.round(bars * fr).astype(int)
    mel = features.mel_db.astype(np.float64)
    m = _segment_means(mel, b)
    mfcc = scipy.fft.dct(m, type=2, norm="ortho", axis=0)[1:14]
    loud = m.mean(axis=0, keepdims=True)
    cb = np.round(bars * features.chroma_rate).astype(int)
    ch = _segment_means(np.sqrt(np.maximum(features.chroma.astype(np.float64), 0)), cb)
    ch = ch / (np.linalg.norm(ch, axis=0, keepdims=True) + 1e-9)

    def z(x):
        mu = x.mean(axis=1, keepdims=True)
        sd = x.std(axis=1, keepdims=True) + 1e-6
        return (x - mu) / sd

    # group weights: chroma and timbre equally, loudness a little
    feats = np.vstack([z(ch) / np.sqrt(12), z(mfcc) / np.sqrt(13), 0.7 * z(loud)])
    return feats.T


def _novelty(F: np.ndarray, half: int) -> np.ndarray:
    n = len(F)
    Fn = F / (np.linalg.norm(F, axis=1, keepdims=True) + 1e-9)
    S = Fn @ Fn.T
    k = np.arange(-half, half)
    g = np.exp(-0.5 * ((k + 0.5) / (0.5 * half)) ** 2)
    sign = np.sign(k + 0.5)
    kern = np.outer(g * sign, g * sign)
    Sp = np.pad(S, half, mode="edge")
    nov = np.zeros(n)
    for i in range(n):
        nov[i] = np.sum(Sp[i:i + 2 * half, i:i + 2 * half] * kern)
    return np.maximum(nov, 0)


def segment(features: Features, downbeats: np.ndarray, curve: np.ndarray, duration: float, *,
            min_bars: int = 4) -> list[float]:
    """Section boundaries (s), including 0 and ``duration``.

    Parameters
    ----------
    features : Features
    downbeats : np.ndarray
        Downbeat times; boundaries fall on these.
    curve : np.ndarray
        Normalized energy curve at :data:`RATE` values per second.
    duration : float
    min_bars : int
        Shortest section in bars (halved for short tracks).

    Returns
    -------
    list of float
    """
    bounds = [0.0]
    db = np.asarray(downbeats, dtype=float)
    db = db[(db > 0) & (db < duration)]
    n_bars = len(db)
    if n_bars >= 6:
        bars = np.append(db, duration)
        F = _bar_features(features, bars)  # one row per bar starting at db[i]
        if n_bars < 24:
            min_bars = max(2, min_bars // 2)
        half = max(2, min(8, n_bars // 6, min_bars + 2))
        nov = _novelty(F, half)
        # add loudness steps (smoothed over 2 bars on each side)
        loud = F[:, -1]
        step = np.zeros(n_bars)
        for i in range(1, n_bars):
            a, b = loud[max(0, i - 2):i].mean(), loud[i:i + 2].mean()
            step[i] = abs(b - a)
        nov = nov / (nov.max() + 1e-9) + 0.5 * step / (step.max() + 1e-9)
        nov[0] = 0.0
        thr = float(np.mean(nov) + 0.3 * np.std(nov))
        peaks, _ = scipy.signal.find_peaks(nov, height=thr, distance=min_bars)
        # enforce minimum length from the start too
        peaks = [p for p in peaks if p >= min_bars // 2 and n_bars - p >= min_bars // 2]
        bounds += [float(db[p]) for p in peaks]

    # silent stretches become sections of their own
    for s0, s1 in silent_spans(curve):
        if s1 - s0 < 1.0:
            continue
        for t in (s0, s1):
            if 0.5 < t < duration - 0.5:
                # snap to a nearby downbeat
                if len(db):
                    j = int(np.argmin(np.abs(db - t)))
                    if abs(db[j] - t) < 0.4:
                        t = float(db[j])
                bounds.append(t)
    bounds = sorted(set(round(b, 6) for b in bounds))
    # drop boundaries closer than 1 s to the previous one (or the end)
    out = [bounds[0]]
    for b in bounds[1:]:
        if b - out[-1] >= 1.0 and duration - b >= 1.0:
            out.append(b)
    out.append(float(duration))
    return out


def label_sections(features: Features, bounds: list[float], curve: np.ndarray) -> list[SectionSpan]:
    """Label the spans between ``bounds`` (see module docstring for the rules)."""
    n = len(bounds) - 1
    energies = np.array([span_energy(curve, bounds[i], bounds[i + 1]) for i in range(n)])
    spans = [SectionSpan(bounds[i], bounds[i + 1], "verse", float(energies[i])) for i in range(n)]
    if n == 0:
        return spans
    silent_set = silent_spans(curve)

    def is_silent(i: int) -> bool:
        s = spans[i]
        inside = sum(max(0.0, min(b, s.end) - max(a, s.start)) for a, b in silent_set)
        return inside >= 0.8 * (s.end - s.start) or s.energy < SILENCE_LEVEL

    silent = np.array([is_silent(i) for i in range(n)])
    live = np.flatnonzero(~silent)
    for i in np.flatnonzero(silent):
        spans[i].label = "silence"
    if len(live) == 0:
        return spans
    if len(live) == 1:
        return spans

    # cluster live sections by mean features
    F = _bar_features(features, np.asarray(bounds))
    Fl = F[live]
    Fl = Fl / (np.linalg.norm(Fl, axis=1, keepdims=True) + 1e-9)
    from scipy.cluster.hierarchy import fcluster, linkage

    if len(live) >= 2:
        Z = linkage(Fl, method="average", metric="cosine")
        clusters = fcluster(Z, t=0.5, criterion="distance")
    else:
        clusters = np.ones(1, dtype=int)
    cl = {int(live[k]): int(clusters[k]) for k in range(len(live))}
    # Verses and choruses often share chords and timbre and differ mostly in level: split every
    # cluster where its members' energies (sorted) jump by more than ENERGY_SPLIT.
    next_id = max(cl.values()) + 1
    for c in sorted(set(cl.values())):
        members = sorted((i for i in cl if cl[i] == c), key=lambda i: energies[i])
        for a, b in zip(members[:-1], members[1:]):
            if energies[b] > ENERGY_SPLIT * max(energies[a], 1e-6):
                for j in members[members.index(b):]:
                    cl[j] = next_id
                next_id += 1
    e_live = energies[live]
    e_med = float(np.median(e_live))
    e_max = float(np.max(e_live))
    durs = np.array([s.end - s.start for s in spans])

    # chorus: the loud cluster, preferring repeated ones
    best_c, best_score = None, -1.0
    for c in set(cl.values()):
        members = [i for i in cl if cl[i] == c]
        me = float(np.mean(energies[members]))
        score = me * (1.0 + 0.25 * min(len(members) - 1, 3))
        if me >= e_med and score > best_score:
            best_c, best_score = c, score
    chorus = {i for i in cl if cl[i] == best_c} if best_c is not None else set()
    # a lone loud section is a chorus only if clearly louder than the median
    chorus = {i for i in chorus if energies[i] >= e_med + 0.25 * (e_max - e_med) or len(chorus) > 1}
    for i in chorus:
        spans[i].label = "chorus"

    first, last = int(live[0]), int(live[-1])
    # intro / outro: a quiet first / last section that is not most of the song
    total = float(bounds[-1] - bounds[0])
    edge_max = max(0.25 * total, 4.0)
    if first not in chorus and energies[first] < 0.75 * e_med and durs[first] <= edge_max:
        spans[first].label = "intro"
    if last not in chorus and last != first and energies[last] < 0.75 * e_med \
            and durs[last] <= edge_max:
        spans[last].label = "outro"

    for k, i in enumerate(live):
        if spans[i].label != "verse":
            continue
        prev_i = live[k - 1] if k > 0 else None
        next_i = live[k + 1] if k + 1 < len(live) else None
        neigh = [energies[j] for j in (prev_i, next_i) if j is not None]
        # breakdown: a one-off quiet dip between louder sections (a repeated one is a verse)
        repeated = sum(1 for j in cl if cl[j] == cl[i]) > 1
        if prev_i is not None and next_i is not None and energies[i] < 0.6 * min(neigh) \
                and not repeated:
            spans[i].label = "breakdown"
        # pre-chorus: short, leads from a verse into a chorus
        elif next_i is not None and next_i in chorus and durs[i] <= 0.6 * durs[next_i] \
                and i not in chorus and prev_i is not None and spans[prev_i].label == "verse":
            spans[i].label = "pre-chorus"
    # drop: the loudest section right after a breakdown
    for k, i in enumerate(live[:-1]):
        if spans[i].label == "breakdown":
            j = int(live[k + 1])
            if energies[j] >= 0.95 * e_max:
                spans[j].label = "drop"
    # bridge: a one-off verse-like section in the second half that differs from the verses
    verse_clusters = [cl[i] for i in live if spans[i].label == "verse"]
    for i in live:
        if spans[i].label == "verse" and spans[i].start > 0.5 * spans[-1].end \
                and verse_clusters.count(cl[i]) == 1 and len(verse_clusters) > 1:
            spans[i].label = "bridge"
    return spans
