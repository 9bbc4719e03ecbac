"""The track's form on synthesized songs: boundaries on bar lines, repeat labels, functions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine.analysis.beats import GRID_SR, track_beats
from engine.analysis.form import onset_bars, track_form
from engine.analysis.frames import track_frames
from engine.types import BeatGrid, Section
from tests.synth import chord, drum_loop, noise

BPM = 120.0
BAR_S = 4 * 60.0 / BPM  # 2 s
SR = GRID_SR


def _bars(degrees: list[list[int]], bars: int, *, amp: float) -> np.ndarray:
    """One chord a bar, cycling through ``degrees`` (MIDI notes), ``bars`` bars."""
    return np.concatenate(
        [chord(degrees[i % len(degrees)], BAR_S, sr=SR, amp=amp) for i in range(bars)]
    )


def _section(kind: str, bars: int, seed: int) -> np.ndarray:
    """``A``: soft piano-like chords (C, F, G, C) over a drum loop; ``B``: loud chords of
    another progression (Am, Em, F, G) over drums and hiss (another level, density and
    harmony, in the same key and tempo)."""
    seconds = bars * BAR_S
    if kind == "A":
        harmony = _bars([[48, 64, 67, 72], [53, 65, 69, 72], [55, 67, 71, 74]], bars, amp=0.05)
        return harmony + 0.5 * drum_loop(BPM, seconds, sr=SR, seed=seed)
    harmony = _bars([[45, 69, 72, 76], [52, 67, 71, 76], [41, 65, 69, 72]], bars, amp=0.16)
    drums = 1.4 * drum_loop(BPM, seconds, sr=SR, seed=seed)
    return harmony + drums + noise(seconds, sr=SR, amp=0.03, seed=seed)


def abab_song() -> np.ndarray:
    """Verse, chorus, verse, chorus: 8 bars each at 120 BPM, ``[frames]`` at :data:`SR`."""
    return np.concatenate([_section(k, 8, seed=i) for i, k in enumerate("ABAB")])


def _form(y: np.ndarray) -> tuple[tuple[Section, ...], BeatGrid]:
    grid = track_beats(y, sr=SR)
    return track_form(track_frames(y, sr=SR), duration_s=y.size / SR, grid=grid), grid


def test_an_abab_song_is_labelled_abab_with_boundaries_within_one_bar() -> None:
    y = abab_song()
    form, grid = _form(y)
    assert [s.label for s in form] == ["A", "B", "A", "B"]
    for s, true_start in zip(form[1:], (16.0, 32.0, 48.0), strict=True):
        assert abs(s.start_s - true_start) < BAR_S
        assert s.start_s in grid.downbeats  # on a bar line of the grid
        assert 0.0 < s.confidence <= 1.0
    assert form[0].start_s == 0.0 and form[-1].end_s == pytest.approx(y.size / SR)
    assert all(a.end_s == b.start_s for a, b in itertools.pairwise(form))


def test_the_loud_repeated_section_is_the_chorus() -> None:
    y = abab_song()
    form, _ = _form(y)
    assert [s.function for s in form] == ["verse", "chorus", "verse", "chorus"]


def test_a_one_section_loop_is_one_section() -> None:
    form, _ = _form(_section("A", 24, seed=3))
    assert len(form) == 1
    assert form[0].label == "A" and form[0].function is None


def test_a_five_second_file_is_one_section() -> None:
    y = _section("B", 3, seed=1)[: int(5 * SR)]
    form, _ = _form(y)
    assert len(form) == 1
    assert (form[0].start_s, form[0].end_s) == (0.0, pytest.approx(5.0))


def test_silence_and_empty_tracks() -> None:
    silent = np.zeros(int(30 * SR), np.float32)
    form = track_form(track_frames(silent, sr=SR), duration_s=30.0)
    assert len(form) == 1
    assert track_form(track_frames(silent, sr=SR), duration_s=0.0) == ()


def test_without_a_grid_the_bars_come_from_the_onsets() -> None:
    y = abab_song()
    frames = track_frames(y, sr=SR)
    bars = onset_bars(frames, duration_s=y.size / SR)
    period = float(np.median(np.diff(bars)))
    assert min(abs(period - p) for p in (BAR_S, BAR_S / 2, 2 * BAR_S)) < 0.15
    form = track_form(frames, duration_s=y.size / SR, grid=None)
    assert [s.label for s in form] == ["A", "B", "A", "B"]
    for s, true_start in zip(form[1:], (16.0, 32.0, 48.0), strict=True):
        assert abs(s.start_s - true_start) < BAR_S
