"""``sonicverse listen``: caption what a microphone (or a file played live) hears.

A source pushes blocks into a :class:`~engine.sources.Windower`; every ``hop_s`` a window of
the last ``window_s`` seconds goes through the preset's backend on one worker thread, and the
annotation is shown in the terminal (rich Live) or written as JSON lines. When the backend is
slower than the hop, stale windows are skipped so the display never falls behind. The latency
from the end of a window to its annotation on screen is measured and shown.
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from daw_bridge.clock import clock
from engine.backends.base import no_progress
from engine.errors import EngineError
from engine.sources import AudioSource, SourceEvent, Window, Windower

if TYPE_CHECKING:
    from engine.backends.base import Backend, Progress, Segment
    from engine.types import RegionAnnotation, TrackNarrative

log = logging.getLogger(__name__)


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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; the annotation in its :meth:`RegionAnnotation.to_dict` form."""
        return {
            "index": self.index,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "t_end": self.t_end,
            "analysis_ms": 1000.0 * (self.t_done - self.t_end),
            "annotation": None if self.annotation is None else self.annotation.to_dict(),
            "error": self.error,
        }


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
    """Run one window through ``backend``; errors become a result with ``error`` set."""
    from engine.audio import Audio
    from engine.backends.base import Segment
    from engine.types import Region

    region = Region(start_s=window.start_s, end_s=window.end_s, name=f"live {window.index}")
    audio = Audio(samples=window.samples, sr=window.sr, path=source, start_s=window.start_s)
    try:
        (annotation,) = backend.analyze([Segment(region=region, audio=audio)])
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


class EngineBackend:
    """Sends each window to a running engine instead of loading models here.

    Audio travels by reference: each window is written to a temporary WAV file whose path is
    sent with ``/sonicverse/region/annotate``; the file is deleted once the reply is in. The
    engine's one worker keeps owning the models (a GPU holds them once, not twice).

    Args:
        host: the engine's host.
        port: the engine's UDP port.
        timeout_s: time one window may take.

    Raises:
        EngineError: no engine answers at ``host:port``.
    """

    name = "engine"
    max_batch = 1

    def __init__(self, host: str, port: int, *, timeout_s: float = 30.0) -> None:
        import tempfile

        from daw_bridge.client import BridgeError, EngineClient

        self.client = EngineClient(host, port, timeout_s=timeout_s)
        try:
            info = self.client.ping()
        except BridgeError as exc:
            self.client.close()
            raise EngineError(f"no engine answers at {host}:{port} ({exc})") from exc
        self.fingerprint = f"engine:{host}:{port}:{info.get('preset')}"
        self._folder = tempfile.TemporaryDirectory(prefix="sonicverse-listen-")
        self._count = 0

    def analyze(
        self, segments: Sequence[Segment], *, progress: Progress = no_progress
    ) -> list[RegionAnnotation]:
        """Annotate each window through the engine, in order."""
        import dataclasses

        from daw_bridge.client import BridgeError
        from engine.audio import write
        from engine.types import RegionAnnotation

        out: list[RegionAnnotation] = []
        for i, seg in enumerate(segments):
            self._count += 1
            path = Path(self._folder.name) / f"window-{self._count:06d}.wav"
            write(path, seg.audio.samples, sr=seg.audio.sr, subtype="FLOAT")
            try:
                reply = self.client.annotate_region(
                    str(path), 0.0, seg.audio.duration_s, name=seg.region.name
                )
            except BridgeError as exc:
                where = f"{self.client.host}:{self.client.port}"
                raise EngineError(f"engine at {where}: {exc}") from exc
            finally:
                path.unlink(missing_ok=True)
            ann = RegionAnnotation.from_dict(reply)
            out.append(
                dataclasses.replace(
                    ann, start_s=seg.region.start_s, end_s=seg.region.end_s, name=seg.region.name
                )
            )
            progress("analyze", i + 1, len(segments))
        return out

    def narrate(self, *args: Any, **kwargs: Any) -> TrackNarrative:
        """Live windows are not narrated."""
        raise EngineError("live listening does not narrate")

    def close(self) -> None:
        """Close the connection and remove the temporary folder."""
        self.client.close()
        self._folder.cleanup()


def warm_up(backend: Backend, *, sr: int, channels: int) -> None:
    """Run one short window of quiet noise through ``backend`` so the first real window is not
    slowed by lazy initialisation (JIT, caches)."""
    rng = np.random.default_rng(0)
    noise = (0.01 * rng.standard_normal((channels, sr))).astype(np.float32)
    analyze_window(backend, Window(noise, sr, 0.0, 1.0, time.monotonic(), -1), source="warm-up")


def open_source(args: argparse.Namespace) -> AudioSource:
    """The source the arguments ask for: ``--file`` or a sound card input."""
    from engine.sources import FileSource, SoundDeviceSource

    if args.file:
        return FileSource(args.file, speed=args.speed, loop=args.loop)
    device: int | str | None = args.device
    if isinstance(device, str) and device.strip().isdigit():
        device = int(device)
    return SoundDeviceSource(device, sr=args.sr, channels=args.channels)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``sonicverse listen``."""
    parser.add_argument(
        "--device",
        "-d",
        default=None,
        help="input device index or (part of its) name; default: system input",
    )
    parser.add_argument("--list-devices", action="store_true", help="list input devices and exit")
    parser.add_argument(
        "--file", default=None, help="play this audio file as if it were the microphone"
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="with --file: playback pace, 1.0 = real time (default)",
    )
    parser.add_argument("--loop", action="store_true", help="with --file: loop the file")
    parser.add_argument("--preset", default="lite", help="preset name or .toml (default: lite)")
    parser.add_argument(
        "--engine",
        type=int,
        default=None,
        metavar="PORT",
        help="send windows to the engine running on this UDP port instead of "
        "loading the preset here",
    )
    parser.add_argument(
        "--engine-host", default="127.0.0.1", help="host of the --engine (default 127.0.0.1)"
    )
    parser.add_argument(
        "--window", type=float, default=10.0, help="analysis window in seconds (default 10)"
    )
    parser.add_argument(
        "--hop", type=float, default=2.0, help="seconds between analyses (default 2)"
    )
    parser.add_argument("--sr", type=int, default=None, help="capture rate in Hz (device default)")
    parser.add_argument("--channels", type=int, default=1, help="channels to capture (default 1)")
    parser.add_argument(
        "--duration",
        type=float,
        default=0.0,
        help="stop after this many seconds (default: until Ctrl-C or file end)",
    )
    parser.add_argument(
        "--jsonl",
        action="store_true",
        help="write one JSON line per window instead of the live display",
    )


def run(args: argparse.Namespace) -> int:
    """Entry point of ``sonicverse listen``; returns the exit status."""
    from rich.console import Console

    console = Console(stderr=True)
    try:
        if args.list_devices:
            return _list_devices(console)
        from engine import backends, presets

        source = open_source(args)
        backend: Backend
        if args.engine is not None:
            backend = EngineBackend(args.engine_host, args.engine)
        else:
            preset = presets.load(args.preset)
            with console.status(f"loading preset {preset.name} ({preset.backend})"):
                backend = backends.create(preset)
                warm_up(backend, sr=source.sr, channels=source.channels)
    except EngineError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    try:
        session = _Session(source, backend, args)
        return session.run_jsonl() if args.jsonl else session.run_live(console)
    except EngineError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    finally:
        backend.close()


def _list_devices(console: Any) -> int:
    from engine.sources import input_devices

    devices = input_devices()
    if not devices:
        console.print("no audio input device found")
        return 1
    for d in devices:
        console.print(f"{d['index']:3d}  {d['name']}  ({d['channels']} ch, {d['sr']:.0f} Hz)")
    return 0


class _Session:
    """One run of ``sonicverse listen``: results and events flow to the main thread."""

    def __init__(self, source: AudioSource, backend: Backend, args: argparse.Namespace) -> None:
        self.source = source
        self.args = args
        self.inbox: queue.Queue[LiveResult | SourceEvent] = queue.Queue()
        self.listener = Listener(
            source,
            backend,
            on_result=self.inbox.put,
            on_event=self.inbox.put,
            window_s=args.window,
            hop_s=args.hop,
        )
        self.latency = LatencyStats()
        self.rows: list[tuple[LiveResult, float]] = []
        self.messages: list[str] = []
        self.done = False
        self.on_event: Callable[[SourceEvent], None] = lambda event: None

    def _events(self) -> list[LiveResult | SourceEvent]:
        """Wait up to 0.1 s for news, then drain the inbox."""
        items: list[LiveResult | SourceEvent] = []
        try:
            items.append(self.inbox.get(timeout=0.1))
            while True:
                items.append(self.inbox.get_nowait())
        except queue.Empty:
            pass
        return items

    def _loop(self, show: Callable[[list[LiveResult]], float]) -> int:
        deadline = time.monotonic() + self.args.duration if self.args.duration > 0 else None
        self.listener.start()
        status = 0
        try:
            while not self.done:
                results = []
                for item in self._events():
                    if isinstance(item, SourceEvent):
                        self.messages = [*self.messages[-3:], f"{item.kind}: {item.message}"]
                        self.on_event(item)
                        if item.kind in ("stopped", "finished", "error"):
                            self.done = True
                            status = 0 if item.kind == "finished" else 1
                    else:
                        results.append(item)
                t_shown = show(results)
                for r in results:
                    self.latency.add(t_shown - r.t_end)
                    self.rows = [*self.rows[-7:], (r, t_shown - r.t_end)]
                if deadline is not None and time.monotonic() >= deadline:
                    self.done = True
        except KeyboardInterrupt:
            pass
        finally:
            self.listener.stop()
        for r in self._drain_results():
            self.latency.add(show([r]) - r.t_end)
        return status

    def _drain_results(self) -> list[LiveResult]:
        out: list[LiveResult] = []
        while True:
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return out
            if isinstance(item, LiveResult):
                out.append(item)

    def run_jsonl(self) -> int:
        def show(results: list[LiveResult]) -> float:
            for r in results:
                sys.stdout.write(json.dumps(r.to_dict()) + "\n")
            sys.stdout.flush()
            return time.monotonic()

        def event(e: SourceEvent) -> None:
            sys.stdout.write(json.dumps({"event": e.kind, "message": e.message}) + "\n")
            sys.stdout.flush()

        self.on_event = event
        return self._loop(show)

    def run_live(self, console: Any) -> int:
        from rich.live import Live

        with Live(self._render(), console=console, auto_refresh=False, transient=False) as live:

            def show(results: list[LiveResult]) -> float:
                live.update(self._render(pending=results), refresh=True)
                return time.monotonic()

            status = self._loop(show)
            live.update(self._render(), refresh=True)
        return status

    def _render(self, pending: Sequence[LiveResult] = ()) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        rows = [*self.rows, *((r, float("nan")) for r in pending)][-8:]
        table = Table(expand=True, title=f"listening to {self.source.name}", title_justify="left")
        for col, kw in (
            ("window", {"no_wrap": True}),
            ("key", {"no_wrap": True}),
            ("vocals", {"no_wrap": True}),
            ("tempo", {"no_wrap": True}),
            ("LUFS", {"no_wrap": True}),
            ("caption", {"ratio": 1}),
            ("latency", {"no_wrap": True, "justify": "right"}),
        ):
            table.add_column(col, **kw)
        for r, lat in rows:
            table.add_row(*describe(r), "…" if lat != lat else f"{1000 * lat:.0f} ms")
        n = len(self.latency.values)
        footer = Text(
            f"windows {n}  skipped {self.listener.skipped}  "
            f"latency p50 {self.latency.percentile_ms(50):.0f} ms  "
            f"p95 {self.latency.percentile_ms(95):.0f} ms"
            if n
            else f"waiting for the first {self.args.window:g} s window…",
            style="dim",
        )
        messages = [Text(m, style="yellow") for m in self.messages]
        return Group(table, footer, *messages)


def describe(result: LiveResult) -> tuple[str, str, str, str, str, str]:
    """Short strings for one result: window, key, vocals, tempo, loudness, caption."""
    span = f"{clock(result.start_s)}–{clock(result.end_s)}"
    a = result.annotation
    if a is None:
        return span, "", "", "", "", f"error: {result.error}"
    if a.silent:
        return span, "—", "—", "—", _num(a.loudness_lufs, "{:.1f}"), a.caption or "silence"
    key = f"{a.key.key} {a.key.confidence:.2f}" if a.key else "—"
    vocals = a.vocals.label if a.vocals else "—"
    tempo, lufs = _num(a.tempo_bpm, "{:.0f}"), _num(a.loudness_lufs, "{:.1f}")
    return span, key, vocals, tempo, lufs, a.caption


def _num(x: float | None, fmt: str) -> str:
    return "—" if x is None else fmt.format(x)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine.listen``: the same as ``sonicverse listen``."""
    parser = argparse.ArgumentParser(prog="python -m engine.listen", description=__doc__)
    add_arguments(parser)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
