"""Training speed and memory per stage, at tiny size on the CPU (and real size on CUDA).

Run: ``python bench/train.py [--steps N] [--batch N] [--device cpu|cuda]``.

CPU (default): a synthetic set of 2 s tones is built into a feature cache with the tiny MERT
(``sonicverse-tiny``), then each stage (heads, projector, lora) trains for ``--steps`` steps
in its own process; the table gives steps/s (after the first logged step) and the process's
peak resident memory. ``--device cuda`` instead runs real-size QLoRA steps: Mistral-7B in
4-bit NF4 + the SonicVerse-size projector on a random [13, 768] cache, with s/step and peak
GPU memory; it needs the ``sonicverse-7b-nf4`` weights on disk and a CUDA GPU.
Prints tables, asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TINY = {
    "backbone_dim": 64,
    "head_hidden_dim": 64,
    "projector_hidden_dim": 32,
    "content_tokens": 4,
    "task_tokens": 2,
    "resume": "",
    "log_every": 1,
}


def synth_set(root: Path, n: int = 32, seconds: float = 2.0, sr: int = 24000) -> Path:
    """Tones with captions, lyrics and key labels, and their manifest."""
    import soundfile as sf

    from engine.labels import PITCH_CLASSES

    rng = np.random.default_rng(0)
    rows = []
    t = np.arange(int(seconds * sr)) / sr
    for i in range(n):
        pc = i % 12
        f = 440.0 * 2 ** ((48 + pc + 12 * int(rng.integers(0, 2)) - 69) / 12)
        y = 0.2 * np.sin(2 * np.pi * f * t) * np.exp(-1.5 * t)
        sf.write(root / f"c{i}.wav", y.astype(np.float32), sr)
        name = PITCH_CLASSES[pc]
        rows.append(
            {
                "id": f"s{i}",
                "audio": f"c{i}.wav",
                "captions": [f"A calm tone on {name}."],
                "lyrics": f"song of {name}",
                "labels": {"key": f"{name} major"},
            }
        )
    manifest = root / "manifest.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return manifest


def _stage(table: dict[str, Any], queue: Any) -> None:
    import torch

    from engine.train.config import from_table
    from engine.train.main import fit

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    cfg = from_table(table)
    t0 = time.perf_counter()
    result = fit(cfg)
    wall = time.perf_counter() - t0
    rates = [h["steps_per_s"] for h in result.history[1:]] or [
        h["steps_per_s"] for h in result.history
    ]
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gpu_mb = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
    queue.put(
        {
            "steps_per_s": float(np.median(rates)),
            "wall_s": wall,
            "peak_mb": peak_mb,
            "gpu_mb": gpu_mb,
        }
    )


def run_stage(table: dict[str, Any]) -> dict[str, float]:
    """Train one stage in a fresh process (so peak memory is the stage's own)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_stage, args=(table, queue))
    p.start()
    out = queue.get()
    p.join()
    return dict(out)


def cpu(args: argparse.Namespace) -> None:
    from engine.data.build import build

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest = synth_set(root)
        t0 = time.perf_counter()
        build(manifest, root / "data", preset="sonicverse-tiny", chunk_s=2.0, teacher="none")
        build_s = time.perf_counter() - t0
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch CPU; no GPU used")
        print(f"dataset build (32 chunks of 2 s, tiny MERT): {build_s:.1f} s\n")
        print("| stage | batch | steps | steps/s | peak RSS (MB) |")
        print("|---|---|---|---|---|")
        for stage in ("heads", "projector", "lora"):
            table = {
                **TINY,
                "data": str(root / "data"),
                "out": str(root / f"run-{stage}"),
                "stage": stage,
                "steps": args.steps,
                "batch_size": args.batch,
                "device": "cpu",
            }
            r = run_stage(table)
            print(
                f"| {stage} | {args.batch} | {args.steps} | {r['steps_per_s']:.1f} "
                f"| {r['peak_mb']:.0f} |"
            )


def cuda(args: argparse.Namespace) -> None:
    """Real-size QLoRA steps on a random [13, 768] cache (needs Mistral-7B on disk)."""
    import torch
    from safetensors.torch import save_file

    from engine.data.teacher import LABEL_SETS

    if not torch.cuda.is_available():
        raise SystemExit("--device cuda needs a CUDA GPU; none is visible here")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        n = max(64, args.batch * 4)
        g = torch.Generator().manual_seed(0)
        tensors = {
            "features": torch.randn(n, 13, 768, generator=g).half(),
            "frames": torch.full((n,), 749.0),
        }
        for task, labels in LABEL_SETS.items():
            tensors[f"target.{task}"] = torch.zeros(n, len(labels))
            tensors[f"known.{task}"] = torch.ones(n, dtype=torch.uint8)
        save_file(tensors, str(data / "shard-00000.safetensors"))
        recs = [
            {
                "id": f"c{i}",
                "row": f"s{i}",
                "row_number": i + 1,
                "song": f"s{i}",
                "audio": "-",
                "captions": ["An upbeat pop song with female vocals, guitar and drums."],
                "lyrics": "hold on, hold on" if i % 2 else "",
            }
            for i in range(n)
        ]
        (data / "shard-00000.json").write_text(json.dumps(recs))
        (data / "index.json").write_text(json.dumps({"shards": ["shard-00000"], "complete": True}))
        (data / "meta.json").write_text(json.dumps({"layers": 13, "dim": 768}))
        table = {
            "data": str(data),
            "out": str(Path(tmp) / "run"),
            "preset": "sonicverse-7b-nf4",
            "stage": "qlora",
            "steps": args.steps,
            "batch_size": args.batch,
            "precision": "bf16",
            "gradient_checkpointing": True,
            "resume": "",
            "log_every": 1,
        }
        r = run_stage(table)
        print("| stage | batch | steps | s/step | peak GPU (MB) | peak RSS (MB) |")
        print("|---|---|---|---|---|---|")
        print(
            f"| qlora 7B NF4 + projector | {args.batch} | {args.steps} | "
            f"{1 / r['steps_per_s']:.2f} | {r['gpu_mb']:.0f} | {r['peak_mb']:.0f} |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20, help="optimizer steps per stage")
    p.add_argument("--batch", type=int, default=8, help="chunks per batch")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = p.parse_args()
    (cuda if args.device == "cuda" else cpu)(args)


if __name__ == "__main__":
    main()
