"""Benchmark the musicnn tagger: speed on a 3-minute track, accuracy on labelled clips.

Speed: a 3-minute track (the labelled clips concatenated) tagged as one region and as
18 regions of 10 s, with torch limited to 2 threads; the log-mel front end and each network
are timed separately (best of ``--repeats``).

Accuracy: on the ``eval`` split of ``bench/data/tagger_set`` (build it with
``python scripts/make_vocal_set.py``; see that script for how the clips are made): vocals
none/male/female (accuracy, balanced accuracy, confusion matrix) and vocal-vs-none, and
micro-F1 of instrument, genre and mood tags at the default thresholds.

``--fit`` chooses the thresholds on the ``tune`` split instead (grid search: balanced
accuracy for the vocal thresholds, micro-F1 for each tag field) and prints them; they are
copied by hand into :class:`engine.tagging.TaggerSettings`.

Usage::

    python bench/tagger.py [--data bench/data/tagger_set] [--fit] [--repeats 3]

Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import os
import platform
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from rich.console import Console
from rich.table import Table

from engine.labels import VOCALS
from engine.tagging import FIELDS, TAG_FIELDS, Tagger, TaggerSettings, TagResult, vocal_evidence

THREADS = 2


def load_set(data: Path, split: str) -> tuple[list[dict[str, str]], list[np.ndarray]]:
    with open(data / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["split"] == split]
    audio = [sf.read(str(data / f"{r['clip']}.wav"), dtype="float32")[0] for r in rows]
    return rows, audio


def field_labels(row: dict[str, str], fld: str) -> set[str] | None:
    """Known labels of a clip for a field; None when the clip says nothing about it."""
    if fld == "instruments":
        return set(filter(None, row["instruments"].split(";")))
    if fld == "genres":
        return {row["genre"]} if row["genre"] else None
    return set(row["moods"].split(";"))


def _vocab(fld: str) -> set[str]:
    return {label for f, label in TAG_FIELDS.values() if f == fld}


def field_f1(
    rows: list[dict[str, str]], results: list[TagResult], fld: str, threshold: float
) -> tuple[float, float, float]:
    """Micro precision, recall, F1 over the labels the set can judge.

    Instruments: every instrument label is judged on every clip (beds' instruments are known).
    Genres: every genre label on genre clips. Moods: only slow/fast/loud/quiet (the rest of the
    mood vocabulary cannot be labelled by construction).
    """
    judged = {"moods": {"slow", "fast", "loud", "quiet"}}.get(fld, _vocab(fld))
    tp = fp = fn = 0
    for row, res in zip(rows, results, strict=True):
        truth = field_labels(row, fld)
        if truth is None:
            continue
        best = _field_scores(res, fld)
        predicted = {label for label in judged if best.get(label, 0.0) >= threshold}
        truth &= judged
        tp += len(predicted & truth)
        fp += len(predicted - truth)
        fn += len(truth - predicted)
    precision = tp / max(1, tp + fp)
    recall = tp / max(1, tp + fn)
    return precision, recall, 2 * precision * recall / max(1e-9, precision + recall)


def _field_scores(res: TagResult, fld: str) -> dict[str, float]:
    best: dict[str, float] = {}
    for (model, tag), (f, label) in TAG_FIELDS.items():
        if f == fld and f"{model}/{tag}" in res.scores:
            best[label] = max(best.get(label, 0.0), res.scores[f"{model}/{tag}"])
    return best


def vocal_report(
    tagger: Tagger, rows: list[dict[str, str]], results: list[TagResult]
) -> dict[str, object]:
    pairs = [
        (r["vocals"], tagger.vocals(res.scores).label)
        for r, res in zip(rows, results, strict=True)
        if r["kind"] == "vocal"
    ]
    confusion = np.zeros((3, 3), dtype=int)
    for truth, pred in pairs:
        confusion[VOCALS.index(truth), VOCALS.index(pred)] += 1
    per_class = confusion.diagonal() / np.maximum(1, confusion.sum(axis=1))
    binary = [(t != "none") == (p != "none") for t, p in pairs]
    return {
        "n": len(pairs),
        "accuracy": float(confusion.trace() / max(1, confusion.sum())),
        "balanced": float(per_class.mean()),
        "vocal_vs_none": float(np.mean(binary)),
        "confusion": confusion,
    }


def fit(tagger: Tagger, rows: list[dict[str, str]], results: list[TagResult]) -> TaggerSettings:
    """Grid-search the thresholds on the tune split."""
    vocal_rows = [(r, res) for r, res in zip(rows, results, strict=True) if r["kind"] == "vocal"]
    evidence = [vocal_evidence(res.scores) for _, res in vocal_rows]
    truth = np.array([VOCALS.index(r["vocals"]) for r, _ in vocal_rows])
    present = np.array([e["present"] - e["absent"] for e in evidence])
    choir = np.array([e["choir"] for e in evidence])
    gender = np.array([e["female"] - e["male"] for e in evidence])

    def balanced(v: float, c: float, g: float) -> float:
        vocal = np.maximum(present - v, choir - c) > 0
        pred = np.where(vocal, np.where(gender - g > 0, 2, 1), 0)
        return float(np.mean([np.mean(pred[truth == k] == k) for k in range(3)]))

    grid_v = np.round(np.arange(-0.3, 0.5, 0.01), 3)
    grid_c = np.round(np.arange(0.3, 1.0, 0.05), 3)
    grid_g = np.round(np.arange(-0.4, 0.4, 0.01), 3)
    # The first best point in grid order wins ties.
    best_score, best = -1.0, (0.0, 0.0, 0.0)
    for v, c, g in itertools.product(grid_v, grid_c, grid_g):
        score = balanced(v, c, g)
        if score > best_score + 1e-9:
            best_score, best = score, (float(v), float(c), float(g))
    chosen = {"vocal_threshold": best[0], "choir_threshold": best[1], "female_threshold": best[2]}
    print(f"vocals: balanced accuracy {best_score:.3f} on tune at {chosen}")
    for fld, key in zip(
        FIELDS, ("instrument_threshold", "genre_threshold", "mood_threshold"), strict=True
    ):
        grid = np.round(np.arange(0.02, 0.8, 0.01), 3)
        f1s = [field_f1(rows, results, fld, float(t))[2] for t in grid]
        chosen[key] = float(grid[int(np.argmax(f1s))])
        print(f"{fld}: micro-F1 {max(f1s):.3f} on tune at {key}={chosen[key]}")
    return dataclasses.replace(tagger.settings, **chosen)


def speed(tagger: Tagger, track: np.ndarray, repeats: int) -> Table:
    import torch

    table = Table(title=f"tagger speed, 3-minute track, torch threads = {THREADS}")
    for col in ("regions", "patches", "log-mel s", *tagger.models, "tag() s", "x real time"):
        table.add_column(col, justify="right")
    duration_s = track.size / tagger.sr
    for n_regions in (1, 18):
        regions = np.array_split(track, n_regions)
        best: dict[str, float] = {}
        for _ in range(repeats):
            t0 = time.perf_counter()
            patches = torch.cat([tagger.logmel_patches(r) for r in regions])
            timings = {"log-mel": time.perf_counter() - t0}
            with torch.inference_mode():
                for name, model in tagger.models.items():
                    t0 = time.perf_counter()
                    step = tagger.settings.batch_patches
                    for s in range(0, patches.shape[0], step):
                        model(patches[s : s + step])
                    timings[name] = time.perf_counter() - t0
            t0 = time.perf_counter()
            tagger.tag(regions)
            timings["tag"] = time.perf_counter() - t0
            best = {k: min(v, best.get(k, np.inf)) for k, v in timings.items()}
        table.add_row(
            str(n_regions),
            str(patches.shape[0]),
            f"{best['log-mel']:.3f}",
            *(f"{best[name]:.2f}" for name in tagger.models),
            f"{best['tag']:.2f}",
            f"{duration_s / best['tag']:.0f}x",
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("bench/data/tagger_set"))
    parser.add_argument("--fit", action="store_true", help="choose thresholds on the tune split")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(THREADS)
    console = Console()
    if not (args.data / "labels.csv").is_file():
        raise SystemExit(f"{args.data}/labels.csv not found: run scripts/make_vocal_set.py first")
    tagger = Tagger.load(TaggerSettings())
    split = "tune" if args.fit else "eval"
    rows, audio = load_set(args.data, split)
    results = tagger.tag(audio)
    if args.fit:
        settings = fit(tagger, rows, results)
        console.print(settings)
        tagger = Tagger(settings, tagger.models)

    console.print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {THREADS} threads"
    )
    rep = vocal_report(tagger, rows, results)
    table = Table(title=f"vocals on the {split} split ({rep['n']} clips)")
    for col in ("accuracy (3 classes)", "balanced accuracy", "vocal vs none"):
        table.add_column(col, justify="right")
    table.add_row(f"{rep['accuracy']:.3f}", f"{rep['balanced']:.3f}", f"{rep['vocal_vs_none']:.3f}")
    console.print(table)
    conf = Table(title="confusion (rows: truth, columns: predicted)")
    conf.add_column("")
    for v in VOCALS:
        conf.add_column(v, justify="right")
    for i, v in enumerate(VOCALS):
        conf.add_row(v, *(str(x) for x in rep["confusion"][i]))  # type: ignore[index]
    console.print(conf)

    s = tagger.settings
    tags = Table(title=f"tags on the {split} split (micro P / R / F1 at the thresholds)")
    for col in ("field", "threshold", "precision", "recall", "F1", "clips judged"):
        tags.add_column(col, justify="right")
    for fld, thr in zip(
        FIELDS, (s.instrument_threshold, s.genre_threshold, s.mood_threshold), strict=True
    ):
        p, r, f1 = field_f1(rows, results, fld, thr)
        n = sum(field_labels(row, fld) is not None for row in rows)
        tags.add_row(fld, f"{thr:.2f}", f"{p:.3f}", f"{r:.3f}", f"{f1:.3f}", str(n))
    console.print(tags)

    _, eval_audio = (rows, audio) if split == "eval" else load_set(args.data, "eval")
    track = np.concatenate(eval_audio)[: 180 * tagger.sr]
    console.print(speed(tagger, track, args.repeats))


if __name__ == "__main__":
    main()
