"""The default region plan: how a file is cut into regions when the user gives none.

One function for the engine, the CLI and the panel, so a file is cut the same way wherever it
is annotated. Pure Python (no numpy), like the rest of ``daw_bridge``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

DEFAULT_LENGTH_S = 10.0  # SonicVerse's chunk length
DEFAULT_MIN_TAIL_S = 5.0  # a last piece shorter than this joins the region before it


def plan_regions(
    duration_s: float,
    *,
    length_s: float = DEFAULT_LENGTH_S,
    min_tail_s: float = DEFAULT_MIN_TAIL_S,
    downbeats: Sequence[float] = (),
) -> list[tuple[float, float]]:
    """Cut ``[0, duration_s)`` into consecutive ``(start_s, end_s)`` spans of ``length_s``.

    A last piece shorter than ``min_tail_s`` joins the span before it (so an 11 s file is one
    11 s region, never 10 s + 1 s); a file shorter than ``length_s`` is one region. With
    ``downbeats`` (the beat grid's bar lines), each cut moves to the bar line nearest its
    place, so regions start on downbeats and are about ``length_s`` long (a cut with no bar
    line within half a region of it stays where it was).

    Raises:
        ValueError: naming the value when ``duration_s`` or ``length_s`` is not a positive
            finite number or ``min_tail_s`` is negative.
    """
    for name, value in (("duration_s", duration_s), ("length_s", length_s)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"cannot plan regions: {name}={value}; expected a finite number > 0")
    if not (math.isfinite(min_tail_s) and min_tail_s >= 0):
        raise ValueError(f"cannot plan regions: min_tail_s={min_tail_s}; expected >= 0")
    n = max(1, math.ceil(duration_s / length_s - 1e-9))
    bounds = [i * length_s for i in range(n)] + [duration_s]
    if downbeats:
        bounds = [0.0]
        bars = sorted(float(d) for d in downbeats if 0.0 < d < duration_s)
        while duration_s - bounds[-1] > length_s:
            target = bounds[-1] + length_s
            near = [d for d in bars if abs(d - target) <= length_s / 2 and d > bounds[-1] + 1.0]
            bounds.append(min(near, key=lambda d: abs(d - target)) if near else target)
        bounds.append(duration_s)
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < min_tail_s:
        del bounds[-2]
    return [(round(a, 6), round(b, 6)) for a, b in itertools.pairwise(bounds)]


DEFAULT_MAX_S = 30.0  # the longest region of a section of the form


def plan_form_regions(
    sections: Sequence[tuple[float, float]],
    *,
    max_s: float = DEFAULT_MAX_S,
    downbeats: Sequence[float] = (),
) -> list[tuple[float, float]]:
    """A region per section of the track's form, a section longer than ``max_s`` split into
    pieces of at most ``max_s``, as even as its bar lines (``downbeats``) allow: each cut is
    the bar line nearest its even place that keeps both sides within ``max_s`` (an even cut
    where no bar line does).

    Args:
        sections: the form's ``(start_s, end_s)`` spans, in time order.
        max_s: the longest piece, in seconds.
        downbeats: the beat grid's bar lines.

    Raises:
        ValueError: naming the value when ``max_s`` is not a positive finite number or a
            section ends before it starts.
    """
    if not (math.isfinite(max_s) and max_s > 0):
        raise ValueError(f"cannot plan form regions: max_s={max_s}; expected a finite number > 0")
    bars = sorted(float(d) for d in downbeats)
    out: list[tuple[float, float]] = []
    for start, end in sections:
        if not end > start:
            raise ValueError(f"cannot plan form regions: section ({start}, {end}) is empty")
        pieces = max(1, math.ceil((end - start) / max_s - 1e-9))
        bounds = [start]
        for i in range(1, pieces):
            left = pieces - i  # pieces still to cut after this one
            target = bounds[-1] + (end - bounds[-1]) / (left + 1)
            ok = [
                d
                for d in bars
                if bounds[-1] < d < end and d - bounds[-1] <= max_s and end - d <= left * max_s
            ]
            bounds.append(min(ok, key=lambda d: abs(d - target)) if ok else target)
        bounds.append(end)
        out.extend((round(float(a), 6), round(float(b), 6)) for a, b in itertools.pairwise(bounds))
    return out
