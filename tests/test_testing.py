"""dualrev.testing: the checkers catch wrong derivatives and say where."""

import numpy as np
import pytest

import dualrev as dr
from dualrev.primitive import register_ufunc
from dualrev.testing import check_grads, numerical_jvp
from dualrev.testing.strategies import assert_derivatives_consistent


def test_numerical_jvp_matches_closed_form():
    x = np.array([0.3, 1.2])
    v = np.array([1.0, -2.0])
    est, err = numerical_jvp(lambda x: np.sin(x) * x[0], (x,), (v,))
    exact = np.cos(x) * v * x[0] + np.sin(x) * v[0]
    np.testing.assert_allclose(est, exact, rtol=1e-10)
    assert np.all(err < 1e-8)


@pytest.fixture
def wrong_cube():
    """A ufunc registered with a deliberately wrong derivative (3x instead of 3x^2)."""
    ufunc = np.frompyfunc(lambda v: v**3, 1, 1)
    prim = dr.Primitive("cube", lambda x: np.asarray(ufunc(x), dtype=float), elementwise=True)
    bad = lambda g, ans, x: g * 3 * x
    prim.defjvp(bad)
    prim.defvjp(bad)
    register_ufunc(ufunc, prim)
    yield ufunc
    from dualrev.primitive import UFUNC_HANDLERS
    del UFUNC_HANDLERS[ufunc]


def test_check_grads_reports_worst_element(wrong_cube):
    x = np.array([0.5, 2.0, 1.0])
    with pytest.raises(AssertionError, match=r"forward mode \(JVP\): .*element 1 of 3.*analytic"):
        check_grads(wrong_cube, (x,))
    with pytest.raises(AssertionError, match="reverse mode"):
        check_grads(wrong_cube, (x,), modes=("rev",))
    with pytest.raises(AssertionError):
        assert_derivatives_consistent(wrong_cube, x)


def test_check_grads_passes_correct_functions_to_third_order():
    check_grads(lambda x: np.exp(np.sin(x)) * x, (np.array([0.1, -0.4]),), order=3)
