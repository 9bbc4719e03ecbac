"""Speed and memory of the `sonicverse` models at their real sizes, with random weights.

Run: ``python bench/neural.py [--device cpu|cuda] [--repeat N] [--llm-tokens N]``
     ``python bench/neural.py --device cuda [--weights DIR]``   (the resident engine, 7B NF4)
     ``python bench/neural.py --device cpu --size small``       (the same path, small, on a CPU)

Nothing is downloaded: models are built from the real configs (``bench/fullsize.py``:
MERT-v1-95M, Mistral-7B-Instruct-v0.1, the SonicVerse projector sizes); random weights cost
the same time and memory. Prints tables, asserts nothing.

- CPU: MERT-95M + heads (no LLM, as the ``sonicverse-cpu`` preset) per 10 s segment, batch 1
  and 2, its real-time factor, and a 3-minute track (18 segments) through MERT + heads.
  ``--llm-tokens`` adds a small random Llama's greedy tokens/s.
- CUDA (or ``--size small``): the resident engine as a user runs it. The three models are
  written in their download layouts (``--weights DIR``, reused when complete), then the
  ``sonicverse-7b-nf4`` preset loads them (``backends.create``: MERT, the 1.1 B-parameter
  projector in bf16, Mistral-7B in 4-bit NF4 with a rank-64 LoRA); load time and resident GPU
  memory. Then each stage on the loaded models (MERT + heads + projector per segment, caption
  tokens/s at batch 1 and 18 with the adapter on, the narrative's prompt and tokens with it
  off), and a 3-minute file annotated end to end through :class:`engine.pipeline.Annotator`
  (decode, signal features, MERT + heads, one batched caption pass, the LLM narrative),
  cold and warm, with peak GPU memory. Random weights never stop early: every caption runs
  to its token limit and the narrative to its own, the worst case of a real track.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from fullsize import MERT_V1_95M  # bench/ is first on sys.path

SMALL_LLAMA: dict[str, Any] = {
    # a ~60M-parameter Llama for the optional CPU tokens/s line
    "vocab_size": 32000,
    "hidden_size": 512,
    "intermediate_size": 1376,
    "num_hidden_layers": 8,
    "num_attention_heads": 8,
    "num_key_value_heads": 8,
    "max_position_embeddings": 2048,
}

SEGMENT_S = 10.0
TRACK_S = 180.0
PROMPT_TEXT_TOKENS = 16  # "[INST] Describe the music. <sound> [/INST]" minus the marker
NARRATIVE_PROMPT_TOKENS = 1200  # instructions + 18 chunk lines


def timed(
    fn: Callable[[], object], *, repeat: int, sync: Callable[[], None], warm_up: bool = True
) -> float:
    """Fastest of ``repeat`` runs (after one warm-up run unless ``warm_up`` is false), in s."""
    if warm_up:
        fn()
        sync()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def build_encoder(device: Any, dtype: Any) -> Any:
    """MERT-v1-95M (random) and the SonicVerse heads, as the backend builds them."""
    import torch
    from transformers import HubertModel

    from engine.models.mert import Mert, hubert_config

    config = hubert_config(MERT_V1_95M)
    torch.manual_seed(0)
    model = HubertModel(config).eval().to(device=device, dtype=dtype)
    return Mert(model=model, sr=config.sample_rate, name="random MERT-v1-95M")


def encode(m: Any, projector: Any, audio: Any) -> Any:
    """MERT + heads (+ tokens) for a batch of equal-length windows ``[N, samples]``."""
    import torch

    hidden = m.hidden_states(audio)
    with torch.inference_mode():
        return projector(projector.pool(hidden.to(projector.backbone.weight.dtype)))


def synth_track(sr: int, seconds: float) -> np.ndarray:
    """A chord with a pulse and noise: enough for tempo/loudness/key to do real work."""
    rng = np.random.default_rng(0)
    t = np.arange(int(sr * seconds)) / sr
    y = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) / 3
    pulse = (np.mod(t, 0.5) < 0.05).astype(np.float64)
    return (0.4 * y * (0.6 + 0.4 * pulse) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def cpu_bench(args: argparse.Namespace) -> None:
    import torch
    from rich.console import Console
    from rich.table import Table

    from engine.models.heads import HeadsConfig, build

    torch.set_num_threads(os.cpu_count() or 1)
    m = build_encoder("cpu", torch.float32)
    projector = build(HeadsConfig(layers=m.layers, input_dim=m.dim, llm_dim=None), seed=0).eval()
    n = int(SEGMENT_S * m.sr)
    audio = torch.from_numpy(synth_track(m.sr, SEGMENT_S * 2)).reshape(2, n)
    cpu = platform.processor() or platform.machine()
    table = Table(title=f"MERT-95M + heads on CPU ({os.cpu_count()} threads, {cpu})")
    for col in ("work", "batch", "ms / 10 s segment", "x real time"):
        table.add_column(col)
    for batch in (1, 2):
        s = timed(
            lambda b=batch: encode(m, projector, audio[:b]), repeat=args.repeat, sync=lambda: None
        )
        per = s / batch
        table.add_row("MERT + heads", str(batch), f"{1000 * per:.0f}", f"{SEGMENT_S / per:.1f}")
    segments = int(TRACK_S / SEGMENT_S)
    track = torch.from_numpy(synth_track(m.sr, TRACK_S)).reshape(segments, n)

    def whole() -> None:
        for k in range(0, segments, 2):
            encode(m, projector, track[k : k + 2])

    s = timed(whole, repeat=1, sync=lambda: None)
    table.add_row(
        "3:00 track, 18 segments", "2", f"{1000 * s / segments:.0f}", f"{TRACK_S / s:.1f}"
    )
    Console().print(table)
    print(f"3-minute track, MERT + heads: {s:.1f} s (real-time factor {s / TRACK_S:.3f})")
    if args.llm_tokens:
        cpu_llm(args)


def cpu_llm(args: argparse.Namespace) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**SMALL_LLAMA)).eval()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    embeds = torch.randn(1, PROMPT_TEXT_TOKENS + 60, SMALL_LLAMA["hidden_size"]) * 0.02
    gen = dict(max_new_tokens=args.llm_tokens, min_new_tokens=args.llm_tokens, do_sample=False)
    with torch.inference_mode():
        s = timed(lambda: model.generate(inputs_embeds=embeds, **gen), repeat=1, sync=lambda: None)
    print(f"small Llama ({params:.0f}M params) on CPU, batch 1: {args.llm_tokens / s:.1f} tokens/s")


def preset_for(device: str) -> Any:
    """``sonicverse-7b-nf4`` as shipped on CUDA; on a CPU the same with an unquantised
    float32 LLM (bitsandbytes' NF4 needs CUDA)."""
    import tomllib

    from engine import presets

    if device == "cuda":
        return presets.load("sonicverse-7b-nf4")
    table = tomllib.loads(presets.available()["sonicverse-7b-nf4"].read_text(encoding="utf-8"))
    table["sonicverse"]["llm"].update(quantization="none", dtype="float32")
    return presets.from_table(table)


def weights_folder(args: argparse.Namespace) -> Path:
    """Where the random weights go: ``--weights``, else RAM (/dev/shm) when it has room."""
    import shutil
    import tempfile

    if args.weights:
        return Path(args.weights)
    need = 25e9 if args.size == "7b" else 0.1e9
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and shutil.disk_usage(shm).free > need else None
    return Path(tempfile.mkdtemp(prefix="sonicverse-weights-", dir=base))


class Stages:
    """Progress callback that times each stage from the previous stage's last report to its
    own last report."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.last: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.last[stage] = time.perf_counter()

    def seconds(self) -> dict[str, float]:
        out, prev = {}, self.t0
        for stage, t in sorted(self.last.items(), key=lambda kv: kv[1]):
            out[stage] = t - prev
            prev = t
        return out


def resident_bench(args: argparse.Namespace) -> None:
    import fullsize
    import soundfile as sf
    import torch
    from rich.console import Console
    from rich.table import Table

    from engine import backends
    from engine.models.checkpoint import WEIGHTS_ENV
    from engine.pipeline import Annotator

    device = args.device
    cuda = device == "cuda"
    dev = torch.device(device)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    gib = 2.0**30
    console = Console(width=140)
    root = weights_folder(args)
    if not fullsize.complete(root):
        written = fullsize.write(root, size=args.size, device=device)
        for name, folder in fullsize.FOLDERS.items():
            print(
                f"wrote {folder}: {fullsize.folder_gb(root / folder):.2f} GB "
                f"in {written[name]:.1f} s ({root})"
            )
    os.environ[WEIGHTS_ENV] = str(root)
    preset = preset_for(device)
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    before = torch.cuda.memory_allocated(dev) if cuda else 0
    t0 = time.perf_counter()
    backend = backends.create(preset, device=device)
    sync()
    load_s = time.perf_counter() - t0
    name = torch.cuda.get_device_name(dev) if cuda else (platform.processor() or "CPU")
    resident = (torch.cuda.memory_allocated(dev) - before) / gib if cuda else 0.0
    load_peak = torch.cuda.max_memory_allocated(dev) / gib if cuda else 0.0
    parts = {
        "MERT": sum(p.numel() * p.element_size() for p in backend.mert.model.parameters()),
        "projector + heads": sum(
            p.numel() * p.element_size() for p in backend.projector.parameters()
        ),
        "LLM (+ LoRA)": backend.lm.model.get_memory_footprint()
        if hasattr(backend.lm.model, "get_memory_footprint")
        else sum(p.numel() * p.element_size() for p in backend.lm.model.parameters()),
    }
    print(
        f"{preset.name} on {name}: loaded in {load_s:.1f} s; resident {resident:.2f} GiB "
        f"(peak while loading {load_peak:.2f} GiB); weights "
        + ", ".join(f"{k} {v / gib:.2f} GiB" for k, v in parts.items())
    )

    m, projector, lm = backend.mert, backend.projector, backend.lm
    segments = int(TRACK_S / SEGMENT_S)
    tmp = tempfile.TemporaryDirectory()
    path = Path(tmp.name) / "three-minutes.wav"
    y = synth_track(44100, TRACK_S)
    sf.write(path, np.stack([y, y], axis=1), 44100, subtype="PCM_16")
    annotator = Annotator(preset, store=None, backend=backend)
    analyze = backend.analyze
    steps = ("load", "signal", "mert", "caption", "narrate")
    e2e = Table(title=f"3:00 file end to end ({segments} regions), {name}")
    for col in ("run", *steps, "total", "x real time", "peak GPU"):
        e2e.add_column(col)

    def end_to_end(run: str) -> None:
        """Annotate and narrate the file as ``sonicverse annotate`` does (no cache)."""
        if cuda:
            torch.cuda.reset_peak_memory_stats(dev)
        stages = Stages()
        # the pipeline reports "load"/"analyze"; the backend's own stages are timed too
        backend.analyze = functools.partial(analyze, progress=stages)  # type: ignore[method-assign]
        t0 = time.perf_counter()
        result = annotator.annotate(str(path), use_cache=False, progress=stages)
        sync()
        total = time.perf_counter() - t0
        sec = stages.seconds()
        peak = torch.cuda.max_memory_allocated(dev) / gib if cuda else 0.0
        row = [*(f"{sec.get(k, 0.0):.2f} s" for k in steps), f"{total:.2f} s"]
        e2e.add_row(run, *row, f"{TRACK_S / total:.0f}x", f"{peak:.2f} GiB")
        print(
            f"end to end, {run}: {' / '.join(f'{k} {v}' for k, v in zip(steps, row, strict=False))}"
            f"; total {total:.2f} s; {len(result.regions)} regions, narrative "
            f"{len(result.narrative.text)} chars; peak GPU memory {peak:.2f} GiB",
            flush=True,
        )

    end_to_end("first")

    n = int(SEGMENT_S * m.sr)
    track24 = torch.from_numpy(synth_track(m.sr, TRACK_S)).reshape(segments, n)
    table = Table(title=f"sonicverse ({args.size}) on {name}, random weights")
    for col in ("stage", "batch", "time", "rate"):
        table.add_column(col)

    def row(*cells: str) -> None:
        table.add_row(*cells)
        print(" | ".join(cells), flush=True)

    for batch in (1, min(segments, preset.options.mert.batch_size)):
        s = timed(lambda b=batch: encode(m, projector, track24[:b]), repeat=args.repeat, sync=sync)
        row(
            "MERT + heads + projector",
            str(batch),
            f"{1000 * s / batch:.1f} ms/segment",
            f"{SEGMENT_S * batch / s:.0f}x real time",
        )

    from engine.prompts import caption_instruction

    prompt = caption_instruction(preset.options.llm.instruction, lyrics="")
    k_tokens = projector.config.num_tokens
    caption_tokens = preset.options.llm.max_new_tokens

    def caption(batch: int) -> None:
        tokens = torch.randn(batch, k_tokens, lm.hidden_size) * 0.02
        embeds, mask = lm.splice(tokens.to(lm.device, lm.dtype), [prompt] * batch)
        with torch.inference_mode():
            lm.model.generate(
                inputs_embeds=embeds,
                attention_mask=mask,
                max_new_tokens=caption_tokens,
                min_new_tokens=caption_tokens,
                do_sample=False,
                use_cache=True,
                pad_token_id=lm.tokenizer.pad_token_id,
            )

    for batch in (1, segments):  # warm already: the end-to-end run captioned
        s = timed(lambda b=batch: caption(b), repeat=1, sync=sync, warm_up=False)
        row(
            "caption (LLM + LoRA)",
            str(batch),
            f"{s:.2f} s",
            f"{batch * caption_tokens / s:.0f} tokens/s",
        )
    narrative_tokens = preset.options.llm.narrative_max_new_tokens

    def narrative() -> None:
        ids = torch.randint(3, lm.tokenizer.vocab_size, (1, NARRATIVE_PROMPT_TOKENS), device=dev)
        off = lm.model.disable_adapter() if hasattr(lm.model, "disable_adapter") else None
        with torch.inference_mode(), off if off is not None else contextlib.nullcontext():
            lm.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=narrative_tokens,
                min_new_tokens=narrative_tokens,
                do_sample=False,
                pad_token_id=lm.tokenizer.pad_token_id,
            )

    s = timed(narrative, repeat=1, sync=sync, warm_up=False)
    row(
        f"narrative ({NARRATIVE_PROMPT_TOKENS} prompt tokens, adapter off)",
        "1",
        f"{s:.2f} s",
        f"{narrative_tokens / s:.0f} tokens/s",
    )
    console.print(table)
    end_to_end("second")
    console.print(e2e)
    tmp.cleanup()
    backend.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--llm-tokens", type=int, default=0, help="CPU: also time a small LLM")
    ap.add_argument(
        "--size",
        choices=("7b", "small"),
        default=None,
        help="the resident engine at this size (CUDA: 7b; a CPU: small checks the path)",
    )
    ap.add_argument("--weights", help="folder for the random weights (reused when complete)")
    args = ap.parse_args()

    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" or args.size is not None:
        args.size = args.size or "7b"
        resident_bench(args)
    else:
        cpu_bench(args)


if __name__ == "__main__":
    main()
