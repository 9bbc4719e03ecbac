"""engine.store: durable, keyed by samples + fingerprint + params."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import numpy as np

from engine.store import Store, region_key
from engine.types import RegionAnnotation
from tests.engine.helpers import annotation


def test_round_trip_and_reposition(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    a = annotation(0.0, 10.0, vocals="female")
    store.put("k1", a, source="/x.wav")
    assert store.get("k1") == a
    from engine.types import Region

    moved = store.get("k1", region=Region(20.0, 30.0, "chorus"))
    assert moved is not None and (moved.start_s, moved.end_s, moved.name) == (20.0, 30.0, "chorus")
    assert moved.key == a.key
    assert store.get("missing") is None
    assert store.annotations_for("/x.wav") == [a]


def test_key_depends_on_samples_fingerprint_and_params() -> None:
    x = np.random.default_rng(0).standard_normal((2, 1000)).astype(np.float32)
    k = region_key(x, sr=44100, fingerprint="lite:1", params="p")
    assert k == region_key(x.copy(), sr=44100, fingerprint="lite:1", params="p")
    y = x.copy()
    y[1, 999] += 1e-3
    assert k != region_key(y, sr=44100, fingerprint="lite:1", params="p")
    assert k != region_key(x, sr=48000, fingerprint="lite:1", params="p")
    assert k != region_key(x, sr=44100, fingerprint="lite:2", params="p")
    assert k != region_key(x, sr=44100, fingerprint="lite:1", params="q")


def _writer(path: str, n: int, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    store = Store(path)
    for i in range(n):
        store.put(f"k{i}", annotation(float(i), float(i + 1)), source="/y.wav")
        if i == n // 2:
            ready.set()
    ready.set()
    signal.pause()


def test_killed_writer_loses_nothing_it_wrote(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sqlite3")
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_writer, args=(path, 200, ready))
    proc.start()
    ready.wait(30)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    store = Store(path)
    got = store.annotations_for("/y.wav")
    assert len(got) >= 101
    assert all(isinstance(a, RegionAnnotation) for a in got)
    assert [a.start_s for a in got] == sorted(a.start_s for a in got)


def _batch_writer(path: str, ready: multiprocessing.synchronize.Event) -> None:  # type: ignore[name-defined]
    store = Store(path)
    store.put_many(
        [(f"b{i}", annotation(float(i), float(i + 1))) for i in range(8)], source="/z.wav"
    )
    ready.set()
    signal.pause()


def test_a_batch_is_durable_when_put_many_returns(tmp_path: Path) -> None:
    """The pipeline stores a batch of regions in one transaction: killed right after
    ``put_many`` returns, the writer has lost none of the batch."""
    path = str(tmp_path / "s.sqlite3")
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_batch_writer, args=(path, ready))
    proc.start()
    assert ready.wait(30)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    got = Store(path).annotations_for("/z.wav")
    assert [a.start_s for a in got] == [float(i) for i in range(8)]
    Store(path).put_many([], source="/z.wav")  # nothing to write is not an error
