"""Reductions with axis and keepdims: JVP/VJP against finite differences, forward
against reverse, and closed forms (prod with zeros, ties in max)."""

import warnings

import numpy as np
import pytest

import dualrev as dr
from tests.helpers import check_all, check_empty, check_like_numpy

rng = np.random.default_rng(1)
X = rng.uniform(0.5, 2.0, size=(3, 4))
X3 = rng.uniform(0.5, 2.0, size=(2, 3, 4))

AXES = [None, 0, 1, -1, (0, 1)]


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name", ["sum", "mean", "prod", "max", "min", "amax", "amin",
                                  "var", "std"])
def test_reduction(name, axis, keepdims):
    f = getattr(np, name)
    check_all(lambda x: f(x, axis=axis, keepdims=keepdims), (X,), order=2)


@pytest.mark.parametrize("name", ["sum", "mean", "prod", "max", "min", "var", "std"])
def test_reduction_methods_3d(name):
    check_all(lambda x: getattr(x, name)(axis=(0, 2)), (X3,), order=1)
    check_all(lambda x: getattr(x, name)(), (X3,), order=1)


@pytest.mark.parametrize("ddof", [0, 1])
def test_var_std_ddof(ddof):
    check_all(lambda x: np.var(x, axis=1, ddof=ddof), (X,), order=2)
    check_all(lambda x: np.std(x, ddof=ddof), (X,), order=2)


def test_prod_with_zeros_exact():
    x = np.array([2.0, 0.0, 3.0, 4.0])
    # d prod / d x_i = product of the others; only the zero's slot is nonzero.
    np.testing.assert_array_equal(dr.grad(np.prod)(x), [0.0, 24.0, 0.0, 0.0])
    x2 = np.array([2.0, 0.0, 3.0, 0.0])
    np.testing.assert_array_equal(dr.grad(np.prod)(x2), [0.0, 0.0, 0.0, 0.0])
    # Second derivative with two zeros: d2/dx1dx3 = 2*3.
    np.testing.assert_array_equal(dr.hessian(np.prod)(x2)[1, 3], 6.0)
    check_all(lambda a: np.prod(a, axis=0), (np.array([[1.0, 0.0], [2.0, 3.0], [0.5, 4.0]]),))


def test_max_ties_split():
    x = np.array([1.0, 3.0, 3.0, 2.0])
    np.testing.assert_array_equal(dr.grad(np.max)(x), [0.0, 0.5, 0.5, 0.0])
    np.testing.assert_array_equal(dr.jacfwd(np.max)(x), [0.0, 0.5, 0.5, 0.0])


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_cumsum_cumprod(axis):
    check_all(lambda x: np.cumsum(x, axis=axis), (X,), order=2)
    check_all(lambda x: np.cumprod(x, axis=axis), (X,), order=2)
    check_all(lambda x: x.cumsum(axis), (X,), order=1)


def test_cumprod_with_zeros_exact():
    x = np.array([2.0, 0.0, 3.0])
    # ans = [2, 0, 0]; d ans_2 / d x_1 = 2 * 3 = 6, d ans_1 / d x_1 = 2.
    expected = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 6.0, 0.0]])
    np.testing.assert_array_equal(dr.jacfwd(np.cumprod)(x), expected)
    np.testing.assert_array_equal(dr.jacrev(np.cumprod)(x), expected)


@pytest.mark.parametrize("ord", [None, 1, 2, 3, np.inf, -np.inf, 0.5])
def test_vector_norm(ord):
    v = np.array([0.3, -1.2, 0.8, 2.0])
    check_all(lambda x: np.linalg.norm(x, ord=ord), (v,), order=2 if ord is not None else 2)


@pytest.mark.parametrize("ord", [None, "fro", 1, -1, np.inf, -np.inf])
def test_matrix_norm(ord):
    check_all(lambda x: np.linalg.norm(x, ord=ord), (X - 1.2,), order=1)


@pytest.mark.parametrize("axis,keepdims", [(0, False), (1, True), ((0, 1), False)])
def test_norm_axis(axis, keepdims):
    check_all(lambda x: np.linalg.norm(x, axis=axis, keepdims=keepdims), (X,), order=2)


def test_norm_closed_form():
    x = np.array([3.0, 4.0])
    np.testing.assert_allclose(dr.grad(np.linalg.norm)(x), x / 5.0, rtol=1e-15)


def test_ufunc_reduce_and_accumulate():
    check_all(lambda x: np.add.reduce(x, axis=1), (X,), order=1)
    check_all(lambda x: np.multiply.accumulate(x), (X,), order=1)
    check_all(lambda x: np.maximum.reduce(x), (X,), order=1)


W5 = np.random.default_rng(5).uniform(0.5, 2.0, 4)
STATS = {
    "average_weights": (lambda m: np.average(m, axis=1, weights=W5), (X,)),
    "average_traced_weights": (lambda m, w: np.average(m, axis=1, weights=w), (X, W5)),
    "average_all": (np.average, (X,)),
    "nansum": (lambda m: np.nansum(np.where(X > 1.5, np.nan, m), axis=0), (X,)),
    "nanmean": (lambda m: np.nanmean(np.where(X > 1.5, np.nan, m)), (X,)),
    "cov": (np.cov, (X,)),
    "cov_pair": (lambda a, b: np.cov(a, b), (X[0], X[1])),
    "corrcoef": (np.corrcoef, (X,)),
}


@pytest.mark.parametrize("name", sorted(STATS))
def test_statistics(name):
    f, args = STATS[name]
    out, _ = dr.jvp(f, args, tuple(np.zeros_like(a) for a in args))
    np.testing.assert_allclose(out, f(*args), rtol=1e-12)
    check_all(f, args, order=2)


def test_dtype_argument_is_honoured():
    x32 = X.astype(np.float32)
    for f in (np.sum, np.mean, np.prod, np.cumsum):
        out, _ = dr.jvp(lambda a, f=f: f(a, dtype=np.float64), (x32,), (np.ones_like(x32),))
        assert out.dtype == f(x32, dtype=np.float64).dtype == np.float64
        np.testing.assert_allclose(out, f(x32, dtype=np.float64), rtol=1e-6)


EMPTY = {
    "prod_all": (np.prod, np.zeros(0)),
    "prod_empty_axis": (lambda x: np.prod(x, axis=1), np.zeros((3, 0))),
    "prod_other_axis": (lambda x: np.prod(x, axis=0), np.zeros((3, 0))),
    "sum_all": (np.sum, np.zeros(0)),
    "sum_empty_axis": (lambda x: np.sum(x, axis=1), np.zeros((3, 0))),
    "mean_empty_axis_nan": (lambda x: np.mean(x, axis=1), np.zeros((3, 0))),
    "cumsum": (np.cumsum, np.zeros(0)),
    "cumprod": (lambda x: np.cumprod(x, axis=1), np.zeros((3, 0))),
    "max_non_empty_axis": (lambda x: np.max(x, axis=1), np.zeros((0, 3))),
}


@pytest.mark.parametrize("name", sorted(EMPTY))
def test_reductions_of_empty_arrays(name):
    # prod over an empty axis crashed (its exclusive products were built from a ones column)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mean of nothing
        check_empty(*EMPTY[name])


def test_grad_of_sum_of_empty():
    assert dr.grad(np.sum)(np.zeros(0)).shape == (0,)
    assert dr.grad(lambda x: np.sum(x[:0] * 2.0))(np.ones(3)).tolist() == [0.0, 0.0, 0.0]


def test_max_of_empty_raises_like_numpy():
    with pytest.raises(ValueError, match="zero-size"):
        dr.grad(np.max)(np.zeros(0))
    with pytest.raises(ValueError, match="zero-size"):
        dr.jacrev(lambda x: np.min(x, axis=0))(np.zeros((0, 3)))


@pytest.mark.parametrize("x", [[1.0, 0.0, 3.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0],
                               [[2.0, 0.0], [0.0, 5.0]]], ids=str)
def test_prod_with_zeros_exact_derivatives(x):
    # d prod / d x_i is the product of the others, also where x holds one or more zeros.
    x = np.array(x)
    flat = x.ravel()
    others = np.array([np.prod(np.delete(flat, i)) for i in range(flat.size)]).reshape(x.shape)
    np.testing.assert_array_equal(dr.grad(np.prod)(x), others)
    np.testing.assert_array_equal(dr.jacfwd(np.prod)(x), others)
    H = dr.hessian(np.prod)(x).reshape(flat.size, flat.size)
    want = np.array([[0.0 if i == j else np.prod(np.delete(flat, [i, j]))
                      for j in range(flat.size)] for i in range(flat.size)])
    np.testing.assert_array_equal(H, want)

LIST_V, LIST_M = np.array([0.3, 0.6, 0.9]), np.array([[2.0, 0.5], [0.3, 1.5]])
LIST_ARGS = {
    "average_list_values": (lambda w: np.average([1.0, 2, 3], weights=w), LIST_V),
    "average_list_weights": (lambda x: np.average(x, weights=[1.0, 2, 3]), LIST_V),
}


@pytest.mark.parametrize("name", sorted(LIST_ARGS))
def test_reductions_take_python_lists(name):
    # np.average([..], weights=w) multiplied a list
    check_like_numpy(*LIST_ARGS[name])


MASK = X > 1.2
KEYWORDS = {  # where= and initial= were refused; honoured now
    "sum_where": lambda x: np.sum(x, where=MASK),
    "sum_where_axis_initial": lambda x: np.sum(x, axis=1, where=MASK, initial=2.0),
    "sum_where_broadcast": lambda x: np.sum(x, axis=0, where=MASK[0]),
    "prod_where_initial": lambda x: np.prod(x, axis=0, where=MASK, initial=0.5),
    "mean_where": lambda x: np.mean(x, axis=1, where=MASK | np.eye(3, 4, dtype=bool)),
    "mean_where_keepdims": lambda x: np.mean(x, axis=1, where=np.array([True, False, True, True]),
                                             keepdims=True),
    "nansum_where_initial": lambda x: np.nansum(np.where(x > 1.8, np.nan, x), axis=0,
                                                where=MASK, initial=1.0),
    "nanmean_where": lambda x: np.nanmean(np.where(x > 1.8, np.nan, x), axis=1,
                                          where=MASK | np.eye(3, 4, dtype=bool)),
}
DTYPE_KEYWORDS = {  # dtype= was ignored
    "nansum_dtype": lambda x, dt: np.nansum(x, dtype=dt),
    "corrcoef_dtype": lambda x, dt: np.corrcoef(x, dtype=dt),
}


@pytest.mark.parametrize("name", sorted(KEYWORDS))
def test_reduction_keywords_honoured(name):
    check_like_numpy(KEYWORDS[name], X)


@pytest.mark.parametrize("name", sorted(DTYPE_KEYWORDS))
def test_reduction_dtype_honoured(name):
    f = DTYPE_KEYWORDS[name]
    check_like_numpy(lambda x: f(x, np.float32), X, reference=lambda x: f(x, None))


def test_reduction_keywords_refused_clearly():
    with pytest.raises(dr.NoDerivativeRule, match="initial"):
        dr.grad(lambda x: np.max(x, initial=5.0))(X)
    with pytest.raises(dr.NoDerivativeRule, match="where"):
        dr.grad(lambda x: np.min(x, where=MASK, initial=5.0))(X)
