"""The package layout stays true: no import circles, and no room imports a room above it.

Every ``import`` in the package is read from the source (function-level ones included, since
a lazy import is still a dependency), so the layering holds for what runs, not only for what
runs at import time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import growthrec

PACKAGE = Path(growthrec.__file__).parent

#: Each room of the package, lowest first: a module may import its own room and lower ones.
LAYERS = (
    ("_version", "errors"),
    ("core",),
    ("backends",),
    ("store",),
    ("data",),
    ("pipeline",),
    ("evaluation", "spark"),
    ("serving",),
    ("cli",),
    ("__init__", "__main__"),
)
RANK = {room: rank for rank, rooms in enumerate(LAYERS) for room in rooms}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("growthrec", *path.relative_to(PACKAGE).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _target(name: str) -> str | None:
    """The package module ``name`` refers to (``growthrec.x.y`` -> itself or its parent)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str, path: Path) -> set[str]:
    """Package modules that ``module`` imports, anywhere in its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            if name.startswith("growthrec"):
                target = _target(name)
                if target and target != module:
                    found.add(target)
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _room(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def test_every_room_has_a_layer():
    rooms = {_room(module) for module in MODULES}
    assert rooms <= set(RANK), f"rooms without a layer: {sorted(rooms - set(RANK))}"


def test_package_root_holds_only_rooms():
    """A reader opening the package sees the rooms and nothing else of substance."""
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "_version.py", "errors.py"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_upward_import(module):
    rank = RANK[_room(module)]
    upward = sorted(
        target
        for target in GRAPH[module]
        if RANK[_room(target)] > rank and _room(target) != _room(module)
    )
    assert not upward, f"{module} imports a higher layer: {upward}"


def test_no_import_circle():
    """Tarjan's strongly connected components: every component is a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in GRAPH[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert not circles, f"import circles: {circles}"


def test_the_import_reader_finds_lazy_relative_and_dotted_imports(tmp_path):
    """The checks above read real imports: a lazy, a relative and a dotted one are all found."""
    source = tmp_path / "fake.py"
    source.write_text(
        "import growthrec.cli.main\n"
        "from growthrec.core import ranking\n"
        "def f():\n"
        "    from ..errors import DataError\n"
        "    import numpy\n"
    )
    found = _imports("growthrec.core.fake", source)
    assert found == {"growthrec.cli.main", "growthrec.core.ranking", "growthrec.errors"}
    assert RANK[_room("growthrec.cli.main")] > RANK[_room("growthrec.core.fake")]
