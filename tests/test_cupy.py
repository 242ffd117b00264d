"""CuPy arrays through every transform: values and derivatives stay ``cupy.ndarray`` on
the input's device, equal to NumPy's. The guard against host copies is CuPy's own:
``cupy.ndarray.__array__`` raises ``TypeError`` on an implicit conversion, so any
``np.asarray`` of a device value inside dualrev fails these tests; the results' device is
checked as well.

The same checks run against a host-guard double in every session
(tests/test_duck_arrays.py, whose functions these reuse). These tests skip without CuPy
or without a GPU (saying which), and run where the workplace lends a device:
``benchmarks/device_check.sh`` installs CuPy into a virtual environment there and runs
this file with ``DUALREV_REQUIRE_EXTRAS=cupy``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.linalg as sla

import dualrev as dr
from dualrev.errors import ForeignArrayError
from dualrev.tree import tree_flatten
from tests.extras import need
from tests.test_duck_arrays import (
    DATA,
    VECTOR,
    W,
    f_complex,
    f_elementwise,
    f_linalg,
    f_matmul,
    f_reductions,
    f_select,
    f_shape,
    f_writes,
)

pytestmark = pytest.mark.extras

cp = need("cupy")
try:
    _devices = cp.cuda.runtime.getDeviceCount()
except Exception as e:  # noqa: BLE001  (no driver, no runtime: the same for these tests)
    _devices, _why = 0, f"{type(e).__name__}: {e}"
else:
    _why = "the CUDA runtime reports no device"
if not _devices:
    pytest.skip(f"CuPy is installed but there is no GPU ({_why}); these tests run where a "
                "device is lent (benchmarks/device_check.sh)", allow_module_level=True)

# scipy.special's ufuncs are left out: CuPy's __array_ufunc__ knows its own namespace's
# ufuncs (cupyx.scipy.special is separate), so what they do there is not promised.
SCALAR = [f_elementwise, f_reductions, f_matmul, f_writes, f_shape, f_linalg, f_select,
          f_complex]


def gpu(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: cp.asarray(v) for k, v in tree.items()}
    return cp.asarray(tree)


def same(got: Any, want: Any) -> None:
    g_leaves, g_def = tree_flatten(got)
    w_leaves, w_def = tree_flatten(want)
    assert g_def == w_def
    here = cp.cuda.Device()
    for g, w in zip(g_leaves, w_leaves, strict=True):
        assert type(g) is cp.ndarray, f"a {type(g).__name__} came back, not a cupy.ndarray"
        assert g.device == here
        np.testing.assert_allclose(g.get(), w, rtol=1e-10, atol=1e-12)  # (the test's copy)


def both(run: Any) -> None:
    same(run(gpu(W), gpu(DATA)), run(W, DATA))


@pytest.mark.parametrize("f", SCALAR, ids=lambda f: f.__name__)
def test_grad_value_and_grad_hvp_hessian(f: Any) -> None:
    v = np.array([0.5, -1.0, 2.0])
    both(lambda w, d: dr.grad(f)(w, d))
    both(lambda w, d: dr.value_and_grad(f)(w, d))
    both(lambda w, d: dr.hvp(f)(w, d, v if type(w) is np.ndarray else cp.asarray(v)))
    both(lambda w, d: dr.hessian(f)(w, d))


@pytest.mark.parametrize("f", VECTOR, ids=lambda f: f.__name__)
def test_jacobians_jvp_vjp(f: Any) -> None:
    both(lambda w, d: dr.jacfwd(f)(w, d))
    both(lambda w, d: dr.jacrev(f)(w, d))
    both(lambda w, d: dr.jacobian(f)(w, d))
    t = np.array([1.0, -0.5, 0.25])
    both(lambda w, d: dr.jvp(lambda w: f(w, d), (w,),
                             (t if type(w) is np.ndarray else cp.asarray(t),)))
    c = np.linspace(-1.0, 1.0, np.shape(f(W, DATA))[0])

    def pulled(w: Any, d: Any) -> Any:
        out, pullback = dr.vjp(f, w, d)
        return out, pullback(c if type(w) is np.ndarray else cp.asarray(c))
    both(pulled)


def test_vmap_and_nesting() -> None:
    def loss(w: Any, x: Any, y: Any) -> Any:
        return (np.tanh(x @ w) - y) ** 2 + np.sum(w ** 2)

    both(lambda w, d: dr.vmap(dr.grad(loss), in_axes=(None, 0, 0))(w, d["X"], d["y"]))
    both(lambda w, d: dr.grad(lambda w: np.sum(dr.grad(f_matmul)(w, d) ** 2))(w))
    both(lambda w, d: dr.jacfwd(dr.jacrev(f_elementwise))(w, d))


def test_float32_and_integers() -> None:
    g = dr.grad(lambda w: np.sum(np.sin(w) * w))(cp.asarray(W, dtype=cp.float32))
    assert type(g) is cp.ndarray and g.dtype == cp.float32
    w32 = W.astype(np.float32)
    np.testing.assert_allclose(g.get(), np.sin(w32) + w32 * np.cos(w32), rtol=1e-5)
    g = dr.grad(lambda w: np.sum(w ** 3))(cp.arange(3))
    assert type(g) is cp.ndarray and g.dtype == cp.float64
    np.testing.assert_array_equal(g.get(), [0.0, 3.0, 12.0])


def test_a_scipy_function_that_converts_refuses() -> None:
    with pytest.raises(ForeignArrayError, match=r"scipy\.linalg\.expm.*cupy"):
        dr.grad(lambda w: np.sum(sla.expm(np.outer(w, w))))(gpu(W))


def test_indices_computed_on_the_device_refuse() -> None:
    with pytest.raises(ForeignArrayError, match="index array"):
        dr.grad(lambda w: np.sum(np.sort(w) * np.arange(3.0)))(gpu(W))
