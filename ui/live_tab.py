"""The panel's Live tab: captions of the microphone (or a file played as one), with latency.

The tab owns its widgets and a :class:`ui.live.LiveCaptioner`; the window tells it which
preset and which running engine to use when it starts.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from PyQt6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from daw_bridge.clock import clock
from daw_bridge.keys import vocals_word
from ui.live import LiveCaptioner

EngineAddress = tuple[str, int]


class LiveTab(QWidget):
    """Device, window and hop fields, a Listen button, and what the last window said.

    Args:
        preset: returns the preset to caption with when listening starts.
        engine: returns the address of a running engine to send windows to, or None to
            caption in a child process of the panel.
        parent: the owning widget.
    """

    def __init__(
        self,
        *,
        preset: Callable[[], str],
        engine: Callable[[], EngineAddress | None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._preset = preset
        self._engine = engine
        self.live = LiveCaptioner(self)
        form = QFormLayout()
        self.device_edit = QLineEdit(self)
        self.device_edit.setPlaceholderText("default input (or an index / part of a name)")
        self.window_spin = _seconds(self, 1.0, 60.0, 10.0)
        self.hop_spin = _seconds(self, 0.5, 30.0, 2.0)
        form.addRow("input device", self.device_edit)
        form.addRow("window", self.window_spin)
        form.addRow("hop", self.hop_spin)
        self.listen_button = QPushButton("Listen", self)
        self.listen_button.setCheckable(True)
        self.caption = QLabel("—", self)
        self.caption.setWordWrap(True)
        self.caption.setStyleSheet("font-size: 15px;")
        self.facts = QLabel("", self)
        self.latency = QLabel("", self)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        row = QHBoxLayout()
        row.addWidget(self.listen_button)
        row.addStretch(1)
        layout.addLayout(row)
        for w in (self.facts, self.caption, self.latency, self.status):
            layout.addWidget(w)
        layout.addStretch(1)
        self.listen_button.toggled.connect(self._toggle)
        self.live.result.connect(self._on_result)
        self.live.notice.connect(self._on_event)
        self.live.runningChanged.connect(self._on_running)

    def start(
        self, *, device: str | None = None, file: str | None = None, speed: float = 1.0
    ) -> None:
        """Caption the microphone ``device`` (or ``file`` played at ``speed``)."""
        self.status.setText("starting…")
        self.caption.setText("—")
        self.facts.setText("")
        self.latency.setText("")
        self.live.start(
            preset=self._preset(),
            device=device,
            file=file,
            speed=speed,
            window_s=self.window_spin.value(),
            hop_s=self.hop_spin.value(),
            engine=self._engine(),
        )

    def stop(self) -> None:
        """Stop listening (nothing happens when not listening)."""
        self.live.stop()

    def _toggle(self, on: bool) -> None:
        if on and not self.live.running:
            self.start(device=self.device_edit.text().strip() or None)
        elif not on and self.live.running:
            self.live.stop()

    def _on_result(self, item: dict) -> None:
        a = item.get("annotation")
        span = f"{clock(item['start_s'])}–{clock(item['end_s'])}"
        if a is None:
            error = html.escape(str(item.get("error")), quote=False)
            self.caption.setText(f"<span style='color:#c0392b'>⚠ {error}</span>")
            self.facts.setText(span)
        else:
            key = "silence" if a.get("silent") else (a["key"]["key"] if a.get("key") else "—")
            v = a.get("vocals")
            vocals = vocals_word(v["label"], v.get("probabilities", ())) if v else "—"
            tempo = "—" if a.get("tempo_bpm") is None else f"{a['tempo_bpm']:.0f} BPM"
            self.facts.setText(
                f"<b>{span}</b> &nbsp; key <b>{key}</b> &nbsp; "
                f"vocals <b>{vocals}</b> &nbsp; {tempo}"
            )
            self.caption.setText(html.escape(a.get("caption", ""), quote=False))
        shown = self.live.record_shown(float(item["t_end"]))
        self.latency.setText(
            f"latency {1000 * shown:.0f} ms (p50 {self.live.percentile_ms(50):.0f} ms, "
            f"p95 {self.live.percentile_ms(95):.0f} ms over {len(self.live.latencies_s)} windows)"
        )
        self.status.setText("listening")

    def _on_event(self, kind: str, message: str) -> None:
        colour = "#b7791f" if kind in ("overflow", "finished") else "#c0392b"
        text = html.escape(message, quote=False)
        self.status.setText(f"<span style='color:{colour}'>{kind}: {text}</span>")

    def _on_running(self, running: bool) -> None:
        self.listen_button.blockSignals(True)
        self.listen_button.setChecked(running)
        self.listen_button.setText("Stop" if running else "Listen")
        self.listen_button.blockSignals(False)


def _seconds(parent: QWidget, lo: float, hi: float, value: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox(parent)
    box.setRange(lo, hi)
    box.setValue(value)
    box.setSuffix(" s")
    return box
