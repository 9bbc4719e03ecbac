"""The live-capture stream: the JSON lines ``sonicverse listen --jsonl`` writes, one per line.

The producer (:mod:`engine.listen`) encodes with :func:`encode`; the consumer (the panel's
Live tab, :mod:`ui.live`) decodes with :func:`decode`. Each line is a JSON object carrying
``"v": LIVE_VERSION`` and is either a window's result::

    {"v": 1, "index": 3, "start_s": 4.0, "end_s": 14.0, "t_end": 812.5, "analysis_ms": 41.2,
     "annotation": {...RegionAnnotation.to_dict()...} | null, "error": null | "why"}

or an event of the source::

    {"v": 1, "event": "overflow" | "stopped" | "finished" | "error", "message": "one line"}

Pure Python, like the rest of ``daw_bridge``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

LIVE_VERSION = 1
"""Version of the line format; :func:`decode` refuses any other."""

EVENT_KINDS: tuple[str, ...] = ("overflow", "stopped", "finished", "error")
"""``overflow``: input frames were lost; ``stopped``: the device went away; ``finished``: a
file source reached its end; ``error``: the listener could not start or failed."""

ENDING_EVENTS: frozenset[str] = frozenset({"stopped", "finished", "error"})
"""Events after which the listener stops."""


class LiveFormatError(ValueError):
    """A line is not a live-capture line of this version (names the field and the value)."""


@dataclass(frozen=True)
class WindowResult:
    """One analysed window.

    Attributes:
        index: the window's number since listening began (gaps mean skipped windows).
        start_s: window start in seconds since listening began.
        end_s: window end in seconds since listening began.
        t_end: ``time.monotonic()`` when the window's last frame was captured (the system-wide
            monotonic clock: the consumer measures latency against it).
        analysis_ms: milliseconds from ``t_end`` to the annotation being ready.
        annotation: a ``RegionAnnotation.to_dict()``, None when the analysis failed.
        error: what went wrong, None on success.
    """

    index: int
    start_s: float
    end_s: float
    t_end: float
    analysis_ms: float
    annotation: dict[str, Any] | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The line's JSON object."""
        return {
            "v": LIVE_VERSION,
            "index": self.index,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "t_end": self.t_end,
            "analysis_ms": self.analysis_ms,
            "annotation": self.annotation,
            "error": self.error,
        }


@dataclass(frozen=True)
class LiveEvent:
    """Something the source tells the user: ``kind`` is one of :data:`EVENT_KINDS`."""

    kind: str
    message: str

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise LiveFormatError(f"event={self.kind!r}; expected one of {', '.join(EVENT_KINDS)}")

    def to_dict(self) -> dict[str, Any]:
        """The line's JSON object."""
        return {"v": LIVE_VERSION, "event": self.kind, "message": self.message}


def encode(item: WindowResult | LiveEvent) -> str:
    """One line (without its newline) for ``item``."""
    return json.dumps(item.to_dict(), allow_nan=False)


def decode(line: str | bytes) -> WindowResult | LiveEvent:
    """The window result or event a line carries.

    Raises:
        LiveFormatError: not JSON, another version, or a field missing or of the wrong type
            (the message names the field and the value).
    """
    try:
        d = json.loads(line)
    except ValueError as exc:
        raise LiveFormatError(f"not a JSON line: {line[:200]!r}") from exc
    if not isinstance(d, dict):
        raise LiveFormatError(f"expected a JSON object, got {d!r:.200}")
    if d.get("v") != LIVE_VERSION:
        raise LiveFormatError(f"v={d.get('v')!r}; this reader knows version {LIVE_VERSION}")
    if "event" in d:
        return LiveEvent(kind=_field(d, "event", str), message=_field(d, "message", str))
    annotation = d.get("annotation")
    if annotation is not None and not isinstance(annotation, dict):
        raise LiveFormatError(f"annotation={annotation!r:.200}; expected an object or null")
    error = d.get("error")
    if error is not None and not isinstance(error, str):
        raise LiveFormatError(f"error={error!r:.200}; expected a string or null")
    return WindowResult(
        index=_field(d, "index", int),
        start_s=_number(d, "start_s"),
        end_s=_number(d, "end_s"),
        t_end=_number(d, "t_end"),
        analysis_ms=_number(d, "analysis_ms"),
        annotation=annotation,
        error=error,
    )


def _field(d: dict[str, Any], name: str, tp: type) -> Any:
    value = d.get(name)
    if not isinstance(value, tp) or isinstance(value, bool):
        raise LiveFormatError(f"{name}={value!r:.200}; expected {tp.__name__}")
    return value


def _number(d: dict[str, Any], name: str) -> float:
    value = d.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LiveFormatError(f"{name}={value!r:.200}; expected a finite number")
    return float(value)
