"""The engine's small exception tree.

Every error a user can cause is an :class:`EngineError`; the server turns them into
error replies with :attr:`EngineError.code`, the CLI into a one-line message.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""

    code = "engine_error"


class AudioError(EngineError):
    """An audio file or region cannot be read or analysed (names the file and the reason)."""

    code = "audio_error"


class ModelLoadError(EngineError):
    """Model weights are missing, incomplete or incompatible with the requested device."""

    code = "model_load_error"


class PresetError(EngineError):
    """A preset file has unknown or missing keys, or a value outside its valid range."""

    code = "preset_error"


class InvalidRequest(EngineError):
    """A request (CLI arguments, OSC message) is malformed or names invalid values."""

    code = "invalid_request"


class StoreError(EngineError):
    """The annotation store cannot be opened, read or written: damaged, locked by another
    process, read-only or on a full disk (names the file, the reason and what to do).

    Attributes:
        reason: ``"empty"`` (a 0-byte file), ``"corrupt"`` (not a database, or it fails its
            integrity check), ``"newer"`` (written by a newer engine), ``"readonly"``,
            ``"locked"``, ``"full"`` (no space left) or ``"io"`` (any other disk error).
    """

    code = "store_error"
    DAMAGED = frozenset({"empty", "corrupt"})
    """Reasons a fresh store may replace the file (which is kept aside, never deleted)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class Cancelled(EngineError):
    """The caller cancelled the job (before it ran, or between two regions)."""

    code = "cancelled"


def check_range(name: str, value: float, lo: float, hi: float) -> None:
    """Raise :class:`PresetError` naming ``name``, ``value`` and ``[lo, hi]`` when outside it.

    The one range check of every typed settings table (presets, backend options, tagger).
    """
    if not lo <= value <= hi:
        raise PresetError(f"{name}={value!r} is outside the valid range [{lo}, {hi}]")
