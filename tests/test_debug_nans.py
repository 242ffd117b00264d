"""dualrev.debug_nans: the first operation making a non-finite value raises NonFiniteError
naming it, the user's line, the elements and the pass; correct programs (masked branches,
finite results) run as without the mode; the mode costs nothing while it is off."""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.integrate
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import dualrev as dr
from dualrev import batching, config, forward, reverse
from dualrev.reverse import CarefulTape, Tape

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
replay = importlib.import_module("dualrev.replay")  # (dualrev.replay is the function)


def line_of(fn, marker: str) -> str:
    """``file:line`` of the line of ``fn``'s source holding ``marker``."""
    lines, start = inspect.getsourcelines(fn)
    for k, text in enumerate(lines):
        if marker in text:
            return f"{inspect.getsourcefile(fn)}:{start + k}"
    raise AssertionError(marker)


def raised(fn, *args, **kwargs):
    with pytest.raises(dr.NonFiniteError) as info:
        fn(*args, **kwargs)
    return info.value


# ------------------------------------------------------------------ the three passes
def shifted_log(x):
    y = x - 1.0
    return np.sum(np.log(y))  # the log


def test_forward_value_names_primitive_line_elements_and_inputs():
    with dr.debug_nans():
        e = raised(dr.grad(shifted_log), np.array([3.0, 0.5, 2.0, -4.0]))
    assert isinstance(e, FloatingPointError) and isinstance(e, dr.DualrevError)
    assert e.prim == "log" and e.pass_ == "forward" and not e.forward_finite
    assert e.where == line_of(shifted_log, "# the log")
    assert e.source == "return np.sum(np.log(y))  # the log"
    assert e.elements == [(1,), (3,)]
    assert e.values == [{"y": -0.5}, {"y": -5.0}]
    assert e.cause == "domain"
    msg = str(e)
    assert "log at [1]: y = -0.5; log at [3]: y = -5" in msg
    assert e.where in msg and "np.log(np.where(x > 0, x, 1.0))" in msg
    assert "xlogy" in msg and "log1p" in msg


def product_of_roots(x):
    return np.sum(np.sqrt(x) * np.sqrt(x))  # roots


def test_backward_cotangent_names_rule_and_says_forward_was_finite():
    x = np.array([0.0, 4.0])
    with warnings.catch_warnings():  # without the mode: a warning, and nan
        warnings.simplefilter("ignore", dr.NonFiniteDerivativeWarning)
        assert np.isnan(dr.grad(product_of_roots)(x)[0])
    with dr.debug_nans():
        e = raised(dr.grad(product_of_roots), x)
    assert (e.prim, e.pass_, e.forward_finite, e.cause) == ("sqrt", "backward", True, "zero")
    assert e.where == line_of(product_of_roots, "# roots")
    assert e.elements == [(0,)] and list(e.values[0].values()) == [0.0]
    assert e.what == "grad"
    assert "VJP (reverse-mode) rule of sqrt" in str(e)
    assert "forward value there was finite" in str(e)
    for transform in (dr.jacrev, dr.jacobian):
        with dr.debug_nans():
            e = raised(transform(lambda v: np.sqrt(v)), x)
        assert (e.prim, e.pass_, e.elements) == ("sqrt", "backward", [(0,)])


def test_forward_mode_tangent():
    x = np.array([0.0, 4.0])
    with dr.debug_nans():
        e = raised(dr.jvp, product_of_roots, (x,), (np.ones(2),))
        assert (e.prim, e.pass_, e.forward_finite) == ("sqrt", "tangent", True)
        assert e.where == line_of(product_of_roots, "# roots")
        e = raised(dr.jacfwd(lambda v: np.sqrt(v)), x)
        assert (e.prim, e.pass_, e.elements) == ("sqrt", "tangent", [(0,)])
        assert "JVP (forward-mode) rule of sqrt" in str(e)


# ------------------------------------------------------------------ no false alarms
def masked_root(x):
    return np.sum(np.where(x > 0, np.sqrt(x), 0.0))


def test_masked_cotangents_are_not_reported():
    x = np.array([0.0, 4.0])
    off = dr.grad(masked_root)(x), dr.jvp(masked_root, (x,), (np.ones(2),))[1]
    with dr.debug_nans():
        on = dr.grad(masked_root)(x), dr.jvp(masked_root, (x,), (np.ones(2),))[1]
        hess = dr.hessian(masked_root)(np.array([0.5, 4.0]))
    np.testing.assert_array_equal(on[0], off[0])
    np.testing.assert_array_equal(on[0], [0.0, 0.25])
    assert on[1] == off[1] == 0.25
    np.testing.assert_allclose(np.diag(hess), [-0.25 * 0.5 ** -1.5, -0.25 * 4 ** -1.5])


def where_log(x):
    return np.sum(np.where(x > 0, np.log(x), 0.0))  # single where


def double_where_log(x):
    return np.sum(np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), 0.0))


def test_unused_where_branch_raises_with_the_double_where_rewrite():
    # the choice (as JAX's jax_debug_nans): a value computed is checked, selected or
    # not; the message says it may be the unused branch and gives the rewrite
    x = np.array([2.0, -1.0])
    with dr.debug_nans():
        e = raised(dr.grad(where_log), x)
        assert e.prim == "log" and e.where == line_of(where_log, "# single where")
        assert "computes both branches" in str(e) and "double where" in str(e)
        np.testing.assert_array_equal(dr.grad(double_where_log)(x), [0.5, 0.0])


def test_finite_results_identical_with_and_without_the_mode():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 2.0, 5)
    w = rng.standard_normal((5, 5))

    def f(v):
        return np.sum(np.tanh(w @ v) ** 2) + np.log(v).sum() / np.linalg.norm(v)

    runs = [lambda: dr.grad(f)(x), lambda: dr.jacfwd(lambda v: np.tanh(w @ v))(x),
            lambda: dr.hessian(f)(x), lambda: dr.vmap(dr.grad(f))(np.stack([x, 2 * x])),
            lambda: dr.jvp(f, (x,), (x,))[1], lambda: dr.vjp(np.sin, x)[1](x)[0]]
    off = [r() for r in runs]
    with dr.debug_nans():
        on = [r() for r in runs]
    for a, b in zip(off, on, strict=True):
        np.testing.assert_array_equal(a, b)


# functions finite on (0.5, 4): the mode must leave their values and derivatives alone
_PROGRAMS = [
    lambda x: np.sum(np.log(x) * np.sqrt(x)),
    lambda x: np.sum(np.where(x > 1.0, np.sqrt(np.abs(x - 1.0)), 0.0)),  # masked at 1
    lambda x: np.max(np.exp(-x) / (1.0 + x ** 1.5)),
    lambda x: np.linalg.norm(np.tanh(x) - 0.5) + np.sum(np.arcsin(1.0 / (1.0 + x))),
    lambda x: np.sum(np.logaddexp(x, 2.0 * x) * np.tril(np.outer(x, x))[-1]),
]


@given(hnp.arrays(np.float64, st.integers(1, 5),
                  elements=st.floats(0.5, 4.0, allow_nan=False)),
       st.sampled_from(range(len(_PROGRAMS))))
def test_generated_programs_unchanged_by_the_mode(x, k):
    f = _PROGRAMS[k]
    runs = [dr.grad(f), dr.jacfwd(f), dr.hessian(f)]
    off = [r(x) for r in runs]
    with dr.debug_nans():
        on = [r(x) for r in runs]
    for a, b in zip(off, on, strict=True):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ nesting, vmap, rules
def log_square(x):
    return np.sum(np.log(x) ** 2)  # log squared


def test_nested_hessian():
    with dr.debug_nans():
        e = raised(dr.hessian(log_square), np.array([3.0, -1.0]))
        assert (e.prim, e.pass_, e.elements) == ("log", "forward", [(1,)])
        assert e.where == line_of(log_square, "# log squared")
        # a derivative of the inner gradient's rules: power(x, 0.5) at 0
        e = raised(dr.hessian(lambda x: np.sum(x ** 1.5)), np.array([3.0, 0.0]))
        assert (e.prim, e.pass_, e.what) == ("power", "tangent", "hessian")  # the transform called
        assert "an inner transform computes" in str(e)
        e = raised(dr.grad(dr.grad(lambda x: np.log(x))), -2.0)
        assert e.prim == "log" and e.pass_ == "forward"


def test_vmap_names_the_batch_element():
    xs = np.array([[1.0, 2.0], [3.0, -1.0], [-2.0, 1.0]])
    with dr.debug_nans():
        e = raised(dr.vmap(lambda x: np.log(x)), xs)
    assert e.prim == "log" and e.elements == [(1, 1), (2, 0)]
    assert "log at batch element 1, element [1]: x = -1" in str(e)


@dr.custom_jvp
def my_log(x):
    return np.log(x)


@my_log.defjvp
def _my_log_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return np.log(x), t / (x - 1.0)  # a wrong rule, infinite at 1


@dr.custom_vjp
def my_square(x):
    return x ** 2


def _square_fwd(x):
    return x ** 2, x


def _square_bwd(x, g):
    return (g * np.log(x - 2.0),)  # a wrong rule, nan below 2


my_square.defvjp(_square_fwd, _square_bwd)


def test_custom_rules_are_named():
    x = np.array([2.0, 1.0])
    with dr.debug_nans():
        e = raised(dr.grad(lambda v: np.sum(my_log(v))), x)
        assert (e.prim, e.pass_, e.elements) == ("custom_jvp(my_log)", "backward", [(1,)])
        assert "a rule of your own" in str(e)
        e = raised(dr.jvp, my_log, (x,), (np.ones(2),))
        assert (e.prim, e.pass_) == ("custom_jvp(my_log)", "tangent")
        e = raised(dr.grad(lambda v: np.sum(my_square(v))), np.array([3.0, 1.0]))
        assert (e.prim, e.pass_, e.elements) == ("custom_vjp(my_square)", "backward", [(1,)])


# ------------------------------------------------------------------ inputs, writes, replay
def test_input_already_non_finite():
    # a nan made of an inf input names that input and where it came from
    c = np.array([1.0, np.inf])
    with dr.debug_nans():
        e = raised(dr.grad(lambda x: np.sum(np.sin(x))), np.array([3.0, np.inf]))
        assert (e.prim, e.cause, e.elements) == ("sin", "input", [(1,)])
        assert "called with" in str(e)
        e = raised(dr.grad(lambda x: np.sum(x * c)), np.array([3.0, 0.0]))
        assert (e.prim, e.cause) == ("multiply", "input")
        assert np.isinf(e.values[0]["c"]) and "plain constant" in str(e)


def test_nan_argument_reaching_the_derivative():
    # passed on as data in the forward pass; the nan derivative it makes is located,
    # and the message says the input already was nan
    with dr.debug_nans():
        e = raised(dr.grad(lambda x: np.sum(np.sin(x) * 2)), np.array([1.0, np.nan]))
    assert (e.prim, e.pass_, e.cause, e.forward_finite) == ("sin", "backward", "input", False)
    assert np.isnan(e.values[0]["x"]) and "its input x already was" in str(e)


def test_non_finite_values_passed_on_are_data():
    # a nan or inf an operation is given and passes on is not reported: a nan fill for
    # np.nanmean, SciPy's nan outside a distribution's support, a -inf mask
    x = np.array([1.0, 2.0, 3.0])
    mask = np.array([True, False, True])

    def masked_mean(v):
        return np.nanmean(2.0 * np.where(mask, v, np.nan))

    off = dr.grad(masked_mean)(x)
    with dr.debug_nans():
        np.testing.assert_array_equal(dr.grad(masked_mean)(x), off)
        np.testing.assert_array_equal(off, [1.0, 0.0, 1.0])  # d mean(2 v) over 2 elements
        q = np.array([0.2, 0.5, 1.5])  # 1.5: outside (0, 1), SciPy's nan
        g = dr.grad(lambda s: np.nansum(scipy.stats.expon.ppf(q, scale=s)))(2.0)
    np.testing.assert_allclose(g, -np.log(0.8) - np.log(0.5))


def heat_step(u):
    u = u.copy()
    u[1:-1] += 0.1 * np.log(u[1:-1])  # the write
    return np.sum(u)


def test_in_place_write():
    with dr.debug_nans():
        e = raised(dr.grad(heat_step), np.array([1.0, 2.0, -1.0, 1.0]))
    assert e.prim == "log" and e.where == line_of(heat_step, "# the write")
    assert e.values == [{"u[1:-1]": -1.0}] and e.elements == [(1,)]


def test_replay_runs_dynamically_while_on():
    r = dr.replay(dr.grad(lambda x: np.sum(np.log(x))))
    with dr.debug_nans():
        e = raised(r, np.array([1.0, -1.0]))
        np.testing.assert_allclose(r(np.array([1.0, 4.0])), [1.0, 0.25])
    assert e.prim == "log"
    assert r.stats.records == 0 and r.stats.dynamic == 2
    assert r.stats.dynamic_reasons[-1] == "dualrev.debug_nans is on"
    np.testing.assert_allclose(r(np.array([1.0, 4.0])), [1.0, 0.25])
    assert r.stats.records == 1  # off again: recorded and replayed as before


def test_checkpoint():
    with dr.debug_nans():
        e = raised(dr.grad(lambda x: np.sum(dr.checkpoint(lambda y: np.log(y))(x))),
                   np.array([1.0, -1.0]))
        assert e.prim == "checkpoint" and "without dr.checkpoint" in str(e)
        g = dr.grad(lambda x: np.sum(dr.checkpoint(np.sqrt)(x)))(np.array([1.0, 4.0]))
    np.testing.assert_allclose(g, [0.5, 0.25])


def test_overflow_and_the_inf_switch():
    def sigmoid(x):
        return np.sum(1 / (1 + np.exp(-x)))  # naive sigmoid

    x = np.array([1.0, -1000.0])
    with dr.debug_nans():
        e = raised(dr.grad(sigmoid), x)
    assert (e.prim, e.cause, e.values[0]) == ("exp", "overflow", {"-x": 1000.0})
    assert "expit" in str(e) and e.where == line_of(sigmoid, "# naive sigmoid")
    with dr.debug_nans(inf=False):
        # inf passes the forward pass; the nan it makes in the backward pass does not
        e = raised(dr.grad(sigmoid), x)
        assert (e.prim, e.pass_, e.forward_finite) == ("exp", "backward", False)
        # an infinite gradient (no nan): the usual warning only
        with pytest.warns(dr.NonFiniteDerivativeWarning):
            g = dr.grad(lambda v: np.sum(np.exp(v)))(np.array([1000.0]))
        assert np.isinf(g[0])


def masked_softmax(x, mask):
    z = np.where(mask, x, -np.inf)  # a deliberate -inf
    e = np.exp(z - np.max(z))
    return e / np.sum(e)


def test_infinities_passed_on_are_data_made_ones_are_reported():
    # an inf the operation was given (a -inf mask) passes; one it makes stops the mode;
    # a nan it makes from an inf (-inf * 0) stops it too
    x, mask = np.array([1.0, 2.0, 3.0]), np.array([True, False, True])
    off = dr.jacrev(masked_softmax)(x, mask)
    with dr.debug_nans():
        np.testing.assert_array_equal(dr.jacrev(masked_softmax)(x, mask), off)
        e = raised(dr.grad(lambda v: np.sum(np.log(v - 1.0))), np.array([2.0, 1.0]))
        assert (e.prim, e.cause, e.elements) == ("log", "pole", [(1,)])
        e = raised(dr.grad(lambda v: np.sum(np.where(mask, v, -np.inf) * 0.0)), x)
        assert (e.prim, e.cause, e.elements) == ("multiply", "input", [(1,)])


def test_division_by_zero_is_a_pole():
    with dr.debug_nans():
        e = raised(dr.grad(lambda x: np.sum(x / (x - 1))), np.array([3.0, 1.0]))
    assert (e.prim, e.cause, e.values) == ("divide", "pole", [{"x": 1.0, "x - 1": 0.0}])


def test_unlocated_derivative_still_raises():
    # a function giving other values when run again: the careful replay cannot locate
    # the operation; the mode raises all the same
    rng = np.random.default_rng(1)

    def noisy(x):
        return np.sum(np.sqrt(x * rng.uniform(1.0, 2.0)))

    with dr.debug_nans():
        e = raised(dr.grad(noisy), np.array([0.0, 1.0]))
    assert e.prim is None and e.pass_ == "backward" and "could not locate" in str(e)


def test_drawings_checked_and_unchanged():
    # a drawing records through announcing traces: checked there too, drawn the same
    for mode in ("forward", "reverse"):
        off = dr.graph(shifted_log, mode=mode)(np.array([3.0, 2.0])).to_dot()
        with dr.debug_nans():
            assert dr.graph(shifted_log, mode=mode)(np.array([3.0, 2.0])).to_dot() == off
            e = raised(dr.graph(shifted_log, mode=mode), np.array([3.0, 0.5]))
        assert (e.prim, e.pass_, e.elements) == ("log", "forward", [(1,)])


# ------------------------------------------------------------------ SciPy: ODEs, fits
T = np.linspace(0.0, 1.0, 4)


def ode_loss(p):
    k = p[0]
    sol = scipy.integrate.solve_ivp(lambda t, y: -np.log(k) * y, (0.0, 1.0),  # the rhs
                                    np.array([1.0]), t_eval=T)
    return np.sum((sol.y[0] - np.exp(-0.7 * T)) ** 2)


def test_solve_ivp_right_hand_side():
    # without the mode SciPy's step control loops for ever on the nan of log(-2)
    with dr.debug_nans():
        g = dr.grad(ode_loss)(np.array([2.0]))
        e = raised(dr.grad(ode_loss), np.array([-2.0]))
    np.testing.assert_allclose(g, dr.grad(ode_loss)(np.array([2.0])), rtol=1e-12)
    assert e.prim == "log" and e.values == [{"k": -2.0}]
    assert e.where == line_of(ode_loss, "# the rhs")


def fit_objective(p):
    return (np.log(p[0]) - 1.0) ** 2 + 50 * p[0]  # the objective


def test_optimize_stops_at_the_first_nan():
    # BFGS's first step leaves log's domain; without the mode the fit wanders off
    with dr.debug_nans():
        e = raised(dr.optimize.minimize, fit_objective, np.array([3.0]), method="BFGS")
    assert e.prim == "log" and e.where == line_of(fit_objective, "# the objective")
    assert e.values[0]["p[0]"] < 0


# ------------------------------------------------------------------ the switch
def test_mode_restored_and_free_when_off():
    plain = (Tape.process, Tape.backward, Tape.push, CarefulTape.backward,
             forward.ForwardTrace.process, forward._AnnouncedForwardTrace.process,
             batching.BatchTrace.process, replay.Replayed.__call__)
    assert not config.DEBUG_NANS
    with dr.debug_nans():
        assert config.DEBUG_NANS and config.DEBUG_INFS
        assert Tape.process is not plain[0] and Tape.process is reverse._checked_process
        with dr.debug_nans(inf=False):
            assert config.DEBUG_NANS and not config.DEBUG_INFS
        assert config.DEBUG_INFS
        with dr.debug_nans(False):
            assert not config.DEBUG_NANS and Tape.process is plain[0]
        assert config.DEBUG_NANS
    with pytest.raises(ZeroDivisionError), dr.debug_nans():
        1 / 0  # noqa: B018
    assert not config.DEBUG_NANS
    # off: the very functions of the import, nothing wrapped around the hot paths
    assert plain == (Tape.process, Tape.backward, Tape.push, CarefulTape.backward,
                     forward.ForwardTrace.process, forward._AnnouncedForwardTrace.process,
                     batching.BatchTrace.process, replay.Replayed.__call__)
    assert Tape.process is reverse._PLAIN_METHODS[Tape][0]

    @dr.debug_nans()
    def decorated():
        return config.DEBUG_NANS

    assert decorated() and not config.DEBUG_NANS


def test_set_debug_nans_and_threads():
    # the mode is process-wide (as jax.config): another thread sees it; which rules run
    # is per thread
    errors = []

    def work():
        try:
            dr.grad(lambda x: np.log(x))(-1.0)
        except dr.NonFiniteError as e:
            errors.append(e.prim)

    config.set_debug_nans(True)
    try:
        t = threading.Thread(target=work)
        t.start()
        t.join()
    finally:
        config.set_debug_nans(False)
    assert errors == ["log"]
    work()  # off: no error
    assert errors == ["log"]


@pytest.mark.parametrize("value,infs", [("1", True), ("nan", False)])
def test_environment_variable(value, infs):
    code = ("import numpy as np, dualrev as dr\n"
            "from dualrev import config\n"
            "print(config.DEBUG_NANS, config.DEBUG_INFS)\n"
            "try:\n"
            "    dr.grad(lambda x: np.log(x))(-1.0)\n"
            "except dr.NonFiniteError as e:\n"
            "    print(e.prim)\n")
    env = {**os.environ, "DUALREV_DEBUG_NANS": value, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, cwd=os.path.dirname(os.path.dirname(__file__)),
                         timeout=120, check=True).stdout.split("\n")
    assert out[0] == f"True {infs}" and out[1] == "log"


def test_only_the_checking_paths_read_the_switch():
    # zero cost while off: the switch is read by the choosers (config.py) and by code
    # that runs only in the mode or once a result is already non-finite, never by an
    # operation's path (the hot paths are swapped, not branched)
    root = Path(dr.__file__).parent
    readers = set()
    for path in sorted(root.rglob("*.py")):
        if path.name == "config.py":
            continue
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.Attribute) and node.attr in ("DEBUG_NANS",
                                                                     "DEBUG_INFS"):
                    readers.add((path.name, fn.name))
    assert readers == {("debug.py", "_bad"), ("debug.py", "derivative_error"),
                       ("integrate.py", "_checked_rhs"), ("integrate.py", "f"),
                       ("transforms.py", "_warn_nonfinite")}
