"""Another library's arrays (NEP 18: CuPy, Dask) through every transform, with a
host-guard test double (tests/device_array.py) standing for a device array: values and
derivatives come back as the same array type, equal to NumPy's, and nothing is copied to
the host (the double raises and counts every attempt; a fixture asserts none happened).
What cannot stay on the device refuses with ``ForeignArrayError`` (pinned below).

No optional library is needed: these tests run in every session. The same checks against
real CuPy are in tests/test_cupy.py, and against Dask in tests/test_dask_parameters.py.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.linalg as sla
import scipy.special as ss

import dualrev as dr
from dualrev.errors import ForeignArrayError, TracerConversionError
from dualrev.primitive import foreign_array, zeros_as
from dualrev.tree import tree_flatten
from tests.device_array import HOST_COPIES, SCALAR_READS, DeviceArray, HostCopyError, device, host

_rng = np.random.default_rng(20261206)
W = _rng.normal(size=3)
DATA = {"X": _rng.normal(size=(5, 3)), "y": _rng.normal(size=5), "I": 2.0 * np.eye(3)}


def on_device(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: device(v) for k, v in tree.items()}
    return device(tree)


@pytest.fixture(autouse=True)
def no_host_copies() -> Any:
    HOST_COPIES.clear()
    SCALAR_READS.clear()
    yield
    assert HOST_COPIES == [], f"host copies attempted: {HOST_COPIES}"


# ------------------------------------------------------------------ the functions
def f_elementwise(w: Any, d: Any) -> Any:
    return (np.sum(np.exp(np.sin(w)) * w ** 2 / (1 + w * w))
            + np.sum(np.tanh(w) * np.log1p(w * w)) + np.sum(np.abs(w) ** 1.5))


def f_reductions(w: Any, d: Any) -> Any:
    return (np.mean(w) * np.max(w) + np.prod(w) + np.var(w) + np.linalg.norm(w)
            + np.sum(np.cumsum(w) ** 2) + np.min(d["X"] * w))


def f_matmul(w: Any, d: Any) -> Any:
    return (np.sum((np.tanh(d["X"] @ w) - d["y"]) ** 2) + w @ w
            + np.einsum("ij,j->", d["X"], w) + np.dot(d["y"], d["X"] @ (w * w)))


def f_indexing(w: Any, d: Any) -> Any:
    return (np.sum(w[1:] * w[:-1]) + w[0] * w[2] + np.sum(w[np.array([0, 2, 2])] ** 2)
            + np.sum(w[[1, 0]] * 3.0) + np.sum(d["X"][1:3] @ w) + np.sum(d["X"][:, 1] * w[1]))


def f_writes(w: Any, d: Any) -> Any:
    z = w * 1.0
    z[0] = w[1] ** 2
    z[1:] += w[:2]
    b = np.zeros_like(w)  # a buffer in w's library, whose writes are recorded
    b[2] = w[0] * 3.0
    b[:2] = np.sin(w[1:])
    return np.sum(z ** 2) + np.sum(b * w)


def f_shape(w: Any, d: Any) -> Any:
    return (np.sum(np.concatenate([w, w ** 2]) ** 2) + np.sum(np.stack([w, np.cos(w)]) * 2.0)
            + np.sum(np.reshape(np.outer(w, w), (9,))[::2] ** 2)
            + np.sum(np.transpose(np.outer(w, d["y"][:3]))[0]))


def f_linalg(w: Any, d: Any) -> Any:
    a = d["I"] + np.outer(w, w)
    return np.sum(np.linalg.solve(a, w)) + np.linalg.det(a) + np.sum(np.linalg.inv(a))


def f_select(w: Any, d: Any) -> Any:
    return np.sum(np.where(w > 0, w, -2.0 * w) ** 2) + np.sum(np.maximum(w, 0.1) ** 2)


def f_special(w: Any, d: Any) -> Any:
    return (np.sum(ss.gammaln(w + 2.0)) + ss.logsumexp(w)
            + np.sum(ss.expit(d["X"] @ w)) + np.sum(ss.softmax(w) ** 2))


def f_complex(w: Any, d: Any) -> Any:
    return np.sum(np.abs(w * (1.0 + 2.0j)) ** 2) + np.sum(np.abs(np.fft.fft(w)) ** 2)


SCALAR = [f_elementwise, f_reductions, f_matmul, f_indexing, f_writes, f_shape, f_linalg,
          f_select, f_special, f_complex]


def v_matmul(w: Any, d: Any) -> Any:
    return np.sin(d["X"] @ w) * w[0]


def v_mixed(w: Any, d: Any) -> Any:
    z = np.concatenate([w ** 2, np.cumsum(w)])
    z[1] = w[2] * w[0]
    return z * 2.0


VECTOR = [v_matmul, v_mixed]


def same(got: Any, want: Any) -> None:
    """Every leaf of ``got`` is a DeviceArray equal to ``want``'s (computed on NumPy)."""
    g_leaves, g_def = tree_flatten(got)
    w_leaves, w_def = tree_flatten(want)
    assert g_def == w_def
    for g, w in zip(g_leaves, w_leaves, strict=True):
        assert type(g) is DeviceArray, f"a {type(g).__name__} came back, not a DeviceArray"
        np.testing.assert_allclose(host(g), w, rtol=1e-10, atol=1e-12)


def both(run: Callable[[Any, Any], Any]) -> None:
    """``run`` on device arrays equals ``run`` on the same values as NumPy arrays."""
    same(run(device(W), on_device(DATA)), run(W, DATA))


# ------------------------------------------------------------------ every transform
@pytest.mark.parametrize("f", SCALAR, ids=lambda f: f.__name__)
def test_grad_and_value_and_grad(f: Any) -> None:
    both(lambda w, d: dr.grad(f)(w, d))
    both(lambda w, d: dr.value_and_grad(f)(w, d))


@pytest.mark.parametrize("f", [f_matmul, f_writes, f_linalg], ids=lambda f: f.__name__)
def test_grad_of_parameters_and_data(f: Any) -> None:
    # the data differentiated too: a dict of device arrays comes back
    both(lambda w, d: dr.grad(f, argnums=(0, 1))(w, d))


@pytest.mark.parametrize("f", SCALAR, ids=lambda f: f.__name__)
def test_hvp_and_hessian(f: Any) -> None:
    v = np.array([0.5, -1.0, 2.0])
    both(lambda w, d: dr.hvp(f)(w, d, v if type(w) is np.ndarray else device(v)))
    both(lambda w, d: dr.hessian(f)(w, d))


@pytest.mark.parametrize("f", VECTOR, ids=lambda f: f.__name__)
def test_jacobians(f: Any) -> None:
    both(lambda w, d: dr.jacfwd(f)(w, d))
    both(lambda w, d: dr.jacrev(f)(w, d))
    both(lambda w, d: dr.jacobian(f)(w, d))


@pytest.mark.parametrize("f", VECTOR, ids=lambda f: f.__name__)
def test_jvp_and_vjp(f: Any) -> None:
    t = np.array([1.0, -0.5, 0.25])
    both(lambda w, d: dr.jvp(lambda w: f(w, d), (w,),
                             (t if type(w) is np.ndarray else device(t),)))
    n = np.shape(f(W, DATA))[0]
    c = np.linspace(-1.0, 1.0, n)

    def pulled(w: Any, d: Any) -> Any:
        out, pullback = dr.vjp(f, w, d)
        return out, pullback(c if type(w) is np.ndarray else device(c))
    both(pulled)


def test_vjp_reads_the_primals_as_they_were() -> None:
    # the pullback runs later: a write into the caller's device array in between must not
    # reach it (the primal is copied on the device, as a NumPy one is copied on the host)
    w = device(W)
    _, pullback = dr.vjp(lambda w: np.sin(w) * w, w)
    w[0] = 100.0
    (c,) = pullback(device(np.ones(3)))
    assert type(c) is DeviceArray
    np.testing.assert_allclose(host(c), np.cos(W) * W + np.sin(W), rtol=1e-14)


def test_vmap_and_per_example_gradients() -> None:
    def loss(w: Any, x: Any, y: Any) -> Any:
        return (np.tanh(x @ w) - y) ** 2 + np.sum(w ** 2)

    both(lambda w, d: dr.vmap(loss, in_axes=(None, 0, 0))(w, d["X"], d["y"]))
    both(lambda w, d: dr.vmap(dr.grad(loss), in_axes=(None, 0, 0))(w, d["X"], d["y"]))
    both(lambda w, d: dr.vmap(lambda x: np.cumsum(x) * x[0])(d["X"]))


def test_nested_transforms() -> None:
    both(lambda w, d: dr.grad(lambda w: np.sum(dr.grad(f_matmul)(w, d) ** 2))(w))
    both(lambda w, d: dr.jacfwd(dr.jacrev(f_elementwise))(w, d))
    both(lambda w, d: dr.vmap(dr.jacrev(v_matmul), in_axes=(0, None))(
        np.stack([w, 2.0 * w]), d))


def test_integer_input_becomes_float64_on_the_device() -> None:
    g = dr.grad(lambda w: np.sum(w ** 3))(device(np.array([1, 2, 3])))
    assert type(g) is DeviceArray and g.dtype == np.float64
    np.testing.assert_array_equal(host(g), [3.0, 12.0, 27.0])


def test_float32_keeps_its_precision() -> None:
    w32 = W.astype(np.float32)
    g = dr.grad(lambda w: np.sum(np.sin(w) * w))(device(w32))
    assert type(g) is DeviceArray and g.dtype == np.float32
    np.testing.assert_allclose(host(g), np.sin(w32) + w32 * np.cos(w32), rtol=1e-6)


def test_an_output_independent_of_the_input_gives_device_zeros() -> None:
    # no cotangent reaches w: its zero gradient is made in w's library
    g = dr.grad(lambda w, d: np.sum(d["y"]) * 1.0)(device(W), on_device(DATA))
    assert type(g) is DeviceArray
    np.testing.assert_array_equal(host(g), np.zeros(3))
    dy = device(DATA["y"])
    J = dr.jacfwd(lambda w: dy * 1.0)(device(W))
    assert type(J) is DeviceArray and host(J).shape == (5, 3) and not host(J).any()


def test_closed_forms_on_the_device() -> None:
    # d/dw sum(exp(w)) = exp(w); Hessian of sum(w^3) = diag(6 w)
    np.testing.assert_allclose(host(dr.grad(lambda w: np.sum(np.exp(w)))(device(W))),
                               np.exp(W), rtol=1e-14)
    np.testing.assert_allclose(host(dr.hessian(lambda w: np.sum(w ** 3))(device(W))),
                               np.diag(6.0 * W), rtol=1e-14)


# ------------------------------------------------------------------ what needs the host
def test_the_double_catches_host_copies() -> None:
    # the guard the fixture relies on: an implicit conversion raises and is counted
    with pytest.raises(HostCopyError):
        np.asarray(device(W))
    assert HOST_COPIES == ["__array__ (np.asarray)"]
    with pytest.raises(TypeError, match="host numpy.ndarray"):
        device(W) + W  # mixing with a host array, as CuPy refuses it
    HOST_COPIES.clear()


def test_a_branch_on_a_value_reads_one_number() -> None:
    # as CuPy allows: bool() of a one-element array synchronises, copying one number
    def f(w: Any) -> Any:
        if np.sum(w) > 0:
            return np.sum(w ** 2)
        return np.sum(w ** 3)

    g = dr.grad(f)(device(np.array([1.0, 2.0])))
    np.testing.assert_array_equal(host(g), [2.0, 4.0])
    assert "bool()" in SCALAR_READS


def test_a_host_tangent_for_a_device_primal_refuses() -> None:
    with pytest.raises(dr.DualrevError, match="NumPy tangent or cotangent.*DeviceArray"):
        dr.jvp(lambda w: np.sin(w), (device(W),), (np.ones(3),))
    _, pullback = dr.vjp(lambda w: np.sin(w), device(W))
    with pytest.raises(dr.DualrevError, match="NumPy tangent or cotangent"):
        pullback(np.ones(3))


def test_float_of_a_traced_value_refuses_as_for_numpy() -> None:
    with pytest.raises(TracerConversionError):
        dr.grad(lambda w: float(np.sum(w)) * np.sum(w))(device(W))


def test_a_scipy_function_that_converts_refuses() -> None:
    with pytest.raises(ForeignArrayError, match=r"scipy\.linalg\.expm.*DeviceArray"):
        dr.grad(lambda w: np.sum(sla.expm(np.outer(w, w))))(device(W))
    with pytest.raises(ForeignArrayError, match=r"scipy\.linalg\.solve_triangular"):
        dr.grad(lambda w, a: np.sum(sla.solve_triangular(a, w)))(device(W),
                                                                   device(DATA["I"]))


def test_indices_computed_on_the_device_refuse() -> None:
    with pytest.raises(ForeignArrayError, match="index array"):
        dr.grad(lambda w: np.sum(np.sort(w) * np.arange(3.0)))(device(W))
    with pytest.raises(ForeignArrayError, match="index array"):
        dr.grad(lambda w: np.sum(w[w > 0]))(device(W))
    # the same with NumPy indices works (positions known in advance)
    g = dr.grad(lambda w: np.sum(w[np.array([2, 0])] * np.array([1.0, 2.0])[0]))(device(W))
    np.testing.assert_array_equal(host(g), [1.0, 0.0, 1.0])


def test_a_write_into_a_numpy_buffer_refuses() -> None:
    def f(w: Any) -> Any:
        b = np.zeros(3)  # on the host: it cannot hold a device value
        b[0] = w[0]
        return np.sum(b)

    with pytest.raises(ForeignArrayError, match="np.zeros_like"):
        dr.grad(f)(device(W))


def test_a_nonfinite_derivative_on_the_device_warns() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        g = dr.grad(lambda w: np.sum(np.sqrt(w)))(device(np.array([0.0, 4.0])))
    assert type(g) is DeviceArray and np.isinf(host(g)[0]) and host(g)[1] == 0.25
    said = [str(s.message) for s in seen if s.category is dr.NonFiniteDerivativeWarning]
    assert said and "another library's array" in said[0]
    for transform in (dr.jacfwd, dr.jacobian):  # forward mode and jacobian's own check
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            J = transform(lambda w: np.sqrt(w) * 2.0)(device(np.array([0.0, 4.0])))
        assert type(J) is DeviceArray and np.isinf(host(J)[0, 0]) and host(J)[1, 1] == 0.5
        assert any(s.category is dr.NonFiniteDerivativeWarning for s in seen)


# ------------------------------------------------------------------ the helpers
def test_foreign_array_and_zeros_as() -> None:
    x = device(W)
    assert foreign_array(x) is x
    for plain in (W, 1.0, np.float64(1.0), 3, np.float32(2.0)):
        assert foreign_array(plain) is None
    z = zeros_as((3,), np.float32, x)
    assert type(z) is DeviceArray and z.dtype == np.float32 and not host(z).any()
    z = zeros_as((2, 2), np.float64, x)  # another shape: np.zeros(like=)
    assert type(z) is DeviceArray and z.shape == (2, 2)
    assert type(zeros_as((2,), np.float64, W)) is np.ndarray
