"""The annotation store: SQLite (stdlib, WAL) in the user data dir.

Two tables. The *content cache* (``results``) maps a content key (a hash of the region's
samples + the backend's fingerprint + the parameters) to an annotation, so re-annotating an
unchanged region is a cache hit wherever it sits in whichever file. The *records*
(``records``) say which file asked for what: (absolute file path, region, name) -> content
key and time, written on every annotation, cache hits included, so two files that share
content (silence, a loop, a re-bounced clip) each keep all their regions.

Every write is committed before it returns: a crash loses nothing already written. A store
is checked when it opens (integrity, writable, not a 0-byte file) so a broken one is refused
at start instead of failing every request later. Stores written before the split (one
``annotations`` table keyed by content) are migrated when opened.

Every failure of the database, at open or later (damaged, locked by another process, read-only,
a full disk), is a :class:`~engine.errors.StoreError` naming the file, its ``reason`` and what
to do. A damaged store is never replaced or deleted: :func:`open_store` with ``fresh=True``
(``sonicverse engine --fresh-store``) renames it aside and starts an empty one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.errors import StoreError
from engine.types import SCHEMA_VERSION, Region, RegionAnnotation, TrackNarrative

log = logging.getLogger(__name__)

STORE_ENV = "SONICVERSE_STORE"

STORE_VERSION = 2
"""``PRAGMA user_version`` of the split layout (0 or 1: the single ``annotations`` table)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    cache_key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    json TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    source TEXT NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    name TEXT NOT NULL,
    cache_key TEXT NOT NULL,
    recorded REAL NOT NULL,
    PRIMARY KEY (source, start_s, end_s, name)
);
CREATE TABLE IF NOT EXISTS narratives (
    cache_key TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    json TEXT NOT NULL,
    created REAL NOT NULL
);
"""


def default_path() -> Path:
    """``$SONICVERSE_STORE`` or ``<user data dir>/sonicverse/annotations.sqlite3``."""
    env = os.environ.get(STORE_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("sonicverse", appauthor=False)) / "annotations.sqlite3"


def region_key(samples: np.ndarray, *, sr: int, fingerprint: str, params: str = "") -> str:
    """Cache key of a region: its samples and rate, the backend fingerprint and parameters."""
    # SHA-1 runs on the CPU's SHA extensions: about twice blake2b's speed on 10 s of stereo
    # float32 here, and a cache key needs no collision resistance against an adversary.
    h = hashlib.sha1(usedforsecurity=False)
    h.update(f"{SCHEMA_VERSION}|{fingerprint}|{params}|{sr}|{samples.shape}|".encode())
    h.update(np.ascontiguousarray(samples, dtype=np.float32).data)
    return h.hexdigest()


def narrative_key(keys: Iterable[str], *, fingerprint: str, duration_s: float) -> str:
    """Cache key of a narrative over regions with the given cache keys."""
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{SCHEMA_VERSION}|{fingerprint}|{duration_s:.3f}|".encode())
    for k in keys:
        h.update(k.encode())
    return h.hexdigest()


class Store:
    """Content cache and per-file records, safe to share between threads.

    Args:
        path: the SQLite file (created with its folder); None for :func:`default_path`.

    Raises:
        StoreError: the store cannot be opened, is damaged, locked, read-only or a 0-byte
            file (its ``reason`` and message say which and what to do).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self._db = _open(self.path)
        self._lock = threading.Lock()

    @contextmanager
    def _sql(self, doing: str) -> Iterator[None]:
        """Turn a database failure while ``doing`` something into a :class:`StoreError`."""
        try:
            yield
        except sqlite3.Error as exc:
            raise store_error(self.path, exc, doing=doing) from exc

    def get(self, key: str, *, region: Region | None = None) -> RegionAnnotation | None:
        """The annotation cached under ``key``, moved to ``region``'s position and name if given."""
        with self._lock, self._sql("reading a cached annotation"):
            row = self._db.execute(
                "SELECT json FROM results WHERE cache_key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        ann = RegionAnnotation.from_dict(json.loads(row[0]))
        if region is not None:
            ann = replace(ann, start_s=region.start_s, end_s=region.end_s, name=region.name)
        return ann

    def put(self, key: str, annotation: RegionAnnotation, *, source: str) -> None:
        """Cache ``annotation`` under ``key`` and record it for ``source`` (durable on return)."""
        self.put_many([(key, annotation)], source=source)

    def put_many(self, items: Iterable[tuple[str, RegionAnnotation]], *, source: str) -> None:
        """:meth:`put` for a batch of regions of one file, in one transaction: all of them are
        durable on return, or none (one disk sync per batch instead of one per region)."""
        rows = [(k, a, json.dumps(a.to_dict(), allow_nan=False)) for k, a in items]
        if not rows:
            return
        now = time.time()
        with self._lock, self._sql("storing annotations"), self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for key, annotation, payload in rows:
                self._db.execute(
                    "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)",
                    (key, annotation.backend, payload, now),
                )
                self._record(key, annotation, source=source, now=now)

    def record(self, key: str, region: Region | RegionAnnotation, *, source: str) -> None:
        """Record that ``source``'s ``region`` has the content cached under ``key`` (a cache
        hit for a file that did not ask for this region before)."""
        with self._lock, self._sql("recording an annotation"):
            self._record(key, region, source=source, now=time.time())

    def _record(
        self, key: str, region: Region | RegionAnnotation, *, source: str, now: float
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?, ?)",
            (str(source), region.start_s, region.end_s, region.name, key, now),
        )

    def annotations_for(self, source: str) -> list[RegionAnnotation]:
        """Every annotation recorded for a file, in time order, each at its recorded region."""
        with self._lock, self._sql("listing a file's annotations"):
            rows = self._db.execute(
                "SELECT r.start_s, r.end_s, r.name, c.json FROM records r "
                "JOIN results c ON c.cache_key = r.cache_key "
                "WHERE r.source = ? ORDER BY r.start_s, r.end_s, r.name",
                (str(source),),
            ).fetchall()
        return [
            replace(RegionAnnotation.from_dict(json.loads(j)), start_s=a, end_s=b, name=n)
            for a, b, n, j in rows
        ]

    def get_narrative(self, key: str) -> TrackNarrative | None:
        """The narrative stored under ``key``."""
        with self._lock, self._sql("reading a narrative"):
            row = self._db.execute(
                "SELECT json FROM narratives WHERE cache_key = ?", (key,)
            ).fetchone()
        return None if row is None else TrackNarrative.from_dict(json.loads(row[0]))

    def put_narrative(self, key: str, narrative: TrackNarrative) -> None:
        """Store a narrative (committed on return)."""
        payload = json.dumps(narrative.to_dict(), allow_nan=False)
        with self._lock, self._sql("storing a narrative"):
            self._db.execute(
                "INSERT OR REPLACE INTO narratives VALUES (?, ?, ?, ?)",
                (key, narrative.source, payload, time.time()),
            )

    def count(self) -> int:
        """Number of cached region results (distinct contents)."""
        with self._lock, self._sql("counting annotations"):
            return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def count_records(self) -> int:
        """Number of per-file region records."""
        with self._lock, self._sql("counting records"):
            return int(self._db.execute("SELECT COUNT(*) FROM records").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


HINTS = {
    "empty": "it was truncated, or created by something else",
    "corrupt": "it is damaged",
    "newer": "it was written by a newer engine: upgrade this one, or pass --store elsewhere",
    "readonly": "make it writable, or pass --store elsewhere",
    "locked": "another process holds it (a second engine, a batch run?): stop that process, "
    "or pass --store elsewhere",
    "full": "its disk is full ({free} free): free some space or pass --store elsewhere; what is "
    "already stored is kept",
    "io": "the disk reported an error: check the disk, or pass --store elsewhere",
}
"""What to do, by :attr:`StoreError.reason`."""

FRESH_HINT = (
    "start the engine with --fresh-store to keep it aside as {aside} and begin an empty store, "
    "or restore a backup"
)


def _reason(exc: sqlite3.Error) -> str:
    text = str(exc).lower()
    for needle, reason in (
        ("locked", "locked"),
        ("busy", "locked"),
        ("readonly", "readonly"),
        ("read-only", "readonly"),
        ("full", "full"),
        ("not a database", "corrupt"),
        ("malformed", "corrupt"),
        ("integrity", "corrupt"),
        ("newer", "newer"),
    ):
        if needle in text:
            return reason
    return "io"


def store_error(path: Path, exc: sqlite3.Error | str, *, doing: str) -> StoreError:
    """A :class:`StoreError` for ``path`` saying what failed, why and what to do."""
    reason = "empty" if isinstance(exc, str) else _reason(exc)
    try:
        free = f"{shutil.disk_usage(path.parent).free / 1e6:.1f} MB"
    except OSError:
        free = "unknown"
    hint = HINTS[reason].format(free=free)
    if reason in StoreError.DAMAGED:
        hint += "; " + FRESH_HINT.format(aside=aside_path(path, stamp="<date-time>").name)
    return StoreError(f"annotation store {path}: {doing} failed ({exc}); {hint}", reason=reason)


def aside_path(path: Path, *, stamp: str | None = None) -> Path:
    """Where a damaged store is kept: ``<name>.damaged-<date-time>`` beside it."""
    stamp = stamp or time.strftime("%Y%m%d-%H%M%S")
    return path.with_name(f"{path.name}.damaged-{stamp}")


def move_aside(path: Path) -> Path:
    """Rename a store and its ``-wal`` / ``-shm`` files aside (never deleting anything).

    Returns:
        The new path of the store file.
    """
    target = aside_path(path)
    n = 1
    while target.exists():
        n += 1
        target = aside_path(path, stamp=f"{time.strftime('%Y%m%d-%H%M%S')}-{n}")
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            os.replace(extra, target.with_name(target.name + suffix))
    os.replace(path, target)
    return target


def open_store(path: str | os.PathLike[str] | None = None, *, fresh: bool = False) -> Store:
    """Open a store; with ``fresh``, a damaged one (:attr:`StoreError.DAMAGED`) is renamed
    aside with :func:`move_aside` and an empty store begins in its place.

    Raises:
        StoreError: the store cannot be opened (and ``fresh`` does not apply to its reason).
    """
    try:
        return Store(path)
    except StoreError as exc:
        if not fresh or exc.reason not in StoreError.DAMAGED:
            raise
        damaged = Path(path) if path is not None else default_path()
        kept = move_aside(damaged)
        log.warning(
            "annotation store %s is damaged (%s); kept as %s, starting an empty store",
            damaged,
            exc.reason,
            kept,
        )
        return Store(damaged)


LOCK_WAIT_S = 5.0
"""How long an open or a write waits for another process's lock before a ``locked`` error."""

NEW_STORE_WAIT_S = 2.0
"""How long an empty store file may take to get its header: another process (a Ray actor, a
second engine) may have just created it."""


def _grows(path: Path) -> bool:
    """Whether an empty file gets content within :data:`NEW_STORE_WAIT_S` (a store being
    created by someone else) rather than staying empty (a truncated store)."""
    deadline = time.monotonic() + NEW_STORE_WAIT_S
    while time.monotonic() < deadline:
        time.sleep(0.02)
        try:
            if path.stat().st_size > 0:
                return True
        except FileNotFoundError:
            return True  # moved away: the open below creates a new store
    return False


def _open(path: Path) -> sqlite3.Connection:
    """Open, check, migrate and create the store at ``path``.

    Raises:
        StoreError: naming the file, what is wrong with it and what to do.
    """
    if path.is_file() and path.stat().st_size == 0 and not _grows(path):
        raise store_error(path, "a 0-byte file, not a store", doing="opening")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=LOCK_WAIT_S
        )
    except OSError as exc:
        raise StoreError(
            f"annotation store {path}: cannot open ({exc}); pass --store elsewhere", reason="io"
        ) from exc
    except sqlite3.Error as exc:
        raise store_error(path, exc, doing="opening") from exc
    try:
        check = db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {check}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > STORE_VERSION:
            raise sqlite3.DatabaseError(
                f"store version {version} is newer than this engine's ({STORE_VERSION})"
            )
        db.execute("BEGIN IMMEDIATE")  # also proves the store is writable
        try:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            _migrate(db)
            db.execute(f"PRAGMA user_version = {STORE_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        db.close()
        raise store_error(path, exc, doing="opening") from exc
    return db


def _migrate(db: sqlite3.Connection) -> None:
    """Move a pre-split store's ``annotations`` rows into ``results`` and ``records``."""
    old = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'annotations'"
    ).fetchone()
    if old is None:
        return
    rows = db.execute(
        "SELECT cache_key, source, start_s, end_s, backend, json, created FROM annotations"
    ).fetchall()
    for key, source, start_s, end_s, backend, payload, created in rows:
        name = json.loads(payload).get("name", "")
        db.execute(
            "INSERT OR IGNORE INTO results VALUES (?, ?, ?, ?)", (key, backend, payload, created)
        )
        db.execute(
            "INSERT OR IGNORE INTO records VALUES (?, ?, ?, ?, ?, ?)",
            (source, start_s, end_s, name, key, created),
        )
    db.execute("DROP TABLE annotations")
    log.warning("annotation store migrated to the split layout: %d annotations kept", len(rows))
