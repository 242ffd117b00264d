"""How values are written on the picture: scalars in full (four significant digits),
small arrays element by element, larger ones as dtype[shape] and their range."""

from __future__ import annotations

from typing import Any

import numpy as np

#: arrays of at most this many elements (and at most two axes, and at most ROWS rows)
#: are written out on a node
SMALL = 9
#: a matrix with more rows than this is summarised (a column of 8 numbers would make its
#: box eight lines tall)
ROWS = 4
#: on an edge's label, vectors of at most this many elements
SHORT = 4

_KINDS = {"f": "f", "c": "c", "i": "i", "u": "u", "b": "bool"}


def number(x: Any) -> str:
    """One number, four significant digits (``6``, ``-0.2447``, ``1e+06``, ``1+2j``)."""
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (complex, np.complexfloating)):
        re, im = number(x.real), number(abs(x.imag))
        return f"{re}{'-' if x.imag < 0 else '+'}{im}j"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    s = format(float(x), ".4g")
    return "0" if s == "-0" else s


def dtype_name(dt: np.dtype) -> str:
    """``f64``, ``c128``, ``i64``, ``bool``."""
    k = _KINDS.get(dt.kind)
    if k is None:
        return str(dt)
    return k if k == "bool" else f"{k}{dt.itemsize * 8}"


def shape_name(a: np.ndarray) -> str:
    """``f64[16,30]``: an array's dtype and shape."""
    return f"{dtype_name(a.dtype)}[{','.join(str(n) for n in a.shape)}]"


def lines(x: Any) -> list[str]:
    """``x`` as one or more lines: a number, a row ``[1 2 3]``, the rows of a small
    matrix, or ``f64[16,30] in [-2.1, 2.3]`` for anything larger."""
    if x is None:
        return ["—"]
    a = np.asarray(x) if not isinstance(x, np.ndarray) else x
    if a.dtype == object:
        return [repr(x)[:40]]
    if a.ndim == 0:
        return [number(a[()])]
    if a.size == 0:
        return [f"{shape_name(a)} (empty)"]
    if a.size <= SMALL and a.ndim == 1:
        return ["[" + " ".join(number(v) for v in a) + "]"]
    if a.size <= SMALL and a.ndim == 2 and a.shape[0] <= ROWS:
        rows = [[number(v) for v in row] for row in a]
        w = max(len(s) for row in rows for s in row)
        body = [" ".join(s.rjust(w) for s in row) for row in rows]
        return [("[[" if i == 0 else " [") + r + ("]]" if i == len(body) - 1 else "]")
                for i, r in enumerate(body)]
    if a.dtype.kind in "biuf":
        return [f"{shape_name(a)} in [{number(a.min())}, {number(a.max())}]"]
    return [f"{shape_name(a)} |max| {number(np.abs(a).max())}"]


def one_line(x: Any) -> str:
    """``x`` on one line (the rows of a small matrix side by side)."""
    return " ".join(s.strip() for s in lines(x))


def is_scalar(x: Any) -> bool:
    """Whether ``x`` has no axes (a number, a 0-d array)."""
    return np.ndim(x) == 0


def short(x: Any) -> str:
    """``x`` for an edge's label: a number, a vector of up to SHORT elements, else its
    dtype[shape]."""
    a = np.asarray(x) if not isinstance(x, np.ndarray) else x
    if a.dtype != object and (a.ndim == 0 or (a.ndim == 1 and a.size <= SHORT)):
        return one_line(a)
    return shape_name(a) if a.dtype != object else repr(x)[:24]
