"""Indexing in the catalogue: ``np.take``. The indexing primitives themselves (``x[idx]``,
its transpose, the write ``x[idx] = v``, the batched-index gathers) are the traced
values' own operations and live below the traces, in dualrev/indexing.py (layer 2);
the catalogue's modules take them from here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DualrevError
from ..indexing import (  # noqa: F401  (re-exported for the catalogue's modules)
    along_axis_index,
    canonical_index,
    gather_p,
    getitem,
    is_basic,
    put_along,
    scatter_p,
    stack_index_lists,
    take_along,
    update_p,
)
from ..primitive import Tracer, ndim_of, register_function, shape_of


@register_function(np.take)
def _take(a: Any, indices: Any, axis: Any = None, out: Any = None, mode: str = "raise") -> Any:
    if out is not None:
        raise DualrevError("dualrev: np.take does not support out= on traced values (it "
                           "writes into a plain buffer); use its result")
    indices = indices if isinstance(indices, Tracer) else np.asarray(indices)
    n = int(np.prod(shape_of(a))) if axis is None else shape_of(a)[int(axis) % ndim_of(a)]
    if mode != "raise":
        if mode not in ("wrap", "clip") or n == 0:  # NumPy's own error
            np.take(np.zeros(shape_of(a)), np.zeros(shape_of(indices), dtype=np.intp),
                    axis=axis, mode=mode)
        # the same gather at the indices NumPy reads: wrapped modulo n, or clipped to
        # [0, n - 1] (negative ones too)
        indices = np.mod(indices, n) if mode == "wrap" else np.clip(indices, 0, n - 1)
    if axis is None:
        return getitem(np.ravel(a), indices)
    axis = int(axis) % ndim_of(a)
    return getitem(a, (slice(None),) * axis + (indices,))
