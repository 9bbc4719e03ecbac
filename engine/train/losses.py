"""The training losses: caption LM, per-head BCE (SonicVerse) and audio-lyrics InfoNCE (ALCAP).

``total = lm_weight * LM + heads_weight * sum_task BCE_task + info_nce_weight * InfoNCE``
(SonicVerse: heads 0.1 each; ALCAP: InfoNCE 0.02). Each term is returned on its own for logging.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

IGNORE = -100
"""Label id the LM loss skips (prompt, audio tokens, padding)."""


def lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy over the caption tokens only.

    Args:
        logits: ``[N, S, V]`` the LM's outputs.
        labels: ``[N, S]`` token ids where the caption stands, :data:`IGNORE` elsewhere (the
            prompt is masked); position ``s`` predicts ``labels[s + 1]``.
    """
    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    return F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.shape[-1]),
        shift_labels.reshape(-1),
        ignore_index=IGNORE,
    )


def heads_bce(
    logits: dict[str, torch.Tensor],
    targets: dict[str, torch.Tensor],
    known: dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Binary cross-entropy of every head over the chunks whose label is known.

    Args:
        logits: task -> ``[N, classes]``.
        targets: task -> ``[N, classes]`` in {0, 1}.
        known: task -> ``[N]`` bool.

    Returns:
        task -> scalar (0 when no chunk of the batch has that label).
    """
    out = {}
    for task, x in logits.items():
        mask = known[task]
        if not bool(mask.any()):
            out[task] = x.sum() * 0.0
            continue
        out[task] = F.binary_cross_entropy_with_logits(x[mask].float(), targets[task][mask].float())
    return out


def first_per_song(songs: Sequence[str]) -> list[int]:
    """Indices of the first chunk of each song (InfoNCE pairs are deduplicated by song: two
    chunks of one song with the same lyrics would be each other's false negatives)."""
    seen: set[str] = set()
    keep = []
    for i, s in enumerate(songs):
        if s not in seen:
            seen.add(s)
            keep.append(i)
    return keep


def info_nce(audio: torch.Tensor, lyrics: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """Symmetric NT-Xent between paired embeddings (row ``i`` of each is a positive pair).

    Args:
        audio: ``[M, E]`` audio embeddings (any scale; L2-normalised here).
        lyrics: ``[M, E]`` lyrics embeddings.
        temperature: scalar > 0.

    Returns:
        ``(CE(audio -> lyrics) + CE(lyrics -> audio)) / 2`` over cosine similarities / T.
    """
    a = F.normalize(audio.float(), dim=-1)
    t = F.normalize(lyrics.float(), dim=-1)
    sim = a @ t.T / temperature
    target = torch.arange(a.shape[0], device=a.device)
    return (F.cross_entropy(sim, target) + F.cross_entropy(sim.T, target)) / 2


class Aligner(nn.Module):
    """ALCAP's alignment: mean-pooled audio and lyrics sequences through linear maps to a
    shared space, compared with a learned temperature.

    Audio: the heads' time-averaged backbone features ``[N, L, B]`` averaged over layers
    (shared with the heads, so the alignment shapes what they read). Lyrics: the LLM's input
    embeddings of the lyrics tokens ``[N, S, H]`` averaged over the real tokens.
    """

    def __init__(self, audio_dim: int, text_dim: int, dim: int, temperature: float) -> None:
        super().__init__()
        self.audio = nn.Linear(audio_dim, dim)
        self.lyrics = nn.Linear(text_dim, dim)
        self.log_temperature = nn.Parameter(torch.tensor(float(temperature)).log())

    @property
    def temperature(self) -> torch.Tensor:
        """The current temperature, clamped to [0.01, 1]."""
        return self.log_temperature.exp().clamp(0.01, 1.0)

    def embed_audio(self, features: torch.Tensor) -> torch.Tensor:
        """``[N, L, B]`` -> ``[N, E]``."""
        return self.audio(features.float().mean(dim=1))

    def embed_lyrics(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[N, S, H]`` token embeddings and ``[N, S]`` mask -> ``[N, E]``."""
        m = mask[..., None].float()
        pooled = (embeds.float() * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)
        return self.lyrics(pooled)

    def forward(
        self, features: torch.Tensor, embeds: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """InfoNCE of a batch of already deduplicated pairs."""
        return info_nce(
            self.embed_audio(features), self.embed_lyrics(embeds, mask), self.temperature
        )
