"""The panel's document: regions of one file and what the engine said about them.

:class:`RegionTableModel` is the single source of truth; the waveform view and the table both
read it. A region shows the track's view (the key, tempo and vocals decoded over the whole
track, what the narrative and the CLI say) once the narrative arrives, and its own estimate
beside it in the ``alone`` column. Each region carries a ``revision`` that grows whenever it
is moved, so a reply to a request sent before the move is recognised as stale and dropped.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from typing import Any

from PyQt6.QtCore import QAbstractTableModel, QModelIndex, Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor

from daw_bridge.clock import clock
from daw_bridge.keys import vocals_word
from ui.keys import VOCAL_COLOURS, key_hsv

STATES = ("new", "queued", "running", "done", "error")


@dataclass
class RegionRow:
    """One region of the open file.

    Attributes:
        start_s: start in seconds.
        end_s: end in seconds.
        name: the user's name for it.
        id: stable identity (survives moves and session round trips).
        revision: grows with every edit of the bounds; replies carry the revision they asked for.
        state: one of :data:`STATES`.
        annotation: the engine's ``RegionAnnotation.to_dict()`` shown in the table: the
            track's view from the narrative, or the region's own until the narrative arrives;
            None until either does.
        own: the region annotated alone (``region/annotate``), None until it arrives.
        error: the error message for this region ("" when none).
        progress: ``(done, total)`` of the running request.
    """

    start_s: float
    end_s: float
    name: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    revision: int = 0
    state: str = "new"
    annotation: dict[str, Any] | None = None
    own: dict[str, Any] | None = None
    error: str = ""
    progress: tuple[int, int] = (0, 0)

    def to_dict(self) -> dict[str, Any]:
        """Session form."""
        return {
            "id": self.id,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "name": self.name,
            "annotation": self.annotation,
            "own": self.own,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RegionRow:
        """Inverse of :meth:`to_dict`."""
        annotation = d.get("annotation")
        error = str(d.get("error", ""))
        return cls(
            start_s=float(d["start_s"]),
            end_s=float(d["end_s"]),
            name=str(d.get("name", "")),
            id=str(d.get("id") or uuid.uuid4().hex[:10]),
            annotation=annotation,
            own=d.get("own"),
            error=error,
            state="done" if annotation else "error" if error else "new",
        )


COLUMNS: tuple[str, ...] = (
    "start",
    "end",
    "key",
    "conf.",
    "alone",
    "vocals",
    "tags",
    "tempo",
    "LUFS",
    "caption",
)


def key_colour(key: str | None) -> QColor:
    """The colour of a key (circle-of-fifths hue), grey when unknown."""
    hsv = key_hsv(key)
    return QColor("#b0b8c0") if hsv is None else QColor.fromHsv(*hsv)


def row_key(row: RegionRow) -> str | None:
    """The row's key name, None when not annotated, silent or keyless."""
    a = row.annotation
    return a["key"]["key"] if a and a.get("key") else None


def row_alone(row: RegionRow) -> str:
    """What the region alone suggests: its own key and confidence, and its own vocals."""
    own = row.own
    key = own.get("key") if own else (row.annotation or {}).get("region_key")
    parts = [f"{key['key']} {key['confidence']:.2f}"] if key else []
    if own and own.get("vocals"):
        v = own["vocals"]
        p = dict(zip(("none", "male", "female"), v.get("probabilities", ()), strict=False))
        parts.append(f"{v['label']} {p[v['label']]:.2f}" if v["label"] in p else v["label"])
    return " · ".join(parts)


ALONE_TIP = (
    "what this region alone suggests; key, vocals and tempo are the track's view, "
    "as the narrative tells it"
)


def row_tags(a: dict[str, Any]) -> str:
    """Top tags of an annotation, instruments first."""
    tags = [t["label"] for f in ("instruments", "genres", "moods") for t in a.get(f, [])[:2]]
    return ", ".join(tags)


class RegionTableModel(QAbstractTableModel):
    """Regions in time order, one per table row.

    Signals:
        regionsChanged: any region was added, moved, removed or annotated.
    """

    regionsChanged = pyqtSignal()

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[RegionRow] = []

    # Qt model interface ---------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if role == Qt.ItemDataRole.ToolTipRole and orientation == Qt.Orientation.Horizontal:
            return ALONE_TIP if COLUMNS[section] == "alone" else None
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return str(section + 1)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        col = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == "alone":
                return ALONE_TIP
            if row.error:
                return row.error
            return row.annotation.get("caption") if row.annotation else None
        if role == Qt.ItemDataRole.ForegroundRole and row.state == "error" and col == "caption":
            return QBrush(QColor("#c0392b"))
        if role == Qt.ItemDataRole.BackgroundRole:
            if row.state == "error":
                return QBrush(QColor("#fdecea"))
            if col == "key" and row_key(row):
                return QBrush(key_colour(row_key(row)).lighter(115))
            if col == "vocals" and row.annotation and row.annotation.get("vocals"):
                return QBrush(QColor(VOCAL_COLOURS[row.annotation["vocals"]["label"]]).lighter(160))
        if role == Qt.ItemDataRole.TextAlignmentRole and col not in ("caption", "tags", "vocals"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    @staticmethod
    def _text(row: RegionRow, col: str) -> str:
        if col == "start":
            return clock(row.start_s)
        if col == "end":
            return clock(row.end_s)
        a = row.annotation
        if col == "caption":
            if row.state == "error":
                return f"⚠ {row.error}"
            if row.state in ("queued", "running") or a is None:
                done, total = row.progress
                if row.state == "running" and total:
                    return f"{row.state}… {done}/{total}"
                return f"{row.state}…" if row.state in ("queued", "running") else ""
            return str(a.get("caption", ""))
        if a is None:
            return ""
        silent = bool(a.get("silent"))
        if col == "key":
            return "silence" if silent else (a["key"]["key"] if a.get("key") else "—")
        if col == "conf.":
            return f"{a['key']['confidence']:.2f}" if a.get("key") else ""
        if col == "alone":
            return row_alone(row)
        if col == "vocals":
            v = a.get("vocals")
            return vocals_word(v["label"], v.get("probabilities", ())) if v else "—"
        if col == "tags":
            return row_tags(a)
        if col == "tempo":
            return "—" if a.get("tempo_bpm") is None else f"{a['tempo_bpm']:.0f}"
        if col == "LUFS":
            lufs = a.get("loudness_lufs")
            return "—" if lufs is None or not math.isfinite(lufs) else f"{lufs:.1f}"
        return ""

    # Editing --------------------------------------------------------------------------------

    def row_of(self, region_id: str) -> int:
        """Row number of a region id, -1 when absent."""
        return next((i for i, r in enumerate(self.rows) if r.id == region_id), -1)

    def get(self, region_id: str) -> RegionRow | None:
        """The region with this id, None when absent."""
        i = self.row_of(region_id)
        return self.rows[i] if i >= 0 else None

    def set_rows(self, rows: list[RegionRow]) -> None:
        """Replace every region."""
        self.beginResetModel()
        self.rows = sorted(rows, key=lambda r: r.start_s)
        self.endResetModel()
        self.regionsChanged.emit()

    def add(self, start_s: float, end_s: float, name: str = "") -> RegionRow:
        """Insert a region at its place in time order."""
        row = RegionRow(start_s=min(start_s, end_s), end_s=max(start_s, end_s), name=name)
        i = sum(1 for r in self.rows if r.start_s <= row.start_s)
        self.beginInsertRows(QModelIndex(), i, i)
        self.rows.insert(i, row)
        self.endInsertRows()
        self.regionsChanged.emit()
        return row

    def remove(self, region_id: str) -> None:
        """Delete a region (unknown ids are ignored)."""
        i = self.row_of(region_id)
        if i < 0:
            return
        self.beginRemoveRows(QModelIndex(), i, i)
        del self.rows[i]
        self.endRemoveRows()
        self.regionsChanged.emit()

    def move(self, region_id: str, start_s: float, end_s: float) -> RegionRow | None:
        """Change a region's bounds; its annotation is dropped and its revision bumped."""
        row = self.get(region_id)
        if row is None:
            return None
        row.start_s, row.end_s = min(start_s, end_s), max(start_s, end_s)
        row.revision += 1
        row.annotation, row.own, row.error = None, None, ""
        row.state, row.progress = "new", (0, 0)
        self.beginResetModel()
        self.rows.sort(key=lambda r: r.start_s)
        self.endResetModel()
        self.regionsChanged.emit()
        return row

    def update(self, region_id: str, **changes: Any) -> None:
        """Set fields of a region (state, annotation, error, progress) and refresh its row."""
        i = self.row_of(region_id)
        if i < 0:
            return
        for k, v in changes.items():
            setattr(self.rows[i], k, v)
        self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))
        self.regionsChanged.emit()

    def annotations(self) -> list[dict[str, Any]]:
        """The annotations received so far, in time order, each named after its region."""
        return [
            {**r.annotation, "name": r.name or r.annotation.get("name", "")}
            for r in self.rows
            if r.annotation is not None
        ]
