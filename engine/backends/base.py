"""The interface every backend implements."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from engine.audio import Audio
from engine.types import BeatGrid, Region, RegionAnnotation, Section, TrackNarrative

if TYPE_CHECKING:
    from engine.presets import Preset

Progress = Callable[[str, int, int], None]
"""Progress callback ``(stage, done, total)``; the CLI draws a bar, the server sends messages."""


def no_progress(stage: str, done: int, total: int) -> None:
    """A progress callback that ignores everything."""


@dataclass(frozen=True)
class Segment:
    """A region and its decoded samples.

    Attributes:
        region: where the samples sit in the file.
        audio: the region's samples at the file's rate and channel count.
        lyrics: lyrics text for the region, when the user supplied it (ALCAP), else "".
        alone: the region was asked for alone (a DAW's region request), so no track
            decoding will steady what it says; a backend may listen to more of it.
    """

    region: Region
    audio: Audio
    lyrics: str = ""
    alone: bool = False


class Backend(Protocol):
    """What the pipeline needs from a backend.

    Attributes:
        name: the backend's registry name.
        fingerprint: changes whenever weights or result-affecting settings change; part of
            every cache key.
        max_batch: how many segments the pipeline hands to one :meth:`analyze` call (results
            are stored after each call, and cancellation is checked between calls).
        preset: the preset it was built from (its ``[track]`` settings give the track view);
            None when its results already carry the track view (a remote engine's).
    """

    name: str
    fingerprint: str
    max_batch: int
    preset: Preset | None

    def analyze(
        self, segments: Sequence[Segment], *, progress: Progress = no_progress
    ) -> list[RegionAnnotation]:
        """Annotate each segment (batched where the backend can), in order."""
        ...

    def narrate(
        self,
        annotations: Sequence[RegionAnnotation],
        *,
        source: str,
        duration_s: float,
        progress: Progress = no_progress,
        grid: BeatGrid | None = None,
        form: Sequence[Section] = (),
    ) -> TrackNarrative:
        """A timestamped narrative over a file's annotations (in time order), told by
        section when the track's ``form`` is given."""
        ...

    def close(self) -> None:
        """Release models (GPU memory)."""
        ...


__all__ = ["Backend", "Progress", "Region", "Segment", "no_progress"]
