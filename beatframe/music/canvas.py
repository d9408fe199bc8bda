"""Canvas rendering: the plain functions the Canvas flow's tasks wrap.

:func:`render_loop_clip` renders a planned window with a generator, assembles the loop
(continuous, rebound or hard cut), passes every frame through the flash guard and encodes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beatframe.infra.encode import CANVAS_H264, encode_frames
from beatframe.music.flash import FlashGuard
from beatframe.music.schemas import LoopMode
from beatframe.music.timeline import LoopTimeline

@dataclass(frozen=True)
class ClipResult:
    frames: int
    softened_frames: int


def loop_frames(frames: Iterator[np.ndarray], mode: LoopMode,
                order: Sequence[int] | None = None) -> Iterator[np.ndarray]:
    """Assemble the loop: ``rebound`` plays the rendered half forward, then backward.

    ``order`` gives, for each output frame, the index of the rendered frame to show (see
    :func:`beatframe.music.planning.rebound_order`); by default the backward half is an even mirror
    that skips both end frames, so neither shows twice in a row and the last frame steps into
    the first like any other frame.
    """
    if mode != "rebound":
        yield from frames
        return
    forward = list(frames)
    if order is None:
        order = list(range(len(forward))) + list(range(len(forward) - 2, 0, -1))
    for index in order:
        yield forward[index]


def render_loop_clip(
    *,
    generator,
    timeline: LoopTimeline,
    template,
    size: tuple[int, int],
    seed: int,
    loop_mode: LoopMode,
    out_path: Path,
    order: Sequence[int] | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> ClipResult:
    """Render, loop, flash-guard and encode one Canvas clip to ``out_path`` (atomically)."""
    frames = generator.render(timeline=timeline, template=template, size=size, seed=seed,
                              cut_on_downbeats=loop_mode == "hard_cut")
    guard = FlashGuard(fps=timeline.fps)
    total = len(order) if order is not None else (
        timeline.n_frames if loop_mode != "rebound" else 2 * (timeline.n_frames - 1))
    step = max(1, total // 20)

    def progress(i: int) -> None:
        if on_progress is not None and (i % step == 0 or i == total):
            on_progress(min(1.0, i / total))

    count = encode_frames(guard.apply(loop_frames(frames, loop_mode, order)), out_path, size=size,
                          fps=timeline.fps, h264=CANVAS_H264, on_frame=progress)
    return ClipResult(frames=count, softened_frames=guard.softened)
