"""Rosenbrock in 100 dimensions with scipy.optimize, exact derivatives from dualrev
against SciPy's finite-difference default. Prints iterations and function evaluations."""

import numpy as np
import scipy.optimize as so

import dualrev as dr


def rosen(x):
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


class Counted:
    """Counts every evaluation of f, finite-difference ones included."""

    def __init__(self, f):
        self.f, self.calls = f, 0

    def __call__(self, x, *args):
        self.calls += 1
        return self.f(x, *args)


def main() -> dict:
    x0 = np.full(100, 0.5)
    rows = {}
    for method in ("BFGS", "Newton-CG", "trust-constr"):
        f_dr, f_fd = Counted(rosen), Counted(rosen)
        opts = {"xtol": 1e-10} if method == "Newton-CG" else None
        ours = dr.optimize.minimize(f_dr, x0, method=method, options=opts)
        if method == "Newton-CG":  # SciPy requires a gradient callable here
            ref = so.minimize(f_fd, x0, method=method, options=opts,
                              jac=lambda x, f=f_fd: so.approx_fprime(x, f))
        else:
            ref = so.minimize(f_fd, x0, method=method)
        rows[method] = (f_dr.calls, f_fd.calls)
        print(f"{method:13s} dualrev: {ours.nit:4d} iterations, {f_dr.calls:5d} evaluations, "
              f"max|x-1| = {np.max(np.abs(ours.x - 1)):.1e} | finite differences: "
              f"{ref.nit:4d} iterations, {f_fd.calls:6d} evaluations")
    return rows


if __name__ == "__main__":
    main()
