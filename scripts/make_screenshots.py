"""Screenshots of the panel for the README: ``docs/screenshots/{panel,timeline,live}.png``.

Runs offscreen (no display needed): an in-process `lite` engine on a free loopback port,
the panel annotating and narrating ``docs/demo/demo.flac``, then its Live tab playing the
same file as a microphone. Usage: ``python scripts/make_screenshots.py``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
DEMO = ROOT / "docs" / "demo" / "demo.flac"

log = logging.getLogger("screenshots")


def main() -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from PyQt6.QtWidgets import QApplication

    from engine import presets
    from engine.pipeline import Annotator
    from engine.server import EngineServer, ServerConfig
    from ui.app import MainWindow

    server = EngineServer(Annotator(presets.load("lite"), store=None), ServerConfig(port=0))
    server.start()
    app = QApplication([])

    def spin(done: Callable[[], bool], timeout_s: float = 60.0) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s and not done():
            app.processEvents()
            time.sleep(0.02)

    window = MainWindow(port=server.address[1])
    window.resize(1280, 800)
    window.show()
    window.open_audio(str(DEMO))
    spin(lambda: bool(window.model.rows) and all(r.state == "done" for r in window.model.rows))
    window.narrate()
    spin(lambda: window.narrative is not None)
    window.waveform.select(window.model.rows[1].id)
    window.table.selectRow(1)
    spin(lambda: False, 0.3)
    OUT.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(OUT / "panel.png"))
    window.save_timeline(str(OUT / "timeline.png"))
    window.window_spin.setValue(6.0)
    window.hop_spin.setValue(2.0)
    window.start_listening(file=str(DEMO), speed=1.0)
    spin(lambda: len(window.live.latencies_s) >= 6, 60.0)
    spin(lambda: False, 0.2)
    window.grab().save(str(OUT / "live.png"))
    log.info(
        "live latency p50=%.0f ms p95=%.0f ms",
        window.live.percentile_ms(50),
        window.live.percentile_ms(95),
    )
    window.live.stop()
    window.close()
    server.stop()


if __name__ == "__main__":
    main()
