"""dualrev beside its peers: seconds per call and the ratio to plain NumPy evaluating the
same function in the same run.

    python benchmarks/run.py                 # full table
    python benchmarks/run.py --quick         # fewer repeats, smaller sizes skipped
    python benchmarks/run.py --save FILE.md  # also write the table as markdown

Peers (autograd, jax, torch) are optional: a row is skipped when its library is absent.
Each time is the median of repeated calls in this process, after a warm-up call.
"""

from __future__ import annotations

import argparse
import inspect
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

# BLAS threads pinned before NumPy loads its BLAS, for every library alike (the table
# records the setting): threaded BLAS made small GEMMs jump by 30x between runs.
BLAS_THREADS = os.environ.setdefault("OMP_NUM_THREADS", "1")
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, BLAS_THREADS)

import numpy as np  # noqa: E402
import scipy.optimize  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import dualrev as dr  # noqa: E402
from dualrev import namespace  # noqa: E402

try:
    import autograd
    import autograd.numpy as anp
except ImportError:
    autograd = None
try:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
except ImportError:
    jax = None
try:
    import torch
    import torch.func as tf

    torch.set_num_threads(int(BLAS_THREADS))
except ImportError:
    torch = None

ROWS: list[tuple[str, str, float, float]] = []  # workload, library, seconds, ratio
QUICK = False


def median_time(fn: Callable[[], Any], budget: float = 0.4) -> float:
    fn()  # warm-up (and jit compile for jax.jit)
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    reps = int(min(max(budget / once, 3), 2000 if not QUICK else 200))
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _per_call(fn: Callable[[], Any], calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def paired_ratio(base: Callable[[], Any], fn: Callable[[], Any]) -> tuple[float, float]:
    """Seconds per call of ``fn`` and its ratio to ``base``, timed in alternating blocks
    (each warm, each ~25 ms): a shared machine's drifting speed affects both alike, and
    neither evicts the other's data from cache between calls. Medians over the blocks."""
    fn()
    base()
    k_fn = max(1, int(0.025 / max(_per_call(fn, 1), 1e-7)))
    k_base = max(1, int(0.025 / max(_per_call(base, 3), 1e-7)))
    blocks = 4 if QUICK else 10
    times, ratios = [], []
    for _ in range(blocks):
        tb = _per_call(base, k_base)
        tf_ = _per_call(fn, k_fn)
        times.append(tf_)
        ratios.append(tf_ / tb)
    return statistics.median(times), statistics.median(ratios)


def report(workload: str, base_fn: Callable[[], Any],
           entries: dict[str, Callable[[], Any] | None]) -> None:
    base = median_time(base_fn)
    ROWS.append((workload, "numpy f(x)", base, 1.0))
    print(f"\n{workload}\n  {'numpy f(x)':28s} {base:11.3e} s      1.0x")
    for lib, fn in entries.items():
        if fn is None:
            continue
        try:
            t, r = paired_ratio(base_fn, fn)
        except Exception as e:  # a peer that cannot run this workload
            print(f"  {lib:28s} failed: {type(e).__name__}: {str(e)[:60]}")
            continue
        ROWS.append((workload, lib, t, r))
        print(f"  {lib:28s} {t:11.3e} s {r:8.1f}x", flush=True)


# ------------------------------------------------------------------ workloads
def rosen(x: Any, xp: Any = np) -> Any:
    return xp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def rosen_loop(x: Any) -> Any:
    s = 0.0
    for i in range(len(x) - 1):
        s = s + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2
    return s


def bench_rosen_grad() -> None:
    for n in (10, 10**4, 10**6):
        x = np.random.default_rng(0).uniform(-1, 1, n)
        base = lambda: rosen(x)
        rg = dr.replay(dr.grad(rosen))
        entries: dict[str, Any] = {"dualrev grad": lambda: dr.grad(rosen)(x),
                                   "dualrev replay(grad)": lambda: rg(x)}
        if autograd:
            g = autograd.grad(lambda x: rosen(x, anp))
            entries["autograd grad"] = lambda: g(x)
        if jax:
            xj = jnp.asarray(x)
            ge = jax.grad(lambda x: rosen(x, jnp))
            gj = jax.jit(ge)
            entries["jax grad (eager)"] = lambda: ge(xj).block_until_ready()
            entries["jax grad (jit)"] = lambda: gj(xj).block_until_ready()
        if torch:
            xt = torch.from_numpy(x)
            gt = tf.grad(lambda x: rosen(x, torch))
            entries["torch.func grad"] = lambda: gt(xt)
        report(f"1. grad rosen n={n}", base, entries)


def bench_scalar_loop() -> None:
    for n in (50, 1000):
        x = np.random.default_rng(0).uniform(-1, 1, n)
        xl = [float(v) for v in x]
        base = lambda: rosen_loop(xl)
        rg = dr.replay(dr.grad(rosen_loop))
        entries: dict[str, Any] = {"dualrev grad": lambda: dr.grad(rosen_loop)(x),
                                   "dualrev replay(grad)": lambda: rg(x)}
        if autograd:
            g = autograd.grad(rosen_loop)
            entries["autograd grad"] = lambda: g(x)
        if jax and n <= 50:
            xj = jnp.asarray(x)
            ge = jax.grad(rosen_loop)
            entries["jax grad (eager)"] = lambda: ge(xj).block_until_ready()
        if torch:
            xt = torch.from_numpy(x)
            gt = tf.grad(rosen_loop)
            entries["torch.func grad"] = lambda: gt(xt)
        report(f"2. grad scalar loop n={n}", base, entries)


def bench_jacobian() -> None:
    for n in (20, 200):
        rng = np.random.default_rng(1)
        A = rng.standard_normal((n, n)) / np.sqrt(n)
        x = rng.standard_normal(n)
        f = lambda x: np.tanh(A @ x)
        base = lambda: f(x)
        rf, rr, rj = dr.replay(dr.jacfwd(f)), dr.replay(dr.jacrev(f)), dr.replay(dr.jacobian(f))
        entries: dict[str, Any] = {
            "dualrev jacfwd": lambda: dr.jacfwd(f)(x),
            "dualrev jacrev": lambda: dr.jacrev(f)(x),
            "dualrev jacobian": lambda: dr.jacobian(f)(x),
            "dualrev replay(jacfwd)": lambda: rf(x),
            "dualrev replay(jacrev)": lambda: rr(x),
            "dualrev replay(jacobian)": lambda: rj(x),
        }
        if autograd:
            ja = autograd.jacobian(lambda x: anp.tanh(anp.dot(A, x)))
            entries["autograd jacobian"] = lambda: ja(x)
        if jax:
            Aj, xj = jnp.asarray(A), jnp.asarray(x)
            fj = lambda x: jnp.tanh(Aj @ x)
            jf, jr = jax.jacfwd(fj), jax.jacrev(fj)
            jjf, jjr = jax.jit(jf), jax.jit(jr)
            entries["jax jacfwd (eager)"] = lambda: jf(xj).block_until_ready()
            entries["jax jacrev (eager)"] = lambda: jr(xj).block_until_ready()
            entries["jax jacfwd (jit)"] = lambda: jjf(xj).block_until_ready()
            entries["jax jacrev (jit)"] = lambda: jjr(xj).block_until_ready()
        if torch:
            At, xt = torch.from_numpy(A), torch.from_numpy(x)
            ft = lambda x: torch.tanh(At @ x)
            tjf, tjr = tf.jacfwd(ft), tf.jacrev(ft)
            entries["torch.func jacfwd"] = lambda: tjf(xt)
            entries["torch.func jacrev"] = lambda: tjr(xt)
        report(f"3. jacobian tanh(Ax) n={n}", base, entries)


def mlp_problem(n: int) -> tuple[Callable[..., Any], np.ndarray, np.ndarray, np.ndarray]:
    """A one-hidden-layer tanh network with 5 hidden units and n parameters in all."""
    h = 5
    d = (n - h) // h
    rng = np.random.default_rng(2)
    X = rng.standard_normal((32, d))
    y = rng.standard_normal(32)
    w = rng.standard_normal(d * h + h) / np.sqrt(d)

    def loss(w: Any, X: Any = X, y: Any = y, xp: Any = np) -> Any:
        W1 = xp.reshape(w[: d * h], (d, h))
        w2 = w[d * h:]
        r = xp.tanh(X @ W1) @ w2 - y
        return xp.mean(r * r)

    return loss, w, X, y


def bench_hessian() -> None:
    for n in (20, 100):
        loss, w, X, y = mlp_problem(n)
        base = lambda: loss(w)
        rh = dr.replay(dr.hessian(loss))
        entries: dict[str, Any] = {"dualrev hessian": lambda: dr.hessian(loss)(w),
                                   "dualrev replay(hessian)": lambda: rh(w)}
        if autograd:
            ha = autograd.hessian(lambda w: loss(w, xp=anp))
            entries["autograd hessian"] = lambda: ha(w)
        if jax:
            Xj, yj, wj = jnp.asarray(X), jnp.asarray(y), jnp.asarray(w)
            hj = jax.hessian(lambda w: loss(w, Xj, yj, jnp))
            hjj = jax.jit(hj)
            entries["jax hessian (eager)"] = lambda: hj(wj).block_until_ready()
            entries["jax hessian (jit)"] = lambda: hjj(wj).block_until_ready()
        if torch:
            Xt, yt, wt = torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(w)
            ht = tf.hessian(lambda w: loss(w, Xt, yt, torch))
            entries["torch.func hessian"] = lambda: ht(wt)
        report(f"4. hessian MLP n={len(w)}", base, entries)

    n = 10**4
    x = np.random.default_rng(3).uniform(-1, 1, n)
    v = np.random.default_rng(4).standard_normal(n)
    base = lambda: rosen(x)
    rv = dr.replay(dr.hvp(rosen))
    entries = {"dualrev hvp": lambda: dr.hvp(rosen)(x, v), "dualrev replay(hvp)": lambda: rv(x, v)}
    if autograd:
        ha = autograd.hessian_vector_product(lambda x: rosen(x, anp))
        entries["autograd hvp"] = lambda: ha(x, v)
    if jax:
        xj, vj = jnp.asarray(x), jnp.asarray(v)
        gj = jax.grad(lambda x: rosen(x, jnp))
        hv = lambda x, v: jax.jvp(gj, (x,), (v,))[1]
        hvj = jax.jit(hv)
        entries["jax hvp (eager)"] = lambda: hv(xj, vj).block_until_ready()
        entries["jax hvp (jit)"] = lambda: hvj(xj, vj).block_until_ready()
    if torch:
        xt, vt = torch.from_numpy(x), torch.from_numpy(v)
        gt = tf.grad(lambda x: rosen(x, torch))
        entries["torch.func hvp"] = lambda: tf.jvp(gt, (xt,), (vt,))[1]
    report(f"4. hvp rosen n={n}", base, entries)


def bench_optimize() -> None:
    x0 = np.full(100, -0.5)
    opts = {"method": "BFGS", "options": {"gtol": 1e-8}}

    def run(fun_and_grad: Callable[[np.ndarray], Any]) -> Any:
        return scipy.optimize.minimize(fun_and_grad, x0, jac=True, **opts)

    hand = lambda x: (scipy.optimize.rosen(x), scipy.optimize.rosen_der(x))
    base = lambda: run(hand)
    entries: dict[str, Any] = {
        "dualrev value_and_grad": lambda: run(dr.value_and_grad(rosen)),
        # a fresh replay per minimisation: its recording and compilation are counted
        "dualrev replay(value_and_grad)": lambda: run(dr.replay(dr.value_and_grad(rosen))),
    }
    if "replay" in inspect.signature(dr.optimize.minimize).parameters:
        entries["dualrev.optimize.minimize (replay)"] = lambda: dr.optimize.minimize(
            rosen, x0, replay=True, **opts)
        entries["dualrev.optimize.minimize (replay=False)"] = lambda: dr.optimize.minimize(
            rosen, x0, replay=False, **opts)
    else:
        entries["dualrev.optimize.minimize"] = lambda: dr.optimize.minimize(rosen, x0, **opts)
    if autograd:
        vg = autograd.value_and_grad(lambda x: rosen(x, anp))
        entries["autograd value_and_grad"] = lambda: run(vg)
    if jax:
        vgj = jax.jit(jax.value_and_grad(lambda x: rosen(x, jnp)))
        entries["jax value_and_grad (jit)"] = lambda: run(
            lambda x: tuple(np.asarray(v) for v in vgj(x)))
    if torch:
        gt = tf.grad_and_value(lambda x: rosen(x, torch))

        def tvg(x: np.ndarray) -> Any:
            g, v = gt(torch.from_numpy(x))
            return float(v), g.numpy()
        entries["torch.func grad_and_value"] = lambda: run(tvg)
    res = run(dr.value_and_grad(rosen))
    hand_res = run(hand)
    rep = run(dr.replay(dr.value_and_grad(rosen)))
    print(f"\n  (BFGS: {res.nit} iterations, {res.nfev} evaluations, f = {res.fun:.2e}; "
          f"rosen_der: {hand_res.nit} iterations; replay: {rep.nit} iterations)")
    report("5. BFGS rosen n=100 (ratio to hand-written rosen_der)", base, entries)


def bench_ndimage() -> None:
    import scipy.ndimage as ndi

    from dualrev.catalogue.scipy_functions import ORIGINALS

    rng = np.random.default_rng(3)
    img = rng.standard_normal((256, 256))
    observed = ndi.gaussian_filter(img, 2.0)
    original = ORIGINALS[ndi.gaussian_filter]
    small = rng.standard_normal((8, 8))
    # an untraced call pays the dispatcher's check for traced arguments, nothing else
    report("7a. scipy.ndimage.gaussian_filter 8x8, plain call (ratio to SciPy's own)",
           lambda: original(small, 1.0), {"through dualrev's dispatcher":
                                          lambda: ndi.gaussian_filter(small, 1.0)})

    def deblur(u: Any) -> Any:
        return np.sum((ndi.gaussian_filter(u, 2.0) - observed) ** 2)

    report("7b. grad of a deblurring loss, gaussian_filter 256x256", lambda: deblur(img),
           {"dualrev grad": lambda: dr.grad(deblur)(img)})
    grid = np.indices((64, 64), dtype=float) + 0.3 * rng.standard_normal((2, 64, 64))
    tex = rng.standard_normal((64, 64))

    def warp(c: Any) -> Any:
        return np.sum(ndi.map_coordinates(tex, c, order=3, mode="mirror") ** 2)

    report("7c. grad of a warp loss in the coordinates, map_coordinates order 3 64x64",
           lambda: warp(grid), {"dualrev grad": lambda: dr.grad(warp)(grid)})


def bench_memory() -> None:
    n = 10**6
    x = np.random.default_rng(0).uniform(-1, 1, n)
    size = x.nbytes

    def peak(fn: Callable[[], Any]) -> float:
        fn()
        tracemalloc.start()
        tracemalloc.reset_peak()
        fn()
        p = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return p / size

    print("\n6. peak memory of grad rosen n=1e6, in input-sized arrays (tracemalloc)")
    rows = {"numpy f(x)": lambda: rosen(x), "dualrev grad": lambda: dr.grad(rosen)(x)}
    if autograd:
        g = autograd.grad(lambda x: rosen(x, anp))
        rows["autograd grad"] = lambda: g(x)
    for lib, fn in rows.items():
        p = peak(fn)
        ROWS.append(("6. peak memory grad rosen n=1e6 (input sizes)", lib, float("nan"), p))
        print(f"  {lib:28s} {p:8.1f} arrays")


def bench_namespace() -> None:
    """The NumPy/math names replaced while a transform runs (dualrev/namespace.py): what
    untraced calls pay outside a transform (nothing: the names are NumPy's own) and
    inside one (the wrapper's check), what a transform call pays to install and restore
    them, and traced np.array of scalars against np.stack. Each ratio here is paired with
    the row's first line (not with a NumPy f(x))."""
    import math

    from dualrev import namespace
    from dualrev.catalogue import construction as wrappers

    a = np.arange(3.0)
    assert np.array is namespace.original(np, "array") and not namespace.active()
    untraced = {
        "np.array([1.0, 2.0])": (lambda: np.array([1.0, 2.0]),
                                 lambda: wrappers.array([1.0, 2.0])),
        "np.asarray(a)": (lambda: np.asarray(a), lambda: wrappers.asarray(a)),
        "math.exp(1.0)": (lambda: math.exp(1.0),
                          lambda: wrappers.MATH_WRAPPERS["exp"](1.0)),
        "np.sum(a)": (lambda: np.sum(a), lambda: namespace._REPLACEMENTS[(np, "sum")](a)),
    }
    for name, (plain, wrapped) in untraced.items():
        # no transform runs: np.array is NumPy's own (the base line); while one runs it is
        # the wrapper, called directly here (the same call, without the transform's cost)
        report(f"7. untraced {name} (base: no transform running, NumPy's own)", plain,
               {"while a transform runs (the wrapper)": wrapped})

    saved = dict(namespace._REPLACEMENTS)

    def without(fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            namespace._REPLACEMENTS.clear()
            namespace._plan_size = -1
            try:
                return fn()
            finally:
                namespace._REPLACEMENTS.update(saved)
                namespace._plan_size = -1
        return run

    x10 = np.random.default_rng(0).uniform(-1, 1, 10)
    x = np.random.default_rng(0).uniform(-1, 1, 1000)
    for what, fn in ((f"grad rosen n=10 ({len(saved)} names installed and restored)",
                      lambda: dr.grad(rosen)(x10)),
                     ("grad scalar loop n=1000", lambda: dr.grad(rosen_loop)(x))):
        report(f"7. {what} (base: no names registered)", without(fn),
               {"dualrev grad, names replaced": fn})

    for n in (3, 100):
        x = np.random.default_rng(0).uniform(-1, 1, n)
        fa = lambda x: np.sum(np.array([x[i] for i in range(len(x))]) ** 2)  # noqa: E731
        fs = lambda x: np.sum(np.stack([x[i] for i in range(len(x))]) ** 2)  # noqa: E731
        report(f"7. grad of sum(np.array([x[0], ..., x[{n - 1}]]) ** 2) (base: np.stack)",
               lambda: dr.grad(fs)(x), {"dualrev grad, np.array": lambda: dr.grad(fa)(x)})

def heat(alpha: Any, u0: Any, steps: int = 200) -> Any:
    """An explicit heat-equation step written as NumPy users write it: a copy of the
    initial state updated in place (only alpha is differentiated)."""
    u = u0.copy()
    for _ in range(steps):
        u[1:-1] += alpha * (u[2:] - 2 * u[1:-1] + u[:-2])
    return np.sum(u ** 2)


def bench_buffers() -> None:
    u0 = np.sin(np.linspace(0.0, np.pi, 100))
    alpha, h = 0.2, 1e-6
    entries: dict[str, Any] = {
        "dualrev grad": lambda: dr.grad(heat)(alpha, u0),
        "dualrev jvp": lambda: dr.jvp(lambda a: heat(a, u0), (alpha,), (1.0,)),
        "central differences (2 runs)": lambda: (heat(alpha + h, u0) - heat(alpha - h, u0))
        / (2 * h),
    }
    if torch:
        ut = torch.from_numpy(u0)

        def torch_grad() -> Any:
            a = torch.tensor(alpha, dtype=torch.float64, requires_grad=True)
            u = ut.clone()
            for _ in range(200):
                u[1:-1] += a * (u[2:] - 2 * u[1:-1] + u[:-2])
            return torch.autograd.grad(torch.sum(u ** 2), a)[0]

        entries["torch autograd"] = torch_grad
    report("7. grad heat equation, u0.copy() written in place (100 cells, 200 steps)",
           lambda: heat(alpha, u0), entries)

    # What np.zeros costs: outside a transform it is NumPy's own function; inside one it
    # is dualrev's wrapper (a buffer when the user's code calls it, NumPy's array when a
    # library does), measured per call as 1000 calls in a function under grad against
    # the same function calling NumPy's original.
    original = namespace.original(np, "zeros")
    assert np.zeros is original  # no transform runs: nothing is replaced
    x = np.ones(3)

    def calls(make: Any) -> Any:
        def f(x: Any) -> Any:
            for _ in range(1000):
                make(100)
            return np.sum(x)
        return f

    def user_calls(x: Any) -> Any:
        for _ in range(1000):
            np.zeros(100)  # the user's call: a buffer of the running grad
        return np.sum(x)

    report("8. np.zeros(100): per call", lambda: original(100),
           {"np.zeros outside a transform": lambda: np.zeros(100)})
    one = median_time(lambda: original(100))
    for label, fn in (("np.zeros in grad (user code: buffer)", dr.grad(user_calls)),
                      ("NumPy's original in grad", dr.grad(calls(original)))):
        t = median_time(lambda fn=fn: fn(x)) / 1000
        ROWS.append(("8. np.zeros(100): per call", label, t, t / one))
        print(f"  {label:28s} {t:11.3e} s {t / one:8.1f}x")


def sin_loop(y: Any, xp: Any = np, steps: int = 1000) -> Any:
    """The issue's scalar loop: ``y = sin(y) * 1.0001 + 0.001``, ``steps`` times."""
    for _ in range(steps):
        y = xp.sin(y) * 1.0001 + 0.001
    return y


def bench_replay_loop() -> None:
    """Replayed grad of a scalar loop against the same loop on Python floats (math.sin)."""
    y0 = 0.3
    base = lambda: sin_loop(y0, math)
    rg = dr.replay(dr.grad(sin_loop))
    entries: dict[str, Any] = {"dualrev grad": lambda: dr.grad(sin_loop)(y0),
                               "dualrev replay(grad)": lambda: rg(y0)}
    if autograd:
        ga = autograd.grad(lambda y: sin_loop(y, anp))
        entries["autograd grad"] = lambda: ga(y0)
    if jax:
        def jloop(y: Any) -> Any:
            return jax.lax.fori_loop(0, 1000, lambda i, y: jnp.sin(y) * 1.0001 + 0.001, y)
        gj = jax.jit(jax.grad(jloop))
        entries["jax grad (jit, fori_loop)"] = lambda: gj(y0).block_until_ready()
    if torch:
        gt = tf.grad(lambda y: sin_loop(y, torch))
        yt = torch.tensor(y0, dtype=torch.float64)
        entries["torch.func grad"] = lambda: gt(yt)
    report("10. grad of y = sin(y) * 1.0001 + 0.001, 1000 steps (ratio to the loop on "
           "Python floats)", base, entries)


def bench_recording() -> None:
    """What a replay's first calls cost against one dynamic call of the transform: the
    recording (first call) and the compilation (second call, which also runs)."""
    x10 = np.random.default_rng(0).uniform(-1, 1, 10)
    loss, w, _, _ = mlp_problem(20)
    cases = {"grad rosen n=10": (lambda: dr.grad(rosen), (x10,)),
             "grad scalar loop 1000 steps": (lambda: dr.grad(sin_loop), (0.3,)),
             "hessian MLP n=20": (lambda: dr.hessian(loss), (w,))}
    reps = 3 if QUICK else 7
    for name, (make, args) in cases.items():
        dyn = median_time(lambda make=make, args=args: make()(*args), budget=0.2)
        rec, first = [], []
        for _ in range(reps):
            r = dr.replay(make())
            t0 = time.perf_counter()
            r(*args)
            t1 = time.perf_counter()
            r(*args)
            t2 = time.perf_counter()
            rec.append(t1 - t0)
            first.append(t2 - t1)
        for label, ts in (("recording (first call)", rec),
                          ("compiling + running (second call)", first)):
            t = statistics.median(ts)
            ROWS.append((f"11. {name} (ratio to one dynamic call)", label, t, t / dyn))
            print(f"  11. {name:28s} {label:34s} {t:11.3e} s {t / dyn:8.1f}x")


def machine() -> str:
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor()
    libs = [f"numpy {np.__version__}"]
    if autograd:
        libs.append("autograd")
    if jax:
        libs.append(f"jax {jax.__version__}")
    if torch:
        libs.append(f"torch {torch.__version__}")
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            + ", ".join(libs) + f"; BLAS threads {BLAS_THREADS}")


def save(path: str) -> None:
    lines = ["# dualrev benchmark", "", f"Machine: {machine()}", "",
             "Command: `python benchmarks/run.py`", "",
             "| workload | library | seconds | ratio to NumPy f(x) |", "|---|---|---|---|"]
    for w, lib, t, r in ROWS:
        secs = "" if t != t else f"{t:.3e}"
        lines.append(f"| {w} | {lib} | {secs} | {r:.1f}{'' if t != t else 'x'} |")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n")
    print(f"\nsaved {path}")


def main() -> None:
    global QUICK
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--save", metavar="FILE")
    ap.add_argument("--only", help="comma-separated workload numbers, e.g. 1,3")
    args = ap.parse_args()
    QUICK = args.quick
    print(machine())
    benches = {"1": bench_rosen_grad, "2": bench_scalar_loop, "3": bench_jacobian,
               "4": bench_hessian, "5": bench_optimize, "6": bench_memory,
               "7": bench_ndimage, "8": bench_namespace, "9": bench_buffers,
               "10": bench_replay_loop, "11": bench_recording}
    chosen = args.only.split(",") if args.only else list(benches)
    for k in chosen:
        benches[k]()
    if args.save:
        save(args.save)


if __name__ == "__main__":
    main()
