"""The dependency order, read from the imports (ast): ``ui -> daw_bridge <- engine``.

- ``ui`` never imports ``engine`` (it talks to the engine over OSC only);
- ``daw_bridge`` never imports ``engine``, ``ui``, ``torch`` or ``numpy`` (pure Python);
- the model code (``engine/models``) knows nothing of OSC or the server;
- the server modules never import ``torch`` (not even lazily: the pipeline joins them);
- the engine's modules import each other without cycles at module level.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SERVER_MODULES = ("engine.gate", "engine.server", "engine.serve")
"""Modules of the OSC server side of the engine (transport, handlers, the command)."""

OSC_MODULES = ("pythonosc", "daw_bridge.protocol", "daw_bridge.client", *SERVER_MODULES)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources(package: str) -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: Path, *, module_level: bool = False) -> Iterator[str]:
    """Absolute names of the modules ``path`` imports (``from a import b`` yields ``a`` and
    ``a.b``); with ``module_level`` only those run at import time (not in functions, not
    under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = (
        module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    )

    def visit(nodes: list[ast.stmt]) -> Iterator[str]:
        for node in nodes:
            if isinstance(node, ast.Import):
                yield from (a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                yield base
                yield from (f"{base}.{a.name}" for a in node.names)
            elif module_level and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            elif module_level and isinstance(node, ast.If) and _is_type_checking(node):
                yield from visit(node.orelse)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    children = getattr(node, field, None)
                    if isinstance(children, list):
                        yield from visit([c for c in children if isinstance(c, ast.AST)])

    yield from visit(tree.body)


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("ui", ("engine",)),
        ("daw_bridge", ("engine", "ui", "torch", "numpy")),
        ("engine/models", OSC_MODULES),
    ],
)
def test_packages_do_not_import_up_the_dependency_order(package, forbidden):
    bad = [
        (name, imported)
        for name, path in sources(package).items()
        for imported in imports(path)
        if _under(imported, forbidden)
    ]
    assert not bad, bad


def test_server_modules_never_import_torch():
    engine = sources("engine")
    bad = [
        (name, imported)
        for name in SERVER_MODULES
        for imported in imports(engine[name])
        if _under(imported, ("torch", "engine.models"))
    ]
    assert not bad, bad


def test_no_import_cycles_among_engine_modules():
    engine = sources("engine")
    graph = {
        name: sorted({i for i in imports(path, module_level=True) if i in engine} - {name})
        for name, path in engine.items()
    }
    for name in list(graph):  # importing a.b first imports the package a
        parent = name.rpartition(".")[0]
        if parent in graph and parent != "engine":
            graph[name] = sorted({*graph[name], parent} - {name})
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node)


def test_docs_architecture_gives_every_module_its_sentence():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [
        str(path.relative_to(ROOT))
        for package in ("engine", "daw_bridge", "ui")
        for path in sorted((ROOT / package).rglob("*.py"))
        if f"| `{path.relative_to(ROOT).as_posix()}` |" not in doc
    ]
    assert not missing, f"docs/architecture.md has no line for {missing}"


def test_the_engine_keeps_the_hugging_face_libraries_offline() -> None:
    import os
    import subprocess
    import sys

    names = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    env = {k: v for k, v in os.environ.items() if k not in names}
    code = f"import os, engine; print(*(os.environ[n] for n in {names!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["1", "1"], out.stderr
    env["HF_HUB_OFFLINE"] = "0"  # a user who asks for the network gets it
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["0", "1"], out.stderr
