"""Newton-Krylov with ``dualrev.linearize``: the 1-D Bratu problem -u'' = λ e^u on (0, 1),
u(0) = u(1) = 0, on n interior points (n = 200 by default; the first argument sets it).

Each Newton step evaluates the residual F once, with ``dr.linearize``, and hands its JVP
to ``scipy.sparse.linalg.gmres`` as a ``LinearOperator(matvec=f_jvp)``: GMRES applies
the exact Jacobian many times without forming it and without running F's Python again
(a counter checks that F ran once per step). The script checks what it prints: the
residual converges quadratically, and the solution equals dense Newton with
``dr.jacobian`` and ``np.linalg.solve`` to 1e-10; it exits with status 1 otherwise.

    python examples/newton_krylov.py          # n = 200
    python examples/newton_krylov.py 50
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla

import dualrev as dr

LAMBDA = 1.0  # below the fold at λ ≈ 3.51: the lower solution branch
calls = [0]


def residual(u: np.ndarray) -> np.ndarray:
    """-Δ_h u - λ e^u with zero boundary values (plain NumPy)."""
    calls[0] += 1
    n = u.shape[0]
    h2 = 1.0 / (n + 1) ** 2
    padded = np.concatenate([[0.0], u, [0.0]])
    return (2 * u - padded[:-2] - padded[2:]) / h2 - LAMBDA * np.exp(u)


def newton_krylov(n: int, tol: float = 1e-9) -> tuple[np.ndarray, list[float], list[int]]:
    """Newton's method, each step's linear system solved by GMRES on f_jvp."""
    u = np.zeros(n)
    norms, inner = [], []
    for _ in range(20):
        before = calls[0]
        r, f_jvp = dr.linearize(residual, u)
        norms.append(float(np.linalg.norm(r)))
        if norms[-1] < tol:
            break
        steps = [0]

        def matvec(v: np.ndarray, f_jvp: Any = f_jvp, steps: list[int] = steps) -> Any:
            steps[0] += 1
            return f_jvp(np.ravel(v))

        J = spla.LinearOperator((n, n), matvec=matvec, dtype=float)
        du, info = spla.gmres(J, -r, rtol=1e-12, atol=0.0, restart=n, maxiter=10)
        if info != 0:
            raise RuntimeError(f"GMRES did not converge (info={info})")
        assert calls[0] == before + 1, "f_jvp ran the residual's Python again"
        inner.append(steps[0])
        u = u + du
    return u, norms, inner


def dense_newton(n: int, tol: float = 1e-9) -> np.ndarray:
    """The reference: Newton with the dense Jacobian from dr.jacobian."""
    u = np.zeros(n)
    for _ in range(20):
        r = residual(u)
        if np.linalg.norm(r) < tol:
            break
        u = u - np.linalg.solve(dr.jacobian(residual)(u), r)
    return u


def main(argv: list[str]) -> None:
    n = int(argv[0]) if argv else 200
    u, norms, inner = newton_krylov(n)
    ref = dense_newton(n)
    diff = float(np.max(np.abs(u - ref)))
    print(f"Bratu 1-D, n = {n}, λ = {LAMBDA}: {len(norms) - 1} Newton steps, "
          f"{sum(inner)} GMRES matvecs (f_jvp calls), the residual evaluated once per step")
    for k, r in enumerate(norms):
        print(f"  step {k}: |F(u)| = {r:.3e}" + (f"  ({inner[k]} matvecs)" if k < len(inner)
                                                 else ""))
    # quadratic: |F_k+1| <= C |F_k|^2 with one C for every step above the round-off
    # floor (a linear rate would make C grow like 1 / |F_k|)
    cs = [b / a ** 2 for a, b in zip(norms, norms[1:], strict=False) if b > 1e-11]
    quadratic = len(cs) >= 2 and max(cs) < 20 * min(cs)
    print(f"|F_k+1| / |F_k|^2 = {', '.join(f'{c:.2e}' for c in cs)} "
          f"(quadratic = {quadratic})")
    print(f"max |u - u_dense_newton| = {diff:.2e} (dense Newton with dr.jacobian)")
    if not (quadratic and diff < 1e-10 and norms[-1] < 1e-9):
        print("FAILED")
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
