"""dualrev.replay against the dynamic transforms: every replayed call is compared with the
same transform called directly on the same inputs (bit for bit unless a test says
otherwise), and the stats say whether it was recorded or replayed."""


import numpy as np
import pytest

import dualrev as dr
from dualrev.program import Program

rng = np.random.default_rng(20261206)


def assert_same(got, want, exact=True):
    """Same pytree, same leaf types, same shapes and dtypes, same bits (or allclose)."""
    gl, gd = dr.tree_flatten(got)
    wl, wd = dr.tree_flatten(want)
    assert gd == wd, (gd, wd)
    for g, w in zip(gl, wl, strict=True):
        assert type(g) is type(w), (type(g), type(w))
        assert np.shape(g) == np.shape(w)
        assert np.result_type(g) == np.result_type(w)
        if exact:
            np.testing.assert_array_equal(g, w)
            assert np.asarray(g).tobytes() == np.asarray(w).tobytes()
        else:
            np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-15)


def check(fn, *argsets, records=1, exact=True, **replay_kw):
    """Call the replayed ``fn`` on each argument tuple and compare with ``fn`` itself;
    returns the replayed function."""
    r = dr.replay(fn, **replay_kw)
    for args in argsets:
        got = r(*args)
        want = fn(*args)
        assert_same(got, want, exact)
    assert r.stats.records == records, r.stats
    assert r.stats.replays == len(argsets) - records, r.stats
    return r


def equal_guards(r):
    return [g for p in r.programs for g in p.guards if g.kind == "equal"]


def vec(n=4, seed=0):
    return np.random.default_rng(seed).normal(size=n)


def f_elem(x):
    return np.sum(np.sin(x) * x ** 2 + np.exp(-x) / (1.0 + x * x))


def f_index(x):
    return np.sum(x[1:] * x[:-1]) + x[0] ** 3 - np.mean(x[::2]) + np.max(x)


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


@pytest.mark.parametrize("f", [f_elem, f_index, rosen])
def test_grad_replays_bit_for_bit(f):
    r = check(dr.grad(f), (vec(5, 1),), (vec(5, 2),), (vec(5, 3),))
    assert not equal_guards(r)
    assert isinstance(r.programs[0], Program)


def test_value_and_grad_scalar_types():
    # a float argument stays a float, the value is a NumPy scalar as in the dynamic call
    check(dr.value_and_grad(lambda x: x * np.sin(x) + x ** 3), (0.5,), (1.5,), (-2.0,))
    check(dr.value_and_grad(f_elem), (vec(3),), (vec(3, 1),))


def test_argnums_kwargs_and_pytrees():
    def f(p, x, scale=1.0):
        return scale * np.sum(p["w"] * x ** 2) + np.sum(p["b"][0] * x)
    p = {"w": vec(3), "b": (vec(3, 5),)}
    p2 = {"w": vec(3, 7), "b": (vec(3, 8),)}
    check(dr.grad(f, argnums=(0, 1)), (p, vec(3, 1)), (p2, vec(3, 2)))
    g = dr.grad(f)
    r = dr.replay(g)
    for pp, s in ((p, 2.0), (p2, 3.0), (p, 2.0)):
        assert_same(r(pp, vec(3), scale=s), g(pp, vec(3), scale=s))
    assert r.stats.records == 1 and r.stats.replays == 2  # a float keyword is staged


def test_has_aux():
    def f(x):
        return np.sum(x ** 2), {"norm": np.linalg.norm(x), "first": x[0]}
    check(dr.grad(f, has_aux=True), (vec(),), (vec(4, 1),))
    check(dr.value_and_grad(f, has_aux=True), (vec(),), (vec(4, 1),))


def test_jacobians_and_hessians():
    def f(x):
        return np.tanh(np.outer(x, x) @ x) * x[0]
    for t in (dr.jacfwd, dr.jacrev, dr.jacobian, dr.hessian):
        fn = t(f) if t is not dr.hessian else t(f_elem)
        check(fn, (vec(),), (vec(4, 1),), (vec(4, 2),))


def test_hvp_and_jvp_closures_and_vjp():
    v = vec(4, 9)
    check(dr.hvp(rosen), (vec(), v), (vec(4, 1), v))
    check(lambda x, t: dr.jvp(f_elem, (x,), (t,)), (vec(), v), (vec(4, 1), vec(4, 3)))

    def vjp_of(x, ct):
        y, pull = dr.vjp(lambda z: np.sin(z) * z, x)
        return y, pull(ct)
    check(vjp_of, (vec(), v), (vec(4, 1), vec(4, 3)))


def test_vmap_and_vmap_of_grad():
    xs = np.random.default_rng(3).normal(size=(5, 4))
    check(dr.vmap(dr.grad(f_elem)), (xs,), (xs * 2,))
    check(dr.vmap(lambda x: np.sin(x) @ x), (xs,), (xs + 1,))


def test_nested_transforms():
    check(dr.grad(dr.grad(lambda x: np.sin(x) * x ** 3)), (0.3,), (1.7,))
    check(dr.jacfwd(dr.grad(rosen)), (vec(),), (vec(4, 1),))
