"""The evaluation report: versioned JSON, a Markdown table, PNG plots, deltas to an earlier one.

``report.json`` holds ``format``, ``version`` (:data:`REPORT_VERSION`), what was evaluated
(preset, manifest, options), row counts, one section per metric group (each with the number
of rows it used, its metrics, or the reason it was skipped) and the per-row predictions.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from engine.labels import KEYS, VOCALS

log = logging.getLogger(__name__)

REPORT_FORMAT = "sonicverse-evaluation"
REPORT_VERSION = 1


def write_json(report: Mapping[str, Any], path: Path) -> None:
    """Write ``report.json`` (non-finite numbers become null)."""
    path.write_text(json.dumps(_finite(report), indent=2) + "\n", encoding="utf-8")


def read_report(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a report written by :func:`write_json`.

    Raises:
        ValueError: the file is not a report of a version this code reads.
    """
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("format") != REPORT_FORMAT or data.get("version") != REPORT_VERSION:
        raise ValueError(
            f"{path}: format={data.get('format')!r} version={data.get('version')!r}, expected "
            f"{REPORT_FORMAT!r} version {REPORT_VERSION}"
        )
    return data


def flat_metrics(report: Mapping[str, Any]) -> dict[tuple[str, str], float]:
    """``(section, metric) -> value`` of every metric in a report."""
    out = {}
    for section, body in report["sections"].items():
        for name, value in body.get("metrics", {}).items():
            if isinstance(value, int | float) and value is not None:
                out[(section, name)] = float(value)
    return out


def deltas(
    report: Mapping[str, Any], earlier: Mapping[str, Any]
) -> list[tuple[str, str, float, float | None]]:
    """``(section, metric, value, value - earlier value or None)`` for each metric now."""
    now, before = flat_metrics(report), flat_metrics(earlier)
    return [
        (s, m, v, v - before[(s, m)] if (s, m) in before else None) for (s, m), v in now.items()
    ]


def markdown(report: Mapping[str, Any], *, earlier: Mapping[str, Any] | None = None) -> str:
    """``report.md``: a heading, what was evaluated and one table of every metric."""
    lines = [
        f"# Evaluation of preset `{report['preset']}`",
        "",
        f"Manifest `{report['manifest']}`: {report['rows']['read']} rows read, "
        f"{len(report['rows']['skipped'])} skipped, {report['rows']['annotated']} annotated, "
        f"{len(report['rows'].get('failed', []))} failed.",
        "",
    ]
    score = report.get("options", {}).get("score")
    if score:
        lines += [
            f"Rows with more than one region are scored on their {score} "
            + (
                "(`--score narrative`)."
                if score == "narrative"
                else "(`--score caption`: the regions' captions joined in order)."
            ),
            "",
        ]
    problems = [("skipped", p) for p in report["rows"]["skipped"]]
    problems += [("failed", p) for p in report["rows"].get("failed", [])]
    if problems:
        lines += ["| row | id | what | reason |", "|---|---|---|---|"]
        for what, p in problems:
            reason = str(p.get("reason", p.get("error", ""))).replace("|", "\\|")
            lines.append(f"| {p.get('row')} | {p.get('id') or ''} | {what} | {reason} |")
        lines.append("")
    before = flat_metrics(earlier) if earlier is not None else {}
    head = "| section | metric | value | rows |" + (" change |" if earlier is not None else "")
    lines += [head, "|---" * (5 if earlier is not None else 4) + "|"]
    for section, body in report["sections"].items():
        metrics = body.get("metrics", {})
        if not metrics:
            lines.append(
                f"| {section} | — | skipped: {body.get('skipped', 'no rows')} | {body['rows']} |"
                + (" |" if earlier is not None else "")
            )
            continue
        for name, value in metrics.items():
            row = f"| {section} | {name} | {fmt(value)} | {body['rows']} |"
            if earlier is not None:
                old = before.get((section, name))
                row += f" {'' if old is None or value is None else f'{value - old:+.3f}'} |"
            lines.append(row)
    lines.append("")
    return "\n".join(lines)


def plot(report: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """PNG plots of the sections present; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    key = report["sections"].get("key", {})
    if key.get("confusion"):
        m = np.array(key["confusion"])
        fig, ax = plt.subplots(figsize=(9, 8))
        ax.imshow(m, cmap="Blues")
        ax.set_xticks(range(len(KEYS) + 1), [*KEYS, "none"], rotation=90, fontsize=7)
        ax.set_yticks(range(len(KEYS)), KEYS, fontsize=7)
        ax.set_xlabel("estimated key")
        ax.set_ylabel("reference key")
        ax.set_title(f"Key confusion ({report['preset']}, {key['rows']} rows)")
        for i, j in zip(*np.nonzero(m), strict=True):
            ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=7, color="red")
        written.append(_save(fig, out_dir / "key_confusion.png"))

        rows = m.sum(axis=1)
        have = np.nonzero(rows)[0]
        fig, ax = plt.subplots(figsize=(8, 3.5))
        ax.bar([KEYS[i] for i in have], np.diag(m[:, : len(KEYS)])[have] / rows[have])
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy")
        ax.set_title("Accuracy per reference key")
        ax.tick_params(axis="x", rotation=60, labelsize=8)
        written.append(_save(fig, out_dir / "key_accuracy.png"))

    rel = key.get("reliability")
    if rel:
        conf = np.array(rel["confidence"], dtype=float)
        acc = np.array(rel["accuracy"], dtype=float)
        fig, ax = plt.subplots(figsize=(4.5, 4.5))
        ax.plot([0, 1], [0, 1], "--", color="grey", label="calibrated")
        ok = ~np.isnan(conf)
        ax.plot(conf[ok], acc[ok], "o-", label=f"ECE {rel['ECE']:.3f}")
        for c, a, n in zip(conf[ok], acc[ok], np.array(rel["count"])[ok], strict=True):
            ax.annotate(str(n), (c, a), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("key confidence")
        ax.set_ylabel("exact key accuracy")
        ax.set_title("Key confidence reliability")
        ax.legend(loc="upper left")
        written.append(_save(fig, out_dir / "key_reliability.png"))

    vocals = report["sections"].get("vocals", {})
    if vocals.get("confusion"):
        m = np.array(vocals["confusion"])
        fig, ax = plt.subplots(figsize=(4.5, 3.8))
        ax.imshow(m, cmap="Greens")
        ax.set_xticks(range(len(VOCALS) + 1), [*VOCALS, "n/a"])
        ax.set_yticks(range(len(VOCALS)), VOCALS)
        ax.set_xlabel("estimated")
        ax.set_ylabel("reference")
        ax.set_title(f"Vocals confusion ({vocals['rows']} rows)")
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                ax.text(j, i, str(m[i, j]), ha="center", va="center")
        written.append(_save(fig, out_dir / "vocals_confusion.png"))
    return written


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.3f}"
    return str(int(value)) if isinstance(value, float) else str(value)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _finite(obj.tolist())
    if isinstance(obj, np.generic):
        return _finite(obj.item())
    return obj
