"""Backend registry: every backend module exposes ``Options`` (typed preset table) and
``create(preset, *, device=None) -> Backend``.

Modules are imported lazily so that choosing ``lite`` never imports torch.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from engine.errors import PresetError

if TYPE_CHECKING:
    from engine.backends.base import Backend
    from engine.presets import Preset

BACKENDS: dict[str, str] = {
    "lite": "engine.backends.lite",
    "sonicverse": "engine.backends.sonicverse",
}


EXTRA: dict[str, str] = {"sonicverse": "neural"}
"""Backend -> the optional extra its models need (``lite`` needs none)."""


def _module(name: str) -> ModuleType:
    if name not in BACKENDS:
        raise PresetError(f"unknown backend {name!r}; valid backends: {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[name])


def require_extra(name: str) -> None:
    """Raise :class:`~engine.extras.MissingExtra` when backend ``name``'s extra is missing."""
    if name in EXTRA:
        from engine.extras import require

        require(EXTRA[name], f"the {name} backend")


def options_class(name: str) -> type[Any]:
    """The typed options dataclass of backend ``name``."""
    cls: type[Any] = _module(name).Options
    return cls


def create(preset: Preset, *, device: str | None = None) -> Backend:
    """Build the backend a preset names, loading its models once.

    Every process that builds a backend analyses audio: it keeps freed memory for reuse
    (:func:`engine.tuning.keep_freed_memory`).
    """
    from engine.tuning import keep_freed_memory

    require_extra(preset.backend)
    keep_freed_memory()
    backend: Backend = _module(preset.backend).create(preset, device=device)
    return backend
