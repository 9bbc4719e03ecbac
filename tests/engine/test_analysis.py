"""engine.analysis.analyze_signal: silence is never given a key; key can be skipped."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.analysis import analyze_signal
from engine.audio import Audio
from engine.presets import AnalysisSettings
from tests.synth import click_track, progression

SR = 22050


def _audio(y: np.ndarray) -> Audio:
    return Audio(np.stack([y, y]).astype(np.float32), SR, "test")


def test_progression_with_clicks() -> None:
    y = progression("Eb", "major", sr=SR, chord_s=1.25, repeats=2)
    y = y + click_track(96.0, y.size / SR, sr=SR)[: y.size]
    f = analyze_signal(_audio(y), settings=AnalysisSettings(), sr=SR)
    assert not f.silent
    assert f.key is not None and f.key.key == "Eb major"
    assert f.tempo_bpm == pytest.approx(96.0, rel=0.02)
    assert f.loudness_lufs is not None and f.loudness_lufs < 0


def test_silence_and_near_silence_get_no_key() -> None:
    for y in (np.zeros(5 * SR), 1e-5 * progression("C", "major", sr=SR)):
        f = analyze_signal(_audio(np.asarray(y, np.float32)), settings=AnalysisSettings(), sr=SR)
        assert f.silent and f.key is None and f.tempo_bpm is None


def test_key_can_be_skipped() -> None:
    y = progression("A", "minor", sr=SR)
    f = analyze_signal(_audio(y), settings=AnalysisSettings(), sr=SR, key=False)
    assert f.key is None and not f.silent


@settings(max_examples=40, deadline=None)
@given(
    frames=st.integers(min_value=int(0.25 * 8000), max_value=12 * 22050),
    sr=st.sampled_from([8000, 16000, 22050, 44100, 48000]),
    channels=st.integers(min_value=1, max_value=2),
    kind=st.sampled_from(["noise", "tone", "silence", "clicks"]),
)
def test_any_length_rate_and_content_is_analysed(
    frames: int, sr: int, channels: int, kind: str
) -> None:
    t = np.arange(frames) / sr
    y = {
        "noise": 0.1 * np.random.default_rng(frames).standard_normal(frames),
        "tone": 0.3 * np.sin(2 * np.pi * 330 * t),
        "silence": np.zeros(frames),
        "clicks": (np.arange(frames) % (sr // 2) < 20).astype(float),
    }[kind]
    x = np.tile(y.astype(np.float32), (channels, 1))
    f = analyze_signal(Audio(x, sr, "prop"), settings=AnalysisSettings(), sr=22050)
    assert f.silent == (kind == "silence")
    assert (f.key is None) == f.silent
