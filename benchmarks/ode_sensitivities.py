"""Jacobians of an ODE solution: dualrev's sensitivities against finite differences.

    python benchmarks/ode_sensitivities.py [--repeat 3] [--rtol 1e-6 1e-10]

The problem is Lotka-Volterra with its four rates and two initial values as the six
parameters, observed at 25 times (50 outputs), solved by ``scipy.integrate.solve_ivp``
(RK45). For each tolerance the table gives the best wall time over ``--repeat`` runs of:
one plain solve (the unit of the ratio column), ``dr.jacfwd`` (variational equations),
``dr.jacrev`` (adjoint), ``dr.jacobian`` (dualrev's choice of mode), and SciPy's
finite differences (``scipy.optimize.approx_fprime``, 2-point, and a central difference
written out); the calls of the right-hand side each makes (traced calls included); and
the largest difference from a reference Jacobian computed by jacfwd at rtol 1e-12. BLAS
threads are pinned to one before NumPy is imported, and recorded.

Measured 2026-12-02 (python 3.11.7, numpy 2.4.6, scipy 1.17.1, 2 shared cores of an Intel
Xeon, threads 1, best of 2; times are noisy, the calls and errors are not):

| rtol | method | seconds | ratio to one solve | rhs calls | max abs error |
|---|---|---|---|---|---|
| 1e-06 | plain solve | 0.0038 | 1.0 | 266 | - |
| 1e-06 | dr.jacfwd | 0.1625 | 42.8 | 646 | 7.6e-06 |
| 1e-06 | dr.jacrev | 0.6278 | 165.2 | 971 | 1.4e-05 |
| 1e-06 | dr.jacobian | 0.1553 | 40.9 | 646 | 7.6e-06 |
| 1e-06 | FD 2-point (approx_fprime) | 0.0273 | 7.2 | 1862 | 2.0e-04 |
| 1e-06 | FD central | 0.0432 | 11.4 | 3192 | 2.0e-04 |
| 1e-10 | plain solve | 0.0168 | 1.0 | 1406 | - |
| 1e-10 | dr.jacfwd | 1.0894 | 64.8 | 3802 | 7.9e-10 |
| 1e-10 | dr.jacrev | 1.7050 | 101.4 | 4259 | 2.6e-09 |
| 1e-10 | dr.jacobian | 0.9549 | 56.8 | 3802 | 7.9e-10 |
| 1e-10 | FD 2-point (approx_fprime) | 0.1277 | 7.6 | 9842 | 6.8e-07 |
| 1e-10 | FD central | 0.2773 | 16.5 | 16872 | 2.2e-07 |

The exact Jacobians are accurate to the solver's tolerance (finite differences lose 2-3
digits more) and make 2-4x fewer right-hand-side calls, but each traced call costs
100-400 us of tracing against about 4 us for a plain one, so in wall time they are 4-20x
slower than finite differences on a problem this small: the per-call overhead of the
traced right-hand side is what to cut next.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BLAS_THREADS = os.environ.setdefault("OMP_NUM_THREADS", "1")
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, BLAS_THREADS)

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.integrate as si  # noqa: E402
import scipy.optimize as so  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import dualrev as dr  # noqa: E402

TIMES = np.linspace(0.5, 10.0, 25)
P0 = np.array([1.0, 0.5, 0.5, 1.0, 2.0, 1.0])  # rates a, b, c, d; initial x, y
CALLS = [0]


def lotka_volterra(t: float, z: Any, a: Any, b: Any, c: Any, d: Any) -> Any:
    CALLS[0] += 1
    x, y = z[0], z[1]
    return np.stack([a * x - b * x * y, c * x * y - d * y])


def observe(p: Any, rtol: float) -> Any:
    """The 50 observed values for parameters ``p``."""
    sol = si.solve_ivp(lotka_volterra, (0.0, TIMES[-1]), p[4:], t_eval=TIMES,
                       args=(p[0], p[1], p[2], p[3]), rtol=rtol, atol=rtol * 1e-2)
    return np.ravel(sol.y)


def central(f: Callable[[np.ndarray], np.ndarray], p: np.ndarray) -> np.ndarray:
    h = 1e-6 * np.maximum(1.0, np.abs(p))
    cols = [(f(p + h[i] * e) - f(p - h[i] * e)) / (2 * h[i]) for i, e in enumerate(np.eye(p.size))]
    return np.stack(cols, axis=1)


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any, int]:
    """(best seconds, result, right-hand-side calls of one run)."""
    times, out = [], None
    for _ in range(repeat):
        CALLS[0] = 0
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out, CALLS[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rtol", type=float, nargs="+", default=[1e-6, 1e-10])
    args = ap.parse_args()
    print(f"python {platform.python_version()}, numpy {np.__version__}, scipy "
          f"{scipy.__version__}, {platform.machine()}, OMP/OPENBLAS threads {BLAS_THREADS}, "
          f"best of {args.repeat}")
    reference = dr.jacfwd(lambda p: observe(p, 1e-12))(P0)
    print("| rtol | method | seconds | ratio to one solve | rhs calls | max abs error |")
    print("|---|---|---|---|---|---|")
    for rtol in args.rtol:
        f = lambda p, rtol=rtol: observe(p, rtol)  # noqa: E731
        runs = {
            "plain solve": lambda: f(P0),
            "dr.jacfwd": lambda: dr.jacfwd(f)(P0),
            "dr.jacrev": lambda: dr.jacrev(f)(P0),
            "dr.jacobian": lambda: dr.jacobian(f)(P0),
            "FD 2-point (approx_fprime)": lambda: so.approx_fprime(P0, f),
            "FD central": lambda: central(f, P0),
        }
        unit = None
        for name, fn in runs.items():
            seconds, out, calls = best(fn, args.repeat)
            unit = unit or seconds
            err = "-" if name == "plain solve" else f"{np.max(np.abs(out - reference)):.1e}"
            print(f"| {rtol:g} | {name} | {seconds:.4f} | {seconds / unit:.1f} | {calls} | "
                  f"{err} |")


if __name__ == "__main__":
    main()
