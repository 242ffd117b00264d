"""Column colourings (dualrev/sparse.py): every ordering gives a valid distance-2
colouring, and the default smallest-last ordering needs no more colours than the column
order on the patterns the sparse-derivative literature measures."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

from dualrev.sparse import ORDERS, SparseJacobian, colour_columns


def _valid(P, colours) -> bool:
    """No two columns of one colour share a nonzero row."""
    P = sp.csr_matrix(P, dtype=bool)
    for i in range(P.shape[0]):
        cols = P.indices[P.indptr[i]:P.indptr[i + 1]]
        if len(set(colours[cols].tolist())) != len(cols):
            return False
    return True


def _random_pattern(m, n, per_row, seed):
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(m), per_row)
    cols = np.concatenate([rng.choice(n, per_row, replace=False) for _ in range(m)])
    return sp.csr_matrix((np.ones(rows.size, bool), (rows, cols)), shape=(m, n))


@given(m=st.integers(1, 30), n=st.integers(1, 30), density=st.floats(0.0, 0.6),
       seed=st.integers(0, 2**16))
def test_every_order_colours_validly(m, n, density, seed):
    P = np.random.default_rng(seed).random((m, n)) < density
    for order in ORDERS:
        c = colour_columns(P, order)
        assert c.shape == (n,) and c.dtype == np.int64 and (c >= 0).all()
        assert _valid(P, c), order
        # the colours are 0..k-1 with none skipped
        assert set(c.tolist()) == set(range(int(c.max()) + 1))


@pytest.mark.parametrize("order", ORDERS)
def test_banded_patterns_need_their_bandwidth(order):
    for w, n in ((1, 1000), (2, 500)):
        P = sp.diags([np.ones(n - abs(k)) for k in range(-w, w + 1)], list(range(-w, w + 1)),
                     shape=(n, n), dtype=bool)
        c = colour_columns(P, order)
        assert _valid(P, c) and c.max() + 1 == 2 * w + 1  # the lower bound: one row's nnz


def test_smallest_last_needs_fewer_colours_on_random_patterns():
    # 2000 x 2000, five nonzeros per row (the pattern the issue measured): the column
    # order needs 13 here, smallest-last 11 (networkx's best strategy: 10 on its own draw)
    P = _random_pattern(2000, 2000, 5, seed=0)
    natural = colour_columns(P, "natural").max() + 1
    smallest = colour_columns(P, "smallest_last").max() + 1
    assert _valid(P, colour_columns(P))
    assert smallest < natural
    for seed in range(1, 4):
        P = _random_pattern(300, 300, 4, seed)
        assert colour_columns(P).max() <= colour_columns(P, "natural").max()


def test_unknown_order_refused():
    with pytest.raises(ValueError, match="order must be one of"):
        colour_columns(np.eye(3), "dsatur")


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
