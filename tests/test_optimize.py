"""dualrev.optimize: every method runs with exact derivatives and needs far fewer
evaluations than SciPy's finite-difference default; pytrees; constraints; sparse
Jacobians by colouring."""

import numpy as np
import pytest
import scipy.optimize as so
import scipy.sparse as sp

import dualrev as dr
from dualrev.sparse import SparseJacobian, colour_columns, detect_sparsity


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


class Counted:
    def __init__(self, f):
        self.f, self.calls = f, 0

    def __call__(self, *a):
        self.calls += 1
        return self.f(*a)


X0 = np.full(10, 0.5)


@pytest.mark.parametrize("method,atol", [
    ("BFGS", 1e-5), ("L-BFGS-B", 1e-4), ("CG", 1e-4), ("Newton-CG", 1e-4), ("trust-ncg", 1e-6),
    ("trust-krylov", 1e-6), ("trust-exact", 1e-6), ("trust-constr", 1e-6), ("SLSQP", 3e-3),
    ("TNC", 3e-3)])
def test_minimize_every_gradient_method_converges(method, atol):
    options = {"maxfun": 20000} if method == "TNC" else {"maxiter": 3000}
    res = dr.optimize.minimize(rosen, X0, method=method, options=options)
    assert res.success
    np.testing.assert_allclose(res.x, np.ones(10), atol=atol)


def test_gradient_methods_save_evaluations():
    f = Counted(rosen)
    res = dr.optimize.minimize(f, X0, method="BFGS")
    g = Counted(rosen)
    ref = so.minimize(g, X0, method="BFGS")  # finite-difference gradient
    assert res.success and ref.success
    assert f.calls == res.nfev  # value and gradient come from one evaluation
    assert g.calls > 5 * f.calls


def test_hessian_methods_get_exact_second_derivatives():
    hess = so.rosen_hess(np.linspace(-1, 1, 10))
    res = dr.optimize.minimize(rosen, X0, method="trust-exact")
    assert res.success
    np.testing.assert_allclose(dr.hessian(rosen)(np.linspace(-1, 1, 10)), hess, rtol=1e-12)
    res = dr.optimize.minimize(rosen, X0, method="Newton-CG")
    assert res.success and res.nhev > 0


def test_user_supplied_derivatives_win():
    calls = []
    jac = lambda x: (calls.append(1), so.rosen_der(x))[1]
    res = dr.optimize.minimize(rosen, X0, method="BFGS", jac=jac)
    assert res.success and len(calls) == res.njev


def test_pytree_parameters():
    X = np.random.default_rng(0).standard_normal((30, 3))
    w_true, b_true = np.array([1.0, -2.0, 0.5]), 0.7
    y = X @ w_true + b_true

    def loss(p):
        return np.mean((X @ p["w"] + p["b"] - y) ** 2)

    res = dr.optimize.minimize(loss, {"w": np.zeros(3), "b": 0.0})
    assert set(res.x) == {"w", "b"}
    np.testing.assert_allclose(res.x["w"], w_true, atol=1e-6)
    np.testing.assert_allclose(res.x["b"], b_true, atol=1e-6)


def test_constraints_get_exact_jacobians():
    f = lambda x: np.sum((x - np.array([2.0, 1.0])) ** 2)
    res = dr.optimize.minimize(f, np.zeros(2), constraints={"type": "eq",
                                                            "fun": lambda x: x[0] + x[1] - 1})
    np.testing.assert_allclose(res.x, [1.0, 0.0], atol=1e-8)
    nl = so.NonlinearConstraint(lambda x: x[0] ** 2 + x[1] ** 2, 0, 1)
    res = dr.optimize.minimize(f, np.zeros(2), method="trust-constr", constraints=nl)
    # an interior-point (barrier) solution: close to, not on, the boundary
    np.testing.assert_allclose(res.x, np.array([2.0, 1.0]) / np.sqrt(5), atol=1e-3)


def test_least_squares_and_root():
    t = np.linspace(0, 4, 40)
    y = 2.5 * np.exp(-1.3 * t) + 0.5
    resid = Counted(lambda p: p[0] * np.exp(-p[1] * t) + p[2] - y)
    res = dr.optimize.least_squares(resid, np.array([1.0, 1.0, 0.0]))
    np.testing.assert_allclose(res.x, [2.5, 1.3, 0.5], rtol=1e-8)
    fd = Counted(lambda p: p[0] * np.exp(-p[1] * t) + p[2] - y)
    so.least_squares(fd, np.array([1.0, 1.0, 0.0]))
    assert fd.calls > resid.calls  # SciPy's finite differences cost 3 calls a Jacobian
    r = dr.optimize.root(lambda x: np.stack([x[0] ** 2 - 2, x[1] - x[0]]), np.ones(2))
    np.testing.assert_allclose(r.x, [np.sqrt(2)] * 2)


def broyden_tridiagonal(x):
    left = np.concatenate([np.zeros(1), x[:-1]])
    right = np.concatenate([x[1:], np.zeros(1)])
    return (3 - 2 * x) * x - left - 2 * right + 1


def broyden_jacobian(x):
    n = x.size
    return sp.diags([-np.ones(n - 1), 3 - 4 * x, -2 * np.ones(n - 1)], [-1, 0, 1])


def test_sparse_jacobian_banded_ten_thousand_unknowns():
    n = 10_000
    x = np.random.default_rng(1).uniform(-1, 0, n)
    pattern = broyden_jacobian(np.ones(n)) != 0
    J = SparseJacobian(broyden_tridiagonal, pattern)
    A = J(x)
    assert J.n_colours == 3 and J.passes == 1  # one forward pass of three tangents
    assert sp.issparse(A) and A.nnz == 3 * n - 2
    assert abs(A - broyden_jacobian(x)).max() < 1e-13


def test_sparsity_detection_and_colouring():
    n = 2000
    P = detect_sparsity(broyden_tridiagonal, np.zeros(n))
    assert (P != (broyden_jacobian(np.ones(n)) != 0)).nnz == 0
    colours = colour_columns(P)
    assert colours.max() + 1 == 3
    # no two columns of one colour share a row
    dense = P.toarray()
    for c in range(3):
        assert dense[:, colours == c].sum(axis=1).max() <= 1


def test_least_squares_with_sparse_jacobian():
    n = 10_000
    counted = Counted(broyden_tridiagonal)
    res = dr.optimize.least_squares(counted, -np.ones(n), jac_sparsity=broyden_jacobian(
        np.ones(n)) != 0)
    assert res.success and np.max(np.abs(broyden_tridiagonal(res.x))) < 1e-8
    sj = res.sparse_jacobian
    assert sj.n_colours == 3 and sj.passes == res.njev
    auto = dr.optimize.least_squares(broyden_tridiagonal, -np.ones(500), sparsity="auto")
    assert auto.success and auto.sparse_jacobian.n_colours == 3


def test_ravel_pytree_round_trip_and_differentiable():
    tree = {"a": np.arange(6.0).reshape(2, 3), "b": (np.array([1.0]), 2.0)}
    flat, unravel = dr.ravel_pytree(tree)
    assert flat.shape == (8,)
    back = unravel(flat)
    np.testing.assert_array_equal(back["a"], tree["a"])
    assert np.shape(back["b"][1]) == ()
    g = dr.grad(lambda v: np.sum(unravel(v)["a"] ** 2) + unravel(v)["b"][1])(flat)
    np.testing.assert_array_equal(g, np.r_[2 * np.arange(6.0), 0.0, 1.0])


@pytest.mark.parametrize("method", ["Nelder-Mead", "Powell", "COBYLA", "COBYQA", "dogleg"])
def test_every_other_method_runs(method):
    # derivative-free methods run as in SciPy; dogleg gets the exact Hessian
    f = lambda x: np.sum((x - np.array([1.0, 2.0])) ** 2) + 0.1 * np.sum(x**4)
    ref = so.minimize(f, np.zeros(2), method="BFGS", jac=dr.grad(f), tol=1e-12)
    res = dr.optimize.minimize(f, np.zeros(2), method=method)
    assert res.success
    np.testing.assert_allclose(res.x, ref.x, atol=2e-3)


# A problem with a closed-form gradient and constraint Jacobians, so that SciPy's own run
# (given those derivatives) is the reference dualrev's must reproduce.
_C = np.array([1.0, 2.0])
_OBJ = (lambda x: np.sum((x - _C) ** 2), lambda x: 2 * (x - _C), lambda x, p: 2 * p)
_HALF_PLANE = {"type": "ineq", "fun": lambda x: 1.0 - x[0] - x[1],
               "jac": lambda x: np.array([[-1.0, -1.0]])}
_RIGHT = {"type": "ineq", "fun": lambda x: x[0] - 0.25, "jac": lambda x: np.array([[1.0, 0.0]])}
_DISC = (lambda x: x[0] ** 2 + x[1] ** 2, lambda x: np.array([[2 * x[0], 2 * x[1]]]))


def _without_jac(con):
    if isinstance(con, so.NonlinearConstraint):
        return so.NonlinearConstraint(con.fun, con.lb, con.ub)
    return {k: v for k, v in con.items() if k != "jac"}


# SciPy's quasi-Newton Hessian of a linear constraint never changes; it says so
@pytest.mark.filterwarnings("ignore:delta_grad == 0.0")
@pytest.mark.parametrize("bounds,constraints", [
    ([(0, 3), (0, 3)], [_HALF_PLANE]),
    (None, [_HALF_PLANE, _RIGHT]),
    ([(0, 3), (0, 3)], [_HALF_PLANE, _RIGHT]),
    ([(0.5, 3), (0, 3)], [so.NonlinearConstraint(_DISC[0], 0, 2, jac=_DISC[1])]),
], ids=["bounds+one", "two", "bounds+two", "bounds+nonlinear"])
def test_trust_constr_bounds_and_constraints_match_scipy(bounds, constraints):
    # crashed after SciPy finished: res.jac is trust-constr's list of constraint
    # Jacobians, which dualrev took for the objective's gradient
    ref = so.minimize(_OBJ[0], np.full(2, 0.1), jac=_OBJ[1], hessp=_OBJ[2],
                      method="trust-constr",
                      bounds=bounds, constraints=constraints)
    res = dr.optimize.minimize(_OBJ[0], np.full(2, 0.1), method="trust-constr",
                               bounds=bounds, constraints=[_without_jac(c) for c in constraints])
    assert ref.success and res.success
    np.testing.assert_allclose(res.x, ref.x, atol=1e-6)
    assert type(res.x) is type(ref.x) and res.x.shape == ref.x.shape
    np.testing.assert_allclose(res.grad, ref.grad, atol=1e-5)
    assert len(res.jac) == len(ref.jac)
    for J, J_ref in zip(res.jac, ref.jac, strict=True):
        np.testing.assert_allclose(J, J_ref, atol=1e-5)


@pytest.mark.parametrize("x0", [[0.1, 0.2], (0.1, 0.2), [np.float64(0.1), 0]])
def test_list_x0_gives_an_ndarray_as_scipy(x0):
    # a list x0 came back as a list of 0-d arrays, and fun saw a list instead of an array
    f = lambda x: np.sum((x - _C) ** 2) + 0.1 * np.sum(x ** 4)
    ref = so.minimize(f, x0, jac=lambda x: 2 * (x - _C) + 0.4 * x ** 3, method="BFGS")
    res = dr.optimize.minimize(f, x0, method="BFGS")
    assert type(res.x) is type(ref.x) and res.x.shape == ref.x.shape
    np.testing.assert_allclose(res.x, ref.x, atol=1e-6)
    assert type(res.jac) is type(ref.jac) and res.jac.shape == ref.jac.shape
    resid = lambda x: np.stack([x[0] - 1.0, 2 * (x[1] - x[0] ** 2)])
    for dr_solve, so_solve in ((dr.optimize.least_squares, so.least_squares),
                               (dr.optimize.root, so.root)):
        ref, res = so_solve(resid, x0), dr_solve(resid, x0)
        assert type(res.x) is type(ref.x) and res.x.shape == ref.x.shape
        np.testing.assert_allclose(res.x, ref.x, atol=1e-6)


def test_jac_true_takes_value_and_gradient_from_fun():
    # SciPy's convention: fun returns (value, gradient); the gradient is the caller's
    calls = []

    def fun(x):
        calls.append(1)
        return np.sum((x - 2.0) ** 2), 2.0 * (x - 2.0)

    res = dr.optimize.minimize(fun, np.zeros(3), jac=True, method="bfgs")
    assert res.success and np.allclose(res.x, 2.0, atol=1e-6)
    assert np.allclose(res.jac, 0.0, atol=1e-5) and res.nfev == len(calls)
    tree = dr.optimize.minimize(lambda p: (np.sum((p["a"] - 1.0) ** 2),
                                           {"a": 2.0 * (p["a"] - 1.0)}),
                                {"a": np.zeros(2)}, jac=True)
    assert np.allclose(tree.x["a"], 1.0, atol=1e-6)
