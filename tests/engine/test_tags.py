"""Key, BPM and comment tags written into MP3, FLAC, OGG, Opus and M4A, read back with mutagen."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path
from typing import Any

import mutagen
import numpy as np
import pytest

from engine import audio, presets
from engine.cli import main
from engine.errors import InvalidRequest
from engine.filetags import key_name, plan, read_tags, write_tags
from tests.synth import progression

VALUES = {"key": "Am", "bpm": "120", "comment": "SonicVerse: A minor (8A); 120 BPM"}


def _wav(path: Path) -> Path:
    audio.write(path, progression("A", "minor", chord_s=0.5, repeats=1), sr=22050)
    return path


def _encode(src: Path, dest: Path) -> Path:
    if dest.suffix == ".mp3" and shutil.which("lame"):
        cmd = ["lame", "--quiet", str(src), str(dest)]
    elif shutil.which("ffmpeg"):
        codec = {
            ".mp3": ["-c:a", "libmp3lame"],
            ".m4a": ["-c:a", "aac"],
            ".opus": ["-c:a", "libopus"],
        }.get(dest.suffix, [])
        cmd = ["ffmpeg", "-loglevel", "error", "-y", "-i", str(src), *codec, str(dest)]
    else:
        pytest.skip(f"no encoder for {dest.suffix} (lame or ffmpeg)")
    subprocess.run(cmd, check=True)
    return dest


@pytest.fixture(params=[".mp3", ".flac", ".ogg", ".opus", ".m4a"])
def clip(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    suffix = request.param
    if suffix in (".flac", ".ogg"):
        path = tmp_path / f"clip{suffix}"
        audio.write(path, progression("A", "minor", chord_s=0.5, repeats=1), sr=22050)
        return path
    return _encode(_wav(tmp_path / "src.wav"), tmp_path / f"clip{suffix}")


def _decoded(path: Path) -> str:
    """Hash of every decoded sample (libav, which reads all five containers)."""
    import av

    h = hashlib.sha1(usedforsecurity=False)
    with av.open(str(path)) as c:
        for frame in c.decode(audio=0):
            h.update(np.ascontiguousarray(frame.to_ndarray()).tobytes())
    return h.hexdigest()


def _raw(path: Path) -> dict[str, str]:
    """The tags as mutagen sees them, without our reader."""
    f = mutagen.File(path)
    if path.suffix == ".mp3":
        return {
            "key": str(f.tags["TKEY"]),
            "bpm": str(f.tags["TBPM"]),
            "comment": str(f.tags["COMM::eng"]),
        }
    if path.suffix == ".m4a":
        return {
            "key": bytes(f.tags["----:com.apple.iTunes:initialkey"][0]).decode(),
            "bpm": str(f.tags["tmpo"][0]),
            "comment": f.tags["©cmt"][0],
        }
    return {"key": f["INITIALKEY"][0], "bpm": f["BPM"][0], "comment": f["COMMENT"][0]}


def test_written_tags_read_back_and_audio_untouched(clip: Path) -> None:
    before = _decoded(clip)
    changes = write_tags(clip, VALUES)
    assert [c.action for c in changes] == ["write"] * 3
    assert _raw(clip) == VALUES
    assert read_tags(clip) == VALUES
    assert _decoded(clip) == before


def test_existing_tags_kept_unless_overwrite(clip: Path) -> None:
    write_tags(clip, {"key": "C", "bpm": "90"})
    changes = write_tags(clip, VALUES)
    assert {c.field: c.action for c in changes} == {
        "key": "keep",
        "bpm": "keep",
        "comment": "write",
    }
    assert read_tags(clip) == {"key": "C", "bpm": "90", "comment": VALUES["comment"]}
    write_tags(clip, VALUES, overwrite=True)
    assert read_tags(clip) == VALUES
    assert [c.action for c in plan(clip, VALUES)] == ["same"] * 3


def test_dry_run_plan_writes_nothing(clip: Path) -> None:
    data = clip.read_bytes()
    changes = plan(clip, VALUES, fields=["key"])
    assert [(c.field, c.old, c.new, c.action) for c in changes] == [("key", None, "Am", "write")]
    assert clip.read_bytes() == data


def test_notations() -> None:
    assert [key_name("A minor", notation=n) for n in ("standard", "camelot", "open-key")] == [
        "Am",
        "8A",
        "1m",
    ]
    assert key_name("C major", notation="camelot") == "8B"
    assert key_name("F# minor", notation="camelot") == "11A"
    assert key_name("Db major", notation="open-key") == "8d"
    with pytest.raises(InvalidRequest, match="notation"):
        key_name("C major", notation="roman")


def test_unsupported_container(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="cannot tag '.wav'"):
        plan(_wav(tmp_path / "a.wav"), VALUES)


def test_cli_tag_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = tmp_path / "untagged.toml"
    lite = (presets.shipped_presets_dir() / "lite.toml").read_text()
    toml.write_text(lite.replace("tag = true", "tag = false"))
    lib = tmp_path / "lib"
    lib.mkdir()
    for suffix in (".flac", ".ogg"):
        audio.write(lib / f"a{suffix}", progression("A", "minor", chord_s=0.5, repeats=2), sr=22050)
    _encode(_wav(tmp_path / "src.wav"), lib / "a.m4a")  # AAC: the engine decodes it with libav
    (lib / "broken.flac").write_bytes(b"fLaC not really")
    argv = ["tag", str(lib), "--preset", str(toml), "--key-notation", "camelot"]
    assert main([*argv, "--dry-run", "--write", "key,bpm"]) == 1  # broken.flac failed
    assert "would write" in capsys.readouterr().out
    assert read_tags(lib / "a.flac")["key"] is None
    (lib / "broken.flac").unlink()
    assert main(argv) == 0
    for suffix in (".flac", ".ogg", ".m4a"):
        tags = read_tags(lib / f"a{suffix}")
        assert tags["key"] == "8A" and tags["comment"].startswith("SonicVerse: A minor")
    assert main([*argv, "--write", "key,tempo"]) == 2


def test_errors_keep_square_brackets_and_whole_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "mix [take 2] with a long name that goes on and on and on past eighty.flac").write_bytes(
        b"fLaC not really"
    )
    assert main(["tag", str(lib), "--dry-run", "--write", "bpm"]) == 1
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "failed:" in x)
    assert "[take 2]" in line and "eighty.flac" in line  # one line, brackets kept


def test_the_comment_names_a_gender_only_when_sure() -> None:
    """Like the panel and the exports: "male vocals" only when P(male | vocals) >= 0.7."""
    from types import SimpleNamespace as NS

    from engine.filetags import values_of
    from engine.types import VocalsEstimate

    def result(p: tuple[float, float, float]) -> Any:
        region = NS(key=None, tempo_bpm=None, genres=(), duration_s=10.0)
        region.vocals = VocalsEstimate("male", p)
        return NS(regions=[region], grid=None)

    assert values_of(result((0.05, 0.5, 0.45)))["comment"] == "SonicVerse: vocals"
    assert values_of(result((0.05, 0.9, 0.05)))["comment"] == "SonicVerse: male vocals"
