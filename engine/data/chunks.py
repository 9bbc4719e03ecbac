"""Training chunks: a manifest's rows cut into fixed 10 s pieces, and the named errors of a bad
row.

A chunk inherits its row's captions and lyrics; its ``song`` is the row's id (the audio-lyrics
alignment counts every chunk of a song once per batch). A span is cut as serving cuts a file
(:func:`daw_bridge.regions.plan_regions`): a last piece shorter than ``min_tail_s`` (half a
chunk: 5 s of 10 s, the presets' ``regions.min_tail_s``) joins the chunk before it, so the
model trains on the spans it will be asked about. A span shorter than a chunk gives one chunk
when it lasts at least ``min_chunk_s``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from engine.data.manifest import ManifestRow
from engine.errors import AudioError, EngineError

log = logging.getLogger(__name__)

CHUNK_S = 10.0
"""SonicVerse's chunk length in seconds."""


class DatasetError(EngineError):
    """A manifest row or a built dataset that training cannot use."""

    code = "bad_dataset"


class MissingAudioError(DatasetError):
    """A row's audio file is missing or unreadable."""


class MissingCaptionError(DatasetError):
    """A row without a caption where the caption (LM) loss needs one."""


class LabelLengthError(DatasetError):
    """A label vector whose length is not its label set's size."""


def where(row: ManifestRow, number: int | None = None) -> str:
    """``"row 3 (id 'fishin', songs/fishin.ogg)"`` for error messages."""
    n = f"row {number} " if number is not None else "row "
    return f"{n}(id {row.id!r}, {row.audio})"


@dataclass(frozen=True)
class Chunk:
    """One training example.

    Attributes:
        id: ``"<row id>#<index>"``, unique in the dataset.
        row: the manifest row it comes from.
        row_number: the row's 1-based position in the manifest (for error messages).
        start_s: start in the audio file, seconds.
        end_s: end in the audio file, seconds.
    """

    id: str
    row: ManifestRow
    row_number: int
    start_s: float
    end_s: float

    @property
    def song(self) -> str:
        """What identifies the piece (pairs of the same song are one pair in InfoNCE)."""
        return self.row.id


def chunk_rows(
    rows: Sequence[ManifestRow],
    *,
    chunk_s: float = CHUNK_S,
    min_chunk_s: float = 1.0,
    min_tail_s: float | None = None,
    require_captions: bool = True,
) -> list[Chunk]:
    """Cut every row's span into ``chunk_s`` pieces.

    Args:
        rows: manifest rows, in order.
        chunk_s: chunk length, seconds.
        min_chunk_s: a whole span shorter than this gives no chunk.
        min_tail_s: a last piece shorter than this joins the chunk before it (default: half
            a chunk, as serving joins a short last region).
        require_captions: a row without a caption is an error (the caption loss needs one).

    Raises:
        MissingAudioError: naming the row, when its audio is missing or unreadable.
        MissingCaptionError: naming the row, when ``require_captions`` and it has no caption.
    """
    from daw_bridge.regions import plan_regions
    from engine.audio import info

    tail = chunk_s / 2 if min_tail_s is None else min_tail_s
    out: list[Chunk] = []
    for number, row in enumerate(rows, start=1):
        if require_captions and not any(c.strip() for c in row.captions):
            raise MissingCaptionError(
                f"{where(row, number)} has no caption; the caption loss needs one per row "
                "(give captions, or build with --allow-uncaptioned for heads-only training)"
            )
        try:
            duration = info(row.audio).duration_s
        except AudioError as exc:
            raise MissingAudioError(f"{where(row, number)}: {exc}") from exc
        start = row.start_s or 0.0
        end = min(row.end_s, duration) if row.end_s is not None else duration
        if end - start < min_chunk_s:
            log.warning(
                "%s: span %.2f-%.2f s is shorter than a chunk", where(row, number), start, end
            )
            continue
        for k, (a, b) in enumerate(plan_regions(end - start, length_s=chunk_s, min_tail_s=tail)):
            out.append(
                Chunk(f"{row.id}#{k}", row, number, round(start + a, 6), round(start + b, 6))
            )
    return out
