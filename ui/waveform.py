"""The waveform view: the file's overview with its regions, coloured by key.

Mouse: drag on empty ground (or Shift+drag anywhere) to add a region; drag a region to move
it; drag its edges to resize it; click to select; Delete (or the context menu) removes the
selected region.
A stripe along the top of each annotated region shows its vocals (none / male / female).
Once the track is narrated, a lane above the waveform shows its form: a box per section,
coloured by its repeat label, named by its function ("chorus C", or "C" without one), and a
lane above the time axis shows the track's chords.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import (
    QColor,
    QContextMenuEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPolygonF,
)
from PyQt6.QtWidgets import QMenu, QSizePolicy, QWidget

from daw_bridge.clock import clock
from ui.keys import VOCAL_COLOURS
from ui.models import RegionRow, RegionTableModel, key_colour, row_key
from ui.overview import Overview

EDGE_PX = 6  # how close to a region's edge a press grabs the edge
MIN_REGION_S = 0.25  # regions shorter than this are not created
AXIS_PX = 18  # height of the time axis at the bottom
VOCALS_PX = 10  # height of the vocals stripe at the top of a region
CHORDS_PX = 16  # height of the chord lane above the time axis (when there are chords)
FORM_PX = 20  # height of the form lane above the waveform (when the track has a form)
FORM_COLOURS = ("#4287f5", "#eb6e34", "#50b45a", "#c846a0", "#e6be28", "#3cbec8", "#9664dc")


def section_text(section: dict[str, Any]) -> str:
    """What the form lane writes in a section: ``"chorus C"``, or ``"C"`` without a function."""
    fn = section.get("function")
    return f"{fn} {section['label']}" if fn else str(section["label"])


def label_colours(form: list[dict[str, Any]]) -> dict[str, QColor]:
    """A colour per repeat label, in order of first appearance (the same colour returns)."""
    out: dict[str, QColor] = {}
    for s in form:
        if s["label"] not in out:
            out[s["label"]] = QColor(FORM_COLOURS[len(out) % len(FORM_COLOURS)])
    return out


class WaveformView(QWidget):
    """Draws an :class:`~ui.overview.Overview` and the regions of a :class:`RegionTableModel`.

    Signals:
        regionCreated(start_s, end_s): the user drew a new region.
        regionMoved(id, start_s, end_s): the user moved or resized a region.
        regionDeleted(id): the user deleted a region.
        regionSelected(id): the user selected a region ("" for none).
    """

    regionCreated = pyqtSignal(float, float)
    regionMoved = pyqtSignal(str, float, float)
    regionDeleted = pyqtSignal(str)
    regionSelected = pyqtSignal(str)

    def __init__(self, model: RegionTableModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.overview: Overview | None = None
        self.selected = ""
        self.chords: list[dict[str, Any]] = []
        self.message = "Open an audio file (File > Open, or drop it here)"
        self.form: list[dict[str, Any]] = []
        self._drag: dict[str, Any] | None = None
        self.setMinimumHeight(160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        model.regionsChanged.connect(self.update)
        model.modelReset.connect(self.update)

    # Geometry -------------------------------------------------------------------------------

    @property
    def duration_s(self) -> float:
        """Duration of the open file, 0 when none."""
        return self.overview.duration_s if self.overview else 0.0

    def x_of(self, t: float) -> float:
        """Pixel column of time ``t`` seconds."""
        return 0.0 if not self.duration_s else t / self.duration_s * self.width()

    def t_of(self, x: float) -> float:
        """Time in seconds at pixel column ``x``, clamped to the file."""
        if not self.duration_s:
            return 0.0
        return float(np.clip(x / max(1, self.width()) * self.duration_s, 0.0, self.duration_s))

    def hit(self, x: float) -> tuple[RegionRow | None, str]:
        """The region under column ``x`` and the part grabbed: ``"start"``, ``"end"``, ``"body"``.

        The selected region wins over its neighbours; edges win over bodies.
        """
        rows = sorted(self.model.rows, key=lambda r: r.id != self.selected)
        for row in rows:
            x0, x1 = self.x_of(row.start_s), self.x_of(row.end_s)
            if abs(x - x0) <= EDGE_PX:
                return row, "start"
            if abs(x - x1) <= EDGE_PX:
                return row, "end"
        for row in rows:
            if self.x_of(row.start_s) < x < self.x_of(row.end_s):
                return row, "body"
        return None, ""

    # Public ---------------------------------------------------------------------------------

    def set_overview(self, overview: Overview | None, message: str = "") -> None:
        """Show a file (None with a ``message`` to show why nothing is drawn)."""
        self.overview = overview
        self.message = message
        self.selected = ""
        self.update()

    def set_chords(self, chords: list[dict[str, Any]] | None) -> None:
        """Show the track's chords (``ChordSpan.to_dict()`` dicts) in the chord lane; None or
        an empty list hides the lane."""
        self.chords = list(chords or [])
        self.update()

    def set_form(self, form: list[dict[str, Any]]) -> None:
        """The track's sections (``Section.to_dict()`` dicts) for the form lane; [] hides it."""
        self.form = list(form)
        self.update()

    def select(self, region_id: str) -> None:
        """Select a region (from the table) without emitting :attr:`regionSelected`."""
        self.selected = region_id
        self.update()

    # Painting -------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent | None) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        p.fillRect(0, 0, w, h, QColor("#f4f5f7"))
        if self.overview is None:
            p.setPen(QColor("#57606a"))
            p.drawText(QRectF(0, 0, w, h), Qt.AlignmentFlag.AlignCenter, self.message)
            p.end()
            return
        lane = FORM_PX if self.form else 0
        if lane:
            self._paint_form(p, w)
        p.translate(0, lane)
        lane_h = CHORDS_PX if self.chords else 0
        wave_h = h - AXIS_PX - lane - lane_h
        for row in self.model.rows:
            self._paint_region(p, row, wave_h)
        self._paint_wave(p, wave_h)
        if lane_h:
            self._paint_chords(p, wave_h, lane_h)
        self._paint_axis(p, wave_h + lane_h, w)
        if self._drag and self._drag["kind"] == "create":
            a, b = sorted((self._drag["t0"], self._drag["t1"]))
            p.fillRect(
                QRectF(self.x_of(a), 0, self.x_of(b) - self.x_of(a), wave_h),
                QColor(30, 100, 220, 60),
            )
        p.end()

    def _paint_form(self, p: QPainter, w: int) -> None:
        p.fillRect(0, 0, w, FORM_PX, QColor("#e4e7eb"))
        colours = label_colours(self.form)
        for s in self.form:
            x0, x1 = self.x_of(float(s["start_s"])), self.x_of(float(s["end_s"]))
            rect = QRectF(x0, 1, max(1.0, x1 - x0), FORM_PX - 2)
            p.fillRect(rect, colours[s["label"]])
            p.setPen(QPen(QColor("#ffffff"), 1.0))
            p.drawRect(rect)
            if x1 - x0 > 24:
                p.setPen(QColor("#ffffff"))
                p.drawText(
                    rect.adjusted(4, 0, -2, 0),
                    Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                    section_text(s),
                )

    def _paint_region(self, p: QPainter, row: RegionRow, wave_h: int) -> None:
        x0, x1 = self.x_of(row.start_s), self.x_of(row.end_s)
        rect = QRectF(x0, 0, max(1.0, x1 - x0), wave_h)
        colour = key_colour(row_key(row)) if row.annotation else QColor("#aab2bd")
        if row.annotation and row.annotation.get("silent"):
            colour = QColor("#d0d4d9")
        if row.state == "error":
            colour = QColor("#e8a29b")
        fill = QColor(colour)
        fill.setAlpha(190 if row.annotation else 110)
        p.fillRect(rect, fill)
        vocals = row.annotation.get("vocals") if row.annotation else None
        if vocals:
            p.fillRect(QRectF(x0, 0, x1 - x0, VOCALS_PX), QColor(VOCAL_COLOURS[vocals["label"]]))
        selected = row.id == self.selected
        p.setPen(QPen(QColor("#111111" if selected else "#ffffff"), 3.0 if selected else 1.0))
        p.drawRect(rect.adjusted(0.5, 0.5, -0.5, -0.5))
        label = self._label(row)
        if label and x1 - x0 > 30:
            p.setPen(QColor("#111111"))
            p.drawText(
                rect.adjusted(4, VOCALS_PX + 2, -4, 0),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                label,
            )

    @staticmethod
    def _label(row: RegionRow) -> str:
        if row.state == "error":
            return "error"
        if row.state in ("queued", "running"):
            done, total = row.progress
            return f"{row.state}…" + (f" {done}/{total}" if total else "")
        a = row.annotation
        if not a:
            return row.name
        if a.get("silent"):
            return "silence"
        parts = [a["key"]["key"]] if a.get("key") else []
        if a.get("vocals") and a["vocals"]["label"] != "none":
            parts.append(f"{a['vocals']['label']} vox")
        return " · ".join(parts)

    def _paint_wave(self, p: QPainter, wave_h: int) -> None:
        assert self.overview is not None
        ov = self.overview
        n = len(ov.mins)
        w = max(1, self.width())
        cols = np.minimum((np.arange(w + 1) * n) // w, n)
        mid, half = wave_h / 2 + VOCALS_PX / 2, 0.8 * (wave_h / 2 - VOCALS_PX)
        peak = max(1e-6, float(np.max(np.abs([ov.mins.min(), ov.maxs.max()]))))
        scale = half / max(peak, 0.05)
        top, bottom = [], []
        for x in range(w):
            a, b = cols[x], max(cols[x] + 1, cols[x + 1])
            top.append(QPointF(x, mid - float(ov.maxs[a:b].max()) * scale))
            bottom.append(QPointF(x, mid - float(ov.mins[a:b].min()) * scale))
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(25, 30, 38, 150))
        p.drawPolygon(QPolygonF([*top, *reversed(bottom)]))

    def _paint_chords(self, p: QPainter, top: int, lane_h: int) -> None:
        """The chord lane: a box per chord (minor-like chords darker, no chord blank), named
        where it fits."""
        p.fillRect(QRectF(0, top, self.width(), lane_h), QColor("#ffffff"))
        for c in self.chords:
            x0, x1 = self.x_of(float(c["start_s"])), self.x_of(float(c["end_s"]))
            rect = QRectF(x0, top, max(1.0, x1 - x0), lane_h)
            name = str(c["chord"])
            if name != "N":
                quality = name.partition(":")[2]
                dark = quality.startswith("min") or quality == "dim"
                p.fillRect(rect, QColor("#c9d6ea" if dark else "#e3ecf7"))
            p.setPen(QColor("#8c959f"))
            p.drawLine(QPointF(x0, top), QPointF(x0, top + lane_h))
            label = "N.C." if name == "N" else name
            if x1 - x0 > 7 * len(label):
                p.setPen(QColor("#111111"))
                p.drawText(rect.adjusted(3, 0, -2, 0), Qt.AlignmentFlag.AlignVCenter, label)

    def _paint_axis(self, p: QPainter, wave_h: int, w: int) -> None:
        p.fillRect(0, wave_h, w, AXIS_PX, QColor("#e4e7eb"))
        p.setPen(QColor("#57606a"))
        step = _tick_step(self.duration_s, w)
        t = 0.0
        while t <= self.duration_s + 1e-9:
            x = self.x_of(t)
            p.drawLine(QPointF(x, wave_h), QPointF(x, wave_h + 4))
            p.drawText(QPointF(x + 2, wave_h + AXIS_PX - 4), clock(t).removesuffix(".0"))
            t += step

    # Mouse and keys -------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent | None) -> None:
        if event is None or self.overview is None or event.button() != Qt.MouseButton.LeftButton:
            return
        x = event.position().x()
        row, part = self.hit(x)
        t = self.t_of(x)
        if row is None or event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self._drag = {"kind": "create", "t0": t, "t1": t}
            self._set_selected("")
        else:
            self._drag = {
                "kind": part,
                "id": row.id,
                "t0": t,
                "start": row.start_s,
                "end": row.end_s,
                "moved": False,
            }
            self._set_selected(row.id)
        self.update()

    def mouseMoveEvent(self, event: QMouseEvent | None) -> None:
        if event is None or self.overview is None:
            return
        x = event.position().x()
        if self._drag is None:
            _, part = self.hit(x)
            shape = {
                "start": Qt.CursorShape.SizeHorCursor,
                "end": Qt.CursorShape.SizeHorCursor,
                "body": Qt.CursorShape.OpenHandCursor,
            }.get(part, Qt.CursorShape.IBeamCursor)
            self.setCursor(shape)
            return
        t = self.t_of(x)
        d = self._drag
        if d["kind"] == "create":
            d["t1"] = t
        else:
            d["moved"] = True
            row = self.model.get(d["id"])
            if row is None:
                self._drag = None
                return
            start, end = self._dragged_bounds(d, t)
            row.start_s, row.end_s = start, end  # live preview; committed on release
        self.update()

    def _dragged_bounds(self, d: dict[str, Any], t: float) -> tuple[float, float]:
        delta = t - d["t0"]
        start, end = d["start"], d["end"]
        if d["kind"] == "body":
            delta = float(np.clip(delta, -start, self.duration_s - end))
            return start + delta, end + delta
        if d["kind"] == "start":
            return min(start + delta, end - MIN_REGION_S), end
        return start, max(end + delta, start + MIN_REGION_S)

    def mouseReleaseEvent(self, event: QMouseEvent | None) -> None:
        d, self._drag = self._drag, None
        if d is None or event is None:
            return
        t = self.t_of(event.position().x())
        if d["kind"] == "create":
            a, b = sorted((d["t0"], t))
            if b - a >= MIN_REGION_S:
                self.regionCreated.emit(a, b)
        elif d["moved"]:
            row = self.model.get(d["id"])
            if row is not None:
                start, end = self._dragged_bounds(d, t)
                row.start_s, row.end_s = d["start"], d["end"]  # the model commits the move
                self.regionMoved.emit(d["id"], start, end)
        self.update()

    def keyPressEvent(self, event: QKeyEvent | None) -> None:
        if (
            event is not None
            and self.selected
            and event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)
        ):
            region_id, self.selected = self.selected, ""
            self.regionDeleted.emit(region_id)
            return
        super().keyPressEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent | None) -> None:
        if event is None:
            return
        row, _ = self.hit(event.pos().x())
        if row is None:
            return
        self._set_selected(row.id)
        menu = QMenu(self)
        remove = menu.addAction(f"Delete region {clock(row.start_s)}–{clock(row.end_s)}")
        if menu.exec(event.globalPos()) is remove:
            self.regionDeleted.emit(row.id)

    def _set_selected(self, region_id: str) -> None:
        if region_id != self.selected:
            self.selected = region_id
            self.regionSelected.emit(region_id)


def _tick_step(duration_s: float, width_px: int) -> float:
    """A round tick spacing in seconds leaving at least ~70 px between labels."""
    if duration_s <= 0 or width_px <= 0:
        return 1.0
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1200):
        if step / duration_s * width_px >= 70:
            return float(step)
    return 1800.0
