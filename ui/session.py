"""Sessions: the open file, its regions and annotations, and the narrative, saved as JSON.

The audio path is stored both absolute and relative to the session file, so a session folder
moved together with its audio still opens.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SESSION_VERSION = 1


class SessionError(ValueError):
    """A session file cannot be read: names the file and the problem."""


@dataclass
class Session:
    """What the panel saves.

    Attributes:
        audio_path: the annotated file (absolute).
        preset: the preset chosen in the panel.
        regions: ``RegionRow.to_dict()`` dicts.
        narrative: the engine's ``TrackNarrative.to_dict()``, None before narration.
        grid: the beat grid's fields of the engine's narrate reply, None before narration.
        chords: the track's chords of that reply (``ChordSpan.to_dict()`` dicts).
        form: the track's sections of the engine's narrate reply, empty before narration.
    """

    audio_path: str
    preset: str = "lite"
    regions: list[dict[str, Any]] = field(default_factory=list)
    narrative: dict[str, Any] | None = None
    grid: dict[str, Any] | None = None
    chords: list[dict[str, Any]] = field(default_factory=list)
    form: list[dict[str, Any]] = field(default_factory=list)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the session as JSON (atomically: a crash never leaves half a file)."""
        p = Path(path).resolve()
        audio = Path(self.audio_path).resolve()
        doc = {
            "sonicverse_session": SESSION_VERSION,
            "audio_path": str(audio),
            "audio_relpath": os.path.relpath(audio, p.parent),
            "preset": self.preset,
            "regions": self.regions,
            "narrative": self.narrative,
            "grid": self.grid,
            "chords": self.chords,
            "form": self.form,
        }
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2, allow_nan=False), encoding="utf-8")
        tmp.replace(p)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Session:
        """Read a session written by :meth:`save`.

        Raises:
            SessionError: unreadable file, not a session, a newer version or a bad region.
        """
        p = Path(path)
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SessionError(f"{p}: cannot read session ({exc})") from exc
        if not isinstance(doc, dict) or "sonicverse_session" not in doc:
            raise SessionError(f"{p}: not a SonicVerse session (no 'sonicverse_session' key)")
        version = doc["sonicverse_session"]
        if version != SESSION_VERSION:
            raise SessionError(
                f"{p}: session version {version!r}; this panel reads version {SESSION_VERSION}"
            )
        audio = Path(doc.get("audio_path", ""))
        rel = doc.get("audio_relpath")
        if not audio.is_file() and rel:
            moved = (p.parent / rel).resolve()
            if moved.is_file():
                audio = moved
        regions = doc.get("regions", [])
        for i, r in enumerate(regions):
            if not isinstance(r, dict) or not {"start_s", "end_s"} <= set(r):
                raise SessionError(f"{p}: region {i} lacks start_s/end_s: {r!r}")
            if not float(r["start_s"]) < float(r["end_s"]):
                raise SessionError(
                    f"{p}: region {i} has start_s={r['start_s']} >= end_s={r['end_s']}"
                )
        return cls(
            audio_path=str(audio),
            preset=str(doc.get("preset", "lite")),
            regions=regions,
            narrative=doc.get("narrative"),
            grid=doc.get("grid"),
            chords=list(doc.get("chords") or []),
            form=list(doc.get("form") or []),
        )
