"""Complex inputs and intermediates, with JAX's convention: cotangents pair with tangents
as Re(ct * t); grad(|z|^2) = 2 conj(z); holomorphic=True gives f'(z)."""

import numpy as np
import pytest

import dualrev as dr
from dualrev.testing import check_grads

z = np.array([1.0 + 2.0j, -0.5 + 0.3j, 0.7 - 1.1j])

CASES = {
    "exp": np.exp, "log": np.log, "sqrt": np.sqrt, "sin": np.sin, "tanh": np.tanh,
    "square": lambda z: z * z + 1 / z, "conj": np.conj, "conj_method": lambda z: z.conj() * z,
    "real": np.real, "imag": np.imag, "real_attr": lambda z: z.real * z.imag,
    "abs": np.abs, "angle": np.angle, "power": lambda z: z**2.5,
    "mixed": lambda z: np.exp(z) * np.log(z) + np.sqrt(z) * np.conj(z) + np.abs(z),
    "matmul": lambda z: np.array([[1.0, 2.0j, 0.5], [0.0, 1.0, -1.0j]]) @ z,
    "sum_mean": lambda z: np.sum(z * z) + np.mean(np.abs(z)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_complex_functions_against_finite_differences(name):
    check_grads(CASES[name], (z,), order=2, rtol=1e-6, atol=1e-8)


def test_jax_convention_for_real_valued_functions():
    w = 1.0 + 1.0j
    assert dr.grad(lambda z: np.abs(z) ** 2)(w) == 2 * np.conj(w)
    # f = Re(z^2) = x^2 - y^2: (df/dx) - i (df/dy) = 2x + 2iy = 2z
    assert dr.grad(lambda z: np.real(z * z))(w) == 2 * w
    g = dr.grad(lambda z: np.sum(np.angle(z)))(z)
    r2 = np.abs(z) ** 2
    np.testing.assert_allclose(g, -z.imag / r2 - 1j * z.real / r2, rtol=1e-14)


def test_holomorphic():
    np.testing.assert_allclose(dr.grad(np.exp, holomorphic=True)(1 + 1j), np.exp(1 + 1j))
    np.testing.assert_allclose(dr.grad(lambda z: z**3, holomorphic=True)(2 - 1j),
                               3 * (2 - 1j) ** 2)
    with pytest.raises(dr.DualrevError, match="holomorphic=True"):
        dr.grad(np.exp)(1 + 1j)


def test_real_input_through_complex_intermediates():
    x = np.array([0.3, 0.7])
    g = dr.grad(lambda x: np.sum(np.abs(np.exp(1j * x) * x)))(x)
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, np.sign(x))
    f = lambda x: np.real(np.exp(1j * x) * x)
    np.testing.assert_allclose(dr.jacfwd(f)(x), dr.jacrev(f)(x), rtol=1e-14)
    check_grads(f, (x,), order=2)


def test_complex_tangents_and_cotangents():
    y, t = dr.jvp(np.sin, (z,), (1j * np.ones(3),))
    np.testing.assert_allclose(t, 1j * np.cos(z))
    _, pullback = dr.vjp(np.sin, z)
    np.testing.assert_allclose(pullback(np.ones(3, dtype=complex))[0], np.cos(z))


def test_casts_between_real_and_complex():
    x = np.array([0.3, -1.2, 0.8])
    check_grads(lambda a: np.abs(a.astype(complex) * (1 + 2j)) ** 2, (x,), order=2)
    g = dr.grad(lambda a: np.sum(np.real(a.astype(np.complex128) * 1j * a)))(x)
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, np.zeros(3))  # Re(i x^2) = 0


def test_abs_at_complex_zero_has_nondiff_ufunc():
    # JAX's convention (abs'(0) = 0, as for reals), not 0/0 = nan; the guard keeps the
    # second derivative finite too
    z = np.array([0j, 3 + 4j])
    np.testing.assert_allclose(dr.grad(lambda a: np.sum(np.abs(a)))(z), [0, 0.6 - 0.8j],
                               rtol=1e-15, atol=0)
    _, t = dr.jvp(np.abs, (z,), (np.array([1 + 2j, 1j]),))
    np.testing.assert_allclose(t, [0.0, 0.8], rtol=1e-15, atol=0)
    assert np.all(np.isfinite(dr.hessian(lambda x: np.abs(x[0] + 1j * x[1]))(np.zeros(2))))


@pytest.mark.jax
def test_abs_at_complex_zero_matches_jax():
    from tests.jaxref import jax_grad, jax_modules

    _, jnp = jax_modules()
    z = np.array([0j, 3 + 4j, -1j])
    np.testing.assert_allclose(dr.grad(lambda a: np.sum(np.abs(a) * np.arange(1.0, 4.0)))(z),
                               jax_grad(lambda a: jnp.sum(jnp.abs(a) * jnp.arange(1.0, 4.0)),
                                        jnp.asarray(z)), rtol=1e-14)
