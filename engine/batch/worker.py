"""The batch worker: one function every runner calls, whatever runs it.

:class:`Worker` loads the preset once (an :class:`engine.pipeline.Annotator`, the pipeline
``sonicverse annotate`` uses) and turns a :class:`~engine.batch.jobs.Job` into an
:class:`Outcome`: the job's table rows, or the error that stopped it. The local process pool
keeps one Worker per process; the Ray runner one per actor.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.batch.jobs import Job
from engine.errors import EngineError
from engine.presets import Preset
from engine.types import Region, TrackResult

log = logging.getLogger(__name__)

SIDECARS: tuple[str, ...] = ("json", "jams")


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker needs to build itself (picklable: it travels to processes and actors).

    Attributes:
        preset: the loaded preset.
        store: the annotation store's file; None for no caching.
        device: device for neural presets; None for the preset's choice.
        out: the batch's output folder (sidecars go under it).
        sidecars: export formats written per job, from :data:`SIDECARS`.
        root: folder sidecar paths mirror (the batch input's folder); None for flat names.
        threads: torch threads per worker; None to leave torch's default.
    """

    preset: Preset
    store: str | None = None
    device: str | None = None
    out: str = "."
    sidecars: tuple[str, ...] = ()
    root: str | None = None
    threads: int | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one job.

    Attributes:
        job: the job.
        rows: one table row per region (see :data:`engine.batch.table.COLUMNS`); for a failed
            job a single row carrying the error.
        error: the error message, empty when the job succeeded.
    """

    job: Job
    rows: tuple[dict[str, Any], ...] = field(default=())
    error: str = ""

    @property
    def ok(self) -> bool:
        """True when the job succeeded."""
        return not self.error

    def to_json(self) -> str:
        """One-line JSON (how outcomes come back from Ray actors and go into the ledger)."""
        return json.dumps(
            {"job": json.loads(self.job.to_json()), "rows": list(self.rows), "error": self.error}
        )

    @classmethod
    def from_json(cls, text: str) -> Outcome:
        """Inverse of :meth:`to_json`."""
        d = json.loads(text)
        return cls(Job(**d["job"]), tuple(d["rows"]), d["error"])


class Worker:
    """A preset loaded once, annotating jobs one after the other.

    Args:
        config: see :class:`WorkerConfig`.
    """

    def __init__(self, config: WorkerConfig) -> None:
        from engine.pipeline import Annotator
        from engine.store import Store

        if config.threads is not None:
            import torch

            torch.set_num_threads(config.threads)
        self.config = config
        store = Store(config.store) if config.store is not None else None
        self.annotator = Annotator(config.preset, store=store, device=config.device)

    def run(self, job: Job) -> Outcome:
        """Annotate one job; an engine error (bad file, bad span) becomes a failed Outcome."""
        try:
            result = self.annotator.annotate(job.audio, _regions(job))
            _write_sidecars(result, job, self.config)
        except EngineError as exc:
            log.warning("%s", exc)
            return failed(job, str(exc), preset=self.config.preset.name)
        except Exception as exc:  # one file's surprise must not stop a catalogue
            log.exception("%s: unexpected error", job.key)
            return failed(job, f"{type(exc).__name__}: {exc}", preset=self.config.preset.name)
        return Outcome(job, rows_of(result))

    def close(self) -> None:
        """Release the models and the store."""
        self.annotator.close()


def failed(job: Job, error: str, *, preset: str) -> Outcome:
    """The outcome of a job that stopped with ``error``: one row naming it."""
    row = {"file": job.audio, "start_s": job.start_s, "end_s": job.end_s, "preset": preset}
    return Outcome(job, (row | {"error": error},), error)


def _regions(job: Job) -> list[Region] | None:
    if job.start_s is None and job.end_s is None:
        return None
    from engine import audio

    end = job.end_s if job.end_s is not None else audio.info(job.audio).duration_s
    return [Region(job.start_s or 0.0, end)]


def rows_of(result: TrackResult) -> tuple[dict[str, Any], ...]:
    """One row per region: the track-level key and tempo (what the narrative says), the
    region's own key estimate, loudness, vocals and tags, as plain JSON-ready values."""
    rows = []
    for a in result.regions:
        vocals_p = max(a.vocals.probabilities) if a.vocals is not None else None
        rows.append(
            {
                "file": result.source,
                "start_s": a.start_s,
                "end_s": a.end_s,
                "name": a.name,
                "duration_s": result.duration_s,
                "silent": a.silent,
                "key": a.key.key if a.key else None,
                "key_confidence": a.key.confidence if a.key else None,
                "region_key": a.region_key.key if a.region_key else None,
                "region_key_confidence": a.region_key.confidence if a.region_key else None,
                "tempo_bpm": a.tempo_bpm,
                "tempo_confidence": a.tempo_confidence,
                "loudness_lufs": a.loudness_lufs,
                "peak_dbfs": a.peak_dbfs if math.isfinite(a.peak_dbfs) else None,
                "vocals": a.vocals.label if a.vocals else None,
                "vocals_confidence": vocals_p,
                "instruments": [t.label for t in a.instruments],
                "genres": [t.label for t in a.genres],
                "moods": [t.label for t in a.moods],
                "caption": a.caption,
                "flags": list(a.flags),
                "preset": result.preset,
                "backend": a.backend,
                "error": None,
            }
        )
    return tuple(rows)


def sidecar_path(job: Job, fmt: str, *, out: str, root: str | None) -> Path:
    """Where a job's sidecar goes: ``out/<fmt>/<path under root>.<suffix>`` (a span adds
    ``.<start>-<end>`` to the name)."""
    from engine.export import SUFFIXES

    src = Path(job.audio)
    try:
        rel = src.relative_to(root) if root is not None else Path(src.name)
    except ValueError:
        rel = Path(src.name)
    stem = rel.name
    if job.start_s is not None or job.end_s is not None:
        stem += f".{job.start_s or 0:g}-{'end' if job.end_s is None else f'{job.end_s:g}'}"
    return Path(out) / fmt / rel.parent / (stem + SUFFIXES[fmt])


def _write_sidecars(result: TrackResult, job: Job, config: WorkerConfig) -> None:
    from engine import export

    for fmt in config.sidecars:
        dest = sidecar_path(job, fmt, out=config.out, root=config.root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + f".{os.getpid()}.tmp")
        export.write(result, tmp, fmt)
        os.replace(tmp, dest)  # a reader never sees half a sidecar
