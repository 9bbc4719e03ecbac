"""engine.store: durable, keyed by samples + fingerprint + params."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from engine import store as store_module
from engine.errors import StoreError
from engine.store import Store, open_store, region_key
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


# Damaged, locked and full stores ---------------------------------------------------------------


def _filled(path: Path, n: int = 300) -> bytes:
    """A closed store of ``n`` annotations (checkpointed: its content is all in the file)."""
    store = Store(path)
    store.put_many([(f"k{i}", annotation(float(i), float(i + 1))) for i in range(n)], source="/f")
    store.close()
    return path.read_bytes()


def _damage(path: Path, how: str) -> None:
    data = _filled(path)
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(len(data)))
    else:
        path.write_bytes(b"")


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty"])
def test_a_damaged_store_is_refused_by_name_and_kept(
    tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "NEW_STORE_WAIT_S", 0.1)
    path = tmp_path / "s.sqlite3"
    _damage(path, how)
    before = path.read_bytes()
    with pytest.raises(StoreError) as err:
        Store(path)
    assert err.value.reason in StoreError.DAMAGED and err.value.code == "store_error"
    assert str(path) in str(err.value) and "--fresh-store" in str(err.value)
    assert path.read_bytes() == before  # refused, untouched
    with pytest.raises(StoreError):
        open_store(path)  # without fresh: the same refusal
    store = open_store(path, fresh=True)
    kept = [p for p in tmp_path.iterdir() if ".damaged-" in p.name]
    assert len(kept) == 1 and kept[0].read_bytes() == before  # kept aside, byte for byte
    store.put("new", annotation(0.0, 1.0), source="/g")
    assert store.count() == 1
    store.close()


def test_the_engine_refuses_a_damaged_store_and_starts_fresh_with_the_flag(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import argparse

    from engine import serve

    path = tmp_path / "s.sqlite3"
    _damage(path, "garbage")
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    assert serve.run(parser.parse_args(["--port", "0", "--store", str(path)])) == 2
    assert "--fresh-store" in caplog.text and "not a database" in caplog.text
    args = parser.parse_args(["--port", "0", "--store", str(path), "--fresh-store"])
    assert args.fresh_store
    opened = open_store(args.store, fresh=args.fresh_store)  # what run() opens
    assert opened.count() == 0 and any(".damaged-" in p.name for p in tmp_path.iterdir())
    opened.close()


def test_a_locked_store_names_the_lock_at_open_and_at_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "LOCK_WAIT_S", 0.2)
    path = tmp_path / "s.sqlite3"
    _filled(path, 3)
    store = Store(path)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process writing, never letting go
    try:
        with pytest.raises(StoreError, match="another process holds it") as err:
            Store(path)
        assert err.value.reason == "locked"
        with pytest.raises(StoreError, match="storing annotations failed") as err:
            store.put("k", annotation(0.0, 1.0), source="/f")
        assert err.value.reason == "locked"
        with pytest.raises(StoreError, match="another process holds it"):
            open_store(path, fresh=True)  # a lock is not damage: nothing is moved
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.put("k", annotation(0.0, 1.0), source="/f")  # the lock is gone: writes again
    assert store.count() == 4 and not any(".damaged-" in p.name for p in tmp_path.iterdir())
    store.close()


def test_a_full_disk_fails_the_write_by_name_and_keeps_what_was_stored(tmp_path: Path) -> None:
    """A full disk, as SQLite sees it: SQLITE_FULL when the file may not grow (the page
    limit gives the same error code a full filesystem does)."""
    path = tmp_path / "s.sqlite3"
    store = Store(path)
    store.put("k0", annotation(0.0, 1.0), source="/f")
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")
    big = [(f"k{i}", annotation(float(i), float(i + 1))) for i in range(1, 400)]
    with pytest.raises(StoreError, match="disk is full") as err:
        store.put_many(big, source="/f")
    assert err.value.reason == "full" and "storing annotations" in str(err.value)
    assert store.count() == 1  # the batch rolled back whole; the earlier write is kept
    store.close()
    reopened = Store(path)
    assert [a.start_s for a in reopened.annotations_for("/f")] == [0.0]
    reopened.close()
