"""``sonicverse evaluate``: run a preset over a labelled manifest and score what it says.

Each row is annotated through :class:`engine.pipeline.Annotator` with the default store, so
annotations already there are reused and a rerun is cheap. A row's regions are summarised
into one prediction (:func:`summarise`), each metric group uses the rows that carry what it
needs, and the report (``report.json``, ``report.md``, PNG plots) says how many that was.
A row with more than one region is scored on its narrative (``--score narrative``, the
default) or on its regions' captions joined in order (``--score caption``). Every row that
was skipped (it does not parse) or failed (it could not be annotated) is reported with its
row number and the reason, and makes the exit status 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.backends.base import Progress, no_progress
from engine.data.manifest import Manifest, ManifestRow, read_manifest
from engine.errors import EngineError
from engine.metrics import features
from engine.metrics.captions import BleuLevel, RougeVariant
from engine.metrics.report import REPORT_FORMAT, REPORT_VERSION
from engine.types import Region, RegionAnnotation, TrackResult

if TYPE_CHECKING:
    from engine.pipeline import Annotator

log = logging.getLogger(__name__)

SCORE_TEXTS = ("narrative", "caption")
"""What a row with more than one region is scored on: its narrative, or its regions' captions
joined in order (a one-region row is always scored on its caption)."""

VOCAL_SHARE = 0.25
"""A row has vocals when at least this share of its sounding regions report a voice."""

TAG_SHARE = 0.5
"""A tag counts as reported for a row when at least this share of its sounding regions
report it (each region reports the tags above the preset's thresholds)."""


@dataclass(frozen=True)
class RowPrediction:
    """What the preset says about one manifest row, summarised over its regions.

    Attributes:
        id: the row's id.
        key: the duration-weighted majority of the regions' (track-level) keys; None when no
            region has a clear key.
        key_confidence: the mean confidence of the regions holding that key.
        tempo_bpm: the median of the regions' tempi.
        vocals: ``"none"`` unless :data:`VOCAL_SHARE` of the regions hear a voice, then the
            more frequent of male/female; None when the backend detects no vocals.
        caption: the region's caption for a one-region row; else the narrative, or with
            ``score="caption"`` the regions' captions joined in order.
        tag_scores: per tag group, each tag's mean score over the regions (0 where absent).
        tags: per tag group, the tags reported in :data:`TAG_SHARE` of the regions.
        events: the narrative's changes ``(kind, time_s)``.
    """

    id: str
    key: str | None
    key_confidence: float | None
    tempo_bpm: float | None
    vocals: str | None
    caption: str
    tag_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    tags: dict[str, list[str]] = field(default_factory=dict)
    events: list[tuple[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class RowProblem:
    """A manifest row left out of the scores.

    Attributes:
        row: its 1-based row number in the manifest (None for a row not read from a file).
        reason: why, as the log says it.
        id: its id (None when the row did not parse).
    """

    row: int | None
    reason: str
    id: str | None = None


def summarise(row_id: str, result: TrackResult, *, score: str = "narrative") -> RowPrediction:
    """One prediction from a row's annotated regions (see :class:`RowPrediction`)."""
    sounding = [a for a in result.regions if not a.silent] or list(result.regions)
    weight: dict[str, float] = defaultdict(float)
    for a in sounding:
        if a.key is not None:
            weight[a.key.key] += a.duration_s
    key = max(weight, key=weight.__getitem__) if weight else None
    confidence = None
    if key is not None:
        held = [a for a in sounding if a.key is not None and a.key.key == key]
        confidence = float(
            np.average(
                [a.key.confidence for a in held if a.key], weights=[a.duration_s for a in held]
            )
        )
    tempi = [a.tempo_bpm for a in sounding if a.tempo_bpm]
    if len(result.regions) == 1:
        caption = result.regions[0].caption
    elif score == "caption":
        caption = " ".join(a.caption for a in result.regions if a.caption)
    else:
        caption = result.narrative.text
    tag_scores: dict[str, dict[str, float]] = {}
    tags: dict[str, list[str]] = {}
    for group in ("instruments", "genres", "moods"):
        totals: dict[str, float] = defaultdict(float)
        counts: Counter[str] = Counter()
        for a in sounding:
            for t in getattr(a, group):
                totals[t.label] += t.score
                counts[t.label] += 1
        n = max(len(sounding), 1)
        tag_scores[group] = {t: s / n for t, s in totals.items()}
        tags[group] = sorted(t for t, c in counts.items() if c >= TAG_SHARE * n)
    events = [(e.kind, s.start_s) for s in result.narrative.sections for e in s.events]
    return RowPrediction(
        id=row_id,
        key=key,
        key_confidence=confidence,
        tempo_bpm=float(np.median(tempi)) if tempi else None,
        vocals=_vocals(sounding),
        caption=caption,
        tag_scores=tag_scores,
        tags=tags,
        events=events,
    )


def _vocals(regions: Sequence[RegionAnnotation]) -> str | None:
    labels = [a.vocals.label for a in regions if a.vocals is not None]
    if not labels:
        return None
    voiced = [v for v in labels if v != "none"]
    if len(voiced) < VOCAL_SHARE * len(labels):
        return "none"
    return Counter(voiced).most_common(1)[0][0]


def row_regions(
    row: ManifestRow, *, duration_s: float, length_s: float, min_tail_s: float
) -> list[Region] | None:
    """The regions annotated for a row: None (the preset's cut of the whole file) without a
    span, else the preset's cut of the span."""
    if row.start_s is None and row.end_s is None:
        return None
    from engine.pipeline import plan_regions

    start = row.start_s or 0.0
    end = min(row.end_s if row.end_s is not None else duration_s, duration_s)
    return [
        Region(start + r.start_s, start + r.end_s)
        for r in plan_regions(end - start, length_s=length_s, min_tail_s=min_tail_s)
    ]


def annotate_rows(
    rows: Sequence[ManifestRow],
    annotator: Annotator,
    *,
    use_cache: bool = True,
    score: str = "narrative",
    progress: Progress = no_progress,
) -> tuple[dict[str, RowPrediction], list[RowProblem]]:
    """Predictions per row id, and a :class:`RowProblem` for each row that could not be
    annotated."""
    from engine import audio

    preds: dict[str, RowPrediction] = {}
    failed: list[RowProblem] = []
    for i, row in enumerate(rows):
        progress("rows", i, len(rows))
        try:
            regions = row_regions(
                row,
                duration_s=audio.info(row.audio).duration_s,
                length_s=annotator.preset.regions.length_s,
                min_tail_s=annotator.preset.regions.min_tail_s,
            )
            result = annotator.annotate(row.audio, regions, lyrics=row.lyrics, use_cache=use_cache)
        except EngineError as exc:
            log.warning("row %s (id %r) failed: %s", row.line, row.id, exc)
            failed.append(RowProblem(row.line, str(exc), row.id))
            continue
        preds[row.id] = summarise(row.id, result, score=score)
    progress("rows", len(rows), len(rows))
    return preds, failed


def score(
    rows: Sequence[ManifestRow],
    preds: dict[str, RowPrediction],
    *,
    text_model: str | None = None,
    bleu_level: BleuLevel = "corpus",
    rouge_variant: RougeVariant = "fmeasure",
) -> dict[str, dict[str, Any]]:
    """The report's sections: per metric group the rows used and the metrics (or why not)."""
    done = [r for r in rows if r.id in preds]
    sections: dict[str, dict[str, Any]] = {}

    cap = [r for r in done if r.captions]
    refs = [list(r.captions) for r in cap]
    hyps = [preds[r.id].caption for r in cap]
    sections["captions"] = _section(len(cap))
    if cap:
        from engine.metrics.captions import caption_metrics

        sections["captions"]["metrics"] = caption_metrics(
            refs,
            hyps,
            bleu_level=bleu_level,
            rouge_variant=rouge_variant,
        )
    sections["BERTScore"] = _section(len(cap))
    sections["retrieval"] = _section(len(cap))
    if cap:
        _text_model_sections(sections, text_model, refs, hyps)

    keyed = [r for r in done if r.labels.key is not None]
    k_ref = [str(r.labels.key) for r in keyed]
    k_est = [preds[r.id].key for r in keyed]
    sections["key"] = _section(len(keyed))
    if keyed:
        conf = [
            (preds[r.id].key_confidence, preds[r.id].key == r.labels.key)
            for r in keyed
            if preds[r.id].key is not None
        ]
        c, a, n, ece = features.reliability([x[0] or 0.0 for x in conf], [x[1] for x in conf])
        sections["key"].update(
            metrics=features.key_metrics(k_ref, k_est),
            confusion=features.key_confusion(k_ref, k_est).tolist(),
            reliability={
                "confidence": c.tolist(),
                "accuracy": a.tolist(),
                "count": n.tolist(),
                "ECE": ece,
            },
        )

    timed = [r for r in done if r.labels.tempo_bpm is not None]
    sections["tempo"] = _section(len(timed))
    if timed:
        sections["tempo"]["metrics"] = features.tempo_metrics(
            [float(r.labels.tempo_bpm or 0) for r in timed], [preds[r.id].tempo_bpm for r in timed]
        )

    voiced = [r for r in done if r.labels.vocals is not None]
    sections["vocals"] = _section(len(voiced))
    if voiced and all(preds[r.id].vocals is None for r in voiced):
        sections["vocals"]["skipped"] = "the preset reports no vocals"
    elif voiced:
        metrics, confusion = features.vocals_metrics(
            [str(r.labels.vocals) for r in voiced], [preds[r.id].vocals for r in voiced]
        )
        sections["vocals"].update(metrics=metrics, confusion=confusion.tolist())

    for group in ("instruments", "genres", "moods"):
        tagged = [r for r in done if getattr(r.labels, group) is not None]
        sections[group] = _section(len(tagged))
        if tagged and not any(preds[r.id].tag_scores.get(group) for r in tagged):
            sections[group]["skipped"] = f"the preset reports no {group}"
        elif tagged:
            sections[group]["metrics"] = features.tag_metrics(
                [getattr(r.labels, group) for r in tagged],
                [preds[r.id].tag_scores.get(group, {}) for r in tagged],
                [preds[r.id].tags.get(group, []) for r in tagged],
            )

    evented = [r for r in done if r.labels.events is not None]
    sections["events"] = _section(len(evented))
    if evented:
        sections["events"]["metrics"] = features.event_metrics(
            [
                features.event_counts(
                    [(e.kind, e.time_s) for e in r.labels.events or ()], preds[r.id].events
                )
                for r in evented
            ]
        )
    for body in sections.values():
        if body["rows"] == 0:
            body.setdefault("skipped", "no row has the labels it needs")
    return sections


def _section(rows: int) -> dict[str, Any]:
    return {"rows": rows}


def _text_model_sections(
    sections: dict[str, dict[str, Any]],
    path: str | None,
    refs: list[list[str]],
    hyps: list[str],
) -> None:
    if path is None:
        reason = "no --text-model folder given"
        log.warning("BERTScore and retrieval skipped: %s", reason)
        sections["BERTScore"]["skipped"] = sections["retrieval"]["skipped"] = reason
        return
    from engine.errors import ModelLoadError
    from engine.metrics import retrieval

    try:
        tm = retrieval.load_text_model(path)
    except ModelLoadError as exc:
        log.warning("BERTScore and retrieval skipped: %s", exc)
        sections["BERTScore"]["skipped"] = sections["retrieval"]["skipped"] = str(exc)
        return
    sections["BERTScore"]["metrics"] = retrieval.bertscore(tm, refs, hyps)
    sections["retrieval"]["metrics"] = retrieval.retrieval(tm, [r[0] for r in refs], hyps)


def build_report(
    manifest: Manifest,
    preds: dict[str, RowPrediction],
    failed: Sequence[RowProblem],
    sections: dict[str, dict[str, Any]],
    *,
    preset: str,
    options: dict[str, Any],
) -> dict[str, Any]:
    """The versioned report (see :mod:`engine.metrics.report`)."""
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "preset": preset,
        "manifest": manifest.path,
        "options": options,
        "rows": {
            "read": len(manifest.rows),
            "skipped": [{"row": n, "reason": why} for n, why in manifest.skipped],
            "annotated": len(preds),
            "failed": [asdict(f) for f in failed],
        },
        "sections": sections,
        "predictions": [asdict(p) for p in preds.values()],
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``sonicverse evaluate``."""
    parser.add_argument("manifest", help="the labelled manifest (.jsonl)")
    parser.add_argument("--preset", default="lite", help="preset name or .toml path")
    parser.add_argument("--out", default="report", help="folder for report.json, .md and plots")
    parser.add_argument("--compare", help="an earlier report.json: print the changes")
    parser.add_argument(
        "--text-model", help="local folder of a text encoder for BERTScore and retrieval"
    )
    parser.add_argument(
        "--bleu",
        choices=["corpus", "sentence"],
        default="corpus",
        help="BLEU over the corpus (standard) or the mean of rows",
    )
    parser.add_argument(
        "--rouge",
        choices=["fmeasure", "recall"],
        default="fmeasure",
        help="ROUGE F-measure (standard) or recall (ALCAP)",
    )
    parser.add_argument(
        "--score",
        choices=SCORE_TEXTS,
        default="narrative",
        help="what a row with more than one region is scored on: its narrative (default) or "
        "its regions' captions joined in order",
    )
    parser.add_argument("--no-cache", action="store_true", help="ignore cached annotations")
    parser.add_argument("--store", help="annotation store (SQLite file); default: user data dir")
    parser.add_argument("--device", help="device for neural presets (cuda, cpu)")
    parser.add_argument("--no-plots", action="store_true", help="write no PNG plots")


def run(args: argparse.Namespace) -> int:
    """Run ``sonicverse evaluate``: 0 when every row was read and annotated, 1 when any row was
    skipped or failed, 2 on errors that stop the run (unreadable manifest, bad preset, earlier
    report or ``--out``)."""
    from rich.console import Console
    from rich.markup import escape

    err = Console(stderr=True)
    try:
        return _run(args, Console(), err)
    except (EngineError, ValueError, OSError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2


def _run(args: argparse.Namespace, out: Any, err: Any) -> int:

    from engine import presets
    from engine.metrics import report as rep
    from engine.pipeline import Annotator
    from engine.progress import progress_bar
    from engine.store import Store

    out_dir = check_out(args.out)
    earlier = rep.read_report(args.compare) if args.compare else None
    manifest = read_manifest(args.manifest)
    for number, why in manifest.skipped:
        err.print(f"row {number} skipped: {why}", highlight=False)
    preset = presets.load(args.preset)
    annotator = Annotator(preset, store=Store(args.store), device=args.device)
    bar = progress_bar(err)
    try:
        with bar:
            task = bar.add_task("rows", total=len(manifest.rows))

            def report(stage: str, done: int, total: int) -> None:
                bar.update(task, description=stage, completed=done, total=total)

            preds, failed = annotate_rows(
                manifest.rows,
                annotator,
                use_cache=not args.no_cache,
                score=args.score,
                progress=report,
            )
    finally:
        annotator.close()
    options = {
        "bleu": args.bleu,
        "rouge": args.rouge,
        "text_model": args.text_model,
        "score": args.score,
    }
    sections = score(
        manifest.rows,
        preds,
        text_model=args.text_model,
        bleu_level=args.bleu,
        rouge_variant=args.rouge,
    )
    result = build_report(manifest, preds, failed, sections, preset=preset.name, options=options)
    rep.write_json(result, out_dir / "report.json")
    (out_dir / "report.md").write_text(rep.markdown(result, earlier=earlier), encoding="utf-8")
    plots = [] if args.no_plots else rep.plot(result, out_dir)
    print_summary(result, out, earlier=earlier)
    for f in failed:
        err.print(f"row {f.row} (id {f.id!r}) failed: {f.reason}", highlight=False)
    err.print(f"wrote {out_dir / 'report.json'}, report.md and {len(plots)} plots", highlight=False)
    if failed or manifest.skipped:
        err.print(
            f"{len(manifest.skipped)} rows skipped, {len(failed)} failed: exit status 1",
            highlight=False,
        )
        return 1
    return 0


def check_out(out: str) -> Path:
    """The report folder, created and checked writable before any work.

    Raises:
        EngineError: ``out`` is an existing file, or the folder cannot be created or written.
    """
    import os

    p = Path(out)
    if p.exists() and not p.is_dir():
        raise EngineError(f"--out {p}: exists and is not a folder; name a folder for the report")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EngineError(f"--out {p}: cannot create the report folder ({exc})") from None
    if not os.access(p, os.W_OK):
        raise EngineError(f"--out {p}: the report folder is not writable")
    return p


def print_summary(result: dict[str, Any], out: Any, *, earlier: dict[str, Any] | None) -> None:
    """The metrics table on the terminal, with a change column against ``earlier``."""
    from rich.table import Table

    from engine.metrics import report as rep

    table = Table("section", "metric", "value", "rows", title=f"preset {result['preset']}")
    if earlier is not None:
        table.add_column(f"change vs {earlier['preset']}")
    changes = {(s, m): d for s, m, _, d in rep.deltas(result, earlier)} if earlier else {}
    for section, body in result["sections"].items():
        for name, value in body.get("metrics", {}).items():
            cells = [section, name, rep.fmt(value), str(body["rows"])]
            if earlier is not None:
                d = changes.get((section, name))
                cells.append("new" if d is None else f"{d:+.3f}")
            table.add_row(*cells)
        if not body.get("metrics"):
            cells = [section, "", f"skipped: {body.get('skipped', '')}", str(body["rows"])]
            table.add_row(*cells, *([""] if earlier is not None else []))
    out.print(table)


__all__ = [
    "RowPrediction",
    "RowProblem",
    "add_arguments",
    "annotate_rows",
    "check_out",
    "run",
    "score",
    "summarise",
]
