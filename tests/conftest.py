"""Shared fixtures: an isolated annotation store and preset search path for every test."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_store(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never touch the user's real store or HF hub from tests."""
    monkeypatch.setenv("SONICVERSE_STORE", str(tmp_path_factory.mktemp("store") / "a.sqlite3"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
