"""Canvas window planning and loop timelines, on hand-built analyses (no audio, no Prefect)."""

from __future__ import annotations

import numpy as np
import pytest

from beatframe.infra.errors import BadInputError
from beatframe.music.planning import LEAD_IN_SECONDS, loop_timeline, plan_canvas
from beatframe.music.schemas import Analysis


def make_analysis(*, bpm=120.0, meter=4, duration=60.0, sections=None, offset=0.25) -> Analysis:
    beat = 60.0 / bpm
    beats = [round(offset + i * beat, 4) for i in range(int((duration - offset) / beat))]
    downbeats = beats[::meter]
    sections = sections or [(0.0, 16.25, "intro", 0.2), (16.25, 32.25, "verse", 0.5),
                            (32.25, 48.25, "chorus", 0.9), (48.25, duration, "outro", 0.3)]
    rate = 10
    energy = np.zeros(int(duration * rate))
    for start, end, _, e in sections:
        energy[int(start * rate):int(end * rate)] = e
    return Analysis.model_validate({
        "schema": "beatframe.analysis/1",
        "audio": {"sha256": "0" * 64, "duration": duration, "sample_rate": 22050, "channels": 1},
        "bpm": bpm, "meter": meter, "beats": beats, "downbeats": downbeats,
        "sections": [{"start": s, "end": e, "label": lab, "energy": en} for s, e, lab, en in sections],
        "energy": {"rate": rate, "values": energy.tolist()},
        "onsets": beats, "vocals": [],
    })


def test_default_window_is_in_the_loudest_chorus_on_whole_bars():
    analysis = make_analysis()
    plan = plan_canvas(analysis, seconds=7.0)
    assert plan.section == "chorus"
    first_downbeat = plan.start + LEAD_IN_SECONDS
    assert 32.25 - 1e-6 <= first_downbeat and plan.end + LEAD_IN_SECONDS <= 48.25 + 1e-6
    assert plan.bars == 4 and plan.seconds == pytest.approx(8.0)  # 3.5 bars -> nearest whole (4)
    assert any(abs(first_downbeat - d) < 1e-6 for d in analysis.downbeats)


@pytest.mark.parametrize("bpm, meter, seconds", [(60, 4, 7), (84, 4, 7), (90, 3, 5), (140, 4, 3), (180, 4, 8),
                                                 (175, 2, 4)])
def test_loop_length_is_whole_bars_within_spotify_limits(bpm, meter, seconds):
    analysis = make_analysis(bpm=bpm, meter=meter)
    plan = plan_canvas(analysis, seconds=seconds)
    bar = meter * 60 / bpm
    assert 3.0 - 1e-6 <= plan.seconds <= 8.0 + 1e-6
    assert plan.seconds / bar == pytest.approx(plan.bars, abs=1e-3)


def test_start_forces_the_nearest_bar_line():
    analysis = make_analysis()
    plan = plan_canvas(analysis, seconds=4.0, start=10.1)
    assert plan.start + LEAD_IN_SECONDS == pytest.approx(10.25)


def test_rebound_uses_an_even_number_of_bars():
    plan = plan_canvas(make_analysis(bpm=100), seconds=7.0, loop_mode="rebound")
    assert plan.bars % 2 == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"seconds": 9}, "3-8"),
    ({"seconds": 2}, "3-8"),
    ({"start": 500.0}, "outside the track"),
])
def test_bad_requests_are_named(kwargs, message):
    with pytest.raises(BadInputError, match=message):
        plan_canvas(make_analysis(), **kwargs)


def test_a_track_shorter_than_a_canvas_is_refused():
    analysis = make_analysis(duration=2.5, sections=[(0.0, 2.5, "verse", 0.5)])
    with pytest.raises(BadInputError, match="at least 3 s"):
        plan_canvas(analysis)


def test_timeline_is_in_clip_time_and_periodic():
    analysis = make_analysis()
    plan = plan_canvas(analysis, seconds=8.0)
    timeline = loop_timeline(analysis, plan)
    assert timeline.n_frames == 240 and timeline.periodic
    assert timeline.beats[0] == pytest.approx(LEAD_IN_SECONDS) and len(timeline.beats) == 16
    assert np.allclose(np.diff(timeline.beats), 0.5)
    assert set(timeline.downbeats) <= set(timeline.beats)


def test_rebound_timeline_covers_the_first_half():
    analysis = make_analysis()
    plan = plan_canvas(analysis, seconds=8.0, loop_mode="rebound")
    timeline = loop_timeline(analysis, plan)
    assert timeline.n_frames == 121 and not timeline.periodic
    assert max(timeline.beats) < 4.0


def test_the_window_avoids_an_unsteady_stretch():
    analysis = make_analysis(sections=[(0.0, 60.0, "chorus", 0.8)])
    data = analysis.model_dump(by_alias=True)
    # Beats between 20 and 26 s wobble (a tracker's doubt or a rubato passage).
    data["beats"] = [b + (0.12 * np.sin(7 * b) if 20 <= b <= 26 else 0.0) for b in data["beats"]]
    data["downbeats"] = data["beats"][::4]
    data["energy"]["values"] = [0.8 + (0.1 if 200 <= i <= 260 else 0.0) for i in range(600)]
    plan = plan_canvas(Analysis.model_validate(data), seconds=6.0)
    assert plan.end <= 20.0 or plan.start >= 26.0


def test_rebound_order_mirrors_a_steady_beat_and_warps_to_a_late_one():
    from beatframe.music.planning import rebound_order

    analysis = make_analysis()
    plan = plan_canvas(analysis, seconds=8.0, loop_mode="rebound")
    order = rebound_order(analysis, plan)
    half = round(plan.seconds * 30) // 2
    assert len(order) == 2 * half and order[:half + 1] == list(range(half + 1))
    backward = np.array(order[half + 1:])
    assert np.all(np.diff(backward) <= 0) and backward.min() >= 1
    plain = np.arange(half - 1, 0, -1)
    assert np.abs(backward - plain).max() <= 1  # a steady beat is (nearly) a plain mirror

    data = analysis.model_dump(by_alias=True)
    late = [b for b in data["beats"] if plan.start + plan.seconds * 0.6 < b < plan.end][0]
    data["beats"] = [b + 0.08 if b == late else b for b in data["beats"]]
    warped = np.array(rebound_order(Analysis.model_validate(data), plan)[half + 1:])
    assert np.all(np.diff(warped) <= 0) and not np.array_equal(warped, backward)


def test_the_window_prefers_the_songs_own_tempo():
    analysis = make_analysis(sections=[(0.0, 60.0, "chorus", 0.8)])
    data = analysis.model_dump(by_alias=True)
    # An evenly slower stretch (a ritardando held for a while) between 30 and 45 s.
    data["beats"] = [b if b < 30 else 30 + (b - 30) * 1.1 for b in data["beats"] if b < 45]
    data["beats"] += [b for b in np.arange(data["beats"][-1] + 0.5, 59.5, 0.5)]
    data["downbeats"] = data["beats"][::4]
    data["energy"]["values"] = [0.8 + (0.1 if 300 <= i <= 450 else 0.0) for i in range(600)]
    plan = plan_canvas(Analysis.model_validate(data), seconds=6.0)
    assert plan.end <= 30.5 or plan.start >= 45.0
