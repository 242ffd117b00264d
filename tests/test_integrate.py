"""Differentiable scipy.integrate.solve_ivp and quad (dualrev/integrate.py), against
closed forms and central differences."""

import functools

import numpy as np
import pytest
import scipy.integrate as si
import scipy.linalg
import scipy.special

import dualrev as dr
import dualrev.integrate as di
from dualrev.catalogue.scipy_functions import ORIGINALS
from tests import ode_family as fam

TOL = dict(rtol=1e-10, atol=1e-12)
T = np.linspace(0.0, 3.0, 7)


def central(f, x, h=1e-6):
    """Central differences of f (array-valued) at x, the derivative axes last."""
    x = np.asarray(x, float)
    cols = []
    for e in np.eye(x.size):
        e = e.reshape(x.shape)
        cols.append((np.asarray(f(x + h * e)) - np.asarray(f(x - h * e))) / (2 * h))
    return np.stack(cols, axis=-1)


def close(a, b, rtol=1e-6, atol=1e-8):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# ------------------------------------------------------------------ exponential decay
def decay(t, y, k):
    return -k * y


def decay_traj(p):  # p = (y0, k): y(t) = y0 exp(-k t)
    return si.solve_ivp(decay, (0.0, 3.0), p[:1], args=(p[1],), t_eval=T, **TOL).y[0]


def decay_closed(p):
    return p[0] * np.exp(-p[1] * T)


P_DECAY = np.array([2.0, 0.7])


@pytest.mark.parametrize("transform", [dr.jacfwd, dr.jacrev, dr.jacobian])
def test_decay_jacobian_closed_form(transform):
    close(decay_traj(P_DECAY), decay_closed(P_DECAY), rtol=1e-9)
    close(transform(decay_traj)(P_DECAY), dr.jacfwd(decay_closed)(P_DECAY))


def test_decay_grad_jvp_and_both_spellings():
    f = lambda k: di.solve_ivp(decay, (0.0, 2.0), [1.0], args=(k,), t_eval=[2.0],
                               **TOL).y[0, -1]
    close(dr.grad(f)(0.5), -2.0 * np.exp(-1.0))
    _, t = dr.jvp(f, (0.5,), (1.0,))
    close(t, -2.0 * np.exp(-1.0))
    assert si.solve_ivp is not ORIGINALS[si.solve_ivp]  # the dispatcher is installed


def test_time_span_derivatives_without_t_eval():
    def end(ts):
        r = si.solve_ivp(decay, (ts[0], ts[1]), [2.0], args=(0.7,), **TOL)
        return r.y[0, -1]

    closed = lambda ts: 2.0 * np.exp(-0.7 * (ts[1] - ts[0]))
    ts = np.array([0.3, 2.0])
    for transform in (dr.grad, dr.jacfwd, dr.jacrev):
        close(transform(end)(ts), dr.grad(closed)(ts))


@pytest.mark.parametrize("transform", [dr.hessian, lambda f: dr.jacfwd(dr.jacfwd(f))],
                         ids=["hessian", "fwd-fwd"])
def test_time_span_second_derivatives(transform):
    # the start time moves the adjoint's last (zero-length) segment: it is integrated
    def end(ts):
        return si.solve_ivp(decay, (ts[0], ts[1]), [2.0], args=(0.7,), **TOL).y[0, -1]

    closed = lambda ts: 2.0 * np.exp(-0.7 * (ts[1] - ts[0]))
    ts = np.array([0.3, 2.0])
    close(transform(end)(ts), dr.hessian(closed)(ts))


def test_backward_in_time():
    def end(p):
        return si.solve_ivp(decay, (2.0, 0.5), p[:1], args=(p[1],), t_eval=[1.0, 0.5],
                            **TOL).y[0]

    closed = lambda p: p[0] * np.exp(-p[1] * (np.array([1.0, 0.5]) - 2.0))
    for transform in (dr.jacfwd, dr.jacrev):
        close(transform(end)(P_DECAY), dr.jacfwd(closed)(P_DECAY))


def test_traced_output_times():
    f = lambda te: si.solve_ivp(decay, (0.0, 3.0), [2.0], args=(0.7,), t_eval=te,
                                **TOL).y[0]
    te = np.array([0.5, 1.0, 2.5])
    expected = dr.jacfwd(lambda te: 2.0 * np.exp(-0.7 * te))(te)
    close(dr.jacfwd(f)(te), expected)
    close(dr.jacrev(f)(te), expected)


def test_scipys_own_steps_are_constants():
    k = 0.3
    times = si.solve_ivp(decay, (0.0, 5.0), [1.0], args=(k,), **TOL).t
    f = lambda k: np.sum(si.solve_ivp(decay, (0.0, 5.0), [1.0], args=(k,), **TOL).y)
    expected = dr.grad(lambda k: np.sum(np.exp(-k * times)))(k)
    close(dr.grad(f)(k), expected)
    close(dr.jacfwd(f)(k), expected)
    res = dr.jvp(lambda k: si.solve_ivp(decay, (0.0, 5.0), [1.0], args=(k,), **TOL).y,
                 (k,), (1.0,))
    assert res[0].shape == (1, times.size)


# ------------------------------------------------------------------ harmonic oscillator
def oscillator(t, y, w):
    return np.stack([y[1], -w ** 2 * y[0]])


def osc_traj(p):  # p = (x0, v0, w)
    return si.solve_ivp(oscillator, (0.0, 3.0), p[:2], args=(p[2],), t_eval=T,
                        **TOL).y.ravel()


def osc_closed(p):
    a, b, w = p[0], p[1], p[2]
    return np.concatenate([a * np.cos(w * T) + b / w * np.sin(w * T),
                           -a * w * np.sin(w * T) + b * np.cos(w * T)])


P_OSC = np.array([1.0, 0.5, 1.3])


@pytest.mark.parametrize("transform", [dr.jacfwd, dr.jacrev, dr.jacobian])
def test_oscillator_jacobian_closed_form(transform):
    close(transform(osc_traj)(P_OSC), dr.jacfwd(osc_closed)(P_OSC))


@pytest.mark.parametrize("transform", [dr.hessian, lambda f: dr.jacfwd(dr.jacfwd(f)),
                                       lambda f: dr.jacrev(dr.jacrev(f))],
                         ids=["hessian", "fwd-fwd", "rev-rev"])
def test_oscillator_second_derivatives(transform):
    # nested: the rules are themselves solves, differentiated in turn
    energy = lambda p: np.sum(osc_traj(p)[[3, 10]] ** 2)
    closed = lambda p: np.sum(osc_closed(p)[[3, 10]] ** 2)
    close(transform(energy)(P_OSC), dr.hessian(closed)(P_OSC), rtol=1e-5, atol=1e-7)


# ------------------------------------------------------------------ nonlinear, vs differences
def lotka(t, y, theta):
    a, b, c, d = theta
    return np.stack([a * y[0] - b * y[0] * y[1], c * y[0] * y[1] - d * y[1]])


def lotka_end(v):
    return si.solve_ivp(lotka, (0.0, 4.0), v[:2], args=(v[2:],), t_eval=[2.0, 4.0],
                        **TOL).y.ravel()


V_LOTKA = np.array([1.0, 0.5, 1.1, 0.4, 0.4, 0.9])


@pytest.mark.parametrize("transform", [dr.jacfwd, dr.jacrev])
def test_lotka_volterra_against_central_differences(transform):
    close(transform(lotka_end)(V_LOTKA), central(lotka_end, V_LOTKA), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("method", ["DOP853", "Radau", "LSODA"])
def test_other_methods_and_a_jacobian_option(method):
    opts = dict(TOL)
    if method != "DOP853":  # the user's Jacobian: for the user's system only
        opts["jac"] = lambda t, y, k: np.array([[-k]])
    f = lambda p: si.solve_ivp(decay, (0.0, 3.0), p[:1], method=method, args=(p[1],),
                               t_eval=T, **opts).y[0]
    close(dr.jacrev(f)(P_DECAY), dr.jacfwd(decay_closed)(P_DECAY), rtol=1e-5, atol=1e-7)
    close(dr.jacfwd(f)(P_DECAY), dr.jacfwd(decay_closed)(P_DECAY), rtol=1e-5, atol=1e-7)


def test_array_atol_list_output_and_pytree_args():
    def rhs(t, y, params, label):  # a list output, a dict of parameters, a plain string
        assert label == "osc"
        return [y[1], -params["w"] ** 2 * y[0]]

    def f(p):
        return si.solve_ivp(rhs, (0.0, 3.0), [p[0], p[1]], args=({"w": p[2]}, "osc"),
                            t_eval=T, rtol=1e-10, atol=np.array([1e-12, 1e-12])).y.ravel()

    close(dr.jacrev(f)(P_OSC), dr.jacfwd(osc_closed)(P_OSC))
    close(dr.jacfwd(f)(P_OSC), dr.jacfwd(osc_closed)(P_OSC))


def test_vectorized_user_function():
    f = lambda k: si.solve_ivp(decay, (0.0, 3.0), [2.0], args=(k,), t_eval=T,
                               vectorized=True, **TOL).y[0]
    close(dr.jacfwd(f)(0.7), dr.jacfwd(lambda k: 2.0 * np.exp(-k * T))(0.7))


# ------------------------------------------------------------------ vmap
def test_vmap_over_y0_and_args_and_start_times():
    end = lambda y0, k: si.solve_ivp(decay, (0.0, 1.0), y0, args=(k,), t_eval=[1.0],
                                     **TOL).y[:, 0]
    y0s, ks = np.array([[1.0], [2.0]]), np.array([0.5, 1.0])
    close(dr.vmap(end)(y0s, ks), y0s * np.exp(-ks)[:, None])
    close(dr.vmap(dr.grad(lambda k: end(np.ones(1), k)[0]))(ks), -np.exp(-ks))
    start = lambda t0: si.solve_ivp(decay, (t0, 2.0), [1.0], args=(0.5,), t_eval=[2.0],
                                    **TOL).y[0, 0]
    t0s = np.array([0.0, 1.0])
    close(dr.vmap(start)(t0s), np.exp(-0.5 * (2.0 - t0s)))


def test_vmap_needs_t_eval():
    f = lambda k: si.solve_ivp(decay, (0.0, 1.0), [1.0], args=(k,)).y[0, -1]
    with pytest.raises(dr.DualrevError, match="under vmap needs t_eval="):
        dr.vmap(f)(np.array([0.5, 1.0]))


# ------------------------------------------------------------------ refusals, plain calls
def rate_class(k):
    """A class holding ``k`` as a class attribute: a place closure conversion does not
    reach (a callback reading ``Rate.rate`` gets the traced value from the class)."""
    class Rate:
        rate = k

    return Rate


def rate_rhs(klass):
    """``y -> -klass.rate * y`` (any further arguments ignored), closing over the class
    only."""
    return lambda y, *rest: -klass.rate * y


def test_closure_the_walk_cannot_reach_is_refused():
    """A value reaching the callback through a class attribute is not converted: the
    plain solve's check names the callback and the args= rewrite."""
    def via_class(k):
        class Rate:
            rate = k

        return si.solve_ivp(lambda t, y: -Rate.rate * y, (0.0, 1.0), [1.0]).y[0, -1]

    msg = r"solve_ivp: `fun` returned a traced value.*pass it through args=\(\.\.\.\)"
    for transform in (dr.grad, dr.jacfwd):
        with pytest.raises(dr.DualrevError, match=msg):
            transform(via_class)(0.5)

    def quad_class(k):
        class Rate:
            rate = k

        return si.quad(lambda x: Rate.rate * x, 0.0, 1.0)[0]

    with pytest.raises(dr.DualrevError, match=r"quad: `func` returned a traced value"):
        dr.grad(quad_class)(1.0)


def test_dense_output_is_refused():
    y0 = np.ones(1)
    with pytest.raises(dr.NoDerivativeRule, match="pass t_eval= with the times you need"):
        dr.grad(lambda y0: si.solve_ivp(lambda t, y: -y, (0.0, 1.0), y0,
                                        dense_output=True).y[0, -1])(y0)


def test_plain_calls_are_scipys():
    original = ORIGINALS[si.solve_ivp]
    a = si.solve_ivp(oscillator, (0.0, 3.0), [1.0, 0.5], args=(1.3,), dense_output=True)
    b = original(oscillator, (0.0, 3.0), [1.0, 0.5], args=(1.3,), dense_output=True)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.sol is not None and a.nfev == b.nfev
    c = di.solve_ivp(oscillator, (0.0, 3.0), [1.0, 0.5], args=(1.3,))
    np.testing.assert_array_equal(c.y, b.y)
    assert si.quad(np.sin, 0.0, 1.0) == ORIGINALS[si.quad](np.sin, 0.0, 1.0)
    assert len(si.quad(np.sin, 0.0, 1.0, full_output=1)) == 3


def test_traced_result_fields():
    def f(k):
        r = si.solve_ivp(decay, (0.0, 3.0), [2.0], args=(k,), t_eval=T, **TOL)
        assert r.success and r.status == 0 and r.nfev > 0 and r.message
        np.testing.assert_array_equal(r.t, T)
        return r.y[0]

    dr.jacfwd(f)(0.7)


# ------------------------------------------------------------------ quad
def bump(x, p, q):
    return np.exp(-p * x ** 2) * np.cos(q * x)


def Q(v):
    return si.quad(bump, v[0], v[1], args=(v[2], v[3]), epsabs=1e-13, epsrel=1e-13)[0]


V_QUAD = np.array([0.2, 1.5, 0.7, 2.0])


@pytest.mark.parametrize("transform", [dr.grad, dr.jacfwd, dr.jacrev])
def test_quad_against_central_differences(transform):
    close(transform(Q)(V_QUAD), central(Q, V_QUAD), rtol=1e-7)


def test_quad_leibniz_closed_form():
    area = lambda a, b, k: di.quad(lambda x, k: np.exp(-k * x), a, b, args=(k,))
    value, err = area(0.5, 1.0, 2.0)
    assert not isinstance(err, dr.Dual)
    closed = lambda a, b, k: (np.exp(-k * a) - np.exp(-k * b)) / k
    for i in range(3):
        close(dr.grad(lambda *v: area(*v)[0], argnums=i)(0.5, 1.0, 2.0),
              dr.grad(closed, argnums=i)(0.5, 1.0, 2.0), rtol=1e-8)


def test_quad_hessian():
    close(dr.hessian(Q)(V_QUAD), central(lambda v: central(Q, v, 1e-4), V_QUAD, 1e-4),
          rtol=1e-5, atol=1e-6)


def test_quad_infinite_limits():
    gauss = lambda s: si.quad(lambda x, s: np.exp(-x ** 2 / (2 * s ** 2)), -np.inf, np.inf,
                              args=(s,))[0]
    close(dr.grad(gauss)(1.3), np.sqrt(2 * np.pi))  # d/ds sqrt(2 pi) s
    # an infinite limit contributes no derivative
    assert dr.grad(lambda b: si.quad(lambda x: np.exp(-x), 0.0, b)[0])(np.inf) == 0.0


def test_quad_weight_points_and_vmap():
    f = lambda p: si.quad(lambda x, p: np.exp(-p * x), 0.0, 2.0, args=(p,), weight="cos",
                          wvar=3.0)[0]
    close(dr.grad(f)(0.8), central(f, 0.8), rtol=1e-6)
    g = lambda p: si.quad(lambda x, p: np.abs(x - 1.0) * p ** 2, 0.0, 2.0, args=(p,),
                          points=[1.0])[0]
    close(dr.grad(g)(1.5), 2 * 1.5)  # ∫|x - 1| = 1
    close(dr.vmap(lambda k: si.quad(lambda x, k: k * x, 0.0, 1.0, args=(k,))[0])(
        np.array([1.0, 4.0])), [0.5, 2.0])


def test_quad_refusals():
    with pytest.raises(dr.NoDerivativeRule, match="full_output=1"):
        dr.grad(lambda k: si.quad(lambda x, k: k * x, 0, 1, args=(k,), full_output=1)[0])(1.0)
    with pytest.raises(dr.NoDerivativeRule, match="complex_func"):
        dr.grad(lambda k: si.quad(lambda x, k: k * x, 0, 1, args=(k,), complex_func=True)[0])(1.)
    with pytest.raises(dr.NoDerivativeRule, match="traced limits"):
        dr.grad(lambda b: si.quad(lambda x: x, 0.0, b, weight="cos", wvar=1.0)[0])(1.0)
    with pytest.raises(dr.NoDerivativeRule, match="wvar"):
        dr.grad(lambda w: si.quad(lambda x: x, 0.0, 1.0, weight="cos", wvar=w)[0])(1.0)


# ------------------------------------------------------------------ odeint
def decay_yt(y, t, k):  # odeint's argument order
    return -k * y


def ode_traj(p):
    return si.odeint(decay_yt, p[:1], T, args=(p[1],), **TOL)[:, 0]


@pytest.mark.parametrize("transform", [dr.jacfwd, dr.jacrev])
def test_odeint_decay_closed_form(transform):
    close(ode_traj(P_DECAY), decay_closed(P_DECAY), rtol=1e-9)
    close(transform(ode_traj)(P_DECAY), dr.jacfwd(decay_closed)(P_DECAY))


def test_odeint_primal_is_scipys_and_both_spellings():
    original = ORIGINALS[si.odeint]
    y, _ = dr.jvp(lambda k: si.odeint(decay_yt, [2.0, 1.0], T, args=(k,)), (0.7,), (1.0,))
    np.testing.assert_array_equal(y, original(decay_yt, [2.0, 1.0], T, args=(0.7,)))
    np.testing.assert_array_equal(di.odeint(decay_yt, [2.0], T, args=(0.7,)),
                                  original(decay_yt, [2.0], T, args=(0.7,)))
    close(dr.grad(lambda k: di.odeint(decay_yt, 1.0, [0.0, 2.0], args=(k,), **TOL)[-1, 0])(
        0.5), -2.0 * np.exp(-1.0))


def test_odeint_traced_times():
    # t[0] is the start: moving it moves every later value, not y[0] = y0
    f = lambda t: si.odeint(decay_yt, [2.0], t, args=(0.7,), **TOL)[:, 0]
    closed = lambda t: 2.0 * np.exp(-0.7 * (t - t[0]))
    t = np.array([0.2, 1.0, 2.5])
    for transform in (dr.jacfwd, dr.jacrev):
        close(transform(f)(t), dr.jacfwd(closed)(t))


def osc_yt(y, t, w):
    return np.stack([y[1], -w ** 2 * y[0]])


def test_odeint_oscillator_hessian_and_differences():
    traj = lambda p: si.odeint(osc_yt, p[:2], T, args=(p[2],), **TOL).T.ravel()
    close(dr.jacrev(traj)(P_OSC), dr.jacfwd(osc_closed)(P_OSC))
    energy = lambda p: np.sum(traj(p)[[3, 10]] ** 2)
    closed = lambda p: np.sum(osc_closed(p)[[3, 10]] ** 2)
    close(dr.hessian(energy)(P_OSC), dr.hessian(closed)(P_OSC), rtol=1e-5, atol=1e-7)
    end = lambda v: si.odeint(lambda y, t, th: lotka(t, y, th), v[:2], [0.0, 2.0],
                              args=(v[2:],), **TOL)[-1]
    close(dr.jacfwd(end)(V_LOTKA), central(end, V_LOTKA), rtol=1e-6, atol=1e-7)


def test_odeint_tfirst_dfun_full_output_and_vmap():
    def f(k):
        y, info = si.odeint(decay, [1.0], [0.0, 1.0], args=(k,), tfirst=True, full_output=1,
                            Dfun=lambda t, y, k: np.array([[-k]]), **TOL)
        assert info["message"] == "Integration successful."
        return y[-1, 0]

    close(dr.grad(f)(0.5), -np.exp(-0.5))
    ks = np.array([0.5, 1.0])
    end = lambda k: si.odeint(decay_yt, [1.0], [0.0, 1.0], args=(k,), **TOL)[-1, 0]
    close(dr.vmap(end)(ks), np.exp(-ks))
    close(dr.vmap(dr.grad(end))(ks), -np.exp(-ks))


def test_odeint_refusals():
    msg = r"odeint: `func` returned a traced value.*pass it through args=\(\.\.\.\)"
    with pytest.raises(dr.DualrevError, match=msg):  # a class attribute is not converted
        dr.grad(lambda k: si.odeint(rate_rhs(rate_class(k)), [1.0], [0.0, 1.0])[-1, 0])(0.5)
    with pytest.raises(dr.DualrevError, match=msg):
        dr.grad(lambda y0, k: si.odeint(rate_rhs(rate_class(k)), y0, [0.0, 1.0])[-1, 0],
                argnums=(0, 1))(np.ones(1), 0.5)
    with pytest.raises(dr.NoDerivativeRule, match="traced tolerances"):
        dr.grad(lambda r: si.odeint(decay_yt, [1.0], [0.0, 1.0], args=(0.5,), rtol=r)[-1, 0])(
            1e-8)


# ------------------------------------------------------------------ dblquad
def triangle_integrand(y, x, c):  # dblquad's argument order: y first
    return np.exp(-c * (x + y))


def D(v):  # over the triangle 0 <= y <= x <= b
    return si.dblquad(triangle_integrand, 0.0, v[0], 0.0, lambda x: x, args=(v[1],))[0]


def D_closed(v):
    b, c = v[0], v[1]
    return ((1 - np.exp(-c * b)) / c - (1 - np.exp(-2 * c * b)) / (2 * c)) / c


V_DBL = np.array([1.3, 0.8])


@pytest.mark.parametrize("transform", [dr.grad, dr.jacfwd, dr.jacrev])
def test_dblquad_triangle_closed_form(transform):
    close(D(V_DBL), D_closed(V_DBL), rtol=1e-12)
    close(transform(D)(V_DBL), dr.grad(D_closed)(V_DBL), rtol=1e-8)


def test_dblquad_hessian_traced_inner_limits_and_primal():
    close(dr.hessian(D)(V_DBL), dr.hessian(D_closed)(V_DBL), rtol=1e-7, atol=1e-9)
    rect = lambda v: di.dblquad(triangle_integrand, 0.0, 1.0, v[0], v[1], args=(0.8,))[0]
    closed = lambda v: (1 - np.exp(-0.8)) / 0.8 * (np.exp(-0.8 * v[0]) - np.exp(-0.8 * v[1])) / 0.8
    w = np.array([0.2, 1.5])
    for transform in (dr.jacfwd, dr.jacrev):
        close(transform(rect)(w), dr.grad(closed)(w), rtol=1e-8)
    original = ORIGINALS[si.dblquad]
    value, _ = dr.jvp(lambda c: si.dblquad(triangle_integrand, 0.0, 1.3, 0.0, lambda x: x,
                                           args=(c,)), (0.8,), (1.0,))
    assert value == original(triangle_integrand, 0.0, 1.3, 0.0, lambda x: x, args=(0.8,))
    f = lambda v: si.dblquad(lambda y, x, p: np.sin(p[0] * x * y) + p[1] * y, 0.0, 1.0,
                             lambda x: x ** 2, 1.0, args=(v,), epsabs=1e-12, epsrel=1e-12)[0]
    close(dr.jacrev(f)(V_DBL), central(f, V_DBL), rtol=1e-7)


def test_dblquad_limit_the_walk_cannot_reach_is_refused():
    def f(c):
        class Lim:
            top = c

        return si.dblquad(lambda y, x: x, 0.0, 1.0, 0.0, lambda x: Lim.top * x)[0]

    limit = r"inner limit `hfun` returned a traced value.*substitute y = g\(x\)"
    for transform in (dr.grad, dr.jacfwd):
        with pytest.raises(dr.DualrevError, match=limit):
            transform(f)(1.0)


# ------------------------------------------------------------------ quad_vec
def vec_integrand(x, p):
    return np.stack([np.exp(-p[0] * x), p[1] * x ** 2, np.sin(p[0] * x)])


def QV(v):
    return si.quad_vec(vec_integrand, v[0], v[1], args=(v[2:],), epsrel=1e-12)[0]


def QV_closed(v):
    a, b, p, q = v[0], v[1], v[2], v[3]
    return np.stack([(np.exp(-p * a) - np.exp(-p * b)) / p, q * (b ** 3 - a ** 3) / 3,
                     (np.cos(p * a) - np.cos(p * b)) / p])


@pytest.mark.parametrize("transform", [dr.jacfwd, dr.jacrev])
def test_quad_vec_closed_form(transform):
    close(QV(V_QUAD), QV_closed(V_QUAD), rtol=1e-12)
    close(transform(QV)(V_QUAD), dr.jacfwd(QV_closed)(V_QUAD), rtol=1e-9)


def test_quad_vec_hessian_primal_shapes_and_infinite_limits():
    third = lambda v: QV(v)[2]
    close(dr.hessian(third)(V_QUAD), dr.hessian(lambda v: QV_closed(v)[2])(V_QUAD),
          rtol=1e-8, atol=1e-10)
    original = ORIGINALS[si.quad_vec]
    (value, err), _ = dr.jvp(lambda p: si.quad_vec(vec_integrand, 0.2, 1.5, args=(p,)),
                             (V_QUAD[2:],), (np.ones(2),))
    ref = original(vec_integrand, 0.2, 1.5, args=(V_QUAD[2:],))
    np.testing.assert_array_equal(value, ref[0])
    assert err == ref[1]
    mat = lambda p: di.quad_vec(lambda x, p: np.reshape(p * x, (2, 2)), 0.0, 1.0, args=(p,))[0]
    p = np.arange(4.0)
    close(dr.jacrev(mat)(p), np.reshape(np.eye(4) / 2, (2, 2, 4)))
    gauss = lambda s: si.quad_vec(lambda x, s: np.exp(-x ** 2 / (2 * s ** 2)), -np.inf, np.inf,
                                  args=(s,))[0]
    close(dr.grad(gauss)(1.3), np.sqrt(2 * np.pi))
    close(dr.vmap(lambda p: si.quad_vec(lambda x, p: np.stack([x * p, x]), 0.0, 1.0,
                                        args=(p,))[0])(np.array([1.0, 2.0])),
          [[0.5, 0.5], [1.0, 0.5]])


def test_quad_vec_refusals():
    with pytest.raises(dr.DualrevError, match=r"quad_vec: `f` returned a traced value"):
        dr.grad(lambda c: si.quad_vec(rate_rhs(rate_class(c)), 0.0, 1.0)[0])(1.0)
    with pytest.raises(dr.NoDerivativeRule, match="full_output=True"):
        dr.grad(lambda c: si.quad_vec(lambda x, c: c * x, 0.0, 1.0, args=(c,),
                                      full_output=True)[0])(1.0)


# ------------------------------------------------------------------ stiffness x tolerance
# Issue 21, generator 4: forward and reverse mode of every solve_ivp method and odeint on
# problems from non-stiff to very stiff, at the user's tolerance, against a reference
# that uses nothing of dualrev (tests/ode_family.py; `python -m tests.ode_family --full`
# prints the whole table).
# Error / rtol of the Jacobian: in the full table at most 9 for reverse mode; forward mode
# (SciPy's error control of the variational system) reaches 21 with LSODA at c = 1e4
# (in the default cases) and 93 with LSODA on van der Pol mu=1000 at rtol 1e-10 (not).
ERR_PER_RTOL = 25


@pytest.mark.parametrize("name,method,rtol", fam.DEFAULT,
                         ids=[f"{n}-{m}-{r:.0e}" for n, m, r in fam.DEFAULT])
def test_derivatives_across_stiffness_and_tolerance(name, method, rtol):
    prob = fam.BY_NAME[name]
    for mode in ("fwd", "rev"):
        err = fam.error(prob, method, rtol, mode)
        assert err <= ERR_PER_RTOL * rtol, (mode, err)


def test_default_cases_cover_every_method_problem_and_tolerance():
    assert {m for _, m, _ in fam.DEFAULT} == set(fam.METHODS)
    assert {n for n, _, _ in fam.DEFAULT} == set(fam.BY_NAME)
    assert {r for _, _, r in fam.DEFAULT} == set(fam.RTOLS)
    full = fam.cases(full=True)
    assert all((fam.BY_NAME[n], m, r) in full for n, m, r in fam.DEFAULT)


def stiff_rhs(t, y, b, c):
    return np.stack([-2 * y[0] + b * y[1], 2 * y[0] - b * y[1] - c * y[1] ** 3])


@pytest.mark.parametrize("c", [100.0, 1000.0])
def test_stiff_reverse_mode_has_the_sign_and_digits_of_forward_mode(c):
    """Issue 21: reverse mode (Radau, rtol 1e-10) gave -1.93e-5 for +6.71e-5 at c = 1000
    (the adjoint re-integrated y backwards, unstable for a decaying system), and was off
    in the 7th digit at c = 100."""
    def y1(b):
        return si.solve_ivp(stiff_rhs, (0.0, 1.0), [1.0, 1.0], method="Radau", t_eval=[1.0],
                            args=(b, c), rtol=1e-10, atol=1e-12).y[1, -1]

    ref = fam.reference(fam.BY_NAME[f"cubic c={c:g}"])[1, 2]  # d y1(1) / d b
    rev = dr.grad(y1)(3.0)
    close(rev, ref, rtol=1e-8, atol=0)
    close(rev, dr.jacfwd(y1)(3.0), rtol=1e-8, atol=0)
    if c == 1000.0:
        assert 6.70e-5 < ref < 6.72e-5


def test_stiff_jacobian_in_y0_args_t0_and_t_eval_both_modes():
    """Every input of a stiff solve at several output times: jacrev == jacfwd, and both
    against central differences of the plain solve."""
    def traj(q):  # q = (y0, b, t0, t_eval)
        return si.solve_ivp(stiff_rhs, (q[3], 2.0), q[:2], method="LSODA", t_eval=q[4:],
                            args=(q[2], 1000.0), rtol=1e-10, atol=1e-13).y.ravel()

    q = np.array([1.0, 1.0, 3.0, 0.0, 0.3, 0.6, 1.0])
    fwd, rev = dr.jacfwd(traj)(q), dr.jacrev(traj)(q)
    close(rev, fwd, rtol=1e-7, atol=1e-9)
    close(rev, central(traj, q, 1e-5), rtol=1e-5, atol=1e-7)


def test_stiff_hessian_against_differences_of_the_gradient():
    """Forward over reverse (the adjoint's own derivative, a second-order adjoint) and
    reverse over reverse on a stiff system, against central differences of the
    gradient."""
    def y1(q):
        return si.solve_ivp(stiff_rhs, (0.0, 1.0), q[:2], method="LSODA", t_eval=[1.0],
                            args=(q[2], 100.0), rtol=1e-9, atol=1e-12).y[1, -1]

    q = np.array([1.0, 1.0, 3.0])
    fd = central(dr.grad(y1), q, 1e-4)
    close(dr.hessian(y1)(q), fd, rtol=1e-5, atol=1e-7)
    close(dr.jacrev(dr.jacrev(y1))(q), fd, rtol=1e-5, atol=1e-7)


def test_vmap_over_the_end_time():
    """Issue 21: vmap over t_span's end crashed in float(None). With t_eval it is one
    solve per member (t_eval at the traced end moves with it); without t_eval the
    documented refusal; t_eval beyond a member's end is SciPy's ValueError."""
    ends = np.array([1.0, 2.0])
    at_end = lambda t1: si.solve_ivp(decay, (0.0, t1), [1.0], args=(1.0,),
                                     t_eval=np.reshape(t1, (1,)), **TOL).y[0, -1]
    close(dr.vmap(at_end)(ends), np.exp(-ends))
    close(dr.vmap(dr.grad(at_end))(ends), -np.exp(-ends))
    fixed = lambda t1: si.solve_ivp(decay, (0.0, t1), [1.0], args=(1.0,), t_eval=[0.5],
                                    **TOL).y[0, -1]
    close(dr.vmap(fixed)(ends), np.exp(-0.5) * np.ones(2))
    with pytest.raises(dr.DualrevError, match="vmap over t_span's end needs t_eval="):
        dr.vmap(lambda t1: si.solve_ivp(decay, (0.0, t1), [1.0], args=(1.0,)).y[0, -1])(ends)
    with pytest.raises(ValueError, match="not within `t_span`"):
        dr.vmap(lambda t1: si.solve_ivp(decay, (0.0, t1), [1.0], args=(1.0,),
                                        t_eval=[1.5]).y[0, -1])(ends)


def array_rhs(t, y, k):
    return np.array([-k * y[0], k * y[0]])


@pytest.mark.parametrize("transform", [dr.grad, dr.jacfwd])
def test_np_array_in_a_right_hand_side_works(transform):
    """Issue 21 named np.array([...]) in the user's right-hand side (called by the SciPy
    solver dualrev runs) instead of blaming the import order; since issue 22 it works as
    written (tests/catalogue/test_construction.py): y0(1) = exp(-k)."""
    f = lambda k: si.solve_ivp(array_rhs, (0.0, 1.0), [1.0, 0.0], args=(k,),
                               t_eval=[1.0], rtol=1e-10, atol=1e-12).y[0, -1]
    g = lambda k: si.odeint(array_rhs, [1.0, 0.0], [0.0, 1.0], args=(k,), tfirst=True,
                            rtol=1e-10, atol=1e-12)[-1, 0]
    for fn in (f, g):
        np.testing.assert_allclose(transform(fn)(0.5), -np.exp(-0.5), rtol=1e-6)


def test_odeint_errors_name_odeint():
    """Issue 21: the failures of odeint's derivative systems (solve_ivp solves) said
    solve_ivp; they name odeint, and its derivative rules pass that name on."""
    params = dict(rhs=None, options={}, primal={}, holder=None)
    assert di._as_solve(params)["name"] == "scipy.integrate.odeint"
    blowup = lambda t, y: y ** 2  # y(t) = 1 / (1 - t): no solution up to t = 2
    with pytest.raises(dr.DualrevError, match=r"^dualrev: scipy.integrate.odeint failed"):
        di._plain_solve(np.ones(1), 0.0, 2.0, None, (), blowup, "RK45", {}, False,
                        name=di._ODEINT)


# ------------------------------------------------------------------ closures (issue 22)
# Callbacks that close over the values being differentiated, as users write them:
# dualrev.closure.lift passes those values to SciPy's routine through args=.
def gauss_closed(a):  # ∫_0^1 exp(-a x²) dx
    return np.sqrt(np.pi) / (2 * np.sqrt(a)) * scipy.special.erf(np.sqrt(a))


def gauss_quad(a):
    return si.quad(lambda x: np.exp(-a * x ** 2), 0.0, 1.0, epsabs=1e-13, epsrel=1e-13)[0]


def test_quad_closure_every_mode_against_the_closed_form():
    a = 1.3
    d1 = (np.exp(-a) - gauss_closed(a)) / (2 * a)  # by parts: -∫ x² exp(-a x²)
    close(gauss_quad(a), gauss_closed(a), rtol=1e-12)
    for transform in (dr.grad, dr.jacfwd, dr.jacrev, dr.jacobian):
        close(transform(gauss_quad)(a), d1, rtol=1e-10)
    close(dr.jvp(gauss_quad, (a,), (2.0,))[1], 2 * d1, rtol=1e-10)
    close(dr.hessian(gauss_quad)(a), dr.hessian(gauss_closed)(a), rtol=1e-9)
    close(dr.grad(dr.grad(gauss_quad))(a), dr.hessian(gauss_closed)(a), rtol=1e-9)
    aa = np.array([0.5, 1.3, 2.0])
    close(dr.vmap(gauss_quad)(aa), gauss_closed(aa), rtol=1e-12)
    close(dr.vmap(dr.grad(gauss_quad))(aa), dr.vmap(dr.grad(gauss_closed))(aa), rtol=1e-10)


class Integrand:
    def __init__(self, a):
        self.a = a

    def __call__(self, x):
        return np.exp(-self.a * x ** 2)

    def f(self, x):
        return np.exp(-self.a * x ** 2)


def gauss_kernel(x, a):
    return np.exp(-a * x ** 2)


SPELLINGS = {
    "partial": lambda a: functools.partial(gauss_kernel, a=a),
    "bound method": lambda a: Integrand(a).f,
    "callable object": lambda a: Integrand(a),
    "default argument": lambda a: (lambda x, a=a: np.exp(-a * x ** 2)),
    "nested helper": lambda a: (lambda h: (lambda x: h(x)))(lambda x: np.exp(-a * x ** 2)),
}


@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_quad_closure_spellings(spelling):
    make = SPELLINGS[spelling]
    f = lambda a: si.quad(make(a), 0.0, 1.0, epsabs=1e-13, epsrel=1e-13)[0]
    a = 0.9
    want = dr.grad(gauss_closed)(a)
    close(dr.grad(f)(a), want, rtol=1e-10)
    close(dr.jacfwd(f)(a), want, rtol=1e-10)


def test_quad_closure_over_an_array_with_args_and_a_traced_limit():
    def f(v):
        p = v[:2]
        return si.quad(lambda x, c: c * np.exp(-p[0] * x) + p[1] * x ** 2, 0.0, v[2],
                       args=(v[3],), epsabs=1e-13, epsrel=1e-13)[0]

    v = np.array([0.7, 1.2, 1.4, 2.0])
    want = central(f, v)
    for transform in (dr.jacfwd, dr.jacrev):
        close(transform(f)(v), want, rtol=1e-7)
    close(dr.hessian(f)(v), central(dr.grad(f), v), rtol=1e-6, atol=1e-7)


def test_nested_quads_closing_over_the_outer_variable():
    def f(v):  # ∫_0^b ∫_0^x exp(-a y) dy dx, the inner integrand closing over a and x
        a, b = v[0], v[1]
        inner = lambda x: si.quad(lambda y: np.exp(-a * y), 0.0, x, epsabs=1e-13,
                                  epsrel=1e-13)[0]
        return si.quad(inner, 0.0, b, epsabs=1e-12, epsrel=1e-12)[0]

    closed = lambda v: v[1] / v[0] - (1 - np.exp(-v[0] * v[1])) / v[0] ** 2
    v = np.array([0.8, 1.5])
    close(f(v), closed(v), rtol=1e-10)
    for transform in (dr.jacfwd, dr.jacrev):
        close(transform(f)(v), dr.grad(closed)(v), rtol=1e-8)


def test_solve_ivp_closure_every_mode_against_the_closed_form():
    def end(k):  # y' = -k y, y(0) = 1: y(2) = exp(-2 k)
        return si.solve_ivp(lambda t, y: -k * y, (0.0, 2.0), [1.0], t_eval=[2.0],
                            **TOL).y[0, -1]

    k = 0.6
    for transform in (dr.grad, dr.jacfwd, dr.jacrev):
        close(transform(end)(k), -2 * np.exp(-2 * k), rtol=1e-7)
    close(dr.jvp(end, (k,), (1.0,))[1], -2 * np.exp(-2 * k), rtol=1e-7)
    close(dr.hessian(end)(k), 4 * np.exp(-2 * k), rtol=1e-6)
    ks = np.array([0.3, 0.6, 0.9])
    close(dr.vmap(end)(ks), np.exp(-2 * ks), rtol=1e-8)
    close(dr.vmap(dr.grad(end))(ks), -2 * np.exp(-2 * ks), rtol=1e-7)

    def without_t_eval(k):  # SciPy's steps, then the end: no t_eval, closure only
        return si.solve_ivp(lambda t, y: -k * y, (0.0, 2.0), [1.0], **TOL).y[0, -1]

    close(dr.grad(without_t_eval)(k), -2 * np.exp(-2 * k), rtol=1e-7)


def rotation_generator(theta):
    return np.stack([np.stack([-theta[0], theta[1]]), np.stack([-theta[1], -theta[0]])])


@pytest.mark.parametrize("method", ["RK45", "Radau"])
def test_solve_ivp_linear_system_closing_over_a_matrix_against_expm(method):
    y0 = np.array([1.0, 0.5])

    def end(theta):
        A = rotation_generator(theta)
        jac = (lambda t, y: A) if method == "Radau" else None
        opts = dict(jac=jac) if jac is not None else {}
        return si.solve_ivp(lambda t, y: A @ y, (0.0, 1.5), y0, method=method,
                            t_eval=[1.5], **opts, **TOL).y[:, -1]

    expm_end = lambda th: scipy.linalg.expm(1.5 * rotation_generator(th)) @ y0
    theta = np.array([0.3, 1.1])
    close(end(theta), expm_end(theta), rtol=1e-7)
    want = central(expm_end, theta)
    for transform in (dr.jacfwd, dr.jacrev):
        close(transform(end)(theta), want, rtol=1e-6, atol=1e-8)


def test_solve_ivp_closure_together_with_args():
    def end(v):  # y' = -k y + c: y(T) = c/k + (y0 - c/k) exp(-k T)
        k = v[0]
        return si.solve_ivp(lambda t, y, c: -k * y + c, (0.0, 1.0), [2.0], args=(v[1],),
                            t_eval=[1.0], **TOL).y[0, -1]

    closed = lambda v: v[1] / v[0] + (2.0 - v[1] / v[0]) * np.exp(-v[0])
    v = np.array([0.8, 0.3])
    for transform in (dr.jacfwd, dr.jacrev):
        close(transform(end)(v), dr.grad(closed)(v), rtol=1e-7)


def test_odeint_closure():
    def end(k):
        return si.odeint(lambda y, t: -k * y, [1.0], [0.0, 2.0], rtol=1e-11,
                         atol=1e-12)[-1, 0]

    k = 0.6
    for transform in (dr.grad, dr.jacfwd, dr.jacrev):
        close(transform(end)(k), -2 * np.exp(-2 * k), rtol=1e-6)
    close(dr.hessian(end)(k), 4 * np.exp(-2 * k), rtol=1e-5)
    ks = np.array([0.3, 0.9])
    close(dr.vmap(end)(ks), np.exp(-2 * ks), rtol=1e-8)

    def with_dfun(k):  # the Jacobian closing over k too (SciPy's solve uses it)
        return si.odeint(lambda y, t: -k * y, [1.0], [0.0, 2.0], rtol=1e-11, atol=1e-12,
                         Dfun=lambda y, t: -k * np.ones((1, 1)))[-1, 0]

    for transform in (dr.grad, dr.jacfwd):
        close(transform(with_dfun)(k), -2 * np.exp(-2 * k), rtol=1e-6)


def test_dblquad_integrand_and_limits_closing_over_a_traced_value():
    def body(c):  # ∫_0^1 ∫_0^x exp(-c y) dy dx = 1/c - (1 - exp(-c)) / c²
        return si.dblquad(lambda y, x: np.exp(-c * y), 0.0, 1.0, 0.0, lambda x: x,
                          epsabs=1e-13, epsrel=1e-13)[0]

    def upper(c):  # ∫_0^1 ∫_0^{c x} exp(-y) dy dx = 1 - (1 - exp(-c)) / c (Leibniz in c)
        return si.dblquad(lambda y, x: np.exp(-y), 0.0, 1.0, 0.0, lambda x: c * x,
                          epsabs=1e-13, epsrel=1e-13)[0]

    def lower(c):  # ∫_0^1 ∫_{-c x}^0 exp(y) dy dx: the same value
        return si.dblquad(lambda y, x: np.exp(y), 0.0, 1.0, lambda x: -c * x, 0.0,
                          epsabs=1e-13, epsrel=1e-13)[0]

    body_closed = lambda c: 1 / c - (1 - np.exp(-c)) / c ** 2
    limit_closed = lambda c: 1 - (1 - np.exp(-c)) / c
    c = 0.7
    for f, closed in ((body, body_closed), (upper, limit_closed), (lower, limit_closed)):
        close(f(c), closed(c), rtol=1e-11)
        for transform in (dr.grad, dr.jacfwd, dr.jacrev):
            close(transform(f)(c), dr.grad(closed)(c), rtol=1e-9)
        close(dr.hessian(f)(c), dr.hessian(closed)(c), rtol=1e-7)
    cs = np.array([0.4, 1.1])
    close(dr.vmap(upper)(cs), limit_closed(cs), rtol=1e-11)
    close(dr.vmap(dr.grad(upper))(cs), dr.vmap(dr.grad(limit_closed))(cs), rtol=1e-9)


def test_quad_vec_closure():
    def f(a):  # ∫_0^1 (exp(-a x), a x²) dx = ((1 - exp(-a)) / a, a / 3)
        return si.quad_vec(lambda x: np.stack([np.exp(-a * x), a * x ** 2]), 0.0, 1.0,
                           epsrel=1e-12)[0]

    closed = lambda a: np.stack([(1 - np.exp(-a)) / a, a / 3])
    a = 0.9
    close(f(a), closed(a), rtol=1e-11)
    for transform in (dr.jacfwd, dr.jacrev):
        close(transform(f)(a), dr.jacfwd(closed)(a), rtol=1e-9)
    close(dr.jacfwd(dr.jacrev(f))(a), dr.jacfwd(dr.jacfwd(closed))(a), rtol=1e-7)
    aa = np.array([0.5, 1.5])
    close(dr.vmap(f)(aa), dr.vmap(closed)(aa), rtol=1e-11)


# ------------------------------------------------------------------ events (issue 22)
def threshold_solve(v, **kw):
    """y' = -k y, y(0) = y0, stopped when y reaches c (a closure over k and c)."""
    y0, k, c = v[0], v[1], v[2]

    def hit(t, y):
        return y[0] - c

    hit.terminal = True
    return si.solve_ivp(lambda t, y: -k * y, (0.0, 10.0), np.reshape(y0, (1,)), events=hit,
                        **TOL, **kw)


def threshold_time(v):  # t* = log(y0 / c) / k
    return np.log(v[0] / v[2]) / v[1]


V_EVENT = np.array([1.5, 0.7, 0.3])


def test_terminal_event_time_closing_over_a_threshold_every_mode():
    t_star = lambda v: threshold_solve(v).t_events[0][0]
    close(t_star(V_EVENT), threshold_time(V_EVENT), rtol=1e-9)
    want = dr.grad(threshold_time)(V_EVENT)
    for transform in (dr.grad, dr.jacfwd, dr.jacrev):
        close(transform(t_star)(V_EVENT), want, rtol=1e-7)
    close(dr.jvp(t_star, (V_EVENT,), (np.array([0.1, -0.2, 0.3]),))[1],
          want @ np.array([0.1, -0.2, 0.3]), rtol=1e-7)
    in_kc = lambda kc: t_star(np.concatenate([V_EVENT[:1], kc]))
    closed_kc = lambda kc: threshold_time(np.concatenate([V_EVENT[:1], kc]))
    close(dr.hessian(in_kc)(V_EVENT[1:]), dr.hessian(closed_kc)(V_EVENT[1:]), rtol=1e-6)


def test_terminal_event_ends_the_solution_at_its_traced_time():
    def end(v):  # the last output is at t*: time t*, state c
        r = threshold_solve(v)
        return np.stack([r.t[-1], r.y[0, -1], r.y_events[0][0, 0]])

    closed = lambda v: np.stack([threshold_time(v), v[2], v[2]])
    close(end(V_EVENT), closed(V_EVENT), rtol=1e-8)
    for transform in (dr.jacfwd, dr.jacrev):
        close(transform(end)(V_EVENT), dr.jacfwd(closed)(V_EVENT), rtol=1e-7, atol=1e-8)

    def outputs(v):  # with t_eval: the outputs before the event only, as SciPy's
        return threshold_solve(v, t_eval=np.linspace(0.0, 4.0, 9)).y[0]

    plain = ORIGINALS[si.solve_ivp](lambda t, y: -0.7 * y, (0.0, 10.0), [1.5],
                                    t_eval=np.linspace(0.0, 4.0, 9),
                                    events=_terminal_probe,
                                    **TOL)
    assert outputs(V_EVENT).shape == plain.y[0].shape == (5,)  # t* = 2.30: 0, 0.5, ..., 2
    ts = np.linspace(0.0, 2.0, 5)
    close(dr.jacfwd(outputs)(V_EVENT),
          np.stack([np.exp(-0.7 * ts), -ts * 1.5 * np.exp(-0.7 * ts), 0 * ts], axis=1),
          rtol=1e-7, atol=1e-9)
    close(dr.jacrev(outputs)(V_EVENT), dr.jacfwd(outputs)(V_EVENT), rtol=1e-7, atol=1e-9)


def _terminal_probe(t, y):
    return y[0] - 0.3


_terminal_probe.terminal = True


def test_repeated_directional_events_of_an_oscillator():
    """x'' = -w² x, x(0) = 1: x = cos(w t) falls through c at t_k = (acos(c) + 2πk) / w
    (twice before t = 7), with velocity -w sqrt(1 - c²) there; a closure over w and c,
    direction -1."""
    def events(v):
        w, c = v[0], v[1]

        def cross(t, y):
            return y[0] - c

        cross.direction = -1
        r = si.solve_ivp(lambda t, y: np.stack([y[1], -w ** 2 * y[0]]), (0.0, 7.0),
                         [1.0, 0.0], events=[cross], rtol=1e-9, atol=1e-11)
        return np.concatenate([r.t_events[0], r.y_events[0][:, 1]])

    def closed(v):
        w, c = v[0], v[1]
        ts = (np.arccos(c) + 2 * np.pi * np.arange(2)) / w
        return np.concatenate([ts, -w * np.sqrt(1 - c ** 2) * np.ones(2)])

    v = np.array([1.3, 0.4])
    close(events(v), closed(v), rtol=1e-7)
    for transform in (dr.jacfwd, dr.jacrev):
        close(transform(events)(v), dr.jacfwd(closed)(v), rtol=1e-5, atol=1e-7)


def test_events_under_vmap_are_refused_and_plain_events_are_scipys():
    t_star = lambda c: threshold_solve(np.stack([1.5, 0.7, c])).t_events[0][0]
    with pytest.raises(dr.DualrevError, match=r"events=\.\.\.\) under vmap.*Python loop"):
        dr.vmap(t_star)(np.array([0.3, 0.4]))
    close(t_star(0.3), threshold_time(np.array([1.5, 0.7, 0.3])), rtol=1e-9)


def test_closures_over_values_of_two_transforms_and_jacobians_of_vmap():
    """An integrand closing over an outer transform's value and an inner one's; jacrev of
    a vmap whose members close over both a batched and an outer value."""
    def F(s, t):  # ∫_0^1 exp(-s t x) dx = (1 - exp(-s t)) / (s t)
        return si.quad(lambda x: np.exp(-s * t * x), 0.0, 1.0, epsabs=1e-13,
                       epsrel=1e-13)[0]

    closed = lambda s, t: (1 - np.exp(-s * t)) / (s * t)
    mixed = lambda f: dr.grad(lambda s: dr.grad(lambda t: f(s, t))(1.3))(0.7)
    close(mixed(F), mixed(closed), rtol=1e-10)
    G = lambda s, t: si.solve_ivp(lambda tt, y: -s * t * y, (0.0, 1.0), [1.0], t_eval=[1.0],
                                  **TOL).y[0, -1]
    close(mixed(G), mixed(lambda s, t: np.exp(-s * t)), rtol=1e-7)
    v = np.array([1.3, 0.5, 0.7])
    batched = lambda f: (lambda v: dr.vmap(lambda s: f(s, v[0]))(v[1:]))
    close(dr.jacrev(batched(F))(v), dr.jacfwd(batched(closed))(v), rtol=1e-10)
    close(dr.jacfwd(batched(F))(v), dr.jacfwd(batched(closed))(v), rtol=1e-10)


# ------------------------------------------------------------------ tplquad
def test_tplquad_simplex_with_closure_limits_every_mode():
    """∫_0^c ∫_0^{c-x} ∫_0^{c-x-y} w dz dy dx = w c³/6: limits closing over c, the
    integrand over w (Leibniz at three levels)."""
    def vol(v):
        c, w = v[0], v[1]
        return si.tplquad(lambda z, y, x: w, 0.0, c, 0.0, lambda x: c - x, 0.0,
                          lambda x, y: c - x - y, epsabs=1e-12, epsrel=1e-12)[0]

    closed = lambda v: v[1] * v[0] ** 3 / 6
    v = np.array([1.3, 0.8])
    close(vol(v), closed(v), rtol=1e-12)
    for transform in (dr.grad, dr.jacfwd, dr.jacrev):
        close(transform(vol)(v), dr.grad(closed)(v), rtol=1e-10)
    def in_c(c):  # d²/dc² c³/6 = c (the full hessian, w traced too, takes 27 s)
        return si.tplquad(lambda z, y, x: 1.0, 0.0, c, 0.0, lambda x: c - x, 0.0,
                          lambda x, y: c - x - y)[0]

    close(dr.grad(dr.grad(in_c))(1.3), 1.3, rtol=1e-8)
    cs = np.array([0.5, 1.3])
    close(dr.vmap(in_c)(cs), cs ** 3 / 6, rtol=1e-12)


def test_tplquad_args_traced_constant_limits_and_plain_calls():
    def f(v):  # ∫∫∫ exp(-a (x + y + z)) over [0, b]³ = ((1 - exp(-a b)) / a)³
        return si.tplquad(lambda z, y, x, a: np.exp(-a * (x + y + z)), 0.0, v[1], 0.0, v[1],
                          0.0, v[1], args=(v[0],), epsabs=1e-12, epsrel=1e-12)[0]

    closed = lambda v: ((1 - np.exp(-v[0] * v[1])) / v[0]) ** 3
    v = np.array([0.7, 1.2])
    close(f(v), closed(v), rtol=1e-11)
    for transform in (dr.jacfwd, dr.jacrev):
        close(transform(f)(v), dr.grad(closed)(v), rtol=1e-9)
    plain = si.tplquad(lambda z, y, x: x * y * z, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0)
    assert plain == ORIGINALS[si.tplquad](lambda z, y, x: x * y * z, 0.0, 1.0, 0.0, 1.0,
                                          0.0, 1.0)
    assert si.tplquad is not ORIGINALS[si.tplquad]


def test_closures_in_two_threads():
    """Each thread's closure is its own (lift copies, never mutates): concurrent grads of
    the same integrand code with different closed-over values."""
    import threading

    results, errors = {}, []

    def work(a):
        try:
            for _ in range(3):
                results[a] = dr.grad(gauss_quad)(a)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(a,)) for a in (0.5, 1.0, 2.0)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    for a, v in results.items():
        close(v, (np.exp(-a) - gauss_closed(a)) / (2 * a), rtol=1e-10)


def test_terminal_event_backward_in_time():
    """y' = -k y from t = 0 backwards, y(0) = 1, reaches c > 1 at t* = -log(c) / k."""
    def out(v):
        k, c = v[0], v[1]

        def reach(t, y):
            return y[0] - c

        reach.terminal = True
        r = si.solve_ivp(lambda t, y: -k * y, (0.0, -10.0), [1.0], events=reach, **TOL)
        return np.stack([r.t_events[0][0], r.t[-1], r.y[0, -1]])

    closed = lambda v: np.stack([-np.log(v[1]) / v[0], -np.log(v[1]) / v[0], v[1]])
    v = np.array([0.7, 3.0])
    close(out(v), closed(v), rtol=1e-9)
    for transform in (dr.jacfwd, dr.jacrev):
        close(transform(out)(v), dr.jacfwd(closed)(v), rtol=1e-7, atol=1e-9)


# ------------------------------------------------------------------ nquad
def test_nquad_closures_args_options_every_mode():
    def box(v):  # ∫∫∫ exp(-a (x + y + z)) over [0, b]³ = ((1 - exp(-a b)) / a)³
        return si.nquad(lambda x, y, z, a: np.exp(-a * (x + y + z)), [(0.0, v[1])] * 3,
                        args=(v[0],), opts={"epsabs": 1e-12, "epsrel": 1e-12})[0]

    closed = lambda v: ((1 - np.exp(-v[0] * v[1])) / v[0]) ** 3
    v = np.array([0.7, 1.2])
    close(box(v), closed(v), rtol=1e-11)
    for transform in (dr.jacfwd, dr.jacrev):
        close(transform(box)(v), dr.grad(closed)(v), rtol=1e-9)

    def wedge(v):  # a callable range (x up to y) and an integrand closing over v
        return si.nquad(lambda x, y: np.sin(v[0] * x * y), [lambda y: (0.0, y), (0.0, v[1])],
                        opts=[{"epsabs": 1e-12, "epsrel": 1e-12}] * 2)[0]

    want = central(wedge, v)
    for transform in (dr.jacfwd, dr.jacrev):
        close(transform(wedge)(v), want, rtol=1e-7)

    def tri(c):  # ∫_0^1 ∫_0^{c y} dx dy = c / 2, c only in a range's closure
        return si.nquad(lambda x, y: x + y, [lambda y: (0.0, c * y), (0.0, 1.0)])[0]

    tri_closed = lambda c: c ** 2 / 6 + c / 3
    close(dr.grad(tri)(2.0), dr.grad(tri_closed)(2.0), rtol=1e-10)
    close(dr.grad(dr.grad(tri))(2.0), 1 / 3, rtol=1e-8)
    cs = np.array([1.0, 2.0])
    close(dr.vmap(tri)(cs), tri_closed(cs), rtol=1e-12)


def test_nquad_plain_calls_and_refusal():
    plain = si.nquad(lambda x, y: x * y, [(0.0, 1.0), (0.0, 2.0)])
    assert plain == ORIGINALS[si.nquad](lambda x, y: x * y, [(0.0, 1.0), (0.0, 2.0)])
    with pytest.raises(dr.NoDerivativeRule, match=r"nquad\(full_output=True\)"):
        dr.grad(lambda c: si.nquad(lambda x: c * x, [(0.0, 1.0)], full_output=True)[0])(1.0)
