"""SciPy's non-ufunc functions (special, linalg, stats) on traced values: values equal
SciPy's, derivatives against finite differences to second order, forward = reverse;
untraced calls go to SciPy unchanged."""

import functools
import types

import numpy as np
import pytest
import scipy
import scipy.linalg as sla
import scipy.special as sc
import scipy.stats as st

import dualrev as dr
from dualrev.catalogue.scipy_functions import ORIGINALS, dispatch
from dualrev.testing import check_grads
from tests.helpers import check_all, check_like_numpy

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


def test_an_unrouted_function_behind_a_shared_wrapper_is_named_by_itself():
    # SciPy's _apply_over_batch wraps lu_factor and solve_toeplitz (solve_banded, too,
    # before dualrev routed it) in one code object: such a conversion used to be reported
    # as lu_factor's
    ab = np.array([[0.0, 1.0, 1.0], [4.0, 4.0, 4.0], [1.0, 1.0, 0.0]])
    with pytest.raises(dr.TracerConversionError) as e:
        dr.grad(lambda t: np.sum(sla.solve_toeplitz(ab[1] * t, np.ones(3))))(1.0)
    msg = str(e.value)
    assert "scipy.linalg.solve_toeplitz, called on line" in msg and "lu_factor" not in msg
    # the wrapped original itself is still recognised, reached past its dispatcher
    original = ORIGINALS[sla.lu_factor]
    with pytest.raises(dr.TracerConversionError, match="lu_factor.*import dualrev first"):
        dr.grad(lambda t: np.sum(original(ab[[1, 0, 2]] * t)[0]))(1.0)
    # and through its dispatcher it is differentiated: L (unit diagonal) does not move
    # with t, U = t U(A) does
    g = dr.grad(lambda t: np.sum(sla.lu_factor(A * t)[0]))(1.0)
    np.testing.assert_allclose(g, np.sum(np.triu(sla.lu_factor(A)[0])), rtol=1e-12)


def test_expm_closed_form():
    # d/dt expm(t A) at t = 1 is A expm(A)
    _, t = dr.jvp(lambda t: sla.expm(t * A), (1.0,), (1.0,))
    np.testing.assert_allclose(t, A @ sla.expm(A), rtol=1e-12)


# ------------------------------------------------------------------ multivariate_normal
MVN_CALLS = {  # (x shape, keywords): SciPy takes the dimension from mean/cov, not from x
    "defaults_1d_points": ((3,), {}),
    "defaults_one_point": ((1,), {}),
    "defaults_scalar": ((), {}),
    "scalar_cov_1d_points": ((3,), {"cov": 2.0}),
    "mean_only": ((3,), {"mean": np.zeros(3)}),
    "cov_only": ((3,), {"cov": S}),
    "rows": ((4, 3), {"cov": S}),
    "diagonal_cov": ((4, 3), {"mean": np.ones(3), "cov": np.array([1.0, 2, 3])}),
    "stacked_rows": ((2, 4, 3), {"cov": S}),
    "one_row_squeezed": ((1, 3), {"cov": S}),
    "scalar_mean_list_points": ((4,), {"mean": 0.5, "cov": 2.0}),
    "column_of_points": ((4, 1), {"mean": [0.5]}),
    "allow_singular_nonsingular": ((3,), {"mean": [0.0, 1, 2], "cov": S,
                                          "allow_singular": True}),
}


@pytest.mark.parametrize("name", sorted(MVN_CALLS))
def test_mvn_logpdf_reads_arguments_like_scipy(name):
    # With default mean/cov a 1-D x is a list of 1-D points; dualrev read it as one point.
    shape, kw = MVN_CALLS[name]
    x0 = rng.standard_normal(shape) if shape else 0.7
    f = lambda v: st.multivariate_normal.logpdf(v, **kw)
    want = ORIGINALS[st.multivariate_normal.logpdf](x0, **kw)
    out = dr.jvp(f, (x0,), (np.ones(shape) if shape else 1.0,))[0]
    assert np.shape(out) == np.shape(want)
    np.testing.assert_allclose(out, want, rtol=1e-12)
    check_all(f, (x0,), order=2, rtol=1e-5, atol=1e-7)


def test_mvn_logpdf_singular_cov_with_allow_singular_raises_clearly():
    C = np.array([[1.0, 1.0], [1.0, 1.0]])
    with pytest.raises(dr.NoDerivativeRule, match="allow_singular"):
        dr.grad(lambda v: st.multivariate_normal.logpdf(v, cov=C, allow_singular=True))(
            np.array([0.5, 0.5]))


# ------------------------------------------------------------------ logsumexp(b=)
B = rng.standard_normal((3, 4))
LSE_CALLS = {
    "b_mixed_signs": {"b": B},
    "b_negative_sum": {"b": -np.abs(B)},
    "b_axis": {"b": B, "axis": 1},
    "b_keepdims": {"b": B, "axis": 0, "keepdims": True},
    "b_sign": {"b": B, "return_sign": True},
    "b_axis_sign": {"b": B, "axis": 1, "return_sign": True},
    "b_scalar": {"b": 2.0},
    "b_broadcast": {"b": B[0], "axis": 1},
    "axes_tuple": {"axis": (0, 1)},
}


@pytest.mark.parametrize("name", sorted(LSE_CALLS))
def test_logsumexp_b_values_like_scipy(name):
    # A negative sum gave log|sum| where SciPy gives nan (or the sign with return_sign).
    kw = LSE_CALLS[name]
    a = rng.standard_normal((3, 4))
    if name == "b_keepdims" and tuple(map(int, scipy.__version__.split(".")[:2])) < (1, 16):
        pytest.skip("SciPy 1.15's logsumexp(b=, axis=0, keepdims=True) gives nan for "
                    "positive sums too")
    want = ORIGINALS[sc.logsumexp](a, **kw)
    got = dr.jvp(lambda v: sc.logsumexp(v, **kw), (a,), (a,))[0]
    for w, g in zip(*(((want,), (got,)) if not kw.get("return_sign") else (want, got)),
                    strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12)
        assert np.shape(g) == np.shape(w)


def test_logsumexp_b_derivatives():
    a = rng.standard_normal((3, 4))
    check_all(lambda v, w: sc.logsumexp(v, axis=1, b=w, return_sign=True)[0], (a, B),
              order=2, rtol=1e-5, atol=1e-7)
    # the derivative in a zero weight is exp(a_i) / sum, not 0 (JAX masks that entry)
    b0 = np.array([1.0, 0.0, 0.5])
    g = dr.grad(lambda w: sc.logsumexp(np.array([1.0, 2, 3]), b=w))(b0)
    s = np.sum(b0 * np.exp([1.0, 2, 3]))
    np.testing.assert_allclose(g, np.exp([1.0, 2, 3]) / s, rtol=1e-12)


def test_logsumexp_edge_values_like_scipy():
    lse = ORIGINALS[sc.logsumexp]
    for a, b in [(np.array([1.0, np.inf]), np.array([1.0, 0.0])),
                 (np.array([1000.0, 1.0]), np.array([0.0, 1.0])),
                 (np.zeros(0), None), (np.zeros((3, 0)), None)]:
        want = lse(a, b=b, axis=-1, return_sign=True)
        got = dr.jvp(lambda v, b=b: sc.logsumexp(v, b=b, axis=-1, return_sign=True), (a,),
                     (np.ones(a.shape),))[0]
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        np.testing.assert_array_equal(
            dr.jvp(lambda v, b=b: sc.logsumexp(v, b=b, axis=-1), (a,), (np.ones(a.shape),))[0],
            lse(a, b=b, axis=-1))

LIST_V, LIST_M = np.array([0.3, 0.6, 0.9]), np.array([[2.0, 0.5], [0.3, 1.5]])
LIST_ARGS = {
    "lu_solve_list_b": (lambda a: sla.lu_solve(sla.lu_factor(a), [1.0, 2.0]), LIST_M),
    "solve_triangular_list_a": (lambda b: sla.solve_triangular([[1.0, 0], [2, 3]], b, lower=True),
                                np.array([1.0, 2.0])),
    "logsumexp_list_b": (lambda x: sc.logsumexp(x, b=[1.0, 2, 3]), LIST_V),
    "mvn_list_mean_cov": (lambda x: st.multivariate_normal.logpdf(x, [0.0, 0.1],
                                                                  [[1.0, 0.2], [0.2, 2.0]]),
                          np.array([0.3, 0.6])),
}


@pytest.mark.parametrize("name", sorted(LIST_ARGS))
def test_scipy_functions_take_python_lists(name):
    # lu_solve indexed a list b
    check_like_numpy(*LIST_ARGS[name])


def test_scipy_keywords_honoured_or_refused():
    # softplus's keywords are its ufunc's: dtype= honoured, the rest refused by name
    got, _ = dr.jvp(lambda v: sc.softplus(v, dtype=np.float32), (x,), (x,))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ORIGINALS[sc.softplus](x, dtype=np.float32), rtol=1e-6)
    with pytest.raises(dr.NoDerivativeRule, match="where"):
        dr.grad(lambda v: np.sum(sc.softplus(v, where=v > 0.5)))(x)
    # check_finite=True refuses infs and nans, as SciPy does
    bad = S.copy()
    bad[0, 0] = np.nan
    for call in (lambda a: sla.cho_factor(a)[0], lambda a: sla.lu_factor(a)[0],
                 lambda a: sla.cho_solve((np.linalg.cholesky(S), True), a[0]),
                 lambda a: sla.lu_solve(sla.lu_factor(S), a[0])):
        with pytest.raises(ValueError, match="infs or NaNs"):
            dr.jvp(call, (bad,), (bad,))
    check_all(lambda a: sla.cho_solve(sla.cho_factor(a, check_finite=False), x[:3],
                                      check_finite=False), (S,), order=1)


@pytest.mark.parametrize("kw", [{}, {"b": np.array([1.0, -2.0, 0.5])}, {"return_sign": True}],
                         ids=["plain", "b", "return_sign"])
def test_logsumexp_complex_keeps_the_phase(kw):
    # log|sum| dropped the imaginary part of SciPy's principal log
    z = np.array([1 + 1j, 2 - 0.5j, 1 + 3j])
    want = ORIGINALS[sc.logsumexp](z, **kw)
    got = dr.jvp(lambda v: sc.logsumexp(v, **kw), (z,), (z,))[0]
    for g, w in zip(got if kw.get("return_sign") else (got,),
                    want if kw.get("return_sign") else (want,), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-13)
    f = (lambda v: sc.logsumexp(v, **kw)[0]) if kw.get("return_sign") else (
        lambda v: sc.logsumexp(v, **kw))
    dr.testing.check_grads(f, (z,), order=2)


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


@pytest.mark.parametrize("kw", [{"axis": 1}, {}, {"axis": 0, "keepdims": True}], ids=str)
def test_logsumexp_complex_sign_moves_with_a(kw):
    # The sign (phase) of a complex sum was taken from the plain values: derivative 0.
    a = rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3))
    b = rng.standard_normal((2, 3))
    f = lambda v: sc.logsumexp(v, b=b, return_sign=True, **kw)
    (out, sign), _ = dr.jvp(f, (a,), (a,))
    want = ORIGINALS[sc.logsumexp](a, b=b, return_sign=True, **kw)
    np.testing.assert_allclose(out, want[0], rtol=1e-12)
    np.testing.assert_allclose(sign, want[1], rtol=1e-12)
    check_grads(f, (a,), order=2)


@pytest.mark.parametrize("kw", [{"axis": 0, "keepdims": True}, {"keepdims": True}], ids=str)
def test_logsumexp_of_0d_with_keepdims_has_scipys_shape(kw):
    a = np.array(0.5)
    want = ORIGINALS[sc.logsumexp](a, **kw)
    got, tangent = dr.jvp(lambda v: sc.logsumexp(v, **kw), (a,), (np.array(1.0),))
    assert np.shape(got) == np.shape(want) and np.shape(tangent) == np.shape(want)
    np.testing.assert_allclose(got, want, rtol=1e-15)
    np.testing.assert_allclose(tangent, 1.0, rtol=1e-15)


@pytest.mark.parametrize("method", ["logpdf", "pdf", "cdf", "logcdf"])
def test_stats_compute_float32_points_in_float64_as_scipy(method):
    # scipy.stats promotes to at least float64 (rv_continuous casts x); so does dualrev
    xs = np.array([0.3, -0.5, 1.2], dtype=np.float32)
    f = getattr(st.norm, method)
    val, t = dr.jvp(lambda x: f(x, 0.1, 1.5), (xs,), (np.ones_like(xs),))
    want = f(xs, 0.1, 1.5)
    assert val.dtype == want.dtype == np.float64 and t.dtype == np.float64
    np.testing.assert_allclose(val, want, rtol=1e-12)
    h = 1e-6
    fd = (f(xs.astype(float) + h, 0.1, 1.5) - f(xs.astype(float) - h, 0.1, 1.5)) / (2 * h)
    np.testing.assert_allclose(t, fd, rtol=1e-6)


# ------------------------------------------------ conversion errors name the user's function
@pytest.mark.parametrize("name", ["cholesky", "logm", "sinhm", "solve_toeplitz"])
def test_an_unrouted_function_is_named_not_the_wrapper_it_shares(name):
    # SciPy 1.15+ wraps many scipy.linalg functions in one decorator (_apply_over_batch):
    # one code object for all, so matching frames by code named whichever routed function
    # was registered last (lu_factor), and claimed it was imported before dualrev
    calls = {"cholesky": lambda a: sla.cholesky(a * np.eye(2)),
             "logm": lambda a: sla.logm(a * np.eye(2)),
             "sinhm": lambda a: sla.sinhm(a * np.eye(2)),
             "solve_toeplitz": lambda a: sla.solve_toeplitz(
                 np.array([2.0, 1.0]), a * np.ones(2))}
    with pytest.raises(dr.TracerConversionError) as info:
        dr.grad(lambda a: np.sum(calls[name](a)))(2.0)
    message = str(info.value)
    assert f"scipy.linalg.{name}, called on line" in message
    assert "lu_factor" not in message and "imported" not in message


@pytest.mark.parametrize("name", ["lu_factor", "cho_factor", "solve_triangular"])
def test_an_original_reached_without_the_dispatcher_is_named_by_its_closure(name):
    original = ORIGINALS[getattr(sla, name)]
    args = (np.eye(2),) if name != "solve_triangular" else (np.eye(2), np.ones(2))
    with pytest.raises(dr.TracerConversionError,
                       match=rf"scipy\.linalg\.{name} \(reached without dualrev's dispatcher"):
        dr.grad(lambda a: np.sum(original(*(a * v for v in args))[0]))(2.0)


def test_a_rule_that_delegates_names_the_function_the_user_called():
    fake = types.ModuleType("fake_scipy")

    def outer(x):
        """A stand-in for a SciPy function whose dualrev rule delegates to another."""
        return x

    fake.outer = outer
    inner = ORIGINALS[sla.lu_factor]
    # a rule that converts (an unsupported case); built from C callables, so that no
    # frame of this file (a user's frame) stands between the dispatcher and SciPy
    dispatch(fake, "outer", functools.partial(inner))
    try:
        with pytest.raises(dr.TracerConversionError) as info:
            dr.grad(lambda a: np.sum(fake.outer(a * np.eye(2))))(2.0)
    finally:
        ORIGINALS.pop(fake.outer)  # the stand-in is no entry of the catalogue
    message = str(info.value)
    assert "outer: dualrev's rule for it converts a traced argument" in message
    assert "lu_factor" not in message


def test_sqrtm_of_a_complex_matrix():
    # refused until the conformance harness pinned it: the Sylvester equation
    # X dX + dX X = dA holds for complex A (sqrtm is holomorphic there); a general
    # (non-normal) complex matrix, values equal to SciPy's
    crng = np.random.default_rng(21)
    a = np.eye(3) * 2.0 + 0.4 * (crng.standard_normal((3, 3)) + 1j * crng.standard_normal((3, 3)))
    got = dr.jvp(sla.sqrtm, (a,), (np.zeros_like(a),))[0]
    np.testing.assert_allclose(got, ORIGINALS[sla.sqrtm](a), rtol=1e-13)
    check_grads(sla.sqrtm, (a,), order=2)
    # a real matrix with a complex root: tests/catalogue/test_scipy_linalg.py
