"""Spectral features shared by the analysis stages, and onset detection.

One short-time Fourier transform (1024-point, hop 256 at 22.05 kHz: 11.6 ms frames) feeds a
64-band log-mel spectrogram, from which come

* ``env``: a SuperFlux-style onset strength envelope (positive log-mel flux after a 3-band
  maximum filter), with its slowly varying part removed so sustained, harmonic changes count
  less than percussive attacks;
* ``env_low``: the same below ~180 Hz (kick drum and bass: the downbeat cue);
* ``env_high``: the same above 1.5 kHz (hi-hats, snare and clap: the backbeat);
* MFCCs for the structure analysis.

A second, coarser transform (4096-point, hop 2048) gives a chroma matrix with fine frequency
resolution. Everything is vectorized; a 3-minute track takes ~0.1 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft
import scipy.ndimage

__all__ = ["Features", "compute_features", "detect_onsets", "median_flux", "mel_centres",
           "stft_magnitude"]

N_FFT = 1024
HOP = 256
N_MELS = 64
CHROMA_N_FFT = 4096
CHROMA_HOP = 2048


@dataclass
class Features:
    """Frame-level features of one track.

    Attributes
    ----------
    sr : int
    hop : int
        Hop of the onset/mel frames in samples.
    frame_rate : float
        Onset/mel frames per second.
    mag : np.ndarray [shape=(N_FFT//2 + 1, n_frames)]
        STFT magnitude.
    mel_db : np.ndarray [shape=(N_MELS, n_frames)]
        Log-mel spectrogram (dB, ref 1.0).
    env : np.ndarray [shape=(n_frames,)]
        Onset strength, full band, >= 0.
    env_low : np.ndarray [shape=(n_frames,)]
        Onset strength below ~180 Hz, >= 0.
    env_high : np.ndarray [shape=(n_frames,)]
        Onset strength above 1.5 kHz, >= 0.
    chroma : np.ndarray [shape=(12, n_chroma_frames)]
        Chroma energy (not normalized).
    chroma_rate : float
        Chroma frames per second.
    rms : np.ndarray [shape=(n_frames,)]
        Frame RMS (from the STFT).
    duration : float
    """

    sr: int
    hop: int
    frame_rate: float
    mag: np.ndarray
    mel_db: np.ndarray
    env: np.ndarray
    env_low: np.ndarray
    env_high: np.ndarray
    chroma: np.ndarray
    chroma_rate: float
    rms: np.ndarray
    duration: float

    @property
    def n_frames(self) -> int:
        return int(self.env.shape[0])

    def frame_times(self) -> np.ndarray:
        return np.arange(self.n_frames) / self.frame_rate

    def time_to_frame(self, t: np.ndarray | float) -> np.ndarray:
        f = np.round(np.asarray(t) * self.frame_rate).astype(int)
        return np.clip(f, 0, self.n_frames - 1)


@lru_cache(maxsize=8)
def _window(n: int) -> np.ndarray:
    """Periodic Hann window (as librosa/scipy ``hann``, ``sym=False``)."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


@lru_cache(maxsize=8)
def _mel_basis(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=30.0, fmax=min(sr / 2, 11025.0),
                               dtype=np.float32)


@lru_cache(maxsize=8)
def _chroma_basis(sr: int, n_fft: int) -> np.ndarray:
    import librosa

    basis = librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=0.0, dtype=np.float32)
    # restrict to ~60 Hz - 5 kHz: below is rumble/kick, above is mostly noise
    freqs = np.arange(n_fft // 2 + 1) * sr / n_fft
    basis[:, (freqs < 60) | (freqs > 5000)] = 0.0
    return basis


def stft_magnitude(y: np.ndarray, *, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Centered (zero-padded) STFT magnitude, shape ``(n_fft//2 + 1, 1 + len(y)//hop)``."""
    y = np.asarray(y, dtype=np.float32)
    pad = n_fft // 2
    yp = np.pad(y, (pad, pad))
    n_frames = 1 + (len(yp) - n_fft) // hop
    if n_frames < 1:
        yp = np.pad(yp, (0, n_fft - len(yp)))
        n_frames = 1
    frames = np.lib.stride_tricks.as_strided(
        yp, shape=(n_frames, n_fft), strides=(yp.strides[0] * hop, yp.strides[0]), writeable=False)
    spec = scipy.fft.rfft(frames * _window(n_fft), axis=1, workers=-1)
    return np.abs(spec).astype(np.float32).T


def _flux(mel_db: np.ndarray, rows: slice | np.ndarray, *, aggregate=np.mean) -> np.ndarray:
    m = mel_db[rows]
    ref = scipy.ndimage.maximum_filter1d(m, size=3, axis=0)
    d = np.zeros(m.shape[1], dtype=np.float32)
    d[1:] = aggregate(np.maximum(0.0, m[:, 1:] - ref[:, :-1]), axis=0)
    return d


@lru_cache(maxsize=8)
def mel_centres(sr: int, n_mels: int = N_MELS) -> np.ndarray:
    """Centre frequencies (Hz) of the log-mel bands of :class:`Features`."""
    import librosa

    return librosa.mel_frequencies(n_mels=n_mels + 2, fmin=30.0, fmax=min(sr / 2, 11025.0))[1:-1]


def median_flux(features: Features) -> np.ndarray:
    """Onset strength with the median over the mel bands rather than the mean (as librosa's
    ``onset_strength(aggregate=np.median)``): an onset counts only where most bands rise, which
    ignores a single loud instrument's notes (detrended like ``env``)."""
    return _detrend(_flux(features.mel_db, slice(None), aggregate=np.median), features.frame_rate)


def _detrend(env: np.ndarray, frame_rate: float) -> np.ndarray:
    """Remove the local mean (0.3 s window) and half-wave rectify."""
    w = max(3, int(round(0.3 * frame_rate)) | 1)
    local = scipy.ndimage.uniform_filter1d(env, size=w, mode="nearest")
    return np.maximum(0.0, env - local)


def compute_features(y: np.ndarray, sr: int) -> Features:
    """Compute the shared frame-level features of mono audio ``y`` at ``sr``.

    Parameters
    ----------
    y : np.ndarray
        Mono float32 audio.
    sr : int
        Sample rate (22050 is what the constants are tuned for).

    Returns
    -------
    Features
    """
    y = np.ascontiguousarray(y, dtype=np.float32)
    mag = stft_magnitude(y)
    power = mag ** 2
    mel = _mel_basis(sr, N_FFT, N_MELS) @ power
    mel_db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    mel_db = np.maximum(mel_db, mel_db.max() - 80.0)
    frame_rate = sr / HOP

    env = _detrend(_flux(mel_db, slice(None)), frame_rate)
    # the low band is the kick drum and bass
    low_rows = np.flatnonzero(mel_centres(sr) < 180.0)
    env_low = _detrend(_flux(mel_db, low_rows), frame_rate) if len(low_rows) else env.copy()
    high_rows = np.flatnonzero(mel_centres(sr) >= 1500.0)
    env_high = _detrend(_flux(mel_db, high_rows), frame_rate) if len(high_rows) else env.copy()

    cmag = stft_magnitude(y, n_fft=CHROMA_N_FFT, hop=CHROMA_HOP)
    chroma = _chroma_basis(sr, CHROMA_N_FFT) @ (cmag ** 2)
    rms = np.sqrt(power.sum(axis=0) * 2.0 / (N_FFT * N_FFT * 0.375)).astype(np.float32)

    return Features(sr=int(sr), hop=HOP, frame_rate=frame_rate, mag=mag, mel_db=mel_db,
                    env=env.astype(np.float32), env_low=env_low.astype(np.float32),
                    env_high=env_high.astype(np.float32),
                    chroma=chroma.astype(np.float32), chroma_rate=sr / CHROMA_HOP, rms=rms,
                    duration=len(y) / float(sr))


def detect_onsets(features: Features, *, delta: float = 0.07, wait: float = 0.03,
                  offset: float = 0.0) -> np.ndarray:
    """Pick onset times (s) from the onset strength envelope.

    Parameters
    ----------
    features : Features
    delta : float
        Threshold above the local mean, relative to the envelope's maximum.
    wait : float
        Minimum seconds between onsets.
    offset : float
        Seconds added to every onset (latency correction).

    Returns
    -------
    np.ndarray
        Onset times in seconds, increasing.
    """
    import librosa

    env = features.env
    if env.size == 0 or float(env.max()) <= 0:
        return np.zeros(0)
    e = env / float(env.max())
    fr = features.frame_rate
    peaks = librosa.util.peak_pick(
        e, pre_max=max(1, int(0.03 * fr)), post_max=max(1, int(0.03 * fr)),
        pre_avg=max(1, int(0.1 * fr)), post_avg=max(1, int(0.1 * fr)) + 1,
        delta=delta, wait=max(1, int(wait * fr)))
    t = peaks / fr + offset
    return t[(t >= 0) & (t <= features.duration)]
