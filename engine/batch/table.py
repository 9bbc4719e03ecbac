"""The batch's Parquet table: one row per region, typed columns, failed jobs included.

The table is written as a stream (:class:`TableWriter`): rows arrive one outcome at a time
and leave in row groups of :data:`ROW_GROUP_ROWS`, so the writer's memory does not grow with
the number of files.

Columns (:data:`COLUMNS`): ``key``/``tempo_bpm`` are the track-level view (what the narrative
says of the region), ``region_key`` the region's own estimate; list columns hold tag labels
in rank order; ``error`` is null for annotated regions and the message for a failed job (whose
other measurement columns are null).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from engine.batch.worker import Outcome

TABLE_NAME = "annotations.parquet"
ROW_GROUP_ROWS = 1024
"""Rows per Parquet row group (and the most rows a :class:`TableWriter` holds)."""

COLUMNS: tuple[tuple[str, str], ...] = (
    ("file", "string"),
    ("start_s", "float64"),
    ("end_s", "float64"),
    ("name", "string"),
    ("duration_s", "float64"),
    ("silent", "bool"),
    ("key", "string"),
    ("key_confidence", "float64"),
    ("region_key", "string"),
    ("region_key_confidence", "float64"),
    ("tempo_bpm", "float64"),
    ("tempo_confidence", "float64"),
    ("loudness_lufs", "float64"),
    ("peak_dbfs", "float64"),
    ("vocals", "string"),
    ("vocals_confidence", "float64"),
    ("instruments", "list<string>"),
    ("genres", "list<string>"),
    ("moods", "list<string>"),
    ("caption", "string"),
    ("flags", "list<string>"),
    ("preset", "string"),
    ("backend", "string"),
    ("error", "string"),
)
"""Column name and Arrow type, in table order."""


def schema() -> pa.Schema:
    """The Arrow schema of :data:`COLUMNS`."""
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "list<string>": pa.list_(pa.string()),
    }
    return pa.schema([(name, types[t]) for name, t in COLUMNS])


def _order(r: dict[str, Any]) -> tuple[float, float]:
    return (r.get("start_s") or 0.0, r.get("end_s") or 0.0)


def rows(outcomes: Iterable[Outcome]) -> list[dict[str, Any]]:
    """All rows of the outcomes, sorted by file, then span (a stable order whatever ran them)."""
    out = [r for o in outcomes for r in o.rows]
    return sorted(out, key=lambda r: (r["file"], *_order(r)))


def ordered_rows(outcomes: Iterable[Outcome]) -> Iterator[dict[str, Any]]:
    """The rows of outcomes that arrive grouped by file, each file's rows sorted by span:
    the order of :func:`rows`, holding one file's rows at a time."""
    group: list[dict[str, Any]] = []
    for o in outcomes:
        for r in o.rows:
            if group and r["file"] != group[0]["file"]:
                yield from sorted(group, key=_order)
                group = []
            group.append(r)
    yield from sorted(group, key=_order)


def to_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """An Arrow table with :func:`schema`; missing keys become nulls."""
    import pyarrow as pa

    names = [name for name, _ in COLUMNS]
    return pa.Table.from_pylist([{n: r.get(n) for n in names} for r in rows], schema=schema())


def write(rows: Iterable[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write the rows as Parquet, streamed in row groups (atomically: a reader never sees
    half a table)."""
    with TableWriter(path) as writer:
        for row in rows:
            writer.add(row)
    return writer.path


class TableWriter:
    """A Parquet table written as rows arrive, in row groups of ``row_group_rows``.

    The rows go to ``<path>.tmp``; :meth:`close` moves it to ``path`` in one step, so a
    reader sees the previous table or the new one, never half of one. Used as a context
    manager, an exception discards the temporary file and leaves the previous table.

    Args:
        path: the table's file.
        row_group_rows: rows per row group (the most rows held in memory).
    """

    def __init__(self, path: str | os.PathLike[str], *, row_group_rows: int = ROW_GROUP_ROWS):
        import pyarrow.parquet as pq

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows = 0
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self._writer: pq.ParquetWriter = pq.ParquetWriter(self._tmp, schema())
        self._buffer: list[dict[str, Any]] = []
        self._group = row_group_rows

    def add(self, row: dict[str, Any]) -> None:
        """Append one row (missing columns become nulls)."""
        self._buffer.append(row)
        self.rows += 1
        if len(self._buffer) >= self._group:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._writer.write_table(to_table(self._buffer), row_group_size=self._group)
            self._buffer = []

    def close(self) -> Path:
        """Write what is buffered and put the table in place."""
        self._flush()
        self._writer.close()
        os.replace(self._tmp, self.path)
        return self.path

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
            return
        self._writer.close()
        self._tmp.unlink(missing_ok=True)
