"""Prompts for the sonicverse LLM: pure functions from data to text, tested on exact strings.

Two prompts: the caption instruction (SonicVerse's ``"Describe the music. <sound>"``, the
marker replaced by the audio tokens) and the chaining prompt that turns the 10 s chunk
captions of a track into one narrative. SonicVerse's own chaining prompt wrote every chunk
as starting at 0 s (``f"{(i - 1)*0} to {i*10} seconds"``); ours gives each chunk its true
start and end, as ``m:ss-m:ss``.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine.captions import clear_progression
from engine.narrative import timestamp
from engine.types import RegionAnnotation

SOUND_MARKER = "<sound>"
"""Stands where the audio tokens go in a caption prompt (SonicVerse's modality token)."""

CAPTION_INSTRUCTION = "Describe the music."
"""SonicVerse's caption instruction (scripts/app.py)."""

NARRATIVE_INSTRUCTIONS = (
    "You are a music critic. Below are chronological descriptions of consecutive chunks of "
    "one piece of music, each with its true start and end time (m:ss) and the key, chord "
    "progression (Roman numerals, when clear) and tempo measured in it. Write one flowing, "
    "detailed description of the whole piece: its structure, instrumentation and standout "
    "moments. Name each transition by the timestamp at which it happens. Keep concrete "
    "musical facts such as key, chords and tempo. If the "
    "description of a chunk contradicts the chunks before and after it, treat it as a bad "
    "description and leave its content out."
)
"""The chaining instructions (after SonicVerse's, with timestamps made explicit)."""


MAX_LYRICS_CHARS = 600
"""Lyrics longer than this (after collapsing whitespace) are cut, with an ellipsis."""


def caption_instruction(
    text: str = CAPTION_INSTRUCTION, *, lyrics: str = "", max_lyrics_chars: int = MAX_LYRICS_CHARS
) -> str:
    """The user turn of a caption prompt: ``text``, the region's lyrics when given (ALCAP
    conditions captions on them), then the sound marker.

    >>> caption_instruction()
    'Describe the music. <sound>'
    >>> caption_instruction(lyrics="la la\n  love")
    'Describe the music. Lyrics: "la la love" <sound>'
    """
    words = " ".join(lyrics.replace(SOUND_MARKER, " ").split())
    if not words:
        return f"{text} {SOUND_MARKER}"
    if len(words) > max_lyrics_chars:
        words = words[:max_lyrics_chars].rstrip() + "..."
    return f'{text} Lyrics: "{words}" {SOUND_MARKER}'


def span(start_s: float, end_s: float) -> str:
    """``"0:10-0:20"`` for a chunk from 10 s to 20 s."""
    return f"{timestamp(start_s)}-{timestamp(end_s)}"


def chunk_facts(a: RegionAnnotation) -> str:
    """The measured facts of a chunk, e.g. ``"A minor, 120 BPM"``, ``"A minor, chords
    i-VI-III-VII, 120 BPM"`` when its progression is clear, or ``"silence"``."""
    if a.silent:
        return "silence"
    facts = []
    if a.key is not None:
        facts.append(a.key.key)
        chords = clear_progression(a)
        if chords:
            facts.append(f"chords {chords}")
    if a.tempo_bpm is not None:
        facts.append(f"{a.tempo_bpm:.0f} BPM")
    return ", ".join(facts) or "no key or tempo found"


def chunk_line(a: RegionAnnotation) -> str:
    """One chunk of the chaining prompt: ``"0:10-0:20 (A minor, 120 BPM): <caption>"``."""
    caption = " ".join(a.caption.split()) or "no description"
    return f"{span(a.start_s, a.end_s)} ({chunk_facts(a)}): {caption}"


def narrative_prompt(chunks: Sequence[RegionAnnotation], *, title: str) -> str:
    """The chaining prompt over a track's chunks, in time order.

    Args:
        chunks: the chunk annotations (sorted by start here).
        title: the piece's name (e.g. the file stem).

    Returns:
        Instructions, one line per chunk with its true time span, and the answer cue.
    """
    lines = [chunk_line(a) for a in sorted(chunks, key=lambda a: a.start_s)]
    return (
        f"{NARRATIVE_INSTRUCTIONS}\n\n"
        f'Chunks of "{title}":\n' + "\n".join(lines) + "\n\nDescription of the whole piece:"
    )


def narrative_messages(chunks: Sequence[RegionAnnotation], *, title: str) -> list[dict[str, str]]:
    """The chaining prompt as a one-turn chat (Mistral-Instruct's template has no system role)."""
    return [{"role": "user", "content": narrative_prompt(chunks, title=title)}]
