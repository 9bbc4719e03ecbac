"""The panel against a real engine (lite) on loopback: annotate, edit, export, sessions."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest
from PyQt6.QtCore import QEvent, QPointF, Qt, QTimer
from PyQt6.QtGui import QMouseEvent
from PyQt6.QtWidgets import QApplication

from daw_bridge import export, protocol
from tests.ui.conftest import free_udp_port, open_and_annotate, settled
from ui.app import MainWindow
from ui.models import COLUMNS
from ui.session import Session


def drag(widget, x0: float, x1: float, y: float = 80.0, *, modifiers=None) -> None:
    """Press at x0, move to x1 with the button held, release (QTest cannot hold buttons)."""
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    modifiers = modifiers or Qt.KeyboardModifier.NoModifier
    for kind, x, button, buttons in (
        (QEvent.Type.MouseButtonPress, x0, left, left),
        (QEvent.Type.MouseMove, (x0 + x1) / 2, none, left),
        (QEvent.Type.MouseMove, x1, none, left),
        (QEvent.Type.MouseButtonRelease, x1, left, none),
    ):
        pos = QPointF(x, y)
        event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, modifiers)
        QApplication.sendEvent(widget, event)


def test_open_annotate_fills_the_table(qtbot, window, song):
    open_and_annotate(qtbot, window, song)
    m = window.model
    assert [(r.start_s, r.end_s) for r in m.rows] == [(0.0, 10.0), (10.0, 20.0), (20.0, 25.0)]
    qtbot.waitUntil(lambda: window.narrative is not None, timeout=15_000)  # the panel asks
    # the song's chords move from A minor to D major at 12 s: the track view follows them
    assert [m.data(m.index(i, 2)) for i in range(3)] == ["A minor", "D major", "D major"]
    assert m.data(m.index(0, 4)).startswith("A minor")  # what the first region alone hears
    assert all(m.data(m.index(i, 7)) == "120" for i in range(3))
    assert "D major" in m.data(m.index(1, 9))  # the caption tells the track view too
    assert window.link.state == "up" and not window.progress.isVisible()
    assert "engine up" in window.engine_label.text()


def test_edit_regions_on_the_waveform(qtbot, window, song):
    open_and_annotate(qtbot, window, song)
    wf = window.waveform
    px_per_s = wf.width() / wf.duration_s
    first = window.model.rows[0]
    # Resize the first region's end from 10 s to ~6 s: it is sent again with its new bounds.
    drag(wf, 10.0 * px_per_s, 6.0 * px_per_s)
    moved = window.model.get(first.id)
    assert moved.revision == 1 and moved.end_s == pytest.approx(6.0, abs=0.1)
    qtbot.waitUntil(lambda: window.model.get(first.id).state == "done", timeout=10_000)
    assert window.model.get(first.id).annotation["end_s"] == pytest.approx(moved.end_s, abs=1e-3)
    # Draw a new region over ground no region covers... all of it is covered, so delete one
    # first with the Delete key, then draw a region there.
    last = window.model.rows[-1]
    wf.select(last.id)
    qtbot.keyClick(wf, Qt.Key.Key_Delete)
    assert window.model.get(last.id) is None and len(window.model.rows) == 2
    drag(wf, 21.0 * px_per_s, 23.5 * px_per_s)
    new = window.model.rows[-1]
    assert new.start_s == pytest.approx(21.0, abs=0.1) and new.end_s == pytest.approx(23.5, abs=0.1)
    qtbot.waitUntil(lambda: new.state == "done", timeout=10_000)
    assert new.annotation["key"]["key"] == "D major"
    # Shift+drag draws a region over existing ones (here inside the second region).
    drag(wf, 12.0 * px_per_s, 16.0 * px_per_s, modifiers=Qt.KeyboardModifier.ShiftModifier)
    assert len(window.model.rows) == 4
    overlay = next(r for r in window.model.rows if r.start_s == pytest.approx(12.0, abs=0.1))
    assert overlay.end_s == pytest.approx(16.0, abs=0.1)


def test_narrate_exports_timeline_and_session_round_trip(qtbot, window, song, tmp_path):
    open_and_annotate(qtbot, window, song)
    window.narrate()
    qtbot.waitUntil(lambda: window.narrative is not None, timeout=15_000)
    assert "at 0:10 the key moves to D major" in window.narrative["text"]
    # the narrative pane shows the text and each stretch with its span
    assert window.narrative["text"] in window.narrative_view.toPlainText()
    assert "0:10.0–0:25.0 D major" in window.narrative_view.toPlainText()

    for fmt, suffix in (
        ("json", ".json"),
        ("jams", ".jams"),
        ("audacity", ".txt"),
        ("csv", ".csv"),
    ):
        assert window.export_to(str(tmp_path / f"out{suffix}"), fmt)
    doc = json.loads((tmp_path / "out.json").read_text())
    # the track's view, as the narrative tells it, beside what each region alone hears
    assert [r["key"]["key"] for r in doc["regions"]] == ["A minor", "D major", "D major"]
    assert doc["regions"][0]["region_key"]["key"] == "A minor"
    assert doc["narrative"]["text"] == window.narrative["text"]
    import jams

    jam = jams.load(str(tmp_path / "out.jams"))
    assert [o.value for o in jam.search(namespace="key_mode")[0].data] == [
        "A:minor",
        "D:major",
        "D:major",
    ]
    # a label per region and one per section of the form
    assert (tmp_path / "out.txt").read_text().count("\n") == 3 + len(doc["form"])
    assert (tmp_path / "out.csv").read_text().startswith("#,Name,Start,End,Length\nR1,A minor")
    assert window.save_timeline(str(tmp_path / "timeline.png"))
    assert (tmp_path / "timeline.png").read_bytes()[:4] == b"\x89PNG"

    assert window.save_session(str(tmp_path / "s.json"))
    again = MainWindow(port=free_udp_port(), heartbeat_ms=0)  # reopening needs no engine
    qtbot.addWidget(again)
    assert again.open_session(str(tmp_path / "s.json"))
    qtbot.waitUntil(lambda: len(again.model.rows) == 3, timeout=5_000)
    assert [r.to_dict() for r in again.model.rows] == [r.to_dict() for r in window.model.rows]
    assert all(r.state == "done" for r in again.model.rows)
    assert again.narrative == window.narrative
    again.close()


def test_bad_file_error_lands_on_its_row(qtbot, window, song, tmp_path):
    open_and_annotate(qtbot, window, song)
    row = window.model.rows[0]
    window.audio_path = str(tmp_path / "gone.wav")  # the file vanished behind our back
    window.annotate(row)
    qtbot.waitUntil(lambda: row.state == "error", timeout=10_000)
    assert "gone.wav" in row.error and row.error.startswith("audio_error")
    assert window.model.data(window.model.index(0, 9)).startswith("⚠ audio_error")


def test_engine_down_gives_a_clear_state_not_a_frozen_window(qtbot, song):
    w = MainWindow(port=free_udp_port(), heartbeat_ms=300)
    qtbot.addWidget(w)
    w.show()
    ticks = []
    timer = QTimer(w)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    w.open_audio(song)
    qtbot.waitUntil(lambda: settled(w), timeout=10_000)
    assert all(r.state == "error" and "stopped answering" in r.error for r in w.model.rows)
    assert "engine down" in w.engine_label.text() and w.start_engine_action.isEnabled()
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    # the event loop kept running throughout: a wait on the engine on this thread would stop
    # it for a ping's 1.5 s; a collection or the scheduler on a busy machine pauses it for
    # well under a second (a full CI run once saw 0.59 s)
    assert len(ticks) > 20 and max(gaps) < 1.0
    w.close()


def test_dropping_a_file_opens_it(qtbot, window, song):
    from PyQt6.QtCore import QMimeData, QPoint, QUrl
    from PyQt6.QtGui import QDragEnterEvent, QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(song)])
    args = (
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    enter = QDragEnterEvent(QPoint(50, 50), *args)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    with qtbot.waitSignal(window.overviewLoaded, timeout=10_000):
        window.dropEvent(QDropEvent(QPointF(50, 50), *args))
    assert window.audio_path.endswith("two_keys.wav")
    qtbot.waitUntil(lambda: settled(window), timeout=60_000)

    text = QMimeData()
    text.setUrls([QUrl.fromLocalFile("/tmp/notes.txt")])
    refused = QDragEnterEvent(
        QPoint(50, 50),
        Qt.DropAction.CopyAction,
        text,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    refused.ignore()
    window.dragEnterEvent(refused)
    assert not refused.isAccepted()


def test_run_entry_point(qtbot, engine_port, song, monkeypatch):
    import argparse

    from PyQt6.QtCore import QEventLoop

    from ui import app

    parser = argparse.ArgumentParser()
    app.add_arguments(parser)
    args = parser.parse_args([song, "--port", str(engine_port)])
    opened = []
    loop = QEventLoop()

    def check_and_quit():
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
        opened.extend(w.audio_path for w in windows if w.audio_path)
        for w in windows:
            w.close()
        loop.quit()

    def exec_for_a_while(_app):
        # The real QApplication.exec() would end the test session's Qt event loop for good.
        QTimer.singleShot(3000, check_and_quit)
        return loop.exec()

    monkeypatch.setattr(QApplication, "exec", exec_for_a_while)
    assert app.run(args) == 0
    assert song in opened


def test_the_table_tells_what_the_narrative_tells(qtbot, window, tmp_path):
    """The demo song: a region alone may hear another key or a voice; the table shows the
    track's view, as the narrative does, and the region's own estimate beside it."""
    demo = str(Path(__file__).resolve().parents[2] / "docs" / "demo" / "demo.flac")
    open_and_annotate(qtbot, window, demo)
    qtbot.waitUntil(lambda: window.narrative is not None, timeout=20_000)  # asked for by itself
    m = window.model
    col = {name: i for i, name in enumerate(COLUMNS)}
    sections = window.narrative["sections"]
    for i, row in enumerate(m.rows):
        middle = (row.start_s + row.end_s) / 2
        section = next(s for s in sections if s["start_s"] <= middle < s["end_s"])
        key = m.data(m.index(i, col["key"]))
        assert key == (section["key"] or "—"), (row.start_s, key, section)
        vocals = m.data(m.index(i, col["vocals"]))
        said = "instrumental" if vocals == "none" else vocals
        assert said in section["text"], (row.start_s, vocals, section["text"])
        assert m.data(m.index(i, col["alone"]))  # the region's own estimate stays beside it
    # the demo's E minor bar at 0:20 is heard by its region alone, not told by the track
    assert any(
        not m.data(m.index(i, col["alone"])).startswith(m.data(m.index(i, col["key"])))
        for i in range(len(m.rows))
    )
    # the beat grid of the narrate reply goes into the panel's exports and sessions
    doc = window.track_document()
    assert doc["tempo_bpm"] and doc["meter"] and len(doc["beats"]) > 40
    assert {b["position"] for b in doc["beats"]} >= {1, 2}
    assert "bar 1 (" in export.render(doc, "csv", bars=True)
    saved = tmp_path / "demo.session.json"
    assert window.save_session(str(saved))
    assert Session.load(saved).grid == window.grid


def test_the_panel_opens_a_file_with_the_engines_plan(qtbot, tmp_path):
    """The engine's preset snaps regions to bar lines: the panel's regions are the engine's,
    starting on the grid's downbeats, not its own fixed 10 s cut."""
    import numpy as np

    from engine import audio
    from engine.server import EngineServer, ServerConfig
    from tests.engine.test_beats import beat_song, snapping_annotator

    annotator = snapping_annotator()
    server = EngineServer(annotator, ServerConfig(port=0))
    server.start()
    try:
        song = tmp_path / "bars.wav"
        audio.write(song, beat_song(96.0, 24), sr=22050, subtype="FLOAT")
        w = MainWindow(port=server.address[1], heartbeat_ms=300)
        qtbot.addWidget(w)
        qtbot.waitUntil(lambda: w.link.state == "up", timeout=10_000)
        open_and_annotate(qtbot, w, str(song))
        assert w.grid and w.grid["meter"] == "4/4"
        downbeats = np.array([b["time_s"] for b in w.grid["beats"] if b["position"] == 1])
        starts = [r.start_s for r in w.model.rows]
        assert len(starts) >= 4 and starts[0] == 0.0
        assert all(np.min(np.abs(downbeats - s)) < 1e-3 for s in starts[1:])
        assert starts != [10.0 * k for k in range(len(starts))]  # not the fixed cut
        w.close()
    finally:
        server.stop()
        annotator.close()


def test_the_chords_of_the_narrate_reply_fill_the_lane_exports_and_session(
    qtbot, window, song, tmp_path
):
    open_and_annotate(qtbot, window, song)
    qtbot.waitUntil(lambda: window.narrative is not None, timeout=15_000)
    chords = window.chords
    assert chords and window.waveform.chords == chords
    assert chords[0]["start_s"] == 0.0 and chords[-1]["end_s"] == pytest.approx(25.0, abs=0.05)
    assert {c["chord"] for c in chords} & {"A:min", "D:maj"}  # the two keys' tonic chords
    doc = window.track_document()
    assert doc["chords"] == chords
    assert f"M1,{export.chord_label(chords[0]['chord'])}," in export.render(doc, "csv", chords=True)
    window.waveform.grab()  # the lane paints
    saved = tmp_path / "chords.session.json"
    assert window.save_session(str(saved))
    assert Session.load(saved).chords == chords
    window.open_audio(song)  # another file (here the same one again): the lane empties
    assert window.chords == [] and window.waveform.chords == []


def test_a_plan_answered_before_the_panel_notes_it_still_annotates(qtbot, window, song):
    """The engine's plan may come back before ``plan()`` returns (a busy machine deschedules
    the GUI thread between sending and listening): the panel still takes it and annotates
    the regions instead of leaving them unsent."""
    client = window.link._client
    submit = client.submit

    def answered_first(address, args=None, **kw):
        pending = submit(address, args, **kw)
        if address == protocol.PLAN:
            pending._future.exception(timeout=10.0)  # its reply is in before we go on
        return pending

    client.submit = answered_first
    qtbot.waitUntil(lambda: window.link.state == "up", timeout=10_000)
    window.open_audio(song)
    qtbot.waitUntil(lambda: settled(window), timeout=20_000)
    assert all(r.state == "done" for r in window.model.rows)


def test_a_full_engine_queue_holds_regions_back_instead_of_failing_them(qtbot, tmp_path):
    """An engine whose queue is full answers ``busy``: the panel keeps at most its share of
    regions at the engine, asks again for one turned away, and every region is annotated
    (a long track's 10 s regions outnumber the engine's queue)."""
    import soundfile as sf

    from engine import presets
    from engine.pipeline import Annotator
    from engine.server import EngineServer, ServerConfig
    from tests.ui.conftest import A_MINOR, SR, cadences

    annotator = Annotator(presets.load("lite"), store=None)
    server = EngineServer(annotator, ServerConfig(port=0, queue_size=1))
    server.start()
    try:
        path = tmp_path / "long.wav"
        sf.write(path, cadences([(70.0, A_MINOR)]), SR)
        w = MainWindow(port=server.address[1], heartbeat_ms=300)
        qtbot.addWidget(w)
        w.link.max_regions_in_flight = 3  # one running, one queued, one turned away
        qtbot.waitUntil(lambda: w.link.state == "up", timeout=10_000)
        counts: list[int] = []
        submit = w.link._submit

        def counted(*args, **kw):
            rid = submit(*args, **kw)
            counts.append(w.link.in_flight)
            return rid

        w.link._submit = counted
        w.open_audio(str(path))
        qtbot.waitUntil(lambda: settled(w), timeout=60_000)
        most = max(counts)
        assert len(w.model.rows) == 7
        assert [r.error for r in w.model.rows if r.state != "done"] == []
        assert 3 <= most <= 3 + 2, counts  # its regions, a plan, a narrate
        assert w.link.waiting == 0
        w.close()
    finally:
        server.stop()
        annotator.close()


def test_opening_another_file_drops_the_first_files_replies(qtbot, window, song, tmp_path):
    """The first file's narrative, still on its way when a second file is opened, never
    lands on the second file's regions (same spans, other keys)."""
    import soundfile as sf

    from tests.ui.conftest import D_MAJOR, SR, cadences

    other = tmp_path / "d_major.wav"
    sf.write(other, cadences([(25.0, D_MAJOR)]), SR)
    qtbot.waitUntil(lambda: window.link.state == "up", timeout=10_000)
    narrate, opened = window.link.narrate, []

    def narrate_then_open(path, regions):
        rid = narrate(path, regions)
        if not opened:  # the first file's narrative is on its way: open the second file
            opened.append(path)
            QTimer.singleShot(0, lambda: window.open_audio(str(other)))
        return rid

    window.link.narrate = narrate_then_open
    window.open_audio(song)
    qtbot.waitUntil(
        lambda: (
            len(opened) == 1
            and window.audio_path.endswith("d_major.wav")
            and settled(window)
            and window.narrative is not None
        ),
        timeout=30_000,
    )
    qtbot.wait(1500)  # anything of the first file's still on its way has arrived
    keys = [r.annotation["key"]["key"] for r in window.model.rows]
    assert keys and all(k == "D major" for k in keys), keys
    assert "A minor" not in window.narrative["text"]


def test_a_reply_of_the_old_preset_does_not_land_after_a_switch(qtbot, window, song):
    """Switching the preset restarts the panel's engine; a region's reply from the old engine
    that arrives afterwards is not taken for the new preset's (it would never be redone), and
    neither is its progress on a region that has failed meanwhile."""
    open_and_annotate(qtbot, window, song)
    row = window.model.rows[0]
    old_revision, old_annotation = row.revision, dict(row.annotation)
    from PyQt6.QtCore import QProcess

    class Running:  # as if the panel had started the engine
        def state(self):
            return QProcess.ProcessState.Running

    window.link.process = Running()
    window.link.restart_engine = lambda preset: None
    try:
        window.preset_box.setCurrentText("some-other-preset")
        window.switch_preset()
        assert row.state == "new" and row.revision == old_revision + 1
        window.link.regionResult.emit(row.id, old_revision, old_annotation)
        qtbot.wait(50)
        assert row.state == "new" and row.annotation is None
        window.model.update(row.id, state="error", error="engine restarted")
        window.link.regionProgress.emit(row.id, row.revision, "analyze", 1, 2)
        qtbot.wait(50)
        assert row.state == "error"
    finally:
        window.link.process = None


@pytest.mark.parametrize("deleted", [False, True])
def test_a_window_closed_while_its_file_loads_drops_the_load(qtbot, monkeypatch, song, deleted):
    """The file's overview loads on a worker thread whose signal outlives the window: a
    window closed (or closed and deleted) meanwhile ignores the result instead of raising
    from the event loop."""
    import threading

    from PyQt6 import sip

    import ui.app

    release = threading.Event()
    real = ui.app.load_overview

    def slow(path):
        release.wait(10.0)
        return real(path)

    monkeypatch.setattr(ui.app, "load_overview", slow)
    w = MainWindow(port=free_udp_port(), heartbeat_ms=0)
    title = w.windowTitle()
    w.open_audio(song)
    w.close()
    if deleted:
        w.deleteLater()
        qtbot.waitUntil(lambda: sip.isdeleted(w), timeout=5_000)
    release.set()
    qtbot.waitUntil(lambda: not w._jobs, timeout=10_000)  # the load came back, and was dropped
    qtbot.wait(100)
    if not deleted:
        assert w.overview is None and w.windowTitle() == title and w.model.rowCount() == 0
