"""Loading the SonicVerse models a preset names: one variant registry, nothing downloaded.

Each model (``mert``, ``llm``, ``projector``) has variants: ``pretrained`` reads real weights
from a local folder or the HF cache (:func:`engine.models.checkpoint.locate`, never a
download); ``tiny`` builds random models from configs, for tests. :data:`LOADERS` maps
``(model, variant)`` to its loader, and an unknown variant is refused listing the valid
ones. Every loader returns the model and its identity for the backend's fingerprint. The
option dataclasses are the preset's ``[sonicverse.mert]``, ``[sonicverse.checkpoint]`` and
``[sonicverse.llm]`` tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from engine.errors import ModelLoadError, PresetError, check_range

if TYPE_CHECKING:
    import torch

    from engine.models.heads import MultiTaskProjector
    from engine.models.llm import CaptionLM
    from engine.models.mert import Mert

Variant = Literal["pretrained", "tiny"]
DType = Literal["float32", "bfloat16", "float16"]


@dataclass(frozen=True)
class MertOptions:
    """The ``[sonicverse.mert]`` table: the audio encoder."""

    variant: Variant = "pretrained"  # "pretrained": weights on disk; "tiny": random, for tests
    repo_id: str = "m-a-p/MERT-v1-95M"  # looked up in $SONICVERSE_WEIGHTS and the HF cache
    path: str = ""  # a folder with config.json + weights; overrides repo_id when set
    dtype: DType = "float32"  # weight dtype on CUDA (always float32 on the CPU)
    chunk_s: float = 10.0  # window length in seconds (SonicVerse: 10 s chunks)
    batch_size: int = 8  # windows per encoder forward

    def __post_init__(self) -> None:
        check_range("sonicverse.mert.chunk_s", self.chunk_s, 1.0, 30.0)
        check_range("sonicverse.mert.batch_size", self.batch_size, 1, 256)


@dataclass(frozen=True)
class CheckpointOptions:
    """The ``[sonicverse.checkpoint]`` table: the projector, heads and LoRA adapter."""

    variant: Variant = "pretrained"  # "pretrained": the SonicVerse release; "tiny": random
    repo_id: str = "amaai-lab/SonicVerse"  # holds non_lora_trainables.bin + the LoRA adapter
    path: str = ""  # a folder with those files; overrides repo_id when set
    pad_frames: int = 760  # frames SonicVerse padded each clip to before pooling
    # The checkpoint's key classes in output order (names as "F# minor"); empty: the order of
    # engine.labels.KEYS. SonicVerse's code does not publish its order; see docs/weights.md.
    key_labels: tuple[str, ...] = ()
    vocals_labels: tuple[str, ...] = ()  # likewise for ("none", "male", "female")

    def __post_init__(self) -> None:
        check_range("sonicverse.checkpoint.pad_frames", self.pad_frames, 1, 100_000)
        if self.key_labels and len(self.key_labels) != 24:
            raise PresetError(f"checkpoint.key_labels has {len(self.key_labels)} names; need 24")
        if self.vocals_labels and len(self.vocals_labels) != 3:
            raise PresetError(
                f"checkpoint.vocals_labels has {len(self.vocals_labels)} names; need 3"
            )


@dataclass(frozen=True)
class LLMOptions:
    """The ``[sonicverse.llm]`` table: the captioning and narrating language model."""

    enabled: bool = True  # false: template captions and the rule-based narrative, no LLM
    variant: Variant = "pretrained"  # "pretrained": weights on disk; "tiny": random, for tests
    repo_id: str = "mistralai/Mistral-7B-Instruct-v0.1"  # SonicVerse's base LM
    path: str = ""  # a folder with the LM's config, weights and tokenizer; overrides repo_id
    adapter: bool = True  # apply the checkpoint's LoRA adapter when captioning
    quantization: Literal["nf4", "none"] = "nf4"  # nf4: 4-bit bitsandbytes, CUDA only
    dtype: DType = "bfloat16"  # compute dtype (nf4) or weight dtype (none)
    instruction: str = "Describe the music."  # caption prompt; the audio tokens follow it
    max_new_tokens: int = 128  # caption length limit, tokens
    narrative: bool = True  # write the narrative with the LLM (false: rule-based)
    narrative_max_new_tokens: int = 600  # narrative length limit, tokens

    def __post_init__(self) -> None:
        check_range("sonicverse.llm.max_new_tokens", self.max_new_tokens, 1, 4096)
        check_range(
            "sonicverse.llm.narrative_max_new_tokens", self.narrative_max_new_tokens, 1, 8192
        )


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype named in a preset (``"bfloat16"`` -> ``torch.bfloat16``)."""
    import torch

    dtype: torch.dtype = getattr(torch, name)  # a DType literal, checked by the preset
    return dtype


def resolve_device(device: str | None) -> torch.device:
    """``device`` as a torch device; None picks CUDA when available, else the CPU."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ModelLoadError(f"device={device!r} is not a torch device ({exc})") from exc


def folder_identity(folder: Path) -> list[tuple[str, int, int]]:
    """What identifies a weights folder in a fingerprint: each file's name, size, mtime.

    HF snapshot folders are named by commit, so the resolved path changes with the weights.
    """
    out = []
    for f in sorted(folder.iterdir()):
        if f.is_file():
            st = f.stat()
            out.append((f.name, st.st_size, st.st_mtime_ns))
    return out


def check_quantization(quantization: str, device: torch.device) -> None:
    """:func:`engine.models.llm.check_quantization` (NF4 needs CUDA), importing torch only
    when called."""
    from engine.models import llm

    llm.check_quantization(quantization, device)  # type: ignore[arg-type]


# --- MERT ---------------------------------------------------------------------------------


def _tiny_mert(opts: MertOptions, *, device: torch.device, seed: int) -> tuple[Mert, Any]:
    from engine.models import mert

    m = mert.tiny(seed=seed)
    m.model.to(device)  # type: ignore[arg-type]
    return m, {"variant": "tiny", "seed": seed}


def _pretrained_mert(opts: MertOptions, *, device: torch.device, seed: int) -> tuple[Mert, Any]:
    import torch

    from engine.models import mert
    from engine.models.checkpoint import locate

    folder = locate(
        opts.repo_id,
        path=opts.path,
        required=("config.json",),
        any_of=("model*.safetensors", "pytorch_model*.bin"),
        what="MERT encoder",
    )
    dtype = torch_dtype(opts.dtype) if device.type == "cuda" else torch.float32
    m = mert.from_pretrained(folder, device=device, dtype=dtype)
    return m, {"folder": str(folder.resolve()), "files": folder_identity(folder)}


# --- the LLM ------------------------------------------------------------------------------


def _tiny_llm(
    opts: LLMOptions, *, device: torch.device, adapter: Path | None, seed: int
) -> tuple[CaptionLM, Any]:
    from engine.models import llm

    lm = llm.tiny(seed=seed)
    lm.model.to(device)
    ident: dict[str, Any] = {"variant": "tiny", "seed": seed}
    if adapter is not None:  # a tiny LLM fine-tuned by engine.train
        lm.model = llm.with_adapter(lm.model, adapter)
        ident["adapter"] = folder_identity(adapter)
    return lm, ident


def _pretrained_llm(
    opts: LLMOptions, *, device: torch.device, adapter: Path | None, seed: int
) -> tuple[CaptionLM, Any]:
    from engine.models import llm
    from engine.models.checkpoint import locate

    folder = locate(
        opts.repo_id,
        path=opts.path,
        required=("config.json",),
        any_of=("*.safetensors", "pytorch_model*.bin"),
        what="LLM",
    )
    lm = llm.from_pretrained(
        folder,
        adapter=adapter,
        quantization=opts.quantization,
        device=device,
        dtype=torch_dtype(opts.dtype),
    )
    ident: dict[str, Any] = {"folder": str(folder.resolve()), "files": folder_identity(folder)}
    if adapter is not None:
        ident["adapter"] = folder_identity(adapter)
    return lm, ident


def _tiny_llm_hidden_size(opts: LLMOptions) -> int:
    from engine.models import llm

    return llm.TINY_HIDDEN_SIZE


def _pretrained_llm_hidden_size(opts: LLMOptions) -> int:
    from engine.models.checkpoint import locate

    folder = locate(opts.repo_id, path=opts.path, required=("config.json",), what="LLM")
    try:
        return int(json.loads((folder / "config.json").read_text(encoding="utf-8"))["hidden_size"])
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"{folder}/config.json: no readable hidden_size ({exc})") from exc


# --- the projector and heads --------------------------------------------------------------

ProjectorLoad = tuple["MultiTaskProjector", Path | None, Any]


def _tiny_projector(
    opts: CheckpointOptions,
    *,
    mert: Mert,
    llm_dim: int | None,
    device: torch.device,
    dtype: torch.dtype,
    seed: int,
) -> ProjectorLoad:
    from engine.models import heads

    config = heads.HeadsConfig(
        layers=mert.layers,
        input_dim=mert.dim,
        backbone_dim=16,
        head_hidden_dim=16,
        llm_dim=llm_dim,
        projector_hidden_dim=32,
        content_tokens=4,
        task_tokens=2,
        pad_frames=opts.pad_frames,
    )
    p = heads.build(config, seed=seed).eval().to(device=device, dtype=dtype)
    return p, None, {"variant": "tiny", "seed": seed}


def _pretrained_projector(
    opts: CheckpointOptions,
    *,
    mert: Mert,
    llm_dim: int | None,
    device: torch.device,
    dtype: torch.dtype,
    seed: int,
) -> ProjectorLoad:
    from engine.models import heads
    from engine.models.checkpoint import import_sonicverse_heads, locate, read_state_dict

    folder = locate(
        opts.repo_id,
        path=opts.path,
        required=(),
        any_of=("non_lora_trainables.*",),
        what="SonicVerse checkpoint",
    )
    files = sorted(folder.glob("non_lora_trainables.safetensors")) or sorted(
        folder.glob("non_lora_trainables.bin")
    )
    if not files:
        raise ModelLoadError(f"{folder}: no non_lora_trainables.safetensors or .bin")
    config, state = import_sonicverse_heads(
        read_state_dict(files),
        pad_frames=opts.pad_frames,
        with_tokens=llm_dim is not None,
        key_labels=opts.key_labels or None,
        vocals_labels=opts.vocals_labels or None,
    )
    if (config.layers, config.input_dim) != (mert.layers, mert.dim):
        raise ModelLoadError(
            f"{folder}: the heads expect {config.layers} encoder layers of {config.input_dim} "
            f"dims but the MERT loaded gives {mert.layers} x {mert.dim}; use the MERT the "
            "checkpoint was trained with (m-a-p/MERT-v1-95M)"
        )
    if llm_dim is not None and config.llm_dim != llm_dim:
        raise ModelLoadError(
            f"{folder}: the projector writes {config.llm_dim}-dim tokens but the LLM's hidden "
            f"size is {llm_dim}; use the LLM the checkpoint was trained with"
        )
    config = _trained_here(folder, config)
    p = heads.build(config)
    p.load_state_dict(state, strict=True)
    p = p.eval().to(device=device, dtype=dtype)
    return p, folder, {"folder": str(folder.resolve()), "files": folder_identity(folder)}


def _trained_here(folder: Path, config: Any) -> Any:
    """``config`` with the settings a checkpoint written by :mod:`engine.train` records in
    ``sonicverse_heads.json`` (absent in the release: unchanged)."""
    sidecar = folder / "sonicverse_heads.json"
    if not sidecar.is_file():
        return config
    from engine.models.heads import TASK_LABELS

    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        on_pooled = bool(meta["backbone_on_pooled"])
        label_sets = {k: tuple(v) for k, v in meta["labels"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"{sidecar}: unreadable ({exc})") from exc
    for task, labels in label_sets.items():
        if TASK_LABELS.get(task) != labels:
            raise ModelLoadError(
                f"{sidecar}: the {task} head was trained on another label set "
                f"({len(labels)} labels) than engine.labels gives "
                f"({len(TASK_LABELS.get(task, ()))})"
            )
    return replace(config, backbone_on_pooled=on_pooled)


# --- the registry ---------------------------------------------------------------------------

LOADERS: dict[str, dict[str, Callable[..., Any]]] = {
    "mert": {"pretrained": _pretrained_mert, "tiny": _tiny_mert},
    "llm": {"pretrained": _pretrained_llm, "tiny": _tiny_llm},
    "llm_hidden_size": {"pretrained": _pretrained_llm_hidden_size, "tiny": _tiny_llm_hidden_size},
    "projector": {"pretrained": _pretrained_projector, "tiny": _tiny_projector},
}


def _loader(model: str, variant: str) -> Callable[..., Any]:
    """The loader of ``model``'s ``variant``.

    Raises:
        ModelLoadError: an unknown model or variant, naming the valid ones.
    """
    variants = LOADERS.get(model)
    if variants is None:
        raise ModelLoadError(f"no model {model!r}; valid models: {', '.join(LOADERS)}")
    if variant not in variants:
        raise ModelLoadError(
            f"{model} variant {variant!r} is unknown; valid variants: {', '.join(variants)}"
        )
    return variants[variant]


def load_mert(opts: MertOptions, *, device: torch.device, seed: int) -> tuple[Mert, Any]:
    """The encoder the preset names, and its identity for the fingerprint."""
    result: tuple[Mert, Any] = _loader("mert", opts.variant)(opts, device=device, seed=seed)
    return result


def llm_hidden_size(opts: LLMOptions) -> int:
    """The hidden size of the LLM the preset names, before loading its weights (the width of
    the audio tokens the projector writes)."""
    size: int = _loader("llm_hidden_size", opts.variant)(opts)
    return size


def load_llm(
    opts: LLMOptions, *, device: torch.device, adapter: Path | None, seed: int
) -> tuple[CaptionLM, Any]:
    """The LLM the preset names (with the LoRA ``adapter`` when given), and its identity."""
    result: tuple[CaptionLM, Any] = _loader("llm", opts.variant)(
        opts, device=device, adapter=adapter, seed=seed
    )
    return result


def load_projector(
    opts: CheckpointOptions,
    *,
    mert: Mert,
    llm_dim: int | None,
    device: torch.device,
    dtype: torch.dtype,
    seed: int,
) -> ProjectorLoad:
    """The multi-task projector (heads only when ``llm_dim`` is None), the checkpoint folder
    (for the LoRA adapter) and its identity for the fingerprint."""
    result: ProjectorLoad = _loader("projector", opts.variant)(
        opts, mert=mert, llm_dim=llm_dim, device=device, dtype=dtype, seed=seed
    )
    return result


__all__ = [
    "LOADERS",
    "CheckpointOptions",
    "LLMOptions",
    "MertOptions",
    "check_quantization",
    "folder_identity",
    "llm_hidden_size",
    "load_llm",
    "load_mert",
    "load_projector",
    "resolve_device",
    "torch_dtype",
]
