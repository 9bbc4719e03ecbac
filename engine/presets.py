"""Typed presets loaded from ``presets/*.toml``.

A preset names a backend and holds typed settings for every stage. Each backend declares
its own options dataclass (``Options`` in its module); the preset's table named after the
backend (``[lite]``, ``[sonicverse]``) is parsed into it. Unknown keys, missing keys and
values of the wrong type or outside their range raise :class:`PresetError` naming them.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from engine.errors import PresetError, check_range

T = TypeVar("T")

PRESETS_ENV = "SONICVERSE_PRESETS"


@dataclass(frozen=True)
class AudioSettings:
    """How audio is read."""

    max_duration_s: float = 3600.0  # files longer than this are refused
    analysis_sr: int = 22050  # rate (Hz) the signal analysers work at

    def __post_init__(self) -> None:
        check_range("audio.max_duration_s", self.max_duration_s, 1.0, 86400.0)
        check_range("audio.analysis_sr", self.analysis_sr, 8000, 96000)


@dataclass(frozen=True)
class RegionSettings:
    """How a file is cut into regions when the user gives none."""

    length_s: float = 10.0  # default region length in seconds (SonicVerse chunks are 10 s)
    min_length_s: float = 0.25  # regions shorter than this are refused
    min_tail_s: float = 5.0  # a last region shorter than this joins the one before it
    snap: Literal["none", "bars"] = "none"  # "bars": regions start on the beat grid's downbeats
    plan: Literal["fixed", "form"] = "fixed"  # "form": a region per section of the track's form
    max_s: float = 30.0  # plan = "form": longer sections are split on bar lines into pieces <= this

    def __post_init__(self) -> None:
        check_range("regions.length_s", self.length_s, 1.0, 600.0)
        check_range("regions.max_s", self.max_s, 1.0, 600.0)
        check_range("regions.min_length_s", self.min_length_s, 0.01, self.length_s)
        check_range("regions.min_tail_s", self.min_tail_s, self.min_length_s, self.length_s)


@dataclass(frozen=True)
class AnalysisSettings:
    """Signal-processing analysers shared by every backend."""

    silence_lufs: float = -60.0  # integrated loudness below this is silence
    silence_peak_dbfs: float = -60.0  # ... and so is a sample peak below this
    tempo_min_bpm: float = 40.0  # slowest tempo reported
    tempo_max_bpm: float = 240.0  # fastest tempo reported
    tempo_prior_bpm: float = 120.0  # centre of the log-normal tempo prior
    key_candidates: int = 2  # how many runner-up keys to report

    def __post_init__(self) -> None:
        check_range("analysis.silence_lufs", self.silence_lufs, -120.0, 0.0)
        check_range("analysis.silence_peak_dbfs", self.silence_peak_dbfs, -160.0, 0.0)
        check_range("analysis.tempo_min_bpm", self.tempo_min_bpm, 10.0, self.tempo_max_bpm)
        check_range("analysis.tempo_max_bpm", self.tempo_max_bpm, self.tempo_min_bpm, 400.0)
        check_range(
            "analysis.tempo_prior_bpm", self.tempo_prior_bpm, self.tempo_min_bpm, self.tempo_max_bpm
        )
        check_range("analysis.key_candidates", self.key_candidates, 0, 23)


@dataclass(frozen=True)
class TrackSettings:
    """How region evidence becomes the track's story (:mod:`engine.track`).

    Penalties are in nats of log-evidence: a change is decoded only where the regions after it
    support the new state by more than the penalty in total. Chosen on rendered songs
    (``python bench/narrative.py --fit``), never on the real recordings it is measured with.
    """

    key_change_penalty: float = 5.0  # cost of a key change (nats)
    key_floor: float = 0.03  # probability floor per key and region (caps one region's say)
    home_key_bonus: float = 3.0  # nats per region for the chords' home key, at a full lead
    min_tonality: float = 0.08  # regions less pitched than this have no clear key
    # ... and regions whose chords were read and hold none (a drum kit alone) less than this
    min_tonality_chordless: float = 0.25
    tonality_width: float = 0.02  # softness of that threshold
    tempo_change_penalty: float = 3.0  # cost of a tempo change (nats)
    tempo_floor: float = 0.05  # salience floor per tempo and region
    tempo_level_octaves: float = 1.0  # width of the pull towards the track's metrical level
    level_prior_bpm: float = 100.0  # centre of the prior choosing the track's metrical level
    level_prior_octaves: float = 0.25  # its width in octaves
    vocals_change_penalty: float = 0.9  # cost of vocals entering, leaving or changing (nats)
    vocals_floor: float = 0.05  # probability floor per vocal class and region
    min_event_confidence: float = 0.5  # events below this are not claimed

    def __post_init__(self) -> None:
        for name in (
            "key_change_penalty",
            "home_key_bonus",
            "tempo_change_penalty",
            "vocals_change_penalty",
        ):
            check_range(f"track.{name}", getattr(self, name), 0.0, 100.0)
        for name in ("key_floor", "tempo_floor", "vocals_floor"):
            check_range(f"track.{name}", getattr(self, name), 1e-6, 0.5)
        check_range("track.min_tonality", self.min_tonality, 0.0, 1.0)
        check_range(
            "track.min_tonality_chordless", self.min_tonality_chordless, self.min_tonality, 1.0
        )
        check_range("track.tonality_width", self.tonality_width, 1e-4, 1.0)
        check_range("track.tempo_level_octaves", self.tempo_level_octaves, 0.05, 4.0)
        check_range("track.level_prior_bpm", self.level_prior_bpm, 20.0, 400.0)
        check_range("track.level_prior_octaves", self.level_prior_octaves, 0.05, 4.0)
        check_range("track.min_event_confidence", self.min_event_confidence, 0.0, 1.0)


@dataclass(frozen=True)
class LimitSettings:
    """Work budgets of one request, checked before any audio is decoded.

    Samples count every channel: a region holds ``rate x channels x seconds`` samples, the
    rate being the file's, or ``max_sr`` for files above it (they are resampled block by block
    while decoding, before anything is held).
    """

    max_regions: int = 512  # regions in one request
    max_region_samples: int = 17_280_000  # samples of one region (3 min of 48 kHz stereo)
    max_request_samples: int = 691_200_000  # samples of all regions (1 h of 96 kHz stereo)
    max_sr: int = 192_000  # Hz; files above this rate are resampled to it while decoding

    def __post_init__(self) -> None:
        check_range("limits.max_regions", self.max_regions, 1, 1_000_000)
        check_range("limits.max_region_samples", self.max_region_samples, 1_000, 2**31)
        check_range(
            "limits.max_request_samples", self.max_request_samples, self.max_region_samples, 2**40
        )
        check_range("limits.max_sr", self.max_sr, 8000, 768_000)


@dataclass(frozen=True)
class Preset:
    """A named, typed configuration of the whole pipeline.

    Attributes:
        name: the preset's name (its file stem).
        backend: a key of :data:`engine.backends.BACKENDS`.
        description: one line for ``sonicverse presets``.
        requires: what the preset needs beyond the package (weights, a GPU); empty for none.
        audio: audio reading settings.
        regions: default region cutting.
        analysis: signal analyser settings.
        limits: work budgets of one request.
        options: the backend's own typed options (its module's ``Options`` dataclass).
        path: the TOML file it came from.
        track: track-level decoding and narrative event settings (``[track]``, optional).
    """

    name: str
    backend: str
    description: str
    requires: tuple[str, ...]
    audio: AudioSettings
    regions: RegionSettings
    analysis: AnalysisSettings
    options: Any
    path: str = ""
    track: TrackSettings = dataclasses.field(default_factory=TrackSettings)
    limits: LimitSettings = dataclasses.field(default_factory=LimitSettings)


def presets_dirs() -> list[Path]:
    """Preset folders: ``$SONICVERSE_PRESETS`` (os.pathsep list), then the shipped ones."""
    dirs = [Path(p) for p in os.environ.get(PRESETS_ENV, "").split(os.pathsep) if p]
    return [*dirs, shipped_presets_dir()]


def shipped_presets_dir() -> Path:
    """The ``presets/`` folder that ships with the project."""
    return Path(__file__).resolve().parent.parent / "presets"


def available() -> dict[str, Path]:
    """Preset name -> file, earlier folders in :func:`presets_dirs` winning."""
    found: dict[str, Path] = {}
    for d in reversed(presets_dirs()):
        for f in sorted(d.glob("*.toml")):
            found[f.stem] = f
    return dict(sorted(found.items()))


def load(name_or_path: str | os.PathLike[str]) -> Preset:
    """Load a preset by name (see :func:`available`) or from a ``.toml`` path.

    Raises:
        PresetError: unknown name, unreadable TOML, unknown/missing keys or bad values.
    """
    p = Path(name_or_path)
    if p.suffix != ".toml":
        names = available()
        if str(name_or_path) not in names:
            raise PresetError(
                f"unknown preset {str(name_or_path)!r}; valid presets: {', '.join(names) or 'none'}"
            )
        p = names[str(name_or_path)]
    try:
        table = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PresetError(f"preset {p}: cannot read ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"preset {p}: invalid TOML ({exc})") from exc
    return from_table(table, path=p)


def from_table(table: dict[str, Any], *, path: Path | None = None) -> Preset:
    """Build a :class:`Preset` from a parsed TOML table."""
    from engine import backends

    where = str(path) if path else "<preset>"
    table = dict(table)
    backend = table.get("backend")
    if not isinstance(backend, str) or backend not in backends.BACKENDS:
        raise PresetError(
            f"preset {where}: backend={backend!r}; expected one of {', '.join(backends.BACKENDS)}"
        )
    options_cls = backends.options_class(backend)
    known = {
        "name",
        "backend",
        "description",
        "requires",
        "audio",
        "regions",
        "analysis",
        "track",
        "limits",
        backend,
    }
    unknown = sorted(set(table) - known)
    if unknown:
        raise PresetError(
            f"preset {where}: unknown key(s) {', '.join(unknown)}; "
            f"valid keys: {', '.join(sorted(known))}"
        )
    name = table.get("name", path.stem if path else None)
    if not isinstance(name, str) or not name:
        raise PresetError(f"preset {where}: 'name' must be a non-empty string, got {name!r}")
    description = table.get("description", "")
    requires = table.get("requires", [])
    if not isinstance(description, str):
        raise PresetError(f"preset {where}: 'description' must be a string, got {description!r}")
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise PresetError(f"preset {where}: 'requires' must be a list of strings, got {requires!r}")
    return Preset(
        name=name,
        backend=backend,
        description=description,
        requires=tuple(requires),
        audio=build(AudioSettings, table.get("audio", {}), where=f"{where} [audio]"),
        regions=build(RegionSettings, table.get("regions", {}), where=f"{where} [regions]"),
        analysis=build(AnalysisSettings, table.get("analysis", {}), where=f"{where} [analysis]"),
        options=build(options_cls, table.get(backend, {}), where=f"{where} [{backend}]"),
        path=str(path) if path else "",
        track=build(TrackSettings, table.get("track", {}), where=f"{where} [track]"),
        limits=build(LimitSettings, table.get("limits", {}), where=f"{where} [limits]"),
    )


def build(cls: type[T], table: Any, *, where: str) -> T:
    """Instantiate a frozen dataclass from a TOML table, strictly.

    Nested dataclass fields take sub-tables; ``tuple[...]`` fields take arrays. Fields without
    a default are required.

    Raises:
        PresetError: naming ``where``, the key, the value and what was expected.
    """
    if not isinstance(table, dict):
        raise PresetError(f"{where}: expected a table, got {table!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise PresetError(
            f"{where}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(fields)}"
        )
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for fname, f in fields.items():
        if fname not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise PresetError(f"{where}: missing required key {fname!r}")
            continue
        kwargs[fname] = _coerce(hints[fname], table[fname], where=f"{where} {fname}")
    try:
        return cls(**kwargs)
    except PresetError as exc:
        raise PresetError(f"{where}: {exc}") from exc


def _coerce(tp: Any, value: Any, *, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, where=where)
            except PresetError as exc:
                errors.append(str(exc))
        raise PresetError("; ".join(errors))
    if dataclasses.is_dataclass(tp):
        return build(tp, value, where=where)  # type: ignore[type-var, arg-type]
    if origin is tuple:
        if not isinstance(value, list):
            raise PresetError(f"{where}: expected an array, got {value!r}")
        inner = args[0] if args else Any
        return tuple(_coerce(inner, v, where=f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise PresetError(f"{where}: expected a table, got {value!r}")
        return {str(k): _coerce(args[1], v, where=f"{where}.{k}") for k, v in value.items()}
    if origin is typing.Literal:
        if value not in args:
            raise PresetError(f"{where}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PresetError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise PresetError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise PresetError(f"{where}: expected {tp.__name__}, got {value!r}")
        return value
    raise PresetError(f"{where}: unsupported field type {tp!r}")
