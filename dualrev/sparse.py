"""Sparse Jacobians and Hessians: structural sparsity detection, colouring, compressed
evaluation.

``jacobian_sparsity``/``hessian_sparsity`` find which entries can be non-zero for every
input, in one run of the function on ``Pattern`` values (dualrev/sparsity.py).
Columns of a Jacobian that share no nonzero row can be probed together: push one tangent
per *colour* (the sum of the basis vectors of the columns with that colour) and each
entry of the compressed product belongs to exactly one column. A banded Jacobian with
10^4 columns needs only a handful of colours, whatever its size. ``jacobian`` and
``hessian`` return ``scipy.sparse`` matrices computed that way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

# the colourings live in colouring.py; these names are dualrev.sparse's too
from .colouring import ORDERS as ORDERS
from .colouring import GraphTooLargeError as GraphTooLargeError
from .colouring import colour_columns as colour_columns
from .colouring import colour_rows as colour_rows
from .colouring import colour_symmetric as colour_symmetric
from .colouring import recover_columns as recover_columns
from .colouring import recover_rows as recover_rows
from .colouring import recover_symmetric as recover_symmetric
from .transforms import Dependencies, _as_input, dependencies, grad, jvp_batched

#: the sparse formats ``jacobian`` and ``hessian`` return
FORMATS = ("csr", "csc", "coo")


class Sparsity:
    """A detected sparsity pattern: ``pattern``, a boolean ``scipy.sparse.csr_matrix``
    (rows: the output's elements, columns: the input's, both flattened in C order);
    ``notes``, what it relies on (decisions taken on values at the given point,
    primitives without a pattern rule, each with the user's line); ``structural``, True
    when it holds for every input (no decision on values was taken).

    Args:
        found: what ``dualrev.transforms.dependencies`` found.
    """

    __slots__ = ("pattern", "notes", "structural", "out_shape", "in_shape")

    def __init__(self, found: Dependencies) -> None:
        self.pattern: sp.csr_matrix = found.pattern
        self.notes: list[str] = found.notes
        self.structural: bool = found.structural
        self.out_shape = tuple(found.out_shapes[0]) if len(found.out_shapes) == 1 else None
        self.in_shape = tuple(found.in_shapes[0]) if len(found.in_shapes) == 1 else None

    @property
    def shape(self) -> tuple[int, int]:
        """The pattern's (rows, columns)."""
        return self.pattern.shape

    @property
    def nnz(self) -> int:
        """The number of entries that may be non-zero."""
        return int(self.pattern.nnz)

    def __repr__(self) -> str:
        m, n = self.shape
        how = "structural" if self.structural else "taken at the given point"
        return (f"Sparsity({m}x{n}, {self.nnz} entries, {how}"
                + (f", {len(self.notes)} notes" if self.notes else "") + ")")


def jacobian_sparsity(f: Callable[..., Any], *args: Any, argnums: int = 0) -> Sparsity:
    """The structural sparsity pattern of ``f``'s Jacobian in argument ``argnums``:
    which entries may be non-zero for every input, found in one run of ``f`` on values
    that carry, for each element, the input elements it depends on.

    Control flow on values (``if x[0] > 0``) and indices computed from values are taken
    at ``args``; ``.structural`` is then False and ``.notes`` name the lines. A primitive
    that states no pattern makes its output depend on all of its inputs' inputs (a note
    says which).

    Args:
        f: the function; its output may be any array (its elements are the rows).
        *args: the arguments to run ``f`` at.
        argnums: the argument whose elements are the columns.
    Returns:
        A ``Sparsity``; ``.pattern`` has shape ``(f(*args).size, args[argnums].size)``.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> s = dr.sparse.jacobian_sparsity(lambda x: x[1:] * x[:-1], np.ones(4))
        >>> print(s.pattern.toarray().astype(int))
        [[1 1 0 0]
         [0 1 1 0]
         [0 0 1 1]]
    """
    return Sparsity(dependencies(f, args, argnums))


def hessian_sparsity(f: Callable[..., Any], *args: Any, argnums: int = 0) -> Sparsity:
    """The structural sparsity pattern of scalar ``f``'s Hessian in argument
    ``argnums``: the Jacobian pattern of its gradient (reverse mode run on pattern
    values: ``jacobian_sparsity(grad(f))``), symmetric.

    Args:
        f: a scalar-valued function.
        *args: the arguments to run it at.
        argnums: the argument whose elements are the rows and columns.
    Returns:
        A ``Sparsity`` of shape ``(n, n)``, ``n = args[argnums].size``.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> f = lambda x: np.sum(x[1:] * x[:-1]) + np.sum(x ** 3)
        >>> print(dr.sparse.hessian_sparsity(f, np.ones(4)).pattern.toarray().astype(int))
        [[1 1 0 0]
         [1 1 1 0]
         [0 1 1 1]
         [0 0 1 1]]
    """
    found = dependencies(grad(f, argnums), args, argnums)
    found.pattern = sp.csr_matrix(found.pattern + found.pattern.T, dtype=bool)
    return Sparsity(found)


def _as_pattern(sparsity: Any) -> sp.csr_matrix:
    if isinstance(sparsity, Sparsity):
        return sparsity.pattern
    return sp.csr_matrix(sparsity, dtype=bool)


def _formatted(M: sp.csr_matrix, format: str) -> Any:
    return M if format == "csr" else M.asformat(format)


def jacobian(f: Callable[..., Any], argnums: int = 0, *, sparsity: Any = None,
             format: str = "csr") -> Callable[..., Any]:
    """``f``'s Jacobian in argument ``argnums`` as a ``scipy.sparse`` matrix of shape
    ``(f(*args).size, args[argnums].size)`` (both flattened in C order; for vectors,
    the shape ``dualrev.jacobian`` gives), computed by pushing one tangent per colour of
    a column colouring of its sparsity pattern through one vectorised forward pass.

    The pattern (``jacobian_sparsity`` at the first call unless given) and its colouring
    are computed once and reused by later calls.

    Args:
        f: the function of a real array argument, returning a real array.
        argnums: the argument to differentiate (an int).
        sparsity: the pattern: None (detected structurally at the first call), a
            ``Sparsity``, or an (m, n) array or sparse matrix of the entries that may be
            non-zero.
        format: ``"csr"``, ``"csc"`` or ``"coo"``.
    Returns:
        A function with ``f``'s signature returning the sparse Jacobian.
    Raises:
        ValueError: an unknown ``format``.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> J = dr.sparse.jacobian(lambda x: x[1:] * x[:-1])
        >>> print(J(np.arange(1.0, 5.0)).toarray())
        [[2. 1. 0. 0.]
         [0. 3. 2. 0.]
         [0. 0. 4. 3.]]
    """
    if format not in FORMATS:
        raise ValueError(f"dualrev.sparse.jacobian: format must be one of {FORMATS}, "
                         f"got {format!r}")
    state: dict[str, Any] = {}

    def jac(*args: Any) -> Any:
        x = args[argnums]
        if "J" not in state:
            pattern = (jacobian_sparsity(f, *args, argnums=argnums) if sparsity is None
                       else sparsity)
            state["J"] = SparseJacobian(None, _as_pattern(pattern))

        def g(v: Any) -> Any:
            new = list(args)
            new[argnums] = v
            return f(*new)

        J = state["J"]
        J.f = g
        return _formatted(J(x), format)

    return jac


def hessian(f: Callable[..., Any], argnums: int = 0, *, sparsity: Any = None,
            format: str = "csr") -> Callable[..., Any]:
    """Scalar ``f``'s Hessian in argument ``argnums`` as a ``scipy.sparse`` matrix of
    shape ``(n, n)``, ``n = args[argnums].size``: Hessian-vector products
    (forward-over-reverse) with one vector per colour of a colouring of its sparsity
    pattern, in one vectorised pass.

    Args:
        f: a scalar-valued function of a real array argument.
        argnums: the argument to differentiate (an int).
        sparsity: the pattern: None (``hessian_sparsity`` at the first call), a
            ``Sparsity``, or an (n, n) array or sparse matrix.
        format: ``"csr"``, ``"csc"`` or ``"coo"``.
    Returns:
        A function with ``f``'s signature returning the sparse Hessian.
    Raises:
        ValueError: an unknown ``format``.
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> f = lambda x: np.sum(x[1:] * x[:-1]) + np.sum(x ** 3)
        >>> print(dr.sparse.hessian(f)(np.ones(3)).toarray())
        [[6. 1. 0.]
         [1. 6. 1.]
         [0. 1. 6.]]
    """
    if format not in FORMATS:
        raise ValueError(f"dualrev.sparse.hessian: format must be one of {FORMATS}, "
                         f"got {format!r}")
    state: dict[str, Any] = {}
    g = grad(f, argnums)

    def hess(*args: Any) -> Any:
        x = args[argnums]
        if "J" not in state:
            pattern = (hessian_sparsity(f, *args, argnums=argnums) if sparsity is None
                       else sparsity)
            state["J"] = SparseJacobian(None, _as_pattern(pattern))

        def gx(v: Any) -> Any:
            new = list(args)
            new[argnums] = v
            return g(*new)

        J = state["J"]
        J.f = gx
        return _formatted(J(x), format)

    return hess


def detect_sparsity(f: Callable[..., Any], x: Any, *, block: int | None = None,
                    seed: int = 0) -> sp.csr_matrix:
    """The nonzero pattern of ``f``'s Jacobian, found by evaluating it in column blocks
    (vectorised forward passes) at a random point near ``x``.

    An entry that is zero only by coincidence at that point (probability zero for
    generic smooth functions) would be missed; pass the pattern yourself where the
    structure is known.

    Args:
        f: the function, of one array, returning an array.
        x: the point near which to look (any shape; it is read as ``x.size`` columns).
        block: the number of columns per forward pass; default: as many as keep a pass
            under about 4·10^6 Jacobian entries.
        seed: the seed of the random displacement of ``x``.
    Returns:
        A boolean ``scipy.sparse.csr_matrix`` of shape ``(m, n)``: ``m`` the number of
        elements of ``f(x)``, ``n`` that of ``x`` (flattened, C order).
    Example:
        >>> import numpy as np
        >>> from dualrev.sparse import detect_sparsity
        >>> f = lambda x: np.concatenate([2.0 * x[:1], x[1:] * x[:-1]])
        >>> print(detect_sparsity(f, np.ones(4)).toarray().astype(int))
        [[1 0 0 0]
         [1 1 0 0]
         [0 1 1 0]
         [0 0 1 1]]
    """
    x = np.asarray(_as_input(x), dtype=float)
    n = x.size
    rng = np.random.default_rng(seed)
    point = x + rng.uniform(0.05, 0.15, size=x.shape) * (1 + np.abs(x))
    m = np.size(f(point))
    if block is None:
        block = max(1, min(n, 4_000_000 // max(m, n, 1)))
    rows, cols = [], []
    eye = np.eye(block)
    for start in range(0, n, block):
        k = min(block, n - start)
        tangents = np.zeros((k, n))
        tangents[:, start:start + k] = eye[:k, :k]
        _, t = jvp_batched(f, point, tangents.reshape((k,) + x.shape))
        t = np.reshape(np.asarray(t), (k, m))
        c, r = np.nonzero(t)
        rows.append(r)
        cols.append(c + start)
    r = np.concatenate(rows) if rows else np.zeros(0, int)
    c = np.concatenate(cols) if cols else np.zeros(0, int)
    return sp.csr_matrix((np.ones(r.size, dtype=bool), (r, c)), shape=(m, n))


class SparseJacobian:
    """``J(x)`` as a ``scipy.sparse.csr_matrix``, computed with one vectorised forward
    pass of ``n_colours`` tangents. ``pattern`` is an (m, n) array or sparse matrix of the
    structural nonzeros, or "auto" to detect it (structurally) at the first call.

    ``J(x, *args)`` differentiates ``f(x, *args)`` in ``x``; the colouring
    (``colour_columns``) is computed at the first call and reused. ``J.colours``,
    ``J.n_colours`` and ``J.passes`` (forward passes made for Jacobians, detection not
    counted) show the work done; ``J.pattern`` the pattern used.

    Args:
        f: the function ``f(x, *args)``, of one array ``x``, returning an array.
        pattern: the structural nonzeros, an (m, n) array or sparse matrix (``m`` output
            elements, ``n`` elements of ``x``), or ``"auto"`` (``detect_sparsity`` at the
            first call, structurally: ``jacobian_sparsity``). Another string raises
            ``ValueError``.
    Example:
        >>> import numpy as np
        >>> from dualrev.optimize import SparseJacobian
        >>> J = SparseJacobian(lambda x: np.concatenate([2.0 * x[:1], x[1:] * x[:-1]]))
        >>> print(J(np.arange(1.0, 5.0)).toarray())
        [[2. 0. 0. 0.]
         [2. 1. 0. 0.]
         [0. 3. 2. 0.]
         [0. 0. 4. 3.]]
        >>> J.n_colours, J.passes
        (2, 1)
    """

    def __init__(self, f: Callable[..., Any], pattern: Any = "auto") -> None:
        self.f = f
        self.pattern = None if isinstance(pattern, str) else sp.csr_matrix(pattern, dtype=bool)
        if isinstance(pattern, str) and pattern != "auto":
            raise ValueError("pattern must be an array, a sparse matrix or 'auto'")
        self.colours: np.ndarray | None = None
        self.passes = 0  # vectorised forward passes made for Jacobians (not detection)

    @property
    def n_colours(self) -> int:
        return 0 if self.colours is None else int(self.colours.max()) + 1

    def _prepare(self, x: np.ndarray) -> None:
        if self.pattern is None:
            self.pattern = jacobian_sparsity(self.f, x).pattern
        self.colours = colour_columns(self.pattern)
        coo = self.pattern.tocoo()
        self._rows, self._cols = coo.row, coo.col
        n = self.pattern.shape[1]
        seeds = np.zeros((self.n_colours, n))
        seeds[self.colours, np.arange(n)] = 1.0
        self._seeds = seeds

    def __call__(self, x: Any, *args: Any) -> sp.csr_matrix:
        x = np.asarray(_as_input(x), dtype=float)
        if self.colours is None:
            self._prepare(x)
        g = (lambda v: self.f(v, *args)) if args else self.f
        _, t = jvp_batched(g, x, self._seeds.reshape((self.n_colours,) + x.shape))
        self.passes += 1
        compressed = np.reshape(np.asarray(t), (self.n_colours, -1))  # (colours, m)
        values = compressed[self.colours[self._cols], self._rows]
        return sp.csr_matrix((values, (self._rows, self._cols)), shape=self.pattern.shape)
