"""Exports: JSON validates against the versioned schema, JAMS validates, label formats parse."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

import jams
import jsonschema
import pytest

from engine import export
from engine.errors import InvalidRequest
from engine.narrative import rule_based
from engine.types import SCHEMA_VERSION, RegionAnnotation, TrackResult
from tests.engine.helpers import annotation

SCHEMA = (
    Path(__file__).resolve().parents[2] / "engine" / "schema" / f"annotation-{SCHEMA_VERSION}.json"
)


@pytest.fixture
def result() -> TrackResult:
    regions = (
        annotation(0, 10, vocals="female"),
        annotation(10, 20, key="F# minor", vocals="male"),
        replace(annotation(20, 30, silent=True, lufs=None), peak_dbfs=float("-inf")),
    )
    narrative = rule_based(regions, source="/music/s.wav", duration_s=30.0, backend="test")
    return TrackResult("/music/s.wav", 30.0, regions, narrative, "lite")


def test_json_matches_schema_and_round_trips(result: TrackResult) -> None:
    doc = json.loads(export.render(result, "json"))
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    assert doc["regions"][2]["peak_dbfs"] is None
    back = tuple(RegionAnnotation.from_dict(r) for r in doc["regions"])
    assert back == result.regions


def test_schema_rejects_bad_key(result: TrackResult) -> None:
    doc = json.loads(export.render(result, "json"))
    doc["regions"][0]["key"]["key"] = "H major"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, json.loads(SCHEMA.read_text()))


def test_jams_validates(result: TrackResult) -> None:
    jam = jams.load(io.StringIO(export.render(result, "jams")), validate=True, strict=True)
    keys = jam.search(namespace="key_mode")[0]
    assert [o.value for o in keys.data] == ["C:major", "F#:minor", "N"]
    tags = {o.value for o in jam.search(namespace="tag_open")[0].data}
    assert {"vocals:female", "vocals:male", "instrument:piano"} <= tags
    assert jam.sandbox.narrative == result.narrative.text


def test_audacity_labels(result: TrackResult) -> None:
    lines = export.render(result, "audacity").splitlines()
    assert lines[0] == "0.000000\t10.000000\tC major | female vocals | 120 BPM"
    assert lines[2].endswith("\tsilence")


def test_region_csv(result: TrackResult) -> None:
    rows = list(csv.reader(io.StringIO(export.render(result, "csv"))))
    assert rows[0] == ["#", "Name", "Start", "End", "Length"]
    assert rows[2] == [
        "R2",
        "F# minor | male vocals | 120 BPM",
        "10.000000",
        "20.000000",
        "10.000000",
    ]


def test_unknown_format(result: TrackResult) -> None:
    with pytest.raises(InvalidRequest, match="unknown export format 'xml'"):
        export.render(result, "xml")


def test_the_chords_go_to_jams_audacity_labels_and_csv_markers(result: TrackResult) -> None:
    from engine.types import ChordSpan

    chords = (
        ChordSpan(0.0, 0.5, "N", 0.9),
        ChordSpan(0.5, 10.0, "A:min", 0.8),
        ChordSpan(10.0, 20.0, "G:7", 0.7),
        ChordSpan(20.0, 30.0, "N", 1.0),
    )
    with_chords = replace(result, chords=chords)
    jam = jams.load(io.StringIO(export.render(with_chords, "jams")), validate=True, strict=True)
    obs = jam.search(namespace="chord")[0].data
    assert [(o.time, o.value, o.confidence) for o in obs] == [
        (0.0, "N", 0.9),
        (0.5, "A:min", 0.8),
        (10.0, "G:7", 0.7),
        (20.0, "N", 1.0),
    ]
    labels = export.render(with_chords, "audacity", chords=True).splitlines()
    assert "0.500000\t10.000000\tA:min" in labels and "0.000000\t0.500000\tN.C." in labels
    assert "G:7" not in export.render(with_chords, "audacity")
    rows = list(csv.reader(io.StringIO(export.render(with_chords, "csv", chords=True))))
    assert [r[:3] for r in rows if r[0].startswith("M")] == [
        ["M1", "N.C.", "0.000000"],
        ["M2", "A:min", "0.500000"],
        ["M3", "G:7", "10.000000"],
        ["M4", "N.C.", "20.000000"],
    ]
    assert not jams.load(io.StringIO(export.render(result, "jams"))).search(namespace="chord")
