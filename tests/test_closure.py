"""dualrev.closure.lift: the traced values a callback closes over, found and made its
trailing arguments, without changing the user's function or objects."""

import dataclasses
import functools
import threading
from collections import namedtuple

import numpy as np
import pytest

import dualrev as dr
from dualrev.closure import Lifted, lift
from dualrev.errors import ClosureError
from dualrev.primitive import Tracer

Pair = namedtuple("Pair", "a b")


def lifted_value(make, x=1.5):
    """grad and jacfwd of ``t -> g(x, *params)`` where ``g, params = lift(make(t))``,
    with the checks every conversion must pass: g with plain params gives a plain
    value equal to the function's, and the user's callable is unchanged."""
    def run(t):
        fun = make(t)
        g, params = lift(fun)
        assert params and all(isinstance(p, Tracer) for p in params)
        plain = [float(dr.strip(p)) if np.ndim(dr.strip(p)) == 0 else dr.strip(p)
                 for p in params]
        out_plain = g(x, *plain)
        assert not isinstance(out_plain, Tracer)
        np.testing.assert_allclose(out_plain, dr.strip(fun(x)))
        return g(x, *params)
    return run


def scale(x, a):
    return a * x ** 2


class Model:
    def __init__(self, k):
        self.k = k
        self.calls = 0

    def rhs(self, x):
        return self.k * np.sin(x)

    def __call__(self, x):
        return self.k * np.cos(x)


class Slotted:
    __slots__ = ("k",)

    def __init__(self, k):
        self.k = k

    def f(self, x):
        return self.k ** 2 * x


@dataclasses.dataclass(frozen=True)
class Frozen:
    k: object

    def f(self, x):
        return np.exp(self.k * x)


CASES = {
    "cell": (lambda t: (lambda x: np.exp(-t * x ** 2)),
             lambda t, x: -x ** 2 * np.exp(-t * x ** 2)),
    "list in cell": (lambda t: (lambda box=None: (lambda x: box[0] * x))([t]),
                     lambda t, x: x),
    "dict in cell": (lambda t: (lambda d: (lambda x: d["k"] * x ** 3))({"k": t, "n": 3}),
                     lambda t, x: x ** 3),
    "namedtuple in cell": (lambda t: (lambda p: (lambda x: p.a * x + p.b))(Pair(t, 2.0)),
                           lambda t, x: x),
    "default": (lambda t: (lambda x, a=t: a * np.sin(x)), lambda t, x: np.sin(x)),
    "kwdefault": (lambda t: (lambda x, *, a=t: a * x), lambda t, x: x),
    "partial keyword": (lambda t: functools.partial(scale, a=t), lambda t, x: x ** 2),
    "partial of a closure": (lambda t: functools.partial(lambda x, c: c * t * x, c=2.0),
                             lambda t, x: 2.0 * x),
    "bound method": (lambda t: Model(t).rhs, lambda t, x: np.sin(x)),
    "callable object": (lambda t: Model(t), lambda t, x: np.cos(x)),
    "slots": (lambda t: Slotted(t).f, lambda t, x: 2 * t * x),
    "frozen dataclass": (lambda t: Frozen(t).f, lambda t, x: x * np.exp(t * x)),
}


def _nested_helper(t):
    helper = lambda x: np.exp(-t * x)  # noqa: E731
    return lambda x: 2.0 * helper(x)


CASES["nested helper"] = (_nested_helper, lambda t, x: -2.0 * x * np.exp(-t * x))


def _local_class(t):
    class Local:  # defined where t lives: its __call__ closes over t
        def __call__(self, x):
            return np.sin(t * x)

    return Local()


CASES["class-level __call__ closure"] = (_local_class, lambda t, x: x * np.cos(t * x))


@pytest.mark.parametrize("name", sorted(CASES))
def test_lift_reaches_each_place_a_value_is_kept(name):
    make, derivative = CASES[name]
    run = lifted_value(make)
    t, x = 0.7, 1.5
    np.testing.assert_allclose(dr.grad(run)(t), derivative(t, x), rtol=1e-12)
    np.testing.assert_allclose(dr.jacfwd(run)(t), derivative(t, x), rtol=1e-12)
    h = 1e-6
    fd = (make(t + h)(x) - make(t - h)(x)) / (2 * h)  # the user's function, untraced
    np.testing.assert_allclose(dr.grad(run)(t), fd, rtol=1e-7)


def test_no_transform_no_traced_value_returns_the_function_itself():
    f = lambda x: 2.0 * x  # noqa: E731
    assert lift(f) == (f, ())
    seen = []

    def inside(t):
        g, params = lift(lambda x: 3.0 * x)  # a transform runs, nothing traced closed over
        seen.append(params)
        return t * g(1.0)

    assert dr.grad(inside)(1.0) == 3.0 and seen == [()]


def test_one_parameter_per_traced_value_in_order_and_arrays():
    def f(v):
        a, b = v[0], v[1:]
        g, params = lift(lambda x: a * np.sum(b * x) + a)  # a reached twice: one parameter
        assert len(params) == 2 and params[0] is a and params[1] is b
        return g(np.array([1.0, 2.0]), *params)

    v = np.array([2.0, 3.0, 4.0])
    np.testing.assert_allclose(dr.grad(f)(v), [3.0 + 8.0 + 1.0, 2.0, 4.0])
    np.testing.assert_allclose(dr.jacrev(f)(v), [12.0, 2.0, 4.0])


def test_the_users_function_and_objects_are_unchanged():
    def f(t):
        model = Model(t)
        box = [t]
        fun = lambda x: model.rhs(x) + box[0] * x  # noqa: E731
        cells = [c.cell_contents for c in fun.__closure__]
        before = (dict(vars(model)), list(box), fun.__code__, fun.__closure__)
        g, params = lift(fun)
        assert isinstance(g, Lifted) and g.fun is fun and len(params) == 1
        out = g(1.0, 0.25) + g(2.0, *params)
        assert g(1.0, 0.25) == 0.25 * np.sin(1.0) + 0.25  # plain parameters: plain value
        assert [c.cell_contents for c in fun.__closure__] == cells
        assert vars(model) == before[0] and model.k is t and box == before[1]
        assert box[0] is t and (fun.__code__, fun.__closure__) == before[2:]
        return out

    t = 0.3
    np.testing.assert_allclose(dr.grad(f)(t), np.sin(2.0) + 2.0)


def test_a_recursive_closure():
    def f(t):
        def power(x, n):
            return 1.0 if n == 0 else t * x * power(x, n - 1)

        g, params = lift(power)
        assert g(2.0, 3, 1.0) == 8.0  # the copy calls the copy: plain all the way down
        return g(2.0, 3, *params)

    np.testing.assert_allclose(dr.grad(f)(0.5), 3 * 0.5 ** 2 * 8.0)


def test_under_nesting_and_vmap():
    def f(t):
        g, params = lift(lambda x: np.exp(t * x))
        return g(2.0, *params)

    np.testing.assert_allclose(dr.hessian(f)(0.3), 4.0 * np.exp(0.6))
    np.testing.assert_allclose(dr.grad(dr.grad(f))(0.3), 4.0 * np.exp(0.6))
    ts = np.array([0.1, 0.2, 0.3])
    np.testing.assert_allclose(dr.vmap(f)(ts), np.exp(2.0 * ts))
    np.testing.assert_allclose(dr.vmap(dr.grad(f))(ts), 2.0 * np.exp(2.0 * ts))

    def outer(s):  # a closure over values of two transforms
        def inner(t):
            g, params = lift(lambda x: s * t * x)
            assert len(params) == 2
            return g(3.0, *params)
        return dr.grad(inner)(2.0)

    np.testing.assert_allclose(dr.grad(outer)(5.0), 3.0)


GLOBAL_K = 1.0


def test_a_global_holding_a_traced_value_is_named():
    def f(t):
        global GLOBAL_K
        GLOBAL_K = t
        try:
            return lift(lambda x: GLOBAL_K * x)[0](1.0)
        finally:
            GLOBAL_K = 1.0

    with pytest.raises(ClosureError, match=r"reads the global `GLOBAL_K`.*args=\(\.\.\.\)"):
        dr.grad(f)(2.0)


def test_two_threads_lift_and_call_concurrently():
    def f(t):
        g, params = lift(lambda x: t ** 2 * x)
        total = 0.0
        for i in range(200):
            total = total + g(float(i), *params)
        return total

    results, errors = {}, []

    def work(t):
        try:
            for _ in range(5):
                results[t] = dr.grad(f)(t)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in (0.5, 1.5, 2.5)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for t, v in results.items():
        np.testing.assert_allclose(v, 2 * t * sum(range(200)))


def test_one_lifted_callable_called_from_two_threads_with_different_values():
    def f(t):
        g, params = lift(lambda x: t * x)
        out = {}

        def call(v):
            for _ in range(300):
                r = g(2.0, v)
                assert r == 2.0 * v
            out[v] = r

        threads = [threading.Thread(target=call, args=(v,)) for v in (1.0, 3.0)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert out == {1.0: 2.0, 3.0: 6.0}
        return g(2.0, *params)

    assert dr.grad(f)(1.0) == 2.0


def test_the_walk_is_bounded_and_what_it_misses_is_not_converted():
    """Past MAX_NODES objects (or MAX_DEPTH levels) the walk stops; the value found
    nowhere is not a parameter, so the routine's dynamic check names the callback."""
    from dualrev import closure

    def far(t):
        data = [0.0] * closure.MAX_NODES + [t]
        g, params = lift(lambda x: data[-1] * x)
        return len(params)

    def deep(t):
        box = t
        for _ in range(closure.MAX_DEPTH + 2):
            box = [box]
        g, params = lift(lambda x: x)  # noqa: F841 - the lambda closes over nothing
        h, hp = lift(lambda x: box)
        return len(hp)

    seen = []
    dr.grad(lambda t: seen.append((far(t), deep(t))) or t)(1.0)
    assert seen == [(0, 0)]

    def near(t):
        data = [0.0] * 100 + [t]
        return len(lift(lambda x: data[-1] * x)[1])

    dr.grad(lambda t: seen.append(near(t)) or t)(1.0)
    assert seen[-1] == 1


class Box:
    def __init__(self, v):
        self.v = v


class SlotBox:
    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v


@dataclasses.dataclass(frozen=True)
class FrozenBox:
    v: object


def _get(v):
    return v


def _object_array(v):
    out = np.empty(2, dtype=object)
    out[0] = v
    return out


# (wrap, read): a holder of a value, and how a callback reads the value back
WRAPPERS = [
    (lambda v: [v], lambda h: h[0]),
    (lambda v: (1.0, v), lambda h: h[1]),
    (lambda v: {"a": 2.0, "k": v}, lambda h: h["k"]),
    (lambda v: Pair(v, 0.0), lambda h: h.a),
    (Box, lambda h: h.v),
    (SlotBox, lambda h: h.v),
    (FrozenBox, lambda h: h.v),
    (lambda v: (lambda: v), lambda h: h()),
    (lambda v: functools.partial(_get, v), lambda h: h()),
    (lambda v: functools.partial(_get, v=v), lambda h: h()),
    (lambda v: Box(v).__init__, lambda h: h.__self__.v),
    (lambda v: _object_array(v), lambda h: h[0]),
]


def test_generated_holders_are_converted_and_left_unchanged():
    """Seeded random nestings (1 to 5 levels) of the holders above around the traced value:
    one parameter is found, the derivative is the closed form, a plain parameter gives a
    plain value, and the user's structure still holds the traced value afterwards."""
    rng = np.random.default_rng(20261206)
    count = 0
    for _ in range(60):
        chain = [WRAPPERS[i] for i in rng.integers(0, len(WRAPPERS), rng.integers(1, 6))]
        x = float(rng.uniform(0.5, 2.0))

        def f(t, chain=chain, x=x):
            holder = t
            for wrap, _ in chain:
                holder = wrap(holder)

            def read(h):
                for _, rd in reversed(chain):
                    h = rd(h)
                return h

            fun = lambda y: y * read(holder) ** 2  # noqa: E731
            g, params = lift(fun)
            assert len(params) == 1 and params[0] is t
            assert g(x, 3.0) == x * 9.0
            out = g(x, *params)
            assert read(holder) is t  # the user's structure is untouched
            return out

        np.testing.assert_allclose(dr.grad(f)(0.8), 2 * 0.8 * x, rtol=1e-14)
        count += 1
    assert count == 60
