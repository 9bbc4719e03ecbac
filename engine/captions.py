"""Template captions: one sentence written from a region's features (the `lite` caption,
and the `sonicverse` caption when no LLM is loaded)."""

from __future__ import annotations

from collections.abc import Sequence

from engine.track import GENDER_CONFIDENCE, gender_share
from engine.types import ChordSpan, RegionAnnotation, Tag


def loudness_word(lufs: float | None) -> str:
    """A word for an integrated loudness in LUFS."""
    if lufs is None:
        return "brief"
    if lufs >= -10:
        return "very loud"
    if lufs >= -16:
        return "loud"
    if lufs >= -24:
        return "moderately loud"
    if lufs >= -34:
        return "quiet"
    return "very quiet"


def tempo_word(bpm: float | None) -> str:
    """A word for a tempo in BPM ('' when there is no pulse)."""
    if bpm is None:
        return ""
    if bpm < 70:
        return "slow"
    if bpm < 100:
        return "relaxed"
    if bpm < 130:
        return "mid-tempo"
    if bpm < 160:
        return "upbeat"
    return "fast"


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


# tagger "moods" that restate tempo or level; the caption says those with numbers already
_RESTATED = frozenset({"slow", "fast", "quiet", "loud", "soft"})


def _labels(tags: tuple[Tag, ...], n: int) -> list[str]:
    return [t.label for t in tags if t.label not in _RESTATED][:n]


def _article(word: str) -> str:
    """'An' before a vowel sound: vowels, and the note letters A, E and F ("an F major")."""
    is_note = len(word) <= 2 and word[:1] in "ABCDEFG" and word[1:] in ("", "#", "b")
    return "An" if word[:1].lower() in ("aef" if is_note else "aeiou") else "A"


CLEAR_CHORD_CONFIDENCE = 0.6  # mean confidence of the chords for a progression to be said
MAX_SAID_CHORDS = 6  # a longer progression is no progression a sentence can say


def said_progression(chords: Sequence[ChordSpan], key: str, span_s: float) -> str:
    """The progression of ``chords`` in ``key`` (``"i-VI-III-VII"``,
    :func:`engine.analysis.chords.progression`) when it is clear, else ``""``: two to
    :data:`MAX_SAID_CHORDS` numerals (one chord is no progression), chords over three quarters
    of ``span_s`` seconds, and their duration-weighted confidence at least
    :data:`CLEAR_CHORD_CONFIDENCE`."""
    from engine.analysis.chords import progression

    sounding = [c for c in chords if c.chord != "N"]
    covered = sum(c.end_s - c.start_s for c in sounding)
    if covered <= 0 or covered < 0.75 * span_s:
        return ""
    confidence = sum(c.confidence * (c.end_s - c.start_s) for c in sounding) / covered
    numerals = progression(sounding, key)
    changes = numerals.count("-")
    if confidence < CLEAR_CHORD_CONFIDENCE or not 1 <= changes < MAX_SAID_CHORDS:
        return ""
    return numerals


def clear_progression(a: RegionAnnotation) -> str:
    """The region's progression when it is clear (:func:`said_progression`), else ``""``."""
    if a.key is None or not a.progression:
        return ""
    return said_progression(a.chords, a.key.key, a.duration_s)


def template_caption(a: RegionAnnotation) -> str:
    """One sentence describing ``a`` from its key, tempo, loudness, vocals and tags.

    Example: ``"A mid-tempo F# minor pop passage at 118 BPM with a female lead vocal over
    piano and drums, loud (-12.3 LUFS) and happy."``; with a clear progression (see
    :func:`clear_progression`) ``"A mid-tempo pop passage over a i-VI-III-VII progression in
    F# minor at 118 BPM ..."``.
    """
    if a.silent:
        return "Silence."
    chords = clear_progression(a) if a.key is not None else ""
    key = a.key.key if a.key and not chords else ""
    head = " ".join(w for w in (tempo_word(a.tempo_bpm), key) if w)
    genres = _labels(a.genres, 1)
    noun = f"{genres[0]} passage" if genres else "passage"
    article = _article((head or noun).split()[0])
    parts = [f"{article} {head} {noun}".replace("  ", " ")]
    if chords and a.key is not None:
        parts.append(f"over a {chords} progression in {a.key.key}")
    if a.tempo_bpm is not None:
        parts.append(f"at {a.tempo_bpm:.0f} BPM")
    instruments = _labels(a.instruments, 3)
    if a.vocals is not None and a.vocals.label != "none":
        gender = f"{a.vocals.label} " if gender_share(a.vocals) >= GENDER_CONFIDENCE else ""
        voice = f"with a {gender}lead vocal"
        parts.append(f"{voice} over {_join(instruments)}" if instruments else voice)
    elif instruments:
        parts.append(f"on {_join(instruments)}")
        if a.vocals is not None:
            parts.append("without vocals")
    level = loudness_word(a.loudness_lufs)
    if a.loudness_lufs is not None:
        level += f" ({a.loudness_lufs:.1f} LUFS)"
    moods = _labels(a.moods, 2)
    tail = f"{level} and {_join(moods)}" if moods else level
    return " ".join(parts) + f", {tail}."
