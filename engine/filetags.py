"""Key, BPM and a comment written into audio files' own tags, where DJ and library tools read them.

``sonicverse tag FOLDER --write key,bpm,comment`` annotates each file (through the store: a
catalogue already batched is a cache hit) and writes, through mutagen:

========  =====================  ===========  ============================================
field     MP3 (ID3v2)            FLAC / OGG   M4A / MP4 (iTunes atoms)
                                 / Opus
========  =====================  ===========  ============================================
key       ``TKEY``               INITIALKEY   ``----:com.apple.iTunes:initialkey``
bpm       ``TBPM``               BPM          ``tmpo``
comment   ``COMM`` (eng, no      COMMENT      ``©cmt``
          description)
========  =====================  ===========  ============================================

Where these names come from (checked, not guessed):

- ID3 ``TKEY``: the ID3v2 "Initial key" frame, a string of at most three characters, ``b``/``#``
  for accidentals and ``m`` for minor, e.g. ``Dbm`` (id3.org frame list, as quoted by
  smeta.sourceforge.net/api/org/farng/mp3/id3/FrameBodyTKEY.html). Mixed In Key and rekordbox
  read it, and accept Camelot / Open Key text in it too.
- Vorbis ``INITIALKEY``: the lofty-rs tag mapping (github.com/Serial-ATA/lofty-rs pull 156,
  ``src/tag/item.rs``) notes that MusicBrainz Picard suggests ``KEY`` (VirtualDJ, Denon
  Engine DJ) but that ``INITIALKEY`` is the more common one (rekordbox, Serato DJ, Traktor);
  we write ``INITIALKEY``. ``BPM`` and ``COMMENT`` are the usual Vorbis comment names (the
  exiftool Vorbis tag table; taglib's property map).
- MP4: ``tmpo`` (an integer atom) and ``©cmt`` are taglib's mappings of BPM and COMMENT
  (taglib.org/api/p_propertymapping.html); the key has no standard atom and goes into the
  iTunes free-form atom ``----:com.apple.iTunes:initialkey``, the name Mixed In Key writes
  (this one we did not find in a document we could retrieve; it is the convention Mp3tag's
  INITIALKEY mapping follows).

Notations (``--key-notation``): ``standard`` (``Am``, ``F#``: the ID3 form), ``camelot`` (``8A``
= A minor, ``8B`` = C major; Mixed In Key's wheel) and ``open-key`` (``1m`` = A minor, ``1d``
= C major; Traktor's). BPM is written as a whole number (ID3: "an integer and represented as a
numerical string"; ``tmpo`` is an integer atom).

Only tags change: mutagen rewrites the metadata blocks and leaves the audio frames as they
are. A field that already has a value is kept unless ``overwrite`` is set.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daw_bridge.keys import vocals_word
from engine.errors import EngineError, InvalidRequest
from engine.labels import key_index, key_tonic_mode

log = logging.getLogger(__name__)

FIELDS: tuple[str, ...] = ("key", "bpm", "comment")
NOTATIONS: tuple[str, ...] = ("standard", "camelot", "open-key")
TAGGABLE_SUFFIXES: frozenset[str] = frozenset(
    {".mp3", ".flac", ".ogg", ".oga", ".opus", ".m4a", ".mp4"}
)

ID3_FRAMES = {"key": "TKEY", "bpm": "TBPM", "comment": "COMM"}
VORBIS_NAMES = {"key": "INITIALKEY", "bpm": "BPM", "comment": "COMMENT"}
MP4_ATOMS = {"key": "----:com.apple.iTunes:initialkey", "bpm": "tmpo", "comment": "©cmt"}

_STANDARD_TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def key_name(key: str, *, notation: str = "standard") -> str:
    """A key (``"A minor"``) in a DJ notation: ``"Am"``, ``"8A"`` or ``"1m"``.

    Raises:
        InvalidRequest: an unknown notation or key name.
    """
    if notation not in NOTATIONS:
        raise InvalidRequest(f"key notation {notation!r} is not one of {', '.join(NOTATIONS)}")
    try:
        pc, mode = key_tonic_mode(key_index(key))
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    if notation == "standard":
        return _STANDARD_TONICS[pc] + ("m" if mode == "minor" else "")
    major_pc = pc if mode == "major" else (pc + 3) % 12  # the relative major shares the number
    camelot = (7 * major_pc + 7) % 12 + 1  # C major = 8B, each fifth up adds one
    if notation == "camelot":
        return f"{camelot}{'B' if mode == 'major' else 'A'}"
    return f"{(camelot - 8) % 12 + 1}{'d' if mode == 'major' else 'm'}"


@dataclass(frozen=True)
class Change:
    """One field of one file.

    Attributes:
        field: one of :data:`FIELDS`.
        tag: the container's name for it (``TKEY``, ``INITIALKEY``, ``tmpo``...).
        old: the value there now, None when absent.
        new: the value we would write.
        action: ``"write"``, ``"keep"`` (a value exists and overwrite is off) or ``"same"``.
    """

    field: str
    tag: str
    old: str | None
    new: str
    action: str


def values_of(result: Any, *, notation: str = "standard") -> dict[str, str]:
    """Tag values of a :class:`~engine.types.TrackResult`: the key heard longest (track-level
    view), the beat grid's tempo rounded (the regions' median tempo without a grid), and a
    one-line comment. Fields without evidence (a silent file has no key) are left out."""
    keys: Counter[str] = Counter()
    for a in result.regions:
        if a.key is not None:
            keys[a.key.key] += a.duration_s
    tempi = [a.tempo_bpm for a in result.regions if a.tempo_bpm is not None]
    vocals = Counter(
        vocals_word(a.vocals.label, a.vocals.probabilities)
        for a in result.regions
        if a.vocals is not None
    )
    genres = Counter(t.label for a in result.regions for t in a.genres)
    out: dict[str, str] = {}
    bits = []
    if keys:
        key = keys.most_common(1)[0][0]
        out["key"] = key_name(key, notation=notation)
        bits.append(f"{key} ({key_name(key, notation='camelot')})")
    grid_bpm = getattr(getattr(result, "grid", None), "tempo_bpm", None)
    if grid_bpm is not None:
        out["bpm"] = str(round(grid_bpm))
        bits.append(f"{out['bpm']} BPM")
    elif tempi:
        out["bpm"] = str(round(statistics.median(tempi)))
        bits.append(f"{out['bpm']} BPM")
    if vocals:
        label = vocals.most_common(1)[0][0]
        bits.append({"none": "instrumental", "vocals": "vocals"}.get(label, f"{label} vocals"))
    if genres:
        bits.append(", ".join(g for g, _ in genres.most_common(2)))
    if bits:
        out["comment"] = "SonicVerse: " + "; ".join(bits)
    return out


# -- containers --------------------------------------------------------------------------


def _open(path: Path) -> Any:
    import mutagen

    suffix = path.suffix.lower()
    if suffix not in TAGGABLE_SUFFIXES:
        raise InvalidRequest(
            f"{path}: cannot tag {suffix!r} files; expected one of "
            f"{', '.join(sorted(TAGGABLE_SUFFIXES))}"
        )
    try:
        if suffix == ".mp3":
            from mutagen.mp3 import MP3

            f = MP3(path)
        else:
            f = mutagen.File(path)
    except (mutagen.MutagenError, OSError) as exc:
        raise EngineError(f"{path}: unreadable tags ({exc})") from exc
    if f is None:
        raise EngineError(f"{path}: not a tagged audio container mutagen recognises")
    if f.tags is None:
        f.add_tags()
    return f


def _kind(f: Any) -> str:
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    if isinstance(f.tags, ID3):
        return "id3"
    if isinstance(f.tags, MP4Tags):
        return "mp4"
    return "vorbis"


def tag_name(kind: str, field: str) -> str:
    """The container's name of a field (``kind``: ``"id3"``, ``"vorbis"``, ``"mp4"``)."""
    return {"id3": ID3_FRAMES, "vorbis": VORBIS_NAMES, "mp4": MP4_ATOMS}[kind][field]


def _read(f: Any, kind: str, field: str) -> str | None:
    tags = f.tags
    name = tag_name(kind, field)
    if kind == "id3":
        frames = [fr for fr in tags.getall(name) if field != "comment" or fr.desc == ""]
        return str(frames[0].text[0]) if frames and frames[0].text else None
    if kind == "vorbis":
        values = tags.get(name)
        return str(values[0]) if values else None
    values = tags.get(name)
    if not values:
        return None
    v = values[0]
    return bytes(v).decode("utf-8") if isinstance(v, bytes) else str(v)


def _write(f: Any, kind: str, field: str, value: str) -> None:
    name = tag_name(kind, field)
    if kind == "id3":
        from mutagen import id3

        if field == "comment":
            f.tags.delall("COMM::eng")
            f.tags.add(id3.COMM(encoding=3, lang="eng", desc="", text=[value]))
        else:
            f.tags.setall(name, [getattr(id3, name)(encoding=3, text=[value])])
    elif kind == "vorbis":
        f.tags[name] = [value]
    elif field == "bpm":
        f.tags[name] = [int(value)]
    elif field == "key":
        from mutagen.mp4 import AtomDataType, MP4FreeForm

        f.tags[name] = [MP4FreeForm(value.encode("utf-8"), dataformat=AtomDataType.UTF8)]
    else:
        f.tags[name] = [value]


def plan(
    path: str | os.PathLike[str],
    values: dict[str, str],
    *,
    fields: Sequence[str] = FIELDS,
    overwrite: bool = False,
) -> list[Change]:
    """What writing ``values`` into ``path`` would change, field by field (nothing written).

    Raises:
        InvalidRequest: an unsupported container or an unknown field.
        EngineError: the file's tags cannot be read.
    """
    for field in fields:
        if field not in FIELDS:
            raise InvalidRequest(f"tag field {field!r} is not one of {', '.join(FIELDS)}")
    f = _open(Path(path))
    kind = _kind(f)
    changes = []
    for field in fields:
        if field not in values:
            continue
        old = _read(f, kind, field)
        new = values[field]
        action = "same" if old == new else "keep" if (old and not overwrite) else "write"
        changes.append(Change(field, tag_name(kind, field), old, new, action))
    return changes


def write_tags(
    path: str | os.PathLike[str],
    values: dict[str, str],
    *,
    fields: Sequence[str] = FIELDS,
    overwrite: bool = False,
) -> list[Change]:
    """Write ``values`` into ``path``'s tags (existing values kept unless ``overwrite``).

    Returns:
        The plan that was carried out (see :func:`plan`).
    """
    changes = plan(path, values, fields=fields, overwrite=overwrite)
    todo = [c for c in changes if c.action == "write"]
    if todo:
        f = _open(Path(path))
        kind = _kind(f)
        for c in todo:
            _write(f, kind, c.field, c.new)
        if kind == "id3":
            f.save(v2_version=3 if f.tags.version < (2, 4, 0) else 4)
        else:
            f.save()
    return changes


def read_tags(path: str | os.PathLike[str]) -> dict[str, str | None]:
    """The key, bpm and comment tags of a file, as written by :func:`write_tags`."""
    f = _open(Path(path))
    kind = _kind(f)
    return {field: _read(f, kind, field) for field in FIELDS}


# -- command ------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``sonicverse tag``."""
    p.add_argument("input", help="a folder (walked recursively) or one audio file")
    p.add_argument(
        "--write", default="key,bpm,comment", help="fields, comma-separated (default: all)"
    )
    p.add_argument("--key-notation", default="standard", choices=NOTATIONS)
    p.add_argument("--dry-run", action="store_true", help="list what would change, write nothing")
    p.add_argument("--overwrite", action="store_true", help="replace values already there")
    p.add_argument("--preset", default="lite", help="preset name or .toml path (default: lite)")
    p.add_argument("--store", help="annotation store (SQLite file); default: user data dir")


def _files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise InvalidRequest(f"tag input {str(source)!r} is neither a file nor a folder")
    return sorted(
        p
        for p in source.rglob("*")
        if p.is_file() and p.suffix.lower() in TAGGABLE_SUFFIXES and not p.name.startswith(".")
    )


def run(args: argparse.Namespace) -> int:
    """Tag every file; 0 when all went well, 1 when any file failed, 2 on bad arguments."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    out, err = Console(), Console(stderr=True)
    try:
        fields = [s.strip() for s in args.write.split(",") if s.strip()]
        for field in fields:
            if field not in FIELDS:
                raise InvalidRequest(f"--write field {field!r} is not one of {', '.join(FIELDS)}")
        files = _files(Path(args.input))
        from engine import presets
        from engine.pipeline import Annotator
        from engine.store import Store

        annotator = Annotator(presets.load(args.preset), store=Store(args.store))
    except EngineError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    table = Table("file", "tag", "now", "new", "action", title="dry run" if args.dry_run else None)
    failures = 0
    try:
        for f in files:
            try:
                result = annotator.annotate(os.path.abspath(f), narrate=False, beats=True)
                values = values_of(result, notation=args.key_notation)
                do = plan if args.dry_run else write_tags
                changes = do(f, values, fields=fields, overwrite=args.overwrite)
            except EngineError as exc:
                failures += 1
                err.print(
                    f"[bold red]failed:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
                )
                continue
            for c in changes:
                action = "would write" if (args.dry_run and c.action == "write") else c.action
                table.add_row(f.name, c.tag, c.old or "", c.new, action)
    finally:
        annotator.close()
    out.print(table)
    return 1 if failures else 0
