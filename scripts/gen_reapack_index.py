"""Write index.xml for ReaPack from the REAPER scripts' headers (reapack-index's format).

reapack-index (a Ruby gem) needs rubygems.org, which the build machine cannot reach; this
writes the same structure for our one package. Run after committing the scripts::

    python scripts/gen_reapack_index.py   # index.xml, sources pinned to HEAD
"""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import quoteattr

ROOT = Path(__file__).resolve().parents[1]
REAPER = ROOT / "daw_bridge" / "reaper"
MAIN = REAPER / "sonicverse_annotate_selected_items.lua"
REPO = "https://github.com/sonicverse/sonicverse-studio"


def header(text: str, tag: str) -> str:
    m = re.search(rf"^-- @{tag} (.+)$", text, re.M)
    return m.group(1).strip() if m else ""


def index_xml(commit: str) -> str:
    text = MAIN.read_text(encoding="utf-8")
    provides = re.findall(r"^--\s+\[(main|nomain)\] (\S+)$", text, re.M)
    raw = f"{REPO}/raw/{commit}/daw_bridge/reaper"
    sources = [f'        <source main="main">{raw}/{MAIN.name}</source>']
    for kind, name in provides:
        main = ' main="main"' if kind == "main" else ""
        sources.append(f'        <source file="{name}"{main}>{raw}/{name}</source>')
    about = text.split("-- @about\n", 1)[1].split("\n\n", 1)[0]
    about = "\n".join(line[5:] if line.startswith("--   ") else "" for line in about.splitlines())
    desc = quoteattr(header(text, "description"))
    version = f'name="{header(text, "version")}" author="{header(text, "author")}"'
    time = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return "\n".join(
        [
            '<?xml version="1.0" encoding="utf-8"?>',
            f'<index version="1" name="SonicVerse" commit="{commit}">',
            '  <category name="daw_bridge/reaper">',
            f'    <reapack name="{MAIN.name}" type="script" desc={desc}>',
            "      <metadata>",
            f"        <description><![CDATA[{about}]]></description>",
            f'        <link rel="website">{REPO}</link>',
            "      </metadata>",
            f'      <version {version} time="{time}">',
            *sources,
            "      </version>",
            "    </reapack>",
            "  </category>",
            "</index>",
            "",
        ]
    )


def main() -> None:
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    (ROOT / "index.xml").write_text(index_xml(commit), encoding="utf-8")


if __name__ == "__main__":
    main()
