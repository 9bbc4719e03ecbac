"""The pipeline: plain functions and one class joining audio, backend and store.

``Annotator`` owns one preset's backend (models loaded once) and the store; the CLI, the
server and the microphone mode all go through it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from engine import audio
from engine.backends.base import Backend, Progress, Segment, no_progress
from engine.errors import AudioError, Cancelled, InvalidRequest
from engine.presets import AnalysisSettings, LimitSettings, Preset
from engine.store import Store, narrative_key, region_key
from engine.types import (
    BeatGrid,
    ChordSpan,
    Region,
    RegionAnnotation,
    Section,
    TrackNarrative,
    TrackResult,
)

if TYPE_CHECKING:
    from engine.analysis.frames import TrackFrames

log = logging.getLogger(__name__)


def _grid_samples(a: audio.Audio) -> np.ndarray:
    """``a`` mono at the beat grid's rate (an hour is 160 MB there)."""
    from engine.analysis.beats import GRID_SR

    return audio.resample(audio.to_mono(a.samples), sr=a.sr, target_sr=GRID_SR)


def _grid_stream(sr: int) -> Any:
    """A resampler from ``sr`` to the grid's rate that keeps its state between regions, so
    consecutive regions resample as one signal (no filter edges at region boundaries)."""
    import soxr

    from engine.analysis.beats import GRID_SR

    return soxr.ResampleStream(sr, GRID_SR, 1, dtype="float32", quality="LQ")


def plan_regions(
    duration_s: float, *, length_s: float, min_tail_s: float, downbeats: Sequence[float] = ()
) -> list[Region]:
    """The default regions of a file (:func:`daw_bridge.regions.plan_regions`, as Regions).

    Raises:
        InvalidRequest: ``duration_s`` or ``length_s`` is not positive.
    """
    from daw_bridge.regions import plan_regions as plan

    try:
        spans = plan(duration_s, length_s=length_s, min_tail_s=min_tail_s, downbeats=downbeats)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    return [Region(a, b) for a, b in spans]


def plan_form_regions(
    form: Sequence[Section], *, max_s: float, downbeats: Sequence[float] = ()
) -> list[Region]:
    """A region per section of the form, longer ones split on bar lines into pieces of at
    most ``max_s`` (:func:`daw_bridge.regions.plan_form_regions`, as Regions).

    Raises:
        InvalidRequest: ``max_s`` is not positive.
    """
    from daw_bridge.regions import plan_form_regions as plan

    try:
        spans = plan([(s.start_s, s.end_s) for s in form], max_s=max_s, downbeats=downbeats)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    return [Region(a, b) for a, b in spans]


def parse_regions(spec: str) -> list[Region]:
    """Parse ``"0-12.5,12.5-40"`` (seconds) into regions.

    Raises:
        InvalidRequest: naming the malformed item.
    """
    regions = []
    for item in (s.strip() for s in spec.split(",")):
        try:
            start, end = (float(x) for x in item.split("-", 1))
        except ValueError:
            raise InvalidRequest(
                f"region {item!r} is not 'start-end' in seconds, e.g. '0-12.5'"
            ) from None
        regions.append(Region(start, end))
    return regions


def resolve_track(
    annotations: Sequence[RegionAnnotation], *, preset: Preset, grid: BeatGrid | None = None
) -> tuple[RegionAnnotation, ...]:
    """The track-level view of a file's regions (:func:`engine.track.resolve`), in the order
    given, each template caption rewritten to agree with the decoded key, tempo and vocals
    (the tempo is the beat grid's when one is given)."""
    from engine.captions import template_caption
    from engine.track import resolve

    res = resolve(annotations, settings=preset.track, analysis=preset.analysis, grid=grid)
    by_span = {(a.start_s, a.end_s, a.name): a for a in res.annotations}
    out = []
    for a in annotations:
        r = by_span[(a.start_s, a.end_s, a.name)]
        if a.caption and a.caption == template_caption(a):
            r = replace(r, caption=template_caption(r))
        out.append(r)
    return tuple(out)


def grid_and_frames(y: np.ndarray, *, analysis: AnalysisSettings) -> tuple[BeatGrid, TrackFrames]:
    """The beat grid of a track's mono samples at the grid's rate (in ``analysis``'s tempo
    range), and the one spectrum of the same samples the analyses after the grid share
    (:func:`engine.analysis.frames.track_frames`)."""
    from engine.analysis.beats import GRID_SR, track_beats
    from engine.analysis.frames import track_frames

    grid = track_beats(
        y, sr=GRID_SR, min_bpm=analysis.tempo_min_bpm, max_bpm=analysis.tempo_max_bpm
    )
    return grid, track_frames(y, sr=GRID_SR)


def track_chords_of(y: np.ndarray, *, sr: int, analysis: AnalysisSettings) -> tuple[ChordSpan, ...]:
    """A track's chords from its mono samples as :meth:`Annotator.annotate` finds them: on
    its beat grid, from the shared spectrum."""
    from engine.analysis.beats import GRID_SR
    from engine.analysis.chords import track_chords

    x = audio.resample(y, sr=sr, target_sr=GRID_SR)
    grid, frames = grid_and_frames(x, analysis=analysis)
    return track_chords(frames, grid, duration_s=x.size / GRID_SR)


OWN_CHORDS_KEPT = 1024  # regions whose own chords an Annotator remembers


def region_chords(clip: audio.Audio, *, analysis: AnalysisSettings) -> tuple[ChordSpan, ...]:
    """A region's chords read from its own samples (:func:`track_chords_of`), timed on the
    file's clock: what a region request, which reads no track, hands the key decoder."""
    spans = track_chords_of(audio.to_mono(clip.samples), sr=clip.sr, analysis=analysis)
    return _moved(spans, clip.start_s)


def _moved(spans: Sequence[ChordSpan], by_s: float) -> tuple[ChordSpan, ...]:
    """``spans`` ``by_s`` seconds later."""
    return tuple(replace(c, start_s=c.start_s + by_s, end_s=c.end_s + by_s) for c in spans)


def carry_chords(
    annotations: Sequence[RegionAnnotation], chords: Sequence[ChordSpan]
) -> tuple[RegionAnnotation, ...]:
    """Each region with the track's chords sounding in it, clipped to it (none when silent):
    what the track decoder reads the home key from (:func:`engine.track.resolve`)."""
    from engine.analysis.chords import chords_between

    return tuple(
        replace(a, chords=() if a.silent else chords_between(chords, a.start_s, a.end_s))
        for a in annotations
    )


def attach_chords(
    annotations: Sequence[RegionAnnotation], chords: Sequence[ChordSpan]
) -> tuple[RegionAnnotation, ...]:
    """Each region with the track's chords sounding in it (:func:`carry_chords`) and their
    Roman numerals against its (track-level) key, its template caption rewritten to say the
    progression."""
    from engine.analysis.chords import progression
    from engine.captions import template_caption

    out = []
    for a in carry_chords(annotations, chords):
        numerals = progression(a.chords, a.key.key) if a.key is not None else ""
        r = replace(a, progression=numerals)
        if a.caption and a.caption == template_caption(a):
            r = replace(r, caption=template_caption(r))
        out.append(r)
    return tuple(out)


def check_budget(
    hdr: audio.AudioInfo, regions: Sequence[Region], limits: LimitSettings
) -> list[int]:
    """Refuse a request over the preset's work budgets, before anything is decoded.

    Returns:
        The samples (channels x frames, at the rate they are held) each region will hold.

    Raises:
        InvalidRequest: naming the limit, its value and the request's.
    """
    if len(regions) > limits.max_regions:
        raise InvalidRequest(
            f"{len(regions)} regions in one request exceed limits.max_regions={limits.max_regions}"
        )
    sr = min(hdr.sr, limits.max_sr)
    held = []
    for r in regions:
        frames = max(0, round(min(r.end_s, hdr.duration_s) * hdr.sr) - round(r.start_s * hdr.sr))
        n = audio.held_frames(frames, sr=hdr.sr, target_sr=sr) * hdr.channels
        if n > limits.max_region_samples:
            raise InvalidRequest(
                f"region [{r.start_s}, {r.end_s}) s of {hdr.path} would hold {n} samples "
                f"({sr} Hz x {hdr.channels} channels x {r.duration_s:.3f} s), over "
                f"limits.max_region_samples={limits.max_region_samples}"
            )
        held.append(n)
    if sum(held) > limits.max_request_samples:
        raise InvalidRequest(
            f"{len(regions)} regions of {hdr.path} would decode {sum(held)} samples, over "
            f"limits.max_request_samples={limits.max_request_samples}"
        )
    return held


class Annotator:
    """A preset's backend plus the store: annotate files and regions, narrate tracks.

    Args:
        preset: the loaded preset.
        store: where annotations are cached and recorded; None for no caching.
        device: device for neural backends (``"cuda"``, ``"cpu"``); None for the preset's choice.
        backend: an already built backend (tests, mock models); built from ``preset`` if None.
    """

    def __init__(
        self,
        preset: Preset,
        *,
        store: Store | None = None,
        device: str | None = None,
        backend: Backend | None = None,
    ) -> None:
        from engine import backends

        self.preset = preset
        self.store = store
        self.backend: Backend = backend or backends.create(preset, device=device)
        self._params = json.dumps(
            {"analysis": asdict(preset.analysis), "sr": preset.audio.analysis_sr}, sort_keys=True
        )
        # a region asked for alone may be analysed differently (Segment.alone): its own key
        self._params_alone = json.dumps({**json.loads(self._params), "alone": True}, sort_keys=True)
        # chords regions asked for alone read from their samples, by region key (the samples'
        # hash), timed from the region's start: a repeated request does not read them again
        self._own_chords: dict[str, tuple[ChordSpan, ...]] = {}

    def annotate(
        self,
        path: str,
        regions: Sequence[Region] | None = None,
        *,
        lyrics: str = "",
        use_cache: bool = True,
        narrate: bool = True,
        progress: Progress = no_progress,
        cancelled: Callable[[], bool] = lambda: False,
        file: BinaryIO | None = None,
        beats: bool | None = None,
        channels: Sequence[str] = (),
        channel_files: Sequence[BinaryIO] | None = None,
        in_track: bool = False,
    ) -> TrackResult:
        """Annotate regions of a file (all of it, cut by the preset, when ``regions`` is None).

        Regions are decoded, looked up and analysed one batch at a time, so memory stays
        bounded by the preset's ``limits.max_region_samples`` whatever the request.

        Args:
            file: the file already opened (and checked) by the caller; read only through it.
            beats: compute the track's beat grid (its tempo becomes the regions' and the
                narrative's); None: when narrating. From the regions' own samples when they
                tile the file, else from one more decode of the whole file.
            channels: the other files of a multichannel recording kept as one file a channel
                (a stereo Ardour region's right channel), each with ``path``'s rate and
                length: every span is decoded from each file and their channels joined, in
                order, after ``path``'s (:func:`engine.audio.join_channels`).
            channel_files: those files already opened (and checked) by the caller, in order.
            in_track: one region asked for without narration is analysed as a region alone
                (:attr:`~engine.backends.base.Segment.alone`: the tagger hears
                ``max_patches_alone`` patches, stored apart where that differs) unless this
                is True: the caller narrates it with the track's other regions next, which
                then answer from the store.

        Raises:
            AudioError: unreadable file, region outside it, bad samples; a channel file whose
                sample rate or length differs from ``path``'s.
            InvalidRequest: a region shorter than the preset's minimum, or a request over one
                of the preset's ``limits`` (naming the limit and the value).
            Cancelled: ``cancelled()`` became true between two regions.
        """
        hdr = audio.info(path, file=file)
        opened = list(channel_files) if channel_files is not None else [None] * len(channels)
        sources: list[tuple[str, BinaryIO | None]] = [(hdr.path, file)]
        for other_path, other_file in zip(channels, opened, strict=True):
            other = audio.info(other_path, file=other_file)
            audio.check_alike(hdr, other)
            sources.append((other.path, other_file))
            hdr = replace(hdr, channels=hdr.channels + other.channels)

        def load(
            start_s: float = 0.0, end_s: float | None = None, *, max_sr: int | None = None
        ) -> audio.Audio:
            return audio.join_channels(
                [
                    audio.load(
                        p,
                        start_s=start_s,
                        end_s=end_s,
                        max_duration_s=self.preset.audio.max_duration_s,
                        max_sr=max_sr or self.preset.limits.max_sr,
                        file=f,
                    )
                    for p, f in sources
                ]
            )

        def whole_mono() -> np.ndarray:
            """The whole file for the grid, decoded at its rate (not 1.4 GB for an hour)."""
            from engine.analysis.beats import GRID_SR

            return _grid_samples(load(max_sr=GRID_SR))

        self._check_duration(hdr)
        grid: BeatGrid | None = None
        form: tuple[Section, ...] = ()
        chords: tuple[ChordSpan, ...] = ()
        if regions is None:
            regions, grid, form, chords = self._default_plan(hdr.duration_s, whole_mono)
        for r in regions:
            if r.duration_s < self.preset.regions.min_length_s:
                raise InvalidRequest(
                    f"region [{r.start_s}, {r.end_s}) s is {r.duration_s:.3f} s long; the "
                    f"minimum is {self.preset.regions.min_length_s} s"
                )
        held = check_budget(hdr, regions, self.preset.limits)
        results: list[RegionAnnotation | None] = []
        keys: list[str] = []
        pending: list[tuple[int, str, Segment]] = []
        analysed = 0

        def flush() -> None:
            nonlocal analysed
            anns = self.backend.analyze([seg for _, _, seg in pending])
            if self.store is not None:
                keyed = [(key, ann) for (_, key, _), ann in zip(pending, anns, strict=True)]
                self.store.put_many(keyed, source=hdr.path)
            for (i, _, _), ann in zip(pending, anns, strict=True):
                results[i] = ann
            analysed += len(pending)
            pending.clear()
            progress("analyze", analysed, analysed + len(regions) - len(results))

        batch = max(1, int(getattr(self.backend, "max_batch", 1)))
        want_grid = (narrate if beats is None else beats) and grid is None
        # while the regions tile the file, their samples feed the grid, resampled as one stream
        tiles: list[np.ndarray] | None = [] if want_grid else None
        # a request that reads no track's chords (a region from a DAW) reads each region's
        # own, so that the key decoder weighs chords there too (detuned synths keep a key,
        # a drum kit alone has none)
        own_chords: list[tuple[ChordSpan, ...]] | None = (
            [] if not want_grid and not chords else None
        )
        # one region and no track read: nothing will steady what it says (Segment.alone),
        # unless the caller narrates it with its track next; stored apart only where the
        # backend analyses it differently
        alone = own_chords is not None and len(regions) == 1 and not in_track
        apart = alone and bool(getattr(self.backend, "alone_apart", False))
        stream: Any = None
        tiled_to = 0.0
        for i, r in enumerate(regions):
            if cancelled():
                raise Cancelled(f"annotation of {hdr.path} cancelled after {i} regions")
            if pending and sum(held[j] for j, _, _ in pending) + held[i] > (
                self.preset.limits.max_region_samples
            ):
                flush()
            clip = load(r.start_s, r.end_s)
            if tiles is not None:
                if abs(r.start_s - tiled_to) < 1e-3:  # every clip of a file has one rate
                    if stream is None:
                        stream = _grid_stream(clip.sr)
                    tiles.append(stream.resample_chunk(audio.to_mono(clip.samples)))
                    tiled_to = r.end_s
                else:
                    tiles = None
            key = region_key(
                clip.samples,
                sr=clip.sr,
                fingerprint=self.backend.fingerprint,
                params=self._params_alone if apart else self._params,
            )
            keys.append(key)
            hit = self.store.get(key, region=r) if (self.store and use_cache) else None
            results.append(hit)
            if own_chords is not None:
                own_chords.append(
                    () if hit is not None and hit.silent else self._chords_of(key, clip)
                )
            if hit is None:
                pending.append((i, key, Segment(r, clip, lyrics, alone=alone)))
            elif self.store is not None:
                self.store.record(key, r, source=hdr.path)
            progress("load", i + 1, len(regions))
            if len(pending) >= batch:
                flush()
        if pending:
            flush()
        log.info("%s: %d regions, %d from cache", hdr.path, len(regions), len(regions) - analysed)
        raw = tuple(a for a in results if a is not None)
        assert len(raw) == len(regions)
        grid = grid or BeatGrid()
        if want_grid:
            if tiles is None or stream is None or abs(tiled_to - hdr.duration_s) > 0.05:
                tiles = [whole_mono()]
            else:
                tiles.append(stream.resample_chunk(np.zeros(0, np.float32), last=True))
            grid, frames = self._grid_and_frames(np.concatenate(tiles))
            form = self._form(frames, grid, duration_s=hdr.duration_s)
            chords = self._chords(frames, grid, duration_s=hdr.duration_s)
            progress("beats", 1, 1)
        if chords:  # the regions carry the chords to the key decoder, then their numerals
            raw = carry_chords(raw, chords)
        elif own_chords is not None:
            raw = tuple(carry_chords([a], c)[0] for a, c in zip(raw, own_chords, strict=True))
        done = resolve_track(raw, preset=self.preset, grid=grid)
        if chords:
            done = attach_chords(done, chords)
        elif own_chords is not None:
            done = tuple(attach_chords([a], a.chords)[0] for a in done)
        narrative = (
            self._narrate(
                hdr.path,
                done,
                keys=keys,
                duration_s=hdr.duration_s,
                use_cache=use_cache,
                progress=progress,
                grid=grid,
                form=form,
            )
            if narrate
            else TrackNarrative(hdr.path, hdr.duration_s, "", (), self.backend.name)
        )
        return TrackResult(
            hdr.path,
            hdr.duration_s,
            done,
            narrative,
            self.preset.name,
            grid=grid,
            form=form,
            chords=chords,
        )

    def plan(self, path: str, *, file: BinaryIO | None = None) -> tuple[list[Region], BeatGrid]:
        """The regions :meth:`annotate` cuts a file into when given none (the preset's length,
        last-piece rule and snap, or its form), and the beat grid when the plan follows it
        (else empty).

        Raises:
            AudioError: unreadable file, or longer than the preset's limit.
        """
        regions, grid, _ = self.plan_track(path, file=file)
        return regions, grid

    def plan_track(
        self, path: str, *, file: BinaryIO | None = None
    ) -> tuple[list[Region], BeatGrid, tuple[Section, ...]]:
        """:meth:`plan`, and the track's form when the plan follows the grid (else empty).

        Raises:
            AudioError: unreadable file, or longer than the preset's limit.
        """
        hdr = audio.info(path, file=file)

        def whole_mono() -> np.ndarray:
            from engine.analysis.beats import GRID_SR

            max_s = self.preset.audio.max_duration_s
            return _grid_samples(
                audio.load(hdr.path, max_duration_s=max_s, max_sr=GRID_SR, file=file)
            )

        self._check_duration(hdr)
        regions, grid, form, _ = self._default_plan(hdr.duration_s, whole_mono)
        return regions, grid or BeatGrid(), form

    def _check_duration(self, hdr: audio.AudioInfo) -> None:
        if hdr.duration_s > self.preset.audio.max_duration_s:
            raise AudioError(
                f"{hdr.path}: duration {hdr.duration_s:.1f} s exceeds the limit of "
                f"{self.preset.audio.max_duration_s:.1f} s"
            )

    def _default_plan(
        self, duration_s: float, whole_mono: Callable[[], np.ndarray]
    ) -> tuple[list[Region], BeatGrid | None, tuple[Section, ...], tuple[ChordSpan, ...]]:
        """The preset's plan; with ``snap = "bars"`` or ``plan = "form"`` the grid, the form
        and the chords first, and the plan on them."""
        grid = None
        form: tuple[Section, ...] = ()
        chords: tuple[ChordSpan, ...] = ()
        downbeats: tuple[float, ...] = ()
        settings = self.preset.regions
        if settings.snap == "bars" or settings.plan == "form":
            grid, frames = self._grid_and_frames(whole_mono())
            form = self._form(frames, grid, duration_s=duration_s)
            chords = self._chords(frames, grid, duration_s=duration_s)
            downbeats = grid.downbeats
        if settings.plan == "form" and form:
            planned = plan_form_regions(form, max_s=settings.max_s, downbeats=downbeats)
            return planned, grid, form, chords
        regions = plan_regions(
            duration_s,
            length_s=self.preset.regions.length_s,
            min_tail_s=self.preset.regions.min_tail_s,
            downbeats=downbeats,
        )
        return regions, grid, form, chords

    def _chords_of(self, key: str, clip: audio.Audio) -> tuple[ChordSpan, ...]:
        """:func:`region_chords` of a region asked for alone, remembered by its region key
        (the 1024 most recent)."""
        spans = self._own_chords.get(key)
        if spans is None:
            spans = region_chords(replace(clip, start_s=0.0), analysis=self.preset.analysis)
            if len(self._own_chords) >= OWN_CHORDS_KEPT:
                self._own_chords.pop(next(iter(self._own_chords)))
            self._own_chords[key] = spans
        return _moved(spans, clip.start_s)

    def _grid_and_frames(self, y: np.ndarray) -> tuple[BeatGrid, TrackFrames]:
        """:func:`grid_and_frames` in the preset's tempo range."""
        return grid_and_frames(y, analysis=self.preset.analysis)

    @staticmethod
    def _form(frames: TrackFrames, grid: BeatGrid, *, duration_s: float) -> tuple[Section, ...]:
        """The track's form (:func:`engine.analysis.form.track_form`)."""
        from engine.analysis.form import track_form

        return track_form(frames, duration_s=duration_s, grid=grid)

    @staticmethod
    def _chords(frames: TrackFrames, grid: BeatGrid, *, duration_s: float) -> tuple[ChordSpan, ...]:
        """The track's chords on its beat grid (:func:`engine.analysis.chords.track_chords`)."""
        from engine.analysis.chords import track_chords

        return track_chords(frames, grid, duration_s=duration_s)

    def narrate(self, path: str, annotations: Sequence[RegionAnnotation]) -> TrackNarrative:
        """A narrative over annotations of ``path`` (e.g. regions annotated earlier)."""
        duration = max((a.end_s for a in annotations), default=0.0)
        return self.backend.narrate(annotations, source=str(path), duration_s=duration)

    def _narrate(
        self,
        path: str,
        annotations: Sequence[RegionAnnotation],
        *,
        keys: Sequence[str],
        duration_s: float,
        use_cache: bool,
        progress: Progress,
        grid: BeatGrid | None = None,
        form: Sequence[Section] = (),
    ) -> TrackNarrative:
        marks = [f"grid:{grid.tempo_bpm}:{len(grid.beats)}:{grid.tempi}"] if grid else []
        if any(a.chords for a in annotations):  # the narrative says the progressions
            marks.append("chords:" + "|".join(a.progression for a in annotations))
        marks += [f"form:{s.start_s}:{s.end_s}:{s.label}:{s.function}" for s in form]
        nkey = narrative_key(
            [*keys, *(f"{a.start_s}:{a.end_s}" for a in annotations), *marks],
            fingerprint=self.backend.fingerprint,
            duration_s=duration_s,
        )
        if self.store is not None and use_cache:
            hit = self.store.get_narrative(nkey)
            if hit is not None and hit.source == path:
                return hit
        narrative = self.backend.narrate(
            annotations,
            source=path,
            duration_s=duration_s,
            progress=progress,
            grid=grid,
            form=tuple(form),
        )
        if self.store is not None:
            self.store.put_narrative(nkey, narrative)
        return narrative

    def close(self) -> None:
        """Release the backend's models and close the store."""
        self.backend.close()
        if self.store is not None:
            self.store.close()
