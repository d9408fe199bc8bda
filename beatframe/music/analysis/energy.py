"""Loudness: the energy curve and per-span energies.

The curve is RMS in 100 ms windows (10 values per second), normalized to 0-1 by the track's
98th percentile (so a single transient does not flatten everything else) and clipped.
"""

from __future__ import annotations

import numpy as np

__all__ = ["energy_curve", "span_energy", "RATE"]

#: Values per second of the energy curve.
RATE = 10


def energy_curve(y: np.ndarray, sr: int, *, rate: int = RATE) -> tuple[np.ndarray, np.ndarray]:
    """RMS energy at ``rate`` values per second.

    Parameters
    ----------
    y : np.ndarray
        Mono audio.
    sr : int
    rate : int
        Values per second.

    Returns
    -------
    normalized : np.ndarray
        Values in [0, 1], one per ``1/rate`` s (the last partial window included).
    rms : np.ndarray
        The raw RMS values (linear amplitude).
    """
    y = np.asarray(y, dtype=np.float32)
    hop = max(1, int(round(sr / rate)))
    n = int(np.ceil(len(y) / hop)) if len(y) else 0
    if n == 0:
        return np.zeros(0), np.zeros(0)
    padded = np.zeros(n * hop, dtype=np.float32)
    padded[: len(y)] = y
    blocks = padded.reshape(n, hop)
    rms = np.sqrt(np.einsum("ij,ij->i", blocks, blocks, dtype=np.float64) / hop)
    if len(y) % hop:  # the last window is partial: average over its real samples only
        k = len(y) % hop
        last = padded[(n - 1) * hop:(n - 1) * hop + k].astype(np.float64)
        rms[-1] = np.sqrt(np.mean(last ** 2))
    ref = float(np.percentile(rms, 98)) if n > 1 else float(rms.max())
    if ref <= 0:
        return np.zeros(n), rms
    return np.clip(rms / ref, 0.0, 1.0), rms


def span_energy(curve: np.ndarray, start: float, end: float, *, rate: int = RATE) -> float:
    """Mean of the normalized energy curve over ``[start, end)`` seconds, in [0, 1]."""
    if len(curve) == 0:
        return 0.0
    i0 = int(np.clip(np.floor(start * rate), 0, len(curve) - 1))
    i1 = int(np.clip(np.ceil(end * rate), i0 + 1, len(curve)))
    return float(np.clip(np.mean(curve[i0:i1]), 0.0, 1.0))
