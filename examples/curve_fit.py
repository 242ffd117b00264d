"""Fit y = a exp(-b t) + c with scipy.optimize.least_squares and with curve_fit, using
dualrev's exact Jacobian (of the residuals, of the model in its parameters) instead of
finite differences; curve_fit also gives the parameters' standard errors."""

import numpy as np
import scipy.optimize as so

import dualrev as dr

rng = np.random.default_rng(0)
t = np.linspace(0, 4, 60)
y = 2.5 * np.exp(-1.3 * t) + 0.5 + 0.02 * rng.standard_normal(t.size)


def residuals(p):
    a, b, c = p[0], p[1], p[2]
    return a * np.exp(-b * t) + c - y


def model(t, a, b, c):
    return a * np.exp(-b * t) + c


def main() -> tuple[int, int]:
    calls = {"dualrev": 0, "fd": 0}

    def counted(key):
        def f(p):
            calls[key] += 1
            return residuals(p)
        return f

    p0 = np.array([1.0, 1.0, 0.0])
    ours = dr.optimize.least_squares(counted("dualrev"), p0)
    ref = so.least_squares(counted("fd"), p0)
    print("fit a, b, c =", np.round(ours.x, 4), "(true 2.5, 1.3, 0.5)")
    print(f"dualrev: {calls['dualrev']} residual evaluations (Jacobians exact); "
          f"finite differences: {calls['fd']} evaluations for the same fit "
          f"({np.max(np.abs(ours.x - ref.x)):.1e} apart)")

    counts = {"dualrev": 0, "fd": 0}

    def counted_model(key):
        def f(t, a, b, c):
            counts[key] += 1
            return model(t, a, b, c)
        return f

    popt, pcov = dr.optimize.curve_fit(counted_model("dualrev"), t, y, p0=p0)
    popt_fd, _ = so.curve_fit(counted_model("fd"), t, y, p0=p0)
    print("curve_fit a, b, c =", np.round(popt, 4), "+-", np.round(np.sqrt(np.diag(pcov)), 4))
    print(f"curve_fit: dualrev {counts['dualrev']} model evaluations (Jacobians exact); "
          f"finite differences: {counts['fd']} ({np.max(np.abs(popt - popt_fd)):.1e} apart)")
    return calls["dualrev"], calls["fd"]


if __name__ == "__main__":
    main()
