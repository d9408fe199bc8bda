"""Deterministic synthesized music for tests, demos and benchmarks.

:func:`synthesize_track` renders a short pop-style arrangement (kick, snare, hi-hats, bass line,
chord pad, an optional lead and an optional "voice") on an exact beat grid and returns it together
with its ground truth: beat and downbeat times, section spans, tempo and meter.  The same
arguments always give the same samples (all randomness comes from ``seed``).

Sections are ``(label, bars, energy)`` triples.  ``energy`` (0-1) picks the instrumentation and
loudness: a quiet intro has a pad and a soft kick on downbeats only, verses add bass, snare and
8th-note hats, choruses are louder with 16th hats, a lead and busier bass.  A section labelled
``"silence"`` renders digital silence (its beats are left out of the truth ``beats``; the full
grid is in ``grid``).

Everything is vectorized per note/hit; 3 minutes of audio renders in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = [
    "DEFAULT_SECTIONS",
    "DEMO_SECTIONS",
    "SynthTrack",
    "demo_track",
    "synthesize_track",
    "write_wav",
]

Section = tuple[str, int, float]

#: About 3 minutes at 120 BPM in 4/4 (88 bars = 176 s plus lead-in and tail).
DEFAULT_SECTIONS: tuple[Section, ...] = (
    ("intro", 4, 0.2),
    ("verse", 16, 0.5),
    ("pre-chorus", 4, 0.65),
    ("chorus", 16, 0.95),
    ("verse", 8, 0.5),
    ("pre-chorus", 4, 0.65),
    ("chorus", 16, 0.95),
    ("breakdown", 8, 0.3),
    ("drop", 8, 1.0),
    ("outro", 4, 0.2),
)

#: About 40 s at 120 BPM: the CLI's ``--demo`` track.
DEMO_SECTIONS: tuple[Section, ...] = (
    ("intro", 2, 0.2),
    ("verse", 4, 0.5),
    ("chorus", 4, 0.95),
    ("breakdown", 2, 0.3),
    ("chorus", 4, 1.0),
    ("outro", 2, 0.2),
)

# Chord progressions (root MIDI note, quality) per section label, one chord per bar, cycled.
_MAJ, _MIN = (0, 4, 7), (0, 3, 7)
_PROGRESSIONS: dict[str, list[tuple[int, tuple[int, int, int]]]] = {
    "intro": [(57, _MIN), (53, _MAJ)],                               # Am F
    "verse": [(57, _MIN), (53, _MAJ), (48, _MAJ), (55, _MAJ)],       # Am F C G
    "pre-chorus": [(50, _MIN), (53, _MAJ), (55, _MAJ), (55, _MAJ)],  # Dm F G G
    "chorus": [(48, _MAJ), (55, _MAJ), (57, _MIN), (53, _MAJ)],      # C G Am F
    "drop": [(48, _MAJ), (55, _MAJ), (57, _MIN), (53, _MAJ)],
    "bridge": [(50, _MIN), (52, _MIN), (53, _MAJ), (55, _MAJ)],      # Dm Em F G
    "breakdown": [(57, _MIN), (57, _MIN), (53, _MAJ), (53, _MAJ)],
    "outro": [(53, _MAJ), (48, _MAJ)],
}


@dataclass
class SynthTrack:
    """A synthesized track and its ground truth.

    Attributes
    ----------
    y : np.ndarray
        Mono float32 samples in [-1, 1].
    sample_rate : int
    beats : np.ndarray
        Beat times (s) where music plays (beats inside ``"silence"`` sections are left out).
    downbeats : np.ndarray
        Downbeat times (s), a subset of ``beats``.
    sections : list of (start, end, label)
        Contiguous spans covering ``[0, duration]``.
    bpm : float
        Tempo at the start (the mean tempo when ``bpm_end`` is given is in ``bpm_mean``).
    meter : int
        Beats per bar.
    grid : np.ndarray
        Every beat of the grid, silent sections included.
    vocals : list of (start, end)
        Spans where the synthetic voice sings (empty unless ``vocals=True``).
    """

    y: np.ndarray
    sample_rate: int
    beats: np.ndarray
    downbeats: np.ndarray
    sections: list[tuple[float, float, str]]
    bpm: float
    meter: int
    grid: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bpm_end: float | None = None
    vocals: list[tuple[float, float]] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.y) / float(self.sample_rate)

    @property
    def bpm_mean(self) -> float:
        if len(self.grid) < 2:
            return self.bpm
        return float(60.0 / np.median(np.diff(self.grid)))


def _midi_hz(m: float | np.ndarray) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=np.float64) - 69.0) / 12.0)


def _add(out: np.ndarray, start: int, sig: np.ndarray) -> None:
    """Mix ``sig`` into ``out`` at sample ``start``, clipped to the buffer."""
    if start >= len(out) or len(sig) == 0:
        return
    if start < 0:
        sig = sig[-start:]
        start = 0
    n = min(len(sig), len(out) - start)
    if n > 0:
        out[start:start + n] += sig[:n]


def _kick(sr: int) -> np.ndarray:
    t = np.arange(int(0.35 * sr)) / sr
    f = 45.0 + 110.0 * np.exp(-t / 0.03)
    phase = 2 * np.pi * np.cumsum(f) / sr
    click = np.exp(-t / 0.002) * 0.5
    return ((np.sin(phase) + click) * np.exp(-t / 0.12)).astype(np.float32)


def _snare(sr: int, rng: np.random.Generator) -> np.ndarray:
    n = int(0.22 * sr)
    t = np.arange(n) / sr
    noise = rng.standard_normal(n)
    # crude high-pass: first difference, then mix with raw for body
    noise = 0.6 * np.diff(noise, prepend=0.0) + 0.4 * noise
    tone = np.sin(2 * np.pi * 185.0 * t) * np.exp(-t / 0.05)
    return ((0.55 * noise * np.exp(-t / 0.06) + 0.6 * tone) * 0.8).astype(np.float32)


def _hat(sr: int, rng: np.random.Generator, decay: float = 0.035) -> np.ndarray:
    n = int(0.12 * sr)
    t = np.arange(n) / sr
    noise = rng.standard_normal(n)
    hp = np.diff(np.diff(noise, prepend=0.0), prepend=0.0)  # second difference ~ high-pass
    return (0.25 * hp * np.exp(-t / decay)).astype(np.float32)


_TABLE_N = 4096
_TABLES: dict[tuple[float, ...], np.ndarray] = {}


def _wavetable(harmonics: Sequence[float]) -> np.ndarray:
    key = tuple(float(h) for h in harmonics)
    tab = _TABLES.get(key)
    if tab is None:
        ph = 2 * np.pi * np.arange(_TABLE_N) / _TABLE_N
        tab = sum(a * np.sin(k * ph) for k, a in enumerate(key, start=1) if a)
        tab = np.asarray(tab, dtype=np.float32)
        _TABLES[key] = tab
    return tab


def _tone(freq: float, n: int, sr: int, *, harmonics: Sequence[float], attack: float,
          decay: float | None, phase0: float = 0.0) -> np.ndarray:
    """A decaying harmonic tone via wavetable lookup (fast; harmonics above Nyquist dropped)."""
    if decay is not None:
        n = min(n, int(6 * decay * sr) + 1)  # the rest is below -50 dB
    harmonics = [a if freq * k < sr / 2 else 0.0 for k, a in enumerate(harmonics, start=1)]
    t = np.arange(n, dtype=np.float64) / sr
    idx = ((freq * t + phase0 / (2 * np.pi)) * _TABLE_N).astype(np.int64) % _TABLE_N
    sig = _wavetable(harmonics)[idx]
    env = np.minimum(1.0, t / max(attack, 1e-4))
    if decay is not None:
        env *= np.exp(-t / decay)
    rel = min(n, int(0.02 * sr))  # 20 ms release avoids clicks
    if rel > 0:
        env[-rel:] *= np.linspace(1.0, 0.0, rel)
    return sig * env


def _beat_grid(n_beats: int, bpm: float, bpm_end: float | None, offset: float) -> np.ndarray:
    """Times of ``n_beats + 1`` beats (the extra one closes the last bar)."""
    if bpm_end is None or n_beats < 2:
        periods = np.full(n_beats, 60.0 / bpm)
    else:
        tempi = np.linspace(bpm, bpm_end, n_beats)
        periods = 60.0 / tempi
    return offset + np.concatenate([[0.0], np.cumsum(periods)])


def synthesize_track(
    *,
    bpm: float = 120.0,
    meter: int = 4,
    sections: Sequence[Section] = DEFAULT_SECTIONS,
    sample_rate: int = 22050,
    seed: int = 0,
    swing: float | None = None,
    bpm_end: float | None = None,
    offset: float = 0.5,
    tail: float = 1.5,
    vocals: bool = False,
    instruments: Sequence[str] | None = None,
) -> SynthTrack:
    """Render a deterministic multi-section track on an exact beat grid.

    Parameters
    ----------
    bpm : float
        Tempo in beats per minute (at the start, if ``bpm_end`` is given).
    meter : int
        Beats per bar (2-7 sensible; 3 gives a waltz pattern).
    sections : sequence of (label, bars, energy)
        The arrangement. ``energy`` in [0, 1] chooses instrumentation and loudness;
        the label ``"silence"`` renders silence for that many bars.
    sample_rate : int
    seed : int
        Seed for all randomness (drum noise, velocities).
    swing : float or None
        Swing amount in [0, 0.5): off-beat 8ths (hats, bass) are delayed by ``swing`` of a beat.
    bpm_end : float or None
        If given, the tempo changes linearly (per beat) from ``bpm`` to ``bpm_end``.
    offset : float
        Seconds of silence before the first beat.
    tail : float
        Seconds after the last bar (for decays).
    vocals : bool
        Add a sung-vowel-like voice in verses and choruses (truth in ``SynthTrack.vocals``).
    instruments : sequence of str or None
        Parts to mix, from ``"drums"``, ``"bass"``, ``"pad"``, ``"lead"`` (and ``"voice"`` when
        ``vocals``); None mixes them all. ``("drums",)`` gives a percussion-only track.

    Returns
    -------
    SynthTrack
    """
    if bpm <= 0 or (bpm_end is not None and bpm_end <= 0):
        raise ValueError("bpm must be positive")
    if meter < 1:
        raise ValueError("meter must be >= 1")
    sections = [(str(lab), int(bars), float(np.clip(en, 0.0, 1.0))) for lab, bars, en in sections]
    if not sections or sum(b for _, b, _ in sections) <= 0:
        raise ValueError("sections must contain at least one bar")

    rng = np.random.default_rng(seed)
    sr = int(sample_rate)
    n_bars = sum(b for _, b, _ in sections)
    n_beats = n_bars * meter
    grid_all = _beat_grid(n_beats, bpm, bpm_end, offset)  # n_beats + 1 entries
    grid = grid_all[:-1]
    duration = grid_all[-1] + tail
    n = int(round(duration * sr))

    drums = np.zeros(n, dtype=np.float32)
    bass = np.zeros(n, dtype=np.float32)
    pad = np.zeros(n, dtype=np.float32)
    lead = np.zeros(n, dtype=np.float32)
    voice = np.zeros(n, dtype=np.float32)

    kick = _kick(sr)
    snares = [_snare(sr, rng) for _ in range(3)]
    hats = [_hat(sr, rng) for _ in range(4)]
    open_hat = _hat(sr, rng, decay=0.12)
    swing = float(swing or 0.0)

    kick_beats = {0} | ({meter // 2} if meter >= 4 and meter % 2 == 0 else set())
    if meter == 3:
        snare_beats = {1, 2}
    elif meter % 2 == 0:
        snare_beats = set(range(1, meter, 2))
    else:
        snare_beats = {b for b in range(1, meter) if b not in kick_beats}

    truth_beats: list[float] = []
    truth_down: list[float] = []
    truth_sections: list[tuple[float, float, str]] = []
    vocal_spans: list[tuple[float, float]] = []

    def s(t: float) -> int:
        return int(round(t * sr))

    bar = 0
    for sec_i, (label, bars, energy) in enumerate(sections):
        sec_start_beat = bar * meter
        sec_t0 = 0.0 if sec_i == 0 else grid_all[sec_start_beat]
        sec_t1 = duration if sec_i == len(sections) - 1 else grid_all[(bar + bars) * meter]
        if bars > 0:
            truth_sections.append((float(sec_t0), float(sec_t1), label))
        silent = label == "silence" or energy <= 0.0
        prog = _PROGRESSIONS.get(label, _PROGRESSIONS["verse"])
        gain = 0.35 + 0.65 * energy
        for b in range(bars):
            bar_beat0 = (bar + b) * meter
            t_bar0 = grid_all[bar_beat0]
            t_bar1 = grid_all[bar_beat0 + meter]
            if silent:
                continue
            truth_down.append(float(t_bar0))
            truth_beats.extend(float(x) for x in grid_all[bar_beat0:bar_beat0 + meter])
            root, quality = prog[b % len(prog)]

            # --- chord pad (always) -------------------------------------------------------
            nbar = s(t_bar1) - s(t_bar0) + s(0.05)
            pad_amp = 0.07 * (0.6 + 0.4 * energy)
            for iv in quality:
                f = float(_midi_hz(root + iv))
                _add(pad, s(t_bar0), (pad_amp * _tone(
                    f, nbar, sr, harmonics=(1.0, 0.35, 0.15, 0.08), attack=0.04, decay=1.6,
                    phase0=rng.uniform(0, 2 * np.pi))).astype(np.float32))

            for k in range(meter):
                t_beat = grid_all[bar_beat0 + k]
                period = grid_all[bar_beat0 + k + 1] - t_beat
                t_off = t_beat + period * (0.5 + swing)
                vel = 1.0 + 0.06 * rng.standard_normal()

                # --- kick ------------------------------------------------------------------
                if k in kick_beats or (energy >= 0.2 and k == 0):
                    if energy >= 0.12:
                        amp = (0.55 if energy < 0.3 else 0.9) * gain * vel
                        if energy < 0.3 and k != 0:
                            continue_kick = False
                        else:
                            continue_kick = True
                        if continue_kick:
                            _add(drums, s(t_beat), amp * kick)
                if energy >= 0.8 and meter % 2 == 0 and k == meter - 1:
                    # syncopated pickup kick on the "and" of the last beat
                    _add(drums, s(t_off), 0.5 * gain * kick)

                # --- snare -------------------------------------------------------------------
                if energy >= 0.35 and k in snare_beats:
                    amp = (0.45 if meter == 3 else 0.7) * gain * vel
                    _add(drums, s(t_beat), amp * snares[(bar + b + k) % len(snares)])

                # --- hats ---------------------------------------------------------------------
                if energy >= 0.15:
                    h_amp = 0.35 * gain
                    _add(drums, s(t_beat), h_amp * vel * hats[k % 4])
                    if energy >= 0.3:
                        _add(drums, s(t_off), 0.7 * h_amp * hats[(k + 1) % 4])
                    if energy >= 0.8:
                        for frac in (0.25, 0.75):
                            _add(drums, s(t_beat + period * frac), 0.4 * h_amp * hats[(k + 2) % 4])
                    if energy >= 0.8 and k == meter - 1:
                        _add(drums, s(t_off), 0.3 * h_amp * open_hat)

                # --- bass ---------------------------------------------------------------------
                if energy >= 0.3:
                    b_root = root - 24 if root - 24 >= 28 else root - 12
                    notes = [(t_beat, t_off, b_root)]
                    if energy >= 0.6:
                        octave = 12 if (k % 2 == 1 and energy >= 0.8) else 0
                        notes.append((t_off, t_beat + period, b_root + octave))
                    else:
                        notes = [(t_beat, t_beat + period, b_root)]
                    for t0, t1, m in notes:
                        nn = max(1, s(t1) - s(t0))
                        sig = _tone(float(_midi_hz(m)), nn, sr, harmonics=(1.0, 0.5, 0.25, 0.12),
                                    attack=0.005, decay=0.25)
                        _add(bass, s(t0), (0.28 * gain * vel * sig).astype(np.float32))

                # --- lead arpeggio (high energy) --------------------------------------------
                if energy >= 0.8:
                    arp = [root + 12 + quality[(2 * k) % 3], root + 12 + quality[(2 * k + 1) % 3]]
                    for j, (t0, t1) in enumerate(((t_beat, t_off), (t_off, t_beat + period))):
                        nn = max(1, s(t1) - s(t0))
                        sig = _tone(float(_midi_hz(arp[j])), nn, sr,
                                    harmonics=(1.0, 0.0, 0.33, 0.0, 0.2), attack=0.003, decay=0.12)
                        _add(lead, s(t0), (0.06 * gain * sig).astype(np.float32))

        # --- synthetic voice: phrases of 2 bars singing, 2 bars rest -----------------------
        if vocals and not silent and label in ("verse", "chorus", "pre-chorus", "drop", "bridge"):
            for b in range(0, bars, 4):
                beat0 = (bar + b) * meter
                beat1 = min((bar + b + 2) * meter, (bar + bars) * meter)
                t0, t1 = grid_all[beat0] + 0.05, grid_all[beat1] - 0.1
                if t1 - t0 < 0.5:
                    continue
                nn = s(t1) - s(t0)
                tt = np.arange(nn) / sr
                root = prog[b % len(prog)][0]
                # melody: a note per beat from the chord, pitch glides, 5.5 Hz vibrato
                beat_idx = np.searchsorted(grid_all, t0 + tt, side="right") - 1
                deg = np.array([0, 4, 7, 4, 2, 0, 7, 9])[beat_idx % 8]
                midi = root + 12 + deg + 0.3 * np.sin(2 * np.pi * 5.5 * tt)
                f0 = _midi_hz(midi)
                cyc = np.cumsum(f0) / sr  # phase in cycles
                idx = (cyc * _TABLE_N).astype(np.int64) % _TABLE_N
                sig = np.zeros(nn, dtype=np.float32)
                for d in np.unique(deg):
                    fn = float(_midi_hz(root + 12 + d))
                    fh = fn * np.arange(1, 25)
                    # vowel /a/ formants at the note's nominal pitch
                    w = sum(a * np.exp(-0.5 * ((fh - fc) / bw) ** 2)
                            for fc, bw, a in ((730, 90, 1.0), (1090, 110, 0.6), (2440, 160, 0.3)))
                    amps = np.where(fh < sr / 2, (w + 0.02) / np.sqrt(np.arange(1, 25)), 0.0)
                    m = deg == d
                    sig[m] = _wavetable(tuple(np.round(amps, 4)))[idx[m]]
                env = np.minimum(1.0, tt / 0.08) * np.minimum(1.0, (tt[-1] - tt) / 0.1)
                _add(voice, s(t0), (0.05 * (0.6 + 0.4 * energy) * sig * env).astype(np.float32))
                vocal_spans.append((float(t0), float(t1)))
        bar += bars

    parts = {"drums": drums, "bass": bass, "pad": pad, "lead": lead, "voice": voice}
    if instruments is None:
        y = drums + bass + pad + lead + voice
    else:
        unknown = set(instruments) - set(parts)
        if unknown:
            raise ValueError(f"unknown instruments: {sorted(unknown)}")
        y = np.zeros(n, dtype=np.float32)
        for name in parts:
            if name in instruments:
                y = y + parts[name]
        if "voice" not in instruments:
            vocal_spans = []
    peak = float(np.max(np.abs(y))) if n else 0.0
    if peak > 0:
        y *= 0.89 / peak
    y = y.astype(np.float32)

    return SynthTrack(
        y=y,
        sample_rate=sr,
        beats=np.asarray(truth_beats, dtype=np.float64),
        downbeats=np.asarray(truth_down, dtype=np.float64),
        sections=truth_sections,
        bpm=float(bpm),
        meter=int(meter),
        grid=grid.astype(np.float64),
        bpm_end=None if bpm_end is None else float(bpm_end),
        vocals=vocal_spans,
    )


def rubato(track: SynthTrack, *, start: float, end: float, stretch: float) -> SynthTrack:
    """Slow ``track`` down smoothly over input seconds ``[start, end)`` and back to tempo.

    Beat lengths grow along a raised cosine up to ``stretch`` times (a local ritardando followed
    by *a tempo*); the truth (beats, downbeats, sections, vocals) is warped with the audio.
    """
    sr = track.sample_rate
    t_in = np.arange(len(track.y)) / sr
    speed = np.ones(len(t_in))
    inside = (t_in >= start) & (t_in < end)
    speed[inside] = 1 + (stretch - 1) * 0.5 * (1 - np.cos(2 * np.pi * (t_in[inside] - start) / (end - start)))
    t_out_of_in = np.concatenate([[0.0], np.cumsum(speed[:-1])]) / sr
    t_out = np.arange(int(t_out_of_in[-1] * sr)) / sr

    def warp(times):
        return np.interp(np.asarray(times, dtype=np.float64), t_in, t_out_of_in)

    return replace(
        track,
        y=np.interp(t_out, t_out_of_in, track.y).astype(np.float32),
        beats=warp(track.beats), downbeats=warp(track.downbeats), grid=warp(track.grid),
        sections=[(float(warp(a)), float(warp(b)), label) for a, b, label in track.sections],
        vocals=[(float(warp(a)), float(warp(b))) for a, b in track.vocals],
    )


def demo_track(*, seed: int = 0, sample_rate: int = 22050) -> SynthTrack:
    """The ~40 s demo song used by ``beatframe canvas --demo`` (120 BPM, 4/4)."""
    return synthesize_track(bpm=120.0, meter=4, sections=DEMO_SECTIONS, sample_rate=sample_rate,
                            seed=seed, vocals=True)


def write_wav(path: str | Path, track: SynthTrack) -> Path:
    """Write ``track`` as a mono 16-bit PCM WAV file and return the path."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(track.y, -1.0, 1.0), track.sample_rate, subtype="PCM_16")
    return path
