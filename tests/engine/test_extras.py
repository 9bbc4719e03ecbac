"""The install split: the lite path needs no deep-learning stack; the neural parts say which
extra they need."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from engine.extras import MissingExtra, require

ROOT = Path(__file__).resolve().parents[2]
DEEP = ("torch", "transformers", "peft", "accelerate", "bitsandbytes")
BLOCK = ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "safetensors")


def _names(requirements: list[str]) -> set[str]:
    return {r.split(";")[0].split(">")[0].split("=")[0].split("[")[0].strip() for r in requirements}


def test_quickstart_extras_install_no_deep_learning_stack() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    for part in (project["dependencies"], extras["engine"], extras["ui"], extras["mic"]):
        assert not _names(part) & set(DEEP)
    assert set(DEEP) <= _names(extras["neural"])
    assert "sonicverse-studio[neural]" in extras["train"]
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert 'extras="engine,ui,mic"' in setup and 'TORCH="torch==2.13.0"' in setup


def _without_deep_stack(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a child process where torch and the other neural packages cannot be
    imported (as in an install without the neural extra)."""
    prelude = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {BLOCK!r}:\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SONICVERSE_STORE": ":memory:"}
    return subprocess.run(
        [sys.executable, "-c", prelude + code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_lite_annotates_without_torch(tmp_path: Path) -> None:
    out = tmp_path / "demo.json"
    proc = _without_deep_stack(
        "from engine.cli import main\n"
        f"sys.exit(main(['annotate', 'docs/demo/demo.flac', '--format', 'json', "
        f"'--out', {str(out)!r}, '--store', {str(tmp_path / 's.sqlite3')!r}]))"
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["regions"] and doc["regions"][0]["key"]


@pytest.mark.parametrize(
    ("argv", "extra"),
    [
        (["annotate", "docs/demo/demo.flac", "--preset", "sonicverse-tiny"], "'neural' extra"),
        (["train", "--config", "missing.toml"], "'train' extra"),
        (["dataset", "build", "m.jsonl", "--out", "data"], "'train' extra"),
    ],
)
def test_neural_parts_name_their_extra(argv: list[str], extra: str) -> None:
    proc = _without_deep_stack(f"from engine.cli import main\nsys.exit(main({argv!r}))")
    assert proc.returncode == 2, proc.stderr
    assert extra in proc.stderr and "pip install torch==2.13.0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_require_names_the_missing_modules() -> None:
    with pytest.raises(MissingExtra, match=r"'neural' extra \(no_such_module_x not installed\)"):
        require("neural", "a test", ("json", "no_such_module_x"))
