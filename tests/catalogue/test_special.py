"""scipy.special ufuncs: values equal SciPy's, derivatives against finite differences to
second order, forward against reverse."""

import math

import numpy as np
import pytest
import scipy.special as sc

import dualrev as dr
from dualrev.primitive import UFUNC_HANDLERS, qualified_name
from tests.helpers import check_all

rng = np.random.default_rng(11)
U = rng.uniform(0.2, 0.8, 4)  # inside (0, 1)
P = rng.uniform(1.2, 3.0, 4)  # positive, away from 0

UNARY = {
    "erf": (sc.erf, U - 0.5), "erfc": (sc.erfc, U - 0.5), "erfinv": (sc.erfinv, U - 0.5),
    "erfcinv": (sc.erfcinv, U + 0.5), "erfcx": (sc.erfcx, U), "gamma": (sc.gamma, P),
    "gammaln": (sc.gammaln, P), "loggamma": (sc.loggamma, P), "digamma": (sc.digamma, P),
    "psi": (sc.psi, P), "expit": (sc.expit, P - 2), "logit": (sc.logit, U),
    "log_expit": (sc.log_expit, P - 2), "entr": (sc.entr, U), "ndtr": (sc.ndtr, P - 2),
    "ndtri": (sc.ndtri, U), "log_ndtr": (sc.log_ndtr, P - 4), "i0": (sc.i0, P - 2),
    "i0e": (sc.i0e, P - 2), "i1": (sc.i1, P - 2), "i1e": (sc.i1e, P - 2), "j0": (sc.j0, P),
    "j1": (sc.j1, P), "y0": (sc.y0, P), "y1": (sc.y1, P),
    "polygamma": (lambda x: sc.polygamma(1, x), P),
    "softplus": (lambda x: sc.softplus(x), P - 2),
    "iv": (lambda x: sc.iv(1.5, x), P), "ive": (lambda x: sc.ive(2.5, x), P),
    "jv": (lambda x: sc.jv(1.5, x), P), "yv": (lambda x: sc.yv(0.5, x), P),
    "gammainc": (lambda x: sc.gammainc(2.5, x), P),
    "gammaincc": (lambda x: sc.gammaincc(1.5, x), P),
}

BINARY = {
    "beta": (sc.beta, P, P[::-1]), "betaln": (sc.betaln, P, P[::-1]),
    "xlogy": (sc.xlogy, U, P), "xlog1py": (sc.xlog1py, U, U),
    "rel_entr": (sc.rel_entr, U, U[::-1]), "kl_div": (sc.kl_div, U, U[::-1]),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_special(name):
    f, x = UNARY[name]
    out, _ = dr.jvp(f, (x,), (np.ones_like(x),))
    np.testing.assert_allclose(out, f(x), rtol=1e-13)
    check_all(f, (x,), order=2, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_special(name):
    f, x, y = BINARY[name]
    check_all(f, (x, y), order=2, rtol=1e-6, atol=1e-8)


def test_closed_forms():
    x = np.array([0.3, 1.1])
    np.testing.assert_allclose(dr.grad(lambda x: np.sum(sc.erf(x)))(x),
                               2 / np.sqrt(np.pi) * np.exp(-x * x), rtol=1e-14)
    np.testing.assert_allclose(dr.grad(lambda x: np.sum(sc.gammaln(x)))(x + 1), sc.digamma(x + 1))
    s = sc.expit(x)
    np.testing.assert_allclose(dr.grad(lambda x: np.sum(sc.expit(x)))(x), s * (1 - s))


def test_xlogy_at_zero_has_the_nondiff_ufunc_in_y():
    assert dr.grad(lambda y: sc.xlogy(0.0, y))(2.0) == 0.0
    assert dr.grad(lambda x: sc.xlogy(x, 2.0))(0.0) == np.log(2.0)


@pytest.mark.parametrize("f", [lambda v: sc.modstruve(v, 1.3), lambda a: sc.hyp1f1(a, 1.0, 1.3),
                               lambda n: sc.polygamma(n, 1.3) * 1.0])
def test_orders_and_shape_parameters_are_not_differentiated_silently(f):
    with pytest.raises(dr.NoDerivativeRule, match="w.r.t."):
        dr.grad(f)(1.5)


# ------------------------------------------------------------------ the rules added for
# issue 14 (the conformance harness checks them on its sample domains; these check the
# points where the closed forms cancel, the closed forms themselves, and the refusals)
SERIES = {  # closed forms 0/0 at a point, replaced by a Taylor series near it
    "exprel at 0": (sc.exprel, np.array([0.0, 1e-3, -4e-3, 0.3])),
    "boxcox at lmbda 0": (lambda lm: sc.boxcox(1.7, lm), np.array([0.0, 1e-3, -0.5])),
    "boxcox1p at lmbda 0": (lambda lm: sc.boxcox1p(0.6, lm), np.array([0.0, 2e-3, 0.8])),
    "inv_boxcox at lmbda 0": (lambda lm: sc.inv_boxcox(0.8, lm), np.array([0.0, 1e-3, 0.4])),
    "inv_boxcox1p at lmbda 0": (lambda lm: sc.inv_boxcox1p(0.5, lm),
                                np.array([0.0, -1e-3, 0.4])),
    "spence at 1": (sc.spence, np.array([1.0, 1.0 + 1e-3, 0.6])),
    "ellipk at 0": (sc.ellipk, np.array([0.0, 1e-3, -0.5, 0.5, 0.8])),
    "ellipe at 0": (sc.ellipe, np.array([0.0, -1e-3, 0.5, -0.7])),
    "ellipkm1 at 1": (sc.ellipkm1, np.array([1.0, 0.999, 0.5, 0.1])),
    "sici's Si at 0": (lambda x: sc.sici(x)[0], np.array([0.0, 2e-3, -0.4])),
    "shichi's Shi at 0": (lambda x: sc.shichi(x)[0], np.array([0.0, -2e-3, 0.4])),
    "it2i0k0 near 0": (lambda x: sc.it2i0k0(x)[0], np.array([3e-3, 8e-3, 0.4])),
    "it2j0y0 near 0": (lambda x: sc.it2j0y0(x)[0], np.array([3e-3, 8e-3, 0.4])),
}


@pytest.mark.parametrize("name", sorted(SERIES))
def test_series_near_cancelling_points(name):
    f, x = SERIES[name]
    out, _ = dr.jvp(f, (x,), (np.ones_like(x),))
    np.testing.assert_allclose(out, f(x), rtol=1e-14)
    check_all(f, (x,), order=2, rtol=1e-6, atol=1e-8, initial_step=1e-3)


def test_tklmbda_in_lmbda_at_0():
    # SciPy's tklmbda is the logistic cdf exactly for |lmbda| below a threshold, so finite
    # differences need steps beyond it; the derivative is that of the smooth function
    h = 1e-3
    want = (sc.tklmbda(0.4, h) - sc.tklmbda(0.4, -h)) / (2 * h)
    np.testing.assert_allclose(dr.grad(lambda lm: sc.tklmbda(0.4, lm))(0.0), want, rtol=1e-5)
    check_all(lambda lm: sc.tklmbda(0.4, lm), (np.array([0.02, -0.3]),), order=2,
              rtol=1e-6, atol=1e-8, initial_step=1e-3)


def test_betainc_closed_form_in_x():
    a, b, x = 2.5, 1.5, np.array([0.2, 0.6])
    want = x ** (a - 1) * (1 - x) ** (b - 1) / sc.beta(a, b)
    np.testing.assert_allclose(dr.grad(lambda x: np.sum(sc.betainc(a, b, x)))(x), want,
                               rtol=1e-13)
    np.testing.assert_allclose(dr.grad(lambda x: np.sum(sc.betaincc(a, b, x)))(x), -want,
                               rtol=1e-13)
    # the inverse's derivative is 1 / the density at the result
    y = sc.betainc(a, b, x)
    np.testing.assert_allclose(dr.grad(lambda y: np.sum(sc.betaincinv(a, b, y)))(y),
                               1 / want, rtol=1e-10)


def test_rgamma_and_gammasgn():
    x = np.array([0.7, 2.5, -1.5])
    np.testing.assert_allclose(dr.grad(lambda x: np.sum(sc.rgamma(x)))(x),
                               -sc.rgamma(x) * sc.digamma(x), rtol=1e-13)
    out, tangent = dr.jvp(sc.gammasgn, (x,), (np.ones_like(x),))
    np.testing.assert_array_equal(out, sc.gammasgn(x))
    np.testing.assert_array_equal(tangent, 0.0)


def test_integer_orders_and_expn_at_order_0():
    x = np.array([0.6, 1.7])
    for n in (0, 1, 3):  # expn(0, x) = e^-x / x has no lower order: its own formula
        check_all(lambda x, n=n: sc.expn(n, x), (x,), order=2, rtol=1e-6, atol=1e-8)
    check_all(lambda x: sc.yn(2, x) + sc.kn(np.array([0, 3]), x), (x,), order=2,
              rtol=1e-6, atol=1e-8)


def test_multi_output_ufuncs_are_one_primitive_per_output():
    x = np.array([0.4, 1.3])
    s, c = sc.fresnel(x)
    (ds, dc) = (dr.grad(lambda x, i=i: np.sum(sc.fresnel(x)[i]))(x) for i in (0, 1))
    np.testing.assert_allclose(ds, np.sin(np.pi * x**2 / 2), rtol=1e-14)
    np.testing.assert_allclose(dc, np.cos(np.pi * x**2 / 2), rtol=1e-14)
    check_all(lambda x: sc.airy(x)[1] * sc.sici(x)[0], (x,), order=2, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("f", [
    lambda n: sc.nbdtr(2, n, 0.3), lambda b: sc.hyp2f1(2.0, b, 1.5, 0.3),
    lambda n: sc.eval_legendre(n, 0.3), lambda v: sc.struve(v, 1.3),
    lambda k: sc.pdtr(k, 1.3), lambda a: sc.hyp1f1(a, 1.5, 0.3),
    lambda m: sc.ellipj(0.5, m)[0],
])
def test_parameters_of_the_new_rules_are_not_differentiated_silently(f):
    with pytest.raises(dr.NoDerivativeRule, match="w.r.t."):
        dr.grad(f)(0.7)


def test_real_only_derivatives_refuse_complex_arguments():
    z = np.array([0.5 + 0.2j, 1.1 - 0.1j])
    with pytest.raises(dr.NoDerivativeRule, match="scipy.special.jve of a complex"):
        dr.jvp(lambda z: sc.jve(1.5, z), (z,), (np.ones_like(z),))
    with pytest.raises(dr.NoDerivativeRule, match="non-integer degree"):
        dr.grad(lambda x: sc.eval_chebyt(2.5, x))(0.3)


def _complex_fd(f, z, h=1e-4):
    # d/dz of a holomorphic f: central differences along the real axis, one Richardson step
    d = [(f(z + s) - f(z - s)) / (2 * s) for s in (h, h / 2)]
    return (4 * d[1] - d[0]) / 3


def test_psi_gamma_loggamma_derivatives_at_complex_points():
    # psi's derivative is polygamma(1, z), which SciPy has for real z only: it refused
    # complex z (and so the second derivatives of gamma/loggamma/rgamma), found by the
    # conformance harness's pinned refusals (second order only)
    z = np.array([0.7 + 0.4j, 2.5 - 1.5j, -1.3 + 0.6j, 12.0 + 3.0j, 0.05 + 0.02j])
    t = dr.jvp(sc.psi, (z,), (np.ones_like(z),))[1]
    np.testing.assert_allclose(t, _complex_fd(sc.psi, z), rtol=1e-8)
    # the reflection formula psi'(1 - z) + psi'(z) = pi^2 / sin^2(pi z), independent of
    # the series the rule sums
    t1 = dr.jvp(sc.psi, (1 - z,), (np.ones_like(z),))[1]
    np.testing.assert_allclose(t + t1, np.pi ** 2 / np.sin(np.pi * z) ** 2, rtol=1e-12,
                               atol=1e-14)  # z = 12 + 3i: two terms of 0.08 cancel
    for f in (sc.gamma, sc.loggamma, sc.rgamma):
        def d1(w, f=f):
            return dr.jvp(f, (w,), (np.ones_like(w),))[1]
        second = dr.jvp(d1, (z[:4],), (np.ones_like(z[:4]),))[1]
        np.testing.assert_allclose(second, _complex_fd(d1, z[:4]), rtol=1e-7)
    # forward over reverse (JAX's pairing): the reverse pullback of psi is conj(psi')
    third = dr.jvp(lambda w: dr.jvp(sc.psi, (w,), (np.ones_like(w),))[1], (z,),
                   (np.ones_like(z),))[1]
    np.testing.assert_allclose(third, _complex_fd(
        lambda w: dr.jvp(sc.psi, (w,), (np.ones_like(w),))[1], z), rtol=1e-7)


def test_polygamma_of_a_complex_argument_is_refused_as_scipy_does():
    # SciPy's polygamma raises TypeError on complex values; traced, dualrev refuses too
    with pytest.raises(TypeError):
        sc.polygamma(1, np.array([0.5 + 0.1j]))
    with pytest.raises(dr.NoDerivativeRule, match="polygamma of a complex argument"):
        dr.jvp(lambda z: sc.polygamma(1, z), (np.array([0.5 + 0.1j]),), (np.ones(1) + 0j,))


# ------------------------------------------------------------------ error names
UNROUTED = [f for f in (sc.agm, sc.wofz, sc.zetac, sc.mathieu_a) if f not in UFUNC_HANDLERS]


@pytest.mark.parametrize("ufunc", UNROUTED, ids=lambda f: f.__name__)
def test_an_unsupported_scipy_ufunc_is_named_as_scipy_special(ufunc):
    x = np.array([0.5, 0.75]) + (0j if ufunc is sc.wofz else 0.0)  # wofz: complex only
    with pytest.raises(dr.NoDerivativeRule, match=rf"scipy\.special\.{ufunc.__name__} \(ufunc\)"
                       ) as info:
        dr.jvp(lambda x: ufunc(*(x,) * ufunc.nin), (x,), (np.ones_like(x),))
    assert "numpy." not in str(info.value)


def test_qualified_names_of_scipy_ufuncs_and_their_aliases():
    # psi/digamma and jv/jn are one object each: the name is the one SciPy gives it
    for name in dir(sc):
        f = getattr(sc, name)
        if isinstance(f, np.ufunc):
            q = qualified_name(f)
            assert q.startswith("scipy.special.") and q.endswith(" (ufunc)"), (name, q)
            assert getattr(sc, q[len("scipy.special."):-len(" (ufunc)")]) is f, (name, q)
    assert qualified_name(sc.jn) == "scipy.special.jv (ufunc)"
    assert qualified_name(sc.digamma) == "scipy.special.psi (ufunc)"
    assert qualified_name(np.expm1) == "numpy.expm1 (ufunc)"  # NumPy's, not SciPy's


def test_polynomial_derivatives_at_the_interval_ends():
    # no (x**2 - 1) denominators: P_n'(1) = n(n+1)/2, U_n'(1) = n(n+1)(n+2)/3
    x = np.array([-1.0, 1.0])
    for n in (1, 2, 5):
        dp = np.diag(dr.jacfwd(lambda x, n=n: sc.eval_legendre(n, x))(x))
        np.testing.assert_allclose(dp, [(-1) ** (n + 1) * n * (n + 1) / 2, n * (n + 1) / 2])
        du = np.diag(dr.jacrev(lambda x, n=n: sc.eval_chebyu(n, x))(x))
        np.testing.assert_allclose(du, [(-1) ** (n + 1) * n * (n + 1) * (n + 2) / 3,
                                        n * (n + 1) * (n + 2) / 3])


# ------------------------------------------------------------------ domain edges (issue 21)
@pytest.mark.parametrize("n", [0, 1, 2, 3, 7])
def test_rgamma_derivatives_at_its_zeros(n):
    # 1/gamma(-n + e) = (-1)**n n! e (1 - psi(n + 1) e + ...): the first derivative at
    # -n is (-1)**n n!, the second 2 (-1)**(n + 1) n! psi(n + 1) (was nan: 0 * psi's pole)
    x = -float(n)
    first = (-1) ** n * math.factorial(n)
    second = 2 * (-1) ** (n + 1) * math.factorial(n) * sc.psi(n + 1)
    assert dr.grad(sc.rgamma)(x) == pytest.approx(first, rel=1e-13)
    assert dr.jvp(sc.rgamma, (x,), (1.0,))[1] == pytest.approx(first, rel=1e-13)
    assert dr.hessian(sc.rgamma)(x) == pytest.approx(second, rel=1e-12)
    assert dr.grad(dr.grad(sc.rgamma))(x) == pytest.approx(second, rel=1e-12)
    # and next to the zero, the same function as elsewhere (finite differences)
    for y in (x - 0.3, x + 0.3):
        h = 1e-6
        fd = (sc.rgamma(y + h) - sc.rgamma(y - h)) / (2 * h)
        assert dr.grad(sc.rgamma)(y) == pytest.approx(fd, rel=1e-8)


@pytest.mark.parametrize("f", [lambda x: sc.gammainc(1.0, x), lambda x: -sc.gammaincc(1.0, x),
                               lambda x: sc.chdtr(2.0, 2 * x), lambda x: sc.gdtr(1.0, 1.0, x),
                               lambda m: -sc.pdtr(0, m)])
def test_incomplete_gamma_one_sided_derivative_at_0(f):
    # each is 1 - e**-x near 0 (or its negative): derivative 1 at 0, where the rule's
    # (a - 1) log(x) was 0 * -inf (nan)
    assert dr.grad(f)(0.0) == pytest.approx(1.0, rel=1e-14)
    assert dr.jvp(f, (0.0,), (1.0,))[1] == pytest.approx(1.0, rel=1e-14)


def test_ellipkm1_derivative_next_to_its_pole():
    # d/dp K(1 - p) ~ -1/(2p) as p -> 0: at p = 1e-300, 1 - p rounds to 1 (ellipk(1) = inf)
    for p in (1e-300, 1e-20, 1e-5):
        want = -(sc.ellipe(1 - p) - p * sc.ellipkm1(p)) / (2 * (1 - p) * p)
        assert dr.grad(sc.ellipkm1)(p) == pytest.approx(want, rel=1e-12)
    h = 1e-9  # the second derivative is 1/(2 p**2): a step of 1e-7 is off in the 5th digit
    fd = (sc.ellipkm1(1e-5 + h) - sc.ellipkm1(1e-5 - h)) / (2 * h)
    assert dr.grad(sc.ellipkm1)(1e-5) == pytest.approx(fd, rel=1e-6)


def test_student_t_at_infinite_and_huge_df_is_the_normal():
    # stdtr(inf, t) is ndtr(t): its derivative the normal density (was inf - inf: nan);
    # at df = 1e12 two gammaln of 5e11 lost four digits of the density
    t = np.array([0.0, 0.7, -3.0])
    pdf = np.exp(-t * t / 2) / np.sqrt(2 * np.pi)
    for df, rtol in ((np.inf, 1e-14), (1e12, 1e-10)):  # t**4 / (4 df) from the normal
        got = dr.jvp(lambda t, df=df: sc.stdtr(df, t), (t,), (np.ones(3),))[1]
        np.testing.assert_allclose(got, pdf, rtol=rtol)
    np.testing.assert_allclose(dr.grad(lambda p: sc.stdtrit(np.inf, p))(0.3),
                               1 / (np.exp(-sc.ndtri(0.3) ** 2 / 2) / np.sqrt(2 * np.pi)),
                               rtol=1e-12)


@pytest.mark.parametrize("f, at, want", [
    (lambda x: sc.gammainc(2.0, x), 0.0, 1.0),  # x e**-x: its derivative at 0 is 1
    (lambda m: -sc.pdtr(1, m), 0.0, 1.0),  # pdtr(1, m) = (1 + m) e**-m
    (lambda x: sc.betainc(2.0, 2.0, x), 0.0, 6.0),  # 6 x (1 - x)
    (lambda x: sc.betainc(2.0, 2.0, x), 1.0, -6.0),
    (lambda x: sc.betainc(1.0, 2.0, x), 1.0, -2.0),  # 2 (1 - x)
    (lambda p: sc.bdtr(4, 5, p), 0.0, 0.0),  # -5 p**4
])
def test_second_derivatives_of_incomplete_functions_at_the_ends(f, at, want):
    # the density as exp(log density) had the derivative exp(..) * (a - 1) / x = 0 * inf
    assert dr.hessian(f)(at) == pytest.approx(want, rel=1e-12, abs=1e-14)
    assert dr.grad(dr.grad(f))(at) == pytest.approx(want, rel=1e-12, abs=1e-14)


def test_logit_second_derivative_overflows_alike_in_both_modes():
    # -(1 - 2x) / (x (1 - x))**2 at x = 1e-300 is -inf; reverse over reverse gave nan
    assert dr.grad(dr.grad(sc.logit))(1e-300) == -np.inf
    assert dr.hessian(sc.logit)(1e-300) == -np.inf
    assert dr.grad(dr.grad(sc.logit))(0.25) == pytest.approx(-0.5 / (0.25 * 0.75) ** 2)


def test_rgamma_second_derivative_just_above_zero():
    # -psi(x)/gamma(x) differentiated at x = 1e-300 was -inf (gamma's pole times psi's)
    assert dr.grad(dr.grad(sc.rgamma))(1e-300) == pytest.approx(-2 * sc.psi(1), rel=1e-12)


@pytest.mark.parametrize("f, at, d1, d2", [
    # poch(z, 2) = z (z + 1); binom(n, 2) = n (n - 1) / 2: polynomials through the
    # zeros of 1/gamma, where ans (psi - psi) was 0 * inf (nan)
    (lambda z: sc.poch(z, 2.0), 0.0, 1.0, 2.0),
    (lambda z: sc.poch(z, 2.0), -1.0, -1.0, 2.0),
    (lambda z: sc.poch(z, 2.0), 1e-300, 1.0, 2.0),
    (lambda n: sc.binom(n, 2.0), 0.0, -0.5, 1.0),
    (lambda n: sc.binom(n, 2.0), 1.0, 0.5, 1.0),
    # H0' = 2/pi - H1, L0' = 2/pi + L1: at 0 the second derivative is 0 (was nan)
    (lambda x: sc.struve(0.0, x), 0.0, 2 / np.pi, 0.0),
    (lambda x: sc.modstruve(0.0, x), 0.0, 2 / np.pi, 0.0),
])
def test_derivatives_through_zeros_of_reciprocal_gamma(f, at, d1, d2):
    for g in (dr.grad(f)(at), dr.jvp(f, (at,), (1.0,))[1]):
        assert g == pytest.approx(d1, rel=1e-12, abs=1e-15)
    for g in (dr.hessian(f)(at), dr.grad(dr.grad(f))(at)):
        assert g == pytest.approx(d2, rel=1e-10, abs=1e-12)


def test_bessel_derivatives_at_huge_arguments():
    # SciPy's ive(2, x) and kve(2, x) are nan from x = 1e20 on: the rules of i1e, k1e, k1
    # use the recurrences with I0/K0 and I1/K1 instead
    for x in (1e20, 1e300):
        assert np.isfinite(dr.grad(sc.i1e)(x)) and np.isfinite(dr.grad(sc.k1e)(x))
        assert dr.grad(sc.k1e)(x) == pytest.approx(sc.k1e(x) - sc.k0e(x) - sc.k1e(x) / x,
                                                   rel=1e-12)
    for x in (0.3, 5.0):  # and the same numbers as before where both exist
        h = 1e-6
        for f in (sc.i1e, sc.k1e, sc.k1):
            fd = (f(x + h) - f(x - h)) / (2 * h)
            assert dr.grad(f)(x) == pytest.approx(fd, rel=1e-7)


def test_expn_second_derivative_near_zero():
    # expn(2, x)'' = expn(0, x) = e**-x / x: 1e300 at x = 1e-300; reverse mode met the
    # order-0 branch's inf (and expn(-1, x)'s nan) through the where
    x = 1e-300
    assert dr.grad(dr.grad(lambda x: sc.expn(2, x)))(x) == pytest.approx(1e300, rel=1e-12)
    assert dr.hessian(lambda x: sc.expn(2, x))(x) == pytest.approx(1e300, rel=1e-12)
