"""Presets: typed, strict, with errors that name the key and the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import presets
from engine.errors import PresetError


def test_shipped_presets_load() -> None:
    names = presets.available()
    assert "lite" in names
    for name in names:
        p = presets.load(name)
        assert p.name == name
        assert p.backend in ("lite", "sonicverse")


def test_lite_values() -> None:
    p = presets.load("lite")
    assert p.backend == "lite"
    assert p.requires == ()
    assert p.regions.length_s == 10.0
    assert p.audio.analysis_sr == 22050


def _write(tmp_path: Path, text: str) -> Path:
    f = tmp_path / "x.toml"
    f.write_text(text)
    return f


def test_unknown_top_level_key(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match="unknown key.*colour"):
        presets.load(_write(tmp_path, 'backend = "lite"\ncolour = "red"\n'))


def test_unknown_nested_key(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match=r"\[analysis\].*unknown key.*silence_db"):
        presets.load(_write(tmp_path, 'backend = "lite"\n[analysis]\nsilence_db = -50\n'))


def test_wrong_type(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match="length_s: expected a number, got 'long'"):
        presets.load(_write(tmp_path, 'backend = "lite"\n[regions]\nlength_s = "long"\n'))


def test_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match=r"analysis_sr=100 is outside the valid range"):
        presets.load(_write(tmp_path, 'backend = "lite"\n[audio]\nanalysis_sr = 100\n'))


def test_unknown_backend(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match="backend='nope'; expected one of lite"):
        presets.load(_write(tmp_path, 'backend = "nope"\n'))


def test_unknown_name() -> None:
    with pytest.raises(PresetError, match="unknown preset 'nope'; valid presets: .*lite"):
        presets.load("nope")


def test_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(PresetError, match="invalid TOML"):
        presets.load(_write(tmp_path, "backend = \n"))


def test_user_presets_dir_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lite.toml").write_text('backend = "lite"\ndescription = "mine"\n')
    monkeypatch.setenv(presets.PRESETS_ENV, str(tmp_path))
    assert presets.load("lite").description == "mine"
