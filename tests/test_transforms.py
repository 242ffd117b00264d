"""The transforms' conventions: shapes, argnums, has_aux, pytrees, mode choice."""

import gc
import threading

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
    (v2, aux), g2 = dr.value_and_grad(lambda x: (f(x, W), {"x0": x[0]}), has_aux=True)(x3)
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


# ------------------------------------------------------------------ tracer lifetime
def _grad_transforms():
    return {
        "grad": lambda f, x: dr.grad(lambda x: np.sum(f(x)))(x),
        "value_and_grad": lambda f, x: dr.value_and_grad(lambda x: np.sum(f(x)))(x),
        "jacrev": lambda f, x: dr.jacrev(f)(x),
        "vjp": lambda f, x: dr.vjp(f, x),
        "jvp": lambda f, x: dr.jvp(f, (x,), (np.ones_like(x),)),
        "jacfwd": lambda f, x: dr.jacfwd(f)(x),
    }


@pytest.mark.parametrize("name", list(_grad_transforms()))
@pytest.mark.parametrize("x", [2.0, np.array([1.0, 2.0])])
def test_escaped_tracer_stored_in_a_closure_raises(name, x):
    leaked = []

    def f(x):
        leaked.append(x)
        return x * x

    _grad_transforms()[name](f, x)
    # the scalar operator fast path, the ufunc path, indexing and a traced pair
    for use in (lambda v: v * 3.0, lambda v: 3.0 + v, np.sin, lambda v: v + v,
                lambda v: v.sum()):
        with pytest.raises(dr.EscapedTracerError, match=f"traced by {name} was used"):
            use(leaked[0])


def test_escaped_tracer_from_a_generator_raises():
    gens = []

    def f(x):
        def powers():
            for k in range(3):
                yield x**k

        gens.append(powers())
        return x * 2.0

    assert dr.grad(f)(1.5) == 2.0
    with pytest.raises(dr.EscapedTracerError, match="generator"):
        next(gens[0])


def test_escaped_tracer_returned_through_aux_object_raises():
    class Box:
        def __init__(self, v):
            self.v = v

    (_, box), g = dr.value_and_grad(lambda x: (x * x, Box(x)), has_aux=True)(3.0)
    assert g == 6.0
    with pytest.raises(dr.EscapedTracerError, match="stop_gradient"):
        box.v * 2.0


def test_inner_tracer_leaked_into_outer_grad_raises():
    # Used to make the outer grad return 0.0: the leaked value was a constant to it.
    leaked = []

    def inner(y):
        leaked.append(y)
        return y * y

    def outer(x):
        dr.grad(inner)(x)
        return leaked[-1] * x

    with pytest.raises(dr.EscapedTracerError, match="traced by grad"):
        dr.grad(outer)(3.0)
    with pytest.raises(dr.EscapedTracerError, match="the output of the function given to grad"):
        dr.grad(lambda x: (dr.grad(inner)(x), leaked[-1])[1])(3.0)
    with pytest.raises(dr.EscapedTracerError, match="given to jacfwd"):
        dr.jacfwd(lambda x: (dr.grad(inner)(x), leaked[-1])[1])(3.0)
    # The legitimate nesting is untouched: d/dx [x * d/dy y^2 at y = x] = 4x.
    assert dr.grad(lambda x: x * dr.grad(inner)(x))(3.0) == 12.0


def test_finished_tape_does_not_grow_and_is_emptied():
    leaked = []

    def f(x):
        leaked.append(x)
        return np.sum(np.sin(x) * x)

    dr.grad(f)(np.ones(3))
    tape = leaked[0]._trace
    assert tape.nodes == []  # the intermediates are not kept alive by the escaped value
    for _ in range(3):
        with pytest.raises(dr.EscapedTracerError):
            leaked[0] * 2.0
    assert tape.nodes == []
    with pytest.raises(dr.EscapedTracerError):
        tape.input(1.0)


def test_vjp_pullback_still_runs_after_its_tape_finished():
    x = np.array([0.3, 0.7])
    _, pullback = dr.vjp(lambda x: np.sin(x) * x, x)
    np.testing.assert_allclose(pullback(np.ones(2))[0], np.cos(x) * x + np.sin(x), rtol=1e-15)
    # ... and differentiably so, inside a later transform
    h = dr.grad(lambda c: np.sum(pullback(c * np.ones(2))[0]))(2.0)
    np.testing.assert_allclose(h, np.sum(np.cos(x) * x + np.sin(x)), rtol=1e-15)


# ------------------------------------------------------------------ arguments
def test_repeated_argnums_are_refused():
    f2 = lambda x, y: x * x * y
    for T in (dr.grad, dr.value_and_grad, dr.jacfwd, dr.jacrev, dr.jacobian, dr.hessian):
        with pytest.raises(dr.DualrevError, match=r"argnums=\(0, 0\) names the same argument"):
            T(f2, argnums=(0, 0))(3.0, 2.0)
    with pytest.raises(dr.DualrevError, match="same argument"):
        dr.grad(f2, argnums=(1, -1))(3.0, 2.0)


def test_jvp_tangent_with_other_dict_keys_is_refused():
    f1 = lambda d: d["a"] * 2.0 + d["b"] * 3.0
    with pytest.raises(dr.DualrevError, match=r"primals are \(\{'a': \*, 'b': \*\},\) and the "
                                              r"tangents \(\{'a': \*, 'c': \*\},\)"):
        dr.jvp(f1, ({"a": 1.0, "b": 1.0},), ({"a": 1.0, "c": 0.0},))
    with pytest.raises(dr.DualrevError, match="same structure"):
        dr.jvp(lambda p: p[0] * p[1][0], ((1.0, (2.0,)),), (((1.0,), 2.0),))
    with pytest.raises(dr.DualrevError, match="same structure"):
        dr.hvp(lambda d: d["a"] ** 2 * d["b"])({"a": 1.0, "b": 2.0}, {"a": 1.0, "z": 0.0})
    # the matching structure pairs by key, not by position
    assert dr.jvp(f1, ({"b": 1.0, "a": 1.0},), ({"b": 1.0, "a": 0.0},)) == (5.0, 3.0)


@pytest.mark.parametrize("out", [None, "s", "float64", object(), b"x"])
def test_non_numeric_output_gives_a_clear_error(out):
    for call in (lambda: dr.grad(lambda x: out)(1.0),
                 lambda: dr.grad(lambda x: out)(np.ones(2)),
                 lambda: dr.value_and_grad(lambda x: out)(np.float32(1.0))):
        with pytest.raises(dr.DualrevError, match="None" if out is None else "returned a"):
            call()
    if out is not None:
        for T in (dr.jacfwd, dr.jacrev, dr.jacobian, dr.hessian):
            with pytest.raises(dr.DualrevError, match="returned a"):
                T(lambda x: (x, out))(1.0)
        with pytest.raises(dr.DualrevError, match="returned a"):
            dr.jvp(lambda x: out, (1.0,), (1.0,))
        with pytest.raises(dr.DualrevError, match="returned a"):
            dr.vjp(lambda x: out, 1.0)


def test_none_output_is_an_empty_pytree_as_in_jax():
    assert dr.jacfwd(lambda x: None)(1.0) is None
    assert dr.jvp(lambda x: None, (1.0,), (1.0,)) == (None, None)
    assert dr.vjp(lambda x: None, 1.0)[1](None) == (0.0,)


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_masked_arrays_and_matrices_are_refused():
    m = np.ma.array([1.0, 2.0], mask=[False, True])
    for call in (lambda: dr.grad(lambda x: np.sum(x**2))(m),
                 lambda: dr.jacfwd(lambda x: x**2)(m),
                 lambda: dr.jvp(lambda x: x**2, (np.ones(2),), (m,)),
                 lambda: dr.vjp(lambda x: x**2, np.ones(2))[1](m),
                 lambda: dr.jacrev(lambda x: x * m)(np.ones(2))):
        with pytest.raises(dr.DualrevError, match="masked array"):
            call()
    with pytest.raises(dr.DualrevError, match="numpy.matrix"):
        dr.grad(lambda x: np.sum(x * x))(np.matrix([[1.0, 2.0]]))


def test_keyword_arguments_pass_through_undifferentiated():
    def f(x, y=1.0, *, scale=1.0):
        return np.sum(scale * np.sin(x) * y)

    x = np.array([0.2, 0.9])
    want = 2.5 * 3.0 * np.cos(x)
    np.testing.assert_allclose(dr.grad(f)(x, 3.0, scale=2.5), want, rtol=1e-15)
    np.testing.assert_allclose(dr.grad(f)(x, y=3.0, scale=2.5), want, rtol=1e-15)
    np.testing.assert_allclose(dr.grad(f)(2.0, scale=2.5), 2.5 * np.cos(2.0), rtol=1e-15)
    v, g = dr.value_and_grad(f)(x, scale=2.5)
    assert v == f(x, scale=2.5)
    np.testing.assert_allclose(g, 2.5 * np.cos(x), rtol=1e-15)
    (v, aux), g = dr.value_and_grad(lambda x, scale: (f(x, scale=scale), scale),
                                    has_aux=True)(x, scale=2.5)
    assert aux == 2.5
    vec = lambda x, scale: scale * np.sin(x)
    J = np.diag(2.5 * np.cos(x))
    for T in (dr.jacfwd, dr.jacrev, dr.jacobian):
        np.testing.assert_allclose(T(vec)(x, scale=2.5), J, rtol=1e-15)
    np.testing.assert_allclose(dr.jacobian(lambda x, s: np.outer(x, x) * s)(x, s=2.0),
                               dr.jacfwd(lambda x: np.outer(x, x) * 2.0)(x), rtol=1e-15)
    np.testing.assert_allclose(dr.hessian(f)(x, scale=2.5), np.diag(-2.5 * np.sin(x)), rtol=1e-15)
    v = np.array([1.0, -2.0])
    np.testing.assert_allclose(dr.hvp(f)(x, v, scale=2.5), -2.5 * np.sin(x) * v, rtol=1e-15)


# ------------------------------------------------------------------ the collector's pause
@pytest.fixture
def gc_state():
    enabled, threshold = gc.isenabled(), gc.get_threshold()
    yield
    gc.set_threshold(*threshold)
    (gc.enable if enabled else gc.disable)()


def test_gc_disable_while_another_thread_is_inside_grad_is_kept(gc_state):
    inside, release = threading.Event(), threading.Event()
    results = []

    def f(x):
        inside.set()
        assert release.wait(10)
        return x * x

    gc.enable()
    worker = threading.Thread(target=lambda: results.append(dr.grad(f)(2.0)))
    worker.start()
    assert inside.wait(10)
    gc.disable()  # the user's, made while the worker is recording its tape
    release.set()
    worker.join(10)
    assert results == [4.0]
    assert not gc.isenabled()


def test_gc_state_set_inside_f_is_kept_and_threshold_restored(gc_state):
    gc.enable()
    before = gc.get_threshold()

    def f(x):
        gc.disable()
        return np.sum(x * x)

    dr.grad(f)(np.ones(2))
    assert not gc.isenabled() and gc.get_threshold() == before
    gc.enable()
    dr.jacfwd(lambda x: dr.grad(f)(x))(np.ones(2))
    assert not gc.isenabled() and gc.get_threshold() == before

    def g(x):
        gc.set_threshold(123, 4, 5)  # the user's new threshold wins over the restore
        return x * x

    dr.grad(g)(1.0)
    assert gc.get_threshold() == (123, 4, 5)


# ------------------------------------------------------------------ precision kept
_F32_FUNCS = {
    # rules with float64 constants (log 2), float64 masks (ties, prod) and a scalar base
    "mixed": lambda x: np.sum(np.exp2(x) * np.log10(x + 3.0) + np.power(2.0, x) / (1.0 + x * x)),
    "reductions": lambda x: np.max(x) * np.prod(x) + np.mean(np.maximum(x, 0.0)) * np.std(x),
    "matrix": lambda x: np.sum(np.tanh(np.outer(x, x) @ x)),
}


def _f32_derivatives(f, x, v):
    vec = lambda x: f(x) * x
    return {
        "value": f(x),
        "grad": dr.grad(f)(x),
        "value_and_grad": dr.value_and_grad(f)(x)[1],
        "jacfwd": dr.jacfwd(vec)(x),
        "jacrev": dr.jacrev(vec)(x),
        "jacobian": dr.jacobian(vec)(x),
        "hessian": dr.hessian(f)(x),
        "hvp": dr.hvp(f)(x, v),
        "jvp": dr.jvp(vec, (x,), (v,))[1],
        "vjp": dr.vjp(vec, x)[1](v)[0],
        "grad scalar": dr.grad(lambda s: f(x * s))(x.dtype.type(1.5)),
        "jacfwd scalar": dr.jacfwd(lambda s: f(x * s))(x.dtype.type(1.5)),
        "hessian scalar": dr.hessian(lambda s: f(x * s))(x.dtype.type(1.5)),
    }


@pytest.mark.parametrize("name", list(_F32_FUNCS))
def test_float32_inputs_keep_float32_derivatives(name):
    f = _F32_FUNCS[name]
    x64, v64 = np.array([0.3, -0.7, 1.1]), np.array([1.0, 0.5, -2.0])
    got = _f32_derivatives(f, x64.astype(np.float32), v64.astype(np.float32))
    want = _f32_derivatives(f, x64, v64)
    for what, g in got.items():
        assert np.asarray(g).dtype == np.float32, what
        np.testing.assert_allclose(g, want[what], rtol=2e-5, atol=2e-5, err_msg=what)
        assert np.asarray(want[what]).dtype == np.float64, what


def test_complex64_inputs_keep_complex64_derivatives():
    z64 = np.array([0.3 + 0.2j, -0.7 + 1.0j])
    z = z64.astype(np.complex64)
    real_f = lambda z: np.sum(np.abs(z) ** 2 * np.exp2(np.real(z)))
    holo = lambda z: np.exp2(z) * z
    cases = {
        "grad": lambda z: dr.grad(real_f)(z),
        "jacfwd": lambda z: dr.jacfwd(holo, holomorphic=True)(z),
        "jacrev holomorphic": lambda z: dr.jacrev(holo, holomorphic=True)(z),
        "jvp": lambda z: dr.jvp(holo, (z,), (np.ones_like(z),))[1],
        "vjp": lambda z: dr.vjp(holo, z)[1](np.ones_like(z))[0],
        "grad scalar": lambda z: dr.grad(lambda s: real_f(z * s))(z.dtype.type(1 + 1j)),
    }
    for what, fn in cases.items():
        g = fn(z)
        assert np.asarray(g).dtype == np.complex64, what
        np.testing.assert_allclose(g, fn(z64), rtol=2e-5, atol=2e-5, err_msg=what)


def test_results_are_distinct_writable_arrays():
    # x + y passes one cotangent to both arguments: the two gradients were one object.
    x, y = np.ones(3), np.ones(3)
    gx, gy = dr.grad(lambda x, y: np.sum(x + y), argnums=(0, 1))(x, y)
    assert gx is not gy
    gx[0] = 7.0
    np.testing.assert_array_equal(gy, np.ones(3))
    _, pullback = dr.vjp(lambda x, y: x + y, x, y)
    a, b = pullback(np.ones(3))
    assert a is not b
    # Jacobians of the identity were views of the cached, read-only identity matrix.
    for J in (dr.jacfwd(lambda x: x)(x), dr.jacrev(lambda x: x)(x), dr.hessian(
            lambda x: 0.5 * np.sum(x * x))(x)):
        J[0, 0] = 3.0
    np.testing.assert_array_equal(dr.jacfwd(lambda x: x)(x), np.eye(3))
    ja, jb = dr.jacfwd(lambda x, y: x + y, argnums=(0, 1))(x, y)
    assert ja is not jb and ja.flags.writeable and jb.flags.writeable
    _, (ta, tb) = dr.jvp(lambda x: (x, x), (x,), (np.ones(3),))
    assert ta is not tb


def test_jacobian_runs_f_once_in_either_mode():
    calls = []
    A = np.random.default_rng(3).standard_normal((5, 2))

    def wide(x):  # 5 outputs of 2 inputs: forward mode, pushed along the recorded tape
        calls.append(1)
        return np.sin(A @ x) * x[0] + np.concatenate([x, x, x[:1]]) ** 2

    x = np.array([0.3, -0.7])
    J = dr.jacobian(wide)(x)
    assert len(calls) == 1
    np.testing.assert_allclose(J, dr.jacrev(wide)(x), rtol=1e-12)
    calls.clear()
    J = dr.jacobian(lambda x: wide(x)[:1])(x)  # 1 output: reverse mode
    assert len(calls) == 1
    np.testing.assert_allclose(J, dr.jacfwd(lambda x: wide(x)[:1])(x), rtol=1e-12)


def test_jacobian_forward_through_custom_vjp_uses_its_rules():
    # forward mode pushes the recorded tape through the transposed bwd: the body, which
    # is not differentiable, is never traced
    @dr.custom_vjp
    def f(x):
        return np.sin(np.asarray(x, dtype=float))

    f.defvjp(lambda x: (f(x), x), lambda x, g: (g * np.cos(x),))
    x = np.array([0.2])
    J = dr.jacobian(lambda x: np.concatenate([f(x), x, x]))(x)
    np.testing.assert_allclose(J, [[np.cos(0.2)], [1.0], [1.0]], rtol=1e-12)


def test_batched_jvps_and_vjps_equal_the_jacobian_products():
    # jvp_batched / vjp_batched: one pass for a batch of (co)tangents, the rows of
    # T @ J.T and C @ J, on an n-d input and output
    from dualrev.transforms import jvp_batched, vjp_batched

    rng = np.random.default_rng(7)
    A = rng.normal(size=(6, 6))

    def f(X):
        return np.tanh(X @ A[:3, :3]).T * X[0][:, None]  # (3, 2) out of (2, 3)

    X = rng.normal(size=(2, 3))
    J = np.asarray(dr.jacobian(f)(X)).reshape(6, 6)
    T = rng.normal(size=(4, 2, 3))
    y, JT = jvp_batched(f, X, T)
    np.testing.assert_allclose(y, f(X))
    np.testing.assert_allclose(JT.reshape(4, 6), T.reshape(4, 6) @ J.T, rtol=1e-12)
    C = rng.normal(size=(5, 3, 2))
    y, CJ = vjp_batched(f, X, C)
    np.testing.assert_allclose(y, f(X))
    assert CJ.shape == (5, 2, 3)
    np.testing.assert_allclose(CJ.reshape(5, 6), C.reshape(5, 6) @ J, rtol=1e-12)
    # float32 keeps its precision; an output that does not depend on x gives zeros
    y32, C32 = vjp_batched(lambda x: x * 2, np.ones(3, np.float32), np.eye(3))
    assert C32.dtype == np.float32
    np.testing.assert_array_equal(vjp_batched(lambda x: np.ones(2), np.ones(3),
                                              np.ones((4, 2)))[1], np.zeros((4, 3)))
    with pytest.raises(dr.DualrevError, match=r"cotangents must have shape \(B,\)"):
        vjp_batched(f, X, np.ones((2, 6)))
    with pytest.raises(dr.DualrevError, match="real-valued output"):
        vjp_batched(lambda x: x * 1j, np.ones(2), np.ones((1, 2)))
    with pytest.raises(dr.DualrevError, match="single array"):
        vjp_batched(lambda x: (x, x), np.ones(2), np.ones((1, 2)))


@pytest.mark.jax
def test_has_aux_results_are_nested_as_jaxs():
    # each transform's has_aux result, structure and values, against JAX's: value_and_grad
    # once returned ((value, gradient), aux) where JAX returns ((value, aux), gradient)
    from tests.jaxref import jax_modules

    jax, jnp = jax_modules()
    x = np.array([0.3, -1.2, 0.8])

    def f(xp, x):
        y = xp.sin(x) * x
        return xp.sum(y ** 2), {"y": y}

    def vec(xp, x):
        return xp.tanh(x) * x[0], x[1] * 2.0

    def same(ours, theirs):
        a, da = dr.tree_flatten(ours)
        b, db = jax.tree_util.tree_flatten(theirs)
        assert len(a) == len(b) and str(da).count("*") == db.num_leaves
        for u, v in zip(a, b, strict=True):
            np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=1e-13, atol=1e-15)
        # the nesting too: the same tuple/dict skeleton with the leaves in the same places
        assert jax.tree_util.tree_structure(ours) == jax.tree_util.tree_structure(theirs)

    X = jnp.asarray(x)
    fn, fj = (lambda x: f(np, x)), (lambda x: f(jnp, x))
    vn, vj = (lambda x: vec(np, x)), (lambda x: vec(jnp, x))
    same(dr.value_and_grad(fn, has_aux=True)(x), jax.value_and_grad(fj, has_aux=True)(X))
    same(dr.grad(fn, has_aux=True)(x), jax.grad(fj, has_aux=True)(X))
    for ours, theirs in [(dr.jacfwd, jax.jacfwd), (dr.jacrev, jax.jacrev)]:
        same(ours(vn, has_aux=True)(x), theirs(vj, has_aux=True)(X))
    t = np.array([1.0, 0.5, -2.0])
    same(dr.jvp(vn, (x,), (t,), has_aux=True), jax.jvp(vj, (X,), (jnp.asarray(t),), has_aux=True))
    out, pull, aux = dr.vjp(vn, x, has_aux=True)
    outj, pullj, auxj = jax.vjp(vj, X, has_aux=True)
    same((out, aux, pull(np.ones(3))), (outj, auxj, pullj(jnp.ones(3))))


def test_hessians_refusals_name_hessian():
    # hessian is jacfwd over jacrev; its refusals name what the user called, and its
    # complex-input advice does not suggest jacrev (a Hessian is not a Jacobian)
    class Opaque:
        pass

    h = dr.hessian(lambda x: np.sum(np.abs(x) ** 2))
    with pytest.raises(dr.DualrevError, match=r"^dualrev\.hessian: cannot differentiate"):
        h(Opaque())
    with pytest.raises(dr.DualrevError, match=r"^dualrev\.hessian needs real inputs") as e:
        h(np.array([1.0 + 1.0j]))
    assert "jacrev" not in str(e.value)
    with pytest.raises(dr.DualrevError, match=r"^dualrev\.hessian with holomorphic=True"):
        dr.hessian(lambda x: np.sum(x ** 3), holomorphic=True)(np.array([1.0]))
    with pytest.raises(dr.DualrevError, match=r"^dualrev\.jacfwd needs real inputs.*jacrev"):
        dr.jacfwd(lambda x: x)(np.array([1.0 + 1.0j]))
