"""The analysis's confidence block and the user's corrections (hints), on synthesized audio."""

from __future__ import annotations

import numpy as np
import pytest

from beatframe.infra.errors import BadInputError
from beatframe.music.analysis import analyze_array
from beatframe.music.analysis.confidence import agreement
from beatframe.music.schemas import Analysis, AnalysisHints
from beatframe.music.synth import synthesize_track

SECTIONS = [("verse", 6, 0.6), ("chorus", 6, 0.9)]


@pytest.fixture(scope="module")
def track():
    return synthesize_track(bpm=100, meter=4, seed=21, sections=SECTIONS)


@pytest.fixture(scope="module")
def estimated(track):
    return analyze_array(track.y, track.sample_rate)


def near(times, truth, tol=0.07) -> np.ndarray:
    truth = np.asarray(truth)
    return np.array([np.min(np.abs(truth - t)) <= tol for t in times])


def test_agreement_is_the_beat_f_measure_of_one_list_against_the_other():
    a = np.arange(0.5, 20, 0.5)
    assert agreement(a, a) == 1.0
    assert agreement(a, a + 0.1) == 0.0  # outside +-70 ms
    assert agreement(a, a + 0.05) == 1.0
    assert agreement(a, a[::2]) == pytest.approx(2 * len(a[::2]) / (len(a) + len(a[::2])))
    assert agreement(a, np.zeros(0)) == 0.0


def test_a_steady_beat_gets_high_confidence(estimated):
    c = estimated.confidence
    assert c.beats >= 0.8 and c.tempo >= 0.5 and c.downbeats >= 0.5
    assert all(0.0 <= v <= 1.0 for v in c.model_dump().values())
    assert estimated.corrected == []


def test_no_pulse_gets_low_beat_confidence(estimated):
    sr = 22050
    rng = np.random.default_rng(3)
    noise = (0.2 * rng.standard_normal(sr * 20)).astype(np.float32)
    clicks = np.zeros(sr * 20, dtype=np.float32)
    burst = (rng.standard_normal(400) * np.exp(-np.arange(400) / 80.0)).astype(np.float32)
    for t in np.sort(rng.uniform(0, 19.5, 40)):  # scattered clicks, no steady pulse
        i = int(t * sr)
        clicks[i:i + 400] += burst
    for y in (noise, clicks):
        c = analyze_array(y, sr).confidence
        assert c.beats < 0.45 and c.tempo < 0.45
        assert c.beats < estimated.confidence.beats - 0.4


def test_bpm_hint_retracks_the_beats_at_that_tempo(track, estimated):
    assert abs(estimated.bpm - 100) < 2
    a = analyze_array(track.y, track.sample_rate, hints=AnalysisHints(bpm=50))
    assert a.bpm == 50.0 and a.corrected == ["bpm"] and a.confidence.tempo == 1.0
    ibi = np.diff(a.beats)
    assert abs(np.median(ibi) - 1.2) < 0.03  # every other beat, not the old grid relabelled
    assert near(a.beats, track.beats).mean() >= 0.95  # and still on the music's beats
    assert len(a.beats) < 0.6 * len(estimated.beats)
    Analysis.model_validate(a.to_json_dict())


def test_meter_hint_fixes_the_bar_length(track):
    a = analyze_array(track.y, track.sample_rate, hints=AnalysisHints(meter=3))
    assert a.meter == 3 and a.corrected == ["meter"]
    idx = [a.beats.index(d) for d in a.downbeats]
    assert set(np.diff(idx)) == {3}


def test_downbeat_hint_sets_the_bar_phase(track, estimated):
    # the truth's second beat as "a downbeat": the bars now start one beat later
    a = analyze_array(track.y, track.sample_rate,
                      hints=AnalysisHints(downbeat=float(track.beats[1]) + 0.02))
    assert a.corrected == ["downbeat"] and a.confidence.downbeats == 1.0
    assert a.meter == estimated.meter
    assert near(a.downbeats, track.beats[1::a.meter]).all()
    assert not near(a.downbeats, track.downbeats).any()


def test_beat_list_hint_replaces_the_grid_and_its_positions_give_the_bars(track):
    beats = list(np.round(np.arange(0.25, 14.0, 0.5), 4))
    positions = [(i % 3) + 1 for i in range(len(beats))]
    a = analyze_array(track.y, track.sample_rate,
                      hints=AnalysisHints(beats=beats, beat_positions=positions))
    assert a.beats == beats and a.bpm == 120.0 and a.meter == 3
    assert a.downbeats == beats[::3]
    assert a.corrected == ["beats"] and a.confidence.beats == 1.0 and a.confidence.tempo == 1.0
    # without positions the bars are estimated on the given grid
    b = analyze_array(track.y, track.sample_rate, hints=AnalysisHints(beats=beats, meter=4))
    assert b.beats == beats and b.meter == 4 and set(b.downbeats) <= set(beats)
    assert b.corrected == ["meter", "beats"]


def test_beat_list_beyond_the_track_is_bad_input(track):
    with pytest.raises(BadInputError, match="at least two"):
        analyze_array(track.y, track.sample_rate, hints=AnalysisHints(beats=[500.0, 501.0]))


@pytest.mark.parametrize("bad, match", [
    (dict(bpm=10), "greater than or equal to 30"),
    (dict(meter=1), "greater than or equal to 2"),
    (dict(beats=[1.0]), "at least two"),
    (dict(beats=[2.0, 1.0]), "strictly increasing"),
    (dict(beats=[1.0, 2.0], beat_positions=[1]), "one position per beat"),
    (dict(beat_positions=[1, 2]), "needs beats"),
    (dict(beats=[1.0, 2.0], bpm=120), "either bpm or beats"),
])
def test_hints_are_validated(bad, match):
    with pytest.raises(ValueError, match=match):
        AnalysisHints(**bad)


def test_version_1_documents_still_validate(estimated):
    doc = estimated.to_json_dict()
    assert doc["schema"] == "beatframe.analysis/2"
    old = {k: v for k, v in doc.items() if k not in ("confidence", "corrected")}
    old["schema"] = "beatframe.analysis/1"
    a = Analysis.model_validate(old)
    assert a.confidence is None and a.corrected == []


def test_a_downbeat_after_the_end_is_bad_input(track):
    with pytest.raises(BadInputError, match="after the track's end"):
        analyze_array(track.y, track.sample_rate, hints=AnalysisHints(downbeat=500.0))
