"""The training config: a typed TOML file, parsed strictly like presets.

Example (``train.toml``)::

    data = "data/"          # what `sonicverse dataset build` wrote
    out = "runs/my-model"
    preset = "sonicverse-7b-nf4"
    stage = "qlora"
    steps = 2000
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from engine.errors import EngineError, PresetError

Stage = Literal["heads", "projector", "lora", "qlora"]
STAGES: tuple[str, ...] = ("heads", "projector", "lora", "qlora")


class TrainConfigError(EngineError):
    """A training config that cannot run here (bad keys, or a stage this machine cannot do)."""

    code = "bad_train_config"


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; every field is a key of the TOML file."""

    data: str  # dataset folder written by `sonicverse dataset build`
    out: str  # run folder: checkpoints, logs, the final model and its preset
    stage: Stage = "heads"  # heads | projector (LLM frozen) | lora | qlora (NF4 base, CUDA)
    preset: str = "sonicverse-tiny"  # sonicverse preset naming the MERT and LLM to train with
    name: str = "my-model"  # name of the preset written for the result
    init_from: str = ""  # a checkpoint folder (release layout) to start the projector from
    steps: int = 100  # optimizer steps
    batch_size: int = 8  # chunks per micro-batch (per device)
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 1e-3  # peak learning rate (AdamW)
    weight_decay: float = 0.0  # AdamW weight decay
    warmup_steps: int = 0  # linear warm-up steps
    schedule: Literal["constant", "linear", "cosine"] = "cosine"  # decay after warm-up
    max_grad_norm: float = 1.0  # gradient clipping (0: off)
    seed: int = 0  # data order, initial weights, dropout
    holdout: float = 0.0  # fraction of songs kept out of training for the eval at the end
    heads_weight: float = 0.1  # weight of each head's BCE (SonicVerse: 0.1)
    lm_weight: float = 1.0  # weight of the caption LM loss
    info_nce_weight: float = 0.02  # weight of the audio-lyrics InfoNCE (ALCAP: 0.02)
    temperature: float = 0.07  # InfoNCE temperature (initial value; learned)
    align_dim: int = 128  # width of the shared audio-lyrics embedding
    instruction: str = "Describe the music."  # caption prompt (lyrics are added when known)
    max_caption_tokens: int = 96  # captions are cut to this many tokens
    backbone_dim: int = 512  # heads' shared layer (SonicVerse: 512)
    head_hidden_dim: int = 256  # each head's hidden layer (SonicVerse: 256)
    projector_hidden_dim: int = 4096  # hidden size of the token MLPs (SonicVerse: 4096)
    content_tokens: int = 40  # LLM tokens from the audio features (SonicVerse: 40)
    task_tokens: int = 4  # LLM tokens per head (SonicVerse: 4)
    pad_frames: int = 760  # pooling divides by at least this many frames (SonicVerse: 760)
    lora_r: int = 8  # LoRA rank
    lora_alpha: int = 16  # LoRA scale numerator
    lora_dropout: float = 0.05  # LoRA dropout
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")  # LoRA modules
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16 autocast (CUDA or a bf16 CPU)
    gradient_checkpointing: bool = False  # recompute LLM activations in backward (less memory)
    device: str = ""  # "" lets accelerate choose (CUDA when there is one); "cpu" forces it
    log_every: int = 10  # steps between log lines (CSV and TensorBoard)
    save_every: int = 0  # steps between checkpoints (0: only at the end)
    resume: str = "auto"  # "auto": the newest checkpoint in out; a folder; "" to start afresh
    extra: dict[str, str] = field(default_factory=dict)  # free notes copied into the run log

    def __post_init__(self) -> None:
        for name, lo, hi in (
            ("steps", 1, 10**8),
            ("batch_size", 1, 65536),
            ("grad_accum", 1, 65536),
            ("lora_r", 1, 4096),
            ("align_dim", 1, 65536),
            ("content_tokens", 1, 4096),
            ("task_tokens", 1, 4096),
            ("log_every", 1, 10**8),
            ("save_every", 0, 10**8),
        ):
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise PresetError(f"{name}={value!r} is outside the valid range [{lo}, {hi}]")
        for name in ("lr", "temperature"):
            if not getattr(self, name) > 0:
                raise PresetError(f"{name}={getattr(self, name)!r} must be > 0")
        if not 0.0 <= self.holdout < 1.0:
            raise PresetError(f"holdout={self.holdout!r} is outside the valid range [0, 1)")

    @property
    def uses_llm(self) -> bool:
        """Whether the stage trains through the LLM (the caption loss)."""
        return self.stage != "heads"

    @property
    def uses_lora(self) -> bool:
        """Whether the stage adds a LoRA adapter."""
        return self.stage in ("lora", "qlora")


def load(path: str | Path, **overrides: object) -> TrainConfig:
    """Read a train config TOML strictly; ``overrides`` replace keys (e.g. from the CLI).

    Raises:
        TrainConfigError: unreadable file, unknown or missing keys, bad values.
    """

    p = Path(path)
    try:
        table = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TrainConfigError(f"train config {p}: {exc}") from exc
    table.update({k: v for k, v in overrides.items() if v is not None})
    return from_table(table, where=str(p))


def from_table(table: dict[str, object], *, where: str = "<train config>") -> TrainConfig:
    """A :class:`TrainConfig` from a parsed table (unknown or missing keys are errors)."""
    from engine.presets import build

    try:
        return build(TrainConfig, table, where=where)
    except PresetError as exc:
        raise TrainConfigError(str(exc)) from exc
