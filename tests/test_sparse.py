"""dr.sparse.jacobian / dr.sparse.hessian and SparseJacobian (dualrev/sparse.py) against
the dense transforms, on generated programs with banded, block-diagonal, arrow and random
sparsity; the objects' protocol and refusals. The colourings they use are tested in
tests/test_colouring.py."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st

import dualrev as dr
from dualrev.errors import (
    DualrevError,
    NonFiniteDerivativeWarning,
    NonStructuralSparsityWarning,
    SparsityError,
)
from dualrev.sparse import FORMATS, MODES, SparseJacobian, SparseJacobianFunction, colour_columns


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


# ---------------------------------------------------------------- dr.sparse.jacobian / hessian
# Generated NumPy programs with banded, block-diagonal, arrow and random sparsity: the
# sparse Jacobian (every mode, every format) equals dr.jacobian's, the sparse Hessian
# dr.hessian's, and the colourings need what the pattern's structure allows.


def _shift(v, k):
    """``v`` moved by ``k`` places (zeros enter): element i reads v[i - k]."""
    if k == 0:
        return v
    if abs(k) >= v.size:
        return np.zeros(v.size) * v  # (keeps the value's dependence: none)
    z = np.zeros(abs(k))
    return np.concatenate([z, v[:-k]]) if k > 0 else np.concatenate([v[-k:], z])


def banded_program(n, w, seed):
    """Row i depends on x[i-w .. i+w] (a full band): a stencil of shifted products."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=w + 1), rng.normal(size=w + 1)

    def f(x):
        y = a[0] * np.sin(x) + b[0] * x ** 3
        for k in range(1, w + 1):
            y = y + a[k] * _shift(x, k) * x + b[k] * np.tanh(_shift(x, -k))
        return y

    return f


def block_program(nb, bs, seed):
    """``nb`` diagonal blocks of size ``bs`` (a reshape, a constant matrix per block
    row, elementwise terms); the input is 2-d, flattened in C order."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(bs, bs))

    def f(X):
        return (np.tanh(X) @ W + X ** 2 * np.cos(X)).reshape(-1)

    return f, (nb, bs)


def arrow_program(n, kind, seed):
    """A diagonal plus one dense row (``kind == "row"``: a global reduction appended to
    the outputs) or one dense column (``"column"``: every output coupled to x[0])."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=n)

    def f(x):
        y = c * np.sin(x) + x ** 2
        if kind == "row":
            return np.concatenate([y, np.sum(np.exp(x) * c)[None]])
        return y + c * x[0] ** 2

    return f


def random_program(m, n, per_row, seed):
    """A random sparse constant times nonlinear terms, plus a gather of random indices."""
    rng = np.random.default_rng(seed)
    A = _random_pattern(m, n, min(per_row, n), seed).toarray() * rng.normal(size=(m, n))
    idx = rng.integers(0, n, size=m)

    def f(x):
        return A @ np.exp(0.3 * x) + np.sin(x[idx]) * x[idx]

    return f


def _check_jacobian(f, x, *, rtol=1e-12):
    dense = np.asarray(dr.jacobian(f)(x)).reshape(-1, x.size)
    pattern = dr.sparse.jacobian_sparsity(f, x).pattern.toarray()
    assert not (dense != 0)[~pattern].any(), "the pattern misses a non-zero"
    scale = max(np.abs(dense).max(), 1.0)
    for mode in ("forward", "reverse"):
        for fmt in FORMATS:
            J = dr.sparse.jacobian(f, mode=mode, format=fmt)(x)
            assert J.format == fmt and J.shape == dense.shape and J.dtype == dense.dtype
            np.testing.assert_allclose(J.toarray(), dense, rtol=rtol, atol=rtol * scale)
    return dense


@given(n=st.integers(1, 25), w=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_banded_jacobians_equal_the_dense_ones(n, w, seed):
    f = banded_program(n, w, seed)
    x = np.random.default_rng(seed).normal(size=n)
    _check_jacobian(f, x)
    J = dr.sparse.jacobian(f)
    J(x)
    assert J.n_colours <= 2 * w + 1
    if n >= 2 * w + 1:  # a full band: one row holds 2w+1 columns, the lower bound
        assert J.n_colours == 2 * w + 1


@given(nb=st.integers(1, 6), bs=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_block_diagonal_jacobians_equal_the_dense_ones(nb, bs, seed):
    f, shape = block_program(nb, bs, seed)
    X = np.random.default_rng(seed).normal(size=shape)
    _check_jacobian(f, X)
    for mode in ("forward", "reverse"):
        J = dr.sparse.jacobian(f, mode=mode)
        J(X)
        assert J.n_colours == bs  # blocks share no row and no column


@given(n=st.integers(2, 25), kind=st.sampled_from(["row", "column"]),
       seed=st.integers(0, 2**16))
def test_arrow_jacobians_equal_the_dense_ones_and_auto_takes_the_cheap_side(n, kind, seed):
    f = arrow_program(n, kind, seed)
    x = np.random.default_rng(seed).normal(size=n)
    _check_jacobian(f, x)
    J = dr.sparse.jacobian(f)
    J(x)
    # a dense row costs forward mode n colours, a dense column costs reverse mode n
    if n > 2:  # (two colours either way at n = 2: a tie goes forward)
        assert J.mode == ("reverse" if kind == "row" else "forward")
    assert J.n_colours == 2


@given(m=st.integers(1, 20), n=st.integers(1, 20), per_row=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_random_pattern_jacobians_equal_the_dense_ones(m, n, per_row, seed):
    f = random_program(m, n, per_row, seed)
    x = np.random.default_rng(seed + 1).normal(size=n)
    _check_jacobian(f, x)
    J = dr.sparse.jacobian(f)
    J(x)
    fwd, rev = colour_columns(J.sparsity.pattern), colour_columns(J.sparsity.pattern.T)
    assert J.n_colours == min(fwd.max() + 1, rev.max() + 1)


def _hessian_programs(n, seed):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=n)
    W = rng.normal(size=(2, 2))
    A = _random_pattern(n, n, min(2, n), seed).toarray() * rng.normal(size=(n, n))
    yield "banded", (lambda x: np.sum(c[1:] * x[1:] * x[:-1] ** 2) + np.sum(np.cos(x))
                     + np.sum(x[2:] * x[:-2]))
    yield "arrow", lambda x: x[0] * np.sum(np.sin(x[1:]) * c[1:]) + np.sum(x ** 3)
    yield "random", lambda x: np.sum(np.tanh(A @ x)) + np.sum(x ** 4)
    if n % 2 == 0:
        yield "block", lambda x: np.sum(np.tanh(x.reshape(-1, 2) @ W) ** 2)


@given(n=st.integers(1, 16), seed=st.integers(0, 2**16))
def test_sparse_hessians_equal_the_dense_ones(n, seed):
    x = np.random.default_rng(seed).normal(size=n)
    for name, f in _hessian_programs(n, seed):
        dense = dr.hessian(f)(x)
        for fmt in FORMATS:
            H = dr.sparse.hessian(f, format=fmt)
            got = H(x)
            assert got.format == fmt and got.shape == (n, n)
            np.testing.assert_allclose(got.toarray(), dense, rtol=1e-12,
                                       atol=1e-12 * max(np.abs(dense).max(), 1.0),
                                       err_msg=name)
        if name == "block":
            assert H.n_colours <= 2
        elif name == "arrow":  # a star colouring: the hub, then all the rest
            assert H.n_colours == min(n, 2)
        elif name == "banded":  # pentadiagonal
            assert H.n_colours <= 5


def rosenbrock(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


@pytest.mark.parametrize("n", [10, 1000, 100_000])
def test_rosenbrock_needs_three_hessian_vector_products_at_any_size(n):
    x = np.random.default_rng(n).normal(size=n)
    H = dr.sparse.hessian(rosenbrock)
    got = H(x)
    assert H.n_colours == 3 and H.passes == 1
    # the chained Rosenbrock Hessian in closed form (tridiagonal)
    d = np.zeros(n)
    d[:-1] += 1200 * x[:-1] ** 2 - 400 * x[1:] + 2
    d[1:] += 200
    off = -400 * x[:-1]
    expected = sp.diags([off, d, off], [-1, 0, 1], format="csr")
    assert abs(got - expected).max() <= 1e-12 * abs(expected).max()
    if n <= 1000:
        np.testing.assert_allclose(got.toarray(), dr.hessian(rosenbrock)(x), rtol=1e-12)


def test_n_d_inputs_and_outputs_are_flattened_in_c_order():
    def f(X):
        return np.sin(X.T) * X[0][:, None]  # (3, 2) out of (2, 3)

    X = np.random.default_rng(0).normal(size=(2, 3))
    dense = np.asarray(dr.jacobian(f)(X))  # (3, 2, 2, 3)
    for mode in ("forward", "reverse"):
        J = dr.sparse.jacobian(f, mode=mode)(X)
        assert J.shape == (6, 6)
        np.testing.assert_allclose(J.toarray(), dense.reshape(6, 6), rtol=1e-13)
    # a scalar output is one row; a scalar input one column
    g = dr.sparse.jacobian(lambda x: np.sum(x ** 2))(np.arange(3.0))
    np.testing.assert_allclose(g.toarray(), [[0.0, 2.0, 4.0]])
    h = dr.sparse.jacobian(lambda t: np.array([1.0, 2.0]) * t ** 2)(3.0)
    np.testing.assert_allclose(h.toarray(), [[6.0], [12.0]])
    H = dr.sparse.hessian(lambda X: np.sum(X ** 3))(np.ones((2, 2)))
    np.testing.assert_allclose(H.toarray(), 6 * np.eye(4))


# ---------------------------------------------------------------- the object's protocol
def test_prepare_detects_and_colours_once_per_key_without_evaluating():
    f = banded_program(12, 1, seed=3)
    x = np.random.default_rng(3).normal(size=12)
    J = dr.sparse.jacobian(f)
    assert J.sparsity is None and J.n_colours == 0 and J.mode == "auto"
    assert J.prepare(x) is J
    assert J.passes == 0 and J.n_colours == 3 and J.mode == "forward"
    first = J.sparsity
    np.testing.assert_array_equal(J.colours, colour_columns(first.pattern))
    J(x)
    J(x + 1.0)
    assert J.passes == 2 and J.sparsity is first  # same key: reused
    J(np.zeros(12, dtype=np.float32))  # another dtype: prepared again
    assert J.sparsity is not first
    y = np.random.default_rng(4).normal(size=20)  # another shape: prepared again
    np.testing.assert_allclose(J(y).toarray(), dr.jacobian(banded_program(20, 1, 3))(y),
                               rtol=1e-13)
    assert J.sparsity.shape == (20, 20)


def test_constant_arguments_are_part_of_the_key():
    # the pattern of x[idx] depends on idx's values: another idx, another pattern
    def f(x, idx, scale=1.0):
        return scale * np.sin(x[idx])

    x = np.arange(1.0, 5.0)
    J = dr.sparse.jacobian(f)
    for idx in (np.array([0, 1]), np.array([3, 2]), np.array([0, 1])):
        for scale in (1.0, 2.0):
            expected = dr.jacobian(f)(x, idx, scale=scale)
            np.testing.assert_allclose(J(x, idx, scale=scale).toarray(), expected)
    assert len(J._cache) == 4
    # a given pattern does not depend on the arguments: one preparation
    Jg = dr.sparse.jacobian(f, sparsity=np.ones((2, 4)))
    np.testing.assert_allclose(Jg(x, np.array([3, 2])).toarray(),
                               dr.jacobian(f)(x, np.array([3, 2])))
    Jg(x, np.array([0, 1]))
    assert len(Jg._cache) == 1


def test_a_pattern_taken_at_a_point_warns_once_and_is_detected_again_per_call():
    def f(x):
        if x[0] > 0:
            return x[1:] * x[:-1]
        return np.sin(x[::-1][1:])

    J = dr.sparse.jacobian(f)
    a, b = np.array([1.0, 2.0, 3.0]), np.array([-1.0, 2.0, 3.0])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        got_a = J(a)
        got_b = J(b)  # the other branch: a pattern of its own, no second warning
        got_a2 = J(a)
    ours = [w for w in seen if w.category is NonStructuralSparsityWarning]
    assert len(ours) == 1 and "a branch" in str(ours[0].message)
    assert ours[0].message.notes == J.sparsity.notes and not J.sparsity.structural
    for x, got in ((a, got_a), (b, got_b), (a, got_a2)):
        np.testing.assert_allclose(got.toarray(), dr.jacobian(f)(x))
    H = dr.sparse.hessian(lambda x: np.sum(f(x) ** 2))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for x in (a, b):
            np.testing.assert_allclose(H(x).toarray(),
                                       dr.hessian(lambda x: np.sum(f(x) ** 2))(x), rtol=1e-13)
    assert [w.category for w in seen].count(NonStructuralSparsityWarning) == 1


def test_given_sparsity_in_every_form():
    f = banded_program(8, 1, seed=1)
    x = np.random.default_rng(1).normal(size=8)
    dense = dr.jacobian(f)(x)
    band = sp.diags([np.ones(7), np.ones(8), np.ones(7)], [-1, 0, 1])
    found = dr.sparse.jacobian_sparsity(f, x)
    for pattern in (band.toarray(), band, band.tocsc(), band.toarray().astype(int), found):
        for mode in MODES:
            J = dr.sparse.jacobian(f, sparsity=pattern, mode=mode)
            np.testing.assert_allclose(J(x).toarray(), dense, rtol=1e-13)
            assert J.n_colours == 3 and J.sparsity.nnz == 22
    # a Hessian pattern is symmetrised: its lower half alone still recovers H
    g = lambda x: np.sum(x[1:] * x[:-1] ** 2)  # noqa: E731
    H = dr.sparse.hessian(g, sparsity=sp.tril(band))(x)
    np.testing.assert_allclose(H.toarray(), dr.hessian(g)(x), rtol=1e-13)


def test_dtypes_follow_the_dense_jacobian():
    f = lambda x: np.sin(x[1:]) * x[:-1]  # noqa: E731
    for x in (np.arange(1.0, 5.0, dtype=np.float32), np.arange(1, 5), np.arange(1.0, 5.0)):
        dense = dr.jacobian(f)(x)
        for mode in ("forward", "reverse"):
            J = dr.sparse.jacobian(f, mode=mode)(x)
            assert J.dtype == dense.dtype, (x.dtype, mode)
            np.testing.assert_allclose(J.toarray(), dense, rtol=1e-6)
    x32 = np.arange(1.0, 4.0, dtype=np.float32)
    g = lambda x: np.sum(x ** 3)  # noqa: E731
    assert dr.sparse.hessian(g)(x32).dtype == dr.hessian(g)(x32).dtype == np.float32
    # a complex output of a real input: forward mode, as dr.jacobian (JAX's jacfwd)
    h = lambda x: np.exp(1j * x[1:]) * x[:-1]  # noqa: E731
    x = np.arange(1.0, 5.0)
    J = dr.sparse.jacobian(h)
    np.testing.assert_allclose(J(x).toarray(), dr.jacobian(h)(x), rtol=1e-14)
    assert J.mode == "forward" and J(x).dtype == np.complex128
    with pytest.raises(SparsityError, match="mode='reverse' needs a real-valued output"):
        dr.sparse.jacobian(h, mode="reverse")(x)


def test_has_aux_and_keywords():
    def f(x, *, p):
        return x[1:] * x[:-1] * p, {"norm": np.sum(x ** 2)}

    x = np.arange(1.0, 5.0)
    for mode in ("forward", "reverse"):
        J, aux = dr.sparse.jacobian(f, mode=mode, has_aux=True)(x, p=2.0)
        dense, daux = dr.jacobian(f, has_aux=True)(x, p=2.0)
        np.testing.assert_allclose(J.toarray(), dense)
        assert float(aux["norm"]) == float(daux["norm"]) == 30.0
    with pytest.raises(DualrevError, match="has_aux=True the function must return a pair"):
        dr.sparse.jacobian(lambda x: x, has_aux=True)(x)
    H = dr.sparse.hessian(lambda x, *, p: np.sum(x ** 3) * p)
    np.testing.assert_allclose(H(x, p=2.0).toarray(), np.diag(12.0 * x))
    # argnums picks another argument (negative: from the end, as in dr.jacobian)
    for i in (1, -1):
        Jy = dr.sparse.jacobian(lambda a, y: a * np.sin(y), argnums=i)
        np.testing.assert_allclose(Jy(2.0, x).toarray(), np.diag(2.0 * np.cos(x)))
        np.testing.assert_allclose(Jy(3.0, x + 1).toarray(), np.diag(3.0 * np.cos(x + 1)))
        Jy(3.0, x + 2)
        assert len(Jy._cache) == 2  # a new a is a new key; a new y is not


def test_refusals_name_the_rewrite():
    x = np.ones(3)
    with pytest.raises(SparsityError, match="format must be one of"):
        dr.sparse.jacobian(np.sin, format="dense")
    with pytest.raises(SparsityError, match="mode must be one of"):
        dr.sparse.jacobian(np.sin, mode="both")
    with pytest.raises(SparsityError, match="order must be one of"):
        dr.sparse.hessian(np.sum, order="random")
    with pytest.raises(SparsityError, match="concatenate them"):
        dr.sparse.jacobian(lambda a, b: a * b, argnums=(0, 1))
    with pytest.raises(SparsityError, match="sparsity must be None"):
        dr.sparse.jacobian(np.sin, sparsity="auto")
    with pytest.raises(SparsityError, match=r"has shape \(3, 4\).*shape \(3, 3\)"):
        dr.sparse.jacobian(np.sin, sparsity=np.ones((3, 4)))(x)
    with pytest.raises(SparsityError, match=r"has shape \(2, 2\).*Hessian"):
        dr.sparse.hessian(np.sum, sparsity=np.eye(2))(x)
    with pytest.raises(SparsityError, match="2-d array"):
        dr.sparse.jacobian(np.sin, sparsity=np.ones(3))(x)
    with pytest.raises(SparsityError, match="must be an array, got a dict"):
        dr.sparse.jacobian(lambda p: p["a"])({"a": x})
    with pytest.raises(SparsityError, match="differentiates real arguments"):
        dr.sparse.jacobian(np.sin)(x + 1j)
    with pytest.raises(SparsityError, match="must return one array"):
        dr.sparse.jacobian(lambda x: (x, x))(x)
    with pytest.raises(SparsityError, match="argnums=2"):
        dr.sparse.jacobian(np.sin, argnums=2)(x)
    with pytest.raises(SparsityError, match="traced value"):
        dr.grad(lambda x: dr.sparse.jacobian(np.sin)(x).sum())(x)
    with pytest.raises(DualrevError, match="scalar output"):
        dr.sparse.hessian(np.sin)(x)
    # every refusal is a DualrevError and a ValueError (what SciPy raises for bad values)
    assert issubclass(SparsityError, DualrevError) and issubclass(SparsityError, ValueError)


def test_a_nonfinite_derivative_is_looked_at_again_and_never_silent():
    # x[i] * sqrt(x[i+1]) at x[i+1] = 0: the column of x[i] shares its colour's pass with
    # an infinite partial (0 * inf = nan), which the careful look removes; what stays
    # infinite is the true derivative, with a warning naming sqrt
    g = lambda x: x[:-1] * np.sqrt(x[1:])  # noqa: E731
    x = np.array([1.0, 0.0, 2.0, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dense = dr.jacobian(g)(x)
    for mode in ("forward", "reverse"):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            J = dr.sparse.jacobian(g, mode=mode)(x).toarray()
        np.testing.assert_array_equal(J, dense)
        ours = [w.message for w in seen if w.category is NonFiniteDerivativeWarning]
        assert ours and ours[0].prim == "sqrt" and "sparse.jacobian" in str(ours[0])


def test_empty_patterns_and_empty_inputs():
    for mode in MODES:
        J = dr.sparse.jacobian(lambda x: np.ones(2) * np.sum(x > 0), mode=mode)
        got = J(np.ones(3))
        assert got.nnz == 0 and got.shape == (2, 3) and J.passes == 0
    J0 = dr.sparse.jacobian(lambda x: 2 * x)(np.zeros(0))
    assert J0.shape == (0, 0)
    H = dr.sparse.hessian(lambda x: np.sum(2 * x))(np.ones(3))
    assert H.shape == (3, 3) and H.nnz == 0


def test_the_function_object_reads_like_f():
    def residuals(x):
        """Docs of residuals."""
        return x ** 2

    J = dr.sparse.jacobian(residuals)
    assert isinstance(J, SparseJacobianFunction)
    assert J.__name__ == "residuals" and J.__doc__ == "Docs of residuals."
    J(np.ones(2))
    assert "n_colours=1" in repr(J) and "mode='forward'" in repr(J)


def test_new_constants_with_the_same_pattern_reuse_the_colouring_and_the_cache_is_bounded():
    # f(x, t) in a time loop: each t is a new key (its value could shape the pattern), so
    # the pattern is detected again, but the colouring of an equal pattern is shared
    def f(x, t):
        return np.sin(t * x[1:]) * x[:-1]

    x = np.linspace(0.1, 1.0, 30)
    for mode in ("forward", "reverse"):
        J = dr.sparse.jacobian(f, mode=mode)
        J(x, 0.0 + 1.0)
        colours = J.colours
        for k in range(20):
            t = 1.0 + 0.1 * k
            np.testing.assert_allclose(J(x, t).toarray(), dr.jacobian(f)(x, t), rtol=1e-13)
            assert J.colours is colours
        assert len(J._cache) == dr.sparse.CACHE_SIZE and J.passes == 21
    # another pattern for another constant: coloured afresh
    J = dr.sparse.jacobian(lambda x, k: x[k:] * 2.0)
    J(x, 1)
    first = J.colours
    np.testing.assert_allclose(J(x, 3).toarray(), dr.jacobian(lambda x: x[3:] * 2.0)(x))
    assert J.colours is not first and J.sparsity.shape == (27, 30)


def test_a_given_sparse_pattern_counts_its_stored_entries_explicit_zeros_too():
    # as SciPy's jac_sparsity (and dualrev.colouring): a stored 0 is an entry that may be
    # non-zero (a Jacobian's structure kept from a point where an entry was 0)
    f = lambda x: np.stack([x[0] * x[1], x[1] ** 2])  # noqa: E731
    at_zero = sp.csr_matrix((np.zeros(3), ([0, 0, 1], [0, 1, 1])), shape=(2, 2))
    x = np.array([2.0, 3.0])
    np.testing.assert_allclose(dr.sparse.jacobian(f, sparsity=at_zero)(x).toarray(),
                               dr.jacobian(f)(x))
    # a dense array's zeros are not entries
    assert dr.sparse.jacobian(f, sparsity=np.eye(2)).prepare(x).sparsity.nnz == 2


@pytest.mark.parametrize("order", ["natural", "smallest_last", "dsatur"])
def test_the_order_reaches_the_colouring(order):
    f = random_program(30, 25, 3, seed=11)
    x = np.random.default_rng(11).normal(size=25)
    for mode in ("forward", "reverse"):
        J = dr.sparse.jacobian(f, mode=mode, order=order)
        np.testing.assert_allclose(J(x).toarray(), dr.jacobian(f)(x), rtol=1e-12)
        P = J.sparsity.pattern
        expected = colour_columns(P if mode == "forward" else P.T, order)
        np.testing.assert_array_equal(J.colours, expected)
    g = _hessian_programs(12, seed=4)
    for name, h in g:
        H = dr.sparse.hessian(h, order=order)
        np.testing.assert_allclose(H(x[:12]).toarray(), dr.hessian(h)(x[:12]), rtol=1e-12,
                                   atol=1e-12, err_msg=name)
        np.testing.assert_array_equal(
            H.colours, dr.sparse.colour_symmetric(H.sparsity.pattern, order))


def test_auto_takes_the_other_direction_where_one_graph_is_too_large():
    # a row with half of the columns makes them all conflict: the column intersection
    # graph (10^8 entries) is not built (GraphTooLargeError); auto colours the rows
    n = 20_000
    f = lambda x: np.concatenate([np.sin(x), np.sum(x[::2] ** 2)[None]])  # noqa: E731
    x = np.random.default_rng(0).normal(size=n)
    J = dr.sparse.jacobian(f)
    got = J(x)
    assert J.mode == "reverse" and J.n_colours == 2
    np.testing.assert_allclose(got.diagonal(), np.cos(x), rtol=1e-14)
    expected = np.zeros(n)
    expected[::2] = 2 * x[::2]
    np.testing.assert_allclose(got.getrow(n).toarray().ravel(), expected, rtol=1e-14)
    with pytest.raises(dr.sparse.GraphTooLargeError, match="colour_rows"):
        dr.sparse.jacobian(f, mode="forward")(x)
