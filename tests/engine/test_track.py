"""engine.track: the track's story from region evidence, on synthesized songs and by hand."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine import audio, presets
from engine.backends.lite import LiteBackend
from engine.errors import PresetError
from engine.pipeline import Annotator
from engine.presets import TrackSettings
from engine.track import (
    CHORDLESS_BELOW,
    key_distribution,
    needed_tonality,
    no_key_probability,
    resolve,
    viterbi,
)
from engine.types import ChordSpan, KeyEstimate, Region, TrackResult, VocalsEstimate
from tests.engine.helpers import annotation
from tests.synth import detuned_saw_song, drum_loop, progression, song_with_change, sung_voice

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


def test_detuned_saws_with_a_kick_have_a_clear_key(annotator: Annotator, tmp_path: Path) -> None:
    # three saws +-25 cents apart per note, saturated, a kick on every beat: the tuning
    # coherence of all peaks is low, that of the held partials is not
    result = _annotate(annotator, tmp_path, detuned_saw_song("D", "major", seconds=30.0))
    assert all("no_clear_key" not in a.flags for a in result.regions)
    assert [a.key.key for a in result.regions if a.key] == ["D major"] * 3
    assert "no clear key" not in result.narrative.text


@pytest.fixture(scope="module")
def tagging_annotator() -> Annotator:
    """The shipped lite preset, tagger included."""
    return Annotator(presets.load("lite"), store=None)


def test_voice_entering_is_told_once_near_where_it_enters(
    tagging_annotator: Annotator, tmp_path: Path
) -> None:
    bed = np.tile(progression("C", "major", chord_s=1.0, repeats=2), 8)[: 60 * SR]
    y = 0.3 * bed / np.abs(bed).max()
    y[30 * SR :] += 0.35 * sung_voice(30.0)
    result = _annotate(tagging_annotator, tmp_path, y)
    events = _events(result, "vocals")
    assert len(events) == 1, events
    at, text = events[0]
    assert abs(at - 30.0) <= 10.0
    assert text.endswith("vocals enter")
    sung = [a.vocals.label != "none" for a in result.regions if a.vocals is not None]
    assert sung == [False] * 3 + [True] * 3


def _vocal_regions(p_vocals: list[float], female_share: float = 0.5) -> list:
    """Regions whose vocal evidence is P(vocals), split between the genders."""
    out = []
    for i, p in enumerate(p_vocals):
        probs = (1.0 - p, p * (1.0 - female_share), p * female_share)
        label = "none" if p < 0.5 else "female" if female_share >= 0.5 else "male"
        a = annotation(10 * i, 10 * i + 10)
        out.append(replace(a, vocals=VocalsEstimate(label, probs)))
    return out


def test_vocals_hovering_near_the_threshold_do_not_flip_the_whole_song() -> None:
    rng = np.random.default_rng(3)
    hover = list(0.58 + 0.08 * rng.uniform(-1, 1, 12))
    # split between the genders, no single vocal class beats "none" in any region, yet the
    # voice is more likely there than not: the song is sung throughout
    base = resolve(_vocal_regions(hover)).annotations
    assert all(a.vocals is not None and a.vocals.label != "none" for a in base)
    # a small change of one region's evidence moves at most that region
    for i in range(len(hover)):
        nudged = list(hover)
        nudged[i] -= 0.1
        got = resolve(_vocal_regions(nudged)).annotations
        changed = [
            j for j, (a, b) in enumerate(zip(base, got, strict=True)) if a.vocals != b.vocals
        ]
        assert len(changed) <= 1, (i, changed)


def test_vocals_enter_and_leave_where_the_evidence_does() -> None:
    p = [0.05, 0.1, 0.08, 0.9, 0.85, 0.95, 0.9, 0.1, 0.05, 0.9, 0.92, 0.88]
    res = resolve(_vocal_regions(p, female_share=0.9))
    sung = [a.vocals.label for a in res.annotations if a.vocals]
    assert sung == ["none"] * 3 + ["female"] * 4 + ["none"] * 2 + ["female"] * 3
    texts = {i: [e.text for e in ev if e.kind == "vocals"] for i, ev in res.changes.items()}
    assert {i: t for i, t in texts.items() if t} == {
        3: ["female vocals enter"],
        7: ["the vocals drop out"],
        9: ["female vocals enter"],
    }


def test_gender_is_told_only_when_confident() -> None:
    p = [0.05, 0.05, 0.95, 0.95, 0.95]
    unsure = resolve(_vocal_regions(p, female_share=0.55)).changes
    assert [e.text for e in unsure[2]] == ["vocals enter"]
    sure = resolve(_vocal_regions(p, female_share=0.1)).changes
    assert [e.text for e in sure[2]] == ["male vocals enter"]


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


def _keyed(tonalities: list[float], keys: list[str], conf: float = 0.3) -> list:
    """Regions whose best key has probability ``conf`` (the rest spread) and given tonality."""
    return [
        replace(
            annotation(10 * i, 10 * i + 10, key=k, conf=conf),
            key=replace(annotation(0, 1, key=k, conf=conf).key, tonality=t),  # type: ignore[arg-type]
        )
        for i, (t, k) in enumerate(zip(tonalities, keys, strict=True))
    ]


def test_uncertain_but_pitched_regions_keep_their_common_key() -> None:
    # a singer alone: every region leans to G minor at 0.3 and is pitched (tonality over the
    # threshold but for the first), so the track has G minor, not "no clear key"
    regions = _keyed([0.065, 0.12, 0.10], ["G minor"] * 3)
    res = resolve(regions)
    assert [a.key.key if a.key else None for a in res.annotations] == ["G minor"] * 3
    # unpitched regions stay without a key however peaked their key evidence
    flat = resolve(_keyed([0.02, 0.03, 0.01], ["G minor"] * 3, conf=0.9))
    assert all(a.key is None for a in flat.annotations)


def test_a_region_without_chords_needs_more_tonality() -> None:
    cfg = TrackSettings()
    assert needed_tonality(None, cfg) == cfg.min_tonality  # chords not read: as before
    assert needed_tonality(CHORDLESS_BELOW, cfg) == cfg.min_tonality
    assert needed_tonality(1.0, cfg) == cfg.min_tonality
    assert needed_tonality(0.0, cfg) == cfg.min_tonality_chordless
    half = needed_tonality(CHORDLESS_BELOW / 2, cfg)
    assert half == pytest.approx((cfg.min_tonality + cfg.min_tonality_chordless) / 2)
    # one threshold for all when the chordless one equals it; under it is refused
    flat = replace(cfg, min_tonality_chordless=cfg.min_tonality)
    assert needed_tonality(0.0, flat) == flat.min_tonality
    with pytest.raises(PresetError, match="min_tonality_chordless=0.05 is outside"):
        replace(cfg, min_tonality_chordless=0.05)
    assert no_key_probability(0.17, cfg) < 0.02
    assert no_key_probability(0.17, cfg, chords=0.0) > 0.95
    assert no_key_probability(0.17, cfg, chords=0.5) < 0.02


def _with_chords(regions: list, chord: str | None, share: float = 1.0) -> list:
    """Each region carrying the track's chords: ``chord`` over ``share`` of it, ``N`` over
    the rest (``chord`` None: ``N`` throughout)."""
    out = []
    for a in regions:
        split = a.start_s + share * (a.end_s - a.start_s) if chord else a.start_s
        spans = [ChordSpan(a.start_s, split, chord, 0.9)] if chord else []
        spans.append(ChordSpan(split, a.end_s, "N", 1.0))
        out.append(replace(a, chords=tuple(s for s in spans if s.end_s > s.start_s)))
    return out


def test_a_pitched_drum_kit_without_chords_has_no_clear_key() -> None:
    # a drum kit's ride cymbal and tuned toms hold steady partials: tonality 0.17 (over
    # min_tonality), every region leaning to F# major, but the chord recogniser finds only
    # N under them
    kit = _keyed([0.17, 0.18, 0.16], ["F# major"] * 3, conf=0.8)
    res = resolve(_with_chords(kit, None))
    assert all(a.key is None and "no_clear_key" in a.flags for a in res.annotations)
    assert all(a.region_key is not None for a in res.annotations)  # the evidence is kept
    # the same evidence under chords has a key: music
    keyed = resolve(_with_chords(kit, "F#:maj"))
    assert [a.key.key if a.key else None for a in keyed.annotations] == ["F# major"] * 3
    # a third of each region in chords is enough (a melody, a sparse riff) ...
    sparse = resolve(_with_chords(kit, "F#:maj", share=0.3))
    assert [a.key.key if a.key else None for a in sparse.annotations] == ["F# major"] * 3
    # ... and without chords read at all (another backend, chords off) the tonality decides
    assert all(a.key is not None for a in resolve(kit).annotations)
    # strongly pitched regions keep their key without chords (a melody the recogniser misses)
    bright = _keyed([0.4, 0.45, 0.42], ["F# major"] * 3, conf=0.8)
    held = resolve(_with_chords(bright, None))
    assert [a.key.key if a.key else None for a in held.annotations] == ["F# major"] * 3


def test_a_break_without_a_key_does_not_end_the_key() -> None:
    # D major, a 40 s drum break, D major again: the key becomes unclear, then nothing more
    same = resolve(_keyed([0.4] * 3 + [0.0] * 4 + [0.4] * 3, ["D major"] * 10, conf=0.8))
    assert [a.key.key if a.key else None for a in same.annotations] == (
        ["D major"] * 3 + [None] * 4 + ["D major"] * 3
    )
    told = {i: [e.text for e in ev if e.kind == "key"] for i, ev in same.changes.items()}
    assert {i: t for i, t in told.items() if t} == {3: ["the key becomes unclear"]}
    # a new key after the break is told where it starts
    moved = resolve(
        _keyed([0.4] * 3 + [0.0] * 4 + [0.4] * 3, ["D major"] * 7 + ["F minor"] * 3, conf=0.8)
    )
    told = {i: [e.text for e in ev if e.kind == "key"] for i, ev in moved.changes.items()}
    assert {i: t for i, t in told.items() if t} == {
        3: ["the key becomes unclear"],
        7: ["the key moves to F minor"],
    }


@pytest.mark.parametrize("drive", [10.0, 30.0])
def test_a_region_asked_for_alone_reads_its_own_chords(
    annotator: Annotator, tmp_path: Path, drive: float
) -> None:
    # saws 35 cents apart per note, saturated: the held partials' tuning coherence is far
    # under min_tonality (0.01-0.03), but the chords fill the region; a region request reads
    # no track, so it reads the chords of its own samples and keeps the key
    y = detuned_saw_song("D", "major", seconds=12.0, detune_cents=35.0, drive=drive)
    path = tmp_path / "saws.wav"
    audio.write(path, y, sr=SR, subtype="FLOAT")
    result = annotator.annotate(str(path), [Region(1.0, 11.0, "drop")], narrate=False)
    (a,) = result.regions
    assert a.region_key is not None and a.region_key.tonality < 0.05
    assert a.key is not None and a.key.key == "D major"
    assert "no_clear_key" not in a.flags
    assert a.chords and all(1.0 <= c.start_s < c.end_s <= 11.0 for c in a.chords)
    assert a.progression.startswith("I-vi-IV-V")
    assert result.chords == ()  # a region request reads no track


def test_a_repeated_region_request_does_not_read_its_chords_again(
    annotator: Annotator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine.pipeline as pipeline

    read = []
    real = pipeline.region_chords

    def counted(clip: audio.Audio, *, analysis: object) -> tuple:
        read.append(clip.start_s)
        return real(clip, analysis=analysis)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "region_chords", counted)
    y = np.tile(progression("A", "minor", chord_s=1.0, repeats=1), 6)
    path = tmp_path / "loop.wav"
    audio.write(path, y, sr=SR, subtype="FLOAT")
    first = annotator.annotate(str(path), [Region(4.0, 12.0, "a")], narrate=False)
    again = annotator.annotate(str(path), [Region(4.0, 12.0, "a")], narrate=False)
    assert len(read) == 1
    assert first.regions[0].chords == again.regions[0].chords
    assert all(4.0 <= c.start_s < c.end_s <= 12.0 for c in again.regions[0].chords)
    # the same samples at another place in the file: read once, timed where they are
    moved = annotator.annotate(str(path), [Region(8.0, 16.0, "b")], narrate=False)
    assert len(read) == 1
    assert [(c.start_s - 4.0, c.chord) for c in moved.regions[0].chords] == [
        (pytest.approx(c.start_s), c.chord) for c in first.regions[0].chords
    ]


@pytest.mark.parametrize("seed", [0, 1])
def test_a_bass_line_alone_over_drums_has_no_clear_key(
    annotator: Annotator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """The overtones of a lone bass line (a reese bass over a drum loop) are read as no chord,
    so the track needs the chordless tonality and has no clear key; without that reading its
    overtones fill it with chords and it gets one."""
    import engine.analysis.frames as frames
    from tests.synth import bass_and_drums

    y = bass_and_drums("D", "minor", seed=seed)
    result = _annotate(annotator, tmp_path, y)
    assert all(a.key is None for a in result.regions)
    assert "no clear key" in result.narrative.text
    monkeypatch.setattr(frames, "LONE_BASS_LOW", 2.0)  # never a lone bass
    assert all(a.key is not None for a in _annotate(annotator, tmp_path, y).regions)
