"""NumPy's and math's names replaced only while a transform runs (dualrev/namespace.py):
installed by the first transform to start and restored by the last to finish, after an
exception, after a pullback called later, across threads and nested transforms; and who
sees the wrappers (SciPy's own code does not)."""

from __future__ import annotations

import math
import threading
import warnings

import numpy as np
import pytest
import scipy.fft
import scipy.integrate
import scipy.optimize as so
import scipy.signal
import scipy.stats
from numpy import r_ as early_r_

import dualrev as dr
from dualrev import namespace
from dualrev.catalogue import construction

NAMES = [(np, "array"), (np, "asarray"), (np, "asanyarray"), (np, "ascontiguousarray"),
         (np, "asfortranarray"), (np, "asarray_chkfinite"), (np, "r_"), (np, "c_"),
         (math, "exp"), (math, "log"), (math, "hypot")]
ORIGINALS = {(m, n): getattr(m, n) for m, n in NAMES}
X = np.array([0.4, 1.3])


def assert_originals():
    assert not namespace.active()
    for (m, n), orig in ORIGINALS.items():
        assert getattr(m, n) is orig, f"{m.__name__}.{n} was not restored"


def test_registered_and_only_installed_while_tracing():
    assert_originals()
    seen = {}

    def f(x):
        seen["active"] = namespace.active()
        seen["array"] = np.array is construction.array
        seen["exp"] = math.exp is not ORIGINALS[(math, "exp")]
        seen["original"] = namespace.original(np, "array") is ORIGINALS[(np, "array")]
        return np.sum(np.array([x[0], x[1]]))

    dr.grad(f)(X)
    assert seen == {"active": True, "array": True, "exp": True, "original": True}
    assert_originals()
    assert namespace.original(np, "array") is np.array  # (not replaced now: the name)


@pytest.mark.parametrize("transform", [dr.grad, dr.jacfwd, dr.jacrev, dr.jacobian,
                                       dr.hessian, dr.vmap])
def test_restored_after_an_exception_inside_f(transform):
    def f(x):
        np.array([x[0], x[1]])
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        transform(f)(X if transform is not dr.vmap else np.stack([X, X]))
    assert_originals()


def test_restored_after_a_pullback_called_later():
    out, pullback = dr.vjp(lambda x: np.array([x[0] * x[1], math.exp(x[0])]), X)
    assert_originals()
    g, = pullback(np.array([1.0, 2.0]))
    np.testing.assert_allclose(g, [X[1] + 2 * math.exp(X[0]), X[0]])
    assert_originals()
    g2, = pullback(np.array([0.0, 1.0]))  # again
    np.testing.assert_allclose(g2, [math.exp(X[0]), 0.0])
    assert_originals()


def test_nested_transforms_keep_them_until_the_outermost_returns():
    states = []

    def inner(x):
        states.append(namespace.active())
        return np.array([x[0] ** 2 * x[1], math.sin(x[1])])

    def outer(x):
        J = dr.jacrev(inner)(x)
        states.append(np.array is construction.array)  # inner returned: still installed
        return np.sum(J)

    g = dr.grad(outer)(X)
    assert states == [True, True]
    assert_originals()
    # d/dx sum([[2 x0 x1, x0^2], [0, cos x1]]) = [2 x1 + 2 x0, 2 x0 - sin x1]
    np.testing.assert_allclose(g, [2 * X[1] + 2 * X[0], 2 * X[0] - np.sin(X[1])])


def test_transforms_inside_scipy_callbacks_install_and_restore_many_times():
    data = np.array([1.0, 2.0, 3.5])

    def loss(p):
        r = np.array([p[0] + p[1] * t - y for t, y in zip([0.0, 1.0, 2.0], data, strict=True)])
        return np.sum(r ** 2) + 0.1 * math.exp(p[0] - 3.0)

    calls = []

    def jac(p):
        calls.append(1)
        assert_originals()  # between two calls of the Jacobian
        return dr.grad(loss)(p)

    res = so.minimize(loss, np.zeros(2), jac=jac, method="BFGS")
    assert len(calls) > 3 and res.success
    assert np.linalg.norm(dr.grad(loss)(res.x)) < 1e-4
    assert_originals()


def test_names_rebound_by_someone_else_are_theirs():
    """A name rebound between transforms is the original the next one saves and restores;
    one rebound while a transform runs is left as it was set."""
    mine = lambda a, *args, **kw: ORIGINALS[(np, "asarray")](a, *args, **kw)  # noqa: E731
    other = lambda x: 0.0  # noqa: E731
    np.asarray = mine
    try:
        dr.grad(lambda x: np.sum(np.asarray(x)))(X)  # installs the wrapper over `mine`
        assert np.asarray is mine and namespace.original(np, "asarray") is mine

        def f(x):
            math.exp = other  # rebound while the transform runs
            return np.sum(x)

        dr.grad(f)(X)
        assert math.exp is other
    finally:
        np.asarray = ORIGINALS[(np, "asarray")]
        math.exp = ORIGINALS[(math, "exp")]
    dr.grad(lambda x: np.sum(np.asarray(x)) + math.exp(x[0]))(X)
    assert_originals()


def test_a_thread_without_a_transform_gets_numpys_results():
    """Thread B calls the wrappers (installed by thread A's transform) with plain values
    and gets NumPy's results, aliasing included."""
    inside, done = threading.Event(), threading.Event()
    results = {}

    def f(x):
        inside.set()
        assert done.wait(10)
        return np.sum(np.array([x[0], x[1]]))

    def other():
        assert inside.wait(10)
        try:
            a = np.arange(3.0)
            results["installed"] = np.array is construction.array
            results["array"] = np.array([1.0, 2.0])
            results["asarray_is"] = np.asarray(a) is a
            results["array_copies"] = np.array(a) is not a
            results["exp"] = math.exp(1.0)
            results["r_"] = np.r_[a, 7.0]
        finally:
            done.set()

    t = threading.Thread(target=other)
    t.start()
    g = dr.grad(f)(X)
    t.join()
    assert results["installed"]
    assert type(results["array"]) is np.ndarray
    np.testing.assert_array_equal(results["array"], [1.0, 2.0])
    assert results["asarray_is"] and results["array_copies"]
    assert results["exp"] == math.e
    np.testing.assert_array_equal(results["r_"], [0.0, 1.0, 2.0, 7.0])
    np.testing.assert_allclose(g, [1.0, 1.0])
    assert_originals()


def test_transforms_in_two_threads_at_once():
    barrier = threading.Barrier(2)
    out = [None, None]

    def run(i):
        def f(x):
            barrier.wait(10)  # both transforms running
            v = np.array([x[0] * (i + 1), math.exp(x[1])])
            barrier.wait(10)
            return np.sum(v)
        out[i] = dr.grad(f)(X)

    ts = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for i in range(2):
        np.testing.assert_allclose(out[i], [i + 1.0, math.exp(X[1])])
    assert_originals()


def test_wrappers_on_plain_values_are_numpys():
    """Called on plain values (as after a module bound one while a transform ran), each
    wrapper gives NumPy's result: value, dtype, layout and aliasing."""
    a = np.arange(6.0).reshape(2, 3)
    f = np.asfortranarray(a)
    W = construction
    assert W.array(a) is not a and W.array(a, copy=False) is a
    assert W.array([1, 2], dtype=np.float32).dtype == np.float32
    assert W.array([1.0], ndmin=3).shape == (1, 1, 1)
    assert W.asarray(a) is a and W.asanyarray(a) is a
    assert W.asarray([1, 2]).dtype == np.asarray([1, 2]).dtype
    assert W.ascontiguousarray(f).flags.c_contiguous
    assert W.asfortranarray(a).flags.f_contiguous
    assert W.ascontiguousarray(np.float64(2.0)).shape == (1,)
    with pytest.raises(ValueError, match="infs or NaNs"):
        W.asarray_chkfinite([1.0, np.inf])
    assert W.asarray(a, like=a) is a
    M = W.MATH_WRAPPERS
    assert M["exp"](0.0) == 1.0 and M["log"](8.0, 2.0) == 3.0 and M["hypot"](3.0, 4.0) == 5.0
    assert M["isnan"](float("nan")) is True and type(M["exp"](1)) is float


def test_a_binding_made_before_the_transform_still_works_for_r_():
    """`from numpy import r_` made before: NumPy's own object, whose indexing calls the
    array function of its module, which is replaced too."""
    g = dr.grad(lambda x: np.sum(early_r_[x, x ** 2]))(X)
    np.testing.assert_allclose(g, 1 + 2 * X)


def test_r_matrix_builder_reads_the_callers_names():
    def f(x):
        A = np.eye(2)  # noqa: F841 - read by the matrix builder from this frame
        m = np.r_["A, A"]
        assert m.shape == (2, 4)
        return np.sum(x)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        dr.grad(f)(X)


def test_methods_of_traced_values_while_names_are_replaced():
    """x.sum(), x.mean() & co. looked their handlers up as FUNCTION_HANDLERS[np.sum] when
    they ran, which is the wrapper while a transform runs (KeyError): they use the
    functions NumPy had at import."""
    def f(x):
        return (x.sum() + x.mean() + x.max() + x.min() + x.std() + x.var() + x.prod()
                + x.cumsum()[-1] + x.cumprod()[-1])

    x = np.array([0.3, 1.1, 0.7])
    g = dr.grad(f)(x)
    np.testing.assert_allclose(g, so.approx_fprime(x, f, 1e-7), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dr.jacfwd(f)(x), g, rtol=1e-12)


# ------------------------------------------------------------------ who sees the wrappers
SCIPY_FUNCTIONS = {
    # boxcox finds its lambda by an optimiser on the data: with the wrappers visible to
    # SciPy it ran and returned a silently wrong derivative (lambda's dependence lost)
    "stats.boxcox": lambda x: np.sum(scipy.stats.boxcox(x + 1.0)[0]),
    "stats.skew": lambda x: scipy.stats.skew(x),
    "stats.zscore": lambda x: np.sum(scipy.stats.zscore(x) ** 3),
    "signal.detrend": lambda x: np.sum(scipy.signal.detrend(x) ** 2),
    "signal.convolve": lambda x: np.sum(scipy.signal.convolve(x, [1.0, 2.0]) ** 2),
    "fft.fft": lambda x: np.sum(np.abs(scipy.fft.fft(x)) ** 2),
}


@pytest.mark.parametrize("name", sorted(SCIPY_FUNCTIONS))
def test_scipy_functions_give_the_right_derivative_or_a_named_error(name):
    f = SCIPY_FUNCTIONS[name]
    x = np.array([0.3, 1.2, 0.4, 0.8, 0.55, 0.9])
    try:
        g = dr.grad(f)(x)
    except dr.DualrevError:
        return
    fd = so.approx_fprime(x, f, 1e-7)
    np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-5)


def test_a_user_callback_inside_scipy_sees_the_wrappers():
    """The frame that calls np.array is the user's right-hand side, called from SciPy's
    solver: it works (SciPy's documented ODE idiom), against the closed form."""
    def rhs(t, y, k):
        return np.array([-k * y[0], k * y[0] - 0.5 * y[1]])

    def final(y0):
        sol = scipy.integrate.solve_ivp(rhs, (0.0, 1.0), y0, args=(0.7,), rtol=1e-10,
                                        atol=1e-12)
        return sol.y[0, -1]

    g = dr.grad(final)(np.array([1.0, 0.2]))
    np.testing.assert_allclose(g, [math.exp(-0.7), 0.0], rtol=1e-7, atol=1e-12)
