"""The rule-based narrative and template captions."""

from __future__ import annotations

from dataclasses import replace

from engine.captions import template_caption
from engine.narrative import rule_based, timestamp
from engine.types import Tag, VocalsEstimate
from tests.engine.helpers import annotation


def test_timestamp() -> None:
    assert timestamp(0) == "0:00"
    assert timestamp(9.6) == "0:10"
    assert timestamp(75) == "1:15"
    assert timestamp(3725) == "1:02:05"


def test_merges_agreeing_regions_and_names_changes() -> None:
    regions = [
        annotation(0, 10),
        annotation(10, 20),
        annotation(20, 30, key="A minor"),
        annotation(30, 40, key="A minor"),
        annotation(40, 50, silent=True, lufs=None),
        annotation(50, 60, key="A minor", lufs=-6.0),
    ]
    n = rule_based(regions, source="s.wav", duration_s=60.0, backend="lite")
    assert [(s.start_s, s.end_s) for s in n.sections] == [(0, 20), (20, 40), (40, 50), (50, 60)]
    assert n.sections[1].events == ("the key moves to A minor",)
    assert "at 0:20 the key moves to A minor" in n.text
    assert n.text.startswith("0:00-0:20 C major, around 120 BPM")
    assert "0:40-0:50 silence" in n.text
    assert "at 0:50 the music returns" in n.text
    assert n.sections[2].key is None


def test_vocals_tempo_and_loudness_events() -> None:
    regions = [
        annotation(0, 10, vocals="none"),
        annotation(10, 20, vocals="female"),
        annotation(20, 30, vocals="female", bpm=140.0),
        annotation(30, 40, vocals="none", bpm=140.0, lufs=-24.0),
    ]
    n = rule_based(regions, source="s.wav", duration_s=40.0, backend="lite")
    events = [e for s in n.sections for e in s.events]
    assert "female vocals enter" in events
    assert "the tempo rises to 140 BPM" in events
    assert "the vocals drop out" in events
    assert any(e.startswith("it drops back (-10 LU") for e in events)
    assert "at 0:10 female vocals enter" in n.text


def test_build_up_inside_a_section() -> None:
    regions = [annotation(i * 10, i * 10 + 10, lufs=-30.0 + 4 * i) for i in range(4)]
    n = rule_based(regions, source="s.wav", duration_s=40.0, backend="lite")
    assert len(n.sections) == 1
    assert "building from -30 to -18 LUFS" in n.text


def test_low_confidence_outlier_key_is_absorbed() -> None:
    regions = [
        annotation(0, 10, conf=0.9),
        annotation(10, 20, key="G major", conf=0.3),
        annotation(20, 30, conf=0.9),
    ]
    n = rule_based(regions, source="s.wav", duration_s=30.0, backend="lite")
    assert len(n.sections) == 1
    confident = replace(regions[1], key=replace(regions[1].key, confidence=0.95))  # type: ignore[arg-type]
    n2 = rule_based(
        [regions[0], confident, regions[2]], source="s.wav", duration_s=30.0, backend="lite"
    )
    assert len(n2.sections) == 3


def test_empty() -> None:
    assert rule_based([], source="s.wav", duration_s=0.0, backend="lite").sections == ()


def test_caption_mentions_features() -> None:
    a = replace(
        annotation(0, 10, key="F# minor", bpm=96.0, lufs=-12.3),
        vocals=VocalsEstimate("female", (0.1, 0.1, 0.8)),
        instruments=(Tag("acoustic guitar", 0.8), Tag("piano", 0.6)),
        genres=(Tag("pop", 0.7),),
        moods=(Tag("happy", 0.6),),
    )
    c = template_caption(a)
    assert c == (
        "A relaxed F# minor pop passage at 96 BPM with a female lead vocal over acoustic guitar "
        "and piano, loud (-12.3 LUFS) and happy."
    )
    assert template_caption(annotation(0, 1, silent=True)) == "Silence."
    assert template_caption(annotation(0, 1, key="A minor", bpm=None, lufs=None)).startswith(
        "An A minor passage"
    )
    assert template_caption(annotation(0, 1, key="F major", bpm=None)).startswith("An F major")
    assert template_caption(annotation(0, 1, key="Bb major", bpm=None)).startswith("A Bb major")
    assert template_caption(annotation(0, 1, key="D major", bpm=120.0)).startswith("A mid-tempo")
