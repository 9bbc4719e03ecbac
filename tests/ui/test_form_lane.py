"""The panel's form lane: the engine's sections drawn above the waveform, kept in exports and
sessions."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from daw_bridge import export
from tests.ui.conftest import open_and_annotate
from ui.app import MainWindow
from ui.session import Session
from ui.waveform import FORM_PX, label_colours, section_text


def form_annotator():
    """The lite preset (without the tagger) planning its regions on the form."""
    from engine import presets
    from engine.backends.lite import LiteBackend
    from engine.pipeline import Annotator

    preset = presets.load("lite")
    preset = replace(
        preset,
        regions=replace(preset.regions, plan="form", max_s=20.0),
        options=replace(preset.options, tag=False),
    )
    return Annotator(preset, store=None, backend=LiteBackend(preset))


def test_section_text_and_colours_follow_the_labels() -> None:
    form = [
        {"start_s": 0.0, "end_s": 1.0, "label": "A", "function": "verse"},
        {"start_s": 1.0, "end_s": 2.0, "label": "B", "function": None},
        {"start_s": 2.0, "end_s": 3.0, "label": "A", "function": "verse"},
    ]
    assert [section_text(s) for s in form] == ["verse A", "B", "verse A"]
    colours = label_colours(form)
    assert set(colours) == {"A", "B"} and colours["A"] != colours["B"]


def test_the_panel_draws_the_engines_form_and_keeps_it(qtbot, tmp_path: Path) -> None:
    from engine import audio
    from engine.server import EngineServer, ServerConfig
    from tests.engine.test_form import SR, abab_song

    annotator = form_annotator()
    server = EngineServer(annotator, ServerConfig(port=0))
    server.start()
    try:
        song = tmp_path / "abab.wav"
        audio.write(song, abab_song(), sr=SR, subtype="FLOAT")
        w = MainWindow(port=server.address[1], heartbeat_ms=300)
        qtbot.addWidget(w)
        qtbot.waitUntil(lambda: w.link.state == "up", timeout=10_000)
        open_and_annotate(qtbot, w, str(song))
        qtbot.waitUntil(lambda: bool(w.form) and w.narrative is not None, timeout=60_000)
        assert [s["label"] for s in w.form] == ["A", "B", "A", "B"]
        assert [s["function"] for s in w.form] == ["verse", "chorus", "verse", "chorus"]
        assert w.waveform.form == w.form
        # the regions are the form's sections (16 s each, under max_s = 20 s)
        assert [(r.start_s, r.end_s) for r in w.model.rows] == [
            (s["start_s"], s["end_s"]) for s in w.form
        ]
        # the lane: the chorus's colour above the waveform where the chorus plays
        w.waveform.resize(800, 240)
        image = w.waveform.grab().toImage()
        chorus = w.form[1]
        x = int(w.waveform.x_of((chorus["start_s"] + chorus["end_s"]) / 2))
        assert image.pixelColor(x, FORM_PX // 2) == label_colours(w.form)["B"]
        assert image.pixelColor(x, FORM_PX + 40) != label_colours(w.form)["B"]
        doc = w.track_document()
        assert doc["form"] == w.form
        assert "Chorus 2" in export.render(doc, "audacity")
        saved = tmp_path / "abab.session.json"
        assert w.save_session(str(saved))
        assert Session.load(saved).form == w.form
        w.close()
    finally:
        server.stop()
        annotator.close()
