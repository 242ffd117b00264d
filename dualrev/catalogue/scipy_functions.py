"""SciPy functions that are not ufuncs: scipy.special.logsumexp, softmax, log_softmax,
polygamma, softplus; scipy.linalg.solve_triangular, cho_factor, cho_solve, lu_factor,
lu_solve, expm, sqrtm; scipy.stats norm, t, gamma, beta, poisson, multivariate_normal.

SciPy converts the arguments of these with ``np.asarray``, which NumPy's override
protocols cannot intercept. So at import dualrev replaces each of them in its SciPy
module with a thin dispatcher: with no traced argument it calls SciPy's own function
unchanged; with one it calls dualrev's rule, written with differentiable primitives.
(``from scipy.special import logsumexp`` done *before* ``import dualrev`` keeps the
original; the error raised then says so.)
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.special as sc
import scipy.stats as st

from ..custom import transpose_jvp
from ..errors import NoDerivativeRule
from ..primitive import Primitive, Tracer, bind, is_complex, ndim_of, shape_of, strip
from ..tree import tree_flatten
from .contraction import matrix_transpose as _T
from .special import polygamma

ORIGINALS: dict[Any, Callable[..., Any]] = {}  # dispatcher -> SciPy's function


def _traced(args: Any, kwargs: Any) -> bool:
    leaves, _ = tree_flatten((list(args), kwargs))
    return any(isinstance(v, Tracer) for v in leaves)


def dispatch(owner: Any, name: str, handler: Callable[..., Any]) -> None:
    """Replace ``owner.name`` by a dispatcher to ``handler`` for traced arguments."""
    original = getattr(owner, name)
    original = ORIGINALS.get(original, original)

    @functools.wraps(original)
    def dispatcher(*args: Any, **kwargs: Any) -> Any:
        if _traced(args, kwargs):
            return handler(*args, **kwargs)
        return original(*args, **kwargs)

    ORIGINALS[dispatcher] = original
    setattr(owner, name, dispatcher)


def scipy_caller() -> str | None:
    """The SciPy function (undispatched) on the call stack, for error messages."""
    codes = {getattr(f, "__code__", None): f for f in ORIGINALS.values()}
    frame = sys._getframe(1)
    while frame is not None:
        f = codes.get(frame.f_code)
        if f is not None:
            return f"{f.__module__}.{f.__qualname__}"
        frame = frame.f_back
    return None


# ------------------------------------------------------------------ scipy.special
def logsumexp(a: Any, axis: Any = None, b: Any = None, keepdims: bool = False,
              return_sign: bool = False) -> Any:
    m = strip(np.max(a, axis=axis, keepdims=True))
    m = np.where(np.isfinite(m), m, 0.0)  # a constant shift: no derivative flows through it
    e = np.exp(a - m)
    if b is not None:
        e = b * e
    s = np.sum(e, axis=axis, keepdims=True)
    sign = np.sign(strip(s))
    out = np.log(np.abs(s)) + m
    if not keepdims:
        out = np.squeeze(out, axis=axis) if axis is not None else np.reshape(out, ())
        sign = np.squeeze(sign, axis=axis) if axis is not None else np.reshape(sign, ())
    if return_sign:
        return out, sign
    return out


def softmax(x: Any, axis: Any = None) -> Any:
    e = np.exp(x - strip(np.max(x, axis=axis, keepdims=True)))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x: Any, axis: Any = None) -> Any:
    return x - logsumexp(x, axis=axis, keepdims=True)


def softplus(x: Any, **kwargs: Any) -> Any:
    return np.logaddexp(0.0, x)


dispatch(sc, "logsumexp", logsumexp)
dispatch(sc, "softmax", softmax)
dispatch(sc, "log_softmax", log_softmax)
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


def solve_triangular(a: Any, b: Any, trans: Any = 0, lower: bool = False,
                     unit_diagonal: bool = False, overwrite_b: bool = False,
                     check_finite: bool = True) -> Any:
    if ndim_of(a) != 2:
        raise NoDerivativeRule("scipy.linalg.solve_triangular", "Only 2-D matrices.")
    if trans not in _TRANS:
        raise ValueError(f"trans must be 0, 1, 2, 'N', 'T' or 'C', not {trans!r}")
    return bind(solve_triangular_p, (a, b), {"trans": _TRANS[trans], "lower": bool(lower),
                                             "unit_diagonal": bool(unit_diagonal)})


def cho_factor(a: Any, lower: bool = False, overwrite_a: bool = False,
               check_finite: bool = True) -> Any:
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
    first = solve_triangular(c, b, trans=0 if lower else 2, lower=lower)
    return solve_triangular(c, first, trans=2 if lower else 0, lower=lower)


def _lu_impl(a: Any) -> Any:
    lu, piv = sla.lu_factor(a)
    return lu


def _lu_jvp(g: Any, ans: Any, a: Any) -> Any:
    # P A = L U  =>  dLU = L tril(L^-1 P dA U^-1, -1) + triu(L^-1 P dA U^-1) U
    n = shape_of(a)[-1]
    piv = sla.lu_factor(strip(a))[1]
    perm = np.arange(n)
    for i, p in enumerate(piv):
        perm[[i, p]] = perm[[p, i]]
    L = np.tril(ans, -1) + np.eye(n)
    U = np.triu(ans)
    pda = g[..., perm, :]
    inner = _T(np.linalg.solve(_T(U), _T(np.linalg.solve(L, pda))))
    return L @ np.tril(inner, -1) + np.triu(inner) @ U


lu_p = transpose_jvp(Primitive("scipy.linalg.lu_factor", _lu_impl).defjvp(_lu_jvp))


def lu_factor(a: Any, overwrite_a: bool = False, check_finite: bool = True) -> Any:
    return bind(lu_p, (a,), {}), sla.lu_factor(strip(a))[1]


def lu_solve(lu_and_piv: Any, b: Any, trans: int = 0, overwrite_b: bool = False,
             check_finite: bool = True) -> Any:
    lu, piv = lu_and_piv
    n = shape_of(lu)[-1]
    perm = np.arange(n)
    for i, p in enumerate(piv):
        perm[[i, p]] = perm[[p, i]]
    if trans not in _TRANS:
        raise ValueError(f"trans must be 0, 1 or 2, not {trans!r}")
    trans = _TRANS[trans]
    if trans == "N":  # P A = L U: solve L U x = P b
        y = solve_triangular(lu, b[perm], lower=True, unit_diagonal=True)
        return solve_triangular(lu, y, lower=False)
    # op(A) = op(U) op(L) P: solve op(U) y = b, op(L) z = y, then x = P^T z
    y = solve_triangular(lu, b, trans=trans, lower=False)
    z = solve_triangular(lu, y, trans=trans, lower=True, unit_diagonal=True)
    return z[np.argsort(perm)]


def _expm_impl(a: Any) -> Any:
    return sla.expm(a)


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
expm_p.defvjp(lambda g, ans, a: _block_expm_jvp(g, None, _T(a)))


def _sqrtm_impl(a: Any) -> Any:
    x = sla.sqrtm(a)
    if np.iscomplexobj(x):
        raise NoDerivativeRule("scipy.linalg.sqrtm", "Its result is complex here; only "
                               "matrices with a real square root are supported.")
    return x


def _sqrtm_jvp(g: Any, ans: Any, a: Any) -> Any:
    # X = sqrtm(A): X dX + dX X = dA, a Sylvester equation, solved as the linear system
    # (X kron I + I kron X^T) vec(dX) = vec(dA) (row-major vec) so that it stays
    # differentiable in X for higher derivatives.
    n = shape_of(a)[-1]
    eye = np.eye(n)
    k = np.kron(ans, eye) + np.kron(eye, _T(ans))
    gs = shape_of(g)
    flat = np.reshape(g, gs[:-2] + (n * n, 1))
    return np.reshape(np.linalg.solve(k, flat), gs)


sqrtm_p = transpose_jvp(Primitive("scipy.linalg.sqrtm", _sqrtm_impl).defjvp(_sqrtm_jvp))


dispatch(sla, "solve_triangular", solve_triangular)
dispatch(sla, "cho_factor", cho_factor)
dispatch(sla, "cho_solve", cho_solve)
dispatch(sla, "lu_factor", lu_factor)
dispatch(sla, "lu_solve", lu_solve)
dispatch(sla, "expm", lambda A: bind(expm_p, (A,), {}))
dispatch(sla, "sqrtm", lambda A, disp=True, blocksize=64: bind(sqrtm_p, (A,), {}))


# ------------------------------------------------------------------ scipy.stats
_LOG_2PI = np.log(2 * np.pi)


def _standardise(x: Any, loc: Any, scale: Any) -> Any:
    return (x - loc) / scale


def norm_logpdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    z = _standardise(x, loc, scale)
    return -0.5 * z * z - 0.5 * _LOG_2PI - np.log(scale)


def norm_pdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    return np.exp(norm_logpdf(x, loc, scale))


def norm_cdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    return sc.ndtr(_standardise(x, loc, scale))


def norm_logcdf(x: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    return sc.log_ndtr(_standardise(x, loc, scale))


def t_logpdf(x: Any, df: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    z = _standardise(x, loc, scale)
    return (sc.gammaln((df + 1) / 2) - sc.gammaln(df / 2) - 0.5 * np.log(df * np.pi)
            - (df + 1) / 2 * np.log1p(z * z / df) - np.log(scale))


def gamma_logpdf(x: Any, a: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    z = _standardise(x, loc, scale)
    return sc.xlogy(a - 1, z) - z - sc.gammaln(a) - np.log(scale)


def beta_logpdf(x: Any, a: Any, b: Any, loc: Any = 0.0, scale: Any = 1.0) -> Any:
    z = _standardise(x, loc, scale)
    return (sc.xlogy(a - 1, z) + sc.xlog1py(b - 1, -z) - sc.betaln(a, b) - np.log(scale))


def poisson_logpmf(k: Any, mu: Any, loc: Any = 0) -> Any:
    if isinstance(k, Tracer):
        raise NoDerivativeRule("scipy.stats.poisson.logpmf", "The counts k are discrete: "
                               "only mu can be differentiated.")
    k = k - loc
    return sc.xlogy(k, mu) - mu - sc.gammaln(k + 1)


def mvn_logpdf(x: Any, mean: Any = None, cov: Any = 1, allow_singular: bool = False) -> Any:
    d = shape_of(x)[-1]
    diff = x if mean is None else x - mean
    cov = cov * np.eye(d) if ndim_of(cov) == 0 else (
        cov[..., None] * np.eye(d) if ndim_of(cov) == 1 else cov)
    L = np.linalg.cholesky(cov)
    z = np.linalg.solve(L, diff[..., None])[..., 0] if ndim_of(diff) == 1 else _T(
        np.linalg.solve(L, _T(diff)))
    logdet = 2 * np.sum(np.log(np.diagonal(L, axis1=-2, axis2=-1)), axis=-1)
    return -0.5 * (np.sum(z * z, axis=-1) + d * _LOG_2PI + logdet)


dispatch(st.norm, "logpdf", norm_logpdf)
dispatch(st.norm, "pdf", norm_pdf)
dispatch(st.norm, "cdf", norm_cdf)
dispatch(st.norm, "logcdf", norm_logcdf)
dispatch(st.t, "logpdf", t_logpdf)
dispatch(st.gamma, "logpdf", gamma_logpdf)
dispatch(st.beta, "logpdf", beta_logpdf)
dispatch(st.poisson, "logpmf", poisson_logpmf)
dispatch(st.multivariate_normal, "logpdf", mvn_logpdf)
