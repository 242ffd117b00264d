"""Plain NumPy buffers that take traced writes (dualrev/buffers.py): ``np.zeros`` and its
kin made in the transformed function, and copies of the arrays it is given but does not
differentiate (or closes over), record the writes of traced values as the buffers of
``np.zeros_like(x)`` do. Each program is checked against its plain NumPy run (values,
dtypes, aliasing), finite differences and closed forms, forward against reverse, the
Hessian and vmap."""

import threading

import numpy as np
import pytest
from numpy import zeros as numpy_zeros  # bound before any transform: NumPy's own

import dualrev as dr
from dualrev.buffers import PlainInput
from dualrev.errors import BatchedValueError
from tests.helpers import check_all

rng = np.random.default_rng(22)
x4 = np.array([0.3, -1.2, 2.0, 0.7])
U0 = np.sin(np.linspace(0.0, np.pi, 12))  # a module global the heat step reads


def g(t):
    return np.sin(t) * t


def dg(t):
    return np.sin(t) + t * np.cos(t)


def d2g(t):
    return 2 * np.cos(t) - t * np.sin(t)


# Each constructor as the user writes it, with the initial values NumPy gives (np.empty's
# are unspecified: every element is written before it is read)
CONSTRUCTORS = {
    "zeros": (lambda x: np.zeros(len(x)), 0.0),
    "empty": (lambda x: np.empty(len(x)), None),
    "ones": (lambda x: np.ones(len(x)), 1.0),
    "full": (lambda x: np.full(len(x), 2.5), 2.5),
    "zeros_like_plain": (lambda x: np.zeros_like(x4), 0.0),
    "empty_like_plain": (lambda x: np.empty_like(x4), None),
    "ones_like_plain": (lambda x: np.ones_like(x4), 1.0),
    "full_like_plain": (lambda x: np.full_like(x4, -1.5), -1.5),
    "copy_plain": (lambda x: np.copy(x4), x4),
    "zeros_like_traced": (lambda x: np.zeros_like(x), 0.0),
    "ones_like_traced": (lambda x: np.ones_like(x), 1.0),
    "empty_like_traced": (lambda x: np.empty_like(x), None),
    "full_like_traced": (lambda x: np.full_like(x, 0.5), 0.5),
}


def filled(make, overwrite):
    def f(x):
        out = make(x)
        for i in range(len(x)):
            if overwrite:
                out[i] = g(x[i])
            else:
                out[i] += g(x[i])
        return out
    return f


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
def test_loop_fill_every_constructor_every_mode(name):
    make, init = CONSTRUCTORS[name]
    overwrite = init is None
    f = filled(make, overwrite)
    base = 0.0 if overwrite else np.broadcast_to(init, x4.shape)
    # NumPy's own run of the same program
    np.testing.assert_allclose(f(x4), base + g(x4), rtol=1e-15)
    want_j = np.diag(dg(x4))
    for jac in (dr.jacfwd, dr.jacrev, dr.jacobian):
        np.testing.assert_allclose(jac(f)(x4), want_j, rtol=1e-13)
    t = rng.standard_normal(4)
    value, tangent = dr.jvp(f, (x4,), (t,))
    assert type(value) is np.ndarray and value.dtype == np.float64
    np.testing.assert_allclose(value, f(x4), rtol=1e-15)
    np.testing.assert_allclose(tangent, dg(x4) * t, rtol=1e-13)
    value, pull = dr.vjp(f, x4)
    np.testing.assert_allclose(pull(t)[0], dg(x4) * t, rtol=1e-13)
    total = lambda x: np.sum(f(x))  # noqa: E731
    np.testing.assert_allclose(dr.grad(total)(x4), dg(x4), rtol=1e-13)
    np.testing.assert_allclose(dr.hessian(total)(x4), np.diag(d2g(x4)), rtol=1e-12,
                               atol=1e-15)
    xs = np.stack([x4, 2 * x4, -x4])
    np.testing.assert_allclose(dr.vmap(f)(xs), np.stack([f(x) for x in xs]), rtol=1e-15)
    np.testing.assert_allclose(dr.vmap(dr.grad(total))(xs), dg(xs), rtol=1e-13)


def test_loop_fill_against_finite_differences():
    check_all(filled(CONSTRUCTORS["zeros"][0], True), (x4,))
    check_all(filled(CONSTRUCTORS["copy_plain"][0], False), (x4,))


def test_two_dimensional_buffers_row_by_row():
    w = np.array([1.0, -2.0, 0.5])

    def rows(x):
        out = np.zeros((len(x), 3))
        for i in range(len(x)):
            out[i, :] = x[i] * w + x[i] ** 2
        out[:, 0] *= 2.0  # an augmented write into a column
        return out

    def cells(x):
        out = np.empty((len(x), 2))
        for i in range(len(x)):
            out[i, 0] = np.exp(x[i])
            out[i][1] = x[i] * x[0]  # through the row view
        return out

    np.testing.assert_allclose(rows(x4)[:, 1], x4 * w[1] + x4 ** 2)
    J = dr.jacfwd(rows)(x4)
    want = np.zeros((4, 3, 4))
    for i in range(4):
        want[i, :, i] = w + 2 * x4[i]
    want[:, 0] *= 2.0
    np.testing.assert_allclose(J, want, rtol=1e-14)
    np.testing.assert_allclose(dr.jacrev(rows)(x4), want, rtol=1e-14)
    check_all(cells, (x4,))
    xs = np.stack([x4, x4[::-1]])
    np.testing.assert_allclose(dr.vmap(cells)(xs), np.stack([cells(x) for x in xs]))


def test_mask_writes_and_slice_accumulation():
    def f(x):
        out = np.zeros(len(x))
        out[x > 0] = x[x > 0] ** 2
        out[1:] += 3.0 * x[:-1]
        out[::2] -= x[::2] * x[0]
        return out

    np.testing.assert_allclose(dr.jvp(f, (x4,), (np.ones(4),))[0], f(x4))
    check_all(f, (x4,))
    xs = np.stack([x4, np.abs(x4)])  # the masks differ per example: same count here
    with pytest.raises(BatchedValueError):
        dr.vmap(f)(xs)  # a batched mask store needs one row or a scalar (design.md)


def test_heat_equation_from_an_argument_a_closure_and_a_global():
    def simulate(alpha, u0, steps=30):
        u = u0.copy()
        for _ in range(steps):
            u[1:-1] += alpha * (u[2:] - 2 * u[1:-1] + u[:-2])
        return np.sum(u ** 2)

    u0 = U0.copy()
    h = 1e-6
    fd = (simulate(0.2 + h, u0) - simulate(0.2 - h, u0)) / (2 * h)
    d = dr.grad(simulate)(0.2, u0)
    np.testing.assert_allclose(d, fd, rtol=1e-7)
    closure = lambda a: simulate(a, u0)  # noqa: E731
    glob = lambda a: simulate(a, U0)  # noqa: E731 -- U0 is a module global
    for fn in (closure, glob):
        np.testing.assert_allclose(dr.grad(fn)(0.2), d, rtol=1e-13)
        np.testing.assert_allclose(dr.jacfwd(fn)(0.2), d, rtol=1e-13)
        np.testing.assert_allclose(dr.jvp(fn, (0.2,), (1.0,))[1], d, rtol=1e-13)
    dd = dr.hessian(simulate)(0.2, u0)
    fd2 = (dr.grad(simulate)(0.2 + h, u0) - dr.grad(simulate)(0.2 - h, u0)) / (2 * h)
    np.testing.assert_allclose(dd, fd2, rtol=1e-6)
    alphas = np.array([0.1, 0.2, 0.3])
    np.testing.assert_allclose(dr.vmap(dr.grad(simulate), in_axes=(0, None))(alphas, u0),
                               [dr.grad(simulate)(a, u0) for a in alphas], rtol=1e-13)
    # the caller's arrays are untouched, and are NumPy's own again afterwards
    np.testing.assert_array_equal(u0, U0)
    assert type(U0) is np.ndarray
    assert [type(c.cell_contents) for c in closure.__closure__] == [type(simulate), np.ndarray]


def test_heat_equation_closed_over_in_a_cell():
    def make(u0):
        def simulate(alpha):
            u = u0.copy()
            for _ in range(10):
                u[1:-1] += alpha * (u[2:] - 2 * u[1:-1] + u[:-2])
            return u
        return simulate

    sim = make(U0)
    J = dr.jacfwd(sim)(0.1)
    np.testing.assert_allclose(J, dr.jacrev(sim)(0.1), rtol=1e-12, atol=1e-15)
    h = 1e-6
    np.testing.assert_allclose(J, (sim(0.1 + h) - sim(0.1 - h)) / (2 * h), rtol=1e-6,
                               atol=1e-10)
    assert type(sim.__closure__[0].cell_contents) is np.ndarray  # restored


def test_plain_inputs_behave_as_numpy():
    seen = {}

    def f(a, u0, idx):
        seen["type"] = type(u0)
        seen["float"] = float(u0[1])  # a plain value converts as in NumPy
        seen["list"] = u0.tolist()
        seen["arith"] = type(u0 * 2.0), type(u0[1:]), type(np.sum(u0))
        seen["idx"] = type(idx)  # integers are left as they are
        u = u0.astype(float)  # a copy: a buffer like u0.copy()
        u[idx] = a * u[idx]
        return np.sum(u)

    u0 = np.array([1.0, 2.0, 3.0])
    idx = np.array([0, 2])
    assert dr.grad(f)(2.0, u0, idx) == 4.0
    assert seen["type"] is PlainInput and seen["float"] == 2.0
    assert seen["list"] == [1.0, 2.0, 3.0]
    assert all(t is np.ndarray for t in seen["arith"][:2]) and seen["idx"] is np.ndarray
    # returned as it is: the caller gets an ndarray
    out = dr.jacfwd(lambda a, u: (a * u, u), has_aux=True)(2.0, u0)
    assert type(out[0]) is np.ndarray and out[1] is u0  # the aux: the caller's array
    value, _ = dr.jvp(lambda a: (a, u0), (2.0,), (1.0,))
    assert value[1] is u0  # as NumPy returns the very array
    assert type(dr.jacrev(lambda a, u: u)(2.0, u0)) is np.ndarray


def test_values_dtypes_and_aliasing_as_numpy():
    def f(x):
        out = np.zeros(4)
        alias = out
        head = out[:2]  # a view: a write through it reaches the buffer, as NumPy's
        head[0] = x[0] * 3.0
        out[3] = x[1]
        kept = out.copy()  # a copy is a copy
        out[2] = x[2] ** 2
        assert alias is out
        return out, kept, out[:2]

    want = f(x4)
    got, tangents = dr.jvp(f, (x4,), (np.ones(4),))
    for v, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(v, w)
        assert v.dtype == w.dtype
    np.testing.assert_allclose(tangents[0], [3.0, 0.0, 2 * x4[2], 1.0])
    np.testing.assert_allclose(tangents[1], [3.0, 0.0, 0.0, 1.0])  # before the last write
    np.testing.assert_allclose(tangents[2], [3.0, 0.0])

    def stale(x):
        out = np.zeros(4)
        head = out[:2]
        out[3] = x[1]
        return head + 1.0  # taken before out[3] was written: refused, never out of date

    with pytest.raises(dr.StaleViewError):
        dr.grad(lambda x: np.sum(stale(x)))(x4)

    def helper_writes(buf, x):  # a callee writing into the caller's buffer
        buf[:] = x ** 2

    def h(x):
        out = np.ones(4)
        helper_writes(out, x)
        return np.sum(out)

    np.testing.assert_allclose(dr.grad(h)(x4), 2 * x4)

    def float32(x):
        out = np.zeros(4, dtype=np.float32)
        out[:] = x
        return out

    value, t = dr.jvp(float32, (x4,), (np.ones(4),))
    assert value.dtype == np.float32 and t.dtype == np.float32


def test_integer_and_boolean_buffers_stay_numpy():
    def f(x):
        mask = np.zeros(len(x), dtype=bool)
        mask[1:] = True
        counts = np.zeros(3, dtype=int)
        counts[1] += 2
        assert type(mask) is np.ndarray and type(counts) is np.ndarray
        return np.sum(x[mask]) * counts[1]

    np.testing.assert_array_equal(dr.grad(f)(x4), [0.0, 2.0, 2.0, 2.0])

    def stores_float(x):
        out = np.zeros(4, dtype=int)
        out[0] = x[2]  # NumPy casts to int: no derivative survives the cast
        return np.sum(out * 1.0) + x[0]

    try:
        d = dr.grad(stores_float)(x4)
    except dr.TracerConversionError as e:  # refused by name
        assert "`out[0] = x[2]`" in str(e) and "integer" in str(e)
    else:  # or cast as NumPy casts, with derivative 0 (int() of a traced value)
        np.testing.assert_array_equal(d, [1.0, 0.0, 0.0, 0.0])


def test_complex_buffer():
    def f(x):
        out = np.zeros(len(x), dtype=complex)
        for i in range(len(x)):
            out[i] = x[i] * 1j + x[i] ** 2
        return np.sum(np.abs(out) ** 2)  # x^2 + x^4 per element

    np.testing.assert_allclose(dr.grad(f)(x4), 2 * x4 + 4 * x4 ** 3, rtol=1e-13)
    np.testing.assert_allclose(dr.jacfwd(f)(x4), 2 * x4 + 4 * x4 ** 3, rtol=1e-13)

    def hol(z):
        out = np.zeros(2, dtype=complex)
        out[0] = z * z
        out[1] = 3.0 * z
        return out

    z = 0.5 + 0.25j
    np.testing.assert_allclose(dr.jacfwd(hol, holomorphic=True)(z), [2 * z, 3.0])


def test_buffer_escaping_the_transform():
    leaked = []

    def f(x):
        out = np.zeros(2)
        out[0] = x[0]
        leaked.append(out)
        return np.sum(out)

    assert dr.grad(f)(x4[:2]).tolist() == [1.0, 0.0]
    with pytest.raises(dr.EscapedTracerError):
        np.sum(leaked[0] * 2.0)
    # an unwritten buffer returned from f comes back as NumPy's array
    value, t = dr.jvp(lambda x: (np.zeros(3), x), (x4,), (x4,))
    assert type(value[0]) is np.ndarray and not value[0].any() and not t[0].any()


def test_buffers_in_nested_transforms():
    def outer(a):
        buf = np.zeros(2)

        def inner(b):
            buf2 = np.zeros(2)
            buf2[0] = a * b
            buf2[1] = b ** 2
            return np.sum(buf2)

        buf[0] = dr.grad(inner)(a)  # a + 2a
        buf[1] = a ** 2
        return np.sum(buf)  # 3a + a^2

    assert dr.grad(outer)(1.5) == pytest.approx(3.0 + 3.0, rel=1e-14)
    assert dr.grad(dr.grad(outer))(1.5) == pytest.approx(2.0, rel=1e-14)

    def write_inner_into_outer(a):
        buf = np.zeros(2)  # a buffer of the outer transform

        def inner(b):
            buf[0] = a * b  # an inner value written into it
            return np.sum(buf) * b

        g_in = dr.grad(inner)(2.0)  # d/db (a b * b) at b = 2: 4a
        return g_in + a

    assert dr.grad(write_inner_into_outer)(0.7) == pytest.approx(5.0, rel=1e-13)


def test_untraced_numpy_is_numpy_outside_and_in_other_threads():
    assert np.zeros is numpy_zeros
    assert type(np.zeros(3)) is np.ndarray
    errors = []
    stop = threading.Event()

    def plain_worker():
        try:
            while not stop.is_set():
                z = np.zeros(5)  # the wrapper may be installed: it gives NumPy's array
                z[0] = 1.0
                c = np.copy(z)
                assert type(z) is np.ndarray and type(c) is np.ndarray and c[0] == 1.0
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    def traced_worker(scale):
        try:
            for _ in range(20):
                f = lambda x: np.sum(filled(CONSTRUCTORS["zeros"][0], True)(x)) * scale  # noqa: E731
                np.testing.assert_allclose(dr.grad(f)(x4), scale * dg(x4), rtol=1e-13)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=plain_worker)]
    threads += [threading.Thread(target=traced_worker, args=(s,)) for s in (1.0, 2.0)]
    for t in threads:
        t.start()
    for t in threads[1:]:
        t.join()
    stop.set()
    threads[0].join()
    assert not errors, errors
    assert np.zeros is numpy_zeros


def test_buffers_reach_numpy_and_scipy():
    import scipy.special as sp

    A = np.array([[3.0, 1.0, 0.0, 0.0], [1.0, 4.0, 1.0, 0.0], [0.0, 1.0, 5.0, 1.0],
                  [0.0, 0.0, 1.0, 6.0]])

    def f(x):
        y = np.zeros(len(x))
        y[:] = x ** 2
        return np.sum(np.linalg.solve(A, sp.expit(y)))

    check_all(f, (x4,), order=1)


def test_ode_right_hand_side_with_a_buffer():
    from scipy.integrate import solve_ivp

    def rhs(t, y, k):
        dy = np.zeros(2)  # plain in SciPy's own solve, a buffer in the variational one
        dy[0] = y[1]
        dy[1] = -k * y[0]
        return dy

    def end(k):
        sol = solve_ivp(rhs, (0.0, 1.0), np.array([1.0, 0.0]), args=(k,), rtol=1e-10,
                        atol=1e-12)
        return sol.y[0, -1]  # cos(sqrt(k) t) at t = 1

    k = 2.0
    want = -np.sin(np.sqrt(k)) / (2 * np.sqrt(k))
    np.testing.assert_allclose(end(k), np.cos(np.sqrt(k)), rtol=1e-8)
    np.testing.assert_allclose(dr.grad(end)(k), want, rtol=1e-6)
    np.testing.assert_allclose(dr.jacfwd(end)(k), want, rtol=1e-6)


def test_a_buffer_without_a_derivative_converts_as_numpy():
    def f(x):
        hist = np.zeros(3)
        hist[1] += 2.0
        assert int(hist[1]) == 2 and float(np.sum(hist)) == 2.0  # no derivative: plain
        assert hist.tolist() == [0.0, 2.0, 0.0]
        # (np.asarray of an array is the array itself, as in NumPy: the buffer)
        assert np.asarray(hist) is hist
        steps = range(int(hist.max()))  # bookkeeping as in NumPy
        hist[0] = x[0]
        with pytest.raises(dr.TracerConversionError):
            float(hist[2])  # the buffer now carries a derivative: refused as a whole
        return sum(hist[0] * x[1] for _ in steps)

    for t in (dr.grad, dr.jacfwd, dr.jacrev):
        np.testing.assert_allclose(t(f)(x4), [2 * x4[1], 2 * x4[0], 0.0, 0.0])
    np.testing.assert_allclose(dr.hessian(f)(x4)[:2, :2], [[0.0, 2.0], [2.0, 0.0]])


def test_constructors_called_from_c_or_by_another_name_stay_numpy():
    def f(x):
        # NumPy's Generator calls np.empty from Cython: that array must stay NumPy's
        noise = np.random.default_rng(0).random(4)
        make = np.zeros
        other = make(4)  # not spelled as a constructor call: NumPy's array
        assert type(noise) is np.ndarray and type(other) is np.ndarray
        return np.sum(x * noise)

    np.testing.assert_allclose(dr.grad(f)(x4), np.random.default_rng(0).random(4))
    np.testing.assert_allclose(dr.vmap(dr.grad(f))(np.stack([x4, x4])),
                               np.stack([np.random.default_rng(0).random(4)] * 2))


def test_what_stays_plain_is_refused_with_the_rewrite():
    def arithmetic_copy(alpha, u0):
        u = u0 + 0.0  # a new plain array: not a buffer dualrev traces
        u[1:-1] += alpha * u[2:]
        return np.sum(u)

    with pytest.raises(dr.InPlaceError, match=r"copies \(u0.copy\(\), u0.astype\(float\)\)"):
        dr.grad(arithmetic_copy)(0.1, U0)

    def bound_before(x):
        out = numpy_zeros(2)
        out[0] = x[0]
        return np.sum(out)

    with pytest.raises(dr.PlainBufferError, match="`from numpy import zeros`"):
        dr.jacfwd(bound_before)(x4)


def test_drawn_functions_take_buffers():
    def simulate(alpha, u0):
        u = u0.copy()
        out = np.zeros(2)
        for _ in range(3):
            u[1:-1] += alpha * (u[2:] - 2 * u[1:-1] + u[:-2])
        out[0] = np.sum(u ** 2)
        return np.sum(out)

    g = dr.graph(simulate)(0.2, U0)
    np.testing.assert_allclose(g.inputs[0].grad, dr.grad(simulate)(0.2, U0), rtol=1e-13)


def test_finished_transforms_are_forgotten():
    from dualrev import tracer

    _, pull = dr.vjp(lambda x: np.sin(x) * 2.0, x4)
    # the thread's running traces hold no finished tape (a vjp's lives with its pullback)
    assert getattr(tracer._running, "traces", []) == []
    assert tracer.innermost_running() is None
    np.testing.assert_allclose(pull(np.ones(4))[0], 2.0 * np.cos(x4))


# ------------------------------------------- one argument differentiated, a copy of another written

def _laplacian(k, u0):
    return k * (u0[2:] - 2 * u0[1:-1] + u0[:-2])


def _step_into(copy):
    def step(k, u0):
        u = copy(k, u0)
        u[1:-1] += _laplacian(k, u0)
        return u
    return step


#: the spellings of "u is a copy of the argument u0" that take traced writes (docs/users.md,
#: "Writing into a copy of an argument")
COPIES = {
    "u0.copy()": lambda k, u0: u0.copy(),
    "np.copy(u0)": lambda k, u0: np.copy(u0),
    "u0.astype(float)": lambda k, u0: u0.astype(float),
    "np.empty_like(u0); u[:] = u0": lambda k, u0: _filled(np.empty_like(u0), u0),
    "u0 + 0 * k": lambda k, u0: u0 + 0 * k,
}


def _filled(u, u0):
    u[:] = u0
    return u


@pytest.mark.parametrize("name", COPIES)
def test_a_copy_of_an_argument_takes_the_writes_of_another(name):
    """dr.jacobian(step)(k, u0), k differentiated and u0 not: the derivative is the
    Laplacian in the interior and 0 at the ends, by every transform (finite differences,
    forward against reverse), and the caller's u0 is unchanged."""
    step, u0 = _step_into(COPIES[name]), U0.copy()
    fd = (step(0.1 + 1e-6, U0.copy()) - step(0.1 - 1e-6, U0.copy())) / 2e-6
    expected = np.concatenate([[0.0], U0[2:] - 2 * U0[1:-1] + U0[:-2], [0.0]])
    np.testing.assert_allclose(fd, expected, atol=1e-8)
    for transform in (dr.jacobian, dr.jacfwd, dr.jacrev):
        np.testing.assert_allclose(transform(step)(0.1, u0), expected, rtol=1e-14,
                                   atol=1e-15)
    np.testing.assert_array_equal(u0, U0)
    du0 = np.eye(12)  # and in the other argument: I + k * the interior's stencil
    for i in range(1, 11):
        du0[i, i - 1:i + 2] += 0.1 * np.array([1.0, -2.0, 1.0])
    np.testing.assert_allclose(dr.jacobian(step, argnums=1)(0.1, u0), du0, atol=1e-15)
    functional = dr.jacobian(lambda k, u0: dr.at(u0)[1:-1].add(_laplacian(k, u0)))
    np.testing.assert_allclose(functional(0.1, u0), expected, rtol=1e-14, atol=1e-15)


#: what NumPy makes a new plain array of, or the argument itself: refused, naming the copy
NOT_COPIES = {
    "np.array(u0)": lambda k, u0: np.array(u0),
    "np.asarray(u0)": lambda k, u0: np.asarray(u0),
    "u0 + 0": lambda k, u0: u0 + 0,
    "u0[:]": lambda k, u0: u0[:],
}


@pytest.mark.parametrize("name", NOT_COPIES)
def test_a_plain_copy_is_refused_with_the_rewrite(name):
    with pytest.raises(dr.InPlaceError) as info:
        dr.jacobian(_step_into(NOT_COPIES[name]))(0.1, U0.copy())
    msg = str(info.value)
    assert "`u[1:-1] += _laplacian(k, u0)` writes a traced value into the plain NumPy " \
           "array `u`" in msg, msg
    assert "u = u0.copy() for a copy of an array the function was given" in msg, msg
    assert "np.array(u0)" in msg and "test_buffers.py" in msg, msg


def test_a_write_into_the_argument_itself_says_to_copy_it():
    """In NumPy the write would change the caller's array: the copy is the rewrite (and a
    differentiated argument, a traced copy, takes the write)."""
    def step(k, u0):
        u0[1:-1] += _laplacian(k, u0)
        return u0

    u0 = U0.copy()
    with pytest.raises(dr.InPlaceError) as info:
        dr.jacobian(step)(0.1, u0)
    msg = str(info.value)
    assert "`u0` is an argument of step() that is not differentiated" in msg, msg
    assert "write into a copy, `u = u0.copy()`" in msg, msg
    np.testing.assert_array_equal(u0, U0)
    J = dr.jacobian(step, argnums=(0, 1))(0.1, u0)   # both differentiated: recorded
    np.testing.assert_allclose(J[0], dr.jacobian(_step_into(COPIES["u0.copy()"]))(0.1, u0))
    np.testing.assert_array_equal(u0, U0)


def test_a_helpers_argument_gets_the_buffer_advice():
    """A helper writing into the array its caller gave it: the caller's buffer is what to
    change (the copy-the-argument advice is for the transformed function's own arguments)."""
    def update(buf, t):
        buf[1:] += t
        return buf

    def f(k, u0):
        return update(np.array(u0), k)

    with pytest.raises(dr.InPlaceError) as info:
        dr.grad(lambda k: np.sum(f(k, U0)))(0.1)
    msg = str(info.value)
    assert "`buf[1:] += t` writes a traced value into the plain NumPy array `buf`" in msg, msg
    assert "is an argument of" not in msg and "buf = u0.copy()" in msg, msg
