"""The Canvas flow end to end under the session's Prefect test server.

Covers the output spec and manifest, the loop seam, determinism, the cache on rerun, the cost
artifact, and bad inputs through the CLI (exit 2, one line, nothing half-written).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from beatframe.music.check import decode_small, seam_ratio
from beatframe.music.schemas import Manifest

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.slow]

MANIFEST_FIELDS = {"schema", "id", "kind", "created_at", "source", "segment", "analysis", "template",
                   "generator", "plan", "loop", "outputs", "checks", "cost", "licensing", "provenance"}


def frame_hashes(path: Path) -> list[str]:
    import av

    with av.open(str(path)) as container:
        return [hashlib.sha256(f.to_ndarray(format="rgb24").tobytes()).hexdigest()
                for f in container.decode(video=0)]


@pytest.fixture(scope="module")
def first_render(song, tmp_path_factory):
    from beatframe.flows.canvas import render_canvas

    out = tmp_path_factory.mktemp("canvas")
    state = render_canvas(audio=str(song), out_dir=str(out), template="neon-pulse", seconds=4.0, seed=7,
                          return_state=True)
    return out, state


def test_canvas_meets_spec_and_manifest_is_complete(first_render):
    out, state = first_render
    assert state.is_completed()
    manifest = json.loads((out / "manifest.json").read_text())
    assert MANIFEST_FIELDS <= set(manifest)
    Manifest.model_validate(manifest)
    assert manifest["kind"] == "canvas" and manifest["checks"]["spec_ok"]
    assert manifest["segment"]["end"] - manifest["segment"]["start"] == pytest.approx(4.0, abs=0.05)
    assert manifest["plan"]["shots"][0]["section"] == "chorus"
    video = manifest["outputs"][0]
    assert (video["width"], video["height"], video["codec"], video["has_audio"]) == (720, 1280, "h264", False)
    assert video["sha256"] == hashlib.sha256((out / "canvas.mp4").read_bytes()).hexdigest()
    assert (out / "canvas.jpg").read_bytes()[:2] == b"\xff\xd8"
    assert {line["stage"] for line in manifest["cost"]["lines"]} >= {"analyze", "generate", "check", "upload"}
    assert manifest["cost"]["total"] > 0
    assert manifest["provenance"]["prefect_flow_run_id"]
    assert manifest["licensing"]["license"]


def test_loop_seam_is_invisible(first_render):
    out, _ = first_render
    grey, _ = decode_small(out / "canvas.mp4")
    assert seam_ratio(grey, 30) <= 1.5


def test_visual_accents_land_on_the_beats(first_render, song_truth):
    from beatframe.music.check import accent_frames

    out, _ = first_render
    manifest = json.loads((out / "manifest.json").read_text())
    start = manifest["segment"]["start"]
    grey, _ = decode_small(out / "canvas.mp4")
    steps = np.abs(np.diff(grey, axis=0)).mean(axis=(1, 2))
    accents = accent_frames(steps, 30) / 30
    beats = np.array([b - start for b in song_truth.beats if start <= b < start + len(grey) / 30])
    hits = sum(np.any(np.abs(accents - b) <= 0.07) for b in beats)
    assert hits / len(beats) >= 0.8


def test_rerun_is_served_from_cache_and_identical(first_render, song, tmp_path, prefect_server):
    from beatframe.flows.canvas import render_canvas

    out, _ = first_render
    state = render_canvas(audio=str(song), out_dir=str(tmp_path), template="neon-pulse", seconds=4.0, seed=7,
                          return_state=True)
    assert state.is_completed()
    from conftest import settled_task_runs

    runs = settled_task_runs(prefect_server, [state.state_details.flow_run_id],
                             names=("analyze", "generate-canvas-clip"))
    by_name = {run["name"].rsplit("-", 1)[0]: run["state"]["name"] for run in runs}
    assert by_name["analyze"] == "Cached" and by_name["generate-canvas-clip"] == "Cached"
    assert (tmp_path / "canvas.mp4").read_bytes() == (out / "canvas.mp4").read_bytes()


def test_same_seed_same_frames_other_seed_other_frames(first_render, song, tmp_path):
    from beatframe.flows.canvas import render_canvas

    out, _ = first_render
    other = tmp_path / "other"
    render_canvas(audio=str(song), out_dir=str(other), template="neon-pulse", seconds=4.0, seed=8)
    assert frame_hashes(other / "canvas.mp4") != frame_hashes(out / "canvas.mp4")


def api_filter(prefect_server: str, resource: str, body: dict) -> list[dict]:
    """POST a filter to the Prefect REST API; the matching objects as plain dicts."""
    import httpx

    response = httpx.post(f"{prefect_server}/{resource}/filter", json={"limit": 100, "offset": 0, **body},
                          timeout=30)
    response.raise_for_status()
    return response.json()


def test_cost_table_and_progress_artifacts_are_published(first_render, prefect_server):
    _, state = first_render
    run_id = str(state.state_details.flow_run_id)
    artifacts = api_filter(prefect_server, "artifacts", {"artifacts": {"flow_run_id": {"any_": [run_id]}},
                                                          "sort": "CREATED_DESC"})
    kinds = {a["type"] for a in artifacts}
    assert {"table", "progress"} <= kinds
    progress = [a for a in artifacts if a["type"] == "progress"][0]
    assert float(progress["data"]) == pytest.approx(100.0)
    table = [a for a in artifacts if a["type"] == "table"][0]
    assert "generate" in table["data"]


@pytest.mark.parametrize("loop", ["rebound", "hard_cut"])
def test_other_loop_modes(song, tmp_path, loop):
    from beatframe.flows.canvas import render_canvas

    manifest = render_canvas(audio=str(song), out_dir=str(tmp_path), template="mono-grid", seconds=4.0,
                             loop=loop)
    assert manifest["loop"]["mode"] == loop and manifest["checks"]["spec_ok"]
    if loop == "rebound":
        assert manifest["checks"]["loop"]["seam_ratio"] <= 1.5


# --- the CLI, in a real subprocess ---------------------------------------------------------

def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "beatframe.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def test_cli_renders_a_canvas(song, tmp_path):
    proc = run_cli("canvas", str(song), "--out", str(tmp_path / "o"), "--seconds", "4", "--template",
                   "sunset-waves", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert {p.name for p in (tmp_path / "o").iterdir()} == {"canvas.mp4", "canvas.jpg", "manifest.json"}


def write_bad_inputs(folder: Path) -> dict[str, Path]:
    import soundfile as sf

    files = {}
    files["empty"] = folder / "empty.wav"
    files["empty"].write_bytes(b"")
    files["not_audio"] = folder / "notes.wav"
    files["not_audio"].write_text("these are not the samples you are looking for\n" * 50)
    files["silence"] = folder / "silence.wav"
    sf.write(files["silence"], np.zeros(22050 * 10, np.float32), 22050)
    files["one_second"] = folder / "short.wav"
    t = np.arange(22050) / 22050
    sf.write(files["one_second"], (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 22050)
    # A WAV header claiming two hours of 44.1 kHz stereo over one second of data.
    real = folder / "real.wav"
    sf.write(real, (0.5 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 22050, subtype="PCM_16")
    data = bytearray(real.read_bytes())
    claimed = 2 * 3600 * 22050 * 2
    data[4:8] = (claimed + 36).to_bytes(4, "little")
    data[40:44] = claimed.to_bytes(4, "little")
    files["lying_header"] = folder / "two_hours.wav"
    files["lying_header"].write_bytes(bytes(data))
    return files


@pytest.mark.parametrize("case", ["empty", "not_audio", "silence", "one_second", "lying_header"])
def test_bad_audio_exits_2_with_one_line(tmp_path, case):
    bad = write_bad_inputs(tmp_path)[case]
    out = tmp_path / "out"
    proc = run_cli("canvas", str(bad), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("beatframe: error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_unreadable_cover_and_bad_arguments_exit_2(song, tmp_path):
    fake = tmp_path / "cover.png"
    fake.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    for args in (["--cover", str(fake)], ["--size", "1280x720"], ["--seconds", "12"],
                 ["--template", "no-such-template"], ["--seconds", "abc"], ["--generator", "dalle"],
                 ["--generator", '{"name": "wan-t2v", "steps": 3}']):
        proc = run_cli("canvas", str(song), "--out", str(tmp_path / "o"), *args, cwd=tmp_path)
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)
    assert not (tmp_path / "o").exists()


def test_hostile_file_name_and_out_that_is_a_file_exit_2(tmp_path):
    weird = tmp_path / "evil\nname\x1b[31m.wav"
    weird.write_bytes(b"RIFF....WAVEfmt ")
    proc = run_cli("canvas", str(weird), "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "\x1b" not in proc.stderr
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    proc = run_cli("canvas", "--demo", "--out", str(a_file), cwd=tmp_path)
    assert proc.returncode == 2 and "not a folder" in proc.stderr


def test_analyze_json_matches_the_schema(song, tmp_path):
    from beatframe.music.schemas import Analysis

    proc = run_cli("analyze", str(song), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    analysis = Analysis.model_validate(json.loads(proc.stdout))
    assert abs(analysis.bpm - 120) < 2 and analysis.meter == 4


def test_outputs_upload_to_s3_when_configured(song, tmp_path, moto_endpoint, monkeypatch):
    from minio import Minio

    from beatframe.infra.settings import get_settings
    from beatframe.flows.canvas import render_canvas

    monkeypatch.setenv("BEATFRAME_S3_ENDPOINT", f"http://{moto_endpoint}")
    monkeypatch.setenv("BEATFRAME_S3_ACCESS_KEY", "testing")
    monkeypatch.setenv("BEATFRAME_S3_SECRET_KEY", "testing")
    monkeypatch.setenv("BEATFRAME_S3_BUCKET", "canvases-test")
    monkeypatch.setenv("BEATFRAME_S3_REGION", "us-east-1")
    get_settings.cache_clear()
    try:
        manifest = render_canvas(audio=str(song), out_dir=str(tmp_path), seconds=4.0, seed=7)
    finally:
        get_settings.cache_clear()
    video = manifest["outputs"][0]
    assert video["uri"].startswith("s3://canvases-test/canvases/")
    client = Minio(moto_endpoint, access_key="testing", secret_key="testing", secure=False, region="us-east-1")
    key = video["uri"].split("/", 3)[3]
    data = client.get_object("canvases-test", key).read()
    assert hashlib.sha256(data).hexdigest() == video["sha256"]
    names = {o.object_name.rsplit("/", 1)[1] for o in client.list_objects("canvases-test", recursive=True)}
    assert names == {"canvas.mp4", "canvas.jpg", "manifest.json"}


def test_rendering_twice_without_cache_gives_identical_frames(song, tmp_path):
    from beatframe.music.analysis import analyze
    from beatframe.music.canvas import render_loop_clip
    from beatframe.music.planning import loop_timeline, plan_canvas
    from beatframe.music.templates import load_template
    from beatframe.models.registry import get_generator

    analysis = analyze(song)
    plan = plan_canvas(analysis, seconds=4.0)
    hashes = []
    for name in ("a.mp4", "b.mp4"):
        render_loop_clip(generator=get_generator("procedural"), timeline=loop_timeline(analysis, plan),
                         template=load_template("aurora-particles"), size=(720, 1280), seed=5,
                         loop_mode="continuous", out_path=tmp_path / name)
        hashes.append(frame_hashes(tmp_path / name))
    assert hashes[0] == hashes[1]


def test_a_cached_clip_whose_file_was_cleaned_away_is_rendered_again(first_render, song, tmp_path):
    from beatframe.infra.settings import get_settings
    from beatframe.flows.canvas import render_canvas

    out, _ = first_render
    for clip in (get_settings().cache_dir / "clips").glob("*.mp4"):
        clip.unlink()
    manifest = render_canvas(audio=str(song), out_dir=str(tmp_path), template="neon-pulse", seconds=4.0, seed=7)
    assert manifest["checks"]["spec_ok"]
    assert (tmp_path / "canvas.mp4").read_bytes() == (out / "canvas.mp4").read_bytes()
