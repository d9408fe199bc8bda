"""Visemes: the mouth shapes of a sung or spoken voice, timed from the audio (a heuristic).

What it is for: lip-sync (issue 8) needs to know, for every moment of a track, whether the
singer's mouth is shut, open on a vowel (and which kind) or shaping a consonant that shows.
:func:`visemes` turns mono audio into a contiguous timeline of :class:`Viseme` spans covering
the whole clip; :func:`visemes_json` gives the CLI's JSON form. Six shapes:

=========  ==============================================================================
``rest``   no voice: silence, the band alone, a breath or noise away from any word
``PP``     lips shut: a short closure between two sounding parts, or a hum next to a vowel
``FF``     a fricative: unvoiced, noisy energy mostly above 3 kHz (f, v, s, sh, th ...)
``AA``     an open vowel: a high first formant (F1), the jaw dropped (a, ae, ah)
``EE``     a front vowel: a second formant (F2) far above F1 (i, ih, e)
``OO``     a rounded vowel: low F1 and low F2 (u, uh, o)
=========  ==============================================================================

How (one 32 ms / 10 ms short-time Fourier transform at 16 kHz, the speech band):

1. **Isolate the voice.** Whether a band plays along comes from the vocal-activity analysis
   (:mod:`beatframe.music.analysis.vocals`): its pulse clarity tells a voice on its own from a voice
   with a band (clips under 10 s count as a voice on its own: a few evenly spaced syllables
   would pass for a beat). With a band, the accompaniment is estimated REPET-SIM style (Rafii
   & Pardo, 2012): every frame's background is the median of the frames most like it (cosine
   similarity, at least 2 s away: the repeating bars of the arrangement), from
   :func:`librosa.decompose.nn_filter` on 40 ms frames in 40 s chunks, and the voice keeps a
   soft mask (:func:`librosa.util.softmask`) of what rises above it; the mouth may then only
   move inside the sung spans of :func:`beatframe.music.analysis.vocals.vocal_spans` (what the mask
   leaves of the band, a fill or a lead line, is no voice). A voice on its own is left whole:
   REPET-SIM would take its repeated vowels for a background. Then the steady noise (hum,
   hiss, room tone: every frequency's mean power over the quietest tenth of the frames, held
   20 dB under the loud frames so that a clip that is all voice keeps its voice) is
   subtracted twice over.
2. **Measure every frame**: the levels of the vowel band (150 Hz - 3 kHz) and the high band
   (3 - 7.6 kHz), each in dBFS and over the steady noise; periodicity at a voice pitch
   (:func:`beatframe.music.analysis.vocals.voicing`, without the band under 150 Hz, so rumble cannot
   pass for a voice); the high band's share of the energy; and the first two formants, from a
   10-pole linear-prediction fit to the spectrum below 5 kHz (autocorrelation method: inverse
   FFT of the pre-emphasized power spectrum, a Gaussian lag window against latching onto
   single harmonics, Levinson-Durbin, and the roots of the predictor, all frames at once).
3. **Class every frame.** Periodic, 8 dB over the noise, not mostly high band, within 25 dB of
   the clip's loud end (95th percentile of such frames) and, for a voice on its own, not 12 dB
   under the loudest frame within 100 ms (such a dip is a closure voiced through): a vowel, by
   its formants' 70 ms medians (F1 >= 600 Hz: ``AA``; else F2 - F1 >= 1000 Hz: ``EE``; else
   F2 <= 1200 Hz: ``OO``; else ``AA``; read off the adult male vowel charts of Peterson &
   Barney, 1952, and Hillenbrand et al., 1995). Otherwise, with at least 45 % of the energy in
   the high band, that band 6 dB over its noise (and over the accompaniment masked out there)
   and within 35 dB of the loud end: ``FF``, kept only within 150 ms of a vowel (fricatives
   belong to words; a lone hiss is a breath).
4. **Closures and smoothing.** A quiet stretch of 30-200 ms with sound on both sides becomes
   ``PP``, as does a hum next to a vowel (periodic but only 3-8 dB over the noise: a nasal
   murmur, lips shut); longer quiet is ``rest``. Spans shorter than ``min_duration`` are
   merged into their longer neighbour, the shortest first.

Limits, honestly: the closure rules cannot tell lips from tongue, so the stops t, d, k and g
come out as ``PP`` too and n or ng hums may; an m or b voiced right through with little dip
stays on the vowel around it. The formant thresholds are an adult male vocal tract's and fixed:
fast, reduced speech centralizes its vowels, so many open vowels (ae, ah) read as ``EE``, and
children or high sopranos (F0 above ~300 Hz, where harmonics are too sparse for a formant fit)
drift too. Voiced consonants (l, r, w, n, z) take the vowel shape they sit in. With a band, the
mouth follows the vocal analysis's spans (at least 0.8 s, gaps under 0.5 s bridged), the mask
dips at drum hits (so closures inside a sung phrase are not looked for, and a snare the mask
half removes can still read as ``FF``), and a voice that repeats a phrase exactly (a sample, a
looped hook) loses part of itself to the background. On the speech recording of
``benchmarks/visemes.py`` about half of the annotated phones land on their expected viseme:
this is an animation cue, not a phone recognizer.

The module also holds the acceptance measures of ``benchmarks/visemes.py``
(:func:`word_coverage`, :func:`open_in_silence`, :func:`phone_agreement`).

Reads no environment variables.

Examples
--------
>>> from beatframe.music.analysis.visemes import visemes_json
>>> visemes_json("vocal.wav")[:2]                              # doctest: +SKIP
[{'start': 0.0, 'end': 0.305, 'viseme': 'rest'}, {'start': 0.305, 'end': 0.655, 'viseme': 'AA'}]
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import scipy.ndimage

from beatframe.infra.errors import BadInputError
from beatframe.music.analysis.jit import first_call_alone

__all__ = ["Viseme", "VISEMES", "MOUTH_OPEN", "PHONE_VISEMES", "visemes", "visemes_from_file",
           "visemes_json", "word_coverage", "open_in_silence", "phone_agreement"]

#: Every viseme label :func:`visemes` can return.
VISEMES = ("rest", "PP", "FF", "AA", "EE", "OO")
#: The labels that show an open (or opening) mouth.
MOUTH_OPEN = frozenset({"FF", "AA", "EE", "OO"})
#: The expected viseme of ARPAbet phones (stress digits stripped), for :func:`phone_agreement`.
PHONE_VISEMES = {"P": "PP", "B": "PP", "M": "PP", "F": "FF", "V": "FF",
                 "AA": "AA", "AE": "AA", "AH": "AA", "IY": "EE", "IH": "EE", "EH": "EE",
                 "UW": "OO", "UH": "OO", "OW": "OO"}

SR = 16000
N_FFT = 512          # 32 ms
HOP = 160            # 10 ms
FRAME_RATE = SR / HOP

#: Lowest frequency counted as voice (below: rumble, hum and the kick drum).
VOICE_LO = 150.0
#: Highest frequency counted (just under Nyquist at 16 kHz).
VOICE_HI = 7600.0
#: The vowel band ends and the fricatives' high band begins here.
FRIC_LO = 3000.0
#: Frames quieter than this are silence whatever the clip's level (``beatframe.music.audio``'s figure).
SILENCE_DBFS = -60.0
#: The steady noise is measured over this quietest share of the frames...
QUIET_SHARE = 0.1
#: ...and held at least this many dB under the clip's loud frames (95th percentile).
NOISE_CAP_DB = 20.0
#: A vowel frame stands this many dB over the steady noise...
SNR_MIN = 8.0
#: ...and within this many dB of the clip's loud end (95th percentile of voiced frames).
VOWEL_RANGE_DB = 25.0
#: Periodicity (normalized autocorrelation at a voice pitch) from which a frame is voiced.
VOICED = 0.5
#: A fricative has at least this share of its energy above ``FRIC_LO``...
FRIC_SHARE = 0.45
#: ...its high band this many dB over the noise there (f and th are weak)...
FRIC_SNR = 6.0
#: ...within this many dB of the loud end...
FRIC_RANGE_DB = 35.0
#: ...and no farther than this (s) from a vowel; else it is a breath or noise.
FRIC_REACH = 0.15
#: A voiced frame between this and ``SNR_MIN`` dB over the noise, next to a vowel, is a hum.
MURMUR_SNR = 3.0
#: A voiced frame this many dB under the loudest within ``DIP_REACH`` frames is a closure.
DIP_DB, DIP_REACH = 12.0, 10
#: Clips shorter than this are taken for a voice on its own unless told otherwise.
MIN_BAND_SECONDS = 10.0
#: With a band, frames this far (s) outside the vocal analysis's sung spans are rest.
SUNG_PAD = 0.15
#: Formant thresholds in Hz (see the module docstring).
F1_OPEN, FRONT_SPREAD, F2_BACK = 600.0, 1000.0, 1200.0
#: LPC fit: poles, the band it models (Hz), the lag window's bandwidth (Hz), pre-emphasis.
LPC_ORDER, LPC_BAND, LAG_BW, PRE_EMPHASIS = 10, 5000.0, 80.0, 0.9
#: Resonances broader than this (Hz) are not formants.
MAX_FORMANT_BW = 800.0


@dataclass(frozen=True)
class Viseme:
    """One span of a viseme timeline.

    Attributes
    ----------
    start, end : float
        Seconds from the start of the clip, ``start < end``.
    viseme : str
        One of :data:`VISEMES`.
    """

    start: float
    end: float
    viseme: str


# --------------------------------------------------------------------------- input checks


def _check_audio(y, sr, max_seconds: float) -> np.ndarray:
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer, float, np.floating)):
        raise BadInputError(f"sample rate must be a number, got {type(sr).__name__}")
    if not np.isfinite(sr) or sr != int(sr) or not 4000 <= sr <= 384000:
        raise BadInputError(f"sample rate must be a whole number of Hz in 4000-384000, got {sr}")
    try:
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadInputError("audio must be an array of numbers") from None
    if y.ndim != 1:
        raise BadInputError(f"audio must be mono (one dimension), got shape {y.shape}")
    if y.size == 0:
        raise BadInputError("audio is empty (0 samples)")
    if not np.all(np.isfinite(y)):
        raise BadInputError("audio holds NaN or infinite samples")
    if y.size / sr > max_seconds:
        raise BadInputError(f"audio is too long ({y.size / sr:.0f} s; the limit is "
                            f"{max_seconds:.0f} s)")
    return y


# --------------------------------------------------------------------------- isolation


def _band_context(y: np.ndarray, sr: int,
                  separate: bool | None) -> tuple[float, list[tuple[float, float]] | None]:
    """How much a band plays along (0-1) and, where it does, the spans where a voice sings.

    Both come from the vocal-activity analysis on its own 22.05 kHz features: the weight from
    the pulse clarity (:data:`beatframe.music.analysis.vocals.PULSE_SOLO`), the spans from
    :func:`~beatframe.music.analysis.vocals.vocal_spans`. ``separate`` True or False forces the
    weight to 1 or 0; so does a clip shorter than ``MIN_BAND_SECONDS`` (weight 0), where a
    few evenly spaced syllables would pass for a beat.
    """
    from beatframe.music.analysis.onsets import compute_features
    from beatframe.music.analysis.vocals import PULSE_SOLO, pulse_clarity, vocal_spans
    from beatframe.music.audio import resample

    if separate is False or (separate is None and len(y) / sr < MIN_BAND_SECONDS):
        return 0.0, None
    feats = compute_features(resample(y.astype(np.float32), int(sr), 22050), 22050)
    if separate:
        weight = 1.0
    else:
        weight = float(np.clip((pulse_clarity(feats) - PULSE_SOLO[0])
                               / (PULSE_SOLO[1] - PULSE_SOLO[0]), 0.0, 1.0))
    return weight, (vocal_spans(feats) if weight >= 0.5 else None)


def _repeating_background(S: np.ndarray, *, coarse: int = 4, width_s: float = 2.0,
                          chunk_s: float = 40.0) -> np.ndarray:
    """REPET-SIM estimate of the repeating accompaniment in magnitude spectrogram ``S``.

    The similarity search is quadratic in frames, so it runs on ``coarse``-frame averages in
    chunks of ``chunk_s`` seconds (a song's bars repeat well within that), and the estimate is
    spread back to the full frame rate. A chunk too short to hold repeats keeps no background.
    """
    import librosa

    n_bins, n = S.shape
    nc = int(np.ceil(n / coarse))
    padded = np.zeros((n_bins, nc * coarse), dtype=np.float32)
    padded[:, :n] = S
    Sc = padded.reshape(n_bins, nc, coarse).mean(axis=2)
    rate = FRAME_RATE / coarse
    width = max(1, int(round(width_s * rate)))
    step = max(3 * width, int(round(chunk_s * rate)))
    bg = np.zeros_like(Sc)
    starts = list(range(0, nc, step))
    if len(starts) > 1 and nc - starts[-1] < 3 * width:
        starts.pop()  # fold a short tail into the chunk before it
    for i, a in enumerate(starts):
        b = starts[i + 1] if i + 1 < len(starts) else nc
        if b - a < 3 * width:
            continue
        block = Sc[:, a:b]
        bg[:, a:b] = np.minimum(block, librosa.decompose.nn_filter(
            block, aggregate=np.median, metric="cosine", width=width))
    return np.minimum(S, np.repeat(bg, coarse, axis=1)[:, :n])


def _isolate(P: np.ndarray, weight: float,
             margin: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The voice's power spectrogram with the accompaniment masked out (as far as ``weight``
    says a band plays), the same with the steady noise subtracted, and that noise (shape
    ``(n_bins, 1)``)."""
    import librosa

    if weight > 0:
        S = np.sqrt(P)
        bg = _repeating_background(S)
        mask = librosa.util.softmask(S - bg, margin * bg, power=2)
        P = P * ((1.0 - weight) + weight * mask) ** 2
    noise = _noise_floor(P)
    # twice the mean: the noise scatters around its mean, and a residue would read as voice
    return P, np.maximum(P - 2.0 * noise, 0.0), noise


def _noise_floor(P: np.ndarray) -> np.ndarray:
    """Steady noise power per frequency (shape ``(n_bins, 1)``): the mean over the quietest
    ``QUIET_SHARE`` of the frames, held at least ``NOISE_CAP_DB`` under the loud frames.

    A mean, not a low percentile: one bin's noise power scatters exponentially, so its 10th
    percentile sits ~10 dB under the noise it is meant to remove. The cap keeps a clip that is
    voice from end to end (no quiet frames at all) from having its voice taken for noise.
    """
    freqs = np.arange(P.shape[0]) * SR / N_FFT
    band = (freqs >= VOICE_LO) & (freqs <= VOICE_HI)
    total = P[band].sum(axis=0)
    k = max(1, int(P.shape[1] * QUIET_SHARE))
    quiet = np.argpartition(total, k - 1)[:k]
    noise = P[:, quiet].mean(axis=1, keepdims=True)
    ceiling = float(np.percentile(total, 95)) * 10.0 ** (-NOISE_CAP_DB / 10.0)
    level = float(noise[band].sum())
    return noise * (ceiling / level) if level > ceiling > 0 else noise


# --------------------------------------------------------------------------- formants


def _lpc_formants(P: np.ndarray, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F1 and F2 (Hz; NaN where none is found) of the selected ``frames`` of power ``P``.

    The autocorrelation of the band below ``LPC_BAND`` is the inverse FFT of that part of the
    (pre-emphasized) power spectrum, as if the frame had been resampled to ``2 * LPC_BAND``.
    """
    n_out = len(frames)
    if n_out == 0:
        return np.zeros(0), np.zeros(0)
    freqs = np.arange(P.shape[0]) * SR / N_FFT
    keep = freqs <= LPC_BAND
    fs = 2.0 * freqs[keep][-1]
    w = 2 * np.pi * freqs[keep] / SR
    # a gentle +6 dB/octave tilt: the usual 0.97 buries a low F1 under a high voice's F0
    pre = np.abs(1.0 - PRE_EMPHASIS * np.exp(-1j * w)) ** 2
    r = np.fft.irfft(P[keep][:, frames] * pre[:, None], axis=0)[: LPC_ORDER + 1]
    lags = np.arange(LPC_ORDER + 1)
    r = r * np.exp(-0.5 * (2 * np.pi * LAG_BW * lags / fs) ** 2)[:, None]
    r[0] *= 1.0001                                      # white-noise correction: stable fits
    ok = r[0] > 0
    a = _levinson(r)
    # roots of the predictor polynomial = eigenvalues of its companion matrices, all at once
    comp = np.zeros((n_out, LPC_ORDER, LPC_ORDER))
    comp[:, 0, :] = -a[:, 1:]
    comp[:, np.arange(1, LPC_ORDER), np.arange(LPC_ORDER - 1)] = 1.0
    roots = np.linalg.eigvals(np.where(ok[:, None, None], comp, 0.0))
    freq = np.angle(roots) * fs / (2 * np.pi)
    bw = -np.log(np.maximum(np.abs(roots), 1e-9)) * fs / np.pi
    cand = ok[:, None] & (np.imag(roots) > 0) & (bw < MAX_FORMANT_BW)
    # F1 is the lowest resonance in 200-1100 Hz, F2 the lowest at least 200 Hz above it and
    # under 3.2 kHz; a frame whose F1 hides (merged with F2, or too broad) gets neither
    f1 = np.where(cand & (freq >= 200) & (freq <= 1100), freq, np.inf).min(axis=1)
    f2 = np.where(cand & (freq >= f1[:, None] + 200) & (freq <= 3200), freq, np.inf).min(axis=1)
    found = np.isfinite(f1) & np.isfinite(f2)
    return np.where(found, f1, np.nan), np.where(found, f2, np.nan)


def _levinson(r: np.ndarray) -> np.ndarray:
    """Predictor coefficients ``a`` (shape ``(n, order + 1)``, ``a[:, 0] = 1``) from
    autocorrelations ``r`` (shape ``(order + 1, n)``), for all frames at once."""
    order, n = r.shape[0] - 1, r.shape[1]
    a = np.zeros((n, order + 1))
    a[:, 0] = 1.0
    err = np.maximum(r[0].astype(np.float64), 1e-30)
    for i in range(1, order + 1):
        acc = r[i] + np.einsum("nj,jn->n", a[:, 1:i], r[i - 1:0:-1])
        k = -acc / err
        a[:, 1:i] = a[:, 1:i] + k[:, None] * a[:, i - 1:0:-1]
        a[:, i] = k
        err = np.maximum(err * (1.0 - k * k), 1e-30)
    return a


def _median_within_runs(x: np.ndarray, mask: np.ndarray, size: int) -> np.ndarray:
    """Running median of ``x`` (NaN ignored) over ``size`` frames within each run of ``mask``
    only, so a vowel's formants are not pulled toward the next vowel's across a gap. Frames
    with no formant in reach take their run's median (NaN if the run has none)."""
    out = np.full(x.shape, np.nan)
    lab, _ = scipy.ndimage.label(mask)
    half = size // 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows are expected
        for sl in scipy.ndimage.find_objects(lab):
            seg = x[sl]
            padded = np.concatenate([np.full(half, np.nan), seg, np.full(half, np.nan)])
            med = np.nanmedian(np.lib.stride_tricks.sliding_window_view(padded, size), axis=1)
            out[sl] = np.where(np.isfinite(med), med, np.nanmedian(seg))
    return out


# --------------------------------------------------------------------------- frame classes


def _vowel_class(f1: np.ndarray, f2: np.ndarray) -> np.ndarray:
    """Vowel viseme of every frame from its (smoothed) formants; AA where they are unknown."""
    out = np.full(f1.shape, "AA", dtype=object)
    mid = ~(f1 >= F1_OPEN)
    front = mid & (f2 - f1 >= FRONT_SPREAD)
    out[front] = "EE"
    out[mid & ~front & (f2 <= F2_BACK)] = "OO"
    return out


@dataclass
class _Frames:
    """Per-frame measurements (10 ms frames) of the isolated voice."""

    P: np.ndarray          # voice power spectrogram, steady noise subtracted
    level: np.ndarray      # dBFS of the vowel band (VOICE_LO-FRIC_LO), noise subtracted
    snr: np.ndarray        # dB of the vowel band over the steady noise
    hf_level: np.ndarray   # dBFS of the high band (FRIC_LO-VOICE_HI), noise subtracted
    hf_snr: np.ndarray     # dB of the high band over the steady noise
    hf_share: np.ndarray   # the high band's share of the voice's energy
    hf_over_band: np.ndarray  # dB of the high band kept over the accompaniment masked out there
    periodic: np.ndarray   # periodicity at a voice pitch, 0-1
    audible: np.ndarray    # above SILENCE_DBFS before any processing (and, with a band, sung)


def _measure(y16: np.ndarray, *, weight: float, margin: float) -> _Frames:
    from beatframe.music.analysis.onsets import stft_magnitude
    from beatframe.music.analysis.vocals import voicing

    P_raw = stft_magnitude(y16.astype(np.float32), n_fft=N_FFT, hop=HOP).astype(np.float64) ** 2
    P_voice, P_clean, noise = _isolate(P_raw, weight, margin)
    freqs = np.arange(P_raw.shape[0]) * SR / N_FFT
    low = (freqs >= VOICE_LO) & (freqs < FRIC_LO)
    high = (freqs >= FRIC_LO) & (freqs <= VOICE_HI)
    # power to dB relative to full scale: a full-scale sine's frame reads 0 dBFS (Parseval)
    to_fs = 4.0 / (N_FFT * np.sum(np.hanning(N_FFT + 1)[:-1] ** 2))

    def db(x):
        return 10 * np.log10(x * to_fs + 1e-20)

    lo_p, hi_p = P_clean[low].sum(axis=0), P_clean[high].sum(axis=0)
    P_pitch = P_clean.copy()
    P_pitch[freqs < VOICE_LO] = 0.0
    # one frame's periodicity is noisy; three in a row (30 ms) are still shorter than a phone
    periodic = scipy.ndimage.median_filter(voicing(np.sqrt(P_pitch), SR), size=3,
                                           mode="nearest")
    return _Frames(
        P=P_clean, level=db(lo_p), snr=db(P_voice[low].sum(axis=0)) - db(noise[low].sum()),
        hf_level=db(hi_p), hf_snr=db(P_voice[high].sum(axis=0)) - db(noise[high].sum()),
        hf_share=hi_p / (lo_p + hi_p + 1e-20), periodic=periodic,
        # a hi-hat or snare the mask only half removed is a band's noise, not a fricative
        hf_over_band=db(P_voice[high].sum(axis=0)) - db((P_raw - P_voice)[high].sum(axis=0)),
        audible=db(P_raw[low | high].sum(axis=0)) > SILENCE_DBFS)


def _runs_touching(mask: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Frames of ``mask`` whose connected run overlaps ``other``."""
    lab, k = scipy.ndimage.label(mask)
    hit = np.zeros(k + 1, dtype=bool)
    hit[np.unique(lab[mask & other])] = True
    hit[0] = False
    return hit[lab]


def _runs(labels: np.ndarray) -> list[tuple[str, int, int]]:
    """(label, first frame, end frame exclusive) of every run of equal labels."""
    if len(labels) == 0:
        return []
    cut = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate([[0], cut])
    ends = np.concatenate([cut, [len(labels)]])
    return [(str(labels[a]), int(a), int(b)) for a, b in zip(starts, ends)]


def _frame_labels(y16: np.ndarray, *, weight: float, sung: list[tuple[float, float]] | None,
                  margin: float, closure: tuple[int, int]) -> np.ndarray:
    """One viseme label per 10 ms frame (``closure`` in frames)."""
    m = _measure(y16, weight=weight, margin=margin)
    n = len(m.level)
    if sung is not None:
        t = np.arange(n) / FRAME_RATE
        inside = np.zeros(n, dtype=bool)
        for a, b in sung:
            inside |= (t >= a - SUNG_PAD) & (t < b + SUNG_PAD)
        m.audible &= inside
    voiced = m.audible & (m.periodic >= VOICED) & (m.snr >= SNR_MIN) & (m.hf_share < FRIC_SHARE)
    ref = float(np.percentile(m.level[voiced], 95)) if voiced.any() else np.inf
    vowel = voiced & (m.level >= ref - VOWEL_RANGE_DB)
    # a deep dip between louder voiced sound is a closure voiced through (b, m, a p after a
    # vowel), not a vowel: the lips shut while the vocal folds keep going. Not with a band:
    # there the mask's own dips at every drum hit would read as closures.
    if sung is None:
        around = scipy.ndimage.maximum_filter1d(m.level, size=2 * DIP_REACH + 1, mode="nearest")
        vowel &= m.level > around - DIP_DB
    fric = (m.audible & ~vowel & (m.hf_share >= FRIC_SHARE) & (m.hf_snr >= FRIC_SNR)
            & (m.hf_level >= ref - FRIC_RANGE_DB) & (m.hf_over_band >= 0))
    reach = int(round(FRIC_REACH * FRAME_RATE))
    fric &= _runs_touching(fric, scipy.ndimage.binary_dilation(vowel, iterations=reach)
                           if vowel.any() else vowel)

    labels = np.full(n, "rest", dtype=object)
    idx = np.flatnonzero(vowel)
    f1, f2 = np.full(n, np.nan), np.full(n, np.nan)
    f1[idx], f2[idx] = _lpc_formants(m.P, idx)
    labels[vowel] = _vowel_class(_median_within_runs(f1, vowel, 7)[vowel],
                                 _median_within_runs(f2, vowel, 7)[vowel])
    labels[fric] = "FF"

    runs = _runs(labels)
    for i, (lab, a, b) in enumerate(runs):
        if lab == "rest" and 0 < i < len(runs) - 1 and closure[0] <= b - a <= closure[1]:
            labels[a:b] = "PP"
    murmur = m.audible & (m.periodic >= VOICED) & (m.snr >= MURMUR_SNR) & (labels == "rest")
    labels[_runs_touching(murmur, scipy.ndimage.binary_dilation(vowel))] = "PP"
    return labels


def _merge_short(labels: np.ndarray, min_frames: dict[str, int]) -> np.ndarray:
    """Relabel runs shorter than their label's minimum as their longer neighbour, the
    shortest first (so a 1-frame blip never outvotes a 4-frame run), until none is left."""
    labels = labels.copy()
    while True:
        runs = _runs(labels)
        short = [b - a for lab, a, b in runs if b - a < min_frames[lab]]
        if len(runs) < 2 or not short:
            return labels
        length = min(short)
        for i, (lab, a, b) in enumerate(runs):
            if b - a != length or length >= min_frames[lab]:
                continue
            # neighbours as they were at the start of this pass: good enough, and every pass
            # merges at least the first short run for good
            left = runs[i - 1] if i > 0 else None
            right = runs[i + 1] if i + 1 < len(runs) else None
            if right is None or (left is not None and left[2] - left[1] >= right[2] - right[1]):
                labels[a:b] = left[0]
            else:
                labels[a:b] = right[0]


# --------------------------------------------------------------------------- public API


@first_call_alone
def visemes(y: np.ndarray, sr: int, *, min_duration: float = 0.05,
            closure: tuple[float, float] = (0.03, 0.2), separate: bool | None = None,
            margin: float = 2.0, max_seconds: float = 1200.0) -> list[Viseme]:
    """Viseme timeline of the voice in mono audio.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)]
        Mono audio, samples in [-1, 1] (full scale).
    sr : int
        Sample rate of ``y`` (4 kHz - 384 kHz); the analysis runs at 16 kHz.
    min_duration : float
        Shortest span in seconds; shorter ones are merged into their longer neighbour.
        Closures (``PP``) keep their own minimum, ``closure[0]``.
    closure : (float, float)
        Shortest and longest quiet stretch, in seconds, between two sounding parts that shows
        as closed lips (``PP``); longer ones are ``rest``.
    separate : bool or None
        Remove a repeating accompaniment first (REPET-SIM) and keep the mouth shut outside
        the sung spans of the vocal analysis. None decides from the clip: on when it has a
        steady beat (a band), off for a voice on its own.
    margin : float
        How far above the accompaniment estimate a bin must rise to count fully as voice
        (the soft mask's margin; larger keeps less).
    max_seconds : float
        Longest audio accepted.

    Returns
    -------
    list of Viseme
        Contiguous spans from 0 to ``len(y) / sr``, labels from :data:`VISEMES`, neighbours
        always different.

    Raises
    ------
    beatframe.infra.errors.BadInputError
        Empty, non-finite or multi-channel audio, a sample rate that is not a whole number
        in 4-384 kHz, audio longer than ``max_seconds``, or out-of-range parameters.

    Examples
    --------
    >>> import numpy as np
    >>> visemes(np.zeros(16000), 16000)
    [Viseme(start=0.0, end=1.0, viseme='rest')]
    """
    y = _check_audio(y, sr, max_seconds)
    if not (np.isfinite(min_duration) and 0 <= min_duration <= 1.0):
        raise BadInputError(f"min_duration must be 0-1 s, got {min_duration}")
    try:
        lo, hi = (float(c) for c in closure)
    except (TypeError, ValueError):
        raise BadInputError(f"closure must be two numbers of seconds, got {closure!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo <= hi <= 1.0):
        raise BadInputError(f"closure must be (shortest, longest) seconds with 0 < shortest <= "
                            f"longest <= 1, got {closure}")
    if not (np.isfinite(margin) and margin >= 0):
        raise BadInputError(f"margin must be >= 0, got {margin}")

    from beatframe.music.audio import resample

    duration = len(y) / float(sr)
    y16 = resample(y.astype(np.float32), int(sr), SR).astype(np.float64)
    weight, sung = _band_context(y, int(sr), separate)
    to_frames = (max(1, int(round(lo * FRAME_RATE))), max(1, int(round(hi * FRAME_RATE))))
    labels = _frame_labels(y16, weight=weight, sung=sung, margin=margin, closure=to_frames)
    min_frames = {lab: max(1, int(round(min_duration * FRAME_RATE))) for lab in VISEMES}
    min_frames["PP"] = to_frames[0]
    out = []
    for lab, a, b in _runs(_merge_short(labels, min_frames)):
        # frame i is centred at i * HOP: it stands for half a hop either side
        start = 0.0 if a == 0 else min(duration, (a - 0.5) / FRAME_RATE)
        end = duration if b == len(labels) else min(duration, (b - 0.5) / FRAME_RATE)
        if end > start:
            out.append(Viseme(start=float(start), end=float(end), viseme=lab))
    return out or [Viseme(0.0, duration, "rest")]


def visemes_from_file(path: str | Path, **kwargs) -> list[Viseme]:
    """:func:`visemes` of an audio file, decoded and checked by
    :func:`beatframe.music.audio.load_audio` (at 16 kHz, mixed to mono).

    Parameters
    ----------
    path : str or Path
    **kwargs
        Passed to :func:`visemes`.

    Returns
    -------
    list of Viseme
        Ending at the file's own duration.

    Raises
    ------
    beatframe.infra.errors.BadInputError
        A missing, empty, corrupt or silent file, audio shorter than 0.1 s or longer than
        ``max_seconds`` (default 1200 s), or out-of-range parameters.
    """
    from beatframe.music.audio import load_audio

    clip = load_audio(path, sample_rate=SR, max_seconds=kwargs.get("max_seconds", 1200.0),
                      min_seconds=0.1)
    result = visemes(clip.y, clip.sample_rate, **kwargs)
    # the file's duration at its own rate, not the resampled length's
    last = result[-1]
    if clip.duration > last.start:
        result[-1] = Viseme(last.start, float(clip.duration), last.viseme)
    return result


def visemes_json(path: str | Path, **kwargs) -> list[dict]:
    """The viseme timeline of an audio file as JSON-ready dicts (for ``beatframe`` CLI use).

    Parameters
    ----------
    path : str or Path
    **kwargs
        Passed to :func:`visemes`.

    Returns
    -------
    list of dict
        ``[{"start": float, "end": float, "viseme": str}, ...]``: seconds rounded to the
        millisecond, contiguous (each ``start`` is the previous ``end``), from 0 to the file's
        duration, ``"rest"`` where nobody sings or speaks; labels from :data:`VISEMES`.

    Raises
    ------
    beatframe.infra.errors.BadInputError
        As :func:`visemes_from_file`.
    """
    out: list[dict] = []
    for v in visemes_from_file(path, **kwargs):
        start = out[-1]["end"] if out else 0.0
        end = round(v.end, 3)
        if end <= start:
            continue  # shorter than a millisecond once rounded
        if out and out[-1]["viseme"] == v.viseme:
            out[-1]["end"] = end
        else:
            out.append({"start": start, "end": end, "viseme": v.viseme})
    return out


# --------------------------------------------------------------------------- acceptance measures


def _spans(timeline: Iterable[Viseme | dict]) -> list[tuple[float, float, str]]:
    return [(float(v["start"]), float(v["end"]), str(v["viseme"])) if isinstance(v, dict)
            else (float(v.start), float(v.end), v.viseme) for v in timeline]


def _overlap(a: float, b: float, spans: Iterable[tuple]) -> float:
    return float(sum(max(0.0, min(b, s[1]) - max(a, s[0])) for s in spans))


def word_coverage(timeline: Iterable[Viseme | dict], words: Iterable[Sequence], *,
                  min_overlap: float = 0.02) -> float:
    """Share of annotated words during which the mouth is open (any viseme but rest and PP).

    Parameters
    ----------
    timeline : iterable of Viseme or dict
    words : iterable of (start, end[, label])
        Spoken words or sung notes, in seconds.
    min_overlap : float
        Seconds of open mouth a word needs to count (all of it, for a shorter word).

    Returns
    -------
    float
        In [0, 1]; nan when there are no words.
    """
    opened = [s for s in _spans(timeline) if s[2] in MOUTH_OPEN]
    hits = total = 0
    for w in words:
        a, b = float(w[0]), float(w[1])
        total += 1
        hits += _overlap(a, b, opened) >= min(min_overlap, b - a) - 1e-9
    return hits / total if total else float("nan")


def open_in_silence(timeline: Iterable[Viseme | dict], words: Iterable[Sequence]) -> float:
    """Share of the open-mouth time that falls outside every annotated word (0 is best).

    Returns
    -------
    float
        In [0, 1]; 0 when the mouth never opens.
    """
    opened = [s for s in _spans(timeline) if s[2] in MOUTH_OPEN]
    total = sum(b - a for a, b, _ in opened)
    if total <= 0:
        return 0.0
    merged: list[list[float]] = []
    for a, b in sorted((float(w[0]), float(w[1])) for w in words):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    inside = sum(_overlap(a, b, merged) for a, b, _ in opened)
    return float(min(1.0, max(0.0, (total - inside) / total)))


def phone_agreement(timeline: Iterable[Viseme | dict], phones: Iterable[Sequence], *,
                    mapping: dict[str, str] | None = None) -> dict[str, tuple[int, int]]:
    """How often annotated phones fall on their expected viseme.

    A phone agrees when the viseme covering most of its span is the one ``mapping`` expects.

    Parameters
    ----------
    timeline : iterable of Viseme or dict
    phones : iterable of (start, end, label)
        ARPAbet labels; stress digits are ignored, phones not in ``mapping`` skipped.
    mapping : dict or None
        Phone to viseme; default :data:`PHONE_VISEMES`.

    Returns
    -------
    dict
        ``{expected viseme: (phones that agree, phones)}``.
    """
    mapping = PHONE_VISEMES if mapping is None else mapping
    spans = _spans(timeline)
    out: dict[str, list[int]] = {}
    for p in phones:
        a, b, want = float(p[0]), float(p[1]), mapping.get(str(p[2]).rstrip("012").upper())
        if want is None:
            continue
        share: dict[str, float] = {}
        for s, e, lab in spans:
            if min(b, e) > max(a, s):
                share[lab] = share.get(lab, 0.0) + min(b, e) - max(a, s)
        cell = out.setdefault(want, [0, 0])
        cell[0] += bool(share) and max(share, key=share.get) == want
        cell[1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}
