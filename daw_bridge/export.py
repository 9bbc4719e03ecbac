"""The four export formats of a result document (``TrackResult.to_dict()``).

One set of writers for the engine (:mod:`engine.export` renders ``TrackResult.to_dict()``
through them) and the panel (which holds results as the engine sends them, as dicts):

- ``json``: the versioned schema (``engine/schema/annotation-<version>.json``).
- ``jams``: ``key_mode``, ``tempo``, ``segment_open`` (regions with captions), ``tag_open``
  (vocals and tags), ``beat`` (the grid: value = position in the bar, 1 = downbeat) and
  ``chord`` (the track's chords, Harte labels with their confidence) annotations, and a second
  ``segment_open`` for the form (value = the repeat label, the functions in its sandbox),
  validated with the ``jams`` package before writing (imported only by :func:`to_jams`; the
  other writers are pure Python).
- ``audacity``: an Audacity label track, ``start<TAB>end<TAB>label`` (File > Import > Labels),
  a label per region and one per section of the form (:func:`section_titles`); with ``bars``,
  a point label on every bar line too; with ``chords``, a label over each chord.
- ``csv``: ``#,Name,Start,End,Length`` rows in seconds, the layout of Reaper's Region/Marker
  Manager export (import it there) that Sonic Visualiser also imports (File > Import
  Annotation Layer, columns: time, end time, label), a row per region and one per section
  of the form; with ``bars``, a marker row (``M<n>``) on every bar line too; with ``chords``,
  a marker row where each chord starts.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from daw_bridge.keys import vocals_word
from daw_bridge.schema import SCHEMA_VERSION

FORMATS: tuple[str, ...] = ("json", "jams", "audacity", "csv")
SUFFIXES: dict[str, str] = {"json": ".json", "jams": ".jams", "audacity": ".txt", "csv": ".csv"}
FORMAT_NAMES: dict[str, str] = {
    "json": "JSON",
    "jams": "JAMS",
    "audacity": "Audacity labels",
    "csv": "Reaper region CSV",
}


EMPTY_GRID: dict[str, Any] = {
    "tempo_bpm": None,
    "meter": None,
    "beats": [],
    "beat_confidence": 0.0,
    "tempi": [],
}
"""The grid fields of a document whose track has no beat grid."""


class ExportError(ValueError):
    """An export was asked in an unknown format, or there is nothing to export."""


def track_document(
    *,
    source: str,
    duration_s: float,
    preset: str,
    regions: Sequence[dict[str, Any]],
    narrative: dict[str, Any] | None,
    grid: dict[str, Any] | None = None,
    chords: Sequence[dict[str, Any]] | None = None,
    form: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A ``TrackResult.to_dict()``-shaped document from the panel's results.

    Args:
        source: the annotated file.
        duration_s: its duration in seconds.
        preset: the preset that produced the annotations.
        regions: ``RegionAnnotation.to_dict()`` dicts (sorted by start here).
        narrative: a ``TrackNarrative.to_dict()``, or None when the track was not narrated
            (an empty narrative is written then).
        grid: the beat grid's fields (``BeatGrid.to_dict()``), or None for an empty grid.
        chords: the track's chords (``ChordSpan.to_dict()`` dicts), or None for none.
        form: the track's sections (``Section.to_dict()`` dicts), or None for none.
    """
    ordered = sorted(regions, key=lambda r: (float(r["start_s"]), float(r["end_s"])))
    backend = ordered[0]["backend"] if ordered else ""
    return {
        "schema_version": SCHEMA_VERSION,
        "source": source,
        "duration_s": float(duration_s),
        "preset": preset,
        **(grid or EMPTY_GRID),
        "form": list(form or []),
        "chords": list(chords or []),
        "regions": list(ordered),
        "narrative": narrative
        or {
            "source": source,
            "duration_s": float(duration_s),
            "text": "",
            "sections": [],
            "backend": backend,
        },
    }


def to_json(doc: dict[str, Any]) -> str:
    """The versioned JSON document."""
    return json.dumps(doc, indent=2, allow_nan=False)


def to_jams(doc: dict[str, Any]) -> str:
    """A validated JAMS document (raises ``jams.SchemaError`` if it would not validate)."""
    import jams

    duration = float(doc["duration_s"])
    jam = jams.JAMS()
    jam.file_metadata.duration = duration
    jam.file_metadata.title = Path(doc["source"]).name
    anns = {
        ns: jams.Annotation(namespace=ns, duration=duration)
        for ns in ("key_mode", "tempo", "segment_open", "tag_open")
    }
    for r in doc["regions"]:
        t = float(r["start_s"])
        d = float(r["end_s"]) - t
        anns["segment_open"].append(
            time=t,
            duration=d,
            value=r.get("caption") or r.get("name") or "region",
            confidence=None,
        )
        if r.get("silent"):
            anns["key_mode"].append(time=t, duration=d, value="N", confidence=1.0)
            continue
        if r.get("key"):
            tonic, mode = r["key"]["key"].split()
            anns["key_mode"].append(
                time=t, duration=d, value=f"{tonic}:{mode}", confidence=r["key"]["confidence"]
            )
        if r.get("tempo_bpm") is not None:
            anns["tempo"].append(
                time=t, duration=d, value=r["tempo_bpm"], confidence=r.get("tempo_confidence", 0)
            )
        if r.get("vocals"):
            anns["tag_open"].append(
                time=t,
                duration=d,
                value=f"vocals:{r['vocals']['label']}",
                confidence=max(r["vocals"]["probabilities"]),
            )
        for kind, field in (("instrument", "instruments"), ("genre", "genres"), ("mood", "moods")):
            for tag in r.get(field, []):
                anns["tag_open"].append(
                    time=t, duration=d, value=f"{kind}:{tag['label']}", confidence=tag["score"]
                )
    if doc.get("beats"):
        beat = jams.Annotation(namespace="beat", duration=duration)
        for b in doc["beats"]:
            beat.append(time=float(b["time_s"]), duration=0.0, value=int(b["position"]))
        beat.sandbox.meter = doc.get("meter")
        beat.sandbox.tempo_bpm = doc.get("tempo_bpm")
        anns["beat"] = beat
    if doc.get("chords"):
        chord = jams.Annotation(namespace="chord", duration=duration)
        for c in doc["chords"]:
            start = float(c["start_s"])
            chord.append(
                time=start,
                duration=float(c["end_s"]) - start,
                value=c["chord"],
                confidence=float(c["confidence"]),
            )
        anns["chord"] = chord
    if doc.get("form"):
        form = jams.Annotation(namespace="segment_open", duration=duration)
        for sec in doc["form"]:
            t = float(sec["start_s"])
            form.append(
                time=t,
                duration=float(sec["end_s"]) - t,
                value=str(sec["label"]),
                confidence=float(sec.get("confidence", 0.0)),
            )
        form.annotation_metadata.annotation_rules = "form: repeat labels (A, B, A ...)"
        form.sandbox.functions = [sec.get("function") for sec in doc["form"]]
        anns["form"] = form
    for ann in anns.values():
        ann.annotation_metadata.data_source = "sonicverse"
        ann.annotation_metadata.annotation_tools = f"preset {doc['preset']}"
        if len(ann.data):
            jam.annotations.append(ann)
    jam.sandbox.narrative = doc["narrative"]["text"]
    jam.validate(strict=True)
    buf = io.StringIO()
    jam.save(buf, strict=True)
    return buf.getvalue()


def region_label(r: dict[str, Any]) -> str:
    """Short label of a region: ``"A minor | female vocals | 120 BPM"`` or ``"silence"``."""
    if r.get("silent"):
        return "silence"
    bits = [r["key"]["key"] if r.get("key") else "?"]
    vocals = r.get("vocals")
    if vocals and vocals["label"] != "none":
        word = vocals_word(vocals["label"], vocals.get("probabilities", ()))
        bits.append("vocals" if word == "vocals" else f"{word} vocals")
    if r.get("tempo_bpm") is not None:
        bits.append(f"{r['tempo_bpm']:.0f} BPM")
    return " | ".join(bits)


def bar_lines(doc: dict[str, Any]) -> list[tuple[float, str]]:
    """``(time, "bar n")`` at every downbeat of the document's grid (the first bar with the
    meter and tempo: ``"bar 1 (4/4, 120 BPM)"``)."""
    downs = [float(b["time_s"]) for b in doc.get("beats", []) if int(b["position"]) == 1]
    out = []
    for n, t in enumerate(downs, start=1):
        label = f"bar {n}"
        if n == 1 and doc.get("meter") and doc.get("tempo_bpm"):
            label += f" ({doc['meter']}, {float(doc['tempo_bpm']):.0f} BPM)"
        out.append((t, label))
    return out


def chord_label(chord: str) -> str:
    """A chord as a label or marker says it: its Harte label, ``"N.C."`` for no chord."""
    return "N.C." if chord == "N" else chord


def chord_marks(doc: dict[str, Any]) -> list[tuple[float, float, str]]:
    """``(start, end, label)`` of each of the document's chords (:func:`chord_label`)."""
    return [
        (float(c["start_s"]), float(c["end_s"]), chord_label(str(c["chord"])))
        for c in doc.get("chords", [])
    ]


def section_titles(doc: dict[str, Any]) -> list[tuple[float, float, str]]:
    """``(start_s, end_s, title)`` for each section of the document's form, titled as the DAW
    scripts name their regions: ``"Chorus 1 · A minor · 128 BPM"`` (the function, or
    ``"Section B"``, numbered in order; the key of the region holding most of the section;
    the grid's tempo there, or the regions' without a grid)."""
    count: dict[str, int] = {}
    out = []
    for sec in doc.get("form", []):
        a, b = float(sec["start_s"]), float(sec["end_s"])
        fn = sec.get("function")
        what = fn[:1].upper() + fn[1:] if fn else f"Section {sec['label']}"
        count[what] = count.get(what, 0) + 1
        bits = [f"{what} {count[what]}"]
        key = _most(doc.get("regions", []), a, b, _region_key)
        if key:
            bits.append(key)
        bpm = _most(doc.get("tempi", []), a, b, lambda t: t.get("bpm"))
        if bpm is None:
            bpm = doc.get("tempo_bpm")
        if bpm is None:  # no grid: the regions' (track-level) tempo
            bpm = _most(doc.get("regions", []), a, b, lambda r: r.get("tempo_bpm"))
        if bpm is not None:
            bits.append(f"{float(bpm):.0f} BPM")
        out.append((a, b, " · ".join(bits)))
    return out


def _region_key(r: dict[str, Any]) -> str | None:
    return None if r.get("silent") or not r.get("key") else str(r["key"]["key"])


def _most(items: Sequence[dict[str, Any]], a: float, b: float, value: Any) -> Any:
    """``value(item)`` of the item (with ``start_s``, ``end_s``) covering most of [a, b)."""
    best, cover = None, 0.0
    for it in items:
        c = min(b, float(it["end_s"])) - max(a, float(it["start_s"]))
        v = value(it)
        if c > cover and v is not None:
            best, cover = v, c
    return best


def to_audacity_labels(doc: dict[str, Any], *, bars: bool = False, chords: bool = False) -> str:
    """An Audacity label track, one label per region and per section of the form (and a point
    label per bar line, a label over each chord)."""
    rows = [(float(r["start_s"]), float(r["end_s"]), region_label(r)) for r in doc["regions"]]
    rows += section_titles(doc)
    if bars:
        rows += [(t, t, label) for t, label in bar_lines(doc)]
    if chords:
        rows += chord_marks(doc)
    rows.sort(key=lambda x: (x[0], x[1]))
    return "".join(f"{a:.6f}\t{b:.6f}\t{label}\n" for a, b, label in rows)


def to_region_csv(doc: dict[str, Any], *, bars: bool = False, chords: bool = False) -> str:
    """Region CSV for Reaper's Region/Marker Manager (and Sonic Visualiser): the regions, then
    the sections of the form; with ``bars``, a marker on every bar line; with ``chords``, a
    marker where each chord starts (numbered after the bar lines')."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["#", "Name", "Start", "End", "Length"])
    for i, r in enumerate(doc["regions"], start=1):
        start, end = float(r["start_s"]), float(r["end_s"])
        w.writerow([f"R{i}", region_label(r), f"{start:.6f}", f"{end:.6f}", f"{end - start:.6f}"])
    for i, (start, end, title) in enumerate(section_titles(doc), start=len(doc["regions"]) + 1):
        w.writerow([f"R{i}", title, f"{start:.6f}", f"{end:.6f}", f"{end - start:.6f}"])
    marks = [(t, label) for t, label in bar_lines(doc)] if bars else []
    if chords:
        marks += [(t, label) for t, _, label in chord_marks(doc)]
    for i, (t, label) in enumerate(marks, start=1):
        w.writerow([f"M{i}", label, f"{t:.6f}", "", ""])
    return buf.getvalue()


WRITERS = {
    "json": to_json,
    "jams": to_jams,
    "audacity": to_audacity_labels,
    "csv": to_region_csv,
}


BAR_FORMATS: tuple[str, ...] = ("audacity", "csv")
"""The formats that can carry bar lines (and chord labels or markers)."""


def render(doc: dict[str, Any], fmt: str, *, bars: bool = False, chords: bool = False) -> str:
    """``doc`` in format ``fmt`` (one of :data:`FORMATS`); ``bars`` adds bar lines and
    ``chords`` the chords to the formats in :data:`BAR_FORMATS` (JSON and JAMS always carry
    the whole grid and every chord).

    Raises:
        ExportError: naming the format and the valid ones when ``fmt`` is unknown.
    """
    if fmt not in WRITERS:
        raise ExportError(f"unknown export format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    if (bars or chords) and fmt in BAR_FORMATS:
        writer = {"audacity": to_audacity_labels, "csv": to_region_csv}[fmt]
        return writer(doc, bars=bars, chords=chords)
    return WRITERS[fmt](doc)


def write(
    doc: dict[str, Any],
    path: str | os.PathLike[str],
    fmt: str,
    *,
    allow_empty: bool = True,
    chords: bool = False,
) -> Path:
    """Write ``doc`` to ``path`` in format ``fmt`` (one of :data:`FORMATS`); returns the path.
    ``chords``: the chords in Audacity labels and the region CSV too (:func:`render`).

    Raises:
        ExportError: unknown format, or (``allow_empty=False``) a document without regions.
    """
    if not allow_empty and not doc["regions"]:
        raise ExportError("nothing to export: no region has an annotation yet")
    text = render(doc, fmt, chords=chords)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p
