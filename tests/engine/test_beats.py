"""The beat grid on synthesized audio: tempo level, meter, downbeats, changes, breakdowns,
silence and files too short for a beat; and the grid in the document, the exports and tags."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine import audio, presets
from engine.analysis.beats import track_beats
from engine.backends.lite import LiteBackend
from engine.pipeline import Annotator
from engine.types import TrackResult
from tests.synth import chord, drum_loop, midi_hz, song_with_change, tone

SR = 22050


def near(t: float, ref: np.ndarray, tol: float = 0.07) -> bool:
    return bool(ref.size) and float(np.min(np.abs(ref - t))) <= tol


def hit_rate(est: tuple[float, ...] | np.ndarray, ref: np.ndarray) -> float:
    est = np.asarray(est)
    return float(np.mean([near(t, ref) for t in est])) if est.size else 0.0


def waltz(bpm: float, bars: int, *, sr: int = SR) -> tuple[np.ndarray, np.ndarray]:
    """Oom-pah-pah: bass and a new chord on each bar's first beat, soft chords on the other
    two, a kick on one; returns the audio and the bar starts."""
    beat = 60.0 / bpm
    y = np.zeros(int(bars * 3 * beat * sr) + sr, dtype=np.float32)
    roots = [48, 53, 55, 48, 57, 53, 55, 48]  # C F G C A F G C
    t_kick = np.arange(int(0.2 * sr)) / sr
    kick = np.sin(2 * np.pi * np.cumsum(45 + 100 * np.exp(-t_kick / 0.03)) / sr)
    kick = (0.5 * kick * np.exp(-t_kick / 0.1)).astype(np.float32)
    starts = []
    for b in range(bars):
        root = roots[b % len(roots)]
        triad = [root + 12, root + 16, root + 19] if root != 57 else [69, 72, 76]
        for k in range(3):
            t = (b * 3 + k) * beat
            i = int(t * sr)
            if k == 0:
                starts.append(t)
                hit = tone(midi_hz(root - 12), beat * 0.95, sr=sr, amp=0.35)
                y[i : i + kick.size] += kick
            else:
                hit = chord(triad, beat * 0.6, sr=sr, amp=0.06)
            y[i : i + hit.size] += hit
    return y[: int(bars * 3 * beat * sr)], np.array(starts)


def beat_song(bpm: float, bars: int, *, drums_off: range = range(0), sr: int = SR) -> np.ndarray:
    """4/4 chords struck on every beat (a new chord each bar) over a drum loop, the drums
    silent in the bars of ``drums_off``."""
    beat = 60.0 / bpm
    n = int(bars * 4 * beat * sr)
    drums = drum_loop(bpm, bars * 4 * beat, sr=sr)[:n]
    y = np.zeros(n, dtype=np.float32)
    roots = [48, 53, 55, 48]
    for b in range(bars):
        for k in range(4):
            i = int((b * 4 + k) * beat * sr)
            c = chord([roots[b % 4] + 12, roots[b % 4] + 16, roots[b % 4] + 19], beat * 0.9, sr=sr)
            y[i : i + c.size] += c[: n - i]
        if b in drums_off:
            a, z = int(b * 4 * beat * sr), int((b + 1) * 4 * beat * sr)
            drums[a:z] = 0.0
    return y + drums


def snapping_annotator() -> Annotator:
    """The lite preset (without the tagger) with ``[regions] snap = "bars"``."""
    preset = presets.load("lite")
    preset = replace(
        preset,
        regions=replace(preset.regions, snap="bars"),
        options=replace(preset.options, tag=False),
    )
    return Annotator(preset, store=None, backend=LiteBackend(preset))


@pytest.fixture(scope="module")
def annotator() -> Annotator:
    preset = presets.load("lite")
    preset = replace(preset, options=replace(preset.options, tag=False))
    return Annotator(preset, store=None, backend=LiteBackend(preset))


def annotate(annotator: Annotator, tmp_path: Path, y: np.ndarray, **kw) -> TrackResult:
    path = tmp_path / "song.wav"
    audio.write(path, y, sr=SR, subtype="FLOAT")
    return annotator.annotate(str(path), use_cache=False, **kw)


def test_a_125_bpm_drum_loop_is_125_not_83_or_250() -> None:
    grid = track_beats(drum_loop(125.0, 30.0), sr=SR)
    assert grid.tempo_bpm == pytest.approx(125.0, rel=0.02)
    ref = np.arange(0.0, 30.0, 60.0 / 125.0)
    assert hit_rate([b.time_s for b in grid.beats], ref) > 0.95
    assert len(grid.tempi) == 1


@pytest.mark.parametrize("bpm", [72.0, 96.0, 140.0])
def test_a_waltz_has_meter_3_and_its_downbeats(bpm: float) -> None:
    y, bars = waltz(bpm, 16)
    grid = track_beats(y, sr=SR)
    assert grid.meter == "3/4"
    assert grid.tempo_bpm == pytest.approx(bpm, rel=0.03)
    assert hit_rate(grid.downbeats, bars) >= 0.8
    assert all(1 <= b.position <= 3 for b in grid.beats)


def test_four_four_downbeats_fall_on_the_bar_lines() -> None:
    y = beat_song(110.0, 16)
    grid = track_beats(y, sr=SR)
    assert grid.meter == "4/4"
    bars = np.arange(16) * 4 * 60.0 / 110.0
    assert hit_rate(grid.downbeats, bars) >= 0.8


def test_eight_bars_without_drums_keep_the_grid() -> None:
    bpm = 120.0
    y = beat_song(bpm, 24, drums_off=range(8, 16))
    grid = track_beats(y, sr=SR)
    t = np.array([b.time_s for b in grid.beats])
    quiet = t[(t >= 8 * 2.0 + 0.5) & (t < 16 * 2.0 - 0.5)]  # the breakdown's beats
    assert quiet.size >= 28  # 8 bars of 4 beats, less the edges
    assert np.all(np.abs(np.diff(quiet) - 0.5) < 0.05)
    assert len(grid.tempi) == 1 and grid.tempo_bpm == pytest.approx(bpm, rel=0.02)


def test_a_tempo_change_is_told_once(annotator: Annotator, tmp_path: Path) -> None:
    y = song_with_change(seconds=60.0, change_s=30.0, bpms=(100.0, 132.0))
    result = annotate(annotator, tmp_path, y)
    spans = result.grid.tempi
    assert [round(s.bpm) for s in spans] == [100, 132] or (
        len(spans) == 2
        and spans[0].bpm == pytest.approx(100, rel=0.03)
        and spans[1].bpm == pytest.approx(132, rel=0.03)
    )
    assert spans[1].start_s == pytest.approx(30.0, abs=1.5)
    told = [e for s in result.narrative.sections for e in s.events if e.kind == "tempo"]
    assert len(told) == 1 and "132 BPM" in told[0].text
    assert result.regions[0].tempo_bpm == pytest.approx(100, rel=0.03)
    assert result.regions[-1].tempo_bpm == pytest.approx(132, rel=0.03)


def test_a_steady_song_tells_no_tempo_event(annotator: Annotator, tmp_path: Path) -> None:
    result = annotate(annotator, tmp_path, song_with_change(bpms=(118.0, 118.0)))
    assert not [e for s in result.narrative.sections for e in s.events if e.kind == "tempo"]
    assert result.grid.tempo_bpm == pytest.approx(118.0, rel=0.02)
    assert "around 118 BPM" in result.narrative.text


def test_silence_has_no_beats(annotator: Annotator, tmp_path: Path) -> None:
    assert track_beats(np.zeros(10 * SR, np.float32), sr=SR).beats == ()
    assert track_beats(0.01 * np.ones(10 * SR, np.float32), sr=SR).beats == ()
    result = annotate(annotator, tmp_path, np.zeros(12 * SR, np.float32))
    doc = result.to_dict()
    assert doc["beats"] == [] and doc["meter"] is None and doc["tempo_bpm"] is None


def test_a_file_shorter_than_two_beats_gets_an_empty_grid(
    annotator: Annotator, tmp_path: Path
) -> None:
    y = drum_loop(100.0, 0.5)  # one beat
    assert track_beats(y, sr=SR).beats == ()
    assert track_beats(y[:100], sr=SR).beats == ()
    result = annotate(annotator, tmp_path, y)
    assert result.grid.beats == () and len(result.regions) == 1


def test_the_document_carries_the_grid_and_validates(annotator: Annotator, tmp_path: Path) -> None:
    import jams
    import jsonschema

    from engine import export

    result = annotate(annotator, tmp_path, beat_song(120.0, 12))
    doc = result.to_dict()
    schema = json.loads(
        (Path(__file__).resolve().parents[2] / "engine/schema/annotation-1.2.json").read_text()
    )
    jsonschema.validate(doc, schema)
    assert doc["schema_version"] == "1.2" and doc["meter"] == "4/4"
    assert doc["tempo_bpm"] == pytest.approx(120.0, rel=0.02)
    assert {b["position"] for b in doc["beats"]} == {1, 2, 3, 4}
    jam = jams.load(_jams_file(result, tmp_path))
    beats = jam.search(namespace="beat")[0]
    assert len(beats.data) == len(doc["beats"])
    labels = export.render(result, "audacity", bars=True)
    assert "bar 1 (4/4, 120 BPM)" in labels
    assert labels.count("\tbar ") == len(result.grid.downbeats)
    csv_rows = export.render(result, "csv", bars=True).splitlines()
    assert sum(r.startswith("M") for r in csv_rows) == len(result.grid.downbeats)
    assert "bar" not in export.render(result, "csv")  # bar lines only when asked


def _jams_file(result: TrackResult, tmp_path: Path) -> str:
    from engine import export

    p = tmp_path / "song.jams"
    export.write(result, p, "jams")
    return str(p)


def test_tags_write_the_grids_tempo(annotator: Annotator, tmp_path: Path) -> None:
    from engine.filetags import values_of

    result = annotate(annotator, tmp_path, beat_song(126.0, 12), narrate=False, beats=True)
    assert result.grid.tempo_bpm == pytest.approx(126.0, rel=0.02)
    assert values_of(result)["bpm"] == str(round(result.grid.tempo_bpm))


def test_regions_can_start_on_bar_lines(tmp_path: Path) -> None:
    from daw_bridge.regions import plan_regions

    bars = [0.3 + 2.2 * k for k in range(40)]
    spans = plan_regions(60.0, length_s=10.0, min_tail_s=5.0, downbeats=bars)
    assert spans[0][0] == 0.0 and spans[-1][1] == 60.0
    assert all(any(abs(a - b) < 1e-6 for b in bars) for a, _ in spans[1:])
    assert all(7.0 <= b - a <= 13.0 for a, b in spans[:-1])
    assert plan_regions(60.0, length_s=10.0, min_tail_s=5.0) == [
        (float(10 * k), float(10 * k + 10)) for k in range(6)
    ]
    snapping = snapping_annotator()
    result = annotate(snapping, tmp_path, beat_song(96.0, 24))
    downbeats = np.array(result.grid.downbeats)
    assert len(result.regions) >= 4
    assert all(near(r.start_s, downbeats, 1e-3) for r in result.regions[1:])


def test_the_grid_is_the_same_from_the_regions_or_from_the_whole_file(
    annotator: Annotator, tmp_path: Path
) -> None:
    from engine.types import Region

    y = beat_song(104.0, 20)  # about 46 s
    tiled = annotate(annotator, tmp_path, y)  # the default plan tiles the file
    some = annotate(annotator, tmp_path, y, regions=[Region(5.0, 15.0), Region(20.0, 30.0)])
    assert tiled.grid.tempo_bpm == pytest.approx(104.0, rel=0.01)
    assert some.grid.tempo_bpm == pytest.approx(tiled.grid.tempo_bpm, rel=0.005)
    a = np.array([b.time_s for b in tiled.grid.beats])
    b = np.array([b.time_s for b in some.grid.beats])
    assert abs(a.size - b.size) <= 1 and hit_rate(b, a) > 0.97


def test_the_plan_alone_is_the_plan_annotate_uses(tmp_path: Path) -> None:
    snapping = snapping_annotator()
    path = tmp_path / "song.wav"
    audio.write(path, beat_song(96.0, 24), sr=SR, subtype="FLOAT")
    regions, grid = snapping.plan(str(path))
    result = snapping.annotate(str(path), use_cache=False)
    assert [(r.start_s, r.end_s) for r in regions] == [(a.start_s, a.end_s) for a in result.regions]
    assert grid.downbeats == result.grid.downbeats and grid.meter == "4/4"


def test_the_panels_empty_grid_is_the_engines() -> None:
    from daw_bridge import export
    from engine.types import BeatGrid

    assert BeatGrid().to_dict() == export.EMPTY_GRID  # daw_bridge cannot import engine
