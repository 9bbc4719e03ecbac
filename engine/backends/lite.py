"""The `lite` backend: the embedded default. CPU only, nothing downloaded.

Key, tempo and loudness come from our signal analysers (:mod:`engine.analysis`); captions
from :func:`engine.captions.template_caption`; the narrative from
:func:`engine.narrative.rule_based`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from engine.analysis import analyze_signal
from engine.backends.base import Progress, Segment, no_progress
from engine.captions import template_caption
from engine.narrative import rule_based
from engine.presets import Preset
from engine.types import RegionAnnotation, TrackNarrative

log = logging.getLogger(__name__)

ANALYSIS_VERSION = "lite-1"  # bump when an analyser changes its results


@dataclass(frozen=True)
class Options:
    """The preset's ``[lite]`` table."""


class LiteBackend:
    """Signal-processing key/tempo/loudness, template captions, rule-based narrative."""

    name = "lite"
    max_batch = 1

    def __init__(self, preset: Preset) -> None:
        self.preset = preset
        params = {
            "version": ANALYSIS_VERSION,
            "analysis": asdict(preset.analysis),
            "analysis_sr": preset.audio.analysis_sr,
            "options": asdict(preset.options),
        }
        digest = hashlib.blake2b(json.dumps(params, sort_keys=True).encode(), digest_size=8)
        self.fingerprint = f"lite:{digest.hexdigest()}"

    def analyze(
        self, segments: Sequence[Segment], *, progress: Progress = no_progress
    ) -> list[RegionAnnotation]:
        """Annotate each segment in order."""
        out: list[RegionAnnotation] = []
        total = len(segments)
        for i, seg in enumerate(segments):
            f = analyze_signal(
                seg.audio, settings=self.preset.analysis, sr=self.preset.audio.analysis_sr
            )
            ann = RegionAnnotation(
                start_s=seg.region.start_s,
                end_s=seg.region.end_s,
                name=seg.region.name,
                silent=f.silent,
                key=f.key,
                tempo_bpm=f.tempo_bpm,
                tempo_confidence=f.tempo_confidence,
                loudness_lufs=f.loudness_lufs,
                peak_dbfs=f.peak_dbfs,
                caption="",
                backend=self.name,
            )
            out.append(_with_caption(ann))
            progress("analyze", i + 1, total)
        return out

    def narrate(
        self,
        annotations: Sequence[RegionAnnotation],
        *,
        source: str,
        duration_s: float,
        progress: Progress = no_progress,
    ) -> TrackNarrative:
        """The rule-based narrative."""
        narrative = rule_based(annotations, source=source, duration_s=duration_s, backend=self.name)
        progress("narrate", 1, 1)
        return narrative

    def close(self) -> None:
        """Nothing to release."""


def _with_caption(a: RegionAnnotation) -> RegionAnnotation:
    from dataclasses import replace

    return replace(a, caption=template_caption(a))


def create(preset: Preset, *, device: str | None = None) -> LiteBackend:
    """Build the lite backend (``device`` is ignored: it runs on the CPU)."""
    return LiteBackend(preset)
