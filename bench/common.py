"""What the benchmarks share: the busy loop that plays a DAW's audio thread, the shipped
``lite`` preset rewritten with other ``[lite.tagger]`` values, as a file a child process or an
engine can load by path, a Markdown table with aligned columns, the cache of rendered songs
that the rhythm, form and chord benchmarks draw their sets from, and a signal's regions as
``sonicverse annotate`` analyses them, with the key the decoded track holds longest.

Imported by the benchmarks as ``common`` (a script's own folder is first on ``sys.path``).
"""

from __future__ import annotations

import json
import multiprocessing.synchronize
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from engine.backends.base import Segment
    from engine.types import RegionAnnotation

SongT = TypeVar("SongT")

ROOT = Path(__file__).resolve().parents[1]


def busy_loop(stop: multiprocessing.synchronize.Event) -> None:
    """Hold one core, as a DAW's audio thread does, until ``stop`` is set."""
    while not stop.is_set():
        pass


def lite_preset_file(folder: Path, name: str, tagger: dict[str, object]) -> Path:
    """``presets/lite.toml`` with each ``[lite.tagger]`` key of ``tagger`` set to its value
    (a string or an integer), written to ``folder/<name>.toml``."""
    text = (ROOT / "presets" / "lite.toml").read_text()
    for key, value in tagger.items():
        text = re.sub(rf"(?m)^{key} = .*$", "", text)
        line = f"{key} = {json.dumps(value)}\n"  # a TOML string or integer
        text = text.replace("[lite.tagger]\n", f"[lite.tagger]\n{line}", 1)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table with every column padded to its widest cell."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |"

    return "\n".join(
        [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)]
    )


def cached_renders(
    kinds: Sequence[str],
    n_per_kind: int,
    split: str,
    seed: int,
    cache: Path,
    render: Callable[[np.random.Generator, str, str, Path], SongT],
    arrays: Callable[[SongT], dict[str, np.ndarray]],
    rebuild: Callable[[str, str, dict[str, np.ndarray]], SongT],
) -> list[SongT]:
    """A benchmark's rendered set: ``n_per_kind`` songs of each of ``kinds``.

    Song ``i`` of the ``k``-th kind is named ``<split>-<kind>-<i>`` (slashes dropped from the
    kind) and drawn by ``render(rng, name, kind, tmp)`` from ``default_rng(seed + 100 k + i)``,
    so a set is the same wherever it is rendered. Each song is kept as ``<name>.npz`` under
    ``cache`` (``arrays`` gives what is saved) and read back from there with
    ``rebuild(name, kind, arrays)`` on later runs.
    """
    out = []
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for k, kind in enumerate(kinds):
            for i in range(n_per_kind):
                name = f"{split}-{kind.replace('/', '')}-{i}"
                f = cache / f"{name}.npz"
                if f.is_file():
                    with np.load(f) as z:
                        out.append(rebuild(name, kind, {key: z[key] for key in z.files}))
                    continue
                song = render(np.random.default_rng(seed + 100 * k + i), name, kind, Path(tmp))
                np.savez_compressed(f, **arrays(song))
                out.append(song)
    return out


def default_segments(
    y: np.ndarray, sr: int, name: str, *, length_s: float = 10.0, min_tail_s: float = 5.0
) -> list[Segment]:
    """A mono signal cut by the default region plan (:func:`engine.pipeline.plan_regions`),
    each region's samples as a :class:`~engine.backends.base.Segment`."""
    from engine.audio import Audio
    from engine.backends.base import Segment
    from engine.pipeline import plan_regions

    segs = []
    for r in plan_regions(y.size / sr, length_s=length_s, min_tail_s=min_tail_s):
        a, b = round(r.start_s * sr), round(r.end_s * sr)
        segs.append(Segment(r, Audio(y[None, a:b].copy(), sr, name, r.start_s)))
    return segs


def annotated(backend: Any, y: np.ndarray, sr: int, name: str) -> list[RegionAnnotation]:
    """Raw region annotations of a mono signal (:func:`default_segments`) by ``backend``,
    carrying the track's chords as ``sonicverse annotate`` hands them to the track decoder."""
    from engine.pipeline import carry_chords, track_chords_of

    chords = track_chords_of(y, sr=sr, analysis=backend.preset.analysis)
    return list(carry_chords(backend.analyze(default_segments(y, sr, name)), chords))


def track_key(regions: Sequence[RegionAnnotation]) -> str | None:
    """The key the decoded regions hold longest; None ("no clear key") when most audible
    time has none."""
    held: Counter[str | None] = Counter()
    for a in regions:
        if not a.silent:
            held[a.key.key if a.key is not None else None] += a.end_s - a.start_s
    return held.most_common(1)[0][0] if held else None
