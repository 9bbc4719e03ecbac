"""``sonicverse evaluate`` end to end on a small rendered manifest with the lite preset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import audio, presets
from engine.cli import main
from engine.data.manifest import Event, Labels, ManifestRow, write_manifest
from tests.synth import song_with_change

SR = 22050


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three rendered 20 s songs with their keys, tempi, captions and a key change."""
    folder = tmp_path_factory.mktemp("eval")
    (folder / "audio").mkdir()
    songs = [
        ("cmaj", (("C", "major"), ("C", "major")), 120.0, "a steady song in c major"),
        ("amin", (("A", "minor"), ("A", "minor")), 100.0, "a calm piece in a minor"),
        ("mod", (("C", "major"), ("G", "major")), 120.0, "a song that moves from c to g"),
    ]
    rows = []
    for name, keys, bpm, caption in songs:
        y = song_with_change(sr=SR, seconds=20.0, change_s=10.0, keys=keys, bpms=(bpm, bpm))
        audio.write(folder / "audio" / f"{name}.wav", y[None, :], sr=SR)
        events = (Event("key", 10.0),) if keys[0] != keys[1] else ()
        rows.append(
            ManifestRow(
                id=name,
                audio=str(folder / "audio" / f"{name}.wav"),
                captions=(caption,),
                labels=Labels(key=" ".join(keys[0]), tempo_bpm=bpm, vocals="none", events=events),
            )
        )
    path = folder / "manifest.jsonl"
    write_manifest(rows, path)
    with path.open("a") as f:
        f.write('{"audio": "missing-key-field.wav", "labels": {"key": "X minor"}}\n')
    return path


@pytest.fixture
def untagged_presets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A copy of lite with the tagger off, found through $SONICVERSE_PRESETS."""
    text = (presets.shipped_presets_dir() / "lite.toml").read_text()
    (tmp_path / "presets").mkdir()
    text = text.replace("tag = true", "tag = false").replace('name = "lite"', 'name = "lite-fast"')
    (tmp_path / "presets" / "lite-fast.toml").write_text(text)
    monkeypatch.setenv(presets.PRESETS_ENV, str(tmp_path / "presets"))
    return "lite-fast"


def test_evaluate_end_to_end(
    manifest: Path, untagged_presets: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    argv = ["evaluate", str(manifest), "--preset", untagged_presets, "--out", str(out)]
    assert main(argv) == 1  # row 4 does not parse
    report = json.loads((out / "report.json").read_text())
    assert report["options"]["score"] == "narrative"
    assert report["format"] == "sonicverse-evaluation" and report["version"] == 1
    assert report["rows"]["read"] == 3 and report["rows"]["annotated"] == 3
    assert [s["row"] for s in report["rows"]["skipped"]] == [4]
    sections = report["sections"]
    assert sections["key"]["rows"] == 3 and sections["tempo"]["rows"] == 3
    assert sections["key"]["metrics"]["MIREX weighted"] >= 2 / 3  # rendered keys are clear
    assert sections["captions"]["rows"] == 3
    assert 0.0 <= sections["captions"]["metrics"]["ROUGE-L"] <= 1.0
    assert "no --text-model" in sections["retrieval"]["skipped"]
    assert "no vocals" in sections["vocals"]["skipped"]  # the tagger is off
    assert sections["events"]["rows"] == 3
    assert {"precision", "recall"} <= set(sections["events"]["metrics"])
    assert sections["instruments"]["rows"] == 0
    for png in ("key_confusion.png", "key_accuracy.png", "key_reliability.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    md = (out / "report.md").read_text()
    assert "| key | MIREX weighted |" in md and "| 3 |" in md
    assert "MIREX weighted" in capsys.readouterr().out

    # a rerun reuses the store and reports the changes beside the first report
    again = tmp_path / "again"
    assert main([*argv[:-1], str(again), "--compare", str(out / "report.json")]) == 1
    md = (again / "report.md").read_text()
    assert "change |" in md and "+0.000" in md


def test_evaluate_with_a_missing_text_model_skips(
    manifest: Path, untagged_presets: str, tmp_path: Path
) -> None:
    out = tmp_path / "r"
    argv = ["evaluate", str(manifest), "--preset", untagged_presets, "--out", str(out)]
    assert main([*argv, "--text-model", str(tmp_path / "nowhere"), "--no-plots"]) == 1
    sections = json.loads((out / "report.json").read_text())["sections"]
    assert "does not exist" in sections["BERTScore"]["skipped"]
    assert not list(out.glob("*.png"))


def test_evaluate_bad_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "r")]) == 2
    assert "cannot read manifest" in capsys.readouterr().err
    (tmp_path / "old.json").write_text('{"format": "other"}')
    (tmp_path / "m.jsonl").write_text("")
    argv = ["evaluate", str(tmp_path / "m.jsonl"), "--compare", str(tmp_path / "old.json")]
    assert main(argv) == 2
    assert "expected 'sonicverse-evaluation'" in capsys.readouterr().err


def test_failed_and_skipped_rows_are_reported_by_row_number(
    manifest: Path, untagged_presets: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = manifest.read_text().splitlines()
    bad = manifest.parent / "bad.jsonl"  # beside the audio its rows name
    gone = json.dumps({"id": "gone", "audio": str(tmp_path / "no-such.wav")})
    bad.write_text("\n".join([lines[0], gone, lines[3]]) + "\n")
    out = tmp_path / "r"
    argv = ["evaluate", str(bad), "--preset", untagged_presets, "--out", str(out), "--no-plots"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "row 2 (id 'gone') failed" in err and "row 3 skipped" in err
    rows = json.loads((out / "report.json").read_text())["rows"]
    assert [(f["row"], f["id"]) for f in rows["failed"]] == [(2, "gone")]
    assert "no-such.wav" in rows["failed"][0]["reason"]
    assert [s["row"] for s in rows["skipped"]] == [3]
    md = (out / "report.md").read_text()
    assert "| 2 | gone | failed |" in md and "| 3 |  | skipped |" in md


def test_a_manifest_of_only_bad_rows_exits_1(tmp_path: Path) -> None:
    (tmp_path / "m.jsonl").write_text('{"labels": {}}\nnot json\n')
    argv = ["evaluate", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "r"), "--no-plots"]
    assert main(argv) == 1
    assert len(json.loads((tmp_path / "r" / "report.json").read_text())["rows"]["skipped"]) == 2


def test_out_is_checked_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    # the manifest does not exist either: --out is what is refused, first
    argv = ["evaluate", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "file")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "not a folder" in err


@pytest.mark.parametrize("score", ["caption", "narrative"])
def test_score_chooses_what_multi_region_rows_are_scored_on(
    manifest: Path, untagged_presets: str, tmp_path: Path, score: str
) -> None:
    out = tmp_path / score
    argv = ["evaluate", str(manifest), "--preset", untagged_presets, "--out", str(out)]
    main([*argv, "--score", score, "--no-plots"])
    report = json.loads((out / "report.json").read_text())
    assert report["options"]["score"] == score
    assert f"scored on their {score}" in (out / "report.md").read_text()
    text = report["predictions"][0]["caption"]
    # the 20 s songs are two 10 s regions: template captions are sentences; narratives are timed
    assert text.startswith("0:00") == (score == "narrative")
    if score == "caption":
        assert text.count("BPM") == 2


def test_manifest_import_command(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text("file,vocals,key_ref\nsong.ogg,female,Bb major\n")
    out = tmp_path / "m" / "manifest.jsonl"
    argv = ["manifest", "import", "--from", "labels-csv", str(tmp_path / "labels.csv")]
    assert main([*argv, "--out", str(out)]) == 0
    row = json.loads(out.read_text())
    assert row == {
        "id": "song",
        "audio": "../song.ogg",
        "labels": {"key": "Bb major", "vocals": "female"},
    }
