"""The transforms' conventions: shapes, argnums, has_aux, pytrees, mode choice."""

import numpy as np
import pytest

import dualrev as dr
from tests.helpers import check_all

rng = np.random.default_rng(5)
x3 = rng.standard_normal(3)
W = rng.standard_normal((3, 3))


def f(x, W):
    return np.sum(np.tanh(W @ x) ** 2) + x[0] * np.exp(-x[1])


def grad_f_closed(x, W):
    t = np.tanh(W @ x)
    g = W.T @ (2 * t * (1 - t**2))
    g[0] += np.exp(-x[1])
    g[1] -= x[0] * np.exp(-x[1])
    return g


def test_grad_closed_form_and_argnums():
    np.testing.assert_allclose(dr.grad(f)(x3, W), grad_f_closed(x3, W), rtol=1e-13)
    gx, gW = dr.grad(f, argnums=(0, 1))(x3, W)
    np.testing.assert_allclose(gx, grad_f_closed(x3, W), rtol=1e-13)
    assert gW.shape == W.shape
    t = np.tanh(W @ x3)
    np.testing.assert_allclose(gW, np.outer(2 * t * (1 - t**2), x3), rtol=1e-13)
    np.testing.assert_allclose(dr.grad(f, argnums=-1)(x3, W), gW, rtol=1e-15)


def test_value_and_grad_and_aux():
    v, g = dr.value_and_grad(f)(x3, W)
    assert v == f(x3, W)
    (v2, g2), aux = dr.value_and_grad(lambda x: (f(x, W), {"x0": x[0]}), has_aux=True)(x3)
    assert v2 == v and aux["x0"] == x3[0] and type(aux["x0"]) is not dr.Traced
    np.testing.assert_array_equal(g, g2)
    g3, aux3 = dr.grad(lambda x: (f(x, W), 7), has_aux=True)(x3)
    np.testing.assert_array_equal(g3, g)
    assert aux3 == 7


def test_jvp_vjp_consistent():
    v, dW = rng.standard_normal(3), rng.standard_normal((3, 3))
    y, t = dr.jvp(f, (x3, W), (v, dW))
    assert y == f(x3, W)
    y2, pullback = dr.vjp(f, x3, W)
    gx, gW = pullback(1.0)
    np.testing.assert_allclose(t, gx @ v + np.sum(gW * dW), rtol=1e-12)
    # The pullback can be called again.
    gx2, _ = pullback(2.0)
    np.testing.assert_allclose(gx2, 2 * gx, rtol=1e-15)


def g(x):
    return np.tanh(W[:2] @ x) * x[0]


def test_jacobian_shapes_and_modes():
    jf, jr, j = dr.jacfwd(g)(x3), dr.jacrev(g)(x3), dr.jacobian(g)(x3)
    assert jf.shape == (2, 3)
    np.testing.assert_allclose(jf, jr, rtol=1e-13)
    np.testing.assert_allclose(j, jr, rtol=1e-13)
    M = rng.standard_normal((2, 3))
    J = dr.jacobian(lambda m: np.sin(m) @ np.ones((3, 4)))(M)
    assert J.shape == (2, 4, 2, 3)
    np.testing.assert_allclose(J, dr.jacfwd(lambda m: np.sin(m) @ np.ones((3, 4)))(M))
    # wide (more outputs than inputs) goes forward, and agrees
    h = lambda x: np.outer(x, x).ravel()
    np.testing.assert_allclose(dr.jacobian(h)(x3), dr.jacrev(h)(x3), rtol=1e-14)


def test_jacobian_tuple_argnums():
    a, b = rng.standard_normal(3), rng.standard_normal(2)
    fn = lambda a, b: np.outer(a, b)
    for jac in (dr.jacfwd, dr.jacrev, dr.jacobian):
        ja, jb = jac(fn, argnums=(0, 1))(a, b)
        assert ja.shape == (3, 2, 3) and jb.shape == (3, 2, 2)
        np.testing.assert_allclose(ja, np.einsum("ik,j->ijk", np.eye(3), b))
        np.testing.assert_allclose(jb, np.einsum("i,jk->ijk", a, np.eye(2)))


def test_scalar_input_and_output():
    assert dr.grad(np.sin)(0.5) == np.cos(0.5)
    assert np.shape(dr.jacfwd(np.sin)(0.5)) == ()
    assert np.shape(dr.jacrev(lambda x: np.sin(x) * np.ones(2))(0.5)) == (2,)
    np.testing.assert_allclose(dr.jacfwd(lambda x: x * np.arange(3.0))(2.0), np.arange(3.0))


def test_integer_inputs_promote_to_float():
    assert dr.grad(lambda x: x**2)(3) == 6.0
    np.testing.assert_array_equal(dr.grad(lambda x: np.sum(x**2))(np.arange(3)), [0, 2, 4])


def test_hessian_and_hvp():
    H = dr.hessian(f)(x3, W)
    assert H.shape == (3, 3)
    np.testing.assert_allclose(H, H.T, rtol=1e-12)
    np.testing.assert_allclose(H, dr.jacfwd(dr.grad(f))(x3, W), rtol=1e-13)
    np.testing.assert_allclose(H, dr.jacrev(dr.grad(f))(x3, W), rtol=1e-12)
    np.testing.assert_allclose(H, dr.jacfwd(dr.jacfwd(f))(x3, W), rtol=1e-12)
    v = rng.standard_normal(3)
    np.testing.assert_allclose(dr.hvp(f)(x3, W, v), H @ v, rtol=1e-12)
    # Hessian of a closed form: f = sum(x^3) -> diag(6 x)
    np.testing.assert_allclose(dr.hessian(lambda x: np.sum(x**3))(x3), np.diag(6 * x3))
    check_all(lambda x: dr.grad(f)(x, W), (x3,), order=1)


def test_hessian_of_vector_output_shape():
    H = dr.hessian(lambda x: np.sin(x) * x[0])(x3)
    assert H.shape == (3, 3, 3)


def test_pytree_arguments_and_outputs():
    params = {"W": rng.standard_normal((2, 3)), "b": rng.standard_normal(2)}

    def loss(p, x):
        return np.sum(np.tanh(p["W"] @ x + p["b"]) ** 2)

    gp = dr.grad(loss)(params, x3)
    assert set(gp) == {"W", "b"} and gp["W"].shape == (2, 3)
    t = np.tanh(params["W"] @ x3 + params["b"])
    d = 2 * t * (1 - t**2)
    np.testing.assert_allclose(gp["b"], d, rtol=1e-13)
    np.testing.assert_allclose(gp["W"], np.outer(d, x3), rtol=1e-13)
    out = dr.jacfwd(lambda x: (x[0] * x, {"s": np.sum(x)}))(x3)
    assert out[0].shape == (3, 3) and out[1]["s"].shape == (3,)
    out_r = dr.jacrev(lambda x: (x[0] * x, {"s": np.sum(x)}))(x3)
    np.testing.assert_allclose(out_r[0], out[0])
    np.testing.assert_allclose(out_r[1]["s"], np.ones(3))
    y, t = dr.jvp(lambda p: p[0] * p[1], ((1.0, 2.0),), ((1.0, 0.0),))
    assert (y, t) == (2.0, 2.0)


def test_output_independent_of_input_gives_zeros():
    assert dr.grad(lambda x: 3.0)(1.0) == 0.0
    np.testing.assert_array_equal(dr.jacrev(lambda x: np.ones(2))(x3), np.zeros((2, 3)))
    np.testing.assert_array_equal(dr.jacfwd(lambda x: np.ones(2))(x3), np.zeros((2, 3)))


def test_shared_weights_sum_their_gradients():
    # The same input used twice: both paths' gradients are summed.
    w = 1.5
    assert dr.grad(lambda w: w * w)(w) == 2 * w
    np.testing.assert_allclose(dr.grad(lambda w: np.sin(w) * np.cos(w) + w)(w), np.cos(2 * w) + 1,
                               rtol=1e-14)


def test_grad_fast_path_falls_back_to_the_general_checks():
    # float64 argument: the lean path; every unusual output still gets the general checks
    with pytest.raises(dr.DualrevError, match="real-valued output"):
        dr.grad(lambda x: np.exp(1j * x))(1.0)
    with pytest.raises(dr.DualrevError, match="scalar output"):
        dr.grad(lambda x: x * np.ones(2))(1.0)
    assert dr.grad(lambda x: 2.0)(1.0) == 0.0
    outer = 3.0
    assert dr.grad(lambda a: a * dr.grad(lambda x: outer * a)(1.0))(2.0) == 0.0
    v, g = dr.value_and_grad(lambda x, c: np.sum(x * c), 1)(np.ones(2), np.array([1.0, 2.0]))
    assert v == 3.0 and np.array_equal(g, [1.0, 1.0])


@pytest.mark.jax
def test_readme_function_agrees_with_jax():
    # The README's example, differentiated by JAX (x64) on the same input: gradient,
    # Hessian and the complex convention of the common brief (cotangents pair as Re(ct t)).
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy

    def f(x, W, m=np):
        return m.sum(m.tanh(W @ x) ** 2) + x[0] * m.exp(-x[1])

    rng = np.random.default_rng(10)
    x, W = rng.standard_normal(3), rng.standard_normal((3, 3))
    for ours, theirs in ((dr.grad(f, argnums=(0, 1)), jax.grad(f, argnums=(0, 1))),
                         (dr.hessian(f), jax.hessian(f))):
        for a, b in zip(ours(x, W), theirs(jnp.asarray(x), jnp.asarray(W), jnp), strict=True):
            np.testing.assert_allclose(a, np.asarray(b), rtol=1e-12, atol=1e-14)
    z = 1.0 + 2.0j
    assert dr.grad(lambda z: abs(z) ** 2)(z) == complex(jax.grad(lambda z: abs(z) ** 2)(z))


def test_jacfwd_of_complex_input_needs_holomorphic_like_jax():
    # its real basis tangents see only d/dRe(z): for |z|^2 that disagreed with jacrev
    z = np.array([1 + 2j, 0.5 - 1j])
    f = lambda a: np.abs(a) ** 2
    with pytest.raises(dr.DualrevError, match="holomorphic=True"):
        dr.jacfwd(f)(z)
    with pytest.raises(dr.DualrevError, match="holomorphic=True"):
        dr.hessian(lambda a: np.sum(f(a)))(z)
    np.testing.assert_allclose(dr.jacrev(f)(z), np.diag(2 * np.conj(z)), rtol=1e-15)
    np.testing.assert_allclose(dr.jacobian(f)(z), dr.jacrev(f)(z), rtol=1e-15)
    # a holomorphic function: forward and reverse agree on f'(z)
    h = lambda a: a**3
    np.testing.assert_allclose(dr.jacfwd(h, holomorphic=True)(z), np.diag(3 * z**2))
    np.testing.assert_allclose(dr.jacrev(h, holomorphic=True)(z), np.diag(3 * z**2))
    np.testing.assert_allclose(dr.jacobian(h, holomorphic=True)(z), np.diag(3 * z**2))
    np.testing.assert_allclose(dr.hessian(lambda a: np.sum(a**3), holomorphic=True)(z),
                               np.diag(6 * z))
    with pytest.raises(dr.DualrevError, match="complex inputs"):
        dr.jacfwd(h, holomorphic=True)(z.real)


@pytest.mark.jax
def test_jacrev_of_complex_input_matches_jax():
    from tests.jaxref import jax_modules

    jax, jnp = jax_modules()
    z = np.array([1 + 2j, 0.5 - 1j, -0.3j])
    f = lambda xp, a: xp.abs(a) ** 2 + xp.real(a * a[::-1])
    np.testing.assert_allclose(dr.jacrev(lambda a: f(np, a))(z),
                               np.asarray(jax.jacrev(lambda a: f(jnp, a))(jnp.asarray(z))),
                               rtol=1e-14)
    with pytest.raises(TypeError, match="holomorphic=True"):
        jax.jacfwd(lambda a: f(jnp, a))(jnp.asarray(z))  # what dualrev now mirrors
