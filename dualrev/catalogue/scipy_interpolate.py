"""scipy.interpolate: PPoly (CubicSpline, PchipInterpolator, Akima1DInterpolator, ...),
BSpline (make_interp_spline) and interp1d, evaluated at traced points and built from
traced data values.

**Traced evaluation points.** SciPy's ``__call__`` converts its points with
``np.asarray``, so at import dualrev patches ``PPoly.__call__``, ``BSpline.__call__`` and
``interp1d``'s (``_Interpolator1D.__call__``) at class level: a plain point costs one
isinstance test and calls SciPy's method unchanged; a traced one binds a primitive whose
impl is SciPy's evaluation and whose JVP multiplies the tangent by the spline's
derivative, evaluated by the same primitive with ``nu + 1`` (so it nests to any order:
the derivative of the derivative). interp1d's derivative is that of its spline (kinds
slinear, quadratic, cubic, integer orders; linear as the degree-1 spline), zero for the
piecewise constant kinds (nearest, nearest-up, previous, next, zero) and zero where a
constant fill value is returned.

**Traced data values.** Every interpolant here is linear in its data values y (for fixed
abscissae and options): ``S_y(t) = W(t) @ y + S_0(t)``, where ``W`` is the interpolant of
unit data (one column per data point, built once on the identity, vectorised) and
``S_0`` the interpolant of zero data, which carries what is not linear: boundary
derivative values given in ``bc_type`` and interp1d's fill values. A constructor called
with traced y (``CubicSpline(x, y)``, ``make_interp_spline(x, y)``, ``interp1d(x, y)``,
``BSpline(t, c, k)``; ``CubicHermiteSpline(x, y, dydx)`` is the sum of two, one per
argument) returns a ``TracedDataInterpolant``, which evaluates that formula
(its ``__call__``, ``derivative``, ``antiderivative`` and ``integrate`` differentiate in y
and, through the patched evaluation of ``W``, in the points). SciPy's own constructor
still runs on the plain values of y, so its input validation and errors are SciPy's.

Traced abscissae (the data x, the knots t) are refused: the interpolant depends on them
nonlinearly (and piecewise), which no rule here covers. So is traced data for
PchipInterpolator and Akima1DInterpolator, whose limited slopes are not linear in it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.interpolate as si
from scipy.interpolate._polyint import _Interpolator1D

from .. import pattern_rules
from ..batching import without_derivatives
from ..custom import transpose_jvp
from ..errors import NoDerivativeRule
from ..primitive import (
    Primitive,
    Tracer,
    as_array,
    bind,
    concrete,
    is_complex,
    ndim_of,
    shape_of,
    strip,
    unwrap_derivatives,
)
from ..scipy_dispatch import note_dispatcher
from ..tree import tree_flatten
from .scipy_functions import ORIGINALS, dispatch

_BSPLINE_CALL = si.BSpline.__call__
_INTERP1D_CALL = _Interpolator1D.__call__
# (a re-import of this module must not wrap its own dispatchers)
_BSPLINE_CALL = ORIGINALS.get(_BSPLINE_CALL, _BSPLINE_CALL)
_INTERP1D_CALL = ORIGINALS.get(_INTERP1D_CALL, _INTERP1D_CALL)

_CONSTANT_KINDS = ("nearest", "nearest-up", "previous", "next", "zero")


def _traced(*values: Any) -> bool:
    leaves, _ = tree_flatten(list(values))
    return any(isinstance(v, Tracer) for v in leaves)


_CONTAINERS = (list, tuple, dict)


def _any_traced(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether an argument is traced, cheaply for the plain calls (containers, such as a
    bc_type, are searched)."""
    for v in (*args, *kwargs.values()):
        if isinstance(v, Tracer) or (type(v) in _CONTAINERS and _traced(v)):
            return True
    return False


# ------------------------------------------------------------------ evaluation
class _Evaluator:
    """A plain interpolant's evaluation ``(t, nu) -> values``: the static parameter of
    the evaluation primitive. ``axis`` is where the points' axes sit in the result."""

    __slots__ = ("obj", "call", "extrapolate", "axis")

    def __init__(self, obj: Any, call: Callable[..., Any], extrapolate: Any) -> None:
        self.obj = obj
        self.call = call
        self.extrapolate = extrapolate
        self.axis = obj.axis

    def __call__(self, t: Any, nu: int) -> Any:
        if isinstance(self.obj, si.BSpline) and nu > self.obj.k:
            return _zero_derivative(self.call(self.obj, t, 0, self.extrapolate))
        return self.call(self.obj, t, nu, self.extrapolate)


def _zero_derivative(value: Any) -> np.ndarray:
    """A derivative above a spline's degree: zeros (SciPy 1.15's BSpline evaluation
    corrupts memory for nu > k + 1, so it is never asked for one), nan kept where the
    value is nan (a point outside without extrapolation)."""
    value = np.asarray(value)
    return np.where(np.isnan(value), np.nan, 0.0).astype(
        np.result_type(value.dtype, np.float64))


def _interp1d_at(f: Any, t: Any, nu: int, extrapolate: Any) -> Any:
    """interp1d's value (nu = 0) or nu-th derivative at plain points ``t``."""
    if nu == 0:
        return _INTERP1D_CALL(f, t)
    t = np.asarray(t)
    if f._kind in _CONSTANT_KINDS:  # piecewise constant: zeros of the values' dtype
        value = np.asarray(_INTERP1D_CALL(f, t))
        return np.zeros(value.shape, np.result_type(value.dtype, np.float64))
    spline = getattr(f, "_spline", None)
    if spline is None or f._kind == "linear":
        spline = f.__dict__.get("_dualrev_linear")
        if spline is None:  # the same pieces as interp1d's linear kind, as a spline
            spline = f.__dict__["_dualrev_linear"] = si.make_interp_spline(
                f.x, f._y, k=1, check_finite=False)
    flat = np.asarray(t, dtype=float).ravel()
    if nu > spline.k:  # (see _zero_derivative: never ask SciPy for one)
        d = _zero_derivative(_BSPLINE_CALL(spline, flat, 0))
    else:
        d = _BSPLINE_CALL(spline, flat, nu)
    if not f._extrapolate:  # a constant fill value outside: no derivative there
        outside = (flat < f.x[0]) | (flat > f.x[-1])
        d[outside] = 0.0
    return f._finish_y(d, t.shape)


def _eval_impl(t: Any, ev: _Evaluator, nu: int) -> Any:
    return ev(t, nu)


def _place(g: Any, axis: int, ndim: int) -> Any:
    """The tangent ``g`` of the points, with unit axes around it so that it broadcasts
    against a result whose points' axes start at ``axis``."""
    s = shape_of(g)
    return np.reshape(g, (1,) * axis + tuple(s) + (1,) * (ndim - axis - len(s)))


def _eval_jvp(g: Any, ans: Any, t: Any, ev: _Evaluator, nu: int) -> Any:
    slope = bind(spline_eval_p, (t,), {"ev": ev, "nu": nu + 1})
    return _place(g, ev.axis, ndim_of(slope)) * slope


def _eval_batch(args: list[Any], batched: tuple[bool, ...], ev: _Evaluator, nu: int) -> Any:
    # The batch axis is the points' first: in the result it sits at ev.axis.
    out = bind(spline_eval_p, (args[0],), {"ev": ev, "nu": nu})
    return np.moveaxis(out, ev.axis, 0) if ev.axis else out


spline_eval_p = transpose_jvp(
    Primitive("scipy.interpolate (evaluation)", _eval_impl).defjvp(_eval_jvp))
spline_eval_p.defbatch(_eval_batch)


def _eval_pattern(deps: Any, ans: Any, t: Any, ev: _Evaluator, nu: int) -> Any:
    """Each value depends on its own point alone (the spline is a constant): the points'
    axes sit at ``ev.axis`` in the result, the spline's value axes around them."""
    d = deps[0]
    if d is None or not d.nnz:
        return None
    s = shape_of(t)
    nd = len(shape_of(ans))
    pos = np.arange(d.shape[0], dtype=np.int64).reshape(
        (1,) * ev.axis + tuple(s) + (1,) * (nd - ev.axis - len(s)))
    return pattern_rules.rows(d, np.broadcast_to(pos, shape_of(ans)))


spline_eval_p.defpattern(_eval_pattern)


def _evaluate(where: str, obj: Any, call: Callable[..., Any], t: Any, nu: Any,
              extrapolate: Any) -> Any:
    t = as_array(t)
    if is_complex(t):
        raise NoDerivativeRule(where, "Complex evaluation points are not supported (the "
                               "points are real abscissae).")
    if isinstance(nu, Tracer) or isinstance(extrapolate, Tracer):
        raise NoDerivativeRule(where, "nu= and extrapolate= must be plain values.")
    return bind(spline_eval_p, (t,), {"ev": _Evaluator(obj, call, extrapolate),
                                      "nu": int(nu)})


def _patch_call(cls: type, name: str, handler: Callable[..., Any]) -> None:
    """Replace ``cls.__call__`` by a dispatcher: SciPy's method unless the points are
    traced (one isinstance test on the plain path; lists are searched)."""
    original = cls.__dict__["__call__"]
    original = ORIGINALS.get(original, original)

    @functools.wraps(original)
    def __call__(self: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(x, Tracer) or (type(x) in (list, tuple) and _traced(x)):
            return handler(self, x, *args, **kwargs)
        if (args or kwargs) and _any_traced(args, kwargs):
            raise NoDerivativeRule(name, "Only the evaluation points may be traced.")
        return original(self, x, *args, **kwargs)

    note_dispatcher(__call__, original)
    cls.__call__ = __call__  # type: ignore[method-assign]


def _call_owner(cls: type) -> type:
    """The class whose own ``__call__`` instances of ``cls`` run: SciPy < 1.18 defines it
    once in a private base of PPoly and BPoly, SciPy 1.18 in each (a delegating wrapper)."""
    return next(c for c in cls.__mro__ if "__call__" in c.__dict__)


#: the classes whose __call__ is patched, with SciPy's own method (PPoly, BPoly's owners)
_PPOLY_OWNERS = {c: ORIGINALS.get(c.__dict__["__call__"], c.__dict__["__call__"])
                 for c in {_call_owner(si.PPoly), _call_owner(si.BPoly)}}


def ppoly_call(self: Any, x: Any, nu: int = 0, extrapolate: Any = None) -> Any:
    """PPoly.__call__ (CubicSpline, PchipInterpolator, Akima1DInterpolator, ...) at
    traced points: differentiable in them; ``nu`` derivatives, ``extrapolate`` as SciPy."""
    original = next(_PPOLY_OWNERS[c] for c in type(self).__mro__ if c in _PPOLY_OWNERS)
    return _evaluate(f"scipy.interpolate.{type(self).__name__}.__call__", self, original,
                     x, nu, extrapolate)


def bspline_call(self: Any, x: Any, nu: int = 0, extrapolate: Any = None) -> Any:
    """BSpline.__call__ at traced points."""
    return _evaluate("scipy.interpolate.BSpline.__call__", self, _BSPLINE_CALL, x, nu,
                     extrapolate)


def interp1d_call(self: Any, x: Any) -> Any:
    """interp1d.__call__ at traced points (other _Interpolator1D classes are refused)."""
    if not isinstance(self, si.interp1d):
        raise NoDerivativeRule(f"scipy.interpolate.{type(self).__name__}.__call__",
                               "Of the _Interpolator1D family only interp1d is supported "
                               "at traced points.")
    return _evaluate("scipy.interpolate.interp1d.__call__", self, _interp1d_at, x, 0, None)


for _owner in _PPOLY_OWNERS:  # (PPoly and BPoly)
    _patch_call(_owner, "scipy.interpolate.PPoly.__call__", ppoly_call)
_patch_call(si.BSpline, "scipy.interpolate.BSpline.__call__", bspline_call)
_patch_call(_Interpolator1D, "scipy.interpolate.interp1d.__call__", interp1d_call)


# ------------------------------------------------------------------ traced data
class TracedDataInterpolant:
    """An interpolant of traced data values: ``W(t) @ y + S_0(t)`` (see the module
    docstring). Returned by CubicSpline, make_interp_spline, interp1d and BSpline when
    their data values are traced; called like SciPy's object (``f(t)``, ``f(t, nu)`` for
    the splines), with ``derivative``, ``antiderivative`` and ``integrate`` for the
    splines.

    Attributes:
        basis: the plain SciPy interpolant of unit data (axis 0, one column per free
            data point).
        data: the traced values, interpolation axis first, free points only.
        axis: the interpolation axis of the original data.
        offset: the plain interpolant of zero data with the original options, or None
            where it is zero.
        name: the SciPy class or function, for error messages.
    """

    def __init__(self, name: str, basis: Any, data: Any, axis: int, offset: Any,
                 splines: bool) -> None:
        self.name = name
        self.basis = basis
        self.data = data
        self.axis = axis
        self.offset = offset
        self._splines = splines  # PPoly/BSpline (nu=, derivative, ...), else interp1d

    def _combine(self, w: Any, extra: Any) -> Any:
        """``w`` (basis values, the points' axes then one per free data point) contracted
        with the data, the points' axes moved to ``axis`` as SciPy's layout has them."""
        nx = ndim_of(w) - 1
        out = np.tensordot(w, self.data, axes=1)
        npre, nrest = self.axis, ndim_of(self.data) - 1
        if npre and nx:
            perm = ([nx + i for i in range(npre)] + list(range(nx))
                    + [nx + i for i in range(npre, nrest)])
            out = np.transpose(out, perm)
        return out if extra is None else out + extra

    def __call__(self, x: Any, nu: int = 0, extrapolate: Any = None) -> Any:
        if not self._splines:
            if nu or extrapolate is not None:
                raise TypeError("interp1d.__call__() takes only the points")
            w = self.basis(x)
            return self._combine(w, None if self.offset is None else self.offset(x))
        w = self.basis(x, nu, extrapolate)
        extra = None if self.offset is None else self.offset(x, nu, extrapolate)
        return self._combine(w, extra)

    def _spline_only(self, what: str) -> None:
        if not self._splines:
            raise AttributeError(f"interp1d has no {what}")

    def derivative(self, nu: int = 1) -> TracedDataInterpolant:
        """The nu-th derivative, an interpolant of the same traced data."""
        self._spline_only("derivative")
        return TracedDataInterpolant(self.name, self.basis.derivative(nu), self.data,
                                     self.axis, None if self.offset is None
                                     else self.offset.derivative(nu), True)

    def antiderivative(self, nu: int = 1) -> TracedDataInterpolant:
        """The nu-th antiderivative, an interpolant of the same traced data."""
        self._spline_only("antiderivative")
        return TracedDataInterpolant(self.name, self.basis.antiderivative(nu), self.data,
                                     self.axis, None if self.offset is None
                                     else self.offset.antiderivative(nu), True)

    def integrate(self, a: float, b: float, extrapolate: Any = None) -> Any:
        """The definite integral from ``a`` to ``b`` (plain bounds)."""
        self._spline_only("integrate")
        if isinstance(a, Tracer) or isinstance(b, Tracer):
            raise NoDerivativeRule(f"{self.name}.integrate",
                                   "Only plain integration bounds are supported.")
        w = np.asarray(self.basis.integrate(a, b, extrapolate=extrapolate))
        out = np.tensordot(w, self.data, axes=1)
        if self.offset is not None:
            out = out + self.offset.integrate(a, b, extrapolate=extrapolate)
        return out

    @property
    def c(self) -> Any:
        """The coefficients (PPoly's or BSpline's layout), traced: linear in the data."""
        self._spline_only("c")
        out = np.tensordot(self.basis.c, self.data, axes=1)
        return out if self.offset is None else out + self.offset.c

    def __getattr__(self, name: str) -> Any:
        # what does not depend on the data values is the basis's: breakpoints, knots,
        # degree, extrapolation mode
        if name in ("x", "t", "k", "extrapolate"):
            return getattr(self.basis, name)
        raise AttributeError(f"{self.name} of traced data has no attribute {name!r} "
                             "(supported: __call__, derivative, antiderivative, integrate, "
                             "c, x, t, k, extrapolate, axis)")

    def __repr__(self) -> str:
        return f"<{self.name} of traced data (dualrev)>"


class SumOfInterpolants:
    """The sum of interpolants of traced data (CubicHermiteSpline: one of the values y,
    one of the slopes dydx), with the same methods, each the sum of its terms'."""

    def __init__(self, name: str, terms: list[TracedDataInterpolant]) -> None:
        self.name = name
        self.terms = terms

    def _sum(self, parts: list[Any]) -> Any:
        out = parts[0]
        for p in parts[1:]:
            out = out + p
        return out

    def __call__(self, x: Any, nu: int = 0, extrapolate: Any = None) -> Any:
        return self._sum([f(x, nu, extrapolate) for f in self.terms])

    def derivative(self, nu: int = 1) -> SumOfInterpolants:
        return SumOfInterpolants(self.name, [f.derivative(nu) for f in self.terms])

    def antiderivative(self, nu: int = 1) -> SumOfInterpolants:
        return SumOfInterpolants(self.name, [f.antiderivative(nu) for f in self.terms])

    def integrate(self, a: float, b: float, extrapolate: Any = None) -> Any:
        return self._sum([f.integrate(a, b, extrapolate) for f in self.terms])

    @property
    def c(self) -> Any:
        return self._sum([f.c for f in self.terms])

    def __getattr__(self, name: str) -> Any:
        if name in ("x", "extrapolate", "axis"):
            return getattr(self.terms[0], name)
        raise AttributeError(f"{self.name} of traced data has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"<{self.name} of traced data (dualrev)>"


def _unit_data(n: int, periodic: bool) -> np.ndarray:
    """One unit column per free data point; periodic data repeats its first point last."""
    if not periodic:
        return np.eye(n)
    eye = np.eye(n - 1)
    return np.concatenate([eye, eye[:1]])


def _free(y0: Any, periodic: bool) -> Any:
    return y0[:-1] if periodic else y0


def _validate(build: Callable[[Any], Any], y: Any, axis: int) -> None:
    """SciPy's constructor on the plain values (each element of a vmap batch): its
    checks and errors, for the traced data too."""
    v = concrete(y)
    k = ndim_of(v) - ndim_of(y)
    for element in np.reshape(v, (-1,) + tuple(shape_of(y))) if k else [v]:
        build(element)


def _refuse_abscissae(name: str, *values: Any) -> None:
    if _traced(*values):
        raise NoDerivativeRule(name, "Traced abscissae (the data x, the knots t) are not "
                               "supported: only the data values y (or BSpline's c) and the "
                               "evaluation points can be differentiated.")


def _homogeneous_ends(bc: Any, ncols: int) -> tuple[Any, bool]:
    """bc_type with every given derivative value replaced by zeros (the linear part),
    for the unit data, and whether any given value was nonzero (the affine part)."""
    nonzero = False

    def end(e: Any) -> Any:
        nonlocal nonzero
        if e is None or isinstance(e, str):
            return e
        pairs = list(e) if isinstance(e[0], (tuple, list)) else None
        if pairs is None:  # one (order, value) pair (CubicSpline's form)
            order, value = e
            nonzero = nonzero or bool(np.any(np.asarray(value) != 0))
            return (order, np.zeros(ncols))
        out = []
        for order, value in pairs:
            nonzero = nonzero or bool(np.any(np.asarray(value) != 0))
            out.append((order, np.zeros(ncols)))
        return out

    if bc is None or isinstance(bc, str):
        return bc, False
    if _traced(bc):
        raise NoDerivativeRule("scipy.interpolate (bc_type)", "Traced boundary values in "
                               "bc_type are not supported (pass plain values).")
    return (end(bc[0]), end(bc[1])), nonzero


def _plain_ends(bc: Any) -> Any:
    """bc_type with its given derivative values as plain numbers: a value carrying a
    derivative is refused; a ``dualrev.replay`` recording's staged one (a float argument)
    is frozen, an "equal" guard (SciPy builds the spline from plain numbers; left traced,
    the constructor's own validation would dispatch back here without end)."""
    if bc is None or isinstance(bc, str) or not _traced(bc):
        return bc

    def plain(v: Any) -> Any:
        if isinstance(v, Tracer):
            if unwrap_derivatives(v) is not v:
                raise NoDerivativeRule("scipy.interpolate (bc_type)", "Traced boundary "
                                       "values in bc_type are not supported (pass plain "
                                       "values).")
            return strip(v)
        if type(v) is tuple or type(v) is list:
            return type(v)(plain(u) for u in v)
        return v

    return plain(bc)


def _periodic(bc: Any) -> bool:
    return bc == "periodic"


def _axis(axis: int, y: Any) -> int:
    nd = ndim_of(y)
    return int(axis) % nd if nd else 0


def _patch_new(cls: type, handler: Callable[..., Any]) -> None:
    """Route ``cls(...)`` with a traced argument to ``handler`` (which returns a
    TracedDataInterpolant instead of an instance): ``cls.__new__`` is replaced; plain
    construction is object.__new__ and SciPy's __init__ as before."""
    init = cls.__init__

    @functools.wraps(init)
    def __new__(klass: type, *args: Any, **kwargs: Any) -> Any:
        if (args or kwargs) and _any_traced(args, kwargs):
            return handler(*args, **kwargs)
        return object.__new__(klass)

    note_dispatcher(__new__, cls)  # (named by the class, in error messages and listings)
    cls.__new__ = staticmethod(__new__)  # type: ignore[method-assign,assignment]


def cubic_spline(x: Any, y: Any, axis: int = 0, bc_type: Any = "not-a-knot",
                 extrapolate: Any = None) -> TracedDataInterpolant:
    """CubicSpline(x, y) with traced y: linear in y, every bc_type (given derivative
    values are an affine part) and extrapolate."""
    name = "scipy.interpolate.CubicSpline"
    bc_type = _plain_ends(bc_type)
    _refuse_abscissae(name, x)
    ax = _axis(axis, y)
    _validate(lambda v: si.CubicSpline(x, v, axis=axis, bc_type=bc_type,
                                       extrapolate=extrapolate), y, ax)
    n = shape_of(y)[ax]
    periodic = _periodic(bc_type)
    unit = _unit_data(n, periodic)
    homog, nonzero = _homogeneous_ends(bc_type, unit.shape[1])
    basis = si.CubicSpline(x, unit, axis=0, bc_type=homog, extrapolate=extrapolate)
    offset = (si.CubicSpline(x, np.zeros(shape_of(y)), axis=axis, bc_type=bc_type,
                             extrapolate=extrapolate) if nonzero else None)
    return TracedDataInterpolant(name, basis, _free(np.moveaxis(y, ax, 0), periodic), ax,
                                 offset, True)


def cubic_hermite_spline(x: Any, y: Any, dydx: Any, axis: int = 0,
                         extrapolate: Any = None) -> SumOfInterpolants:
    """CubicHermiteSpline(x, y, dydx) with traced values and/or slopes: linear in both."""
    name = "scipy.interpolate.CubicHermiteSpline"
    _refuse_abscissae(name, x)
    ax = _axis(axis, y)
    # SciPy's checks (shapes, order of x) on the values; the slopes' shape is y's
    _validate(lambda v: si.CubicHermiteSpline(x, v, np.zeros(shape_of(dydx)), axis=axis,
                                              extrapolate=extrapolate), y, ax)
    n = shape_of(y)[ax]
    unit, zero = np.eye(n), np.zeros((n, n))
    terms = [TracedDataInterpolant(name, si.CubicHermiteSpline(x, a, b, axis=0,
                                                               extrapolate=extrapolate),
                                   np.moveaxis(data, _axis(axis, data), 0), ax, None, True)
             for a, b, data in ((unit, zero, y), (zero, unit, dydx))]
    return SumOfInterpolants(name, terms)


def make_interp_spline(x: Any, y: Any, k: int = 3, t: Any = None, bc_type: Any = None,
                       axis: int = 0, check_finite: bool = True) -> TracedDataInterpolant:
    """make_interp_spline(x, y) with traced y: linear in y (a BSpline of unit data)."""
    name = "scipy.interpolate.make_interp_spline"
    bc_type = _plain_ends(bc_type)
    _refuse_abscissae(name, x, t)
    original = ORIGINALS[si.make_interp_spline]
    ax = _axis(axis, y)
    _validate(lambda v: original(x, v, k=k, t=t, bc_type=bc_type, axis=axis,
                                 check_finite=check_finite), y, ax)
    n = shape_of(y)[ax]
    periodic = _periodic(bc_type)
    unit = _unit_data(n, periodic)
    homog, nonzero = _homogeneous_ends(bc_type, unit.shape[1])
    basis = original(x, unit, k=k, t=t, bc_type=homog, axis=0, check_finite=False)
    offset = (original(x, np.zeros(shape_of(y)), k=k, t=t, bc_type=bc_type, axis=axis,
                       check_finite=False) if nonzero else None)
    return TracedDataInterpolant(name, basis, _free(np.moveaxis(y, ax, 0), periodic), ax,
                                 offset, True)


def bspline(t: Any, c: Any, k: int, extrapolate: Any = True,
            axis: int = 0) -> TracedDataInterpolant:
    """BSpline(t, c, k) with traced coefficients c (linear in them)."""
    name = "scipy.interpolate.BSpline"
    _refuse_abscissae(name, t)
    ax = _axis(axis, c)
    _validate(lambda v: si.BSpline(t, v, k, extrapolate=extrapolate, axis=axis), c, ax)
    basis = si.BSpline(t, np.eye(shape_of(c)[ax]), k, extrapolate=extrapolate, axis=0)
    return TracedDataInterpolant(name, basis, np.moveaxis(c, ax, 0), ax, None, True)


def interp1d(x: Any, y: Any, kind: Any = "linear", axis: int = -1, copy: bool = True,
             bounds_error: Any = None, fill_value: Any = np.nan,
             assume_sorted: bool = False) -> TracedDataInterpolant:
    """interp1d(x, y) with traced y: every kind (linear in y); a fill value is the
    affine part (its derivative in y is zero)."""
    name = "scipy.interpolate.interp1d"
    _refuse_abscissae(name, x)
    if _traced(fill_value):
        raise NoDerivativeRule(name, "A traced fill_value is not supported.")
    ax = _axis(axis, y)
    options = {"kind": kind, "copy": copy, "bounds_error": bounds_error,
               "assume_sorted": assume_sorted}
    _validate(lambda v: si.interp1d(x, v, axis=axis, fill_value=fill_value, **options), y,
              ax)
    extrapolating = isinstance(fill_value, str) and fill_value == "extrapolate"
    unit = np.eye(shape_of(y)[ax])
    basis = si.interp1d(x, unit, axis=0, fill_value="extrapolate" if extrapolating else 0.0,
                        **options)
    offset = None if extrapolating else si.interp1d(
        x, np.zeros(shape_of(y)), axis=axis, fill_value=fill_value, **options)
    return TracedDataInterpolant(name, basis, np.moveaxis(y, ax, 0), ax, offset, False)


def _nonlinear_in_data(name: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise NoDerivativeRule(f"scipy.interpolate.{name}", "Its interpolant is not linear "
                               "in the data values (the slopes are limited), which is the "
                               "only case supported for traced data: use CubicSpline, "
                               "make_interp_spline, interp1d or BSpline, or build it from "
                               "plain data (it is differentiable at traced points).")
    return refuse


_patch_new(si.CubicSpline, cubic_spline)
_patch_new(si.CubicHermiteSpline, cubic_hermite_spline)
_patch_new(si.PchipInterpolator, _nonlinear_in_data("PchipInterpolator"))
_patch_new(si.Akima1DInterpolator, _nonlinear_in_data("Akima1DInterpolator"))
_patch_new(si.interp1d, interp1d)
_patch_new(si.BSpline, bspline)
dispatch(si, "make_interp_spline", make_interp_spline)


# ------------------------------------------------------------ RegularGridInterpolator
# A regular-grid interpolant (every method but pchip) is a tensor product of 1-D linear
# interpolation operators: ``f(xi) = sum_j prod_k w_k(xi_k)[j_k] values[j]``, with
# ``w_k`` the 1-D interpolant of unit data along axis k (a degree-1 spline for linear and
# slinear, the not-a-knot cubic/quintic spline, a one-hot vector for nearest). So it is
# linear in the values, and its derivative in xi is that of the 1-D bases, which the
# patched BSpline evaluation supplies (to any order). SciPy 1.13+ solves the spline
# methods' interpolation system iteratively (gcrotmk, to its tolerance); here it is
# solved exactly, one 1-D solve per axis.
_RGI = si.RegularGridInterpolator
_RGI_DEGREE = {"linear": 1, "slinear": 1, "cubic": 3, "quintic": 5, "cubic_legacy": 3,
               "quintic_legacy": 5}


class _GridBases:
    """The 1-D bases of one grid and method (plain; built once per interpolant)."""

    def __init__(self, grid: tuple[np.ndarray, ...], method: str) -> None:
        self.grid = grid
        self.method = method
        if method == "nearest":
            # ties go to the lower point, as SciPy's (norm_distance <= 0.5)
            self.mids = [0.5 * (g[1:] + g[:-1]) for g in grid]
        else:
            k = _RGI_DEGREE[method]
            # (a one-point axis, which SciPy's linear method allows: the weight is 1)
            self.splines = [si.make_interp_spline(g, np.eye(g.size), k=k) if g.size > 1
                            else None for g in grid]

    def weights(self, x: Any, axis: int, nu: int) -> Any:
        """``(npts, n_axis)``: the weights of the grid points along ``axis`` at ``x``."""
        if self.method == "nearest":
            index = np.sum(x[:, None] > self.mids[axis][None, :], axis=1)
            return (index[:, None] == np.arange(self.grid[axis].size)[None, :]).astype(float)
        spline = self.splines[axis]
        if spline is None:
            return np.ones((shape_of(x)[0], 1)) + 0.0 * np.reshape(x, (-1, 1))
        return spline(x, nu)


def _grid_xi(xi: Any, ndim: int) -> Any:
    """SciPy's ``_ndim_coords_from_arrays``: a tuple of coordinate arrays broadcast and
    stacked on a last axis; a 1-D array read as points of ``ndim`` coordinates."""
    if isinstance(xi, tuple) and len(xi) == 1:
        xi = xi[0]
    if isinstance(xi, tuple):
        parts = [as_array(p) for p in xi]
        shape = np.broadcast_shapes(*(tuple(shape_of(p)) for p in parts))
        return np.stack([np.broadcast_to(p, shape) for p in parts], axis=-1)
    xi = as_array(xi)
    if ndim_of(xi) == 1:
        xi = np.reshape(xi, (-1, ndim))
    return xi


def _grid_evaluate(name: str, helper: Any, bases: _GridBases, values: Any, xi: Any,
                   bounds_error: bool, fill_value: Any, nu: Any) -> Any:
    """``f(xi)`` of a grid interpolant whose values and/or points may be traced;
    ``helper`` is a plain SciPy RegularGridInterpolator of the same grid and options (its
    checks and errors are SciPy's)."""
    ndim = len(bases.grid)
    xi = _grid_xi(xi, ndim)
    if is_complex(xi):
        raise NoDerivativeRule(name, "Complex evaluation points are not supported.")
    shape = tuple(shape_of(xi))
    if not shape or shape[-1] != ndim:
        raise ValueError(f"The requested sample points xi have dimension "
                         f"{shape[-1] if shape else 0} but this RegularGridInterpolator "
                         f"has dimension {ndim}")
    plain = concrete(xi)
    # SciPy's bounds check on the plain points (every element of a vmap batch)
    helper._prepare_xi(np.reshape(plain, (-1, ndim)))
    if nu is not None:
        if bases.method not in ("slinear", "cubic", "quintic"):
            raise ValueError("Can only compute derivatives for methods "
                             f"{{'slinear', 'cubic', 'quintic'}}, got method = {bases.method!r}.")
        orders = [int(v) for v in nu]
        if len(orders) != ndim or min(orders) < 0:
            raise ValueError(f"nu must be {ndim} non-negative integers, got {nu!r}")
    else:
        orders = [0] * ndim
    pts = np.reshape(xi, (-1, ndim))
    out = values
    for k in range(ndim):
        w = bases.weights(pts[:, k], k, orders[k])
        # the points' axis is shared by every factor: after the first it is out's axis 0
        out = np.einsum("pa,a...->p...", w, out) if k == 0 else \
            np.einsum("pa,pa...->p...", w, out)
    xs = np.reshape(without_derivatives(xi), (-1, ndim))
    extra = (1,) * (ndim_of(values) - ndim)
    if not bounds_error and fill_value is not None:
        outside = np.zeros(shape_of(xs)[:-1], dtype=bool)
        for k, g in enumerate(bases.grid):
            outside = outside | (xs[:, k] < g[0]) | (xs[:, k] > g[-1])
        out = np.where(np.reshape(outside, (-1,) + extra), fill_value, out)
    nans = np.any(np.isnan(xs), axis=-1)
    if np.any(concrete(nans)):
        out = np.where(np.reshape(nans, (-1,) + extra), np.nan, out)
    return np.reshape(out, shape[:-1] + tuple(shape_of(values))[ndim:])


class TracedGridInterpolant:
    """RegularGridInterpolator of traced values: called like SciPy's object
    (``f(xi)``, ``f(xi, method=...)``, ``f(xi, nu=...)``), differentiable in the values
    and in the points.

    Attributes:
        grid: the grid (SciPy's, each axis ascending).
        values: the traced values (descending axes flipped, as SciPy stores them).
        method, bounds_error, fill_value: as given.
    """

    def __init__(self, helper: Any, values: Any, method: str) -> None:
        self._helper = helper
        self.values = values
        self.method = method
        self.bounds_error = helper.bounds_error
        self.fill_value = helper.fill_value
        self._bases = {method: _GridBases(_grid_of(helper), method)}

    @property
    def grid(self) -> tuple[np.ndarray, ...]:
        return self._helper.grid

    def __call__(self, xi: Any, method: str | None = None, *, nu: Any = None) -> Any:
        method = self.method if method is None else method
        _check_grid_method(method, _grid_of(self._helper))
        if method not in self._bases:
            self._bases[method] = _GridBases(_grid_of(self._helper), method)
        return _grid_evaluate("scipy.interpolate.RegularGridInterpolator", self._helper,
                              self._bases[method], self.values, xi, self.bounds_error,
                              self.fill_value, nu)

    def __repr__(self) -> str:
        return "<scipy.interpolate.RegularGridInterpolator of traced values (dualrev)>"


def _check_grid_method(method: Any, grid: Any) -> None:
    name = "scipy.interpolate.RegularGridInterpolator"
    if method == "pchip":
        raise NoDerivativeRule(name, "method='pchip' is not linear in the values (its "
                               "slopes are limited) and is not supported with traced "
                               "values or points: use 'linear', 'slinear', 'cubic' or "
                               "'quintic'.")
    if method not in _RGI._ALL_METHODS:
        raise ValueError(f"Method '{method}' is not defined")
    k = _RGI_DEGREE.get(method, 0) if method not in ("linear", "nearest") else 0
    for i, g in enumerate(grid):
        if np.size(g) <= k:
            raise ValueError(f"There are {np.size(g)} points in dimension {i}, but method "
                             f"{method} requires at least {k + 1} points per dimension.")


def regular_grid_interpolator(points: Any, values: Any, method: str = "linear",
                              bounds_error: bool = True, fill_value: Any = np.nan, *,
                              solver: Any = None,
                              solver_args: Any = None) -> TracedGridInterpolant:
    """RegularGridInterpolator(points, values) with traced values (linear in them)."""
    name = "scipy.interpolate.RegularGridInterpolator"
    _refuse_abscissae(name, points)
    if _traced(fill_value):
        raise NoDerivativeRule(name, "A traced fill_value is not supported.")
    if solver is not None or solver_args:
        raise NoDerivativeRule(name, "solver= and solver_args= are not supported with "
                               "traced values: dualrev solves the spline methods' "
                               "interpolation exactly, one 1-D solve per axis; drop them.")
    _check_grid_method(method, [np.asarray(p) for p in points])
    # SciPy's constructor and its checks on the plain values
    _validate(lambda v: _RGI(points, v, method=method, bounds_error=bounds_error,
                                 fill_value=fill_value), values, 0)
    plain = concrete(values)
    sample = plain if ndim_of(plain) == ndim_of(values) else \
        np.zeros(shape_of(values), plain.dtype)
    helper = _RGI(points, sample, method="linear", bounds_error=bounds_error,
                  fill_value=fill_value)
    helper.method = method
    if helper._descending_dimensions:
        values = np.flip(values, axis=tuple(helper._descending_dimensions))
    return TracedGridInterpolant(helper, values, method)


def _grid_of(rgi: Any) -> tuple[np.ndarray, ...]:
    """A RegularGridInterpolator's grid as NumPy arrays: SciPy >= 1.16 keeps it in
    ``_grid`` (``grid`` is then a property), SciPy 1.15 in ``grid`` itself."""
    grid = rgi.__dict__.get("_grid")
    return tuple(grid if grid is not None else rgi.grid)


def _values_of(rgi: Any) -> Any:
    """Its data values (``_values`` from SciPy 1.16, ``values`` before)."""
    values = rgi.__dict__.get("_values")
    return values if values is not None else rgi.values


def rgi_call(self: Any, xi: Any, method: str | None = None, *, nu: Any = None) -> Any:
    """RegularGridInterpolator.__call__ at traced points (plain values)."""
    method = self.method if method is None else method
    _check_grid_method(method, _grid_of(self))
    bases = self.__dict__.get("_dualrev_bases")
    if bases is None:
        bases = self.__dict__["_dualrev_bases"] = {}
    if method not in bases:
        bases[method] = _GridBases(_grid_of(self), method)
    return _grid_evaluate("scipy.interpolate.RegularGridInterpolator.__call__", self,
                          bases[method], _values_of(self), xi, self.bounds_error,
                          self.fill_value, nu)


def interpn(points: Any, values: Any, xi: Any, method: str = "linear",
            bounds_error: bool = True, fill_value: Any = np.nan) -> Any:
    """scipy.interpolate.interpn with traced values and/or points."""
    if method == "splinef2d":
        raise NoDerivativeRule("scipy.interpolate.interpn", "method='splinef2d' (FITPACK's "
                               "RectBivariateSpline) is not supported with traced values "
                               "or points: use method='cubic'.")
    f = si.RegularGridInterpolator(points, values, method=method,
                                   bounds_error=bounds_error, fill_value=fill_value)
    return f(xi)


_patch_new(_RGI, regular_grid_interpolator)
_patch_call(_RGI, "scipy.interpolate.RegularGridInterpolator.__call__", rgi_call)
dispatch(si, "interpn", interpn)
