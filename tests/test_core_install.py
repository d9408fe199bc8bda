"""The core install (no ``gen`` extra) imports, renders and says what the extra is for.

tests/without_gen.py hides torch, diffusers, transformers and the rest of the generative stack
behind an import hook, in a subprocess, so these run as ``pip install beatframe`` would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = str(Path(__file__).with_name("without_gen.py"))


def without_gen(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, RUNNER, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_every_module_imports_without_the_generative_stack(tmp_path):
    proc = without_gen("import-all", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def short_song(tmp_path_factory):
    from beatframe.music.synth import synthesize_track, write_wav

    track = synthesize_track(bpm=120.0, seed=11, sections=[("verse", 2, 0.5), ("chorus", 2, 0.9)], tail=0.5)
    return write_wav(tmp_path_factory.mktemp("core") / "short.wav", track)


@pytest.mark.slow
def test_a_canvas_a_video_and_a_pack_render_without_the_generative_stack(prefect_server, short_song, tmp_path):
    canvas = without_gen("cli", "canvas", str(short_song), "--seconds", "4", "--out", str(tmp_path / "c"), cwd=tmp_path)
    assert canvas.returncode == 0, canvas.stderr[-3000:]
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["checks"]["spec_ok"] and manifest["generator"]["name"] == "procedural"

    video = without_gen("cli", "video", str(short_song), "--size", "640x360", "--out", str(tmp_path / "v"),
                        cwd=tmp_path)
    assert video.returncode == 0, video.stderr[-3000:]
    assert (tmp_path / "v" / "video.mp4").stat().st_size > 0

    pack = without_gen("cli", "pack", str(short_song), "--out", str(tmp_path / "p"), cwd=tmp_path)
    assert pack.returncode == 0, pack.stderr[-3000:]
    assert (tmp_path / "p.zip").is_file()


@pytest.mark.parametrize("generator", ["wan-t2v", '{"name": "wan-t2v", "steps": 20}'])
def test_asking_for_wan_without_the_extra_is_one_line_naming_it(short_song, tmp_path, generator):
    proc = without_gen("cli", "canvas", str(short_song), "--generator", generator, "--out", str(tmp_path / "o"),
                       cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "beatframe: error: the wan-t2v generator needs the generative extra (torch, diffusers, transformers"
        " not installed): pip install 'beatframe[gen]'"]
    assert not (tmp_path / "o").exists()
