"""SciPy's non-ufunc functions (special, linalg, stats) on traced values: values equal
SciPy's, derivatives against finite differences to second order, forward = reverse;
untraced calls go to SciPy unchanged."""

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.special as sc
import scipy.stats as st

import dualrev as dr
from dualrev.catalogue.scipy_functions import ORIGINALS
from dualrev.testing import check_grads
from tests.helpers import check_all

rng = np.random.default_rng(12)
x = rng.uniform(0.2, 0.8, 4)
A = rng.standard_normal((3, 3)) / 3
S = A @ A.T + np.eye(3)

CASES = {
    "logsumexp": (lambda x: sc.logsumexp(x), (x,)),
    "logsumexp_axis_b": (lambda x: sc.logsumexp(x.reshape(2, 2), axis=1, b=np.array([1.0, 2.0])),
                         (x,)),
    "logsumexp_keepdims": (lambda x: sc.logsumexp(x.reshape(2, 2), axis=0, keepdims=True), (x,)),
    "logsumexp_sign": (lambda x: sc.logsumexp(x, b=-np.ones(4), return_sign=True)[0], (x,)),
    "softmax": (lambda x: sc.softmax(x), (x,)),
    "softmax_axis": (lambda x: sc.softmax(x.reshape(2, 2), axis=1), (x,)),
    "log_softmax": (lambda x: sc.log_softmax(x.reshape(2, 2), axis=0), (x,)),
    "solve_triangular_lower": (lambda a, b: sla.solve_triangular(a, b, lower=True),
                               (np.tril(S), x[:3])),
    "solve_triangular_trans": (lambda a, b: sla.solve_triangular(a, b, trans=1),
                               (np.triu(S), np.ones((3, 2)))),
    "solve_triangular_unit": (lambda a, b: sla.solve_triangular(a, b, unit_diagonal=True),
                              (np.triu(S), x[:3])),
    "cho_solve": (lambda a, b: sla.cho_solve(sla.cho_factor(a), b), (S, x[:3])),
    "cho_solve_lower": (lambda a, b: sla.cho_solve(sla.cho_factor(a, lower=True), b),
                        (S, x[:3])),
    "lu_solve": (lambda a, b: sla.lu_solve(sla.lu_factor(a), b), (S + A, x[:3])),
    "expm": (sla.expm, (A,)),
    "sqrtm": (sla.sqrtm, (S,)),
    "norm_logpdf": (lambda x, m, s: st.norm.logpdf(x, m, s), (x, 0.3, 1.5)),
    "norm_pdf": (lambda x: st.norm.pdf(x, scale=0.7), (x,)),
    "norm_cdf": (lambda x: st.norm.cdf(x, loc=0.1, scale=2.0), (x,)),
    "norm_logcdf": (st.norm.logcdf, (x,)),
    "t_logpdf": (lambda x, df: st.t.logpdf(x, df), (x, 3.5)),
    "gamma_logpdf": (lambda x, a: st.gamma.logpdf(x, a, scale=2.0), (x, 2.5)),
    "beta_logpdf": (lambda x, a, b: st.beta.logpdf(x, a, b), (x, 2.5, 1.5)),
    "poisson_logpmf": (lambda mu: st.poisson.logpmf(np.array([0, 1, 3, 2]), mu), (x + 1,)),
    "mvn_logpdf": (lambda x, m, c: st.multivariate_normal.logpdf(x, m, c),
                   (x[:3], np.full(3, 0.1), S)),
    "mvn_logpdf_rows": (lambda x: st.multivariate_normal.logpdf(x, np.zeros(3), S),
                        (rng.standard_normal((4, 3)),)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_scipy_function(name):
    f, args = CASES[name]
    out, _ = dr.jvp(f, args, tuple(np.zeros(np.shape(a)) if np.ndim(a) else 0.0 for a in args))
    np.testing.assert_allclose(out, f(*args), rtol=1e-10, atol=1e-12)
    check_all(f, args, order=2, rtol=1e-5, atol=1e-7)


def test_untraced_calls_reach_scipy_unchanged():
    assert sc.logsumexp.__wrapped__ is ORIGINALS[sc.logsumexp]
    np.testing.assert_array_equal(sc.logsumexp(x), ORIGINALS[sc.logsumexp](x))
    assert sc.logsumexp.__name__ == "logsumexp"


def test_reference_taken_before_import_gets_a_clear_error():
    original = ORIGINALS[sc.logsumexp]
    with pytest.raises(dr.TracerConversionError, match="logsumexp.*import dualrev first"):
        dr.grad(lambda v: original(v))(x)


def test_expm_closed_form():
    # d/dt expm(t A) at t = 1 is A expm(A)
    _, t = dr.jvp(lambda t: sla.expm(t * A), (1.0,), (1.0,))
    np.testing.assert_allclose(t, A @ sla.expm(A), rtol=1e-12)


# ------------------------------------------------------------------ complex triangular solves
crng = np.random.default_rng(30)
CA = crng.standard_normal((4, 4)) + 1j * crng.standard_normal((4, 4)) + 3 * np.eye(4)
CH = CA @ CA.conj().T
CB = crng.standard_normal((4, 2)) + 1j * crng.standard_normal((4, 2))


@pytest.mark.parametrize("unit_diagonal", [False, True])
@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("trans", [0, 1, 2, "N", "T", "C"])
def test_solve_triangular_complex_and_trans_2_is_the_conjugate_transpose(trans, lower,
                                                                        unit_diagonal):
    # reverse mode once dropped the imaginary part of a's and b's cotangents; trans=2 was
    # solved as a plain transpose
    f = lambda a, b: sla.solve_triangular(a, b, trans=trans, lower=lower,
                                          unit_diagonal=unit_diagonal)
    value = dr.jvp(f, (CA, CB), (np.zeros_like(CA), np.zeros_like(CB)))[0]
    np.testing.assert_allclose(value, f(CA, CB), rtol=1e-13)
    check_grads(f, (CA, CB[:, 0]), order=2)


@pytest.mark.parametrize("trans", [0, 1, 2])
def test_lu_solve_complex_and_its_trans_argument(trans):
    f = lambda a, b: sla.lu_solve(sla.lu_factor(a), b, trans=trans)
    value = dr.jvp(f, (CA, CB), (np.zeros_like(CA), np.zeros_like(CB)))[0]
    np.testing.assert_allclose(value, f(CA, CB), rtol=1e-13)
    check_grads(f, (CA, CB), order=1)
    check_grads(f, (CA.real.copy(), CB.real.copy()), order=2)


@pytest.mark.parametrize("lower", [True, False])
def test_cho_solve_complex_uses_the_conjugate_transpose(lower):
    f = lambda a, b: sla.cho_solve(sla.cho_factor(a, lower=lower), b)
    value = dr.jvp(f, (CH, CB), (np.zeros_like(CH), np.zeros_like(CB)))[0]
    np.testing.assert_allclose(value, np.linalg.solve(CH, CB), rtol=1e-12)
    check_grads(f, (CH, CB), order=1)


def test_solve_triangular_refuses_an_unknown_trans():
    with pytest.raises(ValueError, match="trans"):
        dr.grad(lambda a: np.sum(sla.solve_triangular(a, np.ones(4), trans=3)))(CA.real)
