"""An engine left on: mixed load for N minutes, its memory, descriptors, store and latency
sampled over time, optionally killed with SIGKILL and restarted every M minutes.

Starts ``python -m engine.serve`` (``lite``, loopback, its own store in the output folder,
``--root`` the render cache) and drives it with bounded, mixed load until the time is up:

* a DAW: region requests at ``--rate`` per second over a few hundred rendered files, half of
  them asking again for a region already answered (a cache hit), half for a new one;
* a panel: a narrate of a 3-minute file every 30 s (the file re-rendered each time, as after
  a re-bounce, so the engine does the work);
* cancels: a new region and a narrate cancelled as soon as they are sent, every 10 s;
* a burst of 500 requests from one sender every ``--burst-every`` seconds;
* senders that disappear mid-request: a socket sends a narrate or a region and closes.

Each request's final replies (result, error or busy) are counted as they arrive on the wire.
A request killed with its engine (``--kill-every``) is sent again, once the client reports
the engine restarted, under a new id; before each restart the store is opened and every
region acknowledged with a result before the kill is looked up in it.

It samples the engine's RSS, open descriptors, threads and store size every 2 s and a ping
every second, writes ``samples.csv``, ``requests.csv`` and a plot, and ends with one line::

    soak: requests=N lost=N stalls=N rss_growth_pct=X p99_ms_first=X p99_ms_last=X restarts=N

* ``lost``: requests whose sender stayed without exactly one final reply (after its retries,
  if its engine was killed); ``store_missing`` counts acknowledged regions the store lacks,
  checked at each kill and after the run;
* ``stalls``: seconds in which a ping got no answer within 1 s, the engine being up (the
  seconds between a kill and the restarted engine's first answer are ``down_s``);
* ``rss_growth_pct``, ``p99_ms_first``, ``p99_ms_last``: the first and last tenth of the run
  after the warm-up (the first ``--warmup`` seconds); RSS is each tenth's median sample,
  p99 is over the DAW's region requests finished in the tenth (restarted engines' samples
  included: the first engine's RSS is the reference).

Renders (numpy synthesis) are cached under ``bench/data/soak/``.

usage: python bench/soak.py --minutes N [--kill-every M] [--out DIR] [--plot FILE]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import logging
import multiprocessing
import os
import platform
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from pythonosc.osc_message_builder import OscMessageBuilder

from daw_bridge import protocol
from daw_bridge.client import EngineBusy, EngineClient, EngineRestarted, EngineTimeout, Pending

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data" / "soak"
SR = 22050
FILES = 300
FILE_S = 12.0
TRACK_S = 180.0
BURST = 500
RETRIES = 5
"""Times a request killed with its engine is sent again."""

log = logging.getLogger("soak")


def synth(seconds: float, seed: int) -> np.ndarray:
    """Chords over clicks at a random tempo, a new chord every 4 s (mono float32)."""
    rng = np.random.default_rng(seed)
    n = int(SR * seconds)
    t = np.arange(n) / SR
    out = np.zeros(n, np.float32)
    bpm = rng.uniform(80, 160)
    clicks = (np.mod(t, 60.0 / bpm) < 0.01) * rng.normal(0, 0.3, n)
    step = int(4 * SR)
    for a in range(0, n, step):
        root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
        chord = (root, root * 2 ** (rng.choice([3, 4]) / 12), root * 1.5)
        tt = t[a : a + step]
        x = sum(np.sin(2 * np.pi * f * h * tt) / h for f in chord for h in (1, 2, 3))
        out[a : a + step] = 0.06 * x
    return (out + clicks).astype(np.float32)


def render_files(folder: Path) -> list[Path]:
    """The DAW's bounced files (rendered once, then reused)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"clip-{i:03d}.wav" for i in range(FILES)]
    for i, p in enumerate(paths):
        if not p.exists():
            sf.write(p, synth(FILE_S, seed=i), SR, subtype="PCM_16")
    return paths


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_stats(pid: int) -> tuple[float, int, int]:
    """RSS (MB), open descriptors and threads of ``pid``."""
    rss, threads = float("nan"), 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd")), threads


class Engine:
    """The engine process: started, killed and restarted on one port and one store."""

    def __init__(self, out: Path, root: Path, port: int, up: Any) -> None:
        self.store = out / "store.sqlite3"
        self.root = root
        self.port = port
        self.log = open(out / "engine.log", "a")  # noqa: SIM115 (kept open across restarts)
        self.proc: subprocess.Popen[bytes] | None = None
        self.up = up  # a multiprocessing Event: the pinger process reads it

    def start(self) -> float:
        """Start it and wait for its first answer; returns seconds it took."""
        t0 = time.monotonic()
        cmd = [sys.executable, "-m", "engine.serve", "--preset", "lite", "--port", str(self.port)]
        cmd += ["--store", str(self.store), "--root", str(self.root)]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=self.log)
        with EngineClient("127.0.0.1", self.port, timeout_s=1.0) as c:
            while True:
                if self.proc.poll() is not None:
                    raise SystemExit(f"the engine exited ({self.proc.returncode}); see engine.log")
                try:
                    c.ping(timeout_s=1.0)
                    break
                except EngineTimeout:
                    continue
        self.up.set()
        return time.monotonic() - t0

    def kill(self) -> None:
        self.up.clear()
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.log.close()


@dataclass
class Request:
    """One logical request: its attempts (ids) and what came back."""

    kind: str
    address: str
    args: dict[str, Any]
    sent: float
    ids: list[str] = field(default_factory=list)
    done: float = 0.0
    outcome: str = ""  # result, error:<code>, busy, timeout, restarted
    result: Any = None


class Load:
    """Sends the load, counts final replies per id on the wire, retries what a kill lost."""

    def __init__(self, engine: Engine, files: list[Path], seed: int) -> None:
        self.engine = engine
        self.files = files
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.requests: list[Request] = []
        self.finals: dict[str, set[bytes]] = defaultdict(set)
        self.by_id: dict[str, Request] = {}
        self.answered: list[tuple[str, float, float]] = []  # regions acknowledged with a result
        self.retry: list[Request] = []
        self.vanished = 0
        self.clients: dict[str, EngineClient] = {}

    def client(self, name: str, *, timeout_s: float = 120.0) -> EngineClient:
        if name not in self.clients:
            c = EngineClient("127.0.0.1", self.engine.port, timeout_s=timeout_s)
            for path in protocol.FINAL_REPLIES:
                c._dispatcher.map(path, self._count_final)  # beside the client's own handler
            self.clients[name] = c
        return self.clients[name]

    def _count_final(self, address: str, *params: Any) -> None:
        if not params or not isinstance(params[0], str):
            return
        if address == protocol.RESULT and (len(params) < 3 or params[1] != params[2] - 1):
            return  # a result's last part stands for the whole reply
        with self.lock:
            self.finals[params[0]].add(repr(params).encode())

    def submit(self, client: str, kind: str, address: str, args: dict[str, Any]) -> Pending:
        req = Request(kind, address, args, time.monotonic())
        with self.lock:
            self.requests.append(req)
        return self._send(client, req)

    def _send(self, client: str, req: Request) -> Pending:
        pending = self.client(client).submit(req.address, req.args)
        with self.lock:
            req.ids.append(pending.id)
            self.by_id[pending.id] = req
        pending.add_done_callback(lambda p: self._done(client, req, p))
        return pending

    def _done(self, client: str, req: Request, p: Pending) -> None:
        exc = p.exception()
        now = time.monotonic()
        if isinstance(exc, EngineRestarted | EngineTimeout) and len(req.ids) <= RETRIES:
            with self.lock:
                self.retry.append(req)  # sent again once the engine answers
            req.outcome = "restarted"
            return
        req.done = now
        if exc is None:
            req.outcome, req.result = "result", p.result()
            if req.address == protocol.ANNOTATE:
                with self.lock:
                    self.answered.append(
                        (req.args["path"], req.result["start_s"], req.result["end_s"])
                    )
        elif isinstance(exc, EngineBusy):
            req.outcome = "busy"
        else:
            req.outcome = f"error:{getattr(exc, 'code', type(exc).__name__)}"

    def resend(self) -> None:
        """Send again what a kill lost (the engine is up)."""
        with self.lock:
            todo, self.retry = self.retry, []
        for req in todo:
            self._send(req.kind, req)

    def region(self) -> dict[str, Any]:
        """Half the time a region already answered, else a new one."""
        with self.lock:
            hit = self.answered and self.rng.random() < 0.5
            if hit:
                path, start, end = self.rng.choice(self.answered)
        if not hit:
            path = str(self.rng.choice(self.files))
            length = self.rng.uniform(4.0, 8.0)
            start = round(self.rng.uniform(0.0, FILE_S - length), 3)
            end = round(start + length, 3)
        return {"path": path, "start_s": start, "end_s": end}

    def vanish(self) -> None:
        """A sender that sends a request and is gone before the reply."""
        args = {"id": f"gone-{self.vanished}", "reply_port": 0, "token": ""}
        path = str(self.rng.choice(self.files))
        if self.vanished % 2:
            address, body = protocol.NARRATE, {"path": path}
        else:
            start = round(self.rng.uniform(0.0, FILE_S - 5.0), 3)
            address, body = protocol.ANNOTATE, {"path": path, "start_s": start, "end_s": start + 5}
        builder = OscMessageBuilder(address)
        for tag, value in protocol.encode(protocol.REQUESTS[address], {**args, **body}):
            builder.add_arg(value, tag)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(builder.build().dgram, ("127.0.0.1", self.engine.port))
        self.vanished += 1

    def close(self) -> None:
        for c in self.clients.values():
            c.close()


def store_missing(store: Path, answered: list[tuple[str, float, float]]) -> int:
    """Regions acknowledged with a result that the store (opened read-only) does not hold."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        missing = 0
        for path, start, end in answered:
            row = db.execute(
                "SELECT 1 FROM records WHERE source = ? AND abs(start_s - ?) < 1e-3 "
                "AND abs(end_s - ?) < 1e-3",
                (path, start, end),
            ).fetchone()
            missing += row is None
        return missing
    finally:
        db.close()


def pinger(port: int, up: Any, stop: Any, t0: float, stalls: Any) -> None:
    """Ping the engine once a second (in a process of its own, so the load generator's own
    work does not delay it); puts the second of each ping unanswered within 1 s on ``stalls``,
    the engine being up."""
    with EngineClient("127.0.0.1", port, timeout_s=1.0) as c:
        while not stop.is_set():
            second = int(time.time() - t0)
            if up.is_set():
                try:
                    c.ping(timeout_s=1.0)
                except EngineTimeout:
                    if up.is_set():  # not killed meanwhile
                        stalls.put(second)
            stop.wait(max(0.0, second + 1 - (time.time() - t0)))


def percentile_ms(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def plot(
    samples: list[dict[str, float]],
    lat: list[tuple[float, float]],
    events: dict[str, list[float]],
    path: Path,
    title: str,
) -> None:
    """RSS, descriptors and threads, store size and region latency over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.array([s["t"] for s in samples]) / 60
    fig, axes = plt.subplots(4, 1, figsize=(10, 10), sharex=True)
    axes[0].plot(t, [s["rss_mb"] for s in samples])
    axes[0].set_ylabel("RSS (MB)")
    axes[1].plot(t, [s["fds"] for s in samples], label="open descriptors")
    axes[1].plot(t, [s["threads"] for s in samples], label="threads")
    axes[1].legend(loc="upper left")
    axes[2].plot(t, [s["store_mb"] for s in samples])
    axes[2].set_ylabel("store (MB)")
    if lat:
        lt = np.array([a for a, _ in lat])
        lv = np.array([b for _, b in lat]) * 1000
        edges = np.arange(0, lt.max() + 30, 30)
        mids, p50, p99 = [], [], []
        for a, b in itertools.pairwise(edges):
            w = lv[(lt >= a) & (lt < b)]
            if w.size:
                mids.append((a + b) / 2 / 60)
                p50.append(np.percentile(w, 50))
                p99.append(np.percentile(w, 99))
        axes[3].plot(mids, p50, label="p50")
        axes[3].plot(mids, p99, label="p99")
        axes[3].set_yscale("log")
        axes[3].legend(loc="upper left")
    axes[3].set_ylabel("region latency (ms, 30 s windows)")
    axes[3].set_xlabel("minutes")
    for ax in axes:
        for x in events.get("kill", []):
            ax.axvline(x / 60, color="red", lw=0.8, ls="--")
        for x in events.get("burst", []):
            ax.axvline(x / 60, color="grey", lw=0.5, ls=":")
    axes[0].set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--kill-every", type=float, default=0.0, help="minutes (0 = never)")
    parser.add_argument("--rate", type=float, default=5.0, help="DAW region requests per second")
    parser.add_argument("--burst-every", type=float, default=0.0, help="seconds (default: run/3)")
    parser.add_argument("--warmup", type=float, default=0.0, help="seconds (default: run/10)")
    parser.add_argument("--out", type=Path, help="folder for the samples (default: bench/data)")
    parser.add_argument("--plot", type=Path, help="PNG to write (default: <out>/soak.png)")
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    run_s = opts.minutes * 60
    warmup_s = opts.warmup or min(60.0, run_s / 10)
    burst_every = opts.burst_every or min(300.0, run_s / 3)
    out = opts.out or DATA / time.strftime("run-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    print("rendering ...", file=sys.stderr)
    files = render_files(DATA / "clips")
    tracks = DATA / "tracks"
    tracks.mkdir(exist_ok=True)
    ctx = multiprocessing.get_context("spawn")
    engine = Engine(out, DATA, free_port(), ctx.Event())
    ready_s = engine.start()
    first_pid = engine.proc.pid if engine.proc else 0
    load = Load(engine, files, opts.seed)
    samples: list[dict[str, float]] = []
    events: dict[str, list[float]] = defaultdict(list)
    stall_queue = ctx.Queue()
    down_s = 0.0
    missing = 0
    restarts = 0
    t0 = time.monotonic()
    stop = ctx.Event()
    ping_proc = ctx.Process(
        target=pinger, args=(engine.port, engine.up, stop, time.time(), stall_queue), daemon=True
    )
    ping_proc.start()

    def sampler() -> None:
        while not stop.wait(2.0):
            if not engine.up.is_set() or engine.proc is None:
                continue
            try:
                rss, fds, threads = proc_stats(engine.proc.pid)
            except (FileNotFoundError, ProcessLookupError):
                continue
            size = sum(
                p.stat().st_size
                for p in engine.store.parent.glob(engine.store.name + "*")
                if p.is_file()
            )
            samples.append(
                {
                    "t": time.monotonic() - t0,
                    "rss_mb": rss,
                    "fds": fds,
                    "threads": threads,
                    "store_mb": size / 1e6,
                    "pid": engine.proc.pid,
                }
            )

    sampling = threading.Thread(target=sampler, daemon=True)
    sampling.start()
    next_region = next_panel = next_cancel = next_vanish = 0.0
    next_burst = burst_every
    next_kill = opts.kill_every * 60 if opts.kill_every else float("inf")
    panel: Pending | None = None
    panel_n = 0
    while (now := time.monotonic() - t0) < run_s:
        if now >= next_kill:
            engine.kill()
            events["kill"].append(now)
            down0 = time.monotonic()
            missing += store_missing(engine.store, list(load.answered))
            engine.start()
            down_s += time.monotonic() - down0
            restarts += 1
            next_kill += opts.kill_every * 60
            time.sleep(1.5)  # the clients' probes see the new instance and give up the lost
        if load.retry:
            load.resend()
        if now >= next_region:
            load.submit("daw", "daw", protocol.ANNOTATE, load.region())
            next_region += 1.0 / opts.rate
        if now >= next_panel and (panel is None or panel.done()):
            track = tracks / f"track-{panel_n % 4}.wav"
            sf.write(track, synth(TRACK_S, seed=10_000 + panel_n), SR, subtype="PCM_16")
            panel = load.submit("panel", "panel", protocol.NARRATE, {"path": str(track)})
            panel_n += 1
            next_panel += 30.0
        if now >= next_cancel:
            for address, args in (
                (protocol.ANNOTATE, load.region()),
                (protocol.NARRATE, {"path": str(load.rng.choice(files))}),
            ):
                load.submit("cancel", "cancel", address, args).cancel()
            next_cancel += 10.0
        if now >= next_vanish:
            load.vanish()
            next_vanish += 20.0
        if now >= next_burst:
            events["burst"].append(now)
            for _ in range(BURST):
                load.submit("burst", "burst", protocol.ANNOTATE, load.region())
            next_burst += burst_every
        time.sleep(0.01)
    # Let what is in flight finish (bounded), then count.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if load.retry:
            load.resend()
        with load.lock:
            open_ = [r for r in load.requests if not r.done]
        if not open_:
            break
        time.sleep(0.2)
    time.sleep(1.0)  # late duplicates
    stop.set()
    sampling.join(5)
    ping_proc.join(5)
    stalls: set[int] = set()
    while not stall_queue.empty():
        stalls.add(stall_queue.get())
    load.close()
    engine.stop()
    missing += store_missing(engine.store, list(load.answered))  # after the last engine, too

    lost = 0
    with load.lock:
        for req in load.requests:
            last = req.ids[-1] if req.ids else ""
            lost += not req.done or len(load.finals.get(last, ())) != 1
        requests = list(load.requests)
    lat = [(r.done - t0, r.done - r.sent) for r in requests if r.kind == "daw" and r.done]
    span = (run_s - warmup_s) / 10
    first = (warmup_s, warmup_s + span)
    last = (run_s - span, run_s)

    def within(t: float, w: tuple[float, float]) -> bool:
        return w[0] <= t < w[1]

    rss_first = np.median([s["rss_mb"] for s in samples if within(s["t"], first)])
    rss_last = np.median([s["rss_mb"] for s in samples if within(s["t"], last)])
    growth = (rss_last / rss_first - 1) * 100
    p99_first = percentile_ms([v for t, v in lat if within(t, first)], 99)
    p99_last = percentile_ms([v for t, v in lat if within(t, last)], 99)
    outcomes: dict[str, int] = defaultdict(int)
    for r in requests:
        outcomes[f"{r.kind}:{r.outcome}"] += 1
    with open(out / "samples.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["t", "rss_mb", "fds", "threads", "store_mb", "pid"])
        w.writeheader()
        w.writerows(samples)
    with open(out / "requests.csv", "w", newline="") as f:
        w2 = csv.writer(f)
        w2.writerow(["kind", "sent_s", "latency_s", "attempts", "outcome", "finals"])
        for r in requests:
            finals = len(load.finals.get(r.ids[-1], ())) if r.ids else 0
            w2.writerow(
                [r.kind, round(r.sent - t0, 3), round(r.done - r.sent, 4) if r.done else "",
                 len(r.ids), r.outcome, finals]
            )  # fmt: skip
    title = (
        f"soak: {opts.minutes:g} min, lite, kill every {opts.kill_every:g} min"
        if opts.kill_every
        else f"soak: {opts.minutes:g} min, lite"
    )
    plot(samples, lat, events, opts.plot or out / "soak.png", title)
    print(
        f"soak on {platform.machine()}, {os.cpu_count()} cores: {opts.minutes:g} min, "
        f"engine ready in {ready_s:.1f} s (pid {first_pid}), warm-up {warmup_s:.0f} s, "
        f"tenths of {span:.0f} s"
    )
    retried = sum(len(r.ids) > 1 for r in requests)
    print(
        "outcomes: "
        + ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items()))
        + f"; sent again after a restart: {retried}"
    )
    fds = [s["fds"] for s in samples]
    thr = [s["threads"] for s in samples]
    print(
        f"rss first={rss_first:.1f} MB last={rss_last:.1f} MB; fds {min(fds)}..{max(fds)}; "
        f"threads {min(thr)}..{max(thr)}; store {samples[-1]['store_mb']:.1f} MB; "
        f"vanished senders={load.vanished}; down_s={down_s:.1f}; store_missing={missing}; "
        f"acknowledged regions={len(load.answered)}; stall seconds={sorted(stalls)}"
    )
    print(
        f"soak: requests={len(requests)} lost={lost} stalls={len(stalls)} "
        f"rss_growth_pct={growth:.1f} p99_ms_first={p99_first:.1f} p99_ms_last={p99_last:.1f} "
        f"restarts={restarts}"
    )


if __name__ == "__main__":
    main()
