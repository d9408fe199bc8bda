"""Variants, export packs and expanding a Canvas to a video, under the session's Prefect server."""

from __future__ import annotations

import json
import zipfile

import pytest

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.slow]


@pytest.fixture(scope="module")
def short_song(tmp_path_factory):
    from beatframe.music.synth import synthesize_track, write_wav

    track = synthesize_track(bpm=120.0, seed=5, sections=[("verse", 2, 0.5), ("chorus", 2, 0.9)], tail=0.5)
    return write_wav(tmp_path_factory.mktemp("short") / "short.wav", track)


def test_variants_render_in_parallel_each_with_its_manifest(song, tmp_path):
    from beatframe.flows.variants import render_variants

    summary = render_variants(audio=str(song), out_dir=str(tmp_path), kind="canvas", count=2,
                              templates=["aurora-particles", "mono-grid"], seed=4)
    assert summary["failed"] == 0
    manifests = [json.loads((tmp_path / v["label"] / "manifest.json").read_text()) for v in summary["variants"]]
    assert [m["template"]["name"] for m in manifests] == ["aurora-particles", "mono-grid"]
    assert [m["generator"]["seed"] for m in manifests] == [4, 5]
    assert manifests[0]["outputs"][0]["sha256"] != manifests[1]["outputs"][0]["sha256"]
    assert (tmp_path / "variants.json").exists()


def test_export_pack_targets_all_pass_their_spec_and_are_zipped(short_song, tmp_path):
    from beatframe.flows.pack import render_pack

    pack = render_pack(audio=str(short_song), out_dir=str(tmp_path / "pack"), template="sunset-waves")
    assert pack["complete"]
    sizes = {t["target"]: (t["width"], t["height"]) for t in pack["targets"]}
    assert sizes == {"canvas": (720, 1280), "shorts": (1080, 1920), "square": (1080, 1080),
                     "video": (1920, 1080), "poster": (1920, 1080)}
    assert all(t["spec_ok"] for t in pack["targets"])
    assert [t["has_audio"] for t in pack["targets"] if t["target"] != "poster"] == [False, True, True, True]
    with zipfile.ZipFile(tmp_path / "pack.zip") as zf:
        names = set(zf.namelist())
    assert {"pack/pack.json", "pack/poster.jpg", "pack/canvas/canvas.mp4", "pack/shorts/video.mp4",
            "pack/square/video.mp4", "pack/video/video.mp4"} <= names


def test_a_canvas_expands_to_a_video_in_the_same_style(short_song, tmp_path):
    from beatframe.cli import main
    from beatframe.flows.canvas import render_canvas

    render_canvas(audio=str(short_song), out_dir=str(tmp_path / "canvas"), template="mono-grid", seed=11, seconds=4)
    code = main(["video", str(short_song), "--like", str(tmp_path / "canvas" / "manifest.json"),
                 "--size", "640x360", "--out", str(tmp_path / "video")])
    assert code == 0
    video = json.loads((tmp_path / "video" / "manifest.json").read_text())
    assert video["template"]["name"] == "mono-grid" and video["generator"]["seed"] == 11
    assert main(["video", str(short_song), "--like", str(tmp_path / "nope.json")]) == 2


# --- bad input through the CLI: exit 2, one line, nothing written --------------------------------

def assert_refused(proc, *leftovers) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("beatframe: error:"), proc.stderr
    assert not [path for path in leftovers if path.exists()]


@pytest.mark.parametrize("case", ["empty", "not_audio", "silence", "missing", "no_templates", "unknown_template",
                                  "count", "seed"])
def test_bad_variants_exit_2_before_anything_is_written(short_song, tmp_path, case):
    from test_canvas_flow import run_cli, write_bad_inputs

    bad = write_bad_inputs(tmp_path)
    audio, args = {
        "empty": (bad["empty"], []), "not_audio": (bad["not_audio"], []), "silence": (bad["silence"], []),
        "missing": (tmp_path / "nope.wav", []),
        "no_templates": (short_song, ["--templates", " , "]),
        "unknown_template": (short_song, ["--templates", "mono-grid,no-such-template"]),
        "count": (short_song, ["--count", "0"]),
        # the first seed is valid, the second variant's is not
        "seed": (short_song, ["--seed", str(2**32 - 1), "--count", "2"]),
    }[case]
    out = tmp_path / "variants"
    assert_refused(run_cli("variants", str(audio), "--out", str(out), *args, cwd=tmp_path), out)


@pytest.mark.parametrize("case", ["empty", "lying_header", "unknown_template", "seed", "cover", "out_is_a_file"])
def test_bad_pack_exits_2_before_anything_is_written(short_song, tmp_path, case):
    from test_canvas_flow import run_cli, write_bad_inputs

    bad = write_bad_inputs(tmp_path)
    fake_cover = tmp_path / "cover.png"
    fake_cover.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    out = tmp_path / "pack"
    audio, args = {
        "empty": (bad["empty"], []), "lying_header": (bad["lying_header"], []),
        "unknown_template": (short_song, ["--template", "no-such-template"]),
        "seed": (short_song, ["--seed", "-1"]),
        "cover": (short_song, ["--cover", str(fake_cover)]),
        "out_is_a_file": (short_song, ["--out", str(a_file)]),
    }[case]
    proc = run_cli("pack", str(audio), "--out", str(out), *args, cwd=tmp_path)
    assert_refused(proc, out, tmp_path / "pack.zip", tmp_path / "out")
    assert a_file.read_text() == "x"


def test_a_catalog_with_an_unknown_template_exits_2_before_anything_is_written(short_song, tmp_path):
    from test_canvas_flow import run_cli

    listing = tmp_path / "tracks.csv"
    listing.write_text(f"path,template\n{short_song},mono-grid\n{short_song},no-such-template\n")
    out = tmp_path / "catalog"
    for args in ([str(listing)], [str(short_song.parent), "--template", "no-such-template"],
                 [str(tmp_path / "no-such-folder")]):
        assert_refused(run_cli("catalog", *args, "--out", str(out), cwd=tmp_path), out)
