"""Build manifests from published data sets and label tables: ``sonicverse manifest import``.

- ``musicbench``: MusicBench's JSON (one object per line, or a JSON array) with ``location``,
  ``main_caption``, ``alt_caption``, ``key`` (``["A", "minor"]`` or ``"A minor"``) and ``bpm``.
- ``song-describer``: Song Describer's CSV (``caption_id, track_id, caption, path, ...``);
  the captions of one track become one row.
- ``labels-csv``: a table with a ``file`` column and any of ``key``/``key_ref``,
  ``tempo_bpm``/``tempo_ref_bpm``, ``vocals`` (as ``../shared/realaudio/labels.csv``).

A value that is not a label of the manifest format (``F (blues/dorian)`` as a key, ``speech``
as vocals) is left out of that row with a logged note; a row without audio is skipped.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from engine.data.manifest import Labels, ManifestError, ManifestRow, parse_labels, write_manifest

log = logging.getLogger(__name__)


def from_musicbench(path: Path, *, audio_root: Path) -> Iterator[ManifestRow]:
    """Rows of a MusicBench JSON file (``location`` is relative to ``audio_root``)."""
    for number, obj in enumerate(_json_objects(path), start=1):
        location = obj.get("location")
        if not location:
            log.warning("%s row %d skipped: no 'location'", path, number)
            continue
        key = obj.get("key")
        if isinstance(key, list) and len(key) >= 2:
            key = f"{key[0]} {key[1]}"
        captions = [c for c in (obj.get("main_caption"), obj.get("alt_caption")) if c]
        yield ManifestRow(
            id=str(obj.get("id", Path(location).stem)),
            audio=str((audio_root / location).resolve()),
            captions=tuple(captions),
            labels=_labels({"key": key, "tempo_bpm": obj.get("bpm")}, where=f"{path}:{number}"),
        )


def from_song_describer(path: Path, *, audio_root: Path) -> Iterator[ManifestRow]:
    """Rows of the Song Describer CSV, one per track with all its captions."""
    tracks: dict[str, tuple[str, list[str]]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for number, rec in enumerate(csv.DictReader(f), start=2):
            track, audio, caption = rec.get("track_id"), rec.get("path"), rec.get("caption")
            if not track or not audio or not caption:
                log.warning("%s line %d skipped: track_id, path or caption missing", path, number)
                continue
            tracks.setdefault(track, (audio, []))[1].append(caption.strip())
    for track, (audio, captions) in tracks.items():
        yield ManifestRow(
            id=track, audio=str((audio_root / audio).resolve()), captions=tuple(captions)
        )


def from_labels_csv(
    path: Path, *, audio_root: Path, caption_column: str | None = None
) -> Iterator[ManifestRow]:
    """Rows of a ``labels.csv``-style table (``file`` relative to ``audio_root``).

    Args:
        caption_column: a column to take as the reference caption (None: no captions).
    """
    with path.open(newline="", encoding="utf-8") as f:
        for number, rec in enumerate(csv.DictReader(f), start=2):
            audio = rec.get("file") or rec.get("audio")
            if not audio:
                log.warning("%s line %d skipped: no 'file' value", path, number)
                continue
            raw = {
                "key": _first(rec, "key", "key_ref"),
                "tempo_bpm": _number(_first(rec, "tempo_bpm", "tempo_ref_bpm")),
                "vocals": _first(rec, "vocals"),
            }
            caption = (rec.get(caption_column) or "").strip() if caption_column else ""
            yield ManifestRow(
                id=Path(audio).stem,
                audio=str((audio_root / audio).resolve()),
                captions=(caption,) if caption else (),
                labels=_labels(raw, where=f"{path}:{number}"),
            )


IMPORTERS: dict[str, Callable[..., Iterator[ManifestRow]]] = {
    "musicbench": from_musicbench,
    "song-describer": from_song_describer,
    "labels-csv": from_labels_csv,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``sonicverse manifest``."""
    sub = parser.add_subparsers(dest="action", required=True)
    imp = sub.add_parser("import", help="build a manifest from a data set's metadata")
    imp.add_argument("source", help="the metadata file (JSON or CSV)")
    imp.add_argument("--from", dest="kind", required=True, choices=sorted(IMPORTERS))
    imp.add_argument("--out", required=True, help="the manifest to write (.jsonl)")
    imp.add_argument(
        "--audio-root", help="folder the audio paths start from (default: the source's folder)"
    )
    imp.add_argument(
        "--caption-column", help="labels-csv only: a column to use as the reference caption"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``sonicverse manifest import``."""
    source = Path(args.source)
    if not source.is_file():
        log.error("no such file: %s", source)
        return 2
    root = Path(args.audio_root) if args.audio_root else source.parent
    options: dict[str, Any] = {"audio_root": root.resolve()}
    if args.kind == "labels-csv":
        options["caption_column"] = args.caption_column
    n = write_manifest(IMPORTERS[args.kind](source, **options), args.out)
    Console(stderr=True).print(f"wrote {n} rows to {args.out}", highlight=False)
    return 0


def _labels(raw: dict[str, Any], *, where: str) -> Labels:
    """Labels from raw values, leaving out (with a note) each value the format rejects."""
    kept: dict[str, Any] = {}
    for name, value in raw.items():
        if value in (None, ""):
            continue
        try:
            parse_labels({name: value})
        except ManifestError as exc:
            log.info("%s: %s left out (%s)", where, name, exc)
            continue
        kept[name] = value
    return parse_labels(kept)


def _first(rec: dict[str, str], *names: str) -> str | None:
    for name in names:
        value = (rec.get(name) or "").strip()
        if value:
            return value
    return None


def _number(text: str | None) -> float | str | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _json_objects(path: Path) -> Iterator[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        yield from json.loads(text)
        return
    for line in text.splitlines():
        if line.strip():
            yield json.loads(line)


__all__ = ["IMPORTERS", "add_arguments", "from_labels_csv", "from_musicbench", "run"]
