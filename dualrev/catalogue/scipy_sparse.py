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

from .. import pattern_rules
from ..errors import NoDerivativeRule
from ..primitive import (
    Primitive,
    Tracer,
    as_array,
    bind,
    dtype_of,
    ndim_of,
    refuse_operand,
    shape_of,
)
from ..scipy_dispatch import note_dispatcher
from ..tracer import _conversion, defer_matmul_to
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


def _structure(matrix: Any, transpose: bool) -> sps.csr_matrix:
    """The non-zero structure of the constant operator (stored zeros dropped: a
    constant's zeros are zeros for every input), transposed if asked."""
    m = sps.coo_matrix(matrix)
    keep = m.data != 0
    r, c = (m.col, m.row) if transpose else (m.row, m.col)
    shape = m.shape[::-1] if transpose else m.shape
    return sps.csr_matrix((np.ones(int(keep.sum()), dtype=bool), (r[keep], c[keep])),
                          shape=shape)


def _product_pattern(deps: Any, ans: Any, u: Any, matrix: Any, transpose: bool) -> Any:
    """``L @ u`` with a constant sparse ``L``: exactly its structure, column by column of
    a 2-D ``u`` (what a discretised operator ``sp.diags(...) @ u`` needs)."""
    (d,) = deps
    if d is None or not d.nnz:
        return None
    return pattern_rules.columns_apply(_structure(matrix, transpose), d, shape_of(u))


sparse_product_p.defpattern(_product_pattern)


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
    note_dispatcher(dispatcher, original)
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
for _cls in dict.fromkeys(_subclasses(_spbase)):
    # NumPy's functions read a sparse matrix as a 0-d object array (np.multiply(w, A))
    refuse_operand(_cls, "NumPy's functions read a scipy.sparse matrix as a 0-d object "
                   "array; use its own operators and methods (A @ x, A * x, "
                   "A.multiply(x), A.dot(x)), or A.toarray().")


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


def _spsolve_pattern(deps: Any, ans: Any, b: Any, matrix: Any, transpose: bool,
                     permc_spec: Any) -> Any:
    """``A^-1 b`` with a constant sparse ``A``: the structural inverse (dense within each
    connected block of A: the inverse of a discretised Laplacian is dense), columns of
    ``b`` independent."""
    (d,) = deps
    if d is None or not d.nnz:
        return None
    S = pattern_rules.inverse_structure(_structure(matrix, transpose))
    return pattern_rules.columns_apply(S, d, shape_of(b))


spsolve_p.defpattern(_spsolve_pattern)


def spsolve(A: Any, b: Any, permc_spec: Any = None, use_umfpack: bool = True) -> Any:
    """scipy.sparse.linalg.spsolve(A, b) with a constant sparse ``A`` and a traced dense
    ``b`` (1-D, or 2-D: one solution per column). ``use_umfpack`` is SciPy's choice of
    solver (dualrev uses SuperLU), which changes no value beyond rounding."""
    if isinstance(A, (Tracer, TracedSparse)) or not sps.issparse(A):
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


# ------------------------------------------------------------------ traced entries
class TracedSparse:
    """A sparse matrix or array whose stored entries are traced (a constant pattern):
    what SciPy returns for ``a * L`` with a traced scalar ``a``, and for the elementwise
    products ``A.multiply(w)`` and, for sparrays, ``A * w``. SciPy cannot hold traced
    entries, so dualrev gives this object in its place.

    It supports ``@`` and ``dot`` with dense operands (either side), ``*`` (a matrix
    product for an spmatrix, elementwise for an sparray, as SciPy), ``multiply``,
    division by a scalar, ``-x``, ``+``/``-`` with sparse operands (sparse, on the union
    of the patterns) or dense ones (an ndarray), ``.T``/``transpose()``, ``power``,
    ``**`` (a sparse array's), ``conj``, ``copy``, ``astype``, the format conversions
    (``tocsr()``..., itself: it has no storage format), ``toarray()``, ``todense()``,
    ``sum()``, ``diagonal()``, ``trace()``, ``shape``, ``ndim`` and ``nnz``; each is
    differentiable in the entries and in the dense operand. Where SciPy returns a
    numpy.matrix for an spmatrix (``todense()``, ``sum(axis=...)``, ``+`` a dense operand)
    or its ``**`` is the matrix power, and for indexing and other SciPy methods,
    ``NoDerivativeRule`` is raised, naming the rewrite.

    Attributes:
        data: the traced entries, one per stored position (canonical: no duplicates).
        row: the positions' rows.
        col: the positions' columns.
        shape: the matrix's shape.
        is_matrix: whether it stands for an ``spmatrix`` (``*`` is the matrix product).
    """

    __array_ufunc__ = None  # NumPy's operators defer to ours (ndarray * this)

    def __init__(self, data: Any, row: np.ndarray, col: np.ndarray, shape: tuple[int, int],
                 is_matrix: bool) -> None:
        self.data = data
        self.row = row
        self.col = col
        self.shape = tuple(shape)
        self.is_matrix = is_matrix
        nnz = row.size
        # one 1 per stored entry, in its row: the product sums each row's terms
        self._rows = sps.csr_array((np.ones(nnz), (row, np.arange(nnz))),
                                   shape=(self.shape[0], nnz))

    @property
    def ndim(self) -> int:
        return 2

    @property
    def nnz(self) -> int:
        return int(self.row.size)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(dtype_of(self.data))

    def __bool__(self) -> bool:
        # SciPy's rule: only a 1x1 matrix has a truth value (an object's default, always
        # True, would silently pick a branch SciPy refuses)
        if self.shape != (1, 1):
            raise ValueError("The truth value of an array with more than one element is "
                             "ambiguous. Use a.any() or a.all().")
        return bool(self.nnz) and bool(self.data[0] != 0)

    def __abs__(self) -> TracedSparse:
        return self._like(abs(self.data))

    @property
    def T(self) -> TracedSparse:
        return self.transpose()

    def transpose(self, axes: Any = None, copy: bool = False) -> TracedSparse:
        """The transpose (the same entries)."""
        if axes is not None and tuple(axes) != (1, 0):
            raise ValueError("Sparse arrays/matrices do not support an 'axes' parameter "
                             "because swapping dimensions is the only logical permutation.")
        return TracedSparse(self.data, self.col, self.row, self.shape[::-1], self.is_matrix)

    def _like(self, data: Any) -> TracedSparse:
        return TracedSparse(data, self.row, self.col, self.shape, self.is_matrix)

    def toarray(self, order: Any = None, out: Any = None) -> Any:
        """The dense ndarray (traced)."""
        if out is not None:
            raise NoDerivativeRule("scipy.sparse (traced entries).toarray",
                                   "out= is not supported: use the returned array.")
        m, n = self.shape
        scatter = sps.csr_array((np.ones(self.nnz), (self.row * n + self.col,
                                                     np.arange(self.nnz))),
                                shape=(m * n, self.nnz))
        return np.reshape(matmul(scatter, self.data), (m, n))

    def todense(self, order: Any = None, out: Any = None) -> Any:
        """The dense array, for a sparse array; refused for an spmatrix, where SciPy gives
        an np.matrix (whose ``*`` is a matrix product: an ndarray in its place would
        silently compute something else)."""
        if self.is_matrix:
            raise self._np_matrix("todense()", ".toarray()")
        return self.toarray(order, out)

    def _np_matrix(self, call: str, rewrite: str) -> NoDerivativeRule:
        return NoDerivativeRule(
            f"scipy.sparse (traced entries).{call}", f"SciPy returns a numpy.matrix here "
            "for an spmatrix (csr_matrix, diags, ...), whose * is a matrix product and "
            "whose results stay 2-D; a traced value cannot be one, and an ndarray in its "
            f"place would give other numbers. Write {rewrite} (an ndarray), or use a "
            "sparse array (csr_array, diags_array), for which SciPy returns ndarrays too.")

    def sum(self, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
        """The sum of the entries (``axis=None``), or of each row/column (a 1-D array,
        for a sparse array; refused for an spmatrix, where SciPy gives a 2-D np.matrix),
        in ``dtype`` if given."""
        if out is not None:
            raise NoDerivativeRule("scipy.sparse (traced entries).sum",
                                   "out= is not supported: use the returned array.")
        data = self.data if dtype is None else self.data.astype(dtype)
        if axis is None:
            return np.sum(data)
        if self.is_matrix:
            raise self._np_matrix(f"sum(axis={axis})", f".toarray().sum(axis={axis})")
        axis = int(axis) % 2
        ones = np.ones(self.shape[axis])
        summed = self._like(data)
        return summed @ ones if axis == 1 else ones @ summed

    def _matmul(self, u: Any) -> Any:
        u = as_array(u)
        if ndim_of(u) == 0:
            raise ValueError("Scalar operands are not allowed, use '*' instead")
        if ndim_of(u) > 2 or shape_of(u)[0] != self.shape[1]:
            raise ValueError(f"matmul: dimension mismatch: sparse matrix of shape "
                             f"{self.shape} and operand of shape {shape_of(u)}")
        gathered = u[self.col]
        terms = (self.data * gathered if ndim_of(u) == 1
                 else np.reshape(self.data, (-1, 1)) * gathered)
        return matmul(self._rows, terms)

    def __matmul__(self, u: Any) -> Any:
        if isinstance(u, (TracedSparse, _spbase)):
            raise NoDerivativeRule("scipy.sparse (traced entries) @ sparse", "Products of "
                                   "two sparse operands are not supported when one has "
                                   "traced entries: use .toarray() on one of them.")
        return self._matmul(u)

    def __rmatmul__(self, u: Any) -> Any:
        if isinstance(u, _spbase):
            return self.__matmul__(u)  # (refused)
        u = as_array(u)
        if ndim_of(u) == 1:
            return self.transpose()._matmul(u)
        return np.transpose(self.transpose()._matmul(np.transpose(u)))

    def dot(self, u: Any) -> Any:
        """``self @ u`` (a scalar: ``self * u``)."""
        return self * u if ndim_of(as_array(u)) == 0 else self @ u

    def multiply(self, other: Any) -> TracedSparse:
        """The elementwise product with a scalar or a dense operand that broadcasts to
        ``shape`` (a sparse result with the same pattern)."""
        if isinstance(other, (TracedSparse, _spbase)):
            other = other.toarray()
        other = as_array(other)
        if ndim_of(other) == 0:
            return self._like(self.data * other)
        if np.broadcast_shapes(tuple(shape_of(other)), self.shape) != self.shape:
            raise NoDerivativeRule("scipy.sparse (traced entries).multiply",
                                   f"Only operands that broadcast to the sparse shape "
                                   f"{self.shape} are supported (got {shape_of(other)}).")
        full = np.broadcast_to(other, self.shape)
        return self._like(self.data * full[self.row, self.col])

    def __mul__(self, other: Any) -> Any:
        if self.is_matrix and ndim_of(as_array(other)) > 0:
            return self @ other
        return self.multiply(other)

    def __rmul__(self, other: Any) -> Any:
        if self.is_matrix and ndim_of(as_array(other)) > 0:
            return as_array(other) @ self
        return self.multiply(other)

    def __truediv__(self, other: Any) -> TracedSparse:
        if ndim_of(as_array(other)) != 0:
            raise NoDerivativeRule("scipy.sparse (traced entries) / array", "Only division "
                                   "by a scalar is supported.")
        return self._like(self.data / other)

    def __neg__(self) -> TracedSparse:
        return self._like(-self.data)

    def _dense_with(self, other: Any, matrix: bool) -> Any:
        other = as_array(other)
        if ndim_of(other) == 0:
            raise NotImplementedError("adding a nonzero scalar to a sparse array is not "
                                      "supported")
        if matrix:
            raise self._np_matrix("+/- a dense operand", "S.toarray() + u")
        return other

    def _plus(self, other: Any, sign: float, left: bool) -> Any:
        """``self + sign * other``, or ``other + sign * self`` when ``other`` is the left
        operand (``left``; SciPy's result takes its kind): sparse with sparse is sparse,
        on the union of the patterns (a traced diffusivity times a Laplacian plus the
        identity stays an operator whose ``*`` is SciPy's); sparse with dense is dense
        (an ndarray for a sparse array; SciPy's np.matrix for an spmatrix is refused)."""
        if isinstance(other, (TracedSparse, _spbase)):
            if tuple(other.shape) != self.shape:
                raise ValueError(f"inconsistent shapes {self.shape} and {other.shape}")
            if isinstance(other, TracedSparse):
                o_row, o_col, o_data = other.row, other.col, other.data
                o_matrix = other.is_matrix
            else:
                coo = sps.coo_array(other)
                coo.sum_duplicates()
                o_row, o_col, o_data = coo.coords[0], coo.coords[1], coo.data
                o_matrix = isinstance(other, sps.spmatrix)
            n = self.shape[1]
            k1, k2 = self.row * n + self.col, o_row * n + o_col
            keys = np.unique(np.concatenate([k1, k2]))

            def onto(k: np.ndarray) -> Any:  # each stored entry to its union position
                return sps.csr_array((np.ones(k.size), (np.searchsorted(keys, k),
                                                        np.arange(k.size))),
                                     shape=(keys.size, k.size))

            s_self, s_other = (sign, 1.0) if left else (1.0, sign)
            data = s_self * matmul(onto(k1), self.data) + s_other * matmul(onto(k2), o_data)
            return TracedSparse(data, keys // n, keys % n, self.shape,
                                o_matrix if left else self.is_matrix)
        dense = self._dense_with(other, self.is_matrix)
        return dense + sign * self.toarray() if left else self.toarray() + sign * dense

    def __add__(self, other: Any) -> Any:
        return self._plus(other, 1.0, False)

    def __radd__(self, other: Any) -> Any:
        return self._plus(other, 1.0, True)

    def __sub__(self, other: Any) -> Any:
        return self._plus(-other if isinstance(other, TracedSparse) else other * -1.0,
                          1.0, False)

    def __rsub__(self, other: Any) -> Any:
        return self._plus(other, -1.0, True)

    def power(self, n: Any, dtype: Any = None) -> TracedSparse:
        """The entries to the power ``n`` (a plain scalar), as SciPy's ``power``."""
        if isinstance(n, Tracer) or ndim_of(n) != 0:
            raise NoDerivativeRule("scipy.sparse (traced entries).power",
                                   "Only a plain scalar exponent is supported.")
        data = self.data ** n
        return self._like(data if dtype is None else data.astype(dtype))

    def __pow__(self, n: Any) -> TracedSparse:
        if self.is_matrix:  # SciPy: the matrix power of an spmatrix
            raise NoDerivativeRule(
                "scipy.sparse (traced entries) ** n", "For an spmatrix ** is the matrix "
                "power, which is not supported with traced entries: write "
                "np.linalg.matrix_power(S.toarray(), n), or S.power(n) for the entries' "
                "power.")
        return self.power(n)  # a sparse array: the entries' power, as SciPy

    def conj(self, copy: bool = True) -> TracedSparse:
        """The complex conjugate of the entries."""
        return self._like(np.conj(self.data))

    conjugate = conj

    def copy(self) -> TracedSparse:
        """The same entries (traced values are never written in place)."""
        return self._like(self.data)

    def astype(self, dtype: Any, casting: str = "unsafe", copy: bool = True) -> TracedSparse:
        """The entries in ``dtype``."""
        return self._like(self.data.astype(dtype))

    def asformat(self, format: Any, copy: bool = False) -> TracedSparse:
        """Itself: traced entries have no storage format (each format's matrix is this)."""
        return self

    def tocsr(self, copy: bool = False) -> TracedSparse:
        """Itself (see ``asformat``)."""
        return self

    tocsc = tocoo = tolil = todok = todia = tobsr = tocsr

    def diagonal(self, k: int = 0) -> Any:
        """The k-th diagonal, a dense 1-D array (traced)."""
        return np.diagonal(self.toarray(), offset=k)

    def trace(self, offset: int = 0) -> Any:
        """The sum of the ``offset`` diagonal."""
        return np.sum(self.diagonal(offset))

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        # NumPy (and scipy.sparse functions that read their operands through it: kron,
        # hstack, bmat) would make a 0-d object array of this and fail far away
        raise _conversion("np.asarray (of a sparse matrix with traced entries: "
                          ".toarray() gives the dense traced array)", "array")

    def __getitem__(self, idx: Any) -> Any:
        raise NoDerivativeRule("scipy.sparse (traced entries)[...]", "Indexing a sparse "
                               "matrix with traced entries is not supported: index "
                               "x.toarray() (a dense result) instead.")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # protocol probes (copy, pickle, NumPy): absent
            raise AttributeError(name)
        raise NoDerivativeRule(f"scipy.sparse (traced entries).{name}", "A sparse matrix "
                               "with traced entries (a * L, L.multiply(w)) supports @, dot, "
                               "*, multiply, / by a scalar, +, -, T, transpose, power, conj, "
                               "copy, astype, the format conversions (itself), toarray, "
                               "todense, sum, diagonal, trace, shape, ndim and nnz: use "
                               ".toarray() for the rest.")

    def __repr__(self) -> str:
        kind = "matrix" if self.is_matrix else "array"
        return (f"<sparse {kind} of shape {self.shape} with {self.nnz} traced entries "
                "(dualrev)>")


defer_matmul_to(TracedSparse)


def _is_sparse_too(original: Any, spmatrix_only: bool) -> Any:
    """``scipy.sparse.issparse`` / ``isspmatrix`` that also answer True for a matrix with
    traced entries (of the matching kind), so that code branching on them takes the
    sparse branch SciPy's matrix would (the dense one reads it as an array)."""
    def check(x: Any) -> bool:
        if isinstance(x, TracedSparse):
            return x.is_matrix or not spmatrix_only
        return bool(original(x))

    check.__name__ = check.__qualname__ = original.__name__
    check.__doc__ = original.__doc__
    check.__wrapped__ = original  # type: ignore[attr-defined]
    return check


for _name, _only in (("issparse", False), ("isspmatrix", True)):
    # (not a dispatcher: no entry in ORIGINALS, whose entries route traced arguments)
    _orig = getattr(getattr(sps, _name), "__wrapped__", getattr(sps, _name))
    setattr(sps, _name, _is_sparse_too(_orig, _only))


def _with_traced_entries(matrix: Any, scale: Any) -> TracedSparse:
    """``matrix`` (plain sparse, 2-D) with its entries times a traced ``scale``: a scalar,
    or a dense operand broadcasting to its shape (elementwise)."""
    if matrix.ndim != 2:
        raise NoDerivativeRule("scipy.sparse (sparse * traced)", "Only 2-D sparse "
                               f"matrices/arrays are supported (this one has {matrix.ndim} "
                               "dimensions).")
    coo = sps.coo_array(matrix)
    coo.sum_duplicates()
    base = TracedSparse(coo.data, coo.coords[0], coo.coords[1], matrix.shape,
                        isinstance(matrix, sps.spmatrix))
    return base.multiply(scale)


def _sparse_mul(matrix: Any, other: Any) -> Any:
    """``matrix * other`` (and ``other * matrix``, the same for the elementwise and scalar
    cases) with a traced ``other``: SciPy's meaning, a matrix product for an spmatrix and
    a non-scalar operand, else elementwise."""
    if ndim_of(other) > 0 and isinstance(matrix, sps.spmatrix):
        return matmul(matrix, other)
    return _with_traced_entries(matrix, other)


def _sparse_rmul(matrix: Any, other: Any) -> Any:
    if ndim_of(other) > 0 and isinstance(matrix, sps.spmatrix):
        return rmatmul(matrix, other)
    return _with_traced_entries(matrix, other)


def _sparse_truediv(matrix: Any, other: Any) -> Any:
    if ndim_of(other) != 0:
        raise NoDerivativeRule("scipy.sparse (sparse / traced)", "Only division by a traced "
                               "scalar is supported.")
    return _with_traced_entries(matrix, 1.0 / other)


def _sparse_rtruediv(matrix: Any, other: Any) -> Any:
    raise NoDerivativeRule("scipy.sparse (traced / sparse)", "Dividing a traced operand "
                           f"of shape {shape_of(other)} by a sparse matrix of shape "
                           f"{matrix.shape} divides by its zeros: use .toarray() first.")


def _sparse_add(matrix: Any, other: Any) -> Any:
    if ndim_of(other) == 0:
        raise NotImplementedError("adding a nonzero scalar to a sparse array is not "
                                  "supported")
    if isinstance(matrix, sps.spmatrix):  # SciPy: a numpy.matrix, whose * is a product
        raise NoDerivativeRule(
            "scipy.sparse (spmatrix +/- traced dense)", "SciPy returns a numpy.matrix "
            "here, whose * is a matrix product and whose results stay 2-D; a traced value "
            "cannot be one, and an ndarray in its place would give other numbers. Write "
            "L.toarray() + u (an ndarray), or use a sparse array (csr_array, diags_array), "
            "for which SciPy returns an ndarray too.")
    return matrix.toarray() + other


def _sparse_sub(matrix: Any, other: Any) -> Any:
    return _sparse_add(matrix, -other)


def _sparse_rsub(matrix: Any, other: Any) -> Any:
    return _sparse_add(-matrix, other)


for _cls in dict.fromkeys([*_subclasses(_spbase), sps.spmatrix]):
    for _name, _handler in (("__mul__", _sparse_mul), ("__rmul__", _sparse_rmul),
                            ("multiply", _with_traced_entries),
                            ("__truediv__", _sparse_truediv),
                            ("__rtruediv__", _sparse_rtruediv),
                            ("__add__", _sparse_add), ("__radd__", _sparse_add),
                            ("__sub__", _sparse_sub), ("__rsub__", _sparse_rsub)):
        if _name in _cls.__dict__:
            _patch(_cls, _name, _handler)


def _diagonals_builder(name: str) -> Any:
    """scipy.sparse.diags / diags_array with traced diagonals: SciPy builds the pattern
    from the positions of the values (each value replaced by its number), and the traced
    values are gathered into it, so every form SciPy accepts (offsets, shape, a scalar
    diagonal broadcast along its length) has SciPy's layout."""
    original = ORIGINALS.get(getattr(sps, name), getattr(sps, name))

    def build(diagonals: Any, /, *args: Any, **kwargs: Any) -> TracedSparse:
        if _traced_any(args) or _traced_any(list(kwargs.values())):
            raise NoDerivativeRule(f"scipy.sparse.{name}", "Only the diagonals may be "
                                   "traced (offsets, shape, format and dtype are plain).")
        # the numbers keep the diagonals' structure (a list stays a list, an array an
        # array), so that SciPy reads them as it reads the values
        single = not isinstance(diagonals, (list, tuple))
        parts = [as_array(diagonals)] if single else [as_array(d) for d in diagonals]
        sizes = [int(np.prod(shape_of(d))) for d in parts]
        ids, start = [], 1
        for d, size in zip(parts, sizes, strict=True):
            ids.append(np.arange(start, start + size, dtype=float).reshape(shape_of(d)))
            start += size
        pattern = sps.coo_array(original(ids[0] if single else ids, *args, **kwargs))
        pattern.sum_duplicates()
        values = np.concatenate([np.ravel(d) for d in parts])
        data = values[pattern.data.astype(np.intp) - 1]
        if kwargs.get("dtype") is not None:  # (format= has no meaning for traced entries)
            data = data.astype(kwargs["dtype"])
        return TracedSparse(data, pattern.coords[0], pattern.coords[1], pattern.shape,
                            name in ("diags", "spdiags"))

    build.__name__ = build.__qualname__ = name
    return build


def _traced_any(values: Any) -> bool:
    return any(isinstance(v, Tracer) for v in values)


for _name in ("diags", "diags_array", "spdiags"):
    if hasattr(sps, _name):
        dispatch(sps, _name, _diagonals_builder(_name))


def _factorized(A: Any) -> Any:
    """scipy.sparse.linalg.factorized(A) for a constant ``A``: SciPy's solver, which
    solves a traced right-hand side as ``spsolve(A, b)`` (the same factorisation's
    values, to rounding; differentiable in b)."""
    original = ORIGINALS[spla.factorized]
    plain_solve = original(A)
    matrix = A

    def solve(b: Any) -> Any:
        if isinstance(b, Tracer):
            return spsolve(matrix, b)
        return plain_solve(b)

    solve.__doc__ = plain_solve.__doc__
    return solve


def _factorized_dispatch(A: Any) -> Any:
    if isinstance(A, Tracer):
        raise NoDerivativeRule("scipy.sparse.linalg.factorized", "Only a constant sparse "
                               "matrix A is supported (its entries are not differentiated).")
    return _factorized(A)


dispatch(spla, "factorized", _factorized_dispatch, always=True)
