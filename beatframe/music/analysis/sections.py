"""Song structure: section boundaries, their labels and a confidence.

Call :func:`analyze_structure` (boundaries, with what the rest needs), then :func:`label_sections`
with ``structure=`` and :func:`section_confidence`.

Boundaries
----------
Frames are :data:`FRAME_SECONDS` (0.5 s, about a beat) long: on the two real recordings of the
development set they did as well as or better than beat-synchronous frames (which stay available:
``beats=``) and they do not depend on the beat tracker, which is least reliable on exactly the
music whose structure is hardest (rubato, orchestral, solo instruments). Each frame has 13 MFCCs
(timbre), the mean log-mel level (loudness) and a log-compressed chroma (harmony), robustly
standardized (median / IQR, clipped); the three groups weigh the same. Two well-known novelty
measures are computed on the frames, each scaled to 0-1 over the music (leading and trailing
silence left out), and averaged, the three curves with equal weights:

* Foote's checkerboard novelty (Foote 2000) on the Gaussian self-similarity matrix of the features
  (smoothed over :data:`FEATURE_SMOOTH` s), at two kernel half-widths (:data:`KERNEL_HALF`: 8 and
  16 s; MSAF's default 66-beat kernel is 16 s a side at 120 BPM). The Gaussian-tapered kernel
  only counts the cells inside the matrix, so the ends of the track do not read as changes. It
  finds changes of texture, loudness and harmony (homogeneity).
* Serrà et al.'s structure features (Serrà, Müller, Grosche & Arcos 2014) on the chroma, with the
  defaults of MSAF: a time-delay embedding of :data:`SF_EMBED` s (3 beats), a recurrence matrix of
  mutual nearest neighbours (:data:`SF_KNN` = 4 % of the frames), turned into a time-lag matrix
  and smoothed by a Gaussian of :data:`SF_SIGMA` s along time (13.5 beats); its frame-to-frame
  change finds where repetitions start and stop (a second verse right after the first one).

Boundaries are the peaks of the averaged novelty at least :data:`MIN_GAP` s apart (and as far from
the start and end of the music) whose prominence reaches :data:`PEAK_THRESHOLD` and whose two sides
differ more than a cut through noise would (effect size, :data:`MIN_EFFECT`); silent stretches of
a second or more become sections of their own; a boundary moves onto the nearest downbeat when one
is within a frame.

Labels
------
Sections are clustered (average linkage, cut at :data:`CLUSTER_DISTANCE`) on the smaller of two
distances: the cosine distance of their mean features, and one minus their repetition score (the
share of frames that start a :data:`REPEAT_WINDOW`-second diagonal path of the recurrence matrix
into the other section: the same melody or chords in sequence, even at another level). A cluster
whose members differ clearly in loudness is split (a verse and a chorus over the same chords).
Names go to clusters, so sections that sound alike share one and different material gets
different names as far as the vocabulary allows: near-silent spans are silence; the loudest
(preferably repeated) cluster is the chorus; a quiet first / last section is the intro / outro;
the longest remaining cluster is the verse; each other cluster is a breakdown when its sections
are quiet dips between louder ones, a pre-chorus when they are short and lead into choruses, else a
bridge; the loudest section right after a breakdown is a drop.

Confidence
----------
:func:`section_confidence` (0-1) scores each boundary by how different the music is on its two
sides against the spread within each side (about 0.5 for a cut through stationary noise, 1-2 at
a clear section change), so it is near 0 for a track without structure (noise, one repeated
bar), high for a song whose sections change in texture, level or harmony, and lower when a long
track got few sections.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.signal

from beatframe.music.analysis.energy import RATE, span_energy
from beatframe.music.analysis.onsets import Features

__all__ = ["SectionSpan", "Structure", "analyze_structure", "label_sections",
           "section_confidence", "silent_spans"]

SILENCE_LEVEL = 0.02  # normalized energy below which a stretch counts as silent
ENERGY_SPLIT = 1.3  # energy ratio that splits a cluster of similar sections (verse vs chorus)

FEATURE_SMOOTH = 2.0  # s: moving average of the frame features before the self-similarity
KERNEL_HALF = (8.0, 16.0)  # s: half-widths of the Foote checkerboard kernels
SF_EMBED = 1.5  # s: time-delay embedding of the structure features (MSAF: 3 beats)
SF_KNN = 0.04  # nearest neighbours per frame, as a fraction of the frames (Serrà et al., MSAF)
SF_SIGMA = 6.75  # s: Gaussian std along time of the lag matrix (MSAF: M=27 beats, sigma M/2)
SF_WEIGHT = 1.0 / 3.0  # share of the repetition novelty in the fused one (each curve the same)
MIN_GAP = 4.0  # s: shortest section between two novelty boundaries, and at the music's ends
PEAK_THRESHOLD = 0.1  # least prominence of a novelty peak (fused novelty scaled to 0-1)
CEPSTRUM_FLOOR = 0.5  # dB: least scale of a cepstral coefficient when standardizing
CHROMA_FLOOR = 0.01  # least scale of a chroma bin (unit-norm log chroma) when standardizing
MIN_EFFECT = 0.5  # least effect size of a novelty boundary (a cut through noise gives ~0.4)
CONFIDENCE_EFFECT = (0.5, 1.5)  # effect sizes of a boundary that score 0 and 1 in the confidence
EXPECTED_SECTION = 30.0  # s: a section per this much music is expected (less trust with fewer)
FRAME_SECONDS = 0.5  # s: length of the analysis frames (about a beat)
MAX_FRAMES = 1500  # more frames than this (a track over ~10 minutes): coarser frames
MIN_FRAMES = 16  # fewer frames than this: no novelty analysis (silence boundaries only)


@dataclass
class SectionSpan:
    start: float
    end: float
    label: str
    energy: float


@dataclass
class Structure:
    """What :func:`analyze_structure` found; feed it to :func:`label_sections` and
    :func:`section_confidence`.

    Attributes
    ----------
    bounds : list of float
        Section boundaries (s), 0 and the duration included.
    grid : np.ndarray
        Frame edges (s), ``n_frames + 1`` values from 0 to the duration.
    novelty : np.ndarray
        Fused novelty (0-1) at each frame start ``grid[:-1]``.
    strengths : dict
        Boundary time -> prominence of its novelty peak (boundaries from the novelty only).
    peak_frames : dict
        Boundary time -> frame index of its novelty peak (boundaries from the novelty only).
    frames : np.ndarray
        Standardized frame features, shape ``(n_frames, n_dims)``.
    recurrence : np.ndarray or None
        Mutual nearest-neighbour recurrence matrix of the frames (chroma, embedded).
    active : tuple of float
        Start and end of the music (leading / trailing silence left out).
    """

    bounds: list[float]
    grid: np.ndarray = field(default_factory=lambda: np.zeros(0))
    novelty: np.ndarray = field(default_factory=lambda: np.zeros(0))
    strengths: dict = field(default_factory=dict)
    peak_frames: dict = field(default_factory=dict)
    frames: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    recurrence: np.ndarray | None = None
    active: tuple[float, float] = (0.0, 0.0)


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


# ----------------------------------------------------------------------------------- features

def _span_means(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean of the columns of ``x`` between consecutive column indices ``edges``."""
    n = x.shape[1]
    e = np.clip(np.asarray(edges, dtype=int), 0, n)
    cs = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)], axis=1)
    lo = e[:-1]
    hi = np.minimum(np.maximum(e[1:], lo + 1), n)
    lo = np.clip(np.minimum(lo, hi - 1), 0, None)
    return (cs[:, hi] - cs[:, lo]) / np.maximum(hi - lo, 1)


def _frame_grid(beats: np.ndarray | None, duration: float) -> np.ndarray:
    """Frame edges from 0 to ``duration``.

    Every :data:`FRAME_SECONDS` by default; with ``beats``, the beats (gaps longer than one and a
    half beats, such as silences, filled at the median beat length). More than :data:`MAX_FRAMES`
    frames are thinned to every k-th edge.
    """
    duration = float(duration)
    b = np.asarray(beats if beats is not None else [], dtype=float)
    b = np.unique(b[(b > 0.05) & (b < duration - 0.05)])
    if len(b) > 2:
        step = float(np.clip(np.median(np.diff(b)), 0.2, 1.0))
    else:
        step, b = FRAME_SECONDS, np.arange(FRAME_SECONDS, duration - 0.05, FRAME_SECONDS)
    pts = [0.0]
    for t in list(b) + [duration]:
        gap = t - pts[-1]
        if gap > 1.5 * step:
            k = int(round(gap / step))
            pts.extend(pts[-1] + gap * np.arange(1, k) / k)
        if t - pts[-1] > 0.05:
            pts.append(t)
    pts[-1] = duration
    pts = np.asarray(pts)
    if len(pts) - 1 > MAX_FRAMES:  # a very long track: every k-th frame edge (memory, time)
        k = int(np.ceil((len(pts) - 1) / MAX_FRAMES))
        pts = np.append(pts[:-1][::k], pts[-1])
    return pts


def _robust_z(x: np.ndarray, floor: float) -> np.ndarray:
    """Per-column (x - median) / (IQR / 1.349), clipped to +-4 (silence and clicks stay bounded).

    The scale is at least ``floor`` (in the feature's units), so that inaudible wobbles of a
    steady sound are not blown up to the size of real changes.
    """
    med = np.median(x, axis=0)
    q75, q25 = np.percentile(x, [75, 25], axis=0)
    scale = np.maximum((q75 - q25) / 1.349, floor)
    return np.clip((x - med) / scale, -4.0, 4.0)


def _frame_features(features: Features, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(timbre + loudness + chroma, chroma) per frame, standardized; rows are frames."""
    fe = np.round(grid * features.frame_rate).astype(int)
    mel = _span_means(features.mel_db.astype(np.float64), fe)
    cep = scipy.fft.dct(mel, type=2, norm="ortho", axis=0)
    ce = np.round(grid * features.chroma_rate).astype(int)
    ch = _span_means(np.maximum(features.chroma.astype(np.float64), 0.0), ce)
    ch = np.log1p(100.0 * ch / (float(ch.max()) + 1e-12))
    ch = ch / (np.linalg.norm(ch, axis=0, keepdims=True) + 1e-9)
    # floors: cepstra are in dB (c0 is 8x the mean level of the 64 bands), chroma in 0-1
    timbre = _robust_z(cep[1:14].T, CEPSTRUM_FLOOR) / np.sqrt(13.0)
    loud = _robust_z(cep[:1].T, 8.0 * CEPSTRUM_FLOOR)
    chroma = _robust_z(ch.T, CHROMA_FLOOR) / np.sqrt(12.0)
    return np.hstack([timbre, loud, chroma]), chroma


def _embed(x: np.ndarray, m: int) -> np.ndarray:
    """Centred time-delay embedding: each row stacks ``m`` neighbouring rows."""
    if m <= 1:
        return x
    n = len(x)
    a = (m - 1) // 2
    p = np.pad(x, ((a, m - 1 - a), (0, 0)), mode="edge")
    return np.hstack([p[i:i + n] for i in range(m)])


def _sq_dist(x: np.ndarray) -> np.ndarray:
    s = np.einsum("ij,ij->i", x, x)
    return np.maximum(s[:, None] + s[None, :] - 2.0 * (x @ x.T), 0.0)


# ------------------------------------------------------------------------------------ novelty

def _blocks(m: np.ndarray, h: int) -> np.ndarray:
    """View of the ``2h x 2h`` blocks of zero-padded ``m`` centred on each diagonal cell."""
    p = np.pad(m, h)
    s0, s1 = p.strides
    return np.lib.stride_tricks.as_strided(p, shape=(len(m), 2 * h, 2 * h),
                                           strides=(s0 + s1, s0, s1), writeable=False)


def foote_novelty(ssm: np.ndarray, half: int) -> np.ndarray:
    """Checkerboard novelty at each frame start (a change between frame ``i-1`` and ``i``).

    The Gaussian-tapered kernel's within-block and cross-block means are taken over the cells
    inside the matrix only, so the ends of the track are not mistaken for changes.
    """
    h = max(1, int(half))
    k = np.arange(-h, h) + 0.5
    g = np.exp(-0.5 * (k / (0.5 * h)) ** 2)
    gp, gf = g * (k < 0), g * (k > 0)
    within = np.outer(gp, gp) + np.outer(gf, gf)
    cross = np.outer(gp, gf) + np.outer(gf, gp)
    b = _blocks(ssm, h)
    sw = np.einsum("ijk,jk->i", b, within)
    sc = np.einsum("ijk,jk->i", b, cross)
    # kernel mass over the cells inside the matrix: the kernels are sums of outer products, so
    # the masses are products of the tapers' sums over the frames inside the track
    inside = np.ones(len(ssm))
    wp = np.correlate(np.pad(inside, h), gp, mode="valid")[:len(ssm)]
    wf = np.correlate(np.pad(inside, h), gf, mode="valid")[:len(ssm)]
    mw = wp * wp + wf * wf
    mc = 2.0 * wp * wf
    nov = np.where(mc > 1e-9, sw / np.maximum(mw, 1e-9) - sc / np.maximum(mc, 1e-9), 0.0)
    return np.maximum(nov, 0.0)


def _knn_recurrence(x: np.ndarray, k: int, exclude: int) -> np.ndarray:
    """Mutual k-nearest-neighbour recurrence (bool), frames within ``exclude`` of the diagonal
    left out (as ``librosa.segment.recurrence_matrix(..., sym=True)``)."""
    n = len(x)
    d = _sq_dist(x)
    idx = np.arange(n)
    d[np.abs(idx[:, None] - idx[None, :]) < exclude] = np.inf
    k = int(np.clip(k, 1, max(1, n - 2 * exclude)))
    kth = np.partition(d, k - 1, axis=1)[:, k - 1:k]
    r = (d <= kth) & np.isfinite(d)
    return r & r.T


def _gaussian_rows(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along the rows (edges repeated), by FFT: as ``gaussian_filter1d(x,
    sigma, axis=1, mode="nearest")`` at a fraction of the cost for wide kernels."""
    r = int(4.0 * sigma + 0.5)
    p = np.pad(x, ((0, 0), (r, r)), mode="edge")
    nf = scipy.fft.next_fast_len(p.shape[1] + 2 * r, real=True)
    k = np.arange(-r, r + 1)
    g = np.exp(-0.5 * (k / sigma) ** 2)
    y = scipy.fft.irfft(scipy.fft.rfft(p, nf, axis=1) * scipy.fft.rfft(g / g.sum(), nf), nf, axis=1)
    return y[:, 2 * r:2 * r + x.shape[1]]


def structure_novelty(rec: np.ndarray, sigma: float) -> np.ndarray:
    """Serrà et al.'s novelty: change of the time-lag recurrence, smoothed along time."""
    n = len(rec)
    lag = np.zeros((n, n), dtype=np.float32)
    t, c = np.tril_indices(n, -1)
    lag[t - c, t] = rec[t, c]  # lag[l, t] = rec[t, t - l]: the padded (not circular) lag matrix
    lag = _gaussian_rows(lag, max(sigma, 0.5))
    lag = scipy.ndimage.gaussian_filter1d(lag, 0.5, axis=0, mode="nearest")
    d = np.linalg.norm(np.diff(lag, axis=1), axis=0)
    return np.r_[0.0, d]


def _scaled(x: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Shift to the 5th percentile and scale to a maximum of 1 over the frames ``ok``."""
    ref = x[ok] if ok.any() else x
    y = np.maximum(x - float(np.percentile(ref, 5)), 0.0)
    top = float(np.max(y[ok])) if ok.any() else float(np.max(y))
    return y / top if top > 1e-12 else np.zeros_like(y)


# --------------------------------------------------------------------------------- boundaries

def _active_span(curve: np.ndarray, duration: float) -> tuple[float, float]:
    idx = np.flatnonzero(np.asarray(curve) >= SILENCE_LEVEL)
    if len(idx) == 0:
        return 0.0, float(duration)
    return idx[0] / RATE, min(float(duration), (idx[-1] + 1) / RATE)


def _frame_analysis(features: Features, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Frame features, the chroma recurrence matrix (embedded, mutual nearest neighbours) and the
    median frame length (s)."""
    x, chroma = _frame_features(features, grid)
    step = float(np.median(np.diff(grid)))
    m = max(1, int(round(SF_EMBED / step)))
    rec = _knn_recurrence(_embed(chroma, m), max(2, int(round(SF_KNN * len(x)))), exclude=m)
    return x, rec, step


def analyze_structure(features: Features, downbeats: np.ndarray, curve: np.ndarray,
                      duration: float, *, beats: np.ndarray | None = None,
                      threshold: float | None = None, min_gap: float | None = None,
                      snap: bool = True) -> Structure:
    """Section boundaries with what labelling and confidence need (see the module docstring).

    Parameters
    ----------
    features : Features
    downbeats : np.ndarray
        Downbeat times; a boundary within a frame of one moves onto it.
    curve : np.ndarray
        Normalized energy curve at :data:`RATE` values per second.
    duration : float
    beats : np.ndarray or None
        Beat times to use as the frames (beat-synchronous features) instead of the default
        :data:`FRAME_SECONDS` grid, which measured as well or better and does not depend on the
        beat tracker (``benchmarks/sections_eval.py``, frame-grid table).
    threshold : float or None
        Least prominence of a novelty peak (default :data:`PEAK_THRESHOLD`).
    min_gap : float or None
        Shortest section between novelty boundaries (s; default :data:`MIN_GAP`).
    snap : bool
        Move boundaries onto nearby downbeats.

    Returns
    -------
    Structure
    """
    duration = float(duration)
    threshold = PEAK_THRESHOLD if threshold is None else float(threshold)
    min_gap = MIN_GAP if min_gap is None else float(min_gap)
    db = np.asarray(downbeats if downbeats is not None else [], dtype=float)
    db = db[(db > 0) & (db < duration)]
    grid = _frame_grid(beats, duration)
    n = len(grid) - 1
    a0, a1 = _active_span(curve, duration)
    st = Structure(bounds=[0.0, duration], grid=grid, active=(a0, a1))
    novelty_bounds: dict[float, tuple[float, int]] = {}
    if n >= MIN_FRAMES:
        x, rec, step = _frame_analysis(features, grid)

        def frames(sec: float) -> int:
            return max(1, int(round(sec / step)))

        t0 = grid[:-1]
        ok = (t0 > a0 + min_gap) & (t0 < a1 - min_gap)
        xs = scipy.ndimage.uniform_filter1d(x, frames(FEATURE_SMOOTH), axis=0, mode="nearest")
        d = _sq_dist(xs)
        ssm = np.exp(-d / (float(np.median(d)) + 1e-12))
        curves = [_scaled(foote_novelty(ssm, frames(h)), ok) for h in KERNEL_HALF]
        sf = _scaled(structure_novelty(rec.astype(float), SF_SIGMA / step), ok)
        nov = (1.0 - SF_WEIGHT) * np.mean(curves, axis=0) + SF_WEIGHT * sf
        st.novelty, st.frames, st.recurrence = nov, x, rec
        if ok.any():
            peaks, props = scipy.signal.find_peaks(nov, distance=frames(min_gap), prominence=0.0)
            keep = ok[peaks] & (props["prominences"] >= threshold)
            for p, prom in zip(peaks[keep], props["prominences"][keep]):
                novelty_bounds[float(grid[p])] = (float(prom), int(p))

    # silent stretches become sections of their own; novelty boundaries near them give way
    silent = [(s0, s1) for s0, s1 in silent_spans(curve) if s1 - s0 >= 1.0]
    edges: list[float] = []
    for s0, s1 in silent:
        edges += [t for t in (s0, s1) if 0.5 < t < duration - 0.5]
    for t in list(novelty_bounds):
        if any(s0 - 1.0 <= t <= s1 + 1.0 for s0, s1 in silent):
            del novelty_bounds[t]
    frame_len = float(np.median(np.diff(grid))) if n > 1 else FRAME_SECONDS

    def snapped(t: float, radius: float) -> float:
        if snap and len(db):
            j = int(np.argmin(np.abs(db - t)))
            if abs(db[j] - t) <= radius:
                return float(db[j])
        return float(t)

    strengths, peak_frames = {}, {}
    for t, (prom, p) in novelty_bounds.items():
        key = round(snapped(t, 1.05 * frame_len), 6)
        strengths[key], peak_frames[key] = prom, p
    bounds = set(strengths) | {round(float(snapped(t, 0.4)), 6) for t in edges}
    bounds = sorted(bounds | {0.0})
    out = [0.0]
    for b in bounds[1:]:
        if b - out[-1] >= 1.0 and duration - b >= 1.0:
            out.append(b)
    out.append(duration)
    st.bounds = out
    st.strengths = {t: s for t, s in strengths.items() if t in out}
    st.peak_frames = {t: p for t, p in peak_frames.items() if t in out}
    if MIN_EFFECT > 0 and st.peak_frames:
        # a novelty boundary must part material more different than a cut through noise does
        weak = []
        for k in range(1, len(out) - 1):
            if out[k] in st.peak_frames:
                e = _effect_size(st, out[k], out[k - 1], out[k + 1])
                if not np.isnan(e) and e < MIN_EFFECT:
                    weak.append(out[k])
        if weak:
            st.bounds = [b for b in out if b not in weak]
            st.strengths = {t: v for t, v in st.strengths.items() if t not in weak}
            st.peak_frames = {t: v for t, v in st.peak_frames.items() if t not in weak}
    return st


def _effect_size(structure: Structure, t: float, lo: float, hi: float) -> float:
    """How far apart the frames just before and after ``t`` are, in units of their spread.

    The distance between the mean feature vectors of the frames in ``[max(t - w, lo), t)`` and
    ``[t, min(t + w, hi))`` (``w`` the smaller kernel half-width) over the root mean within-side
    variance: about 0.5 for a cut through stationary noise, 1-2 at a clear section change.
    """
    starts = structure.grid[:-1]
    w = min(KERNEL_HALF)
    a = structure.frames[(starts >= max(t - w, lo)) & (starts < t)]
    b = structure.frames[(starts >= t) & (starts < min(t + w, hi))]
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    spread = np.sqrt(0.5 * (a.var(axis=0).sum() + b.var(axis=0).sum()))
    return float(np.linalg.norm(a.mean(axis=0) - b.mean(axis=0)) / (spread + 1e-9))


def section_confidence(structure: Structure) -> float:
    """Confidence (0-1) in the section boundaries of :func:`analyze_structure`.

    Each boundary from the novelty scores by its effect size (:func:`_effect_size`: the features'
    change across it against their spread on either side) mapped linearly from
    :data:`CONFIDENCE_EFFECT` ``[0]`` (0) to ``[1]`` (1); the edge of a silent gap inside the
    music scores 1 (leading and trailing silence do not count). The mean over the boundaries is
    scaled down when a track got fewer sections than one per :data:`EXPECTED_SECTION` seconds of
    music. Without any boundary the confidence is the chance that the music holds no section
    change, ``exp(-music / EXPECTED_SECTION)``.

    Parameters
    ----------
    structure : Structure
        From :func:`analyze_structure`.

    Returns
    -------
    float

    So stationary noise or one repeated bar scores near 0, a song whose sections change in
    texture, level or harmony near 1, boundaries found only by repetition in between.
    """
    bounds = list(structure.bounds)
    a0, a1 = structure.active
    music = max(0.0, a1 - a0)
    lo_e, hi_e = CONFIDENCE_EFFECT
    scores = []
    for k in range(1, len(bounds) - 1):
        t = bounds[k]
        if t in structure.peak_frames and len(structure.frames):
            e = _effect_size(structure, t, bounds[k - 1], bounds[k + 1])
            scores.append(0.5 if np.isnan(e) else float(np.clip((e - lo_e) / (hi_e - lo_e), 0, 1)))
        elif a0 + 0.5 < t < a1 - 0.5:
            scores.append(1.0)  # a silent gap inside the music
        # the edges of leading / trailing silence say nothing about the music's structure
    if not scores:
        return float(np.exp(-music / EXPECTED_SECTION))
    coverage = min(1.0, (len(scores) + 1) / max(music / EXPECTED_SECTION, 1e-9))
    return float(np.clip(np.mean(scores) * coverage, 0.0, 1.0))



# ------------------------------------------------------------------------------------- labels

REPEAT_WINDOW = 4.0  # s: a repetition must run along the recurrence diagonal this long
CLUSTER_DISTANCE = 0.5  # average-linkage cut: sections closer than this share a label


def _diagonal_mean(rec: np.ndarray, w: int) -> np.ndarray:
    """Mean of ``rec`` over the next ``w`` cells of each diagonal (a path of length ``w``)."""
    if w <= 1:
        return rec.astype(float)
    n = len(rec)
    p = np.zeros((n + w, n + w))
    p[:n, :n] = rec
    out = np.zeros((n, n))
    for k in range(w):
        out += p[k:k + n, k:k + n]
    return out / w


def section_distances(frames: np.ndarray, rec: np.ndarray | None, spans: list[tuple[int, int]],
                      repeat_frames: int) -> np.ndarray:
    """Distance (0-2) between sections given as frame ranges ``[i0, i1)``.

    The smaller of the cosine distance between the sections' mean features (same texture, level
    and harmony) and one minus their repetition score (the share of frames of each that start a
    diagonal path of ``repeat_frames`` in the recurrence matrix into the other: the same melody
    or chords in sequence, even at another level or texture).
    """
    k = len(spans)
    means = np.array([frames[a:max(b, a + 1)].mean(axis=0) for a, b in spans])
    means /= np.linalg.norm(means, axis=1, keepdims=True) + 1e-9
    dist = np.clip(1.0 - means @ means.T, 0.0, 2.0)
    if rec is not None and len(rec):
        diag = _diagonal_mean(rec, repeat_frames)
        rep = np.zeros((k, k))
        for i, (a0, a1) in enumerate(spans):
            for j, (b0, b1) in enumerate(spans):
                if i != j and a1 > a0 and b1 > b0:
                    rep[i, j] = float(diag[a0:a1, b0:b1].max(axis=1).mean())
        rep = 0.5 * (rep + rep.T)
        dist = np.minimum(dist, 1.0 - rep)
    np.fill_diagonal(dist, 0.0)
    return dist


def _cluster(dist: np.ndarray, cut: float) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    if len(dist) < 2:
        return np.ones(len(dist), dtype=int)
    z = linkage(squareform(0.5 * (dist + dist.T), checks=False), method="average")
    return fcluster(z, t=cut, criterion="distance")


def label_sections(features: Features, bounds: list[float], curve: np.ndarray, *,
                   structure: Structure | None = None) -> list[SectionSpan]:
    """Label the spans between ``bounds`` (see the module docstring for the rules).

    Parameters
    ----------
    features : Features
    bounds : list of float
        Section boundaries (s), 0 and the duration included.
    curve : np.ndarray
        Normalized energy curve.
    structure : Structure or None
        What :func:`analyze_structure` returned for these bounds: its frames and recurrence are
        reused (otherwise they are computed on half-second frames).

    Returns
    -------
    list of SectionSpan
    """
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
    if len(live) <= 1:
        return spans

    if structure is None or len(structure.frames) == 0 \
            or abs(float(structure.grid[-1]) - float(bounds[-1])) > 1e-3:
        grid = _frame_grid(None, float(bounds[-1]))
        frames, rec, step = _frame_analysis(features, grid)
    else:
        grid, frames, rec = structure.grid, structure.frames, structure.recurrence
        step = float(np.median(np.diff(grid)))
    starts = grid[:-1]
    ranges = []
    for i in live:
        a = int(np.searchsorted(starts, bounds[i] - 1e-6))
        b = int(np.searchsorted(starts, bounds[i + 1] - 1e-6))
        a = min(a, len(starts) - 1)
        ranges.append((a, max(b, a + 1)))
    dist = section_distances(frames, rec, ranges, max(1, int(round(REPEAT_WINDOW / step))))
    clusters = _cluster(dist, CLUSTER_DISTANCE)
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
    _name(spans, cl, live, energies, bounds)
    return spans


def _name(spans: list[SectionSpan], cl: dict[int, int], live: np.ndarray, energies: np.ndarray,
          bounds: list[float]) -> None:
    """Section names from the clusters ``cl`` (section index -> cluster id), energy and place.

    See the module docstring ("Labels").
    """
    e_live = energies[live]
    e_med = float(np.median(e_live))
    e_max = float(np.max(e_live))
    durs = np.array([s.end - s.start for s in spans])
    groups: dict[int, list[int]] = {}
    for i in sorted(cl):
        groups.setdefault(cl[i], []).append(i)

    # chorus: the loud cluster, preferring repeated ones
    best_c, best_score = None, -1.0
    for c, members in groups.items():
        me = float(np.mean(energies[members]))
        score = me * (1.0 + 0.25 * min(len(members) - 1, 3))
        if me >= e_med and score > best_score:
            best_c, best_score = c, score
    chorus = set(groups.get(best_c, []))
    # a lone loud section is a chorus only if clearly louder than the median
    chorus = {i for i in chorus if energies[i] >= e_med + 0.25 * (e_max - e_med) or len(chorus) > 1}
    for i in chorus:
        spans[i].label = "chorus"

    first, last = int(live[0]), int(live[-1])
    # intro / outro: a quiet first / last section that is not most of the song
    total = float(bounds[-1] - bounds[0])
    edge_max = max(0.25 * total, 4.0)
    named = set(chorus)
    if first not in chorus and energies[first] < 0.75 * e_med and durs[first] <= edge_max:
        spans[first].label = "intro"
        named.add(first)
    if last not in chorus and last != first and energies[last] < 0.75 * e_med \
            and durs[last] <= edge_max:
        spans[last].label = "outro"
        named.add(last)

    order = {int(i): k for k, i in enumerate(live)}
    rest = {c: [i for i in m if i not in named] for c, m in groups.items()}
    rest = {c: m for c, m in rest.items() if m}
    if not rest:
        return

    def neighbours(i: int) -> list[int]:
        k = order[i]
        return [int(live[j]) for j in (k - 1, k + 1) if 0 <= j < len(live)]

    by_length = sorted(rest, key=lambda c: (-sum(durs[i] for i in rest[c]), min(rest[c])))
    for i in rest[by_length[0]]:
        spans[i].label = "verse"
    for c in by_length[1:]:
        members = rest[c]
        lead_in = all(
            order[i] + 1 < len(live) and int(live[order[i] + 1]) in chorus
            and durs[i] <= 0.6 * durs[int(live[order[i] + 1])] for i in members)
        dip = all(len(neighbours(i)) == 2
                  and energies[i] < 0.6 * min(energies[j] for j in neighbours(i)) for i in members)
        name = "breakdown" if dip else "pre-chorus" if lead_in else "bridge"
        for i in members:
            spans[i].label = name
    # drop: the loudest section right after a breakdown
    for k, i in enumerate(live[:-1]):
        if spans[i].label == "breakdown":
            j = int(live[k + 1])
            if energies[j] >= 0.95 * e_max:
                spans[j].label = "drop"
