"""``sonicverse panel``: the Qt annotation panel.

Open an audio file (File > Open or drop it on the window); the panel cuts it into 10 s
regions, draws the waveform with the regions coloured by key and a stripe where vocals are,
and asks the engine for each region's annotation over OSC. Regions can be added (drag on
empty ground), moved or resized (drag), and deleted (Delete key or right click); each change
is sent again. The table fills as replies arrive; errors appear on their region's row.
Narrate writes the track's timestamped narrative in its own pane; results export to JSON,
JAMS, Audacity labels or Reaper's region CSV, and the timeline (key, vocals, loudness) saves
as PNG. Sessions save and reopen as JSON. The Live tab captions the microphone.

The panel never imports :mod:`engine`: it talks to a running engine through
:mod:`daw_bridge.client`, or starts ``sonicverse engine`` itself when none answers.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PyQt6 import sip
from PyQt6.QtCore import QObject, QRunnable, Qt, QThreadPool, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QFileDialog,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QMenuBar,
    QMessageBox,
    QProgressBar,
    QSplitter,
    QStatusBar,
    QTableView,
    QTabWidget,
    QToolBar,
    QToolButton,
)

from daw_bridge import export, protocol
from daw_bridge.formats import AUDIO_SUFFIXES
from daw_bridge.regions import plan_regions
from ui.engine_link import EngineLink
from ui.live_tab import LiveTab
from ui.models import RegionRow, RegionTableModel
from ui.narrative_pane import NarrativePane
from ui.overview import Overview, load_overview
from ui.session import Session, SessionError
from ui.timeline import save_timeline
from ui.waveform import WaveformView

log = logging.getLogger(__name__)

PRESETS_ENV = "SONICVERSE_PRESETS"


def default_regions(duration_s: float) -> list[RegionRow]:
    """The engine's default region plan (:func:`daw_bridge.regions.plan_regions`) as rows."""
    return [RegionRow(start_s=a, end_s=b) for a, b in plan_regions(duration_s)]


def preset_names() -> list[str]:
    """Preset names the engine can load: ``$SONICVERSE_PRESETS`` folders and the shipped ones.

    The panel only lists file names; the engine validates the preset when it starts.
    """
    dirs = [Path(p) for p in os.environ.get(PRESETS_ENV, "").split(os.pathsep) if p]
    dirs.append(Path(__file__).resolve().parent.parent / "presets")
    names = {f.stem for d in dirs if d.is_dir() for f in d.glob("*.toml")}
    return sorted(names) or ["lite"]


class _Job(QRunnable):
    """Runs a function on the thread pool and reports through a signal."""

    class Signals(QObject):
        done = pyqtSignal(object, object)  # result, exception

    def __init__(self, fn: Callable[[], Any]) -> None:
        super().__init__()
        self.fn = fn
        self.signals = _Job.Signals()

    def run(self) -> None:
        try:
            result = self.fn()
        except Exception as exc:  # reported to the GUI thread, which shows it
            self.signals.done.emit(None, exc)
            return
        self.signals.done.emit(result, None)


class MainWindow(QMainWindow):
    """The panel.

    Args:
        host: the engine's host.
        port: the engine's UDP port.
        preset: preset to start an engine with (and to select in the picker).
        start_engine: start ``sonicverse engine`` if none answers at launch.
        heartbeat_ms: engine liveness check interval.
    """

    overviewLoaded = pyqtSignal(str)
    annotationsSettled = pyqtSignal()

    def __init__(
        self,
        *,
        host: str = protocol.DEFAULT_HOST,
        port: int = protocol.DEFAULT_PORT,
        preset: str = "lite",
        start_engine: bool = False,
        heartbeat_ms: int = 2000,
    ) -> None:
        super().__init__()
        self.setWindowTitle("SonicVerse panel")
        self.setAcceptDrops(True)
        self.resize(1280, 820)
        self.audio_path = ""
        self.overview: Overview | None = None
        self.narrative: dict[str, Any] | None = None
        self.grid: dict[str, Any] | None = None  # the beat grid from the engine's narrate reply
        self.chords: list[dict[str, Any]] = []  # the track's chords from the same reply
        self.form: list[dict[str, Any]] = []  # the track's sections from the narrate reply
        self._planning = ""  # the file whose plan the engine is computing
        self._narrating = False  # a narrate request is on its way
        self._opening = 0  # counts open_audio calls: a slow load of an older file is dropped
        self.session_path = ""
        self._jobs: list[_Job] = []
        self._closed = False  # closed: results of jobs still running are dropped
        self._autostart = start_engine
        self._first_state = True

        self.model = RegionTableModel(self)
        self.link = EngineLink(host, port, heartbeat_ms=heartbeat_ms, parent=self)
        self._build_widgets(preset)
        self._build_actions()
        self._connect()
        self._set_engine_state("unknown", f"looking for an engine at {self.link.address}…")
        QTimer.singleShot(0, self.link.check)

    # Layout ---------------------------------------------------------------------------------

    def _build_widgets(self, preset: str) -> None:
        self.waveform = WaveformView(self.model, self)
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setAlternatingRowColors(True)
        rows = self.table.verticalHeader()
        header = self.table.horizontalHeader()
        assert rows is not None and header is not None
        rows.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # wrapped captions
        self.table.setWordWrap(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)

        self.narrative_view = NarrativePane(self)
        self.live_tab = LiveTab(
            preset=lambda: self.preset_box.currentText().strip() or "lite",
            engine=lambda: (self.link.host, self.link.port) if self.link.state == "up" else None,
            parent=self,
        )
        self.live = self.live_tab.live
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.narrative_view, "Narrative")
        self.tabs.addTab(self.live_tab, "Live")

        lower = QSplitter(Qt.Orientation.Horizontal, self)
        lower.addWidget(self.table)
        lower.addWidget(self.tabs)
        lower.setStretchFactor(0, 3)
        lower.setStretchFactor(1, 2)
        main = QSplitter(Qt.Orientation.Vertical, self)
        main.addWidget(self.waveform)
        main.addWidget(lower)
        main.setStretchFactor(0, 2)
        main.setStretchFactor(1, 3)
        self.setCentralWidget(main)

        self.preset_box = QComboBox(self)
        self.preset_box.setEditable(True)
        self.preset_box.addItems(preset_names())
        self.preset_box.setCurrentText(preset)
        self.preset_box.setToolTip("preset for an engine the panel starts")
        self.engine_label = QLabel(self)
        self.engine_label.setTextFormat(Qt.TextFormat.RichText)
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(240)
        self.progress.setFormat("%v/%m regions")
        self.progress.hide()
        self.status = QStatusBar(self)
        self.setStatusBar(self.status)
        self.status.addPermanentWidget(self.progress)
        self.status.addPermanentWidget(self.engine_label)

    def _build_actions(self) -> None:
        tb = QToolBar("main", self)
        tb.setMovable(False)
        self.addToolBar(tb)
        menu_file = QMenu("&File", self)
        menu_engine = QMenu("&Engine", self)
        bar = QMenuBar(self)
        bar.addMenu(menu_file)
        bar.addMenu(menu_engine)
        self.setMenuBar(bar)

        def action(text: str, slot: Callable[[], Any], shortcut: str | None = None) -> QAction:
            a = QAction(text, self)

            def trigger(_checked: bool = False) -> None:
                slot()

            a.triggered.connect(trigger)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
            return a

        self.open_action = action("Open audio…", self.choose_audio, "Ctrl+O")
        self.open_session_action = action("Open session…", self.choose_session)
        self.save_session_action = action("Save session…", self.choose_session_path, "Ctrl+S")
        self.annotate_action = action("Annotate", self.annotate_all, "Ctrl+R")
        self.narrate_action = action("Narrate", self.narrate)
        self.timeline_action = action("Timeline PNG…", self.choose_timeline_path)
        self.start_engine_action = action("Start engine", self.start_engine)
        self.cancel_action = action("Cancel requests", self.link.cancel_all)
        self.export_actions = {
            fmt: action(f"Export {name}…", functools.partial(self.choose_export_path, fmt))
            for fmt, name in export.FORMAT_NAMES.items()
        }
        for a in (self.open_action, self.open_session_action, self.save_session_action):
            menu_file.addAction(a)
        menu_file.addSeparator()
        for a in (*self.export_actions.values(), self.timeline_action):
            menu_file.addAction(a)
        for a in (
            self.annotate_action,
            self.narrate_action,
            self.start_engine_action,
            self.cancel_action,
        ):
            menu_engine.addAction(a)

        export_button = QToolButton(self)
        export_button.setText("Export")
        export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        for a in self.export_actions.values():
            export_button.addAction(a)
        tb.addAction(self.open_action)
        tb.addAction(self.annotate_action)
        tb.addAction(self.narrate_action)
        tb.addWidget(export_button)
        tb.addAction(self.timeline_action)
        tb.addAction(self.save_session_action)
        tb.addSeparator()
        tb.addWidget(QLabel(" preset ", self))
        tb.addWidget(self.preset_box)
        tb.addAction(self.start_engine_action)

    def _connect(self) -> None:
        self.waveform.regionCreated.connect(self.add_region)
        self.waveform.regionMoved.connect(self.move_region)
        self.waveform.regionDeleted.connect(self.delete_region)
        self.waveform.regionSelected.connect(self._select_row)
        selection = self.table.selectionModel()
        assert selection is not None
        selection.currentRowChanged.connect(
            lambda cur, _prev: self.waveform.select(
                self.model.rows[cur.row()].id if cur.isValid() else ""
            )
        )
        self.link.stateChanged.connect(self._set_engine_state)
        self.link.regionProgress.connect(self._on_region_progress)
        self.link.regionResult.connect(self._on_region_result)
        self.link.regionFailed.connect(self._on_region_failed)
        self.link.narrativeResult.connect(self._on_narrative)
        self.link.planResult.connect(self._on_plan)
        self.link.planFailed.connect(self._on_plan_failed)
        self.link.narrativeFailed.connect(self._on_narrative_failed)
        self.link.narrativeProgress.connect(
            lambda stage, done, total: self.status.showMessage(
                f"narrating: {stage} {done}/{total}", 2000
            )
        )
        self.model.regionsChanged.connect(self._update_progress)
        self.preset_box.activated.connect(lambda _i: self.switch_preset())

    # Files ----------------------------------------------------------------------------------

    def choose_audio(self) -> None:
        """File > Open audio."""
        pattern = " ".join(f"*{s}" for s in sorted(AUDIO_SUFFIXES))
        path, _ = QFileDialog.getOpenFileName(self, "Open audio", "", f"Audio ({pattern})")
        if path:
            self.open_audio(path)

    def open_audio(self, path: str, *, regions: list[RegionRow] | None = None) -> None:
        """Load a file's overview on a worker thread, then show it with ``regions`` (default:
        10 s regions) and annotate the regions that have no annotation."""
        self.waveform.set_overview(None, f"reading {Path(path).name}…")
        # the previous file's requests are cancelled and their replies never read
        self.link.forget_all()
        self._narrating = False
        self._planning = ""
        self._opening += 1
        opening = self._opening
        self.narrative = None
        self.grid = None
        self.set_chords([])
        self._set_form([])
        self.narrative_view.clear()
        self.model.set_rows([])

        def loaded(result: Any, error: Any) -> None:
            if opening != self._opening:
                return  # another file was opened while this one loaded
            if error is not None:
                self.audio_path = ""
                self.waveform.set_overview(None, str(error))
                self.status.showMessage(str(error), 8000)
                return
            self.overview = result
            self.audio_path = result.path
            self.setWindowTitle(f"SonicVerse panel — {Path(result.path).name}")
            self.waveform.set_overview(result)
            rows = regions if regions is not None else default_regions(result.duration_s)
            self.model.set_rows(rows)
            self.overviewLoaded.emit(result.path)
            # the engine's plan is the one plan (its preset's length, snap to bar lines): ask
            # for it, and annotate when it arrives; the local default stands in until then
            if regions is None and self.link.state == "up" and self.link.plan(result.path):
                self._planning = result.path
                return
            self.annotate_all()

        self._run(lambda: load_overview(path), loaded)

    def _run(self, fn: Callable[[], Any], done: Callable[[Any, Any], None]) -> None:
        job = _Job(fn)
        self._jobs.append(job)

        def finished(result: Any, error: Any) -> None:
            self._jobs.remove(job)
            # the job's signal outlives the window: one closed (or deleted) while the job ran
            # has nothing left to show its result in
            if self._closed or sip.isdeleted(self):
                return
            done(result, error)

        job.signals.done.connect(finished)
        pool = QThreadPool.globalInstance()
        assert pool is not None
        pool.start(job)

    def dragEnterEvent(self, event: QDragEnterEvent | None) -> None:
        if event is None:
            return
        mime = event.mimeData()
        urls = mime.urls() if mime is not None else []
        if urls and Path(urls[0].toLocalFile()).suffix.lower() in {*AUDIO_SUFFIXES, ".json"}:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent | None) -> None:
        mime = event.mimeData() if event is not None else None
        if event is None or mime is None:
            return
        urls = mime.urls()
        if not urls:
            return
        path = urls[0].toLocalFile()
        if path.lower().endswith(".json"):
            self.open_session(path)
        else:
            self.open_audio(path)
        event.acceptProposedAction()

    # Regions --------------------------------------------------------------------------------

    def add_region(self, start_s: float, end_s: float) -> None:
        """A region drawn on the waveform: add it and annotate it."""
        row = self.model.add(start_s, end_s)
        self._select_row(row.id)
        self.annotate(row)

    def move_region(self, region_id: str, start_s: float, end_s: float) -> None:
        """A region moved or resized: its old annotation is dropped and it is sent again."""
        row = self.model.move(region_id, start_s, end_s)
        if row is not None:
            self.link.forget(region_id)  # its old span's request is moot
            self.annotate(row)

    def delete_region(self, region_id: str) -> None:
        """Remove a region (its request is cancelled; a reply still on its way is ignored)."""
        self.link.forget(region_id)
        self.model.remove(region_id)

    def _select_row(self, region_id: str) -> None:
        i = self.model.row_of(region_id)
        if i >= 0:
            self.table.selectRow(i)
        else:
            self.table.clearSelection()
        self.waveform.select(region_id)

    # Engine ---------------------------------------------------------------------------------

    def annotate(self, row: RegionRow) -> None:
        """Send one region to the engine."""
        if not self.audio_path:
            return
        self.model.update(row.id, state="queued", error="", progress=(0, 0))
        self.link.annotate(row.id, row.revision, self.audio_path, row.start_s, row.end_s, row.name)

    def annotate_all(self) -> None:
        """Send every region without an annotation (new or failed) to the engine."""
        for row in list(self.model.rows):
            if row.state in ("new", "error"):
                self.annotate(row)

    def narrate(self) -> None:
        """Ask the engine for the track's narrative over the current regions."""
        if not self.audio_path or not self.model.rows:
            self.status.showMessage("open a file with regions first", 4000)
            return
        self.narrative_view.setPlainText("narrating…")
        self._narrating = True
        self.tabs.setCurrentIndex(0)
        self.link.narrate(self.audio_path, [(r.start_s, r.end_s, r.name) for r in self.model.rows])

    def start_engine(self) -> None:
        """Start ``sonicverse engine`` with the chosen preset (when none answers)."""
        if self.link.state == "up":
            self.status.showMessage(
                f"an engine already answers at {self.link.address} "
                f"(preset {self.link.info.get('preset', '?')})",
                5000,
            )
            return
        self.link.start_engine(self.preset_box.currentText().strip() or "lite")

    def switch_preset(self) -> None:
        """A preset was picked: restart the engine the panel started with it.

        An engine the panel did not start is left alone (the status bar says which preset it
        runs); start one on another port to use a different preset.
        """
        preset = self.preset_box.currentText().strip()
        if not preset or preset == self.link.info.get("preset"):
            return
        if self.link.process is not None:
            self.link.forget_all()  # the old engine's last replies are not this preset's
            self._narrating = False
            self.link.restart_engine(preset)
            for row in self.model.rows:  # annotations of the old preset are dropped
                self.model.update(
                    row.id,
                    state="new",
                    annotation=None,
                    error="",
                    progress=(0, 0),
                    revision=row.revision + 1,  # a reply already on its way is stale
                )
            self.narrative = None
            self.grid = None
            self.set_chords([])
            self._set_form([])
            self._show_narrative()
        elif self.link.state == "up":
            self.status.showMessage(
                f"the engine at {self.link.address} runs preset {self.link.info.get('preset')}; "
                f"{preset} applies to an engine started by the panel",
                8000,
            )

    def _set_engine_state(self, state: str, detail: str) -> None:
        colour = {"up": "#1a7f37", "down": "#c0392b", "starting": "#b7791f"}.get(state, "#555")
        text = {"up": "engine up", "down": "engine down", "starting": "engine starting"}.get(
            state, "engine?"
        )
        self.engine_label.setText(
            f"<b style='color:{colour}'>● {text}</b> &nbsp;{self.link.address} — {detail}"
        )
        self.start_engine_action.setEnabled(state in ("down", "unknown"))
        if state == "up":
            preset = self.link.info.get("preset")
            if preset:
                self.preset_box.setCurrentText(str(preset))
            self.annotate_all()
        first = self._first_state
        if state in ("up", "down"):
            self._first_state = False  # before starting: a failed start reports "down" at once
        if state == "down" and first and self._autostart:
            self.start_engine()

    def _on_region_progress(
        self, region_id: str, revision: int, stage: str, done: int, total: int
    ) -> None:
        row = self.model.get(region_id)
        if row is not None and row.revision == revision and row.state in ("queued", "running"):
            self.model.update(region_id, state="running", progress=(done, total))

    def _on_region_result(self, region_id: str, revision: int, annotation: dict) -> None:
        row = self.model.get(region_id)
        if row is None or row.revision != revision:
            return  # deleted or moved since: a newer request is on its way
        self.model.update(region_id, state="done", annotation=annotation, own=annotation, error="")
        if all(r.state == "done" for r in self.model.rows) and not self._narrating:
            self.narrate()  # the track's view, so the table tells what the narrative tells

    def _on_region_failed(self, region_id: str, revision: int, message: str) -> None:
        row = self.model.get(region_id)
        if row is None or row.revision != revision:
            return
        self.model.update(region_id, state="error", error=message)

    def _on_narrative(self, result: dict) -> None:
        self._narrating = False
        by_span = {(round(r["start_s"], 3), round(r["end_s"], 3)): r for r in result["regions"]}
        for row in self.model.rows:
            ann = by_span.get((round(row.start_s, 3), round(row.end_s, 3)))
            if ann is not None:  # the track's view replaces the region's own in the table
                self.model.update(row.id, state="done", annotation=ann, error="")
        self.narrative = result["narrative"]
        self.grid = {k: result[k] for k in export.EMPTY_GRID if k in result} or None
        self.set_chords(result.get("chords"))
        self._set_form(result.get("form") or [])
        self._show_narrative()
        self.status.clearMessage()
        if self.grid and self.grid.get("tempo_bpm"):
            bars = sum(1 for b in self.grid.get("beats", []) if b.get("position") == 1)
            self.status.showMessage(
                f"beat grid: {self.grid['tempo_bpm']:.0f} BPM, {self.grid.get('meter')}, "
                f"{bars} bars",
                8000,
            )

    def _on_plan(self, result: dict) -> None:
        """The engine's default regions replace the stand-in ones, then annotation starts."""
        if result.get("path") != self._planning or result.get("path") != self.audio_path:
            return  # another file was opened meanwhile
        self._planning = ""
        spans = [(float(a), float(b)) for a, b in result.get("regions", [])]
        if spans and spans != [(r.start_s, r.end_s) for r in self.model.rows]:
            for row in self.model.rows:  # the stand-in regions' requests are moot
                self.link.forget(row.id)
            self.model.set_rows([RegionRow(start_s=a, end_s=b) for a, b in spans])
        if result.get("beats"):
            self.grid = {k: result[k] for k in export.EMPTY_GRID if k in result}
        if result.get("form"):
            self._set_form(result["form"])
        self.annotate_all()

    def _set_form(self, form: list[dict[str, Any]]) -> None:
        """The track's sections, kept for exports and sessions and drawn in the form lane."""
        self.form = list(form)
        self.waveform.set_form(self.form)

    def _on_plan_failed(self, message: str) -> None:
        log.info("no plan from the engine (%s): the panel's own default regions stand", message)
        if self._planning and self._planning == self.audio_path:
            self._planning = ""
            self.annotate_all()

    def _on_narrative_failed(self, message: str) -> None:
        self._narrating = False
        self.narrative_view.show_failure(message)

    def _show_narrative(self) -> None:
        self.narrative_view.show_narrative(self.narrative)

    def _update_progress(self) -> None:
        rows = self.model.rows
        busy = sum(1 for r in rows if r.state in ("queued", "running"))
        if not busy:
            if self.progress.isVisible():
                self.progress.hide()
                self.annotationsSettled.emit()
            return
        done = sum(1 for r in rows if r.state in ("done", "error"))
        self.progress.setMaximum(len(rows))
        self.progress.setValue(done)
        self.progress.show()

    # Exports and sessions -------------------------------------------------------------------

    def track_document(self) -> dict[str, Any]:
        """The results as a ``TrackResult.to_dict()`` document."""
        return export.track_document(
            source=self.audio_path,
            duration_s=self.overview.duration_s if self.overview else 0.0,
            preset=str(self.link.info.get("preset") or self.preset_box.currentText()),
            regions=self.model.annotations(),
            narrative=self.narrative,
            grid=self.grid,
            chords=self.chords,
            form=self.form,
        )

    def set_chords(self, chords: list[dict[str, Any]] | None) -> None:
        """The track's chords (from the narrate reply or a session), shown in the chord lane."""
        self.chords = list(chords or [])
        self.waveform.set_chords(self.chords)

    def choose_export_path(self, fmt: str) -> None:
        """File > Export <format>."""
        stem = Path(self.audio_path).with_suffix("") if self.audio_path else Path("annotations")
        suffix = export.SUFFIXES[fmt]
        path, _ = QFileDialog.getSaveFileName(
            self, f"Export {export.FORMAT_NAMES[fmt]}", f"{stem}{suffix}", f"*{suffix}"
        )
        if path:
            self.export_to(path, fmt)

    def export_to(self, path: str, fmt: str) -> bool:
        """Write the results in ``fmt``; failures are shown, not raised."""
        try:
            written = export.write(self.track_document(), path, fmt, allow_empty=False)
        except (export.ExportError, OSError, ValueError) as exc:
            self._warn("Export failed", str(exc))
            return False
        self.status.showMessage(f"exported {written}", 5000)
        return True

    def choose_timeline_path(self) -> None:
        """File > Timeline PNG."""
        stem = Path(self.audio_path).with_suffix("") if self.audio_path else Path("timeline")
        path, _ = QFileDialog.getSaveFileName(self, "Timeline PNG", f"{stem}.timeline.png", "*.png")
        if path:
            self.save_timeline(path)

    def save_timeline(self, path: str) -> bool:
        """Draw the key / vocals / loudness timeline and save it as PNG."""
        regions = self.model.annotations()
        if not regions:
            self._warn("Timeline", "nothing to draw: no region has an annotation yet")
            return False
        try:
            written = save_timeline(
                path,
                regions,
                duration_s=self.overview.duration_s if self.overview else 0.0,
                title=Path(self.audio_path).name,
            )
        except OSError as exc:
            self._warn("Timeline", str(exc))
            return False
        self.status.showMessage(f"saved {written}", 5000)
        return True

    def session(self) -> Session:
        """The current session."""
        return Session(
            audio_path=self.audio_path,
            preset=self.preset_box.currentText(),
            regions=[r.to_dict() for r in self.model.rows],
            narrative=self.narrative,
            grid=self.grid,
            chords=self.chords,
            form=self.form,
        )

    def choose_session_path(self) -> None:
        """File > Save session."""
        default = self.session_path or (
            str(Path(self.audio_path).with_suffix(".session.json")) if self.audio_path else ""
        )
        path, _ = QFileDialog.getSaveFileName(self, "Save session", default, "*.json")
        if path:
            self.save_session(path)

    def save_session(self, path: str) -> bool:
        """Save file, regions, annotations and narrative as JSON."""
        if not self.audio_path:
            self._warn("Save session", "open an audio file first")
            return False
        try:
            self.session_path = str(self.session().save(path))
        except (OSError, ValueError) as exc:
            self._warn("Save session", str(exc))
            return False
        self.status.showMessage(f"saved session {self.session_path}", 5000)
        return True

    def choose_session(self) -> None:
        """File > Open session."""
        path, _ = QFileDialog.getOpenFileName(self, "Open session", "", "*.json")
        if path:
            self.open_session(path)

    def open_session(self, path: str) -> bool:
        """Reopen a saved session: the file, its regions and what the engine said."""
        try:
            s = Session.load(path)
        except SessionError as exc:
            self._warn("Open session", str(exc))
            return False
        self.session_path = path
        self.preset_box.setCurrentText(s.preset)
        narrative, grid, chords, form = s.narrative, s.grid, s.chords, s.form
        self.open_audio(s.audio_path, regions=[RegionRow.from_dict(r) for r in s.regions])
        opening = self._opening

        def restore(_path: str) -> None:
            self.overviewLoaded.disconnect(restore)
            if self._opening != opening:
                return  # the session's audio did not load; another file did
            self.narrative = narrative
            self.grid = grid
            self.set_chords(chords)
            self._set_form(form)
            self._show_narrative()

        self.overviewLoaded.connect(restore)
        return True

    def _warn(self, title: str, message: str) -> None:
        self.status.showMessage(f"{title}: {message}", 8000)
        if QApplication.platformName() != "offscreen":
            QMessageBox.warning(self, title, message)

    # Live -----------------------------------------------------------------------------------

    def start_listening(
        self, *, device: str | None = None, file: str | None = None, speed: float = 1.0
    ) -> None:
        """Caption the microphone (or a file played as one) in the Live tab."""
        self.tabs.setCurrentWidget(self.live_tab)
        self.live_tab.start(device=device, file=file, speed=speed)

    # Shutdown -------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent | None) -> None:
        self._closed = True
        self.live.stop()
        self.link.close()
        super().closeEvent(event)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``sonicverse panel``."""
    parser.add_argument("file", nargs="?", help="an audio file or a saved session (.json)")
    parser.add_argument(
        "--host",
        default=protocol.DEFAULT_HOST,
        help=f"engine host (default {protocol.DEFAULT_HOST})",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=protocol.DEFAULT_PORT,
        help=f"engine UDP port (default {protocol.DEFAULT_PORT})",
    )
    parser.add_argument(
        "--preset", default="lite", help="preset for an engine the panel starts (default lite)"
    )
    parser.add_argument(
        "--start-engine",
        action="store_true",
        help="start `sonicverse engine` if none answers at launch",
    )


def run(args: argparse.Namespace) -> int:
    """Entry point of ``sonicverse panel``; returns the exit status."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(
        host=args.host, port=args.port, preset=args.preset, start_engine=args.start_engine
    )
    window.show()
    if args.file:
        if args.file.lower().endswith(".json"):
            window.open_session(args.file)
        else:
            window.open_audio(args.file)
    return int(app.exec())


def main(argv: list[str] | None = None) -> int:
    """The ``sonicverse-panel`` console script and ``python -m ui`` (``sonicverse panel``)."""
    parser = argparse.ArgumentParser(prog="sonicverse-panel", description=__doc__)
    add_arguments(parser)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
