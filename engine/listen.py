"""``sonicverse listen``: caption what a microphone (or a file played live) hears.

The command around :mod:`engine.live`: it opens the source, loads the preset's backend (or
connects to a running engine, :class:`~engine.remote.RemoteEngine`), and shows each window's
annotation in the terminal (rich Live) or writes it as JSON lines. The latency from the end of
a window to its annotation on screen is measured and shown.
"""

from __future__ import annotations

import argparse
import logging
import queue
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from daw_bridge import live as live_format
from daw_bridge.clock import clock
from daw_bridge.keys import vocals_word
from daw_bridge.live import LiveEvent
from engine.errors import EngineError
from engine.live import LatencyStats, Listener, LiveResult, warm_up
from engine.remote import RemoteEngine
from engine.sources import AudioSource, SourceEvent

if TYPE_CHECKING:
    from engine.backends.base import Backend

log = logging.getLogger(__name__)


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
            backend = RemoteEngine(args.engine_host, args.engine)
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
                sys.stdout.write(live_format.encode(r.to_line()) + "\n")
            sys.stdout.flush()
            return time.monotonic()

        def event(e: SourceEvent) -> None:
            sys.stdout.write(live_format.encode(LiveEvent(e.kind, e.message)) + "\n")
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
    vocals = vocals_word(a.vocals.label, a.vocals.probabilities) if a.vocals else "—"
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
