"""Optical-flow frame interpolation: retime footage from one frame rate to another.

Generated footage comes at a model's native frame rate (Wan: 16 fps) while every beatframe
output runs at 30 fps. :func:`retime` produces the frames at fractional positions of a clip by
warping its two neighbouring frames along their dense optical flow and blending them, so motion
stays continuous instead of stuttering (frame repetition) or ghosting (plain cross-fades).

How one in-between frame is made (:func:`interpolate_frames`): the flows ``F01`` (frame 0 to
frame 1) and ``F10`` are measured on downscaled grey copies (``cv2.DISOpticalFlow``, or
``cv2.calcOpticalFlowFarneback``) and scaled back to full resolution. Assuming straight,
constant-speed motion between the two frames, the flows from the in-between time ``t`` back to
each frame are ``Ft0 = -(1 - t) t F01 + t^2 F10`` and ``Ft1 = (1 - t)^2 F01 - t (1 - t) F10``
(the linear-motion approximation of Jiang et al., "Super SloMo", CVPR 2018); each frame is
sampled along its flow (``cv2.remap``, borders replicated) and the two are blended with weights
``1 - t`` and ``t``.

Plain numpy/OpenCV: no torch, no Prefect, no I/O; reads no environment variables.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import cv2
import numpy as np

FLOW_METHODS = ("dis", "farneback")

#: positions this close to a whole frame index show that frame unchanged
_SNAP = 1e-3


def _check_frame(frame: np.ndarray, what: str) -> None:
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8 or frame.ndim != 3 \
            or frame.shape[2] != 3:
        got = (f"{frame.dtype} {frame.shape}" if isinstance(frame, np.ndarray)
               else type(frame).__name__)
        raise ValueError(f"{what} must be an RGB uint8 array of shape (height, width, 3), got {got}")


def _check_method(method: str) -> None:
    if method not in FLOW_METHODS:
        raise ValueError(f"unknown flow method {method!r}; use one of {', '.join(FLOW_METHODS)}")


def _grey(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = frame.shape[:2]
    if size != (w, h):
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def optical_flow(*, source: np.ndarray, target: np.ndarray, method: str = "dis",
                 flow_width: int = 480) -> np.ndarray:
    """Dense optical flow from ``source`` to ``target``, at full resolution.

    Parameters
    ----------
    source, target : numpy.ndarray
        RGB uint8 frames of the same shape ``(height, width, 3)``.
    method : {"dis", "farneback"}
        ``dis``: ``cv2.DISOpticalFlow`` (medium preset; fast and sharp at motion edges).
        ``farneback``: ``cv2.calcOpticalFlowFarneback`` (smoother, slower).
    flow_width : int
        The flow is measured on grey copies at most this wide (at least 16) and scaled up: fine
        detail adds little to the flow and costs most of the time.

    Returns
    -------
    numpy.ndarray
        float32 ``(height, width, 2)``: ``source[y, x]`` is found at
        ``target[y + flow[y, x, 1], x + flow[y, x, 0]]``, in full-resolution pixels.
    """
    _check_frame(source, "source")
    _check_frame(target, "target")
    _check_method(method)
    if source.shape != target.shape:
        raise ValueError(f"source and target differ in shape: {source.shape} vs {target.shape}")
    if int(flow_width) < 16:
        raise ValueError(f"flow_width must be at least 16, got {flow_width!r}")
    h, w = source.shape[:2]
    sw = min(w, int(flow_width))
    sh = max(1, round(h * sw / w))
    g0, g1 = _grey(source, (sw, sh)), _grey(target, (sw, sh))
    if method == "farneback":
        flow = cv2.calcOpticalFlowFarneback(g0, g1, None, pyr_scale=0.5, levels=4, winsize=13,
                                            iterations=3, poly_n=5, poly_sigma=1.1, flags=0)
    else:
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        flow = dis.calc(g0, g1, None)
    if (sw, sh) == (w, h):
        return flow
    flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
    flow[..., 0] *= w / sw
    flow[..., 1] *= h / sh
    return flow


def warp(*, frame: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``frame`` sampled along ``flow``: ``out[y, x] = frame[y + flow_y, x + flow_x]``.

    Parameters
    ----------
    frame : numpy.ndarray
        RGB uint8 ``(height, width, 3)``.
    flow : numpy.ndarray
        float32 ``(height, width, 2)`` in pixels; samples outside the frame repeat its border.

    Returns
    -------
    numpy.ndarray
        RGB uint8, the shape of ``frame`` (bilinear sampling).
    """
    _check_frame(frame, "frame")
    h, w = frame.shape[:2]
    if flow.shape != (h, w, 2):
        raise ValueError(f"flow must have shape ({h}, {w}, 2), got {flow.shape}")
    grid = np.empty((h, w, 2), np.float32)
    grid[..., 0] = np.arange(w, dtype=np.float32)[None, :]
    grid[..., 1] = np.arange(h, dtype=np.float32)[:, None]
    grid += flow
    return cv2.remap(frame, grid, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def interpolate_frames(*, frame0: np.ndarray, frame1: np.ndarray, t: float,
                       flow01: np.ndarray | None = None, flow10: np.ndarray | None = None,
                       method: str = "dis", flow_width: int = 480) -> np.ndarray:
    """The frame a fraction ``t`` of the way from ``frame0`` to ``frame1``.

    Parameters
    ----------
    frame0, frame1 : numpy.ndarray
        Consecutive RGB uint8 frames of one shape.
    t : float
        0 gives ``frame0`` exactly, 1 gives ``frame1`` exactly.
    flow01, flow10 : numpy.ndarray, optional
        The flows ``frame0 -> frame1`` and ``frame1 -> frame0`` from :func:`optical_flow`, when
        the caller already has them (many in-between frames of one pair share them).
    method, flow_width
        How flows are measured when not given (see :func:`optical_flow`).

    Returns
    -------
    numpy.ndarray
        RGB uint8, the shape of ``frame0``.
    """
    _check_frame(frame0, "frame0")
    _check_frame(frame1, "frame1")
    t = float(t)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"t must be within [0, 1], got {t!r}")
    if t <= _SNAP:
        return frame0.copy()
    if t >= 1.0 - _SNAP:
        return frame1.copy()
    if flow01 is None:
        flow01 = optical_flow(source=frame0, target=frame1, method=method, flow_width=flow_width)
    if flow10 is None:
        flow10 = optical_flow(source=frame1, target=frame0, method=method, flow_width=flow_width)
    ft0 = (-(1.0 - t) * t) * flow01 + (t * t) * flow10
    ft1 = ((1.0 - t) ** 2) * flow01 - (t * (1.0 - t)) * flow10
    w0 = warp(frame=frame0, flow=ft0.astype(np.float32, copy=False))
    w1 = warp(frame=frame1, flow=ft1.astype(np.float32, copy=False))
    return cv2.addWeighted(w0, 1.0 - t, w1, t, 0.0)


def retime(*, frames: Sequence[np.ndarray], positions: Sequence[float], method: str = "dis",
           flow_width: int = 480) -> Iterator[np.ndarray]:
    """Frames of a clip at fractional positions, interpolated along optical flow.

    Parameters
    ----------
    frames : sequence of numpy.ndarray
        The source clip: RGB uint8 frames of one shape (at least one).
    positions : sequence of float
        For each output frame, its position in source frames (``2.5``: halfway between source
        frames 2 and 3), within ``[0, len(frames) - 1]``. Whole positions show that source frame
        unchanged.
    method, flow_width
        How flows are measured (see :func:`optical_flow`).

    Yields
    ------
    numpy.ndarray
        One RGB uint8 frame per position. The flows of the latest source pair are kept, so
        increasing positions (retiming to a higher frame rate) measure each pair once.
    """
    n = len(frames)
    if n == 0:
        raise ValueError("retime needs at least one source frame")
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 1:
        raise ValueError(f"positions must be one-dimensional, got shape {pos.shape}")
    if len(pos) and (not np.all(np.isfinite(pos)) or pos.min() < 0.0 or pos.max() > n - 1 + _SNAP):
        raise ValueError(f"positions must lie within [0, {n - 1}], got {pos.min():.3f}..{pos.max():.3f}")
    _check_method(method)
    pair: tuple[int, np.ndarray, np.ndarray] | None = None
    for p in pos:
        i = min(int(np.floor(p)), n - 1)
        t = float(p - i)
        if t <= _SNAP or i == n - 1:
            yield frames[i].copy()
            continue
        if t >= 1.0 - _SNAP:
            yield frames[i + 1].copy()
            continue
        if pair is None or pair[0] != i:
            pair = (i,
                    optical_flow(source=frames[i], target=frames[i + 1], method=method,
                                 flow_width=flow_width),
                    optical_flow(source=frames[i + 1], target=frames[i], method=method,
                                 flow_width=flow_width))
        yield interpolate_frames(frame0=frames[i], frame1=frames[i + 1], t=t, flow01=pair[1],
                                 flow10=pair[2])
