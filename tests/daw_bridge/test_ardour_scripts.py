"""The Ardour scripts in real headless Ardour (``ardour7-lua``) against a real engine.

A session is built from synthesized cadences in known keys (``tests/synth.py``), the scripts
annotate its regions and ranges through ``sonicverse send`` and a ``sonicverse engine``
subprocess (preset lite, a free loopback port), and the session must come back with the keys
in the region and range names and "SV:" range markers over them. Skips when Ardour is
not installed (``apt-get install ardour``; ``scripts/setup.sh --dev`` installs it, so CI runs it).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from tests.synth import progression

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
  for c = 1, #outs do rl:at (0):read (outs[c], pos, n_samples, 0) end
  pos = pos + n_samples
end
"""


def test_the_scripts_are_actions_with_a_library() -> None:
    names = {p.name for p in ARDOUR_DIR.glob("*.lua")}
    assert names == {
        "sonicverse_lib.lua",
        "sonicverse_annotate_regions.lua",
        "sonicverse_annotate_ranges.lua",
    }
    for name in names - {"sonicverse_lib.lua"}:
        text = (ARDOUR_DIR / name).read_text(encoding="utf-8")
        assert '["type"] = "EditorAction"' in text and "function factory" in text


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(ARDOUR_LUA is None, reason="headless Ardour (ardour7-lua) not installed")
def test_ardour_session_comes_back_annotated(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    scripts_dir = tmp_path / "config" / "ardour7" / "scripts"
    scripts_dir.mkdir(parents=True)
    tracks = [("Keys", "C", "major", 0.0), ("Pad", "F#", "major", 10.0)]
    for n, (_name, tonic, mode, _at) in enumerate(tracks, start=1):
        audio = tmp_path / f"{tonic}_{mode}.wav"
        sf.write(audio, progression(tonic, mode, sr=48000), 48000, subtype="FLOAT")
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
            "SV_TRACKS": ";".join(f"{t[0]}@{t[3]}" for t in tracks),
            "SV_RANGES": "Verse@0-8;Chorus@10-18",
            "SV_SCRIPTS": ";".join(
                str(ARDOUR_DIR / f"sonicverse_annotate_{k}.lua") for k in ("regions", "ranges")
            ),
            "SONICVERSE_ARDOUR_LIB": str(ARDOUR_DIR / "sonicverse_lib.lua"),
        }
        proc = subprocess.run(
            [ARDOUR_LUA, str(DRIVER)], env=env, capture_output=True, text=True, timeout=300
        )
    finally:
        engine.terminate()
        engine.wait(timeout=30)
    out = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    regions = sorted(x.split("\t")[1] for x in out if x.startswith("REGION"))
    assert len(regions) == 2, out
    assert regions[0].startswith("Keys") and "[SV C major" in regions[0], out
    assert regions[1].startswith("Pad") and "[SV F# major" in regions[1], out
    ranges = [x.split("\t")[1:] for x in out if x.startswith("RANGE")]
    named = {r[1].split(" [SV ")[0]: r[1] for r in ranges if not r[1].startswith("SV:")}
    assert "[SV C major" in named["Verse"] and "[SV F# major" in named["Chorus"], out
    ours = sorted((r[0], r[1]) for r in ranges if r[1].startswith("SV:"))
    assert [r[0] for r in ours] == ["0.000", "10.000"], out
    assert ours[0][1].startswith("SV: C major") and ours[1][1].startswith("SV: F# major"), out
