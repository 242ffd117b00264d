"""The staging trace on its own: what it records (operations, constants, guards) and the
recorded program run on new values against NumPy's own result."""

import operator

import numpy as np
import pytest

import dualrev as dr
from dualrev.primitive import call_plain, concrete, decide, strip
from dualrev.program import GuardFailed
from dualrev.staging import Staged, StagingTrace
from dualrev.tracer import new_level


def record(f, *xs):
    """(program, the staged call's plain output) of ``f`` on staged ``xs``."""
    trace = StagingTrace(new_level())
    ins = [trace.input(x) for x in xs]
    out = f(*ins)
    trace.finish()
    assert type(out) is Staged
    return trace.program([out._index], dr.tree_flatten(0)[1], [type(out.primal)]), out.primal


def kinds(program):
    return [g.kind for g in program.guards]


X = np.array([0.5, -1.5, 2.0])
Y = np.array([1.5, 0.25, -3.0])


def test_operations_replay_numpys_values():
    def f(x):
        return np.sum(np.where(x > 0, np.sin(x) * x, -x) ** 2) + np.max(np.abs(x)) * x[1]
    prog, value = record(f, X)
    assert value == f(X)
    assert kinds(prog) == []  # a comparison is an operation: no guard
    for x in (Y, X * 3):
        assert prog.run([x])[0] == f(x)


@pytest.mark.parametrize("convert,kind", [
    (bool, "truth"), (lambda v: v > 1 and True, "truth"), (float, "equal"),
    (int, "equal"), (operator.index, "equal"), (lambda v: v.item(), "equal"),
    (lambda v: v.tolist(), "equal"), (np.asarray, "equal"), (strip, "equal"),
    (concrete, "equal"), (round, "equal")])
def test_conversions_record_guards(convert, kind):
    def f(x):
        n = convert(np.sum(x > 0) if convert is not bool else x[2] > 1)
        return x * 2.0 if n else x
    prog, _ = record(f, X)
    assert kind in kinds(prog)
    prog.run([X])  # the same values pass
    with pytest.raises(GuardFailed):
        prog.run([-X])


def test_a_staged_value_in_parameters_is_baked_in_with_an_equal_guard():
    def f(x):
        k = np.argmax(x)  # a recorded operation ("plain:numpy.argmax")
        return np.roll(x, k)  # a parameter: frozen
    prog, value = record(f, X)
    assert np.array_equal(value, np.roll(X, 2))
    assert any(op.prim.name.startswith("plain:") for op in prog.ops)
    assert kinds(prog) == ["equal"]
    assert np.array_equal(prog.run([X + 1])[0], np.roll(X + 1, 2))
    with pytest.raises(GuardFailed):
        prog.run([X[::-1].copy()])


def test_value_shaped_results_are_shape_guarded_and_tuples_split():
    def f(x):
        (i,) = np.nonzero(x > 0)  # a tuple result: one operation per element
        return np.sum(x[i] ** 2)
    prog, value = record(f, X)
    assert value == np.sum(X[X > 0] ** 2)
    assert "shape" in kinds(prog)
    assert any(op.prim.name == "staged_item" for op in prog.ops)
    assert prog.run([X * 2])[0] == np.sum((X * 2)[X > 0] ** 2)
    with pytest.raises(GuardFailed):
        prog.run([-X])


def test_decide_and_call_plain_record_operations():
    def f(x):
        big = decide(_norm_is_big, x)
        order = call_plain(np.argsort, [x], {})
        return x[order] * (2.0 if big else 1.0)
    prog, _ = record(f, X)
    assert kinds(prog).count("truth") == 1 and "equal" in kinds(prog)  # the index
    assert np.array_equal(prog.run([X * 1.1])[0], (X * 1.1)[np.argsort(X)] * 2.0)
    with pytest.raises(GuardFailed):
        prog.run([X / 100])  # the decision flips


def _norm_is_big(v):
    return np.linalg.norm(v) > 1


def test_constants_are_snapshots_and_only_shared_arrays_are_watched():
    w = np.array([1.0, 2.0, 3.0])
    trace = StagingTrace(new_level())
    x = trace.input(X)
    y = x * w
    w[0] = 100.0  # written after it was read: the program keeps what was read
    z = y + x * w  # another slot for the new contents
    trace.finish()
    prog = trace.program([z._index], dr.tree_flatten(0)[1], [np.ndarray])
    assert np.array_equal(prog.run([X])[0], X * np.array([1.0, 2.0, 3.0]) + X * w)
    watched = trace.watched_constants()
    assert [a is w for a, _ in watched] == [True, True]
    assert np.array_equal(watched[0][1], [1.0, 2.0, 3.0])  # its bits when first met


def test_escaped_and_foreign_values_raise():
    trace = StagingTrace(new_level())
    x = trace.input(X)
    trace.finish()
    with pytest.raises(dr.ReplayError, match="escaped"):
        np.sin(x)
    with pytest.raises(dr.ReplayError, match="escaped"):
        bool(x[0] > 0)
    other = StagingTrace(new_level())
    with pytest.raises(dr.ReplayError, match="another dr.replay"):
        other.input(Y) + x  # noqa: B018
