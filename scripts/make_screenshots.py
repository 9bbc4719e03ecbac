"""Screenshots of the panel for the README: ``docs/screenshots/{panel,timeline,live}.png``.

Runs offscreen (no display needed): an in-process `lite` engine on a free loopback port,
the panel annotating and narrating ``docs/demo/demo.flac``, then its Live tab playing the
same file as a microphone. Usage: ``python scripts/make_screenshots.py [--out FOLDER]``.
The test suite runs it (``tests/ui/test_screenshots.py``), so it works with the panel that ships.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
DEMO = ROOT / "docs" / "demo" / "demo.flac"

log = logging.getLogger("screenshots")


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Write panel.png, timeline.png and live.png; returns the Live tab's latency p50/p95 (ms).

    Raises:
        TimeoutError: the panel did not annotate, narrate or caption live in time.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(OUT), help=f"folder for the PNGs (default: {OUT})")
    out = Path(parser.parse_args(argv).out)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from PyQt6.QtWidgets import QApplication

    from engine import presets
    from engine.pipeline import Annotator
    from engine.server import EngineServer, ServerConfig
    from ui.app import MainWindow

    server = EngineServer(Annotator(presets.load("lite"), store=None), ServerConfig(port=0))
    server.start()
    app = QApplication.instance() or QApplication([])

    def spin(done: Callable[[], bool], timeout_s: float = 60.0, what: str = "") -> None:
        t0 = time.monotonic()
        while not done():
            if time.monotonic() - t0 > timeout_s:
                if what:
                    rows = ", ".join(
                        f"{r.start_s:.0f}-{r.end_s:.0f}s {r.state}"
                        + (f" ({r.error})" if r.error else "")
                        for r in window.model.rows
                    )
                    took = f"screenshots: {what} took over {timeout_s:.0f} s"
                    raise TimeoutError(f"{took}; regions: {rows or 'none'}")
                return
            app.processEvents()
            time.sleep(0.02)

    window = MainWindow(port=server.address[1])
    window.resize(1280, 800)
    window.show()
    window.open_audio(str(DEMO))
    spin(
        lambda: bool(window.model.rows) and all(r.state == "done" for r in window.model.rows),
        what="annotating the demo",
    )
    spin(lambda: window.narrative is not None, what="narrating the demo")  # the panel asks
    window.waveform.select(window.model.rows[1].id)
    window.table.selectRow(1)
    spin(lambda: False, 0.3)
    out.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(out / "panel.png"))
    window.save_timeline(str(out / "timeline.png"))
    window.live_tab.window_spin.setValue(6.0)
    window.live_tab.hop_spin.setValue(2.0)
    window.start_listening(file=str(DEMO), speed=1.0)
    spin(lambda: len(window.live.latencies_s) >= 6, 60.0, what="six live windows")
    spin(lambda: False, 0.2)
    window.grab().save(str(out / "live.png"))
    latency = {"p50_ms": window.live.percentile_ms(50), "p95_ms": window.live.percentile_ms(95)}
    log.info("live latency p50=%.0f ms p95=%.0f ms", latency["p50_ms"], latency["p95_ms"])
    window.live.stop()
    window.close()
    server.stop()
    return latency


if __name__ == "__main__":
    main()
