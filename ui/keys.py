"""Key colours on the panel (key names are :mod:`daw_bridge.keys`).

Colours follow the circle of fifths: neighbouring keys get neighbouring hues, and a minor key
shares the hue of its relative major (A minor with C major) in a darker shade, so that
modulations to close keys read as small colour steps.
"""

from __future__ import annotations

from daw_bridge.keys import parse_key

VOCAL_COLOURS: dict[str, str] = {"none": "#9aa0a6", "male": "#3d7be0", "female": "#d6336c"}
"""Colour per vocals label (hex RGB)."""

SILENCE_COLOUR = "#c8c8c8"
UNKNOWN_COLOUR = "#b0b8c0"


def key_hsv(name: str | None) -> tuple[int, int, int] | None:
    """Hue (0-359), saturation and value (0-255) for a key; None for no or unreadable key."""
    parsed = parse_key(name) if name else None
    if parsed is None:
        return None
    pc, mode = parsed
    major_pc = pc if mode == "major" else (pc + 3) % 12  # relative major
    fifths = (major_pc * 7) % 12  # position on the circle of fifths, C = 0, G = 1, ...
    hue = (fifths * 30) % 360
    return (hue, 150, 235) if mode == "major" else (hue, 200, 165)
