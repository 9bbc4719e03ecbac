"""Test signals, synthesized with a seeded rng: tones, chords in known keys, click tracks."""

from __future__ import annotations

import numpy as np

NOTE = {
    "C": 0,
    "C#": 1,
    "Db": 1,
    "D": 2,
    "Eb": 3,
    "E": 4,
    "F": 5,
    "F#": 6,
    "Gb": 6,
    "G": 7,
    "Ab": 8,
    "A": 9,
    "Bb": 10,
    "B": 11,
}


def midi_hz(m: float) -> float:
    """Frequency of MIDI note ``m`` in Hz."""
    return 440.0 * 2 ** ((m - 69) / 12)


def tone(
    freq: float, duration_s: float, *, sr: int = 22050, harmonics: int = 6, amp: float = 0.2
) -> np.ndarray:
    """A harmonic tone with a soft attack and decay, ``[frames]`` float32."""
    t = np.arange(int(duration_s * sr)) / sr
    y = sum((0.6**h) * np.sin(2 * np.pi * freq * (h + 1) * t) for h in range(harmonics))
    env = np.minimum(1.0, t / 0.02) * np.exp(-t * 1.5)
    return (amp * env * y).astype(np.float32)


def chord(midis: list[int], duration_s: float, *, sr: int = 22050, amp: float = 0.15) -> np.ndarray:
    """Several harmonic tones at once."""
    return np.sum([tone(midi_hz(m), duration_s, sr=sr, amp=amp) for m in midis], axis=0)


def progression(
    tonic: str, mode: str, *, sr: int = 22050, chord_s: float = 1.0, repeats: int = 2
) -> np.ndarray:
    """I-IV-V-I (major) or i-iv-V-i (minor) in the given key, with a bass note, ``[frames]``."""
    root = 48 + NOTE[tonic]
    third = 4 if mode == "major" else 3
    chords = [(0, third, 7), (5, 5 + third, 12), (7, 11, 14), (0, third, 7)]
    parts = []
    for _ in range(repeats):
        for c in chords:
            midis = [root - 12 + c[0]] + [root + 12 + x for x in c]
            parts.append(chord(midis, chord_s, sr=sr))
    return np.concatenate(parts)


def click_track(bpm: float, duration_s: float, *, sr: int = 22050, seed: int = 0) -> np.ndarray:
    """Short noise-burst clicks at ``bpm``, accent on every fourth, ``[frames]`` float32."""
    rng = np.random.default_rng(seed)
    y = np.zeros(int(duration_s * sr), dtype=np.float32)
    n = int(0.015 * sr)
    burst = rng.standard_normal(n).astype(np.float32) * np.exp(-np.arange(n) / (0.003 * sr))
    for i, t in enumerate(np.arange(0.0, duration_s, 60.0 / bpm)):
        start = int(t * sr)
        seg = y[start : start + n]
        seg += (0.9 if i % 4 == 0 else 0.5) * burst[: seg.size]
    return y


def noise(duration_s: float, *, sr: int = 22050, amp: float = 0.1, seed: int = 0) -> np.ndarray:
    """White noise, ``[frames]`` float32."""
    rng = np.random.default_rng(seed)
    return (amp * rng.standard_normal(int(duration_s * sr))).astype(np.float32)
