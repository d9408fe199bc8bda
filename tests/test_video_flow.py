"""The music-video flow end to end (small frames to stay fast) under the session's Prefect server."""

from __future__ import annotations

import json

import numpy as np
import pytest

from beatframe.music.check import audio_codecs, probe
from beatframe.music.schemas import Manifest

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.slow]


@pytest.fixture(scope="module")
def video_render(song, tmp_path_factory):
    from beatframe.flows.video import render_video

    out = tmp_path_factory.mktemp("video")
    manifest = render_video(audio=str(song), out_dir=str(out), template="sunset-waves", size="640x360", seed=3)
    return out, manifest


def test_video_has_the_tracks_length_audio_and_spec(video_render, song_truth):
    out, manifest = video_render
    Manifest.model_validate(json.loads((out / "manifest.json").read_text()))
    facts = probe(out / "video.mp4")
    assert (facts.width, facts.height, facts.codec, facts.pix_fmt) == (640, 360, "h264", "yuv420p")
    assert abs(facts.duration - song_truth.duration) <= 0.1
    assert audio_codecs(out / "video.mp4") == ["aac"] and facts.faststart
    assert manifest["kind"] == "video" and manifest["checks"]["spec_ok"]
    assert manifest["segment"]["start"] == 0.0


def test_cuts_land_on_beats(video_render, song_truth):
    _, manifest = video_render
    cuts = [shot["start"] for shot in manifest["plan"]["shots"][1:]]
    assert cuts
    beats = np.asarray(song_truth.beats)
    on_beat = [np.min(np.abs(beats - c)) <= 1.0 / 30 + 1e-3 for c in cuts]
    assert np.mean(on_beat) >= 0.9


def test_rerun_renders_no_shot_again(video_render, song, tmp_path, prefect_server):
    from beatframe.flows.video import render_video

    out, _ = video_render
    state = render_video(audio=str(song), out_dir=str(tmp_path), template="sunset-waves", size="640x360", seed=3,
                         return_state=True)
    from conftest import settled_task_runs

    runs = settled_task_runs(prefect_server, [state.state_details.flow_run_id], names=("generate-shot",))
    shot_states = [r["state"]["name"] for r in runs]
    assert shot_states and set(shot_states) == {"Cached"}
    assert (tmp_path / "video.mp4").read_bytes() == (out / "video.mp4").read_bytes()
