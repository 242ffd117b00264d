"""SciPy functions that are not ufuncs: scipy.special.logsumexp, softmax, log_softmax,
polygamma, softplus; scipy.linalg.solve_triangular, cho_factor, cho_solve, lu_factor,
lu_solve, expm (scipy.stats: see scipy_stats.py, scipy.linalg's sqrtm and matrix-equation
solvers: scipy_linalg.py, which use ``dispatch`` too).

SciPy converts the arguments of these with ``np.asarray``, which NumPy's override
protocols cannot intercept. So at import dualrev replaces each of them in its SciPy
module with a thin dispatcher: with no traced argument it calls SciPy's own function
unchanged; with one it calls dualrev's rule, written with differentiable primitives.
(``from scipy.special import logsumexp`` done *before* ``import dualrev`` keeps the
original; the error raised then says so.) The dispatchers themselves are made by
dualrev/scipy_dispatch.py (layer 2: the traced values' conversion errors read its
table), re-exported here.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sps
import scipy.special as sc

from .. import pattern_rules
from ..batching import batch_traces, on_plain_values, rebatch, stacked_rule, without_derivatives
from ..custom import transpose_jvp
from ..errors import NoDerivativeRule
from ..primitive import (
    Primitive,
    Tracer,
    as_array,
    bind,
    call_plain,
    concrete,
    is_complex,
    ndim_of,
    shape_of,
)
from ..scipy_dispatch import ORIGINALS, dispatch, scipy_caller  # noqa: F401  (re-exported)
from .contraction import matrix_transpose as _T
from .indexing import getitem
from .special import polygamma_p


# ------------------------------------------------------------------ scipy.special
def logsumexp(a: Any, axis: Any = None, b: Any = None, keepdims: bool = False,
              return_sign: bool = False) -> Any:
    """scipy.special.logsumexp: log |sum(b * exp(a))|; nan where that sum is negative
    unless ``return_sign``, which returns the sign too (SciPy's own, from the plain values)."""
    if keepdims and ndim_of(a) == 0:
        a = np.reshape(a, (1,))  # SciPy makes a 0-d input 1-d: keepdims gives shape (1,)
    # the shift is computed on the plain values (batched under vmap)
    av = without_derivatives(a)
    bv = None if b is None else without_derivatives(b)
    if b is None:
        shift_from = av
    else:
        # SciPy leaves the terms with b == 0 out of the shift.
        shift_from = np.where(np.not_equal(bv, 0), av, -np.inf)
    # a real shift, so that for complex a the log below stays SciPy's principal one
    m = _max_with_empty(np.real(shift_from), axis)
    m = np.where(np.isfinite(m), m, 0.0)  # a constant shift: no derivative flows through it
    if b is None:
        e = np.exp(a - m)
    else:
        # A term with b == 0 adds nothing, also where exp(a - m) overflows (a = inf): there
        # its exponent is dropped, and with it its derivative in b (>= e^709, an overflow).
        wild = np.logical_and(np.equal(bv, 0), ~np.less(av - m, 709.0))
        e = b * np.exp(np.where(wild, -np.inf, a - m))
    s = np.sum(e, axis=axis, keepdims=True)
    complex_sum = is_complex(s)
    out = np.log(s if complex_sum and not return_sign else np.abs(s)) + m
    if not keepdims:
        out = np.squeeze(out, axis=axis) if axis is not None else np.reshape(out, ())
    if return_sign:
        sign = _scipy_sign(av, bv, axis=axis, keepdims=keepdims)
        if complex_sum:  # the phase s/|s| moves with a and b: differentiate it, SciPy's value
            phase = s / np.abs(s)
            if not keepdims:
                phase = (np.squeeze(phase, axis=axis) if axis is not None
                         else np.reshape(phase, ()))
            sign = phase + (sign - without_derivatives(phase))
        return out, sign
    if b is not None and not complex_sum:
        negative = np.less(s, 0)  # plain (batched under vmap)
        if np.any(concrete(negative)):  # SciPy's nan: the log of a negative sum
            if not keepdims:
                negative = np.squeeze(negative, axis=axis) if axis is not None else np.reshape(
                    negative, ())
            out = np.where(negative, np.nan, out)
    return out


def _scipy_sign(a: Any, b: Any, **kwargs: Any) -> Any:
    """The sign SciPy's own logsumexp(return_sign=True) gives for plain values (under vmap
    per batch element)."""
    original = ORIGINALS.get(sc.logsumexp, sc.logsumexp)
    return on_plain_values(lambda a_, b_: original(a_, b=b_, return_sign=True, **kwargs)[1],
                           (a, b), name="scipy.special.logsumexp(return_sign=True)")


def _max_with_empty(x: Any, axis: Any) -> Any:
    """``np.max(x, axis, keepdims=True, initial=-inf)`` of plain values: under vmap on the
    whole batch at once (np.max takes no initial= of a traced value)."""
    k = len(batch_traces(x))
    if not k and isinstance(x, Tracer):
        # a dualrev.replay recording's staged value: the shift is a recorded operation
        # on it (no guard: any shift is exact, and a replay computes its own)
        return call_plain(_shift_max, [x], {"axis": axis})
    v = concrete(x)
    if k:
        nd = np.ndim(v) - k
        axes = range(nd) if axis is None else np.atleast_1d(axis)
        axis = tuple(int(a) % nd + k for a in axes)
    if 0 in np.shape(v):  # initial= only where it matters: Dask's max takes none
        return rebatch(np.max(v, axis=axis, keepdims=True, initial=-np.inf), x)
    return rebatch(np.max(v, axis=axis, keepdims=True), x)


def _shift_max(x: np.ndarray, axis: Any) -> np.ndarray:
    """The max over ``axis`` kept as a length-1 axis, -inf where empty (plain values)."""
    return np.max(x, axis=axis, keepdims=True, initial=-np.inf)


def softmax(x: Any, axis: Any = None) -> Any:
    e = np.exp(x - np.max(without_derivatives(x), axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x: Any, axis: Any = None) -> Any:
    if ndim_of(x) == 0:  # logsumexp's keepdims would make it 1-d, as SciPy's does
        return x - x
    return x - logsumexp(x, axis=axis, keepdims=True)


def softplus(x: Any, **kwargs: Any) -> Any:
    # SciPy's keywords are the ufunc's (dtype=, out=, where=, ...): NumPy's ufunc
    # protocol honours or refuses each
    return np.logaddexp(0.0, x, **kwargs)


dispatch(sc, "logsumexp", logsumexp)
dispatch(sc, "softmax", softmax)
dispatch(sc, "log_softmax", log_softmax)
def polygamma(n: Any, x: Any) -> Any:
    """scipy.special.polygamma of traced values: real x only, as SciPy's (its zeta is
    real-only); the rules of psi/gamma/loggamma reach complex points through polygamma_p
    itself."""
    if is_complex(x):
        raise NoDerivativeRule(
            "scipy.special.polygamma of a complex argument",
            "SciPy's polygamma is defined for real arguments only (it raises TypeError "
            "on plain complex values); psi, gamma and loggamma of complex arguments have "
            "their derivatives.")
    return polygamma_p(n, x)


dispatch(sc, "polygamma", polygamma)
if hasattr(sc, "softplus"):
    dispatch(sc, "softplus", softplus)


# ------------------------------------------------------------------ scipy.linalg
def _tri(x: Any, lower: bool) -> Any:
    return np.tril(x) if lower else np.triu(x)


def _solve_tri_impl(a: Any, b: Any, trans: int, lower: bool, unit_diagonal: bool) -> Any:
    return sla.solve_triangular(a, b, trans=trans, lower=lower, unit_diagonal=unit_diagonal)


_TRANS = {0: "N", "N": "N", 1: "T", "T": "T", 2: "C", "C": "C"}


def _op(t: Any, trans: str) -> Any:
    """op(T) of solve_triangular: T, its transpose, or its conjugate transpose."""
    if trans == "N":
        return t
    return np.conjugate(_T(t)) if trans == "C" and is_complex(t) else _T(t)


def _effective_tri(a: Any, trans: str, lower: bool, unit_diagonal: bool) -> Any:
    """The matrix solve_triangular actually inverts (only its triangle is read)."""
    t = _tri(a, lower)
    if unit_diagonal:
        n = shape_of(a)[-1]
        t = t * (1 - np.eye(n)) + np.eye(n)
    return _op(t, trans)


def _solve_tri_jvp_a(g: Any, ans: Any, a: Any, b: Any, trans: Any, lower: bool,
                     unit_diagonal: bool) -> Any:
    dt = _tri(g, lower)
    if unit_diagonal:
        dt = dt * (1 - np.eye(shape_of(a)[-1]))
    dt = _op(dt, trans)
    T = _effective_tri(a, trans, lower, unit_diagonal)
    x = ans if ndim_of(ans) > 1 else ans[..., None]
    out = -np.linalg.solve(T, dt @ x)
    return out if ndim_of(ans) > 1 else out[..., 0]


def _solve_tri_jvp_b(g: Any, ans: Any, a: Any, b: Any, trans: Any, lower: bool,
                     unit_diagonal: bool) -> Any:
    T = _effective_tri(a, trans, lower, unit_diagonal)
    if ndim_of(b) == 1:
        return np.linalg.solve(T, g[..., None])[..., 0]
    return np.linalg.solve(T, g)


solve_triangular_p = transpose_jvp(
    Primitive("scipy.linalg.solve_triangular", _solve_tri_impl)
    .defjvp(_solve_tri_jvp_a, _solve_tri_jvp_b))


def _solve_tri_pattern(deps: Any, ans: Any, a: Any, b: Any, trans: str, lower: bool,
                       unit_diagonal: bool) -> Any:
    """x = op(T)^-1 b for the triangle T of ``a`` that SciPy reads: with a lower op(T),
    ``x[i]`` depends on ``b[:i + 1]`` and on op(T)'s rows ``0..i`` (the reverse for an
    upper one); a constant ``a`` narrows ``b``'s part to its structural inverse."""
    da, db = deps
    n = shape_of(a)[-1]
    low = lower if trans == "N" else not lower
    tri = np.tril(np.ones((n, n), dtype=bool)) if low else np.triu(np.ones((n, n), dtype=bool))
    out = None
    if db is not None and db.nnz:
        S = sps.csr_matrix(tri)
        if da is None:
            t = (np.tril if lower else np.triu)(np.asarray(a) != 0)
            if unit_diagonal:
                t = t | np.eye(n, dtype=bool)
            S = pattern_rules.inverse_structure(sps.csr_matrix(t.T if trans != "N" else t))
            S = S.multiply(sps.csr_matrix(tri)).tocsr()
        out = pattern_rules.columns_apply(S, db, shape_of(b))
    if da is not None and da.nnz:
        # row i of x reads op(T)[p, q] for p up to i (from i, upper), q on p's side
        pattern_rules.guard(n, n * n // 3 + 1)
        p, q = np.nonzero(tri)
        if unit_diagonal:
            p, q = p[p != q], q[p != q]
        flat = q * n + p if trans != "N" else p * n + q  # op(T)[p, q] is a[q, p] transposed
        i = np.arange(n)
        reads = (p[None, :] <= i[:, None]) if low else (p[None, :] >= i[:, None])
        r, c = np.nonzero(reads)
        L = sps.csr_matrix((np.ones(r.size, dtype=bool), (r, flat[c])), shape=(n, n * n))
        per_row = pattern_rules.linear(L, da)
        k = pattern_rules.size_of(ans) // max(n, 1)
        out = pattern_rules.union(out, pattern_rules.rows(
            per_row, np.repeat(np.arange(n, dtype=np.int64), k)))
    return out


solve_triangular_p.defpattern(_solve_tri_pattern)


def solve_triangular(a: Any, b: Any, trans: Any = 0, lower: bool = False,
                     unit_diagonal: bool = False, overwrite_b: bool = False,
                     check_finite: bool = True) -> Any:
    if ndim_of(a) != 2:
        raise NoDerivativeRule("scipy.linalg.solve_triangular", "Only 2-D matrices.")
    if trans not in _TRANS:
        raise ValueError(f"trans must be 0, 1, 2, 'N', 'T' or 'C', not {trans!r}")
    _check_finite(check_finite, a, b)
    return bind(solve_triangular_p, (a, b), {"trans": _TRANS[trans], "lower": bool(lower),
                                             "unit_diagonal": bool(unit_diagonal)})


def _check_finite(check: bool, *arrays: Any) -> None:
    """SciPy's check_finite=True: refuse infs and nans (overwrite_*= only permits SciPy to
    reuse a buffer, so it changes no value)."""
    if check and not all(np.all(np.isfinite(concrete(a))) for a in arrays):
        raise ValueError("array must not contain infs or NaNs")


def cho_factor(a: Any, lower: bool = False, overwrite_a: bool = False,
               check_finite: bool = True) -> Any:
    _check_finite(check_finite, a)
    # The triangle SciPy leaves unused holds a's values; derivatives use only the factor.
    if lower:
        c = np.linalg.cholesky(a)
    else:
        c = _T(np.linalg.cholesky(_T(a)))
    return c, lower


def cho_solve(c_and_lower: Any, b: Any, overwrite_b: bool = False,
              check_finite: bool = True) -> Any:
    # A = L L^H (lower) or U^H U (upper): two triangular solves, one with the conjugate
    # transpose
    c, lower = c_and_lower
    _check_finite(check_finite, c, b)
    first = solve_triangular(c, b, trans=0 if lower else 2, lower=lower)
    return solve_triangular(c, first, trans=2 if lower else 0, lower=lower)


def _lu_impl(a: Any) -> Any:
    lu, piv = sla.lu_factor(a)
    return lu


def _perm_of(piv: np.ndarray) -> np.ndarray:
    """The row order P of ``P A = L U`` from LAPACK's pivots (row i swapped with piv[i])."""
    perm = np.arange(len(piv))
    for i, p in enumerate(piv):
        perm[[i, p]] = perm[[p, i]]
    return perm


def _lu_jvp(g: Any, ans: Any, a: Any) -> Any:
    # P A = L U  =>  dLU = L tril(L^-1 P dA U^-1, -1) + triu(L^-1 P dA U^-1) U
    n = shape_of(a)[-1]
    perm = on_plain_values(lambda a_: _perm_of(sla.lu_factor(a_)[1]), (a,),
                           name="scipy.linalg.lu_factor")
    L = np.tril(ans, -1) + np.eye(n)
    U = np.triu(ans)
    pda = getitem(g, (Ellipsis, perm, slice(None)))  # g may be plain, perm batched
    inner = _T(np.linalg.solve(_T(U), _T(np.linalg.solve(L, pda))))
    return L @ np.tril(inner, -1) + np.triu(inner) @ U


lu_p = transpose_jvp(Primitive("scipy.linalg.lu_factor", _lu_impl).defjvp(_lu_jvp))


@functools.lru_cache(maxsize=16)
def _lu_structure(n: int) -> sps.csr_matrix:
    """Which entries of ``a`` each entry of its packed LU factors (partial pivoting)
    depends on, for every row order pivoting may choose: ``U[i, j]`` (``i <= j``) reads
    the columns ``0..i-1`` and ``j``, ``L[i, j]`` (``i > j``) the columns ``0..j``, every
    row of them (the recurrences ``U[i, j] = M[i, j] - sum_k<i L[i, k] U[k, j]`` and
    ``L[i, j] = (M[i, j] - sum_k<j L[i, k] U[k, j]) / U[j, j]`` of ``M = P a`` read rows
    that the pivots, chosen by value, may take from anywhere)."""
    pattern_rules.guard(n * n, n * n // 2 + 1)
    col = np.arange(n * n, dtype=np.int64) % n
    rows, cols = [], []
    for i in range(n):
        for j in range(n):
            reads = np.flatnonzero((col < i) | (col == j)) if i <= j else np.flatnonzero(
                col <= j)
            cols.append(reads)
            rows.append(np.full(reads.size, i * n + j, dtype=np.int64))
    r, c = (np.concatenate(rows), np.concatenate(cols)) if rows else (np.zeros(0, int),) * 2
    return sps.csr_matrix((np.ones(r.size, dtype=bool), (r, c)), shape=(n * n, n * n))


def _lu_pattern(deps: Any, ans: Any, a: Any) -> Any:
    """The packed factors' column structure, whatever the pivots (a stack, or a
    non-square matrix: dense per matrix)."""
    (d,) = deps
    if d is None or not d.nnz:
        return None
    if ndim_of(a) != 2 or shape_of(a)[0] != shape_of(a)[1]:
        return pattern_rules.stacked(2)(deps, ans, a)
    return pattern_rules.linear(_lu_structure(shape_of(a)[0]), d)


lu_p.defpattern(_lu_pattern)


def lu_factor(a: Any, overwrite_a: bool = False, check_finite: bool = True) -> Any:
    _check_finite(check_finite, a)
    piv = on_plain_values(lambda a_: sla.lu_factor(a_)[1], (a,), name="scipy.linalg.lu_factor")
    return bind(lu_p, (a,), {}), piv


def lu_solve(lu_and_piv: Any, b: Any, trans: int = 0, overwrite_b: bool = False,
             check_finite: bool = True) -> Any:
    lu, piv = lu_and_piv
    _check_finite(check_finite, lu, b)
    b = as_array(b)
    perm = on_plain_values(_perm_of, (as_array(piv),), name="scipy.linalg.lu_solve")
    if trans not in _TRANS:
        raise ValueError(f"trans must be 0, 1 or 2, not {trans!r}")
    trans = _TRANS[trans]
    if trans == "N":  # P A = L U: solve L U x = P b
        y = solve_triangular(lu, getitem(b, (perm,)), lower=True, unit_diagonal=True)
        return solve_triangular(lu, y, lower=False)
    # op(A) = op(U) op(L) P: solve op(U) y = b, op(L) z = y, then x = P^T z
    y = solve_triangular(lu, b, trans=trans, lower=False)
    z = solve_triangular(lu, y, trans=trans, lower=True, unit_diagonal=True)
    return z[np.argsort(perm)]


def _block_expm_jvp(g: Any, ans: Any, a: Any) -> Any:
    # d expm(A)[dA] is the top-right block of expm([[A, dA], [0, A]]) (Mathias 1996).
    n = shape_of(a)[-1]
    gs = shape_of(g)
    batch = gs[: len(gs) - 2]
    a_b = np.broadcast_to(a, batch + (n, n))
    top = np.concatenate([a_b, g], axis=-1)
    bottom = np.concatenate([np.zeros(batch + (n, n)), a_b], axis=-1)
    big = np.concatenate([top, bottom], axis=-2)
    return bind(expm_p, (big,), {})[..., :n, n:]


def _expm_stack_impl(a: Any) -> Any:
    a = np.asarray(a)
    if a.ndim == 2:
        return sla.expm(a)
    return np.stack([sla.expm(m) for m in a.reshape((-1,) + a.shape[-2:])]).reshape(a.shape)


expm_p = Primitive("scipy.linalg.expm", _expm_stack_impl)
expm_p.defjvp(_block_expm_jvp)
# The adjoint of the Frechet derivative L(A, .) is L(A^T, .): the VJP is the same block
# formula at A^T (transposing the JVP instead would recurse through expm forever).
expm_p.defvjp(lambda g, ans, a: _block_expm_jvp(g, None, _T(a)), saves="a")
expm_p.defbatch(stacked_rule(expm_p))
expm_p.defpattern(pattern_rules.stacked(2))  # a power series: dense by nature


dispatch(sla, "solve_triangular", solve_triangular)
dispatch(sla, "cho_factor", cho_factor)
dispatch(sla, "cho_solve", cho_solve)
dispatch(sla, "lu_factor", lu_factor)
dispatch(sla, "lu_solve", lu_solve)
dispatch(sla, "expm", lambda A: bind(expm_p, (A,), {}))
