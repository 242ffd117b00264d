"""Non-finite derivatives: a nan or inf in a transform's result makes it look again with
strong zeros (a (co)tangent element no selection lets through is exactly 0), so forward
and reverse mode agree where a mask hides a singular branch; what stays non-finite comes
with a NonFiniteDerivativeWarning naming the primitive, the user's line and the rewrite."""

import random
import warnings

import numpy as np
import pytest

import dualrev as dr
from dualrev import NonFiniteDerivativeWarning as NFW

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def pairwise(x):
    return np.sum(np.tril(np.sqrt((x[:, None] - x[None, :]) ** 2), -1))


def masked_sqrt(x):
    return np.sum(np.where(x > 0, np.sqrt(np.abs(x)), 0.0))


def silent(fn, *args):
    """fn(*args), failing on a NonFiniteDerivativeWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", NFW)
        return fn(*args)


def central(f, x, h=1e-6):
    out = np.zeros_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        out[i] = (f(x + e) - f(x - e)) / (2 * h)
    return out


X = np.array([1.0, 2.0, 3.0])
RIGHT = np.array([-2.0, 0.0, 2.0])


def test_masked_diagonal_every_transform():
    fd = central(pairwise, X)
    np.testing.assert_allclose(fd, RIGHT, atol=1e-6)
    for name, fn in [("grad", dr.grad(pairwise)), ("jacfwd", dr.jacfwd(pairwise)),
                     ("jacrev", dr.jacrev(pairwise)), ("jacobian", dr.jacobian(pairwise)),
                     ("value_and_grad", lambda x: dr.value_and_grad(pairwise)(x)[1]),
                     ("vjp", lambda x: dr.vjp(pairwise, x)[1](1.0)[0])]:
        np.testing.assert_array_equal(silent(fn, X), RIGHT, err_msg=name)
    v = np.array([0.3, -1.2, 0.7])
    _, t = silent(dr.jvp, pairwise, (X,), (v,))
    assert t == pytest.approx(RIGHT @ v)


def test_masked_diagonal_second_order_vmap_nesting():
    # piecewise linear away from ties: every second derivative is exactly 0
    for fn in [dr.hessian(pairwise), dr.jacrev(dr.jacrev(pairwise)),
               dr.jacfwd(dr.jacfwd(pairwise)), dr.jacfwd(dr.grad(pairwise))]:
        np.testing.assert_array_equal(silent(fn, X), np.zeros((3, 3)))
    np.testing.assert_array_equal(
        silent(dr.hvp(pairwise), X, np.ones(3)), np.zeros(3))
    xs = np.stack([X, np.array([3.0, -1.0, 0.5])])
    want = np.stack([RIGHT, central(pairwise, xs[1])])
    np.testing.assert_allclose(silent(dr.vmap(dr.grad(pairwise)), xs), want, atol=1e-6)
    np.testing.assert_allclose(silent(dr.vmap(dr.jacfwd(pairwise)), xs), want, atol=1e-6)
    # an inner transform's result seen from an outer one: d/dw of w * grad(f)(w x)
    outer = dr.grad(lambda w: np.sum(dr.grad(pairwise)(w * X) * X))
    assert silent(outer, 1.5) == pytest.approx(0.0)


def test_where_hides_sqrt_at_zero():
    x = np.array([0.0, 1.0, -1.0])
    want = np.array([0.0, 0.5, 0.0])
    for fn in [dr.grad(masked_sqrt), dr.jacfwd(masked_sqrt), dr.jacrev(masked_sqrt),
               dr.jacobian(masked_sqrt)]:
        np.testing.assert_array_equal(silent(fn, x), want)
    # the value is 0 on the left of 0: the left difference is the selected branch's
    h = 1e-7
    left = (masked_sqrt(x) - masked_sqrt(x - np.array([h, 0, 0]))) / h
    assert left == pytest.approx(0.0)
    np.testing.assert_allclose(central(masked_sqrt, x)[1:], want[1:], rtol=1e-6)
    np.testing.assert_array_equal(silent(dr.vmap(dr.grad(masked_sqrt)), np.stack([x, -x])),
                                  np.stack([want, np.array([0.0, 0.0, 0.5])]))


def test_zero_factor_is_not_a_selection_and_both_modes_say_so():
    # sqrt(x) * sqrt(x) is x: the cotangent reaching sqrt is a numeric 0 (a factor), not a
    # selection, so strong zeros must not give 0 there: both modes give nan, with a word
    f = lambda x: np.sum(np.sqrt(x) * np.sqrt(x))  # noqa: E731
    line = f.__code__.co_firstlineno
    x = np.array([0.0, 1.0])
    results = {}
    for name, fn in [("grad", dr.grad(f)), ("jacfwd", dr.jacfwd(f)), ("jacrev", dr.jacrev(f))]:
        with pytest.warns(NFW) as rec:
            results[name] = fn(x)
        (hit,) = [r for r in rec if r.category is NFW]
        w = hit.message
        assert w.prim == "sqrt" and w.what == name, str(w)
        assert f"test_nonfinite.py:{line}" in str(w) and "np.sqrt(x) * np.sqrt(x)" in str(w)
        assert "double where" in str(w)
        assert hit.filename.endswith("test_nonfinite.py") and hit.lineno == line
    for r in results.values():
        np.testing.assert_array_equal(r, [np.nan, 1.0])
    assert results["grad"] is not None


def test_singular_point_not_masked_warns_in_every_transform():
    f = lambda x: np.sqrt(x[0]) + 2.0 * x[1]  # noqa: E731
    x = np.array([0.0, 1.0])
    outs = []
    for fn in [dr.grad(f), dr.jacfwd(f), dr.jacrev(f), dr.jacobian(f)]:
        with pytest.warns(NFW, match="sqrt"):
            outs.append(fn(x))
    for o in outs:  # d/dx0 = inf (from the right), d/dx1 = 2 untouched by the inf column
        np.testing.assert_array_equal(o, [np.inf, 2.0])
    with pytest.warns(NFW, match="sqrt"):
        h = dr.hessian(f)(x)
    assert np.isfinite(h[1]).all() and h[1, 1] == 0.0
    # a direction without the singular component: strong zero, no warning
    _, t = silent(dr.jvp, f, (x,), (np.array([0.0, 1.0]),))
    assert t == 2.0
    assert silent(lambda: dr.vjp(lambda x: np.stack([np.sqrt(x[0]), x[1]]), x)[1](
        np.array([0.0, 1.0])))[0].tolist() == [0.0, 1.0]


def test_overflow_is_named():
    with pytest.warns(NFW, match="overflow") as rec:
        g = dr.grad(lambda x: np.sum(np.exp(x)))(np.array([1000.0, 0.0]))
    (hit,) = [r.message for r in rec if r.category is NFW]
    assert hit.prim == "exp" and hit.cause == "overflow"
    np.testing.assert_array_equal(g, [np.inf, 1.0])


def test_replay_of_a_random_function_keeps_the_first_result():
    rng = random.Random(0)

    def f(x):  # differs per call: the careful replay must not stand in for this call
        return np.sqrt(x) * np.sqrt(x) + rng.uniform(1.0, 2.0)

    with pytest.warns(NFW, match="could not locate"):
        g = dr.grad(f)(0.0)
    assert np.isnan(g)


def test_finite_results_pay_no_replay():
    calls = []

    def f(x):
        calls.append(1)
        return np.sum(np.sqrt(x))

    silent(dr.grad(f), np.array([1.0, 4.0]))
    assert len(calls) == 1
    with pytest.warns(NFW):
        dr.grad(f)(np.array([0.0, 4.0]))
    assert len(calls) == 3  # the first run and one careful replay


def test_forward_reach_passes_through_joint_rules():
    # found by tests/test_random_programs.py: concatenate (a joint JVP rule, no
    # per-argument rules) stopped the forward reach, so jacfwd lost its strong zeros
    pw = lambda v: np.sqrt((v[:, None] - v[None, :]) ** 2)  # noqa: E731
    p = lambda v: np.sum(np.tril(pw(np.stack([v, v ** 2]).T.sum(axis=1)), -1), axis=0)  # noqa: E731
    x = -np.ones(4)
    with pytest.warns(NFW):
        jf = dr.jacfwd(p)(x)
    with pytest.warns(NFW):
        jr = dr.jacrev(p)(x)
    np.testing.assert_array_equal(jf, jr)
    # all four values tie: out[j] = sum_{i>j} |y_i - y_j| has no derivative in y_i for
    # i >= j (j < 3), does not depend on y_i for i < j, and out[3] = 0
    want = np.triu(np.ones((4, 4), bool))
    want[3] = False
    np.testing.assert_array_equal(np.isnan(jf), want)
    np.testing.assert_array_equal(jf[~want], 0.0)


def test_an_edge_that_does_not_reach_is_cut_even_where_another_does():
    # found by the random programs: in jacrev(grad(f)) the row for x0 sent a zero
    # cotangent into d|x|^1.5/dx at x1 = 0 (whose own derivative is inf); the receiving
    # |x| was reached by another edge, so only a per-edge cut keeps H[0, 1] = 0
    f = lambda v: np.sum(np.sin(np.cumsum(np.abs(v) ** 1.5)))  # noqa: E731
    x = np.array([1.0, 0.0])
    with pytest.warns(NFW):
        h1 = dr.hessian(f)(x)
    with pytest.warns(NFW):
        h2 = dr.jacrev(dr.grad(f))(x)
    np.testing.assert_array_equal(h1, h2)
    assert h1[0, 1] == 0.0 and h1[1, 0] == 0.0 and np.isnan(h1[1, 1])
    # d2f/dx0^2 against second differences (f is smooth in x0 near 1)
    g = lambda t: f(np.array([t, 0.0]))  # noqa: E731
    h = 1e-4
    assert h1[0, 0] == pytest.approx((g(1 + h) - 2 * g(1) + g(1 - h)) / h**2, rel=1e-5)


def test_an_opaque_rule_behind_a_mask_warns_where_forward_mode_selects():
    # A custom_vjp's backward rule is opaque: run on the reach probe, its 0 * inf at the
    # masked element looks like a dependence, so reverse mode keeps the nan (conservative:
    # never a strong zero it cannot prove) and says so, naming the custom rule; forward
    # mode (through the body) selects the branch. Pinned as the known gap it is.
    @dr.custom_vjp
    def root(x):
        return np.sqrt(x)

    root.defvjp(lambda x: (np.sqrt(x), x), lambda x, g: (g * 0.5 / np.sqrt(x),))
    f = lambda x: np.sum(np.where(x > 0, root(np.abs(x)), 0.0))  # noqa: E731
    x = np.array([0.0, 1.0])
    with pytest.warns(NFW, match=r"custom_vjp\(root\)"):
        g = dr.grad(f)(x)
    np.testing.assert_array_equal(g, [np.nan, 0.5])
    np.testing.assert_array_equal(silent(dr.jacfwd(f), x), [0.0, 0.5])
    # the double where the warning advises makes both modes agree, silently
    safe = lambda x: np.sum(np.where(x > 0, root(np.where(x > 0, x, 1.0)), 0.0))  # noqa: E731
    np.testing.assert_array_equal(silent(dr.grad(safe), x), [0.0, 0.5])
    np.testing.assert_array_equal(silent(dr.jacfwd(safe), x), [0.0, 0.5])


def test_an_inner_transforms_nan_is_reported_by_both_levels():
    # the inner gradient of sqrt at 0 is inf (its value, seen by the outer transform as a
    # traced value's primal), the outer derivative of it is not finite either
    inner = dr.grad(lambda x: np.sum(np.sqrt(x)))
    x = np.array([0.0, 4.0])
    for outer in (dr.jacfwd(inner), dr.jacrev(inner), dr.hessian(lambda x: np.sum(np.sqrt(x)))):
        with pytest.warns(NFW) as rec:
            h = outer(x)
        assert {r.message.prim for r in rec if r.category is NFW} <= {"sqrt", "divide",
                                                                       "multiply", "power"}
        assert np.isfinite(h[1, 1]) and h[1, 1] == pytest.approx(-0.25 * 4.0 ** -1.5)
        assert h[0, 1] == 0.0 and h[1, 0] == 0.0 and not np.isfinite(h[0, 0])
