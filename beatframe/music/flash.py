"""Photosensitive-flash safety (WCAG 2.3.1, general flash): measurement and a streaming guard.

A *flash* is a pair of opposing changes of relative (linear) luminance of at least 0.1 where the
darker state is below 0.8; content is safe with no more than three flashes in any one second,
judged on the whole frame and on each quarter of it. :func:`max_flashes_per_second` measures a
clip; :class:`FlashGuard` sits between a generator and the encoder and softens any frame that
would make a fourth flash within a second, whatever the tempo.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

FLASH_DELTA = 0.1
DARK_LIMIT = 0.8
MAX_FLASHES_PER_SECOND = 3
_PROBE_PIXELS = 160 * 90  # about this many pixels are sampled per frame


def _srgb_to_linear_lut() -> np.ndarray:
    c = np.arange(256, dtype=np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


_LINEAR = _srgb_to_linear_lut()


def region_luminance(frame_rgb: np.ndarray) -> np.ndarray:
    """Mean relative luminance of the whole frame and of its four quarters, shape ``(5,)``.

    Measured on an evenly strided sample of about ``_PROBE_PIXELS`` pixels: region means of
    rendered frames are smooth, and sampling keeps the guard cheap on every frame of a render.
    """
    h, w = frame_rgb.shape[:2]
    stride = max(1, int(np.sqrt(h * w / _PROBE_PIXELS)))
    small = frame_rgb[stride // 2::stride, stride // 2::stride]
    lin = _LINEAR[small]
    lum = 0.2126 * lin[..., 0] + 0.7152 * lin[..., 1] + 0.0722 * lin[..., 2]
    h, w = lum.shape
    quarters = [lum[i * h // 2:(i + 1) * h // 2, j * w // 2:(j + 1) * w // 2].mean()
                for i in range(2) for j in range(2)]
    return np.array([lum.mean(), *quarters], dtype=np.float64)


@dataclass
class _RegionTracker:
    """WCAG transition state of one region: the last extreme and the direction of change."""

    last_extreme: float | None = None
    direction: int = 0
    transitions: int = 0
    flash_times: deque = field(default_factory=deque)

    def step(self, value: float, t: float, *, commit: bool) -> bool:
        """Feed one luminance value; return True if it completes a new flash."""
        if self.last_extreme is None:
            if commit:
                self.last_extreme = value
            return False
        last, direction, transitions = self.last_extreme, self.direction, self.transitions
        flash = False
        delta = value - last
        if abs(delta) >= FLASH_DELTA and min(value, last) < DARK_LIMIT:
            new_direction = 1 if delta > 0 else -1
            if new_direction != direction:
                transitions += 1
                direction = new_direction
                flash = transitions % 2 == 0
            last = value
        elif (direction >= 0 and value > last) or (direction < 0 and value < last):
            last = value
        if commit:
            self.last_extreme, self.direction, self.transitions = last, direction, transitions
            if flash:
                self.flash_times.append(t)
        return flash

    def flashes_within(self, t: float, window: float = 1.0) -> int:
        while self.flash_times and self.flash_times[0] <= t - window:
            self.flash_times.popleft()
        return len(self.flash_times)


class FlashGuard:
    """Softens frames that would exceed ``max_per_second`` flashes in any one-second window.

    An offending frame is blended toward the previous output frame, just enough that the
    luminance change no longer counts as a flash transition. Frames that are safe pass through
    untouched, so a well-behaved generator is never altered. ``softened`` counts the frames
    that were changed; ``luminance`` keeps the region luminance of every frame let through, so
    a long render can be flash-checked without decoding it again.
    """

    def __init__(self, *, fps: float, max_per_second: int = MAX_FLASHES_PER_SECOND - 1) -> None:
        # One flash of margin: encoding can shift luminance slightly.
        self.fps = fps
        self.max_per_second = max_per_second
        self._regions = [_RegionTracker() for _ in range(5)]
        self._previous: np.ndarray | None = None
        self._index = 0
        self.softened = 0
        self.luminance: list[np.ndarray] = []

    def _would_exceed(self, lum: np.ndarray, t: float) -> bool:
        for tracker, value in zip(self._regions, lum):
            if tracker.step(float(value), t, commit=False) and tracker.flashes_within(t) + 1 > self.max_per_second:
                return True
        return False

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        t = self._index / self.fps
        self._index += 1
        lum = region_luminance(frame)
        if self._previous is not None and self._would_exceed(lum, t):
            frame, lum = self._soften(frame, t)
            self.softened += 1
        for tracker, value in zip(self._regions, lum):
            tracker.step(float(value), t, commit=True)
        self._previous = frame
        self.luminance.append(lum)
        return frame

    def _soften(self, frame: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = 0.0, 1.0  # weight of the new frame
        for _ in range(7):
            mid = (lo + hi) / 2
            candidate = cv2.addWeighted(frame, mid, self._previous, 1.0 - mid, 0.0)
            if self._would_exceed(region_luminance(candidate), t):
                hi = mid
            else:
                lo = mid
        out = cv2.addWeighted(frame, lo, self._previous, 1.0 - lo, 0.0)
        return out, region_luminance(out)

    def apply(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for frame in frames:
            yield self(frame)


def max_flashes_per_second(luminance: np.ndarray, fps: float) -> int:
    """The most flashes in any one-second window, over regions, of a ``(frames, regions)`` series."""
    worst = 0
    for region in np.atleast_2d(luminance.T):
        tracker = _RegionTracker()
        times = []
        for i, value in enumerate(region):
            if tracker.step(float(value), i / fps, commit=True):
                times.append(i / fps)
        t = np.array(times)
        for start in t:
            worst = max(worst, int(np.sum((t >= start) & (t < start + 1.0))))
    return worst
