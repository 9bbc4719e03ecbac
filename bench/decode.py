"""Where a caption's time goes: Mistral-7B's per-token decode on one GPU, lever by lever.

Run: ``python bench/decode.py [--tokens 32] [--compile-timeout 150]`` (CUDA only).

Mistral-7B-Instruct is built from its config with random bf16 weights on the GPU (nothing is
read or downloaded) and timed as ``generate`` runs it in the engine: greedy, KV-cached, for
``--tokens`` new tokens after a 32-token prompt, at batch 1 (one region, the narrative) and
18 (a 3-minute track's captions in one pass). Then, in place, one change at a time:

1. bf16, no quantisation: what the GPU does without bitsandbytes (14.5 GB of weights);
2. 4-bit NF4 through bitsandbytes (double quantisation, bf16 compute), as the engine loads it;
3. + a rank-64 LoRA on every projection in float32, as peft loads a saved adapter;
4. the same LoRA in bf16;
5. + a static KV cache and ``torch.compile`` (CUDA graphs), given ``--compile-timeout`` s.

One decode step of (3) is profiled: the host's time against the GPU kernels' time says
whether the step waits on Python and launches or on the GPU. Prints tables, asserts nothing.
"""

from __future__ import annotations

import argparse
import signal
import time
from typing import Any

from fullsize import LORA, MISTRAL_7B_INSTRUCT_V01  # bench/ is first on sys.path

PROMPT_TOKENS = 32


def quantize_nf4(model: Any) -> Any:
    """Every Linear but ``lm_head`` as a bitsandbytes NF4 ``Linear4bit`` (double quantisation,
    bf16 compute), the modules ``BitsAndBytesConfig(load_in_4bit=True, nf4)`` loads."""
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
                compute_dtype=torch.bfloat16,
                compress_statistics=True,
                quant_type="nf4",
                device="meta",
            )
            q.weight = bnb.nn.Params4bit(
                child.weight.data,
                requires_grad=False,
                compress_statistics=True,
                quant_type="nf4",
            ).to("cuda")
            setattr(module, child_name, q)
            del child
    torch.cuda.empty_cache()
    return model


def per_token_ms(model: Any, batch: int, tokens: int, *, warm: int = 4) -> float:
    """Milliseconds per generated token (the prompt's prefill included, as in the engine),
    after a warm-up run of ``warm`` tokens."""
    import torch

    ids = torch.randint(3, 32000, (batch, PROMPT_TOKENS), device="cuda")
    kw = dict(
        attention_mask=torch.ones_like(ids),
        do_sample=False,
        use_cache=True,
        pad_token_id=0,
    )
    with torch.inference_mode():
        model.generate(ids, max_new_tokens=warm, min_new_tokens=warm, **kw)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        model.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, **kw)
        torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - t0) / tokens


def profile_step(model: Any) -> str:
    """Host time against GPU-kernel time for 8 decode steps at batch 1, and the top host ops."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    ids = torch.randint(3, 32000, (1, PROMPT_TOKENS), device="cuda")
    with torch.inference_mode():
        model.generate(ids, max_new_tokens=2, min_new_tokens=2, do_sample=False, pad_token_id=0)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            model.generate(ids, max_new_tokens=8, min_new_tokens=8, do_sample=False, pad_token_id=0)
            torch.cuda.synchronize()
        wall = time.perf_counter() - t0
    events = prof.key_averages()
    gpu_us = sum(getattr(e, "self_device_time_total", 0) for e in events)
    top = events.table(sort_by="self_cpu_time_total", row_limit=10, max_name_column_width=48)
    return (
        f"8 decode steps at batch 1 (profiled): wall {1000 * wall:.0f} ms, GPU kernels busy "
        f"{gpu_us / 1000:.0f} ms ({100 * gpu_us / 1e6 / wall:.0f} % of the wall)\n{top}"
    )


class CompileTimeout(Exception):
    pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--compile-timeout", type=int, default=150)
    args = ap.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import MistralConfig, MistralForCausalLM

    name = torch.cuda.get_device_name(0)
    raw = {k: v for k, v in MISTRAL_7B_INSTRUCT_V01.items() if k != "architectures"}
    config = MistralConfig(**raw)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        torch.manual_seed(0)
        model = MistralForCausalLM(config).eval()
    torch.set_default_dtype(torch.float32)
    rows: list[tuple[str, float, float, float]] = []

    def measure(label: str, m: Any, *, batches: tuple[int, ...] = (1, 18), warm: int = 4) -> None:
        torch.cuda.reset_peak_memory_stats()
        one = per_token_ms(m, 1, args.tokens, warm=warm)
        many = per_token_ms(m, 18, args.tokens, warm=warm) if 18 in batches else float("nan")
        gib = torch.cuda.memory_allocated() / 2**30
        rows.append((label, one, many, gib))
        print(
            f"{label}: batch 1 {one:.1f} ms/token ({1000 / one:.0f} tokens/s), batch 18 "
            f"{many:.1f} ms/step ({18000 / many:.0f} tokens/s), {gib:.2f} GiB allocated",
            flush=True,
        )

    measure("bf16, no quantisation", model)
    model = quantize_nf4(model)
    measure("NF4 (bitsandbytes)", model)
    lora = LoraConfig(**LORA, init_lora_weights=False, task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, lora).eval()
    for n, p in peft_model.named_parameters():
        if "lora_" in n:
            p.data = p.data.float()
    measure("NF4 + LoRA r64, float32 adapter (as loaded)", peft_model)
    try:
        print(profile_step(peft_model), flush=True)
    except Exception as exc:  # the profile is a diagnosis; the timings go on without it
        print(f"profile failed: {type(exc).__name__}: {exc}", flush=True)
    for n, p in peft_model.named_parameters():
        if "lora_" in n:
            p.data = p.data.to(torch.bfloat16)
    measure("NF4 + LoRA r64, bf16 adapter", peft_model)

    def alarm(signum: int, frame: Any) -> None:
        raise CompileTimeout

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(args.compile_timeout)
    try:
        base = peft_model.get_base_model()
        base.generation_config.cache_implementation = "static"
        base.forward = torch.compile(base.forward, mode="reduce-overhead", dynamic=False)
        t0 = time.perf_counter()
        # the warm-up compiles: the same length, so the static cache keeps its shape
        measure(
            "NF4 + LoRA bf16, static cache + torch.compile",
            peft_model,
            batches=(1,),
            warm=args.tokens,
        )
        print(f"(compile and both runs: {time.perf_counter() - t0:.0f} s)", flush=True)
    except CompileTimeout:
        print(f"torch.compile: not done within {args.compile_timeout} s", flush=True)
    except Exception as exc:  # a lever that fails is a result too
        print(f"torch.compile failed: {type(exc).__name__}: {str(exc)[:400]}", flush=True)
    finally:
        signal.alarm(0)
    print(f"\nMistral-7B decode on {name}, random weights, {args.tokens} new tokens")
    print("| variant | batch 1 ms/token | batch 18 ms/step | GiB allocated |")
    print("|---|---|---|---|")
    for label, one, many, gib in rows:
        print(f"| {label} | {one:.1f} | {many:.1f} | {gib:.2f} |")


if __name__ == "__main__":
    main()
