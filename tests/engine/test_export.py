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
