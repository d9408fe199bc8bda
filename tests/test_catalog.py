"""Catalogs: reading folders and CSVs, and the catalog flow where one bad track fails alone."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from beatframe.music.catalog import read_catalog
from beatframe.infra.errors import BadInputError

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
pytestmark = pytest.mark.slow


def test_a_folder_lists_its_audio_files_with_safe_distinct_folders(tmp_path):
    for name in ("b.wav", "a.mp3", "notes.txt", "a.flac"):
        (tmp_path / name).write_bytes(b"x")
    entries = read_catalog(tmp_path)
    assert [e.folder for e in entries] == ["a", "a-2", "b"]


def test_a_csv_carries_metadata_and_resolves_relative_paths(tmp_path):
    (tmp_path / "t.csv").write_text("path,title,artist,isrc,template\n"
                                    "songs/one.wav,One / Two,The Band,US-RC1-76-07839,mono-grid\n"
                                    "/abs/two.mp3,,,,\n")
    first, second = read_catalog(tmp_path / "t.csv")
    assert first.audio == str(tmp_path / "songs" / "one.wav") and first.folder == "One-Two"
    assert first.metadata == {"title": "One / Two", "artist": "The Band", "isrc": "USRC17607839"}
    assert first.template == "mono-grid" and second.audio == "/abs/two.mp3" and second.folder == "two"


@pytest.mark.parametrize("text, message", [
    ("file,title\nx.wav,X\n", "needs a 'path' column"),
    ("path,title\n,X\n", "path is empty"),
    ("path,isrc\nx.wav,NOTANISRC\n", "not an ISRC"),
    ("path\n", "lists no tracks"),
])
def test_bad_csvs_are_named(tmp_path, text, message):
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(BadInputError, match=message):
        read_catalog(tmp_path / "bad.csv")


def test_missing_and_empty_sources(tmp_path):
    with pytest.raises(BadInputError, match="does not exist"):
        read_catalog(tmp_path / "nope")
    with pytest.raises(BadInputError, match="no audio files"):
        read_catalog(tmp_path)


@pytest.mark.usefixtures("prefect_server")
def test_catalog_with_a_corrupt_track_completes_the_others_and_reruns_from_cache(song, tmp_path, prefect_server):
    import httpx

    from beatframe.flows.catalog import render_catalog

    tracks = tmp_path / "tracks"
    tracks.mkdir()
    shutil.copy(song, tracks / "first.wav")
    shutil.copy(song, tracks / "second.wav")
    (tracks / "broken.wav").write_bytes(song.read_bytes()[:3000])
    out = tmp_path / "out"
    summary = render_catalog(source=str(tracks), out_dir=str(out), kind="canvas")
    assert (summary["succeeded"], summary["failed"]) == (2, 1)
    broken = [t for t in summary["tracks"] if t["status"] == "failed"][0]
    assert broken["folder"] == "broken" and "broken.wav" in broken["reason"]
    assert not (out / "broken").exists()
    for name in ("first", "second"):
        assert {p.name for p in (out / name).iterdir()} == {"canvas.mp4", "canvas.jpg", "manifest.json"}
    assert json.loads((out / "catalog.json").read_text())["failed"] == 1

    state = render_catalog(source=str(tracks), out_dir=str(out), kind="canvas", return_state=True)
    rerun = state.result()
    assert rerun["succeeded"] == 2
    flows = httpx.post(f"{prefect_server}/flow_runs/filter", json={
        "flow_runs": {"parent_flow_run_id": {"any_": [str(state.state_details.flow_run_id)]}},
        "limit": 50, "offset": 0, "sort": "ID_DESC"}, timeout=30).json()
    children = [f["id"] for f in flows]
    from conftest import settled_task_runs

    runs = settled_task_runs(prefect_server, children, names=("analyze", "generate-canvas-clip"))
    generated = [r["state"]["name"] for r in runs]
    # The two finished tracks are served from cache; only the broken one is tried (and fails) again.
    assert generated.count("Cached") == 4 and set(generated) == {"Cached", "Failed"}


@pytest.mark.usefixtures("prefect_server")
def test_cli_catalog_exit_status_says_a_track_failed(song, tmp_path):
    tracks = tmp_path / "tracks"
    tracks.mkdir()
    shutil.copy(song, tracks / "good.wav")
    (tracks / "bad.wav").write_text("not audio at all")
    proc = subprocess.run([sys.executable, "-m", "beatframe.cli", "catalog", str(tracks), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "1 of 2 tracks failed" in proc.stderr and "FAILED  bad" in proc.stdout
