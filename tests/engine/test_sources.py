"""Live sources: ring buffer, windows, the file-backed source, devices (no sound card needed)."""

from __future__ import annotations

import math
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from engine import sources
from engine.errors import AudioError, InvalidRequest
from engine.sources import FileSource, RingBuffer, SourceEvent, Windower


def ramp(frames: int, channels: int = 1) -> np.ndarray:
    """``[channels, frames]`` whose value at frame i is i (exact in float32 below 2**24)."""
    return np.tile(np.arange(frames, dtype=np.float32), (channels, 1))


def test_ring_buffer_wraps_and_reads_by_absolute_frame():
    rb = RingBuffer(2, 10)
    data = ramp(23, channels=2)
    for i in range(0, 23, 4):
        rb.write(data[:, i : i + 4])
    assert rb.written == 23
    np.testing.assert_array_equal(rb.read(13, 23), data[:, 13:23])
    with pytest.raises(InvalidRequest, match=r"holds \[13, 23\)"):
        rb.read(12, 20)
    with pytest.raises(InvalidRequest):
        rb.read(20, 24)


def test_ring_buffer_block_larger_than_capacity_keeps_the_tail():
    rb = RingBuffer(1, 5)
    rb.write(ramp(12))
    np.testing.assert_array_equal(rb.read(7, 12), ramp(12)[:, 7:])


def test_ring_buffer_refuses_wrong_channel_count():
    with pytest.raises(InvalidRequest, match="channels=2"):
        RingBuffer(2, 8).write(ramp(4, channels=1))


def test_windower_cuts_windows_every_hop():
    sr = 100
    w = Windower(sr=sr, channels=1, window_s=1.0, hop_s=0.25)
    data = ramp(300)
    windows = []
    for i in range(0, 300, 10):
        windows += w.feed(data[:, i : i + 10], t_captured=float(i + 10) / sr)
    # Window ends at 1.0, 1.25, ..., 3.0 s: 9 windows.
    assert [x.end_s for x in windows] == pytest.approx([1.0 + 0.25 * k for k in range(9)])
    assert [x.index for x in windows] == list(range(9))
    for x in windows:
        end = round(x.end_s * sr)
        np.testing.assert_array_equal(x.samples, data[:, end - 100 : end])
        assert x.t_end == pytest.approx(x.end_s)


def test_windower_large_block_still_yields_in_order():
    w = Windower(sr=100, channels=1, window_s=1.0, hop_s=0.5)
    windows = w.feed(ramp(200), t_captured=10.0)
    assert [x.end_s for x in windows] == [1.0, 1.5, 2.0]
    assert windows[0].t_end == pytest.approx(9.0)


@pytest.mark.parametrize(("window_s", "hop_s"), [(0.1, 0.05), (10.0, 11.0), (10.0, 0.0)])
def test_windower_refuses_bad_settings(window_s, hop_s):
    with pytest.raises(InvalidRequest):
        Windower(sr=100, channels=1, window_s=window_s, hop_s=hop_s)


@pytest.fixture
def stereo_file(tmp_path):
    sr = 8000
    t = np.arange(int(0.5 * sr)) / sr
    x = np.stack([np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 660 * t)])
    x = x.astype(np.float32)
    path = tmp_path / "tone.wav"
    sf.write(path, x.T, sr, subtype="FLOAT")
    return path, x, sr


def collect(source, timeout=5.0):
    blocks, events = [], []
    done = threading.Event()

    def on_event(e: SourceEvent):
        events.append(e)
        done.set()

    source.start(lambda b, t: blocks.append((b, t)), on_event)
    assert done.wait(timeout)
    source.stop()
    return blocks, events


def test_file_source_delivers_the_whole_file_then_finishes(stereo_file):
    path, x, sr = stereo_file
    src = FileSource(path, speed=math.inf, block_s=0.01)
    assert (src.sr, src.channels) == (sr, 2)
    blocks, events = collect(src)
    np.testing.assert_allclose(np.concatenate([b for b, _ in blocks], axis=1), x, atol=1e-7)
    assert all(b.shape == (2, 80) for b, _ in blocks)
    assert [e.kind for e in events] == ["finished"]
    assert not src.running


def test_file_source_keeps_real_time_pace(stereo_file):
    path, _, _ = stereo_file
    t0 = time.monotonic()
    blocks, _ = collect(FileSource(path, speed=2.0, block_s=0.05))
    elapsed = time.monotonic() - t0
    assert 0.22 <= elapsed < 1.0  # 0.5 s of audio at twice real time
    stamps = [t for _, t in blocks]
    assert stamps == sorted(stamps)
    assert stamps[-1] - stamps[0] >= 0.2


def test_file_source_stop_interrupts_playback(stereo_file):
    path, _, _ = stereo_file
    src = FileSource(path, speed=0.1, loop=True)
    src.start(lambda b, t: None)
    assert src.running
    t0 = time.monotonic()
    src.stop()
    assert not src.running and time.monotonic() - t0 < 0.5


def test_file_source_refuses_missing_file_and_bad_speed(tmp_path, stereo_file):
    with pytest.raises(AudioError, match=r"nope\.wav"):
        FileSource(tmp_path / "nope.wav")
    with pytest.raises(InvalidRequest, match="speed"):
        FileSource(stereo_file[0], speed=0.0)


class FakeSoundDevice:
    """Enough of the sounddevice module to drive SoundDeviceSource without hardware."""

    PortAudioError = RuntimeError

    def __init__(self, devices):
        self.devices = devices
        self.default = SimpleNamespace(device=[-1, -1])
        self.streams = []

    def query_devices(self, index=None):
        if index is None:
            return self.devices
        return next(d for d in self.devices if d["index"] == index)

    def InputStream(self, **kwargs):
        stream = SimpleNamespace(active=False, kwargs=kwargs)
        stream.start = lambda: setattr(stream, "active", True)
        stream.stop = lambda: setattr(stream, "active", False)
        stream.close = lambda: None
        self.streams.append(stream)
        return stream


def device(index, name, inputs):
    return {
        "index": index,
        "name": name,
        "max_input_channels": inputs,
        "default_samplerate": 48000.0,
    }


@pytest.fixture
def fake_sd(monkeypatch):
    fake = FakeSoundDevice(
        [
            device(0, "HDA Intel PCH: ALC257 Analog", 2),
            device(1, "HDMI output", 0),
            device(2, "USB Audio CODEC", 1),
        ]
    )
    monkeypatch.setattr(sources, "_sounddevice", lambda: fake)
    return fake


def test_no_input_device_is_a_clear_error(monkeypatch):
    fake = FakeSoundDevice([device(0, "HDMI output", 0)])
    monkeypatch.setattr(sources, "_sounddevice", lambda: fake)
    with pytest.raises(AudioError, match="no audio input device"):
        sources.SoundDeviceSource()


def test_devices_resolve_by_index_or_name(fake_sd):
    assert sources.resolve_device(None) == 0
    assert sources.resolve_device("usb") == 2
    assert sources.resolve_device("2") == 2
    with pytest.raises(InvalidRequest, match=r"matches no input device.*0: HDA Intel"):
        sources.resolve_device("focusrite")
    with pytest.raises(InvalidRequest, match="device=1 is not an input device"):
        sources.resolve_device(1)


def test_overflow_and_vanishing_device_become_events(fake_sd):
    src = sources.SoundDeviceSource("USB", channels=2, block_s=0.01)
    assert (src.name, src.sr, src.channels, src.block_frames) == ("USB Audio CODEC", 48000, 1, 480)
    blocks, events = [], []
    src.start(lambda b, t: blocks.append(b), events.append)
    stream = fake_sd.streams[-1]
    callback = stream.kwargs["callback"]
    callback(np.ones((480, 1), np.float32), 480, None, SimpleNamespace(input_overflow=False))
    callback(np.ones((480, 1), np.float32), 480, None, SimpleNamespace(input_overflow=True))
    assert [b.shape for b in blocks] == [(1, 480), (1, 480)]
    assert [e.kind for e in events] == ["overflow"] and src.overflows == 1
    stream.kwargs["finished_callback"]()  # PortAudio ends the stream: the device went away
    assert events[-1].kind == "stopped" and "USB Audio CODEC" in events[-1].message
    src.stop()
    stream.kwargs["finished_callback"]()  # a stop we asked for is not reported
    assert len(events) == 2


def test_device_that_cannot_open_is_an_audio_error(fake_sd, monkeypatch):
    def refuse(**kwargs):
        raise RuntimeError("Invalid sample rate")

    monkeypatch.setattr(fake_sd, "InputStream", refuse)
    src = sources.SoundDeviceSource(0)
    with pytest.raises(AudioError, match="cannot be opened at 48000 Hz"):
        src.start(lambda b, t: None)
    assert not src.running
