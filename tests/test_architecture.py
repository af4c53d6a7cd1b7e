"""The shape of the code, checked by reading its imports (nothing is imported to check).
What the domain (space, trials, algorithms, stopping rules) may import is checked in
``tests/test_domain_imports.py``.

* no import cycle among tuner's modules, counting lazy (function-level) and TYPE_CHECKING
  imports too: a cycle that only works because one side imports late is still a cycle;
* only the Kubernetes edge imports the ``kubernetes`` client;
* modules stay small unless they hold one idea, named here with the reason.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tuner"

# Modules over MAX_LINES, each holding one idea (the reason says which).
MAX_LINES = 500
ONE_IDEA: dict[str, str] = {
    "tuner.storage.repository": "the Repository: every query of the database, in one place",
    "tuner.client": "the notebook client: one method per REST endpoint",
}


def _module_files() -> dict[str, Path]:
    """Module name -> file, for every module of the tuner package (algorithms included)."""
    found: dict[str, Path] = {}
    files = [
        Path(folder) / file
        for folder, _, names in os.walk(PACKAGE, followlinks=True)  # tuner/algorithms is a link
        for file in names
        if file.endswith(".py")
    ]
    for path in sorted(files):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if "migrations" in parts:  # Alembic scripts are loaded by Alembic, not imported
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _module_files()


def _imports(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """Every module named by an import statement anywhere in the file, with its line."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                if not is_package:
                    anchor = anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield base, node.lineno
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno


def _internal_edges() -> dict[str, dict[str, int]]:
    """module -> {imported tuner module: first line}, self-imports left out."""
    edges: dict[str, dict[str, int]] = {name: {} for name in MODULES}
    for name, path in MODULES.items():
        for target, line in _imports(name, path):
            if target in MODULES and target != name:
                edges[name].setdefault(target, line)
    return edges


def _cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in edges:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(edges[root]))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_reader_sees_every_module() -> None:
    # A guard for the checks below: a broken walk would make them pass vacuously.
    assert {"tuner.cli", "tuner.controller", "tuner.spec", "tuner.algorithms"} <= set(MODULES)
    assert any(name.startswith("tuner.algorithms.") for name in MODULES)
    assert sum(len(targets) for targets in _internal_edges().values()) > 100


def test_cycle_finder_finds_a_known_cycle() -> None:
    edges = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}
    assert _cycles(edges) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    edges = _internal_edges()
    described = []
    for component in _cycles(edges):
        members = set(component)
        links = [
            f"{source} -> {target} ({MODULES[source].relative_to(ROOT)}:{line})"
            for source in component
            for target, line in edges[source].items()
            if target in members
        ]
        described.append("\n  ".join(links))
    assert not described, "import cycles:\n  " + "\n\n  ".join(described)


def test_only_the_kubernetes_edge_imports_the_client() -> None:
    edge = ("tuner.k8s", "tuner.runners.kubernetes", "tuner.operator")
    wrong = [
        f"{name} ({path.relative_to(ROOT)}:{line})"
        for name, path in MODULES.items()
        if not name.startswith(edge)
        for target, line in _imports(name, path)
        if target == "kubernetes" or target.startswith("kubernetes.")
    ]
    assert not wrong


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_small_or_holds_one_idea(name: str) -> None:
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES or name in ONE_IDEA, f"{name} has {lines} lines"
