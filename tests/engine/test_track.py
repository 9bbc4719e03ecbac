"""engine.track: the track's story from region evidence, on synthesized songs and by hand."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine import audio, presets
from engine.backends.lite import LiteBackend
from engine.pipeline import Annotator
from engine.presets import TrackSettings
from engine.track import key_distribution, no_key_probability, resolve, viterbi
from engine.types import KeyEstimate, TrackResult
from tests.engine.helpers import annotation
from tests.synth import drum_loop, song_with_change

SR = 22050


@pytest.fixture(scope="module")
def annotator() -> Annotator:
    """The lite preset without the tagger (key, tempo and loudness are what is tested)."""
    preset = presets.load("lite")
    preset = replace(preset, options=replace(preset.options, tag=False))
    return Annotator(preset, store=None, backend=LiteBackend(preset))


def _annotate(annotator: Annotator, tmp_path: Path, y: np.ndarray) -> TrackResult:
    path = tmp_path / "song.wav"
    audio.write(path, y, sr=SR, subtype="FLOAT")
    return annotator.annotate(str(path), use_cache=False)


def _events(result: TrackResult, kind: str) -> list[tuple[float, str]]:
    return [
        (s.start_s, e.text) for s in result.narrative.sections for e in s.events if e.kind == kind
    ]


def test_steady_loop_keeps_one_key_and_one_tempo(annotator: Annotator, tmp_path: Path) -> None:
    y = song_with_change(keys=(("D", "major"), ("D", "major")), bpms=(124.0, 124.0))
    result = _annotate(annotator, tmp_path, y)
    assert len(result.regions) == 6
    assert {a.key.key for a in result.regions if a.key} == {"D major"}
    assert all(a.tempo_bpm == pytest.approx(124.0, rel=0.04) for a in result.regions)
    assert len(result.narrative.sections) == 1
    assert "D major, around 124 BPM" in result.narrative.text


def test_modulation_is_reported_once_near_where_it_happens(
    annotator: Annotator, tmp_path: Path
) -> None:
    y = song_with_change(keys=(("C", "major"), ("E", "minor")), change_s=30.0)
    result = _annotate(annotator, tmp_path, y)
    events = _events(result, "key")
    assert len(events) == 1
    at, text = events[0]
    assert abs(at - 30.0) <= 10.0
    assert text == "the key moves to E minor"
    assert _events(result, "tempo") == []
    # each region's reported key agrees with the narrative
    assert [a.key.key for a in result.regions if a.key] == ["C major"] * 3 + ["E minor"] * 3


def test_tempo_change_is_reported_once(annotator: Annotator, tmp_path: Path) -> None:
    y = song_with_change(keys=(("G", "major"), ("G", "major")), bpms=(100.0, 132.0))
    result = _annotate(annotator, tmp_path, y)
    events = _events(result, "tempo")
    assert len(events) == 1
    at, text = events[0]
    assert abs(at - 30.0) <= 10.0
    assert text.startswith("the tempo rises to 13")
    assert _events(result, "key") == []


def test_drum_loop_has_no_clear_key(annotator: Annotator, tmp_path: Path) -> None:
    result = _annotate(annotator, tmp_path, drum_loop(125.0, 30.0))
    assert all(a.key is None and not a.silent for a in result.regions)
    assert all("no_clear_key" in a.flags for a in result.regions)
    assert all(a.region_key is not None for a in result.regions)  # the evidence is kept
    assert "no clear key" in result.narrative.text
    assert "key moves" not in result.narrative.text
    # each region alone hears the 125 BPM pulse (the track level may choose another level of
    # it; the steady-loop test holds the tempo)
    assert all(a.region_tempo_bpm == pytest.approx(125.0, rel=0.04) for a in result.regions)
    assert _events(result, "tempo") == []


def test_short_tail_joins_the_last_region(annotator: Annotator, tmp_path: Path) -> None:
    y = song_with_change(seconds=20.5, change_s=10.0)
    result = _annotate(annotator, tmp_path, y)
    assert [(a.start_s, a.end_s) for a in result.regions] == [(0.0, 10.0), (10.0, 20.5)]


def _with_tempi(bpms: list[float], double_salience: float = 0.7) -> list:
    """Regions whose own tempo flips between metrical levels of one pulse."""
    out = []
    for i, bpm in enumerate(bpms):
        base = 88.0
        cands = ((bpm, 0.8), (base if bpm != base else 2 * base, double_salience))
        out.append(replace(annotation(10 * i, 10 * i + 10, bpm=bpm), tempo_candidates=cands))
    return out


def test_metrical_level_flips_are_not_tempo_changes() -> None:
    regions = _with_tempi([88.0, 176.0, 176.0, 88.0, 176.0, 88.0])
    res = resolve(regions)
    tempi = {round(a.tempo_bpm) for a in res.annotations if a.tempo_bpm}
    assert len(tempi) == 1 and tempi <= {88, 176}
    assert not any(e.kind == "tempo" for ev in res.changes.values() for e in ev)
    assert [a.region_tempo_bpm for a in res.annotations] == [88, 176, 176, 88, 176, 88]


def test_resolve_is_idempotent() -> None:
    regions = [
        annotation(0, 10),
        annotation(10, 20, key="G major", conf=0.95),
        annotation(20, 30),
    ]
    once = resolve(regions)
    twice = resolve(once.annotations)
    assert once == twice
    assert [a.key.key for a in once.annotations if a.key] == ["C major"] * 3
    assert once.annotations[1].region_key == regions[1].key


def test_weak_changes_are_merged_away() -> None:
    """A change whose confidence is under the threshold is not decoded, so never said."""
    regions = [annotation(10 * i, 10 * i + 10, conf=0.5) for i in range(3)] + [
        annotation(10 * i, 10 * i + 10, key="G major", conf=0.5) for i in range(3, 6)
    ]
    strict = resolve(regions, settings=TrackSettings(min_event_confidence=0.999))
    assert len({a.key.key for a in strict.annotations if a.key}) == 1
    assert strict.changes == {}
    loose = resolve(regions, settings=TrackSettings(min_event_confidence=0.1))
    assert [e.kind for e in loose.changes[3]] == ["key"]


def test_viterbi_prefers_staying_unless_the_evidence_pays_for_the_change() -> None:
    em = np.log(np.array([[0.9, 0.1], [0.2, 0.8], [0.9, 0.1]]))
    stay = np.array([[0.0, -5.0], [-5.0, 0.0]])
    assert viterbi(em, stay).tolist() == [0, 0, 0]
    free = np.zeros((2, 2))
    assert viterbi(em, free).tolist() == [0, 1, 0]


def test_key_evidence_helpers() -> None:
    est = KeyEstimate("A minor", 0.6, (("C major", 0.3),))
    p = key_distribution(est)
    assert p.sum() == pytest.approx(1.0)
    assert p.argmax() == 21 and p[0] == pytest.approx(0.3)
    cfg = TrackSettings()
    assert no_key_probability(None, cfg) == 0.0
    assert no_key_probability(0.9, cfg) < 0.01
    assert no_key_probability(0.01, cfg) > 0.95
