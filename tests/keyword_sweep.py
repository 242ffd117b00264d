"""The keyword sweep: for every handler in the registries (NumPy functions and the SciPy
dispatchers), the keywords it accepts but never reads, the ones it takes through
``**kwargs``, and NumPy's/SciPy's keywords it lacks. ``python -m tests.keyword_sweep``
prints the table; tests/test_primitive.py checks it against the decisions below."""

from __future__ import annotations

import dis
import inspect
from typing import Any

import dualrev  # noqa: F401  (fills the registries)
from dualrev.catalogue.scipy_functions import ORIGINALS
from dualrev.primitive import FUNCTION_HANDLERS, qualified_name

# The instructions that read a local or free variable, CPython 3.10-3.14 (dualrev itself no
# longer reads bytecode: the tape's needs are declared with saves=, see Primitive).
_READS = frozenset({
    "LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_AND_CLEAR", "LOAD_FAST_LOAD_FAST",
    "STORE_FAST_LOAD_FAST", "LOAD_FAST_BORROW", "LOAD_FAST_BORROW_LOAD_FAST_BORROW",
    "LOAD_DEREF", "LOAD_CLOSURE", "LOAD_CLASSDEREF", "LOAD_FROM_DICT_OR_DEREF", "MAKE_CELL",
})

# (function, keyword) accepted and unread on purpose: it changes no value.
NO_EFFECT = {
    ("numpy.broadcast_arrays", "subok"): "traced values are no ndarray subclass",
    ("numpy.broadcast_to", "subok"): "traced values are no ndarray subclass",
    ("numpy.copy", "order"): "memory layout only",
    ("numpy.copy", "subok"): "traced values are no ndarray subclass",
    ("numpy.copyto", "dst"): "always refused (InPlaceError)",
    ("numpy.copyto", "src"): "always refused (InPlaceError)",
    ("numpy.copyto", "casting"): "always refused (InPlaceError)",
    ("numpy.copyto", "where"): "always refused (InPlaceError)",
    ("numpy.einsum", "optimize"): "contraction order only",
    ("numpy.einsum", "order"): "memory layout only",
    ("numpy.meshgrid", "copy"): "traced values are immutable: a view equals a copy",
    ("numpy.reshape", "copy"): "traced values are immutable: a view equals a copy",
    ("numpy.sort", "kind"): "the same sorted values",
    ("numpy.sort", "stable"): "the same sorted values",
    ("scipy.linalg.cho_factor", "overwrite_a"): "permits SciPy to reuse a; no value changes",
    ("scipy.linalg.cho_solve", "overwrite_b"): "permits SciPy to reuse b; no value changes",
    ("scipy.linalg.lu_factor", "overwrite_a"): "permits SciPy to reuse a; no value changes",
    ("scipy.linalg.lu_solve", "overwrite_b"): "permits SciPy to reuse b; no value changes",
    ("scipy.linalg.solve_triangular", "overwrite_b"): "permits SciPy to reuse b; no value changes",
    ("scipy.linalg.sqrtm", "blocksize"): "unused by SciPy's algorithm too (deprecated)",
}
# Owned by another part of issue 10 (complex numbers / their keywords): still unread here.
PENDING: set[tuple[str, str]] = set()  # none left
# Handlers taking **kwargs, and what they do with them.
FORWARDS = {
    "numpy.pad": "constant_values= read; the other modes' keywords refused as NumPy does",
    "numpy.piecewise": "passed on to the user's functions, as NumPy does",
    "numpy.full_like": "passed on to NumPy (device=)",
    "scipy.special.softplus": "passed on to np.logaddexp: the ufunc protocol honours or "
                              "refuses each",
    "numpy.fix": "passed on to NumPy (zero derivative), whose deprecation warning reaches the "
                 "caller",
    "numpy.clip": "min=/max= read, dtype= honoured, the other ufunc keywords refused",
}  # plus the zero-derivative functions of catalogue/inspection.py, which pass all to NumPy


def _reads(code: Any, loaded: set[str]) -> None:
    for ins in dis.get_instructions(code):
        if ins.opname in _READS:
            v = ins.argval
            loaded.update(v if isinstance(v, tuple) else (v,))
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            _reads(const, loaded)


def _handler_keywords(h: Any) -> tuple[list[str], list[str], bool] | None:
    code = getattr(h, "__code__", None)
    if code is None:  # a Primitive registered directly: positional arguments only
        return None
    params = list(code.co_varnames[:code.co_argcount + code.co_kwonlyargcount])
    loaded: set[str] = set(code.co_cellvars)
    _reads(code, loaded)
    return params, [p for p in params if p not in loaded], bool(
        code.co_flags & inspect.CO_VARKEYWORDS)


def _public_keywords(f: Any) -> list[str] | None:
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError):
        return None
    return [p.name for p in sig.parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"]


def _entries() -> list[tuple[str, Any, Any]]:
    out = [(qualified_name(f), f, h) for f, h in FUNCTION_HANDLERS.items()]
    for dispatcher, original in ORIGINALS.items():
        handler = next(c.cell_contents for c in dispatcher.__closure__
                       if callable(c.cell_contents) and c.cell_contents is not original)
        name = f"{original.__module__.split('._')[0]}.{original.__name__}"
        if name.startswith("scipy.stats"):
            name = f"scipy.stats.{getattr(handler, '__name__', name)}"
        out.append((name, original, handler))
    return out


PLAIN_VALUED = {name for name, _, h in _entries()
                if getattr(h, "__qualname__", "").startswith("_on_plain_values")}


def sweep() -> list[tuple[str, str, str]]:
    """Rows (function, keyword, finding) over every registered handler."""
    rows = []
    for name, f, h in _entries():
        found = _handler_keywords(h)
        if found is None:
            continue
        params, unused, varkw = found
        rows += [(name, k, "accepted, unread") for k in unused]
        if varkw:
            rows.append((name, "**kwargs", "accepts any keyword"))
        else:
            rows += [(name, k, "lacks (TypeError)") for k in _public_keywords(f) or []
                     if k not in params]
    return sorted(rows)


def decision(row: tuple[str, str, str]) -> str:
    name, kw, finding = row
    if finding == "accepts any keyword":
        if name in PLAIN_VALUED:
            return "passed on to NumPy, on the plain values (no derivative)"
        return FORWARDS.get(name, "")
    if (name, kw) in NO_EFFECT:
        return "no effect: " + NO_EFFECT[(name, kw)]
    return "pending (complex helper)" if (name, kw) in PENDING else ""


if __name__ == "__main__":
    for row in sweep():
        print(" | ".join(row + (decision(row),)))
