"""The README stays a true, short guide: its test command is CI's, its quickstart is two
commands, its links resolve, and it carries no development history."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
USER_FACING = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


def _section(text: str, title: str) -> str:
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "<!-- test-command -->" in ci
    after = README.split("<!-- test-command -->", 1)[1]
    command = next(line for line in after.splitlines() if re.match(r"^ *[a-z.]", line))
    assert command.startswith("scripts/setup.sh --dev && ") and "pytest" in command


def test_quickstart_is_two_commands_and_annotates_the_shipped_demo() -> None:
    quickstart = _section(README, "Quickstart")
    blocks = re.findall(r"```bash\n(.*?)```", quickstart, re.S)
    assert len(blocks) == 2 and all(len(b.strip().splitlines()) == 1 for b in blocks)
    assert (
        blocks[0].strip() == "scripts/setup.sh && .venv/bin/sonicverse annotate docs/demo/demo.flac"
    )
    assert (ROOT / "docs" / "demo" / "demo.flac").is_file()


def test_readme_is_a_short_guide() -> None:
    assert len(README.splitlines()) <= 300
    for title in ("Quickstart", "Using it", "Presets", "Read more"):
        assert f"\n## {title}\n" in README
    assert "REAPER" in README and "Ardour" in README and "Ableton" in README


def test_links_resolve() -> None:
    for doc in USER_FACING:
        text = doc.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            assert (doc.parent / target).exists(), f"{doc.name} links to a missing {target}"


def test_no_development_history_in_user_facing_text() -> None:
    for doc in USER_FACING:
        text = doc.read_text(encoding="utf-8")
        assert not re.search(r"\b(issue|PR|pull request) ?#?\d+", text, re.I), doc.name
        assert not re.search(r"\b\d\d:\d\d UTC\b", text), f"{doc.name}: times of day"
