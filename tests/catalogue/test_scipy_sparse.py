"""scipy.sparse matrices and arrays as constant operators on traced values: Jacobians
against ``L.toarray()``, every format, both operand orders, vmap, spsolve."""

import copy

import numpy as np
import pytest
import scipy.sparse as sps
import scipy.sparse.linalg as spla

import dualrev as dr
from dualrev.errors import NoDerivativeRule

rng = np.random.default_rng(1403)
DENSE = np.where(rng.uniform(size=(5, 4)) < 0.5, rng.standard_normal((5, 4)), 0.0)
FORMATS = ["csr_matrix", "csc_matrix", "coo_matrix", "lil_matrix", "dia_matrix", "bsr_matrix",
           "dok_matrix", "csr_array", "csc_array", "coo_array", "lil_array", "dia_array",
           "bsr_array", "dok_array"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_jacobian_is_the_matrix(fmt):
    L = getattr(sps, fmt)(DENSE)
    u, w = rng.standard_normal(4), rng.standard_normal(5)
    for jac in (dr.jacfwd, dr.jacrev):
        np.testing.assert_allclose(jac(lambda u: L @ u)(u), DENSE)
        np.testing.assert_allclose(jac(lambda u: L.dot(u))(u), DENSE)
        np.testing.assert_allclose(jac(lambda w: w @ L)(w), DENSE.T)
    np.testing.assert_allclose(dr.jvp(lambda u: L @ u, (u,), (u,))[0], DENSE @ u)


def test_spmatrix_star_is_the_product():
    L = sps.csr_matrix(DENSE)
    np.testing.assert_allclose(dr.jacrev(lambda u: L * u)(np.ones(4)), DENSE)


def test_matrix_operands_vmap_and_second_order():
    L = sps.csr_array(DENSE)
    U = rng.standard_normal((4, 3))
    np.testing.assert_allclose(dr.jvp(lambda U: L @ U, (U,), (U,))[1], DENSE @ U)
    ct = rng.standard_normal((5, 3))
    _, pull = dr.vjp(lambda U: L @ U, U)
    np.testing.assert_allclose(pull(ct)[0], DENSE.T @ ct)
    W = rng.standard_normal((3, 5))
    _, pull = dr.vjp(lambda W: W @ L, W)
    np.testing.assert_allclose(pull(np.ones((3, 4)))[0], np.ones((3, 4)) @ DENSE.T)
    batch = rng.standard_normal((6, 4))
    np.testing.assert_allclose(dr.vmap(lambda u: L @ u)(batch), batch @ DENSE.T)
    np.testing.assert_allclose(dr.vmap(lambda U: L @ U)(np.stack([U, 2 * U])),
                               np.stack([DENSE @ U, 2 * DENSE @ U]))
    u = rng.standard_normal(4)
    f = lambda u: np.sum(np.sin(L @ u))  # noqa: E731
    g = lambda u: np.sum(np.sin(DENSE @ u))  # noqa: E731
    np.testing.assert_allclose(dr.hessian(f)(u), dr.hessian(g)(u), atol=1e-12)


def test_complex_follows_jax_convention():
    Lc = sps.csr_array(DENSE + 1j * DENSE[::-1])
    Dc = Lc.toarray()
    u = rng.standard_normal(4) + 1j * rng.standard_normal(4)
    ct = rng.standard_normal(5) + 1j * rng.standard_normal(5)
    np.testing.assert_allclose(dr.jvp(lambda u: Lc @ u, (u,), (u,))[1], Dc @ u)
    _, pull = dr.vjp(lambda u: Lc @ u, u)
    np.testing.assert_allclose(pull(ct)[0], Dc.T @ ct)  # the transpose, no conjugate


def test_spsolve():
    A = sps.csc_matrix(rng.standard_normal((4, 4)) * 0.3 + 2 * np.eye(4))
    inv = np.linalg.inv(A.toarray())
    b = rng.standard_normal(4)
    np.testing.assert_allclose(dr.jacfwd(lambda b: spla.spsolve(A, b))(b), inv)
    np.testing.assert_allclose(dr.jacrev(lambda b: spla.spsolve(A, b))(b), inv)
    B = rng.standard_normal((4, 2))
    np.testing.assert_allclose(dr.jvp(lambda B: spla.spsolve(A, B), (B,), (B,))[1], inv @ B)
    # one column: SciPy would return 1-D for a (4, 1) right-hand side; the batch keeps 2-D
    np.testing.assert_allclose(dr.vmap(lambda b: spla.spsolve(A, b))(b[None]), (inv @ b)[None])
    with pytest.raises(NoDerivativeRule, match="constant sparse matrix A"):
        dr.grad(lambda a: np.sum(spla.spsolve(a, b)))(A.toarray())


def test_refusals_and_plain_calls():
    L = sps.csr_array(DENSE)
    with pytest.raises(ValueError, match="dimension mismatch"):
        dr.grad(lambda u: np.sum(L @ u))(np.ones(3))
    with pytest.raises(NoDerivativeRule, match="1-D and 2-D"):
        dr.grad(lambda u: np.sum(L @ u))(np.ones((4, 2, 2)))
    # untraced products are SciPy's own (sparse results stay sparse)
    assert sps.issparse(L @ L.T)
    np.testing.assert_array_equal(L @ np.ones(4), DENSE @ np.ones(4))


# ------------------------------------------------ traced scalars, vectors and entries
def _dense(r):
    return r.toarray() if hasattr(r, "toarray") else r


def _both_modes(f, x, reference):
    """f's value and Jacobian (forward and reverse) against the dense reference's."""
    np.testing.assert_allclose(_dense(f(x)), reference(x), atol=1e-14)
    want = dr.jacfwd(reference)(x)
    for jac in (dr.jacfwd, dr.jacrev):
        np.testing.assert_allclose(jac(lambda x: _dense(f(x)))(x), want, atol=1e-14)


@pytest.mark.parametrize("fmt", FORMATS)
def test_star_and_multiply_have_scipys_meaning_for_each_kind(fmt):
    L = getattr(sps, fmt)(DENSE)
    u, w, a = rng.standard_normal(4), rng.standard_normal(5), np.float64(1.7)
    # plain SciPy first: * is the matrix product for spmatrix, elementwise for sparray
    matrix = isinstance(L, sps.spmatrix)
    np.testing.assert_allclose(_dense(L * u), DENSE @ u if matrix else DENSE * u)
    np.testing.assert_allclose(_dense(L.multiply(u)), DENSE * u)
    if matrix:
        _both_modes(lambda u: L * u, u, lambda u: DENSE @ u)
        _both_modes(lambda w: w * L, w, lambda w: w @ DENSE)
    else:
        _both_modes(lambda u: L * u, u, lambda u: DENSE * u)
        _both_modes(lambda u: u * L, u, lambda u: u * DENSE)
    _both_modes(lambda u: L.multiply(u), u, lambda u: DENSE * u)
    _both_modes(lambda w: L.multiply(w[:, None]), w, lambda w: DENSE * w[:, None])
    # a traced scalar scales the entries: a sparse result with traced entries
    _both_modes(lambda a: a * L, a, lambda a: a * DENSE)
    _both_modes(lambda a: L * a, a, lambda a: a * DENSE)
    _both_modes(lambda a: L / a, a, lambda a: DENSE / a)
    _both_modes(lambda a: (a * L) @ u, a, lambda a: a * DENSE @ u)
    _both_modes(lambda a: w @ (a * L), a, lambda a: w @ (a * DENSE))
    if matrix:  # SciPy gives a numpy.matrix, whose * is a product: refused by name
        for f in (lambda u: L + u, lambda u: u - L, lambda u: (u[0] * L) + DENSE):
            with pytest.raises(NoDerivativeRule, match=r"numpy\.matrix.*toarray\(\)"):
                dr.jacrev(f)(u)
    else:
        _both_modes(lambda u: L + u, u, lambda u: DENSE + u)
        _both_modes(lambda u: u - L, u, lambda u: u - DENSE)
        _both_modes(lambda a: (a * L) - DENSE, a, lambda a: a * DENSE - DENSE)
    # sparse plus sparse stays sparse (so an spmatrix's * stays SciPy's product)
    _both_modes(lambda a: (a * L + L) @ u, a, lambda a: (a * DENSE + DENSE) @ u)
    _both_modes(lambda a: (L - a * L) @ u, a, lambda a: (DENSE - a * DENSE) @ u)
    assert (1.7 * L).nnz == L.nnz  # the plain call is SciPy's own


def test_np_matrix_results_of_an_spmatrix_with_traced_entries_are_refused():
    # red-team probe: (a * M).sum(axis=1) gave a 1-D array where SciPy gives a (5, 1)
    # np.matrix, so `... * x` silently summed an elementwise product (0.735) where
    # SciPy's matrix product gives 3.798; todense() likewise
    M = sps.csr_matrix(DENSE)
    x, a = rng.standard_normal(5), 1.3
    for f in (lambda a: (a * M).sum(axis=1), lambda a: (a * M).sum(axis=0),
              lambda a: np.sum(a * M, axis=0), lambda a: (a * M).todense()):
        with pytest.raises(NoDerivativeRule, match=r"numpy\.matrix.*toarray\(\)"):
            dr.grad(lambda a, f=f: np.sum(f(a) * x[:, None]))(a)
    with pytest.raises(NoDerivativeRule, match=r"matrix power.*matrix_power"):
        dr.grad(lambda a: np.sum((a * M) ** 2))(a)
    # the rewrites, and a sparse array (SciPy gives ndarrays), keep working
    L = sps.csr_array(DENSE)
    _both_modes(lambda a: (a * M).toarray().sum(axis=1) * x, a,
                lambda a: (a * DENSE).sum(axis=1) * x)
    _both_modes(lambda a: (a * L).sum(axis=1) * x + (a * L).todense()[:, 0], a,
                lambda a: (a * DENSE).sum(axis=1) * x + (a * DENSE)[:, 0])
    # a sparse array's ** is the entries' power, as SciPy's
    np.testing.assert_allclose(_dense((1.3 * L) ** 3), (1.3 * DENSE) ** 3)
    _both_modes(lambda a: (a * L) ** 3, a, lambda a: (a * DENSE) ** 3)


@pytest.mark.parametrize("kind", ["diags", "diags_array"])
def test_a_scaled_laplacian_plus_the_identity_keeps_scipys_star(kind):
    # red-team probe: (k * lap + sps.eye(n)) * u with a dia_matrix lap gave a dense
    # ndarray, so * was elementwise: 3.225 where SciPy's product gives 2.297
    n = 5
    lap = getattr(sps, kind)([-np.ones(n - 1), 2.0 * np.ones(n), -np.ones(n - 1)],
                             offsets=[-1, 0, 1])
    eye = sps.eye(n) if kind == "diags" else sps.eye_array(n)
    u = np.linspace(0.0, 1.0, n) ** 2
    lapd = lap.toarray()
    for f, dense in [
            (lambda k: ((k * lap + eye) * u) ** 2,
             lambda k: ((k * lapd + np.eye(n)) @ u if kind == "diags"
                        else (k * lapd + np.eye(n)) * u) ** 2),
            (lambda k: (eye - k * lap - k ** 2 * lap.T) @ u,
             lambda k: (np.eye(n) - k * lapd - k ** 2 * lapd.T) @ u)]:
        np.testing.assert_allclose(_dense(f(0.3)), dense(0.3), rtol=1e-14)
        for jac in (dr.jacfwd, dr.jacrev):
            np.testing.assert_allclose(jac(lambda k, f=f: _dense(f(k)))(0.3),
                                       dr.jacfwd(dense)(0.3), rtol=1e-12, atol=1e-14)
    S = dr.jacfwd(lambda k: (k * lap + eye).tocsc().toarray())(0.3)
    np.testing.assert_allclose(S, lapd)  # a sparse result: tocsc() is there


def test_a_matrix_with_traced_entries_answers_like_scipys():
    # red-team probes: sps.issparse(a * L) was False (code branching on it took the dense
    # branch), bool() was always True (SciPy refuses), abs() and .dtype were missing
    L = sps.csr_array(DENSE)
    M = sps.csr_matrix(DENSE)
    seen = []

    def f(a):
        S = a * L
        seen.append((sps.issparse(S), sps.isspmatrix(S), sps.isspmatrix(a * M), S.dtype))
        with pytest.raises(ValueError, match="truth value"):
            bool(S)
        return abs(S) @ np.ones(4)

    _both_modes(f, np.float64(-1.3), lambda a: np.abs(a * DENSE) @ np.ones(4))
    # the plain run (SciPy's own answers) and the traced runs (jacfwd, jacrev) agree
    assert len(seen) >= 3 and set(seen) == {(True, False, True, np.dtype(np.float64))}
    assert sps.issparse(L) and not sps.issparse(DENSE) and not sps.isspmatrix(L)
    # spsolve's own check must not take it for a constant matrix now that issparse is True
    A = sps.csc_array(np.eye(4) * 3.0)
    with pytest.raises(NoDerivativeRule, match="Only a constant sparse matrix A"):
        dr.grad(lambda a: np.sum(spla.spsolve(a * A + A, a * np.ones(4))))(1.3)


@pytest.mark.parametrize("build", [lambda S: sps.kron(S, sps.eye(2)),
                                   lambda S: sps.hstack([S, S]),
                                   lambda S: np.kron(S, np.eye(2))])
def test_sparse_functions_of_traced_entries_are_refused_by_name(build):
    # red-team probe: sps.kron(a * L, I) crashed in SciPy ("does not support dtype
    # object"): it read the traced matrix as a 0-d object array
    L = sps.csr_array(DENSE)
    with pytest.raises(dr.TracerConversionError, match=r"toarray\(\)"):
        dr.grad(lambda a: np.sum(build(a * L) @ np.ones(8)))(1.0)


def test_sparse_matrices_with_traced_entries_compose():
    L = sps.csr_array(DENSE)
    M = sps.csr_matrix(DENSE)
    u, w = rng.standard_normal(4), rng.standard_normal(5)
    # entries traced by an elementwise product, then used as an operator, both modes
    _both_modes(lambda u: (L * u) @ u, u, lambda u: (DENSE * u) @ u)
    _both_modes(lambda w: (M.multiply(w[:, None])).T @ w, w,
                lambda w: (DENSE * w[:, None]).T @ w)
    _both_modes(lambda u: (u * L).sum(axis=0) + (u * L).sum(axis=1) @ w, u,
                lambda u: (u * DENSE).sum(axis=0) + (u * DENSE).sum(axis=1) @ w)
    _both_modes(lambda u: (u * L).dot(u) - (u * L).toarray() @ u, u, lambda u: 0.0 * w)
    _both_modes(lambda a: (a * M) * u, np.float64(2.0), lambda a: a * DENSE @ u)
    # a Laplacian scaled by a traced diffusivity, then solved: against finite differences
    n = 6
    lap = sps.diags([-np.ones(n - 1), 2.0 * np.ones(n), -np.ones(n - 1)], [-1, 0, 1])
    heat = lambda k: np.sum((k * lap + sps.eye(n)) @ np.linspace(0.0, 1.0, n) ** 2)
    h = 1e-6
    np.testing.assert_allclose(dr.grad(heat)(0.3), (heat(0.3 + h) - heat(0.3 - h)) / (2 * h),
                               rtol=1e-7)
    # NumPy's reductions call its sum (with dtype=, out=); copies keep the entries
    _both_modes(lambda a: np.sum(a * L) + np.sum(copy.copy(a * L), axis=0) @ np.ones(4),
                np.float64(1.5), lambda a: np.sum(a * DENSE) + np.sum(a * DENSE))
    # the methods against the dense matrix's: SciPy's meaning, differentiable
    _both_modes(lambda u: (L * u).power(2).tocsc().conj().copy().astype(np.float64)
                .diagonal(-1) + (L * u).trace(), u,
                lambda u: np.diagonal((DENSE * u) ** 2, -1) + np.trace(DENSE * u))
    with pytest.raises(NoDerivativeRule, match="toarray"):
        dr.grad(lambda a: (a * L).getnnz())(1.0)
    with pytest.raises(NoDerivativeRule, match=r"index x\.toarray\(\)"):
        dr.grad(lambda a: (a * L)[0, 1])(1.0)
    with pytest.raises(NoDerivativeRule, match="sparse operands"):
        dr.grad(lambda a: np.sum(_dense((a * L) @ L.T)))(1.0)
    with pytest.raises(NoDerivativeRule, match="scalar"):
        dr.grad(lambda u: np.sum(_dense(L / u)))(np.ones(4))
    with pytest.raises(NotImplementedError, match="nonzero scalar"):
        dr.grad(lambda a: np.sum(L + a))(1.0)


@pytest.mark.parametrize("build,kind", [(sps.diags, sps.spmatrix),
                                        (sps.diags_array, sps.sparray)])
def test_diags_of_traced_diagonals(build, kind):
    # every form SciPy takes (offsets, shape), SciPy's layout, under vmap too
    D = lambda d: build([d[:-1], 2.0 * d, d[1:]], offsets=[-1, 0, 1])
    ref = lambda d: np.diag(d[:-1], -1) + np.diag(2.0 * d) + np.diag(d[1:], 1)
    d = rng.standard_normal(5)
    _both_modes(D, d, ref)
    v = np.arange(5.0)
    _both_modes(lambda d: build(d, offsets=1, shape=(5, 5)) @ v, d[:4],
                lambda d: np.diag(d, 1) @ v)
    batch = rng.standard_normal((3, 5))
    np.testing.assert_allclose(dr.vmap(lambda d: D(d) @ d)(batch),
                               [ref(b) @ b for b in batch], atol=1e-14)
    assert isinstance(build(d, offsets=0), kind)  # (the plain call is SciPy's own)


def test_spdiags_scalar_diagonals_and_factorized():
    d = rng.standard_normal((2, 4))
    ref = lambda d: np.diag(d[0]) + np.diag(d[1, 1:], 1)  # spdiags: data[k, j] at column j
    _both_modes(lambda d: sps.spdiags(d, [0, 1], 4, 4), d, ref)
    # traced scalars broadcast along their diagonals, as SciPy's
    _both_modes(lambda a: sps.diags([a, 2.0 * a], [0, 1], shape=(3, 3)), np.float64(1.5),
                lambda a: a * np.eye(3) + 2.0 * a * np.eye(3, k=1))
    # factorized(A) solves a traced right-hand side (its inverse is the Jacobian)
    A = sps.csc_array(DENSE[:4] + 4.0 * np.eye(4))
    solve = sps.linalg.factorized(A)
    b = rng.standard_normal(4)
    np.testing.assert_allclose(solve(b), np.linalg.solve(A.toarray(), b))
    for jac in (dr.jacfwd, dr.jacrev):
        np.testing.assert_allclose(jac(solve)(b), np.linalg.inv(A.toarray()), atol=1e-13)
    with pytest.raises(NoDerivativeRule, match="factorized"):
        dr.grad(lambda a: np.sum(sps.linalg.factorized(a * np.eye(2))(np.ones(2))))(1.0)


def test_numpy_functions_of_a_sparse_operand_are_refused_by_name():
    # NumPy reads a sparse matrix as a 0-d object array (plain np.multiply(w, A) is an
    # object array of matrices): with a traced operand, a named refusal, not an error
    # from inside a rule
    L = sps.csr_array(DENSE)
    for f in (lambda u: np.multiply(u, L), lambda u: np.add(L, u),
              lambda u: np.dot(L, u)):
        with pytest.raises(dr.DualrevError, match=r"scipy\.sparse\.csr_array operand .* "
                           r"on line \d+ .*A\.multiply\(x\)"):
            dr.jacfwd(f)(np.ones(4))
