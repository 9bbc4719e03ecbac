"""The timeline picture: key, vocals and loudness over time, drawn with QPainter into a QImage.

Three lanes share one time axis: the key of each region (circle-of-fifths colours, names
written in), its vocals (none / male / female) and its integrated loudness in LUFS as a
step curve on a -60..0 LUFS scale.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PyQt6.QtCore import QPointF, QRectF, Qt
from PyQt6.QtGui import QColor, QFont, QImage, QPainter, QPainterPath, QPen

from daw_bridge.clock import clock
from ui.keys import SILENCE_COLOUR, VOCAL_COLOURS
from ui.models import key_colour

LUFS_FLOOR = -60.0
MARGIN_L = 120  # room for lane names and the LUFS scale
MARGIN_R = 16


def render_timeline(
    regions: Sequence[dict[str, Any]],
    *,
    duration_s: float,
    title: str = "",
    width: int = 1400,
    height: int = 420,
) -> QImage:
    """Draw the timeline of annotated regions.

    Args:
        regions: ``RegionAnnotation.to_dict()`` dicts (any order).
        duration_s: the span to draw, in seconds (the file's duration).
        title: a heading (the file name).
        width: image width in pixels.
        height: image height in pixels.

    Returns:
        An ARGB32 image (save it with ``image.save(path, "PNG")``).
    """
    img = QImage(width, height, QImage.Format.Format_ARGB32)
    img.fill(QColor("#ffffff"))
    p = QPainter(img)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    font = QFont(p.font())
    font.setPixelSize(13)
    p.setFont(font)
    span = max(duration_s, 1e-3)
    plot_w = width - MARGIN_L - MARGIN_R

    def x_of(t: float) -> float:
        return MARGIN_L + max(0.0, min(t, span)) / span * plot_w

    top = 34
    key_h, voc_h, gap = 48, 22, 14
    loud_top = top + key_h + gap + voc_h + gap
    loud_h = height - loud_top - 34
    bold = QFont(font)
    bold.setBold(True)
    bold.setPixelSize(15)
    p.setFont(bold)
    p.setPen(QColor("#222222"))
    p.drawText(QPointF(MARGIN_L, 22), title or "timeline")
    p.setFont(font)
    lanes = (("key", top, key_h), ("vocals", top + key_h + gap, voc_h), ("LUFS", loud_top, loud_h))
    for name, y, h in lanes:
        p.setPen(QColor("#444444"))
        p.drawText(
            QRectF(8, y, MARGIN_L - 52, h),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
            name,
        )
        p.fillRect(QRectF(MARGIN_L, y, plot_w, h), QColor("#f3f4f6"))

    ordered = sorted(regions, key=lambda r: float(r["start_s"]))
    for r in ordered:
        x0, x1 = x_of(float(r["start_s"])), x_of(float(r["end_s"]))
        rect = QRectF(x0, top, max(1.0, x1 - x0), key_h)
        key = r["key"]["key"] if r.get("key") and not r.get("silent") else None
        p.fillRect(rect, QColor(SILENCE_COLOUR) if key is None else key_colour(key))
        p.setPen(QPen(QColor("#ffffff"), 1.0))
        p.drawLine(QPointF(x0, top), QPointF(x0, top + key_h))
        label = "silence" if r.get("silent") else (key or "?")
        if p.fontMetrics().horizontalAdvance(label) + 6 < x1 - x0:
            p.setPen(QColor("#111111"))
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, label)
        vocals = r.get("vocals")
        vy = top + key_h + gap
        colour = QColor(VOCAL_COLOURS[vocals["label"]]) if vocals else QColor("#e5e7eb")
        p.fillRect(QRectF(x0, vy, max(1.0, x1 - x0), voc_h), colour)

    if not any(r.get("vocals") for r in ordered):
        p.setPen(QColor("#6b7280"))
        p.drawText(
            QRectF(MARGIN_L, top + key_h + gap, plot_w, voc_h),
            Qt.AlignmentFlag.AlignCenter,
            "vocals not estimated by this backend",
        )
    _paint_loudness(p, ordered, x_of, loud_top, loud_h, plot_w)
    _paint_axis(p, span, x_of, loud_top + loud_h, plot_w)
    _paint_legend(p, width, top)
    p.end()
    return img


def _lufs_y(lufs: float, y: float, h: float) -> float:
    frac = (max(LUFS_FLOOR, min(0.0, lufs)) - LUFS_FLOOR) / -LUFS_FLOOR
    return y + h - frac * h


def _paint_loudness(
    p: QPainter, regions: Sequence[dict[str, Any]], x_of: Any, y: float, h: float, plot_w: float
) -> None:
    p.setPen(QPen(QColor("#d1d5db"), 1.0, Qt.PenStyle.DashLine))
    for level in (-50, -40, -30, -20, -10):
        ly = _lufs_y(level, y, h)
        p.drawLine(QPointF(MARGIN_L, ly), QPointF(MARGIN_L + plot_w, ly))
        p.setPen(QColor("#6b7280"))
        p.drawText(
            QRectF(MARGIN_L - 40, ly - 8, 34, 16),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
            f"{level}",
        )
        p.setPen(QPen(QColor("#d1d5db"), 1.0, Qt.PenStyle.DashLine))
    path = QPainterPath()
    for r in regions:
        lufs = r.get("loudness_lufs")
        if lufs is None or not math.isfinite(lufs):
            continue
        x0, x1 = x_of(float(r["start_s"])), x_of(float(r["end_s"]))
        ly = _lufs_y(float(lufs), y, h)
        path.addRect(QRectF(x0, ly, max(1.0, x1 - x0), y + h - ly))
    p.fillPath(path, QColor(37, 99, 235, 70))
    p.setPen(QPen(QColor("#1d4ed8"), 2.0))
    for r in regions:
        lufs = r.get("loudness_lufs")
        if lufs is None or not math.isfinite(lufs):
            continue
        x0, x1 = x_of(float(r["start_s"])), x_of(float(r["end_s"]))
        ly = _lufs_y(float(lufs), y, h)
        p.drawLine(QPointF(x0, ly), QPointF(x1, ly))


def _paint_axis(p: QPainter, span: float, x_of: Any, y: float, plot_w: float) -> None:
    p.setPen(QColor("#444444"))
    p.drawLine(QPointF(MARGIN_L, y), QPointF(MARGIN_L + plot_w, y))
    step = next(
        (s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600) if s / span * plot_w >= 80), 1200
    )
    t = 0.0
    while t <= span + 1e-9:
        x = x_of(t)
        p.drawLine(QPointF(x, y), QPointF(x, y + 5))
        label = clock(t).removesuffix(".0")
        w = p.fontMetrics().horizontalAdvance(label)
        p.drawText(QPointF(min(x - w / 2, MARGIN_L + plot_w + MARGIN_R - w - 2), y + 20), label)
        t += step


def _paint_legend(p: QPainter, width: int, y: float) -> None:
    x = width - MARGIN_R
    for label in reversed(("none", "male", "female")):
        w = p.fontMetrics().horizontalAdvance(label)
        x -= w + 26
        p.fillRect(QRectF(x, y - 22, 12, 12), QColor(VOCAL_COLOURS[label]))
        p.setPen(QColor("#333333"))
        p.drawText(QPointF(x + 16, y - 12), label)
    p.drawText(QPointF(x - 60, y - 12), "vocals:")


def save_timeline(
    path: str | os.PathLike[str],
    regions: Sequence[dict[str, Any]],
    *,
    duration_s: float,
    title: str = "",
    width: int = 1400,
    height: int = 420,
) -> Path:
    """Render the timeline and save it as PNG; returns the path.

    Raises:
        OSError: the image could not be written.
    """
    img = render_timeline(regions, duration_s=duration_s, title=title, width=width, height=height)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    if not img.save(str(p), "PNG"):
        raise OSError(f"{p}: could not write PNG")
    return p
