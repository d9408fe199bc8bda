"""Tempo estimation and beat tracking.

Several tempo hypotheses are taken from the autocorrelation of the onset envelope (its strongest
peaks and their octave relatives). For each, a second-order dynamic-programming beat tracker
(:func:`track_beats`: the state is a beat and the interval before it; changing the interval
from one beat to the next is penalized, so tempo may drift smoothly but beats are not inserted
or dropped) finds the best beat sequence; each hypothesis is then scored by how strongly its
beats land on onsets, how periodic the envelope is at that period, and a log-Gaussian tempo
prior. The winner is re-tracked at full frame rate against a local tempo curve (windowed
autocorrelation, ~8 s), its beat times refined to the local onset peak (sub-frame, parabolic)
and corrected for the onset detector's latency. A second pass (:func:`remove_inserted_beats`)
takes out a beat squeezed into a stretch where the tempo wavers, when one fewer, re-spaced
beat explains the onsets at least as well with smoother tempo. On clips shorter than ~8 s the
metrical-level checks rest on a handful of beats and are trusted less (the tempo prior then
picks between octave levels that explain the onsets comparably).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numba
import scipy.ndimage
import scipy.signal

from beatframe.music.analysis.onsets import Features

__all__ = ["BeatResult", "autocorrelation", "tempo_candidates", "track_beats", "estimate_beats", "prior_weight",
           "periodicity",
           "local_tempo_curve", "remove_inserted_beats"]

#: Centre of the log-Gaussian tempo prior (BPM) and its width in octaves.
PRIOR_BPM = 110.0
PRIOR_OCTAVES = 0.9
#: Onset-envelope latency: beats are reported this many seconds before the flux peak.
LATENCY = -0.010
MIN_BPM, MAX_BPM = 50.0, 220.0
#: Beat DP weights: interval change from one beat to the next, and deviation from the reference.
LAMBDA = 40.0
MU = 0.5
#: Beat observation: the envelope is divided by this percentile of its positive values, then
#: log-compressed with this gain.
OBS_PERCENTILE = 95.0
OBS_GAIN = 1.0
#: Local tempo reference: window (s, 0 = off) and largest deviation from the global tempo.
LOCAL_WINDOW = 8.0
LOCAL_DEV = 0.3
#: Largest interval deviation while scoring a tempo hypothesis (each must keep its own tempo:
#: wider, a hypothesis drifts to its neighbour and is scored on the neighbour's beats).
HYP_RANGE = 0.15
#: A hypothesis with a hypothesis at 3/2 its tempo scoring at least ``TERNARY_SUPPORT`` of its
#: own score is multiplied by ``TERNARY_PENALTY``.
TERNARY_SUPPORT = 0.5
TERNARY_PENALTY = 0.5
#: Clip durations (s) over which the metrical-level checks and the periodicity salience go from
#: untrusted (shorter: the tempo prior and onset alignment decide) to fully trusted.
SHORT_CLIP = (3.0, 8.0)
#: Inserted-beat repair (:func:`remove_inserted_beats`): an interval shorter than this share of
#: its neighbours' median triggers it; weight of the tempo-jump cost against onset strength.
INSERT_RATIO = 0.8
INSERT_LAMBDA = 40.0


@dataclass
class BeatResult:
    """Beats and tempo of a track.

    Attributes
    ----------
    bpm : float
        Tempo (60 / median inter-beat interval).
    beats : np.ndarray
        Beat times in seconds, strictly increasing.
    candidates : list of dict
        Every tempo hypothesis with its scores (for diagnostics and benchmarks).
    periodicity : float
        :func:`periodicity` of the onset envelope at the final tempo (0-1): near 0 where there
        is no steady pulse to follow.
    """

    bpm: float
    beats: np.ndarray
    candidates: list[dict] = field(default_factory=list)
    periodicity: float = 0.0


def autocorrelation(env: np.ndarray, max_lag: int) -> np.ndarray:
    """Normalized autocorrelation of ``env`` (mean removed) for lags ``0..max_lag``."""
    x = np.asarray(env, dtype=np.float64)
    x = x - x.mean()
    n = len(x)
    nfft = 1 << int(np.ceil(np.log2(2 * n + 1)))
    spec = np.fft.rfft(x, nfft)
    ac = np.fft.irfft(spec * np.conj(spec), nfft)[: max_lag + 1]
    if ac[0] <= 0:
        return np.zeros(max_lag + 1)
    return ac / ac[0]


def prior_weight(bpm: np.ndarray | float, *, center: float | None = None,
                 octaves: float | None = None):
    """The log-Gaussian tempo prior at ``bpm`` (1 at its centre; defaults ``PRIOR_BPM``,
    ``PRIOR_OCTAVES``)."""
    center = PRIOR_BPM if center is None else center
    octaves = PRIOR_OCTAVES if octaves is None else octaves
    return np.exp(-0.5 * (np.log2(np.asarray(bpm, dtype=float) / center) / octaves) ** 2)


def tempo_candidates(env: np.ndarray, frame_rate: float, *, n_peaks: int = 4,
                     min_bpm: float = MIN_BPM, max_bpm: float = MAX_BPM,
                     unbias: float = 0.0) -> list[tuple[float, float]]:
    """Tempo hypotheses (bpm, periodicity salience) from the onset autocorrelation.

    The ``n_peaks`` strongest autocorrelation peaks between 30 and 300 BPM are taken, together
    with their halves, doubles, and 2/3 and 3/2 multiples that fall within
    ``[min_bpm, max_bpm]``; near-duplicates (within 3 %) are merged. ``unbias`` (0-1) blends
    in the unbiased autocorrelation (each lag divided by its overlap), for short clips.
    """
    max_lag = int(frame_rate * 60.0 / 30.0)
    ac = autocorrelation(env, min(max_lag, len(env) - 1))
    if unbias > 0:
        # each lag's sum has only n - lag terms: on a short clip, where a beat period is a
        # sizable share of the clip, slow periods would otherwise look weakly periodic
        n_env = len(env)
        ac = ac * (n_env / np.maximum(n_env - np.arange(len(ac)), 0.25 * n_env)) ** unbias
    if len(ac) < 4:
        return [(120.0, 0.0)]
    lag_min = max(2, int(frame_rate * 60.0 / 300.0))
    peaks, _ = scipy.signal.find_peaks(ac[lag_min:])
    peaks = peaks + lag_min
    if len(peaks) == 0:
        return [(120.0, 0.0)]
    peaks = peaks[np.argsort(-ac[peaks])][:n_peaks]

    def refine(lag: int) -> float:
        if 0 < lag < len(ac) - 1:
            a, b, c = ac[lag - 1], ac[lag], ac[lag + 1]
            den = a - 2 * b + c
            if den < 0:
                return lag + 0.5 * (a - c) / den
        return float(lag)

    base = [60.0 * frame_rate / refine(int(p)) for p in peaks]
    out: list[float] = []
    for b in base:
        for mult in (1.0, 2.0, 0.5, 1.5, 2.0 / 3.0, 3.0, 1.0 / 3.0):
            c = b * mult
            if min_bpm <= c <= max_bpm and all(abs(c / o - 1) > 0.03 for o in out):
                out.append(c)
    if not out:
        out = [float(np.clip(base[0], min_bpm, max_bpm))]
    return [(c, periodicity(ac, frame_rate, c)) for c in out]


def periodicity(ac: np.ndarray, frame_rate: float, bpm: float) -> float:
    """How periodic the onset envelope is at ``bpm``: its normalized autocorrelation ``ac`` at
    the beat period (the best of the three nearest lags), 0-1."""
    i = int(round(frame_rate * 60.0 / max(bpm, 1e-9)))
    if i >= len(ac) - 1:
        return 0.0
    return float(max(0.0, ac[max(0, i - 1): i + 2].max()))


@numba.njit(cache=True, nogil=True)
def _beat_dp(obs, periods, ref_log, lam, mu):  # pragma: no cover - compiled
    """Second-order beat DP. State (t, k): a beat at frame ``t`` whose previous beat was
    ``periods[k]`` frames earlier. The interval's log-ratio to the reference period at ``t``
    costs ``mu * r**2``; a change of that ratio from one beat to the next ``lam * dr**2``.
    Returns the cumulative scores and back-pointers (the period index of the previous interval,
    -1 where the sequence starts)."""
    n = obs.shape[0]
    K = periods.shape[0]
    S = np.full((n, K), -np.inf)
    back = np.full((n, K), -1, dtype=np.int32)
    logp = np.log(periods.astype(np.float64))
    for t in range(n):
        lr = ref_log[t]
        for k in range(K):
            u = t - periods[k]
            if u < 0:
                continue
            rk = logp[k] - lr
            lu = ref_log[u]
            best = obs[u]
            bj = -1
            for j in range(K):
                d = rk - (logp[j] - lu)
                v = S[u, j] - lam * d * d
                if v > best:
                    best = v
                    bj = j
            S[t, k] = best + obs[t] - mu * rk * rk
            back[t, k] = bj
    return S, back


def beat_observation(env: np.ndarray, frame_rate: float) -> np.ndarray:
    """Onset envelope as the beat tracker sees it: scaled so a typical strong onset is ~1,
    compressed (a few very loud syncopated hits must not outweigh a steady pulse) and
    lightly smoothed (~12 ms) so small timing jitter costs little."""
    e = np.asarray(env, dtype=np.float64)
    pos = e[e > 0]
    if pos.size == 0:
        return np.zeros_like(e)
    scale = float(np.percentile(pos, OBS_PERCENTILE)) + 1e-12
    o = np.log1p(e / scale * OBS_GAIN) / np.log1p(OBS_GAIN)
    sigma = 0.012 * frame_rate
    if sigma >= 0.5:
        o = scipy.ndimage.gaussian_filter1d(o, sigma, mode="constant")
    return o


def track_beats(env: np.ndarray, frame_rate: float, bpm: float | np.ndarray, *,
                rel_range: float = 0.3, lam: float | None = None, mu: float | None = None,
                obs: np.ndarray | None = None, trim: bool = True) -> np.ndarray:
    """Beat frames from a second-order dynamic program that follows local tempo.

    Every beat interval may differ from the reference period ``60 * frame_rate / bpm`` (a
    constant, or one value per frame: a local tempo curve) by up to ``rel_range``; a change of
    interval from one beat to the next costs ``lam * log(ratio)**2`` and a deviation from the
    reference ``mu * log(ratio)**2``. Tempo can thus drift smoothly over many beats but not jump
    from one beat to the next, which is what inserting or dropping a beat would take.

    Parameters
    ----------
    env : np.ndarray
        Onset strength envelope (>= 0).
    frame_rate : float
        Frames per second of ``env``.
    bpm : float or np.ndarray
        Reference tempo (scalar, or one value per frame).
    rel_range : float
        Largest relative deviation of an interval from the reference period.
    lam, mu : float or None
        Interval-change and reference-deviation weights (defaults ``LAMBDA``, ``MU``).
    obs : np.ndarray or None
        Precomputed :func:`beat_observation` of ``env``.
    trim : bool
        Drop leading/trailing beats on weak onsets (below 10 % of the mean beat strength).

    Returns
    -------
    np.ndarray
        Beat frame indices, increasing.
    """
    env = np.asarray(env, dtype=np.float64)
    n = len(env)
    if n < 4 or float(np.max(env)) <= 0:
        return np.zeros(0, dtype=int)
    lam = LAMBDA if lam is None else float(lam)
    mu = MU if mu is None else float(mu)
    o = beat_observation(env, frame_rate) if obs is None else np.asarray(obs, dtype=np.float64)
    ref = 60.0 * frame_rate / np.broadcast_to(np.asarray(bpm, dtype=np.float64), (n,))
    pmin = max(2, int(np.floor(float(ref.min()) / (1.0 + rel_range))))
    pmax = max(pmin + 1, int(np.ceil(float(ref.max()) * (1.0 + rel_range))))
    pmax = min(pmax, max(pmin + 1, n - 1))
    periods = np.arange(pmin, pmax + 1, dtype=np.int64)
    S, back = _beat_dp(o, periods, np.log(ref), lam, mu)
    # the last beat: the best state within the last (longest) period
    tail = S[max(0, n - pmax):]
    if not np.isfinite(tail).any():
        return np.zeros(0, dtype=int)
    t, k = np.unravel_index(int(np.argmax(tail)), tail.shape)
    t = int(t) + max(0, n - pmax)
    frames = [t]
    k = int(k)
    while True:
        u = t - int(periods[k])
        frames.append(u)
        j = int(back[t, k])
        if j < 0:
            break
        t, k = u, j
    frames = np.asarray(frames[::-1], dtype=int)
    if trim and len(frames) > 2:
        strength = o[frames]
        thr = 0.1 * float(np.mean(strength))
        ok = np.flatnonzero(strength >= thr)
        if len(ok):
            frames = frames[ok[0]: ok[-1] + 1]
    return frames


def local_tempo_curve(env: np.ndarray, frame_rate: float, bpm: float, *, window: float = 8.0,
                      max_dev: float = 0.25) -> np.ndarray:
    """Per-frame tempo near ``bpm`` (within ``max_dev``) from a windowed autocorrelation.

    Returns an array with one BPM per onset frame, median-smoothed over ~4 s.
    """
    import librosa

    win = int(window * frame_rate)
    hop = max(1, int(frame_rate * 0.5))
    n = len(env)
    if n < win // 2:
        return np.full(n, bpm)
    lag0 = frame_rate * 60.0 / bpm
    lo = max(2, int(np.floor(lag0 / (1 + max_dev))))
    hi = min(win - 1, int(np.ceil(lag0 / (1 - max_dev))))
    centres = np.arange(0, n, hop)
    local = np.empty(len(centres))
    w = np.hanning(win)
    envp = np.pad(env, (win // 2, win // 2))
    segs = np.stack([envp[c:c + win] * w for c in centres])
    segs = segs - segs.mean(axis=1, keepdims=True)
    nfft = 1 << int(np.ceil(np.log2(2 * win)))
    spec = np.fft.rfft(segs, nfft, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, nfft, axis=1)[:, : hi + 2]
    for k in range(len(centres)):
        seg = ac[k, lo:hi + 1]
        j = int(np.argmax(seg)) + lo
        if 0 < j < ac.shape[1] - 1:
            a, b, c = ac[k, j - 1], ac[k, j], ac[k, j + 1]
            den = a - 2 * b + c
            jj = j + (0.5 * (a - c) / den if den < 0 else 0.0)
        else:
            jj = float(j)
        local[k] = 60.0 * frame_rate / jj
    local = scipy.ndimage.median_filter(local, size=max(1, int(4.0 / 0.5)) | 1, mode="nearest")
    del librosa
    return np.interp(np.arange(n), centres, local)


def _peak_values(env: np.ndarray, frames: np.ndarray, radius: int = 1) -> np.ndarray:
    if len(frames) == 0:
        return np.zeros(0)
    mx = scipy.ndimage.maximum_filter1d(env, size=2 * radius + 1, mode="constant")
    return mx[np.clip(frames, 0, len(env) - 1)]


def _refine(env: np.ndarray, frames: np.ndarray, radius: int) -> np.ndarray:
    """Move each beat to the strongest onset within ``radius`` frames (parabolic sub-frame)."""
    frames = np.asarray(frames, dtype=int)
    n = len(env)
    if len(frames) == 0:
        return np.zeros(0)
    idx = frames[:, None] + np.arange(-radius, radius + 1)[None, :]
    inside = (idx >= 0) & (idx < n)
    seg = np.where(inside, env[np.clip(idx, 0, n - 1)], -np.inf)
    k = np.argmax(seg, axis=1)
    peak = seg[np.arange(len(frames)), k]
    j = np.where(peak > 0, idx[np.arange(len(frames)), k], frames)
    pos = j.astype(float)
    ok = (j > 0) & (j < n - 1)
    jj = j[ok]
    a, b, c = env[jj - 1], env[jj], env[jj + 1]
    den = a - 2 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(den < 0, np.clip(0.5 * (a - c) / den, -0.5, 0.5), 0.0)
    pos[ok] = jj + shift
    return pos


def remove_inserted_beats(times: np.ndarray, env: np.ndarray, frame_rate: float, *,
                          latency: float = LATENCY, ratio: float = INSERT_RATIO,
                          lam: float = INSERT_LAMBDA, max_span: int = 8,
                          max_passes: int = 8) -> np.ndarray:
    """Second pass against inserted beats.

    Where tempo wavers (rubato, a fill, a held chord), the tracker may squeeze one beat too
    many into a stretch, which shows as an inter-beat interval much shorter (< ``ratio``)
    than the median of its neighbours (+-8 beats). For every window of beats around such an
    interval (anchors up to ``max_span`` beats apart, within ~6 beats of it), the alternative
    with one beat fewer, evenly re-spaced between the anchors (each beat then refined to the
    nearest onset peak), is scored against the original by the onset strength at the inner
    beats (above the envelope's median level, so a beat on nothing earns nothing) minus
    ``lam`` times the tempo jumps (squared log-ratios of consecutive intervals, over the
    window and 3 beats either side). The best improving alternative is kept; repeated until
    nothing improves.
    """
    times = np.asarray(times, dtype=float)
    if len(times) < 6:
        return times
    obs = beat_observation(env, frame_rate)
    radius = max(1, int(round(0.035 * frame_rate)))
    pv = scipy.ndimage.maximum_filter1d(obs, size=2 * radius + 1, mode="constant")
    base = float(np.median(pv))
    env64 = np.asarray(env, dtype=np.float64)

    for _ in range(max_passes):
        ibi = np.diff(times)
        # each interval against the median of its neighbours (+-8 intervals, itself excluded)
        nb = np.lib.stride_tricks.sliding_window_view(np.pad(ibi, 8, constant_values=np.nan),
                                                      17).copy()
        nb[:, 8] = np.nan
        enough = np.sum(~np.isnan(nb), axis=1) >= 4
        med = np.full(len(ibi), np.inf)
        med[enough] = np.nanmedian(nb[enough], axis=1)
        flagged = [(ibi[i] / med[i], int(i)) for i in np.flatnonzero(ibi < ratio * med)]
        if not flagged:
            break
        # the best alternative around each flagged interval; then every improving one whose
        # scoring context overlaps no better one's is applied (right to left, so the indices of
        # those still to apply stay valid)
        found = []
        for _, i in sorted(flagged):
            gain, a, b = _best_removal(times, i, env64, pv, base, frame_rate, latency, radius,
                                       lam, max_span)
            if gain > 0:
                found.append((gain, a, b, max(0, a - 3), min(len(times), b + 4)))
        if not found:
            break
        chosen: list[tuple] = []
        for cand in sorted(found, key=lambda c: -c[0]):
            if all(cand[4] <= c[3] or cand[3] >= c[4] for c in chosen):
                chosen.append(cand)
        for _, a, b, _, _ in sorted(chosen, key=lambda c: -c[1]):
            inner = _respaced(times, a, b, env64, frame_rate, latency, radius)
            times = np.r_[times[:a + 1], inner, times[b:]]
    return times


@numba.njit(cache=True, nogil=True)
def _refine_one(env, f, radius):  # pragma: no cover - compiled
    """:func:`_refine` of one frame."""
    n = env.shape[0]
    lo, hi = max(0, f - radius), min(n, f + radius + 1)
    j = f
    if hi > lo:
        k = lo
        for q in range(lo + 1, hi):
            if env[q] > env[k]:
                k = q
        if env[k] > 0:
            j = k
    pos = float(j)
    if 0 < j < n - 1:
        a, b, c = env[j - 1], env[j], env[j + 1]
        den = a - 2 * b + c
        if den < 0:
            pos = j + min(0.5, max(-0.5, 0.5 * (a - c) / den))
    return pos


@numba.njit(cache=True, nogil=True)
def _respaced(times, a, b, env, frame_rate, latency, radius):  # pragma: no cover - compiled
    """The ``b - a - 2`` beats evenly re-spaced between beats ``a`` and ``b``, each refined to
    the nearest onset peak."""
    m = b - a
    n = env.shape[0]
    out = np.empty(max(0, m - 2))
    for k in range(1, m - 1):
        t = times[a] + (times[b] - times[a]) * k / (m - 1)
        f = min(max(int(np.rint((t + latency) * frame_rate)), 0), n - 1)
        out[k - 1] = _refine_one(env, f, radius) / frame_rate - latency
    return out


@numba.njit(cache=True, nogil=True)
def _strength(ts, pv, base, frame_rate, latency):  # pragma: no cover - compiled
    n = pv.shape[0]
    total = 0.0
    for t in ts:
        total += pv[min(max(int(np.rint((t + latency) * frame_rate)), 0), n - 1)] - base
    return total


@numba.njit(cache=True, nogil=True)
def _jumps(ts):  # pragma: no cover - compiled
    """Sum of squared log-ratios of consecutive inter-beat intervals (tempo jumps)."""
    if ts.shape[0] < 3:
        return 0.0
    total = 0.0
    for k in range(ts.shape[0] - 2):
        i1, i2 = ts[k + 1] - ts[k], ts[k + 2] - ts[k + 1]
        if i1 <= 0 or i2 <= 0:
            return np.inf
        d = np.log(i2) - np.log(i1)
        total += d * d
    return total


@numba.njit(cache=True, nogil=True)
def _best_removal(times, i, env, pv, base, frame_rate, latency, radius, lam,
                  max_span):  # pragma: no cover - compiled
    """(gain, a, b) of the best one-beat-fewer alternative around interval ``i`` (gain 0: none
    improves); see :func:`remove_inserted_beats`."""
    best, ba, bb = 0.0, -1, -1
    n = times.shape[0]
    for a in range(max(0, i - 6), i + 1):
        for b in range(i + 1, min(n, i + 8)):
            m = b - a
            if m < 2 or m > max_span:
                continue
            lo, hi = max(0, a - 3), min(n, b + 4)
            inner = _respaced(times, a, b, env, frame_rate, latency, radius)
            alt = np.concatenate((times[lo:a + 1], inner, times[b:hi]))
            s_o = _strength(times[a + 1:b], pv, base, frame_rate, latency) - lam * _jumps(times[lo:hi])
            s_a = _strength(inner, pv, base, frame_rate, latency) - lam * _jumps(alt)
            if s_a - s_o > best:
                best, ba, bb = s_a - s_o, a, b
    return best, ba, bb


def estimate_beats(features: Features, *, tempo_change_tolerant: bool = False,
                   prior_bpm: float | None = None, prior_octaves: float | None = None,
                   start_bpm: float | None = None, bpm: float | None = None,
                   latency: float = LATENCY) -> BeatResult:
    """Estimate tempo and beat times.

    Parameters
    ----------
    features : Features
        From :func:`beatframe.music.analysis.onsets.compute_features`.
    tempo_change_tolerant : bool
        Let the beat tracker follow a drifting tempo: the chosen tempo is replaced by a local
        tempo curve (windowed autocorrelation near it) and the DP is looser.
    prior_bpm, prior_octaves : float or None
        Centre and width (in octaves) of the log-Gaussian tempo prior (defaults ``PRIOR_BPM``,
        ``PRIOR_OCTAVES``, read at call time).
    start_bpm : float or None
        If given, only hypotheses within 10 % of it (and the prior) are considered.
    bpm : float or None
        A known tempo (a user's correction): no hypotheses are weighed, the beats are tracked
        at this tempo (following the local tempo curve around it) and it is the reported tempo.
    latency : float
        Seconds subtracted from refined beat times.

    Returns
    -------
    BeatResult
    """
    env = features.env
    fr = features.frame_rate
    if env.size < 4 or float(env.max()) <= 0:
        return BeatResult(bpm=0.0, beats=np.zeros(0))

    known = bpm
    rel = float(np.clip((features.duration - SHORT_CLIP[0]) / (SHORT_CLIP[1] - SHORT_CLIP[0]),
                        0.0, 1.0))
    cands = [(float(known), 0.0)] if known else tempo_candidates(env, fr, unbias=1.0 - rel)
    if start_bpm:
        near = [c for c in cands if abs(c[0] / start_bpm - 1) < 0.1]
        cands = near or [(float(start_bpm), 0.0)]
    # Score hypotheses on a 2x max-pooled envelope (4x cheaper DP), track the winner at full rate.
    n2 = len(env) // 2
    env2 = np.maximum(env[0:2 * n2:2], env[1:2 * n2:2]) if n2 >= 4 else env
    fr2 = fr / 2.0 if n2 >= 4 else fr
    envn2 = env2 / (float(np.std(env2)) + 1e-9)
    obs2 = beat_observation(env2, fr2)
    scored = []
    for bpm, sal in cands:
        frames = track_beats(env2, fr2, bpm, obs=obs2, trim=False, rel_range=HYP_RANGE)
        if len(frames) < 2:
            continue
        on = _peak_values(envn2, frames)
        align = float(np.mean(on))
        # Metrical-level checks. Too slow: the points halfway between beats are as strong as
        # the beats (they are beats too). Too fast: every other beat is weak (8th notes).
        mids = ((frames[:-1] + frames[1:]) // 2).astype(int)
        mid_ratio = float(np.mean(_peak_values(envn2, mids))) / max(align, 1e-9)
        ev, od = float(np.mean(on[0::2])), float(np.mean(on[1::2])) if len(on) > 1 else align
        alt = min(ev, od) / max(ev, od, 1e-9)
        # On a short clip these statistics rest on a handful of beats (and the autocorrelation
        # at long lags on little overlap): they are trusted only as far as ``rel``, and the
        # metrical prior decides between levels that explain the onsets comparably.
        # (only while the doubled tempo is itself a candidate: beyond it, strong halfway points
        # are the eighth notes of a fast beat, not a sign the beat is too slow)
        slow = 1.0 - (0.8 * rel * float(np.clip((mid_ratio - 0.75) / 0.2, 0.0, 1.0))
                      if 2.0 * bpm <= MAX_BPM else 0.0)
        fast = 1.0 - rel * (1.0 - float(np.clip(alt / 0.55, 0.3, 1.0)))
        prior = float(prior_weight(bpm, center=prior_bpm, octaves=prior_octaves))
        score = align * max(sal, 1e-3) ** 0.5 * prior * slow * fast
        scored.append(dict(bpm=float(bpm), salience=sal, align=align, mid_ratio=mid_ratio,
                           alternation=alt, prior=prior, score=score, frames=frames))
    if not scored:
        return BeatResult(bpm=0.0, beats=np.zeros(0))
    # 3:2 confusions. A level at 2/3 of a strong faster level is not a metrical level of its
    # own (two of three subdivisions: a triplet or 6/8 grouping, or a syncopated figure); the
    # faster level and its binary relatives are.
    raw = [d["score"] for d in scored]
    for d in scored:
        for e, re_ in zip(scored, raw):
            if abs(e["bpm"] / (1.5 * d["bpm"]) - 1) < 0.03 and re_ >= TERNARY_SUPPORT * d["score"]:
                d["score"] *= TERNARY_PENALTY
                d["ternary_of"] = e["bpm"]
                break
    best = max(scored, key=lambda d: d["score"])
    bpm = best["bpm"]
    obs = beat_observation(env, fr)
    ref = bpm
    if LOCAL_WINDOW > 0:
        ref = local_tempo_curve(env, fr, bpm, window=LOCAL_WINDOW, max_dev=LOCAL_DEV)
    if tempo_change_tolerant:
        frames = track_beats(env, fr, ref, obs=obs, rel_range=0.3, mu=0.5, trim=False)
    else:
        frames = track_beats(env, fr, ref, obs=obs, trim=False)

    # Trim beats the DP extrapolated before the music starts or after it ends: keep the span
    # from half a beat before the first clear onset to half a beat after the last.
    strong = np.flatnonzero(env > 0.1 * float(np.percentile(env, 99.5)))
    if len(strong) and len(frames):
        half = 0.5 * 60.0 * fr / max(bpm, 1.0)
        frames = frames[(frames >= strong[0] - half) & (frames <= strong[-1] + half)]
    radius = max(1, int(round(0.035 * fr)))
    pos = _refine(env, frames, radius)
    times = pos / fr - latency
    times = times[(times >= 0) & (times <= features.duration)]
    # strictly increasing, at least a 1/3 beat apart
    if len(times) > 1:
        keep = [0]
        min_gap = 0.33 * 60.0 / max(bpm, 1.0)
        for i in range(1, len(times)):
            if times[i] - times[keep[-1]] >= min_gap:
                keep.append(i)
        times = times[keep]
    times = remove_inserted_beats(times, env, fr, latency=latency)
    if known:
        bpm = float(known)
    elif len(times) >= 2:
        bpm = float(60.0 / np.median(np.diff(times)))
    for d in scored:
        d.pop("frames", None)
    ac = autocorrelation(env, min(int(fr * 60.0 / MIN_BPM) + 2, len(env) - 1))
    return BeatResult(bpm=float(bpm), beats=times, candidates=scored,
                      periodicity=periodicity(ac, fr, bpm))
