"""The Canvas request and the plain functions the Canvas flow's tasks wrap.

:class:`CanvasRequest` validates what a user asks for (size, seconds, loop mode, template,
cover) before any work starts. :func:`render_loop_clip` renders a planned window with a
generator, assembles the loop (continuous, rebound or hard cut), passes every frame through the
flash guard and encodes it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beatframe.encode import CANVAS_H264, encode_frames
from beatframe.errors import BadInputError
from beatframe.flash import FlashGuard
from beatframe.schemas import LoopMode
from models.base import LoopTimeline

CANVAS_MIN_WIDTH, CANVAS_MAX_WIDTH = 720, 1080
LOOP_MODES: tuple[LoopMode, ...] = ("continuous", "rebound", "hard_cut")


def parse_canvas_size(text: str) -> tuple[int, int]:
    """``"720x1280"`` -> ``(720, 1280)``; a Canvas is 9:16 between 720x1280 and 1080x1920."""
    match = re.fullmatch(r"\s*(\d{2,5})\s*[xX]\s*(\d{2,5})\s*", str(text))
    if not match:
        raise BadInputError(f"size must look like 720x1280, got {text!r}")
    width, height = int(match.group(1)), int(match.group(2))
    if width * 16 != height * 9:
        raise BadInputError(f"a Canvas is 9:16; {width}x{height} is not (try 720x1280 or 1080x1920)")
    if not CANVAS_MIN_WIDTH <= width <= CANVAS_MAX_WIDTH or width % 2:
        raise BadInputError(f"a Canvas is 720x1280 to 1080x1920 with even sides, got {width}x{height}")
    return width, height


@dataclass(frozen=True)
class ClipResult:
    frames: int
    softened_frames: int


def loop_frames(frames: Iterator[np.ndarray], mode: LoopMode,
                order: Sequence[int] | None = None) -> Iterator[np.ndarray]:
    """Assemble the loop: ``rebound`` plays the rendered half forward, then backward.

    ``order`` gives, for each output frame, the index of the rendered frame to show (see
    :func:`beatframe.planning.rebound_order`); by default the backward half is an even mirror
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


@dataclass(frozen=True)
class CanvasRequest:
    """A validated Canvas request: every problem with the input is reported before work starts."""

    audio: Path
    template: str
    scene: str
    seconds: float
    seed: int
    size: tuple[int, int]
    loop_mode: LoopMode
    start: float | None
    cover: Path | None
    cover_license: str | None

    @classmethod
    def validate(
        cls,
        *,
        audio: str | Path,
        template: str = "neon-pulse",
        seconds: float = 7.0,
        seed: int = 0,
        size: str | tuple[int, int] = "720x1280",
        loop_mode: str | None = None,
        start: float | None = None,
        cover: str | Path | None = None,
        cover_license: str | None = None,
    ) -> "CanvasRequest":
        from beatframe.templates import load_template

        audio = Path(audio)
        if not audio.is_file():
            raise BadInputError(f"audio file {audio} does not exist or is not a file")
        style = load_template(template)
        try:
            seconds = float(seconds)
            seed = int(seed)
        except (TypeError, ValueError):
            raise BadInputError(f"seconds must be a number and seed an integer, got {seconds!r}, {seed!r}") from None
        if not 3.0 <= seconds <= 8.0:
            raise BadInputError(f"seconds must be within 3-8 (Spotify's Canvas limits), got {seconds:g}")
        if not 0 <= seed < 2**32:
            raise BadInputError(f"seed must be an integer from 0 to 2**32-1, got {seed}")
        dims = parse_canvas_size(size) if isinstance(size, str) else parse_canvas_size(f"{size[0]}x{size[1]}")
        mode = loop_mode or style.default_loop
        if mode not in LOOP_MODES:
            raise BadInputError(f"loop mode must be one of {', '.join(LOOP_MODES)}, got {mode!r}")
        if start is not None and (not isinstance(start, (int, float)) or start < 0):
            raise BadInputError(f"start must be a time in seconds >= 0, got {start!r}")
        cover_path = None
        if cover is not None:
            from models.cover_art import load_cover

            cover_path = Path(cover)
            load_cover(cover_path)
        return cls(audio=audio, template=style.name, scene=style.scene, seconds=seconds, seed=seed, size=dims,
                   loop_mode=mode, start=None if start is None else float(start), cover=cover_path,
                   cover_license=cover_license)
