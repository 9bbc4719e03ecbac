"""Checkpoints: the model in the SonicVerse release's layout, the resume state, the preset.

A model folder holds what the ``sonicverse`` backend's loader reads, safetensors only:

- ``non_lora_trainables.safetensors``: the projector and heads under the release's names
  (``base_model.model.model.audio_mert_lmm_projector.key_detection.hidden_layer_1.weight``...;
  :func:`export_sonicverse_heads` is the inverse of
  :func:`engine.models.checkpoint.import_sonicverse_heads`);
- ``adapter_config.json`` + ``adapter_model.safetensors`` (LoRA stages, peft's format);
- ``sonicverse_heads.json``: our label sets and ``backbone_on_pooled`` (the release has none);
- ``aligner.safetensors``: the audio-lyrics alignment maps (not needed to serve).

A checkpoint folder ``checkpoint-<step>/`` adds ``optimizer.safetensors`` (AdamW's moments,
flattened, and the RNG state), ``trainer_state.json`` (step, data position, scheduler,
optimizer groups) and ``exact_weights.safetensors`` (the heads' hidden weights as trained: the
release's layout stores them divided by ``pad_frames``, which rounds), so a resumed run
continues exactly where it stopped. :func:`check_resume` refuses a checkpoint that does not fit
the config before anything is loaded.
"""

from __future__ import annotations

import json
import logging
import re
import tomllib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from engine.models.checkpoint import SONICVERSE_TASKS
from engine.models.heads import MultiTaskProjector
from engine.train.config import TrainConfigError

log = logging.getLogger(__name__)

RESUME_KEYS = (
    "stage",
    "lr",
    "batch_size",
    "grad_accum",
    "weight_decay",
    "warmup_steps",
    "schedule",
    "seed",
    "holdout",
)
"""Train config keys a resumed run must share with the checkpoint: the optimizer, scheduler and
data order it restores were made with them."""

EXACT = "exact_weights.safetensors"

RELEASE_PREFIX = "base_model.model.model.audio_mert_lmm_projector."
"""Where the release's ``non_lora_trainables`` keep the projector."""

_OURS_TO_THEIRS = {ours: theirs for theirs, ours in SONICVERSE_TASKS.items()}


def export_sonicverse_heads(projector: MultiTaskProjector) -> dict[str, torch.Tensor]:
    """The projector's weights under the release's names (see the module doc).

    The heads' layer weights must be uniform (they are frozen at 0 in training): the release
    stores a degenerate aggregator, so nothing else could be written.
    """
    c = projector.config
    sd = {k: v.detach().float().cpu() for k, v in projector.state_dict().items()}
    out = {
        "backbone.hidden_layer_1.weight": sd["backbone.weight"],
        "backbone.hidden_layer_1.bias": sd["backbone.bias"],
    }
    scale = float(c.pad_frames or 1)
    for t in c.tasks:
        theirs = _OURS_TO_THEIRS[t.name]
        if bool(sd[f"heads.{t.name}.layer_logits"].abs().gt(0).any()):
            raise ValueError(f"heads.{t.name}.layer_logits are not uniform; cannot export")
        out[f"{theirs}.aggregator"] = torch.zeros(c.layers, 1, 1)
        out[f"{theirs}.hidden_layer_1.weight"] = sd[f"heads.{t.name}.hidden.weight"] / scale
        out[f"{theirs}.hidden_layer_1.bias"] = sd[f"heads.{t.name}.hidden.bias"]
        out[f"{theirs}.output.weight"] = sd[f"heads.{t.name}.output.weight"]
        out[f"{theirs}.output.bias"] = sd[f"heads.{t.name}.output.bias"]
        if c.llm_dim is not None:
            out.update(_mlp(sd, f"task_tokens.{t.name}", f"{theirs}_projector"))
    if c.llm_dim is not None:
        out["lmm_projector.aggregator"] = sd["content.layer_logits"].clone()
        out.update(_mlp(sd, "content.mlp", "lmm_projector"))
    return {RELEASE_PREFIX + k: v.contiguous() for k, v in out.items()}


def _mlp(sd: dict[str, torch.Tensor], ours: str, theirs: str) -> dict[str, torch.Tensor]:
    out = {}
    for i in range(sd[f"{ours}.w1"].shape[0]):
        out[f"{theirs}.layers.{i}.1.weight"] = sd[f"{ours}.w1"][i]
        out[f"{theirs}.layers.{i}.1.bias"] = sd[f"{ours}.b1"][i]
        out[f"{theirs}.layers.{i}.3.weight"] = sd[f"{ours}.w2"][i]
        out[f"{theirs}.layers.{i}.3.bias"] = sd[f"{ours}.b2"][i]
    return out


def save_model(folder: Path, model: Any, *, label_sets: dict[str, Any], config: Any) -> Path:
    """Write the model folder (see the module doc); returns it."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        export_sonicverse_heads(model.projector), str(folder / "non_lora_trainables.safetensors")
    )
    aligner = {
        k: v.detach().float().cpu().contiguous() for k, v in model.aligner.state_dict().items()
    }
    save_file(aligner, str(folder / "aligner.safetensors"))
    if config.uses_lora and model.llm is not None:
        model.llm.save_pretrained(str(folder), safe_serialization=True)
    meta = {
        "backbone_on_pooled": model.projector.config.backbone_on_pooled,
        "labels": {k: list(v) for k, v in label_sets.items()},
        "heads": model.projector.config.to_dict(),
        "stage": config.stage,
        "train_config": asdict(config),
    }
    (folder / "sonicverse_heads.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return folder


def check_resume(folder: Path, model: Any, config: Any) -> None:
    """Refuse to resume from ``folder`` when it does not fit ``model`` and ``config``.

    Raises:
        TrainConfigError: one line naming the folder and every mismatch: the heads' sizes
            (another model size), or a changed :data:`RESUME_KEYS` value.
    """
    meta_path = folder / "sonicverse_heads.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TrainConfigError(f"cannot resume from {folder}: {exc}") from None
    trained = meta.get("train_config", {})
    changed = [
        f"{k}={trained[k]!r} there, {getattr(config, k)!r} here"
        for k in RESUME_KEYS
        if k in trained and trained[k] != getattr(config, k)
    ]
    if changed:
        raise TrainConfigError(
            f"cannot resume from {folder} with a changed {', '.join(changed)}: the optimizer, "
            "scheduler and data order it restores were made with the old values; put them back, "
            'or start afresh (another out folder, or resume = "")'
        )
    saved, now = meta.get("heads", {}), model.projector.config.to_dict()
    sizes = [
        f"{k}={saved[k]!r} there, {now[k]!r} here"
        for k in sorted(now)
        if k in saved and saved[k] != now[k] and k != "label_sets"
    ]
    if sizes:
        raise TrainConfigError(
            f"cannot resume from {folder}: its model has another size ({'; '.join(sizes)}); "
            'use another out folder, or resume = "" to start afresh'
        )


def load_model_weights(folder: Path, model: Any) -> None:
    """Load a model folder written by :func:`save_model` into ``model`` (to resume); the
    checkpoint's exact weights, when there, replace the release layout's rounded ones.

    Raises:
        TrainConfigError: the weights do not fit the model (named with the folder).
    """
    from safetensors.torch import load_file

    from engine.models.checkpoint import import_sonicverse_heads

    c = model.projector.config
    _, state = import_sonicverse_heads(
        load_file(str(folder / "non_lora_trainables.safetensors")),
        pad_frames=int(c.pad_frames or 1),
        with_tokens=c.llm_dim is not None,
    )
    if (folder / EXACT).is_file():
        state.update(load_file(str(folder / EXACT)))
    try:
        model.projector.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()
        raise TrainConfigError(
            f"cannot resume from {folder}: its weights do not fit this model ({first})"
        ) from None
    model.aligner.load_state_dict(load_file(str(folder / "aligner.safetensors")))
    adapter = folder / "adapter_model.safetensors"
    if adapter.is_file() and model.llm is not None:
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model.llm, load_file(str(adapter)))


def save_exact(folder: Path, projector: MultiTaskProjector) -> None:
    """The weights the release layout rounds (the heads' hidden weights), as trained."""
    from safetensors.torch import save_file

    exact = {
        k: v.detach().cpu().contiguous()
        for k, v in projector.state_dict().items()
        if k.startswith("heads.") and k.endswith(".hidden.weight")
    }
    save_file(exact, str(folder / EXACT))


def save_state(
    folder: Path, *, optimizer: torch.optim.Optimizer, scheduler: Any, state: dict[str, Any]
) -> None:
    """Optimizer moments (safetensors), scheduler, step, data position and RNG."""
    from safetensors.torch import save_file

    opt = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {"rng.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    scalars: dict[str, Any] = {}
    for pid, st in opt["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"state.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{k}"] = v
    save_file(tensors, str(folder / "optimizer.safetensors"))
    doc = {
        **state,
        "param_groups": opt["param_groups"],
        "optimizer_scalars": scalars,
        "scheduler": scheduler.state_dict(),
    }
    (folder / "trainer_state.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")


def load_state(folder: Path, *, optimizer: torch.optim.Optimizer, scheduler: Any) -> dict[str, Any]:
    """Restore what :func:`save_state` wrote; returns the step and data position."""
    from safetensors.torch import load_file

    doc = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    tensors = load_file(str(folder / "optimizer.safetensors"))
    state: dict[int, dict[str, Any]] = {}
    for name, v in tensors.items():
        m = re.fullmatch(r"state\.(\d+)\.(.+)", name)
        if m:
            state.setdefault(int(m[1]), {})[m[2]] = v
    for key, v in doc["optimizer_scalars"].items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    optimizer.load_state_dict({"state": state, "param_groups": doc["param_groups"]})
    scheduler.load_state_dict(doc["scheduler"])
    torch.set_rng_state(tensors["rng.cpu"])
    if torch.cuda.is_available():
        cuda = [
            tensors[f"rng.cuda.{i}"]
            for i in range(torch.cuda.device_count())
            if f"rng.cuda.{i}" in tensors
        ]
        if cuda:
            torch.cuda.set_rng_state_all(cuda)
    return {
        k: v for k, v in doc.items() if k not in ("param_groups", "optimizer_scalars", "scheduler")
    }


def latest_checkpoint(out: Path) -> Path | None:
    """The ``checkpoint-<step>`` folder with the highest step holding a complete state."""
    found = [
        (int(p.name.split("-")[1]), p)
        for p in out.glob("checkpoint-*")
        if p.name.split("-")[1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return max(found)[1] if found else None


def write_preset(config: Any, model_folder: Path) -> Path:
    """A preset serving the trained model: the training preset with its checkpoint replaced.

    Written as ``<out>/<name>.toml``; copy it (or point ``$SONICVERSE_PRESETS`` at ``out``)
    and run ``sonicverse engine --preset <name>``.
    """
    from engine import presets

    base = presets.available().get(config.preset)
    path = Path(config.preset) if base is None else base
    table = tomllib.loads(path.read_text(encoding="utf-8"))
    table["name"] = config.name
    table["description"] = f"trained with engine.train ({config.stage}) from {config.preset}"
    sv = table.setdefault("sonicverse", {})
    sv["checkpoint"] = {
        "variant": "pretrained",
        "path": str(model_folder.resolve()),
        "pad_frames": config.pad_frames,
    }
    llm = sv.setdefault("llm", {})
    if config.stage == "heads":
        llm.clear()
        llm["enabled"] = False
    else:
        llm["adapter"] = config.uses_lora
    out = Path(config.out) / f"{config.name}.toml"
    out.write_text(
        f"# Written by `sonicverse train` ({config.stage}); serve with\n"
        f"#   SONICVERSE_PRESETS={Path(config.out).resolve()} "
        f"sonicverse engine --preset {config.name}\n" + dumps_toml(table),
        encoding="utf-8",
    )
    presets.load(out)  # what was written must load
    return out


def dumps_toml(table: dict[str, Any]) -> str:
    """A TOML document of nested tables of strings, numbers, booleans and lists of those."""
    lines: list[str] = []

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, list | tuple):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(f"cannot write {v!r} as TOML")

    def section(prefix: str, t: dict[str, Any]) -> None:
        scalars = {k: v for k, v in t.items() if not isinstance(v, dict)}
        if prefix and (scalars or not any(isinstance(v, dict) for v in t.values())):
            lines.append(f"\n[{prefix}]")
        lines.extend(f"{k} = {value(v)}" for k, v in scalars.items())
        for k, v in t.items():
            if isinstance(v, dict):
                section(f"{prefix}.{k}" if prefix else k, v)

    section("", table)
    return "\n".join(lines).lstrip("\n") + "\n"
