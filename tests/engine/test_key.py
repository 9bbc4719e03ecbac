"""Key estimation on synthesized chord progressions in known keys."""

from __future__ import annotations

import numpy as np
import pytest

from engine.analysis.chroma import triad_histogram
from engine.analysis.key import estimate_key
from engine.errors import AudioError
from engine.labels import KEYS, key_index

SR = 22050
# (root offset from the tonic in semitones, chord intervals above the root)
MAJOR = (0, 4, 7)
MINOR = (0, 3, 7)
MAJOR_CADENCE = ((0, MAJOR), (5, MAJOR), (7, MAJOR), (0, MAJOR))  # I IV V I
MINOR_CADENCE = ((0, MINOR), (5, MINOR), (7, MAJOR), (0, MINOR))  # i iv V i


def tone(midi: float, duration_s: float, rng: np.random.Generator, harmonics: int = 6):
    """An additive harmonic tone (amplitude 1/h) with random phases and a decaying envelope."""
    t = np.arange(int(duration_s * SR)) / SR
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    y = sum(
        np.sin(2 * np.pi * h * f0 * t + rng.uniform(0, 2 * np.pi)) / h
        for h in range(1, harmonics + 1)
        if h * f0 < SR / 2
    )
    return y * np.exp(-t / (2 * duration_s))


def progression(tonic_pc: int, chords, rng: np.random.Generator, chord_s: float = 0.6):
    """Bass (octave 2) + close triad (octave 4) per chord, played twice, with a little noise."""
    out = []
    for _ in range(2):
        for root, intervals in chords:
            bass = 36 + (tonic_pc + root) % 12
            upper = [60 + (tonic_pc + root) % 12 + i for i in intervals]
            out.append(tone(bass, chord_s, rng) + sum(tone(m, chord_s, rng) for m in upper))
    y = np.concatenate(out)
    y = 0.2 * y / np.abs(y).max() + 0.001 * rng.standard_normal(y.size)
    return y.astype(np.float32)


@pytest.mark.parametrize(
    ("key", "chords"),
    [
        ("C major", MAJOR_CADENCE),
        ("A minor", MINOR_CADENCE),
        ("F# minor", MINOR_CADENCE),
        ("Eb major", MAJOR_CADENCE),
        ("B major", MAJOR_CADENCE),
        ("G minor", MINOR_CADENCE),
    ],
)
def test_progression_in_known_key(key: str, chords) -> None:
    rng = np.random.default_rng(key_index(key))
    y = progression(key_index(key) % 12, chords, rng)
    est = estimate_key(y, sr=SR, candidates=3)
    assert est.key == key
    assert 0.0 <= est.confidence <= 1.0
    names = [name for name, _ in est.candidates]
    assert len(names) == 3 and len(set(names)) == 3 and key not in names
    assert all(name in KEYS for name in names)
    scores = [est.confidence] + [score for _, score in est.candidates]
    assert scores == sorted(scores, reverse=True)


def test_detuned_progression_and_other_rate() -> None:
    """A quarter-tone-ish detuning (+35 cents) and sr=44100 do not change the answer."""
    rng = np.random.default_rng(7)
    y = progression(key_index("D major") % 12, MAJOR_CADENCE, rng)
    # Resampling by 2**(35/1200) and declaring the original rate shifts every pitch by 35 cents.
    import soxr

    y_sharp = soxr.resample(y, SR * 2 ** (35 / 1200), SR).astype(np.float32)
    assert estimate_key(y_sharp, sr=SR).key == "D major"
    y44 = soxr.resample(y, SR, 44100).astype(np.float32)
    assert estimate_key(y44, sr=44100).key == "D major"


def test_silence_and_short_input_do_not_crash() -> None:
    est = estimate_key(np.zeros(SR, dtype=np.float32), sr=SR)
    assert est.key in KEYS
    assert 0.0 <= est.confidence <= 1.0
    assert estimate_key(np.zeros(10, dtype=np.float32), sr=SR).key in KEYS


@pytest.mark.parametrize(
    "y",
    [
        np.array([], dtype=np.float32),
        np.array([0.0, np.nan, 0.1], dtype=np.float32),
        np.array([0.0, np.inf], dtype=np.float32),
        np.zeros((2, 100), dtype=np.float32),
    ],
)
def test_invalid_input_raises_audio_error(y: np.ndarray) -> None:
    with pytest.raises(AudioError):
        estimate_key(y, sr=SR)


def test_triad_histogram_names_the_triad() -> None:
    profiles = np.zeros((3, 12))
    profiles[0, [0, 4, 7]] = 1.0  # C major
    profiles[1, [9, 0, 4]] = 1.0  # A minor
    profiles[2, [6, 10, 1]] = 1.0  # F# major
    hist = triad_histogram(profiles)
    assert hist.shape == (24,)
    assert set(np.flatnonzero(hist)) == {0, 12 + 9, 6}
