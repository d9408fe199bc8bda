"""Post-production as Prefect flows and CLI commands (beatframe.flows.post, beatframe.cli.post): a v2v
transform and entity following on synthesized clips, with their records; bad input exits 2."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from beatframe.infra.encode import encode_frames

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.slow]


def _object() -> np.ndarray:
    rng = np.random.default_rng(5)
    patch = (rng.integers(0, 255, (12, 12, 3))).astype(np.uint8)
    return cv2.resize(patch, (48, 48), interpolation=cv2.INTER_NEAREST)


def _clip(path, frames=24) -> list[tuple[int, int, int, int]]:
    """A textured square moving right over a gradient; returns its boxes."""
    obj, boxes, images = _object(), [], []
    for i in range(frames):
        image = np.zeros((144, 256, 3), np.uint8)
        image[..., 0] = np.linspace(30, 90, 256, dtype=np.uint8)[None, :]
        image[..., 2] = np.linspace(90, 30, 144, dtype=np.uint8)[:, None]
        x, y = 20 + 6 * i, 50
        image[y:y + 48, x:x + 48] = obj
        images.append(image)
        boxes.append((x, y, x + 48, y + 48))
    encode_frames(iter(images), path, size=(256, 144), fps=24)
    return boxes


def test_a_v2v_interpolation_runs_as_a_flow_and_records_itself(tmp_path):
    from beatframe.flows.post import post_video

    _clip(tmp_path / "clip.mp4")
    record = post_video(video=str(tmp_path / "clip.mp4"), step="v2v", options={"mode": "interpolation"},
                        out_dir=str(tmp_path / "out"))
    output = record["outputs"][0]
    assert output["fps"] == 48 and output["frames"] >= 46 and record["checks"]["spec_ok"]
    assert json.loads((tmp_path / "out" / "post.json").read_text())["info"]["mode"] == "interpolation"
    assert (tmp_path / "out" / "v2v.mp4").stat().st_size > 0


def test_following_runs_as_a_flow(tmp_path):
    from beatframe.flows.post import follow_video

    boxes = _clip(tmp_path / "clip.mp4")
    cv2.imwrite(str(tmp_path / "ref.png"), cv2.cvtColor(_object(), cv2.COLOR_RGB2BGR))
    report = follow_video(video=str(tmp_path / "clip.mp4"), entities=[{"name": "square", "image": str(tmp_path / "ref.png")}],
                          out_dir=str(tmp_path / "out"))
    timeline = {p["frame"]: p["bbox"] for p in report["entity_timelines"]["square"]}

    def iou(a, b):
        ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
        iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = ix * iy
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    assert np.mean([iou(timeline.get(i, (0, 0, 1, 1)), box) for i, box in enumerate(boxes)]) >= 0.7
    assert report["frames_analyzed"] == 24 and (tmp_path / "out" / "follow.json").is_file()


@pytest.mark.parametrize("args, says", [
    (["v2v", "missing.mp4", "--mode", "upscale"], "does not exist"),
    (["v2v", "clip.txt", "--mode", "upscale"], "not a readable video"),
    (["v2v", "clip.mp4", "--mode", "style_transfer"], "--reference is required by mode 'style_transfer'"),
    (["v2v", "clip.mp4", "--mode", "enhancement", "--palette", "neon"], "--palette does not apply"),
    (["v2v", "clip.mp4", "--mode", "colorization", "--palette", "neon", "--reference", "clip.mp4"],
     "--palette cannot be given with --reference"),
    (["follow", "clip.mp4", "--reference", "nameonly"], "NAME=IMAGE"),
])
def test_cli_post_commands_exit_2_with_one_line(tmp_path, args, says):
    _clip(tmp_path / "clip.mp4", frames=4)
    (tmp_path / "clip.txt").write_text("not a video")
    proc = subprocess.run([sys.executable, "-m", "beatframe.cli", *args, "--out", str(tmp_path / "o")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert says in proc.stderr and not (tmp_path / "o").exists()


def test_cli_visemes_prints_a_contiguous_timeline(song, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "beatframe.cli", "visemes", str(song), "--json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    timeline = json.loads(proc.stdout)
    assert timeline[0]["start"] == 0.0 and all(a["end"] == b["start"] for a, b in zip(timeline, timeline[1:]))
    assert {v["viseme"] for v in timeline} <= {"rest", "PP", "FF", "AA", "EE", "OO"}
    (tmp_path / "empty.wav").write_bytes(b"")
    bad = subprocess.run([sys.executable, "-m", "beatframe.cli", "visemes", str(tmp_path / "empty.wav")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_inpaint_removes_a_planted_logo_as_a_flow(tmp_path):
    from beatframe.flows.post import post_video

    background = np.zeros((144, 256, 3), np.uint8)
    background[..., 0] = np.linspace(30, 90, 256, dtype=np.uint8)[None, :]
    background[..., 2] = np.linspace(90, 30, 144, dtype=np.uint8)[:, None]
    logo = background.copy()
    logo[40:88, 100:148] = _object()  # a static logo over the scene
    encode_frames(iter([logo] * 12), tmp_path / "clip.mp4", size=(256, 144), fps=24)
    record = post_video(video=str(tmp_path / "clip.mp4"), step="inpaint", out_dir=str(tmp_path / "out"),
                        options={"mode": "remove", "box": [98, 38, 150, 90], "feather_radius": 4})
    assert record["checks"]["spec_ok"] and record["info"]["mode"] == "remove"
    import av

    with av.open(str(tmp_path / "out" / "inpaint.mp4")) as container:
        first = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(float)
    # the logo's texture is gone: the region is the gradient again, within a few grey levels
    assert np.abs(first[44:84, 104:144] - background[44:84, 104:144]).mean() < 12


def test_the_licence_of_every_input_reaches_the_post_record(tmp_path):
    from beatframe.flows.post import post_video
    from beatframe.music.manifest import UNDECLARED

    _clip(tmp_path / "clip.mp4", frames=6)
    cv2.imwrite(str(tmp_path / "logo.png"), cv2.cvtColor(_object(), cv2.COLOR_RGB2BGR))
    asset = {"license": "CC-BY-4.0", "attribution": "Logo by Ada", "rights_holder": "Ada L.", "asset": "ast_logo"}
    record = post_video(video=str(tmp_path / "clip.mp4"), step="inpaint", out_dir=str(tmp_path / "out"),
                        options={"mode": "replace", "box": [20, 20, 80, 80]}, reference_image=str(tmp_path / "logo.png"),
                        licenses={"reference_image": asset})
    source, replacement = record["licensing"]["assets"]
    assert source == {**source, "role": "source", "license": UNDECLARED, "source": (tmp_path / "clip.mp4").as_uri()}
    assert replacement == {**replacement, **asset, "role": "replacement", "source": (tmp_path / "logo.png").as_uri()}
    assert len(replacement["sha256"]) == 64
    assert json.loads((tmp_path / "out" / "post.json").read_text())["licensing"] == record["licensing"]


def test_a_canvas_can_remove_a_logo_from_its_cover_first(song, tmp_path):
    from beatframe.flows.canvas import render_canvas
    from beatframe.tasks.post import clean_cover

    cover = np.zeros((400, 400, 3), np.uint8)
    cover[..., 1] = np.linspace(40, 200, 400, dtype=np.uint8)[:, None]
    cover[..., 2] = 120
    clean = cover.copy()
    cv2.putText(cover, "LOGO", (40, 80), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 6)
    cv2.imwrite(str(tmp_path / "cover.png"), cv2.cvtColor(cover, cv2.COLOR_RGB2BGR))
    box = [30, 20, 260, 100]
    cleaned = clean_cover.fn(str(tmp_path / "cover.png"), "test-cover", box)
    result = cv2.cvtColor(cv2.imread(cleaned["path"]), cv2.COLOR_BGR2RGB).astype(float)
    assert np.abs(result[20:100, 30:260] - clean[20:100, 30:260]).mean() < 6  # the text is gone
    manifest = render_canvas(audio=str(song), out_dir=str(tmp_path / "out"), seconds=4.0, cover=str(tmp_path / "cover.png"),
                             cover_cleanup=box)
    assert manifest["checks"]["spec_ok"] and any(line["stage"] == "inpaint" for line in manifest["cost"]["lines"])


def _face_clip(path, *, size=(256, 144), frames=24):
    """A skin-coloured face on a dark background."""
    width, height = size
    image = np.full((height, width, 3), 30, np.uint8)
    cv2.ellipse(image, (width // 2, height // 2), (40, 55), 0, 0, 360, (205, 160, 130), -1)
    encode_frames(iter([image] * frames), path, size=size, fps=24)
    return [width // 2 - 40, height // 2 - 55, width // 2 + 40, height // 2 + 55]


def test_lipsync_opens_the_mouth_with_the_voice_and_refuses_a_canvas(song, tmp_path):
    from beatframe.infra.errors import BadInputError
    from beatframe.flows.post import post_video
    from beatframe.models.lipsync import mouth_openness

    face = _face_clip(tmp_path / "face.mp4", frames=96)  # 4 s of the song's chorus-less start
    record = post_video(video=str(tmp_path / "face.mp4"), step="lipsync", audio=str(song),
                        options={"face_region": face, "expression": "happy"}, out_dir=str(tmp_path / "out"))
    assert record["checks"]["spec_ok"] and record["info"]["backend"] == "procedural"
    import av

    with av.open(str(tmp_path / "out" / "lipsync.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    openness = mouth_openness(frames, mouth_box=record["info"]["mouth_box"])
    assert len(frames) == 96 and openness.shape == (96,)
    # a Canvas-shaped clip (silent, 9:16, 4 s) is refused unless forced
    canvas_face = _face_clip(tmp_path / "canvas.mp4", size=(144, 256), frames=96)
    with pytest.raises(BadInputError, match="Spotify forbids singing faces"):
        post_video(video=str(tmp_path / "canvas.mp4"), step="lipsync", audio=str(song),
                   options={"face_region": canvas_face}, out_dir=str(tmp_path / "canvas-out"))
    from beatframe.flows.post import _refuse_canvas

    _refuse_canvas(tmp_path / "face.mp4")  # 16:9: not a Canvas, nothing refused


def test_render_flows_run_post_steps_on_their_clips(song, tmp_path):
    from beatframe.infra.errors import BadInputError
    from beatframe.flows.canvas import render_canvas

    cv2.imwrite(str(tmp_path / "badge.png"), cv2.cvtColor(_object(), cv2.COLOR_RGB2BGR))
    steps = [{"step": "v2v", "options": {"mode": "colorization", "palette": "sepia", "strength": 1.0}},
             {"step": "inpaint", "options": {"mode": "replace", "box": [0, 0, 48, 48], "feather_radius": 2},
              "reference_image": str(tmp_path / "badge.png"), "license": "CC-BY-4.0"}]
    manifest = render_canvas(audio=str(song), out_dir=str(tmp_path / "canvas"), seconds=4.0, template="mono-grid",
                             post=steps)
    assert manifest["checks"]["spec_ok"] and manifest["checks"]["loop"]["seam_ratio"] <= 1.5
    assert [p["mode"] for p in manifest["generator"]["params"]["post"]] == ["colorization", "replace"]
    # the replacement image's licence reaches the Canvas's manifest
    [badge] = manifest["licensing"]["assets"]
    assert badge == {**badge, "role": "replacement", "license": "CC-BY-4.0", "post_step": 1,
                     "source": (tmp_path / "badge.png").as_uri()}
    import av

    with av.open(str(tmp_path / "canvas" / "canvas.mp4")) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(float)
    assert frame[..., 0].mean() > frame[..., 2].mean() + 5  # the black-and-white grid is sepia now
    for bad in ([{"step": "v2v", "options": {"mode": "upscale"}}], [{"step": "lipsync", "options": {}}],
                [{"step": "v2v", "options": {"mode": "enhancement"}, "license": "CC0-1.0"}]):
        with pytest.raises(BadInputError):
            render_canvas(audio=str(song), out_dir=str(tmp_path / "bad"), post=bad)


@pytest.mark.parametrize("args, says", [
    (["inpaint", "clip.mp4", "--box", "1,1,9,9", "--replacement-license", "CC0-1.0"],
     "--replacement-license is the licence of --replacement: give both"),
    (["v2v", "clip.mp4", "--mode", "enhancement", "--license", "{not json"], "neither"),
    (["lipsync", "clip.mp4", "--audio", "clip.mp4", "--face", "1,1,9,9", "--license", " "], "--license is empty"),
    (["inpaint", "clip.mp4", "--box", "200,10,300,60"], "reaches outside the 256x144 frame"),
    (["v2v", "wide.mp4", "--mode", "upscale", "--factor", "4"], "exceeds 8192 px a side"),
])
def test_cli_licences_regions_and_sizes_are_checked_up_front(tmp_path, args, says):
    _clip(tmp_path / "clip.mp4", frames=4)
    encode_frames(iter([np.zeros((64, 2100, 3), np.uint8)] * 2), tmp_path / "wide.mp4", size=(2100, 64), fps=24)
    proc = subprocess.run([sys.executable, "-m", "beatframe.cli", *args, "--out", str(tmp_path / "o")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert says in proc.stderr and not (tmp_path / "o").exists()


def test_cli_v2v_records_the_declared_licences(tmp_path):
    _clip(tmp_path / "clip.mp4", frames=8)
    record = '{"license": "CC-BY-4.0", "attribution": "Clip by Ada", "sha256": "forged"}'
    proc = subprocess.run([sys.executable, "-m", "beatframe.cli", "v2v", "clip.mp4", "--mode", "enhancement",
                           "--license", record, "--out", str(tmp_path / "o")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (source,) = json.loads((tmp_path / "o" / "post.json").read_text())["licensing"]["assets"]
    assert source["license"] == "CC-BY-4.0" and source["attribution"] == "Clip by Ada"
    assert source["role"] == "source" and source["sha256"] != "forged"  # measured, never declared
