"""Corrections of the analysis on the command line: ``--bpm``, ``--downbeat``, ``--meter`` and ``--beats
FILE`` override the estimate (``beatframe analyze``, and every command that renders: canvas,
video, variants, pack); bad values exit 2 with one line before anything runs.

The track is synthesized: 12 s of 4/4 at 120 BPM, first beat at 0.5 s (beats every 0.5 s,
downbeats every 2 s), so the estimate and every correction are known exactly.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from beatframe.cli import main
from beatframe.music.schemas import Analysis

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture(scope="module")
def short_song(tmp_path_factory):
    from beatframe.music.synth import synthesize_track, write_wav

    track = synthesize_track(bpm=120.0, meter=4, seed=5, sections=[("verse", 2, 0.5), ("chorus", 3, 0.9)])
    return write_wav(tmp_path_factory.mktemp("hints-audio") / "short.wav", track)


def analyze_json(capsys, *args: str) -> Analysis:
    """``beatframe analyze --json`` in this process: the validated analysis (exit 0, no stderr noise)."""
    capsys.readouterr()
    assert main(["analyze", *args, "--json"]) == 0, capsys.readouterr().err
    return Analysis.model_validate(json.loads(capsys.readouterr().out))


@pytest.fixture(scope="module")
def estimate(short_song):
    from beatframe.flows.analyze import analyze_track

    return Analysis.model_validate(analyze_track(audio=str(short_song)))


def test_the_estimate_is_uncorrected_and_the_json_is_schema_2(capsys, short_song, estimate):
    analysis = analyze_json(capsys, str(short_song))
    assert analysis.schema_ == "beatframe.analysis/2" and analysis.corrected == []
    assert analysis.meter == 4 and abs(analysis.bpm - 120) < 1
    assert analysis.beats == estimate.beats


def test_meter(capsys, short_song, estimate):
    analysis = analyze_json(capsys, str(short_song), "--meter", "3")
    assert analysis.meter == 3 and analysis.corrected == ["meter"]
    assert analysis.beats == estimate.beats  # the beats stay, the bars are counted in threes
    bars = np.diff([analysis.beats.index(d) for d in analysis.downbeats])
    assert set(bars.tolist()) == {3}


def test_bpm_tracks_the_beats_again_at_that_tempo(capsys, short_song):
    analysis = analyze_json(capsys, str(short_song), "--bpm", "60")
    assert analysis.corrected == ["bpm"] and abs(analysis.bpm - 60) < 1
    # not a relabelled number: the beat grid itself is at 60 BPM, on the music's beats
    assert np.median(np.diff(analysis.beats)) == pytest.approx(1.0, abs=0.02)
    assert all(abs((b - 0.5) / 0.5 - round((b - 0.5) / 0.5)) < 0.05 for b in analysis.beats)


def test_downbeat_sets_the_bar_phase(capsys, short_song, estimate):
    second_beat = estimate.beats[1]
    assert second_beat not in estimate.downbeats
    analysis = analyze_json(capsys, str(short_song), "--downbeat", f"{second_beat:.3f}")
    assert analysis.corrected == ["downbeat"] and second_beat in analysis.downbeats
    assert analysis.meter == 4 and estimate.beats[5] in analysis.downbeats


def test_downbeat_and_meter_together(capsys, short_song, estimate):
    analysis = analyze_json(capsys, str(short_song), "--downbeat", "1.0", "--meter", "3")
    assert analysis.corrected == ["downbeat", "meter"] and analysis.meter == 3
    assert estimate.beats[1] in analysis.downbeats and estimate.beats[4] in analysis.downbeats


def test_beats_file_with_bar_positions_replaces_the_grid(capsys, short_song, tmp_path):
    # a half-time grid in 3/4, as an editor would have annotated it: positions 1 2 3 1 2 3 …
    times = [0.5 + i for i in range(11)]
    (tmp_path / "grid.beats").write_text("".join(f"{t:.3f}\t{i % 3 + 1}\n" for i, t in enumerate(times)))
    analysis = analyze_json(capsys, str(short_song), "--beats", str(tmp_path / "grid.beats"))
    assert analysis.corrected == ["beats"]
    assert analysis.beats == times and analysis.downbeats == times[::3]
    assert analysis.meter == 3 and analysis.bpm == pytest.approx(60, abs=0.1)


@pytest.mark.parametrize("suffix, text", [
    ("txt", "".join(f"{0.5 + i:.3f}\n" for i in range(11))),
    ("jams", json.dumps({"annotations": [{"namespace": "beat", "data": [
        {"time": 0.5 + i, "duration": 0, "value": i % 4 + 1, "confidence": 1} for i in range(11)]}]})),
])
def test_plain_and_jams_beat_lists(capsys, short_song, tmp_path, suffix, text):
    (tmp_path / f"grid.{suffix}").write_text(text)
    analysis = analyze_json(capsys, str(short_song), "--beats", str(tmp_path / f"grid.{suffix}"), "--meter", "2")
    assert analysis.corrected == ["meter", "beats"]
    assert analysis.beats == [0.5 + i for i in range(11)] and analysis.meter == 2
    assert set(np.diff([analysis.beats.index(d) for d in analysis.downbeats]).tolist()) <= {2}


def test_text_summary_names_the_corrections(capsys, short_song):
    capsys.readouterr()
    assert main(["analyze", str(short_song), "--meter", "3"]) == 0
    out = capsys.readouterr().out
    assert "3/4" in out and "(corrected: meter)" in out


@pytest.mark.parametrize("args, problem", [
    (["--bpm", "20"], "--bpm 20: Input should be greater than or equal to 30"),
    (["--bpm", "301"], "--bpm 301: Input should be less than or equal to 300"),
    (["--bpm", "nan"], "--bpm nan: give a finite number"),
    (["--meter", "1"], "--meter 1: Input should be greater than or equal to 2"),
    (["--meter", "13"], "--meter 13: Input should be less than or equal to 12"),
    (["--downbeat", "-1"], "--downbeat -1: Input should be greater than or equal to 0"),
    (["--downbeat", "inf"], "--downbeat inf: give a finite number"),
    (["--bpm", "120", "--beats", "grid.txt"], "give either --bpm or --beats"),
    (["--beats", "missing.beats"], "beat file missing.beats does not exist"),
    (["--beats", "bad.txt"], "beat file bad.txt, line 2"),
    (["--beats", "backwards.txt"], "beats must be strictly increasing"),
])
@pytest.mark.parametrize("command", ["analyze", "canvas", "video", "variants", "pack"])
def test_bad_corrections_exit_2_with_one_line(capsys, short_song, tmp_path, monkeypatch, command, args, problem):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "grid.txt").write_text("0.5\n1.0\n")
    (tmp_path / "bad.txt").write_text("0.5\nlater\n")
    (tmp_path / "backwards.txt").write_text("1.0\n0.5\n")
    out = ["--out", str(tmp_path / "o")] if command != "analyze" else []
    capsys.readouterr()
    assert main([command, str(short_song), *args, *out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("beatframe: error: "), err
    assert problem in err[0], err
    assert not (tmp_path / "o").exists()


def test_unparseable_numbers_are_usage_errors(short_song):
    for args in (["--bpm", "fast"], ["--meter", "3.5"], ["--downbeat", "1,5"]):
        with pytest.raises(SystemExit) as exited:
            main(["analyze", str(short_song), *args])
        assert exited.value.code == 2


def test_every_rendering_command_takes_the_corrections():
    from beatframe.cli.main import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for command in ("analyze", "canvas", "video", "variants", "pack"):
        options = {o for a in sub.choices[command]._actions for o in a.option_strings}
        assert {"--bpm", "--downbeat", "--meter", "--beats"} <= options, command
