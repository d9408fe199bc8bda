import hashlib
import struct
import zlib

import cv2
import numpy as np
import pytest

from beatframe.infra.errors import BadInputError
from beatframe.models.cover_art import CoverArtGenerator
from beatframe.music.images import load_cover
from beatframe.models.motion import grid_timeline
from beatframe.models.registry import get_generator
from test_procedural import beat_f, gray, seam_ratio

SIZE = (90, 160)


def make_cover(path, size=400, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.zeros((size, size, 3), np.float32)
    img[..., 0], img[..., 1], img[..., 2] = 40 + 180 * x, 30 + 150 * y, 120 + 80 * np.sin(6 * x * y)
    for _ in range(20):
        c = tuple(int(v) for v in rng.integers(0, size, 2))
        col = tuple(float(v) for v in rng.integers(0, 255, 3))
        cv2.circle(img, c, int(rng.integers(size // 30, size // 6)), col, -1, cv2.LINE_AA)
    img = np.clip(img, 0, 255).astype(np.uint8)
    if channels == 1:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    elif channels == 4:
        a = np.full((size, size, 1), 255, np.uint8)
        a[: size // 4] = 0
        img = np.concatenate([img, a], axis=2)
    assert cv2.imwrite(str(path), img)
    return path


@pytest.fixture(scope="module")
def cover(tmp_path_factory):
    return make_cover(tmp_path_factory.mktemp("cover") / "art.png")


def render(cover, template="neon-pulse", seed=7, tl=None, cut=False):
    tl = tl or grid_timeline(120, bars=1)
    return list(CoverArtGenerator(cover).render(timeline=tl, template=template, size=SIZE, seed=seed,
                                               cut_on_downbeats=cut))


def test_load_cover_formats(tmp_path):
    rgb = load_cover(make_cover(tmp_path / "a.jpg"))
    assert rgb.shape == (400, 400, 3) and rgb.dtype == np.uint8
    g = load_cover(make_cover(tmp_path / "g.png", channels=1))
    assert g.shape == (400, 400, 3) and np.array_equal(g[..., 0], g[..., 2])
    a = load_cover(make_cover(tmp_path / "a.png", channels=4))
    assert a.shape == (400, 400, 3) and a[:50].max() == 0  # transparent -> black
    # the extension is not trusted: a PNG named .jpg still loads
    (tmp_path / "png.jpg").write_bytes((tmp_path / "a.png").read_bytes())
    assert load_cover(tmp_path / "png.jpg").shape == (400, 400, 3)


def test_missing_file(tmp_path):
    p = tmp_path / "nope.png"
    with pytest.raises(BadInputError, match="nope.png"):
        load_cover(p)


def test_not_an_image(tmp_path):
    p = tmp_path / "fake.png"
    p.write_text("this is not an image\n")
    with pytest.raises(BadInputError, match="fake.png.*not an image"):
        load_cover(p)
    e = tmp_path / "empty.jpg"
    e.write_bytes(b"")
    with pytest.raises(BadInputError, match="empty.jpg"):
        load_cover(e)


def test_too_small(tmp_path):
    p = make_cover(tmp_path / "small.png", size=200)
    with pytest.raises(BadInputError, match="small.png.*too small"):
        load_cover(p)


def _png_header(w, h):
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\x00" * 64


@pytest.mark.parametrize("w,h", [(13000, 400), (9000, 9000)])
def test_too_large_checked_from_header(tmp_path, w, h):
    p = tmp_path / "huge.png"
    p.write_bytes(_png_header(w, h))  # never decoded: the header alone is enough
    with pytest.raises(BadInputError, match="huge.png.*too large"):
        load_cover(p)


def test_jpeg_header_size(tmp_path):
    from beatframe.music.images import _header_size
    p = make_cover(tmp_path / "c.jpg", size=320)
    assert _header_size(p.read_bytes()) == (320, 320)


def test_frames_and_determinism(cover):
    a, b, c = render(cover, seed=1), render(cover, seed=1), render(cover, seed=2, cut=True)
    assert len(a) == 60 and a[0].shape == (160, 90, 3) and a[0].dtype == np.uint8
    assert a[0].flags.c_contiguous
    h = lambda fr: [hashlib.sha256(f.tobytes()).hexdigest() for f in fr]
    assert h(a) == h(b)
    assert h(a) != h(c)


@pytest.mark.parametrize("template", ["neon-pulse", "sunset-waves"])
def test_loop_and_beats(cover, template):
    tl = grid_timeline(120, bars=2)
    fr = render(cover, template, tl=tl)
    assert seam_ratio(fr) <= 1.5
    assert beat_f(fr, tl.beats) >= 0.8


def test_cut_mode_loops_and_keeps_beats(cover):
    tl = grid_timeline(120, bars=2)
    fr = render(cover, "mono-grid", tl=tl, cut=True)
    assert seam_ratio(fr) <= 1.5
    assert beat_f(fr, tl.beats) >= 0.8


def test_glitch_is_brief_and_on_downbeats(cover):
    """mono-grid asks for glitch: frames right after a downbeat differ from the same render with
    glitch off, and nothing else does."""
    from beatframe.music.templates import load_template
    t = load_template("mono-grid")
    assert t.cover.glitch > 0
    calm = t.model_copy(update={"cover": t.cover.model_copy(update={"glitch": 0.0})})
    tl = grid_timeline(120, bars=2)  # downbeats at frames 0 and 60
    on, off = render(cover, t, tl=tl), render(cover, calm, tl=tl)
    diff = np.array([np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(on, off)])
    glitched = set(np.flatnonzero(diff > 0.5).tolist())
    assert {1, 61} <= glitched
    assert glitched <= {1, 2, 3, 4, 61, 62, 63, 64}


def test_fill_is_darker_than_art(cover):
    f = np.asarray(render(cover)[10], np.float32)
    edge = f[:8].mean()
    centre = f[60:100, 20:70].mean()
    assert edge < centre


def test_registry_builds_cover_generator(cover):
    g = get_generator("cover-art", image_path=cover)
    assert g.name == "cover-art" and g.revision
    with pytest.raises(BadInputError):
        get_generator("cover-art", image_path=str(cover) + ".missing")
