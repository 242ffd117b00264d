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
    res = dr.optimize.minimize(f, X0, method="BFGS", replay=False)
    g = Counted(rosen)
    ref = so.minimize(g, X0, method="BFGS")  # finite-difference gradient
    assert res.success and ref.success
    assert f.calls == res.nfev  # value and gradient come from one evaluation
    assert g.calls > 5 * f.calls
    # replayed (the default): f's Python runs once, to record; the same run otherwise
    h = Counted(rosen)
    rep = dr.optimize.minimize(h, X0, method="BFGS")
    assert h.calls == rep.replay_stats.records == 1
    assert rep.replay_stats.replays == rep.nfev - 1
    assert rep.nit == res.nit and rep.x.tobytes() == res.x.tobytes()


def _branchy_loss(p, data):
    # a value-dependent branch (a Huber loss written with if) and a dict argument
    r = p["w"] * data - 1.0
    total = 0.0
    for k in range(r.shape[0]):
        total = total + (r[k] ** 2 if abs(r[k]) < 0.5 else abs(r[k]) - 0.25)
    return total + np.sum(p["b"] ** 2)


@pytest.mark.parametrize("method", ["BFGS", "L-BFGS-B", "Newton-CG", "trust-exact",
                                    "trust-krylov", "CG", "SLSQP"])
def test_replay_gives_the_dynamic_run(method):
    """minimize with replay (the default) and without: the same iterates, bit for bit."""
    cases = [(rosen, X0, ()), (_branchy_loss, {"w": np.full(3, 0.2), "b": np.ones(2)},
                               (np.array([1.0, 2.0, 4.0]),))]
    for fun, x0, args in cases:
        a = dr.optimize.minimize(fun, x0, args=args, method=method)
        b = dr.optimize.minimize(fun, x0, args=args, method=method, replay=False)
        assert a.nfev == b.nfev and a.nit == b.nit and a.success == b.success
        for u, v in zip(dr.tree_flatten(a.x)[0], dr.tree_flatten(b.x)[0], strict=True):
            assert u.tobytes() == v.tobytes()
        assert a.fun == b.fun
        assert a.replay_stats.records >= 1 and a.replay_stats.replays >= 1
        assert not hasattr(b, "replay_stats")


def test_least_squares_replay_gives_the_dynamic_run():
    t = np.linspace(0, 1, 20)
    y = 2.0 * np.exp(-1.5 * t) + 0.01 * np.sin(40 * t)
    fun = lambda p: p[0] * np.exp(-p[1] * t) - y  # noqa: E731
    a = dr.optimize.least_squares(fun, np.array([1.0, 1.0]))
    b = dr.optimize.least_squares(fun, np.array([1.0, 1.0]), replay=False)
    assert a.nfev == b.nfev and a.x.tobytes() == b.x.tobytes()
    assert a.jac.tobytes() == b.jac.tobytes()


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


def _with_exact_hess(con):
    # SciPy's reference gets the closed-form constraint Hessian that dualrev supplies
    # (zero for the linear ones, not SciPy's BFGS update, which a linear constraint
    # never moves from its initial guess)
    if isinstance(con, so.NonlinearConstraint):
        return so.NonlinearConstraint(con.fun, con.lb, con.ub, jac=con.jac,
                                      hess=lambda x, v: 2 * v[0] * np.eye(2))
    return so.NonlinearConstraint(con["fun"], 0.0, np.inf, jac=con["jac"],
                                  hess=lambda x, v: np.zeros((2, 2)))


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
                      bounds=bounds, constraints=[_with_exact_hess(c) for c in constraints])
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


# ---------------------------------------------------------------- curve_fit


def _decay(x, a, b, c):
    return a * np.exp(-b * x) + c


_XD = np.linspace(0.0, 4.0, 40)
_YD = _decay(_XD, 2.5, 1.3, 0.5) + 0.05 * np.random.default_rng(2).standard_normal(_XD.size)
_SIG = 0.05 * (1.0 + _XD / 4.0)
_COV = np.diag(_SIG ** 2) + 1e-4 * np.exp(-np.abs(_XD[:, None] - _XD[None, :]))


def _decay_jac(x, a, b, c):  # closed form: SciPy's reference runs use it
    e = np.exp(-b * x)
    return np.stack([e, -a * x * e, np.ones_like(x)], axis=1)


@pytest.mark.parametrize("kw", [
    {}, {"method": "trf"}, {"method": "dogbox"}, {"sigma": _SIG}, {"sigma": _COV},
    {"sigma": _SIG, "absolute_sigma": True}, {"bounds": ([0, 0, -1], [5, 1.2, 1])},
    {"p0": [1.0, 1.0, 0.0], "method": "trf", "ftol": 1e-12},
], ids=["lm", "trf", "dogbox", "sigma", "covariance", "absolute_sigma", "bounds", "kwargs"])
def test_curve_fit_matches_scipy_with_fewer_evaluations(kw):
    kw = {"p0": [1.0, 1.0, 0.0], **kw}  # Counted hides the parameters from SciPy
    ours = Counted(_decay)
    popt, pcov = dr.optimize.curve_fit(ours, _XD, _YD, **kw)
    exact = so.curve_fit(_decay, _XD, _YD, jac=_decay_jac, **kw)
    fd = Counted(_decay)
    ref = so.curve_fit(fd, _XD, _YD, **kw)  # SciPy's finite differences
    np.testing.assert_allclose(popt, exact[0], rtol=1e-9)
    np.testing.assert_allclose(pcov, exact[1], rtol=1e-7)
    np.testing.assert_allclose(popt, ref[0], rtol=1e-5)
    np.testing.assert_allclose(pcov, ref[1], rtol=1e-3)
    assert fd.calls > ours.calls + 3  # finite differences: one call a parameter a Jacobian


def test_curve_fit_full_output_and_types_are_scipys():
    out = dr.optimize.curve_fit(_decay, _XD, _YD, full_output=True)
    ref = so.curve_fit(_decay, _XD, _YD, jac=_decay_jac, full_output=True)
    assert type(out) is type(ref) and len(out) == 5
    popt, pcov, info, mesg, ier = out
    assert type(popt) is np.ndarray and type(pcov) is np.ndarray
    assert set(info) == set(ref[2]) and ier == ref[4] and type(mesg) is str
    assert info["nfev"] == ref[2]["nfev"]  # lm's count: the exact Jacobian costs no calls
    fd = so.curve_fit(_decay, _XD, _YD, full_output=True)
    assert fd[2]["nfev"] > info["nfev"]
    trf = dr.optimize.curve_fit(_decay, _XD, _YD, method="trf", full_output=True)
    assert len(trf) == 5 and set(trf[2]) == {"nfev", "fvec"}


def test_curve_fit_data_keywords_reach_scipy():
    y = _YD.copy()
    y[3] = np.nan
    with pytest.raises(ValueError):  # check_finite (SciPy's default) sees the nan
        dr.optimize.curve_fit(_decay, _XD, y)
    popt, _ = dr.optimize.curve_fit(_decay, _XD, y, nan_policy="omit")
    ref, _ = so.curve_fit(_decay, _XD, y, jac=_decay_jac, nan_policy="omit")
    np.testing.assert_allclose(popt, ref, rtol=1e-9)
    popt, _ = dr.optimize.curve_fit(_decay, _XD, _YD, check_finite=False)
    np.testing.assert_allclose(popt, so.curve_fit(_decay, _XD, _YD, jac=_decay_jac)[0],
                               rtol=1e-9)
    with pytest.raises(RuntimeError, match="Optimal parameters not found"):
        dr.optimize.curve_fit(_decay, _XD, _YD, maxfev=2)  # leastsq's keyword, honoured
    # a 2-D xdata (two independent variables) and scalar parameters read from f's signature
    xy = np.stack([_XD, _XD[::-1]])
    plane = lambda v, a, b: a * v[0] + b * np.sin(v[1])
    popt, _ = dr.optimize.curve_fit(plane, xy, plane(xy, 1.5, -0.5))
    np.testing.assert_allclose(popt, [1.5, -0.5], rtol=1e-10)


def test_curve_fit_callers_jac_is_used_and_fd_keywords_refused():
    calls = []
    jac = lambda x, *p: (calls.append(1), _decay_jac(x, *p))[1]
    dr.optimize.curve_fit(_decay, _XD, _YD, jac=jac)
    assert calls
    fd = Counted(_decay)
    dr.optimize.curve_fit(fd, _XD, _YD, p0=[1.0, 1.0, 0.0], jac="2-point", method="trf",
                          diff_step=1e-6)
    assert fd.calls > 10  # SciPy's differences, on request
    for key, value in (("epsfcn", 1e-8), ("diff_step", 1e-6), ("jac_sparsity", None),
                       ("col_deriv", True)):
        with pytest.raises(ValueError, match=f"curve_fit: {key}= is refused"):
            dr.optimize.curve_fit(_decay, _XD, _YD, **{key: value})


# ---------------------------------------------------------------- fsolve


def _system(x, s=1.0):
    return np.stack([x[0] ** 2 + x[1] ** 2 - 4 * s, np.exp(x[0]) + x[1] - 1])


def _system_jac(x, s=1.0):  # not symmetric: col_deriv's transpose shows
    return np.array([[2 * x[0], 2 * x[1]], [np.exp(x[0]), 1.0]])


@pytest.mark.parametrize("kw", [
    {}, {"args": (1.5,)}, {"xtol": 1e-4}, {"maxfev": 3}, {"factor": 0.5},
    {"diag": [2.0, 0.5]}, {"col_deriv": True},
], ids=["plain", "args", "xtol", "maxfev", "factor", "diag", "col_deriv"])
def test_fsolve_runs_as_scipy_given_the_exact_jacobian(kw):
    with np.errstate(all="ignore"):
        x, info, ier, mesg = dr.optimize.fsolve(_system, [-1.0, 1.0], full_output=True, **kw)
        jac = (lambda x, *a: _system_jac(x, *a).T) if kw.get("col_deriv") else _system_jac
        ref = so.fsolve(_system, [-1.0, 1.0], fprime=jac, full_output=True, **kw)
    np.testing.assert_allclose(x, ref[0], rtol=1e-10)
    assert (info["nfev"], info["njev"], ier) == (ref[1]["nfev"], ref[1]["njev"], ref[2])
    assert type(x) is np.ndarray and x.shape == (2,) and type(mesg) is str


def test_fsolve_saves_evaluations_and_returns_what_scipy_returns():
    f = Counted(_system)
    x = dr.optimize.fsolve(f, np.array([[-1.0, 1.0]]))  # flattened, as SciPy does
    g = Counted(_system)
    ref = so.fsolve(g, np.array([[-1.0, 1.0]]))
    assert type(x) is type(ref) and x.shape == ref.shape == (2,)
    np.testing.assert_allclose(x, ref, rtol=1e-7)
    f, g = Counted(broyden_tridiagonal), Counted(broyden_tridiagonal)
    x = dr.optimize.fsolve(f, -np.ones(20))
    np.testing.assert_allclose(x, so.fsolve(g, -np.ones(20)), rtol=1e-7)
    assert g.calls > f.calls + 15  # a differenced Jacobian costs 20 calls, the exact one 1
    out = dr.optimize.fsolve(_system, [-1.0, 1.0], full_output=True)
    assert type(out) is tuple and len(out) == 4


def test_fsolve_band_colours_the_banded_jacobian_and_epsfcn_is_refused():
    n = 30
    x, info, ier, _ = dr.optimize.fsolve(broyden_tridiagonal, -np.ones(n), band=(1, 1),
                                         full_output=True)
    ref = so.fsolve(broyden_tridiagonal, -np.ones(n),
                    fprime=lambda x: broyden_jacobian(x).toarray(), full_output=True)
    assert ier == 1 and info["nfev"] == ref[1]["nfev"]
    np.testing.assert_allclose(x, ref[0], rtol=1e-10)
    # the band keeps only the entries SciPy's banded differences would give
    from dualrev.optimize import _band_pattern
    np.testing.assert_array_equal(_band_pattern(4, (1, 0)).toarray(),
                                  np.tril(np.triu(np.ones((4, 4)), -1)))
    with pytest.raises(ValueError, match="fsolve: epsfcn= is refused"):
        dr.optimize.fsolve(_system, [-1.0, 1.0], epsfcn=1e-6)
    calls = []
    jac = lambda x: (calls.append(1), _system_jac(x))[1]
    dr.optimize.fsolve(_system, [-1.0, 1.0], fprime=jac, epsfcn=1e-6)  # SciPy's to ignore
    assert calls


# ---------------------------------------------------------------- root_scalar


_KEPLER = (lambda E, e: E - e * np.sin(E) - 1.0, lambda E, e: 1 - e * np.cos(E),
           lambda E, e: e * np.sin(E))


def test_root_scalar_newton_gets_exact_derivatives():
    f = Counted(lambda x: np.cos(x) - x)
    sol = dr.optimize.root_scalar(f, x0=1.0)
    fd = so.root_scalar(lambda x: np.cos(x) - x, x0=1.0)  # SciPy's differenced newton
    ref = so.root_scalar(lambda x: np.cos(x) - x, x0=1.0, fprime=lambda x: -np.sin(x) - 1)
    assert isinstance(sol, so.RootResults) and sol.method == "newton" and sol.converged
    assert sol.root == pytest.approx(ref.root, abs=1e-14) and sol.iterations == ref.iterations
    assert f.calls == sol.function_calls == sol.iterations  # value and slope: one pass
    assert fd.function_calls > sol.function_calls


@pytest.mark.parametrize("kw", [
    {"method": "halley"}, {"method": "newton"}, {"method": "newton", "xtol": 1e-3},
    {"method": "newton", "rtol": 1e-3}, {"method": "halley", "maxiter": 2},
    {"method": "newton", "options": {"tol": 1e-2}},
], ids=["halley", "newton", "xtol", "rtol", "maxiter", "options"])
def test_root_scalar_keywords_as_scipy_with_closed_form_derivatives(kw):
    sol = dr.optimize.root_scalar(_KEPLER[0], args=(0.8,), x0=1.0, **kw)
    ref = so.root_scalar(_KEPLER[0], args=(0.8,), x0=1.0, fprime=_KEPLER[1],
                         fprime2=_KEPLER[2] if kw["method"] == "halley" else None, **kw)
    assert (sol.method, sol.iterations, sol.converged) == (ref.method, ref.iterations,
                                                            ref.converged)
    assert sol.root == pytest.approx(ref.root, abs=1e-13)


def test_root_scalar_method_choice_and_the_callers_derivatives():
    f, fp, fpp = _KEPLER
    ref = so.root_scalar(f, args=(0.8,), x0=1.0, fprime=fp, fprime2=fpp)
    for kw in ({"fprime2": fpp}, {"fprime": fp, "fprime2": fpp},
               {"method": "halley", "fprime": fp}):
        sol = dr.optimize.root_scalar(f, args=(0.8,), x0=1.0, **kw)  # the rest is exact
        assert sol.method == "halley" and sol.root == pytest.approx(ref.root, abs=1e-13)
    both = lambda E, e: (f(E, e), fp(E, e))  # fprime=True: f returns value and slope
    sol = dr.optimize.root_scalar(both, args=(0.8,), x0=1.0, fprime=True, method="halley")
    assert sol.converged and sol.root == pytest.approx(ref.root, abs=1e-13)
    # SciPy's own choice for the same call: brentq with a bracket, secant with x1
    for kw in ({"bracket": [0.0, 3.0]}, {"x0": 1.0, "x1": 1.5}):
        sol = dr.optimize.root_scalar(f, args=(0.8,), **kw)
        ref2 = so.root_scalar(f, args=(0.8,), **kw)
        assert (sol.method, sol.iterations) == (ref2.method, ref2.iterations)
    # fprime=False: SciPy's differenced newton
    sol = dr.optimize.root_scalar(f, args=(0.8,), x0=1.0, fprime=False)
    fd = so.root_scalar(f, args=(0.8,), x0=1.0)
    assert sol.function_calls == fd.function_calls
    z = dr.optimize.root_scalar(lambda z: z ** 2 + 1.0, x0=0.5 + 0.5j)  # complex newton
    assert z.converged and z.root == pytest.approx(1j)


@pytest.mark.parametrize("kw,name", [
    ({"x0": 1.0, "x1": 2.0, "method": "newton"}, "x1"),
    ({"x0": 1.0, "bracket": [0, 3], "method": "newton"}, "bracket"),
    ({"bracket": [0, 3], "x0": 1.0}, "x0"),
    ({"bracket": [0, 3], "fprime": _KEPLER[1]}, "fprime"),
    ({"x0": 1.0, "fprime2": _KEPLER[2], "method": "newton"}, "fprime2"),
    ({"x0": 1.0, "x1": 2.0, "fprime": _KEPLER[1], "method": "secant"}, "fprime"),
])
def test_root_scalar_refuses_what_the_method_would_ignore(kw, name):
    with pytest.raises(ValueError, match=f"does not use {name}="):
        dr.optimize.root_scalar(_KEPLER[0], args=(0.8,), **kw)


# ---------------------------------------------------------------- minimize_scalar


@pytest.mark.parametrize("kw", [
    {}, {"bracket": (0.0, 1.0)}, {"bounds": (0.0, 1.5), "method": "bounded"},
    {"method": "golden", "tol": 1e-4}, {"method": "brent", "options": {"maxiter": 3}},
    {"args": (2.0,)},
], ids=["plain", "bracket", "bounded", "golden-tol", "options", "args"])
def test_minimize_scalar_is_scipys(kw):
    f = lambda x, s=1.0: (x - s) ** 2 + np.sin(3 * x)
    res = dr.optimize.minimize_scalar(f, **kw)
    ref = so.minimize_scalar(f, **kw)
    assert isinstance(res, so.OptimizeResult)
    assert (res.x, res.nfev, res.success) == (ref.x, ref.nfev, ref.success)


# ---------------------------------------------------------------- trust-constr Hessians


def _hs071(x):
    return x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2]


def _hs071_c(x):
    return np.stack([x[0] * x[1] * x[2] * x[3], np.sum(x ** 2)])


def _luksan_vlcek(x):  # chained equality constraints of a constrained Rosenbrock
    a, b, c = x[:-2], x[1:-1], x[2:]
    return (3 * b ** 3 + 2 * c - 5 + np.sin(b - c) * np.sin(b + c) + 4 * b
            - a * np.exp(a - b) - 3)


def _trust_constr_with_bfgs(f, x0, con, bounds):
    # SciPy's default for the constraint's Hessian (BFGS), every other derivative exact
    # and the same as dualrev's
    J, vg, hv = dr.jacobian(con.fun), dr.value_and_grad(f), dr.hvp(f)
    return so.minimize(lambda x: tuple(map(np.asarray, vg(x))), x0, jac=True,
                       hessp=lambda x, p: hv(x, np.asarray(p, dtype=float)),
                       method="trust-constr", bounds=bounds,
                       constraints=so.NonlinearConstraint(con.fun, con.lb, con.ub, jac=J))


@pytest.mark.parametrize("problem", ["hs071", "luksan-vlcek"])
def test_trust_constr_constraint_hessian_is_exact_and_saves_iterations(problem):
    if problem == "hs071":
        f, x0, bounds = _hs071, np.array([1.0, 5.0, 5.0, 1.0]), so.Bounds(1, 5)
        con = so.NonlinearConstraint(_hs071_c, [25.0, 40.0], [np.inf, 40.0])
    else:
        f, x0, bounds = rosen, np.where(np.arange(12) % 2, 1.0, -1.2), None
        con = so.NonlinearConstraint(_luksan_vlcek, 0.0, 0.0)
    res = dr.optimize.minimize(f, x0, method="trust-constr", bounds=bounds, constraints=con)
    ref = _trust_constr_with_bfgs(f, x0, con, bounds)
    assert res.success and ref.success
    np.testing.assert_allclose(res.x, ref.x, atol=1e-4)
    assert res.constr_nhev[0] > 0 and ref.constr_nhev[0] == 0
    if problem == "luksan-vlcek":  # 19 against 42 iterations here; HS071's margin is small
        assert res.nit <= ref.nit


def test_trust_constr_hessian_operator_is_the_hessian_of_v_dot_c():
    from dualrev.optimize import _constraint_hess
    x, v = np.array([1.0, 2.0, 0.5, 1.5]), np.array([0.3, -2.0])
    H = _constraint_hess(_hs071_c)(x, v)
    dense = dr.hessian(lambda x: v @ _hs071_c(x))(x)
    np.testing.assert_allclose(H @ np.eye(4), dense, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(H.matvec(np.arange(4)), dense @ np.arange(4), rtol=1e-13)


def test_trust_constr_dicts_pytrees_and_the_callers_hessians():
    f = lambda x: np.sum((x - np.array([2.0, 1.0])) ** 2)
    disc = {"type": "ineq", "fun": lambda x, r: r - x[0] ** 2 - x[1] ** 2, "args": (1.0,)}
    res = dr.optimize.minimize(f, np.zeros(2), method="trust-constr", constraints=disc)
    np.testing.assert_allclose(res.x, np.array([2.0, 1.0]) / np.sqrt(5), atol=1e-3)
    assert res.constr_nhev[0] > 0
    eq = dr.optimize.minimize(f, np.ones(2), method="trust-constr",
                              constraints={"type": "eq", "fun": lambda x: x[0] * x[1] - 0.5})
    assert abs(eq.x[0] * eq.x[1] - 0.5) < 1e-6 and eq.constr_nhev[0] > 0
    calls = []
    hess = lambda x, v: (calls.append(1), 2 * v[0] * np.eye(2))[1]
    for h in (hess, so.SR1()):  # the caller's Hessian or update strategy is kept
        con = so.NonlinearConstraint(lambda x: x[0] ** 2 + x[1] ** 2, 0, 1, hess=h)
        res = dr.optimize.minimize(f, np.zeros(2), method="trust-constr", constraints=con)
        np.testing.assert_allclose(res.x, np.array([2.0, 1.0]) / np.sqrt(5), atol=1e-3)
    assert calls
    tree = dr.optimize.minimize(lambda p: f(np.concatenate([p["a"], p["b"]])),
                                {"a": np.zeros(1), "b": np.zeros(1)}, method="trust-constr",
                                constraints=so.NonlinearConstraint(
                                    lambda p: p["a"][0] ** 2 + p["b"][0] ** 2, 0, 1))
    np.testing.assert_allclose([tree.x["a"][0], tree.x["b"][0]],
                               np.array([2.0, 1.0]) / np.sqrt(5), atol=1e-3)


def test_objective_hessp_reuses_the_hessian_only_at_the_same_x():
    # small n: the Hessian is formed once per x; a new x (also the same array written in
    # place, as SciPy does) or new args forms it again
    from scipy.optimize import rosen_hess_prod

    from dualrev.optimize import _objective_hessp

    calls = []

    def f(x, scale):
        calls.append(1)
        return scale * so.rosen(x)

    hp = _objective_hessp(f, 5)
    x = np.linspace(-0.5, 1.2, 5)
    rng = np.random.default_rng(7)
    ps = rng.standard_normal((3, 5))
    for p in ps:
        np.testing.assert_allclose(hp(x, p, 2.0), 2.0 * rosen_hess_prod(x, p), rtol=1e-12)
    traced_once = len(calls)
    x[0] += 0.3  # in place
    np.testing.assert_allclose(hp(x, ps[0], 2.0), 2.0 * rosen_hess_prod(x, ps[0]),
                               rtol=1e-12)
    np.testing.assert_allclose(hp(x, ps[1], 3.0), 3.0 * rosen_hess_prod(x, ps[1]),
                               rtol=1e-12)
    assert len(calls) == 3 * traced_once
    big = _objective_hessp(lambda x: so.rosen(x), 80)  # above the threshold: HVPs
    xb = np.linspace(-0.5, 1.2, 80)
    np.testing.assert_allclose(big(xb, np.ones(80)), rosen_hess_prod(xb, np.ones(80)),
                               rtol=1e-12)


# ------------------------------------------- custom methods, jac=True, structured outputs


def _newton_minimizer(seen):
    """A custom minimizer as SciPy documents them: Newton steps with the jac and hess it
    is given, recording what it was given at x0."""

    def method(fun, x0, args=(), jac=None, hess=None, hessp=None, **kw):
        seen.update(jac=jac(x0, *args), hess=hess(x0, *args), kw=kw,
                    hessp=hessp and hessp(x0, np.ones_like(x0), *args))
        x = np.array(x0, dtype=float)
        for _ in range(30):
            x = x - np.linalg.solve(hess(x, *args), jac(x, *args))
        return so.OptimizeResult(x=x, fun=fun(x, *args), success=True, nit=30)

    return method


def test_minimize_custom_method_gets_the_exact_derivatives():
    # f = sum(exp(x) - c x): gradient exp(x) - c, Hessian diag(exp(x)), minimum at log(c)
    c = np.array([1.5, 2.0, 3.0])
    f = lambda x, c: np.sum(np.exp(x) - c * x)
    x0 = np.array([0.1, -0.2, 0.3])
    seen = {}
    res = dr.optimize.minimize(f, x0, args=(c,), method=_newton_minimizer(seen), tol=1e-9)
    np.testing.assert_allclose(res.x, np.log(c), rtol=1e-12)
    np.testing.assert_allclose(seen["jac"], np.exp(x0) - c, rtol=1e-14)
    np.testing.assert_allclose(seen["hess"], np.diag(np.exp(x0)), rtol=1e-14)
    np.testing.assert_allclose(seen["hessp"], np.exp(x0), rtol=1e-14)
    assert seen["kw"]["tol"] == 1e-9  # SciPy passes tol to a custom method as tol=
    # a pytree x0: the method sees the flat vector, res.x comes back as a dict
    tree = dr.optimize.minimize(lambda p: f(p["x"], c), {"x": x0},
                                method=_newton_minimizer({}))
    np.testing.assert_allclose(tree.x["x"], np.log(c), rtol=1e-12)
    # the caller's own derivatives are the ones the method gets
    own = {}
    dr.optimize.minimize(f, x0, args=(c,), method=_newton_minimizer(own),
                         jac=lambda x, c: np.exp(x) - c + 1.0,
                         hess=lambda x, c: 2.0 * np.diag(np.exp(x)))
    np.testing.assert_allclose(own["jac"], np.exp(x0) - c + 1.0, rtol=1e-14)
    np.testing.assert_allclose(own["hess"], 2.0 * np.diag(np.exp(x0)), rtol=1e-14)
    assert own["hessp"] is None  # SciPy's None: the caller chose their Hessian
    # jac=True: SciPy splits fun's (value, gradient) before calling the method
    split = {}
    dr.optimize.minimize(lambda x: (np.sum(x ** 2), 3.0 * x), x0, jac=True,
                         method=_newton_minimizer(split))
    np.testing.assert_allclose(split["jac"], 3.0 * x0, rtol=1e-14)
    np.testing.assert_allclose(split["hess"], 2.0 * np.eye(3), rtol=1e-14)


@pytest.mark.parametrize("method", ["newton-cg", "trust-exact", "trust-krylov"])
def test_jac_true_with_a_hessian_method_differentiates_the_value(method):
    # fun returns (value, gradient): the exact Hessian is the value's (it was the
    # Hessian of the tuple, a crash); Newton on a quadratic converges in a step or two
    A = np.array([[3.0, 1.0], [1.0, 2.0]])
    b = np.array([1.0, -1.0])
    fun = lambda x: (0.5 * x @ A @ x - b @ x, A @ x - b)
    res = dr.optimize.minimize(fun, np.zeros(2), jac=True, method=method)
    assert res.success and res.nit <= 5
    np.testing.assert_allclose(res.x, np.linalg.solve(A, b), rtol=1e-8)


def _system_with_jacobian(x, s):
    calls.append(1)
    return (np.array([x[0] ** 2 - s, x[1] - x[0]]),
            np.array([[2.0 * x[0], 0.0], [-1.0, 1.0]]))


calls: list[int] = []


@pytest.mark.parametrize("method", ["hybr", "lm", "broyden1", "df-sane"])
def test_root_jac_true_uses_the_callers_jacobian(method):
    calls.clear()
    res = dr.optimize.root(_system_with_jacobian, np.ones(2), args=(2.0,), jac=True,
                           method=method)
    assert res.success
    np.testing.assert_allclose(res.x, [np.sqrt(2.0)] * 2, rtol=1e-6)
    if method in ("hybr", "lm"):
        ref = so.root(_system_with_jacobian, np.ones(2), args=(2.0,), jac=True,
                      method=method)
        np.testing.assert_allclose(res.x, ref.x, rtol=1e-12)
        assert res.nfev == ref.nfev  # the same iterates: the caller's Jacobian was used
    # a Jacobian of the wrong size is refused, not broadcast
    with pytest.raises(ValueError, match="Jacobian has 3 elements"):
        dr.optimize.root(lambda x: (x ** 2 - 2.0, np.ones(3)), np.ones(2), jac=True)


def test_root_of_an_nd_or_pytree_output():
    target = np.arange(1.0, 5.0).reshape(2, 2)
    for method, rtol in (("hybr", 1e-10), ("lm", 1e-10), ("krylov", 1e-5)):
        sq = dr.optimize.root(lambda x: x ** 2 - target, np.ones((2, 2)), method=method)
        assert sq.x.shape == (2, 2)
        np.testing.assert_allclose(sq.x, np.sqrt(target), rtol=rtol)
        flat_in = dr.optimize.root(lambda x: np.reshape(x ** 3, (2, 2)) - target,
                                   np.ones(4), method=method)
        np.testing.assert_allclose(flat_in.x, np.cbrt(target.ravel()), rtol=rtol)
        tree = dr.optimize.root(lambda p: {"a": p["a"] ** 2 - 2.0, "b": p["b"] - p["a"]},
                                {"a": np.ones(1), "b": np.zeros(2)}, method=method)
        np.testing.assert_allclose(tree.x["a"], [np.sqrt(2.0)], rtol=rtol)
        np.testing.assert_allclose(tree.x["b"], [np.sqrt(2.0)] * 2, rtol=rtol)
    # the caller's Jacobian of a 2-D output in out.shape + x.shape is read as (4, 4)
    own = dr.optimize.root(lambda x: x ** 2 - target, np.ones((2, 2)),
                           jac=lambda x: np.einsum("ij,ik,jl->ijkl", 2.0 * x,
                                                   np.eye(2), np.eye(2)))
    np.testing.assert_allclose(own.x, np.sqrt(target), rtol=1e-10)


def test_least_squares_of_a_pytree_output():
    res = dr.optimize.least_squares(
        lambda p: {"a": p["a"] ** 2 - 2.0, "b": 3.0 * (p["b"] - 1.0)},
        {"a": np.ones(1), "b": np.zeros(2)})
    np.testing.assert_allclose(res.x["a"], [np.sqrt(2.0)], rtol=1e-8)
    np.testing.assert_allclose(res.x["b"], [1.0, 1.0], rtol=1e-8)
    # res.jac is the exact (3, 3) Jacobian of the flattened residuals at the solution
    np.testing.assert_allclose(res.jac, np.diag([2.0 * np.sqrt(2.0), 3.0, 3.0]),
                               rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("method", ["trust-exact", "newton-cg", "dogleg", "trust-constr"])
def test_the_callers_hessian_of_a_2d_x_is_read_as_the_flat_matrix(method):
    # x0 of shape (3, 2): the caller's Hessian has shape x.shape + x.shape, SciPy needs
    # (6, 6) (it crashed inside SciPy); the minimum of sum((x - A)^2 + x^4) solves
    # 2 (x - A) + 4 x^3 = 0 elementwise
    A = np.arange(1.0, 7.0).reshape(3, 2)
    f = lambda x: np.sum((x - A) ** 2) + np.sum(x ** 4)
    H = lambda x: np.einsum("ik,jl->ijkl", np.eye(3), np.eye(2)) * (2 + 12 * x ** 2)[
        :, :, None, None]
    res = dr.optimize.minimize(f, np.zeros((3, 2)), method=method, hess=H)
    assert res.x.shape == (3, 2)
    np.testing.assert_allclose(2 * (res.x - A) + 4 * res.x ** 3, 0.0, atol=1e-5)
    with pytest.raises(ValueError, match=r"hess returned 4 elements"):
        dr.optimize.minimize(f, np.zeros((3, 2)), method=method, hess=lambda x: np.eye(2))


@pytest.mark.parametrize("solve,at_8,slope", [
    (lambda a: dr.optimize.minimize(lambda x: np.sum((x - a) ** 2), np.zeros(2)).x, 16.0, 2.0),
    (lambda a: dr.optimize.minimize(lambda x: np.sum((x - a) ** 2), np.zeros(2),
                                    method="nelder-mead").x, 16.0, 2.0),
    (lambda a: dr.optimize.least_squares(lambda x: x - a, np.zeros(2)).x, 16.0, 2.0),
    (lambda a: dr.optimize.root(lambda x: x ** 3 - a, np.ones(2)).x, 4.0, 2 / 12),
    (lambda a: dr.optimize.fsolve(lambda x: x ** 3 - a, np.ones(2)), 4.0, 2 / 12),
    (lambda a: dr.optimize.root_scalar(lambda x: x ** 3 - a, x0=1.0).root, 2.0, 1 / 12),
    (lambda a: dr.optimize.root_scalar(lambda x: x ** 3 - a, x0=1.0,
                                       fprime=lambda x: 3 * x ** 2, method="newton").root,
     2.0, 1 / 12)],
    ids=["minimize", "nelder-mead", "least_squares", "root", "fsolve", "root_scalar",
         "root_scalar-fprime"])
def test_dualrev_optimize_solutions_are_differentiated_implicitly(solve, at_8, slope):
    # the objective closes over a traced value: the solution (x = a, or x = cbrt(a)) is
    # differentiated by the implicit function theorem, in both modes
    np.testing.assert_allclose(dr.grad(lambda a: np.sum(solve(a)))(8.0), slope, rtol=1e-6)
    np.testing.assert_allclose(dr.jacfwd(lambda a: np.sum(solve(a)))(8.0), slope, rtol=1e-6)
    # plain calls still solve (the closed forms at a = 8: x = a, or x = cbrt(8) = 2)
    np.testing.assert_allclose(np.sum(solve(8.0)), at_8, rtol=1e-4)


def test_minimize_and_gradients_never_import_dask():
    # optimize._computed and the reductions' chunked cotangents import Dask only for a
    # lazy value: without Dask (blocked here) dualrev imports, differentiates, minimizes
    import subprocess
    import sys

    code = ("import sys; sys.modules['dask'] = None; sys.modules['dask.array'] = None\n"
            "import numpy as np, dualrev as dr\n"
            "from dualrev import optimize\n"
            "f = lambda x: np.mean((x - 1.0) ** 2) + np.sum(x[1:] ** 2)\n"
            "g = dr.grad(f)(np.zeros(3))\n"
            "assert np.allclose(g, [-2 / 3, -2 / 3, -2 / 3]), g\n"
            "res = optimize.minimize(f, np.zeros(3), method='newton-cg')\n"
            "assert np.allclose(res.x, [1.0, 0.25, 0.25], atol=1e-6), res.x\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.stdout.strip() == "ok", out.stderr
