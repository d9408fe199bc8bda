"""Encoding, probing and the Canvas checks on real H.264 files made with ffmpeg."""

from __future__ import annotations

import numpy as np
import pytest

from beatframe.music.check import CanvasSpec, check_canvas, moov_before_mdat, probe
from beatframe.infra.encode import H264Settings, encode_frames, extract_poster, remux_faststart

FAST = H264Settings(preset="ultrafast")


def periodic_frames(n=90, size=(720, 1280), cycles=1.0):
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(n):
        phase = 2 * np.pi * cycles * i / n
        v = 127 + 100 * np.sin(xx / 40 + phase) * np.cos(yy / 60 - phase)
        frame = np.stack([v, np.roll(v, 10, axis=1), 255 - v], axis=-1)
        yield np.clip(frame, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def loop_mp4(tmp_path_factory):
    out = tmp_path_factory.mktemp("enc") / "loop.mp4"
    assert encode_frames(periodic_frames(), out, size=(720, 1280), fps=30, h264=FAST) == 90
    return out


def test_encoded_canvas_meets_the_spec(loop_mp4):
    facts = probe(loop_mp4)
    assert (facts.width, facts.height, facts.codec, facts.pix_fmt) == (720, 1280, "h264", "yuv420p")
    assert facts.fps == pytest.approx(30) and facts.duration == pytest.approx(3.0, abs=0.05)
    assert facts.audio_streams == 0 and facts.faststart
    checks = check_canvas(loop_mp4, spec=CanvasSpec(), loop_mode="continuous")
    assert checks["spec_ok"], checks["problems"]
    assert checks["loop"]["seam_ratio"] <= 1.5
    assert checks["flash"]["safe"]


def test_a_seam_fails_the_check(tmp_path):
    out = tmp_path / "seam.mp4"
    encode_frames(periodic_frames(cycles=0.3), out, size=(720, 1280), fps=30, h264=FAST)
    checks = check_canvas(out, spec=CanvasSpec(), loop_mode="continuous")
    assert not checks["spec_ok"] and any("seam" in p for p in checks["problems"])


def test_wrong_size_and_length_are_reported(tmp_path):
    out = tmp_path / "small.mp4"
    encode_frames(periodic_frames(n=60, size=(360, 640)), out, size=(360, 640), fps=30, h264=FAST)
    problems = check_canvas(out, spec=CanvasSpec(), loop_mode="continuous")["problems"]
    assert any("size" in p for p in problems) and any("duration" in p for p in problems)


def test_failed_encode_leaves_nothing(tmp_path):
    def broken():
        yield from periodic_frames(n=5)
        raise RuntimeError("generator died")

    out = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError, match="generator died"):
        encode_frames(broken(), out, size=(720, 1280), fps=30, h264=FAST)
    assert list(tmp_path.iterdir()) == []


def test_wrong_frame_shape_is_a_loud_error(tmp_path):
    with pytest.raises(ValueError, match="expected"):
        encode_frames(iter([np.zeros((10, 10, 3), np.uint8)]), tmp_path / "x.mp4", size=(720, 1280), fps=30)
    assert list(tmp_path.iterdir()) == []


def test_remux_keeps_faststart_and_poster_is_a_jpeg(loop_mp4, tmp_path):
    copy = tmp_path / "copy.mp4"
    remux_faststart(loop_mp4, copy)
    assert moov_before_mdat(copy) and probe(copy).frames == 90
    poster = tmp_path / "poster.jpg"
    extract_poster(copy, poster)
    assert poster.read_bytes()[:2] == b"\xff\xd8"
