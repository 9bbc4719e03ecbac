"""The ReaScripts: syntax, ReaPack headers, declared addresses, and a run against a stub REAPER.

The stub (``reaper_stub.lua``) implements the ReaScript calls the scripts make; rendering cuts
the scene's audio with sox, and ``reaper.ExecProcess`` really runs ``sonicverse send`` against
a real engine on 127.0.0.1 with the lite backend.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from daw_bridge import protocol

REAPER_DIR = Path(__file__).resolve().parents[2] / "daw_bridge" / "reaper"
SCRIPTS = sorted(REAPER_DIR.glob("*.lua"))
MAIN = REAPER_DIR / "sonicverse_annotate_selected_items.lua"
STUB = Path(__file__).with_name("reaper_stub.lua")
LUA = shutil.which("lua5.4")
LUAC = shutil.which("luac5.4")
SONICVERSE = shutil.which("sonicverse") or str(Path(sys.executable).with_name("sonicverse"))
ADDRESS = re.compile(r"/sonicverse/[A-Za-z0-9_]+/[A-Za-z0-9_]+")


def test_there_are_the_six_actions_and_their_library():
    assert {p.name for p in SCRIPTS} == {
        "sonicverse_common.lua",
        "sonicverse_annotate_form.lua",
        "sonicverse_annotate_selected_items.lua",
        "sonicverse_annotate_regions.lua",
        "sonicverse_narrate_project.lua",
        "sonicverse_set_project_tempo.lua",
        "sonicverse_annotate_chords.lua",
        "sonicverse_configure.lua",
    }


@pytest.mark.skipif(LUAC is None, reason="luac5.4 not installed")
@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_lua_syntax(script: Path) -> None:
    subprocess.run([LUAC, "-p", str(script)], check=True)


def test_every_address_the_scripts_use_is_a_declared_request():
    used = {a for p in SCRIPTS for a in ADDRESS.findall(p.read_text(encoding="utf-8"))}
    assert used, "the scripts use no address"
    assert used <= set(protocol.REQUESTS), used - set(protocol.REQUESTS)


def test_reapack_headers():
    text = MAIN.read_text(encoding="utf-8")
    for tag in ("@description", "@version", "@author", "@about", "@provides"):
        assert re.search(rf"^-- {tag}\b", text, re.M), tag
    provided = set(re.findall(r"^--\s+\[(?:main|nomain)\] (\S+)$", text, re.M))
    assert provided == {p.name for p in SCRIPTS} - {MAIN.name}
    for p in SCRIPTS:
        if p != MAIN:
            assert p.read_text(encoding="utf-8").startswith("-- @noindex\n"), p.name


def _tones(path: Path, freqs: list[float], seconds_each: float = 1.0, sr: int = 22050) -> Path:
    t = np.arange(int(sr * seconds_each)) / sr
    x = np.concatenate([0.3 * np.sin(2 * np.pi * f * t) * np.exp(-2 * t) for f in freqs])
    sf.write(path, x.astype(np.float32), sr, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory):
    from engine import presets
    from engine.pipeline import Annotator
    from engine.server import EngineServer, ServerConfig
    from engine.store import Store

    tmp = tmp_path_factory.mktemp("engine")
    annotator = Annotator(presets.load("lite"), store=Store(tmp / "store.sqlite3"))
    server = EngineServer(annotator, ServerConfig(port=0))
    server.start()
    yield server
    server.stop()
    annotator.close()


def _lua_str(s: str) -> str:
    return "[==[" + s + "]==]"


def run_scene(
    tmp_path: Path,
    port: int,
    scene: str,
    *scripts: str,
    times: int = 1,
    command: str = SONICVERSE,
    messages: bool = False,
    renders: bool = False,
    undo: bool = False,
    app_version: str = "",
) -> list[str]:
    """Run the scripts in the stub; the project's state one fact a line (EXEC lines left out,
    RENDERED lines unless ``renders``, UNDO lines unless ``undo``). Afterwards the scripts'
    temp folder must be empty, and no edit the stub watches may have happened outside an undo
    block."""
    scene_file = tmp_path / "scene.lua"
    ext = f'ext = {{ command = {_lua_str(command)}, port = "{port}", host = "127.0.0.1" }},'
    if app_version:
        ext += f" app_version = '{app_version}',"
    scene_file.write_text(f"return {{ {ext} {scene} }}\n", encoding="utf-8")
    paths = [str(REAPER_DIR / s) for s in scripts] * times
    # `sonicverse` is the venv's entry point: make it import this checkout's daw_bridge
    root = str(REAPER_DIR.parents[1])
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": root}
    proc = subprocess.run(
        [LUA, str(STUB), str(scene_file), *paths],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    skip = ("EXEC",) + (() if renders else ("RENDERED",)) + (() if undo else ("UNDO\t",))
    assert "UNDOLESS" not in proc.stdout, proc.stdout
    lines = [x for x in proc.stdout.splitlines() if not x.startswith(skip)]
    temp = tmp_path / "sonicverse"
    left = sorted(p.name for p in temp.iterdir()) if temp.exists() else []
    assert not left, f"left in the temp folder: {left}"
    if not messages:
        assert not [x for x in lines if x.startswith("MSG")], lines
    return lines


needs_lua = pytest.mark.skipif(
    LUA is None or shutil.which("sox") is None, reason="lua5.4 and sox are needed"
)


@needs_lua
def test_annotate_selected_items_twice_writes_once(engine, tmp_path: Path) -> None:
    a = _tones(tmp_path / "a.wav", [220.0, 330.0])
    b = _tones(tmp_path / "b.wav", [440.0])
    scene = (
        "items = {"
        f" {{ source = {_lua_str(str(a))}, length = 2.0, track = 'Vox', name = 'take A',"
        "    notes = 'keep me', startoffs = 1.5 },"
        f" {{ source = {_lua_str(str(b))}, length = 1.0, track = 'Keys', name = 'take B' }} }},"
    )
    once = run_scene(tmp_path, engine.address[1], scene, MAIN.name)
    twice = run_scene(tmp_path, engine.address[1], scene, MAIN.name, times=2)
    for lines in (once, twice):
        markers = [x.split("\t") for x in lines if x.startswith("TAKEMARKER")]
        assert [(m[1], m[2]) for m in markers] == [("take A", "1.500"), ("take B", "0.000")]
        assert all(re.match(r"SV: [A-G][#b]? (major|minor)( · |$)", m[3]) for m in markers), markers
        items = [x.split("\t") for x in lines if x.startswith("ITEM")]
        assert [i[2] for i in items] == ["true", "true"], "selection not restored"
        notes = items[0][3]
        assert notes.startswith("keep me\\n[SonicVerse]\\n") and notes.count("[SonicVerse]") == 1
        info = dict(x.split("\t")[1:] for x in lines if x.startswith("INFO"))
        assert info["RENDER_FILE"] == "/nowhere" and info["RENDER_SETTINGS"] == "0", info
    assert once == twice


@needs_lua
def test_annotate_regions_and_narrate_project_are_idempotent(engine, tmp_path: Path) -> None:
    mix = _tones(tmp_path / "mix.wav", [196.0, 247.0, 294.0, 392.0, 330.0, 262.0])
    scene = (
        f"mix = {_lua_str(str(mix))}, length = 6.0, project_notes = 'session notes',"
        "regions = { { pos = 1.0, rgnend = 3.0, name = 'Verse' },"
        "            { pos = 3.0, rgnend = 5.5, name = 'Chorus [SV old guess]' } },"
    )
    scripts = ("sonicverse_annotate_regions.lua", "sonicverse_narrate_project.lua")
    once = run_scene(tmp_path, engine.address[1], scene, *scripts)
    twice = run_scene(tmp_path, engine.address[1], scene, *scripts, times=2)
    assert once == twice
    regions = [x.split("\t") for x in once if x.startswith("REGION")]
    assert [r[3].split(" [SV ")[0] for r in regions] == ["Verse", "Chorus"]
    assert all(r[3].count("[SV ") == 1 and r[3].endswith("]") for r in regions)
    markers = [x for x in once if x.startswith("MARKER")]
    assert markers and all("\tSV: " in m for m in markers)
    notes = next(x for x in once if x.startswith("PROJNOTES")).split("\t", 1)[1]
    assert notes.startswith("session notes\\n[SonicVerse]\\n")
    assert "0:01  Verse: " in notes and "0:03  Chorus: " in notes


def _loudness(lines: list[str]) -> str:
    notes = next(x for x in lines if x.startswith("ITEM")).split("\t")[3]
    return re.search(r"Loudness: (-?[\d.]+) LUFS", notes).group(1)


@needs_lua
def test_names_with_quotes_and_a_command_path_with_a_space(engine, tmp_path: Path) -> None:
    # ExecProcess has no shell: POSIX quoting of "Mike's Gtr" or an unquoted path with a
    # space used to break the call
    a = _tones(tmp_path / "a.wav", [220.0, 330.0])
    tools = tmp_path / "my tools"
    tools.mkdir()
    command = tools / "sonicverse"
    command.symlink_to(SONICVERSE)
    scene = (
        f"items = {{ {{ source = {_lua_str(str(a))}, length = 2.0, track = [[Mike's Gtr]],"
        """ name = [[Mike's "best" take]] } },"""
    )
    lines = run_scene(tmp_path, engine.address[1], scene, MAIN.name, command=str(command))
    markers = [x.split("\t") for x in lines if x.startswith("TAKEMARKER")]
    assert len(markers) == 1 and markers[0][3].startswith("SV: "), lines


@needs_lua
def test_render_post_processing_is_neutralised_and_restored(engine, tmp_path: Path) -> None:
    a = _tones(tmp_path / "a.wav", [220.0, 330.0])
    item = (
        f"items = {{ {{ source = {_lua_str(str(a))}, length = 2.0, track = 'T', name = 'x' }} }},"
    )
    plain = run_scene(tmp_path, engine.address[1], item, MAIN.name)
    user = "render = { RENDER_NORMALIZE = 1, RENDER_DITHER = 3, RENDER_FORMAT2 = 'Y2FsZg==' },"
    post = run_scene(tmp_path, engine.address[1], item + user, MAIN.name)
    assert _loudness(post) == _loudness(plain)
    info = dict(x.split("\t")[1:] for x in post if x.startswith("INFO"))
    assert (info["RENDER_NORMALIZE"], info["RENDER_DITHER"], info["RENDER_FORMAT2"]) == (
        "1",
        "3",
        "Y2FsZg==",
    )


@needs_lua
def test_rename_marker_can_clear_a_region_name(tmp_path: Path) -> None:
    script = tmp_path / "rename.lua"
    script.write_text(
        f"local sv = dofile({_lua_str(str(REAPER_DIR / 'sonicverse_common.lua'))})\n"
        "sv.rename_marker(0, true, 1.0, 3.0, 1, '', 0)\n"
        "sv.rename_marker(1, false, 2.0, 0, 1, 'kept', 0)\n",
        encoding="utf-8",
    )
    scene = (
        "regions = { { pos = 1.0, rgnend = 3.0, name = '[SV old]' } },"
        "markers = { { pos = 2.0, name = 'cue' } },"
    )
    lines = run_scene(tmp_path, 0, scene, str(script))
    assert "REGION\t1.000\t3.000\t" in lines and "MARKER\t2.000\t0.000\tkept" in lines, lines


@needs_lua
def test_cancel_stops_before_writing(engine, tmp_path: Path) -> None:
    a = _tones(tmp_path / "a.wav", [220.0])
    scene = (
        f"items = {{ {{ source = {_lua_str(str(a))}, length = 1.0, track = 'T', name = 'x' }} }},"
        "cancel_at_tick = 1,"
    )
    lines = run_scene(tmp_path, engine.address[1], scene, MAIN.name)
    assert not [x for x in lines if x.startswith("TAKEMARKER")], lines


def test_reapack_index_offers_exactly_the_scripts_at_their_version() -> None:
    import xml.etree.ElementTree as ET

    root = REAPER_DIR.parents[1]
    index = ET.parse(root / "index.xml").getroot()
    version = index.find(".//version")
    text = MAIN.read_text(encoding="utf-8")
    assert version is not None and version.get("name") == re.search(
        r"^-- @version (\S+)$", text, re.M
    ).group(1)
    sources = {s.text.rsplit("/", 1)[1] for s in version.iter("source")}
    assert sources == {p.name for p in SCRIPTS}
    conf = (root / ".reapack-index.conf").read_text(encoding="utf-8")
    for folder in ("engine", "tests", "scripts", "daw_bridge/ableton", "daw_bridge/ardour"):
        assert f"--ignore {folder}\n" in conf


def _item(path: Path, name: str, **extra: str) -> str:
    more = "".join(f", {k} = {v}" for k, v in extra.items())
    return f"{{ source = {_lua_str(str(path))}, length = 1.0, track = 'T', name = '{name}'{more} }}"


@needs_lua
def test_renders_at_48k_stereo_and_restores_the_users_rate_and_channels(
    engine, tmp_path: Path
) -> None:
    a = _tones(tmp_path / "a.wav", [220.0])
    scene = (
        f"items = {{ {_item(a, 'x')} }}, render = {{ RENDER_SRATE = 8000, RENDER_CHANNELS = 1 }},"
    )
    lines = run_scene(tmp_path, engine.address[1], scene, MAIN.name, renders=True)
    assert [x for x in lines if x.startswith("RENDERED")] == ["RENDERED\t48000\t2"], lines
    info = dict(x.split("\t")[1:] for x in lines if x.startswith("INFO"))
    assert (info["RENDER_SRATE"], info["RENDER_CHANNELS"]) == ("8000", "1")


@needs_lua
def test_midi_items_and_items_without_a_take_are_skipped_and_stay_selected(
    engine, tmp_path: Path
) -> None:
    a = _tones(tmp_path / "a.wav", [220.0])
    items = [_item(a, "audio"), _item(a, "midi", midi="true"), _item(a, "empty", notake="true")]
    scene = f"items = {{ {', '.join(items)} }},"
    lines = run_scene(tmp_path, engine.address[1], scene, MAIN.name, messages=True)
    markers = [x.split("\t")[1] for x in lines if x.startswith("TAKEMARKER")]
    assert markers == ["audio"], lines
    msgs = [x for x in lines if x.startswith("MSG")]
    assert len(msgs) == 1 and "midi: a MIDI item" in msgs[0] and "no active take" in msgs[0]
    items_state = [x.split("\t")[1:3] for x in lines if x.startswith("ITEM")]
    assert items_state == [["audio", "true"], ["midi", "true"], ["empty", "true"]]


@needs_lua
def test_a_selection_made_during_the_run_is_kept_and_deleted_items_are_passed_over(
    engine, tmp_path: Path
) -> None:
    a = _tones(tmp_path / "a.wav", [220.0, 330.0])
    items = [_item(a, n) for n in ("one", "two", "three")]
    scene = (
        f"items = {{ {', '.join(items)} }},"
        "select_at_tick = { tick = 2, names = { 'three' } },"
        "delete_at_tick = { tick = 2, name = 'two' },"
    )
    lines = run_scene(tmp_path, engine.address[1], scene, MAIN.name, messages=True)
    state = {x.split("\t")[1]: x.split("\t")[2] for x in lines if x.startswith("ITEM")}
    assert state == {"one": "false", "two": "false", "three": "true"}, lines
    markers = [x.split("\t")[1] for x in lines if x.startswith("TAKEMARKER")]
    assert markers == ["one", "three"], lines
    assert any("two: deleted during the run" in x for x in lines if x.startswith("MSG")), lines


@needs_lua
def test_a_missing_program_is_reported_at_once(engine, tmp_path: Path) -> None:
    a = _tones(tmp_path / "a.wav", [220.0])
    scene = f"items = {{ {_item(a, 'x')} }},"
    lines = run_scene(
        tmp_path, engine.address[1], scene, MAIN.name, command="no-such-sonicverse", messages=True
    )
    assert any("could not run" in x for x in lines if x.startswith("MSG")), lines


@needs_lua
def test_reaper_6_is_told_the_minimum_version(engine, tmp_path: Path) -> None:
    a = _tones(tmp_path / "a.wav", [220.0])
    scene = f"items = {{ {_item(a, 'x')} }},"
    lines = run_scene(
        tmp_path, engine.address[1], scene, MAIN.name, app_version="6.83/x64", messages=True
    )
    assert any("needs REAPER 7.0 or later" in x for x in lines if x.startswith("MSG")), lines
    assert not [x for x in lines if x.startswith("TAKEMARKER")]


@needs_lua
def test_numbers_reach_the_engine_intact_in_a_decimal_comma_locale(engine, tmp_path: Path) -> None:
    mix = _tones(tmp_path / "mix.wav", [196.0, 247.0, 294.0])
    scene = (
        f"mix = {_lua_str(str(mix))}, length = 3.0,"
        "regions = { { pos = 0.5, rgnend = 2.25, name = 'Verse' } },"
        "locale = 'de_DE.UTF-8',"
    )
    lines = run_scene(tmp_path, engine.address[1], scene, "sonicverse_annotate_regions.lua")
    region = next(x for x in lines if x.startswith("REGION"))
    assert "Verse [SV " in region, lines


TEMPO_SCRIPT = "sonicverse_set_project_tempo.lua"
FAKE_SEND = """#!{python}
# `sonicverse send` answering every request with the narrate result in {result}
import json, os, sys
out = sys.argv[sys.argv.index("--output") + 1]
with open({result!r}, encoding="utf-8") as f:
    result = json.load(f)
with open(out + ".part", "w", encoding="utf-8") as f:
    json.dump({{"ok": True, "id": "x", "address": sys.argv[2], "result": result}}, f)
os.replace(out + ".part", out)
"""


def _fake_send(tmp_path: Path, result: dict) -> str:
    """A stand-in for ``sonicverse send`` that answers ``result`` (a narrate result's grid)."""
    import json

    data = tmp_path / "result.json"
    data.write_text(json.dumps(result), encoding="utf-8")
    command = tmp_path / "fake-sonicverse"
    command.write_text(FAKE_SEND.format(python=sys.executable, result=str(data)), encoding="utf-8")
    command.chmod(0o755)
    return str(command)


def _grid(meter: str, tempi: list[tuple[float, float, float]], first: float) -> dict:
    """A narrate result's grid: beats from ``first`` (a downbeat) through ``tempi``."""
    per_bar = {"4/4": 4, "3/4": 3, "2/4": 2, "6/8": 2}[meter]
    beats, t, n = [], first, 0
    for start_s, end_s, bpm in tempi:
        t = max(t, start_s)
        while t < end_s:
            beats.append({"time_s": round(t, 4), "position": n % per_bar + 1})
            t, n = t + 60.0 / bpm, n + 1
    return {
        "tempo_bpm": tempi[0][2],
        "meter": meter,
        "beats": [{"time_s": 0.1, "position": per_bar}, *beats],  # a pickup beat first
        "tempi": [{"start_s": a, "end_s": b, "bpm": c} for a, b, c in tempi],
        "regions": [],
        "narrative": {"text": "", "sections": [], "events": []},
    }


def _tempo(lines: list[str]) -> list[tuple[float, float, str]]:
    out = []
    for x in lines:
        if x.startswith("TEMPO"):
            _, t, bpm, sig = x.replace(",", ".").split("\t")
            out.append((float(t), float(bpm), sig))
    return out


@needs_lua
@pytest.mark.parametrize("locale", ["C", "de_DE.UTF-8"])
def test_set_project_tempo_writes_the_grid_once_as_one_undo_step(tmp_path: Path, locale: str):
    mix = _tones(tmp_path / "mix.wav", [220.0] * 8)
    command = _fake_send(tmp_path, _grid("3/4", [(0.5, 4.0, 100.0), (4.0, 8.0, 132.0)], 0.5))
    scene = (
        f"mix = {_lua_str(str(mix))}, length = 8.0, locale = '{locale}',"
        "tempo_markers = { { time = 0, bpm = 90, num = 4, den = 4 },"  # the user's own
        "                  { time = 6.5, bpm = 140, num = 0, den = 0 } },"
    )
    once = run_scene(tmp_path, 0, scene, TEMPO_SCRIPT, command=command)
    assert _tempo(once) == [
        (0.0, 90.0, "4/4"),
        (0.5, 100.0, "3/4"),  # the first downbeat, not the pickup at 0.1
        (4.0, 132.0, "0/0"),  # the second tempo span: tempo only
        (6.5, 140.0, "0/0"),
    ], once
    twice = run_scene(tmp_path, 0, scene, TEMPO_SCRIPT, command=command, times=2, undo=True)
    assert _tempo(twice) == _tempo(once)  # the second run replaced what the first wrote
    assert [x for x in twice if x.startswith("UNDO")] == ["UNDO\tSonicVerse: set project tempo"] * 2


@needs_lua
def test_set_project_tempo_replaces_what_an_earlier_analysis_wrote(tmp_path: Path) -> None:
    mix = _tones(tmp_path / "mix.wav", [220.0] * 8)
    # an earlier run wrote 120 BPM at 1 s (recorded in the project); the user added 120 at 5 s
    scene = (
        f"mix = {_lua_str(str(mix))}, length = 8.0, proj_ext = {{ tempo_markers = '1 120' }},"
        "tempo_markers = { { time = 1.0, bpm = 120 }, { time = 5.0, bpm = 120 } },"
    )
    command = _fake_send(tmp_path, _grid("6/8", [(0.75, 8.0, 80.0)], 0.75))
    lines = run_scene(tmp_path, 0, scene, TEMPO_SCRIPT, command=command)
    # 80 dotted quarters a minute are 120 quarters
    assert _tempo(lines) == [(0.75, 120.0, "6/8"), (5.0, 120.0, "0/0")], lines


@needs_lua
def test_set_project_tempo_without_beats_says_so_and_changes_nothing(tmp_path: Path) -> None:
    mix = _tones(tmp_path / "mix.wav", [220.0] * 2)
    silent = {**_grid("4/4", [(0.0, 1.0, 120.0)], 0.0), "tempo_bpm": None, "meter": None}
    silent |= {"beats": [], "tempi": []}
    command = _fake_send(tmp_path, silent)
    scene = f"mix = {_lua_str(str(mix))}, length = 2.0,"
    lines = run_scene(tmp_path, 0, scene, TEMPO_SCRIPT, command=command, messages=True)
    assert not _tempo(lines)
    assert any("no beat" in x for x in lines if x.startswith("MSG")), lines


@needs_lua
def test_set_project_tempo_from_a_real_analysis(engine, tmp_path: Path) -> None:
    from tests.synth import drum_loop

    mix = tmp_path / "loop.wav"
    sf.write(mix, drum_loop(120.0, 12.0, sr=22050), 22050, subtype="PCM_16")
    scene = f"mix = {_lua_str(str(mix))}, length = 12.0,"
    lines = run_scene(tmp_path, engine.address[1], scene, TEMPO_SCRIPT, times=2)
    tempo = _tempo(lines)
    assert len(tempo) == 1, lines
    time_s, bpm, sig = tempo[0]
    assert abs(bpm - 120.0) < 2.0 and sig == "4/4" and time_s < 2.5, tempo


@needs_lua
def test_regions_and_markers_sharing_a_number_are_each_written(engine, tmp_path: Path) -> None:
    # REAPER does not keep region/marker numbers unique: address them by index, not number
    mix = _tones(tmp_path / "mix.wav", [196.0, 247.0, 294.0, 392.0, 330.0, 262.0])
    scene = (
        f"mix = {_lua_str(str(mix))}, length = 6.0,"
        "regions = { { pos = 1.0, rgnend = 3.0, name = 'Verse', number = 1 },"
        "            { pos = 3.0, rgnend = 5.5, name = 'Chorus', number = 1 } },"
        "markers = { { pos = 0.5, name = 'SV: old', number = 2 },"
        "            { pos = 4.0, name = 'cue', number = 2 } },"
    )
    scripts = ("sonicverse_annotate_regions.lua", "sonicverse_narrate_project.lua")
    lines = run_scene(tmp_path, engine.address[1], scene, *scripts)
    regions = [x.split("\t")[3] for x in lines if x.startswith("REGION")]
    assert [r.split(" [SV ")[0] for r in regions] == ["Verse", "Chorus"], lines
    assert all(r.count("[SV ") == 1 for r in regions), lines
    markers = [x.split("\t")[3] for x in lines if x.startswith("MARKER")]
    assert "cue" in markers and "SV: old" not in markers, lines


CHORD_SCRIPT = "sonicverse_annotate_chords.lua"


def _chord_result(chords: list[tuple[float, float, str]]) -> dict:
    """A narrate result carrying ``chords`` (and an empty grid)."""
    return {
        **_grid("4/4", [(0.0, 8.0, 120.0)], 0.0),
        "chords": [{"start_s": a, "end_s": b, "chord": c, "confidence": 0.9} for a, b, c in chords],
    }


def _markers(lines: list[str]) -> list[tuple[float, str]]:
    return [
        (float(x.split("\t")[1].replace(",", ".")), x.split("\t")[3])
        for x in lines
        if x.startswith("MARKER")
    ]


@needs_lua
def test_annotate_chords_writes_a_marker_per_chord_once_as_one_undo_step(tmp_path: Path) -> None:
    mix = _tones(tmp_path / "mix.wav", [220.0] * 8)
    chords = [(0.0, 0.5, "N"), (0.5, 2.5, "A:min"), (2.5, 4.5, "F:maj"), (4.5, 8.0, "G:7")]
    command = _fake_send(tmp_path, _chord_result(chords))
    scene = (
        f"mix = {_lua_str(str(mix))}, length = 8.0,"
        "markers = { { isrgn = false, pos = 1.0, rgnend = 0, number = 1, name = 'verse' },"
        "            { isrgn = false, pos = 3.0, rgnend = 0, number = 2, name = 'SV: x' } },"
    )
    once = run_scene(tmp_path, 0, scene, CHORD_SCRIPT, command=command)
    assert _markers(once) == [
        (0.0, "SV\u266a N.C."),
        (0.5, "SV\u266a A:min"),
        (1.0, "verse"),
        (2.5, "SV\u266a F:maj"),
        (3.0, "SV: x"),  # the narrative's marker stays
        (4.5, "SV\u266a G:7"),
    ], once
    twice = run_scene(tmp_path, 0, scene, CHORD_SCRIPT, command=command, times=2, undo=True)
    assert _markers(twice) == _markers(once)
    assert [x for x in twice if x.startswith("UNDO")] == ["UNDO\tSonicVerse: annotate chords"] * 2


@needs_lua
def test_annotate_chords_without_chords_says_so_and_changes_nothing(tmp_path: Path) -> None:
    mix = _tones(tmp_path / "mix.wav", [220.0] * 2)
    command = _fake_send(tmp_path, _chord_result([]))
    scene = f"mix = {_lua_str(str(mix))}, length = 2.0,"
    lines = run_scene(tmp_path, 0, scene, CHORD_SCRIPT, command=command, messages=True)
    assert not _markers(lines)
    assert any("no chords" in x for x in lines if x.startswith("MSG")), lines


@needs_lua
def test_annotate_chords_from_a_real_analysis(engine, tmp_path: Path) -> None:
    from tests.synth import chord, drum_loop

    sr, beat = 22050, 0.5
    bars = [[36, 60, 64, 67], [45, 57, 60, 64], [41, 57, 60, 65], [43, 55, 59, 62]] * 2
    y = np.concatenate([chord(m, beat, sr=sr) for m in bars for _ in range(4)])
    y = y + drum_loop(120.0, y.size / sr, sr=sr)[: y.size]
    mix = tmp_path / "song.wav"
    sf.write(mix, y, sr, subtype="PCM_16")
    scene = f"mix = {_lua_str(str(mix))}, length = {y.size / sr},"
    marks = _markers(run_scene(tmp_path, engine.address[1], scene, CHORD_SCRIPT, times=2))
    names = [name.split(" ", 1)[1] for _, name in marks]
    assert names == ["C:maj", "A:min", "F:maj", "G:maj"] * 2, marks
    assert all(abs(t - 2.0 * i) < 0.15 for i, (t, _) in enumerate(marks)), marks


@pytest.mark.skipif(LUA is None, reason="lua5.4 is needed")
@pytest.mark.parametrize("lib", ["reaper/sonicverse_common.lua", "ardour/sonicverse_lib.lua"])
def test_summaries_name_a_gender_only_when_sure(lib: str) -> None:
    """REAPER's and Ardour's labels say "vocals" where P(gender | vocals) < 0.7, as the panel,
    the exports and the narrative do."""
    path = REAPER_DIR.parent / lib
    code = (
        f"local sv = dofile({_lua_str(str(path))})\n"
        "print(sv.summary({key={key='A minor'}, tempo_bpm=124.2,"
        " vocals={label='male', probabilities={0.05, 0.5, 0.45}}}))\n"
        "print(sv.summary({vocals={label='female', probabilities={0.05, 0.05, 0.9}}}))\n"
        "print(sv.summary({vocals={label='none', probabilities={0.9, 0.05, 0.05}}}))\n"
    )
    proc = subprocess.run([LUA, "-e", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "A minor · vocals · 124 BPM",
        "female vocals",
        "no vocals",
    ]
