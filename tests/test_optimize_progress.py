"""progress= on dualrev.optimize: the records agree with SciPy's result, the results and
iterates are those of the same run without progress, the user's callback still gets
SciPy's arguments, and the displays (terminal, log, notebook) draw at their cadence,
checked with a fake clock (no sleeps)."""

from __future__ import annotations

import io
import itertools
import re
import sys
import types

import numpy as np
import pytest
import scipy
import scipy.optimize as so

import dualrev as dr
from dualrev import optimize
from dualrev.errors import ProgressError
from dualrev.progress import ProgressDisplay, ProgressRecord, format_record
from tests.extras import need


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


GRAD = dr.grad(rosen)
X0 = np.array([-1.2, 1.0, 0.8, -0.5])
_SCIPY = tuple(int(v) for v in scipy.__version__.split(".")[:2])


def _same(a, b, skip=("execution_time",)):
    """Two SciPy results are equal field by field (arrays exactly)."""
    assert set(a) == set(b)
    for k in a:
        if k in skip:
            continue
        u, v = a[k], b[k]
        if isinstance(u, (np.ndarray, list, tuple, dict)) or isinstance(v, np.ndarray):
            leaves_u, _ = dr.tree_flatten(u) if isinstance(u, (dict, list, tuple)) else ([u], 0)
            leaves_v, _ = dr.tree_flatten(v) if isinstance(v, (dict, list, tuple)) else ([v], 0)
            for p, q in zip(leaves_u, leaves_v, strict=True):
                p, q = _dense(p), _dense(q)
                if isinstance(p, np.ndarray) or isinstance(q, np.ndarray):
                    np.testing.assert_array_equal(p, q, err_msg=k)
                elif isinstance(p, so.OptimizeResult):
                    _same(p, q)
                else:
                    assert p == q or (p is None and q is None), k
        elif isinstance(u, so.OptimizeResult):
            _same(u, v)
        elif hasattr(u, "toarray"):
            np.testing.assert_array_equal(u.toarray(), v.toarray(), err_msg=k)
        elif hasattr(u, "matvec"):  # trust-constr's LinearOperators, L-BFGS-B's hess_inv
            e = np.eye(np.size(a["x"]))
            np.testing.assert_array_equal(u @ e, v @ e, err_msg=k)
        elif isinstance(u, float) and np.isnan(u):
            assert np.isnan(v)
        else:  # (ReplayStats compares by its fields' repr)
            assert u == v or repr(u) == repr(v), (k, u, v)


def _dense(m):
    return m.toarray() if hasattr(m, "toarray") else m


# ------------------------------------------------------------ results do not change
HS_CONSTRAINT = {"type": "ineq", "fun": lambda x: 3.0 - np.sum(x ** 2)}
MINIMIZE_CASES = {
    "BFGS": {},
    "L-BFGS-B": {"bounds": [(-2, 0.9)] * 4},
    "Newton-CG": {},
    "trust-exact": {},
    "trust-constr": {"constraints": [HS_CONSTRAINT]},
    "SLSQP": {"constraints": [HS_CONSTRAINT], "bounds": [(-2, 2)] * 4},
}


@pytest.mark.parametrize("method", list(MINIMIZE_CASES))
@pytest.mark.parametrize("sink", ["callable", "display"])
def test_minimize_results_and_iterates_do_not_change(method, sink):
    kw = MINIMIZE_CASES[method]
    seen_plain, seen = [], []
    plain = optimize.minimize(rosen, X0, method=method,
                              callback=lambda xk, *state: seen_plain.append(xk), **kw)
    records: list[ProgressRecord] = []
    stream = io.StringIO()
    progress = records.append if sink == "callable" else ProgressDisplay(stream, notebook=False)
    res = optimize.minimize(rosen, X0, method=method,
                            callback=lambda xk, *state: seen.append(xk), progress=progress,
                            **kw)
    _same(plain, res)
    assert len(seen) == len(seen_plain) > 3
    for u, v in zip(seen_plain, seen, strict=True):  # the iterates, exactly
        np.testing.assert_array_equal(u, v)
    if sink == "callable":
        its = [r for r in records if r.event == "iteration"]
        np.testing.assert_array_equal([r.x for r in its], seen)
    else:
        assert f"minimize({method.lower()})  done" in stream.getvalue()


@pytest.mark.parametrize("kw", [{"method": "trf"}, {"method": "lm"}, {"method": "dogbox"},
                                {"method": "trf", "bounds": ([0, 0], [0.9, 2])},
                                {"method": "dogbox", "bounds": ([0, 0], [0.9, 2])},
                                {"loss": "soft_l1", "f_scale": 0.3},
                                {"loss": "cauchy", "jac_sparsity": np.ones((3, 2))}])
def test_least_squares_records_match_the_result(kw):
    def f(x):
        return np.stack([x[0] - 1.0, 10.0 * (x[1] - x[0] ** 2), x[0] * x[1] - 0.5])

    plain = optimize.least_squares(f, np.zeros(2), **kw)
    records: list[ProgressRecord] = []
    res = optimize.least_squares(f, np.zeros(2), progress=records.append, **kw)
    _same(plain, res)
    final = records[-1]
    assert final.event == "done" and final.success == res.success
    assert (final.nfev, final.njev) == (res.nfev, res.njev)
    np.testing.assert_allclose(final.fun, res.cost, rtol=1e-12)
    np.testing.assert_allclose(final.grad_norm, res.optimality, rtol=1e-9)
    np.testing.assert_array_equal(final.x, res.x)
    # every live record: the cost at its point, computed here from the residuals
    loss = kw.get("loss", "linear")
    c = kw.get("f_scale", 1.0)
    rho = {"linear": lambda z: z, "soft_l1": lambda z: 2 * (np.sqrt(1 + z) - 1),
           "cauchy": np.log1p}[loss]
    live = records[:-1]
    # one record per Jacobian. 'lm' does not count the one least_squares takes at x0, and
    # SciPy 1.15's MINPACK wrapper reports one fewer again (a Jacobian it takes at the end)
    if kw.get("method") == "lm":
        assert res.njev + 1 <= len(live) <= res.njev + 2
    else:
        assert len(live) == res.njev
    for r in live:
        assert r.event == "evaluation" and r.iteration is None
        resid = np.asarray(f(r.x))
        np.testing.assert_allclose(r.fun, 0.5 * c * c * np.sum(rho(resid ** 2 / c ** 2)),
                                   rtol=1e-12)
    assert [r.njev for r in live] == sorted(r.njev for r in live)


def _lsq_gradient_check():
    # the optimality of a live record is SciPy's first-order measure at that point: the
    # max-norm of J^T r (unbounded), from the exact Jacobian
    def f(x):
        return np.stack([x[0] - 1.0, 10.0 * (x[1] - x[0] ** 2)])

    records: list[ProgressRecord] = []
    optimize.least_squares(f, np.array([-1.0, 2.0]), progress=records.append)
    for r in records[:-1]:
        J = np.asarray(dr.jacobian(f)(r.x))
        np.testing.assert_allclose(r.grad_norm, np.max(np.abs(J.T @ f(r.x))), rtol=1e-12)
    return len(records)


def test_least_squares_live_optimality_is_scipys_measure():
    assert _lsq_gradient_check() > 3


@pytest.mark.parametrize("method", ["BFGS", "Newton-CG", "trust-exact", "trust-ncg"])
def test_minimize_records_match_the_result(method):
    records: list[ProgressRecord] = []
    res = optimize.minimize(rosen, X0, method=method, progress=records.append)
    its = [r for r in records if r.event == "iteration"]
    final = records[-1]
    assert final.event == "done" and records.count(final) == 1
    assert [r.iteration for r in its] == list(range(1, res.nit + 1))
    assert final.iteration == res.nit
    assert (final.nfev, final.njev) == (res.nfev, res.njev)
    assert final.nhev == res.get("nhev", 0)
    assert final.fun == res.fun and final.success and final.message == res.message
    two = method.startswith("trust")
    norm = (lambda g: np.linalg.norm(g)) if two else (lambda g: np.max(np.abs(g)))
    # (Newton-CG's res.jac is the gradient at the iterate before res.x: not compared)
    np.testing.assert_allclose(final.grad_norm, norm(GRAD(res.x)), rtol=1e-10)
    if method != "Newton-CG":
        np.testing.assert_allclose(final.grad_norm, norm(res.jac), rtol=1e-12)
    # each iteration's value and gradient norm at its point, computed here
    for r in its:
        assert r.fun == pytest.approx(rosen(r.x), rel=1e-14, abs=1e-300)
        np.testing.assert_allclose(r.grad_norm, norm(GRAD(r.x)), rtol=1e-10)
    # the counters only grow, and dualrev's counts reach SciPy's where they count alike
    for a, b in itertools.pairwise(its):
        assert a.nfev <= b.nfev and a.nhev <= b.nhev and a.elapsed <= b.elapsed
    if method in ("BFGS", "Newton-CG"):
        assert (its[-1].nfev, its[-1].njev, its[-1].nhev) == (
            res.nfev, res.njev, res.get("nhev", 0))


def test_bounded_records_report_the_projected_gradient():
    # the minimum of rosen on x <= 0.9 holds the bound: the gradient is not zero there, the
    # projected gradient (L-BFGS-B's measure) is
    lb, ub = np.full(4, -2.0), np.full(4, 0.9)
    records: list[ProgressRecord] = []
    res = optimize.minimize(rosen, X0, method="L-BFGS-B", bounds=list(zip(lb, ub, strict=True)),
                            progress=records.append)
    assert res.success and np.any(res.x == 0.9)
    for r in records:
        if r.grad_norm is None:
            continue
        g = GRAD(r.x)
        np.testing.assert_allclose(r.grad_norm, np.max(np.abs(np.clip(r.x - g, lb, ub) - r.x)),
                                   rtol=1e-10, atol=1e-300)
    assert records[-1].grad_norm < 1e-4 < np.max(np.abs(GRAD(res.x)))


def test_trust_constr_records_are_scipys_counters():
    records: list[ProgressRecord] = []
    res = optimize.minimize(rosen, X0, method="trust-constr", constraints=[HS_CONSTRAINT],
                            progress=records.append)
    final = records[-1]
    assert (final.iteration, final.nfev, final.njev, final.nhev) == (
        res.nit, res.nfev, res.njev, res.nhev)
    assert final.grad_norm == res.optimality and final.fun == res.fun
    its = [r for r in records if r.event == "iteration"]
    assert [r.iteration for r in its] == list(range(1, res.nit + 1))


def test_pytree_records_hold_the_users_structure():
    def loss(p):
        return np.sum((p["w"] - 1.0) ** 2) + (p["b"] + 2.0) ** 2

    records: list[ProgressRecord] = []
    res = optimize.minimize(loss, {"w": np.zeros(2), "b": np.zeros(())},
                            progress=records.append)
    assert all(set(r.x) == {"w", "b"} for r in records)
    np.testing.assert_array_equal(records[-1].x["w"], res.x["w"])


def test_curve_fit_root_fsolve_minimize_scalar_match_their_results():
    t = np.linspace(0, 4, 40)
    y = 2.5 * np.exp(-1.3 * t) + 0.5 + 0.01 * np.random.default_rng(0).standard_normal(40)

    def model(t, a, b, c):
        return a * np.exp(-b * t) + c

    sigma = 0.01 + 0.01 * t
    for kw in ({}, {"sigma": sigma}, {"sigma": np.diag(sigma ** 2), "method": "trf"},
               {"bounds": ([0, 0, 0], [3, 1.2, 1])}):
        records: list[ProgressRecord] = []
        out = optimize.curve_fit(model, t, y, full_output=True, progress=records.append, **kw)
        ref = optimize.curve_fit(model, t, y, full_output=True, **kw)
        for u, v in zip(out[:2], ref[:2], strict=True):
            np.testing.assert_array_equal(u, v)
        popt, info = out[0], out[2]
        s = kw.get("sigma")
        r = model(t, *popt) - y
        r = r if s is None else (r / s if s.ndim == 1 else np.linalg.solve(
            np.linalg.cholesky(s), r))
        final = records[-1]
        np.testing.assert_allclose(final.fun, 0.5 * np.sum(r * r), rtol=1e-10)
        assert final.nfev == info["nfev"]
        assert len(optimize.curve_fit(model, t, y, progress=records.append, **kw)) == 2

    def F(x):
        return np.stack([x[0] ** 2 - 2.0, x[1] - x[0]])

    records = []
    res = optimize.root(F, np.ones(2), progress=records.append)
    _same(res, optimize.root(F, np.ones(2)))
    assert records[-1].fun == np.linalg.norm(res.fun) and records[-1].nfev == res.nfev
    assert all(r.fun == np.linalg.norm(F(r.x)) for r in records[:-1])

    records = []
    x = optimize.fsolve(F, [1.0, 1.0], progress=records.append)
    np.testing.assert_array_equal(x, optimize.fsolve(F, [1.0, 1.0]))
    _, info, ier, _ = optimize.fsolve(F, [1.0, 1.0], full_output=True)
    assert records[-1].nfev == info["nfev"] and records[-1].success == (ier == 1)

    # a run that stops early warns as SciPy's fsolve warns (or raises, bad input)
    def no_root(x):
        return x ** 2 + 1.0

    for progress in (False, records.append):
        with pytest.warns(RuntimeWarning, match="not making good progress"):
            x = optimize.fsolve(no_root, [0.5], progress=progress)
    with pytest.raises(TypeError, match="Improper input"):
        optimize.fsolve(F, [1.0, 1.0], xtol=-1.0, progress=records.append)
    with pytest.raises(TypeError, match="Improper input"):
        optimize.fsolve(F, [1.0, 1.0], xtol=-1.0)

    records = []
    res = optimize.minimize_scalar(lambda x: (x - 2.0) ** 2 + 1.0, progress=records.append)
    _same(res, optimize.minimize_scalar(lambda x: (x - 2.0) ** 2 + 1.0))
    assert (records[-1].iteration, records[-1].nfev, records[-1].fun) == (
        res.nit, res.nfev, res.fun)
    assert len(records) == res.nfev + 1


# ------------------------------------------------------------ the user's callback
def _callbacks():
    """A legacy ``callback(xk, *rest)`` and a ``callback(intermediate_result)``, each
    recording what it receives."""
    legacy, modern = [], []

    def cb_legacy(xk, *rest):
        legacy.append((np.copy(xk), [type(v).__name__ for v in rest]))

    def cb_modern(intermediate_result):
        modern.append((np.copy(intermediate_result.x), intermediate_result.fun))

    return legacy, modern, cb_legacy, cb_modern


@pytest.mark.parametrize("method", ["BFGS", "trust-constr", "TNC", "Nelder-Mead", "COBYLA"])
def test_users_callback_keeps_scipys_signature(method):
    got = {}
    for progress in (False, True, lambda r: None):
        legacy, modern, cb_legacy, cb_modern = _callbacks()
        options = {"maxiter": 30} if method != "TNC" else {"maxfun": 60}
        a = optimize.minimize(rosen, X0, method=method, callback=cb_legacy, options=options,
                              progress=progress)
        # SciPy calls TNC's callback(xk) whatever its signature, and COBYLA's before 1.16
        if method != "TNC" and not (method == "COBYLA" and _SCIPY < (1, 16)):
            b = optimize.minimize(rosen, X0, method=method, callback=cb_modern,
                                  options=options, progress=progress)
            _same(a, b)
        got[bool(progress)] = (legacy, modern, a)
    (l0, m0, a0), (l1, m1, a1) = got[False], got[True]
    assert len(l0) == len(l1) > 0 and len(m0) == len(m1)
    for (x, rest), (y, rest1) in zip(l0, l1, strict=True):
        np.testing.assert_array_equal(x, y)
        assert rest == rest1  # trust-constr's (xk, state)
    for (x, f), (y, g) in zip(m0, m1, strict=True):
        np.testing.assert_array_equal(x, y)
        assert f == g
    _same(a0, a1)


def test_callback_stop_iteration_still_stops():
    def stop(intermediate_result):
        if intermediate_result.nit if "nit" in intermediate_result else False:
            pass
        raise StopIteration

    plain = optimize.minimize(rosen, X0, method="BFGS", callback=stop)
    records: list[ProgressRecord] = []
    res = optimize.minimize(rosen, X0, method="BFGS", callback=stop, progress=records.append)
    _same(plain, res)
    assert res.nit == 1 and records[-1].message == res.message


def test_callback_returning_true_still_stops_trust_constr():
    def stop_after_three(xk, state):
        return state.nit >= 3

    plain = optimize.minimize(rosen, X0, method="trust-constr", callback=stop_after_three)
    records: list[ProgressRecord] = []
    res = optimize.minimize(rosen, X0, method="trust-constr", callback=stop_after_three,
                            progress=records.append)
    _same(plain, res)
    assert res.nit == 3 and [r.iteration for r in records] == [1, 2, 3, 3]


def test_bad_progress_is_refused():
    for bad in ("yes", 1, 2.0):
        with pytest.raises(ProgressError, match=r"progress=.*not understood") as e:
            optimize.minimize(rosen, X0, progress=bad)
        assert isinstance(e.value, ValueError)
    for solver, args in ((optimize.least_squares, (lambda x: x - 1.0, np.zeros(2))),
                         (optimize.root, (lambda x: x - 1.0, np.zeros(2))),
                         (optimize.fsolve, (lambda x: x - 1.0, np.zeros(2))),
                         (optimize.minimize_scalar, (lambda x: x * x,))):
        with pytest.raises(ProgressError, match=solver.__name__):
            solver(*args, progress="yes")


# ------------------------------------------------------------ the displays
class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _record(i, fun=1.0):
    return ProgressRecord("minimize(bfgs)", "iteration", i, fun, 0.5, i, i, 0, 0.1 * i,
                          np.zeros(2))


def test_terminal_line_is_rewritten_at_most_ten_times_a_second():
    clock, out = FakeClock(), Terminal()
    d = ProgressDisplay(out, clock=clock, notebook=False)
    d.start("minimize(bfgs)")
    assert d.mode == "terminal"
    drawn = []
    for i, t in enumerate([0.0, 0.05, 0.1, 0.15, 0.21, 0.25, 0.3, 0.31]):
        clock.now = t
        before = out.getvalue().count("\r")
        d.show(lambda i=i: _record(i))
        if out.getvalue().count("\r") > before:
            drawn.append(t)
    assert drawn == [0.0, 0.1, 0.21, 0.31]
    d.show(lambda: _record(99, fun=0.25), final=True)  # the final state: always, then \n
    text = out.getvalue()
    assert text.count("\r") == 5 and text.endswith("\n") and text.count("\n") == 1
    assert "iteration 99" in text.split("\r")[-1]
    # a shorter line overwrites the rest of a longer one with spaces
    lines = text.split("\r")[1:]
    assert all(len(b.rstrip("\n")) >= len(a.rstrip()) for a, b in itertools.pairwise(lines))


def test_log_lines_are_sparse():
    clock, out = FakeClock(), io.StringIO()
    d = ProgressDisplay(out, clock=clock, notebook=False)
    d.start("minimize(bfgs)")
    assert d.mode == "log"
    for i, t in enumerate(np.arange(0.0, 7.0, 0.25)):
        clock.now = t
        d.show(lambda i=i: _record(i))
    d.show(lambda: _record(28), final=True)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert [ln.split("iteration ")[1].split()[0] for ln in lines] == ["0", "8", "16", "24",
                                                                      "28"]


def test_slow_evaluations_are_announced_before_they_run():
    clock, out = FakeClock(), Terminal()
    d = ProgressDisplay(out, clock=clock, notebook=False)
    d.start("minimize(trust-exact)")
    seen = []

    def evaluate(kind, seconds):
        before = out.getvalue().count("\r")
        d.busy(kind, lambda: _record(1))
        drawn = out.getvalue().count("\r") > before
        seen.append(drawn and "evaluating " + kind in out.getvalue().split("\r")[-1])
        clock.now += seconds
        d.idle(kind)

    d.show(lambda: _record(0))
    clock.now = 0.01
    evaluate("Hessian", 7.0)      # the first of its kind: announced
    clock.now += 0.01
    d.show(lambda: _record(1))
    clock.now += 0.01
    evaluate("Hessian", 0.01)     # the last one took 7 s: announced, though not due
    clock.now += 1.0
    evaluate("Hessian", 0.01)     # quick last time: quiet, even with a redraw due
    clock.now += 0.01
    d.show(lambda: _record(2))    # (not due either: 0.02 s after the last draw)
    evaluate("Hessian", 0.01)     # the last one was quick and nothing is due: quiet
    assert seen == [True, True, False, False]
    # in a log only evaluations that took log_interval or more are announced
    log = io.StringIO()
    d = ProgressDisplay(log, clock=clock, notebook=False)
    d.start("minimize(trust-exact)")
    d.busy("Hessian", lambda: _record(1))
    clock.now += 3.0
    d.idle("Hessian")
    d.busy("Hessian", lambda: _record(1))
    assert log.getvalue().count("evaluating Hessian") == 1


def test_a_slow_hessian_shows_life_in_a_real_fit():
    clock, out = FakeClock(), Terminal()
    shown = []

    def hess(x):
        shown.append(out.getvalue().split("\r")[-1])  # what the terminal shows meanwhile
        clock.now += 7.0
        return np.asarray(dr.hessian(rosen)(x))

    def fun(x):
        clock.now += 0.001
        return rosen(x)

    res = optimize.minimize(fun, X0, method="trust-exact", hess=hess,
                            progress=ProgressDisplay(out, clock=clock, notebook=False))
    assert res.success and len(shown) == res.nhev
    assert all("evaluating Hessian..." in s for s in shown)
    # the very first evaluation (a recording, for a model: often the slowest) shows too
    first = out.getvalue().split("\r")[1]
    assert first.startswith("minimize(trust-exact)  ") and "  f -  |g| -  nfev 0" in first
    assert first.rstrip().endswith("evaluating value and gradient...")
    assert out.getvalue().endswith("\n") and "done" in out.getvalue().split("\r")[-1]


def test_progress_true_writes_plain_lines_to_stderr_without_a_terminal(capsys):
    res = optimize.minimize(rosen, X0, method="BFGS", progress=True)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err and len(lines) >= 2
    assert re.match(r"minimize\(bfgs\)  \d+\.\d s  iteration 1  f ", lines[0])
    assert re.match(rf"minimize\(bfgs\)  done  \d+\.\d s  iteration {res.nit}  f ", lines[-1])
    assert "(success: Optimization terminated successfully.)" in lines[-1]


def test_a_run_that_raises_ends_the_live_line():
    out = Terminal()

    def fun(x):
        if fun.calls == 40:
            raise RuntimeError("boom")
        fun.calls += 1
        return rosen(x)

    fun.calls = 0
    with pytest.raises(RuntimeError, match="boom"):
        optimize.minimize(fun, X0, method="Nelder-Mead",
                          progress=ProgressDisplay(out, notebook=False))
    assert out.getvalue().endswith("\n")


def test_notebook_display_is_updated_in_place(monkeypatch, capsys):
    calls = []

    class Handle:
        def update(self, obj):
            calls.append(("update", obj))

    def display(obj, display_id=None):
        calls.append(("display", obj))
        assert display_id is True
        return Handle()

    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: types.SimpleNamespace(kernel=object())
    display_module = types.ModuleType("IPython.display")
    display_module.display = display
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display_module)
    stream = io.StringIO()
    clock = FakeClock()

    def fun(x):
        clock.now += 0.02
        return rosen(x)

    res = optimize.minimize(fun, X0, method="BFGS", progress=ProgressDisplay(clock=clock))
    assert [c[0] for c in calls[:2]] == ["display", "update"]
    assert [c[0] for c in calls].count("display") == 1
    # throttled: the run's fake time, 10 redraws a second, the first Hessian-free
    # draws, and the final state
    assert len(calls) <= clock.now / 0.1 + 3
    last = calls[-1][1]
    assert "  done  " in repr(last) and f"  iteration {res.nit}  " in repr(last)
    assert last._repr_html_().startswith("<pre") and "&lt;" not in repr(last)

    assert capsys.readouterr().err == ""  # nothing on stderr in a notebook
    # a stream the caller chose is written to, even in a notebook
    calls.clear()
    optimize.minimize(rosen, X0, method="BFGS", progress=ProgressDisplay(stream))
    assert calls == [] and "done" in stream.getvalue()
    # a shell without a kernel (terminal IPython) is not a notebook: stderr
    ipython.get_ipython = lambda: types.SimpleNamespace(kernel=None)
    optimize.minimize(rosen, X0, method="BFGS", progress=True)
    assert calls == [] and "done" in capsys.readouterr().err


def test_ipython_is_not_imported_outside_a_notebook():
    if "IPython" in sys.modules:
        pytest.skip("IPython already imported in this session")
    optimize.minimize(rosen, X0, progress=ProgressDisplay(io.StringIO()))
    assert "IPython" not in sys.modules
    with pytest.raises(ProgressError, match="no running IPython kernel"):
        optimize.minimize(rosen, X0, progress=ProgressDisplay(io.StringIO(), notebook=True))


def test_format_record_labels_per_solver():
    r = ProgressRecord("least_squares(trf)", "evaluation", None, 0.5, 1e-3, 4, 3, 0, 1.25,
                       None)
    assert format_record(r) == ("least_squares(trf)  1.2 s  cost 0.5  optimality 0.001  "
                                "nfev 4 njev 3")
    r = ProgressRecord("root(hybr)", "done", None, 1e-12, None, 9, 1, 0, 0.0, None, True,
                       "The solution\nconverged.")
    assert format_record(r) == ("root(hybr)  done  0.0 s  |F| 1e-12  nfev 9 njev 1  "
                                "(success: The solution converged.)")
    # the busy line keeps what is evaluated when a narrow terminal cuts it
    r = ProgressRecord("minimize(trust-exact)", "iteration", 4, 0.142194, 0.696024, 5, 5, 5,
                       81.8, None)
    assert format_record(r, busy="Hessian") == (
        "minimize(trust-exact)  81.8 s  iteration 4  f 0.142194  |g| 0.696  "
        "nfev 5 njev 5 nhev 5  evaluating Hessian...")


# ------------------------------------------------------------ composition
def test_progress_composes_with_implicit_differentiation_and_replay():
    def solved(theta):
        res = optimize.minimize(lambda x: np.sum((x - theta) ** 2) + np.sum(x ** 4), np.zeros(2),
                                method="BFGS", progress=records.append,
                                options={"gtol": 1e-12})
        return np.sum(res.x)

    records: list[ProgressRecord] = []
    theta = np.array([0.3, -0.7])
    g = dr.grad(solved)(theta)
    assert records and records[-1].event == "done"

    def plain(theta):
        return np.sum(optimize.minimize(lambda x: np.sum((x - theta) ** 2) + np.sum(x ** 4),
                                        np.zeros(2), method="BFGS",
                                        options={"gtol": 1e-12}).x)

    np.testing.assert_array_equal(g, dr.grad(plain)(theta))
    # the other solvers pass progress= to their plain solve likewise
    for solve in (lambda t, p: optimize.least_squares(lambda x: x ** 3 - t, np.ones(2),
                                                      progress=p).x,
                  lambda t, p: optimize.root(lambda x: x ** 3 - t, np.ones(2), progress=p).x,
                  lambda t, p: optimize.fsolve(lambda x: x ** 3 - t, np.ones(2), progress=p)):
        records.clear()
        g = dr.jacobian(lambda t, solve=solve: solve(t, records.append))(theta + 2.0)
        assert records and records[-1].event == "done"
        np.testing.assert_array_equal(g, dr.jacobian(lambda t, solve=solve: solve(t, False))(
            theta + 2.0))
        np.testing.assert_allclose(g, np.diag(1 / (3 * (theta + 2.0) ** (2 / 3))), rtol=1e-6)
    for replay in (True, False):
        a = optimize.minimize(rosen, X0, method="Newton-CG", replay=replay)
        b = optimize.minimize(rosen, X0, method="Newton-CG", replay=replay,
                              progress=lambda r: None)
        _same(a, b, skip=("execution_time", "replay_stats"))
        if replay:
            assert a.replay_stats.records == b.replay_stats.records


@pytest.mark.extras
def test_progress_keeps_one_dask_compute_per_evaluation():
    dask = need("dask")
    da = need("dask.array")
    rng = np.random.default_rng(5)
    X = rng.normal(size=(2000, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=2000)
    Xd, yd = da.from_array(X, chunks=500), da.from_array(y, chunks=500)
    computes = []

    def get(dsk, keys, **kwargs):
        computes.append(1)
        return dask.threaded.get(dsk, keys, **kwargs)

    records: list[ProgressRecord] = []
    with dask.config.set(scheduler=get):
        res = optimize.minimize(lambda w: np.mean((Xd @ w - yd) ** 2), np.zeros(3),
                                method="BFGS", progress=records.append)
    assert res.success and len(computes) == res.nfev
    ref = optimize.minimize(lambda w: np.mean((X @ w - y) ** 2), np.zeros(3), method="BFGS")
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-9)
    assert all(isinstance(r.fun, float) for r in records)
