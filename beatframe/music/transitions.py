"""Shot transitions for full-length music videos.

A music video changes shot on beats (and section on downbeats); the stitcher asks this module for
the frames that carry one shot into the next. Each transition is a pure function of two RGB frames
and a progress value, so it works equally for two still frames and for two moving scenes (both
frames change on every output frame, the common case):

``cut``        instantaneous: the incoming frame as soon as ``progress > 0``.
``crossfade``  an eased (smoothstep) linear blend.
``wipe``       a soft-edged wipe (edge feathered over ~3 % of the frame width) in one of four
               directions.
``zoom``       the outgoing shot zooms in (to 1.6x) while fading to the incoming shot, which
               grows from 0.7x to 1x (the border it leaves is filled by mirroring, never black).
``blur``       the outgoing shot blurs out while the incoming shot blurs in, cross-blended; the
               blur runs on a downscaled copy so it is cheap at 1920x1080.
``morph``      an optical-flow morph: dense flow between the two frames on a downscaled grey
               image, outgoing warped forward by ``progress * flow``, incoming backward by
               ``(1 - progress) * flow``, blended by progress. :class:`Morph` keeps the flow of
               the last pair, so stepping a fixed pair through progress computes it once.

Every transition is a blend of (possibly moved, scaled or blurred) copies of the two frames, with
weights that sum to one and borders filled from the image itself: none can produce a full-frame
white or black flash of its own. ``progress = 0`` gives exactly the outgoing frame and
``progress = 1`` exactly the incoming frame; the inputs are never modified.

Cost per 1920x1080 frame on one (shared, loaded) core, both frames changing every frame: cut,
crossfade and wipe under 1.5 ms; zoom and blur 7-8.5 ms; morph about 23 ms with bilinear warps
(``Morph(interpolation="nearest")`` about 17 ms), of which the flow is only ~1.5 ms (DIS) - the
two full-resolution ``cv2.remap`` calls dominate. Plain numpy/OpenCV: no Prefect, no I/O.

This module is the one list of transitions: each is a drawing function registered with its name,
its default length in beats and its one-line description (:data:`REGISTRY`), so adding one is one
function and one ``@_register`` line here; :data:`TRANSITIONS`, the scene edits' checks and the
API's list all read the registry.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import cv2
import numpy as np

WIPE_DIRECTIONS = ("left_to_right", "right_to_left", "top_to_bottom", "bottom_to_top")

#: feather of the wipe edge, as a fraction of the frame width
WIPE_FEATHER = 0.03
#: the outgoing shot's final scale in ``zoom``
ZOOM_OUT_SCALE = 1.6
#: the incoming shot's starting scale in ``zoom``
ZOOM_IN_SCALE = 0.7
#: strongest blur in ``blur``: Gaussian sigma as a fraction of the frame width
BLUR_SIGMA = 0.02

# A transition's default length (its beats, see REGISTRY) is capped to this range.
_MIN_SECONDS, _MAX_SECONDS = 0.1, 1.0


@dataclass(frozen=True)
class Transition:
    """One registered transition.

    Attributes
    ----------
    name : str
        What scenes, plans and the API call it.
    description : str
        One line for people (the API's transition list).
    beats : float
        Its default length in beats (:func:`transition_seconds`); 0 for an instant change.
    draw : callable
        ``draw(outgoing, incoming, progress, *, direction, morph)``: the frame at ``0 < progress
        < 1``, for checked inputs (the endpoints never reach it).
    """

    name: str
    description: str
    beats: float
    draw: Callable[..., np.ndarray]


_REGISTRY: dict[str, Transition] = {}


def _register(name: str, *, beats: float, description: str
              ) -> Callable[[Callable[..., np.ndarray]], Callable[..., np.ndarray]]:
    """Register the decorated drawing function as transition ``name`` (in the order registered)."""
    def add(draw: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        if name in _REGISTRY:
            raise ValueError(f"transition {name!r} is registered twice")
        _REGISTRY[name] = Transition(name=name, description=description, beats=beats, draw=draw)
        return draw
    return add


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3.0 - 2.0 * x)


def _check_kind(kind: str) -> None:
    if not isinstance(kind, str) or kind not in _REGISTRY:
        raise ValueError(f"unknown transition {kind!r}; known transitions: {', '.join(_REGISTRY)}")


def _check_frames(outgoing: np.ndarray, incoming: np.ndarray) -> None:
    for name, frame in (("outgoing", outgoing), ("incoming", incoming)):
        if not isinstance(frame, np.ndarray):
            raise ValueError(f"{name} frame must be a numpy array, got {type(frame).__name__}")
        if frame.dtype != np.uint8:
            raise ValueError(f"{name} frame must be uint8, got {frame.dtype}")
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
            raise ValueError(f"{name} frame must have shape (height, width, 3), got {frame.shape}")
    if outgoing.shape != incoming.shape:
        raise ValueError(f"frames differ in shape: outgoing {outgoing.shape}, "
                         f"incoming {incoming.shape}")


def _check_progress(progress: float) -> float:
    try:
        p = float(progress)
    except (TypeError, ValueError):
        raise ValueError(f"progress must be a number in [0, 1], got {progress!r}") from None
    if not (0.0 <= p <= 1.0):  # also rejects NaN
        raise ValueError(f"progress must be in [0, 1], got {progress!r}")
    return p


def _check_direction(direction: int) -> int:
    if isinstance(direction, bool) or not isinstance(direction, (int, np.integer)) \
            or not 0 <= int(direction) <= 3:
        raise ValueError(f"direction must be an int 0-3 ({', '.join(WIPE_DIRECTIONS)}), "
                         f"got {direction!r}")
    return int(direction)


# --------------------------------------------------------------------------------------------
# the transitions (blends last one beat; zoom half a beat, as it is a fast move)


@_register("cut", beats=0.0, description="Instant cut")
def _cut(a: np.ndarray, b: np.ndarray, p: float, **_) -> np.ndarray:
    return b.copy()


@_register("crossfade", beats=1.0, description="Smooth blend")
def _crossfade(a: np.ndarray, b: np.ndarray, p: float, **_) -> np.ndarray:
    w = _smoothstep(p)
    return cv2.addWeighted(a, 1.0 - w, b, w, 0.0)


def _oriented(frame: np.ndarray, direction: int) -> np.ndarray:
    """A view of ``frame`` in which the wipe always runs left to right along axis 1."""
    if direction == 0:
        return frame
    if direction == 1:
        return frame[:, ::-1]
    if direction == 2:
        return frame.transpose(1, 0, 2)
    return frame[::-1].transpose(1, 0, 2)


@_register("wipe", beats=1.0, description="Directional wipe")
def _wipe(a: np.ndarray, b: np.ndarray, p: float, *, direction: int, **_) -> np.ndarray:
    out = np.empty_like(a)
    va, vb, vo = (_oriented(x, direction) for x in (a, b, out))
    length = va.shape[1]
    feather = max(2.0, WIPE_FEATHER * a.shape[1])
    # the edge's leading side runs from -feather (all outgoing) to length (all incoming)
    x0 = _smoothstep(p) * (length + feather) - feather
    c0 = int(min(length, max(0, math.floor(x0))))            # columns < c0: incoming
    c1 = int(min(length, max(0, math.ceil(x0 + feather))))   # columns >= c1: outgoing
    vo[:, :c0] = vb[:, :c0]
    vo[:, c1:] = va[:, c1:]
    if c1 > c0:
        cols = np.arange(c0, c1, dtype=np.float32) + 0.5
        alpha = np.clip((x0 + feather - cols) / feather, 0.0, 1.0)       # weight of incoming
        alpha = np.round(alpha * 256.0).astype(np.uint16)[None, :, None]
        band = vb[:, c0:c1].astype(np.uint16) * alpha
        band += va[:, c0:c1].astype(np.uint16) * (256 - alpha)
        band += 128
        vo[:, c0:c1] = (band >> 8).astype(np.uint8)
    return out


def _centered(size: int, scale: float) -> int:
    """``size * scale`` rounded to the parity of ``size`` (so the image stays centred), >= 1."""
    pad = round((size - size * scale) / 2.0)
    return max(1 if size % 2 else 2, size - 2 * pad) if size > 1 else 1


@_register("zoom", beats=0.5, description="Zoom transition")
def _zoom(a: np.ndarray, b: np.ndarray, p: float, **_) -> np.ndarray:
    h, w = a.shape[:2]
    e = _smoothstep(p)
    # outgoing: crop the centre (1 / scale of the frame) and blow it up
    s_out = 1.0 + (ZOOM_OUT_SCALE - 1.0) * e
    cw, ch = min(w, _centered(w, 1.0 / s_out)), min(h, _centered(h, 1.0 / s_out))
    x, y = (w - cw) // 2, (h - ch) // 2
    za = cv2.resize(a[y:y + ch, x:x + cw], (w, h), interpolation=cv2.INTER_LINEAR)
    # incoming: shrink and mirror-fill the border (a frame, never black)
    s_in = ZOOM_IN_SCALE + (1.0 - ZOOM_IN_SCALE) * e
    iw, ih = min(w, _centered(w, s_in)), min(h, _centered(h, s_in))
    zb = cv2.resize(b, (iw, ih), interpolation=cv2.INTER_LINEAR) if (iw, ih) != (w, h) else b
    px, py = (w - iw) // 2, (h - ih) // 2
    if px or py:
        zb = cv2.copyMakeBorder(zb, py, h - ih - py, px, w - iw - px, cv2.BORDER_REFLECT)
    return cv2.addWeighted(za, 1.0 - e, zb, e, 0.0)


def _halvings(h: int, w: int) -> int:
    """How many 2x box downscales ``blur`` works after (3 at 1920x1080, 0 for tiny frames)."""
    n = 0
    while n < 3 and w >> (n + 1) >= 160 and h >> (n + 1) >= 90:
        n += 1
    return n


def _shrink(frame: np.ndarray, n: int) -> np.ndarray:
    for _ in range(n):
        h, w = frame.shape[:2]
        frame = cv2.resize(frame, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
    return frame


@_register("blur", beats=1.0, description="Blur effect")
def _blur(a: np.ndarray, b: np.ndarray, p: float, **_) -> np.ndarray:
    h, w = a.shape[:2]
    wb = _smoothstep(p)                       # weight of the incoming shot
    ba = _smoothstep(2.0 * p)                 # how blurred the outgoing shot is
    bb = _smoothstep(2.0 * (1.0 - p))         # how blurred the incoming shot is
    n = _halvings(h, w)
    sigma = max(0.5, BLUR_SIGMA * w / (1 << n))
    ka = (1.0 - wb) * ba
    kb = wb * bb
    # blur is linear, so blend the two blurred copies at low resolution and upscale once
    small = np.zeros(0)
    if ka > 0:
        small = cv2.GaussianBlur(_shrink(a, n).astype(np.float32), (0, 0), sigma,
                                 borderType=cv2.BORDER_REFLECT) * ka
    if kb > 0:
        sb = cv2.GaussianBlur(_shrink(b, n).astype(np.float32), (0, 0), sigma,
                              borderType=cv2.BORDER_REFLECT) * kb
        small = sb if small.size == 0 else small + sb
    sharp = cv2.addWeighted(a, (1.0 - wb) * (1.0 - ba), b, wb * (1.0 - bb), 0.0)
    if small.size == 0:
        return sharp
    small = np.clip(small + 0.5, 0, 255).astype(np.uint8)
    soft = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR) if n else small
    return cv2.add(sharp, soft)


class Morph:
    """Optical-flow morph between two frames, with the flow of the last pair cached.

    The flow is computed on greyscale copies downscaled to about ``flow_width`` pixels wide
    (a quarter of 1920x1080), smoothed and capped, then used at full resolution: the outgoing
    frame is warped forward by ``progress * flow`` and the incoming frame backward by
    ``(1 - progress) * flow`` (``cv2.remap``, borders replicated), and the two are blended with an
    eased weight. The downscaled grey pair is the cache key, so calling :meth:`frame` with the
    same pair at many progress values computes the flow once, and a pair whose content changed
    (even in a reused buffer) is never served a stale flow.

    One instance is not thread-safe; use one per thread (``transition_frame`` does).

    Parameters
    ----------
    method : {"farneback", "dis"}
        ``farneback``: ``cv2.calcOpticalFlowFarneback`` (smooth, ~10 ms at 480x270 on one core).
        ``dis``: ``cv2.DISOpticalFlow`` (ultrafast preset, ~1 ms at 480x270), smoothed.
    interpolation : {"linear", "nearest"}
        Sampling of the full-resolution warp; ``nearest`` roughly halves the warp's cost.
    flow_width : int
        Width of the image the flow is computed on (never more than the frame's width).
    max_flow : float
        Cap on the flow's magnitude, as a fraction of the frame width (unrelated scenes give
        large, meaningless flows; capping keeps the morph a gentle warp there).
    """

    def __init__(self, *, method: str = "dis", interpolation: str = "linear",
                 flow_width: int = 480, max_flow: float = 0.08) -> None:
        if method not in ("farneback", "dis"):
            raise ValueError(f"unknown flow method {method!r}; use 'farneback' or 'dis'")
        if interpolation not in ("linear", "nearest"):
            raise ValueError(f"unknown interpolation {interpolation!r}; use 'linear' or 'nearest'")
        if int(flow_width) < 16:
            raise ValueError(f"flow_width must be at least 16, got {flow_width!r}")
        if not 0.0 < float(max_flow) <= 1.0:
            raise ValueError(f"max_flow must be in (0, 1], got {max_flow!r}")
        self.method = method
        self.interpolation = interpolation
        self.flow_width = int(flow_width)
        self.max_flow = float(max_flow)
        self._dis = None
        self._key: tuple[np.ndarray, np.ndarray] | None = None
        self._flow: np.ndarray | None = None
        self._grid_shape: tuple[int, int, int, int] | None = None
        self._grid: np.ndarray | None = None
        self._buffers: dict[str, np.ndarray] = {}
        #: how many times the flow was computed (not served from the cache)
        self.flow_computations = 0

    # -- flow ---------------------------------------------------------------------------------

    def _small_size(self, h: int, w: int) -> tuple[int, int]:
        sw = min(w, self.flow_width)
        sh = max(1, round(h * sw / w))
        return sw, sh

    def _grey(self, frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        h, w = frame.shape[:2]
        if size != (w, h):
            # halve with exact 2x box filters first (cheap), then one area resize
            while frame.shape[1] // 2 >= size[0] and frame.shape[0] // 2 >= size[1]:
                fh, fw = frame.shape[:2]
                frame = cv2.resize(frame, (fw // 2, fh // 2), interpolation=cv2.INTER_AREA)
            if frame.shape[1::-1] != size:
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)

    def _compute_flow(self, g0: np.ndarray, g1: np.ndarray) -> np.ndarray:
        self.flow_computations += 1
        if self.method == "farneback":
            flow = cv2.calcOpticalFlowFarneback(g0, g1, None, pyr_scale=0.5, levels=3,
                                                winsize=9, iterations=2, poly_n=5,
                                                poly_sigma=1.1, flags=0)
        else:
            if self._dis is None:
                self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
            flow = self._dis.calc(g0, g1, None)
        sw = g0.shape[1]
        sigma = max(1.0, sw / 240.0)
        flow = cv2.GaussianBlur(flow, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
        cap = self.max_flow * sw
        mag = np.sqrt(flow[..., 0] ** 2 + flow[..., 1] ** 2)
        over = mag > cap
        if over.any():
            flow[over] *= (cap / mag[over])[:, None]
        return flow

    def flow(self, outgoing: np.ndarray, incoming: np.ndarray) -> np.ndarray:
        """Flow from ``outgoing`` to ``incoming`` on the downscaled grid, in downscaled pixels.

        ``outgoing[y, x]`` is found near ``incoming[y + fy, x + fx]`` (scaled). Cached: the
        same downscaled grey pair returns the same array without recomputing.
        """
        _check_frames(outgoing, incoming)
        h, w = outgoing.shape[:2]
        size = self._small_size(h, w)
        g0, g1 = self._grey(outgoing, size), self._grey(incoming, size)
        key = self._key
        if (key is None or self._flow is None or key[0].shape != g0.shape
                or not np.array_equal(key[0], g0) or not np.array_equal(key[1], g1)):
            self._flow = self._compute_flow(g0, g1)
            self._key = (g0, g1)
        return self._flow

    # -- warp ---------------------------------------------------------------------------------

    def _base_grid(self, h: int, w: int, sh: int, sw: int) -> np.ndarray:
        """Full-resolution coordinates of the centres of the downscaled grid's pixels."""
        if self._grid_shape != (h, w, sh, sw):
            sx, sy = w / sw, h / sh
            xs = (np.arange(sw, dtype=np.float32) + 0.5) * sx - 0.5
            ys = (np.arange(sh, dtype=np.float32) + 0.5) * sy - 0.5
            grid = np.empty((sh, sw, 2), np.float32)
            grid[..., 0] = xs[None, :]
            grid[..., 1] = ys[:, None]
            self._grid, self._grid_shape = grid, (h, w, sh, sw)
        return self._grid

    def _scratch(self, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """A reused work buffer (fresh 1080p buffers cost page faults on every frame)."""
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._buffers[name] = np.empty(shape, dtype)
        return buf

    def _warp(self, frame4: np.ndarray, flow: np.ndarray, amount: float, dst: np.ndarray
              ) -> np.ndarray:
        """``frame4`` (RGBA) sampled at ``x + amount * flow(x)`` (flow in downscaled pixels)."""
        h, w = frame4.shape[:2]
        sh, sw = flow.shape[:2]
        grid = self._base_grid(h, w, sh, sw)
        scale = np.array([amount * w / sw, amount * h / sh], np.float32)
        small_map = grid + flow * scale
        # bilinear upsampling reproduces the (affine) grid exactly inside the frame, so the
        # full-resolution map is one resize of the small one
        if (sh, sw) == (h, w):
            full = small_map
        else:
            full = cv2.resize(small_map, (w, h), dst=self._scratch("map", (h, w, 2), np.float32),
                              interpolation=cv2.INTER_LINEAR)
        # fixed-point maps and 4 channels take OpenCV's fastest remap paths
        m1 = self._scratch("map1", (h, w, 2), np.int16)
        if self.interpolation == "linear":
            m2 = self._scratch("map2", (h, w), np.uint16)
            m1, m2 = cv2.convertMaps(full, None, cv2.CV_16SC2, dstmap1=m1, dstmap2=m2)
            return cv2.remap(frame4, m1, m2, cv2.INTER_LINEAR, dst=dst,
                             borderMode=cv2.BORDER_REPLICATE)
        m1, _ = cv2.convertMaps(full, None, cv2.CV_16SC2, dstmap1=m1, nninterpolation=True)
        return cv2.remap(frame4, m1, None, cv2.INTER_NEAREST, dst=dst,
                         borderMode=cv2.BORDER_REPLICATE)

    def frame(self, outgoing: np.ndarray, incoming: np.ndarray, progress: float) -> np.ndarray:
        """The morph frame at ``progress`` (0: ``outgoing`` exactly, 1: ``incoming`` exactly).

        Parameters
        ----------
        outgoing, incoming : numpy.ndarray
            RGB uint8 frames of equal shape ``(height, width, 3)``; never modified.
        progress : float
            Position in the transition, 0-1.

        Returns
        -------
        numpy.ndarray
            A new RGB uint8 frame of the same shape.
        """
        _check_frames(outgoing, incoming)
        p = _check_progress(progress)
        if p == 0.0:
            return outgoing.copy()
        if p == 1.0:
            return incoming.copy()
        flow = self.flow(outgoing, incoming)
        h, w = outgoing.shape[:2]
        rgba = self._scratch("rgba", (h, w, 4), np.uint8)
        # outgoing moved forward by p * flow, incoming back by (1 - p) * flow
        rgba = cv2.cvtColor(outgoing, cv2.COLOR_RGB2RGBA, dst=rgba)
        wa = self._warp(rgba, flow, -p, self._scratch("warp_a", (h, w, 4), np.uint8))
        rgba = cv2.cvtColor(incoming, cv2.COLOR_RGB2RGBA, dst=rgba)
        wb = self._warp(rgba, flow, 1.0 - p, self._scratch("warp_b", (h, w, 4), np.uint8))
        wgt = _smoothstep(p)
        blend = cv2.addWeighted(wa, 1.0 - wgt, wb, wgt, 0.0, dst=rgba)
        return cv2.cvtColor(blend, cv2.COLOR_RGBA2RGB)


_local = threading.local()


def _default_morph() -> Morph:
    morph = getattr(_local, "morph", None)
    if morph is None:
        morph = _local.morph = Morph()
    return morph


@_register("morph", beats=1.0, description="Optical-flow morph between the two shots")
def _morph(a: np.ndarray, b: np.ndarray, p: float, *, morph: Morph | None, **_) -> np.ndarray:
    if morph is not None and not isinstance(morph, Morph):
        raise ValueError(f"morph must be a Morph instance, got {type(morph).__name__}")
    return (morph or _default_morph()).frame(a, b, p)


#: Every transition by name, in the order registered (read-only).
REGISTRY: Mapping[str, Transition] = MappingProxyType(_REGISTRY)
#: The transitions' names.
TRANSITIONS = tuple(_REGISTRY)


def transition_frame(kind: str, outgoing: np.ndarray, incoming: np.ndarray, progress: float, *,
                     direction: int = 0, morph: Morph | None = None) -> np.ndarray:
    """One frame of a shot transition.

    Parameters
    ----------
    kind : str
        One of :data:`TRANSITIONS`.
    outgoing, incoming : numpy.ndarray
        RGB uint8 frames of equal shape ``(height, width, 3)``; never modified.
    progress : float
        Position in the transition, 0-1: 0 gives ``outgoing`` exactly, 1 gives ``incoming``
        exactly.
    direction : int
        For ``wipe``: 0 left to right, 1 right to left, 2 top to bottom, 3 bottom to top
        (the side the incoming shot enters from, then where it goes). Checked for every kind.
    morph : Morph, optional
        For ``morph``: the :class:`Morph` whose flow cache to use (a per-thread default
        otherwise, which already reuses the flow while the same pair is passed again).

    Returns
    -------
    numpy.ndarray
        A new RGB uint8 frame of the same shape.

    Raises
    ------
    ValueError
        Unknown ``kind``, frames that are not uint8 ``(H, W, 3)`` arrays of equal shape,
        ``progress`` outside [0, 1], or ``direction`` outside 0-3.
    """
    _check_kind(kind)
    _check_frames(outgoing, incoming)
    p = _check_progress(progress)
    d = _check_direction(direction)
    if p == 0.0:
        return outgoing.copy()
    if p == 1.0:
        return incoming.copy()
    return _REGISTRY[kind].draw(outgoing, incoming, p, direction=d, morph=morph)


def transition_seconds(kind: str, *, beat_seconds: float) -> float:
    """A musically sensible default duration for a transition.

    Parameters
    ----------
    kind : str
        One of :data:`TRANSITIONS`.
    beat_seconds : float
        Length of one beat (``60 / bpm``), > 0.

    Returns
    -------
    float
        The transition's :attr:`Transition.beats` (one beat for the blends, half a beat for
        ``zoom``), within 0.1-1.0 s; 0 for ``cut``.
    """
    _check_kind(kind)
    try:
        beat = float(beat_seconds)
    except (TypeError, ValueError):
        raise ValueError(f"beat_seconds must be a positive number, got {beat_seconds!r}") from None
    if not math.isfinite(beat) or beat <= 0:
        raise ValueError(f"beat_seconds must be a positive number, got {beat_seconds!r}")
    beats = _REGISTRY[kind].beats
    if beats == 0:
        return 0.0
    return float(min(_MAX_SECONDS, max(_MIN_SECONDS, beats * beat)))
