"""The rule-based narrative: merge neighbouring regions that agree, name what changes.

Used by the `lite` backend, and by `sonicverse` when no LLM is loaded. Sections break where
the key, the silence state or the vocals change, where the tempo moves by more than
``TEMPO_CHANGE`` or the loudness by more than ``LOUDNESS_JUMP_LU``. A single region whose key
disagrees with two agreeing neighbours, with lower confidence than both, is treated as an
outlier and absorbed (SonicVerse's chaining drops such chunks too).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from engine.captions import loudness_word
from engine.types import NarrativeSection, RegionAnnotation, TrackNarrative

TEMPO_CHANGE = 0.06  # relative tempo change that starts a new section
LOUDNESS_JUMP_LU = 6.0  # loudness change (LU) between neighbours that starts a new section
BUILD_UP_LU = 6.0  # loudness rise inside a section reported as a build-up


def timestamp(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for a time in seconds, rounded to the nearest second."""
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


@dataclass
class _Run:
    regions: list[RegionAnnotation] = field(default_factory=list)

    @property
    def first(self) -> RegionAnnotation:
        return self.regions[0]


def _vocal_label(a: RegionAnnotation) -> str | None:
    return a.vocals.label if a.vocals is not None else None


def _smooth_keys(regions: list[RegionAnnotation]) -> list[RegionAnnotation]:
    out = list(regions)
    for i in range(1, len(out) - 1):
        prev, cur, nxt = out[i - 1], out[i], out[i + 1]
        if not (prev.key and cur.key and nxt.key) or prev.key.key != nxt.key.key:
            continue
        if cur.key.key != prev.key.key and cur.key.confidence < min(
            prev.key.confidence, nxt.key.confidence
        ):
            out[i] = replace(cur, key=replace(cur.key, key=prev.key.key))
    return out


def _breaks(prev: RegionAnnotation, cur: RegionAnnotation) -> list[str]:
    """What changes between two neighbouring regions (empty: they agree)."""
    if prev.silent != cur.silent:
        return ["silence"] if cur.silent else ["the music returns"]
    if cur.silent:
        return []
    events: list[str] = []
    if prev.key and cur.key and prev.key.key != cur.key.key:
        events.append(f"the key moves to {cur.key.key}")
    pv, cv = _vocal_label(prev), _vocal_label(cur)
    if pv is not None and cv is not None and pv != cv:
        if pv == "none":
            events.append(f"{cv} vocals enter")
        elif cv == "none":
            events.append("the vocals drop out")
        else:
            events.append(f"the lead vocal changes to {cv}")
    if prev.tempo_bpm and cur.tempo_bpm:
        ratio = cur.tempo_bpm / prev.tempo_bpm
        if abs(ratio - 1.0) > TEMPO_CHANGE:
            verb = "rises" if ratio > 1 else "falls"
            events.append(f"the tempo {verb} to {cur.tempo_bpm:.0f} BPM")
    if prev.loudness_lufs is not None and cur.loudness_lufs is not None:
        delta = cur.loudness_lufs - prev.loudness_lufs
        if delta >= LOUDNESS_JUMP_LU:
            events.append(f"it gets louder ({delta:+.0f} LU to {cur.loudness_lufs:.0f} LUFS)")
        elif delta <= -LOUDNESS_JUMP_LU:
            events.append(f"it drops back ({delta:+.0f} LU to {cur.loudness_lufs:.0f} LUFS)")
    return events


def _describe(run: list[RegionAnnotation]) -> str:
    first = run[0]
    if first.silent:
        return "silence"
    parts = [first.key.key if first.key else "no clear key"]
    tempi = [r.tempo_bpm for r in run if r.tempo_bpm]
    if tempi:
        parts.append(f"around {sorted(tempi)[len(tempi) // 2]:.0f} BPM")
    vocals = _vocal_label(first)
    if vocals is not None:
        parts.append("instrumental" if vocals == "none" else f"{vocals} vocals")
    instruments = [t.label for t in first.instruments[:2]]
    if instruments:
        parts.append(" and ".join(instruments))
    levels = [r.loudness_lufs for r in run if r.loudness_lufs is not None]
    if levels:
        lo_i = levels.index(min(levels))
        if len(levels) >= 3 and max(levels[lo_i:]) - levels[lo_i] >= BUILD_UP_LU:
            parts.append(f"building from {levels[lo_i]:.0f} to {max(levels[lo_i:]):.0f} LUFS")
        else:
            mean = sum(levels) / len(levels)
            parts.append(f"{loudness_word(mean)} ({mean:.0f} LUFS)")
    return ", ".join(parts)


def rule_based(
    annotations: Sequence[RegionAnnotation], *, source: str, duration_s: float, backend: str
) -> TrackNarrative:
    """Narrate a file from its region annotations.

    Args:
        annotations: the file's regions (any order; sorted by start here).
        source: the file's path, echoed in the result.
        duration_s: the span narrated, in seconds.
        backend: the backend name recorded in the result.

    Returns:
        A narrative such as ``"0:00-0:20 C major, around 120 BPM, loud (-14 LUFS); at 0:20
        the key moves to A minor: 0:20-0:40 A minor, ..."`` with one section per run of
        agreeing regions.
    """
    regions = _smooth_keys(sorted(annotations, key=lambda a: a.start_s))
    if not regions:
        return TrackNarrative(source, duration_s, "No regions were annotated.", (), backend)
    runs: list[tuple[list[RegionAnnotation], list[str]]] = [([regions[0]], [])]
    for prev, cur in itertools.pairwise(regions):
        events = _breaks(prev, cur)
        if events:
            runs.append(([cur], events))
        else:
            runs[-1][0].append(cur)
    sections: list[NarrativeSection] = []
    sentences: list[str] = []
    for run, events in runs:
        start, end = run[0].start_s, run[-1].end_s
        text = f"{timestamp(start)}-{timestamp(end)} {_describe(run)}"
        spoken = [e for e in events if e != "silence"]  # the section text already says so
        if spoken:
            text = f"at {timestamp(start)} {', '.join(spoken)}: {text}"
        key = run[0].key.key if run[0].key and not run[0].silent else None
        sections.append(NarrativeSection(start, end, text, key, tuple(events)))
        sentences.append(text)
    prose = "; ".join(sentences)
    return TrackNarrative(
        source, duration_s, prose[:1].upper() + prose[1:] + ".", tuple(sections), backend
    )
