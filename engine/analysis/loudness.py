"""Integrated loudness (ITU-R BS.1770 through pyloudnorm) and sample peak."""

from __future__ import annotations

import math

import numpy as np

BLOCK_S = 0.4  # BS.1770 gating block


def integrated_lufs(samples: np.ndarray, *, sr: int) -> float | None:
    """Integrated loudness of ``[channels, frames]`` or ``[frames]`` audio.

    Returns:
        Loudness in LUFS; None when the audio is shorter than one 400 ms block or every
        block is gated out (digital silence).
    """
    import pyloudnorm

    data = samples.T if samples.ndim == 2 else samples
    if data.shape[0] < math.ceil(BLOCK_S * sr):
        return None
    with np.errstate(divide="ignore"):
        lufs = float(pyloudnorm.Meter(sr).integrated_loudness(data.astype(np.float64)))
    return lufs if math.isfinite(lufs) else None


def peak_dbfs(samples: np.ndarray) -> float:
    """Sample peak in dBFS; ``-inf`` for digital silence."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf
