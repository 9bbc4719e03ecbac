"""Metrics that need a text model: BERTScore and ALCAP's text-to-music retrieval.

The text model is a local folder (``--text-model PATH``) that ``transformers.AutoModel`` and
``AutoTokenizer`` load with ``local_files_only=True``: a sentence-embedding model (e.g.
all-MiniLM-L6-v2) for retrieval, any BERT-like encoder for BERTScore. Nothing is downloaded.

- Sentence embeddings: mean of the last hidden layer over the non-padding tokens.
- Retrieval (ALCAP): each reference caption is a query; the music is represented by its
  predicted caption; ranking by cosine similarity of sentence embeddings. With one relevant
  item per query, recall@k is the share of queries whose item is in the top k and
  precision@k is recall@k / k.
- BERTScore: greedy cosine matching of the last layer's token embeddings ([CLS]/[SEP]
  excluded), no IDF weighting and no baseline rescaling; best reference per row (by F1).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import ModelLoadError

log = logging.getLogger(__name__)


@dataclass
class TextModel:
    """A tokenizer and encoder loaded from a local folder."""

    tokenizer: Any
    model: Any
    path: str


def load_text_model(path: str | os.PathLike[str]) -> TextModel:
    """Load a text encoder from a local folder, never from the network.

    Raises:
        ModelLoadError: the folder is missing or holds no loadable model.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise ModelLoadError(
            f"text model folder {str(folder)!r} does not exist; expected a folder with "
            "config.json, weights and tokenizer files (on a connected machine: huggingface-cli "
            "download sentence-transformers/all-MiniLM-L6-v2 --local-dir <folder>)"
        )
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = AutoModel.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load a text model from {str(folder)!r}: {exc}") from None
    model.eval()
    return TextModel(tokenizer, model, str(folder))


def _hidden(tm: TextModel, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Last-layer states ``[N, T, D]``, attention mask ``[N, T]`` and a mask without the
    special tokens ``[N, T]``."""
    import torch

    batch = tm.tokenizer(
        list(texts),
        padding=True,
        truncation=True,
        max_length=256,
        return_tensors="pt",
        return_special_tokens_mask=True,
    )
    special = batch.pop("special_tokens_mask")
    with torch.inference_mode():
        hidden = tm.model(**batch).last_hidden_state
    mask = batch["attention_mask"].numpy().astype(bool)
    content = mask & ~special.numpy().astype(bool)
    return hidden.float().numpy(), mask, content


def embed(tm: TextModel, texts: Sequence[str], *, batch_size: int = 32) -> np.ndarray:
    """Sentence embeddings ``[N, D]``, L2-normalised (mean pooling over real tokens)."""
    out = []
    for i in range(0, len(texts), batch_size):
        hidden, mask, _ = _hidden(tm, texts[i : i + batch_size])
        m = mask[..., None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0)
        out.append(pooled)
    emb = np.concatenate(out, axis=0)
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


def retrieval_scores(similarity: np.ndarray, *, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Text-to-music retrieval from a similarity matrix whose diagonal holds the matches.

    Args:
        similarity: ``[Q, Q]``; row i is query i, column j item j, item i is query i's match.
        ks: cut-offs; those larger than Q are left out.

    Returns:
        ``R@k``, ``P@k`` for each k, ``median rank`` (1 = first) and ``MRR``.
    """
    s = np.asarray(similarity, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] != s.shape[1] or s.shape[0] == 0:
        raise ValueError(f"similarity has shape {s.shape}, expected a non-empty square matrix")
    diag = np.diag(s)
    ranks = 1 + (s > diag[:, None]).sum(axis=1)  # ties are resolved in the match's favour
    out: dict[str, float] = {}
    for k in ks:
        if k <= len(s):
            hit = float(np.mean(ranks <= k))
            out[f"R@{k}"] = hit
            out[f"P@{k}"] = hit / k
    out["median rank"] = float(np.median(ranks))
    out["MRR"] = float(np.mean(1.0 / ranks))
    return out


def retrieval(
    tm: TextModel, references: Sequence[str], predictions: Sequence[str]
) -> dict[str, float]:
    """ALCAP's text-to-music retrieval: reference captions retrieve rows by their predicted
    captions (cosine of sentence embeddings)."""
    q = embed(tm, references)
    items = embed(tm, predictions)
    return retrieval_scores(q @ items.T)


def bertscore(
    tm: TextModel, references: Sequence[Sequence[str]], predictions: Sequence[str]
) -> dict[str, float]:
    """BERTScore precision, recall and F1 (mean over rows, best reference by F1)."""
    p_sum = r_sum = f_sum = 0.0
    for refs, pred in zip(references, predictions, strict=True):
        hidden, _, content = _hidden(tm, [pred, *refs])
        tokens = [h[c] for h, c in zip(hidden, content, strict=True)]
        tokens = [t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12) for t in tokens]
        best = (0.0, 0.0, -1.0)
        for ref in tokens[1:]:
            if len(tokens[0]) == 0 or len(ref) == 0:
                continue
            sim = tokens[0] @ ref.T
            p = float(sim.max(axis=1).mean())
            r = float(sim.max(axis=0).mean())
            f = 2 * p * r / (p + r) if p + r > 0 else 0.0
            if f > best[2]:
                best = (p, r, f)
        p_sum, r_sum, f_sum = p_sum + best[0], r_sum + best[1], f_sum + max(best[2], 0.0)
    n = max(len(predictions), 1)
    return {"BERTScore-P": p_sum / n, "BERTScore-R": r_sum / n, "BERTScore-F1": f_sum / n}
