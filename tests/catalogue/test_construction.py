"""Arrays built from traced values (np.array, np.asarray & co., np.r_, np.c_, like=),
math.* of traced numbers, and int()/floor/ceil/trunc/round: values, dtypes and aliasing
against NumPy's for the same calls on plain values, derivatives against finite
differences and closed forms in every mode."""

import math

import numpy as np
import pytest
import scipy.optimize as so
import scipy.special as sc

import dualrev as dr
from dualrev.errors import BatchedValueError, DualrevError, TracerConversionError
from tests.helpers import check_all, check_like_numpy

# NumPy's own functions, bound before any transform runs
NUMPY_ARRAY, NUMPY_ASARRAY = np.array, np.asarray
rng = np.random.default_rng(22)
X = rng.uniform(0.3, 1.2, 3)

CONSTRUCTS = {
    "list_of_scalars": lambda x: np.array([x[0], x[1] * 2, 3.0]),
    "nested": lambda x: np.array([[x[0], 1.0], [x[1], x[0] * x[2]]]),
    "list_of_arrays": lambda x: np.array([x, 2 * x, np.ones(3)]),
    "tuple_with_ints": lambda x: np.array((x[0], 1, 2)),
    "nested_mixed_depth": lambda x: np.array([[x[0], x[1]], np.array([1.0, x[2]])]),
    "zero_d": lambda x: np.array(x[0]) * 1.0,
    "copy_of_array": lambda x: np.array(x) * x,
    "dtype_complex": lambda x: np.abs(np.array([x[0], 1j * x[1]], dtype=complex)
                                      * (1 - 2j) + x[2]) ** 2,
    "ndmin": lambda x: np.array([x[0], x[1]], ndmin=3),
    "order_F": lambda x: np.array([x, x ** 2], order="F"),
    "asarray_dtype_float": lambda x: np.asarray(x, dtype=float) ** 2,
    "asarray_list": lambda x: np.asarray([x[0], x[1] ** 2]),
    "asarray_nested_tuple": lambda x: np.asarray(((x[0], 0.5), (x[1], x[2]))),
    "asanyarray": lambda x: np.asanyarray([x[2], x[0]]),
    "ascontiguousarray_0d": lambda x: np.ascontiguousarray(x[0] ** 2),
    "asfortranarray": lambda x: np.asfortranarray([[x[0], x[1]], [x[2], 1.0]]),
    "asarray_chkfinite": lambda x: np.asarray_chkfinite([x[0], x[1] * x[2]]),
    "atleast_2d_asarray": lambda x: np.atleast_2d(np.asarray([x[0], x[1]])),
    "r_mixed": lambda x: np.r_[x, 1.0, x[:1], 0:3],
    "r_scalars": lambda x: np.r_[x[0], x[1] ** 2],
    "r_directive_2d": lambda x: np.r_["0,2", x, x ** 2],
    "r_directive_axis": lambda x: np.r_["-1", x[None, :], x[None, :2]],
    "c_": lambda x: np.c_[x, x ** 2],
    "c_scalars": lambda x: np.c_[x[0], x[1]],
    "like_array": lambda x: np.array([x[0], 1.0], like=x),
    "like_asarray": lambda x: np.asarray(x, like=x) * 2,
    "like_zeros": lambda x: np.zeros(3, like=x) + x,
    "like_full": lambda x: np.full(3, 2.0, like=x) * x,
    "like_arange": lambda x: np.arange(3, like=x) * x,
    "like_eye": lambda x: np.eye(3, like=x) @ x,
    "array_sum_of_list": lambda x: np.sum(np.array([x[0] * x[1], x[2]])),
    "mean_of_list": lambda x: np.mean([x[0], x[1] * x[2]]),
    "std_of_tuple_axis": lambda x: np.std((x, x ** 2), axis=0),
}


@pytest.mark.parametrize("name", sorted(CONSTRUCTS))
def test_construct_values_and_derivatives(name):
    """The value and dtype are NumPy's for the same call on plain values; jvp, vjp and
    their derivatives match finite differences; jacfwd equals jacrev."""
    check_like_numpy(CONSTRUCTS[name], X, order=2)


@pytest.mark.parametrize("name", ["list_of_scalars", "nested", "r_mixed", "c_",
                                  "asarray_list", "list_of_arrays", "copy_of_array",
                                  "mean_of_list", "std_of_tuple_axis"])
def test_construct_under_vmap(name):
    f = CONSTRUCTS[name]
    xs = rng.uniform(0.3, 1.2, (4, 3))
    np.testing.assert_allclose(dr.vmap(f)(xs), np.stack([f(x) for x in xs]), rtol=1e-14)
    # a Jacobian per example, under vmap, against the loop of single Jacobians
    got = dr.vmap(dr.jacrev(f))(xs)
    np.testing.assert_allclose(got, np.stack([dr.jacfwd(f)(x) for x in xs]), rtol=1e-12)


def test_float32_parts_keep_numpys_dtype():
    x32 = X.astype(np.float32)
    check_like_numpy(lambda x: np.array([x[0], x[1] * 2]), x32,
                     reference=lambda x: np.array([x[0], x[1] * 2]))
    check_like_numpy(lambda x: np.array([x[0], 2.0], dtype=np.float64), x32,
                     reference=lambda x: np.array([x[0], 2.0]))


# ------------------------------------------------------------------ aliasing and keywords
def test_aliasing_is_numpys():
    seen = {}

    def f(x):
        seen["asarray_is"] = np.asarray(x) is x
        seen["asarray_float_is"] = np.asarray(x, dtype=float) is x
        seen["asanyarray_is"] = np.asanyarray(x) is x
        seen["array_is"] = np.array(x) is x
        seen["array_nocopy_is"] = np.array(x, copy=False) is x
        seen["asarray_f32_is"] = np.asarray(x, dtype=np.float32) is x
        c = np.array(x)
        c[0] = 5.0  # a write into the copy leaves x alone
        seen["x0_after"] = float(dr.strip(x[0]))
        return np.sum(c * x)

    def plain(x):
        out = {"asarray_is": np.asarray(x) is x,
               "asarray_float_is": np.asarray(x, dtype=float) is x,
               "asanyarray_is": np.asanyarray(x) is x, "array_is": np.array(x) is x,
               "array_nocopy_is": np.array(x, copy=False) is x,
               "asarray_f32_is": np.asarray(x, dtype=np.float32) is x}
        c = np.array(x)
        c[0] = 5.0
        out["x0_after"] = float(x[0])
        return out

    g = dr.grad(f)(X.copy())
    assert seen == plain(X.copy())
    # d/dx sum(c * x) with c = x except c[0] = 5 (a constant): 2x, but 5 at 0
    np.testing.assert_allclose(g, [5.0, 2 * X[1], 2 * X[2]])


@pytest.mark.parametrize("copy", [lambda v: np.array(v), lambda v: np.copy(v)])
def test_copy_of_a_scalar_is_a_0d_array_writes_change(copy):
    """(grad's float seed pulled back through the write into the 0-d copy failed in the
    gather's implementation: 'float' object is not subscriptable.)"""
    def f(x):
        c = copy(x[0])
        c[()] = c * 3.0
        return c + x[0]

    assert dr.grad(f)(X) == pytest.approx([4.0, 0.0, 0.0])
    assert dr.jacrev(f)(X) == pytest.approx([4.0, 0.0, 0.0])


def test_copy_false_refused_where_numpy_refuses():
    with pytest.raises(ValueError):
        np.array([X[0], X[1]], copy=False)  # NumPy's own refusal of the plain call
    with pytest.raises(ValueError, match="copy=False"):
        dr.grad(lambda x: np.sum(np.array([x[0], x[1]], copy=False)))(X)
    with pytest.raises(ValueError, match="copy=False"):
        dr.grad(lambda x: np.sum(np.asarray(x, dtype=np.float32, copy=False)))(X)


def test_ragged_and_bad_keywords_raise_numpys_errors():
    with pytest.raises(ValueError):
        dr.grad(lambda x: np.sum(np.array([x[:2], x])))(X)
    with pytest.raises(ValueError):
        dr.grad(lambda x: np.sum(np.array([x[0], x[1]], order="Q")))(X)
    with pytest.raises(TypeError):
        dr.grad(lambda x: np.sum(np.array([x[0], x[1]], dtype="not a dtype")))(X)
    with pytest.raises(ValueError, match="Device"):
        dr.grad(lambda x: np.sum(np.asarray(x, device="gpu")))(X)
    with pytest.raises(DualrevError, match="dtype=object"):
        dr.grad(lambda x: np.sum(np.array([x[0], x[1]], dtype=object)))(X)


def test_integer_dtype_is_a_constant():
    """np.array(..., dtype=int) of traced values is piecewise constant: plain ints."""
    def f(x):
        k = np.array([x[0] * 3, x[1] * 3], dtype=int)
        assert type(k) is np.ndarray and k.dtype == np.int_
        return np.sum(k * x[:2])

    np.testing.assert_allclose(dr.grad(f)(X), [int(X[0] * 3), int(X[1] * 3), 0.0])


def test_asarray_chkfinite_checks_the_values():
    with pytest.raises(ValueError, match="infs or NaNs"):
        dr.grad(lambda x: np.sum(np.asarray_chkfinite([x[0], np.inf])))(X)
    with pytest.raises(ValueError, match="infs or NaNs"):
        dr.grad(lambda x: np.sum(np.asarray_chkfinite(np.log(x - 1.0))))(X)
    with pytest.raises(ValueError, match="infs or NaNs"):  # every element of a batch
        dr.vmap(lambda x: np.asarray_chkfinite(np.log(x)))(np.array([1.0, -1.0]))


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # (np.matrix's own)
def test_matrix_directive_refused_by_name():
    with pytest.raises(DualrevError, match="np.matrix"):
        dr.grad(lambda x: np.sum(np.r_["r", x, x]))(X)
    with pytest.raises(DualrevError, match="np.matrix"):
        dr.grad(lambda x: np.sum(np.c_["c", x, x]))(X)
    # without traced values the directive is NumPy's
    def f(x):
        m = np.r_["r", [1.0, 2.0], [3.0]]
        assert isinstance(m, np.matrix)
        return np.sum(x)
    dr.grad(f)(X)


def test_like_with_numpys_own_function_bound_before():
    """NumPy's like= dispatch looks the public name up when it runs, and hands the
    wrapper installed then to __array_function__ (which failed: no rule for the wrapper)."""
    g = dr.grad(lambda x: np.sum(NUMPY_ARRAY([x[0], 2.0], like=x) * x[:2]))(X)
    np.testing.assert_allclose(g, [2 * X[0], 2.0, 0.0])
    g = dr.grad(lambda x: np.sum(NUMPY_ASARRAY(x, like=x) ** 2))(X)
    np.testing.assert_allclose(g, 2 * X)


@pytest.mark.skipif("ndmax" not in (np.array.__doc__ or ""), reason="NumPy < 2.4")
def test_a_newer_numpys_keyword_passes_through_or_is_refused_by_name():
    def f(x):
        assert np.array([[1.0, 2.0]], ndmax=1, dtype=object).shape == (1,)
        return np.sum(np.array([x[0], x[1]], ndmax=0))

    np.testing.assert_allclose(dr.grad(f)(X), [1.0, 1.0, 0.0])
    with pytest.raises(DualrevError, match="ndmax"):
        dr.grad(lambda x: np.sum(np.array([x[0], x[1]], ndmax=1)))(X)


def test_like_constructors_refuse_traced_arguments():
    with pytest.raises(DualrevError, match="like="):
        dr.grad(lambda x: np.sum(np.full(3, x[0], like=x)))(X)


# ------------------------------------------------------------------ scientists' programs
def test_scipy_documented_ode_rhs():
    """SciPy's documented way to write an ODE right-hand side, inside dualrev.jacobian:
    against the closed form, in y and in the parameters."""
    def rhs(t, y, a, b):
        return np.array([-a * y[0], a * y[0] - b * y[1]])

    y, a, b = np.array([1.3, 0.4]), 0.7, 0.2
    J = dr.jacobian(rhs, argnums=1)(0.0, y, a, b)
    np.testing.assert_allclose(J, [[-a, 0.0], [a, -b]])
    Ja, Jb = dr.jacobian(rhs, argnums=(2, 3))(0.0, y, a, b)
    np.testing.assert_allclose(Ja, [-y[0], y[0]])
    np.testing.assert_allclose(Jb, [0.0, -y[1]])
    np.testing.assert_allclose(dr.jacrev(rhs, argnums=1)(0.0, y, a, b), J)
    check_all(lambda y, a, b: rhs(0.0, y, a, b), (y, a, b))


def test_rotation_matrix():
    def rot(th):
        c, s = np.cos(th), np.sin(th)
        return np.array([[c, -s], [s, c]])

    th = 0.83
    c, s = np.cos(th), np.sin(th)
    for jac in (dr.jacfwd, dr.jacrev, dr.jacobian):
        np.testing.assert_allclose(jac(rot)(th), [[-s, -c], [c, -s]], rtol=1e-14)
    np.testing.assert_allclose(dr.hessian(rot)(th), [[-c, s], [-s, -c]], rtol=1e-14)
    v = np.array([1.0, 2.0])
    np.testing.assert_allclose(dr.vmap(lambda t: rot(t) @ v)(np.array([0.1, th])),
                               [rot(0.1) @ v, rot(th) @ v], rtol=1e-14)


def test_least_squares_residual_vector_with_exact_jacobian():
    """A residual vector written with np.array, fitted by scipy.optimize.least_squares
    with dualrev's Jacobian: the same optimum as with finite differences, and the
    Jacobian equals the closed form."""
    t = np.linspace(0.0, 2.0, 6)
    y = 2.0 * np.exp(-1.3 * t) + 0.01 * np.random.default_rng(3).standard_normal(6)

    def residuals(p):
        return np.array([p[0] * math.exp(-p[1] * ti) - yi for ti, yi in zip(t, y, strict=True)])

    p = np.array([1.5, 1.0])
    J = dr.jacobian(residuals)(p)
    e = np.exp(-p[1] * t)
    np.testing.assert_allclose(J, np.stack([e, -p[0] * t * e], axis=1), rtol=1e-13)
    exact = so.least_squares(residuals, p, jac=dr.jacobian(residuals))
    approx = so.least_squares(residuals, p)
    np.testing.assert_allclose(exact.x, approx.x, rtol=1e-6)


# ------------------------------------------------------------------ math
MATH_1 = {
    "exp": (np.exp, 0.7), "expm1": (np.expm1, 0.7), "log": (np.log, 0.7),
    "log2": (np.log2, 0.7), "log10": (np.log10, 0.7), "log1p": (np.log1p, 0.7),
    "sqrt": (np.sqrt, 0.7), "sin": (np.sin, 0.7), "cos": (np.cos, 0.7),
    "tan": (np.tan, 0.7), "asin": (np.arcsin, 0.3), "acos": (np.arccos, 0.3),
    "atan": (np.arctan, 0.7), "sinh": (np.sinh, 0.7), "cosh": (np.cosh, 0.7),
    "tanh": (np.tanh, 0.7), "asinh": (np.arcsinh, 0.7), "acosh": (np.arccosh, 1.7),
    "atanh": (np.arctanh, 0.3), "fabs": (np.abs, -0.7), "erf": (sc.erf, 0.7),
    "erfc": (sc.erfc, 0.7), "gamma": (sc.gamma, 1.7), "lgamma": (sc.gammaln, 1.7),
    "degrees": (np.degrees, 0.7), "radians": (np.radians, 0.7),
}
if hasattr(math, "exp2"):
    MATH_1.update({"exp2": (np.exp2, 0.7), "cbrt": (np.cbrt, 0.7)})


@pytest.mark.parametrize("name", sorted(MATH_1))
def test_math_functions(name):
    fn, x0 = MATH_1[name]
    mfn = getattr(math, name)
    # (math's name looked up while the transform runs: a binding made before it is
    # NumPy's/math's own, see test_namespace.py)
    f = lambda x: getattr(math, name)(x) * 1.0  # noqa: E731
    value, _ = dr.jvp(f, (x0,), (1.0,))
    assert value.dtype == np.float64 and value.shape == ()
    assert float(dr.strip(value)) == pytest.approx(mfn(x0), rel=1e-15)
    np.testing.assert_allclose(dr.grad(f)(x0), dr.grad(fn)(x0), rtol=1e-14)
    check_all(f, (x0,))


def test_math_two_arguments():
    check_all(lambda x, y: math.atan2(x, y), (0.4, -0.9))
    check_all(lambda x, y: math.pow(x, y), (1.4, 0.6))
    check_all(lambda x, y: math.log(x, y), (1.4, 3.0))
    check_all(lambda x, y: math.hypot(x, y, 2.0), (1.4, -0.6))
    assert dr.grad(lambda y: math.pow(2, y))(1.5) == pytest.approx(2 ** 1.5 * math.log(2))
    assert dr.grad(lambda x: math.log(x, 10))(2.0) == pytest.approx(1 / (2.0 * math.log(10)))


def test_math_on_float32_and_batches():
    value, g = dr.jvp(lambda x: math.exp(x), (np.float32(0.5),), (np.float32(1.0),))
    assert value.dtype == np.float64  # math computes in double precision
    assert g == pytest.approx(math.exp(0.5), rel=1e-7)
    xs = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(dr.vmap(lambda x: math.sin(x) * math.exp(x))(xs),
                               np.sin(xs) * np.exp(xs), rtol=1e-15)


def test_math_errors_are_maths():
    with pytest.raises(ValueError, match="math domain error"):
        dr.grad(lambda x: math.log(x))(-1.0)
    with pytest.raises(ValueError, match="math domain error"):
        dr.grad(lambda x: math.sqrt(x))(-1.0)
    with pytest.raises(OverflowError):
        dr.grad(lambda x: math.exp(x))(1000.0)
    with pytest.raises(ValueError, match="math domain error"):  # one element of a batch
        dr.vmap(lambda x: math.log(x))(np.array([1.0, -1.0]))
    with pytest.raises(TracerConversionError, match="math.exp takes a number"):
        dr.grad(lambda x: np.sum(math.exp(x)))(X)
    with pytest.raises(DualrevError, match="complex"):
        dr.grad(lambda x: math.exp(x * 1j).real)(0.5)


def test_math_tests_give_plain_bools():
    def f(x):
        assert math.isfinite(x) is True and math.isnan(x) is False
        assert math.isinf(x / 0.0 if False else x) is False
        return x * 2
    assert dr.grad(f)(1.0) == 2.0


def test_math_untraced_is_math():
    def f(x):
        assert math.exp(1.0) == math.e and type(math.exp(1.0)) is float
        assert math.hypot() == 0.0 and math.log(8, 2) == 3.0
        return x
    dr.grad(f)(1.0)


# ------------------------------------------------------------------ int, floor, round
def test_piecewise_constant_conversions_are_plain():
    got = {}

    def f(x):
        got.update(int=int(x), floor=math.floor(x), ceil=math.ceil(x),
                   trunc=math.trunc(x), round=round(x), round2=round(x, 2))
        return x * int(x) + math.floor(x) * x ** 2 + round(x, 1)

    x0 = 2.567
    g = dr.grad(f)(x0)
    assert got == {"int": 2, "floor": 2, "ceil": 3, "trunc": 2, "round": 3,
                   "round2": round(np.float64(x0), 2)}
    assert all(type(got[k]) is int for k in ("int", "floor", "ceil", "trunc", "round"))
    assert g == pytest.approx(2 + 2 * 2 * x0)  # the conversions' derivative is 0
    assert dr.grad(lambda x: math.floor(-x) * x)(1.5) == -2.0
    assert dr.jacfwd(lambda x: x * math.ceil(x))(0.5) == 1.0


def test_conversions_that_drop_a_derivative_stay_refused():
    with pytest.raises(TracerConversionError):
        dr.grad(lambda x: float(x) * x)(1.0)
    with pytest.raises(TracerConversionError):
        dr.grad(lambda x: x.item() * x)(1.0)
    with pytest.raises(BatchedValueError):
        dr.vmap(lambda x: x * int(x))(np.array([1.5, 2.5]))
    with pytest.raises(BatchedValueError):
        dr.vmap(lambda x: x * math.floor(x))(np.array([1.5, 2.5]))
    with pytest.raises(TypeError, match="np.round"):
        dr.grad(lambda x: np.sum(round(x)))(X)
