"""Derivatives of the incomplete gamma and beta functions in their shape parameters
(dualrev/catalogue/incomplete.py), and of everything built on them: the inverses,
chdtr/gdtr/stdtr/fdtr, and the scipy.stats distributions' cdf, sf, logcdf, logsf, ppf,
isf in their shapes.

References: tests/catalogue/data/incomplete_references.json, mpmath at 40 digits
(written by make_special_references.py; mpmath is not a test dependency). The error
bounds below are the measured maxima rounded up, per region:

- d/da gammainc, 132 points, a in [1e-3, 1e4], x from 1e-3 a to 10 a: 1.2e-13;
- d/da, d/db betainc, 488 points, a, b in [1e-3, 1e4], x from 1e-4 to 1 - 1e-4:
  2e-12 where both shapes are >= 0.1; up to 6e-10 where one is 1e-3 and the
  derivative is in the other (it is O(that shape), computed from O(1) terms);
- second derivatives (132 and 175 points, three per beta point): relative to
  |d2| + |d1| (they cross zero), 1e-11 for gammainc, 1e-9 for betainc;
- inverses (the implicit function theorem): 1.2e-12; stdtr in df: 7.2e-11 (at df =
  1e4 the derivative is O(1/df**2), a difference of two O(1/df) terms).
"""

from __future__ import annotations

import json
import pathlib
import warnings

import numpy as np
import pytest
import scipy.optimize as so
import scipy.special as sc
import scipy.stats as st

import dualrev as dr
from dualrev.catalogue import incomplete as inc

TABLE = json.loads((pathlib.Path(__file__).parent / "data" /
                    "incomplete_references.json").read_text())


def fd(f, x, h=1e-5):
    """Fourth-order central differences."""
    return (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)


def rel(got, want):
    return np.abs(np.asarray(got) - want) / np.abs(want)


# ------------------------------------------------------------------ against mpmath
def test_gammainc_in_a_against_mpmath():
    a, x, d1, d2 = np.array(TABLE["gammainc"]).T
    assert len(a) >= 100
    assert np.max(rel(inc.gammainc_da(a, x), d1)) < 2e-13
    e2 = np.abs(inc.gammainc_daa(a, x) - d2) / (np.abs(d2) + np.abs(d1))
    assert np.max(e2) < 1e-11
    # the same numbers through the transforms, both modes, vmap'd
    sub = slice(None, None, 7)
    g = dr.vmap(dr.grad(sc.gammainc))(a[sub], x[sub])
    np.testing.assert_allclose(g, d1[sub], rtol=2e-13)
    j = dr.jvp(lambda s: sc.gammainc(s, x[sub]), (a[sub],), (np.ones_like(a[sub]),))[1]
    np.testing.assert_array_equal(j, g)
    np.testing.assert_allclose(dr.vmap(dr.grad(dr.grad(sc.gammainc)))(a[sub], x[sub]),
                               d2[sub], rtol=1e-11, atol=1e-11 * np.max(np.abs(d1)))


def test_betainc_in_a_and_b_against_mpmath():
    rows = TABLE["betainc"]
    a, b, x, da, db = np.array([r[:5] for r in rows]).T
    assert len(a) >= 300
    ea, eb = rel(inc.betainc_da(a, b, x), da), rel(inc.betainc_db(a, b, x), db)
    both = np.minimum(a, b) >= 0.1
    assert np.max(ea[both]) < 2e-12 and np.max(eb[both]) < 2e-12
    assert np.max(ea) < 1e-9 and np.max(eb) < 1e-9
    sec = np.array([(r[0], r[1], r[2], r[3], r[4], *r[5]) for r in rows if r[5]])
    a, b, x, da, db, daa, dab, dbb = sec.T
    assert len(a) >= 100
    scale = np.abs(da) + np.abs(db)
    for f, want in ((inc.betainc_daa, daa), (inc.betainc_dab, dab), (inc.betainc_dbb, dbb)):
        assert np.max(np.abs(f(a, b, x) - want) / (np.abs(want) + scale)) < 1e-9
    # through the transforms: the Hessian in (a, b) at a few points
    for i in range(0, len(a), 23):
        H = dr.hessian(lambda s, i=i: sc.betainc(s[0], s[1], x[i]))(np.array([a[i], b[i]]))
        want = np.array([[daa[i], dab[i]], [dab[i], dbb[i]]])
        np.testing.assert_allclose(H, want, rtol=1e-9, atol=1e-9 * scale[i])


def test_inverses_against_mpmath():
    a, y, _, want = np.array(TABLE["gammaincinv"]).T
    got = dr.vmap(dr.grad(sc.gammaincinv))(a, y)
    np.testing.assert_allclose(got, want, rtol=2e-12)
    a, b, y, _, wa, wb = np.array(TABLE["betaincinv"]).T
    ga, gb = dr.vmap(dr.grad(sc.betaincinv, argnums=(0, 1)))(a, b, y)
    np.testing.assert_allclose(ga, wa, rtol=2e-12)
    np.testing.assert_allclose(gb, wb, rtol=2e-12)


def test_stdtr_in_df_against_mpmath():
    df, t, want = np.array(TABLE["stdtr"]).T
    got = dr.vmap(dr.grad(sc.stdtr))(df, t)
    np.testing.assert_allclose(got, want, rtol=1e-10)


# ------------------------------------------------------------------ everything built on them
SHAPE_CALLS = {  # (function of the shape, point)
    "gammaincc": (lambda a: sc.gammaincc(a, 1.7), 2.3),
    "gammainccinv": (lambda a: sc.gammainccinv(a, 0.3), 2.3),
    "betaincc b": (lambda b: sc.betaincc(2.1, b, 0.3), 2.3),
    "betainccinv a": (lambda a: sc.betainccinv(a, 2.0, 0.3), 2.3),
    "chdtr": (lambda v: sc.chdtr(v, 2.5), 3.3),
    "chdtrc": (lambda v: sc.chdtrc(v, 2.5), 3.3),
    "chdtri": (lambda v: sc.chdtri(v, 0.3), 3.3),
    "gdtr": (lambda b: sc.gdtr(1.2, b, 2.5), 3.3),
    "gdtrc": (lambda b: sc.gdtrc(1.2, b, 2.5), 3.3),
    "gdtrix": (lambda b: sc.gdtrix(1.2, b, 0.3), 3.3),
    "gdtria": (lambda b: sc.gdtria(0.3, b, 2.0), 3.3),
    "stdtr t>0": (lambda d: sc.stdtr(d, 2.7), 3.3),
    "stdtrit": (lambda d: sc.stdtrit(d, 0.9), 3.3),
    "fdtr dfn": (lambda d: sc.fdtr(d, 4.5, 1.3), 3.3),
    "fdtr dfd": (lambda d: sc.fdtr(2.5, d, 1.3), 3.3),
    "fdtrc dfd": (lambda d: sc.fdtrc(2.5, d, 1.3), 3.3),
    "fdtri dfn": (lambda d: sc.fdtri(d, 4.5, 0.3), 3.3),
    "fdtri dfd": (lambda d: sc.fdtri(2.5, d, 0.3), 3.3),
    "gamma.logsf": (lambda a: st.gamma.logsf(2.0, a, scale=1.5), 1.7),
    "gamma.isf": (lambda a: st.gamma(a, loc=0.1).isf(0.2), 1.7),
    "beta.logcdf b": (lambda b: st.beta.logcdf(0.3, 2.0, b), 1.7),
    "beta.ppf a": (lambda a: st.beta.ppf(0.7, a, 3.0), 1.7),
    "t.sf": (lambda d: st.t.sf(-0.4, d, scale=2.0), 4.5),
    "t.ppf": (lambda d: st.t.ppf(0.05, d), 4.5),
    "chi2.logcdf": (lambda d: st.chi2.logcdf(2.2, d), 3.5),
    "chi2.isf": (lambda d: st.chi2.isf(0.3, d), 3.5),
    "invgamma.cdf": (lambda a: st.invgamma.cdf(0.8, a), 2.5),
    "invgamma.ppf": (lambda a: st.invgamma(a).ppf(0.4), 2.5),
    "nbinom.cdf n": (lambda n: st.nbinom.cdf(3, n, 0.4), 2.5),
    "nbinom.logcdf n": (lambda n: st.nbinom.logcdf(3, n, 0.4), 2.5),
    "nbinom.logsf n": (lambda n: st.nbinom(n, 0.4).logsf(3), 2.5),
}


@pytest.mark.parametrize("name", sorted(SHAPE_CALLS))
def test_functions_built_on_them_in_their_shapes(name):
    f, v = SHAPE_CALLS[name]
    g = dr.grad(f)(v)
    np.testing.assert_allclose(g, fd(f, v), rtol=1e-7)
    assert dr.jvp(f, (v,), (1.0,))[1] == pytest.approx(g, rel=1e-14)
    # second derivatives: reverse over forward and forward over reverse agree with the
    # differences of the first
    h = dr.hessian(f)(v)
    np.testing.assert_allclose(h, fd(dr.grad(f), v), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(dr.jacrev(dr.jacfwd(f))(v), h, rtol=1e-12)


SOLVERS = {  # (solver of one argument, point): s with F(s, ...) = p
    "chdtriv p": (lambda p: sc.chdtriv(p, 2.5), 0.4),
    "chdtriv x": (lambda x: sc.chdtriv(0.4, x), 2.5),
    "gdtrib a": (lambda a: sc.gdtrib(a, 0.4, 2.5), 1.2),
    "gdtrib x": (lambda x: sc.gdtrib(1.2, 0.4, x), 2.5),
    "stdtridf p": (lambda p: sc.stdtridf(p, 1.5), 0.85),
    "stdtridf t": (lambda t: sc.stdtridf(0.85, t), 1.5),
    "fdtridfd dfn": (lambda n: sc.fdtridfd(n, 0.4, 1.3), 2.5),
    "fdtridfd x": (lambda x: sc.fdtridfd(2.5, 0.4, x), 1.3),
    "btdtria b": (lambda b: sc.btdtria(0.4, b, 0.3), 2.0),
    "btdtrib p": (lambda p: sc.btdtrib(2.0, p, 0.3), 0.4),
}


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_shape_solvers(name):
    f, v = SOLVERS[name]
    g = dr.grad(f)(v)
    np.testing.assert_allclose(g, fd(f, v), rtol=1e-7)
    assert dr.jvp(f, (v,), (1.0,))[1] == pytest.approx(g, rel=1e-14)
    np.testing.assert_allclose(dr.hessian(f)(v), fd(dr.grad(f), v), rtol=1e-6)


def test_a_solver_result_that_solves_nothing_has_a_nan_derivative():
    # fdtr(2.9, inf, 0.5) = 0.33 < p: no dfd solves it, SciPy returns 1e100
    assert sc.fdtridfd(2.9, 0.72, 0.5) == 1e100
    with pytest.warns(dr.NonFiniteDerivativeWarning):
        g = dr.grad(lambda n: sc.fdtridfd(n, 0.72, 0.5))(2.9)
    assert np.isnan(g)
    with pytest.warns(dr.NonFiniteDerivativeWarning):  # nan in the second derivative too
        assert np.isnan(dr.hessian(lambda n: sc.fdtridfd(n, 0.72, 0.5))(2.9))


def test_gamma_logsf_in_a_against_mpmath():
    # d/da log Q(a, x) = -P_a / Q, Q by SciPy (accurate), P_a from the table
    a, x, d1, _ = np.array(TABLE["gammainc"]).T
    m = (a >= 0.1) & (a <= 1e3) & (x < 5 * a)
    q = sc.gammaincc(a[m], x[m])
    got = dr.vmap(dr.grad(lambda s, z: st.gamma.logsf(z, s)))(a[m], x[m])
    np.testing.assert_allclose(got, -d1[m] / q, rtol=1e-12)


def test_mixed_shape_and_point_derivatives():
    # d2/da dx of gammainc = d/da of the density; of betainc likewise, forward and reverse
    for f, args in ((lambda s: sc.gammainc(s[0], s[1]), np.array([2.5, 1.7])),
                    (lambda s: sc.betainc(s[0], 1.5, s[1]), np.array([2.5, 0.3])),
                    (lambda s: sc.betaincinv(s[0], 1.5, s[1]), np.array([2.5, 0.3])),
                    (lambda s: sc.gammaincinv(s[0], s[1]), np.array([2.5, 0.3]))):
        H = dr.hessian(f)(args)
        fdH = np.array([fd(lambda t, i=i, f=f, args=args: dr.grad(f)(args + t * np.eye(2)[i]), 0.0)
                        for i in range(2)])
        np.testing.assert_allclose(H, fdH, rtol=1e-6)
        np.testing.assert_allclose(H, H.T, rtol=1e-12)


def test_third_derivatives_in_the_shapes_are_refused_by_name():
    with pytest.raises(dr.NoDerivativeRule, match="third derivative of scipy.special.gammainc"):
        dr.grad(dr.grad(dr.grad(lambda a: sc.gammainc(a, 1.3))))(1.5)
    with pytest.raises(dr.NoDerivativeRule, match="third derivative of scipy.special.betainc"):
        dr.jacfwd(dr.hessian(lambda a: sc.betainc(a, 2.0, 0.3)))(1.5)
    # the third derivative mixed with x is a closed form: no refusal
    third = dr.grad(lambda x: dr.grad(dr.grad(lambda a: sc.gammainc(a, x)))(1.5))(1.3)
    want = fd(lambda x: inc.gammainc_daa(1.5, x), 1.3)
    assert third == pytest.approx(want, rel=1e-7)


# ------------------------------------------------------------------ domain edges
def test_edges():
    # a = 0: gammainc is 1 for x > 0 (SciPy), its one-sided derivative -E1(x)
    for x in (0.3, 1.5, 20.0):
        assert dr.grad(lambda a, x=x: sc.gammainc(a, x))(0.0) == pytest.approx(
            -sc.exp1(x), rel=1e-12)
    # x = 0 and inf: P is 0 and 1 for every a
    assert dr.grad(lambda a: sc.gammainc(a, 0.0))(2.0) == 0.0
    assert dr.grad(lambda a: sc.gammaincc(a, np.inf))(2.0) == 0.0
    assert dr.grad(lambda a: sc.betainc(a, 2.0, 1.0))(2.0) == 0.0
    assert dr.grad(lambda b: sc.betainc(2.0, b, 0.0))(2.0) == 0.0
    # a shape 0: betainc is SciPy's limit (1 or 0), its one-sided derivative finite
    h = 1e-8
    for a, b in ((0.0, 2.0), (2.0, 0.0)):
        ga, gb = dr.grad(sc.betainc, argnums=(0, 1))(a, b, 0.3)
        if np.isnan(sc.betainc(a, b, 0.3)):  # SciPy < 1.16: no limit, no derivative
            assert np.isnan(ga) and np.isnan(gb)
            continue
        assert ga == pytest.approx((sc.betainc(a + h, b, 0.3) - sc.betainc(a, b, 0.3)) / h,
                                   rel=1e-6, abs=1e-12)
        assert gb == pytest.approx((sc.betainc(a, b + h, 0.3) - sc.betainc(a, b, 0.3)) / h,
                                   rel=1e-6, abs=1e-12)
    # Hessians in (shape, x) at x = 0 and 1, where the density and its shape derivative
    # vanish (0 log 0 = 0, not 0 * -inf)
    for f, at in ((lambda s: sc.gammainc(s[0], s[1]), [2.5, 0.0]),
                  (lambda s: sc.betainc(s[0], 2.0, s[1]), [2.5, 0.0]),
                  (lambda s: sc.betainc(2.0, s[0], s[1]), [2.5, 1.0])):
        np.testing.assert_array_equal(dr.hessian(f)(np.array(at)), np.zeros((2, 2)))
    # the inverses at y = 0 and 1: the support's ends for every shape
    assert dr.grad(lambda a: sc.gammaincinv(a, 0.0))(2.0) == 0.0
    assert dr.grad(lambda a: sc.betaincinv(a, 2.0, 1.0))(2.0) == 0.0
    # invalid shapes: SciPy's nan, and a nan derivative (with dualrev's warning)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isnan(dr.grad(lambda a: sc.gammainc(a, 1.0))(-1.0))
        assert np.isnan(dr.grad(lambda a: sc.betainc(a, 2.0, 0.5))(-1.0))


# ------------------------------------------------------------------ a survival model
def test_gamma_survival_model_fitted_with_exact_gradients():
    # right-censored gamma lifetimes: -sum log f(t_i) over failures - sum log S(c_j)
    # over censored units, fitted in (log a, log scale) with dualrev's gradient and
    # Hessian (lifelines' approach through autograd)
    rng = np.random.default_rng(22)
    t = st.gamma.rvs(2.5, scale=1.3, size=60, random_state=rng)
    c = rng.uniform(0.5, 6.0, 60)
    seen, time = t <= c, np.minimum(t, c)

    def nll(th):
        a, s = np.exp(th[0]), np.exp(th[1])
        return -(np.sum(st.gamma.logpdf(time[seen], a, scale=s))
                 + np.sum(st.gamma.logsf(time[~seen], a, scale=s)))

    th0 = np.array([0.0, 0.0])
    g = dr.grad(nll)(th0)
    np.testing.assert_allclose(g, [fd(lambda u, i=i: nll(th0 + u * np.eye(2)[i]), 0.0)
                                   for i in range(2)], rtol=1e-7)
    res = so.minimize(nll, th0, jac=dr.grad(nll), method="BFGS", options={"gtol": 1e-8})
    assert res.success and np.max(np.abs(dr.grad(nll)(res.x))) < 1e-8
    ref = so.minimize(nll, th0, method="Nelder-Mead",
                      options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 4000})
    np.testing.assert_allclose(res.x, ref.x, atol=1e-5)
    H = dr.hessian(nll)(res.x)
    Hfd = np.array([fd(lambda u, i=i: dr.grad(nll)(res.x + u * np.eye(2)[i]), 0.0)
                    for i in range(2)])
    np.testing.assert_allclose(H, Hfd, rtol=1e-6)
    assert np.all(np.linalg.eigvalsh(H) > 0)


# ------------------------------------------------------------------ random points vs SciPy
def _richardson(f, v, h):
    """Central differences with one Richardson step, (4 D(h/2) - D(h)) / 3."""
    d1 = (f(v + h) - f(v - h)) / (2 * h)
    d2 = (f(v + h / 2) - f(v - h / 2)) / h
    return (4 * d2 - d1) / 3


def test_random_points_against_scipys_own_differences():
    # 400 seeded points, shapes log-uniform in [1e-2, 3e3], x around the mean: the
    # derivatives agree with differences of SciPy's own values (of the smaller tail, P or
    # Q, I or 1 - I, whose rounding is relative), in one vectorised call each
    rng = np.random.default_rng(2212)
    a = 10 ** rng.uniform(-2, 3.5, 400)
    x = a * 10 ** rng.uniform(-1, 0.6, 400)
    p = sc.gammainc(a, x)
    m = (p > 1e-8) & (p < 1 - 1e-8)
    a, x, p = a[m], x[m], p[m]
    assert len(a) > 200
    low = p < 0.5
    h = 1e-4 * a

    def tail(s):
        return np.where(low, sc.gammainc(s, x), -sc.gammaincc(s, x))

    want = _richardson(tail, a, h)
    got = dr.vmap(dr.grad(sc.gammainc))(a, x)
    tol = 1e-7 * np.abs(want) + 1e-13 * np.minimum(p, 1 - p) / h
    assert np.all(np.abs(got - want) <= tol), np.max(np.abs(got - want) / tol)
    b = 10 ** rng.uniform(-2, 3.5, len(a))
    y = np.clip(a / (a + b) * 10 ** rng.uniform(-0.3, 0.3, len(a)), 1e-6, 1 - 1e-6)
    ib = sc.betainc(a, b, y)
    k = (ib > 1e-8) & (ib < 1 - 1e-8)
    a, b, y, ib = a[k], b[k], y[k], ib[k]
    low = ib < 0.5
    ga, gb = dr.vmap(dr.grad(sc.betainc, argnums=(0, 1)))(a, b, y)
    for got, want, step in (
            (ga, _richardson(lambda s: np.where(low, sc.betainc(s, b, y),
                                                -sc.betaincc(s, b, y)), a, 1e-4 * a), 1e-4 * a),
            (gb, _richardson(lambda s: np.where(low, sc.betainc(a, s, y),
                                                -sc.betaincc(a, s, y)), b, 1e-4 * b), 1e-4 * b)):
        tol = 1e-7 * np.abs(want) + 1e-13 * np.minimum(ib, 1 - ib) / step
        assert np.all(np.abs(got - want) <= tol), np.max(np.abs(got - want) / tol)
