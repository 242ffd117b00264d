"""The solutions of scipy.optimize's solvers, differentiated by the implicit function
theorem (dualrev/implicit.py): closed forms, finite differences of re-solving, forward
against reverse, second derivatives, vmap, bounds, and the refusals."""

import numpy as np
import pytest
import scipy.optimize as so

import dualrev as dr
from dualrev import optimize as dro

RNG = np.random.default_rng(20261206)
Q = np.array([[3.0, 0.5, 0.2], [0.5, 2.0, -0.3], [0.2, -0.3, 1.5]])
THETA = np.array([0.7, -1.2, 0.4])


def both_modes(f, x):
    """jacfwd and jacrev of f at x, asserted equal; returns the Jacobian."""
    jf, jr = dr.jacfwd(f)(x), dr.jacrev(f)(x)
    np.testing.assert_allclose(jf, jr, rtol=1e-10, atol=1e-12)
    return jf


def central(f, x, h=1e-5):
    x = np.asarray(x, dtype=float)
    cols = []
    for e in np.eye(x.size):
        e = e.reshape(x.shape)
        cols.append((np.asarray(f(x + h * e)) - np.asarray(f(x - h * e))) / (2 * h))
    out = np.stack(cols, axis=-1)
    return out.reshape(out.shape[:-1] + x.shape)


def newton_polish(f, x, steps=3):
    """A few Newton steps on grad f = 0 (exact Hessians): a refit to rounding."""
    for _ in range(steps):
        x = x - np.linalg.solve(dr.hessian(f)(x), dr.grad(f)(x))
    return x


# ------------------------------------------------------------------ minimize
@pytest.mark.parametrize("method", ["BFGS", "Nelder-Mead", "L-BFGS-B", "trust-constr"])
def test_minimize_quadratic_argmin_closed_form(method):
    # argmin 1/2 x'Qx - theta'x = Q^-1 theta: dx/dtheta = Q^-1, through a closure
    def argmin(theta):
        opts = {"xatol": 1e-12, "fatol": 1e-14, "maxiter": 20000} if method == "Nelder-Mead" \
            else {"gtol": 1e-12} if method != "L-BFGS-B" else {"gtol": 1e-12, "ftol": 1e-15}
        return so.minimize(lambda x: 0.5 * x @ Q @ x - theta @ x, np.zeros(3),
                           method=method, options=opts).x

    np.testing.assert_allclose(argmin(THETA), np.linalg.solve(Q, THETA), atol=1e-6)
    np.testing.assert_allclose(both_modes(argmin, THETA), np.linalg.inv(Q), atol=1e-10)


def test_minimize_args_and_envelope_theorem():
    # theta through args=; res.fun = f(x*(theta), theta): its gradient is df/dtheta = -x*
    f = lambda x, th: 0.5 * x @ Q @ x - th @ x + 0.25 * np.sum(x ** 4)
    res_of = lambda th: so.minimize(f, np.zeros(3), args=(th,), options={"gtol": 1e-12})
    res = res_of(THETA)
    np.testing.assert_allclose(dr.grad(lambda th: res_of(th).fun)(THETA), -res.x, atol=1e-9)
    # dx*/dtheta = (Q + 3 diag(x*^2))^-1 (the Hessian's inverse)
    H = Q + np.diag(3 * res.x ** 2)
    np.testing.assert_allclose(both_modes(lambda th: res_of(th).x, THETA), np.linalg.inv(H),
                               atol=1e-8)
    assert res_of(THETA).nit == res.nit  # SciPy's fields are SciPy's


def test_minimize_jac_true_and_user_hessian():
    def fg(x, th):
        return 0.5 * x @ Q @ x - th @ x, Q @ x - th

    sol = lambda th: so.minimize(fg, np.zeros(3), args=(th,), jac=True, method="trust-exact",
                                 hess=lambda x, th: Q, options={"gtol": 1e-12}).x
    np.testing.assert_allclose(both_modes(sol, THETA), np.linalg.inv(Q), atol=1e-10)


def test_minimize_bounds_active_components_are_held():
    # x* = clip(theta, lb, ub) for a separable quadratic: derivative 1 inside, 0 at a bound
    lb, ub = np.array([0.0, -1.0, -5.0]), np.array([1.0, 0.5, 5.0])
    theta = np.array([1.7, -0.3, 0.2])  # first at its upper bound, the others free
    for method in ("L-BFGS-B", "TNC", "SLSQP"):
        sol = lambda th, method=method: so.minimize(
            lambda x: np.sum((x - th) ** 2), np.zeros(3), method=method,
            bounds=list(zip(lb, ub, strict=True)), tol=1e-14).x
        np.testing.assert_allclose(sol(theta), np.clip(theta, lb, ub), atol=1e-7)
        np.testing.assert_allclose(both_modes(sol, theta), np.diag([0.0, 1.0, 1.0]), atol=1e-9)


def test_bilevel_hessian_against_refits():
    # outer(theta) = g(x*(theta), theta), x* = argmin of a nonlinear f: the Hessian of the
    # outer objective (forward over reverse, reverse over reverse, forward over forward)
    # against central differences of its gradient, each inner problem refitted tightly
    def inner(x, th):
        return 0.5 * np.sum((x - th) ** 2) + 0.25 * np.sum(x ** 4) + 0.3 * x[0] * x[1]

    def outer(th):
        xs = dro.minimize(inner, np.zeros(2), args=(th,), method="trust-exact",
                          options={"gtol": 1e-13}).x
        return np.sum(np.sin(xs) * th) + xs @ xs

    t0 = np.array([0.5, 1.2])
    H = dr.hessian(outer)(t0)
    np.testing.assert_allclose(H, dr.jacrev(dr.jacrev(outer))(t0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(H, dr.jacfwd(dr.jacfwd(outer))(t0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(H, central(dr.grad(outer), t0), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(H, H.T, atol=1e-12)


def test_vmap_runs_the_solver_per_example():
    f = lambda th: so.minimize(lambda x: np.sum((x - th) ** 2) + 0.1 * np.sum(x ** 4),
                               np.zeros(2), options={"gtol": 1e-12}).x
    thetas = np.array([[1.0, 2.0], [0.5, 0.1], [-0.3, 0.8]])
    np.testing.assert_allclose(dr.vmap(f)(thetas), np.stack([f(t) for t in thetas]),
                               atol=1e-12)
    J = dr.vmap(dr.jacfwd(f))(thetas)
    np.testing.assert_allclose(J, np.stack([dr.jacrev(f)(t) for t in thetas]), atol=1e-12)
    np.testing.assert_allclose(J[:, [0, 1], [0, 1]], 1 / (1 + 0.6 * f_all(f, thetas) ** 2),
                               atol=1e-9)
    np.testing.assert_allclose(dr.jacrev(lambda T: dr.vmap(f)(T))(thetas)[1, :, 1, :], J[1],
                               atol=1e-12)
    # SciPy's fields become one array over the batch (the x and fun fields are batched)
    seen = []
    dr.vmap(lambda th: seen.append(so.minimize(lambda x: np.sum((x - th) ** 2),
                                               np.zeros(2))) or th)(thetas)
    assert np.shape(seen[0].nit) == (3,) and seen[0].success.dtype == bool


def f_all(f, thetas):
    return np.stack([f(t) for t in thetas])


@pytest.mark.filterwarnings("ignore:delta_grad == 0.0")  # SciPy's, on a linear constraint
@pytest.mark.parametrize("method", ["SLSQP", "trust-constr"])
def test_equality_constraints_kkt(method):
    # min |x - a|^2 on the unit circle: x* = a / |a|, dx*/da = (I - x* x*^T) / |a|
    circle = [{"type": "eq", "fun": lambda x: x @ x - 1.0},
              so.NonlinearConstraint(lambda x: x @ x, 1.0, 1.0)][method == "trust-constr"]
    opts = {"ftol": 1e-14} if method == "SLSQP" else {"gtol": 1e-12, "xtol": 1e-14}
    sol = lambda a: so.minimize(lambda x: np.sum((x - a) ** 2), np.array([1.0, 0.0]),
                                method=method, constraints=circle, options=opts).x
    a = np.array([0.6, 1.7])
    p = a / np.linalg.norm(a)
    np.testing.assert_allclose(sol(a), p, atol=1e-7)
    np.testing.assert_allclose(both_modes(sol, a),
                               (np.eye(2) - np.outer(p, p)) / np.linalg.norm(a), atol=1e-7)
    # a linear equality whose right-hand side is traced (through the closure of a dict)
    lin = lambda t: so.minimize(lambda x: x @ Q @ x, np.zeros(3), method=method,
                                constraints={"type": "eq", "fun": lambda x: np.sum(x) - t},
                                options=opts).x
    w = np.linalg.solve(Q, np.ones(3))
    np.testing.assert_allclose(dr.jacfwd(lin)(2.0), w / w.sum(), atol=1e-7)
    np.testing.assert_allclose(dr.grad(lambda t: lin(t)[0])(2.0), w[0] / w.sum(), atol=1e-7)


def test_equality_constrained_bilevel_hessian():
    # second derivatives through the KKT system: the projection onto the unit circle has
    # the closed form a / |a|, differentiated directly
    g = lambda x, a: np.sin(x[0]) * a[1] + x[1] ** 2

    def outer(a):
        x = so.minimize(lambda x: np.sum((x - a) ** 2), np.array([1.0, 0.0]), method="SLSQP",
                        constraints={"type": "eq", "fun": lambda x: x @ x - 1.0},
                        options={"ftol": 1e-15, "maxiter": 500}).x
        return g(x, a)

    a = np.array([0.6, 1.7])
    H = dr.hessian(outer)(a)
    np.testing.assert_allclose(H, dr.jacrev(dr.jacrev(outer))(a), atol=1e-10)
    np.testing.assert_allclose(H, dr.hessian(lambda a: g(a / np.linalg.norm(a), a))(a),
                               atol=1e-7)


def test_inequality_constraints_are_refused_by_name():
    with pytest.raises(dr.NoDerivativeRule, match=r"inequalities.*KKT"):
        dr.grad(lambda t: so.minimize(lambda x: np.sum((x - t) ** 2), np.zeros(2),
                                      constraints={"type": "ineq",
                                                   "fun": lambda x: x[0] - x[1]}).x[0])(1.0)
    with pytest.raises(dr.NoDerivativeRule, match=r"inequalities"):
        dr.grad(lambda t: so.minimize(lambda x: np.sum((x - t) ** 2), np.zeros(2),
                                      constraints=so.LinearConstraint([[1.0, 1.0]], 0.0,
                                                                      1.0)).x[0])(1.0)


# ------------------------------------------------------------------ refusals
def test_not_converged_is_refused_in_both_modes():
    f = lambda t: so.minimize(lambda x: np.sum((x - t) ** 4) + np.sum(np.cos(x)), np.zeros(2),
                              options={"maxiter": 2}).x
    for transform in (dr.jacfwd, dr.jacrev):
        with pytest.raises(dr.SolverNotConvergedError, match="Maximum number of iterations"):
            transform(f)(2.0)
    # the value alone is SciPy's (no derivative asked, nothing refused)
    np.testing.assert_array_equal(dr.vmap(f)(np.array([2.0])), f(2.0)[None])


def test_a_solution_that_is_not_one_is_refused():
    # SciPy reports success at loose tolerances, but the Newton step from its point is large
    f = lambda t: so.least_squares(lambda x: np.exp(x) - t, np.zeros(2), ftol=0.3, xtol=0.3,
                                   gtol=0.3).x
    with pytest.raises(dr.SolverNotConvergedError, match="Newton step"):
        dr.jacrev(f)(2.0)


def test_singular_optimum_is_refused():
    f = lambda t: so.minimize(lambda x: (x[0] + x[1] - t) ** 2, np.zeros(2)).x
    for transform in (dr.jacfwd, dr.jacrev):
        with pytest.raises(dr.SingularSolutionError, match="not an isolated one"):
            transform(f)(2.0)


# ------------------------------------------------------------------ roots
@pytest.mark.parametrize("solve", [
    lambda t: so.brentq(lambda x: x * x - t, 0.0, 3.0, xtol=1e-14),
    lambda t: so.brenth(lambda x, s: x * x - s, 0.0, 3.0, args=(t,), xtol=1e-14),
    lambda t: so.ridder(lambda x: x * x - t, 0.0, 3.0, xtol=1e-14),
    lambda t: so.bisect(lambda x: x * x - t, 0.0, 3.0, xtol=1e-14),
    lambda t: so.toms748(lambda x: x * x - t, 0.0, 3.0, xtol=1e-14),
    lambda t: so.newton(lambda x: x * x - t, 1.0),
    lambda t: so.root_scalar(lambda x: x * x - t, x0=1.0, method="secant", x1=2.0).root,
    lambda t: so.root_scalar(lambda x: x * x - t, bracket=(0.0, 3.0)).root,
    lambda t: dro.root_scalar(lambda x: x * x - t, x0=1.0).root,
    lambda t: so.fixed_point(lambda x: 0.5 * (x + t / x), 1.0),  # Heron's iteration
    lambda t: so.root(lambda x: x * x - t, [1.0]).x[0],
    lambda t: so.fsolve(lambda x: x * x - t, 1.0, xtol=1e-13)[0],
], ids=["brentq", "brenth-args", "ridder", "bisect", "toms748", "newton", "secant",
        "root_scalar", "dualrev-root_scalar", "fixed_point", "root", "fsolve"])
def test_scalar_root_sqrt(solve):
    # the root of x^2 - t is sqrt(t): first and second derivatives in every mode
    t = 2.0
    d1, d2 = 0.5 / np.sqrt(t), -0.25 * t ** -1.5
    np.testing.assert_allclose(dr.grad(solve)(t), d1, rtol=1e-9)
    np.testing.assert_allclose(dr.jacfwd(solve)(t), d1, rtol=1e-9)
    np.testing.assert_allclose(dr.grad(dr.grad(solve))(t), d2, rtol=1e-8)
    np.testing.assert_allclose(dr.jacfwd(dr.grad(solve))(t), d2, rtol=1e-8)
    np.testing.assert_allclose(dr.vmap(dr.grad(solve))(np.array([1.0, 4.0])), [0.5, 0.25],
                               rtol=1e-8)


@pytest.mark.parametrize("name", ["brentq", "brenth", "ridder", "bisect", "toms748"])
def test_bracketing_solvers_plain_traced_and_hidden(name):
    solver = getattr(so, name)
    # plain calls are SciPy's (the root of x^2 - 2 in [0, 2]), full_output included
    np.testing.assert_allclose(solver(lambda x: x ** 2 - 2.0, 0.0, 2.0), np.sqrt(2.0),
                               rtol=1e-10)
    root, info = solver(lambda x, s: x ** 2 - s, 0.0, 2.0, args=(2.0,), full_output=True)
    assert info.converged and np.isclose(root, np.sqrt(2.0))
    # traced: the root's derivative; with full_output the RootResults are SciPy's
    r, info = solver(lambda x: x ** 2 - 2.0, 0.0, 2.0, full_output=True)
    d = dr.grad(lambda a: solver(lambda x: x ** 2 - a, 0.0, 3.0, full_output=True)[0])(2.0)
    np.testing.assert_allclose(d, 0.5 / np.sqrt(2.0), rtol=1e-9)
    # the bracket carries no derivative (the root does not depend on it)
    np.testing.assert_allclose(dr.grad(lambda a: solver(lambda x: x ** 2 - 2.0, 0.0 * a, 3.0)
                                       + a)(2.0), 1.0)

    # a traced value held by an object in the closure is found (dualrev.closure.lift)
    class Holder:
        pass

    def held(a):
        h = Holder()
        h.a = a
        return solver(lambda x: x ** 2 - h.a, 0.0, 3.0)

    np.testing.assert_allclose(dr.grad(held)(2.0), 0.5 / np.sqrt(2.0), rtol=1e-9)

    # one read from a class attribute is not (lift copies instances, not classes): a named
    # refusal, where SciPy's C code raised SystemError
    def hidden(a):
        Holder.a = a
        try:
            return solver(lambda x: x ** 2 - Holder.a, 0.0, 3.0)
        finally:
            del Holder.a

    with pytest.raises(dr.NoDerivativeRule, match=rf"scipy\.optimize\.{name}.*args="):
        dr.grad(hidden)(2.0)


def test_root_systems_and_full_output():
    A = np.array([[2.0, 0.3], [0.1, 1.5]])
    F = lambda x, b: A @ x + 0.1 * x ** 3 - b
    b0 = np.array([0.4, -0.7])
    x = so.root(F, np.zeros(2), args=(b0,), tol=1e-14).x
    want = np.linalg.inv(A + np.diag(0.3 * x ** 2))
    np.testing.assert_allclose(both_modes(lambda b: so.root(F, np.zeros(2), args=(b,),
                                                            tol=1e-14).x, b0), want, atol=1e-10)
    fs = lambda b: so.fsolve(F, np.zeros(2), args=(b,), xtol=1e-13, full_output=True)
    np.testing.assert_allclose(both_modes(lambda b: fs(b)[0], b0), want, atol=1e-10)
    assert fs(b0)[2] == 1  # ier, SciPy's
    # root with jac=True (fun returns value and Jacobian)
    vj = lambda x, b: (F(x, b), A + np.diag(0.3 * x ** 2))
    np.testing.assert_allclose(both_modes(lambda b: so.root(vj, np.zeros(2), args=(b,),
                                                            jac=True, tol=1e-14).x, b0),
                               want, atol=1e-10)
    # newton on an array x0: elementwise roots of x^3 = t
    t = np.array([1.0, 8.0, 27.0])
    np.testing.assert_allclose(both_modes(lambda t: so.newton(lambda x: x ** 3 - t,
                                                              np.ones(3)), t),
                               np.diag(1 / (3 * np.cbrt(t) ** 2)), rtol=1e-9)


# ------------------------------------------------------------------ least squares
def test_linear_least_squares_normal_equations():
    A = RNG.normal(size=(7, 3))
    y = RNG.normal(size=7)
    sol = lambda y, A=A: so.least_squares(lambda x: A @ x - y, np.zeros(3), xtol=1e-15,
                                          ftol=1e-15, gtol=1e-15).x
    np.testing.assert_allclose(both_modes(sol, y), np.linalg.pinv(A), atol=1e-10)
    # and with respect to the matrix, closed over: d lstsq(A, y) / dA
    by_A = lambda A: so.least_squares(lambda x: A @ x - y, np.zeros(3), xtol=1e-15,
                                      ftol=1e-15, gtol=1e-15, method="lm").x
    lstsq = lambda A: np.linalg.lstsq(A, y, rcond=None)[0]
    np.testing.assert_allclose(both_modes(by_A, A), central(lstsq, A), atol=1e-8)


@pytest.mark.parametrize("loss", ["linear", "soft_l1", "huber", "cauchy", "arctan"])
def test_robust_least_squares_against_refits(loss):
    y0 = np.array([0.3, -0.2, 1.4, 0.8])
    r = lambda x, y: np.stack([x[0] - y[0], 3 * (x[1] - x[0] ** 2) - y[1],
                               x[0] + x[1] - y[2], x[0] * x[1] - y[3]])
    kw = dict(loss=loss, f_scale=0.5, xtol=1e-15, ftol=1e-15, gtol=1e-15)
    sol = lambda y: so.least_squares(r, np.ones(2), args=(y,), **kw).x
    # SciPy's cost 1/2 C^2 sum rho(r^2 / C^2) with its documented losses
    rho = {"linear": lambda z: z, "soft_l1": lambda z: 2 * (np.sqrt(1 + z) - 1),
           "huber": lambda z: np.where(z <= 1, z, 2 * np.sqrt(np.maximum(z, 1)) - 1),
           "cauchy": np.log1p, "arctan": np.arctan}[loss]
    cost = lambda x, y: 0.5 * 0.25 * np.sum(rho(r(x, y) ** 2 / 0.25))

    def refit(y):  # SciPy's ftol stops at |grad| ~ 1e-8: polished by Newton's method
        return newton_polish(lambda x: cost(x, y),
                             so.least_squares(r, np.ones(2), args=(y,), **kw).x)

    np.testing.assert_allclose(refit(y0), sol(y0), atol=1e-7)
    np.testing.assert_allclose(both_modes(sol, y0), central(refit, y0), rtol=1e-6, atol=1e-8)


def test_least_squares_bounds_use_active_mask():
    y = np.array([2.0, 0.3])
    sol = lambda y: so.least_squares(lambda x: x - y, np.full(2, 0.5),
                                     bounds=([0.0, 0.0], [1.0, 1.0]), xtol=1e-15).x
    np.testing.assert_allclose(sol(y), [1.0, 0.3], atol=1e-8)
    np.testing.assert_allclose(both_modes(sol, y), np.diag([0.0, 1.0]), atol=1e-9)


# ------------------------------------------------------------------ curve_fit
X = np.linspace(0.0, 1.0, 8)
DESIGN = np.stack([np.ones_like(X), X], axis=1)
Y = 1.0 + 2.0 * X + 0.1 * RNG.normal(size=8)


def line(x, a, b):
    return a + b * x


def test_curve_fit_ols_derivative_in_each_y():
    popt = lambda y: so.curve_fit(line, X, y)[0]
    np.testing.assert_allclose(both_modes(popt, Y), np.linalg.pinv(DESIGN), atol=1e-12)
    # pcov = (X'X)^-1 * RSS / (m - n): its derivative is (X'X)^-1 * 2 r / (m - n)
    pcov = lambda y: so.curve_fit(line, X, y)[1]
    r = Y - DESIGN @ np.linalg.lstsq(DESIGN, Y, rcond=None)[0]
    want = np.linalg.inv(DESIGN.T @ DESIGN)[:, :, None] * (2 * r / 6)[None, None, :]
    np.testing.assert_allclose(both_modes(pcov, Y), want, atol=1e-12)
    np.testing.assert_array_equal(pcov(Y), so.curve_fit(line, X, Y)[1])  # SciPy's values
    # absolute_sigma=True: pcov = (X' W X)^-1 does not depend on y
    pabs = lambda y: so.curve_fit(line, X, y, sigma=0.5 * np.ones(8), absolute_sigma=True)[1]
    np.testing.assert_allclose(both_modes(pabs, Y), 0.0, atol=1e-12)


def test_curve_fit_in_sigma_xdata_and_closure():
    sigma = 0.2 + RNG.uniform(size=8)

    def wls(x, y, s):
        W = np.diag(1 / s ** 2)
        D = np.stack([np.ones_like(x), x], axis=1)
        return np.linalg.solve(D.T @ W @ D, D.T @ W @ y)

    by_sigma = lambda s: so.curve_fit(line, X, Y, sigma=s)[0]
    np.testing.assert_allclose(both_modes(by_sigma, sigma), central(lambda s: wls(X, Y, s),
                                                                    sigma), atol=1e-8)
    by_x = lambda x: so.curve_fit(line, x, Y, sigma=sigma)[0]
    np.testing.assert_allclose(both_modes(by_x, X), central(lambda x: wls(x, Y, sigma), X),
                               atol=1e-8)
    # a model closing over a traced offset c: popt[0] = a - c moves by -1
    by_c = lambda c: so.curve_fit(lambda x, a, b: a + c + b * x, X, Y)[0]
    np.testing.assert_allclose(both_modes(by_c, 0.3), [-1.0, 0.0], atol=1e-10)
    # a covariance matrix sigma: generalized least squares
    C = np.diag(sigma ** 2) + 0.01
    gls = lambda y: so.curve_fit(line, X, y, sigma=C)[0]
    Ci = np.linalg.inv(C)
    want = np.linalg.solve(DESIGN.T @ Ci @ DESIGN, DESIGN.T @ Ci)
    np.testing.assert_allclose(both_modes(gls, Y), want, atol=1e-10)


def test_nonlinear_curve_fit_against_refits_and_vmap():
    x = np.linspace(0.0, 3.0, 12)
    y = 2.0 * np.exp(-0.7 * x) + 0.05 * np.cos(5.0 * x)
    model = lambda x, a, b: a * np.exp(-b * x)
    popt = lambda y: so.curve_fit(model, x, y, p0=[1.0, 1.0], xtol=1e-15, ftol=1e-15)[0]
    refit = lambda y: newton_polish(lambda p: 0.5 * np.sum((model(x, *p) - y) ** 2),
                                    popt(y))
    J = both_modes(popt, y)
    np.testing.assert_allclose(J, central(refit, y), rtol=1e-6, atol=1e-8)
    ys = np.stack([y, y + 0.01 * np.sin(x)])
    np.testing.assert_allclose(dr.vmap(dr.jacrev(popt))(ys),
                               np.stack([dr.jacfwd(popt)(v) for v in ys]), atol=1e-12)


def test_plain_calls_are_scipys():
    res = so.minimize(lambda x: np.sum((x - 1.0) ** 2), np.zeros(2))
    assert res.success and type(res) is so.OptimizeResult
    # the dispatcher hands plain calls to SciPy's own function: the same iterates
    np.testing.assert_array_equal(
        res.x, so.minimize.__wrapped__(lambda x: np.sum((x - 1.0) ** 2), np.zeros(2)).x)


def test_starting_point_carries_no_derivative():
    # a warm start from a traced value: the solution does not depend on it
    f = lambda x0: so.minimize(lambda x: np.sum((x - 1.0) ** 2), x0).x
    np.testing.assert_allclose(both_modes(f, np.array([0.2, -0.4])), 0.0, atol=1e-12)
    np.testing.assert_allclose(dr.vmap(f)(np.zeros((2, 2))), np.ones((2, 2)), atol=1e-6)


def test_front_ends_are_off_only_in_the_solving_thread():
    # inside a plain solve (this thread's front ends off), a traced solve in another
    # thread is still differentiated
    import threading

    out = {}

    def other():
        out["d"] = dr.grad(lambda t: so.brentq(lambda x: x * x - t, 0.0, 3.0))(2.0)

    def callback(*_):
        if "d" not in out:
            th = threading.Thread(target=other)
            th.start()
            th.join()

    d = dr.grad(lambda t: so.minimize(lambda x: (x[0] - t) ** 2, np.zeros(1),
                                      callback=callback).x[0])(3.0)
    np.testing.assert_allclose(d, 1.0, rtol=1e-6)
    np.testing.assert_allclose(out["d"], 0.5 / np.sqrt(2.0), rtol=1e-9)


def test_vmap_of_brackets_and_starts_is_per_element():
    # each element its own bracket / starting point (the roots of x^2 = t in [lo, lo + 3])
    los = np.array([0.0, -3.0])
    ts = np.array([2.0, 2.0])
    f = lambda lo, t: so.brentq(lambda x: x * x - t, lo, lo + 3.0)
    np.testing.assert_allclose(dr.vmap(f)(los, ts), [np.sqrt(2.0), -np.sqrt(2.0)])
    np.testing.assert_allclose(dr.vmap(dr.grad(f, argnums=1))(los, ts),
                               [0.5 / np.sqrt(2.0), -0.5 / np.sqrt(2.0)])
    g = lambda x0, t: so.root_scalar(lambda x: x * x - t, x0=x0, method="newton").root
    np.testing.assert_allclose(dr.vmap(g)(np.array([1.0, -1.0]), ts),
                               [np.sqrt(2.0), -np.sqrt(2.0)])
    h = lambda lo, t: so.root_scalar(lambda x: x * x - t, bracket=(lo, lo + 3.0)).root
    np.testing.assert_allclose(dr.vmap(dr.grad(h, argnums=1))(los, ts),
                               [0.5 / np.sqrt(2.0), -0.5 / np.sqrt(2.0)])


def test_curve_fit_list_data():
    # lists, as SciPy takes them: made arrays (with traced entries stacked)
    xs, ys = list(X), list(Y)
    popt = lambda y0: so.curve_fit(line, xs, [y0] + ys[1:])[0]
    np.testing.assert_allclose(both_modes(popt, Y[0]), np.linalg.pinv(DESIGN)[:, 0],
                               atol=1e-12)


def test_root_results_under_vmap():
    seen = []

    def f(t):
        r = so.root_scalar(lambda x: x * x - t, bracket=(0.0, 3.0))
        seen.append(r)
        return r.root

    np.testing.assert_allclose(dr.vmap(f)(np.array([1.0, 4.0])), [1.0, 2.0])
    assert seen[0].converged.tolist() == [True, True] and np.shape(seen[0].iterations) == (2,)


@pytest.mark.filterwarnings("ignore:delta_grad == 0.0")
def test_interior_point_off_the_bound_is_refused_with_the_reason():
    # trust-constr's default barrier tolerance leaves x 2e-5 inside the active bound: that
    # component is free for dualrev, its gradient is not zero, and the Newton step says so
    sol = lambda th: so.minimize(lambda x: np.sum((x - th) ** 2), np.full(2, 0.5),
                                 method="trust-constr", bounds=[(0, 1), (0, 1)]).x
    with pytest.raises(dr.SolverNotConvergedError, match="barrier_tol"):
        dr.jacfwd(sol)(np.array([1.7, 0.3]))
    tight = lambda th: so.minimize(lambda x: np.sum((x - th) ** 2), np.full(2, 0.5),
                                   method="trust-constr", bounds=[(0, 1), (0, 1)],
                                   options={"gtol": 1e-12, "xtol": 1e-14}).x
    np.testing.assert_allclose(both_modes(tight, np.array([1.7, 0.3])), np.diag([0.0, 1.0]),
                               atol=1e-6)


@pytest.mark.parametrize("kw", [{"method": "brent", "tol": 1e-12},
                                {"method": "golden", "tol": 1e-12},
                                {"method": "bounded", "bounds": (0.0, 5.0),
                                 "options": {"xatol": 1e-12}}], ids=["brent", "golden",
                                                                     "bounded"])
def test_minimize_scalar(kw):
    # argmin (x - t)^2 + x^4 / 4: x + x^3 / 2... stationarity 2 (x - t) + x^3 = 0, so
    # dx/dt = 2 / (2 + 3 x^2); res.fun's derivative is df/dt = -2 (x - t)
    res_of = lambda t: so.minimize_scalar(lambda x: (x - t) ** 2 + 0.25 * x ** 4, **kw)
    x = res_of(1.3).x
    np.testing.assert_allclose(dr.grad(lambda t: res_of(t).x)(1.3), 2 / (2 + 3 * x ** 2),
                               rtol=1e-6)
    np.testing.assert_allclose(dr.jacfwd(lambda t: res_of(t).x)(1.3), 2 / (2 + 3 * x ** 2),
                               rtol=1e-6)
    np.testing.assert_allclose(dr.grad(lambda t: res_of(t).fun)(1.3), -2 * (x - 1.3),
                               rtol=1e-6)
    np.testing.assert_allclose(
        dr.grad(lambda t: dro.minimize_scalar(lambda x: (x - t) ** 2 + 0.25 * x ** 4,
                                              **kw).x)(1.3), 2 / (2 + 3 * x ** 2), rtol=1e-6)


def test_solvers_chained_and_nested():
    # y*(t) = sqrt(t) by brentq, then z*(y) = argmin (z - y)^2 + z^4 / 4:
    # dz/dt = 2 / (2 + 3 z^2) * 1 / (2 sqrt(t)); also with brentq inside the objective
    def chained(t):
        y = so.brentq(lambda x: x * x - t, 0.0, 3.0, xtol=1e-14)
        return so.minimize(lambda z: (z[0] - y) ** 2 + 0.25 * z[0] ** 4, np.zeros(1),
                           options={"gtol": 1e-12}).x[0]

    def nested(t):
        inner = lambda z: so.brentq(lambda x: x * x - t + 0 * z, 0.0, 3.0, xtol=1e-14)
        return so.minimize(lambda z: (z[0] - inner(z[0])) ** 2 + 0.25 * z[0] ** 4,
                           np.zeros(1), options={"gtol": 1e-12}).x[0]

    z = chained(2.0)
    want = 2 / (2 + 3 * z ** 2) * 0.5 / np.sqrt(2.0)
    for f in (chained, nested):
        np.testing.assert_allclose(dr.grad(f)(2.0), want, rtol=1e-8)
        np.testing.assert_allclose(dr.jacfwd(f)(2.0), want, rtol=1e-8)


def test_equality_constrained_tangent_against_the_kkt_system_solved_by_newton():
    # min 1/2|x - t|^2 + 1/4 sum x^4 + x0 x2 / 10 subject to sum(x) = 1: SLSQP's point is
    # good to ~1e-8, so the reference is the KKT system solved to rounding by Newton's
    # method (differences of SLSQP re-solves are good to ~1e-5 only)
    def f(x, t):
        return 0.5 * np.sum((x - t) ** 2) + 0.25 * np.sum(x ** 4) + 0.1 * x[0] * x[2]

    def kkt(t):
        x, lam = np.full(3, 1 / 3), 0.0
        for _ in range(50):
            g = x - t + x ** 3 + 0.1 * np.array([x[2], 0.0, x[0]]) + lam
            H = np.eye(3) + np.diag(3 * x ** 2)
            H[0, 2] = H[2, 0] = 0.1
            K = np.block([[H, np.ones((3, 1))], [np.ones((1, 3)), np.zeros((1, 1))]])
            d = np.linalg.solve(K, -np.append(g, x.sum() - 1.0))
            x, lam = x + d[:3], lam + d[3]
        return x

    def solved(t):
        return so.minimize(f, np.zeros(3), args=(t,), method="SLSQP", options={"ftol": 1e-15},
                           constraints=[{"type": "eq", "fun": lambda x: np.sum(x) - 1.0}]).x

    rng = np.random.default_rng(7)
    for _ in range(3):
        t, v = rng.normal(size=3), rng.normal(size=3)
        _, tangent = dr.jvp(solved, (t,), (v,))
        h = 1e-6
        want = (kkt(t + h * v) - kkt(t - h * v)) / (2 * h)
        np.testing.assert_allclose(tangent, want, atol=1e-8)
        np.testing.assert_allclose(dr.jacrev(solved)(t) @ v, want, atol=1e-8)
