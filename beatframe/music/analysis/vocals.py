"""Vocal activity (heuristic).

A singing voice is harmonic, sits between ~200 Hz and 4 kHz, carries formant energy around
1-3 kHz, and glides and wobbles in pitch (vibrato) where instruments mostly hold steady notes.
Per 100 ms we measure, in that band, the share of the track's energy, the tonality (one minus
spectral flatness) and the fine-frequency spectral flux of tonal peaks (pitch movement), and
threshold their combination adaptively. Solid on clear vocals, not a source separator.

Those measures are relative (each moment against the track's median), which fails on a voice
on its own: speech or a cappella singing is voiced most of the time, so the median moment is
voiced too. Where the clip has no steady beat (low pulse clarity: no band playing along), an
absolute measure takes over: a moment is voiced when the signal is periodic at a voice pitch
(normalized autocorrelation peak at 80-1000 Hz lags, from the power spectrum) and not far
below the clip's loud end.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft
import scipy.ndimage

from beatframe.music.analysis.onsets import Features

__all__ = ["vocal_activity", "vocal_spans", "voicing", "pulse_clarity"]


#: Pulse clarity (onset autocorrelation peak, 50-220 BPM) below which a clip counts as an
#: unaccompanied voice (fully at the lower value, not at all at the upper): speech and a
#: cappella singing sit near 0.1, music with a band at 0.25 and above.
PULSE_SOLO = (0.14, 0.2)
#: Normalized autocorrelation peak (80-1000 Hz lags) above which a frame counts as voiced.
VOICING_THRESHOLD = 0.55


def pulse_clarity(features: Features) -> float:
    """Strength of the steadiest beat periodicity: the peak of the onset envelope's normalized
    autocorrelation between 50 and 220 BPM (0 = no pulse, 1 = a metronome)."""
    from beatframe.music.analysis.tempo import autocorrelation

    fr = features.frame_rate
    hi = int(fr * 60.0 / 50.0)
    lo = max(1, int(fr * 60.0 / 220.0))
    if features.n_frames <= hi + 2 or float(features.env.max()) <= 0:
        return 0.0
    ac = autocorrelation(features.env, hi)
    return float(max(0.0, ac[lo:].max()))


@lru_cache(maxsize=4)
def _lag_window(n_fft: int) -> np.ndarray:
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    wac = np.correlate(w, w, "full")[n_fft - 1:]
    return wac / wac[0]


def voicing(mag: np.ndarray, sr: int, *, fmin: float = 80.0, fmax: float = 1000.0) -> np.ndarray:
    """Per-frame periodicity in [0, 1]: the highest normalized autocorrelation at lags of
    ``1/fmax`` to ``1/fmin`` s, from the power spectrum (60 Hz - 4 kHz; Wiener-Khinchin),
    corrected for the analysis window's own taper. Near 1 for a sung or spoken vowel, low for
    noise and silence."""
    n_fft = 2 * (mag.shape[0] - 1)
    freqs = np.arange(mag.shape[0]) * sr / n_fft
    keep = (freqs >= 60.0) & (freqs <= 4000.0)
    P = np.zeros(mag.shape, dtype=np.float32)
    P[keep] = mag[keep].astype(np.float32) ** 2
    lo, hi = max(1, int(sr / fmax)), min(n_fft // 2, int(np.ceil(sr / fmin)))
    ac = scipy.fft.irfft(P, n_fft, axis=0, workers=-1)[: hi + 1]
    r = ac[lo:] / (ac[:1] + 1e-12) / _lag_window(n_fft)[lo:hi + 1, None]
    return np.clip(r.max(axis=0), 0.0, 1.0)


def vocal_activity(features: Features, *, rate: float = 10.0) -> tuple[np.ndarray, float]:
    """Per-block vocal likelihood in [0, 1] and the block rate (blocks per second)."""
    mag = features.mag[:, ::2]  # 23 ms steps are plenty for 100 ms blocks
    frame_rate = features.frame_rate / 2.0
    sr = features.sr
    n_fft = 2 * (mag.shape[0] - 1)
    freqs = np.arange(mag.shape[0]) * sr / n_fft
    band = (freqs >= 250) & (freqs <= 4000)
    formant = (freqs >= 800) & (freqs <= 3200)
    X = mag[band] + np.float32(1e-9)
    total = mag.sum(axis=0, dtype=np.float64) + 1e-9
    band_share = X.sum(axis=0) / total
    formant_share = mag[formant].sum(axis=0) / (X.sum(axis=0))
    logX = np.log(X)
    flatness = np.exp(logX.mean(axis=0)) / X.mean(axis=0)
    tonal = 1.0 - np.clip(flatness, 0, 1)
    # pitch movement: flux of the log spectrum after removing the spectral envelope
    env = scipy.ndimage.uniform_filter1d(logX, size=9, axis=0)
    fine = np.maximum(logX - env, 0)  # harmonic peaks
    flux = np.zeros(X.shape[1])
    flux[1:] = np.abs(np.diff(fine, axis=1)).mean(axis=0)
    loud = 20 * np.log10(total / total.max())

    hop = max(1, int(round(frame_rate / rate)))
    nb = X.shape[1] // hop
    if nb == 0:
        return np.zeros(0), rate

    def block(x):
        return x[: nb * hop].reshape(nb, hop).mean(axis=1)

    f_share, f_form, f_ton, f_flux, f_loud = map(block, (band_share, formant_share, tonal, flux, loud))

    def rz(x):
        med = np.median(x)
        mad = np.median(np.abs(x - med)) + 1e-9
        return np.clip((x - med) / (1.4826 * mad), -3, 3)

    score = 0.8 * rz(f_form) + 0.6 * rz(f_share) + 0.6 * rz(f_flux) + 0.4 * rz(f_ton)
    score[f_loud < -45] = -5.0
    prob = 1.0 / (1.0 + np.exp(-score))

    # Absolute measures, for a voice on its own (speech, a cappella): the relative score
    # above ranks each moment against the track's median, so a clip that is nearly all voice
    # looks "average" throughout. Without a steady beat (no band playing along), a moment is
    # voiced when it is periodic at a voice pitch (normalized autocorrelation peak, 80-1000 Hz)
    # and not far below the clip's loud end.
    solo = float(np.clip((PULSE_SOLO[1] - pulse_clarity(features)) /
                         (PULSE_SOLO[1] - PULSE_SOLO[0]), 0.0, 1.0))
    if solo > 0:
        per = voicing(mag, sr)
        bl = 10.0 * np.log10(X.sum(axis=0) ** 2 + 1e-18)
        bl = bl - np.percentile(bl, 95)
        f_per, f_bl = block(per), block(bl)
        a_score = (f_per - VOICING_THRESHOLD) / 0.1 + np.minimum(0.0, f_bl + 20.0) / 4.0
        a_score[f_loud < -45] = -5.0
        a_prob = 1.0 / (1.0 + np.exp(-a_score))
        prob = solo * a_prob + (1.0 - solo) * prob
    return prob, frame_rate / hop


def vocal_spans(features: Features, *, threshold: float = 0.7, min_seconds: float = 0.8,
                merge_gap: float = 0.5) -> list[tuple[float, float]]:
    """Spans (start, end) of likely singing, merged across short gaps."""
    prob, rate = vocal_activity(features)
    if len(prob) == 0:
        return []
    sm = scipy.ndimage.median_filter(prob, size=max(1, int(0.5 * rate)) | 1, mode="nearest")
    on = sm > threshold
    spans = []
    d = np.diff(np.concatenate([[0], on.astype(int), [0]]))
    for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)):
        spans.append([a / rate, b / rate])
    merged: list[list[float]] = []
    for s in spans:
        if merged and s[0] - merged[-1][1] <= merge_gap:
            merged[-1][1] = s[1]
        else:
            merged.append(s)
    dur = features.duration
    return [(float(a), float(min(b, dur))) for a, b in merged if b - a >= min_seconds and a < dur]
