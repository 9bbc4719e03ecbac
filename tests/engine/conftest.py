"""Fixtures shared by the engine's server and hardening tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import presets
from engine.pipeline import Annotator
from engine.presets import Preset
from engine.store import Store


@pytest.fixture(scope="module")
def lite() -> Preset:
    """The shipped lite preset."""
    return presets.load("lite")


@pytest.fixture
def annotator(lite: Preset, tmp_path: Path) -> Iterator[Annotator]:
    """The lite preset with a fresh store in ``tmp_path``."""
    a = Annotator(lite, store=Store(tmp_path / "store.sqlite3"))
    yield a
    a.close()
