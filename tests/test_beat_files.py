"""Beat files as users bring them (``beatframe … --beats FILE``): plain times, CSV, ``.beats`` with bar
positions, JAMS ``beat`` and ``beat_position``; every bad file is one BadInputError line naming the
file by its name only (no server path)."""

from __future__ import annotations

import json

import pytest

from beatframe.infra.errors import BadInputError
from beatframe.music.analysis.hints import MAX_BEAT_FILE_BYTES, parse_beats, read_beat_file
from beatframe.music.schemas import MAX_HINT_BEATS, AnalysisHints

TIMES = [0.5, 1.0, 1.5, 2.0, 2.5]


def write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_plain_times_with_comments_blank_lines_and_a_bom(tmp_path):
    text = "\ufeff# beats tapped in an editor\n0.5\n\n1.0\n1.5   # a comment after the time\n2.0\n2.5\n"
    hints = read_beat_file(write(tmp_path, "song.txt", text))
    assert isinstance(hints, AnalysisHints)
    assert hints.beats == TIMES and hints.beat_positions is None
    assert hints.given() == ["beats"]


@pytest.mark.parametrize("text", [
    "time,label\n0.5,a\n1.0,b\n1.5,c\n2.0,d\n2.5,e\n",      # a header, the time in the first column
    "time\n0.5\n1.0\n1.5\n2.0\n2.5\n",
    "0.5;x\n1.0;x\n1.5;x\n2.0;x\n2.5;x\n",                # semicolons
])
def test_csv_with_a_header(tmp_path, text):
    hints = read_beat_file(write(tmp_path, "beats.csv", text))
    assert hints.beats == TIMES and hints.beat_positions is None


@pytest.mark.parametrize("sep", ["\t", " ", ","])
def test_dot_beats_file_with_bar_positions(tmp_path, sep):
    rows = [(0.5, 3), (1.0, 1), (1.5, 2), (2.0, 3), (2.5, 1)]  # a pickup beat, then 3/4
    text = "".join(f"{t}{sep}{p}\n" for t, p in rows)
    hints = read_beat_file(write(tmp_path, "song.beats", text))
    assert hints.beats == TIMES and hints.beat_positions == [3, 1, 2, 3, 1]


def _jams(annotations: list[dict]) -> str:
    return json.dumps({"file_metadata": {"duration": 3.0}, "annotations": annotations, "sandbox": {}})


def test_jams_beat_annotation(tmp_path):
    data = [{"time": t, "duration": 0.0, "value": i + 1, "confidence": 1.0} for i, t in enumerate(TIMES)]
    text = _jams([{"namespace": "chord", "data": [{"time": 0, "duration": 1, "value": "C:maj"}]},
                  {"namespace": "beat", "data": data}])
    hints = read_beat_file(write(tmp_path, "song.jams", text))
    assert hints.beats == TIMES and hints.beat_positions is None  # a beat's value is no bar position


def test_jams_beat_position_annotation_gives_the_bars(tmp_path):
    positions = [4, 1, 2, 3, 4]
    data = [{"time": t, "duration": 0.0, "confidence": 1.0,
             "value": {"position": p, "measure": 1, "num_beats": 4, "beat_units": 4}}
            for t, p in zip(TIMES, positions)]
    hints = read_beat_file(write(tmp_path, "song.jams", _jams([{"namespace": "beat_position", "data": data}])))
    assert hints.beats == TIMES and hints.beat_positions == positions


def test_jams_column_wise_layout(tmp_path):
    data = {"time": TIMES, "duration": [0.0] * 5, "value": [1] * 5, "confidence": [1.0] * 5}
    hints = read_beat_file(write(tmp_path, "song.jams", _jams([{"namespace": "beat", "data": data}])))
    assert hints.beats == TIMES


def test_parse_beats_reads_text_as_the_files_are_read():
    assert parse_beats("0.5\n1.0\n1.5\n", name="tapped").beats == [0.5, 1.0, 1.5]
    with pytest.raises(BadInputError, match="tapped"):
        parse_beats("1.0\n0.5\n", name="tapped")


@pytest.mark.parametrize("name, content, problem", [
    ("empty.txt", "", "no beat times"),
    ("blank.txt", "\n\n# only a comment\n", "no beat times"),
    ("words.txt", "0.5\none\n1.5\n", "line 2: 'one' is not a time"),
    ("header-only.csv", "time,label\n", "no beat times"),
    ("decreasing.txt", "0.5\n1.5\n1.0\n", "strictly increasing"),
    ("repeated.txt", "0.5\n0.5\n1.0\n", "strictly increasing"),
    ("negative.txt", "-0.5\n0.5\n1.0\n", "not negative"),
    ("one.txt", "0.5\n", "at least two"),
    ("infinite.txt", "0.5\ninf\n", "not finite"),
    ("half-positions.beats", "0.5 1\n1.0\n1.5 3\n", "line 2: the bar position is missing"),
    ("fraction.beats", "0.5 1\n1.0 2.5\n", "whole number"),
    ("thirteen.beats", "0.5 1\n1.0 13\n", "between 1 and 12"),
    ("latin1.txt", "0.5\n1.0 # caf\xe9\n".encode("latin-1"), "not UTF-8"),
    ("binary.bin", bytes(range(256)) * 4, "not UTF-8"),
    ("nul.txt", b"\x00\x01\x02\x03\n\x00\x00\n", "not a time"),
    ("broken.jams", '{"annotations": [', "not valid JSON"),
    ("other.json", '{"beats": [0.5, 1.0]}', "not JAMS"),
    ("chords.jams", _jams([{"namespace": "chord", "data": []}]), "no beat or beat_position annotation"),
    ("empty.jams", _jams([{"namespace": "beat", "data": []}]), "annotation is empty"),
    ("no-time.jams", _jams([{"namespace": "beat", "data": [{"value": 1}]}]), "no numeric time"),
    ("no-position.jams", _jams([{"namespace": "beat_position", "data": [{"time": 0.5, "value": 1}]}]),
     "no bar position"),
])
def test_bad_beat_files_are_one_line_naming_the_file(tmp_path, name, content, problem):
    with pytest.raises(BadInputError) as raised:
        read_beat_file(write(tmp_path, name, content))
    message = str(raised.value)
    assert problem in message, message
    assert name in message and str(tmp_path) not in message
    assert "\n" not in message


def test_missing_file_and_a_folder(tmp_path):
    for path in (tmp_path / "nope.beats", tmp_path):
        with pytest.raises(BadInputError, match="does not exist or is not a file") as raised:
            read_beat_file(path)
        assert str(tmp_path.parent) not in str(raised.value)


def test_too_big_files_are_refused_before_reading(tmp_path):
    big = tmp_path / "huge.txt"
    with open(big, "wb") as f:
        f.truncate(MAX_BEAT_FILE_BYTES + 1)
    with pytest.raises(BadInputError, match="larger than 2 MB"):
        read_beat_file(big)


def test_too_many_beats_are_refused(tmp_path):
    text = "".join(f"{i * 0.1:.1f}\n" for i in range(MAX_HINT_BEATS + 1))
    assert len(text.encode()) < MAX_BEAT_FILE_BYTES
    with pytest.raises(BadInputError, match=f"at most {MAX_HINT_BEATS}"):
        read_beat_file(write(tmp_path, "many.txt", text))
    positions = "".join(f"{i * 0.1:.1f}\t{i % 4 + 1}\n" for i in range(MAX_HINT_BEATS))
    assert len(read_beat_file(write(tmp_path, "most.beats", positions)).beats) == MAX_HINT_BEATS


def test_a_csv_second_column_that_is_not_a_bar_position_is_ignored():
    hints = parse_beats("time,confidence\n0.5,0.93\n1.0,0.88\n1.5,1\n", name="beats.csv")
    assert hints.beats == [0.5, 1.0, 1.5] and hints.beat_positions is None
    # whole numbers 1-12 on every line of a plain file are bar positions
    hints = parse_beats("0.5 1\n1.0 2\n1.5 1\n", name="beats.txt")
    assert hints.beat_positions == [1, 2, 1]
