"""Optional parts of the install: which extra brings which packages, and a clear error when
one is missing.

The quickstart installs the ``engine``, ``ui`` and ``mic`` extras: the ``lite`` path runs on
numpy, scipy and ONNX Runtime. The ``sonicverse`` backend, training and the torch reference of
the lite tagger need the ``neural`` (and ``train``) extras.
"""

from __future__ import annotations

import importlib.util

from engine.errors import ModelLoadError

TORCH_PIN = "torch==2.13.0"
"""The torch the setup script installs: an unpinned torch pulls several GB of CUDA wheels."""

EXTRAS: dict[str, tuple[str, ...]] = {
    "neural": ("torch", "safetensors", "transformers", "peft", "accelerate"),
    "train": ("torch", "safetensors", "transformers", "peft", "accelerate"),
}
"""Extra -> the modules it must make importable (bitsandbytes is checked where 4-bit is asked)."""


class MissingExtra(ModelLoadError):
    """A feature was used without the optional extra that installs its packages."""


def install_hint(extra: str) -> str:
    """The commands that install ``extra``."""
    return (
        f"scripts/setup.sh --{extra if extra != 'train' else 'neural'}, or "
        f"pip install {TORCH_PIN} 'sonicverse-studio[{extra}]'"
    )


def missing(modules: tuple[str, ...]) -> list[str]:
    """The modules of ``modules`` that cannot be imported (checked without importing them)."""
    return [m for m in modules if not _importable(m)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder refused it, or a broken partial import
        return False


def require(extra: str, feature: str, modules: tuple[str, ...] | None = None) -> None:
    """Raise :class:`MissingExtra` naming ``extra`` when ``feature``'s packages are missing.

    Args:
        extra: the optional extra that installs them (a key of :data:`EXTRAS`).
        feature: what the user asked for, as they would name it ("the sonicverse backend").
        modules: the modules to check; default: every module of the extra.
    """
    absent = missing(modules if modules is not None else EXTRAS[extra])
    if absent:
        raise MissingExtra(
            f"{feature} needs the '{extra}' extra ({', '.join(absent)} not installed): "
            f"install it with {install_hint(extra)}"
        )
