"""dualrev.replay against the dynamic transforms: every replayed call is compared with the
same transform called directly on the same inputs (bit for bit unless a test says
otherwise), and the stats say whether it was recorded or replayed."""

import threading
import warnings

import numpy as np
import pytest

import dualrev as dr
from dualrev.program import Program

rng = np.random.default_rng(20261206)


def assert_same(got, want, exact=True, zero_sign=True, layout=True):
    """Same pytree, same leaf types, same shapes and dtypes, same bits (or allclose;
    without ``zero_sign``, 0.0 and -0.0 count as equal), the same memory layout (C or
    Fortran order) unless ``layout`` is False."""
    gl, gd = dr.tree_flatten(got)
    wl, wd = dr.tree_flatten(want)
    assert gd == wd, (gd, wd)
    for g, w in zip(gl, wl, strict=True):
        assert type(g) is type(w), (type(g), type(w))
        assert np.shape(g) == np.shape(w)
        assert np.result_type(g) == np.result_type(w)
        if layout and type(g) is np.ndarray and (w.flags.c_contiguous or
                                                 w.flags.f_contiguous):
            # the layout too (later BLAS calls round by it); a strided view the dynamic
            # call returns comes back as a copy when it is a constant of the program
            assert (g.flags.c_contiguous, g.flags.f_contiguous) == (
                w.flags.c_contiguous, w.flags.f_contiguous)
        if exact:
            np.testing.assert_array_equal(g, w)
            if zero_sign:
                assert np.asarray(g).tobytes() == np.asarray(w).tobytes()
        else:
            np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-15)


def check(fn, *argsets, records=1, exact=True, **replay_kw):
    """Call the replayed ``fn`` on each argument tuple and compare with ``fn`` itself;
    returns the replayed function."""
    r = dr.replay(fn, **replay_kw)
    for args in argsets:
        got = r(*args)
        want = fn(*args)
        assert_same(got, want, exact)
    assert r.stats.records == records, r.stats
    assert r.stats.replays == len(argsets) - records, r.stats
    return r


def equal_guards(r):
    return [g for p in r.programs for g in p.guards if g.kind == "equal"]


def vec(n=4, seed=0):
    return np.random.default_rng(seed).normal(size=n)


def f_elem(x):
    return np.sum(np.sin(x) * x ** 2 + np.exp(-x) / (1.0 + x * x))


def f_index(x):
    return np.sum(x[1:] * x[:-1]) + x[0] ** 3 - np.mean(x[::2]) + np.max(x)


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


@pytest.mark.parametrize("f", [f_elem, f_index, rosen])
def test_grad_replays_bit_for_bit(f):
    r = check(dr.grad(f), (vec(5, 1),), (vec(5, 2),), (vec(5, 3),))
    assert not equal_guards(r)
    assert isinstance(r.programs[0], Program)


def test_value_and_grad_scalar_types():
    # a float argument stays a float, the value is a NumPy scalar as in the dynamic call
    check(dr.value_and_grad(lambda x: x * np.sin(x) + x ** 3), (0.5,), (1.5,), (-2.0,))
    check(dr.value_and_grad(f_elem), (vec(3),), (vec(3, 1),))


def test_argnums_kwargs_and_pytrees():
    def f(p, x, scale=1.0):
        return scale * np.sum(p["w"] * x ** 2) + np.sum(p["b"][0] * x)
    p = {"w": vec(3), "b": (vec(3, 5),)}
    p2 = {"w": vec(3, 7), "b": (vec(3, 8),)}
    check(dr.grad(f, argnums=(0, 1)), (p, vec(3, 1)), (p2, vec(3, 2)))
    g = dr.grad(f)
    r = dr.replay(g)
    for pp, s in ((p, 2.0), (p2, 3.0), (p, 2.0)):
        assert_same(r(pp, vec(3), scale=s), g(pp, vec(3), scale=s))
    assert r.stats.records == 1 and r.stats.replays == 2  # a float keyword is staged


def test_has_aux():
    def f(x):
        return np.sum(x ** 2), {"norm": np.linalg.norm(x), "first": x[0]}
    check(dr.grad(f, has_aux=True), (vec(),), (vec(4, 1),))
    check(dr.value_and_grad(f, has_aux=True), (vec(),), (vec(4, 1),))


def test_jacobians_and_hessians():
    def f(x):
        return np.tanh(np.outer(x, x) @ x) * x[0]
    for t in (dr.jacfwd, dr.jacrev, dr.jacobian, dr.hessian):
        fn = t(f) if t is not dr.hessian else t(f_elem)
        check(fn, (vec(),), (vec(4, 1),), (vec(4, 2),))
    # more outputs than inputs: jacobian pushes tangents along its tape (Tape.push)
    wide = dr.jacobian(lambda x: np.concatenate([np.sin(x), x ** 2 * x[0]]))
    check(wide, (vec(3),), (vec(3, 1),), (vec(3, 2),))
    # integer and boolean arrays are differentiated as float64, as without replay
    check(dr.grad(lambda x: np.sum(x ** 2.5)), (np.array([1, 2]),), (np.array([3, 4]),))


def test_hvp_and_jvp_closures_and_vjp():
    v = vec(4, 9)
    check(dr.hvp(rosen), (vec(), v), (vec(4, 1), v))
    check(lambda x, t: dr.jvp(f_elem, (x,), (t,)), (vec(), v), (vec(4, 1), vec(4, 3)))

    def vjp_of(x, ct):
        y, pull = dr.vjp(lambda z: np.sin(z) * z, x)
        return y, pull(ct)
    check(vjp_of, (vec(), v), (vec(4, 1), vec(4, 3)))


def test_vmap_and_vmap_of_grad():
    xs = np.random.default_rng(3).normal(size=(5, 4))
    check(dr.vmap(dr.grad(f_elem)), (xs,), (xs * 2,))
    check(dr.vmap(lambda x: np.sin(x) @ x), (xs,), (xs + 1,))


def test_nested_transforms():
    check(dr.grad(dr.grad(lambda x: np.sin(x) * x ** 3)), (0.3,), (1.7,))
    check(dr.jacfwd(dr.grad(rosen)), (vec(),), (vec(4, 1),))


# ------------------------------------------------------------------ control flow
def branchy(x):
    if x.sum() > 0:
        return np.sum(x ** 2)
    return np.sum(np.sin(x))


def test_branch_flip_records_again_and_matches():
    g = dr.grad(branchy)
    r = dr.replay(g)
    x = vec(4, 1)
    x = np.abs(x)
    for arg in (x, x * 2, -x, x, -2 * x):
        assert_same(r(arg), g(arg))
    s = r.stats
    assert s.records == 2 and s.replays == 3, s
    assert s.guard_failures and s.guard_failures[0].kind == "truth"
    assert "x.sum() > 0" in s.guard_failures[0].where


def test_where_mask_replays_without_guard():
    f = dr.grad(lambda x: np.sum(np.where(x > 0, x ** 2, np.sin(x))))
    r = check(f, (vec(6, 1),), (vec(6, 2),), (-vec(6, 1),))
    assert all(g.kind == "finite" for p in r.programs for g in p.guards)


def test_while_loop_on_values():
    def f(x):
        y = x
        n = 0
        while np.sum(y ** 2) > 1.0:
            y = y * 0.5
            n += 1
        return np.sum(np.sin(y)) * (n + 1)
    g = dr.grad(f)
    r = dr.replay(g)
    a = np.array([3.0, 1.0])
    for arg in (a, a * 1.01, a * 10, a * 1.02, a * 10.1):
        assert_same(r(arg), g(arg))
    assert r.stats.records == 2 and r.stats.replays == 3


def test_masks_and_indices_computed_from_values_are_guarded():
    for f in (lambda x: np.sum(x[x > 0] ** 2), lambda x: x[np.argmax(x)] ** 2,
              lambda x: np.sum(np.sort(x) * np.arange(4.0))):
        g = dr.grad(f)
        r = dr.replay(g)
        a = np.array([1.0, -2.0, 3.0, 0.5])
        for arg in (a, a * 2, -a, a[::-1].copy(), a):
            assert_same(r(arg), g(arg))


# ------------------------------------------------------------------ state
def test_inplace_writes_and_buffers():
    def f(x):
        y = np.zeros(3)
        y[0] = x[0] ** 2
        y[1:] = np.sin(x[1:])
        z = x * 1.0
        z[1] += 3 * x[0]
        z *= 2
        return np.sum(y * z)
    check(dr.grad(f), (vec(3),), (vec(3, 1),), (vec(3, 2),))
    check(dr.jacobian(lambda x: (lambda y: y)(np.cumsum(x))), (vec(3),), (vec(3, 1),))


def test_captured_array_changed_in_place_records_again():
    w = np.array([1.0, 2.0, 3.0])
    g = dr.grad(lambda x: np.sum(w * x ** 2))
    r = dr.replay(g)
    x = vec(3)
    assert_same(r(x), g(x))
    assert_same(r(x), g(x))
    w[1] = -5.0  # the user's array, written in place between calls
    assert_same(r(x), g(x))
    assert r.stats.records == 2 and r.stats.replays == 1
    assert "changed in place" in r.stats.stale[0]


def test_closure_cell_rebound_records_again():
    scale = 2.0

    def f(x):
        return scale * np.sum(x ** 3)
    g = dr.grad(f)
    r = dr.replay(g)
    x = vec(3)
    assert_same(r(x), g(x))
    scale = 3.0  # noqa: F841  (read by f through its cell)
    assert_same(r(x), g(x))
    assert r.stats.records == 2 and "closure" in r.stats.stale[0]


GLOBAL_SCALE = 2.0


def _uses_global(x):
    return GLOBAL_SCALE * np.sum(np.exp(x))


def test_global_rebound_records_again():
    global GLOBAL_SCALE
    g = dr.grad(_uses_global)
    r = dr.replay(g)
    x = vec(3)
    try:
        assert_same(r(x), g(x))
        GLOBAL_SCALE = 5.0
        assert_same(r(x), g(x))
        assert r.stats.records == 2 and "GLOBAL_SCALE" in r.stats.stale[0]
    finally:
        GLOBAL_SCALE = 2.0


def test_random_draw_while_recording_warns():
    g = dr.grad(lambda x: np.sum(x * np.random.rand(3)))
    with pytest.warns(dr.ReplayWarning, match="random"):
        dr.replay(g)(vec(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dr.replay(g, allow_random=True)(vec(3))
        dr.replay(dr.grad(f_elem))(vec(3))  # no draw: no warning


# ------------------------------------------------------------------ the cache
def test_signatures_and_static_arguments():
    def f(x, n, mode="sin"):
        y = x
        for _ in range(n):
            y = np.sin(y) if mode == "sin" else np.cos(y)
        return np.sum(y)
    g = dr.grad(f)
    r = dr.replay(g)
    calls = [(vec(3), 2), (vec(3, 1), 2), (vec(3), 3), (vec(4), 2), (vec(3, 2), 3)]
    for args in calls:
        assert_same(r(*args), g(*args))
    assert r.stats.records == 3 and r.stats.replays == 2
    assert_same(r(vec(3), 2, mode="cos"), g(vec(3), 2, mode="cos"))
    assert r.stats.records == 4
    # float32 is another signature; a float and a 0-d array are too
    for a in (vec(3).astype(np.float32), 0.5, np.float64(0.5), np.array(0.5)):
        assert_same(r(a, 1), g(a, 1))
    assert r.stats.records == 8

    def h(x, table):
        return np.sum(x * table[0])
    gh = dr.grad(h)
    rh = dr.replay(gh, static_argnums=1)
    assert_same(rh(vec(2), (2.0, 3.0)), gh(vec(2), (2.0, 3.0)))
    assert_same(rh(vec(2), (4.0, 3.0)), gh(vec(2), (4.0, 3.0)))
    assert rh.stats.records == 2


def test_max_variants_evicts_least_recently_used():
    g = dr.grad(lambda x: np.sum(x ** 3))
    r = dr.replay(g, max_variants=2)
    for n in (2, 3, 4, 2):
        assert_same(r(vec(n)), g(vec(n)))
    assert r.stats.records == 4 and r.stats.evictions == 2
    assert len(r.programs) == 2
    assert_same(r(vec(4)), g(vec(4)))
    assert r.stats.replays == 1


def test_too_many_recordings_run_dynamically_with_a_warning():
    f = dr.grad(lambda x: np.sum(x[np.argmax(x)] * x))
    r = dr.replay(f, max_records=3)
    with pytest.warns(dr.ReplayWarning, match="recorded 3 times"):
        for k in range(5):
            a = np.zeros(4)
            a[k % 4] = 1.0
            assert_same(r(a), f(a))
    # the fourth runs dynamically; the fifth (as the first) replays a kept variant
    assert r.stats.records == 3 and r.stats.dynamic == 1 and r.stats.replays == 1


def test_inside_another_transform_runs_dynamically():
    r = dr.replay(dr.grad(lambda x: np.sum(np.sin(x) * x)))
    outer = dr.jacfwd(r)
    want = dr.jacfwd(dr.grad(lambda x: np.sum(np.sin(x) * x)))(vec(3))
    assert_same(outer(vec(3)), want)
    assert r.stats.records == 0


def test_threads_get_the_dynamic_answers():
    g = dr.grad(rosen)
    r = dr.replay(g)
    xs = [vec(6, s) for s in range(8)]
    want = [g(x) for x in xs]
    got = [None] * len(xs)

    def work(i):
        for _ in range(5):
            got[i] = r(xs[i])
    ts = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for a, b in zip(got, want, strict=True):
        assert_same(a, b)
    assert r.stats.records == 1


# ------------------------------------------------------------------ machinery
def test_custom_vjp_and_custom_jvp():
    @dr.custom_vjp
    def softplus(x):
        return np.log1p(np.exp(x))

    def fwd(x):
        return softplus(x), x

    def bwd(x, g):
        return (g / (1 + np.exp(-x)),)
    softplus.defvjp(fwd, bwd)

    @dr.custom_jvp
    def cube(x):
        return x ** 3

    @cube.defjvp
    def cube_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return x ** 3, 3 * x ** 2 * t
    f = lambda x: np.sum(softplus(x) * cube(x))  # noqa: E731
    check(dr.grad(f), (vec(3),), (vec(3, 1),))
    check(dr.jacfwd(lambda x: softplus(x) * cube(x)), (vec(3),), (vec(3, 1),))


def test_scipy_quad_with_a_closure():
    from scipy import integrate

    def f(a):
        return integrate.quad(lambda t: np.sin(a * t) * t, 0.0, 1.0)[0]
    g = dr.grad(f)
    r = dr.replay(g)
    for a in (0.5, 0.7, 0.5):
        assert_same(r(a), g(a), exact=False)
        assert r(a) == g(a)


def test_nonfinite_result_takes_the_careful_path():
    f = dr.grad(lambda x: np.sum(np.sqrt(x) * np.sqrt(x)))
    r = dr.replay(f)
    assert_same(r(np.array([1.0, 4.0])), f(np.array([1.0, 4.0])))
    for _ in range(2):  # the finite guard fails; the careful recording warns every time
        with pytest.warns(dr.NonFiniteDerivativeWarning):
            got = r(np.array([0.0, 4.0]))
        with pytest.warns(dr.NonFiniteDerivativeWarning):
            assert_same(got, f(np.array([0.0, 4.0])))
    assert r.stats.guard_failures[0].kind == "finite"
    assert r.stats.records == 1 and "warned while recording" in r.stats.dynamic_reasons[0]
    assert_same(r(np.array([2.0, 4.0])), f(np.array([2.0, 4.0])))
    assert r.stats.replays == 1


def test_a_recording_that_fails_where_the_call_does_not_falls_back(monkeypatch):
    from dualrev import staging
    g = dr.grad(f_elem)

    def broken(self, prim, args, params):
        raise RuntimeError("a staging bug")
    monkeypatch.setattr(staging.StagingTrace, "process", broken)
    r = dr.replay(g)
    with pytest.warns(dr.ReplayWarning, match="a staging bug"):
        assert_same(r(vec(3)), g(vec(3)))
    assert_same(r(vec(3, 1)), g(vec(3, 1)))
    assert r.stats.dynamic == 2 and r.stats.records == 0
    with pytest.raises(dr.DualrevError, match="scalar output"):  # the user's own error
        dr.replay(dr.grad(lambda x: x * 2))(vec(3))


PARAMS = np.array([2.0, 0.5])


def _helper(x):
    return PARAMS[0] * np.sum(np.sin(x)) + GLOBAL_SCALE


def _calls_helper(x):
    return _helper(x) * np.sum(x ** 2)


def test_elements_read_from_captured_arrays_and_helpers_globals():
    global GLOBAL_SCALE
    g = dr.grad(_calls_helper)
    r = dr.replay(g)
    x = vec(3)
    try:
        assert_same(r(x), g(x))
        PARAMS[0] = 3.0  # read as a number (PARAMS[0]), never an operand: still seen
        assert_same(r(x), g(x))
        GLOBAL_SCALE = 7.0  # a global of a helper the function calls
        assert_same(r(x), g(x))
        assert_same(r(x), g(x))
    finally:
        PARAMS[0] = 2.0
        GLOBAL_SCALE = 2.0
    assert r.stats.records == 3 and r.stats.replays == 1, r.stats


def test_a_work_buffer_written_during_the_call_is_never_replayed_stale():
    buf = np.zeros(3)

    def f(x):
        buf[:] = [1.0, 2.0, 3.0]
        y = np.sum(x * buf)
        buf[0] = 10.0  # the program must keep what the first product read
        return y + np.sum(x * buf)
    g = dr.grad(f)
    r = dr.replay(g)
    for x in (vec(3), vec(3, 1), vec(3, 2)):
        assert_same(r(x), g(x))
    assert r.stats.replays == 0 and len(r.stats.stale) == 2


def test_temporaries_are_not_watched():
    r = dr.replay(dr.hessian(rosen))
    with dr.config.shortcuts(True):  # (without them the identity basis is not cached:
        r(vec())  # two of its views share it, and it is watched, which is never wrong)
    (variant,) = [v for vs in r._cache.values() for v in vs]
    assert variant.watched == []  # nothing the user holds: the stale check is free


# ------------------------------------------------------------------ the catalogue
_A = np.random.default_rng(7).normal(size=(3, 3))


def _ode(p):
    from scipy.integrate import solve_ivp
    s = solve_ivp(lambda t, y: -p[0] * y + p[1], (0, 1), np.array([1.0, 2.0]), rtol=1e-8)
    return np.sum(s.y[:, -1])


def _implicit(p):
    res = dr.optimize.minimize(lambda x: np.sum((x - p) ** 2 * (1 + x ** 2)), np.zeros(3))
    return np.sum(res.x ** 2)


# (name, transformed function, whether a replay with new values needs no new recording)
CATALOGUE_CASES = [
    ("special", dr.grad(lambda x: np.sum(__import__("scipy.special").special.gammaln(
        x ** 2 + 1) * __import__("scipy.special").special.erf(x))), True),
    ("eigh", dr.grad(lambda x: np.sum(np.linalg.eigh(np.outer(x, x) + np.diag(x))[0] ** 2)),
     True),
    ("svd", dr.jacobian(lambda x: np.linalg.svd(_A * x)[1]), True),
    ("det_inv", dr.grad(lambda x: np.linalg.det(_A + np.diag(x))
                        + np.sum(np.linalg.inv(_A + np.diag(x)))), True),  # a truth guard
    ("fft", dr.grad(lambda x: np.sum(np.abs(np.fft.fft(x)) ** 2)), True),
    ("np_array", dr.grad(lambda x: np.sum(np.array([x[0] * x[1], x[2], 3.0]) ** 2)), True),
    ("math", dr.grad(lambda x: __import__("math").exp(x[0]) * __import__("math").sin(x[1])),
     True),
    ("at", dr.grad(lambda x: np.sum(dr.at(x)[1].set(x[0] ** 2) * x)), True),
    ("stop_gradient", dr.grad(lambda x: np.sum(x * dr.stop_gradient(x ** 2))), True),
    ("vmap_jacfwd", lambda x: dr.vmap(dr.jacfwd(lambda y: np.sin(y) * y[0]))(
        np.stack([x, 2 * x])), True),
    ("complex", lambda x: dr.grad(lambda z: np.abs(np.sum(z ** 2)) ** 2)(x * (1 + 2j)), True),
    ("float32", lambda x: dr.grad(lambda y: np.sum(np.sin(y) ** 2))(x.astype(np.float32)),
     True),
    # these convert values (a solver, a Python loop over a batch): equal-guarded, so a
    # new value records again, and the answers are still the dynamic ones
    ("solve_ivp", lambda x: dr.grad(_ode)(x[:2]), False),
    ("implicit", dr.grad(_implicit), False),
    ("vmap_loop", lambda x: dr.vmap(lambda y: np.sum(
        np.linalg.slogdet(np.outer(y, y) + np.eye(3))[1]))(np.stack([x, x + 1])), False),
]


@pytest.mark.parametrize("name,fn,replays", CATALOGUE_CASES,
                         ids=[c[0] for c in CATALOGUE_CASES])
def test_catalogue_families_replay_as_the_dynamic_transform(name, fn, replays):
    xs = [np.random.default_rng(s).uniform(0.2, 1.2, 3) for s in range(3)]
    r = dr.replay(fn)
    for x in xs:
        assert_same(r(x), fn(x))
    assert r.stats.dynamic == 0
    if replays:
        assert r.stats.records == 1 and r.stats.replays == 2, r.stats
    else:
        assert r.stats.records == 3, r.stats


def test_a_math_domain_error_on_a_replay_is_raised():
    import math
    g = dr.grad(lambda x: math.log(x) * x)
    r = dr.replay(g)
    assert_same(r(2.0), g(2.0))
    with pytest.raises(ValueError, match="math domain error"):
        r(-1.0)
    assert_same(r(3.0), g(3.0))
    assert r.stats.records == 1 and r.stats.replays == 1


def test_side_effects_happen_only_while_recording(capsys):
    def f(x):
        print("traced")
        return np.sum(x ** 2)
    r = dr.replay(dr.grad(f))
    for x in (vec(2), vec(2, 1), vec(2, 2)):
        r(x)
    assert capsys.readouterr().out == "traced\n"


def test_writes_into_arguments_reach_the_callers_arrays():
    def f(x, y, s):
        y[0] = 5.0  # a non-differentiated argument: NumPy writes the caller's array
        t = s
        s += 1.0  # a 0-d array argument: t sees the write
        return np.sum(x * y) * t

    def traced_write(x, y):
        y[0] = x[0]  # a traced value into a plain argument: refused, as without replay
        return np.sum(x * y)
    g = dr.grad(f)
    r = dr.replay(g)
    for k in range(3):
        x = vec(2, k)
        y1, y2 = np.array([1.0, 2.0]) * k, np.array([1.0, 2.0]) * k
        s1, s2 = np.array(1.0 + k), np.array(1.0 + k)
        assert_same(r(x, y1, s1), g(x, y2, s2))
        assert y1.tobytes() == y2.tobytes() and s1.tobytes() == s2.tobytes()
    assert r.stats.records == 1 and r.stats.replays == 2
    with pytest.raises(dr.DualrevError) as dynamic:
        dr.grad(traced_write)(vec(2), np.ones(2))
    with pytest.raises(type(dynamic.value)):
        dr.replay(dr.grad(traced_write))(vec(2), np.ones(2))


# ------------------------------------------------------------------ random programs
def _branching(indices, flips):
    """A random program of tests/test_random_programs.py's steps whose every
    ``flips[k]``-th step is taken only when a value-dependent test holds: the branch
    taken changes from one point to the next."""
    from tests.test_random_programs import STEPS
    chosen = [STEPS[i][1] for i in indices]

    def program(v):
        for k, step in enumerate(chosen):
            if k in flips and np.sum(v) > 0:  # a branch on values
                v = np.sin(v) + step(v)
            else:
                v = step(v)
        return np.sum(v * v)
    return program


REPLAY_RUNS = {"programs": 0, "records": 0, "replays": 0, "flips": 0}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.filterwarnings("ignore::dualrev.NonFiniteDerivativeWarning")
def test_random_programs_with_flipping_branches_replay_as_the_dynamic_grad():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tests.test_random_programs import STEPS, edgy_points

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.integers(0, len(STEPS) - 1), min_size=1, max_size=4),
           st.sets(st.integers(0, 3), max_size=2),
           st.lists(edgy_points, min_size=3, max_size=3))
    def run(indices, flips, xs):
        program = _branching(indices, flips)
        for tr in (dr.grad, dr.value_and_grad):
            fn = tr(program)
            r = dr.replay(fn)
            for x in [*xs, xs[0], -xs[0]]:
                try:
                    want = fn(x)
                except dr.DualrevError as e:  # a refusal: replay refuses the same way
                    with pytest.raises(type(e)):
                        r(x)
                    continue
                # the sign of a zero may differ: the dynamic call's shortcut (a
                # cotangent scattered into the pass's zero buffer, 0 + -0 = 0) and its
                # plain path, which the recording takes, already differ there
                assert_same(r(x), want, zero_sign=False)
            REPLAY_RUNS["programs"] += 1
            REPLAY_RUNS["records"] += r.stats.records
            REPLAY_RUNS["replays"] += r.stats.replays
            REPLAY_RUNS["flips"] += len(r.stats.guard_failures)
    run()
    assert REPLAY_RUNS["replays"] > 0 and REPLAY_RUNS["flips"] > 0, REPLAY_RUNS



def test_static_callables_by_identity_and_thrashing():
    def f(x, h):
        return np.sum(h(x))
    g = dr.grad(f)
    r = dr.replay(g, max_records=2)
    square = lambda t: t ** 2  # noqa: E731
    assert_same(r(vec(3), square), g(vec(3), square))
    assert_same(r(vec(3, 1), square), g(vec(3, 1), square))
    assert r.stats.records == 1 and r.stats.replays == 1
    # a new lambda per call: a new signature each time (never another's program, even
    # where CPython reuses a freed lambda's id), then dynamic calls after a warning
    with pytest.warns(dr.ReplayWarning, match="nearly every call"):
        for k in range(8):
            h = lambda t, k=k: t ** (k + 2)  # noqa: E731
            assert_same(r(vec(3), h), g(vec(3), h))
    assert r.stats.dynamic > 0
    assert_same(r(vec(3, 2), square), g(vec(3, 2), square))  # still replayed


def test_the_careful_path_replays_with_its_decisions_guarded():
    # a masked singular branch: the plain pass gives nan, the careful pass (strong zeros)
    # a finite gradient without a warning, so that recording is kept and replayed
    f = dr.grad(lambda x: np.sum(np.tril(np.sqrt((x[:, None] - x[None, :]) ** 2), -1)))
    r = dr.replay(f)
    with warnings.catch_warnings():
        warnings.simplefilter("error", dr.NonFiniteDerivativeWarning)
        for x in (np.array([1.0, 2.0, 3.0]), np.array([3.0, 1.0, 2.0]),
                  np.array([0.5, 0.25, 4.0]), np.array([1.0, 2.0, 3.0])):
            assert_same(r(x), f(x))
    assert r.stats.records >= 1 and r.stats.replays >= 1, r.stats
    assert not r.stats.dynamic_reasons


def test_the_layout_of_an_argument_is_part_of_the_signature():
    def f(x, y):
        return np.sum(x * y.ravel())  # a view of a contiguous y, a copy of a strided one
    g = dr.grad(f)
    r = dr.replay(g)
    base = np.arange(8.0)
    for y in (base[::2], base[:4].copy(), base[1::2], base[4:].copy()):
        assert_same(r(vec(4), y), g(vec(4), y))
    assert r.stats.records == 2 and r.stats.replays == 2


def test_writes_through_views_of_plain_arguments():
    def f(x, y):
        v = y.ravel()  # a view of a contiguous y: the write reaches the caller's array;
        v[0] = 10.0  # a copy of a strided one, which a staged y refuses (as dualrev
        return np.sum(x * y)  # refuses it for traced values): that call runs dynamically
    g = dr.grad(f)
    r = dr.replay(g)
    y1, y2 = np.arange(4.0), np.arange(4.0)
    assert_same(r(vec(4), y1), g(vec(4), y2))
    assert y1.tobytes() == y2.tobytes() and y1[0] == 10.0
    y1, y2 = np.arange(8.0)[::2], np.arange(8.0)[::2]
    with pytest.warns(dr.ReplayWarning, match="recording f failed"):
        assert_same(r(vec(4), y1), g(vec(4), y2))
    assert y1.tobytes() == y2.tobytes()
    assert r.stats.dynamic == 1 and r.stats.records == 1


# ------------------------------------------------------------------ conformance sample
def _conformance_sample(step):
    from tests.conformance.checks import Prepared
    from tests.conformance.specs import CASES
    for case in CASES[::step]:
        try:
            p = Prepared(case)
        except Exception:  # noqa: BLE001 - a case that cannot be instantiated here
            continue
        if p.diff and not any(np.iscomplexobj(p.plain[i]) for i in p.diff):
            yield case.id, p


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("shortcuts", [False, True])
def test_a_sample_of_the_conformance_cases_replays(shortcuts):
    """jacrev and jacfwd of every 60th conformance case, replayed at its point, at a
    perturbed point and at its point again: equal to the dynamic call bit for bit on the
    plain path (shortcuts off), and to a few ulps with dualrev's shortcuts, which compute
    some products in another order than the plain path a recording follows."""
    n = 0
    with dr.config.shortcuts(shortcuts):
        for cid, p in _conformance_sample(60):
            nums = tuple(range(len(p.leaves)))
            moved = [np.asarray(x) * (1 + 1e-3) if np.asarray(x).dtype.kind == "f" else x
                     for x in p.leaves]
            for tr in (dr.jacrev, dr.jacfwd):
                fn = tr(p.g, nums)
                try:
                    fn(*p.leaves)
                except dr.DualrevError:
                    continue
                r = dr.replay(fn)
                for leaves in (p.leaves, moved, p.leaves):
                    got, want = r(*leaves), fn(*leaves)
                    if shortcuts:
                        gl, wl = dr.tree_flatten(got)[0], dr.tree_flatten(want)[0]
                        assert dr.tree_flatten(got)[1] == dr.tree_flatten(want)[1], cid
                        for a, b in zip(gl, wl, strict=True):
                            assert type(a) is type(b), cid
                            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14,
                                                       err_msg=cid)
                    else:
                        assert_same(got, want, zero_sign=False)
                assert r.stats.replays >= 1 and not r.stats.dynamic, (cid, r.stats)
                n += 1
    assert n > 50


def test_a_gather_by_a_staged_order_keeps_the_dynamic_layout():
    """jacfwd of np.partition / np.sort: the dynamic call gathers the batched tangent by a
    plain index (gather_p, whose x[..., positions] NumPy lays out batch axis innermost),
    a recording by a staged one (take_along): it must give the same layout (regression:
    np.partition[2]-float32-vec replayed in F order where the dynamic call gave C)."""
    rng = np.random.default_rng(3)
    cases = [(lambda v: np.partition(v, 2), rng.normal(size=5).astype(np.float32)),
             (lambda v: np.sort(v), rng.normal(size=4)),
             (lambda v: np.sort(v, axis=0), rng.normal(size=(3, 2))),
             (lambda v: np.partition(v, 1, axis=1) * 2.0, rng.normal(size=(2, 3)))]
    with dr.config.shortcuts(False):
        for f, x in cases:
            for tr in (dr.jacfwd, dr.jacrev, dr.hessian if x.ndim == 1 else dr.jacfwd):
                fn = tr(f) if tr is not dr.hessian else tr(lambda v, f=f: np.sum(f(v) ** 3))
                r = dr.replay(fn)
                for xx in (x, x[::-1].copy(), x):
                    assert_same(r(xx), fn(xx), zero_sign=False)
                assert r.stats.replays >= 1 and not r.stats.dynamic
        vf = dr.vmap(dr.jacfwd(lambda v: np.sort(v) ** 2))
        r = dr.replay(vf)
        xs = rng.normal(size=(3, 4))
        for _ in range(3):
            assert_same(r(xs), vf(xs), zero_sign=False)


def test_power_rules_replay_the_dynamic_bits():
    """The derivative rules of power compute x**(y-1) as power_p does (ndarray.__pow__,
    whose fast path makes x**0.5 np.sqrt): NumPy 2.0's np.power(x, 0.5) is not np.sqrt(x)
    in the last bit, and a rule calling np.power ran it on plain values dynamically but
    replayed power_p's x**0.5 (regression: 1.1e-16 on jacfwd of hypot(sin(v), 1)**1.5)."""
    fs = [lambda v: np.hypot(np.sin(v), 1.0) ** 1.5,
          lambda v: np.power(np.cos(v) + 2.0, 0.5) * v,
          lambda v: (v * v + 1.0) ** 0.5 + (v * v + 2.0) ** -1.0 + np.cbrt(v) ** 3.0]
    xs = [np.full(4, -1.0), np.linspace(0.3, 2.0, 4), np.linspace(-2.0, 3.0, 4)]
    with dr.config.shortcuts(False):
        for f in fs:
            for fn in (dr.jacfwd(f), dr.jacrev(f),
                       dr.hessian(lambda v, f=f: np.sum(f(v) ** 2))):
                r = dr.replay(fn)
                for x in (*xs, xs[0]):
                    assert_same(r(x), fn(x), zero_sign=False)
                assert not r.stats.dynamic


def test_nested_replays():
    inner = dr.replay(dr.grad(lambda x: np.sum(np.sin(x) ** 2)))
    plain_inner = dr.grad(lambda x: np.sum(np.sin(x) ** 2))
    outer = dr.replay(lambda x: inner(x) * 2 + x)
    for s in range(3):
        x = vec(3, s)
        assert_same(outer(x), plain_inner(x) * 2 + x)
    assert outer.stats.records == 1 and outer.stats.replays == 2
    assert inner.stats.records == 0  # it ran inside the outer recording, dynamically


def test_an_operation_failing_on_new_values_runs_the_python_again():
    def f(x):
        a = np.outer(x, x) + np.diag(x)
        try:  # the recording takes one branch of a try; a replay must not skip the other
            c = np.linalg.cholesky(a)
            return np.sum(np.diag(c))
        except np.linalg.LinAlgError:
            return np.sum(x ** 2)
    g = dr.grad(f)
    r = dr.replay(g)
    good, bad = np.array([1.0, 2.0, 3.0]), np.array([1.0, -2.0, 3.0])
    for x in (good, good * 1.1, bad, good):
        assert_same(r(x), g(x))
    assert r.stats.guard_failures[0].kind == "error", r.stats.guard_failures


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.filterwarnings("ignore::dualrev.NonFiniteDerivativeWarning")
@pytest.mark.parametrize("shortcuts", [False, True])
def test_random_programs_under_the_vector_transforms(shortcuts):
    """jacfwd, jacrev, jacobian, hessian and vmap of random branching programs, replayed
    against the dynamic call: bit for bit on the plain path, to rounding with the
    shortcuts (which compute some products in another order than a recording does)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tests.test_random_programs import STEPS, edgy_points

    def vector(indices, flips):
        chosen = [STEPS[i][1] for i in indices]

        def program(v):
            for k, step in enumerate(chosen):
                v = np.sin(v) + step(v) if k in flips and np.sum(v) > 0 else step(v)
            return v
        return program

    transforms = [dr.jacfwd, dr.jacrev, dr.jacobian,
                  lambda f: dr.hessian(lambda v: np.sum(f(v) ** 2)),
                  lambda f: (lambda xs: dr.vmap(f)(xs))]

    @settings(max_examples=30, deadline=None)
    @given(st.lists(st.integers(0, len(STEPS) - 1), min_size=1, max_size=3),
           st.sets(st.integers(0, 2), max_size=2), st.lists(edgy_points, min_size=3,
                                                             max_size=3))
    def run(indices, flips, xs):
        program = vector(indices, flips)
        for k, tr in enumerate(transforms):
            fn = tr(program)
            r = dr.replay(fn)
            for x in [*xs, xs[0], -xs[0]]:
                arg = np.stack([x, -x, 0.5 * x]) if k == 4 else x
                try:
                    want = fn(arg)
                except dr.DualrevError as e:
                    with pytest.raises(type(e)):
                        r(arg)
                    continue
                got = r(arg)
                if shortcuts:
                    for a, b in zip(dr.tree_flatten(got)[0], dr.tree_flatten(want)[0],
                                    strict=True):
                        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)
                else:
                    assert_same(got, want, zero_sign=False)

    with dr.config.shortcuts(shortcuts):
        run()


def test_a_returned_pullback_runs_dynamically():
    def f(x):
        return dr.vjp(lambda z: np.sin(z) * z, x)  # (value, pullback)
    r = dr.replay(f)
    for s in range(2):
        x = vec(3, s)
        y, pull = r(x)
        y2, pull2 = f(x)
        assert_same(y, y2)
        assert_same(pull(np.ones(3)), pull2(np.ones(3)))
    assert r.stats.records == 0 and r.stats.dynamic == 2
    assert "returned a function" in r.stats.dynamic_reasons[0]
