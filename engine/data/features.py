"""The dataset folder ``sonicverse dataset build`` writes, and its reader.

Layout of ``data/``::

    meta.json                 encoder, chunk length, label sets, shard size
    index.json                shards finished so far (a rebuild resumes after the last one)
    shard-00000.safetensors   features [n, L, D] float16: MERT's hidden layers averaged over
                              each chunk's frames (MERT-95M: 13 x 768, 19.5 KB a chunk);
                              frames [n]; target.<task> [n, classes]; known.<task> [n]
    shard-00000.json          the chunks of the shard: id, row, span, captions, lyrics, labels
    chunks.jsonl              all chunks, for people (written when the build completes)

Heads, projector and LoRA training read only this folder: every part of a model trained here
sees MERT through these time-averaged layers (see :mod:`engine.models.heads` on
``backbone_on_pooled``), so MERT never runs again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.data.chunks import DatasetError, LabelLengthError
from engine.data.teacher import LABEL_SETS

log = logging.getLogger(__name__)

SHARD_SIZE = 512
"""Chunks per shard (MERT-95M: about 10 MB a shard)."""


def shard_name(i: int) -> str:
    """``shard-00003``."""
    return f"shard-{i:05d}"


@dataclass
class FeatureSet:
    """A built dataset in memory.

    Attributes:
        features: ``[N, L, D]`` float32 time-averaged encoder layers.
        frames: ``[N]`` encoder frames each chunk averaged over.
        targets: task -> ``[N, classes]`` float32.
        known: task -> ``[N]`` bool, whether the chunk's label is known.
        chunks: N records (``id``, ``row``, ``song``, ``captions``, ``lyrics``, ...).
        meta: ``meta.json``.
    """

    features: torch.Tensor
    frames: torch.Tensor
    targets: dict[str, torch.Tensor]
    known: dict[str, torch.Tensor]
    chunks: list[dict[str, Any]]
    meta: dict[str, Any]

    def __len__(self) -> int:
        return len(self.chunks)

    def subset(self, index: list[int]) -> FeatureSet:
        """The chunks at ``index``, in that order."""
        idx = torch.as_tensor(index, dtype=torch.long)
        return FeatureSet(
            self.features[idx],
            self.frames[idx],
            {k: v[idx] for k, v in self.targets.items()},
            {k: v[idx] for k, v in self.known.items()},
            [self.chunks[i] for i in index],
            self.meta,
        )


def read_index(folder: Path) -> dict[str, Any]:
    """``index.json`` (an empty one when the build has not started)."""
    f = folder / "index.json"
    if not f.is_file():
        return {"shards": [], "complete": False}
    return dict(json.loads(f.read_text(encoding="utf-8")))


def load(folder: str | Path, *, label_sets: dict[str, tuple[str, ...]] | None = None) -> FeatureSet:
    """Read every shard of a built dataset.

    Args:
        folder: what ``sonicverse dataset build --out`` wrote.
        label_sets: the sets the heads are built for (default :data:`LABEL_SETS`).

    Raises:
        DatasetError: the folder is not a complete dataset.
        LabelLengthError: a target's length is not its label set's size (naming the chunk).
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    sets = label_sets or LABEL_SETS
    index = read_index(folder)
    if not index["shards"] or not index.get("complete"):
        raise DatasetError(
            f"{folder}: no complete dataset (run `sonicverse dataset build manifest.jsonl "
            f"--out {folder}`; an interrupted build resumes)"
        )
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    parts: list[dict[str, torch.Tensor]] = []
    chunks: list[dict[str, Any]] = []
    for name in index["shards"]:
        t = load_file(str(folder / f"{name}.safetensors"))
        recs = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        for task, labels in sets.items():
            width = t[f"target.{task}"].shape[1]
            if width != len(labels):
                rec = recs[0]
                raise LabelLengthError(
                    f"{folder / name}: {task} labels have length {width} but the {task} label "
                    f"set has {len(labels)} (first chunk {rec['id']!r}, row {rec['row_number']} "
                    f"id {rec['row']!r}); rebuild the dataset with the same label sets"
                )
        parts.append(t)
        chunks += recs
    return FeatureSet(
        features=torch.cat([p["features"] for p in parts]).float(),
        frames=torch.cat([p["frames"] for p in parts]).float(),
        targets={k: torch.cat([p[f"target.{k}"] for p in parts]).float() for k in sets},
        known={k: torch.cat([p[f"known.{k}"] for p in parts]).bool() for k in sets},
        chunks=chunks,
        meta=meta,
    )
