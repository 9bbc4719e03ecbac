"""What the benchmarks share: the busy loop that plays a DAW's audio thread, the shipped
``lite`` preset rewritten with other ``[lite.tagger]`` values, as a file a child process or an
engine can load by path, a Markdown table with aligned columns, and the cache of rendered
songs that the rhythm, form and chord benchmarks draw their sets from.

Imported by the benchmarks as ``common`` (a script's own folder is first on ``sys.path``).
"""

from __future__ import annotations

import json
import multiprocessing.synchronize
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

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
