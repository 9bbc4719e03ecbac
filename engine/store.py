"""The annotation store: SQLite (stdlib, WAL) in the user data dir.

Rows are keyed by a hash of the region's samples + the backend's fingerprint + the
parameters, so re-annotating an unchanged region is a cache hit wherever it sits in
whichever file. Every :meth:`Store.put` is committed before it returns: a crash loses
nothing already written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.errors import EngineError
from engine.types import SCHEMA_VERSION, Region, RegionAnnotation, TrackNarrative

log = logging.getLogger(__name__)

STORE_ENV = "SONICVERSE_STORE"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS annotations (
    cache_key TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    backend TEXT NOT NULL,
    json TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS annotations_source ON annotations(source, start_s);
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
    """Annotation cache and record, safe to share between threads.

    Args:
        path: the SQLite file (created with its folder); None for :func:`default_path`.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise EngineError(f"annotation store {self.path}: cannot open ({exc})") from exc
        self._lock = threading.Lock()

    def get(self, key: str, *, region: Region | None = None) -> RegionAnnotation | None:
        """The annotation stored under ``key``, moved to ``region``'s position and name if given."""
        with self._lock:
            row = self._db.execute(
                "SELECT json FROM annotations WHERE cache_key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        ann = RegionAnnotation.from_dict(json.loads(row[0]))
        if region is not None:
            ann = replace(ann, start_s=region.start_s, end_s=region.end_s, name=region.name)
        return ann

    def put(self, key: str, annotation: RegionAnnotation, *, source: str) -> None:
        """Store ``annotation`` under ``key`` (committed and durable on return)."""
        payload = json.dumps(annotation.to_dict(), allow_nan=False)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO annotations VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    source,
                    annotation.start_s,
                    annotation.end_s,
                    annotation.backend,
                    payload,
                    time.time(),
                ),
            )

    def annotations_for(self, source: str) -> list[RegionAnnotation]:
        """Every annotation recorded for a file, in time order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT json FROM annotations WHERE source = ? ORDER BY start_s, end_s",
                (str(source),),
            ).fetchall()
        return [RegionAnnotation.from_dict(json.loads(r[0])) for r in rows]

    def get_narrative(self, key: str) -> TrackNarrative | None:
        """The narrative stored under ``key``."""
        with self._lock:
            row = self._db.execute(
                "SELECT json FROM narratives WHERE cache_key = ?", (key,)
            ).fetchone()
        return None if row is None else TrackNarrative.from_dict(json.loads(row[0]))

    def put_narrative(self, key: str, narrative: TrackNarrative) -> None:
        """Store a narrative (committed on return)."""
        payload = json.dumps(narrative.to_dict(), allow_nan=False)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO narratives VALUES (?, ?, ?, ?)",
                (key, narrative.source, payload, time.time()),
            )

    def count(self) -> int:
        """Number of stored region annotations."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM annotations").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
