"""scipy.stats distributions on traced values: norm, expon, gamma, beta, t, chi2, lognorm,
laplace, cauchy, weibull_min, weibull_max, logistic, uniform, gumbel_r, gumbel_l, pareto,
halfnorm, invgamma, rayleigh (pdf, logpdf, cdf, logcdf, sf, logsf, ppf, isf), poisson,
binom, geom, bernoulli, nbinom (pmf, logpmf, cdf, logcdf, sf, logsf), multivariate_normal
and dirichlet (pdf, logpdf); unfrozen
(``st.gamma.logpdf(x, a, loc=, scale=)``) and frozen (``st.gamma(a, scale=s).logpdf(x)``).

SciPy converts the arguments of these methods with ``np.asarray``. Each method of each
supported distribution is a dispatcher on the distribution's instance (the entry the
registries list, like the other SciPy dispatchers); the same rule is also reached
through dispatchers on ``rv_continuous``/``rv_discrete`` themselves, because a frozen
distribution evaluates a *new* instance of the distribution's class, where instance
attributes do not exist. Those class-level dispatchers also refuse, by name, a traced
call of any other distribution or method.

The rules follow SciPy's generic methods: the standardised point ``z = (x - loc) /
scale``, SciPy's parameter checks (nan for invalid parameters), its support (logpdf
-inf outside, cdf 0 or 1), and the distribution's formula written with differentiable
NumPy / scipy.special calls, so higher derivatives come from nesting. Where SciPy's
cdf/sf is an incomplete gamma or beta function (gamma, beta, t, chi2, invgamma,
nbinom, binomial and Poisson sums), a primitive here runs SciPy's own value and gives
the derivative in the point (the density) and in the continuous parameters, the shape
parameters included (incomplete.py); the quantiles reach the inverse functions'
entries in special.py, whose shape derivatives follow by the implicit function theorem.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.special as sc
import scipy.stats as st
import scipy.stats._distn_infrastructure as _infra
import scipy.stats._multivariate as _mv

from ..batching import on_plain_values, without_derivatives
from ..errors import NoDerivativeRule, TracerConversionError
from ..primitive import Tracer, concrete, decide, dtype_of, ndim_of, shape_of
from ..scipy_dispatch import _traced
from .contraction import matrix_transpose as _T
from .elementwise import astype, elementwise
from .incomplete import betainc_da_p, betainc_db_p, gammainc_da_p
from .scipy_functions import dispatch
from .special import power0, stdtr_ddf, t_log_norm

_LOG_2PI = np.log(2 * np.pi)
_LOG_PI = np.log(np.pi)

#: (distribution name, method) -> the rule, called as SciPy's method is
RULES: dict[tuple[str, str], Callable[..., Any]] = {}
#: class-level methods dualrev replaced -> SciPy's originals (not registry entries: the
#: instance-level dispatchers in scipy_functions.ORIGINALS are)
CLASS_ORIGINALS: dict[tuple[type, str], Callable[..., Any]] = {}

CONTINUOUS_METHODS = ("pdf", "logpdf", "cdf", "logcdf", "sf", "logsf")
DISCRETE_METHODS = ("pmf", "logpmf", "cdf", "logcdf", "sf", "logsf")
MULTIVARIATE_METHODS = ("pdf", "logpdf")


def _carries_derivative(v: Any) -> bool:
    """Whether ``v`` is differentiated (not only batched by vmap)."""
    return isinstance(v, Tracer) and without_derivatives(v) is not v


def _refused(name: str, why: str) -> Callable[..., Any]:
    """A partial derivative dualrev does not give: raises when it is needed."""

    def partial(ans: Any, *args: Any) -> Any:
        raise NoDerivativeRule(name, why)

    return partial


_SHAPE_WHY = "dualrev has no derivative rule for this parameter."
_COUNT_WHY = ("It is a discrete (integer) argument: only the continuous parameters can be "
              "differentiated.")


def _value_primitive(dist: str, method: str, impl: Callable[..., Any],
                     partials: dict[int, Callable[..., Any]], params: tuple[str, ...],
                     counts: tuple[str, ...] = ("k", "n"), reads_ans: bool = False,
                     shape_why: str = _SHAPE_WHY, term: str = "") -> Any:
    """An elementwise primitive computing SciPy's own value ``impl`` with the partials
    given by argument position; any other argument's partial is refused by name (as a
    count for the parameters in ``counts``, else as a shape parameter). ``term`` tells
    apart the primitives of one method's several terms in their keys."""
    full = [partials.get(i) or _refused(f"scipy.stats.{dist}.{method} w.r.t. {p}",
                                        _COUNT_WHY if p in counts else shape_why)
            for i, p in enumerate(params)]
    prim = elementwise(impl, *full, name=f"scipy.stats.{dist}.{method}",
                       key=f"scipy.stats.{dist}.{method}({term})" if term else None)
    # The partials take the arguments as *v, so they cannot be named in saves=: each
    # given partial reads every argument (and the value with reads_ans), a refused one
    # nothing.
    every = frozenset(range(-1 if reads_ans else 0, len(params)))
    prim.saves = tuple((every if i in partials else frozenset(), frozenset())
                       for i in range(len(params)))
    return prim


# ------------------------------------------------------------------ continuous
@dataclass
class _Continuous:
    """A continuous distribution in standardised coordinates (loc 0, scale 1)."""

    name: str
    support: tuple[float, float]
    inside: float  # a point inside the support, where masked-out entries are evaluated
    logpdf: Callable[..., Any]
    cdf: Callable[..., Any]
    sf: Callable[..., Any]
    logcdf: Callable[..., Any] | None = None
    logsf: Callable[..., Any] | None = None
    argcheck: Callable[..., Any] | None = None  # SciPy's default: every shape > 0
    open_density: bool = False  # the density is 0 at the support's ends too (lognorm)
    ppf: Callable[..., Any] | None = None  # the quantile function and its complement
    isf: Callable[..., Any] | None = None
    # the (f, other) terms of the generic logcdf/logsf by method, where they are not
    # (cdf, sf) and (sf, cdf): primitives that refuse a shape's derivative by that name
    logs: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] | None = None
    # formulas whose far tails overflow inside the support (exp(-z) of gumbel, z**c of
    # weibull), where the density underflows and the derivative would be 0 * inf
    overflowing_tails: bool = False
    # the density written with powers of z (and 1 - z), for the support's finite ends:
    # there the log density holds log(0) times a power's exponent, and exp(logpdf) gives
    # its derivative as 0 * inf; the powers give the one-sided derivative from inside
    edge_pdf: Callable[..., Any] | None = None

    def valid(self, shapes: tuple[Any, ...]) -> Any:
        if self.argcheck is not None:
            return self.argcheck(*shapes)
        out: Any = True
        for s in shapes:
            out = np.logical_and(out, np.greater(s, 0))
        return out


def _off_the_ends(z: Any, a: Any, b: Any) -> bool:
    """Whether no point of ``z`` (plain values) is at an end ``a`` or ``b``."""
    return not np.any((z == a) | (z == b))


def _continuous(d: _Continuous, method: str, x: Any, shapes: tuple[Any, ...], loc: Any,
                scale: Any) -> Any:
    # scipy.stats computes in at least float64 (a float32 point gives a float64 result)
    if dtype_of(x) in (np.float32, np.float16):
        x = astype(x, np.float64)
    z = (x - loc) / scale
    good = np.logical_and(d.valid(shapes), np.greater(scale, 0))
    a, b = d.support
    if not d.open_density:
        # the ends belong to the support: the density's value there is SciPy's, and the
        # cdf's and sf's derivatives there are one-sided, from inside (the density)
        inside = np.logical_and(np.greater_equal(z, a), np.less_equal(z, b))
    else:  # a density flat to every order at the end (lognorm, invgamma): constants
        inside = np.logical_and(np.greater(z, a), np.less(z, b))
    ok = np.logical_and(good, inside)
    # Masked-out entries are evaluated at a safe point, so that no inf or nan of the
    # formula there reaches a derivative (0 * inf) through np.where.
    zs = np.where(ok, z, d.inside)
    ss = tuple(np.where(good, s, 1.0) for s in shapes)

    def core(zz: Any, sh: tuple[Any, ...]) -> Any:
        if method == "pdf":
            # (a decision for the whole batch, on the plain values: no point at an end,
            # one formula)
            # (a recorded decision under dualrev.replay: a truth guard, not the values)
            if d.edge_pdf is None or decide(_off_the_ends, zz, a, b):
                return np.exp(d.logpdf(zz, *sh))
            end = np.logical_or(np.equal(zz, a), np.equal(zz, b))
            ze = np.where(end, zz, d.inside)  # each branch sees only its own points
            zi = np.where(end, d.inside, zz)
            return np.where(end, d.edge_pdf(ze, *sh), np.exp(d.logpdf(zi, *sh)))
        if method == "cdf":
            return d.cdf(zz, *sh)
        if method == "sf":
            return d.sf(zz, *sh)
        if method == "logcdf":
            return d.logcdf(zz, *sh) if d.logcdf else _generic_log(d, zz, sh, True)
        return d.logsf(zz, *sh) if d.logsf else _generic_log(d, zz, sh, False)

    if method == "logpdf":
        out = np.where(ok, d.logpdf(zs, *ss) - np.log(np.where(good, scale, 1.0)), -np.inf)
        return np.where(np.logical_and(good, ~np.isnan(z)), out, np.nan)
    # Where the density underflows inside the support (far tails, gumbel at z = -1000,
    # weibull with c = 1e3) the formulas' derivatives are 0 * inf; the true ones are
    # below the density, so 0: there the plain value is returned (for logcdf/logsf
    # only where the probability is near 1, their derivative pdf/cdf being ~0 there).
    flat: Any = False
    if d.overflowing_tails:
        zp = without_derivatives(zs)
        sp = tuple(without_derivatives(v) for v in ss)
        with np.errstate(all="ignore"):
            flat = np.logical_and(np.logical_and(np.greater(zp, a), np.less(zp, b)),
                                  np.less(d.logpdf(zp, *sp), -745.0))
        flat = np.logical_and(ok, flat)
    if np.any(concrete(flat)):  # (for the whole batch: without such points, one formula)
        with np.errstate(all="ignore"):
            plain = core(zp, sp)
        if method in ("logcdf", "logsf"):
            flat = np.logical_and(flat, np.greater(plain, -0.5))
        value = np.where(flat, plain, core(np.where(flat, d.inside, zs), ss))
    else:
        value = core(zs, ss)
    if method == "pdf":
        out = np.where(ok, value / np.where(good, scale, 1.0), 0.0)
    elif method == "cdf":
        out = np.where(ok, value, np.where(np.greater_equal(z, b), 1.0, 0.0))
    elif method == "logcdf":
        out = np.where(ok, value, np.where(np.greater_equal(z, b), 0.0, -np.inf))
    elif method == "sf":
        out = np.where(ok, value, np.where(np.less_equal(z, a), 1.0, 0.0))
    else:  # logsf
        out = np.where(ok, value, np.where(np.less_equal(z, a), 0.0, -np.inf))
    return np.where(np.logical_and(good, ~np.isnan(z)), out, np.nan)


def _generic_log(d: _Continuous, z: Any, shapes: tuple[Any, ...], below: bool) -> Any:
    """SciPy's generic logcdf (``below``) or logsf: log(f) on the near side of the median,
    log1p(-other) on the far side, where f (cdf or sf) is close to 1."""
    assert d.ppf is not None
    method = "logcdf" if below else "logsf"
    f, other = d.logs[method] if d.logs else ((d.cdf, d.sf) if below else (d.sf, d.cdf))
    # the median only chooses the branch: its plain value (no derivative in the shapes)
    med = d.ppf(0.5, *(without_derivatives(s) for s in shapes))
    # a median that over- or underflows to the support's end (weibull c = 1e-8, pareto
    # b = 1e-8) is no safe point for the branch not taken: the support's inner point is
    a, b = d.support
    safe = np.where(np.logical_and(np.greater(med, a), np.less(med, b)), med, d.inside)
    near = np.less(z, med) if below else np.greater(z, med)
    # each branch evaluated at the median where it is not taken: its log(0) would reach
    # the derivative through np.where (0 * inf)
    return np.where(near, np.log(f(np.where(near, z, safe), *shapes)),
                    np.log1p(-other(np.where(near, safe, z), *shapes)))


def _quantile(d: _Continuous, method: str, q: Any, shapes: tuple[Any, ...], loc: Any,
              scale: Any) -> Any:
    # SciPy's ppf/isf: the support's ends at q = 0 and 1, nan outside [0, 1], for nan q
    # and for invalid parameters (a nan loc too)
    if dtype_of(q) in (np.float32, np.float16):
        q = astype(q, np.float64)
    good = np.logical_and(np.logical_and(d.valid(shapes), np.greater(scale, 0)),
                          np.equal(loc, loc))
    inner = np.logical_and(np.logical_and(np.greater(q, 0), np.less(q, 1)), good)
    # masked-out entries: the median's q and safe parameters (no inf/nan derivative)
    qs = np.where(inner, q, 0.5)
    ss = tuple(np.where(good, s, 1.0) for s in shapes)
    sc_ = np.where(good, scale, 1.0)
    f = d.ppf if method == "ppf" else d.isf
    assert f is not None
    # (each branch with its own safe shapes: an extreme shape's median may overflow;
    # where every q is inside, for the whole batch, the shapes as they are)
    si = ss if np.all(concrete(inner)) else tuple(np.where(inner, v, 1.0) for v in ss)
    core = f(qs, *si) * sc_ + loc
    a, b = d.support
    at0, at1 = (a, b) if method == "ppf" else (b, a)

    def end(e: float) -> Any:  # e * scale + loc, as SciPy computes it for a finite end
        return e * sc_ + loc if np.isfinite(e) else e

    out = np.where(np.equal(q, 0), end(at0), np.where(np.equal(q, 1), end(at1), np.nan))
    # At q = 0 or 1 with a finite end the quantile function itself gives the end, and
    # its one-sided derivative from inside (1 / the density there; inf where that is 0);
    # an infinite end stays a constant.
    finite_end = np.where(np.equal(q, 0), np.isfinite(at0), np.isfinite(at1))
    closed = np.logical_and(np.logical_and(good, finite_end),
                            np.logical_or(np.equal(q, 0), np.equal(q, 1)))
    if np.any(concrete(closed)):  # (for the whole batch)
        qe = np.where(closed, q, 0.5)
        at_end = f(qe, *(np.where(closed, v, 1.0) for v in ss)) * sc_ + loc
        out = np.where(closed, at_end, out)
    return np.where(inner, core, np.where(good, out, np.nan))


def _norm_logpdf(z: Any) -> Any:
    return -0.5 * z * z - 0.5 * _LOG_2PI


def _gamma_logpdf(z: Any, a: Any) -> Any:
    return sc.xlogy(a - 1.0, z) - z - sc.gammaln(a)


def _beta_logpdf(z: Any, a: Any, b: Any) -> Any:
    return sc.xlog1py(b - 1.0, -z) + sc.xlogy(a - 1.0, z) - sc.betaln(a, b)


def _t_logpdf(z: Any, df: Any) -> Any:
    # df = inf is the normal distribution (SciPy's value; the formula gives inf - inf):
    # each branch sees only the df it is taken at, so no nan reaches a derivative
    inf = np.isinf(df)
    d = np.where(inf, 1.0, df)
    t = t_log_norm(d) - (d + 1) / 2 * np.log1p(z * z / d)
    return np.where(inf, _norm_logpdf(z), t)


def _chi2_logpdf(z: Any, df: Any) -> Any:
    return sc.xlogy(df / 2.0 - 1, z) - z / 2.0 - sc.gammaln(df / 2.0) - np.log(2) * df / 2.0


def _lognorm_logpdf(z: Any, s: Any) -> Any:
    lz = np.log(z)
    return -lz * lz / (2 * s * s) - np.log(s * z * np.sqrt(2 * np.pi))


def _cauchy_logpdf(z: Any) -> Any:
    return -_LOG_PI - np.log1p(z * z)


def _laplace_cdf(z: Any) -> Any:
    # SciPy's branches, each evaluated where it is taken (exp overflows in the other)
    pos = np.greater(z, 0)
    return np.where(pos, 1.0 - 0.5 * np.exp(-np.where(pos, z, 0.0)),
                    0.5 * np.exp(np.where(pos, 0.0, z)))


def _density(logpdf: Callable[..., Any], edge_pdf: Callable[..., Any] | None,
             ends: tuple[float, ...]) -> Callable[..., Any]:
    """The density exp(logpdf), and at the support's finite ends ``edge_pdf`` (its
    powers, whose derivatives there are right), each branch at safe points; the choice
    is made for the whole batch (concrete), so points inside pay nothing."""
    def density(z: Any, *s: Any) -> Any:
        zc = concrete(z)
        if edge_pdf is None or not any(np.any(zc == e) for e in ends):
            return np.exp(logpdf(z, *s))
        end = functools.reduce(np.logical_or, [np.equal(z, e) for e in ends])
        inside = 0.5 if ends == (0.0, 1.0) else 1.0
        return np.where(end, edge_pdf(np.where(end, z, inside), *s),
                        np.exp(logpdf(np.where(end, inside, z), *s)))

    return density


def _dz(logpdf: Callable[..., Any], sign: float = 1.0, edge_pdf: Any = None,
        ends: tuple[float, ...] = ()) -> Callable[..., Any]:
    """The partial in the point of a cdf (``sign`` 1) or sf (-1): the density."""
    density = _density(logpdf, edge_pdf, ends)
    return lambda ans, z, *s: sign * density(z, *s)


def _shape_cdfs(dist: str, logpdf: Callable[..., Any], cdf: Callable[..., Any],
                sf: Callable[..., Any], params: tuple[str, ...], edge_pdf: Any = None,
                ends: tuple[float, ...] = (),
                dshape: tuple[Callable[..., Any], ...] = ()) -> dict[str, Any]:
    """cdf/sf as primitives of SciPy's value, with the point's partial (the density) and
    the shape parameters' (``dshape[i](z, *shapes)``: the cdf's; the sf's is its
    negative) — the incomplete gamma and beta functions' derivatives in their shapes
    (incomplete.py)."""
    def prim(method: str, impl: Callable[..., Any], sign: float, term: str = "") -> Any:
        partials = {0: _dz(logpdf, sign, edge_pdf, ends)}
        for i, dfn in enumerate(dshape, start=1):
            partials[i] = (lambda fn: lambda ans, z, *s: sign * fn(z, *s))(dfn)
        return _value_primitive(dist, method, impl, partials, ("x", *params), term=term)

    return {"cdf": prim("cdf", cdf, 1.0), "sf": prim("sf", sf, -1.0),
            # the two terms of SciPy's generic logcdf and logsf, named by that method
            "logs": {"logcdf": (prim("logcdf", cdf, 1.0, "cdf"), prim("logcdf", sf, -1.0, "sf")),
                     "logsf": (prim("logsf", sf, -1.0, "sf"), prim("logsf", cdf, 1.0, "cdf"))}}


def _gamma_edge_pdf(z: Any, a: Any) -> Any:
    return power0(z, a - 1) * np.exp(-z - sc.gammaln(a))


def _beta_edge_pdf(z: Any, a: Any, b: Any) -> Any:
    return power0(z, a - 1) * power0(1 - z, b - 1) * np.exp(-sc.betaln(a, b))


def _chi2_edge_pdf(z: Any, df: Any) -> Any:
    return power0(z, df / 2 - 1) * np.exp(-z / 2 - sc.gammaln(df / 2) - np.log(2) * df / 2)


def _weibull_edge_pdf(z: Any, c: Any) -> Any:
    return c * power0(z, c - 1) * np.exp(-z ** c)


_gamma = _shape_cdfs("gamma", _gamma_logpdf, lambda z, a: sc.gammainc(a, z),
                     lambda z, a: sc.gammaincc(a, z), ("a",), _gamma_edge_pdf, (0.0,),
                     dshape=(lambda z, a: gammainc_da_p(a, z),))
_beta = _shape_cdfs("beta", _beta_logpdf, lambda z, a, b: sc.betainc(a, b, z),
                    lambda z, a, b: sc.betaincc(a, b, z), ("a", "b"), _beta_edge_pdf,
                    (0.0, 1.0), dshape=(lambda z, a, b: betainc_da_p(a, b, z),
                                        lambda z, a, b: betainc_db_p(a, b, z)))
# the sf is stdtr(df, -z): its derivative in df is stdtr_ddf(df, -z), not the cdf's
# negative (which it equals: stdtr_ddf is odd in t)
_t = _shape_cdfs("t", _t_logpdf, lambda z, df: sc.stdtr(df, z),
                 lambda z, df: sc.stdtr(df, -z), ("df",),
                 dshape=(lambda z, df: stdtr_ddf(df, z),))
_chi2 = _shape_cdfs("chi2", _chi2_logpdf, lambda z, df: sc.chdtr(df, z),
                    lambda z, df: sc.chdtrc(df, z), ("df",), _chi2_edge_pdf, (0.0,),
                    dshape=(lambda z, df: 0.5 * gammainc_da_p(0.5 * df, 0.5 * z),))

def _weibull_logpdf(z: Any, c: Any) -> Any:
    return np.log(c) + sc.xlogy(c - 1, z) - z ** c


def _logistic_logpdf(z: Any) -> Any:
    # log(expit(z) expit(-z)): SciPy's -|z| - 2 log1p(exp(-|z|)) without the kink at 0
    # that would make a second derivative there wrong
    return sc.log_expit(z) + sc.log_expit(-z)


def _invgamma_logpdf(z: Any, a: Any) -> Any:
    return -(a + 1) * np.log(z) - sc.gammaln(a) - 1.0 / z


def _laplace_ppf(q: Any) -> Any:
    # both branches are finite for q in (0, 1)
    return np.where(np.greater(q, 0.5), -np.log(2 * (1 - q)), np.log(2 * q))


def _cauchy_ppf(q: Any) -> Any:
    # SciPy's (Boost's) -1/tan(pi p), with p = q - 1 above the median for accuracy; the
    # median itself is 0 exactly, written so that its derivative (pi) survives
    p = np.where(np.greater(q, 0.5), q - 1, q)
    return np.where(np.equal(q, 0.5), np.pi * (q - 0.5), -1 / np.tan(np.pi * p))


_invgamma = _shape_cdfs("invgamma", _invgamma_logpdf, lambda z, a: sc.gammaincc(a, 1.0 / z),
                        lambda z, a: sc.gammainc(a, 1.0 / z), ("a",),
                        dshape=(lambda z, a: -gammainc_da_p(a, 1.0 / z),))

CONTINUOUS = {d.name: d for d in (
    _Continuous("norm", (-np.inf, np.inf), 0.0, _norm_logpdf, sc.ndtr,
                lambda z: sc.ndtr(-z), sc.log_ndtr, lambda z: sc.log_ndtr(-z),
                ppf=sc.ndtri, isf=lambda q: -sc.ndtri(q)),
    _Continuous("expon", (0.0, np.inf), 1.0, lambda z: -z, lambda z: -np.expm1(-z),
                lambda z: np.exp(-z), logsf=lambda z: -z,
                ppf=lambda q: -np.log1p(-q), isf=lambda q: -np.log(q)),
    _Continuous("gamma", (0.0, np.inf), 1.0, _gamma_logpdf, _gamma["cdf"], _gamma["sf"],
                logs=_gamma["logs"], ppf=lambda q, a: sc.gammaincinv(a, q),
                isf=lambda q, a: sc.gammainccinv(a, q),
                edge_pdf=_gamma_edge_pdf),
    _Continuous("beta", (0.0, 1.0), 0.5, _beta_logpdf, _beta["cdf"], _beta["sf"],
                logs=_beta["logs"], ppf=lambda q, a, b: sc.betaincinv(a, b, q),
                isf=lambda q, a, b: sc.betainccinv(a, b, q),
                edge_pdf=_beta_edge_pdf),
    _Continuous("t", (-np.inf, np.inf), 0.0, _t_logpdf, _t["cdf"], _t["sf"],
                logs=_t["logs"], ppf=lambda q, df: sc.stdtrit(df, q),
                isf=lambda q, df: -sc.stdtrit(df, q)),
    _Continuous("chi2", (0.0, np.inf), 1.0, _chi2_logpdf, _chi2["cdf"], _chi2["sf"],
                logs=_chi2["logs"], ppf=lambda q, df: 2 * sc.gammaincinv(df / 2, q),
                isf=lambda q, df: sc.chdtri(df, q),
                edge_pdf=_chi2_edge_pdf),
    _Continuous("lognorm", (0.0, np.inf), 1.0, _lognorm_logpdf,
                lambda z, s: sc.ndtr(np.log(z) / s), lambda z, s: sc.ndtr(-np.log(z) / s),
                lambda z, s: sc.log_ndtr(np.log(z) / s),
                lambda z, s: sc.log_ndtr(-np.log(z) / s), open_density=True,
                ppf=lambda q, s: np.exp(s * sc.ndtri(q)),
                isf=lambda q, s: np.exp(-s * sc.ndtri(q))),
    _Continuous("laplace", (-np.inf, np.inf), 0.0, lambda z: -np.abs(z) - np.log(2.0),
                _laplace_cdf, lambda z: _laplace_cdf(-z), ppf=_laplace_ppf,
                isf=lambda q: -_laplace_ppf(q)),
    _Continuous("cauchy", (-np.inf, np.inf), 0.0, _cauchy_logpdf,
                lambda z: np.arctan2(1.0, -z) / np.pi, lambda z: np.arctan2(1.0, z) / np.pi,
                ppf=_cauchy_ppf, isf=lambda q: -_cauchy_ppf(q)),
    _Continuous("weibull_min", (0.0, np.inf), 1.0, _weibull_logpdf,
                lambda z, c: -np.expm1(-z ** c), lambda z, c: np.exp(-z ** c),
                logsf=lambda z, c: -z ** c, ppf=lambda q, c: (-np.log1p(-q)) ** (1.0 / c),
                isf=lambda q, c: (-np.log(q)) ** (1 / c),
                edge_pdf=_weibull_edge_pdf,
                overflowing_tails=True),
    _Continuous("weibull_max", (-np.inf, 0.0), -1.0, lambda z, c: _weibull_logpdf(-z, c),
                lambda z, c: np.exp(-(-z) ** c), lambda z, c: -np.expm1(-(-z) ** c),
                logcdf=lambda z, c: -(-z) ** c, ppf=lambda q, c: -(-np.log(q)) ** (1.0 / c),
                isf=lambda q, c: -(-np.log(1.0 - q)) ** (1.0 / c),
                edge_pdf=lambda z, c: _weibull_edge_pdf(-z, c),
                overflowing_tails=True),
    _Continuous("logistic", (-np.inf, np.inf), 0.0, _logistic_logpdf, sc.expit,
                lambda z: sc.expit(-z), sc.log_expit, lambda z: sc.log_expit(-z),
                ppf=sc.logit, isf=lambda q: -sc.logit(q)),
    _Continuous("uniform", (0.0, 1.0), 0.5, lambda z: 0.0 * z, lambda z: z,
                lambda z: 1.0 - z, ppf=lambda q: q, isf=lambda q: 1.0 - q),
    _Continuous("gumbel_r", (-np.inf, np.inf), 0.0, lambda z: -z - np.exp(-z),
                lambda z: np.exp(-np.exp(-z)), lambda z: -np.expm1(-np.exp(-z)),
                logcdf=lambda z: -np.exp(-z), ppf=lambda q: -np.log(-np.log(q)),
                isf=lambda q: -np.log(-np.log1p(-q)),
                overflowing_tails=True),
    _Continuous("gumbel_l", (-np.inf, np.inf), 0.0, lambda z: z - np.exp(z),
                lambda z: -np.expm1(-np.exp(z)), lambda z: np.exp(-np.exp(z)),
                logsf=lambda z: -np.exp(z), ppf=lambda q: np.log(-np.log1p(-q)),
                isf=lambda q: np.log(-np.log(q)),
                overflowing_tails=True),
    _Continuous("pareto", (1.0, np.inf), 2.0, lambda z, b: np.log(b) - (b + 1) * np.log(z),
                lambda z, b: 1 - z ** (-b), lambda z, b: z ** (-b),
                ppf=lambda q, b: (1 - q) ** (-1.0 / b), isf=lambda q, b: q ** (-1.0 / b)),
    _Continuous("halfnorm", (0.0, np.inf), 1.0, lambda z: 0.5 * np.log(2.0 / np.pi) - z * z / 2.0,
                lambda z: sc.erf(z / np.sqrt(2)), lambda z: 2 * sc.ndtr(-z),
                ppf=lambda q: sc.ndtri((1 + q) / 2.0), isf=lambda q: -sc.ndtri(q / 2)),
    _Continuous("invgamma", (0.0, np.inf), 1.0, _invgamma_logpdf, _invgamma["cdf"],
                _invgamma["sf"], logs=_invgamma["logs"], open_density=True,
                ppf=lambda q, a: 1.0 / sc.gammainccinv(a, q),
                isf=lambda q, a: 1.0 / sc.gammaincinv(a, q)),
    _Continuous("rayleigh", (0.0, np.inf), 1.0, lambda z: np.log(z) - 0.5 * z * z,
                lambda z: -np.expm1(-0.5 * z * z), lambda z: np.exp(-0.5 * z * z),
                logsf=lambda z: -0.5 * z * z,
                ppf=lambda q: np.sqrt(-2 * np.log1p(-q)), isf=lambda q: np.sqrt(-2 * np.log(q)),
                edge_pdf=lambda z: z * np.exp(-0.5 * z * z)),
)}


# ------------------------------------------------------------------ discrete
@dataclass
class _Discrete:
    """A discrete distribution on the integers (loc 0)."""

    name: str
    upper: Callable[..., Any]  # the support's upper end from the shapes (lower: 0)
    argcheck: Callable[..., Any]
    logpmf: Callable[..., Any]
    cdf: dict[str, Any]  # method -> SciPy's cdf, logcdf, sf or logsf of floor(k)
    counts: tuple[int, ...] = field(default=())  # shape positions that are integers
    shape_names: tuple[str, ...] = field(default=())
    lower: float = 0.0  # the support's lower end (geom: 1)
    # the parameters' edges (p = 0 or 1, mu = 0), where the pmf is a product of powers
    # whose log is -inf: there exp(logpmf) gives the derivative 0 * inf, so the pmf is
    # computed by ``edge_pmf`` (the same product written with powers) instead
    at_edge: Callable[..., Any] | None = None
    edge_pmf: Callable[..., Any] | None = None


def _pois_logpmf(k: Any, mu: Any) -> Any:
    return sc.xlogy(k, mu) - sc.gammaln(k + 1) - mu


def _binom_logpmf(k: Any, n: Any, p: Any) -> Any:
    combiln = sc.gammaln(n + 1) - (sc.gammaln(k + 1) + sc.gammaln(n - k + 1))
    return combiln + sc.xlogy(k, p) + sc.xlog1py(n - k, -p)


def _binom_edge_pmf(k: Any, n: Any, p: Any) -> Any:
    # C(n, k) p**k (1 - p)**(n - k): at p = 0 the derivative of p**1 is 1 (exp of the
    # log: 0 * inf). C(n, k) as SciPy's binom (exact for these integers: 5, not
    # exp(gammaln(6) - ...) = 4.999999999999998), 0 where it overflows: at an edge it
    # multiplies a power of p or 1 - p above the 1000th, whose value and derivatives up
    # to that order are 0 all the same (inf * 0 would be nan)
    c = sc.binom(n, k)
    return np.where(np.isfinite(c), c, 0.0) * power0(p, k) * power0(1 - p, n - k)


def _at_ends(x: Any, ends: tuple[float, ...], log_form: Callable[[Any], Any],
             powers: Callable[[Any], Any], inside: float = 0.5) -> Any:
    """exp(log_form(x)) inside, powers(x) where x is at one of ``ends`` (where the log
    form's own derivative is 0 * inf), each branch at safe points; chosen for the
    whole batch (concrete), so points inside pay nothing."""
    xc = concrete(x)
    if not any(np.any(xc == e) for e in ends):  # (for the whole batch, plain values)
        return np.exp(log_form(x))
    end = functools.reduce(np.logical_or, [np.equal(x, e) for e in ends])
    return np.where(end, powers(np.where(end, x, inside)),
                    np.exp(log_form(np.where(end, inside, x))))


def _binom_dp(k: Any, n: Any, p: Any) -> Any:
    # d/dp of the binomial cdf at k < n: -p^k (1-p)^(n-k-1) / B(n-k, k+1)
    return -_at_ends(
        p, (0.0, 1.0),
        lambda q: sc.xlogy(k, q) + sc.xlog1py(n - k - 1, -q) - sc.betaln(n - k, k + 1),
        lambda q: power0(q, k) * power0(1 - q, n - k - 1) * np.exp(-sc.betaln(n - k, k + 1)))


def _signed(f: Callable[..., Any], sign: float) -> Callable[..., Any]:
    """``sign * f``, as a partial (which also gets the primal's value first)."""
    return lambda ans, *v: sign * f(*v)


def _discrete_prims(dist: str, cdf: Callable[..., Any], sf: Callable[..., Any],
                    partials: dict[int, Callable[..., Any]], params: tuple[str, ...],
                    counts: tuple[str, ...] = ("k", "n"), shape_why: str = _SHAPE_WHY) -> Any:
    out = {}
    # (the log methods' primitives compute the cdf or sf, whose log is taken outside)
    for method, impl, sign, term in (("cdf", cdf, 1.0, ""), ("logcdf", cdf, 1.0, "cdf"),
                                     ("sf", sf, -1.0, ""), ("logsf", sf, -1.0, "sf")):
        ps = {i: _signed(f, sign) for i, f in partials.items()}
        prim = _value_primitive(dist, method, impl, ps, ("k", *params), counts,
                                shape_why=shape_why, term=term)
        out[method] = prim if not method.startswith("log") else (
            lambda p: lambda *v: np.log(p(*v)))(prim)
    return out


def _geom_logpmf(k: Any, p: Any) -> Any:
    return sc.xlog1py(k - 1, -p) + np.log(p)


def _geom_sf(k: Any, p: Any) -> Any:
    # (1 - p)**k, by its log inside (0, 1); at p = 1 as a power, whose derivative there
    # (k (1 - p)**(k - 1): -1 at k = 1) the log form turns into 0 * inf
    one = np.equal(p, 1)
    inner = np.exp(k * np.log1p(-np.where(one, 0.5, p)))
    return np.where(one, power0(1 - np.where(one, p, 1.0), k), inner)


def _geom_cdf(k: Any, p: Any) -> Any:
    one = np.equal(p, 1)
    inner = -np.expm1(np.log1p(-np.where(one, 0.5, p)) * k)
    return np.where(one, 1 - power0(1 - np.where(one, p, 1.0), k), inner)


def _nbinom_logpmf(k: Any, n: Any, p: Any) -> Any:
    # log C(n + k - 1, k), exactly 0 at k = 0: there gammaln(n) - gammaln(n) has second
    # derivative trigamma(n) - trigamma(n), 1e16 - 1e16 at n = 1e-8, which reverse mode
    # summed with the pmf's other terms in between (and so lost them)
    coeff = np.where(np.equal(k, 0), 0.0, sc.gammaln(n + k) - sc.gammaln(k + 1) - sc.gammaln(n))
    return coeff + n * np.log(p) + sc.xlog1py(k, -p)


def _nbinom_edge_pmf(k: Any, n: Any, p: Any) -> Any:
    coeff = sc.gammaln(n + k) - sc.gammaln(k + 1) - sc.gammaln(n)
    return np.exp(coeff) * p ** n * power0(1 - p, k)


def _nbinom_dp(k: Any, n: Any, p: Any) -> Any:
    # d/dp of the cdf I_p(n, k + 1): p^(n-1) (1-p)^k / B(n, k+1)
    return _at_ends(
        p, (1.0,), lambda q: sc.xlogy(n - 1, q) + sc.xlog1py(k, -q) - sc.betaln(n, k + 1),
        lambda q: power0(q, n - 1) * power0(1 - q, k) * np.exp(-sc.betaln(n, k + 1)))


def _nbinom_logcdf(k: Any, n: Any, p: Any) -> Any:
    # SciPy's _logcdf assigns into its arrays: it needs them 1-d (as SciPy's argsreduce
    # hands them), so 0-d arguments are raveled and the result reshaped back
    k, n, p = np.broadcast_arrays(k, n, p)
    out = type(st.nbinom)._logcdf(st.nbinom, *(np.ravel(v) for v in (k, n, p)))
    return np.reshape(out, k.shape)


def _nbinom_dn(k: Any, n: Any, p: Any) -> Any:
    # d/dn of the cdf I_p(n, k + 1) (k floored by the caller)
    return betainc_da_p(n, k + 1, p)


_nbinom = _discrete_prims(
    "nbinom", lambda k, n, p: type(st.nbinom)._cdf(st.nbinom, k, n, p),  # SciPy's own value
    lambda k, n, p: type(st.nbinom)._sf(st.nbinom, k, n, p), {1: _nbinom_dn, 2: _nbinom_dp},
    ("n", "p"), counts=("k",))
# SciPy's own logcdf (log1p(-betainc(k + 1, n, 1 - p)) where the cdf is above 1/2): its
# partials are the cdf's over the cdf, exp(logcdf)
_nbinom["logcdf"] = _value_primitive(
    "nbinom", "logcdf", lambda k, n, p: _nbinom_logcdf(k, n, p),
    {1: lambda ans, k, n, p: _nbinom_dn(k, n, p) / np.exp(ans),
     2: lambda ans, k, n, p: _nbinom_dp(k, n, p) / np.exp(ans)}, ("k", "n", "p"),
    counts=("k",), reads_ans=True)


_poisson = _discrete_prims(
    "poisson", lambda k, mu: sc.pdtr(k, mu), lambda k, mu: sc.pdtrc(k, mu),
    {1: lambda k, mu: -_at_ends(mu, (0.0,), lambda m: _pois_logpmf(k, m),
                                lambda m: power0(m, k) * np.exp(-m - sc.gammaln(k + 1)),
                                inside=1.0)}, ("mu",))
_binom = _discrete_prims(
    "binom", lambda k, n, p: type(st.binom)._cdf(st.binom, k, n, p),  # SciPy's own value
    lambda k, n, p: type(st.binom)._sf(st.binom, k, n, p), {2: _binom_dp}, ("n", "p"))

DISCRETE = {d.name: d for d in (
    _Discrete("poisson", lambda mu: np.inf, lambda mu: np.greater_equal(mu, 0),
              _pois_logpmf, _poisson, shape_names=("mu",),
              at_edge=lambda mu: np.equal(mu, 0),
              edge_pmf=lambda k, mu: power0(mu, k) * np.exp(-mu - sc.gammaln(k + 1))),
    _Discrete("binom", lambda n, p: n,
              lambda n, p: np.logical_and(
                  np.logical_and(np.greater_equal(n, 0), np.equal(np.floor(n), n)),
                  np.logical_and(np.greater_equal(p, 0), np.less_equal(p, 1))),
              _binom_logpmf, _binom, counts=(0,), shape_names=("n", "p"),
              at_edge=lambda n, p: np.logical_or(np.equal(p, 0), np.equal(p, 1)),
              edge_pmf=_binom_edge_pmf),
    _Discrete("geom", lambda p: np.inf,
              lambda p: np.logical_and(np.less_equal(p, 1), np.greater(p, 0)), _geom_logpmf,
              {"cdf": _geom_cdf, "logcdf": lambda k, p: np.log(_geom_cdf(k, p)),
               "sf": _geom_sf, "logsf": lambda k, p: k * np.log1p(-p)},
              shape_names=("p",), lower=1.0, at_edge=lambda p: np.equal(p, 1),
              edge_pmf=lambda k, p: power0(1 - p, k - 1) * p),
    # SciPy's bernoulli is binom with n = 1: on its support {0, 1} the cdf below 1 is 1 - p
    _Discrete("bernoulli", lambda p: 1.0,
              lambda p: np.logical_and(np.greater_equal(p, 0), np.less_equal(p, 1)),
              lambda k, p: _binom_logpmf(k, 1.0, p),
              {"cdf": lambda k, p: 1.0 - p + 0.0 * k,
               "logcdf": lambda k, p: np.log(1.0 - p + 0.0 * k),
               "sf": lambda k, p: p + 0.0 * k, "logsf": lambda k, p: np.log(p + 0.0 * k)},
              shape_names=("p",),
              at_edge=lambda p: np.logical_or(np.equal(p, 0), np.equal(p, 1)),
              edge_pmf=lambda k, p: _binom_edge_pmf(k, 1.0, p)),
    _Discrete("nbinom", lambda n, p: np.inf,
              lambda n, p: np.logical_and(np.greater(n, 0), np.logical_and(
                  np.greater(p, 0), np.less_equal(p, 1))),
              _nbinom_logpmf, _nbinom, shape_names=("n", "p"),
              at_edge=lambda n, p: np.equal(p, 1), edge_pmf=_nbinom_edge_pmf),
)}


def _discrete(d: _Discrete, method: str, k: Any, shapes: tuple[Any, ...], loc: Any) -> Any:
    if _carries_derivative(k):
        raise NoDerivativeRule(f"scipy.stats.{d.name}.{method} w.r.t. k", _COUNT_WHY)
    if _carries_derivative(loc):
        raise NoDerivativeRule(f"scipy.stats.{d.name}.{method} w.r.t. loc",
                               "A discrete distribution's loc shifts its integer support.")
    for i in d.counts:
        if _carries_derivative(shapes[i]):
            raise NoDerivativeRule(f"scipy.stats.{d.name}.{method} w.r.t. "
                                   f"{d.shape_names[i]}", _COUNT_WHY)
    k = k - loc
    good = d.argcheck(*shapes)
    upper = d.upper(*shapes)
    # masked-out entries: a safe parameter (inside every supported one's domain: 0.5)
    ss = tuple(np.where(good, s, 1.0 if i in d.counts else 0.5) for i, s in enumerate(shapes))
    lo = d.lower

    def safe(ok: Any) -> tuple[Any, ...]:
        # where the point is outside the support the formula is evaluated at the lower
        # end, with a continuous parameter of 0.5: an edge one (p = 1) gives log(0) there,
        # whose 0 * inf would reach the derivative through np.where
        if np.all(concrete(ok)):  # (for the whole batch)
            return ss
        return tuple(v if i in d.counts else np.where(ok, v, 0.5) for i, v in enumerate(ss))

    if method in ("pmf", "logpmf"):
        ok = np.logical_and(np.logical_and(np.greater_equal(k, lo), np.less_equal(k, upper)),
                            np.equal(np.floor(k), k))
        ok = np.logical_and(ok, good)
        ks = np.where(ok, k, lo)
        ss = safe(ok)
        # (a decision for the whole batch, on the plain values)
        near = (method == "pmf" and d.at_edge is not None
                and np.any(d.at_edge(*(concrete(v) for v in ss))))
        if near:
            edge = np.logical_and(d.at_edge(*ss), ok)
            # the double where: each branch sees only the parameters it is taken at
            off = tuple(v if i in d.counts else np.where(edge, 0.5, v)
                        for i, v in enumerate(ss))
            on = tuple(v if i in d.counts else np.where(edge, v, 0.5)
                       for i, v in enumerate(ss))
            core = np.where(edge, d.edge_pmf(ks, *on), np.exp(d.logpmf(ks, *off)))
            out = np.where(ok, core, 0.0)
        else:
            core = d.logpmf(ks, *ss)
            out = np.where(ok, core if method == "logpmf" else np.exp(core),
                           -np.inf if method == "logpmf" else 0.0)
    else:
        ok = np.logical_and(np.logical_and(np.greater_equal(k, lo), np.less(k, upper)), good)
        ks = np.where(ok, np.floor(k), lo)
        ss = safe(ok)
        core = d.cdf[method](ks, *ss)
        if method in ("cdf", "logcdf"):
            edge = np.greater_equal(k, upper)
        else:
            edge = np.less(k, lo)
        one, zero = (0.0, -np.inf) if method.startswith("log") else (1.0, 0.0)
        out = np.where(ok, core, np.where(edge, one, zero))
    out = np.where(np.logical_and(good, ~np.isnan(k)), out, np.nan)
    if method == "logcdf":  # SciPy writes logcdf's 0 above the support after its nan
        out = np.where(np.greater_equal(k, upper), 0.0, out)
    return out


# ------------------------------------------------------------------ rules
def _continuous_rule(name: str, method: str) -> Callable[..., Any]:
    d = CONTINUOUS[name]
    dist = getattr(st, name)

    def rule(x: Any, *args: Any, **kwds: Any) -> Any:
        # SciPy's own parser of this distribution: its shapes by position or name,
        # loc= and scale=; anything else is SciPy's TypeError
        shapes, loc, scale = dist._parse_args(*args, **kwds)
        return _continuous(d, method, x, shapes, loc, scale)

    rule.__name__ = f"{name}.{method}"
    rule.__doc__ = f"scipy.stats.{name}.{method} on traced values."
    return rule


def _quantile_rule(name: str, method: str) -> Callable[..., Any]:
    d = CONTINUOUS[name]
    dist = getattr(st, name)

    def rule(q: Any, *args: Any, **kwds: Any) -> Any:
        shapes, loc, scale = dist._parse_args(*args, **kwds)  # SciPy's parser (see above)
        return _quantile(d, method, q, shapes, loc, scale)

    rule.__name__ = f"{name}.{method}"
    rule.__doc__ = f"scipy.stats.{name}.{method} on traced values."
    return rule


def _discrete_rule(name: str, method: str) -> Callable[..., Any]:
    d = DISCRETE[name]
    dist = getattr(st, name)

    def rule(k: Any, *args: Any, **kwds: Any) -> Any:
        shapes, loc, _ = dist._parse_args(*args, **kwds)  # SciPy's parser (see above)
        return _discrete(d, method, k, shapes, loc)

    rule.__name__ = f"{name}.{method}"
    rule.__doc__ = f"scipy.stats.{name}.{method} on traced values."
    return rule


def mvn_logpdf(x: Any, mean: Any = None, cov: Any = 1, allow_singular: bool = False) -> Any:
    """scipy.stats.multivariate_normal.logpdf, reading its arguments as SciPy does."""
    # The dimension comes from mean, else from cov (a scalar cov: 1-D), never from x; a
    # 1-D x then holds one point, or many points when the dimension is 1.
    if dtype_of(x) in (np.float32, np.float16):
        x = astype(x, np.float64)
    if mean is not None:
        d = int(np.prod(shape_of(mean)))
        mean = np.reshape(mean, (d,))
    else:
        d = shape_of(cov)[0] if ndim_of(cov) else 1
    xs = shape_of(x)
    if len(xs) == 0 or (len(xs) == 1 and d == 1):
        x = np.reshape(x, xs + (1,) if d == 1 else (1,))
    diff = x if mean is None else x - mean
    if ndim_of(cov) == 0:
        cov = cov * np.eye(d)
    elif ndim_of(cov) == 1:
        cov = cov[..., None] * np.eye(d)
    try:
        L = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        if allow_singular:
            raise NoDerivativeRule(
                "scipy.stats.multivariate_normal.logpdf", "With allow_singular=True only a "
                "positive definite cov is supported (this one is singular: SciPy would use "
                "its pseudo-determinant).") from None
        raise
    z = _T(np.linalg.solve(L, _T(np.reshape(diff, (-1, d)))))
    logdet = 2 * np.sum(np.log(np.diagonal(L, axis1=-2, axis2=-1)), axis=-1)
    out = -0.5 * (np.sum(z * z, axis=-1) + d * _LOG_2PI + logdet)
    # SciPy squeezes every unit axis out of its result
    return np.reshape(out, tuple(n for n in shape_of(diff)[:-1] if n != 1))


def mvn_pdf(x: Any, mean: Any = None, cov: Any = 1, allow_singular: bool = False) -> Any:
    """scipy.stats.multivariate_normal.pdf: the exponential of its logpdf."""
    return np.exp(mvn_logpdf(x, mean, cov, allow_singular))


def _dirichlet_points(x: Any, alpha: Any) -> tuple[Any, Any]:
    """SciPy's checks (ValueError) on the plain values; the quantiles with the K-th added
    where x holds K - 1 of them, and log B(alpha)."""
    on_plain_values(lambda a_, x_: _mv._dirichlet_check_input(
        _mv._dirichlet_check_parameters(a_), x_) is None, (alpha, x),
        name="scipy.stats.dirichlet's checks")
    if dtype_of(x) in (np.float32, np.float16):
        x = astype(x, np.float64)
    if shape_of(x)[0] != shape_of(alpha)[0]:
        x = np.concatenate([x, (1 - np.sum(x, axis=0))[None]], axis=0)
    return x, np.sum(sc.gammaln(alpha)) - sc.gammaln(np.sum(alpha))


def _dirichlet_log(x: Any, alpha: Any, lnB: Any) -> Any:
    return -lnB + np.sum(np.transpose(sc.xlogy(alpha - 1, np.transpose(x))), axis=0)


def dirichlet_logpdf(x: Any, alpha: Any) -> Any:
    """scipy.stats.dirichlet.logpdf: quantiles along x's first axis (K or K - 1 of them,
    the last then 1 - their sum), SciPy's checks (ValueError) on the plain values."""
    x, lnB = _dirichlet_points(x, alpha)
    return np.squeeze(_dirichlet_log(x, alpha, lnB))


def dirichlet_pdf(x: Any, alpha: Any) -> Any:
    """scipy.stats.dirichlet.pdf: the exponential of its logpdf; at a point on the
    simplex's boundary (a quantile 0) the product of powers, whose derivative there is
    right (exp of the log's -inf gives 0 * inf)."""
    x, lnB = _dirichlet_points(x, alpha)
    edge = np.any(np.equal(x, 0), axis=0)
    if not np.any(concrete(edge)):  # (for the whole batch)
        return np.squeeze(np.exp(_dirichlet_log(x, alpha, lnB)))
    k = shape_of(x)[0]
    inner = np.exp(_dirichlet_log(np.where(edge, 1.0 / k, x), alpha, lnB))
    xe = np.where(edge, x, 1.0 / k)  # each branch at its own points (the double where)
    powers = np.prod(np.transpose(np.transpose(xe) ** (alpha - 1)), axis=0)
    return np.squeeze(np.where(edge, powers * np.exp(-lnB), inner))


for _name in CONTINUOUS:
    for _m in CONTINUOUS_METHODS:
        RULES[(_name, _m)] = _continuous_rule(_name, _m)
for _name, _d in CONTINUOUS.items():
    for _m in ("ppf", "isf"):
        if getattr(_d, _m) is not None:
            RULES[(_name, _m)] = _quantile_rule(_name, _m)
for _name in DISCRETE:
    for _m in DISCRETE_METHODS:
        RULES[(_name, _m)] = _discrete_rule(_name, _m)
RULES[("multivariate_normal", "logpdf")] = mvn_logpdf
RULES[("multivariate_normal", "pdf")] = mvn_pdf
RULES[("dirichlet", "logpdf")] = dirichlet_logpdf
RULES[("dirichlet", "pdf")] = dirichlet_pdf


def supported() -> str:
    """The supported distributions and methods, for error messages and docs."""
    by: dict[str, list[str]] = {}
    for (d, m) in RULES:
        by.setdefault(d, []).append(m)
    return "; ".join(f"{d} ({', '.join(ms)})" for d, ms in by.items())


def _unsupported(name: str, method: str) -> NoDerivativeRule:
    return NoDerivativeRule(
        f"scipy.stats.{name}.{method}",
        f"dualrev differentiates these scipy.stats distributions and methods: {supported()}.")


# ------------------------------------------------------------------ installing
# 1. the registry entries: a dispatcher on each distribution instance (st.norm.logpdf)
for (_name, _m), _rule in RULES.items():
    dispatch(getattr(st, _name), _m, _rule)


def _patch(cls: type, method: str, traced: Callable[..., Any]) -> None:
    """Replace ``cls.method`` (where cls or a base class defines it; a method this SciPy
    lacks is left out): with a traced argument ``traced(self, *args, **kwargs)``."""
    owner = next((c for c in cls.__mro__ if method in c.__dict__), None)
    if owner is None or owner is object:
        return
    cls = owner
    original = cls.__dict__[method]

    @functools.wraps(original)
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _traced(args, kwargs):
            return traced(self, *args, **kwargs)
        return original(self, *args, **kwargs)

    CLASS_ORIGINALS[(cls, method)] = original
    setattr(cls, method, patched)


def _by_name(method: str) -> Callable[..., Any]:
    def traced(self: Any, *args: Any, **kwargs: Any) -> Any:
        name = getattr(self, "name", type(self).__name__.removesuffix("_gen"))
        rule = RULES.get((name, method))
        # a user's distribution named like one of SciPy's has none of its formulas
        if rule is None or type(getattr(st, name, None)) is not type(self):
            raise _unsupported(name, method)
        return rule(*args, **kwargs)

    return traced


# 2. every instance of rv_continuous / rv_discrete (the new instance a frozen distribution
# evaluates, other distributions): the same rules by the distribution's name, or a refusal
_REFUSED = ("ppf", "isf", "rvs", "stats", "mean", "var", "std", "median", "entropy",
            "moment", "interval", "expect", "support", "nnlf", "fit")
for _m in ("pdf", "logpdf", "cdf", "logcdf", "sf", "logsf", *_REFUSED):
    _patch(_infra.rv_continuous, _m, _by_name(_m))
for _m in ("pmf", "logpmf", "cdf", "logcdf", "sf", "logsf", "ppf", "isf", "rvs", "expect"):
    if _m in _infra.rv_discrete.__dict__:  # the others are rv_generic's, patched above
        _patch(_infra.rv_discrete, _m, _by_name(_m))


def _freeze(self: Any, *args: Any, **kwds: Any) -> Any:
    # SciPy's frozen distribution holds the traced parameters as given and calls the
    # distribution's methods with them (dispatched above); only a distribution whose
    # support is computed from its parameters fails here, by converting them
    try:
        return CLASS_ORIGINALS[(_infra.rv_generic, "freeze")](self, *args, **kwds)
    except TracerConversionError:
        raise _unsupported(self.name, "freeze (with traced parameters)") from None


_patch(_infra.rv_generic, "freeze", _freeze)


class _Frozen:
    """A multivariate distribution frozen with traced parameters (SciPy's frozen objects
    convert their parameters with np.asarray on construction)."""

    def __init__(self, name: str, **params: Any) -> None:
        self._name, self._params = name, params

    def logpdf(self, x: Any) -> Any:
        """The log density at ``x``."""
        return RULES[(self._name, "logpdf")](x, **self._params)

    def pdf(self, x: Any) -> Any:
        """The density at ``x``."""
        return RULES[(self._name, "pdf")](x, **self._params)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        raise _unsupported(self._name, attr)


def _mvn_freeze(self: Any, mean: Any = None, cov: Any = 1, allow_singular: bool = False,
                seed: Any = None, **kwds: Any) -> Any:
    # maxpts/abseps/releps only tune SciPy's cdf, which traced values cannot reach
    return _Frozen("multivariate_normal", mean=mean, cov=cov, allow_singular=allow_singular)


def _mvn_frozen(method: str) -> Callable[..., Any]:
    def traced(self: Any, x: Any) -> Any:
        return RULES[("multivariate_normal", method)](
            x, self.mean, self.cov, self.allow_singular)

    return traced


# 3. multivariate distributions: their methods on other instances (a frozen one's), the
# frozen objects' methods, and freezing with traced parameters
for _m in MULTIVARIATE_METHODS:
    _patch(_mv.multivariate_normal_gen, _m,
           lambda self, *a, _m=_m, **k: RULES[("multivariate_normal", _m)](*a, **k))
    _patch(_mv.dirichlet_gen, _m, lambda self, *a, _m=_m, **k: RULES[("dirichlet", _m)](*a, **k))
    _patch(_mv.multivariate_normal_frozen, _m, _mvn_frozen(_m))
for _m in ("cdf", "logcdf", "rvs", "entropy", "fit"):
    _patch(_mv.multivariate_normal_gen, _m,
           lambda self, *a, _m=_m, **k: (_ for _ in ()).throw(
               _unsupported("multivariate_normal", _m)))
for _m in ("mean", "var", "cov", "entropy", "rvs"):
    _patch(_mv.dirichlet_gen, _m, lambda self, *a, _m=_m, **k: (_ for _ in ()).throw(
        _unsupported("dirichlet", _m)))
_patch(_mv.multivariate_normal_gen, "__call__", _mvn_freeze)
_patch(_mv.dirichlet_gen, "__call__",
       lambda self, alpha, seed=None: _Frozen("dirichlet", alpha=alpha))

__all__ = ["RULES", "supported", "mvn_logpdf", "mvn_pdf", "dirichlet_logpdf",
           "dirichlet_pdf"]
del _name, _m, _rule, _d
