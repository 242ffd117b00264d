"""scipy.optimize with exact derivatives: drop-in ``minimize``, ``least_squares``,
``root``, ``curve_fit``, ``fsolve``, ``root_scalar`` and ``minimize_scalar`` that supply
gradients, Hessians (or Hessian-vector products), constraint Jacobians and Hessians and
(sparse) residual Jacobians computed by dualrev.

Arguments and results follow SciPy (results are SciPy's own objects); for ``minimize``,
``least_squares`` and ``root``, ``x0`` may be a pytree (dict/list/tuple of arrays) and
``res.x`` comes back in the same structure. Whatever derivative the caller supplies
(``jac=``, ``hess=``, ``hessp=``, ``fprime=``) is used as given. Their solutions are
differentiable in the traced values the function reaches (``args``, its closure), by
the implicit function theorem (dualrev/implicit.py), as are scipy.optimize's own.
``progress=`` reports how far a long run is (dualrev/progress.py).
"""

from __future__ import annotations

import copy
import functools
import numbers
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg as sl
import scipy.optimize as so
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator

from . import implicit
from .errors import DualrevError, NoDerivativeRule, SparseOptionError
from .primitive import Tracer
from .progress import ProgressDisplay, ProgressRecord, Tracker, sink_of
from .replay import Replayed
from .reverse import is_lazy
from .sparse import SparseJacobian, Sparsity, hessian_sparsity, jacobian_sparsity
from .sparse import hessian as sparse_hessian
from .sparse import jacobian as sparse_jacobian
from .transforms import hessian, hvp, jacobian, jvp, value_and_grad
from .tree import ravel_pytree, tree_flatten

__all__ = ["ProgressDisplay", "ProgressRecord", "SparseDerivative", "SparseJacobian",
           "curve_fit", "fsolve", "least_squares", "minimize", "minimize_scalar", "root",
           "root_scalar"]

# Methods that use a Hessian: those that can take a Hessian-vector product get one
# (cheaper: no n-by-n matrix); the others get the full Hessian.
_HESSP_METHODS = {"newton-cg", "trust-ncg", "trust-krylov", "trust-constr"}
_HESS_METHODS = {"dogleg", "trust-exact"}
_NO_GRADIENT_METHODS = {"nelder-mead", "powell", "cobyla", "cobyqa"}


def _plain(value: Any, where: str) -> Any:
    """``value`` unless it is traced: a function handed to SciPy that closes over a value
    an enclosing transform traces (differentiating the solution with respect to it)."""
    leaves, _ = tree_flatten(value)
    if any(isinstance(v, Tracer) for v in leaves):
        raise NoDerivativeRule(
            f"dualrev.optimize.{where}", "The function's value is traced, but dualrev "
            "found no traced value among its args or in its closure (it reads one from a "
            "global or an object's attribute), so the solution cannot be differentiated "
            "by the implicit function theorem: pass the value through args=(...) or a "
            "closure (lambda x: f(x, theta)), or solve on dualrev.stop_gradient values.")
    return value


def _computed(value: Any, grad: Any) -> tuple[Any, Any]:
    """A value and its gradient as they are, or, where either is lazy (computed from
    Dask data), both computed in one ``dask.compute``: their graphs share the data's
    loading and the forward pass, which two computes would each run again."""
    if is_lazy(value) or any(is_lazy(v) for v in tree_flatten(grad)[0]):
        import dask

        return dask.compute(value, grad)
    return value, grad


def _flat_result(value: Any, where: str = "root") -> np.ndarray:
    _plain(value, where)
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


def _flat_vector(out: Any) -> Any:
    """A (possibly traced) function output as one flat vector."""
    leaves, _ = tree_flatten(out)
    if len(leaves) == 1:
        return np.ravel(leaves[0])
    return np.concatenate([np.ravel(v) for v in leaves])


def _same_args(old: tuple[Any, ...] | None, new: tuple[Any, ...]) -> bool:
    if old is None or len(old) != len(new):
        return False
    return all(u is w or (isinstance(u, np.ndarray) and isinstance(w, np.ndarray)
                          and u.shape == w.shape and np.array_equal(u, w))
               for u, w in zip(old, new, strict=True))


class SparseDerivative:
    """The sparse exact Jacobian or Hessian a ``dualrev.optimize`` solver used
    (``res.sparse_jacobian`` of ``least_squares``, ``res.sparse_hessian`` of
    ``minimize``, ``res.sparse_constraints`` of ``trust-constr``): ``D(x, *args)`` is
    ``dualrev.sparse.jacobian(f)`` or ``dualrev.sparse.hessian(f)`` at ``x`` as a
    ``scipy.sparse.csr_matrix``, one batched pass of ``n_colours`` tangents, with the
    pattern found once.

    The pattern is the one given, or the structural one detected at the first point
    (``dualrev.sparse.jacobian_sparsity``/``hessian_sparsity``). A detected pattern that
    is not structural (a branch or an index taken on values, ``sparsity.notes``) holds
    at the point it was found only, so it is detected again at every new point, and the
    colouring redone when it changed: the derivative is right at every point the solver
    visits, at the cost of ``detections`` extra passes. A second call at the same point
    (and equal arguments) returns the matrix computed before, so a solver's repeated
    products at one iterate cost one pass.

    Counters: ``passes`` (batched passes that computed a derivative), ``detections``
    (pattern detections), ``n_colours`` (tangents per pass) and ``mode`` (as
    ``dualrev.sparse`` chose them), ``pattern`` (the boolean pattern in use) and
    ``sparsity`` (the detected ``Sparsity``; None when given).

    Args:
        kind: ``"jacobian"`` or ``"hessian"``.
        f: the function ``f(x, *args)`` of a flat float vector ``x``; a 1-D output for
            ``"jacobian"``, a scalar for ``"hessian"``.
        pattern: the entries that may be non-zero: None (detect), a ``Sparsity``, or an
            array or sparse matrix, of shape ``(m, n)`` / ``(n, n)``.
        detect_args: maps the call's ``args`` to those detection runs on (a stand-in
            without zeros for a weight vector whose zeros a contraction would read).
        where: the solver's name, for errors.
    Example:
        >>> import numpy as np
        >>> from dualrev.optimize import SparseDerivative
        >>> rosen = lambda x: np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
        >>> H = SparseDerivative("hessian", rosen)
        >>> print(H(np.ones(4)).toarray())
        [[ 802. -400.    0.    0.]
         [-400. 1002. -400.    0.]
         [   0. -400. 1002. -400.]
         [   0.    0. -400.  200.]]
        >>> H.n_colours, H.passes, H.detections
        (3, 1, 1)
    """

    def __init__(self, kind: str, f: Callable[..., Any], pattern: Any = None, *,
                 detect_args: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = None,
                 where: str = "minimize") -> None:
        if kind not in ("jacobian", "hessian"):
            raise ValueError(f"SparseDerivative: kind must be 'jacobian' or 'hessian', "
                             f"got {kind!r}")
        self.kind = kind
        self.f = f
        self.where = where
        self.sparsity: Sparsity | None = pattern if isinstance(pattern, Sparsity) else None
        self._given = pattern is not None
        self.pattern: sp.csr_matrix | None = None
        if pattern is not None:
            self.pattern = (pattern.pattern if isinstance(pattern, Sparsity)
                            else sp.csr_matrix(pattern, dtype=bool))
        self._detect_args = detect_args
        self._fn: Any = None  # dualrev.sparse's SparseJacobianFunction/SparseHessianFunction
        self._last: tuple[Any, Any, Any] = (None, None, None)  # x, args, matrix
        self.passes = 0
        self.detections = 0

    @property
    def n_colours(self) -> int:
        """Tangents (or cotangents) per pass: the colours of the pattern in the direction
        ``dualrev.sparse`` chose (0 before the first call)."""
        return 0 if self._fn is None else int(self._fn.n_colours)

    @property
    def mode(self) -> str | None:
        """``"forward"`` (column colours) or ``"reverse"`` (row colours, a Jacobian with
        fewer of them); a Hessian's pass is forward-over-reverse. None before the first
        call."""
        return None if self._fn is None else self._fn.mode

    def _check(self, x: np.ndarray, args: tuple[Any, ...]) -> None:
        assert self.pattern is not None
        n = x.size
        rows = n if self.kind == "hessian" else np.size(self.f(x, *args))
        if self.pattern.shape != (rows, n):
            what = "Hessian" if self.kind == "hessian" else "Jacobian"
            raise SparseOptionError(
                self.where, f"the {what} pattern given has shape {self.pattern.shape}, "
                f"but the {n} unknowns and {rows} outputs need ({rows}, {n}); pass the "
                "pattern of the flattened x (and output), or None to detect it")

    def _detect(self, x: np.ndarray, args: tuple[Any, ...]) -> None:
        at = self._detect_args(args) if self._detect_args is not None else args
        find = jacobian_sparsity if self.kind == "jacobian" else hessian_sparsity
        found = find(self.f, x, *at)
        self.detections += 1
        if self.pattern is not None and (found.pattern != self.pattern).nnz == 0:
            self.sparsity = found
            return  # the same pattern: keep the colouring
        self.sparsity, self.pattern = found, found.pattern
        self._make()

    def _adopt(self, found: Sparsity) -> None:
        """Start from a pattern detected by the caller (counted as a detection)."""
        self.sparsity, self.pattern = found, found.pattern
        self.detections += 1
        self._make()

    def _make(self) -> None:
        make = sparse_jacobian if self.kind == "jacobian" else sparse_hessian
        self._fn = make(self.f, sparsity=self.pattern, format="csr")

    def __call__(self, x: Any, *args: Any) -> sp.csr_matrix:
        x = np.asarray(x, dtype=float)
        last_x, last_args, last_m = self._last
        if last_x is not None and _same_args(last_args, args) and np.array_equal(last_x, x):
            return last_m
        if self._fn is None:
            if self._given:
                self._check(x, args)
                self._make()
            else:
                self._detect(x, args)
        elif not self._given and self.sparsity is not None and not self.sparsity.structural:
            self._detect(x, args)  # the pattern holds at the point it was found only
        assert self._fn is not None
        M = sp.csr_matrix(self._fn(x, *args), dtype=float)
        self.passes += 1
        self._last = (x.copy(), tuple(np.array(a) if isinstance(a, np.ndarray) else a
                                      for a in args), M)
        return M

    def __repr__(self) -> str:
        shape = "?" if self.pattern is None else "x".join(map(str, self.pattern.shape))
        return (f"SparseDerivative({self.kind}, {shape}, {self.n_colours} colours, "
                f"{self.passes} passes, {self.detections} detections)")


#: up to this many variables the constraint Hessian is formed once per (x, v), by one
#: vectorised pass, and its products are plain matrix products: SciPy's projected CG asks
#: for several products per iteration, and below this size one dense pass costs less than
#: re-tracing c for each of them
DENSE_CONSTRAINT_HESSIAN_MAX = 64


def _constraint_hess(flat_fun: Callable[[np.ndarray], Any]) -> Callable[..., LinearOperator]:
    """``hess(x, v)`` for trust-constr: the Hessian of ``v . c(x)`` as a LinearOperator.

    Its products are forward-over-reverse HVPs (no n-by-n matrix) above
    ``DENSE_CONSTRAINT_HESSIAN_MAX`` variables; at or below it the matrix is formed on the
    first product, in one vectorised pass, and reused for the others at the same (x, v).
    """
    weighted = lambda x, v: np.sum(v * _flat_vector(flat_fun(x)))
    weighted_hvp = hvp(weighted)
    weighted_hessian = hessian(weighted)

    def hess(x: np.ndarray, v: np.ndarray) -> LinearOperator:
        x = np.array(x, dtype=float)  # a copy: SciPy may update its x in place
        v = np.array(v, dtype=float)
        dense: list[np.ndarray] = []

        def matvec(p: Any) -> np.ndarray:
            p = np.asarray(p, dtype=float).ravel()
            if x.size > DENSE_CONSTRAINT_HESSIAN_MAX:
                return np.asarray(weighted_hvp(x, v, p), dtype=float).ravel()
            if not dense:
                dense.append(np.asarray(weighted_hessian(x, v), dtype=float).reshape(
                    x.size, x.size))
            return dense[0] @ p

        return LinearOperator((x.size, x.size), matvec=matvec, rmatvec=matvec, dtype=float)

    return hess


def _replayed(fn: Callable[..., Any], use: bool) -> Callable[..., Any]:
    """``fn`` (a transformed function) recorded once and replayed for one solver run
    (``replay=True``, the default: the objective and the arguments are fixed for the
    run), or ``fn`` itself. Re-recordings are not warned about (the caller did not ask
    for replay); ``res.replay_stats`` reports them."""
    return Replayed(fn, max_variants=8, max_records=16, quiet=True) if use else fn


def _objective_hessp(f_flat: Callable[..., Any], n: int,
                     replay: bool = False) -> Callable[..., np.ndarray]:
    """``hessp(x, p, *args)`` for SciPy: a forward-over-reverse HVP; up to
    ``DENSE_CONSTRAINT_HESSIAN_MAX`` variables the Hessian at x is formed once, in one
    vectorised pass, and reused for the further products SciPy's inner CG asks at the
    same x (one slot: the last x and args)."""
    hv = _replayed(hvp(f_flat), replay)
    if n > DENSE_CONSTRAINT_HESSIAN_MAX:
        # SciPy may probe with integer vectors (LinearOperator dtype detection)
        return lambda x, p, *a: np.asarray(hv(x, *a, np.asarray(p, dtype=float)),
                                           dtype=float)
    H = _replayed(hessian(f_flat), replay)
    last: list[Any] = [None, None, None]  # x, args, Hessian

    def hessp(x: np.ndarray, p: np.ndarray, *a: Any) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        same_args = last[1] is not None and len(last[1]) == len(a) and all(
            u is v for u, v in zip(last[1], a, strict=True))
        if not same_args or not np.array_equal(last[0], x):
            last[:] = [x.copy(), a, np.asarray(H(x, *a), dtype=float).reshape(n, n)]
        return last[2] @ np.asarray(p, dtype=float).ravel()

    return hessp


def _square(H: Any, n: int) -> Any:
    """The caller's Hessian of a pytree or n-d ``x`` (``x.shape + x.shape`` for an
    array) as SciPy's (n, n) matrix; a LinearOperator or sparse matrix as given."""
    if isinstance(H, np.ndarray) or isinstance(H, (list, tuple)):
        H = np.asarray(H, dtype=float)
        if H.size != n * n:
            raise ValueError(f"minimize: hess returned {H.size} elements (shape {H.shape}); "
                             f"the {n} unknowns need an ({n}, {n}) Hessian")
        return H.reshape(n, n)
    return H


def _default_bfgs(hess: Any) -> bool:
    # NonlinearConstraint writes a fresh BFGS() into .hess when none is given, so an
    # untouched default BFGS is how "the caller gave no Hessian" looks afterwards.
    return type(hess) is so.BFGS and vars(hess) == vars(so.BFGS())


def _is_sparse(value: Any) -> bool:
    return isinstance(value, str) and value == "sparse"


def _sparse_constraint_hess(flat_fun: Callable[[np.ndarray], Any],
                            used: list[SparseDerivative]) -> Callable[..., sp.csr_matrix]:
    """``hess(x, v)`` for trust-constr: the Hessian of ``v . c(x)`` as a sparse matrix,
    from one batched HVP pass per (x, v); its pattern, the union of the constraints'
    Hessian patterns, is detected with ``v`` all ones (a weight's zeros are not
    structural: ``v`` changes at every iterate)."""
    weighted = lambda x, v: np.sum(v * _flat_vector(flat_fun(x)))
    H = SparseDerivative("hessian", weighted, detect_args=lambda a: (np.ones_like(a[0]),))
    used.append(H)
    return lambda x, v: H(x, np.asarray(v, dtype=float))


def _sparse_constraint_jac(flat_fun: Callable[[np.ndarray], Any], pattern: Any,
                           used: list[SparseDerivative]) -> Callable[..., sp.csr_matrix]:
    J = SparseDerivative("jacobian", lambda x: _flat_vector(flat_fun(x)),
                         None if isinstance(pattern, Sparsity) else pattern)
    if isinstance(pattern, Sparsity):
        J._adopt(pattern)
    used.append(J)
    return J


#: trust-constr: a constraint without a Jacobian of its own whose Jacobian has at least
#: this many entries (m * n) gets it sparse when its structural pattern (detected at
#: ``x0``) fills at most ``AUTO_SPARSE_DENSITY`` of it. Measured on an optimal-control
#: chain (docs/performance.md, "Sparse Newton"): the dense Jacobian and SciPy's dense QR
#: cost 7x at 1001 x 501 and 400x at 4001 x 2001; below this size the dense path, SciPy's
#: default factorisation, is kept.
AUTO_SPARSE_CONSTRAINT_ENTRIES = 100_000
AUTO_SPARSE_DENSITY = 0.1


def _auto_constraint_pattern(flat_fun: Callable[[np.ndarray], Any],
                             x0: np.ndarray | None) -> Sparsity | None:
    """The structural Jacobian pattern of a large, sparse constraint; None keeps the dense
    Jacobian (small, dense enough, or a function detection cannot run: the dense path
    is the one that always worked)."""
    if x0 is None or x0.size < 2:
        return None
    vec = lambda x: _flat_vector(flat_fun(x))
    m = int(np.size(vec(x0)))
    if m * x0.size < AUTO_SPARSE_CONSTRAINT_ENTRIES:
        return None
    try:
        found = jacobian_sparsity(vec, x0)
    except DualrevError:
        return None
    if found.nnz > AUTO_SPARSE_DENSITY * m * x0.size:
        return None
    return found


def _flat_constraint(con: Any, unravel: Callable[[Any], Any],
                     exact_hess: bool = False, sparse: bool = False,
                     x0: np.ndarray | None = None) -> Any:
    """A constraint on the flat vector, with the exact Jacobian where none was given and,
    with ``exact_hess`` (trust-constr), the exact Hessian of ``v . c(x)`` likewise.

    Sparse derivatives (trust-constr only): ``jac="sparse"`` / ``hess="sparse"`` on the
    constraint, or ``sparse`` (the objective's ``hess="sparse"``: the whole problem is
    sparse) for a constraint that gives neither; a ``NonlinearConstraint``'s
    ``finite_diff_jac_sparsity`` (SciPy's pattern for its differences) is the pattern of
    the exact sparse Jacobian that replaces them; a large constraint with a sparse
    structural pattern at ``x0`` gets a sparse Jacobian unasked
    (``AUTO_SPARSE_CONSTRAINT_ENTRIES``). The ``SparseDerivative``s used are listed in
    the returned constraint's ``_dualrev_sparse``."""
    if isinstance(con, dict):
        jac_given, hess_given = con.get("jac"), con.get("hess")
    elif isinstance(con, so.NonlinearConstraint):
        jac_given, hess_given = con.jac, con.hess
    else:
        return con  # LinearConstraint and friends act on the flat vector as given
    if (_is_sparse(jac_given) or _is_sparse(hess_given)) and not exact_hess:
        raise SparseOptionError(
            "minimize", "a constraint's jac='sparse' or hess='sparse' needs "
            "method='trust-constr' (the only method that takes sparse constraint "
            "derivatives): use it, or drop 'sparse' for the dense exact ones")
    used: list[SparseDerivative] = []
    if isinstance(con, dict):
        con = dict(con)
        fun = con["fun"]
        flat_fun = lambda x, *a: fun(unravel(x), *a)
        con["fun"] = flat_fun
        ctype = con.get("type")
        to_object = exact_hess and isinstance(ctype, str) and ctype.lower() in ("eq", "ineq")
        a = tuple(con.get("args", ()))
        fun_a = lambda x: flat_fun(x, *a)
        auto = (_auto_constraint_pattern(fun_a, x0)
                if to_object and jac_given is None and not sparse else None)
        if (_is_sparse(jac_given) or (sparse and jac_given is None and to_object)
                or auto is not None):
            J = _sparse_constraint_jac(fun_a, auto, used)
            con["jac"] = lambda x, *_: J(x)
        elif jac_given is None:
            con["jac"] = jacobian(flat_fun)
        else:
            user_jac = jac_given
            con["jac"] = lambda x, *a: user_jac(unravel(x), *a)
        con.pop("hess", None)  # not SciPy's: it goes on the NonlinearConstraint below
        if to_object:
            # trust-constr turns a dict into a NonlinearConstraint with a BFGS Hessian;
            # doing the conversion here lets it carry the exact one instead
            c_jac = con["jac"]
            ub = 0.0 if ctype.lower() == "eq" else np.inf
            if _is_sparse(hess_given) or (sparse and hess_given is None):
                c_hess: Any = _sparse_constraint_hess(fun_a, used)
            elif hess_given is None:
                c_hess = _constraint_hess(fun_a)
            else:
                user_hess = hess_given
                c_hess = lambda x, v: _square(user_hess(unravel(x), v), np.size(x))
            out = so.NonlinearConstraint(fun_a, 0.0, ub, jac=lambda x: c_jac(x, *a),
                                         hess=c_hess)
            out._dualrev_sparse = used
            return out
        return con
    fun = con.fun
    flat_fun = lambda x: fun(unravel(x))
    jac = con.jac
    fd_pattern = getattr(con, "finite_diff_jac_sparsity", None)
    default_jac = isinstance(jac, str) or jac is None
    if exact_hess and default_jac and not sparse and fd_pattern is None:
        fd_pattern = _auto_constraint_pattern(flat_fun, x0)
    if _is_sparse(jac) or (default_jac and exact_hess
                           and (sparse or fd_pattern is not None)):
        jac = _sparse_constraint_jac(flat_fun, fd_pattern, used)
    elif isinstance(jac, str) or jac is None:  # finite differences by default: replace
        jac = jacobian(flat_fun)
    else:
        user_jac = jac
        jac = lambda x: user_jac(unravel(x))
    hess = con.hess
    untouched = hess is None or _default_bfgs(hess)
    if _is_sparse(hess) or (exact_hess and sparse and untouched):
        hess = _sparse_constraint_hess(flat_fun, used)
    elif exact_hess and untouched:
        hess = _constraint_hess(flat_fun)
    elif callable(hess):
        user_hess = hess
        hess = lambda x, v: _square(user_hess(unravel(x), v), np.size(x))
    # a copy keeps every other attribute (keep_feasible, the finite-difference
    # options) whatever SciPy version defines them
    con = copy.copy(con)
    con.fun, con.jac, con.hess = flat_fun, jac, hess
    con._dualrev_sparse = used
    return con


def minimize(fun: Callable[..., Any], x0: Any, args: tuple[Any, ...] = (),
             method: str | None = None, jac: Any = None, hess: Any = None,
             hessp: Any = None, bounds: Any = None,
             constraints: Any = (), tol: float | None = None, callback: Any = None,
             options: dict[str, Any] | None = None, *,
             replay: bool = True, hess_sparsity: Any = None,
             progress: Any = False) -> so.OptimizeResult:
    """``scipy.optimize.minimize`` with the exact gradient (value and gradient from one
    reverse pass, ``jac=True``), the exact Hessian or Hessian-vector product for methods
    that use one, and exact constraint Jacobians. Same signature and result.

    Methods that take a Hessian-vector product (``newton-cg``, ``trust-ncg``,
    ``trust-krylov``, ``trust-constr``) get ``hvp`` (no n-by-n matrix); ``dogleg`` and
    ``trust-exact`` get the full ``hessian``; the derivative-free methods (``nelder-mead``,
    ``powell``, ``cobyla``, ``cobyqa``) get no gradient. Constraints given as dicts or
    ``NonlinearConstraint`` without a Jacobian get the exact one (``jacobian``);
    ``LinearConstraint`` and bounds act on the flattened vector as given. For
    ``trust-constr`` each nonlinear constraint without a Hessian (for a
    ``NonlinearConstraint``: the untouched default ``BFGS()`` it stores when given none)
    gets the exact ``hess(x, v)``, the Hessian of ``v . c(x)``, as a ``LinearOperator``
    of Hessian-vector products; dicts become ``NonlinearConstraint`` to carry it.

    Sparse Hessians: ``hess="sparse"`` (or a ``hess_sparsity`` pattern) computes the
    objective's exact Hessian as a ``scipy.sparse.csr_matrix`` once per iterate, by
    ``dualrev.sparse.hessian`` (one batched pass of Hessian-vector products, one per
    colour of its pattern: 3 for a chained Rosenbrock at any n); ``newton-cg`` and
    ``trust-constr`` get the matrix, ``trust-ncg`` and ``trust-krylov`` its products
    (their ``np.dot`` of a sparse matrix would be wrong). It pays where the inner
    Krylov solver needs many products per iterate (ill-conditioned Hessians: discretised
    PDEs); docs/sparse.md has the numbers. ``res.sparse_hessian`` reports the colours and
    passes. With ``trust-constr``, ``hess="sparse"`` also makes the constraints' exact
    Jacobians and Hessians sparse (those that give neither); one constraint asks for them
    with ``jac="sparse"`` / ``hess="sparse"`` (a ``NonlinearConstraint``'s arguments or
    a dict's keys), and a ``NonlinearConstraint``'s ``finite_diff_jac_sparsity`` is the
    pattern of its exact sparse Jacobian. A constraint that gives no Jacobian gets it
    sparse unasked when it has at least ``AUTO_SPARSE_CONSTRAINT_ENTRIES`` (10^5)
    entries of which its structural pattern at ``x0`` fills at most a tenth (the dense
    Jacobian and SciPy's dense QR cost 400x at 4001 x 2001); give ``jac=`` to keep
    your own. ``res.sparse_constraints`` lists the
    ``SparseDerivative``s used. What cannot be honoured (another method, ``hessp`` too)
    raises ``SparseOptionError``.

    Args:
        fun: the objective ``fun(x, *args)``, returning a real scalar, written in NumPy.
        x0: the starting point: an array, a list/tuple of numbers (one vector, as SciPy
            reads it), or a pytree (dict/list/tuple of arrays), which ``fun`` then receives.
        args: extra positional arguments of ``fun`` (and of ``jac``, ``hess``, ``hessp``);
            the solution is differentiable in their traced leaves and in the traced values
            ``fun`` closes over (docs/users.md, "Implicit differentiation").
        method: SciPy's method name; None: SciPy's default (``bfgs``, ``l-bfgs-b`` with
            bounds, ``slsqp`` with constraints); or a custom minimizer, called as SciPy
            calls it, ``method(fun, x0, args=, jac=, hess=, hessp=, bounds=,
            constraints=, callback=, **options)``, with the exact ``jac``, ``hess`` and
            ``hessp`` (each of the flat vector) unless the caller gave their own.
        jac: None (exact, by dualrev), a callable ``jac(x, *args)`` (of the pytree ``x``;
            its result is flattened), ``True`` (``fun`` returns ``(value, gradient)``, the
            gradient in the structure of ``x``, as in SciPy), or a finite-difference scheme
            (``"2-point"``).
        hess: None (exact where the method uses one), ``"sparse"`` (exact and sparse,
            see above), or a callable/strategy, as in SciPy; a callable's array result
            for a pytree or n-d ``x`` (``x.shape + x.shape``) is read as the (n, n)
            matrix of the flattened ``x``.
        hessp: None, or a callable ``hessp(x, p, *args)`` of pytrees, as in SciPy.
        bounds: as in SciPy, on the flattened vector.
        constraints: as in SciPy (a dict, a constraint object, or a sequence of them);
            ``fun``s of dicts and ``NonlinearConstraint``s (and a ``NonlinearConstraint``'s
            own ``jac`` and ``hess``) receive the pytree ``x``.
        tol: as in SciPy.
        callback: as in SciPy (it receives the flat vector).
        options: as in SciPy.
        replay: record the exact value-and-gradient (and Hessian or Hessian-vector
            product) functions once and replay them for the run's later calls
            (``dualrev.replay``: same results, without re-running ``fun``'s Python each
            time; a branch on values records again). ``False`` runs ``fun`` under the
            transforms at every call. See docs/replay.md for what a recording freezes.
            (The sparse Hessian's batched pass is not replayed.)
        hess_sparsity: the pattern of the sparse Hessian of the flattened ``x``: a
            ``dualrev.sparse.Sparsity`` or an (n, n) array or sparse matrix of the
            entries that may be non-zero; None: detected structurally at ``x0``
            (``dualrev.sparse.hessian_sparsity``). Given alone, it implies
            ``hess="sparse"``.
        progress: False (default): nothing reported, nothing changed. True: a
            live line on stderr in a terminal, a line every 2 s in a log, a display
            updated in place in a Jupyter notebook (``ProgressDisplay``; pass one to
            choose the stream or cadence). A callable: called with a ``ProgressRecord``
            per iteration (SciPy's callback) and a final one. The
            results and iterates are the same either way; ``callback`` still receives
            what SciPy gives it.
    Returns:
        SciPy's ``OptimizeResult``, with ``res.x`` in the structure of ``x0`` (an ndarray
        of ``x0``'s shape for an array) and the gradient ``res.jac`` (``res.grad`` for
        ``trust-constr``) likewise; with ``replay``, ``res.replay_stats`` (the
        ``ReplayStats`` of the value-and-gradient function) where dualrev supplied it;
        ``res.sparse_hessian`` and ``res.sparse_constraints`` where sparse derivatives
        were used.
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
        >>> chained = lambda x: np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
        >>> res = optimize.minimize(chained, np.full(1000, 0.9), method="newton-cg",
        ...                         hess="sparse")
        >>> res.success, res.sparse_hessian.n_colours, res.sparse_hessian.passes == res.nhev
        (True, 3, True)
    """
    sink = sink_of(progress, "minimize")
    flat0, unravel = _ravel_x0(implicit.plain_values(x0))
    # the plain solve of an implicitly differentiated solution keeps dualrev's keywords
    plain_minimize = functools.partial(minimize, replay=replay, hess_sparsity=hess_sparsity,
                                       progress=progress)
    solved = implicit.minimize(plain_minimize, fun, x0, args, method, jac, hess, hessp,
                               bounds, constraints, tol, callback, options, unravel=unravel,
                               name="dualrev.optimize.minimize")
    if solved is not None:
        return solved
    custom = callable(method)
    # a callable method is SciPy's custom minimizer: it is given jac, hess and hessp as
    # SciPy would give them, so it gets every derivative dualrev can supply
    meth = "_custom" if custom else (method or _default_method(bounds, constraints)).lower()
    sparse_hess = _sparse_hessian_asked(meth, hess, hessp, hess_sparsity)
    f_flat = lambda x, *a: fun(unravel(x), *a)
    kw: dict[str, Any] = {}
    objective: Callable[..., Any]
    vg: Any = None
    if jac is None and meth not in _NO_GRADIENT_METHODS:
        vg = _replayed(value_and_grad(f_flat), replay)

        def objective(x: np.ndarray, *a: Any) -> tuple[float, np.ndarray]:
            v, g = _computed(*vg(x, *a))
            return float(_plain(v, "minimize")), np.asarray(_plain(g, "minimize"), dtype=float)

        kw["jac"] = True
    elif jac is True:  # SciPy's convention: fun returns (value, gradient) itself

        def objective(x: np.ndarray, *a: Any) -> tuple[float, np.ndarray]:
            v, g = _computed(*f_flat(x, *a))
            return float(_plain(v, "minimize")), _flat_result(g, "minimize")

        kw["jac"] = True
    else:
        objective = lambda x, *a: float(_plain(f_flat(x, *a), "minimize"))
        if callable(jac):
            kw["jac"] = lambda x, *a: _flat_result(jac(unravel(x), *a), "minimize")
        elif jac is not None:
            kw["jac"] = jac
    sparse_h: SparseDerivative | None = None
    if sparse_hess:
        f_value = (lambda x, *a: f_flat(x, *a)[0]) if jac is True else f_flat
        sparse_h = SparseDerivative("hessian", f_value, hess_sparsity)
        if meth in ("newton-cg", "trust-constr", "_custom"):
            # both take a sparse matrix: Newton-CG forms A = hess(x) once per iteration
            # and calls A.dot in its CG loop; trust-constr wraps it in its operator
            kw["hess"] = sparse_h
        if meth != "newton-cg" and meth != "trust-constr":
            # trust-ncg/trust-krylov would np.dot(hess, p) a sparse matrix (an object
            # array, wrong): they get products of the matrix formed once per iterate
            kw["hessp"] = lambda x, p, *a: sparse_h(x, *a) @ np.asarray(p, dtype=float)
    elif hess is not None or hessp is not None:
        if callable(hess):
            kw["hess"] = lambda x, *a: _square(hess(unravel(x), *a), flat0.size)
        elif hess is not None:
            kw["hess"] = hess
        if hessp is not None:
            kw["hessp"] = lambda x, p, *a: _flat_result(hessp(unravel(x), unravel(p), *a),
                                                        "minimize")
    else:
        # with jac=True fun returns (value, gradient): the Hessian is the value's
        f_value = (lambda x, *a: f_flat(x, *a)[0]) if jac is True else f_flat
        if meth in _HESSP_METHODS or custom:
            kw["hessp"] = _objective_hessp(f_value, flat0.size, replay)
        if meth in _HESS_METHODS or custom:
            H = _replayed(hessian(f_value), replay)
            kw["hess"] = lambda x, *a: np.asarray(H(x, *a), dtype=float).reshape(
                flat0.size, flat0.size)
    if isinstance(constraints, (dict, so.NonlinearConstraint, so.LinearConstraint)):
        constraints = [constraints]
    constraints = [_flat_constraint(c, unravel, meth == "trust-constr", sparse_hess, flat0)
                   for c in constraints]
    tracker: Tracker | None = None
    if sink is not None:
        tracker = Tracker(f"minimize({'custom' if custom else meth})", sink, unravel)
        measure = _minimize_measure(meth, bounds, flat0.size, options)
        objective = _watch_minimize(tracker, objective, kw, measure)
        callback = tracker.callback(callback, meth)
    try:
        res = so.minimize(objective, flat0, args=args, method=method, bounds=bounds,
                          constraints=constraints, tol=tol, callback=callback,
                          options=options, **kw)
    except BaseException:
        if tracker is not None:
            tracker.aborted()
        raise
    if custom and not isinstance(res, so.OptimizeResult):
        if tracker is not None:
            tracker.finished()
        return res  # SciPy hands a custom method's result back as it is
    if tracker is not None:
        xf = np.asarray(res.x, dtype=float)
        g = res.get("grad" if meth == "trust-constr" else "jac")
        gnorm = (res.get("optimality") if meth == "trust-constr" else
                 measure(xf, g) if isinstance(g, np.ndarray) and g.shape == xf.shape
                 else None)
        tracker.finished(iteration=res.get("nit"), fun=res.get("fun"), nfev=res.get("nfev"),
                         njev=res.get("njev"), nhev=res.get("nhev"), gnorm=gnorm,
                         success=res.get("success"), message=res.get("message"), x=xf)
    res.x = unravel(res.x)
    # trust-constr's res.jac holds the constraint Jacobians (one per constraint, shapes
    # differ) and res.grad the objective's gradient; the other methods put it in res.jac.
    key = "grad" if meth == "trust-constr" else "jac"
    if isinstance(res.get(key), np.ndarray) and res[key].shape == flat0.shape:
        res[key] = unravel(np.asarray(res[key], dtype=float))
    if isinstance(vg, Replayed):
        res.replay_stats = vg.stats
    if sparse_h is not None:
        res.sparse_hessian = sparse_h
    used = [d for c in constraints for d in getattr(c, "_dualrev_sparse", ())]
    if used:
        res.sparse_constraints = used
    return res


#: the trust-region methods test the gradient's 2-norm (the others its max-norm)
_TWO_NORM_METHODS = {"trust-ncg", "trust-krylov", "trust-exact", "dogleg"}


def _minimize_measure(meth: str, bounds: Any, n: int,
                      options: dict[str, Any] | None) -> Callable[[np.ndarray, Any], Any]:
    """``measure(x, g)``: the first-order measure of ``progress=`` records, as the method
    tests it (``ProgressRecord.grad_norm``); None for trust-constr, whose callback
    reports SciPy's ``optimality``."""
    if meth == "trust-constr":
        return lambda x, g: None
    if meth in _TWO_NORM_METHODS:
        return lambda x, g: float(np.linalg.norm(np.ravel(g)))
    lb, ub = implicit._bounds_arrays(bounds, n, "dualrev.optimize.minimize", pairs=True)
    if lb is not None:
        # L-BFGS-B's projected gradient: the step to the box along -g
        return lambda x, g: _max_norm(np.clip(x - np.ravel(g), lb, ub) - x)
    order = (options or {}).get("norm", np.inf) if meth in ("bfgs", "cg") else np.inf
    if order == np.inf:
        return lambda x, g: _max_norm(g)
    return lambda x, g: float(np.linalg.norm(np.ravel(g), ord=order))


def _max_norm(g: Any) -> float:
    g = np.ravel(np.asarray(g, dtype=float))
    return float(np.max(np.abs(g))) if g.size else 0.0


def _timed(tracker: Tracker, fn: Callable[..., Any], label: str,
           kind: str = "hess") -> Callable[..., Any]:
    """``fn`` (a Hessian, its products) announced to the display before it runs, and
    counted as an evaluation of ``kind``."""
    def timed(x: Any, *rest: Any) -> Any:
        out = tracker.timed(label, fn, x, *rest)
        tracker.evaluated(kind, x)
        return out

    return timed


# SciPy's robust losses rho(z) and rho'(z), z = (r / f_scale) ** 2
_LOSSES: dict[str, tuple[Callable[[np.ndarray], Any], Callable[[np.ndarray], Any]]] = {
    "linear": (lambda z: z, lambda z: np.ones_like(z)),
    "soft_l1": (lambda z: 2.0 * (np.sqrt(1.0 + z) - 1.0), lambda z: 1.0 / np.sqrt(1.0 + z)),
    "huber": (lambda z: np.where(z <= 1.0, z, 2.0 * np.sqrt(np.maximum(z, 1.0)) - 1.0),
              lambda z: np.where(z <= 1.0, 1.0, 1.0 / np.sqrt(np.maximum(z, 1.0)))),
    "cauchy": (np.log1p, lambda z: 1.0 / (1.0 + z)),
    "arctan": (np.arctan, lambda z: 1.0 / (1.0 + z * z)),
}


def _cost_of(loss: Any, f_scale: Any) -> Callable[[np.ndarray], tuple[Any, Any]]:
    """``r -> (cost, w)``: SciPy's ``res.cost`` of the residuals ``r``,
    ``0.5 * f_scale**2 * sum(rho((r / f_scale)**2))``, and the weights ``w = rho'`` of its
    gradient ``J^T (w * r)``; ``(None, None)`` for a loss SciPy will refuse itself."""
    c2 = float(f_scale) ** 2

    def of(r: np.ndarray) -> tuple[Any, Any]:
        z = r * r / c2
        if callable(loss):
            rho = np.asarray(loss(z), dtype=float)
            return 0.5 * c2 * float(np.sum(rho[0])), rho[1]
        if not isinstance(loss, str) or loss not in _LOSSES:
            return None, None
        rho, drho = _LOSSES[loss]
        return 0.5 * c2 * float(np.sum(rho(z))), drho(z)

    return of


def _lsq_measure(method: str, bounds: Any, n: int) -> Callable[[np.ndarray, Any], float]:
    """``measure(x, g)``: SciPy's ``optimality`` of least squares at ``x`` from the cost's
    gradient ``g``: its max-norm, scaled at bounds as 'trf' scales it (Coleman-Li) or
    zero where 'dogbox' holds a bound."""
    lb, ub = implicit._bounds_arrays(bounds, n, "dualrev.optimize.least_squares",
                                     pairs=False)
    if lb is None or method == "lm":
        return lambda x, g: _max_norm(g)
    if method == "dogbox":
        def held(x: np.ndarray, g: Any) -> float:
            g = np.array(np.ravel(g), dtype=float)
            g[((x == lb) & (g > 0)) | ((x == ub) & (g < 0))] = 0.0
            return _max_norm(g)

        return held

    def scaled(x: np.ndarray, g: Any) -> float:
        g = np.ravel(np.asarray(g, dtype=float))
        v = np.ones_like(x)
        up = (g < 0) & np.isfinite(ub)
        v[up] = ub[up] - x[up]
        down = (g > 0) & np.isfinite(lb)
        v[down] = x[down] - lb[down]
        return _max_norm(g * v)

    return scaled


class _Residuals:
    """A least-squares problem's residual and Jacobian functions as SciPy gets them,
    counted and reported to a ``Tracker``: the cost at each point, and, from the
    Jacobian there, SciPy's ``optimality``. ``weigh`` maps raw residuals (and a
    Jacobian) to those SciPy minimises (curve_fit's ``sigma``)."""

    def __init__(self, tracker: Tracker, cost: Callable[[np.ndarray], tuple[Any, Any]],
                 measure: Callable[[np.ndarray, Any], float],
                 weigh: Callable[[Any], Any] | None = None) -> None:
        self.tracker, self.cost, self.measure = tracker, cost, measure
        self.weigh = weigh
        self.last: list[Any] = [None, None]  # x, w * r: the gradient's right-hand side

    def residual(self, x: Any, out: Any) -> None:
        x = np.ravel(np.asarray(x, dtype=float))
        r = np.ravel(np.asarray(out, dtype=float))
        if self.weigh is not None:
            r = self.weigh(r)
        fun, w = (None, None) if r is None else self.cost(r)
        self.last = [x.copy(), None if w is None else w * r]
        self.tracker.evaluated("fun", x, fun)

    def jacobian(self, x: Any, J: Any) -> None:
        x = np.ravel(np.asarray(x, dtype=float))
        gnorm = None
        last_x, wr = self.last
        if wr is not None and last_x.shape == x.shape and np.array_equal(last_x, x):
            if self.weigh is not None:
                J = self.weigh(np.asarray(J, dtype=float))
            if J is not None:
                gnorm = self.measure(x, J.T @ wr)
        self.tracker.evaluated("jac", x, gnorm=gnorm)

    def wrap_jacobian(self, jac: Callable[..., Any]) -> Callable[..., Any]:
        def watched(x: Any, *rest: Any) -> Any:
            J = self.tracker.timed("Jacobian", jac, x, *rest)
            self.jacobian(x, J)
            return J

        return watched


def _watch_minimize(tracker: Tracker, objective: Callable[..., Any], kw: dict[str, Any],
                    measure: Callable[[np.ndarray, Any], Any]) -> Callable[..., Any]:
    """The objective, gradient and Hessian SciPy gets, counted and reported to
    ``tracker`` (``kw``'s derivatives are replaced in place); each returns what it
    wrapped returns."""
    if kw.get("jac") is True:
        def watched(x: np.ndarray, *a: Any) -> Any:
            out = tracker.timed("value and gradient", objective, x, *a)
            g = np.array(out[1], dtype=float)  # (SciPy may update its own in place)
            tracker.evaluated("fun+jac", x, out[0], lambda x: measure(x, g))
            return out
    else:
        def watched(x: np.ndarray, *a: Any) -> Any:
            value = tracker.timed("objective", objective, x, *a)
            tracker.evaluated("fun", x, value)
            return value

        jac = kw.get("jac")
        if callable(jac):
            def watched_jac(x: np.ndarray, *a: Any) -> Any:
                g = jac(x, *a)
                kept = np.array(g, dtype=float)
                tracker.evaluated("jac", x, gnorm=lambda x: measure(x, kept))
                return g

            kw["jac"] = watched_jac
    hess = kw.get("hess")
    if callable(hess) and not isinstance(hess, so.HessianUpdateStrategy):
        kw["hess"] = _timed(tracker, hess, "Hessian")
    if callable(kw.get("hessp")):
        kw["hessp"] = _timed(tracker, kw["hessp"], "Hessian-vector product")
    return watched


def _sparse_hessian_asked(meth: str, hess: Any, hessp: Any, hess_sparsity: Any) -> bool:
    """Whether minimize computes the objective's Hessian sparse (``hess="sparse"``, or a
    ``hess_sparsity`` with no ``hess``); refuses what cannot be honoured."""
    sparse = isinstance(hess, str) and hess == "sparse"
    if hess_sparsity is not None and not sparse:
        if hess is not None:
            raise SparseOptionError(
                "minimize", f"hess_sparsity= is the pattern of dualrev's sparse Hessian, "
                f"but hess={hess!r} was given: drop hess_sparsity=, or pass "
                "hess='sparse' (or no hess)")
        sparse = True
    if not sparse:
        return False
    if hessp is not None:
        raise SparseOptionError(
            "minimize", "hess='sparse' and hessp= both give the Hessian: drop one")
    if meth in _HESS_METHODS:
        raise SparseOptionError(
            f"minimize(method={meth!r}, hess='sparse')", f"{meth} factorises a dense "
            "Hessian, so a sparse one would be made dense: drop hess='sparse' (dualrev "
            "then supplies the dense exact Hessian), or use newton-cg, trust-ncg, "
            "trust-krylov or trust-constr, which use the sparse matrix's products")
    if meth not in _HESSP_METHODS and meth != "_custom":
        raise SparseOptionError(
            f"minimize(method={meth!r}, hess='sparse')", f"{meth} uses no Hessian, so "
            "hess='sparse' would be ignored: drop it, or use newton-cg, trust-ncg, "
            "trust-krylov or trust-constr")
    return True


def least_squares(fun: Callable[..., Any], x0: Any, jac: Any = None, *,
                  jac_sparsity: Any = None, sparsity: Any = None, args: tuple[Any, ...] = (),
                  kwargs: dict[str, Any] | None = None, replay: bool = True,
                  progress: Any = False, **kw: Any) -> so.OptimizeResult:
    """``scipy.optimize.least_squares`` with the exact Jacobian of the residuals.

    With ``jac_sparsity`` (the structural nonzeros, as for SciPy) or ``sparsity="auto"``
    (the structural pattern, ``dualrev.sparse.jacobian_sparsity``, found once at
    ``x0``) the Jacobian is computed sparse by ``dualrev.sparse.jacobian`` — one batched
    pass of a few tangents, the colours of the pattern — and handed to SciPy as a
    ``csr_matrix``: its 'trf' and 'dogbox' methods then solve their subproblems by
    ``lsmr`` (``x_scale``, ``loss`` and bounds work as with a dense Jacobian). The
    ``SparseDerivative`` used is returned as ``res.sparse_jacobian`` (``n_colours``,
    ``passes``, ``detections``). ``method='lm'`` and ``tr_solver='exact'``, which take
    dense Jacobians only, are refused with the sparsity (``SparseOptionError``), as is
    a sparsity given with the caller's ``jac``, except ``jac_sparsity`` with a
    finite-difference ``jac`` ("2-point"), which goes to SciPy's differences as in SciPy.
    Without either, the dense Jacobian comes from ``dualrev.jacobian``.

    Args:
        fun: the residuals ``fun(x, *args, **kwargs)``, returning a 1-D array (an n-d
            array or a pytree of arrays is flattened, in ``tree_flatten``'s order).
        x0: the starting point: an array, a list/tuple of numbers, or a pytree (which
            ``fun`` then receives).
        jac: None (exact, by dualrev), a callable ``jac(x, *args, **kwargs)`` of the pytree
            ``x``, or one of SciPy's finite-difference schemes.
        jac_sparsity: the Jacobian's structural nonzeros, an (m, n) array or sparse matrix
            (``n`` the number of elements of ``x0``), a ``dualrev.sparse.Sparsity``, or
            ``"auto"``: compute the Jacobian sparse (it is not passed on to SciPy).
        sparsity: the same as ``jac_sparsity`` (give one of them).
        args: extra positional arguments of ``fun`` (and ``jac``); the solution is
            differentiable in their traced leaves (and in what ``fun`` closes over).
        kwargs: extra keyword arguments of ``fun`` (and ``jac``), likewise.
        replay: record the exact dense Jacobian function once and replay it for the
            run's later calls (``dualrev.replay``; see ``minimize``); ``False`` runs
            ``fun`` under the transform at every call.
        progress: False (default): nothing reported, nothing changed. True: a
            live line on stderr in a terminal, a line every 2 s in a log, a display
            updated in place in a Jupyter notebook (``ProgressDisplay``; pass one to
            choose the stream or cadence). A callable: called with a ``ProgressRecord``
            per Jacobian evaluation (one per iteration; per
            evaluation of ``fun`` with a finite-difference ``jac``) and a final one; see
            ``minimize``.
        **kw: the other arguments of ``scipy.optimize.least_squares`` (``method``,
            ``bounds``, ``loss``, ``xtol``, ...), passed on unchanged.
    Returns:
        SciPy's ``OptimizeResult``, with ``res.x`` in the structure of ``x0``, ``res.jac``
        the (m, n) Jacobian at the solution (sparse when computed sparse), and
        ``res.sparse_jacobian`` (a ``SparseDerivative``) where a sparse Jacobian was
        used.
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
    sink = sink_of(progress, "least_squares")
    flat0, unravel = _ravel_x0(implicit.plain_values(x0))
    solver = functools.partial(least_squares, replay=replay, progress=progress)
    solved = implicit.least_squares(solver, fun, x0, args, kwargs, unravel=unravel,
                                    name="dualrev.optimize.least_squares", jac=jac,
                                    jac_sparsity=jac_sparsity, sparsity=sparsity, **kw)
    if solved is not None:
        return solved
    kwargs = kwargs or {}
    # a pytree or n-d output is flattened, as root does: the sum of squares is the same
    res_flat = lambda x: _flat_vector(fun(unravel(x), *args, **kwargs))
    sparse = None
    pattern = _least_squares_sparsity(jac, jac_sparsity, sparsity, kw)
    if jac is None:
        if pattern is not None:
            sparse = SparseDerivative("jacobian", res_flat,
                                      None if isinstance(pattern, str) else pattern,
                                      where="least_squares")
            jac = sparse
        else:
            J = _replayed(jacobian(res_flat), replay)
            jac = lambda x: np.atleast_2d(np.asarray(J(x), dtype=float))  # noqa: E731
    elif callable(jac):
        user_jac = jac
        jac = lambda x: user_jac(unravel(x), *args, **kwargs)  # noqa: E731
    residuals = lambda x: np.asarray(_plain(res_flat(x), "least_squares"),  # noqa: E731
                                     dtype=float)
    tracker: Tracker | None = None
    if sink is not None:
        method = kw.get("method", "trf")
        tracker = Tracker(f"least_squares({method})", sink, unravel,
                          per_evaluation="jac" if callable(jac) else "fun")
        watch = _Residuals(tracker, _cost_of(kw.get("loss", "linear"), kw.get("f_scale", 1.0)),
                           _lsq_measure(method, kw.get("bounds", (-np.inf, np.inf)),
                                        flat0.size))
        plain_residuals = residuals

        def residuals(x: np.ndarray) -> np.ndarray:
            r = tracker.timed("residuals", plain_residuals, x)
            watch.residual(x, r)
            return r

        if callable(jac):
            jac = watch.wrap_jacobian(jac)
    try:
        res = so.least_squares(residuals, flat0, jac=jac, **kw)
    except BaseException:
        if tracker is not None:
            tracker.aborted()
        raise
    if tracker is not None:
        tracker.finished(fun=res.cost, nfev=res.nfev, njev=res.get("njev"),
                         gnorm=res.optimality, success=res.success, message=res.message,
                         x=res.x)
    res.x = unravel(res.x)
    if sparse is not None:
        res.sparse_jacobian = sparse
    return res


def _least_squares_sparsity(jac: Any, jac_sparsity: Any, sparsity: Any,
                            kw: dict[str, Any]) -> Any:
    """The pattern of dualrev's sparse Jacobian for ``least_squares`` (None: dense), after
    refusing what cannot be honoured; SciPy's own finite differences (``jac`` a string)
    get ``jac_sparsity`` in ``kw``, as SciPy takes it."""
    if jac_sparsity is not None and sparsity is not None:
        raise SparseOptionError(
            "least_squares", "jac_sparsity= and sparsity= are the same option: pass one")
    pattern = jac_sparsity if jac_sparsity is not None else sparsity
    if isinstance(pattern, Sparsity):
        pattern = pattern.pattern
    if pattern is None:
        return None
    if isinstance(pattern, str) and pattern != "auto":
        raise SparseOptionError(
            "least_squares", f"the Jacobian's sparsity must be 'auto', a Sparsity, an "
            f"array or a sparse matrix, got {pattern!r}")
    if jac is not None:
        if isinstance(jac, str) and jac_sparsity is not None and not isinstance(pattern, str):
            kw["jac_sparsity"] = pattern  # SciPy's grouped finite differences
            return None
        raise SparseOptionError(
            "least_squares", f"{'sparsity' if sparsity is not None else 'jac_sparsity'}= "
            f"asks for dualrev's exact sparse Jacobian, but jac={jac!r} was given (SciPy "
            "takes jac_sparsity only for its finite differences, as an array): drop jac= "
            "to have the exact sparse Jacobian, or drop the sparsity")
    method = kw.get("method", "trf")
    if method == "lm":
        raise SparseOptionError(
            "least_squares(method='lm')", "MINPACK's 'lm' takes dense Jacobians only, "
            "so the sparse Jacobian cannot be used: use method='trf' (or 'dogbox'), or "
            "drop the sparsity for the dense exact Jacobian")
    if kw.get("tr_solver") == "exact":
        raise SparseOptionError(
            "least_squares(tr_solver='exact')", "'exact' factorises a dense Jacobian, "
            "so the sparse one would be made dense: use tr_solver='lsmr' (the default "
            "with a sparse Jacobian), or drop the sparsity for the dense exact Jacobian")
    return pattern


def root(fun: Callable[..., Any], x0: Any, args: tuple[Any, ...] = (), method: str = "hybr",
         jac: Any = None, *, progress: Any = False, **kw: Any) -> so.OptimizeResult:
    """``scipy.optimize.root`` with the exact Jacobian for the methods that use one
    ('hybr', 'lm'); other methods run as in SciPy.

    ``fun``'s output may have any shape or be a pytree (a dict of arrays): it is
    flattened, in ``tree_flatten``'s order, and must have as many elements as ``x0``.

    Args:
        fun: the function ``fun(x, *args)`` whose root is sought; its output is flattened
            (it may be a pytree).
        x0: the starting point: an array, a list/tuple of numbers, or a pytree (which
            ``fun`` then receives).
        args: extra positional arguments of ``fun`` (and ``jac``); the solution is
            differentiable in their traced leaves (and in what ``fun`` closes over).
        method: SciPy's method name (default ``"hybr"``).
        jac: None (exact for ``hybr`` and ``lm``, by dualrev); a callable
            ``jac(x, *args)`` of the pytree ``x``; or ``True``: ``fun`` returns
            ``(value, jacobian)``, as in SciPy. The caller's Jacobian is of the flattened
            output by the flattened ``x``: an array of ``m * n`` elements
            (``out.shape + x.shape`` for arrays), or one block per output leaf.
            Methods other than ``hybr`` and ``lm`` do not use it (with ``True`` they get
            the value alone).
        progress: False (default): nothing reported, nothing changed. True: a
            live line on stderr in a terminal, a line every 2 s in a log, a display
            updated in place in a Jupyter notebook (``ProgressDisplay``; pass one to
            choose the stream or cadence). A callable: called with a ``ProgressRecord``
            per evaluation of ``fun`` and a final one; see
            ``minimize``.
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
    sink = sink_of(progress, "root")
    flat0, unravel = _ravel_x0(implicit.plain_values(x0))
    solved = implicit.root(functools.partial(root, progress=progress), fun, x0, args, method,
                           jac, unravel=unravel, name="dualrev.optimize.root", **kw)
    if solved is not None:
        return solved
    n = flat0.size
    meth = method.lower() if isinstance(method, str) else method
    uses_jac = meth in ("hybr", "lm")
    f_flat: Callable[..., np.ndarray]
    if jac is True:  # SciPy's convention: fun returns (value, Jacobian) itself
        last: list[Any] = [None, None]  # x, (flat value, Jacobian): one call gives both

        def both(x: np.ndarray, *a: Any) -> tuple[np.ndarray, Any]:
            if last[0] is None or not np.array_equal(last[0], x):
                value, J = _value_and_jacobian(fun(unravel(x), *a))
                last[:] = [np.array(x, dtype=float), (_flat_result(value), J)]
            return last[1]

        f_flat = lambda x, *a: both(x, *a)[0]  # noqa: E731
        jac = ((lambda x, *a: _user_jacobian(both(x, *a)[1], both(x, *a)[0].size, n))
               if uses_jac else None)
    else:
        f_flat = lambda x, *a: _flat_result(fun(unravel(x), *a))  # noqa: E731
        if jac is None and uses_jac:
            J = jacobian(lambda x, *a: fun(unravel(x), *a))
            jac = lambda x, *a: _jacobian_matrix(J(x, *a), n)  # noqa: E731
        elif callable(jac):
            user_jac = jac
            jac = lambda x, *a: _user_jacobian(user_jac(unravel(x), *a), None, n)  # noqa: E731
    tracker: Tracker | None = None
    if sink is not None:
        tracker = Tracker(f"root({meth})", sink, unravel, per_evaluation="fun")
        f_flat, jac = _watch_equations(tracker, f_flat, jac)
    try:
        res = so.root(f_flat, flat0, args=args, method=method, jac=jac, **kw)
    except BaseException:
        if tracker is not None:
            tracker.aborted()
        raise
    if tracker is not None:
        F = res.get("fun")
        tracker.finished(iteration=res.get("nit"),
                         fun=None if F is None else np.linalg.norm(np.ravel(F)),
                         nfev=res.get("nfev"), njev=res.get("njev"),
                         success=res.get("success"), message=res.get("message"),
                         x=np.asarray(res.x, dtype=float))
    res.x = unravel(res.x)
    return res


def _watch_equations(tracker: Tracker, func: Callable[..., Any],
                     jac: Any) -> tuple[Callable[..., Any], Any]:
    """``func`` and ``jac`` of root/fsolve counted and reported to ``tracker`` (the
    residual's 2-norm per evaluation); each returns what it wrapped returns."""
    def watched(x: Any, *a: Any) -> Any:
        out = tracker.timed("function", func, x, *a)
        tracker.evaluated("fun", np.ravel(np.asarray(x, dtype=float)),
                          np.linalg.norm(np.ravel(np.asarray(out, dtype=float))))
        return out

    if callable(jac):
        jac = _timed(tracker, jac, "Jacobian", "jac")
    return watched, jac


def _value_and_jacobian(out: Any) -> tuple[Any, Any]:
    if not (isinstance(out, tuple) and len(out) == 2):
        raise ValueError("root: with jac=True, fun must return (value, jacobian), as in "
                         f"SciPy; it returned {type(out).__name__}")
    return out


def _user_jacobian(J: Any, m: int | None, n: int) -> np.ndarray:
    """The caller's Jacobian as SciPy's (m, n) matrix of the flat output and input:
    any array of m * n elements (``out.shape + x.shape`` for arrays) or a pytree of
    blocks, one per output leaf, ``leaf.shape + x.shape``."""
    leaves, _ = tree_flatten(J)
    size = sum(np.size(v) for v in leaves)
    if any(np.size(v) % n for v in leaves) or (m is not None and size != m * n):
        want = f"the output's {m} by the {n} unknowns make {m * n}" if m is not None else \
            f"each block must be a multiple of the {n} unknowns"
        raise ValueError(f"root: the Jacobian has {size} elements where {want}")
    M = _jacobian_matrix(J, n)
    if m is not None and M.shape[0] != m:
        raise ValueError(f"root: the Jacobian has {M.size} elements where the output's "
                         f"{m} by the {n} unknowns make {m * n}")
    return M


def _jacobian_matrix(J: Any, n: int) -> np.ndarray:
    """A ``jacobian`` result (per output leaf a block ``out.shape + (n,)``) as (m, n)."""
    leaves, _ = tree_flatten(J)
    return np.concatenate([np.reshape(np.asarray(v, dtype=float), (-1, n)) for v in leaves])


# keywords of scipy.optimize.leastsq/least_squares that only steer finite differences
_CURVE_FIT_FD_KWARGS = ("epsfcn", "diff_step", "jac_sparsity")


def curve_fit(f: Callable[..., Any], xdata: Any, ydata: Any, p0: Any = None,
              sigma: Any = None, absolute_sigma: bool = False, check_finite: bool | None = None,
              bounds: Any = (-np.inf, np.inf), method: str | None = None, jac: Any = None,
              *, full_output: bool = False, nan_policy: str | None = None,
              progress: Any = False, **kwargs: Any) -> Any:
    """``scipy.optimize.curve_fit`` with the exact Jacobian of the model in its
    parameters, ``d f(xdata, *params) / d params`` (by ``dualrev.jacobian``), instead of
    finite differences. Same signature, same return values.

    Every argument is SciPy's and reaches SciPy unchanged, except that ``jac=None`` becomes
    the exact Jacobian (for every method, 'lm' included). The keywords that only tune
    SciPy's finite differences (``epsfcn``, ``diff_step``, ``jac_sparsity``) and
    ``col_deriv`` (curve_fit scales the Jacobian's rows by ``1/sigma``, so it must be
    row-major) are refused with ``ValueError`` when the Jacobian is dualrev's; pass
    ``jac="2-point"`` to have SciPy's finite differences instead.

    Args:
        f: the model ``f(xdata, *params)``, written in NumPy, returning an array of
            ``ydata``'s size; the parameters are scalars.
        xdata: the independent variable, passed to ``f`` as is. ``popt`` and ``pcov`` are
            differentiable in traced ``xdata``, ``ydata``, ``sigma`` and in what ``f``
            closes over (docs/users.md, "Implicit differentiation").
        ydata: the data, as in SciPy.
        p0: the initial parameters, as in SciPy (None: ones, their number read from
            ``f``'s signature).
        sigma: the data's uncertainties or covariance, as in SciPy.
        absolute_sigma: as in SciPy.
        check_finite: as in SciPy.
        bounds: as in SciPy.
        method: ``'lm'``, ``'trf'`` or ``'dogbox'``; None: SciPy's choice.
        jac: None (exact, by dualrev), a callable ``jac(xdata, *params)``, or one of
            SciPy's finite-difference schemes, used as given.
        full_output: as in SciPy: also return ``infodict``, ``mesg`` and ``ier``.
        nan_policy: as in SciPy.
        progress: False (default): nothing reported, nothing changed. True: a
            live line on stderr in a terminal, a line every 2 s in a log, a display
            updated in place in a Jupyter notebook (``ProgressDisplay``; pass one to
            choose the stream or cadence). A callable: called with a ``ProgressRecord``
            per Jacobian evaluation (per model evaluation with
            finite differences) and a final one, ``fun`` the cost of the weighted
            residuals; see ``minimize``.
        **kwargs: passed on to ``leastsq`` ('lm') or ``least_squares`` (the others).
    Returns:
        What SciPy returns: ``(popt, pcov)``, or ``(popt, pcov, infodict, mesg, ier)``
        with ``full_output=True``.
    Example:
        >>> import numpy as np
        >>> from dualrev import optimize
        >>> x = np.linspace(0.0, 3.0, 30)
        >>> y = 2.0 * np.exp(-0.7 * x) + 0.02 * np.cos(7.0 * x)
        >>> popt, pcov = optimize.curve_fit(lambda x, a, b: a * np.exp(-b * x), x, y)
        >>> print(np.round(popt, 2), pcov.shape)
        [2.  0.7] (2, 2)
    """
    sink = sink_of(progress, "curve_fit")
    solved = implicit.curve_fit(functools.partial(curve_fit, progress=progress), f, xdata,
                                ydata, p0, sigma, absolute_sigma, check_finite, bounds,
                                method, jac, full_output=full_output,
                                nan_policy=nan_policy, name="dualrev.optimize.curve_fit",
                                **kwargs)
    if solved is not None:
        return solved
    if jac is None:
        refused = [k for k in (*_CURVE_FIT_FD_KWARGS, "col_deriv") if k in kwargs]
        if refused:
            name = refused[0]
            why = ("curve_fit scales the Jacobian's rows by 1/sigma, so dualrev's "
                   "Jacobian is row-major" if name == "col_deriv" else
                   "it tunes SciPy's finite-difference Jacobian, which dualrev replaces "
                   "by the exact one")
            raise ValueError(f"curve_fit: {name}= is refused: {why}; drop it, or pass "
                             "jac='2-point' for SciPy's finite differences")
        jacobians: dict[int, Callable[..., Any]] = {}

        def jac(x: Any, *params: Any) -> np.ndarray:
            n = len(params)
            J = jacobians.get(n)
            if J is None:  # the parameters are f's arguments 1..n
                J = jacobians[n] = jacobian(f, argnums=tuple(range(1, n + 1)))
            columns = J(x, *(float(p) for p in params))
            return np.stack([np.ravel(np.asarray(c, dtype=float)) for c in columns], axis=1)

    if sink is None:
        return so.curve_fit(f, xdata, ydata, p0=p0, sigma=sigma,
                            absolute_sigma=absolute_sigma, check_finite=check_finite,
                            bounds=bounds, method=method, jac=jac, full_output=full_output,
                            nan_policy=nan_policy, **kwargs)
    box = bounds if isinstance(bounds, so.Bounds) else so.Bounds(*bounds)
    bounded = bool(np.any(np.isfinite(box.lb)) or np.any(np.isfinite(box.ub)))
    meth = method or ("trf" if bounded else "lm")  # SciPy's choice
    tracker = Tracker(f"curve_fit({meth})", sink, lambda v: v,
                      per_evaluation="jac" if callable(jac) else "fun")
    measures: dict[int, Callable[[np.ndarray, Any], float]] = {}

    def measure(x: np.ndarray, g: Any) -> float:
        if x.size not in measures:  # the number of parameters is known at the first call
            measures[x.size] = _lsq_measure(meth, bounds, x.size)
        return measures[x.size](x, g)

    watch = _Residuals(tracker, _cost_of(kwargs.get("loss", "linear"),
                                         kwargs.get("f_scale", 1.0)),
                       measure, _curve_fit_weights(ydata, sigma))
    model = f

    @functools.wraps(model)  # SciPy counts the parameters from f's signature
    def watched(x: Any, *params: Any) -> Any:
        out = tracker.timed("model", model, x, *params)
        watch.residual(np.array(params, dtype=float), out)
        return out

    if callable(jac):
        user_jac = jac

        def watched_jac(x: Any, *params: Any) -> Any:
            J = tracker.timed("Jacobian", user_jac, x, *params)
            watch.jacobian(np.array(params, dtype=float), J)
            return J

        jac = watched_jac
    try:
        out = so.curve_fit(watched, xdata, ydata, p0=p0, sigma=sigma,
                           absolute_sigma=absolute_sigma, check_finite=check_finite,
                           bounds=bounds, method=method, jac=jac, full_output=True,
                           nan_policy=nan_policy, **kwargs)
    except BaseException:
        tracker.aborted()
        raise
    popt, pcov, info, mesg, ier = out
    tracker.finished(nfev=info.get("nfev"), njev=info.get("njev"), success=ier in (1, 2, 3, 4),
                     message=mesg, x=np.asarray(popt, dtype=float))
    return out if full_output else (popt, pcov)


def _curve_fit_weights(ydata: Any, sigma: Any) -> Callable[[Any], Any]:
    """The map curve_fit applies to the model's residuals ``f - ydata`` (and, on a 2-D
    argument, to its Jacobian) before least squares: ``1 / sigma`` or the inverse
    Cholesky factor of the covariance; None where the sizes do not match (NaNs dropped
    by ``nan_policy='omit'``: no cost is reported)."""
    y = np.ravel(np.asarray(ydata, dtype=float))
    s = None if sigma is None else np.asarray(sigma, dtype=float)
    L = np.linalg.cholesky(s) if s is not None and s.ndim == 2 else None

    def weigh(v: Any) -> Any:
        residual = v.ndim == 1
        if residual:
            if v.size != y.size:
                return None
            v = v - y
        elif v.shape[0] != y.size:
            return None
        if s is None:
            return v
        if L is not None:
            return sl.solve_triangular(L, v, lower=True)
        return v / (s if residual else s[:, None])

    return weigh


def _band_pattern(n: int, band: Any) -> sp.csr_matrix:
    ml, mu = (int(b) for b in band)
    i, j = np.indices((n, n))
    return sp.csr_matrix((i - j <= ml) & (j - i <= mu))


def fsolve(func: Callable[..., Any], x0: Any, args: tuple[Any, ...] = (),
           fprime: Any = None, full_output: bool = False, col_deriv: bool = False,
           xtol: float = 1.49012e-08, maxfev: int = 0, band: Any = None,
           epsfcn: float | None = None, factor: float = 100, diag: Any = None, *,
           progress: Any = False) -> Any:
    """``scipy.optimize.fsolve`` with the exact Jacobian (``fprime``) of ``func``, so
    MINPACK runs ``hybrj`` instead of ``hybrd``'s finite differences. Same signature,
    same return values.

    ``col_deriv`` is honoured (the transposed Jacobian is supplied, which spares MINPACK
    a transpose); ``band=(ml, mu)`` is honoured by computing the banded Jacobian by
    column colouring (``ml + mu + 1`` tangents in one forward pass, entries outside the
    band zero, as SciPy's banded differences make them); ``epsfcn``, which only sets
    SciPy's difference step, is refused with ``ValueError`` unless ``fprime`` is given.
    ``x0`` is flattened, as SciPy does (use ``root`` for pytrees).

    Args:
        func: ``func(x, *args)`` of a 1-D array ``x``, returning an array of ``x``'s size.
        x0: the starting point (flattened).
        args: extra positional arguments of ``func`` (and ``fprime``); the solution is
            differentiable in their traced leaves (and in what ``func`` closes over).
        fprime: None (exact, by dualrev) or a callable ``fprime(x, *args)``, used as given.
        full_output: as in SciPy: also return ``infodict``, ``ier`` and ``mesg``.
        col_deriv: as in SciPy: ``fprime`` returns the derivatives down the columns.
        xtol: as in SciPy.
        maxfev: as in SciPy.
        band: as in SciPy, ``(ml, mu)``: the Jacobian is banded.
        epsfcn: as in SciPy; refused when the Jacobian is dualrev's.
        factor: as in SciPy.
        diag: as in SciPy.
        progress: False (default): nothing reported, nothing changed. True: a
            live line on stderr in a terminal, a line every 2 s in a log, a display
            updated in place in a Jupyter notebook (``ProgressDisplay``; pass one to
            choose the stream or cadence). A callable: called with a ``ProgressRecord``
            per evaluation of ``func`` and a final one; see
            ``minimize``.
    Returns:
        What SciPy returns: the solution ``x`` (1-D), or ``(x, infodict, ier, mesg)``
        with ``full_output=True``.
    Example:
        >>> import numpy as np
        >>> from dualrev import optimize
        >>> x, info, ier, mesg = optimize.fsolve(
        ...     lambda x: np.stack([x[0] ** 2 - 2.0, x[1] - x[0]]), [1.0, 1.0],
        ...     full_output=True)
        >>> print(np.round(x, 6), ier, info["njev"] > 0)
        [1.414214 1.414214] 1 True
    """
    sink = sink_of(progress, "fsolve")
    solved = implicit.fsolve(fsolve, func, x0, args, fprime, full_output,
                             name="dualrev.optimize.fsolve", col_deriv=col_deriv, xtol=xtol,
                             maxfev=maxfev, band=band, epsfcn=epsfcn, factor=factor,
                             diag=diag, progress=progress)
    if solved is not None:
        return solved
    if fprime is None:
        if epsfcn is not None:
            raise ValueError("fsolve: epsfcn= is refused: it sets SciPy's finite-difference "
                             "step, and dualrev supplies the exact Jacobian; drop it, or "
                             "pass your own fprime=")
        n = np.size(x0)
        if band is not None:
            sparse = SparseJacobian(lambda x: func(x, *args), _band_pattern(n, band))
            J_of = lambda x, *a: sparse(x).toarray()
        else:
            J = jacobian(func)
            J_of = lambda x, *a: _jacobian_matrix(J(np.asarray(x, dtype=float), *a), n)
        fprime = (lambda x, *a: J_of(x, *a).T) if col_deriv else J_of
    # (a new name: the Jacobian closures above read func late)
    checked = lambda x, *a: _plain(func(x, *a), "fsolve")  # noqa: E731
    if sink is None:
        return so.fsolve(checked, x0, args=args, fprime=fprime, full_output=full_output,
                         col_deriv=col_deriv, xtol=xtol, maxfev=maxfev, band=band,
                         epsfcn=epsfcn, factor=factor, diag=diag)
    tracker = Tracker("fsolve(hybrj)" if fprime is not None else "fsolve(hybrd)", sink,
                      lambda v: v, per_evaluation="fun")
    checked, fprime = _watch_equations(tracker, checked, fprime)
    try:
        # full_output for the final record's counts; the caller's form is returned
        x, info, ier, mesg = so.fsolve(checked, x0, args=args, fprime=fprime,
                                       full_output=True, col_deriv=col_deriv, xtol=xtol,
                                       maxfev=maxfev, band=band, epsfcn=epsfcn,
                                       factor=factor, diag=diag)
    except BaseException:
        tracker.aborted()
        raise
    tracker.finished(fun=np.linalg.norm(info["fvec"]), nfev=info.get("nfev"),
                     njev=info.get("njev"), success=ier == 1, message=mesg,
                     x=np.ravel(x))
    if full_output:
        return x, info, ier, mesg
    # what SciPy's fsolve does with its status when it does not return it
    if ier in (2, 3, 4, 5):
        warnings.warn(mesg, RuntimeWarning, stacklevel=2)
    elif ier != 1:
        raise TypeError(mesg)
    return x


def minimize_scalar(fun: Callable[..., Any], bracket: Any = None, bounds: Any = None,
                    args: tuple[Any, ...] = (), method: str | None = None,
                    tol: float | None = None,
                    options: dict[str, Any] | None = None, *,
                    progress: Any = False) -> so.OptimizeResult:
    """``scipy.optimize.minimize_scalar``, unchanged: its methods (``brent``,
    ``bounded``, ``golden``) use no derivatives, so there is nothing to supply. It is here
    so that ``dualrev.optimize`` covers scipy.optimize's solvers with one import; its
    solution is differentiable in the traced values ``fun`` reaches, as SciPy's is.

    Args:
        fun: the objective ``fun(x, *args)`` of a scalar ``x``.
        bracket: as in SciPy.
        bounds: as in SciPy.
        args: as in SciPy.
        method: as in SciPy.
        tol: as in SciPy.
        options: as in SciPy.
        progress: False (default): nothing reported, nothing changed. True: a
            live line on stderr in a terminal, a line every 2 s in a log, a display
            updated in place in a Jupyter notebook (``ProgressDisplay``; pass one to
            choose the stream or cadence). A callable: called with a ``ProgressRecord``
            per evaluation of ``fun`` and a final one; see
            ``minimize``.
    Returns:
        SciPy's ``OptimizeResult``.
    Example:
        >>> import numpy as np
        >>> from dualrev import optimize
        >>> res = optimize.minimize_scalar(lambda x: (x - 2.0) ** 2 + 1.0)
        >>> print(res.success, round(res.x, 6))
        True 2.0
    """
    sink = sink_of(progress, "minimize_scalar")
    solved = implicit.minimize_scalar(functools.partial(minimize_scalar, progress=progress),
                                      fun, bracket, bounds, args, method, tol, options,
                                      name="dualrev.optimize.minimize_scalar")
    if solved is not None:
        return solved
    if sink is None:
        return so.minimize_scalar(fun, bracket=bracket, bounds=bounds, args=args,
                                  method=method, tol=tol, options=options)
    meth = method.lower() if isinstance(method, str) else (
        "custom" if callable(method) else "bounded" if bounds is not None else "brent")
    tracker = Tracker(f"minimize_scalar({meth})", sink, lambda v: v[()],
                      per_evaluation="fun")

    def watched(x: Any, *a: Any) -> Any:
        value = fun(x, *a)
        tracker.evaluated("fun", np.asarray(x, dtype=float),
                          value if np.size(value) == 1 else None)
        return value

    try:
        res = so.minimize_scalar(watched, bracket=bracket, bounds=bounds, args=args,
                                 method=method, tol=tol, options=options)
    except BaseException:
        tracker.aborted()
        raise
    tracker.finished(iteration=res.get("nit"), fun=res.get("fun"), nfev=res.get("nfev"),
                     success=res.get("success"), message=res.get("message"),
                     x=np.asarray(res.x, dtype=float))
    return res


_BRACKET_METHODS = ("bisect", "ridder", "brentq", "brenth", "toms748")
_ROOT_SCALAR_USES = {**{m: {"bracket"} for m in _BRACKET_METHODS},
                     "secant": {"x0", "x1"}, "newton": {"x0", "fprime"},
                     "halley": {"x0", "fprime", "fprime2"}}


def _unit(x: Any) -> Any:
    x = np.asarray(x)
    return np.ones((), dtype=x.dtype if x.dtype.kind in "fc" else float)[()]


def _as_point(x: Any) -> Any:
    x = np.asarray(x)
    return (x.astype(float) if x.dtype.kind not in "fc" else x)[()]


def _derivatives(f: Callable[..., Any], order: int) -> Callable[..., tuple[Any, ...]]:
    """``x, *args -> (f, f', ...)`` up to ``order``, by nested forward mode (one pass)."""

    def taylor(x: Any, *args: Any) -> tuple[Any, ...]:
        x = _as_point(x)
        g, u = (lambda t: f(t, *args)), _unit(x)
        if order == 1:
            out = jvp(g, (x,), (u,))
        else:
            (v, d), (_, d2) = jvp(lambda t: jvp(g, (t,), (u,)), (x,), (u,))
            out = (v, d, d2)
        return tuple(np.asarray(o)[()] for o in _plain(out, "root_scalar"))

    return taylor


def root_scalar(f: Callable[..., Any], args: tuple[Any, ...] = (), method: str | None = None,
                bracket: Any = None, fprime: Any = None, fprime2: Any = None,
                x0: Any = None, x1: Any = None, xtol: float | None = None,
                rtol: float | None = None, maxiter: int | None = None,
                options: dict[str, Any] | None = None) -> Any:
    """``scipy.optimize.root_scalar`` with exact derivatives for the methods that use
    them: ``newton`` gets ``f'`` and ``halley`` ``f'`` and ``f''``, computed with ``f``
    in one forward pass (nested dual numbers), so each step evaluates ``f`` once.

    ``method=None`` picks as SciPy does, given the exact derivative it can now have:
    ``brentq`` with a ``bracket``; with ``x0``: ``halley`` when you pass ``fprime2``,
    ``newton`` when you pass ``fprime`` (or neither, where SciPy would difference),
    ``secant`` when you pass ``x1`` (the same choice as SciPy's for the same call).
    A keyword the chosen method does not use (``bracket``, ``x0``, ``x1``, ``fprime``,
    ``fprime2``), which SciPy would ignore, is refused with ``ValueError``.
    ``fprime=False`` keeps SciPy's own behaviour (finite differences for ``newton``).

    Args:
        f: the function ``f(x, *args)`` of a scalar, returning a scalar.
        args: extra positional arguments of ``f``; the root is differentiable in their
            traced leaves (and in what ``f`` closes over).
        method: SciPy's method name, or None (see above).
        bracket: as in SciPy, for the bracketing methods.
        fprime: None (exact where the method uses it), a callable, or True (``f``
            returns ``(value, derivative)``), as in SciPy; False: none.
        fprime2: None (exact for ``halley``), a callable, or True, as in SciPy.
        x0: as in SciPy.
        x1: as in SciPy (``secant``).
        xtol: as in SciPy.
        rtol: as in SciPy.
        maxiter: as in SciPy.
        options: as in SciPy.
    Returns:
        SciPy's ``RootResults`` (``function_calls`` counts the evaluations of ``f``, each
        of which also gave the derivatives).
    Example:
        >>> import numpy as np
        >>> from dualrev import optimize
        >>> sol = optimize.root_scalar(lambda x: np.cos(x) - x, x0=1.0)
        >>> print(sol.method, sol.converged, round(sol.root, 6))
        newton True 0.739085
    """
    solved = implicit.root_scalar(root_scalar, f, args, name="dualrev.optimize.root_scalar",
                                  method=method, bracket=bracket, fprime=fprime,
                                  fprime2=fprime2, x0=x0, x1=x1, xtol=xtol, rtol=rtol,
                                  maxiter=maxiter, options=options)
    if solved is not None:
        return solved
    if method is None:
        if bracket is not None:
            method = "brentq"
        elif x0 is not None:
            if fprime2 is not None and fprime2 is not False:
                method = "halley"
            elif (fprime is None or fprime is False) and x1 is not None:
                method = "secant"
            else:
                method = "newton"
    meth = method.lower() if isinstance(method, str) else method
    uses = _ROOT_SCALAR_USES.get(meth)
    if uses is not None:
        given = {"bracket": bracket, "x0": x0, "x1": x1, "fprime": fprime, "fprime2": fprime2}
        for name, value in given.items():
            if value is not None and value is not False and name not in uses:
                raise ValueError(f"root_scalar: method={method!r} does not use {name}= "
                                 "(SciPy would ignore it); drop it or choose a method "
                                 "that uses it")
    if meth in ("newton", "halley"):
        order = 1 if meth == "newton" else 2
        if fprime is None and fprime2 is None:
            # f, f' (and f'') from one pass; SciPy's convention for that is fprime=True
            f, fprime = _derivatives(f, order), True
            if order == 2:
                fprime2 = True
        elif fprime is None and callable(fprime2):
            fprime = lambda x, *a: _derivatives(f, 1)(x, *a)[1]
        elif order == 2 and fprime2 is None and fprime is not False:
            value = (lambda x, *a: f(x, *a)[0]) if fprime is True else f
            fprime2 = lambda x, *a: _derivatives(value, 2)(x, *a)[2]
    # (a new name: the derivative closures above read f late)
    checked = lambda x, *a: _plain(f(x, *a), "root_scalar")  # noqa: E731
    return so.root_scalar(checked, args=args, method=method, bracket=bracket, fprime=fprime,
                          fprime2=fprime2, x0=x0, x1=x1, xtol=xtol, rtol=rtol,
                          maxiter=maxiter, options=options)
