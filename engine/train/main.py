"""``sonicverse train --config train.toml`` and ``[accelerate launch] python -m engine.train``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.data.teacher import LABEL_SETS
from engine.errors import EngineError, ModelLoadError
from engine.train.config import TrainConfig, TrainConfigError

log = logging.getLogger(__name__)


def check_stage(cfg: TrainConfig) -> None:
    """Refuse a stage this machine cannot run, before anything is loaded.

    Raises:
        TrainConfigError: qlora without CUDA (naming the alternatives).
    """
    import torch

    if cfg.stage == "qlora" and (cfg.device == "cpu" or not torch.cuda.is_available()):
        raise TrainConfigError(
            'stage = "qlora" loads the LLM in 4-bit NF4 through bitsandbytes, which needs a '
            f"CUDA GPU (CUDA available={torch.cuda.is_available()}, device={cfg.device!r}). "
            "On this machine: stage = \"heads\" (trains what the 'sonicverse-cpu' preset "
            'serves), or stage = "lora" / "projector" with an unquantised LLM '
            '(precision = "fp32", enough memory for the whole LLM); the memory knobs are '
            "batch_size, grad_accum and gradient_checkpointing."
        )
    if cfg.stage == "qlora":
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as exc:
            raise TrainConfigError(f'stage "qlora" needs bitsandbytes ({exc})') from exc


def build_model(cfg: TrainConfig, data: Any) -> Any:
    """The :class:`~engine.train.model.TrainModel` of the stage, from the preset's LLM."""
    import torch

    from engine import presets
    from engine.models import heads
    from engine.train.model import TrainModel, heads_config

    check_stage(cfg)
    p = presets.load(cfg.preset)
    if p.backend != "sonicverse":
        raise TrainConfigError(
            f"preset {cfg.preset!r} is a {p.backend} preset; name a sonicverse one"
        )
    lyrics = cfg.info_nce_weight > 0 and any(c["lyrics"].strip() for c in data.chunks)
    need_llm = cfg.uses_llm or (lyrics and p.options.llm.enabled)
    if lyrics and not need_llm:
        log.info("preset %s has no LLM: the lyrics alignment (InfoNCE) is skipped", cfg.preset)
    lm = load_llm(cfg, p.options) if need_llm else None
    hc = heads_config(
        cfg,
        layers=int(data.meta["layers"]),
        dim=int(data.meta["dim"]),
        llm_dim=lm.hidden_size if (lm is not None and cfg.uses_llm) else None,
        label_sets=LABEL_SETS,
    )
    projector = heads.build(hc, seed=cfg.seed)
    if cfg.init_from:
        init_projector(projector, Path(cfg.init_from))
    if lm is not None and cfg.uses_lora:
        lm.model = add_lora(cfg, lm.model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        return TrainModel(cfg, projector, lm)


def load_llm(cfg: TrainConfig, opts: Any) -> Any:
    """The preset's LLM, unquantised or NF4 (qlora), without the release's adapter."""
    import torch

    from engine.backends.sonicverse import resolve_device
    from engine.models import llm
    from engine.models.checkpoint import locate

    if opts.llm.variant == "tiny":
        if cfg.stage == "qlora":
            raise TrainConfigError(
                'stage "qlora" needs a pretrained LLM (the tiny one is not quantisable)'
            )
        return llm.tiny(seed=opts.seed)
    folder = locate(opts.llm.repo_id, path=opts.llm.path, required=("config.json",), what="LLM")
    dtype = torch.bfloat16 if cfg.precision == "bf16" or cfg.stage == "qlora" else torch.float32
    lm = llm.from_pretrained(
        folder,
        quantization="nf4" if cfg.stage == "qlora" else "none",
        device=resolve_device(cfg.device or None),
        dtype=dtype,
    )
    if cfg.stage == "qlora":
        from peft import prepare_model_for_kbit_training

        lm.model = prepare_model_for_kbit_training(
            lm.model, use_gradient_checkpointing=cfg.gradient_checkpointing
        )
    elif cfg.gradient_checkpointing:
        lm.model.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False}
        )
    return lm


def add_lora(cfg: TrainConfig, model: Any) -> Any:
    """``model`` wrapped with a fresh LoRA adapter (peft)."""
    import torch
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.lora_targets),
        task_type="CAUSAL_LM",
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        wrapped = get_peft_model(model, lora)
    if cfg.gradient_checkpointing:
        wrapped.enable_input_require_grads()
    return wrapped


def init_projector(projector: Any, folder: Path) -> None:
    """Start from a release-layout checkpoint (the SonicVerse release or one trained here)."""
    from engine.models.checkpoint import import_sonicverse_heads, read_state_dict

    files = sorted(folder.glob("non_lora_trainables.safetensors")) or sorted(
        folder.glob("non_lora_trainables.bin")
    )
    if not files:
        raise ModelLoadError(f"init_from={str(folder)!r}: no non_lora_trainables.safetensors/.bin")
    c = projector.config
    _, state = import_sonicverse_heads(
        read_state_dict(files), pad_frames=int(c.pad_frames or 1), with_tokens=c.llm_dim is not None
    )
    missing, unexpected = projector.load_state_dict(state, strict=False)
    if unexpected:
        raise ModelLoadError(
            f"init_from={str(folder)!r}: tensors that do not fit: {unexpected[:5]}"
        )
    log.info("projector initialised from %s (%d tensors new)", folder, len(missing))


def fit(cfg: TrainConfig, **kwargs: Any) -> Any:
    """Load the dataset, build the stage's model, train; returns the :class:`TrainResult`."""
    from engine.data import features
    from engine.train.loop import train

    data = features.load(cfg.data)
    model = build_model(cfg, data)
    return train(cfg, model=model, data=data, **kwargs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``sonicverse train``."""
    parser.add_argument("--config", required=True, help="the train config (.toml)")
    parser.add_argument("--stage", choices=["heads", "projector", "lora", "qlora"], help="override")
    parser.add_argument("--steps", type=int, help="override the config's steps")
    parser.add_argument("--out", help="override the config's run folder")
    parser.add_argument("--device", help="override the config's device (cpu, cuda)")


def run(args: argparse.Namespace) -> int:
    """Run ``sonicverse train``: 0 on success, 2 on an error a user can fix."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from engine.extras import require
    from engine.train.config import load

    err = Console(stderr=True)
    try:
        require("train", "sonicverse train")
        cfg = load(
            args.config, stage=args.stage, steps=args.steps, out=args.out, device=args.device
        )
        bar = Progress(
            "{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
        )

        def report(stage: str, done: int, total: int) -> None:
            if not bar.task_ids:  # the bar appears with the first step, never before an error
                bar.start()
                bar.add_task("train", total=total)
            bar.update(bar.task_ids[0], completed=done, total=total)

        try:
            result = fit(cfg, progress=report)
        finally:
            bar.stop()
    except EngineError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    if result.model_dir is not None:
        err.print(f"model: {result.model_dir}\npreset: {result.preset}", highlight=False)
    if result.eval:
        err.print(f"held-out: {result.eval}", highlight=False)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine.train --config train.toml`` (also under ``accelerate launch``)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="python -m engine.train", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
