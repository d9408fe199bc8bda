"""Optical-flow interpolation (beatframe.models.interpolation): in-between frames land in between."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from beatframe.models.interpolation import interpolate_frames, optical_flow, retime, warp


def _texture(size: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture, twice ``size`` a side (room to shift a window in it)."""
    rng = np.random.default_rng(seed)
    img = (rng.random((2 * size, 2 * size, 3)) * 255).astype(np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), size / 32)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)


def _window(tex: np.ndarray, size: int, dx: float) -> np.ndarray:
    """A ``size`` square of ``tex`` whose content sits ``dx`` px further right (sub-pixel ok)."""
    m = np.float32([[1, 0, dx - size / 2], [0, 1, -size / 2]])
    return cv2.warpAffine(tex, m, (size, size), flags=cv2.INTER_LINEAR)


def _shift(a: np.ndarray, b: np.ndarray) -> float:
    """Horizontal shift of ``b``'s content relative to ``a``'s (phase correlation)."""
    ga = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64)
    gb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64)
    (dx, _), _ = cv2.phaseCorrelate(ga, gb)
    return dx


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_flow_measures_a_shift(method):
    tex = _texture(96)
    f0, f1 = _window(tex, 96, 0), _window(tex, 96, 6)
    flow = optical_flow(source=f0, target=f1, method=method)
    assert flow.shape == (96, 96, 2) and flow.dtype == np.float32
    assert np.median(flow[16:-16, 16:-16, 0]) == pytest.approx(6.0, abs=0.5)
    assert abs(np.median(flow[16:-16, 16:-16, 1])) < 0.5


def test_interpolated_frame_lands_in_between():
    size, shift = 128, 16
    tex = _texture(size)
    f0, f1 = _window(tex, size, 0), _window(tex, size, shift)
    for t in (0.25, 0.5, 0.75):
        mid = interpolate_frames(frame0=f0, frame1=f1, t=t)
        assert mid.shape == f0.shape and mid.dtype == np.uint8
        assert _shift(f0, mid) == pytest.approx(t * shift, abs=1.0)
        # and it looks like the true in-between picture, far better than a cross-fade
        truth = _window(tex, size, t * shift).astype(np.float32)
        inner = (slice(shift, -shift), slice(shift, -shift))
        err = np.abs(mid.astype(np.float32) - truth)[inner].mean()
        fade = cv2.addWeighted(f0, 1 - t, f1, t, 0).astype(np.float32)
        assert err < 0.5 * np.abs(fade - truth)[inner].mean()


def test_interpolation_ends_are_the_frames_themselves():
    tex = _texture(64)
    f0, f1 = _window(tex, 64, 0), _window(tex, 64, 4)
    assert np.array_equal(interpolate_frames(frame0=f0, frame1=f1, t=0.0), f0)
    assert np.array_equal(interpolate_frames(frame0=f0, frame1=f1, t=1.0), f1)


def test_retime_bridges_16_to_30_fps():
    """A pan at 16 fps retimed to 30 fps moves by the same amount every output frame."""
    size, speed = 96, 8.0  # px per native frame
    tex = _texture(size, seed=1)
    native = [_window(tex, size, k * speed) for k in range(5)]
    positions = np.arange(0, 4 * 30 / 16 + 1e-9) * 16 / 30  # 30 fps timestamps in native frames
    out = list(retime(frames=native, positions=positions))
    assert len(out) == len(positions)
    assert np.array_equal(out[0], native[0])
    steps = [_shift(a, b) for a, b in zip(out, out[1:])]
    assert np.allclose(steps, speed * 16 / 30, atol=0.8), steps


def test_warp_follows_the_flow():
    tex = _texture(64)
    frame = _window(tex, 64, 0)
    flow = np.zeros((64, 64, 2), np.float32)
    flow[..., 0] = -3.0  # sample 3 px to the left: the content moves right
    moved = warp(frame=frame, flow=flow)
    assert np.array_equal(moved[:, 3:], frame[:, :-3])
    assert np.array_equal(moved[:, :3], np.repeat(frame[:, :1], 3, axis=1))  # border repeated


def test_bad_inputs_are_refused():
    tex = _texture(32)
    f = _window(tex, 32, 0)
    with pytest.raises(ValueError, match="RGB uint8"):
        optical_flow(source=f.astype(np.float32), target=f)
    with pytest.raises(ValueError, match="shape"):
        optical_flow(source=f, target=f[:16])
    with pytest.raises(ValueError, match="unknown flow method"):
        optical_flow(source=f, target=f, method="lucas-kanade")
    with pytest.raises(ValueError, match="within"):
        interpolate_frames(frame0=f, frame1=f, t=1.5)
    with pytest.raises(ValueError, match="within"):
        list(retime(frames=[f, f], positions=[0.0, 1.5]))
    with pytest.raises(ValueError, match="at least one"):
        list(retime(frames=[], positions=[0.0]))
