"""Dual numbers: primal and tangent, batched tangents, and the traced value's ndarray face."""

import numpy as np
import pytest

import dualrev as dr
from dualrev.batching import Batched, BatchTrace
from dualrev.forward import Dual, ForwardTrace


def test_dual_carries_primal_and_tangent():
    trace = ForwardTrace(level=10**9)
    x = Dual(2.0, 1.0, trace)
    y = x * x + 3.0 * x
    assert isinstance(y, Dual)
    assert (y.primal, y.tangent) == (10.0, 7.0)


def test_batched_tangent_is_one_pass():
    # a batch of tangents is a Batched tangent of a lower level: one pass, rules unbatched
    batch = BatchTrace(level=10**9 - 1, size=2)
    trace = ForwardTrace(level=10**9)
    x = Dual(np.array([1.0, 2.0]), Batched(np.eye(2), batch), trace)
    y = np.sin(x) * x[0]
    expected = np.array([[np.cos(1.0) + np.sin(1.0), 0.0],
                         [np.sin(2.0), np.cos(2.0)]]).T
    assert type(y.tangent) is Batched and y.tangent.shape == (2,)
    np.testing.assert_allclose(y.tangent.primal, expected)
    trace.finish()  # (traces made by hand are finished by hand, as a transform does:
    batch.finish()  # a running one is where a buffer made by np.zeros would belong)


def test_traced_value_looks_like_an_ndarray():
    def f(x):
        assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and len(x) == 2
        assert x.dtype == np.float64 and x.T.shape == (3, 2) and np.shape(x) == (2, 3)
        assert np.ndim(x) == 2 and np.zeros_like(x).shape == (2, 3)
        assert "Dual" in repr(x) or "Traced" in repr(x)
        return np.sum(x)

    x = np.ones((2, 3))
    dr.grad(f)(x)
    dr.jacfwd(f)(x)


def test_traced_values_are_unhashable_like_ndarrays():
    with pytest.raises(TypeError):
        dr.grad(lambda x: hash(x) * 0.0)(1.0)
