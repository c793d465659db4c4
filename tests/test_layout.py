"""The package's shape: no import cycle between gateway modules, and one home per concept."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import REPO

PACKAGE = REPO / "gateway"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def top_level_imports(path: Path, modules: set[str]) -> set[str]:
    """Gateway modules ``path`` imports when it is imported (not inside functions or TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # a submodule imported by name
    return {m for m in found if m in modules}


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: top_level_imports(path, set(files)) - {name} for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that returns to its start, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_checker_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_inside_gateway() -> None:
    graph = import_graph()
    assert len(graph) > 50  # the walk found the package
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_package_imports_are_real_edges() -> None:
    graph = import_graph()
    assert "gateway.featurestore.keys" in graph["gateway.featurestore.reader"]
    assert "gateway.spec" in graph["gateway.logic.orchestrator"]


def test_tests_mirror_the_package() -> None:
    """Every test directory names a package of gateway (or is the top level)."""
    for d in (REPO / "tests").rglob("*"):
        if d.is_dir() and d.name not in ("__pycache__", "testdata") and "testdata" not in d.parts:
            rel = d.relative_to(REPO / "tests")
            assert (PACKAGE / rel).is_dir(), f"tests/{rel} has no gateway/{rel} to mirror"
