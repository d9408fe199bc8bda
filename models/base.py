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
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class LoopTimeline:
    """Everything musical a generator needs for one clip, in seconds from the clip's start.

    Attributes
    ----------
    fps : int
        Output frame rate.
    n_frames : int
        Number of frames to render; the clip lasts ``n_frames / fps`` seconds.
    bpm, meter : float, int
        Tempo and beats per bar of the stretch.
    beats, downbeats, onsets : tuple of float
        Event times in ``[0, duration)``; ``downbeats`` is a subset of ``beats``.
    energy : numpy.ndarray
        Loudness per frame, 0-1, shape ``(n_frames,)``.
    section : str
        The section label the clip comes from (``chorus``, ``drop`` ...).
    section_energy : float
        The section's energy, 0-1.
    periodic : bool
        True when the clip must loop seamlessly: every continuous motion completes whole cycles
        over the clip and event envelopes wrap around from the end to the start.
    """

    fps: int
    n_frames: int
    bpm: float
    meter: int
    beats: tuple[float, ...]
    downbeats: tuple[float, ...]
    onsets: tuple[float, ...]
    energy: np.ndarray = field(repr=False)
    section: str = "chorus"
    section_energy: float = 0.5
    periodic: bool = True

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps

    def __post_init__(self) -> None:
        if self.n_frames < 2:
            raise ValueError(f"a clip needs at least 2 frames, got {self.n_frames}")
        if self.energy.shape != (self.n_frames,):
            raise ValueError(f"energy must have shape ({self.n_frames},), got {self.energy.shape}")


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
