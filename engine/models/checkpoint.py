"""Finding weights on disk, reading weight files, and importing the released SonicVerse
checkpoint onto our modules.

Nothing here downloads: folders are an explicit path, ``$SONICVERSE_WEIGHTS/<name>`` or the
Hugging Face cache read with ``local_files_only=True``. When weights are missing the
:class:`~engine.errors.ModelLoadError` lists the folders searched and the command that fetches
them on a connected machine.

The SonicVerse release (``amaai-lab/SonicVerse``) is a PEFT LoRA adapter for
Mistral-7B-Instruct plus ``non_lora_trainables.bin``: the multi-task projector saved from
``model.named_parameters()``, named like
``base_model.model.model.audio_mert_lmm_projector.key_detection.hidden_layer_1.weight``.
:func:`import_sonicverse_heads` maps those names explicitly onto
:class:`engine.models.heads.MultiTaskProjector` (the table is in its docstring).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import ModelLoadError

if TYPE_CHECKING:
    import torch

    from engine.models.heads import HeadsConfig

log = logging.getLogger(__name__)

WEIGHTS_ENV = "SONICVERSE_WEIGHTS"
"""Environment variable: a folder holding one sub-folder per model, named like the repo
(``MERT-v1-95M``) or the repo id with ``/`` as ``--`` (``m-a-p--MERT-v1-95M``)."""

STATE_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")

# SonicVerse's task names (configs/tasks.json) -> ours (RegionAnnotation field names).
SONICVERSE_TASKS: dict[str, str] = {
    "instrument_detection": "instruments",
    "mood_detection": "moods",
    "genre_detection": "genres",
    "key_detection": "key",
    "vocals_detection": "vocals",
}


def download_command(repo_id: str, local_dir: str | os.PathLike[str] | None = None) -> str:
    """The command a user runs on a connected machine to fetch ``repo_id``."""
    target = local_dir if local_dir is not None else f"<folder>/{repo_id.split('/')[-1]}"
    return f"hf download {repo_id} --local-dir {target}"


def search_folders(repo_id: str, *, path: str = "") -> list[Path]:
    """The folders :func:`locate` tries for ``repo_id``, in order (the HF cache excluded)."""
    if path:
        return [Path(path).expanduser()]
    folders: list[Path] = []
    root = os.environ.get(WEIGHTS_ENV, "")
    if root:
        base = Path(root).expanduser()
        folders += [base / repo_id.split("/")[-1], base / repo_id.replace("/", "--")]
    return folders


def locate(
    repo_id: str,
    *,
    path: str = "",
    required: Sequence[str] = ("config.json",),
    any_of: Sequence[str] = (),
    what: str = "weights",
) -> Path:
    """Find a local folder holding ``repo_id``'s files, without any network access.

    Args:
        repo_id: Hugging Face repo id, e.g. ``"m-a-p/MERT-v1-95M"``.
        path: an explicit folder; when given, it is the only place searched.
        required: file names that must all be in the folder.
        any_of: glob patterns of which at least one must match (e.g. weight files).
        what: words for error messages, e.g. ``"MERT encoder"``.

    Returns:
        The folder.

    Raises:
        ModelLoadError: naming every folder searched and the download command.
    """
    searched: list[str] = []
    for folder in search_folders(repo_id, path=path):
        searched.append(str(folder))
        if _complete(folder, required, any_of):
            return folder
    if not path:
        from huggingface_hub import constants, snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        searched.append(f"{constants.HF_HUB_CACHE} (Hugging Face cache, {repo_id})")
        try:
            folder = Path(snapshot_download(repo_id, local_files_only=True))
        except (LocalEntryNotFoundError, OSError, ValueError) as exc:
            log.debug("%s not in the HF cache: %s", repo_id, exc)
        else:
            if _complete(folder, required, any_of):
                return folder
            searched[-1] += f": incomplete snapshot at {folder}"
    need = [*required, *(f"one of {', '.join(any_of)}" for _ in [0] if any_of)]
    where = path or f"${WEIGHTS_ENV}/{repo_id.split('/')[-1]}"
    raise ModelLoadError(
        f"{what} {repo_id!r} not found on this machine (needs {', '.join(need)}). "
        f"Searched: {'; '.join(searched)}. Nothing is downloaded at run time: on a connected "
        f"machine run `{download_command(repo_id, where)}` (or `huggingface-cli download "
        f"{repo_id} --local-dir {where}`), copy the folder here and point the preset's path "
        f"(or ${WEIGHTS_ENV}) at it. See docs/weights.md."
    )


def _complete(folder: Path, required: Sequence[str], any_of: Sequence[str]) -> bool:
    if not folder.is_dir():
        return False
    if not all((folder / name).is_file() for name in required):
        return False
    return not any_of or any(any(folder.glob(p)) for p in any_of)


def state_files(folder: Path, *, stem: str) -> list[Path]:
    """Weight files named ``<stem>.<suffix>`` or ``<stem>-00001-of-0000N.<suffix>`` in ``folder``.

    Safetensors files win over pickles when both exist.
    """
    for suffix in STATE_SUFFIXES:
        files = sorted(folder.glob(f"{stem}{suffix}")) + sorted(folder.glob(f"{stem}-*{suffix}"))
        if files:
            return files
    return []


def read_state_dict(files: Sequence[Path]) -> dict[str, torch.Tensor]:
    """Read tensors from safetensors files or ``torch.load(weights_only=True)`` pickles.

    Raises:
        ModelLoadError: a file is unreadable or holds something other than tensors.
    """
    import torch

    state: dict[str, torch.Tensor] = {}
    for f in files:
        try:
            if f.suffix == ".safetensors":
                from safetensors.torch import load_file

                part = load_file(str(f), device="cpu")
            else:
                part = torch.load(f, map_location="cpu", weights_only=True, mmap=True)
        except Exception as exc:  # safetensors, pickle and zip errors have no common base
            reason = f"{type(exc).__name__}: {exc}"
            raise ModelLoadError(f"{f}: unreadable weight file ({reason})") from exc
        if not isinstance(part, Mapping) or not all(
            isinstance(v, torch.Tensor) for v in part.values()
        ):
            raise ModelLoadError(f"{f}: expected a mapping of names to tensors")
        state.update(part)
    return state


RELEASE_PREFIX = "base_model.model.model.audio_mert_lmm_projector."
"""How the release names its projector's tensors (the PEFT model's ``named_parameters()``)."""

RELEASE_CLASSES: dict[str, int] = {
    "instrument_detection": 40,
    "mood_detection": 56,
    "genre_detection": 87,
    "key_detection": 24,
    "vocals_detection": 3,
}
"""Classes per SonicVerse head (configs/tasks.json)."""


def random_release_state(
    *,
    layers: int = 3,
    dim: int = 12,
    backbone: int = 10,
    head_hidden: int = 8,
    llm_dim: int = 16,
    proj_hidden: int = 6,
    content_tokens: int = 5,
    task_tokens: int = 2,
    prefix: str = RELEASE_PREFIX,
    seed: int = 0,
    std: float | None = 0.3,
    dtype: torch.dtype | None = None,
) -> dict[str, torch.Tensor]:
    """A random ``non_lora_trainables`` with the release's names and shapes.

    For tests (small sizes, every value ``N(0, std)``) and for benchmarks at the release's
    own sizes (``layers=13, dim=768, backbone=512, head_hidden=256, llm_dim=4096,
    proj_hidden=4096, content_tokens=40, task_tokens=4``: about 1.1 billion parameters).

    Args:
        std: the spread of every value; None scales each weight by ``1/sqrt(fan_in)`` (and
            biases by 0.02) so activations stay in range through 4096-wide layers.
        dtype: each tensor's dtype (float32 when None).
    """
    import torch

    g = torch.Generator().manual_seed(seed)

    def r(*shape: int) -> torch.Tensor:
        spread = std if std is not None else (shape[-1] ** -0.5 if len(shape) > 1 else 0.02)
        x = torch.randn(*shape, generator=g).mul_(spread)
        return x if dtype is None else x.to(dtype)

    sd = {
        "backbone.hidden_layer_1.weight": r(backbone, dim),
        "backbone.hidden_layer_1.bias": r(backbone),
        "lmm_projector.aggregator": r(layers),
    }
    for i in range(content_tokens):
        sd[f"lmm_projector.layers.{i}.1.weight"] = r(proj_hidden, dim)
        sd[f"lmm_projector.layers.{i}.1.bias"] = r(proj_hidden)
        sd[f"lmm_projector.layers.{i}.3.weight"] = r(llm_dim, proj_hidden)
        sd[f"lmm_projector.layers.{i}.3.bias"] = r(llm_dim)
    for task, n in RELEASE_CLASSES.items():
        sd[f"{task}.aggregator"] = r(layers, 1, 1)
        sd[f"{task}.hidden_layer_1.weight"] = r(head_hidden, backbone)
        sd[f"{task}.hidden_layer_1.bias"] = r(head_hidden)
        sd[f"{task}.output.weight"] = r(n, head_hidden)
        sd[f"{task}.output.bias"] = r(n)
        for i in range(task_tokens):
            sd[f"{task}_projector.layers.{i}.1.weight"] = r(proj_hidden, n)
            sd[f"{task}_projector.layers.{i}.1.bias"] = r(proj_hidden)
            sd[f"{task}_projector.layers.{i}.3.weight"] = r(llm_dim, proj_hidden)
            sd[f"{task}_projector.layers.{i}.3.bias"] = r(llm_dim)
    return {prefix + k: v for k, v in sd.items()}


def strip_sonicverse_prefix(name: str) -> str:
    """``base_model.model.model.audio_mert_lmm_projector.key_detection.output.weight`` ->
    ``key_detection.output.weight`` (the modality's projector container is dropped); names
    without the container are returned unchanged."""
    m = re.match(r"^(?:base_model\.model\.)?(?:model\.)?[a-z0-9_]*?_lmm_projector\.", name)
    return name if m is None else name[m.end() :]


def import_sonicverse_heads(
    raw: Mapping[str, torch.Tensor],
    *,
    pad_frames: int,
    with_tokens: bool = True,
    key_labels: Sequence[str] | None = None,
    vocals_labels: Sequence[str] | None = None,
) -> tuple[HeadsConfig, dict[str, torch.Tensor]]:
    """Map SonicVerse's ``non_lora_trainables`` onto a :class:`MultiTaskProjector` state dict.

    The mapping (``T`` = task: instrument/mood/genre/key/vocals ``_detection``; ``i`` = token):

    ============================================  ==========================================
    SonicVerse (``MultiTaskSharedModel``)          ours (``MultiTaskProjector``)
    ============================================  ==========================================
    ``backbone.hidden_layer_1.{weight,bias}``     ``backbone.{weight,bias}``
    ``T.aggregator`` ``[L, 1, 1]``                 dropped: SonicVerse takes its softmax over
                                                  a size-1 axis, so every weight is 1; ours
                                                  ``heads.t.layer_logits`` = 0 (uniform 1/L)
    ``T.hidden_layer_1.weight``                   ``heads.t.hidden.weight`` × ``pad_frames``
    ``T.hidden_layer_1.bias``                     ``heads.t.hidden.bias``
    ``T.output.{weight,bias}``                    ``heads.t.output.{weight,bias}``
    ``lmm_projector.aggregator`` ``[L]``           ``content.layer_logits``
    ``lmm_projector.layers.i.1.{weight,bias}``     ``content.mlp.{w1,b1}[i]``
    ``lmm_projector.layers.i.3.{weight,bias}``     ``content.mlp.{w2,b2}[i]``
    ``T_projector.layers.i.1.{weight,bias}``       ``task_tokens.t.{w1,b1}[i]``
    ``T_projector.layers.i.3.{weight,bias}``       ``task_tokens.t.{w2,b2}[i]``
    ============================================  ==========================================

    SonicVerse's task heads *sum* the backbone output over time and average over layers
    (``sum(dim=1)`` then ``mean(-2)`` on ``[L, T, 512]``); on its fixed ``pad_frames``-frame
    input that is ``pad_frames`` × (uniform layer mean of the time mean), hence the scale
    folded into the first head layer. The result is exact (see the tests).

    Args:
        raw: the checkpoint's tensors (any ``..._lmm_projector.`` prefix).
        pad_frames: frames SonicVerse padded every clip to (760 in the release).
        with_tokens: also import the LLM token projectors (False: heads only, no LLM).
        key_labels: the checkpoint's key classes in its output order, names as accepted by
            :func:`engine.labels.key_index`; None when it is already :data:`engine.labels.KEYS`
            order. Rows are permuted to our order (and the key projector's inputs with them).
        vocals_labels: likewise for :data:`engine.labels.VOCALS`.

    Returns:
        The heads config inferred from the tensor shapes and the state dict to load strictly.

    Raises:
        ModelLoadError: unknown or missing names, or inconsistent shapes.
    """
    import torch

    from engine.labels import VOCALS, key_index
    from engine.models.heads import HeadsConfig, TaskSpec

    src = {strip_sonicverse_prefix(k): v for k, v in raw.items()}
    used: set[str] = set()

    def take(name: str) -> torch.Tensor:
        if name not in src:
            raise ModelLoadError(f"SonicVerse checkpoint lacks {name!r}")
        used.add(name)
        return src[name].detach().float()

    out: dict[str, torch.Tensor] = {}
    out["backbone.weight"] = take("backbone.hidden_layer_1.weight")
    out["backbone.bias"] = take("backbone.hidden_layer_1.bias")
    backbone_dim, input_dim = out["backbone.weight"].shape

    perms: dict[str, list[int] | None] = {
        "key": None if key_labels is None else [key_index(k) for k in key_labels],
        "vocals": None if vocals_labels is None else [VOCALS.index(v) for v in vocals_labels],
    }
    tasks: list[TaskSpec] = []
    layers = 0
    head_hidden = 0
    for theirs, ours in SONICVERSE_TASKS.items():
        agg = take(f"{theirs}.aggregator")
        layers = agg.shape[0]
        w1 = take(f"{theirs}.hidden_layer_1.weight")
        head_hidden = w1.shape[0]
        w_out = take(f"{theirs}.output.weight")
        b_out = take(f"{theirs}.output.bias")
        perm = perms.get(ours)
        order = _inverse(perm, len(b_out), ours) if perm is not None else None
        if order is not None:
            w_out, b_out = w_out[order], b_out[order]
        out[f"heads.{ours}.layer_logits"] = torch.zeros(layers)
        out[f"heads.{ours}.hidden.weight"] = w1 * float(pad_frames)
        out[f"heads.{ours}.hidden.bias"] = take(f"{theirs}.hidden_layer_1.bias")
        out[f"heads.{ours}.output.weight"] = w_out
        out[f"heads.{ours}.output.bias"] = b_out
        tasks.append(TaskSpec(ours, int(b_out.shape[0])))
        if with_tokens:
            mlp = _token_mlp(take, f"{theirs}_projector", src)
            if order is not None:
                mlp["w1"] = mlp["w1"][:, :, order]
            out.update({f"task_tokens.{ours}.{k}": v for k, v in mlp.items()})

    llm_dim = None
    projector_hidden = 0
    content_tokens = 0
    task_tokens = 0
    if with_tokens:
        out["content.layer_logits"] = take("lmm_projector.aggregator").reshape(-1)
        mlp = _token_mlp(take, "lmm_projector", src)
        out.update({f"content.mlp.{k}": v for k, v in mlp.items()})
        content_tokens, llm_dim, projector_hidden = (
            mlp["w2"].shape[0],
            mlp["w2"].shape[1],
            mlp["w2"].shape[2],
        )
        task_tokens = out[f"task_tokens.{tasks[0].name}.w2"].shape[0]
    unused = sorted(
        k
        for k in set(src) - used
        if with_tokens or not (k.startswith("lmm_projector.") or "_projector." in k)
    )
    if unused:
        raise ModelLoadError(
            f"SonicVerse checkpoint has {len(unused)} unexpected tensor(s), e.g. {unused[:5]}; "
            "is this the multi-task (use_multi_task=2, configs/tasks.json) release?"
        )
    config = HeadsConfig(
        layers=int(layers),
        input_dim=int(input_dim),
        backbone_dim=int(backbone_dim),
        head_hidden_dim=int(head_hidden),
        tasks=tuple(tasks),
        llm_dim=None if llm_dim is None else int(llm_dim),
        projector_hidden_dim=int(projector_hidden),
        content_tokens=int(content_tokens),
        task_tokens=int(task_tokens),
        pad_frames=int(pad_frames),
    )
    return config, out


def _inverse(perm: list[int], n: int, task: str) -> list[int]:
    """``perm[i]`` = our index of checkpoint class ``i``; returns checkpoint index per ours."""
    if sorted(perm) != list(range(n)):
        raise ModelLoadError(
            f"{task} labels must name each of the head's {n} classes exactly once, got {perm}"
        )
    order = [0] * n
    for theirs, ours in enumerate(perm):
        order[ours] = theirs
    return order


def _token_mlp(
    take: Callable[[str], torch.Tensor], prefix: str, src: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Stack SonicVerse's ``prefix.layers.i.{1,3}`` MLPs into ``w1 [W, P, in]``, ``b1 [W, P]``,
    ``w2 [W, out, P]``, ``b2 [W, out]``."""
    import torch

    width = 0
    while f"{prefix}.layers.{width}.1.weight" in src:
        width += 1
    if width == 0:
        raise ModelLoadError(f"SonicVerse checkpoint lacks {prefix}.layers.0.1.weight")
    parts: dict[str, list[torch.Tensor]] = {"w1": [], "b1": [], "w2": [], "b2": []}
    for i in range(width):
        parts["w1"].append(take(f"{prefix}.layers.{i}.1.weight"))
        parts["b1"].append(take(f"{prefix}.layers.{i}.1.bias"))
        parts["w2"].append(take(f"{prefix}.layers.{i}.3.weight"))
        parts["b2"].append(take(f"{prefix}.layers.{i}.3.bias"))
    try:
        return {k: torch.stack(v, dim=0) for k, v in parts.items()}
    except RuntimeError as exc:
        raise ModelLoadError(f"SonicVerse {prefix}: token MLPs differ in shape ({exc})") from exc
