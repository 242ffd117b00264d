"""Arrays built from traced values, and ``math`` of traced numbers: ``np.array([a, b])``,
``np.asarray(x, dtype=float)``, ``np.r_[...]``/``np.c_[...]``, ``np.array(..., like=x)``,
``math.exp(t)``.

NumPy converts a constructor's arguments in C and ``math`` converts to a C double, so
neither reaches a traced value's protocols (only ``like=`` does, NEP 35). The names are
therefore replaced in ``numpy``/``math`` while a transform runs (dualrev/namespace.py);
each wrapper here hands the call to the original unless a traced value is among its
arguments, and otherwise builds the array from primitives (``np.stack`` of the parts, a
cast, a reshape), so every transform differentiates it. See docs/design.md (2026-12-06).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy
import scipy.special as sc

from ..cast import astype
from ..errors import DualrevError, ForeignArrayError, TracerConversionError
from ..inplace import clone, is_scalar_like
from ..namespace import replace_while_tracing
from ..primitive import (
    Tracer,
    concrete,
    decide,
    dtype_of,
    foreign_array,
    peek,
    register_function,
    shape_of,
)
from ..scipy_dispatch import FOREIGN_CALL, foreign_call_name

# The originals, captured at import: a wrapper bound by a module imported while a
# transform runs (``from numpy import asarray``) keeps calling these afterwards.
_array = np.array
_asarray = np.asarray
_asanyarray = np.asanyarray
_ascontiguousarray = np.ascontiguousarray
_asfortranarray = np.asfortranarray
_asarray_chkfinite = np.asarray_chkfinite
_ndarray = np.ndarray
_F64 = np.dtype(np.float64)
_MATH_OWN = {k: v for k, v in vars(math).items() if callable(v)}  # math's own functions
# NumPy's copy= also takes its enum (array-api-compat passes it)
_COPY_MODES = {np._CopyMode.ALWAYS: True, np._CopyMode.IF_NEEDED: None,
               np._CopyMode.NEVER: False}


# SciPy's own code keeps NumPy's names: a SciPy function without a dispatcher that
# converts its arguments with np.asarray may go on to an optimiser whose result is
# plain (scipy.stats.boxcox's lambda found by brent: a silently wrong derivative), so
# from SciPy's frames a traced value still meets the conversion error that names the
# function. Only checked once a traced value is present.
_SCIPY_DIRS = (os.path.dirname(os.path.abspath(scipy.__file__)) + os.sep,)
_getframe = sys._getframe


def _from_scipy() -> bool:
    """Whether the wrapper calling this was called by SciPy's code."""
    try:
        return _getframe(2).f_code.co_filename.startswith(_SCIPY_DIRS)
    except ValueError:  # (no such frame)
        return False


def _traced_in(obj: Any) -> bool:
    """Whether a traced value is ``obj`` or inside its (nested) lists and tuples."""
    t = type(obj)
    if t is list or t is tuple:
        for o in obj:
            to = type(o)
            if to is float or to is int or to is _ndarray:
                continue
            if to is list or to is tuple:
                if _traced_in(o):
                    return True
            elif isinstance(o, Tracer):
                return True
        return False
    return isinstance(obj, Tracer)


def _template(obj: Any) -> Any:
    """``obj`` with each traced value replaced by plain zeros of its shape and dtype, for
    NumPy to work out the result's shape and dtype (and its errors: ragged lists)."""
    if isinstance(obj, Tracer):
        return np.zeros(shape_of(obj), dtype_of(obj))
    if type(obj) is list or type(obj) is tuple:
        return [_template(o) for o in obj]
    return obj


def _assemble(obj: Any, dtype: np.dtype) -> Any:
    """The array of ``obj`` (traced values, numbers, arrays, nested lists of them) with
    ``dtype``: traced parts cast, then stacked level by level."""
    if isinstance(obj, Tracer):
        return obj if dtype_of(obj) == dtype else astype(obj, dtype)
    if (type(obj) is list or type(obj) is tuple) and _traced_in(obj):
        return np.stack([_assemble(o, dtype) for o in obj])
    return _array(obj, dtype=dtype)


def _build(obj: Any, dtype: Any, copy: Any, order: Any, ndmin: int, what: str) -> Any:
    """The traced array NumPy's ``np.array(obj, dtype, copy=copy, order=order,
    ndmin=ndmin)`` stands for, with NumPy's shape, dtype, aliasing and errors."""
    copy = _COPY_MODES.get(copy, copy) if isinstance(copy, np._CopyMode) else copy
    if isinstance(obj, Tracer):
        # (validates dtype and order as NumPy does; a traced value has no layout)
        want = _array(np.zeros((0,), dtype_of(obj)), dtype=dtype, order=order).dtype
        out = obj if dtype_of(obj) == want else astype(obj, want)
        relaid = out is obj and copy is not False and _relaid(obj, order)
        if out is obj and copy is None and (relaid or is_scalar_like(obj)):
            # NumPy copies into the asked-for layout, and makes a new 0-d array of a
            # scalar (np.asarray(x[0, 0]) is not x[0, 0]: a write into it stays there)
            copy = True
        if out is obj and copy is False and is_scalar_like(obj):
            raise ValueError(f"{what}: unable to avoid a copy while making an array of "
                             "a scalar (copy=False)")
        if out is obj and copy is False and ndmin <= len(shape_of(obj)):
            return obj
        if out is not obj and copy is False:
            raise ValueError(f"{what}: unable to avoid a copy while casting a traced value "
                             f"from {dtype_of(obj)} to {want} (copy=False)")
        if out is obj and copy:
            out = clone(obj)
            if not shape_of(obj):
                out._array0d = True  # a 0-d array, which writes change (np.copy's)
            if relaid:
                _relay(out, order)
    else:
        if copy is False:
            raise ValueError(f"{what}: unable to avoid a copy while building an array "
                             "from a list of traced values (copy=False)")
        plain = _array(_template(obj), dtype=dtype, order=order)
        want = plain.dtype
        if want.kind == "O":
            raise DualrevError(
                f"dualrev: {what} with dtype=object of traced values would hold them as "
                "Python objects, which NumPy's functions cannot differentiate; leave "
                "dtype=object out (the result is then a traced float array)")
        out = _assemble(obj, want)
    nd = len(shape_of(out))
    if ndmin > nd:
        out = np.reshape(out, (1,) * (ndmin - nd) + tuple(shape_of(out)))
    return out


def _relaid(x: Any, order: Any) -> bool:
    """Whether NumPy would copy ``x`` to give it ``order`` ("C" or "F"): a traced value
    has no memory of its own, but its plain value (NumPy's result for the same
    operations) has the layout NumPy's array would have. A batch is left as it is."""
    if order not in ("C", "F") or isinstance(x, Tracer) and _batched(x):
        return False
    link = getattr(x, "_base", None)
    if link is not None and link[1] == "diagonal" and shape_of(x)[-1] > 1:
        # NumPy's diagonal is a strided view of its base (no layout is contiguous along
        # it); dualrev's value of it is a contiguous copy
        return True
    if link is not None and link[1] == "sliding_window_view" and (
            int(np.prod(shape_of(x))) > int(np.prod(shape_of(link[0])))):
        # overlapping windows (more elements than their base has) are a strided view in
        # NumPy; dualrev's value of them is a contiguous copy
        return True
    # (the layout, not the values: a dualrev.replay recording relies on no value here,
    # and the copy it records runs again on a replay's values)
    v = peek(x)
    flags = getattr(v, "flags", None)
    if flags is None:  # a scalar
        return False
    return not (flags.c_contiguous if order == "C" else flags.f_contiguous)


def _relay(x: Any, order: str) -> None:
    """Give the copy ``x`` (a clone) a plain value laid out in ``order``, as NumPy's copy
    is: a later np.ascontiguousarray / np.asfortranarray of it copies where NumPy's
    does, and only there. (The value of each level is cloned, not changed.)"""
    p = x.primal
    if isinstance(p, Tracer):
        c = clone(p)
        _relay(c, order)
        x.primal = c
    elif type(p) is np.ndarray:
        x.primal = np.array(p, order=order)


def _batched(x: Any) -> bool:
    while isinstance(x, Tracer):
        if x._bdepth:
            return True
        x = x.primal
    return False


def _device(device: Any) -> None:
    if device not in (None, "cpu"):
        raise ValueError(f'Device not understood. Only "cpu" is allowed, but received: {device}')


def _refuse_foreign(a: Any) -> None:
    """Inside the rule of a SciPy function called on another library's arrays (Dask,
    CuPy: scipy_dispatch.FOREIGN_CALL), converting one to NumPy is refused."""
    p = foreign_array(a)
    if p is not None:
        name = foreign_call_name()
        raise ForeignArrayError(
            p, f"{name} (dualrev's rule for it, or SciPy's code under it) converting its "
            "argument with np.asarray",
            f"Call {name} on NumPy arrays (compute or move the argument first, "
            "explicitly), or write the computation with NumPy functions, which dispatch "
            "to the array's library")


# ------------------------------------------------------------------ the constructors
def array(object: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: A002
    """``np.array`` while a transform runs: NumPy's own unless ``object`` is, or holds in
    its lists, a traced value; then the traced array (a copy unless ``copy`` allows
    otherwise). (The arguments are passed on as given, so that the untraced call costs
    one more Python call and a type check: docs/performance.md.)"""
    if type(object) is _ndarray or not _traced_in(object) or _from_scipy():
        if FOREIGN_CALL[0] is not None and type(object) is not _ndarray:
            _refuse_foreign(object)
        return _array(object, *args, **kwargs)
    return _traced_array(object, *args, **kwargs)


def _traced_array(object: Any, dtype: Any = None, *, copy: Any = True,  # noqa: A002
                  order: Any = "K", subok: bool = False, ndmin: int = 0, like: Any = None,
                  **kwargs: Any) -> Any:
    _no_other_keywords("np.array", kwargs)
    return _build(object, dtype, copy, order, int(ndmin), "np.array")


def _like_array(object: Any, dtype: Any = None, *, copy: Any = True,  # noqa: A002
                order: Any = "K", subok: bool = False, ndmin: int = 0,
                **kwargs: Any) -> Any:
    """``np.array(..., like=x)`` with a traced ``x`` (NEP 35 hands it to x's type)."""
    if not _traced_in(object):
        return _array(object, dtype, copy=copy, order=order, subok=subok, ndmin=ndmin,
                      **kwargs)
    _no_other_keywords("np.array", kwargs)
    return _build(object, dtype, copy, order, int(ndmin), "np.array")


def _no_other_keywords(what: str, kwargs: dict[str, Any]) -> None:
    """Refuse keywords the traced path does not implement (a newer NumPy's, such as
    np.array's ndmax=), unless they are at their no-op default."""
    used = sorted(k for k, v in kwargs.items() if v is not None and not (
        k == "ndmax" and v == 0))
    if used:
        raise DualrevError(f"dualrev: {what} of traced values does not support the "
                           f"keyword(s) {used}; leave them out (np.stack / np.reshape "
                           "build the same array)")


def _as(what: str, orig: Callable[..., Any], ndmin: int = 0, has_order: bool = True,
        layout: str = "K") -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The wrapper of ``np.asarray``-like ``orig`` and its ``like=`` handler."""

    def wrapper(a: Any, *args: Any, **kwargs: Any) -> Any:
        if type(a) is _ndarray or not _traced_in(a) or _from_scipy():
            if FOREIGN_CALL[0] is not None and type(a) is not _ndarray:
                _refuse_foreign(a)
            return orig(a, *args, **kwargs)
        return traced(a, *args, **kwargs)

    if has_order:
        def traced(a: Any, dtype: Any = None, order: Any = None, *, device: Any = None,
                   copy: Any = None, like: Any = None, **kw: Any) -> Any:
            _no_other_keywords(what, kw)
            _device(device)
            return _build(a, dtype, copy, "K" if order is None else order, ndmin, what)

        def like_handler(a: Any, dtype: Any = None, order: Any = None, *,
                         device: Any = None, copy: Any = None) -> Any:
            if not _traced_in(a):
                kw = {} if device is None else {"device": device}
                return orig(a, dtype, order, copy=copy, **kw)
            _device(device)
            return _build(a, dtype, copy, "K" if order is None else order, ndmin, what)
    else:
        def traced(a: Any, dtype: Any = None, *, like: Any = None) -> Any:  # type: ignore[misc]
            return _build(a, dtype, None, layout, ndmin, what)

        def like_handler(a: Any, dtype: Any = None) -> Any:  # type: ignore[misc]
            if not _traced_in(a):
                return orig(a, dtype)
            return _build(a, dtype, None, layout, ndmin, what)

    wrapper.__name__ = wrapper.__qualname__ = orig.__name__
    wrapper.__doc__ = (f"``{what}`` while a transform runs: NumPy's own unless a traced "
                       "value is given; a traced one is returned as it is when no cast or "
                       "copy is asked for, as NumPy returns an array.")
    wrapper.__module__ = __name__
    return wrapper, like_handler


asarray, _like_asarray = _as("np.asarray", _asarray)
asanyarray, _like_asanyarray = _as("np.asanyarray", _asanyarray)
# (a 0-d input becomes 1-d, as NumPy's: "return an array (ndim >= 1)")
ascontiguousarray, _like_ascontiguousarray = _as("np.ascontiguousarray", _ascontiguousarray,
                                                 ndmin=1, has_order=False, layout="C")
asfortranarray, _like_asfortranarray = _as("np.asfortranarray", _asfortranarray, ndmin=1,
                                           has_order=False, layout="F")


def _chkfinite(a: Any, dtype: Any = None, order: Any = None) -> Any:
    out = _build(a, dtype, None, "K" if order is None else order, 0, "np.asarray_chkfinite")
    if dtype_of(out).kind in "fc" and not np.isfinite(concrete(out)).all():
        raise ValueError("array must not contain infs or NaNs")
    return out


def asarray_chkfinite(a: Any, dtype: Any = None, order: Any = None) -> Any:
    """``np.asarray_chkfinite`` while a transform runs: NumPy's own unless a traced value
    is given; then the traced array, its values (every element of a batch) checked."""
    if type(a) is _ndarray or not _traced_in(a) or _from_scipy():
        if FOREIGN_CALL[0] is not None and type(a) is not _ndarray:
            _refuse_foreign(a)
        return _asarray_chkfinite(a, dtype, order)
    return _chkfinite(a, dtype, order)


register_function(_array, _like_array)
register_function(_asarray, _like_asarray)
register_function(_asanyarray, _like_asanyarray)
register_function(_ascontiguousarray, _like_ascontiguousarray)
register_function(_asfortranarray, _like_asfortranarray)

for _name, _wrapper in (("array", array), ("asarray", asarray), ("asanyarray", asanyarray),
                        ("ascontiguousarray", ascontiguousarray),
                        ("asfortranarray", asfortranarray),
                        ("asarray_chkfinite", asarray_chkfinite)):
    replace_while_tracing(np, _name, _wrapper)


# ------------------------------------------------------------------ reductions of lists
def _of_list(orig: Any) -> Callable[..., Any]:
    """``np.mean([a, b])`` (sum, std, ...) while a transform runs: a list or tuple holding
    traced values is made the traced array np.array gives, so that NumPy's dispatch sees
    it (a list has no ``__array_function__``: NumPy would convert its items in C)."""

    def wrapper(a: Any, *args: Any, **kwargs: Any) -> Any:
        t = type(a)
        if (t is list or t is tuple) and _traced_in(a) and not _from_scipy():
            a = _build(a, None, None, "K", 0, f"np.{orig.__name__}")
        return orig(a, *args, **kwargs)

    wrapper.__name__ = wrapper.__qualname__ = orig.__name__
    wrapper.__doc__ = orig.__doc__
    wrapper.__module__ = __name__
    wrapper.__wrapped__ = orig  # type: ignore[attr-defined]
    return wrapper


REDUCTIONS = ("sum", "prod", "mean", "std", "var", "max", "min", "amax", "amin",
              "average", "median", "cumsum", "cumprod", "ptp", "nansum", "nanmean")
for _name in REDUCTIONS:
    if hasattr(np, _name):
        replace_while_tracing(np, _name, _of_list(getattr(np, _name)))


# ------------------------------------------------------------------ like= constructors
def _plain_like(orig: Any) -> Callable[..., Any]:
    """``np.zeros(n, like=x)`` (ones, empty, full, arange, eye, identity) with a traced
    ``x``: NEP 35 hands the call to x's type without ``like``, so x's trace is not known
    here; the result is NumPy's plain array, a constant (zero derivative), which every
    operation with traced values accepts."""

    def handler(*args: Any, **kwargs: Any) -> Any:
        for a in (*args, *kwargs.values()):
            if _traced_in(a):
                raise DualrevError(
                    f"dualrev: np.{orig.__name__}(..., like=x) was given a traced value as "
                    "an argument other than like=; it builds constants only (pass plain "
                    f"numbers, or use np.{orig.__name__}_like / np.stack for traced values)")
        return orig(*args, **kwargs)

    return handler


for _fn in (np.zeros, np.ones, np.empty, np.full, np.arange, np.eye, np.identity):
    register_function(_fn, _plain_like(_fn))


# ------------------------------------------------------------------ np.r_, np.c_
_tricks = sys.modules[type(np.r_).__module__]


def _concatenator(orig: Any) -> Any:
    """``np.r_``/``np.c_`` while a transform runs: NumPy's own indexing (its ``array``
    replaced too, so traced parts stay traced), the matrix directives refused."""

    class WhileTracing(type(orig)):  # type: ignore[misc]
        __slots__ = ()

        def __getitem__(self, key: Any) -> Any:
            if isinstance(key, str):  # the matrix builder reads names in the caller
                frame = sys._getframe(1)
                return np.bmat(key, frame.f_globals, frame.f_locals)
            items = key if type(key) is tuple else (key,)
            if items and isinstance(items[0], str) and items[0] in ("r", "c") and any(
                    _traced_in(i) for i in items[1:]):
                raise DualrevError(
                    f"dualrev: np.{'r_' if isinstance(orig, _tricks.RClass) else 'c_'}"
                    f"['{items[0]}', ...] builds an np.matrix, whose * is a matrix product "
                    "and which cannot hold traced values; leave the directive out (and write "
                    "the products with @), reshaping with x[None, :] / x[:, None]")
            return super().__getitem__(key)

    out = WhileTracing()
    for slot in ("axis", "matrix", "trans1d", "ndmin"):
        setattr(out, slot, getattr(orig, slot))
    return out


if hasattr(_tricks, "array") and hasattr(_tricks, "AxisConcatenator"):
    replace_while_tracing(_tricks, "array", array)
    replace_while_tracing(np, "r_", _concatenator(np.r_))
    replace_while_tracing(np, "c_", _concatenator(np.c_))


# ------------------------------------------------------------------ math
def _log(x: Any, base: Any = None) -> Any:
    return np.log(x) if base is None else np.log(x) / np.log(base)


def _hypot(*xs: Any) -> Any:
    if not xs:
        return 0.0
    out = np.abs(xs[0])
    for x in xs[1:]:
        out = np.hypot(out, x)
    return out


_MATH: dict[str, Any] = {
    "exp": np.exp, "expm1": np.expm1, "log": _log, "log2": np.log2, "log10": np.log10,
    "log1p": np.log1p, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos, "tan": np.tan,
    "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan, "atan2": np.arctan2,
    "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh, "asinh": np.arcsinh,
    "acosh": np.arccosh, "atanh": np.arctanh, "pow": np.power, "hypot": _hypot,
    "fabs": np.abs, "erf": sc.erf, "erfc": sc.erfc, "gamma": sc.gamma,
    "lgamma": sc.gammaln, "degrees": np.degrees, "radians": np.radians,
    "exp2": np.exp2, "cbrt": np.cbrt,
}
# (math.isnan & co. answer with a plain bool, as bool(t) does)
_MATH_TESTS = ("isnan", "isinf", "isfinite")


def _math_args(name: str, args: tuple[Any, ...]) -> list[Any]:
    """The arguments as float64 numbers (traced ones cast), refusing what math refuses."""
    out = []
    for a in args:
        if isinstance(a, Tracer):
            shape = shape_of(a)
            if shape:
                raise TracerConversionError(
                    f"math.{name}() of a traced array of shape {shape}",
                    f"dualrev: math.{name} takes a number, and this traced value is an "
                    f"array of shape {shape}; use the NumPy function, which works "
                    "elementwise")
            kind = dtype_of(a).kind
            if kind == "c":
                raise DualrevError(f"dualrev: math.{name}() of a traced complex value: "
                                   "math takes real numbers only (must be real number, "
                                   "not complex); use the NumPy function")
            if dtype_of(a) != _F64:
                a = astype(a, _F64)
        out.append(a)
    return out


def _check_domain(orig: Any, args: list[Any]) -> None:
    """Run the math function on the values (every element of a batch), so that its
    ValueError ("math domain error") and OverflowError are raised as math raises them
    (under dualrev.replay a recorded decision: a replay outside the domain records
    again, and that raises)."""
    if any(isinstance(a, Tracer) for a in args) and decide(
            _in_domain, *args, name=orig.__name__):
        return
    _raise_out_of_domain(orig, [concrete(a) for a in args])


def _in_domain(*args: Any, name: str) -> bool:
    try:
        _raise_out_of_domain(_MATH_OWN[name], list(args))
    except (ValueError, OverflowError):
        return False
    return True


def _raise_out_of_domain(orig: Any, args: list[Any]) -> None:
    plain = [np.asarray(a, dtype=float) for a in args]
    if all(np.ndim(p) == 0 for p in plain):
        orig(*(float(p) if isinstance(p, np.ndarray) else p for p in plain))
        return
    for vals in np.broadcast(*[np.asarray(p, dtype=float) for p in plain]):
        orig(*(float(v) for v in vals))


def _math_wrapper(name: str, impl: Any) -> Callable[..., Any]:
    orig = getattr(math, name)

    if name in ("log", "atan2", "pow", "hypot"):
        def wrapper(*args: Any) -> Any:
            for a in args:
                if isinstance(a, Tracer):
                    break
            else:
                return orig(*args)
            if _from_scipy():
                return orig(*args)
            xs = _math_args(name, args)
            _check_domain(orig, xs)
            return impl(*xs)
    else:
        def wrapper(x: Any, /) -> Any:  # type: ignore[misc]
            if not isinstance(x, Tracer) or _from_scipy():
                return orig(x)
            xs = _math_args(name, (x,))
            _check_domain(orig, xs)
            return impl(*xs)

    wrapper.__name__ = wrapper.__qualname__ = name
    wrapper.__doc__ = (f"``math.{name}`` while a transform runs: the math module's own on "
                       "numbers; on a traced number the same value, traced (a 0-d float64).")
    wrapper.__module__ = __name__
    return wrapper


def _math_test(name: str) -> Callable[..., Any]:
    orig = getattr(math, name)

    def wrapper(x: Any, /) -> bool:
        if not isinstance(x, Tracer) or _from_scipy():
            return orig(x)
        _math_args(name, (x,))
        return bool(getattr(np, name)(x))  # a plain bool; under vmap bool() refuses

    wrapper.__name__ = wrapper.__qualname__ = name
    wrapper.__doc__ = f"``math.{name}`` while a transform runs (a plain bool)."
    wrapper.__module__ = __name__
    return wrapper


#: the math module's replacements, by name
MATH_WRAPPERS: dict[str, Callable[..., Any]] = {}
for _name, _impl in _MATH.items():
    if hasattr(math, _name):  # (exp2 and cbrt are Python 3.11's)
        MATH_WRAPPERS[_name] = _math_wrapper(_name, _impl)
for _name in _MATH_TESTS:
    MATH_WRAPPERS[_name] = _math_test(_name)
for _name, _wrapper in MATH_WRAPPERS.items():
    replace_while_tracing(math, _name, _wrapper)
del _name, _impl, _wrapper, _fn
