"""dualrev.testing: the checkers catch wrong derivatives and say where."""

import numpy as np
import pytest

import dualrev as dr
from dualrev.errors import CheckOptionError
from dualrev.primitive import register_ufunc
from dualrev.testing import check_grads, numerical_jvp
from dualrev.testing.strategies import assert_derivatives_consistent


def test_numerical_jvp_matches_closed_form():
    x = np.array([0.3, 1.2])
    v = np.array([1.0, -2.0])
    est, err = numerical_jvp(lambda x: np.sin(x) * x[0], (x,), (v,))
    exact = np.cos(x) * v * x[0] + np.sin(x) * v[0]
    np.testing.assert_allclose(est, exact, rtol=1e-10)
    assert np.all(err < 1e-8)


@pytest.fixture
def wrong_cube():
    """A ufunc registered with a deliberately wrong derivative (3x instead of 3x^2)."""
    ufunc = np.frompyfunc(lambda v: v**3, 1, 1)
    prim = dr.Primitive("cube", lambda x: np.asarray(ufunc(x), dtype=float), elementwise=True)
    bad = lambda g, ans, x: g * 3 * x
    prim.defjvp(bad)
    prim.defvjp(bad)
    register_ufunc(ufunc, prim)
    yield ufunc
    from dualrev.primitive import UFUNC_HANDLERS
    del UFUNC_HANDLERS[ufunc]


def test_check_grads_reports_worst_element(wrong_cube):
    x = np.array([0.5, 2.0, 1.0])
    with pytest.raises(AssertionError, match=r"forward mode \(JVP\): .*element 1 of 3.*analytic"):
        check_grads(wrong_cube, (x,))
    with pytest.raises(AssertionError, match="reverse mode"):
        check_grads(wrong_cube, (x,), modes=("rev",))
    with pytest.raises(AssertionError):
        assert_derivatives_consistent(wrong_cube, x)


def test_check_grads_passes_correct_functions_to_third_order():
    check_grads(lambda x: np.exp(np.sin(x)) * x, (np.array([0.1, -0.4]),), order=3)


# --- check_grads in JAX's positional order: (f, args, order, modes, atol, rtol, eps) ---

X = np.array([0.4, 1.3, -0.8])


def _wrong_second_derivative(name):
    """sin with a right first derivative whose own derivative is wrong: its JVP rule
    multiplies by a cos whose registered derivative is +sin (it should be -sin)."""
    bad_cos = dr.Primitive(name, np.cos, elementwise=True)
    rule = lambda g, ans, x: g * np.sin(x)
    bad_cos.defjvp(rule)
    bad_cos.defvjp(rule)

    @dr.custom_jvp
    def s(x):
        return np.sin(x)

    s.defjvp(lambda p, t: (s(p[0]), t[0] * bad_cos(p[0])))
    return s


def _slightly_wrong(rel):
    """sin whose derivative is off by the relative amount ``rel``."""
    @dr.custom_jvp
    def s(x):
        return np.sin(x)

    s.defjvp(lambda p, t: (s(p[0]), t[0] * np.cos(p[0]) * (1 + rel)))
    return s


def _wrong_vjp_only(name):
    """sin with a right JVP rule and a VJP rule 10% off."""
    p = dr.Primitive(name, np.sin, elementwise=True)
    p.defjvp(lambda g, ans, x: g * np.cos(x))
    p.defvjp(lambda g, ans, x: g * np.cos(x) * 1.1)
    return p


def test_order_is_the_third_positional_argument_as_in_jax():
    s = _wrong_second_derivative("testing_bad_cos_order")
    check_grads(s, (X,), 1)  # the first derivative is right
    check_grads(s, (X,), order=1)
    for call in (lambda: check_grads(s, (X,), 2), lambda: check_grads(s, (X,), order=2)):
        with pytest.raises(AssertionError, match="of the JVP function: derivative mismatch"):
            call()
    # each mode alone catches it at order 2, through its own derivative function
    with pytest.raises(AssertionError, match=r"forward mode \(JVP\) of the JVP function"):
        check_grads(s, (X,), 2, ("fwd",))
    with pytest.raises(AssertionError, match=r"reverse mode \(VJP\) of the VJP function"):
        check_grads(s, (X,), 2, ("rev",))


def test_the_default_order_is_one():
    # a wrong second derivative passes the default order, so the default is 1 (JAX has none)
    check_grads(_wrong_second_derivative("testing_bad_cos_default"), (X,))


def test_positional_and_keyword_calls_are_the_same_check():
    wrong = _wrong_vjp_only("testing_rev_only")
    check_grads(wrong, (X,), 1, ("fwd",))
    check_grads(wrong, (X,), modes=("fwd",))
    check_grads(wrong, (X,), 1, "fwd")  # one mode as a string, as JAX's `in` test allows
    for call in (lambda: check_grads(wrong, (X,), 1, ("rev",)),
                 lambda: check_grads(wrong, (X,), modes=("rev",)),
                 lambda: check_grads(wrong, (X,))):
        with pytest.raises(AssertionError, match=r"reverse mode \(VJP\): derivative mismatch"):
            call()
    # atol and rtol: the fifth and sixth positional arguments
    off = _slightly_wrong(1e-4)
    with pytest.raises(AssertionError, match="rtol 1e-06"):
        check_grads(off, (X,), 1)
    check_grads(off, (X,), 1, ("fwd", "rev"), 1e-3, 1e-3)
    check_grads(off, (X,), 1, atol=1e-3, rtol=1e-3)
    with pytest.raises(AssertionError, match="atol 1e-08 \\+ rtol 1e-05"):
        check_grads(off, (X,), 1, ("fwd", "rev"), 1e-8, 1e-5)


def test_eps_is_a_fixed_central_difference_step():
    x, v = np.array([0.0, 0.7]), np.array([1.0, 2.0])
    for h in (0.1, 0.3):
        est, err = numerical_jvp(np.sin, (x,), (v,), eps=h)
        exact = (np.sin(x + h * v) - np.sin(x - h * v)) / (2 * h)
        np.testing.assert_allclose(est, exact, rtol=1e-14, atol=1e-15)
        # its error estimate (Richardson) is the size of the actual error, O(h**2)
        actual = np.abs(est - np.cos(x) * v)
        np.testing.assert_allclose(err, actual, rtol=0.5)
    adaptive, _ = numerical_jvp(np.sin, (x,), (v,))
    np.testing.assert_allclose(adaptive, np.cos(x) * v, rtol=1e-10)
    # and check_grads uses it: a coarse step fails a correct derivative at tight tolerances
    check_grads(np.sin, (X,), 1, atol=1e-8, rtol=1e-6)
    with pytest.raises(AssertionError, match="derivative mismatch"):
        check_grads(np.sin, (X,), 1, atol=1e-8, rtol=1e-6, eps=0.3)
    check_grads(np.sin, (X,), 2, eps=1e-4)  # JAX's step, JAX's tolerances (1e-5)
    check_grads(np.sin, (X,), 1, eps=0.3, atol=0.1, rtol=0.1)


def test_default_tolerances_follow_the_precision():
    off = _slightly_wrong(1e-4)
    with pytest.raises(AssertionError, match="atol 1e-08 \\+ rtol 1e-06"):
        check_grads(off, (X,), 1)
    with pytest.raises(AssertionError, match="atol 1e-05 \\+ rtol 1e-05"):
        check_grads(off, (X,), 1, eps=1e-4)
    check_grads(off, (X.astype(np.float32),), 1)  # float32: 2e-3, as JAX's
    with pytest.raises(AssertionError, match="atol 0.002 \\+ rtol 0.002"):
        check_grads(_slightly_wrong(1e-2), (X.astype(np.float32),), 1)
    # complex64 counts as single precision too
    check_grads(lambda z: np.sin(z) * z, ((X + 0.5j).astype(np.complex64),), 2)


def test_a_function_that_computes_otherwise_under_the_transform_is_caught():
    # (as JAX does, the primal outputs of jvp and vjp are compared with f(*args): code
    # that tests isinstance(x, np.ndarray) takes another branch on traced values)
    f = lambda x: 2 * x if isinstance(x, np.ndarray) else 3 * x
    with pytest.raises(AssertionError, match=r"forward mode \(JVP\) primal output"):
        check_grads(f, (X,), 1, ("fwd",))
    with pytest.raises(AssertionError, match=r"reverse mode \(VJP\) primal output"):
        check_grads(f, (X,), 1, ("rev",))


def test_a_non_finite_finite_difference_is_explained():
    with pytest.raises(AssertionError, match="the finite difference is not finite"):
        check_grads(np.log, (np.array([1e-3]),), 1, eps=0.1)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"modes": ("forward",)}, "unknown mode 'forward'.*did you mean 'fwd'"),
    ({"modes": ("fwd", "reverse")}, "unknown mode 'reverse'.*did you mean 'rev'"),
    ({"modes": ("lin",)}, "'lin', JAX's linearize mode"),
    ({"modes": "both"}, "unknown mode 'both'"),
    ({"modes": ()}, "checks nothing"),
    ({"modes": None}, "unknown mode None"),
    ({"order": 0}, "order=0"),
    ({"order": 1.5}, "order=1.5"),
    ({"order": True}, "order=True"),
    ({"eps": 0.0}, "eps=0.0"),
    ({"eps": -1e-4}, "eps=-0.0001"),
    ({"eps": float("nan")}, "eps=nan"),
    ({"eps": 1e-4, "initial_step": 1e-3}, "exclude each other"),
    ({"atol": -1.0}, "atol=-1.0"),
    ({"rtol": "1e-3"}, "rtol='1e-3'"),
])
def test_refused_options_name_the_spelling(kwargs, match):
    with pytest.raises(dr.DualrevError, match=match) as info:
        check_grads(np.sin, (X,), **kwargs)
    assert isinstance(info.value, CheckOptionError) and isinstance(info.value, ValueError)


def test_numerical_jvp_refuses_a_bad_eps():
    with pytest.raises(CheckOptionError, match="eps=0"):
        numerical_jvp(np.sin, (X,), (X,), eps=0)


def test_seed_chooses_the_directions():
    seen = []

    @dr.custom_jvp
    def s(x):
        return np.sin(x)

    def rule(p, t):
        seen.append(np.array(t[0], dtype=float))
        return s(p[0]), t[0] * np.cos(p[0])

    s.defjvp(rule)
    for seed in (0, 0, 1):
        check_grads(s, (X,), 1, ("fwd",), seed=seed)
    assert np.array_equal(seen[0], seen[1]) and not np.allclose(seen[0], seen[2])


def _outcome(call):
    try:
        call()
    except AssertionError:
        return "fails"
    return "passes"


@pytest.mark.jax
def test_same_decisions_as_jax_check_grads():
    from tests.jaxref import jax_modules

    jax, jnp = jax_modules()
    from jax.test_util import check_grads as jax_check_grads

    @jax.custom_jvp
    def j_bad_sin(x):  # a wrong first derivative
        return jnp.sin(x)

    j_bad_sin.defjvp(lambda p, t: (j_bad_sin(p[0]), t[0] * jnp.sin(p[0])))

    @jax.custom_jvp
    def j_bad_cos(x):
        return jnp.cos(x)

    j_bad_cos.defjvp(lambda p, t: (j_bad_cos(p[0]), t[0] * jnp.sin(p[0])))

    @jax.custom_jvp
    def j_sin2(x):  # a right first derivative, a wrong second one
        return jnp.sin(x)

    j_sin2.defjvp(lambda p, t: (j_sin2(p[0]), t[0] * j_bad_cos(p[0])))

    @dr.custom_jvp
    def d_bad_sin(x):
        return np.sin(x)

    d_bad_sin.defjvp(lambda p, t: (d_bad_sin(p[0]), t[0] * np.sin(p[0])))
    cases = {  # name: (dualrev's function, JAX's function)
        "right": (lambda x: np.sin(x) * x, lambda x: jnp.sin(x) * x),
        "wrong first": (d_bad_sin, j_bad_sin),
        "wrong second": (_wrong_second_derivative("testing_bad_cos_jax"), j_sin2),
    }
    decisions = {}
    for name, (d_f, j_f) in cases.items():
        for order in (1, 2):
            for modes in (("fwd",), ("rev",), ("fwd", "rev")):
                ours = _outcome(lambda: check_grads(d_f, (X,), order, modes))  # noqa: B023
                theirs = _outcome(lambda: jax_check_grads(j_f, (X,), order, modes))  # noqa: B023
                assert ours == theirs, (name, order, modes, ours, theirs)
                decisions[name, order, modes] = ours
    assert decisions["right", 2, ("fwd", "rev")] == "passes"
    assert decisions["wrong first", 1, ("rev",)] == "fails"
    assert decisions["wrong second", 1, ("fwd", "rev")] == "passes"
    assert decisions["wrong second", 2, ("fwd",)] == "fails"
    # with eps, ours takes JAX's scheme: a coarse step fails both at their tight tolerances
    assert _outcome(lambda: check_grads(np.exp, (X,), 1, eps=0.5)) == "fails"
    assert _outcome(lambda: jax_check_grads(jnp.exp, (X,), 1, eps=0.5)) == "fails"
    # an unknown mode checks nothing in JAX; dualrev refuses it
    assert _outcome(lambda: jax_check_grads(j_bad_sin, (X,), 1, modes=("forward",))) == "passes"
    with pytest.raises(CheckOptionError):
        check_grads(d_bad_sin, (X,), 1, ("forward",))
