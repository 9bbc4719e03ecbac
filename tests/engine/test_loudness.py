"""engine.analysis.loudness matches pyloudnorm and standard reference levels."""

from __future__ import annotations

import math

import numpy as np
import pyloudnorm
import pytest

from engine.analysis.loudness import integrated_lufs, peak_dbfs
from tests.synth import noise, tone

SR = 48000


def test_matches_pyloudnorm_on_the_same_signal() -> None:
    x = np.stack([tone(440.0, 5.0, sr=SR, amp=0.3), noise(5.0, sr=SR, amp=0.05)])
    expected = pyloudnorm.Meter(SR).integrated_loudness(x.T.astype(np.float64))
    assert integrated_lufs(x, sr=SR) == pytest.approx(expected, abs=1e-6)


def test_full_scale_1k_sine_is_minus_3_lufs() -> None:
    # BS.1770: a 0 dBFS 997 Hz sine in one channel reads -3.01 LUFS
    t = np.arange(10 * SR) / SR
    x = np.sin(2 * np.pi * 997 * t).astype(np.float32)
    assert integrated_lufs(x, sr=SR) == pytest.approx(-3.01, abs=0.05)


def test_gain_shifts_loudness() -> None:
    x = noise(4.0, sr=SR, amp=0.1)
    assert integrated_lufs(x * 0.5, sr=SR) == pytest.approx(
        integrated_lufs(x, sr=SR) - 6.02, abs=0.05
    )


def test_short_and_silent() -> None:
    assert integrated_lufs(noise(0.3, sr=SR), sr=SR) is None
    assert integrated_lufs(np.zeros(SR * 2, dtype=np.float32), sr=SR) is None
    assert peak_dbfs(np.zeros(10, dtype=np.float32)) == -math.inf
    assert peak_dbfs(np.array([0.5, -1.0], dtype=np.float32)) == pytest.approx(0.0)


@pytest.mark.parametrize("sr", [22050, 44100, 48000, 96000])
@pytest.mark.parametrize("channels", [1, 2, 5])
def test_matches_pyloudnorm_across_rates_and_layouts(sr: int, channels: int) -> None:
    rng = np.random.default_rng(channels)
    dur = 3.7
    x = np.stack([tone(220.0 * (c + 1), dur, sr=sr, amp=0.3) for c in range(channels)])
    x = x + (0.02 * rng.standard_normal(x.shape)).astype(np.float32)
    x[:, : sr // 2] *= 0.001  # a quiet start exercises the relative gate
    expected = pyloudnorm.Meter(sr).integrated_loudness(x.T.astype(np.float64).squeeze())
    assert integrated_lufs(x, sr=sr) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("frames", [220497, 19845, 17641, 88199])
def test_last_block_running_past_the_end(frames: int) -> None:
    x = noise(frames / 22050, sr=22050, amp=0.2)[:frames]
    expected = pyloudnorm.Meter(22050).integrated_loudness(x.astype(np.float64))
    assert integrated_lufs(x, sr=22050) == pytest.approx(expected, abs=1e-6)
