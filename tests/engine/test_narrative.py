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
    regions = [replace(a, key=replace(a.key, candidates=())) if a.key else a for a in regions]
    n = rule_based(regions, source="s.wav", duration_s=60.0, backend="lite")
    assert [(s.start_s, s.end_s) for s in n.sections] == [(0, 20), (20, 40), (40, 50), (50, 60)]
    assert [e.text for e in n.sections[1].events] == ["the key moves to A minor"]
    assert n.sections[1].events[0].kind == "key"
    assert n.sections[1].events[0].confidence >= 0.5
    assert "at 0:20 the key moves to A minor" in n.text
    assert n.text.startswith("0:00-0:20 C major, around 120 BPM")
    assert "0:40-0:50 silence" in n.text
    assert "at 0:50 the music returns" in n.text
    assert n.sections[2].key is None


def test_vocals_tempo_and_loudness_events() -> None:
    regions = [
        annotation(0, 10, vocals="none"),
        annotation(10, 20, vocals="female"),
        annotation(20, 30, vocals="female"),
        annotation(30, 40, vocals="female", bpm=140.0),
        annotation(40, 50, vocals="female", bpm=140.0),
        annotation(50, 60, vocals="none", bpm=140.0, lufs=-24.0),
        annotation(60, 70, vocals="none", bpm=140.0, lufs=-24.0),
    ]
    n = rule_based(regions, source="s.wav", duration_s=70.0, backend="lite")
    events = [e.text for s in n.sections for e in s.events]
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


def test_one_region_is_not_a_modulation() -> None:
    """A single region in another key, however confident, is absorbed; two in a row are not."""
    for conf in (0.3, 0.95):
        regions = [
            annotation(0, 10, conf=0.9),
            annotation(10, 20, key="G major", conf=conf),
            annotation(20, 30, conf=0.9),
        ]
        n = rule_based(regions, source="s.wav", duration_s=30.0, backend="lite")
        assert len(n.sections) == 1
        assert "G major" not in n.text
    two = [
        annotation(0, 10, conf=0.9),
        annotation(10, 20, conf=0.9),
        annotation(20, 30, key="G major", conf=0.95),
        annotation(30, 40, key="G major", conf=0.95),
    ]
    n2 = rule_based(two, source="s.wav", duration_s=40.0, backend="lite")
    assert [s.start_s for s in n2.sections] == [0, 20]
    assert "at 0:20 the key moves to G major" in n2.text


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


def test_captions_name_the_gender_only_when_clear() -> None:
    sure = annotation(0, 10, vocals="male")  # P(male | vocals) 0.89
    unsure = replace(sure, vocals=VocalsEstimate("male", (0.2, 0.45, 0.35)))  # 0.56
    assert "with a male lead vocal" in template_caption(sure)
    assert "with a lead vocal" in template_caption(unsure)
