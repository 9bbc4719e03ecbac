"""The clock format of the live view and the panel: ``m:ss.s``. Pure Python."""

from __future__ import annotations


def clock(seconds: float) -> str:
    """``m:ss.s`` for a time in seconds (negative times read as 0)."""
    m, s = divmod(max(0.0, seconds), 60.0)
    return f"{int(m)}:{s:04.1f}"
