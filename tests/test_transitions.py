"""Shot transitions: exact endpoints, movement toward the incoming shot, argument checks, a morph
that really warps, determinism, and one 1920x1080 smoke run per kind."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from beatframe.music.transitions import TRANSITIONS, Morph, transition_frame, transition_seconds

H, W = 54, 96


def _scene(seed: int, h: int = H, w: int = W) -> np.ndarray:
    """A smooth random RGB texture (something flow can lock on to)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, h // 6), max(2, w // 6), 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), 1.0)


@pytest.fixture(scope="module")
def pair():
    return _scene(1), _scene(2)


def _mad(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.abs(x.astype(np.int16) - y.astype(np.int16))))


@pytest.mark.parametrize("kind", TRANSITIONS)
def test_endpoints_exact_and_inputs_untouched(kind, pair):
    a, b = pair
    a0, b0 = a.copy(), b.copy()
    for direction in range(4):
        assert np.array_equal(transition_frame(kind, a, b, 0.0, direction=direction), a)
        assert np.array_equal(transition_frame(kind, a, b, 1.0, direction=direction), b)
        for p in (0.1, 0.5, 0.9):
            out = transition_frame(kind, a, b, p, direction=direction)
            assert out.dtype == np.uint8 and out.shape == a.shape
            assert out is not a and out is not b
    assert np.array_equal(a, a0) and np.array_equal(b, b0)


def test_cut_is_instant(pair):
    a, b = pair
    assert np.array_equal(transition_frame("cut", a, b, 1e-6), b)
    assert np.array_equal(transition_frame("cut", a, b, 0.0), a)


@pytest.mark.parametrize("kind", ["crossfade", "wipe", "blur", "morph"])
def test_moves_monotonically_toward_incoming(kind, pair):
    a, b = pair
    for direction in (range(4) if kind == "wipe" else [0]):
        d = [_mad(transition_frame(kind, a, b, p, direction=direction), b)
             for p in np.linspace(0, 1, 11)]
        assert d[0] > 10 and d[-1] == 0
        assert all(x >= y - 0.25 for x, y in zip(d, d[1:])), (kind, direction, d)
        assert d[3] > d[5] > d[7]


def test_wipe_directions(pair):
    a, b = pair
    for direction, (region_in, region_out) in enumerate([
            ((slice(None), slice(0, 20)), (slice(None), slice(-20, None))),
            ((slice(None), slice(-20, None)), (slice(None), slice(0, 20))),
            ((slice(0, 10), slice(None)), (slice(-10, None), slice(None))),
            ((slice(-10, None), slice(None)), (slice(0, 10), slice(None)))]):
        out = transition_frame("wipe", a, b, 0.5, direction=direction)
        assert np.array_equal(out[region_in], b[region_in]), direction
        assert np.array_equal(out[region_out], a[region_out]), direction


def test_no_flash_from_dark_frames():
    """Blends only: two dark shots never produce a bright (or pure black) frame."""
    a = np.full((H, W, 3), 40, np.uint8)
    b = np.full((H, W, 3), 60, np.uint8)
    for kind in TRANSITIONS:
        for p in np.linspace(0, 1, 9):
            out = transition_frame(kind, a, b, p, direction=2)
            assert 39 <= out.min() and out.max() <= 61, (kind, p)


def _square(x: int, y: int, h: int = 90, w: int = 160, size: int = 16) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[y:y + size, x:x + size] = 255
    return cv2.GaussianBlur(img, (0, 0), 0.8)


def test_morph_really_warps():
    a, b = _square(60, 37), _square(68, 37)             # the square moved 8 px to the right
    mid = Morph().frame(a, b, 0.5)
    cross = transition_frame("crossfade", a, b, 0.5)
    for img, expect in ((mid, 64.0), (cross, None)):
        mask = img[..., 0] > 200                         # a double exposure stays near 128 here
        ys, xs = np.nonzero(mask)
        if expect is None:
            # the crossfade's bright core is only the overlap; the morph's is a whole square
            cross_area = mask.sum()
            continue
        assert abs(xs.mean() + 0.5 - (expect + 8.0)) <= 1.5, xs.mean()
        assert abs(ys.mean() + 0.5 - (37 + 8.0)) <= 1.0
        morph_area = mask.sum()
    assert morph_area > 1.3 * cross_area, (morph_area, cross_area)
    # a quarter of the way: the square a quarter of the way
    ys, xs = np.nonzero(Morph().frame(a, b, 0.25)[..., 0] > 200)
    assert abs(xs.mean() + 0.5 - (62.0 + 8.0)) <= 1.5


def test_morph_caches_flow_for_a_fixed_pair(pair):
    a, b = pair
    m = Morph()
    frames = [m.frame(a, b, p) for p in np.linspace(0.1, 0.9, 9)]
    assert m.flow_computations == 1
    c = b.copy()
    m.frame(a, c, 0.5)                                   # same content, new array: cached
    assert m.flow_computations == 1
    c[10:30, 10:30] = 255 - c[10:30, 10:30]                # changed content: recomputed
    m.frame(a, c, 0.5)
    assert m.flow_computations == 2
    assert np.array_equal(m.frame(a, b, 0.3), frames[2])     # back to the first pair
    assert m.flow_computations == 3


@pytest.mark.parametrize("kind", TRANSITIONS)
def test_deterministic(kind, pair):
    a, b = pair
    x = transition_frame(kind, a, b, 0.37, direction=3)
    y = transition_frame(kind, a, b, 0.37, direction=3, morph=Morph())
    assert np.array_equal(x, y)


def test_bad_arguments(pair):
    a, b = pair
    with pytest.raises(ValueError, match="unknown transition"):
        transition_frame("dissolve", a, b, 0.5)
    with pytest.raises(ValueError, match="shape"):
        transition_frame("crossfade", a, b[:-1], 0.5)
    with pytest.raises(ValueError, match="uint8"):
        transition_frame("crossfade", a.astype(np.float32), b, 0.5)
    with pytest.raises(ValueError, match=r"\(height, width, 3\)"):
        transition_frame("crossfade", a[..., 0], b[..., 0], 0.5)
    for bad in (-0.01, 1.01, float("nan"), "half", None):
        with pytest.raises(ValueError, match="progress"):
            transition_frame("wipe", a, b, bad)
    for bad in (4, -1, 1.0, True):
        with pytest.raises(ValueError, match="direction"):
            transition_frame("wipe", a, b, 0.5, direction=bad)
    with pytest.raises(ValueError, match="Morph"):
        transition_frame("morph", a, b, 0.5, morph="cache")
    with pytest.raises(ValueError):
        Morph(method="lucas-kanade")
    with pytest.raises(ValueError, match="unknown transition"):
        transition_seconds("dissolve", beat_seconds=0.5)
    for bad in (0, -0.5, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="beat_seconds"):
            transition_seconds("crossfade", beat_seconds=bad)


def test_transition_seconds():
    assert transition_seconds("cut", beat_seconds=0.5) == 0.0
    assert transition_seconds("crossfade", beat_seconds=0.5) == pytest.approx(0.5)
    assert transition_seconds("zoom", beat_seconds=0.5) == pytest.approx(0.25)
    for kind in ("crossfade", "wipe", "blur", "morph"):
        assert transition_seconds(kind, beat_seconds=2.0) == 1.0           # 30 BPM: capped
        assert transition_seconds(kind, beat_seconds=0.05) == pytest.approx(0.1)
    assert transition_seconds("zoom", beat_seconds=0.1) == pytest.approx(0.1)


@pytest.mark.parametrize("kind", TRANSITIONS)
def test_full_hd_smoke(kind):
    a, b = _scene(5, 1080, 1920), _scene(6, 1080, 1920)
    for p in (0.0, 0.3, 0.7, 1.0):
        out = transition_frame(kind, a, b, p, direction=1)
        assert out.shape == (1080, 1920, 3) and out.dtype == np.uint8
    assert np.array_equal(out, b)
    mid = transition_frame(kind, a, b, 0.5)
    if kind != "cut":
        assert 0 < _mad(mid, b) < _mad(a, b)
