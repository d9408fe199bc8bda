"""The contract between the render pipeline and a frame generator.

A generator turns a :class:`LoopTimeline` (the beat grid, onsets and energy of the stretch of the
track a clip covers, in clip time) plus a style template into RGB frames. It holds no Prefect and
no I/O besides reading its own assets (a cover image, local model weights).

Timing convention for visual accents (shared by every generator so the judge sees accents on the
beats): for an event at clip time ``t``, let ``j = round(t * fps)``; the visible jump happens
between frame ``j`` and frame ``j + 1`` (frame ``j + 1`` is the first frame of the accent), so the
largest frame-to-frame change is indexed ``j``, within half a frame of the beat.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np

from beatframe.music.timeline import LoopTimeline


class FrameGenerator(Protocol):
    """A source of frames for one shot.

    ``name`` and ``revision`` identify the generator in manifests and cache keys: bump
    ``revision`` whenever the same inputs would give different frames.
    """

    name: str
    revision: str

    def render(
        self,
        *,
        timeline: LoopTimeline,
        template: "object",
        size: tuple[int, int],
        seed: int,
        cut_on_downbeats: bool = False,
    ) -> Iterator[np.ndarray]:
        """Yield ``timeline.n_frames`` RGB frames, uint8, shape ``(height, width, 3)``.

        ``size`` is ``(width, height)``. With ``cut_on_downbeats`` the generator changes shot
        (camera, palette offset or scene variation) on every downbeat, so a loop that restarts on
        a downbeat looks like one more cut. The same arguments always give the same frames.
        """
        ...
