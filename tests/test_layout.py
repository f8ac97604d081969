"""The folders are the stages: verify/'s import graph has no cycle and no import from a stage to a later one.

The graph is read from the source with :mod:`ast` (every import counts: at module level, inside a
function, under ``TYPE_CHECKING``), so a lazy import cannot hide an arrow that points the wrong way.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
PACKAGE = PROJECT / "verify"

LAYERS = (
    "verify",  # the package itself: __version__ only
    "common",  # plumbing: errors, fs, json, limits, locks, progress, faults, signals, line helpers
    "pyc",  # the .pyc reader (the manifest records .pyc headers; compare and audit read code objects)
    "manifest",  # the install-tree manifest every stage after the source writes or reads
    "source",  # recipes, versions, locations, signatures, digests, unpack -> SourceVerdict
    "environments",  # pinned rootfs and sandbox runners
    "result",  # the rebuild's result directory and record
    "rebuild",  # SourceVerdict + recipe + environment -> result directory
    "compare",  # two trees (or two rebuilds) -> Comparison
    "attest",  # result directory -> signed in-toto attestation
    "audit",  # a distribution's CPython -> AuditReport
    "site",  # attestations -> releases feed, status page and site
    "outcomes",  # what the chain returns
    "report",  # text / JSON / HTML renderings of the stages' values
    "chain",  # the order of the stages
    "commands",  # click commands (thin)
    "cli",
    "__main__",
)
"""Bottom to top: a module may import its own layer and the layers before it, never a later one."""


def _module_name(path: Path, root: Path = PROJECT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(package: Path) -> dict[str, Path]:
    return {_module_name(path, package.parent): path for path in sorted(package.rglob("*.py"))}


def _imports(name: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """The verify modules ``name`` imports (``from package import module`` names the module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:
                    yield f"{target}.{alias.name}"
                elif target in modules:
                    yield target


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the verify modules it imports."""
    modules = _modules(package)
    return {name: set(_imports(name, path, modules)) for name, path in modules.items()}


def layer_of(module: str) -> str:
    """``verify.source.locations.http`` -> ``source``; ``verify`` -> ``verify``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module, or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        # Iterative Tarjan: the graph is deep enough to make recursion a liability.
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph[node]:
                        found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_every_module_belongs_to_a_declared_layer() -> None:
    unplaced = sorted(module for module in import_graph() if layer_of(module) not in LAYERS)
    assert not unplaced, f"place these in LAYERS (tests/test_layout.py) and say why: {unplaced}"


def test_the_import_graph_has_no_cycle() -> None:
    assert cycles(import_graph()) == []


def test_no_stage_imports_a_later_stage() -> None:
    rank = {layer: position for position, layer in enumerate(LAYERS)}
    upward = sorted(
        f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
        for module, targets in import_graph().items()
        for target in targets
        if rank.get(layer_of(target), -1) > rank.get(layer_of(module), len(LAYERS))
    )
    assert upward == []


def test_the_checks_see_a_cycle_and_an_upward_import(tmp_path: Path) -> None:
    """The graph reader is not blind: lazy, relative and TYPE_CHECKING imports all count."""
    package = tmp_path / "verify"
    (package / "source").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "source" / "__init__.py").write_text("")
    (package / "source" / "a.py").write_text("def f():\n    from verify.chain import run\n")
    (package / "source" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import c\n"
    )
    (package / "source" / "c.py").write_text("from verify.source import b\n")
    (package / "chain.py").write_text("from verify.source.a import f\n")
    graph = import_graph(package)
    assert graph["verify.source.a"] == {"verify.chain"}
    assert sorted(cycles(graph)) == [["verify.chain", "verify.source.a"], ["verify.source.b", "verify.source.c"]]


@pytest.mark.parametrize("stage", ["source", "environments", "rebuild", "compare", "attest", "audit", "site", "pyc"])
def test_each_stage_folder_says_what_comes_in_goes_out_and_what_is_next(stage: str) -> None:
    docstring = ast.get_docstring(ast.parse((PACKAGE / stage / "__init__.py").read_text(encoding="utf-8"))) or ""
    for heading in ("In:", "Out:", "Next:"):
        assert heading in docstring, f"verify/{stage}/__init__.py's docstring has no {heading!r} line"


def test_every_package_is_in_the_wheel() -> None:
    """pyproject lists the packages (verify.recipes is mapped from the top-level recipes/ folder)."""
    pyproject = tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(pyproject["tool"]["setuptools"]["packages"])
    packages = {_module_name(init.parent / "__init__.py") for init in PACKAGE.rglob("__init__.py")}
    assert packages <= listed, f"add to [tool.setuptools] packages: {sorted(packages - listed)}"
    assert "verify.recipes" in listed
    assert (PROJECT / "recipes" / "__init__.py").is_file()
