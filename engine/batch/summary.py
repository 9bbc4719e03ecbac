"""The catalogue summary: counts in ``summary.json``, a ``summary.md`` page and PNG plots of
the keys, tempi, genres and vocals of every annotated region (matplotlib, Agg backend).

Keys and vocals are weighted by time (minutes of audio), tempi and genres count regions.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.labels import KEYS, VOCALS

SUMMARY_DIR = "summary"
MAX_GENRES = 15


@dataclass(frozen=True)
class Summary:
    """What a catalogue holds.

    Attributes:
        files: distinct files with at least one annotated region.
        failed: distinct jobs that failed.
        regions: annotated regions.
        minutes: minutes of audio annotated.
        key_minutes: minutes per track-level key (regions without a clear key omitted).
        vocals_minutes: minutes per vocals label.
        genres: regions tagged with each genre, most frequent first.
        tempi_bpm: tempo of every region that has one.
    """

    files: int
    failed: int
    regions: int
    minutes: float
    key_minutes: dict[str, float] = field(default_factory=dict)
    vocals_minutes: dict[str, float] = field(default_factory=dict)
    genres: dict[str, int] = field(default_factory=dict)
    tempi_bpm: list[float] = field(default_factory=list)


def summarize(rows: Sequence[dict[str, Any]]) -> Summary:
    """Aggregate table rows (:mod:`engine.batch.table`) into a :class:`Summary`."""
    good = [r for r in rows if not r.get("error")]
    keys: Counter[str] = Counter()
    vocals: Counter[str] = Counter()
    genres: Counter[str] = Counter()
    for r in good:
        minutes = (r["end_s"] - r["start_s"]) / 60.0
        if r.get("key"):
            keys[r["key"]] += minutes
        if r.get("vocals"):
            vocals[r["vocals"]] += minutes
        genres.update(r.get("genres") or [])
    return Summary(
        files=len({r["file"] for r in good}),
        failed=len({(r["file"], r.get("start_s"), r.get("end_s")) for r in rows if r.get("error")}),
        regions=len(good),
        minutes=sum((r["end_s"] - r["start_s"]) / 60.0 for r in good),
        key_minutes={k: keys[k] for k in KEYS if k in keys},
        vocals_minutes={v: vocals[v] for v in VOCALS if v in vocals},
        genres=dict(genres.most_common()),
        tempi_bpm=[float(r["tempo_bpm"]) for r in good if r.get("tempo_bpm") is not None],
    )


def write(rows: Sequence[dict[str, Any]], out: str | os.PathLike[str]) -> Path:
    """Write ``summary.json``, ``summary.md`` and the plots into ``out/summary/``.

    Returns:
        The summary folder.
    """
    s = summarize(rows)
    folder = Path(out) / SUMMARY_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(asdict(s), indent=2), encoding="utf-8")
    plots = plot(s, folder)
    lines = [
        "# Catalogue summary",
        "",
        f"{s.files} files, {s.regions} regions, {s.minutes:.1f} minutes annotated; "
        f"{s.failed} failed.",
        "",
        *(f"![{p.stem}]({p.name})" for p in plots),
        "",
    ]
    (folder / "summary.md").write_text("\n".join(lines), encoding="utf-8")
    return folder


def plot(s: Summary, folder: Path) -> list[Path]:
    """The four PNG plots of a summary (``keys``, ``tempo``, ``genres``, ``vocals``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []

    def save(fig: Any, name: str) -> None:
        path = folder / f"{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)

    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.bar(range(len(KEYS)), [s.key_minutes.get(k, 0.0) for k in KEYS], color="tab:blue")
    ax.set_xticks(range(len(KEYS)), [k.replace(" major", "").replace(" minor", "m") for k in KEYS])
    ax.set(title="Keys (track-level, per region)", ylabel="minutes")
    save(fig, "keys")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(s.tempi_bpm, bins=range(40, 245, 5), color="tab:orange")
    ax.set(title="Tempo", xlabel="BPM", ylabel="regions")
    save(fig, "tempo")

    top = list(s.genres.items())[:MAX_GENRES]
    fig, ax = plt.subplots(figsize=(6, 0.3 * max(len(top), 4) + 1))
    ax.barh([g for g, _ in reversed(top)], [n for _, n in reversed(top)], color="tab:green")
    ax.set(title=f"Genres (top {MAX_GENRES})", xlabel="regions")
    save(fig, "genres")

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(list(VOCALS), [s.vocals_minutes.get(v, 0.0) for v in VOCALS], color="tab:purple")
    ax.set(title="Vocals", ylabel="minutes")
    save(fig, "vocals")
    return written
