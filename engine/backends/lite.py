"""The `lite` backend: the embedded default. CPU only, nothing downloaded.

Key, tempo and loudness come from our signal analysers (:mod:`engine.analysis`); vocals,
instruments, genre and mood from the musicnn tagger whose weights ship with the package
(:mod:`engine.tagging`); captions from :func:`engine.captions.template_caption`; the
narrative from :func:`engine.narrative.rule_based`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING

from engine.analysis import analyze_signal
from engine.analysis.loudness import peak_dbfs
from engine.audio import resample, to_mono
from engine.backends.base import Progress, Segment, no_progress
from engine.captions import template_caption
from engine.errors import check_range
from engine.narrative import preset_narrative
from engine.tagging import TaggerSettings
from engine.types import BeatGrid, RegionAnnotation, Section, TrackNarrative

if TYPE_CHECKING:
    from engine.presets import Preset
    from engine.tagging import Tagger, TagResult

log = logging.getLogger(__name__)

ANALYSIS_VERSION = "lite-9"  # bump when an analyser changes its results


@dataclass(frozen=True)
class Options:
    """The preset's ``[lite]`` table."""

    tag: bool = True  # run the musicnn tagger (vocals, instruments, genre, mood)
    tagger: TaggerSettings = field(default_factory=TaggerSettings)  # ``[lite.tagger]``
    region_batch: int = 8  # regions tagged per batch (stored and cancellable in between)

    def __post_init__(self) -> None:
        check_range("lite.region_batch", self.region_batch, 1, 1024)


class LiteBackend:
    """Signal-processing key/tempo/loudness, musicnn tags, template captions, rule-based narrative.

    Args:
        preset: a preset whose ``options`` are :class:`Options`.
        tagger: an already loaded tagger (tests); loaded from the shipped weights when None
            and the preset asks for tags.
    """

    name = "lite"

    def __init__(self, preset: Preset, *, tagger: Tagger | None = None) -> None:
        self.preset = preset
        self.options: Options = preset.options
        self.max_batch = self.options.region_batch
        self.tagger = tagger
        self._owns_tagger = tagger is None  # a tagger passed in is the caller's to close
        self._executor: ThreadPoolExecutor | None = None
        if self.tagger is None and self.options.tag:
            from engine.tagging import Tagger

            self.tagger = Tagger.load(self.options.tagger)
        if self.tagger is not None:
            from engine.tagging import single_blas_thread

            single_blas_thread()
        params = {
            "version": ANALYSIS_VERSION,
            "analysis": asdict(preset.analysis),
            "analysis_sr": preset.audio.analysis_sr,
            "options": asdict(self.options),
            "tagger": self.tagger.fingerprint if self.tagger is not None else None,
        }
        digest = hashlib.blake2b(json.dumps(params, sort_keys=True).encode(), digest_size=8)
        self.fingerprint = f"lite:{digest.hexdigest()}"

    def analyze(
        self, segments: Sequence[Segment], *, progress: Progress = no_progress
    ) -> list[RegionAnnotation]:
        """Annotate the segments: the tagger's networks run on a worker thread while this one
        measures key, tempo and loudness (ONNX Runtime and numpy release the GIL, so the two
        share the cores)."""
        total = len(segments)
        pending: Future[list[TagResult]] | None = None
        tagged: list[int] = []
        peaks = [peak_dbfs(s.audio.samples) for s in segments]  # once: the analysers get them
        if self.tagger is not None:
            floor = self.preset.analysis.silence_peak_dbfs
            # digital silence is known from the peak alone; regions that turn out quiet by
            # loudness are tagged and their tags dropped below
            tagged = [i for i, p in enumerate(peaks) if p >= floor]
            pending = self._worker().submit(self._tag, [segments[i] for i in tagged])
        try:
            anns: list[RegionAnnotation] = []
            for i, seg in enumerate(segments):
                f = analyze_signal(
                    seg.audio,
                    settings=self.preset.analysis,
                    sr=self.preset.audio.analysis_sr,
                    peak=peaks[i],
                )
                anns.append(f.annotation(seg.region, backend=self.name))
                progress("signal", i + 1, total)
        except BaseException:
            # the signal error (or Ctrl-C) is the one to raise: drop the tags, do not wait
            # for a batch nobody will read, and let a tagging error not replace it
            if pending is not None and not pending.cancel():
                pending.add_done_callback(lambda f: f.exception())
            raise
        tags = pending.result() if pending is not None else []
        for i, t in zip(tagged, tags, strict=True):
            if anns[i].silent:
                continue
            anns[i] = replace(
                anns[i],
                vocals=t.vocals,
                instruments=t.instruments,
                genres=t.genres,
                moods=t.moods,
                flags=anns[i].flags + t.flags,
            )
        if pending is not None:
            progress("tags", total, total)
        return [replace(a, caption=template_caption(a)) for a in anns]

    def _worker(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lite-tagger")
        return self._executor

    @property
    def alone_apart(self) -> bool:
        """Whether a region asked for alone is analysed differently (the tagger hears another
        number of patches), so its analysis is stored apart."""
        t = self.tagger
        return t is not None and t.settings.max_patches_alone != t.settings.max_patches

    def _tag(self, segments: Sequence[Segment]) -> list[TagResult]:
        """Tags of the segments; those asked for alone on ``max_patches_alone`` patches."""
        tagger = self.tagger
        assert tagger is not None
        clips = [
            resample(to_mono(s.audio.samples), sr=s.audio.sr, target_sr=tagger.sr) for s in segments
        ]
        out: dict[int, TagResult] = {}
        for alone, most in ((False, None), (True, tagger.settings.max_patches_alone)):
            idx = [i for i, s in enumerate(segments) if s.alone == alone]
            if idx:
                found = tagger.tag([clips[i] for i in idx], max_patches=most)
                out.update(zip(idx, found, strict=True))
        return [out[i] for i in range(len(segments))]

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
        """The rule-based narrative."""
        narrative = preset_narrative(
            annotations,
            preset=self.preset,
            source=source,
            duration_s=duration_s,
            backend=self.name,
            grid=grid,
            form=form,
        )
        progress("narrate", 1, 1)
        return narrative

    def close(self) -> None:
        """Stop the tagger's worker threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self.tagger is not None and self._owns_tagger:
            self.tagger.close()


def create(preset: Preset, *, device: str | None = None) -> LiteBackend:
    """Build the lite backend (``device`` is ignored: it runs on the CPU)."""
    return LiteBackend(preset)
