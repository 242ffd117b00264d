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
    ``.multiply(v)`` / ``.get()`` return new arrays (``x`` is left unchanged)."""
    if not hasattr(x, "shape"):
        x = np.asarray(strip(x), dtype=float)
    return _Indexer(x)
