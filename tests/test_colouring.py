"""Colourings and recovery (dualrev/colouring.py, re-exported by dualrev.sparse): every
order's column, row and star colourings are valid on generated patterns (distance-2 by
rows; star by brute force over every path on four vertices), recovery gives back the
dense matrix from its compressed products, the counts on banded, block and arrow
patterns, and no more colours than networkx's best strategy (a recorded table, and live
where networkx imports)."""

import itertools
import json

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

import dualrev.sparse
from dualrev import DualrevError, colouring
from dualrev.colouring import (
    ORDERS,
    GraphTooLargeError,
    colour_columns,
    colour_rows,
    colour_symmetric,
    recover_columns,
    recover_rows,
    recover_symmetric,
)
from tests.colouring_networkx import (
    STRATEGIES,
    TABLE,
    arrow,
    banded,
    block,
    cases,
    networkx_counts,
    random_pattern,
    stencil,
    stencil3,
)


def _distance2(P, colours) -> bool:
    """No two columns of one colour share a nonzero row (a loop over the rows; by the
    colours' sort within each row where there are many)."""
    P = sp.csr_matrix(P, dtype=bool)
    P.sum_duplicates()
    if P.shape[0] > 5000:
        rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))
        keys = np.sort(rows * (int(colours.max()) + 1) + colours[P.indices])
        return bool((np.diff(keys) != 0).all())
    for i in range(P.shape[0]):
        cols = P.indices[P.indptr[i]:P.indptr[i + 1]]
        if len(set(colours[cols].tolist())) != len(cols):
            return False
    return True


def _is_star(P, colours) -> bool:
    """Brute force: proper, and every path a-b-c-d on four distinct vertices of the
    graph of P | P.T (no loops) has at least three colours."""
    A = np.asarray(sp.csr_matrix(P, dtype=bool).toarray())
    A = (A | A.T) & ~np.eye(A.shape[0], dtype=bool)
    nbrs = [np.flatnonzero(A[v]).tolist() for v in range(A.shape[0])]
    for a in range(A.shape[0]):
        for b in nbrs[a]:
            if colours[a] == colours[b]:
                return False
            for c in nbrs[b]:
                if c == a:
                    continue
                for d in nbrs[c]:
                    if d in (a, b):
                        continue
                    if len({colours[a], colours[b], colours[c], colours[d]}) < 3:
                        return False
    return True


def _contiguous(c) -> bool:
    return c.size == 0 or set(c.tolist()) == set(range(int(c.max()) + 1))


def _k(c) -> int:
    return int(c.max()) + 1 if c.size else 0


@given(m=st.integers(0, 25), n=st.integers(0, 25), density=st.floats(0.0, 0.7),
       seed=st.integers(0, 2**16), sparse=st.booleans())
def test_column_and_row_colourings_are_valid_and_recover_the_matrix(m, n, density, seed,
                                                                     sparse):
    rng = np.random.default_rng(seed)
    mask = rng.random((m, n)) < density
    J = np.where(mask, rng.normal(size=(m, n)), 0.0)
    P = sp.coo_matrix(mask) if sparse else mask
    for order in ORDERS:
        c = colour_columns(P, order)
        assert c.shape == (n,) and c.dtype == np.int64 and _contiguous(c), order
        assert _distance2(mask, c), order
        S = np.eye(_k(c))[c]
        got = recover_columns(P, c, J @ S)
        assert isinstance(got, sp.csr_matrix) and got.shape == (m, n)
        np.testing.assert_array_equal(got.toarray(), J)  # one term per entry: exact
        r = colour_rows(P, order)
        assert r.shape == (m,) and r.dtype == np.int64 and _contiguous(r), order
        assert _distance2(mask.T, r), order
        W = np.eye(_k(r))[r]
        np.testing.assert_array_equal(recover_rows(P, r, W.T @ J).toarray(), J)


@given(n=st.integers(0, 11), density=st.floats(0.0, 0.6), seed=st.integers(0, 2**16))
def test_star_colourings_are_star_and_recover_the_hessian(n, density, seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((n, n)) < density
    mask = mask | mask.T
    H = np.where(mask, rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n)), 0.0)
    H = H + H.T  # complex symmetric (not Hermitian): the Hessian of a holomorphic f
    # the pattern given as its upper triangle: read as pattern | pattern.T
    for order in ORDERS:
        c = colour_symmetric(np.triu(mask), order)
        assert c.shape == (n,) and c.dtype == np.int64 and _contiguous(c), order
        assert _is_star(mask, c), order
        S = np.eye(_k(c))[c]
        got = recover_symmetric(np.triu(mask), c, H @ S)
        assert got.dtype == np.complex128
        np.testing.assert_array_equal(got.toarray(), H)  # direct: no arithmetic


@st.composite
def structured(draw):
    """Banded, block, arrow and stencil patterns (where the lattice colourings of
    "best" apply), some with a few random entries added or rows and columns permuted."""
    kind = draw(st.sampled_from(["banded", "block", "arrow", "stencil", "stencil3"]))
    if kind == "banded":
        n = draw(st.integers(1, 40))
        P = banded(n, draw(st.integers(0, min(4, n - 1))))
    elif kind == "block":
        P = block(draw(st.integers(1, 40)), draw(st.integers(1, 6)))
    elif kind == "arrow":
        P = arrow(draw(st.integers(2, 30)), draw(st.integers(0, 2)))
    elif kind == "stencil":
        P = stencil(draw(st.integers(2, 7)))
    else:
        P = stencil3(draw(st.integers(2, 3)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    A = P.toarray()
    n = A.shape[0]
    for _ in range(draw(st.integers(0, 3))):
        A[rng.integers(n), rng.integers(n)] = True
    if draw(st.booleans()):
        A = A[rng.permutation(n)][:, rng.permutation(n)]
    return A


@given(A=structured())
def test_best_colourings_of_structured_patterns_are_valid(A):
    c = colour_columns(A)
    assert _contiguous(c) and _distance2(A, c)
    assert _k(c) >= A.sum(axis=1).max(initial=1)
    r = colour_rows(A)
    assert _contiguous(r) and _distance2(A.T, r)
    s = colour_symmetric(A)
    assert _contiguous(s) and _is_star(A, s)
    rng = np.random.default_rng(0)
    H = np.where(A | A.T, rng.normal(size=A.shape), 0.0)
    H = H + H.T
    got = recover_symmetric(A, s, H @ np.eye(_k(s))[s])
    np.testing.assert_array_equal(got.toarray(), H)


def test_star_colouring_is_checked_against_paths_the_greedy_could_miss():
    # the validity check colour_symmetric's "best" runs on cyclic candidates agrees
    # with the brute force on every colouring of small graphs
    rng = np.random.default_rng(11)
    for _ in range(60):
        n = int(rng.integers(2, 8))
        mask = rng.random((n, n)) < 0.45
        mask = mask | mask.T
        P = colouring._csr(mask | np.eye(n, dtype=bool), "t")
        rows, cols = colouring._entries(P)
        for c in itertools.islice(itertools.product(range(3), repeat=n), 0, None, 7):
            c = np.asarray(c)
            assert colouring._is_star(rows, cols, c, 3) == _is_star(mask, c)


@pytest.mark.parametrize("n", [4, 5, 1000, 100_000])
def test_tridiagonal_needs_three_colours_at_any_size(n):
    P = banded(n, 1)
    for f in (colour_columns, colour_rows, colour_symmetric):
        c = f(P)
        assert _k(c) == 3, f.__name__
    assert _distance2(P, colour_columns(P)) and _distance2(P, colour_rows(P))
    if n <= 5:
        assert _is_star(P, colour_symmetric(P))
    else:
        rows, cols = colouring._entries(P)
        assert colouring._is_star(rows, cols, colour_symmetric(P), 3)


def test_rosenbrock_hessian_from_three_products():
    # the Hessian of the chained Rosenbrock function is tridiagonal: 3 HVPs at any n
    def hessian(x):
        n = x.size
        d = np.zeros(n)
        d[:-1] += 2 - 400 * (x[1:] - x[:-1] ** 2) + 800 * x[:-1] ** 2
        d[1:] += 200
        off = -400 * x[:-1]
        return sp.diags([off, d, off], [-1, 0, 1], format="csr")

    x = np.random.default_rng(2).normal(size=5000)
    H = hessian(x)
    c = colour_symmetric(H != 0)
    assert _k(c) == 3
    S = np.eye(3)[c]
    got = recover_symmetric(H != 0, c, H @ S)
    assert abs(got - H).max() == 0


@pytest.mark.parametrize("order", ORDERS)
def test_banded_patterns_need_their_bandwidth(order):
    for w, n in ((1, 400), (2, 300), (3, 200)):
        P = banded(n, w)
        c = colour_columns(P, order)
        assert _distance2(P, c) and _k(c) == 2 * w + 1  # the lower bound: one row's nnz


def test_counts_on_block_and_arrow_patterns():
    # dense blocks of 7: 7 colours for columns, rows and the star colouring (a clique)
    P = block(700, 7)
    assert _k(colour_columns(P)) == _k(colour_rows(P)) == _k(colour_symmetric(P)) == 7
    # an arrow: a full row makes every column conflict (n colours forward, and a full
    # column n colours in reverse), but the symmetric arrow is a star: 2 colours
    A = arrow(200)
    assert _k(colour_columns(A)) == _k(colour_rows(A)) == 200
    for order in ORDERS:
        c = colour_symmetric(A, order)
        assert _k(c) == 2, order
    assert _is_star(arrow(12), colour_symmetric(arrow(12)))
    # an arrow around a tridiagonal band: 4 (the band's 3 and the hub's own)
    c = colour_symmetric(arrow(300, 1))
    assert _k(c) == 4
    rows, cols = colouring._entries(colouring._csr(arrow(300, 1), "t"))
    assert colouring._is_star(rows, cols, c, 4)
    assert _is_star(arrow(11, 1), colour_symmetric(arrow(11, 1)))
    # at 10^5 and with several hubs (global parameters): each hub its own colour
    for w, k in ((0, 2), (1, 4)):
        A = arrow(100_000, w)
        c = colour_symmetric(A)
        rows, cols = colouring._entries(A)
        assert _k(c) == k and colouring._is_star(rows, cols, c, k)
    A = arrow(600, 1).tolil()
    A[:3, :] = True
    A[:, :3] = True
    A = sp.csr_matrix(A)
    c = colour_symmetric(A)
    rows, cols = colouring._entries(A)
    # 4 hubs (the arrow's and 3 more), the band's 3
    assert _k(c) == 7 and colouring._is_star(rows, cols, c, 7)
    # a diagonal: 1; no entries at all: 1 colour per column (nothing to share)
    assert _k(colour_symmetric(sp.eye(50))) == 1
    assert _k(colour_columns(np.zeros((3, 4), bool))) == 1


def test_best_needs_no_more_colours_than_any_order():
    for seed in range(4):
        P = random_pattern(300, 300, 4, seed)
        best = _k(colour_columns(P))
        assert best <= min(_k(colour_columns(P, o)) for o in ORDERS[1:])
        S = (P + P.T).tocsr()
        best = _k(colour_symmetric(S))
        assert best <= min(_k(colour_symmetric(S, o)) for o in ORDERS[1:])


def test_no_more_colours_than_networkx_on_the_recorded_patterns():
    # tests/data/colouring_networkx.json: networkx's greedy_color, every strategy, on the
    # column intersection graphs of seeded patterns (python -m tests.colouring_networkx)
    table = json.loads(TABLE.read_text())["cases"]
    patterns = cases()
    assert set(table) == set(patterns)
    for name, P in patterns.items():
        ours = _k(colour_columns(P))
        assert _distance2(P, colour_columns(P)), name
        assert ours <= table[name]["best"], (name, ours, table[name])


def test_networkx_live_comparison():
    nx = pytest.importorskip("networkx")  # pinned above by the recorded table
    assert nx is not None
    table = json.loads(TABLE.read_text())["cases"]
    deterministic = [s for s in STRATEGIES
                     if s not in ("random_sequential", "independent_set",
                                  "saturation_largest_first")]
    for name in ("random-300x300x4-seed0", "random-400x250x3-seed7", "stencil-33"):
        P = cases()[name]
        counts = networkx_counts(P, deterministic)
        for s in deterministic:  # the recorded table is what networkx computes
            assert counts[s] == table[name]["counts"][s], (name, s)
        assert _k(colour_columns(P)) <= min(counts.values())
    for seed in (21, 22):  # patterns outside the table
        P = random_pattern(150, 120, 4, seed)
        counts = networkx_counts(P, [s for s in STRATEGIES if s != "independent_set"])
        assert _k(colour_columns(P)) <= min(counts.values()), counts


def test_unknown_order_and_bad_arguments_are_refused():
    for f in (colour_columns, colour_rows, colour_symmetric):
        with pytest.raises(ValueError, match="order must be one of"):
            f(np.eye(3), "random")
    with pytest.raises(ValueError, match="must be square"):
        colour_symmetric(np.ones((2, 3)))
    with pytest.raises(ValueError, match="must be 2-D"):
        colour_columns(np.ones(3))
    P = banded(6, 1)
    with pytest.raises(ValueError, match="compressed matrix must have shape"):
        recover_columns(P, colour_columns(P), np.ones((6, 2)))
    with pytest.raises(ValueError, match="compressed matrix must have shape"):
        recover_rows(P, colour_rows(P), np.ones((6, 3)))
    with pytest.raises(ValueError, match="colours must be 6"):
        recover_columns(P, np.zeros(5, int), np.ones((6, 3)))


def test_a_colouring_that_does_not_fit_the_pattern_is_refused():
    # a wrong colouring would give plausible wrong entries: every recovery checks
    P = banded(8, 1)
    two = np.arange(8) % 2
    with pytest.raises(ValueError, match="share a row"):
        recover_columns(P, two, np.ones((8, 2)))
    with pytest.raises(ValueError, match="share a column"):
        recover_rows(P, two, np.ones((2, 8)))
    with pytest.raises(ValueError, match="not a star colouring"):
        recover_symmetric(P, two, np.ones((8, 2)))
    # proper but not star: the path 0-1-2-3 in two colours
    with pytest.raises(ValueError, match="not a star colouring"):
        recover_symmetric(banded(4, 1), np.array([0, 1, 0, 1]), np.ones((4, 2)))
    # a distance-2 colouring of the Hessian's pattern is a star colouring too
    c = colour_columns(P)
    H = P.toarray() * 2.5
    np.testing.assert_array_equal(
        recover_symmetric(P, c, H @ np.eye(3)[c]).toarray(), H)


def test_a_sparse_patterns_stored_zeros_are_entries():
    # a Jacobian evaluated at one point, given as the pattern: its entry that is zero
    # there is still structural (SciPy reads jac_sparsity so too); dropping it would
    # colour columns 0 and 2 alike and return a wrong J elsewhere
    J0 = sp.csr_matrix((np.array([1.0, 0.0, 2.0]), (np.array([0, 0, 1]),
                                                    np.array([0, 2, 1]))), shape=(2, 3))
    assert J0.nnz == 3
    assert _k(colour_rows(J0)) == 1  # the rows share no column
    c = colour_columns(J0)
    assert _k(c) == 2
    assert c[0] != c[2]
    J = np.array([[1.0, 0.0, 5.0], [0.0, 2.0, 0.0]])
    got = recover_columns(J0, c, J @ np.eye(_k(c))[c])
    np.testing.assert_array_equal(got.toarray(), J)
    assert got.nnz == 3
    # a dense pattern's zeros are not entries
    assert _k(colour_columns(J0.toarray())) == 1


def test_a_graph_too_large_to_build_is_refused_with_the_way_out():
    # a tridiagonal pattern and a row with half the columns at random: 10^8 graph entries
    n = 20_000
    P = banded(n, 1).tolil()
    P[7, np.random.default_rng(0).choice(n, n // 2, replace=False)] = True
    P = sp.csr_matrix(P)
    with pytest.raises(GraphTooLargeError, match=r"row 7 of the pattern has 10\d\d\d of "
                       r"the 20000 columns.*colour_rows"):
        colour_columns(P)
    c = colour_rows(P)  # reverse mode: the dense row its own colour, the band's 3
    assert _k(c) == 4 and _distance2(P.T, c)
    with pytest.raises(GraphTooLargeError, match="column 7 of the pattern.*colour_columns"):
        colour_rows(P.T)
    assert issubclass(GraphTooLargeError, DualrevError)


def test_sparse_reexports_the_colourings():
    for name in ("ORDERS", "GraphTooLargeError", "colour_columns", "colour_rows",
                 "colour_symmetric", "recover_columns", "recover_rows",
                 "recover_symmetric"):
        assert getattr(dualrev.sparse, name) is getattr(colouring, name)


def test_stencil_and_band_patterns():
    # the 5-point Laplacian: 5 colours for the Jacobian (the lower bound) and 5 for the
    # Hessian's star colouring, on grids where j mod 5 fails (N = 40) and works (N = 33)
    for N in (40, 33):
        P = stencil(N)
        c = colour_columns(P)
        assert _distance2(P, c) and _k(c) == 5
        c = colour_symmetric(P)
        rows, cols = colouring._entries(colouring._csr(P, "t"))
        assert colouring._is_star(rows, cols, c, _k(c)) and _k(c) == 5
        # greedy alone needs more here
        assert _k(colour_symmetric(P, "smallest_last")) == 7
    # 13 points (the Hessian of a sum of squares of 5-point residuals): 13 (greedy 16-17)
    P = stencil(40).astype(float)
    P = sp.csr_matrix(P @ P, dtype=bool)
    c = colour_symmetric(P)
    rows, cols = colouring._entries(colouring._csr(P, "t"))
    assert colouring._is_star(rows, cols, c, _k(c)) and _k(c) == 13
    assert _k(colour_columns(P)) == 13
    # the 7-point stencil on a 3-D grid: 7, (x + s*y + t*z) mod 7 (greedy orders: 11-12)
    P = stencil3(12)
    c = colour_columns(P)
    assert _distance2(P, c) and _k(c) == 7 == _k(colour_rows(P))
    assert _k(colour_columns(P, "smallest_last")) > 7
    c = colour_symmetric(P)
    rows, cols = colouring._entries(colouring._csr(P, "t"))
    assert colouring._is_star(rows, cols, c, _k(c)) and _k(c) == 7
    # bands of half-width w: 2w + 1; an arrow around a pentadiagonal band: 6
    for w in (2, 3):
        assert _k(colour_symmetric(banded(300, w))) == 2 * w + 1
    assert _k(colour_symmetric(arrow(300, 2))) == 6
    # at 10^5 (above BEST_LIMIT: the lattice colouring kept without greedy runs)
    P = banded(100_000, 2)
    c = colour_symmetric(P)
    rows, cols = colouring._entries(P)
    assert _k(c) == 5 and colouring._is_star(rows, cols, c, 5)
