"""The panel's child processes: an engine it starts, the listener of its Live tab."""

from __future__ import annotations

from tests.ui.conftest import free_udp_port, open_and_annotate, settled
from ui.app import MainWindow


def test_panel_starts_an_engine_when_none_answers(qtbot, song, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))  # the child engine's store goes here
    w = MainWindow(port=free_udp_port(), heartbeat_ms=300, start_engine=True)
    qtbot.addWidget(w)
    qtbot.waitUntil(lambda: w.link.state == "up", timeout=30_000)
    assert w.link.info["preset"] == "lite" and w.link.process is not None
    open_and_annotate(qtbot, w, song)
    assert [r.state for r in w.model.rows] == ["done"] * 3
    w.close()
    assert w.link.process is None  # the engine we started is stopped with the panel


def test_live_tab_captions_a_file_played_as_a_microphone(qtbot, window, song):
    window.live_tab.window_spin.setValue(4.0)
    window.live_tab.hop_spin.setValue(4.0)
    results = []
    window.live.result.connect(results.append)
    with qtbot.waitSignal(window.live.notice, timeout=30_000) as finished:
        window.start_listening(file=song, speed=8.0)
    assert finished.args[0] == "finished"
    qtbot.waitUntil(lambda: not window.live.running, timeout=10_000)
    assert [(r["start_s"], r["end_s"]) for r in results][:2] == [(0.0, 4.0), (4.0, 8.0)]
    assert results[0]["annotation"]["key"]["key"] == "A minor"
    assert len(window.live.latencies_s) == len(results) >= 5
    assert "latency" in window.live_tab.latency.text() and "p95" in window.live_tab.latency.text()
    assert not window.live_tab.listen_button.isChecked()


def test_live_tab_reports_a_missing_device(qtbot, window):
    with qtbot.waitSignal(window.live.notice, timeout=30_000) as event:
        window.start_listening(device="no such microphone 1234")
    assert event.args[0] == "error"
    assert "no audio input device" in event.args[1] or "matches no input device" in event.args[1]
    qtbot.waitUntil(lambda: not window.live_tab.listen_button.isChecked(), timeout=5_000)
    assert "error" in window.live_tab.status.text()


def test_picking_a_preset_restarts_the_panels_engine(qtbot, song, tmp_path, monkeypatch):
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[2] / "presets" / "lite.toml"
    (tmp_path / "lite-copy.toml").write_text(
        shipped.read_text().replace('name = "lite"', 'name = "lite-copy"')
    )
    monkeypatch.setenv("SONICVERSE_PRESETS", str(tmp_path))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    w = MainWindow(port=free_udp_port(), heartbeat_ms=300, start_engine=True)
    qtbot.addWidget(w)
    assert w.preset_box.findText("lite-copy") >= 0
    qtbot.waitUntil(lambda: w.link.state == "up", timeout=30_000)
    open_and_annotate(qtbot, w, song)
    w.preset_box.setCurrentText("lite-copy")
    w.switch_preset()
    assert all(r.annotation is None for r in w.model.rows)
    qtbot.waitUntil(lambda: w.link.info.get("preset") == "lite-copy" and settled(w), timeout=60_000)
    assert all(r.state == "done" for r in w.model.rows)
    w.close()
