"""The array-construction cases of autograd's own tests/test_numpy.py (arrays of boxes,
np.r_, np.c_, reductions of lists of boxes, np.array of a list of arrays, nested lists),
written with plain NumPy and dualrev, each checked against finite differences (and jacfwd
against jacrev) by tests.helpers.check_all. The cases are autograd's; the code is ours."""

import warnings

import numpy as np
import pytest

import dualrev as dr
from tests.helpers import check_all

rng = np.random.default_rng(42)
A32 = rng.standard_normal((3, 2))
C32 = rng.standard_normal((3, 2))
A10 = rng.standard_normal(10)
C10 = rng.standard_normal(10)

CASES = {
    # name: (function, argument)
    "1d_array": (lambda x: np.array([x, x * 1.0, x + 2.5]), 3.0),
    "2d_array": (lambda x: np.array([[x, x * 1.0, x + 2.5], [x ** 2, x, x / 2.0]]), 3.0),
    "1d_array_fanout": (lambda x: (lambda a: a + a)(np.array([x, x * 1.0, x + 2.5])), 3.0),
    "2d_array_fanout": (lambda x: (lambda a: a + a)(
        np.array([[x, x * 1.0, x + 2.5], [x ** 2, x, x / 2.0]])), 3.0),
    "array_from_scalar": (lambda x: np.array(x), 3.0),
    "array_from_arrays": (lambda x: np.array([x, x]), A32),
    "array_from_arrays_2": (lambda x: np.array([[2 * x, x + 1], [x, x]]), A32),
    "r_basic": (lambda x: np.r_[x], A32),
    "r_double": (lambda x: np.r_[x, x], A32),
    "r_no_relation": (lambda x: np.r_[C32] + 0 * x, A32),
    "r_node_and_const": (lambda x: np.r_[x, C32], A32),
    "r_mixed": (lambda x: np.r_[x, C32, x], A32),
    "r_slicing": (lambda x: np.r_[x, C10, 1:10], A10),
    "c_": (lambda x: np.c_[x, C32, x], A32),
    "non_numpy_sum": (lambda x: sum([x, 2 * x]), A32),
    "mean_list_of_boxes": (lambda x: np.mean([x, x + 2]), 0.5),
    "mean_tuple_of_boxes": (lambda x: np.mean((x, x + 2)), 0.5),
    "std_list_of_boxes": (lambda x: np.std([x, 3 * x + 2]), 0.5),
    "var_tuple_of_boxes": (lambda x: np.var((x, 3 * x + 2)), 0.5),
    "max_list_of_boxes": (lambda x: np.max([x, 2 * x, 1.0]), 1.5),
    "sum_list_of_arrays": (lambda x: np.sum([x, x ** 2], axis=0), A32),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_autograd_array_construction_case(name):
    f, x = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (autograd's r_ tests record warnings: none here)
        want = f(x)
        value, _ = dr.jvp(f, (x,), (np.ones_like(x),))
    np.testing.assert_allclose(dr.strip(value), want, rtol=1e-15)
    assert np.shape(value) == np.shape(want)
    check_all(f, (x,), order=2)


def test_autograd_closed_forms():
    """autograd's exact assertions on reductions of lists of boxes."""
    assert dr.grad(lambda x: np.mean([x, x + 2]))(0.0) == 1.0
    assert dr.grad(lambda x: np.mean((x, x + 2)))(0.0) == 1.0
    assert dr.grad(lambda x: np.std([x, x + 2]))(0.0) == 0.0
    assert dr.grad(lambda x: np.std((x, x + 2)))(0.0) == 0.0
    assert dr.grad(lambda x: np.var([x, x + 2]))(0.0) == 0.0
    assert dr.grad(lambda x: np.var((x, x + 2)))(0.0) == 0.0


def test_scalar_input_presented_as_a_0d_array():
    def fun(x):
        assert x.shape == () and x.ndim == 0 and x.size == 1 and x.dtype == np.float64
        return x ** 2

    assert dr.grad(fun)(3.0) == 6.0
