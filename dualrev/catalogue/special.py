"""scipy.special ufuncs (they reach dualrev through ``__array_ufunc__`` like NumPy's).

Each entry gives the partial derivative of each argument. Orders of Bessel functions
and of polygamma_p, degrees of orthogonal polynomials, the parameters of the
hypergeometric and Wright functions and the counts of the discrete distributions are
arguments dualrev does not differentiate: a traced value there raises rather than
silently getting a zero derivative. The shape parameters of the incomplete gamma and
beta functions are differentiated by incomplete.py (first and second derivatives), and
through them those of chdtr, gdtr, stdtr, fdtr and the inverses.

Partials are written with scipy.special and NumPy calls on the (possibly traced)
arguments, so that nested derivatives follow from the same rules. Multi-output ufuncs
(``fresnel``, ``sici``, ``airy`` ...) are one elementwise primitive per output.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import scipy.special as sc

from ..batching import without_derivatives
from ..errors import NoDerivativeRule
from ..primitive import (
    Primitive,
    Tracer,
    concrete,
    foreign_array,
    is_complex,
    register_function,
    register_ufunc,
)
from .bessel_order import hyp0f1_b_derivative, order_derivative
from .elementwise import _div, _pow, _power_dx, _power_dy, elementwise, nondiff_ufunc
from .incomplete import betainc_da_p, betainc_db_p, betainc_dshapes, gammainc_da_p

_SQRT_PI = np.sqrt(np.pi)
_SQRT_2PI = np.sqrt(2 * np.pi)
_DEG = np.pi / 180.0  # d(radians)/d(degrees)


def _not_in(what: str) -> Any:
    """A partial for an argument dualrev does not differentiate: raises if it is traced."""

    def partial(ans: Any, *args: Any) -> Any:
        raise NoDerivativeRule(what, "Only its other argument can be differentiated.")

    return partial


def _not_in_detail(what: str, detail: str) -> Any:
    """As ``_not_in``, with its own explanation and way out."""

    def partial(ans: Any, *args: Any) -> Any:
        raise NoDerivativeRule(what, detail)

    return partial


def _integer_order(name: str, what: str = "the order") -> Any:
    """The partial of an integer order (kn, yn, expn): SciPy truncates a non-integer one."""
    return _not_in_detail(
        f"scipy.special.{name} w.r.t. {what}",
        f"{'The order' if what == 'the order' else what} is an integer: SciPy truncates "
        "a non-integer one (with a "
        "warning), so the function is a step function of it, with no derivative that "
        "means anything. Differentiate the real-order function instead"
        + (" (kv, yv)." if name != "expn" else
           ": the generalised E_p(x) is the integral of exp(-x t) / t**p over t from 1 to "
           "inf (scipy.integrate.quad)."))


def _xdivy(x: Any, y: Any) -> Any:
    # x / y, and 0 where x == 0 (the derivative of x log y in y at x = 0)
    return np.where(np.equal(x, 0), 0.0, _div(x, np.where(np.equal(x, 0), 1.0, y)))


# ------------------------------------------------------------------ error functions
elementwise(sc.erf, lambda ans, x: (2 / _SQRT_PI) * np.exp(-x * x), saves="x")
elementwise(sc.erfc, lambda ans, x: (-2 / _SQRT_PI) * np.exp(-x * x), saves="x")
elementwise(sc.erfinv, lambda ans, x: (_SQRT_PI / 2) * np.exp(ans * ans), saves="ans")
elementwise(sc.erfcinv, lambda ans, x: (-_SQRT_PI / 2) * np.exp(ans * ans), saves="ans")
elementwise(sc.erfcx, lambda ans, x: 2 * x * ans - 2 / _SQRT_PI, saves="ans x")
elementwise(sc.ndtr, lambda ans, x: np.exp(-0.5 * x * x) / _SQRT_2PI, saves="x")
elementwise(sc.ndtri, lambda ans, x: _SQRT_2PI * np.exp(0.5 * ans * ans), saves="ans")
elementwise(sc.log_ndtr, lambda ans, x: np.exp(-0.5 * x * x - ans) / _SQRT_2PI, saves="ans x")

# ------------------------------------------------------------------ gamma family
#: B_2, B_4, ..., B_20: the asymptotic series of the polygamma functions
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510,
              43867 / 798, -174611 / 330)


def _polygamma_complex(n: Any, z: Any) -> Any:
    """polygamma(n, z) for complex z and integers n >= 1, which SciPy lacks (its zeta is
    real-only): psi^(n)(z) = (-1)^(n+1) n! sum_k 1/(z+k)^(n+1), the first terms summed
    until Re(z + m) >= 20, the rest by the asymptotic series (DLMF 5.15.8), whose
    truncation error there is below 1e-17 relative for n <= 10."""
    n = np.asarray(n, dtype=np.float64)
    z = np.asarray(z, dtype=np.complex128)
    n, z = np.broadcast_arrays(n, z)
    if np.any(n < 1) or np.any(n != np.round(n)):
        if np.all(n == 0):
            return sc.psi(z)
        return np.where(n == 0, sc.psi(z), np.nan + 0j)
    m = np.maximum(0.0, np.ceil(20.0 - z.real))
    head = np.zeros_like(z)
    for k in range(int(m.max(initial=0.0))):
        head = head + np.where(k < m, 1.0 / (z + k) ** (n + 1), 0.0)
    w = z + m
    tail = sc.gamma(n) / w ** n + sc.gamma(n + 1) / (2 * w ** (n + 1))
    for k, b in enumerate(_BERNOULLI, start=1):
        tail = tail + b * sc.gamma(2 * k + n) / (math.factorial(2 * k) * w ** (2 * k + n))
    return (-1.0) ** (n + 1) * (sc.gamma(n + 1) * head + tail)


def _polygamma_impl(n: Any, x: Any) -> Any:
    if np.iscomplexobj(x):
        # psi's derivative (and gamma's, loggamma's second) at complex points
        return _polygamma_complex(n, x)
    if foreign_array(x) is not None and np.ndim(n) == 0:
        # SciPy's polygamma converts x with np.asarray; its formula by ufuncs, which
        # dispatch to x's library (Dask, CuPy), does not
        n = int(n)
        return sc.psi(x) if n == 0 else (-1.0) ** (n + 1) * math.gamma(n + 1) * sc.zeta(n + 1, x)
    return sc.polygamma(n, x)


# polygamma_p is a Python function in SciPy; as a primitive it is reached through
# dualrev's SciPy dispatchers (see scipy_functions.py) and from rules.
polygamma_p = elementwise(_polygamma_impl, _not_in("scipy.special.polygamma w.r.t. n"),
                          lambda ans, n, x: polygamma_p(n + 1, x), name="polygamma",
                          saves=("", "n x"))

elementwise(sc.gamma, lambda ans, x: ans * sc.digamma(x), saves="ans x")
elementwise(sc.gammaln, lambda ans, x: sc.digamma(x), saves="x")
elementwise(sc.loggamma, lambda ans, x: sc.digamma(x), saves="x")
elementwise(sc.digamma, lambda ans, x: polygamma_p(1, x), saves="x")
elementwise(
    sc.beta,
    lambda ans, a, b: ans * (sc.digamma(a) - sc.digamma(a + b)),
    lambda ans, a, b: ans * (sc.digamma(b) - sc.digamma(a + b)),
    saves="ans a b",
)
elementwise(
    sc.betaln,
    lambda ans, a, b: sc.digamma(a) - sc.digamma(a + b),
    lambda ans, a, b: sc.digamma(b) - sc.digamma(a + b),
    saves="a b",
)


def _gammainc_dx(ans: Any, a: Any, x: Any) -> Any:
    # x**(a-1) e**-x / gamma(a): by its log inside (where the power alone may overflow),
    # as the power itself at x = 0, where the log form's own derivative is 0 * inf
    # (the second derivative of gammainc(2, x) at 0 is 1); each branch at a safe x
    zero = np.equal(x, 0)
    xs = np.where(zero, 1.0, x)
    x0 = np.where(zero, x, 1.0)
    inner = np.exp(-xs + sc.xlogy(a - 1, xs) - sc.gammaln(a))
    return np.where(zero, power0(x0, a - 1) * np.exp(-x0 - sc.gammaln(a)), inner)


# in a: incomplete.py (the series and continued fraction differentiated term by term)
elementwise(sc.gammainc, lambda ans, a, x: gammainc_da_p(a, x), _gammainc_dx,
            saves="a x")
elementwise(sc.gammaincc, lambda ans, a, x: -gammainc_da_p(a, x),
            lambda ans, a, x: -_gammainc_dx(ans, a, x), saves="a x")


# ------------------------------------------------------------------ logistic, logs
elementwise(sc.expit, lambda ans, x: ans * (1 - ans), saves="ans")
# 1/x + 1/(1 - x) rather than 1/(x (1 - x)): reverse mode of the product's rule met
# -inf * x + inf * (1 - x) (nan) where the second derivative overflows (x = 1e-300)
elementwise(sc.logit, lambda ans, x: _div(1.0, x) + _div(1.0, 1 - x), saves="x")
elementwise(sc.log_expit, lambda ans, x: sc.expit(-x), saves="x")
elementwise(sc.xlogy, lambda ans, x, y: np.log(y), lambda ans, x, y: _xdivy(x, y),
            saves=("y", "x y"))
elementwise(sc.xlog1py, lambda ans, x, y: np.log1p(y), lambda ans, x, y: _xdivy(x, 1 + y),
            saves=("y", "x y"))
elementwise(sc.entr, lambda ans, x: -(np.log(x) + 1), saves="x")
elementwise(
    sc.rel_entr,
    lambda ans, x, y: np.log(_div(x, y)) + 1,
    lambda ans, x, y: -_div(x, y),
    saves="x y",
)
elementwise(
    sc.kl_div,
    lambda ans, x, y: np.log(_div(x, y)),
    lambda ans, x, y: 1 - _div(x, y),
    saves="x y",
)

# ------------------------------------------------------------------ Bessel functions
elementwise(sc.i0, lambda ans, x: sc.i1(x), saves="x")
elementwise(sc.i0e, lambda ans, x: sc.i1e(x) - np.sign(x) * ans, saves="ans x")
elementwise(sc.i1, lambda ans, x: 0.5 * (sc.i0(x) + sc.iv(2, x)), saves="x")
def _i1e_d(ans: Any, x: Any) -> Any:
    # 0.5 (i0e + ive(2, x)) near 0; beyond |x| = 1 by the recurrence I2 = I0 - 2 I1 / x,
    # SciPy's ive(2, x) being nan from x = 1e20 on
    big = np.greater(np.abs(x), 1.0)
    xs = np.where(big, 0.5, x)
    xb = np.where(big, x, 2.0)
    near = 0.5 * (sc.i0e(xs) + sc.ive(2, xs))
    far = sc.i0e(xb) - sc.i1e(xb) / xb
    return np.where(big, far, near) - np.sign(x) * ans


elementwise(sc.i1e, _i1e_d,
            saves="ans x")

# ------------------------------------------------------------------ orders of Bessel functions
def _third_order(name: str) -> Any:
    return _not_in(f"the third derivative of scipy.special.{name} w.r.t. the order")


def _order_derivatives(name: str, kind: str, scale: Callable[[Any], Any] | None,
                       along_x: Callable[..., Any]) -> Callable[..., Any]:
    """The partial in v of scipy.special.``name``: two primitives, its first and second
    derivatives in v (bessel_order.py computes them on plain values; ``scale`` takes the
    method's scaled result to ``name``'s: e^x for iv, e^-x for kv), each with its
    derivative in x from ``along_x(D, v, x)``, the x-recurrence of ``name`` with D
    standing for the function (the recurrences hold for every real order, so they hold
    for its v-derivatives too). A third derivative in v is refused by name."""

    def impl(n: int) -> Callable[..., Any]:
        def f(v: Any, x: Any) -> Any:
            d = order_derivative(kind, n, v, x, f"scipy.special.{name}")
            return d if scale is None else d * scale(np.asarray(x, dtype=d.dtype))
        f.__name__ = f"{name}_dv{n}"
        return f

    second: Primitive = elementwise(
        impl(2), _third_order(name), lambda ans, v, x: along_x(second, v, x),
        name=f"{name}_order_derivative2", saves=("", "v x"))
    first: Primitive = elementwise(
        impl(1), lambda ans, v, x: second(v, x), lambda ans, v, x: along_x(first, v, x),
        name=f"{name}_order_derivative", saves=("v x", "v x"))
    return lambda ans, v, x: first(v, x)


def _j_x(d: Any, v: Any, x: Any) -> Any:  # J' = (J_{v-1} - J_{v+1}) / 2, and Y's
    return 0.5 * (d(v - 1, x) - d(v + 1, x))


def _i_x(d: Any, v: Any, x: Any) -> Any:  # I' = (I_{v-1} + I_{v+1}) / 2
    return 0.5 * (d(v - 1, x) + d(v + 1, x))


def _k_x(d: Any, v: Any, x: Any) -> Any:  # K' = -(K_{v-1} + K_{v+1}) / 2
    return -0.5 * (d(v - 1, x) + d(v + 1, x))


def _ive_x(d: Any, v: Any, x: Any) -> Any:  # (I e^-|x|)' = the same - sign(x) I e^-|x|
    return _i_x(d, v, x) - np.sign(x) * d(v, x)


def _kve_x(d: Any, v: Any, x: Any) -> Any:  # (K e^x)' = the same + K e^x
    return _k_x(d, v, x) + d(v, x)


elementwise(sc.iv, _order_derivatives("iv", "i", np.exp, _i_x),
            lambda ans, v, x: 0.5 * (sc.iv(v - 1, x) + sc.iv(v + 1, x)), saves=("v x", "v x"))
elementwise(sc.ive, _order_derivatives("ive", "i", None, _ive_x),
            lambda ans, v, x: 0.5 * (sc.ive(v - 1, x) + sc.ive(v + 1, x)) - np.sign(x) * ans,
            saves=("v x", "ans v x"))
elementwise(sc.j0, lambda ans, x: -sc.j1(x), saves="x")
elementwise(sc.j1, lambda ans, x: 0.5 * (sc.j0(x) - sc.jv(2, x)), saves="x")
elementwise(sc.jv, _order_derivatives("jv", "j", None, _j_x),
            lambda ans, v, x: 0.5 * (sc.jv(v - 1, x) - sc.jv(v + 1, x)), saves=("v x", "v x"))
elementwise(sc.y0, lambda ans, x: -sc.y1(x), saves="x")
elementwise(sc.y1, lambda ans, x: 0.5 * (sc.y0(x) - sc.yv(2, x)), saves="x")
elementwise(sc.yv, _order_derivatives("yv", "y", None, _j_x),
            lambda ans, v, x: 0.5 * (sc.yv(v - 1, x) - sc.yv(v + 1, x)), saves=("v x", "v x"))


@register_function(np.i0)
def _i0(x: Any) -> Any:
    """``numpy.i0`` on traced values: SciPy's ``i0`` (the same function; NumPy's
    Chebyshev series agrees to rounding), in x's precision."""
    if is_complex(x):
        raise TypeError("i0 not supported for complex values")
    return sc.i0(x)


# ------------------------------------------------------------------ helpers of the rules
def _real_only(name: str, d: Callable[..., Any]) -> Callable[..., Any]:
    """A partial valid on the real line only (an exponential scaling by |Im z| or the
    like is not analytic): a complex argument raises instead of getting it wrong."""

    @functools.wraps(d)  # its parameter names, which ``saves`` declarations refer to
    def partial(ans: Any, *args: Any) -> Any:
        if any(is_complex(a) for a in args):
            raise NoDerivativeRule(
                f"scipy.special.{name} of a complex argument",
                "Its derivative is implemented for real arguments only.")
        return d(ans, *args)

    return partial


def _integer_degree(name: str, n: Any) -> None:
    # the recurrences below hold for integer degrees; SciPy also evaluates some of these
    # polynomials at non-integer degrees (as hypergeometric functions), where they differ
    if isinstance(n, Tracer):
        return  # a traced degree: the degree's own partial refuses it
    n = np.asarray(n)
    if n.dtype.kind == "f" and not np.all(np.equal(n, np.floor(n))):
        raise NoDerivativeRule(
            f"scipy.special.{name} at a non-integer degree",
            "Its derivative is implemented for integer degrees only.")


def _below(n: Any) -> Any:
    # n - 1, floored at 0: the lower degree of a recurrence whose factor vanishes at n = 0
    return np.maximum(n - 1, 0)


def _series(u: Any, coefs: Sequence[float]) -> Any:
    # sum_k coefs[k] u**k by Horner's rule (traced u: its own derivatives are exact)
    out = coefs[-1]
    for c in coefs[-2::-1]:
        out = out * u + c
    return out


_SMALL = 1e-2  # below this |u| the series (8 terms: error ~1e-16) replaces the closed form
_EXPREL_D = [(k + 1) / math.factorial(k + 2) for k in range(8)]  # d/du (e^u - 1)/u
_LOG1P_REL = [(-1) ** k / (k + 1) for k in range(8)]  # log1p(u)/u
_LOG1P_REL_D = [(-1) ** (k + 1) * (k + 1) / (k + 2) for k in range(8)]  # its derivative
# sinh(x)/x = sum x^(2k)/(2k+1)!; (I0(x) - 1)/x = sum_(k>=1) x^(2k-1) / (4^k k!^2), and
# (1 - J0(x))/x the same with alternating signs
_SINHC = [0.0 if j % 2 else 1 / math.factorial(j + 1) for j in range(9)]
_I0M1 = [1 / (4 ** ((j + 1) // 2) * math.factorial((j + 1) // 2) ** 2) if j % 2 else 0.0
         for j in range(9)]
_J0M1 = [c * (-1) ** ((j - 1) // 2) for j, c in enumerate(_I0M1)]


def _guarded(u: Any, exact: Callable[[Any], Any], coefs: Sequence[float]) -> Any:
    """``exact(u)``, which cancels badly near u = 0, replaced there by its Taylor series;
    composed of traced operations, so that its derivatives are right on both sides."""
    small = np.less(np.abs(u), _SMALL)
    us = np.where(small, 1.0, u)
    return np.where(small, _series(u, coefs), exact(us))


def _exprel_d(u: Any) -> Any:
    """d/du exprel(u) = (u e^u - expm1(u)) / u**2."""
    return _guarded(u, lambda v: (np.exp(v) - sc.exprel(v)) / v, _EXPREL_D)


def _log1p_rel(u: Any) -> Any:
    """log1p(u) / u (1 at u = 0)."""
    return _guarded(u, lambda v: np.log1p(v) / v, _LOG1P_REL)


def _log1p_rel_d(u: Any) -> Any:
    """d/du log1p(u)/u = (u/(1+u) - log1p(u)) / u**2."""
    return _guarded(u, lambda v: (v / (1 + v) - np.log1p(v)) / (v * v), _LOG1P_REL_D)


def _output(ufunc: Any, i: int) -> Callable[..., Any]:
    return lambda *args: ufunc(*args)[i]


def multi_output(ufunc: Any, *per_output: Sequence[Callable[..., Any]],
                 saves: Sequence[Any]) -> tuple[Primitive, ...]:
    """A multi-output ufunc as one elementwise primitive per output: ``per_output[i]``
    holds output i's partials ``d(ans_i, *args)``. Each primitive recomputes the ufunc and
    keeps its own output (twice the work, but every output is then an ordinary
    elementwise value for the tape, batching and nesting)."""
    prims = tuple(
        elementwise(_output(ufunc, i), *partials,
                    name=f"{ufunc.__name__}[{i}]", saves=sv)
        for i, (partials, sv) in enumerate(zip(per_output, saves, strict=True)))

    def handler(*args: Any) -> tuple[Any, ...]:
        return tuple(p(*args) for p in prims)

    register_ufunc(ufunc, handler)
    return prims


# ------------------------------------------------------------------ more gamma and beta
def _rgamma_d(ans: Any, x: Any) -> Any:
    # -psi(x) / gamma(x), which is 0 * inf at the zeros 0, -1, -2, ... of 1/gamma. For
    # x < 1/2 the reflection 1/gamma(x) = sin(pi x) gamma(1 - x) / pi is smooth, and its
    # derivative cos(pi x) gamma(1 - x) - sin(pi x) gamma(1 - x) psi(1 - x) / pi is
    # (-1)**n n! at -n; sindg/cosdg of 180 x are exact at the integers. Below -170
    # gamma(1 - x) overflows: the digamma form is kept there, and for complex x (whose
    # zeros are the same real points, reached only along the real axis).
    if is_complex(x):
        return -ans * sc.digamma(x)
    ref = np.logical_and(np.less(x, 0.5), np.greater(x, -170.0))  # also near 0 from above
    xr = np.where(ref, x, -0.5)
    g = sc.gamma(1 - xr)
    reflected = sc.cosdg(180.0 * xr) * g - sc.sindg(180.0 * xr) * g * sc.digamma(1 - xr) / np.pi
    xd = np.where(ref, 1.0, x)
    return np.where(ref, reflected, -np.where(ref, 1.0, ans) * sc.digamma(xd))


elementwise(sc.rgamma, _rgamma_d, saves="ans x")
nondiff_ufunc(sc.gammasgn)  # piecewise constant (+-1)
nondiff_ufunc(sc.round)  # piecewise constant
def _pole(x: Any) -> Any:
    """Where x is 0, -1, -2, ...: a pole of gamma, a zero of 1/gamma."""
    return np.logical_and(np.less_equal(x, 0), np.equal(np.floor(x), x))


def _poch_dz(ans: Any, z: Any, m: Any) -> Any:
    # poch = gamma(z + m) rgamma(z): at a zero of rgamma(z) with gamma(z + m) finite
    # (poch(z, 2) = z (z + 1) at z = 0, -1) the derivative is gamma(z + m) rgamma'(z),
    # where ans (psi(z + m) - psi(z)) is 0 * inf; each branch at safe arguments
    # (the same form near them too, z < 1/2: psi(z)'s pole spoils the second derivative
    # at z = 1e-300)
    use = np.logical_and(np.logical_and(np.less(z, 0.5), ~_pole(z + m)),
                         np.less(z + m, 170.0))
    zs, ms = np.where(use, z, 0.25), np.where(use, m, 1.0)
    g = sc.gamma(zs + ms)
    at = g * (sc.digamma(zs + ms) * sc.rgamma(zs) + _rgamma_d(sc.rgamma(zs), zs))
    zo = np.where(use, 0.5, z)
    return np.where(use, at, ans * (sc.digamma(zo + m) - sc.digamma(zo)))


def _binom_d(wrt_n: bool) -> Callable[..., Any]:
    # binom = gamma(n + 1) rgamma(n - k + 1) / gamma(k + 1): where n - k + 1 is a zero
    # of rgamma and gamma(n + 1) finite (binom(n, 2) at n = 0, 1), the derivative is
    # +-gamma(n + 1) rgamma'(n - k + 1) / gamma(k + 1), where the psi form is 0 * inf
    def d(ans: Any, n: Any, k: Any) -> Any:
        use = np.logical_and(np.logical_and(np.less(n - k + 1, 0.5), ~_pole(n + 1)),
                             np.logical_and(np.less(n, 169.0), ~_pole(k + 1)))
        ns, ks = np.where(use, n, 0.5), np.where(use, k, 0.0)
        a = ns - ks + 1
        g, ra, rk = sc.gamma(ns + 1), sc.rgamma(a), sc.rgamma(ks + 1)
        da = _rgamma_d(ra, a)
        if wrt_n:
            at = g * (sc.digamma(ns + 1) * ra + da) * rk
        else:
            at = g * (ra * _rgamma_d(rk, ks + 1) - da * rk)
        no, ko = np.where(use, 0.5, n), np.where(use, 0.0, k)
        if wrt_n:
            other = ans * (sc.digamma(no + 1) - sc.digamma(no - ko + 1))
        else:
            other = ans * (sc.digamma(no - ko + 1) - sc.digamma(ko + 1))
        return np.where(use, at, other)

    return d


elementwise(sc.poch, _poch_dz, lambda ans, z, m: ans * sc.digamma(z + m), saves="ans z m")
elementwise(
    sc.binom,  # gamma(n+1) / (gamma(k+1) gamma(n-k+1)), SciPy's continuous extension
    _binom_d(True), _binom_d(False), saves="ans n k",
)


def _gammainc_inv_dy(ans: Any, a: Any, y: Any) -> Any:
    # dx/dy of the inverse: 1 / (dP/dx at x = ans)
    return np.exp(ans - sc.xlogy(a - 1, ans) + sc.gammaln(a))


def _inverse_d(ans: Any, d_shape: Callable[[Any], Any], d_x: Callable[[Any], Any],
               ends: tuple[float, float], check: Callable[[Any], Any] | None = None,
               y: Any = None, log_d_x: Callable[[Any], Any] | None = None) -> Any:
    """The derivative of an inverse x(s) of F(s, x) = y in the shape s, -dF/ds / dF/dx
    at x = ans (the implicit function theorem; the same for the complement 1 - F). At
    the ends of the support, where y is 0 or 1 for every s, it is 0: there both
    derivatives of F vanish or the density is infinite.

    ``check(x)``, F on plain values, guards the theorem's premise: where SciPy's
    inverse does not solve F(s, x) = y (to 1e-6 of the smaller tail; stdtrit at df =
    1e-8, whose true quantile overflows, returns -6.7e149 with stdtr 0.4999982 there)
    the derivative is nan, not the slope at a wrong point."""
    end = np.logical_or(np.equal(ans, ends[0]), np.equal(ans, ends[1]))
    xs = np.where(end, 0.5, ans)  # each branch at a safe point
    ds, dx = d_shape(xs), d_x(xs)
    out = np.where(end, 0.0, -ds / dx)
    if log_d_x is not None:
        # far in a tail the density underflows to 0 while the ratio is finite (t at
        # q = 1e-300: x = -1.6e86, the derivative 9e87): the ratio from the logarithms,
        # ``log_d_x`` being log(dF/dx)
        under = np.logical_and(np.equal(dx, 0.0), ~end)
        if np.any(concrete(without_derivatives(under))):
            ds1 = np.where(under, ds, 1.0)
            lx = np.where(under, log_d_x(xs), 0.0)
            far = -np.sign(ds1) * np.exp(np.log(np.abs(ds1)) - lx)
            out = np.where(under, far, out)
    if check is not None:
        xp, yp = without_derivatives(ans), without_derivatives(y)
        with np.errstate(all="ignore"):
            # (beyond the rounding of x itself, |x| eps times the density: x next to 1)
            slack = 4e-16 * np.abs(xp) * np.abs(without_derivatives(dx))
            off = (np.abs(check(xp) - yp)
                   > 1e-6 * np.minimum(yp, 1 - yp) + np.nan_to_num(slack) + 1e-305)
        off = np.logical_and(off, ~without_derivatives(end))
        if np.any(concrete(off)):  # (for the whole batch: otherwise nothing to mask)
            out = np.where(off, np.nan * out, out)  # (nan in its own derivatives too)
    return out


def _gammaincinv_da(f: Any) -> Callable[..., Any]:
    # P(a, x) = y or Q(a, x) = y: dx/da = -P_a / P_x either way
    def d(ans: Any, a: Any, y: Any) -> Any:
        ap = without_derivatives(a)
        return _inverse_d(ans, lambda x: gammainc_da_p(a, x),
                          lambda x: _gammainc_dx(None, a, x), (0.0, np.inf),
                          lambda x: f(ap, x), y)

    return d


elementwise(sc.gammaincinv, _gammaincinv_da(sc.gammainc), _gammainc_inv_dy,
            saves=("ans a y", "ans a"))
elementwise(sc.gammainccinv, _gammaincinv_da(sc.gammaincc),
            lambda ans, a, y: -_gammainc_inv_dy(ans, a, y), saves=("ans a y", "ans a"))


def power0(x: Any, e: Any) -> Any:
    """x**e for the powers of densities at the ends of their supports, with x**0 the
    constant 1 (as x**0 is for every x): NumPy's power rule at an array exponent of 0
    evaluates e * x**(e - 1) at x = 0 in the branch it does not take, whose own
    derivative (reverse over reverse) is then 0 * inf."""
    zero = np.equal(e, 0)
    return np.where(zero, 1.0, x ** np.where(zero, 1.0, e))


def _beta_density(a: Any, b: Any, x: Any) -> Any:
    """x**(a-1) (1-x)**(b-1) / B(a, b): by its log inside (0, 1), by the powers at the
    ends, where the log form's derivative is 0 * inf (each branch at a safe x)."""
    end = np.logical_or(np.equal(x, 0), np.equal(x, 1))
    xe = np.where(end, x, 0.5)
    at_end = power0(xe, a - 1) * power0(1 - xe, b - 1) * np.exp(-sc.betaln(a, b))
    return np.where(end, at_end, np.exp(_log_beta_density(a, b, np.where(end, 0.5, x))))


def _log_beta_density(a: Any, b: Any, x: Any) -> Any:
    # log(x**(a-1) (1-x)**(b-1) / B(a, b)), with 0 * log 0 = 0 at the ends
    return sc.xlogy(a - 1, x) + sc.xlog1py(b - 1, -x) - sc.betaln(a, b)


# in a and b: incomplete.py (the continued fraction differentiated term by term)
def _nan_where_value_is(ans: Any, d: Any) -> Any:
    # a shape 0 is SciPy's limit from 1.16 on and nan before: no derivative beside a nan
    return np.where(np.isnan(ans), np.nan * d, d)


elementwise(sc.betainc, lambda ans, a, b, x: _nan_where_value_is(ans, betainc_da_p(a, b, x)),
            lambda ans, a, b, x: _nan_where_value_is(ans, betainc_db_p(a, b, x)),
            lambda ans, a, b, x: _beta_density(a, b, x),
            saves=("ans a b x", "ans a b x", "a b x"))
elementwise(sc.betaincc,
            lambda ans, a, b, x: _nan_where_value_is(ans, -betainc_da_p(a, b, x)),
            lambda ans, a, b, x: _nan_where_value_is(ans, -betainc_db_p(a, b, x)),
            lambda ans, a, b, x: -_beta_density(a, b, x),
            saves=("ans a b x", "ans a b x", "a b x"))


def _betaincinv_d(shape: Callable[..., Any], f: Any) -> Callable[..., Any]:
    # I_x(a, b) = y or 1 - I_x(a, b) = y: dx/da = -I_a / I_x either way (and in b)
    def d(ans: Any, a: Any, b: Any, y: Any) -> Any:
        ap, bp = without_derivatives(a), without_derivatives(b)
        return _inverse_d(ans, lambda x: shape(a, b, x),
                          lambda x: np.exp(_log_beta_density(a, b, x)), (0.0, 1.0),
                          lambda x: f(ap, bp, x), y)

    return d


for _f, _sign, _fwd in ((sc.betaincinv, 1.0, sc.betainc), (sc.betainccinv, -1.0, sc.betaincc)):
    elementwise(_f, _betaincinv_d(betainc_da_p, _fwd), _betaincinv_d(betainc_db_p, _fwd),
                (lambda sg: lambda ans, a, b, y: sg * np.exp(-_log_beta_density(a, b, ans)))(
                    _sign), saves=("ans a b y", "ans a b y", "ans a b"))
del _f, _sign, _fwd

# ------------------------------------------------------------------ exponential integrals
elementwise(sc.exp1, lambda ans, x: -np.exp(-x) / x, saves="x")
elementwise(sc.expi, lambda ans, x: np.exp(x) / x, saves="x")


def _expn_dx(ans: Any, n: Any, x: Any) -> Any:
    # E_n' = -E_{n-1}; E_0(x) = e^-x / x has no lower neighbour in SciPy (E_-1 is nan);
    # each branch at safe arguments (the other's inf or nan reached the second
    # derivative in reverse mode through the where: expn(2, x) at x = 1e-300)
    pos = np.greater(n, 0)
    lower = -sc.expn(np.where(pos, _below(n), 1), np.where(pos, x, 1.0))
    x0 = np.where(pos, 1.0, x)
    return np.where(pos, lower, -np.exp(-x0) * (x0 + 1) / (x0 * x0))


elementwise(sc.expn, _integer_order("expn", "n"), _expn_dx, saves=("", "n x"))
elementwise(sc.exprel, lambda ans, x: _exprel_d(x), saves="x")

# ------------------------------------------------------------------ elementary functions
elementwise(sc.cbrt, lambda ans, x: _div(1.0, 3.0 * ans * ans), saves="ans")
elementwise(sc.exp2, lambda ans, x: ans * np.log(2.0), saves="ans")
elementwise(sc.expm1, lambda ans, x: np.exp(x), saves="x")  # not ans + 1 (see np.expm1)
elementwise(sc.log1p, lambda ans, x: _div(1.0, 1.0 + x), saves="x")
elementwise(sc.cosm1, lambda ans, x: -np.sin(x), saves="x")
elementwise(sc.sindg, lambda ans, x: _DEG * sc.cosdg(x), saves="x")
elementwise(sc.cosdg, lambda ans, x: -_DEG * sc.sindg(x), saves="x")
elementwise(sc.tandg, lambda ans, x: _DEG * (1.0 + ans * ans), saves="ans")
elementwise(sc.cotdg, lambda ans, x: -_DEG * (1.0 + ans * ans), saves="ans")
elementwise(sc.radian, lambda ans, d, m, s: _DEG, lambda ans, d, m, s: _DEG / 60,
            lambda ans, d, m, s: _DEG / 3600, saves="")
elementwise(sc.powm1, _power_dx, _power_dy, saves="x y")  # x**y - 1: the same partials
elementwise(
    sc.boxcox,  # log(x) exprel(lmbda log(x))
    lambda ans, x, lm: _pow(x, lm - 1),
    lambda ans, x, lm: np.log(x) ** 2 * _exprel_d(lm * np.log(x)),
    saves="x lm",
)
elementwise(
    sc.boxcox1p,
    lambda ans, x, lm: _pow(1 + x, lm - 1),
    lambda ans, x, lm: np.log1p(x) ** 2 * _exprel_d(lm * np.log1p(x)),
    saves="x lm",
)
elementwise(
    sc.inv_boxcox,  # exp(y log1p(lmbda y)/(lmbda y))
    lambda ans, y, lm: ans / (1 + lm * y),
    lambda ans, y, lm: ans * y * y * _log1p_rel_d(lm * y),
    saves="ans y lm",
)
elementwise(
    sc.inv_boxcox1p,
    lambda ans, y, lm: (ans + 1) / (1 + lm * y),
    lambda ans, y, lm: (ans + 1) * y * y * _log1p_rel_d(lm * y),
    saves="ans y lm",
)
elementwise(sc.spence, lambda ans, z: -_log1p_rel(z - 1), saves="z")  # log(z) / (1 - z)
elementwise(sc.wrightomega, lambda ans, z: ans / (1 + ans), saves="ans")


def _huber_in(d: Any, r: Any) -> Any:
    return np.less_equal(np.abs(r), d)


elementwise(
    sc.huber,  # r**2/2 inside |r| <= delta, delta (|r| - delta/2) outside
    lambda ans, d, r: np.where(_huber_in(d, r), 0.0, np.abs(r) - d),
    lambda ans, d, r: np.where(_huber_in(d, r), r, d * np.sign(r)),
    saves="d r",
)
elementwise(
    sc.pseudo_huber,  # delta**2 (sqrt(1 + (r/delta)**2) - 1)
    lambda ans, d, r: 2 * ans / d - r * r / (d * np.sqrt(1 + (r / d) ** 2)),
    lambda ans, d, r: r / np.sqrt(1 + (r / d) ** 2),
    saves=("ans d r", "d r"),
)

# ------------------------------------------------------------------ error functions, Fresnel
elementwise(sc.erfi, lambda ans, x: (2 / _SQRT_PI) * np.exp(x * x), saves="x")
elementwise(sc.dawsn, lambda ans, x: 1 - 2 * x * ans, saves="ans x")
elementwise(sc.ndtri_exp, lambda ans, y: _SQRT_2PI * np.exp(y + 0.5 * ans * ans),
            saves="ans y")
elementwise(
    sc.owens_t,
    lambda ans, h, a: -np.exp(-0.5 * h * h) * sc.erf(a * h / np.sqrt(2.0)) / (2 * _SQRT_2PI),
    lambda ans, h, a: np.exp(-0.5 * h * h * (1 + a * a)) / (2 * np.pi * (1 + a * a)),
    saves="h a",
)
multi_output(sc.fresnel, [lambda ans, z: np.sin(0.5 * np.pi * z * z)],
             [lambda ans, z: np.cos(0.5 * np.pi * z * z)], saves=("z", "z"))
# sin(x)/x as np.sinc (exact at 0, and so are its derivatives); sinh(x)/x by its series
multi_output(sc.sici, [lambda ans, x: np.sinc(x / np.pi)], [lambda ans, x: np.cos(x) / x],
             saves=("x", "x"))
multi_output(sc.shichi, [lambda ans, x: _guarded(x, lambda v: np.sinh(v) / v, _SINHC)],
             [lambda ans, x: np.cosh(x) / x], saves=("x", "x"))

# ------------------------------------------------------------------ elliptic integrals
# In the parameter m. The closed forms in K and E are 0/0 at m = 0; near it (|m| < 1/2) the
# derivatives are the hypergeometric series instead: K = pi/2 2F1(1/2, 1/2; 1; m), so
# dK/dm = pi/8 2F1(3/2, 3/2; 2; m), and E = pi/2 2F1(-1/2, 1/2; 1; m), dE/dm =
# -pi/8 2F1(1/2, 3/2; 2; m). (The incomplete integrals keep their closed forms: their
# derivatives in m are nan at m = 0.)
def _near_0(m: Any, series: Callable[[Any], Any], closed: Callable[[Any], Any]) -> Any:
    near = np.less(np.abs(m), 0.5)
    # each branch sees a safe m, so the one not taken cannot put nan into the derivative
    return np.where(near, series(np.where(near, m, 0.0)), closed(np.where(near, 0.75, m)))


def _ellipk_dm(m: Any) -> Any:
    return _near_0(m, lambda u: np.pi / 8 * sc.hyp2f1(1.5, 1.5, 2.0, u),
                   lambda u: (sc.ellipe(u) - (1 - u) * sc.ellipk(u)) / (2 * u * (1 - u)))


def _ellipe_dm(m: Any) -> Any:
    return _near_0(m, lambda u: -np.pi / 8 * sc.hyp2f1(0.5, 1.5, 2.0, u),
                   lambda u: (sc.ellipe(u) - sc.ellipk(u)) / (2 * u))


elementwise(sc.ellipk, lambda ans, m: _ellipk_dm(m), saves="m")
elementwise(sc.ellipe, lambda ans, m: _ellipe_dm(m), saves="m")
def _ellipkm1_dp(p: Any) -> Any:
    # -K'(1 - p), in p itself: (E(1 - p) - p K(1 - p)) / (2 (1 - p) p), whose K(1 - p) is
    # ellipkm1(p) (accurate at p = 1e-300, where 1 - p rounds to 1 and ellipk(1) = inf);
    # K' by its series where m = 1 - p is near 0
    near = np.less(np.abs(1 - p), 0.5)
    ps = np.where(near, 0.25, p)  # each branch sees a safe p
    closed = (sc.ellipe(1 - ps) - ps * sc.ellipkm1(ps)) / (2 * (1 - ps) * ps)
    series = np.pi / 8 * sc.hyp2f1(1.5, 1.5, 2.0, np.where(near, 1 - p, 0.0))
    return -np.where(near, series, closed)


elementwise(sc.ellipkm1, lambda ans, p: _ellipkm1_dp(p), saves="p")


def _delta(phi: Any, m: Any) -> Any:
    s = np.sin(phi)
    return np.sqrt(1 - m * s * s)


elementwise(
    sc.ellipkinc,
    lambda ans, phi, m: 1 / _delta(phi, m),
    lambda ans, phi, m: (sc.ellipeinc(phi, m) / (2 * m * (1 - m)) - ans / (2 * m)
                         - np.sin(2 * phi) / (4 * (1 - m) * _delta(phi, m))),
    saves=("phi m", "ans phi m"),
)
elementwise(
    sc.ellipeinc,
    lambda ans, phi, m: _delta(phi, m),
    lambda ans, phi, m: (ans - sc.ellipkinc(phi, m)) / (2 * m),
    saves=("phi m", "ans phi m"),
)


def _ellipj(i: int) -> Callable[..., Any]:
    return lambda ans, u, m: sc.ellipj(u, m)[i]


_m_ellipj = _not_in("scipy.special.ellipj w.r.t. m")
multi_output(  # sn, cn, dn, and the amplitude ph, in u
    sc.ellipj,
    [lambda ans, u, m: _ellipj(1)(ans, u, m) * _ellipj(2)(ans, u, m), _m_ellipj],
    [lambda ans, u, m: -_ellipj(0)(ans, u, m) * _ellipj(2)(ans, u, m), _m_ellipj],
    [lambda ans, u, m: -m * _ellipj(0)(ans, u, m) * _ellipj(1)(ans, u, m), _m_ellipj],
    [_ellipj(2), _m_ellipj],
    saves=[("u m", "")] * 4,
)

# ------------------------------------------------------------------ more Bessel functions
elementwise(sc.k0, lambda ans, x: -sc.k1(x), saves="x")
# -K0 - K1 / x, the same as -(K0 + K2) / 2 by K2 = K0 + 2 K1 / x, without kv(2, x)
# (SciPy's kve(2, x) is nan from x = 1e20 on)
elementwise(sc.k1, lambda ans, x: -sc.k0(x) - ans / x, saves="ans x")
elementwise(sc.k0e, lambda ans, x: ans - sc.k1e(x), saves="ans x")
elementwise(sc.k1e, lambda ans, x: ans - sc.k0e(x) - ans / x, saves="ans x")
elementwise(sc.kv, _order_derivatives("kv", "k", lambda x: np.exp(-x), _k_x),
            lambda ans, v, x: -0.5 * (sc.kv(v - 1, x) + sc.kv(v + 1, x)), saves=("v x", "v x"))
elementwise(sc.kve, _order_derivatives("kve", "k", None, _kve_x),  # kv(v, z) e^z
            lambda ans, v, x: ans - 0.5 * (sc.kve(v - 1, x) + sc.kve(v + 1, x)),
            saves=("v x", "ans v x"))


elementwise(sc.kn, _integer_order("kn"),
            lambda ans, n, x: -0.5 * (sc.kn(n - 1, x) + sc.kn(n + 1, x)), saves=("", "n x"))
elementwise(sc.yn, _integer_order("yn"),
            lambda ans, n, x: 0.5 * (sc.yn(n - 1, x) - sc.yn(n + 1, x)), saves=("", "n x"))
# jve and yve scale by exp(-|Im z|): for real arguments they are jv and yv
elementwise(sc.jve, _order_derivatives("jve", "j", None, _j_x),
            _real_only("jve", lambda ans, v, x: 0.5 * (sc.jve(v - 1, x) - sc.jve(v + 1, x))),
            saves=("v x", "v x"))
elementwise(sc.yve, _order_derivatives("yve", "y", None, _j_x),
            _real_only("yve", lambda ans, v, x: 0.5 * (sc.yve(v - 1, x) - sc.yve(v + 1, x))),
            saves=("v x", "v x"))


def _struve_term(v: Any, x: Any) -> Any:
    # (x/2)**v / (2 sqrt(pi) gamma(v + 3/2)), the inhomogeneous term of the recurrences
    return np.power(0.5 * x, v) * sc.rgamma(v + 1.5) / (2 * _SQRT_PI)


def _struve_d(f: Any, sign: float) -> Callable[..., Any]:
    # (H_{v-1} -+ H_{v+1}) / 2 + the term; at v = 0 its own form 2/pi -+ H_1, whose
    # derivatives at x = 0 are right (H_{-1}'s rule meets H_{-2}'s x**-1 singularity there)
    def d(ans: Any, v: Any, x: Any) -> Any:
        zero = np.equal(v, 0)
        vs = np.where(zero, 1.0, v)
        general = 0.5 * (f(vs - 1, x) - sign * f(vs + 1, x)) + _struve_term(vs, x)
        return np.where(zero, 2 / np.pi - sign * f(1.0, x), general)

    return d


elementwise(sc.struve, _not_in("scipy.special.struve w.r.t. the order"),
            _struve_d(sc.struve, 1.0), saves=("", "v x"))
elementwise(sc.modstruve, _not_in("scipy.special.modstruve w.r.t. the order"),
            _struve_d(sc.modstruve, -1.0), saves=("", "v x"))
# Kelvin functions: ber + i bei = J0(x e^(3 pi i/4)), ker + i kei = K0(x e^(pi i/4)), both
# solving w'' = i w - w'/x, which gives the derivatives of berp, beip, kerp, keip
elementwise(sc.ber, lambda ans, x: sc.berp(x), saves="x")
elementwise(sc.bei, lambda ans, x: sc.beip(x), saves="x")
elementwise(sc.berp, lambda ans, x: -ans / x - sc.bei(x), saves="ans x")
elementwise(sc.beip, lambda ans, x: -ans / x + sc.ber(x), saves="ans x")
elementwise(sc.ker, lambda ans, x: sc.kerp(x), saves="x")
elementwise(sc.kei, lambda ans, x: sc.keip(x), saves="x")
elementwise(sc.kerp, lambda ans, x: -ans / x - sc.kei(x), saves="ans x")
elementwise(sc.keip, lambda ans, x: -ans / x + sc.ker(x), saves="ans x")


def _airy(i: int) -> Callable[..., Any]:
    return lambda z: sc.airy(z)[i]


multi_output(  # Ai, Ai', Bi, Bi': Ai'' = z Ai, Bi'' = z Bi
    sc.airy,
    [lambda ans, z: _airy(1)(z)], [lambda ans, z: z * _airy(0)(z)],
    [lambda ans, z: _airy(3)(z)], [lambda ans, z: z * _airy(2)(z)],
    saves=("z",) * 4,
)
# integrals of Bessel, Struve and Airy functions: the integrand
elementwise(sc.itstruve0, lambda ans, x: sc.struve(0, x), saves="x")
elementwise(sc.it2struve0, lambda ans, x: -sc.struve(0, x) / x, saves="x")
elementwise(sc.itmodstruve0, lambda ans, x: sc.modstruve(0, x), saves="x")
multi_output(sc.iti0k0, [lambda ans, x: sc.i0(x)], [lambda ans, x: sc.k0(x)],
             saves=("x", "x"))
multi_output(sc.itj0y0, [lambda ans, x: sc.j0(x)], [lambda ans, x: sc.y0(x)],
             saves=("x", "x"))
# (I0(x) - 1)/x and (1 - J0(x))/x cancel near 0: their series there
multi_output(sc.it2i0k0, [lambda ans, x: _guarded(x, lambda v: (sc.i0(v) - 1) / v, _I0M1)],
             [lambda ans, x: -sc.k0(x) / x], saves=("x", "x"))
multi_output(sc.it2j0y0, [lambda ans, x: _guarded(x, lambda v: (1 - sc.j0(v)) / v, _J0M1)],
             [lambda ans, x: -sc.y0(x) / x], saves=("x", "x"))
multi_output(
    sc.itairy,  # integrals from 0 to x of Ai(t), Bi(t), Ai(-t), Bi(-t)
    [lambda ans, x: _airy(0)(x)], [lambda ans, x: _airy(2)(x)],
    [lambda ans, x: _airy(0)(-x)], [lambda ans, x: _airy(2)(-x)],
    saves=("x",) * 4,
)

# ------------------------------------------------------------------ hypergeometric, Wright
# in b: bessel_order.py's series / Bessel forms, as two primitives (first and second
# derivatives in b), each differentiated in z by d/dz 0F1(; b; z) = 0F1(; b+1; z) / b
# differentiated in b
_hyp0f1_db2: Primitive = elementwise(
    lambda b, z: hyp0f1_b_derivative(2, b, z), _not_in("the third derivative of "
                                                       "scipy.special.hyp0f1 w.r.t. b"),
    lambda ans, b, z: (_hyp0f1_db2(b + 1, z) - 2 * _hyp0f1_db1(b + 1, z) / b
                       + 2 * sc.hyp0f1(b + 1, z) / (b * b)) / b,
    name="hyp0f1_b_derivative2", saves=("", "b z"))
_hyp0f1_db1: Primitive = elementwise(
    lambda b, z: hyp0f1_b_derivative(1, b, z), lambda ans, b, z: _hyp0f1_db2(b, z),
    lambda ans, b, z: (_hyp0f1_db1(b + 1, z) - sc.hyp0f1(b + 1, z) / b) / b,
    name="hyp0f1_b_derivative", saves=("b z", "b z"))
elementwise(sc.hyp0f1, lambda ans, b, z: _hyp0f1_db1(b, z),
            lambda ans, b, z: sc.hyp0f1(b + 1, z) / b, saves=("b z", "b z"))
elementwise(sc.hyp1f1, _not_in("scipy.special.hyp1f1 w.r.t. a"),
            _not_in("scipy.special.hyp1f1 w.r.t. b"),
            lambda ans, a, b, z: a / b * sc.hyp1f1(a + 1, b + 1, z), saves=("", "", "a b z"))
elementwise(sc.hyp2f1, _not_in("scipy.special.hyp2f1 w.r.t. a"),
            _not_in("scipy.special.hyp2f1 w.r.t. b"), _not_in("scipy.special.hyp2f1 w.r.t. c"),
            lambda ans, a, b, c, z: a * b / c * sc.hyp2f1(a + 1, b + 1, c + 1, z),
            saves=("", "", "", "a b c z"))
elementwise(sc.hyperu, _not_in("scipy.special.hyperu w.r.t. a"),
            _not_in("scipy.special.hyperu w.r.t. b"),
            lambda ans, a, b, x: -a * sc.hyperu(a + 1, b + 1, x), saves=("", "", "a b x"))
elementwise(sc.wright_bessel, _not_in("scipy.special.wright_bessel w.r.t. a"),
            _not_in("scipy.special.wright_bessel w.r.t. b"),
            lambda ans, a, b, x: sc.wright_bessel(a, a + b, x), saves=("", "", "a b x"))
elementwise(sc.log_wright_bessel, _not_in("scipy.special.log_wright_bessel w.r.t. a"),
            _not_in("scipy.special.log_wright_bessel w.r.t. b"),
            lambda ans, a, b, x: np.exp(sc.log_wright_bessel(a, a + b, x) - ans),
            saves=("", "", "ans a b x"))

# ------------------------------------------------------------------ distribution functions
# (in the continuous variable, and in the probability for the inverses: 1 / the density at
# the result; in the continuous shapes through incomplete.py; counts are not
# differentiated. SciPy floors the counts of the discrete distributions, and so do the
# densities here.)
def _chi2_density(v: Any, x: Any) -> Any:
    return 0.5 * _gammainc_dx(None, 0.5 * v, 0.5 * x)


def _chi2_dv(v: Any, x: Any) -> Any:
    # chdtr(v, x) = gammainc(v/2, x/2)
    return 0.5 * gammainc_da_p(0.5 * v, 0.5 * x)


elementwise(sc.chdtr, lambda ans, v, x: _chi2_dv(v, x),
            lambda ans, v, x: _chi2_density(v, x), saves="v x")
elementwise(sc.chdtrc, lambda ans, v, x: -_chi2_dv(v, x),
            lambda ans, v, x: -_chi2_density(v, x), saves="v x")
elementwise(sc.chdtri,  # inverse of chdtrc: dx/dv = -(-chi2_dv) / (-density)
            lambda ans, v, p: _inverse_d(ans, lambda x: _chi2_dv(v, x),
                                         lambda x: _chi2_density(v, x), (0.0, np.inf),
                                         lambda x: sc.chdtrc(without_derivatives(v), x), p),
            lambda ans, v, p: -1 / _chi2_density(v, ans), saves=("ans v p", "ans v"))


def _gdtr_dx(a: Any, b: Any, x: Any) -> Any:
    # gdtr(a, b, x) = gammainc(b, a x): a is the rate
    return a * _gammainc_dx(None, b, a * x)


elementwise(sc.gdtr, lambda ans, a, b, x: x / a * _gdtr_dx(a, b, x),
            lambda ans, a, b, x: gammainc_da_p(b, a * x),
            lambda ans, a, b, x: _gdtr_dx(a, b, x), saves="a b x")
elementwise(sc.gdtrc, lambda ans, a, b, x: -x / a * _gdtr_dx(a, b, x),
            lambda ans, a, b, x: -gammainc_da_p(b, a * x),
            lambda ans, a, b, x: -_gdtr_dx(a, b, x), saves="a b x")
elementwise(sc.gdtrix,  # gdtr(a, b, ans) = p: ans scales as 1/a
            lambda ans, a, b, p: -ans / a,
            lambda ans, a, b, p: _inverse_d(
                ans, lambda x: gammainc_da_p(b, a * x), lambda x: _gdtr_dx(a, b, x),
                (0.0, np.inf),
                lambda x: sc.gdtr(without_derivatives(a), without_derivatives(b), x), p),
            lambda ans, a, b, p: 1 / _gdtr_dx(a, b, ans),
            saves=("ans a", "ans a b p", "ans a b"))


def _poisson_dm(k: Any, m: Any) -> Any:
    # pdtrc(k, m) = gammainc(floor(k) + 1, m)
    return _gammainc_dx(None, np.floor(k) + 1, m)


elementwise(sc.pdtr, _not_in("scipy.special.pdtr w.r.t. k"),
            lambda ans, k, m: -_poisson_dm(k, m), saves=("", "k m"))
elementwise(sc.pdtrc, _not_in("scipy.special.pdtrc w.r.t. k"),
            lambda ans, k, m: _poisson_dm(k, m), saves=("", "k m"))
elementwise(sc.pdtri, _not_in("scipy.special.pdtri w.r.t. k"),  # inverse of pdtr in m
            lambda ans, k, y: -1 / _poisson_dm(k, ans), saves=("", "ans k"))


def t_log_norm(df: Any) -> Any:
    """log(gamma((df + 1)/2) / (gamma(df/2) sqrt(df pi))), Student t's log normaliser.

    Above df = 1e3 the difference of two gammaln loses digits (at df = 1e12, the 4th):
    there its asymptotic series -log(2 pi)/2 - 1/(4 df) + 1/(24 df**3), whose next term
    is below 1e-16. df = inf gives -log(2 pi)/2, the normal's."""
    big = np.greater(df, 1e3)
    d = np.where(big, 1.0, df)
    near = sc.gammaln(0.5 * (d + 1)) - sc.gammaln(0.5 * d) - 0.5 * np.log(d * np.pi)
    D = np.where(big, df, 1e3)
    far = -0.5 * np.log(2 * np.pi) - 0.25 / D + 1.0 / (24.0 * D * D * D)
    return np.where(big, far, near)


def _t_density(df: Any, t: Any) -> Any:
    # df = inf is the normal density (stdtr is ndtr there; the formula gives inf - inf)
    inf = np.isinf(df)
    d = np.where(inf, 1.0, df)
    student = np.exp(t_log_norm(d) - 0.5 * (d + 1) * np.log1p(t * t / d))
    return np.where(inf, np.exp(-0.5 * t * t) / _SQRT_2PI, student)


def _t_log_density(df: Any, t: Any) -> Any:
    # (finite df: used only where the density underflows, far in a tail)
    d = np.where(np.isinf(df), 1.0, df)
    return t_log_norm(d) - 0.5 * (d + 1) * np.log1p(t * t / d)


def stdtr_ddf(df: Any, t: Any) -> Any:
    """d/ddf of Student's t cdf stdtr(df, t) = I_w(df/2, 1/2)/2 for t < 0 (1 - that for
    t > 0), w = df/(df + t**2): -sign(t) I_a/4 - t f(t)/(2 df), f the density (the
    second term is I_x dw/ddf). I_a from w, or from 1 - w = t**2/(df + t**2) where w
    is near 1. 0 at t = 0 (always 1/2); nan at df = inf (no neighbouring df)."""
    inf = np.isinf(df)
    d = np.where(inf, 1.0, df)
    zero = np.equal(t, 0)
    ts = np.where(zero, 1.0, t)  # (the density of I_v's shape derivative is inf at v = 0)
    t2 = ts * ts
    s = d + t2
    da, _ = betainc_dshapes(0.5 * d, 0.5, d / s, t2 / s)
    out = -0.25 * np.sign(ts) * da - 0.5 * ts * _t_density(d, ts) / d
    # at t = 0 (SciPy's generic logsf evaluates its branch not taken at the median 0):
    # the linear term of both, I_v(1/2, a) ~ 2 sqrt(v) / B(1/2, a) giving
    # -sign(t) I_a / 4 ~ -t (psi(a) - psi(a + 1/2)) / (2 sqrt(df) B(1/2, a)), a = df/2,
    # so that derivatives in t through 0 are right and those in df are 0
    a = 0.5 * d
    slope = (-0.5 * (sc.digamma(a) - sc.digamma(a + 0.5)) * np.exp(-sc.betaln(0.5, a))
             / np.sqrt(d) - 0.5 * np.exp(t_log_norm(d)) / d)
    out = np.where(zero, t * slope, out)
    # at df = inf no difference in df exists (the limit of the slope is 0): nan
    return np.where(inf, np.nan * df, out)  # (nan in its own derivatives too)


elementwise(sc.stdtr, lambda ans, df, t: stdtr_ddf(df, t),
            lambda ans, df, t: _t_density(df, t), saves="df t")
elementwise(sc.stdtrit,  # stdtr(df, ans) = p; the support has no finite end
            lambda ans, df, p: _inverse_d(ans, lambda t: stdtr_ddf(df, t),
                                          lambda t: _t_density(df, t), (np.inf, -np.inf),
                                          lambda t: sc.stdtr(without_derivatives(df), t), p,
                                          lambda t: _t_log_density(df, t)),
            lambda ans, df, p: 1 / _t_density(df, ans), saves=("ans df p", "ans df"))


def _bdtr_dp(k: Any, n: Any, p: Any) -> Any:
    # bdtr(k, n, p) = betainc(n - k, k + 1, 1 - p), k and n floored
    k, n = np.floor(k), np.floor(n)
    return -_beta_density(n - k, k + 1, 1 - p)


def _nbdtr_dp(k: Any, n: Any, p: Any) -> Any:
    # nbdtr(k, n, p) = betainc(n, k + 1, p), k and n floored
    k, n = np.floor(k), np.floor(n)
    return _beta_density(n, k + 1, p)


for _f, _dp in ((sc.bdtr, _bdtr_dp), (sc.nbdtr, _nbdtr_dp)):
    _nm = f"scipy.special.{_f.__name__}"
    elementwise(_f, _not_in(f"{_nm} w.r.t. k"), _not_in(f"{_nm} w.r.t. n"),
                (lambda dp: lambda ans, k, n, p: dp(k, n, p))(_dp), saves=("", "", "k n p"))
    _c = getattr(sc, _f.__name__ + "c")
    elementwise(_c, _not_in(f"{_nm}c w.r.t. k"), _not_in(f"{_nm}c w.r.t. n"),
                (lambda dp: lambda ans, k, n, p: -dp(k, n, p))(_dp), saves=("", "", "k n p"))
    _i = getattr(sc, _f.__name__ + "i")  # the p at which the cdf is y
    elementwise(_i, _not_in(f"{_nm}i w.r.t. k"), _not_in(f"{_nm}i w.r.t. n"),
                (lambda dp: lambda ans, k, n, y: 1 / dp(k, n, ans))(_dp),
                saves=("", "", "ans k n"))
del _f, _dp, _nm, _c, _i


def _fdtr_dx(dfn: Any, dfd: Any, x: Any) -> Any:
    # fdtr = betainc(dfn/2, dfd/2, w), w = dfn x / (dfd + dfn x)
    s = dfd + dfn * x
    w = dfn * x / s
    return np.exp(_log_beta_density(0.5 * dfn, 0.5 * dfd, w)) * dfn * dfd / (s * s)


def _fdtr_ddf(dfn: Any, dfd: Any, x: Any) -> tuple[Any, Any]:
    # fdtr = I_w(dfn/2, dfd/2), w = dfn x / s, 1 - w = dfd / s, s = dfd + dfn x: the
    # shapes' derivatives halved, plus I_x dw/ddfn = fdtr_dx x / dfn (and -x / dfd);
    # 0 at x = 0 and inf, where fdtr is 0 or 1 for every dfn, dfd
    end = np.logical_or(np.equal(x, 0), np.isinf(x))
    xs = np.where(end, 1.0, x)
    s = dfd + dfn * xs
    da, db = betainc_dshapes(0.5 * dfn, 0.5 * dfd, dfn * xs / s, dfd / s)
    dx = _fdtr_dx(dfn, dfd, xs) * xs
    return (np.where(end, 0.0, 0.5 * da + dx / dfn), np.where(end, 0.0, 0.5 * db - dx / dfd))


def _fdtri_d(i: int) -> Callable[..., Any]:
    return lambda ans, dfn, dfd, p: _inverse_d(
        ans, lambda x: _fdtr_ddf(dfn, dfd, x)[i], lambda x: _fdtr_dx(dfn, dfd, x),
        (0.0, np.inf), lambda x: sc.fdtr(without_derivatives(dfn), without_derivatives(dfd), x), p)


elementwise(sc.fdtr, lambda ans, dfn, dfd, x: _fdtr_ddf(dfn, dfd, x)[0],
            lambda ans, dfn, dfd, x: _fdtr_ddf(dfn, dfd, x)[1],
            lambda ans, dfn, dfd, x: _fdtr_dx(dfn, dfd, x), saves="dfn dfd x")
elementwise(sc.fdtrc, lambda ans, dfn, dfd, x: -_fdtr_ddf(dfn, dfd, x)[0],
            lambda ans, dfn, dfd, x: -_fdtr_ddf(dfn, dfd, x)[1],
            lambda ans, dfn, dfd, x: -_fdtr_dx(dfn, dfd, x), saves="dfn dfd x")
elementwise(sc.fdtri, _fdtri_d(0), _fdtri_d(1),
            lambda ans, dfn, dfd, p: 1 / _fdtr_dx(dfn, dfd, ans),
            saves=("ans dfn dfd p", "ans dfn dfd p", "ans dfn dfd"))
# The solvers for a shape parameter: s with F(s, ...) = p, by the implicit function
# theorem (ds = (dp - F_other d other) / F_s), the premise checked as for the inverses
_NO_END = (np.nan, np.nan)  # (no value of the shape is a support's end)


def _solver(F: Callable[..., Any], F_s: Callable[..., Any], *F_others: Any,
            s_at: int, p_at: int) -> list[Callable[..., Any]]:
    """The partials of a shape solver ``sc.X(*args) -> s``: in p, 1 / F_s; in each other
    argument, -F_other / F_s. ``F(*cdf_args)``, ``F_s`` and ``F_others`` take F's
    arguments with s in position ``s_at``; the solver's own arguments are F's with s
    removed and p put at ``p_at``."""
    def cdf_args(args: tuple[Any, ...], s: Any) -> list[Any]:
        rest = [v for i, v in enumerate(args) if i != p_at]
        return [*rest[:s_at], s, *rest[s_at:]]

    def partial(i: int) -> Callable[..., Any]:
        def d(ans: Any, *args: Any) -> Any:
            plain = [without_derivatives(v) for v in args]
            check = lambda s: F(*cdf_args(tuple(plain), s))  # noqa: E731
            if i == p_at:
                num: Callable[[Any], Any] = lambda s: -np.ones_like(s)  # noqa: E731
            else:
                j = i if i < p_at else i - 1  # its index among F's other arguments
                num = lambda s: F_others[j](*cdf_args(args, s))  # noqa: E731
            return _inverse_d(ans, num, lambda s: F_s(*cdf_args(args, s)), _NO_END,
                              check, args[p_at])

        return d

    return [partial(i) for i in range(len(F_others) + 1)]


def _beta_ds(which: int) -> Callable[..., Any]:
    return lambda a, b, x: (betainc_da_p, betainc_db_p)[which](a, b, x)


for _f, _F, _Fs, _others, _sat, _pat in (
        # chdtr(v, x) = p for v
        (sc.chdtriv, sc.chdtr, _chi2_dv, (_chi2_density,), 0, 0),
        # gdtr(a, b, x) = p for b
        (sc.gdtrib, sc.gdtr, lambda a, b, x: gammainc_da_p(b, a * x),
         (lambda a, b, x: x / a * _gdtr_dx(a, b, x), _gdtr_dx), 1, 1),
        # stdtr(df, t) = p for df
        (sc.stdtridf, sc.stdtr, stdtr_ddf, (_t_density,), 0, 0),
        # fdtr(dfn, dfd, x) = p for dfd
        (sc.fdtridfd, sc.fdtr, lambda n, d, x: _fdtr_ddf(n, d, x)[1],
         (lambda n, d, x: _fdtr_ddf(n, d, x)[0], _fdtr_dx), 1, 1),
        # betainc(a, b, x) = p for a, for b
        (sc.btdtria, sc.betainc, _beta_ds(0), (_beta_ds(1), _beta_density), 0, 0),
        (sc.btdtrib, sc.betainc, _beta_ds(1), (_beta_ds(0), _beta_density), 1, 1)):
    _prim = elementwise(_f, *_solver(_F, _Fs, *_others, s_at=_sat, p_at=_pat))
    # (the partials take *args: each reads the value and every argument)
    _prim.saves = ((frozenset(range(-1, len(_others) + 1)), frozenset()),) * (len(_others) + 1)
del _f, _F, _Fs, _others, _sat, _pat, _prim


# the normal distribution's mean and standard deviation: x = mn + std ndtri(p)
elementwise(
    sc.nrdtrimn,  # (p, std, x) -> mn = x - std ndtri(p)
    lambda ans, p, std, x: -std * _SQRT_2PI * np.exp(0.5 * sc.ndtri(p) ** 2),
    lambda ans, p, std, x: -sc.ndtri(p), lambda ans, p, std, x: np.ones_like(ans),
    saves=("p std", "p", "ans"),
)
elementwise(
    sc.nrdtrisd,  # (mn, p, x) -> std = (x - mn) / ndtri(p)
    lambda ans, mn, p, x: -1 / sc.ndtri(p),
    lambda ans, mn, p, x: -ans / sc.ndtri(p) * _SQRT_2PI * np.exp(0.5 * sc.ndtri(p) ** 2),
    lambda ans, mn, p, x: 1 / sc.ndtri(p),
    saves=("p", "ans p", "p"),
)

# ------------------------------------------------------------------ orthogonal polynomials
# (in x, for integer degrees n; each derivative is a lower- or neighbouring-degree member
# of the family, whose factor vanishes at n = 0)
def _poly(name: str, d: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(d)
    def partial(ans: Any, *args: Any) -> Any:
        _integer_degree(name, args[0])
        return d(ans, *args)

    return partial


def _gegenbauer_d(n: Any, alpha: float, x: Any) -> Any:
    # d/dx C_n^(alpha) = 2 alpha C_{n-1}^(alpha+1): no division, so also right at x = +-1
    return np.where(np.greater(n, 0),
                    2 * alpha * sc.eval_gegenbauer(_below(n), alpha + 1, x), 0.0)


def _chebyu_d(n: Any, x: Any) -> Any:
    return _gegenbauer_d(n, 1.0, x)  # U_n = C_n^(1)


def _legendre_d(n: Any, x: Any) -> Any:
    return _gegenbauer_d(n, 0.5, x)  # P_n = C_n^(1/2)


_POLYS: dict[Any, Callable[..., Any]] = {
    sc.eval_hermite: lambda ans, n, x: 2 * n * sc.eval_hermite(_below(n), x),
    sc.eval_hermitenorm: lambda ans, n, x: n * sc.eval_hermitenorm(_below(n), x),
    sc.eval_chebyt: lambda ans, n, x: n * sc.eval_chebyu(_below(n), x),
    sc.eval_chebyu: lambda ans, n, x: _chebyu_d(n, x),
    # C_n(x) = 2 T_n(x/2), S_n(x) = U_n(x/2)
    sc.eval_chebyc: lambda ans, n, x: n * sc.eval_chebys(_below(n), x),
    sc.eval_chebys: lambda ans, n, x: 0.5 * _chebyu_d(n, 0.5 * x),
    # shifted to [0, 1]: T*_n(x) = T_n(2x - 1), U*_n(x) = U_n(2x - 1)
    sc.eval_sh_chebyt: lambda ans, n, x: 2 * n * sc.eval_sh_chebyu(_below(n), x),
    sc.eval_sh_chebyu: lambda ans, n, x: 2 * _chebyu_d(n, 2 * x - 1),
    sc.eval_legendre: lambda ans, n, x: _legendre_d(n, x),
    sc.eval_sh_legendre: lambda ans, n, x: 2 * _legendre_d(n, 2 * x - 1),
    sc.eval_laguerre: lambda ans, n, x: np.where(
        np.greater(n, 0), -sc.eval_genlaguerre(_below(n), 1.0, x), 0.0),
}
for _f, _d in _POLYS.items():
    elementwise(_f, _not_in(f"scipy.special.{_f.__name__} w.r.t. the degree"),
                _poly(_f.__name__, _d), saves=("", "n x"))
del _f, _d
elementwise(sc.eval_genlaguerre, _not_in("scipy.special.eval_genlaguerre w.r.t. the degree"),
            _not_in("scipy.special.eval_genlaguerre w.r.t. alpha"),
            _poly("eval_genlaguerre", lambda ans, n, alpha, x: np.where(
                np.greater(n, 0), -sc.eval_genlaguerre(_below(n), alpha + 1, x), 0.0)),
            saves=("", "", "n alpha x"))
elementwise(sc.eval_gegenbauer, _not_in("scipy.special.eval_gegenbauer w.r.t. the degree"),
            _not_in("scipy.special.eval_gegenbauer w.r.t. alpha"),
            _poly("eval_gegenbauer", lambda ans, n, alpha, x: _gegenbauer_d(n, alpha, x)),
            saves=("", "", "n alpha x"))
elementwise(sc.eval_jacobi, _not_in("scipy.special.eval_jacobi w.r.t. the degree"),
            _not_in("scipy.special.eval_jacobi w.r.t. alpha"),
            _not_in("scipy.special.eval_jacobi w.r.t. beta"),
            _poly("eval_jacobi", lambda ans, n, alpha, beta, x: np.where(
                np.greater(n, 0), 0.5 * (n + alpha + beta + 1)
                * sc.eval_jacobi(_below(n), alpha + 1, beta + 1, x), 0.0)),
            saves=("", "", "", "n alpha beta x"))

# ------------------------------------------------------------------ complex-valued functions
# (holomorphic in their complex argument: the JVP multiplies by f'(z), as for np.exp)
elementwise(sc.wofz, lambda ans, z: -2 * z * ans + 2j / _SQRT_PI, saves="ans z")
for _f, _sign in ((sc.hankel1, -1j), (sc.hankel2, 1j)):
    _nm = _f.__name__
    elementwise(_f, _not_in(f"scipy.special.{_nm} w.r.t. the order"),
                (lambda f: lambda ans, v, z: 0.5 * (f(v - 1, z) - f(v + 1, z)))(_f),
                saves=("", "v z"))
    _e = getattr(sc, _nm + "e")  # hankel1e = hankel1 e^(-iz), hankel2e = hankel2 e^(iz)
    elementwise(_e, _not_in(f"scipy.special.{_nm}e w.r.t. the order"),
                (lambda f, s: lambda ans, v, z: 0.5 * (f(v - 1, z) - f(v + 1, z)) + s * ans)(
                    _e, _sign), saves=("", "ans v z"))
del _f, _sign, _nm, _e


def _kelvin(i: int) -> Callable[..., Any]:
    return lambda x: sc.kelvin(x)[i]


multi_output(  # Be = ber + i bei, Ke = ker + i kei, and their derivatives: w'' = i w - w'/x
    sc.kelvin,
    [lambda ans, x: _kelvin(2)(x)], [lambda ans, x: _kelvin(3)(x)],
    [lambda ans, x: 1j * _kelvin(0)(x) - ans / x], [lambda ans, x: 1j * _kelvin(1)(x) - ans / x],
    saves=("x", "x", "ans x", "ans x"),
)


def _voigt_w(x: Any, sigma: Any, gamma: Any) -> tuple[Any, Any]:
    # z = (x + i gamma) / (sigma sqrt 2) and w'(z), with voigt_profile = Re w(z) / (sigma
    # sqrt(2 pi))
    z = (x + 1j * gamma) / (sigma * np.sqrt(2.0))
    return z, -2 * z * sc.wofz(z) + 2j / _SQRT_PI


def _voigt_dx(ans: Any, x: Any, sigma: Any, gamma: Any) -> Any:
    _, dw = _voigt_w(x, sigma, gamma)
    return np.real(dw) / (2 * sigma * sigma * _SQRT_PI)


def _voigt_dgamma(ans: Any, x: Any, sigma: Any, gamma: Any) -> Any:
    _, dw = _voigt_w(x, sigma, gamma)
    return -np.imag(dw) / (2 * sigma * sigma * _SQRT_PI)


def _voigt_dsigma(ans: Any, x: Any, sigma: Any, gamma: Any) -> Any:
    z, dw = _voigt_w(x, sigma, gamma)
    return -ans / sigma - np.real(dw * z) / (sigma * sigma * _SQRT_2PI)


elementwise(sc.voigt_profile, _voigt_dx, _voigt_dsigma, _voigt_dgamma,
            saves=("x sigma gamma", "ans x sigma gamma", "x sigma gamma"))

# ------------------------------------------------------------------ more, by recurrences
elementwise(  # int_0^1 x^lmb J_nu(2 a x) dx, and J_nu' = (J_{nu-1} - J_{nu+1}) / 2
    sc.besselpoly,
    lambda ans, a, lmb, nu: sc.besselpoly(a, lmb + 1, nu - 1) - sc.besselpoly(a, lmb + 1, nu + 1),
    _not_in("scipy.special.besselpoly w.r.t. lmb"), _not_in("scipy.special.besselpoly w.r.t. nu"),
    saves=("a lmb nu", "", ""),
)
elementwise(  # (1 - x**2) P' = (v + 1) x P_v^m - (v - m + 1) P_{v+1}^m
    sc.lpmv, _not_in("scipy.special.lpmv w.r.t. m"), _not_in("scipy.special.lpmv w.r.t. v"),
    lambda ans, m, v, x: ((v + 1) * x * ans - (v - m + 1) * sc.lpmv(m, v + 1, x)) / (1 - x * x),
    saves=("", "", "ans m v x"),
)
elementwise(  # gdtr depends on a x only: a = gdtrix(1, b, p) / x
    sc.gdtria, lambda ans, p, b, x: 1 / (x * _gammainc_dx(None, b, ans * x)),
    lambda ans, p, b, x: _inverse_d(
        ans, lambda a: gammainc_da_p(b, a * x), lambda a: x * _gammainc_dx(None, b, a * x),
        (0.0, np.inf), lambda a: sc.gdtr(a, without_derivatives(b), without_derivatives(x)), p),
    lambda ans, p, b, x: -ans / x,
    saves=("ans b x", "ans p b x", "ans x"),
)


def _pb(ufunc: Any, i: int) -> Callable[..., Any]:
    return lambda v, x: ufunc(v, x)[i]


# parabolic cylinder functions, returned with their derivatives; the second derivative
# from the differential equation: D'' = (x**2/4 - v - 1/2) D, V'' likewise, W'' = (a - x**2/4) W
for _f, _q in ((sc.pbdv, lambda v, x: 0.25 * x * x - v - 0.5),
               (sc.pbvv, lambda v, x: 0.25 * x * x - v - 0.5),
               (sc.pbwa, lambda a, x: a - 0.25 * x * x)):
    _nv = _not_in(f"scipy.special.{_f.__name__} w.r.t. the order")
    multi_output(_f, [_nv, (lambda f: lambda ans, v, x: _pb(f, 1)(v, x))(_f)],
                 [_nv, (lambda f, q: lambda ans, v, x: q(v, x) * _pb(f, 0)(v, x))(_f, _q)],
                 saves=[("", "v x"), ("", "v x")])
del _f, _q, _nv
# modified Fresnel integrals: fp = int_x^inf exp(i t**2) dt, kp = fp exp(-i (x**2 + pi/4)) /
# sqrt(pi); fm, km the same with -i (real arguments)
_EPI4 = np.exp(0.25j * np.pi) / _SQRT_PI
multi_output(sc.modfresnelp, [lambda ans, x: -np.exp(1j * x * x)],
             [lambda ans, x: -2j * x * ans - np.conj(_EPI4)], saves=("x", "ans x"))
multi_output(sc.modfresnelm, [lambda ans, x: -np.exp(-1j * x * x)],
             [lambda ans, x: 2j * x * ans - _EPI4], saves=("x", "ans x"))


def _airye(i: int) -> Callable[..., Any]:
    return lambda z: sc.airye(z)[i]


def _sqrt_pos(x: Any) -> Any:
    # eBi = Bi exp(-|Re zeta|), zeta = 2/3 x**1.5: real part x**1.5 for x > 0, 0 for x < 0
    # (the inner where keeps sqrt's infinite derivative at 0 out of nested derivatives)
    pos = np.greater(x, 0)
    return np.where(pos, np.sqrt(np.where(pos, x, 1.0)), 0.0)


multi_output(  # exponentially scaled Airy functions: eAi = Ai exp(zeta), zeta' = sqrt(z)
    sc.airye,
    [lambda ans, z: _airye(1)(z) + np.sqrt(z) * ans],
    [lambda ans, z: z * _airye(0)(z) + np.sqrt(z) * ans],
    [_real_only("airye", lambda ans, z: _airye(3)(z) - _sqrt_pos(z) * ans)],
    [_real_only("airye", lambda ans, z: z * _airye(2)(z) - _sqrt_pos(z) * ans)],
    saves=("ans z",) * 4,
)


def _sh_jacobi_dx(ans: Any, n: Any, p: Any, q: Any, x: Any) -> Any:
    # G_n^(p,q)(x) = n! gamma(n+p) / gamma(2n+p) P_n^(p-q, q-1)(2x - 1), and
    # P_n^(a,b)' = (n + a + b + 1)/2 P_{n-1}^(a+1, b+1)
    c = np.exp(sc.gammaln(n + 1) + sc.gammaln(n + p) - sc.gammaln(2 * n + p))
    lower = sc.eval_jacobi(_below(n), p - q + 1, q, 2 * x - 1)
    return np.where(np.greater(n, 0), c * (n + p) * lower, 0.0)


elementwise(sc.eval_sh_jacobi, _not_in("scipy.special.eval_sh_jacobi w.r.t. the degree"),
            _not_in("scipy.special.eval_sh_jacobi w.r.t. p"),
            _not_in("scipy.special.eval_sh_jacobi w.r.t. q"),
            _poly("eval_sh_jacobi", _sh_jacobi_dx), saves=("", "", "", "n p q x"))


def _tukey_quantile_d(f: Any, lm: Any) -> Any:
    # dQ/dF of the Tukey-lambda quantile Q(F) = (F**lm - (1-F)**lm) / lm
    return _pow(f, lm - 1) + _pow(1 - f, lm - 1)


def _tukey_quantile_dlm(f: Any, lm: Any) -> Any:
    # dQ/dlm: each term is a boxcox in lm (see boxcox above)
    lf, lg = np.log(f), np.log1p(-f)
    return lf * lf * _exprel_d(lm * lf) - lg * lg * _exprel_d(lm * lg)


elementwise(  # the cdf inverts the quantile: dF = (dx - dQ/dlm dlm) / (dQ/dF)
    sc.tklmbda,
    lambda ans, x, lm: 1 / _tukey_quantile_d(ans, lm),
    lambda ans, x, lm: -_tukey_quantile_dlm(ans, lm) / _tukey_quantile_d(ans, lm),
    saves=("ans lm", "ans lm"),
)


# ------------------------------------------------------------------ noncentral chi-square
def _ncx2_density(x: Any, df: Any, nc: Any) -> Any:
    # 1/2 e^(-(x+nc)/2) (x/nc)^(df/4 - 1/2) I_(df/2-1)(sqrt(nc x)), I through ive (scaled)
    r = np.sqrt(nc * x)
    return 0.5 * np.exp(-0.5 * (x + nc) + r + (0.25 * df - 0.5) * np.log(x / nc)) * sc.ive(
        0.5 * df - 1, r)


def _ncx2_dnc(x: Any, df: Any, nc: Any) -> Any:
    # a Poisson(nc/2) mixture of central cdfs with df + 2j: d/dnc = (F_{df+2} - F_df) / 2
    return 0.5 * (sc.chndtr(x, df + 2, nc) - sc.chndtr(x, df, nc))


elementwise(sc.chndtr, lambda ans, x, df, nc: _ncx2_density(x, df, nc),
            _not_in("scipy.special.chndtr w.r.t. df"),
            lambda ans, x, df, nc: _ncx2_dnc(x, df, nc), saves=("x df nc", "", "x df nc"))
elementwise(  # chndtr(ans, df, nc) = p
    sc.chndtrix, lambda ans, p, df, nc: 1 / _ncx2_density(ans, df, nc),
    _not_in("scipy.special.chndtrix w.r.t. df"),
    lambda ans, p, df, nc: -_ncx2_dnc(ans, df, nc) / _ncx2_density(ans, df, nc),
    saves=("ans df nc", "", "ans df nc"))
elementwise(  # chndtr(x, df, ans) = p
    sc.chndtrinc, lambda ans, x, df, p: -_ncx2_density(x, df, ans) / _ncx2_dnc(x, df, ans),
    _not_in("scipy.special.chndtrinc w.r.t. df"),
    lambda ans, x, df, p: 1 / _ncx2_dnc(x, df, ans),
    saves=("ans x df", "", "ans x df"))
