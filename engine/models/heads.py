"""SonicVerse's multi-task projector: task heads on MERT features, and LLM tokens.

From all encoder hidden states ``hidden: [L, T, D]`` (MERT-95M: 13 layers, frames @75 Hz,
768 dims) of one clip:

- **task heads** (key 24, vocals 3, instruments 40, moods 56, genres 87): a shared per-frame
  layer ``relu(backbone(hidden))`` -> ``[L, T, B]``, averaged over time, softmax-weighted over
  layers, then ``Linear(B, H) -> ReLU -> Linear(H, classes)`` giving logits;
- **content tokens**: ``hidden`` averaged over time, softmax-weighted over layers, then
  ``content_tokens`` parallel ``GELU -> Linear -> GELU -> Linear`` MLPs, one LLM token each;
- **task tokens**: each head's logits through ``task_tokens`` parallel MLPs of the same shape.

Tokens are concatenated content first, then tasks in :attr:`HeadsConfig.tasks` order (the
release: instruments, moods, genres, key, vocals): ``[N, 40 + 5 * 4, llm_dim]``.

SonicVerse padded (or cropped) every clip to a fixed 760 frames before pooling, so a short
clip's averages are diluted by zero frames. :attr:`HeadsConfig.pad_frames` reproduces that
exactly for clips up to that length and averages longer ones over all their frames.
Pooling is split into frame *sums* (:meth:`MultiTaskProjector.pool`) so that a long region
can be encoded window by window and its sums added (:func:`combine`).

Which parts see only time-pooled features (checked against the code below, it matters for
training on a cache of pooled MERT layers, :mod:`engine.data.features`):

- the **content projector** reads only ``encoder_sum / frames``, the time-averaged layers
  ``[N, L, D]``: a cache of those is exact for it;
- the **task-token projectors** read only the heads' logits;
- the **task heads** of the release are *not* time-pooled-only: the shared backbone
  ``relu(backbone(hidden))`` runs on every frame and is averaged afterwards, and
  ``mean_t(relu(W h_t + b)) != relu(W mean_t(h) + b)``. :attr:`HeadsConfig.backbone_on_pooled`
  applies the backbone to the time-averaged layers instead; models trained here on the cache
  set it (and record it next to their weights), so training and serving compute the same
  function of the pooled features. The release's weights keep the per-frame backbone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from engine.labels import GENRES, INSTRUMENTS, KEYS, MOODS, VOCALS
from engine.types import KeyEstimate, Tag, VocalsEstimate

TASK_LABELS: dict[str, tuple[str, ...]] = {
    "key": KEYS,
    "vocals": VOCALS,
    "instruments": INSTRUMENTS,
    "moods": MOODS,
    "genres": GENRES,
}
"""Label set of each task; a head's output ``i`` is label ``i``."""

SINGLE_LABEL_TASKS: frozenset[str] = frozenset({"key", "vocals"})
"""Tasks decoded with a softmax (one answer); the others are multi-label (sigmoid)."""


@dataclass(frozen=True)
class TaskSpec:
    """One task head.

    Attributes:
        name: a key of :data:`TASK_LABELS`.
        classes: the head's outputs (len of the task's label set).
    """

    name: str
    classes: int


def sonicverse_tasks() -> tuple[TaskSpec, ...]:
    """The release's tasks, in its token order (configs/tasks.json)."""
    order = ("instruments", "moods", "genres", "key", "vocals")
    return tuple(TaskSpec(t, len(TASK_LABELS[t])) for t in order)


@dataclass(frozen=True)
class HeadsConfig:
    """Sizes of a :class:`MultiTaskProjector`. Encoder and LLM sizes come from their configs;
    the defaults of the others are SonicVerse's (configs/tasks.json, multi_task_projector_shared).

    Attributes:
        layers: encoder hidden states per clip (MERT-95M: 13 = embeddings + 12 blocks).
        input_dim: encoder hidden size (MERT-95M: 768).
        backbone_dim: the task heads' shared per-frame layer (SonicVerse: 512).
        head_hidden_dim: each task head's hidden layer (SonicVerse: 256).
        tasks: the heads, in task-token order.
        llm_dim: LLM hidden size; None builds the heads without LLM token projectors.
        projector_hidden_dim: hidden size of every token MLP (SonicVerse: 4096).
        content_tokens: tokens made from the encoder features (SonicVerse: 40).
        task_tokens: tokens made from each head's output (SonicVerse: 4).
        pad_frames: pooling divides by at least this many frames (SonicVerse: 760, its fixed
            padded length); None averages over the real frames only.
        backbone_on_pooled: apply the heads' backbone to the time-averaged encoder layers
            (True: every part reads only time-pooled features, as models trained on the
            feature cache do) instead of to every frame (False: the release).
    """

    layers: int
    input_dim: int
    backbone_dim: int = 512
    head_hidden_dim: int = 256
    tasks: tuple[TaskSpec, ...] = field(default_factory=sonicverse_tasks)
    llm_dim: int | None = None
    projector_hidden_dim: int = 4096
    content_tokens: int = 40
    task_tokens: int = 4
    pad_frames: int | None = 760
    backbone_on_pooled: bool = False

    @property
    def num_tokens(self) -> int:
        """LLM tokens per clip (0 without projectors)."""
        if self.llm_dim is None:
            return 0
        return self.content_tokens + self.task_tokens * len(self.tasks)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (for fingerprints and saved configs)."""
        d = dict(self.__dict__)
        d["tasks"] = [[t.name, t.classes] for t in self.tasks]
        return d


@dataclass(frozen=True)
class Pooled:
    """Frame sums of a batch of clips (see :meth:`MultiTaskProjector.pool`).

    Attributes:
        encoder_sum: ``[N, L, D]`` sum over real frames of the encoder hidden states.
        backbone_sum: ``[N, L, B]`` sum over real frames of ``relu(backbone(hidden))``.
        frames: ``[N]`` real frames summed (float).
    """

    encoder_sum: torch.Tensor
    backbone_sum: torch.Tensor
    frames: torch.Tensor


@dataclass(frozen=True)
class HeadsOutput:
    """What the projector gives for ``N`` clips.

    Attributes:
        logits: task -> ``[N, classes]`` raw head outputs.
        tokens: ``[N, num_tokens, llm_dim]`` LLM input embeddings, None without projectors.
        features: ``[N, L, B]`` the time-averaged backbone features the heads read (training
            uses them as the pooled audio embedding of the audio-lyrics alignment).
    """

    logits: dict[str, torch.Tensor]
    tokens: torch.Tensor | None
    features: torch.Tensor | None = None


class TokenMLP(nn.Module):
    """``width`` parallel ``GELU -> Linear -> GELU -> Linear`` MLPs, one output token each.

    Weights are stacked (``w1: [W, P, in]``, ``w2: [W, out, P]``) so all tokens are computed
    in two batched matmuls.
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, width: int) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(width, hidden_dim, in_dim))
        self.b1 = nn.Parameter(torch.empty(width, hidden_dim))
        self.w2 = nn.Parameter(torch.empty(width, out_dim, hidden_dim))
        self.b2 = nn.Parameter(torch.empty(width, out_dim))
        for w, b in ((self.w1, self.b1), (self.w2, self.b2)):
            bound = 1.0 / math.sqrt(w.shape[-1])  # nn.Linear's default init
            nn.init.uniform_(w, -bound, bound)
            nn.init.uniform_(b, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [N, in]`` -> ``[N, width, out]``."""
        h = torch.einsum("ni,wpi->nwp", F.gelu(x), self.w1) + self.b1
        return torch.einsum("nwp,wop->nwo", F.gelu(h), self.w2) + self.b2


class TaskHead(nn.Module):
    """Softmax over layers, then ``Linear -> ReLU -> Linear`` to class logits."""

    def __init__(self, layers: int, in_dim: int, hidden_dim: int, classes: int) -> None:
        super().__init__()
        self.layer_logits = nn.Parameter(torch.zeros(layers))
        self.hidden = nn.Linear(in_dim, hidden_dim)
        self.output = nn.Linear(hidden_dim, classes)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """``pooled: [N, L, B]`` time-averaged backbone features -> ``[N, classes]``."""
        w = torch.softmax(self.layer_logits, dim=0)
        x = torch.einsum("nlb,l->nb", pooled, w)
        return self.output(F.relu(self.hidden(x)))


class ContentProjector(nn.Module):
    """Softmax over layers of time-averaged features, then ``width`` token MLPs."""

    def __init__(self, layers: int, in_dim: int, hidden_dim: int, out_dim: int, width: int):
        super().__init__()
        self.layer_logits = nn.Parameter(torch.zeros(layers))
        self.mlp = TokenMLP(in_dim, hidden_dim, out_dim, width)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        """``pooled: [N, L, D]`` -> ``[N, width, out]``."""
        w = torch.softmax(self.layer_logits, dim=0)
        return self.mlp(torch.einsum("nld,l->nd", pooled, w))


class MultiTaskProjector(nn.Module):
    """Task heads and LLM token projectors over all encoder layers (see module doc)."""

    def __init__(self, config: HeadsConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.backbone = nn.Linear(c.input_dim, c.backbone_dim)
        self.heads = nn.ModuleDict(
            {
                t.name: TaskHead(c.layers, c.backbone_dim, c.head_hidden_dim, t.classes)
                for t in c.tasks
            }
        )
        if c.llm_dim is not None:
            self.content = ContentProjector(
                c.layers, c.input_dim, c.projector_hidden_dim, c.llm_dim, c.content_tokens
            )
            self.task_tokens = nn.ModuleDict(
                {
                    t.name: TokenMLP(t.classes, c.projector_hidden_dim, c.llm_dim, c.task_tokens)
                    for t in c.tasks
                }
            )

    def pool(self, hidden: torch.Tensor, frames: torch.Tensor | None = None) -> Pooled:
        """Frame sums of a batch of clips.

        Args:
            hidden: ``[N, L, T, D]`` encoder hidden states (layers, frames, dims).
            frames: ``[N]`` real frames per clip (the rest is padding); None: all ``T``.
        """
        n, _, t, _ = hidden.shape
        hidden = hidden.to(self.backbone.weight.dtype)
        y = F.relu(self.backbone(hidden))  # [N, L, T, B]
        if frames is None:
            frames = torch.full((n,), t, device=hidden.device)
        mask = torch.arange(t, device=hidden.device)[None, :] < frames[:, None]  # [N, T]
        m = mask[:, None, :, None].to(hidden.dtype)
        return Pooled(  # sums kept in float32 whatever the weights' dtype
            encoder_sum=(hidden * m).sum(dim=2, dtype=torch.float32),
            backbone_sum=(y * m).sum(dim=2, dtype=torch.float32),
            frames=frames.to(torch.float32),
        )

    def forward(self, pooled: Pooled) -> HeadsOutput:
        """Logits of every task and (with projectors) the LLM tokens."""
        dtype = self.backbone.weight.dtype
        frames = pooled.frames.float()
        den = frames.clamp_min(float(self.config.pad_frames or 1))[:, None, None]  # [N, 1, 1]
        # SonicVerse's padding frames are zeros: they add nothing to the encoder sum and
        # relu(backbone(0)) = relu(bias) each to the backbone sum.
        pad = den - frames[:, None, None]
        encoder = (pooled.encoder_sum.float() / den).to(dtype)
        bias = F.relu(self.backbone.bias.float())
        backbone = ((pooled.backbone_sum.float() + pad * bias) / den).to(dtype)
        if self.config.backbone_on_pooled:
            backbone = F.relu(self.backbone(encoder))
        logits = {name: head(backbone) for name, head in self.heads.items()}
        tokens = None
        if self.config.llm_dim is not None:
            parts = [self.content(encoder)]
            parts += [self.task_tokens[t.name](logits[t.name]) for t in self.config.tasks]
            tokens = torch.cat(parts, dim=1)
        return HeadsOutput(logits=logits, tokens=tokens, features=backbone)


def build(config: HeadsConfig, *, seed: int | None = None) -> MultiTaskProjector:
    """A :class:`MultiTaskProjector` with random weights (``seed`` makes them reproducible)."""
    if seed is None:
        return MultiTaskProjector(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MultiTaskProjector(config)


def combine(pooled: Pooled, index: Sequence[int], *, count: int) -> Pooled:
    """Add the frame sums of windows that belong to the same clip.

    Args:
        pooled: sums of ``N`` windows.
        index: ``N`` clip indices in ``[0, count)``.
        count: number of clips.
    """
    idx = torch.as_tensor(list(index), device=pooled.frames.device)

    def add(x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros((count, *x.shape[1:]), dtype=x.dtype, device=x.device)
        return out.index_add_(0, idx, x)

    return Pooled(add(pooled.encoder_sum), add(pooled.backbone_sum), add(pooled.frames))


@dataclass(frozen=True)
class HeadsResult:
    """One clip's decoded head outputs."""

    key: KeyEstimate | None
    vocals: VocalsEstimate | None
    instruments: tuple[Tag, ...]
    moods: tuple[Tag, ...]
    genres: tuple[Tag, ...]


def decode(
    logits: dict[str, torch.Tensor],
    *,
    key_candidates: int = 2,
    tag_threshold: float = 0.3,
    max_tags: int = 5,
) -> list[HeadsResult]:
    """Labels with probabilities from head logits.

    Key and vocals are single-label: softmax over classes (the release trained every head
    with a binary cross-entropy, so these are renormalised scores). Instruments, moods and
    genres are multi-label: sigmoid per tag, those at or above ``tag_threshold``, best first,
    at most ``max_tags``.

    Args:
        logits: task -> ``[N, classes]``.
        key_candidates: runner-up keys reported with the key.
        tag_threshold: minimum sigmoid score of a reported tag, in [0, 1].
        max_tags: tags reported per task.
    """
    n = next(iter(logits.values())).shape[0]
    probs: dict[str, list[list[float]]] = {}
    for t, x in logits.items():
        x = x.float()
        prob = torch.softmax(x, dim=-1) if t in SINGLE_LABEL_TASKS else torch.sigmoid(x)
        probs[t] = prob.cpu().tolist()
    out = []
    for i in range(n):
        key = vocals = None
        if "key" in probs:
            kp = probs["key"][i]
            order = sorted(range(len(kp)), key=lambda j: -kp[j])
            key = KeyEstimate(
                key=KEYS[order[0]],
                confidence=min(1.0, max(0.0, kp[order[0]])),
                candidates=tuple((KEYS[j], kp[j]) for j in order[1 : 1 + key_candidates]),
                probabilities=tuple(round(p, 5) for p in kp),
            )
        if "vocals" in probs:
            vp = probs["vocals"][i]
            best = max(range(len(VOCALS)), key=lambda j: vp[j])
            vocals = VocalsEstimate(VOCALS[best], (vp[0], vp[1], vp[2]))

        tags = {
            task: _ranked(probs[task][i], TASK_LABELS[task], tag_threshold, max_tags)
            if task in probs
            else ()
            for task in ("instruments", "moods", "genres")
        }
        out.append(HeadsResult(key, vocals, tags["instruments"], tags["moods"], tags["genres"]))
    return out


def _ranked(
    scores: list[float], labels: tuple[str, ...], threshold: float, limit: int
) -> tuple[Tag, ...]:
    """Tags scoring at least ``threshold``, best first, at most ``limit``."""
    order = sorted(range(len(scores)), key=lambda j: -scores[j])
    return tuple(Tag(labels[j], scores[j]) for j in order[:limit] if scores[j] >= threshold)
