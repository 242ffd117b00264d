"""dualrev.optimize with sparse exact derivatives: minimize's sparse Hessian
(hess="sparse", hess_sparsity=), trust-constr's sparse constraint Jacobians and
Hessians, least_squares' structural sparse Jacobian; each against the dense exact path
(same iterations, same x), SciPy's closed forms, and the counters that show the sparse
path ran (colours, passes, detections)."""

import numpy as np
import pytest
import scipy.optimize as so
import scipy.sparse as sp

import dualrev as dr
from dualrev.optimize import SparseDerivative


def chained_rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def near_one(n, seed=0):
    return 1.0 + 0.2 * np.random.default_rng(seed).uniform(-1.0, 1.0, n)


# ------------------------------------------------------------ the objective's Hessian

HESSIAN_METHODS = ["newton-cg", "trust-ncg", "trust-krylov", "trust-constr"]


@pytest.mark.parametrize("method", HESSIAN_METHODS)
def test_sparse_hessian_run_is_the_dense_run(method):
    # small n: the same iterations and the same x as the default Hessian-vector products
    x0 = near_one(40, seed=1)
    ref = dr.optimize.minimize(chained_rosen, x0, method=method)
    res = dr.optimize.minimize(chained_rosen, x0, method=method, hess="sparse")
    assert res.success and ref.success
    assert res.nit == ref.nit
    np.testing.assert_allclose(res.x, ref.x, rtol=0, atol=1e-10)
    H = res.sparse_hessian
    assert H.n_colours == 3 and H.detections == 1 and H.passes >= 1
    # the matrix is SciPy's closed form at the solution
    np.testing.assert_allclose(H(res.x).toarray(), so.rosen_hess(res.x), rtol=1e-13)


@pytest.mark.parametrize("method", ["newton-cg", "trust-krylov", "trust-constr"])
def test_chained_rosenbrock_ten_thousand_unknowns_three_colours(method):
    n = 10_000
    x0 = near_one(n)
    res = dr.optimize.minimize(chained_rosen, x0, method=method, hess="sparse")
    ref = dr.optimize.minimize(chained_rosen, x0, method=method)  # HVPs
    assert res.success and res.fun < 1e-3 * chained_rosen(x0) and res.nit == ref.nit
    np.testing.assert_allclose(res.x, ref.x, rtol=0, atol=1e-9)
    H = res.sparse_hessian
    assert H.n_colours == 3 and H.detections == 1
    assert H.pattern.shape == (n, n) and H.pattern.nnz == 3 * n - 2
    # one batched pass per iterate, never one per Krylov product
    if method == "newton-cg":
        assert H.passes == res.nhev
    else:
        assert H.passes <= res.nit + 1


def test_trust_constr_bounds_with_a_sparse_hessian():
    # the interior point amplifies the last-bit differences of the products, so the runs
    # agree to the tolerance, not to the bit
    x0 = np.full(30, 0.5)
    bounds = so.Bounds(-2.0, 0.9)
    ref = dr.optimize.minimize(chained_rosen, x0, method="trust-constr", bounds=bounds)
    res = dr.optimize.minimize(chained_rosen, x0, method="trust-constr", bounds=bounds,
                               hess="sparse")
    assert res.success and ref.success and abs(res.nit - ref.nit) <= 5
    np.testing.assert_allclose(res.x, ref.x, atol=1e-4)
    assert np.all(res.x <= 0.9) and res.sparse_hessian.passes > 0


def test_given_pattern_pytrees_and_jac_true():
    n = 50
    x0 = near_one(n, seed=2)
    P = sp.diags([np.ones(n - 1), np.ones(n), np.ones(n - 1)], [-1, 0, 1]) != 0
    ref = dr.optimize.minimize(chained_rosen, x0, method="newton-cg")
    for pattern in (P, P.toarray(), dr.sparse.hessian_sparsity(chained_rosen, x0)):
        res = dr.optimize.minimize(chained_rosen, x0, method="newton-cg",
                                   hess_sparsity=pattern)  # implies hess="sparse"
        assert res.sparse_hessian.detections == 0 and res.sparse_hessian.n_colours == 3
        np.testing.assert_allclose(res.x, ref.x, rtol=0, atol=1e-12)
    # a pytree x: the pattern is of the flattened x
    tree = dr.optimize.minimize(lambda p: chained_rosen(np.concatenate([p["a"], p["b"]])),
                                {"a": x0[:20], "b": x0[20:]}, method="trust-ncg",
                                hess="sparse")
    np.testing.assert_allclose(np.concatenate([tree.x["a"], tree.x["b"]]), 1.0, atol=1e-6)
    assert tree.sparse_hessian.pattern.shape == (n, n)
    # jac=True: the Hessian is the value's
    vg = dr.value_and_grad(chained_rosen)
    both = dr.optimize.minimize(vg, x0, method="newton-cg", jac=True, hess="sparse")
    np.testing.assert_allclose(both.x, ref.x, rtol=0, atol=1e-12)


def test_a_pattern_taken_at_a_point_is_detected_again_at_every_point():
    # the branch on x[0] changes the Hessian's pattern: the one found at x0 would miss
    # the (0, 2) entries where x[0] < 0
    def f(x):
        s = np.sum(x ** 4)
        if x[0] > 0:
            return s + np.sum(x[:-1] * x[1:])
        return s + np.sum(x[:-2] * x[2:])

    H = SparseDerivative("hessian", f)
    x = np.linspace(0.5, 1.5, 6)
    for first, detections in ((1.0, 1), (-1.0, 2), (2.0, 3)):
        x[0] = first
        np.testing.assert_allclose(H(x).toarray(), dr.hessian(f)(x), rtol=1e-14)
        assert H.detections == detections and not H.sparsity.structural
    H(x.copy())  # the same point: the matrix computed before, no pass
    assert H.passes == 3


def test_implicit_derivative_through_a_sparse_hessian_solve():
    # x*(a) = argmin sum((x - a)^4 + (x - a)^2) = a, dx*/da = I
    def solve(a):
        f = lambda x: np.sum((x - a) ** 4 + (x - a) ** 2)
        return dr.optimize.minimize(f, np.zeros(3), method="newton-cg", hess="sparse",
                                    hess_sparsity=np.eye(3)).x

    a = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(solve(a), a, atol=1e-6)
    np.testing.assert_allclose(dr.jacobian(solve)(a), np.eye(3), atol=1e-6)

    # least_squares with the sparse Jacobian: r = 4x + x^3 + (stencil) - a, so
    # dx*/da = J(x*)^-1, the tridiagonal-plus inverse at the solution
    def fit(a):
        return dr.optimize.least_squares(lambda x: banded_residual(x) + 1.0 - a,
                                         np.zeros(6), sparsity="auto").x

    a = np.linspace(0.2, 1.2, 6)
    x = fit(a)
    np.testing.assert_allclose(banded_residual(x) + 1.0, a, atol=1e-8)
    np.testing.assert_allclose(dr.jacobian(fit)(a),
                               np.linalg.inv(dr.jacobian(banded_residual)(x)), atol=1e-6)


@pytest.mark.parametrize("kw, match", [
    (dict(method="bfgs", hess="sparse"), "uses no Hessian"),
    (dict(method="trust-exact", hess="sparse"), "factorises a dense Hessian"),
    (dict(method="dogleg", hess="sparse"), "factorises a dense Hessian"),
    (dict(method="newton-cg", hess="sparse", hessp=lambda x, p: p), "drop one"),
    (dict(method="newton-cg", hess=lambda x: np.eye(4), hess_sparsity=np.eye(4)),
     "hess_sparsity= is the pattern"),
    (dict(method="newton-cg", hess_sparsity=np.eye(3)), r"shape \(3, 3\)"),
    (dict(method="slsqp", constraints={"type": "eq", "fun": lambda x: x[0],
                                       "jac": "sparse"}), "needs method='trust-constr'"),
    (dict(method="cobyla", constraints=so.NonlinearConstraint(
        lambda x: x[0], 0, 1, hess="sparse")), "needs method='trust-constr'"),
])
def test_sparse_keywords_refused_where_they_cannot_be_honoured(kw, match):
    with pytest.raises(dr.SparseOptionError, match=match) as info:
        dr.optimize.minimize(lambda x: np.sum(x ** 4), np.ones(4), **kw)
    assert isinstance(info.value, ValueError)


# ------------------------------------------------------------ trust-constr constraints

def control(z, N):
    """A discretised optimal-control problem: states x_0..x_N, controls u_0..u_{N-1},
    x_{k+1} = x_k + h (-x_k^3 + u_k), x_0 = 1; cost: tracking x = 0.5 plus effort."""
    h = 1.0 / N
    x, u = z[:N + 1], z[N + 1:]
    return np.concatenate([x[:1] - 1.0, x[1:] - x[:-1] - h * (u - x[:-1] ** 3)])


def control_cost(z, N):
    x, u = z[:N + 1], z[N + 1:]
    return np.sum((x - 0.5) ** 2) / N + 0.1 * np.sum(u ** 2) / N


def test_trust_constr_sparse_constraint_jacobian_and_hessian_match_the_dense_ones():
    N = 20
    z0 = np.zeros(2 * N + 1)
    f = lambda z: control_cost(z, N)
    c = lambda z: control(z, N)
    dense = dr.optimize.minimize(f, z0, method="trust-constr",
                                 constraints=so.NonlinearConstraint(c, 0.0, 0.0))
    asked = so.NonlinearConstraint(c, 0.0, 0.0, jac="sparse", hess="sparse")
    sparse = dr.optimize.minimize(f, z0, method="trust-constr", constraints=asked)
    everything = dr.optimize.minimize(f, z0, method="trust-constr", hess="sparse",
                                      constraints={"type": "eq", "fun": c})
    for res in (dense, sparse, everything):
        # SciPy factorises a sparse Jacobian otherwise (augmented system, not QR), yet
        # the iterates agree to rounding here
        assert res.success and np.max(np.abs(c(res.x))) < 1e-8 and res.nit == dense.nit
        np.testing.assert_allclose(res.x, dense.x, rtol=0, atol=1e-12)
    J, H = sparse.sparse_constraints
    assert J.kind == "jacobian" and H.kind == "hessian"
    # rows k and k + 2 share no variable: two row colours (reverse), where the columns
    # need three (u_k meets x_k and x_k+1); the Hessian of v.c is diagonal
    assert (J.mode, J.n_colours) == ("reverse", 2) and H.n_colours == 1
    assert J.passes >= 1 and H.passes >= 1
    # the matrices are the dense exact ones (at the solution, with some multipliers)
    v = np.linspace(-1.0, 1.0, N + 1)
    np.testing.assert_allclose(J(dense.x).toarray(), dr.jacobian(c)(dense.x), rtol=1e-14)
    np.testing.assert_allclose(H(dense.x, v).toarray(),
                               dr.hessian(lambda z: v @ c(z))(dense.x), rtol=1e-14)
    assert "sparse_constraints" not in dense
    assert everything.sparse_hessian.n_colours == 1 and len(
        everything.sparse_constraints) == 2


def test_trust_constr_sparse_optimal_control_at_two_thousand_unknowns():
    N = 1000
    z0 = np.zeros(2 * N + 1)
    res = dr.optimize.minimize(lambda z: control_cost(z, N), z0, method="trust-constr",
                               hess="sparse", constraints=so.NonlinearConstraint(
                                   lambda z: control(z, N), 0.0, 0.0))
    assert res.success and np.max(np.abs(control(res.x, N))) < 1e-8
    J, H = res.sparse_constraints
    assert J.pattern.shape == (N + 1, 2 * N + 1) and J.n_colours == 2
    assert H.n_colours == 1 and res.sparse_hessian.n_colours == 1
    assert sp.issparse(res.jac[0])


def test_finite_difference_sparsity_is_the_exact_sparse_jacobians_pattern():
    N = 10
    c = lambda z: control(z, N)
    P = dr.sparse.jacobian_sparsity(c, np.zeros(2 * N + 1)).pattern
    con = so.NonlinearConstraint(c, 0.0, 0.0, finite_diff_jac_sparsity=P)
    res = dr.optimize.minimize(lambda z: control_cost(z, N), np.zeros(2 * N + 1),
                               method="trust-constr", constraints=con)
    (J,) = res.sparse_constraints  # the Hessian stays the default (HVP operator)
    assert J.detections == 0 and J.kind == "jacobian" and res.success
    with pytest.raises(dr.SparseOptionError, match=r"shape \(11, 20\)"):
        dr.optimize.minimize(lambda z: control_cost(z, N), np.zeros(2 * N + 1),
                             method="trust-constr", constraints=so.NonlinearConstraint(
                                 c, 0.0, 0.0, finite_diff_jac_sparsity=P[:, 1:]))


# ------------------------------------------------------------ least_squares

def banded_residual(x):
    """A residual with a Jacobian of band width 5 (two sub- and two super-diagonals)."""
    p = np.pad(x, 2)
    return 4.0 * x + x ** 3 + 0.5 * (p[:-4] + p[4:]) - (p[1:-3] + p[3:-1]) - 1.0


def test_least_squares_banded_ten_thousand_unknowns_colours_equal_the_band_width():
    n = 10_000
    res = dr.optimize.least_squares(banded_residual, np.zeros(n), sparsity="auto")
    assert res.success and np.max(np.abs(banded_residual(res.x))) < 1e-8
    J = res.sparse_jacobian
    assert J.n_colours == 5 and J.detections == 1 and J.passes == res.njev
    assert sp.issparse(res.jac) and res.jac.nnz == 5 * n - 6


@pytest.mark.parametrize("kw", [
    dict(),
    dict(x_scale="jac"),
    dict(bounds=(-0.4, 0.4)),
    dict(bounds=(-0.4, 0.4), x_scale="jac", method="dogbox", loss="soft_l1"),
])
def test_least_squares_sparse_is_the_dense_run_with_lsmr(kw):
    # SciPy solves the subproblems by lsmr with a sparse Jacobian: the dense run with
    # tr_solver="lsmr" takes the same steps
    x0 = np.zeros(60)
    ref = dr.optimize.least_squares(banded_residual, x0, tr_solver="lsmr", **kw)
    res = dr.optimize.least_squares(banded_residual, x0, sparsity="auto",
                                    tr_solver="lsmr", **kw)
    assert res.nfev == ref.nfev and res.njev == ref.njev
    np.testing.assert_allclose(res.x, ref.x, rtol=0, atol=1e-10)
    np.testing.assert_allclose(res.jac.toarray(), ref.jac, rtol=1e-14)
    assert res.sparse_jacobian.passes == res.njev


def bratu_residual(u, N=40, lam=3.0):
    """-Laplace(u) - lam exp(u) = 0 on the unit square, u = 0 on the boundary."""
    h = 1.0 / (N + 1)
    U = np.pad(np.reshape(u, (N, N)), 1)
    lap = (U[:-2, 1:-1] + U[2:, 1:-1] + U[1:-1, :-2] + U[1:-1, 2:] - 4 * U[1:-1, 1:-1])
    return -lap / h ** 2 - lam * np.exp(U[1:-1, 1:-1])


def test_least_squares_two_dimensional_bratu_grid():
    N = 40
    res = dr.optimize.least_squares(bratu_residual, np.zeros((N, N)), sparsity="auto")
    assert res.x.shape == (N, N) and np.max(np.abs(bratu_residual(res.x))) < 1e-6
    J = res.sparse_jacobian
    assert J.pattern.nnz == 5 * N * N - 4 * N  # the five-point stencil, exactly
    assert 5 <= J.n_colours <= 8
    # the sparse Jacobian at the solution is the closed form -L/h^2 - lam diag(exp(u))
    h = 1.0 / (N + 1)
    T = sp.diags([np.ones(N - 1), -2.0 * np.ones(N), np.ones(N - 1)], [-1, 0, 1])
    L = sp.kron(sp.eye(N), T) + sp.kron(T, sp.eye(N))
    exact = -L / h ** 2 - 3.0 * sp.diags(np.exp(res.x.ravel()))
    assert abs(res.jac - exact).max() < 1e-9 * abs(exact).max()


def test_least_squares_sparsity_keywords():
    x0 = np.zeros(30)
    P = dr.sparse.jacobian_sparsity(banded_residual, x0)
    given = dr.optimize.least_squares(banded_residual, x0, jac_sparsity=P)
    assert given.sparse_jacobian.detections == 0 and given.sparse_jacobian.n_colours == 5
    # jac_sparsity with SciPy's own differences reaches SciPy, as in SciPy
    fd = dr.optimize.least_squares(banded_residual, x0, jac="2-point",
                                   jac_sparsity=P.pattern)
    ref = so.least_squares(banded_residual, x0, jac="2-point", jac_sparsity=P.pattern)
    assert fd.nfev == ref.nfev and "sparse_jacobian" not in fd
    np.testing.assert_array_equal(fd.x, ref.x)
    refusals = [
        (dict(jac_sparsity="auto", sparsity="auto"), "same option"),
        (dict(sparsity="dense"), "'auto', a Sparsity"),
        (dict(sparsity="auto", jac=lambda x: np.eye(30)), "drop jac="),
        (dict(jac_sparsity=P, jac="2-point", sparsity=None, method="lm"), None),
        (dict(sparsity="auto", method="lm"), "MINPACK"),
        (dict(sparsity="auto", tr_solver="exact"), "tr_solver='lsmr'"),
        (dict(sparsity=P.pattern[:-1]), r"shape \(29, 30\)"),
    ]
    for kw, match in refusals:
        if match is None:  # SciPy's own finite differences: SciPy's own refusal
            with pytest.raises(ValueError):
                dr.optimize.least_squares(banded_residual, x0, **kw)
            continue
        with pytest.raises(dr.SparseOptionError, match=match):
            dr.optimize.least_squares(banded_residual, x0, **kw)


def test_large_sparse_constraints_get_a_sparse_jacobian_unasked():
    from dualrev.optimize import AUTO_SPARSE_CONSTRAINT_ENTRIES, _flat_constraint

    def flat(con, n):
        return _flat_constraint(con, lambda z: z, True, False, np.zeros(n))

    N = 400  # 401 x 801 entries: above the threshold, 0.5% filled
    assert (N + 1) * (2 * N + 1) >= AUTO_SPARSE_CONSTRAINT_ENTRIES
    c = lambda z: control(z, N)
    for con in (so.NonlinearConstraint(c, 0.0, 0.0), {"type": "eq", "fun": c}):
        (J,) = flat(con, 2 * N + 1)._dualrev_sparse
        assert J.kind == "jacobian" and J.detections == 1 and J.passes == 0
        z = np.linspace(-1.0, 1.0, 2 * N + 1)
        np.testing.assert_allclose(J(z).toarray(), dr.jacobian(c)(z), rtol=1e-14)
        assert J.n_colours == 2 and J.detections == 1 and J.passes == 1
    small = flat(so.NonlinearConstraint(lambda z: control(z, 20), 0.0, 0.0), 41)
    assert small._dualrev_sparse == []
    # large but dense (every constraint reads every variable): stays dense
    A = np.random.default_rng(3).standard_normal((60, 2000))
    dense = flat(so.NonlinearConstraint(lambda z: A @ z ** 2, 0.0, 1.0), 2000)
    assert dense._dualrev_sparse == []
    # the caller's Jacobian is kept
    given = flat(so.NonlinearConstraint(c, 0.0, 0.0, jac=dr.jacobian(c)), 2 * N + 1)
    assert given._dualrev_sparse == []
    # and the solve with the automatic sparse Jacobian is the dense one's
    res = dr.optimize.minimize(lambda z: control_cost(z, N), np.zeros(2 * N + 1),
                               method="trust-constr",
                               constraints=so.NonlinearConstraint(c, 0.0, 0.0))
    assert res.success and len(res.sparse_constraints) == 1 and sp.issparse(res.jac[0])
    assert np.max(np.abs(c(res.x))) < 1e-8
