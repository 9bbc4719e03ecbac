"""Exports of a :class:`~engine.types.TrackResult`: its ``to_dict()`` rendered by the wire's
writers (:mod:`daw_bridge.export`: JSON, JAMS, Audacity labels, region CSV), so the engine and
the panel write the same bytes for the same result."""

from __future__ import annotations

import os
from pathlib import Path

from daw_bridge import export as writers
from daw_bridge.export import FORMATS, SUFFIXES
from engine.errors import InvalidRequest
from engine.types import TrackResult

__all__ = ["FORMATS", "SUFFIXES", "render", "write"]


def render(result: TrackResult, fmt: str, *, bars: bool = False, chords: bool = False) -> str:
    """The result in format ``fmt`` (one of :data:`FORMATS`); ``bars`` adds the grid's bar
    lines and ``chords`` the track's chords to Audacity labels and the region CSV.

    Raises:
        InvalidRequest: naming the format and the valid ones when ``fmt`` is unknown.
    """
    try:
        return writers.render(result.to_dict(), fmt, bars=bars, chords=chords)
    except writers.ExportError as exc:
        raise InvalidRequest(str(exc)) from exc


def write(
    result: TrackResult,
    path: str | os.PathLike[str],
    fmt: str,
    *,
    bars: bool = False,
    chords: bool = False,
) -> Path:
    """Write the result to ``path`` in format ``fmt``; returns the path."""
    text = render(result, fmt, bars=bars, chords=chords)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p
