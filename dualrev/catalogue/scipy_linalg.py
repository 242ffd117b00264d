"""scipy.linalg solvers of structured and matrix equations: solve_banded, solveh_banded,
solve_sylvester, solve_continuous_lyapunov, solve_discrete_lyapunov, solve_continuous_are,
solve_discrete_are, expm_frechet, and sqrtm (whose derivative solves a Sylvester
equation); routed by ``dispatch``, see scipy_functions.py.

Each solution is differentiated implicitly: its tangent solves the same kind of equation
with the same coefficients, and its cotangent the transposed one (JAX's convention for
complex values: plain transposes, the conjugations coming only from the ``^H`` the
equation itself contains). The rules call the primitives they belong to, so derivatives
of any order follow.

Banded systems stay banded in both directions: a tangent ``dab`` acts on the solution
through a band matrix-vector product, the transposed solve is a banded solve of the
transposed band (``(u, l)``), and the cotangent of ``ab`` is the dense cotangent
``-lam x^T`` read only on the band, in ``ab``'s own layout: every step costs
O(n * bandwidth), as the solve does.
"""

from __future__ import annotations

import functools
import inspect
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sps

from .. import pattern_rules
from ..batching import batch_by_loop, batch_size
from ..custom import transpose_jvp
from ..errors import NoDerivativeRule
from ..primitive import (
    Primitive,
    as_array,
    bind,
    concrete,
    is_complex,
    ndim_of,
    shape_of,
    unbroadcast,
)
from ..reverse import linear_transpose
from .contraction import matrix_transpose as _T
from .scipy_functions import ORIGINALS, _check_finite, dispatch, expm_p


def _original(name: str) -> Callable[..., Any]:
    f = getattr(sla, name)
    return ORIGINALS.get(f, f)


_SOLVE_BANDED = _original("solve_banded")
_SOLVEH_BANDED = _original("solveh_banded")
_SYLVESTER = _original("solve_sylvester")
_DLYAP = _original("solve_discrete_lyapunov")
_CARE = _original("solve_continuous_are")
_DARE = _original("solve_discrete_are")


def _H(x: Any) -> Any:
    """The conjugate transpose (the transpose of a real matrix)."""
    return np.conjugate(_T(x)) if is_complex(x) else _T(x)


def _conj(x: Any) -> Any:
    return np.conjugate(x) if is_complex(x) else x


# ------------------------------------------------------------------ banded storage
# ab[k, j] holds the dense A[j + k - u, j] (SciPy's layout: ab[u + i - j, j] == a[i, j]);
# entries whose row falls outside the matrix are never read by LAPACK, so they get no
# tangent's effect and a zero cotangent.

def _frozen(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Index arrays shared through a cache, made read-only (threads share them)."""
    out = tuple(np.array(a) for a in arrays)
    for a in out:
        a.flags.writeable = False
    return out


@functools.lru_cache(maxsize=64)
def _band_rows(l: int, u: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per stored entry ab[k, j]: its row index k, its dense row i = j + k - u (clipped
    into range) and whether that row exists."""
    k = np.arange(l + u + 1)[:, None]
    i = np.arange(n)[None, :] + k - u
    valid = (i >= 0) & (i < n)
    return _frozen(np.broadcast_to(k, valid.shape), np.clip(i, 0, n - 1), valid)


@functools.lru_cache(maxsize=64)
def _band_cols(l: int, u: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the product A x: per (k, i), the column c = i - k + u of the stored entry of
    row i in band row k (clipped), and whether it exists."""
    k = np.arange(l + u + 1)[:, None]
    c = np.arange(n)[None, :] - k + u
    valid = (c >= 0) & (c < n)
    return _frozen(np.broadcast_to(k, valid.shape), np.clip(c, 0, n - 1), valid)


def _mask(valid: np.ndarray, x: Any, matrix: bool) -> Any:
    return np.where(valid[..., None] if matrix else valid, x, 0)


def _band_matvec(ab: Any, x: Any, l: int, u: int) -> Any:
    """A @ x for the band matrix stored in ab, x a vector or an (n, m) matrix."""
    n = shape_of(ab)[-1]
    matrix = ndim_of(x) == 2
    prod = ab[:, :, None] * x[None] if matrix else ab * x
    k, c, valid = _band_cols(l, u, n)
    return np.sum(_mask(valid, prod[k, c], matrix), axis=0)


def _band_outer(lam: Any, x: Any, l: int, u: int) -> Any:
    """lam @ x.T read on the band, in band storage: entry (k, j) is sum_m lam[i, m] x[j, m]
    with i = j + k - u (zero off the matrix)."""
    n = shape_of(x)[0]
    matrix = ndim_of(x) == 2
    _, i, valid = _band_rows(l, u, n)
    prod = lam[i] * x[None]
    if matrix:
        prod = np.sum(prod, axis=-1)
    return np.where(valid, prod, 0)


@functools.lru_cache(maxsize=64)
def _band_transpose_index(l: int, u: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # A^T has l and u swapped: abT[l + i - j, j] = A[j, i] = ab[u + j - i, i], i.e.
    # abT[k, j] = ab[l + u - k, j + k - l]
    k = np.arange(l + u + 1)[:, None]
    c = np.arange(n)[None, :] + k - l
    valid = (c >= 0) & (c < n)
    return _frozen(np.broadcast_to(l + u - k, valid.shape), np.clip(c, 0, n - 1), valid)


def _band_transpose(ab: Any, l: int, u: int) -> Any:
    """The band storage of A^T (lower and upper bandwidths swapped)."""
    r, c, valid = _band_transpose_index(l, u, shape_of(ab)[-1])
    return np.where(valid, ab[r, c], 0)


# ------------------------------------------------------------------ solve_banded
def _banded_impl(ab: Any, b: Any, l: int, u: int) -> Any:
    return _SOLVE_BANDED((l, u), ab, b)


def _banded(ab: Any, b: Any, l: int, u: int) -> Any:
    return bind(solve_banded_p, (ab, b), {"l": l, "u": u})


def _banded_adjoint(g: Any, ab: Any, l: int, u: int) -> Any:
    return _banded(_band_transpose(ab, l, u), g, u, l)


def _banded_batch_rule(prim: Primitive) -> Callable[..., Any]:
    """Batching of a banded solve: a batch of right-hand sides alone (jacfwd/jacrev's
    basis, vmap over b) becomes more columns of one solve; a batch of band matrices is
    solved one by one."""

    def rule(args: list[Any], batched: tuple[bool, ...], **params: Any) -> Any:
        ab, b = args
        if batched[0]:
            return batch_by_loop(prim, args, batched, params, batch_size(args, batched))
        s = shape_of(b)  # (batch, n) or (batch, n, k)
        cols = np.reshape(np.moveaxis(b, 0, -1), (s[1], -1))
        x = bind(prim, (ab, cols), params)
        return np.moveaxis(np.reshape(x, s[1:] + s[:1]), -1, 0)

    return rule


solve_banded_p = Primitive("scipy.linalg.solve_banded", _banded_impl)
solve_banded_p.defjvp(
    lambda g, ans, ab, b, l, u: -_banded(ab, _band_matvec(g, ans, l, u), l, u),
    lambda g, ans, ab, b, l, u: _banded(ab, g, l, u))
solve_banded_p.defvjp(
    lambda g, ans, ab, b, l, u: -_band_outer(_banded_adjoint(g, ab, l, u), ans, l, u),
    lambda g, ans, ab, b, l, u: _banded_adjoint(g, ab, l, u),
    saves=("ans ab", "ab"))
solve_banded_p.defbatch(_banded_batch_rule(solve_banded_p))


def _band_structure(ab: Any, rows_: Any, cols: Any, valid: Any, n: int) -> sps.csr_matrix:
    """The structure of the n x n matrix whose entry ``(rows_, cols)`` is stored in ``ab``
    (where ``valid``): a constant band's zeros are structural."""
    keep = valid & (np.asarray(ab) != 0)
    return sps.csr_matrix((np.ones(int(keep.sum()), dtype=bool), (rows_[keep], cols[keep])),
                          shape=(n, n))


def _banded_solve_pattern(structure: Callable[..., sps.csr_matrix]) -> Callable[..., Any]:
    """A banded solve ``x = A^-1 b``: a constant band through the structural inverse of
    its matrix (the inverse of a banded matrix is dense in general: dense within each
    connected block), columns of ``b`` independent; a traced band reaches everything."""

    def rule(deps: Any, ans: Any, ab: Any, b: Any, **params: Any) -> Any:
        da, db = deps
        S = None if da is not None else pattern_rules.inverse_structure(
            structure(ab, **params))
        return pattern_rules.solve(da, pattern_rules.support(da), db, b, shape_of(ans), S)

    return rule


def _general_band(ab: Any, l: int, u: int) -> sps.csr_matrix:
    # ab[u + i - j, j] = A[i, j]
    k, n = shape_of(ab)
    kk, j = np.meshgrid(np.arange(k), np.arange(n), indexing="ij")
    i = kk - u + j
    return _band_structure(ab, np.clip(i, 0, n - 1), j, (i >= 0) & (i < n), n)


solve_banded_p.defpattern(_banded_solve_pattern(_general_band))


def _banded_args(name: str, ab: Any, b: Any, check_finite: bool) -> tuple[Any, Any]:
    ab, b = as_array(ab), as_array(b)
    if ndim_of(ab) != 2 or ndim_of(b) not in (1, 2):
        raise NoDerivativeRule(
            f"scipy.linalg.{name} of a stack of systems (ab of shape {shape_of(ab)}, b of "
            f"shape {shape_of(b)})",
            "Differentiated for one banded matrix ab (2-D) and b of shape (n,) or (n, k); "
            "map over a stack with dualrev.vmap or a loop.")
    _check_finite(check_finite, ab, b)
    return ab, b


def solve_banded(l_and_u: Any, ab: Any, b: Any, overwrite_ab: bool = False,
                 overwrite_b: bool = False, check_finite: bool = True) -> Any:
    """scipy.linalg.solve_banded of traced values: differentiable in ``ab`` (its
    cotangent in band storage, zero on the entries LAPACK does not read) and ``b``.
    ``overwrite_*`` only permit SciPy to reuse a buffer: no value changes."""
    l, u = (operator.index(v) for v in l_and_u)
    ab, b = _banded_args("solve_banded", ab, b, check_finite)
    return _banded(ab, b, l, u)


# ------------------------------------------------------------------ solveh_banded
@functools.lru_cache(maxsize=64)
def _hermitian_band_index(w: int, n: int, lower: bool) -> tuple[np.ndarray, ...]:
    """How the general band storage (l = u = w) of a Hermitian band matrix reads its
    solveh_banded storage: source row and column, conjugated or not, the diagonal (only
    its real part is read by LAPACK), and whether the entry exists."""
    k = np.arange(2 * w + 1)[:, None]
    j = np.arange(n)[None, :]
    i = j + k - w  # dense row of general entry (k, j)
    mirrored = k > w if not lower else k < w  # the triangle solveh_banded does not store
    if lower:
        row = np.where(mirrored, w - k, k - w)
    else:
        row = np.where(mirrored, 2 * w - k, k)
    col = np.where(mirrored, i, j)
    valid = (i >= 0) & (i < n)
    shape = valid.shape
    return _frozen(np.broadcast_to(row, shape), np.clip(col, 0, n - 1),
                   np.broadcast_to(mirrored, shape), np.broadcast_to(k == w, shape), valid)


def _hermitian_to_general(ab: Any, lower: bool) -> Any:
    """The general band storage (l = u = w) of the Hermitian matrix solveh_banded reads
    from ab: the stored triangle, its conjugate mirrored, the diagonal's real part."""
    w = shape_of(ab)[0] - 1
    row, col, mirrored, diagonal, valid = _hermitian_band_index(w, shape_of(ab)[-1], lower)
    vals = ab[row, col]
    if is_complex(ab):
        vals = np.where(mirrored, np.conjugate(vals), vals)
        vals = np.where(diagonal, np.real(vals), vals)
    return np.where(valid, vals, 0)


def _solveh_impl(ab: Any, b: Any, lower: bool) -> Any:
    return _SOLVEH_BANDED(ab, b, lower=lower)


def _solveh(ab: Any, b: Any, lower: bool) -> Any:
    return bind(solveh_banded_p, (ab, b), {"lower": lower})


def _solveh_jvp_ab(g: Any, ans: Any, ab: Any, b: Any, lower: bool) -> Any:
    w = shape_of(ab)[0] - 1
    return -_solveh(ab, _band_matvec(_hermitian_to_general(g, lower), ans, w, w), lower)


def _solveh_adjoint(g: Any, ab: Any, lower: bool) -> Any:
    # A^T = conj(A) for a Hermitian A, stored as conj(ab)
    return _solveh(_conj(ab), g, lower)


def _solveh_vjp_ab(g: Any, ans: Any, ab: Any, b: Any, lower: bool) -> Any:
    w = shape_of(ab)[0] - 1
    dense_band = -_band_outer(_solveh_adjoint(g, ab, lower), ans, w, w)
    # ab -> general band is linear (real-linear for complex ab: the mirror conjugates):
    # its transpose maps the band cotangent back onto the stored triangle
    return linear_transpose(lambda t: _hermitian_to_general(t, lower), ab, dense_band)


solveh_banded_p = Primitive("scipy.linalg.solveh_banded", _solveh_impl)
solveh_banded_p.defjvp(_solveh_jvp_ab, lambda g, ans, ab, b, lower: _solveh(ab, g, lower))
solveh_banded_p.defvjp(_solveh_vjp_ab,
                       lambda g, ans, ab, b, lower: _solveh_adjoint(g, ab, lower),
                       saves=("ans ab", "ab"))
solveh_banded_p.defbatch(_banded_batch_rule(solveh_banded_p))


def _hermitian_band(ab: Any, lower: bool) -> sps.csr_matrix:
    # lower: ab[i - j, j] = A[i, j] (i >= j); upper: ab[w + i - j, j] = A[i, j] (i <= j);
    # the other triangle mirrors it
    k, n = shape_of(ab)
    kk, j = np.meshgrid(np.arange(k), np.arange(n), indexing="ij")
    i = j + kk if lower else kk - (k - 1) + j
    t = _band_structure(ab, np.clip(i, 0, n - 1), j, (i >= 0) & (i < n), n)
    return (t + t.T).tocsr()


solveh_banded_p.defpattern(_banded_solve_pattern(_hermitian_band))


def solveh_banded(ab: Any, b: Any, overwrite_ab: bool = False, overwrite_b: bool = False,
                  lower: bool = False, check_finite: bool = True) -> Any:
    """scipy.linalg.solveh_banded of traced values: differentiable in ``ab`` (the stored
    triangle only, the diagonal's imaginary part unread as by LAPACK) and ``b``."""
    ab, b = _banded_args("solveh_banded", ab, b, check_finite)
    return _solveh(ab, b, bool(lower))


# ------------------------------------------------------------------ stacks of matrices
def _stacked(f: Callable[..., Any], *mats: Any) -> Any:
    """A 2-D SciPy function over the broadcast leading axes of its matrix arguments (not
    every supported SciPy batches them)."""
    mats = tuple(np.asarray(m) for m in mats)
    batch = np.broadcast_shapes(*(m.shape[:-2] for m in mats))
    if not batch:
        return f(*mats)
    flat = [np.broadcast_to(m, batch + m.shape[-2:]).reshape((-1,) + m.shape[-2:])
            for m in mats]
    out = np.stack([f(*ms) for ms in zip(*flat, strict=True)])
    return out.reshape(batch + out.shape[1:])


def _stack_batch_rule(prim: Primitive) -> Callable[..., Any]:
    """The batching rule of a primitive of matrices that broadcasts leading stack axes:
    each batched operand's batch axis goes in front of the broadcast stack axes."""

    def rule(args: list[Any], batched: tuple[bool, ...], **params: Any) -> Any:
        ranks = [ndim_of(a) - int(bt) - 2 for a, bt in zip(args, batched, strict=True)]
        r = max(ranks)
        out = []
        for a, bt, rank in zip(args, batched, ranks, strict=True):
            if bt:
                s = shape_of(a)
                a = np.reshape(a, s[:1] + (1,) * (r - rank) + s[1:])
            out.append(a)
        return bind(prim, out, params)

    return rule


def _square(name: str, **mats: Any) -> None:
    for arg, m in mats.items():
        s = shape_of(m)
        if len(s) < 2 or s[-1] != s[-2]:
            raise ValueError(f"{name}: {arg} must be a square matrix (or a stack of them), "
                             f"not of shape {s}")


# ------------------------------------------------------------------ solve_sylvester
def _sylvester(a: Any, b: Any, q: Any) -> Any:
    return bind(sylvester_p, (a, b, q), {})


def _sylvester_adjoint(g: Any, a: Any, b: Any) -> Any:
    # the transpose of Y -> A Y + Y B is L -> A^T L + L B^T
    return _sylvester(_T(a), _T(b), g)


def _sylvester_impl(a: Any, b: Any, q: Any) -> Any:
    # SciPy (1.17) takes the real Schur form of a real a or b even when another argument
    # is complex, and its complex trsyl then reads the quasi-triangular blocks as
    # triangular: with a real matrix that has complex eigenvalues the solution is wrong
    # (residuals of 1e-2). The rules meet such mixes all the time (a real matrix, a
    # complex right-hand side), so every argument is made complex together.
    if any(np.iscomplexobj(v) for v in (a, b, q)):
        dtype = np.result_type(a, b, q)
        a, b, q = (np.asarray(v, dtype) for v in (a, b, q))
    return _stacked(_SYLVESTER, a, b, q)


sylvester_p = Primitive("scipy.linalg.solve_sylvester", _sylvester_impl)
# the solution of a generic Sylvester equation depends on every entry of a, b and q
sylvester_p.defpattern(pattern_rules.stacked(2))
# A X + X B = Q  =>  A dX + dX B = dQ - dA X - X dB
sylvester_p.defjvp(lambda g, ans, a, b, q: _sylvester(a, b, -(g @ ans)),
                   lambda g, ans, a, b, q: _sylvester(a, b, -(ans @ g)),
                   lambda g, ans, a, b, q: _sylvester(a, b, g))
sylvester_p.defvjp(
    lambda g, ans, a, b, q: unbroadcast(-(_sylvester_adjoint(g, a, b) @ _T(ans)), shape_of(a)),
    lambda g, ans, a, b, q: unbroadcast(-(_T(ans) @ _sylvester_adjoint(g, a, b)), shape_of(b)),
    lambda g, ans, a, b, q: unbroadcast(_sylvester_adjoint(g, a, b), shape_of(q)),
    saves=("ans a b", "ans a b", "a b q.shape"))
sylvester_p.defbatch(_stack_batch_rule(sylvester_p))


def solve_sylvester(a: Any, b: Any, q: Any) -> Any:
    """scipy.linalg.solve_sylvester (A X + X B = Q) of traced values, differentiable in
    all three (the derivative solves another Sylvester equation)."""
    a, b, q = as_array(a), as_array(b), as_array(q)
    _square("scipy.linalg.solve_sylvester", a=a, b=b)
    return _sylvester(a, b, q)


def solve_continuous_lyapunov(a: Any, q: Any) -> Any:
    """scipy.linalg.solve_continuous_lyapunov (A X + X A^H = Q) of traced values: the
    Sylvester equation with B = A^H, differentiated as such."""
    a, q = as_array(a), as_array(q)
    _square("scipy.linalg.solve_continuous_lyapunov", a=a)
    return _sylvester(a, _H(a), q)


# ------------------------------------------------------------------ sqrtm
_SQRTM = _original("sqrtm")


def _sqrtm_impl(a: Any) -> Any:
    # A real matrix with negative eigenvalues has a complex root: a real-to-complex
    # function like np.fft.fft of a real array, differentiated by the same Sylvester
    # equation (real perturbations keep a simple negative eigenvalue on the negative axis,
    # where SciPy's root is i sqrt(|lambda|) throughout).
    return _stacked(_SQRTM, a)


def _sqrtm_jvp(g: Any, ans: Any, a: Any) -> Any:
    # X = sqrtm(A): X dX + dX X = dA, a Sylvester equation (holomorphic, so complex A
    # too), solved in O(n^3) by the Sylvester primitive, whose rules nest
    x = np.asarray(concrete(ans))
    if x.size:
        mu = np.linalg.eigvals(x)
        sums = np.abs(mu[..., :, None] + mu[..., None, :])
        tiny = x.shape[-1] * np.finfo(float).eps * np.max(np.abs(mu))
        if np.min(sums) <= tiny:
            raise NoDerivativeRule(
                "scipy.linalg.sqrtm at a singular matrix (two eigenvalues of its root sum "
                "to 0)",
                "The square root has no derivative there, as sqrt has none at 0; SciPy's "
                "value exists (with its LinAlgWarning), its derivative does not.")
    return _sylvester(ans, ans, g)


sqrtm_p = transpose_jvp(Primitive("scipy.linalg.sqrtm", _sqrtm_impl).defjvp(_sqrtm_jvp))
sqrtm_p.defbatch(_stack_batch_rule(sqrtm_p))
sqrtm_p.defpattern(pattern_rules.stacked(2))  # dense by nature


# SciPy 1.18 removed sqrtm's disp= and blocksize= (deprecated in 1.17)
_SQRTM_KEYWORDS = "disp" in inspect.signature(sla.sqrtm).parameters
_UNSET: Any = object()


def sqrtm(A: Any, disp: Any = _UNSET, blocksize: Any = _UNSET) -> Any:
    """scipy.linalg.sqrtm of traced values, stacked too (real matrices with negative
    eigenvalues give complex roots, as in SciPy); ``disp=False`` also returns SciPy's
    error estimate ||X X - A||_F^2 / ||A||_F, differentiated too. ``blocksize`` is unused
    by SciPy's algorithm as well. Where SciPy has neither keyword (1.18 on), they are
    refused as SciPy refuses them."""
    if not _SQRTM_KEYWORDS and (disp is not _UNSET or blocksize is not _UNSET):
        raise TypeError("sqrtm() got an unexpected keyword argument "
                        f"'{'disp' if disp is not _UNSET else 'blocksize'}'")
    A = as_array(A)
    if ndim_of(A) < 2:
        raise np.linalg.LinAlgError("The input array must be at least two-dimensional")
    x = bind(sqrtm_p, (A,), {})
    if disp is not False:
        return x
    r = x @ x - A
    # |r|^2 summed rather than norm(r)**2: the same value, and smooth where r = 0
    return x, np.sum(np.real(r * np.conjugate(r)), axis=(-2, -1)) / np.linalg.norm(
        A, "fro", axis=(-2, -1))


# ------------------------------------------------------------------ discrete Lyapunov
_DLYAP_METHODS = (None, "direct", "bilinear")


def _dlyap(a: Any, q: Any, method: Any) -> Any:
    return bind(dlyap_p, (a, q), {"method": method})


def _dlyap_adjoint(g: Any, a: Any, method: Any) -> Any:
    # the transpose of Y -> Y - A Y A^H is L -> L - A^T L conj(A); its solution is the
    # conjugate of the discrete Lyapunov solution for A^H and conj(g)
    return _conj(_dlyap(_H(a), _conj(g), method))


def _dlyap_vjp_a(g: Any, ans: Any, a: Any, q: Any, method: Any) -> Any:
    lam = _dlyap_adjoint(g, a, method)
    # dX carries dA X A^H + A X dA^H: the second is conjugate-linear in dA
    out = lam @ _conj(a) @ _T(ans) + _conj(_T(lam) @ a @ ans)
    return unbroadcast(out, shape_of(a))


dlyap_p = Primitive("scipy.linalg.solve_discrete_lyapunov",
                    lambda a, q, method: _stacked(
                        lambda a_, q_: _DLYAP(a_, q_, method=method), a, q))
# X = A X A^H + Q  =>  dX = A dX A^H + (dA X A^H + A X dA^H + dQ)
dlyap_p.defjvp(
    lambda g, ans, a, q, method: _dlyap(a, g @ ans @ _H(a) + a @ ans @ _H(g), method),
    lambda g, ans, a, q, method: _dlyap(a, g, method))
dlyap_p.defvjp(_dlyap_vjp_a,
               lambda g, ans, a, q, method: unbroadcast(_dlyap_adjoint(g, a, method),
                                                        shape_of(q)),
               saves=("ans a", "a q.shape"))
dlyap_p.defbatch(_stack_batch_rule(dlyap_p))
# X = A X A^H + Q: X depends on every entry of a generic A and Q
dlyap_p.defpattern(pattern_rules.stacked(2))


def solve_discrete_lyapunov(a: Any, q: Any, method: Any = None) -> Any:
    """scipy.linalg.solve_discrete_lyapunov (A X A^H - X + Q = 0) of traced values,
    differentiable in both; ``method`` is SciPy's, used for the derivatives' equations
    too."""
    if method not in _DLYAP_METHODS:
        raise ValueError(f"Unknown solver {method}: method must be None, 'direct' or "
                         "'bilinear'")
    a, q = as_array(a), as_array(q)
    _square("scipy.linalg.solve_discrete_lyapunov", a=a, q=q)
    return _dlyap(a, q, method)


# ------------------------------------------------------------------ algebraic Riccati
# Both equations have Hermitian q, r and solution X; the conjugate transposes make the
# rules real-linear (not holomorphic) in complex arguments, which transpose_jvp's recorded
# transposition handles like any other conjugation. The generalised equations (e, s)
# are the same with E = I and S = 0 left out: the primitive always takes all six
# arguments, and passes SciPy None for those the user did not give.

def _right_einv(x: Any, e: Any) -> Any:
    """x E^-1."""
    return _H(np.linalg.solve(_H(e), _H(x)))


def _both_sides(rhs: Any, e: Any) -> Any:
    """E^-H rhs E^-1."""
    return _right_einv(np.linalg.solve(_H(e), rhs), e)


def _care_gain(ans: Any, a: Any, b: Any, r: Any, e: Any, s: Any) -> tuple[Any, Any]:
    """K = R^-1 (B^H X E + S^H) and M = A - B K."""
    k = np.linalg.solve(r, _H(b) @ ans @ e + _H(s))
    return k, a - b @ k


def _care_solve(rhs: Any, ans: Any, a: Any, b: Any, r: Any, e: Any, s: Any) -> Any:
    # A^H X E + E^H X A - (E^H X B + S) R^-1 (B^H X E + S^H) + Q = 0: dX solves
    # M^H dX E + E^H dX M = -rhs (rhs the equation's derivative at fixed X), i.e. the
    # Sylvester equation N^H dX + dX N = -E^-H rhs E^-1 with N = M E^-1
    _, m = _care_gain(ans, a, b, r, e, s)
    n = _right_einv(m, e)
    return _sylvester(_H(n), n, -_both_sides(rhs, e))


def _hermitian_part(t: Any) -> Any:
    return t + _H(t)


def _care_jvp(which: str) -> Callable[..., Any]:
    def rule(g: Any, ans: Any, a: Any, b: Any, q: Any, r: Any, e: Any, s: Any,
             **params: Any) -> Any:
        k, m = _care_gain(ans, a, b, r, e, s)
        if which == "a":
            rhs = _hermitian_part(_H(g) @ ans @ e)
        elif which == "b":
            rhs = _hermitian_part(-(_H(e) @ ans @ g @ k))
        elif which == "q":
            rhs = g
        elif which == "r":
            rhs = _H(k) @ g @ k
        elif which == "e":
            rhs = _hermitian_part(_H(g) @ ans @ m)
        else:
            rhs = _hermitian_part(-(g @ k))
        return _care_solve(rhs, ans, a, b, r, e, s)

    return rule


def _dare_gain(ans: Any, a: Any, b: Any, r: Any, s: Any) -> tuple[Any, Any]:
    """K = (R + B^H X B)^-1 (B^H X A + S^H) and Acl = A - B K."""
    k = np.linalg.solve(r + _H(b) @ ans @ b, _H(b) @ ans @ a + _H(s))
    return k, a - b @ k


def _dare_jvp(which: str) -> Callable[..., Any]:
    # A^H X A - E^H X E - (A^H X B + S) (R + B^H X B)^-1 (B^H X A + S^H) + Q = 0 is
    # min_K [Acl^H X Acl + K^H R K - K^H S^H - S K] - E^H X E + Q at the optimal K (R, X
    # Hermitian), so K's own derivative drops out: Acl^H dX Acl - E^H dX E + rhs = 0,
    # i.e. dX = N^H dX N + E^-H rhs E^-1 with N = Acl E^-1, a discrete Lyapunov equation
    def rule(g: Any, ans: Any, a: Any, b: Any, q: Any, r: Any, e: Any, s: Any,
             **params: Any) -> Any:
        k, acl = _dare_gain(ans, a, b, r, s)
        if which == "a":
            rhs = _hermitian_part(_H(g) @ ans @ acl)
        elif which == "b":
            rhs = _hermitian_part(-(_H(k) @ _H(g) @ ans @ acl))
        elif which == "q":
            rhs = g
        elif which == "r":
            rhs = _H(k) @ g @ k
        elif which == "e":
            rhs = _hermitian_part(-(_H(g) @ ans @ e))
        else:
            rhs = _hermitian_part(-(g @ k))
        n = _right_einv(acl, e)
        return _dlyap(_H(n), _both_sides(rhs, e), None)

    return rule


def _riccati_impl(solver: Callable[..., Any]) -> Callable[..., Any]:
    def impl(a: Any, b: Any, q: Any, r: Any, e: Any, s: Any, balanced: bool, has_e: bool,
             has_s: bool) -> Any:
        return solver(a, b, q, r, e=e if has_e else None, s=s if has_s else None,
                      balanced=balanced)

    return impl


care_p = transpose_jvp(Primitive("scipy.linalg.solve_continuous_are", _riccati_impl(_CARE))
                       .defjvp(*(_care_jvp(w) for w in "abqres")))
dare_p = transpose_jvp(Primitive("scipy.linalg.solve_discrete_are", _riccati_impl(_DARE))
                       .defjvp(*(_dare_jvp(w) for w in "abqres")))
# a Riccati equation's solution depends on every entry of every (2-D) argument
care_p.defpattern(pattern_rules.dense)
dare_p.defpattern(pattern_rules.dense)


def _riccati(prim: Primitive, name: str, a: Any, b: Any, q: Any, r: Any, e: Any, s: Any,
             balanced: bool) -> Any:
    a, b, q, r = (as_array(v) for v in (a, b, q, r))
    has_e, has_s = e is not None, s is not None
    n, m = shape_of(b)[-2:] if ndim_of(b) == 2 else (shape_of(a)[-1], 0)
    e = as_array(e) if has_e else np.eye(n)
    s = as_array(s) if has_s else np.zeros((n, m))
    if any(ndim_of(v) != 2 for v in (a, b, q, r, e, s)):
        raise NoDerivativeRule(f"scipy.linalg.{name} of a stack of matrices",
                               "Differentiated for 2-D matrices; map over a stack with "
                               "dualrev.vmap or a loop.")
    for arg, v in (("q", q), ("r", r)):
        v = np.asarray(concrete(v))
        vh = np.conj(np.swapaxes(v, -1, -2))
        if not np.allclose(v, vh, rtol=1e-10, atol=1e-12 * max(1.0, np.max(np.abs(v)))):
            raise NoDerivativeRule(
                f"scipy.linalg.{name} with a non-symmetric (non-Hermitian) {arg}",
                f"The derivative assumes a symmetric (Hermitian) {arg}, as the equation's "
                f"theory does; pass (m + m.conj().T) / 2.")
    return bind(prim, (a, b, q, r, e, s), {"balanced": bool(balanced), "has_e": has_e,
                                           "has_s": has_s})


def solve_continuous_are(a: Any, b: Any, q: Any, r: Any, e: Any = None, s: Any = None,
                         balanced: bool = True) -> Any:
    """scipy.linalg.solve_continuous_are of traced matrices, the generalised equation
    (``e``, ``s``) too, differentiable in every argument by implicit differentiation:
    the derivative solves a Sylvester equation with the closed-loop matrix."""
    return _riccati(care_p, "solve_continuous_are", a, b, q, r, e, s, balanced)


def solve_discrete_are(a: Any, b: Any, q: Any, r: Any, e: Any = None, s: Any = None,
                       balanced: bool = True) -> Any:
    """scipy.linalg.solve_discrete_are of traced matrices, the generalised equation
    (``e``, ``s``) too, differentiable in every argument by implicit differentiation:
    the derivative solves a discrete Lyapunov equation with the closed-loop matrix."""
    return _riccati(dare_p, "solve_discrete_are", a, b, q, r, e, s, balanced)


# ------------------------------------------------------------------ expm_frechet
def expm_frechet(A: Any, E: Any, method: Any = None, compute_expm: bool = True,
                 check_finite: bool = True) -> Any:
    """scipy.linalg.expm_frechet of traced values: the Frechet derivative L(A, E) of expm
    at A in direction E is the upper-right block of expm([[A, E], [0, A]]) (SciPy's
    'blockEnlarge'), computed through dualrev's expm so that it is differentiable in A and
    E to any order. ``method`` changes only rounding."""
    if method not in (None, "SPS", "blockEnlarge"):
        raise ValueError(f"Unknown implementation {method}")
    A, E = as_array(A), as_array(E)
    _check_finite(check_finite, A, E)
    _square("scipy.linalg.expm_frechet", A=A, E=E)
    if shape_of(A) != shape_of(E):
        raise ValueError(f"expected A and E to be the same shape, not {shape_of(A)} and "
                         f"{shape_of(E)}")
    n = shape_of(A)[-1]
    dtype = np.result_type(np.asarray(concrete(A)).dtype, np.asarray(concrete(E)).dtype,
                           np.float64)
    zero = np.zeros(shape_of(A), dtype)
    big = np.concatenate([np.concatenate([A, E], axis=-1),
                          np.concatenate([zero, A], axis=-1)], axis=-2)
    m = bind(expm_p, (big,), {})
    frechet = m[..., :n, n:]
    return (m[..., :n, :n], frechet) if compute_expm else frechet


dispatch(sla, "solve_banded", solve_banded)
dispatch(sla, "solveh_banded", solveh_banded)
dispatch(sla, "solve_sylvester", solve_sylvester)
dispatch(sla, "solve_continuous_lyapunov", solve_continuous_lyapunov)
dispatch(sla, "solve_discrete_lyapunov", solve_discrete_lyapunov)
dispatch(sla, "solve_continuous_are", solve_continuous_are)
dispatch(sla, "solve_discrete_are", solve_discrete_are)
dispatch(sla, "expm_frechet", expm_frechet)
dispatch(sla, "sqrtm", sqrtm)
