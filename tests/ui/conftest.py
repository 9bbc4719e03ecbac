"""Panel tests run offscreen against a real engine (lite backend) on loopback."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
import soundfile as sf

SR = 22050
A_MINOR = (220.0, 261.63, 329.63)
D_MAJOR = (293.66, 369.99, 440.0)


def chords(spec: list[tuple[float, tuple[float, ...]]], *, bpm: float = 120.0) -> np.ndarray:
    """Triads of the given durations with a click every beat, ``[frames]`` float32."""
    parts = []
    for seconds, freqs in spec:
        t = np.arange(int(seconds * SR)) / SR
        parts.append(0.2 * sum(np.sin(2 * np.pi * f * t) for f in freqs))
    x = np.concatenate(parts)
    x[:: int(SR * 60 / bpm)] += 0.8
    return x.astype(np.float32)


@pytest.fixture(scope="session")
def song(tmp_path_factory) -> str:
    """24 s: 12 s of A minor, then 12 s of D major, at 120 BPM."""
    path = tmp_path_factory.mktemp("audio") / "two_keys.wav"
    sf.write(path, chords([(12.0, A_MINOR), (12.0, D_MAJOR)]), SR)
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
    qtbot.waitUntil(lambda: settled(w), timeout=20_000)
