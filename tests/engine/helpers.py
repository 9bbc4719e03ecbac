"""Builders shared by engine tests: annotations and small audio files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine import audio
from engine.types import KeyEstimate, RegionAnnotation, Tag, VocalsEstimate
from tests.synth import click_track, progression


def annotation(
    start: float,
    end: float,
    *,
    key: str | None = "C major",
    conf: float = 0.8,
    bpm: float | None = 120.0,
    lufs: float | None = -14.0,
    vocals: str | None = None,
    silent: bool = False,
) -> RegionAnnotation:
    """A hand-made annotation."""
    probs = {"none": (1.0, 0.0, 0.0), "male": (0.1, 0.8, 0.1), "female": (0.1, 0.1, 0.8)}
    return RegionAnnotation(
        start_s=start,
        end_s=end,
        silent=silent,
        key=None if (silent or key is None) else KeyEstimate(key, conf, (("A minor", 0.1),)),
        tempo_bpm=None if silent else bpm,
        tempo_confidence=0.0 if silent else 0.9,
        tempo_candidates=() if (silent or bpm is None) else ((bpm, 0.9), (bpm / 2, 0.6)),
        loudness_lufs=lufs,
        peak_dbfs=-1.0,
        caption="",
        backend="test",
        vocals=None if vocals is None else VocalsEstimate(vocals, probs[vocals]),
        instruments=(Tag("piano", 0.9),) if not silent else (),
    )


def song(path: Path, *, sr: int = 22050) -> Path:
    """A 30 s stereo file: 10 s C major at 120 BPM, 10 s A minor (quieter), 10 s silence."""
    n = 10 * sr

    def part(tonic: str, mode: str) -> np.ndarray:
        y = np.zeros(n, dtype=np.float32)
        harmony = progression(tonic, mode, sr=sr, chord_s=1.25, repeats=2)[:n]
        y[: harmony.size] = harmony
        return y + click_track(120.0, 10.0, sr=sr)[:n]

    y = np.concatenate([part("C", "major"), 0.25 * part("A", "minor"), np.zeros(n, np.float32)])
    audio.write(path, np.stack([y, y]), sr=sr, subtype="PCM_24")
    return path
