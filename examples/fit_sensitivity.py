"""How much does each data point move a fitted model's parameters? The sensitivity
d popt / d y_i of scipy.optimize.curve_fit's parameters to every data point, by
dualrev.jacobian through the ordinary SciPy call (implicit differentiation at the fitted
optimum), checked against refitting with each y_i perturbed, and the same for the
parameters' standard errors (the square roots of pcov's diagonal)."""

import numpy as np
import scipy.optimize as so

import dualrev as dr

rng = np.random.default_rng(7)
t = np.linspace(0.0, 4.0, 15)
y = 2.5 * np.exp(-1.3 * t) + 0.5 + 0.05 * rng.standard_normal(t.size)
P0 = [1.0, 1.0, 0.0]
NAMES = ("a", "b", "c")


def model(t, a, b, c):
    return a * np.exp(-b * t) + c


def fit(y):
    popt, pcov = so.curve_fit(model, t, y, p0=P0, xtol=1e-15, ftol=1e-15)
    return popt, np.sqrt(np.diag(pcov))


def refit(y):
    """The fit, polished to rounding by Newton's method on the normal equations: SciPy's
    stopping test leaves ~1e-9 in popt, too much for differences of refits."""
    popt, _ = fit(y)
    cost = lambda p: 0.5 * np.sum((model(t, *p) - y) ** 2)  # noqa: E731
    for _ in range(3):
        popt = popt - np.linalg.solve(dr.hessian(cost)(popt), dr.grad(cost)(popt))
    return popt


def main() -> float:
    popt, stderr = fit(y)
    print("fit a, b, c =", np.round(popt, 4), "+/-", np.round(stderr, 4),
          "(true 2.5, 1.3, 0.5)")
    # one call: the 3 x 15 Jacobian of the parameters with respect to the data
    J = dr.jacobian(lambda y: fit(y)[0])(y)
    S = dr.jacobian(lambda y: fit(y)[1])(y)
    h = 1e-6
    J_refit = np.stack([(refit(y + h * e) - refit(y - h * e)) / (2 * h)
                        for e in np.eye(t.size)], axis=1)
    print(" i     t      y   " + "  ".join(f"d{n}/dy_i dualrev  refit     " for n in NAMES))
    for i in range(t.size):
        cells = "  ".join(f"{J[k, i]:+.6f} {J_refit[k, i]:+.6f}  " for k in range(3))
        print(f"{i:2d} {t[i]:5.2f} {y[i]:6.3f}  {cells}")
    worst = float(np.max(np.abs(J - J_refit)))
    print(f"largest difference dualrev vs refitting: {worst:.1e}")
    assert worst < 1e-6, worst
    # the standard errors: curve_fit's own formula at the traced optimum, against refits
    # whose pcov uses the exact Jacobian (SciPy's differences would dominate the check)
    exact = lambda y: np.sqrt(np.diag(dr.optimize.curve_fit(  # noqa: E731
        model, t, y, p0=refit(y), xtol=1e-15, ftol=1e-15)[1]))
    S_refit = np.stack([(exact(y + h * e) - exact(y - h * e)) / (2 * h)
                        for e in np.eye(t.size)], axis=1)
    serr = float(np.max(np.abs(S - S_refit)))
    print(f"d stderr / dy: largest difference dualrev vs refitting: {serr:.1e}")
    assert serr < 1e-6, serr
    for k, n in enumerate(NAMES):
        i = int(np.argmax(np.abs(J[k])))
        print(f"{n} is most sensitive to y_{i} (t = {t[i]:.2f}): {J[k, i]:+.3f} per unit")
    return worst


if __name__ == "__main__":
    main()
