"""The sonicverse CLI end to end (in-process)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jams
import pytest

from engine import cli, presets
from engine.cli import main
from tests.engine.helpers import song


@pytest.fixture(scope="module")
def untagged(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The lite preset without the tagger: CLI mechanics do not need tags."""
    text = (presets.shipped_presets_dir() / "lite.toml").read_text()
    path = tmp_path_factory.mktemp("presets") / "untagged.toml"
    path.write_text(text.replace("tag = true", "tag = false"))
    return str(path)


@pytest.fixture(scope="module")
def song_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return song(tmp_path_factory.mktemp("cli") / "song.wav")


def test_table(song_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["annotate", str(song_path)]) == 0
    out = capsys.readouterr().out
    assert "C major" in out and "A minor" in out and "Narrative:" in out


def test_json_stdout_with_regions(
    song_path: Path, untagged: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "annotate",
                str(song_path),
                "--regions",
                "0-12.5,12.5-20",
                "--format",
                "json",
                "--preset",
                untagged,
            ]
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    assert [(r["start_s"], r["end_s"]) for r in doc["regions"]] == [(0.0, 12.5), (12.5, 20.0)]
    assert doc["schema_version"] == "1.2"


def test_json_out_file(song_path: Path, untagged: str, tmp_path: Path) -> None:
    out = tmp_path / "song.json"
    assert (
        main(
            [
                "annotate",
                str(song_path),
                "--format",
                "json",
                "--out",
                str(out),
                "--preset",
                untagged,
            ]
        )
        == 0
    )
    first, second, _ = json.loads(out.read_text())["regions"]
    assert first["region_key"]["key"] == "C major" and second["region_key"]["key"] == "A minor"
    assert first["key"]["key"] == second["key"]["key"] == "A minor"  # one key, the chords' home


def test_many_files_jams(song_path: Path, untagged: str, tmp_path: Path) -> None:
    other = tmp_path / "other.wav"
    other.write_bytes(song_path.read_bytes())
    assert (
        main(
            [
                "annotate",
                str(song_path),
                str(other),
                "--format",
                "jams",
                "--out",
                str(tmp_path),
                "--preset",
                untagged,
            ]
        )
        == 0
    )
    for stem in ("song", "other"):
        jams.load(str(tmp_path / f"{stem}.jams"), validate=True)


def test_bad_file_is_reported_and_others_continue(
    song_path: Path, untagged: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    assert (
        main(
            [
                "annotate",
                str(bad),
                str(song_path),
                "--format",
                "csv",
                "--out",
                str(tmp_path),
                "--preset",
                untagged,
            ]
        )
        == 1
    )
    assert "bad.wav" in capsys.readouterr().err
    assert (tmp_path / "song.csv").is_file()


def test_bad_preset(song_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["annotate", str(song_path), "--preset", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


def test_presets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["presets"]) == 0
    assert "lite" in capsys.readouterr().out


def test_external_commands_take_leading_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["engine", "--help"])
    assert exc.value.code == 0
    assert "--port" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["-v", "send", "--help"])
    assert "sonicverse send" in capsys.readouterr().out


def test_panel_runs_the_panels_own_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    """``sonicverse panel`` runs ``python -m ui`` in a child; the engine never imports ui."""
    calls: list[list[str]] = []
    monkeypatch.setattr(cli.subprocess, "call", lambda argv: calls.append(argv) or 0)
    monkeypatch.setattr(cli.importlib, "import_module", lambda name: pytest.fail(name))
    assert main(["panel", "song.wav", "--port", "9100"]) == 0
    assert calls == [[sys.executable, "-m", "ui", "song.wav", "--port", "9100"]]


def test_console_script_writes_everything_before_its_fast_exit(
    song_path: Path, untagged: str, tmp_path: Path
) -> None:
    """`entry` leaves with os._exit after annotate: the whole JSON on stdout, the log on
    stderr and the exit code all arrive, for a failed file too."""
    import subprocess

    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "-v",
            "annotate",
            str(song_path),
            "--preset",
            untagged,
            "--store",
            str(tmp_path / "s.sqlite3"),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert len(json.loads(ok.stdout)["regions"]) == 3
    assert "regions" in ok.stderr  # the pipeline's log line made it out
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "annotate",
            str(tmp_path / "missing.wav"),
            "--store",
            str(tmp_path / "s.sqlite3"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1 and "missing.wav" in bad.stderr


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import tomllib

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    assert capsys.readouterr().out.strip() == f"sonicverse {project['version']}"


@pytest.mark.parametrize("columns", [60, 80, 99, 100, 140])
def test_table_fits_the_terminal_and_keeps_captions_whole(
    song_path: Path,
    untagged: str,
    columns: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["annotate", str(song_path), "--preset", untagged, "--format", "json"]) == 0
    captions = [r["caption"] for r in json.loads(capsys.readouterr().out)["regions"]]
    monkeypatch.setenv("COLUMNS", str(columns))
    assert main(["annotate", str(song_path), "--preset", untagged]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= columns
    flat = " ".join(" ".join(line.replace("│", " ").split()) for line in lines)
    for caption in captions:
        words = caption.split()
        # the caption's first words share a line: never one word per line
        assert any(" ".join(words[:2]) in line for line in lines), (caption, lines)
        if columns < cli.COMPACT_BELOW:
            assert " ".join(words) in flat  # whole, in reading order, on its own lines
