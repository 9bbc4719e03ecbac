"""The ReaPack repository: what reapack-index indexes, and the index we generate.

reapack-index treats every ``.lua``/``.eel``/``.py``/``.jsfx``/``.txt``... file outside the
repository root as a package unless ``.reapack-index.conf`` ignores it (``--ignore PATH``
skips every file whose path starts with ``PATH/`` or is ``PATH``); only
``daw_bridge/reaper`` holds packages.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from scripts.gen_reapack_index import REPO_PLACEHOLDER, block, repo_url

ROOT = Path(__file__).resolve().parents[2]
REAPER = "daw_bridge/reaper/"
MAIN = ROOT / REAPER / "sonicverse_annotate_selected_items.lua"
# reapack-index's ReaPack::Index::PKG_TYPES: every extension it indexes
PACKAGE_EXTENSIONS = {
    "lua", "eel", "py", "ext", "jsfx", "data", "theme", "reaperlangpack", "www", "rpp",
    "rtracktemplate", "txt", "reaperautoitem", "reaperkeymap",
}  # fmt: skip
REAPACK_INDEX = shutil.which("reapack-index")


def _ignores() -> list[str]:
    words = shlex.split((ROOT / ".reapack-index.conf").read_text(encoding="utf-8"))
    return [words[i + 1].rstrip("/") for i, w in enumerate(words) if w in ("--ignore", "-i")]


def _ignored(path: str, ignores: list[str]) -> bool:
    return any((path + "/").startswith(pattern + "/") for pattern in ignores)


def _tracked() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return out.splitlines()


def test_every_script_like_file_outside_daw_bridge_reaper_is_ignored() -> None:
    ignores = _ignores()
    packages = [
        p for p in _tracked() if "/" in p and p.rsplit(".", 1)[-1].lower() in PACKAGE_EXTENSIONS
    ]
    assert any(p.startswith("daw_bridge/ardour/") for p in packages), "the check sees no files"
    stray = [p for p in packages if not p.startswith(REAPER) and not _ignored(p, ignores)]
    assert not stray, f"reapack-index would index these as packages: {stray}"
    hidden = [p for p in packages if p.startswith(REAPER) and _ignored(p, ignores)]
    assert not hidden, hidden


def test_the_ignore_semantics_match_reapack_index() -> None:
    assert _ignored("bench/decode.py", ["bench"])
    assert not _ignored("benchmarks/x.py", ["bench"]) and not _ignored("bench/x.py", ["benchmarks"])
    assert _ignored("daw_bridge/send.py", ["daw_bridge/send.py"])
    assert not _ignored("daw_bridge/reaper/a.lua", ["daw_bridge/r"])


@pytest.mark.skipif(REAPACK_INDEX is None, reason="reapack-index is not installed")
def test_reapack_index_check_passes(tmp_path: Path) -> None:
    # reapack-index reads the folder, untracked files too (a .venv): check the tracked files
    tracked = (
        subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, tracked):
        src = ROOT / name
        if src.is_file():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, tmp_path / name)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "check"], cwd=tmp_path, check=True)
    cmd = [REAPACK_INDEX, "--check"]
    if repo_url() == REPO_PLACEHOLDER:  # no remote: give the download links a template
        cmd += ["--url-template", REPO_PLACEHOLDER + "/raw/$commit/$path"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "with 0 failures" in proc.stdout + proc.stderr


def test_the_index_describes_in_rtf_with_the_changelog_and_a_real_or_placeholder_url() -> None:
    index = ET.parse(ROOT / "index.xml").getroot()
    description = index.find(".//metadata/description")
    assert description is not None and (description.text or "").startswith("{\\rtf"), (
        "ReaPack reads the description as RTF"
    )
    assert "SonicVerse for REAPER" in description.text and "# SonicVerse" not in description.text
    changelog = index.find(".//version/changelog")
    text = MAIN.read_text(encoding="utf-8")
    assert changelog is not None and changelog.text == block(text, "changelog")
    assert changelog.text
    link = index.find(".//metadata/link")
    assert link is not None and link.text == repo_url()
    sources = [s.text or "" for s in index.iter("source")]
    assert all(s.startswith(repo_url() + "/raw/") for s in sources), sources


def test_readme_names_the_actions_as_reaper_lists_them_and_a_usable_index_url() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    text = MAIN.read_text(encoding="utf-8")
    mains = [MAIN.name, *re.findall(r"^--\s+\[main\] (\S+)$", text, re.M)]
    for name in mains:  # REAPER's Action List shows "Script: <file name>"
        assert f"Script: {name}" in readme, name
    assert "SonicVerse: configure" not in readme
    urls = re.findall(r"https://\S+/index\.xml", readme)
    assert urls and all(u.startswith(repo_url() + "/raw/") for u in urls), urls
    assert "REAPER** (7.0 or later" in readme
