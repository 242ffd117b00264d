"""dualrev.optimize with sparse exact Hessians against its default Hessian-vector
products, and trust-constr with sparse constraint derivatives against dense ones.

    OPENBLAS_NUM_THREADS=1 python benchmarks/sparse_newton.py [--repeat 2] [--large]

Rows, each run in this process one after the other (best wall time of ``--repeat``):

* chained Rosenbrock (3 colours; Newton steps need few CG products) and a 2-D
  Laplacian energy with a nonlinear term, ``0.5 |grad u|^2 + h^2 sum(u^4/4 + e^u - 10u)``
  on an N x N grid (5-point stencil; CG needs many products per step), by
  ``newton-cg`` and ``trust-krylov``: ``hess=None`` (one forward-over-reverse HVP per
  Krylov product, replayed) against ``hess="sparse"`` (one batched pass per iterate,
  then sparse matrix products);
* a discretised optimal-control problem (states and controls, N + 1 equality
  constraints) by ``trust-constr``: a dense exact constraint Jacobian (given as
  ``jac=dr.jacobian(c)``), the default (above 10^5 entries the sparse Jacobian,
  unasked; HVP operators) and ``hess="sparse"`` (sparse objective Hessian, sparse
  constraint Jacobian and Hessian).

Pin BLAS to one thread: on a loaded machine OpenBLAS's threads make every small
``np.dot`` of SciPy's CG loop cost milliseconds, which swamps what is measured here.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize as so

import dualrev as dr


def chained_rosen(x: Any) -> Any:
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def laplace_energy(N: int) -> Callable[[Any], Any]:
    h = 1.0 / (N + 1)

    def energy(u: Any) -> Any:
        P = np.pad(np.reshape(u, (N, N)), 1)
        dx = P[1:, 1:-1] - P[:-1, 1:-1]
        dy = P[1:-1, 1:] - P[1:-1, :-1]
        U = P[1:-1, 1:-1]
        return (0.5 * np.sum(dx ** 2) + 0.5 * np.sum(dy ** 2)
                + h * h * np.sum(0.25 * U ** 4 + np.exp(U) - 10.0 * U))

    return energy


def control(N: int) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    h = 1.0 / N

    def c(z: Any) -> Any:
        x, u = z[:N + 1], z[N + 1:]
        return np.concatenate([x[:1] - 1.0, x[1:] - x[:-1] - h * (u - x[:-1] ** 3)])

    def cost(z: Any) -> Any:
        x, u = z[:N + 1], z[N + 1:]
        return np.sum((x - 0.5) ** 2) / N + 0.1 * np.sum(u ** 2) / N

    return cost, c


def best(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, res = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        res = run()
        times.append(time.perf_counter() - t)
    return min(times), res


def unconstrained(repeat: int, large: bool) -> None:
    print("| problem | n | method | Hessian | nit | H products | sparse passes (colours) "
          "| time (s) |")
    print("|---|---|---|---|---|---|---|---|")
    sizes = [10_000, 100_000] if large else [10_000]
    grids = [100, 316] if large else [100]
    cases: list[tuple[str, Callable[[Any], Any], np.ndarray]] = []
    for n in sizes:
        x0 = 1.0 + 0.2 * np.random.default_rng(0).uniform(-1.0, 1.0, n)
        cases.append(("chained Rosenbrock", chained_rosen, x0))
    for N in grids:
        cases.append((f"2-D energy {N}x{N}", laplace_energy(N), np.zeros(N * N)))
    for name, f, x0 in cases:
        for method in ("newton-cg", "trust-krylov"):
            for hess in (None, "sparse"):
                t, res = best(lambda: dr.optimize.minimize(f, x0, method=method, hess=hess),
                              repeat)
                H = res.get("sparse_hessian")
                passes = "-" if H is None else f"{H.passes} ({H.n_colours})"
                print(f"| {name} | {x0.size} | {method} | {hess or 'HVPs'} | {res.nit} | "
                      f"{res.nhev} | {passes} | {t:.2f} |", flush=True)


def constrained(repeat: int, large: bool) -> None:
    print("\n| optimal control | n | m | derivatives | nit | time (s) |")
    print("|---|---|---|---|---|---|")
    for N in ([500, 2000] if large else [500]):
        cost, c = control(N)
        z0 = np.zeros(2 * N + 1)
        dense_jac = dr.jacobian(c)
        rows = [("dense exact J (given), HVP operators", None, dense_jac),
                ("default: sparse J unasked, HVP operators", None, None),
                ('hess="sparse": sparse H, J, constraint H', "sparse", None)]
        for what, hess, jac in rows:
            con = (so.NonlinearConstraint(c, 0.0, 0.0) if jac is None
                   else so.NonlinearConstraint(c, 0.0, 0.0, jac=jac))
            t, res = best(lambda: dr.optimize.minimize(  # noqa: B023
                cost, z0, method="trust-constr", hess=hess, constraints=con), repeat)
            assert res.success
            print(f"| N={N} | {z0.size} | {N + 1} | {what} | {res.nit} | {t:.2f} |",
                  flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--large", action="store_true", help="also n = 10^5 and N = 2000")
    ap.add_argument("--constrained", action="store_true", help="the trust-constr rows only")
    args = ap.parse_args()
    if not args.constrained:
        unconstrained(args.repeat, args.large)
    constrained(args.repeat, args.large)


if __name__ == "__main__":
    main()
