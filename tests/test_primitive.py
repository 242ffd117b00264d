"""The primitive machinery: what the tape keeps, scalar fast paths, in-place sums."""

import gc
import weakref

import numpy as np
import pytest

import dualrev as dr
from dualrev import primitive
from dualrev.primitive import Primitive, rule_reads
from dualrev.reverse import Tape
from tests.helpers import check_like_numpy


def test_rule_reads_finds_the_arguments_a_rule_uses():
    assert rule_reads(lambda g, ans, x, y: g * y) == {1}
    assert rule_reads(lambda g, ans, x: g * ans) == {-1}
    assert rule_reads(lambda g, ans, x, axis: [x for _ in range(2)]) == {0}
    assert rule_reads(lambda g, ans, *args: g) is None  # cannot tell: keep everything


def _times(vjp_x):
    """x * y with the given VJP rule for x (y's rule reads x plainly)."""
    return Primitive("times", np.multiply).defjvp(
        lambda g, ans, x, y: g * y, lambda g, ans, x, y: x * g).defvjp(
        vjp_x, lambda g, ans, x, y: g * x)


@pytest.mark.parametrize("vjp_x", [
    lambda g, ans, x, y: [y * g for _ in range(1)][0],       # 3.13: STORE_FAST_LOAD_FAST
    lambda g, ans, x, y: sum(y * g for _ in range(1)),        # a nested code object
    lambda g, ans, x, y: {k: y * g for k in range(1)}[0],
], ids=["list", "generator", "dict"])
def test_rule_reads_sees_loads_inside_comprehensions(vjp_x):
    # On 3.13 a rule reading y only inside a comprehension was said to read nothing, so
    # the tape dropped y and the backward pass failed.
    assert rule_reads(vjp_x) == {1}
    times = _times(vjp_x)
    y = np.array([2.0, -3.0, 0.5])
    np.testing.assert_array_equal(dr.grad(lambda x: np.sum(times(x, y)))(np.ones(3)), y)


def test_rule_reads_unknown_opcodes_keep_everything(monkeypatch):
    # An interpreter whose local-variable opcodes the table does not know (a future
    # CPython): rule_reads cannot tell, and the tape keeps every argument.
    monkeypatch.setattr(primitive, "_READS", frozenset())
    vjp_x = lambda g, ans, x, y: g * y
    assert rule_reads(vjp_x) is None
    times = _times(vjp_x)
    assert times.keep_plan(0) is None
    y = np.array([2.0, -3.0, 0.5])
    np.testing.assert_array_equal(dr.grad(lambda x: np.sum(times(x, y)))(np.ones(3)), y)


def test_tape_drops_intermediates_no_rule_reads():
    refs = []

    def f(x):
        y = x * 2.0          # multiply's VJP w.r.t. x reads only the constant 2.0
        refs.append(weakref.ref(y.primal))
        z = y + 1.0          # add's VJP reads nothing
        w = np.sin(z)        # sin's reads z: z is kept, y is not
        del y
        gc.collect()
        assert refs[0]() is None, "the tape kept an intermediate no rule needs"
        return np.sum(w)

    x = np.linspace(0, 1, 1000)
    np.testing.assert_allclose(dr.grad(f)(x), 2 * np.cos(2 * x + 1), rtol=1e-14)


def test_in_place_accumulation_never_touches_shared_values():
    # The same cotangent array flows to several places (add passes it through); summing
    # into one of them must not change the others.
    def f(x):
        a = x + 0.0
        b = a + a + a          # a's cotangent is summed from three contributions
        return np.sum(b * x)

    x = np.arange(4.0)
    np.testing.assert_array_equal(dr.grad(f)(x), 6 * x)
    seed = np.ones(3)
    tape = Tape(level=10**9)
    xi = tape.input(np.ones(3))
    y = xi + xi
    tape.backward({y._index: seed})
    np.testing.assert_array_equal(seed, np.ones(3))  # the caller's seed is untouched


def test_scalar_fast_path_matches_numpy_semantics():
    with np.errstate(divide="ignore", invalid="ignore"):
        v, g = dr.value_and_grad(lambda x: x / 0.0)(1.0)
        assert v == np.inf
        v, _ = dr.value_and_grad(lambda x: (-x) ** 0.5)(2.0)
        assert np.isnan(v)  # NumPy's nan, not Python's complex root
        v, _ = dr.value_and_grad(lambda x: x ** -1.0 * 0.0 + 0.0 ** x)(-1.0)
        assert v == np.inf


@pytest.mark.parametrize("n", [3, 50])
def test_scatter_into_owned_buffer_matches_dense_rule(n):
    x = np.random.default_rng(0).standard_normal(n)
    f = lambda x: sum(x[i] * x[(i + 1) % n] for i in range(n))
    expected = np.roll(x, 1) + np.roll(x, -1)
    np.testing.assert_allclose(dr.grad(f)(x), expected, rtol=1e-14)
    # the batched (jacrev) path uses the dense rule; both must agree
    np.testing.assert_allclose(dr.jacrev(f)(x), expected, rtol=1e-14)

LIST_V, LIST_M = np.array([0.3, 0.6, 0.9]), np.array([[2.0, 0.5], [0.3, 1.5]])
LIST_ARGS = {
    "power": (lambda x: x ** [1.0, 2, 3], LIST_V),
    "arctan2": (lambda x: np.arctan2([1.0, 2, 3], x), LIST_V),
    "maximum": (lambda x: np.maximum(x, [0.5, 0.5, 0.5]), LIST_V),
    "where": (lambda x: np.where(x > 0.5, x, [5.0, 6, 7]), LIST_V),
    "rmatmul": (lambda m: [1.0, 2.0] @ m, LIST_M),
    "matmul": (lambda m: np.matmul([[1.0, 0.2], [0.1, 2.0]], m), LIST_M),
    "dot": (lambda x: np.dot(x, [1.0, 2.0, 3.0]), LIST_V),
    "tuple_operand": (lambda x: x * (1.0, 2.0, 3.0), LIST_V),
    "concatenate": (lambda x: np.concatenate([x, [1.0]]), LIST_V),
    "stack": (lambda x: np.stack([[1.0, 2, 3], x]), LIST_V),
    "einsum": (lambda m: np.einsum('ij,j->i', m, [1.0, 2.0]), LIST_M),
}


@pytest.mark.parametrize("name", sorted(LIST_ARGS))
def test_primitives_take_python_lists_as_numpy_does(name):
    # rules indexed and transposed list arguments (x ** [..], [..] @ m, solve(a, [..]))
    check_like_numpy(*LIST_ARGS[name])


def test_no_handler_ignores_a_keyword():
    # Every keyword a handler accepts is read, or has no effect on values (a reason in
    # tests/keyword_sweep.py); every **kwargs handler says what it does with them.
    from tests.keyword_sweep import NO_EFFECT, PENDING, decision, sweep

    rows = sweep()
    assert len(rows) > 50  # the sweep sees the registries
    undecided = [r for r in rows if not decision(r) and r[2] != "lacks (TypeError)"]
    assert not undecided, undecided
    found = {(r[0], r[1]) for r in rows}
    assert set(NO_EFFECT) <= found, set(NO_EFFECT) - found  # stale reasons
    assert not set(NO_EFFECT) & PENDING


def _sweep_cases():
    # Handlers reading (or not) their keywords in the ways the sweep's source reader
    # must tell apart; each returns nothing useful, only its body's reads matter.
    def shadowed(a, axis=None, out=None):
        return [axis for axis in a], (lambda out: out)(a)

    def through_scopes(a, axis=None, dtype=None, out=None, keep=None):
        axis += 1
        inner = lambda v=dtype: v  # a default runs in the handler's scope

        def nested():
            nonlocal keep
            keep = out
        return inner, nested, {k: axis for k in a}

    def everything(a, axis=None, **kwargs):
        return locals()

    return shadowed, through_scopes, everything


def test_keyword_sweep_reads_source_scopes():
    from tests.keyword_sweep import _handler_keywords

    shadowed, through_scopes, everything = _sweep_cases()
    assert _handler_keywords(shadowed) == (["a", "axis", "out"], ["axis", "out"], False)
    assert _handler_keywords(through_scopes) == (
        ["a", "axis", "dtype", "out", "keep"], ["keep"], False)
    assert _handler_keywords(everything) == (["a", "axis"], [], True)
    assert _handler_keywords(np.add).startswith("not a Python function")
