"""In-place writes into traced arrays: recorded as functional updates, the object rebound
(dualrev/inplace.py). Values match NumPy's; derivatives match finite differences and
forward matches reverse; what cannot be made exact raises."""

import copy as copymod
import operator
import pickle
import warnings

import numpy as np
import pytest
from numpy import zeros as numpy_zeros  # bound before any transform: NumPy's own

import dualrev as dr
from dualrev.errors import BatchedValueError

x4 = np.array([0.3, -1.2, 2.0, 0.7])


def fd_jac(f, x, eps=1e-6):
    """Central differences of f (array -> array) at x."""
    cols = []
    for e in np.eye(x.size):
        e = e.reshape(x.shape)
        cols.append((np.asarray(f(x + eps * e)) - np.asarray(f(x - eps * e))) / (2 * eps))
    return np.stack(cols, axis=-1)


def check(f, x, rtol=1e-6, atol=1e-7):
    """f's value as in NumPy, its Jacobian by jacfwd and jacrev against differences."""
    xc = x.copy()
    plain = f(x.copy())
    jf, jr = dr.jacfwd(f)(x), dr.jacrev(f)(x)
    np.testing.assert_array_equal(x, xc)  # the caller's array is never written
    np.testing.assert_allclose(jf, jr, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(jr, fd_jac(f, x), rtol=rtol, atol=atol)
    return plain


def heat(u, steps=5, dt=0.1):
    for _ in range(steps):
        u[1:-1] += dt * (u[2:] - 2 * u[1:-1] + u[:-2])
        u[0] = 0.0
        u[-1] = 0.0
    return u


def test_heat_equation_steps():
    x = np.linspace(0.0, 1.0, 9) ** 2
    out = check(lambda u: heat(u) * 1.0, x)
    np.testing.assert_allclose(out, heat(x.copy()))
    g = dr.grad(lambda u: np.sum(heat(u) ** 2))(x)
    np.testing.assert_allclose(g, fd_jac(lambda u: np.sum(heat(u) ** 2), x), rtol=1e-6)


def test_boundary_write_into_the_input():
    def f(x):
        x[0] = 0.0
        x[2] = x[1] * 3.0
        return np.sum(x ** 2)

    g = dr.grad(f)(x4)
    np.testing.assert_allclose(g, [0.0, 2 * x4[1] + 18 * x4[1], 0.0, 2 * x4[3]])
    np.testing.assert_array_equal(x4, [0.3, -1.2, 2.0, 0.7])


@pytest.mark.parametrize("op", [operator.iadd, operator.isub, operator.imul,
                                operator.itruediv, operator.ipow])
def test_augmented_assignment_mutates_aliases(op):
    def f(x):
        y = x
        z = x.copy()  # a copy does not see the write
        op(y, 1.5)  # y op= 1.5 (the result is y itself)
        return x + 0.5 * z

    xs = np.abs(x4) + 0.5
    np.testing.assert_allclose(check(f, xs), f(xs.copy()))
    np.testing.assert_allclose(f(xs.copy()), op(xs.copy(), 1.5) + 0.5 * xs)


def test_matmul_and_integer_operators():
    a = np.array([[1.0, 2.0], [0.5, -1.0]])
    check(lambda x: _imatmul(x.reshape(2, 2) * 1.0, a), x4)

    def f(x):
        k = np.zeros_like(x, dtype=np.int64)
        k += 3
        k //= 2
        k %= 5
        return x * k
    np.testing.assert_allclose(dr.jacfwd(f)(x4), np.eye(4))


def _imatmul(m, a):
    m @= a
    return m


def test_getitem_iadd_counts_once():
    def f(x):
        x[1:3] += 1.0
        x[0] *= 2.0
        return x

    np.testing.assert_allclose(check(f, x4), [0.6, -0.2, 3.0, 0.7])

    counts = []

    def g(x):
        n = len(x._trace.nodes)
        x[1:3] += 1.0
        counts.append(len(x._trace.nodes) - n)
        return np.sum(x)

    dr.grad(g)(x4)
    # the view x[1:3], the sum, and one write (one "set" entry): the store Python makes
    # after the in-place add writes nothing more
    assert counts == [3]


def test_fill_and_sort():
    def f(x):
        y = x * 1.0
        y.sort()
        z = x * 2.0
        z.fill(x[0])
        return y + z

    check(f, x4)
    np.testing.assert_allclose(f(x4.copy()), np.sort(x4) + x4[0])


def test_write_into_a_basic_view_writes_the_base():
    def f(x):
        row = x[1:]
        row[0] = 5.0 * x[0]  # u[1:][0] = v is u[1] = v
        row[1:] *= 2.0  # a view of the view: through both
        return x * row.sum()

    plain = check(f, x4)
    np.testing.assert_allclose(plain, f(x4.copy()))

    def f2(x):
        x[1:][2] = 1.0
        return x * 1.0

    np.testing.assert_allclose(check(f2, x4), f2(x4.copy()))

    def g(x):
        m = x.reshape(2, 2) * 1.0
        r = m[1]
        r *= 3.0  # a row of a matrix: a view
        return m

    np.testing.assert_allclose(check(g, x4), g(x4.copy()))


def test_stale_view_raises():
    def f(x):
        a = x[1:]
        x[1] = 5.0
        return a.sum()  # NumPy's a would show the write

    for t in (dr.grad, dr.jacfwd):
        with pytest.raises(dr.StaleViewError, match=r"view x\[1:\] taken before x\[1\]"):
            t(f)(x4)

    def g(x):
        t = x.reshape(2, 2).T
        x[0] = 1.0
        return t[0, 0] * 1.0

    with pytest.raises(dr.StaleViewError, match="transpose"):
        dr.grad(g)(x4)

    def h(x):
        a = x[:2]
        b = a[1:]  # a view of a view
        x[0] = 1.0
        return b * 1.0

    with pytest.raises(dr.StaleViewError):
        dr.jacrev(h)(x4)


def test_views_taken_after_the_write_and_copies_are_fine():
    def f(x):
        old = x[1:].copy()
        x[1] = 5.0
        new = x[1:]
        return old + new

    np.testing.assert_allclose(check(f, x4), f(x4.copy()))


def test_write_through_reshape_view_refused():
    def f(x):
        m = x.reshape(2, 2)
        m[0, 0] = 1.0
        return x

    with pytest.raises(dr.InPlaceError, match="reshape"):
        dr.jacrev(f)(x4)


def test_writing_traced_values_into_a_zeros_like_buffer():
    def f(x):
        out = np.zeros_like(x, shape=(3,) + x.shape)
        out[0] = x
        out[1] = np.sin(x)
        out[2, 1:] = out[1, :-1] * x[0]
        return out

    check(f, x4)
    np.testing.assert_allclose(dr.vmap(f)(np.stack([x4, 2 * x4])),
                               np.stack([f(x4.copy()), f(2 * x4)]))


def test_vmap_batched_and_unbatched_writes():
    def f(x, c):
        buf = np.ones_like(x)
        buf[0] = c  # unbatched into batched
        y = np.full_like(x, 2.0)
        y[1:] = x[:-1]
        return buf * y

    xs = np.stack([x4, x4 + 1.0])
    out = dr.vmap(f, in_axes=(0, None))(xs, 3.0)
    np.testing.assert_allclose(out, np.stack([f(x.copy(), 3.0) for x in xs]))

    def g(c, x):
        out = np.zeros_like(x)
        out[2] = c  # batched written into a buffer of an unbatched value
        return out

    # zeros_like of the unmapped plain x: a buffer of vmap's trace (dualrev/buffers.py)
    out = dr.vmap(g, in_axes=(0, None))(np.array([1.0, 2.0]), x4)
    np.testing.assert_allclose(out, [[0, 0, 1, 0], [0, 0, 2, 0]])
    # a buffer batched like c: zeros_like of a value made from both
    out = dr.vmap(lambda c, x: g(c, x + 0 * c), in_axes=(0, None))(np.array([1.0, 2.0]), x4)
    np.testing.assert_allclose(out, [[0, 0, 1, 0], [0, 0, 2, 0]])
    jac = dr.vmap(dr.jacfwd(lambda x: heat(x * 1.0, 2)))(xs)
    np.testing.assert_allclose(jac[1], dr.jacrev(lambda x: heat(x * 1.0, 2))(xs[1]))


def test_hessian_of_a_function_that_writes():
    def f(x):
        x[0] = x[1] * x[2]
        x *= x
        return np.sum(x ** 2)

    h = dr.hessian(f)(x4)
    fd = fd_jac(dr.grad(f), x4)
    np.testing.assert_allclose(h, fd, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h, h.T, rtol=1e-12)


def test_write_into_outer_buffer_from_inner_transform():
    def outer(c):
        buf = np.zeros_like(c, shape=(2,))

        def inner(y):
            buf[0] = y * c
            return buf[0] ** 2
        return dr.grad(inner)(c)  # d/dy (y c)^2 at y = c: 2 c^3

    np.testing.assert_allclose(dr.grad(outer)(1.5), 6 * 1.5 ** 2)


def test_escaped_traced_value_cannot_be_written():
    kept = []

    def f(x):
        kept.append(x * 1.0)
        return np.sum(x)

    dr.grad(f)(x4)
    with pytest.raises(dr.EscapedTracerError):
        kept[0][0] = 1.0
    with pytest.raises(dr.EscapedTracerError):
        kept[0] *= 2.0


def test_dtypes_as_numpy():
    def f(x):
        y = x * 1.0
        y[0] = x[1] * (1.0 + 2.0j)  # NumPy: ComplexWarning, the real part
        return y

    with pytest.warns(np.exceptions.ComplexWarning):
        np.testing.assert_allclose(dr.jacfwd(f)(x4)[0], [0, 1, 0, 0])

    def g(x):
        y = x * 1.0
        y += 1j
        return y

    with pytest.raises(TypeError, match="Cannot cast"):
        dr.grad(lambda x: np.sum(g(x)))(x4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f32 = dr.jacfwd(lambda x: _set0(x.astype(np.float32), x[1]))(x4)
    assert f32.dtype == np.float32


def _set0(y, v):
    y[0] = v
    return y


def test_plain_buffer_write_says_what_to_write():
    def f(x):
        out = numpy_zeros(4)  # NumPy's own (np.zeros made in f is traced: test_buffers)
        out[1] = x[0]
        return np.sum(out)

    # NumPy wraps the failed scalar store in a ValueError; the transform raises its
    # cause, dualrev's error, which names the statement and the buffer
    with pytest.raises(dr.PlainBufferError) as info:
        dr.grad(f)(x4)
    err = str(info.value)
    assert "`out[1] = x[0]` writes a traced value into the plain NumPy array `out`" in err
    assert "`from numpy import zeros`" in err and "np.stack" in err


def test_rk4_trajectory_jacobians():
    def rhs(y, k):
        return np.stack([y[1], -k * np.sin(y[0]) - 0.1 * y[1]])

    def traj(y0, k, n=20, h=0.05):
        out = np.zeros_like(y0, shape=(n + 1, 2))
        out[0] = y0
        for i in range(n):
            y = out[i]
            a = rhs(y, k)
            b = rhs(y + h / 2 * a, k)
            c = rhs(y + h / 2 * b, k)
            d = rhs(y + h * c, k)
            out[i + 1] = y + h / 6 * (a + 2 * b + 2 * c + d)
        return out

    y0 = np.array([1.0, 0.0])
    final = lambda y: traj(y, 2.0)[-1]  # noqa: E731
    np.testing.assert_allclose(dr.jacrev(final)(y0), fd_jac(final, y0), rtol=1e-6)
    np.testing.assert_allclose(dr.jacfwd(final)(y0), dr.jacrev(final)(y0), rtol=1e-12)
    # a parameter: the buffer is made traced from k (y0 plain)
    by_k = lambda k: traj(y0 + 0 * k, k)[-1]  # noqa: E731
    fd = (by_k(2.0 + 1e-6) - by_k(2.0 - 1e-6)) / 2e-6
    np.testing.assert_allclose(dr.jacfwd(by_k)(2.0), fd, rtol=1e-6)
    np.testing.assert_allclose(dr.jacrev(by_k)(2.0), fd, rtol=1e-6)


def test_tape_released_after_backward():
    refs = []

    def f(x):
        u = x * 1.0
        for _ in range(200):
            u[1:-1] += 0.1 * (u[2:] - 2 * u[1:-1] + u[:-2])
        refs.append(u._trace)
        return np.sum(u)

    dr.grad(f)(np.linspace(0, 1, 50))
    assert not refs[0].nodes  # released by the backward pass


def test_ufunc_out_and_add_at_into_traced_arrays():
    def f(x):
        y = x * 1.0
        np.multiply(y, x, out=y)
        np.sin(y, out=y)
        np.add.at(y, [0, 0, 2], x[:3])
        return y

    np.testing.assert_allclose(check(f, x4), f(x4.copy()))

    def g(x):
        np.multiply(x, 2.0, out=numpy_zeros(4))  # NumPy's own array as out: refused

    with pytest.raises(dr.InPlaceError, match="plain NumPy array"):
        dr.grad(g)(x4)


def test_astype_copy_keyword_decides_aliasing_as_numpy():
    def f(x, copy, fn):
        y = fn(x, copy)
        y[0] = 10.0 * x[1]  # a write into y: into x too exactly when NumPy aliases them
        return x * 1.0

    for fn in (lambda x, c: x.astype(np.float64, copy=c),
               lambda x, c: np.astype(x, np.float64, copy=c)):
        for copy in (True, False):
            want = f(x4.copy(), copy, fn)
            np.testing.assert_allclose(dr.jacfwd(lambda x, c=copy, g=fn: f(x, c, g))(x4)[0],
                                       [0.0, 10.0, 0.0, 0.0] if not copy
                                       else [1.0, 0.0, 0.0, 0.0])
            mapped = dr.vmap(lambda x, c=copy, g=fn: f(x, c, g))(x4[None])
            np.testing.assert_allclose(mapped, [want])


# ------------------------------------------------------------------ identity and aliasing
def same_as_numpy(f, x, rtol=1e-6, atol=1e-7):
    """f(x, seen) run on NumPy and traced (jacfwd, jacrev, vmap): the same values, the
    same identities noted in ``seen`` (``seen.append(a is b)``), Jacobians agreeing with
    each other and with differences."""
    plain_seen, traced_seen = [], []
    want = f(x.copy(), plain_seen)
    got = check(lambda x: f(x, traced_seen) * 1.0, x, rtol, atol)
    np.testing.assert_allclose(got, want)
    n = len(plain_seen)
    assert traced_seen[:n] == plain_seen and traced_seen[n:2 * n] == plain_seen
    np.testing.assert_allclose(dr.vmap(lambda x: f(x, []) * 1.0)(np.stack([x, 2 * x])),
                               [want, f(2 * x, [])])
    return want


def test_flatten_and_copies_never_write_into_the_array():
    def via(make):
        def f(x, seen):
            y = make(x)
            seen.append(y is x)
            y *= 3.0  # NumPy: a copy, so x is unchanged
            return x + y
        return f

    for make in (lambda v: v.flatten(), lambda v: v.copy(), np.copy, lambda v: +v,
                 lambda v: v.astype(np.float64), lambda v: np.positive(v), np.conj,
                 lambda v: np.concatenate([v]), lambda v: np.sum(v, axis=()),
                 lambda v: v.reshape(2, 2).flatten().reshape(4), copymod.copy, copymod.deepcopy):
        same_as_numpy(via(make), x4)


def test_view_functions_return_new_view_objects_as_numpy():
    # NumPy returns a new view object (never the array) from these even when nothing
    # moves; a write through the view reaches the array
    def via(make):
        def f(x, seen):
            y = make(x)
            seen.append(y is x)
            y[1] = 7.0 * x[0]
            return x * 1.0
        return f

    for make in (np.ravel, lambda v: v.ravel(), lambda v: v.reshape(4), np.transpose,
                 lambda v: v.T, lambda v: np.moveaxis(v, 0, 0), lambda v: v.view(),
                 lambda v: np.swapaxes(v, 0, 0)):
        out = same_as_numpy(via(make), x4)
        assert out[1] == 7.0 * x4[0]
    # and those NumPy answers with the array itself
    for make in (np.squeeze, np.atleast_1d, np.real, lambda v: v.conj(),
                 lambda v: v.conjugate(), lambda v: v.astype(np.float64, copy=False)):
        same_as_numpy(via(make), x4)
    # NumPy's broadcast_to view is read-only: a write through it is refused here too
    assert not np.broadcast_to(x4, x4.shape).flags.writeable
    with pytest.raises(dr.InPlaceError, match=r"np\.broadcast_to"):
        dr.jacfwd(via(lambda v: np.broadcast_to(v, v.shape)))(x4, [])


def test_deepcopy_keeps_the_derivative():
    g = dr.grad(lambda v: np.sum(copymod.deepcopy(v) ** 2))(x4)
    np.testing.assert_allclose(g, 2 * x4)
    val, g = dr.value_and_grad(lambda v: np.sum(copymod.copy(v) ** 3))(x4)
    assert type(val) is np.float64 and type(g) is np.ndarray
    np.testing.assert_allclose(val, np.sum(x4 ** 3))
    np.testing.assert_allclose(g, 3 * x4 ** 2)
    h = dr.hessian(lambda v: np.sum(copymod.deepcopy(v) ** 3))(x4)
    np.testing.assert_allclose(h, np.diag(6 * x4))


def test_pickling_a_traced_value_is_refused():
    with pytest.raises(dr.TracerConversionError, match="cannot be pickled"):
        dr.grad(lambda v: np.sum(pickle.loads(pickle.dumps(v))))(x4)


def test_einsum_views_as_numpy():
    A = np.arange(9.0).reshape(3, 3) / 7

    def diag_read(A):
        return np.einsum("ii->i", A) ** 2

    np.testing.assert_allclose(dr.jacrev(diag_read)(A), dr.jacfwd(diag_read)(A))
    assert np.shares_memory(np.einsum("ii->i", A), A)  # NumPy: a view, writeable
    for spec in ("ii->i", "ij->ji"):
        def write_through(A, spec=spec):
            d = np.einsum(spec, A)
            d[0] = 5.0
            return np.sum(A)

        with pytest.raises(dr.InPlaceError, match=r"np\.einsum"):
            dr.grad(write_through)(A)

        def stale(A, spec=spec):
            d = np.einsum(spec, A)
            A[0, 0] = 2.0  # NumPy's d would show this
            return np.sum(d)

        with pytest.raises(dr.StaleViewError, match=r"np\.einsum"):
            dr.grad(stale)(A)
    # a summed einsum is a new array: writes into it are its own
    def summed(A):
        r = np.einsum("ij->i", A)
        r[0] = 0.0
        A[1, 1] = 3.0
        return np.sum(r) + np.sum(A)

    np.testing.assert_allclose(dr.grad(summed)(A), [[1, 1, 1], [2, 1, 2], [2, 2, 2]])


@pytest.mark.parametrize("make", [lambda A: np.split(A, 3), np.flip,
                                  lambda A: getattr(np, "unstack", tuple)(A),
                                  np.matrix_transpose, lambda A: np.array_split(A, 2, axis=1),
                                  lambda A: np.rot90(A)])
def test_write_after_view_functions(make):
    # (np.unstack is NumPy >= 2.1; before, iterating over the rows makes the same views)
    A = np.arange(9.0).reshape(3, 3) / 7

    def unused(a):
        A = a.reshape(3, 3) * 1.0
        make(A)
        A[0, 0] = 2 * A[0, 0]
        return A.ravel()

    np.testing.assert_allclose(check(unused, A.ravel()), unused(A.ravel()))

    def used(A):
        v = make(A)
        A[0, 0] = 2.0
        return np.sum(v[0])

    with pytest.raises(dr.StaleViewError):
        dr.grad(used)(A)


def test_fancy_and_mask_stores_of_a_view_of_the_same_array():
    def fancy(y, seen):
        y = y * 1.0
        y[[0, 2]] = y[1:3]
        return y

    def mask(y, seen):
        y = y * 1.0
        y[y > 0.6] = y[:1]
        return y

    for f in (fancy, mask):
        out = check(lambda y, f=f: f(y, None), np.array([0.5, 0.7, 0.9]))
        np.testing.assert_allclose(out, f(np.array([0.5, 0.7, 0.9]), None))
    np.testing.assert_allclose(dr.jacrev(lambda y: fancy(y, None))(np.array([0.5, 0.7, 0.9])),
                               [[0, 1, 0], [0, 1, 0], [0, 0, 1]])


def test_ndarray_view_put_partition_flat():
    x6 = np.array([0.3, -1.2, 2.0, 0.7, 1.5, 0.1])

    def view(x, seen):
        y = x * 1.0
        w = y.view()
        seen.append(w is y)
        w[1] = 5 * x[0]  # a view: y shows it
        return y + w

    def put(x, seen):
        y = x * 1.0
        y.put([0, 4], x[2:3] * 2)
        np.put(y, [-1, 9], x[:2], mode="wrap")
        y.put([7, -9], x[3:5], mode="clip")
        return y

    def partition(x, seen):
        y = x * 1.0
        y.partition(2)
        return y

    def flat(x, seen):
        y = x.reshape(2, 3) * 1.0
        y.flat[[0, 4]] = x[5]
        y.flat[1:3] = x[:3]  # cut to two values, as NumPy does
        z = y.flat[1:3]  # a copy
        z[0] = 100.0
        seen.append(len(y.flat) == 6)
        return (y + np.sum(z) + sum(v for v in y.flat)).ravel()

    def flat_set(x, seen):
        y = x.reshape(2, 3) * 1.0
        y.flat = x[:4]  # cycled
        return y.ravel()

    for f in (view, put, partition, flat, flat_set):
        same_as_numpy(f, x6)
    with pytest.raises(IndexError, match="out of bounds"):
        dr.grad(lambda x: np.sum(x.put([6], 1.0) or x))(x6)
    with pytest.raises(dr.InPlaceError, match=r"x\.resize.*np\.pad"):
        dr.grad(lambda x: np.sum(x.resize((8,)) or x))(x6)
    with pytest.raises(dr.NoDerivativeRule, match="another dtype"):
        dr.grad(lambda x: np.sum(x.view(np.int64)))(x6)


# ------------------------------------------------------------------ memory of buffer writes
def history_loop(nt, nx):
    def step(u):
        return u + 0.1 * (np.roll(u, 1) - 2.0 * u + np.roll(u, -1)) - 0.01 * u ** 3

    def f(u0):
        u = u0
        history = np.zeros_like(u, shape=(nt + 1, nx))
        history[0] = u
        for n in range(nt):
            u = step(u)
            history[n + 1] = u
        return np.sum(history ** 2) + np.sum(history[:, 1] * history[:, -1])
    return f


def test_buffer_writes_derivatives():
    f = history_loop(6, 5)
    u0 = np.linspace(0.2, 1.0, 5)
    g = dr.grad(f)(u0)
    np.testing.assert_allclose(g, fd_jac(lambda u: np.array([f(u)]), u0)[0], rtol=1e-6)
    np.testing.assert_allclose(dr.jacfwd(f)(u0), g, rtol=1e-12)
    t = np.cos(np.arange(5.0))
    np.testing.assert_allclose(dr.jvp(f, (u0,), (t,))[1], g @ t, rtol=1e-12)
    np.testing.assert_allclose(dr.jacobian(f)(u0), g, rtol=1e-12)
    h = dr.hessian(f)(u0)
    np.testing.assert_allclose(h, fd_jac(dr.grad(f), u0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(h, dr.jacfwd(dr.jacfwd(f))(u0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dr.vmap(dr.grad(f))(np.stack([u0, 2 * u0])),
                               [g, dr.grad(f)(2 * u0)], rtol=1e-12)
    # the caller's cotangent is never cleared in place by the backward pass
    out, pull = dr.vjp(_hist, u0)
    ct = np.ones_like(out)
    first = pull(ct)[0]
    np.testing.assert_array_equal(ct, 1.0)
    np.testing.assert_allclose(first, 1.5 + 1.5 ** 2 + 1.5 ** 3)
    np.testing.assert_allclose(pull(ct)[0], first)


def _hist(u):
    h = np.zeros_like(u, shape=(3, u.size))
    for n in range(3):
        u = u * 1.5
        h[n] = u
    return h


def test_buffer_writes_keep_only_what_they_write():
    """Each write keeps nothing of the buffer's size on the tape: the tape's arrays grow
    by a few rows per step, not by a buffer per step (quadratic before 2026-12-06)."""
    from dualrev.reverse import Tape
    from dualrev.tracer import new_level

    def kept_bytes(nt, nx):
        tape = Tape(new_level())
        u0 = tape.input(np.linspace(0.0, 1.0, nx))
        history_loop(nt, nx)(u0)
        tape.finish()
        sizes = [sum(p.nbytes for p in (*node.kept, node.out) if type(p) is np.ndarray)
                 for node in tape.nodes if node.prim is not None]
        big = [s for s in sizes if s >= (nt + 1) * nx * 8 / 4]
        return sum(sizes), len(big)

    nx = 50
    total_a, big_a = kept_bytes(20, nx)
    total_b, big_b = kept_bytes(80, nx)
    # only history ** 2 at the end keeps the buffer, whatever the number of writes
    assert big_a == big_b == 1
    per_step = (total_b - total_a) / 60
    assert per_step < 12 * nx * 8  # a few rows per step (the step's own intermediates)


def test_buffer_written_in_place_only_when_nothing_else_holds_it():
    # the buffer's value is written in place when only the traced object holds it; a
    # copy, a recorded product reading it, a value returned earlier keep their values
    def f(x):
        b = np.zeros_like(x, shape=(4,))
        b[0] = x[0]
        snap = b.copy()
        b[1] = x[1] * 2.0
        prod = b * x[::-1]  # the tape keeps b's value for x's cotangent
        b[2] = x[2] ** 2
        b[3] = x[1]
        return np.concatenate([snap, prod, b])

    xs = np.array([0.3, -0.7, 1.1, 0.4])
    out = check(f, xs)
    np.testing.assert_allclose(out, [0.3, 0, 0, 0, 0.3 * 0.4, -1.4 * 1.1, 0, 0,
                                     0.3, -1.4, 1.21, -0.7])
    np.testing.assert_allclose(dr.jacobian(f)(xs), dr.jacfwd(f)(xs), rtol=1e-12)
    t = np.array([0.5, -1.0, 2.0, 0.25])
    np.testing.assert_allclose(dr.jvp(f, (xs,), (t,))[1], dr.jacfwd(f)(xs) @ t, rtol=1e-12)
    np.testing.assert_allclose(dr.hessian(lambda x: np.sum(f(x) ** 2))(xs),
                               dr.jacfwd(dr.jacfwd(lambda x: np.sum(f(x) ** 2)))(xs),
                               rtol=1e-10, atol=1e-12)


def test_cotangent_cleared_in_place_only_when_the_pass_owns_it():
    # a custom_vjp rule hands the same array to two arguments, each the result of a
    # write: the first write's backward must not clear what the second still reads
    @dr.custom_vjp
    def both(a, b):
        return a + b

    both.defvjp(lambda a, b: (a + b, None), lambda res, g: (g, g))

    def f(x):
        a = np.zeros_like(x)
        a[0] = x[0]
        b = np.zeros_like(x)
        b[:] = x ** 2
        return both(a, b)

    x = np.array([0.5, 2.0])
    g = dr.vjp(f, x)[1](np.array([1.0, 3.0]))[0]
    np.testing.assert_allclose(g, [1.0 + 2 * 0.5, 3.0 * 2 * 2.0])


# ------------------------------------------------------------------ writes under vmap
def _loop(f, xs):
    return np.stack([f(x) for x in xs])


def _per_example_writes():
    def argmax_add(x):
        y = x * 1.0
        y[np.argmax(x)] += 1.0
        return y ** 2

    def mask_store(x):
        y = x * 1.0
        y[x > 0.3] = 0
        return y ** 2

    def rows(x):
        Y = np.outer(x, x)
        Y[np.argmin(x)] *= 3.0  # a row per element, written through its view
        Y[x > 0.5] = x[0]  # a batched mask of rows, one row's value
        return Y.ravel()

    def view_write(x):
        Y = np.outer(x, x)
        r = Y[np.argmin(x)]  # a view of the element's row
        r[1:] = 7 * x[2]
        return Y.ravel()

    def repeated(x):
        y = x * 1.0
        k = np.argmax(x)
        y[np.stack([k, k, 0 * k])] = x * 2  # repeats: the last write wins
        return y

    def listed(x):
        y = x * 1.0
        y[[np.argmax(x), 0]] = x[1:] * 2  # a list holding a per-example index
        return y + y[[0, np.argmin(x)]].sum()

    return argmax_add, mask_store, rows, view_write, repeated, listed


@pytest.mark.parametrize("f", _per_example_writes(), ids=lambda f: f.__name__)
def test_writes_with_a_per_example_index_under_vmap(f):
    xs = np.random.default_rng(3).random((4, 3))
    np.testing.assert_allclose(dr.vmap(f)(xs), _loop(f, xs))
    np.testing.assert_allclose(dr.vmap(dr.jacrev(f))(xs), _loop(dr.jacfwd(f), xs),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dr.vmap(dr.jacfwd(f))(xs), _loop(dr.jacrev(f), xs),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dr.jacrev(lambda X: dr.vmap(f)(X))(xs),
                               dr.jacfwd(lambda X: _loop(f, X))(xs), rtol=1e-12, atol=1e-12)
    x = xs[0]
    np.testing.assert_allclose(dr.jacrev(f)(x), fd_jac(f, x), rtol=1e-6, atol=1e-7)


def test_mask_store_under_vmap_needs_one_row():
    def f(x):
        y = x * 1.0
        y[x > 0.3] = x[:2]  # as many values as selected: a count that differs per element
        return y

    with pytest.raises(BatchedValueError, match=r"np\.where\(mask, v, x\)"):
        dr.vmap(f)(np.random.default_rng(0).random((3, 3)))


def test_views_of_the_whole_array_follow_writes():
    # x.T of a vector, x.view(), x[...], np.reshape(x, x.shape) are new view objects in
    # NumPy that show every later write, through the array or through one another
    def f(x, seen):
        y = x * 1.0
        a, b, c, d = y.T, y.view(), y[...], np.reshape(y, (4,))
        seen.extend([a is y, b is y, c is y, d is y])
        e = d[1:]  # a part of a whole view: goes stale on a write (used below: refused)
        y[0] = 5 * x[1]
        b[2] = 3 * x[3]
        return np.concatenate([a, b, c, d, y]), e

    out = same_as_numpy(lambda x, seen: f(x, seen)[0], x4)
    np.testing.assert_allclose(out[:4], [5 * x4[1], x4[1], 3 * x4[3], x4[3]])
    with pytest.raises(dr.StaleViewError, match=r"x\[1:\]"):
        dr.grad(lambda x: np.sum(f(x, [])[1]))(x4)


def test_every_ndarray_attribute_answers():
    from dualrev.tracer import TracedBase

    # (NumPy 2.0's class still lists methods it removed, itemset and tostring, whose
    # lookup on an array raises AttributeError: those need no answer)
    plain = np.zeros((1, 1))
    missing = [n for n in dir(np.ndarray) if not n.startswith("_")
               and hasattr(plain, n) and not hasattr(TracedBase, n)]
    assert missing == []
    x = np.array([0.3, 0.9, 0.1, 0.5])
    seen = {}

    def f(x):
        seen.update(itemsize=x.itemsize, nbytes=x.nbytes, device=x.device,
                    same=x.to_device("cpu") is x, flags=hasattr(x, "flags"),
                    part=dr.strip(x.argpartition(1)))
        return x.compress([True, False, True, True]) ** 2 + 0 * x.searchsorted(0.4)

    np.testing.assert_allclose(check(f, x), [0.09, 0.01, 0.25])
    dr.grad(lambda x: np.sum(f(x)))(x)
    assert seen.pop("part").tolist() == x.argpartition(1).tolist()
    assert seen == dict(itemsize=8, nbytes=32, device="cpu", same=True, flags=False)
    with pytest.raises(AttributeError, match="no strides"):
        dr.grad(lambda x: x.strides)(x)
    with pytest.raises(dr.TracerConversionError):
        dr.grad(lambda x: x.tobytes())(x)
    with pytest.raises(dr.NoDerivativeRule, match="ndarray.setflags"):
        dr.grad(lambda x: x.setflags(write=False))(x)


def test_ravel_of_a_strided_vector_is_not_written_through():
    """NumPy's x[1::2].ravel() is a copy (the memory is not contiguous): a write into it
    must not reach x. dualrev wrote through it as through a view of the whole array
    (found by the aliasing generator once buffer ops joined it)."""
    def f(x):
        v = x[1::2]
        r = v.ravel()
        r[...] = 0.0  # NumPy: writes the copy only; dualrev: refused (a view by name)
        return x

    with pytest.raises(dr.InPlaceError):
        dr.jvp(f, (x4.copy(),), (np.ones(4),))

    def g(x):
        r = x.ravel()  # contiguous: NumPy's view, written through
        r[0] = 5.0
        return x

    np.testing.assert_array_equal(dr.jvp(g, (x4.copy(),), (np.ones(4),))[0], g(x4.copy()))


def test_a_refused_write_into_a_view_leaves_its_value():
    """A write into np.diagonal's result (a view by name: refused) changed the value
    first, through the in-place shortcut for privately held arrays (found by the
    aliasing generator)."""
    def f(A):
        d = np.diagonal(A[1:3, :2])
        with pytest.raises(dr.InPlaceError):
            d[0:1] = 5.0
        return d

    A = np.arange(12.0).reshape(3, 4)
    value, tangent = dr.jvp(f, (A,), (np.ones((3, 4)),))
    np.testing.assert_array_equal(value, np.diagonal(A[1:3, :2]))
    np.testing.assert_array_equal(tangent, [1.0, 1.0])


def test_writes_into_a_diagonal_of_a_basic_view_match_numpy():
    """The aliasing generator's getitem_basic -> diagonal -> set_basic (minimal form):
    NumPy's diagonal is read-only, so every write into it (or into a view of it) raises;
    dualrev refuses it with InPlaceError and the diagonal keeps NumPy's value, in both
    modes (before 15951f6 the refused write changed it first, through the in-place
    shortcut for privately held arrays)."""
    writes = [
        lambda d: d.__setitem__(slice(0, 1), 5.0),
        lambda d: d[:1].__setitem__(Ellipsis, 5.0),
        lambda d: d.__iadd__(1.0),
        lambda d: np.add(d, 1.0, out=d),
        lambda d: d.fill(3.0),
        lambda d: np.copyto(d, 7.0),
        lambda d: d.__setitem__([0], 5.0),
    ]
    A = np.arange(12.0).reshape(3, 4)
    want = np.diagonal(A[1:3, :2]).copy()
    for write in writes:
        with pytest.raises(ValueError, match="read-only"):
            write(np.diagonal(A.copy()[1:3, :2]))

        def f(A, write=write):
            d = np.diagonal(A[1:3, :2])
            with pytest.raises(dr.InPlaceError):
                write(d)
            return d * 1.0

        value, tangent = dr.jvp(f, (A,), (np.ones((3, 4)),))
        np.testing.assert_array_equal(value, want)
        np.testing.assert_array_equal(tangent, [1.0, 1.0])
        value, pull = dr.vjp(f, A)
        np.testing.assert_array_equal(value, want)
        np.testing.assert_array_equal(pull(np.ones(2))[0],
                                      np.eye(3, 4, -1) * [[0], [1], [1]])


def test_a_written_value_may_have_extra_leading_unit_axes():
    """NumPy's x[key] = v drops leading axes of length 1 of v beyond the written part
    (x[::2] = np.ones((1, 1))), under basic and integer-array indices, not under a
    boolean mask. dualrev raised NumPy's nditer error (found by the aliasing generator)."""
    def f(x):
        y = x * 1.0
        y[::2] = np.ones((1, 1)) * x[1]
        z = x * 1.0
        z[[0, 1]] = np.ones((1, 1, 2)) * x[3]
        return y + z

    x = np.arange(4.0)
    value, tangent = dr.jvp(f, (x,), (np.ones(4),))
    np.testing.assert_array_equal(value, f(x))
    np.testing.assert_array_equal(dr.vjp(f, x)[0], f(x))
    np.testing.assert_array_equal(tangent, [2.0, 2.0, 2.0, 2.0])

    def g(x):
        x = x * 1.0
        x[np.array([True, False, True, False])] = np.ones((1, 2))
        return x

    with pytest.raises(TypeError):
        g(x)
    with pytest.raises((TypeError, ValueError)):
        dr.jvp(g, (x,), (np.ones(4),))


def test_asarray_family_copies_where_numpy_does():
    """np.asarray of a NumPy scalar is a new 0-d array; np.asarray(x, order="F") of a
    C array is a copy laid out in F order, which np.asfortranarray then returns as it is
    and np.ascontiguousarray copies again; a diagonal (a strided view) is copied by
    both. dualrev answered with the object itself (found by the aliasing generator)."""
    def f(A):
        s = A[0, 0]
        a = np.asarray(s)
        a[...] = 5.0  # a new 0-d array: s is not changed
        F = np.asarray(A, order="F")
        C = np.ascontiguousarray(F)
        d = np.diagonal(A)
        same = (a is s, F is A, np.asfortranarray(F) is F, C is F,
                np.ascontiguousarray(d) is d, np.asarray(d, order="F") is d)
        return same, s * 1.0, a * 1.0

    A = np.arange(12.0).reshape(3, 4)
    want = f(A.copy())
    assert want[0] == (False, False, True, False, False, False)
    for run in (lambda: dr.jvp(lambda A: f(A)[1:], (A,), (np.ones((3, 4)),))[0],
                lambda: dr.vjp(lambda A: f(A)[1:], A)[0]):
        np.testing.assert_array_equal(run(), want[1:])
    box = {}
    dr.vjp(lambda A: box.setdefault("same", f(A)[0]) and A * 1.0, A)
    assert box["same"] == want[0]
    with pytest.raises(ValueError):
        np.asarray(A[0, 0], copy=False)
    with pytest.raises(ValueError):
        dr.grad(lambda A: np.sum(np.asarray(A[0, 0], copy=False)))(A)


def test_view_functions_of_a_scalar_give_a_scalar():
    """np.transpose / np.squeeze / np.reshape(s, ()) of a NumPy scalar give another
    scalar, which NumPy cannot write (out= raises TypeError): dualrev made them 0-d
    arrays and wrote into them (found by the aliasing generator)."""
    s = np.float64(0.5)
    for view in (np.transpose, np.squeeze, lambda s: np.reshape(s, ())):
        assert type(view(s)) is np.float64
        with pytest.raises(TypeError):
            np.sin(view(s), out=view(s))

        def f(A, view=view):
            t = view(A[0, 0])
            np.sin(t, out=t)
            return t

        with pytest.raises(dr.InPlaceError):
            dr.jvp(f, (np.ones((3, 4)),), (np.ones((3, 4)),))


def test_deepcopy_of_a_strided_view_is_laid_out_as_numpys():
    # copy.deepcopy(x[1::2]) is contiguous in NumPy, so np.ascontiguousarray returns it
    # itself; found by the aliasing generator (not derandomised)
    import copy

    def f(x, seen):
        c = copy.deepcopy(x[1::2])
        seen.append(np.ascontiguousarray(c) is c)
        return np.sum(c)

    plain, traced = [], []
    f(np.arange(4.0), plain)
    dr.grad(f)(np.arange(4.0), traced)
    assert plain == traced == [True]
