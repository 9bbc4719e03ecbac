"""Feature metrics: key, tempo, vocals, tags and narrative events.

- Key: MIREX weighted score (mir_eval.key: same 1, fifth 0.5, relative 0.3, parallel 0.2)
  and accuracy (exact). A row with no estimate ("no clear key") scores 0.
- Tempo: accuracy-1 (within 4 % of the reference) and accuracy-2 (within 4 % of the
  reference times 1, 2, 3, 1/2 or 1/3: octave and triple errors allowed), Gouyon et al.'s
  definitions, computed here (mir_eval's tempo metric needs two reference tempi).
- Vocals: accuracy over none/male/female, a confusion matrix, and presence accuracy
  (none vs any voice).
- Tags: ROC-AUC and PR-AUC (average precision), macro over tags with both positive and
  negative rows, from scikit-learn; F1 (micro) of the tags the preset reported, i.e. at the
  preset's thresholds. A tag the backend did not report scores 0.
- Events: precision/recall/F1 of the narrative's changes against the labelled ones, one to
  one, same kind, within +-10 s (mir_eval.util.match_events).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.labels import KEYS, VOCALS

TEMPO_TOLERANCE = 0.04
TEMPO_FACTORS = (1.0, 2.0, 3.0, 1 / 2, 1 / 3)
EVENT_WINDOW_S = 10.0


def key_score(reference: str, estimate: str | None) -> float:
    """MIREX weighted score of one estimate (None scores 0)."""
    import mir_eval

    if estimate is None:
        return 0.0
    return float(mir_eval.key.weighted_score(reference, estimate))  # KEYS spell tonics as it reads


def key_metrics(references: Sequence[str], estimates: Sequence[str | None]) -> dict[str, float]:
    """``MIREX weighted`` and ``accuracy`` (means over rows), plus the share per relation."""
    scores = [key_score(r, e) for r, e in zip(references, estimates, strict=True)]
    n = len(scores)
    if n == 0:
        return {}
    out = {
        "MIREX weighted": float(np.mean(scores)),
        "accuracy": float(np.mean([s == 1.0 for s in scores])),
    }
    for name, value in (("fifth", 0.5), ("relative", 0.3), ("parallel", 0.2)):
        out[f"share {name}"] = float(np.mean([s == value for s in scores]))
    out["share no key"] = float(np.mean([e is None for e in estimates]))
    return out


def key_confusion(references: Sequence[str], estimates: Sequence[str | None]) -> np.ndarray:
    """``[24, 25]`` counts: reference key (rows, KEYS order) x estimate (last column: none)."""
    m = np.zeros((len(KEYS), len(KEYS) + 1), dtype=np.int64)
    for r, e in zip(references, estimates, strict=True):
        m[KEYS.index(r), len(KEYS) if e is None else KEYS.index(e)] += 1
    return m


def tempo_metrics(
    references: Sequence[float], estimates: Sequence[float | None]
) -> dict[str, float]:
    """``accuracy-1`` and ``accuracy-2`` (means over rows; a missing estimate is wrong)."""
    if not references:
        return {}
    acc1 = acc2 = 0
    for ref, est in zip(references, estimates, strict=True):
        if est is None:
            continue
        acc1 += abs(est - ref) <= TEMPO_TOLERANCE * ref
        acc2 += any(abs(est - f * ref) <= TEMPO_TOLERANCE * f * ref for f in TEMPO_FACTORS)
    n = len(references)
    return {"accuracy-1": acc1 / n, "accuracy-2": acc2 / n}


def vocals_metrics(
    references: Sequence[str], estimates: Sequence[str | None]
) -> tuple[dict[str, float], np.ndarray]:
    """Accuracy, presence accuracy and the ``[3, 4]`` confusion matrix (reference x estimate
    in :data:`VOCALS` order, last column: no estimate)."""
    m = np.zeros((len(VOCALS), len(VOCALS) + 1), dtype=np.int64)
    for r, e in zip(references, estimates, strict=True):
        m[VOCALS.index(r), len(VOCALS) if e is None else VOCALS.index(e)] += 1
    n = len(references)
    if n == 0:
        return {}, m
    acc = float(np.trace(m[:, : len(VOCALS)]) / n)
    present = float(
        np.mean(
            [
                e is not None and (r == "none") == (e == "none")
                for r, e in zip(references, estimates, strict=True)
            ]
        )
    )
    return {"accuracy": acc, "presence accuracy": present}, m


def tag_metrics(
    references: Sequence[Sequence[str]],
    scores: Sequence[dict[str, float]],
    reported: Sequence[Sequence[str]],
) -> dict[str, float]:
    """ROC-AUC, PR-AUC and F1 over the tags named in the references.

    Args:
        references: per row, the true tags.
        scores: per row, the backend's score of each tag it scored (others count as 0).
        reported: per row, the tags the backend reported (above the preset's thresholds).
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    vocab = sorted({t for tags in references for t in tags})
    if not vocab:
        return {}
    y = np.array([[t in tags for t in vocab] for tags in references], dtype=np.int64)
    s = np.array([[sc.get(t, 0.0) for t in vocab] for sc in scores], dtype=np.float64)
    hit = np.array([[t in tags for t in vocab] for tags in reported], dtype=np.int64)
    both = [j for j in range(len(vocab)) if 0 < y[:, j].sum() < len(y)]
    out: dict[str, float] = {"tags": float(len(vocab)), "tags with AUC": float(len(both))}
    if both:
        out["ROC-AUC"] = float(np.mean([roc_auc_score(y[:, j], s[:, j]) for j in both]))
        out["PR-AUC"] = float(np.mean([average_precision_score(y[:, j], s[:, j]) for j in both]))
    tp = int((y & hit).sum())
    fp = int(((1 - y) & hit).sum())
    fn = int((y & (1 - hit)).sum())
    out["F1"] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return out


def event_counts(
    reference: Sequence[tuple[str, float]],
    estimate: Sequence[tuple[str, float]],
    *,
    window_s: float = EVENT_WINDOW_S,
) -> tuple[int, int, int]:
    """``(matched, reference count, estimate count)`` of ``(kind, time_s)`` events."""
    import mir_eval

    matched = 0
    for kind in {k for k, _ in reference} | {k for k, _ in estimate}:
        ref = np.array([t for k, t in reference if k == kind])
        est = np.array([t for k, t in estimate if k == kind])
        if len(ref) and len(est):
            matched += len(mir_eval.util.match_events(ref, est, window_s))
    return matched, len(reference), len(estimate)


def event_metrics(counts: Sequence[tuple[int, int, int]]) -> dict[str, float]:
    """Precision, recall and F1 pooled over rows' :func:`event_counts`."""
    tp = sum(c[0] for c in counts)
    n_ref = sum(c[1] for c in counts)
    n_est = sum(c[2] for c in counts)
    precision = tp / n_est if n_est else 1.0
    recall = tp / n_ref if n_ref else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "F1": f1,
        "labelled events": float(n_ref),
        "claimed events": float(n_est),
    }


def reliability(
    confidences: Sequence[float], correct: Sequence[bool], *, bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Reliability diagram data: per confidence bin the mean confidence, the accuracy and the
    count, and the expected calibration error (ECE)."""
    c = np.asarray(confidences, dtype=np.float64)
    ok = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(c, edges[1:-1]), 0, bins - 1)
    conf = np.full(bins, np.nan)
    acc = np.full(bins, np.nan)
    count = np.zeros(bins, dtype=np.int64)
    for b in range(bins):
        sel = idx == b
        count[b] = int(sel.sum())
        if count[b]:
            conf[b] = c[sel].mean()
            acc[b] = ok[sel].mean()
    ece = float(np.nansum(count * np.abs(acc - conf)) / max(len(c), 1))
    return conf, acc, count, ece
