"""What a hostile but fair client costs the engine: memory, stalls, amplification.

Starts ``python -m engine.serve`` with a token (own store and root in a temporary folder)
and measures, in one table:

* memory cases: the engine's peak RSS (``VmHWM``, reset before each case through
  ``/proc/<pid>/clear_refs``) while it answers one request; target < 1 GB on lite;
* floods: how long a ping with the right token waits for its answer right after each flood,
  next to the same ping's latency with no flood (the baseline); target < 100 ms;
* amplification: reply bytes over request bytes for each unauthenticated abuse, summed over
  the sender and any port it names as ``reply_port``; target <= 1.

usage: python bench/abuse.py [--preset lite]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from daw_bridge import protocol
from daw_bridge.client import EngineClient, ReplyError

TOKEN = "bench-token"


def message(address: str, *args: object) -> bytes:
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return bytes(b.build().dgram)


def write_silence(path: Path, *, sr: int, channels: int, seconds: float, subtype: str) -> Path:
    """A silent file written block by block (the bench never holds it whole)."""
    block = np.zeros((sr, channels), np.float32)
    with sf.SoundFile(path, "w", sr, channels, subtype=subtype) as f:
        for _ in range(int(seconds)):
            f.write(block)
    return path


def write_tones(path: Path, *, seconds: float, sr: int = 44100) -> Path:
    t = np.arange(int(sr * seconds)) / sr
    x = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 330 * t)
    sf.write(path, np.stack([x, x]).T.astype(np.float32), sr, subtype="PCM_16")
    return path


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def ping_ms(client: EngineClient) -> float:
    t0 = time.perf_counter()
    client.ping(timeout_s=10.0)
    return (time.perf_counter() - t0) * 1000


def start_engine(preset: str, store: Path, root: Path) -> tuple[subprocess.Popen[str], int]:
    cmd = [sys.executable, "-m", "engine.serve", "--port", "0", "--preset", preset]
    cmd += ["--store", str(store), "--token", TOKEN, "--root", str(root)]
    proc = subprocess.Popen(
        cmd,
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    line = ""
    while "listening on" not in line:
        line = proc.stderr.readline()
        if not line:
            raise SystemExit("the engine exited before listening")
    port = int(line.rsplit(":", 1)[1].split()[0])
    return proc, port


def drain(sock: socket.socket, quiet_s: float = 0.3) -> int:
    """Bytes received until the socket has been quiet for ``quiet_s``."""
    total = 0
    sock.settimeout(quiet_s)
    while True:
        try:
            total += len(sock.recv(65536))
        except TimeoutError:
            return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="lite")
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sonicverse-abuse-"))
    root = tmp / "root"
    root.mkdir()
    print("writing test files ...", file=sys.stderr)
    flac = write_silence(root / "hi.flac", sr=655_350, channels=8, seconds=30, subtype="PCM_16")
    hour = write_silence(root / "hour.wav", sr=48_000, channels=2, seconds=3600, subtype="PCM_16")
    song = write_tones(root / "song.wav", seconds=30)
    proc, port = start_engine(opts.preset, tmp / "store.sqlite3", root)
    rows: list[tuple[str, str, str]] = []
    try:
        with EngineClient("127.0.0.1", port, token=TOKEN, timeout_s=600.0) as client:
            client.ping()
            rows.append(("idle engine (baseline)", "peak RSS", f"{peak_rss_mb(proc.pid):.0f} MB"))
            memory_cases: list[tuple[str, Callable[[], object]]] = [
                (
                    "655,350 Hz x 8 ch FLAC (343 KB-style silence), narrate 30 s",
                    lambda: client.narrate(str(flac)),
                ),
                (
                    "1 h 48 kHz stereo WAV, one region [0, 3600) s",
                    lambda: client.annotate_region(str(hour), 0.0, 3600.0),
                ),
                (
                    "1 h 48 kHz stereo WAV, largest region allowed [0, 180) s",
                    lambda: client.annotate_region(str(hour), 0.0, 180.0),
                ),
                (
                    "narrate 300 x [0, 30) s regions of a 30 s WAV",
                    lambda: client.narrate(str(song), regions=[(0.0, 30.0, "")] * 300),
                ),
                (
                    "narrate 200 x [0, 30) s regions of a 30 s WAV",
                    lambda: client.narrate(str(song), regions=[(0.0, 30.0, "")] * 200),
                ),
            ]
            for name, run in memory_cases:
                reset_peak(proc.pid)
                t0 = time.perf_counter()
                try:
                    run()
                    outcome = "answered"
                except ReplyError as exc:
                    outcome = f"refused ({exc.code})"
                secs = time.perf_counter() - t0
                rows.append(
                    (name, "peak RSS", f"{peak_rss_mb(proc.pid):.0f} MB, {outcome}, {secs:.1f} s")
                )
            baseline = sorted(ping_ms(client) for _ in range(50))[25]
            rows.append(("no flood (baseline)", "ping", f"{baseline:.2f} ms"))
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            victim.bind(("127.0.0.1", 0))
            vport = victim.getsockname()[1]
            unknown = b"/x\0\0," + b"Z" * 65000
            unknown += b"\0" * (4 - len(unknown) % 4)
            bundle = OscBundleBuilder(IMMEDIATELY)
            for i in range(32):
                b = OscMessageBuilder(protocol.ANNOTATE)
                for v in (f"r{i}", vport, "wrong" * 20, "/nope.wav" * 40, 0.0, 1.0):
                    b.add_arg(v)
                bundle.add_content(b.build())
            floods: list[tuple[str, list[bytes]]] = [
                (
                    "negative bundle element size (20 B)",
                    [b"#bundle\0" + bytes(8) + b"\xff" * 3 + b"\xfc"],
                ),
                ("65 KB of unknown type tags", [unknown]),
                ("1,000 x 4-byte non-UTF-8", [b"\xff\xfe\xfd\xfc"] * 1000),
                ("100 x 16 KB bundles, wrong token", [bundle.build().dgram] * 100),
                (
                    "1,000 pings, wrong token, reply_port",
                    [message(protocol.PING, "p", vport, "x" * 40)] * 1000,
                ),
                ("1,000 bare pings (44 B), no token", [message(protocol.PING, "p", 0, "")] * 1000),
                (
                    "1,000 annotate, unknown address",
                    [message("/sonicverse/x/y", "a", vport, "")] * 1000,
                ),
            ]
            worst = 0.0
            for name, dgrams in floods:
                drain(sock, 0.05)
                drain(victim, 0.05)
                for d in dgrams:
                    sock.sendto(d, ("127.0.0.1", port))
                stall = ping_ms(client)
                sent = sum(len(d) for d in dgrams)
                got = drain(sock) + drain(victim)
                worst = max(worst, got / sent)
                rows.append((name, "ping after flood", f"{stall:.2f} ms"))
                rows.append((name, "reply/request bytes", f"{got}/{sent} = {got / sent:.3f}"))
            rows.append(("largest, before authentication", "reply/request bytes", f"{worst:.3f}"))
            sock.close()
            victim.close()
    finally:
        proc.terminate()
        proc.wait(30)
    width = max(len(r[0]) for r in rows)
    print(f"abuse on {platform.machine()}, {os.cpu_count()} cores, preset {opts.preset}")
    print(f"{'case':<{width}}  {'measure':<20}  value")
    for case, measure, value in rows:
        print(f"{case:<{width}}  {measure:<20}  {value}")


if __name__ == "__main__":
    main()
