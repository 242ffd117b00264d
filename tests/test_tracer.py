"""tracer.py: ``no_derivative``, which each level of a traced value answers for itself
(``_no_derivative_here``): a tape entry no input reaches, a dual number with an exactly
zero tangent; a batch never. (The face's operators and methods are tested through the
transforms everywhere; test_layers.py checks that they reach their code by imports.)"""

from __future__ import annotations

import numpy as np
import pytest

import dualrev as dr
from dualrev.tracer import NO_PLAIN_VALUE, no_derivative


def test_a_tape_entry_is_plain_when_no_input_reaches_it():
    seen = {}

    def f(x):
        buf = np.zeros(3)  # made in the user's code: a constant of the running tape
        buf[0] = 2.0
        seen["buf"] = no_derivative(buf)
        seen["from buf"] = no_derivative(np.sin(buf) * 3.0)
        seen["x"] = no_derivative(x * 1.0)
        seen["mixed"] = no_derivative(buf + x)
        return np.sum(x * buf)

    g = dr.grad(f)(np.ones(3))
    np.testing.assert_array_equal(g, [2.0, 0.0, 0.0])
    np.testing.assert_array_equal(seen["buf"], [2.0, 0.0, 0.0])
    np.testing.assert_array_equal(seen["from buf"], np.sin([2.0, 0.0, 0.0]) * 3.0)
    assert seen["x"] is NO_PLAIN_VALUE and seen["mixed"] is NO_PLAIN_VALUE


def test_a_dual_number_is_plain_when_its_tangent_is_exactly_zero():
    seen = []

    def f(x):
        seen.append(no_derivative(x))
        return x

    x = np.array([1.0, 2.0])
    dr.jvp(f, (x,), (np.zeros(2),))
    dr.jvp(f, (x,), (np.array([0.0, 1e-300]),))
    np.testing.assert_array_equal(seen[0], x)
    assert seen[1] is NO_PLAIN_VALUE


def test_levels_answer_in_turn_and_a_batch_is_never_plain():
    seen = []

    def f(x):
        buf = np.zeros(2)
        seen.append(no_derivative(buf))
        seen.append(no_derivative(x))
        return np.sum(x * buf)

    # grad inside jvp: the buffer is a constant of the tape whose primal is a constant
    # of nothing (plain); x is a Traced over a Dual
    dr.jvp(dr.grad(f), (np.ones(2),), (np.ones(2),))
    np.testing.assert_array_equal(seen[0], [0.0, 0.0])
    assert seen[1] is NO_PLAIN_VALUE
    seen.clear()
    dr.vmap(f)(np.ones((3, 2)))
    assert seen[1] is NO_PLAIN_VALUE


def test_float_of_a_proven_constant_converts_and_of_a_derivative_refuses():
    def f(x):
        buf = np.zeros(1)
        buf[0] = 4.0
        return x * float(buf[0])  # plain: no input reaches it

    assert dr.grad(f)(2.0) == 4.0

    def g(x):
        return x * float(x)

    with pytest.raises(dr.TracerConversionError, match="float"):
        dr.grad(g)(2.0)
