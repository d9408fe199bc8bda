"""Flash measurement and the streaming flash guard (WCAG 2.3.1 general flash)."""

from __future__ import annotations

import numpy as np

from beatframe.music.flash import FlashGuard, max_flashes_per_second, region_luminance


def strobe(rate_hz: float, *, fps=30, seconds=3.0, size=(64, 36)) -> list[np.ndarray]:
    """Full-frame black/white alternation at ``rate_hz`` full cycles per second."""
    frames = []
    for i in range(int(fps * seconds)):
        on = int(i * 2 * rate_hz / fps) % 2 == 0
        frames.append(np.full((size[0], size[1], 3), 230 if on else 20, np.uint8))
    return frames


def lum_series(frames):
    return np.array([region_luminance(f) for f in frames])


def test_strobe_counts_its_flashes():
    assert max_flashes_per_second(lum_series(strobe(5)), 30) >= 5
    assert max_flashes_per_second(lum_series(strobe(1)), 30) <= 1


def test_guard_keeps_a_fast_strobe_within_three_flashes_per_second():
    guard = FlashGuard(fps=30)
    out = list(guard.apply(strobe(6)))
    assert max_flashes_per_second(lum_series(out), 30) <= 3
    assert guard.softened > 0


def test_guard_leaves_safe_content_untouched():
    frames = strobe(1)
    guard = FlashGuard(fps=30)
    out = list(guard.apply(frames))
    assert guard.softened == 0
    assert all(a is b for a, b in zip(frames, out))


def test_a_quarter_of_the_frame_counts_on_its_own():
    frames = []
    for i in range(90):
        f = np.full((64, 36, 3), 40, np.uint8)
        if (i // 3) % 2 == 0:
            f[:32, :18] = 250
        frames.append(f)
    assert max_flashes_per_second(lum_series(frames), 30) >= 4
    out = list(FlashGuard(fps=30).apply(frames))
    assert max_flashes_per_second(lum_series(out), 30) <= 3
