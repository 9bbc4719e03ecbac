"""The manifest: one JSON object per line describing a labelled piece of audio.

The format is shared by training and evaluation. Every field but ``audio`` is optional::

    {"id": "fishin", "audio": "songs/fishin.ogg", "start_s": 0.0, "end_s": 30.0,
     "captions": ["A folk song with guitar and a female voice."], "lyrics": "...",
     "labels": {"key": "Bb major", "tempo_bpm": 88.4, "vocals": "female",
                "instruments": ["guitar", "voice"], "genres": ["folk"], "moods": [],
                "events": [{"kind": "key", "time_s": 62.0}]}}

``audio`` may be relative to the manifest's folder. A label that is absent is unknown; an
empty list is a statement (e.g. ``"events": []``: the piece has no changes). A bad row is
reported with its row number and skipped; the reader returns what it skipped.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import EngineError
from engine.labels import KEYS, VOCALS, key_index
from engine.types import EVENT_KINDS

log = logging.getLogger(__name__)

LABEL_FIELDS = ("key", "tempo_bpm", "vocals", "instruments", "genres", "moods", "events")
ROW_FIELDS = ("id", "audio", "start_s", "end_s", "captions", "lyrics", "labels")


class ManifestError(EngineError):
    """A manifest row (or file) that does not follow the format."""

    code = "bad_manifest"


@dataclass(frozen=True)
class Event:
    """A change in the music a listener would name.

    Attributes:
        kind: one of :data:`engine.types.EVENT_KINDS` (``"key"``, ``"tempo"``, ...).
        time_s: when it happens, in seconds from the start of the file.
    """

    kind: str
    time_s: float


@dataclass(frozen=True)
class Labels:
    """What is known about a row; None means unknown.

    Attributes:
        key: one of :data:`engine.labels.KEYS` (enharmonic spellings are normalised).
        tempo_bpm: the tempo in beats per minute.
        vocals: one of :data:`engine.labels.VOCALS`.
        instruments: instrument tags (free vocabulary).
        genres: genre tags.
        moods: mood/theme tags.
        events: changes with their times; ``()`` says there are none.
    """

    key: str | None = None
    tempo_bpm: float | None = None
    vocals: str | None = None
    instruments: tuple[str, ...] | None = None
    genres: tuple[str, ...] | None = None
    moods: tuple[str, ...] | None = None
    events: tuple[Event, ...] | None = None


@dataclass(frozen=True)
class ManifestRow:
    """One labelled piece of audio.

    Attributes:
        id: a name unique in the manifest.
        audio: absolute path of the audio file.
        start_s: start of the span in seconds (None: the start of the file).
        end_s: end of the span in seconds (None: the end of the file).
        captions: reference captions (any number).
        lyrics: the lyrics, empty when unknown or instrumental.
        labels: the feature labels.
        line: the 1-based row number in the manifest file it was read from (None when the
            row was not read from a file); not part of the row's JSON.
    """

    id: str
    audio: str
    start_s: float | None = None
    end_s: float | None = None
    captions: tuple[str, ...] = ()
    lyrics: str = ""
    labels: Labels = field(default_factory=Labels)
    line: int | None = field(default=None, compare=False)

    def to_dict(self, *, relative_to: Path | None = None) -> dict[str, Any]:
        """JSON-ready dict; ``audio`` relative to ``relative_to`` when given, absent fields
        left out."""
        audio = self.audio
        if relative_to is not None:
            audio = os.path.relpath(self.audio, relative_to)
        d: dict[str, Any] = {"id": self.id, "audio": audio}
        if self.start_s is not None:
            d["start_s"] = self.start_s
        if self.end_s is not None:
            d["end_s"] = self.end_s
        if self.captions:
            d["captions"] = list(self.captions)
        if self.lyrics:
            d["lyrics"] = self.lyrics
        labels: dict[str, Any] = {}
        for name in LABEL_FIELDS:
            value = getattr(self.labels, name)
            if value is None:
                continue
            if name == "events":
                value = [{"kind": e.kind, "time_s": e.time_s} for e in value]
            elif isinstance(value, tuple):
                value = list(value)
            labels[name] = value
        if labels:
            d["labels"] = labels
        return d


@dataclass(frozen=True)
class Manifest:
    """The rows read from a manifest and the rows skipped, as ``(row number, reason)``."""

    path: str
    rows: tuple[ManifestRow, ...]
    skipped: tuple[tuple[int, str], ...] = ()


def parse_row(obj: Any, *, base: Path, number: int) -> ManifestRow:
    """One manifest row from its decoded JSON.

    Args:
        obj: the decoded JSON object.
        base: the folder relative ``audio`` paths start from.
        number: the 1-based row number (the default ``id``).

    Raises:
        ManifestError: naming the field, the value and what was expected.
    """
    if not isinstance(obj, Mapping):
        raise ManifestError(f"row is {type(obj).__name__}, expected a JSON object")
    unknown = sorted(set(obj) - set(ROW_FIELDS))
    if unknown:
        raise ManifestError(f"unknown fields {unknown}; expected some of {list(ROW_FIELDS)}")
    audio = obj.get("audio")
    if not isinstance(audio, str) or not audio:
        raise ManifestError(f"audio={audio!r}, expected a file path")
    start_s = _seconds(obj, "start_s")
    end_s = _seconds(obj, "end_s")
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise ManifestError(f"end_s={end_s} is not after start_s={start_s}")
    captions = _strings(obj, "captions") or ()
    lyrics = obj.get("lyrics", "")
    if not isinstance(lyrics, str):
        raise ManifestError(f"lyrics={lyrics!r}, expected a string")
    return ManifestRow(
        id=str(obj.get("id", number)),
        audio=str((base / audio).resolve()) if not os.path.isabs(audio) else audio,
        start_s=start_s,
        end_s=end_s,
        captions=captions,
        lyrics=lyrics,
        labels=parse_labels(obj.get("labels", {})),
        line=number,
    )


def parse_labels(obj: Any) -> Labels:
    """The ``labels`` object of a row.

    Raises:
        ManifestError: naming the label, the value and what was expected.
    """
    if not isinstance(obj, Mapping):
        raise ManifestError(f"labels={obj!r}, expected a JSON object")
    unknown = sorted(set(obj) - set(LABEL_FIELDS))
    if unknown:
        raise ManifestError(f"unknown labels {unknown}; expected some of {list(LABEL_FIELDS)}")
    key = obj.get("key")
    if key is not None:
        try:
            key = KEYS[key_index(str(key))]
        except ValueError as exc:
            raise ManifestError(f"labels.key: {exc}") from None
    tempo = obj.get("tempo_bpm")
    if tempo is not None and (
        isinstance(tempo, bool) or not isinstance(tempo, int | float) or not 0 < tempo < 1000
    ):
        raise ManifestError(f"labels.tempo_bpm={tempo!r}, expected a number in (0, 1000)")
    vocals = obj.get("vocals")
    if vocals is not None and vocals not in VOCALS:
        raise ManifestError(f"labels.vocals={vocals!r}, expected one of {list(VOCALS)}")
    return Labels(
        key=key,
        tempo_bpm=None if tempo is None else float(tempo),
        vocals=vocals,
        instruments=_strings(obj, "instruments"),
        genres=_strings(obj, "genres"),
        moods=_strings(obj, "moods"),
        events=_events(obj.get("events")),
    )


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read a JSONL manifest; bad rows are logged with their number and skipped.

    Raises:
        ManifestError: the file cannot be read, or two rows share an ``id``.
    """
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read manifest {p}: {exc}") from None
    rows: list[ManifestRow] = []
    skipped: list[tuple[int, str]] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = parse_row(json.loads(line), base=p.parent.resolve(), number=number)
            if row.id in seen:
                raise ManifestError(f"id {row.id!r} appears twice")
        except (json.JSONDecodeError, ManifestError) as exc:
            log.warning("%s row %d skipped: %s", p, number, exc)
            skipped.append((number, str(exc)))
            continue
        seen.add(row.id)
        rows.append(row)
    if skipped:
        log.warning("%s: %d rows read, %d skipped", p, len(rows), len(skipped))
    return Manifest(str(p), tuple(rows), tuple(skipped))


def write_manifest(rows: Iterable[ManifestRow], path: str | os.PathLike[str]) -> int:
    """Write rows as JSONL, ``audio`` relative to the manifest's folder; returns the count."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    base = p.parent.resolve()
    n = 0
    with p.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row.to_dict(relative_to=base), ensure_ascii=False) + "\n")
            n += 1
    return n


def _seconds(obj: Mapping[str, Any], name: str) -> float | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ManifestError(f"{name}={value!r}, expected seconds (a finite number)")
    if value < 0:
        raise ManifestError(f"{name}={value!r}, expected seconds >= 0")
    return float(value)


def _strings(obj: Mapping[str, Any], name: str) -> tuple[str, ...] | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ManifestError(f"{name}={value!r}, expected a list of strings")
    return tuple(value)


def _events(value: Any) -> tuple[Event, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ManifestError(f"labels.events={value!r}, expected a list of {{kind, time_s}}")
    events = []
    for e in value:
        kind = e.get("kind") if isinstance(e, Mapping) else None
        if kind not in EVENT_KINDS:
            raise ManifestError(f"labels.events item {e!r}: kind expected one of {EVENT_KINDS}")
        t = _seconds(e, "time_s")
        if t is None:
            raise ManifestError(f"labels.events item {e!r}: time_s missing")
        events.append(Event(kind, t))
    return tuple(sorted(events, key=lambda e: e.time_s))
