"""dr.checkpoint and dr.checkpoint_loop (dualrev/checkpointing.py): derivatives equal to
the un-checkpointed function's in every mode and nesting, the schedules' counts of step
runs against Griewank and Walther's formula, and the memory they are for."""

import tracemalloc
from math import comb

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dualrev as dr
from dualrev.checkpointing import _first_sweep, _split_point, revolve_advances

RNG = np.random.default_rng(20261206)
X = RNG.normal(size=5)


def close(a, b, rtol=1e-13, atol=1e-14):
    for u, v in zip(dr.tree_flatten(a)[0], dr.tree_flatten(b)[0], strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)


def fd(f, x, h=1e-6):
    """Central differences of a scalar function of a vector."""
    x = np.asarray(x, float)
    out = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = h
        out.flat[i] = (f(x + e) - f(x - e)) / (2 * h)
    return out


def body(x, w):
    return np.tanh(w * np.sin(x)) + 0.1 * x * w


CK = dr.checkpoint(body)


def plain_loss(w):
    return np.sum(body(body(X, w), w) ** 2)


def ck_loss(w):
    return np.sum(CK(CK(X, w), w) ** 2)


# ------------------------------------------------------------------ checkpoint(f)


def test_plain_call_and_values():
    w = RNG.normal(size=5)
    close(CK(X, w), body(X, w))
    close(ck_loss(w), plain_loss(w))
    assert CK.__name__ == "body"


@pytest.mark.parametrize("transform", ["grad", "value_and_grad", "jacrev", "jacfwd",
                                       "jacobian", "hessian"])
def test_every_transform_equals_the_plain_function(transform):
    w = RNG.normal(size=5)
    t = getattr(dr, transform)
    close(t(ck_loss)(w), t(plain_loss)(w))
    if transform in ("jacrev", "jacfwd", "jacobian"):
        # a vector output (jacobian pushes its basis tangents along the tape)
        close(t(lambda w: CK(X, w) * w[0])(w), t(lambda w: body(X, w) * w[0])(w))


def test_against_finite_differences():
    w = RNG.normal(size=5)
    np.testing.assert_allclose(dr.grad(ck_loss)(w), fd(ck_loss, w), rtol=1e-6, atol=1e-8)


def test_nesting_grad_of_grad_hvp_jvp_vjp():
    f = lambda a: np.sum(CK(X, a) ** 3)  # noqa: E731
    g = lambda a: np.sum(body(X, a) ** 3)  # noqa: E731
    close(dr.grad(dr.grad(lambda a: f(a * np.ones(5))))(0.3),
          dr.grad(dr.grad(lambda a: g(a * np.ones(5))))(0.3))
    w, v = RNG.normal(size=5), RNG.normal(size=5)
    close(dr.hvp(f)(w, v), dr.hvp(g)(w, v))
    close(dr.jacfwd(dr.jacrev(f))(w), dr.hessian(g)(w))
    close(dr.jacrev(dr.jacrev(f))(w), dr.hessian(g)(w))
    close(dr.jvp(f, (w,), (v,)), dr.jvp(g, (w,), (v,)))
    out, pull = dr.vjp(lambda a: CK(X, a), w)
    out2, pull2 = dr.vjp(lambda a: body(X, a), w)
    close(pull(v), pull2(v))


def test_vmap_and_per_example_gradients():
    W = RNG.normal(size=(4, 5))
    close(dr.vmap(lambda w: CK(X, w))(W), dr.vmap(lambda w: body(X, w))(W))
    close(dr.vmap(dr.grad(ck_loss))(W), dr.vmap(dr.grad(plain_loss))(W))


def test_pytrees_in_and_out_and_static_arguments():
    def f(p, x, mode, k):
        assert mode == "tanh" and k == 3  # static: passed through unchanged
        h = np.tanh(p["a"] * x) ** k
        return {"h": h, "s": (np.sum(h * p["b"]),)}
    fc = dr.checkpoint(f)

    def loss(p, f):
        out = f(p, X, "tanh", 3)
        return np.sum(out["h"] ** 2) + out["s"][0]
    p = {"a": RNG.normal(size=5), "b": 0.7}
    close(dr.grad(lambda p: loss(p, fc))(p), dr.grad(lambda p: loss(p, f))(p))
    close(dr.grad(lambda p: loss(p, fc))(p)["a"],
          fd(lambda a: loss({"a": a, "b": 0.7}, f), p["a"]), rtol=1e-6, atol=1e-8)


def test_keyword_arguments_are_differentiated():
    fc = dr.checkpoint(lambda x, scale=1.0: np.sum(np.sin(scale * x)))
    close(dr.grad(lambda s: fc(X, scale=s))(0.4),
          dr.grad(lambda s: np.sum(np.sin(s * X)))(0.4))


def test_closure_over_a_traced_parameter_gets_its_gradient():
    def f(p, q):
        inner = dr.checkpoint(lambda x: np.sin(p * x) * q)
        return np.sum(inner(X * q))

    def g(p, q):
        return np.sum(np.sin(p * X * q) * q)
    close(dr.grad(f, argnums=(0, 1))(1.3, 0.8), dr.grad(g, argnums=(0, 1))(1.3, 0.8))
    close(dr.hessian(lambda v: f(v[0], v[1]))(np.array([1.3, 0.8])),
          dr.hessian(lambda v: g(v[0], v[1]))(np.array([1.3, 0.8])))


G_TRACED = None


def test_a_traced_global_is_refused():
    def f(p):
        global G_TRACED
        G_TRACED = p
        return np.sum(dr.checkpoint(lambda x: x * G_TRACED)(X))
    with pytest.raises(dr.ClosureError, match="global"):
        dr.grad(f)(1.0)


def test_recomputed_in_the_backward_pass_and_the_tape_keeps_one_entry():
    calls = []

    def f(x, w):
        calls.append(1)
        for _ in range(20):
            x = np.sin(w * x)
        return x
    fc = dr.checkpoint(f)
    tapes = []

    def loss(w):
        out = np.sum(fc(X, w))
        tapes.append(len(out._trace.nodes))
        return out
    close(dr.grad(loss)(0.9), dr.grad(lambda w: np.sum(f(X, w)))(0.9))
    assert len(calls) == 3  # plain reference once, checkpointed twice (forward, backward)
    assert tapes[0] <= 3  # the input, the checkpoint entry, the sum: not 40 entries


def test_replay_of_a_checkpointed_function():
    g = dr.grad(ck_loss)
    r = dr.replay(g)
    for w in (RNG.normal(size=5), RNG.normal(size=5), RNG.normal(size=5)):
        close(r(w), dr.grad(plain_loss)(w), rtol=1e-14)
    assert r.stats.records == 1 and r.stats.replays == 2


def test_traced_values_anywhere_in_the_arguments_get_their_gradient():
    """A tuple mixing a traced value and an int, an object holding a traced parameter
    (a method's self), a traced keyword argument: every traced value the call reaches
    is an argument of the checkpointed call."""
    fc = dr.checkpoint(lambda t: t[0] * t[1])
    close(dr.grad(lambda a: fc((a, 3)))(1.0), 3.0)

    class Layer:
        def __init__(self, w):
            self.w = w

        @dr.checkpoint
        def __call__(self, x, power=1):
            return np.sin(self.w * x) ** power

    def loss(w, cls):
        return np.sum(cls(w)(X, power=3))

    class Plain(Layer):
        __call__ = Layer.__call__.__wrapped__
    close(dr.grad(loss)(0.6, Layer), dr.grad(loss)(0.6, Plain))
    close(dr.hessian(loss)(0.6, Layer), dr.hessian(loss)(0.6, Plain))
    steps = []

    def tape_length(w):
        out = loss(w, Layer)
        steps.append(len(out._trace.nodes))
        return out
    dr.grad(tape_length)(0.6)
    assert steps[0] <= 3  # the checkpointed call is one entry


def test_complex_inputs_follow_the_plain_function():
    f = lambda z: np.abs(np.sum(np.exp(1j * z) * z)) ** 2  # noqa: E731
    fc = dr.checkpoint(lambda z: np.exp(1j * z) * z)
    z = RNG.normal(size=3)
    close(dr.grad(lambda z: np.abs(np.sum(fc(z))) ** 2)(z), dr.grad(f)(z))
    zc = z + 1j * RNG.normal(size=3)
    close(dr.grad(lambda z: np.abs(np.sum(fc(z))) ** 2)(zc), dr.grad(f)(zc))


def test_the_module_imports_no_optional_library():
    """checkpointing.py imports the standard library, NumPy and dualrev only (import
    dualrev must work without Dask, torch, JAX, xarray, CuPy)."""
    import ast
    from pathlib import Path

    import dualrev.checkpointing as mod
    tree = ast.parse(Path(mod.__file__).read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
             for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom) and n.level == 0}
    assert names <= {"__future__", "functools", "collections", "math", "typing", "numpy"}


# ------------------------------------------------------------------ loops


def pendulum_rk4(x, theta, dt=0.05):
    """RK4 of a damped, driven pendulum: x = (angle, velocity), theta = (g/l, damping)."""
    def rhs(y):
        return np.stack([y[1], -theta[0] * np.sin(y[0]) - theta[1] * y[1]])
    k1 = rhs(x)
    k2 = rhs(x + 0.5 * dt * k1)
    k3 = rhs(x + 0.5 * dt * k2)
    k4 = rhs(x + dt * k3)
    return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


THETA = np.array([9.81, 0.3])
XP = np.array([1.2, 0.0])


def pend_loss(theta, x0=XP, n=60, **kw):
    return np.sum(dr.checkpoint_loop(pendulum_rk4, x0, n, theta, **kw) ** 2)


def python_loop(theta, x0=XP, n=60):
    x = x0
    for _ in range(n):
        x = pendulum_rk4(x, theta)
    return np.sum(x ** 2)


SCHEDULES = [{"schedule": "revolve"}, {"schedule": "revolve", "snapshots": 1},
             {"schedule": "revolve", "snapshots": 2}, {"schedule": "revolve", "snapshots": 5},
             {"schedule": "revolve", "snapshots": 100}, {"schedule": "segments"},
             {"schedule": "segments", "segment_length": 1},
             {"schedule": "segments", "segment_length": 7},
             {"schedule": "segments", "segment_length": 60}]


@pytest.mark.parametrize("kw", SCHEDULES, ids=str)
def test_loop_gradient_equals_the_plain_tape(kw):
    want = dr.grad(python_loop, argnums=(0, 1))(THETA, XP)
    got = dr.grad(lambda t, x: pend_loss(t, x, **kw), argnums=(0, 1))(THETA, XP)
    close(got, want, rtol=1e-13)
    close(pend_loss(THETA, **kw), python_loop(THETA), rtol=0, atol=0)


def test_loop_against_finite_differences():
    np.testing.assert_allclose(dr.grad(pend_loss)(THETA), fd(python_loop, THETA),
                               rtol=1e-6)


def counting(step):
    calls = [0]

    def counted(x, *a):
        calls[0] += 1
        return step(x, *a)
    return counted, calls


@pytest.mark.parametrize("n", [1, 2, 3, 7, 20, 57])
@pytest.mark.parametrize("s", [1, 2, 3, 4, 9])
def test_revolve_runs_step_the_optimal_number_of_times(n, s):
    """Griewank and Walther: t n - beta(s + 1, t - 1) advances, t the least with
    C(s + t, s) >= n; the forward pass's n runs include the first sweep's n - 1, and each
    step is recorded once more."""
    t = 0
    while comb(s + t, s) < n:
        t += 1
    advances = t * n - (comb(s + 1 + t - 1, s + 1) if t >= 1 else 0)
    step, calls = counting(pendulum_rk4)
    dr.grad(lambda th: np.sum(dr.checkpoint_loop(step, XP, n, th, snapshots=s)))(THETA)
    assert calls[0] == advances + n + 1
    assert revolve_advances(n, s) == advances


@pytest.mark.parametrize("n,m", [(1, 1), (10, 3), (60, 8), (60, 60)])
def test_segments_run_step_twice(n, m):
    step, calls = counting(pendulum_rk4)
    dr.grad(lambda th: np.sum(dr.checkpoint_loop(step, XP, n, th, schedule="segments",
                                                 segment_length=m)))(THETA)
    assert calls[0] == 2 * n


def test_the_split_is_optimal_by_dynamic_programming():
    """R(l, s) = min over m of m + R(l - m, s - 1) + R(m, s) (store the state at m,
    reverse the tail with one state fewer, then the head): the split the schedule takes
    attains it, and the minimum is the closed form, for l <= 80, s <= 5."""
    L, S = 80, 5
    R = {}
    for s in range(1, S + 1):
        for ln in range(1, L + 1):
            if ln == 1:
                R[ln, s] = 0
            elif s == 1:
                R[ln, s] = ln * (ln - 1) // 2
            else:
                R[ln, s] = min(m + R[ln - m, s - 1] + R[m, s] for m in range(1, ln))
            assert R[ln, s] == revolve_advances(ln, s)
            if ln > 1 and s > 1:
                m = _split_point(ln, s)
                assert 1 <= m < ln and m + R[ln - m, s - 1] + R[m, s] == R[ln, s]
    assert _first_sweep(10, 3)[-1] == 9


def test_snapshots_bound_the_states_held():
    """The most states held at once in the backward pass is the snapshots given."""
    held = []
    from dualrev import checkpointing

    orig = checkpointing._LoopBody.backward

    def spy(self, *a):
        out = orig(self, *a)
        held.append(self.stored)
        return out
    checkpointing._LoopBody.backward = spy
    try:
        for s in (1, 2, 4, 8):
            dr.grad(lambda th, s=s: pend_loss(th, n=40, snapshots=s))(THETA)
    finally:
        checkpointing._LoopBody.backward = orig
    assert held == [1, 2, 4, 8]


def test_loop_nesting_and_modes():
    f = lambda th: pend_loss(th, n=12)  # noqa: E731
    g = lambda th: python_loop(th, n=12)  # noqa: E731
    v = np.array([0.3, -1.1])
    close(dr.hessian(f)(THETA), dr.hessian(g)(THETA), rtol=1e-12)
    close(dr.jacrev(dr.jacrev(f))(THETA), dr.hessian(g)(THETA), rtol=1e-12)  # reverse twice
    scalar = lambda a, h: h(np.array([a, 0.3]))  # noqa: E731
    close(dr.grad(dr.grad(lambda a: scalar(a, f)))(9.0),
          dr.grad(dr.grad(lambda a: scalar(a, g)))(9.0), rtol=1e-12)
    close(dr.hvp(f)(THETA, v), dr.hvp(g)(THETA, v), rtol=1e-12)
    close(dr.jvp(f, (THETA,), (v,)), dr.jvp(g, (THETA,), (v,)))
    traj = lambda th: dr.checkpoint_loop(pendulum_rk4, XP, 12, th)  # noqa: E731

    def traj_plain(th):
        x = XP
        for _ in range(12):
            x = pendulum_rk4(x, th)
        return x
    for t in (dr.jacrev, dr.jacfwd, dr.jacobian):
        close(t(traj)(THETA), t(traj_plain)(THETA))
    thetas = np.array([[9.0, 0.1], [4.0, 0.5], [1.0, 0.0]])
    close(dr.vmap(dr.grad(f))(thetas), dr.vmap(dr.grad(g))(thetas))


def test_loop_pytree_state_closures_and_static_arguments():
    def loss(k, c, sched):
        def step(state, k, dt, how):
            assert how == "explicit"  # a static argument, passed through
            x, cost = state
            nxt = x + dt * np.sin(k * x) * c  # c: a traced value step closes over
            return nxt, cost + dt * np.sum(nxt ** 2)
        x, cost = dr.checkpoint_loop(step, (X, 0.0), 30, k, 0.05, "explicit",
                                     schedule=sched)
        return cost + np.sum(x)
    want = dr.grad(loss, argnums=(0, 1))(0.7, 1.3, "store_all")
    for sched in ("revolve", "segments"):
        close(dr.grad(loss, argnums=(0, 1))(0.7, 1.3, sched), want, rtol=1e-13)
    np.testing.assert_allclose(want[1], (loss(0.7, 1.3 + 1e-6, "revolve")
                                         - loss(0.7, 1.3 - 1e-6, "revolve")) / 2e-6,
                               rtol=1e-6)


def test_loop_replay():
    g = dr.grad(lambda th: pend_loss(th, n=15))
    r = dr.replay(g)
    for th in (THETA, THETA * 1.1, THETA * 0.9):
        close(r(th), dr.grad(lambda th: python_loop(th, n=15))(th), rtol=1e-13)
    assert r.stats.records == 1 and r.stats.replays == 2


def test_loop_edge_counts_and_a_step_that_writes_into_its_state():
    for n in (0, 1, 2):
        close(dr.grad(lambda th, n=n: pend_loss(th, n=n) + np.sum(th))(THETA),
              dr.grad(lambda th, n=n: python_loop(th, n=n) + np.sum(th))(THETA))

    def writes(x, a):
        x *= 0.5  # in place on a plain state: the kept states must not change
        return np.sin(a * x) + 2 * x

    def ref(a):
        x = X
        for _ in range(12):
            x = np.sin(a * x / 2) + x
        return np.sum(x)
    before = X.copy()
    for kw in ({"snapshots": 2}, {"schedule": "segments", "segment_length": 5}):
        close(dr.grad(lambda a, kw=kw: np.sum(dr.checkpoint_loop(writes, X, 12, a, **kw)))(
            0.6), dr.grad(ref)(0.6))
        close(dr.grad(lambda a, kw=kw: np.sum(dr.checkpoint_loop(
            writes, X.copy(), 12, a, **kw)))(0.6), dr.grad(ref)(0.6))
    assert np.array_equal(X, before)  # the caller's array is not written


@pytest.mark.parametrize("call,match", [
    (lambda: dr.checkpoint_loop(np.sin, np.ones(2), 3, schedule="binomial"), "unknown"),
    (lambda: dr.checkpoint_loop(np.sin, np.ones(2), 3, schedule="segments", snapshots=2),
     "segment_length"),
    (lambda: dr.checkpoint_loop(np.sin, np.ones(2), 3, segment_length=2), "snapshots"),
    (lambda: dr.checkpoint_loop(np.sin, np.ones(2), 3, snapshots=0), ">= 1"),
    (lambda: dr.checkpoint_loop(np.sin, np.ones(2), -1), ">= 0"),
    (lambda: dr.checkpoint_loop(np.sin, np.ones(2), 2.0), "int"),
    (lambda: dr.checkpoint_loop(np.sin, np.arange(2), 3), "float"),
    (lambda: dr.grad(lambda a: np.sum(dr.checkpoint_loop(
        lambda x, a: (x * a, x), np.ones(2), 3, a)))(1.0), "structure"),
    (lambda: dr.grad(lambda a: np.sum(dr.checkpoint_loop(
        lambda x, a: np.append(x, a), np.ones(2), 3, a)))(1.0), "shape"),
])
def test_loop_refusals(call, match):
    with pytest.raises(dr.CheckpointError, match=match):
        call()


def _peak(fn, *args):
    fn(*args)  # warm: caches, first-call allocations
    tracemalloc.start()
    try:
        fn(*args)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_grows_like_the_square_root_of_the_steps():
    """Peak traced memory of grad over n and 10 n steps: the plain tape grows about 10x,
    revolve (default snapshots ~ sqrt(2 n)) and segments (length ~ sqrt(n)) at most 4x."""
    x0 = np.linspace(0.5, 1.5, 50)

    def step(x, a):
        return x + 0.01 * np.tanh(a * x) * np.cos(x)

    def peak(n, sched):
        return _peak(dr.grad(lambda a: np.sum(dr.checkpoint_loop(step, x0, n, a,
                                                                 schedule=sched))), 0.8)
    ratios = {s: peak(200, s) / peak(20, s) for s in ("store_all", "revolve", "segments")}
    assert ratios["store_all"] > 7, ratios
    assert ratios["revolve"] < 4 and ratios["segments"] < 4, ratios
    assert peak(200, "revolve") < peak(200, "store_all") / 5


def test_strong_zeros_of_the_careful_replay_reach_inside():
    """A 0 * inf inside the re-run (the untaken branch of np.where at sqrt's 0) is the
    plain function's strong zero: the careful replay records the re-runs on careful
    tapes too, so the result is the plain one, finite, with no warning."""
    import warnings

    h = lambda x: np.where(x > 0, np.sqrt(np.abs(x)), 0.0)  # noqa: E731
    hc = dr.checkpoint(h)
    x = np.array([0.0, 1.0, 4.0])

    def step(x, a):
        return x + a * h(x)

    def loop(a, kw):
        if kw is None:
            y = x
            for _ in range(6):
                y = step(y, a)
            return np.sum(y)
        return np.sum(dr.checkpoint_loop(step, x, 6, a, **kw))
    with warnings.catch_warnings():
        warnings.simplefilter("error", dr.NonFiniteDerivativeWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's own, at sqrt'(0)
        close(dr.grad(lambda x: np.sum(hc(x)))(x), dr.grad(lambda x: np.sum(h(x)))(x))
        close(dr.jacobian(lambda x: hc(x) * x[0])(x), dr.jacobian(lambda x: h(x) * x[0])(x))
        want = dr.grad(lambda v: loop(v[0], None) + v[1])(np.array([0.1, 0.0]))
        assert np.all(np.isfinite(want))
        for kw in ({"snapshots": 2}, {"schedule": "segments", "segment_length": 4}):
            close(dr.grad(lambda v, kw=kw: loop(v[0], kw) + v[1])(np.array([0.1, 0.0])),
                  want)


def test_complex_loop_state_follows_the_plain_loop():
    def step(z, a):
        return z * np.exp(1j * a * 0.1) + 0.01 * z ** 2
    z0 = np.array([0.3 + 0.2j, -0.1 + 0.5j])

    def loss(z, a, sched):
        return np.abs(np.sum(dr.checkpoint_loop(step, z, 40, a, schedule=sched))) ** 2
    want = dr.grad(loss, argnums=(0, 1))(z0, 0.7, "store_all")
    for sched in ("revolve", "segments"):
        close(dr.grad(loss, argnums=(0, 1))(z0, 0.7, sched), want, rtol=1e-13)


def test_under_vmap_alone_the_function_just_runs():
    ck = dr.checkpoint(lambda t: t[0] * t[1])
    close(dr.vmap(lambda a: ck((a, 3)))(np.arange(3.0)), 3 * np.arange(3.0))


def test_loop_arguments_mixing_traced_values_and_objects():
    class Model:
        def __init__(self, k):
            self.k, self.name = k, "decay"

    def step(x, model, cfg):
        assert model.name == "decay" and cfg["order"] == 1
        return x - cfg["dt"] * model.k * np.sin(x)

    def loss(k, sched):
        cfg = {"dt": 0.1, "order": 1}
        return np.sum(dr.checkpoint_loop(step, X, 20, Model(k), cfg, schedule=sched))
    want = dr.grad(loss)(0.9, "store_all")
    close(dr.grad(loss)(0.9, "revolve"), want, rtol=1e-13)
    close(dr.grad(loss)(0.9, "segments"), want, rtol=1e-13)
    np.testing.assert_allclose(want, (loss(0.9 + 1e-6, "revolve")
                                      - loss(0.9 - 1e-6, "revolve")) / 2e-6, rtol=1e-6)


def test_an_integer_leaf_in_a_pytree_output_is_refused_naming_checkpoint():
    fc = dr.checkpoint(lambda x: (np.sin(x), np.argmax(x)))
    assert fc(X)[1] == np.argmax(X)  # a plain call runs as it is
    with pytest.raises(dr.CheckpointError, match="checkpoint.*float or complex"):
        dr.grad(lambda x: np.sum(fc(x)[0]))(X)


@given(n=st.integers(1, 60), s=st.integers(1, 8), m=st.integers(1, 70),
       seed=st.integers(0, 2 ** 32 - 1))
def test_random_loops_and_schedules(n, s, m, seed):
    """Random lengths, snapshots and segment lengths on a random scalar-parameter loop:
    the gradients equal the plain tape's, and step runs the formula's number of times."""
    rng = np.random.default_rng(seed)
    x0, a, b = rng.normal(size=3), rng.uniform(0.5, 2.0), rng.normal()
    calls = [0]

    def step(x, a):
        calls[0] += 1
        return x + 0.05 * np.sin(a * x + b) * np.cos(x)

    def loss(v, **kw):
        return np.sum(dr.checkpoint_loop(step, v[:3], n, v[3], **kw) ** 2)
    v = np.append(x0, a)
    want = dr.grad(loss)(v, schedule="store_all")
    calls[0] = 0
    close(dr.grad(loss)(v, snapshots=s), want, rtol=1e-13)
    assert calls[0] == revolve_advances(n, s) + n + 1
    calls[0] = 0
    close(dr.grad(loss)(v, schedule="segments", segment_length=m), want, rtol=1e-13)
    assert calls[0] == 2 * n


def test_jacobian_pushes_tangents_through_the_entry():
    """More outputs than inputs: jacobian pushes its basis tangents along the tape, and
    the entry's JVP rule runs the body under a forward trace."""
    f = lambda v: v[0] * np.ones(5) + v[1] * X  # noqa: E731
    v = np.array([0.4, -0.7])
    close(dr.jacobian(lambda v: CK(X, f(v)) * v[0])(v),
          dr.jacobian(lambda v: body(X, f(v)) * v[0])(v))

    def traj(a):
        return dr.checkpoint_loop(pendulum_rk4, XP, 12, np.stack([a, 0.3 * a])) * a

    def traj_plain(a):
        x = XP
        for _ in range(12):
            x = pendulum_rk4(x, np.stack([a, 0.3 * a]))
        return x * a
    close(dr.jacobian(traj)(np.float64(9.0)), dr.jacobian(traj_plain)(np.float64(9.0)))
    close(dr.jacobian(traj)(np.float64(9.0)), dr.jacfwd(traj_plain)(np.float64(9.0)))


def test_a_drawing_shows_one_entry_and_the_re_run():
    text = str(dr.graph(ck_loss)(0.7))
    assert text.count("= checkpoint(") == 2 and "body=checkpoint(body)" in text  # two calls
    contexts = dr.graph(dr.grad(ck_loss))(0.7).contexts
    assert any("checkpoint(body), run again for the backward pass" in c for c in contexts)


def test_thousands_of_snapshots_need_no_recursion():
    """The schedule's ranges nest as deep as the snapshots (here about 2000 levels, past
    Python's recursion limit): a stack of frames, not recursive calls."""
    step = lambda x, a: x + 0.001 * np.sin(a * x)  # noqa: E731
    loss = lambda a, **kw: dr.checkpoint_loop(step, 0.5, 3000, a, **kw)  # noqa: E731
    close(dr.grad(loss)(1.1, snapshots=2000), dr.grad(loss)(1.1, schedule="store_all"),
          rtol=1e-13)
