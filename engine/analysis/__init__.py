"""Signal-processing analysers shared by every backend: key, tempo, loudness, silence."""

from __future__ import annotations

from dataclasses import dataclass

from engine.audio import Audio, to_analysis
from engine.presets import AnalysisSettings
from engine.types import KeyEstimate, Region, RegionAnnotation


@dataclass(frozen=True)
class SignalFeatures:
    """What signal processing says about a region.

    Attributes:
        silent: True when loudness or peak is below the preset's silence thresholds.
        key: the key, None for silence.
        tempo_bpm: tempo in BPM, None for silence or when there is no pulse.
        tempo_confidence: in [0, 1].
        loudness_lufs: integrated loudness, None for regions under 400 ms or digital silence.
        peak_dbfs: sample peak in dBFS.
        tempo_candidates: the strongest periodicities ``(bpm, salience)``, strongest first.
    """

    silent: bool
    key: KeyEstimate | None
    tempo_bpm: float | None
    tempo_confidence: float
    loudness_lufs: float | None
    peak_dbfs: float
    tempo_candidates: tuple[tuple[float, float], ...] = ()

    def annotation(self, region: Region, *, backend: str) -> RegionAnnotation:
        """A region annotation holding these features; vocals, tags and caption still empty."""
        return RegionAnnotation(
            start_s=region.start_s,
            end_s=region.end_s,
            name=region.name,
            silent=self.silent,
            key=self.key,
            tempo_bpm=self.tempo_bpm,
            tempo_confidence=self.tempo_confidence,
            loudness_lufs=self.loudness_lufs,
            peak_dbfs=self.peak_dbfs,
            caption="",
            backend=backend,
            tempo_candidates=self.tempo_candidates,
        )


def is_silent(loudness_lufs: float | None, peak: float, *, settings: AnalysisSettings) -> bool:
    """Silence when the peak, or the loudness where it is defined, is below its threshold."""
    if peak < settings.silence_peak_dbfs:
        return True
    return loudness_lufs is not None and loudness_lufs < settings.silence_lufs


def analyze_signal(
    audio: Audio,
    *,
    settings: AnalysisSettings,
    sr: int,
    key: bool = True,
    peak: float | None = None,
) -> SignalFeatures:
    """Key, tempo, loudness and silence of one region.

    Args:
        audio: the region at its native rate and channel count.
        settings: thresholds and ranges from the preset.
        sr: the rate (Hz) key and tempo are computed at.
        key: estimate the key (False when a model supplies it; ``key`` is then None).
        peak: the region's sample peak in dBFS when the caller has already measured it
            (:func:`engine.analysis.loudness.peak_dbfs`); measured here when None.

    Returns:
        The region's features; silent regions get no key and no tempo, never made-up ones.
    """
    from engine.analysis.key import estimate_key
    from engine.analysis.loudness import integrated_lufs, peak_dbfs
    from engine.analysis.tempo import estimate_tempo

    lufs = integrated_lufs(audio.samples, sr=audio.sr)
    peak = peak_dbfs(audio.samples) if peak is None else peak
    if is_silent(lufs, peak, settings=settings):
        return SignalFeatures(True, None, None, 0.0, lufs, peak)
    y = to_analysis(audio, sr=sr)
    estimate = estimate_key(y, sr=sr, candidates=settings.key_candidates) if key else None
    tempo = estimate_tempo(
        y,
        sr=sr,
        min_bpm=settings.tempo_min_bpm,
        max_bpm=settings.tempo_max_bpm,
        prior_bpm=settings.tempo_prior_bpm,
    )
    return SignalFeatures(
        False, estimate, tempo.bpm, tempo.confidence, lufs, peak, tempo.candidates
    )
