"""Viseme timelines (beatframe.music.analysis.visemes) on synthesized voices with exact truth.

The voice is a formant synthesizer made here: a glottal pulse train (with a little vibrato and
a -6 dB/octave roll-off) through four two-pole resonators at a vowel's formants, then lip
radiation (a first difference). Fricatives are band-passed white noise, closures short
silences (or a quiet nasal murmur), rest true silence.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import soundfile as sf

from beatframe.music.analysis.visemes import (
    MOUTH_OPEN, VISEMES, Viseme, open_in_silence, phone_agreement, visemes, visemes_from_file,
    visemes_json, word_coverage)
from beatframe.infra.errors import BadInputError

SR = 22050
#: Formants (Hz) of adult male vowels (Peterson & Barney) and of a nasal murmur.
FORMANTS = {"a": (730, 1090, 2440, 3400), "i": (270, 2290, 3010, 3700),
            "u": (300, 870, 2240, 3300), "m": (250, 1200, 2500, 3300)}
BANDWIDTHS = (80, 100, 140, 200)
EXPECTED = {"a": "AA", "i": "EE", "u": "OO", "fric": "FF", "gap": "PP", "hum": "PP",
            "sil": "rest"}
TOL = 0.03


def vowel(v: str, seconds: float, *, f0: float = 120.0, sr: int = SR) -> np.ndarray:
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    phase = np.cumsum(f0 * (1 + 0.01 * np.sin(2 * np.pi * 5 * t))) / sr
    pulses = np.zeros(n)
    pulses[np.flatnonzero(np.diff(np.floor(phase), prepend=0.0) > 0)] = 1.0
    x = scipy.signal.lfilter([1.0], [1.0, -0.95], pulses)
    for fc, bw in zip(FORMANTS[v], BANDWIDTHS):
        r = np.exp(-np.pi * bw / sr)
        x = scipy.signal.lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * fc / sr), r * r], x)
    x = np.diff(x, prepend=0.0)
    return 0.3 * x / np.max(np.abs(x))


def fricative(seconds: float, *, sr: int = SR, seed: int = 0) -> np.ndarray:
    sos = scipy.signal.butter(4, [3500, 7500], btype="band", fs=sr, output="sos")
    noise = np.random.default_rng(seed).standard_normal(int(round(seconds * sr)))
    x = scipy.signal.sosfilt(sos, noise)
    return 0.1 * x / np.max(np.abs(x))


def utterance(parts, *, f0: float = 120.0, sr: int = SR):
    """Concatenate ``(kind, seconds)`` parts; return the audio and ``(kind, start, end)``."""
    chunks, truth, t = [], [], 0.0
    for kind, seconds in parts:
        if kind in ("sil", "gap"):
            x = np.zeros(int(round(seconds * sr)))
        elif kind == "fric":
            x = fricative(seconds, sr=sr)
        elif kind == "hum":
            x = 0.1 * vowel("m", seconds, f0=f0, sr=sr)  # 20 dB under the vowels
        else:
            x = vowel(kind, seconds, f0=f0, sr=sr)
        chunks.append(x)
        truth.append((kind, t, t + len(x) / sr))
        t += len(x) / sr
    return np.concatenate(chunks), truth


WORD = [("sil", 0.3), ("a", 0.35), ("gap", 0.08), ("i", 0.35), ("gap", 0.08), ("u", 0.35),
        ("fric", 0.15), ("a", 0.3), ("sil", 0.5)]


def label_at(timeline: list[Viseme], t: float) -> str:
    return next(v.viseme for v in timeline if v.start <= t < v.end)


def assert_contiguous(timeline: list[Viseme], duration: float) -> None:
    assert timeline[0].start == 0.0
    assert timeline[-1].end == pytest.approx(duration, abs=1e-9)
    for a, b in zip(timeline, timeline[1:]):
        assert a.end == b.start and a.viseme != b.viseme
    assert all(v.end > v.start and v.viseme in VISEMES for v in timeline)


def assert_matches(timeline: list[Viseme], truth) -> None:
    """Every truth part has its viseme across its middle, and every boundary of the truth
    has a timeline boundary within TOL (and no others)."""
    for kind, a, b in truth:
        for t in (a + TOL + 0.005, (a + b) / 2, b - TOL - 0.005):
            assert label_at(timeline, t) == EXPECTED[kind], (kind, a, b, t, timeline)
    truth_edges = [a for _, a, _ in truth[1:]]
    edges = [v.start for v in timeline[1:]]
    assert len(edges) == len(truth_edges), timeline
    for e, te in zip(edges, truth_edges):
        assert abs(e - te) <= TOL, (e, te, timeline)


@pytest.mark.parametrize("sr", [16000, SR, 44100])
def test_vowels_fricative_closures_and_silence(sr):
    y, truth = utterance(WORD, sr=sr)
    timeline = visemes(y, sr)
    assert_contiguous(timeline, len(y) / sr)
    assert_matches(timeline, truth)


@pytest.mark.parametrize("f0", [95.0, 220.0])
def test_vowel_classes_hold_across_pitch(f0):
    y, truth = utterance([("sil", 0.2), ("a", 0.4), ("gap", 0.1), ("i", 0.4), ("gap", 0.1),
                          ("u", 0.4), ("sil", 0.3)], f0=f0)
    assert_matches(visemes(y, SR), truth)


def test_voiced_closure_is_pp():
    # an m hummed between two vowels, 20 dB down, with no silence at all
    y, truth = utterance([("sil", 0.3), ("a", 0.35), ("hum", 0.09), ("a", 0.35), ("sil", 0.3)])
    assert_matches(visemes(y, SR), truth)


def test_long_pause_is_rest_and_closure_limits_apply():
    y, truth = utterance([("sil", 0.2), ("i", 0.3), ("sil", 0.4), ("i", 0.3), ("sil", 0.2)])
    assert_matches(visemes(y, SR), truth)            # 400 ms: a pause, not closed lips
    t = visemes(y, SR, closure=(0.03, 0.5))
    assert label_at(t, 0.7) == "PP"


def test_silence_and_near_silence_are_rest():
    assert visemes(np.zeros(SR), SR) == [Viseme(0.0, 1.0, "rest")]
    hiss = 10 ** (-75 / 20) * np.random.default_rng(1).standard_normal(2 * SR)
    assert [v.viseme for v in visemes(hiss, SR)] == ["rest"]


def test_noise_far_from_any_vowel_is_rest():
    y, _ = utterance([("a", 0.4), ("sil", 0.6), ("fric", 0.2), ("sil", 0.6)])
    timeline = visemes(y, SR)
    assert [v.viseme for v in timeline] == ["AA", "rest"]
    assert timeline[0].end == pytest.approx(0.4, abs=TOL)


def test_steady_noise_and_hum_are_not_voice():
    y, truth = utterance(WORD)
    t = np.arange(len(y)) / SR
    rng = np.random.default_rng(2)
    noisy = y + 0.004 * rng.standard_normal(len(y)) + 0.02 * np.sin(2 * np.pi * 60 * t)
    timeline = visemes(noisy, SR)
    assert_contiguous(timeline, len(y) / SR)
    assert_matches(timeline, truth)


def test_a_clip_that_is_all_voice_is_one_vowel():
    # no quiet frames to learn the noise from: the voice must not be taken for noise
    for v, want in (("a", "AA"), ("i", "EE"), ("u", "OO")):
        assert [x.viseme for x in visemes(vowel(v, 1.5), SR)] == [want]


def test_short_and_int_input():
    y = (vowel("a", 0.2) * 32767).astype(np.int16) / 32768.0
    timeline = visemes(y, SR, min_duration=0.0)
    assert_contiguous(timeline, len(y) / SR)
    assert "AA" in {v.viseme for v in timeline}


def test_with_a_band_the_mouth_moves_only_where_the_voice_sings():
    from beatframe.music.synth import synthesize_track

    tr = synthesize_track(bpm=120, meter=4, seed=5, vocals=True,
                          sections=[("intro", 2, 0.3), ("verse", 4, 0.6), ("chorus", 4, 0.9)])
    timeline = visemes(tr.y, tr.sample_rate)
    assert_contiguous(timeline, len(tr.y) / tr.sample_rate)
    assert word_coverage(timeline, tr.vocals) == 1.0
    assert open_in_silence(timeline, tr.vocals) <= 0.05
    opened = [v for v in timeline if v.viseme in MOUTH_OPEN]
    aa = sum(v.end - v.start for v in opened if v.viseme == "AA")
    assert aa >= 0.5 * sum(v.end - v.start for v in opened)  # the synthetic voice sings /a/
    # without the band handling the pad and lead read as a voice between the phrases
    assert open_in_silence(visemes(tr.y, tr.sample_rate, separate=False), tr.vocals) > 0.3


def test_visemes_json_is_rounded_contiguous_and_whole(tmp_path):
    y, truth = utterance(WORD)
    path = tmp_path / "word.wav"
    sf.write(str(path), y, SR, subtype="PCM_16")
    out = visemes_json(path)
    assert out[0]["start"] == 0.0 and out[-1]["end"] == round(len(y) / SR, 3)
    for d in out:
        assert set(d) == {"start", "end", "viseme"} and d["viseme"] in VISEMES
        assert d["start"] < d["end"]
        assert d["start"] == round(d["start"], 3) and d["end"] == round(d["end"], 3)
    for a, b in zip(out, out[1:]):
        assert a["end"] == b["start"] and a["viseme"] != b["viseme"]
    assert [d["viseme"] for d in out] == [EXPECTED[k] for k, _, _ in truth]
    assert visemes_from_file(path)[-1].end == pytest.approx(len(y) / SR)


def test_stereo_file_is_mixed_to_mono(tmp_path):
    y, truth = utterance(WORD)
    path = tmp_path / "stereo.flac"
    sf.write(str(path), np.stack([y, 0.5 * y], axis=1), SR)
    assert [d["viseme"] for d in visemes_json(path)] == [EXPECTED[k] for k, _, _ in truth]


@pytest.mark.parametrize("y, sr, kwargs, message", [
    (np.zeros(0), SR, {}, "empty"),
    (np.array([0.0, np.nan] * 100), SR, {}, "NaN"),
    (np.array([0.0, np.inf] * 100), SR, {}, "NaN or infinite"),
    (np.zeros((2, 1000)), SR, {}, "mono"),
    (["a", "b"], SR, {}, "array of numbers"),
    (np.zeros(1000), 0, {}, "sample rate"),
    (np.zeros(1000), -22050, {}, "sample rate"),
    (np.zeros(1000), 10**9, {}, "sample rate"),
    (np.zeros(1000), 44100.5, {}, "sample rate"),
    (np.zeros(1000), "44100", {}, "sample rate must be a number"),
    (np.zeros(1000), True, {}, "sample rate must be a number"),
    (np.zeros(3 * SR), SR, {"max_seconds": 2.0}, "too long"),
    (np.zeros(1000), SR, {"min_duration": -0.1}, "min_duration"),
    (np.zeros(1000), SR, {"min_duration": float("nan")}, "min_duration"),
    (np.zeros(1000), SR, {"closure": (0.3, 0.1)}, "closure"),
    (np.zeros(1000), SR, {"closure": (0.0, 0.1)}, "closure"),
    (np.zeros(1000), SR, {"closure": "short"}, "closure"),
    (np.zeros(1000), SR, {"margin": -1.0}, "margin"),
])
def test_bad_input_is_refused_loudly(y, sr, kwargs, message):
    with pytest.raises(BadInputError, match=message):
        visemes(y, sr, **kwargs)


def test_bad_files_are_refused_loudly(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "junk.wav").write_bytes(b"RIFF\x00\x00junk" + bytes(range(256)) * 8)
    sf.write(str(tmp_path / "silent.wav"), np.zeros(SR), SR)
    sf.write(str(tmp_path / "blip.wav"), vowel("a", 0.05), SR)
    for name, message in (("missing.wav", "not found"), ("empty.wav", "empty"),
                          ("junk.wav", "not a readable audio file"), ("silent.wav", "silent"),
                          ("blip.wav", "too short")):
        with pytest.raises(BadInputError, match=message):
            visemes_json(tmp_path / name)
    with pytest.raises(BadInputError, match="directory"):
        visemes_from_file(tmp_path)


def test_acceptance_measures():
    timeline = [Viseme(0.0, 1.0, "rest"), Viseme(1.0, 1.5, "AA"), Viseme(1.5, 1.6, "PP"),
                Viseme(1.6, 2.0, "EE"), Viseme(2.0, 3.0, "rest")]
    words = [(1.0, 1.55, "one"), (1.55, 1.62, "two"), (2.5, 2.8, "three")]
    # "two" has 20 ms of EE; "three" falls in rest
    assert word_coverage(timeline, words) == pytest.approx(2 / 3)
    assert word_coverage(timeline, words, min_overlap=0.05) == pytest.approx(1 / 3)
    assert word_coverage(timeline, []) != word_coverage(timeline, [])  # nan
    # open: 1.0-1.5 and 1.6-2.0 (0.9 s); outside the words: 1.62-2.0 (0.38 s)
    assert open_in_silence(timeline, words) == pytest.approx(0.38 / 0.9)
    assert open_in_silence([Viseme(0.0, 1.0, "rest")], words) == 0.0
    as_dicts = [{"start": v.start, "end": v.end, "viseme": v.viseme} for v in timeline]
    assert open_in_silence(as_dicts, words) == open_in_silence(timeline, words)
    # the M is mostly (100 of its 170 ms) on PP; the UW mostly on rest; S is not mapped
    phones = [(1.0, 1.4, "AA1"), (1.45, 1.62, "M"), (1.7, 1.9, "IY0"), (1.9, 2.2, "UW1"),
              (2.2, 2.3, "S")]
    assert phone_agreement(timeline, phones) == {"AA": (1, 1), "PP": (1, 1), "EE": (1, 1),
                                                 "OO": (0, 1)}
    assert phone_agreement(as_dicts, phones, mapping={"UW": "EE"}) == {"EE": (0, 1)}
