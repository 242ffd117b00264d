"""Every elementwise entry: JVP and VJP against SciPy finite differences (to second
order), forward against reverse, broadcasting, and the values at special points."""

import math

import numpy as np
import pytest
import scipy.special as sc

import dualrev as dr
from tests.helpers import check_all, fwd_rev_agree

rng = np.random.default_rng(0)


def within(lo, hi, shape=(4,)):
    return rng.uniform(lo, hi, size=shape)


UNARY = {
    "negative": (np.negative, within(-2, 2)),
    "positive": (np.positive, within(-2, 2)),
    "exp": (np.exp, within(-2, 2)),
    "exp2": (np.exp2, within(-2, 2)),
    "expm1": (np.expm1, within(-2, 2)),
    "log": (np.log, within(0.5, 3)),
    "log2": (np.log2, within(0.5, 3)),
    "log10": (np.log10, within(0.5, 3)),
    "log1p": (np.log1p, within(-0.5, 3)),
    "sqrt": (np.sqrt, within(0.5, 3)),
    "cbrt": (np.cbrt, within(0.5, 3)),
    "cbrt_negative": (np.cbrt, within(-3, -0.5)),
    "square": (np.square, within(-2, 2)),
    "reciprocal": (np.reciprocal, within(0.5, 3)),
    "sin": (np.sin, within(-3, 3)),
    "cos": (np.cos, within(-3, 3)),
    "tan": (np.tan, within(-1.2, 1.2)),
    "arcsin": (np.arcsin, within(-0.8, 0.8)),
    "arccos": (np.arccos, within(-0.8, 0.8)),
    "arctan": (np.arctan, within(-3, 3)),
    "sinh": (np.sinh, within(-2, 2)),
    "cosh": (np.cosh, within(-2, 2)),
    "tanh": (np.tanh, within(-2, 2)),
    "arcsinh": (np.arcsinh, within(-3, 3)),
    "arccosh": (np.arccosh, within(1.5, 4)),
    "arctanh": (np.arctanh, within(-0.8, 0.8)),
    "absolute": (np.absolute, np.array([-2.0, -0.5, 0.7, 1.9])),
    "abs": (np.abs, np.array([-2.0, -0.5, 0.7, 1.9])),
    "fabs": (np.fabs, np.array([-2.0, -0.5, 0.7, 1.9])),
    "deg2rad": (np.deg2rad, within(-90, 90)),
    "rad2deg": (np.rad2deg, within(-2, 2)),
    "radians": (np.radians, within(-90, 90)),
    "degrees": (np.degrees, within(-2, 2)),
    "sinc": (np.sinc, np.array([-1.3, -0.4, 0.3, 2.2])),
    "sinc_small": (np.sinc, np.array([-3e-3, 1e-3, 4e-3, 8e-3])),
    "conjugate": (np.conjugate, within(-2, 2)),
    "python_abs": (abs, np.array([-2.0, -0.5, 0.7, 1.9])),
    "python_neg": (lambda x: -x, within(-2, 2)),
    "python_pos": (lambda x: +x, within(-2, 2)),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(name):
    f, x = UNARY[name]
    check_all(f, (x,), order=2, initial_step=1e-3 if name == "sinc_small" else 1e-2)


BINARY = {
    "add": (np.add, within(-2, 2), within(-2, 2)),
    "subtract": (np.subtract, within(-2, 2), within(-2, 2)),
    "multiply": (np.multiply, within(-2, 2), within(-2, 2)),
    "true_divide": (np.true_divide, within(-2, 2), within(0.5, 2)),
    "divide": (np.divide, within(-2, 2), within(-2, -0.5)),
    "power": (np.power, within(0.5, 2), within(-2, 2)),
    "float_power": (np.float_power, within(0.5, 2), within(-2, 2)),
    "arctan2": (np.arctan2, within(-2, 2), within(0.5, 2)),
    "hypot": (np.hypot, within(-2, 2), within(0.5, 2)),
    "maximum": (np.maximum, np.array([1.0, -1.0, 0.5, 2.0]), np.array([0.0, 0.5, -1.0, 3.0])),
    "minimum": (np.minimum, np.array([1.0, -1.0, 0.5, 2.0]), np.array([0.0, 0.5, -1.0, 3.0])),
    "fmax": (np.fmax, np.array([1.0, -1.0, 0.5, 2.0]), np.array([0.0, 0.5, -1.0, 3.0])),
    "fmin": (np.fmin, np.array([1.0, -1.0, 0.5, 2.0]), np.array([0.0, 0.5, -1.0, 3.0])),
    "logaddexp": (np.logaddexp, within(-2, 2), within(-2, 2)),
    "logaddexp2": (np.logaddexp2, within(-2, 2), within(-2, 2)),
    "remainder": (np.remainder, np.array([5.3, -2.2, 7.9, 1.1]), np.array([2.0, 1.5, 3.0, 0.7])),
    "fmod": (np.fmod, np.array([5.3, -2.2, 7.9, 1.1]), np.array([2.0, 1.5, 3.0, 0.7])),
    "op_add": (lambda x, y: x + y, within(-2, 2), within(-2, 2)),
    "op_sub": (lambda x, y: x - y, within(-2, 2), within(-2, 2)),
    "op_mul": (lambda x, y: x * y, within(-2, 2), within(-2, 2)),
    "op_div": (lambda x, y: x / y, within(-2, 2), within(0.5, 2)),
    "op_pow": (lambda x, y: x**y, within(0.5, 2), within(-2, 2)),
    "op_mod": (lambda x, y: x % y, np.array([5.3, -2.2, 7.9, 1.1]), np.array([2.0, 1.5, 3.0, 0.7])),
}


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary(name):
    f, x, y = BINARY[name]
    check_all(f, (x, y), order=2)


@pytest.mark.parametrize("name", ["add", "multiply", "true_divide", "power", "arctan2",
                                  "maximum", "logaddexp", "hypot"])
@pytest.mark.parametrize("shapes", [((3, 1), (4,)), ((), (2, 3)), ((2, 3), ()), ((1, 3), (2, 1))])
def test_binary_broadcasting(name, shapes):
    f = BINARY[name][0]
    x = rng.uniform(0.5, 2, size=shapes[0])
    y = rng.uniform(0.5, 2, size=shapes[1])
    check_all(f, (x, y), order=1)
    gx, gy = dr.grad(lambda a, b: np.sum(f(a, b)), (0, 1))(x, y)
    assert np.shape(gx) == np.shape(x) and np.shape(gy) == np.shape(y)


@pytest.mark.parametrize("op", [
    lambda x: 2.0 + x, lambda x: 2.0 - x, lambda x: 2.0 * x, lambda x: 2.0 / x,
    lambda x: 2.0**x, lambda x: np.float64(3.0) * x, lambda x: np.array([1.0, 2.0, 3.0]) * x,
    lambda x: np.array([1.0, 2.0, 3.0]) - x, lambda x: x**2, lambda x: x**3.5, lambda x: x**-1,
    lambda x: 7.5 % x, lambda x: np.array([[1.0], [2.0]]) / x,
])
def test_reflected_and_constant_operands(op):
    x = np.array([0.7, 1.3, 2.1])
    check_all(op, (x,), order=2)


def test_power_special_points():
    # d/dx x**0 is 0 everywhere, also at x = 0; d/dx x**2 at 0 is 0; d/dy 0**y is 0 for y > 0.
    assert dr.grad(lambda x: x**0.0)(0.0) == 0.0
    assert dr.grad(lambda x: x**2)(0.0) == 0.0
    assert dr.grad(lambda y: np.power(0.0, y))(2.0) == 0.0
    assert dr.grad(lambda x: x**0.5)(0.0) == np.inf


def test_ties_split_evenly():
    g = dr.grad(lambda x, y: np.maximum(x, y), (0, 1))(1.0, 1.0)
    assert g == (0.5, 0.5)
    assert dr.grad(lambda x: np.maximum(x, 0.0))(0.0) == 0.5
    assert dr.grad(lambda x: np.minimum(x, 0.0))(-1.0) == 1.0


def test_abs_at_zero_is_zero_subgradient():
    assert dr.grad(np.abs)(0.0) == 0.0
    assert dr.grad(np.abs)(-2.0) == -1.0


def test_sinc_at_zero_all_orders():
    # sinc(x) = 1 - (pi x)^2/6 + (pi x)^4/120 - ...
    assert dr.grad(np.sinc)(0.0) == 0.0
    np.testing.assert_allclose(dr.grad(dr.grad(np.sinc))(0.0), -np.pi**2 / 3, rtol=1e-12)
    d4 = dr.grad(dr.grad(dr.grad(dr.grad(np.sinc))))(0.0)
    np.testing.assert_allclose(d4, np.pi**4 / 5, rtol=1e-12)


def test_where_and_clip():
    x = np.array([-1.5, -0.2, 0.3, 2.0])
    y = np.array([0.5, 1.0, -2.0, 3.0])
    check_all(lambda a, b: np.where(a > 0, a * b, b**2), (x, y), order=2)
    check_all(lambda a: np.clip(a, -1.0, 1.0), (x,), order=2)
    check_all(lambda a: a.clip(0.0), (x,), order=1)
    check_all(lambda a, lo: np.clip(a, lo, 1.0), (x, np.array([-1.0, 0.0, 0.0, 0.0])), order=1)
    # The branch not taken does not leak its infinite tangent into forward mode ...
    _, t = dr.jvp(lambda a: np.where(a > 0, np.sqrt(a), 0.0), (np.array([0.0, 4.0]),),
                  (np.ones(2),))
    np.testing.assert_array_equal(t, [0.0, 0.25])
    # ... and in reverse mode, as in JAX, the guard goes inside too ("double where").
    g = dr.grad(lambda a: np.sum(np.where(a > 0, np.sqrt(np.where(a > 0, a, 1.0)), 0.0)))(
        np.array([0.0, 4.0]))
    np.testing.assert_array_equal(g, [0.0, 0.25])


@pytest.mark.parametrize("f", [np.sign, np.floor, np.ceil, np.trunc, np.rint, np.round,
                               lambda x: x // 1.0, pytest.param(np.fix, marks=(
                                   pytest.mark.filterwarnings("ignore:numpy.fix is deprecated")))])
def test_nondiff_ufunc_functions(f):
    x = np.array([-1.3, 0.4, 2.7])
    np.testing.assert_array_equal(dr.grad(lambda a: np.sum(f(a) * a))(x), f(x))
    np.testing.assert_array_equal(dr.jacfwd(f)(x), np.zeros((3, 3)))


def test_comparisons_give_plain_booleans():
    def f(x):
        assert type(x > 0) in (np.ndarray, np.bool_, bool)
        return np.sum(np.where(x > 0, x, 0.0)) + np.sum(x[np.logical_and(x > -1, x < 1)])

    x = np.array([-2.0, -0.5, 0.5, 2.0])
    np.testing.assert_array_equal(dr.grad(f)(x), [0.0, 1.0, 2.0, 1.0])


def test_python_control_flow():
    def f(x):
        y = x
        while y < 10.0:
            y = y * 2.0
        return y if x > 1 else -y

    assert dr.grad(f)(1.5) == 8.0   # 1.5 -> 3 -> 6 -> 12
    assert dr.grad(f)(0.5) == -32.0  # 0.5 -> ... -> 16, negated


def test_float32_keeps_dtype():
    x = np.array([1.0, 2.0], dtype=np.float32)
    g = dr.grad(lambda a: np.sum(a * a))(x)
    assert g.dtype == np.float32
    fwd_rev_agree(lambda a: a * a, (x,), rtol=1e-6)


def test_astype_float_cast_keeps_derivative_int_cast_drops_it():
    x = np.array([0.5, 1.5, 2.5])
    g = dr.grad(lambda a: np.sum(a.astype(np.float32).astype(np.float64) ** 2))(x)
    np.testing.assert_allclose(g, 2 * x, rtol=1e-6)
    g = dr.grad(lambda a: np.sum(a.astype(int) * a))(x)
    np.testing.assert_array_equal(g, [0.0, 1.0, 2.0])


def test_ufunc_dtype_keyword_casts_the_result():
    x = np.array([0.0, 1.0])
    np.testing.assert_allclose(dr.grad(lambda a: np.sum(np.exp(a, dtype=np.float64)))(x),
                               np.exp(x))
    out, _ = dr.jvp(lambda a: np.exp(a, dtype=np.float32), (x,), (np.ones(2),))
    assert out.dtype == np.float32
    with pytest.raises(dr.NoDerivativeRule, match="where"):
        dr.grad(lambda a: np.sum(np.exp(a, where=a > 0)))(x)


def test_nan_to_num_and_heaviside():
    x = np.array([1.0, np.nan, np.inf, -2.0])
    g = dr.grad(lambda a: np.sum(np.nan_to_num(a) * np.array([1.0, 1.0, 0.0, 2.0])))(x)
    np.testing.assert_array_equal(g, [1.0, 0.0, 0.0, 2.0])  # replaced entries are constants
    np.testing.assert_array_equal(dr.grad(lambda a: np.sum(np.heaviside(a, 0.5) * a))(
        np.array([-1.0, 2.0])), [0.0, 1.0])


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_nan_to_num_of_complex_values_treats_the_parts_separately(dtype):
    z = np.array([1 + 2j, complex(np.inf, 1), complex(np.nan, np.inf), complex(2, -np.inf)],
                 dtype=dtype)
    kw = {"nan": 3.0, "posinf": 1e3}
    value, tangent = dr.jvp(lambda z: np.nan_to_num(z, **kw), (z,),
                            (np.full(4, 1 + 1j, dtype=dtype),))
    np.testing.assert_array_equal(value, np.nan_to_num(z, **kw))  # NumPy's values
    assert value.dtype == np.nan_to_num(z).dtype == dtype
    # a replaced part is a constant: its tangent is zero, the other part's passes
    np.testing.assert_array_equal(tangent, [1 + 1j, 1j, 0, 1])
    # reverse mode: the same masks on d/dx and d/dy (JAX's convention either way) as the
    # identity's gradient, and forward and reverse agree
    w = np.array([0.5 - 1j, 2 + 1j, -1 + 3j, 1 - 2j])
    h = lambda z: np.real(np.sum(np.nan_to_num(z) * w))
    same = dr.grad(lambda z: np.real(np.sum(z * w)))(np.ones(4, dtype=dtype))
    g = dr.grad(h)(z)
    np.testing.assert_allclose(g, np.real(same) * [1, 0, 0, 1] + 1j * np.imag(same)
                               * [1, 1, 0, 0], rtol=1e-6)
    np.testing.assert_array_equal(np.nan_to_num(np.arange(3)), dr.jvp(
        np.nan_to_num, (np.arange(3.0),), (np.zeros(3),))[0])


def test_clip_ufunc_keywords_honoured_or_refused():
    x = np.array([0.3, 0.6, 0.9])
    got, _ = dr.jvp(lambda v: np.clip(v, 0.4, 0.8, dtype=np.float32), (x,), (x,))
    want = np.clip(x, 0.4, 0.8, dtype=np.float32)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    with pytest.raises(dr.NoDerivativeRule, match="where"):
        dr.grad(lambda v: np.sum(np.clip(v, 0.4, 0.8, where=v > 0.5)))(x)


def test_round_writes_a_plain_out():
    x = np.array([0.3, 1.6, 2.9])
    out = np.zeros(3)
    dr.grad(lambda v: np.sum(v + np.round(v, out=out)))(x)
    np.testing.assert_array_equal(out, np.round(x))


def test_full_like_keeps_numpy_dtype():
    # NumPy casts the fill value to a's dtype: an integer result has no derivative
    x = np.ones(3)
    got = dr.jvp(lambda c: np.full_like(x * c, c, dtype=int) * 1.0 + c, (2.7,), (1.0,))
    np.testing.assert_array_equal(got[0], np.full_like(x, 2.7, dtype=int) + 2.7)
    np.testing.assert_array_equal(got[1], np.ones(3))
    got = dr.jvp(lambda c: np.full_like(x * c, c, dtype=np.float32), (2.5,), (1.0,))
    assert got[0].dtype == np.float32
    np.testing.assert_array_equal(got[1], np.ones(3, dtype=np.float32))


def _nested(f, n, transform):
    for _ in range(n):
        f = transform(f)
    return f


_HIGH_ORDER = {
    # name: (f, n-th derivative in closed form, point)
    "1/x": (lambda x: 1.0 / x, lambda n, x: (-1) ** n * math.factorial(n) / x ** (n + 1), 0.5),
    "true_divide(3, x)": (lambda x: np.true_divide(3.0, x),
                          lambda n, x: 3 * (-1) ** n * math.factorial(n) / x ** (n + 1), 0.5),
    "reciprocal": (np.reciprocal, lambda n, x: (-1) ** n * math.factorial(n) / x ** (n + 1), 0.5),
    "x/(x+1)": (lambda x: x / (x + 1.0),
                lambda n, x: -((-1) ** n) * math.factorial(n) / (x + 1) ** (n + 1), 0.5),
    "exp": (np.exp, lambda n, x: math.exp(x), 0.7),
    "sin": (np.sin, lambda n, x: math.sin(x + n * math.pi / 2), 0.7),
    "log": (np.log, lambda n, x: (-1) ** (n - 1) * math.factorial(n - 1) / x**n, 0.5),
    "x**2.5": (lambda x: x**2.5, lambda n, x: math.prod(2.5 - k for k in range(n)) * x ** (2.5 - n),
               0.7),
    "x**-3": (lambda x: x**-3, lambda n, x: math.prod(-3 - k for k in range(n)) * x ** (-3 - n),
              0.6),
    "sqrt": (np.sqrt, lambda n, x: math.prod(0.5 - k for k in range(n)) * x ** (0.5 - n), 0.5),
    "2**x": (lambda x: 2.0**x, lambda n, x: math.log(2) ** n * 2**x, 0.7),
}


@pytest.mark.parametrize("name", list(_HIGH_ORDER))
@pytest.mark.parametrize("transform", [dr.grad, dr.jacfwd], ids=["grad", "jacfwd"])
def test_tenth_derivative_matches_closed_form(name, transform):
    # The divide rule used to square the denominator at every nesting level: the 10th
    # derivative of 1/x at 0.5 divided by 0.5**1024 and came out inf.
    f, closed, x = _HIGH_ORDER[name]
    got = _nested(f, 10, transform)(x)
    np.testing.assert_allclose(got, closed(10, x), rtol=1e-10)


def test_expm1_derivative_where_expm1_is_near_minus_one():
    # d/dx expm1(x) = exp(x); as ans + 1 it kept no digit below x = -36 (4e-18 at -40
    # came out 0, and geom.cdf's derivative at p = 1 - 1e-8 was 11% off)
    for f in (np.expm1, sc.expm1):
        for x in (-40.0, -100.0, -1.0, 1e-3):
            assert dr.grad(f)(x) == pytest.approx(np.exp(x), rel=1e-14)
            assert dr.jvp(f, (x,), (1.0,))[1] == pytest.approx(np.exp(x), rel=1e-14)
            assert dr.hessian(f)(x) == pytest.approx(np.exp(x), rel=1e-14)


def test_power_with_an_array_exponent_of_zero_at_zero_second_derivative():
    # sum(x**y) with y = [0, 1, 2] at x = 0: Hessian diag(0, 0, 2); reverse over reverse
    # gave nan in the first column (0 * 0**-1 in the branch the rule's where does not take)
    y = np.array([0.0, 1.0, 2.0])
    f = lambda x: np.sum(x ** y)  # noqa: E731
    want = np.diag([0.0, 0.0, 2.0])
    for h in (dr.hessian(f), dr.jacrev(dr.jacrev(f)), dr.jacfwd(dr.jacrev(f))):
        np.testing.assert_array_equal(h(np.zeros(3)), want)
    x = np.array([0.5, 1.5, 2.0])
    np.testing.assert_allclose(dr.jacrev(dr.jacrev(f))(x), np.diag([0.0, 0.0, 2.0]))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("op", ["id", "exp", "log", "inv", "x/x", "complex"])
def test_nan_to_num_replaced_elements_have_zero_derivative_in_every_mode(op):
    # a replaced element (nan, +-inf) is a constant: 0 in forward mode, and reverse
    # mode must agree (not 0 * inf = nan from the rule upstream of nan_to_num)
    fn = {"id": lambda x: x, "exp": np.exp, "log": np.log, "inv": lambda x: 1.0 / x,
          "x/x": lambda x: x / x, "complex": lambda x: np.exp(1j * x) / x}[op]
    x = np.array([1.0, np.nan, np.inf, -np.inf, 0.0, -2.0, 800.0])
    w = np.linspace(0.5, 1.5, x.size)
    kw = {"nan": 0.5, "posinf": 3.0, "neginf": -3.0}
    terms = lambda x: w * np.abs(np.nan_to_num(fn(x), **kw)) ** 2
    f = lambda x: np.sum(terms(x))
    g_rev, g_fwd = dr.grad(f)(x), dr.jacfwd(f)(x)
    np.testing.assert_allclose(g_rev, g_fwd, rtol=1e-12, atol=0)
    replaced = ~np.isfinite(fn(x))
    assert np.all(g_rev[replaced] == 0.0) and np.all(np.isfinite(g_rev))
    # central differences of each element's own term where nothing is replaced
    ok = ~replaced & np.isfinite(x) & (x != 0) & (np.abs(x) < 100)
    xs = np.where(ok, x, 1.0)
    fd = (terms(xs * (1 + 1e-7)) - terms(xs * (1 - 1e-7))) / (2e-7 * xs)
    np.testing.assert_allclose(g_rev[ok], fd[ok], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dr.vmap(dr.grad(f))(np.stack([x, x]))[1], g_rev, rtol=1e-14)
    np.testing.assert_allclose(dr.hessian(f)(x), dr.jacfwd(dr.jacfwd(f))(x), rtol=1e-9)
    assert np.all(np.isfinite(dr.hessian(f)(x)))
