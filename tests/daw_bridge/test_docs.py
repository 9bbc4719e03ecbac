"""docs/osc.md is generated from daw_bridge/protocol.py and must be up to date."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from daw_bridge import protocol

ROOT = Path(__file__).resolve().parents[2]


def test_docs_osc_md_is_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, "scripts/gen_osc_table.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_the_table_lists_every_address_and_error_code() -> None:
    text = (ROOT / "docs" / "osc.md").read_text(encoding="utf-8")
    for path in protocol.all_messages():
        assert f"| `{path}` |" in text
    for code in protocol.ERROR_CODES:
        assert f"| `{code}` |" in text
