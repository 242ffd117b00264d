"""scipy.special ufuncs (they reach dualrev through ``__array_ufunc__`` like NumPy's).

Each entry gives the partial derivative of each argument. Orders of Bessel functions
and of polygamma_p, and the shape parameter of the incomplete gamma functions, are
arguments dualrev does not differentiate: a traced value there raises rather than
silently getting a zero derivative.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.special as sc

from ..errors import NoDerivativeRule
from ..primitive import is_complex, register_function
from .elementwise import _div, elementwise

_SQRT_PI = np.sqrt(np.pi)
_SQRT_2PI = np.sqrt(2 * np.pi)


def _not_in(what: str) -> Any:
    """A partial for an argument dualrev does not differentiate: raises if it is traced."""

    def partial(ans: Any, *args: Any) -> Any:
        raise NoDerivativeRule(what, "Only its other argument can be differentiated.")

    return partial


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
def _polygamma_impl(n: Any, x: Any) -> Any:
    if np.iscomplexobj(x):  # SciPy's zeta, behind polygamma_p, is real-only
        raise NoDerivativeRule(
            "scipy.special.polygamma of a complex argument",
            "SciPy defines polygamma_p (the derivative of psi, and so the second derivative "
            "of gamma and loggamma) for real arguments only.")
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
    return np.exp(-x + (a - 1) * np.log(x) - sc.gammaln(a))


elementwise(sc.gammainc, _not_in("scipy.special.gammainc w.r.t. a"), _gammainc_dx,
            saves=("", "a x"))
elementwise(sc.gammaincc, _not_in("scipy.special.gammaincc w.r.t. a"),
            lambda ans, a, x: -_gammainc_dx(ans, a, x), saves=("", "ans a x"))


# ------------------------------------------------------------------ logistic, logs
elementwise(sc.expit, lambda ans, x: ans * (1 - ans), saves="ans")
elementwise(sc.logit, lambda ans, x: _div(1.0, x * (1 - x)), saves="x")
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
elementwise(sc.i1e, lambda ans, x: 0.5 * (sc.i0e(x) + sc.ive(2, x)) - np.sign(x) * ans,
            saves="ans x")
elementwise(sc.iv, _not_in("scipy.special.iv w.r.t. the order"),
            lambda ans, v, x: 0.5 * (sc.iv(v - 1, x) + sc.iv(v + 1, x)), saves=("", "v x"))
elementwise(sc.ive, _not_in("scipy.special.ive w.r.t. the order"),
            lambda ans, v, x: 0.5 * (sc.ive(v - 1, x) + sc.ive(v + 1, x)) - np.sign(x) * ans,
            saves=("", "ans v x"))
elementwise(sc.j0, lambda ans, x: -sc.j1(x), saves="x")
elementwise(sc.j1, lambda ans, x: 0.5 * (sc.j0(x) - sc.jv(2, x)), saves="x")
elementwise(sc.jv, _not_in("scipy.special.jv w.r.t. the order"),
            lambda ans, v, x: 0.5 * (sc.jv(v - 1, x) - sc.jv(v + 1, x)), saves=("", "v x"))
elementwise(sc.y0, lambda ans, x: -sc.y1(x), saves="x")
elementwise(sc.y1, lambda ans, x: 0.5 * (sc.y0(x) - sc.yv(2, x)), saves="x")
elementwise(sc.yv, _not_in("scipy.special.yv w.r.t. the order"),
            lambda ans, v, x: 0.5 * (sc.yv(v - 1, x) - sc.yv(v + 1, x)), saves=("", "v x"))


@register_function(np.i0)
def _i0(x: Any) -> Any:
    """``numpy.i0`` on traced values: SciPy's ``i0`` (the same function; NumPy's
    Chebyshev series agrees to rounding), in x's precision."""
    if is_complex(x):
        raise TypeError("i0 not supported for complex values")
    return sc.i0(x)
