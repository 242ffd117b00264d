"""The tape: iterative backward pass (no recursion limit), released after use,
reusable pullbacks."""

import gc
import weakref

import numpy as np
import pytest

import dualrev as dr
from dualrev.primitive import NotSaved, Shaped
from dualrev.reverse import Tape


def test_million_op_tape_has_no_recursion_limit():
    def chain(x):
        for _ in range(1_000_000):
            x = x + 1e-7
        return x * 2.0

    assert dr.grad(chain)(1.0) == 2.0


def test_deep_forward_chain():
    def chain(x):
        for _ in range(100_000):
            x = x * 1.0
        return x

    assert dr.jvp(chain, (3.0,), (2.0,)) == (3.0, 2.0)


def test_tape_and_intermediates_released_after_grad():
    refs = []

    def f(x):
        y = np.sin(x)
        refs.append(weakref.ref(y.primal))  # an intermediate the tape holds
        return np.sum(y**2)

    dr.grad(f)(np.ones(5))
    gc.collect()
    assert refs and refs[0]() is None


def test_intermediates_freed_during_backward():
    # Each entry is released as soon as its cotangent has been pushed to its parents.
    tape = Tape(level=10**9)
    x = tape.input(np.ones(3))
    y = np.sin(x) * 2.0
    tape.backward({y._index: np.ones(3)})
    assert all(node.prim is None for node in tape.nodes)


def test_tape_keeps_what_the_rules_declare():
    # sin's VJP reads x, exp's reads ans, sum's only x's shape (dualrev's catalogue
    # declarations): the tape's entries hold exactly those.
    tape = Tape(level=10**9)
    x = np.linspace(0.1, 1.0, 5)
    u = tape.input(x) * 2.0  # an intermediate, not an input of the tape
    s, e, t = np.sin(u), np.exp(u), np.sum(u)
    entry = tape.nodes[s._index]
    primals, ans = entry.kept, entry.out
    assert primals[0] is u.primal and isinstance(ans, NotSaved)
    entry = tape.nodes[e._index]
    primals, ans = entry.kept, entry.out
    assert ans is e.primal and isinstance(primals[0], NotSaved)
    entry = tape.nodes[t._index]
    primals, ans = entry.kept, entry.out
    assert isinstance(primals[0], Shaped) and primals[0].shape == (5,)
    assert isinstance(ans, NotSaved)
    total = s + e + t
    grads = tape.backward({total._index: np.ones(5)})
    want = 2 * np.cos(2 * x) + 2 * np.exp(2 * x) + 2 * 5
    np.testing.assert_allclose(grads[0], want, rtol=1e-14)


def test_exp_input_freed_sin_input_kept():
    refs = {}

    def f(x):
        u, v = x * 2.0, x * 3.0
        refs["u"], refs["v"] = weakref.ref(u.primal), weakref.ref(v.primal)
        y = np.exp(u) + np.sin(v)
        del u, v
        gc.collect()
        assert refs["u"]() is None, "the tape kept the input of exp, whose VJP reads ans"
        assert refs["v"]() is not None, "sin's VJP reads its input"
        return np.sum(y)

    x = np.linspace(0, 1, 7)
    np.testing.assert_allclose(dr.grad(f)(x), 2 * np.exp(2 * x) + 3 * np.cos(3 * x),
                               rtol=1e-14)


def test_pullback_reusable():
    _, pullback = dr.vjp(lambda x: np.sin(x) * x, np.array([0.1, 0.2]))
    a = pullback(np.array([1.0, 0.0]))[0]
    b = pullback(np.array([1.0, 0.0]))[0]
    np.testing.assert_array_equal(a, b)


def test_work_buffer_rewritten_after_use_does_not_change_the_gradient():
    # The tape used to hold the buffer by reference: its VJP read the new contents.
    x = np.array([0.5, -1.0, 2.0])

    def f(x):
        buf = np.full(3, 2.0)
        y = x * buf       # d/dx reads buf
        buf[:] = 5.0      # the buffer reused for something else
        z = np.sin(x) @ buf
        buf *= 0.0
        return np.sum(y**2) + z

    want = 2 * x * 4.0 + 5.0 * np.cos(x)
    np.testing.assert_allclose(dr.grad(f)(x), want, rtol=1e-15)
    np.testing.assert_allclose(dr.jacrev(f)(x), want, rtol=1e-15)
    np.testing.assert_allclose(dr.jacfwd(f)(x), want, rtol=1e-15)

    def loop(x):
        buf = np.empty(3)
        s = 0.0
        for k in range(3):
            buf[:] = k + 1.0  # the classic reused work buffer
            s = s + np.sum(np.exp(x) * buf)
        return s

    np.testing.assert_allclose(dr.grad(loop)(x), 6.0 * np.exp(x), rtol=1e-14)


def test_vjp_pullback_reads_inputs_and_constants_as_they_were():
    x = np.array([0.3, 0.9])
    c = np.array([2.0, 3.0])
    _, pullback = dr.vjp(lambda x: np.sin(x) * c, x)
    want = np.cos(x) * c
    x[:] = 10.0  # the caller rewrites both after vjp returned
    c[:] = -1.0
    np.testing.assert_allclose(pullback(np.ones(2))[0], want, rtol=1e-15)


def test_matrix_reused_then_rewritten_keeps_each_uses_values():
    # One copy is shared while the matrix is unchanged; a rewrite gives a new one.
    rng = np.random.default_rng(3)
    W0 = rng.standard_normal((3, 3))
    x = rng.standard_normal(3)

    def f(x, W):
        h = np.tanh(W @ x)
        h = np.tanh(W @ h)
        W *= -2.0  # in place, between the second and the third use
        return np.sum(np.tanh(W @ h))

    def plain(x):  # the same function with W never written
        h = np.tanh(W0 @ np.tanh(W0 @ x))
        return np.sum(np.tanh((-2.0 * W0) @ h))

    np.testing.assert_allclose(dr.grad(f)(x, W0.copy()), dr.grad(plain)(x), rtol=1e-14)
    np.testing.assert_allclose(dr.jacrev(f)(x, W0.copy()), dr.grad(plain)(x), rtol=1e-14)


# ------------------------------------------------------------------ the program and its walker
# (docs/design.md, "The tape as a program"): named entries, one reverse walker with its
# strategies chosen when a primitive is declared, watches for the careful passes and the
# drawing.

import ast  # noqa: E402
from pathlib import Path  # noqa: E402

from dualrev import config  # noqa: E402
from dualrev.batching import Batched, BatchTrace  # noqa: E402
from dualrev.catalogue.contraction import matmul_p  # noqa: E402
from dualrev.catalogue.indexing import gather_p  # noqa: E402
from dualrev.primitive import GENERAL, PARTIALS, RULE, UFUNC_HANDLERS, Primitive  # noqa: E402
from dualrev.reverse import (  # noqa: E402
    CarefulTape,
    Constant,
    Entry,
    Input,
    Watch,
    backward_pass,
    forward_pass,
)
from dualrev.tracer import new_level  # noqa: E402


def test_entries_are_named_and_inputs_and_constants_told_apart():
    tape = Tape(new_level(), keep_all=True)
    x = tape.input(np.array([1.0, 2.0]))
    c = tape.constant(np.array([3.0, 4.0]))
    y = np.sin(x) * c
    tape.finish()
    entries = tape.nodes
    assert [type(e) for e in entries[:2]] == [Input, Constant]
    assert [e.kind for e in entries] == ["input", "constant", "op", "op"]
    mul = entries[y._index]
    assert type(mul) is Entry and mul.prim is UFUNC_HANDLERS[np.multiply]
    # one edge per traced argument: (argument position, source entry, shape, kind)
    assert [(a, s, sh) for a, s, sh, _ in mul.edges] == [(0, 2, (2,)), (1, 1, (2,))]
    np.testing.assert_array_equal(mul.out, np.sin([1.0, 2.0]) * [3.0, 4.0])
    g = tape.backward({y._index: np.ones(2)}, keep=True)
    np.testing.assert_allclose(g[x._index], np.cos([1.0, 2.0]) * [3.0, 4.0])
    np.testing.assert_allclose(g[c._index], np.sin([1.0, 2.0]))  # (a constant's: dropped)


def _declared(partials: bool, vjp_add: bool = False) -> Primitive:
    p = Primitive("twice", lambda x: 2.0 * x, elementwise=True)
    p.defjvp(lambda g, ans, x: 2.0 * g).defvjp(lambda g, ans, x: 2.0 * g, saves="")
    if partials:
        p.partials = (lambda ans, x: 2.0,)
    if vjp_add:
        p.vjp_add = lambda acc, g, ans, x: NotImplemented
    return p


def test_each_strategy_is_chosen_when_the_primitive_is_declared():
    with config.shortcuts(True):
        rule, part, scat = _declared(False), _declared(True), _declared(False, True)
        assert (rule.strategy, part.strategy, scat.strategy) == (RULE, PARTIALS, RULE)
        assert rule.scatter is None and scat.scatter is scat.vjp_add
        assert part.fast_partials is part.partials
        # setting a speed-up later declares again
        rule.partials = (lambda ans, x: 2.0,)
        assert rule.strategy == PARTIALS
        rule.partials = None
        assert rule.strategy == RULE and rule.fast_partials is None
        # the catalogue's: sin by partials, matmul by its rules, gathers scatter
        assert UFUNC_HANDLERS[np.sin].strategy == PARTIALS and matmul_p.strategy == RULE
        assert gather_p.scatter is gather_p.vjp_add is not None
        assert UFUNC_HANDLERS[np.add].fast_scalar is not None


def test_the_switch_declares_every_primitive_again_and_back():
    prims = [_declared(False), _declared(True), _declared(False, True),
             UFUNC_HANDLERS[np.sin], UFUNC_HANDLERS[np.add]]
    with config.shortcuts(True):
        on = [(p.strategy, p.scatter, p.fast_partials, p.fast_scalar) for p in prims]
        with config.shortcuts(False):
            for p in prims:
                assert (p.strategy, p.scatter, p.fast_partials, p.fast_scalar) == (
                    GENERAL, None, None, None)
            late = _declared(True, True)  # declared while the shortcuts are off
            assert (late.strategy, late.scatter, late.fast_partials) == (GENERAL, None, None)
        assert [(p.strategy, p.scatter, p.fast_partials, p.fast_scalar) for p in prims] == on
        assert late.strategy == PARTIALS and late.scatter is late.vjp_add


def test_every_strategy_gives_the_rules_numbers():
    # the same primitive pulled by each strategy, on float64 (inline), complex and
    # batched cotangents: all equal to its plain rule
    def run(p, g, x):
        tape = Tape(new_level())
        t = tape.input(x)
        y = p(t)
        tape.finish()
        return tape.backward({y._index: g})[t._index]

    x = np.array([0.5, -1.5, 2.0])
    trace = BatchTrace(new_level(), 2)
    for g in (np.array([1.0, 2.0, 3.0]), np.array([1j, 2.0, -1j]), 4.0):
        want = 2.0 * np.real(np.broadcast_to(g, x.shape))
        for on in (True, False):
            with config.shortcuts(on):
                for p in (_declared(False), _declared(True)):
                    np.testing.assert_array_equal(run(p, g, x), want)
    with config.shortcuts(True):
        gb = Batched(np.arange(6.0).reshape(2, 3), trace)
        for p in (_declared(False), _declared(True)):
            np.testing.assert_array_equal(run(p, gb, x).primal, 2.0 * gb.primal)
    trace.finish()


def _f(x):
    return np.sum(np.tanh(x[1:] * x[:-1])) + np.sum(np.exp(-x) * x[0]) + x[2] ** 2


_A = np.array([[0.5, -1.0, 0.25, 2.0], [1.5, 0.5, -0.5, 1.0]])


def _g(x):  # matrix products, a reduction with axis
    return np.sum(np.max(np.tanh(_A @ x[:, None] * x), axis=0) ** 2)


def _h(x):  # element reads one by one (gather's scatter into the pass's buffer)
    s = x[0] * x[3]
    for i in range(1, 4):
        s = s + np.cos(x[i]) * x[i - 1]
    return s


@pytest.mark.parametrize("f", [_f, _g, _h])
def test_the_watches_give_the_plain_passes_numbers(f):
    # the drawing's watch (each edge's share) and the careful watches (strong zeros)
    # against the plain walker, on finite functions: the same cotangents and tangents
    x = np.array([0.3, -0.7, 1.1, 0.4])

    def record(cls=Tape):
        tape = cls(new_level(), keep_all=True)
        t = tape.input(x)
        y = f(t)
        tape.finish()
        return tape, t._index, y._index

    tape, i, o = record()
    plain = backward_pass(tape.nodes, {o: 1.0}, keep=True)
    for watch in (Watch(), None):
        got = backward_pass(tape.nodes, {o: 1.0}, True, watch)
        np.testing.assert_allclose(got[i], plain[i], rtol=1e-15)
    careful, ci, co = record(CarefulTape)
    np.testing.assert_allclose(careful.backward({co: 1.0})[ci], plain[i], rtol=1e-14)
    assert careful.culprit is None
    v = np.array([1.0, -2.0, 0.5, 3.0])
    push = forward_pass(tape.nodes, {i: v})[o]
    np.testing.assert_allclose(forward_pass(tape.nodes, {i: v}, Watch())[o], push)
    np.testing.assert_allclose(careful.push({ci: v})[co], push, rtol=1e-14)
    np.testing.assert_allclose(push, plain[i] @ v, rtol=1e-13)
    np.testing.assert_allclose(plain[i], dr.grad(f)(x), rtol=1e-15)
    # jacrev's batched pass through the same walker: the rows are the gradients
    trace = BatchTrace(new_level(), 2)
    tape2, i2, o2 = record()
    rows = tape2.backward({o2: Batched(np.array([1.0, 2.0]), trace)})[i2]
    trace.finish()
    np.testing.assert_allclose(rows.primal, [plain[i], 2.0 * plain[i]], rtol=1e-15)


def test_a_careful_pass_is_the_walker_with_strong_zeros():
    # sqrt at 0 behind np.where: the plain pass gives nan, the careful one 0 and names
    # no culprit for the cut branch
    def f(x):
        return np.sum(np.where(x > 0, np.sqrt(np.abs(x)), x))

    x = np.array([0.0, 4.0])
    tape = CarefulTape(new_level())
    t = tape.input(x)
    y = f(t)
    tape.finish()
    g = tape.backward({y._index: 1.0})[t._index]
    np.testing.assert_array_equal(g, [1.0, 0.25])


def _reverse_loops_over_entries(path: Path) -> list[str]:
    """Functions in ``path`` with a for loop run in reverse (a range with step -1, or
    reversed()) whose body reads tape entries (``nodes``, ``.edges``)."""
    tree = ast.parse(path.read_text())
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for loop in ast.walk(fn):
            if not isinstance(loop, ast.For):
                continue
            it = loop.iter
            backwards = isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and (
                it.func.id == "reversed" or (
                    it.func.id == "range" and len(it.args) == 3
                    and isinstance(it.args[2], ast.UnaryOp)))
            if not backwards:
                continue
            reads = {n.id for b in loop.body for n in ast.walk(b) if isinstance(n, ast.Name)}
            reads |= {n.attr for b in loop.body for n in ast.walk(b)
                      if isinstance(n, ast.Attribute)}
            if "nodes" in reads or "edges" in reads:
                found.append(fn.name)
    return found


def test_one_reverse_walker_over_tape_entries():
    package = Path(dr.__file__).resolve().parent
    walkers = {f"{p.relative_to(package)}:{name}" for p in sorted(package.rglob("*.py"))
               for name in _reverse_loops_over_entries(p)}
    assert walkers == {"reverse.py:backward_pass"}, (
        "a second reverse loop over tape entries: pass a reverse.Watch to backward_pass "
        "instead")

def test_the_elided_product_is_the_general_paths_to_the_bit():
    # pull's in-place product into a private temporary computes g * d as its general
    # branch does: a complex product with FMA differs by an ulp between d * g and g * d
    # (found by dualrev.replay, whose recording takes the general branch)
    f = dr.grad(lambda z: np.abs(np.sum(z ** 2)) ** 2)
    for seed in range(5):
        z = np.random.default_rng(seed).uniform(0.2, 1.2, 3) * (1 + 2j)
        fast = f(z)
        with dr.config.shortcuts(False):
            plain = f(z)
        assert fast.tobytes() == plain.tobytes()
