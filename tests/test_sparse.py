"""SparseJacobian (dualrev/sparse.py) against the dense Jacobian. The colourings it uses
are tested in tests/test_colouring.py."""

import numpy as np
import scipy.sparse as sp

from dualrev.sparse import SparseJacobian


def _random_pattern(m, n, per_row, seed):
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(m), per_row)
    cols = np.concatenate([rng.choice(n, per_row, replace=False) for _ in range(m)])
    return sp.csr_matrix((np.ones(rows.size, bool), (rows, cols)), shape=(m, n))


def test_sparse_jacobian_with_the_default_colouring_equals_the_dense_one():
    rng = np.random.default_rng(3)
    A = _random_pattern(40, 30, 3, seed=5).toarray() * rng.normal(size=(40, 30))

    def f(x):
        return np.tanh(A @ x) + 0.1 * x[np.arange(40) % 30] ** 2

    x = rng.normal(size=30)
    J = SparseJacobian(f)
    dense = np.diag(1 - np.tanh(A @ x) ** 2) @ A
    dense[np.arange(40), np.arange(40) % 30] += 0.2 * x[np.arange(40) % 30]
    np.testing.assert_allclose(J(x).toarray(), dense, rtol=1e-12, atol=1e-14)
    assert J.n_colours < 30
