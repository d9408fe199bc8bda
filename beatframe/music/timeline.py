"""The musical timeline of one clip: its beat grid, onsets and energy, in clip time.

Planning (:mod:`beatframe.music.planning`, :mod:`beatframe.music.video_planning`) builds one per
clip; generators (:mod:`beatframe.models.base`) draw from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
