"""Elementwise primitives: arithmetic, powers, exponentials and logarithms, trigonometric
and hyperbolic functions, and their kin.

Most entries give the partial derivative of the output with respect to each argument,
``d(ans, *args) -> array``; both the JVP (``g * d``) and the VJP (``g * d``, then summed
back over broadcast axes by the machinery) follow from it. Linear entries give their
rules directly.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import pattern_rules
from ..batching import on_plain_values
from ..cast import astype, cast_p  # noqa: F401  (cast_p: re-exported)
from ..compile import register_inline
from ..errors import InPlaceError
from ..inplace import clone
from ..primitive import (
    Primitive,
    Saves,
    bind,
    dtype_of,
    no_rule,
    parse_saves,
    qualified_name,
    register_function,
    register_ufunc,
    strip,
    unwrap_derivatives,
)

_LN2 = np.log(2.0)
_LN10 = np.log(10.0)


def _scale_by(d: Callable[..., Any]) -> Callable[..., Any]:
    return lambda g, ans, *args: g * d(ans, *args)


def elementwise(
    func: Any, *partials: Callable[..., Any] | None, name: str | None = None,
    scalar_impl: Callable[..., Any] | None = None, saves: Saves | None = None,
    key: str | None = None,
) -> Primitive:
    """A catalogue entry from a ufunc and the partial derivative of each argument.

    ``None`` for a partial declares that argument's derivative zero (a mask).
    ``scalar_impl`` is an exact Python-scalar version (an operator) for speed.
    ``saves`` declares what each partial reads, named as in the partial's own
    parameters (see ``Primitive``; without it the tape keeps everything).
    ``key``: the portable key, where the name (or the ufunc's qualified name) is taken.
    """
    prim = Primitive(name or func.__name__, func, elementwise=True, scalar_impl=scalar_impl,
                     key=key or (None if name else _ufunc_key(func)))
    rules = tuple(None if d is None else _scale_by(d) for d in partials)
    prim.defjvp(*rules)
    prim.defvjp(*rules)
    if saves is not None:  # the rules take *args: the partials name the arguments
        prim.saves = parse_saves(prim.name, saves, partials, skip=0)
    if all(d is not None for d in partials):
        prim.partials = partials
    if isinstance(func, np.ufunc):
        register_ufunc(func, prim)
    return prim


def linear(func: Any, *rules: Callable[..., Any],
           scalar_impl: Callable[..., Any] | None = None,
           saves: Saves | None = None) -> Primitive:
    """A catalogue entry for an elementwise function linear in each argument: the same
    rule serves as JVP and VJP (``saves`` as for ``Primitive.defvjp``)."""
    prim = Primitive(func.__name__, func, elementwise=True, scalar_impl=scalar_impl,
                     key=_ufunc_key(func))
    prim.defjvp(*rules)
    prim.defvjp(*rules, saves=saves)
    register_ufunc(func, prim)
    return prim


def nondiff_ufunc(func: Any) -> Primitive:
    """A catalogue entry whose derivative is zero wherever it exists (floor, sign,
    comparisons): it runs on the plain values and returns a plain result."""
    prim = Primitive(func.__name__, func, nondiff=True, elementwise=True,
                     key=_ufunc_key(func))
    register_ufunc(func, prim)
    return prim


def _ufunc_key(func: Any) -> str | None:
    """The portable key of the entry for ``func``: None (its name) for NumPy's ufuncs,
    the qualified name for others (``scipy.special.cbrt`` beside ``np.cbrt``)."""
    if isinstance(func, np.ufunc) and getattr(np, func.__name__, None) is not func:
        return qualified_name(func).removesuffix(" (ufunc)")
    return None


def _div(a: Any, b: Any) -> Any:
    """``a / b`` with NumPy's semantics also when both are Python scalars (a rule may meet
    the user's constants): inf or nan, not ZeroDivisionError."""
    try:
        return a / b
    except ZeroDivisionError:
        return np.true_divide(a, b)


def _tie_split(ans: Any, x: Any, y: Any) -> Any:
    # Where both arguments are equal the derivative is split evenly, as JAX and autograd do.
    return np.where(np.equal(x, y), 0.5, np.equal(ans, x))


def _pow(x: Any, y: Any) -> Any:
    """``x**y`` as power_p computes it (its impl below): through ``ndarray.__pow__`` for
    an array, whose fast paths give np.sqrt for ``y == 0.5``, np.reciprocal for -1 and
    np.square for 2. A rule runs this on plain values in a dynamic call and on staged ones
    in a recording, whose power_p replays ``x**y``: with np.power here the two differed in
    the last bit where np.power is not those functions (NumPy 2.0: np.power(x, 0.5) is
    not np.sqrt(x) for every x)."""
    return x**y if type(x) is np.ndarray else np.power(x, y)


def _power_dx(ans: Any, x: Any, y: Any) -> Any:
    # y * x**(y-1), with the derivative of x**0 (a constant) exactly zero, also at x = 0.
    if type(y) in (int, float):  # the common constant exponent: no masking needed
        if y == 2:
            return 2.0 * x
        return np.zeros_like(x) if y == 0 else y * _pow(x, y - 1)
    # the branch not taken sees x = 1 where y = 0: at x = 0 its 0 * 0**-1 (nan) would
    # reach the second derivative in reverse mode through the where's zero cotangent
    zero = np.equal(y, 0)
    return np.where(zero, 0.0, y * _pow(np.where(zero, 1.0, x), y - 1))


def _scalar_power(x: Any, y: Any) -> Any:
    r = x**y
    if type(r) is complex:  # Python gives a complex root of a negative_p base; NumPy a nan
        raise ValueError
    return r


def _power_dy(ans: Any, x: Any, y: Any) -> Any:
    # log_p(x) * x**y; at x = 0 the output is 0 for y > 0, so the derivative is 0 there.
    # (x**y is recomputed rather than read from ans, so the tape need not keep ans.)
    safe_x = np.where(np.equal(x, 0), 1.0, x)
    return np.where(np.equal(x, 0), 0.0, _pow(x, y) * np.log(safe_x))


def _sinc_d(ans: Any, x: Any) -> Any:
    # d/dx sin_p(pi x)/(pi x) = (cos_p(pi x) - sinc_p(x)) / x, which cancels badly near 0:
    # there use its Taylor series, whose own derivatives are right at x = 0 too.
    small = np.less(np.abs(x), 1e-2)
    xs = np.where(small, 1.0, x)
    exact = (np.cos(np.pi * xs) - np.sinc(xs)) / xs
    p2 = np.pi**2
    x2 = x * x
    series = x * (-p2 / 3 + x2 * (p2**2 / 30 + x2 * (-(p2**3) / 840 + x2 * p2**4 / 45360)))
    return np.where(small, series, exact)


# ------------------------------------------------------------------ arithmetic
add_p = linear(np.add, lambda g, ans, x, y: g, lambda g, ans, x, y: g, scalar_impl=operator.add,
             saves="")
subtract_p = linear(
    np.subtract, lambda g, ans, x, y: g, lambda g, ans, x, y: -g, scalar_impl=operator.sub, saves=""
)
negative_p = linear(np.negative, lambda g, ans, x: -g, scalar_impl=operator.neg, saves="")
positive_p = linear(np.positive, lambda g, ans, x: g, saves="")
multiply_p = elementwise(
    np.multiply, lambda ans, x, y: y, lambda ans, x, y: x, scalar_impl=operator.mul,
    saves=("y", "x"),
)
# its pattern (structural sparsity detection): a constant factor's zeros are structural
multiply_p.defpattern(pattern_rules.product)
# d(x/y)/dy as -ans/y, not -x/y**2: nested derivatives then divide by y once per level
# instead of squaring the denominator at every level (y**(2**n) under- or overflows by
# the 10th derivative of 1/x).
true_divide_p = elementwise(
    np.true_divide, lambda ans, x, y: _div(1.0, y), lambda ans, x, y: _div(-ans, y),
    scalar_impl=operator.truediv,
    saves=("y", "ans y"),
)
floor_divide_p = nondiff_ufunc(np.floor_divide)
remainder_p = elementwise(
    np.remainder, lambda ans, x, y: np.ones_like(ans), lambda ans, x, y: -np.floor_divide(x, y),
    saves=("ans", "x y"),
)
fmod_p = elementwise(
    np.fmod, lambda ans, x, y: np.ones_like(ans), lambda ans, x, y: -np.trunc(np.true_divide(x, y)),
    saves=("ans", "x y"),
)
power_p = elementwise(np.power, _power_dx, _power_dy, scalar_impl=_scalar_power, saves="x y")
# ndarray ** y takes NumPy's fast paths (x**2 is a square_p, not a pow: 2.4x faster)
power_p.impl = _pow
register_inline(power_p, lambda out, args, params, seen, name: (
    f"{out} = {args[0]} ** {args[1]}" if seen[0].type is np.ndarray and not params else None))
float_power_p = elementwise(np.float_power, _power_dx, _power_dy, saves="x y")
square_p = elementwise(np.square, lambda ans, x: 2.0 * x, saves="x")
reciprocal_p = elementwise(np.reciprocal, lambda ans, x: -ans * ans, saves="ans")
# abs has its own rules so that complex arguments get Re(conj(z) dz) / |z|
absolute_p = Primitive("absolute", np.absolute, elementwise=True)
register_ufunc(np.absolute, absolute_p)
fabs_p = elementwise(np.fabs, lambda ans, x: np.sign(x), saves="x")
sqrt_p = elementwise(np.sqrt, lambda ans, x: 0.5 / ans, saves="ans")
cbrt_p = elementwise(np.cbrt, lambda ans, x: 1.0 / (3.0 * ans * ans), saves="ans")

# ------------------------------------------------------------------ exponentials, logarithms
exp_p = elementwise(np.exp, lambda ans, x: ans, saves="ans")
exp2_p = elementwise(np.exp2, lambda ans, x: ans * _LN2, saves="ans")
# exp(x), not ans + 1: where expm1 is near -1 (x < -36) the sum keeps no digit of it
# (the derivative of geom.cdf at p = 1 - 1e-8 was 11% off)
expm1_p = elementwise(np.expm1, lambda ans, x: np.exp(x), saves="x")
log_p = elementwise(np.log, lambda ans, x: _div(1.0, x), saves="x")
log2_p = elementwise(np.log2, lambda ans, x: _div(1.0, x * _LN2), saves="x")
log10_p = elementwise(np.log10, lambda ans, x: _div(1.0, x * _LN10), saves="x")
log1p_p = elementwise(np.log1p, lambda ans, x: _div(1.0, 1.0 + x), saves="x")
logaddexp_p = elementwise(
    np.logaddexp, lambda ans, x, y: np.exp(x - ans), lambda ans, x, y: np.exp(y - ans),
    saves=("ans x", "ans y"),
)
logaddexp2_p = elementwise(
    np.logaddexp2, lambda ans, x, y: np.exp2(x - ans), lambda ans, x, y: np.exp2(y - ans),
    saves=("ans x", "ans y"),
)

# ------------------------------------------------------------------ trigonometric, hyperbolic
sin_p = elementwise(np.sin, lambda ans, x: np.cos(x), saves="x")
cos_p = elementwise(np.cos, lambda ans, x: -np.sin(x), saves="x")
tan_p = elementwise(np.tan, lambda ans, x: 1.0 + ans * ans, saves="ans")
arcsin_p = elementwise(np.arcsin, lambda ans, x: 1.0 / np.sqrt(1.0 - x * x), saves="x")
arccos_p = elementwise(np.arccos, lambda ans, x: -1.0 / np.sqrt(1.0 - x * x), saves="x")
arctan_p = elementwise(np.arctan, lambda ans, x: 1.0 / (1.0 + x * x), saves="x")
arctan2_p = elementwise(
    np.arctan2,
    lambda ans, y, x: _div(x, x * x + y * y),
    lambda ans, y, x: _div(-y, x * x + y * y),
    saves="y x",
)
hypot_p = elementwise(np.hypot, lambda ans, x, y: _div(x, ans), lambda ans, x, y: _div(y, ans),
                    saves=("ans x", "ans y"))
sinh_p = elementwise(np.sinh, lambda ans, x: np.cosh(x), saves="x")
cosh_p = elementwise(np.cosh, lambda ans, x: np.sinh(x), saves="x")
tanh_p = elementwise(np.tanh, lambda ans, x: 1.0 - ans * ans, saves="ans")
arcsinh_p = elementwise(np.arcsinh, lambda ans, x: 1.0 / np.sqrt(x * x + 1.0), saves="x")
arccosh_p = elementwise(np.arccosh, lambda ans, x: 1.0 / np.sqrt(x * x - 1.0), saves="x")
arctanh_p = elementwise(np.arctanh, lambda ans, x: _div(1.0, 1.0 - x * x), saves="x")
deg2rad_p = elementwise(np.deg2rad, lambda ans, x: np.pi / 180.0, saves="")
rad2deg_p = elementwise(np.rad2deg, lambda ans, x: 180.0 / np.pi, saves="")
register_ufunc(np.radians, deg2rad_p)
register_ufunc(np.degrees, rad2deg_p)
sinc_p = elementwise(np.sinc, _sinc_d, saves="x")
register_function(np.sinc, sinc_p)

# ------------------------------------------------------------------ selection
maximum_p = elementwise(
    np.maximum, _tie_split, lambda ans, x, y: _tie_split(ans, y, x), saves="ans x y"
)
minimum_p = elementwise(
    np.minimum, _tie_split, lambda ans, x, y: _tie_split(ans, y, x), saves="ans x y"
)
fmax_p = elementwise(np.fmax, _tie_split, lambda ans, x, y: _tie_split(ans, y, x), saves="ans x y")
fmin_p = elementwise(np.fmin, _tie_split, lambda ans, x, y: _tie_split(ans, y, x), saves="ans x y")


def _where_impl(cond: Any, x: Any, y: Any) -> Any:
    return np.where(cond, x, y)


# Selections pass the tangent through with np.where rather than multiplying by a 0/1
# mask, so an inf or nan in the branch not taken cannot leak into the derivative.
where_p = Primitive("where", _where_impl, elementwise=True)
where_p.defjvp(
    None,
    lambda g, ans, c, x, y: np.where(c, g, 0.0),
    lambda g, ans, c, x, y: np.where(c, 0.0, g),
)
where_p.defvjp(*where_p.jvps, saves="c")
# its pattern: a constant condition picks each element's branch; one computed from the
# input may pick either for another input, so then both (pattern_rules.select)
where_p.defpattern(pattern_rules.select)


def _clip_impl(x: Any, lo: Any, hi: Any) -> Any:
    return np.clip(x, lo, hi)


def _clip_inside(x: Any, lo: Any, hi: Any) -> Any:
    return np.logical_and(np.greater_equal(x, lo), np.less_equal(x, hi))


def _clip_above(x: Any, lo: Any, hi: Any) -> Any:
    # np.clip(x, lo, hi) with lo > hi returns hi, so hi carries the derivative there.
    return np.logical_or(np.greater(x, hi), np.greater(lo, hi))


clip_p = Primitive("clip", _clip_impl, elementwise=True)
clip_p.defjvp(
    lambda g, ans, x, lo, hi: np.where(_clip_inside(x, lo, hi), g, 0.0),
    lambda g, ans, x, lo, hi: np.where(
        np.logical_and(np.less(x, lo), np.less_equal(lo, hi)), g, 0.0
    ),
    lambda g, ans, x, lo, hi: np.where(_clip_above(x, lo, hi), g, 0.0),
)
clip_p.defvjp(*clip_p.jvps, saves="x lo hi")


@register_function(np.where)
def _where(condition: Any, x: Any = None, y: Any = None) -> Any:
    if x is None and y is None:
        return on_plain_values(np.where, (condition,), name="numpy.where(condition)")
    # the condition carries no derivative; under vmap it may still be batched
    return bind(where_p, (unwrap_derivatives(condition), x, y), {})


@register_function(np.clip)
def _clip(a: Any, a_min: Any = None, a_max: Any = None, out: Any = None, **kwargs: Any) -> Any:
    if out is not None:
        raise InPlaceError("numpy.clip(..., out=...)")
    a_min = kwargs.pop("min", a_min)
    a_max = kwargs.pop("max", a_max)
    # the rest are ufunc keywords: dtype= casts the result, the others are refused
    dtype = kwargs.pop("dtype", None)
    if kwargs.get("casting") == "same_kind":
        kwargs.pop("casting")
    if kwargs:
        raise no_rule(np.clip, f"Keyword arguments {sorted(kwargs)} are not supported.")
    lo = -np.inf if a_min is None else a_min
    hi = np.inf if a_max is None else a_max
    out = bind(clip_p, (a, lo, hi), {})
    return out if dtype is None else astype(out, dtype)


# ------------------------------------------------------------------ casts
# cast_p and astype (x.astype, dtype=) are a traced value's own operations: dualrev/cast.py


# ------------------------------------------------------------------ zero derivative
for _f in (
    np.sign, np.floor, np.ceil, np.trunc, np.rint, np.signbit,
    np.greater, np.greater_equal, np.less, np.less_equal, np.equal, np.not_equal,
    np.logical_and, np.logical_or, np.logical_xor, np.logical_not,
    np.isfinite, np.isinf, np.isnan, np.heaviside,
):
    nondiff_ufunc(_f)
del _f


round_p = Primitive("round", lambda x, decimals: np.round(x, decimals), nondiff=True,
                    elementwise=True)


def _round_impl(a: Any, decimals: int = 0, out: Any = None) -> Any:
    # piecewise constant: a plain result, which may be written into a plain out=
    if out is not None:
        return np.round(strip(a), decimals, out=out)
    return bind(round_p, (a,), {"decimals": int(decimals)})


register_function(np.round, _round_impl)
register_function(np.around, _round_impl)


@register_function(np.nan_to_num)
def _nan_to_num(x: Any, copy: bool = True, nan: float = 0.0, posinf: Any = None,
                neginf: Any = None) -> Any:
    if not copy:
        raise InPlaceError("np.nan_to_num(x, copy=False) (it writes into x; the default "
                           "copy=True returns the same values and is differentiable)")
    dtype = np.dtype(dtype_of(x))
    if dtype.kind not in "fc":  # integers and booleans have no nan or inf: a copy
        return clone(x)
    if dtype.kind == "c":  # NumPy's: the real and imaginary parts separately
        re = _nan_to_num(np.real(x), nan=nan, posinf=posinf, neginf=neginf)
        im = _nan_to_num(np.imag(x), nan=nan, posinf=posinf, neginf=neginf)
        return re + 1j * im
    # the masks are plain (batched under vmap), the comparisons carry no derivative
    big = np.finfo(dtype).max
    out = np.where(np.isnan(x), nan, x)
    out = np.where(np.isposinf(x), big if posinf is None else posinf, out)
    return np.where(np.isneginf(x), -big if neginf is None else neginf, out)


@register_function(np.astype)
def _np_astype(x: Any, dtype: Any, /, *, copy: bool = True, device: Any = None) -> Any:
    """``numpy.astype`` on traced values: with ``copy=False`` and the same dtype, ``x``
    itself (as NumPy: a write into one is a write into the other), else a new value."""
    if device not in (None, "cpu"):
        raise ValueError(f'Device not understood. Only "cpu" is allowed, but received: {device}')
    out = astype(x, dtype)
    return clone(out) if out is x and copy else out
