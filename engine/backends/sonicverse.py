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
from engine.errors import check_range
from engine.models.loaders import (
    CheckpointOptions,
    LLMOptions,
    MertOptions,
    check_quantization,
    llm_hidden_size,
    load_llm,
    load_mert,
    load_projector,
    resolve_device,
    torch_dtype,
)
from engine.narrative import preset_narrative
from engine.types import BeatGrid, RegionAnnotation, Section, TrackNarrative

if TYPE_CHECKING:
    import torch

    from engine.models.heads import HeadsResult, MultiTaskProjector
    from engine.models.llm import CaptionLM
    from engine.models.mert import Mert
    from engine.presets import Preset

log = logging.getLogger(__name__)

VERSION = "sonicverse-1"  # bump when this module changes its results


@dataclass(frozen=True)
class Options:
    """The preset's ``[sonicverse]`` table."""

    mert: MertOptions = field(default_factory=MertOptions)
    checkpoint: CheckpointOptions = field(default_factory=CheckpointOptions)
    llm: LLMOptions = field(default_factory=LLMOptions)
    key_from: Literal["heads", "signal"] = "heads"  # the key head, or the signal analyser
    tag_threshold: float = 0.3  # minimum sigmoid score of a reported tag
    max_tags: int = 5  # tags reported per kind (instruments, moods, genres)
    region_batch: int = 32  # regions per analyze call: MERT batches, one caption generate
    seed: int = 0  # seed of the tiny variants' random weights

    def __post_init__(self) -> None:
        check_range("sonicverse.tag_threshold", self.tag_threshold, 0.0, 1.0)
        check_range("sonicverse.max_tags", self.max_tags, 0, 87)
        check_range("sonicverse.region_batch", self.region_batch, 1, 1024)


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
        self.max_batch = self.options.region_batch
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
        grid: BeatGrid | None = None,
        form: Sequence[Section] = (),
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
            grid=grid,
            form=form,
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
    if use_llm and opts.llm.variant == "pretrained":
        check_quantization(opts.llm.quantization, dev)  # before anything is loaded
    mert, mert_id = load_mert(opts.mert, device=dev, seed=opts.seed)
    llm_dim = llm_hidden_size(opts.llm) if use_llm else None
    heads_dtype = torch_dtype(opts.llm.dtype) if (dev.type == "cuda" and use_llm) else torch.float32
    projector, ckpt, heads_id = load_projector(
        opts.checkpoint, mert=mert, llm_dim=llm_dim, device=dev, dtype=heads_dtype, seed=opts.seed
    )
    lm = None
    lm_id: Any = None
    if use_llm:
        # the checkpoint's LoRA (the release's, or one trained by engine.train), when it has one
        tuned = ckpt is not None and (ckpt / "adapter_config.json").is_file()
        adapter = ckpt if (opts.llm.adapter and tuned) else None
        lm, lm_id = load_llm(opts.llm, device=dev, adapter=adapter, seed=opts.seed)
    weights = {"mert": mert_id, "checkpoint": heads_id, "llm": lm_id}
    log.info("sonicverse backend ready on %s (LLM: %s)", dev, "yes" if lm else "no")
    return SonicVerseBackend(
        preset, mert=mert, projector=projector, lm=lm, device=dev, weights=weights
    )


__all__ = [
    "CheckpointOptions",
    "LLMOptions",
    "MertOptions",
    "Options",
    "SonicVerseBackend",
    "create",
    "load_mert",
    "resolve_device",
]
