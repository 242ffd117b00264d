"""scipy.integrate with exact derivatives: ``solve_ivp``, ``odeint``, ``quad``, ``dblquad``,
``tplquad``, ``nquad`` and ``quad_vec``.

SciPy's integrators do the integration; dualrev differentiates the result with respect to
the initial state, the time span, the output times and the traced leaves of ``args``, and
the traced values the callbacks close over (made arguments by ``dualrev.closure.lift``).

* ``solve_ivp`` is one primitive whose forward rule integrates the variational equations
  (the state and its tangent together, ``d(dy)/dt = J_y f dy + J_p f dp``) and whose
  reverse rule integrates the adjoint ``a' = -J_y^T a`` backwards (``adjoint_p``), ``y``
  read from the dense output of a forward solve (stable for stiff systems, where
  integrating ``y`` backwards is not). The forward rule is a call of the same primitive on
  a larger system, and ``adjoint_p``'s own rules are second-order adjoints, so
  derivatives nest (Hessians, ``jacfwd`` of ``jacfwd``), each to the integration
  tolerance. Event times are ``event_p``: SciPy's solve with the events, differentiated
  by the implicit function theorem on ``event(t*, y(t*; θ), θ) = 0``.
* ``quad`` is one primitive: Leibniz's rule for the limits, and the quad of the
  integrand's JVP for the parameters (a quad per parameter element in reverse mode).

* ``odeint`` is one primitive whose value is SciPy's odeint and whose rules are
  ``solve_ivp``'s, the derived systems integrated by ``solve_ivp(method='LSODA')``.
* ``dblquad`` is an outer ``quad`` of inner ``quad``s, ``tplquad`` an outer ``quad`` of
  ``dblquad``s (the inner integrand a closure over ``x``), ``nquad`` nested ``quad``s the
  same way; ``quad_vec`` one primitive with
  Leibniz's rule elementwise (the parameters' VJP a ``quad_vec`` of the integrand's VJP).

All are installed at ``import dualrev`` as ``scipy.integrate.<name>``, so SciPy's
spelling works on traced arguments; with plain arguments SciPy's own functions run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.integrate as si
import scipy.linalg as sl
from scipy.integrate._ivp.ivp import OdeResult

from . import config
from .batching import batch_by_loop, without_derivatives
from .catalogue.scipy_functions import ORIGINALS, dispatch
from .closure import closure_error as _closure_error
from .closure import lift_all
from .debug import checking, rhs_error
from .errors import BatchedValueError, ClosureError, DualrevError, NoDerivativeRule
from .primitive import Primitive, Tracer, bind, concrete, shape_of, strip
from .reverse import Tape
from .tracer import new_level
from .transforms import jacfwd, jvp, vjp, vmap
from .tree import tree_flatten, tree_map, tree_unflatten

__all__ = ["dblquad", "nquad", "odeint", "quad", "quad_vec", "solve_ivp", "tplquad"]

_scipy_solve_ivp = ORIGINALS.get(si.solve_ivp, si.solve_ivp)
_scipy_quad = ORIGINALS.get(si.quad, si.quad)
_scipy_odeint = ORIGINALS.get(si.odeint, si.odeint)
_scipy_dblquad = ORIGINALS.get(si.dblquad, si.dblquad)
_scipy_quad_vec = ORIGINALS.get(si.quad_vec, si.quad_vec)
_scipy_tplquad = ORIGINALS.get(si.tplquad, si.tplquad)
_scipy_nquad = ORIGINALS.get(si.nquad, si.nquad)

_SOLVE_IVP = "scipy.integrate.solve_ivp"
_ODEINT = "scipy.integrate.odeint"

# Options that describe the user's system only; the derived systems (variational,
# adjoint, batched) let SciPy estimate their Jacobians instead.
_SYSTEM_ONLY = ("jac", "jac_sparsity", "lband", "uband")


_ClosureError = ClosureError


def _has_tracer(tree: Any) -> bool:
    return any(isinstance(v, Tracer) for v in tree_flatten(tree)[0])


def _split_args(args: Any) -> tuple[list[Any], Any, list[int]]:
    """The leaves of ``args``, its structure, and the positions of the traced leaves."""
    leaves, tdef = tree_flatten(args)
    return leaves, tdef, [i for i, v in enumerate(leaves) if isinstance(v, Tracer)]


def _with_leaves(fun: Callable[..., Any], leaves: list[Any], tdef: Any,
                 pos: list[int]) -> Callable[..., Any]:
    """``fun(x, *args)`` as ``g(x, *traced_leaves)``: the traced leaves of ``args`` become
    positional arguments, the others are constants."""
    static = [None if i in pos else v for i, v in enumerate(leaves)]

    def g(t: Any, y: Any, *traced: Any) -> Any:
        full = list(static)
        for i, v in zip(pos, traced, strict=True):
            full[i] = v
        return fun(t, y, *tree_unflatten(tdef, full))

    return g


def _vector(out: Any, y: Any) -> Any:
    """A right-hand side's value as an array of ``y``'s shape (SciPy accepts lists)."""
    if isinstance(out, (list, tuple)):
        out = np.stack([np.reshape(o, ()) for o in out]) if _has_tracer(out) else np.asarray(out)
    if isinstance(y, np.ndarray) and y.ndim == 1 or isinstance(y, Tracer):
        return np.reshape(out, shape_of(y))
    return out


def _derived(options: dict[str, Any], tile: int = 0) -> dict[str, Any]:
    """The options for a system built from the user's: no user Jacobian; a per-component
    ``atol`` repeated ``tile`` times (batched copies), or its smallest entry for the
    variational and adjoint systems (``tile=0``)."""
    out = {k: v for k, v in options.items() if k not in _SYSTEM_ONLY}
    atol = out.get("atol")
    if atol is not None and np.ndim(atol):
        out["atol"] = np.tile(np.asarray(atol), tile) if tile else float(np.min(atol))
    return out


# ------------------------------------------------------------------ solve_ivp
def _plain_rhs(rhs: Callable[..., Any], leaves: tuple[Any, ...],
               name: str) -> Callable[[float, np.ndarray], Any]:
    """``rhs(t, y, *leaves)`` as SciPy calls it, on plain values."""
    def f(t: float, y: np.ndarray) -> Any:
        out = rhs(t, y, *leaves)
        if isinstance(out, Tracer):
            raise _closure_error(name, "func" if name == _ODEINT else "fun")
        return out
    return f


def _checked_rhs(rhs: Callable[..., Any], leaves: tuple[Any, ...],
                 name: str) -> Callable[[float, np.ndarray], Any]:
    """``_plain_rhs`` under dualrev.debug_nans: a non-finite derivative of the state
    (SciPy's step control may loop on it for ever) raises ``NonFiniteError`` at the
    operation of the user's function that made it, found by running the function once
    more on traced values (the mode's checks locate it)."""
    plain = _plain_rhs(rhs, leaves, name)

    def f(t: float, y: np.ndarray) -> Any:
        out = plain(t, y)
        if not np.all(np.isfinite(out) if config.DEBUG_INFS else ~np.isnan(out)):
            tape = Tape(new_level(), "dualrev.debug_nans")
            try:
                with checking():  # (also inside a backward pass: values are checked)
                    traced = [tape.input(np.array(v, float))
                              if np.asarray(v).dtype.kind == "f" else v
                              for v in (y, *leaves)]
                    rhs(t, *traced)
            finally:
                tape.finish()
            raise rhs_error(name, rhs, t, y, out)
        return out
    return f


_RHS = _plain_rhs


@config.on_debug_nans
def _choose_debug(on: bool) -> None:
    global _RHS
    _RHS = _checked_rhs if on else _plain_rhs


def _plain_solve(y0: Any, t0: float, end: float, t_eval: Any, leaves: tuple[Any, ...],
                 rhs: Callable[..., Any], method: Any, options: dict[str, Any],
                 vectorized: bool, dense: bool = False, name: str = _SOLVE_IVP,
                 events: Any = None) -> Any:
    """SciPy's solve of ``rhs(t, y, *leaves)`` on plain values (the user's ``jac`` and
    ``events`` given their arguments as ``fun`` is); raises if it fails, naming the
    user's function (``name``: solve_ivp, or odeint whose derivatives are solve_ivp
    solves)."""
    f = _RHS(rhs, leaves, name)
    jac = options.get("jac")
    if callable(jac):  # the user's jac(t, y, *args), given its arguments as fun is
        options = {**options, "jac": lambda t, y: jac(t, y, *leaves)}
    if events is not None:
        events = [_bound_event(e, leaves) for e in events]
    r = _scipy_solve_ivp(f, (t0, end), np.asarray(y0), method=method, t_eval=t_eval,
                         vectorized=vectorized, dense_output=dense, events=events,
                         **options)
    if not r.success:
        raise DualrevError(f"dualrev: {name} failed while computing a derivative "
                           f"({r.message}); its derivative is undefined there")
    return r


def _solve_impl(y0: Any, t0: Any, t_eval: Any, *leaves: Any, rhs: Callable[..., Any],
                method: Any, options: dict[str, Any], vectorized: bool, t_bound: Any,
                holder: list[Any] | None, name: str = _SOLVE_IVP) -> np.ndarray:
    t_eval = np.asarray(t_eval, float)
    t0 = float(t0)
    end = float(t_eval[-1]) if t_bound is None else t_bound
    r = _plain_solve(y0, t0, end, t_eval, leaves, rhs, method, options, vectorized,
                     name=name)
    if end == t0 and np.all(t_eval == t0):  # SciPy returns no values then
        r.y = np.repeat(np.asarray(y0)[:, None], t_eval.shape[0], axis=1)
    if r.y.shape[1] != t_eval.shape[0]:
        raise DualrevError(f"dualrev: {name} failed while computing a derivative "
                           f"({r.message}); its derivative is undefined there")
    if holder is not None:
        holder.append(r)
    return r.y


solve_p = Primitive("scipy.integrate.solve_ivp", _solve_impl)


def _variational_options(options: dict[str, Any], method: Any, rhs: Callable[..., Any],
                         n: int, nleaves: int) -> dict[str, Any]:
    """The options of the variational system ``[y, dy]``: the user's, and for an
    implicit method the Jacobian ``diag(J_y, J_y)`` (the simultaneous-corrector
    approximation CVODES makes: the term ``d(J_y dy)/dy`` is left out of the Newton
    matrix only, not of the system), so SciPy does not estimate it column by column."""
    out = _derived(options)
    if not _implicit(method):
        return out

    def jac(t: float, z: np.ndarray, *ps: Any) -> np.ndarray:
        j = np.asarray(jacfwd(lambda y: rhs(t, y, *ps[:nleaves]))(z[:n]), float)
        blocks = np.zeros((2 * n, 2 * n))
        blocks[:n, :n] = blocks[n:, n:] = j
        return blocks

    out["jac"] = jac
    return out


def _solve_jvp(tangents: list[Any], ans: Any, y0: Any, t0: Any, t_eval: Any, *leaves: Any,
               rhs: Callable[..., Any], method: Any, options: dict[str, Any],
               vectorized: bool, t_bound: Any, holder: Any, name: str = _SOLVE_IVP) -> Any:
    """The variational equations, integrated as one more solve (so they nest)."""
    dy0, dt0, dte, *dls = tangents
    n = shape_of(y0)[0]
    if dy0 is None and dt0 is None and all(d is None for d in dls):
        # only output times move: no variational part, f(t_k, y_k) dt_k alone
        m = shape_of(t_eval)[0]
        if ans is None:
            ans = bind(solve_p, (y0, t0, t_eval, *leaves),
                       dict(rhs=rhs, method=method, options=options, vectorized=vectorized,
                            t_bound=t_bound, holder=None, name=name))
        fs = np.stack([rhs(t_eval[k], ans[:, k], *leaves) for k in range(m)], axis=1)
        return fs * dte
    dy0 = np.zeros(n) if dy0 is None else dy0
    if dt0 is not None:  # moving the start moves the trajectory by -f(t0, y0) dt0
        dy0 = dy0 - rhs(t0, y0, *leaves) * dt0
    which = [i for i, d in enumerate(dls) if d is not None]

    def rhs_aug(t: Any, z: Any, *ps: Any) -> Any:
        ls, ds = ps[:len(leaves)], ps[len(leaves):]
        y, dy = z[:n], z[n:]

        def g(y_: Any, *sub: Any) -> Any:
            full = list(ls)
            for i, v in zip(which, sub, strict=True):
                full[i] = v
            return rhs(t, y_, *full)

        f, df = jvp(g, (y, *[ls[i] for i in which]), (dy, *ds))
        return np.concatenate([f, df])

    z0 = np.concatenate([y0, dy0])
    z = bind(solve_p, (z0, t0, t_eval, *leaves, *[dls[i] for i in which]),
             dict(rhs=rhs_aug, method=method, options=_variational_options(
                 options, method, rhs, n, len(leaves)), vectorized=False,
                  t_bound=t_bound, holder=None, name=name))
    out = z[n:]
    if dte is not None:  # moving an output time moves its value by f(t_k, y_k) dt_k
        m = shape_of(t_eval)[0]
        if ans is None:  # the solution from the same solve (differentiable with it)
            ans = z[:n]
        fs = np.stack([rhs(t_eval[k], ans[:, k], *leaves) for k in range(m)], axis=1)
        out = out + fs * dte
    return out


_IMPLICIT = ("Radau", "BDF", "LSODA")


def _implicit(method: Any) -> bool:
    """Whether SciPy's ``method`` takes a Jacobian (``jac``)."""
    if isinstance(method, str):
        return method in _IMPLICIT
    return isinstance(method, type) and issubclass(
        method, (si.Radau, si.BDF, si.LSODA))


# Reverse mode's tolerances relative to the user's: the forward trajectory (a plain
# solve, cheap beside the traced adjoint) a hundred times tighter, the adjoint ten times:
# the adjoint reads y between steps from the interpolant and accumulates the parameter
# cotangents as quadratures, each a source of error forward mode does not have. Measured
# on tests/ode_family.py (van der Pol mu=100, LSODA, rtol 1e-8: 6.1e-7 -> 3.4e-8; Robertson,
# BDF, 1e-8: 2.3e-7 -> 3.1e-8), for about the same time.
_TRAJECTORY, _ADJOINT = 1e-2, 1e-1


def _tighter(options: dict[str, Any], factor: float) -> dict[str, Any]:
    """``options`` with ``rtol`` and ``atol`` (SciPy's defaults where absent) times
    ``factor``, ``rtol`` kept above SciPy's floor (100 eps, where it warns)."""
    out = dict(options)
    out["rtol"] = np.maximum(np.asarray(out.get("rtol", 1e-3), float) * factor, 1e-13)
    out["atol"] = np.asarray(out.get("atol", 1e-6), float) * factor
    for key in ("rtol", "atol"):
        if out[key].ndim == 0:
            out[key] = float(out[key])
    return out


def _adjoint_impl(g: Any, y0: Any, t0: Any, t_eval: Any, *leaves: Any,
                  rhs: Callable[..., Any], method: Any, options: dict[str, Any],
                  vectorized: bool, t_bound: Any, name: str = _SOLVE_IVP) -> np.ndarray:
    """The cotangents ``[y0 (n), t0 (1), leaves (flat)]`` of ``sum(g * y(t_eval))``: the
    adjoint ``a' = -J_y^T a``, ``p' = -J_p^T a`` integrated backwards segment by segment
    between the output times (each output's cotangent added to ``a`` at its time), with
    ``y(t)`` read from the dense output of one forward solve: the forward trajectory is
    stable where the backward one is not (a stiff or decaying system)."""
    g = np.asarray(g, float)
    y0 = np.asarray(y0, float)
    t_eval = np.asarray(t_eval, float)
    t0 = float(t0)
    n, m = y0.shape[0], t_eval.shape[0]
    leaves = tuple(np.asarray(v, float) for v in leaves)
    shapes = [v.shape for v in leaves]
    sizes = [v.size for v in leaves]
    psize = sum(sizes)
    far = t_eval[np.argmax(np.abs(t_eval - t0))]
    if far != t0:
        try:
            r = _plain_solve(y0, t0, far, None, leaves, rhs, method,
                             _tighter(options, _TRAJECTORY), vectorized, dense=True,
                             name=name)
        except DualrevError:  # too tight for the method: the user's own tolerances
            r = _plain_solve(y0, t0, far, None, leaves, rhs, method, options, vectorized,
                             dense=True, name=name)
        traj = r.sol
    else:
        traj = None

    def unflat(q: np.ndarray) -> list[np.ndarray]:
        out, start = [], 0
        for shape, size in zip(shapes, sizes, strict=True):
            out.append(np.reshape(q[start:start + size], shape))
            start += size
        return out

    def fun(t: float, s: np.ndarray) -> np.ndarray:
        y = traj(t)
        _, pull = vjp(lambda y_, *l_: rhs(t, y_, *l_), y, *leaves)
        cts = pull(s[:n])
        return -np.concatenate([np.reshape(np.asarray(c, float), (-1,)) for c in cts])

    def jac(t: float, s: np.ndarray) -> np.ndarray:
        y = traj(t)
        flat = np.concatenate([y, *[np.reshape(v, (-1,)) for v in leaves]])
        j = np.asarray(jacfwd(lambda q: rhs(t, q[:n], *unflat(q[n:])))(flat), float)
        out = np.zeros((n + psize, n + psize))
        out[:, :n] = -j.T  # d(-J^T a)/da; the parameter cotangents are quadratures
        return out

    loose = {k: v for k, v in _derived(options).items() if k != "first_step"}
    if _implicit(method):
        loose["jac"] = jac
    tight = _tighter(loose, _ADJOINT)

    def back(s: np.ndarray, t_from: float, t_to: float) -> np.ndarray:
        r = _scipy_solve_ivp(fun, (t_from, t_to), s, method=method, **tight)
        if not r.success:  # too tight for the method: the user's own tolerances
            r = _scipy_solve_ivp(fun, (t_from, t_to), s, method=method, **loose)
        if not r.success:
            raise DualrevError(f"dualrev: {name} failed while "
                               f"integrating the adjoint for a reverse-mode derivative "
                               f"({r.message}); its derivative is undefined there")
        return r.y[:, -1]

    s = np.concatenate([g[:, m - 1], np.zeros(psize)])
    for k in range(m - 1, 0, -1):
        if t_eval[k] != t_eval[k - 1]:
            s = back(s, t_eval[k], t_eval[k - 1])
        s[:n] += g[:, k - 1]
    if t_eval[0] != t0:
        s = back(s, t_eval[0], t0)
    a = s[:n]
    dt0 = -np.sum(a * np.asarray(rhs(t0, y0, *leaves), float))
    return np.concatenate([a, [dt0], s[n:]])


adjoint_p = Primitive("scipy.integrate.solve_ivp (adjoint)", _adjoint_impl)


def _as_cotangents(v: Any, y0: Any, leaves: tuple[Any, ...]) -> list[Any]:
    """The flat ``[y0, t0, leaves]`` vector of ``adjoint_p`` split into one value per
    input, each of its input's shape."""
    n = shape_of(y0)[0]
    out = [v[:n], v[n]]
    start = n + 1
    for leaf in leaves:
        shape = shape_of(leaf)
        size = int(np.prod(shape))
        out.append(np.reshape(v[start:start + size], shape))
        start += size
    return out


def _second_order(g: Any, dirs: list[Any], y0: Any, t0: Any, t_eval: Any,
                  leaves: tuple[Any, ...], params: dict[str, Any]) -> list[Any]:
    """The gradient in ``(y0, t0, t_eval, *leaves)`` of ``sum(g * V)``, ``V`` the
    solution's derivative along ``dirs`` (the variational equations, one solve of
    ``[y, dy]``): the derivative of the adjoint's cotangents along ``dirs``, each a
    differentiable reverse-mode solve (so it nests)."""
    solve = dict(params, holder=None)

    def inner(y0_: Any, t0_: Any, te_: Any, *ls: Any) -> Any:
        v = _solve_jvp(list(dirs), None, y0_, t0_, te_, *ls, **solve)
        return np.sum(g * v)

    return list(vjp(inner, y0, t0, t_eval, *leaves)[1](1.0))


def _adjoint_jvp(tangents: list[Any], ans: Any, g: Any, y0: Any, t0: Any, t_eval: Any,
                 *leaves: Any, **params: Any) -> Any:
    """d(J^T g) = J^T dg + (dJ)^T g, the second term the gradient of ``g . J dθ``
    (a Hessian is symmetric)."""
    dg, *dtheta = tangents
    out: Any = np.zeros(shape_of(ans))
    if dg is not None:
        out = out + bind(adjoint_p, (dg, y0, t0, t_eval, *leaves), params)
    if any(d is not None for d in dtheta):
        grads = _second_order(g, dtheta, y0, t0, t_eval, leaves, params)
        del grads[2]  # adjoint_p gives no t_eval cotangent (solve_p's rule has its own)
        out = out + np.concatenate([np.reshape(c, (-1,)) for c in grads])
    return out


_last_adj: list[Any] = [None, None, None]  # (w, ans, cotangents): one solve for all inputs


def _adjoint_vjp(i: int, w: Any, ans: Any, g: Any, y0: Any, t0: Any, t_eval: Any,
                 *leaves: Any, **params: Any) -> Any:
    """The cotangent ``w`` of ``J^T g``: ``J w`` for ``g`` (a forward solve), the gradient
    of ``g . J w`` for the inputs."""
    parts = _as_cotangents(w, y0, leaves)
    dirs = [parts[0], parts[1], None, *parts[2:]]
    if i == 0:
        return _solve_jvp(dirs, None, y0, t0, t_eval, *leaves, **dict(params, holder=None))
    if _last_adj[0] is not w or _last_adj[1] is not ans:
        _last_adj[:] = [w, ans, _second_order(g, dirs, y0, t0, t_eval, leaves, params)]
    return _last_adj[2][i - 1]


adjoint_p.defjvp_joint(_adjoint_jvp)
adjoint_p.defvjp_indexed(_adjoint_vjp)
adjoint_p.defbatch(lambda args, batched, **params: batch_by_loop(
    adjoint_p, list(args), batched, params, next(
        shape_of(a)[0] for a, b in zip(args, batched, strict=True) if b)))


_last: list[Any] = [None, None, None]  # (g, ans, cotangents): one adjoint for all inputs


def _solve_vjp(i: int, g: Any, ans: Any, y0: Any, t0: Any, t_eval: Any, *leaves: Any,
               rhs: Callable[..., Any], method: Any, options: dict[str, Any],
               vectorized: bool, t_bound: Any, holder: Any, name: str = _SOLVE_IVP) -> Any:
    if i == 2:  # the output times: each value moves by f(t_k, y_k) dt_k
        m = shape_of(t_eval)[0]
        fs = np.stack([rhs(t_eval[k], ans[:, k], *leaves) for k in range(m)], axis=1)
        return np.sum(g * fs, axis=0)
    # The tape asks once per traced input with the same g: solve the adjoint once.
    if _last[0] is not g or _last[1] is not ans:
        v = bind(adjoint_p, (g, y0, t0, t_eval, *leaves),
                 dict(rhs=rhs, method=method, options=options, vectorized=vectorized,
                      t_bound=t_bound, name=name))
        _last[:] = [g, ans, _as_cotangents(v, y0, leaves)]
    cts = _last[2]
    return cts[i] if i < 2 else cts[i - 1]


def _solve_batch(args: list[Any], batched: tuple[bool, ...], **params: Any) -> Any:
    """A batch of problems as one system of all their states (one SciPy solve; the step
    size is the one the hardest member needs); a batch of start or output times, which
    one solve cannot serve, by a loop."""
    y0, t0, t_eval, *leaves = args
    size = next(shape_of(a)[0] for a, b in zip(args, batched, strict=True) if b)
    if batched[1] or batched[2]:
        return batch_by_loop(solve_p, list(args), batched, params, size)
    n = shape_of(y0)[-1]
    y0s = y0 if batched[0] else np.broadcast_to(y0, (size, n))
    bl = batched[3:]
    rhs = params["rhs"]

    def rhs_b(t: Any, z: Any, *ls: Any) -> Any:
        def one(y: Any, *mapped: Any) -> Any:
            it = iter(mapped)
            return rhs(t, y, *[next(it) if b else v for v, b in zip(ls, bl, strict=True)])

        out = vmap(one)(np.reshape(z, (size, n)), *[v for v, b in zip(ls, bl, strict=True)
                                                     if b])
        return np.reshape(out, (size * n,))

    options = _derived(params["options"], tile=size)
    jac = params["options"].get("jac")
    if callable(jac):  # each member's Jacobian, on the diagonal
        def jac_b(t: float, z: np.ndarray, *ls: Any) -> np.ndarray:
            zs = np.reshape(z, (size, n))
            return sl.block_diag(*[np.asarray(jac(t, zs[m], *[v[m] if b else v for v, b in
                                                              zip(ls, bl, strict=True)]))
                                   for m in range(size)])

        options["jac"] = jac_b
    new = {**params, "rhs": rhs_b, "vectorized": False, "options": options}
    out = bind(solve_p, (np.reshape(y0s, (size * n,)), t0, t_eval, *leaves), new)
    return np.reshape(out, (size, n, shape_of(out)[-1]))


solve_p.defjvp_joint(_solve_jvp)
solve_p.defvjp_indexed(_solve_vjp)
solve_p.defbatch(_solve_batch)


# ------------------------------------------------------------------ events
def _with_attributes(new: Callable[..., Any], old: Any) -> Callable[..., Any]:
    """``new`` with SciPy's event attributes (``terminal``, ``direction``) of ``old``."""
    for attr in ("terminal", "direction"):
        if hasattr(old, attr):
            setattr(new, attr, getattr(old, attr))
    return new


def _bound_event(event: Callable[..., Any], leaves: tuple[Any, ...]) -> Callable[..., Any]:
    """``event(t, y, *leaves)`` as SciPy's ``event(t, y)`` on plain values."""
    def e(t: float, y: np.ndarray) -> Any:
        out = event(t, y, *leaves)
        if isinstance(out, Tracer):
            raise _closure_error(_SOLVE_IVP, "events")
        return out

    return _with_attributes(e, event)


def _event_impl(y0: Any, t0: Any, *leaves: Any, rhs: Callable[..., Any],
                events: tuple[Any, ...], which: tuple[int, int], t_end: float, method: Any,
                options: dict[str, Any], vectorized: bool) -> np.ndarray:
    """The time of occurrence ``which[1]`` of event ``which[0]``: SciPy's solve with all
    the events (a terminal one ends it), on plain values."""
    j, k = which
    r = _plain_solve(y0, float(t0), t_end, None, leaves, rhs, method, options, vectorized,
                     events=events)
    if len(r.t_events[j]) <= k:
        raise DualrevError(
            f"dualrev: scipy.integrate.solve_ivp: event {j} no longer occurs {k + 1} "
            f"time(s) at the point a derivative needs (it appears or vanishes there): its "
            f"time has no derivative")
    return np.asarray(r.t_events[j][k], float)


event_p = Primitive("scipy.integrate.solve_ivp (event time)", _event_impl)


def _event_residual(params: dict[str, Any]) -> Callable[..., Any]:
    """``G(t, y0, t0, *leaves) = event(t, y(t), *leaves)``, ``y(t)`` a differentiable solve
    from ``t0``: the event time ``t*`` is the root of ``G(., y0, t0, *leaves)``."""
    event = params["events"][params["which"][0]]
    solve = dict(rhs=params["rhs"], method=params["method"], options=params["options"],
                 vectorized=params["vectorized"], t_bound=None, holder=None)

    def G(t: Any, y0: Any, t0: Any, *leaves: Any) -> Any:
        y = bind(solve_p, (y0, t0, np.reshape(t, (1,)), *leaves), solve)[:, 0]
        return np.reshape(event(t, y, *leaves), ())

    return G


def _event_slope(G: Callable[..., Any], ans: Any, args: tuple[Any, ...]) -> Any:
    """``dG/dt`` at the event (``∂event/∂t + ∇_y event . f``), refused where it is 0."""
    slope = jvp(lambda t: G(t, *args), (ans,), (np.ones(()),))[1]
    if np.any(np.asarray(concrete(slope)) == 0):
        raise DualrevError(
            "dualrev: scipy.integrate.solve_ivp: the event function touches zero without "
            "crossing it (its derivative along the solution is 0 at the event): the event "
            "time has no derivative there")
    return slope


def _event_jvp(tangents: list[Any], ans: Any, *args: Any, **params: Any) -> Any:
    """The implicit function theorem on ``G(t*, θ) = 0``: ``dt* = -G_θ dθ / G_t``, both
    terms differentiable (so it nests)."""
    G = _event_residual(params)
    which = [i for i, d in enumerate(tangents) if d is not None]

    def along(*sub: Any) -> Any:
        full = list(args)
        for i, v in zip(which, sub, strict=True):
            full[i] = v
        return G(ans, *full)

    num = jvp(along, tuple(args[i] for i in which), tuple(tangents[i] for i in which))[1]
    return -num / _event_slope(G, ans, args)


_last_event: list[Any] = [None, None, None]  # (g, ans, cotangents): one pass for all inputs


def _event_vjp(i: int, g: Any, ans: Any, *args: Any, **params: Any) -> Any:
    if _last_event[0] is not g or _last_event[1] is not ans:
        G = _event_residual(params)
        cts = vjp(lambda *a: G(ans, *a), *args)[1](np.ones(()))
        scale = -g / _event_slope(G, ans, args)
        _last_event[:] = [g, ans, [scale * c for c in cts]]
    return _last_event[2][i]


event_p.defjvp_joint(_event_jvp)
event_p.defvjp_indexed(_event_vjp)


def _solve_events(fun: Callable[..., Any], t0: Any, t1: Any, y0: Any, t_eval: Any,
                  events: Any, args: Any, leaves: list[Any], tdef: Any, pos: list[int],
                  rhs: Callable[..., Any], method: Any, options: dict[str, Any],
                  vectorized: bool) -> Any:
    """solve_ivp with events on traced inputs: SciPy's solve with the events, then each
    event time as ``event_p`` (the implicit function theorem), ``y_events`` the solution
    at those traced times, and after a terminal event the solution up to its time."""
    user_events = [events] if callable(events) else list(events)
    try:
        t0p, t1p, y0p = float(strip(t0)), float(strip(t1)), strip(y0)
        tep = None if t_eval is None else np.asarray(strip(t_eval), float)
        plain_args = None if args is None else tree_map(strip, args)
    except BatchedValueError:
        raise DualrevError(
            "dualrev: scipy.integrate.solve_ivp(events=...) under vmap: each member of "
            "the batch has its own events (their number may differ); call it in a Python "
            "loop over the batch") from None
    plain = _scipy_solve_ivp(fun, (t0p, t1p), y0p, method=method, t_eval=tep,
                             events=events, vectorized=vectorized, args=plain_args,
                             **options)
    if not plain.success:
        raise DualrevError(f"dualrev: scipy.integrate.solve_ivp failed ({plain.message}); "
                           f"no derivative of a failed solve")
    if callable(options.get("jac")) and args is not None:
        options = {**options, "jac": _with_leaves(options["jac"], leaves, tdef, pos)}
    evs = tuple(_with_attributes(_with_leaves(e, leaves, tdef, pos), e)
                for e in user_events)
    traced = [leaves[i] for i in pos]
    base = dict(rhs=rhs, method=method, options=options, vectorized=vectorized)
    n = shape_of(y0)[0]
    t_events, y_events = [], []
    for j, times in enumerate(plain.t_events):
        ts = [bind(event_p, (y0, t0, *traced),
                   dict(base, events=evs, which=(j, k), t_end=t1p))
              for k in range(len(times))]
        if not ts:
            t_events.append(np.zeros(0))
            y_events.append(np.zeros((0, n)))
            continue
        t_events.append(np.stack(ts))
        ys = bind(solve_p, (y0, t0, t_events[-1], *traced),
                  dict(base, t_bound=None, holder=None))
        y_events.append(np.transpose(ys))
    res = OdeResult(dict(plain))
    # SciPy's own values, the derivatives of the traced ones: a solve ending at an event
    # time takes other steps than SciPy's, which steps past it and interpolates
    res.t_events = [_as_value(t, p) for t, p in zip(t_events, plain.t_events, strict=True)]
    res.y_events = [_as_value(y, p) for y, p in zip(y_events, plain.y_events, strict=True)]
    m = len(plain.t)
    if plain.status == 1:  # a terminal event ended the solve: at its (traced) time
        sign = 1.0 if t1p >= t0p else -1.0  # the stopping event: the last terminal one
        j = max((j for j, ts in enumerate(plain.t_events)
                 if len(ts) and getattr(user_events[j], "terminal", False)),
                key=lambda j: sign * plain.t_events[j][-1])
        end = t_events[j][-1]
        te = (np.concatenate([plain.t[:-1], np.reshape(end, (1,))]) if t_eval is None
              else t_eval[:m] if isinstance(t_eval, Tracer) else np.asarray(t_eval)[:m])
    else:
        te = (np.concatenate([plain.t[:-1], np.reshape(t1, (1,))])
              if t_eval is None and isinstance(t1, Tracer) else
              plain.t if t_eval is None else t_eval)
    if m == 0:
        res.y = np.zeros((n, 0))
        return res
    y = bind(solve_p, (y0, t0, te, *traced), dict(base, t_bound=None, holder=None))
    res.y = _as_value(y, plain.y)
    res.t = _as_value(te, plain.t) if isinstance(te, Tracer) else plain.t
    return res


def _as_value(traced: Any, value: np.ndarray) -> Any:
    """``value`` carrying ``traced``'s derivatives (``traced`` equals it up to the
    integration tolerance)."""
    if not isinstance(traced, Tracer):
        return value
    return value + (traced - without_derivatives(traced))


def solve_ivp(fun: Callable[..., Any], t_span: Any, y0: Any, method: Any = "RK45",
              t_eval: Any = None, dense_output: bool = False, events: Any = None,
              vectorized: bool = False, args: Any = None, **options: Any) -> Any:
    """scipy.integrate.solve_ivp, differentiable with respect to ``y0``, ``t_span``,
    ``t_eval`` and the arrays in ``args`` (SciPy's signature and result).

    SciPy integrates (with the caller's ``method``, ``rtol``, ``atol``, ...); the result's
    ``y`` is traced. Forward mode integrates the variational equations alongside the
    state, reverse mode the adjoint backwards (with the user's method, ``y`` read from a
    forward solve's dense output at a hundredth of the tolerances), so derivatives are
    exact up to the integration tolerance, stiff systems included. Without ``t_eval``
    the output times SciPy chose are constants except the last, ``t_span[1]`` (found by
    one plain solve first); with ``t_eval`` the outputs are at those times, which may be
    traced, and ``t_span[1]`` has no effect on them (derivative zero). Values to
    differentiate reach ``fun``, ``jac`` and ``events`` through ``args`` or as closures
    (``dualrev.closure.lift`` passes them on as arguments). Event times are
    differentiated by the implicit function theorem on ``event(t*, y(t*)) = 0``
    (``t_events``, ``y_events``, and after a terminal event ``t[-1]``/``y[:, -1]`` are
    traced); an event touching zero without crossing, and events under ``vmap``, raise
    ``DualrevError``. With traced inputs ``dense_output`` raises ``NoDerivativeRule``;
    the derived systems drop ``jac``/``jac_sparsity`` (implicit
    methods get exact Jacobians from dualrev instead) and use the smallest entry of an
    array ``atol``. Under ``vmap`` a batch of ``y0`` or ``args`` is one solve of all the
    states, a batch of times (``t_span`` or ``t_eval``) one solve per member; ``t_eval``
    is then required.

    Args:
        fun: the right-hand side ``fun(t, y, *args)``, NumPy code.
        t_span: ``(t0, t1)``.
        y0: the initial state, shape ``(n,)``.
        method: SciPy's method name or ``OdeSolver`` class.
        t_eval: the output times (within ``t_span``), or None for SciPy's steps.
        dense_output: SciPy's; refused with traced inputs.
        events: SciPy's event functions ``event(t, y, *args)`` (with ``terminal`` and
            ``direction``); their times are differentiated.
        vectorized: SciPy's (used for the user's own system only).
        args: extra arguments of ``fun``; their array leaves may be traced.
        **options: SciPy's (``rtol``, ``atol``, ``max_step``, ``first_step``, ...).
    Returns:
        SciPy's ``OdeResult`` (``t``, ``y``, ``success``, ``status``, ``message``,
        ``nfev``, ...), its ``y`` of shape ``(n, len(t))`` traced. ``nfev`` and the other
        counts are those of the primal solve.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> from scipy.integrate import solve_ivp
        >>> def y1(k):   # y' = -k y, y(0) = 1, at t = 2: exp(-2 k)
        ...     r = solve_ivp(lambda t, y, k: -k * y, (0.0, 2.0), [1.0], args=(k,),
        ...                   t_eval=[2.0], rtol=1e-10, atol=1e-12)
        ...     return r.y[0, -1]
        >>> print(round(dr.grad(y1)(0.5), 8), round(-2 * np.exp(-1.0), 8))
        -0.73575888 -0.73575888
    """
    if args is not None:
        try:
            args = tuple(args)
        except TypeError as e:
            raise TypeError("Supplied 'args' cannot be unpacked. Please supply `args` as a "
                            "tuple (e.g. `args=(None,)`)") from e
    call_args = () if args is None else args
    listed = events is not None and not callable(events)
    evs = [] if events is None else list(events) if listed else [events]
    (fun, jac, *evs), lifted_args = lift_all([fun, options.get("jac"), *evs], call_args)
    if lifted_args is not call_args:  # closures over traced values: now in args
        args = call_args = lifted_args
        if "jac" in options:
            options["jac"] = jac
        if events is not None:
            events = evs if listed else evs[0]
    if not _has_tracer((t_span, y0, t_eval, call_args)):
        try:
            return _scipy_solve_ivp(fun, t_span, y0, method=method, t_eval=t_eval,
                                    dense_output=dense_output, events=events,
                                    vectorized=vectorized, args=args, **options)
        except DualrevError:
            t0 = t_span[0]
            if _has_tracer(fun(t0, np.asarray(y0), *call_args)):
                raise _closure_error("scipy.integrate.solve_ivp", "fun") from None
            raise
    if dense_output:
        raise NoDerivativeRule(
            "scipy.integrate.solve_ivp(dense_output=True)",
            "Its interpolant is not differentiated: pass t_eval= with the times you need.")
    t0, t1 = t_span[0], t_span[1]
    if isinstance(y0, (list, tuple)):
        y0 = np.stack([np.reshape(v, ()) for v in y0]) if _has_tracer(y0) else np.asarray(y0)
    if not isinstance(y0, Tracer):
        y0 = np.asarray(y0)
        if y0.dtype.kind in "biu":
            y0 = y0.astype(float)
    if len(shape_of(y0)) == 0:
        y0 = np.reshape(y0, (1,))
    if len(shape_of(y0)) != 1:
        raise ValueError("`y0` must be 1-dimensional.")
    leaves, tdef, pos = _split_args(call_args)
    g = _with_leaves(fun, leaves, tdef, pos)

    def rhs(t: Any, y: Any, *ls: Any) -> Any:
        return _vector(g(t, y, *ls), y)

    if events is not None:
        if t_eval is not None and not isinstance(t_eval, Tracer):
            t_eval = np.asarray(t_eval, float)
        return _solve_events(fun, t0, t1, y0, t_eval, events, args, leaves, tdef, pos, rhs,
                             method, dict(options), vectorized)
    try:
        t1_plain = float(strip(t1))
    except BatchedValueError:
        t1_plain = None
    if t_eval is None:
        if t1_plain is None:  # a batch of end times: each member its own output times
            raise DualrevError(
                "dualrev: scipy.integrate.solve_ivp under vmap over t_span's end needs "
                "t_eval=: without it SciPy chooses different output times (a different "
                "number of them) for each member of the batch; pass the times you need, "
                "e.g. t_eval=np.reshape(t1, (1,)) for the value at the end")
        try:
            plain = _scipy_solve_ivp(fun, (strip(t0), t1_plain), strip(y0), method=method,
                                     vectorized=vectorized,
                                     args=None if args is None else tree_map(strip, args),
                                     **options)
        except BatchedValueError:
            raise DualrevError("dualrev: scipy.integrate.solve_ivp under vmap needs t_eval=: "
                               "SciPy chooses different output times for each member of "
                               "the batch") from None
        if not plain.success:
            raise DualrevError(f"dualrev: scipy.integrate.solve_ivp failed ({plain.message}); "
                               f"no derivative of a failed solve")
        times = plain.t
        te = (np.concatenate([times[:-1], np.reshape(t1, (1,))])
              if isinstance(t1, Tracer) else times)
    else:
        te = t_eval if isinstance(t_eval, Tracer) else np.asarray(t_eval, float)
        if len(shape_of(te)) != 1 or shape_of(te)[0] == 0:
            raise ValueError("`t_eval` must be 1-dimensional and non-empty.")
        if t1_plain is None:  # a batch of end times: SciPy's check, member by member
            ends, starts = np.asarray(concrete(t1), float), np.asarray(concrete(t0), float)
            times = np.asarray(concrete(te), float)  # the batch axes first, then (m,)
            lo, hi = np.minimum(starts, ends), np.maximum(starts, ends)
            try:
                outside = np.any(times.min(-1) < lo) or np.any(times.max(-1) > hi)
            except ValueError:  # batches of different transforms: SciPy's solve checks
                outside = False
            if outside:
                raise ValueError("Values in `t_eval` are not within `t_span`.")
    options = dict(options)
    if callable(options.get("jac")) and args is not None:
        options["jac"] = _with_leaves(options["jac"], leaves, tdef, pos)
    holder: list[Any] = []
    y = bind(solve_p, (y0, t0, te, *[leaves[i] for i in pos]),
             dict(rhs=rhs, method=method, options=options, vectorized=vectorized,
                  t_bound=t1_plain, holder=holder))
    res = OdeResult(dict(plain if t_eval is None else holder[-1]))
    res.y = y
    res.t = times if t_eval is None else te
    return res


# ------------------------------------------------------------------ quad
def _quad_impl(a: Any, b: Any, *leaves: Any, rhs: Callable[..., Any],
               options: dict[str, Any]) -> np.ndarray:
    def f(x: float) -> Any:
        out = rhs(x, *leaves)
        if isinstance(out, Tracer):
            raise _closure_error("scipy.integrate.quad", "func")
        return out

    value, err = _scipy_quad(f, float(a), float(b), **options)[:2]
    return np.array([value, err])


quad_p = Primitive("scipy.integrate.quad", _quad_impl)


def _endpoint(x: Any) -> bool:
    """Whether a limit is finite (an infinite one contributes no derivative)."""
    v = np.asarray(concrete(x))
    if np.all(np.isfinite(v)):
        return True
    if np.all(np.isinf(v)):
        return False
    raise DualrevError("dualrev: scipy.integrate.quad: a batch of limits both finite and "
                       "infinite; map the finite and infinite cases separately")


def _param_integrand(rhs: Callable[..., Any], nleaves: int,
                     which: list[int]) -> Callable[..., Any]:
    """``x, *leaves, *tangents -> d rhs(x, *leaves)`` along the tangents of ``which``."""
    def rhs_t(x: Any, *ps: Any) -> Any:
        ls, ds = ps[:nleaves], ps[nleaves:]

        def g(*sub: Any) -> Any:
            full = list(ls)
            for i, v in zip(which, sub, strict=True):
                full[i] = v
            return rhs(x, *full)

        return jvp(g, tuple(ls[i] for i in which), tuple(ds))[1]

    return rhs_t


def _quad_jvp(tangents: list[Any], ans: Any, a: Any, b: Any, *leaves: Any,
              rhs: Callable[..., Any], options: dict[str, Any]) -> Any:
    da, db, *dls = tangents
    out: Any = 0.0
    if da is not None and _endpoint(a):  # Leibniz: -f(a) da + f(b) db + ∫ df
        out = out - rhs(a, *leaves) * da
    if db is not None and _endpoint(b):
        out = out + rhs(b, *leaves) * db
    which = [i for i, d in enumerate(dls) if d is not None]
    if which:
        inner = bind(quad_p, (a, b, *leaves, *[dls[i] for i in which]),
                     dict(rhs=_param_integrand(rhs, len(leaves), which), options=options))
        out = out + inner[0]
    return np.concatenate([np.reshape(out, (1,)), np.zeros(1)])


def _quad_vjp(i: int, g: Any, ans: Any, a: Any, b: Any, *leaves: Any,
              rhs: Callable[..., Any], options: dict[str, Any]) -> Any:
    if i == 0:
        return -g[0] * rhs(a, *leaves) if _endpoint(a) else np.zeros(())
    if i == 1:
        return g[0] * rhs(b, *leaves) if _endpoint(b) else np.zeros(())
    # A scalar's gradient: one quad of the integrand's derivative per element.
    k = i - 2
    shape = shape_of(leaves[k])
    integrand = _param_integrand(rhs, len(leaves), [k])
    basis = np.eye(max(int(np.prod(shape)), 1))
    parts = [bind(quad_p, (a, b, *leaves, np.reshape(e, shape)),
                  dict(rhs=integrand, options=options))[0] for e in basis]
    return g[0] * np.reshape(np.stack(parts), shape)


quad_p.defjvp_joint(_quad_jvp)
quad_p.defvjp_indexed(_quad_vjp)


def quad(func: Callable[..., Any], a: Any, b: Any, args: Any = (), full_output: int = 0,
         epsabs: float = 1.49e-8, epsrel: float = 1.49e-8, limit: int = 50,
         points: Any = None, weight: Any = None, wvar: Any = None, wopts: Any = None,
         maxp1: int = 50, limlst: int = 50, complex_func: bool = False) -> Any:
    """scipy.integrate.quad, differentiable with respect to the limits ``a``, ``b`` and
    the arrays in ``args`` (SciPy's signature).

    By Leibniz's rule, ``d/db = f(b)``, ``d/da = -f(a)``, and ``d/dp = ∫ ∂f/∂p``, the
    latter integrated by quad with the same options (forward mode: one quad per tangent
    direction; reverse: one per element of each traced argument). An infinite limit
    contributes no derivative (a convergent integrand vanishes there). Values to
    differentiate reach ``func`` through ``args`` or as closures. With traced inputs
    ``full_output`` and ``complex_func`` raise ``NoDerivativeRule``, and so do traced
    limits with ``weight`` (the weights depend on them) and a traced ``wvar``;
    ``points`` and the other options are passed to SciPy.

    Args:
        func: the integrand ``func(x, *args)``, NumPy code returning a scalar.
        a: the lower limit.
        b: the upper limit.
        args: extra arguments of ``func``; their array leaves may be traced.
        full_output: SciPy's; refused with traced inputs.
        epsabs: absolute error tolerance.
        epsrel: relative error tolerance.
        limit: SciPy's bound on the number of subintervals.
        points: break points (constants).
        weight: SciPy's weight function name.
        wvar: the weight's variables (constants).
        wopts: SciPy's.
        maxp1: SciPy's.
        limlst: SciPy's.
        complex_func: SciPy's; refused with traced inputs.
    Returns:
        ``(value, abserr)``, ``value`` traced; ``abserr`` is SciPy's estimate for the
        value (it carries no derivative).
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> from scipy.integrate import quad
        >>> area = lambda b, k: quad(lambda x, k: np.exp(-k * x), 0.0, b, args=(k,))[0]
        >>> print(round(dr.grad(area)(1.0, 2.0), 8), round(np.exp(-2.0), 8))
        0.13533528 0.13533528
    """
    if not isinstance(args, tuple):
        args = (args,)
    (func,), args = lift_all([func], args)
    options = dict(full_output=full_output, epsabs=epsabs, epsrel=epsrel, limit=limit,
                   points=points, weight=weight, wvar=wvar, wopts=wopts, maxp1=maxp1,
                   limlst=limlst, complex_func=complex_func)
    if not _has_tracer((a, b, args, points, wvar)):
        try:
            return _scipy_quad(func, a, b, args=args, **options)
        except DualrevError:
            x = a if np.isfinite(a) else b if np.isfinite(b) else 0.0
            if _has_tracer(func(x, *args)):
                raise _closure_error("scipy.integrate.quad", "func") from None
            raise
    name = "scipy.integrate.quad"
    if full_output:
        raise NoDerivativeRule(f"{name}(full_output=1)", "Call it with full_output=0 for "
                               "the value; the diagnostics come from a call on "
                               "dualrev.strip'ed values.")
    if complex_func:
        raise NoDerivativeRule(f"{name}(complex_func=True)", "Integrate the real and "
                               "imaginary parts as two real quads.")
    if isinstance(wvar, Tracer) or _has_tracer(wvar):
        raise NoDerivativeRule(f"{name}(wvar=traced)", "The weight's variables are not "
                               "differentiated: write the weight into the integrand.")
    if weight is not None and (isinstance(a, Tracer) or isinstance(b, Tracer)):
        raise NoDerivativeRule(f"{name}(weight=..., traced limits)", "With a weight only "
                               "args are differentiated: write the weight into the "
                               "integrand to differentiate the limits.")
    if points is not None:
        options["points"] = concrete(points)
    del options["full_output"]
    leaves, tdef, pos = _split_args(args)
    static = [None if i in pos else v for i, v in enumerate(leaves)]

    def rhs(x: Any, *ls: Any) -> Any:
        full = list(static)
        for i, v in zip(pos, ls, strict=True):
            full[i] = v
        return func(x, *tree_unflatten(tdef, full))

    out = bind(quad_p, (a, b, *[leaves[i] for i in pos]), dict(rhs=rhs, options=options))
    return out[0], without_derivatives(out[1])




# ------------------------------------------------------------------ odeint
_ODEINT_TOL = 1.49012e-8  # odeint's rtol and atol when None (LSODA's default there)


def _odeint_impl(y0: Any, t0: Any, t_eval: Any, *leaves: Any, rhs: Callable[..., Any],
                 options: dict[str, Any], primal: dict[str, Any],
                 holder: list[Any] | None) -> np.ndarray:
    """SciPy's odeint itself, as ``(n, len(t))`` (solve_ivp's layout, so that solve_p's
    rules apply); ``t0`` is ``t[0]``, an argument of its own for its derivative."""
    def f(y: np.ndarray, t: float) -> Any:
        out = rhs(t, y, *leaves)
        if isinstance(out, Tracer):
            raise _closure_error("scipy.integrate.odeint", "func")
        return out

    kw = dict(primal["kw"])
    dfun, tfirst = primal["Dfun"], primal["tfirst"]
    if dfun is not None:  # the user's Dfun, in the user's argument order, given its args
        kw["Dfun"] = ((lambda y, t: dfun(t, y, *leaves)) if tfirst
                      else (lambda y, t: dfun(y, t, *leaves)))
    # full_output=1 always: the same solution, and the diagnostics for full_output callers
    y, info = _scipy_odeint(f, np.asarray(y0, float), np.asarray(t_eval, float),
                            full_output=1, **kw)
    if holder is not None:
        holder.append(info)
    return np.ascontiguousarray(y.T)


def _as_solve(params: dict[str, Any]) -> dict[str, Any]:
    """solve_p's parameters for odeint_p's derivative rules: the derived systems are
    solve_ivp(method='LSODA') solves at odeint's tolerances."""
    return dict(rhs=params["rhs"], method="LSODA", options=params["options"],
                vectorized=False, t_bound=None, holder=None, name=_ODEINT)


odeint_p = Primitive("scipy.integrate.odeint", _odeint_impl)
odeint_p.defjvp_joint(lambda tangents, ans, *args, **params: _solve_jvp(
    tangents, ans, *args, **_as_solve(params)))
odeint_p.defvjp_indexed(lambda i, g, ans, *args, **params: _solve_vjp(
    i, g, ans, *args, **_as_solve(params)))


def _smallest(tol: Any) -> float:
    return _ODEINT_TOL if tol is None else float(np.min(concrete(tol)))


def odeint(func: Callable[..., Any], y0: Any, t: Any, args: Any = (), Dfun: Any = None,
           col_deriv: int = 0, full_output: int = 0, ml: Any = None, mu: Any = None,
           rtol: Any = None, atol: Any = None, tcrit: Any = None, h0: float = 0.0,
           hmax: float = 0.0, hmin: float = 0.0, ixpr: int = 0, mxstep: int = 0,
           mxhnil: int = 0, mxordn: int = 12, mxords: int = 5, printmessg: int = 0,
           tfirst: bool = False) -> Any:
    """scipy.integrate.odeint, differentiable with respect to ``y0``, the times ``t``
    and the arrays in ``args`` (SciPy's signature and result).

    SciPy's odeint computes the solution, with every keyword as given. Its derivatives
    are those of ``solve_ivp``: the variational equations (forward mode) or the adjoint
    (reverse mode), integrated by ``solve_ivp(method='LSODA')`` at the smallest entries
    of ``rtol`` and ``atol`` (odeint's defaults, 1.49012e-8, when None) and ``hmax`` as
    its ``max_step``, so they are exact up to that tolerance and nest. ``t[0]`` is the
    start, so moving it moves the whole trajectory (by ``-f(y0, t0) dt0``) except
    ``y[0] = y0``; moving a later ``t[k]`` moves ``y[k]`` by ``f(y[k], t[k]) dt[k]``.
    ``Dfun``/``col_deriv``/``ml``/``mu`` (the user's Jacobian), ``tcrit``, ``h0``,
    ``hmin``, ``mxstep``, ``mxhnil``, ``mxordn``, ``mxords``, ``ixpr`` and ``printmessg``
    serve SciPy's solve only. Values to differentiate reach ``func`` (and ``Dfun``)
    through ``args`` or as closures. Under ``vmap``
    each member of the batch is its own SciPy solve.

    Args:
        func: the right-hand side ``func(y, t, *args)`` (``func(t, y, *args)`` with
            ``tfirst``), NumPy code.
        y0: the initial state, shape ``(n,)`` (a scalar is one state).
        t: the times, ``t[0]`` the start, monotonic.
        args: extra arguments of ``func`` (and ``Dfun``); their array leaves may be
            traced.
        Dfun: SciPy's Jacobian of ``func`` (plain values; SciPy's solve only).
        col_deriv: SciPy's, for ``Dfun``.
        full_output: with 1, also SciPy's info dict (of SciPy's solve).
        ml: SciPy's lower bandwidth of the Jacobian.
        mu: SciPy's upper bandwidth of the Jacobian.
        rtol: relative tolerance, scalar or per component.
        atol: absolute tolerance, scalar or per component.
        tcrit: SciPy's critical times.
        h0: SciPy's first step.
        hmax: SciPy's largest step (also the derived systems' ``max_step``).
        hmin: SciPy's smallest step.
        ixpr: SciPy's.
        mxstep: SciPy's.
        mxhnil: SciPy's.
        mxordn: SciPy's.
        mxords: SciPy's.
        printmessg: SciPy's.
        tfirst: whether ``func`` (and ``Dfun``) take ``t`` first.
    Returns:
        ``y`` of shape ``(len(t), n)``, traced; with ``full_output``, ``(y, infodict)``.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> from scipy.integrate import odeint
        >>> def y1(k):   # y' = -k y, y(0) = 1, at t = 2: exp(-2 k)
        ...     return odeint(lambda y, t, k: -k * y, [1.0], [0.0, 2.0], args=(k,),
        ...                   rtol=1e-10, atol=1e-12)[-1, 0]
        >>> print(round(dr.grad(y1)(0.5), 7), round(-2 * np.exp(-1.0), 7))
        -0.7357589 -0.7357589
    """
    if not isinstance(args, tuple):
        args = (args,)
    (func, Dfun), args = lift_all([func, Dfun], args)
    kw = dict(col_deriv=col_deriv, ml=ml, mu=mu, rtol=rtol, atol=atol, tcrit=tcrit,
              h0=h0, hmax=hmax, hmin=hmin, ixpr=ixpr, mxstep=mxstep, mxhnil=mxhnil,
              mxordn=mxordn, mxords=mxords, printmessg=printmessg)
    if _has_tracer((rtol, atol, tcrit, h0, hmax, hmin)):
        raise NoDerivativeRule("scipy.integrate.odeint(traced tolerances or step sizes)",
                               "Tolerances, tcrit and step sizes are not differentiated: "
                               "pass plain values.")
    if not _has_tracer((y0, t, args)):
        try:
            return _scipy_odeint(func, y0, t, args=args, Dfun=Dfun, full_output=full_output,
                                 tfirst=tfirst, **kw)
        except DualrevError:
            t0 = np.ravel(np.asarray(t, float))[0]
            first = (t0, np.asarray(y0, float)) if tfirst else (np.asarray(y0, float), t0)
            if _has_tracer(func(*first, *args)):
                raise _closure_error("scipy.integrate.odeint", "func") from None
            raise
    if isinstance(y0, (list, tuple)):
        y0 = np.stack([np.reshape(v, ()) for v in y0]) if _has_tracer(y0) else np.asarray(y0)
    if not isinstance(y0, Tracer):
        y0 = np.asarray(y0, float)
    if len(shape_of(y0)) == 0:
        y0 = np.reshape(y0, (1,))
    if len(shape_of(y0)) != 1:
        raise ValueError("Initial condition y0 must be one-dimensional.")
    if isinstance(t, (list, tuple)):
        t = np.stack([np.reshape(v, ()) for v in t]) if _has_tracer(t) else np.asarray(t)
    if not isinstance(t, Tracer):
        t = np.asarray(t, float)
    if len(shape_of(t)) != 1 or shape_of(t)[0] == 0:
        raise ValueError("`t` must be 1-dimensional and non-empty.")
    leaves, tdef, pos = _split_args(args)
    g = _with_leaves(func, leaves, tdef, pos)

    def rhs(t_: Any, y: Any, *ls: Any) -> Any:
        return _vector(g(t_, y, *ls) if tfirst else g(y, t_, *ls), y)

    options: dict[str, Any] = dict(rtol=_smallest(rtol), atol=_smallest(atol))
    if hmax:
        options["max_step"] = float(hmax)
    primal = dict(kw=kw, tfirst=tfirst,
                  Dfun=None if Dfun is None else _with_leaves(Dfun, leaves, tdef, pos))
    holder: list[Any] = []
    y = bind(odeint_p, (y0, t[0], t, *[leaves[i] for i in pos]),
             dict(rhs=rhs, options=options, primal=primal, holder=holder))
    y = np.transpose(y)
    return (y, holder[-1]) if full_output else y


# ------------------------------------------------------------------ dblquad
def dblquad(func: Callable[..., Any], a: Any, b: Any, gfun: Any, hfun: Any, args: Any = (),
            epsabs: float = 1.49e-8, epsrel: float = 1.49e-8) -> Any:
    """scipy.integrate.dblquad, differentiable with respect to the limits ``a``, ``b``,
    constant inner limits ``gfun``/``hfun`` and the arrays in ``args`` (SciPy's
    signature).

    With traced inputs it is an outer ``quad`` over ``x`` of an inner ``quad`` over
    ``y``, both dualrev's differentiable quad at ``epsabs``/``epsrel`` (SciPy's dblquad
    is the same nesting of quads), so Leibniz's rule applies at both levels: a callable
    inner limit ``gfun(x)`` moves with ``x``, a constant one may be traced itself. An
    infinite limit contributes no derivative. Values to differentiate reach ``func``
    through ``args`` or as closures, and a callable ``gfun``/``hfun`` as closures (SciPy
    calls them with ``x`` alone).

    Args:
        func: the integrand ``func(y, x, *args)``, NumPy code returning a scalar.
        a: the lower limit of ``x``.
        b: the upper limit of ``x``.
        gfun: the lower limit of ``y``: a number or a function of ``x``.
        hfun: the upper limit of ``y``: a number or a function of ``x``.
        args: extra arguments of ``func``; their array leaves may be traced.
        epsabs: absolute error tolerance of each quad.
        epsrel: relative error tolerance of each quad.
    Returns:
        ``(value, abserr)``, ``value`` traced; ``abserr`` is the outer quad's estimate
        (it carries no derivative).
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> from scipy.integrate import dblquad
        >>> area = lambda b: dblquad(lambda y, x: 1.0, 0.0, b, 0.0, lambda x: x)[0]
        >>> print(round(dr.grad(area)(2.0), 8))   # d/db b^2 / 2
        2.0
    """
    if not isinstance(args, tuple):
        args = (args,)
    (func,), args = lift_all([func], args)
    # SciPy calls gfun(x)/hfun(x) with x alone; their traced free values travel as
    # arguments of the outer integrand below.
    (gfun, hfun), lim_extras = lift_all([gfun, hfun], ())
    if not _has_tracer((a, b, gfun, hfun, args, lim_extras)):
        try:
            return _scipy_dblquad(func, a, b, gfun, hfun, args=args, epsabs=epsabs,
                                  epsrel=epsrel)
        except DualrevError:
            x = a if np.isfinite(a) else b if np.isfinite(b) else 0.0
            _check_limits(gfun, hfun, x)
            lo = gfun(x) if callable(gfun) else gfun
            if _has_tracer(func(lo if np.isfinite(lo) else 0.0, x, *args)):
                raise _closure_error("scipy.integrate.dblquad", "func") from None
            raise
    # Constant inner limits travel as arguments of the outer integrand (they may be
    # traced); callable ones are evaluated at x there.
    lims = tuple(0.0 if callable(v) else v for v in (gfun, hfun))
    n_lim = len(lim_extras)

    def inner(x: Any, lo: Any, hi: Any, *rest: Any) -> Any:
        le, rest = rest[:n_lim], rest[n_lim:]
        lo = gfun(x, *le) if callable(gfun) else lo
        hi = hfun(x, *le) if callable(hfun) else hi
        return quad(func, lo, hi, args=(x, *rest), epsabs=epsabs, epsrel=epsrel)[0]

    try:
        return quad(inner, a, b, args=(*lims, *lim_extras, *args), epsabs=epsabs,
                    epsrel=epsrel)
    except _ClosureError:
        try:
            x = float(strip(a)) if np.isfinite(strip(a)) else float(strip(b))
            plain = tuple(strip(v) for v in lim_extras)
        except BatchedValueError:
            x, plain = 0.0, None
        if plain is not None:
            _check_limits(gfun, hfun, x if np.isfinite(x) else 0.0, plain)
        raise _closure_error("scipy.integrate.dblquad", "func") from None


def _check_limits(gfun: Any, hfun: Any, x: float, extras: tuple[Any, ...] = ()) -> None:
    """Raise naming a callable inner limit that still returns a traced value for a plain
    ``x`` (after the conversion of its closure, ``extras`` its converted values as plain
    numbers): SciPy calls ``gfun(x)``/``hfun(x)`` with ``x`` alone."""
    for what, lim in (("gfun", gfun), ("hfun", hfun)):
        if callable(lim) and _has_tracer(lim(x, *extras)):
            raise _ClosureError(
                f"dualrev: scipy.integrate.dblquad: the inner limit `{what}` returned a "
                f"traced value for a plain x: it uses a value being differentiated that "
                f"dualrev could not pass to it (closures, defaults, partials and bound "
                f"methods are converted; a global, a class attribute or a C-level "
                f"callable are not), and SciPy calls `{what}(x)` with x alone. Pass the "
                f"value as a constant limit (dblquad(func, a, b, lo, hi) with lo/hi traced "
                f"numbers), close over it in a local variable, or substitute "
                f"y = g(x) + (h(x) - g(x)) u and integrate over u from 0 to 1, the value "
                f"passed through args= (the integrand multiplied by h(x) - g(x)).")


# ------------------------------------------------------------------ tplquad
def tplquad(func: Callable[..., Any], a: Any, b: Any, gfun: Any, hfun: Any, qfun: Any,
            rfun: Any, args: Any = (), epsabs: float = 1.49e-8,
            epsrel: float = 1.49e-8) -> Any:
    """scipy.integrate.tplquad, differentiable with respect to the limits and the arrays
    in ``args`` (SciPy's signature), the callables closing over traced values or not.

    With traced inputs it is an outer ``quad`` over ``x`` of a ``dblquad`` over ``y`` and
    ``z`` (SciPy's tplquad is the same nesting of quads), so Leibniz's rule applies at
    every level: the limits ``gfun(x)``, ``hfun(x)``, ``qfun(x, y)``, ``rfun(x, y)``
    move with the outer variables, and constant limits may be traced themselves.

    Args:
        func: the integrand ``func(z, y, x, *args)``, NumPy code returning a scalar.
        a: the lower limit of ``x``.
        b: the upper limit of ``x``.
        gfun: the lower limit of ``y``: a number or a function of ``x``.
        hfun: the upper limit of ``y``: a number or a function of ``x``.
        qfun: the lower limit of ``z``: a number or a function of ``(x, y)``.
        rfun: the upper limit of ``z``: a number or a function of ``(x, y)``.
        args: extra arguments of ``func``; their array leaves may be traced.
        epsabs: absolute error tolerance of each quad.
        epsrel: relative error tolerance of each quad.
    Returns:
        ``(value, abserr)``, ``value`` traced; ``abserr`` is the outer quad's estimate
        (it carries no derivative).
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> from scipy.integrate import tplquad
        >>> cube = lambda s: tplquad(lambda z, y, x: 1.0, 0.0, s, 0.0, s, 0.0, s)[0]
        >>> print(round(dr.grad(cube)(2.0), 8))   # d/ds s^3
        12.0
    """
    if not isinstance(args, tuple):
        args = (args,)
    (func,), args = lift_all([func], args)
    # SciPy calls the limits with the outer variables alone: their traced free values
    # travel as arguments of the outer integrand.
    lims, lim_extras = lift_all([gfun, hfun, qfun, rfun], ())
    gfun, hfun, qfun, rfun = lims
    if not _has_tracer((a, b, gfun, hfun, qfun, rfun, args, lim_extras)):
        return _scipy_tplquad(func, a, b, gfun, hfun, qfun, rfun, args=args,
                              epsabs=epsabs, epsrel=epsrel)
    consts = tuple(0.0 if callable(v) else v for v in lims)
    n_lim = len(lim_extras)

    def inner(x: Any, g0: Any, h0: Any, q0: Any, r0: Any, *rest: Any) -> Any:
        le, rest = rest[:n_lim], rest[n_lim:]
        lo = gfun(x, *le) if callable(gfun) else g0
        hi = hfun(x, *le) if callable(hfun) else h0
        q = (lambda y: qfun(x, y, *le)) if callable(qfun) else q0
        r = (lambda y: rfun(x, y, *le)) if callable(rfun) else r0
        # a closure over x: dblquad passes x on as an argument (closure conversion)
        return dblquad(lambda z, y, *fa: func(z, y, x, *fa), lo, hi, q, r, args=rest,
                       epsabs=epsabs, epsrel=epsrel)[0]

    try:
        return quad(inner, a, b, args=(*consts, *lim_extras, *args), epsabs=epsabs,
                    epsrel=epsrel)
    except _ClosureError:
        raise _closure_error("scipy.integrate.tplquad", "func") from None


# ------------------------------------------------------------------ nquad
def nquad(func: Callable[..., Any], ranges: Any, args: Any = None, opts: Any = None,
          full_output: bool = False) -> Any:
    """scipy.integrate.nquad, differentiable with respect to the limits and the arrays in
    ``args`` (SciPy's signature), the integrand, ranges and options closing over traced
    values or not.

    With traced inputs it is nested ``quad``s, ``x0`` innermost (as SciPy's), each
    level's integrand a closure over the outer variables, so Leibniz's rule applies at
    every level: a callable range ``ranges[i](x_{i+1}, ..., x_{n-1}, *args)`` moves with
    the outer variables. With traced inputs ``full_output`` raises ``NoDerivativeRule``.

    Args:
        func: the integrand ``func(x0, ..., x_{n-1}, *args)``, NumPy code returning a
            scalar.
        ranges: per variable, ``(lo, hi)`` or a function of the outer variables and
            ``args`` returning it.
        args: extra arguments of ``func`` (and of callable ranges and options); their
            array leaves may be traced.
        opts: ``quad``'s options per level: a dict, a function of the outer variables
            returning one, or a list of either (one per variable).
        full_output: SciPy's; refused with traced inputs.
    Returns:
        ``(value, abserr)``, ``value`` traced; ``abserr`` is the outermost quad's
        estimate (it carries no derivative).
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> from scipy.integrate import nquad
        >>> tri = lambda c: nquad(lambda x, y: 1.0, [lambda y: (0.0, c * y), (0.0, 1.0)])[0]
        >>> print(round(dr.grad(tri)(2.0), 8))   # d/dc c / 2
        0.5
    """
    args = () if args is None else tuple(args) if isinstance(args, (list, tuple)) else (args,)
    ranges = list(ranges)
    n = len(ranges)
    if opts is None or isinstance(opts, dict) or callable(opts):
        opts = [opts] * n
    opts = [{} if o is None else o for o in opts]  # SciPy's default, per level
    (func, *cbs), args = lift_all([func, *ranges, *opts], args)
    ranges, opts = cbs[:n], cbs[n:]
    if not _has_tracer((ranges, opts, args)):
        return _scipy_nquad(func, ranges, args=args, opts=opts, full_output=full_output)
    if full_output:
        raise NoDerivativeRule("scipy.integrate.nquad(full_output=True)", "Call it with "
                               "full_output=False for the value; the diagnostics come from "
                               "a call on dualrev.strip'ed values.")

    def level(k: int, outer: tuple[Any, ...]) -> Any:
        """∫ over x_k of the levels inside it, the outer variables ``outer`` fixed."""
        rng = ranges[k](*outer, *args) if callable(ranges[k]) else ranges[k]
        opt = opts[k](*outer, *args) if callable(opts[k]) else opts[k]
        if k == 0:
            integrand = lambda x: func(x, *outer, *args)  # noqa: E731
        else:
            integrand = lambda x: level(k - 1, (x, *outer))[0]  # noqa: E731
        # the integrand closes over the outer variables: quad makes them arguments
        return quad(integrand, rng[0], rng[1], **opt)

    try:
        return level(n - 1, ())
    except _ClosureError:
        raise _closure_error("scipy.integrate.nquad", "func") from None


# ------------------------------------------------------------------ quad_vec
def _array_of(out: Any) -> Any:
    """An integrand's value as an array (SciPy accepts lists of numbers)."""
    if isinstance(out, (list, tuple)):
        return np.stack(out) if _has_tracer(out) else np.asarray(out, float)
    return out


def _quad_vec_impl(a: Any, b: Any, *leaves: Any, rhs: Callable[..., Any],
                   options: dict[str, Any]) -> np.ndarray:
    """SciPy's quad_vec: the integral, flattened, and its error estimate last."""
    def f(x: float) -> Any:
        out = rhs(x, *leaves)
        if isinstance(out, Tracer):
            raise _closure_error("scipy.integrate.quad_vec", "f")
        return out

    value, err = _scipy_quad_vec(f, float(a), float(b), **options)[:2]
    return np.concatenate([np.reshape(np.asarray(value, float), (-1,)), [float(err)]])


quad_vec_p = Primitive("scipy.integrate.quad_vec", _quad_vec_impl)


def _quad_vec_jvp(tangents: list[Any], ans: Any, a: Any, b: Any, *leaves: Any,
                  rhs: Callable[..., Any], options: dict[str, Any]) -> Any:
    da, db, *dls = tangents
    out: Any = np.zeros(shape_of(ans)[0] - 1)
    if da is not None and _endpoint(a):  # Leibniz, elementwise: -f(a) da + f(b) db + ∫ df
        out = out - np.reshape(rhs(a, *leaves), (-1,)) * da
    if db is not None and _endpoint(b):
        out = out + np.reshape(rhs(b, *leaves), (-1,)) * db
    which = [i for i, d in enumerate(dls) if d is not None]
    if which:
        inner = bind(quad_vec_p, (a, b, *leaves, *[dls[i] for i in which]),
                     dict(rhs=_param_integrand(rhs, len(leaves), which), options=options))
        out = out + inner[:-1]
    return np.concatenate([out, np.zeros(1)])


def _quad_vec_vjp(i: int, g: Any, ans: Any, a: Any, b: Any, *leaves: Any,
                  rhs: Callable[..., Any], options: dict[str, Any]) -> Any:
    gv = g[:-1]
    if i == 0:
        return -np.sum(gv * np.reshape(rhs(a, *leaves), (-1,))) if _endpoint(a) else 0.0
    if i == 1:
        return np.sum(gv * np.reshape(rhs(b, *leaves), (-1,))) if _endpoint(b) else 0.0
    # ∫ g . ∂f/∂p dx: one quad_vec of the integrand's VJP, an integrand of p's shape
    k = i - 2
    n = len(leaves)

    def adjoint(x: Any, *ps: Any) -> Any:
        ls, gg = ps[:n], ps[n]

        def one(p: Any) -> Any:
            return np.reshape(rhs(x, *ls[:k], p, *ls[k + 1:]), (-1,))

        return vjp(one, ls[k])[1](gg)[0]

    out = bind(quad_vec_p, (a, b, *leaves, gv), dict(rhs=adjoint, options=options))
    return np.reshape(out[:-1], shape_of(leaves[k]))


quad_vec_p.defjvp_joint(_quad_vec_jvp)
quad_vec_p.defvjp_indexed(_quad_vec_vjp)


def quad_vec(f: Callable[..., Any], a: Any, b: Any, epsabs: float = 1e-200,
             epsrel: float = 1e-8, norm: Any = "2", cache_size: float = 100e6,
             limit: int = 10000, workers: Any = 1, points: Any = None, quadrature: Any = None,
             full_output: bool = False, *, args: Any = ()) -> Any:
    """scipy.integrate.quad_vec, differentiable with respect to the limits ``a``, ``b``
    and the arrays in ``args`` (SciPy's signature).

    Leibniz's rule elementwise: ``d/db = f(b)``, ``d/da = -f(a)`` (an infinite limit
    contributes nothing), ``d/dp = ∫ ∂f/∂p``, integrated by quad_vec with the same options:
    forward mode one quad_vec of the integrand's JVP, reverse mode one of its VJP per
    traced argument (an integrand of that argument's shape). Values to differentiate
    reach ``f`` through ``args`` or as closures.
    With traced inputs ``full_output`` raises ``NoDerivativeRule``; an integer
    ``workers > 1`` pickles the integrand, which dualrev's derived integrands are not
    (pass a map-like callable such as ``ThreadPoolExecutor().map`` instead).

    Args:
        f: the integrand ``f(x, *args)``, NumPy code returning an array (any shape).
        a: the lower limit.
        b: the upper limit.
        epsabs: absolute error tolerance.
        epsrel: relative error tolerance.
        norm: SciPy's vector norm for the error estimate.
        cache_size: SciPy's.
        limit: SciPy's bound on the number of subintervals.
        workers: SciPy's parallelism.
        points: break points (constants).
        quadrature: SciPy's rule ('gk21', 'gk15', 'trapezoid').
        full_output: SciPy's; refused with traced inputs.
        args: extra arguments of ``f``; their array leaves may be traced.
    Returns:
        ``(value, abserr)``, ``value`` traced, of ``f``'s shape; ``abserr`` is SciPy's
        estimate (it carries no derivative).
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> from scipy.integrate import quad_vec
        >>> moments = lambda b: quad_vec(lambda x: np.stack([x, x ** 2]), 0.0, b)[0]
        >>> print(np.round(dr.jacfwd(moments)(2.0), 8))   # f(b) = (b, b^2)
        [2. 4.]
    """
    if not isinstance(args, tuple):
        args = (args,)
    (f,), args = lift_all([f], args)
    options = dict(epsabs=epsabs, epsrel=epsrel, norm=norm, cache_size=cache_size,
                   limit=limit, workers=workers, points=points, quadrature=quadrature)
    if not _has_tracer((a, b, args, points)):
        try:
            return _scipy_quad_vec(f, a, b, full_output=full_output, args=args, **options)
        except DualrevError:
            x = a if np.isfinite(a) else b if np.isfinite(b) else 0.0
            if _has_tracer(f(x, *args)):
                raise _closure_error("scipy.integrate.quad_vec", "f") from None
            raise
    if full_output:
        raise NoDerivativeRule("scipy.integrate.quad_vec(full_output=True)", "Call it with "
                               "full_output=False for the value; the diagnostics come from "
                               "a call on dualrev.strip'ed values.")
    if points is not None:
        options["points"] = concrete(points)
    leaves, tdef, pos = _split_args(args)
    static = [None if i in pos else v for i, v in enumerate(leaves)]

    def rhs(x: Any, *ls: Any) -> Any:
        full = list(static)
        for i, v in zip(pos, ls, strict=True):
            full[i] = v
        return _array_of(f(x, *tree_unflatten(tdef, full)))

    # the integrand's shape, from one evaluation without derivatives (SciPy's first call)
    x0 = without_derivatives(a)
    try:
        if not np.isfinite(strip(a)):
            x0 = without_derivatives(b) if np.isfinite(strip(b)) else 0.0
    except BatchedValueError:  # a batch of limits: finite ones (checked by the rules)
        pass
    shape = shape_of(rhs(x0, *[without_derivatives(leaves[i]) for i in pos]))
    out = bind(quad_vec_p, (a, b, *[leaves[i] for i in pos]), dict(rhs=rhs, options=options))
    return np.reshape(out[:-1], shape), without_derivatives(out[-1])


dispatch(si, "solve_ivp", solve_ivp, always=True)
dispatch(si, "quad", quad, always=True)
dispatch(si, "odeint", odeint, always=True)
dispatch(si, "dblquad", dblquad, always=True)
dispatch(si, "quad_vec", quad_vec, always=True)
dispatch(si, "tplquad", tplquad, always=True)
dispatch(si, "nquad", nquad, always=True)
