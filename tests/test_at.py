"""dualrev.at: functional index updates (in-place writes into traced arrays are
recorded as these: tests/test_inplace.py)."""

import numpy as np
import pytest
from numpy import zeros as numpy_zeros  # bound before any transform: NumPy's own

import dualrev as dr
from tests.helpers import check_all

x = np.array([0.5, -1.0, 2.0, 3.0])
w = np.array([1.0, 2.0, 3.0])


def test_values_match_numpy_semantics():
    expected = x.copy()
    expected[[1, 3, 1]] = w  # the last write wins
    np.testing.assert_array_equal(dr.at(x)[[1, 3, 1]].set(w), expected)
    expected = x.copy()
    np.add.at(expected, [1, 3, 1], w)  # repeats accumulate
    np.testing.assert_array_equal(dr.at(x)[[1, 3, 1]].add(w), expected)
    expected = x.copy()
    np.multiply.at(expected, [1, 3, 1], w)
    np.testing.assert_array_equal(dr.at(x)[[1, 3, 1]].multiply(w), expected)
    np.testing.assert_array_equal(dr.at(x)[1:3].get(), x[1:3])
    np.testing.assert_array_equal(x, [0.5, -1.0, 2.0, 3.0])  # x itself unchanged


@pytest.mark.parametrize("op", ["set", "add", "multiply"])
def test_derivatives(op):
    check_all(lambda a, b: getattr(dr.at(a)[[1, 3, 1]], op)(b), (x, w), order=2)
    check_all(lambda a, b: getattr(dr.at(a)[1:3], op)(b), (x, w[:2]), order=2)


def test_set_gradient_closed_form():
    g = dr.grad(lambda a, b: np.sum(dr.at(a)[[0, 2]].set(b) ** 2), (0, 1))(x, w[:2])
    np.testing.assert_array_equal(g[0], [0.0, -2.0, 0.0, 6.0])  # overwritten slots get none
    np.testing.assert_array_equal(g[1], 2 * w[:2])


def test_error_for_in_place_points_to_at():
    def f(a):
        buf = numpy_zeros(4)  # NumPy's own (np.zeros made in f is traced: test_buffers)
        np.add.at(buf, [0, 0], a[:2])
        return np.sum(buf)

    with pytest.raises(dr.InPlaceError, match=r"dualrev.at\(x\)\[idx\]"):
        dr.grad(f)(x)
