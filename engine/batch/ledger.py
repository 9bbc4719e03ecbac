"""The batch ledger: which jobs are finished, with their rows (SQLite in the output folder).

A job is written to the ledger when it finishes, committed before the next one is recorded,
so a crash or Ctrl-C loses nothing finished. A job is *done* for a rerun when the ledger holds
it as succeeded for the same file size, modification time and preset; failed jobs are tried
again (the file may have been fixed). The annotation store still caches every region, so a
job redone after a change to another file costs only what changed.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from engine.batch.jobs import Job
from engine.batch.worker import Outcome
from engine.errors import EngineError

LEDGER_NAME = "batch-ledger.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job TEXT PRIMARY KEY,
    size INTEGER,
    mtime_ns INTEGER,
    preset TEXT NOT NULL,
    ok INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    finished REAL NOT NULL
)
"""


def file_identity(path: str) -> tuple[int | None, int | None]:
    """``(size, mtime_ns)`` of a file, ``(None, None)`` when it cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None, None
    return st.st_size, st.st_mtime_ns


class Ledger:
    """Finished jobs of the batches written to one output folder.

    Args:
        out: the output folder (created if missing).

    Raises:
        EngineError: the ledger cannot be opened (names the file and the reason).
    """

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.path = Path(out) / LEDGER_NAME
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise EngineError(f"batch ledger {self.path}: cannot open ({exc})") from exc

    def done(self, jobs: Iterable[Job], *, preset: str) -> set[str]:
        """Keys of the jobs already finished successfully for their file as it is now."""
        finished = {
            job: (size, mtime)
            for job, size, mtime in self._db.execute(
                "SELECT job, size, mtime_ns FROM jobs WHERE ok = 1 AND preset = ?", (preset,)
            )
        }
        return {
            j.key for j in jobs if j.key in finished and finished[j.key] == file_identity(j.audio)
        }

    def record(self, outcome: Outcome, *, preset: str) -> None:
        """Record a finished job (committed on return)."""
        size, mtime = file_identity(outcome.job.audio)
        self._db.execute(
            "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                outcome.job.key,
                size,
                mtime,
                preset,
                int(outcome.ok),
                outcome.to_json(),
                time.time(),
            ),
        )

    def iter_outcomes(self, jobs: Iterable[Job]) -> Iterator[Outcome]:
        """The recorded outcomes of ``jobs``, one at a time, ordered by file, then span.

        The keys go to a temporary table and the outcomes come back through a cursor that
        SQLite sorts (spilling to disk), so memory does not grow with the number of jobs.
        """
        db = self._db
        db.execute("CREATE TEMP TABLE IF NOT EXISTS wanted (job TEXT PRIMARY KEY)")
        db.execute("BEGIN")
        db.execute("DELETE FROM wanted")
        db.executemany("INSERT OR IGNORE INTO wanted VALUES (?)", ((j.key,) for j in jobs))
        db.execute("COMMIT")
        cursor = db.execute(
            "SELECT outcome FROM jobs JOIN wanted USING (job) ORDER BY "
            "json_extract(outcome, '$.job.audio'), "
            "coalesce(json_extract(outcome, '$.job.start_s'), 0), "
            "coalesce(json_extract(outcome, '$.job.end_s'), 0)"
        )
        for (text,) in cursor:
            yield Outcome.from_json(text)

    def close(self) -> None:
        """Close the database."""
        self._db.close()
