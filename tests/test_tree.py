"""Pytrees: ravel_pytree of traced leaves, differentiable both ways."""

from pathlib import Path

import numpy as np
import pytest

import dualrev as dr
from dualrev.errors import DualrevError
from dualrev.testing import check_grads

_ROOT = Path(__file__).resolve().parent.parent


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


# ------------------------------------------------------------------ registered nodes
class Point:
    """A user's container: x and y are differentiated, ``unit`` is static aux data."""

    def __init__(self, x, y, unit="m"):
        self.x, self.y, self.unit = x, y, unit

    def __repr__(self):
        return f"Point({self.x!r}, {self.y!r}, {self.unit!r})"


dr.register_pytree_node(Point, lambda p: ((p.x, p.y), p.unit),
                        lambda unit, xy: Point(*xy, unit=unit))


def _energy(p):
    return np.sum(p.x ** 2 * np.sin(p.y)) + np.prod(p.y)


def _energy_flat(x, y):
    return np.sum(x ** 2 * np.sin(y)) + np.prod(y)


_RNG = np.random.default_rng(7)
_X, _Y = _RNG.normal(size=3), _RNG.normal(size=3)


def test_a_registered_node_flattens_and_rebuilds():
    p = Point(np.ones(2), (3.0, None), unit="km")
    leaves, td = dr.tree_flatten({"p": p, "z": 1.0})
    assert len(leaves) == 3 and td.num_leaves == 3
    assert repr(td) == "{'p': Point(*, (*, None)), 'z': *}"
    back = dr.tree_unflatten(td, [10, 20, 30])
    assert isinstance(back["p"], Point) and back["p"].unit == "km"
    assert (back["p"].x, back["p"].y, back["z"]) == (10, (20, None), 30)
    # aux data is part of the structure; children's structure too
    assert dr.tree_flatten(Point(1.0, 2.0, "km"))[1] != dr.tree_flatten(Point(1.0, 2.0))[1]
    a, b = dr.tree_flatten(Point(1.0, 2.0))[1], dr.tree_flatten(Point(5.0, 6.0))[1]
    assert a == b and hash(a) == hash(b)
    assert dr.tree_flatten(Point(1.0, (2.0,)))[1] != a
    doubled = dr.tree_map(lambda v: 2 * v, Point(np.ones(2), 3.0, "s"))
    assert doubled.unit == "s" and doubled.y == 6.0
    flat, unravel = dr.ravel_pytree(Point(np.arange(2.0), 5.0))
    np.testing.assert_array_equal(flat, [0, 1, 5])
    assert unravel(flat + 1).y == 6.0


def test_a_registered_node_through_grad_and_value_and_grad():
    p = Point(_X, _Y, "km")
    g = dr.grad(_energy)(p)
    gx, gy = dr.grad(_energy_flat, argnums=(0, 1))(_X, _Y)
    assert isinstance(g, Point) and g.unit == "km"
    np.testing.assert_allclose(g.x, 2 * _X * np.sin(_Y), rtol=1e-14)
    np.testing.assert_allclose(g.x, gx, rtol=1e-14)
    np.testing.assert_allclose(g.y, gy, rtol=1e-14)
    (v, aux), g2 = dr.value_and_grad(lambda q: (_energy(q), Point(q.x, 1.0)), has_aux=True)(p)
    assert v == pytest.approx(_energy_flat(_X, _Y), rel=1e-14)
    np.testing.assert_array_equal(g2.y, g.y)
    assert isinstance(aux, Point) and type(aux.x) is np.ndarray  # aux: plain values
    check_grads(lambda q: _energy(q), (p,), order=2)


def test_a_registered_node_through_jvp_vjp_and_jacobians():
    p, t = Point(_X, _Y), Point(_Y, -_X)

    def f(q):  # Point -> Point
        return Point(np.sin(q.x) * q.y, q.x @ q.y)

    out, tan = dr.jvp(f, (p,), (t,))
    ref = dr.jvp(lambda x, y: (np.sin(x) * y, x @ y), (_X, _Y), (_Y, -_X))
    np.testing.assert_allclose(tan.x, ref[1][0], rtol=1e-14)
    assert tan.y == pytest.approx(ref[1][1], rel=1e-14)
    out, pull = dr.vjp(f, p)
    (ct,) = pull(Point(np.ones(3), 2.0))
    _, pull_ref = dr.vjp(lambda x, y: (np.sin(x) * y, x @ y), _X, _Y)
    cx, cy = pull_ref((np.ones(3), 2.0))
    np.testing.assert_allclose(ct.x, cx, rtol=1e-14)
    np.testing.assert_allclose(ct.y, cy, rtol=1e-14)
    with pytest.raises(dr.errors.DualrevError, match="structure"):
        pull(Point(np.ones(3), 2.0, "km"))  # the aux data differs
    # the Jacobian: the output's structure holding the input's (as JAX)
    jr = dr.jacrev(lambda x, y: (np.sin(x) * y, x @ y), argnums=(0, 1))(_X, _Y)
    for jac in (dr.jacfwd, dr.jacrev, dr.jacobian):
        J = jac(f)(p)
        assert isinstance(J, Point) and isinstance(J.x, Point) and isinstance(J.y, Point)
        np.testing.assert_allclose(J.x.x, jr[0][0], rtol=1e-14)
        np.testing.assert_allclose(J.x.y, jr[0][1], rtol=1e-14)
        np.testing.assert_allclose(J.y.x, jr[1][0], rtol=1e-14)
        np.testing.assert_allclose(J.y.y, jr[1][1], rtol=1e-14)
    H = dr.hessian(_energy)(p)
    Href = dr.hessian(_energy_flat, argnums=(0, 1))(_X, _Y)
    np.testing.assert_allclose(H.x.x, Href[0][0], rtol=1e-13)
    np.testing.assert_allclose(H.x.y, Href[0][1], rtol=1e-13)
    np.testing.assert_allclose(H.y.y, Href[1][1], rtol=1e-13)
    hv = dr.hvp(_energy)(p, Point(np.ones(3), np.zeros(3)))
    np.testing.assert_allclose(hv.y, Href[1][0] @ np.ones(3), rtol=1e-13)


def test_vmap_over_a_registered_node_and_its_prefix():
    xs, ys = _RNG.normal(size=(4, 3)), _RNG.normal(size=(4, 3))
    e = dr.vmap(_energy)(Point(xs, ys))
    np.testing.assert_allclose(e, [_energy_flat(a, b) for a, b in zip(xs, ys, strict=True)],
                               rtol=1e-14)
    # an in_axes prefix of the node's own type: y shared by every element
    g = dr.vmap(dr.grad(_energy), in_axes=(Point(0, None),))(Point(xs, _Y))
    assert isinstance(g, Point) and g.x.shape == (4, 3)
    for i in range(4):
        ref = dr.grad(_energy_flat, argnums=(0, 1))(xs[i], _Y)
        np.testing.assert_allclose(g.x[i], ref[0], rtol=1e-14)
        np.testing.assert_allclose(g.y[i], ref[1], rtol=1e-14)
    with pytest.raises(dr.errors.DualrevError, match="in_axes"):
        dr.vmap(_energy, in_axes=(Point(0, None, "km"),))(Point(xs, _Y))  # another aux


def test_register_pytree_node_refuses():
    with pytest.raises(dr.errors.DualrevError, match="registered already"):
        dr.register_pytree_node(Point, lambda p: ((), None), lambda a, c: Point(0, 0))
    with pytest.raises(dr.errors.DualrevError, match="built-in container"):
        dr.register_pytree_node(dict, lambda p: ((), None), lambda a, c: {})
    with pytest.raises(dr.errors.DualrevError, match="must be a class"):
        dr.register_pytree_node(Point(1, 2), lambda p: ((), None), lambda a, c: None)

    class Box:
        def __init__(self, v, meta):
            self.v, self.meta = v, meta

    dr.register_pytree_node(Box, lambda b: ((b.v,), b.meta), lambda m, c: Box(c[0], m))
    a = dr.tree_flatten(Box(1.0, np.arange(3)))[1]
    b = dr.tree_flatten(Box(1.0, np.arange(3)))[1]
    with pytest.raises(dr.errors.DualrevError, match="cannot be compared"):
        _ = a == b


def test_import_dualrev_does_not_import_xarray():
    import subprocess
    import sys

    code = ("import sys, numpy as np, dualrev as dr\n"
            "dr.grad(lambda d: np.sum(d['a'] ** 2))({'a': np.ones(2)})\n"
            "dr.tree_flatten({'a': (1.0, None)})\n"
            "assert 'xarray' not in sys.modules, 'xarray imported'\n"
            "assert 'pandas' not in sys.modules, 'pandas imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(_ROOT))


def test_custom_rules_take_a_registered_node():
    @dr.custom_vjp
    def f(p):
        return np.sum(p.x * p.y)

    def f_fwd(p):
        return f(p), p

    def f_bwd(p, ct):  # a deliberately scaled rule, so that the test sees it is used
        return (Point(10 * ct * p.y, 10 * ct * p.x, p.unit),)

    f.defvjp(f_fwd, f_bwd)
    g = dr.grad(f)(Point(_X, _Y, "s"))
    assert g.unit == "s"
    np.testing.assert_allclose(g.x, 10 * _Y, rtol=1e-15)
    np.testing.assert_allclose(g.y, 10 * _X, rtol=1e-15)


def test_tree_map_checks_the_other_trees_structure():
    # it zipped leaves by position: {'a', 'b'} against {'a', 'c'} paired b with c silently
    with pytest.raises(DualrevError, match=r"tree 2 differs from the first at the top: "
                                           r"expected a dict with keys \['a', 'b'\]"):
        dr.tree_map(lambda x, y: x + y, {"a": 1.0, "b": 2.0}, {"a": 1.0, "c": 2.0})
    with pytest.raises(DualrevError, match=r"tree 3 differs .* at \[1\]: expected a tuple "
                                           r"of 2, got list"):
        dr.tree_map(lambda x, y, z: x, [0.0, (1.0, 2.0)], [0.0, (1.0, 2.0)], [0.0, [1.0, 2.0]])
    with pytest.raises(DualrevError, match=r"at \['p'\]\[0\]: expected None"):
        dr.tree_map(lambda x, y: x, {"p": Point(None, 1.0, "m")}, {"p": Point(2.0, 1.0, "m")})
    with pytest.raises(DualrevError, match=r"a Point with static \(meta\) data 's'"):
        dr.tree_map(lambda x, y: x, Point(1.0, 1.0, "m"), Point(1.0, 1.0, "s"))
    # JAX's prefix rule: a leaf of the first tree meets a subtree of the others
    assert dr.tree_map(lambda x, y: (x, y), [1.0, 2.0], [(3.0, 4.0), {"k": None}]) == \
        [(1.0, (3.0, 4.0)), (2.0, {"k": None})]
    assert dr.tree_map(lambda x, y: x * y, {"a": 2.0}, {"a": 3.0}) == {"a": 6.0}
