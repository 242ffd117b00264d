"""scipy.special ufuncs: values equal SciPy's, derivatives against finite differences to
second order, forward against reverse."""

import numpy as np
import pytest
import scipy.special as sc

import dualrev as dr
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


@pytest.mark.parametrize("f", [lambda v: sc.iv(v, 1.3), lambda a: sc.gammainc(a, 1.3),
                               lambda n: sc.polygamma(n, 1.3) * 1.0])
def test_orders_and_shape_parameters_are_not_differentiated_silently(f):
    with pytest.raises(dr.NoDerivativeRule, match="w.r.t."):
        dr.grad(f)(1.5)
