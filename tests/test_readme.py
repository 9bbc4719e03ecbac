"""The README stays true: its OSC table is the generated one, its test command is CI's."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_osc_table_matches_protocol() -> None:
    table = subprocess.run(
        [sys.executable, "scripts/gen_osc_table.py", "--table"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    block = re.search(r"<!-- osc-table -->\n(.*?)\n<!-- /osc-table -->", README, re.S)
    assert block is not None, "README has no <!-- osc-table --> block"
    assert block.group(1).strip() == table


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "<!-- test-command -->" in ci
    after = README.split("<!-- test-command -->", 1)[1]
    command = next(line for line in after.splitlines() if re.match(r"^ *[a-z.]", line))
    assert command.startswith("scripts/setup.sh --dev && ") and "pytest" in command


def test_quickstart_annotates_the_shipped_demo() -> None:
    assert "scripts/setup.sh && .venv/bin/sonicverse annotate docs/demo/demo.flac" in README
    assert (ROOT / "docs" / "demo" / "demo.flac").is_file()
