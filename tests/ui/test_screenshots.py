"""The README's pictures come from the panel that ships: the screenshot script runs here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_screenshots_runs_offscreen(qtbot, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_screenshots", ROOT / "scripts" / "make_screenshots.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    latency = script.main(["--out", str(tmp_path)])
    for name in ("panel.png", "timeline.png", "live.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG", name
        assert (ROOT / "docs" / "screenshots" / name).is_file()  # what the README shows
    assert latency["p50_ms"] > 0
