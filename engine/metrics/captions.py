"""Caption metrics, all offline: BLEU-1..4, METEOR, ROUGE-L, CIDEr-D (and the papers' variants).

- BLEU-n and CIDEr-D: pycocoevalcap (the COCO caption code SonicVerse reports), on text
  lowercased and tokenized by :func:`tokenize` as the Stanford PTB tokenizer jar would
  (words of every script and symbols such as ``#`` kept, punctuation dropped), without Java.
  pycocoevalcap's ``Cider`` is CIDEr-D (length penalty, clipping, x10), so it is named so.
- METEOR: pycocoevalcap's METEOR 1.5 jar, which needs a Java runtime (``java`` on PATH);
  without one the metric is skipped with a message.
- ROUGE-L (and ROUGE-1/2): rouge-score with its Porter stemmer, best reference per row.
  ``rouge="fmeasure"`` (the standard) or ``"recall"`` (what ALCAP reports).
- ``bleu="corpus"`` (COCO style, the standard) or ``"sentence"`` (mean of per-row BLEU).
- sacreBLEU (13a tokenizer, corpus level, 0-100) and MU-LLaMA's character-level BLEU
  (sacreBLEU ``char`` tokenizer) are named extras.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Sequence
from typing import Literal

log = logging.getLogger(__name__)

BleuLevel = Literal["corpus", "sentence"]
RougeVariant = Literal["fmeasure", "recall"]

_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)?#?|[^\w\s]")
"""A word of any script (with an apostrophe part, and a trailing ``#`` as in ``c#``), or any
other single symbol."""

PTB_PUNCTUATION = frozenset(
    [
        "''",
        "'",
        "``",
        "`",
        ".",
        "?",
        "!",
        ",",
        ":",
        "-",
        "--",
        "...",
        ";",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        '"',
        "’",
        "‘",
        "“",
        "”",
        "—",
        "–",
        "…",
    ]
)
"""The tokens the PTB tokenizer step of pycocoevalcap drops (its list, with the brackets and
quotes it maps to ``-LRB-``, ``''`` and the like, and their Unicode forms)."""


def tokenize(text: str) -> str:
    """Lowercase tokens joined by single spaces, as pycocoevalcap's PTB tokenizer step gives
    them: words of every script stay whole (``très``, ``日本語``), ``#`` and other symbols
    (``c#``, ``&``, ``%``) stay, sentence punctuation is dropped."""
    return " ".join(t for t in _TOKEN.findall(text.lower()) if t not in PTB_PUNCTUATION)


def _check(references: Sequence[Sequence[str]], predictions: Sequence[str]) -> None:
    if len(references) != len(predictions):
        raise ValueError(
            f"{len(predictions)} predictions for {len(references)} reference sets; expected "
            "one prediction per row"
        )
    empty = [i for i, refs in enumerate(references) if not refs]
    if empty:
        raise ValueError(f"rows {empty} have no reference caption; expected at least one each")


def _coco(
    references: Sequence[Sequence[str]], predictions: Sequence[str]
) -> tuple[dict[int, list[str]], dict[int, list[str]]]:
    gts = {i: [tokenize(r) for r in refs] for i, refs in enumerate(references)}
    res = {i: [tokenize(p)] for i, p in enumerate(predictions)}
    return gts, res


def bleu(
    references: Sequence[Sequence[str]],
    predictions: Sequence[str],
    *,
    level: BleuLevel = "corpus",
) -> dict[str, float]:
    """BLEU-1..4 in [0, 1] (pycocoevalcap, closest reference length).

    Args:
        references: per row, one or more reference captions.
        predictions: per row, the predicted caption.
        level: ``"corpus"`` (n-gram counts pooled over rows) or ``"sentence"`` (mean of rows).
    """
    from pycocoevalcap.bleu.bleu import Bleu

    _check(references, predictions)
    gts, res = _coco(references, predictions)
    corpus, per_row = Bleu(4).compute_score(gts, res, verbose=0)
    values = corpus if level == "corpus" else [sum(s) / len(s) for s in per_row]
    return {f"BLEU-{n + 1}": float(v) for n, v in enumerate(values)}


def cider_d(references: Sequence[Sequence[str]], predictions: Sequence[str]) -> float:
    """CIDEr-D (pycocoevalcap ``Cider``; n-gram IDF is taken over the rows given, so it needs
    several rows: on one row every n-gram has zero IDF and the score is 0)."""
    from pycocoevalcap.cider.cider import Cider

    _check(references, predictions)
    gts, res = _coco(references, predictions)
    score, _ = Cider().compute_score(gts, res)
    return float(score)


def java_available() -> bool:
    """Whether a Java runtime is on PATH (METEOR needs one)."""
    return shutil.which("java") is not None


def meteor(references: Sequence[Sequence[str]], predictions: Sequence[str]) -> float | None:
    """METEOR 1.5 in [0, 1] (pycocoevalcap jar); None, with a message, without Java."""
    if not java_available():
        log.warning(
            "METEOR skipped: no Java runtime ('java' not on PATH; apt install default-jre-headless)"
        )
        return None
    from pycocoevalcap.meteor.meteor import Meteor

    _check(references, predictions)
    gts, res = _coco(references, predictions)
    scorer = Meteor()
    try:
        score, _ = scorer.compute_score(gts, res)
    finally:
        scorer.meteor_p.stdin.close()
        scorer.meteor_p.wait()
    return float(score)


def rouge(
    references: Sequence[Sequence[str]],
    predictions: Sequence[str],
    *,
    variant: RougeVariant = "fmeasure",
) -> dict[str, float]:
    """ROUGE-1, ROUGE-2 and ROUGE-L in [0, 1], mean over rows of the best reference.

    Args:
        variant: ``"fmeasure"`` (standard) or ``"recall"`` (ALCAP's tables).
    """
    from rouge_score import rouge_scorer

    _check(references, predictions)
    names = ("rouge1", "rouge2", "rougeL")
    scorer = rouge_scorer.RougeScorer(list(names), use_stemmer=True)
    totals = dict.fromkeys(names, 0.0)
    for refs, pred in zip(references, predictions, strict=True):
        scores = scorer.score_multi(list(refs), pred)
        for name in names:
            totals[name] += getattr(scores[name], variant)
    n = len(predictions)
    label = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L"}
    return {label[k]: v / n for k, v in totals.items()}


def sacrebleu_score(
    references: Sequence[Sequence[str]],
    predictions: Sequence[str],
    *,
    tokenize_as: Literal["13a", "char"] = "13a",
) -> float:
    """Corpus BLEU by sacreBLEU, 0-100 (``"char"``: MU-LLaMA's character-level BLEU)."""
    import sacrebleu

    _check(references, predictions)
    width = max(len(r) for r in references)
    # sacreBLEU wants one stream per reference position; rows with fewer repeat their last
    streams = [[refs[min(i, len(refs) - 1)] for refs in references] for i in range(width)]
    return float(
        sacrebleu.corpus_bleu(
            list(predictions), streams, tokenize=tokenize_as, lowercase=True
        ).score
    )


def caption_metrics(
    references: Sequence[Sequence[str]],
    predictions: Sequence[str],
    *,
    bleu_level: BleuLevel = "corpus",
    rouge_variant: RougeVariant = "fmeasure",
) -> dict[str, float]:
    """Every caption metric; METEOR is absent when Java is missing.

    The ROUGE values are named ``ROUGE-L`` for the F-measure and ``ROUGE-L (recall)`` for
    ALCAP's variant; BLEU at sentence level is named ``BLEU-n (sentence)``.
    """
    out: dict[str, float] = {}
    suffix = "" if bleu_level == "corpus" else " (sentence)"
    out.update({k + suffix: v for k, v in bleu(references, predictions, level=bleu_level).items()})
    m = meteor(references, predictions)
    if m is not None:
        out["METEOR"] = m
    rsuffix = "" if rouge_variant == "fmeasure" else " (recall)"
    out.update(
        {k + rsuffix: v for k, v in rouge(references, predictions, variant=rouge_variant).items()}
    )
    out["CIDEr-D"] = cider_d(references, predictions)
    out["sacreBLEU"] = sacrebleu_score(references, predictions)
    out["chrBLEU (MU-LLaMA)"] = sacrebleu_score(references, predictions, tokenize_as="char")
    return out
