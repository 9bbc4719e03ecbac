"""What the benchmarks share: the busy loop that plays a DAW's audio thread, the shipped
``lite`` preset rewritten with other ``[lite.tagger]`` values, as a file a child process or an
engine can load by path, and a Markdown table with aligned columns.

Imported by the benchmarks as ``common`` (a script's own folder is first on ``sys.path``).
"""

from __future__ import annotations

import json
import multiprocessing.synchronize
import re
from pathlib import Path

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
