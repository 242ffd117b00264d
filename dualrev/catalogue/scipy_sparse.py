"""scipy.sparse matrices and arrays as constant linear operators on traced values:
``L @ u``, ``u @ L``, ``L.dot(u)``, ``L * u`` (spmatrix, where ``*`` is the matrix
product), and ``scipy.sparse.linalg.spsolve(A, b)`` with a traced right-hand side.

The sparse operand is a constant (its entries are not differentiated): the product is a
primitive whose JVP is ``L @ du`` and whose VJP is ``L.T @ g`` (JAX's convention: the
transpose, no conjugation, also for complex ``L``). SciPy's own operators would convert
a traced operand with ``np.asarray``, so at import dualrev patches the ``_spbase`` family
(every format, spmatrix and sparray alike) at ``_matmul_dispatch`` and
``_rmatmul_dispatch``, through which ``@``, ``dot`` and spmatrix ``*`` go; a plain operand
costs one isinstance test. ``u @ L`` with a traced ``u`` reaches the sparse class's
``__rmatmul__`` because the traced value's ``__matmul__`` defers to sparse operands
(``tracer.defer_matmul_to``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sps
import scipy.sparse.linalg as spla
from scipy.sparse._base import _spbase

from ..errors import NoDerivativeRule
from ..primitive import Primitive, Tracer, as_array, bind, ndim_of, shape_of
from ..tracer import defer_matmul_to
from .scipy_functions import ORIGINALS, dispatch


def _apply(u: Any, fn: Any) -> Any:
    """``fn`` (a product or solve of plain 1-D/2-D operands, returning the dense result)
    on a 1-D or 2-D ``u``, always with the result's rank that of ``u``."""
    out = np.asarray(fn(u))
    return out.reshape(out.shape[:1] + u.shape[1:]) if out.ndim != u.ndim else out


def _as_columns_rule(prim: Primitive) -> Any:
    """The batching rule of a left operator (a product or solve with a constant matrix):
    the batch becomes extra columns of one 2-D right-hand side, one sparse call for all."""

    def rule(args: list[Any], batched: tuple[bool, ...], **params: Any) -> Any:
        (u,) = args
        s = shape_of(u)  # (B, n) or (B, n, k)
        cols = np.reshape(np.moveaxis(u, 0, 1), (s[1], -1))  # (n, B*k)
        out = bind(prim, (cols,), params)
        m = shape_of(out)[0]
        return np.moveaxis(np.reshape(out, (m, s[0]) + tuple(s[2:])), 1, 0)

    return rule


# ------------------------------------------------------------------ L @ u
def _product_impl(u: Any, matrix: Any, transpose: bool) -> Any:
    op = matrix.T if transpose else matrix
    return _apply(np.asarray(u), lambda v: op @ v)


def _product_jvp(g: Any, ans: Any, u: Any, matrix: Any, transpose: bool) -> Any:
    return bind(sparse_product_p, (g,), {"matrix": matrix, "transpose": transpose})


sparse_product_p = Primitive("scipy.sparse (matrix @ dense)", _product_impl)
sparse_product_p.defjvp(_product_jvp)
# u -> L u is linear: its VJP is g -> L^T g (no conjugation: JAX's convention)
sparse_product_p.defvjp(
    lambda g, ans, u, matrix, transpose: bind(sparse_product_p, (g,), {
        "matrix": matrix, "transpose": not transpose}), saves="")
sparse_product_p.defbatch(_as_columns_rule(sparse_product_p))


def _check_operands(matrix: Any, u: Any, where: str) -> None:
    if matrix.ndim != 2:
        raise NoDerivativeRule(where, f"Only 2-D sparse matrices/arrays are supported "
                               f"(this one has {matrix.ndim} dimensions).")
    if ndim_of(u) == 0:
        raise ValueError("Scalar operands are not allowed, use '*' instead")
    if ndim_of(u) > 2:
        raise NoDerivativeRule(where, "Only 1-D and 2-D dense operands are supported (this "
                               f"one has shape {shape_of(u)}).")


def matmul(matrix: Any, u: Any) -> Any:
    """``matrix @ u`` for a constant sparse ``matrix`` and a traced dense ``u`` (1-D or
    2-D), differentiable in ``u``."""
    _check_operands(matrix, u, "scipy.sparse (matrix @ traced)")
    n = matrix.shape[1]
    if shape_of(u)[0] != n:
        raise ValueError(f"matmul: dimension mismatch: sparse matrix of shape {matrix.shape} "
                         f"and operand of shape {shape_of(u)}")
    return bind(sparse_product_p, (u,), {"matrix": matrix, "transpose": False})


def rmatmul(matrix: Any, u: Any) -> Any:
    """``u @ matrix`` for a traced dense ``u``: ``(matrix.T @ u.T).T``."""
    _check_operands(matrix, u, "scipy.sparse (traced @ matrix)")
    if shape_of(u)[-1] != matrix.shape[0]:
        raise ValueError(f"matmul: dimension mismatch: operand of shape {shape_of(u)} and "
                         f"sparse matrix of shape {matrix.shape}")
    if ndim_of(u) == 1:
        return bind(sparse_product_p, (u,), {"matrix": matrix, "transpose": True})
    return np.transpose(bind(sparse_product_p, (np.transpose(u),),
                             {"matrix": matrix, "transpose": True}))


def _patch(cls: type, name: str, handler: Any) -> None:
    """Replace ``cls.<name>(self, other)`` by a dispatcher: SciPy's own method unless
    ``other`` is traced (one isinstance test on the plain path)."""
    original = cls.__dict__[name]
    original = ORIGINALS.get(original, original)

    def dispatcher(self: Any, other: Any) -> Any:
        if isinstance(other, Tracer):
            return handler(self, other)
        return original(self, other)

    dispatcher.__name__ = dispatcher.__qualname__ = name
    dispatcher.__doc__ = original.__doc__
    dispatcher.__wrapped__ = original  # type: ignore[attr-defined]
    ORIGINALS[dispatcher] = original
    setattr(cls, name, dispatcher)


def _matmul_dispatch(matrix: Any, u: Any) -> Any:
    return matmul(matrix, u)


def _rmatmul_dispatch(matrix: Any, u: Any) -> Any:
    return rmatmul(matrix, u)


def _subclasses(cls: type) -> list[type]:
    return [cls] + [c for s in cls.__subclasses__() for c in _subclasses(s)]


# Formats that override the dispatch methods (COO, for its n-D arrays; its dot too)
# get their own dispatchers: every method through which a product reaches NumPy.
for _cls in dict.fromkeys(_subclasses(_spbase)):
    for _name, _handler in (("_matmul_dispatch", _matmul_dispatch),
                            ("_rmatmul_dispatch", _rmatmul_dispatch),
                            ("dot", _matmul_dispatch)):
        if _name in _cls.__dict__ and (_cls is not _spbase or _name != "dot"):
            _patch(_cls, _name, _handler)
defer_matmul_to(_spbase)


# ------------------------------------------------------------------ spsolve
def _solve_impl(b: Any, matrix: Any, transpose: bool, permc_spec: Any) -> Any:
    op = matrix.T if transpose else matrix
    return _apply(np.asarray(b), lambda v: spla.spsolve(sps.csc_array(op), v,
                                                        permc_spec=permc_spec))


def _solve_jvp(g: Any, ans: Any, b: Any, matrix: Any, transpose: bool,
               permc_spec: Any) -> Any:
    return bind(spsolve_p, (g,), {"matrix": matrix, "transpose": transpose,
                                  "permc_spec": permc_spec})


spsolve_p = Primitive("scipy.sparse.linalg.spsolve", _solve_impl)
spsolve_p.defjvp(_solve_jvp)
# b -> A^-1 b is linear: its VJP is g -> A^-T g
spsolve_p.defvjp(
    lambda g, ans, b, matrix, transpose, permc_spec: bind(spsolve_p, (g,), {
        "matrix": matrix, "transpose": not transpose, "permc_spec": permc_spec}), saves="")
spsolve_p.defbatch(_as_columns_rule(spsolve_p))


def spsolve(A: Any, b: Any, permc_spec: Any = None, use_umfpack: bool = True) -> Any:
    """scipy.sparse.linalg.spsolve(A, b) with a constant sparse ``A`` and a traced dense
    ``b`` (1-D, or 2-D: one solution per column). ``use_umfpack`` is SciPy's choice of
    solver (dualrev uses SuperLU), which changes no value beyond rounding."""
    if isinstance(A, Tracer) or not sps.issparse(A):
        raise NoDerivativeRule("scipy.sparse.linalg.spsolve", "Only a constant sparse "
                               "matrix A is supported (its entries are not differentiated; "
                               "for a dense traced A use numpy.linalg.solve).")
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"matrix must be square (has shape {A.shape})")
    b = as_array(b)
    if ndim_of(b) not in (1, 2):
        raise NoDerivativeRule("scipy.sparse.linalg.spsolve", "Only a 1-D or 2-D dense b "
                               f"is supported (this one has shape {shape_of(b)}).")
    if shape_of(b)[0] != A.shape[0]:
        raise ValueError(f"matrix - rhs dimension mismatch ({A.shape} - {shape_of(b)[0]})")
    return bind(spsolve_p, (b,), {"matrix": A, "transpose": False, "permc_spec": permc_spec})


dispatch(spla, "spsolve", spsolve)
