"""Per-frame musical envelopes shared by the generators.

Everything here follows the timing convention of :mod:`beatframe.models.base`: for an event at clip time
``t`` let ``j = round(t * fps)``; the visible jump happens between frame ``j`` and ``j + 1``.
So a *value* envelope (a scale or brightness kick) is 0-ish at frame ``j`` and 1 at ``j + 1``,
then decays; a *velocity* envelope (how far a phase advances from frame ``i`` to ``i + 1``) is
1 at index ``j``. When ``timeline.periodic`` the envelopes wrap around: a beat near the end decays
into the first frames, and continuous phases complete whole cycles over the clip so the last
frame flows into the first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from beatframe.music.timeline import LoopTimeline


def event_frames(times, timeline: LoopTimeline) -> np.ndarray:
    """Frame index ``j`` of each event (the accent shows between ``j`` and ``j + 1``).

    Periodic clips wrap indices modulo ``n_frames``; otherwise events whose jump would fall
    after the last frame are dropped.
    """
    n = timeline.n_frames
    j = np.round(np.asarray(times, dtype=np.float64) * timeline.fps).astype(np.int64)
    if timeline.periodic:
        return np.mod(j, n)
    return j[(j >= 0) & (j < n - 1)]


def _decay_kernel(n: int, tau_frames: float, periodic: bool) -> np.ndarray:
    k = np.arange(n, dtype=np.float64)
    ker = np.exp(-k / max(tau_frames, 1e-3))
    if periodic:
        # the tail of a pulse that wraps more than once (very long tau): fold it
        ker = ker / (1.0 - np.exp(-n / max(tau_frames, 1e-3)))
    return ker


def impulses(times, timeline: LoopTimeline, weights=None) -> np.ndarray:
    """Unit impulses at the event frames ``j`` (summed, optionally weighted)."""
    n = timeline.n_frames
    out = np.zeros(n, dtype=np.float64)
    j = event_frames(times, timeline)
    if weights is None:
        w = np.ones(len(j))
    else:
        w = np.broadcast_to(np.asarray(weights, dtype=np.float64), (len(np.asarray(times)),))
        if not timeline.periodic:
            jj = np.round(np.asarray(times, dtype=np.float64) * timeline.fps).astype(np.int64)
            w = w[(jj >= 0) & (jj < n - 1)]
    np.add.at(out, j, w)
    return out


def _convolve_causal(imp: np.ndarray, ker: np.ndarray, periodic: bool) -> np.ndarray:
    n = len(imp)
    if periodic:
        return np.real(np.fft.ifft(np.fft.fft(imp) * np.fft.fft(ker)))
    return np.convolve(imp, ker)[:n]


def velocity_envelope(times, timeline: LoopTimeline, tau_s: float, weights=None) -> np.ndarray:
    """1 at each event frame ``j`` then ``exp(-k / tau)``: a phase advance that peaks on ``j -> j+1``."""
    imp = impulses(times, timeline, weights)
    ker = _decay_kernel(timeline.n_frames, tau_s * timeline.fps, timeline.periodic)
    return _convolve_causal(imp, ker, timeline.periodic).astype(np.float32)


def value_envelope(times, timeline: LoopTimeline, tau_s: float, weights=None) -> np.ndarray:
    """0 at frame ``j``, 1 at frame ``j + 1`` then decaying: a kick whose jump is ``j -> j+1``."""
    v = velocity_envelope(times, timeline, tau_s, weights)
    if timeline.periodic:
        return np.roll(v, 1)
    return np.concatenate([[0.0], v[:-1]]).astype(np.float32)


def smooth(x: np.ndarray, sigma_frames: float, periodic: bool) -> np.ndarray:
    if sigma_frames <= 0:
        return np.asarray(x, dtype=np.float32)
    return gaussian_filter1d(np.asarray(x, dtype=np.float64), sigma_frames,
                             mode="wrap" if periodic else "nearest").astype(np.float32)


def bump_envelope(times, timeline: LoopTimeline, attack_s: float = 0.12, release_s: float = 0.35,
                  weights=None) -> np.ndarray:
    """A soft swell after each event (sin² attack, cosine release): no sharp frame-to-frame step,
    so it never reads as a visual accent by itself."""
    fps = timeline.fps
    a = max(2, int(round(attack_s * fps)))
    r = max(3, int(round(release_s * fps)))
    up = np.sin(0.5 * np.pi * np.arange(1, a + 1) / a) ** 2
    down = 0.5 * (1 + np.cos(np.pi * np.arange(1, r + 1) / r))
    shape = np.concatenate([[0.0], up, down])
    n = timeline.n_frames
    ker = np.zeros(n)
    m = min(n, len(shape))
    ker[:m] = shape[:m]
    imp = impulses(times, timeline, weights)
    env = _convolve_causal(imp, ker, timeline.periodic)
    return np.clip(env, 0.0, 1.5).astype(np.float32)


def cycles_over_clip(period_s: float, timeline: LoopTimeline) -> float:
    """How many cycles a motion of roughly ``period_s`` makes over the clip (whole when periodic)."""
    c = timeline.duration / max(period_s, 1e-6)
    return float(max(1, round(c))) if timeline.periodic else c


def oscillator(period_s: float, timeline: LoopTimeline, phase0: float = 0.0) -> np.ndarray:
    """``sin`` of a slow motion that closes on itself over a periodic clip."""
    c = cycles_over_clip(period_s, timeline)
    i = np.arange(timeline.n_frames, dtype=np.float64)
    return np.sin(2 * np.pi * c * i / timeline.n_frames + phase0).astype(np.float32)


def integrate(velocity: np.ndarray, timeline: LoopTimeline, unit: float = 1.0) -> np.ndarray:
    """Phase per frame from per-step advances: ``p[0] = 0``, ``p[i+1] = p[i] + v[i]``.

    Periodic clips rescale the advances so the total over the clip (``p[n]``, i.e. back at frame
    0) is a whole number of ``unit`` cycles (at least one): the pattern lines up at the seam.
    """
    v = np.asarray(velocity, dtype=np.float64)
    if timeline.periodic:
        total = float(v.sum())
        cycles = max(1.0, round(total / unit)) if total > 0 else 0.0
        v = v * (cycles * unit / total) if total > 0 else v * 0.0
    return np.concatenate([[0.0], np.cumsum(v)[:-1]])


def shot_index(timeline: LoopTimeline) -> np.ndarray:
    """Shot number per frame when cutting on downbeats (frame ``j + 1`` starts the new shot).

    Periodic clips wrap: frames before the first downbeat belong to the last shot, so the loop
    restart continues that shot and the cut at the first downbeat is just one more cut.
    """
    n = timeline.n_frames
    j = np.unique(event_frames(timeline.downbeats, timeline))
    if len(j) == 0:
        return np.zeros(n, dtype=np.int64)
    i = np.arange(n)
    s = np.searchsorted(j, i, side="left") - 1  # number of downbeat jumps before frame i, minus 1
    if timeline.periodic:
        return np.mod(s, len(j))
    return s + 1


@dataclass(frozen=True)
class Envelopes:
    """Everything a scene needs per frame (arrays of shape ``(n_frames,)``, float32)."""

    kick: np.ndarray        # value envelope: 1 (downbeat) / beat weight at j+1, decaying fast
    rush: np.ndarray        # velocity envelope: phase advance on j -> j+1, decaying
    downbeat: np.ndarray    # value envelope for downbeats only
    energy: np.ndarray      # smoothed 0-1
    sparkle: np.ndarray     # soft onset swells, 0-1
    shot: np.ndarray        # shot number per frame (int64)
    t: np.ndarray           # seconds
    loop: np.ndarray        # i / n_frames, 0..1


def envelopes(timeline: LoopTimeline, *, beat_weight: float = 0.7, downbeat_weight: float = 1.0,
              kick_tau_s: float = 0.1, rush_tau_s: float = 0.03, energy_sigma_s: float = 0.3,
              cut_on_downbeats: bool = False) -> Envelopes:
    """Build the standard envelopes from a timeline.

    Beats get ``beat_weight`` and downbeats ``downbeat_weight`` (a downbeat is a beat too; its
    weight replaces the beat's). Ordinary beats should stay at >= 0.6 of a downbeat so every beat
    clears the judge's prominence threshold.
    """
    n = timeline.n_frames
    fps = timeline.fps
    beats = np.asarray(timeline.beats, dtype=np.float64)
    downs = np.asarray(timeline.downbeats, dtype=np.float64)
    jb = np.round(beats * fps)
    jd = np.round(downs * fps)
    is_down = np.isin(jb, jd)
    w = np.where(is_down, downbeat_weight, beat_weight)
    # downbeats not listed among the beats still count
    extra = downs[~np.isin(jd, jb)]
    times = np.concatenate([beats, extra])
    w = np.concatenate([w, np.full(len(extra), downbeat_weight)])
    kick = value_envelope(times, timeline, kick_tau_s, w)
    rush = velocity_envelope(times, timeline, rush_tau_s, w)
    down = value_envelope(downs, timeline, kick_tau_s * 1.5)
    en = np.asarray(timeline.energy, dtype=np.float32)
    en = np.clip(np.nan_to_num(en, nan=0.5), 0.0, 1.0)
    en = smooth(en, energy_sigma_s * fps, timeline.periodic)
    # onsets right on a beat are already covered by the beat's accent
    ons = np.asarray(timeline.onsets, dtype=np.float64)
    if len(ons) and len(times):
        near = np.min(np.abs(ons[:, None] - times[None, :]), axis=1) < 1.5 / fps
        ons = ons[~near]
    sparkle = bump_envelope(ons, timeline) if len(ons) else np.zeros(n, np.float32)
    shot = shot_index(timeline) if cut_on_downbeats else np.zeros(n, dtype=np.int64)
    i = np.arange(n, dtype=np.float32)
    return Envelopes(kick=kick.astype(np.float32), rush=rush.astype(np.float32),
                     downbeat=down.astype(np.float32), energy=en, sparkle=sparkle, shot=shot,
                     t=i / fps, loop=i / n)


def grid_timeline(bpm: float = 120.0, bars: int = 2, meter: int = 4, fps: int = 30, *,
                  offset: float = 0.0, periodic: bool = True, onsets=None,
                  energy=None, section: str = "chorus") -> LoopTimeline:
    """A regular beat grid (for tests, benchmarks and demos): ``bars`` bars at ``bpm``."""
    period = 60.0 / bpm
    n_beats = int(bars * meter)
    n = int(round(n_beats * period * fps))
    beats = tuple(offset + k * period for k in range(n_beats) if offset + k * period < n / fps)
    downs = tuple(b for k, b in enumerate(beats) if k % meter == 0)
    if onsets is None:
        onsets = beats
    if energy is None:
        energy = np.linspace(0.3, 0.9, n).astype(np.float32)
    return LoopTimeline(fps=fps, n_frames=n, bpm=bpm, meter=meter, beats=beats, downbeats=downs,
                        onsets=tuple(onsets), energy=np.asarray(energy, dtype=np.float32),
                        section=section, section_energy=float(np.mean(energy)), periodic=periodic)
