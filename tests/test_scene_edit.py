"""Multi-shot scene edits (beatframe.music.scenes, beatframe.flows.scene_edit): scenes planned on a pulse or on a
track's downbeats, transitions that really blend, one palette for consistency, bad scenes named, the licence of
every image in the manifest."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from beatframe.infra.errors import BadInputError
from beatframe.music.scenes import palette_of, plan_scene_edit, scene_looks

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
pytestmark = pytest.mark.slow

SCENES = [{"prompt": "misty mountains at dawn", "duration": 2}, {"template": "neon-pulse", "duration": 2},
          {"prompt": "waves at sunset", "duration": 2, "transition": "wipe"}]


def test_without_a_track_scenes_keep_their_durations_on_a_pulse():
    planned, analysis = plan_scene_edit(SCENES, transition_seconds=0.5)
    assert [(s.first_frame, s.last_frame) for s in planned] == [(0, 60), (60, 120), (120, 180)]
    assert [s.transition_in for s in planned] == ["cut", "crossfade", "wipe"]
    assert [s.transition_frames for s in planned] == [0, 15, 15]
    assert [s.template for s in planned] == ["aurora-particles", "neon-pulse", "sunset-waves"]
    assert analysis.audio.duration == 6.0 and analysis.bpm == 100.0


def test_with_a_track_boundaries_land_on_downbeats_and_the_last_scene_ends_with_it(song, song_truth):
    from beatframe.music.analysis import analyze

    analysis = analyze(song)
    planned, _ = plan_scene_edit(SCENES, analysis=analysis)
    downbeats = np.asarray(analysis.downbeats)
    for scene in planned[1:]:
        assert np.min(np.abs(downbeats - scene.first_frame / 30)) < 1 / 30 + 1e-6
    assert planned[-1].last_frame == round(analysis.audio.duration * 30)
    assert planned[1].transition_in in ("zoom", "crossfade", "wipe")  # auto: from the music at the boundary


def test_consistency_paints_every_scene_in_one_palette():
    planned, _ = plan_scene_edit(SCENES)
    own = scene_looks(planned, consistency=False)
    shared = scene_looks(planned, consistency=True)
    assert len({look.palette for look in own}) == 3 and len({look.palette for look in shared}) == 1
    image = np.zeros((64, 64, 3), np.uint8)
    image[:32] = (200, 30, 40)
    image[32:] = (10, 20, 160)
    colours = palette_of(image, colours=2)
    assert colours == ("#0a14a0", "#c81e28")


@pytest.mark.parametrize("scenes, says", [
    ([], "non-empty list"), ([{"duration": 2}], "scene 0: .*prompt, a template or an asset"),
    ([{"prompt": "x", "duration": 2, "transition": "spin"}], "transition must be"),
    ([{"template": "no-such", "duration": 2}], "no-such"), ([{"prompt": "x", "duration": -1}], "scene 0"),
    ([{"prompt": "x", "duration": 0.2}, {"prompt": "y", "duration": 2}], "at least 0.5 s"),
    ([{"prompt": "x", "duration": 2, "license": "CC0-1.0"}], "scene 0: .*give them with an asset"),
])
def test_bad_scenes_are_named(scenes, says):
    with pytest.raises(BadInputError, match=says):
        plan_scene_edit(scenes)


def _frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24").astype(float) for f in container.decode(video=0)]


@pytest.mark.usefixtures("prefect_server")
def test_an_edit_renders_with_blended_transitions(tmp_path):
    from beatframe.flows.scene_edit import render_scene_edit

    def edit(transition: str, out):
        scenes = [{"template": "aurora-particles", "duration": 2},
                  {"template": "sunset-waves", "duration": 2, "transition": transition}]
        return render_scene_edit(scenes=scenes, size="512x288", out_dir=str(out), transition_seconds=0.5)

    manifest = edit("crossfade", tmp_path / "crossfade")
    assert manifest["kind"] == "edit" and manifest["checks"]["spec_ok"]
    assert [s["transition_in"] for s in manifest["plan"]["shots"]] == ["cut", "crossfade"]
    assert json.loads((tmp_path / "crossfade" / "manifest.json").read_text())["id"] == manifest["id"]
    blended = _frames(tmp_path / "crossfade" / "edit.mp4")
    edit("cut", tmp_path / "cut")
    cut = _frames(tmp_path / "cut" / "edit.mp4")
    assert len(blended) == len(cut) == 120
    # at the boundary (frame 60) the cut jumps to the new scene; the crossfade starts from the old one
    assert np.abs(blended[60] - blended[59]).mean() < 0.5 * np.abs(cut[60] - cut[59]).mean()
    # half-way through, the crossfade shows both scenes: it is far from each of them alone
    assert np.abs(blended[67] - cut[67]).mean() > 5


@pytest.mark.usefixtures("prefect_server")
def test_the_licence_of_every_image_an_edit_uses_reaches_its_manifest(tmp_path):
    import cv2

    from beatframe.flows.scene_edit import render_scene_edit

    y, x = np.mgrid[0:320, 0:400]
    for name, image in (("photo.png", np.stack([x % 256, y % 256, (x + y) % 256], -1)),
                        ("palette.png", np.stack([y % 256, x % 256, 255 - y % 256], -1))):
        cv2.imwrite(str(tmp_path / name), image.astype(np.uint8))
    licence = {"license": "CC-BY-4.0", "attribution": "Photo by Ada", "rights_holder": "Ada L."}
    scenes = [{"template": "aurora-particles", "duration": 1},
              {"asset": str(tmp_path / "photo.png"), "duration": 1, "transition": "cut", **licence}]
    manifest = render_scene_edit(scenes=scenes, size="512x288", out_dir=str(tmp_path / "out"),
                                 reference_image=str(tmp_path / "palette.png"), reference_license="CC0-1.0")
    written = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert written["schema"] == "beatframe.manifest/1" and written["licensing"] == manifest["licensing"]
    scene, reference = manifest["licensing"]["assets"]
    assert scene == {**scene, **licence, "role": "scene", "scene": 1, "source": (tmp_path / "photo.png").as_uri()}
    assert len(scene["sha256"]) == 64
    assert reference == {**reference, "role": "reference", "license": "CC0-1.0",
                         "source": (tmp_path / "palette.png").as_uri()}
    # a licence changes no frame: the pulse an edit without a track moves to is the same without one
    bare = [{k: v for k, v in s.items() if k not in licence} for s in scenes]
    assert plan_scene_edit(bare)[1].audio.sha256 == plan_scene_edit(scenes)[1].audio.sha256


@pytest.mark.parametrize("content, says", [
    (None, "cannot be read"), ("{nope", "is not JSON"), ('[{"duration": 1}]', "scene 0"),
    ('[{"prompt": "x", "duration": 1}]', None),
])
def test_cli_edit_bad_input_exits_2_with_one_line(tmp_path, content, says):
    import subprocess
    import sys

    scenes = tmp_path / "scenes.json"
    if content is not None:
        scenes.write_text(content)
    extra = ["--size", "12x7"] if says is None else []
    proc = subprocess.run([sys.executable, "-m", "beatframe.cli", "edit", str(scenes), "--out", str(tmp_path / "o"),
                           *extra], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert (says or "size") in proc.stderr and not (tmp_path / "o").exists()
