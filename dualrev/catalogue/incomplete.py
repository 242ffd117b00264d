"""Derivatives of the regularised incomplete gamma and beta functions in their shape
parameters: P(a, x) = gammainc(a, x) in a, I_x(a, b) = betainc(a, b, x) in a and b.

No closed form exists. Each is computed the way its value is, differentiated term by
term: P by its power series (x < a + 1) or Q = 1 - P by Legendre's continued fraction
(x >= a + 1); I_x by the continued fraction of DiDonato & Morris (Numerical Recipes'
``betacf``) on the side of the mean where it converges fast, with I_x(a, b) =
1 - I_{1-x}(b, a) on the other. This is forward-mode differentiation of the series and
of the modified Lentz recurrence (Moore 1982, AS 187; XLA's ``igamma_grad_a`` does the
same for P), here with a small value-and-derivative pair ``_J`` over NumPy arrays.
The prefactors x**a e**-x / Gamma(a + 1) and x**a (1-x)**b / B(a, b) lose digits in
their logarithm for large shapes (a log x and lgamma(a) both ~1e4 at a = 1e4); above
a = 15 they are written through Stirling's series and log1pmx instead (as Temme and
Boost's ``ibeta_power_terms`` do), whose derivatives need no cancelling difference
log x - psi(a) either.

Second derivatives in the shape parameters come from the same code by a complex step
(a + ih, h = 1e-20): the imaginary part of the first derivative computed at a complex
shape is h times the second, with no subtraction (every nonlinear function below is
evaluated for a complex argument as f(Re z) + i Im z f'(Re z)). Third derivatives in
the shapes are refused by name.

Each derivative is an elementwise primitive whose partials are the next order
(``gammainc_da`` in a is ``gammainc_daa``; in x it is d/da of the density, a closed
form), so nested transforms and vmap work as for any entry.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.special as sc

from ..errors import NoDerivativeRule
from .elementwise import elementwise

_H = 1e-20  # the complex step
_EPS = 2.0 ** -51  # convergence: 4 more terms change no component by more than 2 ulp
_TINY = 1e-300  # Lentz's guard against a zero denominator
_MAX_TERMS = 20000  # a, b up to ~1e6 near the mean need ~ 8 sqrt(a) terms
_BIG = 15.0  # from here Stirling's series (7 terms) is exact to rounding
_LOG_2PI = np.log(2 * np.pi)
_NAN = complex(np.nan, np.nan)  # nan in the complex step's part too (its second derivative)
#: B_2k / (2k (2k - 1)): Stirling's series of lgamma(a) - ((a - 1/2) log a - a + log(2 pi)/2)
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156)


# ------------------------------------------------------------------ value and derivative
class _J:
    """A value and its derivative along one direction (complex arrays: the imaginary
    parts carry the complex step), with the arithmetic the series and fractions use."""

    __slots__ = ("v", "d")
    __array_ufunc__ = None  # ndarray (op) _J defers to _J's reflected operator

    def __init__(self, v: Any, d: Any = 0.0) -> None:
        self.v = v
        self.d = d

    def __add__(self, o: Any) -> _J:
        if isinstance(o, _J):
            return _J(self.v + o.v, self.d + o.d)
        return _J(self.v + o, self.d)

    __radd__ = __add__

    def __neg__(self) -> _J:
        return _J(-self.v, -self.d)

    def __sub__(self, o: Any) -> _J:
        return self + (-o)

    def __rsub__(self, o: Any) -> _J:
        return (-self) + o

    def __mul__(self, o: Any) -> _J:
        if isinstance(o, _J):
            return _J(self.v * o.v, self.d * o.v + self.v * o.d)
        return _J(self.v * o, self.d * o)

    __rmul__ = __mul__

    def __truediv__(self, o: Any) -> _J:
        if isinstance(o, _J):
            q = self.v / o.v
            return _J(q, (self.d - q * o.d) / o.v)
        return _J(self.v / o, self.d / o)

    def __rtruediv__(self, o: Any) -> _J:
        q = o / self.v
        return _J(q, -q * self.d / self.v)


def _step(f: Callable[[Any], Any], df: Callable[[Any], Any], z: Any) -> Any:
    """A real function at a complex-stepped point: f(Re z) + i Im z f'(Re z)."""
    r = z.real
    return f(r) + 1j * z.imag * df(r)


def _jfun(f: Callable[[Any], Any], df: Callable[[Any], Any],
          d2f: Callable[[Any], Any]) -> Callable[[_J], _J]:
    """f on a ``_J``, from f and its first two derivatives (real functions)."""
    return lambda z: _J(_step(f, df, z.v), _step(df, d2f, z.v) * z.d)


def _log1pmx(u: Any) -> Any:
    """log(1 + u) - u, by its series for |u| < 1/2 (where the difference cancels)."""
    u = np.asarray(u, dtype=float)
    small = np.abs(u) < 0.5
    us = np.where(small, u, 0.0)
    series = np.zeros_like(us)
    for k in range(60, 1, -1):  # 0.5**60 / 60: below rounding
        series = us * (series + (-1.0) ** (k + 1) / k)
    series = series * us
    with np.errstate(invalid="ignore", divide="ignore"):
        far = np.log1p(np.where(small, 0.0, u)) - np.where(small, 0.0, u)
    return np.where(small, series, far)


def _psi1(r: Any) -> Any:
    return sc.polygamma(1, r)


def _psi2(r: Any) -> Any:
    return sc.polygamma(2, r)


_jlog = _jfun(np.log, lambda r: 1 / r, lambda r: -1 / (r * r))
_jlog1p = _jfun(np.log1p, lambda r: 1 / (1 + r), lambda r: -1 / ((1 + r) ** 2))
_jlog1pmx = _jfun(_log1pmx, lambda r: -r / (1 + r), lambda r: -1 / ((1 + r) ** 2))
_jgammaln = _jfun(sc.gammaln, sc.psi, _psi1)


def _lmpsi(z: Any) -> Any:
    """log z - psi(z) for z >= 15, by its asymptotic series (error below 1e-19)."""
    w = 1 / (z * z)
    s = 0.0
    for c in (1 / 12, -691 / 32760, 1 / 132, -1 / 240, 1 / 252, -1 / 120, 1 / 12):
        s = s * w + c
    return 0.5 / z + s * w


def _psidiff(u: Any, v: Any) -> Any:
    """psi(u) - psi(u + v), without the cancelling difference for large u (through
    psi(z) = log z - lmpsi(z))."""
    big = u >= _BIG
    ub = np.where(big, u, _BIG)
    far = -np.log1p(v / ub) + _lmpsi(ub + v) - _lmpsi(ub)
    us = np.where(big, 1.0, u)
    return np.where(big, far, sc.psi(us) - sc.psi(us + v))


def _jbetaln(p: _J, q: _J) -> _J:
    """log B(p, q) on ``_J`` values: SciPy's betaln (accurate for large arguments, where
    lgamma(p) + lgamma(q) - lgamma(p + q) loses digits) and its partials psi(p) -
    psi(p + q), psi(q) - psi(p + q) by ``_psidiff``."""
    pr, qr, pi, qi = p.v.real, q.v.real, p.v.imag, q.v.imag
    dp, dq = _psidiff(pr, qr), _psidiff(qr, pr)
    t = sc.polygamma(1, pr + qr)
    v = sc.betaln(pr, qr) + 1j * (pi * dp + qi * dq)
    dpc = dp + 1j * (pi * (sc.polygamma(1, pr) - t) - qi * t)
    dqc = dq + 1j * (qi * (sc.polygamma(1, qr) - t) - pi * t)
    return _J(v, dpc * p.d + dqc * q.d)


def _jexp(z: _J) -> _J:
    e = np.exp(z.v)
    return _J(e, e * z.d)


def _poly_inv(z: _J, coefs: tuple[float, ...], first: int, stride: int) -> _J:
    # sum_k coefs[k] z**-(first + stride k)
    w = 1 / z
    w2 = w * w if stride == 2 else w
    out: Any = _J(np.zeros_like(z.v))
    for c in coefs[::-1]:
        out = out * w2 + c
    for _ in range(first):
        out = out * w
    return out


def _stirlerr(z: _J) -> _J:
    """lgamma(z) - ((z - 1/2) log z - z + log(2 pi)/2), for Re z >= 15."""
    return _poly_inv(z, _STIRLING, 1, 2)


# ------------------------------------------------------------------ the loops
def _settled(new: _J, old: _J) -> Any:
    """Per element: no component changed by more than 2 ulp over the last steps, or by
    more than 1e-18 of the element's scale (a component that is 0 in exact arithmetic
    jitters at that level: the derivative of a terminating fraction)."""
    scale = np.abs(new.v.real) + np.abs(np.real(new.d))
    floors = {np.real: 1e-18 * scale,
              np.imag: 1e-18 * (_H * scale + np.abs(new.v.imag) + np.abs(np.imag(new.d)))}
    ok = np.ones(np.shape(new.v), dtype=bool)
    for part in ("v", "d"):
        a, b = getattr(new, part), getattr(old, part)
        for comp, floor in floors.items():
            x, y = comp(a), comp(b)
            ok &= np.abs(x - y) <= np.maximum(_EPS * np.abs(x), floor)
    return ok


def _guard(z: _J) -> _J:
    small = np.abs(z.v) < _TINY
    if not np.any(small):
        return z
    return _J(np.where(small, _TINY, z.v), np.where(small, 0.0, z.d))


def _iterate(state: tuple[Any, ...], step: Callable[[int, Any], Any],
             result: Callable[[Any], _J], what: str) -> tuple[_J, Any]:
    """Runs ``step`` until ``result`` stops changing in every component of every
    element; each element's result is kept from the step where it settled (steps past
    that can drift: a fraction's later denominators may come near 0). Returns it and
    the mask of elements that did not settle (their derivative is nan), or None."""
    prev = result(state)
    done = np.zeros(np.shape(prev.v), dtype=bool)
    shape = np.shape(prev.v)
    out = _J(np.array(prev.v, dtype=complex),
             np.array(np.broadcast_to(prev.d, shape), dtype=complex))
    for n in range(1, _MAX_TERMS + 1):
        state = step(n, state)
        if n % 4 == 0:
            cur = result(state)
            new = _settled(cur, prev) & ~done
            out.v[new] = cur.v[new]
            out.d[new] = np.broadcast_to(cur.d, shape)[new]
            done |= new
            if np.all(done):
                return out, None
            prev = cur
    bad = ~done
    out.v[bad], out.d[bad] = _NAN, _NAN
    warnings.warn(f"dualrev: the {what} did not converge in {_MAX_TERMS} terms at some "
                  "points (shape parameters beyond ~1e6 near the mean); their derivative "
                  "is nan there.", RuntimeWarning, stacklevel=4)
    return out, bad


# ------------------------------------------------------------------ incomplete gamma
def _jwhere(cond: Any, j: _J, k: _J) -> _J:
    return _J(np.where(cond, j.v, k.v), np.where(cond, j.d, k.d))


def _jfill(cond: Any, j: _J, fill: float) -> _J:
    """``j`` where ``cond``, a safe constant elsewhere (its derivative kept: unused)."""
    return _J(np.where(cond, j.v, fill), j.d)


def _gamma_prefactor(a: _J, x: Any) -> _J:
    """x**a e**-x / Gamma(a + 1), by Stirling's series for Re a >= 15."""
    big = a.v.real >= _BIG
    if not np.any(big):
        return _jexp(a * np.log(x) - x - _jgammaln(a + 1.0))
    a_s = _jfill(~big, a, 1.0)
    small = _jexp(a_s * np.log(x) - x - _jgammaln(a_s + 1.0))
    ab = _jfill(big, a, _BIG)
    # log(x**a e**-x / Gamma(a)) = a log(x/a) - (x - a) + log(a / 2 pi) / 2 - stirlerr(a),
    # the first two as a log1pmx(x/a - 1) near the mean (where they cancel), where
    # 1 + u = x/a is not rounded
    u = (x - ab) / ab
    near = np.abs(u.v.real) < 0.5
    un = _jfill(near, u, 0.0)
    main = _jwhere(near, ab * _jlog1pmx(un), ab * (np.log(x) - _jlog(ab)) - (x - ab))
    lg = main + 0.5 * (_jlog(ab) - _LOG_2PI) - _stirlerr(ab)
    return _jwhere(big, _jexp(lg) / ab, small)


def _gamma_series(a: _J, x: Any) -> tuple[_J, Any]:
    """sum_n x**n / ((a + 1) ... (a + n)), so that P = prefactor * sum."""
    def step(n: int, st: tuple[_J, _J]) -> tuple[_J, _J]:
        c, s = st
        c = c * x / (a + float(n))
        return c, s + c

    one = _J(np.ones_like(a.v), np.zeros_like(a.v))
    return _iterate((one, one), step, lambda st: st[1], "power series of gammainc")


def _gamma_fraction(a: _J, x: Any) -> tuple[_J, Any]:
    """Legendre's continued fraction F, so that Q = a * prefactor * F."""
    b0 = x + 1.0 - a
    d0 = 1 / _guard(b0)
    c0 = _J(np.full_like(a.v, 1 / _TINY), np.zeros_like(a.v))

    def step(n: int, st: tuple[_J, _J, _J, _J]) -> tuple[_J, _J, _J, _J]:
        b, c, d, f = st
        an = -float(n) * (float(n) - a)
        b = b + 2.0
        d = 1 / _guard(an * d + b)
        c = _guard(b + an / c)
        return b, c, d, f * (c * d)

    return _iterate((b0, c0, d0, d0), step, lambda st: st[3],
                    "continued fraction of gammaincc")


def _gammainc_da_c(a: Any, x: Any) -> Any:
    """dP/da (complex: its imaginary part is h d2P/da2 where Im a = h)."""
    a, x = np.broadcast_arrays(np.asarray(a, dtype=complex), np.asarray(x, dtype=float))
    out = np.full(a.shape, _NAN, dtype=complex)
    ar = a.real
    ok = (ar >= 0) & (x > 0) & np.isfinite(ar) & np.isfinite(x)
    out[(ar >= 0) & ((x == 0) | (x == np.inf))] = 0.0
    for sel, series in ((ok & (x < ar + 1), True), (ok & (x >= ar + 1), False)):
        if not np.any(sel):
            continue
        aj, xs = _J(a[sel], np.ones(np.count_nonzero(sel))), x[sel]
        pre = _gamma_prefactor(aj, xs)
        if series:
            s, bad = _gamma_series(aj, xs)
            d = (pre * s).d
        else:
            f, bad = _gamma_fraction(aj, xs)
            d = -(aj * pre * f).d
        # where the prefactor underflows the derivative is 0 (the terms are finite)
        d = np.where(pre.v == 0, 0.0, d)
        if bad is not None:
            d = np.where(bad, _NAN, d)
        out[sel] = d
    return out


def gammainc_da(a: Any, x: Any) -> Any:
    """d/da of scipy.special.gammainc(a, x) (plain values)."""
    return _gammainc_da_c(a, x).real[()]


def gammainc_daa(a: Any, x: Any) -> Any:
    """d2/da2 of scipy.special.gammainc(a, x) (plain values), by the complex step."""
    a = np.asarray(a, dtype=float)
    return (_gammainc_da_c(a + 1j * _H, x).imag / _H)[()]


# ------------------------------------------------------------------ incomplete beta
def _jlgamma_ratio(p: _J, q: _J) -> _J:
    """lgamma(q) - lgamma(p + q) for q >= 15, by Stirling's series: -q log1pmx(p/q) +
    log1p(p/q)/2 - p log(p + q) + stirlerr(q) - stirlerr(p + q), without the cancelling
    difference of two lgamma ~ q log q (SciPy's betaln(1, 1e4) is off by 5e-13)."""
    t = p / q
    return (-q * _jlog1pmx(t) + 0.5 * _jlog1p(t) - p * _jlog(p + q)
            + _stirlerr(q) - _stirlerr(p + q))


def _beta_prefactor(p: _J, q: _J, z: Any, lz: Any, ly: Any) -> _J:
    """z**p y**q / (p B(p, q)) with y = 1 - z, given log z and log y; by Stirling's
    series where p or q is >= 15."""
    pr, qr = p.v.real, q.v.real
    both = (pr >= _BIG) & (qr >= _BIG)
    one = ~both & (np.maximum(pr, qr) >= _BIG)
    neither = ~both & ~one
    out = _J(np.zeros_like(p.v), np.zeros_like(p.v))
    if np.any(neither):
        # 1/(p B(p, q)) = q Gamma(p + q) / (Gamma(p + 1) Gamma(q + 1)): also at q = 0
        # (a shape 0, SciPy's limit I = 1 or 0), where its derivative in q is finite
        ps, qs = _jfill(neither, p, 1.0), _jfill(neither, q, 1.0)
        lg = ps * lz + qs * ly + _jgammaln(ps + qs) - _jgammaln(ps + 1.0) - _jgammaln(qs + 1.0)
        out = _jwhere(neither, qs * _jexp(lg), out)
    if np.any(one):
        # log B(p, q) = lgamma(small) + lgamma(large) - lgamma(small + large)
        pq = pr >= qr
        ps, qs = _jfill(one, p, 1.0), _jfill(one, q, _BIG)
        sm, lg = _jwhere(pq, qs, ps), _jwhere(pq, ps, qs)
        sm, lg = _jfill(one, sm, 1.0), _jfill(one, lg, _BIG)
        lb = _jgammaln(sm) + _jlgamma_ratio(sm, lg)
        out = _jwhere(one, _jexp(ps * lz + qs * ly - lb) / ps, out)
    if np.any(both):
        pb, qb = _jfill(both, p, _BIG), _jfill(both, q, _BIG)
        s = pb + qb
        r = pb / s  # the mean of the beta distribution
        # p log(z/r) + q log(y/(q/s)) = p log1pmx(u) + q log1pmx(w), u = z/r - 1, w =
        # y/(q/s) - 1 = (r - z) s/q (their linear terms cancel), near the mean; in the
        # tails, where 1 + u would be rounded, the logarithms themselves
        u, w = (z - r) / r, (r - z) * s / qb
        near = (np.abs(u.v.real) < 0.5) & (np.abs(w.v.real) < 0.5)
        un, wn = _jfill(near, u, 0.0), _jfill(near, w, 0.0)
        main = _jwhere(near, pb * _jlog1pmx(un) + qb * _jlog1pmx(wn),
                       pb * (lz - _jlog(r)) + qb * (ly - _jlog(qb / s)))
        lg = (main + 0.5 * (_jlog(pb) + _jlog(qb) - _jlog(s) - _LOG_2PI)
              - _stirlerr(pb) - _stirlerr(qb) + _stirlerr(s))
        out = _jwhere(both, _jexp(lg) / pb, out)
    return out


def _beta_fraction(p: _J, q: _J, z: Any) -> tuple[_J, Any]:
    """The continued fraction of I_z(p, q) = prefactor * fraction (DiDonato & Morris)."""
    qab, qap, qam = p + q, p + 1.0, p - 1.0
    one = _J(np.ones_like(p.v), np.zeros_like(p.v))
    d0 = 1 / _guard(1.0 - qab * z / qap)

    def step(m: int, st: tuple[_J, _J, _J]) -> tuple[_J, _J, _J]:
        c, d, h = st
        m2 = 2.0 * m
        aa = float(m) * (q - float(m)) * z / ((qam + m2) * (p + m2))
        d = 1 / _guard(1.0 + aa * d)
        c = _guard(1.0 + aa / c)
        h = h * (d * c)
        aa = -(p + float(m)) * (qab + float(m)) * z / ((p + m2) * (qap + m2))
        d = 1 / _guard(1.0 + aa * d)
        c = _guard(1.0 + aa / c)
        return c, d, h * (d * c)

    return _iterate((one, d0, d0), step, lambda st: st[2], "continued fraction of betainc")


def _betainc_d_c(a: Any, b: Any, x: Any, sa: float, sb: float) -> Any:
    """The derivative of I_x(a, b) along (sa, sb) in (a, b); complex as above."""
    a, b, x = np.broadcast_arrays(np.asarray(a, dtype=complex), np.asarray(b, dtype=complex),
                                  np.asarray(x, dtype=float))
    out = np.full(a.shape, _NAN, dtype=complex)
    ar, br = a.real, b.real
    ok = ((ar >= 0) & (br >= 0) & (ar + br > 0) & np.isfinite(ar) & np.isfinite(br)
          & (x > 0) & (x < 1))
    out[(ar >= 0) & (br >= 0) & (ar + br > 0) & ((x == 0) | (x == 1))] = 0.0
    if np.any(ok):
        aa, bb, xx = a[ok], b[ok], x[ok]
        # the fraction converges fast below the mean (a + 1) / (a + b + 2); above it
        # I_x(a, b) = 1 - I_{1-x}(b, a)
        swap = xx > (aa.real + 1) / (aa.real + bb.real + 2)
        p = _J(np.where(swap, bb, aa), np.where(swap, sb, sa) + 0j)
        q = _J(np.where(swap, aa, bb), np.where(swap, sa, sb) + 0j)
        z = np.where(swap, 1 - xx, xx)
        # log z and log(1 - z), each from x itself where 1 - x would round
        lx, l1x = np.log(xx), np.log1p(-xx)
        pre = _beta_prefactor(p, q, z, np.where(swap, l1x, lx), np.where(swap, lx, l1x))
        f, bad = _beta_fraction(p, q, z)
        # where the prefactor underflows the derivative is 0 (the fraction is finite);
        # a prefactor of exactly 0 at a shape 0 has a derivative
        d = np.where((pre.v == 0) & (pre.d == 0), 0.0, (pre * f).d)
        d = np.where(swap, -d, d)
        if bad is not None:
            d = np.where(bad, _NAN, d)
        out[ok] = d
    return out


def betainc_da(a: Any, b: Any, x: Any) -> Any:
    """d/da of scipy.special.betainc(a, b, x) (plain values)."""
    return _betainc_d_c(a, b, x, 1.0, 0.0).real[()]


def betainc_db(a: Any, b: Any, x: Any) -> Any:
    """d/db of scipy.special.betainc(a, b, x) (plain values)."""
    return _betainc_d_c(a, b, x, 0.0, 1.0).real[()]


def _beta_second(first_a: bool, step_a: bool) -> Callable[..., Any]:
    def second(a: Any, b: Any, x: Any) -> Any:
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        ac = a + 1j * _H if step_a else a + 0j
        bc = b + 0j if step_a else b + 1j * _H
        s = (1.0, 0.0) if first_a else (0.0, 1.0)
        return (_betainc_d_c(ac, bc, x, *s).imag / _H)[()]

    return second


betainc_daa = _beta_second(True, True)
betainc_dab = _beta_second(True, False)
betainc_dbb = _beta_second(False, False)


# ------------------------------------------------------------------ the primitives
def _third(name: str) -> Callable[..., Any]:
    def partial(ans: Any, *args: Any) -> Any:
        raise NoDerivativeRule(
            f"a third derivative of {name} in its shape parameters",
            "Its first and second derivatives in them are implemented.")

    return partial


def _gamma_log_density(a: Any, x: Any) -> Any:
    # the density's log and its a-derivative's factor log x - psi(a)
    return sc.xlogy(a - 1, x) - x - sc.gammaln(a)


def _gamma_density(a: Any, x: Any) -> Any:
    return np.exp(_gamma_log_density(a, x))


def _xlog(x: Any) -> Any:
    return np.log(x)


gammainc_daa_p = elementwise(
    gammainc_daa, _third("scipy.special.gammainc"),
    # d/dx d2P/da2 = d2/da2 of the density: density ((log x - psi(a))**2 - psi'(a))
    lambda ans, a, x: _gamma_density(a, x) * ((_xlog(x) - sc.digamma(a)) ** 2
                                             - sc.polygamma(1, a)),
    name="gammainc_daa", saves=("", "a x"))
def _gamma_density_da(a: Any, x: Any) -> Any:
    # d/da of the density, density (log x - psi(a)), with 0 log 0 = 0 at x = 0 (a > 1)
    dens = _gamma_density(a, x)
    return sc.xlogy(dens, x) - dens * sc.digamma(a)


gammainc_da_p = elementwise(
    gammainc_da, lambda ans, a, x: gammainc_daa_p(a, x),
    lambda ans, a, x: _gamma_density_da(a, x), name="gammainc_da", saves="a x")


def _beta_log_density(a: Any, b: Any, x: Any) -> Any:
    return sc.xlogy(a - 1, x) + sc.xlog1py(b - 1, -x) - sc.betaln(a, b)


def _beta_dens(a: Any, b: Any, x: Any) -> Any:
    return np.exp(_beta_log_density(a, b, x))


def _la(a: Any, b: Any, x: Any) -> Any:  # d/da of the log density
    return np.log(x) - sc.digamma(a) + sc.digamma(a + b)


def _lb(a: Any, b: Any, x: Any) -> Any:  # d/db of the log density
    return np.log1p(-x) - sc.digamma(b) + sc.digamma(a + b)


_T3 = _third("scipy.special.betainc")
betainc_daa_p = elementwise(
    betainc_daa, _T3, _T3,
    lambda ans, a, b, x: _beta_dens(a, b, x) * (
        _la(a, b, x) ** 2 - sc.polygamma(1, a) + sc.polygamma(1, a + b)),
    name="betainc_daa", saves=("", "", "a b x"))
betainc_dab_p = elementwise(
    betainc_dab, _T3, _T3,
    lambda ans, a, b, x: _beta_dens(a, b, x) * (
        _la(a, b, x) * _lb(a, b, x) + sc.polygamma(1, a + b)),
    name="betainc_dab", saves=("", "", "a b x"))
betainc_dbb_p = elementwise(
    betainc_dbb, _T3, _T3,
    lambda ans, a, b, x: _beta_dens(a, b, x) * (
        _lb(a, b, x) ** 2 - sc.polygamma(1, b) + sc.polygamma(1, a + b)),
    name="betainc_dbb", saves=("", "", "a b x"))
def _beta_density_da(a: Any, b: Any, x: Any) -> Any:
    # d/da of the density, with 0 log 0 = 0 where it vanishes at x = 0
    dens = _beta_dens(a, b, x)
    return sc.xlogy(dens, x) + dens * (sc.digamma(a + b) - sc.digamma(a))


def _beta_density_db(a: Any, b: Any, x: Any) -> Any:
    # d/db of the density, with 0 log 0 = 0 where it vanishes at x = 1
    dens = _beta_dens(a, b, x)
    return sc.xlog1py(dens, -x) + dens * (sc.digamma(a + b) - sc.digamma(b))


betainc_da_p = elementwise(
    betainc_da, lambda ans, a, b, x: betainc_daa_p(a, b, x),
    lambda ans, a, b, x: betainc_dab_p(a, b, x),
    lambda ans, a, b, x: _beta_density_da(a, b, x), name="betainc_da", saves="a b x")
betainc_db_p = elementwise(
    betainc_db, lambda ans, a, b, x: betainc_dab_p(a, b, x),
    lambda ans, a, b, x: betainc_dbb_p(a, b, x),
    lambda ans, a, b, x: _beta_density_db(a, b, x), name="betainc_db", saves="a b x")


def betainc_dshapes(a: Any, b: Any, x: Any, y: Any) -> tuple[Any, Any]:
    """(d/da, d/db) of I_x(a, b) given both x and y = 1 - x (traced or not): from the
    one nearer 0, through I_x(a, b) = 1 - I_y(b, a), so that neither is rounded by
    1 - (the other) (x = w of Student's t near 1, whose complement t**2/(df + t**2) is
    exact)."""
    use_x = np.less_equal(x, 0.5)
    xs = np.where(use_x, x, 0.25)
    ys = np.where(use_x, 0.25, y)
    da = np.where(use_x, betainc_da_p(a, b, xs), -betainc_db_p(b, a, ys))
    db = np.where(use_x, betainc_db_p(a, b, xs), -betainc_da_p(b, a, ys))
    return da, db
