"""Dataclasses and user types as pytrees (dr.register_dataclass, register_pytree_node_class):
through every transform, against finite differences and forward against reverse."""

import collections
import dataclasses
from dataclasses import dataclass, field

import numpy as np
import pytest

import dualrev as dr
import dualrev.optimize as dro
from dualrev.errors import DualrevError
from dualrev.testing import check_grads

NT = collections.namedtuple("NT", "u v")


@dr.register_dataclass
@dataclass(frozen=True)
class Params:
    """Frozen, nested (a dict and a namedtuple), a None field, a static field, and a
    validation that would reject traced values, gradients and Jacobian blocks."""

    w: np.ndarray
    b: float
    extra: dict
    nt: NT
    none: None = None
    act: str = field(default="tanh", metadata={"static": True})

    def __post_init__(self):
        if type(self.w) is not np.ndarray or np.any(self.w < 0):
            raise ValueError("w must be an array of nonnegative numbers")


@dr.register_dataclass
@dataclass
class Axes:  # no validation: a vmap in_axes prefix is built from it
    w: object
    b: object
    s: str = field(default="", metadata={"static": True})


@dr.register_pytree_node_class
class Layer:
    def __init__(self, W, c):
        self.W, self.c = W, c

    def tree_flatten(self):
        return (self.W, self.c), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)


def _params(seed=0, act="tanh"):
    rng = np.random.default_rng(seed)
    return Params(rng.random(3), 0.5, {"c": rng.random(2), "d": rng.random((2, 2))},
                  NT(1.5, rng.random(2)), None, act)


_X = np.random.default_rng(1).random((4, 3))


def loss(p, x=_X):
    h = getattr(np, p.act)(x @ p.w + p.b)
    return (np.sum(h ** 2) + np.sum(p.extra["c"] ** 3) + np.sum(np.sin(p.extra["d"]))
            + p.nt.u * np.sum(p.nt.v) ** 2)


def vector_out(p):
    return np.concatenate([np.tanh(_X @ p.w) * p.b, p.extra["c"] * p.nt.u])


def fd_grad(f, tree, h=1e-6):
    """Central differences over the leaves of ``tree`` (a pytree of the same structure)."""
    flat, unravel = dr.ravel_pytree(tree)
    g = np.array([(f(unravel(flat + h * e)) - f(unravel(flat - h * e))) / (2 * h)
                  for e in np.eye(flat.size)])
    return g  # flat, in tree_flatten's order


def fd_jac(f, tree, h=1e-6):
    flat, unravel = dr.ravel_pytree(tree)
    cols = [(f(unravel(flat + h * e)) - f(unravel(flat - h * e))) / (2 * h)
            for e in np.eye(flat.size)]
    return np.stack(cols, axis=-1)


def flat(tree):
    return dr.ravel_pytree(tree)[0]


def assert_tree_close(a, b, **kw):
    la, ta = dr.tree_flatten(a)
    lb, tb = dr.tree_flatten(b)
    assert ta == tb, (ta, tb)
    for u, v in zip(la, lb, strict=True):
        np.testing.assert_allclose(u, v, **kw)


# ----------------------------------------------------------------- registration


def test_fields_are_children_static_fields_are_structure():
    p = _params()
    leaves, td = dr.tree_flatten(p)
    assert repr(td) == ("Params(w=*, b=*, extra={'c': *, 'd': *}, nt=NT(*, *), none=None, "
                        "act='tanh')")
    assert [np.shape(v) for v in leaves] == [(3,), (), (2,), (2, 2), (), (2,)]
    # rebuilt without __init__: values the validation refuses, and still frozen
    q = dr.tree_unflatten(td, [-np.ones(3), "b", 1, 2, 3, 4])
    assert type(q) is Params and q.b == "b" and q.act == "tanh" and q.none is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        q.b = 1.0
    assert dr.tree_flatten(_params(act="sin"))[1] != td
    assert dr.tree_flatten(_params(seed=5))[1] == td
    assert hash(dr.tree_flatten(_params(seed=5))[1]) == hash(td)


def test_register_dataclass_as_a_decorator_with_arguments_and_slots():
    @dr.register_dataclass(data_fields=["a"], meta_fields=["k"])
    @dataclass(frozen=True, slots=True)
    class S:
        a: float
        k: int = 3

    g = dr.grad(lambda s: s.a ** s.k)(S(2.0))
    assert type(g) is S and g.k == 3 and g.a == pytest.approx(12.0)
    assert repr(dr.tree_flatten(S(2.0, 4))[1]) == "S(a=*, k=4)"


def test_a_plain_class_with_named_fields():
    class Pt:
        def __init__(self, x, y, unit):
            raise AssertionError("not called on rebuild")

    dr.register_dataclass(Pt, data_fields=["x", "y"], meta_fields=["unit"])
    p = object.__new__(Pt)
    p.x, p.y, p.unit = 3.0, np.array([1.0, 2.0]), "m"
    g = dr.grad(lambda p: p.x ** 2 * np.sum(p.y))(p)
    assert g.unit == "m" and g.x == pytest.approx(18.0)
    np.testing.assert_allclose(g.y, [9.0, 9.0])


def test_init_false_fields_and_drop_fields():
    @dataclass
    class Circle:
        r: float
        area: float = field(init=False)

        def __post_init__(self):
            self.area = np.pi * self.r ** 2

    with pytest.raises(DualrevError, match=r"area have init=False.*@property.*drop_fields"):
        dr.register_dataclass(Circle)

    @dataclass
    class Disc:  # derived as a property: differentiated through
        r: float

        @property
        def area(self):
            return np.pi * self.r ** 2

    dr.register_dataclass(Disc)
    assert dr.grad(lambda d: d.area)(Disc(2.0)).r == pytest.approx(4 * np.pi)

    @dataclass
    class Tagged:
        r: float
        cache: list = field(default_factory=list)
        seen: int = field(default=0, init=False)

    with pytest.raises(DualrevError, match="fields not placed: seen"):
        # (a rebuilt instance would read the class's default 0 where the instance had 7)
        dr.register_dataclass(Tagged, data_fields=["r"], meta_fields=[], drop_fields=["cache"])
    dr.register_dataclass(Tagged, data_fields=["r"], meta_fields=["seen"],
                          drop_fields=["cache"])
    t = Tagged(2.0, [1, 2])
    t.seen = 7
    g = dr.grad(lambda t: t.r ** 3)(t)
    assert g.r == pytest.approx(12.0) and g.cache == [] and g.seen == 7


def test_register_dataclass_refuses():
    @dataclass
    class A:
        x: float
        y: float

    with pytest.raises(DualrevError, match="give both data_fields and meta_fields"):
        dr.register_dataclass(A, data_fields=["x", "y"])
    with pytest.raises(DualrevError, match="fields not placed: y"):
        dr.register_dataclass(A, data_fields=["x"], meta_fields=[])
    with pytest.raises(DualrevError, match="not fields of the dataclass: z"):
        dr.register_dataclass(A, data_fields=["x", "y", "z"], meta_fields=[])
    with pytest.raises(DualrevError, match="x named more than once"):
        dr.register_dataclass(A, data_fields=["x", "y"], meta_fields=["x"])
    with pytest.raises(DualrevError, match="sequences of names"):
        dr.register_dataclass(A, data_fields="xy", meta_fields=[])
    with pytest.raises(DualrevError, match=r"not a dataclass.*above @dataclasses.dataclass"):
        @dataclass
        @dr.register_dataclass
        class B:
            x: float
    dr.register_dataclass(A)
    with pytest.raises(DualrevError, match="registered already"):  # as JAX
        dr.register_dataclass(A)
    with pytest.raises(DualrevError, match="tree_flatten.*tree_unflatten"):
        dr.register_pytree_node_class(A)


def test_a_static_array_is_named_where_structures_are_compared():
    @dr.register_dataclass
    @dataclass
    class Masked:
        w: np.ndarray
        mask: np.ndarray = field(metadata={"static": True})

    a = Masked(np.array([1.0, 2.0]), np.array([True, False]))
    b = Masked(np.array([3.0, 4.0]), np.array([True, False]))
    f = lambda m: np.sum(m.w[m.mask] ** 2)
    np.testing.assert_allclose(dr.grad(f)(a).w, [2.0, 0.0])  # used as it is: fine
    with pytest.raises(DualrevError, match=r"a static field of Masked \(mask\) holds a "
                                           r"value that cannot be compared"):
        dr.tree_map(lambda u, v: u + v, a, b)
    r = dr.replay(f)
    assert r(a) == 1.0
    with pytest.raises(DualrevError, match=r"static field of Masked"):
        r(b)


def test_a_subclass_is_registered_on_its_own():
    @dr.register_dataclass
    @dataclass
    class Base:
        x: np.ndarray

    @dataclass
    class Sub(Base):
        y: float = 2.0

    with pytest.raises(DualrevError, match=r"Sub is a subclass of the registered Base.*"
                                           r"register Sub too"):
        dr.grad(lambda s: np.sum(s.x) * s.y)(Sub(np.ones(2)))
    dr.register_dataclass(Sub)
    g = dr.grad(lambda s: np.sum(s.x) * s.y)(Sub(np.ones(2)))
    assert type(g) is Sub and g.y == pytest.approx(2.0)
    np.testing.assert_allclose(g.x, [2.0, 2.0])


# ----------------------------------------------------------- the refusal's message


@dataclass
class Unregistered:
    w: np.ndarray


class Opaque:
    def __call__(self, x):  # a callable model object: to be registered, not made static
        return x


def test_an_unregistered_dataclass_is_refused_with_the_rewrite():
    def my_loss(params, x):
        return np.sum(params.w * x)

    with pytest.raises(DualrevError) as e:
        dr.grad(my_loss)(Unregistered(np.ones(2)), 1.0)
    msg = str(e.value)
    for part in ("dualrev.grad", "argument 0 (`params`) of `", "my_loss", "Unregistered",
                 "tuple, list, dict, namedtuple, None", "registered types (",
                 "write @dr.register_dataclass above its @dataclasses.dataclass"):
        assert part in msg, (part, msg)
    with pytest.raises(DualrevError, match=r"dualrev.jvp: cannot differentiate argument 1 "
                                           r"\(`x`\) of `.*my_loss`, at x\['k'\]\[1\]: a "
                                           r"Unregistered is neither"):
        dr.jvp(my_loss, (1.0, {"k": [0.0, Unregistered(1.0)]}), (1.0, {"k": [0.0, 1.0]}))
    with pytest.raises(DualrevError, match=r"dr.register_pytree_node\(Opaque, flatten, "
                                           r"unflatten\).*register_pytree_node_class"):
        dr.jacrev(my_loss, argnums=1)(1.0, (Opaque(),))
    with pytest.raises(DualrevError, match=r"dualrev.vmap: cannot map argument 0 "
                                           r"\(`params`\).*give it in_axes=None"):
        dr.vmap(my_loss)(Unregistered(np.ones((3, 2))), 1.0)
    # not differentiated (argnums) or not mapped (in_axes=None): accepted as it is
    assert dr.grad(my_loss, argnums=1)(Unregistered(np.ones(2)), 2.0) == 2.0
    np.testing.assert_allclose(
        dr.vmap(my_loss, in_axes=(None, 0))(Unregistered(np.ones(2)), np.arange(3.0)),
        [0.0, 2.0, 4.0])


def test_a_field_that_is_no_parameter_is_told_to_be_static():
    @dr.register_dataclass
    @dataclass
    class Model:
        w: np.ndarray
        activation: object
        name: str = "m"

    with pytest.raises(DualrevError, match=r"at m\.activation: a ufunc is not a number or "
                                           r"array\. If activation is not a parameter, "
                                           r"declare it static in .*Model"):
        dr.grad(lambda m: np.sum(m.activation(m.w)))(Model(np.ones(2), np.tanh))
    with pytest.raises(DualrevError, match=r"at m\.name: a str .*declare it static"):
        dr.grad(lambda m: np.sum(m.w))(Model(np.ones(2), None, "x"))


# ------------------------------------------------------------ through the transforms


def test_grad_matches_finite_differences_and_forward_mode():
    p = _params()
    g = dr.grad(loss)(p)
    assert type(g) is Params and g.act == "tanh" and g.none is None
    assert type(g.nt) is NT and sorted(g.extra) == ["c", "d"]
    np.testing.assert_allclose(flat(g), fd_grad(loss, p), rtol=1e-7, atol=1e-9)
    assert_tree_close(g, dr.jacfwd(loss)(p), rtol=1e-13)
    for act in ("sin", "cos"):  # the static field is read: another function, another value
        q = _params(act=act)
        np.testing.assert_allclose(flat(dr.grad(loss)(q)), fd_grad(loss, q), rtol=1e-7, atol=1e-8)


def test_value_and_grad_with_aux_jvp_and_vjp():
    p = _params()
    (v, aux), g = dr.value_and_grad(lambda p: (loss(p), p.act + "!"), has_aux=True)(p)
    assert v == pytest.approx(loss(p), rel=1e-15) and aux == "tanh!"
    t = _params(seed=3)  # a tangent of the same structure (and static data)
    y, dy = dr.jvp(loss, (p,), (t,))
    assert y == pytest.approx(loss(p)) and dy == pytest.approx(flat(g) @ flat(t), rel=1e-12)
    y, pullback = dr.vjp(vector_out, p)
    (ct,) = pullback(np.arange(y.size, dtype=float))
    assert type(ct) is Params and ct.act == "tanh"
    np.testing.assert_allclose(flat(ct), np.arange(y.size) @ fd_jac(vector_out, p),
                               rtol=1e-7, atol=1e-9)
    # a tangent or cotangent with another static value is another structure
    with pytest.raises(DualrevError, match=r"tangents must have the same structure.*"
                                           r"act='sin'"):
        dr.jvp(loss, (p,), (_params(act="sin"),))
    y, pullback = dr.vjp(lambda p: Axes(p.w, p.b, "out"), p)
    with pytest.raises(DualrevError, match=r"Axes\(w=\*, b=\*, s='zz'\) does not match"):
        pullback(Axes(np.ones(3), 1.0, "zz"))
    (ct,) = pullback(Axes(np.ones(3), 2.0, "out"))
    assert type(ct) is Params and ct.b == pytest.approx(2.0)
    np.testing.assert_allclose(ct.w, [1.0, 1.0, 1.0])
    np.testing.assert_allclose(flat(ct)[4:], 0.0)  # extra and nt do not reach the output


def test_jacobians_are_nested_as_the_trees_say():
    p = _params()
    ref = fd_jac(vector_out, p)
    jacs = [J(vector_out)(p) for J in (dr.jacfwd, dr.jacrev, dr.jacobian)]
    for J in jacs:
        assert type(J) is Params and J.act == "tanh"
        assert J.w.shape == (6, 3) and J.extra["d"].shape == (6, 2, 2) and J.b.shape == (6,)
        cols = np.concatenate([np.reshape(v, (6, -1)) for v in dr.tree_flatten(J)[0]], axis=1)
        np.testing.assert_allclose(cols, ref, rtol=1e-7, atol=1e-9)
    assert_tree_close(jacs[0], jacs[1], rtol=1e-13)

    @dr.register_dataclass
    @dataclass
    class Out:
        y: np.ndarray
        s: float

    J = dr.jacrev(lambda p: Out(np.tanh(p.w) * p.b, np.sum(p.w ** 2)))(p)
    assert type(J) is Out and type(J.y) is Params and type(J.s) is Params
    np.testing.assert_allclose(J.s.w, 2 * p.w)
    np.testing.assert_allclose(J.y.b, np.tanh(p.w))
    np.testing.assert_allclose(J.y.w, np.diag((1 - np.tanh(p.w) ** 2) * p.b))


def test_hessian_and_hvp():
    p = _params()
    H = dr.hessian(loss)(p)
    assert type(H) is Params and type(H.w) is Params and H.w.w.shape == (3, 3)
    flat0, unravel = dr.ravel_pytree(p)
    dense = dr.hessian(lambda v: loss(unravel(v)))(flat0)
    np.testing.assert_allclose(H.w.b, dense[:3, 3], rtol=1e-12)
    np.testing.assert_allclose(H.extra["d"].extra["d"], np.reshape(
        dense[6:10, 6:10], (2, 2, 2, 2)), rtol=1e-12)
    np.testing.assert_allclose(dense, fd_jac(lambda q: flat(dr.grad(loss)(q)), p),
                               rtol=1e-6, atol=1e-8)
    t = _params(seed=3)
    hv = dr.hvp(loss)(p, t)
    assert type(hv) is Params
    np.testing.assert_allclose(flat(hv), dense @ flat(t), rtol=1e-12)


def test_vmap_with_a_dataclass_prefix_and_out_axes():
    rng = np.random.default_rng(2)
    ws, b = rng.random((5, 3)), 0.25
    f = lambda a, x: np.tanh(x @ a.w + a.b)
    out = dr.vmap(f, in_axes=(Axes(0, None), None))(Axes(ws, b), _X)
    np.testing.assert_allclose(out, [f(Axes(w, b), _X) for w in ws], rtol=1e-15)
    # per-example gradients of the validated Params: batched values never meet __post_init__
    ps = Params(rng.random((5, 3)), np.linspace(0, 1, 5), {"c": rng.random((5, 2)),
                "d": rng.random((5, 2, 2))}, NT(rng.random(5), rng.random((5, 2))))
    gs = dr.vmap(dr.grad(loss))(ps)
    assert type(gs) is Params and gs.w.shape == (5, 3)
    for i in range(5):
        pi = dr.tree_map(lambda v, i=i: v[i], ps)
        np.testing.assert_allclose(flat(dr.tree_map(lambda v, i=i: v[i], gs)),
                                   fd_grad(loss, pi), rtol=1e-6, atol=1e-8)
    # a dataclass output, its batch axis placed by an Axes prefix
    res = dr.vmap(lambda w: Axes(np.outer(w, w), np.sum(w), "o"),
                  out_axes=Axes(-1, 0, "o"))(ws)
    assert type(res) is Axes and res.s == "o" and res.w.shape == (3, 3, 5)
    np.testing.assert_allclose(res.w[..., 2], np.outer(ws[2], ws[2]))
    np.testing.assert_allclose(res.b, ws.sum(1))
    with pytest.raises(DualrevError, match="does not match the structure"):
        dr.vmap(f, in_axes=(Axes(0, None, "other"), None))(Axes(ws, b), _X)


def test_replay_recompiles_when_a_static_field_changes():
    r = dr.replay(loss)
    p, q = _params(), _params(seed=4)
    assert r(p) == pytest.approx(loss(p), rel=1e-14)
    assert r(q) == pytest.approx(loss(q), rel=1e-14)
    assert (r.stats.records, r.stats.replays) == (1, 1)
    s = _params(seed=4, act="sin")
    assert r(s) == pytest.approx(loss(s), rel=1e-14) and r(s) != pytest.approx(loss(q))
    assert r.stats.records == 2
    ro = dr.replay(lambda p: Axes(np.sin(p.w) * p.b, {"k": p.nt.v}, "out"))
    for tree in (p, q):
        o = ro(tree)
        assert type(o) is Axes and o.s == "out"
        np.testing.assert_allclose(o.w, np.sin(tree.w) * tree.b, rtol=1e-15)
        np.testing.assert_array_equal(o.b["k"], tree.nt.v)
    assert (ro.stats.records, ro.stats.replays) == (1, 1)
    rg = dr.replay(dr.grad(loss))
    for tree in (p, q, p):
        g = rg(tree)
        assert type(g) is Params
        assert_tree_close(g, dr.grad(loss)(tree), rtol=1e-13)


def test_custom_jvp_and_custom_vjp_take_dataclasses():
    @dr.custom_vjp
    def energy(p):
        return np.sum(p.w ** 2) * p.b

    def fwd(p):
        return energy(p), p

    def bwd(p, ct):  # scaled by 3 on purpose: the test sees that the rule is used
        return (dataclasses.replace(p, w=3 * 2 * p.w * p.b * ct, b=3 * np.sum(p.w ** 2) * ct,
                                    extra={k: 0 * v for k, v in p.extra.items()},
                                    nt=NT(0.0, 0 * p.nt.v)),)

    energy.defvjp(fwd, bwd)
    p = _params()
    g = dr.grad(energy)(p)
    assert type(g) is Params
    np.testing.assert_allclose(g.w, 6 * p.w * p.b)
    assert g.b == pytest.approx(3 * np.sum(p.w ** 2))

    @dr.custom_jvp
    def smooth(a):
        return np.sum(np.tanh(a.w)) * a.b

    @smooth.defjvp
    def smooth_jvp(primals, tangents):
        (a,), (t,) = primals, tangents
        s = np.tanh(a.w)
        return smooth(a), np.sum((1 - s ** 2) * t.w) * a.b + np.sum(s) * t.b

    a = Axes(np.array([0.1, -0.3]), 2.0)
    ga = dr.grad(smooth)(a)
    assert type(ga) is Axes
    assert_tree_close(ga, dr.jacfwd(smooth)(a), rtol=1e-14)
    np.testing.assert_allclose(flat(ga), fd_grad(smooth, a), rtol=1e-8)


def test_check_grads_passes_and_catches_a_wrong_rule():
    p = _params()
    check_grads(loss, (p,), order=2)
    check_grads(vector_out, (p,))

    @dr.custom_vjp
    def wrong(p):
        return np.sum(p.w ** 2)

    def wrong_bwd(p, ct):  # misses the factor 2
        leaves, td = dr.tree_flatten(p)
        return (dr.tree_unflatten(td, [p.w * ct] + [0 * v for v in leaves[1:]]),)

    wrong.defvjp(lambda p: (wrong(p), p), wrong_bwd)
    with pytest.raises(AssertionError):
        check_grads(wrong, (p,), modes=("rev",))


def test_registered_classes_inside_a_list_and_a_dict():
    rng = np.random.default_rng(7)
    net = [Layer(rng.standard_normal((3, 2)), rng.standard_normal(3)),
           Layer(rng.standard_normal((1, 3)), rng.standard_normal(1))]
    x = rng.standard_normal((2, 5))

    def mlp(net, x):
        for layer in net:
            x = np.tanh(layer.W @ x + layer.c[:, None])
        return np.sum(x ** 2)

    g = dr.grad(mlp)(net, x)
    assert type(g) is list and all(type(v) is Layer for v in g)
    np.testing.assert_allclose(flat(g), fd_grad(lambda n: mlp(n, x), net), rtol=1e-7)
    assert_tree_close(g, dr.jacfwd(mlp)(net, x), rtol=1e-12)
    both = dr.grad(lambda d: mlp(d["net"], x) * d["p"].b)({"net": net, "p": _params()})
    assert type(both["p"]) is Params and type(both["net"][1]) is Layer


def test_ravel_pytree_and_tree_map():
    p = _params()
    v, unravel = dr.ravel_pytree(p)
    assert v.shape == (13,)
    back = unravel(2 * v)
    assert type(back) is Params and back.act == "tanh"
    np.testing.assert_allclose(back.extra["d"], 2 * p.extra["d"])
    doubled = dr.tree_map(lambda a, b: a + b, p, p)
    assert type(doubled) is Params
    np.testing.assert_allclose(flat(doubled), 2 * v)
    with pytest.raises(DualrevError, match=r"tree 2 differs from the first at the top: a "
                                           r"Params with static \(meta\) data \('sin',\)"):
        dr.tree_map(lambda a, b: a + b, p, _params(act="sin"))
    with pytest.raises(DualrevError, match=r"at \.b\['c'\]: expected a tuple of 2, got "
                                           r"list"):
        dr.tree_map(lambda a, b: a + b, Axes(np.ones(2), {"c": (1.0, 2.0)}),
                    Axes(np.ones(2), {"c": [1.0, 2.0]}))
    with pytest.raises(DualrevError, match=r"at \.b: expected a dict with keys \['c'\]"):
        dr.tree_map(lambda a, b: a + b, Axes(np.ones(2), {"c": 1.0}),
                    Axes(np.ones(2), {"d": 1.0}))
    # JAX's prefix rule: a leaf of the first tree meets a subtree of the second
    pairs = dr.tree_map(lambda a, b: (a, b), Axes(0, 1), Axes((1, 2), {"z": 3}))
    assert pairs.w == (0, (1, 2)) and pairs.b == (1, {"z": 3})


def test_optimize_minimize_returns_the_users_type():
    target = _params(seed=9)

    def objective(p):
        d = dr.tree_map(lambda a, b: a - b, p, target)
        return sum(np.sum(v ** 2) for v in dr.tree_flatten(d)[0])

    res = dro.minimize(objective, x0=_params())
    assert res.success and type(res.x) is Params and res.x.act == "tanh"
    np.testing.assert_allclose(flat(res.x), flat(target), atol=1e-6)
    ls = dro.least_squares(lambda a: np.concatenate([np.exp(a.w) - [1.0, 2.0], [a.b ** 3 - 8]]),
                           Axes(np.zeros(2), 1.0, "fit"))
    assert type(ls.x) is Axes and ls.x.s == "fit"
    np.testing.assert_allclose(flat(ls.x), [0.0, np.log(2.0), 2.0], atol=1e-8)


def test_checkpoint_and_checkpoint_loop_take_a_dataclass():
    p = _params()
    assert_tree_close(dr.grad(dr.checkpoint(loss))(p), dr.grad(loss)(p), rtol=1e-14)

    def step(s, k):  # a dataclass state carried through the loop
        u = s.w + 0.1 * np.sin(k * s.w)
        return Axes(u, s.b + np.sum(u ** 2), s.s)

    def plain(u0, k):
        s = Axes(u0, 0.0, "state")
        for _ in range(20):
            s = step(s, k)
        return s.b

    u0 = np.array([0.3, 0.7])
    for schedule in ("revolve", "segments"):
        ours = dr.grad(lambda u0, k, sc=schedule: dr.checkpoint_loop(
                           step, Axes(u0, 0.0, "state"), 20, k, schedule=sc).b,
                       argnums=(0, 1))(u0, 1.3)
        ref = dr.grad(plain, argnums=(0, 1))(u0, 1.3)
        np.testing.assert_allclose(ours[0], ref[0], rtol=1e-13)
        assert ours[1] == pytest.approx(ref[1], rel=1e-13)
    h = 1e-6
    assert ref[1] == pytest.approx((plain(u0, 1.3 + h) - plain(u0, 1.3 - h)) / (2 * h),
                                   rel=1e-6)


def test_int_and_none_fields():
    @dr.register_dataclass
    @dataclass
    class Cfg:
        x: np.ndarray
        n: int  # a leaf: promoted to float and differentiated, as any integer input
        steps: int = field(default=2, metadata={"static": True})
        unused: None = None

    def f(c):
        s = 0.0
        for i in range(c.steps):  # a static int is a plain int inside the transform
            s = s + c.x[i] * c.n
        return s

    g = dr.grad(f)(Cfg(np.array([1.0, 2.0, 4.0]), 3))
    assert g.unused is None and g.steps == 2
    np.testing.assert_allclose(g.x, [3.0, 3.0, 0.0])
    assert g.n == pytest.approx(3.0) and np.asarray(g.n).dtype == np.float64


@dr.register_dataclass
@dataclass
class Box:
    a: object
    b: object
    tag: str = field(default="", metadata={"static": True})


def _random_tree(rng, depth):
    kind = rng.integers(0, 9 if depth < 3 else 2)
    if kind == 0:
        return rng.standard_normal(tuple(rng.integers(1, 4, size=rng.integers(0, 3))))
    if kind == 1:
        return float(rng.standard_normal())
    kids = [_random_tree(rng, depth + 1) for _ in range(2)]
    return [None, tuple(kids), list(kids), {"y": kids[0], "x": kids[1]}, NT(*kids),
            Box(*kids, tag=str(rng.integers(3))), Layer(*kids)][kind - 2]


def test_random_nested_trees_flatten_rebuild_and_differentiate():
    """Random nestings of every container (a registered dataclass and a node class among
    them): the structure survives flatten/unflatten, and grad, jacfwd and vjp give each
    leaf its closed-form derivative k * cos(leaf) in the tree's own types."""
    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(40):
        tree = _random_tree(rng, 0)
        leaves, td = dr.tree_flatten(tree)
        if not leaves:
            continue
        back = dr.tree_unflatten(td, leaves)
        assert dr.tree_flatten(back)[1] == td and repr(dr.tree_flatten(back)[1]) == repr(td)

        def f(t):
            return sum((k + 1) * np.sum(np.sin(v)) for k, v in enumerate(dr.tree_flatten(t)[0]))

        want = dr.tree_unflatten(td, [(k + 1) * np.cos(v) for k, v in enumerate(leaves)])
        for g in (dr.grad(f)(tree), dr.jacfwd(f)(tree), dr.vjp(f, tree)[1](1.0)[0]):
            assert_tree_close(g, want, rtol=1e-14)
        checked += 1
    assert checked >= 25


def test_graph_names_a_dataclass_argument_by_its_fields():
    # dr.graph zipped the inputs with names read from tuples, lists and dicts only, so any
    # registered node (a dataclass, a Layer, an xarray DataArray) made it raise ValueError
    p = _params()
    g = dr.graph(loss)(p)
    names = [n.name for n in g.inputs]
    assert names == ["p.w", "p.b", "p.extra['c']", "p.extra['d']", "p.nt.u", "p.nt.v"]
    node = g.node("p.b")
    assert node.value == pytest.approx(p.b)
    assert node.grad == pytest.approx(dr.grad(loss)(p).b, rel=1e-14)
    net = [Layer(np.ones((2, 2)), np.zeros(2))]
    assert [n.name for n in dr.graph(lambda net: np.sum(net[0].W @ net[0].c))(net).inputs] \
        == ["net[0][0]", "net[0][1]"]


@pytest.mark.jax
def test_jacobians_nest_as_jaxs_do():
    """The same dataclass registered with JAX: jacrev's nesting (output structure holding
    the input's), the static field kept, and the numbers, leaf by leaf."""
    from tests.jaxref import jax_modules

    jax, jnp = jax_modules()

    @dataclass
    class J:
        w: object
        b: object
        tag: str = field(default="t", metadata={"static": True})

    dr.register_dataclass(J)
    jax.tree_util.register_dataclass(J)

    def f(xp, p):
        return J(xp.tanh(p.w) * p.b, {"s": xp.sum(p.w ** 2) * p.b}, "out")

    p = J(np.array([0.2, -0.4, 0.9]), 1.5)
    ours = dr.jacrev(lambda p: f(np, p))(p)
    theirs = jax.jacrev(lambda p: f(jnp, p))(J(jnp.asarray(p.w), jnp.asarray(p.b)))
    lo, to = dr.tree_flatten(ours)
    lt, tt = jax.tree_util.tree_flatten(theirs)
    assert repr(to) == "J(w=J(w=*, b=*, tag='t'), b={'s': J(w=*, b=*, tag='t')}, tag='out')"
    assert len(lo) == len(lt) == 4 and str(tt).count("J[") == 3
    for a, b in zip(lo, lt, strict=True):
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-14)
    np.testing.assert_allclose(dr.ravel_pytree(dr.grad(lambda p: f(np, p).b["s"])(p))[0],
                               np.concatenate([np.ravel(v) for v in jax.tree_util.tree_leaves(
                                   jax.grad(lambda p: f(jnp, p).b["s"])(p))]), rtol=1e-14)


def test_solve_ivp_with_dataclass_parameters():
    """The issue's pharmacologist: a two-compartment model's parameters in a dataclass,
    passed through solve_ivp's args; the gradient against finite differences."""
    from dualrev.integrate import solve_ivp

    @dr.register_dataclass
    @dataclass(frozen=True)
    class PK:
        ka: float
        ke: float
        model: str = field(default="oral", metadata={"static": True})

    def rhs(t, y, p):
        return np.array([-p.ka * y[0], p.ka * y[0] - p.ke * y[1]])

    def concentration(p):
        sol = solve_ivp(rhs, (0.0, 2.0), np.array([1.0, 0.0]), args=(p,), rtol=1e-9,
                        atol=1e-11)
        return sol.y[1, -1]

    p = PK(1.2, 0.3)
    g = dr.grad(concentration)(p)
    assert type(g) is PK and g.model == "oral"
    np.testing.assert_allclose(flat(g), fd_grad(concentration, p), rtol=1e-5)
