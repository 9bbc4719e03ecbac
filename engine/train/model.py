"""What a stage trains: the multi-task projector, the alignment maps and (LoRA stages) an
adapter on the LLM, computing every loss of a batch from the feature cache.

``heads``: the backbone and the five heads (no LLM tokens). ``projector``: the whole projector
with the LLM frozen. ``lora`` / ``qlora``: the projector and a LoRA adapter (NF4 base for
qlora). The heads' layer weights stay uniform (frozen at 0), as the release's layout stores
them; MERT never runs: the batch holds its time-averaged layers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from engine.models.heads import HeadsConfig, MultiTaskProjector, Pooled, TaskSpec
from engine.prompts import caption_instruction
from engine.train.config import TrainConfig
from engine.train.losses import IGNORE, Aligner, first_per_song, heads_bce, lm_loss

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """A micro-batch from the cache.

    Attributes:
        features: ``[N, L, D]`` time-averaged encoder layers.
        frames: ``[N]`` frames they were averaged over.
        targets: task -> ``[N, classes]``.
        known: task -> ``[N]`` bool.
        captions: N captions ("" where none).
        lyrics: N lyrics ("" where none).
        songs: N song ids.
    """

    features: torch.Tensor
    frames: torch.Tensor
    targets: dict[str, torch.Tensor]
    known: dict[str, torch.Tensor]
    captions: list[str]
    lyrics: list[str]
    songs: list[str]

    def to(self, device: torch.device) -> Batch:
        """The tensors on ``device``."""
        return Batch(
            self.features.to(device),
            self.frames.to(device),
            {k: v.to(device) for k, v in self.targets.items()},
            {k: v.to(device) for k, v in self.known.items()},
            self.captions,
            self.lyrics,
            self.songs,
        )


def heads_config(
    cfg: TrainConfig, *, layers: int, dim: int, llm_dim: int | None, label_sets: dict[str, Any]
) -> HeadsConfig:
    """The projector's config: sizes from the train config, heads sized by the label sets,
    the backbone on pooled layers (the cache holds only those)."""
    order = ("instruments", "moods", "genres", "key", "vocals")  # the release's token order
    return HeadsConfig(
        layers=layers,
        input_dim=dim,
        backbone_dim=cfg.backbone_dim,
        head_hidden_dim=cfg.head_hidden_dim,
        tasks=tuple(TaskSpec(t, len(label_sets[t])) for t in order),
        llm_dim=llm_dim,
        projector_hidden_dim=cfg.projector_hidden_dim,
        content_tokens=cfg.content_tokens,
        task_tokens=cfg.task_tokens,
        pad_frames=cfg.pad_frames,
        backbone_on_pooled=True,
    )


class TrainModel(nn.Module):
    """The trainable parts of a stage and the frozen LLM they feed.

    Args:
        cfg: the train config.
        projector: the multi-task projector (with LLM projectors unless stage is heads).
        lm: the :class:`~engine.models.llm.CaptionLM` (its model LoRA-wrapped in LoRA
            stages), or None (heads stage without lyrics).
    """

    def __init__(self, cfg: TrainConfig, projector: MultiTaskProjector, lm: Any | None) -> None:
        super().__init__()
        self.cfg = cfg
        self.projector = projector
        self.lm = lm
        self.llm = lm.model if lm is not None else None  # registered: LoRA weights train
        text_dim = lm.hidden_size if lm is not None else 1
        self.aligner = Aligner(
            projector.config.backbone_dim, text_dim, cfg.align_dim, cfg.temperature
        )
        for head in projector.heads.values():
            head.layer_logits.requires_grad_(False)
        if self.llm is not None:
            for name, p in self.llm.named_parameters():
                p.requires_grad_(cfg.uses_lora and "lora_" in name)

    def trainable(self) -> list[tuple[str, nn.Parameter]]:
        """The parameters the optimizer updates, by name (stable order)."""
        return [(n, p) for n, p in self.named_parameters() if p.requires_grad]

    def forward(self, batch: Batch, *, epoch: int = 0) -> dict[str, torch.Tensor]:
        """Every loss of the batch: ``total``, ``lm``, ``bce/<task>``, ``info_nce``."""
        n, layers, _ = batch.features.shape
        pooled = Pooled(
            encoder_sum=batch.features * batch.frames[:, None, None],
            backbone_sum=batch.features.new_zeros(n, layers, self.projector.config.backbone_dim),
            frames=batch.frames,
        )
        out = self.projector(pooled)
        cfg = self.cfg
        losses: dict[str, torch.Tensor] = {}
        total = batch.features.new_zeros(())
        for task, value in heads_bce(out.logits, batch.targets, batch.known).items():
            losses[f"bce/{task}"] = value
            total = total + cfg.heads_weight * value
        if cfg.uses_llm and self.lm is not None and out.tokens is not None:
            losses["lm"] = self._lm_loss(out.tokens, batch, epoch=epoch)
            total = total + cfg.lm_weight * losses["lm"]
        nce = self._info_nce(out.features, batch)
        if nce is not None:
            losses["info_nce"] = nce
            total = total + cfg.info_nce_weight * nce
        losses["total"] = total
        return losses

    def _lm_loss(self, tokens: torch.Tensor, batch: Batch, *, epoch: int) -> torch.Tensor:
        lm, llm = self.lm, self.llm
        assert lm is not None and llm is not None  # the caller checked uses_llm
        tok = lm.tokenizer
        embed = lm.base.get_input_embeddings()
        device = embed.weight.device
        rows, labels = [], []
        for i, (caps, words) in enumerate(zip(batch.captions, batch.lyrics, strict=True)):
            caption = caps[epoch % len(caps)] if caps else ""
            before, after = lm.prompt_parts(caption_instruction(self.cfg.instruction, lyrics=words))
            target = tok(" " + caption.strip(), add_special_tokens=False).input_ids
            target = [*target[: self.cfg.max_caption_tokens], tok.eos_token_id]
            e_before = embed(torch.tensor(before, device=device))
            e_rest = embed(torch.tensor(after + target, device=device))
            k = tokens.shape[1]
            rows.append(torch.cat([e_before, tokens[i].to(e_before.dtype), e_rest], dim=0))
            labels.append([IGNORE] * (len(before) + k + len(after)) + target)
        length = max(r.shape[0] for r in rows)
        h = rows[0].shape[1]
        embeds = rows[0].new_zeros(len(rows), length, h)
        mask = torch.zeros(len(rows), length, dtype=torch.long, device=device)
        ids = torch.full((len(rows), length), IGNORE, dtype=torch.long, device=device)
        for i, (r, lab) in enumerate(zip(rows, labels, strict=True)):
            embeds[i, : r.shape[0]] = r
            mask[i, : r.shape[0]] = 1
            ids[i, : len(lab)] = torch.tensor(lab, device=device)
        logits = llm(inputs_embeds=embeds, attention_mask=mask, use_cache=False).logits
        return lm_loss(logits, ids)

    def lyrics_embeddings(self, lyrics: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The LLM's input embeddings of each lyrics ``[M, S, H]`` and their mask ``[M, S]``."""
        assert self.lm is not None  # built with an LLM whenever lyrics are aligned
        tok = self.lm.tokenizer
        embed = self.lm.base.get_input_embeddings()
        ids = [
            tok(w, add_special_tokens=False).input_ids[:256] or [tok.unk_token_id] for w in lyrics
        ]
        length = max(len(x) for x in ids)
        pad = torch.zeros(len(ids), length, dtype=torch.long, device=embed.weight.device)
        mask = torch.zeros_like(pad)
        for i, x in enumerate(ids):
            pad[i, : len(x)] = torch.tensor(x)
            mask[i, : len(x)] = 1
        with torch.no_grad():
            return embed(pad), mask

    def _info_nce(self, features: torch.Tensor | None, batch: Batch) -> torch.Tensor | None:
        if self.cfg.info_nce_weight <= 0 or self.lm is None or features is None:
            return None
        with_lyrics = [i for i, w in enumerate(batch.lyrics) if w.strip()]
        keep = [with_lyrics[j] for j in first_per_song([batch.songs[i] for i in with_lyrics])]
        if len(keep) < 2:
            return None
        embeds, mask = self.lyrics_embeddings([batch.lyrics[i] for i in keep])
        return self.aligner(features[keep], embeds, mask)
