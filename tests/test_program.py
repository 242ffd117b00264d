"""The recorded-program data and its reference interpreter, on programs built by hand."""

import numpy as np
import pytest

import dualrev  # noqa: F401  (fills the catalogue)
from dualrev.primitive import UFUNC_HANDLERS
from dualrev.program import Guard, GuardFailed, Op, Program, same_value


def _prim(ufunc):
    return UFUNC_HANDLERS[ufunc]


def _program():
    # v0: input x; v1: const 2.0; v2 = x * 2; guard sum(v2) > 0 via v3 = v2 > 0 (truth)
    mul, gt = _prim(np.multiply), _prim(np.greater)
    steps = [Op(mul, (0, 1), {}, 2), Op(gt, (2, 4), {}, 3), Guard(3, "truth", True)]
    return Program(5, [0], {1: 2.0, 4: 0.0}, steps, [2])


def test_run_computes_and_checks_guards():
    p = _program()
    (y,) = p.run([3.0])
    assert y == 6.0
    with pytest.raises(GuardFailed) as e:
        p.run([-1.0])
    assert e.value.guard.kind == "truth"
    assert len(p.ops) == 2 and len(p.guards) == 1
    assert "v2 = multiply(v0, v1)" in repr(p)


def test_input_count_checked():
    with pytest.raises(ValueError, match="takes 1 input"):
        _program().run([1.0, 2.0])


def test_guard_kinds():
    assert Guard(0, "shape", (2,)).holds(np.zeros(2))
    assert not Guard(0, "shape", (2,)).holds(np.zeros(3))
    assert Guard(0, "finite", False).holds(np.array([1.0, np.nan]))
    assert not Guard(0, "finite", True).holds(np.array([np.inf]))
    assert Guard(0, "equal", np.array([1.0, -0.0])).holds(np.array([1.0, -0.0]))
    assert not Guard(0, "equal", np.array([1.0, 0.0])).holds(np.array([1.0, -0.0]))
    with pytest.raises(ValueError, match="unknown guard kind"):
        Guard(0, "nope", 1)


def test_same_value_bits():
    nan = np.array([np.nan])
    assert same_value(nan, nan.copy())
    assert not same_value(np.array([1.0]), np.array([1.0], np.float32))
    assert not same_value(1, 1.0)
    assert same_value(3, 3)
