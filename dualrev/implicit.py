"""The solutions of scipy.optimize's solvers, differentiated by the implicit function
theorem.

A solver returns ``x*`` with ``F(x*, theta) = 0`` for an optimality condition ``F``:
``grad_x f`` for ``minimize`` (components at an active bound held there; with equality
constraints the KKT conditions in ``x`` and the multipliers), the user's
function for ``root``/``fsolve`` and the scalar root finders, ``J^T r`` (the gradient of
the least-squares cost, with its robust loss) for ``least_squares`` and ``curve_fit``,
``g(x) - x`` for ``fixed_point``. SciPy solves on plain values; the solution is the
output of one primitive (``implicit_p``) whose rules are

    forward:  dx = -(dF/dx)^-1 (dF/dtheta dtheta)
    reverse:  dtheta = -(dF/dtheta)^T (dF/dx)^-T dx_bar

written with dualrev's own transforms (``jacfwd`` of ``F`` in ``x``, ``jvp``/``vjp`` of
``F`` in ``theta``) and ``np.linalg.solve`` at the traced solution, so that an enclosing
transform differentiates the rules themselves (Hessians of bilevel objectives) and every
tangent or cotangent column of a ``jacfwd``/``jacrev`` is one right-hand side of one
solve. Under ``vmap`` the solver runs once per batch element.

The parameters ``theta`` are the traced values the solver's function reaches: the traced
leaves of ``args=`` (and of ``kwargs=``, ``xdata``, ``ydata``, ``sigma``) and the traced
values its closure holds (``closure.lift``). Before differentiating, the rules check that
the solver converged (SciPy's own flag, and a Newton step from the returned point small
against the point: ``SolverNotConvergedError``) and that ``dF/dx`` is well conditioned
(``SingularSolutionError``).

The front ends here are installed on scipy.optimize (``minimize``, ``root``, ``fsolve``,
``least_squares``, ``curve_fit``, ``root_scalar``, ``newton``, ``brentq``, ``brenth``,
``ridder``, ``bisect``, ``toms748``, ``fixed_point``, ``minimize_scalar``); with no
traced value anywhere they
call SciPy's own function unchanged. dualrev.optimize's drop-in versions use the same
front ends with themselves as the plain solver.
"""

from __future__ import annotations

import copy
import inspect
import threading
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg as sl
import scipy.optimize as so

from .batching import stand_in, without_derivatives
from .catalogue.scipy_functions import ORIGINALS, dispatch
from .closure import lift
from .errors import (
    NoDerivativeRule,
    SingularSolutionError,
    SolverNotConvergedError,
)
from .primitive import Primitive, Tracer, bind, concrete, shape_of, strip
from .transforms import grad, jacfwd, jvp, vjp
from .tree import ravel_pytree, tree_flatten, tree_unflatten

__all__ = ["NEWTON_STEP_ATOL", "NEWTON_STEP_RTOL", "CONDITION_MAX", "BOUND_TOL",
           "implicit_p"]

#: the solution is differentiated only where one Newton step from it, (dF/dx)^-1 F,
#: is at most NEWTON_STEP_RTOL * |x*| + NEWTON_STEP_ATOL (max norms): the derivative is
#: exact at the true solution, and its error grows with the distance to it
NEWTON_STEP_RTOL = 1e-4
NEWTON_STEP_ATOL = 1e-8
#: where SciPy reports failure, the point is still accepted when the Newton step is below
#: FAILED_STEP_RTOL * |x*| + FAILED_STEP_ATOL: at tolerances near rounding, SciPy's
#: line searches and trust regions report "precision loss" or "a bad approximation" at a
#: point that is the solution to rounding; a run stopped early (maxiter) is not
FAILED_STEP_RTOL = 1e-7
FAILED_STEP_ATOL = 1e-10
#: dF/dx with a larger condition number (2-norm) is treated as singular
CONDITION_MAX = 1e12
#: a component of minimize's or curve_fit's x within BOUND_TOL * max(1, |bound|) of a
#: finite bound is held at it (least_squares reports its own active_mask)
BOUND_TOL = 1e-8


# Set while a front end runs its plain solve: the solver it calls (SciPy's, or
# dualrev.optimize's, which calls a front end itself) sees the user's function bound to
# plain values, but lift() would still find the traced originals that the bound function
# reaches (the lifted function closes over them), so front ends called from inside a plain
# solve solve plainly. Per thread, so that solves in other threads are not affected.
_LOCAL = threading.local()


def _plainly(solver: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``solver(*args, **kwargs)`` with the front ends off in this thread."""
    before = getattr(_LOCAL, "plain", False)
    _LOCAL.plain = True
    try:
        return solver(*args, **kwargs)
    finally:
        _LOCAL.plain = before


def _off() -> bool:
    return getattr(_LOCAL, "plain", False)


def _has_tracer(tree: Any) -> bool:
    return any(isinstance(v, Tracer) for v in tree_flatten(tree)[0])


def plain_values(tree: Any) -> Any:
    """``tree`` with each traced leaf replaced by a plain stand-in (its plain value, or
    zeros of one element's shape under ``vmap``): for its structure and shapes."""
    leaves, tdef = tree_flatten(tree)
    return tree_unflatten(tdef, [stand_in(v) if isinstance(v, Tracer) else v for v in leaves])


def _start(x0: Any) -> Any:
    """A starting point as one flat float vector, without derivatives (the solution does
    not depend on it) but batched under ``vmap``."""
    parts = [np.ravel(without_derivatives(v)) if isinstance(v, Tracer)
             else np.ravel(np.asarray(v, dtype=float)) for v in tree_flatten(x0)[0]]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


# ------------------------------------------------------------------ the primitive
def _impl(p: Any, x0: Any, *, solve: Callable[..., Any], residual: Callable[..., Any],
          n: int, name: str, holder: list[Any], lb: Any, ub: Any) -> np.ndarray:
    x, ok, message, info, active = solve(p, x0)
    holder.append((ok, message, info))
    x = np.ravel(np.asarray(x, dtype=float))
    if x.size != n:
        raise ValueError(f"{name}: the solution has {x.size} elements where x0 has {n}")
    act = np.zeros(n) if active is None else np.ravel(np.asarray(active, dtype=float))
    return np.concatenate([x, [1.0 if ok else 0.0], act])


implicit_p = Primitive("scipy.optimize (implicit solution)", _impl)


def _condition(residual: Callable[..., Any], x: Any, q: Any, act: Any, lb: Any,
               ub: Any) -> Callable[[Any, Any], Any]:
    """``F(x, q)`` with the components at an active bound replaced by ``x - bound``
    (so that they stay there: the reduced system)."""
    if lb is None or not np.any(concrete(act) != 0):
        return residual
    active = act != 0
    bound = np.where(act < 0, np.where(np.isfinite(lb), lb, 0.0),
                     np.where(np.isfinite(ub), ub, 0.0))

    def F(y: Any, r: Any) -> Any:
        return np.where(active, y - bound, residual(y, r))

    return F


_BOUNDS_HINT = (" With bounds, a component that ends near a bound but not on it (farther "
                "than BOUND_TOL relative: trust-constr's interior point stays off by its "
                "barrier tolerance) counts as free and its gradient is not zero: tighten "
                "options={'barrier_tol': ...} or use a method that puts it on the bound "
                "(L-BFGS-B, TNC, SLSQP).")


def _check(name: str, holder: list[Any], ok: Any, A: Any, Fx: Any, x: Any,
           bounded: bool = False) -> None:
    """Refuse a solution that did not converge or is not isolated (see the module)."""
    failed = not np.all(np.asarray(concrete(ok)) == 1.0)
    Ap = np.asarray(concrete(A), dtype=float)
    n = Ap.shape[-1]
    if n == 0:
        return
    if not np.all(np.isfinite(Ap)):
        raise SingularSolutionError(name, np.inf)
    cond = np.max(np.linalg.cond(Ap))
    if not np.isfinite(cond) or cond > CONDITION_MAX:
        raise SingularSolutionError(name, float(cond))
    Fp = np.asarray(concrete(Fx), dtype=float)
    xp = np.asarray(concrete(x), dtype=float)
    step = np.linalg.solve(Ap, Fp[..., None])[..., 0]
    size = np.max(np.abs(step), axis=-1)
    xmax = np.max(np.abs(xp), axis=-1)
    if failed:
        if np.all(size <= FAILED_STEP_RTOL * xmax + FAILED_STEP_ATOL):
            return
        why = next((m for o, m, _ in holder if not o), "the solver reported failure")
        raise SolverNotConvergedError(name, f"SciPy reports that it did not converge "
                                      f"({why}), and one Newton step from the returned "
                                      f"point has length {float(np.max(size)):.3g}")
    scale = NEWTON_STEP_RTOL * xmax + NEWTON_STEP_ATOL
    if not np.all(size <= scale):
        k = int(np.argmax(size - scale)) if np.ndim(size) else 0
        raise SolverNotConvergedError(
            name, f"the optimality condition F(x*) = 0 does not hold at the returned "
            f"point: one Newton step from it has length {float(np.ravel(size)[k]):.3g} "
            f"(max norm), more than {NEWTON_STEP_RTOL:g} |x*| + {NEWTON_STEP_ATOL:g} = "
            f"{float(np.ravel(scale)[k]):.3g}" + (_BOUNDS_HINT if bounded else ""))


def _parts(ans: Any, n: int) -> tuple[Any, Any, Any]:
    return ans[:n], ans[n], without_derivatives(ans[n + 1:])


def _jacobian_x(F: Callable[..., Any], x: Any, p: Any) -> Any:
    return jacfwd(lambda y: F(y, p))(x)


def _jvp_rule(tangents: list[Any], ans: Any, p: Any, x0: Any, *, solve: Any,
              residual: Callable[..., Any], n: int, name: str, holder: list[Any], lb: Any,
              ub: Any) -> Any:
    dp = tangents[0]
    if dp is None:
        return np.zeros(2 * n + 1)
    x, ok, act = _parts(ans, n)
    F = _condition(residual, x, p, act, lb, ub)
    A = _jacobian_x(F, x, p)
    Fx, b = jvp(lambda q: F(x, q), (p,), (dp,))
    _check(name, holder, ok, A, Fx, x, lb is not None)
    dx = -np.linalg.solve(A, b)
    return np.concatenate([dx, np.zeros(n + 1)])


def _vjp_rule(i: int, g: Any, ans: Any, p: Any, x0: Any, *, solve: Any,
              residual: Callable[..., Any], n: int, name: str, holder: list[Any], lb: Any,
              ub: Any) -> Any:
    if i == 1:
        return np.zeros(shape_of(x0))
    x, ok, act = _parts(ans, n)
    F = _condition(residual, x, p, act, lb, ub)
    A = _jacobian_x(F, x, p)
    Fx, pull = vjp(lambda q: F(x, q), p)
    _check(name, holder, ok, A, Fx, x, lb is not None)
    u = np.linalg.solve(np.transpose(A), g[:n])
    return -pull(u)[0]


implicit_p.defjvp_joint(_jvp_rule)
implicit_p.defvjp_indexed(_vjp_rule)


def solution(name: str, traced: list[Any], residual: Callable[..., Any],
             plain_solve: Callable[..., Any], x0: Any, lb: Any = None,
             ub: Any = None, n: int | None = None) -> tuple[Any, list[Any]]:
    """The solution of ``residual(x, ts) = 0`` found by ``plain_solve``, differentiable
    in the traced values ``traced``.

    Args:
        name: the solver as the user called it, for errors.
        traced: the values the solution depends on (traced leaves).
        residual: ``residual(x, ts)``, ``x`` flat, ``ts`` a list like ``traced``: the
            optimality condition as a flat vector of ``x``'s size, in NumPy.
        plain_solve: ``plain_solve(ts, x0) -> (x, ok, message, info, active)`` on plain
            values: the flat solution, whether the solver converged, its message, its
            result object(s), and per component -1/1 at an active lower/upper bound, 0
            free (or None).
        x0: the flat starting point (its derivatives are dropped; under vmap each
            element's own), or what the solver starts from (a bracket) with ``n`` given.
        lb: the lower bounds (flat, plain) when ``active`` may be nonzero.
        ub: the upper bounds likewise.
        n: the number of unknowns, where it is not ``x0``'s size.
    Returns:
        ``(x, infos)``: the flat traced solution and the ``info`` of each plain solve
        (one per batch element under ``vmap``).
    """
    for v in traced:
        if np.iscomplexobj(concrete(v)):
            raise NoDerivativeRule(f"{name} (a complex parameter)", "Implicit "
                                   "differentiation of solvers is real: pass the real and "
                                   "imaginary parts as two real parameters.")
    p, unravel = ravel_pytree(list(traced))
    x0 = without_derivatives(x0)
    if n is None:
        n = int(np.prod(shape_of(x0)))
    holder: list[Any] = []
    z = bind(implicit_p, (p, x0), dict(
        solve=lambda pp, xx: plain_solve(unravel(pp), xx),
        residual=lambda x, q: np.reshape(residual(x, unravel(q)), (n,)),
        n=n, name=name, holder=holder, lb=lb, ub=ub))
    return z[:n], [info for _, _, info in holder]


# ------------------------------------------------------------------ the callbacks
class _Callback:
    """A user's ``fun(x, *args, **kwargs)`` with the traced values it reaches (traced
    leaves of ``args``/``kwargs``, traced values in its closure) made explicit."""

    def __init__(self, fun: Callable[..., Any], args: Any = (), kwargs: Any = None) -> None:
        self.g, cparams = lift(fun)
        self.ncl = len(cparams)
        leaves, self.tdef = tree_flatten((tuple(args), dict(kwargs or {})))
        self.leaves = leaves
        self.pos = [i for i, v in enumerate(leaves) if isinstance(v, Tracer)]
        self.traced = [leaves[i] for i in self.pos] + list(cparams)

    def bound(self, ts: list[Any]) -> tuple[Callable[..., Any], tuple[Any, ...], dict]:
        """``(f, args, kwargs)`` with ``f(x, *args, **kwargs)`` the user's function at the
        traced values ``ts`` (plain or traced)."""
        full = list(self.leaves)
        k = len(self.pos)
        for i, v in zip(self.pos, ts[:k], strict=True):
            full[i] = v
        args, kwargs = tree_unflatten(self.tdef, full)
        closed = tuple(ts[k:])
        g = self.g
        f = (lambda *a, **kw: g(*a, *closed, **kw)) if closed else g
        return f, args, kwargs

    def __call__(self, ts: list[Any], *x: Any) -> Any:
        f, args, kwargs = self.bound(ts)
        return f(*x, *args, **kwargs)


def _plain_callable(c: Any) -> Any:
    """A user's helper callable (jac, hess, callback) with any traced value in its
    closure replaced by its plain value, for the plain solve."""
    if not callable(c):
        return c
    g, params = lift(c)
    if not params:
        return c
    plain = tuple(strip(v) for v in params)
    return lambda *a, **k: g(*a, *plain, **k)


def _flat(x: Any) -> np.ndarray:
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return np.ravel(np.asarray(x, dtype=float))
    return np.asarray(ravel_pytree(x)[0], dtype=float)


def _bounds_arrays(bounds: Any, n: int, name: str, pairs: bool) -> tuple[Any, Any]:
    """(lb, ub) as flat float arrays of ``n`` elements, or (None, None) for no finite
    bound; ``pairs``: minimize's sequence of (min, max), else least_squares's (lb, ub)."""
    if bounds is None:
        return None, None
    if _has_tracer(bounds):
        raise NoDerivativeRule(f"{name}(bounds=traced)", "The bounds are constants of "
                               "the implicit derivative: pass plain bounds.")
    if isinstance(bounds, so.Bounds):
        lb, ub = bounds.lb, bounds.ub
    elif pairs:
        lb = [-np.inf if b[0] is None else b[0] for b in bounds]
        ub = [np.inf if b[1] is None else b[1] for b in bounds]
    else:
        lb, ub = bounds
    lb = np.array(np.broadcast_to(np.asarray(lb, dtype=float), (n,)))
    ub = np.array(np.broadcast_to(np.asarray(ub, dtype=float), (n,)))
    if not (np.any(np.isfinite(lb)) or np.any(np.isfinite(ub))):
        return None, None
    return lb, ub


def _active(x: np.ndarray, lb: Any, ub: Any) -> Any:
    if lb is None:
        return None
    at_lb = np.isfinite(lb) & (x <= lb + BOUND_TOL * np.maximum(1.0, np.abs(lb)))
    at_ub = np.isfinite(ub) & (x >= ub - BOUND_TOL * np.maximum(1.0, np.abs(ub)))
    return np.where(at_lb, -1.0, np.where(at_ub, 1.0, 0.0))


def _fields(obj: Any) -> dict[str, Any]:
    return obj if isinstance(obj, dict) else vars(obj)


def _merged(infos: list[Any], result: Any) -> Any:
    """A copy of ``result`` (an OptimizeResult or RootResults); under vmap, with each
    plain solve's scalar fields as one array (strings: a list) over the batch."""
    result = _copy_result(result)
    if len(infos) <= 1:
        return result
    fields = _fields(result)
    for key in list(fields):
        values = [_fields(i).get(key) for i in infos]
        if all(isinstance(v, (bool, np.bool_, int, float, np.number)) for v in values):
            fields[key] = np.array(values)
        elif all(isinstance(v, str) for v in values):
            fields[key] = values
    return result


def _copy_result(res: Any) -> Any:
    # (copy.copy: RootResults, an OptimizeResult since SciPy 1.11, needs __init__ args)
    return copy.copy(res)


# ------------------------------------------------------------------ minimize
def _objective(cb: _Callback, jac: Any, unravel: Callable[[Any], Any]) -> Callable[..., Any]:
    def f(x: Any, ts: list[Any]) -> Any:
        out = cb(ts, unravel(x))
        return out[0] if jac is True else out

    return f


class _Equalities:
    """``minimize``'s constraints as one vector ``c(x, ts) = 0`` of equality constraints
    (dicts of type 'eq', NonlinearConstraint and LinearConstraint with ``lb == ub``), the
    traced values their functions reach appended to the objective's; inequalities are
    refused by name (``refusal``, raised only where a derivative is needed)."""

    def __init__(self, constraints: Any, unravel: Callable[[Any], Any], name: str) -> None:
        if constraints is None:
            constraints = []
        elif isinstance(constraints, (dict, so.NonlinearConstraint, so.LinearConstraint)):
            constraints = [constraints]
        self.parts: list[tuple[str, Any, Any]] = []  # (kind, callback or matrix, target)
        self.given = list(constraints)
        self.refusal: NoDerivativeRule | None = None
        self.traced: list[Any] = []
        self.unravel = unravel
        for con in constraints:
            if isinstance(con, dict):
                if str(con.get("type", "")).lower() != "eq":
                    self._refuse(name)
                args = con.get("args", ())
                c = _Callback(con["fun"], args if isinstance(args, tuple) else (args,))
                self.parts.append(("fun", c, 0.0))
            elif isinstance(con, (so.NonlinearConstraint, so.LinearConstraint)):
                lb, ub = con.lb, con.ub
                if _has_tracer((lb, ub)) or not np.all(np.asarray(lb) == np.asarray(ub)):
                    self._refuse(name)
                if isinstance(con, so.LinearConstraint):
                    if _has_tracer(con.A):
                        self.refusal = NoDerivativeRule(
                            f"{name}(LinearConstraint(traced A))", "Pass a plain matrix.")
                    A = con.A.toarray() if hasattr(con.A, "toarray") else np.asarray(con.A)
                    self.parts.append(("matrix", np.atleast_2d(A), np.asarray(lb, float)))
                else:
                    self.parts.append(("fun", _Callback(con.fun), np.asarray(lb, float)))
            else:
                self.refusal = NoDerivativeRule(
                    f"{name}(constraints={type(con).__name__})", "Give constraints as "
                    "dicts, NonlinearConstraint or LinearConstraint.")
                self.parts.append(("matrix", np.zeros((0, 0)), np.zeros(0)))
        self.counts = [len(c.traced) if kind == "fun" else 0 for kind, c, _ in self.parts]
        for (_kind, c, _), k in zip(self.parts, self.counts, strict=True):
            if k:
                self.traced.extend(c.traced)

    def _refuse(self, name: str) -> None:
        self.refusal = NoDerivativeRule(f"{name}(constraints=inequalities)", "Its solution is "
                               "differentiated by the implicit function theorem on the KKT "
                               "conditions of equality constraints (multipliers by least "
                               "squares at the solution); inequality constraints, whose "
                               "active set would have to be decided from the solver's "
                               "tolerances, are not. Write an inequality that is active at "
                               "the solution as an equality, one on a single variable as "
                               "bounds=, or solve on dualrev.stop_gradient values.")

    def plain(self, ts: list[Any]) -> list[Any]:
        """The constraints as given, their functions bound to the plain values ``ts``
        (for SciPy's solve)."""
        out, i, j = [], 0, 0
        for con in self.given:
            kind, c, _ = self.parts[j]
            k = self.counts[j]
            j += 1
            if kind == "matrix" or not k:
                out.append(con)
            elif isinstance(con, dict):
                f, a, _ = c.bound(list(ts[i:i + k]))
                out.append({**con, "fun": f, "args": a,
                            **({"jac": _plain_callable(con["jac"])} if "jac" in con else {})})
            else:
                f, _, _ = c.bound(list(ts[i:i + k]))
                new = copy.copy(con)
                new.fun, new.jac = f, _plain_callable(con.jac)
                new.hess = _plain_callable(con.hess)
                out.append(new)
            i += k
        return out

    def __call__(self, x: Any, ts: list[Any]) -> Any:
        """The constraint values at the flat ``x`` (``ts``: the constraints' traced
        values, in order)."""
        out, i = [], 0
        for (kind, c, target), k in zip(self.parts, self.counts, strict=True):
            if kind == "matrix":
                out.append(np.ravel(c @ x - target))
            else:
                out.append(np.ravel(c(list(ts[i:i + k]), self.unravel(x))) - target)
            i += k
        return out[0] if len(out) == 1 else np.concatenate(out)


def minimize(solver: Callable[..., Any], fun: Callable[..., Any], x0: Any,
             args: Any = (), method: Any = None, jac: Any = None, hess: Any = None,
             hessp: Any = None, bounds: Any = None, constraints: Any = (),
             tol: Any = None, callback: Any = None, options: Any = None,
             unravel: Callable[[Any], Any] | None = None,
             name: str = "scipy.optimize.minimize") -> Any:
    """``solver``'s ``minimize`` with its solution differentiable in the traced values
    ``fun`` (and the constraints' functions) reach; None when there are none (the caller
    solves as usual)."""
    if _off():
        return None
    if not isinstance(args, tuple):
        args = (args,)
    cb = _Callback(fun, args)
    if unravel is None:
        shape = np.shape(plain_values(x0))
        unravel = lambda v: np.reshape(v, shape)  # noqa: E731
    has_constraints = not (isinstance(constraints, (list, tuple)) and len(constraints) == 0)
    if not cb.traced and not _has_tracer(x0) and not (
            has_constraints and _reaches_tracer(constraints)):
        return None
    eqs = _Equalities(constraints if has_constraints else None, unravel, name)
    if not cb.traced and not eqs.traced and not _has_tracer(x0):
        return None
    if eqs.refusal is not None:
        raise eqs.refusal
    flat0 = _start(x0)
    n = int(np.prod(shape_of(flat0)))
    lb, ub = _bounds_arrays(bounds, n, name, pairs=True)
    objective = _objective(cb, jac, unravel)
    k = len(cb.traced)
    m = 0
    if eqs.parts:  # the number of multipliers, from the constraints at a plain point
        m = int(np.size(eqs(np.asarray(concrete(flat0), dtype=float).reshape(-1)[:n],
                            [stand_in(t) for t in eqs.traced])))
    if m and lb is not None:  # the multipliers are never held
        lb = np.concatenate([lb, np.full(m, -np.inf)])
        ub = np.concatenate([ub, np.full(m, np.inf)])

    def residual(z: Any, ts: list[Any]) -> Any:
        if not m:
            return grad(lambda y: objective(y, ts))(z)
        x, lam = z[:n], z[n:]
        # the KKT conditions: grad f + J_c^T lam = 0, c = 0
        lagrangian = lambda y: objective(y, ts[:k]) + np.sum(lam * eqs(y, ts[k:]))  # noqa: E731
        return np.concatenate([grad(lagrangian)(x), eqs(x, ts[k:])])

    def plain_solve(ts: list[Any], zs: Any) -> tuple[Any, ...]:
        f, a, _ = cb.bound(ts[:k])
        res = _plainly(solver, f, unravel(zs[:n]), args=a, method=method,
                       jac=_plain_callable(jac), hess=_plain_callable(hess),
                       hessp=_plain_callable(hessp), bounds=bounds,
                       constraints=eqs.plain(ts[k:]) if has_constraints else constraints,
                       tol=tol, callback=_plain_callable(callback), options=options)
        xf = _flat(res.x)
        active = _active(xf, lb[:n] if lb is not None else None,
                         ub[:n] if ub is not None else None)
        if m:  # the multipliers, by least squares on the free components
            g = np.asarray(grad(lambda y: objective(y, ts[:k]))(xf), dtype=float)
            J = np.asarray(jacfwd(lambda y: eqs(y, ts[k:]))(xf), dtype=float).reshape(m, n)
            free = np.ones(n, bool) if active is None else active == 0
            lam = np.linalg.lstsq(J[:, free].T, -g[free], rcond=None)[0]
            xf = np.concatenate([xf, lam])
            if active is not None:
                active = np.concatenate([active, np.zeros(m)])
        return xf, bool(res.success), str(res.get("message", "")), res, active

    z0 = flat0 if not m else np.concatenate([flat0, np.zeros(m)])
    z, infos = solution(name, [*cb.traced, *eqs.traced], residual, plain_solve, z0, lb, ub)
    res = _merged(infos, infos[0])
    res.x = unravel(z[:n])
    value = cb(cb.traced, res.x)
    res.fun = value[0] if jac is True else value
    return res


# ------------------------------------------------------------------ root, fsolve
def _flat_out(out: Any) -> Any:
    leaves, _ = tree_flatten(out)
    if len(leaves) == 1:
        return np.ravel(leaves[0])
    return np.concatenate([np.ravel(v) for v in leaves])


def root(solver: Callable[..., Any], fun: Callable[..., Any], x0: Any, args: Any = (),
         method: Any = "hybr", jac: Any = None, unravel: Callable[[Any], Any] | None = None,
         name: str = "scipy.optimize.root", **kw: Any) -> Any:
    """``solver``'s ``root``, its solution differentiable; None when nothing is traced."""
    if _off():
        return None
    if not isinstance(args, tuple):
        args = (args,)
    cb = _Callback(fun, args)
    if not cb.traced and not _has_tracer(x0):
        return None
    flat0 = _start(x0)
    if unravel is None:
        shape = np.shape(plain_values(x0))
        unravel = lambda v: np.reshape(v, shape)  # noqa: E731

    def residual(x: Any, ts: list[Any]) -> Any:
        out = cb(ts, unravel(x))
        return _flat_out(out[0] if jac is True else out)

    def plain_solve(ts: list[Any], xs: Any) -> tuple[Any, ...]:
        f, a, _ = cb.bound(ts)
        res = _plainly(solver, f, unravel(xs), args=a, method=method, jac=_plain_callable(jac),
                     **{k: _plain_callable(v) for k, v in kw.items()})
        return _flat(res.x), bool(res.success), str(res.get("message", "")), res, None

    x, infos = solution(name, cb.traced, residual, plain_solve, flat0)
    res = _merged(infos, infos[0])
    res.x = unravel(x)
    return res


def fsolve(solver: Callable[..., Any], func: Callable[..., Any], x0: Any, args: Any = (),
           fprime: Any = None, full_output: bool = False,
           name: str = "scipy.optimize.fsolve", **kw: Any) -> Any:
    """``solver``'s ``fsolve``, its solution differentiable; None when nothing is traced."""
    if _off():
        return None
    if not isinstance(args, tuple):
        args = (args,)
    cb = _Callback(func, args)
    if not cb.traced and not _has_tracer(x0):
        return None
    flat0 = _start(x0)

    def residual(x: Any, ts: list[Any]) -> Any:
        return np.ravel(cb(ts, x))

    def plain_solve(ts: list[Any], xs: Any) -> tuple[Any, ...]:
        f, a, _ = cb.bound(ts)
        x, info, ier, mesg = _plainly(solver, f, xs, args=a, fprime=_plain_callable(fprime),
                                    full_output=True, **kw)
        return x, ier == 1, str(mesg), (info, ier, mesg), None

    x, infos = solution(name, cb.traced, residual, plain_solve, flat0)
    if full_output:
        info, ier, mesg = infos[0]
        return x, info, ier, mesg
    return x


def fixed_point(solver: Callable[..., Any], func: Callable[..., Any], x0: Any,
                args: Any = (), name: str = "scipy.optimize.fixed_point",
                **kw: Any) -> Any:
    """``solver``'s ``fixed_point`` (x = func(x, *args)), differentiable; None when
    nothing is traced. SciPy raises when it does not converge."""
    if _off():
        return None
    if not isinstance(args, tuple):
        args = (args,)
    cb = _Callback(func, args)
    if not cb.traced and not _has_tracer(x0):
        return None
    flat0 = _start(x0)
    shape = np.shape(plain_values(x0))

    def residual(x: Any, ts: list[Any]) -> Any:
        y = np.reshape(x, shape)
        return np.ravel(cb(ts, y) - y)

    def plain_solve(ts: list[Any], xs: Any) -> tuple[Any, ...]:
        f, a, _ = cb.bound(ts)
        x = _plainly(solver, f, np.reshape(xs, shape), args=a, **kw)
        return x, True, "", None, None

    x, _ = solution(name, cb.traced, residual, plain_solve, flat0)
    return np.reshape(x, shape) if shape else x[0]


# ------------------------------------------------------------------ least squares
def _rho(loss: Any, name: str) -> Callable[[Any], Any]:
    """SciPy's robust loss rho(z) of z = (r / f_scale)^2."""
    if callable(loss):
        return lambda z: loss(z)[0]
    rules = {"linear": lambda z: z,
             "soft_l1": lambda z: 2.0 * (np.sqrt(1.0 + z) - 1.0),
             "huber": lambda z: np.where(z <= 1.0, z, 2.0 * np.sqrt(np.maximum(z, 1.0))
                                         - 1.0),
             "cauchy": lambda z: np.log1p(z),
             "arctan": lambda z: np.arctan(z)}
    if loss not in rules:
        raise ValueError(f"{name}: loss={loss!r} is not one of SciPy's losses")
    return rules[loss]


def least_squares(solver: Callable[..., Any], fun: Callable[..., Any], x0: Any,
                  args: Any = (), kwargs: Any = None,
                  unravel: Callable[[Any], Any] | None = None,
                  name: str = "scipy.optimize.least_squares", **kw: Any) -> Any:
    """``solver``'s ``least_squares``, its solution differentiable (the stationarity of
    the cost, ``J^T rho'(r) r = 0``, not Gauss-Newton); None when nothing is traced."""
    if _off():
        return None
    if not isinstance(args, tuple):
        args = (args,)
    cb = _Callback(fun, args, kwargs)
    if not cb.traced and not _has_tracer(x0):
        return None
    for key in ("f_scale", "loss"):
        if _has_tracer(kw.get(key)):
            raise NoDerivativeRule(f"{name}({key}=traced)", f"{key} is a constant of the "
                                   "implicit derivative: pass a plain value.")
    flat0 = _start(x0)
    if unravel is None:
        shape = np.shape(plain_values(x0))
        unravel = lambda v: np.reshape(v, shape)  # noqa: E731
    rho = _rho(kw.get("loss", "linear"), name)
    c2 = float(kw.get("f_scale", 1.0)) ** 2
    bounds = kw.get("bounds", (-np.inf, np.inf))
    lb, ub = _bounds_arrays(bounds, flat0.size, name, pairs=False)

    def cost(x: Any, ts: list[Any]) -> Any:
        r = _flat_out(cb(ts, unravel(x)))
        return 0.5 * c2 * np.sum(rho(r * r / c2))

    def residual(x: Any, ts: list[Any]) -> Any:
        return grad(lambda y: cost(y, ts))(x)

    def plain_solve(ts: list[Any], xs: Any) -> tuple[Any, ...]:
        f, a, k = cb.bound(ts)
        opts = {key: _plain_callable(v) for key, v in kw.items()}
        res = _plainly(solver, f, unravel(xs), args=a, kwargs=k, **opts)
        active = None if lb is None else np.asarray(res.active_mask, dtype=float)
        return _flat(res.x), bool(res.success), str(res.message), res, active

    x, infos = solution(name, cb.traced, residual, plain_solve, flat0, lb, ub)
    res = _merged(infos, infos[0])
    res.x = unravel(x)
    r = _flat_out(cb(cb.traced, res.x))
    res.fun = r
    res.cost = 0.5 * c2 * np.sum(rho(r * r / c2))
    return res


def _array_like(v: Any) -> Any:
    """A list or tuple of data as the float array SciPy's curve_fit makes of it."""
    if type(v) not in (list, tuple):
        return v
    if not _has_tracer(v):
        return np.asarray(v, dtype=float)
    return np.stack([u if isinstance(u, Tracer) else np.asarray(u, dtype=float) for u in v])


def _n_params(f: Callable[..., Any], name: str) -> int:
    # SciPy's rule: the parameters are f's positional arguments after the first
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: unable to determine number of fit parameters") from e
    params = [p for p in sig.parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(params) < 2:
        raise ValueError(f"{name}: unable to determine number of fit parameters")
    return len(params) - 1


def curve_fit(solver: Callable[..., Any], f: Callable[..., Any], xdata: Any, ydata: Any,
              p0: Any = None, sigma: Any = None, absolute_sigma: bool = False,
              check_finite: Any = None, bounds: Any = (-np.inf, np.inf), method: Any = None,
              jac: Any = None, *, full_output: bool = False, nan_policy: Any = None,
              name: str = "scipy.optimize.curve_fit", **kwargs: Any) -> Any:
    """``solver``'s ``curve_fit``: ``popt`` and ``pcov`` differentiable in ``xdata``,
    ``ydata``, ``sigma`` and what ``f`` closes over; None when nothing is traced."""
    if _off():
        return None
    data = (xdata, ydata, sigma)
    lifted, cparams = lift(f)
    if not cparams and not _has_tracer(data) and not _has_tracer(p0):
        return None
    if nan_policy not in (None, "raise"):
        raise NoDerivativeRule(f"{name}(nan_policy={nan_policy!r})", "With traced data "
                               "the points to omit would be chosen on plain values; drop "
                               "the NaN points from xdata and ydata first.")
    leaves, tdef = tree_flatten(data)
    pos = [i for i, v in enumerate(leaves) if isinstance(v, Tracer)]
    traced = [leaves[i] for i in pos] + list(cparams)
    k = len(pos)
    n = _n_params(f, name) if p0 is None else int(np.size(plain_values(p0)))
    p0p = np.ones(n) if p0 is None else _start(p0)

    def at(ts: list[Any]) -> tuple[Callable[..., Any], Any, Any, Any]:
        full = list(leaves)
        for i, v in zip(pos, ts[:k], strict=True):
            full[i] = v
        xd, yd, sg = (_array_like(v) for v in tree_unflatten(tdef, full))
        closed = tuple(ts[k:])
        model = (lambda x, *p: lifted(x, *p, *closed)) if closed else lifted
        return model, xd, yd, sg

    def weighted(p: Any, ts: list[Any]) -> Any:
        model, xd, yd, sg = at(ts)
        r = np.ravel(model(xd, *[p[j] for j in range(n)])) - np.ravel(yd)
        if sg is None:
            return r
        if len(shape_of(sg)) == 2:
            L = np.linalg.cholesky(sg)
            return sl.solve_triangular(L, r, lower=True)
        return r / np.ravel(sg)

    def residual(p: Any, ts: list[Any]) -> Any:
        return grad(lambda q: 0.5 * np.sum(weighted(q, ts) ** 2))(p)

    lb, ub = _bounds_arrays(bounds, n, name, pairs=False)

    def plain_solve(ts: list[Any], ps: Any) -> tuple[Any, ...]:
        model, xd, yd, sg = at(ts)
        out = _plainly(solver, lambda x, *p: model(x, *p), xd, yd, p0=ps, sigma=sg,
                     absolute_sigma=absolute_sigma, check_finite=check_finite,
                     bounds=bounds, method=method, jac=_plain_callable(jac),
                     full_output=True, nan_policy=nan_policy,
                     **{key: _plain_callable(v) for key, v in kwargs.items()})
        popt, _, info, mesg, ier = out
        ok = ier in (1, 2, 3, 4)
        return popt, ok, str(mesg), out, _active(np.asarray(popt, dtype=float), lb, ub)

    popt, infos = solution(name, traced, residual, plain_solve, p0p, lb, ub)
    pcov = _pcov(name, lambda q: weighted(q, traced), popt, n, absolute_sigma)
    if len(infos) == 1 and np.all(np.isfinite(infos[0][1])):
        # SciPy's own numbers (its Jacobian may be a finite-difference one), with the
        # derivative of the formula: P - stop_gradient(P) is exactly 0
        pcov = infos[0][1] + (pcov - without_derivatives(pcov))
    if full_output:
        _, _, info, mesg, ier = infos[0]
        return popt, pcov, info, mesg, ier
    return popt, pcov


def _pcov(name: str, weighted: Callable[[Any], Any], popt: Any, n: int,
          absolute_sigma: bool) -> Any:
    """SciPy's covariance of the parameters at the traced ``popt``: ``(J^T J)^-1`` of the
    weighted residuals' Jacobian, times the residual variance unless ``absolute_sigma``
    (inf where there are no more data than parameters, as SciPy gives it)."""
    J = jacfwd(weighted)(popt)
    Jp = np.asarray(concrete(J), dtype=float)
    s = np.linalg.svd(Jp, compute_uv=False)
    smax = np.max(s, axis=-1, keepdims=True) if s.size else s
    if s.size and np.any(s <= np.finfo(float).eps * max(Jp.shape[-2:]) * smax):
        raise SingularSolutionError(f"{name} (pcov)", np.inf)
    pcov = np.linalg.inv(np.transpose(J) @ J)
    if absolute_sigma:
        return pcov
    m = shape_of(J)[0]
    if m > n:
        r = weighted(popt)
        return pcov * (np.sum(r * r) / (m - n))
    return np.full((n, n), np.inf)


# ------------------------------------------------------------------ scalar roots
def _scalar_root(name: str, cb: _Callback, start: Any,
                 plain_solve: Callable[..., Any]) -> tuple[Any, list[Any]]:
    """A scalar root; ``start`` the flat vector the solver starts from (a bracket, x0),
    batched under vmap, handed to ``plain_solve(ts, start)`` as plain floats."""
    def residual(x: Any, ts: list[Any]) -> Any:
        return np.reshape(cb(ts, x[0]), (1,))

    x, infos = solution(name, cb.traced, residual, plain_solve, start, n=1)
    return x[0], infos


def bracketing(method: str, solver: Callable[..., Any]) -> Callable[..., Any]:
    """scipy.optimize.<method> (brentq, brenth, ridder, bisect, toms748) with its root
    differentiable in what ``f`` reaches: dx = -f_theta dtheta / f_x."""
    where = f"scipy.optimize.{method}"

    def handler(f: Callable[..., Any], a: Any, b: Any, args: Any = (), *rest: Any,
                full_output: bool = False, **kw: Any) -> Any:
        if not isinstance(args, tuple):
            args = (args,)
        if _off():
            return solver(_checked(f, where), a, b, args, *rest, full_output=full_output,
                          **kw)
        cb = _Callback(f, args)
        if not cb.traced and not _has_tracer((a, b)):
            return solver(_checked(f, where), a, b, args, *rest, full_output=full_output,
                          **kw)
        # (a traced bracket alone: the root does not depend on it, but under vmap each
        # element has its own; its derivatives are dropped)

        def plain_solve(ts: list[Any], ab: Any) -> tuple[Any, ...]:
            g, a_, _ = cb.bound(ts)
            x, r = _plainly(solver, g, float(ab[0]), float(ab[1]), a_, *rest,
                            full_output=True, **kw)
            return np.array([x]), bool(r.converged), str(r.flag), r, None

        x, infos = _scalar_root(where, cb, _start((a, b)), plain_solve)
        if full_output:
            r = _merged(infos, infos[0])
            return x, r
        return x

    return handler


def _checked(f: Callable[..., Any], where: str) -> Callable[..., Any]:
    """``f`` for SciPy's C solvers, which would turn a traced value into SystemError."""
    def checked(x: Any, *args: Any) -> Any:
        value = f(x, *args)
        if isinstance(value, Tracer):
            raise NoDerivativeRule(where, "Its function returned a traced value that "
                                   "dualrev did not find among its arguments or closure "
                                   "(a global, or an attribute of an object): pass it "
                                   "through args=(...) so that the root is differentiated.")
        return value

    return checked


def newton(solver: Callable[..., Any], func: Callable[..., Any], x0: Any,
           fprime: Any = None, args: Any = (), *rest: Any, full_output: bool = False,
           name: str = "scipy.optimize.newton", **kw: Any) -> Any:
    """``solver``'s ``newton`` (scalar or elementwise on an array ``x0``), its root
    differentiable; None when nothing is traced."""
    if _off():
        return None
    if not isinstance(args, tuple):
        args = (args,)
    cb = _Callback(func, args)
    if not cb.traced and not _has_tracer(x0):
        return None
    flat0 = _start(x0)
    shape = np.shape(plain_values(x0))

    def residual(x: Any, ts: list[Any]) -> Any:
        return np.ravel(cb(ts, np.reshape(x, shape) if shape else x[0]))

    def plain_solve(ts: list[Any], xs: Any) -> tuple[Any, ...]:
        f, a, _ = cb.bound(ts)
        out = _plainly(solver, f, np.reshape(xs, shape) if shape else float(xs[0]),
                     _plain_callable(fprime), a, *[_plain_callable(v) for v in rest],
                     full_output=True, **{k: _plain_callable(v) for k, v in kw.items()})
        if shape:
            x, converged, _ = out
            return x, bool(np.all(converged)), "not every element converged", out, None
        x, r = out
        return np.array([x]), bool(r.converged), str(r.flag), out, None

    x, infos = solution(name, cb.traced, residual, plain_solve, flat0)
    x = np.reshape(x, shape) if shape else x[0]
    if full_output:
        out = infos[0]
        return (x, *out[1:])
    return x


def root_scalar(solver: Callable[..., Any], f: Callable[..., Any], args: Any = (),
                name: str = "scipy.optimize.root_scalar", **kw: Any) -> Any:
    """``solver``'s ``root_scalar``, ``.root`` differentiable; None when nothing is
    traced."""
    if _off():
        return None
    if not isinstance(args, tuple):
        args = (args,)
    cb = _Callback(f, args)
    if not cb.traced and not _has_tracer(kw):
        return None
    if kw.get("fprime") is True or kw.get("fprime2") is True:
        value = lambda ts, x: cb(ts, x)[0]  # noqa: E731
    else:
        value = cb
    # where the solver starts (x0, x1, the bracket): per element under vmap, no derivative
    where = [k for k in ("x0", "x1") if kw.get(k) is not None]
    bracket = kw.get("bracket")
    starts = [kw[k] for k in where] + ([] if bracket is None else [bracket[0], bracket[1]])
    opts = {k: _plain_callable(v) for k, v in kw.items() if k not in ("x0", "x1", "bracket")}

    def plain_solve(ts: list[Any], st: Any) -> tuple[Any, ...]:
        g, a, _ = cb.bound(ts)
        more = {k: float(st[i]) for i, k in enumerate(where)}
        if bracket is not None:
            more["bracket"] = (float(st[len(where)]), float(st[len(where) + 1]))
        r = _plainly(solver, g, args=a, **opts, **more)
        return np.array([r.root]), bool(r.converged), str(r.flag), r, None

    def residual(x: Any, ts: list[Any]) -> Any:
        return np.reshape(value(ts, x[0]), (1,))

    x, infos = solution(name, cb.traced, residual, plain_solve,
                        _start(tuple(starts)) if starts else np.zeros(0), n=1)
    r = _merged(infos, infos[0])
    r.root = x[0]
    return r


def minimize_scalar(solver: Callable[..., Any], fun: Callable[..., Any], bracket: Any = None,
                    bounds: Any = None, args: Any = (), method: Any = None, tol: Any = None,
                    options: Any = None,
                    name: str = "scipy.optimize.minimize_scalar") -> Any:
    """``solver``'s ``minimize_scalar``, ``.x`` (and ``.fun``) differentiable: the
    stationarity ``f'(x) = 0``, or the bound held where the solution is on one; None when
    nothing is traced."""
    if _off():
        return None
    if not isinstance(args, tuple):
        args = (args,)
    cb = _Callback(fun, args)
    if not cb.traced and not _has_tracer((bracket, bounds)):
        return None
    lb, ub = (None, None) if bounds is None else _bounds_arrays(
        ([bounds[0]], [bounds[1]]), 1, name, pairs=False)
    br = [] if bracket is None else list(bracket)  # per element under vmap

    def plain_solve(ts: list[Any], st: Any) -> tuple[Any, ...]:
        f, a, _ = cb.bound(ts)
        res = _plainly(solver, f, bracket=None if bracket is None else tuple(
            float(v) for v in st), bounds=bounds, args=a, method=method, tol=tol,
            options=options)
        x = np.array([float(res.x)])
        return x, bool(res.success), str(res.get("message", "")), res, _active(x, lb, ub)

    def residual(x: Any, ts: list[Any]) -> Any:
        return np.reshape(grad(lambda y: cb(ts, y))(x[0]), (1,))

    x, infos = solution(name, cb.traced, residual, plain_solve,
                        _start(tuple(br)) if br else np.zeros(0), lb, ub, n=1)
    res = _merged(infos, infos[0])
    res.x = x[0]
    res.fun = cb(cb.traced, res.x)
    return res


# ------------------------------------------------------------------ SciPy's names
def _by_name(original: Callable[..., Any]) -> Callable[..., dict[str, Any]]:
    """The arguments of a call of ``original`` by their names in its signature (so that
    positional arguments reach the front end's keyword of the same name)."""
    sig = inspect.signature(original)
    var_kw = [q.name for q in sig.parameters.values() if q.kind is q.VAR_KEYWORD]

    def named(*args: Any, **kwargs: Any) -> dict[str, Any]:
        arguments = dict(sig.bind(*args, **kwargs).arguments)
        for name in var_kw:
            arguments.update(arguments.pop(name, {}))
        return arguments

    return named


def _reaches_tracer(v: Any, depth: int = 0) -> bool:
    """Whether a solver's argument is or holds a traced value (in containers, or in the
    closure of a function): the dispatchers' test before anything else, so that plain
    calls pay a few hundred nanoseconds."""
    if isinstance(v, Tracer):
        return True
    if depth > 8:
        return True  # deeply nested: let the front end's full search decide
    if type(v) in (tuple, list):
        return any(_reaches_tracer(u, depth + 1) for u in v)
    if type(v) is dict:
        return any(_reaches_tracer(u, depth + 1) for u in v.values())
    if isinstance(v, types.FunctionType):
        return v.__closure__ is not None and bool(lift(v)[1])
    if isinstance(v, (np.ndarray, np.generic, float, int, str, type(None))):
        return False
    return True  # another object: the full search (tree_flatten, lift)


def _install() -> None:
    def front(impl: Callable[..., Any], original: Callable[..., Any]) -> Callable[..., Any]:
        named = _by_name(original)

        def handler(*args: Any, **kwargs: Any) -> Any:
            if _off() or not (any(_reaches_tracer(v) for v in args)
                              or any(_reaches_tracer(v) for v in kwargs.values())):
                return original(*args, **kwargs)
            out = impl(original, **named(*args, **kwargs))
            return original(*args, **kwargs) if out is None else out

        return handler

    for nm, impl in (("minimize", minimize), ("root", root), ("fsolve", fsolve),
                     ("least_squares", least_squares), ("curve_fit", curve_fit),
                     ("fixed_point", fixed_point), ("newton", newton),
                     ("root_scalar", root_scalar), ("minimize_scalar", minimize_scalar)):
        original = getattr(so, nm)
        original = ORIGINALS.get(original, original)
        dispatch(so, nm, front(impl, original), always=True)
    for nm in ("brentq", "brenth", "ridder", "bisect", "toms748"):
        original = getattr(so, nm)
        original = ORIGINALS.get(original, original)
        dispatch(so, nm, _named_front(bracketing(nm, original), original), always=True)


def _named_front(handler: Callable[..., Any], original: Callable[..., Any]) -> Callable[..., Any]:
    named = _by_name(original)
    where = f"scipy.optimize.{original.__name__}"

    def front(f: Any, *args: Any, **kwargs: Any) -> Any:
        if _off() or not (_reaches_tracer(f) or any(_reaches_tracer(v) for v in args)
                          or any(_reaches_tracer(v) for v in kwargs.values())):
            # SciPy's C code turns a traced value it meets (read from a global or an
            # object, where dualrev does not look) into SystemError, or leaves its error
            # pending for the next Python operation: each value is checked before
            return original(_checked(f, where), *args, **kwargs)
        return handler(**named(f, *args, **kwargs))

    return front


_install()
