"""The `sonicverse` backend: the SonicVerse paper's model behind the shared result types.

MERT-v1 (all hidden layers) -> multi-task projector: key / vocals / instrument / mood /
genre heads and 60 LLM tokens -> Mistral-7B-Instruct (4-bit NF4, SonicVerse's LoRA) writes
the caption; the same LLM, adapter off, chains the chunk captions into one narrative.
Tempo, loudness and silence come from the shared signal analysers.

Every model is chosen by a ``variant`` in the preset (``pretrained``: real weights from a
local folder or the HF cache, never downloaded; ``tiny``: random models built from configs,
for tests). Without an LLM (``[sonicverse.llm] enabled = false``) captions are the template
captions and the narrative is the rule-based one.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from engine.analysis import analyze_signal
from engine.audio import resample, to_mono
from engine.backends.base import Progress, Segment, no_progress
from engine.captions import template_caption
from engine.errors import ModelLoadError, PresetError, check_range
from engine.narrative import preset_narrative
from engine.types import RegionAnnotation, TrackNarrative

if TYPE_CHECKING:
    import torch

    from engine.models.heads import HeadsResult, MultiTaskProjector
    from engine.models.llm import CaptionLM
    from engine.models.mert import Mert
    from engine.presets import Preset

log = logging.getLogger(__name__)

VERSION = "sonicverse-1"  # bump when this module changes its results
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


@dataclass(frozen=True)
class Options:
    """The preset's ``[sonicverse]`` table."""

    mert: MertOptions = field(default_factory=MertOptions)
    checkpoint: CheckpointOptions = field(default_factory=CheckpointOptions)
    llm: LLMOptions = field(default_factory=LLMOptions)
    key_from: Literal["heads", "signal"] = "heads"  # the key head, or the signal analyser
    tag_threshold: float = 0.3  # minimum sigmoid score of a reported tag
    max_tags: int = 5  # tags reported per kind (instruments, moods, genres)
    seed: int = 0  # seed of the tiny variants' random weights

    def __post_init__(self) -> None:
        check_range("sonicverse.tag_threshold", self.tag_threshold, 0.0, 1.0)
        check_range("sonicverse.max_tags", self.max_tags, 0, 87)


def _dtype(name: str) -> torch.dtype:
    import torch

    dtype: torch.dtype = getattr(torch, name)  # a DType literal, checked by the preset
    return dtype


class SonicVerseBackend:
    """MERT + multi-task heads (+ LLM captions and narrative)."""

    name = "sonicverse"

    def __init__(
        self,
        preset: Preset,
        *,
        mert: Mert,
        projector: MultiTaskProjector,
        lm: CaptionLM | None,
        device: torch.device,
        weights: dict[str, Any],
    ) -> None:
        self.preset = preset
        self.options: Options = preset.options
        self.mert = mert
        self.projector = projector
        self.lm = lm
        self.device = device
        params = {
            "version": VERSION,
            "analysis": asdict(preset.analysis),
            "analysis_sr": preset.audio.analysis_sr,
            "options": asdict(self.options),
            "heads": projector.config.to_dict(),
            "weights": weights,
            "llm_loaded": lm is not None,
        }
        digest = hashlib.blake2b(
            json.dumps(params, sort_keys=True, default=str).encode(), digest_size=8
        )
        self.fingerprint = f"sonicverse:{digest.hexdigest()}"

    def analyze(
        self, segments: Sequence[Segment], *, progress: Progress = no_progress
    ) -> list[RegionAnnotation]:
        """Annotate each segment: signal features, heads, and one batched caption pass."""
        total = len(segments)
        signal = []
        for i, seg in enumerate(segments):
            signal.append(
                analyze_signal(
                    seg.audio,
                    settings=self.preset.analysis,
                    sr=self.preset.audio.analysis_sr,
                    key=self.options.key_from == "signal",
                )
            )
            progress("signal", i + 1, total)
        audible = [i for i, f in enumerate(signal) if not f.silent]
        decoded, tokens = self._heads([segments[i] for i in audible], progress=progress)
        heads = dict(zip(audible, decoded, strict=True))
        out: list[RegionAnnotation] = []
        for i, (seg, f) in enumerate(zip(segments, signal, strict=True)):
            ann = f.annotation(seg.region, backend=self.name)
            if i in heads:
                h = heads[i]
                key = h.key if self.options.key_from == "heads" else f.key
                ann = replace(
                    ann,
                    key=key,
                    vocals=h.vocals,
                    instruments=h.instruments,
                    moods=h.moods,
                    genres=h.genres,
                )
            out.append(ann)
        lyrics = [segments[i].lyrics for i in audible]
        return self._captions(out, audible, tokens, lyrics=lyrics, progress=progress)

    def _windows(self, seg: Segment) -> list[np.ndarray]:
        """The segment as mono windows at MERT's rate, each at most ``chunk_s`` long
        (a remainder under 1 s joins the window before it)."""
        y = resample(to_mono(seg.audio.samples), sr=seg.audio.sr, target_sr=self.mert.sr)
        n = round(self.options.mert.chunk_s * self.mert.sr)
        bounds = list(range(0, len(y), n))
        if len(bounds) > 1 and len(y) - bounds[-1] < self.mert.sr:
            bounds.pop()
        edges = [*bounds, len(y)]
        return [y[a:b] for a, b in itertools.pairwise(edges)]

    def _heads(
        self, segments: Sequence[Segment], *, progress: Progress
    ) -> tuple[list[HeadsResult], torch.Tensor | None]:
        """Decoded heads of each segment and their LLM tokens ``[n, K, H]`` (None without
        projectors), windows of equal length batched through MERT."""
        import torch

        from engine.models.heads import Pooled, combine, decode

        if not segments:
            return [], None
        windows: list[tuple[int, np.ndarray]] = []
        for j, seg in enumerate(segments):
            windows += [(j, w) for w in self._windows(seg)]
        by_length: dict[int, list[int]] = {}
        for w, (_, y) in enumerate(windows):
            by_length.setdefault(len(y), []).append(w)
        pooled: list[tuple[list[int], Pooled]] = []
        done = 0
        bs = self.options.mert.batch_size
        for idx in by_length.values():
            for k in range(0, len(idx), bs):
                batch = idx[k : k + bs]
                audio = torch.from_numpy(np.stack([windows[w][1] for w in batch]))
                hidden = self.mert.hidden_states(audio).to(self.device)
                with torch.inference_mode():
                    p = self.projector.pool(hidden)
                pooled.append(([windows[w][0] for w in batch], p))
                done += len(batch)
                progress("mert", done, len(windows))
        owners = [o for ids, _ in pooled for o in ids]
        cat = Pooled(
            torch.cat([p.encoder_sum for _, p in pooled]),
            torch.cat([p.backbone_sum for _, p in pooled]),
            torch.cat([p.frames for _, p in pooled]),
        )
        with torch.inference_mode():
            result = self.projector(combine(cat, owners, count=len(segments)))
        decoded = decode(
            result.logits,
            key_candidates=self.preset.analysis.key_candidates,
            tag_threshold=self.options.tag_threshold,
            max_tags=self.options.max_tags,
        )
        return decoded, result.tokens

    def _captions(
        self,
        annotations: list[RegionAnnotation],
        audible: list[int],
        tokens: torch.Tensor | None,
        *,
        lyrics: Sequence[str] = (),
        progress: Progress,
    ) -> list[RegionAnnotation]:
        from engine.prompts import caption_instruction

        captions: dict[int, str] = {}
        if self.lm is not None and tokens is not None and audible:
            words = list(lyrics) or [""] * len(audible)
            prompts = [caption_instruction(self.options.llm.instruction, lyrics=w) for w in words]
            texts = self.lm.caption(tokens, prompts, max_new_tokens=self.options.llm.max_new_tokens)
            captions = dict(zip(audible, texts, strict=True))
        progress("caption", 1, 1)
        out = []
        for i, a in enumerate(annotations):
            text = captions.get(i, "")
            if text:
                out.append(replace(a, caption=text))
            elif i in captions:  # the LLM answered nothing: fall back, and say so
                out.append(
                    replace(a, caption=template_caption(a), flags=(*a.flags, "template_caption"))
                )
            else:
                out.append(replace(a, caption=template_caption(a)))
        return out

    def narrate(
        self,
        annotations: Sequence[RegionAnnotation],
        *,
        source: str,
        duration_s: float,
        progress: Progress = no_progress,
    ) -> TrackNarrative:
        """One narrative from the LLM over the chunk captions (rule-based without an LLM).

        The sections are the rule-based ones; with an LLM the prose is the LLM's.
        """
        from engine.prompts import narrative_messages

        rules = preset_narrative(
            annotations,
            preset=self.preset,
            source=source,
            duration_s=duration_s,
            backend=self.name,
        )
        if self.lm is None or not self.options.llm.narrative or not annotations:
            progress("narrate", 1, 1)
            return rules
        title = Path(source).stem or source
        text = self.lm.chat(
            narrative_messages(annotations, title=title),
            max_new_tokens=self.options.llm.narrative_max_new_tokens,
        )
        progress("narrate", 1, 1)
        if not text:
            log.warning("the LLM wrote an empty narrative for %s; using the rule-based one", source)
            return rules
        return replace(rules, text=text)

    def close(self) -> None:
        """Drop the models and release GPU memory."""
        import torch

        self.lm = None
        self.mert = None  # type: ignore[assignment]
        self.projector = None  # type: ignore[assignment]
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


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


def load_mert(opts: MertOptions, *, device: torch.device, seed: int) -> tuple[Mert, Any]:
    """The encoder named by the preset, and its identity for the fingerprint."""
    import torch

    from engine.models import mert
    from engine.models.checkpoint import locate

    if opts.variant == "tiny":
        m = mert.tiny(seed=seed)
        m.model.to(device)  # type: ignore[arg-type]
        return m, {"variant": "tiny", "seed": seed}
    folder = locate(
        opts.repo_id,
        path=opts.path,
        required=("config.json",),
        any_of=("model*.safetensors", "pytorch_model*.bin"),
        what="MERT encoder",
    )
    dtype = _dtype(opts.dtype) if device.type == "cuda" else torch.float32
    m = mert.from_pretrained(folder, device=device, dtype=dtype)
    return m, {"folder": str(folder.resolve()), "files": folder_identity(folder)}


def load_llm(
    opts: LLMOptions, *, device: torch.device, adapter: Path | None, seed: int
) -> tuple[CaptionLM, Any]:
    """The LLM named by the preset (with the LoRA adapter when given), and its identity."""
    from engine.models import llm
    from engine.models.checkpoint import locate

    if opts.variant == "tiny":
        lm = llm.tiny(seed=seed)
        lm.model.to(device)
        return lm, {"variant": "tiny", "seed": seed}
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
        dtype=_dtype(opts.dtype),
    )
    ident: dict[str, Any] = {"folder": str(folder.resolve()), "files": folder_identity(folder)}
    if adapter is not None:
        ident["adapter"] = folder_identity(adapter)
    return lm, ident


def load_projector(
    opts: CheckpointOptions,
    *,
    mert: Mert,
    llm_dim: int | None,
    device: torch.device,
    dtype: torch.dtype,
    seed: int,
) -> tuple[MultiTaskProjector, Path | None, Any]:
    """The multi-task projector (heads only when ``llm_dim`` is None), the checkpoint folder
    (for the LoRA adapter) and its identity for the fingerprint."""
    from engine.models import heads
    from engine.models.checkpoint import import_sonicverse_heads, locate, read_state_dict

    if opts.variant == "tiny":
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


def create(preset: Preset, *, device: str | None = None) -> SonicVerseBackend:
    """Load the models a ``sonicverse`` preset names (nothing is downloaded).

    Raises:
        ModelLoadError: weights missing (naming the folders searched and the download
            command), 4-bit asked for without CUDA, or weights that do not fit together.
    """
    import torch

    opts: Options = preset.options
    dev = resolve_device(device)
    use_llm = opts.llm.enabled
    nf4 = use_llm and opts.llm.variant == "pretrained" and opts.llm.quantization == "nf4"
    if nf4 and (dev.type != "cuda" or not torch.cuda.is_available()):
        raise ModelLoadError(
            f"preset {preset.name!r} loads its LLM in 4-bit NF4, which needs a CUDA GPU "
            f"(device={str(dev)!r}, CUDA available={torch.cuda.is_available()}). Use the "
            "'sonicverse-cpu' preset here (MERT + heads with template captions), or "
            '[sonicverse.llm] quantization = "none" with enough memory for the full LLM.'
        )
    mert, mert_id = load_mert(opts.mert, device=dev, seed=opts.seed)
    lm = None
    lm_id: Any = None
    llm_dim = None
    if use_llm and opts.llm.variant == "tiny":
        lm, lm_id = load_llm(opts.llm, device=dev, adapter=None, seed=opts.seed)
        llm_dim = lm.hidden_size
    elif use_llm:
        llm_dim = _llm_hidden_size(opts.llm)
    heads_dtype = _dtype(opts.llm.dtype) if (dev.type == "cuda" and use_llm) else torch.float32
    projector, ckpt, heads_id = load_projector(
        opts.checkpoint, mert=mert, llm_dim=llm_dim, device=dev, dtype=heads_dtype, seed=opts.seed
    )
    tuned = ckpt is not None and (ckpt / "adapter_config.json").is_file()
    if lm is not None and ckpt is not None and opts.llm.adapter and tuned:
        from engine.models.llm import _with_adapter  # a tiny LLM fine-tuned by engine.train

        lm.model = _with_adapter(lm.model, ckpt)
        lm_id = {**lm_id, "adapter": folder_identity(ckpt)}
    if use_llm and lm is None:
        adapter = ckpt if (opts.llm.adapter and ckpt is not None) else None
        lm, lm_id = load_llm(opts.llm, device=dev, adapter=adapter, seed=opts.seed)
    weights = {"mert": mert_id, "checkpoint": heads_id, "llm": lm_id}
    log.info("sonicverse backend ready on %s (LLM: %s)", dev, "yes" if lm else "no")
    return SonicVerseBackend(
        preset, mert=mert, projector=projector, lm=lm, device=dev, weights=weights
    )


def _llm_hidden_size(opts: LLMOptions) -> int:
    """The LLM's hidden size from its config.json, before loading its weights."""
    from engine.models.checkpoint import locate

    folder = locate(opts.repo_id, path=opts.path, required=("config.json",), what="LLM")
    try:
        return int(json.loads((folder / "config.json").read_text(encoding="utf-8"))["hidden_size"])
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"{folder}/config.json: no readable hidden_size ({exc})") from exc


__all__ = ["Options", "SonicVerseBackend", "create"]
