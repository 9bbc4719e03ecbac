"""The Lua JSON helpers of the REAPER and Ardour scripts pass the same cases, in every locale.

REAPER and Ardour run their Lua in the user's locale: in a decimal-comma locale
``string.format("%.17g", 1.5)`` writes ``1,5`` and the JSON sent to the engine was invalid.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CASES = Path(__file__).with_name("json_cases.lua")
LIBRARIES = {
    "reaper": ROOT / "daw_bridge" / "reaper" / "sonicverse_common.lua",
    "ardour": ROOT / "daw_bridge" / "ardour" / "sonicverse_lib.lua",
}
LUA = shutil.which("lua5.4")
DE = "de_DE.UTF-8"


def _has_locale(name: str) -> bool:
    if LUA is None:
        return False
    probe = f'os.exit(os.setlocale("{name}", "numeric") and 0 or 1)'
    return subprocess.run([LUA, "-e", probe]).returncode == 0


@pytest.mark.skipif(LUA is None, reason="lua5.4 not installed")
@pytest.mark.parametrize("locale", [None, DE], ids=["C", DE])
@pytest.mark.parametrize("daw", sorted(LIBRARIES))
def test_the_same_json_cases_pass(daw: str, locale: str | None) -> None:
    if locale and not _has_locale(locale):
        pytest.skip(f"locale {locale} is not generated here (locale-gen {locale})")
    cmd = [LUA, str(CASES), str(LIBRARIES[daw]), *([locale] if locale else [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok "), proc.stdout
