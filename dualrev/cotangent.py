"""Cotangents and tangents: what each must be for its primal, and how the backward pass
adds them up. The one home of the cotangent algebra (zeros, projection to the primal's
kind, in-place accumulation into buffers the pass owns).

Under JAX's convention, which dualrev follows, cotangents pair with tangents as
``Re(sum(ct * t))``: a real primal's cotangent is the real part of what arrives, a
float32 primal's is float32 (as in JAX), a complex one's is kept whole.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .primitive import PLAIN_SCALARS, as_dtype, dtype_of, is_complex, shape_of, zeros_as

ndarray = np.ndarray
_F64 = np.dtype(np.float64)

#: kinds of cotangent, from the primal: REAL (float64: take the real part), ANY
#: (complex128: keep it whole), or the primal's own dtype (float32, complex64: cast)
REAL = True
ANY = False


def kind(p: Any) -> Any:
    """What a cotangent of the primal ``p`` must be: ``REAL``, ``ANY`` or a dtype."""
    tp = type(p)
    if tp is ndarray:
        c = p.dtype.char
        return REAL if c == "d" else ANY if c == "D" else _kind_of(p.dtype)
    if tp in PLAIN_SCALARS:
        return REAL
    return _kind_of(dtype_of(p))


def _kind_of(dt: np.dtype) -> Any:
    if dt.char == "d" or dt.kind not in "fc":
        return REAL
    return ANY if dt.char == "D" else dt


def project(c: Any, k: Any) -> Any:
    """The cotangent ``c`` as its primal's kind ``k`` requires."""
    if k is REAL:
        tc = type(c)
        if tc is ndarray:
            return c.real if c.dtype.kind == "c" else c
        if tc in PLAIN_SCALARS or not is_complex(c):
            return c
        return np.real(c)
    if k is ANY:
        return c
    return as_dtype(c, k)


def accumulate(cts: list[Any], owned: list[bool], i: int, c: Any) -> None:
    """Add ``c`` into ``cts[i]``: in place where ``cts[i]`` is a buffer this pass made
    (``owned[i]``) and ``c`` fits it, else into a new value (which the pass then owns
    when it is an ndarray)."""
    prev = cts[i]
    if prev is None:
        cts[i] = c
    elif owned[i] and type(c) is ndarray and c.shape == prev.shape and c.dtype == prev.dtype:
        np.add(prev, c, out=prev)
    else:
        prev = prev + c
        cts[i] = prev
        owned[i] = type(prev) is ndarray


def zeros(shape: tuple[int, ...], like: Any = None) -> ndarray:
    """A zero tangent or cotangent of ``shape`` in the dtype of ``like`` (a zero
    derivative keeps the value's kind and precision)."""
    if like is None:
        return np.zeros(shape)
    if type(like) is ndarray:
        dt = like.dtype
    elif type(like) is float:
        dt = _F64
    else:  # (another library's array: zeros in its library, see zeros_as)
        dt = dtype_of(like)
        return zeros_as(shape, dt if dt.kind in "fc" else _F64, like)
    return np.zeros(shape, dtype=dt if dt.kind in "fc" else _F64)


def zeros_like(x: Any) -> ndarray:
    """``zeros(shape_of(x), x)``."""
    return zeros(shape_of(x), x)
