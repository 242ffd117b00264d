"""scipy.optimize with exact derivatives: drop-in ``minimize``, ``least_squares`` and
``root`` that supply gradients, Hessians (or Hessian-vector products), constraint
Jacobians and (sparse) residual Jacobians computed by dualrev.

Arguments and results follow SciPy; ``x0`` may be a pytree (dict/list/tuple of arrays)
and ``res.x`` comes back in the same structure. Whatever derivative the caller supplies
(``jac=``, ``hess=``, ``hessp=``) is used as given.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize as so

from .sparse import SparseJacobian
from .transforms import hessian, hvp, jacobian, value_and_grad
from .tree import ravel_pytree, tree_flatten

__all__ = ["SparseJacobian", "least_squares", "minimize", "root"]

# Methods that use a Hessian: those that can take a Hessian-vector product get one
# (cheaper: no n-by-n matrix); the others get the full Hessian.
_HESSP_METHODS = {"newton-cg", "trust-ncg", "trust-krylov", "trust-constr"}
_HESS_METHODS = {"dogleg", "trust-exact"}
_NO_GRADIENT_METHODS = {"nelder-mead", "powell", "cobyla", "cobyqa"}


def _flat_result(value: Any) -> np.ndarray:
    leaves, _ = tree_flatten(value)
    return np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in leaves])


def _ravel_x0(x0: Any) -> tuple[np.ndarray, Callable[[Any], Any]]:
    """``(flat, unravel)`` for an ``x0`` that may be a pytree. A list or tuple of numbers
    is one vector, as ``np.asarray(x0)`` makes it in SciPy: ``fun`` sees an array and
    ``res.x`` is an ndarray, not a list of 0-d arrays."""
    if isinstance(x0, (list, tuple)) and all(
            isinstance(v, numbers.Number) or (isinstance(v, (np.ndarray, np.generic))
                                              and np.ndim(v) == 0) for v in x0):
        return np.asarray(x0, dtype=float), lambda x: x
    return ravel_pytree(x0)


def _default_method(bounds: Any, constraints: Any) -> str:
    # SciPy's own choice when method is None.
    if constraints:
        return "slsqp"
    if bounds is not None:
        return "l-bfgs-b"
    return "bfgs"


def _flat_constraint(con: Any, unravel: Callable[[Any], Any]) -> Any:
    """A constraint on the flat vector, with the exact Jacobian where none was given."""
    if isinstance(con, dict):
        con = dict(con)
        fun = con["fun"]
        flat_fun = lambda x, *a: fun(unravel(x), *a)
        con["fun"] = flat_fun
        if con.get("jac") is None:
            con["jac"] = jacobian(flat_fun)
        else:
            user_jac = con["jac"]
            con["jac"] = lambda x, *a: user_jac(unravel(x), *a)
        return con
    if isinstance(con, so.NonlinearConstraint):
        fun = con.fun
        flat_fun = lambda x: fun(unravel(x))
        jac = con.jac
        if isinstance(jac, str) or jac is None:  # finite differences by default: replace
            jac = jacobian(flat_fun)
        else:
            user_jac = jac
            jac = lambda x: user_jac(unravel(x))
        return so.NonlinearConstraint(flat_fun, con.lb, con.ub, jac=jac, hess=con.hess,
                                      keep_feasible=con.keep_feasible)
    return con  # LinearConstraint and friends act on the flat vector as given


def minimize(fun: Callable[..., Any], x0: Any, args: tuple[Any, ...] = (),
             method: str | None = None, jac: Any = None, hess: Any = None,
             hessp: Any = None, bounds: Any = None,
             constraints: Any = (), tol: float | None = None, callback: Any = None,
             options: dict[str, Any] | None = None) -> so.OptimizeResult:
    """``scipy.optimize.minimize`` with the exact gradient (value and gradient from one
    reverse pass, ``jac=True``), the exact Hessian or Hessian-vector product for methods
    that use one, and exact constraint Jacobians. Same signature and result.

    Methods that take a Hessian-vector product (``newton-cg``, ``trust-ncg``,
    ``trust-krylov``, ``trust-constr``) get ``hvp`` (no n-by-n matrix); ``dogleg`` and
    ``trust-exact`` get the full ``hessian``; the derivative-free methods (``nelder-mead``,
    ``powell``, ``cobyla``, ``cobyqa``) get no gradient. Constraints given as dicts or
    ``NonlinearConstraint`` without a Jacobian get the exact one (``jacobian``);
    ``LinearConstraint`` and bounds act on the flattened vector as given.

    Args:
        fun: the objective ``fun(x, *args)``, returning a real scalar, written in NumPy.
        x0: the starting point: an array, a list/tuple of numbers (one vector, as SciPy
            reads it), or a pytree (dict/list/tuple of arrays), which ``fun`` then receives.
        args: extra positional arguments of ``fun`` (and of ``jac``, ``hess``, ``hessp``),
            not differentiated.
        method: SciPy's method name; None: SciPy's default (``bfgs``, ``l-bfgs-b`` with
            bounds, ``slsqp`` with constraints).
        jac: None (exact, by dualrev), a callable ``jac(x, *args)`` (of the pytree ``x``;
            its result is flattened), ``True`` (``fun`` returns ``(value, gradient)``, the
            gradient in the structure of ``x``, as in SciPy), or a finite-difference scheme
            (``"2-point"``).
        hess: None (exact where the method uses one), or a callable/strategy, as in SciPy.
        hessp: None, or a callable ``hessp(x, p, *args)`` of pytrees, as in SciPy.
        bounds: as in SciPy, on the flattened vector.
        constraints: as in SciPy (a dict, a constraint object, or a sequence of them);
            ``fun``s of dicts and ``NonlinearConstraint``s receive the pytree ``x``.
        tol: as in SciPy.
        callback: as in SciPy (it receives the flat vector).
        options: as in SciPy.
    Returns:
        SciPy's ``OptimizeResult``, with ``res.x`` in the structure of ``x0`` (an ndarray
        of ``x0``'s shape for an array) and the gradient ``res.jac`` (``res.grad`` for
        ``trust-constr``) likewise.
    Example:
        >>> import numpy as np
        >>> from dualrev import optimize
        >>> rosen = lambda x: np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
        >>> res = optimize.minimize(rosen, np.zeros(3))
        >>> res.success, np.allclose(res.x, 1.0, atol=1e-4)
        (True, True)
        >>> loss = lambda p: np.sum((p["w"] - 1.0) ** 2) + np.sum(p["b"] ** 2)
        >>> res = optimize.minimize(loss, {"w": np.zeros(2), "b": np.ones(1)},
        ...                         method="newton-cg")
        >>> print(np.round(res.x["w"], 6), np.round(res.x["b"], 6))
        [1. 1.] [0.]
    """
    flat0, unravel = _ravel_x0(x0)
    meth = (method or _default_method(bounds, constraints)).lower()
    f_flat = lambda x, *a: fun(unravel(x), *a)
    kw: dict[str, Any] = {}
    objective: Callable[..., Any]
    if jac is None and meth not in _NO_GRADIENT_METHODS:
        vg = value_and_grad(f_flat)

        def objective(x: np.ndarray, *a: Any) -> tuple[float, np.ndarray]:
            v, g = vg(x, *a)
            return float(v), np.asarray(g, dtype=float)

        kw["jac"] = True
    elif jac is True:  # SciPy's convention: fun returns (value, gradient) itself

        def objective(x: np.ndarray, *a: Any) -> tuple[float, np.ndarray]:
            v, g = f_flat(x, *a)
            return float(v), _flat_result(g)

        kw["jac"] = True
    else:
        objective = lambda x, *a: float(f_flat(x, *a))
        if callable(jac):
            kw["jac"] = lambda x, *a: _flat_result(jac(unravel(x), *a))
        elif jac is not None:
            kw["jac"] = jac
    if hess is not None or hessp is not None:
        if callable(hess):
            kw["hess"] = lambda x, *a: hess(unravel(x), *a)
        elif hess is not None:
            kw["hess"] = hess
        if hessp is not None:
            kw["hessp"] = lambda x, p, *a: _flat_result(hessp(unravel(x), unravel(p), *a))
    elif meth in _HESSP_METHODS:
        hv = hvp(f_flat)
        # SciPy may probe with integer vectors (LinearOperator dtype detection)
        kw["hessp"] = lambda x, p, *a: np.asarray(hv(x, *a, np.asarray(p, dtype=float)),
                                                  dtype=float)
    elif meth in _HESS_METHODS:
        H = hessian(f_flat)
        kw["hess"] = lambda x, *a: np.asarray(H(x, *a), dtype=float)
    if isinstance(constraints, (dict, so.NonlinearConstraint, so.LinearConstraint)):
        constraints = [constraints]
    constraints = [_flat_constraint(c, unravel) for c in constraints]
    res = so.minimize(objective, flat0, args=args, method=method, bounds=bounds,
                      constraints=constraints, tol=tol, callback=callback, options=options,
                      **kw)
    res.x = unravel(res.x)
    # trust-constr's res.jac holds the constraint Jacobians (one per constraint, shapes
    # differ) and res.grad the objective's gradient; the other methods put it in res.jac.
    key = "grad" if meth == "trust-constr" else "jac"
    if isinstance(res.get(key), np.ndarray) and res[key].shape == flat0.shape:
        res[key] = unravel(np.asarray(res[key], dtype=float))
    return res


def least_squares(fun: Callable[..., Any], x0: Any, jac: Any = None, *,
                  jac_sparsity: Any = None, sparsity: Any = None, args: tuple[Any, ...] = (),
                  kwargs: dict[str, Any] | None = None, **kw: Any) -> so.OptimizeResult:
    """``scipy.optimize.least_squares`` with the exact Jacobian of the residuals.

    With ``jac_sparsity`` (the structural nonzeros, as for SciPy) or ``sparsity="auto"``
    (detected at a point near ``x0``) the Jacobian is computed sparse by column colouring
    — one forward pass of a few tangents — and handed to SciPy as a sparse matrix. The
    ``SparseJacobian`` used is returned as ``res.sparse_jacobian`` (colours, passes).
    Without either, the dense Jacobian comes from ``dualrev.jacobian``.

    Args:
        fun: the residuals ``fun(x, *args, **kwargs)``, returning a 1-D array.
        x0: the starting point: an array, a list/tuple of numbers, or a pytree (which
            ``fun`` then receives).
        jac: None (exact, by dualrev), a callable ``jac(x, *args, **kwargs)`` of the pytree
            ``x``, or one of SciPy's finite-difference schemes.
        jac_sparsity: the Jacobian's structural nonzeros, an (m, n) array or sparse matrix
            (``n`` the number of elements of ``x0``), or ``"auto"``: compute the Jacobian
            sparse (it is not passed on to SciPy).
        sparsity: the same as ``jac_sparsity`` (used when ``jac_sparsity`` is None).
        args: extra positional arguments of ``fun`` (and ``jac``), not differentiated.
        kwargs: extra keyword arguments of ``fun`` (and ``jac``), not differentiated.
        **kw: the other arguments of ``scipy.optimize.least_squares`` (``method``,
            ``bounds``, ``loss``, ``xtol``, ...), passed on unchanged.
    Returns:
        SciPy's ``OptimizeResult``, with ``res.x`` in the structure of ``x0``, ``res.jac``
        the (m, n) Jacobian at the solution (sparse when computed sparse), and
        ``res.sparse_jacobian`` where a sparse Jacobian was used.
    Example:
        >>> import numpy as np
        >>> from dualrev import optimize
        >>> res = optimize.least_squares(
        ...     lambda x: np.stack([x[0] - 1.0, 10.0 * (x[1] - x[0] ** 2)]), np.zeros(2))
        >>> print(np.round(res.x, 6))
        [1. 1.]
        >>> chain = lambda x: np.concatenate([x[:1] - 1.0, x[1:] - x[:-1]])  # banded
        >>> res = optimize.least_squares(chain, np.zeros(100), sparsity="auto")
        >>> np.allclose(res.x, 1.0), res.sparse_jacobian.n_colours
        (True, 2)
    """
    kwargs = kwargs or {}
    flat0, unravel = _ravel_x0(x0)
    res_flat = lambda x: fun(unravel(x), *args, **kwargs)
    sparse = None
    if jac is None:
        pattern = jac_sparsity if jac_sparsity is not None else sparsity
        if pattern is not None:
            sparse = SparseJacobian(res_flat, pattern)
            jac = lambda x: sparse(x)  # noqa: E731
        else:
            J = jacobian(res_flat)
            jac = lambda x: np.atleast_2d(np.asarray(J(x), dtype=float))  # noqa: E731
    elif callable(jac):
        user_jac = jac
        jac = lambda x: user_jac(unravel(x), *args, **kwargs)  # noqa: E731
    res = so.least_squares(lambda x: np.asarray(res_flat(x), dtype=float), flat0, jac=jac, **kw)
    res.x = unravel(res.x)
    if sparse is not None:
        res.sparse_jacobian = sparse
    return res


def root(fun: Callable[..., Any], x0: Any, args: tuple[Any, ...] = (), method: str = "hybr",
         jac: Any = None, **kw: Any) -> so.OptimizeResult:
    """``scipy.optimize.root`` with the exact Jacobian for the methods that use one
    ('hybr', 'lm'); other methods run as in SciPy.

    Args:
        fun: the function ``fun(x, *args)`` whose root is sought; its output is flattened
            (it may be a pytree).
        x0: the starting point: an array, a list/tuple of numbers, or a pytree (which
            ``fun`` then receives).
        args: extra positional arguments of ``fun`` (and ``jac``), not differentiated.
        method: SciPy's method name (default ``"hybr"``).
        jac: None (exact for ``hybr`` and ``lm``, by dualrev), a callable
            ``jac(x, *args)`` of the pytree ``x``, or what SciPy accepts.
        **kw: the other arguments of ``scipy.optimize.root`` (``tol``, ``callback``,
            ``options``), passed on unchanged.
    Returns:
        SciPy's ``OptimizeResult``, with ``res.x`` in the structure of ``x0``.
    Example:
        >>> import numpy as np
        >>> from dualrev import optimize
        >>> res = optimize.root(lambda x: np.stack([x[0] ** 2 - 2.0, x[1] - x[0]]), np.ones(2))
        >>> print(res.success, np.round(res.x, 6))
        True [1.414214 1.414214]
    """
    flat0, unravel = _ravel_x0(x0)
    f_flat = lambda x, *a: _flat_result(fun(unravel(x), *a))
    if jac is None and method in ("hybr", "lm"):
        J = jacobian(lambda x, *a: fun(unravel(x), *a))
        jac = lambda x, *a: np.atleast_2d(np.asarray(J(x, *a), dtype=float))  # noqa: E731
    elif callable(jac):
        user_jac = jac
        jac = lambda x, *a: user_jac(unravel(x), *a)  # noqa: E731
    res = so.root(f_flat, flat0, args=args, method=method, jac=jac, **kw)
    res.x = unravel(res.x)
    return res
