"""100,000 generated datagrams against a running engine: stalls and memory.

Starts ``python -m engine.serve`` (``lite``, loopback, its own store, ``--root`` the soak
renders) and sends datagrams drawn from :class:`tests.osc_grammar.Grammar` (valid requests,
truncated, mutated and oversized datagrams; half the paths in valid requests name real audio
files, so the worker runs too) from a few sender sockets at ``--rate`` per second. A process
of its own pings the engine every second; a second whose ping gets no answer within 1 s is a
stall. The engine's RSS is read before the first datagram (after a narrate of a 3-minute
track and 20 regions: an engine that has served, as a DAW's has), every 2 s, and after the last one
once the engine has been quiet for 5 s.

Prints a table (datagrams by kind, replies, stalls, RSS start / peak / end) and one line::

    fuzz: datagrams=N stalls=N rss_start_mb=X rss_end_mb=X rss_growth_pct=X

usage: python bench/fuzz.py [--n 100000] [--rate 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import socket
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import soundfile as sf
from soak import DATA, SR, TRACK_S, Engine, free_port, pinger, proc_stats, render_files, synth

from daw_bridge.client import EngineClient
from tests.osc_grammar import KINDS, Grammar

SENDERS = 4
WARM_REQUESTS = 20
"""Regions the engine annotates before the RSS it starts from is read."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="datagrams per second")
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()
    print("rendering ...", file=sys.stderr)
    files = [str(p) for p in render_files(DATA / "clips")]
    out = Path(tempfile.mkdtemp(prefix="sonicverse-fuzz-"))
    ctx = multiprocessing.get_context("spawn")
    engine = Engine(out, DATA, free_port(), ctx.Event())
    ready_s = engine.start()
    assert engine.proc is not None
    pid = engine.proc.pid
    stop, stalls = ctx.Event(), ctx.Queue()
    t0 = time.time()
    ping = ctx.Process(target=pinger, args=(engine.port, engine.up, stop, t0, stalls))
    ping.start()
    rss_cold = proc_stats(pid)[0]
    track = DATA / "tracks" / "fuzz-warm.wav"
    track.parent.mkdir(exist_ok=True)
    sf.write(track, synth(TRACK_S, seed=1), SR, subtype="PCM_16")
    with EngineClient("127.0.0.1", engine.port, timeout_s=120.0) as client:
        # the engine's first real requests allocate what its warm-up does not (analysis
        # buffers sized by the largest batch so far): the comparison starts from an engine
        # that has served a 3-minute narrate, as a DAW's engine has
        client.narrate(str(track))
        for path in files[-WARM_REQUESTS:]:
            client.annotate_region(path, 1.0, 9.0)
    time.sleep(2.0)
    rss_start = proc_stats(pid)[0]
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(SENDERS)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
    grammar = Grammar(opts.seed, [*files[:50], str(DATA / "clips")])  # a folder among them
    kinds: Counter[str] = Counter()
    sent_bytes = replies = reply_bytes = 0
    peak = rss_start
    next_sample = time.monotonic()
    start = time.monotonic()
    for i in range(opts.n):
        kind, dgram = grammar.draw()
        kinds[kind] += 1
        sock = socks[i % SENDERS]
        try:
            sock.sendto(dgram, ("127.0.0.1", engine.port))
            sent_bytes += len(dgram)
        except OSError:
            kinds["send_failed"] += 1
        if i % 64 == 0:
            for s in socks:
                while True:
                    try:
                        reply_bytes += len(s.recv(65536))
                        replies += 1
                    except (BlockingIOError, OSError):
                        break
            if engine.proc.poll() is not None:
                raise SystemExit(f"the engine died after {i + 1} datagrams; see {out}")
            if time.monotonic() >= next_sample:
                peak = max(peak, proc_stats(pid)[0])
                next_sample += 2.0
            ahead = (i + 1) / opts.rate - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)
    send_s = time.monotonic() - start
    time.sleep(5.0)
    rss_end = proc_stats(pid)[0]
    peak = max(peak, rss_end)
    stop.set()
    ping.join(5)
    alive = engine.proc.poll() is None
    engine.stop()
    seconds: set[int] = set()
    while not stalls.empty():
        seconds.add(stalls.get())
    growth = (rss_end / rss_start - 1) * 100
    tracebacks = (out / "engine.log").read_text(errors="replace").count("Traceback")
    print(
        f"fuzz on {platform.machine()}, {os.cpu_count()} cores, lite; engine ready in "
        f"{ready_s:.1f} s; {opts.n} datagrams in {send_s:.0f} s from {SENDERS} senders"
    )
    rows = [(f"datagrams: {k}", str(kinds[k])) for k in KINDS]
    rows += [
        ("datagrams: sendto refused (> UDP limit)", str(kinds["send_failed"])),
        ("bytes sent", f"{sent_bytes / 1e6:.1f} MB"),
        ("replies received (a sample: read every 64 sends)", f"{replies}, {reply_bytes} B"),
        ("engine alive at the end", str(alive)),
        ("tracebacks in the engine's log (internal errors)", str(tracebacks)),
        ("stalls (s with a ping unanswered in 1 s)", f"{len(seconds)} {sorted(seconds)}"),
        ("RSS just started (not compared)", f"{rss_cold:.1f} MB"),
        ("RSS start / peak / end", f"{rss_start:.1f} / {peak:.1f} / {rss_end:.1f} MB"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(
        f"fuzz: datagrams={opts.n} stalls={len(seconds)} rss_start_mb={rss_start:.1f} "
        f"rss_end_mb={rss_end:.1f} rss_growth_pct={growth:.1f}"
    )


if __name__ == "__main__":
    main()
