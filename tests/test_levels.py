"""The plain values and batches under a traced value's levels (dualrev/levels.py): below
the traces, a batch level is rebuilt by its own trace (``BatchTrace.wrap``), so these
helpers serve the write machinery and the indexing primitives without batching.py.
(Their single-level behaviour is tested in test_batching.py, which re-exports them.)"""

from __future__ import annotations

import numpy as np

import dualrev as dr
from dualrev import batching, levels
from dualrev.levels import batch_traces, on_plain_values, rebatch, without_derivatives
from dualrev.primitive import Tracer, concrete

RNG = np.random.default_rng(20261206)


def test_batching_re_exports_the_same_functions():
    for name in ("without_derivatives", "on_plain_values", "rebatch", "batch_traces",
                 "materialize", "batch_size", "map_plain", "stand_in", "is_batched"):
        assert getattr(batching, name) is getattr(levels, name)


def test_rebatch_rebuilds_every_batch_level_by_its_own_trace():
    X = RNG.standard_normal((3, 4, 5))
    seen = []

    def f(v):
        whole = concrete(v)  # every element of both batches: (3, 4, 5)
        n = rebatch(np.linalg.norm(whole, axis=-1), v)
        seen.append(batch_traces(n) == batch_traces(v) and len(batch_traces(v)) == 2)
        return v / n

    got = dr.vmap(dr.vmap(f))(X)
    np.testing.assert_allclose(got, X / np.linalg.norm(X, axis=-1, keepdims=True),
                               rtol=1e-13)
    assert seen == [True]


def test_on_plain_values_maps_a_plain_function_over_a_batch_under_a_tape():
    X = RNG.standard_normal((4, 6))

    def f(x):
        order = on_plain_values(np.argsort, [x])  # plain per element, batched under vmap
        return np.sum(np.take_along_axis(x, order, 0) * np.arange(1.0, 7.0))

    got = dr.vmap(dr.grad(f))(X)
    # f = sum_k (k + 1) x[order[k]]: the gradient is each element's rank + 1
    want = np.argsort(np.argsort(X, axis=1), axis=1) + 1.0
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, np.stack([dr.grad(f)(x) for x in X]))


def test_without_derivatives_drops_tape_and_tangent_and_keeps_the_batches():
    X = RNG.standard_normal((2, 3))
    kinds = []

    def f(x):
        w = without_derivatives(x * 2.0)
        kinds.append([type(v).__name__ for v in _levels(w)])
        return np.sum(x * w)

    # vmap outermost: Traced over Dual over Batched; only the batch is kept
    dr.vmap(dr.jacfwd(dr.grad(f)))(X)
    assert kinds == [["Batched"]]
    # w carries no derivative: the gradient is w = 2x (not 4x), the Hessian zero (not 4 I)
    np.testing.assert_allclose(dr.vmap(dr.grad(f))(X), 2.0 * X, rtol=1e-15)
    np.testing.assert_array_equal(dr.vmap(dr.hessian(f))(X), np.zeros((2, 3, 3)))


def _levels(v):
    out = []
    while isinstance(v, Tracer):
        out.append(v)
        v = v.primal
    return out
