"""custom_jvp and custom_vjp: used by every mode (forward mode over custom_vjp by its
transposed backward rule), nested, batched, checked against finite differences and
equivalent differentiable code; malformed rules refused; static, keyword and pytree
arguments; tuple outputs; residual snapshots; stop_gradient."""

import functools
import math

import numpy as np
import pytest
import scipy.special as sc
from hypothesis import given
from hypothesis import strategies as st

import dualrev as dr
from dualrev.reverse import Tape
from dualrev.testing import check_grads
from dualrev.testing.strategies import assert_derivatives_consistent
from dualrev.tracer import new_level


@dr.custom_jvp
def log1pexp(x):
    return np.log1p(np.exp(x))


@log1pexp.defjvp
def _log1pexp_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return log1pexp(x), t * (1 - 1 / (1 + np.exp(x)))


def test_custom_jvp_is_stable_where_autodiff_of_the_body_is_not():
    with np.errstate(over="ignore"):
        g = dr.grad(lambda x: np.sum(log1pexp(x)))(np.array([800.0, -800.0, 0.0]))
        naive = dr.grad(lambda x: np.sum(np.log1p(np.exp(x))))(np.array([800.0]))
    np.testing.assert_allclose(g, [1.0, 0.0, 0.5])
    assert np.isnan(naive[0])  # exp overflow: inf / inf


def test_custom_jvp_all_modes_and_orders():
    x = np.array([-1.3, 0.2, 2.5])
    check_grads(log1pexp, (x,), order=3)
    sig = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(dr.jacfwd(log1pexp)(x), np.diag(sig), rtol=1e-14)
    np.testing.assert_allclose(dr.jacrev(log1pexp)(x), np.diag(sig), rtol=1e-14)
    np.testing.assert_allclose(dr.hessian(lambda x: np.sum(log1pexp(x)))(x),
                               np.diag(sig * (1 - sig)), rtol=1e-13)


def test_custom_jvp_rule_is_actually_used():
    @dr.custom_jvp
    def f(x):
        return x**2

    @f.defjvp
    def _(primals, tangents):
        return f(primals[0]), 10.0 * tangents[0]  # deliberately not 2x

    assert dr.grad(f)(3.0) == 10.0
    assert dr.jvp(f, (3.0,), (1.0,)) == (9.0, 10.0)


def test_custom_jvp_two_arguments_one_differentiated():
    @dr.custom_jvp
    def scaled(x, s):
        return x * s

    @scaled.defjvp
    def _(primals, tangents):
        (x, s), (tx, ts) = primals, tangents
        return scaled(x, s), tx * s + x * ts

    x, s = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    check_grads(scaled, (x, s), order=2)
    np.testing.assert_allclose(dr.grad(lambda s: np.sum(scaled(x, s)))(s), x)


# A stand-in for compiled code dualrev cannot see into: it refuses traced values. (NumPy's
# own np.asarray, bound before any transform runs: the name np.asarray is replaced while
# one runs, and takes traced values.)
_NUMPY_ASARRAY = np.asarray


def _opaque_cube(x):
    return _NUMPY_ASARRAY(x, dtype=float) ** 3


@dr.custom_vjp
def cube(x):
    return _opaque_cube(x)


def _cube_fwd(x):
    # Calling cube itself (not the opaque code) lets an outer transform record it too.
    return cube(x), (x,)


def _cube_bwd(res, g):
    (x,) = res
    return (g * 3 * x**2,)


cube.defvjp(_cube_fwd, _cube_bwd)


def test_custom_vjp_wraps_opaque_code():
    x = np.array([0.5, -1.0, 2.0])
    with pytest.raises(dr.TracerConversionError):
        dr.grad(lambda x: np.sum(_opaque_cube(x)))(x)
    np.testing.assert_allclose(dr.grad(lambda x: np.sum(cube(x)))(x), 3 * x**2)
    np.testing.assert_allclose(dr.jacrev(cube)(x), np.diag(3 * x**2))
    check_grads(cube, (x,), modes=("rev",))


def test_custom_vjp_nested_reverse_over_reverse():
    # The bwd rule is NumPy code, so grad of grad goes through it.
    x = np.array([0.5, -1.0, 2.0])
    h = dr.jacrev(dr.grad(lambda x: np.sum(cube(x))))(x)
    np.testing.assert_allclose(h, np.diag(6 * x))
    # d/da [a * d/dy (y a)^3 at y=1] = d/da [3 a^4] = 12 a^3
    assert dr.grad(lambda a: a * dr.grad(lambda y: np.sum(cube(y * a)))(1.0))(2.0) == 96.0


def test_custom_vjp_forward_mode_traces_the_body():
    @dr.custom_vjp
    def f(x, y):
        return np.sin(x) * y

    f.defvjp(lambda x, y: (f(x, y), (x, y)),
             lambda res, g: (g * np.cos(res[0]) * res[1], g * np.sin(res[0])))
    x, y = np.array([0.1, 0.7]), np.array([2.0, -1.0])
    check_grads(f, (x, y), order=2)
    np.testing.assert_allclose(dr.hessian(lambda x: np.sum(f(x, y)))(x),
                               np.diag(-np.sin(x) * y), rtol=1e-14)


def test_custom_vjp_bwd_must_return_a_tuple():
    @dr.custom_vjp
    def f(x):
        return x * 2

    f.defvjp(lambda x: (x * 2, None), lambda res, g: g * 2)
    with pytest.raises(dr.DualrevError, match="tuple of 1 cotangent"):
        dr.grad(f)(1.0)


def test_stop_gradient():
    f = lambda x: x * dr.stop_gradient(x)
    assert dr.grad(f)(3.0) == 3.0
    assert dr.jvp(f, (3.0,), (1.0,)) == (9.0, 3.0)
    # inside nested transforms it stops all levels
    assert dr.grad(dr.grad(lambda x: x**2 * dr.stop_gradient(x)))(2.0) == 2 * 2.0


def test_transposed_custom_jvp_keeps_the_imaginary_part():
    # reverse mode transposes the rule; a complex input's cotangent was cut to its real part
    @dr.custom_jvp
    def sq(z):
        return z * np.conj(z) + z**2

    @sq.defjvp
    def sq_jvp(primals, tangents):
        (z,), (dz,) = primals, tangents
        return sq(z), dz * np.conj(z) + z * np.conj(dz) + 2 * z * dz

    z = np.array([1 + 2j, 0.3 - 1j])
    check_grads(sq, (z,), order=2)
    # d(Re + Im) = Re((2 conj(z) + 2z - 2iz) dz) under the pairing Re(ct * t)
    g = dr.grad(lambda a: np.sum(np.real(sq(a)) + np.imag(sq(a))))(z)
    np.testing.assert_allclose(g, 2 * np.conj(z) + 2 * z * (1 - 1j), rtol=1e-14)


# ---------------------------------------------------------------- residuals by reference
@dr.custom_vjp
def scale(x, w):
    return x * w


scale.defvjp(lambda x, w: (scale(x, w), (w,)), lambda res, g: (g * res[0], None))


def test_a_residual_rewritten_after_the_call_does_not_change_the_pullback():
    # the example: grad 7 instead of 1 when w was held by reference
    w = np.ones(3)
    _, pull = dr.vjp(lambda x: scale(x, w), np.ones(3))
    w[:] = 7.0
    np.testing.assert_array_equal(pull(np.ones(3))[0], np.ones(3))


def test_a_residual_the_caller_holds_outside_the_arguments_is_copied_too():
    buf = np.array([2.0, 3.0])

    @dr.custom_vjp
    def f(x):
        return x * buf

    f.defvjp(lambda x: (f(x), buf), lambda b, g: (g * b,))  # a closed-over work buffer

    def loss(x):
        y = f(x)
        buf[:] = -1.0  # the work buffer is reused before the backward pass
        return np.sum(y)

    np.testing.assert_array_equal(dr.grad(loss)(np.ones(2)), [2.0, 3.0])


class _Holder:
    """A residual that is not a pytree: a plain class holding the array."""

    def __init__(self, w):
        self.w = w


@dr.custom_vjp
def scale_held(x, w):
    return x * w


scale_held.defvjp(lambda x, w: (scale_held(x, w), _Holder(w)),
                  lambda res, g: (g * res.w, None))


@pytest.mark.parametrize("transform", ["grad", "jacrev", "vjp"])
def test_an_array_inside_an_object_residual_is_snapshotted(transform):
    # red-team probe: a residual object (not a pytree) kept the caller's array by
    # reference, so rewriting it after the call gave grad 7 instead of 2
    x = np.array([0.3, -0.7, 1.1])
    w = np.full(3, 2.0)

    def loss(x):
        y = scale_held(x, w)
        w[:] = 7.0
        return np.sum(y)

    if transform == "vjp":
        _, pull = dr.vjp(lambda x: scale_held(x, w), x)
        w[:] = 9.0
        got = pull(np.ones(3))[0]
    else:
        got = getattr(dr, transform)(loss)(x)
    np.testing.assert_array_equal(got, np.full(3, 2.0))
    w[:] = 2.0
    np.testing.assert_array_equal(dr.jacfwd(loss)(x), np.full(3, 2.0))  # forward agrees


def test_a_residual_object_that_cannot_be_copied_is_kept():
    class Opaque:
        def __init__(self, w):
            self.w = w

        def __deepcopy__(self, memo):
            raise TypeError("not copyable")

    @dr.custom_vjp
    def f(x):
        return 3.0 * x

    f.defvjp(lambda x: (f(x), Opaque(3.0)), lambda res, g: (res.w * g,))
    np.testing.assert_array_equal(dr.grad(lambda x: np.sum(f(x)))(np.ones(2)), [3.0, 3.0])


def test_an_unchanged_residual_array_shares_one_copy():
    # the tape's copy-sharing: the same unchanged weight at every step is copied once

    w = np.arange(4.0)
    tape = Tape(new_level())
    x = tape.input(np.ones(4))
    for _ in range(3):
        x = scale(x, w)
    kept = [node.params["residuals"].value[0] for node in tape.nodes[1:]]
    assert all(k is kept[0] for k in kept) and kept[0] is not w
    w[0] = 5.0  # changed: the next use gets a fresh copy
    scale(x, w)
    newer = tape.nodes[-1].params["residuals"].value[0]
    assert newer is not kept[0] and newer[0] == 5.0 and kept[0][0] == 0.0
    tape.finish()


# ---------------------------------------------------------------- malformed rules
def _vjp_returning(*cts):
    @dr.custom_vjp
    def f(x):
        return 2 * x

    f.defvjp(lambda x: (f(x), None), lambda res, g: cts)
    return f


@pytest.mark.parametrize("cts, match", [
    ((np.ones(5),), r"custom_vjp\(f\) returned a value of shape \(5,\) for argument 0, "
                    r"whose shape is \(3,\)"),
    ((1.0,), r"shape \(\) for argument 0, whose shape is \(3,\)"),
    ((np.ones(3), np.ones(3)), r"tuple of 1 cotangent\(s\).*a tuple of length 2"),
    ((np.ones(3, complex),), r"complex value for argument 0, which is real"),
])
def test_a_malformed_bwd_rule_is_refused(cts, match):
    f = _vjp_returning(*cts)
    x = np.ones(3)
    with pytest.raises(dr.CustomRuleError, match=match):
        dr.grad(lambda x: np.sum(f(x)))(x)
    with pytest.raises(dr.CustomRuleError, match=match):
        dr.jacrev(f)(x)
    with pytest.raises(dr.CustomRuleError, match=match):  # under vmap too
        dr.vmap(dr.grad(lambda x: np.sum(f(x))))(np.ones((2, 3)))
    with pytest.raises(dr.CustomRuleError, match=match):  # and in forward mode
        dr.jvp(f, (x,), (x,))


def test_a_bwd_rule_must_return_none_for_a_static_argument():
    @dr.custom_vjp
    def f(x, how):
        return 2 * x

    f.defvjp(lambda x, how: (f(x, how), None), lambda res, g: (2 * g, 0.0))
    with pytest.raises(dr.CustomRuleError, match=r"argument 1, which is not an array \(str\)"):
        dr.grad(lambda x: f(x, "fast"))(1.0)


def _jvp_returning(out_shape, tangent):
    @dr.custom_jvp
    def f(x):
        return 2 * x

    f.defjvp(lambda p, t: (np.zeros(out_shape), tangent))
    return f


@pytest.mark.parametrize("out_shape, tangent, match", [
    ((3,), np.ones(5), r"custom_jvp\(f\) returned a tangent of shape \(5,\) for the output, "
                       r"whose shape is \(3,\)"),
    ((2,), np.ones(3), r"returned a primal of shape \(2,\) for the output, but the function "
                       r"returns shape \(3,\)"),
    ((3,), np.ones(3, complex), r"complex tangent for the output, which is real"),
    ((3,), None, r"None as the tangent of the output"),
])
def test_a_malformed_jvp_rule_is_refused(out_shape, tangent, match):
    f = _jvp_returning(out_shape, tangent)
    x = np.ones(3)
    for run in (lambda: dr.jvp(f, (x,), (x,)), lambda: dr.jacfwd(f)(x),
                lambda: dr.grad(lambda x: np.sum(f(x)))(x),
                lambda: dr.vmap(lambda x: dr.jvp(f, (x,), (x,))[1])(np.ones((2, 3)))):
        with pytest.raises(dr.CustomRuleError, match=match):
            run()


@pytest.mark.parametrize("rule", [
    lambda x, t: 2.0 * t + 1.0,         # a constant added to the tangent
    lambda x, t: 2.0 * t + 2.0 * x,     # the primal's value added (mixing up the pair)
])
def test_an_affine_jvp_rule_is_refused_in_reverse_mode(rule):
    # red-team probe: reverse mode transposes the rule at t = 0, which drops the
    # constant, so grad gave 2 where jvp (the rule as written) gave 3: now refused
    @dr.custom_jvp
    def f(x):
        return 2.0 * x

    f.defjvp(lambda p, t: (f(p[0]), rule(p[0], t[0])))
    x = np.array([0.3, -0.7, 1.1])
    for run in (lambda: dr.grad(lambda x: np.sum(f(x)))(x), lambda: dr.jacrev(f)(x),
                lambda: dr.hessian(lambda x: np.sum(f(x) ** 2))(x)):
        with pytest.raises(dr.CustomRuleError, match=r"must be linear in the tangents.*"
                                                      r"argument 0 is not a linear function"):
            run()


def test_a_jvp_rule_must_return_a_pair():
    @dr.custom_jvp
    def f(x):
        return 2 * x

    f.defjvp(lambda p, t: 2 * t[0])
    with pytest.raises(dr.CustomRuleError, match=r"must return a pair \(output, output_tangent\)"):
        dr.jvp(f, (1.0,), (1.0,))


@pytest.mark.parametrize("fwd_out, match", [
    (lambda y: y, r"fwd rule of custom_vjp\(f\) must return a pair \(output, residuals\); "
                  r"it returned a ndarray"),
    (lambda y: (y, None, None), r"must return a pair.*a tuple of length 3"),
    (lambda y: ((y, y), None), r"returned an output of structure \(\*, \*\) and shapes "
                               r"\[\(2,\), \(2,\)\], but the function returns \* and "
                               r"shapes \[\(2,\)\]"),
    (lambda y: (y[:1], None), r"shapes \[\(1,\)\], but the function returns \* and "
                              r"shapes \[\(2,\)\]"),
])
def test_a_fwd_rule_of_the_wrong_structure_is_refused(fwd_out, match):
    @dr.custom_vjp
    def f(x):
        return 2 * x

    f.defvjp(lambda x: fwd_out(f(x)), lambda res, g: (2 * g,))
    x = np.ones(2)
    for run in (lambda: dr.grad(lambda x: np.sum(f(x)))(x), lambda: dr.jacfwd(f)(x)):
        with pytest.raises(dr.CustomRuleError, match=match):
            run()


# ---------------------------------------------------------------- forward mode by the rules
def test_forward_mode_over_custom_vjp_uses_its_rules_not_its_body():
    # cube's body converts its input (np.asarray): forward mode used to trace it and fail
    x = np.array([0.5, -1.0, 2.0])
    t = np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(dr.jvp(cube, (x,), (t,))[1], 3 * x**2 * t, rtol=1e-15)
    np.testing.assert_allclose(dr.jacfwd(cube)(x), np.diag(3 * x**2), rtol=1e-15)
    np.testing.assert_allclose(dr.jacobian(lambda x: np.tile(cube(x), 2))(x),
                               np.tile(np.diag(3 * x**2), (2, 1)), rtol=1e-15)
    np.testing.assert_allclose(dr.hessian(lambda x: np.sum(cube(x)))(x), np.diag(6 * x),
                               rtol=1e-15)
    np.testing.assert_allclose(dr.hessian(lambda x: np.sum(cube(x)))(x),
                               dr.hessian(lambda x: np.sum(x**3))(x), rtol=1e-15)
    check_grads(cube, (x,), order=3)  # every mix of modes against finite differences


def test_forward_mode_uses_the_rules_even_where_they_differ_from_the_body():
    # the rules define the derivative in every mode: forward must equal reverse
    @dr.custom_vjp
    def f(x):
        return np.sin(x)

    f.defvjp(lambda x: (f(x), x), lambda x, g: (g * 10.0 * np.cos(x),))
    x = np.array([0.3, 1.2])
    np.testing.assert_allclose(dr.jacfwd(f)(x), dr.jacrev(f)(x), rtol=1e-15)
    np.testing.assert_allclose(dr.jacfwd(f)(x), np.diag(10 * np.cos(x)), rtol=1e-15)


def test_forward_mode_over_custom_vjp_with_several_and_static_arguments():
    @dr.custom_vjp
    def f(x, y, how):
        xa, ya = np.asarray(x), np.asarray(y)  # not differentiable
        return xa * ya**2 if how == "sq" else xa * ya

    def f_fwd(x, y, how):
        return f(x, y, how), (x, y, how)

    def f_bwd(res, g):
        x, y, how = res
        if how == "sq":
            return g * y**2, g * 2 * x * y, None
        return g * y, g * x, None

    f.defvjp(f_fwd, f_bwd)
    x, y = np.array([0.5, -1.5]), np.array([2.0, 0.7])
    for how, ref in (("sq", lambda x, y: x * y**2), ("lin", lambda x, y: x * y)):
        g = lambda x, y: np.sum(np.sin(f(x, y, how)))  # noqa: B023
        r = lambda x, y: np.sum(np.sin(ref(x, y)))  # noqa: B023
        for argnums in (0, 1, (0, 1)):
            np.testing.assert_allclose(dr.hessian(g, argnums)(x, y),
                                       dr.hessian(r, argnums)(x, y), rtol=1e-13, atol=1e-15)
        check_grads(lambda x, y: f(x, y, how), (x, y), order=2)  # noqa: B023
        np.testing.assert_allclose(dr.jacfwd(f, (0, 1))(x, y, how=how)[1],
                                   dr.jacrev(f, (0, 1))(x, y, how=how)[1], rtol=1e-15)


def test_hessian_of_an_opaque_scipy_likelihood_wrapped_in_custom_vjp():
    # The lifelines pattern: a log-likelihood term evaluated by plain SciPy (a compiled
    # call dualrev cannot trace) inside custom_vjp, fitted with a Hessian.

    @dr.custom_vjp
    def log_gammainc(a, x):
        return np.log(sc.gammainc(float(a), np.asarray(x)))

    def fwd(a, x):
        return log_gammainc(a, x), (a, x)

    def bwd(res, g):
        a, x = res
        # d/dx log P(a, x) = x^(a-1) e^-x / (Gamma(a) P(a, x)); a is held fixed here
        return None, g * np.exp((a - 1) * np.log(x) - x - sc.gammaln(a)) / sc.gammainc(a, x)

    log_gammainc.defvjp(fwd, bwd)
    x = np.array([0.5, 1.5, 4.0])
    f = lambda x: np.sum(log_gammainc(2.5, x))
    ref = lambda x: np.sum(np.log(sc.gammainc(2.5, x)))  # differentiable by dualrev
    np.testing.assert_allclose(dr.hessian(f)(x), dr.hessian(ref)(x), rtol=1e-12)
    np.testing.assert_allclose(dr.jacfwd(dr.grad(f))(x), dr.jacrev(dr.grad(f))(x),
                               rtol=1e-13)
    check_grads(lambda x: log_gammainc(2.5, x), (x,), order=2)


def test_forward_mode_over_custom_vjp_under_vmap_and_nesting():
    x = np.array([0.5, -1.0, 2.0])
    xs = np.stack([x, 2 * x])
    ones = np.ones(3)
    np.testing.assert_allclose(dr.vmap(lambda x: dr.jvp(cube, (x,), (ones,))[1])(xs),
                               3 * xs**2, rtol=1e-15)
    np.testing.assert_allclose(dr.jvp(dr.vmap(cube), (xs,), (np.ones_like(xs),))[1],
                               3 * xs**2, rtol=1e-15)
    np.testing.assert_allclose(dr.vmap(dr.hessian(lambda x: np.sum(cube(x))))(xs),
                               [np.diag(6 * v) for v in xs], rtol=1e-15)
    # forward over forward: the second derivative 6x
    d2 = dr.jvp(lambda x: dr.jvp(cube, (x,), (ones,))[1], (x,), (ones,))[1]
    np.testing.assert_allclose(d2, 6 * x, rtol=1e-15)


def test_forward_mode_over_custom_vjp_follows_the_complex_convention():
    @dr.custom_vjp
    def sq(z):
        return np.asarray(z) ** 2

    sq.defvjp(lambda z: (sq(z), z), lambda z, g: (g * 2 * z,))  # JAX's: ct * f'(z)
    z = np.array([1 + 2j, 0.5 - 1j])
    np.testing.assert_allclose(dr.jvp(sq, (z,), (np.ones(2, complex),))[1], 2 * z)
    np.testing.assert_allclose(dr.jacfwd(sq, holomorphic=True)(z),
                               dr.jacrev(sq, holomorphic=True)(z), rtol=1e-15)

    @dr.custom_vjp
    def cis(x):  # a real input, a complex output: the cotangent is the real part
        return np.exp(1j * np.asarray(x))

    cis.defvjp(lambda x: (cis(x), x), lambda x, g: (np.real(g * 1j * np.exp(1j * x)),))
    x = np.array([0.3, 1.1])
    np.testing.assert_allclose(dr.jacfwd(cis)(x), np.diag(1j * np.exp(1j * x)), rtol=1e-15)
    check_grads(cis, (x,), order=2)

    @dr.custom_vjp
    def abs2(z):  # a complex input, a real output: d|z|^2 = Re(2 conj(z) dz)
        return np.abs(np.asarray(z)) ** 2

    abs2.defvjp(lambda z: (abs2(z), z), lambda z, g: (g * 2 * np.conj(z),))
    t = np.array([0.3 - 0.7j, 1 + 1j])
    np.testing.assert_allclose(dr.jvp(abs2, (z,), (t,))[1],
                               dr.jvp(lambda z: np.abs(z) ** 2, (z,), (t,))[1], rtol=1e-15)
    np.testing.assert_allclose(dr.jvp(abs2, (z,), (t,))[1], np.real(2 * np.conj(z) * t),
                               rtol=1e-15)


def test_forward_mode_refuses_a_backward_rule_that_is_not_linear():
    @dr.custom_vjp
    def f(x):
        return x

    f.defvjp(lambda x: (f(x), None), lambda res, g: (g + 1.0,))
    with pytest.raises(dr.CustomRuleError, match=r"linear in the cotangent g, but it is not "
                                                 r"\(its value at a probe cotangent differs"):
        dr.jvp(f, (1.0,), (1.0,))

    @dr.custom_vjp
    def h(x):
        return x

    h.defvjp(lambda x: (h(x), None), lambda res, g: (2.0 * float(g),))
    assert dr.grad(h)(1.0) == 2.0  # reverse mode runs bwd on plain values
    with pytest.raises(dr.CustomRuleError, match=r"transposes its bwd rule.*`float\(g\)`"):
        dr.jacfwd(h)(1.0)


# ---------------------------------------------------------------- one bwd call per pass
def test_the_backward_rule_runs_once_per_pass():
    calls = []

    @dr.custom_vjp
    def f(a, b, c):
        return a * b * c

    def bwd(res, g):
        calls.append(1)
        a, b, c = res
        return g * b * c, g * a * c, g * a * b

    f.defvjp(lambda a, b, c: (f(a, b, c), (a, b, c)), bwd)
    assert dr.grad(f, argnums=(0, 1, 2))(1.0, 2.0, 3.0) == (6.0, 3.0, 2.0)
    assert len(calls) == 1
    a = np.array([1.0, 2.0])
    J = dr.jacrev(f, argnums=(0, 1, 2))(a, 2 * a, 3 * a)  # one batched pass
    assert len(calls) == 2
    np.testing.assert_allclose(J[2], np.diag(a * 2 * a))
    # a pullback called twice runs bwd twice, with a cotangent rewritten in between
    _, pull = dr.vjp(f, a, 2 * a, 3 * a)
    ct = np.ones(2)
    first = pull(ct)
    ct[:] = 2.0
    second = pull(ct)
    assert len(calls) == 4
    for u, v in zip(first, second, strict=True):
        np.testing.assert_allclose(v, 2 * u)


# ---------------------------------------------------------------- static args, keywords
def test_custom_vjp_with_keyword_and_default_arguments():
    @dr.custom_vjp
    def f(x, w=2.0, power=2):
        return w * x**power

    def f_fwd(x, w, power):  # the rules get every argument by position
        return f(x, w, power=power), (x, w, power)

    def f_bwd(res, g):
        x, w, power = res
        return g * w * power * x ** (power - 1), g * x**power, None

    f.defvjp(f_fwd, f_bwd)
    assert dr.grad(lambda x: f(x, w=3.0))(2.0) == 12.0
    assert dr.grad(lambda w: f(2.0, w=w, power=3))(1.0) == 8.0
    assert dr.jvp(lambda x: f(x, power=3), (2.0,), (1.0,)) == (16.0, 24.0)
    with pytest.raises(dr.CustomRuleError, match=r"calling custom_vjp\(f\).*unexpected"):
        dr.grad(lambda x: f(x, q=1.0))(1.0)

    @dr.custom_vjp
    def k(x, *, scale=1.0):
        return scale * x

    k.defvjp(lambda x, scale: (k(x, scale=scale), scale), lambda s, g: (s * g,))
    with pytest.raises(dr.CustomRuleError, match=r"\['scale'\] that cannot be placed by "
                                                 r"position \(keyword-only"):
        dr.grad(lambda x: k(x, scale=2.0))(1.0)


def test_nondiff_argnums_come_first_in_the_rules_as_in_jax():

    @functools.partial(dr.custom_vjp, nondiff_argnums=(0,))
    def apply(fn, x):
        return fn(np.asarray(x))

    apply.defvjp(lambda fn, x: (apply(fn, x), x), lambda fn, x, g: (g * np.cos(x),))
    x = np.array([0.2, 1.4])
    np.testing.assert_allclose(dr.grad(lambda x: np.sum(apply(np.sin, x)))(x), np.cos(x))
    np.testing.assert_allclose(dr.jacfwd(lambda x: apply(np.sin, x))(x), np.diag(np.cos(x)))

    @functools.partial(dr.custom_jvp, nondiff_argnums=(1,))
    def power(x, n):
        return x**n

    @power.defjvp
    def _(n, primals, tangents):
        (x,), (t,) = primals, tangents
        return power(x, n), n * x ** (n - 1) * t

    np.testing.assert_allclose(dr.hessian(lambda x: np.sum(power(x, 3)))(x), np.diag(6 * x))
    np.testing.assert_allclose(dr.vmap(dr.grad(lambda x: power(x, 3)))(x), 3 * x**2)


@dr.custom_jvp
def by_mode(x, mode):
    return 2 * x if mode == "double" else np.sin(x)


@by_mode.defjvp
def _by_mode_jvp(primals, tangents):
    (x, mode), (t, t_mode) = primals, tangents
    assert t_mode is None  # a static argument has no tangent
    return by_mode(x, mode), 2 * t if mode == "double" else np.cos(x) * t


def test_custom_jvp_with_a_string_argument_in_every_mode():
    x = np.array([0.3, -1.2, 2.0])
    for mode, d in (("double", 2 + 0 * x), ("sin", np.cos(x))):
        f = lambda x: by_mode(x, mode)  # noqa: B023
        np.testing.assert_allclose(dr.jacfwd(f)(x), np.diag(d), rtol=1e-15)
        np.testing.assert_allclose(dr.jacrev(f)(x), np.diag(d), rtol=1e-15)
        np.testing.assert_allclose(dr.vmap(dr.grad(f))(x), d, rtol=1e-15)
        check_grads(f, (x,), order=2)
    np.testing.assert_allclose(dr.hessian(lambda x: np.sum(by_mode(x, mode="sin")))(x),
                               np.diag(-np.sin(x)), rtol=1e-15)


# ---------------------------------------------------------------- tuple outputs
@dr.custom_jvp
def polar(x):
    return np.sin(x), {"c": np.cos(x) * np.ones((2, 1))}


@polar.defjvp
def _polar_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return polar(x), (np.cos(x) * t, {"c": -np.sin(x) * t * np.ones((2, 1))})


def test_custom_jvp_with_a_tuple_output_in_every_mode():
    x = np.array([0.3, -1.2, 2.0])
    s, c = polar(x)  # a plain call returns the function's own output
    np.testing.assert_array_equal(s, np.sin(x))
    f = lambda x: np.sum(polar(x)[0] ** 2) + 3 * np.sum(polar(x)[1]["c"])
    ref = lambda x: np.sum(np.sin(x) ** 2) + 6 * np.sum(np.cos(x))
    np.testing.assert_allclose(dr.grad(f)(x), dr.grad(ref)(x), rtol=1e-14)
    np.testing.assert_allclose(dr.hessian(f)(x), dr.hessian(ref)(x), rtol=1e-14)
    out, tan = dr.jvp(polar, (x,), (np.ones(3),))
    np.testing.assert_allclose(tan[1]["c"], -np.sin(x) * np.ones((2, 3)), rtol=1e-15)
    np.testing.assert_allclose(out[0], np.sin(x))
    J = dr.jacrev(lambda x: polar(x)[1]["c"])(x)
    np.testing.assert_allclose(J, dr.jacfwd(lambda x: polar(x)[1]["c"])(x), rtol=1e-15)
    batched = dr.vmap(polar)(np.stack([x, 2 * x]))
    np.testing.assert_allclose(batched[1]["c"][1], np.cos(2 * x) * np.ones((2, 1)))
    check_grads(polar, (x,), order=2)


def test_a_tuple_output_tangent_of_the_wrong_structure_is_refused():
    @dr.custom_jvp
    def f(x):
        return x, 2 * x

    f.defjvp(lambda p, t: (f(p[0]), (t[0], 2 * t[0], t[0])))
    with pytest.raises(dr.CustomRuleError, match=r"tangent of structure \(\*, \*, \*\); "
                                                 r"the function returns \(\*, \*\)"):
        dr.jvp(f, (1.0,), (1.0,))
    f.defjvp(lambda p, t: (f(p[0]), (t[0], np.ones(2))))
    with pytest.raises(dr.CustomRuleError, match=r"tangent of shape \(2,\) for output 1"):
        dr.grad(lambda x: f(x)[1])(1.0)


def test_the_rules_get_every_argument_defaults_included():
    seen = []

    @dr.custom_vjp
    def f(x, w=3.0):
        return w * x

    def f_fwd(x, w):
        seen.append(w)
        return f(x, w), w

    f.defvjp(f_fwd, lambda w, g: (w * g, None))
    assert dr.grad(f)(1.0) == 3.0 and dr.jvp(f, (1.0,), (1.0,)) == (3.0, 3.0)
    assert seen == [3.0, 3.0]


# ---------------------------------------------------------------- random programs
# Each step is a function with custom rules whose body dualrev cannot trace (it converts
# its input with np.asarray, as compiled code would), beside its plain NumPy reference.
# Every mode must then go through the rules: forward equal to reverse, to `jacobian`, to
# the reference's derivatives, under hessian and vmap.
def _opaque(fn):
    return lambda *a: fn(*(np.asarray(v, dtype=float) for v in a))


def _vjp_step(fn, dfn):
    @dr.custom_vjp
    def f(x):
        return _opaque(fn)(x)

    f.defvjp(lambda x: (f(x), x), lambda x, g: (g * dfn(x),))
    return f


def _jvp_step(fn, dfn):
    @dr.custom_jvp
    def f(x):
        return _opaque(fn)(x)

    f.defjvp(lambda p, t: (f(p[0]), t[0] * dfn(p[0])))
    return f


@dr.custom_vjp
def _mix(x, y):  # two arguments: one bwd call gives both cotangents
    return _opaque(lambda x, y: x * np.tanh(y))(x, y)


_mix.defvjp(lambda x, y: (_mix(x, y), (x, y)),
            lambda r, g: (g * np.tanh(r[1]), g * r[0] / np.cosh(r[1]) ** 2))

_STEPS = [
    (np.sin, np.cos),
    (np.tanh, lambda x: 1 / np.cosh(x) ** 2),
    (lambda x: x**3 / 3, lambda x: x**2),
    (lambda x: np.log1p(x * x), lambda x: 2 * x / (1 + x * x)),
]
_CUSTOM = [(_vjp_step(f, d), f) for f, d in _STEPS] + [(_jvp_step(f, d), f) for f, d in _STEPS]


def _program(steps, mixes):
    def run(x, table):
        y = x
        for k, m in zip(steps, mixes, strict=True):
            y = table[k](y)
            if m:
                y = (_mix if table is _CUSTOM_FNS else _mix_ref)(y, x[::-1])
        return y
    return (lambda x: run(x, _CUSTOM_FNS)), (lambda x: run(x, _REF_FNS))


_CUSTOM_FNS = [c for c, _ in _CUSTOM]
_REF_FNS = [r for _, r in _CUSTOM]


def _mix_ref(x, y):
    return x * np.tanh(y)


def test_random_programs_of_custom_rules_agree_in_every_mode():

    count = []

    @given(st.lists(st.tuples(st.integers(0, len(_CUSTOM) - 1), st.booleans()),
                    min_size=1, max_size=4),
           st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3))
    def check(program, point):
        steps = [k for k, _ in program]
        f, ref = _program(steps, [m for _, m in program])
        x = np.array(point)
        J = dr.jacrev(f)(x)
        np.testing.assert_allclose(dr.jacfwd(f)(x), J, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(dr.jacobian(f)(x), J, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(J, dr.jacfwd(ref)(x), rtol=1e-12, atol=1e-14)
        s, sref = (lambda x: np.sum(f(x))), (lambda x: np.sum(ref(x)))
        np.testing.assert_allclose(dr.hessian(s)(x), dr.hessian(sref)(x),
                                   rtol=1e-10, atol=1e-12)
        xs = np.stack([x, x[::-1] / 2])
        np.testing.assert_allclose(dr.vmap(dr.grad(s))(xs),
                                   [dr.grad(sref)(v) for v in xs], rtol=1e-12, atol=1e-14)
        count.append(1)

    check()
    assert len(count) >= 10
    print(f"{len(count)} programs")


def test_a_fwd_rule_that_bypasses_the_function_is_named_under_nesting():
    # fwd calls the opaque code directly: fine on plain values, but under hessian fwd
    # meets the outer transform's values; the error must not advise wrapping the code in
    # custom_vjp (it is wrapped), but say what to change in fwd
    @dr.custom_vjp
    def cube2(x):
        return _opaque_cube(x)

    cube2.defvjp(lambda x: (_opaque_cube(x), x), lambda x, g: (3 * g * x**2,))
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(dr.jacfwd(cube2)(x), np.diag(3 * x**2))
    with pytest.raises(dr.CustomRuleError, match=r"fwd must get its output by calling "
                                                 r"cube2 itself"):
        dr.hessian(lambda x: np.sum(cube2(x)))(x)


def test_custom_vjp_with_a_tuple_output_in_every_mode():
    calls = []

    @dr.custom_vjp
    def sincos(x, w):
        xa = np.asarray(x)  # not differentiable
        return np.sin(xa) * w, {"c": np.cos(xa)}

    def fwd(x, w):
        return sincos(x, w), (x, w)

    def bwd(res, g):
        calls.append(1)
        x, w = res
        gs, gc = g[0], g[1]["c"]  # a cotangent of the output's structure
        return gs * np.cos(x) * w - gc * np.sin(x), np.sum(gs * np.sin(x))

    sincos.defvjp(fwd, bwd)
    x, w = np.array([0.3, -1.2, 2.0]), 1.5
    f = lambda x, w: np.sum(sincos(x, w)[0] ** 2) + 3 * np.sum(sincos(x, w)[1]["c"])
    ref = lambda x, w: np.sum((np.sin(x) * w) ** 2) + 3 * np.sum(np.cos(x))
    for argnums in (0, 1):
        np.testing.assert_allclose(dr.grad(f, argnums)(x, w), dr.grad(ref, argnums)(x, w),
                                   rtol=1e-14)
        np.testing.assert_allclose(dr.hessian(f, argnums)(x, w),
                                   dr.hessian(ref, argnums)(x, w), rtol=1e-13)
    calls.clear()
    dr.grad(f, (0, 1))(x, w)
    assert len(calls) == 2  # two calls of sincos, one bwd each
    out, tan = dr.jvp(lambda x: sincos(x, w), (x,), (np.ones(3),))
    np.testing.assert_allclose(tan[0], np.cos(x) * w, rtol=1e-15)
    np.testing.assert_allclose(tan[1]["c"], -np.sin(x), rtol=1e-15)
    np.testing.assert_allclose(dr.jacobian(lambda x: sincos(x, w)[1]["c"])(x),
                               np.diag(-np.sin(x)), rtol=1e-15)
    batched = dr.vmap(lambda x: sincos(x, w))(np.stack([x, 2 * x]))
    np.testing.assert_allclose(batched[1]["c"][1], np.cos(2 * x))
    check_grads(sincos, (x, w), order=2)


def test_pytree_arguments_in_every_mode():
    @dr.custom_vjp
    def affine(p, x):
        return np.asarray(p["w"]) * x + p["b"]

    def fwd(p, x):
        return affine(p, x), (p, x)

    def bwd(res, g):
        p, x = res
        return {"w": np.sum(g * x), "b": np.sum(g)}, g * p["w"]

    affine.defvjp(fwd, bwd)

    @dr.custom_jvp
    def affine_j(p, x):
        return np.asarray(p["w"]) * x + p["b"]

    @affine_j.defjvp
    def _(primals, tangents):
        (p, x), (tp, tx) = primals, tangents
        return affine_j(p, x), tp["w"] * x + p["w"] * tx + tp["b"]

    p, x = {"w": 1.5, "b": -0.5}, np.array([0.2, -1.0, 2.0])
    ref = lambda p, x: np.sum(np.sin(p["w"] * x + p["b"]))
    for fn in (affine, affine_j):
        f = lambda p, x: np.sum(np.sin(fn(p, x)))  # noqa: B023
        gp, gx = dr.grad(f, (0, 1))(p, x)
        rp, rx = dr.grad(ref, (0, 1))(p, x)
        assert gp["w"] == pytest.approx(rp["w"], rel=1e-14)
        assert gp["b"] == pytest.approx(rp["b"], rel=1e-14)
        np.testing.assert_allclose(gx, rx, rtol=1e-14)
        H = dr.hessian(lambda w: f({"w": w, "b": -0.5}, x))(1.5)  # noqa: B023
        assert H == pytest.approx(dr.hessian(lambda w: ref({"w": w, "b": -0.5}, x))(1.5))
        t = dr.jvp(lambda w: fn({"w": w, "b": 0.0}, x), (1.5,), (1.0,))[1]  # noqa: B023
        np.testing.assert_allclose(t, x, rtol=1e-15)
        np.testing.assert_allclose(dr.vmap(lambda x: f(p, x))(np.stack([x, -x])),  # noqa: B023
                                   [ref(p, x), ref(p, -x)], rtol=1e-14)


def test_a_cotangent_of_the_wrong_pytree_structure_is_refused():
    @dr.custom_vjp
    def f(p):
        return p["a"] * p["b"]

    f.defvjp(lambda p: (f(p), p), lambda p, g: ((g * p["b"], g * p["a"]),))
    with pytest.raises(dr.CustomRuleError, match=r"structure \(\*, \*\) for argument 0, "
                                                 r"whose structure is \{'a': \*, 'b': \*\}"):
        dr.grad(lambda a: f({"a": a, "b": 2.0}))(1.0)


def test_a_traced_value_in_a_static_argument_is_refused():
    # its derivative would silently bypass the rules (through the body, or not at all)

    @functools.partial(dr.custom_vjp, nondiff_argnums=(1,))
    def f(x, s):
        return x * s

    f.defvjp(lambda x, s: (f(x, s), s), lambda s, r, g: (g * r,))
    with pytest.raises(dr.CustomRuleError, match=r"argument 1 of custom_vjp\(f\) holds "
                                                 r"traced values but is in nondiff_argnums"):
        dr.grad(lambda s: f(2.0, s))(3.0)

    @dr.custom_jvp
    def h(x, opts):
        return x * opts[0]

    h.defjvp(lambda p, t: (h(*p), t[0] * p[1][0]))
    with pytest.raises(dr.CustomRuleError, match=r"mixes them with values that are not"):
        dr.grad(lambda s: h(2.0, (s, "mode")))(3.0)


@dr.custom_vjp
def _sigmoid(x):
    return 1 / (1 + np.exp(-np.asarray(x)))  # np.asarray: not differentiable


def _sigmoid_fwd(x):
    s = _sigmoid(x)
    return s, s  # the output is the residual


_sigmoid.defvjp(_sigmoid_fwd, lambda s, g: (g * s * (1 - s),))


def test_a_residual_that_is_the_output_in_every_nesting():

    ref = lambda x: 1 / (1 + np.exp(-x))
    x = np.array([0.3, -1.0, 2.0])
    v = np.array([1.0, 0.5, -2.0])
    s, sref = (lambda x: np.sum(_sigmoid(x))), (lambda x: np.sum(ref(x)))
    np.testing.assert_allclose(dr.hessian(s)(x), dr.hessian(sref)(x), rtol=1e-13)
    np.testing.assert_allclose(dr.hvp(s)(x, v), dr.hvp(sref)(x, v), rtol=1e-13)
    # reverse over forward
    f1 = lambda x: np.sum(dr.jvp(_sigmoid, (x,), (v,))[1] ** 2)
    f2 = lambda x: np.sum(dr.jvp(ref, (x,), (v,))[1] ** 2)
    np.testing.assert_allclose(dr.grad(f1)(x), dr.grad(f2)(x), rtol=1e-13)
    # third derivatives, both ways
    for outer in (dr.jacfwd, dr.jacrev):
        np.testing.assert_allclose(outer(dr.hessian(s))(x), outer(dr.hessian(sref))(x),
                                   rtol=1e-12, atol=1e-15)
    assert_derivatives_consistent(_sigmoid, x)


def test_a_body_closing_over_a_traced_value_is_refused():
    # the derivative in the closed-over value would bypass the rules (10x here)
    def outer(a):
        @dr.custom_vjp
        def f(x):
            return a * x

        f.defvjp(lambda x: (f(x), x), lambda x, g: (10.0 * g * a,))
        return f(2.0) + f(a)

    with pytest.raises(dr.CustomRuleError, match=r"closes over.*Pass that value as an "
                                                 r"argument"):
        dr.grad(outer)(1.0)

    def outer_jvp(a):
        @dr.custom_jvp
        def f(x):
            return a * x

        f.defjvp(lambda p, t: (f(p[0]), 10.0 * t[0]))
        return f(a)

    with pytest.raises(dr.CustomRuleError, match=r"custom_jvp\(f\) returned a traced value"):
        dr.jvp(outer_jvp, (1.0,), (1.0,))


def test_a_scalar_body_calling_float_in_every_forward_transform():
    @dr.custom_vjp
    def softplus(x):
        return math.log1p(math.exp(float(x)))  # plain-Python only

    softplus.defvjp(lambda x: (softplus(x), x), lambda x, g: (g / (1 + np.exp(-x)),))
    ref = lambda x: np.log1p(np.exp(x))
    for x in (-2.0, 0.0, 1.5):
        sig = 1 / (1 + np.exp(-x))
        assert dr.jvp(softplus, (x,), (2.0,))[1] == pytest.approx(2 * sig, rel=1e-15)
        assert dr.jacfwd(softplus)(x) == pytest.approx(sig, rel=1e-15)
        assert dr.jacobian(softplus)(x) == pytest.approx(sig, rel=1e-15)
        assert dr.hessian(softplus)(x) == pytest.approx(dr.hessian(ref)(x), rel=1e-14)
        assert dr.hessian(softplus)(x) == pytest.approx(sig * (1 - sig), rel=1e-14)


_SHAPES = st.sampled_from([(), (1,), (3,), (2, 3), (3, 2), (5,)])


def test_random_rule_shapes_give_the_rule_or_a_refusal():
    # Every outcome is pinned: a rule whose cotangent (tangent) has its argument's
    # (output's) shape and kind gives exactly that derivative, in every transform; any
    # other shape or kind raises CustomRuleError, never a broadcast or a dropped part.
    count = []

    @given(_SHAPES, _SHAPES, st.booleans(), st.booleans(), st.integers(0, 2**31 - 1))
    def check(arg_shape, other_shape, same, cplx, seed):
        ct_shape = arg_shape if same else other_shape
        rng = np.random.default_rng(seed)
        ct = rng.standard_normal(ct_shape)
        if cplx:
            ct = ct + 1j * rng.standard_normal(ct_shape)
        fits = ct_shape == arg_shape and not cplx

        @dr.custom_vjp
        def f(x):
            return np.sum(np.asarray(x))  # a scalar: its cotangent g is a scalar

        f.defvjp(lambda x: (f(x), None), lambda res, g: (g * ct,))

        @dr.custom_jvp
        def h(x):
            return np.zeros(arg_shape)

        h.defjvp(lambda p, t: (h(p[0]), np.sum(t[0]) * ct))
        x = rng.standard_normal(arg_shape)
        runs = {
            "grad": (lambda: dr.grad(f)(x), lambda: ct),
            "jacrev": (lambda: dr.jacrev(f)(x), lambda: ct),
            "jacfwd": (lambda: dr.jacfwd(f)(x), lambda: ct),
            "vmap-grad": (lambda: dr.vmap(dr.grad(f))(np.stack([x, x]))[1], lambda: ct),
            "jvp-custom_jvp": (lambda: dr.jvp(h, (x,), (np.ones(arg_shape),))[1],
                               lambda: np.prod(arg_shape) * ct),
            "vjp-custom_jvp": (lambda: dr.vjp(h, x)[1](np.ones(arg_shape))[0],
                               lambda: np.full(arg_shape, np.sum(ct))),
        }
        for name, (run, want) in runs.items():
            if fits:
                np.testing.assert_allclose(run(), want(), rtol=1e-14, err_msg=name)
            else:
                with pytest.raises(dr.CustomRuleError):
                    run()
        count.append(fits)

    check()
    assert len(count) >= 10 and any(count) and not all(count)
    print(f"{len(count)} rule shapes ({sum(count)} fitting) x 6 transforms")


# ------------------------------------------- rules that are not linear (forward vs reverse)
_NONLINEAR = {
    "clip": lambda g: np.clip(g, -1.0, 1.0),          # the documented gradient clipping
    "norm clip": lambda g: g * np.minimum(1.0, 1.0 / np.sqrt(np.sum(g * g))),
    "abs": np.abs,
    "relu": lambda g: np.maximum(g, 0.0),
    "square": lambda g: g ** 2,
    "sign": np.sign,
    "g|g|": lambda g: g * np.abs(g),
    "plus one": lambda g: g + 1.0,
}


@pytest.mark.parametrize("name", sorted(_NONLINEAR))
def test_forward_mode_refuses_a_backward_rule_nonlinear_in_g(name):
    # forward mode transposes bwd: for a bwd that is not linear in g the transpose is
    # not what reverse mode computes (jacfwd gave 5 where grad gave 1 for clipping)
    rule = _NONLINEAR[name]

    @dr.custom_vjp
    def f(x):
        return x

    f.defvjp(lambda x: (f(x), None), lambda res, g: (rule(g),))
    x = np.array([2.0, -0.5, 0.25])
    h = lambda x: np.sum(5.0 * f(x))
    np.testing.assert_allclose(dr.grad(h)(x), rule(np.full(3, 5.0)))  # bwd as written
    match = (r"forward mode of custom_vjp\(f\) transposes its bwd rule, which must be "
             r"linear in the cotangent g, but it is not .*Reverse mode .* uses bwd as written")
    for run in (lambda: dr.jacfwd(h)(x), lambda: dr.jvp(f, (x,), (np.ones(3),)),
                lambda: dr.jacfwd(f)(x), lambda: dr.vmap(lambda t: dr.jvp(f, (x,), (t,))[1])(
                    np.eye(3)), lambda: dr.jacfwd(f)(1.5)):
        with pytest.raises(dr.CustomRuleError, match=match):
            run()


@pytest.mark.parametrize("name", sorted(_NONLINEAR))
def test_reverse_mode_refuses_a_jvp_rule_nonlinear_in_the_tangent(name):
    # reverse mode transposes the jvp rule: np.abs(t) gave grad 0 silently (transposed
    # at t = 0) where jvp gives |t|
    rule = _NONLINEAR[name]

    @dr.custom_jvp
    def f(x):
        return np.sin(x)

    f.defjvp(lambda p, t: (f(p[0]), np.cos(p[0]) * rule(t[0])))
    x = np.array([0.3, -0.5, 1.2])
    t = np.array([0.5, -2.0, 0.1])
    np.testing.assert_allclose(dr.jvp(f, (x,), (t,))[1], np.cos(x) * rule(t))  # as written
    match = r"jvp rule of custom_jvp\(f\) must be linear in the tangents .*argument 0 is not"
    for run in (lambda: dr.grad(lambda x: np.sum(f(x)))(x), lambda: dr.jacrev(f)(x),
                lambda: dr.vjp(f, x)[1](np.ones(3)), lambda: dr.grad(lambda s: f(s))(0.7),
                lambda: dr.vmap(dr.grad(lambda s: f(s)))(x)):
        with pytest.raises(dr.CustomRuleError, match=match):
            run()


def _linear_bwds():
    A = np.array([[2.0, 0.5, 0.0], [0.1, 3.0, -1.0], [0.0, 0.3, 1.5]])
    return {
        "scale": lambda res, g: (g * np.cos(res),),
        "mask from res": lambda res, g: (np.where(res > 0, g, 0.0),),
        "mask product": lambda res, g: (g * (res < 1.0),),
        "solve": lambda res, g: (np.linalg.solve(A.T, g) * res,),
        "sum and roll": lambda res, g: (np.roll(g, 1) + np.sum(g) * res,),
        "in place": lambda res, g: (_scaled_in_place(g, res),),
        "float32": lambda res, g: (g.astype(np.float32) * np.float32(3.0),),
        "huge residual": lambda res, g: (g * 1e250 * res,),
        "cancelling": lambda res, g: ((g * 1e8 - g * (1e8 - 1.0)) * res,),
    }


def _scaled_in_place(g, res):
    y = g * 1.0
    y[0] *= 3.0
    y[1:] += 2.0 * g[:-1]
    return y * res


@pytest.mark.parametrize("name", sorted(_linear_bwds()))
def test_a_linear_backward_rule_is_accepted_in_forward_mode(name):
    # the linearity probe must not refuse linear rules: forward (the transposed bwd)
    # agrees with reverse (bwd as written) and with the Jacobian written out
    bwd = _linear_bwds()[name]

    @dr.custom_vjp
    def f(x):
        return x * 1.0

    f.defvjp(lambda x: (f(x), x), bwd)
    x = np.array([0.7, -0.4, 1.3])
    J = np.stack([np.asarray(bwd(x, e)[0], np.float64) for e in np.eye(3)])  # J[i] = d/dx of out_i
    rtol = {"float32": 1e-6, "cancelling": 1e-7}.get(name, 1e-12)
    np.testing.assert_allclose(dr.jacrev(f)(x), J, rtol=rtol)
    np.testing.assert_allclose(dr.jacfwd(f)(x), J, rtol=rtol)
    t = np.array([0.3, -1.0, 2.0])
    np.testing.assert_allclose(dr.jvp(f, (x,), (t,))[1], J @ t, rtol=rtol)
    np.testing.assert_allclose(dr.vmap(lambda t: dr.jvp(f, (x,), (t,))[1])(np.eye(3)),
                               J.T, rtol=rtol)


def test_a_linear_jvp_rule_with_primal_dependent_masks_is_accepted_in_reverse_mode():
    @dr.custom_jvp
    def relu(x):
        return np.maximum(x, 0.0)

    relu.defjvp(lambda p, t: (relu(p[0]), np.where(p[0] > 0, t[0], 0.0)))

    @dr.custom_jvp
    def f(x, y):
        return x * y

    f.defjvp(lambda p, t: (f(*p), t[0] * p[1] + p[0] * t[1]))
    x = np.array([0.7, -0.4, 1.3])
    np.testing.assert_array_equal(dr.grad(lambda x: np.sum(relu(x)))(x), [1.0, 0.0, 1.0])
    h = lambda x: np.sum(f(relu(x), np.sin(x)) ** 2)
    np.testing.assert_allclose(dr.jacrev(h)(x), dr.jacfwd(h)(x), rtol=1e-13)
    np.testing.assert_allclose(dr.hessian(h)(x), dr.jacfwd(dr.jacfwd(h))(x), rtol=1e-12)
    z = np.array([0.5 + 1j, -1 - 2j])
    g = lambda z: np.sum(np.abs(f(z, np.conj(z) * 2.0)))
    ref = lambda z: np.sum(np.abs(z * np.conj(z) * 2.0))
    np.testing.assert_allclose(dr.grad(g)(z), dr.grad(ref)(z), rtol=1e-13)
