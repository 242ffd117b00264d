"""A family of initial value problems from non-stiff to very stiff, for checking the
derivatives of ``solve_ivp``/``odeint`` across methods and tolerances (issue 21,
generator 4): tests/test_integrate.py runs a covering subset, and

    python -m tests.ode_family [--full]

prints the error table (problem x method x rtol x mode -> normwise relative error of the
Jacobian of ``y(T)`` in the parameters against a reference).

Each problem is ``rhs(t, y, p)`` with a parameter vector ``p``; the reference Jacobian is
a closed form where one exists, else the sensitivity equations from hand-written
Jacobians solved by plain SciPy at rtol 1e-13.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.integrate as si
import scipy.linalg as sl

import dualrev as dr
from dualrev.catalogue.scipy_functions import ORIGINALS

ORIGINAL_SOLVE_IVP = ORIGINALS[si.solve_ivp]

METHODS = ("RK23", "RK45", "DOP853", "Radau", "BDF", "LSODA", "odeint")
EXPLICIT = ("RK23", "RK45", "DOP853")
RTOLS = (1e-6, 1e-8, 1e-10)


@dataclass(frozen=True)
class Problem:
    """An IVP ``y' = rhs(t, y, p)``, ``y(0) = y0``, observed at ``T``."""

    name: str
    rhs: Callable[..., Any]
    y0: tuple[float, ...]
    T: float
    p: tuple[float, ...]
    stiff: bool  # explicit methods are run only on the problems that are not
    # d f / dy and d f / dp written out by hand in plain NumPy (for the reference)
    jy: Callable[..., np.ndarray] | None = None
    jp: Callable[..., np.ndarray] | None = None
    closed: Callable[[np.ndarray], np.ndarray] | None = None  # d y(T) / d(y0, p)


def cubic(c: float) -> Problem:
    """The system of issue 21: reverse mode gave the wrong sign at c = 1000."""
    def rhs(t: Any, y: Any, p: Any) -> Any:
        return np.stack([-2 * y[0] + p[0] * y[1], 2 * y[0] - p[0] * y[1] - c * y[1] ** 3])

    def jy(t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.array([[-2.0, p[0]], [2.0, -p[0] - 3 * c * y[1] ** 2]])

    def jp(t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.array([[y[1]], [-y[1]]])

    return Problem(f"cubic c={c:g}", rhs, (1.0, 1.0), 1.0, (3.0,), c >= 1000, jy, jp)


def robertson() -> Problem:
    """Robertson's kinetics, y2 scaled by 1e4 (so the components are of one size), the
    rates multiplied by the parameters."""
    def rhs(t: Any, y: Any, p: Any) -> Any:
        k1, k2, k3 = 0.04 * p[0], 3e7 * p[1], 1e4 * p[2]
        y1, z2, y3 = y[0], y[1], y[2]
        return np.stack([-k1 * y1 + k3 * 1e-4 * z2 * y3,
                         1e4 * k1 * y1 - k2 * 1e-4 * z2 ** 2 - k3 * z2 * y3,
                         k2 * 1e-8 * z2 ** 2])

    def jy(t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        k1, k2, k3 = 0.04 * p[0], 3e7 * p[1], 1e4 * p[2]
        return np.array([[-k1, k3 * 1e-4 * y[2], k3 * 1e-4 * y[1]],
                         [1e4 * k1, -2 * k2 * 1e-4 * y[1] - k3 * y[2], -k3 * y[1]],
                         [0.0, 2 * k2 * 1e-8 * y[1], 0.0]])

    def jp(t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.array([[-0.04 * y[0], 0.0, y[1] * y[2]],
                         [400.0 * y[0], -3e3 * y[1] ** 2, -1e4 * y[1] * y[2]],
                         [0.0, 0.3 * y[1] ** 2, 0.0]])

    return Problem("robertson", rhs, (1.0, 0.0, 0.0), 10.0, (1.0, 1.0, 1.0), True, jy, jp)


def van_der_pol(mu: float) -> Problem:
    def rhs(t: Any, y: Any, p: Any) -> Any:
        return np.stack([y[1], p[0] * ((1 - y[0] ** 2) * y[1] - y[0])])

    def jy(t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.array([[0.0, 1.0], [p[0] * (-2 * y[0] * y[1] - 1), p[0] * (1 - y[0] ** 2)]])

    def jp(t: float, y: np.ndarray, p: np.ndarray) -> np.ndarray:
        return np.array([[0.0], [(1 - y[0] ** 2) * y[1] - y[0]]])

    return Problem(f"van der Pol mu={mu:g}", rhs, (2.0, 0.0), 0.5, (mu,), mu >= 1000, jy, jp)


_V = np.array([[1.0, 0.5, 0.2], [0.0, 1.0, 0.3], [0.1, 0.0, 1.0]])
_LAM = np.array([1.0, 1e2, 1e4])


def linear_spread() -> Problem:
    """``y' = A(p) y`` with ``A = V diag(-lam * p) V^-1``, eigenvalues 1 to 1e4 (its
    solution in closed form)."""
    vinv = np.linalg.inv(_V)

    def rhs(t: Any, y: Any, p: Any) -> Any:
        return _V @ (-_LAM * p * (vinv @ y))

    def closed(q: Any) -> Any:  # d/d(y0, p) of V exp(-lam p T) V^-1 y0, T = 1
        y0, p = q[:3], q[3:]
        decay = np.exp(-_LAM * p)
        return np.concatenate([_V @ (decay[:, None] * vinv),
                               _V * (-_LAM * decay * (vinv @ y0))[None, :]], axis=1)

    return Problem("linear spread 1..1e4", rhs, (1.0, 1.0, 1.0), 1.0, (1.0, 1.0, 1.0),
                   True, closed=closed)


def linear_2x2() -> Problem:
    """The cubic system at c = 0: linear, its solution ``expm(A(b) t) y0``, whose
    derivative is the Frechet derivative of expm along ``dA/db``."""
    def closed(q: Any) -> Any:
        da = np.array([[0.0, 1.0], [0.0, -1.0]])
        a = np.array([[-2.0, 0.0], [2.0, 0.0]]) + q[2] * da
        e, de = sl.expm_frechet(a, da)
        return np.concatenate([e, (de @ q[:2])[:, None]], axis=1)

    return Problem("cubic c=0", cubic(0.0).rhs, (1.0, 1.0), 1.0, (3.0,), False,
                   closed=closed)


FAMILY = (linear_2x2(), cubic(1.0), cubic(100.0), cubic(1000.0), cubic(1e4), van_der_pol(1.0),
          van_der_pol(100.0), van_der_pol(1000.0), robertson(), linear_spread())


def final_state(prob: Problem, method: str, rtol: float) -> Callable[[Any], Any]:
    """``q -> y(T)``, ``q`` the initial state and the parameters, solved by ``method`` (a
    solve_ivp method, or ``odeint``) at ``rtol``, ``atol = 1e-3 rtol`` (every component
    is of order one)."""
    atol = 1e-3 * rtol
    n = len(prob.y0)
    if method == "odeint":
        def f(q: Any) -> Any:
            return si.odeint(prob.rhs, q[:n], [0.0, prob.T], args=(q[n:],), rtol=rtol,
                             atol=atol, tfirst=True, mxstep=100000)[-1]
    else:
        def f(q: Any) -> Any:
            return si.solve_ivp(prob.rhs, (0.0, prob.T), q[:n], method=method,
                                t_eval=[prob.T], args=(q[n:],), rtol=rtol,
                                atol=atol).y[:, -1]
    return f


def point(prob: Problem) -> np.ndarray:
    """Where the derivatives are taken: ``q = (y0, p)``."""
    return np.array(prob.y0 + prob.p)


def reference(prob: Problem) -> np.ndarray:
    """The reference Jacobian of ``y(T)`` in ``(y0, p)`` (see ``_reference``)."""
    return _reference(prob)[1]


def value_error(prob: Problem, method: str, rtol: float) -> float:
    """The normwise relative error of the plain solution ``y(T)`` itself: what SciPy's
    error control achieved on the value, which a derivative cannot be expected to beat
    by much."""
    y = np.asarray(dr.strip(final_state(prob, method, rtol)(point(prob))))
    ref = _reference(prob)[0]
    return float(np.max(np.abs(y - ref)) / np.max(np.abs(ref)))


@functools.cache
def _reference(prob: Problem) -> tuple[np.ndarray, np.ndarray]:
    """The Jacobian of ``y(T)`` in ``(y0, p)``: the closed form, else the sensitivity
    equations ``S' = J_y S + [0 | J_p]``, ``S(0) = [I | 0]``, from the hand-written
    Jacobians, solved by plain SciPy (LSODA) at rtol 1e-13: nothing of dualrev's (within
    5e-11 of Radau at rtol 1e-13 on every problem, in a fraction of its time)."""
    n, k = len(prob.y0), len(prob.p)
    if prob.closed is not None:
        q = point(prob)
        return prob.closed(q)[:, :n] @ q[:n], prob.closed(q)  # linear in y0
    p = np.array(prob.p)

    def aug(t: float, z: np.ndarray) -> np.ndarray:
        y, sens = z[:n], z[n:].reshape(n, n + k)
        ds = prob.jy(t, y, p) @ sens
        ds[:, n:] += prob.jp(t, y, p)
        return np.concatenate([prob.rhs(t, y, p), ds.ravel()])

    def jac(t: float, z: np.ndarray) -> np.ndarray:  # the Newton matrix: d(J S)/dy left out
        j = prob.jy(t, z[:n], p)
        return sl.block_diag(j, np.kron(j, np.eye(n + k)))

    z0 = np.concatenate([prob.y0, np.eye(n, n + k).ravel()])
    r = ORIGINAL_SOLVE_IVP(aug, (0.0, prob.T), z0, method="LSODA", jac=jac, rtol=1e-13,
                           atol=1e-16)
    assert r.success, r.message
    return r.y[:n, -1], r.y[n:, -1].reshape(n, n + k)


def error(prob: Problem, method: str, rtol: float, mode: str) -> float:
    """The normwise relative error of ``jacfwd`` (mode 'fwd') or ``jacrev`` ('rev') of
    ``y(T)`` in ``(y0, p)`` against the reference."""
    transform = dr.jacfwd if mode == "fwd" else dr.jacrev
    jac = np.asarray(transform(final_state(prob, method, rtol))(point(prob)))
    ref = reference(prob)
    return float(np.max(np.abs(jac - ref)) / np.max(np.abs(ref)))


# The default test run's cases: every problem, every method (explicit ones on the
# non-stiff problems), every tolerance, with the expensive combinations (RK23 at tight
# tolerances, Radau at 1e-10 on stiff problems: 10-50 s each here) left to --full.
DEFAULT = (("cubic c=0", "RK23", 1e-6), ("cubic c=0", "BDF", 1e-10),
           ("cubic c=1", "DOP853", 1e-10), ("cubic c=1", "odeint", 1e-6),
           ("cubic c=100", "RK45", 1e-8), ("cubic c=100", "LSODA", 1e-10),
           ("cubic c=1000", "BDF", 1e-6), ("cubic c=1000", "odeint", 1e-10),
           ("cubic c=10000", "Radau", 1e-6), ("cubic c=10000", "LSODA", 1e-8),
           ("van der Pol mu=1", "Radau", 1e-8), ("van der Pol mu=100", "DOP853", 1e-8),
           ("van der Pol mu=100", "BDF", 1e-8), ("van der Pol mu=1000", "LSODA", 1e-6),
           ("van der Pol mu=1000", "odeint", 1e-8), ("robertson", "BDF", 1e-6),
           ("robertson", "LSODA", 1e-8), ("linear spread 1..1e4", "Radau", 1e-6),
           ("linear spread 1..1e4", "odeint", 1e-10))
BY_NAME = {prob.name: prob for prob in FAMILY}


def cases(full: bool) -> list[tuple[Problem, str, float]]:
    """Every (problem, method, rtol) the methods can run in reasonable time (explicit
    methods skip the stiff problems); without ``full`` a covering subset: every problem
    and every method, the tolerances in rotation (one rtol per pair)."""
    out = []
    k = 0
    for prob in FAMILY:
        for method in METHODS:
            if prob.stiff and method in EXPLICIT:
                continue
            rtols = RTOLS if full else (RTOLS[k % len(RTOLS)],)
            k += 1
            out.extend((prob, method, r) for r in rtols)
    return out


def main(argv: list[str]) -> None:
    full = "--full" in argv
    print("| problem | method | rtol | value error | fwd error | rev error | seconds (fwd, rev) |")
    print("|---|---|---|---|---|---|---|")
    for prob, method, rtol in cases(full):
        row = []
        for mode in ("fwd", "rev"):
            start = time.perf_counter()
            row.append((error(prob, method, rtol, mode), time.perf_counter() - start))
        print(f"| {prob.name} | {method} | {rtol:.0e} | {value_error(prob, method, rtol):.1e} "
              f"| {row[0][0]:.1e} | {row[1][0]:.1e} "
              f"| {row[0][1]:.2f}, {row[1][1]:.2f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
