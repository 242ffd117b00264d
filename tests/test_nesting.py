"""Nested transforms: no perturbation confusion, and mixed nestings against closed forms."""

import numpy as np
import pytest

import dualrev as dr


@pytest.mark.parametrize("x", [0.0, 1.0, -2.5, 7.0])
def test_perturbation_confusion_reverse(x):
    # d/dx [x * d/dy (x + y)] = d/dx [x * 1] = 1 at any point.
    f = lambda x: x * dr.grad(lambda y: x + y)(1.0)
    assert dr.grad(f)(x) == 1.0


@pytest.mark.parametrize("x", [0.0, 1.0, -2.5])
def test_perturbation_confusion_forward_and_mixed(x):
    inner_fwd = lambda x: dr.jvp(lambda y: x + y, (1.0,), (1.0,))[1]
    assert dr.jvp(lambda x: x * inner_fwd(x), (x,), (1.0,))[1] == 1.0
    assert dr.grad(lambda x: x * inner_fwd(x))(x) == 1.0
    assert dr.jacfwd(lambda x: x * dr.grad(lambda y: x + y)(1.0))(x) == 1.0
    # Siskind & Pearlmutter's example: d/dx [x * d/dy (x * y)] at y = 2 is 2x.
    g = lambda x: x * dr.grad(lambda y: x * y)(2.0)
    assert dr.grad(g)(x) == 2 * x
    assert dr.jvp(g, (x,), (1.0,))[1] == 2 * x


def test_grad_of_grad_of_grad():
    f = lambda x: np.sin(x) * x**2
    d3 = dr.grad(dr.grad(dr.grad(f)))
    x = 0.7
    # f''' = -cos(x) x^2 - 6 x sin(x) + 6 cos(x)
    expected = -np.cos(x) * x**2 - 6 * x * np.sin(x) + 6 * np.cos(x)
    np.testing.assert_allclose(d3(x), expected, rtol=1e-13)
    np.testing.assert_allclose(dr.jacfwd(dr.grad(dr.jacrev(f)))(x), expected, rtol=1e-13)
    np.testing.assert_allclose(dr.jacrev(dr.jacfwd(dr.jacfwd(f)))(x), expected, rtol=1e-13)


def test_jvp_of_grad_and_grad_of_jvp():
    f = lambda x: np.sum(np.exp(x) * x)
    x = np.array([0.2, -0.4, 1.1])
    v = np.array([1.0, 2.0, -1.0])
    # Hessian of sum(exp(x) x) is diag(exp(x) (x + 2)).
    H = np.diag(np.exp(x) * (x + 2))
    _, hv = dr.jvp(dr.grad(f), (x,), (v,))
    np.testing.assert_allclose(hv, H @ v, rtol=1e-13)
    gv = dr.grad(lambda x: dr.jvp(f, (x,), (v,))[1])(x)
    np.testing.assert_allclose(gv, H @ v, rtol=1e-13)


def test_closure_over_outer_tracer_in_inner_jacobian():
    # An inner Jacobian taken inside an outer gradient; the outer variable is a constant
    # to the inner one.
    def f(a):
        J = dr.jacfwd(lambda x: a * x**2)(np.array([1.0, 2.0]))
        return np.sum(J)

    # J = diag(2 a x) -> sum = 2a(1 + 2) = 6a
    assert dr.grad(f)(3.0) == 6.0
    assert dr.grad(lambda a: np.sum(dr.jacrev(lambda x: a * x**2)(np.array([1.0, 2.0]))))(3.0) \
        == 6.0


def test_hessian_vectorised_matches_loop():
    A = np.random.default_rng(0).standard_normal((4, 4))
    f = lambda x: np.sum(np.tanh(A @ x) ** 2) + np.prod(x)
    x = np.array([0.3, -0.2, 0.5, 0.1])
    H = dr.hessian(f)(x)
    cols = [dr.hvp(f)(x, e) for e in np.eye(4)]
    np.testing.assert_allclose(H, np.stack(cols, axis=1), rtol=1e-12, atol=1e-14)
