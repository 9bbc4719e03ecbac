"""The engine started on a damaged, locked or full annotation store: what it says, and whether
the file is kept.

Runs ``python -m engine.serve`` (``lite``) on each case and prints one row per case: how the
engine ended (exit status, or still serving), the first line of its error, and whether the
store file is byte for byte what it was (or, with ``--fresh-store``, kept aside unchanged):

* a 0-byte store, a store cut to half its size, a store overwritten with random bytes;
* a store another process holds locked (``BEGIN EXCLUSIVE``);
* a damaged store started with ``--fresh-store``;
* a full disk: the store on a 600 KB tmpfs (mounted here when the user may mount; else the
  case is skipped), regions annotated until the disk is full, then the acknowledged ones
  looked up in the store.

usage: python bench/damaged_store.py
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from soak import DATA, ROOT, free_port, render_files

from daw_bridge.client import EngineClient, EngineTimeout, ReplyError
from engine.store import Store
from tests.engine.helpers import annotation


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def filled(path: Path, n: int = 300) -> None:
    store = Store(path)
    store.put_many([(f"k{i}", annotation(float(i), float(i + 1))) for i in range(n)], source="/f")
    store.close()


def start(store: Path, *extra: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    cmd = [sys.executable, "-m", "engine.serve", "--port", str(port), "--store", str(store)]
    cmd += ["--root", str(DATA), *extra]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    return proc, port


def outcome(proc: subprocess.Popen[str], port: int) -> tuple[str, str]:
    """(how it ended, its error line): exit status, or 'serving' once it answers a ping."""
    assert proc.stderr is not None
    with EngineClient("127.0.0.1", port, timeout_s=1.0) as c:
        while proc.poll() is None:
            try:
                c.ping(timeout_s=1.0)
                return "serving", ""
            except EngineTimeout:
                continue
    said = [line for line in proc.stderr.read().splitlines() if "cannot start" in line]
    message = said[0].split("cannot start the engine: ", 1)[-1] if said else ""
    return f"exit {proc.returncode}", message


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(30)


def full_disk(folder: Path) -> tuple[str, str, str]:
    mount = folder / "tmpfs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)])
    if done.returncode != 0:
        return "skipped", "cannot mount a tmpfs here (needs root)", "-"
    try:
        store = mount / "store.sqlite3"
        proc, port = start(store)
        state, _ = outcome(proc, port)
        acked: list[str] = []
        errors: dict[str, int] = {}
        last = ""
        clips = render_files(DATA / "clips")
        with EngineClient("127.0.0.1", port, timeout_s=60.0) as c:
            for clip in clips[:150]:
                try:
                    c.annotate_region(str(clip), 0.5, 7.5)
                    acked.append(str(clip))
                except ReplyError as exc:
                    errors[exc.code] = errors.get(exc.code, 0) + 1
                    last = exc.message
            alive = c.ping()["pong"]
        stop(proc)
        db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
        have = {r[0] for r in db.execute("SELECT source FROM records")}
        db.close()
        missing = sum(a not in have for a in acked)
        how = f"{state}; {len(acked)} answered, {errors} then; ping after: {alive}"
        return how, last, f"{missing} of {len(acked)} answered regions missing from the store"
    finally:
        subprocess.run(["umount", str(mount)])


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="sonicverse-damaged-"))
    rng = np.random.default_rng(0)
    rows: list[tuple[str, str, str, str]] = []
    for case in ("0-byte file", "cut to half", "random bytes", "locked", "--fresh-store"):
        path = tmp / f"{case.strip('-').replace(' ', '-')}.sqlite3"
        filled(path)
        data = path.read_bytes()
        if case == "0-byte file":
            path.write_bytes(b"")
        elif case == "cut to half":
            path.write_bytes(data[: len(data) // 2])
        elif case in ("random bytes", "--fresh-store"):
            path.write_bytes(rng.bytes(len(data)))
        before = sha(path)
        holder = None
        if case == "locked":
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
        t0 = time.monotonic()
        proc, port = start(path, *(["--fresh-store"] if case == "--fresh-store" else []))
        how, message = outcome(proc, port)
        how += f" after {time.monotonic() - t0:.1f} s"
        stop(proc)
        if holder is not None:
            holder.execute("ROLLBACK")
            holder.close()
        aside = [p for p in tmp.iterdir() if p.name.startswith(path.name + ".damaged-")]
        if case == "--fresh-store":
            kept = f"kept aside as {aside[0].name}: " if aside else "not kept aside: "
            kept += "unchanged" if aside and sha(aside[0]) == before else "CHANGED"
        else:
            kept = "unchanged" if sha(path) == before and not aside else "CHANGED"
        rows.append((case, how, message, kept))
    rows.append(("full disk (600 KB tmpfs)", *full_disk(tmp)))
    print(f"damaged stores, {os.cpu_count()} cores, lite")
    for case, how, message, kept in rows:
        print(f"- {case}: {how}\n    says: {message[:300]}\n    file: {kept}")


if __name__ == "__main__":
    main()
