"""No module of gaea_tune or search_spaces imports (directly or through other modules of the two
packages) a module that imports it back.

The graph is read from the source with :mod:`ast`: every ``import``/``from ... import`` at module
level (inside ``if``/``try`` too), resolved to modules of the two packages; importing ``a.b.c``
also runs ``a/__init__`` and ``a/b/__init__``, so those count as edges too. A second, stricter
check adds the lazy imports inside functions: a circle closed by a lazy import (as
``tune/_compare.py`` <-> ``tune/_tabular_compare.py`` once was) is a circle all the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gaea_tune", "search_spaces")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _top_level_imports(tree: ast.Module, lazy: bool = False) -> list[ast.stmt]:
    """Import statements that run when the module is imported (not inside def/class), or with
    ``lazy`` every import statement of the module."""
    if lazy:
        return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    out: list[ast.stmt] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out.append(node)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, field, []) or []:
                    pending.extend(child.body if isinstance(child, ast.ExceptHandler) else [child])
    return out


def _with_parents(name: str, modules: dict[str, Path]) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)} & set(modules)


def import_graph(lazy: bool = False) -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in _top_level_imports(ast.parse(path.read_text(), str(path)), lazy):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    base = name.split(".")
                    base = base if is_package else base[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    stem = ".".join(base + ([node.module] if node.module else []))
                else:
                    stem = node.module or ""
                targets = [stem] + [f"{stem}.{alias.name}" for alias in node.names]
            for target in targets:
                edges |= _with_parents(target, modules)
        edges.discard(name)
        # a package's own __init__ importing its submodules is how packages work; the reverse
        # edge (submodule -> parent package) is implicit in Python and not an import circle
        graph[name] = {e for e in edges if not name.startswith(e + ".")}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_checker_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_the_packages_imports():
    graph = import_graph()
    assert "gaea_tune.tune._backend" in graph["gaea_tune.tune._live"]
    assert "gaea_tune.tune._backend" in graph["gaea_tune.tune._tabular_compare"]
    assert "gaea_tune.registry" in graph["gaea_tune.config"]
    assert "gaea_tune.tune._compare" not in graph["gaea_tune.tune"]  # loaded on first use
    assert "gaea_tune.tune._compare" in import_graph(lazy=True)["gaea_tune.tune"]


def test_no_module_imports_one_that_imports_it_back():
    cycles = find_cycles(import_graph())
    assert not cycles, "import circles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_circle_closes_through_a_lazy_import_either():
    cycles = find_cycles(import_graph(lazy=True))
    assert not cycles, "import circles: " + "; ".join(" <-> ".join(c) for c in cycles)


def _third_party_imports(path: Path) -> set[str]:
    """Top-level names of every absolute import in the file, lazy ones included."""
    names: set[str] = set()
    for node in _top_level_imports(ast.parse(path.read_text(), str(path)), lazy=True):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def importers_of(library: str) -> set[str]:
    return {name for name, path in _modules().items() if library in _third_party_imports(path)}


def test_the_import_boundaries_of_the_design():
    """DESIGN.md's one-way flow: one module imports mlflow, one package imports ray, and the
    search spaces import neither (nor gaea_tune), lazily or not."""
    assert importers_of("mlflow") == {"gaea_tune.tracking"}
    ray_users = importers_of("ray")
    assert ray_users and all(m.startswith("gaea_tune.tune") for m in ray_users), ray_users
    for banned in ("ray", "mlflow", "gaea_tune"):
        assert not {m for m in importers_of(banned) if m.startswith("search_spaces")}, banned
