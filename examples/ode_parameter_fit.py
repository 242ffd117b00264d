"""Fit the four rates and the initial populations of a Lotka–Volterra model to noisy
observations, with dualrev.optimize.least_squares: each residual is a solve of the ODE by
scipy.integrate.solve_ivp, and its exact Jacobian comes from the ODE's sensitivities
(the variational equations, integrated by SciPy alongside the state)."""

import time

import numpy as np
import scipy.integrate as si
import scipy.optimize as so

import dualrev as dr

T_OBS = np.linspace(0.0, 10.0, 25)
TRUE = np.array([1.0, 0.5, 0.5, 1.0, 2.0, 1.0])  # a, b, c, d, prey(0), predators(0)
TOL = dict(rtol=1e-6, atol=1e-8)


def lotka_volterra(t, y, theta):
    a, b, c, d = theta[0], theta[1], theta[2], theta[3]
    prey, pred = y[0], y[1]
    return np.stack([a * prey - b * prey * pred, c * prey * pred - d * pred])


def simulate(p):
    """The populations at the observation times, shape (2, 25); p = rates, y0."""
    return si.solve_ivp(lotka_volterra, (0.0, T_OBS[-1]), p[4:], t_eval=T_OBS,
                        args=(p[:4],), **TOL).y


rng = np.random.default_rng(0)
DATA = simulate(TRUE) + 0.05 * rng.standard_normal((2, T_OBS.size))


def residuals(p):
    return np.ravel(simulate(p) - DATA)


def main() -> None:
    p0 = np.array([0.8, 0.4, 0.6, 0.8, 1.5, 1.2])
    start = time.perf_counter()
    ours = dr.optimize.least_squares(residuals, p0)
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    fd = so.least_squares(residuals, p0)  # SciPy's finite differences, for comparison
    t_fd = time.perf_counter() - start
    print("fitted:", np.round(ours.x, 3))
    print("true:  ", TRUE)
    print(f"cost {ours.cost:.4f}; dualrev: {ours.njev} exact Jacobians, {ours.nfev} "
          f"residual evaluations, {t_ours:.2f} s; finite differences: cost {fd.cost:.4f}, "
          f"{fd.nfev} evaluations + {fd.njev} Jacobians, {t_fd:.2f} s")
    # standard errors from the exact Jacobian at the fit: cov = s^2 (J^T J)^-1
    J = ours.jac
    s2 = 2 * ours.cost / (J.shape[0] - J.shape[1])
    se = np.sqrt(np.diag(np.linalg.inv(J.T @ J)) * s2)
    print("standard errors:", np.round(se, 3), "| (fitted - true) / se:",
          np.round((ours.x - TRUE) / se, 1))
    # two independent derivations: the variational equations and the adjoint
    err = np.max(np.abs(dr.jacfwd(residuals)(ours.x) - dr.jacrev(residuals)(ours.x)))
    print(f"forward (variational) and reverse (adjoint) Jacobians agree to {err:.1e}")


if __name__ == "__main__":
    main()
