"""Live audio sources: a microphone through sounddevice, or a file played at a chosen pace.

A source pushes blocks ``[channels, frames]`` float32 into a callback from its own thread,
stamped with the monotonic time at which the block's last frame was captured. The
:class:`RingBuffer` keeps the most recent seconds; :class:`Windower` cuts rolling analysis
windows out of it (e.g. 10 s every 2 s). Device trouble (no input device, a device that
disappears, input overflow) is reported through the status callback as a
:class:`SourceEvent`, never raised from the audio thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.errors import AudioError, InvalidRequest

log = logging.getLogger(__name__)

BlockCallback = Callable[[np.ndarray, float], None]
"""``(block [channels, frames] float32, t_captured)``; ``t_captured`` is ``time.monotonic()``."""

EventKind = Literal["overflow", "stopped", "finished", "error"]


@dataclass(frozen=True)
class SourceEvent:
    """Something the listener should tell the user about.

    Attributes:
        kind: ``"overflow"`` (input frames were lost), ``"stopped"`` (the device went away),
            ``"finished"`` (a file source reached its end) or ``"error"``.
        message: one line for the user, naming the source.
    """

    kind: EventKind
    message: str


EventCallback = Callable[[SourceEvent], None]


def _ignore_event(event: SourceEvent) -> None:
    log.info("%s: %s", event.kind, event.message)


class AudioSource(ABC):
    """A live stream of audio blocks.

    Attributes:
        name: what to call the source in messages (device or file name).
        sr: sample rate in Hz.
        channels: channels per block.
    """

    name: str
    sr: int
    channels: int

    @abstractmethod
    def start(self, on_block: BlockCallback, on_event: EventCallback = _ignore_event) -> None:
        """Begin delivering blocks to ``on_block`` from a background thread."""

    @abstractmethod
    def stop(self) -> None:
        """Stop delivering blocks; safe to call twice."""

    @property
    @abstractmethod
    def running(self) -> bool:
        """True while blocks are being delivered."""

    def __enter__(self) -> AudioSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class FileSource(AudioSource):
    """Plays a file as if it were a microphone: blocks arrive at ``speed`` times real time.

    Args:
        path: an audio file soundfile can read.
        block_s: block length in seconds.
        speed: 1.0 for real-time pace, 4.0 for four times faster, ``math.inf`` for as fast
            as the consumer allows.
        loop: start again at the end instead of finishing.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        block_s: float = 0.05,
        speed: float = 1.0,
        loop: bool = False,
    ) -> None:
        import soundfile as sf

        if not speed > 0:
            raise InvalidRequest(f"speed={speed!r} must be > 0 (1.0 = real time)")
        if not 0.001 <= block_s <= 1.0:
            raise InvalidRequest(f"block_s={block_s!r} is outside [0.001, 1.0] seconds")
        p = Path(path)
        try:
            inf = sf.info(str(p))
        except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
            raise AudioError(f"{p}: cannot open for playback ({exc})") from exc
        if inf.frames <= 0:
            raise AudioError(f"{p}: no audio frames to play")
        self.path = str(p)
        self.name = p.name
        self.sr = int(inf.samplerate)
        self.channels = int(inf.channels)
        self.frames = int(inf.frames)
        self.block_frames = max(1, round(block_s * self.sr))
        self.speed = speed
        self.loop = loop
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, on_block: BlockCallback, on_event: EventCallback = _ignore_event) -> None:
        if self.running:
            raise InvalidRequest(f"source {self.name} is already running")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._play,
            args=(on_block, on_event),
            name=f"FileSource({self.name})",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)

    def _play(self, on_block: BlockCallback, on_event: EventCallback) -> None:
        import soundfile as sf

        try:
            with sf.SoundFile(self.path) as f:
                t0 = time.monotonic()
                played = 0
                while not self._stop.is_set():
                    data = f.read(self.block_frames, dtype="float32", always_2d=True)
                    if data.shape[0] == 0:
                        if not self.loop:
                            on_event(SourceEvent("finished", f"{self.name}: end of file"))
                            return
                        f.seek(0)
                        continue
                    played += data.shape[0]
                    due = t0 + played / self.sr / self.speed
                    delay = due - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        return
                    on_block(np.ascontiguousarray(data.T), time.monotonic())
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            on_event(SourceEvent("error", f"{self.name}: playback failed ({exc})"))


class SoundDeviceSource(AudioSource):
    """A sound card input through sounddevice (PortAudio).

    Args:
        device: an input device index, a (part of a) device name, or None for the default.
        sr: sample rate in Hz; None for the device's default rate.
        channels: channels to capture (1 or 2 usually); clipped to what the device has.
        block_s: how much audio each callback carries, in seconds.

    Raises:
        AudioError: sounddevice/PortAudio is missing, or there is no input device.
        InvalidRequest: ``device`` names no input device (the message lists them).
    """

    def __init__(
        self,
        device: int | str | None = None,
        *,
        sr: int | None = None,
        channels: int = 1,
        block_s: float = 0.05,
    ) -> None:
        sd = _sounddevice()
        index = resolve_device(device)
        info = sd.query_devices(index)
        self.device = index
        self.name = str(info["name"])
        self.sr = int(sr or round(float(info["default_samplerate"])))
        self.channels = max(1, min(channels, int(info["max_input_channels"])))
        self.block_frames = max(1, round(block_s * self.sr))
        self.overflows = 0
        self._stream: Any = None
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._stream is not None and bool(self._stream.active)

    def start(self, on_block: BlockCallback, on_event: EventCallback = _ignore_event) -> None:
        sd = _sounddevice()

        def callback(indata: np.ndarray, frames: int, t: Any, status: Any) -> None:
            if status.input_overflow:
                self.overflows += 1
                on_event(SourceEvent("overflow", f"{self.name}: input overflow, audio was lost"))
            on_block(np.ascontiguousarray(indata.T, dtype=np.float32), time.monotonic())

        def finished() -> None:
            if not self._stopping:
                on_event(SourceEvent("stopped", f"{self.name}: input device stopped or went away"))

        self._stopping = False
        try:
            self._stream = sd.InputStream(
                device=self.device,
                samplerate=self.sr,
                channels=self.channels,
                blocksize=self.block_frames,
                dtype="float32",
                callback=callback,
                finished_callback=finished,
            )
            self._stream.start()
        except sd.PortAudioError as exc:
            self._stream = None
            raise AudioError(
                f"input device {self.name!r} cannot be opened at {self.sr} Hz, "
                f"{self.channels} channel(s) ({exc})"
            ) from exc

    def stop(self) -> None:
        self._stopping = True
        stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.stop()
            stream.close()
        except Exception as exc:  # the device may already be gone; closing must not raise
            log.warning("closing %s: %s", self.name, exc)


def _sounddevice() -> Any:
    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:
        raise AudioError(
            f"microphone input needs sounddevice and the PortAudio library ({exc}); "
            "install with: pip install 'sonicverse-studio[mic]' and apt install libportaudio2"
        ) from exc
    return sd


def input_devices() -> list[dict[str, Any]]:
    """Every device with input channels: dicts with ``index``, ``name``, ``channels``, ``sr``.

    Raises:
        AudioError: sounddevice or PortAudio is missing.
    """
    sd = _sounddevice()
    return [
        {
            "index": int(d["index"]),
            "name": str(d["name"]),
            "channels": int(d["max_input_channels"]),
            "sr": float(d["default_samplerate"]),
        }
        for d in sd.query_devices()
        if int(d["max_input_channels"]) > 0
    ]


def resolve_device(device: int | str | None) -> int:
    """The index of the input device named by ``device``.

    Args:
        device: an index, a digit string, a case-insensitive part of a device name, or None
            for the system's default input.

    Raises:
        AudioError: there is no input device at all.
        InvalidRequest: ``device`` matches no input device, or several by name.
    """
    sd = _sounddevice()
    devices = input_devices()
    if not devices:
        raise AudioError("no audio input device found (is a microphone connected and allowed?)")
    listing = "; ".join(f"{d['index']}: {d['name']}" for d in devices)
    if device is None:
        default = sd.default.device[0]
        if isinstance(default, int) and any(d["index"] == default for d in devices):
            return default
        return int(devices[0]["index"])
    if isinstance(device, int) or str(device).strip().isdigit():
        index = int(device)
        if not any(d["index"] == index for d in devices):
            raise InvalidRequest(f"device={index} is not an input device; inputs are {listing}")
        return index
    matches = [d for d in devices if str(device).lower() in d["name"].lower()]
    if len(matches) != 1:
        which = "matches no" if not matches else "matches several"
        raise InvalidRequest(f"device={device!r} {which} input device; inputs are {listing}")
    return int(matches[0]["index"])


class RingBuffer:
    """The last ``capacity`` frames of a stream, addressed by absolute frame number.

    Thread-safe: one producer (the audio callback) and any number of readers.

    Args:
        channels: channels per frame.
        capacity: frames kept.
    """

    def __init__(self, channels: int, capacity: int) -> None:
        if channels < 1 or capacity < 1:
            raise InvalidRequest(
                f"ring buffer needs channels >= 1 and capacity >= 1, got "
                f"channels={channels}, capacity={capacity}"
            )
        self.channels = channels
        self.capacity = capacity
        self._data = np.zeros((channels, capacity), dtype=np.float32)
        self._written = 0
        self._lock = threading.Lock()

    @property
    def written(self) -> int:
        """Frames written since creation (the absolute index of the next frame)."""
        return self._written

    def write(self, block: np.ndarray) -> None:
        """Append ``block`` ``[channels, frames]``; older frames beyond capacity are dropped."""
        if block.ndim != 2 or block.shape[0] != self.channels:
            raise InvalidRequest(
                f"block shape {block.shape} does not match [channels={self.channels}, frames]"
            )
        n = block.shape[1]
        with self._lock:
            if n >= self.capacity:
                end = self._written + n
                self._data[:, np.arange(end - self.capacity, end) % self.capacity] = block[
                    :, -self.capacity :
                ]
            else:
                pos = self._written % self.capacity
                first = min(n, self.capacity - pos)
                self._data[:, pos : pos + first] = block[:, :first]
                self._data[:, : n - first] = block[:, first:]
            self._written += n

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames ``[start, stop)`` by absolute index, ``[channels, stop - start]``.

        Raises:
            InvalidRequest: the span is empty, not yet written, or already overwritten.
        """
        with self._lock:
            oldest = max(0, self._written - self.capacity)
            if not oldest <= start < stop <= self._written:
                raise InvalidRequest(
                    f"frames [{start}, {stop}) are not in the buffer, which holds "
                    f"[{oldest}, {self._written})"
                )
            idx = np.arange(start, stop) % self.capacity
            return self._data[:, idx].copy()


@dataclass(frozen=True)
class Window:
    """One rolling analysis window.

    Attributes:
        samples: ``[channels, frames]`` float32.
        sr: sample rate in Hz.
        start_s: window start in seconds since the stream began.
        end_s: window end in seconds since the stream began.
        t_end: ``time.monotonic()`` when the window's last frame was captured; latency is
            measured from here.
        index: 0 for the first window, then 1, 2, ...
    """

    samples: np.ndarray
    sr: int
    start_s: float
    end_s: float
    t_end: float
    index: int


class Windower:
    """Cuts ``window_s`` windows every ``hop_s`` out of a stream fed block by block.

    ``feed`` returns the windows completed by the block (usually zero or one). The first window
    ends ``window_s`` after the stream began; each next one ``hop_s`` later.

    Args:
        sr: sample rate in Hz.
        channels: channels per block.
        window_s: window length in seconds.
        hop_s: distance between window ends in seconds (<= ``window_s``).
    """

    def __init__(self, *, sr: int, channels: int, window_s: float = 10.0, hop_s: float = 2.0):
        if not 0.25 <= window_s <= 600.0:
            raise InvalidRequest(f"window_s={window_s!r} is outside [0.25, 600] seconds")
        if not 0.05 <= hop_s <= window_s:
            raise InvalidRequest(f"hop_s={hop_s!r} must be in [0.05, window_s={window_s}] seconds")
        self.sr = sr
        self.window = round(window_s * sr)
        self.hop = round(hop_s * sr)
        self.ring = RingBuffer(channels, self.window + self.hop + sr)
        self._next_end = self.window
        self._index = 0

    def feed(self, block: np.ndarray, t_captured: float) -> list[Window]:
        """Add a block ``[channels, frames]`` captured at ``t_captured``; return new windows."""
        self.ring.write(block)
        out = []
        written = self.ring.written
        while self._next_end <= written:
            end = self._next_end
            # The window's last frame arrived (written - end) frames before the block's end.
            t_end = t_captured - (written - end) / self.sr
            if written - end < self.ring.capacity - self.window:
                out.append(
                    Window(
                        samples=self.ring.read(end - self.window, end),
                        sr=self.sr,
                        start_s=(end - self.window) / self.sr,
                        end_s=end / self.sr,
                        t_end=t_end,
                        index=self._index,
                    )
                )
            self._index += 1
            self._next_end += self.hop
        return out
