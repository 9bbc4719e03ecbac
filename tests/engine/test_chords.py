"""Chords on synthesized audio: a four-chord song on its bars, with a voice over it, a dominant
seventh, drums alone, silence; Roman numerals against the track's key; the chords in the
document, the captions and the narrative."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine import audio, presets
from engine.analysis.beats import GRID_SR, track_beats
from engine.analysis.chords import (
    chord_names,
    chords_between,
    decode,
    home_key,
    home_keys,
    parse_chord,
    progression,
    roman,
    track_chords,
)
from engine.analysis.frames import track_frames
from engine.backends.lite import LiteBackend
from engine.captions import template_caption
from engine.pipeline import Annotator, attach_chords, carry_chords
from engine.track import resolve
from engine.types import ChordSpan, KeyEstimate, TrackResult
from tests.engine.helpers import annotation
from tests.synth import NOTE, chord, drum_loop, sung_voice

SR = 22050


def bars_of(names: list[str], *, bpm: float, repeats: int, drums: bool = True) -> np.ndarray:
    """One chord a bar (``"C"``, ``"Am"``, ``"G7"``), struck on each beat with its root in the
    bass, over a drum loop."""
    beat = 60.0 / bpm
    shapes = {"": (0, 4, 7), "m": (0, 3, 7), "7": (0, 4, 7, 10)}
    parts = []
    for _ in range(repeats):
        for name in names:
            root = name[:2] if name[1:2] in ("#", "b") else name[:1]
            pc = NOTE[root]
            midis = [36 + pc] + [60 + (pc + iv) % 12 for iv in shapes[name[len(root) :]]]
            parts.extend(chord(midis, beat, sr=SR) for _ in range(4))
    y = np.concatenate(parts)
    if drums:
        y = y + drum_loop(bpm, y.size / SR, sr=SR)[: y.size]
    return y.astype(np.float32)


def chords_of(y: np.ndarray) -> tuple[ChordSpan, ...]:
    g = audio.resample(y, sr=SR, target_sr=GRID_SR)
    return track_chords(
        track_frames(g, sr=GRID_SR), track_beats(g, sr=GRID_SR), duration_s=y.size / SR
    )


def test_c_am_f_g_at_120_bpm_is_those_four_chords_on_their_bars() -> None:
    y = bars_of(["C", "Am", "F", "G"], bpm=120.0, repeats=3)
    spans = chords_of(y)
    assert [c.chord for c in spans] == ["C:maj", "A:min", "F:maj", "G:maj"] * 3
    for i, c in enumerate(spans[1:], start=1):
        assert abs(c.start_s - 2.0 * i) < 0.1, (i, c)  # a bar is 2 s at 120 BPM in 4/4
    assert all(c.confidence > 0.8 for c in spans)


def test_a_g7_is_a_g7_and_a_g_is_a_g() -> None:
    for name, label in (("G7", "G:7"), ("G", "G:maj")):
        spans = chords_of(bars_of([name], bpm=100.0, repeats=4))
        held = sum(c.end_s - c.start_s for c in spans if c.chord == label)
        assert held >= 0.9 * spans[-1].end_s, (name, spans)


@pytest.mark.parametrize("seed", range(3))
def test_a_sung_melody_as_loud_as_the_chords_leaves_them_readable(seed: int) -> None:
    # real mixes put a voice in the chords' register: it must not turn them into N or into
    # the seventh chords its notes suggest
    names, bar = ["C:maj", "A:min", "F:maj", "G:maj"], 2.4  # 100 BPM, 4/4
    y = bars_of(["C", "Am", "F", "G"], bpm=100.0, repeats=3)
    y = y + np.abs(y).max() * sung_voice(y.size / SR, f0_hz=440.0, sr=SR, seed=seed)
    spans = chords_of(y)
    right = sum(
        max(0.0, min(c.end_s, (i + 1) * bar) - max(c.start_s, i * bar))
        for c in spans
        for i in range(12)
        if c.chord == names[i % 4]
    )
    assert right >= 0.85 * 12 * bar, spans


@pytest.mark.parametrize("seed", range(5))
def test_drums_alone_are_no_chord(seed: int) -> None:
    y = drum_loop(90.0 + 10 * seed, 12.0, sr=SR, seed=seed)
    spans = chords_of(y)
    silent = sum(c.end_s - c.start_s for c in spans if c.chord == "N")
    assert silent >= 0.95 * 12.0, spans  # at most a stray beat
    assert all(c.confidence < 0.5 for c in spans if c.chord != "N"), spans


def test_a_chords_confidence_agrees_with_the_path_that_names_it() -> None:
    # six units clearly A, then six where B beats A by enough to pay for one change: the path
    # changes to B, and B's confidence must say so (the posterior uses the path's transitions)
    k = len(chord_names())
    scores = np.full((k, 12), 0.5)
    scores[1, :] = 1.0
    scores[2, 6:] = 1.05
    path, confidence = decode(scores, np.zeros(12, dtype=bool))
    assert path.tolist() == [1] * 6 + [2] * 6
    assert confidence[6:].min() > 0.5, confidence
    assert confidence[:6].min() > 0.5, confidence


def test_silence_is_no_chord() -> None:
    assert [c.chord for c in chords_of(np.zeros(8 * SR, dtype=np.float32))] == ["N"]


def test_the_chords_tile_the_track_and_change_only_between_different_chords() -> None:
    y = bars_of(["D", "Bm", "G", "A7"], bpm=96.0, repeats=2)
    spans = chords_of(y)
    assert spans[0].start_s == 0.0 and spans[-1].end_s == pytest.approx(y.size / SR, abs=1e-3)
    assert all(a.end_s == b.start_s and a.chord != b.chord for a, b in itertools.pairwise(spans))
    assert [c.chord for c in spans[:4]] == ["D:maj", "B:min", "G:maj", "A:7"]


@pytest.mark.parametrize(
    ("chord_", "key", "numeral"),
    [
        ("C:maj", "A minor", "III"),
        ("F:maj", "A minor", "VI"),
        ("G:maj", "A minor", "VII"),
        ("A:min", "A minor", "i"),
        ("E:7", "A minor", "V7"),
        ("G:7", "C major", "V7"),
        ("B:dim", "C major", "vii°"),
        ("A:min7", "C major", "vi7"),
        ("F:maj7", "C major", "IVmaj7"),
        ("Bb:maj", "C major", "bVII"),
        ("D#:maj", "C minor", "III"),
        ("D:sus4", "G major", "Vsus4"),
    ],
)
def test_roman_numerals_count_degrees_on_the_keys_scale(
    chord_: str, key: str, numeral: str
) -> None:
    assert roman(chord_, key) == numeral


def test_a_progression_drops_repeats_and_no_chord_and_says_a_cycle_once() -> None:
    spans = [
        ChordSpan(i, i + 1, c)
        for i, c in enumerate(["A:min", "N", "F:maj", "F:maj", "C:maj", "G:maj"])
    ]
    spans += [ChordSpan(10 + i, 11 + i, c) for i, c in enumerate(("A:min", "F:maj", "C:maj"))]
    assert progression(spans, "A minor") == "i-VI-III-VII"
    assert progression(spans[:4], "C major") == "vi-IV"
    assert progression([ChordSpan(0, 1, "N")], "C major") == ""
    assert roman("N", "C major") is None
    with pytest.raises(ValueError, match="'H major'"):
        roman("C:maj", "H major")
    with pytest.raises(ValueError, match="'C:aug'"):
        parse_chord("C:aug")


def test_chords_between_clips_to_the_region() -> None:
    spans = (ChordSpan(0, 2, "C:maj", 0.9), ChordSpan(2, 4, "G:maj", 0.8))
    assert chords_between(spans, 1.0, 3.0) == (
        ChordSpan(1.0, 2, "C:maj", 0.9),
        ChordSpan(2, 3.0, "G:maj", 0.8),
    )
    assert chords_between(spans, 4.0, 5.0) == ()


@pytest.fixture(scope="module")
def annotator() -> Annotator:
    preset = presets.load("lite")
    preset = replace(preset, options=replace(preset.options, tag=False))
    return Annotator(preset, store=None, backend=LiteBackend(preset))


def annotate(annotator: Annotator, tmp_path: Path, y: np.ndarray) -> TrackResult:
    path = tmp_path / "song.wav"
    audio.write(path, y, sr=SR, subtype="FLOAT")
    return annotator.annotate(str(path), use_cache=False)


@pytest.mark.parametrize(
    ("names", "key", "numerals"),
    [
        (["Am", "F", "E7", "Am"], "A minor", "i-VI-V7"),
        (["C", "F", "G7", "C"], "C major", "I-IV-V7"),
    ],
)
def test_the_regions_roman_numerals_follow_the_track_key(
    annotator: Annotator, tmp_path: Path, names: list[str], key: str, numerals: str
) -> None:
    result = annotate(annotator, tmp_path, bars_of(names, bpm=120.0, repeats=4))
    assert result.chords and result.chords[-1].end_s == pytest.approx(result.duration_s, abs=1e-3)
    assert progression(result.chords, key) == numerals
    for r in result.regions:
        assert r.key is not None and r.key.key == key
        assert r.chords == chords_between(result.chords, r.start_s, r.end_s)
        assert r.progression == progression(r.chords, key)
        assert set(r.progression.split("-")) <= set(numerals.split("-"))
    assert f"progression in {key}" in result.narrative.text
    assert any(f"over a {r.progression} progression in {key}" in r.caption for r in result.regions)


def test_the_document_carries_the_chords_and_validates(
    annotator: Annotator, tmp_path: Path
) -> None:
    import jsonschema

    result = annotate(annotator, tmp_path, bars_of(["C", "Am", "F", "G"], bpm=120.0, repeats=2))
    doc = json.loads(json.dumps(result.to_dict()))
    schema = json.loads(
        (Path(__file__).resolve().parents[2] / "engine/schema/annotation-1.2.json").read_text()
    )
    jsonschema.validate(doc, schema)
    assert [c["chord"] for c in doc["chords"][:4]] == ["C:maj", "A:min", "F:maj", "G:maj"]
    assert all(0.0 <= c["confidence"] <= 1.0 for c in doc["chords"])
    assert doc["regions"][0]["chords"] and doc["regions"][0]["progression"]
    back = [type(r).from_dict(d) for r, d in zip(result.regions, doc["regions"], strict=True)]
    assert tuple(back) == result.regions


def test_a_caption_says_a_progression_only_when_it_is_clear() -> None:
    a = annotation(0.0, 8.0, key="A minor")
    clear = tuple(
        ChordSpan(2.0 * i, 2.0 * i + 2, c, 0.9)
        for i, c in enumerate(("A:min", "F:maj", "C:maj", "G:maj"))
    )
    said = replace(a, chords=clear, progression="i-VI-III-VII")
    assert "over a i-VI-III-VII progression in A minor" in template_caption(said)
    unsure = replace(said, chords=tuple(replace(c, confidence=0.3) for c in clear))
    assert "progression" not in template_caption(unsure)
    assert "A minor" in template_caption(unsure)
    sparse = replace(said, chords=(clear[0], ChordSpan(2.0, 8.0, "N", 1.0)))
    assert "progression" not in template_caption(sparse)
    # one chord over the whole region is no progression
    one = replace(said, chords=(ChordSpan(0.0, 8.0, "A:min", 0.9),), progression="i")
    assert "progression" not in template_caption(one)
    assert "A minor" in template_caption(one)


def test_every_chord_the_decoder_can_name_is_valid_harte_for_jams_and_mir_eval() -> None:
    import jams
    import mir_eval

    names = chord_names()
    assert len(names) == 1 + 12 * 8 and len(set(names)) == len(names)
    ann = jams.Annotation(namespace="chord", duration=float(len(names)))
    for i, name in enumerate(names):
        ann.append(time=float(i), duration=1.0, value=name, confidence=0.5)
        root, bits, _ = mir_eval.chord.encode(name)
        parsed = parse_chord(name)
        assert parsed is None or (root == parsed[0] and bits.sum() >= 3), name
    ann.validate(strict=True)


def _spans(names: list[str], *, seconds: float = 2.0) -> tuple[ChordSpan, ...]:
    return tuple(
        ChordSpan(i * seconds, (i + 1) * seconds, name, 0.9) for i, name in enumerate(names)
    )


def test_the_home_key_is_the_key_the_chords_circle() -> None:
    assert home_key(_spans(["G:maj", "C:maj", "D:7", "G:maj"] * 4)) == "G major"
    assert home_key(_spans(["A:min", "D:min", "E:7", "A:min"] * 4)) == "A minor"
    # a rock song that dwells on its tonic keeps it through a flat-seven chord and the
    # subdominant (not the key of the subdominant, where the tonic would be the dominant)
    assert home_key(_spans(["D:maj", "D:maj", "C:maj", "G:maj", "D:maj"] * 4)) == "D major"
    # the relative minor's chords around a major tonic stay in the major key
    assert home_key(_spans(["C:maj", "A:min", "F:maj", "G:maj"] * 4)) == "C major"
    # a blues on its tonic seventh, with the subdominant's and dominant's: E, not the key
    # of A where E7 would be the dominant, nor B's
    blues = ["E:7"] * 4 + ["A:7"] * 2 + ["E:7"] * 2 + ["B:7", "A:7", "E:7", "B:7"]
    assert home_key(_spans(blues)) == "E major"
    # a tonic and its subdominant's major seventh: the tonic, not the key of the fourth
    assert home_key(_spans(["Bb:maj", "Eb:maj7"] * 6 + ["F:7", "Bb:maj"])) == "Bb major"
    # a little longer on C than on G, but opening and closing on G: in G
    bounds = np.cumsum([0.5, 1.0, 2.2, 2.0, 2.2, 1.0])
    names = ["G:maj", "C:maj", "G:maj", "C:maj", "G:maj"]
    g_c_g = [
        ChordSpan(float(a), float(b), n, 0.9)
        for a, b, n in zip(bounds[:-1], bounds[1:], names, strict=True)
    ]
    end = g_c_g[-1].end_s
    assert home_key((ChordSpan(0.0, 0.5, "N", 0.9), *g_c_g, ChordSpan(end, end + 1, "N", 0.9))) == (
        "G major"
    )
    # a song opening on E minor from silence, cut a moment into its next chord, does not
    # close on that chord: E minor, not the G major that a closing D7 would make it
    song = _spans(["E:min", "D:maj", "G:maj", "C:maj"] * 2 + ["E:min"])  # 0-18 s
    cut = (ChordSpan(-1.0, 0.0, "N", 0.9), *song, ChordSpan(18.0, 18.3, "D:7", 0.9))
    assert home_key(cut) == "E minor"


def test_the_home_key_says_how_far_its_chords_lead() -> None:
    # D D C G D: D major scores 36 + 0.12 x 12 + 0.54 x 12 = 43.92 chord-weighted seconds
    # over a minute (C is its flat seventh, G its IV), G major (where C is IV and D is V)
    # 12 + 0.52 x 36 + 0.54 x 12 = 37.2: a 6.72 s lead
    ((start, end, key, lead),) = home_keys(
        _spans(["D:maj", "D:maj", "C:maj", "G:maj", "D:maj"] * 6)
    )
    assert (start, end, key) == (0.0, 60.0, "D major")
    assert lead == pytest.approx(6.72)
    # three times as long, three times the lead
    ((_, _, _, lead),) = home_keys(_spans(["D:maj", "D:maj", "C:maj", "G:maj", "D:maj"] * 18))
    assert lead == pytest.approx(20.16)
    assert home_keys(_spans(["N"] * 8)) == ((0.0, 16.0, None, 0.0),)


def test_only_a_track_that_opens_and_closes_without_chords_has_cadences() -> None:
    # C's chords, G on both edges: a song that starts and stops on G (silence around it) is in
    # G; the same chords cut out of a longer song (no silence at either edge) are in C, the key
    # their durations say, whatever chord the cut fell on
    names = ["G:maj", "C:maj", "F:maj", "C:maj", "G:maj"]
    excerpt = _spans(names)
    end = excerpt[-1].end_s
    song = (ChordSpan(-1.0, 0.0, "N", 0.9), *excerpt, ChordSpan(end, end + 1.0, "N", 0.9))
    assert home_key(song) == "G major"
    assert home_key(excerpt) == "C major"
    # drums or speech: no chords, no home key
    assert home_key(_spans(["N"] * 8 + ["C:maj"])) is None
    assert home_key(()) is None


def test_whole_regions_of_silence_frame_the_music_as_the_track_decoder_reads_it() -> None:
    # the song above, between regions of silence (which carry no chords): its edges are still
    # cadences, so regions torn between C and G decode to G; without the silence, to C
    body = tuple(
        replace(c, start_s=c.start_s + 10.0, end_s=c.end_s + 10.0)
        for c in _spans(["G:maj", "C:maj", "F:maj", "C:maj", "G:maj"] * 2)
    )
    chords = (ChordSpan(0.0, 10.0, "N", 0.9), *body, ChordSpan(30.0, 40.0, "N", 0.9))
    torn = KeyEstimate("C major", 0.45, (("G major", 0.45),))
    music = [replace(annotation(t, t + 10.0), key=torn) for t in (10.0, 20.0)]
    song = [annotation(0.0, 10.0, silent=True), *music, annotation(30.0, 40.0, silent=True)]
    framed = resolve(carry_chords(song, chords)).annotations
    assert [a.key.key for a in framed if a.key] == ["G major", "G major"]
    cut = resolve(carry_chords(music, body)).annotations
    assert [a.key.key for a in cut if a.key] == ["C major", "C major"]


def test_the_chords_keep_the_track_key_where_the_profiles_lean_elsewhere() -> None:
    # every region's own pitch classes lean to G major (the subdominant of D), as a melody's
    # flat sevenths make them, but the chords of a 3-minute song circle D: it is in D major
    chords = _spans(["D:maj", "D:maj", "C:maj", "G:maj", "D:maj"] * 18)
    regions = [replace(annotation(10 * i, 10 * i + 10, key="G major", conf=0.6)) for i in range(18)]
    alone = resolve(regions)
    assert {a.key.key for a in alone.annotations if a.key} == {"G major"}
    told = resolve(attach_chords(regions, chords))
    assert {a.key.key for a in told.annotations if a.key} == {"D major"}
    # the numerals are said against the decoded key
    assert attach_chords(told.annotations, chords)[0].progression == "I-bVII-IV"
    # 20 s of the same: the chords lead D over G by under a second of support, too little to
    # overrule regions that say G
    short = resolve(attach_chords(regions[:2], chords[:10]))
    assert {a.key.key for a in short.annotations if a.key} == {"G major"}


def test_a_modulation_the_chords_follow_is_still_told() -> None:
    chords = _spans(
        ["C:maj", "F:maj", "G:7", "C:maj"] * 6 + ["E:min", "A:min", "B:7", "E:min"] * 6,
        seconds=1.25,
    )
    regions = [annotation(10 * i, 10 * i + 10, key="C major", conf=0.9) for i in range(3)] + [
        annotation(10 * i, 10 * i + 10, key="E minor", conf=0.9) for i in range(3, 6)
    ]
    res = resolve(attach_chords(regions, chords))
    assert [a.key.key for a in res.annotations if a.key] == ["C major"] * 3 + ["E minor"] * 3
    assert [e.text for e in res.changes[3] if e.kind == "key"] == ["the key moves to E minor"]


def test_chords_that_fill_a_region_give_it_a_key_whatever_its_tonality() -> None:
    # saturated, detuned synths: the tuning coherence (tonality) is under the threshold, but
    # the chords stand out from one another all along, so the regions have a key
    regions = [
        replace(a, key=replace(a.key, tonality=0.03))  # type: ignore[arg-type]
        for a in (annotation(10 * i, 10 * i + 10, key="D major", conf=0.7) for i in range(3))
    ]
    assert all(a.key is None for a in resolve(regions).annotations)
    chords = _spans(["D:maj", "G:maj", "A:maj", "D:maj"] * 4, seconds=30 / 16)
    told = resolve(attach_chords(regions, chords)).annotations
    assert [a.key.key for a in told if a.key] == ["D major"] * 3
    # drums: the chords are N, the regions keep "no clear key"
    drums = resolve(attach_chords(regions, _spans(["N"] * 16, seconds=30 / 16))).annotations
    assert all(a.key is None for a in drums)
