"""SonicVerse for Ableton Live: a MIDI Remote Script (Control Surface) without MIDI.

Select it in Live's Preferences > Link, Tempo & MIDI > Control Surface. When an audio clip is
selected, it sends the clip's file and its start/end markers to the running SonicVerse
engine over OSC/UDP and writes the key and vocals back into the clip's name and colour.

Runs inside Live's embedded Python: no threads, no pip; a non-blocking UDP socket polled on
Live's display tick, and a small OSC codec of its own (:mod:`.osc`).
"""

from .sonicverse import SonicVerse


def create_instance(c_instance):
    """Live's entry point: one instance per Control Surface slot."""
    return SonicVerse(c_instance)
