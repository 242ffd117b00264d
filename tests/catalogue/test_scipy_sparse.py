"""scipy.sparse matrices and arrays as constant operators on traced values: Jacobians
against ``L.toarray()``, every format, both operand orders, vmap, spsolve."""

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
