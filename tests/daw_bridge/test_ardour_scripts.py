"""The Ardour scripts in real headless Ardour (``ardour7-lua``) against a real engine.

A session is built from synthesized cadences in known keys (``tests/synth.py``), the scripts
annotate its regions and ranges through ``sonicverse send`` and a ``sonicverse engine``
subprocess (preset lite, a free loopback port), and the session must come back with the keys
in the region and range names and "SV:" range markers over them. Skips when Ardour is
not installed (``apt-get install ardour``; ``scripts/setup.sh --dev`` installs it, so CI runs it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.synth import drum_loop, progression

ROOT = Path(__file__).resolve().parents[2]
ARDOUR_DIR = ROOT / "daw_bridge" / "ardour"
DRIVER = Path(__file__).with_name("ardour_session.lua")
ARDOUR_LUA = next(
    (shutil.which(n) for n in ("ardour8-lua", "ardour7-lua", "ardour-lua") if shutil.which(n)),
    None,
)
SONICVERSE = shutil.which("sonicverse") or str(Path(sys.executable).with_name("sonicverse"))
PLAYER = """ardour {{ ["type"] = "dsp", name = "SV player {n}", category = "Utility",
  license = "MIT", author = "SonicVerse tests", description = [[plays one file]] }}
function dsp_ioconfig () return {{ {{ audio_in = -1, audio_out = -1 }} }} end
local rl, pos
function dsp_init (rate) rl = ARDOUR.Readable.load (Session, [==[{path}]==]); pos = 0 end
function dsp_run (ins, outs, n_samples)
  for c = 1, #outs do rl:at (math.min (c, rl:size ()) - 1):read (outs[c], pos, n_samples, 0) end
  pos = pos + n_samples
end
"""


def test_the_scripts_are_actions_with_a_library() -> None:
    names = {p.name for p in ARDOUR_DIR.glob("*.lua")}
    assert names == {
        "sonicverse_lib.lua",
        "sonicverse_annotate_regions.lua",
        "sonicverse_annotate_ranges.lua",
        "sonicverse_set_tempo.lua",
        "sonicverse_annotate_chords.lua",
        "sonicverse_annotate_form.lua",
    }
    for name in names - {"sonicverse_lib.lua"}:
        text = (ARDOUR_DIR / name).read_text(encoding="utf-8")
        assert '["type"] = "EditorAction"' in text and "function factory" in text


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _has_locale(name: str) -> bool:
    proc = subprocess.run(["locale", "-a"], capture_output=True, text=True)
    norm = name.lower().replace("utf-8", "utf8")
    return norm in {x.lower() for x in proc.stdout.split()}


needs_ardour = pytest.mark.skipif(
    ARDOUR_LUA is None, reason="headless Ardour (ardour7-lua) not installed"
)


def _keys_and_pad() -> list[tuple[str, np.ndarray, float]]:
    return [
        ("Keys", progression("C", "major", sr=48000), 0.0),
        ("Pad", progression("F#", "major", sr=48000), 10.0),
    ]


def run_session(
    tmp_path: Path,
    *,
    locale: str = "C.UTF-8",
    broken: str = "",
    tracks: list[tuple[str, np.ndarray, float]] | None = None,
    scripts: tuple[str, ...] = ("annotate_regions", "annotate_ranges"),
) -> list[str]:
    """Build the session from ``tracks`` ((name, 48 kHz audio, position in s); default: a C
    major and an F# major cadence), run ``scripts`` (``sonicverse_<name>.lua``) on it; the
    driver's output lines. A track whose audio is ``[2, frames]`` is a stereo track: its region
    has one source file a channel, as Ardour records and imports stereo."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "TMPDIR": str(tmp_path / "tmp"),
    }
    (tmp_path / "tmp").mkdir()
    scripts_dir = tmp_path / "config" / "ardour7" / "scripts"
    scripts_dir.mkdir(parents=True)
    tracks = tracks or _keys_and_pad()
    for n, (name, samples, _at) in enumerate(tracks, start=1):
        audio = tmp_path / f"{name}.wav"
        sf.write(audio, samples.T, 48000, subtype="FLOAT")
        (scripts_dir / f"ardour_player_{n}.lua").write_text(
            PLAYER.format(n=n, path=audio), encoding="utf-8"
        )
        env[f"SV_SECONDS_{n}"] = str(sf.info(audio).duration)
    port = _free_port()
    engine = subprocess.Popen(
        [
            SONICVERSE,
            "engine",
            "--preset",
            "lite",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--store",
            str(tmp_path / "store.sqlite3"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        env |= {"SONICVERSE_PORT": str(port), "SONICVERSE_COMMAND": SONICVERSE}
        deadline = time.monotonic() + 60
        while subprocess.run(
            [SONICVERSE, "send", "engine/ping", "--timeout", "1", "--retries", "0"],
            env=env,
            capture_output=True,
        ).returncode:
            assert engine.poll() is None, engine.stderr.read().decode() if engine.stderr else ""
            assert time.monotonic() < deadline, "the engine did not answer"
        env |= {
            "SV_SESSION": str(tmp_path / "session"),
            "SV_TRACKS": ";".join(f"{t[0]}@{t[2]}" for t in tracks),
            "SV_RANGES": "Verse@0.5-7.75;Chorus@10.25-18",  # fractions: a locale writes 0,5
            "SV_BREAK": broken,
            "SV_STEREO": ";".join(t[0] for t in tracks if t[1].ndim == 2),
            "SV_SCRIPTS": ";".join(str(ARDOUR_DIR / f"sonicverse_{k}.lua") for k in scripts),
            "SONICVERSE_ARDOUR_LIB": str(ARDOUR_DIR / "sonicverse_lib.lua"),
            "LC_ALL": locale,
        }
        proc = subprocess.run(
            [ARDOUR_LUA, str(DRIVER)], env=env, capture_output=True, text=True, timeout=300
        )
    finally:
        engine.terminate()
        engine.wait(timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    left = list((tmp_path / "tmp").glob("sonicverse_*"))
    assert not left, f"request or reply files left behind: {left}"
    return proc.stdout.splitlines()


@needs_ardour
@pytest.mark.parametrize("locale", ["C.UTF-8", "de_DE.UTF-8"])
def test_ardour_session_comes_back_annotated(tmp_path: Path, locale: str) -> None:
    if not _has_locale(locale):
        pytest.skip(f"locale {locale} is not generated here (locale-gen {locale})")
    out = run_session(tmp_path, locale=locale)
    assert f"LOCALE\t{'0,5' if locale.startswith('de') else '0.5'}" in out, out[:3]
    regions = sorted(x.split("\t")[1] for x in out if x.startswith("REGION"))
    assert len(regions) == 2, out
    assert regions[0].startswith("Keys") and "[SV C major" in regions[0], out
    assert regions[1].startswith("Pad") and "[SV F# major" in regions[1], out
    ranges = [x.split("\t")[1:] for x in out if x.startswith("RANGE")]
    named = {r[1].split(" [SV ")[0]: r[1] for r in ranges if not r[1].startswith("SV:")}
    assert "[SV C major" in named["Verse"] and "[SV F# major" in named["Chorus"], out
    ours = sorted((int(r[0]), r[1]) for r in ranges if r[1].startswith("SV:"))
    assert [r[0] for r in ours] == [0, 500, 10000, 10250], out
    keys = [r[1].split(" · ")[0] for r in ours]
    assert keys == ["SV: C major", "SV: C major", "SV: F# major", "SV: F# major"], out
    # each rename is one step in the session's undo history, with the names before and after
    history = (tmp_path / "session" / "sv.history").read_text(encoding="utf-8")
    steps = re.findall(r'<UndoTransaction[^>]*name="SonicVerse: name region"', history)
    assert len(steps) == 2, history[:2000]
    assert "[SV C major" in history and "[SV F# major" in history


@needs_ardour
@pytest.mark.parametrize("locale", ["C.UTF-8", "de_DE.UTF-8"])
def test_a_stereo_region_is_analysed_from_every_channel(tmp_path: Path, locale: str) -> None:
    # left silent, the cadence on the right only: the left channel's file alone is silence
    if not _has_locale(locale):
        pytest.skip(f"locale {locale} is not generated here (locale-gen {locale})")
    right = progression("C", "major", sr=48000)
    keys = np.stack([np.zeros_like(right), right])
    pad = progression("F#", "major", sr=48000)
    out = run_session(tmp_path, locale=locale, tracks=[("Keys", keys, 0.0), ("Pad", pad, 10.0)])
    assert "CHANNELS\tKeys\t2" in out and "CHANNELS\tPad\t1" in out, out
    regions = sorted(x.split("\t")[1] for x in out if x.startswith("REGION"))
    assert regions[0].startswith("Keys") and "[SV C major" in regions[0], out
    assert regions[1].startswith("Pad") and "[SV F# major" in regions[1], out
    ranges = [x.split("\t")[1:] for x in out if x.startswith("RANGE")]
    named = {r[1].split(" [SV ")[0]: r[1] for r in ranges if not r[1].startswith("SV:")}
    assert "[SV C major" in named["Verse"] and "[SV F# major" in named["Chorus"], out


@needs_ardour
def test_a_failing_region_is_reported_and_the_others_still_annotated(tmp_path: Path) -> None:
    out = run_session(tmp_path, broken="Keys")
    regions = sorted(x.split("\t")[1] for x in out if x.startswith("REGION"))
    assert "[SV" not in regions[0] and "[SV F# major" in regions[1], out
    ranges = {x.split("\t")[2].split(" [SV ")[0]: x for x in out if x.startswith("RANGE")}
    assert "[SV" not in ranges["Verse"] and "[SV F# major" in ranges["Chorus"], out
    report = [x for x in out if "SonicVerse: annotate ranges:" in x]
    assert report and "Verse: audio_error" in "\n".join(out), out


def test_no_blocking_or_shell_call_remains() -> None:
    for path in ARDOUR_DIR.glob("*.lua"):
        code = "\n".join(
            line.split("--", 1)[0] for line in path.read_text(encoding="utf-8").splitlines()
        )
        for call in ("io.popen", "os.execute", "os.tmpname"):
            assert call not in code, f"{path.name} calls {call}"


WINDOWS_PROBE = r"""
package.config = "\\\n;\n?\n!\n-\n"   -- what Lua reports on Windows
local env = { TEMP = [[{tmp}\]], PATH = [[C:\nowhere;{bin}]] }
os.getenv = function(k) return env[k] end
local sv = dofile([[{lib}]])
print(sv.temp_dir())
print(sv.command())
"""


@pytest.mark.skipif(shutil.which("lua5.4") is None, reason="lua5.4 not installed")
def test_on_windows_temp_files_go_to_temp_and_the_command_is_found_on_path(
    tmp_path: Path,
) -> None:
    # the Windows PATH separator is ";" and pip installs sonicverse.exe; this machine's "\"
    # is a plain character in a file name, which is enough to see the joined path
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (tmp_path / ("bin\\sonicverse.exe")).write_text("", encoding="utf-8")
    probe = (
        WINDOWS_PROBE.replace("{tmp}", str(tmp_path))
        .replace("{bin}", str(bin_dir))
        .replace("{lib}", str(ARDOUR_DIR / "sonicverse_lib.lua"))
    )
    proc = subprocess.run(
        [shutil.which("lua5.4"), "-"], input=probe, capture_output=True, text=True, check=True
    )
    temp, command = proc.stdout.splitlines()
    assert temp == str(tmp_path)
    assert command == f"{bin_dir}\\sonicverse.exe"


@pytest.mark.skipif(shutil.which("lua5.4") is None, reason="lua5.4 not installed")
def test_the_request_json_carries_the_channel_files_as_an_array() -> None:
    probe = (
        f"local sv = dofile([[{ARDOUR_DIR / 'sonicverse_lib.lua'}]])\n"
        'print(sv.json_object({ path = "/s/K%L.wav", start_s = 0.5,'
        ' channels = { "/s/K%R.wav", \'a "b"\' } }))'
    )
    proc = subprocess.run(
        [shutil.which("lua5.4"), "-"], input=probe, capture_output=True, text=True, check=True
    )
    assert json.loads(proc.stdout) == {
        "path": "/s/K%L.wav",
        "start_s": 0.5,
        "channels": ["/s/K%R.wav", 'a "b"'],
    }


def _tempo_map(session: Path) -> tuple[list[tuple[float, float, str]], list[tuple[float, str]]]:
    """The saved session's tempo points (s, quarters a minute, bar|beat|tick) and meters (s,
    "n/d")."""
    import xml.etree.ElementTree as ET

    tm = ET.parse(session / "sv.ardour").getroot().find(".//TempoMap")
    sps = float(tm.get("superclocks-per-second"))
    tempi = [
        (int(t.get("sclock")) / sps, float(t.get("npm")), t.get("bbt")) for t in tm.iter("Tempo")
    ]
    meters = [
        (int(m.get("sclock")) / sps, f"{m.get('divisions-per-bar')}/{m.get('note-value')}")
        for m in tm.iter("Meter")
    ]
    return tempi, meters


@needs_ardour
@pytest.mark.parametrize("locale", ["C.UTF-8", "de_DE.UTF-8"])
def test_set_tempo_puts_a_bar_at_the_first_downbeat(tmp_path: Path, locale: str) -> None:
    if not _has_locale(locale):
        pytest.skip(f"locale {locale} is not generated here (locale-gen {locale})")
    loop = ("Drums", drum_loop(120.0, 12.0, sr=48000), 2.0)
    out = run_session(tmp_path, locale=locale, tracks=[loop], scripts=("set_tempo", "set_tempo"))
    tempi, meters = _tempo_map(tmp_path / "session")
    ranges = [x.split("\t")[1:] for x in out if x.startswith("RANGE\t") and "\tSV:" in x]
    assert len(ranges) == 1 and ranges[0][1] == "SV: tempo 120 BPM 4/4", out  # replaced
    at_s = int(ranges[0][0]) / 1000
    assert 2.0 <= at_s < 4.1, at_s  # the loop's first downbeat, in session time
    # the analysed tempo from the downbeat, which is the first beat of a bar; before it a
    # lead-in of whole beats
    assert len(tempi) == 2 and tempi[0][0] == 0.0 and abs(tempi[1][0] - at_s) < 1e-3, tempi
    assert abs(tempi[1][1] - 120.0) < 2.0 and tempi[1][2].endswith("|1|0"), tempi
    lead_beats = at_s * tempi[0][1] / 60
    assert abs(lead_beats - round(lead_beats)) < 1e-3 and round(lead_beats) >= 1, tempi
    assert meters[-1][1] == "4/4" and abs(meters[-1][0] - at_s) < 1e-3, meters


@needs_ardour
def test_annotate_chords_puts_a_range_over_each_chord_and_replaces_them(tmp_path: Path) -> None:
    from tests.synth import chord

    sr, beat = 48000, 0.5
    bars = [[36, 60, 64, 67], [45, 57, 60, 64], [41, 57, 60, 65], [43, 55, 59, 62]] * 2
    y = np.concatenate([chord(m, beat, sr=sr) for m in bars for _ in range(4)])
    y = y + drum_loop(120.0, y.size / sr, sr=sr)[: y.size]
    out = run_session(
        tmp_path,
        tracks=[("Keys", y, 2.0)],
        scripts=("annotate_chords", "annotate_ranges", "annotate_chords"),
    )
    chords = [x.split("\t")[1:] for x in out if x.startswith("RANGE\t") and "\tSV\u266a" in x]
    assert [name.split(" ", 1)[1] for _, name in chords] == ["C:maj", "A:min", "F:maj", "G:maj"] * 2
    starts = [int(ms) / 1000 for ms, _ in chords]
    # in session time: the region starts at 2 s, a bar is 2 s
    assert all(abs(t - (2.0 + 2.0 * i)) < 0.15 for i, t in enumerate(starts)), starts
    # the user's ranges were annotated, the chord ranges were not taken for user ranges
    user = [x for x in out if x.startswith("RANGE\t") and "[SV " in x]
    assert len(user) == 2, out


@needs_ardour
def test_annotate_form_puts_a_range_marker_over_each_section(tmp_path: Path) -> None:
    from engine.audio import resample
    from tests.engine.test_form import SR, abab_song

    song = resample(abab_song(), sr=SR, target_sr=48000)
    out = run_session(
        tmp_path, tracks=[("Song", song, 1.0)], scripts=("annotate_form", "annotate_form")
    )
    ranges = [x.split("\t")[1:] for x in out if x.startswith("RANGE\t") and "SV: form" in x]
    names = [r[1] for r in ranges]
    assert len(ranges) == 4, out  # the second run replaced the first's
    assert [n.split(" · ")[0] for n in names] == [
        "SV: form Verse 1",
        "SV: form Chorus 1",
        "SV: form Verse 2",
        "SV: form Chorus 2",
    ], names
    starts = [int(r[0]) / 1000 for r in ranges]
    for at, true_s in zip(starts, (1.0, 17.0, 33.0, 49.0), strict=True):
        assert abs(at - true_s) < 2.0, starts  # within a bar, in session time
