"""The audio files the engine reads: one list for the engine, the CLI and the panel, so a file
the panel offers is one the engine decodes. Pure Python (no numpy), like the rest of
``daw_bridge``.
"""

from __future__ import annotations

# Decoded with libav (PyAV): AAC or ALAC in MP4, which libsndfile cannot read (the form music
# stores and iTunes libraries keep), and Opus, which libsndfile 1.2 refuses from common encoders
# (ffmpeg's files read as "malformed"; libsndfile issue 888), in any Ogg file.
LIBAV_SUFFIXES: frozenset[str] = frozenset({".m4a", ".mp4", ".opus"})
AUDIO_SUFFIXES: frozenset[str] = (
    frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff"}) | LIBAV_SUFFIXES
)
OGG_SUFFIXES: frozenset[str] = frozenset({".ogg", ".oga"})
HEAD_BYTES = 128  # enough of an Ogg file for its first page's packet (OpusHead)


def holds_opus(head: bytes) -> bool:
    """Whether an Ogg file's first :data:`HEAD_BYTES` bytes carry an Opus stream (its
    ``OpusHead`` packet): such a file goes to libav when libsndfile will not open it."""
    return head.startswith(b"OggS") and b"OpusHead" in head
