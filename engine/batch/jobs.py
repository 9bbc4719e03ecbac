"""Batch jobs: one file (or one span of a file) to annotate, from a folder or a manifest.

A manifest is JSON Lines, one object per line with at least ``audio`` (a path, relative to
the manifest's folder unless absolute) and optionally ``start_s`` / ``end_s`` (a span in
seconds; without them the whole file is annotated in the preset's regions). Other keys
(captions, lyrics, labels: the training manifest of ``engine.data.manifest``) are ignored
here, so the same file drives training, evaluation and batch annotation.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from engine.audio import SUPPORTED_SUFFIXES
from engine.errors import InvalidRequest

log = logging.getLogger(__name__)

MANIFEST_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True)
class Job:
    """One unit of batch work.

    Attributes:
        audio: absolute path of the audio file.
        start_s: span start in seconds, None for the whole file.
        end_s: span end in seconds, None for the whole file.
    """

    audio: str
    start_s: float | None = None
    end_s: float | None = None

    @property
    def key(self) -> str:
        """Identity of the job in the ledger: the path and the span."""
        if self.start_s is None and self.end_s is None:
            return self.audio
        return f"{self.audio}#{self.start_s}-{self.end_s}"

    def to_json(self) -> str:
        """One-line JSON (how jobs travel to Ray workers)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Job:
        """Inverse of :meth:`to_json`."""
        return cls(**json.loads(text))


def discover(folder: str | os.PathLike[str]) -> list[Job]:
    """Every supported audio file under ``folder`` (recursively, sorted, hidden files skipped).

    Raises:
        InvalidRequest: ``folder`` is not a folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InvalidRequest(f"batch input {str(folder)!r} is not a folder")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if not name.startswith(".") and p.suffix.lower() in SUPPORTED_SUFFIXES:
                found.append(Job(os.path.abspath(p)))
    return found


def read_manifest(path: str | os.PathLike[str]) -> list[Job]:
    """Jobs from a JSON Lines manifest (see the module docstring).

    Raises:
        InvalidRequest: naming the line and what is wrong with it.
    """
    p = Path(path)
    return list(_manifest_jobs(p, p.read_text(encoding="utf-8").splitlines()))


def _manifest_jobs(path: Path, lines: list[str]) -> Iterator[Job]:
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidRequest(f"{path}:{n}: not JSON ({exc.msg})") from None
        yield _job(row, base=path.parent, where=f"{path}:{n}")


def _job(row: Any, *, base: Path, where: str) -> Job:
    if not isinstance(row, dict) or not isinstance(row.get("audio"), str) or not row["audio"]:
        raise InvalidRequest(f"{where}: expected an object with an 'audio' path, got {row!r:.80}")
    span = [row.get("start_s"), row.get("end_s")]
    for name, value in zip(("start_s", "end_s"), span, strict=True):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InvalidRequest(f"{where}: {name} must be a number of seconds, got {value!r}")
    start, end = (None if v is None else float(v) for v in span)
    if end is not None and (start or 0.0) >= end:
        raise InvalidRequest(f"{where}: span [{start}, {end}) s is empty; expected start_s < end_s")
    audio = Path(row["audio"]).expanduser()
    audio = audio if audio.is_absolute() else base / audio
    return Job(os.path.abspath(audio), start, end)


def jobs_from(source: str | os.PathLike[str]) -> list[Job]:
    """Jobs from a folder or a ``.jsonl`` manifest.

    Raises:
        InvalidRequest: ``source`` is neither.
    """
    p = Path(source)
    if p.is_dir():
        return discover(p)
    if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES:
        return read_manifest(p)
    raise InvalidRequest(
        f"batch input {str(source)!r} is neither a folder nor a manifest "
        f"({', '.join(MANIFEST_SUFFIXES)} file)"
    )
