"""What implicit differentiation of scipy.optimize's solvers costs.

    python benchmarks/implicit.py [--repeat 5]

(1) Plain calls through the dispatchers dualrev installs on scipy.optimize against
SciPy's own functions (``so.minimize.__wrapped__``): the dispatcher scans the arguments
and the closure for traced values, and the bracketing solvers check each function value
(SciPy's C code would turn a traced one into SystemError). (2) The sensitivity of a
curve_fit's parameters to each of m data points, ``dualrev.jacobian`` through the
ordinary call (one fit, one Hessian, one solve), against central differences of refits
(2 m fits). Best of ``--repeat`` runs of many calls, BLAS pinned to one thread.

Measured 2026-12-06 (python 3.11.7, numpy 2.4.6, scipy 1.17.1, 2 cores shared with six
other sessions: absolute times moved by 2-3x between runs, minimize's ratio between 0.8
and 1.2, i.e. within the noise; this run was a quiet one):

| call | through dualrev's dispatcher | SciPy's own | ratio |
|---|---|---|---|
| minimize (BFGS, n=2), plain | 321.6 us | 410.8 us | 0.78 |
| brentq, plain | 14.7 us | 10.0 us | 1.47 |

| d popt / d y (3 x 40) | seconds | in fits |
|---|---|---|
| one curve_fit | 1.48e-04 | 1 |
| dualrev.jacobian through curve_fit | 1.83e-03 | 12.3 |
| central differences of refits | 1.50e-02 | 101.3 |

brentq pays a Python check of each of its ~10 function values besides the argument scan:
SciPy's C root finders turn a traced value they meet (one read from a global or an object,
where dualrev does not look) into SystemError, or leave the error pending so that the next
Python operation fails with an unrelated TypeError; the catalogue's dispatcher before this
one paid the same check.
"""

from __future__ import annotations

import argparse
import os
import timeit

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.optimize as so  # noqa: E402

import dualrev as dr  # noqa: E402


def best(fn, repeat: int, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    rows = []
    fun = lambda x: np.sum((x - 1.0) ** 2)  # noqa: E731
    x0 = np.zeros(2)
    for _ in range(20):  # warm up both (first calls pay SciPy's and NumPy's caches)
        so.minimize(fun, x0), so.minimize.__wrapped__(fun, x0)
    rows.append(("minimize (BFGS, n=2), plain", best(lambda: so.minimize(fun, x0), repeat, 50),
                 best(lambda: so.minimize.__wrapped__(fun, x0), repeat, 50)))
    f = lambda x: x * x - 2.0  # noqa: E731
    rows.append(("brentq, plain", best(lambda: so.brentq(f, 0.0, 3.0), repeat, 500),
                 best(lambda: so.brentq.__wrapped__(f, 0.0, 3.0), repeat, 500)))
    print("| call | through dualrev's dispatcher | SciPy's own | ratio |")
    print("|---|---|---|---|")
    for name, ours, scipy in rows:
        print(f"| {name} | {ours * 1e6:.1f} us | {scipy * 1e6:.1f} us | {ours / scipy:.2f} |")

    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 4.0, 40)
    y = 2.5 * np.exp(-1.3 * t) + 0.5 + 0.05 * rng.standard_normal(t.size)
    model = lambda t, a, b, c: a * np.exp(-b * t) + c  # noqa: E731
    popt = lambda y: so.curve_fit(model, t, y, p0=[1.0, 1.0, 0.0])[0]  # noqa: E731
    h = 1e-6

    def refits() -> np.ndarray:
        return np.stack([(popt(y + h * e) - popt(y - h * e)) / (2 * h)
                         for e in np.eye(t.size)], axis=1)

    fit = best(lambda: popt(y), repeat, 5)
    jac = best(lambda: dr.jacobian(popt)(y), repeat, 5)
    fd = best(refits, max(1, repeat // 2), 1)
    print()
    print(f"| d popt / d y (3 x {t.size}) | seconds | in fits |")
    print("|---|---|---|")
    print(f"| one curve_fit | {fit:.2e} | 1 |")
    print(f"| dualrev.jacobian through curve_fit | {jac:.2e} | {jac / fit:.1f} |")
    print(f"| central differences of refits | {fd:.2e} | {fd / fit:.1f} |")


if __name__ == "__main__":
    main()
