"""Panel tests run offscreen against a real engine (lite backend) on loopback."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
import soundfile as sf

SR = 22050
# Cadences that name their key unambiguously (the leading tone rules out the relative key):
# MIDI notes of i-iv-V-i in A minor and I-IV-V-I in D major.
A_MINOR = ((57, 60, 64), (50, 53, 57), (52, 56, 59), (57, 60, 64))
D_MAJOR = ((50, 54, 57), (55, 59, 62), (57, 61, 64), (50, 54, 57))


def cadences(spec: list[tuple[float, tuple[tuple[int, ...], ...]]], *, bpm: float = 120.0):
    """Each ``(seconds, chords)`` plays its chords in turn, one beat each, with their bass an
    octave below, and a click on every beat. Returns ``[frames]`` float32."""
    beat = 60.0 / bpm
    parts = []
    for seconds, chords in spec:
        n = int(seconds * SR)
        t = np.arange(n) / SR
        x = np.zeros(n)
        for i in range(int(np.ceil(seconds / beat))):
            a, b = int(i * beat * SR), min(n, int((i + 1) * beat * SR))
            for note in chords[i % len(chords)]:
                for midi in (note, note - 12):
                    x[a:b] += 0.08 * np.sin(2 * np.pi * 440.0 * 2 ** ((midi - 69) / 12) * t[a:b])
        parts.append(x)
    y = np.concatenate(parts)
    y[:: int(SR * beat)] += 0.8
    return y.astype(np.float32)


@pytest.fixture(scope="session")
def song(tmp_path_factory) -> str:
    """25 s: 12 s of A minor, then 13 s of D major, at 120 BPM (three default regions)."""
    path = tmp_path_factory.mktemp("audio") / "two_keys.wav"
    sf.write(path, cadences([(12.0, A_MINOR), (13.0, D_MAJOR)]), SR)
    return str(path)


@pytest.fixture(scope="session")
def engine_port():
    """A real engine (preset lite, no store) serving on an ephemeral loopback port."""
    from engine import presets
    from engine.pipeline import Annotator
    from engine.server import EngineServer, ServerConfig

    annotator = Annotator(presets.load("lite"), store=None)
    server = EngineServer(annotator, ServerConfig(port=0))
    server.start()
    yield server.address[1]
    server.stop()
    annotator.close()


def free_udp_port() -> int:
    """A loopback UDP port nobody listens on (bound then released)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def window(qtbot, engine_port):
    """The panel, connected to the loopback engine."""
    from ui.app import MainWindow

    w = MainWindow(port=engine_port, heartbeat_ms=500)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    yield w
    w.close()


def settled(w) -> bool:
    """True once every region of the panel has its annotation or its error."""
    return bool(w.model.rows) and all(r.state in ("done", "error") for r in w.model.rows)


def open_and_annotate(qtbot, w, path: str) -> None:
    """Open ``path`` in the panel and wait until every region is annotated or failed."""
    w.open_audio(path)
    qtbot.waitUntil(lambda: settled(w), timeout=60_000)
