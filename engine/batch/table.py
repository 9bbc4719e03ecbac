"""The batch's Parquet table: one row per region, typed columns, failed jobs included.

Columns (:data:`COLUMNS`): ``key``/``tempo_bpm`` are the track-level view (what the narrative
says of the region), ``region_key`` the region's own estimate; list columns hold tag labels
in rank order; ``error`` is null for annotated regions and the message for a failed job (whose
other measurement columns are null).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from engine.batch.worker import Outcome

TABLE_NAME = "annotations.parquet"

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


def rows(outcomes: Iterable[Outcome]) -> list[dict[str, Any]]:
    """All rows of the outcomes, sorted by file, then span (a stable order whatever ran them)."""
    out = [r for o in outcomes for r in o.rows]
    return sorted(out, key=lambda r: (r["file"], r.get("start_s") or 0.0, r.get("end_s") or 0.0))


def to_table(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """An Arrow table with :func:`schema`; missing keys become nulls."""
    import pyarrow as pa

    names = [name for name, _ in COLUMNS]
    return pa.Table.from_pylist([{n: r.get(n) for n in names} for r in rows], schema=schema())


def write(rows: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Write the rows as Parquet (atomically: a reader never sees half a table)."""
    import pyarrow.parquet as pq

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    pq.write_table(to_table(rows), tmp)
    os.replace(tmp, p)
    return p
