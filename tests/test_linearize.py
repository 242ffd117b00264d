"""dualrev.linearize (f evaluated once, its JVP applied many times) and
dualrev.linear_transpose (the transpose of a linear function, non-linear ones refused),
checked against dualrev.jvp, finite differences, explicit Jacobians and closed forms."""

import warnings

import numpy as np
import pytest
import scipy.linalg as sl
import scipy.sparse as sp
import scipy.special as ss
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

import dualrev as dr
from dualrev import config
from tests.test_random_programs import edgy_points, masked_programs, mixed_programs

RNG_SEED = 20261207


def _fd_jvp(f, x, v, eps=1e-6):
    return (f(x + eps * v) - f(x - eps * v)) / (2 * eps)


def _smooth(x):
    y = np.sin(x) * np.exp(-x ** 2) + np.tanh(x[::-1]) @ np.outer(x, x)
    return np.cumsum(y) / (1.0 + np.sum(x ** 2))


# ------------------------------------------------------------------ linearize

@pytest.mark.parametrize("f", [
    _smooth,
    lambda x: sl.expm(np.outer(x, x) * 0.1) @ x,
    lambda x: ss.gammaln(x + 2.0) * np.log1p(x ** 2),
    lambda x: np.linalg.solve(np.eye(4) * 3 + np.outer(x, x), np.sin(x)),
    lambda x: np.fft.rfft(x * np.arange(4.0)).real,
    lambda x: np.sum(np.maximum(x, 0.1) ** 3),
], ids=["smooth", "expm", "gammaln", "solve", "rfft", "max-scalar"])
def test_f_jvp_equals_jvp_and_finite_differences(f):
    rng = np.random.default_rng(RNG_SEED)
    x = rng.uniform(0.2, 1.0, 4)
    out, f_jvp = dr.linearize(f, x)
    np.testing.assert_allclose(out, f(x), rtol=1e-13)
    for _ in range(3):
        v = rng.standard_normal(4)
        t = f_jvp(v)
        np.testing.assert_allclose(t, dr.jvp(f, (x,), (v,))[1], rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(t, _fd_jvp(f, x, v), rtol=1e-6, atol=1e-8)


def test_f_runs_once_however_many_jvps():
    calls = []

    def f(x):
        calls.append(1)
        return np.tanh(x) * x[0]

    x = np.array([0.3, -0.7, 1.1])
    _, f_jvp = dr.linearize(f, x)
    J = dr.jacfwd(f)(x)
    calls.clear()
    for v in np.eye(3):
        np.testing.assert_allclose(f_jvp(v), J @ v, rtol=1e-14)
    assert not calls


def test_has_aux_order_and_pytrees_in_and_out():
    def f(p, s):
        y = {"a": p["w"] * s, "b": (np.sum(p["b"] ** 2), p["w"] @ p["b"])}
        return y, {"n": 3}

    p = {"w": np.array([1.0, 2.0]), "b": np.array([0.5, -1.0])}
    s = 1.5
    out, f_jvp, aux = dr.linearize(f, p, s, has_aux=True)  # JAX's order
    assert aux == {"n": 3}
    np.testing.assert_allclose(out["a"], p["w"] * s)
    tp = {"w": np.array([0.1, -0.2]), "b": np.array([0.3, 0.4])}
    t = f_jvp(tp, 2.0)
    ref = dr.jvp(lambda p, s: f(p, s)[0], (p, s), (tp, 2.0))[1]
    np.testing.assert_allclose(t["a"], ref["a"], rtol=1e-14)
    np.testing.assert_allclose(t["b"][0], ref["b"][0], rtol=1e-14)
    np.testing.assert_allclose(t["b"][1], ref["b"][1], rtol=1e-14)


def test_tangents_are_checked_as_jvp_checks_them():
    _, f_jvp = dr.linearize(lambda x, y: x * y, np.ones(3), 2.0)
    with pytest.raises(dr.DualrevError, match="one tangent per primal"):
        f_jvp(np.ones(3))
    with pytest.raises(dr.DualrevError, match=r"shape \(2,\) was given for a primal of shape"):
        f_jvp(np.ones(2), 1.0)
    with pytest.raises(dr.DualrevError, match="floating point"):
        f_jvp(np.ones(3, int), 1.0)
    with pytest.raises(dr.DualrevError, match="same structure"):
        f_jvp((np.ones(3),), 1.0)


def test_later_writes_into_primals_and_closed_over_arrays_change_nothing():
    A = np.array([[2.0, 1.0], [0.0, 3.0]])
    x = np.array([0.5, -0.25])
    f = lambda x: A @ np.sin(x)  # noqa: E731
    _, f_jvp = dr.linearize(f, x)
    ref = f_jvp(np.array([1.0, 2.0]))
    A[:] = 0.0
    x[:] = 9.0
    np.testing.assert_array_equal(f_jvp(np.array([1.0, 2.0])), ref)
    np.testing.assert_allclose(ref, np.array([[2.0, 1.0], [0.0, 3.0]])
                               @ (np.cos([0.5, -0.25]) * [1.0, 2.0]), rtol=1e-14)


def test_in_place_writes_in_f():
    def heat(u):
        u = u.copy()
        for _ in range(5):
            u[1:-1] += 0.2 * (u[2:] - 2 * u[1:-1] + u[:-2]) + 0.01 * u[1:-1] ** 2
        return u

    rng = np.random.default_rng(RNG_SEED + 1)
    u = rng.uniform(0, 1, 8)
    _, f_jvp = dr.linearize(heat, u)
    v = rng.standard_normal(8)
    np.testing.assert_allclose(f_jvp(v), dr.jvp(heat, (u,), (v,))[1], rtol=1e-13)
    np.testing.assert_allclose(f_jvp(v), _fd_jvp(heat, u, v), rtol=1e-7)


def test_custom_jvp_rule_is_used_and_custom_vjp_is_pushed_through_its_backward():
    @dr.custom_jvp
    def softplus(x):
        return np.log1p(np.exp(x))

    @softplus.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return softplus(x), t * 0.5  # a deliberately different rule: it must be the one used

    @dr.custom_vjp
    def cube(x):
        return x ** 3

    cube.defvjp(lambda x: (x ** 3, x), lambda x, g: (3 * x ** 2 * g,))

    x = np.array([0.5, 2.0])
    v = np.array([1.0, -1.0])
    np.testing.assert_allclose(dr.linearize(softplus, x)[1](v), 0.5 * v)
    np.testing.assert_allclose(dr.linearize(cube, x)[1](v), 3 * x ** 2 * v, rtol=1e-14)
    np.testing.assert_allclose(dr.linearize(cube, x)[1](v), dr.jvp(cube, (x,), (v,))[1])


def test_complex_input_and_tangent():
    f = lambda z: z ** 2 * np.exp(1j * z) + np.conj(z)  # noqa: E731  (not holomorphic)
    z = np.array([0.3 + 0.2j, -1.0 + 0.5j])
    v = np.array([1.0 - 2.0j, 0.5j])
    _, f_jvp = dr.linearize(f, z)
    np.testing.assert_allclose(f_jvp(v), dr.jvp(f, (z,), (v,))[1], rtol=1e-14)
    np.testing.assert_allclose(f_jvp(v), _fd_jvp(f, z, v), rtol=1e-7)


def test_float32_keeps_its_precision():
    x = np.array([0.5, 1.5], np.float32)
    _, f_jvp = dr.linearize(lambda x: np.sin(x) * x, x)
    t = f_jvp(np.ones(2, np.float32))
    assert t.dtype == np.float32
    np.testing.assert_allclose(t, np.sin(x) + x * np.cos(x), rtol=1e-6)


def test_shortcuts_off_gives_the_same_numbers():
    x = np.array([0.2, 0.9, -0.4, 1.3])
    v = np.array([1.0, 0.5, -2.0, 0.25])
    with config.shortcuts(True):
        with_shortcuts = dr.linearize(_smooth, x)[1](v)
    with config.shortcuts(False):
        without = dr.linearize(_smooth, x)[1](v)
    np.testing.assert_allclose(with_shortcuts, without, rtol=1e-14)


def test_f_jvp_composes_with_vmap_jacfwd_vjp_and_grad():
    x = np.array([0.2, 0.9, -0.4, 1.3])
    J = dr.jacfwd(_smooth)(x)
    _, f_jvp = dr.linearize(_smooth, x)
    np.testing.assert_allclose(dr.vmap(f_jvp)(np.eye(4)), J.T, rtol=1e-13)  # rows: J e_i
    np.testing.assert_allclose(dr.jacfwd(f_jvp)(np.ones(4)), J, rtol=1e-13)
    np.testing.assert_allclose(dr.jacrev(f_jvp)(np.ones(4)), J, rtol=1e-13)
    ct = np.array([1.0, -2.0, 0.5, 3.0])
    np.testing.assert_allclose(dr.vjp(f_jvp, np.ones(4))[1](ct)[0], J.T @ ct, rtol=1e-13)
    v = np.array([0.3, -0.1, 0.7, 0.2])
    g = dr.grad(lambda v: np.sum(f_jvp(v) ** 2))(v)
    np.testing.assert_allclose(g, 2 * J.T @ (J @ v), rtol=1e-12)
    # linear: its transpose is f's VJP at the point
    np.testing.assert_allclose(dr.linear_transpose(f_jvp, v)(ct)[0], J.T @ ct, rtol=1e-13)


def test_linearize_inside_an_outer_transform_against_finite_differences():
    v = np.array([1.0, -0.5, 0.25, 2.0])

    def loss(p):
        return np.sum(dr.linearize(_smooth, p)[1](v) ** 2)

    def plain_loss(p):
        return np.sum(dr.jvp(_smooth, (p,), (v,))[1] ** 2)

    p = np.array([0.2, 0.9, -0.4, 1.3])
    g = dr.grad(loss)(p)
    fd = np.array([(plain_loss(p + 1e-6 * e) - plain_loss(p - 1e-6 * e)) / 2e-6
                   for e in np.eye(4)])
    np.testing.assert_allclose(g, fd, rtol=1e-6)
    np.testing.assert_allclose(g, dr.grad(plain_loss)(p), rtol=1e-12)
    w = np.array([0.5, 0.1, -0.3, 1.0])
    t = dr.jvp(lambda p: dr.linearize(_smooth, p)[1](v), (p,), (w,))[1]
    np.testing.assert_allclose(t, _fd_jvp(lambda p: dr.jvp(_smooth, (p,), (v,))[1], p, w),
                               rtol=1e-6, atol=1e-9)


def test_linearize_under_vmap_jacfwd_and_hessian_of_the_point():
    v = np.array([1.0, -0.5, 0.25, 2.0])
    P = np.random.default_rng(RNG_SEED + 5).uniform(-1, 1, (3, 4))
    lin = lambda p: dr.linearize(_smooth, p)[1](v)  # noqa: E731
    ref = lambda p: dr.jvp(_smooth, (p,), (v,))[1]  # noqa: E731
    np.testing.assert_allclose(dr.vmap(lin)(P), np.stack([ref(p) for p in P]), rtol=1e-13)
    np.testing.assert_allclose(dr.jacfwd(lin)(P[0]), dr.jacfwd(ref)(P[0]), rtol=1e-12)
    np.testing.assert_allclose(dr.hessian(lambda p: np.sum(lin(p)))(P[1]),
                               dr.hessian(lambda p: np.sum(ref(p)))(P[1]), rtol=1e-10)


def test_f_jvp_of_a_traced_point_escapes_with_its_transform():
    kept = []

    def loss(p):
        out, f_jvp = dr.linearize(np.sin, p)
        kept.append(f_jvp)
        return np.sum(out)

    dr.grad(loss)(np.ones(2))
    with pytest.raises(dr.EscapedTracerError):
        kept[0](np.ones(2))


def test_replayed_f_jvp_gives_the_same_numbers():
    x = np.array([0.2, 0.9, -0.4, 1.3])
    _, f_jvp = dr.linearize(_smooth, x)
    replayed = dr.replay(f_jvp)
    rng = np.random.default_rng(RNG_SEED + 4)
    for _ in range(3):
        v = rng.standard_normal(4)
        np.testing.assert_allclose(replayed(v), f_jvp(v), rtol=1e-14, atol=1e-15)
    assert replayed.stats.replays == 2


def test_nonfinite_jvp_warns_naming_the_operation():
    x = np.array([0.0, 1.0])
    _, f_jvp = dr.linearize(lambda x: np.sqrt(x) * 2.0, x)
    with pytest.warns(dr.NonFiniteDerivativeWarning, match="sqrt"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        t = f_jvp(np.array([1.0, 1.0]))
    assert np.isinf(t[0]) and t[1] == 1.0
    with warnings.catch_warnings():  # (NumPy's own RuntimeWarnings, as for dr.jvp)
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("error", dr.NonFiniteDerivativeWarning)
        # a zero tangent where the partial is infinite: a strong zero, as dr.jvp gives
        np.testing.assert_array_equal(f_jvp(np.array([0.0, 1.0])), [0.0, 1.0])


def test_output_not_reached_by_the_inputs_has_zero_tangent():
    out, f_jvp = dr.linearize(lambda x: (np.ones(2), x * 2.0), np.ones(3))
    t0, t1 = f_jvp(np.ones(3))
    np.testing.assert_array_equal(t0, np.zeros(2))
    np.testing.assert_array_equal(t1, 2 * np.ones(3))


# ------------------------------------------------------------------ linear_transpose

_A = np.random.default_rng(RNG_SEED + 2).standard_normal((3, 6))
_S = sp.random(5, 6, density=0.4, random_state=7, format="csr")
_MASK = np.array([True, False, True, True, False, False])


def _buffer_writes(x):
    buf = np.zeros(8)
    buf[1:-1] = x
    buf[:-2] -= 2.0 * x
    buf[3] += x[0]
    return buf


def _add_at(x):
    return dr.at(np.zeros(4))[[0, 1, 1, 3, 0, 2]].add(x)


LINEAR_FUNCTIONS = {
    "reshape-transpose": lambda x: x.reshape(2, 3).T * 2.0,
    "indexing": lambda x: x[::2] - x[[5, 0, 0]],
    "sum-mean": lambda x: np.stack([np.sum(x), np.mean(x[1:])]),
    "cumsum-diff": lambda x: np.concatenate([np.cumsum(x), np.diff(x)]),
    "matmul-const": lambda x: _A @ x,
    "einsum-tensordot": lambda x: np.einsum("ij,j->i", _A, x) + np.tensordot(_A, x, 1),
    "sparse-matmul": lambda x: _S @ x,
    "fft": lambda x: np.fft.fft(x),
    "rfft-irfft": lambda x: np.fft.irfft(np.fft.rfft(x) * np.arange(4.0)),
    "convolve": lambda x: np.convolve(x, [1.0, -2.0, 0.5]),
    "scatter-add-at": _add_at,
    "writes-into-zeros": _buffer_writes,
    "pad-roll-flip": lambda x: np.pad(np.roll(x, 2), 1) + np.pad(np.flip(x), 1),
    "where-const-mask": lambda x: np.where(_MASK, x, -3.0 * x),
    "solve-const": lambda x: np.linalg.solve(np.eye(6) * 2.0 + _A.T @ _A, x),
    "divide-by-const": lambda x: x / np.arange(1.0, 7.0),
    "kron-outer": lambda x: np.kron(x[:2], [1.0, 3.0]) + np.outer(x, [1.0, 2.0])[:, 1][:4],
    "tril": lambda x: np.tril(np.outer(x[:3], np.ones(3))),
    "affine (as JAX)": lambda x: 3.0 * x + 1.0,
    "affine pad": lambda x: np.pad(x, 1, constant_values=2.0),
    "ndimage": lambda x: ndimage.gaussian_filter1d(x, 1.0) + ndimage.correlate1d(x, [1.0, 2.0]),
    "interp-polyval-cross": lambda x: np.concatenate([
        np.interp([0.5, 1.5], [0.0, 1.0, 2.0], x[:3]), [np.polyval(x[:3], 2.0)],
        np.cross(x[3:], [1.0, 2.0, 3.0])]),
    "in-place-multiply": lambda x: _scaled_copy(x),
}


def _scaled_copy(x):
    y = x.copy()
    y *= 2.0
    y[1:] += y[:-1]
    return y


def _explicit_transpose(f, ct):
    """J.T @ ct with J built column by column from vmap(f)(eye) (its rows are f(e_i)):
    for a complex output of a real input the real pairing Re(sum(ct * J x))."""
    rows = dr.vmap(f)(np.eye(6)) - f(np.zeros(6))  # (an affine f: its linear part)
    return np.real(rows.reshape(6, -1) @ ct.reshape(-1))


@pytest.mark.parametrize("name", list(LINEAR_FUNCTIONS))
def test_linear_transpose_is_the_explicit_matrix_transpose(name):
    f = LINEAR_FUNCTIONS[name]
    rng = np.random.default_rng(RNG_SEED + 3)
    out = f(np.ones(6))
    ct = rng.standard_normal(np.shape(out))
    if np.iscomplexobj(out):
        ct = ct + 1j * rng.standard_normal(np.shape(out))
    (got,) = dr.linear_transpose(f, np.zeros(6))(ct)
    assert got.shape == (6,) and got.dtype == np.float64
    np.testing.assert_allclose(got, _explicit_transpose(f, ct), rtol=1e-12, atol=1e-12)
    # and dualrev's VJP at any point is the same map
    x = rng.standard_normal(6)
    np.testing.assert_allclose(got, dr.vjp(f, x)[1](ct)[0], rtol=1e-12, atol=1e-12)


def test_several_inputs_pytrees_and_shape_dtype_structs():
    class Spec:  # what jax.ShapeDtypeStruct offers: a shape and a dtype
        def __init__(self, shape, dtype):
            self.shape, self.dtype = shape, np.dtype(dtype)

    def f(p, y):
        return {"u": p["a"] @ _A.T + y, "v": 2.0 * p["b"]}

    f_t = dr.linear_transpose(f, {"a": Spec((6,), float), "b": 0.0}, np.zeros(3))
    ct = {"u": np.array([1.0, 2.0, -1.0]), "v": 4.0}
    (cp, cy) = f_t(ct)
    np.testing.assert_allclose(cp["a"], _A.T @ ct["u"], rtol=1e-14)
    assert cp["b"] == 8.0
    np.testing.assert_array_equal(cy, ct["u"])
    # called again: the recording is played back, f not run
    np.testing.assert_allclose(f_t(ct)[0]["a"], _A.T @ ct["u"], rtol=1e-14)


def test_the_transpose_composes_and_keeps_float32():
    A = np.arange(6.0).reshape(2, 3)
    f_t = dr.linear_transpose(lambda x: A @ x, np.zeros(3))
    np.testing.assert_array_equal(dr.vmap(f_t)(np.eye(2))[0], A)  # rows: A.T e_i
    np.testing.assert_allclose(dr.jacfwd(lambda c: f_t(c)[0])(np.ones(2)), A.T)
    np.testing.assert_allclose(dr.grad(lambda c: np.sum(f_t(c)[0] ** 2))(np.ones(2)),
                               2 * A @ A.T @ np.ones(2))
    (got,) = dr.linear_transpose(lambda x: A @ x, np.zeros(3, np.float32))(
        np.ones(2, np.float32))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [3.0, 5.0, 7.0])


def test_complex_transposes_without_conjugation_as_jax():
    z = np.zeros(2, complex)
    ct = np.array([1.0 + 2.0j, -0.5j])
    c = 1.0 + 2.0j
    np.testing.assert_allclose(dr.linear_transpose(lambda z: c * z, z)(ct)[0], c * ct)
    np.testing.assert_allclose(dr.linear_transpose(np.conj, z)(ct)[0], np.conj(ct))
    got = dr.linear_transpose(np.real, z)(np.array([1.0, 2.0]))[0]
    assert got.dtype == complex
    np.testing.assert_array_equal(got, [1.0, 2.0])
    np.testing.assert_allclose(dr.linear_transpose(np.imag, z)(np.array([1.0, 2.0]))[0],
                               [-1.0j, -2.0j])


def _python_if(x):
    if x[0] > 0:
        return x
    return -x


NON_LINEAR = {
    "sin": (np.sin, "sin is not linear"),
    "product": (lambda x: x * x[::-1], "multiply multiplies two values"),
    "square": (lambda x: x ** 2, "power"),
    "reciprocal": (lambda x: 1.0 / x, "divide's argument 1"),
    "relu": (lambda x: np.where(x > 0, x, 0.0), "greater"),
    "abs": (np.abs, "absolute"),
    "max": (lambda x: np.max(x) * np.ones(2), "max"),
    "python-if": (_python_if, "greater"),
    "int-index": (lambda x: x * x[int(x[1] * 0)], "plain or Python value"),
    "float": (lambda x: x * float(x[0]), "plain or Python value"),
    "quadratic-form": (lambda x: x @ _A.T @ _A @ x, "matmul multiplies"),
    "sort": (np.sort, "sort"),
    "cast-to-int": (lambda x: x.astype(int) * 1.0, "plain or Python value"),
    "nansum": (np.nansum, "isnan"),
    "clip": (lambda x: np.clip(x, -1.0, 1.0), "clip"),
    "norm": (np.linalg.norm, "multiplies two values"),
}


@pytest.mark.parametrize("name", list(NON_LINEAR))
def test_non_linear_functions_are_refused_naming_the_operation_and_line(name):
    f, what = NON_LINEAR[name]
    with pytest.raises(dr.NonLinearError, match=what) as info:
        dr.linear_transpose(f, np.ones(6))
    assert "test_linearize.py" in str(info.value)


def test_functions_with_custom_rules_are_opaque_to_the_linearity_check():
    @dr.custom_jvp
    def double(x):
        return 2.0 * x

    double.defjvp(lambda p, t: (double(p[0]), 2.0 * t[0]))
    with pytest.raises(dr.NonLinearError, match="custom rules is opaque"):
        dr.linear_transpose(double, np.ones(2))
    np.testing.assert_array_equal(dr.linearize(double, np.ones(2))[1](np.ones(2)), [2.0, 2.0])


def test_linear_transpose_argument_errors():
    with pytest.raises(dr.DualrevError, match="floating-point inputs"):
        dr.linear_transpose(lambda x: 2 * x, np.ones(3, int))
    f_t = dr.linear_transpose(lambda x: 2 * x, np.ones(3))
    with pytest.raises(dr.DualrevError, match="shape"):
        f_t(np.ones(4))
    with pytest.raises(dr.DualrevError, match="complex cotangent"):
        f_t(np.ones(3) * 1j)
    with pytest.raises(dr.DualrevError, match="structure"):
        f_t((np.ones(3),))


def test_linear_transpose_refuses_values_of_an_outer_transform_clearly():
    def loss(a):
        (g,) = dr.linear_transpose(lambda x: a * x, np.ones(2))(np.ones(2))
        return np.sum(g)

    with pytest.raises(dr.DualrevError, match="dualrev.vjp"):
        dr.grad(loss)(np.ones(2))


# ------------------------------------------------------------------ every catalogue entry
# The conformance harness's cases (tests/conformance/specs.py: every registered entry,
# its keyword variants, dtypes and shapes), a deterministic eighth (linearize) and quarter
# (linear_transpose) of them here: the whole set, 4870 linearize and 4241 linear_transpose
# cases, takes ~16 s on one core.
def _conformance_cases(float32: bool, stride: int):
    from tests.conformance.checks import Prepared
    from tests.conformance.specs import CASES

    for case in CASES[::stride]:
        if case.kind != "diff" or (case.dtype == "float32" and not float32):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p = Prepared(case)
        if p.diff:
            yield case, p


def test_f_jvp_equals_jvp_on_the_conformance_cases():
    counts = {"same": 0, "refused": 0}
    for case, p in _conformance_cases(float32=True, stride=8):
        vs = p.random_like(p.leaves)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                _, want = dr.jvp(p.g, p.leaves, vs)
            except dr.DualrevError as e:
                with pytest.raises(type(e)):
                    dr.linearize(p.g, *p.leaves)[1](*vs)
                counts["refused"] += 1
                continue
            _, f_jvp = dr.linearize(p.g, *p.leaves)
            first, again = f_jvp(*vs), f_jvp(*vs)
        for w, t, u in zip(want, first, again, strict=True):
            np.testing.assert_allclose(t, w, rtol=1e-9, atol=1e-12, equal_nan=True,
                                       err_msg=case.id)
            np.testing.assert_array_equal(u, t, err_msg=case.id)  # the cached partials
            assert np.result_type(t) == np.result_type(w), case.id
        counts["same"] += 1
    assert counts["same"] > 500, counts


def test_linear_transpose_classifies_the_conformance_cases():
    """Every case accepted as linear is affine in its inputs, numerically (g(x) + g(y) -
    g(z) == g(x + y - z)), and its transpose is its VJP; the others are refused with
    NonLinearError, or with the error dr.vjp gives them."""
    counts = {"accepted": 0, "refused": 0}
    for case, p in _conformance_cases(float32=False, stride=4):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                f_t = dr.linear_transpose(p.g, *p.leaves)
            except dr.NonLinearError:
                counts["refused"] += 1
                continue
            except dr.DualrevError as e:
                with pytest.raises(type(e)):
                    dr.vjp(p.g, *p.leaves)
                continue
            xs = [p.random_like(p.leaves) for _ in range(3)]
            lhs = [np.asarray(a) + np.asarray(b) - np.asarray(c)
                   for a, b, c in zip(*[p.g(*x) for x in xs], strict=True)]
            rhs = p.g(*[a + b - c for a, b, c in zip(*xs, strict=True)])
            for u, w in zip(lhs, rhs, strict=True):
                np.testing.assert_allclose(u, w, rtol=1e-8, atol=1e-8, equal_nan=True,
                                           err_msg=f"{case.id} accepted, not affine")
            cts = tuple(p.random_like([np.asarray(o) for o in p.g(*p.leaves)]))
            got = f_t(cts)
            want = dr.vjp(p.g, *p.leaves)[1](cts)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-10, err_msg=case.id)
        counts["accepted"] += 1
    assert counts["accepted"] > 150 and counts["refused"] > 500, counts


# ------------------------------------------------------------------ random programs
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mixed_programs, masked_programs), edgy_points)
def test_f_jvp_equals_jvp_on_random_programs(program, x):
    """tests/test_random_programs.py's programs (kinks, masks over singular branches,
    ties) at grid and random points: f_jvp along each basis vector equals dr.jvp there,
    non-finite entries included (each then warned about by both)."""
    with np.errstate(all="ignore"):
        if not np.isfinite(program(x)).all():
            return  # outside the program's domain
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            want = [dr.jvp(program, (x,), (e,))[1] for e in np.eye(4)]
        except dr.DualrevError as e:
            with pytest.raises(type(e)):
                dr.linearize(program, x)[1](np.ones(4))
            return
        _, f_jvp = dr.linearize(program, x)
        got = [f_jvp(e) for e in np.eye(4)]
        batched = dr.vmap(f_jvp)(np.eye(4))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14, equal_nan=True,
                                   err_msg=program.__name__)
    if all(np.isfinite(w).all() for w in want):
        np.testing.assert_allclose(batched, np.stack(want), rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------ against JAX
@pytest.mark.jax
def test_linearize_and_linear_transpose_agree_with_jax():
    from tests.jaxref import jax_modules

    jax, jnp = jax_modules()
    rng = np.random.default_rng(RNG_SEED + 6)
    M = rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))

    def f(x, m=np):  # complex output of a real input
        return m.sin(x[:3]) * (M @ x) + m.exp(1j * x[:3])

    x, v = rng.standard_normal(4), rng.standard_normal(4)
    out, f_jvp = dr.linearize(f, x)
    j_out, j_jvp = jax.linearize(lambda x: f(x, jnp), jnp.asarray(x))
    np.testing.assert_allclose(out, np.asarray(j_out), rtol=1e-13)
    np.testing.assert_allclose(f_jvp(v), np.asarray(j_jvp(jnp.asarray(v))), rtol=1e-12)
    z = rng.standard_normal(4) + 1j * rng.standard_normal(4)
    ct = rng.standard_normal(3) + 1j * rng.standard_normal(3)
    for lin in (lambda z, m=np: M @ z, lambda z, m=np: m.conj(M @ z) + 2j * z[:3],
                lambda z, m=np: m.fft.fft(z)[:3] * (1 - 1j)):
        (ours,) = dr.linear_transpose(lin, z)(ct)
        (theirs,) = jax.linear_transpose(lambda z, lin=lin: lin(z, jnp), jnp.asarray(z))(
            jnp.asarray(ct))
        np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-12, atol=1e-14)
    # a real input with a complex output: the real part of the pairing, as JAX
    (ours,) = dr.linear_transpose(lambda x: M @ x, x)(ct)
    (theirs,) = jax.linear_transpose(lambda x: jnp.asarray(M) @ x.astype(complex),
                                     jnp.asarray(x))(jnp.asarray(ct))
    np.testing.assert_allclose(ours, np.asarray(theirs), rtol=1e-12, atol=1e-14)
    # affine: both accept x + 1 and transpose its linear part
    (ours,) = dr.linear_transpose(lambda x: 3 * x + 1.0, x)(v)
    (theirs,) = jax.linear_transpose(lambda x: 3 * x + 1.0, jnp.asarray(x))(jnp.asarray(v))
    np.testing.assert_allclose(ours, np.asarray(theirs))
