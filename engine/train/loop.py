"""The training loop (accelerate): one code path for the CPU, one GPU and several.

Data order is a seeded permutation per epoch; the position (micro-batches consumed) is saved
with each checkpoint, so a resumed run sees the same batches an uninterrupted one would.
Accumulation, bf16 and multi-GPU (DDP or DeepSpeed ZeRO-2 through ``accelerate launch``) come
from accelerate; each loss is logged on its own to ``log.csv`` (and TensorBoard when the
``tensorboard`` package is installed).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.backends.base import Progress, no_progress
from engine.data.chunks import MissingCaptionError
from engine.data.features import FeatureSet
from engine.data.teacher import LABEL_SETS
from engine.errors import EngineError
from engine.train.config import TrainConfig, TrainConfigError
from engine.train.model import Batch, TrainModel

log = logging.getLogger(__name__)


class OutOfMemory(EngineError):
    """The GPU ran out of memory; the message names the knobs that lower it."""

    code = "out_of_memory"


@dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        model_dir: the final model folder (release layout), None when stopped early.
        preset: the preset written for it.
        steps: optimizer steps done.
        history: one dict of losses per logged step.
        eval: held-out metrics (``key_accuracy``...), empty without a holdout.
        model: the trained :class:`TrainModel`.
    """

    model_dir: Path | None
    preset: Path | None
    steps: int
    history: list[dict[str, float]] = field(default_factory=list)
    eval: dict[str, float] = field(default_factory=dict)
    model: Any = None


def split(data: FeatureSet, holdout: float, *, seed: int) -> tuple[list[int], list[int]]:
    """Train and held-out chunk indices, split by song (no song is in both)."""
    songs = sorted({c["song"] for c in data.chunks})
    g = torch.Generator().manual_seed(seed)
    order = [songs[i] for i in torch.randperm(len(songs), generator=g).tolist()]
    held = set(order[: math.ceil(holdout * len(songs))] if holdout > 0 else [])
    train = [i for i, c in enumerate(data.chunks) if c["song"] not in held]
    test = [i for i, c in enumerate(data.chunks) if c["song"] in held]
    return train, test


def make_batch(data: FeatureSet, index: list[int]) -> Batch:
    """The chunks at ``index`` as a :class:`Batch`."""
    sub = data.subset(index)
    return Batch(
        features=sub.features,
        frames=sub.frames,
        targets=sub.targets,
        known=sub.known,
        captions=[c["captions"] for c in sub.chunks],  # type: ignore[misc]
        lyrics=[c["lyrics"] for c in sub.chunks],
        songs=[c["song"] for c in sub.chunks],
    )


def micro_batch(
    order_for: Callable[[int], list[int]], n: int, bs: int, micro: int
) -> tuple[int, list[int]]:
    """Epoch and indices of global micro-batch ``micro`` (``n`` chunks, ``bs`` a batch)."""
    per_epoch = max(1, math.ceil(n / bs))
    epoch, b = divmod(micro, per_epoch)
    order = order_for(epoch)
    return epoch, order[b * bs : (b + 1) * bs]


def schedule(cfg: TrainConfig) -> Callable[[int], float]:
    """Learning-rate multiplier per optimizer step."""

    def factor(step: int) -> float:
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant":
            return 1.0
        span = max(1, cfg.steps - cfg.warmup_steps)
        t = min(1.0, (step - cfg.warmup_steps) / span)
        return 1.0 - t if cfg.schedule == "linear" else 0.5 * (1 + math.cos(math.pi * t))

    return factor


def train(
    cfg: TrainConfig,
    *,
    model: TrainModel,
    data: FeatureSet,
    progress: Progress = no_progress,
    stop_after: int | None = None,
) -> TrainResult:
    """Train ``model`` on ``data`` for ``cfg.steps`` optimizer steps (resuming when asked).

    Args:
        cfg: the train config.
        model: built by :func:`engine.train.main.build_model`.
        data: the feature cache.
        progress: ``(stage, done, total)``; stage ``"train"``.
        stop_after: stop (with a checkpoint) after this many steps, as an interruption would.

    Raises:
        MissingCaptionError: a chunk without a caption in a stage with the caption loss.
        OutOfMemory: naming batch size, accumulation, 4-bit and gradient checkpointing.
    """
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    from engine.train import checkpointing as ck

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.uses_llm:
        for c in data.chunks:
            if not any(x.strip() for x in c["captions"]):
                raise MissingCaptionError(
                    f"chunk {c['id']!r} (row {c['row_number']}, id {c['row']!r}, {c['audio']}) "
                    f"has no caption; stage {cfg.stage!r} trains the caption loss"
                )
    train_idx, test_idx = split(data, cfg.holdout, seed=cfg.seed)
    acc = Accelerator(
        gradient_accumulation_steps=cfg.grad_accum,
        mixed_precision="bf16" if cfg.precision == "bf16" else "no",
        cpu=cfg.device == "cpu",
        # the aligner gets no gradient in a batch without two songs with lyrics
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    ds = acc.state.deepspeed_plugin
    if ds is not None:
        ds.deepspeed_config["train_micro_batch_size_per_gpu"] = cfg.batch_size
    params = [p for _, p in model.trainable()]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule(cfg))
    model, optimizer = acc.prepare(model, optimizer)
    inner: TrainModel = acc.unwrap_model(model)

    step, micro = 0, 0
    torch.manual_seed(
        cfg.seed + acc.process_index
    )  # dropout; replaced by the saved state on resume
    resume_from = (
        ck.latest_checkpoint(out)
        if cfg.resume == "auto"
        else (Path(cfg.resume) if cfg.resume else None)
    )
    if resume_from is not None:
        ck.check_resume(resume_from, inner, cfg)
        ck.load_model_weights(resume_from, inner)
        state = ck.load_state(
            resume_from,
            optimizer=optimizer.optimizer if hasattr(optimizer, "optimizer") else optimizer,
            scheduler=scheduler,
        )
        step, micro = int(state["step"]), int(state["micro"])
        log.info("resumed from %s at step %d", resume_from, step)

    world, rank = acc.num_processes, acc.process_index
    gbs = cfg.batch_size * world

    def order_for(epoch: int) -> list[int]:
        g = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        return [train_idx[i] for i in torch.randperm(len(train_idx), generator=g).tolist()]

    logger = _Logger(out, enabled=acc.is_main_process, resumed_at=step if resume_from else None)
    history: list[dict[str, float]] = []
    sums: dict[str, float] = {}
    t0 = time.perf_counter()
    last = step
    model.train()
    end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
    try:
        while step < end:
            for _ in range(cfg.grad_accum):
                epoch, idx = micro_batch(order_for, len(train_idx), gbs, micro)
                micro += 1
                mine = idx[rank::world] or idx[:1]
                batch = make_batch(data, mine).to(acc.device)
                with acc.accumulate(model), acc.autocast():
                    losses = model(batch, epoch=epoch)  # the wrapper: DDP/DeepSpeed sync
                    acc.backward(losses["total"])
                    if acc.sync_gradients and cfg.max_grad_norm > 0:
                        acc.clip_grad_norm_(params, cfg.max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad()
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach()) / cfg.grad_accum
            scheduler.step()
            step += 1
            progress("train", step, cfg.steps)
            if step % cfg.log_every == 0 or step == end:
                rate = (step - last) / max(time.perf_counter() - t0, 1e-9)
                row = {
                    "step": float(step),
                    "lr": float(scheduler.get_last_lr()[0]),
                    "steps_per_s": rate,
                }
                row["temperature"] = float(inner.aligner.temperature.detach())
                n = cfg.log_every if step % cfg.log_every == 0 else (step - 1) % cfg.log_every + 1
                row.update({k: v / n for k, v in sums.items()})
                history.append(row)
                logger.write(row)
                sums, t0, last = {}, time.perf_counter(), step
            if (cfg.save_every and step % cfg.save_every == 0) or step == end:
                if acc.is_main_process and (step < cfg.steps or stop_after is not None):
                    folder = ck.save_model(
                        out / f"checkpoint-{step}", inner, label_sets=LABEL_SETS, config=cfg
                    )
                    ck.save_exact(folder, inner.projector)
                    ck.save_state(
                        folder,
                        optimizer=optimizer.optimizer
                        if hasattr(optimizer, "optimizer")
                        else optimizer,
                        scheduler=scheduler,
                        state={"step": step, "micro": micro},
                    )
                acc.wait_for_everyone()
    except torch.cuda.OutOfMemoryError as exc:
        raise OutOfMemory(out_of_memory_message(cfg)) from exc
    finally:
        logger.close()
    result = TrainResult(None, None, step, history, model=inner)
    if step < cfg.steps:
        return result
    if acc.is_main_process:
        result.model_dir = ck.save_model(out / "model", inner, label_sets=LABEL_SETS, config=cfg)
        result.preset = ck.write_preset(cfg, result.model_dir)
    if test_idx:
        result.eval = evaluate_heads(inner, data, test_idx, device=acc.device)
        if acc.is_main_process:
            (out / "eval.json").write_text(json.dumps(result.eval, indent=1), encoding="utf-8")
    return result


def out_of_memory_message(cfg: TrainConfig) -> str:
    """What to change after a CUDA out-of-memory error."""
    return (
        f"CUDA out of memory in stage {cfg.stage!r} with batch_size={cfg.batch_size}, "
        f"grad_accum={cfg.grad_accum}, gradient_checkpointing={cfg.gradient_checkpointing}. "
        "Lower batch_size (and raise grad_accum to keep the effective batch), set "
        'gradient_checkpointing = true, use stage = "qlora" (4-bit NF4 base), '
        'precision = "bf16", or fewer lora_targets / a smaller lora_r.'
    )


@torch.no_grad()
def evaluate_heads(
    model: TrainModel, data: FeatureSet, index: list[int], *, device: Any
) -> dict[str, float]:
    """Top-1 accuracy of the single-label heads (key, vocals) on chunks with known labels."""
    model.eval()
    batch = make_batch(data, index).to(device)
    from engine.models.heads import Pooled

    n, layers, _ = batch.features.shape
    out = model.projector(
        Pooled(
            batch.features * batch.frames[:, None, None],
            batch.features.new_zeros(n, layers, model.projector.config.backbone_dim),
            batch.frames,
        )
    )
    result: dict[str, float] = {"chunks": float(n)}
    for task in ("key", "vocals"):
        known = batch.known[task]
        if bool(known.any()):
            pred = out.logits[task][known].argmax(dim=-1)
            true = batch.targets[task][known].argmax(dim=-1)
            result[f"{task}_accuracy"] = float((pred == true).float().mean())
    lyrics = [batch.lyrics[i] for i in range(n)]
    if model.lm is not None and out.features is not None and all(w.strip() for w in lyrics):
        result.update(retrieval(model, out.features, lyrics))
    model.train()
    return result


def retrieval(model: TrainModel, features: torch.Tensor, lyrics: list[str]) -> dict[str, float]:
    """Audio-to-lyrics retrieval: how often a chunk's own lyrics rank first among the distinct
    lyrics of the set (cosine of the aligned embeddings), and that rate by chance."""
    texts = sorted(set(lyrics))
    embeds, mask = model.lyrics_embeddings(texts)
    a = torch.nn.functional.normalize(model.aligner.embed_audio(features), dim=-1)
    t = torch.nn.functional.normalize(model.aligner.embed_lyrics(embeds, mask), dim=-1)
    best = (a @ t.T).argmax(dim=-1).tolist()
    hits = [texts[j] == w for j, w in zip(best, lyrics, strict=True)]
    return {"lyrics_r1": sum(hits) / len(hits), "lyrics_r1_chance": 1.0 / len(texts)}


class _Logger:
    """``log.csv`` and TensorBoard when installed.

    On resume at step ``resumed_at`` the rows after that step (logged after the checkpoint, by
    the run that stopped) are dropped, so every step appears once.
    """

    def __init__(self, out: Path, *, enabled: bool, resumed_at: int | None) -> None:
        self.enabled = enabled
        self.path = out / "log.csv"
        self.fields: list[str] | None = None
        self.tb: Any = None
        if not enabled:
            return
        if resumed_at is None and self.path.exists():
            self.path.unlink()
        elif resumed_at is not None and self.path.exists():
            self._truncate(resumed_at)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            log.info("tensorboard is not installed; logging to %s only", self.path)
        else:
            self.tb = SummaryWriter(str(out / "tb"))

    def _truncate(self, step: int) -> None:
        with self.path.open(newline="", encoding="utf-8") as f:
            lines = f.read().splitlines(keepends=True)
        kept = lines[:1] + [ln for ln in lines[1:] if float(ln.split(",", 1)[0]) <= step]
        self.path.write_text("".join(kept), encoding="utf-8")

    def write(self, row: dict[str, float]) -> None:
        if not self.enabled:
            return
        new = not self.path.exists()
        with self.path.open("a", newline="", encoding="utf-8") as f:
            if self.fields is None:
                bce = [f"bce/{t}" for t in LABEL_SETS]
                fixed = ["step", "lr", "steps_per_s", "temperature", "total", "lm", *bce]
                self.fields = [*fixed, "info_nce"]
            w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore", restval="")
            if new:
                w.writeheader()
            w.writerow(row)
        if self.tb is not None:
            for k, v in row.items():
                if k != "step":
                    self.tb.add_scalar(k, v, int(row["step"]))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


__all__ = ["OutOfMemory", "TrainConfigError", "TrainResult", "train"]
