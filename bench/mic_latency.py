"""Live captioning latency: from the end of a window to its annotation on screen.

A synthesized track (chords changing key, a click at 120 BPM) plays through the file-backed
source at real-time pace, exactly as a microphone would deliver it; ``engine.listen`` cuts
rolling windows and runs them through the preset's backend; the main thread renders each
result into a rich table, as ``sonicverse listen`` does. Prints the latency percentiles::

    python bench/mic_latency.py                 # lite, 10 s windows every 2 s, 40 s of audio
    python bench/mic_latency.py --file song.wav --preset lite --window 10 --hop 2
    python bench/mic_latency.py --via-engine    # windows go through an OSC engine (panel mode)
    python bench/mic_latency.py --runtime torch --contended   # the old tagger path, busy core

``--runtime`` picks where the lite tagger runs (``auto``: ONNX Runtime when installed; ``torch``:
the pre-issue-17 path; with ``OMP_WAIT_POLICY=ACTIVE`` in the environment it also spins as it
did, and ``--max-patches 0`` tags every 3 s patch as it did); ``--contended`` keeps one core
busy with a loop for the whole run (a DAW's audio thread) and stops it after. The load average
is printed beside the figures.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import queue
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from common import busy_loop

if TYPE_CHECKING:
    from engine.presets import Preset


def synth_track(path: Path, *, seconds: float, sr: int = 44100) -> None:
    """Chords changing every 8 s (A minor, D major, E minor, C major) with a 120 BPM click."""
    import soundfile as sf

    chords = [
        (220.0, 261.63, 329.63),
        (293.66, 369.99, 440.0),
        (164.81, 196.0, 246.94),
        (261.63, 329.63, 392.0),
    ]
    t = np.arange(int(seconds * sr)) / sr
    which = (t // 8.0).astype(int) % len(chords)
    x = np.zeros_like(t)
    for i, freqs in enumerate(chords):
        mask = which == i
        x[mask] = 0.15 * sum(np.sin(2 * np.pi * f * t[mask]) for f in freqs)
    x[:: sr // 2] += 0.7
    sf.write(path, np.stack([x, x], axis=1).astype(np.float32), sr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", help="play this file instead of the synthesized track")
    parser.add_argument("--seconds", type=float, default=40.0, help="synthesized track length")
    parser.add_argument("--preset", default="lite")
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--hop", type=float, default=2.0)
    parser.add_argument(
        "--via-engine",
        action="store_true",
        help="send windows to an engine on loopback (temp WAV + OSC)",
    )
    parser.add_argument("--runtime", choices=("auto", "onnx", "torch"), default="auto")
    parser.add_argument(
        "--max-patches",
        type=int,
        default=None,
        help="3 s patches tagged per window (0: every one; default: the preset's)",
    )
    parser.add_argument("--contended", action="store_true", help="a busy loop holds one core")
    args = parser.parse_args()
    import multiprocessing

    from engine.tagging import prefer_passive_threads

    prefer_passive_threads()
    stop = multiprocessing.Event()
    hog = multiprocessing.Process(target=busy_loop, args=(stop,), daemon=True)
    if args.contended:
        hog.start()
    try:
        measure(args)
    finally:
        stop.set()
        if args.contended:
            hog.join(5)


def load_preset(name: str, runtime: str, max_patches: int | None = None) -> Preset:
    """The preset, with the lite tagger's runtime (and ``max_patches`` unless None) set."""
    from dataclasses import replace

    from engine import presets

    preset = presets.load(name)
    if preset.backend != "lite":
        return preset
    tagger = replace(preset.options.tagger, runtime=runtime)
    if max_patches is not None:
        tagger = replace(tagger, max_patches=max_patches)
    return replace(preset, options=replace(preset.options, tagger=tagger))


def measure(args: argparse.Namespace) -> None:

    from rich.console import Console
    from rich.table import Table

    from engine import backends
    from engine.backends.base import Backend
    from engine.listen import describe
    from engine.live import LatencyStats, Listener, LiveResult, warm_up
    from engine.sources import FileSource, SourceEvent

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.file) if args.file else Path(tmp) / "track.wav"
        if not args.file:
            synth_track(path, seconds=args.seconds)
        source = FileSource(path, speed=1.0)
        server = None
        backend: Backend
        if args.via_engine:
            from engine.pipeline import Annotator
            from engine.remote import RemoteEngine
            from engine.server import EngineServer, ServerConfig

            server = EngineServer(
                Annotator(load_preset(args.preset, args.runtime, args.max_patches), store=None),
                ServerConfig(port=0),
            )
            server.start()
            backend = RemoteEngine("127.0.0.1", server.address[1])
        else:
            backend = backends.create(load_preset(args.preset, args.runtime, args.max_patches))
        warm_up(backend, sr=source.sr, channels=source.channels)
        inbox: queue.Queue[LiveResult | SourceEvent] = queue.Queue()
        listener = Listener(
            source,
            backend,
            on_result=inbox.put,
            on_event=inbox.put,
            window_s=args.window,
            hop_s=args.hop,
        )
        screen = Console(file=io.StringIO(), width=120)
        annotated, shown = LatencyStats(), LatencyStats()

        def show(item: LiveResult) -> None:
            table = Table("window", "key", "vocals", "tempo", "LUFS", "caption")
            table.add_row(*describe(item))
            screen.print(table)
            shown.add(time.monotonic() - item.t_end)
            annotated.add(item.t_done - item.t_end)

        listener.start()
        while True:
            item = inbox.get()
            if isinstance(item, LiveResult):
                show(item)
            elif item.kind in ("finished", "stopped", "error"):
                break
        listener.stop()  # the worker finishes the last window first
        while not inbox.empty():
            item = inbox.get()
            if isinstance(item, LiveResult):
                show(item)
        backend.close()
        if server is not None:
            server.stop()
            server.annotator.close()

    route = " via OSC engine" if args.via_engine else ""
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"preset {args.preset}{route}; window {args.window:g} s, hop {args.hop:g} s; "
        f"{len(shown.values)} windows, {listener.skipped} skipped; tagger runtime "
        f"{args.runtime}, max_patches {args.max_patches}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; "
        f"{'one core held by a busy loop' if args.contended else 'no busy loop'}; load average "
        + ", ".join(f"{x:.1f}" for x in os.getloadavg())
    )
    print(
        f"annotation ready: p50={annotated.percentile_ms(50):.0f} ms "
        f"p95={annotated.percentile_ms(95):.0f} ms"
    )
    print(
        f"on screen:        p50={shown.percentile_ms(50):.0f} ms "
        f"p95={shown.percentile_ms(95):.0f} ms"
    )


if __name__ == "__main__":
    main()
