"""dualrev/bridges.py without PyTorch or JAX: importing dualrev imports neither, a bridge
to a missing library says which extra installs it, and the batching of callback
arguments (leading axes of the batch's size or 1) is dualrev.vmap's, checked against a
loop."""

import subprocess
import sys

import numpy as np
import pytest

import dualrev as dr
from dualrev.bridges import _batched
from dualrev.errors import DualrevError


def test_import_dualrev_imports_neither_torch_nor_jax():
    code = ("import sys, dualrev; dualrev.to_torch, dualrev.to_jax; "
            "print(sorted(m for m in ('torch', 'jax', 'jaxlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=str(__import__("pathlib").Path(__file__).parent.parent))
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name, extra", [("torch", "to_torch"), ("jax", "to_jax")])
def test_missing_peer_names_its_extra(monkeypatch, name, extra):
    monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    with pytest.raises(DualrevError, match=rf"dualrev\[{name}\]"):
        getattr(dr, extra)(np.sin)


def test_batched_callback_arguments_match_a_loop():
    def f(x, m):
        return np.tanh(m @ x), np.sum(x ** 2)

    rng = np.random.default_rng(0)
    call = _batched(f, (1, 2))
    x, m = rng.normal(size=3), rng.normal(size=(2, 3))
    # no batch axis: f itself
    for a, b in zip(call(x, m), f(x, m), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-15)
    # two leading batch axes (4, 5); m unbatched (axes of size 1), x batched
    xs = rng.normal(size=(4, 5, 3))
    out0, out1 = call(xs, m[None, None])
    assert out0.shape == (4, 5, 2) and out1.shape == (4, 5)
    for i in range(4):
        for j in range(5):
            r0, r1 = f(xs[i, j], m)
            np.testing.assert_allclose(out0[i, j], r0, rtol=1e-14)
            np.testing.assert_allclose(out1[i, j], r1, rtol=1e-14)
    # a batch axis broadcast from size 1 in one argument and the full size in the other
    ms = rng.normal(size=(1, 5, 2, 3))
    out0, _ = call(xs, ms)
    np.testing.assert_allclose(out0[3, 2], f(xs[3, 2], ms[0, 2])[0], rtol=1e-14)
    # nothing batched (every leading axis of size 1): f once, broadcast
    out0, out1 = call(x[None], m[None])
    np.testing.assert_allclose(out0[0], f(x, m)[0], rtol=1e-15)


def test_batched_empty_batch_has_the_outputs_shapes():
    call = _batched(lambda x, m: (m @ x,), (1, 2))
    (out,) = call(np.zeros((0, 3)), np.ones((1, 2, 3)))
    assert out.shape == (0, 2)


def branchy(x):
    """A branch on the value: dualrev.vmap refuses it (BatchedValueError)."""
    if np.sum(x) > 0:
        return (np.sum(np.sin(x) ** 2),)
    return (np.sum(x ** 3),)


def test_mapped_falls_back_to_a_loop_on_a_value_dependent_branch():
    from dualrev.bridges import _mapped

    xs = np.random.default_rng(1).normal(size=(3, 6))  # mapped along axis 1
    (out,) = _mapped(branchy, (1,), 6)(xs)
    np.testing.assert_allclose(out, [branchy(xs[:, i])[0] for i in range(6)], rtol=1e-15)
    assert np.sum(xs, axis=0).min() < 0 < np.sum(xs, axis=0).max()  # both branches taken
    # differentiable by dualrev, as the loop it is
    g = dr.grad(lambda xs: np.sum(_mapped(branchy, (1,), 6)(xs)[0]))(xs)
    ref = np.stack([dr.grad(lambda x: branchy(x)[0])(xs[:, i]) for i in range(6)], axis=1)
    np.testing.assert_allclose(g, ref, rtol=1e-14)
