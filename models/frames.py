"""Checks of the frames that models/ functions take: RGB uint8 images and clips of them, with
errors that name the argument. No environment variables are read here."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from beatframe.infra.errors import BadInputError


def check_rgb(image: object, *, what: str, min_side: int = 1) -> np.ndarray:
    """``image`` when it is an RGB uint8 array ``(height, width, 3)`` at least ``min_side`` px a side."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise BadInputError(f"{what} must be an RGB uint8 array of shape (height, width, 3), got {got}")
    if min(image.shape[:2]) < min_side:
        raise BadInputError(f"{what} of {image.shape[1]}x{image.shape[0]} is too small (at least {min_side} px a side)")
    return image


def check_clip(frames: object, *, what: str, min_side: int = 1) -> list[np.ndarray]:
    """``frames`` (a sequence of frames or one ``(n, height, width, 3)`` array) as a non-empty list
    of RGB uint8 frames of one shape, each checked by :func:`check_rgb`."""
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise BadInputError(f"{what} as one array must have shape (n, height, width, 3), got {frames.shape}")
        frames = list(frames)
    if isinstance(frames, (str, bytes)) or not isinstance(frames, Sequence):
        raise BadInputError(f"{what} must be a sequence of RGB frames, got {type(frames).__name__}")
    if len(frames) == 0:
        raise BadInputError(f"{what} is empty")
    clip = [check_rgb(f, what=f"{what}[{i}]", min_side=min_side) for i, f in enumerate(frames)]
    for i, f in enumerate(clip):
        if f.shape != clip[0].shape:
            raise BadInputError(f"{what}[{i}] has shape {f.shape}, {what}[0] has {clip[0].shape}")
    return clip
