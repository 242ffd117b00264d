"""The layering of dualrev's modules, read from their source with ``ast``: every import of
a dualrev module, at module level or inside a function, is an edge of the import graph,
which must have no cycle and no edge from a lower layer to a higher one; and no function
imports a dualrev module locally (a local import is for optional third-party packages).

An edge goes to the module an import names (``from .catalogue import elementwise`` to
dualrev.catalogue.elementwise), not to the parent packages Python runs first: every
module would otherwise depend on dualrev/__init__.py. ``python -m tests.test_layers``
prints the graph's violations.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

PACKAGE = Path(__file__).resolve().parent.parent / "dualrev"

# Bottom to top; a module may import from its own layer or below. A name ending in ".*"
# stands for the package and every module under it. Listed modules may be absent.
LAYERS: list[set[str]] = [
    {"dualrev.errors", "dualrev.tree", "dualrev.config", "dualrev.diagnose",
     "dualrev.namespace"},
    {"dualrev.primitive"},
    {"dualrev.tracer", "dualrev.cotangent", "dualrev.closure", "dualrev.program",
     "dualrev.compile"},
    {"dualrev.forward", "dualrev.reverse", "dualrev.batching", "dualrev.custom",
     "dualrev.inplace", "dualrev.buffers", "dualrev.staging"},
    {"dualrev.catalogue.*"},
    {"dualrev.transforms", "dualrev.at", "dualrev.replay"},
    {"dualrev.optimize", "dualrev.implicit", "dualrev.integrate", "dualrev.sparse",
     "dualrev.testing.*", "dualrev.graph", "dualrev.drawing.*", "dualrev"},
]

# Violations allowed, each (kind, importer, imported); kind is "upward" (a lower layer
# imports a higher one), "cycle" (the edge lies on an import cycle) or "local" (a function
# imports a dualrev module). The 21 found on 2026-12-02 are gone with the core redesign;
# keep the set empty.
KNOWN_VIOLATIONS: set[tuple[str, str, str]] = set()


class Edge(NamedTuple):
    importer: str
    imported: str
    line: int
    local: bool  # inside a function: runs at call time, not at import


def module_names() -> dict[str, Path]:
    """Every module of the package, by dotted name (a package by its own name)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(target: str, modules: dict[str, Path]) -> str:
    """``target`` if it is a module, else the longest module it names a member of."""
    while target not in modules and "." in target:
        target = target.rsplit(".", 1)[0]
    return target


def _imports(tree: ast.AST, local: bool = False):
    """(node, inside a function) for each import statement under ``tree``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, local
        yield from _imports(node, local or isinstance(
            node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))


def edges() -> list[Edge]:
    """Every import of one dualrev module by another."""
    modules = module_names()
    root = PACKAGE.name
    out = []
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node, local in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, *([base] if base else [])])
                # ``from pkg import mod`` imports the module pkg.mod, not only pkg
                targets = [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                if t == root or t.startswith(root + "."):
                    out.append(Edge(name, _resolve(t, modules), node.lineno, local))
    return [e for e in dict.fromkeys(out) if e.importer != e.imported]


def layer_of(module: str) -> int:
    """The layer ``module`` belongs to (ValueError for a module not placed in LAYERS)."""
    for i, layer in enumerate(LAYERS):
        for entry in layer:
            if module == entry or (entry.endswith(".*") and (
                    module == entry[:-2] or module.startswith(entry[:-1]))):
                return i
    raise ValueError(f"{module} is in no layer: add it to LAYERS in tests/test_layers.py")


def _on_cycles(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """The edges that lie on some cycle: those inside one strongly connected component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    component: dict[str, int] = {}

    def visit(v: str) -> None:  # Tarjan's algorithm; the graph is a few dozen modules
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w not in component:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            while True:
                w = stack.pop()
                component[w] = index[v]
                if w == v:
                    break

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return {(v, w) for v in graph for w in graph[v] if component[v] == component[w]}


def violations(found: list[Edge] | None = None) -> dict[tuple[str, str, str], list[Edge]]:
    """Each violation of the layering, with the import statements that make it."""
    found = edges() if found is None else found
    graph: dict[str, set[str]] = {}
    for e in found:
        graph.setdefault(e.importer, set()).add(e.imported)
        graph.setdefault(e.imported, set())
    cyclic = _on_cycles(graph)
    out: dict[tuple[str, str, str], list[Edge]] = {}
    for e in found:
        kinds = []
        if layer_of(e.imported) > layer_of(e.importer):
            kinds.append("upward")
        if (e.importer, e.imported) in cyclic:
            kinds.append("cycle")
        if e.local:
            kinds.append("local")
        for k in kinds:
            out.setdefault((k, e.importer, e.imported), []).append(e)
    return out


def report(found: dict[tuple[str, str, str], list[Edge]]) -> str:
    lines = []
    for (kind, a, b), es in sorted(found.items()):
        where = ", ".join(f"line {e.line}" + (" (in a function)" if e.local else "")
                          for e in es)
        lines.append(f"{kind:6} {a} (layer {layer_of(a)}) -> {b} (layer {layer_of(b)}): "
                     f"{where}")
    return "\n".join(lines)


def test_every_module_has_a_layer():
    for name in module_names():
        layer_of(name)


def test_the_graph_sees_top_level_and_local_imports():
    found = {(e.importer, e.imported, e.local) for e in edges()}
    assert ("dualrev", "dualrev.catalogue", False) in found  # from . import catalogue
    assert ("dualrev.catalogue", "dualrev.catalogue.linalg", False) in found
    assert ("dualrev.forward", "dualrev.primitive", False) in found  # from .primitive import
    assert ("dualrev.catalogue.shape", "dualrev.primitive", False) in found  # from ..
    assert len(found) > 40


def test_layer_checks_catch_each_kind():
    fake = [Edge("dualrev.errors", "dualrev.tree", 1, False),
            Edge("dualrev.tree", "dualrev.errors", 1, False),
            Edge("dualrev.primitive", "dualrev.at", 1, False),
            Edge("dualrev.at", "dualrev.tracer", 1, True)]
    assert set(violations(fake)) == {
        ("cycle", "dualrev.errors", "dualrev.tree"), ("cycle", "dualrev.tree", "dualrev.errors"),
        ("upward", "dualrev.primitive", "dualrev.at"), ("local", "dualrev.at", "dualrev.tracer")}


def test_layers():
    found = violations()
    print(report(found))
    new = set(found) - KNOWN_VIOLATIONS
    gone = KNOWN_VIOLATIONS - set(found)
    assert not new, "new layering violations:\n" + report({k: found[k] for k in new})
    assert not gone, f"fixed, delete from KNOWN_VIOLATIONS: {sorted(gone)}"


if __name__ == "__main__":
    print(report(violations()))
