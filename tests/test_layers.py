"""The layering of dualrev's modules, read from their source with ``ast``: every import of
a dualrev module, at module level or inside a function, is an edge of the import graph,
which must have no cycle and no edge from a lower layer to a higher one; and no function
imports a dualrev module locally (a local import is for optional third-party packages).

Dependencies also run one way at run time: no module installs behaviour into another
(a store into a table or attribute it imported, ``METHODS["setitem"] = f``,
``tracer._ADD = p``, ``TABLE.update(...)``, ``setattr(module, ...)``); what a module hands a
lower one goes through a registration function of that module, keyed by a library's own
object (``register_function(np.put, f)``; see docs/design.md, 2026-12-06). And every
method of a traced value reaches, by its names, code at or below the tracer's layer.

An edge goes to the module an import names (``from .catalogue import elementwise`` to
dualrev.catalogue.elementwise), not to the parent packages Python runs first: every
module would otherwise depend on dualrev/__init__.py. ``python -m tests.test_layers``
prints the graph's violations.
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import textwrap
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from dualrev import primitive, tracer

PACKAGE = Path(__file__).resolve().parent.parent / "dualrev"

# Bottom to top; a module may import from its own layer or below. A name ending in ".*"
# stands for the package and every module under it. Listed modules may be absent.
LAYERS: list[set[str]] = [
    {"dualrev.errors", "dualrev.tree", "dualrev.tree_xarray", "dualrev.config",
     "dualrev.diagnose", "dualrev.namespace"},
    {"dualrev.primitive"},
    # the traced values' face (tracer.py) and what its methods run, below the traces:
    # views and writes (inplace, at), indexing and casts, batch levels, SciPy dispatchers
    {"dualrev.tracer", "dualrev.cotangent", "dualrev.closure", "dualrev.program",
     "dualrev.levels", "dualrev.inplace", "dualrev.indexing", "dualrev.cast", "dualrev.at",
     "dualrev.pattern_rules",
     "dualrev.scipy_dispatch", "dualrev.compile", "dualrev.program_io",
     "dualrev.debug"},
    {"dualrev.forward", "dualrev.reverse", "dualrev.batching", "dualrev.custom",
     "dualrev.buffers", "dualrev.staging", "dualrev.sparsity", "dualrev.checkpointing"},
    {"dualrev.catalogue.*"},
    {"dualrev.transforms", "dualrev.replay", "dualrev.linearization"},
    {"dualrev.optimize", "dualrev.implicit", "dualrev.integrate", "dualrev.sparse",
     "dualrev.progress",
     "dualrev.colouring", "dualrev.bridges",
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


@functools.cache
def _parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


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
        for node, local in _imports(_parsed(path)):
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


# ---------------------------------------------------------------- installations
# Methods that change a container in place: called on a name imported from another
# dualrev module, they install something into that module.
_MUTATORS = {"update", "setdefault", "append", "extend", "insert", "add", "pop", "popitem",
             "clear", "remove", "discard", "appendleft", "__setitem__", "__delitem__",
             "__setattr__", "__delattr__"}

# The registration functions through which data goes down (docs/design.md, 2026-12-06):
# the first argument is a library's own object (a NumPy ufunc or function, a type, a
# dispatcher), never a string, and for those that replace a library's attribute, the
# owner is the library's (NumPy's, SciPy's, math's), never one of dualrev's modules.
REGISTRATIONS_BY_OBJECT = {"register_ufunc", "register_function", "refuse_operand",
                           "plain_operand", "defer_matmul_to", "note_dispatcher"}
REGISTRATIONS_BY_OWNER = {"replace_while_tracing", "dispatch"}

# Installations allowed, each (module, owner module, imported name, why); keep it empty.
KNOWN_INSTALLATIONS: set[tuple[str, str, str]] = set()


class Installation(NamedTuple):
    module: str  # the module that writes
    owner: str  # the dualrev module the written object was imported from
    name: str  # the name it was imported as
    line: int
    how: str  # "NAME[...] =", "NAME.attr =", "NAME.update()", "setattr(NAME, ...)"


def _imported(tree: ast.AST, module: str, package: str, modules: dict[str, Path]
              ) -> dict[str, str]:
    """Each local name an import binds to a dualrev module or one of its objects, with
    that module (``from .primitive import FUNCTION_HANDLERS`` binds FUNCTION_HANDLERS to
    dualrev.primitive; ``from . import tracer`` binds tracer to dualrev.tracer)."""
    root = PACKAGE.name
    out = {}
    for node, _ in _imports(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == root or a.name.startswith(root + "."):
                    local = a.asname or a.name.split(".")[0]
                    out[local] = _resolve(a.name if a.asname else a.name.split(".")[0],
                                          modules)
            continue
        base = node.module or ""
        if node.level:
            up = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*up, *([base] if base else [])])
        if not (base == root or base.startswith(root + ".")):
            continue
        for a in node.names:
            target = f"{base}.{a.name}"
            owner = target if target in modules else _resolve(base, modules)
            out[a.asname or a.name] = owner
    return {k: v for k, v in out.items() if v != module}


def _root(node: ast.AST) -> str | None:
    """The name an attribute/subscript chain starts from (``a`` of ``a.b[c].d``)."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def installations_in(source: str | ast.Module, module: str, package: str | None = None,
                     modules: dict[str, Path] | None = None) -> list[Installation]:
    """Every place in ``source`` (the module ``module``) that writes into an object it
    imported from another dualrev module, at import or inside a function."""
    modules = module_names() if modules is None else modules
    if package is None:
        package = module if modules.get(module, Path()).name == "__init__.py" else (
            module.rsplit(".", 1)[0])
    tree = ast.parse(source) if isinstance(source, str) else source
    names = _imported(tree, module, package, modules)
    found = []

    def note(target: ast.AST, how: str, line: int) -> None:
        name = _root(target)
        if name in names:
            found.append(Installation(module, names[name], name, line, how.format(name)))

    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for t in targets:
            for sub in ast.walk(t):  # (a, b.c) = ... unpacks into b.c too
                if isinstance(sub, ast.Subscript) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                    note(sub, "{}[...] =", node.lineno)
                elif isinstance(sub, ast.Attribute) and isinstance(sub.ctx, (ast.Store, ast.Del)):
                    note(sub, "{}." + sub.attr + " =", node.lineno)
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr in _MUTATORS:
                note(f.value, "{}." + f.attr + "()", node.lineno)
            elif isinstance(f, ast.Name) and f.id in ("setattr", "delattr") and node.args:
                note(node.args[0], f.id + "({}, ...)", node.lineno)
            elif isinstance(f, ast.Name) and f.id in REGISTRATIONS_BY_OBJECT and node.args:
                key = node.args[0]
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    found.append(Installation(module, names.get(f.id, module), f.id,
                                              node.lineno, f"{f.id}({key.value!r}, ...)"))
            elif isinstance(f, ast.Name) and f.id in REGISTRATIONS_BY_OWNER and node.args:
                note(node.args[0], f.id + "({}, ...)", node.lineno)
    return sorted(found, key=lambda i: i.line)


def installations() -> list[Installation]:
    """Every installation into another module, in the package's source."""
    modules = module_names()
    out = []
    for name, path in modules.items():
        out += installations_in(_parsed(path), name, modules=modules)
    return out


def test_installation_checker_finds_each_form():
    src = """
from .primitive import METHODS, FUNCTION_HANDLERS, register_function
from . import tracer
from .tracer import TracedBase as TB
import numpy as np
TABLE = {}
METHODS["setitem"] = setitem
METHODS.update(fill=fill)
tracer._ADD = None
TB.__setitem__ = setitem
def later():
    setattr(tracer, "_SUB", None)
    FUNCTION_HANDLERS[np.put] = put
    del METHODS["x"]
register_function(np.put, put)    # the registration API: a call, allowed
TABLE["own"] = 1                    # the module's own table
np.foo = 1                          # not dualrev's
x = METHODS.get("setitem")          # reading
register_function("setitem", f)     # the registration API keyed by a string
replace_while_tracing(tracer, "new_level", f)   # replacing a name of dualrev's
replace_while_tracing(np, "zeros", f)           # of NumPy's: allowed
"""
    found = installations_in(src, "dualrev.at", "dualrev")
    assert [(i.owner, i.how, i.line) for i in found] == [
        ("dualrev.primitive", 'METHODS[...] =', 7),
        ("dualrev.primitive", "METHODS.update()", 8),
        ("dualrev.tracer", "tracer._ADD =", 9),
        ("dualrev.tracer", "TB.__setitem__ =", 10),
        ("dualrev.tracer", "setattr(tracer, ...)", 12),
        ("dualrev.primitive", "FUNCTION_HANDLERS[...] =", 13),
        ("dualrev.primitive", "METHODS[...] =", 14),
        ("dualrev.primitive", "register_function('setitem', ...)", 19),
        ("dualrev.tracer", "replace_while_tracing(tracer, ...)", 20),
    ]


def test_no_module_installs_into_another():
    found = installations()
    new = [i for i in found if (i.module, i.owner, i.name) not in KNOWN_INSTALLATIONS]
    assert not new, "installations into another module (use its registration function):\n" + (
        "\n".join(f"{i.module}:{i.line}: {i.how} (into {i.owner})" for i in new))


# ---------------------------------------------------------------- the traced values' face
# The tables a method of a traced value may index, each keyed by NumPy's own objects
# (a ufunc, a NumPy function): NumPy's protocol, filled by register_ufunc/register_function.
_NUMPY_KEYED = {"UFUNC_HANDLERS", "FUNCTION_HANDLERS", "_UFUNC_REDUCE", "_UFUNC_ACCUMULATE",
                "_BOOLEAN"}


def face_references(cls: type, namespace: dict[str, Any]
                    ) -> tuple[list[tuple[str, str, Any]], list[str]]:
    """For the methods and properties ``cls`` defines (their source read with ``ast``):
    (method, name, object) for every global name one reads, resolved in ``namespace``
    (the defining module's), and the problems found: a table indexed by a string, or
    by anything in a table not keyed by NumPy's own objects."""
    refs = []
    problems = []
    for attr, member in vars(cls).items():
        funcs = [member.fget, member.fset] if isinstance(member, property) else [member]
        for f in funcs:
            if not inspect.isfunction(f):
                continue
            tree = ast.parse(textwrap.dedent(inspect.getsource(f))).body[0]
            local = {a.arg for a in ast.walk(tree.args) if isinstance(a, ast.arg)}
            tree = ast.Module(body=tree.body, type_ignores=[])  # (not the annotations)
            local |= {n.id for n in ast.walk(tree)
                      if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and (
                        node.value.id not in local):
                    key = node.slice
                    if node.value.id not in _NUMPY_KEYED or (
                            isinstance(key, ast.Constant) and isinstance(key.value, str)):
                        problems.append(f"{cls.__name__}.{attr} indexes {node.value.id}")
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and (
                        node.id not in local):
                    if node.id in namespace:
                        refs.append((attr, node.id, namespace[node.id]))
                    elif not hasattr(builtins, node.id):
                        problems.append(f"{cls.__name__}.{attr} reads {node.id}, unresolved")
    return refs, problems


def test_traced_methods_reach_code_at_or_below_the_tracer():
    assert not hasattr(primitive, "METHODS")  # the string-keyed table is gone
    top = layer_of("dualrev.tracer")
    refs, problems = face_references(tracer.TracedBase, vars(tracer))
    assert not problems, problems
    reached = set()
    for attr, name, obj in refs:
        if inspect.ismodule(obj):
            mod = obj.__name__
        elif callable(obj) and not isinstance(obj, dict):
            mod = getattr(obj, "__module__", None) or ""
        else:
            continue  # a constant or a table (its subscripts are checked)
        if mod.split(".")[0] != "dualrev":
            continue  # NumPy's, math's, the standard library's
        assert layer_of(mod) <= top, f"TracedBase.{attr} calls {name} from {mod}"
        reached.add((attr, mod))
    # the writes, indexing and casts are reached by name, in the modules that run them
    assert ("__setitem__", "dualrev.at") in reached
    assert ("__iadd__", "dualrev.at") in reached
    assert ("__getitem__", "dualrev.indexing") in reached
    assert ("astype", "dualrev.cast") in reached
    assert ("copy", "dualrev.inplace") in reached
    assert ("__array__", "dualrev.scipy_dispatch") in reached
    assert len(reached) > 20


class _OldFace:
    """A traced value's face written the old way, for the checker's own test."""

    def __setitem__(self, key: Any, value: Any) -> None:
        METHODS["setitem"](self, key, value)  # noqa: F821

    def __add__(self, o: Any) -> Any:
        return UFUNC_HANDLERS[np.add](self, o)  # noqa: F821  (NumPy-keyed: allowed)


def test_the_face_checker_sees_a_string_keyed_lookup():
    refs, problems = face_references(_OldFace, {"METHODS": {}, "UFUNC_HANDLERS": {}, "np": np})
    assert problems == ["_OldFace.__setitem__ indexes METHODS"]
    assert ("__add__", "np", np) in refs


if __name__ == "__main__":
    print(report(violations()))
    for i in installations():
        print(f"{i.module}:{i.line}: {i.how} (into {i.owner})")
