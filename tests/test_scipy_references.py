"""Whole gradients and Jacobians against SciPy's own finite-difference tools:
scipy.optimize.approx_fprime and scipy.differentiate.jacobian."""

import numpy as np
import pytest
import scipy.optimize as so
from scipy.differentiate import jacobian as scipy_jacobian

import dualrev as dr

rng = np.random.default_rng(21)
A = rng.standard_normal((4, 4)) / 2
X = rng.standard_normal((10, 4))
y = rng.standard_normal(10)

def rosen(x):
    # (written out here; scipy.optimize.rosen itself is dispatched too: tests/catalogue)
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


SCALAR = {
    "rosenbrock": (rosen, rng.uniform(-1, 1, 6)),
    "mlp_loss": (lambda w: np.mean((np.tanh(X @ w[:4]) * w[4] - y) ** 2),
                 rng.standard_normal(5)),
    "logdet": (lambda v: np.linalg.slogdet(np.eye(3) * 3 + np.outer(v, v))[1],
               rng.standard_normal(3)),
    "logsumexp_loop": (lambda v: np.log(sum(np.exp(v[i]) for i in range(len(v)))),
                       rng.standard_normal(4)),
}


@pytest.mark.parametrize("name", sorted(SCALAR))
def test_gradient_against_approx_fprime(name):
    f, x = SCALAR[name]
    reference = so.approx_fprime(x, f, 1e-7)
    np.testing.assert_allclose(dr.grad(f)(x), reference, rtol=1e-5, atol=1e-6)


VECTOR = {
    # functions vectorised along trailing axes, as scipy.differentiate.jacobian requires
    "tanh_Ax": lambda x: np.tanh(np.tensordot(A, x, axes=1)),
    "softmax": lambda x: np.exp(x) / np.sum(np.exp(x), axis=0),
    "cumprod": lambda x: np.cumprod(x, axis=0),
}


@pytest.mark.parametrize("name", sorted(VECTOR))
def test_jacobian_against_scipy_differentiate(name):
    f = VECTOR[name]
    x = rng.uniform(0.2, 1.0, 4)
    reference = scipy_jacobian(f, x).df
    for jac in (dr.jacfwd, dr.jacrev, dr.jacobian):
        np.testing.assert_allclose(jac(f)(x), reference, rtol=1e-9, atol=1e-11)
