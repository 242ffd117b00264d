"""Which construct on the user's line turned a traced value into a plain one.

A traced value converted to a float or an ndarray would lose its derivative, so the
conversion raises; but NumPy and Python only tell the traced value *that* it is being
converted (``__float__``, ``__array__``), not by whom. This module finds out from the
caller's source: the innermost frame outside dualrev, NumPy and SciPy, the statement on
its current line (parsed with ``ast``), and in it the construct that converts (a method
of a plain array, ``math.exp``, ``np.array([...])``, a write into a NumPy buffer, ...),
judged by looking its names up in that frame. The error then names the construct as
written and the rewrite that keeps the derivative.

Everything here is best effort and only runs while an error is being raised: without
frame access (``sys._getframe``) or source text (an interactive session) the message
falls back to a list of the usual causes.
"""

from __future__ import annotations

import ast
import builtins
import cmath
import inspect
import linecache
import math
import os
import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from . import namespace
from .errors import BUFFER_ADVICE

_HERE = os.path.dirname(os.path.abspath(__file__))
# frames in these trees are library code, not the line the user wrote
_LIBRARY_DIRS = tuple(os.path.dirname(os.path.abspath(m.__file__)) + os.sep
                      for m in (np,) if getattr(m, "__file__", None)) + (_HERE + os.sep,)
_SCIPY_DIR: str | None = None

#: the frame of the caller of a function, or None where the interpreter has no frames
#: (module-level so the tests can take it away and check the fallback)
_getframe: Callable[[int], Any] | None = getattr(sys, "_getframe", None)

_MATH_TO_NUMPY = {"fabs": "abs", "pow": "power", "atan2": "arctan2", "asin": "arcsin",
                  "acos": "arccos", "atan": "arctan", "asinh": "arcsinh",
                  "acosh": "arccosh", "atanh": "arctanh", "erf": "scipy.special.erf",
                  "erfc": "scipy.special.erfc", "gamma": "scipy.special.gamma",
                  "lgamma": "scipy.special.gammaln", "fsum": "sum", "prod": "prod",
                  "dist": "linalg.norm", "hypot": "hypot"}
_ARRAY_BUILDERS = ("array", "asarray", "asanyarray", "ascontiguousarray", "asfortranarray")


def _library_dirs() -> tuple[str, ...]:
    global _SCIPY_DIR
    if _SCIPY_DIR is None and "scipy" in sys.modules:
        f = getattr(sys.modules["scipy"], "__file__", None)
        _SCIPY_DIR = os.path.dirname(os.path.abspath(f)) + os.sep if f else ""
    return _LIBRARY_DIRS + ((_SCIPY_DIR,) if _SCIPY_DIR else ())


def user_frame() -> Any:
    """The innermost frame running code outside dualrev, NumPy and SciPy, or None."""
    return _user_and_callee()[0]


def user_callee() -> Any:
    """The library frame (dualrev, NumPy or SciPy) that the user's innermost frame
    called: the function the user called, whatever it called in turn; or None."""
    return _user_and_callee()[1]


def frame_of(frame: Any, fn: Any) -> bool:
    """Whether ``frame`` runs the function ``fn``: its code, and for code that several
    functions share (a decorator's wrapper, such as SciPy's ``_apply_over_batch``) the
    same closure."""
    code = getattr(fn, "__code__", None)
    if code is None or frame.f_code is not code:
        return False
    cells = getattr(fn, "__closure__", None) or ()
    local = frame.f_locals
    return all(local.get(n, c) is c.cell_contents
               for n, c in zip(code.co_freevars, cells, strict=False))


_LIBRARY_FILES: dict[str, bool] = {}


def library_file(filename: str) -> bool:
    """Whether code from ``filename`` is dualrev's, NumPy's or SciPy's rather than the
    user's (cached per file: dualrev/buffers.py asks once per constructor call)."""
    hit = _LIBRARY_FILES.get(filename)
    if hit is None:
        hit = _LIBRARY_FILES[filename] = (
            os.path.abspath(filename).startswith(_library_dirs())
            or filename.startswith("<frozen"))
    return hit


_CALLS: dict[tuple[Any, int, str], bool] = {}


def line_calls(frame: Any, name: str) -> bool:
    """Whether the statement ``frame`` is running calls, on its current line, a function
    or method spelled ``name`` (``np.zeros(...)``, ``zeros(...)``, ``u0.copy()``):
    a constructor reached from there was called by the user's code itself rather than by
    a C extension it called (NumPy's random generators call ``np.empty`` from Cython,
    with no frame of their own). Cached per code object and line; False without source."""
    key = (frame.f_code, frame.f_lineno, name)
    hit = _CALLS.get(key)
    if hit is None:
        hit = False
        try:
            site = _Site(frame)
            for n in site.nodes():
                if isinstance(n, ast.Call):
                    f = n.func
                    if (isinstance(f, ast.Name) and f.id == name) or (
                            isinstance(f, ast.Attribute) and f.attr == name):
                        hit = True
                        break
        except Exception:  # noqa: BLE001 - no source, or none that parses: no buffer
            hit = False
        if len(_CALLS) > 4096:
            _CALLS.clear()
        _CALLS[key] = hit
    return hit


def _decorated(frame: Any) -> Any:
    """The SciPy function a decorator's wrapper frame runs (a free variable of the
    wrapper that is a SciPy function), or None: its own code names only the wrapper."""
    for name in frame.f_code.co_freevars:
        v = frame.f_locals.get(name)
        if isinstance(v, types.FunctionType) and str(v.__module__).startswith("scipy"):
            return v
    return None


def _user_and_callee() -> tuple[Any, Any]:
    """(the innermost frame outside dualrev, NumPy and SciPy; the library frame it
    called), either None where there is none."""
    if _getframe is None:
        return None, None
    try:
        frame = _getframe(2)
    except ValueError:
        return None, None
    dirs = _library_dirs()
    callee = None
    while frame is not None:
        name = os.path.abspath(frame.f_code.co_filename)
        if not name.startswith(dirs) and not frame.f_code.co_filename.startswith("<frozen"):
            return frame, callee
        callee = frame
        frame = frame.f_back
    return None, None


def _scipy_function(frame: Any) -> str | None:
    """``scipy.signal.convolve`` for a frame running a SciPy function (its public
    module: the private submodules left out), else None."""
    if frame is None or not _SCIPY_DIR:
        return None
    if not os.path.abspath(frame.f_code.co_filename).startswith(_SCIPY_DIR):
        return None
    module = str(frame.f_globals.get("__name__", "scipy"))
    qualname = getattr(frame.f_code, "co_qualname", frame.f_code.co_name)
    inner = _decorated(frame)
    if inner is not None:  # (a shared wrapper's code says "wrapper", not the function)
        module, qualname = str(inner.__module__), inner.__qualname__
    public = ".".join(p for p in module.split(".") if not p.startswith("_")) or "scipy"
    return f"{public}.{qualname}"


def _replaced_in_module(public: str, callee: Any) -> bool:
    """Whether the SciPy function ``callee`` runs (``public``: its public dotted name) is
    one dualrev replaced in its module by a dispatcher (which wraps it), so that the user
    reached the original through a name bound before ``import dualrev``."""
    *parts, name = public.split(".")
    while parts:
        f = getattr(sys.modules.get(".".join(parts)), name, None)
        if f is not None:
            inner, code = getattr(f, "__wrapped__", None), getattr(f, "__code__", None)
            return (getattr(inner, "__code__", None) is callee.f_code and code is not None
                    and os.path.abspath(code.co_filename).startswith(_HERE + os.sep))
        parts.pop()
    return False


class _Site:
    """The user's statement being run: its frame, file, line and parsed nodes."""

    def __init__(self, frame: Any) -> None:
        self.frame = frame
        self.file = frame.f_code.co_filename
        self.line = frame.f_lineno
        self.source = "".join(linecache.getlines(self.file, frame.f_globals))
        self.stmt = _statement(self.source, self.line) if self.source else None

    def where(self) -> str:
        return f"line {self.line} of {os.path.basename(self.file)}"

    def seg(self, node: ast.AST) -> str:
        s = ast.get_source_segment(self.source, node)
        return " ".join(s.split()) if s else ast.unparse(node)

    def lookup(self, node: ast.AST) -> Any:
        """The value of a name or dotted name in the frame; ``_UNKNOWN`` for anything
        else (nothing is evaluated that could run code)."""
        if isinstance(node, ast.Name):
            f = self.frame
            for scope in (f.f_locals, f.f_globals, vars(builtins)):
                if node.id in scope:
                    return scope[node.id]
            return _UNKNOWN
        if isinstance(node, ast.Attribute):
            base = self.lookup(node.value)
            if base is _UNKNOWN:
                return _UNKNOWN
            if isinstance(base, type(np)):
                return getattr(base, node.attr, _UNKNOWN)
            try:  # the stored attribute, without running a property or __getattr__
                v = inspect.getattr_static(base, node.attr)
            except AttributeError:
                return _UNKNOWN
            return _UNKNOWN if hasattr(type(v), "__get__") and not callable(v) else v
        return _UNKNOWN

    def nodes(self) -> list[ast.AST]:
        """The statement's nodes on the current line, innermost (latest starting) first."""
        if self.stmt is None:
            return []
        found = [n for n in ast.walk(self.stmt)
                 if getattr(n, "lineno", None) is not None
                 and n.lineno <= self.line <= (n.end_lineno or n.lineno)]
        return sorted(found, key=lambda n: (n.lineno, n.col_offset), reverse=True)


class Explanation(str):
    """A diagnosis; ``store`` tells a write into a plain NumPy buffer (``out[i] = t``)."""

    store = False


_UNKNOWN = object()
_PARSED: dict[str, ast.Module | None] = {}


def _statement(source: str, line: int) -> ast.stmt | None:
    """The innermost statement of ``source`` spanning ``line``."""
    tree = _PARSED.get(source)
    if tree is None and source not in _PARSED:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            tree = None
        if len(_PARSED) > 32:
            _PARSED.clear()
        _PARSED[source] = tree
    if tree is None:
        return None
    best = None
    for n in ast.walk(tree):
        if isinstance(n, ast.stmt) and n.lineno <= line <= (n.end_lineno or n.lineno):
            if best is None or n.lineno >= best.lineno:
                best = n
    return best


def _plain_array(v: Any) -> bool:
    return type(v) is np.ndarray or isinstance(v, np.ndarray)


def explain(kind: str) -> Explanation | str | None:
    """A message naming the construct on the user's line that converts a traced value
    (``kind``: "float", "int", "complex", "index" for the Python coercions, "array" for
    the ``__array__`` protocol, "item", "tolist"), or None where it cannot be found."""
    try:
        frame, callee = _user_and_callee()
        if frame is None:
            return None
        site = _Site(frame)
        scipy_fn = _scipy_function(callee)
        if scipy_fn is not None:
            text = " ".join(linecache.getline(site.file, site.line, frame.f_globals).split())
            shown = f", `{text if len(text) <= 100 else text[:97] + '...'}`," if text else ""
            if _replaced_in_module(scipy_fn, callee):
                return Explanation(
                    f"dualrev: {scipy_fn}, called on {site.where()}{shown} is SciPy's "
                    "original, reached without dualrev's dispatcher (was it imported with "
                    "`from scipy... import` before `import dualrev`? import dualrev first, "
                    "or call it through its module), and converts a traced value to a "
                    f"plain {'NumPy array' if kind == 'array' else 'number'}")
            return Explanation(
                f"dualrev: {scipy_fn}, called on {site.where()}{shown} converts a traced "
                f"value to a plain {'NumPy array' if kind == 'array' else 'number'}: "
                "dualrev does not route this SciPy function (docs/catalogue.md lists the "
                "SciPy functions it differentiates). Write the "
                "computation with NumPy functions, or give it a rule with "
                "@dualrev.custom_jvp / @dualrev.custom_vjp (docs/extending.md)")
        for node in site.nodes():
            msg = _match(site, node, kind)
            if msg is not None:
                out = Explanation(f"dualrev: {msg} (on {site.where()})")
                out.store = isinstance(node, (ast.Assign, ast.AugAssign)) or (
                    _fills_plain(site, node))
                return out
        text = linecache.getline(site.file, site.line, frame.f_globals).strip()
        if text:
            text = text if len(text) <= 100 else text[:97] + "..."
            return (f"dualrev: a call on {site.where()}, `{text}`, converts a traced value "
                    f"to a plain {'NumPy array' if kind == 'array' else 'number'} (the "
                    "usual causes: float(x); a method of a plain array called with a "
                    "traced argument, a.dot(x) for a @ x; a name bound before the transform "
                    "started, such as `from numpy import array` or `from math import exp`, "
                    "for which np.array(...) / math.exp(...) is the rewrite; writing a "
                    "traced value into a NumPy array)")
    except Exception:  # noqa: BLE001 - a diagnosis must never hide the error it explains
        return None
    return None


def _bound_before(module: Any, name: str, fn: Any) -> str:
    """Where ``fn`` is ``module.name``'s original while dualrev's replacement is installed
    (a name bound before the transform started: ``from numpy import array``), the words
    for it; else ""."""
    if fn is _UNKNOWN or not namespace.active():
        return ""
    orig = namespace.original(module, name)
    if fn is not orig or getattr(module, name, None) is orig:
        return ""
    return (f"before the transform started (`from {module.__name__} import {name}` or an "
            "alias)")


def _argument_advice(site: _Site, array: ast.AST) -> str:
    """Where the written array is an argument of the user's function as it was given
    (``u0[1:-1] += ...`` on an argument not differentiated), the words for it: NumPy
    would change the caller's array, and the copy is the rewrite; else ""."""
    caller = site.frame.f_back
    # only for the function the transform called (a helper's argument is its caller's
    # buffer, which the general advice covers)
    if not isinstance(array, ast.Name) or caller is None or not os.path.abspath(
            caller.f_code.co_filename).startswith(_HERE + os.sep):
        return ""
    code = site.frame.f_code
    given = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
    if array.id not in given:
        return ""
    return (f"`{array.id}` is an argument of {code.co_name}() that is not differentiated, "
            "and in NumPy this write would change the caller's array: write into a copy, "
            f"`u = {array.id}.copy()`, and return that; or differentiate `{array.id}` too, "
            "since differentiated arguments are traced copies that take writes")


def _fills_plain(site: _Site, node: ast.AST) -> bool:
    """Whether ``node`` is ``buf.fill(v)`` on a plain NumPy array."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "fill" and len(node.args) == 1
            and _plain_array(site.lookup(node.func.value)))


def _match(site: _Site, node: ast.AST, kind: str) -> str | None:
    if isinstance(node, (ast.Assign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for t in targets:
            # (an augmented assignment to a name writes too: NumPy's ``u += t`` is in place)
            array = (t.value if isinstance(t, ast.Subscript) else
                     t if isinstance(t, ast.Name) and isinstance(node, ast.AugAssign) else None)
            if array is not None and _plain_array(site.lookup(array)):
                buf = site.seg(array)
                return (f"`{site.seg(node)}` writes a traced value into the plain NumPy "
                        f"array `{buf}`, which stores numbers only (the derivative would be "
                        f"lost). " + (_argument_advice(site, array)
                                      or BUFFER_ADVICE.replace("out =", f"{buf} =")))
        return None
    if isinstance(node, ast.Subscript):
        obj = site.lookup(node.value)
        if not namespace.active() and (obj is getattr(np, "r_", None)
                                       or obj is getattr(np, "c_", None)):
            parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            inner = ", ".join(site.seg(p) for p in parts)
            fn = "np.concatenate" if obj is np.r_ else "np.column_stack"
            return (f"`{site.seg(node)}` converts its traced parts with np.array (index "
                    f"tricks have no hook for traced values). Write `{fn}([{inner}])`")
        return None
    if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and kind != "array"
            and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)):
        return (f"`{site.seg(node)}`: %-formatting converts a traced value with float(), "
                "which would drop its derivative. Use an f-string or str.format "
                "(f'{x:.3f}'): formatting a traced value prints its value")
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    fn = site.lookup(func)
    args = ", ".join(site.seg(a) for a in node.args)
    if kind != "array" and _fills_plain(site, node):
        buf = site.seg(func.value)  # type: ignore[attr-defined]
        return (f"`{site.seg(node)}` fills the plain NumPy array `{buf}` with a traced "
                "value, which it stores as a number only (the derivative would be lost). "
                + BUFFER_ADVICE.replace("out =", f"{buf} =")
                + f" (`{buf}.fill({args})` into such a buffer is recorded)")
    if kind in ("float", "int", "complex", "index"):
        mod = getattr(fn, "__module__", None) if fn is not _UNKNOWN else None
        owner = (site.lookup(func.value) if isinstance(func, ast.Attribute) else _UNKNOWN)
        if owner is math or owner is cmath or mod in ("math", "cmath"):
            name = getattr(fn, "__name__", getattr(func, "attr", "?"))
            npname = _MATH_TO_NUMPY.get(name, name)
            early = _bound_before(math, name, fn)
            if early:
                return (f"`{site.seg(node)}` calls math.{name} itself: `{site.seg(func)}` "
                        f"was bound {early}, and dualrev replaces math.{name} (to take "
                        "traced values) only while a transform runs, so this call computes "
                        "with plain floats, dropping the derivative. Write "
                        f"`math.{name}({args})` (looked up when it runs) or "
                        f"`{npname if npname.startswith('scipy') else 'np.' + npname}"
                        f"({args})`")
            if "." not in npname and not hasattr(np, npname):
                return (f"`{site.seg(node)}`: the math module computes with plain floats, "
                        "dropping the derivative; use the NumPy (or scipy.special) "
                        "function of the same meaning")
            mod_name = npname if npname.startswith("scipy") else f"np.{npname}"
            return (f"`{site.seg(node)}`: the math module computes with plain floats, "
                    f"dropping the derivative. Write `{mod_name}({args})`")
        if fn is float or fn is int or fn is complex:
            return (f"`{site.seg(node)}` makes a plain Python number of a traced value, "
                    "dropping its derivative. Keep the value as it is (a traced 0-d value "
                    "works wherever NumPy code takes a number); to print it, format it "
                    "(f'{x:.3f}' prints the value), and where a constant is really "
                    "meant write dualrev.stop_gradient(x)")
        return None
    if kind == "item" and isinstance(func, ast.Attribute) and func.attr == "item":
        return (f"`{site.seg(node)}` makes a plain Python number of a traced value, dropping "
                f"its derivative. Use `{site.seg(func.value)}` itself (or `"
                f"{site.seg(func.value)}[()]` for a 0-d one)")
    if kind == "tolist" and isinstance(func, ast.Attribute) and func.attr == "tolist":
        return (f"`{site.seg(node)}` makes plain Python numbers of traced values. Use "
                f"`list({site.seg(func.value)})`, whose elements stay traced")
    if kind != "array":
        return None
    if isinstance(func, ast.Attribute):
        owner = site.lookup(func.value)
        if _plain_array(owner):
            a = site.seg(func.value)
            if func.attr == "dot" and len(node.args) == 1:
                rewrite = f"{a} @ {args}"
            elif hasattr(np, func.attr):
                rewrite = f"np.{func.attr}({a}, {args})" if args else f"np.{func.attr}({a})"
            else:
                rewrite = None
            msg = (f"`{site.seg(node)}` calls the method .{func.attr} of the plain NumPy "
                   f"array `{a}` with a traced argument; NumPy's array methods convert "
                   "their arguments to plain arrays (the derivative would be lost), only "
                   "operators and NumPy functions reach traced values")
            return msg + (f". Write `{rewrite}`" if rewrite else "")
    early_name = next((b for b in _ARRAY_BUILDERS if _bound_before(np, b, fn)), None)
    if early_name is not None:
        return (f"`{site.seg(node)}` calls NumPy's own np.{early_name}: "
                f"`{site.seg(func)}` was bound {_bound_before(np, early_name, fn)}, and "
                f"dualrev replaces np.{early_name} (to take traced values) only while a "
                "transform runs, so this call converts traced values to a plain array "
                f"(the derivative would be lost). Write `np.{early_name}({args})`, looked "
                "up when it runs")
    if not namespace.active() and any(fn is getattr(np, b, None) for b in _ARRAY_BUILDERS):
        first = node.args[0] if node.args else None
        name = site.seg(func)
        if isinstance(first, (ast.List, ast.Tuple)):
            return (f"`{site.seg(node)}` builds a NumPy array from traced values, which "
                    "NumPy can only do by converting them (the derivative would be lost). "
                    f"Write `np.stack({site.seg(first)})`")
        return (f"`{site.seg(node)}` converts a traced value to a plain NumPy array "
                f"(the derivative would be lost). A traced value already acts as an array "
                f"(shape, dtype, indexing, ufuncs): leave {name} out here, or apply it to "
                "the inputs before calling the transform")
    if callable(fn) and getattr(fn, "__module__", "") and str(
            getattr(fn, "__module__", "")).startswith("numpy"):
        lists = [a for a in node.args if isinstance(a, (ast.List, ast.Tuple))]
        if lists:
            lst = site.seg(lists[0])
            return (f"`{site.seg(node)}` passes traced values inside a Python "
                    f"{'list' if isinstance(lists[0], ast.List) else 'tuple'}, which NumPy "
                    "converts with np.array (the derivative would be lost). Stack them "
                    f"first: `np.stack({lst})` in place of `{lst}`")
    return None
