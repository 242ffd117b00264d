"""dualrev.to_jax: a NumPy function differentiated by dualrev inside JAX (custom_vjp or
custom_jvp over pure_callback), checked against jax.grad of the same function written in
jax.numpy (x64) and against dualrev directly."""

import os

import numpy as np
import pytest

import dualrev as dr
from dualrev.errors import DualrevError
from tests.extras import need

pytestmark = pytest.mark.extras

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # the callbacks run on the host anyway
jax = need("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy


def model(x, y):
    return np.sin(x) * np.exp(y[:3]) + np.sum(y ** 2), np.tanh(x @ y[:3])


def model_jax(x, y):
    return jnp.sin(x) * jnp.exp(y[:3]) + jnp.sum(y ** 2), jnp.tanh(x @ y[:3])


def loss_of(f):
    def loss(x, y):
        a, b = f(x, y)
        return jnp.sum(a ** 2) + b
    return loss


def arrays(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [jnp.asarray(rng.normal(size=s)) for s in shapes]


def close(a, b, rtol=1e-12):
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=1e-13)


def test_grad_jit_value_and_grad_jacrev_against_jax_numpy():
    g = dr.to_jax(model)
    x, y = arrays(3, 4)
    ref = jax.grad(loss_of(model_jax), (0, 1))(x, y)
    close(jax.grad(loss_of(g), (0, 1))(x, y), ref)
    close(jax.jit(jax.grad(loss_of(g), (0, 1)))(x, y), ref)
    close(jax.value_and_grad(loss_of(g), (0, 1))(x, y),
          jax.value_and_grad(loss_of(model_jax), (0, 1))(x, y))
    close(jax.jacrev(g, (0, 1))(x, y), jax.jacrev(model_jax, (0, 1))(x, y))
    out, pull = jax.vjp(g, x, y)
    ct = (jnp.ones(3), jnp.asarray(2.0))
    close(pull(ct), dr.vjp(model, np.asarray(x), np.asarray(y))[1](
        tuple(np.asarray(c) for c in ct)))


@pytest.mark.parametrize("method", ["expand_dims", "broadcast_all", "sequential"])
def test_vmap_methods_agree_and_batch_in_one_call(method):
    calls = []

    def counted(x, y):
        calls.append(np.shape(x))
        return model(x, y)

    g = dr.to_jax(counted, vmap_method=method)
    (xs,) = arrays((5, 3), seed=1)
    (y,) = arrays(4, seed=2)
    g(xs[0], y)  # the signature's output shapes are found by a first call (a probe)
    calls.clear()
    out = jax.vmap(g, (0, None))(xs, y)
    close(out, jax.vmap(model_jax, (0, None))(xs, y))
    # "sequential" calls f per element; the others once for the batch, by dualrev.vmap
    assert len(calls) == (5 if method == "sequential" else 1)
    per_example = jax.vmap(jax.grad(loss_of(g), (0, 1)), (0, None))(xs, y)
    close(per_example, jax.vmap(jax.grad(loss_of(model_jax), (0, 1)), (0, None))(xs, y))
    # two nested vmaps: two leading batch axes reach the callback
    (xss,) = arrays((2, 5, 3), seed=3)
    close(jax.jit(jax.vmap(jax.vmap(g, (0, None)), (0, None)))(xss, y),
          jax.vmap(jax.vmap(model_jax, (0, None)), (0, None))(xss, y))


def test_forward_mode_refused_by_jax_in_vjp_mode_and_reverse_in_jvp_mode():
    x, y = arrays(3, 4, seed=4)
    g = dr.to_jax(model)
    with pytest.raises(TypeError, match="forward-mode"):
        jax.jvp(lambda x: g(x, y)[0], (x,), (jnp.ones(3),))
    with pytest.raises(TypeError, match="forward-mode"):
        jax.hessian(lambda x: loss_of(g)(x, y))(x)
    h = dr.to_jax(model, mode="jvp")
    close(jax.jacfwd(h, (0, 1))(x, y), jax.jit(jax.jacfwd(model_jax, (0, 1)))(x, y))
    close(jax.jit(lambda x: jax.jvp(lambda x: h(x, y), (x,), (jnp.ones(3),)))(x),
          jax.jvp(lambda x: model_jax(x, y), (x,), (jnp.ones(3),)))
    close(jax.vmap(jax.jacfwd(h), (0, None))(jnp.stack([x, 2 * x]), y),
          jax.jit(jax.vmap(jax.jacfwd(model_jax), (0, None)))(jnp.stack([x, 2 * x]), y))
    with pytest.raises(ValueError, match="transpose"):
        jax.grad(lambda x: h(x, y)[1])(x)


def test_pytrees_constants_kwargs_and_dtypes():
    def f(p, data, scale=1.0):
        assert isinstance(data["i"], np.ndarray) and data["i"].dtype.kind == "i"
        assert isinstance(data["x"], np.ndarray)  # a NumPy constant stays one
        return {"r": scale * np.sin(p["w"] * data["x"][data["i"]]) + p["b"]}

    g = dr.to_jax(f)
    p = {"w": jnp.array([0.1, 0.2, 0.3]), "b": jnp.asarray(0.5)}
    data = {"x": np.array([0.5, 1.0, 2.0, 3.0]), "i": jnp.array([3, 0, 2])}

    def loss(p):
        return jnp.sum(g(p, data, scale=2.0)["r"] ** 2)

    def loss_jax(p):
        r = 2.0 * jnp.sin(p["w"] * jnp.asarray(data["x"])[data["i"]]) + p["b"]
        return jnp.sum(r ** 2)

    close(jax.jit(jax.grad(loss))(p), jax.grad(loss_jax)(p))
    # float32 in, float32 out (the NumPy code computes in float64 inside)
    k = dr.to_jax(lambda x: np.sin(x) * np.float64(2.0))
    x32 = jnp.array([0.5, 1.5], dtype=jnp.float32)
    assert k(x32).dtype == jnp.float32
    gr = jax.grad(lambda x: jnp.sum(k(x)))(x32)
    assert gr.dtype == jnp.float32
    np.testing.assert_allclose(gr, 2 * np.cos([0.5, 1.5]), rtol=1e-6)


def test_complex_follows_jax_convention():
    def f(z):
        return np.sum(np.abs(np.sin(z) * z) ** 2)

    def f_jax(z):
        return jnp.sum(jnp.abs(jnp.sin(z) * z) ** 2)

    rng = np.random.default_rng(5)
    z = jnp.asarray(rng.normal(size=3) + 1j * rng.normal(size=3))
    close(jax.grad(dr.to_jax(f))(z), jax.grad(f_jax)(z))


def test_output_shapes_probe_and_out_shape():
    calls = []

    def f(m, v):
        calls.append(1)
        return np.linalg.solve(m, v)  # singular at a matrix of ones: the probe avoids it

    g = dr.to_jax(f)
    rng = np.random.default_rng(6)
    m = jnp.asarray(rng.normal(size=(3, 3)) + 3 * np.eye(3))
    v = jnp.asarray(rng.normal(size=3))
    jf = jax.jit(g)
    close(jf(m, v), jnp.linalg.solve(m, v))
    jf(m + 1.0, v)
    assert len(calls) == 3  # one probe for the signature, then one call each
    close(jax.grad(lambda m: jnp.sum(g(m, v) ** 2))(m),
          jax.grad(lambda m: jnp.sum(jnp.linalg.solve(m, v) ** 2))(m))

    def needs_positive_definite(a):
        if np.any(np.linalg.eigvalsh(a) < 0.6):  # fails at the probe point
            raise ValueError("not positive definite enough")
        return np.linalg.cholesky(a)

    a = jnp.asarray(4 * np.eye(3) + 0.1)
    with pytest.raises(DualrevError, match="out_shape="):
        dr.to_jax(needs_positive_definite)(a)
    h = dr.to_jax(needs_positive_definite,
                  out_shape=lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype))
    close(jax.jit(h)(a), jnp.linalg.cholesky(a))


def test_bad_options_refused():
    with pytest.raises(DualrevError, match="mode"):
        dr.to_jax(model, mode="both")
    with pytest.raises(DualrevError, match="vmap_method"):
        dr.to_jax(model, vmap_method="legacy_vectorized")


def test_reverse_over_reverse_and_forward_over_forward():
    """The backward pass (the forward rule) is bridged in turn: jacrev of jacrev and
    jacfwd of jacfwd give Hessians, equal to jax.numpy's and dualrev's."""

    def f(x):
        return np.sum(np.sin(x) ** 3) + np.prod(x[:2])

    def f_jax(x):
        return jnp.sum(jnp.sin(x) ** 3) + jnp.prod(x[:2])

    (x,) = arrays(4, seed=7)
    expected = jax.jit(jax.hessian(f_jax))(x)
    np.testing.assert_allclose(dr.hessian(f)(np.asarray(x)), expected, rtol=1e-12)
    close(jax.jit(jax.jacrev(jax.jacrev(dr.to_jax(f))))(x), expected)
    close(jax.jacfwd(jax.jacfwd(dr.to_jax(f, mode="jvp")))(x), expected)
    g = dr.to_jax(lambda v: f(v * v[::-1]))
    xs = jnp.stack([x, 2 * x])
    close(jax.vmap(jax.grad(lambda v: jnp.sum(jax.grad(g)(v) ** 2)))(xs),
          jax.jit(jax.vmap(jax.grad(lambda v: jnp.sum(jax.grad(
              lambda w: f_jax(w * w[::-1]))(v) ** 2))))(xs))


def test_integer_arrays_under_jit_and_vmap():
    """Labels as an integer JAX array: an operand of the callback (traced by jax.jit, mapped
    by jax.vmap), not differentiated (float0 cotangent)."""

    def nll(w, x, labels):
        logits = x @ w
        logp = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
        return -np.mean(logp[np.arange(len(labels)), labels])

    def nll_jax(w, x, labels):
        logits = x @ w
        logp = logits - jnp.log(jnp.sum(jnp.exp(logits), axis=1, keepdims=True))
        return -jnp.mean(logp[jnp.arange(len(labels)), labels])

    rng = np.random.default_rng(8)
    w, x = arrays((3, 2), (4, 3), seed=9)
    labels = jnp.asarray(rng.integers(0, 2, 4))
    g = dr.to_jax(nll)
    close(jax.jit(jax.grad(g, (0, 1)))(w, x, labels),
          jax.jit(jax.grad(nll_jax, (0, 1)))(w, x, labels))
    xb, lb = x.reshape(2, 2, 3), labels.reshape(2, 2)  # per-batch gradients
    close(jax.jit(jax.vmap(jax.grad(g), (None, 0, 0)))(w, xb, lb),
          jax.jit(jax.vmap(jax.grad(nll_jax), (None, 0, 0)))(w, xb, lb))
    def curvature(fn):  # second order through the integer operand
        return jax.grad(lambda w: jnp.sum(jax.grad(fn)(w, x, labels) ** 2))(w)

    close(curvature(g), jax.jit(lambda: curvature(nll_jax))())
    h = dr.to_jax(nll, mode="jvp")
    close(jax.jit(jax.jacfwd(h))(w, x, labels), jax.jit(jax.jacfwd(nll_jax))(w, x, labels))


def test_a_function_writing_into_its_argument():
    def f(x):
        x *= 2.0  # in place, on the NumPy side
        return np.sum(x ** 2)

    g = dr.to_jax(f)
    x = jnp.array([1.0, 2.0])
    assert float(g(x)) == pytest.approx(20.0)
    assert float(jax.jit(g)(x)) == pytest.approx(20.0)
    np.testing.assert_allclose(jax.grad(g)(x), 8.0 * np.array([1.0, 2.0]), rtol=1e-14)
    assert np.asarray(x).tolist() == [1.0, 2.0]


def test_vmap_of_a_value_dependent_branch_loops():
    def f(x):
        if np.sum(x) > 0:
            return np.sum(np.sin(x) ** 2)
        return np.sum(x ** 3)

    def f_jax(x):
        return jnp.where(jnp.sum(x) > 0, jnp.sum(jnp.sin(x) ** 2), jnp.sum(x ** 3))

    (xs,) = arrays((6, 3), seed=10)
    assert (xs.sum(1) > 0).any() and (xs.sum(1) < 0).any()
    close(jax.jit(jax.vmap(jax.grad(dr.to_jax(f))))(xs), jax.jit(jax.vmap(jax.grad(f_jax)))(xs))


def test_integer_outputs_pass_through_without_derivative():
    def f(x):
        return np.sum(x ** 2), np.argmax(x), x * 3.0

    x = jnp.array([1.0, 3.0, 2.0])
    g = dr.to_jax(f)
    a, i, b = g(x)
    assert i.dtype.kind == "i" and int(i) == 1
    close(jax.jit(jax.grad(lambda x: g(x)[0] + g(x)[2].sum()))(x), 2 * x + 3.0)
    close(jax.jacrev(jax.jacrev(lambda x: g(x)[0]))(x), 2 * jnp.eye(3))
    close(jax.vmap(jax.grad(lambda x: g(x)[0]))(jnp.eye(3)), 2 * jnp.eye(3))
    h = dr.to_jax(f, mode="jvp")
    out, tangent = jax.jvp(h, (x,), (jnp.ones(3),))
    assert tangent[1].dtype == jax.dtypes.float0
    close((tangent[0], tangent[2]), (2 * jnp.sum(x), jnp.full(3, 3.0)))
    close(jax.jacfwd(jax.jacfwd(lambda x: h(x)[0]))(x), 2 * jnp.eye(3))
