"""Song structure (beatframe.music.analysis.sections) on synthesized audio with exact truth.

The section stage is fed the synthesized track's own downbeats (and beats, where a test uses
beat-synchronous frames), so these tests check the structure analysis alone (the beat tracker
has its own tests in test_analysis.py).
"""

from __future__ import annotations

import mir_eval
import numpy as np
import pytest

from beatframe.music.analysis.energy import energy_curve
from beatframe.music.analysis.onsets import compute_features
from beatframe.music.analysis.sections import (
    analyze_structure,
    foote_novelty,
    label_sections,
    section_confidence,
)
from beatframe.music.synth import synthesize_track

LABELS = {"intro", "verse", "pre-chorus", "chorus", "bridge", "breakdown", "drop", "outro",
          "silence"}
SONG = [("intro", 4, 0.2), ("verse", 8, 0.5), ("chorus", 8, 0.9), ("verse", 8, 0.5),
        ("chorus", 8, 0.9), ("outro", 4, 0.2)]


def _inputs(track):
    feats = compute_features(track.y, track.sample_rate)
    curve, _ = energy_curve(track.y, track.sample_rate)
    return dict(features=feats, curve=curve, duration=len(track.y) / track.sample_rate,
                beats=np.asarray(track.beats), downbeats=np.asarray(track.downbeats))


def _structure(inp, **kw):
    return analyze_structure(inp["features"], inp["downbeats"], inp["curve"], inp["duration"],
                             **kw)


def _check(spans, duration):
    assert spans[0].start == 0.0 and spans[-1].end == pytest.approx(duration)
    assert all(a.end == b.start for a, b in zip(spans, spans[1:]))
    assert all(s.end - s.start >= 1.0 - 1e-6 for s in spans)
    assert all(s.label in LABELS and 0.0 <= s.energy <= 1.0 for s in spans)


@pytest.fixture(scope="module")
def song():
    track = synthesize_track(bpm=100, meter=4, sections=SONG, seed=21)  # ~82 s
    return track, _inputs(track)


@pytest.fixture(scope="module")
def song_structure(song):
    return _structure(song[1])


def test_boundaries_of_a_clearly_sectioned_song_are_near_the_truth(song, song_structure):
    track, inp = song
    ref = np.array([[a, b] for a, b, _ in track.sections])
    b = song_structure.bounds
    est = np.array([[x, y] for x, y in zip(b[:-1], b[1:])])
    p, r, f = mir_eval.segment.detection(ref, est, window=3.0, trim=True)
    assert r == 1.0 and f >= 0.8, (b, ref[:, 0])
    # on the bar lines (boundaries snap to the downbeats)
    p5, r5, f5 = mir_eval.segment.detection(ref, est, window=0.5, trim=True)
    assert r5 >= 0.8, b


def test_repeated_sections_share_labels_and_the_loud_one_is_the_chorus(song, song_structure):
    track, inp = song
    spans = label_sections(inp["features"], song_structure.bounds, inp["curve"],
                           structure=song_structure)
    _check(spans, inp["duration"])
    times = np.arange(0.05, inp["duration"], 0.1)

    def label_at(secs, x):
        return next((lab for a, b, lab in secs if a <= x < b), secs[-1][2])

    est = [(s.start, s.end, s.label) for s in spans]
    for want in ("verse", "chorus"):
        sel = [x for x in times if label_at(track.sections, x) == want]
        assert np.mean([label_at(est, x) == want for x in sel]) >= 0.8, (want, est)
    assert spans[0].label == "intro"


def test_invariants_hold_with_beat_frames_without_downbeats_and_without_a_structure(song):
    track, inp = song
    # the calls of before issue 14: labels computing their own frames
    bounds = analyze_structure(inp["features"], inp["downbeats"], inp["curve"], inp["duration"]).bounds
    assert bounds[0] == 0.0 and bounds[-1] == inp["duration"]
    assert all(b2 - b1 >= 1.0 for b1, b2 in zip(bounds, bounds[1:]))
    assert all(isinstance(b, float) for b in bounds)
    _check(label_sections(inp["features"], bounds, inp["curve"]), inp["duration"])
    ref = np.array([[a, b] for a, b, _ in track.sections])
    for st in (_structure(inp, beats=inp["beats"]),  # beat-synchronous frames
               analyze_structure(inp["features"], np.zeros(0), inp["curve"], inp["duration"])):
        _check(label_sections(inp["features"], st.bounds, inp["curve"], structure=st),
               inp["duration"])
        assert 0.0 <= section_confidence(st) <= 1.0
        est = np.array([[x, y] for x, y in zip(st.bounds[:-1], st.bounds[1:])])
        assert mir_eval.segment.detection(ref, est, window=3.0, trim=True)[2] >= 0.8


def test_silent_gap_is_its_own_section():
    track = synthesize_track(bpm=120, sections=[("verse", 8, 0.6), ("silence", 3, 0.0),
                                                ("chorus", 8, 0.9)], seed=4)
    inp = _inputs(track)
    st = _structure(inp)
    spans = label_sections(inp["features"], st.bounds, inp["curve"], structure=st)
    _check(spans, inp["duration"])
    s0, s1, _ = track.sections[1]
    assert any(s.label == "silence" and abs(s.start - s0) < 1.0 and abs(s.end - s1) < 1.0
               for s in spans), spans


@pytest.mark.parametrize("seconds", [0.5, 2.6, 9.0])
def test_short_clips_give_one_valid_span_or_a_few(seconds):
    track = synthesize_track(bpm=100, sections=[("verse", 4, 0.6)], seed=2, tail=0.0)
    n = int(seconds * track.sample_rate)
    y = track.y[:n]
    feats = compute_features(y, track.sample_rate)
    curve, _ = energy_curve(y, track.sample_rate)
    dur = n / track.sample_rate
    beats = track.beats[track.beats < dur]
    st = analyze_structure(feats, track.downbeats[track.downbeats < dur], curve, dur, beats=beats)
    assert st.bounds[0] == 0.0 and st.bounds[-1] == dur
    spans = label_sections(feats, st.bounds, curve, structure=st)
    assert spans[0].start == 0.0 and spans[-1].end == pytest.approx(dur)
    assert all(s.label in LABELS for s in spans)
    assert 0.0 <= section_confidence(st) <= 1.0


def test_confidence_is_low_without_structure_and_high_with_it(song, song_structure):
    sr = 22050
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal(sr * 60)).astype(np.float32)
    nfeat = compute_features(noise, sr)
    ncurve, _ = energy_curve(noise, sr)
    n_st = analyze_structure(nfeat, np.arange(2.0, 60.0, 2.0), ncurve, 60.0)
    loop = synthesize_track(bpm=120, sections=[("verse", 30, 0.6)], seed=3)  # one bar, 30 times
    l_st = _structure(_inputs(loop))
    c_song = section_confidence(song_structure)
    c_noise, c_loop = section_confidence(n_st), section_confidence(l_st)
    assert c_song >= 0.5, c_song
    assert c_noise < 0.3 and c_loop < 0.3, (c_noise, c_loop)
    assert c_song > c_noise + 0.3 and c_song > c_loop + 0.3
    # one repeated bar has no boundary worth keeping
    assert len(l_st.bounds) <= 3, l_st.bounds


def test_checkerboard_novelty_peaks_at_a_block_change_and_not_at_the_ends():
    s = np.full((60, 60), 0.1)
    s[:25, :25] = s[25:, 25:] = 0.9
    nov = foote_novelty(s, 8)
    assert int(np.argmax(nov)) == 25
    assert nov[0] == 0.0 and nov[-1] < 0.05 * nov.max()
