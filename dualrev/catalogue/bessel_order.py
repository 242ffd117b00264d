"""Derivatives of Bessel functions in their order, and of ``hyp0f1`` in b, on plain values.

The numerical core of the order derivatives that special.py registers: for real v and
x > 0 it returns the n-th derivative in v (n = 0, 1, 2; n = 0 is the function itself, which
the tests compare with SciPy's to check the method) of J_v, Y_v, I_v e^-x and K_v e^x.

Methods (DLMF §10.9, §10.32, §10.8/10.25):

* J_v, I_v: the power series in (x/2)^2, differentiated term by term in v (each term's
  v-derivative is the term times ln(x/2) - psi(v+k+1), its second derivative the term
  times (ln(x/2) - psi)^2 - psi'), and Schläfli's integrals (DLMF 10.9.6, 10.32.4: a
  finite integral over [0, pi] and a sin(v pi)-weighted one over [0, inf)) differentiated
  under the integral sign. The series first; where it cancels, the integral too, and
  the one with the smaller error estimate wins: the series where x^2/4 is small against
  v + 1, the integral in the oscillatory region.
* Y_v: Schläfli's integral (DLMF 10.9.7) alone; in the region where Y_v is large its
  infinite part is a positive integrand, so there is no cancellation anywhere but near
  zeros of the result.
* K_v: K_v(x) = int_0^inf e^(-x cosh t) cosh(v t) dt (DLMF 10.32.9): the n-th
  derivative has the positive integrand t^n cosh or sinh(v t) e^(-x cosh t).
* J_v at large orders with x a little below v (the transition region, where the series
  and the integrals both cancel): Miller's backward recurrence in the order for J and its
  two v-derivatives, normalised by SciPy's J_v(x).
* Negative orders by the reflections DLMF 10.4.7-8 and 10.27.2-3 (K_-v = K_v).

Every point carries an error estimate (eps times the sum of the absolute values added);
the best method per point is kept, and a point still above 1e-9 of its scale is refused
by name rather than given as a wrong number.

The infinite integrals are Laplace-type (a concave exponent): each is integrated by
composite Gauss-Legendre over the interval where its exponent is within 50 of its maximum
(its ends found by Newton steps), shifted by that maximum so that huge and tiny values keep their
relative precision; the finite ones by composite Gauss-Legendre with panels short enough
for the oscillation (x + |v|; J, Y, I refuse x + |v| > 2e4). Everything is vectorised
over the points, in groups of equal quadrature size, so that a point's result does not
depend on the array it is in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.special as sc

from ..errors import NoDerivativeRule

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(20)
_DROP = 50.0  # the integrands are cut where their exponent is this far below its maximum
_INF_PANELS = 12
# the ends of the infinite integrals need not be tight, only safe (see _laplace): Newton
# steps from outside, which converge quadratically near the end
_NEWTON = 12
_MILLER_STEPS = 8000.0
_X_MAX = 2e4  # J, Y, I: the [0, pi] quadrature's nodes grow like x + |v|
_SERIES_X_MAX = 1000.0  # beyond this the series needs too many terms and is not tried


def _sincos_pi(mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # sin(pi mu), cos(pi mu), exactly 0 and +-1 at integers (np.sin(np.pi * n) is not 0,
    # and multiplies Y_n, huge at small x, in the reflection formulas)
    n = np.round(mu)
    f = mu - n
    sign = np.where(np.equal(np.mod(n, 2), 0), 1.0, -1.0)
    return sign * np.sin(np.pi * f), sign * np.cos(np.pi * f)


def _trig_pi_derivative(s: np.ndarray, c: np.ndarray, j: int, sine: bool) -> np.ndarray:
    # the j-th derivative in mu of sin(pi mu) (sine) or cos(pi mu)
    seq = (s, c, -s, -c) if sine else (c, -s, -c, s)
    return math.pi ** j * seq[j % 4]


def _panels(a: np.ndarray, b: np.ndarray, panels: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes and weights on [a, b] per point: shape (m, nodes)."""
    frac = np.linspace(0.0, 1.0, panels + 1)
    edges = a[:, None] + (b - a)[:, None] * frac
    half = 0.5 * np.diff(edges, axis=1)
    mid = edges[:, :-1] + half
    t = mid[:, :, None] + half[:, :, None] * _NODES
    w = half[:, :, None] * _WEIGHTS
    m = a.shape[0]
    return t.reshape(m, -1), w.reshape(m, -1)


def _laplace(phi: Callable[[np.ndarray], np.ndarray], dphi: Callable[[np.ndarray], np.ndarray],
             tstar: np.ndarray, x: np.ndarray, powers: tuple[int, ...], sign: float = 1.0,
             ) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """int_0^inf (sign t)^k e^phi(t) dt for each k in powers, phi concave with its maximum
    at tstar >= 0 (per point; dphi its derivative, on the points' 1-d arrays). Returns the
    shift phi(tstar) and, per k, the integral and the integral of its absolute value, both
    times e^-shift."""
    top = phi(tstar)
    target = top - _DROP
    # the ends, where phi = target: Newton's method on the concave phi from outside the
    # root never crosses it (the tangent lies above phi), so every iterate is a safe end
    # and the iterations only tighten it. Upper: phi drops by _DROP within
    # asinh(100/x + 10) of its maximum for every exponent used here (x cosh, x sinh, plus
    # or minus a linear term)
    upper = tstar + np.arcsinh(100.0 / x + 10.0)
    lower = np.zeros_like(tstar)
    far = phi(lower) < target  # else the lower end is 0
    with np.errstate(all="ignore"):
        for _ in range(_NEWTON):
            step = (phi(upper) - target) / dphi(upper)
            upper = np.where(np.isfinite(step) & (step > 0), upper - step, upper)
            step = (phi(lower) - target) / dphi(lower)
            lower = np.where(far & np.isfinite(step) & (step < 0), lower - step, lower)
    t, w = _panels(lower, upper, _INF_PANELS)
    with np.errstate(over="ignore", under="ignore"):
        base = w * np.exp(phi(t) - top[:, None])
    vals, absv = [], []
    for k in powers:
        term = base * (sign * t) ** k if k else base
        vals.append(term.sum(axis=1))
        absv.append(np.abs(term).sum(axis=1))
    return top, vals, absv


def _sizes(x: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Per point, a power of two that sets the panels on [0, pi] (short enough for the
    frequencies up to x + mu) and the series' terms. Points are computed in groups of
    equal size, so that a point's result does not depend on the others in its array
    (vmap gives what a loop gives)."""
    need = np.ceil((x + mu) * math.pi / 14.0) + 2.0
    return 2.0 ** np.ceil(np.log2(np.maximum(need, 4.0)))


def _finite(x: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # nodes and weights on [0, pi]: the group's panel count (see _sizes)
    panels = int(np.max(_sizes(x, mu), initial=4.0))
    m = x.shape[0]
    return _panels(np.zeros(m), np.full(m, math.pi), panels)


def _cos_shift(arg: np.ndarray, n: int) -> np.ndarray:
    # cos(arg + n pi/2), exactly (np.cos(pi/2) is 6e-17, not 0: at v = 0 the derivative
    # of I_v is -K_0(x), which that rounding would swamp)
    return (np.cos, lambda a: -np.sin(a), lambda a: -np.cos(a), np.sin)[n % 4](arg)


def _sin_shift(arg: np.ndarray, n: int) -> np.ndarray:
    # sin(arg + n pi/2), exactly
    return (np.sin, np.cos, lambda a: -np.sin(a), lambda a: -np.cos(a))[n % 4](arg)


def _leibniz(n: int, f: Callable[[int], np.ndarray], g: Callable[[int], np.ndarray]) -> np.ndarray:
    # the n-th derivative of a product from the factors' derivatives
    return sum(math.comb(n, k) * f(n - k) * g(k) for k in range(n + 1))


# ------------------------------------------------------------------ the series (J, I)
def _series(kind: str, mu: np.ndarray, x: np.ndarray, orders: tuple[int, ...],
            scaled: bool = False) -> Any:
    """J_mu (kind "j") or I_mu e^-x (kind "i") and their mu-derivatives by the power
    series: per order, the value and the sum of the terms' absolute values, each weighted
    by its rounding (inf where the series was not tried or did not converge). With
    ``scaled``: the values divided by e^shift, and the shift."""
    # J's series cancels like e^(x^2 / (2 (mu + 1))): hopeless well above the order,
    # where the integral does not cancel
    tried = (x <= _SERIES_X_MAX) & ((kind == "i") | (x <= mu + 30.0))
    xs = np.where(tried, x, 1.0)
    # enough terms for the largest x of the group (x <= 14 (size - 2) / pi - mu)
    xmax = float(np.max(np.minimum(_sizes(x, mu) * 14.0 / math.pi, _SERIES_X_MAX),
                        initial=1.0))
    terms = int(min(1.3 * xmax + 40.0, 1340.0))
    k = np.arange(terms, dtype=float)
    a = mu[:, None] + k + 1.0
    lx = np.log(0.5 * xs)[:, None]
    power, g1, g2 = (2 * k + mu[:, None]) * lx, sc.gammaln(k + 1), sc.gammaln(a)
    logt = power - g1 - g2
    # the absolute rounding of logt, in units of eps: exp turns it into the term's
    # relative error (at large x the parts are 1e3 and cancel to a small logt)
    logerr = 1.0 + np.abs(power) + g1 + np.abs(g2)
    if kind == "i":
        logt = logt - xs[:, None]
        logerr = logerr + xs[:, None]
    shift = np.max(logt, axis=1)
    t = np.exp(logt - shift[:, None])
    if kind == "j":
        t = t * np.where(np.equal(np.mod(k, 2), 0), 1.0, -1.0)
    dl = lx - sc.digamma(a)
    weights = {0: None, 1: dl, 2: None}
    if 2 in orders:
        weights[2] = dl * dl - sc.polygamma(1, a)
    vals, absv = [], []
    if scaled:
        return [(t if n == 0 else t * weights[n]).sum(axis=1) for n in orders], shift
    scale = np.exp(shift)
    for n in orders:
        term = t if n == 0 else t * weights[n]
        s = term.sum(axis=1)
        # each term's rounding (see logerr): an error estimate the choice of method and
        # the refusal can trust
        total = (np.abs(term) * logerr).sum(axis=1)
        tail = np.abs(term[:, -3:]).sum(axis=1)
        ok = tried & (tail <= 1e-18 * total)
        vals.append(s * scale)
        absv.append(np.where(ok, total * scale, np.inf))
    return vals, absv


# ------------------------------------------------------------------ Schläfli's integrals
def _j_integral(mu: np.ndarray, x: np.ndarray, orders: tuple[int, ...],
                ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    # J_mu(x) = (1/pi) int_0^pi cos(mu th - x sin th) dth
    #           - (sin(mu pi)/pi) int_0^inf e^(-x sinh t - mu t) dt
    th, w = _finite(x, mu)
    arg = mu[:, None] * th - x[:, None] * np.sin(th)
    s, c = _sincos_pi(mu)
    top, g, gabs = _laplace(lambda t: -x[:, None] * np.sinh(t) - mu[:, None] * t
                            if t.ndim == 2 else -x * np.sinh(t) - mu * t,
                            lambda t: -x * np.cosh(t) - mu,
                            np.zeros_like(x), x, tuple(range(max(orders) + 1)), sign=-1.0)
    e = np.exp(top)
    vals, absv = [], []
    for n in orders:
        fin = w * th ** n * _cos_shift(arg, n)
        inf = _leibniz(n, lambda j: _trig_pi_derivative(s, c, j, True), lambda j: g[j] * e)
        inf_abs = sum(math.comb(n, j) * np.abs(_trig_pi_derivative(s, c, n - j, True))
                      * gabs[j] * e for j in range(n + 1))
        vals.append((fin.sum(axis=1) - inf) / math.pi)
        absv.append((np.abs(fin).sum(axis=1) + inf_abs) / math.pi)
    return vals, absv


def _y_integral(mu: np.ndarray, x: np.ndarray, orders: tuple[int, ...],
                ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    # Y_mu(x) = (1/pi) int_0^pi sin(x sin th - mu th) dth
    #           - (1/pi) int_0^inf (e^(mu t) + e^(-mu t) cos(mu pi)) e^(-x sinh t) dt
    th, w = _finite(x, mu)
    arg = x[:, None] * np.sin(th) - mu[:, None] * th
    s, c = _sincos_pi(mu)
    ks = tuple(range(max(orders) + 1))

    def phi_a(t: np.ndarray) -> np.ndarray:
        if t.ndim == 2:
            return mu[:, None] * t - x[:, None] * np.sinh(t)
        return mu * t - x * np.sinh(t)

    def phi_b(t: np.ndarray) -> np.ndarray:
        if t.ndim == 2:
            return -mu[:, None] * t - x[:, None] * np.sinh(t)
        return -mu * t - x * np.sinh(t)

    ta = np.arccosh(np.maximum(mu / x, 1.0))
    top_a, ga, ga_abs = _laplace(phi_a, lambda t: mu - x * np.cosh(t), ta, x, ks)
    top_b, gb, gb_abs = _laplace(phi_b, lambda t: -mu - x * np.cosh(t), np.zeros_like(x),
                                 x, ks, sign=-1.0)
    with np.errstate(over="ignore"):
        ea, eb = np.exp(top_a), np.exp(top_b)
    vals, absv = [], []
    for n in orders:
        fin = w * (-th) ** n * _sin_shift(arg, n)
        inf = ga[n] * ea + _leibniz(n, lambda j: _trig_pi_derivative(s, c, j, False),
                                    lambda j: gb[j] * eb)
        inf_abs = ga_abs[n] * ea + sum(
            math.comb(n, j) * np.abs(_trig_pi_derivative(s, c, n - j, False)) * gb_abs[j] * eb
            for j in range(n + 1))
        vals.append((fin.sum(axis=1) - inf) / math.pi)
        absv.append((np.abs(fin).sum(axis=1) + inf_abs) / math.pi)
    return vals, absv


def _i_integral(mu: np.ndarray, x: np.ndarray, orders: tuple[int, ...],
                ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    # I_mu(x) e^-x = (1/pi) int_0^pi e^(x (cos th - 1)) cos(mu th) dth
    #                - (sin(mu pi)/pi) int_0^inf e^(-x (cosh t + 1) - mu t) dt
    th, w = _finite(x, mu)
    env = np.exp(-2.0 * x[:, None] * np.sin(0.5 * th) ** 2)
    s, c = _sincos_pi(mu)

    def phi(t: np.ndarray) -> np.ndarray:
        if t.ndim == 2:
            return -x[:, None] * (np.cosh(t) + 1.0) - mu[:, None] * t
        return -x * (np.cosh(t) + 1.0) - mu * t

    top, g, gabs = _laplace(phi, lambda t: -x * np.sinh(t) - mu, np.zeros_like(x), x,
                            tuple(range(max(orders) + 1)),
                            sign=-1.0)
    e = np.exp(top)
    vals, absv = [], []
    for n in orders:
        fin = w * env * th ** n * _cos_shift(mu[:, None] * th, n)
        inf = _leibniz(n, lambda j: _trig_pi_derivative(s, c, j, True), lambda j: g[j] * e)
        inf_abs = sum(math.comb(n, j) * np.abs(_trig_pi_derivative(s, c, n - j, True))
                      * gabs[j] * e for j in range(n + 1))
        vals.append((fin.sum(axis=1) - inf) / math.pi)
        absv.append((np.abs(fin).sum(axis=1) + inf_abs) / math.pi)
    return vals, absv


def _k_integral(mu: np.ndarray, x: np.ndarray, orders: tuple[int, ...]) -> list[np.ndarray]:
    # K_mu(x) e^x = int_0^inf cosh(mu t) e^(-x (cosh t - 1)) dt, mu >= 0; the n-th
    # derivative has t^n and cosh (n even) or sinh (n odd): two positive Laplace integrals
    ks = tuple(range(max(orders) + 1))

    def phi(sgn: float) -> Callable[[np.ndarray], np.ndarray]:
        def f(t: np.ndarray) -> np.ndarray:
            if t.ndim == 2:
                return sgn * mu[:, None] * t - 2.0 * x[:, None] * np.sinh(0.5 * t) ** 2
            return sgn * mu * t - 2.0 * x * np.sinh(0.5 * t) ** 2
        return f

    top_p, gp, _ = _laplace(phi(1.0), lambda t: mu - x * np.sinh(t), np.arcsinh(mu / x), x, ks)
    top_m, gm, _ = _laplace(phi(-1.0), lambda t: -mu - x * np.sinh(t), np.zeros_like(x), x,
                            ks)
    out = []
    with np.errstate(over="ignore"):
        for n in orders:
            sgn = 1.0 if n % 2 == 0 else -1.0
            # e^top_m <= 1 <= e^top_p: factor out e^top_p (the larger) before adding
            rel = gm[n] * np.exp(top_m - top_p)
            out.append(0.5 * np.exp(top_p) * (gp[n] + sgn * rel))
    return out


# ------------------------------------------------------------------ per function, mu >= 0
Pair = tuple[list[np.ndarray], list[np.ndarray]]  # per order 0, 1, 2: values, sums of |terms|
_ORDERS = (0, 1, 2)
_EPS = np.finfo(float).eps
# a result is refused where its rounding error, estimated as eps times the sum of the
# absolute values of what was added, exceeds this fraction of the largest of the
# function and its first two order derivatives at the point (the scale: near a zero of
# one of them the others are not small)
_TRUST = 1e-9


def _best(a: Pair, b: Pair) -> Pair:
    # per order and point, the result with the smaller sum of |terms| (rounding error)
    pick = [ab <= bb for ab, bb in zip(a[1], b[1], strict=True)]
    return ([np.where(p, av, bv) for p, av, bv in zip(pick, a[0], b[0], strict=True)],
            [np.where(p, ab, bb) for p, ab, bb in zip(pick, a[1], b[1], strict=True)])


def _series_or_integral(kind: str, mu: np.ndarray, x: np.ndarray) -> Pair:
    # the series, and the integral only where the series cancels by more than 50 (an
    # error above ~1e-14: the integral may do better), the better of the two there
    vals, absv = _series(kind, mu, x, _ORDERS)
    need = np.zeros(x.shape, dtype=bool)
    for val, total in zip(vals, absv, strict=True):
        need |= ~(total <= 50.0 * np.abs(val))
    if np.any(need):
        integral = (_j_integral if kind == "j" else _i_integral)(mu[need], x[need], _ORDERS)
        sub = ([val[need] for val in vals], [total[need] for total in absv])
        best = _best(sub, integral)
        for val, total, bv, bt in zip(vals, absv, best[0], best[1], strict=True):
            val[need] = bv
            total[need] = bt
    return vals, absv


def _j_recurrence(mu: np.ndarray, x: np.ndarray) -> Pair:
    """J_mu and its first two mu-derivatives for x below mu, by Miller's method: the
    series at an order mu + N high enough for it not to cancel (x^2 / (2 (mu + N)) <= 7,
    so by less than e^7), then down by the three-term recurrence J_{v-1} = (2v/x) J_v -
    J_{v+1} and its derivatives in v, D_{v-1} = (2/x) J_v + (2v/x) D_v - D_{v+1} and
    E_{v-1} = (4/x) D_v + (2v/x) E_v - E_{v+1}, rescaled as it grows, and normalised by
    SciPy's J_mu(x) at the end (its uniform asymptotic expansions are accurate there).
    Downwards J is the minimal solution's direction: the Y-like part of the start's
    errors dies out. For the transition region x ~ mu at large mu, where the series and
    the integrals both cancel."""
    steps = int(np.max(np.ceil(np.maximum(x * x / 14.0 - mu, 0.0)), initial=0.0)) + 2
    top = mu + steps
    # the series at the two start orders, each divided by its own scale e^shift; the
    # upper one is brought to the lower one's scale (their ratio is about x / (2 top))
    hi_s, hi_shift = _series("j", top + 1.0, x, _ORDERS, scaled=True)
    lo, lo_shift = _series("j", top, x, _ORDERS, scaled=True)
    ratio = np.exp(hi_shift - lo_shift)
    hi = [h * ratio for h in hi_s]
    for k in range(steps):
        v = top - k
        j0, j1, j2 = lo
        nxt = [(2 * v / x) * j0 - hi[0],
               (2 / x) * j0 + (2 * v / x) * j1 - hi[1],
               (4 / x) * j1 + (2 * v / x) * j2 - hi[2]]
        size = np.maximum(np.abs(nxt[0]), 1.0)
        hi, lo = [h / size for h in lo], [n / size for n in nxt]
    norm = sc.jv(mu, x) / lo[0]
    vals = [v * norm for v in lo]
    vals[0] = sc.jv(mu, x)
    # the start's cancellation (< e^7), a rounding per step, SciPy's J: relative
    return vals, [np.abs(v) * (1200.0 + steps) for v in vals]


def _nonneg(kind: str, mu: np.ndarray, x: np.ndarray) -> Pair:
    if kind == "j":
        vals, absv = _series_or_integral(kind, mu, x)
        scale = np.maximum(np.maximum(np.abs(vals[0]), np.abs(vals[1])), np.abs(vals[2]))
        worst = np.max(np.stack(absv), axis=0)
        # (the recurrence's steps grow like x^2 / 14: beyond _MILLER_STEPS, about
        # |v| = 330, a point stays with its estimate, and is refused if that is too big)
        weak = (~(_EPS * worst <= 1e-3 * _TRUST * scale) & (x < mu)
                & (x * x / 14.0 - mu <= _MILLER_STEPS))
        if np.any(weak):
            rec = _j_recurrence(mu[weak], x[weak])
            sub = ([v[weak] for v in vals], [a[weak] for a in absv])
            best = _best(sub, rec)
            for val, total, bv, bt in zip(vals, absv, best[0], best[1], strict=True):
                val[weak] = bv
                total[weak] = bt
        return vals, absv
    if kind == "i":
        return _series_or_integral(kind, mu, x)
    if kind == "y":
        return _y_integral(mu, x, _ORDERS)
    vals = _k_integral(mu, x, _ORDERS)  # positive integrands: no cancellation
    return vals, [np.abs(v) for v in vals]


def _combine(n: int, trig: Callable[[int], np.ndarray], comp: Pair) -> Pair:
    # the n-th derivative of trig(mu) * comp(mu), with its sum of |terms|
    val = _leibniz(n, trig, lambda j: comp[0][j])
    total = sum(math.comb(n, j) * np.abs(trig(n - j)) * comp[1][j] for j in range(n + 1))
    return [val], [total]


def _reflected(kind: str, mu: np.ndarray, x: np.ndarray) -> Pair:
    """The derivatives in v of the function at v = -mu (mu > 0), by DLMF 10.4.7-8
    (J, Y) and 10.27.2 (I, scaled by e^-x: K's term by e^-2x)."""
    s, c = _sincos_pi(mu)

    def trig(sine: bool) -> Callable[[int], np.ndarray]:
        return lambda j: _trig_pi_derivative(s, c, j, sine)

    def flipped(vals: list[np.ndarray], absv: list[np.ndarray]) -> Pair:
        # d/dv = -d/dmu
        return ([(-1.0) ** n * v for n, v in enumerate(vals)], absv)

    if kind == "k":  # K_-mu = K_mu
        return flipped(*_nonneg("k", mu, x))
    vals, absv = [], []
    if kind == "i":
        ii = _nonneg("i", mu, x)
        e2 = np.exp(-2.0 * x)
        kk = _nonneg("k", mu, x)
        kk = ([k * e2 for k in kk[0]], [k * e2 for k in kk[1]])
        for n in _ORDERS:
            v, a = _combine(n, trig(True), kk)
            vals.append(ii[0][n] + (2 / math.pi) * v[0])
            absv.append(ii[1][n] + (2 / math.pi) * a[0])
        return flipped(vals, absv)
    jj = _nonneg("j", mu, x)
    yy = _nonneg("y", mu, x)
    for n in _ORDERS:
        if kind == "j":  # J_-mu = cos(mu pi) J_mu - sin(mu pi) Y_mu
            a, b = _combine(n, trig(False), jj), _combine(n, trig(True), yy)
            vals.append(a[0][0] - b[0][0])
        else:  # Y_-mu = sin(mu pi) J_mu + cos(mu pi) Y_mu
            a, b = _combine(n, trig(True), jj), _combine(n, trig(False), yy)
            vals.append(a[0][0] + b[0][0])
        absv.append(a[1][0] + b[1][0])
    return flipped(vals, absv)


def order_derivative(kind: str, n: int, v: Any, x: Any, name: str) -> np.ndarray:
    """The n-th derivative (n = 1, 2) in the order v of J_v(x) (kind "j"), Y_v ("y"),
    I_v(x) e^-x ("i") or K_v(x) e^x ("k"), elementwise on plain real arrays.

    For x > 0. At x = 0 only J_v and I_v with v > 0 have one (it is 0); elsewhere there
    and at x < 0 the result is nan (no derivative exists). Complex arguments, and points
    where the methods lose more than 9 digits (J_v for orders beyond about 300 with x a
    little below the order: the transition region, where the series and the integrals
    cancel and Miller's recurrence would take too many steps), are refused by the
    ``name`` of the user's function."""
    v_arr, x_arr = np.broadcast_arrays(np.asarray(v), np.asarray(x))
    if np.iscomplexobj(v_arr) or np.iscomplexobj(x_arr):
        raise NoDerivativeRule(
            f"{name} w.r.t. the order at a complex argument",
            "Its derivative in the order is implemented for real orders and x > 0.")
    dtype = np.result_type(v_arr.dtype, x_arr.dtype, np.float32)
    vf = v_arr.astype(float).ravel()
    xf = x_arr.astype(float).ravel()
    # no derivative in the order (nan, as SciPy's own value is nan or inf there, and the
    # transforms warn of it): x < 0, where the function is complex for non-integer orders
    # (so not a real function of v even at the integers), and x = 0 but for J_v and I_v
    # with v > 0, which vanish there for every order near v
    zero = np.equal(xf, 0)
    flat = zero & (kind in "ji") & (vf > 0)
    # x = +inf: every one of them tends to 0 with all its order derivatives (I scaled)
    flat = flat | (np.isposinf(xf) & np.isfinite(vf))
    out = np.where(flat, 0.0, np.nan)
    good = np.isfinite(vf) & np.isfinite(xf) & (xf > 0)
    if kind != "k" and np.any(good & (xf + np.abs(vf) > _X_MAX)):
        i = int(np.flatnonzero(good & (xf + np.abs(vf) > _X_MAX))[0])
        raise NoDerivativeRule(
            f"{name} w.r.t. the order at v = {float(vf[i])!r}, x = {float(xf[i])!r}",
            f"It is implemented for x + |v| <= {_X_MAX:g}: beyond, the quadrature over "
            "[0, pi] would need too many nodes (asymptotic expansions in x are not "
            "implemented).")
    with np.errstate(invalid="ignore", divide="ignore", over="ignore", under="ignore"):
        vals, absv = _grouped(good, vf, xf, kind)
        scale = np.maximum(np.maximum(np.abs(vals[0]), np.abs(vals[1])), np.abs(vals[2]))
        lost = good & (_EPS * absv[n] > _TRUST * scale) & np.isfinite(scale)
    if np.any(lost):
        i = int(np.flatnonzero(lost)[0])
        raise NoDerivativeRule(
            f"{name} w.r.t. the order at v = {float(vf[i])!r}, x = {float(xf[i])!r}",
            "There the series and the integrals dualrev uses lose more than 9 digits to "
            "cancellation (a large order with x in the transition region a little below "
            "it, where the function is tiny); the derivative is implemented accurately for "
            "|v| <= 300 and every x > 0.")
    out[good] = vals[n][good]
    return out.reshape(v_arr.shape).astype(dtype, copy=False)


def _grouped(good: np.ndarray, vf: np.ndarray, xf: np.ndarray, kind: str) -> Pair:
    # the values and sums of |terms| of orders 0, 1, 2 at the good points (v >= 0
    # directly, v < 0 by reflection), group by group (see _sizes)
    vals = [np.full_like(xf, np.nan) for _ in _ORDERS]
    absv = [np.full_like(xf, np.nan) for _ in _ORDERS]
    size = _sizes(np.where(good, xf, 0.0), np.where(good, np.abs(vf), 0.0))
    for s in np.unique(size[good]):
        # at most about 2e6 quadrature nodes at once (memory), whatever the array
        chunk = max(1, int(2e6 // (s * _NODES.size)))
        for negative in (False, True):
            idx = np.flatnonzero(good & (size == s) & ((vf < 0) == negative))
            for part in range(0, idx.size, chunk):
                sel = idx[part:part + chunk]
                got = (_reflected(kind, -vf[sel], xf[sel]) if negative
                       else _nonneg(kind, vf[sel], xf[sel]))
                for n in _ORDERS:
                    vals[n][sel] = got[0][n]
                    absv[n][sel] = got[1][n]
    return vals, absv


def order_values(kind: str, v: Any, x: Any) -> np.ndarray:
    """The function itself by the same method (n = 0), x > 0: for the tests, which check
    the method against SciPy's values."""
    vf, xf = (a.astype(float).ravel() for a in np.broadcast_arrays(np.asarray(v), np.asarray(x)))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore", under="ignore"):
        vals, _ = _grouped(np.ones(xf.shape, dtype=bool), vf, xf, kind)
    return vals[0].reshape(np.broadcast(np.asarray(v), np.asarray(x)).shape)


# ------------------------------------------------------------------ hyp0f1 in b
def hyp0f1_b_derivative(n: int, b: Any, z: Any) -> np.ndarray:
    """The n-th derivative (n = 1, 2) in b of 0F1(; b; z), elementwise on plain real arrays.

    The series sum_k z^k / (k! (b)_k), differentiated term by term (the k-th term's
    b-derivative is the term times -sum_{j<k} 1/(b+j)), where it converges without much
    cancellation; otherwise the Bessel form Gamma(b) |z|^((1-b)/2) I_{b-1}(2 sqrt z)
    (z > 0) or J_{b-1}(2 sqrt(-z)) (z < 0) with the order derivatives above."""
    b_arr, z_arr = np.broadcast_arrays(np.asarray(b), np.asarray(z))
    if np.iscomplexobj(b_arr) or np.iscomplexobj(z_arr):
        raise NoDerivativeRule(
            "scipy.special.hyp0f1 w.r.t. b at a complex argument",
            "Its derivative in b is implemented for real b and z.")
    dtype = np.result_type(b_arr.dtype, z_arr.dtype, np.float32)
    bf = b_arr.astype(float).ravel()
    zf = z_arr.astype(float).ravel()
    out = np.full_like(zf, np.nan)
    # b = 0, -1, -2, ...: poles of 0F1 in b (SciPy's value is nan): no derivative, nan
    good = np.isfinite(bf) & np.isfinite(zf) & ~((bf <= 0) & np.equal(bf, np.round(bf)))
    with np.errstate(invalid="ignore", divide="ignore", over="ignore", under="ignore"):
        if np.any(good):
            bg, zg = bf[good], zf[good]
            val, cond = np.empty_like(zg), np.empty_like(zg)
            size = 2.0 ** np.ceil(np.log2(np.maximum(np.sqrt(np.abs(zg)), 1.0)))
            for s in np.unique(size):
                sel = size == s
                val[sel], cond[sel] = _hyp0f1_series(n, bg[sel], zg[sel], float(s))
            bessel = (cond > 1e3) & ~np.equal(zg, 0)
            if np.any(bessel):
                other, other_cond = _hyp0f1_bessel(n, bg[bessel], zg[bessel])
                val[bessel] = np.where(other_cond < cond[bessel], other, val[bessel])
            out[good] = val
    return out.reshape(b_arr.shape).astype(dtype, copy=False)


def _hyp0f1_series(n: int, b: np.ndarray, z: np.ndarray, root: float,
                   ) -> tuple[np.ndarray, np.ndarray]:
    # the derivative by the series and its condition (sum |terms| / |sum|; inf where the
    # terms had not died out); root: a bound on sqrt|z| for the group, which sets the terms
    terms = int(min(3.0 * root + 40.0, 600.0))
    t = np.ones_like(z)
    h = np.zeros_like(z)
    h2 = np.zeros_like(z)
    total = np.zeros_like(z)
    absolute = np.zeros_like(z)
    last = np.zeros_like(z)
    for k in range(1, terms):
        step = 1.0 / (b + (k - 1))
        t = t * z * step / k
        h = h + step
        h2 = h2 + step * step
        term = -t * h if n == 1 else t * (h * h + h2)
        total = total + term
        absolute = absolute + np.abs(term)
        last = np.abs(term)
    converged = last <= 1e-18 * absolute
    cond = np.where(converged, absolute / np.abs(total), np.inf)
    cond = np.where(np.equal(z, 0), 1.0, cond)
    return total, cond


def _hyp0f1_bessel(n: int, b: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # F(b) = P(b) B_{b-1}(2w), w = sqrt|z|, P = Gamma(b) w^(1-b): P' = P (psi(b) - ln w),
    # P'' = P ((psi(b) - ln w)^2 + psi'(b)); B = I e^(2w) (z > 0) or J (z < 0)
    w = np.sqrt(np.abs(z))
    pos = z > 0
    lw = np.log(w)
    p = sc.gamma(b) * np.exp((1.0 - b) * lw + np.where(pos, 2.0 * w, 0.0))
    dl = sc.digamma(b) - lw
    pd = (p, p * dl, p * (dl * dl + sc.polygamma(1, b)))
    bd = []
    for j in range(n + 1):
        d = np.empty_like(z)
        for kind, sel in (("i", pos), ("j", ~pos)):
            if np.any(sel):
                if j == 0:
                    vv, xx = b[sel] - 1.0, 2.0 * w[sel]
                    d[sel] = sc.ive(vv, xx) if kind == "i" else sc.jv(vv, xx)
                else:
                    d[sel] = order_derivative(kind, j, b[sel] - 1.0, 2.0 * w[sel],
                                              "scipy.special.hyp0f1 w.r.t. b")
        bd.append(d)
    total = _leibniz(n, lambda j: pd[j], lambda j: bd[j])
    # its condition: the cancellation between the Leibniz terms
    absolute = sum(math.comb(n, j) * np.abs(pd[n - j] * bd[j]) for j in range(n + 1))
    return total, absolute / np.abs(total)
