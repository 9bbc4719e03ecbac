"""engine.analysis.tempo: click tracks at known tempi come out within 2 %."""

from __future__ import annotations

import numpy as np
import pytest

from engine.analysis.tempo import estimate_tempo
from engine.errors import AudioError
from tests.synth import chord, click_track, noise

SR = 22050


@pytest.mark.parametrize("bpm", [60.0, 75.0, 90.0, 100.0, 120.0, 128.0, 140.0, 174.0, 200.0])
def test_click_track_tempo_within_2_percent(bpm: float) -> None:
    est = estimate_tempo(click_track(bpm, 10.0, sr=SR), sr=SR)
    assert est.bpm is not None
    assert est.bpm == pytest.approx(bpm, rel=0.02)
    assert 0.5 < est.confidence <= 1.0


def test_click_track_with_noise_and_harmony() -> None:
    y = (
        click_track(120.0, 10.0, sr=SR)
        + noise(10.0, sr=SR, amp=0.02)
        + chord([60, 64, 67], 10.0, sr=SR)
    )
    est = estimate_tempo(y, sr=SR)
    assert est.bpm == pytest.approx(120.0, rel=0.02)


def test_fast_click_not_halved() -> None:
    est = estimate_tempo(click_track(180.0, 10.0, sr=SR), sr=SR)
    assert est.bpm == pytest.approx(180.0, rel=0.02)


def test_range_limits_are_respected() -> None:
    est = estimate_tempo(click_track(200.0, 10.0, sr=SR), sr=SR, max_bpm=150.0)
    assert est.bpm == pytest.approx(100.0, rel=0.02)


def test_no_pulse() -> None:
    steady = np.sin(2 * np.pi * 220 * np.arange(5 * SR) / SR).astype(np.float32) * 0.3
    assert estimate_tempo(steady, sr=SR).bpm is None
    assert estimate_tempo(np.zeros(SR, dtype=np.float32), sr=SR).bpm is None


def test_too_short_for_a_period() -> None:
    assert estimate_tempo(click_track(60.0, 0.5, sr=SR), sr=SR).bpm is None


def test_bad_input() -> None:
    with pytest.raises(AudioError):
        estimate_tempo(np.zeros(0, dtype=np.float32), sr=SR)
    with pytest.raises(AudioError):
        estimate_tempo(np.full(SR, np.nan, dtype=np.float32), sr=SR)
