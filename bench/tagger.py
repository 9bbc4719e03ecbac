"""Benchmark the musicnn tagger: speed on a 3-minute track, accuracy on labelled clips.

Variants: the networks in PyTorch float32 (the reference), PyTorch with int8 dynamic
quantisation (``torch.ao.quantization.quantize_dynamic``: dense layers only) and ONNX Runtime
float32 (the default when installed) on every 3 s patch of a region, on two and on one (the
``max_patches`` speed lever); each prints the largest score difference from the
reference, vocal accuracy and tag F1 on the eval split, and its speed on a 3-minute track (the
eval clips concatenated) in 18 regions of 10 s, with torch limited to 2 threads and
OpenMP's passive waiting, as the engine runs it (best of ``--repeats``).

Accuracy: on the ``eval`` split of ``bench/data/tagger_set`` (build it with
``python scripts/make_vocal_set.py``; see that script for how the clips are made): vocals
none/male/female (accuracy, balanced accuracy, confusion matrix) and vocal-vs-none, and
micro-F1 of instrument, genre and mood tags at the default thresholds.

``--fit`` chooses the thresholds on the ``tune`` split instead (grid search: balanced
accuracy for the vocal thresholds, micro-F1 for each tag field) and prints them; they are
copied by hand into :class:`engine.tagging.TaggerSettings`.

Usage::

    python bench/tagger.py [--data bench/data/tagger_set] [--fit] [--repeats 3] [--real DIR]

With real recordings (``--real``, default ``../shared/realaudio`` when it exists) a last table
compares every-patch tagging with the patch lever region by region (see
:func:`real_recordings`). Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from rich.console import Console
from rich.table import Table

from engine.errors import ModelLoadError
from engine.labels import VOCALS
from engine.tagging import (
    FIELDS,
    SR,
    TAG_FIELDS,
    Tagger,
    TaggerSettings,
    TagResult,
    prefer_passive_threads,
    vocal_evidence,
)

THREADS = 2
REAL_AUDIO = Path(__file__).resolve().parents[2] / "shared" / "realaudio"


MAX_FALSE_VOCAL_RATE = 1 / 6  # most instrumental tune clips a vocal threshold may call vocals


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


def _best(grid: np.ndarray, scores: list[float]) -> tuple[float, float]:
    """(threshold, score): the middle of the first run of grid points that reach the max."""
    scores_arr = np.asarray(scores)
    top = scores_arr.max()
    first = int(np.argmax(scores_arr >= top - 1e-9))
    last = first
    while last + 1 < len(grid) and scores_arr[last + 1] >= top - 1e-9:
        last += 1
    return float(grid[(first + last) // 2]), float(top)


def _balanced(truth: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean([np.mean(pred[truth == k] == k) for k in np.unique(truth)]))


def fit(tagger: Tagger, rows: list[dict[str, str]], results: list[TagResult]) -> TaggerSettings:
    """Choose each threshold on the tune split, one decision at a time.

    - ``vocal_threshold``: balanced accuracy of vocal vs none on the vocal clips, among the
      thresholds that call at most :data:`MAX_FALSE_VOCAL_RATE` of the instrumental clips
      "vocals";
    - ``female_threshold``: balanced accuracy of female vs male on the clips with a voice;
    - ``choir_threshold``: accuracy of "is a choir" on the solo-instrument clips (the Choir
      Aahs renders against every other instrument);
    - tag thresholds: micro-F1 per field, searched from 0.1 up (musicnn's tags fire at a few
      per cent on anything; a lower floor would fill captions with near-chance tags).

    Ties resolve to the middle of the first run of equally good grid points.
    """
    ev = [vocal_evidence(res.scores) for res in results]
    vocal_idx = [i for i, r in enumerate(rows) if r["kind"] == "vocal"]
    truth = np.array([rows[i]["vocals"] != "none" for i in vocal_idx])
    margin = np.array([ev[i]["present"] - ev[i]["absent"] for i in vocal_idx])
    grid = np.round(np.arange(-0.3, 0.5, 0.005), 4)
    # A library editor filters on "instrumental": calling an instrumental clip "vocals" costs
    # more than missing a quiet voice, so thresholds that call more than
    # MAX_FALSE_VOCAL_RATE of the instrumental clips "vocals" are not eligible.
    false_vocal = [float(np.mean(margin[~truth] > t)) for t in grid]
    vocal_t, vocal_score = _best(
        grid,
        [
            _balanced(truth, margin > t) if fv <= MAX_FALSE_VOCAL_RATE else -1.0
            for t, fv in zip(grid, false_vocal, strict=True)
        ],
    )

    sung_idx = [i for i in vocal_idx if rows[i]["vocals"] != "none"]
    female = np.array([rows[i]["vocals"] == "female" for i in sung_idx])
    gender = np.array([ev[i]["female"] - ev[i]["male"] for i in sung_idx])
    female_t, female_score = _best(grid, [_balanced(female, gender >= t) for t in grid])

    inst_idx = [i for i, r in enumerate(rows) if r["kind"] == "instrument"]
    is_choir = np.array(["choir" in rows[i]["instruments"].split(";") for i in inst_idx])
    choir = np.array([ev[i]["choir"] for i in inst_idx])
    cgrid = np.round(np.arange(0.3, 1.0, 0.005), 4)
    choir_t, choir_score = _best(cgrid, [float(np.mean((choir > t) == is_choir)) for t in cgrid])

    print(f"vocal vs none: balanced accuracy {vocal_score:.3f} at vocal_threshold={vocal_t}")
    print(f"female vs male: balanced accuracy {female_score:.3f} at female_threshold={female_t}")
    print(f"choir vs other instruments: accuracy {choir_score:.3f} at choir_threshold={choir_t}")
    chosen: dict[str, Any] = {
        "vocal_threshold": vocal_t,
        "female_threshold": female_t,
        "choir_threshold": choir_t,
    }
    tgrid = np.round(np.arange(0.1, 0.8, 0.01), 3)
    for fld, key in zip(
        FIELDS, ("instrument_threshold", "genre_threshold", "mood_threshold"), strict=True
    ):
        chosen[key], f1 = _best(tgrid, [field_f1(rows, results, fld, float(t))[2] for t in tgrid])
        print(f"{fld}: micro-F1 {f1:.3f} at {key}={chosen[key]}")
    return dataclasses.replace(tagger.settings, **chosen)


def tag_cached(
    tagger: Tagger, data: Path, split: str, *, rescore: bool
) -> tuple[list[dict[str, str]], list[np.ndarray], list[TagResult]]:
    """Rows, audio and tag results of a split; results cached in ``<data>/scores_<split>.json``
    (keyed by the models run; ``--rescore`` recomputes)."""
    rows, audio = load_set(data, split)
    cache = data / f"scores_{split}.json"
    key = ",".join(tagger.settings.models)
    if cache.is_file() and not rescore:
        saved = json.loads(cache.read_text())
        if saved.get("models") == key and saved.get("clips") == [r["clip"] for r in rows]:
            return rows, audio, [tagger.interpret(sc) for sc in saved["scores"]]
    results = tagger.tag(audio)
    cache.write_text(
        json.dumps(
            {
                "models": key,
                "clips": [r["clip"] for r in rows],
                "scores": [r.scores for r in results],
            }
        )
    )
    return rows, audio, results


def variants(base: TaggerSettings) -> dict[str, Tagger]:
    """The runtimes compared, each a loaded tagger with the same settings and weights."""
    import torch

    # the references tag every patch, as the networks were trained to be used
    torch_float = Tagger.load(dataclasses.replace(base, runtime="torch", max_patches=0))
    out = {"torch float32, every patch": torch_float}
    # quantize_dynamic covers Linear (and RNN) layers only: musicnn's convolutions stay float
    quantised = {
        name: torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        for name, model in torch_float.models.items()
    }
    out["torch int8 dynamic (dense layers), every patch"] = Tagger(torch_float.settings, quantised)
    try:
        onnx = Tagger.load(dataclasses.replace(base, runtime="onnx", max_patches=0))
    except ModelLoadError as exc:
        print(f"onnxruntime variant skipped: {exc}")
        return out
    out["onnxruntime float32, every patch"] = onnx
    # fewer 3 s patches per region: the speed lever the lite preset's max_patches pulls
    # (the eval clips are 6 s, two patches; the speed track's regions are 10 s, three)
    for n in (2, 1):
        settings = dataclasses.replace(onnx.settings, max_patches=n)
        out[f"onnxruntime float32, {n} patch{'es' if n > 1 else ''} per region"] = Tagger(
            settings, onnx.models
        )
    return out


def compare(
    taggers: dict[str, Tagger],
    rows: list[dict[str, str]],
    audio: list[np.ndarray],
    track: np.ndarray,
    repeats: int,
    split: str,
) -> Table:
    """Accuracy and speed of every variant side by side (speed: best of ``repeats``)."""
    table = Table(
        title=f"tagger variants: accuracy on the {split} split, speed on a 3-minute track in "
        f"18 regions of 10 s (torch threads = {THREADS})"
    )
    for col in (
        "variant",
        "max |d score| vs torch float, every patch",
        "vocals acc",
        "balanced",
        "vocal vs none",
        "F1 instr",
        "F1 genre",
        "F1 mood",
        "tag() s",
        "x real time",
    ):
        table.add_column(col, justify="right")
    regions = np.array_split(track, 18)
    duration_s = track.size / SR
    ref: list[TagResult] | None = None
    for name, t in taggers.items():
        results = t.tag(audio)
        ref = ref or results
        diff = max(
            abs(r.scores[k] - q.scores[k])
            for r, q in zip(results, ref, strict=True)
            for k in r.scores
        )
        rep = vocal_report(t, rows, results)
        s = t.settings
        f1 = [
            field_f1(rows, results, fld, thr)[2]
            for fld, thr in zip(
                FIELDS, (s.instrument_threshold, s.genre_threshold, s.mood_threshold), strict=True
            )
        ]
        t.tag(regions)
        best = np.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            t.tag(regions)
            best = min(best, time.perf_counter() - t0)
        table.add_row(
            name,
            f"{diff:.1e}",
            f"{rep['accuracy']:.3f}",
            f"{rep['balanced']:.3f}",
            f"{rep['vocal_vs_none']:.3f}",
            *(f"{x:.3f}" for x in f1),
            f"{best:.2f}",
            f"{duration_s / best:.0f}x",
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("bench/data/tagger_set"))
    parser.add_argument("--fit", action="store_true", help="choose thresholds on the tune split")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-speed", action="store_true", help="accuracy tables only")
    parser.add_argument("--rescore", action="store_true", help="ignore cached tag scores")
    parser.add_argument(
        "--real",
        type=Path,
        default=REAL_AUDIO if REAL_AUDIO.is_dir() else None,
        help="folder of real recordings with labels.csv (default ../shared/realaudio)",
    )
    args = parser.parse_args()
    prefer_passive_threads()  # as the engine does, before torch loads
    import torch

    torch.set_num_threads(THREADS)
    console = Console(width=170)
    if not (args.data / "labels.csv").is_file():
        raise SystemExit(f"{args.data}/labels.csv not found: run scripts/make_vocal_set.py first")
    tagger = Tagger.load(TaggerSettings())
    split = "tune" if args.fit else "eval"
    rows, audio, results = tag_cached(tagger, args.data, split, rescore=args.rescore)
    if args.fit:
        settings = fit(tagger, rows, results)
        console.print(settings)
        tagger = Tagger(settings, tagger.models)

    console.print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {THREADS} threads"
    )
    results = [tagger.interpret(r.scores, patches=r.patches) for r in results]
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
    if not args.skip_speed:
        eval_rows, _ = (rows, audio) if split == "eval" else load_set(args.data, "eval")
        console.print(
            compare(variants(tagger.settings), eval_rows, eval_audio, track, args.repeats, "eval")
        )
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        console.print(f"load average during the run (1, 5, 15 min): {load}")
    if args.real is not None:
        real = real_recordings(tagger, args.real)
        if real is not None:
            console.print(real)


def real_recordings(tagger: Tagger, folder: Path) -> Table | None:
    """Every-patch tagging against the patch lever on real recordings, in 10 s regions.

    ``folder`` holds the recordings and a ``labels.csv`` with ``file`` and ``vocals`` columns
    (``../shared/realaudio``). For 1 and 2 patches per region: how often the vocals label
    agrees with every-patch tagging, how often each agrees with the file's vocals label, and
    the mean Jaccard overlap of the instrument + genre + mood tag sets with every-patch's.
    """
    from engine import audio as engine_audio

    labels = folder / "labels.csv"
    if not labels.is_file():
        print(f"{labels} not found: the real-recordings table is skipped")
        return None
    with open(labels, newline="") as f:
        files = list(csv.DictReader(f))
    every = Tagger(dataclasses.replace(tagger.settings, max_patches=0), tagger.models)
    capped = {
        n: Tagger(dataclasses.replace(tagger.settings, max_patches=n), tagger.models)
        for n in (2, 1)
    }
    stats = {n: {"agree": 0, "truth": 0, "jaccard": []} for n in (0, *capped)}
    judged = regions_n = 0
    for row in files:
        clip = engine_audio.load(folder / row["file"])
        mono = engine_audio.resample(
            engine_audio.to_mono(clip.samples), sr=clip.sr, target_sr=tagger.sr
        )
        step = 10 * tagger.sr
        regions = [mono[i : i + step] for i in range(0, mono.size, step)]
        regions = [r for r in regions if r.size >= step // 2]
        ref = every.tag(regions)
        outs = {0: ref, **{n: t.tag(regions) for n, t in capped.items()}}
        known = row["vocals"] in VOCALS
        regions_n += len(regions)
        judged += len(regions) if known else 0
        for n, res in outs.items():
            for a, b in zip(ref, res, strict=True):
                stats[n]["agree"] += a.vocals.label == b.vocals.label  # type: ignore[operator]
                stats[n]["truth"] += known and b.vocals.label == row["vocals"]  # type: ignore[operator]
                tags_a = {t.label for t in a.instruments + a.genres + a.moods}
                tags_b = {t.label for t in b.instruments + b.genres + b.moods}
                union = tags_a | tags_b
                overlap = len(tags_a & tags_b) / len(union) if union else 1.0
                stats[n]["jaccard"].append(overlap)  # type: ignore[union-attr]
    table = Table(
        title=f"real recordings ({folder}): {len(files)} files, {regions_n} regions of 10 s "
        "(5-10 s tails kept), every patch vs the patch lever"
    )
    for col in (
        "patches per region",
        "vocals label = every patch's",
        f"vocals = the file's label ({judged} regions)",
        "tag-set Jaccard vs every patch",
    ):
        table.add_column(col, justify="right")
    for n, st in stats.items():
        table.add_row(
            "every" if n == 0 else str(n),
            f"{st['agree']}/{regions_n}",
            f"{st['truth']}/{judged}",
            f"{np.mean(st['jaccard']):.3f}",  # type: ignore[arg-type]
        )
    return table


if __name__ == "__main__":
    main()
