"""Panel parts without an engine: regions model, colours, overview, exports, sessions, timeline."""

from __future__ import annotations

import ast
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor

from daw_bridge import export
from daw_bridge.keys import parse_key
from ui.app import default_regions
from ui.keys import key_hsv
from ui.models import RegionRow, RegionTableModel
from ui.overview import OverviewError, load_overview
from ui.session import Session, SessionError
from ui.timeline import render_timeline

UI = Path(__file__).resolve().parents[2] / "ui"


def annotation(start, end, key="A minor", vocals=None, lufs=-14.0, silent=False):
    """A RegionAnnotation.to_dict() as the engine sends it."""
    return {
        "start_s": start,
        "end_s": end,
        "name": "",
        "silent": silent,
        "key": None
        if silent
        else {
            "key": key,
            "confidence": 0.8,
            "candidates": [["C major", 0.1]],
            "probabilities": [],
            "tonality": 0.4,
        },
        "tempo_bpm": None if silent else 120.0,
        "tempo_confidence": 0.9,
        "loudness_lufs": lufs,
        "peak_dbfs": -1.0,
        "vocals": None if vocals is None else {"label": vocals, "probabilities": [0.1, 0.2, 0.7]},
        "instruments": [{"label": "piano", "score": 0.6}],
        "genres": [],
        "moods": [],
        "caption": f"{key} at 120 BPM" if not silent else "Silence.",
        "backend": "lite",
        "flags": [],
        "region_key": None,
        "region_tempo_bpm": None,
        "tempo_candidates": [] if silent else [[120.0, 0.9]],
        "chords": [],
        "progression": "",
    }


def test_ui_never_imports_engine():
    for f in UI.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            assert not any(n == "engine" or n.startswith("engine.") for n in names), f
    code = (
        "import sys, ui.app, ui.live, ui.timeline, ui.session;"
        "bad = [m for m in sys.modules if m == 'engine' or m.startswith('engine.')];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={"QT_QPA_PLATFORM": "offscreen"})


def test_default_regions_merge_a_short_tail():
    spans = [(r.start_s, r.end_s) for r in default_regions(31.0)]
    assert spans == [(0.0, 10.0), (10.0, 20.0), (20.0, 31.0)]
    assert [(r.start_s, r.end_s) for r in default_regions(25.0)][-1] == (20.0, 25.0)
    assert [(r.start_s, r.end_s) for r in default_regions(4.0)] == [(0.0, 4.0)]


def test_key_colours_follow_the_circle_of_fifths():
    assert parse_key("Gb minor") == (6, "minor") and parse_key("H dur") is None
    assert key_hsv("A minor")[0] == key_hsv("C major")[0]  # relative keys share a hue
    assert abs(key_hsv("G major")[0] - key_hsv("C major")[0]) == 30  # a fifth apart
    assert key_hsv("A minor")[2] < key_hsv("C major")[2]  # minor is darker
    assert key_hsv(None) is None and key_hsv("nonsense") is None


def test_table_model_rows_edits_and_errors(qtbot):
    model = RegionTableModel()
    b = model.add(10.0, 20.0)
    a = model.add(5.0, 0.0)  # reversed bounds are ordered
    assert [(r.start_s, r.end_s) for r in model.rows] == [(0.0, 5.0), (10.0, 20.0)]
    model.update(a.id, state="done", annotation=annotation(0.0, 5.0, vocals="female"))
    text = [model.data(model.index(0, c)) for c in range(model.columnCount())]
    assert text == [
        "0:00.0",
        "0:05.0",
        "A minor",
        "0.80",
        "",  # alone: nothing from the region by itself yet
        "female",
        "piano",
        "120",
        "-14.0",
        "A minor at 120 BPM",
    ]
    model.update(b.id, state="error", error="audio_error: x.wav: no such file")
    caption = model.index(1, model.columnCount() - 1)
    assert model.data(caption) == "⚠ audio_error: x.wav: no such file"
    assert model.data(caption, Qt.ItemDataRole.ForegroundRole).color() == QColor("#c0392b")
    with qtbot.waitSignal(model.regionsChanged):
        moved = model.move(a.id, 30.0, 35.0)
    assert moved.revision == 1 and moved.annotation is None and model.rows[-1] is moved
    model.remove(b.id)
    assert [r.id for r in model.rows] == [a.id]
    assert model.annotations() == []


def test_region_row_round_trip():
    row = RegionRow(1.0, 2.0, "verse", annotation=annotation(1.0, 2.0), state="done")
    back = RegionRow.from_dict(json.loads(json.dumps(row.to_dict())))
    assert (back.id, back.start_s, back.end_s, back.name, back.state) == (
        row.id,
        1.0,
        2.0,
        "verse",
        "done",
    )
    assert back.annotation == row.annotation


def test_overview_min_max_match_numpy(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 100_003)).astype(np.float32)
    path = tmp_path / "noise.wav"
    sf.write(path, x.T, 8000, subtype="FLOAT")
    ov = load_overview(path, buckets=1000)
    mono = x.mean(axis=0)
    edges = np.linspace(0, len(mono), 1001).astype(int)
    spans = list(itertools.pairwise(edges))
    np.testing.assert_allclose(ov.mins, [mono[a:b].min() for a, b in spans], rtol=1e-6)
    np.testing.assert_allclose(ov.maxs, [mono[a:b].max() for a, b in spans], rtol=1e-6)
    assert ov.duration_s == pytest.approx(100_003 / 8000) and ov.channels == 2


@pytest.mark.parametrize(
    ("suffix", "codec"), [(".m4a", "alac"), (".opus", "libopus"), (".ogg", "libopus")]
)
def test_overview_of_files_libav_reads(tmp_path, monkeypatch, suffix, codec):
    """MP4 and Opus (in any Ogg file), which the engine decodes with libav, are read with
    libav here too and draw like the WAV they came from."""
    import shutil
    import subprocess

    import av

    opened = []
    libav_open = av.open
    monkeypatch.setattr(av, "open", lambda *a, **k: opened.append(a[0]) or libav_open(*a, **k))

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (scripts/setup.sh --dev installs it)")
    t = np.arange(8 * 48000) / 48000
    # a tone swelling and fading once: each bucket spans +-its envelope
    x = (0.8 * np.sin(np.pi * t / 8) * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    wav = tmp_path / "src.wav"
    sf.write(wav, np.stack([x, x]).T, 48000, subtype="PCM_16")
    dest = tmp_path / f"a{suffix}"
    cmd = ["ffmpeg", "-loglevel", "error", "-i", str(wav), "-c:a", codec, str(dest)]
    subprocess.run(cmd, check=True)
    ov = load_overview(dest, buckets=200)
    assert opened == [str(dest)]
    ref = load_overview(wav, buckets=200)
    assert (ov.sr, ov.channels, ov.mins.size) == (48000, 2, 200)
    assert ov.duration_s == pytest.approx(8.0, abs=0.03)
    np.testing.assert_allclose(ov.maxs, ref.maxs, atol=0.05)
    np.testing.assert_allclose(ov.mins, ref.mins, atol=0.05)
    assert ref.maxs.max() > 0.75 and ref.maxs[[0, -1]].max() < 0.05  # the envelope is drawn
    video = tmp_path / "video.mp4"
    cmd = ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=black:s=16x16:d=1"]
    subprocess.run([*cmd, "-c:v", "mpeg4", str(video)], check=True)
    with pytest.raises(OverviewError, match="no audio stream"):
        load_overview(video)


def test_overview_errors_name_the_file(tmp_path):
    with pytest.raises(OverviewError, match="no such file"):
        load_overview(tmp_path / "missing.wav")
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(OverviewError, match="unsupported file type '.txt'"):
        load_overview(bad)
    fake = tmp_path / "fake.wav"
    fake.write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(OverviewError, match="unreadable audio"):
        load_overview(fake)


@pytest.fixture
def doc():
    regions = [
        annotation(0.0, 10.0, "A minor", vocals="female", lufs=-12.0),
        annotation(10.0, 20.0, "D major", vocals="none"),
        annotation(20.0, 24.0, silent=True, lufs=None),
    ]
    narrative = {
        "source": "/x/song.wav",
        "duration_s": 24.0,
        "text": "0:00 A minor; 0:10 D major.",
        "sections": [
            {"start_s": 0.0, "end_s": 10.0, "text": "A minor", "key": "A minor", "events": []}
        ],
        "backend": "lite",
    }
    return export.track_document(
        source="/x/song.wav",
        duration_s=24.0,
        preset="lite",
        regions=list(reversed(regions)),
        narrative=narrative,
    )


@pytest.mark.parametrize("fmt", export.FORMATS)
def test_exports_match_the_engine_writers(doc, fmt):
    """The panel writes the same bytes as engine.export for the same results."""
    from engine import export as engine_export
    from engine.types import RegionAnnotation, TrackNarrative, TrackResult

    result = TrackResult(
        source=doc["source"],
        duration_s=doc["duration_s"],
        preset=doc["preset"],
        regions=tuple(RegionAnnotation.from_dict(r) for r in doc["regions"]),
        narrative=TrackNarrative.from_dict(doc["narrative"]),
    )
    ours = export.WRITERS[fmt](doc)
    theirs = engine_export.render(result, fmt)
    if fmt in ("json", "jams"):
        assert json.loads(ours) == json.loads(theirs)
    else:
        assert ours == theirs


def test_export_write_and_errors(doc, tmp_path):
    out = export.write(doc, tmp_path / "sub" / "song.txt", "audacity")
    assert out.read_text().splitlines()[0] == (
        "0.000000\t10.000000\tA minor | female vocals | 120 BPM"
    )
    with pytest.raises(export.ExportError, match="unknown export format 'mp3'"):
        export.write(doc, tmp_path / "x", "mp3")
    with pytest.raises(export.ExportError, match="nothing to export"):
        export.write({**doc, "regions": []}, tmp_path / "x.json", "json", allow_empty=False)


def test_session_round_trip_and_moved_folder(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    audio = folder / "song.wav"
    sf.write(audio, np.zeros(800, np.float32), 8000)
    regions = [RegionRow(0.0, 0.05, "a", annotation=annotation(0.0, 0.05)).to_dict()]
    Session(str(audio), "lite", regions, {"text": "n"}).save(folder / "s.json")
    back = Session.load(folder / "s.json")
    assert (back.audio_path, back.preset, back.regions, back.narrative) == (
        str(audio.resolve()),
        "lite",
        regions,
        {"text": "n"},
    )
    moved = tmp_path / "moved"
    folder.rename(moved)
    assert Session.load(moved / "s.json").audio_path == str((moved / "song.wav").resolve())


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "cannot read session"),
        ('{"hello": 1}', "not a SonicVerse session"),
        ('{"sonicverse_session": 99}', "session version 99"),
        ('{"sonicverse_session": 1, "regions": [{"start_s": 3, "end_s": 1}]}', "start_s=3"),
    ],
)
def test_session_errors(tmp_path, content, match):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(SessionError, match=match):
        Session.load(p)


def test_timeline_paints_keys_vocals_and_loudness(qtbot, doc):
    from ui.models import key_colour

    img = render_timeline(doc["regions"], duration_s=24.0, title="song.wav", width=1000, height=400)
    assert (img.width(), img.height()) == (1000, 400)
    plot_w = 1000 - 120 - 16

    def x(t):
        return int(120 + t / 24.0 * plot_w)

    # Key lane (y 34..82): A minor then D major then silence grey, sampled off the labels.
    def rgb(xp, y):
        return img.pixelColor(xp, y).rgb()

    assert rgb(x(1), 40) == key_colour("A minor").rgb()
    assert rgb(x(11), 40) == key_colour("D major").rgb()
    assert rgb(x(21), 40) == QColor("#c8c8c8").rgb()
    # Vocals lane (y 96..118): female, then none.
    assert rgb(x(1), 105) == QColor("#d6336c").rgb()
    assert rgb(x(11), 105) == QColor("#9aa0a6").rgb()

    # Loudness lane: the -12 LUFS region is filled higher up than the -14 LUFS one.
    def top_of_fill(xp):
        return next(
            y
            for y in range(132, 366)
            if img.pixelColor(xp, y).red() < 200 and img.pixelColor(xp, y).blue() > 200
        )

    assert top_of_fill(x(1)) == pytest.approx(132 + 234 * 12 / 60, abs=2)
    assert top_of_fill(x(11)) == pytest.approx(132 + 234 * 14 / 60, abs=2)


def fake_listener(monkeypatch, script: str) -> None:
    """Make the Live tab run ``script`` instead of ``sonicverse listen``."""
    import ui.live

    monkeypatch.setattr(ui.live, "engine_command", lambda *args: (sys.executable, ["-c", script]))


def test_live_device_that_goes_away_is_reported_once(qtbot, monkeypatch):
    from ui.live import LiveCaptioner

    fake_listener(
        monkeypatch,
        (
            "import json, time, sys\n"
            "print(json.dumps({'v': 1, 'index': 0, 'start_s': 0.0, 'end_s': 10.0,"
            " 't_end': time.monotonic(), 'analysis_ms': 5.0, 'annotation': None,"
            " 'error': 'x'}), flush=True)\n"
            "print('not a line of the declared format', flush=True)\n"
            "print(json.dumps({'v': 1, 'event': 'overflow', 'message': 'mic: input overflow'}),"
            " flush=True)\n"
            "print(json.dumps({'v': 1, 'event': 'stopped',"
            " 'message': 'mic: input device went away'}))\n"
            "sys.exit(1)\n"
        ),
    )
    live = LiveCaptioner()
    results, notices = [], []
    live.result.connect(results.append)
    live.notice.connect(lambda kind, message: notices.append((kind, message)))
    with qtbot.waitSignal(
        live.runningChanged, timeout=10_000, check_params_cb=lambda running: not running
    ):
        live.start(device="mic")
    assert [r["index"] for r in results] == [0]
    assert notices == [
        ("overflow", "mic: input overflow"),
        ("stopped", "mic: input device went away"),
    ]
    assert live.record_shown(results[0]["t_end"]) >= 0.0


def test_live_listener_that_fails_reports_why(qtbot, monkeypatch):
    from ui.live import LiveCaptioner

    fake_listener(
        monkeypatch,
        ("import sys\nsys.stderr.write('error: no audio input device found\\n')\nsys.exit(2)\n"),
    )
    live = LiveCaptioner()
    notices = []
    live.notice.connect(lambda kind, message: notices.append((kind, message)))
    with qtbot.waitSignal(
        live.runningChanged, timeout=10_000, check_params_cb=lambda running: not running
    ):
        live.start()
    assert notices == [("error", "no audio input device found")]


def test_the_link_says_the_engine_restarted_and_a_retry_gets_its_answer(qtbot):
    """The engine restarts while the panel waits for a region: the row's error says so (no
    wait for the request's timeout, no traceback), and asking again is answered."""
    from tests.daw_bridge.test_client import FakeEngine, Instances
    from ui.engine_link import EngineLink

    engines = Instances()
    engine = FakeEngine(engines)
    link = EngineLink(port=engine.port, heartbeat_ms=0)
    failed: list[str] = []
    link.regionFailed.connect(lambda rid, rev, message: failed.append(message))
    try:
        link.annotate("r1", 1, "/a.wav", 0.0, 1.0)
        qtbot.wait(500)  # accepted; the client knows the engine's instance
        engines.instance = "second"
        qtbot.waitUntil(lambda: bool(failed), timeout=5_000)
        assert failed[0].startswith("engine restarted") and "ask again" in failed[0]
        engines.answer = {"start_s": 0.0, "end_s": 1.0}
        with qtbot.waitSignal(link.regionResult, timeout=5_000) as got:
            link.annotate("r1", 2, "/a.wav", 0.0, 1.0)
        assert got.args[:2] == ["r1", 2] and got.args[2]["end_s"] == 1.0
    finally:
        link.close()
        engine.close()


def test_the_link_paces_regions_and_forgotten_ones_free_their_place(qtbot):
    """With room for one region at the engine, the others wait in the panel; forgetting the
    one at the engine (its region deleted) sends the next, and a forgotten waiting region is
    never sent."""
    from daw_bridge import protocol
    from tests.daw_bridge.test_client import FakeEngine, _reply
    from ui.engine_link import EngineLink

    def behave(e, to, address, p):
        if address == protocol.PING:
            e.send(to, _reply(protocol.RESULT, id=p[0], part=0, parts=1, json='{"pong": 1}'))
        elif address == protocol.ANNOTATE:
            e.send(to, _reply(protocol.ACCEPTED, id=p[0], position=0))  # and works on it

    engine = FakeEngine(behave)
    link = EngineLink(port=engine.port, heartbeat_ms=0, max_regions_in_flight=1)

    def asked() -> list[float]:
        return [p[4] for a, p in engine.received if a == protocol.ANNOTATE]  # start_s

    try:
        for i, rid in enumerate(("r1", "r2", "r3")):
            link.annotate(rid, 1, "/a.wav", 10.0 * i, 10.0 * i + 10.0)
        qtbot.waitUntil(lambda: asked() == [0.0], timeout=5_000)
        assert (link.in_flight, link.waiting) == (1, 2)
        link.forget("r3")
        link.forget("r1")
        qtbot.waitUntil(lambda: 10.0 in asked(), timeout=5_000)
        qtbot.wait(300)
        assert sorted(set(asked())) == [0.0, 10.0] and link.waiting == 0
    finally:
        link.close()
        engine.close()


def test_the_link_rides_out_one_unanswered_ping_but_not_two(qtbot):
    """An engine that stalls for longer than a ping may wait (a busy machine) keeps its
    requests when the ping asked again at once is answered; one silent for two pings in a
    row is down, and its requests fail with a message naming it."""
    import threading

    from daw_bridge import protocol
    from tests.daw_bridge.test_client import FakeEngine, _reply
    from ui.engine_link import EngineLink

    stall_until = [0.0]
    late: list[threading.Timer] = []

    def behave(e, to, address, p):
        if address == protocol.PING:  # a stalled engine answers late, when it wakes
            pong = _reply(protocol.RESULT, id=p[0], part=0, parts=1, json='{"pong": 1}')
            late.append(threading.Timer(max(0.0, stall_until[0] - time.monotonic()), e.send))
            late[-1].args = (to, pong)
            late[-1].start()
        elif address == protocol.ANNOTATE:
            e.send(to, _reply(protocol.ACCEPTED, id=p[0], position=0))  # and works on it

    engine = FakeEngine(behave)
    link = EngineLink(port=engine.port, heartbeat_ms=0)
    states: list[str] = []
    failed: list[str] = []
    link.stateChanged.connect(lambda state, detail: states.append(state))
    link.regionFailed.connect(lambda rid, rev, message: failed.append(message))

    def pings() -> int:
        return sum(a == protocol.PING for a, _ in engine.received)

    try:
        link.check(timeout_s=0.4)
        qtbot.waitUntil(lambda: link.state == "up", timeout=5_000)
        link.annotate("r1", 1, "/a.wav", 0.0, 10.0)
        qtbot.waitUntil(lambda: any(a == protocol.ANNOTATE for a, _ in engine.received))
        before = pings()
        stall_until[0] = time.monotonic() + 0.6  # longer than one ping's 0.4 s, not two
        link.check(timeout_s=0.4)
        # missed and asked again (the client's own probes are pings too)
        qtbot.waitUntil(lambda: pings() >= before + 2, timeout=5_000)
        qtbot.wait(800)
        assert states == ["up"] and failed == [] and link.in_flight == 1
        stall_until[0] = time.monotonic() + 3.0  # silent for two pings in a row
        link.check(timeout_s=0.4)
        qtbot.waitUntil(lambda: link.state == "down", timeout=5_000)
        assert states == ["up", "down"] and len(failed) == 1
        assert "stopped answering" in failed[0] and str(engine.port) in failed[0]
    finally:
        for timer in late:
            timer.cancel()
        link.close()
        engine.close()
