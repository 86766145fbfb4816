"""Every ```python example in README.md runs, in README order, in one scratch folder.

The folder starts with the synthetic shop ``growthrec generate`` writes (``data/``); later
examples may use files earlier ones wrote (``models/svd.npz``). Each example runs in a fresh
namespace, as a reader would paste it. A first comment line may say what an example needs:

- ``# needs: pandas`` (or another optional module): skipped where it is not installed;
- ``# needs: spark-cluster``: cannot run here; its imports run and every call of an imported
  function is checked against that function's signature;
- ``# quoted from <path>``: runs in that module's namespace and must declare the same
  signatures and docstring first lines as the source.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import re
from pathlib import Path

import attrs
import pytest

import growthrec
from growthrec.cli.main import main

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
MARKER = re.compile(r"\A# (?:needs: (?P<needs>\S+)|quoted from (?P<quoted>\S+))\n")
#: What a ``# needs:`` line may name, besides an importable optional module.
CLUSTER = "spark-cluster"


@attrs.frozen
class Block:
    line: int
    code: str
    needs: str | None = None
    quoted: str | None = None

    @property
    def name(self) -> str:
        return f"README.md:{self.line}"


def _blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    out = []
    for match in FENCE.finditer(text):
        code = match.group(1)
        line = text.count("\n", 0, match.start(1)) + 1
        marker = MARKER.match(code)
        found = marker.groupdict() if marker else {}
        out.append(Block(line, code, found.get("needs"), found.get("quoted")))
    return out


BLOCKS = _blocks()


def _available(block: Block) -> bool:
    if block.needs is None:
        return True
    if block.needs == CLUSTER:
        return False
    return importlib.util.find_spec(block.needs) is not None


class Folder:
    """The scratch folder and how many README blocks have run in it so far."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done = 0

    def run_through(self, index: int) -> None:
        """Run every runnable block before ``index`` not yet run (a block may need their files)."""
        while self.done < index:
            earlier = BLOCKS[self.done]
            self.done += 1
            if _available(earlier) and earlier.quoted is None:
                _execute(earlier)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Folder:
    path = tmp_path_factory.mktemp("readme")
    before = os.getcwd()
    os.chdir(path)
    try:
        assert main(["generate"]) == 0
    finally:
        os.chdir(before)
    return Folder(path)


def _execute(block: Block) -> dict[str, object]:
    namespace: dict[str, object] = {"__name__": "__readme__"}
    exec(compile(block.code, block.name, "exec"), namespace)
    return namespace


def test_the_readme_has_python_examples_and_every_marker_is_known():
    assert len(BLOCKS) >= 8
    for block in BLOCKS:
        if block.needs not in (None, CLUSTER):
            assert re.fullmatch(r"[a-z_][a-z0-9_]*", block.needs), block.name
        if block.quoted is not None:
            assert (REPO / block.quoted).is_file(), block.name


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[b.name for b in BLOCKS])
def test_example_runs(index, folder, monkeypatch):
    block = BLOCKS[index]
    monkeypatch.chdir(folder.path)
    if block.quoted is not None:
        _check_quoted(block)
        return
    if block.needs == CLUSTER:
        _check_dry(block)
        return
    if not _available(block):
        pytest.skip(f"{block.name} needs {block.needs}, which is not installed")
    folder.run_through(index)
    _execute(block)
    folder.done = max(folder.done, index + 1)


def _check_quoted(block: Block) -> None:
    """A quoted block declares what its source declares: same signatures, same first lines."""
    module_name = ".".join(Path(block.quoted).with_suffix("").parts)
    module = importlib.import_module(module_name)
    namespace = dict(vars(module))
    flags = annotations.compiler_flag  # the __future__ feature imported above
    exec(compile(block.code, block.name, "exec", flags=flags), namespace)
    defined = [n.name for n in ast.parse(block.code).body if isinstance(n, ast.FunctionDef)]
    assert defined, f"{block.name} quotes no function"
    for name in defined:
        ours, theirs = namespace[name], getattr(module, name)
        assert inspect.signature(ours) == inspect.signature(theirs), name
        assert ours.__doc__.splitlines()[0] == theirs.__doc__.splitlines()[0], name


def _check_dry(block: Block) -> None:
    """Run a block's imports; every call of an imported function must bind to its signature."""
    tree = ast.parse(block.code)
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    namespace: dict[str, object] = {}
    exec(compile(ast.Module(imports, []), block.name, "exec"), namespace)
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in namespace
    ]
    assert calls, f"{block.name} calls nothing it imports"
    for call in calls:
        target = namespace[call.func.id]
        keywords = {k.arg: None for k in call.keywords if k.arg is not None}
        inspect.signature(target).bind(*[None] * len(call.args), **keywords)


def test_from_python_uses_only_the_public_api():
    """The "From Python" section imports ``growthrec`` itself and uses names in ``__all__``."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("\n## From Python\n") :]
    section = section[: section.index("\n## ", 1)]
    blocks = FENCE.findall(section)
    assert len(blocks) >= 5
    used = set()
    for code in blocks:
        tree = ast.parse(code)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert node.module is not None and not node.module.startswith("growthrec."), (
                    ast.unparse(node)
                )
                if node.module == "growthrec":
                    used.update(alias.name for alias in node.names)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("growthrec."), alias.name
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "growthrec"
            ):
                used.add(node.attr)
    assert used - set(growthrec.__all__) == set()
    for name in (
        "read_interactions",
        "build_interactions",
        "interactions_from_matrix",
        "interactions_from_table",
        "fit_model",
        "recommend",
        "recommend_baskets",
        "similar_items",
        "scores",
        "basket_scores",
        "save_model",
        "load_model",
        "make_split",
        "split_from_parts",
        "evaluate_backend",
        "evaluate_model",
    ):
        assert name in used, f"the From Python section shows no example of {name}"


def test_every_python_path_named_in_the_readme_exists():
    """``growthrec.x.y`` in prose and examples names a module or attribute that exists.

    Console transcripts are left out: a table column may cut a long name short there.
    """
    text = re.sub(
        r"^```console\n.*?^```", "", README.read_text(encoding="utf-8"), flags=re.S | re.M
    )
    paths = sorted(set(re.findall(r"\bgrowthrec(?:\.[A-Za-z_]\w*)+", text)))
    assert len(paths) > 10
    broken = []
    for path in paths:
        parts = path.split(".")
        for depth in range(len(parts), 0, -1):
            try:
                found: object = importlib.import_module(".".join(parts[:depth]))
                break
            except ImportError:
                continue
        for part in parts[depth:]:
            found = getattr(found, part, None)
        if found is None:
            broken.append(path)
    assert broken == []
