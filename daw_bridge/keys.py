"""Pitch names, the 24 keys and the vocal classes: the words engine and panel both use.

Indices are fixed: ``KEYS[i]`` for ``i < 12`` is the major key on pitch class ``i``
(0 = C), ``KEYS[12 + i]`` the minor key on pitch class ``i``. Pure Python, like the rest of
``daw_bridge``.
"""

from __future__ import annotations

PITCH_CLASSES: tuple[str, ...] = (
    "C",
    "C#",
    "D",
    "Eb",
    "E",
    "F",
    "F#",
    "G",
    "Ab",
    "A",
    "Bb",
    "B",
)
MODES: tuple[str, ...] = ("major", "minor")
KEYS: tuple[str, ...] = tuple(f"{pc} {mode}" for mode in MODES for pc in PITCH_CLASSES)
VOCALS: tuple[str, ...] = ("none", "male", "female")
GENDER_CONFIDENCE = 0.7
"""A singer's gender is told when P(that gender | vocals) is at least this; else "vocals"."""


def vocals_word(label: str, probabilities: list[float] | tuple[float, ...]) -> str:
    """A region's vocals as the narrative and captions say them: ``"none"``, ``"male"`` or
    ``"female"``, and ``"vocals"`` when the labelled gender's share of P(vocals) is under
    :data:`GENDER_CONFIDENCE` (``probabilities`` in :data:`VOCALS` order)."""
    if label == "none" or len(probabilities) != len(VOCALS):
        return label
    sung = 1.0 - float(probabilities[0])
    share = float(probabilities[VOCALS.index(label)]) / max(1e-9, sung)
    return label if share >= GENDER_CONFIDENCE else "vocals"


ENHARMONIC: dict[str, str] = {
    "Db": "C#",
    "D#": "Eb",
    "Gb": "F#",
    "G#": "Ab",
    "A#": "Bb",
    "Cb": "B",
    "Fb": "E",
    "E#": "F",
    "B#": "C",
}
"""Spellings outside :data:`PITCH_CLASSES` -> the spelling the wire uses."""


def parse_key(name: str) -> tuple[int, str] | None:
    """Pitch class (0 = C) and mode of a key name; None if it is not one.

    Args:
        name: e.g. ``"F# minor"``, ``"Gb minor"``, ``"a minor"`` or ``"C:major"`` (JAMS style).
    """
    parts = name.replace(":", " ").split()
    if len(parts) != 2 or parts[1].lower() not in MODES:
        return None
    tonic = parts[0][:1].upper() + parts[0][1:]
    tonic = ENHARMONIC.get(tonic, tonic)
    if tonic not in PITCH_CLASSES:
        return None
    return PITCH_CLASSES.index(tonic), parts[1].lower()


def key_index(name: str) -> int:
    """Index of a key name in :data:`KEYS`, accepting enharmonic spellings.

    Args:
        name: e.g. ``"F# minor"``, ``"Gb minor"``, ``"a minor"`` or ``"C:major"`` (JAMS style).

    Returns:
        The index into :data:`KEYS`.

    Raises:
        ValueError: if the name is not a tonic followed by ``major`` or ``minor``.
    """
    parts = name.replace(":", " ").split()
    if len(parts) != 2 or parts[1].lower() not in MODES:
        raise ValueError(f"key name {name!r} is not '<tonic> major|minor', e.g. 'F# minor'")
    parsed = parse_key(name)
    if parsed is None:
        raise ValueError(f"key name {name!r} has unknown tonic {parts[0]!r}")
    pc, mode = parsed
    return pc + 12 * MODES.index(mode)


def key_tonic_mode(index: int) -> tuple[int, str]:
    """Pitch class (0 = C) and mode of ``KEYS[index]``."""
    return index % 12, MODES[index // 12]
