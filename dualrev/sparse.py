"""Sparse Jacobians by column colouring.

Columns of a Jacobian that share no nonzero row can be probed together: push one tangent
per *colour* (the sum of the basis vectors of the columns with that colour) and each
entry of the compressed product belongs to exactly one column. A banded Jacobian with
10^4 columns needs only a handful of colours, whatever its size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from .transforms import _as_input, jvp_batched


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


def colour_columns(pattern: Any) -> np.ndarray:
    """A colour per column such that no two columns of one colour share a nonzero row
    (greedy, in column order). The number of colours is ``colours.max() + 1``.

    Columns of one colour can be probed by one tangent (the sum of their basis vectors):
    each entry of the compressed product belongs to exactly one of them.

    Args:
        pattern: the (m, n) nonzero pattern, a dense array or a ``scipy.sparse`` matrix.
    Returns:
        An int64 array of shape ``(n,)``: the colour of each column, from 0.
    Example:
        >>> import numpy as np
        >>> from dualrev.sparse import colour_columns
        >>> print(colour_columns(np.eye(4) + np.eye(4, k=1)))
        [0 1 0 1]
    """
    P = sp.csc_matrix(pattern, dtype=bool)
    n = P.shape[1]
    conflict = (P.T @ P).tocsr()  # columns sharing at least one row
    colours = np.full(n, -1, dtype=np.int64)
    indptr, indices = conflict.indptr, conflict.indices
    for j in range(n):
        used = set(colours[indices[indptr[j]:indptr[j + 1]]].tolist())
        c = 0
        while c in used:
            c += 1
        colours[j] = c
    return colours


class SparseJacobian:
    """``J(x)`` as a ``scipy.sparse.csr_matrix``, computed with one vectorised forward
    pass of ``n_colours`` tangents. ``pattern`` is an (m, n) array or sparse matrix of the
    structural nonzeros, or "auto" to detect it at the first call.

    ``J(x, *args)`` differentiates ``f(x, *args)`` in ``x``; the colouring
    (``colour_columns``) is computed at the first call and reused. ``J.colours``,
    ``J.n_colours`` and ``J.passes`` (forward passes made for Jacobians, detection not
    counted) show the work done; ``J.pattern`` the pattern used.

    Args:
        f: the function ``f(x, *args)``, of one array ``x``, returning an array.
        pattern: the structural nonzeros, an (m, n) array or sparse matrix (``m`` output
            elements, ``n`` elements of ``x``), or ``"auto"`` (``detect_sparsity`` at the
            first call). Another string raises ``ValueError``.
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
            self.pattern = detect_sparsity(self.f, x)
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
