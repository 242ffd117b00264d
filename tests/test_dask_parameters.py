"""Parameters on Dask: differentiating with respect to a Dask array gives lazy Dask
derivatives (the input's chunks kept), computed by nothing during the transform, equal
to NumPy's once computed. A scheduler that raises stands guard: a transform run under
it would fail if it computed anything.

What must compute is pinned too: a Python ``if`` on a lazy value computes it (Dask's own
``bool()``), ``float()`` refuses as for NumPy, a SciPy function that converts its
argument refuses with ``ForeignArrayError``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import scipy.linalg as sla

import dualrev as dr
from dualrev.errors import ForeignArrayError, TracerConversionError
from tests.extras import need

pytestmark = pytest.mark.extras

da = need("dask.array")
dask = need("dask")

_rng = np.random.default_rng(20261206)
W = _rng.normal(size=6)
X = _rng.normal(size=(20, 6))
Y = _rng.normal(size=20)


def lazy(a: np.ndarray, chunks: Any) -> Any:
    return da.from_array(a, chunks=chunks)


class Computed(RuntimeError):
    pass


def _refuse(*args: Any, **kwargs: Any) -> Any:
    raise Computed("a Dask graph was computed during the transform")


@contextmanager
def nothing_computed() -> Iterator[None]:
    """Any compute inside raises (a scheduler that refuses to run)."""
    with dask.config.set(scheduler=_refuse):
        yield


def loss(w: Any, x: Any, y: Any) -> Any:
    return np.sum((np.tanh(x @ w) - y) ** 2) + 0.1 * np.sum(w ** 2) + np.prod(w[:3])


def vec(w: Any, x: Any) -> Any:
    return np.sin(x @ w) * w[0]


def computed(v: Any) -> Any:
    (v,) = dask.compute(v, scheduler="sync")
    return v


def assert_lazy_like(g: Any, w: Any) -> None:
    assert isinstance(g, da.Array), f"a {type(g).__name__} came back, not a dask array"
    assert g.chunks == w.chunks


# ------------------------------------------------------------------ lazy derivatives
@pytest.mark.parametrize("data_on_dask", [False, True], ids=["numpy-data", "dask-data"])
def test_grad_is_lazy_with_the_inputs_chunks(data_on_dask: bool) -> None:
    w = lazy(W, 2)
    x, y = (lazy(X, (5, 3)), lazy(Y, 5)) if data_on_dask else (X, Y)
    with nothing_computed():
        g = dr.grad(loss)(w, x, y)
    assert_lazy_like(g, w)
    np.testing.assert_allclose(computed(g), dr.grad(loss)(W, X, Y), rtol=1e-12)


def test_value_and_grad_lazy_and_computed_together() -> None:
    w = lazy(W, 3)
    with nothing_computed():
        v, g = dr.value_and_grad(loss)(w, X, Y)
    assert isinstance(v, da.Array) and v.shape == ()
    assert_lazy_like(g, w)
    starts = []

    class Count(dask.callbacks.Callback):
        def _start(self, dsk: Any) -> None:
            starts.append(1)

    with Count():
        vv, gg = dask.compute(v, g, scheduler="sync")  # one compute gives both
    assert len(starts) == 1
    v0, g0 = dr.value_and_grad(loss)(W, X, Y)
    assert vv == pytest.approx(v0, rel=1e-13)
    np.testing.assert_allclose(gg, g0, rtol=1e-12)


def test_forward_and_reverse_products_are_lazy() -> None:
    w, t = lazy(W, 3), np.linspace(-1.0, 1.0, 6)
    with nothing_computed():
        out, tan = dr.jvp(lambda w: vec(w, X), (w,), (lazy(t, 3),))
        _, pullback = dr.vjp(lambda w: vec(w, X), w)
        ct = pullback(lazy(np.ones(20), 5))[0]
        hv = dr.hvp(loss)(w, X, Y, lazy(t, 3))
    for v in (out, tan, ct, hv):
        assert isinstance(v, da.Array)
    assert_lazy_like(ct, w)
    assert_lazy_like(hv, w)
    o0, t0 = dr.jvp(lambda w: vec(w, X), (W,), (t,))
    np.testing.assert_allclose(computed(out), o0, rtol=1e-13)
    np.testing.assert_allclose(computed(tan), t0, rtol=1e-12)
    np.testing.assert_allclose(computed(ct), dr.vjp(lambda w: vec(w, X), W)[1](np.ones(20))[0],
                               rtol=1e-12)
    np.testing.assert_allclose(computed(hv), dr.hvp(loss)(W, X, Y, t), rtol=1e-12)


@pytest.mark.parametrize("jac", [dr.jacfwd, dr.jacrev, dr.jacobian],
                         ids=["jacfwd", "jacrev", "jacobian"])
def test_jacobians_are_dask_arrays(jac: Any) -> None:
    w = lazy(W, 3)
    with nothing_computed():
        J = jac(vec)(w, X)
    assert isinstance(J, da.Array) and J.shape == (20, 6)
    np.testing.assert_allclose(computed(J), dr.jacrev(vec)(W, X), rtol=1e-12)


def test_hessian_is_a_dask_array() -> None:
    w = lazy(W, 3)
    with nothing_computed():
        H = dr.hessian(loss)(w, X, Y)
    assert isinstance(H, da.Array) and H.shape == (6, 6)
    H0 = dr.hessian(loss)(W, X, Y)
    np.testing.assert_allclose(computed(H), H0, rtol=1e-11)
    np.testing.assert_allclose(H0, H0.T, rtol=1e-12)  # (and against a closed form below)


def test_closed_forms() -> None:
    # d/dw sum(w^2 * c) = 2 c w; Hessian of sum(w^3) = diag(6 w)
    w, c = lazy(W, 2), np.arange(6.0)
    np.testing.assert_allclose(computed(dr.grad(lambda w: np.sum(w ** 2 * c))(w)), 2 * c * W,
                               rtol=1e-14)
    np.testing.assert_allclose(computed(dr.hessian(lambda w: np.sum(w ** 3))(w)),
                               np.diag(6.0 * W), rtol=1e-14)


def test_mixed_numpy_and_dask_parameters() -> None:
    p = {"a": lazy(W, 3), "b": X[0], "c": 2.0}

    def f(p: Any) -> Any:
        return np.sum(p["a"] ** 2 * p["b"]) + p["c"] * np.sum(p["b"] ** 2)

    with nothing_computed():
        g = dr.grad(f)(p)
    assert_lazy_like(g["a"], p["a"])
    # the output is a Dask value: every gradient is lazy, the NumPy leaves' included
    assert isinstance(g["b"], da.Array) and isinstance(g["c"], da.Array)
    want = dr.grad(f)({"a": W, "b": X[0], "c": 2.0})
    got = computed(g)
    for k in "abc":
        np.testing.assert_allclose(got[k], want[k], rtol=1e-13)


def test_integer_input_casts_lazily_to_float64() -> None:
    w = da.arange(6, chunks=3)
    with nothing_computed():
        g = dr.grad(lambda w: np.sum(w ** 3))(w)
    assert_lazy_like(g, w)
    assert g.dtype == np.float64
    np.testing.assert_array_equal(computed(g), 3.0 * np.arange(6.0) ** 2)


def test_vmap_of_grad_over_dask_data() -> None:
    w = lazy(W, 3)
    xs, ys = lazy(X.reshape(4, 5, 6), (2, 5, 3)), lazy(Y.reshape(4, 5), (2, 5))
    with nothing_computed():
        G = dr.vmap(dr.grad(loss), in_axes=(None, 0, 0))(w, xs, ys)
    assert isinstance(G, da.Array) and G.shape == (4, 6)
    want = np.stack([dr.grad(loss)(W, X[5 * i:5 * i + 5], Y[5 * i:5 * i + 5]) for i in range(4)])
    np.testing.assert_allclose(computed(G), want, rtol=1e-12)


def test_writes_and_buffers_stay_lazy() -> None:
    def f(w: Any) -> Any:
        z = w * 1.0
        z[0] = w[1] ** 2
        b = np.zeros_like(w)  # a lazy buffer whose writes are recorded
        b[2] = w[0] * 3.0
        return np.sum(z ** 2) + np.sum(b * w)

    w = lazy(W, 3)
    with nothing_computed(), warnings.catch_warnings():
        warnings.simplefilter("error")  # (Dask warns where it falls back to NumPy)
        g = dr.grad(f)(w)
    assert_lazy_like(g, w)
    np.testing.assert_allclose(computed(g), dr.grad(f)(W), rtol=1e-13)


# ------------------------------------------------------------------ what must compute
def test_a_branch_on_a_lazy_value_computes_it() -> None:
    # chosen: as Dask itself does on bool(), the condition is computed (one small
    # compute of the branch's value, not of the derivative)
    def f(w: Any) -> Any:
        if np.sum(w) > 0:
            return np.sum(w ** 2)
        return np.sum(w ** 3)

    w = lazy(np.abs(W), 3)
    with pytest.raises(Computed):
        with nothing_computed():
            dr.grad(f)(w)
    np.testing.assert_allclose(computed(dr.grad(f)(w)), 2 * np.abs(W), rtol=1e-14)


def test_float_of_a_lazy_traced_value_refuses() -> None:
    with pytest.raises(TracerConversionError):
        dr.grad(lambda w: float(np.sum(w)) * np.sum(w))(lazy(W, 3))


def test_a_scipy_function_that_converts_refuses_without_computing() -> None:
    with nothing_computed(), pytest.raises(ForeignArrayError, match=r"scipy\.linalg\.expm.*dask"):
        dr.grad(lambda w: np.sum(sla.expm(np.outer(w, w))))(lazy(W, 3))


def test_repeated_positions_scatter_lazily() -> None:
    # the cotangent of w[[0, 2, 2]] is a scatter-add (Dask has no add.at: a product with
    # the selection matrix), lazy and in w's chunks
    w = lazy(W, 3)
    with nothing_computed():
        g = dr.grad(lambda w: np.sum(w[np.array([0, 2, 2])] ** 2))(w)
    assert_lazy_like(g, w)
    np.testing.assert_allclose(computed(g), [2 * W[0], 0, 4 * W[2], 0, 0, 0], rtol=1e-14)


def test_nonfinite_derivative_warns_when_computed() -> None:
    w = lazy(np.array([0.0, 4.0, 1.0, 1.0]), 2)
    with nothing_computed():
        g = dr.grad(lambda w: np.sum(np.sqrt(w)))(w)  # no check now: it would compute
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        got = computed(g)
    assert np.isinf(got[0]) and got[1] == 0.25
    said = [str(s.message) for s in seen if s.category is dr.NonFiniteDerivativeWarning]
    assert said and "lazy (Dask) result" in said[0]
