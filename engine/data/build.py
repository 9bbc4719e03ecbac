"""``sonicverse dataset build``: chunks, teacher labels and the pooled-MERT feature cache.

Built once, shard by shard; an interrupted build resumes after the last finished shard (the
chunk plan is recomputed from the manifest and must match the one recorded in ``meta.json``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.backends.base import Progress, no_progress
from engine.data.chunks import CHUNK_S, Chunk, DatasetError, chunk_rows
from engine.data.features import SHARD_SIZE, read_index, shard_name
from engine.data.manifest import read_manifest
from engine.data.teacher import LABEL_SETS, Teacher, TeacherModels
from engine.errors import EngineError

log = logging.getLogger(__name__)


def build(
    manifest: str | Path,
    out: str | Path,
    *,
    preset: str = "sonicverse-cpu",
    chunk_s: float = CHUNK_S,
    teacher: Teacher = "lite",
    require_captions: bool = True,
    shard_size: int = SHARD_SIZE,
    batch_size: int = 8,
    device: str | None = None,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Build (or finish building) a dataset folder; returns its ``index.json``.

    Args:
        manifest: the manifest (.jsonl).
        out: the dataset folder.
        preset: a ``sonicverse`` preset naming the MERT to encode with.
        chunk_s: chunk length, seconds.
        teacher: ``"lite"`` (analysers + tagger fill unknown labels) or ``"none"``.
        require_captions: a row without a caption is an error.
        shard_size: chunks per shard.
        batch_size: chunks per MERT forward.
        device: torch device for MERT (None: CUDA when available).
        progress: ``(stage, done, total)`` callback; stage ``"chunks"``.

    Raises:
        MissingAudioError, MissingCaptionError: naming the row.
        DatasetError: ``out`` holds a build of another manifest or settings.
    """
    import torch
    from safetensors.torch import save_file

    from engine import presets
    from engine.audio import load as load_audio
    from engine.audio import resample, to_mono
    from engine.backends.sonicverse import load_mert, resolve_device

    m = read_manifest(manifest)
    chunks = chunk_rows(m.rows, chunk_s=chunk_s, require_captions=require_captions)
    if not chunks:
        raise DatasetError(f"{manifest}: no chunks ({len(m.rows)} rows read)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    p = presets.load(preset)
    if p.backend != "sonicverse":
        raise DatasetError(f"preset {preset!r} is a {p.backend} preset; name a sonicverse one")
    dev = resolve_device(device)
    mert, mert_id = load_mert(p.options.mert, device=dev, seed=p.options.seed)
    plan = hashlib.blake2b(
        json.dumps([(c.id, c.row.audio, c.start_s, c.end_s) for c in chunks]).encode(),
        digest_size=8,
    ).hexdigest()
    meta = {
        "manifest": str(Path(manifest).resolve()),
        "plan": plan,
        "chunks": len(chunks),
        "chunk_s": chunk_s,
        "shard_size": shard_size,
        "teacher": teacher,
        "preset": preset,
        "mert": mert_id,
        "layers": mert.layers,
        "dim": mert.dim,
        "sr": mert.sr,
        "labels": {k: list(v) for k, v in LABEL_SETS.items()},
    }
    meta_file = out / "meta.json"
    index = read_index(out)
    if meta_file.is_file() and index["shards"]:
        old = json.loads(meta_file.read_text(encoding="utf-8"))
        changed = [k for k in meta if old.get(k) != meta[k]]
        if changed:
            raise DatasetError(
                f"{out} holds a build with other {', '.join(changed)}; use a new folder"
            )
    meta_file.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    teachers = TeacherModels(teacher)
    n_shards = (len(chunks) + shard_size - 1) // shard_size
    done = set(index["shards"])
    for s in range(n_shards):
        part = chunks[s * shard_size : (s + 1) * shard_size]
        if shard_name(s) in done:
            progress("chunks", min((s + 1) * shard_size, len(chunks)), len(chunks))
            continue
        decoded = [load_audio(c.row.audio, start_s=c.start_s, end_s=c.end_s) for c in part]
        audio = [(to_mono(a.samples), a.sr) for a in decoded]
        targets = teachers.label(audio, [c.row for c in part])
        feats, frames = [], []
        for b in range(0, len(part), batch_size):
            ys = [resample(y, sr=sr, target_sr=mert.sr) for y, sr in audio[b : b + batch_size]]
            same = len({len(y) for y in ys}) == 1
            groups = [np.stack(ys)] if same else [y[None] for y in ys]
            for x in groups:
                hidden = mert.hidden_states(torch.from_numpy(x))  # [n, L, T, D]
                feats.append(hidden.float().mean(dim=2).to(torch.float16).cpu())
                frames += [hidden.shape[2]] * hidden.shape[0]
            progress("chunks", s * shard_size + min(b + batch_size, len(part)), len(chunks))
        tensors = {
            "features": torch.cat(feats),
            "frames": torch.tensor(frames, dtype=torch.float32),
        }
        for task in LABEL_SETS:
            tensors[f"target.{task}"] = torch.from_numpy(
                np.stack([t.vectors[task] for t in targets])
            )
            tensors[f"known.{task}"] = torch.tensor(
                [t.known[task] for t in targets], dtype=torch.uint8
            )
        name = shard_name(s)
        save_file(tensors, str(out / f"{name}.safetensors"))
        recs = [_record(c, t) for c, t in zip(part, targets, strict=True)]
        (out / f"{name}.json").write_text(json.dumps(recs, ensure_ascii=False), encoding="utf-8")
        index["shards"].append(name)
        _write_index(out, index)
    index["complete"] = True
    _write_index(out, index)
    with (out / "chunks.jsonl").open("w", encoding="utf-8") as f:
        for s in range(n_shards):
            for rec in json.loads((out / f"{shard_name(s)}.json").read_text(encoding="utf-8")):
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return index


def _write_index(out: Path, index: dict[str, Any]) -> None:
    tmp = out / "index.json.tmp"
    tmp.write_text(json.dumps(index), encoding="utf-8")
    tmp.replace(out / "index.json")


def _record(c: Chunk, t: Any) -> dict[str, Any]:
    return {
        "id": c.id,
        "row": c.row.id,
        "row_number": c.row_number,
        "song": c.song,
        "audio": c.row.audio,
        "start_s": c.start_s,
        "end_s": c.end_s,
        "captions": list(c.row.captions),
        "lyrics": c.row.lyrics,
        "labels": t.names,
        "label_source": t.source,
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``sonicverse dataset``."""
    sub = parser.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="chunks, teacher labels and pooled MERT features")
    b.add_argument("manifest", help="the manifest (.jsonl)")
    b.add_argument("--out", required=True, help="the dataset folder (resumes when it exists)")
    b.add_argument("--preset", default="sonicverse-cpu", help="sonicverse preset naming MERT")
    b.add_argument("--chunk-s", type=float, default=CHUNK_S, help="chunk length in seconds")
    b.add_argument(
        "--teacher", choices=["lite", "none"], default="lite", help="who fills unknown labels"
    )
    b.add_argument(
        "--allow-uncaptioned", action="store_true", help="keep rows without captions (heads only)"
    )
    b.add_argument("--shard-size", type=int, default=SHARD_SIZE, help="chunks per shard")
    b.add_argument("--device", help="device for MERT (cuda, cpu)")


def run(args: argparse.Namespace) -> int:
    """Run ``sonicverse dataset build``."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    err = Console(stderr=True)
    bar = Progress(
        "{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err
    )

    def report(stage: str, done: int, total: int) -> None:
        if not bar.task_ids:  # the bar appears with the first progress, never before an error
            bar.start()
            bar.add_task(stage, total=total)
        bar.update(bar.task_ids[0], description=stage, completed=done, total=total)

    try:
        try:
            index = build(
                args.manifest,
                args.out,
                preset=args.preset,
                chunk_s=args.chunk_s,
                teacher=args.teacher,
                require_captions=not args.allow_uncaptioned,
                shard_size=args.shard_size,
                device=args.device,
                progress=report,
            )
        finally:
            bar.stop()
    except EngineError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    err.print(f"wrote {len(index['shards'])} shard(s) to {args.out}", highlight=False)
    return 0


__all__: Sequence[str] = ["add_arguments", "build", "run"]
