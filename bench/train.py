"""Training speed and memory per stage, at tiny size on the CPU (and real size on CUDA).

Run: ``python bench/train.py [--steps N] [--batch N]``                      (tiny, CPU)
     ``python bench/train.py --device cuda [--steps N] [--weights DIR]``    (7B QLoRA)
     ``python bench/train.py --size small``                                 (that path, CPU)

CPU (default): a synthetic set of 2 s tones is built into a feature cache with the tiny MERT
(``sonicverse-tiny``), then each stage (heads, projector, lora) trains for ``--steps`` steps
in its own process; the table gives steps/s (after the first logged step) and the process's
peak resident memory. ``--device cuda`` instead runs real-size QLoRA: Mistral-7B-Instruct in
4-bit NF4 (bf16 compute, gradient checkpointing) + the SonicVerse-size projector, from random
weights that ``bench/fullsize.py`` writes in the download layouts (nothing is downloaded),
on a random [13, 768] feature cache. It trains ``--steps`` steps and stops with a checkpoint,
as an interrupted run would, then a second process resumes from it for ``--resume-steps``
more; s/step, peak GPU memory and whether the resume continued at the right step.
``--size small`` runs the same path on a CPU with an unquantised small LLM (stage lora).
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


def _stage(table: dict[str, Any], queue: Any, stop_after: int | None = None) -> None:
    import torch

    from engine.train.config import from_table
    from engine.train.main import fit

    try:
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        cfg = from_table(table)
        t0 = time.perf_counter()
        result = fit(cfg, stop_after=stop_after)
        wall = time.perf_counter() - t0
        rates = [h["steps_per_s"] for h in result.history[1:]] or [
            h["steps_per_s"] for h in result.history
        ]
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        gpu_mb = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
        queue.put(
            {
                "steps_per_s": float(np.median(rates)),
                "train_s": float(sum(1 / h["steps_per_s"] for h in result.history)),
                "wall_s": wall,
                "peak_mb": peak_mb,
                "gpu_mb": gpu_mb,
                "first_step": int(result.history[0]["step"]) if result.history else 0,
                "last_step": int(result.steps),
                "loss": float(result.history[-1].get("total", float("nan"))),
            }
        )
    except Exception as exc:
        queue.put({"error": f"{type(exc).__name__}: {exc}"})
        raise


def run_stage(table: dict[str, Any], *, stop_after: int | None = None) -> dict[str, Any]:
    """Train one stage in a fresh process (so peak memory is the stage's own).

    Raises:
        RuntimeError: the stage failed or its process died (naming why).
    """
    import queue as queues

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_stage, args=(table, q, stop_after))
    p.start()
    while True:
        try:
            out = dict(q.get(timeout=1.0))
            break
        except queues.Empty:
            if not p.is_alive():
                died = f"stage {table['stage']} died (exit code {p.exitcode})"
                raise RuntimeError(died) from None
    p.join()
    if "error" in out:
        raise RuntimeError(f"stage {table['stage']} failed: {out['error']}")
    return out


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


def random_cache(data: Path, *, n: int, layers: int, dim: int) -> None:
    """A feature cache of ``n`` chunks with random pooled MERT features, as
    ``sonicverse dataset build`` writes it (captions, lyrics on half, every label known)."""
    import torch
    from safetensors.torch import save_file

    from engine.data.teacher import LABEL_SETS

    data.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    tensors = {
        "features": torch.randn(n, layers, dim, generator=g).half(),
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
    (data / "meta.json").write_text(json.dumps({"layers": layers, "dim": dim}))


def resident(args: argparse.Namespace) -> None:
    """QLoRA (CUDA: Mistral-7B NF4 + the real-size projector) or LoRA (``--size small`` on a
    CPU) from the weights ``bench/fullsize.py`` writes, then one resume from a checkpoint."""
    import fullsize
    import torch

    from engine.models.checkpoint import WEIGHTS_ENV

    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("--device cuda needs a CUDA GPU; none is visible here")
    size = args.size or "7b"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.weights) if args.weights else Path(tmp) / "weights"
        if not fullsize.complete(root):
            fullsize.write(root, size=size, device=args.device)
        os.environ[WEIGHTS_ENV] = str(root)  # the spawned stages inherit it
        mert, _, sizes = fullsize.configs(size)
        data = Path(tmp) / "data"
        layers, dim = int(mert["num_hidden_layers"]) + 1, int(mert["hidden_size"])
        random_cache(data, n=max(64, args.batch * 4), layers=layers, dim=dim)
        stage = "qlora" if cuda else "lora"
        table: dict[str, Any] = {
            "data": str(data),
            "out": str(Path(tmp) / "run"),
            "preset": "sonicverse-7b-nf4",
            "stage": stage,
            "steps": args.steps + args.resume_steps,
            "batch_size": args.batch,
            "precision": "bf16" if cuda else "fp32",
            "gradient_checkpointing": True,
            "resume": "auto",
            "log_every": 1,
        }
        if size == "small":
            table.update(
                backbone_dim=sizes["backbone"],
                head_hidden_dim=sizes["head_hidden"],
                projector_hidden_dim=sizes["proj_hidden"],
                content_tokens=sizes["content_tokens"],
                task_tokens=sizes["task_tokens"],
            )
        first = run_stage(table, stop_after=args.steps)
        checkpoint = Path(table["out"]) / f"checkpoint-{args.steps}"
        ck_gb = fullsize.folder_gb(checkpoint) if checkpoint.is_dir() else 0.0
        again = run_stage(table)
    where = torch.cuda.get_device_name(0) if cuda else (platform.processor() or "CPU")
    print(f"{stage} on {where} ({size}), batch {args.batch}, bf16={cuda}, gradient checkpointing")
    print("| run | steps | s/step | steps/s | load + save (s) | peak GPU (MB) | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|")
    for name, r in (("interrupted", first), ("resumed", again)):
        print(
            f"| {name} | {r['first_step']}-{r['last_step']} | {1 / r['steps_per_s']:.2f} | "
            f"{r['steps_per_s']:.2f} | {r['wall_s'] - r['train_s']:.1f} | {r['gpu_mb']:.0f} | "
            f"{r['peak_mb']:.0f} |"
        )
    resumed = again["first_step"] == args.steps + 1
    print(
        f"checkpoint-{args.steps}: {ck_gb:.2f} GB; the second run "
        f"{'resumed at step ' + str(args.steps + 1) if resumed else 'did NOT resume'} "
        f"and ended at step {again['last_step']} (loss {again['loss']:.3f})"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20, help="optimizer steps (before a resume)")
    p.add_argument("--batch", type=int, default=8, help="chunks per batch")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument(
        "--size",
        choices=["7b", "small"],
        help="train on bench/fullsize.py's weights (CUDA: 7b QLoRA; a CPU: small LoRA)",
    )
    p.add_argument("--weights", help="folder of bench/fullsize.py weights (written if absent)")
    p.add_argument("--resume-steps", type=int, default=3, help="steps after the resume")
    args = p.parse_args()
    (resident if (args.device == "cuda" or args.size) else cpu)(args)


if __name__ == "__main__":
    main()
