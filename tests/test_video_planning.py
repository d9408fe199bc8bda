"""Video shot planning on hand-built analyses: shots cover every frame and cut on bar lines."""

from __future__ import annotations

import numpy as np
import pytest

from beatframe.infra.errors import BadInputError
from beatframe.music.video import parse_video_size
from beatframe.music.video_planning import plan_video, shot_timeline
from test_planning import make_analysis


def test_shots_cover_every_frame_and_cut_on_downbeats():
    analysis = make_analysis(duration=60.0)
    shots = plan_video(analysis)
    assert shots[0].first_frame == 0 and shots[-1].last_frame == round(60.0 * 30)
    assert all(a.last_frame == b.first_frame for a, b in zip(shots, shots[1:]))
    downbeat_frames = {round(d * 30) for d in analysis.downbeats}
    assert all(shot.first_frame in downbeat_frames for shot in shots[1:])


def test_loud_sections_cut_faster_and_section_changes_get_transitions():
    analysis = make_analysis(duration=60.0)
    shots = plan_video(analysis)
    mean_len = {label: np.mean([s.frames for s in shots if s.section == label]) for label in ("verse", "chorus")}
    assert mean_len["chorus"] < mean_len["verse"]
    starts = {s.section: s for s in reversed(shots)}  # first shot of each section
    assert starts["chorus"].transition_in == "zoom" and starts["chorus"].transition_frames > 0
    inner = [s for s in shots if s.transition_in == "cut"]
    assert inner and all(s.transition_frames == 0 for s in inner)
    assert all(s.transition_in == "cut" for s in plan_video(analysis, transitions=False))


def test_shot_timeline_is_in_shot_time():
    analysis = make_analysis(duration=60.0)
    shot = plan_video(analysis)[3]
    timeline = shot_timeline(analysis, first_frame=shot.first_frame, frames=shot.frames, section=shot.section,
                             energy=shot.energy)
    assert timeline.n_frames == shot.frames and not timeline.periodic
    assert 0 <= min(timeline.beats) and max(timeline.beats) < shot.frames / 30


@pytest.mark.parametrize("text, expected", [("1920x1080", (1920, 1080)), ("1080x1920", (1080, 1920)),
                                            ("1080x1080", (1080, 1080)), ("640x360", (640, 360))])
def test_video_sizes(text, expected):
    assert parse_video_size(text) == expected


@pytest.mark.parametrize("text", ["1920x1000", "big", "100000x56250", "321x321"])
def test_bad_video_sizes(text):
    with pytest.raises(BadInputError):
        parse_video_size(text)


def test_a_section_shorter_than_a_bar_gets_no_shot_of_its_own():
    analysis = make_analysis(duration=50.0, sections=[(0.0, 16.25, "verse", 0.4), (16.25, 48.25, "chorus", 0.9),
                                                      (48.25, 50.0, "silence", 0.0)])
    shots = plan_video(analysis)
    assert shots[-1].section == "chorus" and shots[-1].last_frame == 1500


def test_a_silent_tail_holds_the_last_shot():
    analysis = make_analysis(duration=60.0, sections=[(0.0, 16.25, "verse", 0.4), (16.25, 52.25, "chorus", 0.9),
                                                      (52.25, 60.0, "silence", 0.0)])
    shots = plan_video(analysis)
    assert shots[-1].section == "chorus" and shots[-1].last_frame == 1800
