"""Speed and memory of the `sonicverse` models at their real sizes, with random weights.

Run: ``python bench/neural.py [--device cpu|cuda] [--repeat N] [--llm-tokens N]``.

Models are built from the real configs below (MERT-v1-95M, Mistral-7B-Instruct-v0.1, the
SonicVerse projector sizes), so nothing is downloaded; random weights cost the same time.
Prints tables, asserts nothing.

- CPU: MERT-95M + heads (no LLM, as the ``sonicverse-cpu`` preset) per 10 s segment, batch 1
  and 2, its real-time factor, and a 3-minute track (18 segments) through MERT + heads.
  ``--llm-tokens`` adds a small random Llama's greedy tokens/s.
- CUDA: MERT + heads + projector per segment, Mistral-7B in 4-bit NF4 (bf16 compute) caption
  tokens/s at batch 1 and 18, peak GPU memory, and a whole 3-minute track: signal features,
  MERT + heads for 18 segments, one batched caption pass and the narrative.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np

MERT_V1_95M: dict[str, Any] = {
    # m-a-p/MERT-v1-95M config.json (the fields HubertConfig reads)
    "model_type": "mert_model",
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "conv_dim": [512, 512, 512, 512, 512, 512, 512],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_bias": False,
    "feat_extract_norm": "group",
    "feat_extract_activation": "gelu",
    "feat_proj_layer_norm": True,
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "do_stable_layer_norm": False,
    "layer_norm_eps": 1e-5,
    "sample_rate": 24000,
    "feature_extractor_cqt": False,
    "deepnorm": False,
    "attention_relax": -1.0,
}

MISTRAL_7B_INSTRUCT_V01: dict[str, Any] = {
    # mistralai/Mistral-7B-Instruct-v0.1 config.json
    "vocab_size": 32000,
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "max_position_embeddings": 32768,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-5,
    "sliding_window": 4096,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
}

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
CAPTION_TOKENS = 128  # SonicVerse's max_new_tokens
NARRATIVE_PROMPT_TOKENS = 1200  # instructions + 18 chunk lines
NARRATIVE_TOKENS = 400


def timed(fn: Callable[[], object], *, repeat: int, sync: Callable[[], None]) -> float:
    """Fastest of ``repeat`` runs after one warm-up, in seconds."""
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


def quantize_nf4(model: Any, *, compute_dtype: Any) -> Any:
    """Replace every Linear but ``lm_head`` with a bitsandbytes NF4 Linear4bit (double quant),
    as ``BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")`` loads them."""
    import bitsandbytes as bnb
    import torch

    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            full = f"{name}.{child_name}" if name else child_name
            if not isinstance(child, torch.nn.Linear) or full == "lm_head":
                continue
            q = bnb.nn.Linear4bit(
                child.in_features,
                child.out_features,
                bias=child.bias is not None,
                compute_dtype=compute_dtype,
                compress_statistics=True,
                quant_type="nf4",
                device="meta",
            )
            q.weight = bnb.nn.Params4bit(
                child.weight.data, requires_grad=False, compress_statistics=True, quant_type="nf4"
            ).to(child.weight.device)
            if child.bias is not None:
                q.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
            setattr(module, child_name, q)
            del child
    torch.cuda.empty_cache()
    return model


def build_mistral_nf4() -> Any:
    """Mistral-7B-Instruct from its config, random bf16 weights on the GPU, then NF4."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    config = MistralConfig(**MISTRAL_7B_INSTRUCT_V01)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            torch.manual_seed(0)
            model = MistralForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    model.eval()
    return quantize_nf4(model, compute_dtype=torch.bfloat16)


def cuda_bench(args: argparse.Namespace) -> None:
    import torch
    from rich.console import Console
    from rich.table import Table

    from engine.analysis import analyze_signal
    from engine.audio import Audio
    from engine.models.heads import HeadsConfig, build
    from engine.presets import AnalysisSettings

    dev = torch.device("cuda")
    sync = torch.cuda.synchronize
    name = torch.cuda.get_device_name(dev)
    m = build_encoder(dev, torch.float32)
    projector = (
        build(HeadsConfig(layers=m.layers, input_dim=m.dim, llm_dim=4096), seed=0)
        .eval()
        .to(device=dev, dtype=torch.bfloat16)
    )
    llm = build_mistral_nf4()
    torch.cuda.reset_peak_memory_stats(dev)
    resident = torch.cuda.memory_allocated(dev) / 2**30
    segments = int(TRACK_S / SEGMENT_S)
    n = int(SEGMENT_S * m.sr)
    track24 = torch.from_numpy(synth_track(m.sr, TRACK_S)).reshape(segments, n)

    table = Table(title=f"sonicverse at full size on {name} (random weights)")
    for col in ("stage", "batch", "time", "rate"):
        table.add_column(col)
    for batch in (1, 18):
        s = timed(lambda b=batch: encode(m, projector, track24[:b]), repeat=args.repeat, sync=sync)
        table.add_row(
            "MERT + heads + projector",
            str(batch),
            f"{1000 * s / batch:.1f} ms/segment",
            f"{SEGMENT_S * batch / s:.0f}x real time",
        )

    embed = llm.get_input_embeddings()
    gen = dict(
        max_new_tokens=CAPTION_TOKENS,
        min_new_tokens=CAPTION_TOKENS,
        do_sample=False,
        use_cache=True,
    )

    def caption(batch: int) -> None:
        ids = torch.randint(3, 32000, (batch, PROMPT_TEXT_TOKENS), device=dev)
        text = embed(ids)
        audio = torch.randn(batch, 60, 4096, device=dev, dtype=torch.bfloat16) * 0.02
        embeds = torch.cat([text[:, :8], audio, text[:, 8:]], dim=1)
        mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=dev)
        with torch.inference_mode():
            llm.generate(inputs_embeds=embeds, attention_mask=mask, pad_token_id=0, **gen)

    for batch in (1, 18):
        s = timed(lambda b=batch: caption(b), repeat=1, sync=sync)
        table.add_row(
            "caption (NF4 Mistral-7B)",
            str(batch),
            f"{s:.2f} s",
            f"{batch * CAPTION_TOKENS / s:.0f} tokens/s",
        )

    settings = AnalysisSettings()
    sr = 44100
    track44 = synth_track(sr, TRACK_S).reshape(segments, -1)

    def narrative() -> None:
        ids = torch.randint(3, 32000, (1, NARRATIVE_PROMPT_TOKENS), device=dev)
        with torch.inference_mode():
            llm.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=NARRATIVE_TOKENS,
                min_new_tokens=NARRATIVE_TOKENS,
                do_sample=False,
                pad_token_id=0,
            )

    stages: dict[str, float] = {}

    def whole() -> None:
        t0 = time.perf_counter()
        for k in range(segments):
            analyze_signal(Audio(track44[k][None], sr, "bench"), settings=settings, sr=22050)
        t1 = time.perf_counter()
        encode(m, projector, track24)
        sync()
        t2 = time.perf_counter()
        caption(segments)
        sync()
        t3 = time.perf_counter()
        narrative()
        sync()
        stages.update(
            signal=t1 - t0, mert_heads=t2 - t1, captions=t3 - t2, narrative=time.perf_counter() - t3
        )

    total = timed(whole, repeat=1, sync=sync)
    for stage, s in stages.items():
        table.add_row(
            f"3:00 track: {stage}", "18" if stage != "narrative" else "1", f"{s:.2f} s", ""
        )
    table.add_row("3:00 track: total", "", f"{total:.2f} s", f"{TRACK_S / total:.0f}x real time")
    Console().print(table)
    peak = torch.cuda.max_memory_allocated(dev) / 2**30
    print(f"GPU memory: {resident:.2f} GiB resident after loading, peak {peak:.2f} GiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--llm-tokens", type=int, default=0, help="CPU: also time a small LLM")
    args = ap.parse_args()

    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        cuda_bench(args)
    else:
        cpu_bench(args)


if __name__ == "__main__":
    main()
