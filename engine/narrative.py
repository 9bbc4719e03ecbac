"""The rule-based narrative: the track's decoded story, one section per stretch that agrees.

Used by the `lite` backend, and by `sonicverse` when no LLM is loaded. The regions are first
resolved over the whole track (:func:`engine.track.resolve`): key, tempo and vocals are
decoded with a penalty per change, so a section breaks only where a change is sustained and
confident. Every event carries a confidence; key, tempo and vocal changes below the preset's
``min_event_confidence`` were already merged away by the decoder, and a loudness jump is said
when its confidence (``|jump| / (2 x LOUDNESS_JUMP_LU)``) reaches the same threshold, which is
a jump of ``LOUDNESS_JUMP_LU`` at the default 0.5. Silence starting or ending is certain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from engine.captions import loudness_word, said_progression
from engine.presets import AnalysisSettings, Preset, TrackSettings
from engine.track import GENDER_CONFIDENCE, gender_share, resolve
from engine.types import (
    BeatGrid,
    NarrativeEvent,
    NarrativeSection,
    RegionAnnotation,
    Section,
    TrackNarrative,
)

LOUDNESS_JUMP_LU = 6.0  # loudness change (LU) between neighbours said at confidence 0.5
BUILD_UP_LU = 6.0  # loudness rise inside a section reported as a build-up


def timestamp(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for a time in seconds, rounded to the nearest second."""
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _vocal_label(a: RegionAnnotation) -> str | None:
    return a.vocals.label if a.vocals is not None else None


def vocals_phrase(run: Sequence[RegionAnnotation]) -> str | None:
    """How a run of regions' vocals are told: "instrumental", "female vocals", "male vocals",
    or plain "vocals" when P(that gender | vocals), averaged over the run, is under
    :data:`engine.track.GENDER_CONFIDENCE`; None when the regions carry no vocals estimate."""
    label = _vocal_label(run[0])
    if label is None:
        return None
    if label == "none":
        return "instrumental"
    shares = [gender_share(replace(r.vocals, label=label)) for r in run if r.vocals is not None]
    sure = sum(shares) / len(shares) >= GENDER_CONFIDENCE
    return f"{label} vocals" if sure else "vocals"


def _loudness_event(prev: RegionAnnotation, cur: RegionAnnotation) -> NarrativeEvent | None:
    if prev.loudness_lufs is None or cur.loudness_lufs is None:
        return None
    delta = cur.loudness_lufs - prev.loudness_lufs
    conf = round(min(1.0, abs(delta) / (2 * LOUDNESS_JUMP_LU)), 3)
    if delta > 0:
        text = f"it gets louder ({delta:+.0f} LU to {cur.loudness_lufs:.0f} LUFS)"
    else:
        text = f"it drops back ({delta:+.0f} LU to {cur.loudness_lufs:.0f} LUFS)"
    return NarrativeEvent("loudness", text, conf)


def events_between(
    prev: RegionAnnotation,
    cur: RegionAnnotation,
    decoded: Sequence[NarrativeEvent],
    *,
    min_confidence: float,
) -> list[NarrativeEvent]:
    """The events said where ``cur`` follows ``prev`` (empty: they belong to one section)."""
    if prev.silent != cur.silent:
        text = "silence" if cur.silent else "the music returns"
        return [NarrativeEvent("silence", text, 1.0)]
    if cur.silent:
        return []
    events = [e for e in decoded if e.confidence >= min_confidence]
    loud = _loudness_event(prev, cur)
    if loud is not None and loud.confidence >= min_confidence:
        events.append(loud)
    return events


def _describe(run: list[RegionAnnotation]) -> str:
    first = run[0]
    if first.silent:
        return "silence"
    parts = [first.key.key if first.key else "no clear key"]
    if first.key is not None:
        chords = [c for r in run for c in r.chords]
        said = said_progression(chords, first.key.key, run[-1].end_s - first.start_s)
        if said:
            parts[0] = f"a {said} progression in {first.key.key}"
    tempi = [r.tempo_bpm for r in run if r.tempo_bpm]
    if tempi:
        parts.append(f"around {sorted(tempi)[len(tempi) // 2]:.0f} BPM")
    vocals = vocals_phrase(run)
    if vocals is not None:
        parts.append(vocals)
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


def preset_narrative(
    annotations: Sequence[RegionAnnotation],
    *,
    preset: Preset,
    source: str,
    duration_s: float,
    backend: str,
    grid: BeatGrid | None = None,
    form: Sequence[Section] = (),
) -> TrackNarrative:
    """:func:`rule_based` with a preset's ``[track]`` and ``[analysis]`` settings."""
    return rule_based(
        annotations,
        source=source,
        duration_s=duration_s,
        backend=backend,
        settings=preset.track,
        analysis=preset.analysis,
        grid=grid,
        form=form,
    )


def rule_based(
    annotations: Sequence[RegionAnnotation],
    *,
    source: str,
    duration_s: float,
    backend: str,
    settings: TrackSettings | None = None,
    analysis: AnalysisSettings | None = None,
    grid: BeatGrid | None = None,
    form: Sequence[Section] = (),
) -> TrackNarrative:
    """Narrate a file from its region annotations (by section when ``form`` is given:
    :func:`by_section`).

    Args:
        annotations: the file's regions (any order; raw or already resolved).
        source: the file's path, echoed in the result.
        duration_s: the span narrated, in seconds.
        backend: the backend name recorded in the result.
        settings: track decoding settings (the preset's ``[track]``); defaults when None.
        analysis: the preset's analysis settings (tempo range and prior); defaults when None.
        grid: the track's beat grid: its tempo is the narrative's (see :func:`resolve`).
        form: the track's sections; the story is then told section by section.

    Returns:
        A narrative such as ``"0:00-0:20 C major, around 120 BPM, loud (-14 LUFS); at 0:20
        the key moves to A minor: 0:20-0:40 A minor, ..."`` with one section per stretch of
        regions between two said events.
    """
    cfg = settings or TrackSettings()
    res = resolve(annotations, settings=cfg, analysis=analysis, grid=grid)
    regions = list(res.annotations)
    if not regions:
        return TrackNarrative(source, duration_s, "No regions were annotated.", (), backend)
    if form:
        return by_section(
            regions,
            res.changes,
            form,
            source=source,
            duration_s=duration_s,
            backend=backend,
            min_confidence=cfg.min_event_confidence,
        )
    runs: list[tuple[list[RegionAnnotation], list[NarrativeEvent]]] = [([regions[0]], [])]
    for i in range(1, len(regions)):
        prev, cur = regions[i - 1], regions[i]
        events = events_between(
            prev, cur, res.changes.get(i, ()), min_confidence=cfg.min_event_confidence
        )
        if events:
            runs.append(([cur], events))
        else:
            runs[-1][0].append(cur)
    sections: list[NarrativeSection] = []
    sentences: list[str] = []
    for run, events in runs:
        start, end = run[0].start_s, run[-1].end_s
        text = f"{timestamp(start)}-{timestamp(end)} {_describe(run)}"
        # a section of silence says so itself; the music returning is said
        spoken = [e.text for e in events if not (e.kind == "silence" and run[0].silent)]
        if spoken:
            text = f"at {timestamp(start)} {', '.join(spoken)}: {text}"
        key = run[0].key.key if run[0].key and not run[0].silent else None
        sections.append(NarrativeSection(start, end, text, key, tuple(events)))
        sentences.append(text)
    prose = "; ".join(sentences)
    return TrackNarrative(
        source, duration_s, prose[:1].upper() + prose[1:] + ".", tuple(sections), backend
    )


# A section holding no region's middle is described by the regions covering at least this
# share of it: a region reaching a second into a section does not open its description.
BORROWED_SHARE = 0.25
SECTION_LOUDER_LU = 3.0  # a section this much louder (quieter) than the one before says so


def section_name(section: Section) -> str:
    """How the narrative names a section: ``"chorus (C)"``, or ``"section C"`` without a
    function."""
    if section.function:
        return f"{section.function} ({section.label})"
    return f"section {section.label}"


def _mean_level(run: Sequence[RegionAnnotation]) -> float | None:
    levels = [r.loudness_lufs for r in run if r.loudness_lufs is not None and not r.silent]
    return sum(levels) / len(levels) if levels else None


def by_section(
    regions: Sequence[RegionAnnotation],
    changes: dict[int, tuple[NarrativeEvent, ...]] | dict[int, list[NarrativeEvent]],
    form: Sequence[Section],
    *,
    source: str,
    duration_s: float,
    backend: str,
    min_confidence: float,
) -> TrackNarrative:
    """The narrative told by the track's form: one sentence per section, in order.

    Each region belongs to the section holding its middle (a section holding none is described
    by the regions covering a good part of it, "not annotated" when none reaches it); the
    changes decoded between
    regions (key, tempo, vocals, loudness, silence) are said in the section where they
    happen: a change inside a section starts a piece of its own (``"at 1:50 it gets louder:
    G major, instrumental"``), so every :class:`NarrativeSection` holds the changes at its
    start, as the rule-based narrative's do. A section whose label came before says that it
    returns; one heard for the first time is described (key, tempo, vocals, instruments,
    level), later ones by how they differ from the section before, with their key and vocals.

    Args:
        regions: the resolved regions, in time order.
        changes: region index -> the changes decoded at its start (:func:`engine.track.resolve`).
        form: the track's sections, in time order.
        source, duration_s, backend: echoed in the result.
        min_confidence: events below this confidence are not said.

    Returns:
        A narrative such as ``"0:00-0:15 intro (A): A minor, around 120 BPM, instrumental,
        quiet (-30 LUFS); 0:15-0:46 verse (B): louder (+8 LU), A minor, ..., female vocals
        come in; ...; 2:02-2:33 the chorus returns (C): louder (+6 LU), A minor, female
        vocals"``.
    """
    members: list[list[int]] = [[] for _ in form]
    for i, r in enumerate(regions):
        mid = (r.start_s + r.end_s) / 2
        k = next(
            (j for j, s in enumerate(form) if s.start_s <= mid < s.end_s),
            len(form) - 1 if mid >= form[-1].end_s else 0,
        )
        members[k].append(i)
    seen: dict[str, Section] = {}
    sections: list[NarrativeSection] = []
    prev_level: float | None = None
    told: set[int] = set()  # regions whose changes have been said
    for k, sec in enumerate(form):
        idx = members[k]
        # a section shorter than the regions may hold no region's middle: the regions
        # covering a good part of it (BORROWED_SHARE, else the one covering most) describe
        # it, in order (a change at the start of one is said there, if not said before);
        # only a section no region reaches is not annotated
        if not idx:
            cover = [
                (min(r.end_s, sec.end_s) - max(r.start_s, sec.start_s), i)
                for i, r in enumerate(regions)
            ]
            span = max(sec.end_s - sec.start_s, 1e-9)
            idx = [i for c, i in cover if c >= BORROWED_SHARE * span]
            if not idx and cover and max(cover)[0] > 0:
                idx = [max(cover)[1]]
        run = [regions[i] for i in idx]
        first = seen.get(sec.label)
        if first is not None:
            what = sec.function or first.function
            name = f"the {what} returns ({sec.label})" if what else f"section {sec.label} returns"
        else:
            name = section_name(sec)
        # the section's regions in pieces, a new piece where a change is said
        pieces: list[tuple[list[int], list[NarrativeEvent]]] = []
        for n, i in enumerate(idx):
            said = (
                []
                if i == 0 or i in told
                else events_between(
                    regions[i - 1], regions[i], changes.get(i, ()), min_confidence=min_confidence
                )
            )
            told.add(i)
            if n == 0:  # at the section's start: its level is said with the section
                pieces.append(([i], [e for e in said if e.kind != "loudness"]))
            elif said:
                pieces.append(([i], said))
            else:
                pieces[-1][0].append(i)
        level = _mean_level(run)
        bits: list[str] = []
        change = None
        if level is not None and prev_level is not None:
            change = _level_change(level - prev_level)
        if not run:
            bits.append("not annotated")
        elif all(r.silent for r in run):
            bits.append("silence")
        elif first is None:
            bits += [*([change] if change else []), _describe([regions[i] for i in pieces[0][0]])]
        else:
            bits += [change or "as before", _brief([regions[i] for i in pieces[0][0]])]
        if not pieces:
            pieces = [([], [])]
        for j, (members_j, events) in enumerate(pieces):
            start = sec.start_s if j == 0 else regions[members_j[0]].start_s
            end = regions[pieces[j + 1][0][0]].start_s if j + 1 < len(pieces) else sec.end_s
            texts = [
                e.text
                for e in events
                if not (e.kind == "silence" and members_j and regions[members_j[0]].silent)
            ]
            if j == 0:
                head = f"{timestamp(sec.start_s)}-{timestamp(sec.end_s)} {name}"
                text = f"{head}: {', '.join([*bits, *texts])}"
            else:
                at = f"at {timestamp(start)} {', '.join(texts)}" if texts else ""
                text = f"{at}: {_brief([regions[i] for i in members_j])}".lstrip(": ")
            piece = [regions[i] for i in members_j]
            key = next((r.key.key for r in piece if r.key and not r.silent), None)
            sections.append(NarrativeSection(start, end, text, key, tuple(events)))
        seen.setdefault(sec.label, sec)
        if level is not None:
            prev_level = level
    prose = "; ".join(s.text for s in sections)
    return TrackNarrative(
        source, duration_s, prose[:1].upper() + prose[1:] + ".", tuple(sections), backend
    )


def _brief(run: Sequence[RegionAnnotation]) -> str:
    """The key and the vocals of a stretch: ``"A minor, female vocals"``."""
    if not run or all(r.silent for r in run):
        return "silence"
    first = next(r for r in run if not r.silent)
    parts = [first.key.key if first.key else "no clear key"]
    vocals = _vocal_label(first)
    if vocals is not None:
        parts.append("instrumental" if vocals == "none" else f"{vocals} vocals")
    return ", ".join(parts)


def _level_change(delta_lu: float) -> str | None:
    if delta_lu >= SECTION_LOUDER_LU:
        return f"louder ({delta_lu:+.0f} LU)"
    if delta_lu <= -SECTION_LOUDER_LU:
        return f"quieter ({delta_lu:+.0f} LU)"
    return None
