"""What ``dualrev.linearize`` saves: k calls of its ``f_jvp`` against k calls of
``dualrev.jvp`` at the same point, on workloads where ``f`` is expensive.

    python benchmarks/linearize.py [--repeat 3] [--k 20]

Workloads: a 200-step RK4 of a 2-state ODE (scalar operations, ~22 600 recorded), a
200-step RK4 of a 400-point reaction-diffusion PDE (array operations), a model built on
a 150 x 150 ``scipy.linalg.expm``, and the solution of ``scipy.optimize.root``. Per
workload and repeat, in one process: the time of
``linearize`` itself, of k ``f_jvp`` calls and of k ``jvp`` calls (k random directions,
the same for both), and their ratio; each result is checked against ``jvp`` first.
Timings on a shared machine are noisy: compare the ratios, repeated. BLAS threads are
pinned to one.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.linalg as sl  # noqa: E402
import scipy.optimize as so  # noqa: E402

import dualrev as dr  # noqa: E402


def _rhs(y: Any, p: Any) -> Any:
    return np.array([p[0] * y[0] - p[1] * y[0] * y[1],
                     -p[2] * y[1] + p[3] * y[0] * y[1]]) + 0.01 * np.sin(y)


def rk4_ode(p: Any, n: int = 200, h: float = 0.01) -> Any:
    y = np.array([1.0, 0.5])
    for _ in range(n):
        k1 = _rhs(y, p)
        k2 = _rhs(y + h / 2 * k1, p)
        k3 = _rhs(y + h / 2 * k2, p)
        k4 = _rhs(y + h * k3, p)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


def _heat(u: Any, p: Any) -> Any:
    lap = np.concatenate([[0.0], u[2:] - 2 * u[1:-1] + u[:-2], [0.0]])
    return p[0] * lap + p[1] * np.tanh(u) * np.exp(-u ** 2)


def rk4_pde(p: Any, n: int = 200, h: float = 0.1) -> Any:
    u = np.sin(np.linspace(0, np.pi, 400)) * p[2]
    for _ in range(n):
        k1 = _heat(u, p)
        k2 = _heat(u + h / 2 * k1, p)
        k3 = _heat(u + h / 2 * k2, p)
        k4 = _heat(u + h * k3, p)
        u = u + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return u


def root_model(p: Any) -> Any:
    """The solution of a 30-equation nonlinear system (scipy.optimize.root, implicit
    derivatives): jvp solves it again per direction, f_jvp only the linear system."""
    sol = so.root(lambda x, p: x ** 3 + p * x - np.cos(x) + 0.1 * np.roll(x, 1),
                  np.zeros(30), args=(p,), tol=1e-12)
    return sol.x


def expm_model(x: Any) -> Any:
    return sl.expm(np.outer(x, x) * 0.01 + np.diag(np.sin(x))) @ np.tanh(x)


WORKLOADS: list[tuple[str, Callable[[Any], Any], np.ndarray]] = [
    ("RK4 ODE, 200 steps", rk4_ode, np.array([1.0, 0.5, 0.7, 0.3])),
    ("RK4 PDE n=400, 200 steps", rk4_pde, np.array([0.2, 0.5, 1.0])),
    ("expm 150x150", expm_model, np.linspace(0.1, 1.0, 150)),
    ("optimize.root, 30 unknowns", root_model, np.linspace(1.0, 2.0, 30)),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--k", type=int, default=20)
    a = ap.parse_args()
    print(f"{'workload':28} {'linearize':>10} {'k f_jvp':>9} {'k jvp':>9} {'jvp / f_jvp':>11}")
    for name, f, x in WORKLOADS:
        rng = np.random.default_rng(0)
        vs = [rng.standard_normal(x.shape) for _ in range(a.k)]
        _, f_jvp = dr.linearize(f, x)
        for v in vs[:2]:
            np.testing.assert_allclose(f_jvp(v), dr.jvp(f, (x,), (v,))[1], rtol=1e-11)
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            _, f_jvp = dr.linearize(f, x)
            t1 = time.perf_counter()
            for v in vs:
                f_jvp(v)
            t2 = time.perf_counter()
            for v in vs:
                dr.jvp(f, (x,), (v,))
            t3 = time.perf_counter()
            print(f"{name:28} {1e3 * (t1 - t0):8.1f}ms {t2 - t1:8.2f}s {t3 - t2:8.2f}s "
                  f"{(t3 - t2) / (t2 - t1):10.2f}x")


if __name__ == "__main__":
    main()
