"""The checks of the conformance harness, one function per mode, for any ``Case``.

Every derivative is compared with something independent of the rule under test: central
finite differences with one Richardson step (float64), the float64 run (float32 cases),
the other mode (VJP against JVP, jacrev against jacfwd), or NumPy's own value.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

import dualrev as dr
from dualrev.errors import DualrevError, ReplayWarning
from dualrev.primitive import strip
from dualrev.transforms import dependencies

from .cases import A, Case, flat, is_floating, is_numeric

_numeric, _floating = is_numeric, is_floating


def modes_of(case: Case) -> tuple[str, ...]:
    """The checks that apply to a case. Only these are generated: a derivative mode needs
    a floating output, vmap a differentiable argument to batch, replay a floating output
    and a differentiable argument, sparsity a derivative case (float64 or complex128)
    with a differentiable argument (nothing is skipped at run time)."""
    if case.kind == "raises":
        return ("raises",)
    batch = ("vmap",) if case.templates() and case.dtype != "float32" else ()
    replay = ("replay",) if case.templates() and case.has_floating_output else ()
    if case.kind == "value" or not case.has_floating_output:
        return ("value",) + batch + replay
    if case.dtype == "float32":
        return ("value", "jvp", "vjp") + replay
    # the pattern does not depend on the dtype: float32 cases repeat float64's
    sparsity = ("sparsity",) if case.templates() else ()
    return ("value", "jvp", "vjp", "fwdrev") + (("second",) if case.second else ()) + batch \
        + replay + sparsity


class Prepared:
    """A case with concrete arguments: its differentiable leaves, its plain outputs and
    ``g(*leaves)``, the tuple of its floating outputs as a function of the leaves."""

    def __init__(self, case: Case, dtype: str | None = None) -> None:
        self.case = case
        args, kwargs = case.instantiate(dtype)
        self.leaves, self.rebuild = case.split(args, kwargs)
        self.plain = flat(case.fn(*args, **kwargs))
        self.diff = [i for i, o in enumerate(self.plain) if _floating(o)]
        self.rng = np.random.default_rng(case.seed() + 1)

    def call(self, *leaves: Any) -> list[Any]:
        args, kwargs = self.rebuild(*leaves)
        return flat(self.case.fn(*args, **kwargs))

    def g(self, *leaves: Any) -> tuple[Any, ...]:
        out = self.call(*leaves)
        return tuple(out[i] for i in self.diff)

    def random_like(self, xs: Any) -> list[np.ndarray]:
        """One random direction per array, of its dtype (complex where it is complex)."""
        out = []
        for x in xs:
            x = np.asarray(x)
            d = self.rng.standard_normal(x.shape)
            if x.dtype.kind == "c":
                d = d + 1j * self.rng.standard_normal(x.shape)
            out.append(d.astype(x.dtype))
        return out


class Refusal(Exception):  # noqa: N818  (not an error of the check: an outcome)
    """dualrev refused a case with a ``DualrevError`` where the check allows a refusal.
    test_conformance compares it with the pinned outcome (expected_refusals.py): a
    refusal passes only where it is pinned, with the same error class and message."""

    def __init__(self, error: DualrevError) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error


def refusing(fn: Callable[[], Any]) -> Any:
    """Run ``fn``; a DualrevError is a clear refusal, reported as ``Refusal`` (which
    test_conformance checks against the pinned outcomes, never a skip)."""
    try:
        return fn()
    except DualrevError as e:
        raise Refusal(e) from e


def _scale(*xs: Any) -> float:
    m = 1.0
    for x in xs:
        a = np.abs(np.asarray(x))
        if a.size and np.isfinite(a).any():
            m = max(m, float(np.nanmax(np.where(np.isfinite(a), a, 0))))
    return m


def assert_close(got: Any, want: Any, tol: float, what: str) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    atol = tol * _scale(want)
    if not np.allclose(got, want, rtol=tol, atol=atol, equal_nan=True):
        err = np.nanmax(np.abs(got - want)) if got.size else 0.0
        raise AssertionError(f"{what}: max abs error {err:.3g} (tol {tol:g} x scale "
                             f"{_scale(want):.3g})\n got {got.ravel()[:6]}\nwant "
                             f"{want.ravel()[:6]}")


def _kind_matches(t: Any, o: Any, what: str) -> None:
    tc, oc = np.iscomplexobj(t), np.iscomplexobj(o)
    assert tc == oc, f"{what} is {'complex' if tc else 'real'} for a " \
                     f"{'complex' if oc else 'real'} value"


# ---------------------------------------------------------------------- value
def _traced_call(p: Prepared, mode: str) -> list[Any]:
    got: list[Any] = []

    def wrap(*lv: Any) -> Any:
        got.append([strip(o) for o in p.call(*lv)])
        return lv[0]

    if mode == "fwd":
        dr.jvp(wrap, p.leaves, [np.zeros_like(x) for x in p.leaves])
    else:
        dr.vjp(wrap, *p.leaves)
    return got[0]


def check_value(case: Case) -> None:
    """Traced (forward and reverse) primal equals the plain call: values, dtypes, shapes.
    For value-only cases with floating outputs, the derivative is zero."""
    p = Prepared(case)
    tol = 2e-6 if case.dtype == "float32" else 1e-12
    for mode in ("fwd", "rev"):
        got = refusing(lambda mode=mode: _traced_call(p, mode))
        assert len(got) == len(p.plain), f"{mode}: {len(got)} outputs, NumPy {len(p.plain)}"
        for k, (a, b) in enumerate(zip(got, p.plain, strict=True)):
            what = f"{mode} output {k}"
            if _numeric(b):
                assert _numeric(a), f"{what}: {type(a).__name__}, NumPy {type(b).__name__}"
                assert np.result_type(a) == np.result_type(b), \
                    f"{what}: dtype {np.result_type(a)}, NumPy {np.result_type(b)}"
                if np.result_type(b).kind in "fc":
                    assert_close(a, b, tol, what)
                else:
                    assert np.shape(a) == np.shape(b) and np.array_equal(a, b), what
            else:
                assert a == b or np.array_equal(a, b), f"{what}: {a!r}, NumPy {b!r}"
    if case.kind == "value" and p.diff:
        vs = p.random_like(p.leaves)
        _, ts = refusing(lambda: dr.jvp(p.g, p.leaves, vs))
        for t in ts:
            assert not np.any(np.asarray(t)), "derivative of a zero-derivative entry is not 0"


def check_raises(case: Case) -> None:
    """The derivative is refused with the declared dualrev error (both modes): at the call
    in forward mode, at the latest when the pullback runs in reverse mode."""
    p = Prepared(case)
    with pytest.raises(case.raises):
        _traced_call(p, "fwd")
    with pytest.raises(case.raises):
        _traced_call(p, "rev")
        out, pullback = dr.vjp(p.g, *p.leaves)
        pullback(dr.tree_map(np.ones_like, out))


# ---------------------------------------------------------------------- derivatives
def fd_jvp(fun: Callable[..., Any], xs: list[Any], vs: list[Any], h: float = 1e-3) -> list[Any]:
    """Central differences of ``fun`` along ``vs``, with one Richardson extrapolation
    (error O(h^4)): (4 D(h/2) - D(h)) / 3."""
    xs = [np.asarray(x) for x in xs]

    def at(s: float) -> list[np.ndarray]:
        out = fun(*[x + s * v for x, v in zip(xs, vs, strict=True)])
        return [np.asarray(o) for o in out]

    def diff(step: float) -> list[np.ndarray]:
        return [(a - b) / (2 * step) for a, b in zip(at(step), at(-step), strict=True)]

    d1, d2 = diff(h), diff(h / 2)
    return [(4 * b - a) / 3 for a, b in zip(d1, d2, strict=True)]


def _jvp(p: Prepared, vs: list[Any]) -> tuple[Any, list[Any]]:
    out, ts = refusing(lambda: dr.jvp(p.g, p.leaves, vs))
    return out, list(ts)


def check_jvp(case: Case) -> None:
    """JVP along a random direction against finite differences (float32: against the
    float64 run, and the tangent keeps float32)."""
    p = Prepared(case)
    assert p.diff, "a derivative mode generated for a case without a floating output"
    vs = p.random_like(p.leaves)
    out, ts = _jvp(p, vs)
    if case.dtype == "float32":
        p64 = Prepared(case, "float64")
        _, t64 = refusing(lambda: dr.jvp(p64.g, p64.leaves, [v.astype(np.float64) for v in vs]))
        for k, (t, o, w) in enumerate(zip(ts, out, t64, strict=True)):
            assert np.result_type(t) == np.result_type(o), \
                f"tangent {k} has dtype {np.result_type(t)} for a {np.result_type(o)} output"
            assert_close(t, w, 2e-3, f"float32 tangent {k} vs float64")
        return
    want = fd_jvp(p.g, p.leaves, vs)
    for k, (t, o, w) in enumerate(zip(ts, out, want, strict=True)):
        _kind_matches(t, o, f"tangent {k}")
        if _all_empty(p.leaves):
            # no input to perturb; 0/0 in a rule (mean, norm of nothing) may give nan,
            # as in JAX: only the shape is checked
            assert np.shape(t) == np.shape(w), f"tangent {k}: shape {np.shape(t)}"
        else:
            assert_close(t, w, case.tol, f"tangent {k} vs finite differences")


def _all_empty(xs: list[Any]) -> bool:
    return all(np.size(x) == 0 for x in xs)


def _pair(a: list[Any], b: list[Any]) -> float:
    return float(sum(np.sum(np.real(np.asarray(x) * np.asarray(y))) for x, y in
                     zip(a, b, strict=True)))


def check_vjp(case: Case) -> None:
    """<u, J v> computed by the VJP equals the JVP's, with the Re(ct * t) pairing;
    cotangents have their primal's shape and dtype."""
    p = Prepared(case)
    assert p.diff, "a derivative mode generated for a case without a floating output"
    vs = p.random_like(p.leaves)
    out, ts = _jvp(p, vs)
    us = p.random_like(out)
    _, pb = refusing(lambda: dr.vjp(p.g, *p.leaves))
    cts = refusing(lambda: pb(tuple(us)))
    for k, (c, x) in enumerate(zip(cts, p.leaves, strict=True)):
        assert np.shape(c) == np.shape(x), f"cotangent {k}: shape {np.shape(c)} for " \
                                           f"{np.shape(x)}"
        _kind_matches(c, x, f"cotangent {k}")
        if case.dtype == "float32":
            assert np.result_type(c) == np.float32, f"cotangent {k}: dtype {np.result_type(c)}"
    lhs, rhs = _pair(cts, vs), _pair(us, ts)
    single = any(np.result_type(o) in (np.float32, np.complex64) for o in out)
    tol = 2e-4 if case.dtype == "float32" or single else 1e-9  # a float32 output rounds
    bound = tol * max(1.0, sum(float(np.sum(np.abs(u) * np.abs(t))) for u, t in
                               zip(us, ts, strict=True)))
    if _all_empty(p.leaves) or (np.isnan(lhs) and np.isnan(rhs)):
        return  # nothing to pair (see check_jvp), or nan both ways
    assert abs(lhs - rhs) <= bound, f"<vjp(u), v> = {lhs!r} but <u, jvp(v)> = {rhs!r}"


def check_fwdrev(case: Case) -> None:
    """jacfwd == jacrev == jacobian for real outputs; for complex outputs jacrev refuses
    clearly and jacfwd agrees with the JVP along real directions."""
    p = Prepared(case)
    assert p.diff, "a derivative mode generated for a case without a floating output"
    nums = tuple(range(len(p.leaves)))
    complex_out = any(np.iscomplexobj(p.plain[i]) for i in p.diff)
    complex_in = any(np.iscomplexobj(x) for x in p.leaves)
    if complex_out:
        with pytest.raises(DualrevError):
            dr.jacrev(p.g, nums)(*p.leaves)
        jf = _jacfwd_columns(p, nums)
        if _all_empty(p.leaves):
            return  # an empty direction: the JVP may be 0/0 (see check_jvp)
        vs = [np.real(v) for v in p.random_like(p.leaves)]
        _, ts = _jvp(p, vs)
        for o, t in enumerate(ts):
            got = sum(np.tensordot(jf[k][o], v, axes=np.ndim(v)) for k, v in
                      zip(nums, vs, strict=True))
            assert_close(got, t, 1e-9, f"jacfwd(output {o}) . v vs jvp")
        return
    jr = refusing(lambda: dr.jacrev(p.g, nums)(*p.leaves))
    jac = refusing(lambda: dr.jacobian(p.g, nums)(*p.leaves))
    try:
        jf = dr.jacfwd(p.g, nums)(*p.leaves)
    except DualrevError:
        if complex_in:
            jf = None  # refusing complex inputs, as JAX's jacfwd does, is fine
        else:
            raise
    for o in range(len(p.diff)):
        for k in nums:
            if jf is not None:
                assert_close(jf[o][k], jr[o][k], 1e-9, f"jacfwd vs jacrev [out {o}, arg {k}]")
            assert_close(jac[o][k], jr[o][k], 1e-9, f"jacobian vs jacrev [out {o}, arg {k}]")


def _jacfwd_columns(p: Prepared, nums: tuple[int, ...]) -> dict[int, list[Any]]:
    """jacfwd of ``p.g`` w.r.t. each leaf, ``{leaf: [d output_o / d leaf]}``: real leaves
    by plain jacfwd, complex ones with ``holomorphic=True`` (whose basis tangents are
    the real axis, so ``J . v == jvp(v)`` for real ``v`` holomorphic or not). Plain
    jacfwd of a complex leaf must refuse, as JAX's does."""
    cplx = tuple(k for k in nums if np.iscomplexobj(p.leaves[k]))
    real = tuple(k for k in nums if k not in cplx)
    if cplx:
        with pytest.raises(DualrevError, match="needs real inputs"):
            dr.jacfwd(p.g, cplx)(*p.leaves)
    cols: dict[int, list[Any]] = {}
    for group, holo in ((real, False), (cplx, True)):
        if group:
            jf = refusing(lambda g=group, h=holo: dr.jacfwd(p.g, g, holomorphic=h)(*p.leaves))
            for i, k in enumerate(group):
                cols[k] = [row[i] for row in jf]
    return cols


def check_second(case: Case) -> None:
    """Forward over reverse: the JVP of x -> vjp(f, x)(u) against its finite differences."""
    p = Prepared(case)
    assert p.diff, "a derivative mode generated for a case without a floating output"
    out = p.g(*p.leaves)
    us = p.random_like(out)
    vs = p.random_like(p.leaves)

    def pulled(*lv: Any) -> tuple[Any, ...]:
        _, pb = dr.vjp(p.g, *lv)
        return tuple(pb(tuple(us)))

    _, ts = refusing(lambda: dr.jvp(pulled, p.leaves, vs))
    want = fd_jvp(pulled, p.leaves, vs)
    for k, (t, w) in enumerate(zip(ts, want, strict=True)):
        assert_close(t, w, max(case.tol, 1e-5), f"second-order tangent {k} vs finite "
                                                 "differences")


# ---------------------------------------------------------------------- vmap
VMAP_BATCH = 3


def _in_axes(tmpl: Any) -> Any:
    """in_axes for a case's (args, kwargs): 0 for each differentiable leaf (an ``A``
    template), None for everything else (ints, index arrays, constants, keywords)."""
    if isinstance(tmpl, A):
        return 0
    if isinstance(tmpl, list):
        return [_in_axes(t) for t in tmpl]
    if isinstance(tmpl, tuple):
        return tuple(_in_axes(t) for t in tmpl)
    if isinstance(tmpl, dict):
        return {k: _in_axes(v) for k, v in tmpl.items()}
    return None


def _batched_output(o: Any) -> bool:
    """Whether an output gets a batch axis under vmap: numbers and booleans do; dtypes
    (np.result_type) are the same for every element and are returned as they are."""
    return _numeric(o) or isinstance(o, (bool, np.bool_))


def _stacked_close(got: Any, outs: list[Any], tol: float, what: str) -> None:
    """``got`` (a vmapped result) equals the loop's results stacked: dtype, shape, values
    (floating: allclose ``tol``; others: exactly)."""
    want = np.stack([np.asarray(o) for o in outs])
    assert _numeric(got) or isinstance(got, np.bool_), f"{what}: {type(got).__name__}"
    assert np.result_type(got) == want.dtype, \
        f"{what}: dtype {np.result_type(got)}, loop {want.dtype}"
    if want.dtype.kind in "fc":
        assert_close(got, want, tol, what)
    else:
        assert np.shape(got) == want.shape and np.array_equal(got, want), \
            f"{what}: {got!r}, loop {want!r}"


def check_vmap(case: Case) -> None:
    """vmap over a batch of three samples of the differentiable leaves (the other
    arguments unbatched, in_axes=None) equals a loop of single calls stacked: the value,
    a JVP (one tangent for the batch) and a VJP (one cotangent per element)."""
    p = Prepared(case)
    assert p.leaves, "vmap generated for a case without a differentiable argument"
    draws = [p.leaves] + [case.split(*case.instantiate(draw=k))[0]
                          for k in range(1, VMAP_BATCH)]
    batch = [np.stack(xs) for xs in zip(*draws, strict=True)]
    loop = [p.call(*lv) for lv in draws]  # plain NumPy, one sample at a time
    oaxes = tuple(0 if _batched_output(o) else None for o in p.plain)

    def fn(args: Any, kwargs: Any) -> tuple[Any, ...]:
        return tuple(flat(case.fn(*args, **kwargs)))

    args, kwargs = p.rebuild(*batch)
    in_axes = (_in_axes(case.args), _in_axes(case.kwargs))
    got = refusing(lambda: dr.vmap(fn, in_axes=in_axes, out_axes=oaxes)(args, kwargs))
    assert len(got) == len(p.plain), f"vmap: {len(got)} outputs, NumPy {len(p.plain)}"
    for k, (o, ax) in enumerate(zip(got, oaxes, strict=True)):
        outs = [lp[k] for lp in loop]
        if ax is None:
            assert all(o == w for w in outs), f"vmap output {k}: {o!r}, loop {outs[0]!r}"
        else:
            _stacked_close(o, outs, case.batch_tol or 1e-12, f"vmap output {k}")
    if case.kind != "diff" or not p.diff:
        return

    vs = p.random_like(p.leaves)
    got_t = refusing(lambda: dr.vmap(lambda *lv: dr.jvp(p.g, lv, vs)[1])(*batch))
    want_t = [refusing(lambda lv=lv: dr.jvp(p.g, lv, vs)[1]) for lv in draws]
    for k, t in enumerate(got_t):
        _stacked_close(t, [w[k] for w in want_t], case.batch_tol or 1e-10,
                       f"vmap(jvp) tangent {k}")

    us = [p.random_like(p.g(*lv)) for lv in draws]
    u_batch = tuple(np.stack(u) for u in zip(*us, strict=True))

    def pulled(lv: tuple[Any, ...], u: tuple[Any, ...]) -> tuple[Any, ...]:
        return dr.vjp(p.g, *lv)[1](u)

    got_c = refusing(lambda: dr.vmap(pulled)(tuple(batch), u_batch))
    want_c = [pulled(tuple(lv), tuple(u)) for lv, u in zip(draws, us, strict=True)]
    for k, c in enumerate(got_c):
        _stacked_close(c, [w[k] for w in want_c], case.batch_tol or 1e-10,
                       f"vmap(vjp) cotangent {k}")




# ---------------------------------------------------------------------- replay
class ReplayOutcome(Exception):  # noqa: N818  (an outcome to pin, not an error)
    """The replayed transform agreed with the dynamic one at both points, but the second
    call did not replay the recording: it recorded again (a guard failed) or ran the
    transform dynamically. test_conformance passes it only where
    ``expected_refusals.REPLAY_OUTCOMES`` pins the same outcome."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


#: what the replay checks did, for the report (``pytest -s`` prints it)
REPLAY_COUNTS: dict[str, int] = {}


def _count(what: str) -> None:
    REPLAY_COUNTS[what] = REPLAY_COUNTS.get(what, 0) + 1


def _stats(fn: Any) -> dict[str, int]:
    """The counters of a replayed function's ``stats`` (records, replays, dynamic...)."""
    s = fn.stats
    out = {k: getattr(s, k) for k in ("records", "replays", "dynamic", "evictions")}
    # a call whose recording warned is answered by that recording run, kept nowhere: it
    # counts in no counter, only in dynamic_reasons
    out["dynamic_reasons"] = len(s.dynamic_reasons)
    return out


def _why(replayed: Any) -> str:
    """Why the last call recorded again: the stale reason or the failed guard's kind and
    the function that took the decision (without line numbers, which move)."""
    s = replayed.stats
    if s.stale:
        return str(s.stale[-1])
    if s.guard_failures:
        g = s.guard_failures[-1]
        m = re.match(r"(.*?):\d+", str(g.where))
        where = re.split(r"[/\\]", m.group(1))[-1] if m else "?"
        return f"{g.kind} guard in {where}"
    return "?"


def _replay_transform(p: Prepared) -> tuple[str, Callable[..., Any]]:
    """The transform replayed for a case: reverse or forward, by the parity of the
    case's seed (so each entry's several cases cover both, at the cost of one), batched
    where the output allows (jacrev pulls back the basis cotangents in one batched pass,
    jacfwd pushes the basis tangents in one). Complex outputs, which jacrev refuses,
    replay a VJP closure (a fixed complex cotangent); complex inputs, which plain jacfwd
    refuses, a JVP closure (a fixed complex direction)."""
    nums = tuple(range(len(p.leaves)))
    outs = [p.plain[i] for i in p.diff]
    if p.case.seed() % 2:
        if any(np.iscomplexobj(x) for x in p.leaves):
            vs = p.random_like(p.leaves)
            return "jvp", lambda *lv: tuple(dr.jvp(p.g, lv, vs)[1])
        return "jacfwd", dr.jacfwd(p.g, nums)
    if any(np.iscomplexobj(o) for o in outs):
        us = tuple(p.random_like(outs))
        rev: tuple[str, Callable[..., Any]] = (
            "vjp", lambda *lv: tuple(dr.vjp(p.g, *lv)[1](us)))
    else:
        rev = ("jacrev", dr.jacrev(p.g, nums))
    return rev


def _replay_vmap(p: Prepared) -> tuple[str, Callable[..., Any], tuple[Any, Any]]:
    """The vmap check's batched call (a batch of three draws of the differentiable leaves,
    the rest unbatched) for replay, with its two points: draws 0, 1, 2 and the same draws
    in another order, 1, 2, 0 (other values at each batch position; draws the vmap check
    has already shown to be well posed, where a fresh draw may not be: a Riccati
    equation without a stabilising solution)."""
    case = p.case

    def batch(draws: tuple[int, ...]) -> tuple[Any, Any]:
        leaves = [case.split(*case.instantiate(draw=k))[0] if k else p.leaves for k in draws]
        return p.rebuild(*[np.stack(xs) for xs in zip(*leaves, strict=True)])

    def fn(args: Any, kwargs: Any) -> tuple[Any, ...]:
        return tuple(flat(case.fn(*args, **kwargs)))

    oaxes = tuple(0 if _batched_output(o) else None for o in p.plain)
    in_axes = (_in_axes(case.args), _in_axes(case.kwargs))
    return ("vmap", dr.vmap(fn, in_axes=in_axes, out_axes=oaxes),
            (batch((0, 1, 2)), batch((1, 2, 0))))


def _called(fn: Callable[..., Any], leaves: list[Any]) -> tuple[Any, Any, list[str]]:
    """(result, the DualrevError raised or None, the warnings' categories) of a call."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            res, err = fn(*leaves), None
        except DualrevError as e:
            res, err = None, e
    # dualrev's own warnings (a non-finite derivative...): NumPy's and SciPy's, raised by
    # the user's Python (a DeprecationWarning of np.cross), are side effects a replay
    # does not repeat (docs/replay.md)
    # (a ReplayWarning, replay's report of a fallback, is read from its stats instead)
    return res, err, sorted({w.category.__name__ for w in caught
                             if w.category.__module__.startswith("dualrev")
                             and w.category is not ReplayWarning})


def _same_tree(got: Any, want: Any, tol: float, what: str) -> bool:
    """``got`` equals ``want`` leaf by leaf (dtype, shape, allclose ``tol``); returns
    whether bit for bit."""
    gl, wl = dr.tree_flatten(got)[0], dr.tree_flatten(want)[0]
    assert len(gl) == len(wl), f"{what}: {len(gl)} leaves, dynamic {len(wl)}"
    exact = True
    for k, (a, b) in enumerate(zip(gl, wl, strict=True)):
        if not _numeric(b) and not isinstance(b, (bool, np.bool_)):
            assert a == b, f"{what} leaf {k}: {a!r}, dynamic {b!r}"  # a dtype, a string
            continue
        assert np.result_type(a) == np.result_type(b), \
            f"{what} leaf {k}: dtype {np.result_type(a)}, dynamic {np.result_type(b)}"
        assert_close(a, b, tol, f"{what} leaf {k}")
        exact = exact and np.asarray(a).tobytes() == np.asarray(b).tobytes()
    return exact


def check_replay(case: Case) -> None:
    """``dr.replay`` of a reverse or a forward transform of the case (and of the vmap
    check's batched call, where the case has one): the first call (at
    the case's point) records and equals the dynamic transform there; the second, at
    another sample of the same shapes and domain, equals the dynamic transform at that
    point (allclose 1e-12, float32 2e-6; bit-identical results are counted) and replays
    the recording (or records again / runs dynamically, a pinned ``ReplayOutcome``). A
    refusal of the dynamic transform must be the replay's too; warnings (a non-finite
    derivative) must be the same."""
    p = Prepared(case)
    second = case.split(*case.instantiate(draw=1))[0]
    tol = 2e-6 if case.dtype == "float32" else 1e-12
    outcomes = []
    name, transform = _replay_transform(p)
    runs = [(name, transform, (p.leaves, second))]
    if "vmap" in modes_of(case):
        runs.append(_replay_vmap(p))
    for name, transform, points in runs:
        replayed = dr.replay(transform)
        for call, leaves in enumerate(points):
            what = f"replay({name}) call {call}"
            want, want_err, want_warn = _called(transform, leaves)
            before = _stats(replayed)
            got, got_err, got_warn = _called(replayed, leaves)
            if want_err is not None or got_err is not None:
                assert type(got_err) is type(want_err), \
                    f"{what}: replay raises {got_err!r}, dynamic {want_err!r}"
                raise Refusal(want_err)
            assert got_warn == want_warn, f"{what}: replay warns {got_warn}, dynamic {want_warn}"
            exact = _same_tree(got, want, tol, what)
            _count("bit-identical" if exact else f"within tolerance: {case.name}")
            after = _stats(replayed)
            delta = {k: after[k] - before.get(k, 0) for k in after}
            if (delta.get("dynamic") == 1 or delta.get("dynamic_reasons")) \
                    and not delta.get("records"):
                # an honest fallback (the recording failed, or records too often): the
                # dynamic transform answered, with a ReplayWarning
                why = replayed.stats.dynamic_reasons[-1] if replayed.stats.dynamic_reasons \
                    else "?"
                why = ": ".join(part.strip() for part in why.split(":", 2)[:2])
                outcomes.append(f"{name} runs dynamically ({why})")
            elif call == 0:
                assert delta.get("records") == 1, f"{what}: the first call did not record: " \
                                                  f"stats {after}"
            elif delta.get("replays") == 1 and not delta.get("records"):
                _count(f"replayed {name}")
            elif delta.get("records") == 1:
                outcomes.append(f"{name} re-records: {_why(replayed)}")
            else:
                outcomes.append(f"{name} runs dynamically {sorted(delta.items())}")
    for o in outcomes:
        _count(re.sub(r"shape \(.*?\) ", "", o))
    if outcomes:
        raise ReplayOutcome("; ".join(dict.fromkeys(outcomes)))


CHECKS = {"value": check_value, "jvp": check_jvp, "vjp": check_vjp, "fwdrev": check_fwdrev,
          "second": check_second, "raises": check_raises, "vmap": check_vmap,
          "replay": check_replay}


# ---------------------------------------------------------------------- sparsity
class SparsityOutcome(Exception):  # noqa: N818  (an outcome to pin, not an error)
    """The detected pattern holds (it contains every non-zero of the dense Jacobian at
    both points) and the sparse results equal the dense ones, but the pattern is not
    the exact one a rule could state: a superset, a dense block of a primitive without a
    pattern rule, or a pattern taken at the given point (a decision on values). Passes
    only where ``expected_refusals.SPARSITY_OUTCOMES`` pins the same outcome, so that a
    rule added later shows up as a changed outcome."""

    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome


#: what the sparsity checks found, for the report (``pytest -s`` prints it)
SPARSITY_COUNTS: dict[str, int] = {}

#: relative size of the perturbation of the second point where the pattern was taken at
#: the given point (a sort order, a branch): small enough to keep every decision
_NEARBY = 1e-6


def _scount(what: str) -> None:
    SPARSITY_COUNTS[what] = SPARSITY_COUNTS.get(what, 0) + 1


def _blocks(jac: Any, outs: list[Any], leaves: list[Any]) -> np.ndarray:
    """The dense Jacobian ``jac[o][k]`` (output ``o`` by leaf ``k``) as one
    ``(sum of output sizes, sum of leaf sizes)`` matrix, each block flattened in C order
    (the layout of ``dependencies``' pattern)."""
    rows = [np.concatenate([np.reshape(np.asarray(jac[o][k]), (np.size(out), np.size(x)))
                            for k, x in enumerate(leaves)], axis=1)
            for o, out in enumerate(outs)]
    return np.concatenate(rows, axis=0)


def _dense_jacobian(p: Prepared, leaves: list[Any]) -> np.ndarray:
    """The dense Jacobian of the case's floating outputs in its leaves, as one matrix.
    Real: ``dr.jacobian``. Complex inputs or outputs: ``jacfwd`` along each leaf's real
    axis and, for complex leaves, its imaginary axis, added in magnitude (an entry of the
    pattern must be set where either is non-zero)."""
    nums = tuple(range(len(leaves)))
    outs = list(p.g(*leaves))
    if not any(np.iscomplexobj(v) for v in [*leaves, *outs]):
        return _blocks(dr.jacobian(p.g, nums)(*leaves), outs, leaves)
    parts = []
    for axis in (1.0, 1j):
        if axis == 1j and not any(np.iscomplexobj(x) for x in leaves):
            break

        def along(*ys: Any, axis: complex = axis) -> tuple[Any, ...]:
            moved = [x + (axis * y if axis == 1.0 or np.iscomplexobj(x) else 0.0 * y)
                     for x, y in zip(leaves, ys, strict=True)]
            return p.g(*moved)

        zeros = [np.zeros(np.shape(x)) for x in leaves]
        parts.append(_blocks(dr.jacfwd(along, nums)(*zeros), outs, leaves))
    return parts[0] if len(parts) == 1 else np.abs(parts[0]) + np.abs(parts[1])


#: an entry of a dense derivative at most this fraction of its largest is rounding: a
#: rule's formula that mixes entries (QR's, LU's) leaves 1e-17 where the derivative is
#: structurally zero
ROUNDING = 1e-13


def _nonzero(J: np.ndarray) -> np.ndarray:
    """The entries of a dense derivative that are not zero, rounding aside (``ROUNDING``
    relative to its largest finite entry; nan and inf count: they are not structural
    zeros either)."""
    a = np.abs(np.asarray(J))
    finite = a[np.isfinite(a)]
    scale = float(finite.max()) if finite.size else 0.0
    return ~(a <= ROUNDING * scale)


def _missed(pattern: np.ndarray, nz: np.ndarray, what: str, where: str) -> None:
    """A MISS (the pattern lacks an entry the dense derivative has) is the worst bug of
    a rule: it fails, and is pinned nowhere."""
    miss = nz & ~pattern
    if miss.any():
        raise AssertionError(
            f"sparsity MISS: the {what} pattern lacks {miss.sum()} entries that are "
            f"non-zero in the dense {what} {where}, e.g. (row, column) "
            f"{np.argwhere(miss)[:6].tolist()} (pattern shape {pattern.shape})")


def _fallbacks(notes: list[str]) -> list[str]:
    """The primitives that stated no pattern rule (their blocks are dense), by name."""
    return sorted({n.split(" states no sparsity pattern", 1)[0] for n in notes
                   if " states no sparsity pattern" in n})


def _judge(what: str, found: Any, nz: np.ndarray) -> str:
    """``what``'s outcome: exact (the pattern is the dense non-zeros at generic points)
    or superset, and the dense fallbacks and decisions it relied on ('' when exact,
    structural, without fallback)."""
    pattern = found.pattern.toarray()
    exact = np.array_equal(pattern, nz)
    _scount(f"{what} {'exact' if exact else 'superset'}")
    parts = [] if exact else [f"{what} superset"]
    names = _fallbacks(found.notes)
    if names:
        _scount(f"{what} dense fallback")
        parts.append(f"{what}: no pattern rule for {', '.join(names)}")
    if not found.structural:
        _scount(f"{what} taken at the point")
        parts.append(f"{what} taken at the point")
    return "; ".join(parts)


def _second_point(p: Prepared, structural: bool) -> list[Any]:
    """The second point: another draw of the case's templates (other values in the same
    domain), or, where the pattern was taken at the given point (a sort order, a branch),
    the given point moved by a relative ``_NEARBY``, which keeps those decisions."""
    if structural:
        return p.case.split(*p.case.instantiate(draw=1))[0]
    rng = np.random.default_rng(p.case.seed() + 2)
    return [x * (1 + _NEARBY * rng.uniform(-1, 1, np.shape(x))) for x in p.leaves]


def _flat_leaves(leaves: list[Any]) -> tuple[np.ndarray, Callable[[Any], list[Any]]]:
    """The leaves as one flat vector, and the map back from such a vector (traced or
    not) to leaves of their shapes."""
    shapes = [np.shape(x) for x in leaves]
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]

    def unflat(v: Any) -> list[Any]:
        out, start = [], 0
        for s, n in zip(shapes, sizes, strict=True):
            out.append(np.reshape(v[start:start + n], s))
            start += n
        return out

    return np.concatenate([np.ravel(x) for x in leaves]) if leaves else np.zeros(0), unflat


def check_sparsity(case: Case) -> None:
    """The structural pattern (``dualrev.transforms.dependencies``) contains every
    non-zero of the dense Jacobian at the case's point and at a second point (a miss
    fails, pinned nowhere); for real cases ``dr.sparse.jacobian`` equals ``dr.jacobian``
    (1e-9) and, for a scalar output, ``dr.sparse.hessian_sparsity`` contains the dense
    ``dr.hessian``'s non-zeros and ``dr.sparse.hessian`` equals it. A pattern that is
    not exact (a superset, a dense fallback, taken at the point) is a pinned
    ``SparsityOutcome``. Complex outputs of real inputs compare ``dr.sparse.jacobian``
    with ``jacfwd``; complex inputs, which ``dr.sparse`` refuses, check the pattern and
    the refusal."""
    p = Prepared(case)
    nums = tuple(range(len(p.leaves)))
    found = refusing(lambda: dependencies(p.g, p.leaves, nums))
    pattern = found.pattern.toarray()
    dense = refusing(lambda: _dense_jacobian(p, p.leaves))
    assert pattern.shape == dense.shape, f"pattern shape {pattern.shape}, dense Jacobian " \
                                         f"{dense.shape}"
    nz = _nonzero(dense)
    _missed(pattern, nz, "jacobian", "at the case's point")
    if not pattern.all():
        second = _second_point(p, found.structural)
        nz2 = _nonzero(refusing(lambda: _dense_jacobian(p, second)))
        _missed(pattern, nz2, "jacobian", "at a second point")
        nz = nz | nz2
    outcome = [_judge("jacobian", found, nz)]
    outs = [p.plain[i] for i in p.diff]
    if any(np.iscomplexobj(x) for x in p.leaves):
        # dr.sparse differentiates real arguments: a complex one is refused, clearly
        with pytest.raises(DualrevError, match="real"):
            _sparse_jacobian(p, found.pattern)
        _scount("complex input: dr.sparse.jacobian refuses")
    elif any(np.iscomplexobj(v) for v in outs):
        # a complex output of real inputs: forward mode, against jacfwd (a real
        # direction's tangent, the columns of the Jacobian)
        if pattern.size and pattern.all():
            _scount("dense pattern: dr.sparse.jacobian not compared")
        else:
            raw = _blocks(dr.jacfwd(p.g, nums)(*p.leaves), outs, p.leaves)
            _check_sparse_jacobian(p, found.pattern, raw)
            _scount("complex output: dr.sparse.jacobian compared")
    else:
        if pattern.size and pattern.all():
            # every column one colour: the compressed evaluation is the batched jacfwd
            # (or jacrev) the vmap mode checks already
            _scount("dense pattern: dr.sparse.jacobian not compared")
        else:
            _check_sparse_jacobian(p, found.pattern, dense)
        if case.second and len(outs) == 1 and np.shape(outs[0]) == ():
            outcome.append(_check_sparse_hessian(p))
    outcome = [o for o in outcome if o]
    if outcome:
        raise SparsityOutcome("; ".join(outcome))


def _sparse_jacobian(p: Prepared, pattern: Any) -> Any:
    """``dr.sparse.jacobian`` with the given pattern at the case's point: of the case's
    own function where it has one leaf and one output, else of the function of all
    leaves flattened into one vector to all outputs flattened and concatenated."""
    if len(p.leaves) == 1 and len(p.diff) == 1:
        return dr.sparse.jacobian(lambda x: p.g(x)[0], sparsity=pattern)(p.leaves[0])
    x, unflat = _flat_leaves(p.leaves)

    def h(v: Any) -> Any:
        return np.concatenate([np.ravel(o) for o in p.g(*unflat(v))])

    return dr.sparse.jacobian(h, sparsity=pattern)(x)


def _check_sparse_jacobian(p: Prepared, pattern: Any, dense: np.ndarray) -> None:
    """``dr.sparse.jacobian`` with the detected pattern (detection is the same
    ``dependencies`` call: not repeated) at the case's point equals the dense Jacobian:
    of the case's own function where it has one leaf and one output, else of the
    function of all leaves flattened into one vector to all outputs flattened and
    concatenated (whose pattern is the same matrix)."""
    J = refusing(lambda: _sparse_jacobian(p, pattern))
    assert sp.issparse(J), f"dr.sparse.jacobian returned a {type(J).__name__}"
    assert J.shape == dense.shape, f"sparse Jacobian shape {J.shape}, dense {dense.shape}"
    assert_close(J.toarray(), dense, 1e-9, "dr.sparse.jacobian vs dr.jacobian")


def _check_sparse_hessian(p: Prepared) -> str:
    """A scalar output's Hessian: ``hessian_sparsity`` contains the dense Hessian's
    non-zeros at the case's point and a second point, ``dr.sparse.hessian`` equals
    ``dr.hessian`` (1e-9 relative to its scale); returns the Hessian pattern's outcome."""
    x, unflat = _flat_leaves(p.leaves)

    def f(v: Any) -> Any:
        return p.g(*unflat(v))[0]

    n = x.size
    found = refusing(lambda: dr.sparse.hessian_sparsity(f, x))
    pattern = found.pattern.toarray()
    dense = np.reshape(np.asarray(refusing(lambda: dr.hessian(f)(x))), (n, n))
    nz = _nonzero(dense)
    _missed(pattern, nz, "hessian", "at the case's point")
    if not pattern.all():
        second, _ = _flat_leaves(_second_point(p, found.structural))
        nz2 = _nonzero(np.reshape(np.asarray(refusing(lambda: dr.hessian(f)(second))), (n, n)))
        _missed(pattern, nz2, "hessian", "at a second point")
        nz = nz | nz2
    H = refusing(lambda: dr.sparse.hessian(f)(x))
    assert sp.issparse(H), f"dr.sparse.hessian returned a {type(H).__name__}"
    assert_close(H.toarray(), dense, 1e-9, "dr.sparse.hessian vs dr.hessian")
    return _judge("hessian", found, nz)


CHECKS["sparsity"] = check_sparsity
