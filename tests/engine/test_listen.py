"""``sonicverse listen`` with the file-backed source and the lite backend (no microphone)."""

from __future__ import annotations

import argparse
import json
import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine import backends, listen, live, presets, sources
from engine.errors import AudioError
from engine.live import LatencyStats, Listener
from engine.remote import RemoteEngine
from engine.sources import FileSource

SR = 22050


def a_minor_cadences(seconds: float, bpm: float = 120.0) -> np.ndarray:
    """i-iv-V-i in A minor (the G# names the key), one beat per chord, a click every beat,
    ``[frames]`` float32."""
    chords = ((57, 60, 64), (50, 53, 57), (52, 56, 59), (57, 60, 64))  # MIDI notes
    beat = 60.0 / bpm
    n = int(seconds * SR)
    t = np.arange(n) / SR
    x = np.zeros(n)
    for i in range(int(np.ceil(seconds / beat))):
        a, b = int(i * beat * SR), min(n, int((i + 1) * beat * SR))
        for note in chords[i % 4]:
            for midi in (note, note - 12):
                x[a:b] += 0.08 * np.sin(2 * np.pi * 440.0 * 2 ** ((midi - 69) / 12) * t[a:b])
    x[:: int(SR * beat)] += 0.8
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    path = tmp_path_factory.mktemp("listen") / "a_minor.wav"
    sf.write(path, a_minor_cadences(6.0), SR)
    return path


@pytest.fixture(scope="module")
def lite():
    backend = backends.create(presets.load("lite"))
    live.warm_up(backend, sr=SR, channels=1)  # timings in tests are then steady
    yield backend
    backend.close()


def run_listener(source, backend, **kw):
    results, events = [], []
    done = threading.Event()

    def on_event(e):
        events.append(e)
        if e.kind != "overflow":
            done.set()

    listener = Listener(source, backend, on_result=results.append, on_event=on_event, **kw)
    listener.start()
    assert done.wait(20.0)
    listener.stop()
    return listener, results, events


def test_listener_annotates_rolling_windows_from_a_file(song, lite):
    listener, results, events = run_listener(
        FileSource(song, speed=4.0), lite, window_s=4.0, hop_s=1.0
    )
    assert [e.kind for e in events] == ["finished"]
    assert [r.index for r in results] == [0, 1, 2]
    assert [(r.start_s, r.end_s) for r in results] == [(k, k + 4.0) for k in range(3)]
    for r in results:
        assert r.error is None
        assert r.annotation.key.key == "A minor"
        assert r.annotation.tempo_bpm == pytest.approx(120.0, rel=0.03)
        assert 0.0 <= r.t_done - r.t_end < 1.0
    assert listener.skipped == 0


class SlowBackend:
    """Wraps a backend and sleeps first: the listener must skip stale windows, not lag."""

    name = "slow"
    fingerprint = "slow"

    def __init__(self, inner, delay_s):
        self.inner, self.delay_s = inner, delay_s
        self.preset = inner.preset

    def analyze(self, segments, **kw):
        time.sleep(self.delay_s)
        return self.inner.analyze(segments, **kw)


def test_live_windows_get_the_track_view(lite):
    """A window of drums alone says "no clear key", as a file's region would."""
    from engine.live import analyze_window
    from engine.sources import Window
    from tests.synth import drum_loop

    y = drum_loop(120.0, 4.0)
    window = Window(index=0, start_s=0.0, end_s=4.0, t_end=0.0, samples=y[None, :], sr=22050)
    result = analyze_window(lite, window, source="mic")
    assert result.error is None and result.annotation is not None
    assert result.annotation.key is None and "no_clear_key" in result.annotation.flags
    assert result.annotation.region_key is not None


def test_slow_backend_skips_stale_windows_and_keeps_the_newest(song, lite):
    listener, results, _ = run_listener(
        FileSource(song, speed=math.inf), SlowBackend(lite, 0.2), window_s=1.0, hop_s=0.25
    )
    indices = [r.index for r in results]
    assert listener.skipped > 0 and len(results) + listener.skipped == 21
    assert indices == sorted(indices) and indices[-1] == 20  # the last window is never dropped


class FailingBackend:
    name = "failing"
    fingerprint = "failing"

    def analyze(self, segments, **kw):
        raise AudioError("mic: 3 non-finite (NaN/Inf) samples")


def test_analysis_errors_become_results(song):
    listener, results, _ = run_listener(
        FileSource(song, speed=math.inf), FailingBackend(), window_s=5.0, hop_s=1.0
    )
    assert results[-1].index == 1 and len(results) + listener.skipped == 2
    assert all(r.annotation is None and "non-finite" in r.error for r in results)
    assert listen.describe(results[0])[-1].startswith("error: mic: 3 non-finite")


def parse(argv):
    parser = argparse.ArgumentParser()
    listen.add_arguments(parser)
    return parser.parse_args(argv)


def test_cli_jsonl_from_a_file(song, capsys):
    status = listen.run(
        parse(["--file", str(song), "--speed", "8", "--window", "2", "--hop", "2", "--jsonl"])
    )
    assert status == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"v": 1, "event": "finished", "message": "a_minor.wav: end of file"} in lines
    lines = [d for d in lines if "index" in d]
    assert [(d["start_s"], d["end_s"]) for d in lines] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
    assert all(d["annotation"]["key"]["key"] == "A minor" for d in lines)
    assert all(d["analysis_ms"] >= 0 for d in lines)


def test_cli_live_display_shows_captions_and_latency(song, capsys):
    status = listen.run(parse(["--file", str(song), "--speed", "8", "--window", "3", "--hop", "3"]))
    err = capsys.readouterr().err
    assert status == 0
    assert "A minor" in err and "120 BPM" in err
    assert "latency p50" in err and "windows 2" in err


def test_cli_without_input_device_says_so(monkeypatch, capsys):
    class NoDevices:
        def query_devices(self, index=None):
            return []

    monkeypatch.setattr(sources, "_sounddevice", lambda: NoDevices())
    assert listen.run(parse(["--device", "usb"])) == 2
    assert "no audio input device found" in capsys.readouterr().err


def test_latency_stats_percentiles():
    stats = LatencyStats()
    assert math.isnan(stats.percentile_ms(50))
    for v in (0.1, 0.2, 0.3, 0.4, 0.5):
        stats.add(v)
    assert stats.percentile_ms(50) == pytest.approx(300.0)
    assert stats.percentile_ms(100) == pytest.approx(500.0)


@pytest.fixture
def engine_server():
    from engine.pipeline import Annotator
    from engine.server import EngineServer, ServerConfig

    annotator = Annotator(presets.load("lite"), store=None)
    server = EngineServer(annotator, ServerConfig(port=0))
    server.start()
    yield server
    server.stop()
    annotator.close()


def test_windows_through_a_running_engine(song, engine_server):
    backend = RemoteEngine("127.0.0.1", engine_server.address[1])
    _, results, _ = run_listener(FileSource(song, speed=8.0), backend, window_s=3.0, hop_s=3.0)
    folder = Path(backend._folder.name)
    assert folder.is_dir() and not any(folder.glob("*.wav"))  # each window's file removed
    backend.close()
    assert not folder.exists()
    assert [(r.start_s, r.end_s) for r in results] == [(0.0, 3.0), (3.0, 6.0)]
    assert all(r.error is None and r.annotation.key.key == "A minor" for r in results)


def test_cli_engine_that_does_not_answer(song, capsys):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert listen.run(parse(["--file", str(song), "--engine", str(port)])) == 2
    assert f"no engine answers at 127.0.0.1:{port}" in capsys.readouterr().err
