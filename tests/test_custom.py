"""custom_jvp and custom_vjp: used by every mode, nested, checked against finite
differences; stop_gradient."""

import numpy as np
import pytest

import dualrev as dr
from dualrev.testing import check_grads


@dr.custom_jvp
def log1pexp(x):
    return np.log1p(np.exp(x))


@log1pexp.defjvp
def _log1pexp_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return log1pexp(x), t * (1 - 1 / (1 + np.exp(x)))


def test_custom_jvp_is_stable_where_autodiff_of_the_body_is_not():
    with np.errstate(over="ignore"):
        g = dr.grad(lambda x: np.sum(log1pexp(x)))(np.array([800.0, -800.0, 0.0]))
        naive = dr.grad(lambda x: np.sum(np.log1p(np.exp(x))))(np.array([800.0]))
    np.testing.assert_allclose(g, [1.0, 0.0, 0.5])
    assert np.isnan(naive[0])  # exp overflow: inf / inf


def test_custom_jvp_all_modes_and_orders():
    x = np.array([-1.3, 0.2, 2.5])
    check_grads(log1pexp, (x,), order=3)
    sig = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(dr.jacfwd(log1pexp)(x), np.diag(sig), rtol=1e-14)
    np.testing.assert_allclose(dr.jacrev(log1pexp)(x), np.diag(sig), rtol=1e-14)
    np.testing.assert_allclose(dr.hessian(lambda x: np.sum(log1pexp(x)))(x),
                               np.diag(sig * (1 - sig)), rtol=1e-13)


def test_custom_jvp_rule_is_actually_used():
    @dr.custom_jvp
    def f(x):
        return x**2

    @f.defjvp
    def _(primals, tangents):
        return f(primals[0]), 10.0 * tangents[0]  # deliberately not 2x

    assert dr.grad(f)(3.0) == 10.0
    assert dr.jvp(f, (3.0,), (1.0,)) == (9.0, 10.0)


def test_custom_jvp_two_arguments_one_differentiated():
    @dr.custom_jvp
    def scaled(x, s):
        return x * s

    @scaled.defjvp
    def _(primals, tangents):
        (x, s), (tx, ts) = primals, tangents
        return scaled(x, s), tx * s + x * ts

    x, s = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    check_grads(scaled, (x, s), order=2)
    np.testing.assert_allclose(dr.grad(lambda s: np.sum(scaled(x, s)))(s), x)


# A stand-in for compiled code dualrev cannot see into: it refuses traced values.
def _opaque_cube(x):
    return np.asarray(x, dtype=float) ** 3


@dr.custom_vjp
def cube(x):
    return _opaque_cube(x)


def _cube_fwd(x):
    # Calling cube itself (not the opaque code) lets an outer transform record it too.
    return cube(x), (x,)


def _cube_bwd(res, g):
    (x,) = res
    return (g * 3 * x**2,)


cube.defvjp(_cube_fwd, _cube_bwd)


def test_custom_vjp_wraps_opaque_code():
    x = np.array([0.5, -1.0, 2.0])
    with pytest.raises(dr.TracerConversionError):
        dr.grad(lambda x: np.sum(_opaque_cube(x)))(x)
    np.testing.assert_allclose(dr.grad(lambda x: np.sum(cube(x)))(x), 3 * x**2)
    np.testing.assert_allclose(dr.jacrev(cube)(x), np.diag(3 * x**2))
    check_grads(cube, (x,), modes=("rev",))


def test_custom_vjp_nested_reverse_over_reverse():
    # The bwd rule is NumPy code, so grad of grad goes through it.
    x = np.array([0.5, -1.0, 2.0])
    h = dr.jacrev(dr.grad(lambda x: np.sum(cube(x))))(x)
    np.testing.assert_allclose(h, np.diag(6 * x))
    # d/da [a * d/dy (y a)^3 at y=1] = d/da [3 a^4] = 12 a^3
    assert dr.grad(lambda a: a * dr.grad(lambda y: np.sum(cube(y * a)))(1.0))(2.0) == 96.0


def test_custom_vjp_forward_mode_traces_the_body():
    @dr.custom_vjp
    def f(x, y):
        return np.sin(x) * y

    f.defvjp(lambda x, y: (f(x, y), (x, y)),
             lambda res, g: (g * np.cos(res[0]) * res[1], g * np.sin(res[0])))
    x, y = np.array([0.1, 0.7]), np.array([2.0, -1.0])
    check_grads(f, (x, y), order=2)
    np.testing.assert_allclose(dr.hessian(lambda x: np.sum(f(x, y)))(x),
                               np.diag(-np.sin(x) * y), rtol=1e-14)


def test_custom_vjp_bwd_must_return_a_tuple():
    @dr.custom_vjp
    def f(x):
        return x * 2

    f.defvjp(lambda x: (x * 2, None), lambda res, g: g * 2)
    with pytest.raises(dr.DualrevError, match="tuple of 1 cotangent"):
        dr.grad(f)(1.0)


def test_stop_gradient():
    f = lambda x: x * dr.stop_gradient(x)
    assert dr.grad(f)(3.0) == 3.0
    assert dr.jvp(f, (3.0,), (1.0,)) == (9.0, 3.0)
    # inside nested transforms it stops all levels
    assert dr.grad(dr.grad(lambda x: x**2 * dr.stop_gradient(x)))(2.0) == 2 * 2.0


def test_transposed_custom_jvp_keeps_the_imaginary_part():
    # reverse mode transposes the rule; a complex input's cotangent was cut to its real part
    @dr.custom_jvp
    def sq(z):
        return z * np.conj(z) + z**2

    @sq.defjvp
    def sq_jvp(primals, tangents):
        (z,), (dz,) = primals, tangents
        return sq(z), dz * np.conj(z) + z * np.conj(dz) + 2 * z * dz

    z = np.array([1 + 2j, 0.3 - 1j])
    check_grads(sq, (z,), order=2)
    # d(Re + Im) = Re((2 conj(z) + 2z - 2iz) dz) under the pairing Re(ct * t)
    g = dr.grad(lambda a: np.sum(np.real(sq(a)) + np.imag(sq(a))))(z)
    np.testing.assert_allclose(g, 2 * np.conj(z) + 2 * z * (1 - 1j), rtol=1e-14)
