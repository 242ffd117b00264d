"""``dualrev.replay`` against the dynamic transforms on generated programs whose branches
flip between calls (issue 23), and on what a recording could freeze.

Programs (tests/replay_programs.py) are written as scientists write them and rendered
as Python source; each is differentiated by grad, jacobian (reverse: as many outputs as
inputs), jacfwd (forward: the batched push), hessian (forward over reverse) and
vmap(grad) (the batched pass; branch-free programs, plus branchy ones that both refuse).
One ``dr.replay`` of the transform is called on a sequence of inputs of one shape whose
signs and scales alternate. For every call:

- the replayed result equals the dynamic transform's on the same input (bit for bit is
  counted; the assertion allows 1e-12 relative, the harness's value tolerance, for a
  compiled runner that evaluates scalar regions on Python floats);
- a refusal of the dynamic transform is the replay's refusal too (same class), and so is
  a warning about a non-finite derivative;
- ``stats`` shows a recording exactly on the calls whose *path* (the outcomes of every
  ``if``/``while``/``max`` decision, from an instrumented plain run) was not seen before,
  and a replay on every other call.

Then what a recording freezes: a captured array changed in place, a closure cell rebound
and a global rebound between calls; the replay must follow the new value.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import dualrev as dr
from dualrev.errors import DualrevError

from .aliasing_programs import interpret, scalar_of
from .replay_programs import build, compile_program, input_sequence, path_of

# TODO(conform): removed once the replay branch is merged (the final state has no skips)
pytestmark = pytest.mark.skipif(not hasattr(dr, "replay"), reason="dr.replay not merged yet")

COUNTS: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    """Prints what the generators ran (pytest -s), for the closing note's counts."""
    yield
    print("\nreplay program counts:", dict(sorted(COUNTS.items())))


def count(what: str, n: int = 1) -> None:
    COUNTS[what] = COUNTS.get(what, 0) + n


def stat(fn: Any, name: str) -> int:
    """One counter of a replayed function's ``stats`` (records, replays...)."""
    s = fn.stats
    return int(s[name] if isinstance(s, dict) else getattr(s, name))


#: transform name -> (how to make it from f, f's output kind, whether inputs are batched)
TRANSFORMS: dict[str, tuple[Callable[[Callable[..., Any]], Callable[..., Any]], str, bool]] = {
    "grad": (lambda f: dr.grad(f), "scalar", False),
    "jacobian": (lambda f: dr.jacobian(f), "vector", False),
    "jacfwd": (lambda f: dr.jacfwd(f), "vector", False),
    "hessian": (lambda f: dr.hessian(f), "scalar", False),
    "vmap_grad": (lambda f: dr.vmap(dr.grad(f)), "scalar", True),
}


def outcome(fn: Callable[..., Any], x: np.ndarray) -> tuple[Any, Any, list[str]]:
    """(result, the DualrevError class raised or None, warning categories) of ``fn(x)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res, err = fn(x), None
        except DualrevError as e:
            res, err = None, type(e)
    return res, err, sorted({w.category.__name__ for w in caught})


def assert_same(got: Any, want: Any, what: str) -> bool:
    """``got`` equals ``want`` (1e-12 relative); returns whether bit for bit."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, \
        f"{what}: {got.dtype}{got.shape}, dynamic {want.dtype}{want.shape}"
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0, where=np.isfinite(want))))
    assert np.allclose(got, want, rtol=1e-12, atol=1e-12 * scale, equal_nan=True), \
        f"{what}: replayed {got.ravel()[:6]}, dynamic {want.ravel()[:6]}"
    return got.tobytes() == want.tobytes()


def check_program(steps: list[tuple[int, int]], n: int, seed: int, transform: str,
                  allow_branches: bool = True) -> None:
    make, output, batched = TRANSFORMS[transform]
    g = build(steps, n, allow_branches=allow_branches)
    source = g.source(output)
    f = compile_program(source)
    dynamic = make(f)
    replayed = dr.replay(make(f))
    xs = input_sequence(seed, n, batch=3 if batched else None)
    seen: set[Any] = set()
    count(f"programs {transform}")
    for c in g.constructs:
        count(f"construct {c}")
    for call, x in enumerate(xs):
        what = f"{transform}, call {call}\n{source}"
        path = () if batched else path_of(g, output, x)
        want, want_err, want_warn = outcome(dynamic, x)
        before = (stat(replayed, "records"), stat(replayed, "replays"))
        got, got_err, got_warn = outcome(replayed, x)
        assert got_err is want_err, f"{what}: replay raises {got_err}, dynamic {want_err}"
        assert got_warn == want_warn, f"{what}: replay warns {got_warn}, dynamic {want_warn}"
        count("calls")
        if want_err is not None:
            count(f"refused alike: {want_err.__name__}")
            return
        if assert_same(got, want, what):
            count("bit-identical")
        records = stat(replayed, "records") - before[0]
        replays = stat(replayed, "replays") - before[1]
        if path in seen:
            assert (records, replays) == (0, 1), \
                f"{what}: path seen before, expected a replay; stats {replayed.stats}"
            count("replays")
        else:
            assert (records, replays) == (1, 0), \
                f"{what}: new path {path}, expected a recording; stats {replayed.stats}"
            count("records" if call == 0 else "re-records (a guard flipped)")
        seen.add(path)


steps_st = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 10_000)),
                    min_size=2, max_size=9)
seeds = st.integers(0, 2**31 - 1)


@pytest.mark.parametrize("transform", ["grad", "jacobian", "jacfwd", "hessian"])
@settings(max_examples=30)
@given(steps=steps_st, n=st.integers(3, 5), seed=seeds)
def test_replay_agrees_on_generated_programs(transform, steps, n, seed):
    check_program(steps, n, seed, transform)


@settings(max_examples=20)
@given(steps=steps_st, n=st.integers(3, 5), seed=seeds, branches=st.booleans())
def test_replay_agrees_under_vmap(steps, n, seed, branches):
    """vmap(grad): branch-free programs agree; a value-dependent branch is refused by
    the dynamic vmap and by its replay alike (BatchedValueError)."""
    check_program(steps, n, seed, "vmap_grad", allow_branches=branches)


@settings(max_examples=20)
@given(steps=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 7), st.integers(0, 7),
                                st.integers(0, 10_000)), min_size=1, max_size=6),
       seed=seeds)
def test_replay_agrees_on_aliasing_programs(steps, seed):
    """The aliasing generator's programs (views, copies, in-place writes through
    aliases, tests/aliasing_programs.py): replayed grad equals the dynamic grad on a
    second and third input of the same shapes (no value-dependent control flow there:
    one recording, then replays). Programs whose traced run refuses a step are left to
    test_aliasing_differential."""
    def f(a, b):
        pool, rec = interpret(steps, [a, b], traced=True)
        if rec.refused or rec.raised:
            raise _Refused
        return scalar_of(pool, rec.stale)

    rng = np.random.default_rng(seed)
    xs = [(rng.standard_normal((3, 4)), rng.standard_normal(4)) for _ in range(3)]
    dynamic = dr.grad(f, (0, 1))
    replayed = dr.replay(dr.grad(f, (0, 1)))
    for call, (a, b) in enumerate(xs):
        try:
            want = dynamic(a.copy(), b.copy())
        except _Refused:
            count("aliasing programs refused")
            return
        got = replayed(a.copy(), b.copy())
        for k, (u, w) in enumerate(zip(got, want, strict=True)):
            if assert_same(u, w, f"aliasing program {steps}, call {call}, grad {k}"):
                count("aliasing bit-identical")
        assert stat(replayed, "records") == 1, replayed.stats
        assert stat(replayed, "replays") == call, replayed.stats
    count("aliasing programs")


class _Refused(Exception):  # noqa: N818  (a program the traced run refuses: not compared)
    pass


# ------------------------------------------------------------------ what a recording freezes
def test_captured_array_changed_in_place_is_followed():
    w = np.array([1.0, 2.0, 3.0])

    def f(x):
        return np.sum(w * np.sin(x))

    replayed = dr.replay(dr.grad(f))
    x = np.array([0.3, -0.2, 0.5])
    np.testing.assert_array_equal(replayed(x), w * np.cos(x))
    w[1] = -4.0
    np.testing.assert_array_equal(replayed(x), dr.grad(f)(x))
    np.testing.assert_array_equal(replayed(x), w * np.cos(x))


def test_rebound_closure_cell_is_followed():
    def make() -> tuple[Callable[..., Any], Callable[[float], None]]:
        scale = 2.0

        def f(x):
            return scale * np.sum(x ** 3)

        def rebind(v: float) -> None:
            nonlocal scale
            scale = v

        return f, rebind

    f, rebind = make()
    replayed = dr.replay(dr.grad(f))
    x = np.array([0.5, -1.5])
    np.testing.assert_array_equal(replayed(x), 6.0 * x ** 2)
    rebind(-1.0)
    np.testing.assert_array_equal(replayed(x), dr.grad(f)(x))
    np.testing.assert_array_equal(replayed(x), -3.0 * x ** 2)


def test_rebound_global_is_followed():
    f = compile_program("SCALE = 2.0\n\ndef f(x):\n    return SCALE * np.sum(np.exp(x))\n")
    replayed = dr.replay(dr.grad(f))
    x = np.array([0.1, 0.2])
    np.testing.assert_array_equal(replayed(x), 2.0 * np.exp(x))
    f.__globals__["SCALE"] = 0.5
    np.testing.assert_array_equal(replayed(x), dr.grad(f)(x))
    np.testing.assert_array_equal(replayed(x), 0.5 * np.exp(x))
