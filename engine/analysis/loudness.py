"""Integrated loudness (ITU-R BS.1770-4) and sample peak.

The K-weighting filters are pyloudnorm's (``pyloudnorm.iirfilter.IIRfilter``, the same
shelving and high-pass stages its ``Meter`` uses); we run them as one second-order-section
cascade over all channels at once and vectorise the 400 ms gating blocks with cumulative
sums, which makes the measurement several times faster than ``Meter.integrated_loudness``
while matching it to 1e-6 LU (tested side by side).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

BLOCK_S = 0.4  # BS.1770 gating block
OVERLAP = 0.75  # overlap of consecutive blocks
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
CHANNEL_GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)  # L, R, C, Ls, Rs


@lru_cache(maxsize=8)
def _k_weighting_sos(sr: int) -> np.ndarray:
    """``[2, 6]`` second-order sections of the BS.1770 K-weighting at ``sr``."""
    from pyloudnorm.iirfilter import IIRfilter

    shelf = IIRfilter(4.0, 1 / math.sqrt(2), 1500.0, sr, "high_shelf")
    highpass = IIRfilter(0.0, 0.5, 38.0, sr, "high_pass")
    return np.array([np.concatenate([f.b, f.a]) for f in (shelf, highpass)])


def integrated_lufs(samples: np.ndarray, *, sr: int) -> float | None:
    """Integrated loudness of ``[channels, frames]`` or ``[frames]`` audio (up to 5 channels).

    Returns:
        Loudness in LUFS; None when the audio is shorter than one 400 ms block or every
        block is gated out (digital silence).
    """
    from scipy.signal import sosfilt

    x = np.atleast_2d(samples).astype(np.float64)[: len(CHANNEL_GAINS)]
    n = x.shape[1]
    block = BLOCK_S * sr
    if n < math.ceil(block):
        return None
    y = sosfilt(_k_weighting_sos(sr), x, axis=1)
    step = 1.0 - OVERLAP
    n_blocks = round((n / sr - BLOCK_S) / (BLOCK_S * step)) + 1
    j = np.arange(n_blocks)
    # the rounding of the block count can let the last block run past the end: it is cut
    # there and still divided by the full block length, as BS.1770 implementations do
    lo = np.minimum((BLOCK_S * (j * step) * sr).astype(int), n)
    hi = np.minimum((BLOCK_S * (j * step + 1) * sr).astype(int), n)
    csum = np.concatenate([np.zeros((y.shape[0], 1)), np.cumsum(y * y, axis=1)], axis=1)
    z = (csum[:, hi] - csum[:, lo]) / block  # [channels, blocks] mean square
    gains = np.array(CHANNEL_GAINS[: z.shape[0]])[:, None]
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10.0 * np.log10((gains * z).sum(axis=0))
        above = block_lufs >= ABSOLUTE_GATE_LUFS
        if not above.any():
            return None
        relative = -0.691 + 10.0 * np.log10((gains[:, 0] * z[:, above].mean(axis=1)).sum())
        gated = above & (block_lufs > relative + RELATIVE_GATE_LU)
        if not gated.any():
            return None
        lufs = -0.691 + 10.0 * np.log10((gains[:, 0] * z[:, gated].mean(axis=1)).sum())
    return float(lufs) if math.isfinite(lufs) else None


def peak_dbfs(samples: np.ndarray) -> float:
    """Sample peak in dBFS; ``-inf`` for digital silence."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf
