"""Post-production as Prefect flows and CLI commands (flows.post, beatframe.cli_post): a v2v
transform and entity tracking on synthesized clips, with their records; bad input exits 2."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from beatframe.encode import encode_frames

pytestmark = pytest.mark.usefixtures("prefect_server")


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
    from flows.post import post_video

    _clip(tmp_path / "clip.mp4")
    record = post_video(video=str(tmp_path / "clip.mp4"), step="v2v", options={"mode": "interpolation"},
                        out_dir=str(tmp_path / "out"))
    assert record["output"]["fps"] == 48 and record["output"]["frames"] >= 46 and record["checks"]["spec_ok"]
    assert json.loads((tmp_path / "out" / "post.json").read_text())["info"]["mode"] == "interpolation"
    assert (tmp_path / "out" / "v2v.mp4").stat().st_size > 0


def test_tracking_runs_as_a_flow(tmp_path):
    from flows.post import track_video

    boxes = _clip(tmp_path / "clip.mp4")
    cv2.imwrite(str(tmp_path / "ref.png"), cv2.cvtColor(_object(), cv2.COLOR_RGB2BGR))
    report = track_video(video=str(tmp_path / "clip.mp4"), entities=[{"name": "square", "image": str(tmp_path / "ref.png")}],
                         out_dir=str(tmp_path / "out"))
    timeline = {p["frame"]: p["bbox"] for p in report["entity_timelines"]["square"]}

    def iou(a, b):
        ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
        iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = ix * iy
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    assert np.mean([iou(timeline.get(i, (0, 0, 1, 1)), box) for i, box in enumerate(boxes)]) >= 0.7
    assert report["frames_analyzed"] == 24 and (tmp_path / "out" / "track.json").is_file()


@pytest.mark.parametrize("args, says", [
    (["v2v", "missing.mp4", "--mode", "upscale"], "does not exist"),
    (["v2v", "clip.txt", "--mode", "upscale"], "not a readable video"),
    (["v2v", "clip.mp4", "--mode", "style_transfer"], "reference"),
    (["track", "clip.mp4", "--reference", "nameonly"], "NAME=IMAGE"),
])
def test_cli_post_commands_exit_2_with_one_line(tmp_path, args, says):
    _clip(tmp_path / "clip.mp4", frames=4)
    (tmp_path / "clip.txt").write_text("not a video")
    proc = subprocess.run([sys.executable, "-m", "beatframe.cli", *args, "--out", str(tmp_path / "o")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert says in proc.stderr and not (tmp_path / "o").exists()
