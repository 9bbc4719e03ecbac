"""Prompts are pure functions; these tests pin their exact text."""

from __future__ import annotations

import re

from engine.prompts import (
    NARRATIVE_INSTRUCTIONS,
    caption_instruction,
    chunk_line,
    narrative_messages,
    narrative_prompt,
    span,
)
from engine.types import KeyEstimate, RegionAnnotation


def ann(
    start_s: float,
    end_s: float,
    caption: str,
    *,
    key: str | None = None,
    bpm: float | None = None,
    silent: bool = False,
) -> RegionAnnotation:
    return RegionAnnotation(
        start_s=start_s,
        end_s=end_s,
        silent=silent,
        key=KeyEstimate(key, 0.8) if key else None,
        tempo_bpm=bpm,
        tempo_confidence=0.5,
        loudness_lufs=-14.0,
        peak_dbfs=-1.0,
        caption=caption,
        backend="sonicverse",
    )


def test_caption_instruction_is_sonicverses() -> None:
    assert caption_instruction() == "Describe the music. <sound>"
    assert caption_instruction("What plays?") == "What plays? <sound>"


def test_span_uses_true_times() -> None:
    assert span(0, 10) == "0:00-0:10"
    assert span(10, 20) == "0:10-0:20"
    assert span(170.0, 180.2) == "2:50-3:00"
    assert span(3599.6, 3661) == "1:00:00-1:01:01"


def test_narrative_prompt_exact_text() -> None:
    chunks = [
        ann(10, 20, "Strings enter.", key="A minor", bpm=120.4),
        ann(0, 10, " A calm piano\n intro. ", key="C major"),
        ann(20, 25, "", silent=True),
    ]
    expected = (
        "You are a music critic. Below are chronological descriptions of consecutive chunks of "
        "one piece of music, each with its true start and end time (m:ss) and the key, chord "
        "progression (Roman numerals, when clear) and tempo measured in it. Write one flowing, "
        "detailed description of the whole piece: its structure, instrumentation and standout "
        "moments. Name each transition by the timestamp at which it happens. Keep concrete "
        "musical facts such as key, chords and tempo. If the "
        "description of a chunk contradicts the chunks before and after it, treat it as a bad "
        "description and leave its content out.\n"
        "\n"
        'Chunks of "song":\n'
        "0:00-0:10 (C major): A calm piano intro.\n"
        "0:10-0:20 (A minor, 120 BPM): Strings enter.\n"
        "0:20-0:25 (silence): no description\n"
        "\n"
        "Description of the whole piece:"
    )
    assert narrative_prompt(chunks, title="song") == expected


def test_every_chunk_gets_its_own_start_time() -> None:
    """SonicVerse wrote ``(i - 1)*0 to i*10 seconds``: every chunk started at 0. Not here."""
    chunks = [ann(10.0 * i, 10.0 * (i + 1), f"chunk {i}") for i in range(18)]
    text = narrative_prompt(chunks, title="t")
    lines = [line for line in text.splitlines() if re.match(r"^\d+:\d\d-", line)]
    assert len(lines) == 18
    for i, line in enumerate(lines):
        assert line.startswith(f"{span(10.0 * i, 10.0 * (i + 1))} ("), line
        assert line.endswith(f"chunk {i}")
    starts = [line.split("-")[0] for line in lines]
    assert len(set(starts)) == 18  # no two chunks claim the same start
    assert "0 to 20 seconds" not in text and "0:00-0:20" not in text


def test_instructions_ask_to_keep_facts_and_drop_outliers() -> None:
    assert "key, chords and tempo" in NARRATIVE_INSTRUCTIONS
    assert "contradicts the chunks before and after" in NARRATIVE_INSTRUCTIONS
    assert "timestamp" in NARRATIVE_INSTRUCTIONS


def test_chunk_line_facts() -> None:
    assert chunk_line(ann(0, 10, "x", bpm=99.6)) == "0:00-0:10 (100 BPM): x"
    assert chunk_line(ann(0, 10, "x")) == "0:00-0:10 (no key or tempo found): x"


def test_messages_are_one_user_turn() -> None:
    msgs = narrative_messages([ann(0, 10, "a")], title="t")
    assert msgs == [{"role": "user", "content": narrative_prompt([ann(0, 10, "a")], title="t")}]


def test_a_chunks_clear_progression_is_one_of_its_facts() -> None:
    from dataclasses import replace

    from engine.types import ChordSpan

    a = ann(0, 8, "Piano chords.", key="A minor", bpm=120.0)
    spans = tuple(
        ChordSpan(2.0 * i, 2.0 * i + 2, c, 0.9)
        for i, c in enumerate(("A:min", "F:maj", "C:maj", "G:maj"))
    )
    with_chords = replace(a, chords=spans, progression="i-VI-III-VII")
    assert (
        chunk_line(with_chords)
        == "0:00-0:08 (A minor, chords i-VI-III-VII, 120 BPM): Piano chords."
    )
    unsure = replace(with_chords, chords=tuple(replace(c, confidence=0.2) for c in spans))
    assert chunk_line(unsure) == "0:00-0:08 (A minor, 120 BPM): Piano chords."
