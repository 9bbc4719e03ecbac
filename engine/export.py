"""Exports of a :class:`~engine.types.TrackResult`: JSON, JAMS, Audacity labels, region CSV.

- JSON: the versioned schema (``engine/schema/annotation-<version>.json``).
- JAMS: ``key_mode``, ``tempo``, ``segment_open`` (regions with captions), ``tag_open``
  (vocals and tags) annotations, validated with the ``jams`` package before writing.
- Audacity label track: ``start<TAB>end<TAB>label`` lines (File > Import > Labels).
- CSV: ``#,Name,Start,End,Length`` rows in seconds, the layout of Reaper's Region/Marker
  Manager export (import it there) that Sonic Visualiser also imports (File > Import
  Annotation Layer, columns: time, end time, label).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from engine.errors import InvalidRequest
from engine.types import RegionAnnotation, TrackResult

FORMATS: tuple[str, ...] = ("json", "jams", "audacity", "csv")
SUFFIXES: dict[str, str] = {"json": ".json", "jams": ".jams", "audacity": ".txt", "csv": ".csv"}


def to_json(result: TrackResult) -> str:
    """The versioned JSON document."""
    return json.dumps(result.to_dict(), indent=2, allow_nan=False)


def _jams_key(key: str) -> str:
    tonic, mode = key.split()
    return f"{tonic}:{mode}"


def to_jams(result: TrackResult) -> str:
    """A validated JAMS document (raises ``jams.SchemaError`` if it would not validate)."""
    import jams

    jam = jams.JAMS()
    jam.file_metadata.duration = result.duration_s
    jam.file_metadata.title = Path(result.source).name
    meta = {"data_source": "sonicverse", "annotation_tools": f"preset {result.preset}"}
    key_ann = jams.Annotation(namespace="key_mode", duration=result.duration_s)
    tempo_ann = jams.Annotation(namespace="tempo", duration=result.duration_s)
    seg_ann = jams.Annotation(namespace="segment_open", duration=result.duration_s)
    tag_ann = jams.Annotation(namespace="tag_open", duration=result.duration_s)
    for a in result.regions:
        t, d = a.start_s, a.duration_s
        seg_ann.append(time=t, duration=d, value=a.caption or (a.name or "region"), confidence=None)
        if a.silent:
            key_ann.append(time=t, duration=d, value="N", confidence=1.0)
            continue
        if a.key is not None:
            key_ann.append(
                time=t, duration=d, value=_jams_key(a.key.key), confidence=a.key.confidence
            )
        if a.tempo_bpm is not None:
            tempo_ann.append(time=t, duration=d, value=a.tempo_bpm, confidence=a.tempo_confidence)
        if a.vocals is not None:
            p = max(a.vocals.probabilities)
            tag_ann.append(time=t, duration=d, value=f"vocals:{a.vocals.label}", confidence=p)
        for kind, tags in (("instrument", a.instruments), ("genre", a.genres), ("mood", a.moods)):
            for tag in tags:
                tag_ann.append(
                    time=t, duration=d, value=f"{kind}:{tag.label}", confidence=tag.score
                )
    for ann in (key_ann, tempo_ann, seg_ann, tag_ann):
        ann.annotation_metadata.data_source = meta["data_source"]
        ann.annotation_metadata.annotation_tools = meta["annotation_tools"]
        if len(ann.data):
            jam.annotations.append(ann)
    jam.sandbox.narrative = result.narrative.text
    jam.validate(strict=True)
    buf = io.StringIO()
    jam.save(buf, strict=True)
    return buf.getvalue()


def _label(a: RegionAnnotation) -> str:
    if a.silent:
        return "silence"
    bits = [a.key.key if a.key else "?"]
    if a.vocals is not None and a.vocals.label != "none":
        bits.append(f"{a.vocals.label} vocals")
    if a.tempo_bpm is not None:
        bits.append(f"{a.tempo_bpm:.0f} BPM")
    return " | ".join(bits)


def to_audacity_labels(result: TrackResult) -> str:
    """An Audacity label track, one label per region."""
    lines = [f"{a.start_s:.6f}\t{a.end_s:.6f}\t{_label(a)}" for a in result.regions]
    return "\n".join(lines) + "\n"


def to_region_csv(result: TrackResult) -> str:
    """Region CSV for Reaper's Region/Marker Manager and Sonic Visualiser."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["#", "Name", "Start", "End", "Length"])
    for i, a in enumerate(result.regions, start=1):
        w.writerow(
            [f"R{i}", _label(a), f"{a.start_s:.6f}", f"{a.end_s:.6f}", f"{a.duration_s:.6f}"]
        )
    return buf.getvalue()


WRITERS = {
    "json": to_json,
    "jams": to_jams,
    "audacity": to_audacity_labels,
    "csv": to_region_csv,
}


def render(result: TrackResult, fmt: str) -> str:
    """The result in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt not in WRITERS:
        raise InvalidRequest(f"unknown export format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    return WRITERS[fmt](result)


def write(result: TrackResult, path: str | os.PathLike[str], fmt: str) -> Path:
    """Write the result to ``path`` in format ``fmt``; returns the path."""
    text = render(result, fmt)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p
