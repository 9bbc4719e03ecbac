"""Write index.xml for ReaPack from the REAPER scripts' headers (reapack-index's format).

reapack-index (a Ruby gem) needs rubygems.org, which the build machine cannot reach; this
writes the same structure for our one package: the ``@about`` text converted to RTF the way
reapack-index does it (``pandoc -f commonmark -t rtf --standalone``; ReaPack shows RTF), the
``@changelog`` of the version, and download links pinned to a commit. Run after committing::

    python scripts/gen_reapack_index.py                       # URL from the git remote "origin"
    python scripts/gen_reapack_index.py --url https://github.com/<owner>/<repo>

Without a remote and without ``--url`` the links use a placeholder address (``REPO_PLACEHOLDER``)
that ReaPack cannot download from: publish the repository, then regenerate.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

ROOT = Path(__file__).resolve().parents[1]
REAPER = ROOT / "daw_bridge" / "reaper"
MAIN = REAPER / "sonicverse_annotate_selected_items.lua"
REPO_PLACEHOLDER = "https://github.com/OWNER/REPOSITORY"


def header(text: str, tag: str) -> str:
    """The one-line value of ``-- @tag value``; '' when absent."""
    m = re.search(rf"^-- @{tag}[ \t]+(.+)$", text, re.M)
    return m.group(1).strip() if m else ""


def block(text: str, tag: str) -> str:
    """The indented lines under ``-- @tag`` (a multi-line value), without the indentation."""
    m = re.search(rf"^-- @{tag}[ \t]*\n((?:--(?:   .*)?\n)+)", text, re.M)
    if not m:
        return ""
    lines = [line[5:] if line.startswith("--   ") else "" for line in m.group(1).splitlines()]
    return "\n".join(lines).strip("\n")


def to_rtf(markdown: str) -> str:
    """``markdown`` as RTF, converted as reapack-index converts ``@about``."""
    pandoc = shutil.which("pandoc")
    if pandoc is None:
        raise SystemExit("pandoc is needed to convert @about to RTF (apt-get install pandoc)")
    return subprocess.run(
        [pandoc, "-f", "commonmark", "-t", "rtf", "--standalone"],
        input=markdown,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def repo_url() -> str:
    """The web address of the git remote "origin", or REPO_PLACEHOLDER."""
    proc = subprocess.run(
        ["git", "remote", "get-url", "origin"], cwd=ROOT, capture_output=True, text=True
    )
    url = proc.stdout.strip()
    m = re.match(r"^(?:https://|git@)([^/:]+)[/:](.+?)(?:\.git)?/?$", url)
    return f"https://{m.group(1)}/{m.group(2)}" if proc.returncode == 0 and m else REPO_PLACEHOLDER


def index_xml(commit: str, url: str, *, about_rtf: str | None = None) -> str:
    """The index for the scripts at ``commit``, downloaded from the repository at ``url``."""
    text = MAIN.read_text(encoding="utf-8")
    provides = re.findall(r"^--\s+\[(main|nomain)\] (\S+)$", text, re.M)
    raw = f"{url}/raw/{commit}/daw_bridge/reaper"
    sources = [f'        <source main="main">{raw}/{MAIN.name}</source>']
    for kind, name in provides:
        main = ' main="main"' if kind == "main" else ""
        sources.append(f'        <source file="{name}"{main}>{raw}/{name}</source>')
    about = about_rtf if about_rtf is not None else to_rtf(block(text, "about"))
    changelog = block(text, "changelog")
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
            f'        <link rel="website">{escape(url)}</link>',
            "      </metadata>",
            f'      <version {version} time="{time}">',
            f"        <changelog><![CDATA[{changelog}]]></changelog>",
            *sources,
            "      </version>",
            "    </reapack>",
            "  </category>",
            "</index>",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="the repository's web address (default: git remote origin)")
    args = parser.parse_args()
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    (ROOT / "index.xml").write_text(index_xml(commit, args.url or repo_url()), encoding="utf-8")


if __name__ == "__main__":
    main()
