"""Teacher labels: key (24), vocals (3), instruments, genres and moods per chunk.

The label sets are named constants (:data:`LABEL_SETS`, the ones in :mod:`engine.labels`), so
a model trained here has a known class order and its heads' sizes follow the sets. A row's own
labels (from the manifest) win; what the row leaves unknown comes from the ``lite`` backend's
analysers (key) and tagger (vocals, tags) when the teacher is ``"lite"``. A label that is
neither given nor taught is *unknown* for that chunk: its ``known`` flag is 0 and the head's
loss skips it.

Targets are float vectors: one-hot for key and vocals, multi-hot for the tag sets.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from engine.labels import GENRES, INSTRUMENTS, KEYS, MOODS, VOCALS

log = logging.getLogger(__name__)

LABEL_SETS: dict[str, tuple[str, ...]] = {
    "key": KEYS,
    "vocals": VOCALS,
    "instruments": INSTRUMENTS,
    "moods": MOODS,
    "genres": GENRES,
}
"""Task -> its labels; head output ``i`` is label ``i`` (the heads' sizes are these lengths)."""

TAG_ALIASES: dict[str, str] = {
    "synth": "synthesizer",
    "hip-hop": "hiphop",
    "r&b": "rnb",
    "chill": "chillout",
    "new age": "newage",
    "easy listening": "easylistening",
    "choir": "voice",
}
"""The lite tagger's tag names that MTG-Jamendo spells otherwise; names in neither are dropped."""

Teacher = Literal["lite", "none"]


@dataclass(frozen=True)
class Targets:
    """Targets of one chunk.

    Attributes:
        vectors: task -> float32 vector of ``len(LABEL_SETS[task])``.
        known: task -> whether the vector is a label (False: unknown, not trained on).
        names: task -> the label names, for ``chunks.jsonl``.
        source: task -> ``"manifest"``, ``"lite"`` or ``""`` (unknown).
    """

    vectors: dict[str, np.ndarray]
    known: dict[str, bool]
    names: dict[str, Any]
    source: dict[str, str]


def encode(task: str, names: Sequence[str]) -> np.ndarray:
    """Multi-hot vector of ``names`` over ``LABEL_SETS[task]`` (aliases mapped, unknown dropped)."""
    labels = LABEL_SETS[task]
    v = np.zeros(len(labels), np.float32)
    for n in names:
        n = TAG_ALIASES.get(n.lower(), n.lower()) if task not in ("key", "vocals") else n
        if n in labels:
            v[labels.index(n)] = 1.0
        else:
            log.debug("%s label %r is not in the %d-label set; dropped", task, n, len(labels))
    return v


class TeacherModels:
    """The lite analysers and tagger, loaded once (``teacher="none"``: nothing)."""

    def __init__(self, teacher: Teacher) -> None:
        self.teacher = teacher
        self.tagger: Any = None
        if teacher == "lite":
            from engine.tagging import Tagger, TaggerSettings

            # teacher labels come from every 3 s patch, the networks' trained use: a data set
            # is built once, and the lite preset's one-patch speed lever costs accuracy
            self.tagger = Tagger.load(TaggerSettings(max_patches=0))

    def label(self, audio: Sequence[tuple[np.ndarray, int]], rows: Sequence[Any]) -> list[Targets]:
        """Targets of chunks given as ``(mono samples, sr)`` and their manifest rows."""
        from engine.audio import resample

        taught: list[dict[str, Any]] = [{} for _ in audio]
        if self.teacher == "lite":
            from engine.analysis.key import estimate_key
            from engine.analysis.loudness import peak_dbfs

            tags = self.tagger.tag(
                [resample(y, sr=sr, target_sr=self.tagger.sr) for y, sr in audio]
            )
            for t, (y, sr), r in zip(taught, audio, tags, strict=True):
                if peak_dbfs(y[None]) > -60.0:
                    t["key"] = [estimate_key(resample(y, sr=sr, target_sr=22050), sr=22050).key]
                t["vocals"] = [r.vocals.label]
                t["instruments"] = [x.label for x in r.instruments]
                t["genres"] = [x.label for x in r.genres]
                t["moods"] = [x.label for x in r.moods]
        return [_targets(row, t) for row, t in zip(rows, taught, strict=True)]


def _targets(row: Any, taught: dict[str, Any]) -> Targets:
    labels = row.labels
    given: dict[str, Any] = {
        "key": [labels.key] if labels.key else None,
        "vocals": [labels.vocals] if labels.vocals else None,
        "instruments": labels.instruments,
        "genres": labels.genres,
        "moods": labels.moods,
    }
    vectors: dict[str, np.ndarray] = {}
    known: dict[str, bool] = {}
    names: dict[str, Any] = {}
    source: dict[str, str] = {}
    for task, labelset in LABEL_SETS.items():
        value, src = given[task], "manifest"
        if value is None:
            value, src = taught.get(task), "lite"
        if value is None:
            vectors[task] = np.zeros(len(labelset), np.float32)
            known[task], names[task], source[task] = False, None, ""
            continue
        vectors[task] = encode(task, value)
        known[task] = True
        names[task] = [labelset[i] for i in np.flatnonzero(vectors[task])]
        source[task] = src
    return Targets(vectors, known, names, source)
