"""The form through the track: the result document, the exports, the narrative told by section
and the region plan that follows the form."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

import jams
import jsonschema
import pytest

from daw_bridge.regions import plan_form_regions
from engine import audio, export, presets
from engine.backends.lite import LiteBackend
from engine.narrative import rule_based
from engine.pipeline import Annotator
from engine.types import SCHEMA_VERSION, Section, TrackResult
from tests.engine.helpers import annotation

SCHEMA = (
    Path(__file__).resolve().parents[2] / "engine" / "schema" / f"annotation-{SCHEMA_VERSION}.json"
)
FORM = (
    Section(0.0, 10.0, "A", "intro", 1.0),
    Section(10.0, 30.0, "B", "verse", 0.8),
    Section(30.0, 50.0, "C", "chorus", 0.9),
    Section(50.0, 70.0, "B", "verse", 0.7),
    Section(70.0, 90.0, "C", "chorus", 0.9),
    Section(90.0, 100.0, "D", None, 0.5),
)


def _regions() -> tuple:
    """10 s regions: a quiet intro, verses at -20 LUFS (female vocals), choruses at -12."""
    out = []
    for start in range(0, 100, 10):
        sec = next(s for s in FORM if s.start_s <= start < s.end_s)
        lufs = {"intro": -30.0, "verse": -20.0, "chorus": -12.0}.get(sec.function or "", -25.0)
        vocals = "female" if sec.function in ("verse", "chorus") else "none"
        out.append(annotation(start, start + 10, key="A minor", lufs=lufs, vocals=vocals))
    return tuple(out)


@pytest.fixture
def result() -> TrackResult:
    regions = _regions()
    narrative = rule_based(
        regions, source="/music/s.wav", duration_s=100.0, backend="test", form=FORM
    )
    return TrackResult("/music/s.wav", 100.0, regions, narrative, "lite", form=FORM)


def test_the_document_carries_the_form_and_validates(result: TrackResult) -> None:
    doc = json.loads(export.render(result, "json"))
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    assert [Section.from_dict(s) for s in doc["form"]] == list(FORM)


def test_jams_has_the_form_as_segment_open_labels(result: TrackResult) -> None:
    jam = jams.load(io.StringIO(export.render(result, "jams")), validate=True, strict=True)
    form = [
        a for a in jam.search(namespace="segment_open") if a.annotation_metadata.annotation_rules
    ]
    assert len(form) == 1
    assert [o.value for o in form[0].data] == ["A", "B", "C", "B", "C", "D"]
    assert [o.time for o in form[0].data] == [s.start_s for s in FORM]
    assert form[0].sandbox.functions == ["intro", "verse", "chorus", "verse", "chorus", None]


def test_labels_and_csv_name_each_section(result: TrackResult) -> None:
    labels = export.render(result, "audacity").splitlines()
    assert "30.000000\t50.000000\tChorus 1 · A minor · 120 BPM" in labels
    assert "70.000000\t90.000000\tChorus 2 · A minor · 120 BPM" in labels
    assert "90.000000\t100.000000\tSection D 1 · A minor · 120 BPM" in labels
    rows = list(csv.reader(io.StringIO(export.render(result, "csv"))))
    names = [r[1] for r in rows[1:]]
    assert names[10:] == [
        "Intro 1 · A minor · 120 BPM",
        "Verse 1 · A minor · 120 BPM",
        "Chorus 1 · A minor · 120 BPM",
        "Verse 2 · A minor · 120 BPM",
        "Chorus 2 · A minor · 120 BPM",
        "Section D 1 · A minor · 120 BPM",
    ]
    assert rows[11][2:] == ["0.000000", "10.000000", "10.000000"]


def test_the_narrative_names_each_section_once_in_order_and_says_the_chorus_returns(
    result: TrackResult,
) -> None:
    n = result.narrative
    assert [(s.start_s, s.end_s) for s in n.sections] == [(s.start_s, s.end_s) for s in FORM]
    text = n.text
    heads = ["intro (A)", "verse (B)", "chorus (C)", "the verse returns (B)",
             "the chorus returns (C)", "section D"]  # fmt: skip
    at = [text.index(h) for h in heads]
    assert at == sorted(at), text
    assert text.count("chorus (C)") == 1 and text.count("the chorus returns") == 1, text
    assert "1:10-1:30 the chorus returns (C)" in text
    verse = n.sections[1].text
    assert "louder (+10 LU)" in verse and "female vocals" in verse, verse
    # the vocals come in where the verse starts: the event is the verse's
    assert [e.kind for e in n.sections[1].events] == ["vocals"], n.sections[1].events


def test_the_form_plan_splits_long_sections_on_bar_lines() -> None:
    bars = [2.0 * i for i in range(60)]
    spans = plan_form_regions([(0.0, 8.0), (8.0, 72.5), (72.5, 80.0)], max_s=30.0, downbeats=bars)
    assert spans[0] == (0.0, 8.0) and spans[-1] == (72.5, 80.0)
    inner = spans[1:-1]
    assert inner[0][0] == 8.0 and inner[-1][1] == 72.5 and len(inner) == 3
    assert all(b - a <= 30.0 for a, b in inner)
    assert all(b in bars for _, b in inner[:-1])  # the cuts are bar lines
    assert plan_form_regions([(0.0, 95.0)], max_s=30.0) == [
        (0.0, 23.75),
        (23.75, 47.5),
        (47.5, 71.25),
        (71.25, 95.0),
    ]
    with pytest.raises(ValueError, match="max_s=0"):
        plan_form_regions([(0.0, 1.0)], max_s=0.0)


def test_the_engine_plans_regions_on_the_form(tmp_path: Path) -> None:
    from tests.engine.test_form import SR, abab_song

    path = tmp_path / "abab.wav"
    audio.write(path, abab_song(), sr=SR, subtype="FLOAT")
    preset = presets.load("lite")
    preset = replace(
        preset,
        regions=replace(preset.regions, plan="form", max_s=10.0),
        options=replace(preset.options, tag=False),
    )
    annotator = Annotator(preset, store=None, backend=LiteBackend(preset))
    regions, grid, form = annotator.plan_track(str(path))
    assert [s.label for s in form] == ["A", "B", "A", "B"]
    # each 16 s section is two regions of 8 s, cut on a bar line
    assert len(regions) == 8 and all(r.duration_s <= 10.0 for r in regions)
    assert {round(s.start_s, 4) for s in form} <= {round(r.start_s, 4) for r in regions}
    assert all(r.start_s in grid.downbeats for r in regions[1:])
    result = annotator.annotate(str(path), use_cache=False)
    assert result.form == form
    assert [(r.start_s, r.end_s) for r in result.regions] == [(r.start_s, r.end_s) for r in regions]
    assert "the chorus returns (B)" in result.narrative.text
    annotator.close()


def test_a_section_shorter_than_the_regions_is_told_from_the_regions_over_it() -> None:
    """20 s regions over a form with a 3 s section holding no region's middle: the regions
    overlapping it describe it, the vocals entering at the second one's start are said once,
    at 0:20, and only a section no region reaches is not annotated."""
    regions = (
        annotation(0.0, 20.0, key="A minor", lufs=-30.0, vocals="none"),
        annotation(20.0, 40.0, key="A minor", lufs=-12.0, vocals="female"),
    )
    form = (
        Section(0.0, 19.0, "A", "intro", 1.0),
        Section(19.0, 22.0, "B", None, 0.5),  # over the end of one region, the start of the next
        Section(22.0, 40.0, "C", "chorus", 0.9),
        Section(40.0, 45.0, "D", None, 0.5),  # past the last region
    )
    n = rule_based(regions, source="/music/s.wav", duration_s=45.0, backend="test", form=form)
    spans = [(s.start_s, s.end_s) for s in n.sections]
    assert spans == [(0.0, 19.0), (19.0, 20.0), (20.0, 22.0), (22.0, 40.0), (40.0, 45.0)]
    b, entry = n.sections[1], n.sections[2]
    assert b.text.startswith("0:19-0:22 section B:") and "instrumental" in b.text, b.text
    assert entry.text.startswith("at 0:20 female vocals enter"), entry.text
    said = [(s.start_s, e.kind) for s in n.sections for e in s.events if e.kind == "vocals"]
    assert said == [(20.0, "vocals")], n.sections
    assert [s.text.endswith("not annotated") for s in n.sections] == [False] * 4 + [True]


def test_a_region_reaching_a_sliver_into_such_a_section_does_not_open_it() -> None:
    regions = (
        annotation(0.0, 20.0, key="A minor", lufs=-30.0, vocals="none"),
        annotation(20.0, 40.0, key="A minor", lufs=-12.0, vocals="female"),
    )
    form = (
        Section(0.0, 19.5, "A", "intro", 1.0),
        Section(19.5, 24.0, "B", None, 0.5),  # the first region's last half second
        Section(24.0, 40.0, "C", "chorus", 0.9),
    )
    n = rule_based(regions, source="/music/s.wav", duration_s=40.0, backend="test", form=form)
    b = n.sections[1]
    assert (b.start_s, b.end_s) == (19.5, 24.0), n.sections
    assert "loud (-12 LUFS)" in b.text and "quiet" not in b.text, b.text
    assert [e.kind for e in b.events] == ["vocals"], b.events
