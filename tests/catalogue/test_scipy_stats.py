"""scipy.stats distributions on traced values (dualrev/catalogue/scipy_stats.py): values
equal SciPy's (also outside the support and for invalid parameters), frozen equals
unfrozen, derivatives of the cdf are SciPy's pdf, second derivatives match finite
differences, and what is not supported is refused by name."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.special as sc
import scipy.stats as st

import dualrev as dr
from dualrev.catalogue.scipy_stats import CONTINUOUS, DISCRETE

SHAPES = {"norm": (), "expon": (), "gamma": (2.5,), "beta": (2.0, 3.0), "t": (3.5,),
          "chi2": (3.0,), "lognorm": (0.7,), "laplace": (), "cauchy": (),
          "weibull_min": (1.7,), "weibull_max": (1.7,), "logistic": (), "uniform": (),
          "gumbel_r": (), "gumbel_l": (), "pareto": (2.5,), "halfnorm": (), "invgamma": (2.5,),
          "rayleigh": ()}
DISC = {"poisson": (2.5,), "binom": (6, 0.3), "geom": (0.3,), "bernoulli": (0.3,),
        "nbinom": (2.5, 0.4)}
CONT_METHODS = ("pdf", "logpdf", "cdf", "logcdf", "sf", "logsf")
DISC_METHODS = ("pmf", "logpmf", "cdf", "logcdf", "sf", "logsf")


def fd(f, x, h=1e-5):
    """Central differences of a scalar function of a scalar (or of each output)."""
    return (np.asarray(f(x + h)) - np.asarray(f(x - h))) / (2 * h)


def primal(f, x):
    """f(x) with x traced (the value the rule computes)."""
    x = np.asarray(x, dtype=float)
    return dr.jvp(f, (x,), (np.ones_like(x),))[0]


def test_every_distribution_is_tested():
    assert set(SHAPES) == set(CONTINUOUS) and set(DISC) == set(DISCRETE)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():  # SciPy's and the formulas' log(0) outside the support
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# ---------------------------------------------------------------------------- values
POINTS = np.array([-1.0, 0.0, 0.3, 0.7, 1.0, 1.5, 3.0, np.nan])


@pytest.mark.parametrize("method", CONT_METHODS)
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_continuous_values_equal_scipy_everywhere(name, method):
    # inside and outside the support, at its ends, nan points, invalid shape / scale
    dist, shapes = getattr(st, name), SHAPES[name]
    for sh in {shapes, tuple(-s for s in shapes), tuple(0.5 for s in shapes)}:
        for loc, scale in [(0.0, 1.0), (0.2, 1.7), (0.0, -1.0)]:
            want = getattr(dist, method)(POINTS, *sh, loc=loc, scale=scale)
            got = primal(lambda x, sh=sh, loc=loc, scale=scale: getattr(dist, method)(
                x, *sh, loc=loc, scale=scale), POINTS)
            np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("method", DISC_METHODS)
@pytest.mark.parametrize("name", sorted(DISC))
def test_discrete_values_equal_scipy_everywhere(name, method):
    ks = np.array([-1.0, 0.0, 1.0, 2.0, 2.5, 3.0, 4.0, 10.0, 60.0, np.nan, np.inf, -np.inf])
    dist = getattr(st, name)
    params = {"poisson": [(2.5,), (-1.0,), (0.0,)],
              "binom": [(4, 0.3), (4, 1.2), (4.5, 0.3), (4, 0.0), (4, 1.0)],
              "geom": [(0.3,), (1.0,), (0.0,), (1.2,)],
              "bernoulli": [(0.3,), (0.0,), (1.0,), (1.3,)],
              "nbinom": [(2.5, 0.3), (3, 0.6), (0.0, 0.3), (2.5, 1.0), (2.5, 0.0),
                         (0.5, 0.9)]}[name]
    for sh in params:
        for loc in (0, 1):
            for k in (ks, 3.0):  # an array and a scalar (SciPy's methods see 1-d arrays)
                want = getattr(dist, method)(k, *sh, loc=loc)
                got = primal(lambda p, k=k, sh=sh, loc=loc: getattr(dist, method)(
                    k, *sh[:-1], p, loc=loc), sh[-1])
                np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)


# ---------------------------------------------------------------------------- frozen
@pytest.mark.parametrize("method", CONT_METHODS)
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_frozen_equals_unfrozen_continuous(name, method):
    dist, sh = getattr(st, name), SHAPES[name]
    x = {"beta": 0.4, "pareto": 2.0, "weibull_max": -0.8}.get(name, 0.8)  # inside the support

    def unfrozen(x, loc, scale):
        return getattr(dist, method)(x, *sh, loc=loc, scale=scale)

    def frozen(x, loc, scale):
        return getattr(dist(*sh, loc=loc, scale=scale), method)(x)

    args = (x, 0.1, 1.3)
    assert np.allclose(frozen(*args), getattr(dist(*sh, loc=0.1, scale=1.3), method)(x))
    for i in range(3):  # the point, loc and scale each traced, also in the frozen object
        g_u = dr.grad(unfrozen, argnums=i)(*args)
        g_f = dr.grad(frozen, argnums=i)(*args)
        np.testing.assert_allclose(g_f, g_u, rtol=1e-13)
        np.testing.assert_allclose(g_u, fd(lambda v, i=i: unfrozen(*args[:i], v, *args[i + 1:]),
                                           args[i]), rtol=1e-6)


@pytest.mark.parametrize("method", DISC_METHODS)
@pytest.mark.parametrize("name", sorted(DISC))
def test_frozen_equals_unfrozen_discrete(name, method):
    dist, sh = getattr(st, name), DISC[name]
    # inside the support (a logpmf of -inf has no finite differences)
    k = np.array({"bernoulli": [0, 1, 1, 0] if method != "logsf" else [0, 0, 0, 0],
                  "geom": [1, 2, 3, 5]}.get(name, [0, 1, 2, 4]))

    def unfrozen(p):
        return np.sum(getattr(dist, method)(k, *sh[:-1], p))

    def frozen(p):
        return np.sum(getattr(dist(*sh[:-1], p), method)(k))

    p = sh[-1]
    np.testing.assert_allclose(dr.grad(frozen)(p), dr.grad(unfrozen)(p), rtol=1e-13)
    np.testing.assert_allclose(dr.grad(unfrozen)(p), fd(unfrozen, p), rtol=1e-6, atol=1e-9)


def test_shape_parameters_by_keyword_and_position():
    f_pos = lambda a, s: st.gamma.logpdf(1.7, a, 0.2, s)
    f_kw = lambda a, s: st.gamma.logpdf(1.7, a=a, loc=0.2, scale=s)
    f_frozen = lambda a, s: st.gamma(a=a, scale=s, loc=0.2).logpdf(1.7)
    g = dr.grad(f_pos, argnums=(0, 1))(2.5, 1.5)
    for f in (f_kw, f_frozen):
        np.testing.assert_allclose(dr.grad(f, argnums=(0, 1))(2.5, 1.5), g, rtol=1e-14)
    with pytest.raises(TypeError):  # SciPy's own parser: an unknown keyword
        dr.grad(lambda a: st.gamma.logpdf(1.7, a, shape=2.0))(2.5)


def test_multivariate_frozen_and_dirichlet():
    rng = np.random.default_rng(0)
    B = rng.standard_normal((3, 3))
    cov, mean, x = B @ B.T + 3 * np.eye(3), rng.standard_normal(3), rng.standard_normal(3)
    for m in ("logpdf", "pdf"):
        want = dr.grad(lambda mu, m=m: getattr(st.multivariate_normal, m)(x, mu, cov))(mean)
        got = dr.grad(lambda mu, m=m: getattr(st.multivariate_normal(mu, cov), m)(x))(mean)
        np.testing.assert_allclose(got, want, rtol=1e-13)
        plain = st.multivariate_normal(mean, cov)  # SciPy's frozen object, traced point
        np.testing.assert_allclose(dr.grad(lambda v, m=m, p=plain: getattr(p, m)(v))(x),
                                   dr.grad(lambda v, m=m: getattr(st.multivariate_normal, m)(
                                       v, mean, cov))(x), rtol=1e-13)
    alpha, q = np.array([1.5, 2.0, 3.0]), np.array([0.2, 0.3, 0.5])
    for m in ("logpdf", "pdf"):
        g = dr.grad(lambda a, m=m: getattr(st.dirichlet, m)(q, a))(alpha)
        np.testing.assert_allclose(dr.grad(lambda a, m=m: getattr(st.dirichlet(a), m)(q))(alpha),
                                   g, rtol=1e-13)
        for i in range(3):
            e = np.eye(3)[i]
            np.testing.assert_allclose(
                g[i], fd(lambda t, m=m, e=e: getattr(st.dirichlet, m)(q, alpha + t * e), 0.0),
                rtol=1e-6)
    with pytest.raises(ValueError, match="simplex"):  # SciPy's own check
        dr.grad(lambda a: st.dirichlet.logpdf(q * 2, a))(alpha)


# ---------------------------------------------------------------------------- calculus
@pytest.mark.parametrize("name", sorted(SHAPES))
def test_derivative_of_cdf_is_scipys_pdf(name):
    dist, sh = getattr(st, name), SHAPES[name]
    # points inside the support of (x - 0.1) / 1.2 (beta, uniform: of x / 1.2)
    xs = np.array([0.2, 0.45, 0.7]) if name in ("beta", "uniform") else np.array(
        [-0.6, 0.4, 1.3, 2.2])
    if name in ("expon", "gamma", "chi2", "lognorm", "weibull_min", "halfnorm", "invgamma",
                "rayleigh"):
        xs = np.abs(xs)
    elif name == "weibull_max":
        xs = -np.abs(xs)
    elif name == "pareto":
        xs = np.abs(xs) + 1.5
    loc = 0.0 if name in ("beta", "uniform") else 0.1
    pdf = dist.pdf(xs, *sh, loc=loc, scale=1.2)
    cdf = lambda x, m: getattr(dist, m)(x, *sh, loc=loc, scale=1.2)
    d_cdf = dr.vmap(dr.grad(lambda x: cdf(x, "cdf")))(xs)
    np.testing.assert_allclose(d_cdf, pdf, rtol=1e-12)
    # sf = 1 - cdf: its derivative is -pdf; the logs' are pdf / cdf and -pdf / sf
    np.testing.assert_allclose(dr.vmap(dr.grad(lambda x: cdf(x, "sf")))(xs), -pdf, rtol=1e-12)
    np.testing.assert_allclose(dr.vmap(dr.grad(lambda x: cdf(x, "logcdf")))(xs),
                               pdf / dist.cdf(xs, *sh, loc=loc, scale=1.2), rtol=1e-11)
    np.testing.assert_allclose(dr.vmap(dr.grad(lambda x: cdf(x, "logsf")))(xs),
                               -pdf / dist.sf(xs, *sh, loc=loc, scale=1.2), rtol=1e-11)
    # the density is the cdf's derivative to second order too: d pdf = d^2 cdf
    np.testing.assert_allclose(dr.vmap(dr.grad(dr.grad(lambda x: cdf(x, "cdf"))))(xs),
                               dr.vmap(dr.grad(lambda x: cdf(x, "pdf")))(xs), rtol=1e-10)


@pytest.mark.parametrize("name", sorted(DISC))
def test_discrete_sf_is_one_minus_cdf(name):
    dist, sh = getattr(st, name), DISC[name]
    k = np.array([0, 1, 3, 5])
    cdf = lambda p: dist.cdf(k, *sh[:-1], p)
    sf = lambda p: dist.sf(k, *sh[:-1], p)
    p = sh[-1]
    np.testing.assert_allclose(dr.jacfwd(sf)(p), -dr.jacrev(cdf)(p), rtol=1e-12)
    np.testing.assert_allclose(dr.jacfwd(cdf)(p), fd(cdf, p), rtol=1e-6)
    # the cdf is the sum of the pmf up to k
    pmf_sum = lambda p: np.cumsum(dist.pmf(np.arange(6), *sh[:-1], p))[k]
    np.testing.assert_allclose(dr.jacfwd(cdf)(p), dr.jacfwd(pmf_sum)(p), rtol=1e-10, atol=1e-14)


def _hessian_fd(f, x, h=1e-4):
    g = dr.grad(f)
    return np.stack([(g(x + h * e) - g(x - h * e)) / (2 * h) for e in np.eye(len(x))])


@pytest.mark.parametrize("name", ["norm", "gamma", "beta", "t", "lognorm", "binom", "poisson",
                                  "weibull_min", "nbinom"])
def test_hessian_of_a_log_likelihood(name):
    rng = np.random.default_rng(1)
    if name == "binom":
        data = rng.binomial(6, 0.3, 20)
        nll = lambda th: -np.sum(st.binom.logpmf(data, 6, th[0]))
        th = np.array([0.35])
    elif name == "poisson":
        data = rng.poisson(2.0, 20)
        nll = lambda th: -np.sum(st.poisson(th[0]).logpmf(data))
        th = np.array([1.8])
    elif name == "nbinom":  # n is a real > 0: its logpmf is differentiable in it
        data = rng.negative_binomial(2.5, 0.4, 20)
        nll = lambda th: -np.sum(st.nbinom.logpmf(data, th[0], th[1]))
        th = np.array([2.2, 0.45])
    else:
        dist, sh = getattr(st, name), SHAPES[name]
        data = dist.rvs(*sh, size=20, random_state=rng)
        # shape parameters, loc (not for the bounded-support ones: data would leave it), scale
        if name in ("norm", "t"):
            nll = lambda th: -np.sum(dist.logpdf(data, *th[:-2], loc=th[-2], scale=th[-1]))
            th = np.array([*sh, 0.1, 1.2])
        else:
            nll = lambda th: -np.sum(dist(*th[:-1], scale=th[-1]).logpdf(data))
            th = np.array([*sh, 1.05 if name == "beta" else 1.1])
    H = dr.hessian(nll)(th)
    np.testing.assert_allclose(H, _hessian_fd(nll, th), rtol=1e-5, atol=1e-7 * np.max(np.abs(H)))
    np.testing.assert_allclose(H, H.T, rtol=1e-12)


# ---------------------------------------------------------------------------- quantiles
QUANTILES = sorted(n for n in SHAPES if CONTINUOUS[n].ppf is not None)
QS = np.array([-0.1, 0.0, 1e-12, 0.1, 0.5, 0.7, 1 - 1e-12, 1.0, 1.2, np.nan])


def test_every_continuous_distribution_has_quantiles():
    assert QUANTILES == sorted(SHAPES)


@pytest.mark.parametrize("method", ["ppf", "isf"])
@pytest.mark.parametrize("name", QUANTILES)
def test_quantile_values_equal_scipy_everywhere(name, method):
    # q in (0, 1), at 0 and 1 (the support's ends), outside and nan; invalid parameters
    dist, shapes = getattr(st, name), SHAPES[name]
    for sh in {shapes, tuple(-s for s in shapes), tuple(0.5 for s in shapes)}:
        for loc, scale in [(0.0, 1.0), (0.2, 1.7), (0.0, -1.0), (np.nan, 1.0)]:
            want = getattr(dist, method)(QS, *sh, loc=loc, scale=scale)
            got = primal(lambda q, sh=sh, loc=loc, scale=scale: getattr(dist, method)(
                q, *sh, loc=loc, scale=scale), QS)
            np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("name", QUANTILES)
def test_quantiles_invert_the_cdf_and_their_derivative_is_one_over_the_density(name):
    dist, sh = getattr(st, name), SHAPES[name]
    kw = {"loc": 0.3, "scale": 1.4}
    # the median too (cauchy's is a branch of its own), but not laplace's kink
    q = np.array([0.05, 0.3, 0.45 if name == "laplace" else 0.5, 0.8, 0.97])
    x = dist.ppf(q, *sh, **kw)
    ppf = lambda q: dist.ppf(q, *sh, **kw)
    isf = lambda q: dist.isf(q, *sh, **kw)
    np.testing.assert_allclose(primal(lambda v: dist.cdf(ppf(v), *sh, **kw), q), q, rtol=1e-10)
    np.testing.assert_allclose(primal(lambda v: dist.sf(isf(v), *sh, **kw), q), q, rtol=1e-10)
    np.testing.assert_allclose(primal(lambda v: ppf(dist.cdf(v, *sh, **kw)), x), x, rtol=1e-10)
    pdf = dist.pdf(x, *sh, **kw)
    np.testing.assert_allclose(dr.vmap(dr.grad(ppf))(q), 1 / pdf, rtol=1e-9)
    np.testing.assert_allclose(dr.vmap(dr.grad(isf))(1 - q), -1 / pdf, rtol=1e-9)
    # second order: d2x/dq2 = -pdf'(x) / pdf(x)^3, pdf' from the traced pdf
    dpdf = dr.vmap(dr.grad(lambda v: dist.pdf(v, *sh, **kw)))(x)
    np.testing.assert_allclose(dr.vmap(dr.grad(dr.grad(ppf)))(q), -dpdf / pdf ** 3,
                               rtol=1e-7, atol=1e-9 * np.max(np.abs(dpdf / pdf ** 3)))
    # loc and scale: x = loc + scale * standard quantile
    for i, v in enumerate((0.3, 1.4)):
        f = lambda t, i=i: dist.ppf(q, *sh, **({"loc": t, "scale": 1.4} if i == 0 else
                                               {"loc": 0.3, "scale": t}))
        np.testing.assert_allclose(dr.jacfwd(f)(v), fd(f, v), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", sorted(n for n in QUANTILES if SHAPES[n]))
def test_quantile_shape_derivatives(name):
    # (gamma, beta, t, chi2, invgamma: the inverse incomplete gamma/beta functions'
    # shape derivatives, by the implicit function theorem, since issue 22)
    dist, sh = getattr(st, name), SHAPES[name]
    q = np.array([0.1, 0.5, 0.9])
    for m in ("ppf", "isf"):
        f = lambda s, m=m: getattr(dist, m)(q, s, *sh[1:], loc=0.2)
        np.testing.assert_allclose(dr.jacrev(f)(sh[0]), fd(f, sh[0]), rtol=1e-6, atol=1e-12)
        # frozen equals unfrozen
        g = lambda s, m=m: getattr(dist(s, *sh[1:], loc=0.2), m)(q)
        np.testing.assert_allclose(dr.jacfwd(g)(sh[0]), dr.jacrev(f)(sh[0]), rtol=1e-13)


def test_nbinom_pmf_is_differentiable_in_n():
    k = np.array([0, 1, 3, 7])
    for m in ("pmf", "logpmf"):
        f = lambda n, m=m: getattr(st.nbinom, m)(k, n, 0.4)
        np.testing.assert_allclose(dr.jacfwd(f)(2.5), fd(f, 2.5), rtol=1e-6)
        np.testing.assert_allclose(dr.jacrev(dr.jacfwd(f))(2.5),
                                   fd(dr.jacfwd(f), 2.5), rtol=1e-5)


def test_weibull_mle_hessian():
    rng = np.random.default_rng(7)
    data = st.weibull_min.rvs(1.7, scale=2.0, size=40, random_state=rng)

    def nll(th):  # shape, loc, scale
        return -np.sum(st.weibull_min.logpdf(data, th[0], loc=th[1], scale=th[2]))

    th = np.array([1.6, -0.2, 2.1])  # loc below every sample
    H = dr.hessian(nll)(th)
    np.testing.assert_allclose(H, _hessian_fd(nll, th), rtol=1e-5, atol=1e-7 * np.max(np.abs(H)))
    np.testing.assert_allclose(H, H.T, rtol=1e-12)


# ---------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("call", [
    lambda x: st.gompertz.logpdf(x, 2.0),
    lambda x: st.gompertz(2.0).logpdf(x),
    lambda c: st.gompertz(c).logpdf(0.5),
    lambda x: st.logser.logpmf(2, x),
], ids=["unfrozen", "frozen", "frozen-param", "discrete"])
def test_unsupported_distribution_is_named(call):
    with pytest.raises(dr.NoDerivativeRule) as e:
        dr.grad(call)(0.6)
    msg = str(e.value)
    assert "scipy.stats.gompertz.logpdf" in msg or "scipy.stats.logser.logpmf" in msg
    assert "norm (pdf, logpdf, cdf, logcdf, sf, logsf, ppf, isf)" in msg  # the supported ones
    assert "import" not in msg  # not the dispatcher-bypassed message


@pytest.mark.parametrize(("call", "name"), [
    (lambda x: st.poisson.ppf(x, 2.0), "scipy.stats.poisson.ppf"),
    (lambda x: st.norm(x).median(), "scipy.stats.norm.median"),
    (lambda x: st.norm(x).mean(), "scipy.stats.norm.mean"),
    (lambda x: st.gamma.rvs(x, size=2, random_state=0), "scipy.stats.gamma.rvs"),
    (lambda x: st.multivariate_normal.cdf(x * np.ones(2)), "scipy.stats.multivariate_normal.cdf"),
    (lambda x: st.multivariate_normal(x * np.ones(2)).entropy(),
     "scipy.stats.multivariate_normal.entropy"),
    (lambda x: st.dirichlet.mean(x * np.ones(2)), "scipy.stats.dirichlet.mean"),
])
def test_unsupported_method_is_named(call, name):
    with pytest.raises(dr.NoDerivativeRule, match=name.replace(".", r"\.")):
        dr.grad(call)(0.6)


@pytest.mark.parametrize(("call", "what"), [
    (lambda k: st.poisson.logpmf(k, 2.0), "scipy.stats.poisson.logpmf w.r.t. k"),
    (lambda k: st.poisson(2.0).cdf(k), "scipy.stats.poisson.cdf w.r.t. k"),
    (lambda n: st.binom.pmf(2, n, 0.3), "scipy.stats.binom.pmf w.r.t. n"),
    (lambda m: st.poisson.pmf(2, 2.0, loc=m), "scipy.stats.poisson.pmf w.r.t. loc"),
    (lambda k: st.geom.pmf(k, 0.3), "scipy.stats.geom.pmf w.r.t. k"),
    (lambda m: st.bernoulli.cdf(0, 0.3, loc=m), "scipy.stats.bernoulli.cdf w.r.t. loc"),
])
@pytest.mark.parametrize("mode", ["grad", "jvp"])
def test_refused_derivatives_are_named(call, what, mode):
    with pytest.raises(dr.NoDerivativeRule, match=what.replace(".", r"\.")):
        if mode == "grad":
            dr.grad(call)(4.0)
        else:
            dr.jvp(call, (4.0,), (1.0,))


def test_vmap_over_counts_and_shapes_without_derivatives():
    # a batched (not differentiated) k or shape parameter is no refusal
    ks = np.array([0.0, 1.0, 3.0])
    got = dr.vmap(lambda k: st.poisson.logpmf(k, 2.0))(ks)
    np.testing.assert_allclose(got, st.poisson.logpmf(ks, 2.0), rtol=1e-14)
    a = np.array([1.5, 2.5])
    np.testing.assert_allclose(dr.vmap(lambda a: st.gamma.cdf(1.2, a))(a),
                               st.gamma.cdf(1.2, a), rtol=1e-14)


def test_freezing_an_unsupported_distribution_with_traced_parameters_is_named():
    # genpareto computes its support from c: SciPy's freezing converts the traced c
    with pytest.raises(dr.NoDerivativeRule, match=r"scipy\.stats\.genpareto\.freeze"):
        dr.grad(lambda c: st.genpareto(c).logpdf(0.5))(0.3)


def test_plain_calls_reach_scipy_unchanged():
    # the class-level dispatchers pass untraced calls on (SciPy's own results and types)
    assert st.norm(1.0, 2.0).logpdf(0.5) == st.norm.logpdf(0.5, 1.0, 2.0)
    assert isinstance(st.gompertz(2.0).cdf(0.5), float)
    assert st.multivariate_normal(np.zeros(2)).logpdf(np.ones(2)) == pytest.approx(
        -1 - np.log(2 * np.pi))
    np.testing.assert_allclose(st.norm.cdf(st.norm.ppf([0.1, 0.5])), [0.1, 0.5], rtol=1e-14)


# ---------------------------------------------------------------------------- domain edges
# (issue 21; the generated cases are in test_domain_edges.py)
def _both(f, x):
    """(forward, reverse) derivative of the scalar f at the scalar x."""
    return dr.jvp(f, (x,), (1.0,))[1], dr.grad(f)(x)


DISCRETE_EDGES = [  # (f of the parameter, at, closed-form one-sided derivative)
    (lambda p: st.binom.pmf(1, 5, p), 0.0, 5.0),  # 5 p (1 - p)**4 (exactly 5)
    (lambda p: st.binom.pmf(0, 5, p), 0.0, -5.0),
    (lambda p: st.binom.pmf(4, 5, p), 1.0, -5.0),  # 5 p**4 (1 - p)
    (lambda p: st.binom.pmf(5, 5, p), 1.0, 5.0),
    (lambda p: st.binom.pmf(2, 5, p), 0.0, 0.0),
    (lambda p: st.binom.logpmf(0, 5, p), 0.0, -5.0),
    (lambda mu: st.poisson.pmf(0, mu), 0.0, -1.0),  # e**-mu
    (lambda mu: st.poisson.pmf(1, mu), 0.0, 1.0),  # mu e**-mu
    (lambda mu: st.poisson.pmf(2, mu), 0.0, 0.0),
    (lambda mu: st.poisson.logpmf(0, mu), 0.0, -1.0),
    (lambda p: st.geom.pmf(1, p), 1.0, 1.0),  # p
    (lambda p: st.geom.pmf(2, p), 1.0, -1.0),  # (1 - p) p
    (lambda p: st.geom.cdf(1, p), 1.0, 1.0),  # 1 - (1 - p)**k
    (lambda p: st.geom.sf(1, p), 1.0, -1.0),
    (lambda p: st.geom.cdf(3, p), 1.0, 0.0),
    (lambda p: st.bernoulli.pmf(1, p), 0.0, 1.0),
    (lambda p: st.bernoulli.pmf(0, p), 1.0, -1.0),
    (lambda p: st.bernoulli.pmf(1, p), 1.0, 1.0),
    (lambda p: st.nbinom.pmf(0, 3, p), 1.0, 3.0),  # p**3
    (lambda p: st.nbinom.pmf(1, 3, p), 1.0, -3.0),  # 3 p**3 (1 - p)
    (lambda p: st.nbinom.pmf(2, 3, p), 1.0, 0.0),
]


@pytest.mark.parametrize("case", range(len(DISCRETE_EDGES)))
def test_discrete_derivatives_at_the_parameters_edges(case):
    # the pmf was exp(logpmf), whose derivative at p = 0 is 0 * inf (nan)
    f, at, want = DISCRETE_EDGES[case]
    for got in _both(f, at):
        assert got == pytest.approx(want, rel=1e-14, abs=1e-14)
    if case == 0:  # the example, to the last bit
        assert _both(f, at) == (5.0, 5.0)


def test_discrete_pmf_outside_the_support_at_an_edge_parameter():
    # k outside the support with p = 1: the formula was evaluated there at p = 1 (log 0)
    k = np.array([0.0, 1.0, 2.0])
    g = dr.grad(lambda p: np.sum(st.bernoulli.pmf(k, p)))(1.0)
    assert g == 0.0  # -1 + 1 + 0
    assert dr.grad(lambda p: st.binom.pmf(7, 5, p))(1.0) == 0.0


def test_student_t_with_infinite_df_is_the_normal():
    x = np.array([-2.0, 0.3, 1.5])
    for method in ("pdf", "logpdf", "cdf", "logcdf", "sf", "logsf"):
        t = getattr(st.t, method)
        n = getattr(st.norm, method)
        got = dr.jvp(lambda x, t=t: t(x, np.inf, loc=0.2, scale=1.3), (x,), (np.ones(3),))[1]
        want = dr.jvp(lambda x, n=n: n(x, loc=0.2, scale=1.3), (x,), (np.ones(3),))[1]
        np.testing.assert_allclose(got, want, rtol=1e-13, err_msg=method)
    q = np.array([0.1, 0.5, 0.8])
    np.testing.assert_allclose(
        dr.jacrev(lambda q: st.t.ppf(q, np.inf))(q).diagonal(),
        dr.jacrev(lambda q: st.norm.ppf(q))(q).diagonal(), rtol=1e-13)
    # df = 1e12: the density to SciPy's accuracy (two gammaln of 5e11 lost 4 digits)
    np.testing.assert_allclose(primal(lambda x: st.t.pdf(x, 1e12), x), st.t.pdf(x, 1e12),
                               rtol=1e-13)


CONTINUOUS_EDGES = [  # (f of the point, at, closed-form one-sided derivative)
    (lambda x: st.beta.pdf(x, 2.0, 3.0), 0.0, 12.0),  # 12 x (1 - x)**2
    (lambda x: st.beta.pdf(x, 3.0, 2.0), 1.0, -12.0),
    (lambda x: st.gamma.pdf(x, 2.0), 0.0, 1.0),  # x e**-x
    (lambda x: st.gamma.pdf(x, 1.0), 0.0, -1.0),
    (lambda x: st.chi2.pdf(x, 4.0), 0.0, 0.25),  # x e**(-x/2) / 4
    (lambda x: st.weibull_min.pdf(x, 2.0), 0.0, 2.0),  # 2 x e**(-x**2)
    (lambda x: st.weibull_max.pdf(x, 2.0), 0.0, -2.0),
    (lambda x: st.rayleigh.pdf(x), 0.0, 1.0),  # x e**(-x**2/2); was open: 0
    (lambda x: st.uniform.cdf(x, loc=1.0, scale=2.0), 1.0, 0.5),  # was 0 at the ends
    (lambda x: st.uniform.cdf(x, loc=1.0, scale=2.0), 3.0, 0.5),
    (lambda x: st.uniform.sf(x, loc=1.0, scale=2.0), 1.0, -0.5),
    (lambda x: st.pareto.cdf(x, 2.5), 1.0, 2.5),
    (lambda x: st.beta.cdf(x, 1.0, 3.0), 0.0, 3.0),
    (lambda x: st.expon.cdf(x), 0.0, 1.0),
    (lambda x: st.expon.logsf(x), 0.0, -1.0),
    (lambda x: st.gamma.cdf(x, 0.5), 0.0, np.inf),  # the density is infinite there
    (lambda q: st.uniform.ppf(q, loc=1.0, scale=2.0), 0.0, 2.0),  # was 0 at q = 0, 1
    (lambda q: st.uniform.isf(q, loc=1.0, scale=2.0), 1.0, -2.0),
    (lambda q: st.expon.ppf(q, scale=2.0), 0.0, 2.0),
    (lambda q: st.pareto.ppf(q, 2.5), 0.0, 0.4),
    (lambda q: st.rayleigh.ppf(q), 0.0, np.inf),
    (lambda x: st.gumbel_r.pdf(x), -1000.0, 0.0),  # far tails: was 0 * inf
    (lambda x: st.gumbel_r.cdf(x), -1000.0, 0.0),
    (lambda x: st.gumbel_l.sf(x), 1000.0, 0.0),
    (lambda x: st.weibull_max.cdf(x, 1000.0), -40.0, 0.0),
]


@pytest.mark.parametrize("case", range(len(CONTINUOUS_EDGES)))
def test_continuous_one_sided_derivatives_at_the_support_ends(case):
    f, at, want = CONTINUOUS_EDGES[case]
    for got in _both(f, at):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-300)


def test_generic_log_with_an_overflowing_median():
    # pareto's median 2**(1/b) overflows at b = 1e-8: the branch not taken was evaluated
    # there, and reverse mode got nan; weibull_min's underflows to 0 at c = 1e-8.
    # Closed forms: d/db log(3**-b) = -log 3; d/dc log(1 - exp(-2**c)) at c -> 0 is
    # e**-(2**c) 2**c log 2 / (1 - e**-(2**c)) (SciPy's values differ in the 5th digit)
    u = 2.0 ** 1e-8
    for f, at, want in ((lambda b: st.pareto.logsf(3.0, b), 1e-8, -np.log(3.0)),
                        (lambda c: st.weibull_min.logcdf(2.0, c), 1e-8,
                         np.exp(-u) * u * np.log(2.0) / -np.expm1(-u))):
        for got in _both(f, at):
            assert got == pytest.approx(want, rel=1e-12)


def test_quantile_with_an_extreme_shape_has_no_nan_in_reverse():
    # invgamma's median at a = 1e-8 is inf: the masked branches were evaluated there
    f = lambda s: st.invgamma.ppf(1e-12, 1e-8, scale=s)  # noqa: E731
    fwd, rev = _both(f, 1.7)
    assert fwd == pytest.approx(rev) and fwd == pytest.approx(f(1.7) / 1.7, rel=1e-12)


def test_dirichlet_pdf_on_the_simplex_boundary():
    # C x0**(a0-1) x1**(a1-1) x2**(a2-1) with x0 = 0 and a0 = 2: d/dx0 = C x2**2 (was
    # exp(logpdf): 0 * inf, nan in both modes); a point inside alongside keeps its value
    a = np.array([2.0, 1.0, 3.0])
    c = np.exp(sc.gammaln(a.sum()) - sc.gammaln(a).sum())
    x = np.array([[0.0, 0.2], [0.4, 0.3], [0.6, 0.5]])
    want = np.array([[c * 0.6 ** 2, c * 0.5 ** 2], [0.0, 0.0], [0.0, c * 2 * 0.2 * 0.5]])
    np.testing.assert_allclose(dr.grad(lambda x: np.sum(st.dirichlet.pdf(x, a)))(x), want,
                               rtol=1e-13)
    jf = dr.jacfwd(lambda x: st.dirichlet.pdf(x, a))(x)
    np.testing.assert_allclose(np.stack([jf[0, :, 0], jf[1, :, 1]], axis=1), want, rtol=1e-13)
    np.testing.assert_allclose(primal(lambda x: st.dirichlet.pdf(x, a), x),
                               st.dirichlet.pdf(x, a), rtol=1e-13)
    # in alpha: the density is 0 for every a0 > 1 at x0 = 0
    assert np.all(dr.grad(lambda a: st.dirichlet.pdf(x[:, 0], a))(a) == 0.0)


@pytest.mark.parametrize("f, at, want", [
    (lambda p: st.binom.cdf(1, 6, p), 0.0, -30.0),  # (1-p)**6 + 6p(1-p)**5
    (lambda p: st.binom.sf(1, 6, p), 0.0, 30.0),
    (lambda mu: st.poisson.cdf(1, mu), 0.0, -1.0),  # (1 + mu) e**-mu
    (lambda p: st.nbinom.cdf(1, 2.5, p), 1.0, -8.75),  # p**2.5 (1 + 2.5 (1 - p))
    (lambda p: st.geom.cdf(2, p), 1 - 1e-8, -2.0),  # 1 - (1 - p)**2
    (lambda n: st.nbinom.pmf(0, n, 0.4), 1e-8, 0.4 ** 1e-8 * np.log(0.4) ** 2),
])
def test_discrete_second_derivatives_at_the_edges(f, at, want):
    # the cdf's partial was exp(log pmf): its derivative at p = 0 is 0 * inf; nbinom's
    # log coefficient at k = 0 summed 1e16 - 1e16 with the pmf's terms in reverse mode
    assert dr.hessian(f)(at) == pytest.approx(want, rel=1e-7)
    assert dr.grad(dr.grad(f))(at) == pytest.approx(want, rel=1e-7)


def test_geom_cdf_derivative_next_to_p_1():
    # 2 (1 - p) at p = 1 - 1e-8: expm1's derivative as ans + 1 was 11% off
    p = 1 - 1e-8
    for got in _both(lambda p: st.geom.cdf(2, p), p):
        assert got == pytest.approx(2 * (1 - p), rel=1e-12)
