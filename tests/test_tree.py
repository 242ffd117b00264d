"""Pytrees: ravel_pytree of traced leaves, differentiable both ways."""

import numpy as np
import pytest

import dualrev as dr
from dualrev.testing import check_grads


def _model(p):
    # a model that flattens its traced parameters, as an optimizer wrapper would
    flat, unravel = dr.ravel_pytree({"w": p[:2] * p[2], "b": (p[2] ** 2, 3.0)})
    back = unravel(2.0 * flat)
    return np.sum(np.sin(flat)) + np.sum(back["w"] ** 2) * back["b"][0]


def _model_ref(p):
    w, b = p[:2] * p[2], p[2] ** 2
    return np.sum(np.sin(w)) + np.sin(b) + np.sin(3.0) + np.sum((2 * w) ** 2) * 2 * b


def test_ravel_pytree_of_traced_leaves_in_every_mode():
    # the example: a conversion error blaming the user's line
    p = np.array([0.3, -0.8, 1.1])
    assert _model(p) == pytest.approx(_model_ref(p), rel=1e-14)
    np.testing.assert_allclose(dr.grad(_model)(p), dr.grad(_model_ref)(p), rtol=1e-13)
    t = np.array([1.0, -0.5, 0.25])
    np.testing.assert_allclose(dr.jvp(_model, (p,), (t,))[1],
                               dr.jvp(_model_ref, (p,), (t,))[1], rtol=1e-13)
    np.testing.assert_allclose(dr.hessian(_model)(p), dr.hessian(_model_ref)(p), rtol=1e-12)
    ps = np.stack([p, -p, 2 * p])
    np.testing.assert_allclose(dr.vmap(_model)(ps), [_model_ref(v) for v in ps], rtol=1e-14)
    np.testing.assert_allclose(dr.vmap(dr.grad(_model))(ps),
                               [dr.grad(_model_ref)(v) for v in ps], rtol=1e-13)
    check_grads(_model, (p,), order=2)


def test_ravel_pytree_mixes_traced_and_plain_leaves_in_order():
    def f(x):
        flat, _ = dr.ravel_pytree([np.arange(2), {"x": x, "a": np.ones((1, 2))}])
        return flat

    x = np.array([5.0, 6.0])
    np.testing.assert_array_equal(f(x), [0, 1, 1, 1, 5, 6])  # dicts by sorted key
    J = dr.jacfwd(f)(x)
    np.testing.assert_array_equal(J, np.vstack([np.zeros((4, 2)), np.eye(2)]))
    np.testing.assert_array_equal(dr.jacrev(f)(x), J)


def test_ravel_pytree_keeps_a_complex_leaf():
    flat, unravel = dr.ravel_pytree({"r": np.array([1.0, 2.0]), "z": 1 - 2j})
    np.testing.assert_array_equal(flat, [1, 2, 1 - 2j])
    back = unravel(flat)
    assert back["r"].dtype == np.float64 and back["z"] == 1 - 2j
    g = dr.grad(lambda z: np.real(np.sum(dr.ravel_pytree({"a": 2.0, "z": z})[0] ** 2)))(1j)
    assert g == pytest.approx(2j)  # d Re(z^2) = Re(2z dz): under the pairing Re(g dz), 2z
