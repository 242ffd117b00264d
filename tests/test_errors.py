"""Bad input gets a clear error naming the problem and the fix, never a silent wrong
derivative."""

import numpy as np
import pytest
from numpy import zeros as numpy_zeros  # bound before any transform: NumPy's own

import dualrev as dr

x3 = np.array([0.5, 1.5, -0.3])


def test_unsupported_numpy_function_names_it():
    with pytest.raises(dr.NoDerivativeRule, match=r"numpy.*insert.*register_function"):
        dr.grad(lambda x: np.sum(np.insert(x, 1, 2.0)))(x3)
    with pytest.raises(dr.NoDerivativeRule, match="numpy.polyfit"):
        dr.grad(lambda x: np.sum(np.polyfit(x, x**2, 1)))(x3)
    with pytest.raises(dr.NoDerivativeRule, match="frexp"):
        dr.jacfwd(lambda x: np.frexp(x)[0])(x3)


def test_unsupported_scipy_ufunc_names_it():
    import scipy.special as sp

    with pytest.raises(dr.NoDerivativeRule, match="zetac"):  # no zeta' in SciPy
        dr.grad(lambda x: np.sum(sp.zetac(x + 2)))(np.abs(x3))


# (np.asarray here is bound before the transform runs: NumPy's own, which converts;
# np.array([...]) and int() of traced values work, tests/catalogue/test_construction.py)
@pytest.mark.parametrize("coerce", [
    float, lambda x: x.item(), np.asarray, lambda x: x.tolist(), complex,
])
def test_coercion_to_plain_values_is_refused(coerce):
    with pytest.raises(dr.TracerConversionError, match="drop its derivative"):
        dr.grad(lambda x: coerce(x[0]) * x[1])(x3)
    with pytest.raises(dr.TracerConversionError):
        dr.jacfwd(lambda x: coerce(x[0]) * x)(x3)


def test_writing_traced_value_into_numpy_buffer_is_refused():
    # a buffer made through a name bound before the transform is NumPy's own (np.zeros
    # made in the function takes traced writes: tests/test_buffers.py)
    def f(x):
        out = numpy_zeros(3)
        out[0:2] = x[1:]
        return np.sum(out)

    with pytest.raises(dr.TracerConversionError, match="into the plain NumPy array `out`"):
        dr.grad(f)(x3)

    def g(x):
        out = numpy_zeros(3)
        out[0] = x[1]
        return np.sum(out)

    # NumPy re-raises a failed scalar store as ValueError ("setting an array element with
    # a sequence"); the transform raises dualrev's error, its cause, instead.
    with pytest.raises(dr.TracerConversionError, match="`out\\[0\\] = x\\[1\\]` writes"):
        dr.grad(g)(x3)


def test_in_place_writes_are_recorded_or_refused():
    def setitem(x):
        x[0] = 1.0  # recorded: the object is rebound (tests/test_inplace.py)
        return np.sum(x)

    np.testing.assert_array_equal(dr.grad(setitem)(x3), [0.0, 1.0, 1.0])

    def ufunc_out(x, buf):
        np.multiply(x, 2.0, out=buf)
        return np.sum(buf)

    # into np.zeros made in the function: recorded; into NumPy's own array: refused
    np.testing.assert_array_equal(dr.grad(lambda x: ufunc_out(x, np.zeros(3)))(x3),
                                  [2.0, 2.0, 2.0])
    with pytest.raises(dr.InPlaceError, match="out="):
        dr.grad(lambda x: ufunc_out(x, numpy_zeros(3)))(x3)

    def numpy_iadd(x, buf):
        buf += x
        return np.sum(buf)

    np.testing.assert_array_equal(dr.grad(lambda x: numpy_iadd(x, np.zeros(3)))(x3),
                                  [1.0, 1.0, 1.0])
    with pytest.raises(dr.InPlaceError):
        dr.grad(lambda x: numpy_iadd(x, numpy_zeros(3)))(x3)


def test_augmented_assignment_on_traced_values_mutates_them():
    # x += y on a traced array writes into the object, as NumPy's does: aliases see it
    def f(x):
        y = x
        y += 1.0
        y *= x  # x is y: (x + 1) * (x + 1)
        return np.sum(y)

    np.testing.assert_allclose(dr.grad(f)(x3), 2 * (x3 + 1))


def test_grad_needs_scalar_output():
    with pytest.raises(dr.DualrevError, match=r"scalar output.*shape \(3,\).*jacrev"):
        dr.grad(lambda x: x * 2)(x3)


def test_argnums_out_of_range():
    with pytest.raises(dr.DualrevError, match="argnums=2 is out of range"):
        dr.grad(lambda x, y: x * y, argnums=2)(1.0, 2.0)
    with pytest.raises(dr.DualrevError, match="out of range"):
        dr.jacfwd(lambda x: x, argnums=(0, 1))(x3)


def test_integer_outputs_are_refused():
    with pytest.raises(dr.DualrevError, match="integer and boolean outputs"):
        dr.grad(lambda x: np.argmax(x))(x3)
    with pytest.raises(dr.DualrevError, match="dtype bool"):
        dr.jacfwd(lambda x: x > 0)(x3)


def test_tangent_mismatch():
    with pytest.raises(dr.DualrevError, match=r"shape \(2,\).*shape \(3,\)"):
        dr.jvp(np.sin, (x3,), (np.ones(2),))
    with pytest.raises(dr.DualrevError, match="floating point"):
        dr.jvp(np.sin, (x3,), (np.ones(3, dtype=int),))
    with pytest.raises(dr.DualrevError, match="same length"):
        dr.jvp(np.sin, (x3,), ())
    _, pullback = dr.vjp(np.sin, x3)
    with pytest.raises(dr.DualrevError, match="shape"):
        pullback(np.ones(4))


def test_traced_index_is_refused():
    with pytest.raises(dr.DualrevError, match="used as an index"):
        dr.grad(lambda x: x[x[0]])(x3)


def test_bool_and_comparisons_still_work():
    def f(x):
        if x[0] > 0 and bool(x[1] > 1):
            return np.sum(x**2)
        return np.sum(x)

    np.testing.assert_allclose(dr.grad(f)(x3), 2 * x3)


def test_in_place_sort_method_and_np_sort_work():
    def f(x):
        y = x * 1.0
        y.sort()
        return y[0]

    np.testing.assert_array_equal(dr.grad(f)(x3), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(dr.grad(lambda x: np.sort(x)[0])(x3), [0.0, 0.0, 1.0])


def test_values_that_carry_derivatives_are_never_stripped():
    import scipy.stats as st

    # full_like keeps the derivative of a traced fill value ...
    assert dr.grad(lambda c: np.sum(np.full_like(x3 * c, c)))(2.0) == 3.0
    # ... and so does a plain array's (a buffer of the running transform)
    assert dr.grad(lambda c: np.sum(np.full_like(x3, c)))(2.0) == 3.0
    assert dr.grad(lambda c: np.sum(np.full(3, c) * x3))(2.0) == np.sum(x3)
    # a discrete argument raises rather than getting a zero derivative
    with pytest.raises(dr.NoDerivativeRule, match="discrete"):
        dr.grad(lambda k: st.poisson.logpmf(k, 2.0))(1.0)


def test_scipy_special_ufunc_named_with_its_module():
    import scipy.special as sp

    with pytest.raises(dr.NoDerivativeRule, match=r"scipy\.special\.zetac \(ufunc\)"):
        dr.grad(lambda x: np.sum(sp.zetac(x + 2)))(np.abs(x3))
