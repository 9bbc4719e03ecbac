"""Live captioning as a library: rolling windows of a source through a backend.

A source pushes blocks into a :class:`~engine.sources.Windower`; every ``hop_s`` a window of
the last ``window_s`` seconds goes through the backend on one worker thread and comes back as
a :class:`LiveResult`. When the backend is slower than the hop, stale windows are skipped so
the listener never falls behind. ``sonicverse listen`` (:mod:`engine.listen`) shows them.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from daw_bridge.live import WindowResult
from engine.errors import EngineError
from engine.sources import AudioSource, SourceEvent, Window, Windower

if TYPE_CHECKING:
    from engine.backends.base import Backend
    from engine.types import RegionAnnotation


@dataclass(frozen=True)
class LiveResult:
    """The outcome of one window.

    Attributes:
        index: the window's number (gaps mean skipped windows).
        start_s: window start in seconds since listening began.
        end_s: window end in seconds since listening began.
        t_end: ``time.monotonic()`` when the window's last frame was captured (the system-wide
            monotonic clock: a panel reading the JSON lines measures latency against it).
        t_done: ``time.monotonic()`` when the annotation was ready.
        annotation: the backend's annotation, None when analysis failed.
        error: what went wrong, None on success.
    """

    index: int
    start_s: float
    end_s: float
    t_end: float
    t_done: float
    annotation: RegionAnnotation | None
    error: str | None = None

    def to_line(self) -> WindowResult:
        """The declared live-capture line (:mod:`daw_bridge.live`) of this result."""
        return WindowResult(
            index=self.index,
            start_s=self.start_s,
            end_s=self.end_s,
            t_end=self.t_end,
            analysis_ms=1000.0 * (self.t_done - self.t_end),
            annotation=None if self.annotation is None else self.annotation.to_dict(),
            error=self.error,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the line's object); the annotation as ``RegionAnnotation.to_dict``."""
        return self.to_line().to_dict()


class LatencyStats:
    """Latencies in seconds with their percentiles."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def add(self, seconds: float) -> None:
        """Record one latency."""
        self.values.append(seconds)

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile (0-100) in milliseconds, NaN when empty."""
        if not self.values:
            return float("nan")
        return float(np.percentile(np.asarray(self.values), q)) * 1000.0


class Listener:
    """Joins a source, a windower and a backend.

    Results and source events are delivered to the callbacks from the worker / audio threads.

    Args:
        source: where audio comes from.
        backend: the analysis backend (``backend.analyze`` is called on the worker thread).
        on_result: receives each :class:`LiveResult`.
        on_event: receives :class:`~engine.sources.SourceEvent` (overflow, device stopped, ...).
        window_s: analysis window length in seconds.
        hop_s: seconds between window ends.
    """

    def __init__(
        self,
        source: AudioSource,
        backend: Backend,
        *,
        on_result: Callable[[LiveResult], None],
        on_event: Callable[[SourceEvent], None],
        window_s: float = 10.0,
        hop_s: float = 2.0,
    ) -> None:
        self.source = source
        self.backend = backend
        self.on_result = on_result
        self.on_event = on_event
        self.windower = Windower(
            sr=source.sr, channels=source.channels, window_s=window_s, hop_s=hop_s
        )
        self.skipped = 0
        self._pending: queue.Queue[Window] = queue.Queue(maxsize=1)
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None

    def start(self) -> None:
        """Start the worker, then the source."""
        self._stopping.clear()
        self._worker = threading.Thread(target=self._work, name="listen-worker", daemon=True)
        self._worker.start()
        self.source.start(self._on_block, self.on_event)

    def stop(self) -> None:
        """Stop the source; the worker finishes the windows already cut, then exits."""
        self.source.stop()
        self._stopping.set()
        if self._worker is not None:
            self._worker.join(timeout=30.0)

    def _on_block(self, block: np.ndarray, t_captured: float) -> None:
        for window in self.windower.feed(block, t_captured):
            self._offer(window)

    def _offer(self, window: Window) -> None:
        """Replace a window still waiting by the newer one: the display never lags."""
        while True:
            try:
                self._pending.put_nowait(window)
                return
            except queue.Full:
                try:
                    self._pending.get_nowait()
                    self.skipped += 1
                except queue.Empty:
                    pass

    def _work(self) -> None:
        while True:
            try:
                window = self._pending.get(timeout=0.05)
            except queue.Empty:
                if self._stopping.is_set():
                    return
                continue
            self.on_result(analyze_window(self.backend, window, source=self.source.name))


def analyze_window(backend: Backend, window: Window, *, source: str) -> LiveResult:
    """Run one window through ``backend`` and the pipeline's track view (as a one-region file
    gets it); errors become a result with ``error`` set."""
    from engine.audio import Audio
    from engine.backends.base import Segment
    from engine.pipeline import resolve_track
    from engine.types import Region

    region = Region(start_s=window.start_s, end_s=window.end_s, name=f"live {window.index}")
    audio = Audio(samples=window.samples, sr=window.sr, path=source, start_s=window.start_s)
    try:
        (annotation,) = backend.analyze([Segment(region=region, audio=audio)])
        if backend.preset is not None:  # the track view a file's region gets (no clear key)
            (annotation,) = resolve_track([annotation], preset=backend.preset)
        error = None
    except EngineError as exc:
        annotation, error = None, str(exc)
    return LiveResult(
        index=window.index,
        start_s=window.start_s,
        end_s=window.end_s,
        t_end=window.t_end,
        t_done=time.monotonic(),
        annotation=annotation,
        error=error,
    )


def warm_up(backend: Backend, *, sr: int, channels: int) -> None:
    """Run one short window of quiet noise through ``backend`` so the first real window is not
    slowed by lazy initialisation (JIT, caches)."""
    rng = np.random.default_rng(0)
    noise = (0.01 * rng.standard_normal((channels, sr))).astype(np.float32)
    analyze_window(backend, Window(noise, sr, 0.0, 1.0, time.monotonic(), -1), source="warm-up")
