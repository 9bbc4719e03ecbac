"""OSC round-trip latency of the engine on loopback: ping, cached region, uncached 10 s region.

"cached" asks again for a region of an unchanged file (answered from the engine's memory by
the network thread); "store hit" asks for the same samples under a new path, as after a
re-bounce (decoded and hashed by the worker, found in the SQLite store).

Starts ``python -m engine.serve`` in its own process (own store in a temporary folder),
talks to it through :class:`daw_bridge.client.EngineClient` and prints one line per case::

    ping: p50=0.3 ms p99=0.6 ms (n=500)
    cached: p50=0.8 ms p99=2.1 ms (n=500, 1200 regions/s)
    store hit (re-bounced file): p50=20 ms p99=30 ms (n=200, 50 regions/s)
    uncached 10 s: p50=35 ms p99=60 ms (n=30, 28 regions/s)
    uncached 10 s, pipelined: 30 regions in 1.1 s (27 regions/s)

``--path old`` runs the engine with the tagger settings from before the ONNX path (musicnn in
PyTorch, OpenMP's spinning waits, every 3 s patch), ``--path every-patch`` / ``two-patch`` /
``one-patch`` the current path on every patch / two / one of each region (the track's regions
and a region asked for alone alike), and ``--path new`` (the default) the current one (ONNX
Runtime when installed, sleeping waits, the preset's patches: for a region request, which is a
region alone, ``max_patches_alone``; models warmed at start); ``--contended``
starts a busy loop that holds one core for the whole run (a DAW's audio thread) and stops it
after. Each run also prints how long the engine took from process start to its first answer
("ready", warm-up included) and the first uncached request alone.

usage: python bench/osc_latency.py [--preset lite] [--n 500] [--uncached 30]
                                   [--path new|one-patch|two-patch|every-patch|old] [--contended]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from common import busy_loop, lite_preset_file

from daw_bridge import protocol
from daw_bridge.client import EngineClient

SR = 44100
REGION_S = 10.0
PATHS: dict[str, tuple[str, str, int | None]] = {
    # tagger runtime, OpenMP waits, tagger max_patches (None: the preset's)
    "new": ("auto", "PASSIVE", None),
    "every-patch": ("auto", "PASSIVE", 0),
    "two-patch": ("auto", "PASSIVE", 2),
    "one-patch": ("auto", "PASSIVE", 1),
    "old": ("torch", "ACTIVE", 0),
}
ROOT = Path(__file__).resolve().parents[1]


def preset_file(preset: str, runtime: str, max_patches: int | None, folder: Path) -> str:
    """The lite preset with ``[lite.tagger] runtime`` (and ``max_patches`` unless None) set;
    other presets pass through."""
    if preset != "lite":
        return preset
    tagger: dict[str, object] = {"runtime": runtime}
    if max_patches is not None:  # a region request is a region alone: both settings
        tagger["max_patches"] = tagger["max_patches_alone"] = max_patches
    return str(lite_preset_file(folder, f"lite_{runtime}_{max_patches}", tagger))


def synth_track(path: Path, *, regions: int, seed: int = 0) -> Path:
    """``regions`` x 10 s of distinct chord-and-click music (stereo, 44.1 kHz, 16-bit)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * REGION_S)) / SR
    out = []
    for _ in range(regions):
        root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
        chord = [root, root * 2 ** (rng.choice([3, 4]) / 12), root * 1.5]
        x = sum(np.sin(2 * np.pi * f * h * t) / h for f in chord for h in (1, 2, 3)) * 0.08
        bpm = rng.uniform(80, 160)
        clicks = (np.mod(t, 60.0 / bpm) < 0.01) * rng.normal(0, 0.3, t.size)
        x = x + clicks + rng.normal(0, 0.005, t.size)
        out.append(np.stack([x, np.roll(x, 50)]))
    sf.write(path, np.concatenate(out, axis=1).T.astype(np.float32), SR, subtype="PCM_16")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentiles(samples_s: list[float]) -> str:
    ms = np.asarray(samples_s) * 1000.0
    return f"p50={np.percentile(ms, 50):.2f} ms p99={np.percentile(ms, 99):.2f} ms"


def timed(fn, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="lite")
    parser.add_argument("--n", type=int, default=500, help="requests for ping and cached")
    parser.add_argument("--uncached", type=int, default=30, help="distinct uncached regions")
    parser.add_argument("--path", choices=sorted(PATHS), default="new")
    parser.add_argument("--contended", action="store_true", help="a busy loop holds one core")
    args = parser.parse_args()
    stop = multiprocessing.Event()
    hog = multiprocessing.Process(target=busy_loop, args=(stop,), daemon=True)
    if args.contended:
        hog.start()
    try:
        return run(args)
    finally:
        stop.set()
        if args.contended:
            hog.join(5)


def run(args: argparse.Namespace) -> int:
    runtime, policy, max_patches = PATHS[args.path]

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        track = synth_track(d / "track.wav", regions=2 * args.uncached + 2)
        port = free_port()
        started = time.perf_counter()
        engine = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "engine.serve",
                "--preset",
                preset_file(args.preset, runtime, max_patches, d),
                "--port",
                str(port),
                "--store",
                str(d / "store.sqlite3"),
                "--queue",
                "256",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "OMP_WAIT_POLICY": policy, "PYTHONPATH": str(ROOT)},
        )
        try:
            with EngineClient("127.0.0.1", port, timeout_s=120.0) as client:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        client.ping(timeout_s=1.0)
                        break
                    except Exception:
                        if time.monotonic() > deadline or engine.poll() is not None:
                            raise
                ready_s = time.perf_counter() - started
                info = client.ping()
                load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
                print(
                    f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                    f"{platform.python_implementation()} {platform.python_version()}, preset "
                    f"{info['preset']} (backend {info['backend']}), protocol "
                    f"{protocol.PROTOCOL_VERSION}; path {args.path} (tagger runtime {runtime}, "
                    f"OMP_WAIT_POLICY={policy}); "
                    f"{'one core held by a busy loop' if args.contended else 'no busy loop'}; "
                    f"load average {load}"
                )
                print(f"ready: {ready_s:.2f} s from process start to the first answer")
                t0 = time.perf_counter()
                client.annotate_region(
                    str(track), 2 * args.uncached * REGION_S, (2 * args.uncached + 1) * REGION_S
                )
                print(f"first uncached 10 s region: {(time.perf_counter() - t0) * 1000:.0f} ms")

                lat = timed(client.ping, args.n)
                print(f"ping: {percentiles(lat)} (n={args.n})")

                def cached() -> None:
                    client.annotate_region(str(track), 0.0, REGION_S)

                cached()
                lat = timed(cached, args.n)
                print(f"cached: {percentiles(lat)} (n={args.n}, {args.n / sum(lat):.0f} regions/s)")

                links = []
                for i in range(min(args.n, 200)):  # same samples, new path: a store hit
                    links.append(d / f"rebounce{i}.wav")
                    os.link(track, links[-1])
                it = iter(links)

                def store_hit() -> None:
                    client.annotate_region(str(next(it)), 0.0, REGION_S)

                lat = timed(store_hit, len(links))
                print(
                    f"store hit (re-bounced file): {percentiles(lat)} (n={len(links)}, "
                    f"{len(links) / sum(lat):.0f} regions/s)"
                )

                k = iter(range(1, 2 * args.uncached + 1))

                def uncached() -> None:
                    i = next(k)
                    client.annotate_region(str(track), i * REGION_S, (i + 1) * REGION_S)

                lat = timed(uncached, args.uncached)
                print(
                    f"uncached 10 s: {percentiles(lat)} (n={args.uncached}, "
                    f"{args.uncached / sum(lat):.1f} regions/s)"
                )

                t0 = time.perf_counter()
                pending = [
                    client.submit(
                        protocol.ANNOTATE,
                        {"path": str(track), "start_s": i * REGION_S, "end_s": (i + 1) * REGION_S},
                    )
                    for i in range(args.uncached + 1, 2 * args.uncached + 1)
                ]
                for p in pending:
                    p.result()
                wall = time.perf_counter() - t0
                print(
                    f"uncached 10 s, pipelined: {args.uncached} regions in {wall:.2f} s "
                    f"({args.uncached / wall:.1f} regions/s)"
                )
        finally:
            engine.terminate()
            engine.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
