"""Functional index updates, since traced arrays cannot be written in place:

    y = dualrev.at(x)[idx].set(v)     # like x[idx] = v, on a copy
    y = dualrev.at(x)[idx].add(v)     # like np.add.at(x, idx, v): repeats accumulate
    y = dualrev.at(x)[idx].multiply(v)

They work on plain and traced arrays alike and are differentiable in ``x`` and ``v``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .catalogue.indexing import _positions, canonical_index, getitem, scatter_p
from .primitive import bind, shape_of, strip


class _Update:
    __slots__ = ("x", "idx")

    def __init__(self, x: Any, idx: Any) -> None:
        self.x = x
        self.idx = canonical_index(idx)

    def _flat(self) -> tuple[np.ndarray, tuple[int, ...]]:
        shape = shape_of(self.x)
        return np.ravel(_positions(shape, self.idx)), shape

    def get(self) -> Any:
        """``x[idx]``."""
        return getitem(self.x, self.idx)

    def add(self, v: Any) -> Any:
        """``x`` with ``v`` added at ``idx``; repeated indices accumulate."""
        pos, shape = self._flat()
        vals = np.ravel(np.broadcast_to(v, shape_of(_positions(shape, self.idx)))) + 0.0
        added = bind(scatter_p, (vals,), {"idx": (pos,), "nb": 0, "shape": (int(np.prod(shape)),)})
        return self.x + np.reshape(added, shape)

    def multiply(self, v: Any) -> Any:
        """``x`` multiplied by ``v`` at ``idx`` (repeats multiply repeatedly)."""
        pos, shape = self._flat()
        size = int(np.prod(shape))
        vals = np.ravel(np.broadcast_to(v, shape_of(_positions(shape, self.idx)))) + 0.0
        out = np.ravel(self.x)
        # apply occurrence by occurrence, so repeated positions compound exactly
        for k, p in enumerate(pos):
            out = np.where(np.arange(size) == p, out * getitem(vals, (k,)), out)
        return np.reshape(out, shape)

    def set(self, v: Any) -> Any:
        """``x`` with ``v`` written at ``idx`` (the last write wins, as in NumPy)."""
        pos, shape = self._flat()
        size = int(np.prod(shape))
        vals = np.ravel(np.broadcast_to(v, shape_of(_positions(shape, self.idx)))) + 0.0
        _, first_from_end = np.unique(pos[::-1], return_index=True)
        keep = pos.size - 1 - first_from_end  # the last occurrence of each position
        kept = getitem(vals, (keep,))
        placed = bind(scatter_p, (kept,), {"idx": (pos[keep],), "nb": 0, "shape": (size,)})
        mask = np.zeros(size, dtype=bool)
        mask[pos] = True
        return np.reshape(np.where(mask, placed, np.ravel(self.x)), shape)


class _Indexer:
    __slots__ = ("x",)

    def __init__(self, x: Any) -> None:
        self.x = x

    def __getitem__(self, idx: Any) -> _Update:
        return _Update(self.x, idx)


def at(x: Any) -> _Indexer:
    """Functional index updates: ``dualrev.at(x)[idx].set(v)`` / ``.add(v)`` /
    ``.multiply(v)`` / ``.get()`` return new arrays (``x`` is left unchanged).

    Traced arrays cannot be written in place (``x[idx] = v`` raises ``InPlaceError``); these
    are the differentiable replacements, in ``x`` and in ``v``, and work on plain arrays
    alike:

    - ``.set(v)``: like ``x[idx] = v`` on a copy (for repeated indices the last write wins,
      as in NumPy);
    - ``.add(v)``: like ``np.add.at(x, idx, v)`` on a copy: repeated indices accumulate;
    - ``.multiply(v)``: ``x`` multiplied by ``v`` at ``idx`` (repeats multiply repeatedly);
    - ``.get()``: ``x[idx]``.

    ``v`` is broadcast to the shape of ``x[idx]``; ``idx`` is any NumPy index (ints, slices,
    integer arrays, boolean masks).

    Args:
        x: the array (plain or traced); a list or scalar is converted to a float array.
    Returns:
        An indexer: ``at(x)[idx]`` has the methods above, each returning a new array of
        ``x``'s shape (``.get()``: of ``x[idx]``'s shape).
    Example:
        >>> import numpy as np
        >>> import dualrev as dr
        >>> x = np.zeros(4)
        >>> print(dr.at(x)[1].set(5.0), x)
        [0. 5. 0. 0.] [0. 0. 0. 0.]
        >>> print(dr.at(x)[np.array([0, 0, 2])].add(1.0))
        [2. 0. 1. 0.]
        >>> print(dr.grad(lambda x: np.sum(dr.at(x)[0].set(5.0) ** 2))(np.ones(3)))
        [0. 2. 2.]
    """
    if not hasattr(x, "shape"):
        x = np.asarray(strip(x), dtype=float)
    return _Indexer(x)
