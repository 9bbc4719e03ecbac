"""Typed results shared by every backend, with a versioned JSON form.

``RegionAnnotation`` and ``TrackNarrative`` are what the CLI prints, the store keeps, the
server sends and the exports write; no consumer cares which backend produced them.
The JSON form is described by ``engine/schema/annotation-<SCHEMA_VERSION>.json``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from daw_bridge.schema import SCHEMA_VERSION
from engine.labels import KEYS, VOCALS


@dataclass(frozen=True)
class Region:
    """A span of a file to annotate.

    Attributes:
        start_s: start in seconds from the start of the file.
        end_s: end in seconds (exclusive).
        name: the user's name for it (DAW region or item name), may be empty.
    """

    start_s: float
    end_s: float
    name: str = ""

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.end_s - self.start_s


@dataclass(frozen=True)
class KeyEstimate:
    """A key with a confidence in [0, 1] and the next candidates.

    Attributes:
        key: one of :data:`engine.labels.KEYS`, e.g. ``"F# minor"``.
        confidence: probability-like score in [0, 1].
        candidates: the next most likely keys with their scores, best first.
        probabilities: all 24 key probabilities in :data:`KEYS` order (empty when the
            estimator gives none): the evidence the track-level key decoder weighs.
        tonality: how pitched the region is, in [0, 1] (see
            :attr:`engine.analysis.chroma.PitchProfiles.tonality`); None when unmeasured.
    """

    key: str
    confidence: float
    candidates: tuple[tuple[str, float], ...] = ()
    probabilities: tuple[float, ...] = ()
    tonality: float | None = None

    def __post_init__(self) -> None:
        assert self.key in KEYS, self.key
        assert 0.0 <= self.confidence <= 1.0, self.confidence
        assert len(self.probabilities) in (0, len(KEYS)), len(self.probabilities)


@dataclass(frozen=True)
class Tag:
    """A ranked tag (instrument, genre or mood) with a score in [0, 1]."""

    label: str
    score: float


@dataclass(frozen=True)
class VocalsEstimate:
    """Vocal presence: ``label`` is one of :data:`engine.labels.VOCALS`.

    Attributes:
        label: ``"none"``, ``"male"`` or ``"female"``.
        probabilities: one probability per label in :data:`VOCALS` order, summing to 1.
    """

    label: str
    probabilities: tuple[float, float, float]

    def __post_init__(self) -> None:
        assert self.label in VOCALS, self.label


@dataclass(frozen=True)
class RegionAnnotation:
    """Everything a backend says about one region.

    Attributes:
        start_s: region start in seconds from the start of the file.
        end_s: region end in seconds.
        name: the region's name as given by the user (may be empty).
        silent: True when the region is silence; key/tempo/vocals/tags are then empty.
        key: estimated key, None for silence.
        tempo_bpm: estimated tempo in beats per minute, None if no pulse was found.
        tempo_confidence: in [0, 1].
        loudness_lufs: integrated loudness (ITU-R BS.1770), None when the region is shorter
            than one 400 ms gating block or gated out entirely.
        peak_dbfs: sample peak in dBFS (-inf allowed in memory, null in JSON).
        vocals: vocal presence, None when the backend does not detect vocals.
        instruments: ranked instrument tags.
        genres: ranked genre tags.
        moods: ranked mood/theme tags.
        caption: one sentence describing the region.
        backend: the backend name that produced it, e.g. ``"lite"``.
        flags: remarks such as ``"short_region_padded"`` or ``"no_clear_key"``.
        region_key: the region's own key estimate, set when ``key`` is the track-level view
            (:func:`engine.track.resolve`): ``key`` is then what the narrative says of this
            region (None for "no clear key"), ``region_key`` what the region alone suggests.
        region_tempo_bpm: the region's own tempo estimate, likewise, when ``tempo_bpm`` was
            put on the track's metrical level.
        tempo_candidates: the region's strongest periodicities ``(bpm, salience)``: the
            evidence the track-level tempo decoder weighs.
        chords: the track's chords sounding in the region, clipped to it (empty when the
            track's chords were not computed).
        progression: those chords as Roman numerals against ``key`` (``"i-VI-III-VII"``),
            :func:`engine.analysis.chords.progression`; ``""`` without chords or key.
    """

    start_s: float
    end_s: float
    silent: bool
    key: KeyEstimate | None
    tempo_bpm: float | None
    tempo_confidence: float
    loudness_lufs: float | None
    peak_dbfs: float
    caption: str
    backend: str
    name: str = ""
    vocals: VocalsEstimate | None = None
    instruments: tuple[Tag, ...] = ()
    genres: tuple[Tag, ...] = ()
    moods: tuple[Tag, ...] = ()
    flags: tuple[str, ...] = ()
    region_key: KeyEstimate | None = None
    region_tempo_bpm: float | None = None
    tempo_candidates: tuple[tuple[float, float], ...] = ()
    chords: tuple[ChordSpan, ...] = ()
    progression: str = ""

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.end_s - self.start_s

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite floats become None)."""
        d = asdict(self)
        d["peak_dbfs"] = _finite_or_none(self.peak_dbfs)
        for name in ("key", "region_key"):
            est = getattr(self, name)
            if est is not None:
                d[name]["candidates"] = [list(c) for c in est.candidates]
                d[name]["probabilities"] = list(est.probabilities)
        d["tempo_candidates"] = [list(c) for c in self.tempo_candidates]
        if self.vocals is not None:
            d["vocals"]["probabilities"] = list(self.vocals.probabilities)
        d["flags"] = list(self.flags)
        d["chords"] = [c.to_dict() for c in self.chords]
        for name in ("instruments", "genres", "moods"):
            d[name] = [asdict(t) for t in getattr(self, name)]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegionAnnotation:
        """Inverse of :meth:`to_dict`."""
        vocals = d.get("vocals")
        peak = d.get("peak_dbfs")
        return cls(
            start_s=float(d["start_s"]),
            end_s=float(d["end_s"]),
            name=str(d.get("name", "")),
            silent=bool(d["silent"]),
            key=_key(d.get("key")),
            tempo_bpm=None if d.get("tempo_bpm") is None else float(d["tempo_bpm"]),
            tempo_confidence=float(d.get("tempo_confidence", 0.0)),
            loudness_lufs=None if d.get("loudness_lufs") is None else float(d["loudness_lufs"]),
            peak_dbfs=-math.inf if peak is None else float(peak),
            vocals=None
            if vocals is None
            else VocalsEstimate(
                label=vocals["label"],
                probabilities=tuple(float(p) for p in vocals["probabilities"]),  # type: ignore[arg-type]
            ),
            instruments=_tags(d.get("instruments", [])),
            genres=_tags(d.get("genres", [])),
            moods=_tags(d.get("moods", [])),
            caption=str(d.get("caption", "")),
            backend=str(d["backend"]),
            flags=tuple(d.get("flags", [])),
            region_key=_key(d.get("region_key")),
            region_tempo_bpm=None
            if d.get("region_tempo_bpm") is None
            else float(d["region_tempo_bpm"]),
            tempo_candidates=tuple((float(b), float(w)) for b, w in d.get("tempo_candidates", [])),
            chords=tuple(ChordSpan.from_dict(c) for c in d.get("chords", [])),
            progression=str(d.get("progression", "")),
        )


EVENT_KINDS = ("key", "tempo", "vocals", "loudness", "silence")


@dataclass(frozen=True)
class NarrativeEvent:
    """A change the narrative claims at the start of a section.

    Attributes:
        kind: one of :data:`EVENT_KINDS`.
        text: how the narrative says it, e.g. ``"the key moves to A minor"``.
        confidence: how strongly the regions' evidence supports the change, in [0, 1]; only
            events above the narrative's threshold for their kind are said.
    """

    kind: str
    text: str
    confidence: float

    def __post_init__(self) -> None:
        assert self.kind in EVENT_KINDS, self.kind
        assert 0.0 <= self.confidence <= 1.0, self.confidence


@dataclass(frozen=True)
class NarrativeSection:
    """A stretch of neighbouring regions that agree, with what is true of it.

    Attributes:
        start_s: section start in seconds.
        end_s: section end in seconds.
        text: what the narrative says about this section.
        key: the section's key, None for silence.
        events: changes that happen at ``start_s`` (e.g. the key moving to A minor).
    """

    start_s: float
    end_s: float
    text: str
    key: str | None = None
    events: tuple[NarrativeEvent, ...] = ()


@dataclass(frozen=True)
class TrackNarrative:
    """A timestamped narrative of a whole file.

    Attributes:
        source: the file narrated.
        duration_s: the span covered, in seconds.
        text: the narrative as prose with ``m:ss`` timestamps.
        sections: the sections the text is made of, in time order.
        backend: the backend that wrote it.
    """

    source: str
    duration_s: float
    text: str
    sections: tuple[NarrativeSection, ...]
    backend: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        d = asdict(self)
        d["sections"] = [
            {**asdict(s), "events": [asdict(e) for e in s.events]} for s in self.sections
        ]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrackNarrative:
        """Inverse of :meth:`to_dict`."""
        return cls(
            source=str(d["source"]),
            duration_s=float(d["duration_s"]),
            text=str(d["text"]),
            sections=tuple(
                NarrativeSection(
                    start_s=float(s["start_s"]),
                    end_s=float(s["end_s"]),
                    text=str(s["text"]),
                    key=s.get("key"),
                    events=tuple(
                        NarrativeEvent(str(e["kind"]), str(e["text"]), float(e["confidence"]))
                        for e in s.get("events", [])
                    ),
                )
                for s in d["sections"]
            ),
            backend=str(d["backend"]),
        )


@dataclass(frozen=True)
class Beat:
    """One beat of the track: when, and where in the bar (1 = the downbeat)."""

    time_s: float
    position: int


@dataclass(frozen=True)
class TempoSpan:
    """A stretch of the track at one tempo (the least-squares rate of its beat times)."""

    start_s: float
    end_s: float
    bpm: float


@dataclass(frozen=True)
class BeatGrid:
    """The track's beat grid (:func:`engine.analysis.beats.track_beats`).

    Attributes:
        beats: every beat in time order, with its position in the bar.
        meter: ``"4/4"``, ``"3/4"``, ``"2/4"`` or ``"6/8"``; None without beats.
        tempo_bpm: the tempo of the longest stretch in ``tempi``; None without beats.
        confidence: how well the beats sit on onsets, in [0, 1].
        tempi: stretches of steady tempo, a new one at each tempo change.
    """

    beats: tuple[Beat, ...] = ()
    meter: str | None = None
    tempo_bpm: float | None = None
    confidence: float = 0.0
    tempi: tuple[TempoSpan, ...] = ()

    @property
    def downbeats(self) -> tuple[float, ...]:
        """Times of the beats on position 1."""
        return tuple(b.time_s for b in self.beats if b.position == 1)

    def tempo_between(self, start_s: float, end_s: float) -> float | None:
        """The grid's tempo over ``[start_s, end_s)``: the tempo span covering most of it;
        None where the grid has no beats."""
        best, cover = None, 0.0
        for span in self.tempi:
            c = min(end_s, span.end_s) - max(start_s, span.start_s)
            if c > cover:
                best, cover = span.bpm, c
        return best

    def to_dict(self) -> dict[str, Any]:
        """The grid's fields of the result document (schema 1.2)."""
        return {
            "tempo_bpm": self.tempo_bpm,
            "meter": self.meter,
            "beats": [{"time_s": b.time_s, "position": b.position} for b in self.beats],
            "beat_confidence": self.confidence,
            "tempi": [asdict(t) for t in self.tempi],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BeatGrid:
        """Inverse of :meth:`to_dict` (missing fields: an empty grid)."""
        return cls(
            beats=tuple(Beat(float(b["time_s"]), int(b["position"])) for b in d.get("beats", [])),
            meter=d.get("meter"),
            tempo_bpm=None if d.get("tempo_bpm") is None else float(d["tempo_bpm"]),
            confidence=float(d.get("beat_confidence", 0.0)),
            tempi=tuple(
                TempoSpan(float(t["start_s"]), float(t["end_s"]), float(t["bpm"]))
                for t in d.get("tempi", [])
            ),
        )


@dataclass(frozen=True)
class Section:
    """One section of the track's form (:mod:`engine.analysis.form`).

    Attributes:
        start_s: where the section starts (a downbeat when the track has a beat grid).
        end_s: where it ends (the next section's start, or the end of the track).
        label: repeat label: the same letter for material that returns (``"A"``, ``"B"``, ...).
        function: ``"intro"``, ``"verse"``, ``"chorus"``, ``"bridge"``, ``"breakdown"``,
            ``"build-up"``, ``"drop"``, ``"outro"``; None where the evidence says nothing.
        confidence: how clear the boundary at ``start_s`` is, in [0, 1].
    """

    start_s: float
    end_s: float
    label: str
    function: str | None = None
    confidence: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The section's object of the result document's ``form`` (schema 1.2)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Section:
        """Inverse of :meth:`to_dict`."""
        return cls(
            start_s=float(d["start_s"]),
            end_s=float(d["end_s"]),
            label=str(d["label"]),
            function=None if d.get("function") is None else str(d["function"]),
            confidence=float(d.get("confidence", 0.0)),
        )


@dataclass(frozen=True)
class ChordSpan:
    """One chord of the track (:mod:`engine.analysis.chords`).

    Attributes:
        start_s: where the chord starts.
        end_s: where it ends (the next chord's start, or the end of the track).
        chord: the chord in Harte syntax (``"A:min"``, ``"G:7"``; ``"N"`` for no chord).
        confidence: how well the chord explains the audio over its span, in [0, 1].
    """

    start_s: float
    end_s: float
    chord: str
    confidence: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The chord's object of the result document's ``chords`` (schema 1.2)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChordSpan:
        """Inverse of :meth:`to_dict`."""
        return cls(
            start_s=float(d["start_s"]),
            end_s=float(d["end_s"]),
            chord=str(d["chord"]),
            confidence=float(d.get("confidence", 0.0)),
        )


@dataclass(frozen=True)
class TrackResult:
    """A file's annotations and narrative: the unit the exports write.

    Attributes:
        source: the annotated file.
        duration_s: the file's duration in seconds.
        regions: one annotation per requested region, in time order.
        narrative: the narrative over ``regions``.
        preset: the preset name used.
        grid: the track's beat grid (empty when it was not computed, as for single regions).
        form: the track's sections in time order (empty when not computed).
        chords: the track's chords in time order (empty when not computed).
    """

    source: str
    duration_s: float
    regions: tuple[RegionAnnotation, ...]
    narrative: TrackNarrative
    preset: str
    schema_version: str = field(default=SCHEMA_VERSION)
    grid: BeatGrid = field(default_factory=BeatGrid)
    form: tuple[Section, ...] = ()
    chords: tuple[ChordSpan, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict matching the versioned schema."""
        return {
            "schema_version": self.schema_version,
            "source": self.source,
            "duration_s": self.duration_s,
            "preset": self.preset,
            **self.grid.to_dict(),
            "form": [s.to_dict() for s in self.form],
            "chords": [c.to_dict() for c in self.chords],
            "regions": [r.to_dict() for r in self.regions],
            "narrative": self.narrative.to_dict(),
        }


def _key(d: dict[str, Any] | None) -> KeyEstimate | None:
    if d is None:
        return None
    return KeyEstimate(
        key=d["key"],
        confidence=float(d["confidence"]),
        candidates=tuple((str(k), float(s)) for k, s in d.get("candidates", [])),
        probabilities=tuple(float(p) for p in d.get("probabilities", [])),
        tonality=None if d.get("tonality") is None else float(d["tonality"]),
    )


def _tags(items: list[dict[str, Any]]) -> tuple[Tag, ...]:
    return tuple(Tag(label=str(t["label"]), score=float(t["score"])) for t in items)


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None
