"""The keyword sweep: for every handler in the registries (NumPy functions and ufuncs, and
the SciPy dispatchers), the keywords it accepts but never reads, the ones it takes through
``**kwargs``, and NumPy's/SciPy's keywords it lacks. ``python -m tests.keyword_sweep``
prints the table, then the handlers it could not read; tests/test_primitive.py checks it
against the decisions below.

A handler's parameters and reads come from its source text (``inspect`` and ``ast``), not
its bytecode, so the sweep means the same on every supported interpreter.
"""

from __future__ import annotations

import ast
import inspect
from typing import Any

import numpy as np

import dualrev  # noqa: F401  (fills the registries)
from dualrev.catalogue.scipy_functions import ORIGINALS
from dualrev.catalogue.scipy_stats import RULES as STATS_RULES
from dualrev.primitive import FUNCTION_HANDLERS, UFUNC_HANDLERS, Primitive, qualified_name

# (function, keyword) accepted and unread on purpose: it changes no value.
NO_EFFECT = {
    **{(f"numpy.{n}", "like"): "NEP 35 takes like= off before dispatching to the traced "
       "value's type (the handler is reached only through it)"
       for n in ("asarray", "asanyarray", "ascontiguousarray", "asfortranarray")},
    ("numpy.broadcast_arrays", "subok"): "traced values are no ndarray subclass",
    ("numpy.broadcast_to", "subok"): "traced values are no ndarray subclass",
    ("numpy.copy", "order"): "memory layout only",
    ("numpy.copy", "subok"): "traced values are no ndarray subclass",
    ("numpy.lib.stride_tricks.sliding_window_view", "subok"): "traced values are no ndarray "
    "subclass",
    ("numpy.copyto", "dst"): "always refused (InPlaceError)",
    ("numpy.copyto", "src"): "always refused (InPlaceError)",
    ("numpy.copyto", "casting"): "always refused (InPlaceError)",
    ("numpy.copyto", "where"): "always refused (InPlaceError)",
    ("numpy.einsum", "optimize"): "contraction order only",
    ("numpy.einsum", "order"): "memory layout only",
    ("numpy.meshgrid", "copy"): "results are new traced values either way",
    ("numpy.reshape", "copy"): "counted as a view either way (dualrev/inplace.py): a copy "
                               "can only be refused more, never computed differently",
    **{(f"numpy.{f}", "overwrite_input"): "permits NumPy to sort the input in place; traced "
       "values are never overwritten and the result is the same"
       for f in ("median", "nanmedian", "quantile", "nanquantile", "percentile",
                 "nanpercentile")},
    ("numpy.sort", "kind"): "the same sorted values",
    ("numpy.sort", "stable"): "the same sorted values",
    ("scipy.linalg.cho_factor", "overwrite_a"): "permits SciPy to reuse a; no value changes",
    ("scipy.linalg.cho_solve", "overwrite_b"): "permits SciPy to reuse b; no value changes",
    ("scipy.linalg.lu_factor", "overwrite_a"): "permits SciPy to reuse a; no value changes",
    ("scipy.linalg.lu_solve", "overwrite_b"): "permits SciPy to reuse b; no value changes",
    ("scipy.linalg.solve_triangular", "overwrite_b"): "permits SciPy to reuse b; no value changes",
    **{(f"scipy.linalg.{f}", k): f"permits SciPy to reuse {k[10:]}; no value changes"
       for f in ("solve_banded", "solveh_banded") for k in ("overwrite_ab", "overwrite_b")},
    ("scipy.sparse.linalg.spsolve", "use_umfpack"): "SciPy's choice of solver (dualrev uses "
                                                    "SuperLU); no value changes beyond rounding",
}
# Owned by another part of issue 10 (complex numbers / their keywords): still unread here.
PENDING: set[tuple[str, str]] = set()  # none left
# Handlers taking **kwargs, and what they do with them.
FORWARDS = {
    "numpy.array": "a newer NumPy's keywords (ndmax=) passed on with plain values, refused by "
                   "name with traced ones (catalogue/construction.py)",
    **{f"numpy.{n}": "passed on to NumPy: like= of a traced value builds constants"
       for n in ("zeros", "ones", "empty", "full", "arange", "eye", "identity")},
    "numpy.pad": "constant_values= read; the other modes' keywords refused as NumPy does",
    "numpy.piecewise": "passed on to the user's functions, as NumPy does",
    "numpy.apply_along_axis": "passed on to func1d, as NumPy does",
    "numpy.full_like": "passed on to NumPy (device=)",
    "numpy.zeros_like": "passed on to NumPy (device=)",
    "numpy.ones_like": "passed on to NumPy (device=)",
    "numpy.empty_like": "passed on to NumPy (device=)",
    "scipy.special.softplus": "passed on to np.logaddexp: the ufunc protocol honours or "
                              "refuses each",
    "numpy.fix": "passed on to NumPy (zero derivative), whose deprecation warning reaches the "
                 "caller",
    **{f"scipy.ndimage.{f}": "passed on to gaussian_filter (truncate=, radius=), as SciPy "
       "does" for f in ("gaussian_laplace", "gaussian_gradient_magnitude")},
    **{f"scipy.interpolate.{c}": "with traced data every argument is refused "
       "(NoDerivativeRule: not linear in the data)"
       for c in ("PchipInterpolator", "Akima1DInterpolator")},
    **{f"scipy.optimize.{f}": "SciPy's own signature (the dispatcher wraps the original): "
       "every keyword reaches SciPy's solver for the plain solve, and those that define the "
       "solution (bounds=, constraints=, loss=, f_scale=, sigma=, absolute_sigma=, "
       "nan_policy=) are read by dualrev.implicit's rules or refused there"
       for f in ("minimize", "root", "fsolve", "least_squares", "curve_fit", "fixed_point",
                 "newton", "root_scalar", "brentq", "brenth", "ridder", "bisect",
                 "toms748", "minimize_scalar")},
    "scipy.integrate.solve_ivp": "SciPy's solver options (rtol=, atol=, first_step=, "
                                 "max_step=, jac=, ...): passed on to SciPy for the "
                                 "solution and for the derived systems (jac= for the "
                                 "user's system only; the smallest atol for the others)",
    "numpy.clip": "min=/max= read, dtype= honoured, the other ufunc keywords refused",
    **{f"numpy.{f}": "always refused (InPlaceError): it writes into its argument"
       for f in ("place", "putmask", "fill_diagonal", "put_along_axis")},
    "numpy.put": "mode= honoured (raise, wrap, clip) writing into a traced array; into a "
                 "plain array refused (InPlaceError)",
    **{f"scipy.stats.{d}.{m}": "parsed by the distribution's own SciPy parser (_parse_args): "
       "its shape parameters by position or name, loc=, scale= (continuous); any other "
       "keyword is SciPy's TypeError"
       for d, m in STATS_RULES if d not in ("multivariate_normal", "dirichlet")},
}  # plus the zero-derivative functions of catalogue/nondiff.py, which pass all to NumPy
# A ufunc handler is called by __array_ufunc__ with the inputs only, after that method has
# refused out=, applied dtype= and refused the other keywords.
UFUNC_KWARGS = "none arrive: __array_ufunc__ vets the ufunc keywords and passes the inputs only"

# Calls that read every local variable by name, so every parameter counts as read.
_READ_ALL = frozenset({"locals", "vars", "eval", "exec"})
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _arg_names(args: ast.arguments) -> list[str]:
    """Parameter names a keyword can reach: positional-or-keyword, positional-only and
    keyword-only (not ``*args`` / ``**kwargs``)."""
    return [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]]


def _all_arg_names(args: ast.arguments) -> set[str]:
    extra = [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return {*_arg_names(args), *extra}


def _stored(node: ast.AST) -> set[str]:
    """Names bound by a target (of ``for``, a comprehension, an assignment)."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)
            and isinstance(n.ctx, ast.Store)}


def _local_to(scope: ast.AST) -> set[str]:
    """Names a nested function binds itself (parameters, assignments) and so hides from
    the handler's scope; ``nonlocal``/``global`` names stay the handler's."""
    names = _all_arg_names(scope.args)  # type: ignore[attr-defined]
    declared: set[str] = set()
    body = scope.body if isinstance(scope.body, list) else [scope.body]  # type: ignore[attr-defined]
    stack = list(body)
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.Nonlocal, ast.Global)):
            declared.update(n.names)
        elif isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            names.add(n.id)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(n.name)  # its body is its own scope: not walked
            stack += n.decorator_list
            if not isinstance(n, ast.ClassDef):
                stack += n.args.defaults + [d for d in n.args.kw_defaults if d is not None]
        elif isinstance(n, ast.Lambda):
            stack += n.args.defaults + [d for d in n.args.kw_defaults if d is not None]
        elif isinstance(n, ast.comprehension):  # its target is the comprehension's own
            stack += [n.iter, *n.ifs]
        else:
            stack += ast.iter_child_nodes(n)
    return names - declared


class _Reads(ast.NodeVisitor):
    """The names a function body loads from the function's own scope, nested functions,
    lambdas and comprehensions included, minus the names those rebind for themselves."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.read_all = False
        self._hidden: list[set[str]] = [set()]

    def _load(self, name: str) -> None:
        if name not in self._hidden[-1]:
            self.names.add(name)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._load(node.id)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.target, ast.Name):  # ``x += 1`` reads x first
            self._load(node.target.id)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in _READ_ALL:
            self.read_all = True
        self.generic_visit(node)

    def _nested(self, node: Any, inner: list[ast.AST]) -> None:
        # Defaults and decorators run in the enclosing scope; the body in its own.
        outer: list[ast.AST] = [*node.args.defaults, *node.args.kw_defaults]
        outer += getattr(node, "decorator_list", [])
        for n in outer:
            if n is not None:
                self.visit(n)
        self._hidden.append(self._hidden[-1] | _local_to(node))
        for n in inner:
            self.visit(n)
        self._hidden.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._nested(node, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._nested(node, [node.body])

    def _comprehension(self, node: Any, results: list[ast.AST]) -> None:
        # The first iterable runs in the enclosing scope; each target hides its names
        # from the later iterables, the conditions and the results.
        hidden = set(self._hidden[-1])
        for i, gen in enumerate(node.generators):
            if i == 0:
                self.visit(gen.iter)
            self._hidden.append(hidden)
            if i > 0:
                self.visit(gen.iter)
            hidden = hidden | _stored(gen.target)
            self._hidden[-1] = hidden
            for cond in gen.ifs:
                self.visit(cond)
            self._hidden.pop()
        self._hidden.append(hidden)
        for n in results:
            self.visit(n)
        self._hidden.pop()

    def visit_ListComp(self, node: ast.ListComp) -> None:
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp  # type: ignore[assignment]

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node, [node.key, node.value])


_MODULE_TREES: dict[str, ast.Module] = {}


def _function_node(h: Any) -> ast.AST | str:
    """The ``def`` or ``lambda`` node of ``h`` in its module's source, or why there is none."""
    if isinstance(h, Primitive):
        return "a Primitive registered directly: positional arguments only"
    if not inspect.isfunction(h):
        return f"not a Python function ({type(h).__name__}): no source to read"
    try:
        start = inspect.getsourcelines(h)[1]
        module = inspect.getmodule(h)
        path = inspect.getsourcefile(h)
        if module is None or path is None:
            raise OSError("no module")
        tree = _MODULE_TREES.get(path)
        if tree is None:
            tree = _MODULE_TREES[path] = ast.parse(inspect.getsource(module), path)
    except (OSError, TypeError, SyntaxError) as e:
        return f"source unavailable ({e})"
    lambda_ = h.__name__ == "<lambda>"
    name = h.__qualname__.rsplit(".", 1)[-1]  # __name__ may be renamed after the def
    found = []
    for n in ast.walk(tree):
        if not isinstance(n, _SCOPES):
            continue
        first = min([n.lineno, *(d.lineno for d in getattr(n, "decorator_list", []))])
        if first != start or isinstance(n, ast.Lambda) != lambda_:
            continue
        if lambda_ or n.name == name:  # type: ignore[attr-defined]
            found.append(n)
    if len(found) > 1:  # lambdas on one line: keep those with h's parameters
        params = [p.name for p in inspect.signature(h).parameters.values()]
        found = [n for n in found if sorted(_all_arg_names(n.args)) == sorted(params)]  # type: ignore[attr-defined]
    if len(found) != 1:
        return f"{len(found)} definitions match {h.__qualname__} at line {start}"
    return found[0]


def _handler_keywords(h: Any) -> tuple[list[str], list[str], bool] | str:
    """``h``'s keyword-reachable parameters, those it never reads, whether it takes
    ``**kwargs``; or why its source cannot be read."""
    node = _function_node(h)
    if isinstance(node, str):
        return node
    params = _arg_names(node.args)  # type: ignore[attr-defined]
    reads = _Reads()
    body = node.body  # type: ignore[attr-defined]
    for n in body if isinstance(body, list) else [body]:
        reads.visit(n)
    unread = [] if reads.read_all else [p for p in params if p not in reads.names]
    return params, unread, node.args.kwarg is not None  # type: ignore[attr-defined]


def _public_keywords(f: Any) -> list[str] | None:
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError):
        return None
    return [p.name for p in sig.parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"]


def _entries() -> list[tuple[str, Any, Any]]:
    # a view function's handler is wrapped to record its result as a view
    # (dualrev/inplace.py); the wrapper passes every argument on: read the handler
    out = [(qualified_name(f), f, inspect.unwrap(h)) for f, h in FUNCTION_HANDLERS.items()]
    for dispatcher, original in ORIGINALS.items():
        handler = next(c.cell_contents for c in dispatcher.__closure__
                       if callable(c.cell_contents) and c.cell_contents is not original)
        name = f"{original.__module__.split('._')[0]}.{original.__name__}"
        if name.startswith("scipy.stats"):
            name = f"scipy.stats.{getattr(handler, '__name__', name)}"
        out.append((name, original, handler))
    return out


def _ufunc_entries() -> list[tuple[str, Any, Any]]:
    def name(u: Any) -> str:  # a ufunc does not know its module
        return f"{'numpy' if getattr(np, u.__name__, None) is u else 'scipy.special'}.{u.__name__}"
    return [(name(u), u, h) for u, h in UFUNC_HANDLERS.items()]


PLAIN_VALUED = {name for name, _, h in _entries()
                if getattr(h, "__qualname__", "").startswith("_on_plain_values")}
UFUNCS = {name for name, _, _ in _ufunc_entries()}


def sweep() -> list[tuple[str, str, str]]:
    """Rows (function, keyword, finding) over every registered handler whose source can
    be read (``skipped()`` lists the others)."""
    rows = []
    for name, f, h in _entries() + _ufunc_entries():
        found = _handler_keywords(h)
        if isinstance(found, str):
            continue
        params, unused, varkw = found
        rows += [(name, k, "accepted, unread") for k in unused]
        if varkw:
            rows.append((name, "**kwargs", "accepts any keyword"))
        elif name not in UFUNCS:  # a ufunc's keywords are __array_ufunc__'s to handle
            rows += [(name, k, "lacks (TypeError)") for k in _public_keywords(f) or []
                     if k not in params]
    return sorted(rows)


def skipped() -> list[tuple[str, str]]:
    """(function, reason) for each registered handler the sweep cannot read."""
    out = []
    for name, _, h in _entries() + _ufunc_entries():
        found = _handler_keywords(h)
        if isinstance(found, str):
            out.append((name, found))
    return sorted(out)


def _report_skipped() -> None:
    plain_ufuncs = [n for n, why in skipped() if n in UFUNCS and why.startswith("a Primitive")]
    print(f"skipped | {len(plain_ufuncs)} ufuncs registered as Primitives | {UFUNC_KWARGS}")
    for name, why in skipped():
        if name not in plain_ufuncs:
            print(f"skipped | {name} | {why}")


def decision(row: tuple[str, str, str]) -> str:
    """Why the finding ``row`` is as intended, or "" when nothing says so."""
    name, kw, finding = row
    if finding == "accepts any keyword":
        if name in PLAIN_VALUED:
            return "passed on to NumPy, on the plain values (no derivative)"
        if name in UFUNCS:
            return UFUNC_KWARGS
        return FORWARDS.get(name, "")
    if (name, kw) in NO_EFFECT:
        return "no effect: " + NO_EFFECT[(name, kw)]
    return "pending (complex helper)" if (name, kw) in PENDING else ""


if __name__ == "__main__":
    for row in sweep():
        print(" | ".join(row + (decision(row),)))
    _report_skipped()
