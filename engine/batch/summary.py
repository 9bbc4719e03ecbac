"""The catalogue summary: counts in ``summary.json``, a ``summary.md`` page and PNG plots of
the keys, tempi, genres and vocals of every annotated region (matplotlib, Agg backend).

Keys and vocals are weighted by time (minutes of audio), tempi and genres count regions.
A :class:`Tally` adds rows one at a time and holds only the counts, so a summary of millions
of regions costs no more memory than one of ten.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.labels import KEYS, VOCALS

SUMMARY_DIR = "summary"
MAX_GENRES = 15
TEMPO_BIN_BPM = 5
"""Width of the tempo histogram's bins."""


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
        tempo_histogram: regions per tempo bin, keyed by the bin's lower edge in BPM
            (bins :data:`TEMPO_BIN_BPM` wide).
    """

    files: int
    failed: int
    regions: int
    minutes: float
    key_minutes: dict[str, float] = field(default_factory=dict)
    vocals_minutes: dict[str, float] = field(default_factory=dict)
    genres: dict[str, int] = field(default_factory=dict)
    tempo_histogram: dict[int, int] = field(default_factory=dict)


class Tally:
    """A :class:`Summary` built one row at a time.

    Rows must arrive grouped by file (as :func:`engine.batch.table.ordered_rows` gives
    them): distinct files are counted where the file changes.
    """

    def __init__(self) -> None:
        self.files = 0
        self.failed = 0
        self.regions = 0
        self.minutes = 0.0
        self.keys: Counter[str] = Counter()
        self.vocals: Counter[str] = Counter()
        self.genres: Counter[str] = Counter()
        self.tempi: Counter[int] = Counter()
        self._last_file: str | None = None

    def add(self, r: dict[str, Any]) -> None:
        """Count one table row (:mod:`engine.batch.table`); a failed job has one row."""
        if r.get("error"):
            self.failed += 1
            return
        if r["file"] != self._last_file:
            self.files += 1
            self._last_file = r["file"]
        minutes = (r["end_s"] - r["start_s"]) / 60.0
        self.regions += 1
        self.minutes += minutes
        if r.get("key"):
            self.keys[r["key"]] += minutes
        if r.get("vocals"):
            self.vocals[r["vocals"]] += minutes
        self.genres.update(r.get("genres") or [])
        if r.get("tempo_bpm") is not None:
            self.tempi[int(r["tempo_bpm"] // TEMPO_BIN_BPM) * TEMPO_BIN_BPM] += 1

    def summary(self) -> Summary:
        """What has been counted so far."""
        return Summary(
            files=self.files,
            failed=self.failed,
            regions=self.regions,
            minutes=self.minutes,
            key_minutes={k: self.keys[k] for k in KEYS if k in self.keys},
            vocals_minutes={v: self.vocals[v] for v in VOCALS if v in self.vocals},
            genres=dict(self.genres.most_common()),
            tempo_histogram=dict(sorted(self.tempi.items())),
        )


def summarize(rows: Iterable[dict[str, Any]]) -> Summary:
    """Aggregate table rows, grouped by file (see :class:`Tally`), into a :class:`Summary`."""
    tally = Tally()
    for r in rows:
        tally.add(r)
    return tally.summary()


def write(s: Summary, out: str | os.PathLike[str]) -> Path:
    """Write ``summary.json``, ``summary.md`` and the plots into ``out/summary/``.

    Returns:
        The summary folder.
    """
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
    edges = list(s.tempo_histogram)
    ax.bar(
        edges,
        list(s.tempo_histogram.values()),
        width=TEMPO_BIN_BPM,
        align="edge",
        color="tab:orange",
    )
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
