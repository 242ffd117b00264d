"""Differential testing against NumPy's own semantics (issue 21, generator 1): random
programs of views, copies and in-place writes (tests/aliasing_programs.py) run once on
plain NumPy float64 arrays and once traced. Every live array must hold NumPy's values,
object identity must be NumPy's, NumPy's raises must be matched, and every step the
traced run refuses must be refused with an error the op declares (StaleViewError only
where an operand is a stale view, whose every use must raise). Then the derivatives of
the same programs: reverse mode against central differences, forward against reverse
(jacfwd, and the <u, J v> pairing of jvp and vjp), vmap against a loop, hessian
(forward over reverse) against reverse over reverse.

A program is skipped in NumPy at exactly the steps the traced run refused, so the rest
of it is still compared.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dualrev as dr
from dualrev.errors import StaleViewError

from .aliasing_programs import OPS, Record, interpret, scalar_of, vector_of

COUNTS: dict[str, int] = {}
BUFFER_OPS = {"np.zeros", "np.full", "np.ones_like", "np.zeros_complex"}


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    """Prints what the generators ran (shown with pytest -s; the closing note's counts)."""
    yield
    print("\naliasing differential counts:", COUNTS)


def count(what: str, n: int = 1) -> None:
    COUNTS[what] = COUNTS.get(what, 0) + n


def fail_unless_known(rec: Record, problem: str) -> None:
    """Every mismatch with NumPy fails (the named defects of issue 21 that the generator
    met while they were open are fixed)."""
    pytest.fail(f"{problem}\nops: {rec.ops}")


# ------------------------------------------------------------------ strategies
# Ops drawn more often: the ones that make aliases (another name, a basic view, a
# scalar) and the writes through them, so that write-then-read-through-another-name
# patterns are frequent in 7-step programs.
WEIGHTS = {"alias": 4, "getitem_basic": 4, "getitem_scalar": 3, "sum_all": 2,
           "aug_whole": 3, "aug_keep": 4, "set_basic": 3, "aug_basic": 3}
DRAWN = [k for k, op in enumerate(OPS) for _ in range(WEIGHTS.get(op.name, 1))]
steps_st = st.lists(
    st.tuples(st.sampled_from(DRAWN), st.integers(0, 7), st.integers(0, 7),
              st.integers(0, 10_000)),
    min_size=1, max_size=8)
seeds = st.integers(0, 2**31 - 1)


def inputs_of(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((3, 4)), rng.standard_normal(4)]


# ------------------------------------------------------------------ the checks
def traced_run(steps: list, transform: str, inputs: list[np.ndarray]) -> tuple[Record, list, list]:
    """Run ``steps`` traced under ``transform``; returns the record, the identity pairs
    of the pool, and the output values (live entries)."""
    box: dict = {}

    def f(*xs):
        pool, rec = interpret(steps, list(xs), traced=True)
        for k, x in enumerate(pool):
            if rec.stale[k]:  # a stale view must refuse every use
                with pytest.raises(StaleViewError):
                    np.sum(x)
        box["rec"] = rec
        box["same"] = identity(pool)
        return vector_of(pool, rec.stale)

    if transform == "vjp":
        out, _ = dr.vjp(f, *inputs)
    elif transform == "jvp":
        out, _ = dr.jvp(f, tuple(inputs), tuple(np.ones_like(x) for x in inputs))
    elif transform == "jvp of vjp":  # nested: the pool holds forward-over-reverse values
        out, _ = dr.jvp(lambda *xs: dr.vjp(f, *xs)[0], tuple(inputs),
                        tuple(np.ones_like(x) for x in inputs))
    else:
        raise ValueError(transform)
    return box["rec"], box["same"], [np.asarray(o) for o in out]


def identity(pool: list) -> list[tuple[int, int]]:
    return [(a, b) for a in range(len(pool)) for b in range(a) if pool[a] is pool[b]]


def tol(e) -> float:
    """Values agree to rounding: float32 results may be rounded at other points."""
    return 1e-12 if np.result_type(e) in (np.float64, np.complex128) else 2e-6


def compare_with_numpy(steps: list, transform: str, seed: int) -> None:
    compare(steps, transform, seed)


def compare(steps: list, transform: str, seed: int) -> None:
    count(f"programs ({transform})")
    inputs = inputs_of(seed)
    try:
        rec, same, out = traced_run(steps, transform, inputs)
    except Exception as e:
        fail_unless_known(Record(ops=[OPS[k % len(OPS)].name for k, *_ in steps]),
                          f"the traced function raised {type(e).__name__}: {e}")
        raise
    plain_pool, prec = interpret(steps, [x.copy() for x in inputs], skip=set(rec.refused))
    count("steps", len(steps))
    count("steps refused", len(rec.refused))
    count("buffers made by np.zeros & co.", sum(op in BUFFER_OPS for op in rec.ops))
    if rec.bad_refusals:
        fail_unless_known(rec, f"refused with an error the op does not declare: "
                               f"{rec.bad_refusals}")
    tr_only = {s: rec.raised[s] for s in rec.raised if s not in prec.raised}
    if tr_only:
        fail_unless_known(rec, f"the traced run crashed where NumPy did not: {tr_only}")
    np_only = {s: prec.raised[s] for s in prec.raised if s not in rec.raised}
    if np_only:
        fail_unless_known(rec, f"NumPy raised, the traced run did not: {np_only}")
    assert prec.ops == rec.ops, (prec.ops, rec.ops)
    # NumPy's scalars are immutable, so whether two of them are one object is not
    # observable (copy.copy(s) is s, s.copy() is not): their pairs are not compared
    scalars = {k for k, x in enumerate(plain_pool) if isinstance(x, np.generic)}
    same = [(a, b) for a, b in same if a not in scalars]
    if [(a, b) for a, b in identity(plain_pool) if a not in scalars] != same:
        pytest.fail(f"object identity differs: NumPy {identity(plain_pool)}, traced "
                    f"{same} (scalars {scalars})\nops: {rec.ops}")
    expect = vector_of(plain_pool, rec.stale)
    count("arrays compared", len(expect))
    if len(expect) != len(out) or not all(
            np.shape(e) == np.shape(o) and np.result_type(e) == np.result_type(o)
            and np.allclose(e, o, rtol=tol(e), atol=tol(e), equal_nan=True)
            for e, o in zip(expect, out, strict=True)):
        fail_unless_known(rec, f"values differ from NumPy's:\n{expect}\n{out}")


# Explicit example counts (the CI profile still derandomizes): a program is cheap (~25 ms),
# and the ones meeting a known defect stop early.
@settings(max_examples=120)
@given(steps_st, seeds)
def test_programs_match_numpy_reverse(steps, seed):
    compare_with_numpy(steps, "vjp", seed)


@settings(max_examples=120)
@given(steps_st, seeds)
def test_programs_match_numpy_forward(steps, seed):
    compare_with_numpy(steps, "jvp", seed)


@settings(max_examples=60)
@given(steps_st, seeds)
def test_programs_match_numpy_nested(steps, seed):
    compare_with_numpy(steps, "jvp of vjp", seed)


# ------------------------------------------------------------------ derivatives
def run_flat(steps: list, z, skip=frozenset()):
    """The program on the two inputs made from one flat vector (fresh arrays made from
    it, so writes into them are writes into separate arrays)."""
    A = np.reshape(z[:12], (3, 4)) * 1.0
    b = z[12:] * 1.0
    return interpret(steps, [A, b], skip=skip, traced=not isinstance(z, np.ndarray))


def fd_grad(f, z, eps=1e-6):
    g = np.empty_like(z)
    for k in range(z.size):
        e = np.zeros_like(z)
        e[k] = eps
        g[k] = (f(z + e) - f(z - e)) / (2 * eps)
    return g


def check_derivatives(steps: list, seed: int, nested: bool) -> None:
    compare(steps, "vjp", seed)
    z = np.random.default_rng(seed).standard_normal(16)
    box: dict = {}

    def scalar(z):
        pool, box["rec"] = run_flat(steps, z)
        return scalar_of(pool, box["rec"].stale)

    g = dr.grad(scalar)(z)
    rec = box["rec"]
    if rec.bad_refusals:
        fail_unless_known(rec, f"refused with an undeclared error: {rec.bad_refusals}")
    skip = set(rec.refused)
    prec = run_flat(steps, z, skip)[1]
    if set(prec.raised) != set(rec.raised):  # at these values (compare ran at others)
        fail_unless_known(rec, f"raised: traced {rec.raised}, NumPy {prec.raised}")

    def plain_scalar(z):
        pool, _ = run_flat(steps, z, skip)
        return scalar_of(pool, rec.stale)

    def vector(z, skip=skip, stale=rec.stale):
        pool, box["rec"] = run_flat(steps, z, skip)
        return vector_of(pool, stale)

    count("derivative programs")
    scale = 1.0 + np.max(np.abs(g))
    err = str(rec.ops)
    # a float32 array in the program: rounding at 1e-7 (no finite differences there)
    low = any(np.result_type(x) in (np.float32, np.complex64)
              for x in run_flat(steps, z, skip)[0])
    r = 1e-4 if low else 1.0
    if low:
        count("float32 programs (no finite differences)")
    else:
        fd = fd_grad(plain_scalar, z)
        if not np.allclose(g, fd, rtol=1e-5, atol=1e-5 * scale):
            fail_unless_known(rec, f"grad differs from finite differences:\n{g}\n{fd}")
    jf = dr.jacfwd(scalar)(z)
    np.testing.assert_allclose(jf, g, rtol=1e-10 + r, atol=(1e-10 + r) * scale, err_msg=err)

    # <u, J v>: jvp against vjp on every live array
    rng = np.random.default_rng(seed + 1)
    v = rng.standard_normal(16)
    out, jv = dr.jvp(vector, (z,), (v,))
    u = [rng.standard_normal(np.shape(o)) for o in out]
    _, pull = dr.vjp(vector, z)
    (ju,) = pull(u)
    lhs = sum(np.sum(a * b) for a, b in zip(u, jv, strict=True))
    np.testing.assert_allclose(lhs, np.dot(ju, v), rtol=1e-9 + r, atol=(1e-9 + r) * scale,
                               err_msg=err)
    count("derivative checks", 4)

    # vmap: a batch of 3 against a loop of plain runs
    Z = np.stack([z, z[::-1] * 0.5, z + 0.25])
    vbox: dict = {}

    def batched_vector(z):
        pool, vbox["rec"] = run_flat(steps, z)
        return vector_of(pool, vbox["rec"].stale)

    batched = dr.vmap(batched_vector)(Z)
    vrec = vbox["rec"]
    if set(vrec.raised) != set(rec.raised) or vrec.bad_refusals:
        fail_unless_known(vrec, f"under vmap: raised {vrec.raised} {vrec.bad_refusals}")
    count("vmap refused steps", len(vrec.refused))
    for n in range(3):
        expect = vector(Z[n].copy(), set(vrec.refused), vrec.stale)
        ok = len(expect) == len(batched) and all(
            np.allclose(b[n], e, rtol=tol(e), atol=tol(e))
            for e, b in zip(expect, batched, strict=True))
        if not ok:
            fail_unless_known(vrec, f"vmap differs from a loop at {n}:\n{batched}\n{expect}")
    count("derivative checks")

    if nested:  # forward over reverse against reverse over reverse
        h1 = dr.hessian(scalar)(z)
        h2 = dr.jacrev(dr.grad(scalar))(z)
        np.testing.assert_allclose(h1, h2, rtol=1e-8 + r, atol=(1e-8 + r) * scale, err_msg=err)
        np.testing.assert_allclose(h1, h1.T, rtol=1e-8 + r, atol=(1e-8 + r) * scale,
                                   err_msg=err)
        count("derivative checks", 2)


@settings(max_examples=60)
@given(steps_st, seeds, st.booleans())
def test_program_derivatives(steps, seed, nested):
    check_derivatives(steps, seed, nested)


# ------------------------------------------------------------------ regressions
# Defects the generator found beyond issue 21's named examples, one minimal test each.
def test_diag_of_a_matrix_is_a_read_only_view():
    """np.diag(A) of a matrix is NumPy's read-only diagonal view: a write into it raised
    in NumPy but silently wrote into a traced copy (found by the generator)."""
    A = np.arange(9.0).reshape(3, 3)

    def write_into_diag(A):
        d = np.diag(A)
        d[0] = 5.0
        return np.sum(d)

    with pytest.raises(ValueError, match="read-only"):
        write_into_diag(A.copy())
    with pytest.raises(dr.errors.InPlaceError, match="diagonal"):
        dr.grad(write_into_diag)(A)
    # reading it is unchanged, off-diagonals included, in both modes
    f = lambda A: np.diag(A, 1) ** 2
    np.testing.assert_allclose(dr.jacfwd(f)(A), dr.jacrev(f)(A))
    np.testing.assert_allclose(dr.grad(lambda A: np.sum(f(A)))(A),
                               2 * np.diag(np.diag(A, 1), 1))
    # a vector's np.diag is a new matrix, which may be written
    def g(v):
        M = np.diag(v)
        M[0, 1] = v[2]
        return np.sum(M * M)
    v = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(dr.grad(g)(v), [2.0, 4.0, 12.0])


def test_augmented_assignment_on_a_scalar_leaves_other_names_alone():
    """np.sum(x), x[0] and arithmetic on 0-d values are NumPy scalars, which are
    immutable: ``loss += reg`` binds ``loss`` to a new value and a name kept before (a
    history list) keeps the old one. The traced 0-d value was mutated in place, so the
    history changed: value 8 and grad [3, 5] where NumPy gives 5 and [2, 4] (found by
    the generator: getitem_scalar / sum_all, then aug_keep)."""
    def f(x):
        loss = np.sum(x ** 2)
        history = [loss]
        loss += np.sum(x)
        return history[0] + 0.0 * loss

    def g(x):
        s = x[0]
        t = s
        s *= 3.0
        return t + 10.0 * s

    x = np.array([1.0, 2.0])
    for fn, value, grad in ((f, 5.0, [2.0, 4.0]), (g, 31.0, [31.0, 0.0])):
        assert fn(x.copy()) == value
        v, gr = dr.value_and_grad(fn)(x)
        assert v == value
        np.testing.assert_allclose(gr, grad)
        np.testing.assert_allclose(dr.jacfwd(fn)(x), grad)
    np.testing.assert_allclose(dr.vmap(g)(np.ones((3, 2))), [31.0] * 3)
    # s += v with a vector v makes s a vector, as NumPy's scalar does
    def h(x):
        s = x[0]
        s += x
        return s
    np.testing.assert_allclose(dr.jacrev(h)(x), [[2.0, 0.0], [1.0, 1.0]])


def test_zero_d_arrays_stay_mutable_and_scalars_refuse_writes():
    """A 0-d *array* (np.zeros_like of a 0-d value, a view s[...] of one) is written in
    place and its aliases see it, as in NumPy; a write into a scalar (s[...] = v,
    s.fill, out=s) raises, as NumPy does (TypeError there), instead of writing."""
    def f(x):
        a = np.zeros_like(x[0])
        b = a
        a += x[1]
        return b * x[0]

    x = np.array([1.0, 2.0])
    assert f(x.copy()) == 2.0
    np.testing.assert_allclose(dr.grad(f)(x), [2.0, 1.0])

    def copy_of_scalar(x):
        c = np.copy(x[1])  # a 0-d array, not a scalar: its view sees the write
        r = np.reshape(c, (1,))
        c += x[0]
        return r

    np.testing.assert_allclose(copy_of_scalar(x.copy()), [3.0])
    for transform in (dr.jacrev, dr.jacfwd):  # was [2.0] silently: the old value
        with pytest.raises(dr.errors.StaleViewError):
            transform(copy_of_scalar)(x)

    def view_of_scalar(x):
        s = x[0]
        v = s[...]   # a new 0-d array in NumPy: writing it leaves s alone
        v[...] = 7.0
        return s + v

    assert view_of_scalar(x.copy()) == 8.0
    np.testing.assert_allclose(dr.grad(view_of_scalar)(x), [1.0, 0.0])

    def w_set(x):
        s = x[0]
        s[...] = 1.0
        return s

    def w_out(x):
        s = x[0]
        np.negative(s, out=s)
        return s

    def w_fill(x):
        s = x[0]
        s.fill(1.0)  # NumPy's scalar ignores it: refused rather than done
        return s

    for w in (w_set, w_out):
        with pytest.raises(TypeError):
            w(x.copy())
    assert w_fill(x.copy()) == 1.0
    for w in (w_set, w_out, w_fill):
        with pytest.raises(dr.errors.InPlaceError, match="scalar"):
            dr.grad(w)(x)


def test_sliding_window_view():
    """np.lib.stride_tricks.sliding_window_view had no rule (NoDerivativeRule); it is
    NumPy's read-only view, so writes into it raise as NumPy's do."""
    from numpy.lib.stride_tricks import sliding_window_view as windows

    x = np.arange(12.0).reshape(3, 4) / 7
    f = lambda x: np.sum(np.sin(windows(x, 2, axis=-1)) * np.arange(2))
    np.testing.assert_allclose(dr.grad(f)(x), dr.jacfwd(f)(x), rtol=1e-12)
    eps = 1e-6
    fd = np.array([(f(x + eps * e.reshape(3, 4)) - f(x - eps * e.reshape(3, 4))) / (2 * eps)
                   for e in np.eye(12)]).reshape(3, 4)
    np.testing.assert_allclose(dr.grad(f)(x), fd, rtol=1e-7, atol=1e-9)
    g = lambda x: windows(x, (2, 2))
    np.testing.assert_allclose(dr.jacfwd(g)(x), dr.jacrev(g)(x))
    v = np.arange(8.0).reshape(2, 4)
    np.testing.assert_array_equal(dr.vmap(lambda r: windows(r, 3))(v),
                                  [windows(r, 3) for r in v])

    def write(x):
        w = windows(x, 2)
        w[0] = 1.0
        return np.sum(w)

    with pytest.raises(ValueError, match="read-only"):
        write(np.ones(4))
    with pytest.raises(dr.errors.InPlaceError, match="sliding_window_view"):
        dr.grad(write)(np.ones(4))
    with pytest.raises(dr.errors.InPlaceError, match="writeable"):
        dr.grad(lambda x: np.sum(windows(x, 2, writeable=True)))(np.ones(4))
